/*
 * store_job.c: the backend-neutral half of the store: argument checks, the
 * job queue between the loop thread and the store thread, group commit,
 * completions through one uv_async_t, counters, and close.
 *
 * Life of a store:
 *
 *     store__new ─► RUNNING ──store_close──► DRAINING ──► (thread exits)
 *                                                              │
 *     freed ◄── close cb ◄── uv_close(async) ◄── join ◄────────┘
 *
 * In DRAINING, submissions fail with -KZ_ECLOSED while the thread finishes
 * every queued job; when the queue is empty it closes the backend, sets
 * thread_done and wakes the loop one last time.  The async callback runs
 * the last completions, joins the thread (it is exiting, so the join does
 * not wait), and closes the handle; the close callback calls the user's
 * callback and frees the store.
 */
#include <string.h>

#include "alloc.h"
#include "err.h"
#include "log.h"

#include "store_job.h"

#define STORE_MAGIC 0x6b7a7374u /* "kzst" */

struct store {
    uint32_t magic;              /* STORE_MAGIC while alive (STYLE.md 16) */
    const struct store_ops *ops; /* backend functions; static */
    void *be;                    /* backend state; store thread only */
    struct store_opts opts;      /* copied, defaults filled in */
    uv_loop_t *loop;             /* borrowed */
    uv_async_t async;            /* wakes the loop for completions */
    uv_thread_t thread;          /* the store thread */

    /* Loop thread only. */
    int closing;             /* store_close was called */
    int async_closing;       /* uv_close(&async) was called */
    store_close_cb close_cb; /* user's close callback, may be NULL */
    void *close_data;        /* its cookie */

    /* Shared: only under mu. */
    uv_mutex_t mu;            /* guards the fields below */
    uv_cond_t cv;             /* signals the thread: job or stop */
    struct store_job *q_head; /* queued jobs, oldest first */
    struct store_job *q_tail; /* last queued job */
    size_t q_len;             /* jobs in the queue */
    struct store_job *d_head; /* finished jobs for the loop */
    struct store_job *d_tail; /* last finished job */
    int stop;                 /* the thread exits when the queue drains */
    int thread_done;          /* the thread has closed the backend */
    struct store_stats stats; /* counters (queued is computed) */
};

static void store_thread(void *arg);
static void on_async(uv_async_t *h);
static void on_async_closed(uv_handle_t *h);

/* ---- jobs ------------------------------------------------------------- */

/* job_free(j): frees ${j} and every buffer it still owns. */
static void
job_free(struct store_job *j)
{
    uint32_t i;

    switch (j->kind) {
    case STORE_JOB_APPEND:
        kz_free(j->u.append.cs.hdr);
        kz_free(j->u.append.cs.body);
        break;
    case STORE_JOB_PULL:
        for (i = 0; i < j->u.pull.res.n; i++) {
            kz_free(j->u.pull.res.items[i].hdr);
            kz_free(j->u.pull.res.items[i].body);
        }
        kz_free(j->u.pull.res.items);
        break;
    case STORE_JOB_ROSTER_PUT: kz_free(j->u.roster_put.bytes); break;
    case STORE_JOB_ROSTER_GET: kz_free(j->u.roster_get.bytes); break;
    case STORE_JOB_KEYS_PUT:
        for (i = 0; i < j->u.keys_put.n; i++)
            kz_free(j->u.keys_put.keys[i].bytes);
        kz_free(j->u.keys_put.keys);
        break;
    case STORE_JOB_KEYS_GET:
        for (i = 0; i < j->u.keys_get.res.n; i++)
            kz_free(j->u.keys_get.res.keys[i].bytes);
        kz_free(j->u.keys_get.res.keys);
        break;
    }
    kz_free(j);
}

