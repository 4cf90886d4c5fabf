/*
 * track.c: which tables are tracked, and their capture triggers.
 *
 * Capture is plain SQL, so that the stock `sqlite3` shell, which loads no
 * extension, is captured too (DESIGN.md §3).  Per tracked table T with
 * number N the engine creates:
 *
 *   kz_i_T  AFTER INSERT: kz_log(N, pk, op 1, every cell, now)
 *   kz_u_T  AFTER UPDATE keeping the key: kz_log(N, pk, op 1, mask of
 *           the cells whose value changed, now); a mask of 0 (nothing
 *           changed) gives no cell a version
 *   kz_k_T  AFTER UPDATE OF the key columns, when the key changed: a delete
 *           of the old key and an insert of the new one (every cell)
 *   kz_d_T  AFTER DELETE: kz_log(N, pk, op 2, every cell, now): a delete
 *           writes NULL to every column as well as the tombstone, so that
 *           an update made concurrently elsewhere meets it cell by cell
 *           (exact conflicts, see apply.c)
 *   kz_w_T  BEFORE INSERT/UPDATE/DELETE (kz_wi_T, kz_wu_T, kz_wd_T): the
 *           write rules — network tables only at the admin, site tables
 *           only for the device's own site, nothing at an observer
 *
 * The write rules are off while kz_state.applying = 1 (inside an apply).
 * The capture triggers have no such condition, which every local write
 * would pay for: inside its transaction the apply drops the capture
 * triggers of the tables it writes and creates them again before it
 * commits (track__capture_pause), and deletes whatever other capture
 * triggers logged meanwhile (replica__set_applying).  `pk` is the key value
 * itself, or a JSON array for composite keys (track__key_sql).  `now` is
 * wall-clock milliseconds; capture.c turns log rows into hlc versions in log
 * order.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "err.h"

#include "replica_int.h"

/* The write-rule triggers' condition: not inside an apply. */
#define APPLYING_OFF "(SELECT applying FROM kz_state) = 0"

#define NOW_MS_SQL                                                             \
    "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"

char *
track__sql_quote_ident(const char *name)
{
    return sqlite3_mprintf("\"%w\"", name);
}

static void
tracked_clear(struct tracked *t)
{
    uint32_t i;

    for (i = 0; i < t->n_pk; i++)
        kz_free(t->pk[i]);
    for (i = 0; i < t->n_cols; i++)
        kz_free(t->cols[i]);
    kz_free(t->pk);
    kz_free(t->cols);
    kz_free(t->name);
    kz_free(t->cond_when);
    kz_free(t->row_filter);
    kz_free(t->owner_col);
    sqlite3_finalize(t->row_st);
    sqlite3_finalize(t->key_st);
    for (i = 0; i < KZ_ARRAY_SIZE(t->wc); i++)
        sqlite3_finalize(t->wc[i].st);
    memset(t, 0, sizeof(*t));
}

void
track__free_all(struct replica *r)
{
    uint32_t i;

    track__capture_forget(r);
    for (i = 0; i < r->n_tables; i++)
        tracked_clear(&r->tables[i]);
    kz_free(r->tables);
    r->tables = NULL;
    r->n_tables = 0;
}

struct tracked *
track__by_name(struct replica *r, const char *name, size_t len)
{
    uint32_t i;

    for (i = 0; i < r->n_tables; i++) {
        if (strlen(r->tables[i].name) == len &&
            memcmp(r->tables[i].name, name, len) == 0)
            return &r->tables[i];
    }
    return NULL;
}

struct tracked *
track__by_id(struct replica *r, int id)
{
    uint32_t i;

    for (i = 0; i < r->n_tables; i++) {
        if (r->tables[i].id == id)
            return &r->tables[i];
    }
    return NULL;
}

/* Sets bit k of *mask for every name of the comma list ${list} found among
 * t's columns; -KZ_ESCHEMA for a name that is not a column. */
static int
mask_from_list(struct replica *r, const struct tracked *t, const char *list,
               uint64_t *mask)
{
    const char *p = list;

    *mask = 0;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        uint32_t k;
        int found = 0;

        while (len > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        for (k = 0; len > 0 && k < t->n_cols; k++) {
            if (strlen(t->cols[k]) == len && memcmp(t->cols[k], p, len) == 0) {
                *mask |= UINT64_C(1) << (k + 1);
                found = 1;
            }
        }
        if (len > 0 && !found) {
            snprintf(r->errmsg, sizeof(r->errmsg),
                     "cannot track %s: declared column %.*s does not exist",
                     t->name, (int)len, p);
            return -KZ_ESCHEMA;
        }
        p = e ? e + 1 : NULL;
    }
    return 0;
}

/* Whether ${s} contains ${w}, ignoring ASCII case. */
static int
has_word(const char *s, const char *w)
{
    size_t n = strlen(w);

    for (; *s; s++)
        if (sqlite3_strnicmp(s, w, (int)n) == 0)
            return 1;
    return 0;
}

/*
 * Whether the values of a column declared ${type} keep the type they were
 * written with, so that 1 and 1.0 are different values there: BLOB
 * affinity (SQLite's rules: no INT, CHAR, CLOB or TEXT in the type, and
 * BLOB or nothing), and ANY (which in a STRICT table keeps every value as
 * written; elsewhere it is NUMERIC, where the extra check costs only time).
 */
static int
keeps_type(const char *type)
{
    if (type == NULL || type[0] == '\0' || sqlite3_stricmp(type, "ANY") == 0)
        return 1;
    if (has_word(type, "INT") || has_word(type, "CHAR") ||
        has_word(type, "CLOB") || has_word(type, "TEXT"))
        return 0;
    return has_word(type, "BLOB");
}

