/*
 * test_roster.c: proto/roster and proto/join.
 *
 * Round trips; tampering (every byte of an encoded roster and of a join
 * request flipped, every truncation, another signer); exact-bytes negative
 * inputs for every rule; the role table of DESIGN.md §4; allocation-failure
 * loops.  msgpack-c's packer builds the hand-made negative inputs, as an
 * independent encoder.
 *
 * With KZ_WRITE_CORPUS=DIR set, the test write_corpus writes fuzz seeds to
 * DIR/roster/ and DIR/join/ (KZ_WRITE_CORPUS=tests/fuzz/corpus).  The
 * envelopes are signed by the key of FUZZ_ADMIN_SEED, which
 * tests/fuzz/fuzz_roster.c trusts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <msgpack.h>
#include <sodium.h>

#include "alloc.h"
#include "crypto.h"
#include "err.h"
#include "join.h"
#include "limits.h"
#include "roster.h"

#include "t.h"

#define FUZZ_ADMIN_SEED 0x46 /* every byte; shared with fuzz_roster.c */

struct keys {
    struct kz_sign_pk spk; /* Ed25519 public */
    struct kz_sign_sk ssk; /* Ed25519 secret */
    struct kz_dh_pk dpk;   /* X25519 public */
};

/* keys_of(k, b): a deterministic identity from one byte. */
static struct keys
keys_of(uint8_t b)
{
    struct keys k;
    struct kz_dh_sk dsk;
    uint8_t seed[32];

    ASSERT_OK(kz_crypto_init());
    memset(seed, b, sizeof(seed));
    ASSERT_OK(kz_sign_seed_keypair(&k.spk, &k.ssk, seed));
    memset(dsk.b, (uint8_t)(b ^ 0x5a), sizeof(dsk.b));
    ASSERT_OK(kz_dh_public(&k.dpk, &dsk));
    return k;
}

/*
 * sample(&r, admin): admin "state-1" (LAND), sites han-1, han-2 (HAN),
 * ol-1 (OL), observer obs-1 (LAND); han-2 revoked with two seqs.
 */
static struct roster *
sample(uint8_t admin_byte)
{
    static const struct roster_seq seqs[] = {{"site:HAN", 17},
                                             {"private:HAN", 4}};
    struct keys a = keys_of(admin_byte), k;
    struct roster *r;

    ASSERT_OK(roster_new(&r, &a.spk));
    ASSERT_OK(roster_add_member(r, "state-1", "LAND", ROSTER_ROLE_ADMIN, &a.spk,
                                &a.dpk));
    k = keys_of(0x11);
    ASSERT_OK(
        roster_add_member(r, "han-1", "HAN", ROSTER_ROLE_SITE, &k.spk, &k.dpk));
    k = keys_of(0x12);
    ASSERT_OK(
        roster_add_member(r, "han-2", "HAN", ROSTER_ROLE_SITE, &k.spk, &k.dpk));
    k = keys_of(0x13);
    ASSERT_OK(
        roster_add_member(r, "ol-1", "OL", ROSTER_ROLE_SITE, &k.spk, &k.dpk));
    k = keys_of(0x14);
    ASSERT_OK(roster_add_member(r, "obs-1", "LAND", ROSTER_ROLE_OBSERVER,
                                &k.spk, &k.dpk));
    ASSERT_OK(roster_revoke(r, "han-2", seqs, 2));
    ASSERT_OK(roster_bump(r));
    return r;
}

static void
assert_roster_eq(const struct roster *a, const struct roster *b)
{
    uint32_t i, j;

    ASSERT_U64_EQ(roster_version(a), roster_version(b));
    ASSERT_MEM_EQ(roster_admin(a)->b, roster_admin(b)->b, 32);
    ASSERT_EQ(roster_n_members(a), roster_n_members(b));
    for (i = 0; i < roster_n_members(a); i++) {
        const struct roster_member *x = roster_member(a, i);
        const struct roster_member *y = roster_member(b, i);

        ASSERT_STR_EQ(x->name, y->name);
        ASSERT_STR_EQ(x->site, y->site);
        ASSERT_EQ(x->role, y->role);
        ASSERT_MEM_EQ(x->sign_pk.b, y->sign_pk.b, 32);
        ASSERT_MEM_EQ(x->dh_pk.b, y->dh_pk.b, 32);
        ASSERT_EQ(x->revoked, y->revoked);
        ASSERT_EQ(x->n_seqs, y->n_seqs);
        for (j = 0; j < x->n_seqs; j++) {
            ASSERT_STR_EQ(x->seqs[j].scope, y->seqs[j].scope);
            ASSERT_U64_EQ(x->seqs[j].seq, y->seqs[j].seq);
        }
    }
}

/* ---- msgpack-c builders for hand-made inputs ------------------------- */

struct pk {
    msgpack_sbuffer sb; /* bytes */
    msgpack_packer p;   /* packer on sb */
};

static void
pk_init(struct pk *k)
{
    msgpack_sbuffer_init(&k->sb);
    msgpack_packer_init(&k->p, &k->sb, msgpack_sbuffer_write);
}

static void
pk_str(struct pk *k, const char *s)
{
    msgpack_pack_str(&k->p, strlen(s));
    msgpack_pack_str_body(&k->p, s, strlen(s));
}

static void
pk_bin(struct pk *k, const void *p, size_t len)
{
    msgpack_pack_bin(&k->p, len);
    msgpack_pack_bin_body(&k->p, p, len);
}

/* A member as the spec says, with every field chosen by the caller. */
struct mspec {
    const char *name, *site, *role; /* strs */
    uint8_t key;                    /* keys_of(key) */
    bool revoked;                   /* revoked flag */
    int n_seqs;                     /* entries "site:HAN"/"private:HAN"… */
    const char *seq_scope;          /* scope of every entry */
    int n_fields;                   /* 7 normally */
};

static void
pk_member(struct pk *k, const struct mspec *m)
{
    struct keys ks = keys_of(m->key);
    int i;

    msgpack_pack_array(&k->p, (size_t)(m->n_fields ? m->n_fields : 7));
    pk_str(k, m->name);
    pk_str(k, m->site);
    pk_str(k, m->role);
    pk_bin(k, ks.spk.b, 32);
    pk_bin(k, ks.dpk.b, 32);
    if (m->revoked)
        msgpack_pack_true(&k->p);
    else
        msgpack_pack_false(&k->p);
    msgpack_pack_array(&k->p, (size_t)m->n_seqs);
    for (i = 0; i < m->n_seqs; i++) {
        msgpack_pack_array(&k->p, 2);
        pk_str(k, m->seq_scope ? m->seq_scope : "site:HAN");
        msgpack_pack_uint64(&k->p, (uint64_t)i + 1);
    }
    if (m->n_fields > 7)
        msgpack_pack_nil(&k->p);
}

/* pk_body(k, format, version, admin_key, members, n): a whole body. */
static void
pk_body(struct pk *k, uint64_t format, uint64_t version, uint8_t admin_key,
        const struct mspec *ms, size_t n)
{
    struct keys a = keys_of(admin_key);
    size_t i;

    pk_init(k);
    msgpack_pack_array(&k->p, 4);
    msgpack_pack_uint64(&k->p, format);
    msgpack_pack_uint64(&k->p, version);
    pk_bin(k, a.spk.b, 32);
    msgpack_pack_array(&k->p, n);
    for (i = 0; i < n; i++)
        pk_member(k, &ms[i]);
}

#define ADMIN_M                                                                \
    {                                                                          \
        "state-1", "LAND", "admin", 0xa0, false, 0, NULL, 7                    \
    }
#define SITE_M(n, s, key)                                                      \
    {                                                                          \
        n, s, "site", key, false, 0, NULL, 7                                   \
    }

