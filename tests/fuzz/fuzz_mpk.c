/*
 * fuzz_mpk.c: the typed msgpack reader on arbitrary bytes.
 *
 * The input is walked value by value, guided by kz_mpk_peek, with the typed
 * readers (arrays and maps recursively, at most KZ_LIM_DEPTH_MAX deep), and
 * separately with kz_mpk_skip and kz_mpk_value.  Every value the walk reads
 * is written again with our writer; properties: the walk and the skip agree
 * on success and on the bytes consumed, and when the walk succeeds, the
 * re-encoded bytes walk again to the same re-encoding (a fixed point).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "changeset.h"
#include "err.h"
#include "limits.h"
#include "mpk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
    if (!cond)
        abort();
}

/*
 * Reads one value from ${r} and writes it to ${w}; 0 or an error.  float32
 * and ext values are skipped, not written, and set *${lossy}.
 */
static int
walk(struct kz_rd *r, struct kz_mpk_wr *w, uint32_t depth, bool *lossy)
{
    struct kz_str s;
    const uint8_t *p;
    size_t len;
    uint32_t n, i;
    uint64_t u;
    int64_t v;
    double d;
    bool b;

    switch (kz_mpk_peek(r)) {
    case KZ_MPK_NIL:
        if (kz_mpk_nil(r) == 0)
            kz_mpk_wr_nil(w);
        break;
    case KZ_MPK_BOOL:
        if (kz_mpk_bool(r, &b) == 0)
            kz_mpk_wr_bool(w, b);
        break;
    case KZ_MPK_INT:
        /* Negative values go through int, the rest through uint. */
        if (r->p[0] >= 0xe0 || (r->p[0] >= 0xd0 && r->p[0] <= 0xd3)) {
            if (kz_mpk_int(r, &v) == 0)
                kz_mpk_wr_int(w, v);
        } else if (kz_mpk_uint(r, UINT64_MAX, &u) == 0) {
            kz_mpk_wr_uint(w, u);
        }
        break;
    case KZ_MPK_FLOAT:
        if (r->p[0] == 0xca) {
            *lossy = true;
            return kz_mpk_skip(r, 0);
        }
        if (kz_mpk_f64(r, &d) == 0)
            kz_mpk_wr_f64(w, d);
        break;
    case KZ_MPK_STR:
        if (kz_mpk_str(r, KZ_LIM_STR_MAX, &s) == 0)
            kz_mpk_wr_str(w, s.p, s.len);
        break;
    case KZ_MPK_BIN:
        if (kz_mpk_bin(r, KZ_LIM_BIN_MAX, &p, &len) == 0)
            kz_mpk_wr_bin(w, p, len);
        break;
    case KZ_MPK_ARRAY:
    case KZ_MPK_MAP: {
        bool map = r->p[0] == 0xde || r->p[0] == 0xdf ||
                   (r->p[0] >= 0x80 && r->p[0] <= 0x8f);
        if (depth == 0) {
            kz_rd_fail(r, -KZ_ELIMIT, "nested too deeply");
            return r->err;
        }
        if (map ? kz_mpk_map(r, KZ_LIM_COUNT_MAX, &n)
                : kz_mpk_array(r, KZ_LIM_COUNT_MAX, &n))
            return r->err;
        if (map)
            kz_mpk_wr_map(w, n);
        else
            kz_mpk_wr_array(w, n);
        for (i = 0; i < (map ? 2 * n : n) && r->err == 0; i++)
            (void)walk(r, w, depth - 1, lossy);
        break;
    }
    case KZ_MPK_EXT: *lossy = true; return kz_mpk_skip(r, 0);
    default:
        /* c1 or end of input: let skip record the error. */
        return kz_mpk_skip(r, 0);
    }
    return r->err;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kz_rd r1, r2, r3;
    struct kz_mpk_wr w, w2;
    struct kz_value v;
    uint8_t *p = NULL, *q = NULL;
    size_t len, qlen;
    bool lossy = false, lossy2 = false;
    int rc1, rc2;

    /* Walk and skip: same verdict, same bytes consumed. */
    kz_rd_init(&r1, data, size);
    kz_rd_init(&r2, data, size);
    kz_mpk_wr_init(&w, 2 * size + 64);
    rc1 = walk(&r1, &w, KZ_LIM_DEPTH_MAX, &lossy);
    rc2 = kz_mpk_skip(&r2, KZ_LIM_DEPTH_MAX);
    check((rc1 == 0) == (rc2 == 0));
    check(rc1 == 0 || r1.why != NULL);
    check(rc2 == 0 || r2.why != NULL);
    if (rc1 == 0) {
        check(r1.left == r2.left);
        check(kz_mpk_wr_finish(&w, &p, &len) == 0);
        if (!lossy) {
            /* Our re-encoding is canonical: walking it again is a fixed
             * point. */
            kz_rd_init(&r3, p, len);
            kz_mpk_wr_init(&w2, 2 * len + 64);
            check(walk(&r3, &w2, KZ_LIM_DEPTH_MAX, &lossy2) == 0);
            check(r3.left == 0);
            check(kz_mpk_wr_finish(&w2, &q, &qlen) == 0);
            check(qlen == len && (len == 0 || memcmp(p, q, len) == 0));
            check(len <= size - r1.left);
            kz_free(q);
        }
        kz_free(p);
    } else {
        kz_mpk_wr_free(&w);
    }

    /* The input as a sequence of SQLite values. */
    kz_rd_init(&r1, data, size);
    while (r1.left > 0 && kz_mpk_value(&r1, &v) == 0)
        check(v.type <= KZ_V_BLOB);
    return 0;
}
