/*
 * replica.c: opening a replica, the engine's own tables, migrations, meta,
 * devices and transactions.
 *
 * The engine's tables (all kz_*), kept apart from the user's:
 *
 *   kz_meta(key, value)           identity, role, clock, format version
 *   kz_migration(name, at)        shipped SQL files applied, once each
 *   kz_track_decl(tbl, …)         the schema's tracking declarations
 *   kz_tracked(id, tbl, …)        tables under capture, with their number
 *   kz_state(id = 1, applying)    1 only inside an apply: write rules off
 *   kz_log(seq, tbl, pk, op, mask, ms)      capture log, written by triggers
 *   kz_clock(tbl, pk, alive, v, dirty, pb, pub)  per-row cell versions:
 *                                 v = 10 bytes per cell (hlc, device);
 *                                 dirty = cells not yet packed; pb = their
 *                                 base (what we had seen from others);
 *                                 pub = cells published to site:NAME
 *   kz_device(idx, key)           author ids ↔ small local numbers
 *   kz_outbox(scope, seq, hdr, body)        changesets not yet acknowledged
 *   kz_outseq(scope, next)        next author_seq per scope
 *   kz_seen(author, scope, seq)   highest author_seq applied per author
 *   kz_conflict(…)                concurrent overwrites, both values
 *   kz_quarantine(…)              cells not applied yet, with the reason
 *   kz_cursor(scope, server_seq)  how far each scope was pulled
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "alloc.h"
#include "err.h"
#include "schema.h"

#include "replica_int.h"

/* The replica's own tables.  2: kz_round, the stored round of a build in
 * steps (format 1 replicas are upgraded at open; an engine of format 1
 * refuses a replica of format 2). */
#define REPLICA_FORMAT 2

/*
 * The generation of the capture triggers (track.c).  A replica whose
 * triggers are older gets them anew when it is opened: 2 = session 2's
 * exact comparisons (COLLATE BINARY, types) and the key-change trigger;
 * 3 = composite keys with REAL and BLOB parts kept exactly (track.c), and
 * no NULL key parts; 4 = capture without a condition on kz_state (an apply
 * drops what it logged, replica__set_applying); 5 = a single-column key read
 * once (coalesce instead of CASE) and the update's mask summed from iif()s
 * (the same values, faster); 6 = the update's columns compared only for the
 * mask, not also in its WHEN clause unless the key cannot be kept (an
 * update changing nothing logs a mask of 0).
 */
#define REPLICA_TRIGGERS 6

/* The detail of the last failed replica_create/replica_open of this thread. */
static _Thread_local char last_err[256];

/* The stored round of a build in steps (capture.c): also made at open in
 * replicas created before it. */
#define ROUND_SQL                                                              \
    "CREATE TABLE IF NOT EXISTS kz_round(pos INTEGER PRIMARY KEY,"             \
    " seq INTEGER NOT NULL, tbl INTEGER NOT NULL, pk NOT NULL,"                \
    " op INTEGER NOT NULL, mask INTEGER NOT NULL);"

/* A conflict is recorded once however often its cell is retried
 * (apply.c): also made at open in replicas created before it. */
#define CONFLICT_CELL_SQL                                                      \
    "CREATE INDEX IF NOT EXISTS kz_conflict_cell"                              \
    " ON kz_conflict(tbl, pk, col, remote_hlc);"

