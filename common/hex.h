/*
 * hex.h: strict hex encoding of keys and digests.
 */
#ifndef KZ_HEX_H
#define KZ_HEX_H

#include <stddef.h>
#include <stdint.h>

#include "kz.h"

/** kz_hex_encode(out, out_len, p, n): writes 2n+1 chars; -KZ_ELIMIT if short.
 */
KZ_MUST_CHECK int kz_hex_encode(char *out, size_t out_len, const void *p,
                                size_t n);

/**
 * kz_hex_decode(out, n, hex): decodes exactly ${n} bytes from ${hex}, which
 * must be exactly 2n hex digits.  Returns 0 or -KZ_EINVAL.
 */
KZ_MUST_CHECK int kz_hex_decode(uint8_t *out, size_t n, const char *hex);

#endif /* KZ_HEX_H */
