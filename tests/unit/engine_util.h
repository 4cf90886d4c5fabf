/*
 * engine_util.h: helpers shared by the engine's tests: temporary replica
 * directories, a controllable clock, running SQL, moving changesets.
 */
#ifndef KZ_ENGINE_UTIL_H
#define KZ_ENGINE_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "err.h"
#include "replica.h"

#include "t.h"

/* A test clock: wall time moves only when the test says so. */
struct tclock {
    uint64_t ms;       /* current wall clock */
    struct kz_env env; /* points at this */
};

static uint64_t
tclock_wall(void *data)
{
    return ((struct tclock *)data)->ms;
}

static void
tclock_random(void *data, void *p, size_t len)
{
    (void)data;
    randombytes_buf(p, len);
}

static inline void
tclock_init(struct tclock *c, uint64_t ms)
{
    c->ms = ms;
    c->env.wall_ms = tclock_wall;
    c->env.mono_ms = tclock_wall;
    c->env.random = tclock_random;
    c->env.data = c;
}

/* A fresh directory under $TMPDIR; removed by tmpdir_rm. */
static inline void
tmpdir_make(char *out, size_t len)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, len, "%s/kzt.XXXXXX", base ? base : "/tmp");
    ASSERT(mkdtemp(out) != NULL);
}

static inline void
tmpdir_rm(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ASSERT_EQ(system(cmd), 0);
}

/* A replica with engine tables only, role admin (it may write network
 * tables), in dir/name; the device key is random. */
static inline struct replica *
replica_test_new(const char *dir, const char *name, const struct kz_env *env,
                 enum replica_role role, const char *site)
{
    struct replica_opts o;
    struct replica *r = NULL;
    uint8_t key[32];
    char path[512];

    randombytes_buf(key, sizeof(key));
    memset(&o, 0, sizeof(o));
    o.site = site;
    o.device = name;
    o.role = role;
    o.device_key = key;
    o.env = env;
    o.no_schema = 1;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (replica_create(&r, path, &o) != 0)
        T_FAIL_("replica_create: %s", replica_errmsg(NULL));
    return r;
}

static inline void
sql_ok(struct replica *r, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(replica_db(r), sql, NULL, NULL, &msg) != SQLITE_OK)
        T_FAIL_("SQL failed: %s: %s", sql, msg ? msg : "?");
}

static inline long long
sql_int(struct replica *r, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long v;

    if (sqlite3_prepare_v2(replica_db(r), sql, -1, &st, NULL) != SQLITE_OK)
        T_FAIL_("prepare %s: %s", sql, sqlite3_errmsg(replica_db(r)));
    if (sqlite3_step(st) != SQLITE_ROW)
        T_FAIL_("no row: %s", sql);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Copies every outbox changeset of ${scope} from a to b; returns count. */
static inline int
ship(struct replica *a, struct replica *b, const char *scope)
{
    struct replica_cs cs;
    uint64_t seq = 0;
    int n = 0, rc;

    while ((rc = replica_outbox_get(a, scope, seq, &cs)) == 1) {
        struct apply_stats st;
        seq = cs.hdr.author_seq;
        rc = replica_apply(b, &cs.hdr, cs.body, cs.body_len, &st);
        if (rc != 0)
            T_FAIL_("apply: %s (%s)", kz_err_name(rc), replica_errmsg(b));
        replica_cs_clear(&cs);
        n++;
    }
    ASSERT_EQ(rc, 0);
    return n;
}

static inline void
digest_hex(struct replica *r, const char *scope, char out[65])
{
    uint8_t d[32];
    ASSERT_OK(replica_digest(r, scope, d));
    sodium_bin2hex(out, 65, d, 32);
}

#endif /* KZ_ENGINE_UTIL_H */
