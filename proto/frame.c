/*
 * frame.c: the length-prefix splitter (see frame.h for the state machine).
 *
 * Format (PROTOCOL.md §Framing):
 *
 *     hdr_len 2:  u16 BE L ‖ L bytes      (Noise records, min 16 / 32 …)
 *     hdr_len 4:  u32 BE N ‖ N bytes      (application frames, 1 ≤ N ≤ 16 MiB)
 *
 * Layout of the buffer:
 *
 *     p[0 .. off)         frames already returned (dropped at the next feed)
 *     p[off .. off+taken) the frame last returned by next (still on loan)
 *     p[off+taken .. len) bytes not yet returned
 *
 * The header is read through struct kz_rd, never by pointer arithmetic on
 * the peer's length.
 */
#include <string.h>

#include "alloc.h"
#include "err.h"
#include "rd.h"

#include "frame.h"

/* The framer's first allocation; it doubles from there. */
#define FRAMER_MIN_CAP 256u

static int
valid_cfg(unsigned hdr_len, uint32_t min_len, uint32_t max_len)
{
    if (hdr_len != 2 && hdr_len != 4)
        return 0;
    if (min_len > max_len)
        return 0;
    if (hdr_len == 2 && max_len > UINT16_MAX)
        return 0;
    return 1;
}

static int
poison(struct kz_framer *f, int err, const char *why)
{
    if (f->err == 0) {
        f->err = err;
        f->why = why;
    }
    return f->err;
}

/* Ends the loan of the last frame; empties (and maybe frees) the buffer. */
static void
drop_taken(struct kz_framer *f)
{
    f->off += f->taken;
    f->taken = 0;
    if (f->off < f->len)
        return;
    f->off = f->len = 0;
    if (f->cap > KZ_FRAMER_KEEP) {
        kz_free(f->p);
        f->p = NULL;
        f->cap = 0;
    }
}

/*
 * kz_framer_init(f, hdr_len, min_len, max_len): an empty framer for frames
 * with a ${hdr_len}-byte (2 or 4) big-endian length prefix and payloads of
 * ${min_len}..${max_len} bytes.  Allocates nothing.  Returns 0, or
 * -KZ_EINVAL for another ${hdr_len}, ${min_len} > ${max_len}, or a
 * ${max_len} the prefix cannot express (> 65535 for 2 bytes).
 */
int
kz_framer_init(struct kz_framer *f, unsigned hdr_len, uint32_t min_len,
               uint32_t max_len)
{
    memset(f, 0, sizeof(*f));
    if (!valid_cfg(hdr_len, min_len, max_len))
        return -KZ_EINVAL;
    f->hdr_len = hdr_len;
    f->min_len = min_len;
    f->max_len = max_len;
    return 0;
}

/* kz_framer_free(f): releases the buffer; ${f} may be re-initialised. */
void
kz_framer_free(struct kz_framer *f)
{
    kz_free(f->p);
    f->p = NULL;
    f->cap = f->len = f->off = f->taken = 0;
}

/*
 * kz_framer_set_max(f, max_len): changes the largest payload accepted from
 * now on; frames already buffered are judged by the new limit when
 * kz_framer_next reaches them.  Returns 0, or -KZ_EINVAL as kz_framer_init.
 */
int
kz_framer_set_max(struct kz_framer *f, uint32_t max_len)
{
    if (!valid_cfg(f->hdr_len, f->min_len, max_len))
        return -KZ_EINVAL;
    f->max_len = max_len;
    return 0;
}

/*
 * kz_framer_feed(f, p, n, used): copies up to ${n} bytes into the buffer,
 * never beyond hdr_len + max_len bytes buffered; *${used} = bytes taken.
 * Returns 0, the sticky error, or -KZ_ENOMEM (not sticky).
 */
int
kz_framer_feed(struct kz_framer *f, const void *p, size_t n, size_t *used)
{
    size_t limit, take, need, ncap;
    uint8_t *np;

    *used = 0;
    if (f->err)
        return f->err;
    drop_taken(f);
    if (f->off > 0) {
        /* Move the partial frame to the front, so that a whole frame of
         * max_len always fits within the cap below. */
        memmove(f->p, f->p + f->off, f->len - f->off);
        f->len -= f->off;
        f->off = 0;
    }
    limit = (size_t)f->hdr_len + f->max_len;
    take = f->len < limit ? KZ_MIN(n, limit - f->len) : 0;
    if (take == 0)
        return 0;
    need = f->len + take;
    if (need > f->cap) {
        ncap = f->cap ? f->cap : FRAMER_MIN_CAP;
        while (ncap < need)
            ncap *= 2;
        ncap = KZ_MIN(ncap, limit);
        np = kz_realloc(f->p, ncap);
        if (np == NULL)
            return -KZ_ENOMEM;
        f->p = np;
        f->cap = ncap;
    }
    memcpy(f->p + f->len, p, take);
    f->len += take;
    *used = take;
    return 0;
}

/*
 * kz_framer_next(f, payload, len): returns 1 with the next whole frame's
 * payload (borrowed until the next call on ${f}), 0 for need-more, or a
 * sticky -KZ_EMALFORMED (length < min_len) / -KZ_ELIMIT (> max_len).
 */
int
kz_framer_next(struct kz_framer *f, const uint8_t **payload, size_t *len)
{
    struct kz_rd rd;
    size_t avail;
    uint32_t flen;

    *payload = NULL;
    *len = 0;
    if (f->err)
        return f->err;
    drop_taken(f);
    avail = f->len - f->off;
    if (avail < f->hdr_len)
        return 0; /* never consume a partial header */
    kz_rd_init(&rd, f->p + f->off, avail);
    flen = f->hdr_len == 2 ? kz_rd_be16(&rd) : kz_rd_be32(&rd);
    if (flen < f->min_len)
        return poison(f, -KZ_EMALFORMED, "frame shorter than the minimum");
    if (flen > f->max_len)
        return poison(f, -KZ_ELIMIT, "frame over the limit");
    if (flen > rd.left)
        return 0;
    *payload = kz_rd_bytes(&rd, flen);
    *len = flen;
    f->taken = f->hdr_len + (size_t)flen;
    return 1;
}

/* kz_framer_buffered(f): bytes buffered and not yet returned as frames. */
size_t
kz_framer_buffered(const struct kz_framer *f)
{
    return f->len - f->off - f->taken;
}

/* kz_framer_why(f): static text of the sticky error, or NULL. */
const char *
kz_framer_why(const struct kz_framer *f)
{
    return f->why;
}

/*
 * kz_frame_put_header(hdr, hdr_len, len): writes ${len} as a ${hdr_len}-byte
 * big-endian prefix.  Returns 0, -KZ_EINVAL or -KZ_ELIMIT.
 */
int
kz_frame_put_header(uint8_t *hdr, unsigned hdr_len, size_t len)
{
    if (hdr_len != 2 && hdr_len != 4)
        return -KZ_EINVAL;
    if (len > (hdr_len == 2 ? (size_t)UINT16_MAX : (size_t)UINT32_MAX))
        return -KZ_ELIMIT;
    if (hdr_len == 4) {
        *hdr++ = (uint8_t)(len >> 24);
        *hdr++ = (uint8_t)(len >> 16);
    }
    *hdr++ = (uint8_t)(len >> 8);
    *hdr = (uint8_t)len;
    return 0;
}
