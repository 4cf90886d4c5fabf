/*
 * crypto.h: thin libsodium wrappers with fixed-size key types.
 *
 * Every key, signature and nonce has its own struct so that the compiler
 * catches a public key passed where a secret key belongs, and so that no
 * function takes a (pointer, length) pair for a secret (STYLE.md 15).  Every
 * libsodium return value is checked and turned into 0 or -KZ_E*; every
 * secret temporary is wiped with sodium_memzero on every path.
 *
 * Randomness comes through struct kz_env (STYLE.md 12) so that tests can make
 * keys deterministically; production passes kz_env_system().
 *
 * Call kz_crypto_init() once, before any other function of this module.
 */
#ifndef KZ_CRYPTO_H
#define KZ_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "env.h"
#include "kz.h"

#define KZ_SIGN_PK_LEN 32u      /* Ed25519 public key */
#define KZ_SIGN_SK_LEN 64u      /* Ed25519 secret key (seed ‖ public key) */
#define KZ_SIGN_SEED_LEN 32u    /* Ed25519 seed */
#define KZ_SIGN_SIG_LEN 64u     /* Ed25519 detached signature */
#define KZ_DH_LEN 32u           /* X25519 public key, secret key and output */
#define KZ_AEAD_KEY_LEN 32u     /* (X)ChaCha20-Poly1305 key */
#define KZ_AEAD_TAG_LEN 16u     /* Poly1305 tag appended to the ciphertext */
#define KZ_XAEAD_NONCE_LEN 24u  /* XChaCha20-Poly1305 IETF nonce */
#define KZ_CPAEAD_NONCE_LEN 12u /* ChaCha20-Poly1305 IETF (RFC 8439) nonce */
#define KZ_SEAL_OVERHEAD 48u    /* crypto_box_seal: ephemeral pk + tag */
#define KZ_HASH_MIN_LEN 16u     /* shortest BLAKE2b output we allow */
#define KZ_HASH_MAX_LEN 64u     /* longest BLAKE2b output */

/* Largest message the AEAD wrappers accept; keeps len + tag far from any
 * overflow and below libsodium's own maxima on every platform. */
#define KZ_AEAD_MSG_MAX ((size_t)1 << 40)

struct kz_sign_pk {
    uint8_t b[KZ_SIGN_PK_LEN]; /* Ed25519 public key */
};

struct kz_sign_sk {
    uint8_t b[KZ_SIGN_SK_LEN]; /* Ed25519 secret key; secret */
};

struct kz_sign_sig {
    uint8_t b[KZ_SIGN_SIG_LEN]; /* Ed25519 detached signature */
};

struct kz_dh_pk {
    uint8_t b[KZ_DH_LEN]; /* X25519 public key (u-coordinate) */
};

struct kz_dh_sk {
    uint8_t b[KZ_DH_LEN]; /* X25519 secret scalar; secret */
};

struct kz_dh_shared {
    uint8_t b[KZ_DH_LEN]; /* X25519 output; secret */
};

struct kz_aead_key {
    uint8_t b[KZ_AEAD_KEY_LEN]; /* AEAD key; secret */
};

/** kz_crypto_init(): initialises libsodium; returns 0 or -KZ_ECRYPTO. */
KZ_MUST_CHECK int kz_crypto_init(void);

/** kz_crypto_wipe(p, len): sodium_memzero of ${len} bytes at ${p}. */
void kz_crypto_wipe(void *p, size_t len);

/**
 * kz_crypto_eq(a, b, len): 1 if the ${len} bytes at ${a} and ${b} are equal,
 * else 0, in time that depends only on ${len} (sodium_memcmp).
 */
int kz_crypto_eq(const void *a, const void *b, size_t len);

/* ---- Ed25519 ---------------------------------------------------------- */

/**
 * kz_sign_keypair(env, pk, sk): a fresh Ed25519 key pair whose 32-byte seed
 * comes from ${env}'s randomness.  Returns 0 or -KZ_ECRYPTO (${pk} and ${sk}
 * are then zero).
 */
KZ_MUST_CHECK int kz_sign_keypair(const struct kz_env *env,
                                  struct kz_sign_pk *pk, struct kz_sign_sk *sk);

/**
 * kz_sign_seed_keypair(pk, sk, seed): the Ed25519 key pair of ${seed}.
 * Returns 0 or -KZ_ECRYPTO (${pk} and ${sk} are then zero).
 */
KZ_MUST_CHECK int kz_sign_seed_keypair(struct kz_sign_pk *pk,
                                       struct kz_sign_sk *sk,
                                       const uint8_t seed[static 32]);

/**
 * kz_sign_detached(sig, msg, msg_len, sk): signs ${msg_len} bytes at ${msg}
 * (may be NULL if msg_len is 0).  Returns 0 or -KZ_ECRYPTO (${sig} is then
 * zero).
 */
KZ_MUST_CHECK int kz_sign_detached(struct kz_sign_sig *sig, const void *msg,
                                   size_t msg_len, const struct kz_sign_sk *sk);

/**
 * kz_sign_verify(sig, msg, msg_len, pk): 0 if ${sig} is a valid signature
 * of ${msg} by ${pk} under libsodium's strict rules (canonical S and A,
 * small-order R and A refused), else -KZ_EAUTH.
 */
KZ_MUST_CHECK int kz_sign_verify(const struct kz_sign_sig *sig, const void *msg,
                                 size_t msg_len, const struct kz_sign_pk *pk);

/* ---- X25519 ----------------------------------------------------------- */

/**
 * kz_dh_keypair(env, pk, sk): a fresh X25519 key pair; the scalar comes from
 * ${env}.  Returns 0 or -KZ_ECRYPTO (both then zero).
 */
