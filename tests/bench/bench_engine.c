/*
 * bench_engine.c: the replica engine against plain SQLite doing the same
 * work, in the same run, on the same machine.
 *
 *     bench_engine [--reps N] [--rows N] [--no-mem] [--only g|h|i]
 *
 * Workload: ${rows} rows (default 100000) of a table with a TEXT primary key
 * (a random 36-character UUID, so the key index is filled in random order)
 * and 8 columns: 4 short TEXT (10-20 bytes), 2 INTEGER, 1 REAL, 1 TEXT of
 * ~200 bytes.  Both sides use the engine's connection settings
 * (journal_mode=WAL, synchronous=NORMAL, foreign_keys=ON,
 * recursive_triggers=ON, temp_store=MEMORY), the default page and cache
 * sizes, one
 * transaction, and the same prepared statements, prepared outside the timed
 * region.  Every repetition runs in a fresh temporary directory.
 *
 *   a. insert into a tracked table (capture triggers → kz_log) vs a plain
 *      table; then replica_build (fold + pack into kz_outbox), timed apart.
 *   b. one UPDATE statement changing one INTEGER column of every row; then
 *      replica_build again.
 *   c. the changesets of (a), read from the outbox beforehand, applied with
 *      replica_apply to an empty replica of another device (role site, the
 *      usual receiver of the network scope) vs plain SQLite inserting the
 *      same rows in one transaction.
 *   d. (first repetition) on-disk size of the engine's tables after (a), by
 *      dbstat: kz_clock and kz_outbox against the table itself.
 *   f. the floor any capture trigger sets on this SQLite: (a) and (b) on
 *      plain databases whose table has an AFTER INSERT and an AFTER UPDATE
 *      trigger that does nothing, or that only appends the key to a log
 *      table.
 *   g. ${rows} / 5 rows built as changesets of 10 rows, applied one per
 *      transaction (replica_apply) and 64 per transaction
 *      (replica_apply_many, as `kzsync sync` applies a pulled batch).
 *   h. ${rows} / 5 rows in changesets of 2,000 cells, applied 64 per
 *      transaction to an empty replica and to one whose database also
 *      holds ${rows} rows of the user's own under a deferred foreign key.
 *   i. the same, to an empty replica and to one where ${rows} / 50 rows of
 *      another table wait in quarantine.
 *   e. peak RSS of a process doing only the apply, for two changeset sizes
 *      and for a quarter of the rows: it follows the changeset size, not the
 *      number of changesets.  Each measurement is a fresh exec of this
 *      program (--apply-child), so nothing of the parent's heap is counted.
 *
 * Times are CLOCK_MONOTONIC; the table prints medians.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "err.h"
#include "replica.h"

#include "bench_net.h"
#include "bench_workload.h"

#define SCOPE "network"

static const char PRAGMAS[] = "PRAGMA journal_mode = WAL;"
                              "PRAGMA synchronous = NORMAL;"
                              "PRAGMA foreign_keys = ON;"
                              "PRAGMA recursive_triggers = ON;"
                              "PRAGMA temp_store = MEMORY;"
                              /* As replica.c opens the replica. */
                              "PRAGMA mmap_size = 268435456;";

static const char UPDATE_SQL[] = "UPDATE item SET qty = qty + 1";

static const struct track_decl NET = {"network", NULL, NULL, NULL, NULL, NULL};

/* (f): a trigger that does nothing, and one that only logs the key. */
static const char *const FLOOR_SQL[2] = {
    "CREATE TRIGGER fi AFTER INSERT ON item BEGIN SELECT 1; END;"
    "CREATE TRIGGER fu AFTER UPDATE ON item BEGIN SELECT 1; END;",
    "CREATE TABLE lg(seq INTEGER PRIMARY KEY, pk NOT NULL);"
    "CREATE TRIGGER fi AFTER INSERT ON item BEGIN"
    " INSERT INTO lg(pk) VALUES (NEW.id); END;"
    "CREATE TRIGGER fu AFTER UPDATE ON item BEGIN"
    " INSERT INTO lg(pk) VALUES (NEW.id); END;"};

