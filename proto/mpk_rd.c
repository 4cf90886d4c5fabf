/*
 * mpk_rd.c: the typed msgpack pull reader (see mpk.h for why a pull reader).
 *
 * Format (msgpack spec, PROTOCOL.md §Values and encoding), first byte:
 *
 *     00-7f posfixint   80-8f fixmap     90-9f fixarray   a0-bf fixstr
 *     c0 nil            c1 (never used)  c2/c3 false/true
 *     c4-c6 bin8/16/32  c7-c9 ext8/16/32 ca/cb float32/64
 *     cc-cf uint8..64   d0-d3 int8..64   d4-d8 fixext1..16
 *     d9-db str8/16/32  dc/dd array16/32 de/df map16/32  e0-ff negfixint
 *
 * All multi-byte numbers are big-endian.  Every byte is read through
 * struct kz_rd, so there is no pointer arithmetic on peer data here.
 */
#include <string.h>

#include "err.h"
#include "limits.h"
#include "rd.h"

#include "changeset.h" /* struct kz_value, struct kz_str */
#include "mpk.h"

/* One decoded value head: the type byte and what directly follows it. */
struct head {
    enum kz_mpk_type type; /* family */
    bool neg;              /* KZ_MPK_INT: value is i (< 0), else u */
    uint64_t u;            /* KZ_MPK_INT ≥ 0; KZ_MPK_BOOL */
    int64_t i;             /* KZ_MPK_INT < 0 */
    double d;              /* KZ_MPK_FLOAT */
    bool f32;              /* KZ_MPK_FLOAT was a float32 */
    uint32_t len;          /* STR/BIN/EXT bytes; ARRAY elements; MAP pairs */
};

static int
fail(struct kz_rd *r, int code, const char *why, int line)
{
    kz_rd_fail_(r, code, why, line);
    return r->err;
}

#define FAIL(r, code, why) fail((r), (code), (why), __LINE__)

/* The family of first byte ${b}, or -1 for c1. */
static int
type_of(uint8_t b)
{
    if (b <= 0x7f || b >= 0xe0)
        return KZ_MPK_INT;
    if (b <= 0x8f)
        return KZ_MPK_MAP;
    if (b <= 0x9f)
        return KZ_MPK_ARRAY;
    if (b <= 0xbf)
        return KZ_MPK_STR;
    switch (b) {
    case 0xc0: return KZ_MPK_NIL;
    case 0xc2:
    case 0xc3: return KZ_MPK_BOOL;
    case 0xc4:
    case 0xc5:
    case 0xc6: return KZ_MPK_BIN;
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: return KZ_MPK_EXT;
    case 0xca:
    case 0xcb: return KZ_MPK_FLOAT;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: return KZ_MPK_INT;
    case 0xd9:
    case 0xda:
    case 0xdb: return KZ_MPK_STR;
    case 0xdc:
    case 0xdd: return KZ_MPK_ARRAY;
    case 0xde:
    case 0xdf: return KZ_MPK_MAP;
    default: return -1; /* c1 */
    }
}

/* A big-endian length of 1, 2 or 4 bytes. */
static uint32_t
rd_len(struct kz_rd *r, unsigned nbytes)
{
    switch (nbytes) {
    case 1: return kz_rd_u8(r);
    case 2: return kz_rd_be16(r);
    default: return kz_rd_be32(r);
    }
}

static int64_t
u64_to_i64(uint64_t u)
{
    /* Two's complement reinterpretation without implementation-defined
     * conversion: only called for values that are negative as signed. */
    return -(int64_t)(~u) - 1;
}

/*
 * head(r, h): reads the type byte and everything up to the payload of a
 * str/bin/ext or the elements of an array/map.  Checks nothing about
 * limits; callers do.
 */
