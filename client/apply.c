/*
 * apply.c: merging a received changeset into the replica.
 *
 * The unit of merge is the cell (table, key, column); the row's existence is
 * cell 0.  A cell's version is (hlc, author); the greater version wins:
 * hlc first, then the author's 32-byte key, compared as bytes (the same on
 * every replica).  So apply is commutative, associative and idempotent.
 *
 * Conflicts are exact, not guessed from clocks: each incoming cell carries
 * its base, the version of that cell its author had seen.  The incoming cell
 * is concurrent with the local one when the local version is neither its
 * base nor older than its base.  Both values and both versions go to
 * kz_conflict, whichever wins.  This is exact as long as each scope is
 * delivered in an order that respects causality, which the server's
 * per-scope order gives (PROTOCOL.md); an author's changesets are applied
 * in author_seq order, and a gap is refused.
 *
 * Nothing received is lost: a cell that cannot be applied yet — a table or
 * column this replica does not have, a local constraint that refuses the
 * row, an hlc beyond now + skew, an update for a row that has not arrived,
 * a write outside the author's scope — is kept in kz_quarantine with the
 * reason, and tried again after every apply and after migrations.
 *
 * Remote changes are never recaptured as local ones: inside its
 * transaction the apply drops the capture triggers of the tables it writes
 * and puts them back before it commits (track__capture_pause), drops what
 * other capture triggers logged meanwhile, and the write rules are off
 * (kz_state.applying = 1); the schema's own triggers still fire
 * (replica__set_applying).  One transaction per changeset, or per pulled
 * batch of changesets (replica_apply_many).
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "err.h"
#include "hex.h"

#include "replica_int.h"

#define MAX_CELLS (REPLICA_MAX_COLS + 1 + 64)

/* One incoming cell, resolved against local tables. */
struct icell {
    int32_t k;             /* local cell index, -1 = unknown column */
    struct kz_str col;     /* column name as sent (for quarantine) */
    uint32_t flags;        /* KZ_CELL_RETRACT … */
    struct kz_value value; /* borrowed */
    struct cver ver;       /* incoming version */
    struct cver base;      /* its base */
    const char *scope;     /* scope it came in */
    int waiting;           /* retried "row deleted" cell (see below) */
    int64_t qid;           /* its kz_quarantine id when tried again, or 0 */
    uint8_t *kept;         /* retry_row: set when it stays in quarantine */
};

/* A delete that waits for the rows here that refer to its row. */
#define HELD_REASON "FOREIGN KEY constraint failed: rows here still refer to it"

/* Per-changeset context. */
struct actx {
    struct replica *r;       /* borrowed */
    const char *scope;       /* scope of the changeset */
    char site[64];           /* site of a site:/private: scope */
    int reads_private;       /* this replica holds private:site */
    int is_site_scope;       /* scope is site:… */
    struct apply_stats *st;  /* never NULL */
    sqlite3_stmt *get_clock; /* cached statements */
    sqlite3_stmt *put_clock;
    sqlite3_stmt *quar;
    sqlite3_stmt *conf;
    sqlite3_stmt *touch; /* rows written: temp.kz_touched */
    uint64_t now_ms;     /* wall clock at the start of the apply */
    char owner_id[128];  /* site(id) of `site`, "" if unknown */
    int fk_check;        /* apply_row holds a delete rows here refer to */
    uint32_t fk_refused; /* writes an immediate foreign key refused */
    const struct tracked *held_t; /* fk_held's statement is for this table */
    sqlite3_stmt *held_st;
    sqlite3_stmt *requar; /* a cell tried again keeps its quarantine row */
};

/* A delete in a table foreign keys refer to, put off to the end of its
 * changeset (apply_one): the rows referring to it may be deleted later in
 * the same changeset. */
struct held {
    uint32_t table;                         /* body table index */
    struct kz_value pk[KZ_LIM_PK_COLS_MAX]; /* borrowed from the body */
    uint32_t n_pk;
    struct icell *cells; /* owned copy; values borrowed from the body */
    uint32_t n;
    int done;
};

static int
bind_kz(sqlite3_stmt *st, int i, const struct kz_value *v)
{
    switch (v->type) {
    case KZ_V_INT: return sqlite3_bind_int64(st, i, v->i);
    case KZ_V_REAL: return sqlite3_bind_double(st, i, v->d);
    case KZ_V_TEXT:
        return sqlite3_bind_text64(st, i, (const char *)v->p, v->len,
                                   SQLITE_STATIC, SQLITE_UTF8);
    case KZ_V_BLOB:
        return sqlite3_bind_blob64(st, i, v->p, v->len, SQLITE_STATIC);
    default: return sqlite3_bind_null(st, i);
    }
}

/*
 * The kz_clock key of a row: the key value itself (bound straight from the
 * changeset), or for a composite key the JSON array of track__key_sql, made
 * by the table's cached statement t->key_st, whose result row stays valid
 * until ckey_done().  Bound with bind_ckey().
 */
struct ckey {
    const struct kz_value *v; /* single-column key, borrowed; or NULL */
    sqlite3_value *sv;        /* else the key as an SQLite value, borrowed */
    sqlite3_stmt *st;         /* statement holding sv, reset by ckey_done */
    int unkeyable;            /* no key can be kept: sv only shows the parts */
};

static int
clock_key(struct replica *r, struct tracked *t, const struct kz_value *pk,
          uint32_t n_pk, struct ckey *out)
{
    uint32_t i;
    int rc;

    memset(out, 0, sizeof(*out));
    if (n_pk != t->n_pk)
        return -KZ_EMALFORMED;
    if (n_pk == 1) {
        out->v = &pk[0];
        return 0;
    }
    if (t->key_st == NULL && (rc = track__key_stmt(r, n_pk, &t->key_st)))
        return rc;
    sqlite3_reset(t->key_st);
    for (i = 0; i < n_pk; i++)
        bind_kz(t->key_st, (int)i + 1, &pk[i]);
    rc = sqlite3_step(t->key_st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(t->key_st);
        return replica__dberr(r, rc, "key");
    }
    /* A key our capture would have refused (track.c): shown, not kept. */
    out->unkeyable = !sqlite3_column_int(t->key_st, 1);
    out->sv = sqlite3_column_value(t->key_st, out->unkeyable ? 2 : 0);
    out->st = t->key_st;
    return 0;
}

static void
ckey_done(struct ckey *k)
{
    if (k->st)
        sqlite3_reset(k->st);
    memset(k, 0, sizeof(*k));
}

static int
bind_ckey(sqlite3_stmt *st, int i, const struct ckey *k)
{
    return k->v ? bind_kz(st, i, k->v) : sqlite3_bind_value(st, i, k->sv);
}

/* A cell kept in quarantine; a conflict, recorded once (the same cell
 * tried again meets the same versions). */
static const char quar_sql[] =
    "INSERT INTO kz_quarantine(at, reason, scope, tbl, pk, col, flags,"
    " value, hlc, author, base_hlc, base_author) VALUES"
    " (strftime('%Y-%m-%dT%H:%M:%fZ','now'), ?, ?, ?, ?, ?, ?, ?, ?, ?,"
    " ?, ?)";
static const char conf_sql[] =
    "INSERT INTO kz_conflict(at, tbl, pk, col, local_value, local_hlc,"
    " local_author, remote_value, remote_hlc, remote_author, winner)"
    " SELECT strftime('%Y-%m-%dT%H:%M:%fZ','now'), ?1, ?2, ?3, ?4, ?5,"
    " ?6, ?7, ?8, ?9, ?10 WHERE NOT EXISTS (SELECT 1 FROM kz_conflict"
    " WHERE tbl = ?1 AND pk = ?2 AND col = ?3 AND remote_hlc = ?8 AND"
    " remote_author = ?9 AND local_hlc IS ?5 AND local_author IS ?6)";

static int
quarantine(struct actx *a, const char *reason, const char *tbl,
           const struct ckey *ckey, const struct icell *c)
{
    struct replica *r = a->r;
    const uint8_t *ak = replica__dev_key(r, c->ver.dev);
    const uint8_t *bk = c->base.hlc ? replica__dev_key(r, c->base.dev) : NULL;
    sqlite3_stmt *st;
    int rc;

    if (c->kept != NULL) {
        /* Tried again from quarantine (retry_row) and refused again: it
         * keeps its row there, with the new reason and scope.  Deleting
         * and writing every cell of every row refused again, after every
         * changeset, was most of what such rows cost (bench_engine part
         * i). */
        *c->kept = 1;
        if (a->requar == NULL &&
            (rc = sqlite3_prepare_v2(r->db,
                                     "UPDATE kz_quarantine SET reason = ?1,"
                                     " scope = ?2 WHERE id = ?3 AND"
                                     " (reason <> ?1 OR scope <> ?2)",
                                     -1, &a->requar, NULL)) != SQLITE_OK)
            return replica__dberr(r, rc, "quarantine");
        st = a->requar;
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, reason, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, c->scope, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, c->qid);
        goto step;
    }
    if (a->quar == NULL &&
        (rc = sqlite3_prepare_v2(r->db, quar_sql, -1, &a->quar, NULL)) !=
            SQLITE_OK)
        return replica__dberr(r, rc, "quarantine");
    st = a->quar;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, reason, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, c->scope, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, tbl, -1, SQLITE_TRANSIENT);
    bind_ckey(st, 4, ckey);
    if (c->k == 0)
        sqlite3_bind_text(st, 5, "", -1, SQLITE_STATIC);
    else
        sqlite3_bind_text64(st, 5, c->col.p, c->col.len, SQLITE_TRANSIENT,
                            SQLITE_UTF8);
    sqlite3_bind_int64(st, 6, c->flags);
    bind_kz(st, 7, &c->value);
    sqlite3_bind_int64(st, 8, (int64_t)c->ver.hlc);
    sqlite3_bind_blob(st, 9, ak, KZ_KEY_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 10, (int64_t)c->base.hlc);
    if (bk)
        sqlite3_bind_blob(st, 11, bk, KZ_KEY_LEN, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 11);
step:
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return replica__dberr(r, rc, "quarantine");
    if (strcmp(reason, REPLICA_Q_WAITING) == 0)
        a->st->waiting++;
    else
        a->st->quarantined++;
    return 0;
}

static int
record_conflict(struct actx *a, const struct tracked *t,
                const struct ckey *ckey, const struct icell *c,
                struct cver local, sqlite3_value *local_value, int local_alive,
                int remote_wins)
{
    struct replica *r = a->r;
    sqlite3_stmt *st;
    const uint8_t *lk = replica__dev_key(r, local.dev);
    const uint8_t *rk = replica__dev_key(r, c->ver.dev);
    int rc;

    if (a->conf == NULL &&
        (rc = sqlite3_prepare_v2(r->db, conf_sql, -1, &a->conf, NULL)) !=
            SQLITE_OK)
        return replica__dberr(r, rc, "conflict");
    st = a->conf;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
    bind_ckey(st, 2, ckey);
    sqlite3_bind_text(st, 3, c->k == 0 ? "(row)" : t->cols[c->k - 1], -1,
                      SQLITE_STATIC);
    if (c->k == 0)
        sqlite3_bind_text(st, 4, local_alive ? "present" : "deleted", -1,
                          SQLITE_STATIC);
    else if (local_value)
        sqlite3_bind_value(st, 4, local_value);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_int64(st, 5, (int64_t)local.hlc);
    if (lk)
        sqlite3_bind_blob(st, 6, lk, KZ_KEY_LEN, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 6);
    if (c->k == 0) {
        int alive = !(c->flags & KZ_CELL_RETRACT) && c->value.i == 1;
        sqlite3_bind_text(st, 7, alive ? "present" : "deleted", -1,
                          SQLITE_STATIC);
    } else {
        bind_kz(st, 7, &c->value);
    }
    sqlite3_bind_int64(st, 8, (int64_t)c->ver.hlc);
    sqlite3_bind_blob(st, 9, rk, KZ_KEY_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 10, remote_wins ? "remote" : "local", -1,
                      SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return replica__dberr(r, rc, "conflict");
    /* A cell retried from quarantine met the same versions before. */
    if (sqlite3_changes(r->db) > 0)
        a->st->conflicts++;
    return 0;
}

/* A prepared write for (op, column mask), cached per table. */
static int
write_stmt(struct replica *r, struct tracked *t, int op, uint64_t mask,
           sqlite3_stmt **out)
{
    struct wcache *w;
    sqlite3_str *q;
    char *sql;
    uint32_t i, k, n = 0;
    int rc;

    for (i = 0; i < KZ_ARRAY_SIZE(t->wc); i++) {
        if (t->wc[i].st && t->wc[i].op == op && t->wc[i].mask == mask) {
            *out = t->wc[i].st;
            sqlite3_reset(*out);
            return 0;
        }
    }
    q = sqlite3_str_new(r->db);
    if (op == 2) {
        sqlite3_str_appendf(q, "DELETE FROM \"%w\" WHERE ", t->name);
    } else if (op == 0) {
        sqlite3_str_appendf(q, "INSERT INTO \"%w\"(", t->name);
        for (i = 0; i < t->n_pk; i++)
            sqlite3_str_appendf(q, "%s\"%w\"", i ? ", " : "", t->pk[i]);
        for (k = 1; k <= t->n_cols; k++) {
            if (mask & (UINT64_C(1) << k)) {
                sqlite3_str_appendf(q, ", \"%w\"", t->cols[k - 1]);
                n++;
            }
        }
        sqlite3_str_appendall(q, ") VALUES (");
        for (i = 0; i < t->n_pk + n; i++)
            sqlite3_str_appendall(q, i ? ", ?" : "?");
        sqlite3_str_appendall(q, ")");
    } else {
        sqlite3_str_appendf(q, "UPDATE \"%w\" SET ", t->name);
        for (k = 1; k <= t->n_cols; k++) {
            if (mask & (UINT64_C(1) << k)) {
                sqlite3_str_appendf(q, "%s\"%w\" = ?", n ? ", " : "",
                                    t->cols[k - 1]);
                n++;
            }
        }
        sqlite3_str_appendall(q, " WHERE ");
    }
    if (op != 0) {
        for (i = 0; i < t->n_pk; i++)
            sqlite3_str_appendf(q, "%s\"%w\" = ?", i ? " AND " : "", t->pk[i]);
    }
    sql = sqlite3_str_finish(q);
    if (sql == NULL)
        return -KZ_ENOMEM;
    w = &t->wc[t->wc_next++ % KZ_ARRAY_SIZE(t->wc)];
    sqlite3_finalize(w->st);
    w->st = NULL;
    rc = sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &w->st,
                            NULL);
    sqlite3_free(sql);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "apply");
    w->op = op;
    w->mask = mask;
    *out = w->st;
    return 0;
}

/* Whether ${rc} of a write is a foreign key's refusal: an immediate key's
 * code, or ON DELETE RESTRICT's, which SQLite raises as a trigger's with
 * its own words (a guard trigger's RAISE is told apart by them). */
static int
fk_refusal(struct replica *r, int rc)
{
    return rc == SQLITE_CONSTRAINT_FOREIGNKEY ||
           (rc == SQLITE_CONSTRAINT_TRIGGER &&
            strcmp(sqlite3_errmsg(r->db), "FOREIGN KEY constraint failed") ==
                0);
}

/* Writes the winning cells (win[k], NULL where none) to the user's table.
 * Returns 0, or 1 when a local constraint refused the row, 2 when that was
 * an immediate foreign key (message in r->errmsg), or < 0. */
