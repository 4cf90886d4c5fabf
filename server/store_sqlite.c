/*
 * store_sqlite.c: the embedded SQLite backend of the store (DESIGN.md §6).
 *
 * One connection, opened on the calling thread by store_sqlite_open and
 * owned by the store thread afterwards (store_job.c).  The database runs in
 * WAL mode with synchronous=FULL, so a COMMIT returns only once the WAL is
 * fsync'd: that is what makes an acknowledgement durable.
 *
 * Tables (PRAGMA user_version = SQ_FORMAT):
 *
 *   kzs_cs(id, scope, server_seq, author, author_seq, sig, hdr, body)
 *       one row per stored changeset; UNIQUE (scope, server_seq) serves
 *       pulls and the scope head (MAX), UNIQUE (scope, author, author_seq)
 *       serves the idempotency lookup and the author's last seq (MAX).
 *       Big blobs come last so the other columns stay on the main page.
 *   kzs_roster(id = 1, version, bytes)
 *       the latest roster only, opaque.
 *   kzs_key(id AUTOINCREMENT, recipient, bytes)
 *       key envelopes, opaque; ids never reused; index (recipient, id).
 *
 * No separate head or last-seq tables: the MAX over a unique index is a
 * single b-tree seek and can never disagree with the rows themselves.
 *
 * A batch (sq_run_batch): BEGIN IMMEDIATE; for each write, SAVEPOINT j …
 * RELEASE j, or ROLLBACK TO j on failure, so a refused job leaves nothing
 * behind; COMMIT; then the reads, in one read transaction, so they see
 * only committed rows.  SQLite may roll back a whole transaction by itself
 * on some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM, SQLITE_BUSY);
 * sqlite3_get_autocommit() tells, and then every write of the batch fails.
 */
#include <string.h>

#include <sqlite3.h>

#include "alloc.h"
#include "err.h"
#include "log.h"

#include "store.h"
#include "store_job.h"

#define SQ_FORMAT 1
#define SQ_STR_(x) #x
#define SQ_STR(x) SQ_STR_(x)

static const char sq_schema[] =
    "CREATE TABLE IF NOT EXISTS kzs_cs("
    " id INTEGER PRIMARY KEY,"
    " scope TEXT NOT NULL,"
    " server_seq INTEGER NOT NULL,"
    " author BLOB NOT NULL,"
    " author_seq INTEGER NOT NULL,"
    " sig BLOB NOT NULL,"
    " hdr BLOB NOT NULL,"
    " body BLOB NOT NULL,"
    " UNIQUE (scope, server_seq),"
    " UNIQUE (scope, author, author_seq));"
    "CREATE TABLE IF NOT EXISTS kzs_roster("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " version INTEGER NOT NULL,"
    " bytes BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS kzs_key("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " recipient BLOB NOT NULL,"
    " bytes BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS kzs_key_recipient ON kzs_key(recipient, id);";

/* The prepared statements, by index. */
enum {
    SQ_BEGIN,
    SQ_BEGIN_READ,
    SQ_COMMIT,
    SQ_ROLLBACK,
    SQ_SAVEPOINT,
    SQ_RELEASE,
    SQ_ROLLBACK_TO,
    SQ_FIND,
    SQ_AUTHOR_LAST,
    SQ_HEAD,
    SQ_INSERT,
    SQ_PULL,
    SQ_ROSTER_GET,
    SQ_ROSTER_PUT,
    SQ_KEY_PUT,
    SQ_KEYS_GET,
    SQ_N
};

