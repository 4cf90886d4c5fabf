/*
 * test_noise.c: proto/noise against the published Noise test vectors
 * (cacophony and snow, ../shared/testvectors/noise/), tamper tests, low-
 * order keys, prologue mismatch, random XX and IK handshakes and the
 * transport CipherState's failure rules.
 *
 * Vector runs compare every handshake and transport ciphertext byte for
 * byte, every decrypted payload, and handshake_hash where the file has it.
 * Counts are asserted so that nothing is skipped silently.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "crypto.h"
#include "err.h"
#include "hex.h"
#include "noise.h"

#include "t.h"

#define VEC_DIR KZ_SHARED_DIR "/testvectors/noise/"

/*
 * Patterns present in the vector files that we do not run, with the reason.
 * Empty: the token table covers every fundamental, one-way, deferred and
 * psk pattern in both files.  Add {"NAME", "reason"} here rather than
 * skipping anything silently; the expected counts below then drop.
 */
static const struct {
    const char *pattern;
    const char *reason;
} SKIPPED[] = {{NULL, NULL}};

/* 59 cacophony and 51 snow vectors per hash (testvectors/noise/README.md). */
#define N_CACOPHONY 59
#define N_SNOW 51

static cJSON *
load(const char *path)
{
    char *s = t_slurp(path, NULL);
    cJSON *j = cJSON_Parse(s);

    free(s);
    if (j == NULL)
        T_FAIL_("cannot parse %s", path);
    return j;
}

/* hex(j, key, len): the hex string field decoded (malloc), or NULL. */
static uint8_t *
hex_field(const cJSON *j, const char *key, size_t *len)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, key);
    uint8_t *p;
    size_t n;

    *len = 0;
    if (f == NULL)
        return NULL;
    ASSERT(cJSON_IsString(f));
    n = strlen(f->valuestring);
    ASSERT(n % 2 == 0);
    p = malloc(n / 2 + 1);
    ASSERT(p != NULL);
    ASSERT_OK(kz_hex_decode(p, n / 2, f->valuestring));
    *len = n / 2;
    return p;
}

static int
key_field(const cJSON *j, const char *key, uint8_t out[32])
{
    size_t len;
    uint8_t *p = hex_field(j, key, &len);

    if (p == NULL)
        return 0;
    ASSERT_EQ(len, 32);
    memcpy(out, p, 32);
    free(p);
    return 1;
}

static const char *
pattern_of(const char *protocol, char *buf, size_t cap)
{
    const char *a = strchr(protocol, '_') + 1, *b = strchr(a, '_');

    ASSERT((size_t)(b - a) < cap);
    memcpy(buf, a, (size_t)(b - a));
    buf[b - a] = '\0';
    return buf;
}

static int
is_skipped(const char *protocol)
{
    char pat[64];
    size_t i;

    pattern_of(protocol, pat, sizeof(pat));
    for (i = 0; SKIPPED[i].pattern != NULL; i++)
        if (strcmp(SKIPPED[i].pattern, pat) == 0)
            return 1;
    return 0;
}

/* One side's configuration from a vector ("init" or "resp"). */
struct side {
    struct kz_dh_sk s, e;
    struct kz_dh_pk rs;
    struct kz_noise_psk psks[KZ_NOISE_PSK_MAX];
    uint8_t *prologue;
    size_t prologue_len;
    struct kz_noise_cfg cfg;
};

static void
side_init(struct side *sd, const cJSON *v, const char *who)
{
    char key[64];
    const cJSON *psks, *it;
    size_t n = 0;

    memset(sd, 0, sizeof(*sd));
    sd->cfg.protocol =
        cJSON_GetObjectItemCaseSensitive(v, "protocol_name")->valuestring;
    sd->cfg.initiator = strcmp(who, "init") == 0;
    snprintf(key, sizeof(key), "%s_prologue", who);
    sd->prologue = hex_field(v, key, &sd->prologue_len);
    sd->cfg.prologue = sd->prologue;
    sd->cfg.prologue_len = sd->prologue_len;
    snprintf(key, sizeof(key), "%s_static", who);
    if (key_field(v, key, sd->s.b))
        sd->cfg.s = &sd->s;
    snprintf(key, sizeof(key), "%s_ephemeral", who);
    if (key_field(v, key, sd->e.b))
        sd->cfg.e = &sd->e;
    snprintf(key, sizeof(key), "%s_remote_static", who);
    if (key_field(v, key, sd->rs.b))
        sd->cfg.rs = &sd->rs;
    snprintf(key, sizeof(key), "%s_psks", who);
    psks = cJSON_GetObjectItemCaseSensitive(v, key);
    cJSON_ArrayForEach(it, psks)
    {
        ASSERT(n < KZ_NOISE_PSK_MAX);
        ASSERT(cJSON_IsString(it) && strlen(it->valuestring) == 64);
        ASSERT_OK(kz_hex_decode(sd->psks[n].b, 32, it->valuestring));
        n++;
    }
    sd->cfg.psks = n ? sd->psks : NULL;
    sd->cfg.n_psks = n;
    sd->cfg.env = NULL; /* deterministic: only the injected ephemeral */
}

/*
 * run_vec(v, t_msg, t_pos, t_xor, check): runs vector ${v}.  If t_msg ≥ 0,
 * byte t_pos (mod length) of message t_msg is XORed with t_xor on the wire.
 * Returns the index of the first message whose read failed, or -1 if every
 * message went through.  With ${check}, asserts byte equality throughout.
 */
