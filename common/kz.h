/*
 * kz.h: small macros shared by every layer.
 */
#ifndef KZ_H
#define KZ_H

#include <stddef.h>
#include <stdint.h>

/* Fallible functions return 0 or -KZ_E...; callers must look. */
#define KZ_MUST_CHECK __attribute__((warn_unused_result))

#define KZ_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define KZ_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)

#define KZ_MIN(a, b) ((a) < (b) ? (a) : (b))
#define KZ_MAX(a, b) ((a) > (b) ? (a) : (b))

#define kz_container_of(ptr, type, member)                                     \
    ((type *)((char *)(ptr)-offsetof(type, member)))

/*
 * KZ_ALWAYS(x) / KZ_NEVER(x) mark defensive branches that our own code
 * should make impossible (SQLite's ALWAYS/NEVER).  Debug builds trap; release
 * builds take the defensive branch.  Never use them on peer data.
 */
#ifdef NDEBUG
#define KZ_ALWAYS(x) (x)
#define KZ_NEVER(x) (x)
#else
#define KZ_ALWAYS(x) ((x) ? 1 : (__builtin_trap(), 0))
#define KZ_NEVER(x) ((x) ? (__builtin_trap(), 1) : 0)
#endif

#endif /* KZ_H */