/* job_complete(j): runs the callback of ${j} on the loop thread. */
static void
job_complete(struct store_job *j)
{
    int st = j->status;

    switch (j->kind) {
    case STORE_JOB_APPEND: j->u.append.cb(j->data, st, &j->u.append.res); break;
    case STORE_JOB_PULL:
        j->u.pull.cb(j->data, st, st == 0 ? &j->u.pull.res : NULL);
        break;
    case STORE_JOB_ROSTER_PUT:
        j->u.roster_put.cb(j->data, st, j->u.roster_put.stored);
        break;
    case STORE_JOB_ROSTER_GET:
        j->u.roster_get.cb(j->data, st, j->u.roster_get.version,
                           j->u.roster_get.bytes, j->u.roster_get.len);
        break;
    case STORE_JOB_KEYS_PUT:
        j->u.keys_put.cb(j->data, st, j->u.keys_put.last_id);
        break;
    case STORE_JOB_KEYS_GET:
        j->u.keys_get.cb(j->data, st, st == 0 ? &j->u.keys_get.res : NULL);
        break;
    }
}

/*
 * submit(s, j): queues ${j}, which on success belongs to the store.
 * Returns 0, -KZ_ECLOSED or -KZ_EAGAIN (then ${j} is still the caller's).
 */
static int
submit(struct store *s, struct store_job *j)
{
    int rc = 0;

    if (s->closing)
        return -KZ_ECLOSED;
    j->next = NULL;
    uv_mutex_lock(&s->mu);
    if (s->q_len >= s->opts.max_queue) {
        rc = -KZ_EAGAIN;
    } else {
        if (s->q_tail != NULL)
            s->q_tail->next = j;
        else
            s->q_head = j;
        s->q_tail = j;
        s->q_len++;
        uv_cond_signal(&s->cv);
    }
    uv_mutex_unlock(&s->mu);
    return rc;
}

/* job_new(s, kind, data, out): a zeroed job; checks the store first. */
static int
job_new(struct store *s, enum store_job_kind kind, void *data,
        struct store_job **out)
{
    struct store_job *j;

    if (s == NULL || KZ_NEVER(s->magic != STORE_MAGIC))
        return -KZ_EINVAL;
    if (s->closing)
        return -KZ_ECLOSED;
    j = kz_calloc(1, sizeof(*j));
    if (j == NULL)
        return -KZ_ENOMEM;
    j->kind = kind;
    j->data = data;
    *out = j;
    return 0;
}

/* scope_ok(scope): 1 if ${scope} is a NUL-terminated 1..128-byte name. */
static int
scope_ok(const char *scope)
{
    size_t len;

    if (scope == NULL)
        return 0;
    len = strnlen(scope, KZ_LIM_NAME_MAX + 1);
    return len >= 1 && len <= KZ_LIM_NAME_MAX;
}

/* ---- public calls (loop thread) ---------------------------------------- */

/**
 * store_append(s, cs, cb, data): see store.h.
 */
int
store_append(struct store *s, struct store_cs *cs, store_append_cb cb,
             void *data)
{
    struct store_job *j = NULL;
    int rc;

    if (cs == NULL || cb == NULL || !scope_ok(cs->scope) ||
        cs->author_seq == 0 || cs->author_seq > INT64_MAX || cs->hdr == NULL ||
        cs->hdr_len == 0 || cs->hdr_len > KZ_LIM_CS_HEADER_MAX ||
        cs->body == NULL || cs->body_len == 0 ||
        cs->body_len > KZ_LIM_FRAME_MAX) {
        rc = -KZ_EINVAL;
        goto err0;
    }
    rc = job_new(s, STORE_JOB_APPEND, data, &j);
    if (rc != 0)
        goto err0;
    j->u.append.cs = *cs;
    j->u.append.cb = cb;
    rc = submit(s, j);
    if (rc != 0)
        goto err1;
    cs->hdr = NULL;
    cs->body = NULL;
    return 0;

err1:
    /* The buffers are still the caller's: do not let job_free take them. */
    j->u.append.cs.hdr = NULL;
    j->u.append.cs.body = NULL;
    job_free(j);
err0:
    return rc;
}

/**
 * store_pull(s, scope, after_seq, max_bytes, max_items, cb, data): see
 * store.h.
 */
