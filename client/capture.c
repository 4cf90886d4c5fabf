/*
 * capture.c: from the capture log to changesets.
 *
 * Fold: kz_log rows, in log order, become cell versions in kz_clock.  Each
 * log row gets hlc = max(its wall-clock ms, last hlc) + 1 (common/hlc), and
 * every cell in its mask gets that version; a cell not yet dirty remembers
 * its previous version as its base (pb): the version its author had seen
 * from others when the first unpacked local edit was made.  This is what
 * receivers use to tell an ordinary edit from a concurrent one.
 *
 * Build: every dirty cell, and every cell whose visibility changed, goes
 * into the changeset writer of its scope:
 *   network tables              → "network"
 *   private tables              → "private:SITE"
 *   site tables: a cell is in "site:SITE" when the row passes row_filter,
 *   the column is not private and not conditionally private while
 *   cond_private_when holds; otherwise in "private:SITE".  A cell that
 *   becomes public is published (pub mask); one that stops being public is
 *   retracted from "site:SITE" with a fresh version (KZ_CELL_RETRACT).
 * Full changesets are stored in kz_outbox with contiguous author_seq per
 * scope, in the same transaction that clears the dirty bits: a crash leaves
 * either both or neither.  The build packs the rows of the log as it folds
 * them (they are never stored dirty), then the rows an apply's fold left
 * dirty, then, for filtered site tables, every row whose visibility moved.
 * A sync builds in steps (replica_build_step, fold_step): one round of the
 * log sorted once, packed a few thousand rows per transaction.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "alloc.h"
#include "err.h"
#include "log.h"

#include "replica_int.h"

#define BODY_MAX (KZ_LIM_CS_BODY_MAX - 4096)

void
replica__value_from_sqlite(struct kz_value *out, sqlite3_value *v)
{
    memset(out, 0, sizeof(*out));
    switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER:
        out->type = KZ_V_INT;
        out->i = sqlite3_value_int64(v);
        break;
    case SQLITE_FLOAT:
        out->type = KZ_V_REAL;
        out->d = sqlite3_value_double(v);
        if (out->d == 0.0)
            out->d = 0.0; /* sent as 0.0: see digest.c */
        break;
    case SQLITE_TEXT:
        out->type = KZ_V_TEXT;
        out->p = sqlite3_value_text(v);
        out->len = (size_t)sqlite3_value_bytes(v);
        break;
    case SQLITE_BLOB:
        out->type = KZ_V_BLOB;
        out->p = sqlite3_value_blob(v);
        out->len = (size_t)sqlite3_value_bytes(v);
        break;
    default: out->type = KZ_V_NULL; break;
    }
}

void
replica__pk_free(struct pkvals *pv)
{
    uint32_t i;

    for (i = 0; i < pv->n; i++)
        sqlite3_value_free(pv->v[i]);
    pv->n = 0;
}

/* kz_unhex(text): the BLOB a stored key's {"b": hex} part was made from. */
static void
unhex_func(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const char *hex = (const char *)sqlite3_value_text(argv[0]);
    size_t len = (size_t)sqlite3_value_bytes(argv[0]), n = 0;
    uint8_t *bin;

    (void)argc;
    if (hex == NULL || len % 2 != 0) {
        sqlite3_result_error(ctx, "kz_unhex: not hex", -1);
        return;
    }
    if ((bin = sqlite3_malloc64(len / 2 + 1)) == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    if (sodium_hex2bin(bin, len / 2 + 1, hex, len, NULL, &n, NULL) != 0 ||
        n != len / 2) {
        sqlite3_free(bin);
        sqlite3_result_error(ctx, "kz_unhex: not hex", -1);
        return;
    }
    sqlite3_result_blob64(ctx, bin, n, sqlite3_free);
}

int
replica__pk_split_init(struct replica *r)
{
    int rc = sqlite3_create_function_v2(r->db, "kz_unhex", 1,
                                        SQLITE_UTF8 | SQLITE_DETERMINISTIC |
                                            SQLITE_INNOCUOUS,
                                        NULL, unhex_func, NULL, NULL, NULL);

    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "kz_unhex");
    return 0;
}

/*
 * The parts of a composite key as track__key_sql stored it: each part
 * itself, or a REAL as {"r": text}, a BLOB as {"b": hex}.  Second column:
 * whether the part is one of those.
 */
static const char split_sql[] =
    "SELECT CASE WHEN type <> 'object' THEN value"
    " WHEN json_type(value, '$.b') = 'text'"
    " THEN kz_unhex(json_extract(value, '$.b'))"
    " WHEN json_extract(value, '$.r') = 'Inf' THEN 9e999"
    " WHEN json_extract(value, '$.r') = '-Inf' THEN -9e999"
    " WHEN json_type(value, '$.r') = 'text'"
    " THEN CAST(json_extract(value, '$.r') AS REAL) END,"
    " CASE WHEN type <> 'object' THEN 1 ELSE json_type(value, '$.b') ="
    " 'text' OR json_type(value, '$.r') = 'text' END"
    " FROM json_each(?) ORDER BY key";

int
replica__pk_split(struct replica *r, const struct tracked *t, sqlite3_value *pk,
                  struct pkvals *out)
{
    sqlite3_stmt *st;
    int rc, ok = 1;

    out->n = 0;
    if (t->n_pk == 1) {
        out->v[0] = sqlite3_value_dup(pk);
        if (out->v[0] == NULL)
            return -KZ_ENOMEM;
        out->n = 1;
        return 0;
    }
    if (r->split_st == NULL) {
        rc = sqlite3_prepare_v3(r->db, split_sql, -1, SQLITE_PREPARE_PERSISTENT,
                                &r->split_st, NULL);
        if (rc != SQLITE_OK) {
            r->split_st = NULL;
            return replica__dberr(r, rc, "key");
        }
    }
    st = r->split_st;
    sqlite3_bind_value(st, 1, pk);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && out->n < t->n_pk &&
           (ok = sqlite3_column_int(st, 1))) {
        out->v[out->n] = sqlite3_value_dup(sqlite3_column_value(st, 0));
        if (out->v[out->n] == NULL) {
            sqlite3_reset(st);
            replica__pk_free(out);
            return -KZ_ENOMEM;
        }
        out->n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE && rc != SQLITE_ERROR) {
        /* Not the key's fault (I/O, memory): the caller must not take
         * it for an unreadable key and skip the row. */
        int err = replica__dberr(r, rc, "key");
        sqlite3_reset(st);
        replica__pk_free(out);
        return err;
    }
    sqlite3_reset(st);
    if (out->n != t->n_pk || !ok || rc != SQLITE_DONE) {
        replica__pk_free(out);
        snprintf(r->errmsg, sizeof(r->errmsg), "bad stored key for %s",
                 t->name);
        return -KZ_EMALFORMED;
    }
    return 0;
}

/* A statement returning, for the row with key ${pv}: its columns, then
 * (cond_private_when), then (row_filter).  Cached in t->row_st. */
