/*
 * buf.h: a growable byte buffer with a hard cap and a sticky error.
 *
 * Every append is a no-op once ${err} is set, so an encoder makes many calls
 * and checks once (STYLE.md 5).  The struct is public because callers embed
 * it.
 */
#ifndef KZ_BUF_H
#define KZ_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "kz.h"

struct kz_buf {
    uint8_t *p; /* data; owned; NULL until the first append */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
    size_t max; /* hard cap on len; appends beyond it set -KZ_ELIMIT */
    int err;    /* sticky: 0, -KZ_ENOMEM or -KZ_ELIMIT */
};

/** kz_buf_init(b, max): an empty buffer that may grow to ${max} bytes. */
void kz_buf_init(struct kz_buf *b, size_t max);

/** kz_buf_free(b): releases the memory; ${b} may be reused after init. */
void kz_buf_free(struct kz_buf *b);

/**
 * kz_buf_reserve(b, n): makes room for ${n} more bytes.  Returns 0, or sets
 * and returns the sticky error (-KZ_ENOMEM, -KZ_ELIMIT).
 */
int kz_buf_reserve(struct kz_buf *b, size_t n);

/** kz_buf_append(b, p, n): appends ${n} bytes; errors are sticky in b->err. */
void kz_buf_append(struct kz_buf *b, const void *p, size_t n);
void kz_buf_u8(struct kz_buf *b, uint8_t v);
void kz_buf_be16(struct kz_buf *b, uint16_t v);
void kz_buf_be32(struct kz_buf *b, uint32_t v);
void kz_buf_be64(struct kz_buf *b, uint64_t v);

/** kz_buf_consume(b, n): drops the first ${n} (≤ len) bytes. */
void kz_buf_consume(struct kz_buf *b, size_t n);

/** kz_buf_reset(b): len = 0 and clears the error; keeps the memory. */
void kz_buf_reset(struct kz_buf *b);

/**
 * kz_buf_steal(b, out, len): moves the bytes to *${out} (caller frees with
 * kz_free) and leaves ${b} empty.  Returns b->err if set.
 */
KZ_MUST_CHECK int kz_buf_steal(struct kz_buf *b, uint8_t **out, size_t *len);

#endif /* KZ_BUF_H */
