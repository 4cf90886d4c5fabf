/*
 * mpk.h: a typed msgpack pull reader and a capped msgpack writer
 * (PROTOCOL.md §Values and encoding).
 *
 * Why a pull reader (STYLE.md option (b)) and not msgpack-c's unpacker
 * behind a validating pre-walk (option (a)):
 *
 *  - msgpack-c's unpacker sizes its zone from *declared* counts
 *    (msgpack/msgpack-c#1013: `dd ff 00 00 00` asks for ~96 GB) and has no
 *    limits of its own.  A pre-walk can bound that, but then every frame is
 *    walked twice and the safety of the second walk rests on the first one
 *    agreeing with msgpack-c about every corner of the format.  With a pull
 *    reader there is one walk, and it is ours.
 *  - Our messages have fixed shapes.  The decoder says what it expects next
 *    ("an array of at most 8", "a str of at most 128 bytes") and the limit
 *    sits right at the call, next to the field it protects, instead of in a
 *    generic tree that is checked afterwards.
 *  - Nothing is allocated while reading: strings and blobs are borrowed
 *    from the input, counts are returned to the caller, which preallocates
 *    min(n, 64) and grows.  An msgpack_object tree would cost a zone per
 *    frame and a copy of every decoded value.
 *  - neovim's RPC ended up here for the same reasons.
 *
 * So msgpack-c never sees peer bytes: it only encodes (the writer below
 * drives msgpack_packer) and serves as the round-trip oracle in tests.
 *
 * Reader.  Every function reads one value from a struct kz_rd (common/rd.h)
 * and returns 0 or a negative code.  The error is sticky in the kz_rd (with a
 * static `why` and the line), so a decoder may make a series of calls and
 * check once; after an error every call returns the same code and sets its
 * outputs to zero/empty.  Errors:
 *   -KZ_EMALFORMED  truncated input, wrong type, a declared length or count
 *                   larger than the bytes left, an integer out of range;
 *   -KZ_ELIMIT      a declared length or count over the caller's maximum,
 *                   or nesting deeper than allowed (kz_mpk_skip).
 * A declared count n is checked against the maximum and against the bytes
 * left (n ≤ left for arrays, 2n ≤ left for maps, since every element takes
 * at least one byte) before it is returned, so callers may allocate from it.
 *
 * Writer.  struct kz_mpk_wr wraps a capped struct kz_buf; every append is a
 * no-op once its sticky error is set (STYLE.md 5).  It refuses to produce
 * what the reader would refuse (str over KZ_LIM_STR_MAX, bin over
 * KZ_LIM_BIN_MAX, counts over KZ_LIM_COUNT_MAX → -KZ_ELIMIT).
 */
#ifndef KZ_PROTO_MPK_H
#define KZ_PROTO_MPK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "kz.h"
#include "rd.h"

/* Defined in changeset.h, which every user of kz_mpk_value includes. */
struct kz_str;
struct kz_value;

/* The family of the next value, as kz_mpk_peek sees it. */
enum kz_mpk_type {
    KZ_MPK_NIL = 0,   /* c0 */
    KZ_MPK_BOOL = 1,  /* c2, c3 */
    KZ_MPK_INT = 2,   /* fixint, uint8..64, int8..64 */
    KZ_MPK_FLOAT = 3, /* float32, float64 */
    KZ_MPK_STR = 4,   /* fixstr, str8..32 */
    KZ_MPK_BIN = 5,   /* bin8..32 */
    KZ_MPK_ARRAY = 6, /* fixarray, array16/32 */
    KZ_MPK_MAP = 7,   /* fixmap, map16/32 */
    KZ_MPK_EXT = 8    /* fixext, ext8..32 */
};

/**
 * kz_mpk_peek(r): the kz_mpk_type of the next value without consuming it, or
 * -KZ_EMALFORMED if no byte is left, the byte is the never-used c1, or ${r}
 * already failed.  Does not set the sticky error.
 */
int kz_mpk_peek(const struct kz_rd *r);

/**
 * kz_mpk_array(r, max, n): an array header; *${n} = element count, which is
 * ≤ ${max} (else -KZ_ELIMIT) and ≤ the bytes left (else -KZ_EMALFORMED).
 */
int kz_mpk_array(struct kz_rd *r, uint32_t max, uint32_t *n);

/** kz_mpk_map(r, max, n): a map header; *${n} = pairs, as kz_mpk_array. */
int kz_mpk_map(struct kz_rd *r, uint32_t max, uint32_t *n);

/**
 * kz_mpk_str(r, max, s): a str of at most ${max} bytes (else -KZ_ELIMIT);
 * ${s} borrows the bytes from the input (not NUL-terminated, not checked
 * for UTF-8).
 */
int kz_mpk_str(struct kz_rd *r, uint32_t max, struct kz_str *s);

/** kz_mpk_bin(r, max, p, len): a bin of at most ${max} bytes; borrowed. */
int kz_mpk_bin(struct kz_rd *r, uint32_t max, const uint8_t **p, size_t *len);

/**
 * kz_mpk_bin_n(r, n, out, why): a bin of exactly ${n} bytes (a key, a
 * hash), copied into ${out}; a longer one is -KZ_ELIMIT, a shorter one
 * -KZ_EMALFORMED with ${why}.  ${out} is untouched on failure.
 */
int kz_mpk_bin_n(struct kz_rd *r, uint32_t n, uint8_t *out, const char *why);

