/*
 * noise.c: the Noise Protocol Framework, revision 34 (noiseprotocol.org).
 *
 * Layers, bottom up, as in the spec's section 5:
 *
 *   hash_*        HASH over BLAKE2b / SHA256 / SHA512 (libsodium)
 *   hmac()        HMAC built by hand (RFC 2104): BLOCKLEN 128 for BLAKE2b
 *                 and SHA512, 64 for SHA256.  BLAKE2b's keyed mode is NOT
 *                 HMAC and would not interoperate.
 *   hkdf()        HKDF(chaining_key, ikm, 2 or 3) as Noise defines it
 *   cs_*          CipherState: k, n; nonce = 4 zero bytes ‖ LE64(n);
 *                 ChaChaPoly = ChaCha20-Poly1305 IETF
 *   ss_*          SymmetricState: ck, h, CipherState
 *   kz_noise_*    HandshakeState driven by a token table (PATTERNS below)
 *
 * Messages are parsed with the bounded reader (common/rd.h); the expected
 * size of every field is known from the token list before any byte is
 * touched, so a short or long message is refused up front.  Every failure
 * on peer data poisons the state: the secrets are wiped and every later
 * call returns the first error.
 */
#include <assert.h>
#include <string.h>

#include <sodium.h>

#include "alloc.h"
#include "crypto.h"
#include "err.h"
#include "rd.h"

#include "noise.h"

#define NOISE_MAGIC 0x4e4f4953u    /* "NOIS": struct kz_noise */
#define NOISE_CS_MAGIC 0x4e4f4943u /* "NOIC": struct kz_noise_cs */
#define MAX_MSGS 4u                /* messages in the longest pattern */
#define MAX_TOKS 8u                /* tokens in one message, psk included */
#define KEY_LEN 32u                /* cipher key, DH key */
#define BLOCK_MAX 128u             /* largest hash BLOCKLEN */

KZ_STATIC_ASSERT(KZ_NOISE_TAG_LEN == KZ_AEAD_TAG_LEN, "tag length");

/* ---- Pattern table ---------------------------------------------------- */

/*
 * Tokens.  DH tokens name (initiator key, responder key): "es" is
 * DH(initiator e, responder s).
 */
enum tok { T_NONE = 0, T_E, T_S, T_EE, T_ES, T_SE, T_SS, T_PSK };

struct pattern {
    const char *name;           /* "XX" */
    const char *pre_i;          /* initiator's pre-message: "" or "s" */
    const char *pre_r;          /* responder's pre-message: "" or "s" */
    const char *msgs[MAX_MSGS]; /* tokens of each message, NULL after last */
};

/* Sections 7.2-7.5 of the spec: one-way, fundamental and deferred. */
static const struct pattern PATTERNS[] = {
    {"N", "", "s", {"e es"}},
    {"K", "s", "s", {"e es ss"}},
    {"X", "", "s", {"e es s ss"}},
    {"NN", "", "", {"e", "e ee"}},
    {"NK", "", "s", {"e es", "e ee"}},
    {"NX", "", "", {"e", "e ee s es"}},
    {"XN", "", "", {"e", "e ee", "s se"}},
    {"XK", "", "s", {"e es", "e ee", "s se"}},
    {"XX", "", "", {"e", "e ee s es", "s se"}},
    {"KN", "s", "", {"e", "e ee se"}},
    {"KK", "s", "s", {"e es ss", "e ee se"}},
    {"KX", "s", "", {"e", "e ee se s es"}},
    {"IN", "", "", {"e s", "e ee se"}},
    {"IK", "", "s", {"e es s ss", "e ee se"}},
    {"IX", "", "", {"e s", "e ee se s es"}},
    {"NK1", "", "s", {"e", "e ee es"}},
    {"NX1", "", "", {"e", "e ee s", "es"}},
    {"X1N", "", "", {"e", "e ee", "s", "se"}},
    {"X1K", "", "s", {"e es", "e ee", "s", "se"}},
    {"XK1", "", "s", {"e", "e ee es", "s se"}},
    {"X1K1", "", "s", {"e", "e ee es", "s", "se"}},
    {"X1X", "", "", {"e", "e ee s es", "s", "se"}},
    {"XX1", "", "", {"e", "e ee s", "es s se"}},
    {"X1X1", "", "", {"e", "e ee s", "es s", "se"}},
    {"K1N", "s", "", {"e", "e ee", "se"}},
    {"K1K", "s", "s", {"e es", "e ee", "se"}},
    {"KK1", "s", "s", {"e", "e ee se es"}},
    {"K1K1", "s", "s", {"e", "e ee es", "se"}},
    {"K1X", "s", "", {"e", "e ee s es", "se"}},
    {"KX1", "s", "", {"e", "e ee se s", "es"}},
    {"K1X1", "s", "", {"e", "e ee s", "se es"}},
    {"I1N", "", "", {"e s", "e ee", "se"}},
    {"I1K", "", "s", {"e es s", "e ee", "se"}},
    {"IK1", "", "s", {"e s", "e ee se es"}},
    {"I1K1", "", "s", {"e s", "e ee es", "se"}},
    {"I1X", "", "", {"e s", "e ee s es", "se"}},
    {"IX1", "", "", {"e s", "e ee se s", "es"}},
    {"I1X1", "", "", {"e s", "e ee s", "se es"}},
};

/* ---- Hash functions --------------------------------------------------- */

enum hash_id { H_BLAKE2B, H_SHA256, H_SHA512 };

struct hash_alg {
    const char *name; /* "BLAKE2b" as in protocol names */
    enum hash_id id;  /* which libsodium primitive */
    size_t len;       /* HASHLEN */
    size_t block;     /* BLOCKLEN for HMAC */
};

static const struct hash_alg HASHES[] = {
    {"BLAKE2b", H_BLAKE2B, 64, 128},
    {"SHA256", H_SHA256, 32, 64},
    {"SHA512", H_SHA512, 64, 128},
};