static int
head(struct kz_rd *r, struct head *h)
{
    uint8_t b;
    int t;

    memset(h, 0, sizeof(*h));
    if (r->err)
        return r->err;
    b = kz_rd_u8(r);
    if (r->err)
        return r->err;
    t = type_of(b);
    if (t < 0)
        return FAIL(r, -KZ_EMALFORMED, "msgpack byte c1");
    h->type = (enum kz_mpk_type)t;
    if (b <= 0x7f) {
        h->u = b;
    } else if (b >= 0xe0) {
        h->neg = true;
        h->i = (int64_t)b - 256;
    } else if (b <= 0x9f) {
        h->len = b & 0x0fu; /* fixmap, fixarray */
    } else if (b <= 0xbf) {
        h->len = b & 0x1fu;
    } else {
        switch (b) {
        case 0xc2:
        case 0xc3: h->u = b & 1u; break;
        case 0xc4:
        case 0xc5:
        case 0xc6: h->len = rd_len(r, 1u << (b - 0xc4)); break;
        case 0xc7:
        case 0xc8:
        case 0xc9:
            h->len = rd_len(r, 1u << (b - 0xc7));
            kz_rd_skip(r, 1); /* ext type */
            break;
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8:
            h->len = 1u << (b - 0xd4);
            kz_rd_skip(r, 1); /* ext type */
            break;
        case 0xca: {
            uint32_t x = kz_rd_be32(r);
            float f;
            memcpy(&f, &x, sizeof(f));
            h->d = (double)f;
            h->f32 = true;
            break;
        }
        case 0xcb: {
            uint64_t x = kz_rd_be64(r);
            memcpy(&h->d, &x, sizeof(h->d));
            break;
        }
        case 0xcc: h->u = kz_rd_u8(r); break;
        case 0xcd: h->u = kz_rd_be16(r); break;
        case 0xce: h->u = kz_rd_be32(r); break;
        case 0xcf: h->u = kz_rd_be64(r); break;
        case 0xd0: h->i = (int8_t)kz_rd_u8(r); break;
        case 0xd1: h->i = (int16_t)kz_rd_be16(r); break;
        case 0xd2: h->i = (int32_t)kz_rd_be32(r); break;
        case 0xd3: {
            uint64_t x = kz_rd_be64(r);
            h->i = x > INT64_MAX ? u64_to_i64(x) : (int64_t)x;
            break;
        }
        case 0xd9:
        case 0xda:
        case 0xdb: h->len = rd_len(r, 1u << (b - 0xd9)); break;
        case 0xdc:
        case 0xdd: h->len = rd_len(r, b == 0xdc ? 2u : 4u); break;
        case 0xde:
        case 0xdf: h->len = rd_len(r, b == 0xde ? 2u : 4u); break;
        default: break;
        }
        /* int8..64: normalise to the sign-split form. */
        if (b >= 0xd0 && b <= 0xd3) {
            if (h->i < 0) {
                h->neg = true;
            } else {
                h->u = (uint64_t)h->i;
                h->i = 0;
            }
        }
    }
    return r->err;
}

/* expect(r, h, type, why): reads a head of family ${type}. */
static int
expect(struct kz_rd *r, struct head *h, enum kz_mpk_type type, const char *why,
       int line)
{
    if (head(r, h) != 0)
        return r->err;
    if (h->type != type)
        return fail(r, -KZ_EMALFORMED, why, line);
    return 0;
}

/*
 * kz_mpk_peek(r): the kz_mpk_type of the next value without consuming it, or
 * -KZ_EMALFORMED if no byte is left, the byte is the never-used c1, or ${r}
 * already failed.  Does not set the sticky error.
 */
int
kz_mpk_peek(const struct kz_rd *r)
{
    int t;

    if (r->err || r->left == 0)
        return -KZ_EMALFORMED;
    t = type_of(r->p[0]);
    return t < 0 ? -KZ_EMALFORMED : t;
}

/* counted(r, type, max, n, …): array and map headers. */
static int
counted(struct kz_rd *r, enum kz_mpk_type type, uint32_t max, uint32_t *n,
        int line)
{
    struct head h;
    bool map = type == KZ_MPK_MAP;

    *n = 0;
    if (expect(r, &h, type, map ? "expected map" : "expected array", line))
        return r->err;
    if (h.len > max)
        return fail(r, -KZ_ELIMIT,
                    map ? "map count over limit" : "array count over limit",
                    line);
    /* Every element takes at least one byte: a count over the bytes left
     * is a lie, and refusing it here lets callers allocate from it. */
    if (map ? h.len > r->left / 2 : h.len > r->left)
        return fail(r, -KZ_EMALFORMED,
                    map ? "map count over bytes left"
                        : "array count over bytes left",
                    line);
    *n = h.len;
    return 0;
}

/*
 * kz_mpk_array(r, max, n): an array header; *${n} = element count, which is
 * ≤ ${max} (else -KZ_ELIMIT) and ≤ the bytes left (else -KZ_EMALFORMED).
 */
int
kz_mpk_array(struct kz_rd *r, uint32_t max, uint32_t *n)
{
    return counted(r, KZ_MPK_ARRAY, max, n, __LINE__);
}

/* kz_mpk_map(r, max, n): a map header; *${n} = pairs, as kz_mpk_array. */
int
kz_mpk_map(struct kz_rd *r, uint32_t max, uint32_t *n)
{
    return counted(r, KZ_MPK_MAP, max, n, __LINE__);
}

