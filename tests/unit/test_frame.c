/*
 * test_frame.c: the length-prefix splitter (proto/frame.h).
 *
 * Every stream is fed one byte at a time and in random splits, and the
 * frames that come out are compared with the frames that went in; need-more
 * (0) must hold exactly until the last byte of a frame arrived.
 *
 * With KZ_WRITE_CORPUS=DIR set, the test write_corpus writes fuzz seeds to
 * DIR/frame/ (the format is described in tests/fuzz/fuzz_frame.c).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "err.h"
#include "frame.h"
#include "limits.h"

#include "t.h"

/* A deterministic PRNG (xorshift64*), so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t
rnd(uint32_t n)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1du) >> 33) % n;
}

/* A stream of ${n} frames with payload lengths from ${lens}, content i+j. */
static uint8_t *
make_stream(unsigned hdr, const uint32_t *lens, size_t n, size_t *out_len)
{
    size_t total = 0, i, j, off = 0;
    uint8_t *p;

    for (i = 0; i < n; i++)
        total += hdr + lens[i];
    p = malloc(total ? total : 1);
    ASSERT(p != NULL);
    for (i = 0; i < n; i++) {
        ASSERT_OK(kz_frame_put_header(p + off, hdr, lens[i]));
        off += hdr;
        for (j = 0; j < lens[i]; j++)
            p[off + j] = (uint8_t)(i * 7 + j);
        off += lens[i];
    }
    *out_len = total;
    return p;
}

/*
 * Feeds ${p} in pieces chosen by ${piece} (0 = random 1..max_piece) and
 * checks that exactly the frames ${lens} come out, in order, with the
 * right contents.
 */
static void
check_split(unsigned hdr, uint32_t min, uint32_t max, const uint32_t *lens,
            size_t n, size_t piece, size_t max_piece)
{
    struct kz_framer f;
    const uint8_t *fp;
    size_t len, flen, off = 0, got = 0, j, end_of_frame;
    uint8_t *p = make_stream(hdr, lens, n, &len);
    int rc;

    ASSERT_OK(kz_framer_init(&f, hdr, min, max));
    end_of_frame = n ? hdr + lens[0] : 0;
    while (off < len) {
        size_t want = piece ? piece : 1 + rnd((uint32_t)max_piece);
        size_t take = KZ_MIN(want, len - off), used;

        ASSERT_OK(kz_framer_feed(&f, p + off, take, &used));
        off += used;
        while ((rc = kz_framer_next(&f, &fp, &flen)) == 1) {
            ASSERT_LT(got, n);
            /* A frame comes out only once its last byte went in. */
            ASSERT_GE(off, end_of_frame);
            ASSERT_EQ(flen, lens[got]);
            for (j = 0; j < flen; j++)
                ASSERT_EQ(fp[j], (uint8_t)(got * 7 + j));
            got++;
            if (got < n)
                end_of_frame += hdr + lens[got];
        }
        ASSERT_EQ(rc, 0);
        /* Need-more: the next frame is not complete yet. */
        ASSERT(got == n || off < end_of_frame);
    }
    ASSERT_EQ(got, n);
    ASSERT_EQ(kz_framer_buffered(&f), 0);
    kz_framer_free(&f);
    free(p);
}

TEST(one_byte_at_a_time)
{
    static const uint32_t lens4[] = {1, 5, 300, 1, 0x10000, 2, 17};
    static const uint32_t lens2[] = {16, 16, 100, 65535, 16};

    check_split(4, 1, KZ_LIM_FRAME_MAX, lens4, KZ_ARRAY_SIZE(lens4), 1, 0);
    check_split(2, 16, KZ_LIM_NOISE_MSG_MAX, lens2, KZ_ARRAY_SIZE(lens2), 1, 0);
}

TEST(random_splits)
{
    uint32_t lens[40];
    int round;
    size_t i;

    for (round = 0; round < 200; round++) {
        size_t n = rnd(40);
        unsigned hdr = round & 1 ? 2 : 4;

        for (i = 0; i < n; i++)
            lens[i] = rnd(4) == 0 ? rnd(5000) : rnd(40);
        check_split(hdr, 0, 5000, lens, n, 0, 1 + rnd(9000));
    }
}

