/*
 * test_changeset.c: the changeset header and body codec.
 *
 * Positive tests round-trip through our writer and check the bytes with
 * msgpack-c as an oracle (on our own bytes only).  Negative tests are exact
 * bytes, hand-made with the low-level mpk writer, which lets us build any
 * shape the body writer would refuse.
 *
 * With KZ_WRITE_CORPUS=DIR set, the test write_corpus writes fuzz seeds
 * (headers and bodies from our encoder) to DIR/changeset/.
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

static const uint8_t key_a[KZ_KEY_LEN] = {0xaa, 1, 2, 3};
static const uint8_t key_b[KZ_KEY_LEN] = {0xbb, 4, 5, 6};

static struct kz_cs_header
sample_header(void)
{
    struct kz_cs_header h;

    memset(&h, 0, sizeof(h));
    h.format = KZ_CS_FORMAT;
    strcpy(h.scope, "site:HAN");
    memcpy(h.author, key_a, KZ_KEY_LEN);
    h.author_seq = 17;
    h.epoch = 3;
    h.n_cells = 5;
    h.n_rows = 3;
    h.hlc_min = UINT64_C(0x0000018c00000001);
    h.hlc_max = UINT64_C(0x0000018c0000ffff);
    return h;
}

static struct kz_value
v_int(int64_t i)
{
    struct kz_value v = {KZ_V_INT, i, 0, NULL, 0};
    return v;
}

static struct kz_value
v_text(const char *s)
{
    struct kz_value v = {KZ_V_TEXT, 0, 0, (const uint8_t *)s, strlen(s)};
    return v;
}

static struct kz_cs_cell
cell(uint32_t col, struct kz_value v, uint64_t hlc, uint32_t author)
{
    struct kz_cs_cell c;

    memset(&c, 0, sizeof(c));
    c.col = col;
    c.value = v;
    c.hlc = hlc;
    c.author = author;
    return c;
}

/*
 * sample_body(): 2 tables, 2 authors, 3 rows, 6 cells covering every value
 * type, a retract flag and a base version.  Caller frees with kz_free.
 * Returns 0 or the writer's error (for the allocation-failure loop).
 */
static int
sample_body(uint8_t **out, size_t *len)
{
    static const char *const cols_case[] = {"status", "opened", "note"};
    static const char *const cols_staff[] = {"name"};
    static const uint8_t blob[4] = {0xde, 0xad, 0xbe, 0xef};
    struct kz_cs_wr *w;
    struct kz_value pk[2];
    struct kz_cs_cell c;
    int t0, t1, a0, a1, rc;

    *out = NULL;
    if ((rc = kz_cs_wr_new(&w, 1 << 20)) != 0)
        return rc;
    if ((t0 = kz_cs_wr_table(w, "case", cols_case, 3)) < 0 ||
        (t1 = kz_cs_wr_table(w, "staff", cols_staff, 1)) < 0 ||
        (a0 = kz_cs_wr_author(w, key_a)) < 0 ||
        (a1 = kz_cs_wr_author(w, key_b)) < 0) {
        rc = t0 < 0 ? t0 : t1 < 0 ? t1 : a0 < 0 ? a0 : a1;
        goto out;
    }
    pk[0] = v_text("HAN-2024-0001");
    kz_cs_wr_row(w, (uint32_t)t0, pk, 1, 3, NULL);
    kz_cs_wr_cell(w, &(struct kz_cs_cell){0, 0, v_int(1), 100, 0, 0, 0});
    c = cell(1, v_text("open"), 101, (uint32_t)a0);
    c.base_hlc = 90;
    c.base_author = (uint32_t)a1;
    kz_cs_wr_cell(w, &c);
    c = cell(3, (struct kz_value){KZ_V_BLOB, 0, 0, blob, sizeof(blob)}, 102,
             (uint32_t)a1);
    c.flags = KZ_CELL_RETRACT;
    kz_cs_wr_cell(w, &c);
    pk[0] = v_int(-7);
    pk[1] = (struct kz_value){KZ_V_REAL, 0, 2.5, NULL, 0};
    kz_cs_wr_row(w, (uint32_t)t1, pk, 2, 2, NULL);
    c = cell(1, (struct kz_value){KZ_V_NULL, 0, 0, NULL, 0}, 103, 0);
    kz_cs_wr_cell(w, &c);
    c = cell(0, v_int(0), UINT64_MAX, 1);
    kz_cs_wr_cell(w, &c);
    pk[0] = v_int(INT64_MIN);
    kz_cs_wr_row(w, (uint32_t)t1, pk, 1, 1, NULL);
    c = cell(1, v_text(""), 1, 0);
    kz_cs_wr_cell(w, &c);
    rc = kz_cs_wr_finish(w, out, len);
out:
    kz_cs_wr_free(w);
    return rc;
}

/*
 * decode_all(p, len, why): opens the body and reads every row and cell.
 * Returns 0, or the first error; *${why} gets its reason.
 */
static int
decode_all(const uint8_t *p, size_t len, const char **why, uint32_t *n_cells)
{
    struct kz_cs_rd *r;
    struct kz_cs_row row;
    struct kz_cs_cell c;
    int rc;

    *n_cells = 0;
    if ((rc = kz_cs_rd_new(&r, p, len, why)) != 0)
        return rc;
    while ((rc = kz_cs_rd_next_row(r, &row)) == 1)
        while ((rc = kz_cs_rd_next_cell(r, &c)) == 1)
            (*n_cells)++;
    if (rc != 0)
        *why = kz_cs_rd_why(r);
    kz_cs_rd_free(r);
    return rc;
}

TEST(header_round_trip)
{
    struct kz_cs_header h = sample_header(), g;
    msgpack_unpacked o;
    const char *why = "x";
    uint8_t *p;
    size_t len, off = 0;

    ASSERT_OK(kz_cs_header_encode(&h, &p, &len));
    ASSERT_LE(len, KZ_LIM_CS_HEADER_MAX);
    ASSERT_OK(kz_cs_header_decode(&g, p, len, &why));
    ASSERT(why == NULL);
    ASSERT_MEM_EQ(&g, &h, sizeof(h));
    msgpack_unpacked_init(&o);
    ASSERT_EQ(msgpack_unpack_next(&o, (const char *)p, len, &off),
              MSGPACK_UNPACK_SUCCESS);
    ASSERT_EQ(off, len);
    ASSERT_EQ(o.data.type, MSGPACK_OBJECT_ARRAY);
    ASSERT_EQ(o.data.via.array.size, 9);
    ASSERT_EQ(o.data.via.array.ptr[1].type, MSGPACK_OBJECT_STR);
    ASSERT_EQ(o.data.via.array.ptr[2].type, MSGPACK_OBJECT_BIN);
    ASSERT_EQ(o.data.via.array.ptr[2].via.bin.size, 32);
    ASSERT_U64_EQ(o.data.via.array.ptr[8].via.u64, h.hlc_max);
    msgpack_unpacked_destroy(&o);
    kz_free(p);
}

TEST(header_longest_fits_the_limit)
{
    struct kz_cs_header h = sample_header(), g;
    uint8_t *p;
    size_t len;

    memset(h.scope, 'x', KZ_LIM_NAME_MAX);
    h.scope[KZ_LIM_NAME_MAX] = '\0';
    h.author_seq = UINT64_MAX;
    h.epoch = UINT32_MAX;
    h.n_cells = KZ_LIM_CS_CELLS_MAX;
    h.n_rows = KZ_LIM_CS_ROWS_MAX;
    h.hlc_min = UINT64_MAX;
    h.hlc_max = UINT64_MAX;
    ASSERT_OK(kz_cs_header_encode(&h, &p, &len));
    ASSERT_LE(len, KZ_LIM_CS_HEADER_MAX);
    ASSERT_OK(kz_cs_header_decode(&g, p, len, NULL));
    ASSERT_MEM_EQ(&g, &h, sizeof(h));
    kz_free(p);
}

TEST(header_exact_bytes)
{
    /* [1, "n", bin(32) 0…, 1, 0, 0, 0, 0, 0]: the smallest valid header. */
    uint8_t in[1 + 1 + 2 + 2 + 32 + 6];
    struct kz_cs_header h;
    uint8_t *p;
    size_t len;

    memset(in, 0, sizeof(in));
    in[0] = 0x99;
    in[1] = 0x01;
    in[2] = 0xa1;
    in[3] = 'n';
    in[4] = 0xc4;
    in[5] = 0x20;
    in[38] = 0x01; /* author_seq */
    ASSERT_OK(kz_cs_header_decode(&h, in, sizeof(in), NULL));
    ASSERT_STR_EQ(h.scope, "n");
    ASSERT_U64_EQ(h.author_seq, 1);
    ASSERT_OK(kz_cs_header_encode(&h, &p, &len));
    ASSERT_EQ(len, sizeof(in));
    ASSERT_MEM_EQ(p, in, len);
    kz_free(p);
}

