/*
 * seal.c: sealed changeset bodies and signed key envelopes (see seal.h).
 */
#include <string.h>

#include <sodium.h>

#include "alloc.h"
#include "changeset.h"
#include "err.h"
#include "mpk.h"
#include "rd.h"

#include "seal.h"

int
kz_seal_body(uint8_t **out, size_t *out_len, const uint8_t *body, size_t len,
             const uint8_t *hdr, size_t hdr_len, const struct kz_aead_key *key,
             const struct kz_env *env)
{
    uint8_t nonce[KZ_SEAL_NONCE_LEN];

    kz_env_random(env, nonce, sizeof(nonce));
    return kz_seal_body_nonce(out, out_len, body, len, hdr, hdr_len, key,
                              nonce);
}

int
kz_seal_body_nonce(uint8_t **out, size_t *out_len, const uint8_t *body,
                   size_t len, const uint8_t *hdr, size_t hdr_len,
                   const struct kz_aead_key *key,
                   const uint8_t nonce[KZ_SEAL_NONCE_LEN])
{
    uint8_t *p;
    int err;

    *out = NULL;
    *out_len = 0;
    if (len > SIZE_MAX - KZ_SEAL_BODY_OVERHEAD)
        return -KZ_EINVAL;
    p = kz_malloc(len + KZ_SEAL_BODY_OVERHEAD);
    if (p == NULL)
        return -KZ_ENOMEM;
    memcpy(p, nonce, KZ_SEAL_NONCE_LEN);
    err = kz_xaead_encrypt(p + KZ_SEAL_NONCE_LEN, body, len, hdr, hdr_len, p,
                           key);
    if (err) {
        kz_free(p);
        return err;
    }
    *out = p;
    *out_len = len + KZ_SEAL_BODY_OVERHEAD;
    return 0;
}

int
kz_open_body(uint8_t **out, size_t *out_len, const uint8_t *sealed, size_t len,
             const uint8_t *hdr, size_t hdr_len, const struct kz_aead_key *key)
{
    uint8_t *p;
    size_t n;
    int err;

    *out = NULL;
    *out_len = 0;
    if (len < KZ_SEAL_BODY_OVERHEAD)
        return -KZ_EMALFORMED;
    n = len - KZ_SEAL_BODY_OVERHEAD;
    p = kz_malloc(n ? n : 1);
    if (p == NULL)
        return -KZ_ENOMEM;
    err = kz_xaead_decrypt(p, sealed + KZ_SEAL_NONCE_LEN,
                           len - KZ_SEAL_NONCE_LEN, hdr, hdr_len, sealed, key);
    if (err) {
        kz_free(p);
        return err == -KZ_EINVAL ? -KZ_EMALFORMED : -KZ_EAUTH;
    }
    *out = p;
    *out_len = n;
    return 0;
}

/* hdr ‖ body in one buffer (Ed25519 signs one contiguous message). */
static uint8_t *
concat(const uint8_t *hdr, size_t hdr_len, const uint8_t *body, size_t body_len)
{
    uint8_t *p;

    if (body_len > SIZE_MAX - hdr_len - 1)
        return NULL;
    p = kz_malloc(hdr_len + body_len + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, hdr, hdr_len);
    if (body_len)
        memcpy(p + hdr_len, body, body_len);
    return p;
}

int
kz_cs_sign(struct kz_sign_sig *sig, const uint8_t *hdr, size_t hdr_len,
           const uint8_t *body, size_t body_len, const struct kz_sign_sk *sk)
{
    uint8_t *p = concat(hdr, hdr_len, body, body_len);
    int err;

    if (p == NULL)
        return -KZ_ENOMEM;
    err = kz_sign_detached(sig, p, hdr_len + body_len, sk);
    kz_free(p);
    return err;
}

int
kz_cs_verify(const uint8_t sig[64], const uint8_t *hdr, size_t hdr_len,
             const uint8_t *body, size_t body_len, const uint8_t author[32])
{
    uint8_t *p = concat(hdr, hdr_len, body, body_len);
    int rc;

    if (p == NULL)
        return -KZ_ENOMEM;
    rc = crypto_sign_verify_detached(sig, p, hdr_len + body_len, author);
    kz_free(p);
    return rc == 0 ? 0 : -KZ_EAUTH;
}