int
replica__row_stmt(struct replica *r, struct tracked *t, const struct pkvals *pv,
                  sqlite3_stmt **out)
{
    uint32_t i;
    int rc;

    if (t->row_st == NULL) {
        sqlite3_str *q = sqlite3_str_new(r->db);
        char *sql;

        sqlite3_str_appendall(q, "SELECT ");
        for (i = 0; i < t->n_cols; i++)
            sqlite3_str_appendf(q, "\"%w\", ", t->cols[i]);
        sqlite3_str_appendf(q, "(%s), (%s) FROM \"%w\" WHERE ",
                            t->cond_when ? t->cond_when : "0",
                            t->row_filter ? t->row_filter : "1", t->name);
        for (i = 0; i < t->n_pk; i++)
            sqlite3_str_appendf(q, "%s\"%w\" = ?", i ? " AND " : "", t->pk[i]);
        sql = sqlite3_str_finish(q);
        if (sql == NULL)
            return -KZ_ENOMEM;
        rc = sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                &t->row_st, NULL);
        sqlite3_free(sql);
        if (rc != SQLITE_OK) {
            int err = replica__dberr(r, rc, "row lookup");
            t->row_st = NULL;
            return err;
        }
    }
    sqlite3_reset(t->row_st);
    for (i = 0; i < pv->n; i++)
        sqlite3_bind_value(t->row_st, (int)i + 1, pv->v[i]);
    *out = t->row_st;
    return 0;
}

uint64_t
replica__public_mask(const struct tracked *t, int alive, int cond_holds,
                     int filter_ok)
{
    uint64_t all = (UINT64_C(1) << (t->n_cols + 1)) - 1;
    uint64_t m;

    if (t->kind != TRACK_SITE || !alive || !filter_ok)
        return 0;
    m = all & ~t->priv_mask;
    if (cond_holds)
        m &= ~t->cond_mask;
    return m;
}

/* One scope's changeset under construction. */
struct outcs {
    char scope[KZ_LIM_NAME_MAX + 1]; /* scope name */
    struct kz_cs_wr *w;              /* writer; NULL when idle */
    int *tidx;                       /* tracked index → writer table index */
    uint64_t hlc_min, hlc_max;       /* range of cell hlcs */
};

struct builder {
    struct replica *r;  /* borrowed */
    struct outcs cs[3]; /* network, site:X, private:X */
    uint32_t max_cells; /* per changeset */
    int made;           /* changesets stored */
};

static int
outcs_flush(struct builder *b, struct outcs *o)
{
    struct replica *r = b->r;
    struct kz_cs_header h;
    sqlite3_stmt *st = NULL;
    uint8_t *body = NULL, *hdr = NULL;
    size_t body_len = 0, hdr_len = 0;
    int64_t next = 1;
    int rc, err;

    if (o->w == NULL)
        return 0;
    if (kz_cs_wr_n_rows(o->w) == 0) {
        /* Nothing written, or the first row refused: its error counts. */
        err = kz_cs_wr_finish(o->w, &body, &body_len);
        goto out;
    }
    memset(&h, 0, sizeof(h));
    h.format = KZ_CS_FORMAT;
    snprintf(h.scope, sizeof(h.scope), "%s", o->scope);
    memcpy(h.author, r->key, KZ_KEY_LEN);
    h.epoch = 0;
    h.n_cells = kz_cs_wr_n_cells(o->w);
    h.n_rows = kz_cs_wr_n_rows(o->w);
    h.hlc_min = o->hlc_min;
    h.hlc_max = o->hlc_max;
    if ((err = kz_cs_wr_finish(o->w, &body, &body_len)))
        goto out;
    /* A read error must not restart the sequence at 1. */
    if ((err = replica__outseq_next(r, o->scope, &next)))
        goto out;
    h.author_seq = (uint64_t)next;
    if ((err = kz_cs_header_encode(&h, &hdr, &hdr_len)))
        goto out;
    rc = sqlite3_prepare_v2(r->db, "INSERT INTO kz_outbox VALUES (?, ?, ?, ?)",
                            -1, &st, NULL);
    if (rc != SQLITE_OK) {
        err = replica__dberr(r, rc, "outbox");
        goto out;
    }
    sqlite3_bind_text(st, 1, o->scope, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, next);
    sqlite3_bind_blob(st, 3, hdr, (int)hdr_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, body, (int)body_len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE) {
        err = replica__dberr(r, rc, "outbox");
        goto out;
    }
    rc = sqlite3_prepare_v2(
        r->db, "INSERT OR REPLACE INTO kz_outseq VALUES (?, ?)", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        err = replica__dberr(r, rc, "outbox");
        goto out;
    }
    sqlite3_bind_text(st, 1, o->scope, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, next + 1);
    rc = sqlite3_step(st);
    err = rc == SQLITE_DONE ? 0 : replica__dberr(r, rc, "outbox");
    b->made++;
out:
    sqlite3_finalize(st);
    kz_free(body);
    kz_free(hdr);
    kz_cs_wr_free(o->w);
    o->w = NULL;
    return err;
}

static int
outcs_open(struct builder *b, struct outcs *o)
{
    uint32_t i;
    int err;

    if (o->w != NULL)
        return 0;
    if ((err = kz_cs_wr_new(&o->w, BODY_MAX)))
        return err;
    for (i = 0; i < b->r->n_tables; i++)
        o->tidx[i] = -1;
    o->hlc_min = UINT64_MAX;
    o->hlc_max = 0;
    return 0;
}

/* One emitted cell, before it is written. */
struct ecell {
    uint32_t k;       /* cell index */
    uint32_t flags;   /* KZ_CELL_RETRACT or 0 */
    struct cver ver;  /* version */
    struct cver base; /* base version */
};

/* The wire version of ${e}: its authors as indexes of ${w}'s list. */
static int
ecell_ver(struct replica *r, struct kz_cs_wr *w, const struct ecell *e,
          struct kz_cs_ver *out)
{
    const uint8_t *ak = replica__dev_key(r, e->ver.dev);
    const uint8_t *bk = e->base.hlc ? replica__dev_key(r, e->base.dev) : NULL;
    int ai, bi = 0;

    if (ak == NULL)
        return -KZ_EDB;
    if ((ai = kz_cs_wr_author(w, ak)) < 0)
        return ai;
    if (bk != NULL && (bi = kz_cs_wr_author(w, bk)) < 0)
        return bi;
    out->hlc = e->ver.hlc;
    out->author = (uint32_t)ai;
    out->base_hlc = e->base.hlc;
    out->base_author = (uint32_t)bi; /* 0 without a base (PROTOCOL.md) */
    return 0;
}

