/*
 * test_mpk.c: the typed msgpack reader and the capped writer.
 *
 * msgpack-c's unpacker is used here only as an oracle on bytes that our own
 * writer produced (never on hand-made hostile input).
 *
 * With KZ_WRITE_CORPUS=DIR set, the test write_corpus writes fuzz seeds
 * (random trees from our writer, plus a few hostile classics) to DIR/mpk/.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <msgpack.h>

#include "alloc.h"
#include "changeset.h"
#include "err.h"
#include "limits.h"
#include "mpk.h"

#include "t.h"

/* A small deterministic PRNG (xorshift64*). */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t
rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1du;
}

/* Encodes with our writer; the test owns the result (kz_free). */
static uint8_t *
finish(struct kz_mpk_wr *w, size_t *len)
{
    uint8_t *p;

    ASSERT_OK(kz_mpk_wr_finish(w, &p, len));
    return p;
}

/* Oracle: msgpack-c decodes our bytes as exactly one object. */
static void
oracle_unpack(msgpack_unpacked *u, const uint8_t *p, size_t len)
{
    size_t off = 0;

    msgpack_unpacked_init(u);
    ASSERT_EQ(msgpack_unpack_next(u, (const char *)p, len, &off),
              MSGPACK_UNPACK_SUCCESS);
    ASSERT_EQ(off, len);
}

TEST(integers_round_trip_shortest_form)
{
    static const struct {
        uint64_t v;
        size_t len;
    } u[] = {{0, 1},         {127, 1},        {128, 2},
             {255, 2},       {256, 3},        {65535, 3},
             {65536, 5},     {UINT32_MAX, 5}, {UINT64_C(1) << 32, 9},
             {UINT64_MAX, 9}};
    static const struct {
        int64_t v;
        size_t len;
    } s[] = {{-1, 1},        {-32, 1},       {-33, 2},
             {-128, 2},      {-129, 3},      {-32768, 3},
             {-32769, 5},    {INT32_MIN, 5}, {(int64_t)INT32_MIN - 1, 9},
             {INT64_MIN, 9}, {INT64_MAX, 9}, {5, 1}};
    size_t i;

    for (i = 0; i < KZ_ARRAY_SIZE(u); i++) {
        struct kz_mpk_wr w;
        struct kz_rd r;
        msgpack_unpacked o;
        uint64_t v;
        size_t len;
        uint8_t *p;

        kz_mpk_wr_init(&w, 64);
        kz_mpk_wr_uint(&w, u[i].v);
        p = finish(&w, &len);
        ASSERT_EQ(len, u[i].len);
        oracle_unpack(&o, p, len);
        ASSERT_EQ(o.data.type, MSGPACK_OBJECT_POSITIVE_INTEGER);
        ASSERT_U64_EQ(o.data.via.u64, u[i].v);
        msgpack_unpacked_destroy(&o);
        kz_rd_init(&r, p, len);
        ASSERT_OK(kz_mpk_uint(&r, UINT64_MAX, &v));
        ASSERT_U64_EQ(v, u[i].v);
        ASSERT_EQ(r.left, 0);
        kz_free(p);
    }
    for (i = 0; i < KZ_ARRAY_SIZE(s); i++) {
        struct kz_mpk_wr w;
        struct kz_rd r;
        msgpack_unpacked o;
        int64_t v;
        size_t len;
        uint8_t *p;

        kz_mpk_wr_init(&w, 64);
        kz_mpk_wr_int(&w, s[i].v);
        p = finish(&w, &len);
        ASSERT_EQ(len, s[i].len);
        oracle_unpack(&o, p, len);
        if (s[i].v < 0)
            ASSERT_EQ(o.data.via.i64, s[i].v);
        else
            ASSERT_U64_EQ(o.data.via.u64, (uint64_t)s[i].v);
        msgpack_unpacked_destroy(&o);
        kz_rd_init(&r, p, len);
        ASSERT_OK(kz_mpk_int(&r, &v));
        ASSERT_EQ(v, s[i].v);
        kz_free(p);
    }
}

TEST(signed_encodings_of_small_values_are_accepted)
{
    /* Another language's encoder may use int8..int64 for non-negative
     * values; PROTOCOL.md says any integer encoding is fine. */
    static const uint8_t in[] = {0xd0, 0x05, 0xd1, 0x00, 0x80, 0xd3, 0,
                                 0,    0,    0,    0,    0,    0,    7};
    struct kz_rd r;
    uint64_t v;
    int64_t i;

    kz_rd_init(&r, in, sizeof(in));
    ASSERT_OK(kz_mpk_uint(&r, 10, &v));
    ASSERT_U64_EQ(v, 5);
    ASSERT_OK(kz_mpk_int(&r, &i));
    ASSERT_EQ(i, 128);
    ASSERT_OK(kz_mpk_uint(&r, UINT64_MAX, &v));
    ASSERT_U64_EQ(v, 7);
    ASSERT_EQ(r.left, 0);
}