/* body_rc(ms, n, why_part): decodes a body of these members. */
static int
body_rc(const struct mspec *ms, size_t n, const char **why)
{
    struct pk k;
    struct roster *r;
    int rc;

    pk_body(&k, 1, 1, 0xa0, ms, n);
    rc = roster__decode_body(&r, (const uint8_t *)k.sb.data, k.sb.size, why);
    if (rc == 0)
        roster_free(r);
    else
        ASSERT(r == NULL);
    msgpack_sbuffer_destroy(&k.sb);
    return rc;
}

/* sign_wrap(body, len, sk, out_len): [ body, sig ] signed by ${sk}. */
static uint8_t *
sign_wrap(const uint8_t *body, size_t len, const struct kz_sign_sk *sk,
          size_t *out_len)
{
    struct kz_sign_sig sig;
    struct pk k;
    uint8_t *out;

    ASSERT_OK(kz_sign_detached(&sig, body, len, sk));
    pk_init(&k);
    msgpack_pack_array(&k.p, 2);
    pk_bin(&k, body, len);
    pk_bin(&k, sig.b, 64);
    out = malloc(k.sb.size);
    ASSERT(out != NULL);
    memcpy(out, k.sb.data, k.sb.size);
    *out_len = k.sb.size;
    msgpack_sbuffer_destroy(&k.sb);
    return out;
}

/* ---- roster ----------------------------------------------------------- */

TEST(round_trip)
{
    struct keys a = keys_of(0xa0);
    struct roster *r = sample(0xa0), *d;
    uint8_t *p, *q;
    size_t len, qlen;
    const char *why = "x";
    const struct roster_member *m;

    ASSERT_OK(roster_encode_sign(r, &a.ssk, &p, &len));
    ASSERT_OK(roster_decode(&d, p, len, &a.spk, &why));
    ASSERT(why == NULL);
    assert_roster_eq(r, d);
    ASSERT_U64_EQ(roster_version(d), 2);
    m = roster_find_by_name(d, "han-2");
    ASSERT(m != NULL && m->revoked && m->n_seqs == 2);
    ASSERT_STR_EQ(m->seqs[1].scope, "private:HAN");
    ASSERT_U64_EQ(m->seqs[1].seq, 4);
    /* Ed25519 is deterministic: re-encoding gives the same bytes. */
    ASSERT_OK(roster_encode_sign(d, &a.ssk, &q, &qlen));
    ASSERT_EQ(qlen, len);
    ASSERT_MEM_EQ(p, q, len);
    /* The body is also what msgpack-c reads: one array of 2 bins. */
    {
        msgpack_unpacked u;
        size_t off = 0;

        msgpack_unpacked_init(&u);
        ASSERT_EQ(msgpack_unpack_next(&u, (const char *)p, len, &off),
                  MSGPACK_UNPACK_SUCCESS);
        ASSERT_EQ(off, len);
        ASSERT_EQ(u.data.type, MSGPACK_OBJECT_ARRAY);
        ASSERT_EQ(u.data.via.array.size, 2);
        ASSERT_EQ(u.data.via.array.ptr[1].via.bin.size, 64);
        msgpack_unpacked_destroy(&u);
    }
    kz_free(p);
    kz_free(q);
    roster_free(d);
    roster_free(r);
    roster_free(NULL);
}