int
store_pull(struct store *s, const char *scope, uint64_t after_seq,
           size_t max_bytes, uint32_t max_items, store_pull_cb cb, void *data)
{
    struct store_job *j = NULL;
    int rc;

    if (cb == NULL || !scope_ok(scope)) {
        rc = -KZ_EINVAL;
        goto err0;
    }
    rc = job_new(s, STORE_JOB_PULL, data, &j);
    if (rc != 0)
        goto err0;
    memcpy(j->u.pull.scope, scope, strlen(scope) + 1);
    j->u.pull.after_seq = after_seq;
    j->u.pull.max_bytes = max_bytes;
    j->u.pull.max_items = KZ_MIN(max_items, STORE_PULL_ITEMS_MAX);
    j->u.pull.cb = cb;
    rc = submit(s, j);
    if (rc != 0)
        goto err1;
    return 0;

err1:
    job_free(j);
err0:
    return rc;
}

/**
 * store_roster_put(s, version, bytes, len, cb, data): see store.h.
 */
int
store_roster_put(struct store *s, uint64_t version, uint8_t **bytes, size_t len,
                 store_roster_put_cb cb, void *data)
{
    struct store_job *j = NULL;
    int rc;

    if (cb == NULL || version == 0 || bytes == NULL || *bytes == NULL ||
        len == 0 || len > KZ_LIM_FRAME_MAX || version > INT64_MAX) {
        rc = -KZ_EINVAL;
        goto err0;
    }
    rc = job_new(s, STORE_JOB_ROSTER_PUT, data, &j);
    if (rc != 0)
        goto err0;
    j->u.roster_put.version = version;
    j->u.roster_put.bytes = *bytes;
    j->u.roster_put.len = len;
    j->u.roster_put.cb = cb;
    rc = submit(s, j);
    if (rc != 0)
        goto err1;
    *bytes = NULL;
    return 0;

err1:
    j->u.roster_put.bytes = NULL; /* still the caller's */
    job_free(j);
err0:
    return rc;
}

/**
 * store_roster_get(s, cb, data): see store.h.
 */
int
store_roster_get(struct store *s, store_roster_get_cb cb, void *data)
{
    struct store_job *j = NULL;
    int rc;

    if (cb == NULL) {
        rc = -KZ_EINVAL;
        goto err0;
    }
    rc = job_new(s, STORE_JOB_ROSTER_GET, data, &j);
    if (rc != 0)
        goto err0;
    j->u.roster_get.cb = cb;
    rc = submit(s, j);
    if (rc != 0)
        goto err1;
    return 0;

err1:
    job_free(j);
err0:
    return rc;
}

/**
 * store_keys_put(s, keys, n, cb, data): see store.h.
 */
int
store_keys_put(struct store *s, struct store_key *keys, uint32_t n,
               store_keys_put_cb cb, void *data)
{
    struct store_job *j = NULL;
    struct store_key *copy = NULL;
    uint32_t i;
    int rc;

    if (cb == NULL || keys == NULL || n == 0 || n > STORE_KEYS_PUT_MAX) {
        rc = -KZ_EINVAL;
        goto err0;
    }
    for (i = 0; i < n; i++) {
        if (keys[i].bytes == NULL || keys[i].len == 0 ||
            keys[i].len > KZ_LIM_FRAME_MAX) {
            rc = -KZ_EINVAL;
            goto err0;
        }
    }
    rc = job_new(s, STORE_JOB_KEYS_PUT, data, &j);
    if (rc != 0)
        goto err0;
    copy = kz_mallocarray(n, sizeof(*copy));
    if (copy == NULL) {
        rc = -KZ_ENOMEM;
        goto err1;
    }
    memcpy(copy, keys, n * sizeof(*copy));
    j->u.keys_put.keys = copy;
    j->u.keys_put.n = n;
    j->u.keys_put.cb = cb;
    rc = submit(s, j);
    if (rc != 0)
        goto err1;
    for (i = 0; i < n; i++)
        keys[i].bytes = NULL;
    return 0;

err1:
    /* The envelopes are still the caller's: free only the array. */
    j->u.keys_put.keys = NULL;
    j->u.keys_put.n = 0;
    kz_free(copy);
    job_free(j);
err0:
    return rc;
}