static const char engine_sql[] =
    "CREATE TABLE IF NOT EXISTS kz_meta(key TEXT PRIMARY KEY, value)"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS kz_migration(name TEXT PRIMARY KEY,"
    " applied_at TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS kz_track_decl(tbl TEXT PRIMARY KEY,"
    " scope_kind TEXT NOT NULL CHECK (scope_kind IN"
    " ('network','site','private')), owner_col TEXT, private_cols TEXT,"
    " cond_private_cols TEXT, cond_private_when TEXT, row_filter TEXT);"
    "CREATE TABLE IF NOT EXISTS kz_tracked(id INTEGER PRIMARY KEY,"
    " tbl TEXT NOT NULL UNIQUE, scope_kind TEXT NOT NULL, owner_col TEXT,"
    " private_cols TEXT, cond_private_cols TEXT, cond_private_when TEXT,"
    " row_filter TEXT);"
    "CREATE TABLE IF NOT EXISTS kz_state(id INTEGER PRIMARY KEY"
    " CHECK (id = 1), applying INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO kz_state VALUES (1, 0);"
    "CREATE TABLE IF NOT EXISTS kz_log(seq INTEGER PRIMARY KEY,"
    " tbl INTEGER NOT NULL, pk NOT NULL, op INTEGER NOT NULL,"
    " mask INTEGER NOT NULL, ms INTEGER NOT NULL);" ROUND_SQL
    "CREATE TABLE IF NOT EXISTS kz_clock(tbl INTEGER NOT NULL, pk NOT NULL,"
    " alive INTEGER NOT NULL, v BLOB NOT NULL, dirty INTEGER NOT NULL,"
    " pb BLOB, pub INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (tbl, pk))"
    " WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS kz_clock_dirty ON kz_clock(tbl)"
    " WHERE dirty <> 0;"
    "CREATE TABLE IF NOT EXISTS kz_device(idx INTEGER PRIMARY KEY,"
    " key BLOB NOT NULL UNIQUE);"
    "CREATE TABLE IF NOT EXISTS kz_outbox(scope TEXT NOT NULL,"
    " seq INTEGER NOT NULL, hdr BLOB NOT NULL, body BLOB NOT NULL,"
    " PRIMARY KEY (scope, seq));"
    "CREATE TABLE IF NOT EXISTS kz_outseq(scope TEXT PRIMARY KEY,"
    " next INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS kz_seen(author BLOB NOT NULL,"
    " scope TEXT NOT NULL, seq INTEGER NOT NULL,"
    " PRIMARY KEY (author, scope)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS kz_conflict(id INTEGER PRIMARY KEY,"
    " at TEXT NOT NULL, tbl TEXT NOT NULL, pk NOT NULL, col TEXT NOT NULL,"
    " local_value, local_hlc INTEGER, local_author BLOB,"
    " remote_value, remote_hlc INTEGER NOT NULL, remote_author BLOB NOT NULL,"
    " winner TEXT NOT NULL CHECK (winner IN "
    "('local','remote')));" CONFLICT_CELL_SQL
    "CREATE TABLE IF NOT EXISTS kz_quarantine(id INTEGER PRIMARY KEY,"
    " at TEXT NOT NULL, reason TEXT NOT NULL, scope TEXT NOT NULL,"
    " tbl TEXT NOT NULL, pk NOT NULL, col TEXT NOT NULL,"
    " flags INTEGER NOT NULL, value, hlc INTEGER NOT NULL,"
    " author BLOB NOT NULL, base_hlc INTEGER NOT NULL, base_author BLOB);"
    "CREATE INDEX IF NOT EXISTS kz_quarantine_row"
    " ON kz_quarantine(tbl, pk);"
    "CREATE TABLE IF NOT EXISTS kz_cursor(scope TEXT PRIMARY KEY,"
    " server_seq INTEGER NOT NULL) WITHOUT ROWID;";

int
replica__revived_stmt(struct replica *r, sqlite3_stmt **out)
{
    int rc;

    if (r->revived_st == NULL &&
        (rc = sqlite3_prepare_v3(r->db,
                                 "INSERT OR IGNORE INTO temp.kz_revived"
                                 " VALUES (?1, ?2)",
                                 -1, SQLITE_PREPARE_PERSISTENT, &r->revived_st,
                                 NULL)) != SQLITE_OK) {
        r->revived_st = NULL;
        return replica__dberr(r, rc, "quarantine");
    }
    sqlite3_reset(r->revived_st);
    r->revived_used = 1;
    *out = r->revived_st;
    return 0;
}

int
replica__dberr(struct replica *r, int rc, const char *what)
{
    snprintf(r->errmsg, sizeof(r->errmsg), "%s: %s", what,
             r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
    if (rc == SQLITE_NOMEM)
        return -KZ_ENOMEM;
    return -KZ_EDB;
}

int
replica__exec(struct replica *r, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(r->db, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK) {
        snprintf(r->errmsg, sizeof(r->errmsg), "%s",
                 msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return rc == SQLITE_NOMEM ? -KZ_ENOMEM : -KZ_EDB;
    }
    return 0;
}

int
replica__meta_get_int(struct replica *r, const char *key, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc, err = -KZ_ENOENT;

    rc = sqlite3_prepare_v2(r->db, "SELECT value FROM kz_meta WHERE key = ?",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "meta");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        err = 0;
    } else if (rc != SQLITE_DONE) {
        err = replica__dberr(r, rc, "meta");
    }
    sqlite3_finalize(st);
    return err;
}

int
replica__meta_get_text(struct replica *r, const char *key, char *out,
                       size_t out_len)
{
    sqlite3_stmt *st = NULL;
    int rc, err = -KZ_ENOENT;

    rc = sqlite3_prepare_v2(r->db, "SELECT value FROM kz_meta WHERE key = ?",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "meta");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        snprintf(out, out_len, "%s", v ? v : "");
        err = 0;
    } else if (rc != SQLITE_DONE) {
        err = replica__dberr(r, rc, "meta");
    }
    sqlite3_finalize(st);
    return err;
}

static int
meta_set(struct replica *r, const char *key, const char *text, int64_t v)
{
    sqlite3_stmt *st = NULL;
    int rc;

    rc = sqlite3_prepare_v2(
        r->db, "INSERT OR REPLACE INTO kz_meta VALUES (?, ?)", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "meta");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (text)
        sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 2, v);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : replica__dberr(r, rc, "meta");
}

