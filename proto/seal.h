/*
 * seal.h: end-to-end protection of changesets and scope keys (DESIGN.md §4;
 * PROTOCOL.md §Sealed changesets and key envelopes).
 *
 * Sealed body: nonce(24) ‖ XChaCha20-Poly1305(body, ad = encoded header)
 * under the data key of (scope, epoch) named in the header.  The author then
 * signs header ‖ sealed body with Ed25519; receivers verify that signature
 * (against the roster) before they open anything.
 *
 * Key envelope: a scope's data key for one member, sealed to the member's
 * X25519 key (crypto_box_seal) and signed by the member who made it, since
 * a sealed box does not say who sealed it:
 *
 *     envelope = [ body:bin, sig:bin(64) ]   sig = Ed25519(sealer, body)
 *     body     = [ 1, scope:str(≤128), epoch:uint(≥1),
 *                  recipient:bin(32) (X25519), sealer:bin(32) (Ed25519),
 *                  sealed:bin(80) (crypto_box_seal of the 32-byte key) ]
 */
#ifndef KZ_PROTO_SEAL_H
#define KZ_PROTO_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "kz.h"
#include "limits.h"

#define KZ_SEAL_NONCE_LEN KZ_XAEAD_NONCE_LEN
#define KZ_SEAL_BODY_OVERHEAD (KZ_XAEAD_NONCE_LEN + KZ_AEAD_TAG_LEN)
#define KZ_ENV_FORMAT 1
#define KZ_ENV_SEALED_LEN (KZ_AEAD_KEY_LEN + KZ_SEAL_OVERHEAD)

/**
 * kz_seal_body(out, out_len, body, len, hdr, hdr_len, key, env): seals a
 * changeset body; *${out} is allocated (len + KZ_SEAL_BODY_OVERHEAD bytes;
 * caller frees with kz_free).  The nonce comes from ${env}.  Returns 0,
 * -KZ_ENOMEM, -KZ_ECRYPTO.
 */
KZ_MUST_CHECK int kz_seal_body(uint8_t **out, size_t *out_len,
                               const uint8_t *body, size_t len,
                               const uint8_t *hdr, size_t hdr_len,
                               const struct kz_aead_key *key,
                               const struct kz_env *env);

/**
 * kz_seal_body_nonce(out, out_len, body, len, hdr, hdr_len, key, nonce): as
 * kz_seal_body with a given ${nonce}: the same inputs give the same bytes
 * (a client re-seals a changeset it pushed before identically).  Never
 * reuse a nonce for other contents under one key.
 */
KZ_MUST_CHECK int kz_seal_body_nonce(uint8_t **out, size_t *out_len,
                                     const uint8_t *body, size_t len,
                                     const uint8_t *hdr, size_t hdr_len,
                                     const struct kz_aead_key *key,
                                     const uint8_t nonce[KZ_SEAL_NONCE_LEN]);

/**
 * kz_open_body(out, out_len, sealed, len, hdr, hdr_len, key): the plaintext
 * body (*${out} allocated; caller frees with kz_free).  Returns 0,
 * -KZ_EMALFORMED (shorter than the overhead), -KZ_EAUTH (wrong key, or the
 * header or body was altered), -KZ_ENOMEM.
 */
KZ_MUST_CHECK int kz_open_body(uint8_t **out, size_t *out_len,
                               const uint8_t *sealed, size_t len,
                               const uint8_t *hdr, size_t hdr_len,
                               const struct kz_aead_key *key);

/**
 * kz_cs_sign(sig, hdr, hdr_len, body, body_len, sk): the author's Ed25519
 * signature over hdr ‖ body (the sealed body).  Returns 0, -KZ_ENOMEM,
 * -KZ_ECRYPTO.
 */
KZ_MUST_CHECK int kz_cs_sign(struct kz_sign_sig *sig, const uint8_t *hdr,
                             size_t hdr_len, const uint8_t *body,
                             size_t body_len, const struct kz_sign_sk *sk);

/**
 * kz_cs_verify(sig, hdr, hdr_len, body, body_len, author): checks a
 * changeset's signature over hdr ‖ body with the 32-byte ${author} key.
 * Returns 0, -KZ_EAUTH (does not verify) or -KZ_ENOMEM.
 */
KZ_MUST_CHECK int kz_cs_verify(const uint8_t sig[64], const uint8_t *hdr,
                               size_t hdr_len, const uint8_t *body,
                               size_t body_len, const uint8_t author[32]);

/* A decoded, verified key envelope (the key itself stays sealed). */
struct kz_env_info {
    char scope[KZ_LIM_NAME_MAX + 1];   /* scope */
    uint64_t epoch;                    /* ≥ 1 */
    struct kz_dh_pk recipient;         /* whom it is for */
    struct kz_sign_pk sealer;          /* who made and signed it */
    uint8_t sealed[KZ_ENV_SEALED_LEN]; /* crypto_box_seal of the key */
};

/**
 * kz_env_make(out, out_len, scope, epoch, key, recipient, sealer_sk,
 * sealer_pk): an envelope of ${key} for ${recipient}, signed by the sealer.
 * *${out} is allocated (caller frees with kz_free).  Returns 0, -KZ_EINVAL,
 * -KZ_ENOMEM, -KZ_ECRYPTO.
 */
KZ_MUST_CHECK int kz_env_make(uint8_t **out, size_t *out_len, const char *scope,
                              uint64_t epoch, const struct kz_aead_key *key,
                              const struct kz_dh_pk *recipient,
                              const struct kz_sign_sk *sealer_sk,
                              const struct kz_sign_pk *sealer_pk);

/**
 * kz_env_decode(info, p, len, why): parses an envelope and verifies its
 * signature with the sealer key it names (bounded reads; nothing borrowed).
 * Whether that sealer may hand out this scope's key is the caller's
 * question (the roster).  Returns 0, -KZ_EMALFORMED, -KZ_ELIMIT,
 * -KZ_EVERSION or -KZ_EAUTH (bad signature).
 */
KZ_MUST_CHECK int kz_env_decode(struct kz_env_info *info, const uint8_t *p,
                                size_t len, const char **why);

/**
 * kz_env_open(key, info, pk, sk): the data key of a verified envelope
 * addressed to (${pk}, ${sk}).  Returns 0, -KZ_EINVAL (not for this key),
 * -KZ_EAUTH (does not open).
 */
KZ_MUST_CHECK int kz_env_open(struct kz_aead_key *key,
                              const struct kz_env_info *info,
                              const struct kz_dh_pk *pk,
                              const struct kz_dh_sk *sk);

#endif /* KZ_PROTO_SEAL_H */