/* Reads the columns of ${t->name} and checks that it can be tracked. */
static int
load_columns(struct replica *r, struct tracked *t)
{
    sqlite3_stmt *st = NULL;
    char *sql;
    int rc, err = 0, n_int_pk = 0;
    uint32_t pk_n = 0, i;
    char *pk_tmp[KZ_LIM_PK_COLS_MAX] = {0};
    char *pk_type = NULL;

    sql = sqlite3_mprintf("SELECT name, type, pk FROM pragma_table_info(%Q)"
                          " ORDER BY cid",
                          t->name);
    if (sql == NULL)
        return -KZ_ENOMEM;
    rc = sqlite3_prepare_v2(r->db, sql, -1, &st, NULL);
    sqlite3_free(sql);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "table_info");
    t->cols = kz_mallocarray(REPLICA_MAX_COLS + 1, sizeof(char *));
    if (t->cols == NULL) {
        sqlite3_finalize(st);
        return -KZ_ENOMEM;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *type = (const char *)sqlite3_column_text(st, 1);
        int pk = sqlite3_column_int(st, 2);

        if (pk > 0) {
            if (pk > (int)KZ_LIM_PK_COLS_MAX) {
                snprintf(r->errmsg, sizeof(r->errmsg),
                         "cannot track %s: more than %u key columns", t->name,
                         KZ_LIM_PK_COLS_MAX);
                err = -KZ_ESCHEMA;
                break;
            }
            pk_tmp[pk - 1] = kz_strdup(name);
            if (pk_tmp[pk - 1] == NULL) {
                err = -KZ_ENOMEM;
                break;
            }
            if (keeps_type(type))
                t->pk_keep_type |= 1u << (pk - 1);
            pk_n++;
            if (type && sqlite3_stricmp(type, "INTEGER") == 0)
                n_int_pk++;
            kz_free(pk_type);
            pk_type = type ? kz_strdup(type) : NULL;
            continue;
        }
        if (t->n_cols >= REPLICA_MAX_COLS) {
            snprintf(r->errmsg, sizeof(r->errmsg),
                     "cannot track %s: more than %d columns", t->name,
                     REPLICA_MAX_COLS);
            err = -KZ_ESCHEMA;
            break;
        }
        t->cols[t->n_cols] = kz_strdup(name);
        if (t->cols[t->n_cols] == NULL) {
            err = -KZ_ENOMEM;
            break;
        }
        if (keeps_type(type))
            t->keep_type |= UINT64_C(1) << (t->n_cols + 1);
        t->n_cols++;
    }
    if (err == 0 && rc != SQLITE_DONE)
        err = replica__dberr(r, rc, "table_info");
    sqlite3_finalize(st);
    if (err == 0 && pk_n == 0 && t->n_cols == 0) {
        snprintf(r->errmsg, sizeof(r->errmsg), "cannot track %s: no such table",
                 t->name);
        err = -KZ_ESCHEMA;
    } else if (err == 0 && pk_n == 0) {
        snprintf(r->errmsg, sizeof(r->errmsg),
                 "cannot track %s: it has no PRIMARY KEY; rowids from two "
                 "sites collide, so a tracked table needs a key such as a "
                 "TEXT UUID",
                 t->name);
        err = -KZ_ESCHEMA;
    } else if (err == 0 && pk_n == 1 && n_int_pk == 1) {
        snprintf(r->errmsg, sizeof(r->errmsg),
                 "cannot track %s: its INTEGER PRIMARY KEY is an "
                 "auto-assigned rowid; ids from two sites collide, so use a "
                 "TEXT UUID key",
                 t->name);
        err = -KZ_ESCHEMA;
    }
    kz_free(pk_type);
    if (err == 0) {
        t->pk = kz_mallocarray(pk_n, sizeof(char *));
        if (t->pk == NULL)
            err = -KZ_ENOMEM;
    }
    for (i = 0; i < pk_n; i++) {
        if (err == 0 && pk_tmp[i] == NULL) {
            snprintf(r->errmsg, sizeof(r->errmsg),
                     "cannot track %s: odd primary key", t->name);
            err = -KZ_ESCHEMA;
        }
        if (err == 0)
            t->pk[t->n_pk++] = pk_tmp[i];
        else
            kz_free(pk_tmp[i]);
    }
    return err;
}

/* Fills *t from a kz_tracked-shaped row (id, tbl, kind, owner, priv, cond
 * cols, cond when, filter). */
static int
tracked_init(struct replica *r, struct tracked *t, int id, const char *tbl,
             const struct track_decl *d)
{
    uint64_t m;
    int err;

    memset(t, 0, sizeof(*t));
    t->id = id;
    if ((t->name = kz_strdup(tbl)) == NULL)
        return -KZ_ENOMEM;
    if (strcmp(d->scope_kind, "network") == 0)
        t->kind = TRACK_NETWORK;
    else if (strcmp(d->scope_kind, "site") == 0)
        t->kind = TRACK_SITE;
    else if (strcmp(d->scope_kind, "private") == 0)
        t->kind = TRACK_PRIVATE;
    else {
        snprintf(r->errmsg, sizeof(r->errmsg),
                 "cannot track %s: unknown scope kind %s", tbl, d->scope_kind);
        return -KZ_ESCHEMA;
    }
    if ((err = load_columns(r, t)))
        return err;
    if (t->kind != TRACK_NETWORK) {
        const char *oc = d->owner_col ? d->owner_col : "site_id";
        if ((err = mask_from_list(r, t, oc, &m)))
            return err;
        if ((t->owner_col = kz_strdup(oc)) == NULL)
            return -KZ_ENOMEM;
    }
    if ((err = mask_from_list(r, t, d->private_cols, &t->priv_mask)))
        return err;
    if ((err = mask_from_list(r, t, d->cond_private_cols, &t->cond_mask)))
        return err;
    if (d->cond_private_when &&
        (t->cond_when = kz_strdup(d->cond_private_when)) == NULL)
        return -KZ_ENOMEM;
    if (d->row_filter && (t->row_filter = kz_strdup(d->row_filter)) == NULL)
        return -KZ_ENOMEM;
    if (t->cond_mask && t->cond_when == NULL) {
        snprintf(r->errmsg, sizeof(r->errmsg),
                 "cannot track %s: conditional private columns need a "
                 "condition",
                 tbl);
        return -KZ_ESCHEMA;
    }
    return 0;
}

static void
bputs(struct kz_buf *b, const char *s)
{
    kz_buf_append(b, s, strlen(s));
}

static void
bprintf(struct kz_buf *b, const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    if (s == NULL) {
        b->err = -KZ_ENOMEM;
        return;
    }
    bputs(b, s);
    sqlite3_free(s);
}

/*
 * The kz_clock key of a row: a single key column's value itself; for a
 * composite key json_array() of its parts, each part as itself except a
 * REAL, which becomes {"r": quote(x)}, and a BLOB, which becomes {"b":
 * hex(x)}: json_array() alone keeps 15 digits of a REAL (so 0.1 + 0.2 and
 * 0.3 would share a key) and refuses a BLOB.  A TEXT part loses the JSON
 * subtype json_object() or json() may have given it (x || ''), or it would
 * be embedded as JSON.  quote() writes a REAL exactly when SQLite reads its
 * text back as the same value, which holds for every value not far beyond
 * ±1e±100; ±Inf is written "Inf" and "-Inf".
 *
 * A key that cannot be kept so (key_ok is false): a NULL part (SQLite lets
 * a rowid table's key hold one; a changeset does not), and in a composite
 * key a REAL that quote() does not write exactly or a TEXT with a NUL
 * (json_each() ends it there).  Its part gets ${fail}: RAISE in the
 * triggers, NULL in the engine's own statements.  capture.c reads the
 * parts back.
 */
