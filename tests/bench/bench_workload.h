/*
 * bench_workload.h: the engine benchmarks' workload, shared by
 * bench_engine.c and bench_sync.c so both measure the same rows: a TEXT
 * primary key (a random UUID), 4 short TEXT (10-20 bytes), 2 INTEGER, 1 REAL
 * and 1 TEXT of 190-210 bytes, from a fixed seed.
 */
#ifndef KZ_BENCH_WORKLOAD_H
#define KZ_BENCH_WORKLOAD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct rowdata {
    char id[37];
    char s[4][21];
    int s_len[4];
    int64_t i1, i2;
    double r1;
    char note[216];
    int note_len;
};

static inline uint64_t
rnd(uint64_t *s)
{
    /* xorshift64*: deterministic data, the same on both sides. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static inline void
rnd_text(uint64_t *s, char *out, int len)
{
    static const char al[] = "abcdefghijklmnopqrstuvwxyz"
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";
    int i;

    for (i = 0; i < len; i++)
        out[i] = al[rnd(s) % (sizeof(al) - 1)];
    out[len] = '\0';
}

/* gen_rows(n): the workload's ${n} rows (caller frees), or NULL. */
static inline struct rowdata *
gen_rows(int n)
{
    struct rowdata *d = calloc((size_t)n, sizeof(*d));
    uint64_t s = UINT64_C(0x9e3779b97f4a7c15);
    int i, j;

    if (d == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        uint64_t a = rnd(&s), b = rnd(&s);
        snprintf(d[i].id, sizeof(d[i].id), "%08x-%04x-4%03x-%04x-%012llx",
                 (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff,
                 (unsigned)a & 0xfff, 0x8000u | ((unsigned)(b >> 48) & 0x3fff),
                 (unsigned long long)(b & UINT64_C(0xffffffffffff)));
        for (j = 0; j < 4; j++) {
            d[i].s_len[j] = 10 + (int)(rnd(&s) % 11);
            rnd_text(&s, d[i].s[j], d[i].s_len[j]);
        }
        d[i].i1 = (int64_t)(rnd(&s) % 1000);
        d[i].i2 = (int64_t)(rnd(&s) % 1000000000);
        d[i].r1 = (double)(rnd(&s) % 1000000) / 1000.0;
        d[i].note_len = 190 + (int)(rnd(&s) % 21);
        rnd_text(&s, d[i].note, d[i].note_len);
    }
    return d;
}

#endif /* KZ_BENCH_WORKLOAD_H */
