/*
 * store.h: the server's changeset store (DESIGN.md §6).
 *
 * The store keeps, per scope, the sealed changesets that members pushed, in
 * the order the server accepted them, plus the admin's roster and the sealed
 * key envelopes.  It never looks inside any of them: headers, bodies,
 * signatures, rosters and envelopes are opaque bytes here.
 *
 * Threads.  Every function below is called on the loop thread, and every
 * callback runs on the loop thread (from a uv_async_t of the store), never
 * inside the call that submitted the job.  The disk work runs on one store
 * thread per store, which owns the database connection, so the loop never
 * waits for a commit or an fsync (STYLE.md 13).  Jobs run in submission
 * order.
 *
 * Group commit.  The store thread takes every queued job, up to
 * opts.max_batch, runs the writes among them in ONE transaction, commits
 * (synced to disk), then runs the reads, and posts all the completions back
 * through one uv_async_t.  A job that fails (a sequence gap, say) does not
 * fail the other jobs of its batch; a failed commit fails every write of the
 * batch.
 *
 * The contract every backend meets (store_sqlite.c now, a PostgreSQL
 * backend later; server/store_job.h has the backend interface):
 *
 *  1. Durability.  A write's callback reports status 0 only once the write
 *     is committed and synced (SQLite: WAL with synchronous=FULL; PostgreSQL:
 *     synchronous_commit=on).  A crash after the callback loses nothing.
 *  2. Idempotent appends.  A changeset is identified by (scope, author,
 *     author_seq).  Re-sending one that is stored, with the same bytes, is
 *     acknowledged again with the server_seq it already has (duplicate = 1)
 *     and stores nothing.  The same identity with different bytes is
 *     refused with -KZ_EEXIST.
 *  3. No gaps.  A new changeset is accepted only if its author_seq is the
 *     last stored author_seq of (scope, author) plus one (1 for the first);
 *     otherwise -KZ_ESEQ, with the expected value in the result.
 *  4. Dense order.  server_seq counts 1, 2, 3, … per scope with no holes,
 *     and pull returns changesets in that order.  A pull never returns a
 *     changeset that is not yet durable.
 *  5. Isolation of failures.  A failed job leaves no trace in the database
 *     and does not fail other jobs, except that a failed commit fails every
 *     write of its transaction.
 *  6. Close.  store_close finishes every accepted job (each gets its
 *     callback exactly once) before the close callback runs.
 */
#ifndef KZ_SERVER_STORE_H
#define KZ_SERVER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "changeset.h"
#include "kz.h"
#include "limits.h"

#define STORE_SIG_LEN 64            /* Ed25519 signature of a changeset */
#define STORE_PULL_ITEMS_MAX 65536u /* cap on max_items of one pull */
#define STORE_KEYS_PUT_MAX 4096u    /* envelopes in one store_keys_put */

struct store;

/* Options of a store; zero fields take the defaults shown. */
struct store_opts {
    uint32_t max_batch;       /* jobs per transaction; 0 = 256 */
    uint32_t max_queue;       /* jobs waiting; 0 = 16384; then -KZ_EAGAIN */
    uint32_t busy_timeout_ms; /* wait for a locked database; 0 = 5000 */
};

/* A changeset to append.  The store copies the struct itself. */
struct store_cs {
    char scope[KZ_LIM_NAME_MAX + 1]; /* NUL-terminated, 1..128 bytes */
    uint8_t author[KZ_KEY_LEN];      /* author's Ed25519 public key */
    uint64_t author_seq;             /* 1 .. INT64_MAX */
    uint8_t *hdr;                    /* encoded header; see store_append */
    size_t hdr_len;             /* bytes at hdr, ≤ KZ_LIM_CS_HEADER_MAX */
    uint8_t *body;              /* sealed body; see store_append */
    size_t body_len;            /* bytes at body, ≤ KZ_LIM_FRAME_MAX */
    uint8_t sig[STORE_SIG_LEN]; /* author's signature */
};

/* The outcome of an append, valid during the callback only. */
struct store_append_res {
    uint64_t server_seq;   /* status 0 or -KZ_EEXIST: the changeset's seq */
    uint64_t expected_seq; /* -KZ_ESEQ: the author_seq the store expects */
    int duplicate;         /* status 0: 1 if it was stored before */
};

/* A changeset returned by a pull. */
struct store_item {
    uint64_t server_seq;        /* position in the scope, 1, 2, … */
    uint8_t author[KZ_KEY_LEN]; /* author's public key */
    uint64_t author_seq;        /* author's sequence number */
    uint8_t *hdr;               /* header; owned by the store, see pull */
    size_t hdr_len;             /* bytes at hdr */
    uint8_t *body;              /* body; owned by the store, see pull */
    size_t body_len;            /* bytes at body */
    uint8_t sig[STORE_SIG_LEN]; /* author's signature */
};

