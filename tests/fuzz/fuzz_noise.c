/*
 * fuzz_noise.c: libFuzzer target for proto/noise.
 *
 * Input format:
 *
 *     byte 0      bit 0: fuzzed side (0 responder, 1 initiator)
 *                 bits 1-2: how many inbound messages of the fuzzed side
 *                           are genuine before fuzz data replaces them
 *                 bits 3-7: pattern index into PATTERNS (mod its size)
 *     then        chunks: u16 big-endian length ‖ bytes (a short last
 *                 chunk takes what is left)
 *
 * Both sides are real HandshakeStates with fixed keys and a deterministic
 * randomness source, so the honest side produces the same messages on
 * every run.  The fuzzed side reads fuzz chunks as its inbound handshake
 * messages (after the genuine prefix) and, if the handshake completes,
 * as transport messages.  Checked invariants (abort on violation):
 * a failed read poisons the state and every later call fails; a completed
 * handshake whose inbound messages were all genuine agrees on h.
 *
 * Built with -DKZ_FUZZ_NOISE_GEN and a main(), this file also writes the
 * seed corpus (real messages of every scenario) to the directory argv[1]:
 *
 *     cc -DKZ_FUZZ_NOISE_GEN -Icommon -Iproto tests/fuzz/fuzz_noise.c \
 *        build/proto/libkzproto.a build/common/libkzcommon.a -lsodium
 *     ./a.out tests/fuzz/corpus/noise
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "env.h"
#include "noise.h"
#include "rd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const PATTERNS[] = {
    "Noise_XX_25519_ChaChaPoly_BLAKE2b",
    "Noise_IK_25519_ChaChaPoly_BLAKE2b",
    "Noise_NN_25519_ChaChaPoly_BLAKE2b",
    "Noise_XK_25519_ChaChaPoly_BLAKE2b",
    "Noise_KK_25519_ChaChaPoly_BLAKE2b",
    "Noise_IX_25519_ChaChaPoly_BLAKE2b",
    "Noise_X_25519_ChaChaPoly_BLAKE2b",
    "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b",
    "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b",
    "Noise_X1X1_25519_ChaChaPoly_BLAKE2b",
    "Noise_XX_25519_ChaChaPoly_SHA256",
};
#define N_PATTERNS (sizeof(PATTERNS) / sizeof(PATTERNS[0]))

#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c)) {                                                            \
            fprintf(stderr, "fuzz_noise: invariant failed: %s (line %d)\n",    \
                    #c, __LINE__);                                             \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* Deterministic randomness: a counter hashed with BLAKE2b. */
struct det_rng {
    uint64_t ctr; /* next block */
};

static void
det_random(void *data, void *p, size_t len)
{
    struct det_rng *r = data;
    uint8_t block[32], *out = p;
    size_t n;

    while (len > 0) {
        uint8_t in[8];
        size_t i;

        for (i = 0; i < 8; i++)
            in[i] = (uint8_t)(r->ctr >> (8 * i));
        r->ctr++;
        if (kz_hash(block, sizeof(block), in, sizeof(in)) != 0)
            abort();
        n = len < sizeof(block) ? len : sizeof(block);
        memcpy(out, block, n);
        out += n;
        len -= n;
    }
}

static uint64_t
zero_ms(void *data)
{
    (void)data;
    return 0;
}

/* Recorder for the corpus generator: chunks appended as u16 ‖ bytes. */
struct rec {
    uint8_t *p; /* seed being built */
    size_t len; /* bytes in p */
    size_t cap; /* bytes allocated */
};

static void
rec_chunk(struct rec *rc, const uint8_t *p, size_t len)
{
    if (rc->len + 2 + len > rc->cap) {
        rc->cap = (rc->len + 2 + len) * 2;
        rc->p = realloc(rc->p, rc->cap);
        CHECK(rc->p != NULL);
    }
    rc->p[rc->len++] = (uint8_t)(len >> 8);
    rc->p[rc->len++] = (uint8_t)len;
    memcpy(rc->p + rc->len, p, len);
    rc->len += len;
}