int
replica__meta_set_int(struct replica *r, const char *key, int64_t v)
{
    return meta_set(r, key, NULL, v);
}

int
replica__meta_set_text(struct replica *r, const char *key, const char *v)
{
    return meta_set(r, key, v, 0);
}

static int
dev_cache_load(struct replica *r)
{
    sqlite3_stmt *st = NULL;
    int rc, err = 0;

    kz_free(r->dev_keys);
    r->dev_keys = NULL;
    r->n_dev = 0;
    rc = sqlite3_prepare_v2(
        r->db, "SELECT idx, key FROM kz_device ORDER BY idx", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "devices");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t idx = sqlite3_column_int64(st, 0);
        const void *k = sqlite3_column_blob(st, 1);
        if (idx < 0 || idx > UINT16_MAX ||
            sqlite3_column_bytes(st, 1) != KZ_KEY_LEN) {
            snprintf(r->errmsg, sizeof(r->errmsg), "kz_device is corrupt");
            err = -KZ_EDB;
            break;
        }
        if ((uint32_t)idx >= r->n_dev) {
            void *p = kz_reallocarray(r->dev_keys, (size_t)idx + 1, KZ_KEY_LEN);
            if (p == NULL) {
                err = -KZ_ENOMEM;
                break;
            }
            r->dev_keys = p;
            memset(r->dev_keys[r->n_dev], 0,
                   ((size_t)idx + 1 - r->n_dev) * KZ_KEY_LEN);
            r->n_dev = (uint32_t)idx + 1;
        }
        memcpy(r->dev_keys[idx], k, KZ_KEY_LEN);
    }
    if (err == 0 && rc != SQLITE_DONE)
        err = replica__dberr(r, rc, "devices");
    sqlite3_finalize(st);
    return err;
}