static int
emit_row(struct builder *b, struct outcs *o, uint32_t ti, struct tracked *t,
         const struct pkvals *pv, const struct ecell *cells, uint32_t n,
         sqlite3_stmt *row, int alive)
{
    struct replica *r = b->r;
    struct kz_value pk[KZ_LIM_PK_COLS_MAX];
    struct kz_cs_ver rv;
    uint32_t i;
    int err;

    if (n == 0)
        return 0;
    if (o->w != NULL && (kz_cs_wr_n_cells(o->w) + n > b->max_cells ||
                         kz_cs_wr_len(o->w) > BODY_MAX / 2)) {
        if ((err = outcs_flush(b, o)))
            return err;
    }
    if ((err = outcs_open(b, o)))
        return err;
    if (o->tidx[ti] < 0) {
        int idx = kz_cs_wr_table(o->w, t->name, (const char *const *)t->cols,
                                 t->n_cols);
        if (idx < 0)
            return idx;
        o->tidx[ti] = idx;
    }
    for (i = 0; i < pv->n; i++)
        replica__value_from_sqlite(&pk[i], pv->v[i]);
    /* The row carries its first cell's version: the cells that share it
     * (all of an inserted row, usually) are written short. */
    if ((err = ecell_ver(r, o->w, &cells[0], &rv)))
        return err;
    kz_cs_wr_row(o->w, (uint32_t)o->tidx[ti], pk, pv->n, n, &rv);
    for (i = 0; i < n; i++) {
        struct kz_cs_cell c;
        struct kz_cs_ver cv;

        if ((err = ecell_ver(r, o->w, &cells[i], &cv)))
            return err;
        memset(&c, 0, sizeof(c));
        c.col = cells[i].k;
        c.flags = cells[i].flags;
        if (cells[i].flags & KZ_CELL_RETRACT) {
            c.value.type = cells[i].k == 0 ? KZ_V_INT : KZ_V_NULL;
            c.value.i = 0;
        } else if (cells[i].k == 0) {
            c.value.type = KZ_V_INT;
            c.value.i = alive;
        } else if (row != NULL) {
            replica__value_from_sqlite(
                &c.value, sqlite3_column_value(row, (int)cells[i].k - 1));
        }
        c.hlc = cv.hlc;
        c.author = cv.author;
        c.base_hlc = cv.base_hlc;
        c.base_author = cv.base_author;
        kz_cs_wr_cell(o->w, &c);
        if (c.hlc < o->hlc_min)
            o->hlc_min = c.hlc;
        if (c.hlc > o->hlc_max)
            o->hlc_max = c.hlc;
    }
    return 0;
}

/* One kz_clock row, as the build sees it. */
struct clockrow {
    sqlite3_value *pk; /* stored key */
    int alive;         /* existence cell's value */
    const uint8_t *v;  /* cell versions */
    size_t v_len;      /* bytes at v */
    uint64_t dirty;    /* cells not packed yet */
    const uint8_t *pb; /* their bases; NULL: all 0 */
    size_t pb_len;     /* bytes at pb */
    uint64_t pub;      /* cells published to site:NAME */
};

/* Emits one clock row's cells into the scopes they belong to; *new_pub is
 * what is published afterwards. */
static int
build_row(struct builder *b, uint32_t ti, const struct clockrow *c,
          uint64_t *new_pub)
{
    struct replica *r = b->r;
    struct tracked *t = &r->tables[ti];
    struct ecell pub_cells[REPLICA_MAX_COLS + 1],
        prv_cells[REPLICA_MAX_COLS + 1];
    uint32_t n_pub = 0, n_prv = 0, k;
    struct pkvals pv = {0};
    sqlite3_stmt *row = NULL;
    const uint8_t *v = c->v, *pb = c->pb;
    size_t v_len = c->v_len, pb_len = c->pb_len;
    uint64_t dirty = c->dirty, pub = c->pub, now_pub;
    int alive = c->alive, cond = 0, filter_ok = 1, err;
    struct outcs *o_pub, *o_prv;

    *new_pub = pub;
    if ((err = replica__pk_split(r, t, c->pk, &pv)) == -KZ_EMALFORMED) {
        /* Not one key this engine wrote: skipped, not a reason to stop
         * every build.  The key itself is not logged (it may be personal
         * data). */
        kz_log_warn("kzsync: a stored row key of %s cannot be read; that"
                    " row is skipped",
                    t->name);
        return 0;
    }
    if (err)
        return err;
    if (alive) {
        if ((err = replica__row_stmt(r, t, &pv, &row)))
            goto out;
        if (sqlite3_step(row) != SQLITE_ROW) {
            /* Deleted after the fold started: the next build sees it. */
            sqlite3_reset(row);
            row = NULL;
            alive = 0;
        } else {
            cond = sqlite3_column_int(row, (int)t->n_cols);
            filter_ok = sqlite3_column_int(row, (int)t->n_cols + 1);
        }
    }
    switch (t->kind) {
    case TRACK_NETWORK: o_pub = o_prv = &b->cs[0]; break;
    case TRACK_PRIVATE: o_pub = o_prv = &b->cs[2]; break;
    default:
        o_pub = &b->cs[1];
        o_prv = &b->cs[2];
        break;
    }
    now_pub = replica__public_mask(t, alive, cond, filter_ok);
    if (t->kind == TRACK_SITE && !alive)
        now_pub = pub & 1; /* a tombstone goes where the row was published */
    for (k = 0; k <= t->n_cols; k++) {
        uint64_t bit = UINT64_C(1) << k;
        struct ecell e = {k, 0, cver_get(v, v_len, k), cver_get(pb, pb_len, k)};
        int is_pub = t->kind == TRACK_NETWORK || (now_pub & bit);

        if (t->kind == TRACK_SITE && !(dirty & bit)) {
            if ((now_pub & bit) && !(pub & bit) && e.ver.hlc) {
                /* Newly public: publish the current version. */
                e.base = e.ver;
                pub_cells[n_pub++] = e;
            } else if (!(now_pub & bit) && (pub & bit) && alive) {
                /* No longer public: retract it from site:NAME. */
                e.flags = KZ_CELL_RETRACT;
                e.base = e.ver;
                e.ver.hlc = kz_hlc_tick(&r->clock, kz_env_wall_ms(r->env));
                e.ver.dev = r->self_dev;
                pub_cells[n_pub++] = e;
            }
            continue;
        }
        if (!(dirty & bit))
            continue;
        if (is_pub)
            pub_cells[n_pub++] = e;
        else
            prv_cells[n_prv++] = e;
        if (t->kind == TRACK_SITE && !is_pub && (pub & bit) && alive) {
            /* Changed while turning private: retract the public copy. */
            struct ecell x = {
                k,
                KZ_CELL_RETRACT,
                {kz_hlc_tick(&r->clock, kz_env_wall_ms(r->env)), r->self_dev},
                e.ver};
            pub_cells[n_pub++] = x;
        }
    }
    if (t->kind == TRACK_SITE && !alive)
        now_pub = 0;
    if ((err = emit_row(b, o_pub, ti, t, &pv, pub_cells, n_pub, row, alive)))
        goto out;
    if ((err = emit_row(b, o_prv, ti, t, &pv, prv_cells, n_prv, row, alive)))
        goto out;
    if (t->kind == TRACK_SITE)
        *new_pub = now_pub;
out:
    if (row)
        sqlite3_reset(row);
    replica__pk_free(&pv);
    return err;
}