/**
 * kz_mpk_uint(r, max, v): an integer in 0..${max}.  Any integer encoding is
 * accepted (a non-negative int8..64 too); a negative value or one over
 * ${max} is -KZ_EMALFORMED ("integer out of range").
 */
int kz_mpk_uint(struct kz_rd *r, uint64_t max, uint64_t *v);

/** kz_mpk_u32(r, v): kz_mpk_uint with max UINT32_MAX into a uint32_t. */
int kz_mpk_u32(struct kz_rd *r, uint32_t *v);

/**
 * kz_mpk_int(r, v): any integer that fits int64_t (a uint64 over INT64_MAX
 * is -KZ_EMALFORMED).
 */
int kz_mpk_int(struct kz_rd *r, int64_t *v);

/** kz_mpk_f64(r, v): a float64 (cb); float32 is a wrong type. */
int kz_mpk_f64(struct kz_rd *r, double *v);

/** kz_mpk_nil(r): a nil. */
int kz_mpk_nil(struct kz_rd *r);

/** kz_mpk_bool(r, v): true or false. */
int kz_mpk_bool(struct kz_rd *r, bool *v);

/**
 * kz_mpk_value(r, v): one scalar SQLite value: nil → KZ_V_NULL, integer
 * (fits int64_t) → KZ_V_INT, float64 → KZ_V_REAL, str (≤ KZ_LIM_STR_MAX) →
 * KZ_V_TEXT, bin (≤ KZ_LIM_BIN_MAX) → KZ_V_BLOB.  Text and blob bytes are
 * borrowed from the input.  Any other type is -KZ_EMALFORMED.
 */
int kz_mpk_value(struct kz_rd *r, struct kz_value *v);

/**
 * kz_mpk_skip(r, depth): skips one value of any type whose arrays and maps
 * nest at most ${depth} levels (a scalar is depth 0; ${depth} is clamped to
 * KZ_LIM_DEPTH_MAX).  Deeper nesting is -KZ_ELIMIT; strings, blobs and exts
 * are bounded by KZ_LIM_STR_MAX / KZ_LIM_BIN_MAX and counts by
 * KZ_LIM_COUNT_MAX and the bytes left.  It allocates nothing, and its work
 * is linear in the bytes it consumes.
 */
int kz_mpk_skip(struct kz_rd *r, uint32_t depth);

/* The writer.  Public because callers embed it. */
struct kz_mpk_wr {
    struct kz_buf b; /* encoded bytes; b.max is the hard cap, b.err sticky */
};

/** kz_mpk_wr_init(w, max_len): an empty writer capped at ${max_len} bytes. */
void kz_mpk_wr_init(struct kz_mpk_wr *w, size_t max_len);

/** kz_mpk_wr_free(w): releases the bytes; ${w} may be re-initialised. */
void kz_mpk_wr_free(struct kz_mpk_wr *w);

/** kz_mpk_wr_reset(w): drops the bytes and clears the error; keeps memory. */
void kz_mpk_wr_reset(struct kz_mpk_wr *w);

/**
 * kz_mpk_wr_err(w): the sticky error: 0, -KZ_ENOMEM, -KZ_ELIMIT (cap or a
 * limit of proto/limits.h) or -KZ_EINVAL (a bad kz_value type).
 */
int kz_mpk_wr_err(const struct kz_mpk_wr *w);

/** kz_mpk_wr_len(w): bytes written so far. */
size_t kz_mpk_wr_len(const struct kz_mpk_wr *w);

void kz_mpk_wr_array(struct kz_mpk_wr *w, uint32_t n);
void kz_mpk_wr_map(struct kz_mpk_wr *w, uint32_t n);
void kz_mpk_wr_uint(struct kz_mpk_wr *w, uint64_t v);
void kz_mpk_wr_int(struct kz_mpk_wr *w, int64_t v);
void kz_mpk_wr_f64(struct kz_mpk_wr *w, double v);
void kz_mpk_wr_nil(struct kz_mpk_wr *w);
void kz_mpk_wr_bool(struct kz_mpk_wr *w, bool v);
/** kz_mpk_wr_str(w, p, len): a str of ${len} bytes (copied). */
void kz_mpk_wr_str(struct kz_mpk_wr *w, const void *p, size_t len);
/** kz_mpk_wr_bin(w, p, len): a bin of ${len} bytes (copied). */
void kz_mpk_wr_bin(struct kz_mpk_wr *w, const void *p, size_t len);
/** kz_mpk_wr_value(w, v): the encoding kz_mpk_value reads back. */
void kz_mpk_wr_value(struct kz_mpk_wr *w, const struct kz_value *v);
/**
 * kz_mpk_wr_raw(w, p, len): appends ${len} bytes that are already msgpack
 * (e.g. another writer's output); the caller vouches for them.
 */
void kz_mpk_wr_raw(struct kz_mpk_wr *w, const void *p, size_t len);

/**
 * kz_mpk_wr_finish(w, out, out_len): moves the bytes to *${out} (caller
 * frees with kz_free) and leaves ${w} empty and reusable.  Returns 0, or the
 * sticky error (then nothing is returned and the bytes are freed).
 */
KZ_MUST_CHECK int kz_mpk_wr_finish(struct kz_mpk_wr *w, uint8_t **out,
                                   size_t *out_len);

#endif /* KZ_PROTO_MPK_H */