int
replica__dev_idx(struct replica *r, const uint8_t key[KZ_KEY_LEN],
                 uint16_t *idx)
{
    sqlite3_stmt *st = NULL;
    uint32_t i;
    int rc;

    for (i = 1; i < r->n_dev; i++) {
        if (memcmp(r->dev_keys[i], key, KZ_KEY_LEN) == 0) {
            *idx = (uint16_t)i;
            return 0;
        }
    }
    if (r->n_dev > UINT16_MAX) {
        snprintf(r->errmsg, sizeof(r->errmsg), "too many devices");
        return -KZ_ELIMIT;
    }
    rc = sqlite3_prepare_v2(
        r->db, "INSERT INTO kz_device(idx, key) VALUES (?, ?)", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "devices");
    i = r->n_dev ? r->n_dev : 1;
    sqlite3_bind_int64(st, 1, i);
    sqlite3_bind_blob(st, 2, key, KZ_KEY_LEN, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return replica__dberr(r, rc, "devices");
    rc = dev_cache_load(r);
    if (rc)
        return rc;
    *idx = (uint16_t)i;
    return 0;
}

const uint8_t *
replica__dev_key(struct replica *r, uint16_t idx)
{
    if (idx == 0 || idx >= r->n_dev)
        return NULL;
    return r->dev_keys[idx];
}

int
replica__cver_cmp(struct replica *r, struct cver a, struct cver b)
{
    const uint8_t *ka, *kb;

    if (a.hlc != b.hlc)
        return a.hlc < b.hlc ? -1 : 1;
    if (a.dev == b.dev)
        return 0;
    ka = replica__dev_key(r, a.dev);
    kb = replica__dev_key(r, b.dev);
    if (ka == NULL || kb == NULL)
        return ka == kb ? 0 : (ka == NULL ? -1 : 1);
    return memcmp(ka, kb, KZ_KEY_LEN) < 0 ? -1 : 1;
}

int
replica__begin(struct replica *r)
{
    int64_t last = 0;
    int err = replica__exec(r, "BEGIN IMMEDIATE");

    /* Another connection (kzsync sync beside kzsync run, kzsync status, a
     * program linking the engine) may have moved the clock since: a local
     * edit folded now must not tick below a version it already saw ... */
    if (err == 0 && replica__meta_get_int(r, "hlc", &last) == 0 &&
        (uint64_t)last > r->clock.last)
        r->clock.last = (uint64_t)last;
    /* ... and added devices to kz_device (indexes only grow): versions
     * naming them must find their keys, and a new one its own index. */
    if (err == 0) {
        sqlite3_stmt *st = NULL;
        int64_t top = -1;
        int rc = sqlite3_prepare_v2(
            r->db, "SELECT coalesce(max(idx), 0) FROM kz_device", -1, &st,
            NULL);
        if (rc == SQLITE_ERROR) {
            rc = SQLITE_OK; /* no kz_device yet: a replica being created */
        } else if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            top = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_OK)
            err = replica__dberr(r, rc, "devices");
        else if (top >= 0 && top >= (int64_t)r->n_dev)
            err = dev_cache_load(r);
        if (err)
            (void)sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return err;
}

int
replica__commit(struct replica *r)
{
    if (r->n_paused) {
        /* Never commit a tracked table without its capture triggers. */
        replica__rollback(r);
        snprintf(r->errmsg, sizeof(r->errmsg),
                 "commit refused: capture still paused on %u table(s)",
                 (unsigned)r->n_paused);
        return -KZ_EINVAL;
    }
    return replica__exec(r, "COMMIT");
}

void
replica__rollback(struct replica *r)
{
    if (!sqlite3_get_autocommit(r->db))
        (void)sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    /* The rollback restored any capture triggers an apply had dropped. */
    track__capture_forget(r);
    /* A whole retry it undid is to be made again; notes of rows alive
     * again it took back may linger (trying such a row is harmless). */
    r->retried_gen = r->tables_gen - 1;
    r->revived_used = 1;
    /* The in-memory clock may have run ahead; reload it. */
    {
        int64_t last = 0;
        if (replica__meta_get_int(r, "hlc", &last) == 0)
            r->clock.last = (uint64_t)last;
    }
    (void)dev_cache_load(r);
}

int
replica__save_clock(struct replica *r)
{
    return replica__meta_set_int(r, "hlc", (int64_t)r->clock.last);
}

/*
 * replica__set_applying(r, on): inside the apply's transaction (a rollback
 * undoes it), kz_state.applying turns the write-rule triggers off; other
 * connections never see it set.  The apply pauses the capture triggers of
 * the tables it writes (track__capture_pause); other capture triggers keep
 * logging (a schema trigger may write another tracked table), and turning
 * applying off again deletes what they logged since it was turned on and
 * creates the paused triggers anew: remote changes are never recaptured as
 * local ones.  The caller folds the log first (capture__fold), so that is
 * normally all of kz_log.  The schema's own triggers keep firing for remote
 * changes: guards (audit_log_append_only) refuse them into quarantine, and
 * triggers that keep a local table in step (a search index, say) see every
 * change.  (Switching all triggers off with SQLITE_DBCONFIG_ENABLE_TRIGGER
 * broke both; tried and reverted in session 2.)
 */
int
replica__set_applying(struct replica *r, int on)
{
    char sql[128];
    int err;

    if (on) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(r->db, "SELECT max(seq) FROM kz_log", -1,
                                    &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
            r->apply_log_floor = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW)
            return replica__dberr(r, rc, "apply");
        return replica__exec(r, "UPDATE kz_state SET applying = 1");
    }
    /* Without a WHERE, SQLite drops the table's pages at once. */
    if (r->apply_log_floor <= 0)
        snprintf(sql, sizeof(sql), "DELETE FROM kz_log;");
    else
        snprintf(sql, sizeof(sql), "DELETE FROM kz_log WHERE seq > %lld;",
                 (long long)r->apply_log_floor);
    if ((err = replica__exec(r, sql)) || (err = track__capture_resume(r)))
        return err;
    return replica__exec(r, "UPDATE kz_state SET applying = 0");
}

/* Applies the shipped SQL files not applied yet, in order: the base schema
 * files of client/schema first, then those of migrations/ by number. */