/* Log rows folded per round: bounds the hlc table to 16 bytes each. */
#define FOLD_CHUNK (1u << 17)

/* The hlcs of one round's log rows, in seq order. */
struct foldhlc {
    int64_t *seq;  /* log seq, ascending */
    uint64_t *hlc; /* its hlc, 0 for a table no longer tracked */
    uint32_t n;    /* entries */
    int dense;     /* seq[i] = seq[0] + i: no gap in the log's seqs */
};

static uint64_t
fold_hlc_of(const struct foldhlc *h, int64_t seq)
{
    uint32_t lo = 0, hi = h->n;

    if (h->dense) {
        /* The usual case: no binary search (4% of a large build). */
        if (h->n == 0 || seq < h->seq[0] || seq - h->seq[0] >= (int64_t)h->n)
            return 0;
        return h->hlc[seq - h->seq[0]];
    }
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (h->seq[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < h->n && h->seq[lo] == seq ? h->hlc[lo] : 0;
}

static int
all_zero(const uint8_t *p, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (p[i])
            return 0;
    }
    return 1;
}

/* Whether two kz_log keys are the same key: of the same table and type,
 * text and blobs byte for byte, numbers by value (${i_b} holds a REAL's
 * bits). */
static int
same_key(int id_a, sqlite3_value *a, int id_b, const int *type_b,
         const void *p_b, size_t len_b, int64_t i_b)
{
    int ta = sqlite3_value_type(a);

    if (id_a != id_b || ta != *type_b)
        return 0;
    switch (ta) {
    case SQLITE_INTEGER: return sqlite3_value_int64(a) == i_b;
    case SQLITE_TEXT:
        return (size_t)sqlite3_value_bytes(a) == len_b &&
               memcmp(sqlite3_value_text(a), p_b, len_b) == 0;
    case SQLITE_BLOB:
        return (size_t)sqlite3_value_bytes(a) == len_b &&
               (len_b == 0 || memcmp(sqlite3_value_blob(a), p_b, len_b) == 0);
    case SQLITE_FLOAT: {
        /* By value, as kz_clock's key compares (-0.0 is 0.0; SQLite stores
         * no NaN). */
        double d;
        memcpy(&d, &i_b, sizeof(d));
        return sqlite3_value_double(a) == d;
    }
    default: return 0; /* keys are never NULL */
    }
}

/* What a fold works with: kz_clock's statements and two version buffers. */
struct folder {
    struct replica *r;
    sqlite3_stmt *get, *put; /* kz_clock by key; upsert */
    sqlite3_stmt *later;     /* a key's log rows newer than the round (?1
                                tbl, ?2 pk), or NULL; borrowed */
    uint8_t *v, *pb;         /* (REPLICA_MAX_COLS + 1) cells each */
};

static void
folder_fini(struct folder *f)
{
    sqlite3_finalize(f->get);
    sqlite3_finalize(f->put);
    kz_free(f->v);
    kz_free(f->pb);
    memset(f, 0, sizeof(*f));
}

static int
folder_init(struct folder *f, struct replica *r)
{
    size_t cap = (size_t)(REPLICA_MAX_COLS + 1) * REPLICA_CELL_BYTES;
    int rc;

    memset(f, 0, sizeof(*f));
    f->r = r;
    f->v = kz_calloc(1, cap);
    f->pb = kz_calloc(1, cap);
    if (f->v == NULL || f->pb == NULL) {
        folder_fini(f);
        return -KZ_ENOMEM;
    }
    rc = sqlite3_prepare_v2(r->db,
                            "SELECT alive, v, dirty, pb, pub FROM kz_clock"
                            " WHERE tbl = ? AND pk = ?",
                            -1, &f->get, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(r->db,
                                "INSERT INTO kz_clock(tbl, pk, alive, v, dirty,"
                                " pb, pub) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                                " ON CONFLICT (tbl, pk) DO UPDATE SET"
                                " alive = ?3, v = ?4, dirty = ?5, pb = ?6,"
                                " pub = ?7",
                                -1, &f->put, NULL);
    if (rc != SQLITE_OK) {
        folder_fini(f);
        return replica__dberr(r, rc, "fold");
    }
    return 0;
}

/* Pass 1 of a round: the hlcs of the (at most ${chunk}) log rows after
 * ${after}, in seq order, exactly as one pass in log order would give.
 * With ${resume} > 0: those of the rows of the stored round (kz_round)
 * after position ${resume} - 1 instead. */
static int
fold_hlcs(struct replica *r, struct foldhlc *fh, int64_t after, uint32_t chunk,
          int64_t resume)
{
    sqlite3_stmt *st = NULL;
    int rc;

    fh->n = 0;
    rc = sqlite3_prepare_v2(
        r->db,
        resume > 0 ? "SELECT seq, tbl, ms FROM kz_log WHERE seq IN (SELECT"
                     " seq FROM kz_round WHERE pos >= ?1) ORDER BY seq LIMIT ?2"
                   : "SELECT seq, tbl, ms FROM kz_log WHERE seq > ?1"
                     " ORDER BY seq LIMIT ?2",
        -1, &st, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "fold");
    sqlite3_bind_int64(st, 1, resume > 0 ? resume : after);
    sqlite3_bind_int64(st, 2, chunk);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t ms = sqlite3_column_int64(st, 2);
        fh->seq[fh->n] = sqlite3_column_int64(st, 0);
        fh->hlc[fh->n] =
            track__by_id(r, sqlite3_column_int(st, 1)) == NULL
                ? 0 /* a table no longer tracked */
                : kz_hlc_tick(&r->clock, ms > 0 ? (uint64_t)ms : 0);
        fh->n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return replica__dberr(r, rc, "fold");
    fh->dense =
        fh->n > 0 && fh->seq[fh->n - 1] - fh->seq[0] == (int64_t)fh->n - 1;
    return 0;
}

/*
 * Pass 2: the log rows of ${st} (seq, tbl, pk, op, mask[, position]), in
 * (tbl, pk, seq) order, into kz_clock: one read and one write per key.
 * With ${b}, each key is packed at once and stored clean.  With ${budget},
 * stops at the first key boundary after that many rows; *${pos} is then
 * the position column of the last row folded, and *${end} tells whether
 * ${st} has no rows left.  Returns 0 or an error.
 */
static int
fold_keys(struct folder *f, const struct foldhlc *fh, sqlite3_stmt *st,
          struct builder *b, uint32_t budget, int64_t *pos, int *end)
{
    struct replica *r = f->r;
    uint8_t *v = f->v, *pb = f->pb;
    uint32_t rows = 0;
    int rc, err = 0;

    rc = sqlite3_step(st);
    while (rc == SQLITE_ROW) {
        int id = sqlite3_column_int(st, 1);
        struct tracked *t = track__by_id(r, id);
        sqlite3_value *key;
        int ktype;
        const void *kp = NULL;
        size_t klen = 0, need;
        int64_t ki = 0;
        uint64_t dirty = 0, pub = 0, touched = 0;
        int alive = 0, was_dead = 0;
        uint32_t k;

        if (budget && rows >= budget)
            break; /* a key boundary */
        if (t == NULL) {
            rows++;
            if (pos)
                *pos = sqlite3_column_int64(st, 5);
            rc = sqlite3_step(st);
            continue; /* a table no longer tracked */
        }
        /* A copy: st moves on before the key is written. */
        key = sqlite3_value_dup(sqlite3_column_value(st, 2));
        if (key == NULL)
            return -KZ_ENOMEM;
        ktype = sqlite3_value_type(key);
        need = (size_t)(t->n_cols + 1) * REPLICA_CELL_BYTES;
        memset(v, 0, need);
        memset(pb, 0, need);
        sqlite3_reset(f->get);
        sqlite3_bind_int(f->get, 1, id);
        sqlite3_bind_value(f->get, 2, key);
        rc = sqlite3_step(f->get);
        if (rc == SQLITE_ROW) {
            size_t old_len = (size_t)sqlite3_column_bytes(f->get, 1);
            size_t old_pb = (size_t)sqlite3_column_bytes(f->get, 3);
            alive = sqlite3_column_int(f->get, 0);
            was_dead = !alive;
            if (old_len)
                memcpy(v, sqlite3_column_blob(f->get, 1),
                       KZ_MIN(old_len, need));
            dirty = (uint64_t)sqlite3_column_int64(f->get, 2);
            if (old_pb)
                memcpy(pb, sqlite3_column_blob(f->get, 3),
                       KZ_MIN(old_pb, need));
            pub = (uint64_t)sqlite3_column_int64(f->get, 4);
        } else if (rc != SQLITE_DONE) {
            sqlite3_value_free(key);
            return replica__dberr(r, rc, "fold");
        }
        sqlite3_reset(f->get);
        if (ktype == SQLITE_INTEGER) {
            ki = sqlite3_value_int64(key);
        } else if (ktype == SQLITE_FLOAT) {
            double d = sqlite3_value_double(key);
            memcpy(&ki, &d, sizeof(ki));
        } else if (ktype == SQLITE_TEXT) {
            kp = sqlite3_value_text(key);
            klen = (size_t)sqlite3_value_bytes(key);
        } else if (ktype == SQLITE_BLOB) {
            kp = sqlite3_value_blob(key);
            klen = (size_t)sqlite3_value_bytes(key);
        }
        do {
            int op = sqlite3_column_int(st, 3);
            uint64_t mask = (uint64_t)sqlite3_column_int64(st, 4);
            struct cver c = {fold_hlc_of(fh, sqlite3_column_int64(st, 0)),
                             r->self_dev};
            if (op == 2) {
                /* A delete is a tombstone plus NULL in every column. */
                mask = (UINT64_C(1) << (t->n_cols + 1)) - 1;
                alive = 0;
            } else {
                /* An update of a row not alive here (written with the
                 * triggers missing, or keyed anew by track.c): it
                 * exists, so the whole row, as an insert. */
                if (!alive)
                    mask = (UINT64_C(1) << (t->n_cols + 1)) - 1;
                if (mask & 1)
                    alive = 1;
            }
            touched |= mask;
            for (k = 0; k <= t->n_cols; k++) {
                if (!(mask & (UINT64_C(1) << k)))
                    continue;
                if (!(dirty & (UINT64_C(1) << k)))
                    cver_put(pb, k, cver_get(v, need, k));
                dirty |= UINT64_C(1) << k;
                cver_put(v, k, c);
            }
            rows++;
            if (pos)
                *pos = sqlite3_column_int64(st, 5);
            rc = sqlite3_step(st);
        } while (rc == SQLITE_ROW &&
                 same_key(id, sqlite3_column_value(st, 2),
                          sqlite3_column_int(st, 1), &ktype, kp, klen, ki));
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            sqlite3_value_free(key);
            break;
        }
        if (was_dead && alive) {
            /* Inserted again here: cells of a remote write newer than its
             * delete may wait for it (apply.c). */
            sqlite3_stmt *rv;
            int rrc;
            if ((err = replica__revived_stmt(r, &rv))) {
                sqlite3_value_free(key);
                return err;
            }
            sqlite3_bind_int(rv, 1, id);
            sqlite3_bind_value(rv, 2, key);
            rrc = sqlite3_step(rv);
            sqlite3_reset(rv);
            if (rrc != SQLITE_DONE) {
                sqlite3_value_free(key);
                return replica__dberr(r, rrc, "fold");
            }
        }
        if (touched == 0 && (b == NULL || dirty == 0)) {
            /* Only updates that changed nothing (a mask of 0, track.c):
             * the row is as it was, nothing to write or pack.  A row
             * left dirty (by an apply's fold, or held back by a step
             * because of a write since) is packed now all the same. */
            sqlite3_value_free(key);
            continue;
        }
        if (b != NULL && f->later != NULL) {
            /* Written again since the round began: packed by the next
             * round, with the version of that write. */
            int lrc;
            sqlite3_reset(f->later);
            sqlite3_bind_int(f->later, 1, id);
            sqlite3_bind_value(f->later, 2, key);
            lrc = sqlite3_step(f->later);
            sqlite3_reset(f->later);
            if (lrc != SQLITE_ROW && lrc != SQLITE_DONE) {
                sqlite3_value_free(key);
                return replica__dberr(r, lrc, "fold");
            }
            if (lrc == SQLITE_ROW)
                goto keep_dirty;
        }
        if (b != NULL) {
            struct clockrow cr = {key, alive, v, need, dirty, pb, need, pub};
            if ((err = build_row(b, (uint32_t)(t - r->tables), &cr, &pub))) {
                sqlite3_value_free(key);
                return err;
            }
            dirty = 0;
            memset(pb, 0, need);
        }
    keep_dirty:
        sqlite3_bind_int(f->put, 1, id);
        sqlite3_bind_value(f->put, 2, key);
        sqlite3_value_free(key);
        sqlite3_bind_int(f->put, 3, alive);
        sqlite3_bind_blob(f->put, 4, v, (int)need, SQLITE_STATIC);
        sqlite3_bind_int64(f->put, 5, (int64_t)dirty);
        /* No blob when every base is 0 (new rows, packed rows): NULL
         * reads as zeros everywhere (cver_get; apply.c). */
        if (all_zero(pb, need))
            sqlite3_bind_null(f->put, 6);
        else
            sqlite3_bind_blob(f->put, 6, pb, (int)need, SQLITE_STATIC);
        sqlite3_bind_int64(f->put, 7, (int64_t)pub);
        {
            int prc = sqlite3_step(f->put);
            sqlite3_reset(f->put);
            if (prc != SQLITE_DONE)
                return replica__dberr(r, prc, "fold");
        }
    }
    if (end)
        *end = rc == SQLITE_DONE;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return replica__dberr(r, rc, "fold");
    return 0;
}

/*
 * The round of a build in steps, stored so that every connection and a
 * crash see it: kz_round holds its log rows' seqs in key order (pos 1..n),
 * kz_meta round_pos how many of them steps have folded (and packed), and
 * round_hi / round_whole its last seq and whether it took the whole log.
 * Its log rows leave kz_log with its last step; until then a row at pos ≤
 * round_pos is folded already and must never be folded again.
 */

/* Runs ${sql}, a statement without rows, with ?1 = ${a} and, if it has
 * one, ?2 = ${b}. */
static int
exec_ints(struct replica *r, const char *sql, int64_t a, int64_t b)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(r->db, sql, -1, &st, NULL);

    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, a);
        if (sqlite3_bind_parameter_count(st) > 1)
            sqlite3_bind_int64(st, 2, b);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : replica__dberr(r, rc, "round");
}

