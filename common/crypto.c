/*
 * crypto.c: thin libsodium wrappers with fixed-size key types.
 *
 * Each function checks libsodium's return, maps it to one error code and
 * leaves outputs zeroed on failure so that a caller who ignores the error
 * (KZ_MUST_CHECK makes that hard) cannot use a half-written key.
 */
#include <string.h>

#include <sodium.h>

#include "err.h"

#include "crypto.h"

KZ_STATIC_ASSERT(KZ_SIGN_PK_LEN == crypto_sign_PUBLICKEYBYTES, "sign pk");
KZ_STATIC_ASSERT(KZ_SIGN_SK_LEN == crypto_sign_SECRETKEYBYTES, "sign sk");
KZ_STATIC_ASSERT(KZ_SIGN_SEED_LEN == crypto_sign_SEEDBYTES, "sign seed");
KZ_STATIC_ASSERT(KZ_SIGN_SIG_LEN == crypto_sign_BYTES, "sign sig");
KZ_STATIC_ASSERT(KZ_DH_LEN == crypto_scalarmult_curve25519_BYTES, "dh");
KZ_STATIC_ASSERT(KZ_DH_LEN == crypto_scalarmult_curve25519_SCALARBYTES, "dh");
KZ_STATIC_ASSERT(KZ_AEAD_KEY_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
                 "xaead key");
KZ_STATIC_ASSERT(KZ_AEAD_KEY_LEN == crypto_aead_chacha20poly1305_ietf_KEYBYTES,
                 "cpaead key");
KZ_STATIC_ASSERT(KZ_AEAD_TAG_LEN == crypto_aead_xchacha20poly1305_ietf_ABYTES,
                 "xaead tag");
KZ_STATIC_ASSERT(KZ_AEAD_TAG_LEN == crypto_aead_chacha20poly1305_ietf_ABYTES,
                 "cpaead tag");
KZ_STATIC_ASSERT(KZ_XAEAD_NONCE_LEN ==
                     crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                 "xaead nonce");
KZ_STATIC_ASSERT(KZ_CPAEAD_NONCE_LEN ==
                     crypto_aead_chacha20poly1305_ietf_NPUBBYTES,
                 "cpaead nonce");
KZ_STATIC_ASSERT(KZ_SEAL_OVERHEAD == crypto_box_SEALBYTES, "seal");
KZ_STATIC_ASSERT(KZ_HASH_MIN_LEN == crypto_generichash_BYTES_MIN, "hash");
KZ_STATIC_ASSERT(KZ_HASH_MAX_LEN == crypto_generichash_BYTES_MAX, "hash");

/** kz_crypto_init(): initialises libsodium; returns 0 or -KZ_ECRYPTO. */
int
kz_crypto_init(void)
{
    /* sodium_init returns 1 when already initialised; that is fine. */
    if (sodium_init() < 0)
        return -KZ_ECRYPTO;
    return 0;
}

/** kz_crypto_wipe(p, len): sodium_memzero of ${len} bytes at ${p}. */
void
kz_crypto_wipe(void *p, size_t len)
{
    if (p != NULL && len > 0)
        sodium_memzero(p, len);
}

/** kz_crypto_eq(a, b, len): 1 if equal (constant time), else 0. */
int
kz_crypto_eq(const void *a, const void *b, size_t len)
{
    return sodium_memcmp(a, b, len) == 0;
}

/* ---- Ed25519 ---------------------------------------------------------- */

/** kz_sign_keypair(env, pk, sk): a fresh key pair, seed from ${env}. */
int
kz_sign_keypair(const struct kz_env *env, struct kz_sign_pk *pk,
                struct kz_sign_sk *sk)
{
    uint8_t seed[KZ_SIGN_SEED_LEN];
    int rc;

    kz_env_random(env, seed, sizeof(seed));
    rc = kz_sign_seed_keypair(pk, sk, seed);
    sodium_memzero(seed, sizeof(seed));
    return rc;
}

/** kz_sign_seed_keypair(pk, sk, seed): the key pair of ${seed}. */
int
kz_sign_seed_keypair(struct kz_sign_pk *pk, struct kz_sign_sk *sk,
                     const uint8_t seed[static 32])
{
    if (crypto_sign_seed_keypair(pk->b, sk->b, seed) != 0)
        goto err0;
    return 0;

err0:
    sodium_memzero(pk->b, sizeof(pk->b));
    sodium_memzero(sk->b, sizeof(sk->b));
    return -KZ_ECRYPTO;
}

