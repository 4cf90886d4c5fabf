/*
 * rd.h: the bounded reader every wire byte goes through (STYLE.md 6).
 *
 * Checks are written `n > r->left`, never `p + n > end`.  The first failure
 * is sticky: it records -KZ_EMALFORMED (or the code given), a static ${why}
 * and the source line, and every later read returns zero bytes.
 */
#ifndef KZ_RD_H
#define KZ_RD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "err.h"

struct kz_rd {
    const uint8_t *p; /* next unread byte; borrowed */
    size_t left;      /* bytes left */
    int err;          /* sticky: 0 or a negative code */
    const char *why;  /* static description of the first failure */
    int line;         /* __LINE__ of the first failure */
};

static inline void
kz_rd_init(struct kz_rd *r, const void *p, size_t len)
{
    r->p = (const uint8_t *)p;
    r->left = len;
    r->err = 0;
    r->why = NULL;
    r->line = 0;
}

#define kz_rd_fail(r, code, reason) kz_rd_fail_((r), (code), (reason), __LINE__)

static inline void
kz_rd_fail_(struct kz_rd *r, int code, const char *why, int line)
{
    if (r->err == 0) {
        r->err = code;
        r->why = why;
        r->line = line;
    }
    r->left = 0;
}

/** kz_rd_bytes(r, n): a pointer to the next ${n} bytes, or NULL. */
#define kz_rd_bytes(r, n) kz_rd_bytes_((r), (n), __LINE__)

static inline const uint8_t *
kz_rd_bytes_(struct kz_rd *r, size_t n, int line)
{
    const uint8_t *p;

    if (r->err)
        return NULL;
    if (n > r->left) {
        kz_rd_fail_(r, -KZ_EMALFORMED, "truncated", line);
        return NULL;
    }
    p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static inline uint8_t
kz_rd_u8(struct kz_rd *r)
{
    const uint8_t *p = kz_rd_bytes(r, 1);
    return p ? p[0] : 0;
}

static inline uint16_t
kz_rd_be16(struct kz_rd *r)
{
    const uint8_t *p = kz_rd_bytes(r, 2);
    return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

static inline uint32_t
kz_rd_be32(struct kz_rd *r)
{
    const uint8_t *p = kz_rd_bytes(r, 4);
    return p ? ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
                   ((uint32_t)p[2] << 8) | (uint32_t)p[3]
             : 0;
}

static inline uint64_t
kz_rd_be64(struct kz_rd *r)
{
    uint64_t hi = kz_rd_be32(r);
    return (hi << 32) | kz_rd_be32(r);
}

static inline void
kz_rd_skip(struct kz_rd *r, size_t n)
{
    (void)kz_rd_bytes(r, n);
}

#endif /* KZ_RD_H */