static void
key_part(struct kz_buf *b, const char *x, const char *fail)
{
    bprintf(b,
            "CASE typeof(%s) WHEN 'real' THEN CASE WHEN CAST(quote(%s) AS"
            " REAL) = %s OR %s IN (9e999, -9e999) THEN json_object('r',"
            " quote(%s))"
            " ELSE %s END WHEN 'blob' THEN json_object('b', hex(%s)) WHEN"
            " 'text' THEN CASE WHEN instr(%s, char(0)) = 0 THEN %s || '' ELSE"
            " %s END WHEN 'null' THEN %s ELSE %s END",
            x, x, x, x, x, fail, x, x, x, fail, fail, x);
}

void
track__key_sql(struct kz_buf *b, uint32_t n, const char *const *parts,
               const char *fail)
{
    uint32_t i;

    if (n == 1) {
        /* coalesce reads the column once (CASE … IS NULL … ELSE read it
         * twice) and evaluates ${fail} only for NULL. */
        bprintf(b, "coalesce(%s, %s)", parts[0], fail);
        return;
    }
    bputs(b, "json_array(");
    for (i = 0; i < n; i++) {
        if (i)
            bputs(b, ", ");
        key_part(b, parts[i], fail);
    }
    bputs(b, ")");
}

/* Appends "(… AND …)": whether the key of ${parts} can be kept (above). */
static void
key_ok(struct kz_buf *b, uint32_t n, const char *const *parts)
{
    uint32_t i;

    bputs(b, "(");
    for (i = 0; i < n; i++) {
        bprintf(b, "%s%s IS NOT NULL", i ? " AND " : "", parts[i]);
        if (n > 1)
            bprintf(b,
                    " AND (typeof(%s) <> 'real' OR CAST(quote(%s) AS REAL) ="
                    " %s OR %s IN (9e999, -9e999)) AND (typeof(%s) <> 'text' OR"
                    " instr(%s, char(0)) = 0)",
                    parts[i], parts[i], parts[i], parts[i], parts[i], parts[i]);
    }
    bputs(b, ")");
}

static const char *const key_params[KZ_LIM_PK_COLS_MAX] = {
    "?1", "?2", "?3", "?4", "?5", "?6", "?7", "?8"};

int
track__key_stmt(struct replica *r, uint32_t n, sqlite3_stmt **out)
{
    struct kz_buf b;
    uint32_t i;
    int rc, err;

    *out = NULL;
    if (n < 2 || n > KZ_LIM_PK_COLS_MAX)
        return -KZ_EINVAL;
    kz_buf_init(&b, 1u << 20);
    bputs(&b, "SELECT ");
    track__key_sql(&b, n, key_params, "NULL");
    bputs(&b, ", ");
    key_ok(&b, n, key_params);
    bputs(&b, ", json_array(");
    for (i = 0; i < n; i++)
        bprintf(&b, "%squote(%s)", i ? ", " : "", key_params[i]);
    bputs(&b, ")");
    kz_buf_u8(&b, 0);
    if ((err = b.err) == 0) {
        rc = sqlite3_prepare_v3(r->db, (const char *)b.p, -1,
                                SQLITE_PREPARE_PERSISTENT, out, NULL);
        if (rc != SQLITE_OK) {
            *out = NULL;
            err = replica__dberr(r, rc, "key");
        }
    }
    kz_buf_free(&b);
    return err;
}

/* The parts of row P's key ("NEW.\"k\"", …), sqlite3_free'd by the caller;
 * NULL entries on ENOMEM (b->err set). */
static void
row_parts(struct kz_buf *b, const struct tracked *t, const char *p,
          char **parts)
{
    uint32_t i;

    for (i = 0; i < t->n_pk; i++)
        if ((parts[i] = sqlite3_mprintf("%s.\"%w\"", p, t->pk[i])) == NULL)
            b->err = -KZ_ENOMEM;
}

static void
free_parts(char **parts, uint32_t n)
{
    uint32_t i;

    for (i = 0; i < n; i++)
        sqlite3_free(parts[i]);
}

/* Appends the key of the row P (NEW or OLD): see track__key_sql.  NEW's
 * must be one that can be kept: the write is refused otherwise, except
 * inside an apply, which never writes such a key itself (apply.c
 * quarantines it) and whose log rows are dropped: a schema trigger's write
 * there is logged under '' instead of failing the apply. */
static void
pk_expr(struct kz_buf *b, const struct tracked *t, const char *p)
{
    char *parts[KZ_LIM_PK_COLS_MAX] = {0}, *fail;

    fail = sqlite3_mprintf("CASE WHEN " APPLYING_OFF " THEN RAISE(ABORT,"
                           " 'kzsync: the key of %q must have no NULL part;"
                           " in a key of several columns, no NUL character in"
                           " a text and no REAL that SQLite does not write and"
                           " read back exactly') ELSE '' END",
                           t->name);
    if (fail == NULL)
        b->err = -KZ_ENOMEM;
    row_parts(b, t, p, parts);
    if (b->err == 0)
        track__key_sql(b, t->n_pk, (const char *const *)parts,
                       strcmp(p, "OLD") == 0 ? "NULL" : fail);
    free_parts(parts, t->n_pk);
    sqlite3_free(fail);
}

/* Appends whether row P's key can be kept.  An OLD key that cannot was
 * never sent (the triggers of generation 3 refuse it; older ones stored it,
 * but it could not travel): its delete is not logged, so that such a row
 * can still be deleted or given a proper key. */
static void
pk_ok(struct kz_buf *b, const struct tracked *t, const char *p)
{
    char *parts[KZ_LIM_PK_COLS_MAX] = {0};

    row_parts(b, t, p, parts);
    if (b->err == 0)
        key_ok(b, t->n_pk, (const char *const *)parts);
    free_parts(parts, t->n_pk);
}

/*
 * Appends "(NEW.c IS NOT OLD.c COLLATE BINARY …)": whether column ${c}
 * changed: a column's own collation (NOCASE, say) would call 'x' and 'X'
 * equal, and where values keep their type (keeps_type) 1 and 1.0 differ
 * in type only, so the type is compared too.  Key columns are compared
 * the same way.  Not seen: 0.0 becoming -0.0, which compare equal and are
 * one value to kzsync (digest.c).
 */
static void
col_changed(struct kz_buf *b, const char *c, int keep_type)
{
    bprintf(b, "(NEW.\"%w\" IS NOT OLD.\"%w\" COLLATE BINARY", c, c);
    if (keep_type)
        bprintf(b, " OR typeof(NEW.\"%w\") <> typeof(OLD.\"%w\")", c, c);
    bputs(b, ")");
}

/* Appends "NOT (…) AND …": the row keeps its key, exactly. */
static void
pk_same(struct kz_buf *b, const struct tracked *t)
{
    uint32_t i;

    for (i = 0; i < t->n_pk; i++) {
        bputs(b, i ? " AND NOT " : "NOT ");
        col_changed(b, t->pk[i], (t->pk_keep_type >> i) & 1);
    }
}