TEST(whole_stream_at_once_and_fixed_pieces)
{
    static const uint32_t lens[] = {3, 0, 4, 1000, 9, 0, 0, 1};
    size_t piece;

    for (piece = 1; piece < 64; piece++)
        check_split(4, 0, 1000, lens, KZ_ARRAY_SIZE(lens), piece, 0);
    check_split(4, 0, 1000, lens, KZ_ARRAY_SIZE(lens), 100000, 0);
}

TEST(partial_header_is_not_consumed)
{
    static const uint8_t s[] = {0x00, 0x00, 0x00, 0x02, 0xab, 0xcd};
    struct kz_framer f;
    const uint8_t *p;
    size_t len, used, i;

    ASSERT_OK(kz_framer_init(&f, 4, 1, 100));
    for (i = 0; i < sizeof(s); i++) {
        ASSERT_EQ(kz_framer_next(&f, &p, &len), 0);
        ASSERT(p == NULL);
        ASSERT_EQ(kz_framer_buffered(&f), i);
        ASSERT_OK(kz_framer_feed(&f, s + i, 1, &used));
        ASSERT_EQ(used, 1);
    }
    ASSERT_EQ(kz_framer_next(&f, &p, &len), 1);
    ASSERT_EQ(len, 2);
    ASSERT_EQ(p[0], 0xab);
    ASSERT_EQ(p[1], 0xcd);
    ASSERT_EQ(kz_framer_buffered(&f), 0);
    ASSERT_EQ(kz_framer_next(&f, &p, &len), 0);
    kz_framer_free(&f);
}

TEST(length_below_min_is_malformed_and_sticky)
{
    /* A Noise record of 15 bytes: shorter than a tag. */
    static const uint8_t s[] = {0x00, 0x0f};
    static const uint8_t good[] = {0x00, 0x10};
    struct kz_framer f;
    const uint8_t *p;
    size_t len, used;

    ASSERT_OK(kz_framer_init(&f, 2, 16, KZ_LIM_NOISE_MSG_MAX));
    ASSERT_OK(kz_framer_feed(&f, s, 1, &used));
    ASSERT_EQ(kz_framer_next(&f, &p, &len), 0);
    ASSERT_OK(kz_framer_feed(&f, s + 1, 1, &used));
    ASSERT_ERR(kz_framer_next(&f, &p, &len), -KZ_EMALFORMED);
    ASSERT_STR_EQ(kz_framer_why(&f), "frame shorter than the minimum");
    /* Poisoned: every later call fails the same way, nothing is taken. */
    ASSERT_ERR(kz_framer_next(&f, &p, &len), -KZ_EMALFORMED);
    ASSERT_ERR(kz_framer_feed(&f, good, 2, &used), -KZ_EMALFORMED);
    ASSERT_EQ(used, 0);
    kz_framer_free(&f);
}

TEST(length_over_max_is_limit_before_the_payload)
{
    /* An application frame of 16 MiB + 1, rejected on its 4 bytes. */
    static const uint8_t s[] = {0x01, 0x00, 0x00, 0x01};
    static const uint8_t zero[] = {0, 0, 0, 0};
    struct kz_framer f;
    const uint8_t *p;
    size_t len, used;

    ASSERT_OK(kz_framer_init(&f, 4, 1, KZ_LIM_FRAME_MAX));
    ASSERT_OK(kz_framer_feed(&f, s, sizeof(s), &used));
    ASSERT_ERR(kz_framer_next(&f, &p, &len), -KZ_ELIMIT);
    ASSERT_STR_EQ(kz_framer_why(&f), "frame over the limit");
    ASSERT_ERR(kz_framer_next(&f, &p, &len), -KZ_ELIMIT);
    kz_framer_free(&f);
    /* Length 0 where the minimum is 1. */
    ASSERT_OK(kz_framer_init(&f, 4, 1, KZ_LIM_FRAME_MAX));
    ASSERT_OK(kz_framer_feed(&f, zero, sizeof(zero), &used));
    ASSERT_ERR(kz_framer_next(&f, &p, &len), -KZ_EMALFORMED);
    kz_framer_free(&f);
    /* 0xffffffff. */
    ASSERT_OK(kz_framer_init(&f, 4, 0, UINT32_MAX - 4));
    ASSERT_OK(kz_framer_feed(&f, "\xff\xff\xff\xff", 4, &used));
    ASSERT_ERR(kz_framer_next(&f, &p, &len), -KZ_ELIMIT);
    kz_framer_free(&f);
}