union hash_st {
    crypto_generichash_state b2;   /* BLAKE2b, 64-byte output */
    crypto_hash_sha256_state s256; /* SHA-256 */
    crypto_hash_sha512_state s512; /* SHA-512 */
};

/* ---- Private structs -------------------------------------------------- */

struct cstate {
    struct kz_aead_key k; /* cipher key; secret; valid if has_k */
    uint64_t n;           /* next nonce; UINT64_MAX is reserved */
    int has_k;            /* 0 while k is "empty" */
};

struct sstate {
    const struct hash_alg *hash;   /* the suite's hash */
    uint8_t ck[KZ_NOISE_HASH_MAX]; /* chaining key; secret */
    uint8_t h[KZ_NOISE_HASH_MAX];  /* handshake hash */
    struct cstate cs;              /* the handshake CipherState */
};

struct kz_noise {
    uint32_t magic;                   /* NOISE_MAGIC */
    enum kz_noise_next next;          /* what happens next (noise.h diagram) */
    int err;                          /* sticky: 0 or the poisoning error */
    int initiator;                    /* 1 if we are the initiator */
    int psk_mode;                     /* any psk token: e also does MixKey */
    size_t n_msgs;                    /* handshake messages */
    size_t msg_idx;                   /* index of the next message */
    uint8_t toks[MAX_MSGS][MAX_TOKS]; /* enum tok per message */
    size_t n_toks[MAX_MSGS];          /* tokens per message */
    struct sstate ss;                 /* SymmetricState */
    struct kz_dh_sk s;                /* local static; secret */
    struct kz_dh_pk s_pub;            /* its public key */
    int has_s;                        /* s is set */
    struct kz_dh_sk e;                /* local ephemeral; secret */
    struct kz_dh_pk e_pub;            /* its public key */
    int has_e;                        /* e is set */
    struct kz_dh_sk e_fixed;          /* injected ephemeral (tests); secret */
    int has_e_fixed;                  /* e_fixed is set and unused */
    struct kz_dh_pk rs;               /* peer's static */
    int has_rs;                       /* rs is set */
    struct kz_dh_pk re;               /* peer's ephemeral */
    int has_re;                       /* re is set */
    struct kz_noise_psk psks[KZ_NOISE_PSK_MAX]; /* PSKs in token order */
    size_t n_psks;                              /* PSKs given */
    size_t psk_idx;                             /* next PSK to use */
    const struct kz_env *env;                   /* randomness; borrowed */
};

struct kz_noise_cs {
    uint32_t magic;  /* NOISE_CS_MAGIC */
    int err;         /* sticky: 0 or the poisoning error */
    struct cstate c; /* key and nonce */
};

/* ---- Hash, HMAC, HKDF ------------------------------------------------- */

static int
hash_init(const struct hash_alg *a, union hash_st *st)
{
    switch (a->id) {
    case H_BLAKE2B: return crypto_generichash_init(&st->b2, NULL, 0, a->len);
    case H_SHA256: return crypto_hash_sha256_init(&st->s256);
    case H_SHA512: return crypto_hash_sha512_init(&st->s512);
    }
    return -1;
}

static int
hash_update(const struct hash_alg *a, union hash_st *st, const uint8_t *p,
            size_t len)
{
    if (len == 0)
        return 0;
    switch (a->id) {
    case H_BLAKE2B: return crypto_generichash_update(&st->b2, p, len);
    case H_SHA256: return crypto_hash_sha256_update(&st->s256, p, len);
    case H_SHA512: return crypto_hash_sha512_update(&st->s512, p, len);
    }
    return -1;
}

static int
hash_final(const struct hash_alg *a, union hash_st *st, uint8_t *out)
{
    switch (a->id) {
    case H_BLAKE2B: return crypto_generichash_final(&st->b2, out, a->len);
    case H_SHA256: return crypto_hash_sha256_final(&st->s256, out);
    case H_SHA512: return crypto_hash_sha512_final(&st->s512, out);
    }
    return -1;
}

/*
 * hash2(a, out, p1, n1, p2, n2): HASH(p1 ‖ p2) into ${out} (HASHLEN bytes).
 * Returns 0 or -KZ_ECRYPTO.
 */
static int
hash2(const struct hash_alg *a, uint8_t *out, const uint8_t *p1, size_t n1,
      const uint8_t *p2, size_t n2)
{
    union hash_st st;
    int rc = -KZ_ECRYPTO;

    if (hash_init(a, &st) != 0 || hash_update(a, &st, p1, n1) != 0 ||
        hash_update(a, &st, p2, n2) != 0 || hash_final(a, &st, out) != 0)
        goto out;
    rc = 0;
out:
    sodium_memzero(&st, sizeof(st));
    return rc;
}

/*
 * hmac(a, out, key, key_len, p1, n1, p2, n2): HMAC-HASH(key, p1 ‖ p2), built
 * from the hash as in RFC 2104 with BLOCKLEN-byte pads.  Noise only uses
 * keys of HASHLEN bytes, which are never longer than a block.
 */
static int
hmac(const struct hash_alg *a, uint8_t *out, const uint8_t *key, size_t key_len,
     const uint8_t *p1, size_t n1, const uint8_t *p2, size_t n2)
{
    uint8_t pad[BLOCK_MAX];
    uint8_t inner[KZ_NOISE_HASH_MAX];
    union hash_st st;
    size_t i;
    int rc = -KZ_ECRYPTO;

    if (KZ_NEVER(key_len > a->block))
        goto out;
    memset(pad, 0, sizeof(pad));
    memcpy(pad, key, key_len);
    for (i = 0; i < a->block; i++)
        pad[i] ^= 0x36;
    if (hash_init(a, &st) != 0 || hash_update(a, &st, pad, a->block) != 0 ||
        hash_update(a, &st, p1, n1) != 0 || hash_update(a, &st, p2, n2) != 0 ||
        hash_final(a, &st, inner) != 0)
        goto out;
    for (i = 0; i < a->block; i++)
        pad[i] ^= 0x36 ^ 0x5c;
    if (hash_init(a, &st) != 0 || hash_update(a, &st, pad, a->block) != 0 ||
        hash_update(a, &st, inner, a->len) != 0 || hash_final(a, &st, out) != 0)
        goto out;
    rc = 0;
out:
    sodium_memzero(pad, sizeof(pad));
    sodium_memzero(inner, sizeof(inner));
    sodium_memzero(&st, sizeof(st));
    return rc;
}

