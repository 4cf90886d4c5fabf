/*
 * digest.c: a digest of the tracked content of a scope.
 *
 * BLAKE2b-256 over, for every tracked table in name order and every live
 * row in primary-key order, the cells that belong to the scope (the same
 * rule capture.c uses to route them):
 *
 *     "T" len name | "R" key values | ( "C" len column value )* | "E"
 *
 * with each value as a type byte then int64/float64 big-endian or a 32-bit
 * length and the bytes; -0.0 as 0.0, which SQL holds equal (a column with
 * REAL affinity even stores it as 0, and a change from one to the other is
 * not captured: no core SQL function of SQLite 3.40 shows the sign).  It
 * depends only on content, so replicas that hold the same set of changes give
 * the same digest, whatever the order they arrived in.  Versions are not
 * hashed: two replicas that hold the same values are equal for their users.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "err.h"

#include "replica_int.h"

/* The digest's state; err is the first failure of an update. */
struct hasher {
    crypto_generichash_state st;
    int err;
};

static void
h_bytes(struct hasher *h, const void *p, size_t n)
{
    if (h->err == 0 && crypto_generichash_update(&h->st, p, n) != 0)
        h->err = -KZ_ECRYPTO;
}

static void
h_u32(struct hasher *h, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    h_bytes(h, b, 4);
}

static void
h_u64(struct hasher *h, uint64_t v)
{
    h_u32(h, (uint32_t)(v >> 32));
    h_u32(h, (uint32_t)v);
}

static void
h_str(struct hasher *h, const char *s)
{
    size_t n = strlen(s);
    h_u32(h, (uint32_t)n);
    h_bytes(h, s, n);
}

static void
h_value(struct hasher *h, sqlite3_value *v)
{
    uint8_t t = (uint8_t)sqlite3_value_type(v);
    double d;
    uint64_t u;

    h_bytes(h, &t, 1);
    switch (t) {
    case SQLITE_INTEGER: h_u64(h, (uint64_t)sqlite3_value_int64(v)); break;
    case SQLITE_FLOAT:
        d = sqlite3_value_double(v);
        if (d == 0.0)
            d = 0.0; /* -0.0: equal in SQL, and capture cannot tell */
        memcpy(&u, &d, sizeof(u));
        h_u64(h, u);
        break;
    case SQLITE_TEXT:
        h_u32(h, (uint32_t)sqlite3_value_bytes(v));
        h_bytes(h, sqlite3_value_text(v), (size_t)sqlite3_value_bytes(v));
        break;
    case SQLITE_BLOB:
        h_u32(h, (uint32_t)sqlite3_value_bytes(v));
        h_bytes(h, sqlite3_value_blob(v), (size_t)sqlite3_value_bytes(v));
        break;
    default: break;
    }
}

/* Which part of a table's rows a scope covers. */
enum part { PART_NONE, PART_ALL, PART_PUBLIC, PART_PRIVATE };

static enum part
table_part(const struct tracked *t, const char *scope, const char **site)
{
    *site = NULL;
    if (scope == NULL)
        return PART_ALL;
    if (t->kind == TRACK_NETWORK)
        return strcmp(scope, "network") == 0 ? PART_ALL : PART_NONE;
    if (strncmp(scope, "site:", 5) == 0 && t->kind == TRACK_SITE) {
        *site = scope + 5;
        return PART_PUBLIC;
    }
    if (strncmp(scope, "private:", 8) == 0) {
        *site = scope + 8;
        return t->kind == TRACK_PRIVATE ? PART_ALL : PART_PRIVATE;
    }
    return PART_NONE;
}

static int
digest_table(struct replica *r, struct tracked *t, const char *scope,
             struct hasher *h)
{
    const char *site = NULL;
    enum part part = table_part(t, scope, &site);
    sqlite3_stmt *st = NULL;
    sqlite3_str *q;
    char *sql;
    uint32_t i, k;
    int rc, hashed_name = 0;