TEST(frames_before_a_bad_one_are_delivered)
{
    static const uint8_t s[] = {0, 1, 'a', 0, 2, 'b', 'c', 0, 9, 'x'};
    struct kz_framer f;
    const uint8_t *p;
    size_t len, used;

    ASSERT_OK(kz_framer_init(&f, 2, 1, 8));
    ASSERT_OK(kz_framer_feed(&f, s, sizeof(s), &used));
    ASSERT_EQ(used, sizeof(s));
    ASSERT_EQ(kz_framer_next(&f, &p, &len), 1);
    ASSERT_EQ(len, 1);
    ASSERT_EQ(kz_framer_next(&f, &p, &len), 1);
    ASSERT_EQ(len, 2);
    ASSERT_MEM_EQ(p, "bc", 2);
    ASSERT_ERR(kz_framer_next(&f, &p, &len), -KZ_ELIMIT);
    kz_framer_free(&f);
}

TEST(feed_never_buffers_more_than_header_plus_max)
{
    struct kz_framer f;
    const uint8_t *p;
    uint8_t big[1000];
    size_t len, used, off = 0;
    int frames = 0;

    /* 100 frames of 8 bytes, max 8: at most 10 bytes buffered. */
    for (off = 0; off < sizeof(big); off += 10) {
        ASSERT_OK(kz_frame_put_header(big + off, 2, 8));
        memset(big + off + 2, (int)(off / 10), 8);
    }
    ASSERT_OK(kz_framer_init(&f, 2, 8, 8));
    off = 0;
    while (off < sizeof(big)) {
        ASSERT_OK(kz_framer_feed(&f, big + off, sizeof(big) - off, &used));
        ASSERT_LE(f.len, 10);
        ASSERT_LE(f.cap, 10);
        off += used;
        /* Whenever feed stopped short, a frame is ready. */
        ASSERT_EQ(kz_framer_next(&f, &p, &len), 1);
        ASSERT_EQ(len, 8);
        ASSERT_EQ(p[0], (uint8_t)frames);
        frames++;
    }
    ASSERT_EQ(kz_framer_next(&f, &p, &len), 0);
    ASSERT_EQ(frames, 100);
    /* A full buffer whose header is over the limit: feed takes nothing,
     * next reports the limit. */
    kz_framer_free(&f);
    ASSERT_OK(kz_framer_init(&f, 2, 0, 4));
    ASSERT_OK(kz_framer_feed(&f, "\x00\x05\x01\x02\x03\x04\x05", 7, &used));
    ASSERT_EQ(used, 6);
    ASSERT_OK(kz_framer_feed(&f, "\x05", 1, &used));
    ASSERT_EQ(used, 0);
    ASSERT_ERR(kz_framer_next(&f, &p, &len), -KZ_ELIMIT);
    kz_framer_free(&f);
}

