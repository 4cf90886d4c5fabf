/*
 * fuzz_frame.c: the length-prefix splitter on arbitrary streams in
 * arbitrary pieces.
 *
 * Input: 4 bytes of configuration, then the stream.
 *
 *     byte 0  bit 0: 2-byte header, else 4-byte
 *     byte 1  min_len
 *     byte 2  max_len (swapped with min_len if smaller)
 *     byte 3  seed of the piece sizes (1..64 bytes, xorshift)
 *
 * Property, beyond "never crash, hang or leak": the frames the framer
 * returns are exactly those of a one-shot reference walk over the whole
 * stream, in order and byte for byte; the framer then fails with the same
 * code as the reference, or needs more with exactly the unparsed tail
 * buffered; and it never buffers more than header + max_len bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
    if (!cond)
        abort();
}

/* The reference: the next frame at ${p}; same return values as next. */
static int
ref_next(const uint8_t *p, size_t left, unsigned hdr, uint32_t min,
         uint32_t max, size_t *flen)
{
    uint32_t n;

    if (left < hdr)
        return 0;
    n = hdr == 2 ? (uint32_t)(p[0] << 8 | p[1])
                 : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                       (uint32_t)p[2] << 8 | p[3];
    if (n < min)
        return -KZ_EMALFORMED;
    if (n > max)
        return -KZ_ELIMIT;
    if (left - hdr < n)
        return 0;
    *flen = n;
    return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kz_framer f;
    const uint8_t *s, *fp;
    size_t len, off = 0, roff = 0, used, flen, rlen;
    unsigned hdr;
    uint32_t min, max, seed;
    int rc, rref = 0;

    if (size < 4)
        return 0;
    hdr = data[0] & 1 ? 2 : 4;
    min = data[1];
    max = data[2];
    if (max < min) {
        uint32_t t = min;
        min = max;
        max = t;
    }
    seed = data[3] | 0x100u;
    s = data + 4;
    len = size - 4;
    check(kz_framer_init(&f, hdr, min, max) == 0);
    for (;;) {
        size_t piece;

        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        piece = 1 + seed % 64;
        rc = kz_framer_feed(&f, s + off, piece < len - off ? piece : len - off,
                            &used);
        if (rc != 0)
            break;
        off += used;
        check(f.len <= hdr + (size_t)max);
        while ((rc = kz_framer_next(&f, &fp, &flen)) == 1) {
            rref = ref_next(s + roff, len - roff, hdr, min, max, &rlen);
            check(rref == 1);
            check(flen == rlen && flen >= min && flen <= max);
            check(memcmp(fp, s + roff + hdr, flen) == 0);
            roff += hdr + rlen;
        }
        if (rc < 0 || (off == len && used == 0))
            break;
    }
    /* The reference's verdict on what is left. */
    rref = ref_next(s + roff, len - roff, hdr, min, max, &rlen);
    if (rc < 0) {
        check(rc == rref);
        check(kz_framer_why(&f) != NULL);
    } else {
        check(rc == 0 && rref == 0);
        check(off == len);
        check(kz_framer_buffered(&f) == len - roff);
    }
    kz_framer_free(&f);
    return 0;
}