static const char *const sq_sql[SQ_N] = {
    [SQ_BEGIN] = "BEGIN IMMEDIATE",
    [SQ_BEGIN_READ] = "BEGIN",
    [SQ_COMMIT] = "COMMIT",
    [SQ_ROLLBACK] = "ROLLBACK",
    [SQ_SAVEPOINT] = "SAVEPOINT job",
    [SQ_RELEASE] = "RELEASE job",
    [SQ_ROLLBACK_TO] = "ROLLBACK TO job",
    [SQ_FIND] = "SELECT server_seq, sig, hdr, body FROM kzs_cs"
                " WHERE scope = ?1 AND author = ?2 AND author_seq = ?3",
    [SQ_AUTHOR_LAST] = "SELECT MAX(author_seq) FROM kzs_cs"
                       " WHERE scope = ?1 AND author = ?2",
    [SQ_HEAD] = "SELECT MAX(server_seq) FROM kzs_cs WHERE scope = ?1",
    [SQ_INSERT] = "INSERT INTO kzs_cs(scope, server_seq, author, author_seq,"
                  " sig, hdr, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [SQ_PULL] = "SELECT server_seq, author, author_seq, sig, hdr, body"
                " FROM kzs_cs WHERE scope = ?1 AND server_seq > ?2"
                " ORDER BY server_seq LIMIT ?3",
    [SQ_ROSTER_GET] = "SELECT version, bytes FROM kzs_roster WHERE id = 1",
    [SQ_ROSTER_PUT] = "INSERT OR REPLACE INTO kzs_roster(id, version, bytes)"
                      " VALUES (1, ?1, ?2)",
    [SQ_KEY_PUT] = "INSERT INTO kzs_key(recipient, bytes) VALUES (?1, ?2)",
    [SQ_KEYS_GET] = "SELECT id, recipient, bytes FROM kzs_key"
                    " WHERE id > ?1 AND (?2 IS NULL OR recipient = ?2)"
                    " ORDER BY id LIMIT ?3",
};

/* The backend state; the store thread's alone once the store runs. */
struct sq {
    sqlite3 *db;            /* the connection; owned */
    sqlite3_stmt *st[SQ_N]; /* prepared statements; owned */
};

static int sq_run_batch(void *be, struct store_job *jobs);
static void sq_close(void *be);

static const struct store_ops sq_ops = {
    .name = "sqlite",
    .run_batch = sq_run_batch,
    .close = sq_close,
};

/* ---- helpers ----------------------------------------------------------- */

/* sq_code(rc): the -KZ_E… code for the SQLite result ${rc}. */
static int
sq_code(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM: return -KZ_ENOMEM;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM: return -KZ_EIO;
    default: return -KZ_EDB;
    }
}

/*
 * sq_err(q, rc, what): maps the SQLite result ${rc} to -KZ_E… and logs
 * one line (no payload: only what failed and SQLite's message).
 */
static int
sq_err(struct sq *q, int rc, const char *what)
{
    kz_log_error("store(sqlite): %s: %s (%s)", what,
                 q->db != NULL ? sqlite3_errmsg(q->db) : "no connection",
                 sqlite3_errstr(rc));
    return sq_code(rc);
}