/* The write rules, as BEFORE triggers raising one clear message. */
static void
write_rules(struct replica *r, struct kz_buf *b, const struct tracked *t)
{
    static const char *const ev[3] = {"INSERT", "UPDATE", "DELETE"};
    static const char *const tag[3] = {"wi", "wu", "wd"};
    char msg[400];
    int i;

    if (r->role == REPLICA_ROLE_OBSERVER) {
        snprintf(msg, sizeof(msg),
                 "kzsync rule READ-ONLY: this device is an observer and "
                 "writes nothing (table %s)",
                 t->name);
    } else if (t->kind == TRACK_NETWORK && r->role != REPLICA_ROLE_ADMIN) {
        snprintf(msg, sizeof(msg),
                 "kzsync rule NETWORK-ADMIN: %s is reference data of scope "
                 "network, written by the state office only",
                 t->name);
    } else if (t->kind != TRACK_NETWORK && r->role == REPLICA_ROLE_ADMIN) {
        snprintf(msg, sizeof(msg),
                 "kzsync rule SITE-OWNER: %s rows belong to their site; the "
                 "state office reads them and writes none",
                 t->name);
    } else if (t->kind != TRACK_NETWORK) {
        /* A site device writes only rows whose owner is its own site. */
        for (i = 0; i < 3; i++) {
            const char *row = i == 2 ? "OLD" : "NEW";
            bprintf(b,
                    "CREATE TRIGGER \"kz_%s_%w\" BEFORE %s ON \"%w\""
                    " WHEN " APPLYING_OFF " AND (",
                    tag[i], t->name, ev[i], t->name);
            bprintf(b, "%s.\"%w\" IS NOT (SELECT id FROM site WHERE code = %Q)",
                    row, t->owner_col, r->site);
            if (i == 1)
                bprintf(b,
                        " OR OLD.\"%w\" IS NOT (SELECT id FROM site WHERE"
                        " code = %Q)",
                        t->owner_col, r->site);
            bprintf(b,
                    ") BEGIN SELECT RAISE(ABORT, 'kzsync rule SITE-OWNER: "
                    "a %q row of another site; this device writes only "
                    "rows of site %q (%q must be its site id)'); END;",
                    t->name, r->site, t->owner_col);
        }
        return;
    } else {
        return;
    }
    for (i = 0; i < 3; i++)
        bprintf(b,
                "CREATE TRIGGER \"kz_%s_%w\" BEFORE %s ON \"%w\""
                " WHEN " APPLYING_OFF " BEGIN SELECT RAISE(ABORT, %Q); END;",
                tag[i], t->name, ev[i], t->name, msg);
}

/* The capture triggers' tags (the write rules are wi, wu and wd). */
static const char *const capture_tags[] = {"i", "u", "k", "d"};

/* Appends the SQL that creates T's capture triggers. */
static void
capture_sql(struct kz_buf *b, const struct tracked *t)
{
    uint64_t all = (UINT64_C(1) << (t->n_cols + 1)) - 1;
    uint32_t k;

    /* INSERT */
    bprintf(b,
            "CREATE TRIGGER \"kz_i_%w\" AFTER INSERT ON \"%w\" BEGIN"
            " INSERT INTO kz_log(tbl, pk, op, mask, ms) VALUES (%d, ",
            t->name, t->name, t->id);
    pk_expr(b, t, "NEW");
    bprintf(b, ", 1, %lld, " NOW_MS_SQL "); END;", (long long)all);

    /* UPDATE, key unchanged.  The columns are compared once, for the
     * mask: an update that changes nothing logs a mask of 0, which the
     * fold passes over (capture.c).  Testing them in the WHEN clause as
     * well, to log nothing, cost every real update about 3%.  They are
     * tested there only for a key that cannot be kept (pk_ok), whose
     * update the body refuses: an update changing nothing must not. */
    if (t->n_cols > 0) {
        bprintf(b, "CREATE TRIGGER \"kz_u_%w\" AFTER UPDATE ON \"%w\" WHEN ",
                t->name, t->name);
        pk_same(b, t);
        bputs(b, " AND (");
        pk_ok(b, t, "NEW");
        for (k = 0; k < t->n_cols; k++) {
            bputs(b, " OR ");
            col_changed(b, t->cols[k], (t->keep_type >> (k + 1)) & 1);
        }
        bprintf(b,
                ") BEGIN INSERT INTO kz_log(tbl, pk, op, mask, ms) VALUES"
                " (%d, ",
                t->id);
        pk_expr(b, t, "NEW");
        /* The mask as a sum of iif()s: one opcode per column fewer than
         * (changed << k) | …, and the bits are distinct (at most 62
         * columns: 2^62 is the largest, the sum fits in 63 bits). */
        bputs(b, ", 1, ");
        for (k = 0; k < t->n_cols; k++) {
            bputs(b, k ? " + iif(" : "iif(");
            col_changed(b, t->cols[k], (t->keep_type >> (k + 1)) & 1);
            bprintf(b, ", %llu, 0)",
                    (unsigned long long)(UINT64_C(1) << (k + 1)));
        }
        bputs(b, ", " NOW_MS_SQL "); END;");
    }

    /* UPDATE of the key: a delete of the old key and an insert of the new
     * one.  "OF" the key columns, so that SQLite leaves it out of every
     * UPDATE statement that does not set a key column. */
    bprintf(b, "CREATE TRIGGER \"kz_k_%w\" AFTER UPDATE OF ", t->name);
    for (k = 0; k < t->n_pk; k++)
        bprintf(b, "%s\"%w\"", k ? ", " : "", t->pk[k]);
    bprintf(b, " ON \"%w\" WHEN NOT (", t->name);
    pk_same(b, t);
    bprintf(b, ") BEGIN INSERT INTO kz_log(tbl, pk, op, mask, ms) SELECT %d, ",
            t->id);
    pk_expr(b, t, "OLD");
    bprintf(b, ", 2, %lld, " NOW_MS_SQL " WHERE ", (long long)all);
    pk_ok(b, t, "OLD");
    bputs(b, "; ");
    bprintf(b, "INSERT INTO kz_log(tbl, pk, op, mask, ms) VALUES (%d, ", t->id);
    pk_expr(b, t, "NEW");
    bprintf(b, ", 1, %lld, " NOW_MS_SQL "); END;", (long long)all);

    /* DELETE */
    bprintf(b, "CREATE TRIGGER \"kz_d_%w\" AFTER DELETE ON \"%w\" WHEN ",
            t->name, t->name);
    pk_ok(b, t, "OLD");
    bprintf(b, " BEGIN INSERT INTO kz_log(tbl, pk, op, mask, ms) VALUES (%d, ",
            t->id);
    pk_expr(b, t, "OLD");
    bprintf(b, ", 2, %lld, " NOW_MS_SQL "); END;", (long long)all);
}