TEST(set_max_lifts_the_preauth_limit)
{
    uint8_t s[2 + 2000];
    struct kz_framer f;
    const uint8_t *p;
    size_t len, used, off = 0;

    ASSERT_OK(kz_frame_put_header(s, 2, 2000));
    memset(s + 2, 0x5a, 2000);
    ASSERT_OK(kz_framer_init(&f, 2, 16, KZ_LIM_PREAUTH_FRAME_MAX));
    /* Before the switch, the buffer stops at 2 + 1024 bytes. */
    ASSERT_OK(kz_framer_feed(&f, s, sizeof(s), &used));
    ASSERT_EQ(used, 2 + KZ_LIM_PREAUTH_FRAME_MAX);
    off = used;
    ASSERT_ERR(kz_framer_set_max(&f, 15), -KZ_EINVAL);    /* < min */
    ASSERT_ERR(kz_framer_set_max(&f, 65536), -KZ_EINVAL); /* > u16 */
    ASSERT_OK(kz_framer_set_max(&f, KZ_LIM_NOISE_MSG_MAX));
    ASSERT_EQ(kz_framer_next(&f, &p, &len), 0);
    ASSERT_OK(kz_framer_feed(&f, s + off, sizeof(s) - off, &used));
    ASSERT_EQ(used, sizeof(s) - off);
    ASSERT_EQ(kz_framer_next(&f, &p, &len), 1);
    ASSERT_EQ(len, 2000);
    ASSERT_EQ(p[1999], 0x5a);
    /* Lowering it again: a buffered frame is judged by the new limit. */
    ASSERT_OK(kz_framer_feed(&f, s, sizeof(s), &used));
    ASSERT_OK(kz_framer_set_max(&f, 1999));
    ASSERT_ERR(kz_framer_next(&f, &p, &len), -KZ_ELIMIT);
    kz_framer_free(&f);
}

TEST(init_rejects_bad_configurations)
{
    struct kz_framer f;

    ASSERT_ERR(kz_framer_init(&f, 3, 0, 10), -KZ_EINVAL);
    ASSERT_ERR(kz_framer_init(&f, 0, 0, 10), -KZ_EINVAL);
    ASSERT_ERR(kz_framer_init(&f, 4, 11, 10), -KZ_EINVAL);
    ASSERT_ERR(kz_framer_init(&f, 2, 0, 65536), -KZ_EINVAL);
    ASSERT_OK(kz_framer_init(&f, 2, 0, 65535));
    kz_framer_free(&f);
    kz_framer_free(&f); /* twice is fine */
    ASSERT_OK(kz_framer_init(&f, 4, 0, UINT32_MAX - 4));
    kz_framer_free(&f);
}

TEST(put_header)
{
    uint8_t h[4] = {9, 9, 9, 9};

    ASSERT_OK(kz_frame_put_header(h, 4, 0x01020304));
    ASSERT_MEM_EQ(h, "\x01\x02\x03\x04", 4);
    ASSERT_OK(kz_frame_put_header(h, 2, 0xfffe));
    ASSERT_MEM_EQ(h, "\xff\xfe\x03\x04", 4);
    ASSERT_ERR(kz_frame_put_header(h, 2, 0x10000), -KZ_ELIMIT);
    ASSERT_ERR(kz_frame_put_header(h, 4, (size_t)UINT32_MAX + 1), -KZ_ELIMIT);
    ASSERT_ERR(kz_frame_put_header(h, 1, 1), -KZ_EINVAL);
    ASSERT_MEM_EQ(h, "\xff\xfe\x03\x04", 4);
}

TEST(big_buffer_is_released_when_empty)
{
    uint32_t lens[] = {200000, 3};
    struct kz_framer f;
    const uint8_t *p;
    size_t len, used;
    uint8_t *s = make_stream(4, lens, 2, &len);
    size_t total = len;

    ASSERT_OK(kz_framer_init(&f, 4, 1, KZ_LIM_FRAME_MAX));
    ASSERT_OK(kz_framer_feed(&f, s, 4 + 200000, &used));
    ASSERT_EQ(kz_framer_next(&f, &p, &len), 1);
    ASSERT_GT(f.cap, KZ_FRAMER_KEEP);
    ASSERT_EQ(kz_framer_next(&f, &p, &len), 0);
    ASSERT(f.p == NULL);
    ASSERT_EQ(f.cap, 0);
    ASSERT_OK(kz_framer_feed(&f, s + 4 + 200000, total - 4 - 200000, &used));
    ASSERT_EQ(kz_framer_next(&f, &p, &len), 1);
    ASSERT_EQ(len, 3);
    ASSERT_LE(f.cap, KZ_FRAMER_KEEP);
    kz_framer_free(&f);
    free(s);
}