/* sq_reset(st): readies ${st} for the next use and drops its bindings. */
static void
sq_reset(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* sq_exec(q, i): steps the row-less statement ${i} once. */
static int
sq_exec(struct sq *q, int i)
{
    int rc = sqlite3_step(q->st[i]);

    sqlite3_reset(q->st[i]);
    if (rc != SQLITE_DONE)
        return sq_err(q, rc, sq_sql[i]);
    return 0;
}

/* sq_dup(st, col, out, len): copies a blob column; NULL/empty is -KZ_EDB. */
static int
sq_dup(sqlite3_stmt *st, int col, uint8_t **out, size_t *len)
{
    const void *p = sqlite3_column_blob(st, col);
    int n = sqlite3_column_bytes(st, col);

    if (p == NULL || n <= 0)
        return -KZ_EDB;
    *out = kz_malloc((size_t)n);
    if (*out == NULL)
        return -KZ_ENOMEM;
    memcpy(*out, p, (size_t)n);
    *len = (size_t)n;
    return 0;
}

/* sq_fixed(st, col, out, len): a blob column of exactly ${len} bytes. */
static int
sq_fixed(sqlite3_stmt *st, int col, uint8_t *out, size_t len)
{
    const void *p = sqlite3_column_blob(st, col);

    if (p == NULL || (size_t)sqlite3_column_bytes(st, col) != len)
        return -KZ_EDB;
    memcpy(out, p, len);
    return 0;
}

/* sq_same(st, col, p, len): 1 if the blob column equals ${p}. */
static int
sq_same(sqlite3_stmt *st, int col, const uint8_t *p, size_t len)
{
    const void *c = sqlite3_column_blob(st, col);

    return (size_t)sqlite3_column_bytes(st, col) == len && c != NULL &&
           memcmp(c, p, len) == 0;
}

/* sq_max(q, i, out): the single integer of statement ${i}; NULL is 0. */
static int
sq_max(struct sq *q, int i, uint64_t *out)
{
    sqlite3_stmt *st = q->st[i];
    int rc = sqlite3_step(st);

    if (rc != SQLITE_ROW) {
        sq_reset(st);
        return sq_err(q, rc, sq_sql[i]);
    }
    *out = (uint64_t)sqlite3_column_int64(st, 0);
    sq_reset(st);
    return 0;
}

/* sq_clamp(v): ${v} as an SQLite integer (which is signed). */
static sqlite3_int64
sq_clamp(uint64_t v)
{
    return v > INT64_MAX ? INT64_MAX : (sqlite3_int64)v;
}

/* ---- writes ------------------------------------------------------------ */

/* sq_append(q, j): the idempotency check, the gap check, the insert. */
static int
sq_append(struct sq *q, struct store_job *j)
{
    const struct store_cs *cs = &j->u.append.cs;
    struct store_append_res *res = &j->u.append.res;
    sqlite3_stmt *st;
    uint64_t last, head;
    int rc;

    st = q->st[SQ_FIND];
    sqlite3_bind_text(st, 1, cs->scope, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, cs->author, KZ_KEY_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)cs->author_seq);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        res->server_seq = (uint64_t)sqlite3_column_int64(st, 0);
        res->duplicate = sq_same(st, 1, cs->sig, STORE_SIG_LEN) &&
                         sq_same(st, 2, cs->hdr, cs->hdr_len) &&
                         sq_same(st, 3, cs->body, cs->body_len);
        sq_reset(st);
        return res->duplicate ? 0 : -KZ_EEXIST;
    }
    sq_reset(st);
    if (rc != SQLITE_DONE)
        return sq_err(q, rc, "find changeset");

    st = q->st[SQ_AUTHOR_LAST];
    sqlite3_bind_text(st, 1, cs->scope, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, cs->author, KZ_KEY_LEN, SQLITE_STATIC);
    rc = sq_max(q, SQ_AUTHOR_LAST, &last);
    if (rc != 0)
        return rc;
    if (cs->author_seq != last + 1) {
        res->expected_seq = last + 1;
        return -KZ_ESEQ;
    }

    sqlite3_bind_text(q->st[SQ_HEAD], 1, cs->scope, -1, SQLITE_STATIC);
    rc = sq_max(q, SQ_HEAD, &head);
    if (rc != 0)
        return rc;

    st = q->st[SQ_INSERT];
    sqlite3_bind_text(st, 1, cs->scope, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)(head + 1));
    sqlite3_bind_blob(st, 3, cs->author, KZ_KEY_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)cs->author_seq);
    sqlite3_bind_blob(st, 5, cs->sig, STORE_SIG_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(st, 6, cs->hdr, (int)cs->hdr_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 7, cs->body, (int)cs->body_len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sq_reset(st);
    if (rc != SQLITE_DONE)
        return sq_err(q, rc, "insert changeset");
    res->server_seq = head + 1;
    return 0;
}

/* sq_roster_put(q, j): replaces the roster if the version grows. */
static int
sq_roster_put(struct sq *q, struct store_job *j)
{
    sqlite3_stmt *st = q->st[SQ_ROSTER_GET];
    uint64_t cur = 0;
    int rc;

    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        cur = (uint64_t)sqlite3_column_int64(st, 0);
    sq_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_err(q, rc, "read roster version");
    j->u.roster_put.stored = cur;
    if (j->u.roster_put.version <= cur)
        return -KZ_EVERSION;

    st = q->st[SQ_ROSTER_PUT];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)j->u.roster_put.version);
    sqlite3_bind_blob(st, 2, j->u.roster_put.bytes, (int)j->u.roster_put.len,
                      SQLITE_STATIC);
    rc = sqlite3_step(st);
    sq_reset(st);
    if (rc != SQLITE_DONE)
        return sq_err(q, rc, "store roster");
    j->u.roster_put.stored = j->u.roster_put.version;
    return 0;
}

