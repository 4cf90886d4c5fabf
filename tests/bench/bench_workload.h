/*
 * bench_workload.h: the engine benchmarks' workload, shared by
 * bench_engine.c and bench_sync.c so both measure the same rows: a TEXT
 * primary key (a random UUID), 4 short TEXT (10-20 bytes), 2 INTEGER, 1 REAL
 * and 1 TEXT of 190-210 bytes, from a fixed seed; and the SQLite helpers
 * both use (they die through bench_net.h's bn_die).
 */
#ifndef KZ_BENCH_WORKLOAD_H
#define KZ_BENCH_WORKLOAD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "bench_net.h"

/* The workload's table, and the INSERT that insert_rows() binds row by row. */
#define BW_CREATE_SQL                                                          \
    "CREATE TABLE item(id TEXT PRIMARY KEY, name TEXT, city TEXT, tag TEXT,"   \
    " code TEXT, qty INTEGER, ver INTEGER, score REAL, note TEXT)"
#define BW_INSERT_SQL "INSERT INTO item VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"

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

/* exec_ok(db, sql): runs ${sql}, or dies. */
static inline void
exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        bn_die("%s: %s", sql, msg ? msg : "?");
}

/* prep(db, sql): the prepared ${sql}, or dies. */
static inline sqlite3_stmt *
prep(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        bn_die("prepare %s: %s", sql, sqlite3_errmsg(db));
    return st;
}

/* sql_int(db, sql): the first column of ${sql}'s first row (0 if none). */
static inline int64_t
sql_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = prep(db, sql);
    int64_t v = 0;

    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/*
 * insert_rows(db, d, n): inserts the ${n} rows into `item` in one
 * transaction, the statements prepared before the clock starts; returns the
 * seconds it took, or dies.
 */
static inline double
insert_rows(sqlite3 *db, const struct rowdata *d, int n)
{
    sqlite3_stmt *ins = prep(db, BW_INSERT_SQL);
    sqlite3_stmt *b = prep(db, "BEGIN IMMEDIATE"), *c = prep(db, "COMMIT");
    double t0, t1;
    int i, j;

    t0 = bn_now();
    if (sqlite3_step(b) != SQLITE_DONE)
        bn_die("BEGIN: %s", sqlite3_errmsg(db));
    for (i = 0; i < n; i++) {
        sqlite3_bind_text(ins, 1, d[i].id, 36, SQLITE_STATIC);
        for (j = 0; j < 4; j++)
            sqlite3_bind_text(ins, 2 + j, d[i].s[j], d[i].s_len[j],
                              SQLITE_STATIC);
        sqlite3_bind_int64(ins, 6, d[i].i1);
        sqlite3_bind_int64(ins, 7, d[i].i2);
        sqlite3_bind_double(ins, 8, d[i].r1);
        sqlite3_bind_text(ins, 9, d[i].note, d[i].note_len, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            bn_die("insert: %s", sqlite3_errmsg(db));
        sqlite3_reset(ins);
    }
    if (sqlite3_step(c) != SQLITE_DONE)
        bn_die("COMMIT: %s", sqlite3_errmsg(db));
    t1 = bn_now();
    sqlite3_finalize(ins);
    sqlite3_finalize(b);
    sqlite3_finalize(c);
    return t1 - t0;
}

#endif /* KZ_BENCH_WORKLOAD_H */
