/*
 * fuzz_envelope.c: the key envelope decoder (proto/seal.h) on any bytes.
 * Seeds in corpus/envelope/ are envelopes made by kz_env_make.
 */
#include <stddef.h>
#include <stdint.h>

#include "seal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kz_env_info info;
    const char *why = NULL;

    /* A decoded envelope is whole: a scope and an epoch ≥ 1. */
    if (kz_env_decode(&info, data, size, &why) == 0 &&
        (info.epoch == 0 || info.scope[0] == '\0'))
        __builtin_trap();
    return 0;
}