static int
write_row(struct replica *r, struct tracked *t, const struct kz_value *pk,
          int was_alive, int alive, const struct icell *const *win)
{
    sqlite3_stmt *st = NULL;
    uint64_t mask = 0;
    uint32_t i, k;
    int rc, op, p = 1, err;

    for (k = 1; k <= t->n_cols; k++) {
        if (win[k])
            mask |= UINT64_C(1) << k;
    }
    if (!was_alive && !alive)
        return 0;
    if (was_alive && !alive)
        op = 2;
    else if (!was_alive)
        op = 0;
    else if (mask == 0)
        return 0;
    else
        op = 1;
    if ((err = write_stmt(r, t, op, op == 2 ? 0 : mask, &st)))
        return err;
    if (op == 0) {
        for (i = 0; i < t->n_pk; i++)
            bind_kz(st, p++, &pk[i]);
    }
    if (op != 2) {
        for (k = 1; k <= t->n_cols; k++) {
            if (!win[k])
                continue;
            if (win[k]->flags & KZ_CELL_RETRACT)
                sqlite3_bind_null(st, p++);
            else
                bind_kz(st, p++, &win[k]->value);
        }
    }
    if (op != 0) {
        for (i = 0; i < t->n_pk; i++)
            bind_kz(st, p++, &pk[i]);
    }
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        int base = rc & 0xff;
        snprintf(r->errmsg, sizeof(r->errmsg), "%s", sqlite3_errmsg(r->db));
        sqlite3_reset(st);
        if (sqlite3_get_autocommit(r->db)) {
            /* RAISE(ROLLBACK) in a trigger, or ON CONFLICT ROLLBACK: the
             * apply's whole transaction is gone, and with it every step
             * before this one; nothing may be written after it. */
            char why[sizeof(r->errmsg)];
            int n;
            memcpy(why, r->errmsg, sizeof(why));
            n = snprintf(r->errmsg, sizeof(r->errmsg),
                         "the whole apply was rolled back (a trigger's "
                         "RAISE(ROLLBACK) or ON CONFLICT ROLLBACK on %.64s): ",
                         t->name);
            if (n > 0 && (size_t)n < sizeof(r->errmsg))
                snprintf(r->errmsg + n, sizeof(r->errmsg) - (size_t)n, "%.*s",
                         (int)(sizeof(r->errmsg) - (size_t)n - 1), why);
            return -KZ_EDB;
        }
        if (fk_refusal(r, rc))
            return 2;
        if (base == SQLITE_CONSTRAINT || base == SQLITE_MISMATCH)
            return 1;
        return replica__dberr(r, rc, "apply");
    }
    sqlite3_reset(st);
    return 0;
}

/* Writes a row's kz_clock entry: its versions ${v}, and the bases ${pb} to
 * send its dirty cells with (none when nothing is dirty). */
