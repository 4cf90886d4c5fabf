/*
 * store_job.h: the store's jobs, its loop ↔ store-thread queue, and the
 * interface a storage backend implements (internal to server/store*).
 *
 * store_job.c is backend-neutral.  It implements the public store_* calls
 * of store.h: each validates its arguments on the loop thread, fills a
 * struct store_job and queues it.  One store thread per store waits for
 * jobs, takes every queued job up to max_batch, and hands the batch to the
 * backend's run_batch; then it moves the batch to the done list and wakes
 * the loop with uv_async_send, whose callback runs the user callbacks and
 * frees the jobs.
 *
 *     loop thread                      store thread
 *     store_append ─► queue ─(cond)──► take ≤ max_batch
 *                                      ops->run_batch (BEGIN … COMMIT)
 *     async cb ◄──(uv_async)── done ◄─ post the batch
 *     user callbacks, free
 *
 * Only the mutex-protected fields cross threads; everything else is owned
 * by one side (see struct store in store_job.c).
 */
#ifndef KZ_SERVER_STORE_JOB_H
#define KZ_SERVER_STORE_JOB_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "kz.h"
#include "store.h"

/* Writes first: store__job_is_write relies on the order. */
enum store_job_kind {
    STORE_JOB_APPEND,     /* write: one changeset */
    STORE_JOB_ROSTER_PUT, /* write: replace the roster */
    STORE_JOB_KEYS_PUT,   /* write: append key envelopes */
    STORE_JOB_PULL,       /* read: changesets of a scope */
    STORE_JOB_ROSTER_GET, /* read: the roster */
    STORE_JOB_KEYS_GET    /* read: key envelopes */
};

/* Defaults of struct store_opts. */
#define STORE_DEFAULT_MAX_BATCH 256u
#define STORE_DEFAULT_MAX_QUEUE 16384u
#define STORE_DEFAULT_BUSY_MS 5000u

#define store__job_is_write(j) ((j)->kind <= STORE_JOB_KEYS_PUT)

/*
 * One queued request.  Inputs are set on the loop thread before queueing;
 * the backend sets status and the outputs on the store thread; the loop
 * thread reads them in the callback.  The queue hand-offs (under the
 * store's mutex) order these accesses.  Every pointer here is owned by the
 * job and freed by store_job.c after the callback.
 */
struct store_job {
    struct store_job *next;   /* queue link */
    enum store_job_kind kind; /* which member of u is in use */
    int status;               /* result: 0 or -KZ_E…; set by the backend */
    void *data;               /* the caller's cookie for the callback */
    union {
        struct {
            struct store_cs cs;          /* input; owns hdr and body */
            struct store_append_res res; /* output */
            store_append_cb cb;          /* callback */
        } append;
        struct {
            char scope[KZ_LIM_NAME_MAX + 1]; /* input */
            uint64_t after_seq;              /* input */
            size_t max_bytes;                /* input */
            uint32_t max_items;              /* input */
            struct store_pull_res res;       /* output; owns items */
            store_pull_cb cb;                /* callback */
        } pull;
        struct {
            uint64_t version;       /* input */
            uint8_t *bytes;         /* input; owned */
            size_t len;             /* bytes at bytes */
            uint64_t stored;        /* output: version stored after the job */
            store_roster_put_cb cb; /* callback */
        } roster_put;
        struct {
            uint64_t version;       /* output; 0 if none */
            uint8_t *bytes;         /* output; owned */
            size_t len;             /* bytes at bytes */
            store_roster_get_cb cb; /* callback */
        } roster_get;
        struct {
            struct store_key *keys; /* input: n envelopes; owned, each too */
            uint32_t n;             /* envelopes */
            uint64_t last_id;       /* output */
            store_keys_put_cb cb;   /* callback */
        } keys_put;
        struct {
            uint8_t recipient[KZ_KEY_LEN]; /* input, if any_recipient = 0 */
            int any_recipient;             /* input: 1 = no filter */
            uint64_t after_id;             /* input */
            uint32_t max_items;            /* input */
            struct store_keys_res res;     /* output; owns keys */
            store_keys_get_cb cb;          /* callback */
        } keys_get;
    } u;
};

/*
 * A storage backend.  Both functions run on the store thread only, which
 * owns the backend state ${be} (a database connection) from store__new on.
 *
 * run_batch(be, jobs): runs the list ${jobs} (linked by next, in submission
 * order, at least one) and sets every job's status and outputs.  It must
 * meet the contract in store.h: run the writes in one transaction, each
 * isolated (a savepoint) so that a failed job leaves no trace and does not
 * fail the others; commit durably; if the commit (or the transaction) fails,
 * set every write's status to the error; run the reads only after the
 * commit, so they never see uncommitted data.  Appends that depend on each
 * other in one batch (author_seq n and n + 1) must both succeed.  Returns
 * 1 if a transaction was committed, 0 if the batch had no write to commit,
 * or a negative code if the transaction failed.
 *
 * close(be): closes the connection and frees ${be}; called once, after the
 * last batch.
 */
struct store_ops {
    const char *name;                                   /* "sqlite", … */
    int (*run_batch)(void *be, struct store_job *jobs); /* see above */
    void (*close)(void *be);                            /* see above */
};

/**
 * store__new(out, loop, opts, ops, be): the backend-neutral part of every
 * store_*_open.  Initialises the queue and the uv_async_t on ${loop} and
 * starts the store thread, which takes ${be} (closing it with ops->close
 * when the store closes).  ${ops} is borrowed (static); ${opts} may be NULL.
 * Returns 0, or -KZ_ENOMEM or a negative errno; on error ${be} is still the
 * caller's, and the partly built store is freed when the loop next runs its
 * close callbacks.
 */
KZ_MUST_CHECK int store__new(struct store **out, uv_loop_t *loop,
                             const struct store_opts *opts,
                             const struct store_ops *ops, void *be);

#endif /* KZ_SERVER_STORE_JOB_H */