static int
run_vec(const cJSON *v, int t_msg, size_t t_pos, uint8_t t_xor, int check)
{
    struct side si, sr;
    struct kz_noise *hi = NULL, *hr = NULL;
    struct kz_noise_cs *i_send = NULL, *i_recv = NULL, *r_send = NULL,
                       *r_recv = NULL;
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(v, "messages");
    const cJSON *m;
    static uint8_t out[KZ_LIM_NOISE_MSG_MAX], pl[KZ_LIM_NOISE_MSG_MAX];
    size_t out_len, pl_len;
    int idx = 0, failed = -1, rc;

    side_init(&si, v, "init");
    side_init(&sr, v, "resp");
    ASSERT_OK(kz_noise_new(&hi, &si.cfg));
    ASSERT_OK(kz_noise_new(&hr, &sr.cfg));

    cJSON_ArrayForEach(m, msgs)
    {
        size_t p_len, c_len;
        uint8_t *payload = hex_field(m, "payload", &p_len);
        uint8_t *ct = hex_field(m, "ciphertext", &c_len);
        int hs_phase = kz_noise_next(hi) == KZ_NOISE_WRITE ||
                       kz_noise_next(hi) == KZ_NOISE_READ;

        ASSERT(payload != NULL && ct != NULL);
        if (hs_phase) {
            struct kz_noise *w, *r;

            w = kz_noise_next(hi) == KZ_NOISE_WRITE ? hi : hr;
            r = w == hi ? hr : hi;
            ASSERT_EQ(kz_noise_next(w), KZ_NOISE_WRITE);
            ASSERT_EQ(kz_noise_next(r), KZ_NOISE_READ);
            ASSERT_EQ(kz_noise_overhead(w), kz_noise_overhead(r));
            rc = kz_noise_write(w, payload, p_len, out, sizeof(out), &out_len);
            if (rc != 0 && !check) {
                /* A tampered earlier message made this side's DH fail. */
                failed = idx;
                free(payload);
                free(ct);
                break;
            }
            ASSERT_OK(rc);
            if (check) {
                ASSERT_EQ(out_len, c_len);
                ASSERT_MEM_EQ(out, ct, c_len);
            }
            if (idx == t_msg)
                out[t_pos % out_len] ^= t_xor;
            rc = kz_noise_read(r, out, out_len, pl, sizeof(pl), &pl_len);
            if (rc != 0) {
                ASSERT(!check);
                ASSERT_EQ(kz_noise_next(r), KZ_NOISE_FAILED);
                /* Poisoned: the same call fails again. */
                ASSERT_EQ(
                    kz_noise_read(r, out, out_len, pl, sizeof(pl), &pl_len),
                    rc);
                failed = idx;
                free(payload);
                free(ct);
                break;
            }
            if (check) {
                ASSERT_EQ(pl_len, p_len);
                ASSERT_MEM_EQ(pl, payload, p_len);
            }
            if (kz_noise_next(hi) == KZ_NOISE_SPLIT) {
                uint8_t h1[64], h2[64];
                size_t h1_len, h2_len, exp_len;
                uint8_t *exp = hex_field(v, "handshake_hash", &exp_len);

                ASSERT_EQ(kz_noise_next(hr), KZ_NOISE_SPLIT);
                ASSERT_OK(kz_noise_handshake_hash(hi, h1, &h1_len));
                ASSERT_OK(kz_noise_handshake_hash(hr, h2, &h2_len));
                if (check) {
                    ASSERT_EQ(h1_len, h2_len);
                    ASSERT_MEM_EQ(h1, h2, h1_len);
                }
                if (exp != NULL && check) {
                    ASSERT_EQ(exp_len, h1_len);
                    ASSERT_MEM_EQ(h1, exp, exp_len);
                }
                free(exp);
                ASSERT_OK(kz_noise_split(hi, &i_send, &i_recv));
                ASSERT_OK(kz_noise_split(hr, &r_send, &r_recv));
                ASSERT(i_send != NULL && r_recv != NULL);
                ASSERT((i_recv == NULL) == (r_send == NULL));
                ASSERT_EQ(kz_noise_next(hi), KZ_NOISE_DONE);
            }
        } else {
            /* One-way: everything goes initiator → responder. */
            int from_i = i_recv == NULL || idx % 2 == 0;
            struct kz_noise_cs *tx = from_i ? i_send : r_send;
            struct kz_noise_cs *rx = from_i ? r_recv : i_recv;

            ASSERT_OK(kz_noise_cs_encrypt(tx, payload, p_len, out, sizeof(out),
                                          &out_len));
            if (check) {
                ASSERT_EQ(out_len, c_len);
                ASSERT_MEM_EQ(out, ct, c_len);
            }
            if (idx == t_msg)
                out[t_pos % out_len] ^= t_xor;
            rc = kz_noise_cs_decrypt(rx, out, out_len, pl, sizeof(pl), &pl_len);
            if (rc != 0) {
                ASSERT(!check);
                failed = idx;
                free(payload);
                free(ct);
                break;
            }
            if (check) {
                ASSERT_EQ(pl_len, p_len);
                ASSERT_MEM_EQ(pl, payload, p_len);
            }
        }
        free(payload);
        free(ct);
        idx++;
    }
    if (check)
        ASSERT_EQ(kz_noise_next(hi), KZ_NOISE_DONE);
    kz_noise_cs_free(i_send);
    kz_noise_cs_free(i_recv);
    kz_noise_cs_free(r_send);
    kz_noise_cs_free(r_recv);
    kz_noise_free(hi);
    kz_noise_free(hr);
    free(si.prologue);
    free(sr.prologue);
    return failed;
}