/* A plain database with the engine's settings and the same table. */
static sqlite3 *
plain_open(const char *dir, const char *name)
{
    char path[600];
    sqlite3 *db = NULL;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (sqlite3_open_v2(path, &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        bn_die("open %s", path);
    sqlite3_busy_timeout(db, 10000);
    sqlite3_extended_result_codes(db, 1);
    exec_ok(db, PRAGMAS);
    exec_ok(db, BW_CREATE_SQL);
    return db;
}

static struct replica *
replica_new(const char *dir, const char *name, enum replica_role role,
            uint64_t seed)
{
    struct replica_opts o;
    struct replica *r = NULL;
    uint8_t key[32];
    char path[600];
    uint64_t s = seed | 1;
    int i, err;

    for (i = 0; i < 32; i++)
        key[i] = (uint8_t)rnd(&s);
    memset(&o, 0, sizeof(o));
    o.site = role == REPLICA_ROLE_ADMIN ? "HQ" : "HAN";
    o.device = name;
    o.role = role;
    o.device_key = key;
    o.no_schema = 1;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((err = replica_create(&r, path, &o)))
        bn_die("replica_create: %s", replica_errmsg(NULL));
    exec_ok(replica_db(r), BW_CREATE_SQL);
    if ((err = replica_track(r, "item", &NET)))
        bn_die("replica_track: %s", replica_errmsg(r));
    return r;
}

/* One UPDATE of every row in one transaction; returns seconds. */
static double
update_rows(sqlite3 *db, int n)
{
    sqlite3_stmt *up = prep(db, UPDATE_SQL);
    sqlite3_stmt *b = prep(db, "BEGIN IMMEDIATE"), *c = prep(db, "COMMIT");
    double t0, t1;

    t0 = bn_now();
    if (sqlite3_step(b) != SQLITE_DONE)
        bn_die("BEGIN: %s", sqlite3_errmsg(db));
    if (sqlite3_step(up) != SQLITE_DONE)
        bn_die("update: %s", sqlite3_errmsg(db));
    if (sqlite3_changes(db) != n)
        bn_die("update changed %d rows, not %d", sqlite3_changes(db), n);
    if (sqlite3_step(c) != SQLITE_DONE)
        bn_die("COMMIT: %s", sqlite3_errmsg(db));
    t1 = bn_now();
    sqlite3_finalize(up);
    sqlite3_finalize(b);
    sqlite3_finalize(c);
    return t1 - t0;
}

static double
build(struct replica *r, uint32_t max_cells, int *made)
{
    double t0 = bn_now(), t1;
    int rc = replica_build(r, max_cells);

    t1 = bn_now();
    if (rc < 0)
        bn_die("replica_build: %s (%s)", kz_err_name(rc), replica_errmsg(r));
    *made = rc;
    return t1 - t0;
}

/* Changesets of ${r}'s outbox, held in memory like a received batch. */
struct csset {
    struct replica_cs *cs;
    int n;
    uint64_t cells, bytes;
};

static void
csset_load(struct replica *r, struct csset *s)
{
    uint64_t seq = 0;
    int rc;

    memset(s, 0, sizeof(*s));
    for (;;) {
        struct replica_cs cs;
        rc = replica_outbox_get(r, SCOPE, seq, &cs);
        if (rc < 0)
            bn_die("replica_outbox_get: %s", kz_err_name(rc));
        if (rc == 0)
            break;
        seq = cs.hdr.author_seq;
        s->cs = realloc(s->cs, (size_t)(s->n + 1) * sizeof(*s->cs));
        if (s->cs == NULL)
            bn_die("out of memory");
        s->cs[s->n++] = cs;
        s->cells += cs.hdr.n_cells;
        s->bytes += cs.hdr_len + cs.body_len;
    }
}

static void
csset_free(struct csset *s)
{
    int i;

    for (i = 0; i < s->n; i++)
        replica_cs_clear(&s->cs[i]);
    free(s->cs);
    memset(s, 0, sizeof(*s));
}

/* Applies every changeset of ${s} to ${r}; returns seconds. */
static double
apply_all(struct replica *r, const struct csset *s, uint64_t *won)
{
    double t0, t1;
    int i, rc;

    *won = 0;
    t0 = bn_now();
    for (i = 0; i < s->n; i++) {
        struct apply_stats st;
        rc = replica_apply(r, &s->cs[i].hdr, s->cs[i].body, s->cs[i].body_len,
                           &st);
        if (rc != 0)
            bn_die("replica_apply: %s (%s)", kz_err_name(rc),
                   replica_errmsg(r));
        if (st.quarantined || st.duplicate || st.conflicts)
            bn_die("apply: %u quarantined, dup %d, %u conflicts",
                   st.quarantined, st.duplicate, st.conflicts);
        *won += st.cells_won;
    }
    t1 = bn_now();
    return t1 - t0;
}

/* Bytes of the b-tree ${name} (pages × page size), by dbstat. */
static int64_t
btree_bytes(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st =
        prep(db, "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?");
    int64_t v = 0;

    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int
have_dbstat(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int ok;

    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM dbstat", -1, &st, NULL) !=
        SQLITE_OK)
        return 0;
    ok = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return ok;
}

static void
mk_tmp(char *out, size_t len, const char *tag)
{
    const char *base = getenv("TMPDIR");

    snprintf(out, len, "%s/kzbench-%s.XXXXXX", base ? base : "/tmp", tag);
    if (mkdtemp(out) == NULL)
        bn_die("mkdtemp %s: %s", out, strerror(errno));
}

/*
 * --apply-child ADIR BDIR: a fresh process that creates replica BDIR and
 * applies ADIR's outbox to it one changeset at a time, reading the rows of
 * kz_outbox straight from ADIR/replica.db as a transport would hand them
 * over.  Prints: changesets cells rss_before_kB hwm_kB maxrss_kB seconds.
 */
static int
apply_child(const char *adir, const char *bdir)
{
    struct replica *b;
    sqlite3 *a = NULL;
    sqlite3_stmt *st;
    char path[600];
    struct rusage ru;
    long rss0;
    uint64_t cells = 0;
    int n = 0, rc;
    double t0, t1;

    b = replica_new(bdir, "b", REPLICA_ROLE_SITE, (uint64_t)getpid() * 7919);
    snprintf(path, sizeof(path), "%s/a/replica.db", adir);
    if (sqlite3_open_v2(path, &a, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        bn_die("open %s", path);
    st = prep(a, "SELECT hdr, body FROM kz_outbox WHERE scope = '" SCOPE
                 "' ORDER BY seq");
    rss0 = bn_proc_kb(0, "VmRSS:");
    t0 = bn_now();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct kz_cs_header h;
        struct apply_stats as;
        int err =
            kz_cs_header_decode(&h, sqlite3_column_blob(st, 0),
                                (size_t)sqlite3_column_bytes(st, 0), NULL);
        if (err)
            bn_die("header: %s", kz_err_name(err));
        err = replica_apply(b, &h, sqlite3_column_blob(st, 1),
                            (size_t)sqlite3_column_bytes(st, 1), &as);
        if (err)
            bn_die("replica_apply: %s (%s)", kz_err_name(err),
                   replica_errmsg(b));
        cells += as.cells_won;
        n++;
    }
    t1 = bn_now();
    if (rc != SQLITE_DONE)
        bn_die("outbox: %s", sqlite3_errmsg(a));
    getrusage(RUSAGE_SELF, &ru);
    printf("%d %llu %ld %ld %ld %.3f %ld\n", n, (unsigned long long)cells, rss0,
           bn_proc_kb(0, "VmHWM:"), ru.ru_maxrss, t1 - t0,
           bn_proc_kb(0, "RssFile:"));
    sqlite3_finalize(st);
    sqlite3_close(a);
    replica_free(b);
    return 0;
}

struct memrow {
    int rows;
    uint32_t max_cells;
    int n_cs;
    unsigned long long cells;
    long rss0, hwm, maxrss, rss_file;
    double secs;
    uint64_t body_max;
};

static void
mem_run(const char *self, const struct rowdata *d, int rows, uint32_t max_cells,
        struct memrow *m)
{
    char dir[512], bdir[600], cmd[2000];
    struct replica *a;
    sqlite3_stmt *st;
    FILE *p;
    int made;

    memset(m, 0, sizeof(*m));
    m->rows = rows;
    m->max_cells = max_cells;
    mk_tmp(dir, sizeof(dir), "mem");
    a = replica_new(dir, "a", REPLICA_ROLE_ADMIN,
                    (uint64_t)rows * 31 + max_cells);
    insert_rows(replica_db(a), d, rows);
    build(a, max_cells, &made);
    st = prep(replica_db(a), "SELECT max(length(body)) FROM kz_outbox");
    if (sqlite3_step(st) == SQLITE_ROW)
        m->body_max = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    replica_free(a);
    snprintf(bdir, sizeof(bdir), "%s/bchild", dir);
    if (mkdir(bdir, 0700) != 0)
        bn_die("mkdir %s", bdir);
    snprintf(cmd, sizeof(cmd), "'%s' --apply-child '%s' '%s'", self, dir, bdir);
    p = popen(cmd, "r");
    if (p == NULL ||
        fscanf(p, "%d %llu %ld %ld %ld %lf %ld", &m->n_cs, &m->cells, &m->rss0,
               &m->hwm, &m->maxrss, &m->secs, &m->rss_file) != 7)
        bn_die("%s: no result", cmd);
    if (pclose(p) != 0)
        bn_die("%s failed", cmd);
    if (m->n_cs != made)
        bn_die("child applied %d changesets of %d", m->n_cs, made);
    bn_rm_rf(dir);
}

/* Applies ${s} to ${r} in transactions of ${per} changesets
 * (replica_apply_many); returns seconds. */
static double
apply_many_all(struct replica *r, const struct csset *s, int per)
{
    struct replica_in in[64];
    struct apply_stats st[64];
    double t0 = bn_now();
    int i, k, rc;

    for (i = 0; i < s->n; i += per) {
        uint32_t n = (uint32_t)(s->n - i < per ? s->n - i : per), done = 0;
        for (k = 0; k < (int)n; k++) {
            in[k].hdr = &s->cs[i + k].hdr;
            in[k].body = s->cs[i + k].body;
            in[k].body_len = s->cs[i + k].body_len;
            in[k].server_seq = 0;
        }
        rc = replica_apply_many(r, in, n, st, &done);
        if (rc != 0 || done != n)
            bn_die("replica_apply_many: %s (%s)", kz_err_name(rc),
                   replica_errmsg(r));
    }
    return bn_now() - t0;
}

/*
 * g. Small changesets, as `kzsync run` makes them when it syncs every 250
 * ms: ${rows} rows built 10 rows (90 cells) a changeset, applied to empty
 * replicas one changeset per transaction (replica_apply) and 64 per
 * transaction (replica_apply_many, as `kzsync sync` applies a pulled
 * batch).  Prints the medians.
 */
static void
small_run(const struct rowdata *d, int rows, int reps)
{
    double one[64], many[64];
    int r, n_cs = 0;

    for (r = 0; r < reps; r++) {
        char dir[512];
        struct replica *a, *b1, *b2;
        struct csset cs;
        uint64_t won;
        uint8_t d1[32], d2[32];

        mk_tmp(dir, sizeof(dir), "small");
        a = replica_new(dir, "a", REPLICA_ROLE_ADMIN,
                        UINT64_C(0x5151) + (uint64_t)r);
        (void)insert_rows(replica_db(a), d, rows);
        (void)build(a, 90, &n_cs);
        csset_load(a, &cs);
        b1 = replica_new(dir, "b1", REPLICA_ROLE_SITE,
                         UINT64_C(0x6161) + (uint64_t)r);
        b2 = replica_new(dir, "b2", REPLICA_ROLE_SITE,
                         UINT64_C(0x7171) + (uint64_t)r);
        if (r % 2 == 0) {
            one[r] = apply_all(b1, &cs, &won);
            many[r] = apply_many_all(b2, &cs, 64);
        } else {
            many[r] = apply_many_all(b2, &cs, 64);
            one[r] = apply_all(b1, &cs, &won);
        }
        if (replica_digest(b1, SCOPE, d1) != 0 ||
            replica_digest(b2, SCOPE, d2) != 0 || memcmp(d1, d2, 32) != 0 ||
            sql_int(replica_db(b2), "SELECT count(*) FROM item") != rows)
            bn_die("small changesets: the two receivers differ");
        fprintf(stderr,
                "small rep %d: %d cs, one by one %.3f s, 64 a "
                "transaction %.3f s\n",
                r + 1, cs.n, one[r], many[r]);
        csset_free(&cs);
        replica_free(b1);
        replica_free(b2);
        replica_free(a);
        bn_rm_rf(dir);
    }
    printf("\ng. %d rows in %d changesets of 10 rows (as kzsync run makes "
           "them), applied to an empty replica (medians of %d)\n",
           rows, n_cs, reps);
    printf("   one changeset a transaction (replica_apply)        %8.3f s\n",
           bn_median(one, reps));
    printf("   64 changesets a transaction (replica_apply_many)   %8.3f s  "
           "%.2fx faster\n",
           bn_median(many, reps), bn_median(one, reps) / bn_median(many, reps));
    fflush(stdout);
}

/*
 * h. A replica that holds other data under a deferred foreign key
 * (${rows} child rows referring to ${rows} / 100 parents, in tables of
 * the user's own) against an empty one, both receiving the same
 * changesets of ${rows} / 5 rows of 2,000 cells, 64 a transaction (as
 * `kzsync sync` applies a pulled batch).  Each changeset's apply asks
 * whether it left rows referring to nothing; that must not cost a check
 * of the whole database.  Prints the medians.
 */
static void
fk_run(const struct rowdata *d, int rows, int reps)
{
    double bare[64], held[64];
    int r, n_cs = 0;

    for (r = 0; r < reps; r++) {
        char dir[512], sql[512];
        struct replica *a, *b1, *b2;
        struct csset cs;
        uint8_t d1[32], d2[32];

        mk_tmp(dir, sizeof(dir), "fk");
        a = replica_new(dir, "a", REPLICA_ROLE_ADMIN,
                        UINT64_C(0x8181) + (uint64_t)r);
        (void)insert_rows(replica_db(a), d, rows / 5);
        (void)build(a, 2000, &n_cs);
        csset_load(a, &cs);
        b1 = replica_new(dir, "b1", REPLICA_ROLE_SITE,
                         UINT64_C(0x9191) + (uint64_t)r);
        b2 = replica_new(dir, "b2", REPLICA_ROLE_SITE,
                         UINT64_C(0xa1a1) + (uint64_t)r);
        snprintf(sql, sizeof(sql),
                 "CREATE TABLE org(id INTEGER PRIMARY KEY, name TEXT);"
                 "CREATE TABLE person(id INTEGER PRIMARY KEY, org INTEGER"
                 " REFERENCES org DEFERRABLE INITIALLY DEFERRED, name TEXT);"
                 "BEGIN;"
                 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM"
                 " n WHERE i < %d) INSERT INTO org SELECT i, 'org ' || i"
                 " FROM n;"
                 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM"
                 " n WHERE i < %d) INSERT INTO person SELECT i, 1 + i %% %d,"
                 " 'person ' || i FROM n;"
                 "COMMIT",
                 rows / 100, rows, rows / 100);
        exec_ok(replica_db(b2), sql);
        if (r % 2 == 0) {
            bare[r] = apply_many_all(b1, &cs, 64);
            held[r] = apply_many_all(b2, &cs, 64);
        } else {
            held[r] = apply_many_all(b2, &cs, 64);
            bare[r] = apply_many_all(b1, &cs, 64);
        }
        if (replica_digest(b1, SCOPE, d1) != 0 ||
            replica_digest(b2, SCOPE, d2) != 0 || memcmp(d1, d2, 32) != 0 ||
            sql_int(replica_db(b2), "SELECT count(*) FROM item") != rows / 5)
            bn_die("foreign keys: the two receivers differ");
        fprintf(stderr,
                "fk rep %d: %d cs, empty %.3f s, with foreign key %.3f s\n",
                r + 1, cs.n, bare[r], held[r]);
        csset_free(&cs);
        replica_free(b1);
        replica_free(b2);
        replica_free(a);
        bn_rm_rf(dir);
    }
    printf("\nh. %d rows in %d changesets of 2000 cells, 64 a transaction, "
           "applied (medians of %d)\n",
           rows / 5, n_cs, reps);
    printf("   to an empty replica                                  %8.3f s\n",
           bn_median(bare, reps));
    printf("   to one holding %d rows under a deferred foreign key %8.3f s  "
           "%.2fx\n",
           rows, bn_median(held, reps),
           bn_median(held, reps) / bn_median(bare, reps));
    fflush(stdout);
}

/* Applies the changesets of ${s} to ${r} one a transaction. */
static void
apply_each(struct replica *r, const struct csset *s)
{
    int i;

    for (i = 0; i < s->n; i++) {
        struct apply_stats st;
        if (replica_apply(r, &s->cs[i].hdr, s->cs[i].body, s->cs[i].body_len,
                          &st) != 0)
            bn_die("replica_apply: %s", replica_errmsg(r));
    }
}

/*
 * i. Replicas where ${rows} / 50 rows of another table wait in quarantine
 * against an empty one, all receiving the changesets of part h: rows a
 * local trigger refuses (tried again after every changeset: what lets
 * them in may be anything), and cells of rows deleted after a concurrent
 * edit of theirs ("row deleted": passed over until their row is inserted
 * again, so they cost nothing however many there are).  Prints the
 * medians.
 */
static void
waiting_run(const struct rowdata *d, int rows, int reps)
{
    static const char held_sql[] =
        "CREATE TABLE held(id TEXT PRIMARY KEY, v TEXT)";
    double bare[64], held[64], dead[64];
    int r, n_cs = 0, n_held = rows / 50;

    for (r = 0; r < reps; r++) {
        char dir[512], sql[256];
        struct replica *a, *w, *b1, *b2, *b3;
        struct csset cs, hs, ds;
        uint8_t d1[32], d2[32];
        int n_hs = 0, n_ds = 0;

        mk_tmp(dir, sizeof(dir), "wait");
        a = replica_new(dir, "a", REPLICA_ROLE_ADMIN,
                        UINT64_C(0xb1b1) + (uint64_t)r);
        (void)insert_rows(replica_db(a), d, rows / 5);
        (void)build(a, 2000, &n_cs);
        csset_load(a, &cs);
        w = replica_new(dir, "w", REPLICA_ROLE_ADMIN,
                        UINT64_C(0xc1c1) + (uint64_t)r);
        exec_ok(replica_db(w), held_sql);
        if (replica_track(w, "held", &NET) != 0)
            bn_die("replica_track: %s", replica_errmsg(w));
        snprintf(sql, sizeof(sql),
                 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM"
                 " n WHERE i < %d) INSERT INTO held SELECT 'h' || i, 'v' FROM"
                 " n",
                 n_held);
        exec_ok(replica_db(w), sql);
        (void)build(w, 0, &n_hs);
        csset_load(w, &hs);
        b1 = replica_new(dir, "b1", REPLICA_ROLE_SITE,
                         UINT64_C(0xd1d1) + (uint64_t)r);
        b2 = replica_new(dir, "b2", REPLICA_ROLE_SITE,
                         UINT64_C(0xe1e1) + (uint64_t)r);
        exec_ok(replica_db(b2), held_sql);
        if (replica_track(b2, "held", &NET) != 0)
            bn_die("replica_track: %s", replica_errmsg(b2));
        exec_ok(replica_db(b2), "CREATE TRIGGER refuse BEFORE INSERT ON held"
                                " BEGIN SELECT RAISE(ABORT, 'not here'); END");
        apply_each(b2, &hs);
        if (sql_int(replica_db(b2),
                    "SELECT count(DISTINCT pk) FROM kz_quarantine") != n_held)
            bn_die("waiting rows: not %d", n_held);
        /* b3 edits the rows later than w deletes them (an admin, as w:
         * the table is network data). */
        b3 = replica_new(dir, "b3", REPLICA_ROLE_ADMIN,
                         UINT64_C(0xf1f1) + (uint64_t)r);
        exec_ok(replica_db(b3), held_sql);
        if (replica_track(b3, "held", &NET) != 0)
            bn_die("replica_track: %s", replica_errmsg(b3));
        apply_each(b3, &hs);
        exec_ok(replica_db(b3), "UPDATE held SET v = 'edited';"
                                " UPDATE kz_log SET ms = ms + 60000");
        exec_ok(replica_db(w), "DELETE FROM held");
        (void)build(w, 0, &n_ds);
        csset_load(w, &ds);
        apply_each(b3, &ds);
        if (sql_int(replica_db(b3),
                    "SELECT count(DISTINCT pk) FROM kz_quarantine WHERE"
                    " reason LIKE 'row deleted%'") != n_held ||
            sql_int(replica_db(b3), "SELECT count(*) FROM held") != 0)
            bn_die("row deleted: not %d waiting", n_held);
        switch (r % 3) {
        case 0:
            bare[r] = apply_many_all(b1, &cs, 64);
            held[r] = apply_many_all(b2, &cs, 64);
            dead[r] = apply_many_all(b3, &cs, 64);
            break;
        case 1:
            held[r] = apply_many_all(b2, &cs, 64);
            dead[r] = apply_many_all(b3, &cs, 64);
            bare[r] = apply_many_all(b1, &cs, 64);
            break;
        default:
            dead[r] = apply_many_all(b3, &cs, 64);
            bare[r] = apply_many_all(b1, &cs, 64);
            held[r] = apply_many_all(b2, &cs, 64);
            break;
        }
        if (sql_int(replica_db(b2),
                    "SELECT count(DISTINCT pk) FROM kz_quarantine") != n_held ||
            sql_int(replica_db(b3),
                    "SELECT count(DISTINCT pk) FROM kz_quarantine") != n_held)
            bn_die("waiting rows: not %d after the apply", n_held);
        if (sql_int(replica_db(b1), "SELECT count(*) FROM item") != rows / 5 ||
            sql_int(replica_db(b2), "SELECT count(*) FROM item") != rows / 5 ||
            sql_int(replica_db(b3), "SELECT count(*) FROM item") != rows / 5 ||
            sql_int(replica_db(b1), "SELECT count(*) FROM kz_quarantine") != 0)
            bn_die("waiting rows: the receivers differ");
        if (replica_digest(a, SCOPE, d1) != 0 ||
            replica_digest(b1, SCOPE, d2) != 0 || memcmp(d1, d2, 32) != 0)
            bn_die("waiting rows: the empty receiver differs from A");
        fprintf(stderr,
                "wait rep %d: %d cs, empty %.3f s, with %d rows "
                "refused %.3f s, deleted %.3f s\n",
                r + 1, cs.n, bare[r], n_held, held[r], dead[r]);
        csset_free(&cs);
        csset_free(&hs);
        csset_free(&ds);
        replica_free(b1);
        replica_free(b2);
        replica_free(b3);
        replica_free(w);
        replica_free(a);
        bn_rm_rf(dir);
    }
    printf("\ni. %d rows in %d changesets of 2000 cells, 64 a transaction, "
           "applied (medians of %d)\n",
           rows / 5, n_cs, reps);
    printf("   to an empty replica                            %8.3f s\n",
           bn_median(bare, reps));
    printf("   to one where %d rows a trigger refuses wait  %8.3f s  "
           "%.2fx\n",
           n_held, bn_median(held, reps),
           bn_median(held, reps) / bn_median(bare, reps));
    printf("   to one where %d deleted rows' cells wait     %8.3f s  "
           "%.2fx\n",
           n_held, bn_median(dead, reps),
           bn_median(dead, reps) / bn_median(bare, reps));
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    int reps = 5, rows = 100000, do_mem = 1, i, r;
    const char *only = NULL;
    char self[1024];
    ssize_t sl;
    struct rowdata *d;
    double ins_k[64], ins_p[64], bld[64], upd_k[64], upd_p[64], bld2[64],
        app_k[64], app_p[64], fl_ins[2][64], fl_upd[2][64];
    int n_cs = 0, n_cs2 = 0;
    uint64_t cells_applied = 0, cs_bytes = 0, cs_cells = 0;
    int dbstat = -1;
    int64_t sz_item = 0, sz_item_idx = 0, sz_clock = 0, sz_clock_idx = 0,
            sz_outbox = 0, sz_outbox_idx = 0, sz_log = 0, sz_plain = 0,
            sz_plain_idx = 0, file_k = 0, file_p = 0;
    int digest_ok = -1;
    const char *tmpbase = getenv("TMPDIR");

    /* As kzsync and kzsyncd do (client/main.c), for both sides. */
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    bn_prog = "bench_engine";
    if (argc == 4 && strcmp(argv[1], "--apply-child") == 0)
        return apply_child(argv[2], argv[3]);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
            rows = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-mem") == 0)
            do_mem = 0;
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else
            bn_die("usage: bench_engine [--reps N (1-64)] [--rows N] "
                   "[--no-mem] [--only g|h|i]");
    }
    if (reps < 1 || reps > 64 || rows < 100 ||
        (only && strcmp(only, "g") != 0 && strcmp(only, "h") != 0 &&
         strcmp(only, "i") != 0))
        bn_die("usage: bench_engine [--reps N (1-64)] [--rows N] [--no-mem] "
               "[--only g|h|i]");
    sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl <= 0)
        bn_die("readlink /proc/self/exe");
    self[sl] = '\0';

    bn_print_machine(argc, argv);
    printf("sqlite:  %s (%s)\n", sqlite3_libversion(), sqlite3_sourceid());
    printf("tmpdir:  %s (fresh directory per repetition)\n",
           tmpbase ? tmpbase : "/tmp");
    printf("pragmas, both sides: journal_mode=WAL synchronous=NORMAL "
           "foreign_keys=ON recursive_triggers=ON temp_store=MEMORY (the "
           "engine's); default "
           "page_size/cache_size\n");
    printf("workload: %d rows, TEXT pk (random 36-char UUID) + 4 TEXT "
           "(10-20 B) + 2 INTEGER + 1 REAL + 1 TEXT (190-210 B); "
           "one transaction; statements prepared outside the timing\n",
           rows);
    fflush(stdout);

    d = gen_rows(rows);
    if (d == NULL)
        bn_die("out of memory");
    if (only != NULL) {
        if (strcmp(only, "g") == 0)
            small_run(d, rows / 5, reps);
        else if (strcmp(only, "h") == 0)
            fk_run(d, rows, reps);
        else
            waiting_run(d, rows, reps);
        free(d);
        return 0;
    }
    for (r = 0; r < reps; r++) {
        char dir[512];
        struct replica *a, *b;
        sqlite3 *p1, *p2;
        struct csset cs;
        uint64_t won;

        mk_tmp(dir, sizeof(dir), "rep");
        p1 = plain_open(dir, "plain1.db");
        a = replica_new(dir, "a", REPLICA_ROLE_ADMIN,
                        UINT64_C(0x1234567) + (uint64_t)r);

        /* a. insert; alternate which side goes first. */
        if (r % 2 == 0) {
            ins_p[r] = insert_rows(p1, d, rows);
            ins_k[r] = insert_rows(replica_db(a), d, rows);
        } else {
            ins_k[r] = insert_rows(replica_db(a), d, rows);
            ins_p[r] = insert_rows(p1, d, rows);
        }
        if (r == 0) {
            dbstat = have_dbstat(replica_db(a));
            if (dbstat)
                sz_log = btree_bytes(replica_db(a), "kz_log");
        }
        bld[r] = build(a, 0, &n_cs);
        if (sql_int(replica_db(a), "SELECT count(*) FROM kz_clock") != rows)
            bn_die("kz_clock does not have %d rows", rows);

        /* d. sizes after (a). */
        if (r == 0) {
            sqlite3 *ka = replica_db(a);
            if (dbstat) {
                sz_item = btree_bytes(ka, "item");
                sz_item_idx = btree_bytes(ka, "sqlite_autoindex_item_1");
                sz_clock = btree_bytes(ka, "kz_clock");
                sz_clock_idx = btree_bytes(ka, "kz_clock_dirty");
                sz_outbox = btree_bytes(ka, "kz_outbox");
                sz_outbox_idx = btree_bytes(ka, "sqlite_autoindex_kz_outbox_1");
                sz_plain = btree_bytes(p1, "item");
                sz_plain_idx = btree_bytes(p1, "sqlite_autoindex_item_1");
            }
            file_k = sql_int(ka, "PRAGMA page_count") *
                     sql_int(ka, "PRAGMA page_size");
            file_p = sql_int(p1, "PRAGMA page_count") *
                     sql_int(p1, "PRAGMA page_size");
        }

        /* c. apply the changesets of (a) to an empty replica. */
        csset_load(a, &cs);
        cs_bytes = cs.bytes;
        cs_cells = cs.cells;
        b = replica_new(dir, "b", REPLICA_ROLE_SITE,
                        UINT64_C(0x7654321) + (uint64_t)r);
        p2 = plain_open(dir, "plain2.db");
        if (r % 2 == 0) {
            app_p[r] = insert_rows(p2, d, rows);
            app_k[r] = apply_all(b, &cs, &won);
        } else {
            app_k[r] = apply_all(b, &cs, &won);
            app_p[r] = insert_rows(p2, d, rows);
        }
        cells_applied = won;
        if (sql_int(replica_db(b), "SELECT count(*) FROM item") != rows)
            bn_die("apply: B does not have %d rows", rows);
        if (r == 0) {
            uint8_t da[32], db_[32];
            if (replica_digest(a, SCOPE, da) != 0 ||
                replica_digest(b, SCOPE, db_) != 0)
                bn_die("replica_digest failed");
            digest_ok = memcmp(da, db_, 32) == 0;
            if (!digest_ok)
                bn_die("A and B differ after apply");
        }
        csset_free(&cs);
        replica_free(b);
        sqlite3_close(p2);

        /* b. update one column of every row, then build. */
        if (r % 2 == 0) {
            upd_p[r] = update_rows(p1, rows);
            upd_k[r] = update_rows(replica_db(a), rows);
        } else {
            upd_k[r] = update_rows(replica_db(a), rows);
            upd_p[r] = update_rows(p1, rows);
        }
        bld2[r] = build(a, 0, &n_cs2);

        /* f. the same on plain databases with a trigger of FLOOR_SQL. */
        for (i = 0; i < 2; i++) {
            sqlite3 *fl = plain_open(dir, i ? "floor_log.db" : "floor_nop.db");
            exec_ok(fl, FLOOR_SQL[i]);
            fl_ins[i][r] = insert_rows(fl, d, rows);
            fl_upd[i][r] = update_rows(fl, rows);
            sqlite3_close(fl);
        }

        replica_free(a);
        sqlite3_close(p1);
        bn_rm_rf(dir);
        fprintf(stderr,
                "rep %d: insert %.3f/%.3f build %.3f update %.3f/%.3f "
                "build %.3f apply %.3f/%.3f\n",
                r + 1, ins_k[r], ins_p[r], bld[r], upd_k[r], upd_p[r], bld2[r],
                app_k[r], app_p[r]);
    }

    {
        double ik = bn_median(ins_k, reps), ip = bn_median(ins_p, reps);
        double b1 = bn_median(bld, reps), b2 = bn_median(bld2, reps);
        double uk = bn_median(upd_k, reps), up = bn_median(upd_p, reps);
        double ak = bn_median(app_k, reps), ap = bn_median(app_p, reps);
        double ib[64], ub[64];

        for (r = 0; r < reps; r++) {
            ib[r] = ins_k[r] + bld[r];
            ub[r] = upd_k[r] + bld2[r];
        }
        printf(
            "\nmedians of %d repetitions, %d rows        kzsync      plain   "
            "ratio  target\n",
            reps, rows);
        printf("a. insert, 1 txn (tracked vs plain)      %8.3f s %8.3f s %6.2fx"
               "  <= 1.5x\n",
               ik, ip, ik / ip);
        printf("a. replica_build (fold + pack, %3d cs)   %8.3f s %10s\n", n_cs,
               b1, "-");
        printf("a. insert + build                        %8.3f s %8.3f s %6.2fx"
               "\n",
               bn_median(ib, reps), ip, bn_median(ib, reps) / ip);
        printf("b. UPDATE 1 column of every row, 1 stmt  %8.3f s %8.3f s %6.2fx"
               "  <= 2x\n",
               uk, up, uk / up);
        printf("b. replica_build after it (%3d cs)       %8.3f s %10s\n", n_cs2,
               b2, "-");
        printf("b. update + build                        %8.3f s %8.3f s %6.2fx"
               "\n",
               bn_median(ub, reps), up, bn_median(ub, reps) / up);
        printf("c. apply %3d cs into empty replica       %8.3f s %8.3f s %6.2fx"
               "  <= 2.5x\n",
               n_cs, ak, ap, ak / ap);
        printf("   (plain: INSERT of the same rows, 1 txn; the apply commits"
               " once per changeset)\n");
        printf("   cells applied %llu (%llu in changesets, %.1f MB of "
               "changesets): %.0f cells/s, %.0f rows/s (plain %.0f rows/s)\n",
               (unsigned long long)cells_applied, (unsigned long long)cs_cells,
               (double)cs_bytes / 1e6, (double)cells_applied / ak, rows / ak,
               rows / ap);
        printf("   replica_digest(A) == replica_digest(B): %s\n",
               digest_ok == 1 ? "yes" : "not checked");
        printf("   rates: insert %.0f vs %.0f rows/s; build %.0f rows/s; "
               "update %.0f vs %.0f rows/s\n",
               rows / ik, rows / ip, rows / b1, rows / uk, rows / up);
        printf("\nf. the floor of trigger capture on SQLite %s: plain SQLite"
               " with one trigger, no kzsync\n",
               sqlite3_libversion());
        printf("   %-41s %8s   %8s\n", "", "insert", "update");
        printf("   %-41s %6.2fx   %6.2fx\n", "kzsync's capture triggers (a, b)",
               ik / ip, uk / up);
        for (i = 0; i < 2; i++)
            printf("   %-41s %6.2fx   %6.2fx\n",
                   i ? "a trigger appending the key to a log"
                     : "a trigger doing nothing",
                   bn_median(fl_ins[i], reps) / ip,
                   bn_median(fl_upd[i], reps) / up);
    }

    printf("\nd. on-disk size after (a) + build, first repetition");
    if (dbstat == 1) {
        int64_t own = sz_item + sz_item_idx;
        printf(" (dbstat, pages x page size)\n");
        printf("   item table + pk index             %9.2f MB  (plain db: "
               "%.2f MB)\n",
               own / 1e6, (sz_plain + sz_plain_idx) / 1e6);
        printf("   kz_clock (+ kz_clock_dirty %.2f MB) %9.2f MB  %5.2fx the "
               "table   target <= 1x\n",
               sz_clock_idx / 1e6, (sz_clock + sz_clock_idx) / 1e6,
               (double)(sz_clock + sz_clock_idx) / (double)own);
        printf("   kz_outbox (+ pk index)            %9.2f MB  %5.2fx the "
               "table   (until acknowledged)\n",
               (sz_outbox + sz_outbox_idx) / 1e6,
               (double)(sz_outbox + sz_outbox_idx) / (double)own);
        printf("   kz_log before the build           %9.2f MB  %5.2fx the "
               "table   (emptied by the build)\n",
               sz_log / 1e6, (double)sz_log / (double)own);
    } else {
        printf(" (dbstat not available: whole files only)\n");
    }
    printf("   whole database (page_count x page_size): replica %.2f MB, "
           "plain %.2f MB\n",
           file_k / 1e6, file_p / 1e6);
    fflush(stdout);

    small_run(d, rows / 5, reps < 3 ? reps : 3);
    fk_run(d, rows, reps < 3 ? reps : 3);
    waiting_run(d, rows, reps < 3 ? reps : 3);

    if (do_mem) {
        struct memrow m[3];
        int k;

        mem_run(self, d, rows, 20000, &m[0]);
        mem_run(self, d, rows, 2000, &m[1]);
        mem_run(self, d, rows / 4, 20000, &m[2]);
        printf("\ne. peak RSS of a process doing only the apply (fresh exec; "
               "changesets streamed from A's kz_outbox)\n");
        printf("   rows    max_cells  changesets  biggest body  RSS before  "
               "peak (VmHWM)  growth   ru_maxrss  apply s  RssFile after\n");
        for (k = 0; k < 3; k++)
            printf("   %-7d %9u  %10d  %9.2f MB  %7.1f MB  %9.1f MB  %5.1f MB"
                   "  %6.1f MB  %7.2f  %8.1f MB\n",
                   m[k].rows, m[k].max_cells, m[k].n_cs, m[k].body_max / 1e6,
                   m[k].rss0 / 1024.0, m[k].hwm / 1024.0,
                   (m[k].hwm - m[k].rss0) / 1024.0, m[k].maxrss / 1024.0,
                   m[k].secs, m[k].rss_file / 1024.0);
        printf("   (RssFile: pages of the program and of replica.db mapped "
               "(mmap_size), shared with the page cache)\n");
    }
    free(d);
    return 0;
}