TEST(alloc_failure_loop)
{
    uint32_t lens[] = {10, 1000, 70000, 5};
    size_t len, n;
    uint8_t *s = make_stream(4, lens, 4, &len);
    int seen_ok = 0;

    for (n = 0; n < 100 && !seen_ok; n++) {
        struct kz_framer f;
        const uint8_t *p;
        size_t off = 0, used, flen, got = 0;
        int rc = 0, r;

        ASSERT_OK(kz_framer_init(&f, 4, 1, KZ_LIM_FRAME_MAX));
        kz_alloc_fail_after((long)n);
        while (off < len) {
            rc = kz_framer_feed(&f, s + off, KZ_MIN(len - off, 4096), &used);
            if (rc != 0)
                break;
            off += used;
            while ((r = kz_framer_next(&f, &p, &flen)) == 1) {
                ASSERT_EQ(flen, lens[got]);
                got++;
            }
            ASSERT_EQ(r, 0);
        }
        kz_alloc_fail_after(-1);
        if (rc == 0) {
            ASSERT_EQ(got, 4);
            seen_ok = 1;
        } else {
            ASSERT_ERR(rc, -KZ_ENOMEM);
            ASSERT_EQ(used, 0);
            /* Not sticky: the same bytes go in once memory is back. */
            ASSERT_OK(kz_framer_feed(&f, s + off, 1, &used));
            ASSERT_EQ(used, 1);
        }
        kz_framer_free(&f);
    }
    ASSERT(seen_ok);
    free(s);
}

/* Writes ${len} bytes to DIR/frame/NAME. */
static void
seed(const char *dir, const char *name, const uint8_t *p, size_t len)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/frame", dir);
    (void)mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/frame/%s", dir, name);
    f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT_EQ(fwrite(p, 1, len, f), len);
    ASSERT_EQ(fclose(f), 0);
}

/*
 * Seeds for fuzz_frame: 4 bytes of configuration (hdr flag, min, max,
 * split seed; see fuzz_frame.c) followed by the stream.
 */
TEST(write_corpus)
{
    const char *dir = getenv("KZ_WRITE_CORPUS");
    uint8_t buf[4096];
    char name[64];
    int i;

    if (dir == NULL)
        return; /* only on demand: KZ_WRITE_CORPUS=tests/fuzz/corpus */
    for (i = 0; i < 30; i++) {
        uint32_t lens[12];
        size_t n = (size_t)(1 + i % 12), k, len;
        uint8_t *s;

        for (k = 0; k < n; k++)
            lens[k] = (uint32_t)((i * 37 + (int)k * 11) % 90);
        if (i % 5 == 4)
            lens[n - 1] = 250; /* over the fuzzer's max → limit */
        if (i % 7 == 6)
            lens[0] = 0; /* under a min of 1 → malformed */
        s = make_stream(i & 1 ? 2 : 4, lens, n, &len);
        buf[0] = (uint8_t)(i & 1);      /* header: 2 bytes if odd */
        buf[1] = (uint8_t)(i % 7 == 6); /* min */
        buf[2] = 200;                   /* max */
        buf[3] = (uint8_t)(i * 13);     /* split seed */
        ASSERT_LE(len + 4, sizeof(buf));
        memcpy(buf + 4, s, len);
        /* Every third seed is cut inside its last frame. */
        if (i % 3 == 2 && len > 3)
            len -= 3;
        snprintf(name, sizeof(name), "stream%02d", i);
        seed(dir, name, buf, len + 4);
        free(s);
    }
}

T_MAIN(T(one_byte_at_a_time), T(random_splits),
       T(whole_stream_at_once_and_fixed_pieces),
       T(partial_header_is_not_consumed),
       T(length_below_min_is_malformed_and_sticky),
       T(length_over_max_is_limit_before_the_payload),
       T(frames_before_a_bad_one_are_delivered),
       T(feed_never_buffers_more_than_header_plus_max),
       T(set_max_lifts_the_preauth_limit), T(init_rejects_bad_configurations),
       T(put_header), T(big_buffer_is_released_when_empty),
       T(alloc_failure_loop), T(write_corpus))