/*
 * hkdf(a, ck, ikm, ikm_len, o1, o2, o3): Noise's HKDF.  temp_key =
 * HMAC(ck, ikm); o1 = HMAC(temp_key, 0x01); o2 = HMAC(temp_key, o1 ‖ 0x02);
 * o3 = HMAC(temp_key, o2 ‖ 0x03) when ${o3} is not NULL.  Each output is
 * HASHLEN bytes.  ${o1} may alias ${ck}.
 */
static int
hkdf(const struct hash_alg *a, const uint8_t *ck, const uint8_t *ikm,
     size_t ikm_len, uint8_t *o1, uint8_t *o2, uint8_t *o3)
{
    static const uint8_t one = 1, two = 2, three = 3;
    uint8_t tk[KZ_NOISE_HASH_MAX];
    int rc = -KZ_ECRYPTO;

    if (hmac(a, tk, ck, a->len, ikm, ikm_len, NULL, 0) != 0 ||
        hmac(a, o1, tk, a->len, &one, 1, NULL, 0) != 0 ||
        hmac(a, o2, tk, a->len, o1, a->len, &two, 1) != 0)
        goto out;
    if (o3 != NULL && hmac(a, o3, tk, a->len, o2, a->len, &three, 1) != 0)
        goto out;
    rc = 0;
out:
    sodium_memzero(tk, sizeof(tk));
    return rc;
}

/* ---- CipherState ------------------------------------------------------ */

static void
cs_init_key(struct cstate *c, const uint8_t key[static 32])
{
    memcpy(c->k.b, key, KEY_LEN);
    c->n = 0;
    c->has_k = 1;
}