/* The outcome of a pull; see store_pull for who owns what. */
struct store_pull_res {
    struct store_item *items; /* n items in server_seq order */
    uint32_t n;               /* items returned */
    int more;                 /* 1 if the scope has items after the last */
    uint64_t head_seq;        /* the scope's highest server_seq, 0 if empty */
};

/* A sealed key envelope, addressed to one member's X25519 key. */
struct store_key {
    uint64_t id;                   /* assigned by the store, increasing */
    uint8_t recipient[KZ_KEY_LEN]; /* recipient's X25519 public key */
    uint8_t *bytes;                /* the envelope; see keys_put/keys_get */
    size_t len;                    /* bytes at bytes */
};

/* The outcome of store_keys_get; see there for ownership. */
struct store_keys_res {
    struct store_key *keys; /* n envelopes in id order */
    uint32_t n;             /* envelopes returned */
    int more;               /* 1 if more envelopes match after the last */
};

/* Counters, for metrics.  Averages: batch_jobs / commits. */
struct store_stats {
    uint64_t appends;    /* changesets stored (not duplicates) */
    uint64_t duplicates; /* re-sent changesets acknowledged again */
    uint64_t refused;    /* appends refused: -KZ_ESEQ, -KZ_EEXIST */
    uint64_t failed;     /* jobs failed by storage errors */
    uint64_t pulls;      /* pulls and gets served */
    uint64_t commits;    /* transactions committed */
    uint64_t batch_jobs; /* write jobs in those transactions */
    uint64_t max_batch;  /* most write jobs seen in one transaction */
    uint64_t queued;     /* jobs waiting now */
};

/*
 * Callbacks; each runs on the loop thread with the caller's ${data} first.
 * ${status} is 0 or a negative -KZ_E… code.
 */
typedef void (*store_append_cb)(void *data, int status,
                                const struct store_append_res *res);
typedef void (*store_pull_cb)(void *data, int status,
                              struct store_pull_res *res);
typedef void (*store_roster_put_cb)(void *data, int status,
                                    uint64_t stored_version);
typedef void (*store_roster_get_cb)(void *data, int status, uint64_t version,
                                    const uint8_t *bytes, size_t len);
typedef void (*store_keys_put_cb)(void *data, int status, uint64_t last_id);
typedef void (*store_keys_get_cb)(void *data, int status,
                                  struct store_keys_res *res);
typedef void (*store_close_cb)(void *data);

/**
 * store_sqlite_open(out, loop, path, opts): opens or creates the SQLite
 * database at ${path} (WAL, synchronous=FULL, busy_timeout), creates the
 * tables, and starts the store thread, which owns the connection from then
 * on.  ${loop} is borrowed and must outlive the store; ${opts} may be NULL
 * for the defaults and is copied.  Opening does disk work on the calling
 * thread: call it at startup, before the loop serves clients.  No global
 * state: any number of stores may be open in one process.
 *
 * On success *${out} is the store; release it with store_close.  Returns 0,
 * -KZ_EINVAL (NULL argument), -KZ_EIO (the file cannot be opened or
 * created, e.g. its directory does not exist), -KZ_EDB (not a database, WAL
 * unavailable, schema from a newer version), -KZ_ENOMEM, or a negative errno
 * from starting the thread.  The reason is logged once.
 */
KZ_MUST_CHECK int store_sqlite_open(struct store **out, uv_loop_t *loop,
                                    const char *path,
                                    const struct store_opts *opts);

/**
 * store_append(s, cs, cb, data): queues the append of ${cs}.
 *
 * Ownership: on success (0) the store takes cs->hdr and cs->body (it frees
 * them with kz_free) and sets both pointers to NULL; on error they are
 * untouched and still the caller's.  ${cs} itself is borrowed for the call.
 *
 * ${cb} then runs exactly once with: 0 (durable; res->server_seq assigned,
 * res->duplicate = 1 if it was stored before), -KZ_EEXIST (the identity is
 * stored with other bytes; res->server_seq is the stored one), -KZ_ESEQ
 * (gap or reuse; res->expected_seq is the author_seq the store expects),
 * -KZ_EDB or -KZ_EIO (storage failure; nothing stored), -KZ_ENOMEM.
 *
 * Returns 0, -KZ_EINVAL (scope empty or too long, author_seq 0 or over
 * INT64_MAX, NULL, empty or
 * oversized hdr/body, NULL cb), -KZ_ECLOSED (store_close was called),
 * -KZ_EAGAIN (opts.max_queue jobs are waiting; retry after some
 * callbacks), -KZ_ENOMEM.  On error ${cb} is not called.
 */
KZ_MUST_CHECK int store_append(struct store *s, struct store_cs *cs,
                               store_append_cb cb, void *data);