/* run_file(path, suffix): runs every vector whose name ends in ${suffix}. */
static int
run_file(const char *path, const char *suffix, int *skipped)
{
    cJSON *j = load(path);
    const cJSON *v;
    int n = 0;

    *skipped = 0;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(j, "vectors"))
    {
        const char *name =
            cJSON_GetObjectItemCaseSensitive(v, "protocol_name")->valuestring;
        size_t nl = strlen(name), sl = strlen(suffix);

        if (nl < sl || strcmp(name + nl - sl, suffix) != 0)
            continue;
        if (is_skipped(name)) {
            (*skipped)++;
            continue;
        }
        fprintf(stderr, "   %s\n", name);
        ASSERT_EQ(run_vec(v, -1, 0, 0, 1), -1);
        n++;
    }
    cJSON_Delete(j);
    return n;
}

static void
init(void)
{
    ASSERT_OK(kz_crypto_init());
}

TEST(vectors_cacophony)
{
    int skipped, n;

    init();
    n = run_file(VEC_DIR "cacophony.25519_ChaChaPoly_BLAKE2b.json",
                 "_25519_ChaChaPoly_BLAKE2b", &skipped);
    ASSERT_EQ(n + skipped, N_CACOPHONY);
    ASSERT_EQ(skipped, 0);
    ASSERT_EQ(n, 59);
}

TEST(vectors_snow)
{
    int skipped, n;

    init();
    n = run_file(VEC_DIR "snow.25519_ChaChaPoly_BLAKE2b.json",
                 "_25519_ChaChaPoly_BLAKE2b", &skipped);
    ASSERT_EQ(n + skipped, N_SNOW);
    ASSERT_EQ(skipped, 0);
    ASSERT_EQ(n, 51);
}

/* The same patterns with SHA256 and SHA512, from the full upstream files. */
TEST(vectors_sha2)
{
    int skipped, n = 0, s;

    init();
    n += run_file(VEC_DIR "cacophony.txt", "_25519_ChaChaPoly_SHA256", &s);
    skipped = s;
    n += run_file(VEC_DIR "cacophony.txt", "_25519_ChaChaPoly_SHA512", &s);
    skipped += s;
    n += run_file(VEC_DIR "snow.txt", "_25519_ChaChaPoly_SHA256", &s);
    skipped += s;
    n += run_file(VEC_DIR "snow.txt", "_25519_ChaChaPoly_SHA512", &s);
    skipped += s;
    ASSERT_EQ(skipped, 0);
    ASSERT_EQ(n, 2 * N_CACOPHONY + 2 * N_SNOW);
}

/* A message carries a tag unless it is the first one and no key exists
 * yet; such a first message is caught when the next message is read. */
static void
tamper_file(const char *path)
{
    cJSON *j = load(path);
    const cJSON *v;
    static const uint8_t xors[] = {0x01, 0x80};
    int n_vec = 0;
    long n_runs = 0;

    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(j, "vectors"))
    {
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(v, "messages");
        int k, n_msgs = cJSON_GetArraySize(msgs);

        for (k = 0; k < n_msgs; k++) {
            const cJSON *m = cJSON_GetArrayItem(msgs, k);
            size_t ct_len, pos, x;
            uint8_t *ct = hex_field(m, "ciphertext", &ct_len);

            free(ct);
            for (pos = 0; pos < ct_len; pos++) {
                for (x = 0; x < KZ_ARRAY_SIZE(xors); x++) {
                    int f = run_vec(v, k, pos, xors[x], 0);
                    if (k == 0) {
                        if (f != 0 && f != 1)
                            T_FAIL_("%s: flip msg 0 byte %zu not caught (%d)",
                                    cJSON_GetObjectItemCaseSensitive(
                                        v, "protocol_name")
                                        ->valuestring,
                                    pos, f);
                    } else if (f != k) {
                        T_FAIL_(
                            "%s: flip msg %d byte %zu caught at %d",
                            cJSON_GetObjectItemCaseSensitive(v, "protocol_name")
                                ->valuestring,
                            k, pos, f);
                    }
                    n_runs++;
                }
            }
        }
        n_vec++;
    }
    cJSON_Delete(j);
    ASSERT_EQ(n_vec, N_CACOPHONY);
    fprintf(stderr, "   %ld tampered runs\n", n_runs);
}

TEST(tamper_every_byte)
{
    init();
    tamper_file(VEC_DIR "cacophony.25519_ChaChaPoly_BLAKE2b.json");
}

/* ---- Handshakes between fresh states ----------------------------------- */

struct party {
    struct kz_dh_sk s;
    struct kz_dh_pk pub;
};

static void
party_new(struct party *p)
{
    ASSERT_OK(kz_dh_keypair(kz_env_system(), &p->pub, &p->s));
}

/*
 * handshake(hi, hr, tamper): runs the handshake to the end with payloads,
 * checks both sides agree, returns the transport states.
 */