/**
 * store_keys_get(s, recipient, after_id, max_items, cb, data): see store.h.
 */
int
store_keys_get(struct store *s, const uint8_t *recipient, uint64_t after_id,
               uint32_t max_items, store_keys_get_cb cb, void *data)
{
    struct store_job *j = NULL;
    int rc;

    if (cb == NULL || max_items == 0 || max_items > STORE_PULL_ITEMS_MAX) {
        rc = -KZ_EINVAL;
        goto err0;
    }
    rc = job_new(s, STORE_JOB_KEYS_GET, data, &j);
    if (rc != 0)
        goto err0;
    if (recipient != NULL)
        memcpy(j->u.keys_get.recipient, recipient, KZ_KEY_LEN);
    j->u.keys_get.any_recipient = recipient == NULL;
    j->u.keys_get.after_id = after_id;
    j->u.keys_get.max_items = max_items;
    j->u.keys_get.cb = cb;
    rc = submit(s, j);
    if (rc != 0)
        goto err1;
    return 0;

err1:
    job_free(j);
err0:
    return rc;
}

/**
 * store_stats(s, out): see store.h.
 */
void
store_stats(struct store *s, struct store_stats *out)
{
    uv_mutex_lock(&s->mu);
    *out = s->stats;
    out->queued = s->q_len;
    uv_mutex_unlock(&s->mu);
}

/**
 * store_close(s, cb, data): see store.h.
 */
void
store_close(struct store *s, store_close_cb cb, void *data)
{
    if (s == NULL || KZ_NEVER(s->magic != STORE_MAGIC) || s->closing)
        return;
    s->closing = 1;
    s->close_cb = cb;
    s->close_data = data;
    uv_mutex_lock(&s->mu);
    s->stop = 1;
    uv_cond_signal(&s->cv);
    uv_mutex_unlock(&s->mu);
}

/* ---- the store thread -------------------------------------------------- */

/* count(st, batch, committed): adds the outcome of ${batch} to ${st}. */
static void
count(struct store_stats *st, struct store_job *batch, int committed)
{
    struct store_job *j;
    uint64_t writes = 0;

    for (j = batch; j != NULL; j = j->next) {
        if (store__job_is_write(j))
            writes++;
        else
            st->pulls++;
        if (j->status == -KZ_ESEQ || j->status == -KZ_EEXIST ||
            j->status == -KZ_EVERSION)
            st->refused++;
        else if (j->status != 0)
            st->failed++;
        else if (j->kind == STORE_JOB_APPEND && j->u.append.res.duplicate)
            st->duplicates++;
        else if (j->kind == STORE_JOB_APPEND)
            st->appends++;
    }
    if (committed > 0) {
        st->commits++;
        st->batch_jobs += writes;
        if (writes > st->max_batch)
            st->max_batch = writes;
    }
}

/*
 * store_thread(arg): takes up to max_batch queued jobs at a time, has the
 * backend run them, and posts them to the loop.  Exits once stop is set and
 * the queue is empty, after closing the backend.
 */
static void
store_thread(void *arg)
{
    struct store *s = arg;
    struct store_job *batch, *last;
    uint32_t n;
    int rc;

    uv_mutex_lock(&s->mu);
    for (;;) {
        while (s->q_head == NULL && !s->stop)
            uv_cond_wait(&s->cv, &s->mu);
        if (s->q_head == NULL)
            break; /* stop, and nothing left to do */
        batch = last = s->q_head;
        for (n = 1; n < s->opts.max_batch && last->next != NULL; n++)
            last = last->next;
        s->q_head = last->next;
        if (s->q_head == NULL)
            s->q_tail = NULL;
        s->q_len -= n;
        last->next = NULL;
        uv_mutex_unlock(&s->mu);

        rc = s->ops->run_batch(s->be, batch);

        uv_mutex_lock(&s->mu);
        count(&s->stats, batch, rc);
        if (s->d_tail != NULL)
            s->d_tail->next = batch;
        else
            s->d_head = batch;
        s->d_tail = last;
        uv_async_send(&s->async);
    }
    uv_mutex_unlock(&s->mu);

    s->ops->close(s->be);
    s->be = NULL;

    /*
     * Send while holding the lock: once the loop sees thread_done it may
     * free the store, so nothing here may touch ${s} after the unlock.
     */
    uv_mutex_lock(&s->mu);
    s->thread_done = 1;
    uv_async_send(&s->async);
    uv_mutex_unlock(&s->mu);
}