/* next_chunk(r, len): the next fuzz chunk, or NULL when none is left. */
static const uint8_t *
next_chunk(struct kz_rd *r, size_t *len)
{
    size_t n;

    if (r->left == 0)
        return NULL;
    n = kz_rd_be16(r);
    if (n > r->left)
        n = r->left;
    *len = n;
    return kz_rd_bytes(r, n);
}

/*
 * drive(data, size, rec): one scenario.  With ${rec}, genuine messages are
 * used throughout and recorded as the chunks the fuzzed side would read.
 */
static void
drive(const uint8_t *data, size_t size, struct rec *rec)
{
    static uint8_t msg[KZ_LIM_NOISE_MSG_MAX], pl[KZ_LIM_NOISE_MSG_MAX];
    struct det_rng rng = {0};
    struct kz_env env = {zero_ms, zero_ms, det_random, &rng};
    struct kz_dh_sk si, sr;
    struct kz_dh_pk pi, pr;
    struct kz_noise_psk psks[KZ_NOISE_PSK_MAX];
    struct kz_noise_cfg ci = {0}, cr = {0};
    struct kz_noise *hi = NULL, *hr = NULL, *fz;
    struct kz_noise_cs *cs[4] = {0};
    struct kz_rd r;
    const char *proto;
    unsigned inbound = 0, prefix;
    int all_genuine = 1, rc;
    size_t len, pl_len, i;

    if (size < 1)
        return;
    kz_rd_init(&r, data + 1, size - 1);
    proto = PATTERNS[(data[0] >> 3) % N_PATTERNS];
    prefix = (data[0] >> 1) & 3u;

    memset(si.b, 0x11, sizeof(si.b));
    memset(sr.b, 0x22, sizeof(sr.b));
    memset(psks, 0x33, sizeof(psks));
    if (kz_dh_public(&pi, &si) != 0 || kz_dh_public(&pr, &sr) != 0)
        abort();
    ci.protocol = cr.protocol = proto;
    ci.initiator = 1;
    ci.prologue = cr.prologue = (const uint8_t *)"kzsync-fuzz";
    ci.prologue_len = cr.prologue_len = 11;
    ci.s = &si;
    cr.s = &sr;
    ci.psks = cr.psks = psks;
    ci.n_psks = cr.n_psks = KZ_NOISE_PSK_MAX;
    ci.env = cr.env = &env;
    /* Pre-messages: try with the peer's key, then without. */
    ci.rs = &pr;
    if (kz_noise_new(&hi, &ci) != 0) {
        ci.rs = NULL;
        CHECK(kz_noise_new(&hi, &ci) == 0);
    }
    cr.rs = &pi;
    if (kz_noise_new(&hr, &cr) != 0) {
        cr.rs = NULL;
        CHECK(kz_noise_new(&hr, &cr) == 0);
    }
    fz = (data[0] & 1) ? hi : hr;

    while (kz_noise_next(hi) == KZ_NOISE_WRITE ||
           kz_noise_next(hi) == KZ_NOISE_READ) {
        struct kz_noise *w = kz_noise_next(hi) == KZ_NOISE_WRITE ? hi : hr;
        struct kz_noise *rd = w == hi ? hr : hi;
        const uint8_t *in = msg;
        size_t in_len;

        if (kz_noise_next(rd) != KZ_NOISE_READ)
            break; /* the reader was poisoned by an earlier write */
        rc =
            kz_noise_write(w, (const uint8_t *)"hs", 2, msg, sizeof(msg), &len);
        if (rc != 0) {
            CHECK(kz_noise_next(w) == KZ_NOISE_FAILED);
            break;
        }
        in_len = len;
        if (rd == fz) {
            if (rec != NULL && inbound >= prefix)
                rec_chunk(rec, msg, len);
            else if (rec == NULL && inbound >= prefix) {
                in = next_chunk(&r, &in_len);
                if (in == NULL)
                    break;
                all_genuine = 0;
            }
            inbound++;
        }
        rc = kz_noise_read(rd, in, in_len, pl, sizeof(pl), &pl_len);
        if (rc != 0) {
            CHECK(rec == NULL);
            CHECK(kz_noise_next(rd) == KZ_NOISE_FAILED);
            CHECK(kz_noise_read(rd, msg, len, pl, sizeof(pl), &pl_len) == rc);
            CHECK(kz_noise_write(rd, NULL, 0, msg, sizeof(msg), &len) == rc);
            goto out;
        }
        CHECK(pl_len <= in_len);
    }
    if (kz_noise_next(hi) != KZ_NOISE_SPLIT ||
        kz_noise_next(hr) != KZ_NOISE_SPLIT)
        goto out;
    {
        uint8_t h1[64], h2[64];
        size_t l1, l2;

        CHECK(kz_noise_handshake_hash(hi, h1, &l1) == 0);
        CHECK(kz_noise_handshake_hash(hr, h2, &l2) == 0);
        CHECK(!all_genuine || (l1 == l2 && memcmp(h1, h2, l1) == 0));
    }
    CHECK(kz_noise_split(hi, &cs[0], &cs[1]) == 0);
    CHECK(kz_noise_split(hr, &cs[2], &cs[3]) == 0);
    {
        /* The fuzzed side's receiving CipherState; the honest sender. */
        struct kz_noise_cs *rx = fz == hi ? cs[1] : cs[3];
        struct kz_noise_cs *tx = fz == hi ? cs[2] : cs[0];
        const uint8_t *in;
        size_t in_len;

        if (rx == NULL)
            goto out;
        if (rec != NULL) {
            for (i = 0; i < 2; i++) {
                CHECK(kz_noise_cs_encrypt(tx, (const uint8_t *)"transport", 9,
                                          msg, sizeof(msg), &len) == 0);
                rec_chunk(rec, msg, len);
            }
            goto out;
        }
        while ((in = next_chunk(&r, &in_len)) != NULL) {
            rc = kz_noise_cs_decrypt(rx, in, in_len, pl, sizeof(pl), &pl_len);
            if (rc != 0) {
                /* Final: a genuine message fails as well now. */
                CHECK(kz_noise_cs_encrypt(tx, NULL, 0, msg, sizeof(msg),
                                          &len) == 0);
                CHECK(kz_noise_cs_decrypt(rx, msg, len, pl, sizeof(pl),
                                          &pl_len) == rc);
                break;
            }
            CHECK(pl_len + 16 == in_len);
        }
    }
out:
    for (i = 0; i < 4; i++)
        kz_noise_cs_free(cs[i]);
    kz_noise_free(hi);
    kz_noise_free(hr);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;

    if (!inited) {
        if (kz_crypto_init() != 0)
            abort();
        inited = 1;
    }
    drive(data, size, NULL);
    return 0;
}

#ifdef KZ_FUZZ_NOISE_GEN
int
main(int argc, char **argv)
{
    unsigned p, side, prefix;
    int n = 0;

    if (argc != 2 || kz_crypto_init() != 0)
        return 2;
    for (p = 0; p < N_PATTERNS; p++) {
        for (side = 0; side < 2; side++) {
            for (prefix = 0; prefix < 3; prefix++) {
                struct rec rec = {0};
                uint8_t b0 = (uint8_t)((p << 3) | (prefix << 1) | side);
                char path[4096];
                FILE *f;

                rec_chunk(&rec, NULL, 0); /* reserve, then drop the chunk */
                rec.len = 0;
                rec.p[rec.len++] = b0;
                drive(&b0, 1, &rec);
                snprintf(path, sizeof(path), "%s/seed-%02x", argv[1], b0);
                f = fopen(path, "wb");
                if (f == NULL || fwrite(rec.p, 1, rec.len, f) != rec.len)
                    return 1;
                fclose(f);
                free(rec.p);
                n++;
            }
        }
    }
    printf("wrote %d seeds\n", n);
    return 0;
}
#endif