KZ_MUST_CHECK int kz_dh_keypair(const struct kz_env *env, struct kz_dh_pk *pk,
                                struct kz_dh_sk *sk);

/**
 * kz_dh_public(pk, sk): the public key of ${sk}.  Returns 0 or -KZ_ECRYPTO
 * (a zero scalar after clamping cannot happen, but libsodium's -1 is still
 * honoured).
 */
KZ_MUST_CHECK int kz_dh_public(struct kz_dh_pk *pk, const struct kz_dh_sk *sk);

/**
 * kz_dh(out, sk, pk): X25519(${sk}, ${pk}).  Returns 0, or -KZ_ECRYPTO when
 * libsodium reports an all-zero result, i.e. ${pk} is a low-order point (the
 * peer chose it to force a known shared secret).  ${out} is zero on error.
 */
KZ_MUST_CHECK int kz_dh(struct kz_dh_shared *out, const struct kz_dh_sk *sk,
                        const struct kz_dh_pk *pk);

/* ---- AEAD ------------------------------------------------------------- */

/**
 * kz_xaead_encrypt(ct, pt, pt_len, ad, ad_len, nonce, key): XChaCha20-
 * Poly1305 (IETF).  Writes pt_len + KZ_AEAD_TAG_LEN bytes to ${ct}, which
 * may equal ${pt}.  ${ad} may be NULL if ad_len is 0.  The nonce must never
 * repeat under one key; 24 random bytes are fine.  Returns 0, -KZ_EINVAL if
 * pt_len > KZ_AEAD_MSG_MAX, or -KZ_ECRYPTO.
 */
KZ_MUST_CHECK int kz_xaead_encrypt(uint8_t *ct, const uint8_t *pt,
                                   size_t pt_len, const uint8_t *ad,
                                   size_t ad_len,
                                   const uint8_t nonce[static 24],
                                   const struct kz_aead_key *key);

/**
 * kz_xaead_decrypt(pt, ct, ct_len, ad, ad_len, nonce, key): verifies the tag
 * and then writes ct_len - KZ_AEAD_TAG_LEN bytes to ${pt}.  Returns 0,
 * -KZ_EMALFORMED if ct_len < KZ_AEAD_TAG_LEN or > the limit, or -KZ_EAUTH
 * if the tag does not verify (${pt} is then zeroed).
 */
KZ_MUST_CHECK int kz_xaead_decrypt(uint8_t *pt, const uint8_t *ct,
                                   size_t ct_len, const uint8_t *ad,
                                   size_t ad_len,
                                   const uint8_t nonce[static 24],
                                   const struct kz_aead_key *key);

/**
 * kz_cpaead_encrypt(…): as kz_xaead_encrypt with ChaCha20-Poly1305 IETF
 * (RFC 8439) and a 12-byte nonce; Noise's ChaChaPoly cipher.
 */
KZ_MUST_CHECK int kz_cpaead_encrypt(uint8_t *ct, const uint8_t *pt,
                                    size_t pt_len, const uint8_t *ad,
                                    size_t ad_len,
                                    const uint8_t nonce[static 12],
                                    const struct kz_aead_key *key);

/** kz_cpaead_decrypt(…): as kz_xaead_decrypt with a 12-byte nonce. */
KZ_MUST_CHECK int kz_cpaead_decrypt(uint8_t *pt, const uint8_t *ct,
                                    size_t ct_len, const uint8_t *ad,
                                    size_t ad_len,
                                    const uint8_t nonce[static 12],
                                    const struct kz_aead_key *key);

/* ---- Sealed boxes ----------------------------------------------------- */

/**
 * kz_seal(ct, pt, pt_len, pk): crypto_box_seal of ${pt} to ${pk}; writes
 * pt_len + KZ_SEAL_OVERHEAD bytes to ${ct} (must not overlap ${pt}).  The
 * box does not say who made it: sign it if the sender matters (DESIGN §4).
 * Returns 0, -KZ_EINVAL if pt_len is over the limit, or -KZ_ECRYPTO.
 */
KZ_MUST_CHECK int kz_seal(uint8_t *ct, const uint8_t *pt, size_t pt_len,
                          const struct kz_dh_pk *pk);

/**
 * kz_seal_open(pt, ct, ct_len, pk, sk): opens a sealed box made for the key
 * pair (${pk}, ${sk}); writes ct_len - KZ_SEAL_OVERHEAD bytes to ${pt}.
 * Returns 0, -KZ_EMALFORMED if ct_len < KZ_SEAL_OVERHEAD, or -KZ_EAUTH.
 */
KZ_MUST_CHECK int kz_seal_open(uint8_t *pt, const uint8_t *ct, size_t ct_len,
                               const struct kz_dh_pk *pk,
                               const struct kz_dh_sk *sk);

/* ---- BLAKE2b ---------------------------------------------------------- */

/**
 * kz_hash(out, out_len, msg, msg_len): unkeyed BLAKE2b (generichash) of
 * ${msg}, ${out_len} (16..64) bytes.  Returns 0, -KZ_EINVAL for a bad
 * out_len, or -KZ_ECRYPTO.
 */
KZ_MUST_CHECK int kz_hash(uint8_t *out, size_t out_len, const void *msg,
                          size_t msg_len);

/**
 * kz_hash_keyed(out, out_len, msg, msg_len, key): BLAKE2b in its keyed mode
 * with a 32-byte ${key} (a MAC; NOT HMAC).  Returns as kz_hash.
 */
KZ_MUST_CHECK int kz_hash_keyed(uint8_t *out, size_t out_len, const void *msg,
                                size_t msg_len, const uint8_t key[static 32]);

#endif /* KZ_CRYPTO_H */
