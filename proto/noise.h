/*
 * noise.h: the Noise Protocol Framework (revision 34), pure and without I/O.
 *
 * Suites: 25519 with ChaChaPoly and one of BLAKE2b, SHA256 or SHA512; the
 * product uses Noise_XX_25519_ChaChaPoly_BLAKE2b (and IK when the server key
 * is pinned; see PROTOCOL.md "Handshake and transport (Noise)").  Patterns
 * come from a token table: every fundamental pattern (N K X NN KN NK KK NX KX
 * XN IN XK IK XX IX), every deferred pattern (NK1 … I1X1) and any pskN
 * modifiers ("XXpsk3", "IKpsk0+psk2").
 *
 * A handshake is driven like this:
 *
 *     kz_noise_new(&hs, &cfg)
 *     while kz_noise_next(hs) is KZ_NOISE_WRITE or KZ_NOISE_READ:
 *         WRITE: kz_noise_write(hs, payload, …, out, …) and send out
 *         READ:  kz_noise_read(hs, msg, …, payload, …)
 *     kz_noise_split(hs, &send, &recv); kz_noise_free(hs)
 *
 * Handshake state machine:
 *
 *     WRITE <-> READ  (alternating; the initiator starts with WRITE)
 *       |        |
 *       +--------+--> SPLIT (after the last message) --split--> DONE
 *       |        |
 *       +--------+--> FAILED (any error on peer data or in a primitive;
 *                             final: every later call returns the error)
 *
 * Everything peer-controlled is bounded: a Noise message is at most
 * KZ_LIM_NOISE_MSG_MAX (65535) bytes, every DH result is checked (a
 * low-order public key gives -KZ_ECRYPTO) and nothing asserts on peer data.
 * Secrets (static and ephemeral keys, chaining key, cipher keys, PSKs) live
 * only inside the opaque structs and are wiped by the free functions and on
 * every failure path.
 *
 * The caller authenticates the peer: after the message that carries the
 * peer's static key, compare kz_noise_remote_static() with the pinned key or
 * the roster *before* sending anything else.
 */
#ifndef KZ_NOISE_H
#define KZ_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "env.h"
#include "kz.h"
#include "limits.h"

#define KZ_NOISE_PSK_LEN 32u   /* a Noise pre-shared key */
#define KZ_NOISE_PSK_MAX 4u    /* pskN modifiers in one protocol name */
#define KZ_NOISE_HASH_MAX 64u  /* largest HASHLEN (BLAKE2b, SHA512) */
#define KZ_NOISE_TAG_LEN 16u   /* AEAD tag on every encrypted field */
#define KZ_NOISE_NAME_MAX 127u /* longest protocol name accepted */

/* What the handshake expects next (see the state diagram above). */
enum kz_noise_next {
    KZ_NOISE_WRITE = 1, /* call kz_noise_write */
    KZ_NOISE_READ,      /* call kz_noise_read */
    KZ_NOISE_SPLIT,     /* handshake complete; call kz_noise_split */
    KZ_NOISE_DONE,      /* split already happened */
    KZ_NOISE_FAILED     /* poisoned; free it */
};

struct kz_noise_psk {
    uint8_t b[KZ_NOISE_PSK_LEN]; /* pre-shared key; secret */
};

/* Configuration of one handshake; only read during kz_noise_new. */
struct kz_noise_cfg {
    const char *protocol;            /* "Noise_XX_25519_ChaChaPoly_BLAKE2b" */
    int initiator;                   /* 1: initiator, 0: responder */
    const uint8_t *prologue;         /* borrowed; may be NULL if len is 0 */
    size_t prologue_len;             /* bytes at prologue */
    const struct kz_dh_sk *s;        /* local static key or NULL; copied.
                                        Ignored if the pattern has no local s */
    const struct kz_dh_pk *rs;       /* peer's static key known in advance
                                        (pre-message), or NULL; copied.  Must
                                        be NULL if the pattern has none */
    const struct kz_noise_psk *psks; /* array of n_psks; copied */
    size_t n_psks;                   /* ≥ the number of psk tokens */
    const struct kz_env *env;        /* randomness for ephemerals; borrowed,
                                        must outlive the handshake */
    const struct kz_dh_sk *e;        /* tests only: the ephemeral to use
                                        instead of a random one; copied */
};

