/*
 * test_buf.c: the capped buffer and the bounded reader.
 */
#include "buf.h"
#include "err.h"
#include "rd.h"

#include "t.h"

TEST(append_and_read_back)
{
    struct kz_buf b;
    struct kz_rd r;

    kz_buf_init(&b, 1024);
    kz_buf_u8(&b, 0xab);
    kz_buf_be16(&b, 0x1234);
    kz_buf_be32(&b, 0xdeadbeef);
    kz_buf_be64(&b, UINT64_C(0x0102030405060708));
    ASSERT_OK(b.err);
    ASSERT_EQ(b.len, 15);
    kz_rd_init(&r, b.p, b.len);
    ASSERT_EQ(kz_rd_u8(&r), 0xab);
    ASSERT_EQ(kz_rd_be16(&r), 0x1234);
    ASSERT_U64_EQ(kz_rd_be32(&r), 0xdeadbeef);
    ASSERT_U64_EQ(kz_rd_be64(&r), UINT64_C(0x0102030405060708));
    ASSERT_EQ(r.left, 0);
    ASSERT_OK(r.err);
    kz_buf_free(&b);
}

TEST(cap_is_sticky)
{
    struct kz_buf b;

    kz_buf_init(&b, 4);
    kz_buf_be32(&b, 1);
    ASSERT_OK(b.err);
    kz_buf_u8(&b, 1);
    ASSERT_ERR(b.err, -KZ_ELIMIT);
    kz_buf_u8(&b, 1);
    ASSERT_EQ(b.len, 4);
    kz_buf_free(&b);
}

TEST(consume_keeps_rest)
{
    struct kz_buf b;

    kz_buf_init(&b, 16);
    kz_buf_append(&b, "abcdef", 6);
    kz_buf_consume(&b, 2);
    ASSERT_EQ(b.len, 4);
    ASSERT_MEM_EQ(b.p, "cdef", 4);
    kz_buf_consume(&b, 10);
    ASSERT_EQ(b.len, 0);
    kz_buf_free(&b);
}

TEST(reader_truncated_is_sticky)
{
    static const uint8_t in[] = {0x00, 0x01, 0x02};
    struct kz_rd r;

    kz_rd_init(&r, in, sizeof(in));
    ASSERT_EQ(kz_rd_be16(&r), 1);
    ASSERT_U64_EQ(kz_rd_be32(&r), 0);
    ASSERT_ERR(r.err, -KZ_EMALFORMED);
    ASSERT_STR_EQ(r.why, "truncated");
    ASSERT_EQ(kz_rd_u8(&r), 0);
    ASSERT(kz_rd_bytes(&r, 0) == NULL);
}

TEST(reader_refuses_huge_length)
{
    static const uint8_t in[] = {1, 2, 3, 4};
    struct kz_rd r;

    kz_rd_init(&r, in, sizeof(in));
    ASSERT(kz_rd_bytes(&r, SIZE_MAX) == NULL);
    ASSERT_ERR(r.err, -KZ_EMALFORMED);
}

T_MAIN(T(append_and_read_back), T(cap_is_sticky), T(consume_keeps_rest),
       T(reader_truncated_is_sticky), T(reader_refuses_huge_length))