static int
clock_put(struct actx *a, const struct tracked *t, const struct ckey *ck,
          int alive, const uint8_t *v, size_t v_len, uint64_t dirty,
          const uint8_t *pb, size_t pb_len, uint64_t pub)
{
    sqlite3_stmt *st = a->put_clock;
    int rc;

    sqlite3_reset(st);
    sqlite3_bind_int(st, 1, t->id);
    bind_ckey(st, 2, ck);
    sqlite3_bind_int(st, 3, alive);
    sqlite3_bind_blob(st, 4, v, (int)v_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (int64_t)dirty);
    if (dirty && pb_len)
        sqlite3_bind_blob(st, 6, pb, (int)pb_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    sqlite3_bind_int64(st, 7, (int64_t)pub);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : replica__dberr(a->r, rc, "apply");
}

/* Empties the apply's notes of the changeset before (temp.kz_touched,
 * temp.kz_fk_undo), when it made any. */
static int
notes_clear(struct replica *r)
{
    r->fk_written = 0;
    if (!r->notes_used)
        return 0;
    r->notes_used = 0;
    return replica__exec(r, "DELETE FROM temp.kz_touched;"
                            " DELETE FROM temp.kz_fk_undo");
}

/* Notes a row this apply writes, the scope it came through, and whether it
 * was alive here before (${born} 0) or not. */
static int
touch(struct replica *r, sqlite3_stmt *st, int tbl, const struct ckey *ck,
      const char *scope, int born)
{
    int rc;

    r->notes_used = 1;
    sqlite3_reset(st);
    sqlite3_bind_int(st, 1, tbl);
    bind_ckey(st, 2, ck);
    sqlite3_bind_text(st, 3, scope, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, born);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : replica__dberr(r, rc, "apply");
}

static int
owner_k(const struct tracked *t)
{
    uint32_t k;

    for (k = 0; t->owner_col && k < t->n_cols; k++) {
        if (strcmp(t->cols[k], t->owner_col) == 0)
            return (int)k + 1;
    }
    return -1;
}

static int
value_is_text(const struct kz_value *v, const char *s)
{
    size_t n = strlen(s);

    return v->type == KZ_V_TEXT && v->len == n && memcmp(v->p, s, n) == 0;
}

/*
 * Applies the cells of one row of table ${t} (NULL: not a table of this
 * replica; ${tname} names it).  Refused cells go to quarantine; only a
 * database failure is returned as an error.
 */
static const struct cver cver_none;

/* Keeps what cell ${k} of a row here held before ${x} overwrites it (a
 * foreign key's column): its value ${val}, version, dirty and published
 * bits and the base it is to be sent with; and ${x}'s base, flags and
 * scope, to put x in quarantine if the row it points to is not here.  The
 * first of an apply is kept. */
static int
fk_undo_save(struct actx *a, const struct tracked *t, const struct ckey *ck,
             uint32_t k, sqlite3_value *val, struct cver old, int dirty,
             int pub, struct cver pb, const struct icell *x)
{
    struct replica *r = a->r;
    sqlite3_stmt *st = NULL;
    int rc;

    r->notes_used = 1;
    rc = sqlite3_prepare_v2(
        r->db,
        "INSERT OR IGNORE INTO temp.kz_fk_undo VALUES (?, ?, ?, ?, ?, ?, ?,"
        " ?, ?, ?, ?, ?, ?, ?)",
        -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(st, 1, t->id);
        bind_ckey(st, 2, ck);
        sqlite3_bind_int(st, 3, (int)k);
        sqlite3_bind_value(st, 4, val);
        sqlite3_bind_int64(st, 5, (int64_t)old.hlc);
        sqlite3_bind_int(st, 6, old.dev);
        sqlite3_bind_int(st, 7, dirty);
        sqlite3_bind_int(st, 8, pub);
        sqlite3_bind_int64(st, 9, (int64_t)pb.hlc);
        sqlite3_bind_int(st, 10, pb.dev);
        sqlite3_bind_int64(st, 11, (int64_t)x->base.hlc);
        sqlite3_bind_int(st, 12, x->base.dev);
        sqlite3_bind_int64(st, 13, x->flags);
        sqlite3_bind_text(st, 14, x->scope, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : replica__dberr(r, rc, "foreign keys");
}

static int fk_held(struct actx *a, struct tracked *t, const struct kz_value *pk,
                   uint32_t n_pk);
static int quarantine_fk_violations(struct actx *a);
static void cell_scope(const struct tracked *t, const char *scope, int pub,
                       char *out, size_t len);

/* Opens, once a row, the savepoint kz_dw before the first cell of a
 * delete is kept for a re-insert (apply_row); *${st} keeps the stats. */
static int
dw_begin(struct actx *a, int *open, struct apply_stats *st)
{
    int err;

    if (*open)
        return 0;
    if ((err = replica__exec(a->r, "SAVEPOINT kz_dw")))
        return err;
    *st = *a->st;
    *open = 1;
    return 0;
}

static int
apply_row(struct actx *a, struct tracked *t, struct kz_str tname,
          const struct kz_value *pk, uint32_t n_pk, struct icell *c, uint32_t n)
{
    struct replica *r = a->r;
    const struct icell *win[REPLICA_MAX_COLS + 1];
    struct icell back[REPLICA_MAX_COLS + 1]; /* NULLs of a row back */
    struct apply_stats dst;                  /* the stats at kz_dw */
    struct ckey ck = {0};
    sqlite3_stmt *row = NULL;
    uint8_t v[(REPLICA_MAX_COLS + 1) * REPLICA_CELL_BYTES];
    uint8_t pb[(REPLICA_MAX_COLS + 1) * REPLICA_CELL_BYTES];
    size_t v_len, pb_len = 0;
    uint64_t dirty = 0, pub = 0, conc = 0, dirty0, pub0;
    struct cver old[REPLICA_MAX_COLS + 1];
    int have_clock = 0, alive = 0, new_alive, rc, err = 0, row_loaded = 0;
    const char *reason = NULL;
    char tbuf[KZ_LIM_NAME_MAX + 1];
    uint32_t i, k;
    int ok, dsp = 0; /* kz_dw open */

    snprintf(tbuf, sizeof(tbuf), "%.*s", (int)tname.len, tname.p);
    if (t == NULL) {
        /* Unknown table: keep the cells under the key a table with that
         * many key columns gets, for replica_retry_quarantine. */
        struct ckey uk = {n_pk == 1 ? &pk[0] : NULL, NULL, NULL, 0};
        const char *why = REPLICA_Q_NO_TABLE;
        sqlite3_stmt *st = NULL;

        if (n_pk > 1) {
            if ((err = track__key_stmt(r, n_pk, &st)))
                return err == -KZ_EINVAL ? 0 : err;
            for (i = 0; i < n_pk; i++)
                bind_kz(st, (int)i + 1, &pk[i]);
            rc = sqlite3_step(st);
            if (rc != SQLITE_ROW) {
                err = replica__dberr(r, rc, "key");
                sqlite3_finalize(st);
                return err;
            }
            uk.unkeyable = !sqlite3_column_int(st, 1);
            uk.sv = sqlite3_column_value(st, uk.unkeyable ? 2 : 0);
            if (uk.unkeyable)
                why = REPLICA_Q_UNKEYABLE;
        }
        for (i = 0; i < n && err == 0; i++)
            err = quarantine(a, why, tbuf, &uk, &c[i]);
        sqlite3_finalize(st);
        return err;
    }
    if ((err = clock_key(r, t, pk, n_pk, &ck)))
        return err == -KZ_EMALFORMED ? 0 : err;
    if (ck.unkeyable) {
        reason = REPLICA_Q_UNKEYABLE;
        goto quarantine_all;
    }
    v_len = (size_t)(t->n_cols + 1) * REPLICA_CELL_BYTES;
    memset(v, 0, v_len);
    memset(pb, 0, v_len);
    sqlite3_reset(a->get_clock);
    sqlite3_bind_int(a->get_clock, 1, t->id);
    bind_ckey(a->get_clock, 2, &ck);
    rc = sqlite3_step(a->get_clock);
    if (rc == SQLITE_ROW) {
        size_t l = (size_t)sqlite3_column_bytes(a->get_clock, 1);
        have_clock = 1;
        alive = sqlite3_column_int(a->get_clock, 0);
        memcpy(v, sqlite3_column_blob(a->get_clock, 1), KZ_MIN(l, v_len));
        dirty = (uint64_t)sqlite3_column_int64(a->get_clock, 2);
        pb_len = (size_t)sqlite3_column_bytes(a->get_clock, 3);
        if (pb_len)
            memcpy(pb, sqlite3_column_blob(a->get_clock, 3),
                   KZ_MIN(pb_len, v_len));
        /* A dirty row without pb: every base is 0 (capture.c). */
        pb_len = pb_len || dirty ? v_len : 0;
        pub = (uint64_t)sqlite3_column_int64(a->get_clock, 4);
    } else if (rc != SQLITE_DONE) {
        err = replica__dberr(r, rc, "apply");
        goto out;
    }
    sqlite3_reset(a->get_clock);
    /* Only a table with a foreign key can show up in foreign_key_check. */
    if (t->has_fk && (err = touch(r, a->touch, t->id, &ck, a->scope, !alive)))
        goto out;
    for (k = 0; k <= t->n_cols; k++) {
        win[k] = NULL;
        old[k] = cver_get(v, v_len, k);
    }
    dirty0 = dirty;
    pub0 = pub;

    for (i = 0; i < n; i++) {
        struct icell *x = &c[i];
        uint64_t bit;
        struct cver vl;
        int cmp;

        if (x->k < 0) {
            if ((err = quarantine(a, REPLICA_Q_NO_COLUMN, t->name, &ck, x)))
                goto out;
            continue;
        }
        bit = UINT64_C(1) << x->k;
        if (kz_hlc_is_future(&r->clock, x->ver.hlc, a->now_ms)) {
            if ((err = quarantine(a, "hlc beyond now + skew", t->name, &ck, x)))
                goto out;
            continue;
        }
        if ((x->flags & KZ_CELL_RETRACT) && a->reads_private) {
            /* Our own site's cell left site:NAME; we hold it privately. */
            pub &= ~bit;
            continue;
        }
        if (a->is_site_scope && !(x->flags & KZ_CELL_RETRACT))
            pub |= bit;
        vl = win[x->k] ? win[x->k]->ver : old[x->k];
        cmp = replica__cver_cmp(r, x->ver, vl);
        if (cmp == 0) {
            /* A waiting cell is the clock's version whose value waits. */
            if (x->waiting && x->k > 0)
                win[x->k] = x;
            else
                a->st->cells_lost++;
            continue;
        }
        if (x->waiting) {
            /* It met the delete already (and was reported then); against a
             * later re-insert it is concurrent exactly when it is newer. */
            if (cmp > 0 && old[x->k].hlc != 0 && alive)
                conc |= bit;
        } else if (old[x->k].hlc != 0 &&
                   replica__cver_cmp(r, old[x->k], x->base) > 0) {
            conc |= bit;
        }
        if (cmp > 0) {
            win[x->k] = x;
            dirty &= ~bit;
        } else {
            a->st->cells_lost++;
            /*
             * Our unpacked edit beat it, but we have now seen it: the base
             * we send with the edit is the newest version we saw from
             * others, so that a replica holding this one does not take our
             * edit for a concurrent one.
             */
            if ((dirty & bit) && pb_len &&
                replica__cver_cmp(r, x->ver,
                                  cver_get(pb, pb_len, (uint32_t)x->k)) > 0)
                cver_put(pb, (uint32_t)x->k, x->ver);
        }
    }

    new_alive = alive;
    if (win[0])
        new_alive = !(win[0]->flags & KZ_CELL_RETRACT) &&
                    win[0]->value.type == KZ_V_INT && win[0]->value.i == 1;
    ok = 0;
    for (k = 0; k <= t->n_cols; k++)
        ok |= win[k] != NULL;
    if (!ok && conc == 0) {
        err = 0;
        goto write_clock;
    }
    if (!have_clock && !win[0]) {
        reason = "row not present here yet";
        goto quarantine_all;
    }

    /* Owner rule: rows of site:X / private:X belong to site X. */
    if (t->kind != TRACK_NETWORK && (new_alive || alive)) {
        int ok_ = owner_k(t);
        const struct kz_value *ov = NULL;
        struct kz_value cur;

        if (a->owner_id[0] == '\0') {
            reason = "site of this scope not known here yet";
            goto quarantine_all;
        }
        /* A retracted owner cell leaves the row's owner as it stands. */
        if (ok_ > 0 && win[ok_] && !(win[ok_]->flags & KZ_CELL_RETRACT))
            ov = &win[ok_]->value;
        if (ov == NULL && alive) {
            struct pkvals none = {0};
            if ((err = replica__row_stmt(r, t, &none, &row)))
                goto out;
            for (i = 0; i < n_pk; i++)
                bind_kz(row, (int)i + 1, &pk[i]);
            row_loaded = sqlite3_step(row) == SQLITE_ROW;
            if (row_loaded && ok_ > 0) {
                replica__value_from_sqlite(&cur,
                                           sqlite3_column_value(row, ok_ - 1));
                ov = &cur;
            }
        }
        if (ov == NULL || !value_is_text(ov, a->owner_id)) {
            reason = "row belongs to another site than the scope's";
            goto quarantine_all;
        }
    }

    /* A delete that would leave rows here referring to nothing waits in
     * quarantine, retried after every apply, until they are gone. */
    if (a->fk_check && alive && !new_alive && t->referenced) {
        if ((rc = fk_held(a, t, pk, n_pk)) < 0) {
            err = rc;
            goto out;
        }
        if (rc) {
            reason = HELD_REASON;
            goto quarantine_all;
        }
    }

    if (conc && !row_loaded && alive) {
        struct pkvals none = {0};
        if ((err = replica__row_stmt(r, t, &none, &row)))
            goto out;
        for (i = 0; i < n_pk; i++)
            bind_kz(row, (int)i + 1, &pk[i]);
        row_loaded = sqlite3_step(row) == SQLITE_ROW;
    }
    /* Record conflicts before the write changes the local values. */
    for (i = 0; i < n; i++) {
        struct icell *x = &c[i];
        int remote_wins;
        if (x->k < 0 || !(conc & (UINT64_C(1) << x->k)) ||
            replica__cver_cmp(r, x->ver, old[x->k]) == 0)
            continue;
        remote_wins = win[x->k] == x;
        err = record_conflict(
            a, t, &ck, x, old[x->k],
            row_loaded && x->k > 0 ? sqlite3_column_value(row, x->k - 1) : NULL,
            alive, remote_wins);
        if (err)
            goto out;
    }
    /*
     * Deleted rows keep no values, but a column written concurrently with
     * the delete and newer than it must survive a later re-insert on every
     * replica alike.  Such cells wait in quarantine ("row deleted"), the
     * clock keeps their version (the newest seen), and every apply retries
     * them: once the row is back, the one the clock names is written.
     */
    if (alive && !new_alive) {
        struct cver d = win[0]->ver;
        if (!row_loaded) {
            struct pkvals none = {0};
            if ((err = replica__row_stmt(r, t, &none, &row)))
                goto out;
            for (i = 0; i < n_pk; i++)
                bind_kz(row, (int)i + 1, &pk[i]);
            row_loaded = sqlite3_step(row) == SQLITE_ROW;
        }
        for (k = 1; row_loaded && k <= t->n_cols; k++) {
            struct icell w;
            char ws[KZ_LIM_NAME_MAX + 1];
            if (win[k] || replica__cver_cmp(r, old[k], d) <= 0)
                continue;
            memset(&w, 0, sizeof(w));
            w.k = (int32_t)k;
            w.col.p = t->cols[k - 1];
            w.col.len = strlen(t->cols[k - 1]);
            replica__value_from_sqlite(&w.value,
                                       sqlite3_column_value(row, (int)k - 1));
            w.ver = old[k];
            /* Under the scope the cell travels in, not the delete's: a
             * site table's private cell stays in private:X. */
            cell_scope(t, a->scope, (int)((pub0 >> k) & 1), ws, sizeof(ws));
            w.scope = ws;
            if (((dirty0 >> k) & 1) && w.value.type != KZ_V_NULL) {
                /* An edit here not sent yet: a build would find no row to
                 * read it from (it sent NULL); it goes out once the row is
                 * back and it has won (apply_row, REPLICA_QF_UNSENT).  A
                 * NULL is sent as it is: it needs no waiting value. */
                w.flags = REPLICA_QF_UNSENT;
                w.base = pb_len ? cver_get(pb, pb_len, k) : cver_none;
                dirty &= ~(UINT64_C(1) << k);
            }
            if (w.value.type == KZ_V_NULL)
                continue;
            if ((err = dw_begin(a, &dsp, &dst)) ||
                (err = quarantine(a, REPLICA_Q_WAITING, t->name, &ck, &w)))
                goto out;
        }
    }
    /* A row here pointed elsewhere by a foreign key, or a value a foreign
     * key refers to changed: what it held, in case the row it now points
     * to is not here (fk_move_row), or rows here still refer to the old
     * value (fk_undo_parents). */
    if ((t->fk_cols | t->ref_cols) && alive && new_alive) {
        for (k = 1; k <= t->n_cols && err == 0; k++) {
            uint64_t bit = UINT64_C(1) << k;
            if (win[k] == NULL || !((t->fk_cols | t->ref_cols) & bit))
                continue;
            if (!row_loaded) {
                struct pkvals none = {0};
                if ((err = replica__row_stmt(r, t, &none, &row)))
                    goto out;
                for (i = 0; i < n_pk; i++)
                    bind_kz(row, (int)i + 1, &pk[i]);
                if ((row_loaded = sqlite3_step(row) == SQLITE_ROW) == 0)
                    break;
            }
            err = fk_undo_save(a, t, &ck, k, sqlite3_column_value(row, k - 1),
                               old[k], (dirty0 & bit) != 0, (pub0 & bit) != 0,
                               pb_len ? cver_get(pb, pb_len, k) : cver_none,
                               win[k]);
        }
        if (err)
            goto out;
    }
    if (row) {
        sqlite3_reset(row);
        row = NULL;
    }
    if (!new_alive) {
        for (k = 1; k <= t->n_cols; k++) {
            if (win[k] == NULL || win[k]->value.type == KZ_V_NULL ||
                (win[k]->flags & KZ_CELL_RETRACT))
                continue;
            if ((err = dw_begin(a, &dsp, &dst)) ||
                (err = quarantine(a, REPLICA_Q_WAITING, t->name, &ck, win[k])))
                goto out;
            cver_put(v, k, win[k]->ver);
            win[k] = NULL;
        }
    }
    if (have_clock && !alive && new_alive) {
        /* Back: a column whose clock names a version newer than the
         * incoming cell's (a NULL written after the delete, or a value
         * waiting in quarantine, written by the next retry) is NULL, not
         * the column's DEFAULT, on every replica alike. */
        for (k = 1; k <= t->n_cols; k++) {
            if (win[k] || old[k].hlc == 0)
                continue;
            memset(&back[k], 0, sizeof(back[k]));
            back[k].k = (int32_t)k;
            back[k].value.type = KZ_V_NULL;
            back[k].ver = old[k];
            win[k] = &back[k];
        }
    }
    if (t->has_fk || t->referenced || t->ref_cols)
        r->fk_written = 1;
    rc = write_row(r, t, pk, alive, new_alive, win);
    if (dsp) {
        /* The cells kept for a re-insert wait only if the delete went:
         * refused, it goes to quarantine whole, and they with it. */
        dsp = 0;
        if (rc > 0) {
            *a->st = dst;
            err = replica__exec(r, "ROLLBACK TO kz_dw; RELEASE kz_dw");
        } else if (rc == 0) {
            err = replica__exec(r, "RELEASE kz_dw");
        } else if (!sqlite3_get_autocommit(r->db)) {
            (void)replica__exec(r, "RELEASE kz_dw");
        }
        if (err)
            goto out;
    }
    if (rc < 0) {
        err = rc;
        goto out;
    }
    if (rc > 0) {
        reason = r->errmsg;
        if (rc == 2)
            a->fk_refused++;
        goto quarantine_all;
    }
    /* Alive again: its "row deleted" cells get their try (retry_quarantine
     * passes them over otherwise). */
    if (have_clock && !alive && new_alive) {
        sqlite3_stmt *rv;
        if ((err = replica__revived_stmt(r, &rv)))
            goto out;
        sqlite3_bind_int(rv, 1, t->id);
        bind_ckey(rv, 2, &ck);
        rc = sqlite3_step(rv);
        sqlite3_reset(rv);
        if (rc != SQLITE_DONE) {
            err = replica__dberr(r, rc, "quarantine");
            goto out;
        }
    }
    for (k = 0; k <= t->n_cols; k++) {
        if (win[k] == &back[k]) {
            continue; /* the clock has its version */
        } else if (win[k]) {
            cver_put(v, k, win[k]->ver);
            a->st->cells_won++;
            if ((win[k]->flags & REPLICA_QF_UNSENT) &&
                win[k]->ver.dev == r->self_dev) {
                /* Our edit, not sent before its row was moved out
                 * (fk_move_row) or deleted by a remote delete older than
                 * it: it goes out now. */
                dirty |= UINT64_C(1) << k;
                pb_len = v_len;
                cver_put(pb, k, win[k]->base);
            }
        }
    }
    alive = new_alive;
    a->st->rows++;

write_clock:
    err = clock_put(a, t, &ck, alive, v, v_len, dirty, pb, pb_len, pub);
    goto out;

quarantine_all : {
    char why[256];
    snprintf(why, sizeof(why), "%s", reason);
    for (i = 0; i < n && err == 0; i++)
        err = quarantine(a, why, t->name, &ck, &c[i]);
}
out:
    if (dsp && !sqlite3_get_autocommit(r->db))
        (void)replica__exec(r, "ROLLBACK TO kz_dw; RELEASE kz_dw");
    if (row)
        sqlite3_reset(row);
    ckey_done(&ck);
    return err;
}

static int
actx_init(struct actx *a, struct replica *r, const char *scope,
          struct apply_stats *st)
{
    int rc;

    memset(a, 0, sizeof(*a));
    a->r = r;
    a->scope = scope;
    a->st = st;
    a->now_ms = kz_env_wall_ms(r->env);
    if (strncmp(scope, "site:", 5) == 0 || strncmp(scope, "private:", 8) == 0) {
        const char *s = strchr(scope, ':') + 1;
        sqlite3_stmt *q = NULL;
        snprintf(a->site, sizeof(a->site), "%s", s);
        a->is_site_scope = scope[0] == 's';
        a->reads_private =
            strcmp(a->site, r->site) == 0 && r->role == REPLICA_ROLE_SITE;
        /* The site's id, when the reference data has it. */
        if (sqlite3_prepare_v2(r->db, "SELECT id FROM site WHERE code = ?", -1,
                               &q, NULL) == SQLITE_OK) {
            sqlite3_bind_text(q, 1, a->site, -1, SQLITE_STATIC);
            if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0))
                snprintf(a->owner_id, sizeof(a->owner_id), "%s",
                         (const char *)sqlite3_column_text(q, 0));
        }
        sqlite3_finalize(q);
    }
    rc = sqlite3_prepare_v2(r->db,
                            "SELECT alive, v, dirty, pb, pub FROM kz_clock"
                            " WHERE tbl = ? AND pk = ?",
                            -1, &a->get_clock, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(
            r->db,
            "INSERT INTO kz_clock(tbl, pk, alive, v, dirty, pb, pub)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (tbl, pk) DO"
            " UPDATE SET alive = ?3, v = ?4, dirty = ?5, pb = ?6, pub = ?7",
            -1, &a->put_clock, NULL);
    /* a->quar and a->conf are made when first needed (rare). */
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(r->db,
                                "INSERT OR IGNORE INTO temp.kz_touched"
                                " VALUES (?, ?, ?, ?)",
                                -1, &a->touch, NULL);
    return rc == SQLITE_OK ? 0 : replica__dberr(r, rc, "apply");
}

/* Notes which tracked tables declare a foreign key (t->has_fk): only their
 * rows need to be remembered in temp.kz_touched; which are referred to by
 * a foreign key whose ON DELETE action can leave rows here referring to
 * nothing (t->referenced: none, RESTRICT, or CASCADE and SET DEFAULT, which
 * reach further rows): deleting one of their rows is checked first
 * (fk_held).  Looked up per apply, so that a schema changed under an open
 * replica is seen. */
static int
fk_refresh(struct replica *r)
{
    sqlite3_stmt *st = NULL;
    uint32_t i;
    int rc;

    for (i = 0; i < r->n_tables; i++)
        r->tables[i].has_fk = r->tables[i].referenced = r->tables[i].cascaded =
            0;
    for (i = 0; i < r->n_tables; i++)
        r->tables[i].fk_cols = r->tables[i].ref_cols = 0;
    rc = sqlite3_prepare_v2(r->db,
                            "SELECT m.name, f.\"table\", f.on_delete <>"
                            " 'SET NULL', f.on_delete IN ('CASCADE',"
                            " 'SET DEFAULT'), f.\"from\", f.\"to\""
                            " FROM sqlite_master m,"
                            " pragma_foreign_key_list(m.name) f"
                            " WHERE m.type = 'table'",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "foreign keys");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *child = (const char *)sqlite3_column_text(st, 0);
        const char *parent = (const char *)sqlite3_column_text(st, 1);
        int restrict_ = sqlite3_column_int(st, 2);
        int cascade = sqlite3_column_int(st, 3);
        const char *from = (const char *)sqlite3_column_text(st, 4);
        const char *to = (const char *)sqlite3_column_text(st, 5);
        for (i = 0; i < r->n_tables; i++) {
            struct tracked *t = &r->tables[i];
            uint32_t k;
            if (child && sqlite3_stricmp(t->name, child) == 0) {
                t->has_fk = 1;
                for (k = 0; from && k < t->n_cols; k++)
                    if (sqlite3_stricmp(t->cols[k], from) == 0)
                        t->fk_cols |= UINT64_C(1) << (k + 1);
            }
            /* A key column never changes: only the others can be undone. */
            if (parent && to && sqlite3_stricmp(t->name, parent) == 0)
                for (k = 0; k < t->n_cols; k++)
                    if (sqlite3_stricmp(t->cols[k], to) == 0)
                        t->ref_cols |= UINT64_C(1) << (k + 1);
            if (restrict_ && parent && sqlite3_stricmp(t->name, parent) == 0) {
                t->referenced = 1;
                t->cascaded |= cascade;
            }
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : replica__dberr(r, rc, "foreign keys");
}

/*
 * The statement telling whether rows here still refer to a row of ${t}
 * (its key bound as ?1…) through a foreign key without an ON DELETE
 * action: one EXISTS per foreign key, (from…) = the row's (to…).  *${out}
 * is NULL when no such key refers to ${t}.  Returns 0 or an error.
 */
static int
fk_held_stmt(struct replica *r, const struct tracked *t, sqlite3_stmt **out)
{
    sqlite3_stmt *fk = NULL;
    sqlite3_str *sql = sqlite3_str_new(r->db);
    char *text;
    int rc, any = 0, last_id = -1;
    char last_child[256] = "";
    uint32_t i;

    *out = NULL;
    rc = sqlite3_prepare_v2(r->db,
                            "SELECT m.name, f.id, f.\"from\", f.\"to\", f.seq"
                            " FROM sqlite_master m,"
                            " pragma_foreign_key_list(m.name) f"
                            " WHERE m.type = 'table' AND f.\"table\" = ?"
                            " COLLATE NOCASE AND f.on_delete IN"
                            " ('NO ACTION', 'RESTRICT')"
                            " ORDER BY m.name, f.id, f.seq",
                            -1, &fk, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_free(sqlite3_str_finish(sql));
        return replica__dberr(r, rc, "foreign keys");
    }
    sqlite3_bind_text(fk, 1, t->name, -1, SQLITE_STATIC);
    sqlite3_str_appendall(sql, "SELECT 0");
    while ((rc = sqlite3_step(fk)) == SQLITE_ROW) {
        const char *child = (const char *)sqlite3_column_text(fk, 0);
        int id = sqlite3_column_int(fk, 1);
        const char *from = (const char *)sqlite3_column_text(fk, 2);
        const char *to = (const char *)sqlite3_column_text(fk, 3);
        int seq = sqlite3_column_int(fk, 4);

        /* No "to": the parent's primary key, column by column. */
        if (to == NULL)
            to = seq >= 0 && (uint32_t)seq < t->n_pk ? t->pk[seq] : NULL;
        if (child == NULL || from == NULL || to == NULL)
            continue;
        if (id != last_id || strcmp(child, last_child) != 0) {
            if (any)
                sqlite3_str_appendall(sql, "))");
            sqlite3_str_appendf(sql,
                                " OR EXISTS (SELECT 1 FROM \"%w\" c, "
                                "\"%w\" p WHERE ",
                                child, t->name);
            for (i = 0; i < t->n_pk; i++)
                sqlite3_str_appendf(sql, "p.\"%w\" = ?%u AND ", t->pk[i],
                                    i + 1);
            if (sqlite3_stricmp(child, t->name) == 0) {
                /* A row referring to itself does not hold its delete. */
                sqlite3_str_appendall(sql, "NOT (1");
                for (i = 0; i < t->n_pk; i++)
                    sqlite3_str_appendf(sql, " AND c.\"%w\" IS p.\"%w\"",
                                        t->pk[i], t->pk[i]);
                sqlite3_str_appendall(sql, ") AND ");
            }
            sqlite3_str_appendall(sql, "(1");
            snprintf(last_child, sizeof(last_child), "%s", child);
            last_id = id;
            any = 1;
        }
        /* The parent's collation, as SQLite's own check uses. */
        sqlite3_str_appendf(sql, " AND p.\"%w\" = +c.\"%w\"", to, from);
    }
    sqlite3_finalize(fk);
    if (rc != SQLITE_DONE) {
        sqlite3_free(sqlite3_str_finish(sql));
        return replica__dberr(r, rc, "foreign keys");
    }
    if (any)
        sqlite3_str_appendall(sql, "))");
    if ((text = sqlite3_str_finish(sql)) == NULL)
        return -KZ_ENOMEM;
    rc = any ? sqlite3_prepare_v2(r->db, text, -1, out, NULL) : SQLITE_OK;
    sqlite3_free(text);
    return rc == SQLITE_OK ? 0 : replica__dberr(r, rc, "foreign keys");
}

/*
 * Whether deleting the row of ${t} with key ${pk} would leave rows here
 * referring to nothing, SQLite's own answer: the delete is tried under a
 * savepoint and undone.  It sees what a query of the referring tables
 * would not: deletes cascading onto rows that rows here refer to, SET
 * DEFAULT, RESTRICT.  Only when no foreign key is pending already (else
 * *${held} = -1, and fk_held asks the referring tables); else *${held} is
 * 1 or 0.  Returns 0 or an error (the whole transaction gone when a
 * trigger rolled it back).
 */
static int
fk_held_try(struct actx *a, struct tracked *t, const struct kz_value *pk,
            uint32_t n_pk, int *held)
{
    struct replica *r = a->r;
    sqlite3_stmt *st = NULL;
    int cur = 0, hi = 0, rc, err;
    uint32_t i;

    *held = -1;
    if (sqlite3_db_status(r->db, SQLITE_DBSTATUS_DEFERRED_FKS, &cur, &hi, 0) !=
            SQLITE_OK ||
        cur != 0)
        return 0;
    if ((err = write_stmt(r, t, 2, 0, &st)))
        return err;
    if ((err = replica__exec(r, "SAVEPOINT kz_try")))
        return err;
    for (i = 0; i < n_pk; i++)
        bind_kz(st, (int)i + 1, &pk[i]);
    rc = sqlite3_step(st);
    *held = fk_refusal(r, rc);
    sqlite3_reset(st);
    if (sqlite3_get_autocommit(r->db)) {
        snprintf(r->errmsg, sizeof(r->errmsg),
                 "the whole apply was rolled back (a trigger's "
                 "RAISE(ROLLBACK) on %.64s)",
                 t->name);
        return -KZ_EDB;
    }
    if (rc == SQLITE_DONE &&
        sqlite3_db_status(r->db, SQLITE_DBSTATUS_DEFERRED_FKS, &cur, &hi, 0) ==
            SQLITE_OK)
        *held = cur != 0;
    rc = sqlite3_exec(r->db, "ROLLBACK TO kz_try; RELEASE kz_try", NULL, NULL,
                      NULL);
    return rc == SQLITE_OK ? 0 : replica__dberr(r, rc, "foreign keys");
}

/*
 * Whether rows here still refer to the row of ${t} with key ${pk}
 * (fk_held_try, or when a key is pending already, fk_held_stmt): 1 (its
 * delete must wait, or the commit would fail on a deferred key and stop
 * every later apply), 0, or an error.  The statement of the last table
 * asked is kept in ${a}.
 */
static int
fk_held(struct actx *a, struct tracked *t, const struct kz_value *pk,
        uint32_t n_pk)
{
    uint32_t i;
    int rc, held = 0;

    if ((rc = fk_held_try(a, t, pk, n_pk, &held)) != 0 || held >= 0)
        return rc != 0 ? rc : held;
    /* A key is pending: rows this apply wrote that refer to nothing (a
     * retried child still without its parent) have not left yet.  The
     * query below cannot follow a cascade: move them out now and ask
     * SQLite again; with a key still pending, the delete waits. */
    if (t->cascaded) {
        if ((rc = quarantine_fk_violations(a)) ||
            (rc = fk_held_try(a, t, pk, n_pk, &held)))
            return rc;
        return held >= 0 ? held : 1;
    }
    held = 0;

    if (a->held_t != t) {
        sqlite3_finalize(a->held_st);
        a->held_st = NULL;
        a->held_t = NULL;
        if ((rc = fk_held_stmt(a->r, t, &a->held_st)))
            return rc;
        a->held_t = t;
    }
    if (a->held_st == NULL)
        return 0;
    sqlite3_reset(a->held_st);
    for (i = 0; i < n_pk; i++)
        bind_kz(a->held_st, (int)i + 1, &pk[i]);
    rc = sqlite3_step(a->held_st);
    if (rc == SQLITE_ROW)
        held = sqlite3_column_int(a->held_st, 0) != 0;
    sqlite3_reset(a->held_st);
    return rc == SQLITE_ROW ? held : replica__dberr(a->r, rc, "foreign keys");
}

static void
actx_fini(struct actx *a)
{
    sqlite3_finalize(a->get_clock);
    sqlite3_finalize(a->put_clock);
    sqlite3_finalize(a->quar);
    sqlite3_finalize(a->conf);
    sqlite3_finalize(a->touch);
    sqlite3_finalize(a->held_st);
    sqlite3_finalize(a->requar);
    a->get_clock = a->put_clock = a->quar = a->conf = a->touch = NULL;
    a->held_st = a->requar = NULL;
    a->held_t = NULL;
}

/* Which scopes this replica reads (DESIGN.md §4). */
static int
reads_scope(const struct replica *r, const char *scope)
{
    if (strcmp(scope, "network") == 0)
        return 1;
    if (strncmp(scope, "site:", 5) == 0)
        return r->role != REPLICA_ROLE_SITE || strcmp(scope + 5, r->site) == 0;
    if (strncmp(scope, "private:", 8) == 0)
        return r->role == REPLICA_ROLE_SITE && strcmp(scope + 8, r->site) == 0;
    return 0;
}

static int
kind_fits_scope(enum track_kind kind, const char *scope)
{
    switch (kind) {
    case TRACK_NETWORK: return strcmp(scope, "network") == 0;
    case TRACK_SITE:
        return strncmp(scope, "site:", 5) == 0 ||
               strncmp(scope, "private:", 8) == 0;
    default: return strncmp(scope, "private:", 8) == 0;
    }
}

/* Marks the cells kept under (tbl, pk) as having a key that cannot be
 * kept here. */
static int
mark_unkeyable(struct replica *r, const char *tbl, sqlite3_value *pk)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        r->db,
        "UPDATE kz_quarantine SET reason = '" REPLICA_Q_UNKEYABLE
        "' WHERE tbl = ? AND"
        " pk = ?",
        -1, &st, NULL);

    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "quarantine");
    sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
    sqlite3_bind_value(st, 2, pk);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : replica__dberr(r, rc, "quarantine");
}