/* sq_keys_put(q, j): appends the envelopes (the savepoint makes it all). */
static int
sq_keys_put(struct sq *q, struct store_job *j)
{
    sqlite3_stmt *st = q->st[SQ_KEY_PUT];
    const struct store_key *k;
    uint32_t i;
    int rc;

    for (i = 0; i < j->u.keys_put.n; i++) {
        k = &j->u.keys_put.keys[i];
        sqlite3_bind_blob(st, 1, k->recipient, KZ_KEY_LEN, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, k->bytes, (int)k->len, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sq_reset(st);
        if (rc != SQLITE_DONE)
            return sq_err(q, rc, "store key envelope");
    }
    j->u.keys_put.last_id = (uint64_t)sqlite3_last_insert_rowid(q->db);
    return 0;
}

/*
 * sq_write(q, j, lost): runs one write inside its own savepoint.  Sets
 * *${lost} if the enclosing transaction is gone (SQLite rolled it back, or
 * the savepoint itself failed): the caller then fails the whole batch.
 */
static int
sq_write(struct sq *q, struct store_job *j, int *lost)
{
    int rc;

    rc = sq_exec(q, SQ_SAVEPOINT);
    if (rc != 0)
        goto lost;
    switch (j->kind) {
    case STORE_JOB_APPEND: rc = sq_append(q, j); break;
    case STORE_JOB_ROSTER_PUT: rc = sq_roster_put(q, j); break;
    case STORE_JOB_KEYS_PUT: rc = sq_keys_put(q, j); break;
    default: rc = -KZ_EINVAL; break;
    }
    if (sqlite3_get_autocommit(q->db))
        goto lost;
    if (rc != 0 && sq_exec(q, SQ_ROLLBACK_TO) != 0)
        goto lost;
    if (sq_exec(q, SQ_RELEASE) != 0)
        goto lost;
    return rc;

lost:
    *lost = 1;
    return rc != 0 ? rc : -KZ_EDB;
}

/* ---- reads ------------------------------------------------------------- */

/* sq_pull(q, j): a page of a scope, bounded by items and bytes. */
static int
sq_pull(struct sq *q, struct store_job *j)
{
    struct store_pull_res *res = &j->u.pull.res;
    struct store_item *it, *grown;
    sqlite3_stmt *st;
    uint64_t head, last = j->u.pull.after_seq;
    size_t total = 0, size, cap = 0;
    int rc;

    sqlite3_bind_text(q->st[SQ_HEAD], 1, j->u.pull.scope, -1, SQLITE_STATIC);
    rc = sq_max(q, SQ_HEAD, &head);
    if (rc != 0)
        return rc;
    res->head_seq = head;

    st = q->st[SQ_PULL];
    sqlite3_bind_text(st, 1, j->u.pull.scope, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, sq_clamp(j->u.pull.after_seq));
    sqlite3_bind_int64(st, 3, (sqlite3_int64)j->u.pull.max_items);
    while (j->u.pull.max_items > 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        size = (size_t)sqlite3_column_bytes(st, 4) +
               (size_t)sqlite3_column_bytes(st, 5) + STORE_SIG_LEN;
        if (res->n > 0 &&
            (size > j->u.pull.max_bytes || total > j->u.pull.max_bytes - size))
            break;
        if (res->n == cap) {
            cap = cap == 0 ? KZ_MIN(j->u.pull.max_items, 64u) : cap * 2;
            grown = kz_reallocarray(res->items, cap, sizeof(*grown));
            if (grown == NULL) {
                rc = -KZ_ENOMEM;
                goto out;
            }
            res->items = grown;
        }
        it = &res->items[res->n];
        memset(it, 0, sizeof(*it));
        res->n++; /* counted now so that job_free frees a partial item */
        it->server_seq = (uint64_t)sqlite3_column_int64(st, 0);
        it->author_seq = (uint64_t)sqlite3_column_int64(st, 2);
        rc = sq_fixed(st, 1, it->author, KZ_KEY_LEN);
        if (rc == 0)
            rc = sq_fixed(st, 3, it->sig, STORE_SIG_LEN);
        if (rc == 0)
            rc = sq_dup(st, 4, &it->hdr, &it->hdr_len);
        if (rc == 0)
            rc = sq_dup(st, 5, &it->body, &it->body_len);
        if (rc != 0)
            goto out;
        total += size;
        last = it->server_seq;
    }
    if (j->u.pull.max_items > 0 && rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = sq_err(q, rc, "pull");
        goto out;
    }
    rc = 0;
    res->more = last < head;

out:
    sq_reset(st);
    return rc;
}

/* sq_roster_get(q, j): the stored roster, or -KZ_ENOENT. */
static int
sq_roster_get(struct sq *q, struct store_job *j)
{
    sqlite3_stmt *st = q->st[SQ_ROSTER_GET];
    int rc;

    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        j->u.roster_get.version = (uint64_t)sqlite3_column_int64(st, 0);
        rc = sq_dup(st, 1, &j->u.roster_get.bytes, &j->u.roster_get.len);
    } else if (rc == SQLITE_DONE) {
        rc = -KZ_ENOENT;
    } else {
        rc = sq_err(q, rc, "read roster");
    }
    sq_reset(st);
    return rc;
}

