/*
 * alloc.h: the project's allocator, with a fault hook for tests.
 *
 * Tests set kz_alloc_fail_after(n) so that the (n+1)-th allocation from now
 * fails, and loop n = 0, 1, 2, … accepting only success or -KZ_ENOMEM
 * (STYLE.md 19).  Production code never sets it.
 */
#ifndef KZ_ALLOC_H
#define KZ_ALLOC_H

#include <stddef.h>

void *kz_malloc(size_t len);
void *kz_calloc(size_t n, size_t size);
void *kz_realloc(void *p, size_t len);
/** kz_mallocarray(n, size): NULL on overflow of n * size, as on failure. */
void *kz_mallocarray(size_t n, size_t size);
/** kz_reallocarray(p, n, size): like realloc, NULL on overflow. */
void *kz_reallocarray(void *p, size_t n, size_t size);
void kz_free(void *p);
/** kz_strdup(s): caller frees with kz_free; NULL on failure. */
char *kz_strdup(const char *s);

/** kz_alloc_fail_after(n): fail allocations after ${n} more; -1 disables. */
void kz_alloc_fail_after(long n);

#endif /* KZ_ALLOC_H */