TEST(every_byte_flip_refused)
{
    static const uint8_t masks[] = {0x01, 0x80, 0xff, 0x10};
    struct keys a = keys_of(0xa0);
    struct roster *r = sample(0xa0), *d;
    uint8_t *p, *q;
    size_t len, i, m;
    const char *why;
    int rc;

    ASSERT_OK(roster_encode_sign(r, &a.ssk, &p, &len));
    q = malloc(len);
    ASSERT(q != NULL);
    for (i = 0; i < len; i++) {
        for (m = 0; m < sizeof(masks); m++) {
            memcpy(q, p, len);
            q[i] ^= masks[m];
            why = NULL;
            rc = roster_decode(&d, q, len, &a.spk, &why);
            if (rc == 0)
                T_FAIL_("byte %zu ^ %02x accepted", i, masks[m]);
            ASSERT(d == NULL);
            ASSERT(why != NULL);
        }
    }
    /* Every truncation, and one extra byte. */
    for (i = 0; i < len; i++) {
        rc = roster_decode(&d, p, i, &a.spk, &why);
        if (rc == 0)
            T_FAIL_("truncated to %zu accepted", i);
    }
    q = realloc(q, len + 1);
    ASSERT(q != NULL);
    memcpy(q, p, len);
    q[len] = 0xc0;
    ASSERT_ERR(roster_decode(&d, q, len + 1, &a.spk, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "trailing bytes after the roster");
    free(q);
    kz_free(p);
    roster_free(r);
}

TEST(other_signer_refused)
{
    struct keys a = keys_of(0xa0), b = keys_of(0xb0);
    struct roster *r, *d;
    uint8_t *p, *body, *w;
    size_t len, body_len, wlen;
    const char *why;

    /* A roster of admin b, checked against trusted admin a. */
    r = sample(0xb0);
    ASSERT_OK(roster_encode_sign(r, &b.ssk, &p, &len));
    ASSERT_ERR(roster_decode(&d, p, len, &a.spk, &why), -KZ_EAUTH);
    ASSERT_STR_EQ(why, "bad admin signature");
    ASSERT(d == NULL);
    ASSERT_OK(roster_decode(&d, p, len, &b.spk, &why));
    roster_free(d);
    kz_free(p);
    /* The encoder refuses a key that is not the roster's admin. */
    ASSERT_ERR(roster_encode_sign(r, &a.ssk, &p, &len), -KZ_EINVAL);
    ASSERT(p == NULL);
    /* Signed by the trusted key a, but the body names admin b. */
    ASSERT_OK(roster__encode_body(r, &body, &body_len));
    w = sign_wrap(body, body_len, &a.ssk, &wlen);
    ASSERT_ERR(roster_decode(&d, w, wlen, &a.spk, &why), -KZ_EAUTH);
    ASSERT_STR_EQ(why, "roster names another admin key");
    ASSERT(d == NULL);
    free(w);
    kz_free(body);
    roster_free(r);
}

TEST(envelope_exact_bytes)
{
    struct keys a = keys_of(0xa0);
    struct roster *d;
    uint8_t in[2 + 2 + 2 + 64];
    const char *why;

    /* [ bin(0), bin(64) zero ]: well-formed envelope, bad signature. */
    memset(in, 0, sizeof(in));
    in[0] = 0x92;
    in[1] = 0xc4;
    in[2] = 0x00;
    in[3] = 0xc4;
    in[4] = 0x40;
    ASSERT_ERR(roster_decode(&d, in, 5 + 64, &a.spk, &why), -KZ_EAUTH);
    /* A 63-byte signature. */
    in[4] = 0x3f;
    ASSERT_ERR(roster_decode(&d, in, 5 + 63, &a.spk, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "signature is not 64 bytes");
    /* A 65-byte one is over its limit. */
    in[4] = 0x41;
    ASSERT_ERR(roster_decode(&d, in, 5 + 65, &a.spk, &why), -KZ_ELIMIT);
    /* An array of 3. */
    in[0] = 0x93;
    in[4] = 0x40;
    ASSERT_ERR(roster_decode(&d, in, 5 + 64, &a.spk, &why), -KZ_EMALFORMED);
    /* #1013's five bytes. */
    memcpy(in, "\xdd\xff\x00\x00\x00", 5);
    ASSERT_ERR(roster_decode(&d, in, 5, &a.spk, &why), -KZ_ELIMIT);
    /* Empty input; str instead of bin. */
    ASSERT_ERR(roster_decode(&d, in, 0, &a.spk, &why), -KZ_EMALFORMED);
    memcpy(in, "\x92\xa0\xc4\x40", 4);
    ASSERT_ERR(roster_decode(&d, in, 4 + 64, &a.spk, &why), -KZ_EMALFORMED);
    /* Over KZ_LIM_ROSTER_MAX, refused on its length alone. */
    ASSERT_ERR(roster_decode(&d, in, KZ_LIM_ROSTER_MAX + 1, &a.spk, &why),
               -KZ_ELIMIT);
    ASSERT(d == NULL);
}

TEST(body_exact_bytes)
{
    struct roster *r;
    const char *why;
    uint8_t big[5 + 32 + 3 + 4097];

    /* [2]: format 2, read before the array length: version error. */
    ASSERT_ERR(roster__decode_body(&r, (const uint8_t *)"\x91\x02", 2, &why),
               -KZ_EVERSION);
    ASSERT_STR_EQ(why, "unsupported roster format");
    /* [2, …5 fields]: still a version error. */
    ASSERT_ERR(roster__decode_body(
                   &r, (const uint8_t *)"\x95\x02\x01\xc0\xc0\xc0", 6, &why),
               -KZ_EVERSION);
    /* [1]: format 1 but not 4 fields. */
    ASSERT_ERR(roster__decode_body(&r, (const uint8_t *)"\x91\x01", 2, &why),
               -KZ_EMALFORMED);
    /* [] and a bare 1. */
    ASSERT_ERR(roster__decode_body(&r, (const uint8_t *)"\x90", 1, &why),
               -KZ_EMALFORMED);
    ASSERT_ERR(roster__decode_body(&r, (const uint8_t *)"\x01", 1, &why),
               -KZ_EMALFORMED);
    /* Members: array32 of 4 278 190 080 → over the count limit. */
    memset(big, 0, sizeof(big));
    memcpy(big, "\x94\x01\x01\xc4\x20", 5);
    memcpy(big + 5 + 32, "\xdd\xff\x00\x00\x00", 5);
    ASSERT_ERR(roster__decode_body(&r, big, 5 + 32 + 5, &why), -KZ_ELIMIT);
    /* 4097 members (array16 0x1001) with the bytes to back them. */
    memcpy(big + 5 + 32, "\xdc\x10\x01", 3);
    ASSERT_ERR(roster__decode_body(&r, big, sizeof(big), &why), -KZ_ELIMIT);
    /* 16 members claimed, 15 bytes left: count over bytes left. */
    memcpy(big + 5 + 32, "\xdc\x00\x10", 3);
    ASSERT_ERR(roster__decode_body(&r, big, 5 + 32 + 3 + 15, &why),
               -KZ_EMALFORMED);
    /* version 0. */
    memcpy(big, "\x94\x01\x00\xc4\x20", 5);
    ASSERT_ERR(roster__decode_body(&r, big, 5 + 32 + 1, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "version 0");
    /* admin of 31 bytes. */
    memcpy(big, "\x94\x01\x01\xc4\x1f", 5);
    big[5 + 31] = 0x90;
    ASSERT_ERR(roster__decode_body(&r, big, 5 + 31 + 1, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "admin is not 32 bytes");
    /* No members at all: no admin member. */
    memcpy(big, "\x94\x01\x01\xc4\x20", 5);
    big[5 + 32] = 0x90;
    ASSERT_ERR(roster__decode_body(&r, big, 5 + 32 + 1, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "no unrevoked admin member holds the admin key");
    ASSERT(r == NULL);
}

TEST(body_rules)
{
    static const struct {
        struct mspec m[3]; /* members */
        size_t n;          /* how many */
        int rc;            /* expected */
        const char *why;   /* expected reason, or NULL for any */
    } cases[] = {
        /* 0: the good one. */
        {{ADMIN_M, SITE_M("han-1", "HAN", 1)}, 2, 0, NULL},
        {{ADMIN_M, SITE_M("han-1", "HAN", 1), SITE_M("han-1", "OL", 2)},
         3,
         -KZ_EMALFORMED,
         "duplicate member name"},
        {{ADMIN_M, SITE_M("han-1", "HAN", 1), SITE_M("han-2", "HAN", 1)},
         3,
         -KZ_EMALFORMED,
         "duplicate sign_pk"},
        {{ADMIN_M, SITE_M("x", "HAN", 0xa0)},
         2,
         -KZ_EMALFORMED,
         "duplicate sign_pk"},
        {{ADMIN_M, {"han-1", "HAN", "root", 1, false, 0, NULL, 7}},
         2,
         -KZ_EMALFORMED,
         "unknown role"},
        {{ADMIN_M, {"han-1", "HAN", "superuser", 1, false, 0, NULL, 7}},
         2,
         -KZ_EMALFORMED,
         "unknown role"},
        {{ADMIN_M, {"han-1", "HAN", "Admin", 1, false, 0, NULL, 7}},
         2,
         -KZ_EMALFORMED,
         "unknown role"},
        {{ADMIN_M, {"han-1", "HAN", "", 1, false, 0, NULL, 7}},
         2,
         -KZ_EMALFORMED,
         "unknown role"},
        {{{"state-1", "LAND", "site", 0xa0, false, 0, NULL, 7}},
         1,
         -KZ_EMALFORMED,
         "no unrevoked admin member holds the admin key"},
        {{{"state-1", "LAND", "admin", 0xa0, true, 0, NULL, 7}},
         1,
         -KZ_EMALFORMED,
         "no unrevoked admin member holds the admin key"},
        {{{"state-1", "LAND", "admin", 0xa1, false, 0, NULL, 7}},
         1,
         -KZ_EMALFORMED,
         "no unrevoked admin member holds the admin key"},
        /* A second admin-role device is fine. */
        {{ADMIN_M, {"state-2", "LAND", "admin", 1, false, 0, NULL, 7}},
         2,
         0,
         NULL},
        {{ADMIN_M, SITE_M("han 1", "HAN", 1)},
         2,
         -KZ_EMALFORMED,
         "bad member name"},
        {{ADMIN_M, SITE_M("", "HAN", 1)}, 2, -KZ_EMALFORMED, "bad member name"},
        {{ADMIN_M, SITE_M("han\x1b[31m", "HAN", 1)},
         2,
         -KZ_EMALFORMED,
         "bad member name"},
        {{ADMIN_M, SITE_M("han-1", "HAN:X", 1)},
         2,
         -KZ_EMALFORMED,
         "bad site code"},
        {{ADMIN_M, SITE_M("han-1", "", 1)}, 2, -KZ_EMALFORMED, "bad site code"},
        {{ADMIN_M, SITE_M("han-1", "H.N", 1)},
         2,
         -KZ_EMALFORMED,
         "bad site code"},
        {{ADMIN_M, SITE_M("han-1", "123456789012345678901234567890123", 1)},
         2,
         -KZ_ELIMIT,
         NULL},
        {{ADMIN_M,
          SITE_M("12345678901234567890123456789012345678901234567890123456789"
                 "012345",
                 "HAN", 1)},
         2,
         -KZ_ELIMIT,
         NULL},
        {{ADMIN_M, {"han-1", "HAN", "site", 1, false, 1, NULL, 7}},
         2,
         -KZ_EMALFORMED,
         "revoked_seqs of an unrevoked member"},
        {{ADMIN_M, {"han-1", "HAN", "site", 1, true, 2, NULL, 7}},
         2,
         -KZ_EMALFORMED,
         "revoked_seqs: repeated scope"},
        {{ADMIN_M, {"han-1", "HAN", "site", 1, true, 1, "site:", 7}},
         2,
         -KZ_EMALFORMED,
         "revoked_seqs: bad scope name"},
        {{ADMIN_M, {"han-1", "HAN", "site", 1, true, 1, "sites:HAN", 7}},
         2,
         -KZ_EMALFORMED,
         "revoked_seqs: bad scope name"},
        {{ADMIN_M, {"han-1", "HAN", "site", 1, true, 65, "network", 7}},
         2,
         -KZ_ELIMIT,
         NULL},
        {{ADMIN_M, {"han-1", "HAN", "site", 1, true, 1, "network", 7}},
         2,
         0,
         NULL},
        {{ADMIN_M, {"han-1", "HAN", "site", 1, false, 0, NULL, 8}},
         2,
         -KZ_EMALFORMED,
         "member is not an array of 7"},
        {{ADMIN_M, {"han-1", "HAN", "site", 1, false, 0, NULL, 6}},
         2,
         -KZ_EMALFORMED,
         NULL},
    };
    size_t i;

    for (i = 0; i < KZ_ARRAY_SIZE(cases); i++) {
        const char *why = NULL;
        int rc = body_rc(cases[i].m, cases[i].n, &why);

        if (rc != cases[i].rc)
            T_FAIL_("case %zu: %d (%s, %s), expected %d", i, rc,
                    kz_err_name(rc), why ? why : "-", cases[i].rc);
        if (rc != 0)
            ASSERT(why != NULL);
        if (cases[i].why != NULL && strcmp(why, cases[i].why) != 0)
            T_FAIL_("case %zu: why \"%s\", expected \"%s\"", i, why,
                    cases[i].why);
    }
}

TEST(body_duplicate_dh_and_types)
{
    struct keys a = keys_of(0xa0), k1 = keys_of(1), k2 = keys_of(2);
    struct roster *r;
    struct pk k;
    const char *why;
    int i;

    /* Two members with different sign keys but one dh key. */
    pk_init(&k);
    msgpack_pack_array(&k.p, 4);
    msgpack_pack_uint8(&k.p, 1);
    msgpack_pack_uint8(&k.p, 1);
    pk_bin(&k, a.spk.b, 32);
    msgpack_pack_array(&k.p, 3);
    for (i = 0; i < 3; i++) {
        const struct keys *s = i == 0 ? &a : i == 1 ? &k1 : &k2;
        msgpack_pack_array(&k.p, 7);
        pk_str(&k, i == 0 ? "state-1" : i == 1 ? "a" : "b");
        pk_str(&k, "X");
        pk_str(&k, i == 0 ? "admin" : "site");
        pk_bin(&k, s->spk.b, 32);
        pk_bin(&k, (i == 0 ? &a : &k1)->dpk.b, 32);
        msgpack_pack_false(&k.p);
        msgpack_pack_array(&k.p, 0);
    }
    ASSERT_ERR(
        roster__decode_body(&r, (const uint8_t *)k.sb.data, k.sb.size, &why),
        -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "duplicate dh_pk");
    msgpack_sbuffer_destroy(&k.sb);

    /* The name as a bin: a wrong type. */
    pk_init(&k);
    msgpack_pack_array(&k.p, 4);
    msgpack_pack_uint8(&k.p, 1);
    msgpack_pack_uint8(&k.p, 1);
    pk_bin(&k, a.spk.b, 32);
    msgpack_pack_array(&k.p, 1);
    msgpack_pack_array(&k.p, 7);
    pk_bin(&k, "state-1", 7);
    ASSERT_ERR(
        roster__decode_body(&r, (const uint8_t *)k.sb.data, k.sb.size, &why),
        -KZ_EMALFORMED);
    msgpack_sbuffer_destroy(&k.sb);

    /* revoked as an int 1: a wrong type. */
    pk_init(&k);
    msgpack_pack_array(&k.p, 4);
    msgpack_pack_uint8(&k.p, 1);
    msgpack_pack_uint8(&k.p, 1);
    pk_bin(&k, a.spk.b, 32);
    msgpack_pack_array(&k.p, 1);
    msgpack_pack_array(&k.p, 7);
    pk_str(&k, "state-1");
    pk_str(&k, "LAND");
    pk_str(&k, "admin");
    pk_bin(&k, a.spk.b, 32);
    pk_bin(&k, a.dpk.b, 32);
    msgpack_pack_uint8(&k.p, 0);
    msgpack_pack_array(&k.p, 0);
    ASSERT_ERR(
        roster__decode_body(&r, (const uint8_t *)k.sb.data, k.sb.size, &why),
        -KZ_EMALFORMED);
    /* …and with false it is fine; then a trailing byte is not. */
    ((uint8_t *)k.sb.data)[k.sb.size - 2] = 0xc2;
    ASSERT_OK(
        roster__decode_body(&r, (const uint8_t *)k.sb.data, k.sb.size, &why));
    roster_free(r);
    msgpack_pack_nil(&k.p);
    ASSERT_ERR(
        roster__decode_body(&r, (const uint8_t *)k.sb.data, k.sb.size, &why),
        -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "trailing bytes after the roster body");
    msgpack_sbuffer_destroy(&k.sb);
}

TEST(every_body_truncation_refused)
{
    struct roster *r = sample(0xa0), *d;
    uint8_t *p;
    size_t len, i;
    const char *why;

    ASSERT_OK(roster__encode_body(r, &p, &len));
    for (i = 0; i < len; i++) {
        int rc = roster__decode_body(&d, p, i, &why);
        if (rc == 0)
            T_FAIL_("body truncated to %zu accepted", i);
        ASSERT(rc == -KZ_EMALFORMED || rc == -KZ_ELIMIT);
    }
    ASSERT_OK(roster__decode_body(&d, p, len, &why));
    assert_roster_eq(r, d);
    roster_free(d);
    kz_free(p);
    roster_free(r);
}

TEST(builders)
{
    struct keys a = keys_of(0xa0), k = keys_of(1), k2 = keys_of(2);
    struct roster *r;
    struct roster_seq s[KZ_LIM_ROSTER_SEQS_MAX + 1];
    uint8_t *p;
    size_t len;

    ASSERT_OK(roster_new(&r, &a.spk));
    ASSERT_U64_EQ(roster_version(r), 1);
    /* No admin member yet: nothing to encode. */
    ASSERT_ERR(roster_encode_sign(r, &a.ssk, &p, &len), -KZ_EINVAL);
    ASSERT_OK(roster_add_member(r, "state-1", "LAND", ROSTER_ROLE_ADMIN, &a.spk,
                                &a.dpk));
    ASSERT_OK(
        roster_add_member(r, "han-1", "HAN", ROSTER_ROLE_SITE, &k.spk, &k.dpk));
    ASSERT_ERR(roster_add_member(r, "han-1", "HAN", ROSTER_ROLE_SITE, &k2.spk,
                                 &k2.dpk),
               -KZ_EEXIST);
    ASSERT_ERR(
        roster_add_member(r, "han-2", "HAN", ROSTER_ROLE_SITE, &k.spk, &k2.dpk),
        -KZ_EEXIST);
    ASSERT_ERR(
        roster_add_member(r, "han-2", "HAN", ROSTER_ROLE_SITE, &k2.spk, &k.dpk),
        -KZ_EEXIST);
    ASSERT_ERR(roster_add_member(r, "han 2", "HAN", ROSTER_ROLE_SITE, &k2.spk,
                                 &k2.dpk),
               -KZ_EINVAL);
    ASSERT_ERR(roster_add_member(r, "han-2", "site:HAN", ROSTER_ROLE_SITE,
                                 &k2.spk, &k2.dpk),
               -KZ_EINVAL);
    ASSERT_ERR(roster_add_member(r, "han-2", "HAN", (enum roster_role)0,
                                 &k2.spk, &k2.dpk),
               -KZ_EINVAL);
    ASSERT_EQ(roster_n_members(r), 2);
    ASSERT(roster_member(r, 2) == NULL);

    ASSERT_ERR(roster_revoke(r, "nobody", NULL, 0), -KZ_ENOENT);
    ASSERT_ERR(roster_revoke(r, "state-1", NULL, 0), -KZ_EPERM);
    memset(s, 0, sizeof(s));
    strcpy(s[0].scope, "site:HAN");
    strcpy(s[1].scope, "site:HAN");
    ASSERT_ERR(roster_revoke(r, "han-1", s, 2), -KZ_EINVAL);
    strcpy(s[1].scope, "bogus");
    ASSERT_ERR(roster_revoke(r, "han-1", s, 2), -KZ_EINVAL);
    ASSERT_ERR(roster_revoke(r, "han-1", s, KZ_LIM_ROSTER_SEQS_MAX + 1),
               -KZ_EINVAL);
    ASSERT_ERR(roster_revoke(r, "han-1", NULL, 1), -KZ_EINVAL);
    ASSERT(!roster_find_by_name(r, "han-1")->revoked);
    strcpy(s[1].scope, "private:HAN");
    s[1].seq = 9;
    ASSERT_OK(roster_revoke(r, "han-1", s, 2));
    ASSERT_ERR(roster_revoke(r, "han-1", s, 2), -KZ_EEXIST);
    /* A revoked member's keys and name stay taken. */
    ASSERT_ERR(
        roster_add_member(r, "han-9", "HAN", ROSTER_ROLE_SITE, &k.spk, &k2.dpk),
        -KZ_EEXIST);
    ASSERT_OK(roster_bump(r));
    ASSERT_U64_EQ(roster_version(r), 2);
    ASSERT_OK(roster_encode_sign(r, &a.ssk, &p, &len));
    kz_free(p);
    roster_free(r);
}

TEST(lookups)
{
    struct roster *r = sample(0xa0);
    struct keys k = keys_of(0x13), none = keys_of(0x77);
    const struct roster_member *m;

    m = roster_find_by_dh(r, &k.dpk);
    ASSERT(m != NULL);
    ASSERT_STR_EQ(m->name, "ol-1");
    ASSERT(roster_find_by_sign(r, &k.spk) == m);
    ASSERT(roster_find_by_name(r, "ol-1") == m);
    ASSERT(roster_find_by_dh(r, &none.dpk) == NULL);
    ASSERT(roster_find_by_sign(r, &none.spk) == NULL);
    ASSERT(roster_find_by_name(r, "ol-2") == NULL);
    ASSERT(roster_find_by_name(r, NULL) == NULL);
    /* Revoked members are still found (the caller checks ->revoked). */
    m = roster_find_by_name(r, "han-2");
    ASSERT(m != NULL && m->revoked);
    ASSERT(roster_find_by_dh(r, &m->dh_pk) == m);
    roster_free(r);
}

TEST(role_rules)
{
    static const struct {
        const char *member, *scope; /* who, what */
        bool read, write;           /* expected */
    } t[] = {
        {"state-1", "network", true, true},
        {"state-1", "site:HAN", true, false},
        {"state-1", "site:OL", true, false},
        {"state-1", "site:LAND", true, false},
        {"state-1", "private:HAN", false, false},
        {"state-1", "private:LAND", false, false},
        {"han-1", "network", true, false},
        {"han-1", "site:HAN", true, true},
        {"han-1", "private:HAN", true, true},
        {"han-1", "site:OL", false, false},
        {"han-1", "private:OL", false, false},
        {"han-1", "site:HANX", false, false},
        {"han-1", "site:HA", false, false},
        {"han-1", "private:HAN:x", false, false},
        {"ol-1", "site:OL", true, true},
        {"ol-1", "private:OL", true, true},
        {"ol-1", "site:HAN", false, false},
        {"obs-1", "network", true, false},
        {"obs-1", "site:HAN", true, false},
        {"obs-1", "site:OL", true, false},
        {"obs-1", "private:HAN", false, false},
        {"obs-1", "private:LAND", false, false},
        {"obs-1", "site:LAND", true, false},
        /* revoked: nothing at all */
        {"han-2", "network", false, false},
        {"han-2", "site:HAN", false, false},
        {"han-2", "private:HAN", false, false},
        /* malformed scopes: nothing for anyone */
        {"state-1", "", false, false},
        {"state-1", "Network", false, false},
        {"state-1", "network ", false, false},
        {"han-1", "site:", false, false},
        {"han-1", "HAN", false, false},
        {"obs-1", "site:*", false, false},
    };
    struct roster *r = sample(0xa0);
    size_t i;

    for (i = 0; i < KZ_ARRAY_SIZE(t); i++) {
        const struct roster_member *m = roster_find_by_name(r, t[i].member);

        ASSERT(m != NULL);
        if (roster_may_read(r, m, t[i].scope) != t[i].read)
            T_FAIL_("%s read %s: expected %d", t[i].member, t[i].scope,
                    t[i].read);
        if (roster_may_write(r, m, t[i].scope) != t[i].write)
            T_FAIL_("%s write %s: expected %d", t[i].member, t[i].scope,
                    t[i].write);
    }
    ASSERT(!roster_may_read(r, NULL, "network"));
    ASSERT(!roster_may_write(r, NULL, "network"));
    ASSERT(!roster_may_read(r, roster_member(r, 0), NULL));
    roster_free(r);
}

TEST(revoked_seqs)
{
    struct roster *r = sample(0xa0);
    const struct roster_member *h1 = roster_find_by_name(r, "han-1");
    const struct roster_member *h2 = roster_find_by_name(r, "han-2");

    ASSERT(roster_seq_accepted(h1, "site:HAN", 1000000));
    ASSERT(roster_seq_accepted(h2, "site:HAN", 17));
    ASSERT(roster_seq_accepted(h2, "site:HAN", 1));
    ASSERT(!roster_seq_accepted(h2, "site:HAN", 18));
    ASSERT(roster_seq_accepted(h2, "private:HAN", 4));
    ASSERT(!roster_seq_accepted(h2, "private:HAN", 5));
    ASSERT(!roster_seq_accepted(h2, "network", 1));
    ASSERT(!roster_seq_accepted(NULL, "network", 1));
    roster_free(r);
}

TEST(names_and_scopes)
{
    enum roster_role role;

    ASSERT(roster_name_valid("han-1.laptop_2"));
    ASSERT(!roster_name_valid("han/1"));
    ASSERT(!roster_name_valid(""));
    ASSERT(!roster_name_valid(NULL));
    ASSERT(roster_site_valid("LAND"));
    ASSERT(!roster_site_valid("LA.ND"));
    ASSERT(roster_scope_valid("network"));
    ASSERT(roster_scope_valid("site:HAN"));
    ASSERT(roster_scope_valid("private:HAN"));
    ASSERT(!roster_scope_valid("private:"));
    ASSERT(!roster_scope_valid("networks"));
    ASSERT(!roster_scope_valid(NULL));
    ASSERT_OK(roster_role_parse("observer", &role));
    ASSERT_EQ(role, ROSTER_ROLE_OBSERVER);
    ASSERT_ERR(roster_role_parse("observers", &role), -KZ_EINVAL);
    ASSERT_ERR(roster_role_parse(NULL, &role), -KZ_EINVAL);
    ASSERT_STR_EQ(roster_role_name(ROSTER_ROLE_SITE), "site");
    ASSERT(roster_role_name((enum roster_role)9) == NULL);
}

TEST(full_roster_4096)
{
    struct keys a = keys_of(0xa0);
    struct roster *r, *d;
    uint8_t *p;
    size_t len;
    uint32_t i;
    const char *why;

    ASSERT_OK(roster_new(&r, &a.spk));
    ASSERT_OK(roster_add_member(r, "state-1", "LAND", ROSTER_ROLE_ADMIN, &a.spk,
                                &a.dpk));
    for (i = 1; i < KZ_LIM_ROSTER_MEMBERS; i++) {
        struct kz_sign_pk s;
        struct kz_dh_pk dh;
        char name[32];

        /* Public keys need not be valid points for the roster itself. */
        memset(&s, 0, sizeof(s));
        memset(&dh, 0, sizeof(dh));
        memcpy(s.b, &i, sizeof(i));
        memcpy(dh.b, &i, sizeof(i));
        snprintf(name, sizeof(name), "dev-%u", (unsigned)i);
        ASSERT_OK(roster_add_member(r, name, "HAN", ROSTER_ROLE_SITE, &s, &dh));
    }
    {
        struct keys k = keys_of(3);
        ASSERT_ERR(roster_add_member(r, "one-more", "HAN", ROSTER_ROLE_SITE,
                                     &k.spk, &k.dpk),
                   -KZ_ELIMIT);
    }
    ASSERT_OK(roster_encode_sign(r, &a.ssk, &p, &len));
    ASSERT_LE(len, KZ_LIM_ROSTER_MAX);
    ASSERT_OK(roster_decode(&d, p, len, &a.spk, &why));
    ASSERT_EQ(roster_n_members(d), KZ_LIM_ROSTER_MEMBERS);
    assert_roster_eq(r, d);
    roster_free(d);
    kz_free(p);
    roster_free(r);
}

/* One build + encode + decode; returns the first error. */
static int
roster_cycle(void)
{
    static const struct roster_seq seqs[] = {{"site:HAN", 3}};
    struct keys a = keys_of(0xa0), k = keys_of(1), k2 = keys_of(2);
    struct roster *r = NULL, *d = NULL;
    uint8_t *p = NULL;
    size_t len;
    int rc;

    if ((rc = roster_new(&r, &a.spk)) != 0)
        goto out;
    if ((rc = roster_add_member(r, "state-1", "LAND", ROSTER_ROLE_ADMIN, &a.spk,
                                &a.dpk)) != 0 ||
        (rc = roster_add_member(r, "han-1", "HAN", ROSTER_ROLE_SITE, &k.spk,
                                &k.dpk)) != 0 ||
        (rc = roster_add_member(r, "han-2", "HAN", ROSTER_ROLE_SITE, &k2.spk,
                                &k2.dpk)) != 0 ||
        (rc = roster_revoke(r, "han-2", seqs, 1)) != 0)
        goto out;
    if ((rc = roster_encode_sign(r, &a.ssk, &p, &len)) != 0)
        goto out;
    if ((rc = roster_decode(&d, p, len, &a.spk, NULL)) != 0)
        goto out;
    assert_roster_eq(r, d);
out:
    kz_free(p);
    roster_free(d);
    roster_free(r);
    return rc;
}

TEST(alloc_failure_loop)
{
    long n;
    int rc, ok = 0;

    for (n = 0; n < 200 && ok < 3; n++) {
        kz_alloc_fail_after(n);
        rc = roster_cycle();
        kz_alloc_fail_after(-1);
        if (rc != 0 && rc != -KZ_ENOMEM)
            T_FAIL_("n=%ld: %d (%s)", n, rc, kz_err_name(rc));
        ok += rc == 0;
    }
    ASSERT_GT(ok, 0);
}

static void seed(const char *dir, const char *sub, const char *name,
                 const void *p, size_t len);

/* seed_if_wanted(sub, name, p, len): a regression input as a fuzz seed. */
static void
seed_if_wanted(const char *sub, const char *name, const void *p, size_t len)
{
    const char *dir = getenv("KZ_WRITE_CORPUS");

    if (dir != NULL)
        seed(dir, sub, name, p, len);
}

/* ---- join requests and key texts --------------------------------------- */

static struct join_request
sample_join(const struct keys *k)
{
    struct join_request jr;

    memset(&jr, 0, sizeof(jr));
    strcpy(jr.name, "han-laptop-1");
    strcpy(jr.site, "HAN");
    jr.sign_pk = k->spk;
    jr.dh_pk = k->dpk;
    jr.created_ms = 1717171717171ull;
    return jr;
}

/* join_text(body, len, sk): "kzjoin1." + b64url([body, sig by sk]). */
static char *
join_text(const uint8_t *body, size_t len, const struct kz_sign_sk *sk)
{
    uint8_t *env;
    size_t env_len;
    char *text;
    size_t tlen;

    env = sign_wrap(body, len, sk, &env_len);
    tlen = 8 + sodium_base64_ENCODED_LEN(
                   env_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    text = malloc(tlen);
    ASSERT(text != NULL);
    memcpy(text, "kzjoin1.", 8);
    ASSERT(sodium_bin2base64(text + 8, tlen - 8, env, env_len,
                             sodium_base64_VARIANT_URLSAFE_NO_PADDING) != NULL);
    free(env);
    return text;
}

TEST(join_round_trip)
{
    struct keys k = keys_of(0x21);
    struct join_request jr = sample_join(&k), got;
    char *text;
    const char *why = "x";

    ASSERT_OK(join_encode(&jr, &k.ssk, &text));
    ASSERT(strncmp(text, "kzjoin1.", 8) == 0);
    ASSERT_LE(strlen(text), KZ_LIM_JOIN_MAX);
    ASSERT(strspn(text + 8,
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                  "0123456789-_") == strlen(text) - 8);
    ASSERT_OK(join_decode(&got, text, &why));
    ASSERT(why == NULL);
    ASSERT_STR_EQ(got.name, jr.name);
    ASSERT_STR_EQ(got.site, jr.site);
    ASSERT_MEM_EQ(got.sign_pk.b, jr.sign_pk.b, 32);
    ASSERT_MEM_EQ(got.dh_pk.b, jr.dh_pk.b, 32);
    ASSERT_U64_EQ(got.created_ms, jr.created_ms);
    kz_free(text);
    /* Longest name and site still fit KZ_LIM_JOIN_MAX. */
    memset(jr.name, 'n', KZ_LIM_DEVICE_NAME_MAX);
    memset(jr.site, 's', KZ_LIM_SITE_MAX);
    jr.created_ms = UINT64_MAX;
    ASSERT_OK(join_encode(&jr, &k.ssk, &text));
    ASSERT_LE(strlen(text), KZ_LIM_JOIN_MAX);
    ASSERT_OK(join_decode(&got, text, NULL));
    ASSERT_STR_EQ(got.name, jr.name);
    kz_free(text);
}

TEST(join_encode_refuses)
{
    struct keys k = keys_of(0x21), o = keys_of(0x22);
    struct join_request jr = sample_join(&k);
    char *text;

    ASSERT_ERR(join_encode(&jr, &o.ssk, &text), -KZ_EINVAL);
    ASSERT(text == NULL);
    strcpy(jr.name, "han laptop");
    ASSERT_ERR(join_encode(&jr, &k.ssk, &text), -KZ_EINVAL);
    jr = sample_join(&k);
    strcpy(jr.site, "");
    ASSERT_ERR(join_encode(&jr, &k.ssk, &text), -KZ_EINVAL);
}

TEST(join_every_byte_flip_refused)
{
    static const uint8_t masks[] = {0x01, 0x02, 0x20, 0x40, 0x7f};
    struct keys k = keys_of(0x21);
    struct join_request jr = sample_join(&k), got;
    char *text, *t2;
    size_t len, i, m;
    const char *why;

    ASSERT_OK(join_encode(&jr, &k.ssk, &text));
    len = strlen(text);
    t2 = malloc(len + 2);
    ASSERT(t2 != NULL);
    for (i = 0; i < len; i++) {
        for (m = 0; m < sizeof(masks); m++) {
            memcpy(t2, text, len + 1);
            t2[i] = (char)(t2[i] ^ masks[m]);
            why = NULL;
            if (join_decode(&got, t2, &why) == 0)
                T_FAIL_("char %zu ^ %02x accepted", i, masks[m]);
            ASSERT(why != NULL);
            ASSERT(sodium_is_zero((const unsigned char *)&got, sizeof(got)));
        }
    }
    for (i = 0; i < len; i++) {
        memcpy(t2, text, i);
        t2[i] = '\0';
        if (join_decode(&got, t2, &why) == 0)
            T_FAIL_("truncated to %zu accepted", i);
    }
    /* Extra characters: a trailing newline, padding, one more digit. */
    memcpy(t2, text, len);
    strcpy(t2 + len, "\n");
    ASSERT_ERR(join_decode(&got, t2, &why), -KZ_EMALFORMED);
    strcpy(t2 + len, "=");
    ASSERT_ERR(join_decode(&got, t2, &why), -KZ_EMALFORMED);
    strcpy(t2 + len, "A");
    ASSERT(join_decode(&got, t2, &why) != 0);
    free(t2);
    kz_free(text);
}

TEST(join_exact_negatives)
{
    struct keys k = keys_of(0x21), o = keys_of(0x22);
    struct join_request jr = sample_join(&k), got;
    struct pk b;
    char *text, long_text[KZ_LIM_JOIN_MAX + 2];
    const char *why;
    uint8_t *body;
    size_t body_len;

    ASSERT_ERR(join_decode(&got, NULL, &why), -KZ_EINVAL);
    ASSERT_ERR(join_decode(&got, "", &why), -KZ_EMALFORMED);
    ASSERT_ERR(join_decode(&got, "kzjoin1.", &why), -KZ_EMALFORMED);
    ASSERT_ERR(join_decode(&got, "kzjoin2.kQ", &why), -KZ_EVERSION);
    ASSERT_ERR(join_decode(&got, "KZJOIN1.kQ", &why), -KZ_EMALFORMED);
    ASSERT_ERR(join_decode(&got, " kzjoin1.kQ", &why), -KZ_EMALFORMED);
    ASSERT_ERR(join_decode(&got, "kzjoin1.k Q", &why), -KZ_EMALFORMED);
    ASSERT_ERR(join_decode(&got, "kzjoin1.kQ+/", &why), -KZ_EMALFORMED);
    /* "kA" is 0x90 ([]); "kB" sets an unused bit: non-canonical. */
    ASSERT_ERR(join_decode(&got, "kzjoin1.kA", &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "join request is not [body, sig]");
    ASSERT_ERR(join_decode(&got, "kzjoin1.kB", &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "join request: bad base64url");
    memset(long_text, 'A', sizeof(long_text) - 1);
    memcpy(long_text, "kzjoin1.", 8);
    long_text[sizeof(long_text) - 1] = '\0';
    ASSERT_ERR(join_decode(&got, long_text, &why), -KZ_ELIMIT);

    /* Signed by another key than the one it names. */
    ASSERT_OK(join__encode_body(&jr, &body, &body_len));
    text = join_text(body, body_len, &o.ssk);
    ASSERT_ERR(join_decode(&got, text, &why), -KZ_EAUTH);
    ASSERT_STR_EQ(why, "join request: bad signature");
    free(text);
    /* The right signer: accepted (join_text is a second encoder). */
    text = join_text(body, body_len, &k.ssk);
    ASSERT_OK(join_decode(&got, text, &why));
    free(text);
    kz_free(body);

    /* Body format 2 (validly signed): a version error. */
    pk_init(&b);
    msgpack_pack_array(&b.p, 6);
    msgpack_pack_uint8(&b.p, 2);
    pk_str(&b, "han-1");
    pk_str(&b, "HAN");
    pk_bin(&b, k.spk.b, 32);
    pk_bin(&b, k.dpk.b, 32);
    msgpack_pack_uint8(&b.p, 0);
    text = join_text((const uint8_t *)b.sb.data, b.sb.size, &k.ssk);
    ASSERT_ERR(join_decode(&got, text, &why), -KZ_EVERSION);
    free(text);
    /* Format 1 with a bad name. */
    ((uint8_t *)b.sb.data)[1] = 1;
    ((uint8_t *)b.sb.data)[3 + 3] = ' '; /* "han 1" */
    text = join_text((const uint8_t *)b.sb.data, b.sb.size, &k.ssk);
    ASSERT_ERR(join_decode(&got, text, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "bad device name");
    free(text);
    msgpack_sbuffer_destroy(&b.sb);
    /* Fuzz finding: a site "L\0ND" passed as "L" (checked after the
     * copy, up to the NUL).  Exact bytes of the body, minimised. */
    {
        static const uint8_t in[] = {
            0x96, 0x01, 0xa1, 'd', 0xa4, 'L', 0x00, 'N',  'D',  0xc4, 0x20, 1,
            2,    3,    4,    5,   6,    7,   8,    9,    10,   11,   12,   13,
            14,   15,   16,   17,  18,   19,  20,   21,   22,   23,   24,   25,
            26,   27,   28,   29,  30,   31,  32,   0xc4, 0x20, 1,    2,    3,
            4,    5,    6,    7,   8,    9,   10,   11,   12,   13,   14,   15,
            16,   17,   18,   19,  20,   21,  22,   23,   24,   25,   26,   27,
            28,   29,   30,   31,  32,   0x00};

        ASSERT_ERR(join__decode_body(&got, in, sizeof(in), &why),
                   -KZ_EMALFORMED);
        ASSERT_STR_EQ(why, "bad site code");
        {
            uint8_t ok[sizeof(in)];

            memcpy(ok, in, sizeof(in));
            ok[6] = 'A'; /* "LAND" */
            ASSERT_OK(join__decode_body(&got, ok, sizeof(ok), &why));
            ASSERT_STR_EQ(got.site, "LAND");
        }
        seed_if_wanted("join", "regress_site_nul", in, sizeof(in));
    }
    /* Body directly: 7 fields; trailing byte. */
    ASSERT_ERR(join__decode_body(&got, (const uint8_t *)"\x97\x01", 2, &why),
               -KZ_EMALFORMED);
    ASSERT_ERR(join__decode_body(&got, (const uint8_t *)"\x91\x03", 2, &why),
               -KZ_EVERSION);
}

TEST(join_alloc_failure_loop)
{
    struct keys k = keys_of(0x21);
    struct join_request jr = sample_join(&k), got;
    long n;
    int rc, ok = 0;

    for (n = 0; n < 50 && ok < 3; n++) {
        char *text = NULL;

        kz_alloc_fail_after(n);
        rc = join_encode(&jr, &k.ssk, &text);
        if (rc == 0)
            rc = join_decode(&got, text, NULL);
        kz_alloc_fail_after(-1);
        kz_free(text);
        if (rc != 0 && rc != -KZ_ENOMEM)
            T_FAIL_("n=%ld: %d (%s)", n, rc, kz_err_name(rc));
        ok += rc == 0;
    }
    ASSERT_GT(ok, 0);
}

TEST(key_texts)
{
    struct keys k = keys_of(0x31);
    struct kz_sign_pk spk;
    struct kz_dh_pk dpk;
    char a[ADMINKEY_TEXT_LEN + 1], s[SERVERKEY_TEXT_LEN + 1], t[80];
    size_t i;

    ASSERT_OK(adminkey_encode(&k.spk, a));
    ASSERT_EQ(strlen(a), ADMINKEY_TEXT_LEN);
    ASSERT(strncmp(a, "kzadmin1.", 9) == 0);
    ASSERT_OK(adminkey_decode(&spk, a));
    ASSERT_MEM_EQ(spk.b, k.spk.b, 32);
    ASSERT_OK(serverkey_encode(&k.dpk, s));
    ASSERT_EQ(strlen(s), SERVERKEY_TEXT_LEN);
    ASSERT(strncmp(s, "kzserver1.", 10) == 0);
    ASSERT_OK(serverkey_decode(&dpk, s));
    ASSERT_MEM_EQ(dpk.b, k.dpk.b, 32);

    /* Each prefix only where it belongs. */
    ASSERT_ERR(adminkey_decode(&spk, s), -KZ_EMALFORMED);
    ASSERT_ERR(serverkey_decode(&dpk, a), -KZ_EMALFORMED);
    ASSERT_ERR(adminkey_decode(&spk, NULL), -KZ_EINVAL);
    ASSERT_ERR(serverkey_decode(&dpk, NULL), -KZ_EINVAL);
    /* One character more or less; trailing newline. */
    snprintf(t, sizeof(t), "%sA", a);
    ASSERT_ERR(adminkey_decode(&spk, t), -KZ_EMALFORMED);
    snprintf(t, sizeof(t), "%.*s", (int)ADMINKEY_TEXT_LEN - 1, a);
    ASSERT_ERR(adminkey_decode(&spk, t), -KZ_EMALFORMED);
    snprintf(t, sizeof(t), "%s\n", s);
    ASSERT_ERR(serverkey_decode(&dpk, t), -KZ_EMALFORMED);
    /* Every character changed: refused, or (in the base64 part) a
     * different key - never the same one. */
    for (i = 0; i < SERVERKEY_TEXT_LEN; i++) {
        strcpy(t, s);
        t[i] = (char)(t[i] ^ 0x01);
        if (serverkey_decode(&dpk, t) == 0)
            ASSERT(memcmp(dpk.b, k.dpk.b, 32) != 0);
        else
            ASSERT(sodium_is_zero(dpk.b, 32));
    }
    /* The last of 43 characters carries 2 bits + 4 unused: an unused bit
     * set is non-canonical and refused. */
    snprintf(t, sizeof(t), "kzserver1.%.42s%c", s + 10, 'B');
    ASSERT_ERR(serverkey_decode(&dpk, t), -KZ_EMALFORMED);
    /* All-zero server key. */
    ASSERT_ERR(serverkey_decode(&dpk,
                                "kzserver1."
                                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
               -KZ_EMALFORMED);
    /* Admin key: the Ed25519 identity point (small order) is refused. */
    {
        struct kz_sign_pk id;
        memset(&id, 0, sizeof(id));
        id.b[0] = 1;
        ASSERT_OK(adminkey_encode(&id, t));
        ASSERT_ERR(adminkey_decode(&spk, t), -KZ_EMALFORMED);
        ASSERT(sodium_is_zero(spk.b, 32));
    }
}

/* ---- fuzz seeds -------------------------------------------------------- */

static void
seed(const char *dir, const char *sub, const char *name, const void *p,
     size_t len)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    (void)mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
    f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT_EQ(fwrite(p, 1, len, f), len);
    ASSERT_EQ(fclose(f), 0);
}

TEST(write_corpus)
{
    const char *dir = getenv("KZ_WRITE_CORPUS");
    struct keys a = keys_of(FUZZ_ADMIN_SEED);
    struct roster *r;
    uint8_t *p;
    size_t len, i;
    char name[64];

    if (dir == NULL)
        return; /* only on demand: KZ_WRITE_CORPUS=tests/fuzz/corpus */

    /* Rosters: growing member lists, signed envelopes and bare bodies. */
    ASSERT_OK(roster_new(&r, &a.spk));
    ASSERT_OK(roster_add_member(r, "state-1", "LAND", ROSTER_ROLE_ADMIN, &a.spk,
                                &a.dpk));
    for (i = 0; i < 12; i++) {
        static const char *sites[] = {"HAN", "OL", "LG", "LAND"};
        struct keys k = keys_of((uint8_t)(0x50 + i));
        struct roster_seq s[2] = {{"site:HAN", 5}, {"private:HAN", 1}};

        ASSERT_OK(roster_encode_sign(r, &a.ssk, &p, &len));
        snprintf(name, sizeof(name), "signed_%02zu", i);
        seed(dir, "roster", name, p, len);
        kz_free(p);
        ASSERT_OK(roster__encode_body(r, &p, &len));
        snprintf(name, sizeof(name), "body_%02zu", i);
        seed(dir, "roster", name, p, len);
        kz_free(p);
        snprintf(name, sizeof(name), "dev-%zu", i);
        ASSERT_OK(roster_add_member(r, name, sites[i % 4],
                                    i % 5 == 4 ? ROSTER_ROLE_OBSERVER
                                               : ROSTER_ROLE_SITE,
                                    &k.spk, &k.dpk));
        if (i % 3 == 2)
            ASSERT_OK(roster_revoke(r, name, s, (uint32_t)(i % 2 + 1)));
        ASSERT_OK(roster_bump(r));
    }
    roster_free(r);
    /* A few hand-made bodies: format 2, #1013, an unknown role. */
    seed(dir, "roster", "body_format2", "\x91\x02", 2);
    seed(dir, "roster", "body_issue1013", "\x94\x01\x01\xdd\xff\x00\x00\x00",
         8);
    {
        struct mspec ms[2] = {ADMIN_M,
                              {"han-1", "HAN", "root", 1, false, 0, NULL, 7}};
        struct pk k;

        pk_body(&k, 1, 1, 0xa0, ms, 2);
        seed(dir, "roster", "body_badrole", k.sb.data, k.sb.size);
        msgpack_sbuffer_destroy(&k.sb);
    }

    /* Join requests (texts) and bare join bodies. */
    for (i = 0; i < 16; i++) {
        struct keys k = keys_of((uint8_t)(0x80 + i));
        struct join_request jr = sample_join(&k);
        char *text;

        snprintf(jr.name, sizeof(jr.name), "dev.%zu_%.*s", i, (int)(i * 3),
                 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
        snprintf(jr.site, sizeof(jr.site), "%s", i % 2 ? "HAN" : "LAND");
        jr.created_ms = (uint64_t)1 << (i * 4);
        ASSERT_OK(join_encode(&jr, &k.ssk, &text));
        snprintf(name, sizeof(name), "text_%02zu", i);
        seed(dir, "join", name, text, strlen(text));
        kz_free(text);
        ASSERT_OK(join__encode_body(&jr, &p, &len));
        snprintf(name, sizeof(name), "body_%02zu", i);
        seed(dir, "join", name, p, len);
        kz_free(p);
    }
    {
        char t[SERVERKEY_TEXT_LEN + 1];

        ASSERT_OK(adminkey_encode(&a.spk, t));
        seed(dir, "join", "adminkey", t, strlen(t));
        ASSERT_OK(serverkey_encode(&a.dpk, t));
        seed(dir, "join", "serverkey", t, strlen(t));
    }
    seed(dir, "join", "text_version2", "kzjoin2.kQ", 10);
    seed(dir, "join", "body_format2", "\x91\x02", 2);
}

T_MAIN(T(round_trip), T(every_byte_flip_refused), T(other_signer_refused),
       T(envelope_exact_bytes), T(body_exact_bytes), T(body_rules),
       T(body_duplicate_dh_and_types), T(every_body_truncation_refused),
       T(builders), T(lookups), T(role_rules), T(revoked_seqs),
       T(names_and_scopes), T(full_roster_4096), T(alloc_failure_loop),
       T(join_round_trip), T(join_encode_refuses),
       T(join_every_byte_flip_refused), T(join_exact_negatives),
       T(join_alloc_failure_loop), T(key_texts), T(write_corpus))