TEST(header_truncated_at_every_offset_and_trailing_byte)
{
    struct kz_cs_header h = sample_header(), g;
    const char *why;
    uint8_t *p, *q;
    size_t len, cut;

    ASSERT_OK(kz_cs_header_encode(&h, &p, &len));
    for (cut = 0; cut < len; cut++) {
        why = NULL;
        ASSERT_ERR(kz_cs_header_decode(&g, p, cut, &why), -KZ_EMALFORMED);
        ASSERT(why != NULL);
    }
    q = kz_malloc(len + 1);
    ASSERT(q != NULL);
    memcpy(q, p, len);
    q[len] = 0xc0;
    ASSERT_ERR(kz_cs_header_decode(&g, q, len + 1, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "trailing bytes after header");
    kz_free(q);
    kz_free(p);
}

/* Header fields for hand-built negative headers. */
struct hdr_spec {
    uint32_t n;        /* array count */
    uint64_t format;   /* format */
    const char *scope; /* scope bytes … */
    size_t scope_len;  /* … and length */
    size_t author_len; /* bin length */
    uint64_t seq;      /* author_seq */
    uint64_t epoch;    /* epoch */
    uint64_t n_cells;  /* n_cells */
    uint64_t n_rows;   /* n_rows */
    uint64_t hlc_min;  /* hlc_min */
    uint64_t hlc_max;  /* hlc_max */
    bool scope_as_bin; /* wrong type for scope */
};

static struct hdr_spec
good_spec(void)
{
    struct hdr_spec s = {9, 1, "network", 7, 32, 1, 0, 1, 1, 5, 9, false};
    return s;
}

static int
decode_spec(const struct hdr_spec *s, const char **why)
{
    static const uint8_t zeros[64];
    struct kz_mpk_wr w;
    struct kz_cs_header h;
    uint8_t *p;
    size_t len;
    int rc;

    kz_mpk_wr_init(&w, 4096);
    kz_mpk_wr_array(&w, s->n);
    kz_mpk_wr_uint(&w, s->format);
    if (s->scope_as_bin)
        kz_mpk_wr_bin(&w, s->scope, s->scope_len);
    else
        kz_mpk_wr_str(&w, s->scope, s->scope_len);
    kz_mpk_wr_bin(&w, zeros, s->author_len);
    kz_mpk_wr_uint(&w, s->seq);
    kz_mpk_wr_uint(&w, s->epoch);
    kz_mpk_wr_uint(&w, s->n_cells);
    kz_mpk_wr_uint(&w, s->n_rows);
    kz_mpk_wr_uint(&w, s->hlc_min);
    kz_mpk_wr_uint(&w, s->hlc_max);
    ASSERT_OK(kz_mpk_wr_finish(&w, &p, &len));
    *why = NULL;
    rc = kz_cs_header_decode(&h, p, len, why);
    kz_free(p);
    return rc;
}

TEST(header_rejects_bad_fields)
{
    static const char scope129[130] =
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    struct hdr_spec s;
    const char *why;

    s = good_spec();
    ASSERT_OK(decode_spec(&s, &why));
    s = good_spec(), s.format = 2;
    ASSERT_ERR(decode_spec(&s, &why), -KZ_EVERSION);
    s = good_spec(), s.format = 2, s.n = 12; /* a future, longer header */
    ASSERT_ERR(decode_spec(&s, &why), -KZ_EVERSION);
    s = good_spec(), s.format = 0;
    ASSERT_ERR(decode_spec(&s, &why), -KZ_EVERSION);
    s = good_spec(), s.n = 10;
    ASSERT_ERR(decode_spec(&s, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "header is not an array of 9");
    s = good_spec(), s.author_len = 31;
    ASSERT_ERR(decode_spec(&s, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "author is not 32 bytes");
    s = good_spec(), s.author_len = 33;
    ASSERT_ERR(decode_spec(&s, &why), -KZ_EMALFORMED);
    s = good_spec(), s.scope = "net\0work", s.scope_len = 8;
    ASSERT_ERR(decode_spec(&s, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "scope contains a NUL byte");
    s = good_spec(), s.scope = "", s.scope_len = 0;
    ASSERT_ERR(decode_spec(&s, &why), -KZ_EMALFORMED);
    s = good_spec(), s.scope = scope129, s.scope_len = 129;
    ASSERT_ERR(decode_spec(&s, &why), -KZ_ELIMIT);
    s = good_spec(), s.scope_as_bin = true;
    ASSERT_ERR(decode_spec(&s, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "expected str");
    s = good_spec(), s.seq = 0;
    ASSERT_ERR(decode_spec(&s, &why), -KZ_EMALFORMED);
    s = good_spec(), s.epoch = UINT64_C(1) << 32;
    ASSERT_ERR(decode_spec(&s, &why), -KZ_EMALFORMED);
    s = good_spec(), s.n_cells = KZ_LIM_CS_CELLS_MAX + 1;
    ASSERT_ERR(decode_spec(&s, &why), -KZ_ELIMIT);
    s = good_spec(), s.n_rows = KZ_LIM_CS_ROWS_MAX + 1;
    ASSERT_ERR(decode_spec(&s, &why), -KZ_ELIMIT);
    s = good_spec(), s.hlc_min = 10;
    ASSERT_ERR(decode_spec(&s, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "hlc_min > hlc_max");
    s = good_spec(), s.hlc_min = 0;
    ASSERT_ERR(decode_spec(&s, &why), -KZ_EMALFORMED);
}

TEST(header_oversized_and_absurd_inputs)
{
    static const uint8_t issue1013[] = {0xdd, 0xff, 0x00, 0x00, 0x00};
    static const uint8_t empty[] = {0x90};
    uint8_t big[KZ_LIM_CS_HEADER_MAX + 1];
    struct kz_cs_header h;
    const char *why;

    ASSERT_ERR(kz_cs_header_decode(&h, issue1013, sizeof(issue1013), &why),
               -KZ_ELIMIT);
    ASSERT_STR_EQ(why, "array count over limit");
    ASSERT_ERR(kz_cs_header_decode(&h, empty, sizeof(empty), &why),
               -KZ_EMALFORMED);
    ASSERT_ERR(kz_cs_header_decode(&h, empty, 0, &why), -KZ_EMALFORMED);
    memset(big, 0xc0, sizeof(big));
    ASSERT_ERR(kz_cs_header_decode(&h, big, sizeof(big), &why), -KZ_ELIMIT);
    ASSERT_STR_EQ(why, "header over limit");
}

TEST(header_encode_rejects_what_decode_would)
{
    struct kz_cs_header h;
    uint8_t *p = (uint8_t *)"x";
    size_t len;

    h = sample_header(), h.format = 2;
    ASSERT_ERR(kz_cs_header_encode(&h, &p, &len), -KZ_EINVAL);
    ASSERT(p == NULL);
    h = sample_header(), h.scope[0] = '\0';
    ASSERT_ERR(kz_cs_header_encode(&h, &p, &len), -KZ_EINVAL);
    h = sample_header(), memset(h.scope, 'x', sizeof(h.scope));
    ASSERT_ERR(kz_cs_header_encode(&h, &p, &len), -KZ_EINVAL);
    h = sample_header(), h.author_seq = 0;
    ASSERT_ERR(kz_cs_header_encode(&h, &p, &len), -KZ_EINVAL);
    h = sample_header(), h.n_cells = KZ_LIM_CS_CELLS_MAX + 1;
    ASSERT_ERR(kz_cs_header_encode(&h, &p, &len), -KZ_EINVAL);
    h = sample_header(), h.hlc_min = h.hlc_max + 1;
    ASSERT_ERR(kz_cs_header_encode(&h, &p, &len), -KZ_EINVAL);
}

TEST(body_round_trip)
{
    struct kz_cs_rd *r;
    struct kz_cs_row row;
    struct kz_cs_cell c;
    const struct kz_cs_table *t;
    msgpack_unpacked o;
    const char *why;
    uint8_t *p;
    size_t len, off = 0;

    ASSERT_OK(sample_body(&p, &len));
    msgpack_unpacked_init(&o);
    ASSERT_EQ(msgpack_unpack_next(&o, (const char *)p, len, &off),
              MSGPACK_UNPACK_SUCCESS);
    ASSERT_EQ(off, len);
    ASSERT_EQ(o.data.type, MSGPACK_OBJECT_ARRAY);
    ASSERT_EQ(o.data.via.array.size, 4);
    ASSERT_EQ(o.data.via.array.ptr[3].via.array.size, 3);
    ASSERT_EQ(o.data.via.array.ptr[3]
                  .via.array.ptr[0]
                  .via.array.ptr[2]
                  .via.array.ptr[1]
                  .via.array.size,
              7);
    msgpack_unpacked_destroy(&o);

    ASSERT_OK(kz_cs_rd_new(&r, p, len, &why));
    ASSERT_EQ(kz_cs_rd_n_tables(r), 2);
    t = kz_cs_rd_table(r, 0);
    ASSERT_EQ(t->name.len, 4);
    ASSERT_MEM_EQ(t->name.p, "case", 4);
    ASSERT_EQ(t->n_cols, 3);
    ASSERT_MEM_EQ(t->cols[2].p, "note", 4);
    ASSERT(kz_cs_rd_table(r, 2) == NULL);
    ASSERT_EQ(kz_cs_rd_n_authors(r), 2);
    ASSERT_MEM_EQ(kz_cs_rd_author(r, 1), key_b, KZ_KEY_LEN);
    ASSERT(kz_cs_rd_author(r, 2) == NULL);
    ASSERT_EQ(kz_cs_rd_n_rows(r), 3);

    ASSERT_EQ(kz_cs_rd_next_row(r, &row), 1);
    ASSERT_EQ(row.table, 0);
    ASSERT_EQ(row.n_pk, 1);
    ASSERT_EQ(row.pk[0].type, KZ_V_TEXT);
    ASSERT_MEM_EQ(row.pk[0].p, "HAN-2024-0001", 13);
    ASSERT_EQ(row.n_cells, 3);
    ASSERT_EQ(kz_cs_rd_next_cell(r, &c), 1);
    ASSERT_EQ(c.col, 0);
    ASSERT_EQ(c.value.i, 1);
    ASSERT_EQ(kz_cs_rd_next_cell(r, &c), 1);
    ASSERT_EQ(c.col, 1);
    ASSERT_U64_EQ(c.hlc, 101);
    ASSERT_U64_EQ(c.base_hlc, 90);
    ASSERT_EQ(c.base_author, 1);
    ASSERT_EQ(kz_cs_rd_next_cell(r, &c), 1);
    ASSERT_EQ(c.flags, KZ_CELL_RETRACT);
    ASSERT_EQ(c.value.type, KZ_V_BLOB);
    ASSERT_EQ(c.value.len, 4);
    ASSERT_EQ(c.author, 1);
    ASSERT_EQ(kz_cs_rd_next_cell(r, &c), 0);

    ASSERT_EQ(kz_cs_rd_next_row(r, &row), 1);
    ASSERT_EQ(row.table, 1);
    ASSERT_EQ(row.n_pk, 2);
    ASSERT_EQ(row.pk[0].i, -7);
    ASSERT(row.pk[1].type == KZ_V_REAL && row.pk[1].d == 2.5);
    ASSERT_EQ(kz_cs_rd_next_cell(r, &c), 1);
    ASSERT_EQ(c.value.type, KZ_V_NULL);
    /* The row's second cell is left unread: next_row checks and drops it. */
    ASSERT_EQ(kz_cs_rd_next_row(r, &row), 1);
    ASSERT_EQ(row.pk[0].i, INT64_MIN);
    ASSERT_EQ(kz_cs_rd_next_cell(r, &c), 1);
    ASSERT_EQ(c.value.type, KZ_V_TEXT);
    ASSERT_EQ(c.value.len, 0);
    ASSERT_EQ(kz_cs_rd_next_cell(r, &c), 0);
    ASSERT_EQ(kz_cs_rd_next_row(r, &row), 0);
    ASSERT_EQ(kz_cs_rd_next_row(r, &row), 0);
    ASSERT(kz_cs_rd_why(r) == NULL);
    kz_cs_rd_free(r);
    kz_free(p);
}

TEST(body_truncated_at_every_offset)
{
    const char *why;
    uint32_t n;
    uint8_t *p;
    size_t len, cut;

    ASSERT_OK(sample_body(&p, &len));
    ASSERT_OK(decode_all(p, len, &why, &n));
    ASSERT_EQ(n, 6);
    for (cut = 0; cut < len; cut++) {
        why = NULL;
        ASSERT_ERR(decode_all(p, cut, &why, &n), -KZ_EMALFORMED);
        ASSERT(why != NULL);
    }
    kz_free(p);
}

TEST(body_trailing_byte)
{
    const char *why;
    uint32_t n;
    uint8_t *p, *q;
    size_t len;

    ASSERT_OK(sample_body(&p, &len));
    q = kz_malloc(len + 1);
    ASSERT(q != NULL);
    memcpy(q, p, len);
    q[len] = 0x00;
    ASSERT_ERR(decode_all(q, len + 1, &why, &n), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "trailing bytes after body");
    kz_free(q);
    kz_free(p);
}

TEST(body_every_byte_flipped_never_crashes)
{
    /* Not every flip is invalid (a value byte may change), but every flip
     * must decode to 0 or a clean error, never anything else. */
    const char *why;
    uint32_t n;
    uint8_t *p;
    size_t len, i;
    int bit, rc;

    ASSERT_OK(sample_body(&p, &len));
    for (i = 0; i < len; i++) {
        for (bit = 0; bit < 8; bit++) {
            p[i] ^= (uint8_t)(1u << bit);
            rc = decode_all(p, len, &why, &n);
            ASSERT(rc == 0 || rc == -KZ_EMALFORMED || rc == -KZ_ELIMIT ||
                   rc == -KZ_EVERSION);
            ASSERT(rc == 0 || why != NULL);
            p[i] ^= (uint8_t)(1u << bit);
        }
    }
    kz_free(p);
}

/*
 * Hand-built bodies.  bw_begin writes [1, tables, authors, and the rows
 * array header; the test then writes rows with the raw writer.
 */
static void
bw_begin2(struct kz_mpk_wr *w, uint32_t format, uint32_t n_rows)
{
    static const uint8_t zeros[32];

    kz_mpk_wr_init(w, 4u << 20);
    kz_mpk_wr_array(w, 4);
    kz_mpk_wr_uint(w, format);
    kz_mpk_wr_array(w, 1); /* one table "t" with columns a, b */
    kz_mpk_wr_array(w, 2);
    kz_mpk_wr_str(w, "t", 1);
    kz_mpk_wr_array(w, 2);
    kz_mpk_wr_str(w, "a", 1);
    kz_mpk_wr_str(w, "b", 1);
    kz_mpk_wr_array(w, 1); /* one author */
    kz_mpk_wr_bin(w, zeros, 32);
    kz_mpk_wr_array(w, n_rows);
}

/* The same in format 1, which most hand-built bodies here use. */
static void
bw_begin(struct kz_mpk_wr *w, uint32_t n_rows)
{
    bw_begin2(w, 1, n_rows);
}

/* A row of table 0 with pk [1] and n cells. */
static void
bw_row(struct kz_mpk_wr *w, uint32_t n_cells)
{
    kz_mpk_wr_array(w, 3);
    kz_mpk_wr_uint(w, 0);
    kz_mpk_wr_array(w, 1);
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_array(w, n_cells);
}

/* A cell with the given fields (value written by the caller if !value). */
static void
bw_cell(struct kz_mpk_wr *w, uint64_t col, uint64_t flags, int64_t value,
        uint64_t hlc, uint64_t author, uint64_t base_author)
{
    kz_mpk_wr_array(w, 7);
    kz_mpk_wr_uint(w, col);
    kz_mpk_wr_uint(w, flags);
    kz_mpk_wr_int(w, value);
    kz_mpk_wr_uint(w, hlc);
    kz_mpk_wr_uint(w, author);
    kz_mpk_wr_uint(w, 0);
    kz_mpk_wr_uint(w, base_author);
}

/* Finishes the hand-built body and decodes it. */
static int
bw_decode(struct kz_mpk_wr *w, const char **why)
{
    uint32_t n;
    uint8_t *p;
    size_t len;
    int rc;

    ASSERT_OK(kz_mpk_wr_finish(w, &p, &len));
    rc = decode_all(p, len, why, &n);
    kz_free(p);
    return rc;
}

/* One row with one cell; expects ${code} and ${reason}. */
static void
expect_cell(uint64_t col, uint64_t flags, int64_t value, uint64_t hlc,
            uint64_t author, uint64_t base_author, int code, const char *reason)
{
    struct kz_mpk_wr w;
    const char *why;

    bw_begin(&w, 1);
    bw_row(&w, 1);
    bw_cell(&w, col, flags, value, hlc, author, base_author);
    ASSERT_ERR(bw_decode(&w, &why), code);
    if (reason != NULL)
        ASSERT_STR_EQ(why, reason);
}

TEST(cell_checks)
{
    expect_cell(0, 0, 1, 5, 0, 0, 0, NULL);
    expect_cell(2, 1, 42, 5, 0, 0, 0, NULL);
    expect_cell(3, 0, 1, 5, 0, 0, -KZ_EMALFORMED, "column index out of range");
    expect_cell(1, 2, 1, 5, 0, 0, -KZ_EMALFORMED, "unknown cell flag bits");
    expect_cell(1, 0x80000000u, 1, 5, 0, 0, -KZ_EMALFORMED, NULL);
    expect_cell(1, 0, 1, 0, 0, 0, -KZ_EMALFORMED, "cell hlc 0");
    expect_cell(0, 0, 2, 5, 0, 0, -KZ_EMALFORMED,
                "existence cell is not 0 or 1");
    expect_cell(0, 0, -1, 5, 0, 0, -KZ_EMALFORMED, NULL);
    expect_cell(1, 0, 1, 5, 1, 0, -KZ_EMALFORMED, "author index out of range");
    expect_cell(1, 0, 1, 5, 0, 1, -KZ_EMALFORMED,
                "base_author index out of range");
    expect_cell(UINT64_C(1) << 32, 0, 1, 5, 0, 0, -KZ_EMALFORMED,
                "integer out of range");
}

TEST(existence_cell_must_be_an_integer)
{
    struct kz_mpk_wr w;
    const char *why;

    bw_begin(&w, 1);
    bw_row(&w, 1);
    kz_mpk_wr_array(&w, 7);
    kz_mpk_wr_uint(&w, 0);
    kz_mpk_wr_uint(&w, 0);
    kz_mpk_wr_str(&w, "1", 1);
    kz_mpk_wr_uint(&w, 5);
    kz_mpk_wr_uint(&w, 0);
    kz_mpk_wr_uint(&w, 0);
    kz_mpk_wr_uint(&w, 0);
    ASSERT_ERR(bw_decode(&w, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "existence cell is not 0 or 1");
}

TEST(row_checks)
{
    struct kz_mpk_wr w;
    const char *why;
    uint32_t i;

    /* Table index out of range. */
    bw_begin(&w, 1);
    kz_mpk_wr_array(&w, 3);
    kz_mpk_wr_uint(&w, 1);
    kz_mpk_wr_array(&w, 1);
    kz_mpk_wr_uint(&w, 1);
    kz_mpk_wr_array(&w, 0);
    ASSERT_ERR(bw_decode(&w, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "table index out of range");
    /* Empty pk. */
    bw_begin(&w, 1);
    kz_mpk_wr_array(&w, 3);
    kz_mpk_wr_uint(&w, 0);
    kz_mpk_wr_array(&w, 0);
    kz_mpk_wr_array(&w, 0);
    ASSERT_ERR(bw_decode(&w, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "empty primary key");
    /* pk of 9. */
    bw_begin(&w, 1);
    kz_mpk_wr_array(&w, 3);
    kz_mpk_wr_uint(&w, 0);
    kz_mpk_wr_array(&w, KZ_LIM_PK_COLS_MAX + 1);
    for (i = 0; i < KZ_LIM_PK_COLS_MAX + 1; i++)
        kz_mpk_wr_uint(&w, i);
    kz_mpk_wr_array(&w, 0);
    ASSERT_ERR(bw_decode(&w, &why), -KZ_ELIMIT);
    /* NULL in the pk. */
    bw_begin(&w, 1);
    kz_mpk_wr_array(&w, 3);
    kz_mpk_wr_uint(&w, 0);
    kz_mpk_wr_array(&w, 2);
    kz_mpk_wr_uint(&w, 1);
    kz_mpk_wr_nil(&w);
    kz_mpk_wr_array(&w, 0);
    ASSERT_ERR(bw_decode(&w, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "NULL or NaN in primary key");
    /* NaN in the pk (SQLite would bind it as NULL). */
    bw_begin(&w, 1);
    kz_mpk_wr_array(&w, 3);
    kz_mpk_wr_uint(&w, 0);
    kz_mpk_wr_array(&w, 1);
    kz_mpk_wr_f64(&w, NAN);
    kz_mpk_wr_array(&w, 0);
    ASSERT_ERR(bw_decode(&w, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "NULL or NaN in primary key");
    /* A bool is not a value. */
    bw_begin(&w, 1);
    kz_mpk_wr_array(&w, 3);
    kz_mpk_wr_uint(&w, 0);
    kz_mpk_wr_array(&w, 1);
    kz_mpk_wr_bool(&w, true);
    kz_mpk_wr_array(&w, 0);
    ASSERT_ERR(bw_decode(&w, &why), -KZ_EMALFORMED);
    /* Row of 4, cell of 8. */
    bw_begin(&w, 1);
    kz_mpk_wr_array(&w, 4);
    kz_mpk_wr_uint(&w, 0);
    kz_mpk_wr_array(&w, 1);
    kz_mpk_wr_uint(&w, 1);
    kz_mpk_wr_array(&w, 0);
    kz_mpk_wr_nil(&w);
    ASSERT_ERR(bw_decode(&w, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "row is not an array of 3");
    bw_begin(&w, 1);
    bw_row(&w, 1);
    kz_mpk_wr_array(&w, 8);
    for (i = 0; i < 8; i++)
        kz_mpk_wr_uint(&w, 1);
    ASSERT_ERR(bw_decode(&w, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "cell is not an array of 7");
    /* Fewer rows than declared; more cells than the row has. */
    bw_begin(&w, 2);
    bw_row(&w, 0);
    ASSERT_ERR(bw_decode(&w, &why), -KZ_EMALFORMED);
    bw_begin(&w, 1);
    bw_row(&w, 1);
    bw_cell(&w, 1, 0, 1, 5, 0, 0);
    bw_cell(&w, 1, 0, 1, 5, 0, 0);
    ASSERT_ERR(bw_decode(&w, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "trailing bytes after body");
}

TEST(too_many_cells_in_all_rows)
{
    struct kz_mpk_wr w;
    const char *why;
    uint32_t i;

    bw_begin(&w, 2);
    bw_row(&w, KZ_LIM_CS_CELLS_MAX);
    for (i = 0; i < KZ_LIM_CS_CELLS_MAX; i++)
        bw_cell(&w, 1, 0, 1, 5, 0, 0);
    bw_row(&w, 1);
    bw_cell(&w, 1, 0, 1, 5, 0, 0);
    ASSERT_ERR(bw_decode(&w, &why), -KZ_ELIMIT);
    ASSERT_STR_EQ(why, "too many cells");
}

/* A body with custom tables/authors sections, written by ${fn}. */
static int
decode_lists(void (*fn)(struct kz_mpk_wr *), const char **why)
{
    struct kz_mpk_wr w;

    kz_mpk_wr_init(&w, 1u << 20);
    kz_mpk_wr_array(&w, 4);
    kz_mpk_wr_uint(&w, 1);
    fn(&w);
    kz_mpk_wr_array(&w, 0);
    return bw_decode(&w, why);
}

static void
tables_name_129(struct kz_mpk_wr *w)
{
    static char name[129];

    memset(name, 'n', sizeof(name));
    kz_mpk_wr_array(w, 1);
    kz_mpk_wr_array(w, 2);
    kz_mpk_wr_str(w, name, sizeof(name));
    kz_mpk_wr_array(w, 0);
    kz_mpk_wr_array(w, 0);
}

static void
tables_col_nul(struct kz_mpk_wr *w)
{
    kz_mpk_wr_array(w, 1);
    kz_mpk_wr_array(w, 2);
    kz_mpk_wr_str(w, "t", 1);
    kz_mpk_wr_array(w, 1);
    kz_mpk_wr_str(w, "a\0b", 3);
    kz_mpk_wr_array(w, 0);
}

static void
tables_257(struct kz_mpk_wr *w)
{
    uint32_t i;

    kz_mpk_wr_array(w, KZ_LIM_CS_TABLES_MAX + 1);
    for (i = 0; i < KZ_LIM_CS_TABLES_MAX + 1; i++) {
        kz_mpk_wr_array(w, 2);
        kz_mpk_wr_str(w, "t", 1);
        kz_mpk_wr_array(w, 0);
    }
    kz_mpk_wr_array(w, 0);
}

static void
tables_200_cols_ok(struct kz_mpk_wr *w)
{
    uint32_t i, j;

    kz_mpk_wr_array(w, 100); /* 100 tables × 200 columns: grows past 64 */
    for (i = 0; i < 100; i++) {
        kz_mpk_wr_array(w, 2);
        kz_mpk_wr_str(w, "t", 1);
        kz_mpk_wr_array(w, 200);
        for (j = 0; j < 200; j++)
            kz_mpk_wr_str(w, "c", 1);
    }
    kz_mpk_wr_array(w, 0);
}

static void
tables_entry_of_3(struct kz_mpk_wr *w)
{
    kz_mpk_wr_array(w, 1);
    kz_mpk_wr_array(w, 3);
    kz_mpk_wr_str(w, "t", 1);
    kz_mpk_wr_array(w, 0);
    kz_mpk_wr_nil(w);
    kz_mpk_wr_array(w, 0);
}

static void
authors_short_key(struct kz_mpk_wr *w)
{
    kz_mpk_wr_array(w, 0);
    kz_mpk_wr_array(w, 1);
    kz_mpk_wr_bin(w, "0123456789012345678901234567890", 31);
}

static void
authors_as_str(struct kz_mpk_wr *w)
{
    kz_mpk_wr_array(w, 0);
    kz_mpk_wr_array(w, 1);
    kz_mpk_wr_str(w, "01234567890123456789012345678901", 32);
}

TEST(list_checks)
{
    const char *why;

    ASSERT_ERR(decode_lists(tables_name_129, &why), -KZ_ELIMIT);
    ASSERT_STR_EQ(why, "str over limit");
    ASSERT_ERR(decode_lists(tables_col_nul, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "name contains a NUL byte");
    ASSERT_ERR(decode_lists(tables_257, &why), -KZ_ELIMIT);
    ASSERT_OK(decode_lists(tables_200_cols_ok, &why));
    ASSERT_ERR(decode_lists(tables_entry_of_3, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "table is not an array of 2");
    ASSERT_ERR(decode_lists(authors_short_key, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "author is not 32 bytes");
    ASSERT_ERR(decode_lists(authors_as_str, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "expected bin");
}

TEST(body_format_and_shape)
{
    static const uint8_t v0[] = {0x94, 0x00, 0x90, 0x90, 0x90};
    static const uint8_t v2[] = {0x94, 0x02, 0x90, 0x90, 0x90};
    static const uint8_t v3[] = {0x94, 0x03, 0x90, 0x90, 0x90};
    static const uint8_t v3_long[] = {0x95, 0x03, 0x90, 0x90, 0x90, 0xc0};
    static const uint8_t five[] = {0x95, 0x01, 0x90, 0x90, 0x90, 0xc0};
    static const uint8_t empty_ok[] = {0x94, 0x01, 0x90, 0x90, 0x90};
    static const uint8_t zero[] = {0x90};
    static const uint8_t map[] = {0x80};
    const char *why;
    uint32_t n;

    ASSERT_OK(decode_all(empty_ok, sizeof(empty_ok), &why, &n));
    ASSERT_OK(decode_all(v2, sizeof(v2), &why, &n));
    ASSERT_ERR(decode_all(v3, sizeof(v3), &why, &n), -KZ_EVERSION);
    ASSERT_STR_EQ(why, "unsupported changeset format");
    ASSERT_ERR(decode_all(v0, sizeof(v0), &why, &n), -KZ_EVERSION);
    ASSERT_ERR(decode_all(v3_long, sizeof(v3_long), &why, &n), -KZ_EVERSION);
    ASSERT_ERR(decode_all(five, sizeof(five), &why, &n), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "body is not an array of 4");
    ASSERT_ERR(decode_all(zero, sizeof(zero), &why, &n), -KZ_EMALFORMED);
    ASSERT_ERR(decode_all(map, sizeof(map), &why, &n), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "expected array");
    ASSERT_ERR(decode_all(map, 0, &why, &n), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "truncated");
}

TEST(absurd_counts_fail_fast_without_allocating)
{
    /* Each is tried with room for exactly the allocations it needs (the
     * reader itself, and in the last case its one table): any allocation
     * sized from the absurd count would turn the result into -KZ_ENOMEM. */
    static const struct {
        uint8_t in[12];
        size_t len;
        int code;
        long allocs;
    } cases[] = {
        {{0xdd, 0xff, 0x00, 0x00, 0x00}, 5, -KZ_ELIMIT},
        {{0xdd, 0xff, 0xff, 0xff, 0xff}, 5, -KZ_ELIMIT},
        {{0xdd, 0x00, 0x00, 0xff, 0xff, 0x01}, 6, -KZ_EMALFORMED},
        {{0x94, 0x01, 0xdd, 0xff, 0x00, 0x00, 0x00}, 7, -KZ_ELIMIT},
        {{0x94, 0x01, 0xdc, 0x00, 0xff, 0x92}, 6, -KZ_EMALFORMED},
        {{0x94, 0x01, 0x90, 0xdd, 0xff, 0x00, 0x00, 0x00}, 8, -KZ_ELIMIT},
        {{0x94, 0x01, 0x90, 0xdc, 0x00, 0x20, 0xc4}, 7, -KZ_EMALFORMED},
        {{0x94, 0x01, 0x90, 0x90, 0xdd, 0xff, 0x00, 0x00, 0x00}, 9, -KZ_ELIMIT},
        {{0x94, 0x01, 0x90, 0x90, 0xdc, 0xff, 0x00}, 7, -KZ_EMALFORMED},
        {{0x94, 0x01, 0x91, 0x92, 0xa1, 't', 0xdc, 0x00, 0xff, 0xa1, 'c'},
         11,
         -KZ_EMALFORMED,
         2},
    };
    size_t i;

    for (i = 0; i < KZ_ARRAY_SIZE(cases); i++) {
        struct kz_cs_rd *r = (struct kz_cs_rd *)1;
        const char *why = NULL;
        int rc;

        kz_alloc_fail_after(cases[i].allocs ? cases[i].allocs : 1);
        rc = kz_cs_rd_new(&r, cases[i].in, cases[i].len, &why);
        kz_alloc_fail_after(-1);
        if (rc != cases[i].code)
            T_FAIL_("case %zu: %d (%s, %s)", i, rc, kz_err_name(rc),
                    why ? why : "");
        ASSERT(r == NULL);
        ASSERT(why != NULL);
    }
}

TEST(protocol_md_example)
{
    /* The example bodies of PROTOCOL.md §Changesets, byte for byte: format
     * 2 as our writer makes it, and the same content in format 1. */
    uint8_t in[9 + 3 + 32 + 13], v1[9 + 3 + 32 + 14];
    struct kz_cs_ver ver = {5, 0, 0, 0};
    struct kz_cs_wr *w;
    struct kz_cs_rd *r;
    struct kz_cs_row row;
    struct kz_cs_cell c;
    static const char *const cols[] = {"a"};
    static const uint8_t zero_key[KZ_KEY_LEN];
    struct kz_value pk = v_int(1);
    const char *why;
    uint8_t *p;
    size_t len, o = 0;

    memcpy(in + o,
           "\x94\x02\x91\x92\xa1t\x91\xa1"
           "a",
           9),
        o += 9;
    memcpy(in + o, "\x91\xc4\x20", 3), o += 3;
    memset(in + o, 0, 32), o += 32;
    memcpy(in + o, "\x91\x97\x00\x91\x01\x05\x00\x00\x00\x91\x92\x00\x01", 13),
        o += 13;
    ASSERT_EQ(o, sizeof(in));
    memcpy(v1, in, 9 + 3 + 32);
    v1[1] = 0x01;
    memcpy(v1 + 44,
           "\x91\x93\x00\x91\x01\x91\x97\x00\x00\x01\x05\x00\x00"
           "\x00",
           14);
    for (o = 0; o < 2; o++) {
        ASSERT_OK(
            kz_cs_rd_new(&r, o ? v1 : in, o ? sizeof(v1) : sizeof(in), &why));
        ASSERT_EQ(kz_cs_rd_next_row(r, &row), 1);
        ASSERT_EQ(kz_cs_rd_next_cell(r, &c), 1);
        ASSERT_EQ(c.col, 0);
        ASSERT_EQ(c.flags, 0);
        ASSERT_EQ(c.value.i, 1);
        ASSERT_U64_EQ(c.hlc, 5);
        ASSERT_EQ(c.author, 0);
        ASSERT_U64_EQ(c.base_hlc, 0);
        ASSERT_EQ(kz_cs_rd_next_cell(r, &c), 0);
        ASSERT_EQ(kz_cs_rd_next_row(r, &row), 0);
        kz_cs_rd_free(r);
    }
    /* And our writer produces exactly the format 2 bytes. */
    ASSERT_OK(kz_cs_wr_new(&w, 1024));
    ASSERT_EQ(kz_cs_wr_table(w, "t", cols, 1), 0);
    ASSERT_EQ(kz_cs_wr_author(w, zero_key), 0);
    kz_cs_wr_row(w, 0, &pk, 1, 1, &ver);
    c = cell(0, v_int(1), 5, 0);
    kz_cs_wr_cell(w, &c);
    ASSERT_OK(kz_cs_wr_finish(w, &p, &len));
    ASSERT_EQ(len, sizeof(in));
    ASSERT_MEM_EQ(p, in, len);
    kz_free(p);
    kz_cs_wr_free(w);
}

/*
 * four_cells(w, pk, ver, out, len): a body of one row of ${ver} (may be
 * NULL) with four cells of version ${ver->hlc} by author 0: two of the
 * row's version, one with another base, one retraction.
 */
static int
four_cells(struct kz_cs_wr *w, const struct kz_value *pk,
           const struct kz_cs_ver *ver, uint8_t **out, size_t *len)
{
    static const char *const cols[] = {"a", "b", "c"};
    static const uint8_t key2[KZ_KEY_LEN] = {2};
    const uint64_t h = UINT64_C(7) << 16;

    if (kz_cs_wr_table(w, "t", cols, 3) != 0 ||
        kz_cs_wr_author(w, key_a) != 0 || kz_cs_wr_author(w, key2) != 1)
        return -KZ_EINVAL;
    kz_cs_wr_row(w, 0, pk, 1, 4, ver);
    kz_cs_wr_cell(w, &(struct kz_cs_cell){0, 0, v_int(1), h, 0, 0, 0});
    kz_cs_wr_cell(w, &(struct kz_cs_cell){1, 0, v_text("x"), h, 0, 0, 0});
    /* Another author's base: whole. */
    kz_cs_wr_cell(w, &(struct kz_cs_cell){2, 0, v_int(5), h, 0, 9, 1});
    /* A retraction: whole, though of the row's version. */
    kz_cs_wr_cell(
        w, &(struct kz_cs_cell){
               3, KZ_CELL_RETRACT, {KZ_V_NULL, 0, 0, NULL, 0}, h, 0, 0, 0});
    return kz_cs_wr_finish(w, out, len);
}

/* Format 2: rows of 7 carry a version, and their short cells [col, value]
 * take it; everything else about a cell stays checked. */
TEST(versioned_rows_and_short_cells)
{
    static const char *const cols[] = {"a", "b", "c"};
    struct kz_cs_ver ver = {UINT64_C(7) << 16, 0, 0, 0};
    struct kz_cs_wr *w;
    struct kz_cs_rd *r;
    struct kz_cs_row row;
    struct kz_cs_cell c;
    struct kz_value pk = v_text("row-1");
    const char *why;
    uint8_t *p, *q;
    size_t len, qlen;

    /* Writer: cells of the row's version are short, others whole.  The
     * same cells in a row without a version: the row is 8 bytes shorter
     * (hlc as uint32, 3 indexes) and each of the two short cells 9 bytes
     * longer (flags, hlc, 3 indexes). */
    ASSERT_OK(kz_cs_wr_new(&w, 1024));
    ASSERT_OK(four_cells(w, &pk, &ver, &p, &len));
    ASSERT_OK(four_cells(w, &pk, NULL, &q, &qlen));
    ASSERT_EQ(qlen, len - 8 + 2 * 9);
    kz_free(q);

    /* Reader: every cell comes back whole. */
    ASSERT_OK(kz_cs_rd_new(&r, p, len, &why));
    ASSERT_EQ(kz_cs_rd_next_row(r, &row), 1);
    ASSERT_EQ(row.n_cells, 4);
    ASSERT_EQ(kz_cs_rd_next_cell(r, &c), 1);
    ASSERT(c.col == 0 && c.value.i == 1 && c.flags == 0);
    ASSERT_U64_EQ(c.hlc, ver.hlc);
    ASSERT_EQ(kz_cs_rd_next_cell(r, &c), 1);
    ASSERT(c.col == 1 && c.value.type == KZ_V_TEXT && c.value.len == 1);
    ASSERT_U64_EQ(c.hlc, ver.hlc);
    ASSERT(c.author == 0 && c.base_hlc == 0 && c.base_author == 0);
    ASSERT_EQ(kz_cs_rd_next_cell(r, &c), 1);
    ASSERT(c.col == 2 && c.base_hlc == 9 && c.base_author == 1);
    ASSERT_EQ(kz_cs_rd_next_cell(r, &c), 1);
    ASSERT(c.col == 3 && c.flags == KZ_CELL_RETRACT);
    ASSERT_EQ(kz_cs_rd_next_cell(r, &c), 0);
    ASSERT_EQ(kz_cs_rd_next_row(r, &row), 0);
    kz_cs_rd_free(r);
    kz_free(p);

    /* Writer refuses a version the reader would. */
    kz_cs_wr_row(w, 0, &pk, 1, 0, &(struct kz_cs_ver){0, 0, 0, 0});
    ASSERT_ERR(kz_cs_wr_finish(w, &p, &len), -KZ_EINVAL);
    ASSERT_EQ(kz_cs_wr_table(w, "t", cols, 3), 0);
    ASSERT_EQ(kz_cs_wr_author(w, key_a), 0);
    kz_cs_wr_row(w, 0, &pk, 1, 0, &(struct kz_cs_ver){5, 1, 0, 0});
    ASSERT_ERR(kz_cs_wr_finish(w, &p, &len), -KZ_EINVAL);
    kz_cs_wr_free(w);
}

/* A hand-built format 2 row of ${n} items: table 0, pk [1], then the
 * version fields (when n is 7), then ${n_cells} cells follow. */
static void
bw_row2(struct kz_mpk_wr *w, uint32_t n, uint64_t hlc, uint64_t author,
        uint64_t base_author, uint32_t n_cells)
{
    kz_mpk_wr_array(w, n);
    kz_mpk_wr_uint(w, 0);
    kz_mpk_wr_array(w, 1);
    kz_mpk_wr_uint(w, 1);
    if (n == 7) {
        kz_mpk_wr_uint(w, hlc);
        kz_mpk_wr_uint(w, author);
        kz_mpk_wr_uint(w, 0);
        kz_mpk_wr_uint(w, base_author);
    }
    kz_mpk_wr_array(w, n_cells);
}

/*
 * One format-${format} body with one row of ${row_n} items (version hlc,
 * author, base_author when 7) and, if ${cell_n}, one cell of 2 ([col,
 * value]) or 3 ([col, 0, value]); expects ${why} (NULL: decodes).
 */
static void
expect_v2(uint32_t format, uint32_t row_n, uint64_t hlc, uint64_t author,
          uint64_t base_author, uint32_t cell_n, uint64_t col, int64_t value,
          const char *why_want)
{
    struct kz_mpk_wr w;
    const char *why = NULL;
    int rc;

    bw_begin2(&w, format, 1);
    bw_row2(&w, row_n, hlc, author, base_author, cell_n ? 1 : 0);
    if (row_n == 5) { /* the two extra items of a row of 5 */
        kz_mpk_wr_nil(&w);
        kz_mpk_wr_nil(&w);
    }
    if (cell_n) {
        kz_mpk_wr_array(&w, cell_n);
        kz_mpk_wr_uint(&w, col);
        if (cell_n == 3)
            kz_mpk_wr_uint(&w, 0);
        kz_mpk_wr_int(&w, value);
    }
    rc = bw_decode(&w, &why);
    if (why_want == NULL) {
        ASSERT_OK(rc);
    } else {
        ASSERT_ERR(rc, -KZ_EMALFORMED);
        ASSERT_STR_EQ(why, why_want);
    }
}

TEST(versioned_row_checks)
{
    struct kz_mpk_wr w;
    const char *why;

    /* A short cell in a versioned row; one of 3 is neither form. */
    expect_v2(2, 7, 5, 0, 0, 2, 2, 1, NULL);
    expect_v2(2, 7, 5, 0, 0, 3, 2, 1, "cell is not an array of 2 or 7");
    /* Short cells need the row's version; rows of 7 need format 2. */
    expect_v2(2, 3, 0, 0, 0, 2, 1, 1, "cell is not an array of 7");
    expect_v2(1, 7, 5, 0, 0, 0, 0, 0, "row is not an array of 3");
    expect_v2(2, 5, 5, 0, 0, 0, 0, 0, "row is not an array of 3 or 7");
    /* The row's version is checked like a cell's. */
    expect_v2(2, 7, 0, 0, 0, 0, 0, 0, "row hlc 0");
    expect_v2(2, 7, 5, 1, 0, 0, 0, 0, "author index out of range");
    expect_v2(2, 7, 5, 0, 1, 0, 0, 0, "base_author index out of range");
    /* A short existence cell is still 0 or 1, its column still in range. */
    expect_v2(2, 7, 5, 0, 0, 2, 0, 2, "existence cell is not 0 or 1");
    expect_v2(2, 7, 5, 0, 0, 2, 3, 1, "column index out of range");
    /* The next row has no version: its cells must be whole again. */
    bw_begin2(&w, 2, 2);
    bw_row2(&w, 7, 5, 0, 0, 0);
    bw_row2(&w, 3, 0, 0, 0, 1);
    kz_mpk_wr_array(&w, 2);
    kz_mpk_wr_uint(&w, 1);
    kz_mpk_wr_int(&w, 1);
    ASSERT_ERR(bw_decode(&w, &why), -KZ_EMALFORMED);
    ASSERT_STR_EQ(why, "cell is not an array of 7");
}

TEST(body_over_limit)
{
    uint8_t *big;
    const char *why;
    uint32_t n;

    big = kz_malloc(KZ_LIM_CS_BODY_MAX + 1);
    ASSERT(big != NULL);
    memset(big, 0xc0, KZ_LIM_CS_BODY_MAX + 1);
    ASSERT_ERR(decode_all(big, KZ_LIM_CS_BODY_MAX + 1, &why, &n), -KZ_ELIMIT);
    ASSERT_STR_EQ(why, "body over limit");
    kz_free(big);
}

TEST(writer_rejects_bad_rows_and_cells)
{
    static const char *const cols[] = {"a"};
    struct kz_cs_wr *w;
    struct kz_value pk = v_int(1), nul = {KZ_V_NULL, 0, 0, NULL, 0};
    struct kz_cs_cell c;
    uint8_t *p;
    size_t len;

    ASSERT_OK(kz_cs_wr_new(&w, 4096));
    ASSERT_EQ(kz_cs_wr_table(w, "t", cols, 1), 0);
    ASSERT_EQ(kz_cs_wr_author(w, key_a), 0);
    ASSERT_EQ(kz_cs_wr_author(w, key_a), 0);

    kz_cs_wr_row(w, 1, &pk, 1, 1, NULL); /* table out of range */
    ASSERT_ERR(kz_cs_wr_finish(w, &p, &len), -KZ_EINVAL);
    ASSERT(p == NULL);
    /* finish emptied the writer: the table must be declared again. */
    ASSERT_EQ(kz_cs_wr_table(w, "t", cols, 1), 0);
    ASSERT_EQ(kz_cs_wr_author(w, key_a), 0);
    kz_cs_wr_row(w, 0, &nul, 1, 1, NULL);
    ASSERT_ERR(kz_cs_wr_finish(w, &p, &len), -KZ_EINVAL);

    ASSERT_EQ(kz_cs_wr_table(w, "t", cols, 1), 0);
    ASSERT_EQ(kz_cs_wr_author(w, key_a), 0);
    kz_cs_wr_row(w, 0, &pk, 0, 1, NULL);
    ASSERT_ERR(kz_cs_wr_finish(w, &p, &len), -KZ_EINVAL);

    ASSERT_EQ(kz_cs_wr_table(w, "t", cols, 1), 0);
    ASSERT_EQ(kz_cs_wr_author(w, key_a), 0);
    kz_cs_wr_row(w, 0, &pk, 1, 2, NULL);
    c = cell(1, v_int(5), 1, 0);
    kz_cs_wr_cell(w, &c);
    ASSERT_EQ(kz_cs_wr_n_cells(w), 1);
    ASSERT_ERR(kz_cs_wr_finish(w, &p, &len), -KZ_EINVAL); /* 1 of 2 cells */

    ASSERT_EQ(kz_cs_wr_table(w, "t", cols, 1), 0);
    ASSERT_EQ(kz_cs_wr_author(w, key_a), 0);
    kz_cs_wr_row(w, 0, &pk, 1, 1, NULL);
    c = cell(2, v_int(5), 1, 0); /* col beyond the table */
    kz_cs_wr_cell(w, &c);
    c = cell(1, v_int(5), 1, 0); /* sticky: this one is ignored */
    kz_cs_wr_cell(w, &c);
    ASSERT_ERR(kz_cs_wr_finish(w, &p, &len), -KZ_EINVAL);

    {
        static const struct kz_cs_cell bad[] = {
            {1, 2, {KZ_V_INT, 5, 0, NULL, 0}, 1, 0, 0, 0},
            {1, 0, {KZ_V_INT, 5, 0, NULL, 0}, 0, 0, 0, 0},
            {1, 0, {KZ_V_INT, 5, 0, NULL, 0}, 1, 1, 0, 0},
            {1, 0, {KZ_V_INT, 5, 0, NULL, 0}, 1, 0, 0, 1},
            {0, 0, {KZ_V_INT, 2, 0, NULL, 0}, 1, 0, 0, 0},
            {0, 0, {KZ_V_TEXT, 0, 0, (const uint8_t *)"1", 1}, 1, 0, 0, 0},
            {1, 0, {(enum kz_vtype)9, 0, 0, NULL, 0}, 1, 0, 0, 0},
        };
        size_t i;

        for (i = 0; i < KZ_ARRAY_SIZE(bad); i++) {
            ASSERT_EQ(kz_cs_wr_table(w, "t", cols, 1), 0);
            ASSERT_EQ(kz_cs_wr_author(w, key_a), 0);
            kz_cs_wr_row(w, 0, &pk, 1, 1, NULL);
            kz_cs_wr_cell(w, &bad[i]);
            ASSERT_ERR(kz_cs_wr_finish(w, &p, &len), -KZ_EINVAL);
        }
    }
    /* A cell with no row. */
    kz_cs_wr_cell(w, &c);
    ASSERT_ERR(kz_cs_wr_finish(w, &p, &len), -KZ_EINVAL);
    kz_cs_wr_free(w);
}

TEST(writer_table_and_author_errors_are_not_sticky)
{
    static const char *const cols[] = {"a", ""};
    char name[KZ_LIM_NAME_MAX + 2];
    const char *many[KZ_LIM_CS_COLS_MAX + 1];
    struct kz_cs_wr *w;
    struct kz_value pk = v_int(1);
    struct kz_cs_cell c = cell(0, v_int(1), 9, 0);
    uint8_t key[KZ_KEY_LEN] = {0};
    const char *why;
    uint32_t i, n;
    uint8_t *p;
    size_t len;

    memset(name, 'n', sizeof(name));
    name[KZ_LIM_NAME_MAX + 1] = '\0';
    for (i = 0; i < KZ_ARRAY_SIZE(many); i++)
        many[i] = "c";
    ASSERT_OK(kz_cs_wr_new(&w, SIZE_MAX)); /* clamped to the body limit */
    ASSERT_ERR(kz_cs_wr_table(w, name, NULL, 0), -KZ_ELIMIT);
    ASSERT_ERR(kz_cs_wr_table(w, "", NULL, 0), -KZ_EINVAL);
    ASSERT_ERR(kz_cs_wr_table(w, NULL, NULL, 0), -KZ_EINVAL);
    ASSERT_ERR(kz_cs_wr_table(w, "t", cols, 2), -KZ_EINVAL);
    ASSERT_ERR(kz_cs_wr_table(w, "t", NULL, 1), -KZ_EINVAL);
    ASSERT_ERR(kz_cs_wr_table(w, "t", many, KZ_ARRAY_SIZE(many)), -KZ_ELIMIT);
    name[KZ_LIM_NAME_MAX] = '\0';
    ASSERT_EQ(kz_cs_wr_table(w, name, many, KZ_LIM_CS_COLS_MAX), 0);
    for (i = 1; i < KZ_LIM_CS_TABLES_MAX; i++)
        ASSERT_EQ(kz_cs_wr_table(w, "t", NULL, 0), (int)i);
    ASSERT_ERR(kz_cs_wr_table(w, "t", NULL, 0), -KZ_ELIMIT);
    for (i = 0; i < KZ_LIM_CS_AUTHORS_MAX; i++) {
        key[0] = (uint8_t)i;
        ASSERT_EQ(kz_cs_wr_author(w, key), (int)i);
    }
    key[1] = 1;
    ASSERT_ERR(kz_cs_wr_author(w, key), -KZ_ELIMIT);
    kz_cs_wr_row(w, 255, &pk, 1, 1, NULL);
    kz_cs_wr_cell(w, &c);
    ASSERT_OK(kz_cs_wr_finish(w, &p, &len));
    ASSERT_OK(decode_all(p, len, &why, &n));
    ASSERT_EQ(n, 1);
    kz_free(p);
    kz_cs_wr_free(w);
}

TEST(writer_cap_and_limits)
{
    static const char *const cols[] = {"a"};
    static char big[2000];
    struct kz_cs_wr *w;
    struct kz_value pk = v_int(1);
    struct kz_cs_cell c;
    uint8_t *p;
    size_t len;
    int i;

    ASSERT_OK(kz_cs_wr_new(&w, 1000));
    ASSERT_EQ(kz_cs_wr_table(w, "t", cols, 1), 0);
    ASSERT_EQ(kz_cs_wr_author(w, key_a), 0);
    for (i = 0; i < 10; i++) {
        kz_cs_wr_row(w, 0, &pk, 1, 1, NULL);
        c = cell(1, (struct kz_value){KZ_V_BLOB, 0, 0, (uint8_t *)big, 150}, 1,
                 0);
        kz_cs_wr_cell(w, &c);
    }
    ASSERT_LE(kz_cs_wr_len(w), 1000);
    ASSERT_ERR(kz_cs_wr_finish(w, &p, &len), -KZ_ELIMIT);
    /* The rows fit, but tables + authors + rows do not. */
    ASSERT_EQ(kz_cs_wr_table(w, "t", cols, 1), 0);
    ASSERT_EQ(kz_cs_wr_author(w, key_a), 0);
    for (i = 0; i < 6; i++) {
        kz_cs_wr_row(w, 0, &pk, 1, 1, NULL);
        c = cell(1, (struct kz_value){KZ_V_BLOB, 0, 0, (uint8_t *)big, 150}, 1,
                 0);
        kz_cs_wr_cell(w, &c);
    }
    ASSERT_LE(kz_cs_wr_len(w), 1000);
    ASSERT_GT(kz_cs_wr_len(w) + 40, 1000);
    ASSERT_ERR(kz_cs_wr_finish(w, &p, &len), -KZ_ELIMIT);
    /* Cells over the changeset limit. */
    ASSERT_EQ(kz_cs_wr_table(w, "t", cols, 1), 0);
    kz_cs_wr_row(w, 0, &pk, 1, KZ_LIM_CS_CELLS_MAX + 1, NULL);
    ASSERT_ERR(kz_cs_wr_finish(w, &p, &len), -KZ_ELIMIT);
    kz_cs_wr_free(w);
}

TEST(writer_and_reader_alloc_failure_loop)
{
    uint8_t *good;
    size_t good_len;
    long n;
    int seen_ok = 0;

    ASSERT_OK(sample_body(&good, &good_len));
    for (n = 0; n < 1000; n++) {
        uint8_t *p = NULL;
        size_t len = 0;
        int rc;

        kz_alloc_fail_after(n);
        rc = sample_body(&p, &len);
        kz_alloc_fail_after(-1);
        if (rc == 0) {
            ASSERT_EQ(len, good_len);
            ASSERT_MEM_EQ(p, good, len);
            kz_free(p);
            seen_ok = 1;
            break;
        }
        ASSERT_ERR(rc, -KZ_ENOMEM);
        ASSERT(p == NULL);
    }
    ASSERT(seen_ok);
    for (n = 0, seen_ok = 0; n < 1000; n++) {
        const char *why;
        uint32_t cells;
        int rc;

        kz_alloc_fail_after(n);
        rc = decode_all(good, good_len, &why, &cells);
        kz_alloc_fail_after(-1);
        if (rc == 0) {
            ASSERT_EQ(cells, 6);
            seen_ok = 1;
            break;
        }
        ASSERT_ERR(rc, -KZ_ENOMEM);
        ASSERT_STR_EQ(why, "out of memory");
    }
    ASSERT(seen_ok);
    for (n = 0, seen_ok = 0; n < 100; n++) {
        struct kz_cs_header h = sample_header();
        uint8_t *p;
        size_t len;
        int rc;

        kz_alloc_fail_after(n);
        rc = kz_cs_header_encode(&h, &p, &len);
        kz_alloc_fail_after(-1);
        if (rc == 0) {
            kz_free(p);
            seen_ok = 1;
            break;
        }
        ASSERT_ERR(rc, -KZ_ENOMEM);
    }
    ASSERT(seen_ok);
    kz_free(good);
}

/* Writes ${len} bytes to DIR/changeset/NAME. */
static void
seed(const char *dir, const char *name, const uint8_t *p, size_t len)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/changeset", dir);
    (void)mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/changeset/%s", dir, name);
    f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT_EQ(fwrite(p, 1, len, f), len);
    ASSERT_EQ(fclose(f), 0);
}

TEST(write_corpus)
{
    static const char *const cols[] = {"vorname", "nachname", "geb", "foto"};
    const char *dir = getenv("KZ_WRITE_CORPUS");
    struct kz_cs_header h;
    uint8_t *p, *q;
    size_t len, qlen;
    char name[64];
    int i;

    if (dir == NULL)
        return; /* only on demand: KZ_WRITE_CORPUS=tests/fuzz/corpus */
    h = sample_header();
    ASSERT_OK(kz_cs_header_encode(&h, &p, &len));
    seed(dir, "header_sample", p, len);
    kz_free(p);
    h.n_cells = h.n_rows = 0;
    h.hlc_min = h.hlc_max = 0;
    strcpy(h.scope, "network");
    ASSERT_OK(kz_cs_header_encode(&h, &p, &len));
    seed(dir, "header_empty", p, len);
    /* A header with a future format: exercises the -KZ_EVERSION path. */
    q = kz_malloc(len);
    ASSERT(q != NULL);
    memcpy(q, p, len);
    q[1] = 0x02;
    seed(dir, "header_format2", q, len);
    kz_free(q);
    kz_free(p);
    memset(h.scope, 'p', KZ_LIM_NAME_MAX);
    h.scope[KZ_LIM_NAME_MAX] = '\0';
    h.author_seq = h.hlc_max = UINT64_MAX;
    ASSERT_OK(kz_cs_header_encode(&h, &p, &len));
    seed(dir, "header_longest", p, len);
    kz_free(p);

    ASSERT_OK(sample_body(&p, &len));
    p[1] = 0x01; /* no row carries a version: a format 1 body too */
    seed(dir, "body_sample", p, len);
    /* Truncations and a trailing byte of the sample body. */
    for (i = 1; i < 8; i++) {
        snprintf(name, sizeof(name), "body_sample_cut%d", i);
        seed(dir, name, p, len * (size_t)i / 8);
    }
    kz_free(p);
    {
        static const uint8_t empty[] = {0x94, 0x01, 0x90, 0x90, 0x90};
        static const uint8_t issue1013[] = {0xdd, 0xff, 0x00, 0x00, 0x00};
        seed(dir, "body_empty", empty, sizeof(empty));
        seed(dir, "body_issue1013", issue1013, sizeof(issue1013));
    }
    /* Bodies of growing size: many rows, composite keys, every type. */
    for (i = 0; i < 12; i++) {
        struct kz_cs_wr *w;
        struct kz_value pk[3];
        struct kz_cs_cell c;
        uint8_t key[KZ_KEY_LEN];
        int r, k, t, a;

        ASSERT_OK(kz_cs_wr_new(&w, 1 << 16));
        t = kz_cs_wr_table(w, "person", cols, (uint32_t)(1 + i % 4));
        ASSERT_GE(t, 0);
        for (k = 0; k <= i % 3; k++) {
            memset(key, 0x11 * (k + 1), sizeof(key));
            a = kz_cs_wr_author(w, key);
            ASSERT_GE(a, 0);
        }
        for (r = 0; r < i * 3 + 1; r++) {
            pk[0] = v_int(r * 1000 - 5000);
            pk[1] = v_text("HAN");
            pk[2] = (struct kz_value){KZ_V_REAL, 0, r / 3.0, NULL, 0};
            kz_cs_wr_row(w, (uint32_t)t, pk, (uint32_t)(1 + r % 3), 2, NULL);
            c = cell(0, v_int(r & 1), (uint64_t)(r + 1) << 16, 0);
            c.flags = (uint32_t)(r % 5 == 0);
            kz_cs_wr_cell(w, &c);
            c = cell((uint32_t)(1 + r % (1 + i % 4)), v_text("Müller"),
                     (uint64_t)(r + 2) << 16, (uint32_t)(r % (1 + i % 3)));
            c.base_hlc = (uint64_t)r << 16;
            if (r % 4 == 0)
                c.value = (struct kz_value){KZ_V_BLOB, 0, 0, key, 7};
            kz_cs_wr_cell(w, &c);
        }
        ASSERT_OK(kz_cs_wr_finish(w, &p, &len));
        /* No row carries a version: the same bytes are a format 1 body. */
        p[1] = 0x01;
        snprintf(name, sizeof(name), "body_rows%02d", i);
        seed(dir, name, p, len);
        kz_free(p);
        kz_cs_wr_free(w);
    }
    /* Format 2 bodies: every other row carries its first cell's version,
     * so short and whole cells mix. */
    for (i = 0; i < 6; i++) {
        struct kz_cs_wr *w;
        struct kz_value pk[2];
        struct kz_cs_cell c;
        int r, t;

        ASSERT_OK(kz_cs_wr_new(&w, 1 << 16));
        t = kz_cs_wr_table(w, "person", cols, 4);
        ASSERT_GE(t, 0);
        ASSERT_EQ(kz_cs_wr_author(w, key_a), 0);
        ASSERT_EQ(kz_cs_wr_author(w, key_b), 1);
        for (r = 0; r < i * 5 + 1; r++) {
            struct kz_cs_ver v = {(uint64_t)(r + 1) << 16, (uint32_t)(r & 1),
                                  (uint64_t)r, 0};
            pk[0] = v_text("HAN");
            pk[1] = v_int(r);
            kz_cs_wr_row(w, (uint32_t)t, pk, 2, 3, r % 2 ? NULL : &v);
            c = cell(0, v_int(1), v.hlc, v.author);
            c.base_hlc = v.base_hlc;
            kz_cs_wr_cell(w, &c);
            c = cell((uint32_t)(1 + r % 4), v_text("Müller"), v.hlc, v.author);
            c.base_hlc = v.base_hlc;
            kz_cs_wr_cell(w, &c);
            c = cell(4, v_int(r * 1000), v.hlc + 1, 1);
            c.flags = (uint32_t)(r % 3 == 0);
            kz_cs_wr_cell(w, &c);
        }
        ASSERT_OK(kz_cs_wr_finish(w, &p, &len));
        snprintf(name, sizeof(name), "body_v2_rows%02d", i);
        seed(dir, name, p, len);
        kz_free(p);
        kz_cs_wr_free(w);
    }
    (void)qlen;
}

T_MAIN(T(header_round_trip), T(header_longest_fits_the_limit),
       T(header_exact_bytes),
       T(header_truncated_at_every_offset_and_trailing_byte),
       T(header_rejects_bad_fields), T(header_oversized_and_absurd_inputs),
       T(header_encode_rejects_what_decode_would), T(body_round_trip),
       T(body_truncated_at_every_offset), T(body_trailing_byte),
       T(body_every_byte_flipped_never_crashes), T(cell_checks),
       T(existence_cell_must_be_an_integer), T(row_checks),
       T(too_many_cells_in_all_rows), T(list_checks), T(body_format_and_shape),
       T(absurd_counts_fail_fast_without_allocating), T(protocol_md_example),
       T(versioned_rows_and_short_cells), T(versioned_row_checks),
       T(body_over_limit), T(writer_rejects_bad_rows_and_cells),
       T(writer_table_and_author_errors_are_not_sticky),
       T(writer_cap_and_limits), T(writer_and_reader_alloc_failure_loop),
       T(write_corpus))