/** kz_sign_detached(sig, msg, msg_len, sk): signs ${msg}. */
int
kz_sign_detached(struct kz_sign_sig *sig, const void *msg, size_t msg_len,
                 const struct kz_sign_sk *sk)
{
    unsigned long long sig_len = 0;

    if (crypto_sign_detached(sig->b, &sig_len, (const unsigned char *)msg,
                             msg_len, sk->b) != 0 ||
        sig_len != KZ_SIGN_SIG_LEN)
        goto err0;
    return 0;

err0:
    sodium_memzero(sig->b, sizeof(sig->b));
    return -KZ_ECRYPTO;
}

/** kz_sign_verify(sig, msg, msg_len, pk): 0 or -KZ_EAUTH. */
int
kz_sign_verify(const struct kz_sign_sig *sig, const void *msg, size_t msg_len,
               const struct kz_sign_pk *pk)
{
    if (crypto_sign_verify_detached(sig->b, (const unsigned char *)msg, msg_len,
                                    pk->b) != 0)
        return -KZ_EAUTH;
    return 0;
}

/* ---- X25519 ----------------------------------------------------------- */

/** kz_dh_keypair(env, pk, sk): a fresh X25519 key pair from ${env}. */
int
kz_dh_keypair(const struct kz_env *env, struct kz_dh_pk *pk,
              struct kz_dh_sk *sk)
{
    int rc;

    kz_env_random(env, sk->b, sizeof(sk->b));
    rc = kz_dh_public(pk, sk);
    if (rc != 0)
        goto err0;
    return 0;

err0:
    sodium_memzero(sk->b, sizeof(sk->b));
    return rc;
}

/** kz_dh_public(pk, sk): the public key of ${sk}. */
int
kz_dh_public(struct kz_dh_pk *pk, const struct kz_dh_sk *sk)
{
    if (crypto_scalarmult_curve25519_base(pk->b, sk->b) != 0) {
        sodium_memzero(pk->b, sizeof(pk->b));
        return -KZ_ECRYPTO;
    }
    return 0;
}

/** kz_dh(out, sk, pk): X25519; -KZ_ECRYPTO for a low-order ${pk}. */
int
kz_dh(struct kz_dh_shared *out, const struct kz_dh_sk *sk,
      const struct kz_dh_pk *pk)
{
    /*
     * libsodium returns -1 when the result is all zeros, which happens
     * exactly for the low-order points (and their non-canonical twins).  It
     * may leave ${out} untouched, so zero it ourselves.
     */
    if (crypto_scalarmult_curve25519(out->b, sk->b, pk->b) != 0) {
        sodium_memzero(out->b, sizeof(out->b));
        return -KZ_ECRYPTO;
    }
    return 0;
}

/* ---- AEAD ------------------------------------------------------------- */

/** kz_xaead_encrypt(…): XChaCha20-Poly1305 IETF encryption. */
int
kz_xaead_encrypt(uint8_t *ct, const uint8_t *pt, size_t pt_len,
                 const uint8_t *ad, size_t ad_len,
                 const uint8_t nonce[static 24], const struct kz_aead_key *key)
{
    unsigned long long ct_len = 0;

    if (pt_len > KZ_AEAD_MSG_MAX)
        return -KZ_EINVAL;
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(
            ct, &ct_len, pt, pt_len, ad, ad_len, NULL, nonce, key->b) != 0 ||
        ct_len != pt_len + KZ_AEAD_TAG_LEN)
        return -KZ_ECRYPTO;
    return 0;
}

/** kz_xaead_decrypt(…): verify, then decrypt; -KZ_EAUTH on a bad tag. */
int
kz_xaead_decrypt(uint8_t *pt, const uint8_t *ct, size_t ct_len,
                 const uint8_t *ad, size_t ad_len,
                 const uint8_t nonce[static 24], const struct kz_aead_key *key)
{
    unsigned long long pt_len = 0;

    if (ct_len < KZ_AEAD_TAG_LEN || ct_len > KZ_AEAD_MSG_MAX + KZ_AEAD_TAG_LEN)
        return -KZ_EMALFORMED;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            pt, &pt_len, NULL, ct, ct_len, ad, ad_len, nonce, key->b) != 0 ||
        pt_len != ct_len - KZ_AEAD_TAG_LEN) {
        kz_crypto_wipe(pt, ct_len - KZ_AEAD_TAG_LEN);
        return -KZ_EAUTH;
    }
    return 0;
}