/* sq_keys_get(q, j): a page of envelopes; one extra row tells `more`. */
static int
sq_keys_get(struct sq *q, struct store_job *j)
{
    struct store_keys_res *res = &j->u.keys_get.res;
    sqlite3_stmt *st = q->st[SQ_KEYS_GET];
    struct store_key *k, *grown;
    size_t cap = 0;
    int rc;

    sqlite3_bind_int64(st, 1, sq_clamp(j->u.keys_get.after_id));
    if (!j->u.keys_get.any_recipient)
        sqlite3_bind_blob(st, 2, j->u.keys_get.recipient, KZ_KEY_LEN,
                          SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)j->u.keys_get.max_items + 1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (res->n == j->u.keys_get.max_items) {
            res->more = 1;
            break;
        }
        if (res->n == cap) {
            cap = cap == 0 ? KZ_MIN(j->u.keys_get.max_items, 64u) : cap * 2;
            grown = kz_reallocarray(res->keys, cap, sizeof(*grown));
            if (grown == NULL) {
                rc = -KZ_ENOMEM;
                goto out;
            }
            res->keys = grown;
        }
        k = &res->keys[res->n];
        memset(k, 0, sizeof(*k));
        res->n++;
        k->id = (uint64_t)sqlite3_column_int64(st, 0);
        rc = sq_fixed(st, 1, k->recipient, KZ_KEY_LEN);
        if (rc == 0)
            rc = sq_dup(st, 2, &k->bytes, &k->len);
        if (rc != 0)
            goto out;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = sq_err(q, rc, "read key envelopes");
        goto out;
    }
    rc = 0;

out:
    sq_reset(st);
    return rc;
}

/* sq_read(q, j): dispatches one read job. */
static int
sq_read(struct sq *q, struct store_job *j)
{
    switch (j->kind) {
    case STORE_JOB_PULL: return sq_pull(q, j);
    case STORE_JOB_ROSTER_GET: return sq_roster_get(q, j);
    case STORE_JOB_KEYS_GET: return sq_keys_get(q, j);
    default: return -KZ_EINVAL;
    }
}

/* ---- the batch --------------------------------------------------------- */

/* fail_writes(jobs, rc): every write of ${jobs} failed with ${rc}. */
static void
fail_writes(struct store_job *jobs, int rc)
{
    struct store_job *j;

    for (j = jobs; j != NULL; j = j->next) {
        if (!store__job_is_write(j))
            continue;
        j->status = rc;
        if (j->kind == STORE_JOB_APPEND)
            memset(&j->u.append.res, 0, sizeof(j->u.append.res));
    }
}

/*
 * sq_run_batch(be, jobs): the writes of ${jobs} in one transaction, then
 * the reads; see struct store_ops in store_job.h for the contract.
 */
static int
sq_run_batch(void *be, struct store_job *jobs)
{
    struct sq *q = be;
    struct store_job *j;
    int writes = 0, reads = 0, lost = 0, rc = 0, in_read;

    for (j = jobs; j != NULL; j = j->next) {
        if (store__job_is_write(j))
            writes++;
        else
            reads++;
    }

    if (writes > 0) {
        rc = sq_exec(q, SQ_BEGIN);
        for (j = jobs; rc == 0 && j != NULL; j = j->next) {
            if (store__job_is_write(j))
                j->status = sq_write(q, j, &lost);
            if (lost)
                rc = j->status;
        }
        if (rc == 0)
            rc = sq_exec(q, SQ_COMMIT);
        if (rc != 0) {
            if (!sqlite3_get_autocommit(q->db))
                (void)sq_exec(q, SQ_ROLLBACK);
            fail_writes(jobs, rc);
        }
    }

    if (reads > 0) {
        /* One read transaction: every read of the batch sees one state. */
        in_read = sq_exec(q, SQ_BEGIN_READ) == 0;
        for (j = jobs; j != NULL; j = j->next) {
            if (!store__job_is_write(j))
                j->status = sq_read(q, j);
        }
        if (in_read && !sqlite3_get_autocommit(q->db))
            (void)sq_exec(q, SQ_COMMIT);
    }

    if (writes == 0)
        return 0;
    return rc == 0 ? 1 : rc;
}