/* The stored round: its size (0: none) and how far it got. */
static int
round_get(struct replica *r, int64_t *n, int64_t *pos)
{
    sqlite3_stmt *st = NULL;
    int rc, err;

    *n = *pos = 0;
    rc = sqlite3_prepare_v2(r->db, "SELECT coalesce(max(pos), 0) FROM kz_round",
                            -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *n = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "round");
    if (*n == 0)
        return 0;
    err = replica__meta_get_int(r, "round_pos", pos);
    return err == -KZ_ENOENT ? 0 : err;
}

/* Ends a stored round before a whole fold: the rows its steps folded leave
 * the log (the others are folded with the rest). */
static int
round_retire(struct replica *r)
{
    int64_t n = 0, pos = 0;
    int err;

    r->round.n = 0; /* the hlcs kept for it, if any, are of no use now */
    if ((err = round_get(r, &n, &pos)) || n == 0)
        return err;
    if ((err = exec_ints(r,
                         "DELETE FROM kz_log WHERE seq IN (SELECT seq FROM"
                         " kz_round WHERE pos <= ?)",
                         pos, 0)) ||
        (err = replica__exec(r, "DELETE FROM kz_round")))
        return err;
    return replica__meta_set_int(r, "round_pos", 0);
}

/*
 * fold(r, bld): kz_log → kz_clock, in rounds of at most FOLD_CHUNK log rows.
 * First the round's rows are given their hlc in seq order (fold_hlcs);
 * then they are read again in (tbl, pk, seq) order, the order of
 * kz_clock's key, so that kz_clock is read and written sequentially and a
 * row logged many times is read and written once.  Within a key the rows
 * still come in seq order, so the outcome is the one of folding the log
 * row by row.
 *
 * With a builder (replica_build), each row folded in the last round is
 * packed at once and stored clean (dirty 0, no base), with what it
 * publishes: kz_clock is written once per row, never marked dirty and
 * cleared again.  Rows of earlier rounds (over FOLD_CHUNK log rows) stay
 * dirty, so that a row logged in two rounds is packed once, by the last
 * round or by the build's pass over dirty rows.  Without a builder (an
 * apply folds local edits before merging remote ones), every row stays
 * dirty for the next build.
 */