static void
handshake(struct kz_noise *hi, struct kz_noise *hr, struct kz_noise_cs **cs)
{
    uint8_t msg[KZ_LIM_NOISE_MSG_MAX], pl[KZ_LIM_NOISE_MSG_MAX];
    uint8_t h1[64], h2[64];
    size_t len, pl_len, h1_len, h2_len;
    int i = 0;

    while (kz_noise_next(hi) == KZ_NOISE_WRITE ||
           kz_noise_next(hi) == KZ_NOISE_READ) {
        struct kz_noise *w = kz_noise_next(hi) == KZ_NOISE_WRITE ? hi : hr;
        struct kz_noise *r = w == hi ? hr : hi;
        char payload[32];

        snprintf(payload, sizeof(payload), "payload %d", i);
        /* A too-small buffer leaves the state unchanged. */
        ASSERT_ERR(kz_noise_write(w, (const uint8_t *)payload, strlen(payload),
                                  msg, kz_noise_overhead(w), &len),
                   -KZ_EINVAL);
        ASSERT_OK(kz_noise_write(w, (const uint8_t *)payload, strlen(payload),
                                 msg, sizeof(msg), &len));
        ASSERT_EQ(len, strlen(payload) + kz_noise_overhead(r));
        ASSERT_ERR(kz_noise_read(r, msg, len, pl, 1, &pl_len), -KZ_EINVAL);
        ASSERT_OK(kz_noise_read(r, msg, len, pl, sizeof(pl), &pl_len));
        ASSERT_EQ(pl_len, strlen(payload));
        ASSERT_MEM_EQ(pl, payload, pl_len);
        i++;
    }
    ASSERT_EQ(kz_noise_next(hr), KZ_NOISE_SPLIT);
    ASSERT_OK(kz_noise_handshake_hash(hi, h1, &h1_len));
    ASSERT_OK(kz_noise_handshake_hash(hr, h2, &h2_len));
    ASSERT_EQ(h1_len, 64);
    ASSERT_EQ(h2_len, 64);
    ASSERT_MEM_EQ(h1, h2, 64);
    ASSERT_OK(kz_noise_split(hi, &cs[0], &cs[1]));
    ASSERT_OK(kz_noise_split(hr, &cs[2], &cs[3]));
    ASSERT_ERR(kz_noise_split(hi, &cs[4], &cs[5]), -KZ_EINVAL);
}

/* transport_roundtrip(cs): i→r and r→i, rekey, replay refused. */
static void
transport_roundtrip(struct kz_noise_cs **cs)
{
    uint8_t msg[128], pl[128], old[128];
    size_t len, pl_len, old_len;
    int k;

    for (k = 0; k < 4; k++) {
        struct kz_noise_cs *tx = cs[k % 2 == 0 ? 0 : 2];
        struct kz_noise_cs *rx = cs[k % 2 == 0 ? 3 : 1];

        ASSERT_OK(kz_noise_cs_encrypt(tx, (const uint8_t *)"hello", 5, msg,
                                      sizeof(msg), &len));
        ASSERT_EQ(len, 5 + 16);
        ASSERT_OK(kz_noise_cs_decrypt(rx, msg, len, pl, sizeof(pl), &pl_len));
        ASSERT_EQ(pl_len, 5);
        ASSERT_MEM_EQ(pl, "hello", 5);
    }
    /* Rekey on both ends of one direction: still in step. */
    ASSERT_OK(kz_noise_cs_rekey(cs[0]));
    ASSERT_OK(kz_noise_cs_rekey(cs[3]));
    ASSERT_OK(kz_noise_cs_encrypt(cs[0], NULL, 0, msg, sizeof(msg), &len));
    memcpy(old, msg, len);
    old_len = len;
    ASSERT_OK(kz_noise_cs_decrypt(cs[3], msg, len, pl, sizeof(pl), &pl_len));
    ASSERT_EQ(pl_len, 0);
    /* Replaying the same message fails and the failure is final. */
    ASSERT_ERR(
        kz_noise_cs_decrypt(cs[3], old, old_len, pl, sizeof(pl), &pl_len),
        -KZ_EAUTH);
    ASSERT_OK(kz_noise_cs_encrypt(cs[0], NULL, 0, msg, sizeof(msg), &len));
    ASSERT_ERR(kz_noise_cs_decrypt(cs[3], msg, len, pl, sizeof(pl), &pl_len),
               -KZ_EAUTH);
}

static void
free_cs(struct kz_noise_cs **cs, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        kz_noise_cs_free(cs[i]);
}

TEST(random_xx)
{
    struct party a, b;
    struct kz_noise *hi, *hr;
    struct kz_noise_cs *cs[6] = {0};
    struct kz_dh_pk got;
    struct kz_noise_cfg ci = {0}, cr = {0};

    init();
    party_new(&a);
    party_new(&b);
    ci.protocol = cr.protocol = "Noise_XX_25519_ChaChaPoly_BLAKE2b";
    ci.initiator = 1;
    ci.prologue = cr.prologue = (const uint8_t *)"kzsync";
    ci.prologue_len = cr.prologue_len = 6;
    ci.s = &a.s;
    cr.s = &b.s;
    ci.env = cr.env = kz_env_system();
    ASSERT_OK(kz_noise_new(&hi, &ci));
    ASSERT_OK(kz_noise_new(&hr, &cr));
    ASSERT_ERR(kz_noise_remote_static(hi, &got), -KZ_ENOENT);
    handshake(hi, hr, cs);
    ASSERT_OK(kz_noise_remote_static(hi, &got));
    ASSERT_MEM_EQ(got.b, b.pub.b, 32);
    ASSERT_OK(kz_noise_remote_static(hr, &got));
    ASSERT_MEM_EQ(got.b, a.pub.b, 32);
    transport_roundtrip(cs);
    free_cs(cs, 6);
    kz_noise_free(hi);
    kz_noise_free(hr);
}

