/*
 * join.c: join requests, admin key and server key texts (format: join.h;
 * PROTOCOL.md §Keys and join requests).
 *
 *     "kzjoin1." b64url([ body:bin(≤256), sig:bin(64) ])
 *     body = [ 1, name:str(1..64), site:str(1..32), sign_pk:bin(32),
 *              dh_pk:bin(32), created_ms:uint ]
 *     "kzadmin1."  b64url(32-byte Ed25519 pk)
 *     "kzserver1." b64url(32-byte X25519 pk)
 *
 * Decoding order for a join request: length cap, prefix, alphabet, strict
 * base64 (into a fixed stack buffer), the envelope, the body (bounded reads
 * into a fixed struct; nothing allocated), then the Ed25519 signature with
 * the body's own sign_pk.  The body has to be read before the signature can
 * be checked, because the key is in it (proof of possession); until the
 * check passes, the decoded fields are never returned.
 */
#include <string.h>

#include <sodium.h>

#include "alloc.h"
#include "changeset.h" /* struct kz_str */
#include "err.h"
#include "limits.h"
#include "mpk.h"
#include "roster.h"

#include "join.h"

#define JOIN_BODY_MAX 256u /* the longest valid body is 179 bytes */
#define JOIN_PREFIX_LEN 8u /* "kzjoin1." */
#define JOIN_BIN_MAX (KZ_LIM_JOIN_MAX / 4u * 3u + 3u)
#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

KZ_STATIC_ASSERT(sizeof(JOIN_PREFIX) - 1 == JOIN_PREFIX_LEN, "prefix");
KZ_STATIC_ASSERT(sizeof(ADMINKEY_PREFIX) - 1 + KEYTEXT_B64_LEN ==
                     ADMINKEY_TEXT_LEN,
                 "admin key text");
KZ_STATIC_ASSERT(sizeof(SERVERKEY_PREFIX) - 1 + KEYTEXT_B64_LEN ==
                     SERVERKEY_TEXT_LEN,
                 "server key text");

#define RD_FAIL(rd, code, why) kz_rd_fail((rd), (code), (why))

static int
b64_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/*
 * b64_decode(out, max, out_len, s, len): strict base64url of exactly ${len}
 * characters: alphabet checked first, then libsodium, which also refuses
 * non-zero unused bits; every character must be consumed.  0 or -1.
 */
static int
b64_decode(uint8_t *out, size_t max, size_t *out_len, const char *s, size_t len)
{
    const char *end = NULL;
    size_t i;

    *out_len = 0;
    if (len == 0)
        return -1;
    for (i = 0; i < len; i++)
        if (!b64_char(s[i]))
            return -1;
    if (sodium_base642bin(out, max, s, len, NULL, out_len, &end, B64) != 0 ||
        end != s + len)
        return -1;
    return 0;
}

/* rd_text(rd, max, out, valid, why): a str that ${valid} accepts. */
static void
rd_text(struct kz_rd *rd, uint32_t max, char *out, bool (*valid)(const char *),
        const char *why)
{
    struct kz_str s;

    if (kz_mpk_str(rd, max, &s) != 0)
        return;
    /* A NUL inside would hide the rest from ${valid} (a fuzz finding). */
    if (memchr(s.p, '\0', s.len) != NULL) {
        RD_FAIL(rd, -KZ_EMALFORMED, why);
        return;
    }
    memcpy(out, s.p, s.len);
    out[s.len] = '\0';
    if (!valid(out))
        RD_FAIL(rd, -KZ_EMALFORMED, why);
}

/**
 * join__decode_body(jr, p, len, why): a join body WITHOUT the signature
 * check; tests and fuzz targets only.
 */