/*
 * Tries the cells of row ${qr_pk} of table ${qr_tbl} waiting in quarantine
 * again (retry_quarantine), through the context ${b} of the scope
 * ${b_scope} (made again when another scope comes; *${have_b} says whether
 * it is made).  Returns 0 or an error.
 */
static int
retry_row(struct actx *a, struct actx *b, char *b_scope, size_t b_len,
          int *have_b, const char *qr_tbl, sqlite3_value *qr_pk,
          sqlite3_stmt *cells, sqlite3_stmt *del)
{
    struct replica *r = a->r;
    struct tracked *t = track__by_name(r, qr_tbl, strlen(qr_tbl));
    struct icell *c = NULL, *g = NULL;
    sqlite3_value **keep = NULL;
    uint8_t *kept = NULL;
    uint32_t n = 0, nk = 0, cap = 0, j, done = 0;
    struct pkvals pv = {0};
    struct kz_value pk[KZ_LIM_PK_COLS_MAX];
    int rc, err = 0;

    if (t == NULL)
        return 0;
    if ((err = replica__pk_split(r, t, qr_pk, &pv)) == -KZ_EMALFORMED) {
        /* Kept under a key this table's cannot be read from
         * (another number of parts, say): shown, not retried. */
        return mark_unkeyable(r, qr_tbl, qr_pk);
    }
    if (err)
        return err;
    for (j = 0; j < pv.n; j++)
        replica__value_from_sqlite(&pk[j], pv.v[j]);
    sqlite3_reset(cells);
    sqlite3_bind_text(cells, 1, qr_tbl, -1, SQLITE_STATIC);
    sqlite3_bind_value(cells, 2, qr_pk);
    /* Every cell of the row at once, however many: a cell refused again
     * keeps its place, so a bound would keep the later ones out. */
    while ((rc = sqlite3_step(cells)) == SQLITE_ROW) {
        struct icell *x;
        const char *col = (const char *)sqlite3_column_text(cells, 2);
        uint32_t k;
        uint16_t dev = 0;

        if (n == cap) {
            uint32_t c2 = cap ? cap * 2 : 16;
            struct icell *gc = kz_reallocarray(c, c2, sizeof(*c));
            sqlite3_value **gk;
            if (gc != NULL)
                c = gc;
            gk = gc ? kz_reallocarray(keep, c2, 3 * sizeof(*keep)) : NULL;
            if (gk == NULL) {
                err = -KZ_ENOMEM;
                break;
            }
            keep = gk;
            cap = c2;
        }
        x = &c[n];
        memset(x, 0, sizeof(*x));
        x->qid = sqlite3_column_int64(cells, 0);
        keep[nk] = sqlite3_value_dup(sqlite3_column_value(cells, 1));
        if (keep[nk] == NULL) {
            err = -KZ_ENOMEM;
            break;
        }
        x->scope = (const char *)sqlite3_value_text(keep[nk]);
        if (x->scope == NULL)
            x->scope = a->scope;
        nk++;
        keep[nk] = sqlite3_value_dup(sqlite3_column_value(cells, 2));
        if (keep[nk] == NULL) {
            err = -KZ_ENOMEM;
            break;
        }
        x->col.p = (const char *)sqlite3_value_text(keep[nk]);
        x->col.len = (size_t)sqlite3_value_bytes(keep[nk]);
        nk++;
        x->k = col && col[0] ? -1 : 0;
        for (k = 0; col && col[0] && k < t->n_cols; k++)
            if (strcmp(t->cols[k], col) == 0)
                x->k = (int32_t)k + 1;
        x->flags = (uint32_t)sqlite3_column_int64(cells, 3);
        keep[nk] = sqlite3_value_dup(sqlite3_column_value(cells, 4));
        if (keep[nk] == NULL) {
            err = -KZ_ENOMEM;
            break;
        }
        replica__value_from_sqlite(&x->value, keep[nk]);
        nk++;
        x->ver.hlc = (uint64_t)sqlite3_column_int64(cells, 5);
        if (sqlite3_column_bytes(cells, 6) == KZ_KEY_LEN &&
            (err = replica__dev_idx(r, sqlite3_column_blob(cells, 6), &dev)))
            break;
        x->ver.dev = dev;
        x->base.hlc = (uint64_t)sqlite3_column_int64(cells, 7);
        dev = 0;
        if (sqlite3_column_bytes(cells, 8) == KZ_KEY_LEN &&
            (err = replica__dev_idx(r, sqlite3_column_blob(cells, 8), &dev)))
            break;
        x->base.dev = dev;
        x->waiting = strcmp((const char *)sqlite3_column_text(cells, 9),
                            REPLICA_Q_WAITING) == 0;
        n++;
    }
    if (err == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = replica__dberr(r, rc, "quarantine");
    sqlite3_reset(cells);
    if (err == 0 && n > 0 &&
        ((kept = kz_calloc(n, 1)) == NULL ||
         (g = kz_calloc(n, sizeof(*g))) == NULL))
        err = -KZ_ENOMEM;
    for (j = 0; err == 0 && j < n; j++)
        c[j].kept = &kept[j];
    /* The cells of each scope under that scope's rules (a site
     * table's row keeps some in site:X, some in private:X), the
     * scope with the row's own cell first: it may bring the row. */
    while (err == 0 && done < n) {
        struct kz_str tn = {t->name, strlen(t->name)};
        const char *sc = NULL;
        uint32_t ng = 0;

        for (j = 0; j < n && sc == NULL; j++)
            if (c[j].scope != NULL && c[j].k == 0)
                sc = c[j].scope;
        for (j = 0; j < n && sc == NULL; j++)
            if (c[j].scope != NULL)
                sc = c[j].scope;
        for (j = 0; j < n; j++) {
            if (c[j].scope != NULL && strcmp(c[j].scope, sc) == 0) {
                g[ng++] = c[j];
                c[j].scope = NULL;
                done++;
            }
        }
        /* One context for the rows of a scope (its statements
         * prepared once), not one per row. */
        if (!*have_b || strcmp(b_scope, sc) != 0) {
            if (*have_b)
                actx_fini(b);
            *have_b = 0;
            snprintf(b_scope, b_len, "%s", sc);
            if ((err = actx_init(b, r, b_scope, a->st)) != 0) {
                actx_fini(b);
                break;
            }
            *have_b = 1;
            b->fk_check = 1;
        }
        {
            uint32_t before = a->st->quarantined;
            for (j = 0; j < ng; j++)
                g[j].scope = b_scope;
            err = apply_row(b, t, tn, pk, pv.n, g, ng);
            /* Cells that went back are not new quarantines. */
            a->st->quarantined = before;
        }
    }
    /* The cells tried leave quarantine, but for those kept there. */
    for (j = 0; err == 0 && j < n; j++) {
        if (kept[j])
            continue;
        sqlite3_reset(del);
        sqlite3_bind_int64(del, 1, c[j].qid);
        rc = sqlite3_step(del);
        sqlite3_reset(del);
        if (rc != SQLITE_DONE)
            err = replica__dberr(r, rc, "quarantine");
    }
    for (j = 0; j < nk; j++)
        sqlite3_value_free(keep[j]);
    kz_free(keep);
    kz_free(c);
    kz_free(g);
    kz_free(kept);
    replica__pk_free(&pv);
    return err;
}

/*
 * Tries the cells waiting in quarantine again, row by row, waiting deletes
 * last.  Cells whose key cannot be kept here are never retried.  Unless
 * ${whole}, the try passes over rows whose every cell is one that only a
 * change of the tracked tables can let in (no such table or column here
 * yet), or that waits for its deleted row to be alive again ("row
 * deleted"), unless the row is (temp.kz_revived): trying them again could
 * only put them back, and there may be many, for good.  A change of the
 * tracked tables makes the next try whole.  The cells are found by a scan
 * of kz_quarantine, not an index: one on the cells tried cost the
 * trigger-refused line of bench_engine's part i 13x -> 22x when every try
 * wrote every cell again; the scan costs well under a microsecond a cell.
 * A cell refused again keeps its row (quarantine, c->kept).
 */
static int
retry_quarantine(struct actx *a, int whole)
{
    struct replica *r = a->r;
    sqlite3_stmt *rows = NULL, *cells = NULL, *del = NULL;
    int rc, err = 0;

    whole = whole || r->retried_gen != r->tables_gen;
    rc = sqlite3_prepare_v2(
        r->db,
        whole ? "SELECT tbl, pk, max(reason = '" HELD_REASON "')"
                " FROM kz_quarantine WHERE reason <> '" REPLICA_Q_UNKEYABLE
                "' GROUP BY tbl, pk ORDER BY 3, 1, 2"
        : !r->revived_used
            ? "SELECT tbl, pk, max(reason = '" HELD_REASON "')"
              " FROM kz_quarantine WHERE reason NOT IN (" REPLICA_Q_IDLE ")"
              " GROUP BY tbl, pk ORDER BY 3, 1, 2"
            : "SELECT tbl, pk, max(h) FROM (SELECT tbl, pk,"
              " reason = '" HELD_REASON "' AS h FROM kz_quarantine"
              " WHERE reason NOT IN (" REPLICA_Q_IDLE ") UNION ALL"
              " SELECT t.tbl, v.pk, 0 FROM temp.kz_revived AS v JOIN"
              " kz_tracked AS t ON t.id = v.tbl) GROUP BY tbl, pk"
              " ORDER BY 3, 1, 2",
        -1, &rows, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(r->db,
                                "SELECT id, scope, col, flags, value, hlc,"
                                " author, base_hlc, base_author, reason FROM"
                                " kz_quarantine WHERE tbl = ? AND pk = ? AND"
                                " reason <> '" REPLICA_Q_UNKEYABLE "'"
                                " ORDER BY id",
                                -1, &cells, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(r->db, "DELETE FROM kz_quarantine WHERE id = ?",
                                -1, &del, NULL);
    if (rc != SQLITE_OK) {
        err = replica__dberr(r, rc, "quarantine");
        goto out;
    }
    /* Rows are collected first: apply_row adds to the same table. */
    {
        struct qrow {
            char *tbl;
            sqlite3_value *pk;
            int held; /* a delete waiting for rows that refer to it */
        } *qr = NULL;
        size_t nq = 0, i;
        struct actx b;
        char b_scope[KZ_LIM_NAME_MAX + 1] = "";
        int have_b = 0, held_pass = 0;

        while ((rc = sqlite3_step(rows)) == SQLITE_ROW) {
            struct qrow *p = kz_reallocarray(qr, nq + 1, sizeof(*qr));
            if (p == NULL) {
                err = -KZ_ENOMEM;
                break;
            }
            qr = p;
            qr[nq].tbl = kz_strdup((const char *)sqlite3_column_text(rows, 0));
            qr[nq].pk = sqlite3_value_dup(sqlite3_column_value(rows, 1));
            qr[nq].held = sqlite3_column_int(rows, 2);
            nq++;
            if (qr[nq - 1].tbl == NULL || qr[nq - 1].pk == NULL) {
                err = -KZ_ENOMEM;
                break;
            }
        }
        for (i = 0; err == 0 && i < nq; i++) {
            /* Waiting deletes last, once the rows tried before them that
             * refer to nothing are back where they were: a row tried again
             * that points away from a waiting delete's row, only to be put
             * back, must not let that delete go (a review's case). */
            if (qr[i].held && !held_pass) {
                held_pass = 1;
                if ((err = quarantine_fk_violations(a)))
                    break;
            }
            err = retry_row(a, &b, b_scope, sizeof(b_scope), &have_b, qr[i].tbl,
                            qr[i].pk, cells, del);
        }
        if (have_b)
            actx_fini(&b);
        for (i = 0; i < nq; i++) {
            kz_free(qr[i].tbl);
            sqlite3_value_free(qr[i].pk);
        }
        kz_free(qr);
    }
    if (err == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = replica__dberr(r, rc, "quarantine");
    if (err == 0 && r->revived_used) {
        r->revived_used = 0;
        err = replica__exec(r, "DELETE FROM temp.kz_revived");
    }
    if (err == 0 && whole)
        r->retried_gen = r->tables_gen;
out:
    sqlite3_finalize(rows);
    sqlite3_finalize(cells);
    sqlite3_finalize(del);
    return err;
}

/* Runs ${sql} with (tbl, pk) bound; returns the step's result code. */
static int
row_sql(struct replica *r, const char *sql, int tbl, sqlite3_value *pk)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(r->db, sql, -1, &st, NULL);

    if (rc == SQLITE_OK) {
        sqlite3_bind_int(st, 1, tbl);
        sqlite3_bind_value(st, 2, pk);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc;
}

/*
 * Deferred foreign keys are checked at COMMIT, which would refuse the whole
 * batch for one row whose parent has not arrived.  So before committing,
 * rows of this batch that violate a foreign key move to quarantine (with
 * their versions) and out of the table; they come back when the parent does.
 */
/*
 * The rows of ${t} to move: "SELECT key, cols…, key parts… FROM T AS c
 * WHERE c.rowid = ?1", or, for a WITHOUT ROWID table (SQLite's check names
 * no rowid there), every row of T that the foreign key ${fkid} finds no
 * parent for, as SQLite's check finds them: every child column set, no
 * parent row equal under the parent's collation; or, for ${fkid} =
 * FK_ROW_BY_KEY, the row whose key (as kz_clock keeps it) is ?1.  The key
 * is made as the triggers make it (track.c); columns are read by name, as
 * t->cols orders them.  sqlite3_free it; NULL with *${err} set on failure.
 */
#define FK_ROW_BY_KEY (-2)

static char *
fk_row_sql(struct replica *r, const struct tracked *t, int fkid, int *err)
{
    char *parts[KZ_LIM_PK_COLS_MAX] = {0}, *out = NULL;
    sqlite3_str *sql = sqlite3_str_new(r->db);
    sqlite3_str *set = sqlite3_str_new(r->db);
    sqlite3_stmt *fk = NULL;
    struct kz_buf b;
    char *setp = NULL;
    uint32_t i;
    int rc, n = 0;

    *err = 0;
    kz_buf_init(&b, 1u << 20);
    for (i = 0; i < t->n_pk; i++)
        if ((parts[i] = sqlite3_mprintf("c.\"%w\"", t->pk[i])) == NULL)
            b.err = -KZ_ENOMEM;
    if (b.err == 0)
        track__key_sql(&b, t->n_pk, (const char *const *)parts, "NULL");
    kz_buf_u8(&b, 0);
    if ((*err = b.err) != 0)
        goto done;
    sqlite3_str_appendf(sql, "SELECT %s", (const char *)b.p);
    for (i = 0; i < t->n_cols; i++)
        sqlite3_str_appendf(sql, ", c.\"%w\"", t->cols[i]);
    for (i = 0; i < t->n_pk; i++)
        sqlite3_str_appendf(sql, ", %s", parts[i]);
    sqlite3_str_appendf(sql, " FROM \"%w\" AS c WHERE ", t->name);
    if (fkid == FK_ROW_BY_KEY) {
        /* The key column's index first, then the exact key. */
        if (t->n_pk == 1)
            sqlite3_str_appendf(sql, "%s = ?1 AND ", parts[0]);
        sqlite3_str_appendf(sql, "%s = ?1", (const char *)b.p);
        goto done;
    }
    if (fkid < 0) {
        sqlite3_str_appendall(sql, "c.rowid = ?1");
        goto done;
    }
    rc = sqlite3_prepare_v2(
        r->db,
        "SELECT f.\"table\", f.\"from\", coalesce(f.\"to\", (SELECT name FROM"
        " pragma_table_info(f.\"table\") WHERE pk = f.seq + 1)),"
        " EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name"
        " = f.\"table\" COLLATE NOCASE) FROM"
        " pragma_foreign_key_list(?1) f WHERE f.id = ?2 ORDER BY f.seq",
        -1, &fk, NULL);
    if (rc != SQLITE_OK) {
        *err = replica__dberr(r, rc, "foreign keys");
        goto done;
    }
    sqlite3_bind_text(fk, 1, t->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(fk, 2, fkid);
    while ((rc = sqlite3_step(fk)) == SQLITE_ROW) {
        const char *pt = (const char *)sqlite3_column_text(fk, 0);
        const char *from = (const char *)sqlite3_column_text(fk, 1);
        const char *to = (const char *)sqlite3_column_text(fk, 2);
        int parent_exists = sqlite3_column_int(fk, 3);
        if (pt == NULL || from == NULL || (parent_exists && to == NULL)) {
            rc = SQLITE_CORRUPT; /* a key this SQLite could not check */
            break;
        }
        /* No parent table: every row referring to something refers to
         * nothing, as SQLite's check sees it. */
        if (n++ == 0)
            sqlite3_str_appendf(sql,
                                parent_exists ? "NOT EXISTS (SELECT 1 FROM"
                                                " \"%w\" p WHERE 1"
                                              : "(1",
                                pt);
        /* +c.from: the child value takes the parent column's affinity and
         * collation, as in SQLite's check ('01' is not 1 for a TEXT
         * parent). */
        if (parent_exists)
            sqlite3_str_appendf(sql, " AND p.\"%w\" = +c.\"%w\"", to, from);
        /* SQLite's check: a row with a child column NULL refers to
         * nothing. */
        sqlite3_str_appendf(set, " AND c.\"%w\" IS NOT NULL", from);
    }
    sqlite3_finalize(fk);
    if (rc != SQLITE_DONE || n == 0) {
        *err = rc == SQLITE_DONE || rc == SQLITE_CORRUPT
                   ? -KZ_ESCHEMA
                   : replica__dberr(r, rc, "foreign keys");
        if (*err == -KZ_ESCHEMA)
            snprintf(r->errmsg, sizeof(r->errmsg),
                     "foreign keys: key %d of %s not found", fkid, t->name);
        goto done;
    }
    sqlite3_str_appendall(sql, ")");
    if ((setp = sqlite3_str_finish(set)) == NULL)
        *err = -KZ_ENOMEM;
    else
        sqlite3_str_appendall(sql, setp);
    set = NULL;
done:
    sqlite3_free(setp);
    if (set != NULL)
        sqlite3_free(sqlite3_str_finish(set));
    for (i = 0; i < t->n_pk; i++)
        sqlite3_free(parts[i]);
    kz_buf_free(&b);
    out = sqlite3_str_finish(sql);
    if (*err == 0 && out == NULL)
        *err = -KZ_ENOMEM;
    if (*err != 0) {
        sqlite3_free(out);
        out = NULL;
    }
    return out;
}

/* The statement of fk_row_sql(${t}, ${which}) prepared, with ?1 bound to
 * ${rowid} (${which} -1) or ${pk} (FK_ROW_BY_KEY) when given.  Returns 0
 * or an error (*${out} NULL then). */
static int
fk_rows(struct replica *r, const struct tracked *t, int which, int64_t rowid,
        sqlite3_value *pk, sqlite3_stmt **out)
{
    char *sql;
    int rc, err = 0;

    *out = NULL;
    if ((sql = fk_row_sql(r, t, which, &err)) == NULL)
        return err;
    rc = sqlite3_prepare_v2(r->db, sql, -1, out, NULL);
    sqlite3_free(sql);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "foreign keys");
    if (which == -1)
        sqlite3_bind_int64(*out, 1, rowid);
    else if (which == FK_ROW_BY_KEY)
        sqlite3_bind_value(*out, 1, pk);
    return 0;
}

/* Deletes the row of ${t} that ${q} (fk_row_sql) stands on: by ${rowid},
 * or by its key when ${rowid} is -1 (a WITHOUT ROWID table).  Returns 1,
 * or 0 when nothing was deleted (a trigger's RAISE(IGNORE)), or an
 * error. */
static int
fk_delete_row(struct replica *r, const struct tracked *t, sqlite3_stmt *q,
              int64_t rowid)
{
    sqlite3_str *sql = sqlite3_str_new(r->db);
    sqlite3_stmt *d = NULL;
    char *text;
    uint32_t i;
    int rc;

    sqlite3_str_appendf(sql, "DELETE FROM \"%w\" WHERE ", t->name);
    if (rowid >= 0)
        sqlite3_str_appendall(sql, "rowid = ?1");
    /* The row's own stored key values, compared exactly: the column's
     * collation (NOCASE, say) could match other rows as well. */
    for (i = 0; rowid < 0 && i < t->n_pk; i++)
        sqlite3_str_appendf(sql, "%s\"%w\" = ?%u COLLATE BINARY",
                            i ? " AND " : "", t->pk[i], i + 1);
    if ((text = sqlite3_str_finish(sql)) == NULL)
        return -KZ_ENOMEM;
    rc = sqlite3_prepare_v2(r->db, text, -1, &d, NULL);
    sqlite3_free(text);
    if (rc == SQLITE_OK) {
        if (rowid >= 0)
            sqlite3_bind_int64(d, 1, rowid);
        for (i = 0; rowid < 0 && i < t->n_pk; i++)
            sqlite3_bind_value(
                d, (int)i + 1,
                sqlite3_column_value(q, (int)(1 + t->n_cols + i)));
        rc = sqlite3_step(d);
    }
    sqlite3_finalize(d);
    if (rc != SQLITE_DONE)
        return replica__dberr(r, rc, "foreign keys");
    return sqlite3_changes(r->db) > 0;
}

/* The cells of ${t} that are the child (${to} = 0) or parent (${to} = 1)
 * columns of foreign key ${fkid} of table ${child}, as a mask (0: none, as
 * for a key column). */
static uint64_t
fk_mask(struct replica *r, const struct tracked *t, const char *child, int fkid,
        int to)
{
    sqlite3_stmt *st = NULL;
    uint64_t m = 0;
    uint32_t k;

    if (sqlite3_prepare_v2(r->db,
                           to ? "SELECT \"to\" FROM pragma_foreign_key_list(?)"
                                " WHERE id = ?"
                              : "SELECT \"from\" FROM"
                                " pragma_foreign_key_list(?) WHERE id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, child, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, fkid);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *c = (const char *)sqlite3_column_text(st, 0);
        for (k = 0; c && k < t->n_cols; k++)
            if (sqlite3_stricmp(t->cols[k], c) == 0)
                m |= UINT64_C(1) << (k + 1);
    }
    sqlite3_finalize(st);
    return m;
}

/*
 * A row here that this apply pointed at a row not here, or whose value
 * rows here refer to it changed (fk_undo_save kept what it held): its
 * cells in ${mask} that did go to quarantine, to be retried like any
 * other, and the row gets back what they held, as if they had not come.
 * Returns 1 when it did, 0 when nothing was kept for those cells or a
 * local constraint refuses the old values now (nothing changed then), or
 * an error.
 */
static int
fk_undo(struct actx *a, struct tracked *t, sqlite3_stmt *q, int64_t rowid,
        uint64_t mask)
{
    struct replica *r = a->r;
    uint8_t v[(REPLICA_MAX_COLS + 1) * REPLICA_CELL_BYTES];
    uint8_t pb[(REPLICA_MAX_COLS + 1) * REPLICA_CELL_BYTES];
    size_t v_len = (size_t)(t->n_cols + 1) * REPLICA_CELL_BYTES, pb_len = 0;
    struct undo {
        uint32_t k;
        struct cver was, sent, base;
        int dirty, pub;
        uint32_t flags;
        sqlite3_value *scope, *now; /* sqlite3_value_free */
    } e[REPLICA_MAX_COLS];
    sqlite3_stmt *u = NULL, *w = NULL;
    sqlite3_str *sql = NULL;
    struct ckey qk = {NULL, NULL, NULL, 0};
    uint64_t dirty, pub;
    uint32_t i, k, n = 0;
    int alive, rc, err = 0;
    char *text;

    qk.sv = sqlite3_column_value(q, 0);
    rc = sqlite3_prepare_v2(r->db,
                            "SELECT k, hlc, dev, dirty, pub, pb_hlc, pb_dev,"
                            " base_hlc, base_dev, flags, scope FROM"
                            " temp.kz_fk_undo WHERE tbl = ? AND pk = ?",
                            -1, &u, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "foreign keys");
    sqlite3_bind_int(u, 1, t->id);
    sqlite3_bind_value(u, 2, qk.sv);
    while ((rc = sqlite3_step(u)) == SQLITE_ROW && n < KZ_ARRAY_SIZE(e)) {
        struct undo *x = &e[n];
        k = (uint32_t)sqlite3_column_int(u, 0);
        if (k == 0 || k > t->n_cols || !(mask & (UINT64_C(1) << k)))
            continue;
        x->k = k;
        x->was.hlc = (uint64_t)sqlite3_column_int64(u, 1);
        x->was.dev = (uint16_t)sqlite3_column_int(u, 2);
        x->dirty = sqlite3_column_int(u, 3);
        x->pub = sqlite3_column_int(u, 4);
        x->sent.hlc = (uint64_t)sqlite3_column_int64(u, 5);
        x->sent.dev = (uint16_t)sqlite3_column_int(u, 6);
        x->base.hlc = (uint64_t)sqlite3_column_int64(u, 7);
        x->base.dev = (uint16_t)sqlite3_column_int(u, 8);
        x->flags = (uint32_t)sqlite3_column_int64(u, 9);
        x->scope = sqlite3_value_dup(sqlite3_column_value(u, 10));
        x->now = sqlite3_value_dup(sqlite3_column_value(q, (int)k));
        n++;
        if (x->scope == NULL || x->now == NULL) {
            err = -KZ_ENOMEM;
            break;
        }
    }
    if (err == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = replica__dberr(r, rc, "foreign keys");
    sqlite3_finalize(u);
    if (err || n == 0)
        goto out;

    /* The old values first: a local constraint may refuse them now (the
     * statement alone is undone then, and nothing else is done). */
    sql = sqlite3_str_new(r->db);
    sqlite3_str_appendf(sql, "UPDATE \"%w\" SET ", t->name);
    for (i = 0; i < n; i++)
        sqlite3_str_appendf(sql,
                            "%s\"%w\" = (SELECT old FROM temp.kz_fk_undo"
                            " WHERE tbl = ?1 AND pk = ?2 AND k = %u)",
                            i ? ", " : "", t->cols[e[i].k - 1], e[i].k);
    if (rowid >= 0)
        sqlite3_str_appendall(sql, " WHERE rowid = ?3");
    for (i = 0; rowid < 0 && i < t->n_pk; i++)
        sqlite3_str_appendf(sql, "%s\"%w\" = ?%u COLLATE BINARY",
                            i ? " AND " : " WHERE ", t->pk[i], i + 3);
    if ((text = sqlite3_str_finish(sql)) == NULL) {
        err = -KZ_ENOMEM;
        goto out;
    }
    rc = sqlite3_prepare_v2(r->db, text, -1, &w, NULL);
    sqlite3_free(text);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(w, 1, t->id);
        sqlite3_bind_value(w, 2, qk.sv);
        if (rowid >= 0)
            sqlite3_bind_int64(w, 3, rowid);
        for (i = 0; rowid < 0 && i < t->n_pk; i++)
            sqlite3_bind_value(
                w, (int)i + 3,
                sqlite3_column_value(q, (int)(1 + t->n_cols + i)));
        rc = sqlite3_step(w);
    }
    sqlite3_finalize(w);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        goto out; /* refused: left as it is */
    if (rc != SQLITE_DONE) {
        err = replica__dberr(r, rc, "foreign keys");
        goto out;
    }

    sqlite3_reset(a->get_clock);
    sqlite3_bind_int(a->get_clock, 1, t->id);
    sqlite3_bind_value(a->get_clock, 2, qk.sv);
    if ((rc = sqlite3_step(a->get_clock)) != SQLITE_ROW) {
        sqlite3_reset(a->get_clock);
        err = replica__dberr(r, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc,
                             "foreign keys");
        goto out;
    }
    memset(v, 0, sizeof(v));
    memset(pb, 0, sizeof(pb));
    alive = sqlite3_column_int(a->get_clock, 0);
    memcpy(v, sqlite3_column_blob(a->get_clock, 1),
           KZ_MIN((size_t)sqlite3_column_bytes(a->get_clock, 1), v_len));
    dirty = (uint64_t)sqlite3_column_int64(a->get_clock, 2);
    pb_len = (size_t)sqlite3_column_bytes(a->get_clock, 3);
    if (pb_len)
        memcpy(pb, sqlite3_column_blob(a->get_clock, 3), KZ_MIN(pb_len, v_len));
    pub = (uint64_t)sqlite3_column_int64(a->get_clock, 4);
    sqlite3_reset(a->get_clock);

    for (i = 0; i < n && err == 0; i++) {
        uint64_t bit = UINT64_C(1) << e[i].k;
        struct icell x;
        sqlite3_stmt *d = NULL;

        memset(&x, 0, sizeof(x));
        x.k = (int32_t)e[i].k;
        x.col.p = t->cols[e[i].k - 1];
        x.col.len = strlen(t->cols[e[i].k - 1]);
        x.flags = e[i].flags;
        replica__value_from_sqlite(&x.value, e[i].now);
        x.ver = cver_get(v, v_len, e[i].k);
        x.base = e[i].base;
        x.scope = (const char *)sqlite3_value_text(e[i].scope);
        if (x.scope == NULL)
            x.scope = a->scope;
        if ((err = quarantine(a, "FOREIGN KEY constraint failed", t->name, &qk,
                              &x)))
            break;
        cver_put(v, e[i].k, e[i].was);
        dirty = e[i].dirty ? dirty | bit : dirty & ~bit;
        pub = e[i].pub ? pub | bit : pub & ~bit;
        if (dirty & bit) {
            pb_len = v_len;
            cver_put(pb, e[i].k, e[i].sent);
        }
        /* Once undone: if the row still refers to nothing, it leaves
         * whole. */
        rc = sqlite3_prepare_v2(r->db,
                                "DELETE FROM temp.kz_fk_undo WHERE tbl = ?"
                                " AND pk = ? AND k = ?",
                                -1, &d, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int(d, 1, t->id);
            sqlite3_bind_value(d, 2, qk.sv);
            sqlite3_bind_int(d, 3, (int)e[i].k);
            rc = sqlite3_step(d);
        }
        sqlite3_finalize(d);
        if (rc != SQLITE_DONE)
            err = replica__dberr(r, rc, "foreign keys");
    }
    if (err == 0)
        err = clock_put(a, t, &qk, alive, v, v_len, dirty, pb, pb_len, pub);
    for (i = 0; i < n; i++) {
        sqlite3_value_free(e[i].scope);
        sqlite3_value_free(e[i].now);
    }
    return err ? err : 1;

out:
    for (i = 0; i < n; i++) {
        sqlite3_value_free(e[i].scope);
        sqlite3_value_free(e[i].now);
    }
    return err;
}

/* The scope the apply wrote row ${pk} of ${t} through, into ${out}: 1, or
 * 0 when it did not write it, or an error. */
static int
touched_scope(struct replica *r, const struct tracked *t, sqlite3_value *pk,
              char *out, size_t len, int *born)
{
    sqlite3_stmt *st = NULL;
    int rc;

    rc = sqlite3_prepare_v2(r->db,
                            "SELECT scope, born FROM temp.kz_touched WHERE"
                            " tbl = ? AND pk = ?",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(st, 1, t->id);
        sqlite3_bind_value(st, 2, pk);
        if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
            *born = sqlite3_column_int(st, 1);
        }
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : replica__dberr(r, rc, "foreign keys");
}

/* 1 when this apply wrote one of the cells ${mask} of the row of ${t} whose
 * kz_clock key is ${pk} and it was alive before (fk_undo_save kept what
 * the cell held), 0 if not, or an error. */
static int
fk_undo_has(struct replica *r, const struct tracked *t, sqlite3_value *pk,
            uint64_t mask)
{
    sqlite3_stmt *st = NULL;
    int rc, has = 0;

    rc = sqlite3_prepare_v2(r->db,
                            "SELECT EXISTS (SELECT 1 FROM temp.kz_fk_undo"
                            " WHERE tbl = ?1 AND pk = ?2 AND (?3 >> k) & 1)",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(st, 1, t->id);
        sqlite3_bind_value(st, 2, pk);
        sqlite3_bind_int64(st, 3, (int64_t)mask);
        if ((rc = sqlite3_step(st)) == SQLITE_ROW)
            has = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? has : replica__dberr(r, rc, "foreign keys");
}

/* The scope cell ${k} of a row of ${t} that came through ${scope} travels
 * in (capture.c): a site table's cell in site:X when it was published
 * (${pub}), else in private:X. */
static void
cell_scope(const struct tracked *t, const char *scope, int pub, char *out,
           size_t len)
{
    const char *site = strchr(scope, ':');

    if (t->kind == TRACK_NETWORK || site == NULL)
        snprintf(out, len, "%s", scope);
    else
        snprintf(out, len, "%s:%s",
                 t->kind == TRACK_SITE && pub ? "site" : "private", site + 1);
}

/* Moves the row ${q} stands on to quarantine, with every known cell and
 * its version, if this apply wrote it (local rows are not ours to move:
 * *${here} is set for them); *${moved} is set when it did. */
static int
fk_move_row(struct actx *a, struct tracked *t, sqlite3_stmt *q, int64_t rowid,
            int fkid, int *moved, int *here)
{
    struct replica *r = a->r;
    struct ckey qk = {NULL, NULL, NULL, 0};
    char scope[KZ_LIM_NAME_MAX + 1], cs[KZ_LIM_NAME_MAX + 1];
    uint64_t mask = fk_mask(r, t, t->name, fkid, 0);
    uint32_t k;
    int rc, born = 0, err = 0;

    if ((rc = touched_scope(r, t, sqlite3_column_value(q, 0), scope,
                            sizeof(scope), &born)) <= 0) {
        *here = rc == 0;
        return rc;
    }
    /* Alive here before, and the cells at fault are not this apply's: a
     * row here like any other (moved out whole, it would take local edits
     * with it, never to be sent). */
    if (!born &&
        (rc = fk_undo_has(r, t, sqlite3_column_value(q, 0), mask)) <= 0) {
        *here = rc == 0;
        return rc;
    }
    if ((rc = fk_undo(a, t, q, rowid, mask)) != 0) {
        if (rc > 0)
            *moved = 1;
        return rc < 0 ? rc : 0;
    }
    sqlite3_reset(a->get_clock);
    sqlite3_bind_int(a->get_clock, 1, t->id);
    sqlite3_bind_value(a->get_clock, 2, sqlite3_column_value(q, 0));
    if (sqlite3_step(a->get_clock) == SQLITE_ROW) {
        const uint8_t *v = sqlite3_column_blob(a->get_clock, 1);
        size_t v_len = (size_t)sqlite3_column_bytes(a->get_clock, 1);
        uint64_t dirty = (uint64_t)sqlite3_column_int64(a->get_clock, 2);
        const uint8_t *pb = sqlite3_column_blob(a->get_clock, 3);
        size_t pb_len = (size_t)sqlite3_column_bytes(a->get_clock, 3);
        uint64_t pub = (uint64_t)sqlite3_column_int64(a->get_clock, 4);
        for (k = 0; err == 0 && k <= t->n_cols; k++) {
            struct icell x;
            memset(&x, 0, sizeof(x));
            x.k = (int32_t)k;
            x.ver = cver_get(v, v_len, k);
            if (x.ver.hlc == 0)
                continue;
            if ((dirty >> k) & 1) {
                /* An edit here not sent yet: sent once the row is back
                 * (apply_row), with the base it had. */
                x.flags = REPLICA_QF_UNSENT;
                x.base = cver_get(pb, pb_len, k);
            }
            cell_scope(t, scope, (pub >> k) & 1, cs, sizeof(cs));
            x.scope = cs;
            if (k == 0) {
                x.value.type = KZ_V_INT;
                x.value.i = 1;
            } else {
                x.col.p = t->cols[k - 1];
                x.col.len = strlen(t->cols[k - 1]);
                replica__value_from_sqlite(&x.value,
                                           sqlite3_column_value(q, (int)k));
            }
            qk.sv = sqlite3_column_value(q, 0);
            err = quarantine(a, "FOREIGN KEY constraint failed", t->name, &qk,
                             &x);
        }
    }
    sqlite3_reset(a->get_clock);
    if (err == 0 && (rc = fk_delete_row(r, t, q, rowid)) <= 0)
        return rc; /* not deleted: the commit says why (no endless rounds) */
    if (err == 0) {
        rc = row_sql(r, "DELETE FROM kz_clock WHERE tbl = ? AND pk = ?", t->id,
                     sqlite3_column_value(q, 0));
        if (rc != SQLITE_DONE)
            err = replica__dberr(r, rc, "foreign keys");
    }
    if (err == 0)
        *moved = 1;
    return err;
}

/* A foreign key (of ${child}, id ${fkid}) that rows here refer to nothing
 * through. */
struct fk_here {
    char *child;  /* sqlite3_free */
    char *parent; /* sqlite3_free */
    int fkid;
};

/* Adds (${child}, ${fkid}) to the list *${hp} of *${n} (room for *${cap})
 * unless there. */
static int
fk_here_note(struct fk_here **hp, uint32_t *n, uint32_t *cap, const char *child,
             const char *parent, int fkid)
{
    struct fk_here *h = *hp;
    uint32_t i;

    if (child == NULL || parent == NULL)
        return 0;
    for (i = 0; i < *n; i++)
        if (h[i].fkid == fkid && strcmp(h[i].child, child) == 0)
            return 0;
    if (*n == *cap) {
        uint32_t c2 = *cap ? *cap * 2 : 8;
        if ((h = kz_reallocarray(h, c2, sizeof(*h))) == NULL)
            return -KZ_ENOMEM;
        *hp = h;
        *cap = c2;
    }
    h[*n].child = sqlite3_mprintf("%s", child);
    h[*n].parent = sqlite3_mprintf("%s", parent);
    h[*n].fkid = fkid;
    if (h[*n].child == NULL || h[*n].parent == NULL) {
        sqlite3_free(h[*n].child);
        sqlite3_free(h[*n].parent);
        return -KZ_ENOMEM;
    }
    (*n)++;
    return 0;
}

/* How many rows of ${child} refer to nothing through its key ${fkid}, as
 * SQLite's own check counts them; negative on error. */
static int64_t
fk_orphans(struct replica *r, const char *child, int fkid)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    int rc;

    rc = sqlite3_prepare_v2(r->db,
                            "SELECT count(*) FROM pragma_foreign_key_check(?1)"
                            " WHERE fkid = ?2",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, child, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, fkid);
        if ((rc = sqlite3_step(st)) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return n >= 0 ? n : replica__dberr(r, rc, "foreign keys");
}

/* fk_undo of the cells ${mask} of the row of ${t} whose key is ${pk}: 0,
 * with *${refused} set when it was not done (no such row, nothing kept for
 * them, or a local constraint refuses the old values now), or an
 * error. */
static int
fk_undo_key(struct actx *a, struct tracked *t, sqlite3_value *pk, uint64_t mask,
            int *refused)
{
    struct replica *r = a->r;
    sqlite3_stmt *q = NULL;
    int rc, err;

    *refused = 0;
    if ((err = fk_rows(r, t, FK_ROW_BY_KEY, -1, pk, &q)))
        return err;
    if ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        rc = fk_undo(a, t, q, -1, mask);
        if (rc == 0)
            *refused = 1;
        else if (rc < 0)
            err = rc;
    } else if (rc != SQLITE_DONE) {
        err = replica__dberr(r, rc, "foreign keys");
    } else {
        *refused = 1;
    }
    sqlite3_finalize(q);
    return err;
}

/*
 * How many rows of ${child} refer to nothing through its key ${fkid} and
 * stay so (rows here: not written by this apply, or alive before it
 * without their cells at fault from it); those this apply wrote otherwise
 * are moved by the next round (fk_move_row).  Negative on error.
 */
static int64_t
fk_stuck(struct actx *a, const char *child, int fkid)
{
    struct replica *r = a->r;
    struct tracked *t = track__by_name(r, child, strlen(child));
    sqlite3_stmt *chk = NULL;
    char scope[KZ_LIM_NAME_MAX + 1];
    uint64_t mask;
    int64_t n = 0;
    int rc, err = 0;

    if (t == NULL)
        return fk_orphans(r, child, fkid);
    mask = fk_mask(r, t, child, fkid, 0);
    rc = sqlite3_prepare_v2(r->db,
                            "SELECT rowid FROM pragma_foreign_key_check(?1)"
                            " WHERE fkid = ?2",
                            -1, &chk, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "foreign keys");
    sqlite3_bind_text(chk, 1, child, -1, SQLITE_STATIC);
    sqlite3_bind_int(chk, 2, fkid);
    while (err == 0 && (rc = sqlite3_step(chk)) == SQLITE_ROW) {
        int no_rowid = sqlite3_column_type(chk, 0) == SQLITE_NULL;
        sqlite3_stmt *q = NULL;

        /* WITHOUT ROWID: all of the key's orphans at once. */
        if ((err = fk_rows(r, t, no_rowid ? fkid : -1,
                           no_rowid ? -1 : sqlite3_column_int64(chk, 0), NULL,
                           &q)))
            break;
        while (err == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
            sqlite3_value *key = sqlite3_column_value(q, 0);
            int born = 0, w;
            if ((w = touched_scope(r, t, key, scope, sizeof(scope), &born)) ==
                    1 &&
                !born)
                w = fk_undo_has(r, t, key, mask);
            if (w < 0)
                err = w;
            else if (w == 0)
                n++;
        }
        if (err == 0 && rc != SQLITE_DONE)
            err = replica__dberr(r, rc, "foreign keys");
        sqlite3_finalize(q);
        if (no_rowid)
            break;
    }
    if (err == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = replica__dberr(r, rc, "foreign keys");
    sqlite3_finalize(chk);
    return err ? err : n;
}

/* Ends the trial savepoint: kept, or undone with the stats as before. */
static int
undo_try_end(struct actx *a, int keep, const struct apply_stats *st)
{
    if (keep)
        return replica__exec(a->r, "RELEASE kz_undo_try");
    *a->st = *st;
    return replica__exec(a->r, "ROLLBACK TO kz_undo_try; RELEASE kz_undo_try");
}

/*
 * Undoes, under the caller's savepoint, the rows ${cand}[j] with ${in}[j]
 * set, again while one more goes: a row's old value may be free only once
 * another row's is back.  *${n_done} is how many went; ${done}[j] whether
 * cand[j] did.
 */
static int
fk_undo_set(struct actx *a, struct tracked *pt, sqlite3_value **cand,
            const uint8_t *in, uint8_t *done, uint32_t n, uint64_t mask,
            uint32_t *n_done)
{
    uint32_t j, pass, was;
    int err = 0;

    memset(done, 0, n);
    *n_done = 0;
    for (pass = 0; err == 0 && pass < n; pass++) {
        was = *n_done;
        for (j = 0; err == 0 && j < n; j++) {
            int refused = 0;
            if (!in[j] || done[j])
                continue;
            err = fk_undo_key(a, pt, cand[j], mask, &refused);
            if (err == 0 && !refused) {
                done[j] = 1;
                (*n_done)++;
            }
        }
        if (*n_done == was)
            break;
    }
    return err;
}

/* Rows whose undo is weighed one by one when all go back together: each
 * weighing tries the whole set again, at every apply while they wait (a
 * review timed 60 rows beside 20,000 others at 4.7 times the cost of
 * keeping them whole). */
#define FK_UNDO_WEIGH_MAX 16u

/*
 * No one row of ${cand} helps alone (fk_undo_parents): all are tried back
 * together, and kept so when fewer rows are left referring to nothing than
 * ${before}.  Then each row that went is left out in turn and stays out
 * when the others leave no more rows referring to nothing without it: an
 * unrelated change of the same apply (another row's value that nothing
 * here refers to) is not held back with them.  Weighing costs a try of
 * the whole set per row, so a set of over FK_UNDO_WEIGH_MAX rows is kept
 * as a whole.  *${kept} is set when an undo was kept.
 */
static int
fk_undo_together(struct actx *a, struct tracked *pt, const struct fk_here *h,
                 sqlite3_value **cand, uint32_t n, uint64_t mask,
                 int64_t before, int *kept)
{
    struct apply_stats keep = *a->st;
    uint8_t *in = kz_calloc(2, n), *done;
    uint32_t j, n_in, n_done = 0;
    int64_t after = before, best;
    int err, e2, match = 1; /* the database holds the undo of ${in} */

    if (in == NULL)
        return -KZ_ENOMEM;
    done = in + n;
    memset(in, 1, n);
    if ((err = replica__exec(a->r, "SAVEPOINT kz_undo_try"))) {
        kz_free(in);
        return err;
    }
    err = fk_undo_set(a, pt, cand, in, done, n, mask, &n_done);
    if (err == 0 && n_done > 0)
        after = fk_stuck(a, h->child, h->fkid);
    if (after < 0)
        err = (int)after;
    best = after;
    n_in = n_done;
    memcpy(in, done, n);
    for (j = 0; err == 0 && best < before && n_in > 1 &&
                n_in <= FK_UNDO_WEIGH_MAX && j < n;
         j++) {
        uint32_t got = 0;
        if (!in[j])
            continue;
        *a->st = keep;
        if ((err = replica__exec(a->r, "ROLLBACK TO kz_undo_try")))
            break;
        in[j] = 0;
        err = fk_undo_set(a, pt, cand, in, done, n, mask, &got);
        after = err || got < n_in - 1 ? before : fk_stuck(a, h->child, h->fkid);
        if (after < 0)
            err = (int)after;
        if (err == 0 && after <= best) {
            best = after;
            n_in--;
            match = 1;
        } else {
            in[j] = 1;
            match = 0;
        }
    }
    if (err == 0 && best < before && !match) {
        /* The set weighed, done again: the last try left one out. */
        uint32_t got = 0;
        *a->st = keep;
        err = replica__exec(a->r, "ROLLBACK TO kz_undo_try");
        if (err == 0)
            err = fk_undo_set(a, pt, cand, in, done, n, mask, &got);
    }
    e2 = undo_try_end(a, err == 0 && best < before, &keep);
    err = err ? err : e2;
    *kept = err == 0 && best < before;
    kz_free(in);
    return err;
}

/*
 * Rows here refer to nothing through ${h}'s keys, and no row this apply
 * wrote does: a value they refer to changed in a row here.  Each row of
 * the parent table this apply changed such a value in (kz_fk_undo) is
 * tried under a savepoint with its old values back (fk_undo: its new
 * values wait in quarantine), and kept so when fewer rows are left
 * referring to nothing for good (fk_stuck).  When no one row helps (a
 * value moved from one row to another: each row's old value is refused
 * or leaves another row without its parent), all of them are tried back
 * together.  *${undone} is set when a row was kept so.
 */
static int
fk_undo_parents(struct actx *a, const struct fk_here *h, uint32_t n,
                int *undone)
{
    struct replica *r = a->r;
    uint32_t i, j;
    int err = 0;

    for (i = 0; i < n && err == 0; i++) {
        struct tracked *pt =
            track__by_name(r, h[i].parent, strlen(h[i].parent));
        sqlite3_value **cand = NULL;
        sqlite3_stmt *st = NULL;
        uint32_t n_cand = 0, cap = 0;
        uint64_t mask;
        int64_t before, after;
        int rc, kept = 0;

        if (pt == NULL || pt->ref_cols == 0)
            continue;
        /* Only the values the key refers to are put back. */
        if ((mask = fk_mask(r, pt, h[i].child, h[i].fkid, 1)) == 0)
            continue;
        rc = sqlite3_prepare_v2(r->db,
                                "SELECT DISTINCT pk FROM temp.kz_fk_undo"
                                " WHERE tbl = ?",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
            return replica__dberr(r, rc, "foreign keys");
        sqlite3_bind_int(st, 1, pt->id);
        while (err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (n_cand == cap) {
                uint32_t c2 = cap ? cap * 2 : 8;
                sqlite3_value **g = kz_reallocarray(cand, c2, sizeof(*cand));
                if (g == NULL) {
                    err = -KZ_ENOMEM;
                    break;
                }
                cand = g;
                cap = c2;
            }
            if ((cand[n_cand] =
                     sqlite3_value_dup(sqlite3_column_value(st, 0))) == NULL)
                err = -KZ_ENOMEM;
            else
                n_cand++;
        }
        if (err == 0 && rc != SQLITE_DONE)
            err = replica__dberr(r, rc, "foreign keys");
        sqlite3_finalize(st);
        before = n_cand && err == 0 ? fk_stuck(a, h[i].child, h[i].fkid) : 0;
        if (before < 0)
            err = (int)before;
        for (j = 0; j < n_cand && err == 0 && before > 0; j++) {
            struct apply_stats keep = *a->st;
            int refused = 0, e2;

            if ((err = replica__exec(r, "SAVEPOINT kz_undo_try")))
                break;
            err = fk_undo_key(a, pt, cand[j], mask, &refused);
            after =
                err || refused ? before : fk_stuck(a, h[i].child, h[i].fkid);
            if (after < 0)
                err = (int)after;
            e2 = undo_try_end(a, err == 0 && after < before, &keep);
            err = err ? err : e2;
            if (err == 0 && after < before) {
                kept = 1;
                before = after;
            }
        }
        if (err == 0 && before > 0 && !kept && n_cand > 1)
            err = fk_undo_together(a, pt, &h[i], cand, n_cand, mask, before,
                                   &kept);
        if (kept)
            *undone = 1;
        for (j = 0; j < n_cand; j++)
            sqlite3_value_free(cand[j]);
        kz_free(cand);
    }
    return err;
}

static int
quarantine_fk_violations(struct actx *a)
{
    struct replica *r = a->r;
    int cur = 0, hi = 0, err = 0;

    /* Nothing written that a foreign key leaves from or refers to, and
     * nothing pending: no need to check the whole database.  SQLite's
     * count alone is not enough: a row here that referred to nothing
     * (written with foreign keys off) and gets its parent in this apply
     * takes one off it. */
    if (!r->fk_written &&
        sqlite3_db_status(r->db, SQLITE_DBSTATUS_DEFERRED_FKS, &cur, &hi, 0) ==
            SQLITE_OK &&
        cur == 0)
        return 0;

    /* Until a round moves nothing: a row that referred to a moved one is
     * found in a later round, so a chain needs as many rounds as it is
     * deep.  Each round that goes on deletes a row this apply wrote or a
     * kz_fk_undo entry (fk_undo), so there are at most as many rounds as
     * those. */
    for (;;) {
        sqlite3_stmt *chk = NULL;
        struct {
            const struct tracked *t;
            int fk;
        } done[64];
        struct fk_here *here = NULL;
        uint32_t n_done = 0, n_here = 0, cap_here = 0, d;
        int moved = 0, rc;

        rc = sqlite3_prepare_v2(r->db, "PRAGMA foreign_key_check", -1, &chk,
                                NULL);
        if (rc != SQLITE_OK)
            return replica__dberr(r, rc, "foreign keys");
        while (err == 0 && (rc = sqlite3_step(chk)) == SQLITE_ROW) {
            const char *tn = (const char *)sqlite3_column_text(chk, 0);
            int no_rowid = sqlite3_column_type(chk, 1) == SQLITE_NULL;
            int64_t rowid = no_rowid ? -1 : sqlite3_column_int64(chk, 1);
            const char *pn = (const char *)sqlite3_column_text(chk, 2);
            int fkid = sqlite3_column_int(chk, 3);
            struct tracked *t = tn ? track__by_name(r, tn, strlen(tn)) : NULL;
            sqlite3_stmt *q = NULL;

            if (t == NULL) {
                err = fk_here_note(&here, &n_here, &cap_here, tn, pn, fkid);
                continue;
            }
            /* WITHOUT ROWID: all of a key's orphans at once, each (table,
             * key) once a round (SQLite's check lists them row by row). */
            if (no_rowid) {
                for (d = 0; d < n_done; d++)
                    if (done[d].t == t && done[d].fk == fkid)
                        break;
                if (d < n_done)
                    continue;
                if (n_done < KZ_ARRAY_SIZE(done)) {
                    done[n_done].t = t;
                    done[n_done++].fk = fkid;
                }
            }
            if ((err = fk_rows(r, t, no_rowid ? fkid : -1, rowid, NULL, &q)))
                break;
            while (err == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
                int local = 0;
                err = fk_move_row(a, t, q, rowid, fkid, &moved, &local);
                if (err == 0 && local)
                    err = fk_here_note(&here, &n_here, &cap_here, tn, pn, fkid);
            }
            if (err == 0 && rc != SQLITE_DONE)
                err = replica__dberr(r, rc, "foreign keys");
            sqlite3_finalize(q);
        }
        sqlite3_finalize(chk);
        /* Only rows here are left referring to nothing. */
        if (err == 0 && moved == 0 && n_here > 0)
            err = fk_undo_parents(a, here, n_here, &moved);
        for (d = 0; d < n_here; d++) {
            sqlite3_free(here[d].child);
            sqlite3_free(here[d].parent);
        }
        kz_free(here);
        if (err || moved == 0)
            return err;
    }
}

static int
seen_get(struct replica *r, const uint8_t *author, const char *scope,
         uint64_t *seq)
{
    sqlite3_stmt *st = NULL;
    int rc;

    *seq = 0;
    rc = sqlite3_prepare_v2(r->db,
                            "SELECT seq FROM kz_seen WHERE author = ? AND"
                            " scope = ?",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "seen");
    sqlite3_bind_blob(st, 1, author, KZ_KEY_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, scope, -1, SQLITE_STATIC);
    if ((rc = sqlite3_step(st)) == SQLITE_ROW)
        *seq = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE
               ? 0
               : replica__dberr(r, rc, "seen");
}

/* Inside replica_retry_quarantine's transaction: every cell waiting in
 * quarantine is tried again, and the rows that then refer to nothing go
 * back. */
static int
retry_all(struct replica *r, struct apply_stats *st)
{
    struct actx a;
    int err;

    if ((err = actx_init(&a, r, "network", st)) == 0 &&
        (err = notes_clear(r)) == 0 && (err = retry_quarantine(&a, 1)) == 0)
        err = quarantine_fk_violations(&a);
    actx_fini(&a);
    return err;
}

int
replica_apply(struct replica *r, const struct kz_cs_header *hdr,
              const uint8_t *body, size_t body_len, struct apply_stats *st_out)
{
    struct replica_in in = {hdr, body, body_len, 0};

    return replica_apply_many(r, &in, 1, st_out, NULL);
}

int
replica_apply_at(struct replica *r, const struct kz_cs_header *hdr,
                 const uint8_t *body, size_t body_len, uint64_t server_seq,
                 struct apply_stats *st_out)
{
    struct replica_in in = {hdr, body, body_len, server_seq};

    return replica_apply_many(r, &in, 1, st_out, NULL);
}

/* Whether the row's cells take it away: an existence cell of 0, or one
 * retracted from a site scope. */
static int
is_delete(const struct icell *c, uint32_t n)
{
    uint32_t i;

    for (i = 0; i < n; i++)
        if (c[i].k == 0)
            return (c[i].flags & KZ_CELL_RETRACT) ||
                   (c[i].value.type == KZ_V_INT && c[i].value.i == 0);
    return 0;
}

/*
 * The deletes apply_one put off.  First all of them together, under a
 * savepoint: when no foreign key was pending before and none is after,
 * they stay (parents and children, cycles too, leave together).
 * Otherwise they are undone and go one by one, each once no row here
 * refers to it any more; the rest apply_row keeps in quarantine while
 * rows still refer to them.
 */
static int
apply_held(struct actx *a, struct kz_cs_rd *rd, struct tracked **tmap,
           struct held *held, uint32_t n_held)
{
    struct replica *r = a->r;
    struct apply_stats keep = *a->st;
    uint32_t refused = a->fk_refused, i;
    int cur = 0, hi = 0, progress, rc, err = 0;

    if (sqlite3_db_status(r->db, SQLITE_DBSTATUS_DEFERRED_FKS, &cur, &hi, 0) ==
            SQLITE_OK &&
        cur == 0) {
        if ((err = replica__exec(r, "SAVEPOINT kz_held")))
            return err;
        for (i = 0; i < n_held && err == 0; i++) {
            struct held *h = &held[i];
            err =
                apply_row(a, tmap[h->table], kz_cs_rd_table(rd, h->table)->name,
                          h->pk, h->n_pk, h->cells, h->n);
        }
        /* An immediate key (RESTRICT, or not deferrable) refused one of
         * them at once: one by one instead, the rows referring first. */
        if (err == 0 && a->fk_refused == refused &&
            sqlite3_db_status(r->db, SQLITE_DBSTATUS_DEFERRED_FKS, &cur, &hi,
                              0) == SQLITE_OK &&
            cur == 0)
            return replica__exec(r, "RELEASE kz_held");
        (void)sqlite3_exec(r->db, "ROLLBACK TO kz_held; RELEASE kz_held", NULL,
                           NULL, NULL);
        *a->st = keep;
        a->fk_refused = refused;
        if (err)
            return err;
    }
    for (progress = 1; progress;) {
        progress = 0;
        for (i = 0; i < n_held; i++) {
            struct held *h = &held[i];
            if (h->done)
                continue;
            if ((rc = fk_held(a, tmap[h->table], h->pk, h->n_pk)) < 0)
                return rc;
            if (rc)
                continue;
            h->done = progress = 1;
            if ((err = apply_row(a, tmap[h->table],
                                 kz_cs_rd_table(rd, h->table)->name, h->pk,
                                 h->n_pk, h->cells, h->n)))
                return err;
        }
    }
    a->fk_check = 1;
    for (i = 0; i < n_held && err == 0; i++) {
        struct held *h = &held[i];
        if (!h->done)
            err =
                apply_row(a, tmap[h->table], kz_cs_rd_table(rd, h->table)->name,
                          h->pk, h->n_pk, h->cells, h->n);
    }
    return err;
}

/*
 * Merges one changeset inside the caller's transaction, which has folded
 * the log and turned applying on (replica_apply_many).  On an error the caller
 * rolls the whole transaction back; r->errmsg says why.
 */
static int
apply_one(struct replica *r, const struct kz_cs_header *hdr,
          const uint8_t *body, size_t body_len, uint64_t at_seq,
          struct apply_stats *st)
{
    struct kz_cs_rd *rd = NULL;
    struct actx a;
    struct tracked **tmap = NULL;
    int32_t **cmap = NULL;
    struct icell cells[MAX_CELLS];
    struct held *held = NULL;
    uint64_t seen = 0, now;
    uint32_t nt = 0, i, n_held = 0, cap_held = 0;
    const char *why = NULL;
    int rc, err;

    memset(st, 0, sizeof(*st));
    memset(&a, 0, sizeof(a));
    r->errmsg[0] = '\0';
    if (memcmp(hdr->author, r->key, KZ_KEY_LEN) == 0) {
        /* Our own: here already — unless this replica is older than it. */
        if ((err = replica_own_check(r, hdr->scope, hdr->author_seq)))
            return err;
        st->duplicate = 1;
        return at_seq ? replica__cursor_set(r, hdr->scope, at_seq) : 0;
    }
    if (!reads_scope(r, hdr->scope)) {
        snprintf(r->errmsg, sizeof(r->errmsg),
                 "this device does not read scope %s", hdr->scope);
        return -KZ_EPERM;
    }
    if ((err = seen_get(r, hdr->author, hdr->scope, &seen)))
        return err;
    if (hdr->author_seq <= seen) {
        st->duplicate = 1;
        return at_seq ? replica__cursor_set(r, hdr->scope, at_seq) : 0;
    }
    if (hdr->author_seq != seen + 1) {
        snprintf(r->errmsg, sizeof(r->errmsg),
                 "changeset %llu of this author in %s arrived after %llu: "
                 "%llu missing",
                 (unsigned long long)hdr->author_seq, hdr->scope,
                 (unsigned long long)seen,
                 (unsigned long long)(hdr->author_seq - seen - 1));
        return -KZ_ESEQ;
    }
    if ((err = kz_cs_rd_new(&rd, body, body_len, &why))) {
        snprintf(r->errmsg, sizeof(r->errmsg), "changeset body: %s",
                 why ? why : kz_strerror(err));
        return err;
    }
    if ((err = actx_init(&a, r, hdr->scope, st)))
        goto out;
    if ((err = notes_clear(r)))
        goto out;

    /* Map the body's tables and columns to ours, by name. */
    nt = kz_cs_rd_n_tables(rd);
    tmap = kz_calloc(nt + 1, sizeof(*tmap));
    cmap = kz_calloc(nt + 1, sizeof(*cmap));
    if (tmap == NULL || cmap == NULL) {
        err = -KZ_ENOMEM;
        goto out;
    }
    for (i = 0; i < nt; i++) {
        const struct kz_cs_table *bt = kz_cs_rd_table(rd, i);
        struct tracked *t = track__by_name(r, bt->name.p, bt->name.len);
        uint32_t j, k;

        if (t && !kind_fits_scope(t->kind, hdr->scope)) {
            snprintf(r->errmsg, sizeof(r->errmsg),
                     "table %s may not be written through scope %s", t->name,
                     hdr->scope);
            err = -KZ_EPERM;
            goto out;
        }
        tmap[i] = t;
        /* The apply's writes to T need no capture: it would log them only
         * for replica__set_applying to delete them again.  The schema's own
         * triggers keep firing. */
        if (t && (err = track__capture_pause(r, t)))
            goto out;
        cmap[i] = kz_calloc(bt->n_cols + 1, sizeof(int32_t));
        if (cmap[i] == NULL) {
            err = -KZ_ENOMEM;
            goto out;
        }
        for (j = 0; j < bt->n_cols; j++) {
            cmap[i][j + 1] = -1;
            for (k = 0; t && k < t->n_cols; k++) {
                if (strlen(t->cols[k]) == bt->cols[j].len &&
                    memcmp(t->cols[k], bt->cols[j].p, bt->cols[j].len) == 0)
                    cmap[i][j + 1] = (int32_t)k + 1;
            }
        }
    }

    now = kz_env_wall_ms(r->env);
    for (;;) {
        struct kz_cs_row row;
        const struct kz_cs_table *bt;
        uint32_t n = 0;

        rc = kz_cs_rd_next_row(rd, &row);
        if (rc == 0)
            break;
        if (rc < 0) {
            err = rc;
            goto malformed;
        }
        bt = kz_cs_rd_table(rd, row.table);
        for (;;) {
            struct kz_cs_cell c;
            struct icell *x;
            uint16_t dev = 0, bdev = 0;

            rc = kz_cs_rd_next_cell(rd, &c);
            if (rc == 0)
                break;
            if (rc < 0) {
                err = rc;
                goto malformed;
            }
            if (n >= MAX_CELLS) {
                err = -KZ_EMALFORMED;
                why = "too many cells in one row";
                goto malformed;
            }
            x = &cells[n++];
            memset(x, 0, sizeof(*x));
            x->k = c.col == 0 ? 0 : cmap[row.table][c.col];
            if (c.col > 0)
                x->col = bt->cols[c.col - 1];
            x->flags = c.flags;
            x->value = c.value;
            x->scope = hdr->scope;
            if ((c.flags & KZ_CELL_RETRACT) &&
                strncmp(hdr->scope, "site:", 5) != 0) {
                err = -KZ_EMALFORMED;
                why = "a retraction outside a site scope";
                goto malformed;
            }
            if ((err =
                     replica__dev_idx(r, kz_cs_rd_author(rd, c.author), &dev)))
                goto out;
            if (c.base_hlc &&
                (err = replica__dev_idx(r, kz_cs_rd_author(rd, c.base_author),
                                        &bdev)))
                goto out;
            x->ver.hlc = c.hlc;
            x->ver.dev = dev;
            x->base.hlc = c.base_hlc;
            x->base.dev = c.base_hlc ? bdev : 0;
            if (!kz_hlc_is_future(&r->clock, c.hlc, now) &&
                (err = kz_hlc_observe(&r->clock, c.hlc, now)))
                goto out;
        }
        if (tmap[row.table] != NULL && row.n_pk != tmap[row.table]->n_pk) {
            err = -KZ_EMALFORMED;
            why = "wrong number of key values for the table";
            goto malformed;
        }
        if (tmap[row.table] != NULL && tmap[row.table]->referenced &&
            is_delete(cells, n)) {
            struct held *h;
            if (n_held == cap_held) {
                uint32_t cap = cap_held ? cap_held * 2 : 16;
                struct held *g = kz_reallocarray(held, cap, sizeof(*held));
                if (g == NULL) {
                    err = -KZ_ENOMEM;
                    goto out;
                }
                held = g;
                cap_held = cap;
            }
            h = &held[n_held];
            memset(h, 0, sizeof(*h));
            h->table = row.table;
            h->n_pk = row.n_pk;
            memcpy(h->pk, row.pk, row.n_pk * sizeof(*row.pk));
            if ((h->cells = kz_mallocarray(n, sizeof(*cells))) == NULL) {
                err = -KZ_ENOMEM;
                goto out;
            }
            memcpy(h->cells, cells, n * sizeof(*cells));
            h->n = n;
            n_held++;
            continue;
        }
        if ((err = apply_row(&a, tmap[row.table], bt->name, row.pk, row.n_pk,
                             cells, n)))
            goto out;
    }
    /* Rows of this changeset that refer to nothing go to quarantine first,
     * so that no key is pending when the held deletes go (apply_held). */
    if (n_held > 0) {
        /* quarantine_fk_violations moves them again below, and counts
         * them then. */
        uint32_t q = st->quarantined;
        if ((err = quarantine_fk_violations(&a)))
            goto out;
        st->quarantined = q;
        if ((err = apply_held(&a, rd, tmap, held, n_held)))
            goto out;
    }
    /* After every changeset, not once a batch: which held delete goes
     * depends on what came before it, and a batch's bounds differ from
     * replica to replica; the server's order is the same for all. */
    if ((err = retry_quarantine(&a, 0)) || (err = quarantine_fk_violations(&a)))
        goto out;
    {
        sqlite3_stmt *s = NULL;
        rc = sqlite3_prepare_v2(
            r->db, "INSERT OR REPLACE INTO kz_seen VALUES (?, ?, ?)", -1, &s,
            NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_blob(s, 1, hdr->author, KZ_KEY_LEN, SQLITE_STATIC);
            sqlite3_bind_text(s, 2, hdr->scope, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 3, (int64_t)hdr->author_seq);
            rc = sqlite3_step(s);
        }
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE) {
            err = replica__dberr(r, rc, "seen");
            goto out;
        }
    }
    err = at_seq ? replica__cursor_set(r, hdr->scope, at_seq) : 0;
    goto out;

malformed:
    snprintf(r->errmsg, sizeof(r->errmsg), "changeset body: %s",
             why ? why
                 : (kz_cs_rd_why(rd) ? kz_cs_rd_why(rd) : kz_strerror(err)));
out:
    actx_fini(&a);
    for (i = 0; i < n_held; i++)
        kz_free(held[i].cells);
    kz_free(held);
    for (i = 0; cmap && i < nt; i++)
        kz_free(cmap[i]);
    kz_free(cmap);
    kz_free(tmap);
    kz_cs_rd_free(rd);
    return err;
}

/*
 * Merges ${n} changesets in one transaction: one fold, one pause of the
 * capture triggers, one commit.  When anything fails (a changeset, or the
 * commit: deferred foreign keys are checked there), the transaction is
 * rolled back and the changesets are merged again one per transaction, as
 * without batching, up to the first that fails: those before it are kept,
 * its error is returned with *${n_done} = its index and r->errmsg saying
 * why.
 */
int
replica_apply_many(struct replica *r, const struct replica_in *in, uint32_t n,
                   struct apply_stats *st, uint32_t *n_done)
{
    struct apply_stats st0;
    char keep[sizeof(r->errmsg)];
    uint32_t i = 0;
    int err;

    if (n_done)
        *n_done = 0;
    r->errmsg[0] = '\0';
    if (n == 0)
        return 0;
    if ((err = replica__begin(r)))
        return err;
    if ((err = capture__fold(r)) || (err = replica__set_applying(r, 1)) ||
        (err = fk_refresh(r)))
        goto fail;
    for (i = 0; i < n; i++) {
        struct apply_stats *sti = st ? &st[i] : &st0;
        if ((err = apply_one(r, in[i].hdr, in[i].body, in[i].body_len,
                             in[i].server_seq, sti)))
            goto fail;
    }
    if ((err = replica__set_applying(r, 0)) || (err = replica__save_clock(r)) ||
        (err = replica__commit(r)))
        goto fail;
    if (n_done)
        *n_done = n;
    return 0;

fail:
    memcpy(keep, r->errmsg, sizeof(keep));
    replica__rollback(r);
    memcpy(r->errmsg, keep, sizeof(keep));
    if (n == 1)
        return err;
    /* One by one: the one at fault is found and named, those before it
     * kept. */
    for (i = 0; i < n; i++) {
        if ((err = replica_apply_many(r, &in[i], 1, st ? &st[i] : NULL, NULL)))
            break;
    }
    if (n_done)
        *n_done = i;
    return err;
}

int
replica_retry_quarantine(struct replica *r, struct apply_stats *st_out)
{
    struct apply_stats st0, *st = st_out ? st_out : &st0;
    int err;

    memset(st, 0, sizeof(*st));
    if ((err = replica__begin(r)))
        return err;
    if ((err = capture__fold(r)) || (err = replica__set_applying(r, 1)) ||
        (err = fk_refresh(r)) || (err = retry_all(r, st)) ||
        (err = replica__set_applying(r, 0)) || (err = replica__commit(r))) {
        replica__rollback(r);
        return err;
    }
    return 0;
}
