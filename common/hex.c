/*
 * hex.c: strict hex via libsodium's constant-time codecs.
 */
#include <string.h>

#include <sodium.h>

#include "err.h"

#include "hex.h"

int
kz_hex_encode(char *out, size_t out_len, const void *p, size_t n)
{
    if (n > (SIZE_MAX - 1) / 2 || out_len < 2 * n + 1)
        return -KZ_ELIMIT;
    sodium_bin2hex(out, out_len, p, n);
    return 0;
}

int
kz_hex_decode(uint8_t *out, size_t n, const char *hex)
{
    size_t bin_len = 0;
    const char *end = NULL;

    if (strlen(hex) != 2 * n)
        return -KZ_EINVAL;
    if (sodium_hex2bin(out, n, hex, 2 * n, NULL, &bin_len, &end) != 0 ||
        bin_len != n || *end != '\0')
        return -KZ_EINVAL;
    return 0;
}