struct kz_noise;    /* a HandshakeState; opaque */
struct kz_noise_cs; /* a transport CipherState; opaque */

/**
 * kz_noise_new(out, cfg): a HandshakeState for ${cfg} (Initialize() of the
 * spec: hashes the protocol name, the prologue and the pre-messages).
 * *${out} is freed with kz_noise_free.  Returns 0, -KZ_EINVAL (unknown or
 * unsupported protocol name, a key the pattern needs is missing, rs given
 * for a pattern without a peer pre-message, too few PSKs, neither env nor
 * an injected e although we must write an ephemeral), -KZ_ENOMEM, or
 * -KZ_ECRYPTO.
 */
KZ_MUST_CHECK int kz_noise_new(struct kz_noise **out,
                               const struct kz_noise_cfg *cfg);

/** kz_noise_free(hs): wipes and frees ${hs}; NULL is a no-op. */
void kz_noise_free(struct kz_noise *hs);

/** kz_noise_next(hs): what ${hs} expects next (enum kz_noise_next). */
enum kz_noise_next kz_noise_next(const struct kz_noise *hs);

/**
 * kz_noise_overhead(hs): bytes that the next message adds to its payload
 * (ephemeral and static keys, tags), or 0 if no message is due.  A written
 * message is payload_len + overhead bytes; a read message of msg_len bytes
 * carries msg_len - overhead payload bytes.
 */
size_t kz_noise_overhead(const struct kz_noise *hs);

/**
 * kz_noise_write(hs, payload, payload_len, out, out_cap, out_len): writes
 * the next handshake message carrying ${payload} (may be NULL if len is 0)
 * to ${out}, sets *${out_len}.  Returns 0; -KZ_EINVAL if it is not our turn
 * or out_cap < payload_len + overhead (the state is unchanged); -KZ_ELIMIT
 * if the message would exceed KZ_LIM_NOISE_MSG_MAX (unchanged);
 * -KZ_ECRYPTO on a failed DH or primitive (poisons ${hs}); or the stored
 * error if ${hs} is already poisoned.
 */
KZ_MUST_CHECK int kz_noise_write(struct kz_noise *hs, const uint8_t *payload,
                                 size_t payload_len, uint8_t *out,
                                 size_t out_cap, size_t *out_len);

/**
 * kz_noise_read(hs, msg, msg_len, payload, payload_cap, payload_len): reads
 * the peer's next handshake message ${msg} (peer data) and writes its
 * payload to ${payload}, sets *${payload_len}.  payload_cap ≥ msg_len always
 * suffices.  Returns 0; -KZ_EINVAL if it is not our turn or payload_cap is
 * too small (state unchanged).  Poisoning ${hs}: -KZ_EMALFORMED (longer
 * than KZ_LIM_NOISE_MSG_MAX or shorter than the overhead), -KZ_EAUTH (a tag
 * did not verify: tampering, wrong key, prologue mismatch), -KZ_ECRYPTO (a
 * low-order public key).  ${payload} is zeroed on failure.
 */
KZ_MUST_CHECK int kz_noise_read(struct kz_noise *hs, const uint8_t *msg,
                                size_t msg_len, uint8_t *payload,
                                size_t payload_cap, size_t *payload_len);

/**
 * kz_noise_remote_static(hs, out): the peer's static public key, once known
 * (pre-message or received).  Returns 0, or -KZ_ENOENT if it is not known
 * yet or ${hs} is poisoned.
 */
KZ_MUST_CHECK int kz_noise_remote_static(const struct kz_noise *hs,
                                         struct kz_dh_pk *out);