TEST(integer_range_checks)
{
    static const uint8_t neg[] = {0xff}; /* -1 */
    static const uint8_t big[] = {0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t u33[] = {0xcf, 0, 0, 0, 1, 0, 0, 0, 0};
    static const uint8_t d3min[] = {0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0};
    struct kz_rd r;
    uint64_t v;
    uint32_t v32;
    int64_t i;

    kz_rd_init(&r, neg, sizeof(neg));
    ASSERT_ERR(kz_mpk_uint(&r, UINT64_MAX, &v), -KZ_EMALFORMED);
    ASSERT_STR_EQ(r.why, "integer out of range");
    kz_rd_init(&r, big, sizeof(big));
    ASSERT_ERR(kz_mpk_int(&r, &i), -KZ_EMALFORMED);
    kz_rd_init(&r, big, sizeof(big));
    ASSERT_OK(kz_mpk_uint(&r, UINT64_MAX, &v));
    ASSERT_U64_EQ(v, UINT64_C(1) << 63);
    kz_rd_init(&r, u33, sizeof(u33));
    ASSERT_ERR(kz_mpk_u32(&r, &v32), -KZ_EMALFORMED);
    ASSERT_EQ(v32, 0);
    kz_rd_init(&r, u33, sizeof(u33));
    ASSERT_ERR(kz_mpk_uint(&r, 100, &v), -KZ_EMALFORMED);
    kz_rd_init(&r, d3min, sizeof(d3min));
    ASSERT_OK(kz_mpk_int(&r, &i));
    ASSERT_EQ(i, INT64_MIN);
}

TEST(floats_nil_bool_round_trip)
{
    static const double d[] = {0.0, -0.0, 1.5, -1e300, 5e-324, INFINITY};
    struct kz_mpk_wr w;
    struct kz_rd r;
    uint8_t *p;
    size_t len, i;
    double x;
    bool b;

    kz_mpk_wr_init(&w, 1024);
    for (i = 0; i < KZ_ARRAY_SIZE(d); i++)
        kz_mpk_wr_f64(&w, d[i]);
    kz_mpk_wr_f64(&w, NAN);
    kz_mpk_wr_nil(&w);
    kz_mpk_wr_bool(&w, true);
    kz_mpk_wr_bool(&w, false);
    p = finish(&w, &len);
    ASSERT_EQ(len, 9 * (KZ_ARRAY_SIZE(d) + 1) + 3);
    ASSERT_EQ(p[0], 0xcb);
    kz_rd_init(&r, p, len);
    for (i = 0; i < KZ_ARRAY_SIZE(d); i++) {
        ASSERT_OK(kz_mpk_f64(&r, &x));
        ASSERT_MEM_EQ(&x, &d[i], sizeof(x));
    }
    ASSERT_OK(kz_mpk_f64(&r, &x));
    ASSERT(isnan(x));
    ASSERT_OK(kz_mpk_nil(&r));
    ASSERT_OK(kz_mpk_bool(&r, &b));
    ASSERT(b);
    ASSERT_OK(kz_mpk_bool(&r, &b));
    ASSERT(!b);
    ASSERT_EQ(r.left, 0);
    kz_free(p);
}

TEST(float32_is_a_wrong_type)
{
    static const uint8_t in[] = {0xca, 0x3f, 0xc0, 0x00, 0x00}; /* 1.5f */
    struct kz_rd r;
    struct kz_value v;
    double x;

    kz_rd_init(&r, in, sizeof(in));
    ASSERT_EQ(kz_mpk_peek(&r), KZ_MPK_FLOAT);
    ASSERT_ERR(kz_mpk_f64(&r, &x), -KZ_EMALFORMED);
    kz_rd_init(&r, in, sizeof(in));
    ASSERT_ERR(kz_mpk_value(&r, &v), -KZ_EMALFORMED);
}

/* Round trip of a str and a bin of ${len} bytes; returns the header size. */
static size_t
str_bin_round_trip(size_t len)
{
    struct kz_mpk_wr w;
    struct kz_rd r;
    struct kz_str s;
    msgpack_unpacked o;
    uint8_t *data, *p;
    const uint8_t *q;
    size_t n, qlen, i;

    data = kz_malloc(len);
    ASSERT(data != NULL);
    for (i = 0; i < len; i++)
        data[i] = (uint8_t)('a' + i % 26);
    kz_mpk_wr_init(&w, 2 * len + 64);
    kz_mpk_wr_str(&w, data, len);
    kz_mpk_wr_bin(&w, data, len);
    p = finish(&w, &n);
    kz_rd_init(&r, p, n);
    ASSERT_OK(kz_mpk_str(&r, (uint32_t)len, &s));
    ASSERT_EQ(s.len, len);
    ASSERT_MEM_EQ(s.p, data, len);
    ASSERT_OK(kz_mpk_bin(&r, (uint32_t)len, &q, &qlen));
    ASSERT_EQ(qlen, len);
    ASSERT_MEM_EQ(q, data, len);
    ASSERT_EQ(r.left, 0);
    /* msgpack-c reads the str alone (its prefix of the bytes). */
    oracle_unpack(&o, p, (size_t)((const uint8_t *)s.p - p) + len);
    ASSERT_EQ(o.data.type, MSGPACK_OBJECT_STR);
    ASSERT_EQ(o.data.via.str.size, len);
    msgpack_unpacked_destroy(&o);
    kz_free(p);
    kz_free(data);
    return (size_t)((const uint8_t *)s.p - p);
}

TEST(str_and_bin_round_trip_at_every_header_size)
{
    ASSERT_EQ(str_bin_round_trip(0), 1);
    ASSERT_EQ(str_bin_round_trip(31), 1);
    ASSERT_EQ(str_bin_round_trip(32), 2);
    ASSERT_EQ(str_bin_round_trip(255), 2);
    ASSERT_EQ(str_bin_round_trip(256), 3);
    ASSERT_EQ(str_bin_round_trip(65535), 3);
    ASSERT_EQ(str_bin_round_trip(65536), 5);
}

TEST(str_and_bin_limits)
{
    static const uint8_t s5[] = {0xa5, 'h', 'e', 'l', 'l', 'o'};
    static const uint8_t s8_short[] = {0xd9, 0x05, 'h', 'e'};
    static const uint8_t b32_huge[] = {0xc6, 0xff, 0xff, 0xff, 0xff, 0};
    struct kz_rd r;
    struct kz_str s;
    const uint8_t *p;
    size_t len;

    kz_rd_init(&r, s5, sizeof(s5));
    ASSERT_ERR(kz_mpk_str(&r, 4, &s), -KZ_ELIMIT);
    ASSERT_STR_EQ(r.why, "str over limit");
    ASSERT(s.p == NULL && s.len == 0);
    kz_rd_init(&r, s8_short, sizeof(s8_short));
    ASSERT_ERR(kz_mpk_str(&r, 100, &s), -KZ_EMALFORMED);
    ASSERT_STR_EQ(r.why, "str over bytes left");
    kz_rd_init(&r, b32_huge, sizeof(b32_huge));
    ASSERT_ERR(kz_mpk_bin(&r, KZ_LIM_BIN_MAX, &p, &len), -KZ_ELIMIT);
    kz_rd_init(&r, b32_huge, sizeof(b32_huge));
    ASSERT_ERR(kz_mpk_bin(&r, UINT32_MAX, &p, &len), -KZ_EMALFORMED);
    kz_rd_init(&r, s5, sizeof(s5));
    ASSERT_ERR(kz_mpk_bin(&r, 100, &p, &len), -KZ_EMALFORMED);
    ASSERT_STR_EQ(r.why, "expected bin");
}

TEST(bin_n_takes_exactly_n_bytes)
{
    static const uint8_t b3[] = {0xc4, 0x03, 1, 2, 3};
    static const uint8_t b2[] = {0xc4, 0x02, 1, 2};
    static const uint8_t b4[] = {0xc4, 0x04, 1, 2, 3, 4};
    static const uint8_t s3[] = {0xa3, 'a', 'b', 'c'};
    uint8_t out[3] = {9, 9, 9};
    struct kz_rd r;

    kz_rd_init(&r, b3, sizeof(b3));
    ASSERT_OK(kz_mpk_bin_n(&r, 3, out, "bad key"));
    ASSERT(out[0] == 1 && out[1] == 2 && out[2] == 3 && r.left == 0);

    memset(out, 9, sizeof(out));
    kz_rd_init(&r, b2, sizeof(b2));
    ASSERT_ERR(kz_mpk_bin_n(&r, 3, out, "bad key"), -KZ_EMALFORMED);
    ASSERT_STR_EQ(r.why, "bad key");
    kz_rd_init(&r, b4, sizeof(b4));
    ASSERT_ERR(kz_mpk_bin_n(&r, 3, out, "bad key"), -KZ_ELIMIT);
    kz_rd_init(&r, s3, sizeof(s3));
    ASSERT_ERR(kz_mpk_bin_n(&r, 3, out, "bad key"), -KZ_EMALFORMED);
    ASSERT_STR_EQ(r.why, "expected bin");
    ASSERT(out[0] == 9 && out[1] == 9 && out[2] == 9);
    /* sticky: nothing is read after a failure */
    kz_rd_init(&r, b3, sizeof(b3));
    kz_rd_fail(&r, -KZ_EMALFORMED, "earlier");
    ASSERT_ERR(kz_mpk_bin_n(&r, 3, out, "bad key"), -KZ_EMALFORMED);
    ASSERT_STR_EQ(r.why, "earlier");
    ASSERT(out[0] == 9);
}

TEST(array_and_map_headers)
{
    static const uint32_t n[] = {0, 15, 16, 65535, 65536};
    size_t i;

    for (i = 0; i < KZ_ARRAY_SIZE(n); i++) {
        struct kz_mpk_wr w;
        struct kz_rd r;
        msgpack_unpacked o;
        uint32_t k, got;
        uint8_t *p;
        size_t len, arr_end;

        kz_mpk_wr_init(&w, 4 * (size_t)n[i] + 16);
        kz_mpk_wr_array(&w, n[i]);
        for (k = 0; k < n[i]; k++)
            kz_mpk_wr_uint(&w, k & 0x7f);
        kz_mpk_wr_map(&w, n[i] / 2);
        for (k = 0; k < n[i] / 2; k++) {
            kz_mpk_wr_nil(&w);
            kz_mpk_wr_bool(&w, true);
        }
        p = finish(&w, &len);
        kz_rd_init(&r, p, len);
        ASSERT_OK(kz_mpk_array(&r, n[i], &got));
        ASSERT_EQ(got, n[i]);
        for (k = 0; k < n[i]; k++) {
            uint64_t v;
            ASSERT_OK(kz_mpk_uint(&r, 127, &v));
        }
        arr_end = (size_t)(r.p - p);
        ASSERT_OK(kz_mpk_map(&r, n[i], &got));
        ASSERT_EQ(got, n[i] / 2);
        for (k = 0; k < 2 * got; k++)
            ASSERT_OK(kz_mpk_skip(&r, 0));
        ASSERT_EQ(r.left, 0);
        kz_rd_init(&r, p, len);
        ASSERT_OK(kz_mpk_skip(&r, 1));
        ASSERT_EQ((size_t)(r.p - p), arr_end);
        ASSERT_OK(kz_mpk_skip(&r, 1));
        ASSERT_EQ(r.left, 0);
        oracle_unpack(&o, p, arr_end);
        ASSERT_EQ(o.data.type, MSGPACK_OBJECT_ARRAY);
        ASSERT_EQ(o.data.via.array.size, n[i]);
        msgpack_unpacked_destroy(&o);
        kz_free(p);
    }
}

TEST(absurd_declared_counts_fail_before_anything)
{
    static const uint8_t all_ff[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t issue1013[] = {0xdd, 0xff, 0x00, 0x00, 0x00};
    static const uint8_t map_ff[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t five[] = {0xdd, 0, 0, 0, 5, 1, 2, 3, 4};
    static const uint8_t map3[] = {0xdf, 0, 0, 0, 3, 1, 2, 3, 4, 5};
    struct kz_rd r;
    uint32_t n;

    kz_rd_init(&r, all_ff, sizeof(all_ff));
    ASSERT_ERR(kz_mpk_array(&r, KZ_LIM_COUNT_MAX, &n), -KZ_ELIMIT);
    ASSERT_EQ(n, 0);
    kz_rd_init(&r, issue1013, sizeof(issue1013));
    ASSERT_ERR(kz_mpk_array(&r, KZ_LIM_COUNT_MAX, &n), -KZ_ELIMIT);
    ASSERT_STR_EQ(r.why, "array count over limit");
    /* Even with no limit, the count must fit in the bytes left. */
    kz_rd_init(&r, issue1013, sizeof(issue1013));
    ASSERT_ERR(kz_mpk_array(&r, UINT32_MAX, &n), -KZ_EMALFORMED);
    ASSERT_STR_EQ(r.why, "array count over bytes left");
    kz_rd_init(&r, map_ff, sizeof(map_ff));
    ASSERT_ERR(kz_mpk_map(&r, UINT32_MAX, &n), -KZ_EMALFORMED);
    kz_rd_init(&r, five, sizeof(five));
    ASSERT_ERR(kz_mpk_array(&r, 100, &n), -KZ_EMALFORMED);
    kz_rd_init(&r, map3, sizeof(map3));
    ASSERT_ERR(kz_mpk_map(&r, 100, &n), -KZ_EMALFORMED);
    ASSERT_STR_EQ(r.why, "map count over bytes left");
    kz_rd_init(&r, issue1013, sizeof(issue1013));
    ASSERT_ERR(kz_mpk_skip(&r, KZ_LIM_DEPTH_MAX), -KZ_ELIMIT);
}

TEST(wrong_types_are_malformed)
{
    static const uint8_t in[] = {0x01, 0xa1, 'x', 0xc0, 0x90, 0x80, 0xc3};
    struct kz_rd r;
    struct kz_str s;
    uint32_t n;
    uint64_t v;
    double d;
    bool b;

    kz_rd_init(&r, in, sizeof(in));
    ASSERT_ERR(kz_mpk_str(&r, 10, &s), -KZ_EMALFORMED);
    ASSERT_STR_EQ(r.why, "expected str");
    kz_rd_init(&r, in + 1, sizeof(in) - 1);
    ASSERT_ERR(kz_mpk_uint(&r, 10, &v), -KZ_EMALFORMED);
    kz_rd_init(&r, in + 3, sizeof(in) - 3);
    ASSERT_ERR(kz_mpk_array(&r, 10, &n), -KZ_EMALFORMED);
    kz_rd_init(&r, in + 4, sizeof(in) - 4);
    ASSERT_ERR(kz_mpk_map(&r, 10, &n), -KZ_EMALFORMED);
    kz_rd_init(&r, in + 5, sizeof(in) - 5);
    ASSERT_ERR(kz_mpk_nil(&r), -KZ_EMALFORMED);
    kz_rd_init(&r, in + 6, sizeof(in) - 6);
    ASSERT_ERR(kz_mpk_f64(&r, &d), -KZ_EMALFORMED);
    kz_rd_init(&r, in, 1);
    ASSERT_ERR(kz_mpk_bool(&r, &b), -KZ_EMALFORMED);
}

TEST(byte_c1_is_never_valid)
{
    static const uint8_t in[] = {0xc1};
    struct kz_rd r;

    kz_rd_init(&r, in, sizeof(in));
    ASSERT_ERR(kz_mpk_peek(&r), -KZ_EMALFORMED);
    ASSERT_ERR(kz_mpk_skip(&r, 8), -KZ_EMALFORMED);
    ASSERT_STR_EQ(r.why, "msgpack byte c1");
}

TEST(errors_are_sticky)
{
    static const uint8_t in[] = {0xa1, 'x', 0x05, 0x06};
    struct kz_rd r;
    uint64_t v = 99;
    struct kz_str s;

    kz_rd_init(&r, in, sizeof(in));
    ASSERT_ERR(kz_mpk_uint(&r, 10, &v), -KZ_EMALFORMED);
    ASSERT_ERR(kz_mpk_uint(&r, 10, &v), -KZ_EMALFORMED);
    ASSERT_U64_EQ(v, 0);
    ASSERT_ERR(kz_mpk_str(&r, 10, &s), -KZ_EMALFORMED);
    ASSERT(s.p == NULL);
    ASSERT_STR_EQ(r.why, "expected integer");
    ASSERT_ERR(kz_mpk_peek(&r), -KZ_EMALFORMED);
}

TEST(value_reads_every_scalar)
{
    static const uint8_t blob[3] = {0, 1, 2};
    struct kz_value in[5], out;
    struct kz_mpk_wr w;
    struct kz_rd r;
    uint8_t *p;
    size_t len, i;

    memset(in, 0, sizeof(in));
    in[0].type = KZ_V_NULL;
    in[1].type = KZ_V_INT;
    in[1].i = -123456789012;
    in[2].type = KZ_V_REAL;
    in[2].d = 3.25;
    in[3].type = KZ_V_TEXT;
    in[3].p = (const uint8_t *)"Jugendamt";
    in[3].len = 9;
    in[4].type = KZ_V_BLOB;
    in[4].p = blob;
    in[4].len = sizeof(blob);
    kz_mpk_wr_init(&w, 256);
    for (i = 0; i < 5; i++)
        kz_mpk_wr_value(&w, &in[i]);
    p = finish(&w, &len);
    kz_rd_init(&r, p, len);
    for (i = 0; i < 5; i++) {
        ASSERT_OK(kz_mpk_value(&r, &out));
        ASSERT_EQ(out.type, in[i].type);
        ASSERT_EQ(out.i, in[i].i);
        ASSERT(out.d == in[i].d);
        ASSERT_EQ(out.len, in[i].len);
        if (in[i].len)
            ASSERT_MEM_EQ(out.p, in[i].p, in[i].len);
    }
    ASSERT_EQ(r.left, 0);
    kz_free(p);
}

TEST(value_rejects_containers_bool_ext)
{
    static const uint8_t ins[][3] = {{0x90}, {0x80}, {0xc2}, {0xd4, 1, 2}};
    size_t i;

    for (i = 0; i < KZ_ARRAY_SIZE(ins); i++) {
        struct kz_rd r;
        struct kz_value v;

        kz_rd_init(&r, ins[i], sizeof(ins[i]));
        ASSERT_ERR(kz_mpk_value(&r, &v), -KZ_EMALFORMED);
        ASSERT_EQ(v.type, KZ_V_NULL);
    }
}

TEST(skip_respects_depth)
{
    uint8_t bomb[64];
    struct kz_rd r;
    size_t i;

    /* [[[[[[[[0]]]]]]]] is depth 8: fine; one more level is not. */
    for (i = 0; i < 8; i++)
        bomb[i] = 0x91;
    bomb[8] = 0x00;
    kz_rd_init(&r, bomb, 9);
    ASSERT_OK(kz_mpk_skip(&r, KZ_LIM_DEPTH_MAX));
    ASSERT_EQ(r.left, 0);
    kz_rd_init(&r, bomb, 9);
    ASSERT_ERR(kz_mpk_skip(&r, 7), -KZ_ELIMIT);
    ASSERT_STR_EQ(r.why, "nested too deeply");
    for (i = 0; i < sizeof(bomb) - 1; i++)
        bomb[i] = (i & 1) ? 0x91 : 0x81; /* maps and arrays */
    bomb[sizeof(bomb) - 1] = 0;
    kz_rd_init(&r, bomb, sizeof(bomb));
    ASSERT_ERR(kz_mpk_skip(&r, 1000), -KZ_ELIMIT); /* clamped to 8 */
}

TEST(skip_walks_every_type)
{
    static const uint8_t in[] = {
        0x9f,                         /* fixarray 15 */
        0xc0, 0xc2, 0xc3, 0x7f, 0xe0, /* nil false true 127 -32 */
        0xcb, 0,    0,    0,    0,    0,    0,    0,    0, /* float64 */
        0xca, 0,    0,    0,    0,                         /* float32 */
        0xd9, 0x01, 'a',                                   /* str8 */
        0xc4, 0x02, 1,    2,                               /* bin8 */
        0xd6, 0x01, 1,    2,    3,    4,                   /* fixext4 */
        0xc7, 0x01, 0x05, 9,                               /* ext8 */
        0x81, 0xa1, 'k',  0x92, 1,    2,                   /* {"k": [1, 2]} */
        0xdc, 0x00, 0x01, 0xc0,                            /* array16 [nil] */
        0xde, 0x00, 0x01, 0x01, 0x02,                      /* map16 {1: 2} */
        0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0x42}; /* after the array */
    struct kz_rd r;
    uint64_t v;

    /* Nesting is 3: the array, the map in it, the array in that. */
    kz_rd_init(&r, in, sizeof(in));
    ASSERT_OK(kz_mpk_skip(&r, 3));
    ASSERT_OK(kz_mpk_uint(&r, 0x42, &v));
    ASSERT_EQ(r.left, 0);
    kz_rd_init(&r, in, sizeof(in));
    ASSERT_ERR(kz_mpk_skip(&r, 2), -KZ_ELIMIT);
}

TEST(truncated_at_every_offset)
{
    struct kz_mpk_wr w;
    uint8_t *p;
    size_t len, cut;

    kz_mpk_wr_init(&w, 1024);
    kz_mpk_wr_array(&w, 3);
    kz_mpk_wr_map(&w, 1);
    kz_mpk_wr_str(&w, "key", 3);
    kz_mpk_wr_bin(&w, "\x01\x02\x03", 3);
    kz_mpk_wr_uint(&w, UINT64_MAX);
    kz_mpk_wr_array(&w, 2);
    kz_mpk_wr_f64(&w, 2.5);
    kz_mpk_wr_int(&w, -70000);
    p = finish(&w, &len);
    for (cut = 0; cut < len; cut++) {
        struct kz_rd r;

        kz_rd_init(&r, p, cut);
        ASSERT_ERR(kz_mpk_skip(&r, 2), -KZ_EMALFORMED);
    }
    {
        struct kz_rd r;
        kz_rd_init(&r, p, len);
        ASSERT_OK(kz_mpk_skip(&r, 2));
        ASSERT_EQ(r.left, 0);
    }
    kz_free(p);
}

/*
 * Random trees: our writer encodes, msgpack-c decodes, and our reader walks
 * the bytes in step with msgpack-c's object tree.
 */
static void
gen(struct kz_mpk_wr *w, int depth)
{
    static const char text[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    uint64_t k = rng() % (depth > 0 ? 10 : 8);
    uint32_t n, i;

    switch (k) {
    case 0: kz_mpk_wr_nil(w); break;
    case 1: kz_mpk_wr_bool(w, rng() & 1); break;
    case 2: kz_mpk_wr_uint(w, rng() >> (rng() % 64)); break;
    case 3: kz_mpk_wr_int(w, -(int64_t)(rng() >> (1 + rng() % 63)) - 1); break;
    case 4: kz_mpk_wr_f64(w, (double)(int64_t)rng() / 7.0); break;
    case 5:
        n = (uint32_t)(rng() % 40);
        kz_mpk_wr_str(w, text, n < sizeof(text) ? n : 0);
        break;
    case 6:
    case 7:
        n = (uint32_t)(rng() % 300);
        kz_mpk_wr_bin(w, text, n < sizeof(text) ? n : 0);
        break;
    case 8:
        n = (uint32_t)(rng() % 20);
        kz_mpk_wr_array(w, n);
        for (i = 0; i < n; i++)
            gen(w, depth - 1);
        break;
    default:
        n = (uint32_t)(rng() % 6);
        kz_mpk_wr_map(w, n);
        for (i = 0; i < 2 * n; i++)
            gen(w, depth - 1);
        break;
    }
}

static void
walk(struct kz_rd *r, const msgpack_object *o)
{
    struct kz_str s;
    const uint8_t *p;
    size_t len;
    uint32_t n, i;
    uint64_t u;
    int64_t v;
    double d;
    bool b;

    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        ASSERT_EQ(kz_mpk_peek(r), KZ_MPK_NIL);
        ASSERT_OK(kz_mpk_nil(r));
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        ASSERT_OK(kz_mpk_bool(r, &b));
        ASSERT_EQ(b, o->via.boolean);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        ASSERT_OK(kz_mpk_uint(r, UINT64_MAX, &u));
        ASSERT_U64_EQ(u, o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        ASSERT_OK(kz_mpk_int(r, &v));
        ASSERT_EQ(v, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT64:
        ASSERT_OK(kz_mpk_f64(r, &d));
        ASSERT(d == o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        ASSERT_OK(kz_mpk_str(r, KZ_LIM_STR_MAX, &s));
        ASSERT_EQ(s.len, o->via.str.size);
        if (s.len > 0) /* msgpack-c gives NULL for "" */
            ASSERT_MEM_EQ(s.p, o->via.str.ptr, s.len);
        break;
    case MSGPACK_OBJECT_BIN:
        ASSERT_OK(kz_mpk_bin(r, KZ_LIM_BIN_MAX, &p, &len));
        ASSERT_EQ(len, o->via.bin.size);
        if (len > 0)
            ASSERT_MEM_EQ(p, o->via.bin.ptr, len);
        break;
    case MSGPACK_OBJECT_ARRAY:
        ASSERT_OK(kz_mpk_array(r, KZ_LIM_COUNT_MAX, &n));
        ASSERT_EQ(n, o->via.array.size);
        for (i = 0; i < n; i++)
            walk(r, &o->via.array.ptr[i]);
        break;
    case MSGPACK_OBJECT_MAP:
        ASSERT_OK(kz_mpk_map(r, KZ_LIM_COUNT_MAX, &n));
        ASSERT_EQ(n, o->via.map.size);
        for (i = 0; i < n; i++) {
            walk(r, &o->via.map.ptr[i].key);
            walk(r, &o->via.map.ptr[i].val);
        }
        break;
    default: T_FAIL_("unexpected msgpack type %d", (int)o->type);
    }
}

TEST(random_trees_agree_with_msgpack_c)
{
    int iter;

    for (iter = 0; iter < 2000; iter++) {
        struct kz_mpk_wr w;
        msgpack_unpacked o;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        struct kz_rd r;
        uint8_t *p;
        size_t len;

        kz_mpk_wr_init(&w, 1 << 20);
        gen(&w, 4);
        p = finish(&w, &len);
        oracle_unpack(&o, p, len);
        kz_rd_init(&r, p, len);
        walk(&r, &o.data);
        ASSERT_EQ(r.left, 0);
        kz_rd_init(&r, p, len);
        ASSERT_OK(kz_mpk_skip(&r, 4));
        ASSERT_EQ(r.left, 0);
        /* msgpack-c re-encodes the tree to the same bytes. */
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        ASSERT_OK(msgpack_pack_object(&pk, o.data));
        ASSERT_EQ(sb.size, len);
        ASSERT_MEM_EQ(sb.data, p, len);
        msgpack_sbuffer_destroy(&sb);
        msgpack_unpacked_destroy(&o);
        kz_free(p);
    }
}

TEST(writer_cap_is_sticky)
{
    struct kz_mpk_wr w;
    uint8_t *p;
    size_t len;

    kz_mpk_wr_init(&w, 8);
    kz_mpk_wr_uint(&w, 1);
    kz_mpk_wr_str(&w, "0123456789", 10);
    ASSERT_ERR(kz_mpk_wr_err(&w), -KZ_ELIMIT);
    len = kz_mpk_wr_len(&w); /* 1, plus the str header that still fit */
    kz_mpk_wr_nil(&w);
    kz_mpk_wr_raw(&w, "x", 1);
    ASSERT_EQ(kz_mpk_wr_len(&w), len);
    ASSERT_ERR(kz_mpk_wr_finish(&w, &p, &len), -KZ_ELIMIT);
    ASSERT(p == NULL);
    /* Reusable after finish. */
    kz_mpk_wr_nil(&w);
    p = finish(&w, &len);
    ASSERT_EQ(len, 1);
    ASSERT_EQ(p[0], 0xc0);
    kz_free(p);
}

TEST(writer_refuses_what_the_reader_refuses)
{
    struct kz_mpk_wr w;
    struct kz_value v;

    kz_mpk_wr_init(&w, 64);
    kz_mpk_wr_array(&w, KZ_LIM_COUNT_MAX + 1);
    ASSERT_ERR(kz_mpk_wr_err(&w), -KZ_ELIMIT);
    ASSERT_EQ(kz_mpk_wr_len(&w), 0);
    kz_mpk_wr_reset(&w);
    kz_mpk_wr_map(&w, KZ_LIM_COUNT_MAX + 1);
    ASSERT_ERR(kz_mpk_wr_err(&w), -KZ_ELIMIT);
    kz_mpk_wr_reset(&w);
    kz_mpk_wr_str(&w, NULL, (size_t)KZ_LIM_STR_MAX + 1);
    ASSERT_ERR(kz_mpk_wr_err(&w), -KZ_ELIMIT);
    kz_mpk_wr_reset(&w);
    kz_mpk_wr_bin(&w, NULL, (size_t)KZ_LIM_BIN_MAX + 1);
    ASSERT_ERR(kz_mpk_wr_err(&w), -KZ_ELIMIT);
    kz_mpk_wr_reset(&w);
    memset(&v, 0, sizeof(v));
    v.type = (enum kz_vtype)42;
    kz_mpk_wr_value(&w, &v);
    ASSERT_ERR(kz_mpk_wr_err(&w), -KZ_EINVAL);
    kz_mpk_wr_free(&w);
}

TEST(writer_alloc_failure_loop)
{
    static char big[5000];
    long n;

    for (n = 0;; n++) {
        struct kz_mpk_wr w;
        uint8_t *p = NULL;
        size_t len = 0;
        int rc, i;

        kz_mpk_wr_init(&w, 1 << 16);
        kz_alloc_fail_after(n);
        for (i = 0; i < 20; i++) {
            kz_mpk_wr_array(&w, 2);
            kz_mpk_wr_str(&w, big, (size_t)i * 250);
            kz_mpk_wr_int(&w, -i);
        }
        rc = kz_mpk_wr_finish(&w, &p, &len);
        kz_alloc_fail_after(-1);
        if (rc == 0) {
            ASSERT(n > 0);
            kz_free(p);
            break;
        }
        ASSERT_ERR(rc, -KZ_ENOMEM);
        ASSERT(p == NULL);
        ASSERT(n < 100);
    }
}

/* Writes ${len} bytes to DIR/mpk/NAME. */
static void
seed(const char *dir, const char *name, const void *p, size_t len)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/mpk", dir);
    (void)mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/mpk/%s", dir, name);
    f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT_EQ(fwrite(p, 1, len, f), len);
    ASSERT_EQ(fclose(f), 0);
}

TEST(write_corpus)
{
    static const uint8_t issue1013[] = {0xdd, 0xff, 0x00, 0x00, 0x00};
    static const uint8_t bomb[] = {0x91, 0x91, 0x91, 0x91, 0x91,
                                   0x91, 0x91, 0x91, 0x91, 0x00};
    static const uint8_t exts[] = {0x93, 0xd4, 0x01, 0x02, 0xc7, 0x01, 0x05,
                                   0x09, 0xca, 0x3f, 0xc0, 0x00, 0x00};
    const char *dir = getenv("KZ_WRITE_CORPUS");
    char name[64];
    int i;

    if (dir == NULL)
        return; /* only on demand: KZ_WRITE_CORPUS=tests/fuzz/corpus */
    seed(dir, "issue1013", issue1013, sizeof(issue1013));
    seed(dir, "depth9", bomb, sizeof(bomb));
    seed(dir, "depth8", bomb + 1, sizeof(bomb) - 1);
    seed(dir, "ext_float32", exts, sizeof(exts));
    rng_state = 0x5eed;
    for (i = 0; i < 24; i++) {
        struct kz_mpk_wr w;
        uint8_t *p;
        size_t len;

        kz_mpk_wr_init(&w, 1 << 20);
        gen(&w, 1 + i % 4);
        p = finish(&w, &len);
        if (len > 4096) {
            kz_free(p);
            continue;
        }
        snprintf(name, sizeof(name), "tree%02d", i);
        seed(dir, name, p, len);
        kz_free(p);
    }
}

T_MAIN(T(integers_round_trip_shortest_form),
       T(signed_encodings_of_small_values_are_accepted),
       T(integer_range_checks), T(floats_nil_bool_round_trip),
       T(float32_is_a_wrong_type),
       T(str_and_bin_round_trip_at_every_header_size), T(str_and_bin_limits),
       T(bin_n_takes_exactly_n_bytes), T(array_and_map_headers),
       T(absurd_declared_counts_fail_before_anything),
       T(wrong_types_are_malformed), T(byte_c1_is_never_valid),
       T(errors_are_sticky), T(value_reads_every_scalar),
       T(value_rejects_containers_bool_ext), T(skip_respects_depth),
       T(skip_walks_every_type), T(truncated_at_every_offset),
       T(random_trees_agree_with_msgpack_c), T(writer_cap_is_sticky),
       T(writer_refuses_what_the_reader_refuses), T(writer_alloc_failure_loop),
       T(write_corpus))