static int
make_triggers(struct replica *r, const struct tracked *t)
{
    static const char *const rule_tags[] = {"wi", "wu", "wd"};
    struct kz_buf b;
    size_t i;
    int err;

    kz_buf_init(&b, 1u << 20);
    for (i = 0; i < KZ_ARRAY_SIZE(capture_tags); i++)
        bprintf(&b, "DROP TRIGGER IF EXISTS \"kz_%s_%w\";", capture_tags[i],
                t->name);
    for (i = 0; i < KZ_ARRAY_SIZE(rule_tags); i++)
        bprintf(&b, "DROP TRIGGER IF EXISTS \"kz_%s_%w\";", rule_tags[i],
                t->name);
    capture_sql(&b, t);
    write_rules(r, &b, t);
    kz_buf_u8(&b, 0);
    if (b.err) {
        err = b.err;
        kz_buf_free(&b);
        return err;
    }
    err = replica__exec(r, (const char *)b.p);
    kz_buf_free(&b);
    return err;
}

int
replica_track(struct replica *r, const char *table, const struct track_decl *d)
{
    struct tracked t;
    sqlite3_stmt *st = NULL;
    int rc, err, id = 0, own_tx = sqlite3_get_autocommit(r->db);

    r->errmsg[0] = '\0';
    if (own_tx && (err = replica__begin(r)))
        return err;
    rc = sqlite3_prepare_v2(r->db, "SELECT id FROM kz_tracked WHERE tbl = ?",
                            -1, &st, NULL);
    if (rc != SQLITE_OK) {
        err = replica__dberr(r, rc, "track");
        goto out;
    }
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        id = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (id == 0) {
        rc = sqlite3_prepare_v2(
            r->db, "SELECT coalesce(max(id), 0) + 1 FROM kz_tracked", -1, &st,
            NULL);
        if (rc != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
            err = replica__dberr(r, rc, "track");
            goto out;
        }
        id = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        st = NULL;
    }
    err = tracked_init(r, &t, id, table, d);
    if (err == 0)
        err = make_triggers(r, &t);
    tracked_clear(&t);
    if (err)
        goto out;
    rc = sqlite3_prepare_v2(r->db,
                            "INSERT OR REPLACE INTO kz_tracked VALUES"
                            " (?, ?, ?, ?, ?, ?, ?, ?)",
                            -1, &st, NULL);
    if (rc != SQLITE_OK) {
        err = replica__dberr(r, rc, "track");
        goto out;
    }
    sqlite3_bind_int(st, 1, id);
    sqlite3_bind_text(st, 2, table, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, d->scope_kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, d->owner_col, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, d->private_cols, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, d->cond_private_cols, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, d->cond_private_when, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, d->row_filter, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE) {
        err = replica__dberr(r, rc, "track");
        goto out;
    }
    err = track__load(r);
out:
    if (own_tx) {
        if (err == 0)
            err = replica__commit(r);
        if (err) {
            char keep[sizeof(r->errmsg)];
            memcpy(keep, r->errmsg, sizeof(keep));
            replica__rollback(r);
            memcpy(r->errmsg, keep, sizeof(keep));
            (void)track__load(r);
        }
    }
    return err;
}

/* Tracks every table the shipped schema declares in kz_track_decl. */
int
track__apply_decls(struct replica *r)
{
    sqlite3_stmt *st = NULL;
    int rc, err = 0;

    rc = sqlite3_prepare_v2(r->db,
                            "SELECT tbl, scope_kind, owner_col, private_cols,"
                            " cond_private_cols, cond_private_when, row_filter"
                            " FROM kz_track_decl ORDER BY tbl",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "track_decl");
    while (err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct track_decl d = {
            (const char *)sqlite3_column_text(st, 1),
            (const char *)sqlite3_column_text(st, 2),
            (const char *)sqlite3_column_text(st, 3),
            (const char *)sqlite3_column_text(st, 4),
            (const char *)sqlite3_column_text(st, 5),
            (const char *)sqlite3_column_text(st, 6),
        };
        err = replica_track(r, (const char *)sqlite3_column_text(st, 0), &d);
    }
    if (err == 0 && rc != SQLITE_DONE)
        err = replica__dberr(r, rc, "track_decl");
    sqlite3_finalize(st);
    return err;
}

int
track__capture_pause(struct replica *r, struct tracked *t)
{
    sqlite3_stmt *st = NULL;
    struct kz_buf drop;
    int rc, err = 0;

    if (t->capture_paused)
        return 0;
    if (r->n_paused == 0)
        kz_buf_init(&r->paused_sql, 1u << 24);
    /* Each trigger as it stands in the schema, to be put back word for word:
     * not made anew from this process's view of the table, which another
     * process may have changed since (a column added and tracked anew, a
     * column renamed, newer triggers). */
    rc = sqlite3_prepare_v2(r->db,
                            "SELECT name, sql FROM sqlite_master"
                            " WHERE type = 'trigger' AND tbl_name = ?1"
                            " AND name IN ('kz_i_' || ?1, 'kz_u_' || ?1,"
                            " 'kz_k_' || ?1, 'kz_d_' || ?1) ORDER BY rowid",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "pause capture");
    sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
    kz_buf_init(&drop, 1u << 16);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *sql = (const char *)sqlite3_column_text(st, 1);
        bprintf(&drop, "DROP TRIGGER \"%w\";",
                (const char *)sqlite3_column_text(st, 0));
        if (sql != NULL)
            bprintf(&r->paused_sql, "%s;", sql);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        err = replica__dberr(r, rc, "pause capture");
    kz_buf_u8(&drop, 0);
    if (err == 0 && (err = drop.err ? drop.err : r->paused_sql.err) == 0)
        err = replica__exec(r, (const char *)drop.p);
    kz_buf_free(&drop);
    /* Paused even on failure: the caller rolls back, which forgets. */
    t->capture_paused = 1;
    r->n_paused++;
    return err;
}

int
track__capture_resume(struct replica *r)
{
    int err;

    if (r->n_paused == 0)
        return 0;
    kz_buf_u8(&r->paused_sql, 0);
    err = r->paused_sql.err ? r->paused_sql.err
                            : replica__exec(r, (const char *)r->paused_sql.p);
    if (err == 0)
        track__capture_forget(r);
    return err;
}

void
track__capture_forget(struct replica *r)
{
    uint32_t i;

    for (i = 0; i < r->n_tables; i++)
        r->tables[i].capture_paused = 0;
    if (r->n_paused)
        kz_buf_free(&r->paused_sql);
    r->n_paused = 0;
}

/* Makes every tracked table's triggers anew (the role changed). */
int
track__retrack_all(struct replica *r)
{
    uint32_t i;
    int err = 0;

    for (i = 0; i < r->n_tables && err == 0; i++)
        err = make_triggers(r, &r->tables[i]);
    return err;
}