TEST(random_ik)
{
    struct party a, b;
    struct kz_noise *hi, *hr;
    struct kz_noise_cs *cs[6] = {0};
    struct kz_dh_pk got;
    struct kz_noise_cfg ci = {0}, cr = {0};

    init();
    party_new(&a);
    party_new(&b);
    ci.protocol = cr.protocol = "Noise_IK_25519_ChaChaPoly_BLAKE2b";
    ci.initiator = 1;
    ci.s = &a.s;
    ci.rs = &b.pub;
    cr.s = &b.s;
    ci.env = cr.env = kz_env_system();
    ASSERT_OK(kz_noise_new(&hi, &ci));
    ASSERT_OK(kz_noise_new(&hr, &cr));
    handshake(hi, hr, cs);
    ASSERT_OK(kz_noise_remote_static(hr, &got));
    ASSERT_MEM_EQ(got.b, a.pub.b, 32);
    transport_roundtrip(cs);
    free_cs(cs, 6);
    kz_noise_free(hi);
    kz_noise_free(hr);
}

/* IK against a responder whose key is not the pinned one: the first read
 * fails (the initiator's es used the wrong key). */
TEST(ik_wrong_server_key)
{
    struct party a, b, c;
    struct kz_noise *hi, *hr;
    struct kz_noise_cfg ci = {0}, cr = {0};
    uint8_t msg[256], pl[256];
    size_t len, pl_len;

    init();
    party_new(&a);
    party_new(&b);
    party_new(&c);
    ci.protocol = cr.protocol = "Noise_IK_25519_ChaChaPoly_BLAKE2b";
    ci.initiator = 1;
    ci.s = &a.s;
    ci.rs = &c.pub; /* pinned key of someone else */
    cr.s = &b.s;
    ci.env = cr.env = kz_env_system();
    ASSERT_OK(kz_noise_new(&hi, &ci));
    ASSERT_OK(kz_noise_new(&hr, &cr));
    ASSERT_OK(kz_noise_write(hi, NULL, 0, msg, sizeof(msg), &len));
    ASSERT_ERR(kz_noise_read(hr, msg, len, pl, sizeof(pl), &pl_len), -KZ_EAUTH);
    ASSERT_EQ(kz_noise_next(hr), KZ_NOISE_FAILED);
    ASSERT_ERR(kz_noise_remote_static(hr, &(struct kz_dh_pk){{0}}), -KZ_ENOENT);
    kz_noise_free(hi);
    kz_noise_free(hr);
}

TEST(prologue_mismatch)
{
    struct party a, b;
    struct kz_noise *hi, *hr;
    struct kz_noise_cfg ci = {0}, cr = {0};
    uint8_t msg[256], pl[256];
    size_t len, pl_len;

    init();
    party_new(&a);
    party_new(&b);
    ci.protocol = cr.protocol = "Noise_XX_25519_ChaChaPoly_BLAKE2b";
    ci.initiator = 1;
    ci.prologue = (const uint8_t *)"kzsync/1";
    cr.prologue = (const uint8_t *)"kzsync/2";
    ci.prologue_len = cr.prologue_len = 8;
    ci.s = &a.s;
    cr.s = &b.s;
    ci.env = cr.env = kz_env_system();
    ASSERT_OK(kz_noise_new(&hi, &ci));
    ASSERT_OK(kz_noise_new(&hr, &cr));
    /* Message 1 has no key yet, so it goes through; message 2's first
     * encrypted field (the responder's static key) does not. */
    ASSERT_OK(kz_noise_write(hi, NULL, 0, msg, sizeof(msg), &len));
    ASSERT_OK(kz_noise_read(hr, msg, len, pl, sizeof(pl), &pl_len));
    ASSERT_OK(kz_noise_write(hr, NULL, 0, msg, sizeof(msg), &len));
    ASSERT_ERR(kz_noise_read(hi, msg, len, pl, sizeof(pl), &pl_len), -KZ_EAUTH);
    ASSERT_EQ(kz_noise_next(hi), KZ_NOISE_FAILED);
    ASSERT_ERR(kz_noise_write(hi, NULL, 0, msg, sizeof(msg), &len), -KZ_EAUTH);
    kz_noise_free(hi);
    kz_noise_free(hr);

    /* IK: the very first message fails. */
    ci.protocol = cr.protocol = "Noise_IK_25519_ChaChaPoly_BLAKE2b";
    ci.rs = &b.pub;
    ASSERT_OK(kz_noise_new(&hi, &ci));
    ASSERT_OK(kz_noise_new(&hr, &cr));
    ASSERT_OK(kz_noise_write(hi, NULL, 0, msg, sizeof(msg), &len));
    ASSERT_ERR(kz_noise_read(hr, msg, len, pl, sizeof(pl), &pl_len), -KZ_EAUTH);
    kz_noise_free(hi);
    kz_noise_free(hr);
}

/* Points of small order (and non-canonical encodings of them) that make
 * X25519 output all zeros. */
static const char *const LOW_ORDER[] = {
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
};