int
join__decode_body(struct join_request *jr, const uint8_t *p, size_t len,
                  const char **why)
{
    struct kz_rd rd;
    uint64_t format;
    uint32_t n;

    memset(jr, 0, sizeof(*jr));
    kz_rd_init(&rd, p, len);
    if (len > JOIN_BODY_MAX)
        RD_FAIL(&rd, -KZ_ELIMIT, "join body too long");
    if (kz_mpk_array(&rd, KZ_LIM_COUNT_MAX, &n) == 0 && n == 0)
        RD_FAIL(&rd, -KZ_EMALFORMED, "empty join body");
    if (kz_mpk_uint(&rd, UINT64_MAX, &format) == 0) {
        if (format != JOIN_FORMAT)
            RD_FAIL(&rd, -KZ_EVERSION, "unsupported join request format");
        else if (n != 6)
            RD_FAIL(&rd, -KZ_EMALFORMED, "join body is not an array of 6");
    }
    rd_text(&rd, KZ_LIM_DEVICE_NAME_MAX, jr->name, roster_name_valid,
            "bad device name");
    rd_text(&rd, KZ_LIM_SITE_MAX, jr->site, roster_site_valid, "bad site code");
    (void)kz_mpk_bin_n(&rd, 32, jr->sign_pk.b, "sign_pk is not 32 bytes");
    (void)kz_mpk_bin_n(&rd, 32, jr->dh_pk.b, "dh_pk is not 32 bytes");
    (void)kz_mpk_uint(&rd, UINT64_MAX, &jr->created_ms);
    if (rd.err == 0 && rd.left != 0)
        RD_FAIL(&rd, -KZ_EMALFORMED, "trailing bytes after the join body");
    if (why != NULL)
        *why = rd.why;
    if (rd.err != 0)
        memset(jr, 0, sizeof(*jr));
    return rd.err;
}

/**
 * join_decode(jr, text, why): parses and verifies a join request text.
 * Returns 0, -KZ_ELIMIT, -KZ_EVERSION, -KZ_EMALFORMED, -KZ_EAUTH or
 * -KZ_EINVAL; *${jr} is zero on error.
 */
int
join_decode(struct join_request *jr, const char *text, const char **why)
{
    uint8_t bin[JOIN_BIN_MAX];
    struct kz_sign_sig sig;
    struct kz_rd rd;
    const uint8_t *body = NULL, *s = NULL;
    size_t text_len, bin_len, body_len = 0, s_len = 0;
    const char *w = NULL;
    uint32_t n;
    int rc;

    memset(jr, 0, sizeof(*jr));
    if (text == NULL) {
        w = "no join request";
        rc = -KZ_EINVAL;
        goto out;
    }
    text_len = strnlen(text, KZ_LIM_JOIN_MAX + 1);
    if (text_len > KZ_LIM_JOIN_MAX) {
        w = "join request too long";
        rc = -KZ_ELIMIT;
        goto out;
    }
    if (text_len < JOIN_PREFIX_LEN ||
        memcmp(text, JOIN_PREFIX, JOIN_PREFIX_LEN) != 0) {
        /* "kzjoin" + another version + "." reads as unsupported. */
        if (text_len > 7 && memcmp(text, "kzjoin", 6) == 0 && text[6] >= '0' &&
            text[6] <= '9' && memchr(text, '.', text_len) != NULL) {
            rc = -KZ_EVERSION;
            w = "unsupported join request version";
        } else {
            rc = -KZ_EMALFORMED;
            w = "not a join request (kzjoin1.…)";
        }
        goto out;
    }
    if (b64_decode(bin, sizeof(bin), &bin_len, text + JOIN_PREFIX_LEN,
                   text_len - JOIN_PREFIX_LEN) != 0) {
        w = "join request: bad base64url";
        rc = -KZ_EMALFORMED;
        goto out;
    }
    /* The envelope: [ body:bin, sig:bin(64) ], nothing after it. */
    kz_rd_init(&rd, bin, bin_len);
    if (kz_mpk_array(&rd, KZ_LIM_COUNT_MAX, &n) == 0 && n != 2)
        RD_FAIL(&rd, -KZ_EMALFORMED, "join request is not [body, sig]");
    (void)kz_mpk_bin(&rd, JOIN_BODY_MAX, &body, &body_len);
    if (kz_mpk_bin(&rd, KZ_SIGN_SIG_LEN, &s, &s_len) == 0 &&
        s_len != KZ_SIGN_SIG_LEN)
        RD_FAIL(&rd, -KZ_EMALFORMED, "signature is not 64 bytes");
    if (rd.err == 0 && rd.left != 0)
        RD_FAIL(&rd, -KZ_EMALFORMED, "trailing bytes after the join request");
    if ((rc = rd.err) != 0) {
        w = rd.why;
        goto out;
    }
    if ((rc = join__decode_body(jr, body, body_len, &w)) != 0)
        goto out;
    memcpy(sig.b, s, KZ_SIGN_SIG_LEN);
    if (kz_sign_verify(&sig, body, body_len, &jr->sign_pk) != 0) {
        w = "join request: bad signature";
        rc = -KZ_EAUTH;
        goto out;
    }
    rc = 0;
out:
    if (rc != 0)
        memset(jr, 0, sizeof(*jr));
    if (why != NULL)
        *why = w;
    return rc;
}