static int
fold(struct replica *r, struct builder *bld)
{
    sqlite3_stmt *log2 = NULL;
    struct foldhlc fh = {NULL, NULL, 0, 0};
    struct folder f;
    int64_t after = -1;
    uint32_t chunk = r->fold_chunk ? r->fold_chunk : FOLD_CHUNK;
    int rc, err = 0, any = 0;

    /* It folds the whole log: a round of a build in steps ends here. */
    if ((err = round_retire(r)) || (err = folder_init(&f, r)))
        return err;
    fh.seq = kz_mallocarray(chunk, sizeof(*fh.seq));
    fh.hlc = kz_mallocarray(chunk, sizeof(*fh.hlc));
    if (fh.seq == NULL || fh.hlc == NULL) {
        err = -KZ_ENOMEM;
        goto out;
    }
    rc = sqlite3_prepare_v2(r->db,
                            "SELECT seq, tbl, pk, op, mask FROM kz_log"
                            " WHERE seq BETWEEN ? AND ?"
                            " ORDER BY tbl, pk, seq",
                            -1, &log2, NULL);
    if (rc != SQLITE_OK) {
        err = replica__dberr(r, rc, "fold");
        goto out;
    }
    for (;;) {
        if ((err = fold_hlcs(r, &fh, after, chunk, 0)))
            goto out;
        if (fh.n == 0)
            break;
        any = 1;
        after = fh.seq[fh.n - 1];
        sqlite3_reset(log2);
        sqlite3_bind_int64(log2, 1, fh.seq[0]);
        sqlite3_bind_int64(log2, 2, after);
        err =
            fold_keys(&f, &fh, log2, fh.n < chunk ? bld : NULL, 0, NULL, NULL);
        sqlite3_reset(log2);
        if (err)
            goto out;
        if (fh.n < chunk)
            break;
    }
    if (any) {
        /* Inside this transaction no one else writes kz_log, and every row
         * of it was folded: empty it whole (no per-row delete). */
        if ((err = replica__exec(r, "DELETE FROM kz_log")))
            goto out;
        err = replica__save_clock(r);
    }
out:
    sqlite3_finalize(log2);
    folder_fini(&f);
    kz_free(fh.seq);
    kz_free(fh.hlc);
    return err;
}

int
capture__fold(struct replica *r)
{
    return fold(r, NULL);
}

void
capture__round_free(struct replica *r)
{
    kz_free(r->round.seq);
    kz_free(r->round.hlc);
    memset(&r->round, 0, sizeof(r->round));
}

/*
 * One step of a build in steps: the next at most ${max_rows} rows (ending
 * between two keys) of the stored round, packed with ${b}; a new round
 * (the log rows there are, up to FOLD_CHUNK, their hlcs given in log
 * order) when none is stored.  The round keeps keys in order across its
 * steps, so that changesets still carry them in order.  A key that has
 * log rows newer than the round (written between two steps) is folded but
 * not packed: its row may already hold that write, which the next round
 * packs with its own version.  After a crash, or on another connection,
 * the round goes on where its last committed step left it (the rows not
 * folded yet get their hlcs anew); a whole fold ends it (round_retire).
 * Sets *${more} when more may follow, *${last} when this step ended the
 * last round (the build's final pass is due).
 */