TEST(low_order_refused)
{
    struct party a, b;
    struct kz_noise *hi, *hr;
    struct kz_noise_cfg ci = {0}, cr = {0};
    struct kz_dh_pk bad;
    uint8_t msg[256], pl[256];
    size_t len, pl_len, i;

    init();
    party_new(&a);
    party_new(&b);
    for (i = 0; i < KZ_ARRAY_SIZE(LOW_ORDER); i++) {
        ASSERT_OK(kz_hex_decode(bad.b, 32, LOW_ORDER[i]));

        /* XX: a low-order e in message 1 is refused by the responder's ee
         * when it writes message 2. */
        memset(&ci, 0, sizeof(ci));
        memset(&cr, 0, sizeof(cr));
        ci.protocol = cr.protocol = "Noise_XX_25519_ChaChaPoly_BLAKE2b";
        ci.initiator = 1;
        ci.s = &a.s;
        cr.s = &b.s;
        ci.env = cr.env = kz_env_system();
        ASSERT_OK(kz_noise_new(&hr, &cr));
        memcpy(msg, bad.b, 32);
        ASSERT_OK(kz_noise_read(hr, msg, 32, pl, sizeof(pl), &pl_len));
        ASSERT_ERR(kz_noise_write(hr, NULL, 0, msg, sizeof(msg), &len),
                   -KZ_ECRYPTO);
        ASSERT_EQ(kz_noise_next(hr), KZ_NOISE_FAILED);
        kz_noise_free(hr);

        /* XX: a low-order e in message 2 is refused by the initiator. */
        ASSERT_OK(kz_noise_new(&hi, &ci));
        ASSERT_OK(kz_noise_write(hi, NULL, 0, msg, sizeof(msg), &len));
        memset(msg, 0x55, 96);
        memcpy(msg, bad.b, 32);
        ASSERT_ERR(
            kz_noise_read(hi, msg, 32 + 48 + 16, pl, sizeof(pl), &pl_len),
            -KZ_ECRYPTO);
        kz_noise_free(hi);

        /* IK: the responder's es on message 1 refuses it at once. */
        ci.protocol = cr.protocol = "Noise_IK_25519_ChaChaPoly_BLAKE2b";
        ASSERT_OK(kz_noise_new(&hr, &cr));
        memset(msg, 0x55, 32 + 48 + 16);
        memcpy(msg, bad.b, 32);
        ASSERT_ERR(
            kz_noise_read(hr, msg, 32 + 48 + 16, pl, sizeof(pl), &pl_len),
            -KZ_ECRYPTO);
        kz_noise_free(hr);

        /* IK/NK: a low-order pinned server key is refused at the first
         * write. */
        ci.rs = &bad;
        ASSERT_OK(kz_noise_new(&hi, &ci));
        ASSERT_ERR(kz_noise_write(hi, NULL, 0, msg, sizeof(msg), &len),
                   -KZ_ECRYPTO);
        kz_noise_free(hi);
    }
}

TEST(truncated_and_oversized)
{
    struct party a, b;
    struct kz_noise *hi, *hr;
    struct kz_noise_cfg ci = {0}, cr = {0};
    static uint8_t msg[KZ_LIM_NOISE_MSG_MAX + 2], pl[KZ_LIM_NOISE_MSG_MAX + 2];
    size_t len, pl_len, cut;

    init();
    party_new(&a);
    party_new(&b);
    ci.protocol = cr.protocol = "Noise_IK_25519_ChaChaPoly_BLAKE2b";
    ci.initiator = 1;
    ci.s = &a.s;
    ci.rs = &b.pub;
    cr.s = &b.s;
    ci.env = cr.env = kz_env_system();

    /* Every truncation of message 1 fails. */
    for (cut = 0; cut < 32 + 48 + 16 + 5; cut++) {
        ASSERT_OK(kz_noise_new(&hi, &ci));
        ASSERT_OK(kz_noise_new(&hr, &cr));
        ASSERT_OK(kz_noise_write(hi, (const uint8_t *)"hello", 5, msg,
                                 sizeof(msg), &len));
        ASSERT_EQ(len, 32 + 48 + 16 + 5);
        ASSERT_NE(kz_noise_read(hr, msg, cut, pl, sizeof(pl), &pl_len), 0);
        ASSERT_EQ(kz_noise_next(hr), KZ_NOISE_FAILED);
        kz_noise_free(hi);
        kz_noise_free(hr);
    }
    /* One byte more fails too. */
    ASSERT_OK(kz_noise_new(&hi, &ci));
    ASSERT_OK(kz_noise_new(&hr, &cr));
    ASSERT_OK(kz_noise_write(hi, NULL, 0, msg, sizeof(msg), &len));
    msg[len] = 0;
    ASSERT_ERR(kz_noise_read(hr, msg, len + 1, pl, sizeof(pl), &pl_len),
               -KZ_EAUTH);
    kz_noise_free(hi);
    kz_noise_free(hr);

    /* Over 65535 bytes: refused before anything is parsed. */
    ASSERT_OK(kz_noise_new(&hr, &cr));
    ASSERT_ERR(kz_noise_read(hr, msg, KZ_LIM_NOISE_MSG_MAX + 1, pl, sizeof(pl),
                             &pl_len),
               -KZ_EMALFORMED);
    ASSERT_EQ(kz_noise_next(hr), KZ_NOISE_FAILED);
    kz_noise_free(hr);
    /* A payload that would make the message too long is refused, and the
     * state is still usable. */
    ASSERT_OK(kz_noise_new(&hi, &ci));
    ASSERT_ERR(
        kz_noise_write(hi, pl, KZ_LIM_NOISE_MSG_MAX, msg, sizeof(msg), &len),
        -KZ_ELIMIT);
    ASSERT_OK(kz_noise_write(hi, pl, KZ_LIM_NOISE_MSG_MAX - 96, msg,
                             sizeof(msg), &len));
    ASSERT_EQ(len, KZ_LIM_NOISE_MSG_MAX);
    kz_noise_free(hi);
}