static void
cs_nonce(uint8_t nonce[static 12], uint64_t n)
{
    size_t i;

    memset(nonce, 0, 4);
    for (i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

/*
 * cs_encrypt(c, ad, ad_len, pt, len, out): EncryptWithAd.  Without a key the
 * plaintext is copied.  ${out} gets len (+ 16 with a key) bytes and may
 * equal ${pt}.  Returns 0, -KZ_ELIMIT (nonce exhausted) or -KZ_ECRYPTO.
 */
static int
cs_encrypt(struct cstate *c, const uint8_t *ad, size_t ad_len,
           const uint8_t *pt, size_t len, uint8_t *out)
{
    uint8_t nonce[KZ_CPAEAD_NONCE_LEN];
    int rc;

    if (!c->has_k) {
        if (len > 0 && out != pt)
            memmove(out, pt, len);
        return 0;
    }
    if (c->n == UINT64_MAX)
        return -KZ_ELIMIT;
    cs_nonce(nonce, c->n);
    rc = kz_cpaead_encrypt(out, pt, len, ad, ad_len, nonce, &c->k);
    if (rc != 0)
        return rc;
    c->n++;
    return 0;
}

/*
 * cs_decrypt(c, ad, ad_len, ct, len, out): DecryptWithAd.  With a key,
 * ${len} ≥ 16 and ${out} gets len - 16 bytes.  The nonce advances only on
 * success.  Returns 0, -KZ_ELIMIT, -KZ_EMALFORMED or -KZ_EAUTH.
 */
static int
cs_decrypt(struct cstate *c, const uint8_t *ad, size_t ad_len,
           const uint8_t *ct, size_t len, uint8_t *out)
{
    uint8_t nonce[KZ_CPAEAD_NONCE_LEN];
    int rc;

    if (!c->has_k) {
        if (len > 0 && out != ct)
            memmove(out, ct, len);
        return 0;
    }
    if (c->n == UINT64_MAX)
        return -KZ_ELIMIT;
    cs_nonce(nonce, c->n);
    rc = kz_cpaead_decrypt(out, ct, len, ad, ad_len, nonce, &c->k);
    if (rc != 0)
        return rc;
    c->n++;
    return 0;
}

/* ---- SymmetricState --------------------------------------------------- */

/* ss_init(ss, a, name): InitializeSymmetric(protocol_name). */
static int
ss_init(struct sstate *ss, const struct hash_alg *a, const char *name)
{
    size_t len = strlen(name);

    memset(ss, 0, sizeof(*ss));
    ss->hash = a;
    if (len <= a->len) {
        memcpy(ss->h, name, len);
    } else if (hash2(a, ss->h, (const uint8_t *)name, len, NULL, 0) != 0) {
        return -KZ_ECRYPTO;
    }
    memcpy(ss->ck, ss->h, a->len);
    return 0;
}

/* ss_mix_hash(ss, p, len): h = HASH(h ‖ p). */
static int
ss_mix_hash(struct sstate *ss, const uint8_t *p, size_t len)
{
    return hash2(ss->hash, ss->h, ss->h, ss->hash->len, p, len);
}

/* ss_mix_key(ss, ikm, len): ck, temp_k = HKDF(ck, ikm, 2); InitializeKey. */
static int
ss_mix_key(struct sstate *ss, const uint8_t *ikm, size_t len)
{
    uint8_t tk[KZ_NOISE_HASH_MAX];
    int rc;

    rc = hkdf(ss->hash, ss->ck, ikm, len, ss->ck, tk, NULL);
    if (rc == 0)
        cs_init_key(&ss->cs, tk); /* truncated to 32 bytes */
    sodium_memzero(tk, sizeof(tk));
    return rc;
}

/* ss_mix_key_and_hash(ss, ikm, len): ck, temp_h, temp_k = HKDF(…, 3). */
static int
ss_mix_key_and_hash(struct sstate *ss, const uint8_t *ikm, size_t len)
{
    uint8_t th[KZ_NOISE_HASH_MAX];
    uint8_t tk[KZ_NOISE_HASH_MAX];
    int rc;

    rc = hkdf(ss->hash, ss->ck, ikm, len, ss->ck, th, tk);
    if (rc == 0)
        rc = ss_mix_hash(ss, th, ss->hash->len);
    if (rc == 0)
        cs_init_key(&ss->cs, tk);
    sodium_memzero(th, sizeof(th));
    sodium_memzero(tk, sizeof(tk));
    return rc;
}

/* ss_encrypt_and_hash(ss, pt, len, out): out = Encrypt(h, pt); MixHash. */
static int
ss_encrypt_and_hash(struct sstate *ss, const uint8_t *pt, size_t len,
                    uint8_t *out)
{
    size_t out_len = len + (ss->cs.has_k ? KZ_NOISE_TAG_LEN : 0);
    int rc;

    rc = cs_encrypt(&ss->cs, ss->h, ss->hash->len, pt, len, out);
    if (rc == 0)
        rc = ss_mix_hash(ss, out, out_len);
    return rc;
}

/*
 * ss_decrypt_and_hash(ss, ct, len, out): out = Decrypt(h, ct); MixHash(ct).
 * The new h is computed before decrypting so that ${out} may alias ${ct}.
 */
static int
ss_decrypt_and_hash(struct sstate *ss, const uint8_t *ct, size_t len,
                    uint8_t *out)
{
    uint8_t h2[KZ_NOISE_HASH_MAX];
    int rc;

    rc = hash2(ss->hash, h2, ss->h, ss->hash->len, ct, len);
    if (rc == 0)
        rc = cs_decrypt(&ss->cs, ss->h, ss->hash->len, ct, len, out);
    if (rc == 0)
        memcpy(ss->h, h2, ss->hash->len);
    sodium_memzero(h2, sizeof(h2));
    return rc;
}

/* ---- HandshakeState helpers ------------------------------------------- */

/* wipe_secrets(hs): everything secret except h, which is public. */
static void
wipe_secrets(struct kz_noise *hs)
{
    sodium_memzero(hs->ss.ck, sizeof(hs->ss.ck));
    sodium_memzero(&hs->ss.cs, sizeof(hs->ss.cs));
    sodium_memzero(&hs->s, sizeof(hs->s));
    sodium_memzero(&hs->e, sizeof(hs->e));
    sodium_memzero(&hs->e_fixed, sizeof(hs->e_fixed));
    sodium_memzero(hs->psks, sizeof(hs->psks));
    hs->has_e_fixed = 0;
}

/* poison(hs, rc): makes ${rc} final for ${hs}; returns ${rc}. */
static int
poison(struct kz_noise *hs, int rc)
{
    if (hs->err == 0)
        hs->err = rc;
    hs->next = KZ_NOISE_FAILED;
    wipe_secrets(hs);
    sodium_memzero(hs->ss.h, sizeof(hs->ss.h));
    return hs->err;
}

/* turn(hs): WRITE or READ for message msg_idx, or SPLIT after the last. */
static enum kz_noise_next
turn(const struct kz_noise *hs)
{
    int ours;

    if (hs->msg_idx >= hs->n_msgs)
        return KZ_NOISE_SPLIT;
    ours = (hs->msg_idx % 2 == 0) == (hs->initiator != 0);
    return ours ? KZ_NOISE_WRITE : KZ_NOISE_READ;
}

/* parse_tokens(s, toks, max, n): "e ee s es" → enum tok; -KZ_EINVAL. */
static int
parse_tokens(const char *s, uint8_t *toks, size_t max, size_t *n)
{
    static const struct {
        const char *name;
        enum tok t;
    } names[] = {{"e", T_E},   {"s", T_S},   {"ee", T_EE},  {"es", T_ES},
                 {"se", T_SE}, {"ss", T_SS}, {"psk", T_PSK}};
    size_t i, len;

    *n = 0;
    while (*s != '\0') {
        while (*s == ' ')
            s++;
        if (*s == '\0')
            break;
        len = strcspn(s, " ");
        for (i = 0; i < KZ_ARRAY_SIZE(names); i++) {
            if (strlen(names[i].name) == len &&
                memcmp(names[i].name, s, len) == 0)
                break;
        }
        if (i == KZ_ARRAY_SIZE(names) || *n >= max)
            return -KZ_EINVAL;
        toks[(*n)++] = (uint8_t)names[i].t;
        s += len;
    }
    return 0;
}

/*
 * parse_name(hs, name, hash, pat): splits
 * "Noise_<pattern><mods>_25519_ChaChaPoly_<hash>", fills hs->toks with the
 * pattern's tokens plus the psk modifiers.  Returns 0 or -KZ_EINVAL.
 */
static int
parse_name(struct kz_noise *hs, const char *name, const struct hash_alg **hash,
           const struct pattern **pat)
{
    char buf[KZ_NOISE_NAME_MAX + 1];
    char *fields[5];
    char *p, *mods;
    size_t i, nf = 0, len = strlen(name), base_len;
    const struct pattern *pt = NULL;
    unsigned seen = 0;

    if (len > KZ_NOISE_NAME_MAX)
        return -KZ_EINVAL;
    memcpy(buf, name, len + 1);
    for (p = buf; nf < 5; nf++) {
        fields[nf] = p;
        p = strchr(p, '_');
        if (p == NULL) {
            nf++;
            break;
        }
        *p++ = '\0';
    }
    if (nf != 5 || p != NULL || strcmp(fields[0], "Noise") != 0 ||
        strcmp(fields[2], "25519") != 0 || strcmp(fields[3], "ChaChaPoly") != 0)
        return -KZ_EINVAL;
    *hash = NULL;
    for (i = 0; i < KZ_ARRAY_SIZE(HASHES); i++)
        if (strcmp(fields[4], HASHES[i].name) == 0)
            *hash = &HASHES[i];
    if (*hash == NULL)
        return -KZ_EINVAL;

    mods = strstr(fields[1], "psk");
    base_len = mods ? (size_t)(mods - fields[1]) : strlen(fields[1]);
    for (i = 0; i < KZ_ARRAY_SIZE(PATTERNS); i++) {
        if (strlen(PATTERNS[i].name) == base_len &&
            memcmp(PATTERNS[i].name, fields[1], base_len) == 0)
            pt = &PATTERNS[i];
    }
    if (pt == NULL)
        return -KZ_EINVAL;
    *pat = pt;
    for (hs->n_msgs = 0; hs->n_msgs < MAX_MSGS && pt->msgs[hs->n_msgs];
         hs->n_msgs++) {
        if (parse_tokens(pt->msgs[hs->n_msgs], hs->toks[hs->n_msgs], MAX_TOKS,
                         &hs->n_toks[hs->n_msgs]) != 0)
            return -KZ_EINVAL;
    }

    /* Modifiers: "psk0+psk2".  psk0 goes first in message 0, pskN last in
     * message N-1 (section 9.2). */
    while (mods != NULL && *mods != '\0') {
        size_t m, k;

        if (strncmp(mods, "psk", 3) != 0 || mods[3] < '0' || mods[3] > '9' ||
            (mods[4] != '\0' && mods[4] != '+'))
            return -KZ_EINVAL;
        k = (size_t)(mods[3] - '0');
        if (k > hs->n_msgs || (seen & (1u << k)) != 0)
            return -KZ_EINVAL;
        seen |= 1u << k;
        m = k == 0 ? 0 : k - 1;
        if (hs->n_toks[m] >= MAX_TOKS)
            return -KZ_EINVAL;
        if (k == 0) {
            memmove(&hs->toks[m][1], &hs->toks[m][0], hs->n_toks[m]);
            hs->toks[m][0] = T_PSK;
        } else {
            hs->toks[m][hs->n_toks[m]] = T_PSK;
        }
        hs->n_toks[m]++;
        hs->psk_mode = 1;
        mods += mods[4] == '+' ? 5 : 4;
    }
    return 0;
}

/* uses_static(hs, pat, side_i): does the initiator's (side_i = 1) or the
 * responder's static key appear in a pre-message, an s token or a DH? */
static int
uses_static(const struct kz_noise *hs, const struct pattern *pat, int side_i)
{
    size_t m, t;

    if (strcmp(side_i ? pat->pre_i : pat->pre_r, "s") == 0)
        return 1;
    for (m = 0; m < hs->n_msgs; m++) {
        int from_i = m % 2 == 0;
        for (t = 0; t < hs->n_toks[m]; t++) {
            uint8_t k = hs->toks[m][t];
            if ((k == T_S && from_i == side_i) || k == T_SS ||
                (k == T_SE && side_i) || (k == T_ES && !side_i))
                return 1;
        }
    }
    return 0;
}

/* msg_overhead(hs): bytes the current message adds to its payload. */
static size_t
msg_overhead(const struct kz_noise *hs)
{
    size_t t, len = 0;
    int has_k = hs->ss.cs.has_k;

    if (hs->next != KZ_NOISE_WRITE && hs->next != KZ_NOISE_READ)
        return 0;
    for (t = 0; t < hs->n_toks[hs->msg_idx]; t++) {
        switch (hs->toks[hs->msg_idx][t]) {
        case T_E:
            len += KZ_DH_LEN;
            if (hs->psk_mode)
                has_k = 1;
            break;
        case T_S: len += KZ_DH_LEN + (has_k ? KZ_NOISE_TAG_LEN : 0); break;
        default: has_k = 1; break;
        }
    }
    return len + (has_k ? KZ_NOISE_TAG_LEN : 0);
}

/* dh_mix(hs, tok): MixKey(DH(…)) for ee/es/se/ss from our point of view. */
static int
dh_mix(struct kz_noise *hs, uint8_t tok)
{
    const struct kz_dh_sk *sk = NULL;
    const struct kz_dh_pk *pk = NULL;
    struct kz_dh_shared shared;
    int i = hs->initiator, rc;

    switch (tok) {
    case T_EE:
        if (hs->has_e && hs->has_re)
            sk = &hs->e, pk = &hs->re;
        break;
    case T_ES:
        if (i && hs->has_e && hs->has_rs)
            sk = &hs->e, pk = &hs->rs;
        else if (!i && hs->has_s && hs->has_re)
            sk = &hs->s, pk = &hs->re;
        break;
    case T_SE:
        if (i && hs->has_s && hs->has_re)
            sk = &hs->s, pk = &hs->re;
        else if (!i && hs->has_e && hs->has_rs)
            sk = &hs->e, pk = &hs->rs;
        break;
    case T_SS:
        if (hs->has_s && hs->has_rs)
            sk = &hs->s, pk = &hs->rs;
        break;
    default: break;
    }
    /* kz_noise_new checked the keys and the table is valid. */
    if (KZ_NEVER(sk == NULL))
        return -KZ_EINVAL;
    rc = kz_dh(&shared, sk, pk);
    if (rc == 0)
        rc = ss_mix_key(&hs->ss, shared.b, sizeof(shared.b));
    sodium_memzero(&shared, sizeof(shared));
    return rc;
}

/* ---- Public functions ------------------------------------------------- */

/** kz_noise_new(out, cfg): a HandshakeState for ${cfg}. */
int
kz_noise_new(struct kz_noise **out, const struct kz_noise_cfg *cfg)
{
    struct kz_noise *hs;
    const struct hash_alg *hash = NULL;
    const struct pattern *pat = NULL;
    const char *pre_remote;
    size_t m, t, n_psk_toks = 0, n_e = 0;
    int rc;

    *out = NULL;
    if (cfg->protocol == NULL || (cfg->prologue_len > 0 && !cfg->prologue) ||
        (cfg->n_psks > 0 && cfg->psks == NULL) ||
        cfg->n_psks > KZ_NOISE_PSK_MAX)
        return -KZ_EINVAL;
    hs = kz_calloc(1, sizeof(*hs));
    if (hs == NULL)
        return -KZ_ENOMEM;
    hs->magic = NOISE_MAGIC;
    hs->initiator = cfg->initiator != 0;
    hs->env = cfg->env;

    rc = parse_name(hs, cfg->protocol, &hash, &pat);
    if (rc != 0)
        goto err1;
    for (m = 0; m < hs->n_msgs; m++) {
        for (t = 0; t < hs->n_toks[m]; t++) {
            if (hs->toks[m][t] == T_PSK)
                n_psk_toks++;
            if (hs->toks[m][t] == T_E && (m % 2 == 0) == hs->initiator)
                n_e++;
        }
    }
    rc = -KZ_EINVAL;
    if (cfg->n_psks < n_psk_toks || (n_e > 0 && !cfg->env && !cfg->e))
        goto err1;
    pre_remote = hs->initiator ? pat->pre_r : pat->pre_i;
    if (uses_static(hs, pat, hs->initiator)) {
        if (cfg->s == NULL)
            goto err1;
        hs->s = *cfg->s;
        hs->has_s = 1;
        rc = kz_dh_public(&hs->s_pub, &hs->s);
        if (rc != 0)
            goto err1;
        rc = -KZ_EINVAL;
    }
    if (strcmp(pre_remote, "s") == 0) {
        if (cfg->rs == NULL)
            goto err1;
        hs->rs = *cfg->rs;
        hs->has_rs = 1;
    } else if (cfg->rs != NULL) {
        goto err1;
    }
    if (cfg->e != NULL) {
        hs->e_fixed = *cfg->e;
        hs->has_e_fixed = 1;
    }
    if (cfg->n_psks > 0)
        memcpy(hs->psks, cfg->psks, cfg->n_psks * sizeof(cfg->psks[0]));
    hs->n_psks = cfg->n_psks;

    /* InitializeSymmetric, MixHash(prologue), pre-messages (initiator's
     * first, section 5.3). */
    rc = ss_init(&hs->ss, hash, cfg->protocol);
    if (rc == 0)
        rc = ss_mix_hash(&hs->ss, cfg->prologue, cfg->prologue_len);
    if (rc == 0 && strcmp(pat->pre_i, "s") == 0)
        rc = ss_mix_hash(&hs->ss, hs->initiator ? hs->s_pub.b : hs->rs.b,
                         KZ_DH_LEN);
    if (rc == 0 && strcmp(pat->pre_r, "s") == 0)
        rc = ss_mix_hash(&hs->ss, hs->initiator ? hs->rs.b : hs->s_pub.b,
                         KZ_DH_LEN);
    if (rc != 0)
        goto err1;
    hs->next = turn(hs);
    *out = hs;
    return 0;

err1:
    kz_noise_free(hs);
    return rc;
}

/** kz_noise_free(hs): wipes and frees ${hs}; NULL is a no-op. */
void
kz_noise_free(struct kz_noise *hs)
{
    if (hs == NULL)
        return;
    assert(hs->magic == NOISE_MAGIC);
    sodium_memzero(hs, sizeof(*hs));
    kz_free(hs);
}

/** kz_noise_next(hs): what ${hs} expects next. */
enum kz_noise_next
kz_noise_next(const struct kz_noise *hs)
{
    assert(hs->magic == NOISE_MAGIC);
    return hs->next;
}

/** kz_noise_overhead(hs): bytes the next message adds to its payload. */
size_t
kz_noise_overhead(const struct kz_noise *hs)
{
    assert(hs->magic == NOISE_MAGIC);
    return msg_overhead(hs);
}

/* write_e(hs, out): the "e" token when writing. */
static int
write_e(struct kz_noise *hs, uint8_t *out)
{
    int rc;

    if (KZ_NEVER(hs->has_e))
        return -KZ_EINVAL;
    if (hs->has_e_fixed) {
        hs->e = hs->e_fixed;
        sodium_memzero(&hs->e_fixed, sizeof(hs->e_fixed));
        hs->has_e_fixed = 0;
        rc = kz_dh_public(&hs->e_pub, &hs->e);
    } else if (hs->env != NULL) {
        rc = kz_dh_keypair(hs->env, &hs->e_pub, &hs->e);
    } else {
        rc = -KZ_EINVAL; /* only one injected e and no env */
    }
    if (rc != 0)
        return rc;
    hs->has_e = 1;
    memcpy(out, hs->e_pub.b, KZ_DH_LEN);
    rc = ss_mix_hash(&hs->ss, hs->e_pub.b, KZ_DH_LEN);
    if (rc == 0 && hs->psk_mode)
        rc = ss_mix_key(&hs->ss, hs->e_pub.b, KZ_DH_LEN);
    return rc;
}

/* mix_psk(hs): the psk token: MixKeyAndHash(next PSK). */
static int
mix_psk(struct kz_noise *hs)
{
    if (KZ_NEVER(hs->psk_idx >= hs->n_psks))
        return -KZ_EINVAL;
    return ss_mix_key_and_hash(&hs->ss, hs->psks[hs->psk_idx++].b,
                               KZ_NOISE_PSK_LEN);
}

/** kz_noise_write(hs, payload, payload_len, out, out_cap, out_len). */
int
kz_noise_write(struct kz_noise *hs, const uint8_t *payload, size_t payload_len,
               uint8_t *out, size_t out_cap, size_t *out_len)
{
    size_t ov, pos = 0, t, m;
    int rc = 0;

    assert(hs->magic == NOISE_MAGIC);
    *out_len = 0;
    if (hs->err != 0)
        return hs->err;
    if (hs->next != KZ_NOISE_WRITE || (payload_len > 0 && payload == NULL))
        return -KZ_EINVAL;
    ov = msg_overhead(hs);
    if (payload_len > KZ_LIM_NOISE_MSG_MAX - ov)
        return -KZ_ELIMIT;
    if (out_cap < payload_len + ov)
        return -KZ_EINVAL;

    m = hs->msg_idx;
    for (t = 0; rc == 0 && t < hs->n_toks[m]; t++) {
        switch (hs->toks[m][t]) {
        case T_E:
            rc = write_e(hs, out + pos);
            pos += KZ_DH_LEN;
            break;
        case T_S:
            if (KZ_NEVER(!hs->has_s)) {
                rc = -KZ_EINVAL;
                break;
            }
            rc =
                ss_encrypt_and_hash(&hs->ss, hs->s_pub.b, KZ_DH_LEN, out + pos);
            pos += KZ_DH_LEN;
            if (rc == 0 && hs->ss.cs.has_k)
                pos += KZ_NOISE_TAG_LEN;
            break;
        case T_PSK: rc = mix_psk(hs); break;
        default: rc = dh_mix(hs, hs->toks[m][t]); break;
        }
    }
    if (rc == 0)
        rc = ss_encrypt_and_hash(&hs->ss, payload, payload_len, out + pos);
    if (rc != 0)
        goto err0;
    pos += payload_len + (hs->ss.cs.has_k ? KZ_NOISE_TAG_LEN : 0);
    if (KZ_NEVER(pos != payload_len + ov)) {
        rc = -KZ_EINVAL;
        goto err0;
    }
    hs->msg_idx++;
    hs->next = turn(hs);
    *out_len = pos;
    return 0;

err0:
    sodium_memzero(out, payload_len + ov);
    return poison(hs, rc);
}

/** kz_noise_read(hs, msg, msg_len, payload, payload_cap, payload_len). */
int
kz_noise_read(struct kz_noise *hs, const uint8_t *msg, size_t msg_len,
              uint8_t *payload, size_t payload_cap, size_t *payload_len)
{
    struct kz_rd r;
    const uint8_t *p;
    uint8_t spub[KZ_DH_LEN + KZ_NOISE_TAG_LEN];
    size_t ov, n, t, m, plen = 0;
    int rc = 0;

    assert(hs->magic == NOISE_MAGIC);
    *payload_len = 0;
    if (hs->err != 0)
        return hs->err;
    if (hs->next != KZ_NOISE_READ || (msg_len > 0 && msg == NULL))
        return -KZ_EINVAL;
    if (msg_len > KZ_LIM_NOISE_MSG_MAX)
        return poison(hs, -KZ_EMALFORMED);
    ov = msg_overhead(hs);
    if (msg_len < ov)
        return poison(hs, -KZ_EMALFORMED);
    plen = msg_len - ov;
    if (payload_cap < plen)
        return -KZ_EINVAL;

    kz_rd_init(&r, msg, msg_len);
    m = hs->msg_idx;
    for (t = 0; rc == 0 && t < hs->n_toks[m]; t++) {
        switch (hs->toks[m][t]) {
        case T_E:
            p = kz_rd_bytes(&r, KZ_DH_LEN);
            if (p == NULL || KZ_NEVER(hs->has_re)) {
                rc = -KZ_EMALFORMED;
                break;
            }
            memcpy(hs->re.b, p, KZ_DH_LEN);
            hs->has_re = 1;
            rc = ss_mix_hash(&hs->ss, hs->re.b, KZ_DH_LEN);
            if (rc == 0 && hs->psk_mode)
                rc = ss_mix_key(&hs->ss, hs->re.b, KZ_DH_LEN);
            break;
        case T_S:
            n = KZ_DH_LEN + (hs->ss.cs.has_k ? KZ_NOISE_TAG_LEN : 0);
            p = kz_rd_bytes(&r, n);
            if (p == NULL || KZ_NEVER(hs->has_rs)) {
                rc = -KZ_EMALFORMED;
                break;
            }
            rc = ss_decrypt_and_hash(&hs->ss, p, n, spub);
            if (rc == 0) {
                memcpy(hs->rs.b, spub, KZ_DH_LEN);
                hs->has_rs = 1;
            }
            break;
        case T_PSK: rc = mix_psk(hs); break;
        default: rc = dh_mix(hs, hs->toks[m][t]); break;
        }
    }
    if (rc != 0)
        goto err0;
    n = r.left;
    p = kz_rd_bytes(&r, n);
    if (r.err != 0 ||
        KZ_NEVER(n != plen + (hs->ss.cs.has_k ? KZ_NOISE_TAG_LEN : 0))) {
        rc = -KZ_EMALFORMED;
        goto err0;
    }
    rc = ss_decrypt_and_hash(&hs->ss, p, n, payload);
    if (rc != 0)
        goto err0;
    sodium_memzero(spub, sizeof(spub));
    hs->msg_idx++;
    hs->next = turn(hs);
    *payload_len = plen;
    return 0;

err0:
    sodium_memzero(spub, sizeof(spub));
    kz_crypto_wipe(payload, plen);
    return poison(hs, rc);
}

/** kz_noise_remote_static(hs, out): the peer's static key; -KZ_ENOENT. */
int
kz_noise_remote_static(const struct kz_noise *hs, struct kz_dh_pk *out)
{
    assert(hs->magic == NOISE_MAGIC);
    if (!hs->has_rs || hs->err != 0)
        return -KZ_ENOENT;
    *out = hs->rs;
    return 0;
}

/** kz_noise_handshake_hash(hs, out, out_len): h after the handshake. */
int
kz_noise_handshake_hash(const struct kz_noise *hs, uint8_t out[static 64],
                        size_t *out_len)
{
    assert(hs->magic == NOISE_MAGIC);
    *out_len = 0;
    if (hs->next != KZ_NOISE_SPLIT && hs->next != KZ_NOISE_DONE)
        return -KZ_EINVAL;
    memcpy(out, hs->ss.h, hs->ss.hash->len);
    *out_len = hs->ss.hash->len;
    return 0;
}

static struct kz_noise_cs *
cs_new(const uint8_t key[static 32])
{
    struct kz_noise_cs *cs = kz_calloc(1, sizeof(*cs));

    if (cs == NULL)
        return NULL;
    cs->magic = NOISE_CS_MAGIC;
    cs_init_key(&cs->c, key);
    return cs;
}

/** kz_noise_split(hs, send, recv): the transport CipherStates. */
int
kz_noise_split(struct kz_noise *hs, struct kz_noise_cs **send,
               struct kz_noise_cs **recv)
{
    uint8_t k1[KZ_NOISE_HASH_MAX], k2[KZ_NOISE_HASH_MAX];
    struct kz_noise_cs *c1 = NULL, *c2 = NULL;
    int one_way = hs->n_msgs == 1, rc;

    assert(hs->magic == NOISE_MAGIC);
    *send = NULL;
    *recv = NULL;
    if (hs->err != 0)
        return hs->err;
    if (hs->next != KZ_NOISE_SPLIT)
        return -KZ_EINVAL;
    rc = hkdf(hs->ss.hash, hs->ss.ck, NULL, 0, k1, k2, NULL);
    if (rc != 0)
        goto err0;
    rc = -KZ_ENOMEM;
    if ((c1 = cs_new(k1)) == NULL)
        goto err0;
    if (!one_way && (c2 = cs_new(k2)) == NULL)
        goto err1;
    if (hs->initiator) {
        *send = c1;
        *recv = c2;
    } else {
        *send = c2;
        *recv = c1;
    }
    sodium_memzero(k1, sizeof(k1));
    sodium_memzero(k2, sizeof(k2));
    wipe_secrets(hs);
    hs->next = KZ_NOISE_DONE;
    return 0;

err1:
    kz_noise_cs_free(c1);
err0:
    sodium_memzero(k1, sizeof(k1));
    sodium_memzero(k2, sizeof(k2));
    return rc;
}

/* ---- Transport CipherState -------------------------------------------- */

static int
cs_poison(struct kz_noise_cs *cs, int rc)
{
    if (cs->err == 0)
        cs->err = rc;
    sodium_memzero(&cs->c, sizeof(cs->c));
    return cs->err;
}

/** kz_noise_cs_encrypt(cs, pt, pt_len, out, out_cap, out_len). */
int
kz_noise_cs_encrypt(struct kz_noise_cs *cs, const uint8_t *pt, size_t pt_len,
                    uint8_t *out, size_t out_cap, size_t *out_len)
{
    int rc;

    assert(cs->magic == NOISE_CS_MAGIC);
    *out_len = 0;
    if (cs->err != 0)
        return cs->err;
    if (pt_len > KZ_LIM_NOISE_MSG_MAX - KZ_NOISE_TAG_LEN ||
        out_cap < pt_len + KZ_NOISE_TAG_LEN || (pt_len > 0 && pt == NULL))
        return -KZ_EINVAL;
    rc = cs_encrypt(&cs->c, NULL, 0, pt, pt_len, out);
    if (rc != 0) {
        sodium_memzero(out, pt_len + KZ_NOISE_TAG_LEN);
        return cs_poison(cs, rc);
    }
    *out_len = pt_len + KZ_NOISE_TAG_LEN;
    return 0;
}

/** kz_noise_cs_decrypt(cs, ct, ct_len, out, out_cap, out_len). */
int
kz_noise_cs_decrypt(struct kz_noise_cs *cs, const uint8_t *ct, size_t ct_len,
                    uint8_t *out, size_t out_cap, size_t *out_len)
{
    int rc;

    assert(cs->magic == NOISE_CS_MAGIC);
    *out_len = 0;
    if (cs->err != 0)
        return cs->err;
    if (ct_len < KZ_NOISE_TAG_LEN || ct_len > KZ_LIM_NOISE_MSG_MAX ||
        ct == NULL)
        return cs_poison(cs, -KZ_EMALFORMED);
    if (out_cap < ct_len - KZ_NOISE_TAG_LEN)
        return -KZ_EINVAL;
    rc = cs_decrypt(&cs->c, NULL, 0, ct, ct_len, out);
    if (rc != 0) {
        kz_crypto_wipe(out, ct_len - KZ_NOISE_TAG_LEN);
        return cs_poison(cs, rc);
    }
    *out_len = ct_len - KZ_NOISE_TAG_LEN;
    return 0;
}

/** kz_noise_cs_rekey(cs): k = ENCRYPT(k, 2^64-1, "", zeros)[0..32]. */
int
kz_noise_cs_rekey(struct kz_noise_cs *cs)
{
    uint8_t zeros[KEY_LEN + KZ_NOISE_TAG_LEN];
    uint8_t nonce[KZ_CPAEAD_NONCE_LEN];
    int rc;

    assert(cs->magic == NOISE_CS_MAGIC);
    if (cs->err != 0)
        return cs->err;
    memset(zeros, 0, sizeof(zeros));
    cs_nonce(nonce, UINT64_MAX);
    rc = kz_cpaead_encrypt(zeros, zeros, KEY_LEN, NULL, 0, nonce, &cs->c.k);
    if (rc != 0)
        goto err0;
    memcpy(cs->c.k.b, zeros, KEY_LEN);
    sodium_memzero(zeros, sizeof(zeros));
    return 0;

err0:
    sodium_memzero(zeros, sizeof(zeros));
    return cs_poison(cs, rc);
}

/** kz_noise_cs_nonce(cs): the nonce the next message will use. */
uint64_t
kz_noise_cs_nonce(const struct kz_noise_cs *cs)
{
    assert(cs->magic == NOISE_CS_MAGIC);
    return cs->c.n;
}

/** kz_noise_cs_set_nonce(cs, n): SetNonce(); never move it backwards. */
void
kz_noise_cs_set_nonce(struct kz_noise_cs *cs, uint64_t n)
{
    assert(cs->magic == NOISE_CS_MAGIC);
    cs->c.n = n;
}

/** kz_noise_cs_free(cs): wipes and frees ${cs}; NULL is a no-op. */
void
kz_noise_cs_free(struct kz_noise_cs *cs)
{
    if (cs == NULL)
        return;
    assert(cs->magic == NOISE_CS_MAGIC);
    sodium_memzero(cs, sizeof(*cs));
    kz_free(cs);
}