static int
run_migrations_from(struct replica *r, const struct schema_file *files,
                    int *applied)
{
    const struct schema_file *f;
    int pass, err;

    *applied = 0;
    for (pass = 0; pass < 2; pass++) {
        for (f = files; f->name != NULL; f++) {
            sqlite3_stmt *st = NULL;
            int is_migr = strncmp(f->name, "migrations/", 11) == 0;
            int rc, done;

            if (is_migr != pass)
                continue;
            rc = sqlite3_prepare_v2(r->db,
                                    "SELECT 1 FROM kz_migration WHERE name = ?",
                                    -1, &st, NULL);
            if (rc != SQLITE_OK)
                return replica__dberr(r, rc, "migrations");
            sqlite3_bind_text(st, 1, f->name, -1, SQLITE_STATIC);
            done = sqlite3_step(st) == SQLITE_ROW;
            sqlite3_finalize(st);
            if (done)
                continue;
            err = replica__exec(r, f->sql);
            if (err) {
                char m[200];
                snprintf(m, sizeof(m), "%.199s", r->errmsg);
                snprintf(r->errmsg, sizeof(r->errmsg), "schema file %.40s: %s",
                         f->name, m);
                return err;
            }
            rc =
                sqlite3_prepare_v2(r->db,
                                   "INSERT INTO kz_migration VALUES"
                                   " (?, strftime('%Y-%m-%dT%H:%M:%SZ','now'))",
                                   -1, &st, NULL);
            if (rc != SQLITE_OK)
                return replica__dberr(r, rc, "migrations");
            sqlite3_bind_text(st, 1, f->name, -1, SQLITE_STATIC);
            rc = sqlite3_step(st);
            sqlite3_finalize(st);
            if (rc != SQLITE_DONE)
                return replica__dberr(r, rc, "migrations");
            (*applied)++;
        }
    }
    return 0;
}

static int
run_migrations(struct replica *r, int *applied)
{
    return run_migrations_from(r, schema_files, applied);
}

/*
 * replica__migrate(r, files): applies the files of ${files} (a schema_files
 * style list) not applied yet, as replica_open does with the shipped ones:
 * in one transaction, then tracking anew for every declared table, then a
 * retry of the quarantine.  For tests of the migration path.
 */
int
replica__migrate(struct replica *r, const struct schema_file *files,
                 int *applied)
{
    int err;

    if ((err = replica__begin(r)))
        return err;
    if ((err = run_migrations_from(r, files, applied)) ||
        (*applied > 0 && (err = track__apply_decls(r))) ||
        (err = track__load(r)) || (err = replica__commit(r))) {
        replica__rollback(r);
        return err;
    }
    return *applied > 0 ? replica_retry_quarantine(r, NULL) : 0;
}

static int
db_open(struct replica *r, const char *dir, int create)
{
    char path[4096];
    int rc, flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;

    if ((size_t)snprintf(path, sizeof(path), "%s/replica.db", dir) >=
        sizeof(path))
        return -KZ_EINVAL;
    if (create) {
        struct stat sb;
        if (stat(path, &sb) == 0) {
            snprintf(r->errmsg, sizeof(r->errmsg), "%.200s already exists",
                     path);
            return -EEXIST;
        }
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return kz_err_from_errno(errno);
        flags |= SQLITE_OPEN_CREATE;
    } else {
        struct stat sb;
        if (stat(path, &sb) != 0) {
            snprintf(r->errmsg, sizeof(r->errmsg), "no replica at %.200s",
                     path);
            return -ENOENT;
        }
    }
    rc = sqlite3_open_v2(path, &r->db, flags, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "open");
    sqlite3_busy_timeout(r->db, 10000);
    sqlite3_extended_result_codes(r->db, 1);
    if ((rc = replica__pk_split_init(r)))
        return rc;
    return replica__exec(r, "PRAGMA journal_mode = WAL;"
                            "PRAGMA synchronous = NORMAL;"
                            "PRAGMA foreign_keys = ON;"
                            "PRAGMA recursive_triggers = ON;"
                            /* Every INSERT that fires a capture trigger
                             * keeps a statement journal; in memory, not in
                             * a temp file. */
                            "PRAGMA temp_store = MEMORY;"
                            /* Reads of the first 256 MiB straight from the
                             * page cache, not copied by pread: the build
                             * reads every row it packs (bench_sync: 13-20%
                             * less CPU for `kzsync sync` after a large
                             * write).  An I/O error on a mapped page is a
                             * SIGBUS instead of SQLITE_IOERR; the WAL
                             * keeps the file consistent either way. */
                            "PRAGMA mmap_size = 268435456;"
                            /* The apply's notes for one changeset (apply.c),
                             * made once a connection, outside any
                             * transaction (one rolled back would take
                             * them). */
                            "CREATE TEMP TABLE kz_touched(tbl INTEGER, pk,"
                            " scope TEXT NOT NULL, born INTEGER NOT NULL,"
                            " PRIMARY KEY (tbl, pk));"
                            "CREATE TEMP TABLE kz_fk_undo(tbl INTEGER, pk,"
                            " k INTEGER, old, hlc INTEGER, dev INTEGER,"
                            " dirty INTEGER, pub INTEGER, pb_hlc INTEGER,"
                            " pb_dev INTEGER, base_hlc INTEGER,"
                            " base_dev INTEGER, flags INTEGER, scope TEXT,"
                            " PRIMARY KEY (tbl, pk, k));"
                            "CREATE TEMP TABLE kz_revived(tbl INTEGER, pk,"
                            " PRIMARY KEY (tbl, pk));");
}