/*
 * Rekeying (trigger generation 3).  Generation 2 keyed a composite key with
 * json_array() alone: a REAL part cut to 15 digits, ±Inf as the bare
 * tokens Inf and -Inf (not JSON), a text part with a JSON subtype embedded
 * as JSON, NULL parts allowed.  Live rows get their
 * exact key from the table; the rest (tombstones, pending deletes,
 * conflicts) from the cut value; keys with a NULL part, which no changeset
 * can carry, are dropped from kz_log and kz_clock (they never left this
 * replica).  Two live rows that shared one cut key shared its kz_clock row
 * too: the first keeps it, the other starts anew at its next write.
 */

/* The tables that hold row keys: kz_clock and kz_log by table id, the
 * others by name. */
static const char *const rekey_tabs[4] = {"kz_clock", "kz_log", "kz_quarantine",
                                          "kz_conflict"};

/* The mask of every cell of ${t}: a whole row. */
static long long
all_cells(const struct tracked *t)
{
    return (long long)((UINT64_C(1) << (t->n_cols + 1)) - 1);
}

/* Appends "json_array(part…)" of ${t}'s stored key pk, each part rewritten
 * by ${part} (an SQL format taking the part's index three times). */
static void
parts_expr(struct kz_buf *b, const struct tracked *t, const char *part)
{
    uint32_t i;

    bputs(b, "json_array(");
    for (i = 0; i < t->n_pk; i++) {
        bputs(b, i ? ", " : "");
        bprintf(b, part, i, i, i);
    }
    bputs(b, ")");
}

/* Appends the condition on rekey_tabs[k]'s rows: ${t}'s keys with a part
 * of a type in ${types}, and ${extra} (" AND …" or ""). */
static void
parts_where(struct kz_buf *b, const struct tracked *t, uint32_t k,
            const char *types, const char *extra)
{
    if (k < 2)
        bprintf(b, " WHERE tbl = %d", t->id);
    else
        bprintf(b, " WHERE tbl = %Q", t->name);
    bprintf(b,
            " AND json_valid(pk) AND json_type(pk) = 'array' AND EXISTS"
            " (SELECT 1 FROM json_each(pk) WHERE type IN (%s))%s",
            types, extra);
}

/*
 * Appends the rewrite of ${t}'s keys in rekey_tabs[k] (see parts_expr and
 * parts_where), ending in ';'.  In kz_clock two stored keys of one row may
 * become one (generation 2 logged a subtyped text part as JSON at the
 * insert and as a string at later updates): the one left over goes, and
 * the row is logged whole under the new key, so that its next build sends
 * it with fresh versions rather than stop on a key it cannot read.
 */
static void
rewrite_parts(struct kz_buf *b, const struct tracked *t, uint32_t k,
              const char *part, const char *types, const char *extra)
{
    bprintf(b, "UPDATE %s%s SET pk = ", k ? "" : "OR IGNORE ", rekey_tabs[k]);
    parts_expr(b, t, part);
    parts_where(b, t, k, types, extra);
    bputs(b, ";");
    if (k != 0)
        return;
    bprintf(b, "INSERT INTO kz_log(tbl, pk, op, mask, ms) SELECT tbl, ");
    parts_expr(b, t, part);
    bprintf(b, ", 1, %lld, " NOW_MS_SQL " FROM kz_clock", all_cells(t));
    parts_where(b, t, k, types, extra);
    bputs(b, "; DELETE FROM kz_clock");
    parts_where(b, t, k, types, extra);
    bputs(b, ";");
}

/* Live rows of ${t} with a REAL key part: the key json_array() made of the
 * row becomes the exact one, in kz_clock, kz_log, kz_quarantine and
 * kz_conflict, through a temp table of (old, new). */
static int
rekey_live(struct replica *r, const struct tracked *t)
{
    char *parts[KZ_LIM_PK_COLS_MAX] = {0};
    struct kz_buf b;
    uint32_t i;
    int err;

    kz_buf_init(&b, 1u << 20);
    for (i = 0; i < t->n_pk; i++)
        if ((parts[i] = sqlite3_mprintf("\"%w\"", t->pk[i])) == NULL)
            b.err = -KZ_ENOMEM;
    if (b.err)
        goto out;
    bputs(&b, "DROP TABLE IF EXISTS temp.kz_rekey;"
              "CREATE TEMP TABLE kz_rekey(old PRIMARY KEY, new NOT NULL)"
              " WITHOUT ROWID;"
              "INSERT OR IGNORE INTO kz_rekey SELECT json_array(");
    for (i = 0; i < t->n_pk; i++)
        bprintf(&b, "%s%s", i ? ", " : "", parts[i]);
    bputs(&b, "), ");
    track__key_sql(&b, t->n_pk, (const char *const *)parts, "NULL");
    bprintf(&b, " FROM \"%w\" WHERE (", t->name);
    for (i = 0; i < t->n_pk; i++)
        bprintf(&b, "%stypeof(%s) = 'real'", i ? " OR " : "", parts[i]);
    bputs(&b, ")");
    for (i = 0; i < t->n_pk; i++)
        bprintf(&b, " AND typeof(%s) <> 'blob'", parts[i]);
    bputs(&b, " AND ");
    key_ok(&b, t->n_pk, (const char *const *)parts);
    bputs(&b, ";");
    for (i = 0; i < 4; i++) {
        bprintf(&b,
                "UPDATE %s%s SET pk = k.new FROM kz_rekey AS k WHERE"
                " %s.pk = k.old AND %s.tbl = ",
                i == 0 ? "OR IGNORE " : "", rekey_tabs[i], rekey_tabs[i],
                rekey_tabs[i]);
        if (i < 2)
            bprintf(&b, "%d;", t->id);
        else
            bprintf(&b, "%Q;", t->name);
        if (i == 0)
            /* A new key already there (see rewrite_parts): the row goes
             * whole under it, the old one goes. */
            bprintf(&b,
                    "INSERT INTO kz_log(tbl, pk, op, mask, ms) SELECT %d,"
                    " k.new, 1, %lld, " NOW_MS_SQL " FROM kz_clock AS c"
                    " JOIN kz_rekey AS k ON c.pk = k.old WHERE c.tbl = %d;"
                    "DELETE FROM kz_clock WHERE tbl = %d AND pk IN (SELECT"
                    " old FROM kz_rekey);",
                    t->id, all_cells(t), t->id, t->id);
    }
    bputs(&b, "DROP TABLE temp.kz_rekey;");
    kz_buf_u8(&b, 0);
out:
    free_parts(parts, t->n_pk);
    err = b.err ? b.err : replica__exec(r, (const char *)b.p);
    kz_buf_free(&b);
    return err;
}

/* Parts of ${t}'s stored keys that generation 2 embedded as JSON (a text
 * part with a JSON subtype, from json_object() or json()): the string of
 * their text, as the part is now, before anything else is matched. */
