/*
 * replica.h: the client's replica engine (DESIGN.md §3, §7).
 *
 * A replica is DIR/replica.db: the user's tables (the shipped schema), plus
 * the engine's own tables, all named kz_*.  Every write to a tracked table —
 * from this engine, a program linking it, or the plain `sqlite3` shell — is
 * captured by SQL triggers into kz_log.  replica_build() folds that log into
 * per-cell versions and packs the changes not yet pushed into changesets in
 * kz_outbox; replica_apply() merges a received changeset cell by cell.
 *
 * Not thread-safe: one struct replica per thread.  Other processes may use
 * replica.db at the same time (WAL); every engine step is one transaction.
 */
#ifndef KZ_REPLICA_H
#define KZ_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "changeset.h"
#include "env.h"
#include "kz.h"

struct replica;

/* What a device may do (DESIGN.md §4). */
enum replica_role {
    REPLICA_ROLE_SITE = 0,  /* reads network, reads/writes its site */
    REPLICA_ROLE_ADMIN = 1, /* the state office: writes network */
    REPLICA_ROLE_OBSERVER =
        2 /* reads network and every site:*, writes nothing */
};

struct replica_opts {
    const char *site;          /* site code: "HAN", "LAND", … */
    const char *device;        /* device name, for people */
    enum replica_role role;    /* see above */
    const uint8_t *device_key; /* 32-byte Ed25519 public key: the author id */
    const struct kz_env *env;  /* clock and randomness; NULL = system */
    int no_schema;             /* 1: engine tables only (tests) */
};

/**
 * replica_create(out, dir, opts): creates ${dir} (mode 0700) if needed and a
 * new ${dir}/replica.db with the engine tables, the shipped schema and its
 * migrations, and tracking for every declared table.  Fails with -EEXIST
 * if replica.db exists.  Caller frees with replica_free.
 */
KZ_MUST_CHECK int replica_create(struct replica **out, const char *dir,
                                 const struct replica_opts *opts);

/**
 * replica_open(out, dir, env): opens an existing replica and applies pending
 * migrations.  ${env} NULL = system.  Errors: -ENOENT (no replica.db),
 * -KZ_EDB, -KZ_ENOMEM.  Caller frees with replica_free.
 */
KZ_MUST_CHECK int replica_open(struct replica **out, const char *dir,
                               const struct kz_env *env);

/** replica_free(r): closes; NULL is a no-op. */
void replica_free(struct replica *r);

/** replica_db(r): the connection (borrowed), for reads and local writes. */
sqlite3 *replica_db(struct replica *r);

/**
 * replica_errmsg(r): the last error's detail (owned by r), or "".  With r =
 * NULL: why this thread's last replica_create/replica_open failed.
 */
const char *replica_errmsg(const struct replica *r);

/*
 * Meta values kept for the sync session (server address, keys, roster).
 * Text: replica_meta_get copies into ${out}; -KZ_ENOENT if absent.
 * Blob: *${out} is allocated (caller frees with kz_free).
 */
KZ_MUST_CHECK int replica_meta_get(struct replica *r, const char *key,
                                   char *out, size_t len);
KZ_MUST_CHECK int replica_meta_set(struct replica *r, const char *key,
                                   const char *value);
KZ_MUST_CHECK int replica_meta_get_blob(struct replica *r, const char *key,
                                        uint8_t **out, size_t *len);
KZ_MUST_CHECK int replica_meta_set_blob(struct replica *r, const char *key,
                                        const uint8_t *p, size_t len);

/**
 * replica_set_role(r, role): the device's role changed (the roster says
 * so): the write-rule triggers of every table are made anew.  One
 * transaction.
 */
KZ_MUST_CHECK int replica_set_role(struct replica *r, enum replica_role role);
enum replica_role replica_role(const struct replica *r);

/**
 * replica_set_clock_offset(r, offset_ms): corrects the wall clock by
 * ${offset_ms} from now on (the server's clock differs by more than the
 * skew limit, DESIGN.md §3); persisted.
 */
KZ_MUST_CHECK int replica_set_clock_offset(struct replica *r,
                                           int64_t offset_ms);

/**
 * replica_cursor_get(r, scope, seq) / replica_cursor_set: how far ${scope}
 * was pulled (server_seq; 0 = nothing).  replica_apply_at sets it in the
 * apply's own transaction; set never moves a cursor back.
 */