static int
load_identity(struct replica *r)
{
    char hex[2 * KZ_KEY_LEN + 1];
    int64_t v = 0;
    int err;

    if ((err = replica__meta_get_text(r, "site", r->site, sizeof(r->site))))
        return err;
    if ((err = replica__meta_get_int(r, "role", &v)))
        return err;
    r->role = (enum replica_role)v;
    if ((err = replica__meta_get_text(r, "device_key", hex, sizeof(hex))))
        return err;
    if (sodium_hex2bin(r->key, sizeof(r->key), hex, strlen(hex), NULL, NULL,
                       NULL) != 0)
        return -KZ_EDB;
    if ((err = replica__meta_get_int(r, "hlc", &v)))
        return err;
    kz_hlc_init(&r->clock, (uint64_t)v);
    if (replica__meta_get_int(r, "clock_offset_ms", &v) == 0)
        r->clock.offset_ms = v;
    if ((err = dev_cache_load(r)))
        return err;
    return replica__dev_idx(r, r->key, &r->self_dev);
}

/* The one failure path of replica_create and replica_open: keeps the
 * reason for replica_errmsg(NULL) and frees ${r}. */
static int
open_failed(struct replica *r, int err)
{
    if (r->errmsg[0] == '\0')
        snprintf(r->errmsg, sizeof(r->errmsg), "%s", kz_strerror(err));
    snprintf(last_err, sizeof(last_err), "%s", r->errmsg);
    replica_free(r);
    return err;
}

static int
replica_alloc(struct replica **out, const char *dir, const struct kz_env *env)
{
    struct replica *r = kz_calloc(1, sizeof(*r));

    if (r == NULL)
        return -KZ_ENOMEM;
    r->dir = kz_strdup(dir);
    if (r->dir == NULL) {
        kz_free(r);
        return -KZ_ENOMEM;
    }
    r->env = env ? env : kz_env_system();
    *out = r;
    return 0;
}

int
replica_create(struct replica **out, const char *dir,
               const struct replica_opts *o)
{
    struct replica *r = NULL;
    char hex[2 * KZ_KEY_LEN + 1];
    int err, applied;

    *out = NULL;
    if (o->site == NULL || o->device_key == NULL || strlen(o->site) == 0 ||
        strlen(o->site) >= sizeof(r->site))
        return -KZ_EINVAL;
    if ((err = replica_alloc(&r, dir, o->env)))
        return err;
    if ((err = db_open(r, dir, 1)))
        goto fail;
    if ((err = replica__begin(r)))
        goto fail;
    if ((err = replica__exec(r, engine_sql)))
        goto fail_tx;
    sodium_bin2hex(hex, sizeof(hex), o->device_key, KZ_KEY_LEN);
    if ((err = replica__meta_set_int(r, "format", REPLICA_FORMAT)) ||
        (err = replica__meta_set_int(r, "triggers", REPLICA_TRIGGERS)) ||
        (err = replica__meta_set_text(r, "site", o->site)) ||
        (err = replica__meta_set_text(r, "device",
                                      o->device ? o->device : o->site)) ||
        (err = replica__meta_set_int(r, "role", o->role)) ||
        (err = replica__meta_set_text(r, "device_key", hex)) ||
        (err = replica__meta_set_int(r, "hlc", 0)))
        goto fail_tx;
    if ((err = load_identity(r)))
        goto fail_tx;
    if (!o->no_schema) {
        if ((err = run_migrations(r, &applied)))
            goto fail_tx;
        if ((err = track__apply_decls(r)))
            goto fail_tx;
    }
    if ((err = track__load(r)))
        goto fail_tx;
    if ((err = replica__commit(r)))
        goto fail_tx;
    *out = r;
    return 0;

fail_tx:
    replica__rollback(r);
fail:
    return open_failed(r, err);
}