/* raw(r, type, max, p, len): str and bin bodies, borrowed. */
static int
raw(struct kz_rd *r, enum kz_mpk_type type, uint32_t max, const uint8_t **p,
    size_t *len, int line)
{
    struct head h;
    bool str = type == KZ_MPK_STR;

    *p = NULL;
    *len = 0;
    if (expect(r, &h, type, str ? "expected str" : "expected bin", line))
        return r->err;
    if (h.len > max)
        return fail(r, -KZ_ELIMIT, str ? "str over limit" : "bin over limit",
                    line);
    if (h.len > r->left)
        return fail(r, -KZ_EMALFORMED,
                    str ? "str over bytes left" : "bin over bytes left", line);
    *p = kz_rd_bytes(r, h.len);
    *len = h.len;
    return r->err;
}

/*
 * kz_mpk_str(r, max, s): a str of at most ${max} bytes (else -KZ_ELIMIT);
 * ${s} borrows the bytes from the input (not NUL-terminated, not checked
 * for UTF-8).
 */
int
kz_mpk_str(struct kz_rd *r, uint32_t max, struct kz_str *s)
{
    const uint8_t *p;
    int rc;

    rc = raw(r, KZ_MPK_STR, max, &p, &s->len, __LINE__);
    s->p = (const char *)p;
    return rc;
}

/* kz_mpk_bin(r, max, p, len): a bin of at most ${max} bytes; borrowed. */
int
kz_mpk_bin(struct kz_rd *r, uint32_t max, const uint8_t **p, size_t *len)
{
    return raw(r, KZ_MPK_BIN, max, p, len, __LINE__);
}

/* kz_mpk_bin_n(r, n, out, why): a bin of exactly ${n} bytes, copied. */
int
kz_mpk_bin_n(struct kz_rd *r, uint32_t n, uint8_t *out, const char *why)
{
    const uint8_t *p;
    size_t len;

    if (raw(r, KZ_MPK_BIN, n, &p, &len, __LINE__) != 0)
        return r->err;
    if (len != n)
        return FAIL(r, -KZ_EMALFORMED, why);
    memcpy(out, p, n);
    return 0;
}

/*
 * kz_mpk_uint(r, max, v): an integer in 0..${max}.  Any integer encoding is
 * accepted (a non-negative int8..64 too); a negative value or one over
 * ${max} is -KZ_EMALFORMED ("integer out of range").
 */
int
kz_mpk_uint(struct kz_rd *r, uint64_t max, uint64_t *v)
{
    struct head h;

    *v = 0;
    if (expect(r, &h, KZ_MPK_INT, "expected integer", __LINE__))
        return r->err;
    if (h.neg || h.u > max)
        return FAIL(r, -KZ_EMALFORMED, "integer out of range");
    *v = h.u;
    return 0;
}

/* kz_mpk_u32(r, v): kz_mpk_uint with max UINT32_MAX into a uint32_t. */
int
kz_mpk_u32(struct kz_rd *r, uint32_t *v)
{
    uint64_t u;
    int rc;

    rc = kz_mpk_uint(r, UINT32_MAX, &u);
    *v = (uint32_t)u;
    return rc;
}

/* int64 from a head of family KZ_MPK_INT. */
static int
head_i64(struct kz_rd *r, const struct head *h, int64_t *v, int line)
{
    if (h->neg) {
        *v = h->i;
        return 0;
    }
    if (h->u > INT64_MAX)
        return fail(r, -KZ_EMALFORMED, "integer out of range", line);
    *v = (int64_t)h->u;
    return 0;
}

/*
 * kz_mpk_int(r, v): any integer that fits int64_t (a uint64 over INT64_MAX
 * is -KZ_EMALFORMED).
 */
int
kz_mpk_int(struct kz_rd *r, int64_t *v)
{
    struct head h;

    *v = 0;
    if (expect(r, &h, KZ_MPK_INT, "expected integer", __LINE__))
        return r->err;
    return head_i64(r, &h, v, __LINE__);
}

/* kz_mpk_f64(r, v): a float64 (cb); float32 is a wrong type. */
int
kz_mpk_f64(struct kz_rd *r, double *v)
{
    struct head h;

    *v = 0;
    if (expect(r, &h, KZ_MPK_FLOAT, "expected float64", __LINE__))
        return r->err;
    if (h.f32)
        return FAIL(r, -KZ_EMALFORMED, "expected float64, got float32");
    *v = h.d;
    return 0;
}

/* kz_mpk_nil(r): a nil. */
int
kz_mpk_nil(struct kz_rd *r)
{
    struct head h;

    return expect(r, &h, KZ_MPK_NIL, "expected nil", __LINE__);
}