KZ_MUST_CHECK int replica_cursor_get(struct replica *r, const char *scope,
                                     uint64_t *seq);
KZ_MUST_CHECK int replica_cursor_set(struct replica *r, const char *scope,
                                     uint64_t seq);

/**
 * replica_cursor_follow(r, scope, server_seq): the server stored this
 * device's own changeset at ${server_seq} of ${scope}.  If that is the
 * next one after the cursor, the cursor moves onto it (1): the replica
 * holds those changes already, and no PULL need bring them back.
 * Otherwise the cursor stays (0): someone else's changesets lie between.
 */
KZ_MUST_CHECK int replica_cursor_follow(struct replica *r, const char *scope,
                                        uint64_t server_seq);

/**
 * replica_own_check(r, scope, author_seq): whether this device's own
 * changeset ${author_seq} of ${scope}, served back by the server, is one
 * this replica made (0) — or one it never made or no longer has (-KZ_ESEQ,
 * with replica_errmsg): the folder was restored from an older backup or
 * copied, and the server holds changes of this device that it lacks.
 */
KZ_MUST_CHECK int replica_own_check(struct replica *r, const char *scope,
                                    uint64_t author_seq);

/** replica_site(r) / replica_device_key(r): identity (borrowed). */
const char *replica_site(const struct replica *r);
const uint8_t *replica_device_key(const struct replica *r);

/*
 * Tracking (track.c).  A declaration says where a table's cells travel:
 *   "network"  one scope "network", written by the admin only;
 *   "site"     scope "site:NAME" (NAME = site code of the row's owner), with
 *              private_cols, cond_private_cols (private while
 *              cond_private_when holds) and rows failing row_filter kept in
 *              "private:NAME";
 *   "private"  the whole table in "private:NAME".
 */
struct track_decl {
    const char *scope_kind;        /* "network", "site" or "private" */
    const char *owner_col;         /* site tables: column naming site(id) */
    const char *private_cols;      /* comma-separated, or NULL */
    const char *cond_private_cols; /* comma-separated, or NULL */
    const char *cond_private_when; /* SQL predicate over the row, or NULL */
    const char *row_filter;        /* SQL predicate over the row, or NULL */
};

/**
 * replica_track(r, table, decl): starts (or refreshes) tracking of ${table}:
 * records the declaration and (re)creates its capture triggers.  Fails with
 * -KZ_ESCHEMA and a message naming the reason (see replica_errmsg) when the
 * table does not exist, has no primary key, has an INTEGER PRIMARY KEY
 * (rowid alias: ids from two sites collide), is WITHOUT ROWID with
 * a BLOB key, has more than 62 other columns, or the declaration names a
 * column it does not have.
 */
KZ_MUST_CHECK int replica_track(struct replica *r, const char *table,
                                const struct track_decl *decl);

/*
 * Capture (capture.c).
 */

/**
 * replica_build(r, max_cells): folds the capture log into cell versions and
 * packs every change not yet packed into changesets of at most ${max_cells}
 * cells (0 = default), one scope each, into kz_outbox with contiguous
 * author_seq per scope.  One transaction.  Returns the number of changesets
 * made (≥ 0) or an error.
 */
KZ_MUST_CHECK int replica_build(struct replica *r, uint32_t max_cells);

/**
 * replica_build_step(r, max_cells, max_rows, more): replica_build over at
 * most ${max_rows} log rows (≥ 1, ending between two keys), in their own
 * transaction, so that a sync can push the first changesets while it
 * packs the next; keys still come in order across the steps of a round
 * (up to 131,072 log rows).  The rows a step folds leave the log with it.
 * A key written again after its round began is packed by the next round,
 * with that write's version.  Sets *${more} to 1 when log rows of the
 * build may remain (call again), 0 when it is complete: rows logged after
 * its last round began wait for the next build.  Returns the number of
 * changesets made or an error.
 */
KZ_MUST_CHECK int replica_build_step(struct replica *r, uint32_t max_cells,
                                     uint32_t max_rows, int *more);

/* An outgoing changeset, as stored in kz_outbox. */
struct replica_cs {
    struct kz_cs_header hdr; /* decoded header */
    uint8_t *hdr_bytes;      /* encoded header; owned */
    size_t hdr_len;
    uint8_t *body; /* encoded body; owned */
    size_t body_len;
};