/* Makes the tracked tables' triggers anew when they are older than this
 * engine's (REPLICA_TRIGGERS); inside the open's transaction. */
static int
update_triggers(struct replica *r)
{
    int64_t gen = 0;
    int err = replica__meta_get_int(r, "triggers", &gen);

    if (err && err != -KZ_ENOENT)
        return err;
    if (gen == REPLICA_TRIGGERS)
        return 0;
    if (gen < 3 && (err = track__rekey(r)))
        return err;
    if ((err = track__retrack_all(r)))
        return err;
    return replica__meta_set_int(r, "triggers", REPLICA_TRIGGERS);
}

int
replica_open(struct replica **out, const char *dir, const struct kz_env *env)
{
    struct replica *r = NULL;
    int err, applied = 0;
    int64_t fmt = 0;

    *out = NULL;
    if ((err = replica_alloc(&r, dir, env)))
        return err;
    if ((err = db_open(r, dir, 0)))
        goto fail;
    if ((err = replica__meta_get_int(r, "format", &fmt)))
        goto fail;
    if (fmt != REPLICA_FORMAT && fmt != 1) {
        snprintf(r->errmsg, sizeof(r->errmsg),
                 "replica format %lld is not supported", (long long)fmt);
        err = -KZ_EVERSION;
        goto fail;
    }
    if ((err = load_identity(r)))
        goto fail;
    if ((err = replica__begin(r)))
        goto fail;
    /* Format 1 had no stored round (kz_round): an engine of format 1
     * would fold the rows of one again, so it may not open this replica
     * once it has one. */
    if ((err = replica__exec(r, ROUND_SQL CONFLICT_CELL_SQL)) ||
        (fmt == 1 &&
         (err = replica__meta_set_int(r, "format", REPLICA_FORMAT))) ||
        (err = run_migrations(r, &applied)))
        goto fail_tx;
    if (applied > 0 && (err = track__apply_decls(r)))
        goto fail_tx;
    if ((err = track__load(r)))
        goto fail_tx;
    if ((err = update_triggers(r)))
        goto fail_tx;
    if ((err = replica__commit(r)))
        goto fail_tx;
    *out = r;
    if (applied > 0) {
        /* New columns or tables: cells waiting for them may apply now. */
        err = replica_retry_quarantine(r, NULL);
        if (err) {
            replica_free(r);
            *out = NULL;
            return err;
        }
    }
    return 0;

fail_tx:
    replica__rollback(r);
fail:
    return open_failed(r, err);
}

void
replica_free(struct replica *r)
{
    if (r == NULL)
        return;
    track__free_all(r);
    capture__round_free(r);
    sqlite3_finalize(r->split_st);
    sqlite3_finalize(r->revived_st);
    if (r->db)
        sqlite3_close(r->db);
    kz_free(r->dev_keys);
    kz_free(r->dir);
    kz_free(r);
}

int
replica_meta_get(struct replica *r, const char *key, char *out, size_t len)
{
    return replica__meta_get_text(r, key, out, len);
}

int
replica_meta_set(struct replica *r, const char *key, const char *value)
{
    return replica__meta_set_text(r, key, value);
}

int
replica_meta_get_blob(struct replica *r, const char *key, uint8_t **out,
                      size_t *len)
{
    sqlite3_stmt *st = NULL;
    int rc, err = -KZ_ENOENT;

    *out = NULL;
    *len = 0;
    rc = sqlite3_prepare_v2(r->db, "SELECT value FROM kz_meta WHERE key = ?",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "meta");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        *out = kz_malloc(n ? n : 1);
        if (*out == NULL) {
            err = -KZ_ENOMEM;
        } else {
            memcpy(*out, sqlite3_column_blob(st, 0), n);
            *len = n;
            err = 0;
        }
    }
    sqlite3_finalize(st);
    return err;
}

int
replica_meta_set_blob(struct replica *r, const char *key, const uint8_t *p,
                      size_t len)
{
    sqlite3_stmt *st = NULL;
    int rc;

    rc = sqlite3_prepare_v2(
        r->db, "INSERT OR REPLACE INTO kz_meta VALUES (?, ?)", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "meta");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, p, (int)len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : replica__dberr(r, rc, "meta");
}

int
replica_set_role(struct replica *r, enum replica_role role)
{
    int err;

    if (role == r->role)
        return 0;
    if ((err = replica__begin(r)))
        return err;
    r->role = role;
    if ((err = replica__meta_set_int(r, "role", role)) ||
        (err = track__retrack_all(r)) || (err = replica__commit(r))) {
        replica__rollback(r);
        {
            int64_t v = 0;
            if (replica__meta_get_int(r, "role", &v) == 0)
                r->role = (enum replica_role)v;
        }
        return err;
    }
    return 0;
}