TEST(bad_config)
{
    static const char *const bad[] = {
        "Noise_XX_25519_ChaChaPoly_BLAKE2s",
        "Noise_XX_448_ChaChaPoly_BLAKE2b",
        "Noise_XX_25519_AESGCM_BLAKE2b",
        "Noise_XY_25519_ChaChaPoly_BLAKE2b",
        "Noise_XXpsk9_25519_ChaChaPoly_BLAKE2b",
        "Noise_XXpsk1+psk1_25519_ChaChaPoly_BLAKE2b",
        "Noise_XXfallback_25519_ChaChaPoly_BLAKE2b",
        "Noise_XX_25519_ChaChaPoly_BLAKE2b_",
        "Noise_XX_25519_ChaChaPoly",
        "noise_XX_25519_ChaChaPoly_BLAKE2b",
        "",
    };
    struct party a, b;
    struct kz_noise *hs;
    struct kz_noise_cfg c = {0};
    struct kz_noise_psk psk = {{0}};
    size_t i;

    init();
    party_new(&a);
    party_new(&b);
    c.initiator = 1;
    c.s = &a.s;
    c.env = kz_env_system();
    for (i = 0; i < KZ_ARRAY_SIZE(bad); i++) {
        c.protocol = bad[i];
        ASSERT_ERR(kz_noise_new(&hs, &c), -KZ_EINVAL);
        ASSERT(hs == NULL);
    }
    /* rs for a pattern without a pre-message: refused, not ignored. */
    c.protocol = "Noise_XX_25519_ChaChaPoly_BLAKE2b";
    c.rs = &b.pub;
    ASSERT_ERR(kz_noise_new(&hs, &c), -KZ_EINVAL);
    /* IK without the pinned key. */
    c.protocol = "Noise_IK_25519_ChaChaPoly_BLAKE2b";
    c.rs = NULL;
    ASSERT_ERR(kz_noise_new(&hs, &c), -KZ_EINVAL);
    /* XX without a static key. */
    c.protocol = "Noise_XX_25519_ChaChaPoly_BLAKE2b";
    c.s = NULL;
    ASSERT_ERR(kz_noise_new(&hs, &c), -KZ_EINVAL);
    /* Missing PSK. */
    c.protocol = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b";
    ASSERT_ERR(kz_noise_new(&hs, &c), -KZ_EINVAL);
    c.psks = &psk;
    c.n_psks = 1;
    ASSERT_OK(kz_noise_new(&hs, &c));
    kz_noise_free(hs);
    /* No randomness. */
    c.env = NULL;
    ASSERT_ERR(kz_noise_new(&hs, &c), -KZ_EINVAL);
    kz_noise_free(NULL);
    kz_noise_cs_free(NULL);
}

TEST(wrong_turn)
{
    struct party a;
    struct kz_noise *hi;
    struct kz_noise_cfg c = {0};
    uint8_t msg[256];
    size_t len;
    uint8_t h[64];

    init();
    party_new(&a);
    c.protocol = "Noise_XX_25519_ChaChaPoly_BLAKE2b";
    c.initiator = 1;
    c.s = &a.s;
    c.env = kz_env_system();
    ASSERT_OK(kz_noise_new(&hi, &c));
    ASSERT_EQ(kz_noise_next(hi), KZ_NOISE_WRITE);
    ASSERT_ERR(kz_noise_read(hi, msg, 48, msg, sizeof(msg), &len), -KZ_EINVAL);
    ASSERT_ERR(kz_noise_handshake_hash(hi, h, &len), -KZ_EINVAL);
    ASSERT_ERR(kz_noise_split(hi, &(struct kz_noise_cs *){NULL},
                              &(struct kz_noise_cs *){NULL}),
               -KZ_EINVAL);
    ASSERT_OK(kz_noise_write(hi, NULL, 0, msg, sizeof(msg), &len));
    ASSERT_EQ(len, 32);
    ASSERT_EQ(kz_noise_next(hi), KZ_NOISE_READ);
    ASSERT_ERR(kz_noise_write(hi, NULL, 0, msg, sizeof(msg), &len), -KZ_EINVAL);
    kz_noise_free(hi);
}