/**
 * join__encode_body(jr, out, len): the body of ${jr}; tests, fuzz targets
 * and join_encode.  Returns 0, -KZ_EINVAL or -KZ_ENOMEM.
 */
int
join__encode_body(const struct join_request *jr, uint8_t **out, size_t *len)
{
    struct kz_mpk_wr w;
    int rc;

    *out = NULL;
    *len = 0;
    if (strnlen(jr->name, sizeof(jr->name)) == sizeof(jr->name) ||
        strnlen(jr->site, sizeof(jr->site)) == sizeof(jr->site) ||
        !roster_name_valid(jr->name) || !roster_site_valid(jr->site))
        return -KZ_EINVAL;
    kz_mpk_wr_init(&w, JOIN_BODY_MAX);
    kz_mpk_wr_array(&w, 6);
    kz_mpk_wr_uint(&w, JOIN_FORMAT);
    kz_mpk_wr_str(&w, jr->name, strlen(jr->name));
    kz_mpk_wr_str(&w, jr->site, strlen(jr->site));
    kz_mpk_wr_bin(&w, jr->sign_pk.b, KZ_SIGN_PK_LEN);
    kz_mpk_wr_bin(&w, jr->dh_pk.b, KZ_DH_LEN);
    kz_mpk_wr_uint(&w, jr->created_ms);
    rc = kz_mpk_wr_finish(&w, out, len);
    return rc == -KZ_ELIMIT ? -KZ_EINVAL : rc; /* cannot happen: ≤ 179 */
}

/**
 * join_encode(jr, sign_sk, out): the signed text of ${jr}; *${out} is freed
 * with kz_free.  Returns 0, -KZ_EINVAL, -KZ_ECRYPTO or -KZ_ENOMEM.
 */
int
join_encode(const struct join_request *jr, const struct kz_sign_sk *sign_sk,
            char **out)
{
    struct kz_sign_pk pk;
    struct kz_sign_sk sk;
    struct kz_sign_sig sig;
    struct kz_mpk_wr w;
    uint8_t *body = NULL, *env = NULL;
    size_t body_len, env_len, text_len;
    char *text = NULL;
    int rc;

    *out = NULL;
    rc = kz_sign_seed_keypair(&pk, &sk, sign_sk->b);
    kz_crypto_wipe(&sk, sizeof(sk));
    if (rc != 0)
        return rc;
    if (!kz_crypto_eq(pk.b, jr->sign_pk.b, KZ_SIGN_PK_LEN))
        return -KZ_EINVAL;
    if ((rc = join__encode_body(jr, &body, &body_len)) != 0)
        return rc;
    if ((rc = kz_sign_detached(&sig, body, body_len, sign_sk)) != 0)
        goto out;
    kz_mpk_wr_init(&w, JOIN_BIN_MAX);
    kz_mpk_wr_array(&w, 2);
    kz_mpk_wr_bin(&w, body, body_len);
    kz_mpk_wr_bin(&w, sig.b, KZ_SIGN_SIG_LEN);
    if ((rc = kz_mpk_wr_finish(&w, &env, &env_len)) != 0)
        goto out;
    /* sodium_base64_ENCODED_LEN counts the NUL. */
    text_len = JOIN_PREFIX_LEN + sodium_base64_ENCODED_LEN(env_len, B64);
    if ((text = kz_malloc(text_len)) == NULL) {
        rc = -KZ_ENOMEM;
        goto out;
    }
    memcpy(text, JOIN_PREFIX, JOIN_PREFIX_LEN);
    if (sodium_bin2base64(text + JOIN_PREFIX_LEN, text_len - JOIN_PREFIX_LEN,
                          env, env_len, B64) == NULL) {
        rc = -KZ_ECRYPTO;
        goto out;
    }
    if (KZ_NEVER(strlen(text) > KZ_LIM_JOIN_MAX)) {
        rc = -KZ_EINVAL;
        goto out;
    }
    *out = text;
    text = NULL;
out:
    kz_free(text);
    kz_free(env);
    kz_free(body);
    return rc;
}