static int
fold_step(struct replica *r, struct builder *b, uint32_t max_rows, int *more,
          int *last)
{
    struct fold_round *rd = &r->round;
    struct foldhlc fh;
    struct folder f;
    sqlite3_stmt *st = NULL, *later = NULL;
    uint32_t chunk = r->fold_chunk ? r->fold_chunk : FOLD_CHUNK;
    int64_t n = 0, pos = 0, hi = 0, whole = 1, id = 0;
    int rc, err, end = 0, any_later = 0;

    *more = *last = 0;
    if ((err = replica__meta_get_int(r, "round_id", &id)) && err != -KZ_ENOENT)
        return err;
    if (rd->cap < chunk) {
        kz_free(rd->seq);
        kz_free(rd->hlc);
        rd->seq = kz_mallocarray(chunk, sizeof(*rd->seq));
        rd->hlc = kz_mallocarray(chunk, sizeof(*rd->hlc));
        if (rd->seq == NULL || rd->hlc == NULL) {
            capture__round_free(r);
            return -KZ_ENOMEM;
        }
        rd->cap = chunk;
    }
    fh.seq = rd->seq;
    fh.hlc = rd->hlc;
    if ((err = round_get(r, &n, &pos)))
        return err;
    if (n == 0) {
        /* A new round. */
        rd->n = 0;
        if ((err = fold_hlcs(r, &fh, -1, chunk, 0)))
            return err;
        if (fh.n == 0) {
            *last = 1;
            return 0;
        }
        if ((err = exec_ints(r,
                             "INSERT INTO kz_round(seq, tbl, pk, op, mask)"
                             " SELECT seq, tbl, pk, op, mask FROM kz_log"
                             " WHERE seq BETWEEN ? AND ? ORDER BY tbl, pk,"
                             " seq",
                             fh.seq[0], fh.seq[fh.n - 1])))
            return err;
        hi = fh.seq[fh.n - 1];
        whole = fh.n < chunk;
        id++;
        if ((err = replica__meta_set_int(r, "round_id", id)) ||
            (err = replica__meta_set_int(r, "round_pos", 0)) ||
            (err = replica__meta_set_int(r, "round_hi", hi)) ||
            (err = replica__meta_set_int(r, "round_whole", whole)))
            return err;
        rd->n = fh.n;
        rd->dense = fh.dense;
        rd->pos = 0;
        rd->id = id;
    } else {
        if ((err = replica__meta_get_int(r, "round_hi", &hi)) ||
            (err = replica__meta_get_int(r, "round_whole", &whole)))
            return err;
        if (rd->n == 0 || rd->id != id || rd->pos != pos) {
            /* Not the hlcs this connection gave the round (a crash, or
             * another connection's steps): its other rows get theirs now. */
            rd->n = 0;
            if ((err = fold_hlcs(r, &fh, -1, chunk, pos + 1)))
                return err;
            rd->n = fh.n;
            rd->dense = fh.dense;
            rd->pos = pos;
            rd->id = id;
        }
    }
    fh.n = rd->n;
    fh.dense = rd->dense;

    /* Keys written since the round began. */
    rc = sqlite3_prepare_v2(
        r->db, "SELECT EXISTS (SELECT 1 FROM kz_log WHERE seq > ?)", -1, &st,
        NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, hi);
        if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            any_later = sqlite3_column_int(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "round");
    if (any_later) {
        /* Their keys, gathered once per round (kz_log has no index by
         * key): only rows logged since the last step are added. */
        int64_t upto = rd->later_id == id ? rd->later_upto : hi;
        if ((err = replica__exec(
                 r, "CREATE TEMP TABLE IF NOT EXISTS kz_later(tbl INTEGER,"
                    " pk, PRIMARY KEY (tbl, pk)) WITHOUT ROWID")))
            return err;
        if (rd->later_id != id &&
            (err = replica__exec(r, "DELETE FROM temp.kz_later")))
            return err;
        if ((err = exec_ints(r,
                             "INSERT OR IGNORE INTO temp.kz_later SELECT"
                             " tbl, pk FROM kz_log WHERE seq > ?",
                             upto, 0)))
            return err;
        rc = sqlite3_prepare_v2(
            r->db, "SELECT coalesce(max(seq), 0) FROM kz_log", -1, &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            rd->later_upto = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
        st = NULL;
        if (rc != SQLITE_OK)
            return replica__dberr(r, rc, "round");
        rd->later_id = id;
        rc = sqlite3_prepare_v2(r->db,
                                "SELECT 1 FROM temp.kz_later WHERE tbl = ?1"
                                " AND pk = ?2",
                                -1, &later, NULL);
        if (rc != SQLITE_OK)
            return replica__dberr(r, rc, "round");
    }

    if ((err = folder_init(&f, r))) {
        sqlite3_finalize(later);
        return err;
    }
    f.later = later;
    rc = sqlite3_prepare_v2(r->db,
                            "SELECT seq, tbl, pk, op, mask, pos"
                            " FROM kz_round WHERE pos > ? ORDER BY pos",
                            -1, &st, NULL);
    if (rc != SQLITE_OK) {
        folder_fini(&f);
        sqlite3_finalize(later);
        return replica__dberr(r, rc, "round");
    }
    sqlite3_bind_int64(st, 1, pos);
    err = fold_keys(&f, &fh, st, b, max_rows, &pos, &end);
    sqlite3_finalize(st);
    st = NULL;
    folder_fini(&f);
    sqlite3_finalize(later);
    if (err)
        return err;
    if (!end) {
        rd->next_pos = pos;
        *more = 1;
        return replica__meta_set_int(r, "round_pos", pos);
    }
    /* The round is folded: its log rows leave (no row outside it has a
     * seq ≤ hi: a new seq is the largest there is + 1). */
    if (any_later) {
        err = exec_ints(r, "DELETE FROM kz_log WHERE seq <= ?", hi, 0);
    } else {
        err = replica__exec(r, "DELETE FROM kz_log"); /* its pages at once */
    }
    if (err || (err = replica__exec(r, "DELETE FROM kz_round")) ||
        (err = replica__meta_set_int(r, "round_pos", 0)))
        return err;
    rd->next_pos = 0;
    /* A round that took the whole log ends the build: rows logged since it
     * began (a writer faster than the push would never let it end) wait
     * for the next build, and with them the final pass, which must not
     * pack the keys held for them. */
    *more = !whole;
    *last = whole && !any_later;
    return 0;
}

/* After a step's commit: this connection's hlcs stay good for the rest. */
static void
round_commit(struct replica *r)
{
    r->round.pos = r->round.next_pos;
    if (r->round.pos == 0)
        r->round.n = 0;
}

/* After a step's rollback: the stored round is as it was; the hlcs given
 * in this step may not be (the clock was reloaded), so they go. */
static void
round_rollback(struct replica *r)
{
    r->round.n = 0;
    r->round.later_id = 0; /* temp.kz_later went back too */
}

/* replica_build (max_rows 0: the whole log) and replica_build_step. */
static int
build(struct replica *r, uint32_t max_cells, uint32_t max_rows, int *more)
{
    struct builder b;
    sqlite3_stmt *cl = NULL, *setpub = NULL;
    uint32_t ti, i;
    int rc, err, left = 0, last = 1;

    memset(&b, 0, sizeof(b));
    b.r = r;
    b.max_cells = max_cells ? KZ_MIN(max_cells, KZ_LIM_CS_CELLS_MAX)
                            : REPLICA_DEFAULT_MAX_CELLS;
    snprintf(b.cs[0].scope, sizeof(b.cs[0].scope), "network");
    snprintf(b.cs[1].scope, sizeof(b.cs[1].scope), "site:%s", r->site);
    snprintf(b.cs[2].scope, sizeof(b.cs[2].scope), "private:%s", r->site);
    for (i = 0; i < 3; i++) {
        b.cs[i].tidx = kz_calloc(r->n_tables + 1, sizeof(int));
        if (b.cs[i].tidx == NULL) {
            err = -KZ_ENOMEM;
            goto out;
        }
    }
    if ((err = replica__begin(r)))
        goto out;
    if (max_rows)
        err = fold_step(r, &b, max_rows, &left, &last);
    else
        err = fold(r, &b);
    if (err)
        goto fail;
    if (!last) {
        /* Not the last step: the rows left dirty by an apply and the
         * filtered site tables wait for it. */
        for (i = 0; i < 3; i++) {
            if ((err = outcs_flush(&b, &b.cs[i])))
                goto fail;
        }
        goto commit;
    }
    rc = sqlite3_prepare_v2(
        r->db, "UPDATE kz_clock SET pub = ? WHERE tbl = ? AND pk = ?", -1,
        &setpub, NULL);
    if (rc != SQLITE_OK) {
        err = replica__dberr(r, rc, "build");
        goto fail;
    }
    for (ti = 0; ti < r->n_tables; ti++) {
        struct tracked *t = &r->tables[ti];
        /* Visibility can change without a write to the row itself (a
         * filter over another table), so filtered site tables are looked
         * at whole; the others only where dirty. */
        int whole = t->kind == TRACK_SITE &&
                    (t->row_filter || t->cond_when || t->priv_mask);
        rc = sqlite3_prepare_v2(
            r->db,
            whole ? "SELECT tbl, pk, alive, v, dirty, pb, pub FROM kz_clock"
                    " WHERE tbl = ?"
                  : "SELECT tbl, pk, alive, v, dirty, pb, pub FROM kz_clock"
                    " WHERE tbl = ? AND dirty <> 0",
            -1, &cl, NULL);
        if (rc != SQLITE_OK) {
            err = replica__dberr(r, rc, "build");
            goto fail;
        }
        sqlite3_bind_int(cl, 1, t->id);
        while ((rc = sqlite3_step(cl)) == SQLITE_ROW) {
            struct clockrow c = {sqlite3_column_value(cl, 1),
                                 sqlite3_column_int(cl, 2),
                                 sqlite3_column_blob(cl, 3),
                                 (size_t)sqlite3_column_bytes(cl, 3),
                                 (uint64_t)sqlite3_column_int64(cl, 4),
                                 sqlite3_column_blob(cl, 5),
                                 (size_t)sqlite3_column_bytes(cl, 5),
                                 (uint64_t)sqlite3_column_int64(cl, 6)};
            uint64_t np = 0;
            if ((err = build_row(&b, ti, &c, &np)))
                goto fail;
            if (np != c.pub) {
                sqlite3_reset(setpub);
                sqlite3_bind_int64(setpub, 1, (int64_t)np);
                sqlite3_bind_int(setpub, 2, t->id);
                sqlite3_bind_value(setpub, 3, sqlite3_column_value(cl, 1));
                if ((rc = sqlite3_step(setpub)) != SQLITE_DONE) {
                    err = replica__dberr(r, rc, "build");
                    goto fail;
                }
            }
        }
        sqlite3_finalize(cl);
        cl = NULL;
        if (rc != SQLITE_DONE) {
            err = replica__dberr(r, rc, "build");
            goto fail;
        }
    }
    for (i = 0; i < 3; i++) {
        if ((err = outcs_flush(&b, &b.cs[i])))
            goto fail;
    }
    if ((err = replica__exec(r, "UPDATE kz_clock SET dirty = 0, pb = NULL"
                                " WHERE dirty <> 0")))
        goto fail;
commit:
    if ((err = replica__save_clock(r)))
        goto fail;
    if ((err = replica__commit(r)))
        goto fail;
    if (max_rows)
        round_commit(r);
    if (more)
        *more = left;
    err = b.made;
    goto out;
fail:
    sqlite3_finalize(cl);
    cl = NULL;
    replica__rollback(r);
    if (max_rows)
        round_rollback(r);
out:
    sqlite3_finalize(setpub);
    for (i = 0; i < 3; i++) {
        kz_cs_wr_free(b.cs[i].w);
        kz_free(b.cs[i].tidx);
    }
    return err;
}

int
replica_build(struct replica *r, uint32_t max_cells)
{
    return build(r, max_cells, 0, NULL);
}

int
replica_build_step(struct replica *r, uint32_t max_cells, uint32_t max_rows,
                   int *more)
{
    *more = 0;
    return build(r, max_cells, max_rows ? max_rows : 1, more);
}

void
replica_cs_clear(struct replica_cs *cs)
{
    kz_free(cs->hdr_bytes);
    kz_free(cs->body);
    memset(cs, 0, sizeof(*cs));
}

static int
copy_blob(sqlite3_stmt *st, int col, uint8_t **out, size_t *len)
{
    size_t n = (size_t)sqlite3_column_bytes(st, col);

    *out = kz_malloc(n);
    if (*out == NULL)
        return -KZ_ENOMEM;
    memcpy(*out, sqlite3_column_blob(st, col), n);
    *len = n;
    return 0;
}

int
replica_outbox_get(struct replica *r, const char *scope, uint64_t after_seq,
                   struct replica_cs *cs)
{
    sqlite3_stmt *st = NULL;
    int rc, err = 0;

    memset(cs, 0, sizeof(*cs));
    rc = sqlite3_prepare_v2(r->db,
                            "SELECT hdr, body FROM kz_outbox WHERE scope = ?"
                            " AND seq > ? ORDER BY seq LIMIT 1",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "outbox");
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)after_seq);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if ((err = copy_blob(st, 0, &cs->hdr_bytes, &cs->hdr_len)) == 0 &&
            (err = copy_blob(st, 1, &cs->body, &cs->body_len)) == 0)
            err =
                kz_cs_header_decode(&cs->hdr, cs->hdr_bytes, cs->hdr_len, NULL);
        if (err == 0)
            err = 1;
        else
            replica_cs_clear(cs);
    } else if (rc != SQLITE_DONE) {
        err = replica__dberr(r, rc, "outbox");
    }
    sqlite3_finalize(st);
    return err;
}

int
replica_outbox_scopes(struct replica *r,
                      void (*cb)(void *data, const char *scope, uint64_t n),
                      void *data)
{
    sqlite3_stmt *st = NULL;
    int rc;

    rc = sqlite3_prepare_v2(r->db,
                            "SELECT scope, count(*) FROM kz_outbox"
                            " GROUP BY scope ORDER BY scope",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "outbox");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(data, (const char *)sqlite3_column_text(st, 0),
           (uint64_t)sqlite3_column_int64(st, 1));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : replica__dberr(r, rc, "outbox");
}

int
replica_outbox_ack(struct replica *r, const char *scope, uint64_t upto_seq)
{
    sqlite3_stmt *st = NULL;
    int rc;

    rc = sqlite3_prepare_v2(
        r->db, "DELETE FROM kz_outbox WHERE scope = ? AND seq <= ?", -1, &st,
        NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "outbox");
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)upto_seq);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : replica__dberr(r, rc, "outbox");
}
