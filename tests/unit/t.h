/*
 * t.h: a tiny test runner (STYLE.md 18).
 *
 * A test file defines tests with TEST(name) { … } and ends with
 *
 *     T_MAIN(T(name1), T(name2), …)
 *
 * The executable runs every test, or only the one named on the command
 * line; --list prints the names.  CMake registers each TEST(name) as its own
 * ctest entry (tests/unit/CMakeLists.txt reads the names from the source).
 * A failed assertion prints both sides and exits 1.
 */
#ifndef KZ_T_H
#define KZ_T_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct t_case {
    const char *name; /* test name */
    void (*fn)(void); /* test body */
};

#define TEST(name) static void t_##name(void)
#define T(name)                                                                \
    {                                                                          \
#name, t_##name                                                        \
    }

#define T_FAIL_(...)                                                           \
    do {                                                                       \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                        \
        fprintf(stderr, __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                   \
        exit(1);                                                               \
    } while (0)

#define ASSERT(cond)                                                           \
    do {                                                                       \
        if (!(cond))                                                           \
            T_FAIL_("assertion failed: %s", #cond);                            \
    } while (0)

#define ASSERT_INT_(a, op, b)                                                  \
    do {                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                    \
        if (!(a_ op b_))                                                       \
            T_FAIL_("%s %s %s: %lld vs %lld", #a, #op, #b, a_, b_);            \
    } while (0)

#define ASSERT_EQ(a, b) ASSERT_INT_(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_INT_(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_INT_(a, <, b)
#define ASSERT_LE(a, b) ASSERT_INT_(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_INT_(a, >, b)
#define ASSERT_GE(a, b) ASSERT_INT_(a, >=, b)

#define ASSERT_U64_EQ(a, b)                                                    \
    do {                                                                       \
        uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                       \
        if (a_ != b_)                                                          \
            T_FAIL_("%s == %s: %" PRIu64 " vs %" PRIu64, #a, #b, a_, b_);      \
    } while (0)

/* ASSERT_OK(expr): expr returned 0; prints the error name otherwise. */
#define ASSERT_OK(expr)                                                        \
    do {                                                                       \
        int r_ = (expr);                                                       \
        if (r_ != 0)                                                           \
            T_FAIL_("%s: returned %d (%s)", #expr, r_, kz_err_name(r_));       \
    } while (0)

/* ASSERT_ERR(expr, code): expr returned exactly code (negative). */
#define ASSERT_ERR(expr, code)                                                 \
    do {                                                                       \
        int r_ = (expr), c_ = (code);                                          \
        if (r_ != c_)                                                          \
            T_FAIL_("%s: returned %d (%s), expected %d (%s)", #expr, r_,       \
                    kz_err_name(r_), c_, kz_err_name(c_));                     \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                    \
    do {                                                                       \
        const char *a_ = (a), *b_ = (b);                                       \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                   \
            T_FAIL_("%s == %s: \"%s\" vs \"%s\"", #a, #b, a_ ? a_ : "(null)",  \
                    b_ ? b_ : "(null)");                                       \
    } while (0)

#define ASSERT_MEM_EQ(a, b, n)                                                 \
    do {                                                                       \
        if (memcmp((a), (b), (n)) != 0)                                        \
            T_FAIL_("%s == %s: %zu bytes differ", #a, #b, (size_t)(n));        \
    } while (0)

/*
 * t_slurp(path, len): the whole file ${path}, NUL-terminated (the caller
 * frees it); its size in *${len} if not NULL.  Fails the test if the file
 * cannot be read.
 */
static inline char *
t_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p;
    long n;

    if (f == NULL)
        T_FAIL_("cannot open %s", path);
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0)
        T_FAIL_("cannot size %s", path);
    p = malloc((size_t)n + 1);
    ASSERT(p != NULL);
    if (fread(p, 1, (size_t)n, f) != (size_t)n)
        T_FAIL_("short read on %s", path);
    p[n] = '\0';
    fclose(f);
    if (len != NULL)
        *len = (size_t)n;
    return p;
}

static inline int
t_main_(const struct t_case *cases, size_t n, int argc, char **argv)
{
    size_t i;
    int ran = 0;

    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (i = 0; i < n; i++)
            printf("%s\n", cases[i].name);
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)
            continue;
        fprintf(stderr, "-- %s\n", cases[i].name);
        cases[i].fn();
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "");
        return 2;
    }
    return 0;
}

#define T_MAIN(...)                                                            \
    int main(int argc, char **argv)                                            \
    {                                                                          \
        static const struct t_case cases_[] = {__VA_ARGS__};                   \
        return t_main_(cases_, sizeof(cases_) / sizeof(cases_[0]), argc,       \
                       argv);                                                  \
    }

#endif /* KZ_T_H */