TEST(transport_limits)
{
    struct party a, b;
    struct kz_noise *hi, *hr;
    struct kz_noise_cs *cs[6] = {0};
    struct kz_noise_cfg ci = {0}, cr = {0};
    static uint8_t msg[KZ_LIM_NOISE_MSG_MAX + 16], pl[KZ_LIM_NOISE_MSG_MAX];
    size_t len, pl_len;

    init();
    party_new(&a);
    party_new(&b);
    ci.protocol = cr.protocol = "Noise_XX_25519_ChaChaPoly_BLAKE2b";
    ci.initiator = 1;
    ci.s = &a.s;
    cr.s = &b.s;
    ci.env = cr.env = kz_env_system();
    ASSERT_OK(kz_noise_new(&hi, &ci));
    ASSERT_OK(kz_noise_new(&hr, &cr));
    handshake(hi, hr, cs);

    /* Largest message: 65535 bytes on the wire. */
    ASSERT_ERR(kz_noise_cs_encrypt(cs[0], pl, KZ_LIM_NOISE_MSG_MAX - 15, msg,
                                   sizeof(msg), &len),
               -KZ_EINVAL);
    ASSERT_OK(kz_noise_cs_encrypt(cs[0], pl, KZ_LIM_NOISE_MSG_MAX - 16, msg,
                                  sizeof(msg), &len));
    ASSERT_EQ(len, KZ_LIM_NOISE_MSG_MAX);
    ASSERT_OK(kz_noise_cs_decrypt(cs[3], msg, len, pl, sizeof(pl), &pl_len));
    /* Too long or too short from the peer: final. */
    ASSERT_ERR(kz_noise_cs_decrypt(cs[1], msg, KZ_LIM_NOISE_MSG_MAX + 1, pl,
                                   sizeof(pl), &pl_len),
               -KZ_EMALFORMED);
    ASSERT_ERR(kz_noise_cs_decrypt(cs[1], msg, 16, pl, sizeof(pl), &pl_len),
               -KZ_EMALFORMED);
    ASSERT_ERR(kz_noise_cs_decrypt(cs[3], msg, 15, pl, sizeof(pl), &pl_len),
               -KZ_EMALFORMED);

    /* Nonce exhaustion: 2^64 - 2 is the last usable nonce. */
    kz_noise_cs_set_nonce(cs[2], UINT64_MAX - 1);
    ASSERT_OK(kz_noise_cs_encrypt(cs[2], pl, 3, msg, sizeof(msg), &len));
    ASSERT_U64_EQ(kz_noise_cs_nonce(cs[2]), UINT64_MAX);
    ASSERT_ERR(kz_noise_cs_encrypt(cs[2], pl, 3, msg, sizeof(msg), &len),
               -KZ_ELIMIT);
    ASSERT_ERR(kz_noise_cs_encrypt(cs[2], pl, 3, msg, sizeof(msg), &len),
               -KZ_ELIMIT);
    kz_noise_cs_set_nonce(cs[0], UINT64_MAX);
    ASSERT_ERR(kz_noise_cs_encrypt(cs[0], pl, 3, msg, sizeof(msg), &len),
               -KZ_ELIMIT);
    free_cs(cs, 6);
    kz_noise_free(hi);
    kz_noise_free(hr);
}

/* try_xx(a, b): an XX handshake and split under the allocation fault hook;
 * returns 0 or the first error, which must be -KZ_ENOMEM. */
static int
try_xx(const struct party *a, const struct party *b)
{
    struct kz_noise *hi = NULL, *hr = NULL;
    struct kz_noise_cs *cs[4] = {0};
    struct kz_noise_cfg ci = {0}, cr = {0};
    uint8_t msg[256], pl[256];
    size_t len, pl_len;
    int rc;

    ci.protocol = cr.protocol = "Noise_XX_25519_ChaChaPoly_BLAKE2b";
    ci.initiator = 1;
    ci.s = &a->s;
    cr.s = &b->s;
    ci.env = cr.env = kz_env_system();
    if ((rc = kz_noise_new(&hi, &ci)) != 0 ||
        (rc = kz_noise_new(&hr, &cr)) != 0)
        goto out;
    while (kz_noise_next(hi) == KZ_NOISE_WRITE ||
           kz_noise_next(hi) == KZ_NOISE_READ) {
        struct kz_noise *w = kz_noise_next(hi) == KZ_NOISE_WRITE ? hi : hr;

        ASSERT_OK(kz_noise_write(w, NULL, 0, msg, sizeof(msg), &len));
        ASSERT_OK(kz_noise_read(w == hi ? hr : hi, msg, len, pl, sizeof(pl),
                                &pl_len));
    }
    if ((rc = kz_noise_split(hi, &cs[0], &cs[1])) != 0) {
        /* Nothing was returned and the split can be retried. */
        ASSERT(cs[0] == NULL && cs[1] == NULL);
        ASSERT_EQ(kz_noise_next(hi), KZ_NOISE_SPLIT);
        goto out;
    }
    rc = kz_noise_split(hr, &cs[2], &cs[3]);
out:
    free_cs(cs, 4);
    kz_noise_free(hi);
    kz_noise_free(hr);
    return rc;
}

TEST(alloc_failures)
{
    struct party a, b;
    long n;
    int rc;

    init();
    party_new(&a);
    party_new(&b);
    for (n = 0;; n++) {
        kz_alloc_fail_after(n);
        rc = try_xx(&a, &b);
        kz_alloc_fail_after(-1);
        if (rc == 0)
            break;
        ASSERT_ERR(rc, -KZ_ENOMEM);
        ASSERT_LT(n, 16);
    }
    ASSERT_EQ(n, 6); /* two HandshakeStates, then two CipherStates each */
}

T_MAIN(T(vectors_cacophony), T(vectors_snow), T(vectors_sha2),
       T(tamper_every_byte), T(random_xx), T(random_ik), T(ik_wrong_server_key),
       T(prologue_mismatch), T(low_order_refused), T(truncated_and_oversized),
       T(bad_config), T(wrong_turn), T(transport_limits), T(alloc_failures))