    if (part == PART_NONE)
        return 0;
    q = sqlite3_str_new(r->db);
    sqlite3_str_appendall(q, "SELECT ");
    for (i = 0; i < t->n_pk; i++)
        sqlite3_str_appendf(q, "\"%w\", ", t->pk[i]);
    for (k = 0; k < t->n_cols; k++)
        sqlite3_str_appendf(q, "\"%w\", ", t->cols[k]);
    sqlite3_str_appendf(q, "(%s), (%s), ", t->cond_when ? t->cond_when : "0",
                        t->row_filter ? t->row_filter : "1");
    if (t->owner_col)
        sqlite3_str_appendf(q, "(SELECT code FROM site WHERE id = \"%w\")",
                            t->owner_col);
    else
        sqlite3_str_appendall(q, "NULL");
    sqlite3_str_appendf(q, " FROM \"%w\" ORDER BY ", t->name);
    for (i = 0; i < t->n_pk; i++)
        sqlite3_str_appendf(q, "%s\"%w\"", i ? ", " : "", t->pk[i]);
    sql = sqlite3_str_finish(q);
    if (sql == NULL)
        return -KZ_ENOMEM;
    rc = sqlite3_prepare_v2(r->db, sql, -1, &st, NULL);
    sqlite3_free(sql);
    if (rc != SQLITE_OK)
        return replica__dberr(r, rc, "digest");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int base = (int)t->n_pk;
        int cond = sqlite3_column_int(st, base + (int)t->n_cols);
        int filter_ok = sqlite3_column_int(st, base + (int)t->n_cols + 1);
        const char *owner =
            (const char *)sqlite3_column_text(st, base + (int)t->n_cols + 2);
        uint64_t pub = replica__public_mask(t, 1, cond, filter_ok), want;

        if (site && (owner == NULL || strcmp(owner, site) != 0))
            continue;
        switch (part) {
        case PART_PUBLIC: want = pub; break;
        case PART_PRIVATE:
            want = ((UINT64_C(1) << (t->n_cols + 1)) - 1) & ~pub;
            if (filter_ok)
                want &= ~UINT64_C(1); /* the row itself is public */
            break;
        default: want = (UINT64_C(1) << (t->n_cols + 1)) - 1; break;
        }
        if (want == 0)
            continue;
        if (!hashed_name) {
            h_bytes(h, "T", 1);
            h_str(h, t->name);
            hashed_name = 1;
        }
        h_bytes(h, "R", 1);
        for (i = 0; i < t->n_pk; i++)
            h_value(h, sqlite3_column_value(st, (int)i));
        if (want & 1)
            h_bytes(h, "X", 1);
        for (k = 1; k <= t->n_cols; k++) {
            if (!(want & (UINT64_C(1) << k)))
                continue;
            h_bytes(h, "C", 1);
            h_str(h, t->cols[k - 1]);
            h_value(h, sqlite3_column_value(st, base + (int)k - 1));
        }
        h_bytes(h, "E", 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : replica__dberr(r, rc, "digest");
}

int
replica_digest(struct replica *r, const char *scope, uint8_t out[32])
{
    struct hasher h = {.err = 0};
    uint32_t i;
    int err = 0;

    if (scope && strcmp(scope, "network") != 0 &&
        strncmp(scope, "site:", 5) != 0 && strncmp(scope, "private:", 8) != 0) {
        snprintf(r->errmsg, sizeof(r->errmsg),
                 "unknown scope %s (network, site:NAME or private:NAME)",
                 scope);
        return -KZ_EINVAL;
    }
    if (crypto_generichash_init(&h.st, NULL, 0, 32) != 0)
        return -KZ_ECRYPTO;
    /* Read in one transaction, so that the digest is of one state. */
    if ((err = replica__exec(r, "BEGIN")))
        return err;
    for (i = 0; i < r->n_tables && err == 0; i++)
        err = digest_table(r, &r->tables[i], scope, &h);
    (void)replica__exec(r, "COMMIT");
    if (err == 0)
        err = h.err;
    if (err == 0 && crypto_generichash_final(&h.st, out, 32) != 0)
        err = -KZ_ECRYPTO;
    sodium_memzero(&h, sizeof(h));
    return err;
}