/* ---- completions (loop thread) ----------------------------------------- */

/* on_async(h): runs the callbacks of the finished jobs; finishes a close. */
static void
on_async(uv_async_t *h)
{
    struct store *s = kz_container_of(h, struct store, async);
    struct store_job *j, *next;
    int done;

    uv_mutex_lock(&s->mu);
    j = s->d_head;
    s->d_head = s->d_tail = NULL;
    done = s->thread_done;
    uv_mutex_unlock(&s->mu);

    for (; j != NULL; j = next) {
        next = j->next;
        job_complete(j);
        job_free(j);
    }
    if (done && !s->async_closing) {
        s->async_closing = 1;
        uv_thread_join(&s->thread);
        uv_close((uv_handle_t *)&s->async, on_async_closed);
    }
}

/* on_async_closed(h): the user's close callback, then the free. */
static void
on_async_closed(uv_handle_t *h)
{
    struct store *s = kz_container_of(h, struct store, async);

    if (s->close_cb != NULL)
        s->close_cb(s->close_data);
    uv_cond_destroy(&s->cv);
    uv_mutex_destroy(&s->mu);
    s->magic = 0;
    kz_free(s);
}

/* on_failed_open_closed(h): frees a store whose thread never started. */
static void
on_failed_open_closed(uv_handle_t *h)
{
    struct store *s = kz_container_of(h, struct store, async);

    uv_cond_destroy(&s->cv);
    uv_mutex_destroy(&s->mu);
    kz_free(s);
}

/**
 * store__new(out, loop, opts, ops, be): see store_job.h.
 */
int
store__new(struct store **out, uv_loop_t *loop, const struct store_opts *opts,
           const struct store_ops *ops, void *be)
{
    struct store *s;
    int rc;

    s = kz_calloc(1, sizeof(*s));
    if (s == NULL) {
        rc = -KZ_ENOMEM;
        goto err0;
    }
    s->magic = STORE_MAGIC;
    s->ops = ops;
    s->be = be;
    s->loop = loop;
    if (opts != NULL)
        s->opts = *opts;
    if (s->opts.max_batch == 0)
        s->opts.max_batch = STORE_DEFAULT_MAX_BATCH;
    if (s->opts.max_queue == 0)
        s->opts.max_queue = STORE_DEFAULT_MAX_QUEUE;
    if (s->opts.busy_timeout_ms == 0)
        s->opts.busy_timeout_ms = STORE_DEFAULT_BUSY_MS;
    rc = uv_mutex_init(&s->mu);
    if (rc != 0)
        goto err1;
    rc = uv_cond_init(&s->cv);
    if (rc != 0)
        goto err2;
    rc = uv_async_init(loop, &s->async, on_async);
    if (rc != 0)
        goto err3;
    rc = uv_thread_create(&s->thread, store_thread, s);
    if (rc != 0)
        goto err4;
    *out = s;
    return 0;

err4:
    /* The handle must be closed before the memory goes: freed later. */
    kz_log_error("store: cannot start the store thread: %s", uv_strerror(rc));
    uv_close((uv_handle_t *)&s->async, on_failed_open_closed);
    goto err0;
err3:
    uv_cond_destroy(&s->cv);
err2:
    uv_mutex_destroy(&s->mu);
err1:
    kz_free(s);
err0:
    return rc;
}