/* key_encode(out, prefix, plen, key): prefix + base64url(32 bytes). */
static int
key_encode(char *out, const char *prefix, size_t plen, const uint8_t *key)
{
    memcpy(out, prefix, plen);
    if (sodium_bin2base64(out + plen, KEYTEXT_B64_LEN + 1, key, 32, B64) ==
        NULL)
        return -KZ_ECRYPTO;
    return 0;
}

/* key_decode(key, text, prefix, plen): the strict inverse; 0 or -1. */
static int
key_decode(uint8_t key[static 32], const char *text, const char *prefix,
           size_t plen)
{
    size_t len, got;

    len = strnlen(text, plen + KEYTEXT_B64_LEN + 1);
    if (len != plen + KEYTEXT_B64_LEN || memcmp(text, prefix, plen) != 0)
        return -1;
    if (b64_decode(key, 32, &got, text + plen, KEYTEXT_B64_LEN) != 0 ||
        got != 32)
        return -1;
    return 0;
}

/** adminkey_encode(pk, out): "kzadmin1." + base64url(pk). */
int
adminkey_encode(const struct kz_sign_pk *pk,
                char out[static ADMINKEY_TEXT_LEN + 1])
{
    return key_encode(out, ADMINKEY_PREFIX, sizeof(ADMINKEY_PREFIX) - 1, pk->b);
}

/**
 * adminkey_decode(pk, text): strict inverse of adminkey_encode; refuses an
 * invalid or small-order Ed25519 point.  0, -KZ_EMALFORMED or -KZ_EINVAL.
 */
int
adminkey_decode(struct kz_sign_pk *pk, const char *text)
{
    memset(pk, 0, sizeof(*pk));
    if (text == NULL)
        return -KZ_EINVAL;
    if (key_decode(pk->b, text, ADMINKEY_PREFIX, sizeof(ADMINKEY_PREFIX) - 1) !=
            0 ||
        crypto_core_ed25519_is_valid_point(pk->b) != 1) {
        memset(pk, 0, sizeof(*pk));
        return -KZ_EMALFORMED;
    }
    return 0;
}

/** serverkey_encode(pk, out): "kzserver1." + base64url(pk). */
int
serverkey_encode(const struct kz_dh_pk *pk,
                 char out[static SERVERKEY_TEXT_LEN + 1])
{
    return key_encode(out, SERVERKEY_PREFIX, sizeof(SERVERKEY_PREFIX) - 1,
                      pk->b);
}

/**
 * serverkey_decode(pk, text): strict inverse of serverkey_encode; refuses
 * the all-zero key.  0, -KZ_EMALFORMED or -KZ_EINVAL.
 */
int
serverkey_decode(struct kz_dh_pk *pk, const char *text)
{
    memset(pk, 0, sizeof(*pk));
    if (text == NULL)
        return -KZ_EINVAL;
    if (key_decode(pk->b, text, SERVERKEY_PREFIX,
                   sizeof(SERVERKEY_PREFIX) - 1) != 0 ||
        sodium_is_zero(pk->b, KZ_DH_LEN)) {
        memset(pk, 0, sizeof(*pk));
        return -KZ_EMALFORMED;
    }
    return 0;
}