static int
rekey_objects(struct replica *r, const struct tracked *t)
{
    struct kz_buf b;
    uint32_t k;
    int err;

    kz_buf_init(&b, 1u << 20);
    for (k = 0; k < 4; k++) {
        rewrite_parts(&b, t, k,
                      "CASE WHEN json_type(pk, '$[%u]') IN ('object', 'array')"
                      " THEN json_extract(pk, '$[%u]') || '' ELSE"
                      " json_extract(pk, '$[%u]') END",
                      "'object', 'array'", "");
    }
    kz_buf_u8(&b, 0);
    err = b.err ? b.err : replica__exec(r, (const char *)b.p);
    kz_buf_free(&b);
    return err;
}

/* ${in} with each bare Inf and -Inf (outside strings) as {"r":"Inf"} and
 * {"r":"-Inf"}; kz_free it.  NULL on ENOMEM. */
static char *
inf_fixed(const char *in)
{
    size_t n = strlen(in), i, o = 0;
    char *out = kz_malloc(n * 4 + 1);
    int in_str = 0;

    if (out == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        if (in_str) {
            out[o++] = in[i];
            if (in[i] == '\\' && i + 1 < n)
                out[o++] = in[++i];
            else if (in[i] == '"')
                in_str = 0;
        } else if (in[i] == '"') {
            in_str = 1;
            out[o++] = in[i];
        } else if (strncmp(in + i, "-Inf", 4) == 0) {
            memcpy(out + o, "{\"r\":\"-Inf\"}", 12);
            o += 12;
            i += 3;
        } else if (strncmp(in + i, "Inf", 3) == 0) {
            memcpy(out + o, "{\"r\":\"Inf\"}", 11);
            o += 11;
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* kz_clock's ${old} key of table ${id} could not become ${now}, which is
 * there already: the row goes whole under ${now} (see rewrite_parts). */
static int
rekey_collided(struct replica *r, int id, const char *old, const char *now)
{
    const struct tracked *t = track__by_id(r, id);
    char *sql;
    int err;

    if (t == NULL)
        return 0;
    sql = sqlite3_mprintf("INSERT INTO kz_log(tbl, pk, op, mask, ms) VALUES"
                          " (%d, %Q, 1, %lld, " NOW_MS_SQL ");"
                          "DELETE FROM kz_clock WHERE tbl = %d AND pk = %Q;",
                          id, now, all_cells(t), id, old);
    if (sql == NULL)
        return -KZ_ENOMEM;
    err = replica__exec(r, sql);
    sqlite3_free(sql);
    return err;
}

/* Keys in table ${tab} whose ${col} is ${text} (or ${id}) that are not
 * JSON because of Inf tokens: collected first, then rewritten. */
static int
rekey_inf(struct replica *r, const char *tab, const char *col, const char *text,
          int id)
{
    sqlite3_stmt *q = NULL, *put = NULL;
    char *sql_q = NULL, *sql_put = NULL, **keys = NULL, *fixed;
    size_t n = 0, cap = 0, i;
    int rc, err = 0;

    sql_q = sqlite3_mprintf("SELECT DISTINCT pk FROM %s WHERE %s = ?1 AND"
                            " typeof(pk) = 'text' AND NOT json_valid(pk)",
                            tab, col);
    sql_put = sqlite3_mprintf("UPDATE OR IGNORE %s SET pk = ?2 WHERE"
                              " %s = ?1 AND pk = ?3",
                              tab, col);
    if (sql_q == NULL || sql_put == NULL) {
        err = -KZ_ENOMEM;
        goto out;
    }
    rc = sqlite3_prepare_v2(r->db, sql_q, -1, &q, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(r->db, sql_put, -1, &put, NULL);
    if (rc != SQLITE_OK) {
        err = replica__dberr(r, rc, "rekey");
        goto out;
    }
    if (text) {
        sqlite3_bind_text(q, 1, text, -1, SQLITE_STATIC);
        sqlite3_bind_text(put, 1, text, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_int(q, 1, id);
        sqlite3_bind_int(put, 1, id);
    }
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (n == cap) {
            char **p = kz_reallocarray(keys, cap ? cap * 2 : 16, sizeof(*p));
            if (p == NULL) {
                err = -KZ_ENOMEM;
                goto out;
            }
            keys = p;
            cap = cap ? cap * 2 : 16;
        }
        if ((keys[n] = kz_strdup((const char *)sqlite3_column_text(q, 0))) ==
            NULL) {
            err = -KZ_ENOMEM;
            goto out;
        }
        n++;
    }
    if (rc != SQLITE_DONE) {
        err = replica__dberr(r, rc, "rekey");
        goto out;
    }
    for (i = 0; i < n && err == 0; i++) {
        if ((fixed = inf_fixed(keys[i])) == NULL) {
            err = -KZ_ENOMEM;
            break;
        }
        sqlite3_bind_text(put, 2, fixed, -1, SQLITE_STATIC);
        sqlite3_bind_text(put, 3, keys[i], -1, SQLITE_STATIC);
        if ((rc = sqlite3_step(put)) != SQLITE_DONE)
            err = replica__dberr(r, rc, "rekey");
        else if (sqlite3_changes(r->db) == 0 && strcmp(tab, "kz_clock") == 0)
            err = rekey_collided(r, id, keys[i], fixed);
        sqlite3_reset(put);
        kz_free(fixed);
    }
out:
    for (i = 0; i < n; i++)
        kz_free(keys[i]);
    kz_free(keys);
    sqlite3_finalize(q);
    sqlite3_finalize(put);
    sqlite3_free(sql_q);
    sqlite3_free(sql_put);
    return err;
}

/* Every other stored key of ${t} with a REAL part: the part, as
 * json_array() cut it, as {"r": quote(x)}; then keys with a NULL part out
 * of kz_log and kz_clock. */
static int
rekey_rest(struct replica *r, const struct tracked *t)
{
    struct kz_buf b;
    uint32_t k;
    int err = 0;

    for (k = 0; k < 4 && err == 0; k++)
        err =
            rekey_inf(r, rekey_tabs[k], "tbl", k >= 2 ? t->name : NULL, t->id);
    if (err)
        return err;
    kz_buf_init(&b, 1u << 20);
    for (k = 0; k < 4; k++) {
        rewrite_parts(&b, t, k,
                      "CASE json_type(pk, '$[%u]') WHEN 'real' THEN"
                      " json_object('r', quote(json_extract(pk, '$[%u]')))"
                      " ELSE json_extract(pk, '$[%u]') END",
                      "'real'",
                      k == 2 ? " AND reason <> 'no such table here yet'" : "");
        if (k < 2)
            bprintf(&b,
                    "DELETE FROM %s WHERE tbl = %d AND json_valid(pk) AND"
                    " json_type(pk) = 'array' AND EXISTS (SELECT 1 FROM"
                    " json_each(pk) WHERE type = 'null');",
                    rekey_tabs[k], t->id);
    }
    kz_buf_u8(&b, 0);
    err = b.err ? b.err : replica__exec(r, (const char *)b.p);
    kz_buf_free(&b);
    return err;
}

/* Cells kept for a table this replica did not have: their key was
 * json_array() of eight parts, padded with nulls; now it is the key a
 * table with that many key columns gets, or, where no such key can be
 * kept, the reason says so and they are not retried. */
static int
rekey_unknown(struct replica *r)
{
    sqlite3_stmt *q = NULL, *parts = NULL, *put = NULL, *mark = NULL;
    sqlite3_stmt *key[KZ_LIM_PK_COLS_MAX + 1] = {0};
    sqlite3_value *v[KZ_LIM_PK_COLS_MAX] = {0};
    uint32_t n, i;
    int rc, prc, err;

    if ((err = rekey_inf(r, "kz_quarantine", "reason", "no such table here yet",
                         0)))
        return err;
    rc = sqlite3_prepare_v2(r->db,
                            "SELECT id, pk FROM kz_quarantine WHERE reason ="
                            " 'no such table here yet' AND json_valid(pk) AND"
                            " json_array_length(pk) = 8",
                            -1, &q, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(
            r->db,
            /* ±Inf as rekey_inf wrote them; other parts as they are */
            "SELECT CASE WHEN type <> 'object' THEN value WHEN value ="
            " '{\"r\":\"Inf\"}' THEN 9e999 WHEN value = '{\"r\":\"-Inf\"}'"
            " THEN -9e999 ELSE value END FROM json_each(?) ORDER BY key",
            -1, &parts, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(r->db,
                                "UPDATE kz_quarantine SET pk = ? WHERE id = ?",
                                -1, &put, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(
            r->db,
            "UPDATE kz_quarantine SET reason = '" REPLICA_Q_UNKEYABLE
            "' WHERE id = ?",
            -1, &mark, NULL);
    if (rc != SQLITE_OK) {
        err = replica__dberr(r, rc, "rekey");
        goto out;
    }
    while (err == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        sqlite3_stmt *st = put;
        n = 0;
        sqlite3_bind_value(parts, 1, sqlite3_column_value(q, 1));
        for (i = 0; i < KZ_LIM_PK_COLS_MAX &&
                    (prc = sqlite3_step(parts)) == SQLITE_ROW;
             i++) {
            if ((v[i] = sqlite3_value_dup(sqlite3_column_value(parts, 0))) ==
                NULL) {
                err = -KZ_ENOMEM;
                break;
            }
            if (sqlite3_value_type(v[i]) != SQLITE_NULL)
                n = i + 1;
        }
        if (err == 0 && prc != SQLITE_ROW && prc != SQLITE_DONE)
            err = replica__dberr(r, prc, "rekey");
        sqlite3_reset(parts);
        if (err == 0 && n == 1) {
            sqlite3_bind_value(put, 1, v[0]);
        } else if (err == 0 && n > 1) {
            if (key[n] == NULL && (err = track__key_stmt(r, n, &key[n])))
                break;
            for (i = 0; i < n; i++)
                sqlite3_bind_value(key[n], (int)i + 1, v[i]);
            if ((prc = sqlite3_step(key[n])) != SQLITE_ROW)
                err = replica__dberr(r, prc, "rekey");
            else if (sqlite3_column_int(key[n], 1))
                sqlite3_bind_value(put, 1, sqlite3_column_value(key[n], 0));
            else
                st = mark;
        }
        if (err == 0 && n > 0) {
            sqlite3_bind_int64(st, st == put ? 2 : 1,
                               sqlite3_column_int64(q, 0));
            if ((prc = sqlite3_step(st)) != SQLITE_DONE)
                err = replica__dberr(r, prc, "rekey");
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
        }
        if (n > 1 && key[n] != NULL)
            sqlite3_reset(key[n]);
        for (i = 0; i < KZ_LIM_PK_COLS_MAX; i++) {
            sqlite3_value_free(v[i]);
            v[i] = NULL;
        }
    }
    if (err == 0 && rc != SQLITE_DONE)
        err = replica__dberr(r, rc, "rekey");
out:
    for (i = 0; i < KZ_LIM_PK_COLS_MAX; i++)
        sqlite3_value_free(v[i]);
    sqlite3_finalize(q);
    sqlite3_finalize(parts);
    sqlite3_finalize(put);
    sqlite3_finalize(mark);
    for (i = 0; i <= KZ_LIM_PK_COLS_MAX; i++)
        sqlite3_finalize(key[i]);
    return err;
}

int
track__rekey(struct replica *r)
{
    uint32_t i;
    int err = 0;

    for (i = 0; i < r->n_tables && err == 0; i++) {
        if (r->tables[i].n_pk < 2)
            continue;
        if ((err = rekey_objects(r, &r->tables[i])) == 0 &&
            (err = rekey_live(r, &r->tables[i])) == 0)
            err = rekey_rest(r, &r->tables[i]);
    }
    return err ? err : rekey_unknown(r);
}

/* Loads r->tables from kz_tracked and the tables' current columns. */
int
track__load(struct replica *r)
{
    sqlite3_stmt *st = NULL;
    struct tracked *tabs = NULL;
    uint32_t n = 0;
    int rc, err = 0;

    if (r->n_paused) {
        /* Reloading would lose the tables' paused flags. */
        snprintf(r->errmsg, sizeof(r->errmsg),
                 "tracked tables reloaded while capture is paused");
        return -KZ_EINVAL;
    }

    rc = sqlite3_prepare_v2(r->db,
                            "SELECT id, tbl, scope_kind, owner_col,"
                            " private_cols, cond_private_cols,"
                            " cond_private_when, row_filter FROM kz_tracked"
                            " ORDER BY tbl",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "tracked");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct track_decl d = {
            (const char *)sqlite3_column_text(st, 2),
            (const char *)sqlite3_column_text(st, 3),
            (const char *)sqlite3_column_text(st, 4),
            (const char *)sqlite3_column_text(st, 5),
            (const char *)sqlite3_column_text(st, 6),
            (const char *)sqlite3_column_text(st, 7),
        };
        struct tracked *p = kz_reallocarray(tabs, n + 1, sizeof(*tabs));
        if (p == NULL) {
            err = -KZ_ENOMEM;
            break;
        }
        tabs = p;
        err = tracked_init(r, &tabs[n], sqlite3_column_int(st, 0),
                           (const char *)sqlite3_column_text(st, 1), &d);
        n++;
        if (err)
            break;
    }
    if (err == 0 && rc != SQLITE_DONE)
        err = replica__dberr(r, rc, "tracked");
    sqlite3_finalize(st);
    if (err) {
        while (n > 0)
            tracked_clear(&tabs[--n]);
        kz_free(tabs);
        return err;
    }
    track__free_all(r);
    r->tables = tabs;
    r->n_tables = n;
    /* Cells for a table or column not here may apply now (apply.c). */
    r->tables_gen++;
    return 0;
}
