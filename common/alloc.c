/*
 * alloc.c: malloc wrappers with an overflow check and a test fault hook.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* -1: never fail.  Otherwise the number of allocations still allowed. */
static _Atomic long fail_after = -1;

static int
should_fail(void)
{
    long n = atomic_load(&fail_after);
    while (n >= 0) {
        if (n == 0)
            return 1;
        if (atomic_compare_exchange_weak(&fail_after, &n, n - 1))
            return 0;
    }
    return 0;
}

void
kz_alloc_fail_after(long n)
{
    atomic_store(&fail_after, n < 0 ? -1 : n);
}

void *
kz_malloc(size_t len)
{
    if (should_fail())
        return NULL;
    return malloc(len ? len : 1);
}

void *
kz_calloc(size_t n, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *
kz_realloc(void *p, size_t len)
{
    if (should_fail())
        return NULL;
    return realloc(p, len ? len : 1);
}

void *
kz_mallocarray(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    return kz_malloc(n * size);
}

void *
kz_reallocarray(void *p, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    return kz_realloc(p, n * size);
}

void
kz_free(void *p)
{
    free(p);
}

char *
kz_strdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *d = kz_malloc(len);
    if (d != NULL)
        memcpy(d, s, len);
    return d;
}