enum replica_role
replica_role(const struct replica *r)
{
    return r->role;
}

int
replica_set_clock_offset(struct replica *r, int64_t offset_ms)
{
    r->clock.offset_ms = offset_ms;
    return replica__meta_set_int(r, "clock_offset_ms", offset_ms);
}

int
replica_cursor_get(struct replica *r, const char *scope, uint64_t *seq)
{
    sqlite3_stmt *st = NULL;
    int rc;

    *seq = 0;
    rc = sqlite3_prepare_v2(r->db,
                            "SELECT server_seq FROM kz_cursor WHERE scope = ?",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "cursor");
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        *seq = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

int
replica__outseq_next(struct replica *r, const char *scope, int64_t *next)
{
    sqlite3_stmt *st = NULL;
    int rc;

    *next = 1;
    rc = sqlite3_prepare_v2(r->db, "SELECT next FROM kz_outseq WHERE scope = ?",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "outseq");
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    if ((rc = sqlite3_step(st)) == SQLITE_ROW)
        *next = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return replica__dberr(r, rc, "outseq");
    return 0;
}

int
replica_own_check(struct replica *r, const char *scope, uint64_t author_seq)
{
    int64_t next;
    int err;

    if ((err = replica__outseq_next(r, scope, &next)))
        return err;
    if (author_seq < (uint64_t)next)
        return 0;
    snprintf(r->errmsg, sizeof(r->errmsg),
             "the server holds changeset %llu of this device in %s, which "
             "this replica never made or no longer has",
             (unsigned long long)author_seq, scope);
    return -KZ_ESEQ;
}

int
replica__cursor_set(struct replica *r, const char *scope, uint64_t seq)
{
    sqlite3_stmt *st = NULL;
    int rc;

    rc = sqlite3_prepare_v2(r->db,
                            "INSERT INTO kz_cursor VALUES (?1, ?2) ON CONFLICT"
                            " (scope) DO UPDATE SET server_seq ="
                            " max(server_seq, ?2)",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "cursor");
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)seq);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : replica__dberr(r, rc, "cursor");
}

int
replica_cursor_set(struct replica *r, const char *scope, uint64_t seq)
{
    return replica__cursor_set(r, scope, seq);
}

int
replica_cursor_follow(struct replica *r, const char *scope, uint64_t server_seq)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (server_seq == 0 || server_seq > INT64_MAX)
        return 0;
    /* No row reads as cursor 0. */
    rc = sqlite3_prepare_v2(
        r->db,
        "INSERT INTO kz_cursor SELECT ?1, ?2 WHERE ?2 = 1 + coalesce("
        "(SELECT server_seq FROM kz_cursor WHERE scope = ?1), 0)"
        " ON CONFLICT (scope) DO UPDATE SET server_seq = excluded.server_seq",
        -1, &st, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "cursor");
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)server_seq);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return replica__dberr(r, rc, "cursor");
    return sqlite3_changes(r->db) > 0;
}

sqlite3 *
replica_db(struct replica *r)
{
    return r->db;
}

const char *
replica_errmsg(const struct replica *r)
{
    return r ? r->errmsg : last_err;
}

const char *
replica_site(const struct replica *r)
{
    return r->site;
}

const uint8_t *
replica_device_key(const struct replica *r)
{
    return r->key;
}

struct cver
cver_get(const uint8_t *v, size_t v_len, uint32_t k)
{
    struct cver c = {0, 0};
    size_t off = (size_t)k * REPLICA_CELL_BYTES;
    int i;

    if (v == NULL || off + REPLICA_CELL_BYTES > v_len)
        return c;
    for (i = 0; i < 8; i++)
        c.hlc = (c.hlc << 8) | v[off + (size_t)i];
    c.dev = (uint16_t)((v[off + 8] << 8) | v[off + 9]);
    return c;
}

void
cver_put(uint8_t *v, uint32_t k, struct cver c)
{
    size_t off = (size_t)k * REPLICA_CELL_BYTES;
    int i;

    for (i = 7; i >= 0; i--) {
        v[off + (size_t)i] = (uint8_t)c.hlc;
        c.hlc >>= 8;
    }
    v[off + 8] = (uint8_t)(c.dev >> 8);
    v[off + 9] = (uint8_t)c.dev;
}
