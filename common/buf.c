/*
 * buf.c: growable byte buffer with a hard cap and a sticky error.
 */
#include <string.h>

#include "alloc.h"
#include "err.h"

#include "buf.h"

void
kz_buf_init(struct kz_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void
kz_buf_free(struct kz_buf *b)
{
    kz_free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int
kz_buf_reserve(struct kz_buf *b, size_t n)
{
    size_t need, cap;
    uint8_t *p;

    if (b->err)
        return b->err;
    if (n > b->max - b->len) {
        b->err = -KZ_ELIMIT;
        return b->err;
    }
    need = b->len + n;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max)
        cap = b->max;
    p = kz_realloc(b->p, cap);
    if (p == NULL) {
        b->err = -KZ_ENOMEM;
        return b->err;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void
kz_buf_append(struct kz_buf *b, const void *p, size_t n)
{
    if (n == 0 || kz_buf_reserve(b, n) != 0)
        return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void
kz_buf_u8(struct kz_buf *b, uint8_t v)
{
    kz_buf_append(b, &v, 1);
}

void
kz_buf_be16(struct kz_buf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    kz_buf_append(b, x, sizeof(x));
}

void
kz_buf_be32(struct kz_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    kz_buf_append(b, x, sizeof(x));
}

void
kz_buf_be64(struct kz_buf *b, uint64_t v)
{
    kz_buf_be32(b, (uint32_t)(v >> 32));
    kz_buf_be32(b, (uint32_t)v);
}

void
kz_buf_consume(struct kz_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

void
kz_buf_reset(struct kz_buf *b)
{
    b->len = 0;
    b->err = 0;
}

int
kz_buf_steal(struct kz_buf *b, uint8_t **out, size_t *len)
{
    int err = b->err;

    if (err) {
        kz_buf_free(b);
        b->err = 0;
        return err;
    }
    *out = b->p;
    *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return 0;
}