/** kz_cpaead_encrypt(…): ChaCha20-Poly1305 IETF encryption. */
int
kz_cpaead_encrypt(uint8_t *ct, const uint8_t *pt, size_t pt_len,
                  const uint8_t *ad, size_t ad_len,
                  const uint8_t nonce[static 12], const struct kz_aead_key *key)
{
    unsigned long long ct_len = 0;

    if (pt_len > KZ_AEAD_MSG_MAX)
        return -KZ_EINVAL;
    if (crypto_aead_chacha20poly1305_ietf_encrypt(
            ct, &ct_len, pt, pt_len, ad, ad_len, NULL, nonce, key->b) != 0 ||
        ct_len != pt_len + KZ_AEAD_TAG_LEN)
        return -KZ_ECRYPTO;
    return 0;
}

/** kz_cpaead_decrypt(…): verify, then decrypt; -KZ_EAUTH on a bad tag. */
int
kz_cpaead_decrypt(uint8_t *pt, const uint8_t *ct, size_t ct_len,
                  const uint8_t *ad, size_t ad_len,
                  const uint8_t nonce[static 12], const struct kz_aead_key *key)
{
    unsigned long long pt_len = 0;

    if (ct_len < KZ_AEAD_TAG_LEN || ct_len > KZ_AEAD_MSG_MAX + KZ_AEAD_TAG_LEN)
        return -KZ_EMALFORMED;
    if (crypto_aead_chacha20poly1305_ietf_decrypt(
            pt, &pt_len, NULL, ct, ct_len, ad, ad_len, nonce, key->b) != 0 ||
        pt_len != ct_len - KZ_AEAD_TAG_LEN) {
        kz_crypto_wipe(pt, ct_len - KZ_AEAD_TAG_LEN);
        return -KZ_EAUTH;
    }
    return 0;
}

/* ---- Sealed boxes ----------------------------------------------------- */

/** kz_seal(ct, pt, pt_len, pk): crypto_box_seal to ${pk}. */
int
kz_seal(uint8_t *ct, const uint8_t *pt, size_t pt_len,
        const struct kz_dh_pk *pk)
{
    if (pt_len > KZ_AEAD_MSG_MAX)
        return -KZ_EINVAL;
    if (crypto_box_seal(ct, pt, pt_len, pk->b) != 0)
        return -KZ_ECRYPTO;
    return 0;
}

/** kz_seal_open(pt, ct, ct_len, pk, sk): opens a sealed box. */
int
kz_seal_open(uint8_t *pt, const uint8_t *ct, size_t ct_len,
             const struct kz_dh_pk *pk, const struct kz_dh_sk *sk)
{
    if (ct_len < KZ_SEAL_OVERHEAD ||
        ct_len > KZ_AEAD_MSG_MAX + KZ_SEAL_OVERHEAD)
        return -KZ_EMALFORMED;
    if (crypto_box_seal_open(pt, ct, ct_len, pk->b, sk->b) != 0) {
        kz_crypto_wipe(pt, ct_len - KZ_SEAL_OVERHEAD);
        return -KZ_EAUTH;
    }
    return 0;
}

/* ---- BLAKE2b ---------------------------------------------------------- */

/** kz_hash(out, out_len, msg, msg_len): unkeyed BLAKE2b. */
int
kz_hash(uint8_t *out, size_t out_len, const void *msg, size_t msg_len)
{
    if (out_len < KZ_HASH_MIN_LEN || out_len > KZ_HASH_MAX_LEN)
        return -KZ_EINVAL;
    if (crypto_generichash(out, out_len, (const unsigned char *)msg, msg_len,
                           NULL, 0) != 0)
        return -KZ_ECRYPTO;
    return 0;
}

/** kz_hash_keyed(out, out_len, msg, msg_len, key): keyed BLAKE2b. */
int
kz_hash_keyed(uint8_t *out, size_t out_len, const void *msg, size_t msg_len,
              const uint8_t key[static 32])
{
    if (out_len < KZ_HASH_MIN_LEN || out_len > KZ_HASH_MAX_LEN)
        return -KZ_EINVAL;
    if (crypto_generichash(out, out_len, (const unsigned char *)msg, msg_len,
                           key, 32) != 0)
        return -KZ_ECRYPTO;
    return 0;
}