/**
 * replica_outbox_get(r, scope, after_seq, cs): the outbox changeset of
 * ${scope} with the lowest author_seq > ${after_seq}.  Returns 1 with *${cs}
 * filled (free with replica_cs_clear), 0 if none, or an error.
 */
KZ_MUST_CHECK int replica_outbox_get(struct replica *r, const char *scope,
                                     uint64_t after_seq, struct replica_cs *cs);

/** replica_outbox_scopes(r, cb, data): calls ${cb} once per scope with pending
 * changesets. */
KZ_MUST_CHECK int
replica_outbox_scopes(struct replica *r,
                      void (*cb)(void *data, const char *scope, uint64_t n),
                      void *data);

/** replica_outbox_ack(r, scope, upto_seq): drops changesets ≤ ${upto_seq}. */
KZ_MUST_CHECK int replica_outbox_ack(struct replica *r, const char *scope,
                                     uint64_t upto_seq);

void replica_cs_clear(struct replica_cs *cs);

/*
 * Apply (apply.c).
 */
struct apply_stats {
    uint32_t rows;        /* rows touched */
    uint32_t cells_won;   /* incoming cells that became the local value */
    uint32_t cells_lost;  /* incoming cells older than the local ones */
    uint32_t conflicts;   /* concurrent overwrites recorded */
    uint32_t quarantined; /* cells kept in kz_quarantine */
    uint32_t waiting;     /* cells of deleted rows kept for a re-insert */
    int duplicate;        /* 1: this changeset was applied before */
};

/**
 * replica_apply(r, hdr, body, body_len, st): merges one changeset in one
 * transaction: cell-level last-writer-wins by (hlc, author), conflicts
 * recorded, refused cells quarantined.  Our own changesets and ones applied
 * before are skipped (st->duplicate = 1).  A gap in the author's sequence for
 * the scope gives -KZ_ESEQ and changes nothing.  A malformed body gives
 * -KZ_EMALFORMED (or the decoder's code) and changes nothing.  ${st} may be
 * NULL.
 */
KZ_MUST_CHECK int replica_apply(struct replica *r,
                                const struct kz_cs_header *hdr,
                                const uint8_t *body, size_t body_len,
                                struct apply_stats *st);

/**
 * replica_apply_at(r, hdr, body, body_len, server_seq, st): replica_apply
 * that also moves the cursor of hdr->scope to ${server_seq} in the same
 * transaction (also for our own and duplicate changesets), so that a crash
 * never loses or repeats a pulled changeset.
 */
KZ_MUST_CHECK int replica_apply_at(struct replica *r,
                                   const struct kz_cs_header *hdr,
                                   const uint8_t *body, size_t body_len,
                                   uint64_t server_seq, struct apply_stats *st);

/** One changeset for replica_apply_many. */
struct replica_in {
    const struct kz_cs_header *hdr; /* borrowed */
    const uint8_t *body;            /* plain body; borrowed */
    size_t body_len;
    uint64_t server_seq; /* the cursor moves here; 0: no cursor */
};

/**
 * replica_apply_many(r, in, n, st, n_done): replica_apply_at for ${n}
 * changesets in one transaction (one fold, one commit: a pulled BATCH).  If
 * changeset k fails, k and those after it change nothing, those before it
 * are kept, *${n_done} is k and k's error is returned (r's errmsg says
 * why).  ${st}: NULL, or ${n} stats, one per changeset.  Returns 0 with
 * *${n_done} = ${n}, or an error.
 */
KZ_MUST_CHECK int replica_apply_many(struct replica *r,
                                     const struct replica_in *in, uint32_t n,
                                     struct apply_stats *st, uint32_t *n_done);

/**
 * replica_retry_quarantine(r, st): tries every quarantined cell again (after
 * a migration, a clock correction or new rows).  One transaction.
 */
KZ_MUST_CHECK int replica_retry_quarantine(struct replica *r,
                                           struct apply_stats *st);

/*
 * Digest (digest.c).
 */

/**
 * replica_digest(r, scope, out): BLAKE2b-256 over the tracked content of
 * ${scope} (NULL = every scope this replica holds): every live row's primary
 * key and the values of its columns that belong to the scope, in a canonical
 * order.  Equal on converged replicas whatever order changes arrived in.
 */
KZ_MUST_CHECK int replica_digest(struct replica *r, const char *scope,
                                 uint8_t out[32]);

#endif /* KZ_REPLICA_H */