/**
 * kz_noise_handshake_hash(hs, out, out_len): copies h (HASHLEN bytes: 64 for
 * BLAKE2b/SHA512, 32 for SHA256) to ${out} (KZ_NOISE_HASH_MAX bytes) and
 * sets *${out_len}.  Valid once the last handshake message is processed
 * (SPLIT or DONE); use it for channel binding.  Returns 0 or -KZ_EINVAL.
 */
KZ_MUST_CHECK int kz_noise_handshake_hash(const struct kz_noise *hs,
                                          uint8_t out[static 64],
                                          size_t *out_len);

/**
 * kz_noise_split(hs, send, recv): Split() after the last message.  Returns
 * the CipherState for our direction in *${send} and the peer's in *${recv},
 * both freed with kz_noise_cs_free; for one-way patterns (N, K, X …) the
 * responder gets *send = NULL and the initiator *recv = NULL.  Wipes the
 * chaining key; the handshake hash stays readable.  Returns 0, -KZ_EINVAL
 * (not in SPLIT), -KZ_ENOMEM or -KZ_ECRYPTO (then nothing is returned).
 */
KZ_MUST_CHECK int kz_noise_split(struct kz_noise *hs, struct kz_noise_cs **send,
                                 struct kz_noise_cs **recv);

/* ---- Transport CipherState -------------------------------------------- */

/**
 * kz_noise_cs_encrypt(cs, pt, pt_len, out, out_cap, out_len): encrypts one
 * transport message with the next nonce and empty associated data; writes
 * pt_len + 16 bytes to ${out} (may equal ${pt}).  Returns 0; -KZ_EINVAL if
 * pt_len + 16 > KZ_LIM_NOISE_MSG_MAX or out_cap is short (unchanged);
 * -KZ_ELIMIT when the nonce is exhausted (2^64 - 1 is reserved; the
 * CipherState then refuses forever); -KZ_ECRYPTO (poisoned); or the stored
 * error of a poisoned CipherState.
 */
KZ_MUST_CHECK int kz_noise_cs_encrypt(struct kz_noise_cs *cs, const uint8_t *pt,
                                      size_t pt_len, uint8_t *out,
                                      size_t out_cap, size_t *out_len);

/**
 * kz_noise_cs_decrypt(cs, ct, ct_len, out, out_cap, out_len): decrypts one
 * transport message (peer data) with the next nonce; writes ct_len - 16
 * bytes to ${out}.  Returns 0; -KZ_EINVAL if out_cap < ct_len - 16
 * (unchanged).  Any other failure is final and poisons ${cs}:
 * -KZ_EMALFORMED (shorter than a tag, longer than KZ_LIM_NOISE_MSG_MAX),
 * -KZ_EAUTH (the tag did not verify: tampered, reordered, replayed or
 * dropped messages all end here), -KZ_ELIMIT (nonce exhausted).
 */
KZ_MUST_CHECK int kz_noise_cs_decrypt(struct kz_noise_cs *cs, const uint8_t *ct,
                                      size_t ct_len, uint8_t *out,
                                      size_t out_cap, size_t *out_len);

/**
 * kz_noise_cs_rekey(cs): Rekey() of the spec: k = first 32 bytes of
 * ENCRYPT(k, 2^64 - 1, "", 32 zero bytes).  Both ends must rekey at the same
 * message.  Returns 0, -KZ_ECRYPTO (poisons) or the stored error.
 */
KZ_MUST_CHECK int kz_noise_cs_rekey(struct kz_noise_cs *cs);

/** kz_noise_cs_nonce(cs): the nonce the next message will use. */
uint64_t kz_noise_cs_nonce(const struct kz_noise_cs *cs);

/**
 * kz_noise_cs_set_nonce(cs, n): SetNonce() of the spec.  For tests and for
 * callers that count messages themselves; reusing a nonce under one key
 * destroys confidentiality, so never move it backwards.
 */
void kz_noise_cs_set_nonce(struct kz_noise_cs *cs, uint64_t n);

/** kz_noise_cs_free(cs): wipes and frees ${cs}; NULL is a no-op. */
void kz_noise_cs_free(struct kz_noise_cs *cs);

#endif /* KZ_NOISE_H */