/* kz_mpk_bool(r, v): true or false. */
int
kz_mpk_bool(struct kz_rd *r, bool *v)
{
    struct head h;

    *v = false;
    if (expect(r, &h, KZ_MPK_BOOL, "expected bool", __LINE__))
        return r->err;
    *v = h.u != 0;
    return 0;
}

/*
 * kz_mpk_value(r, v): one scalar SQLite value: nil → KZ_V_NULL, integer
 * (fits int64_t) → KZ_V_INT, float64 → KZ_V_REAL, str (≤ KZ_LIM_STR_MAX) →
 * KZ_V_TEXT, bin (≤ KZ_LIM_BIN_MAX) → KZ_V_BLOB.  Text and blob bytes are
 * borrowed from the input.  Any other type is -KZ_EMALFORMED.
 */
int
kz_mpk_value(struct kz_rd *r, struct kz_value *v)
{
    struct head h;
    uint32_t max;

    memset(v, 0, sizeof(*v));
    v->type = KZ_V_NULL;
    if (head(r, &h) != 0)
        return r->err;
    switch (h.type) {
    case KZ_MPK_NIL: return 0;
    case KZ_MPK_INT:
        v->type = KZ_V_INT;
        return head_i64(r, &h, &v->i, __LINE__);
    case KZ_MPK_FLOAT:
        if (h.f32)
            return FAIL(r, -KZ_EMALFORMED, "value is a float32");
        v->type = KZ_V_REAL;
        v->d = h.d;
        return 0;
    case KZ_MPK_STR:
    case KZ_MPK_BIN:
        max = h.type == KZ_MPK_STR ? KZ_LIM_STR_MAX : KZ_LIM_BIN_MAX;
        if (h.len > max)
            return FAIL(r, -KZ_ELIMIT, "value over limit");
        if (h.len > r->left)
            return FAIL(r, -KZ_EMALFORMED, "value over bytes left");
        v->type = h.type == KZ_MPK_STR ? KZ_V_TEXT : KZ_V_BLOB;
        v->p = kz_rd_bytes(r, h.len);
        v->len = h.len;
        return r->err;
    default: return FAIL(r, -KZ_EMALFORMED, "value of a wrong type");
    }
}

/*
 * kz_mpk_skip(r, depth): skips one value of any type whose arrays and maps
 * nest at most ${depth} levels (a scalar is depth 0; ${depth} is clamped to
 * KZ_LIM_DEPTH_MAX).  Deeper nesting is -KZ_ELIMIT; strings, blobs and exts
 * are bounded by KZ_LIM_STR_MAX / KZ_LIM_BIN_MAX and counts by
 * KZ_LIM_COUNT_MAX and the bytes left.  It allocates nothing, and its work
 * is linear in the bytes it consumes.
 *
 * Iterative: pending[d] is the number of values still to skip at level d.
 */
int
kz_mpk_skip(struct kz_rd *r, uint32_t depth)
{
    uint64_t pending[KZ_LIM_DEPTH_MAX + 2];
    uint32_t d = 0;
    struct head h;

    if (depth > KZ_LIM_DEPTH_MAX)
        depth = KZ_LIM_DEPTH_MAX;
    pending[0] = 1;
    for (;;) {
        while (pending[d] == 0) {
            if (d == 0)
                return 0;
            d--;
        }
        pending[d]--;
        if (head(r, &h) != 0)
            return r->err;
        switch (h.type) {
        case KZ_MPK_STR:
        case KZ_MPK_BIN:
        case KZ_MPK_EXT:
            if (h.len >
                (h.type == KZ_MPK_STR ? KZ_LIM_STR_MAX : KZ_LIM_BIN_MAX))
                return FAIL(r, -KZ_ELIMIT, "skipped value over limit");
            kz_rd_skip(r, h.len);
            if (r->err)
                return r->err;
            break;
        case KZ_MPK_ARRAY:
        case KZ_MPK_MAP:
            if (d >= depth)
                return FAIL(r, -KZ_ELIMIT, "nested too deeply");
            if (h.len > KZ_LIM_COUNT_MAX)
                return FAIL(r, -KZ_ELIMIT, "skipped count over limit");
            if (h.type == KZ_MPK_MAP ? h.len > r->left / 2 : h.len > r->left)
                return FAIL(r, -KZ_EMALFORMED, "count over bytes left");
            d++;
            pending[d] = h.type == KZ_MPK_MAP ? 2 * (uint64_t)h.len : h.len;
            break;
        default: break;
        }
    }
}