/* sq_close(be): finalizes the statements and closes the connection. */
static void
sq_close(void *be)
{
    struct sq *q = be;
    int i, rc;

    if (q == NULL)
        return;
    for (i = 0; i < SQ_N; i++)
        sqlite3_finalize(q->st[i]);
    rc = sqlite3_close(q->db);
    if (rc != SQLITE_OK)
        kz_log_error("store(sqlite): close: %s", sqlite3_errstr(rc));
    kz_free(q);
}

/* ---- open -------------------------------------------------------------- */

/* sq_setup(q, busy_ms): pragmas, schema and statements of a new handle. */
static int
sq_setup(struct sq *q, uint32_t busy_ms)
{
    sqlite3_stmt *st = NULL;
    const unsigned char *mode;
    int rc, version, wal;

    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_timeout(q->db, (int)KZ_MIN(busy_ms, (uint32_t)INT32_MAX));

    rc = sqlite3_prepare_v2(q->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return sq_err(q, rc, "PRAGMA journal_mode=WAL");
    }
    mode = sqlite3_column_text(st, 0);
    wal = mode != NULL && strcmp((const char *)mode, "wal") == 0;
    sqlite3_finalize(st);
    if (!wal) {
        kz_log_error("store(sqlite): the database cannot use WAL mode");
        return -KZ_EDB;
    }
    rc = sqlite3_exec(q->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sq_err(q, rc, "PRAGMA synchronous=FULL");

    rc = sqlite3_prepare_v2(q->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return sq_err(q, rc, "PRAGMA user_version");
    }
    version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version > SQ_FORMAT) {
        kz_log_error("store(sqlite): database format %d is newer than %d",
                     version, SQ_FORMAT);
        return -KZ_EDB;
    }
    rc = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(q->db, sq_schema, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(q->db, "PRAGMA user_version = " SQ_STR(SQ_FORMAT),
                          NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = sq_err(q, rc, "create tables");
        if (!sqlite3_get_autocommit(q->db))
            (void)sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }

    for (version = 0; version < SQ_N; version++) {
        rc = sqlite3_prepare_v3(q->db, sq_sql[version], -1,
                                SQLITE_PREPARE_PERSISTENT, &q->st[version],
                                NULL);
        if (rc != SQLITE_OK)
            return sq_err(q, rc, sq_sql[version]);
    }
    return 0;
}

/**
 * store_sqlite_open(out, loop, path, opts): see store.h.
 */
int
store_sqlite_open(struct store **out, uv_loop_t *loop, const char *path,
                  const struct store_opts *opts)
{
    struct sq *q;
    uint32_t busy_ms = STORE_DEFAULT_BUSY_MS;
    int rc;

    if (out == NULL || loop == NULL || path == NULL) {
        rc = -KZ_EINVAL;
        goto err0;
    }
    if (opts != NULL && opts->busy_timeout_ms != 0)
        busy_ms = opts->busy_timeout_ms;
    q = kz_calloc(1, sizeof(*q));
    if (q == NULL) {
        rc = -KZ_ENOMEM;
        goto err0;
    }
    rc = sqlite3_open_v2(
        path, &q->db,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        kz_log_error("store(sqlite): cannot open %s: %s", path,
                     q->db != NULL ? sqlite3_errmsg(q->db)
                                   : sqlite3_errstr(rc));
        rc = sq_code(rc);
        goto err1;
    }
    rc = sq_setup(q, busy_ms);
    if (rc != 0)
        goto err1;
    rc = store__new(out, loop, opts, &sq_ops, q);
    if (rc != 0)
        goto err1;
    return 0;

err1:
    sq_close(q);
err0:
    return rc;
}