/**
 * store_pull(s, scope, after_seq, max_bytes, max_items, cb, data): queues a
 * read of the changesets of ${scope} with server_seq > ${after_seq}, in
 * order: at most ${max_items} (capped at STORE_PULL_ITEMS_MAX), and
 * stopping before the total of hdr_len + body_len + STORE_SIG_LEN would
 * exceed ${max_bytes}, but always at least one if any exists and max_items
 * ≥ 1.  max_items = 0 reads only res->head_seq (and more), which is how
 * the server learns a scope's head for a notify.  ${scope} is copied.
 *
 * ${cb} runs once with 0 and ${res}, or -KZ_EDB / -KZ_EIO / -KZ_ENOMEM
 * and res = NULL.  res and its items are the store's and are freed when
 * the callback returns; the callback may keep an item's hdr or body by
 * taking the pointer and setting it to NULL (then it frees it with
 * kz_free).  An unknown scope is empty: n = 0, head_seq = 0.
 *
 * Returns 0, -KZ_EINVAL, -KZ_ECLOSED, -KZ_EAGAIN or -KZ_ENOMEM; on error
 * ${cb} is not called.
 */
KZ_MUST_CHECK int store_pull(struct store *s, const char *scope,
                             uint64_t after_seq, size_t max_bytes,
                             uint32_t max_items, store_pull_cb cb, void *data);

/**
 * store_roster_put(s, version, bytes, len, cb, data): queues replacing the
 * stored roster with ${bytes} (a signed roster, opaque here) at
 * ${version} ≥ 1.  On success (0) the store takes ${*bytes} and sets
 * *bytes = NULL; on error it stays the caller's.
 *
 * ${cb} runs once with 0 (durable) or -KZ_EVERSION (${version} is not
 * greater than the stored one, which is left as it is), -KZ_EDB, -KZ_EIO;
 * stored_version is the roster version stored after the job.
 *
 * Returns 0, -KZ_EINVAL (version 0, NULL or empty bytes, len over
 * KZ_LIM_FRAME_MAX), -KZ_ECLOSED, -KZ_EAGAIN, -KZ_ENOMEM.
 */
KZ_MUST_CHECK int store_roster_put(struct store *s, uint64_t version,
                                   uint8_t **bytes, size_t len,
                                   store_roster_put_cb cb, void *data);

/**
 * store_roster_get(s, cb, data): queues reading the stored roster.  ${cb}
 * runs with 0 and the version and bytes (the store's, valid during the
 * callback), -KZ_ENOENT (no roster yet; version 0, bytes NULL), -KZ_EDB,
 * -KZ_EIO or -KZ_ENOMEM.  Returns 0, -KZ_EINVAL, -KZ_ECLOSED, -KZ_EAGAIN,
 * -KZ_ENOMEM.
 */
KZ_MUST_CHECK int store_roster_get(struct store *s, store_roster_get_cb cb,
                                   void *data);

/**
 * store_keys_put(s, keys, n, cb, data): queues appending ${n} (1 ..
 * STORE_KEYS_PUT_MAX) envelopes, all or none, with increasing ids in array
 * order; keys[i].id is ignored.  On success (0) the store takes every
 * keys[i].bytes and sets it to NULL; on error they stay the caller's.
 * ${keys} itself is borrowed for the call.  ${cb} runs with 0 (durable;
 * last_id is the id of the last envelope, the first being last_id - n + 1),
 * -KZ_EDB, -KZ_EIO.  Returns 0, -KZ_EINVAL (n out of range, NULL or empty
 * bytes, len over KZ_LIM_FRAME_MAX), -KZ_ECLOSED, -KZ_EAGAIN, -KZ_ENOMEM.
 */
KZ_MUST_CHECK int store_keys_put(struct store *s, struct store_key *keys,
                                 uint32_t n, store_keys_put_cb cb, void *data);

/**
 * store_keys_get(s, recipient, after_id, max_items, cb, data): queues
 * reading the envelopes with id > ${after_id}, in id order, at most
 * ${max_items} (1 .. STORE_PULL_ITEMS_MAX), only those addressed to
 * ${recipient} (32 bytes, copied) or all if it is NULL.  ${cb} runs with 0
 * and ${res} (the store's, freed when the callback returns; it may take a
 * keys[i].bytes by setting it to NULL), or an error and res = NULL.
 * Returns 0, -KZ_EINVAL, -KZ_ECLOSED, -KZ_EAGAIN, -KZ_ENOMEM.
 */
KZ_MUST_CHECK int store_keys_get(struct store *s, const uint8_t *recipient,
                                 uint64_t after_id, uint32_t max_items,
                                 store_keys_get_cb cb, void *data);

/**
 * store_stats(s, out): copies the counters of ${s} into *${out}.
 */
void store_stats(struct store *s, struct store_stats *out);

/**
 * store_close(s, cb, data): stops accepting jobs (later submissions return
 * -KZ_ECLOSED), lets the store thread finish every queued job (each still
 * gets its callback), joins the thread, closes the database, then calls
 * ${cb} (may be NULL) on the loop thread and frees ${s}.  ${s} must not be
 * used after ${cb}.  Safe with jobs in flight and from inside a store
 * callback; a second call is ignored.  The loop must keep running until
 * ${cb} has been called.
 */
void store_close(struct store *s, store_close_cb cb, void *data);

#endif /* KZ_SERVER_STORE_H */