int
kz_env_make(uint8_t **out, size_t *out_len, const char *scope, uint64_t epoch,
            const struct kz_aead_key *key, const struct kz_dh_pk *recipient,
            const struct kz_sign_sk *sealer_sk,
            const struct kz_sign_pk *sealer_pk)
{
    struct kz_mpk_wr body, env;
    struct kz_sign_sig sig;
    uint8_t sealed[KZ_ENV_SEALED_LEN];
    uint8_t *b = NULL;
    size_t b_len = 0, slen = strlen(scope);
    int err;

    *out = NULL;
    *out_len = 0;
    if (slen == 0 || slen > KZ_LIM_NAME_MAX || epoch == 0)
        return -KZ_EINVAL;
    if ((err = kz_seal(sealed, key->b, sizeof(key->b), recipient)))
        return err;
    kz_mpk_wr_init(&body, 1024);
    kz_mpk_wr_array(&body, 6);
    kz_mpk_wr_uint(&body, KZ_ENV_FORMAT);
    kz_mpk_wr_str(&body, scope, slen);
    kz_mpk_wr_uint(&body, epoch);
    kz_mpk_wr_bin(&body, recipient->b, sizeof(recipient->b));
    kz_mpk_wr_bin(&body, sealer_pk->b, sizeof(sealer_pk->b));
    kz_mpk_wr_bin(&body, sealed, sizeof(sealed));
    if ((err = kz_mpk_wr_finish(&body, &b, &b_len)))
        return err;
    if ((err = kz_sign_detached(&sig, b, b_len, sealer_sk))) {
        kz_free(b);
        return err;
    }
    kz_mpk_wr_init(&env, 2048);
    kz_mpk_wr_array(&env, 2);
    kz_mpk_wr_bin(&env, b, b_len);
    kz_mpk_wr_bin(&env, sig.b, sizeof(sig.b));
    kz_free(b);
    return kz_mpk_wr_finish(&env, out, out_len);
}

int
kz_env_decode(struct kz_env_info *info, const uint8_t *p, size_t len,
              const char **why)
{
    struct kz_rd r, b;
    const uint8_t *body = NULL, *sig = NULL;
    size_t body_len = 0, sig_len = 0;
    struct kz_str scope;
    uint32_t n = 0;
    uint64_t fmt = 0;
    const char *w = "malformed envelope";
    int err = -KZ_EMALFORMED;

    memset(info, 0, sizeof(*info));
    kz_rd_init(&r, p, len);
    if (kz_mpk_array(&r, 2, &n) || n != 2 ||
        kz_mpk_bin(&r, KZ_LIM_KEY_ENV_MAX, &body, &body_len) ||
        kz_mpk_bin(&r, 64, &sig, &sig_len) || sig_len != 64 || r.left != 0)
        goto fail;
    kz_rd_init(&b, body, body_len);
    if (kz_mpk_array(&b, 6, &n) || n != 6 || kz_mpk_uint(&b, 255, &fmt))
        goto fail;
    if (fmt != KZ_ENV_FORMAT) {
        err = -KZ_EVERSION;
        w = "unknown envelope format";
        goto fail;
    }
    if (kz_mpk_str(&b, KZ_LIM_NAME_MAX, &scope) || scope.len == 0 ||
        memchr(scope.p, 0, scope.len) != NULL ||
        kz_mpk_uint(&b, UINT64_MAX, &info->epoch) || info->epoch == 0)
        goto fail;
    memcpy(info->scope, scope.p, scope.len);
    info->scope[scope.len] = '\0';
    if (kz_mpk_bin_n(&b, 32, info->recipient.b, "bad recipient") ||
        kz_mpk_bin_n(&b, 32, info->sealer.b, "bad sealer") ||
        kz_mpk_bin_n(&b, KZ_ENV_SEALED_LEN, info->sealed, "bad sealed key") ||
        b.left != 0)
        goto fail;
    if (crypto_sign_verify_detached(sig, body, body_len, info->sealer.b) != 0) {
        err = -KZ_EAUTH;
        w = "the envelope's signature does not verify";
        goto fail;
    }
    if (why)
        *why = NULL;
    return 0;
fail:
    memset(info, 0, sizeof(*info));
    if (why)
        *why = w;
    return err;
}

int
kz_env_open(struct kz_aead_key *key, const struct kz_env_info *info,
            const struct kz_dh_pk *pk, const struct kz_dh_sk *sk)
{
    if (sodium_memcmp(info->recipient.b, pk->b, sizeof(pk->b)) != 0)
        return -KZ_EINVAL;
    if (kz_seal_open(key->b, info->sealed, sizeof(info->sealed), pk, sk) != 0) {
        sodium_memzero(key, sizeof(*key));
        return -KZ_EAUTH;
    }
    return 0;
}
