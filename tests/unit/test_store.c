/*
 * test_store.c: the server store (server/store.h) with the SQLite backend.
 *
 * Every test runs its own uv_loop_t and a temporary directory it removes.
 * The store's async handle keeps a loop alive, so tests drive the loop with
 * RUN_UNTIL(cond), bounded by a deadline, and close the store at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>
#include <uv.h>

#include "alloc.h"
#include "err.h"
#include "store.h"

#include "t.h"
#include "loop_util.h"

#define DEADLINE_NS (60ull * 1000 * 1000 * 1000)
#define HDR_LEN 16u

/* ---- fixture ----------------------------------------------------------- */

struct fx {
    uv_loop_t loop;      /* the test's own loop */
    char dir[PATH_MAX];  /* temporary directory, removed at the end */
    char path[PATH_MAX]; /* dir/store.db */
    struct store *s;     /* the store under test, or NULL */
    int closed;          /* close callbacks seen */
};

/* join(out, len, dir, name): ${dir}/${name}, checked for truncation. */
static void
join(char *out, size_t len, const char *dir, const char *name)
{
    int n = snprintf(out, len, "%s/%s", dir, name);

    ASSERT(n > 0 && (size_t)n < len);
}

static void
tmpdir_make(char *dir, size_t len)
{
    const char *base = getenv("TMPDIR");

    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    ASSERT_LT(snprintf(dir, len, "%s/kzstore.XXXXXX", base), (int)len);
    ASSERT(mkdtemp(dir) != NULL);
}

/* tmpdir_remove(dir): removes the files of ${dir} (flat) and ${dir}. */
static void
tmpdir_remove(const char *dir)
{
    char p[PATH_MAX];
    struct dirent *e;
    DIR *d = opendir(dir);

    ASSERT(d != NULL);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        join(p, sizeof(p), dir, e->d_name);
        ASSERT_OK(unlink(p));
    }
    closedir(d);
    ASSERT_OK(rmdir(dir));
}

static void
on_closed(void *data)
{
    (*(int *)data)++;
}

static void
fx_open(struct fx *f, const struct store_opts *opts)
{
    ASSERT_OK(store_sqlite_open(&f->s, &f->loop, f->path, opts));
}

static void
fx_init(struct fx *f, const struct store_opts *opts)
{
    memset(f, 0, sizeof(*f));
    ASSERT_OK(uv_loop_init(&f->loop));
    tmpdir_make(f->dir, sizeof(f->dir));
    join(f->path, sizeof(f->path), f->dir, "store.db");
    fx_open(f, opts);
}

/* fx_close_store(f): closes the store and waits for its close callback. */
static void
fx_close_store(struct fx *f)
{
    int want = f->closed + 1;

    store_close(f->s, on_closed, &f->closed);
    RUN_UNTIL(&f->loop, f->closed == want);
    f->s = NULL;
}

static void
fx_fini(struct fx *f)
{
    if (f->s != NULL)
        fx_close_store(f);
    ASSERT_EQ(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    ASSERT_OK(uv_loop_close(&f->loop));
    tmpdir_remove(f->dir);
}

/* ---- changesets -------------------------------------------------------- */

static uint8_t
body_byte(uint8_t author, uint64_t seq, uint8_t salt, size_t i)
{
    return (uint8_t)(author * 31u + seq * 7u + salt * 13u + i);
}

/* mk_cs(cs, scope, author, seq, body_len, salt): a deterministic changeset. */
static void
mk_cs(struct store_cs *cs, const char *scope, uint8_t author, uint64_t seq,
      size_t body_len, uint8_t salt)
{
    size_t i;

    memset(cs, 0, sizeof(*cs));
    ASSERT_LT(strlen(scope), sizeof(cs->scope));
    strcpy(cs->scope, scope);
    memset(cs->author, author, sizeof(cs->author));
    cs->author_seq = seq;
    cs->hdr = kz_malloc(HDR_LEN);
    ASSERT(cs->hdr != NULL);
    cs->hdr_len = HDR_LEN;
    for (i = 0; i < HDR_LEN; i++)
        cs->hdr[i] = (uint8_t)(seq >> (8 * (i % 8)));
    cs->body = kz_malloc(body_len);
    ASSERT(cs->body != NULL);
    cs->body_len = body_len;
    for (i = 0; i < body_len; i++)
        cs->body[i] = body_byte(author, seq, salt, i);
    for (i = 0; i < STORE_SIG_LEN; i++)
        cs->sig[i] = (uint8_t)(author ^ seq ^ i);
}

/* item_check(it, author, seq, body_len, salt): bytes as mk_cs made them. */
static void
item_check(const struct store_item *it, uint8_t author, uint64_t seq,
           size_t body_len, uint8_t salt)
{
    size_t i;

    ASSERT_U64_EQ(it->author_seq, seq);
    for (i = 0; i < KZ_KEY_LEN; i++)
        ASSERT_EQ(it->author[i], author);
    ASSERT_EQ(it->hdr_len, HDR_LEN);
    for (i = 0; i < HDR_LEN; i++)
        ASSERT_EQ(it->hdr[i], (uint8_t)(seq >> (8 * (i % 8))));
    ASSERT_EQ(it->body_len, body_len);
    for (i = 0; i < body_len; i++)
        ASSERT_EQ(it->body[i], body_byte(author, seq, salt, i));
    for (i = 0; i < STORE_SIG_LEN; i++)
        ASSERT_EQ(it->sig[i], (uint8_t)(author ^ seq ^ i));
}

/* ---- callbacks --------------------------------------------------------- */

struct ack {
    int called;                  /* callbacks seen */
    int status;                  /* last status */
    struct store_append_res res; /* last result */
    int *order;                  /* if set: ++*order stored in seen_at */
    int seen_at;                 /* completion order */
};

static void
on_ack(void *data, int status, const struct store_append_res *res)
{
    struct ack *a = data;

    a->called++;
    a->status = status;
    a->res = *res;
    if (a->order != NULL)
        a->seen_at = ++*a->order;
}

/* append(s, ack, scope, author, seq, body_len, salt): queues one append. */
static void
append(struct store *s, struct ack *a, const char *scope, uint8_t author,
       uint64_t seq, size_t body_len, uint8_t salt)
{
    struct store_cs cs;

    mk_cs(&cs, scope, author, seq, body_len, salt);
    ASSERT_OK(store_append(s, &cs, on_ack, a));
    ASSERT(cs.hdr == NULL && cs.body == NULL);
}

/* A pull result, copied out of the callback. */
struct pull {
    int called;               /* callbacks seen */
    int status;               /* status */
    uint32_t n;               /* items */
    int more;                 /* more flag */
    uint64_t head;            /* head_seq */
    struct store_item *items; /* deep copies; freed by pull_free */
    int steal;                /* take item 0's body instead of copying */
};

static void
on_pull(void *data, int status, struct store_pull_res *res)
{
    struct pull *p = data;
    uint32_t i;

    p->called++;
    p->status = status;
    if (status != 0) {
        ASSERT(res == NULL);
        return;
    }
    p->n = res->n;
    p->more = res->more;
    p->head = res->head_seq;
    p->items = kz_calloc(res->n, sizeof(*p->items));
    ASSERT(p->items != NULL);
    for (i = 0; i < res->n; i++) {
        p->items[i] = res->items[i];
        p->items[i].hdr = kz_malloc(res->items[i].hdr_len);
        memcpy(p->items[i].hdr, res->items[i].hdr, res->items[i].hdr_len);
        if (i == 0 && p->steal) {
            p->items[i].body = res->items[i].body; /* ownership moves */
            res->items[i].body = NULL;
        } else {
            p->items[i].body = kz_malloc(res->items[i].body_len);
            memcpy(p->items[i].body, res->items[i].body,
                   res->items[i].body_len);
        }
    }
}

static void
pull_free(struct pull *p)
{
    uint32_t i;

    for (i = 0; i < p->n; i++) {
        kz_free(p->items[i].hdr);
        kz_free(p->items[i].body);
    }
    kz_free(p->items);
    memset(p, 0, sizeof(*p));
}

/* do_pull(f, p, scope, after, max_bytes, max_items): a pull, waited for. */
static void
do_pull(struct fx *f, struct pull *p, const char *scope, uint64_t after,
        size_t max_bytes, uint32_t max_items)
{
    int steal = p->steal;

    memset(p, 0, sizeof(*p));
    p->steal = steal;
    ASSERT_OK(store_pull(f->s, scope, after, max_bytes, max_items, on_pull, p));
    RUN_UNTIL(&f->loop, p->called == 1);
    ASSERT_OK(p->status);
}

/* ---- tests ------------------------------------------------------------- */

TEST(append_pull_roundtrip)
{
    struct fx f;
    struct ack a = {0};
    struct pull p = {0};
    struct store_stats st;

    fx_init(&f, NULL);
    append(f.s, &a, "network", 0xA1, 1, 300, 0);
    RUN_UNTIL(&f.loop, a.called == 1);
    ASSERT_OK(a.status);
    ASSERT_U64_EQ(a.res.server_seq, 1);
    ASSERT_EQ(a.res.duplicate, 0);

    do_pull(&f, &p, "network", 0, 1 << 20, 100);
    ASSERT_EQ(p.n, 1);
    ASSERT_EQ(p.more, 0);
    ASSERT_U64_EQ(p.head, 1);
    ASSERT_U64_EQ(p.items[0].server_seq, 1);
    item_check(&p.items[0], 0xA1, 1, 300, 0);
    pull_free(&p);

    /* The callback may keep a body. */
    p.steal = 1;
    do_pull(&f, &p, "network", 0, 1 << 20, 100);
    item_check(&p.items[0], 0xA1, 1, 300, 0);
    pull_free(&p);

    store_stats(f.s, &st);
    ASSERT_U64_EQ(st.appends, 1);
    ASSERT_U64_EQ(st.commits, 1);
    ASSERT_U64_EQ(st.pulls, 2);
    fx_fini(&f);
}

TEST(dense_per_scope)
{
    static const struct {
        const char *scope;
        uint8_t author;
        uint64_t seq;
        uint64_t want;
    } c[] = {
        {"site:A", 1, 1, 1}, {"site:B", 1, 1, 1}, {"site:A", 2, 1, 2},
        {"site:A", 1, 2, 3}, {"site:B", 2, 1, 2}, {"network", 1, 1, 1},
        {"site:B", 1, 2, 3}, {"site:A", 2, 2, 4},
    };
    struct ack a[KZ_ARRAY_SIZE(c)];
    struct pull p = {0};
    struct fx f;
    size_t i;

    memset(a, 0, sizeof(a));
    fx_init(&f, NULL);
    for (i = 0; i < KZ_ARRAY_SIZE(c); i++)
        append(f.s, &a[i], c[i].scope, c[i].author, c[i].seq, 50, 0);
    RUN_UNTIL(&f.loop, a[KZ_ARRAY_SIZE(c) - 1].called == 1);
    for (i = 0; i < KZ_ARRAY_SIZE(c); i++) {
        ASSERT_EQ(a[i].called, 1);
        ASSERT_OK(a[i].status);
        ASSERT_U64_EQ(a[i].res.server_seq, c[i].want);
    }
    do_pull(&f, &p, "site:A", 0, 1 << 20, 100);
    ASSERT_EQ(p.n, 4);
    for (i = 0; i < 4; i++)
        ASSERT_U64_EQ(p.items[i].server_seq, i + 1);
    item_check(&p.items[1], 2, 1, 50, 0);
    pull_free(&p);
    fx_fini(&f);
}

TEST(duplicate_acked_stored_once)
{
    struct fx f;
    struct ack a1 = {0}, a2 = {0}, b1 = {0}, b2 = {0};
    struct pull p = {0};
    struct store_stats st;

    fx_init(&f, NULL);
    append(f.s, &a1, "network", 7, 1, 100, 0);
    RUN_UNTIL(&f.loop, a1.called == 1);
    ASSERT_OK(a1.status);

    /* A re-send after the ack. */
    append(f.s, &a2, "network", 7, 1, 100, 0);
    RUN_UNTIL(&f.loop, a2.called == 1);
    ASSERT_OK(a2.status);
    ASSERT_EQ(a2.res.duplicate, 1);
    ASSERT_U64_EQ(a2.res.server_seq, a1.res.server_seq);

    /* A re-send in the same batch as the original. */
    append(f.s, &b1, "network", 7, 2, 100, 0);
    append(f.s, &b2, "network", 7, 2, 100, 0);
    RUN_UNTIL(&f.loop, b2.called == 1);
    ASSERT_OK(b1.status);
    ASSERT_OK(b2.status);
    ASSERT_EQ(b1.res.duplicate, 0);
    ASSERT_EQ(b2.res.duplicate, 1);
    ASSERT_U64_EQ(b1.res.server_seq, 2);
    ASSERT_U64_EQ(b2.res.server_seq, 2);

    do_pull(&f, &p, "network", 0, 1 << 20, 100);
    ASSERT_EQ(p.n, 2);
    ASSERT_U64_EQ(p.head, 2);
    pull_free(&p);
    store_stats(f.s, &st);
    ASSERT_U64_EQ(st.appends, 2);
    ASSERT_U64_EQ(st.duplicates, 2);
    fx_fini(&f);
}

TEST(same_seq_other_bytes_refused)
{
    struct fx f;
    struct ack a = {0}, b = {0}, c = {0};
    struct store_cs cs;
    struct pull p = {0};

    fx_init(&f, NULL);
    append(f.s, &a, "network", 7, 1, 100, 0);
    append(f.s, &b, "network", 7, 1, 100, 1); /* other body */
    mk_cs(&cs, "network", 7, 1, 100, 0);
    cs.sig[5] ^= 1; /* other signature */
    ASSERT_OK(store_append(f.s, &cs, on_ack, &c));
    RUN_UNTIL(&f.loop, c.called == 1);
    ASSERT_OK(a.status);
    ASSERT_ERR(b.status, -KZ_EEXIST);
    ASSERT_U64_EQ(b.res.server_seq, 1);
    ASSERT_ERR(c.status, -KZ_EEXIST);

    do_pull(&f, &p, "network", 0, 1 << 20, 100);
    ASSERT_EQ(p.n, 1);
    item_check(&p.items[0], 7, 1, 100, 0);
    pull_free(&p);
    fx_fini(&f);
}

TEST(gap_refused_with_expected)
{
    struct fx f;
    struct ack a1 = {0}, a3 = {0}, a2 = {0}, b2 = {0}, a2b = {0};
    struct store_stats st;
    struct pull p = {0};

    fx_init(&f, NULL);
    /* One batch: the gap fails alone, its neighbours succeed. */
    append(f.s, &a1, "network", 1, 1, 10, 0);
    append(f.s, &a3, "network", 1, 3, 10, 0);
    append(f.s, &a2, "network", 1, 2, 10, 0);
    append(f.s, &b2, "network", 2, 2, 10, 0);
    RUN_UNTIL(&f.loop, b2.called == 1);
    ASSERT_OK(a1.status);
    ASSERT_ERR(a3.status, -KZ_ESEQ);
    ASSERT_U64_EQ(a3.res.expected_seq, 2);
    ASSERT_OK(a2.status);
    ASSERT_U64_EQ(a2.res.server_seq, 2);
    ASSERT_ERR(b2.status, -KZ_ESEQ);
    ASSERT_U64_EQ(b2.res.expected_seq, 1);

    /* The same gap in another scope is separate. */
    append(f.s, &a2b, "site:X", 1, 2, 10, 0);
    RUN_UNTIL(&f.loop, a2b.called == 1);
    ASSERT_ERR(a2b.status, -KZ_ESEQ);
    ASSERT_U64_EQ(a2b.res.expected_seq, 1);

    do_pull(&f, &p, "network", 0, 1 << 20, 100);
    ASSERT_EQ(p.n, 2); /* the refused ones left nothing */
    ASSERT_U64_EQ(p.head, 2);
    pull_free(&p);
    store_stats(f.s, &st);
    ASSERT_U64_EQ(st.refused, 3);
    ASSERT_U64_EQ(st.failed, 0);
    fx_fini(&f);
}

TEST(pull_pages)
{
    struct fx f;
    struct ack a[10];
    struct pull p = {0};
    const size_t item = HDR_LEN + 100 + STORE_SIG_LEN;
    uint64_t after;
    int i, pages = 0;

    memset(a, 0, sizeof(a));
    fx_init(&f, NULL);
    for (i = 0; i < 10; i++)
        append(f.s, &a[i], "s", 3, (uint64_t)i + 1, 100, 0);
    RUN_UNTIL(&f.loop, a[9].called == 1);

    /* By items: 3, 3, 3, 1. */
    for (after = 0, pages = 0; pages < 10; pages++) {
        do_pull(&f, &p, "s", after, 1 << 20, 3);
        ASSERT_EQ(p.n, after < 9 ? 3 : 1);
        for (i = 0; i < (int)p.n; i++) {
            ASSERT_U64_EQ(p.items[i].server_seq, after + (uint64_t)i + 1);
            item_check(&p.items[i], 3, after + (uint64_t)i + 1, 100, 0);
        }
        after = p.items[p.n - 1].server_seq;
        ASSERT_EQ(p.more, after < 10);
        ASSERT_U64_EQ(p.head, 10);
        pull_free(&p);
        if (after == 10)
            break;
    }
    ASSERT_EQ(pages, 3);

    /* By bytes: two fit exactly; one byte less fits one. */
    do_pull(&f, &p, "s", 0, 2 * item, 100);
    ASSERT_EQ(p.n, 2);
    ASSERT_EQ(p.more, 1);
    pull_free(&p);
    do_pull(&f, &p, "s", 0, 2 * item - 1, 100);
    ASSERT_EQ(p.n, 1);
    pull_free(&p);
    /* Always at least one. */
    do_pull(&f, &p, "s", 4, 1, 100);
    ASSERT_EQ(p.n, 1);
    ASSERT_U64_EQ(p.items[0].server_seq, 5);
    ASSERT_EQ(p.more, 1);
    pull_free(&p);
    /* Head only. */
    do_pull(&f, &p, "s", 3, 1 << 20, 0);
    ASSERT_EQ(p.n, 0);
    ASSERT_U64_EQ(p.head, 10);
    ASSERT_EQ(p.more, 1);
    pull_free(&p);
    /* At the head, and an unknown scope. */
    do_pull(&f, &p, "s", 10, 1 << 20, 100);
    ASSERT_EQ(p.n, 0);
    ASSERT_EQ(p.more, 0);
    pull_free(&p);
    do_pull(&f, &p, "nope", 0, 1 << 20, 100);
    ASSERT_EQ(p.n, 0);
    ASSERT_U64_EQ(p.head, 0);
    ASSERT_EQ(p.more, 0);
    pull_free(&p);
    /* after_seq beyond INT64_MAX reads nothing rather than everything. */
    do_pull(&f, &p, "s", UINT64_MAX, 1 << 20, 100);
    ASSERT_EQ(p.n, 0);
    pull_free(&p);
    fx_fini(&f);
}

TEST(group_commit_batches)
{
    enum { N = 1000 };
    struct store_opts o = {.max_batch = 256, .max_queue = N};
    struct ack *a = kz_calloc(N, sizeof(*a));
    struct store_stats st;
    struct fx f;
    int i, order = 0;

    ASSERT(a != NULL);
    fx_init(&f, &o);
    for (i = 0; i < N; i++) {
        a[i].order = &order;
        append(f.s, &a[i], "network", 9, (uint64_t)i + 1, 200, 0);
    }
    RUN_UNTIL(&f.loop, order == N);
    for (i = 0; i < N; i++) {
        ASSERT_OK(a[i].status);
        ASSERT_U64_EQ(a[i].res.server_seq, (uint64_t)i + 1);
        ASSERT_EQ(a[i].seen_at, i + 1); /* callbacks in submission order */
    }
    store_stats(f.s, &st);
    fprintf(stderr, "appends %llu commits %llu max_batch %llu\n",
            (unsigned long long)st.appends, (unsigned long long)st.commits,
            (unsigned long long)st.max_batch);
    ASSERT_U64_EQ(st.appends, N);
    ASSERT_U64_EQ(st.batch_jobs, N);
    ASSERT_LT(st.commits, N / 4);
    ASSERT_GE(st.commits, N / 256);
    ASSERT_LE(st.max_batch, 256);
    ASSERT_U64_EQ(st.queued, 0);
    fx_fini(&f);
    kz_free(a);
}

/* Roster and keys callbacks. */
struct done {
    int called;                /* callbacks seen */
    int status;                /* last status */
    uint64_t v;                /* version or id */
    uint8_t *bytes;            /* roster copy */
    size_t len;                /* bytes */
    struct store_key keys[16]; /* keys_get copy (ids and recipients) */
    uint32_t n;                /* keys */
    int more;                  /* keys more flag */
};

static void
on_roster_put(void *data, int status, uint64_t stored)
{
    struct done *d = data;

    d->called++;
    d->status = status;
    d->v = stored;
}

static void
on_roster_get(void *data, int status, uint64_t version, const uint8_t *bytes,
              size_t len)
{
    struct done *d = data;

    d->called++;
    d->status = status;
    d->v = version;
    kz_free(d->bytes);
    d->bytes = NULL;
    d->len = len;
    if (bytes != NULL) {
        d->bytes = kz_malloc(len);
        memcpy(d->bytes, bytes, len);
    }
}

static void
on_keys_put(void *data, int status, uint64_t last_id)
{
    struct done *d = data;

    d->called++;
    d->status = status;
    d->v = last_id;
}

static void
on_keys_get(void *data, int status, struct store_keys_res *res)
{
    struct done *d = data;
    uint32_t i;

    d->called++;
    d->status = status;
    if (status != 0)
        return;
    ASSERT_LE(res->n, KZ_ARRAY_SIZE(d->keys));
    d->n = res->n;
    d->more = res->more;
    for (i = 0; i < res->n; i++) {
        d->keys[i] = res->keys[i];
        d->keys[i].bytes = NULL;
        ASSERT_EQ(res->keys[i].len, 40);
        ASSERT_EQ(res->keys[i].bytes[0], (uint8_t)res->keys[i].id);
    }
}

static uint8_t *
blob(size_t len, uint8_t fill)
{
    uint8_t *p = kz_malloc(len);

    ASSERT(p != NULL);
    memset(p, fill, len);
    return p;
}

static void
roster_put(struct fx *f, uint64_t version, uint8_t fill, int want,
           uint64_t want_stored)
{
    struct done d = {0};
    uint8_t *b = blob(100 + version, fill);

    ASSERT_OK(
        store_roster_put(f->s, version, &b, 100 + version, on_roster_put, &d));
    ASSERT(b == NULL);
    RUN_UNTIL(&f->loop, d.called == 1);
    ASSERT_ERR(d.status, want);
    ASSERT_U64_EQ(d.v, want_stored);
}

static void
roster_get(struct fx *f, int want, uint64_t version, uint8_t fill)
{
    struct done d = {0};
    size_t i;

    ASSERT_OK(store_roster_get(f->s, on_roster_get, &d));
    RUN_UNTIL(&f->loop, d.called == 1);
    ASSERT_ERR(d.status, want);
    ASSERT_U64_EQ(d.v, version);
    if (want == 0) {
        ASSERT_EQ(d.len, 100 + version);
        for (i = 0; i < d.len; i++)
            ASSERT_EQ(d.bytes[i], fill);
    } else {
        ASSERT(d.bytes == NULL);
    }
    kz_free(d.bytes);
}

TEST(roster_versions)
{
    struct fx f;
    uint8_t *b = blob(10, 1);

    fx_init(&f, NULL);
    roster_get(&f, -KZ_ENOENT, 0, 0);
    roster_put(&f, 1, 0x11, 0, 1);
    roster_get(&f, 0, 1, 0x11);
    roster_put(&f, 1, 0x12, -KZ_EVERSION, 1);
    roster_put(&f, 3, 0x33, 0, 3);
    roster_put(&f, 2, 0x22, -KZ_EVERSION, 3);
    roster_get(&f, 0, 3, 0x33);
    ASSERT_ERR(store_roster_put(f.s, 0, &b, 10, on_roster_put, NULL),
               -KZ_EINVAL);
    ASSERT(b != NULL); /* still ours on error */
    kz_free(b);
    fx_fini(&f);
}

static void
keys_put(struct fx *f, uint32_t n, uint64_t first_id, const uint8_t *rcpt)
{
    struct store_key k[8];
    struct done d = {0};
    uint32_t i;

    ASSERT_LE(n, KZ_ARRAY_SIZE(k));
    memset(k, 0, sizeof(k));
    for (i = 0; i < n; i++) {
        memset(k[i].recipient, rcpt[i], KZ_KEY_LEN);
        k[i].bytes = blob(40, (uint8_t)(first_id + i));
        k[i].len = 40;
    }
    ASSERT_OK(store_keys_put(f->s, k, n, on_keys_put, &d));
    for (i = 0; i < n; i++)
        ASSERT(k[i].bytes == NULL);
    RUN_UNTIL(&f->loop, d.called == 1);
    ASSERT_OK(d.status);
    ASSERT_U64_EQ(d.v, first_id + n - 1);
}

static void
keys_get(struct fx *f, struct done *d, const uint8_t *rcpt, uint64_t after,
         uint32_t max)
{
    memset(d, 0, sizeof(*d));
    ASSERT_OK(store_keys_get(f->s, rcpt, after, max, on_keys_get, d));
    RUN_UNTIL(&f->loop, d->called == 1);
    ASSERT_OK(d->status);
}

TEST(keys_pages)
{
    static const uint8_t r1[] = {1, 1, 2, 1, 2};
    static const uint8_t r2[] = {2, 2, 1, 2, 2};
    uint8_t who[KZ_KEY_LEN];
    struct fx f;
    struct done d;
    uint32_t i;

    fx_init(&f, NULL);
    keys_get(&f, &d, NULL, 0, 10);
    ASSERT_EQ(d.n, 0);
    keys_put(&f, 5, 1, r1);
    keys_put(&f, 5, 6, r2);

    keys_get(&f, &d, NULL, 0, 4);
    ASSERT_EQ(d.n, 4);
    ASSERT_EQ(d.more, 1);
    for (i = 0; i < 4; i++)
        ASSERT_U64_EQ(d.keys[i].id, i + 1);
    keys_get(&f, &d, NULL, 4, 6);
    ASSERT_EQ(d.n, 6);
    ASSERT_EQ(d.more, 0);
    ASSERT_U64_EQ(d.keys[5].id, 10);

    /* Recipient 1 has ids 1, 2, 4, 8. */
    memset(who, 1, sizeof(who));
    keys_get(&f, &d, who, 0, 3);
    ASSERT_EQ(d.n, 3);
    ASSERT_EQ(d.more, 1);
    ASSERT_U64_EQ(d.keys[0].id, 1);
    ASSERT_U64_EQ(d.keys[1].id, 2);
    ASSERT_U64_EQ(d.keys[2].id, 4);
    ASSERT_EQ(d.keys[2].recipient[0], 1);
    keys_get(&f, &d, who, 4, 3);
    ASSERT_EQ(d.n, 1);
    ASSERT_EQ(d.more, 0);
    ASSERT_U64_EQ(d.keys[0].id, 8);

    ASSERT_ERR(store_keys_get(f.s, NULL, 0, 0, on_keys_get, &d), -KZ_EINVAL);
    fx_fini(&f);
}

TEST(durable_across_reopen)
{
    static const uint8_t r[] = {5, 5};
    struct fx f;
    struct ack a[6];
    struct pull p = {0};
    struct done d;
    int i;

    memset(a, 0, sizeof(a));
    fx_init(&f, NULL);
    for (i = 0; i < 5; i++)
        append(f.s, &a[i], i % 2 ? "site:A" : "network", 4, (uint64_t)i / 2 + 1,
               1000, 2);
    RUN_UNTIL(&f.loop, a[4].called == 1);
    roster_put(&f, 7, 0x77, 0, 7);
    keys_put(&f, 2, 1, r);
    fx_close_store(&f);

    fx_open(&f, NULL);
    do_pull(&f, &p, "network", 0, 1 << 20, 100);
    ASSERT_EQ(p.n, 3);
    for (i = 0; i < 3; i++)
        item_check(&p.items[i], 4, (uint64_t)i + 1, 1000, 2);
    pull_free(&p);
    do_pull(&f, &p, "site:A", 0, 1 << 20, 100);
    ASSERT_EQ(p.n, 2);
    pull_free(&p);
    roster_get(&f, 0, 7, 0x77);
    roster_put(&f, 7, 0x78, -KZ_EVERSION, 7);
    keys_get(&f, &d, NULL, 0, 10);
    ASSERT_EQ(d.n, 2);
    keys_put(&f, 1, 3, r);

    /* The author's sequence continues where it stopped. */
    append(f.s, &a[5], "network", 4, 5, 10, 0);
    RUN_UNTIL(&f.loop, a[5].called == 1);
    ASSERT_ERR(a[5].status, -KZ_ESEQ);
    ASSERT_U64_EQ(a[5].res.expected_seq, 4);
    fx_fini(&f);
}

struct inflight {
    int acks;     /* append callbacks seen */
    int ok;       /* of which status 0 */
    int pulls;    /* pull callbacks seen */
    int at_close; /* acks + pulls when the close callback ran */
    int closed;   /* close callbacks seen */
};

static void
inflight_ack(void *data, int status, const struct store_append_res *res)
{
    struct inflight *x = data;

    (void)res;
    x->acks++;
    x->ok += status == 0;
}

static void
inflight_pull(void *data, int status, struct store_pull_res *res)
{
    struct inflight *x = data;

    (void)res;
    ASSERT_OK(status);
    x->pulls++;
}

static void
inflight_closed(void *data)
{
    struct inflight *x = data;

    x->closed++;
    x->at_close = x->acks + x->pulls;
}

TEST(close_with_jobs_in_flight)
{
    enum { N = 500 };
    struct inflight x = {0};
    struct store_cs cs;
    struct fx f;
    int i;

    fx_init(&f, NULL);
    for (i = 0; i < N; i++) {
        mk_cs(&cs, "network", 1, (uint64_t)i + 1, 64, 0);
        ASSERT_OK(store_append(f.s, &cs, inflight_ack, &x));
        if (i % 50 == 0)
            ASSERT_OK(
                store_pull(f.s, "network", 0, 4096, 10, inflight_pull, &x));
    }
    store_close(f.s, inflight_closed, &x);
    store_close(f.s, inflight_closed, &x); /* ignored */

    /* Closed to new work at once; the buffers stay ours. */
    mk_cs(&cs, "network", 1, N + 1, 64, 0);
    ASSERT_ERR(store_append(f.s, &cs, inflight_ack, &x), -KZ_ECLOSED);
    ASSERT(cs.hdr != NULL && cs.body != NULL);
    kz_free(cs.hdr);
    kz_free(cs.body);
    ASSERT_ERR(store_pull(f.s, "network", 0, 1, 1, inflight_pull, &x),
               -KZ_ECLOSED);

    RUN_UNTIL(&f.loop, x.closed == 1);
    f.s = NULL;
    ASSERT_EQ(x.acks, N);
    ASSERT_EQ(x.ok, N);
    ASSERT_EQ(x.pulls, N / 50);
    ASSERT_EQ(x.at_close, N + N / 50);

    /* Everything was committed. */
    fx_open(&f, NULL);
    {
        struct pull p = {0};

        do_pull(&f, &p, "network", 0, 1 << 20, 0);
        ASSERT_U64_EQ(p.head, N);
        pull_free(&p);
    }
    fx_fini(&f);
}

struct closer {
    struct store *s; /* store to close from the callback */
    int acks;        /* callbacks seen */
    int closed;      /* close callbacks seen */
};

static void
closer_ack(void *data, int status, const struct store_append_res *res)
{
    struct closer *c = data;

    (void)res;
    ASSERT_OK(status);
    if (++c->acks == 1)
        store_close(c->s, on_closed, &c->closed);
}

TEST(close_from_callback)
{
    struct closer c = {0};
    struct store_cs cs;
    struct fx f;
    int i;

    fx_init(&f, NULL);
    c.s = f.s;
    for (i = 0; i < 20; i++) {
        mk_cs(&cs, "network", 1, (uint64_t)i + 1, 64, 0);
        ASSERT_OK(store_append(f.s, &cs, closer_ack, &c));
    }
    RUN_UNTIL(&f.loop, c.closed == 1);
    ASSERT_EQ(c.acks, 20);
    f.s = NULL;
    fx_fini(&f);
}

TEST(two_stores)
{
    struct fx f;
    struct store *s2;
    char path2[PATH_MAX];
    struct ack a[4];
    int closed2 = 0;

    memset(a, 0, sizeof(a));
    fx_init(&f, NULL);
    join(path2, sizeof(path2), f.dir, "second.db");
    ASSERT_OK(store_sqlite_open(&s2, &f.loop, path2, NULL));
    append(f.s, &a[0], "network", 1, 1, 10, 0);
    append(s2, &a[1], "network", 1, 1, 10, 0);
    append(s2, &a[2], "network", 1, 2, 10, 0);
    append(f.s, &a[3], "network", 1, 2, 10, 0);
    RUN_UNTIL(&f.loop,
              a[0].called + a[1].called + a[2].called + a[3].called == 4);
    ASSERT_OK(a[0].status);
    ASSERT_OK(a[1].status);
    ASSERT_U64_EQ(a[0].res.server_seq, 1);
    ASSERT_U64_EQ(a[1].res.server_seq, 1);
    ASSERT_U64_EQ(a[2].res.server_seq, 2);
    ASSERT_U64_EQ(a[3].res.server_seq, 2);
    store_close(s2, on_closed, &closed2);
    RUN_UNTIL(&f.loop, closed2 == 1);
    fx_fini(&f);
}

TEST(open_errors)
{
    uv_loop_t loop;
    struct store *s = NULL;
    char dir[PATH_MAX], path[PATH_MAX];
    FILE *fp;
    int i;

    ASSERT_OK(uv_loop_init(&loop));
    tmpdir_make(dir, sizeof(dir));

    join(path, sizeof(path), dir, "missing/store.db");
    ASSERT_ERR(store_sqlite_open(&s, &loop, path, NULL), -KZ_EIO);
    ASSERT(s == NULL);

    join(path, sizeof(path), dir, "junk.db");
    fp = fopen(path, "w");
    ASSERT(fp != NULL);
    for (i = 0; i < 200; i++)
        fputs("this is not a database. ", fp);
    fclose(fp);
    ASSERT_ERR(store_sqlite_open(&s, &loop, path, NULL), -KZ_EDB);
    ASSERT(s == NULL);

    ASSERT_ERR(store_sqlite_open(&s, &loop, NULL, NULL), -KZ_EINVAL);
    ASSERT_ERR(store_sqlite_open(&s, NULL, path, NULL), -KZ_EINVAL);

    ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ASSERT_OK(uv_loop_close(&loop));
    tmpdir_remove(dir);
}

TEST(bad_arguments)
{
    struct fx f;
    struct store_cs cs;
    struct ack a = {0};
    size_t i;

    fx_init(&f, NULL);
    mk_cs(&cs, "network", 1, 1, 10, 0);
    cs.author_seq = 0;
    ASSERT_ERR(store_append(f.s, &cs, on_ack, &a), -KZ_EINVAL);
    cs.author_seq = (uint64_t)INT64_MAX + 1;
    ASSERT_ERR(store_append(f.s, &cs, on_ack, &a), -KZ_EINVAL);
    cs.author_seq = 1;
    cs.scope[0] = '\0';
    ASSERT_ERR(store_append(f.s, &cs, on_ack, &a), -KZ_EINVAL);
    for (i = 0; i < sizeof(cs.scope); i++)
        cs.scope[i] = 'x'; /* 129 bytes, no NUL */
    ASSERT_ERR(store_append(f.s, &cs, on_ack, &a), -KZ_EINVAL);
    strcpy(cs.scope, "network");
    ASSERT_ERR(store_append(f.s, &cs, NULL, &a), -KZ_EINVAL);
    cs.hdr_len = KZ_LIM_CS_HEADER_MAX + 1;
    ASSERT_ERR(store_append(f.s, &cs, on_ack, &a), -KZ_EINVAL);
    cs.hdr_len = HDR_LEN;
    ASSERT_ERR(store_pull(f.s, "", 0, 1, 1, on_pull, NULL), -KZ_EINVAL);

    /* Allocation failure: -KZ_ENOMEM, and the buffers stay the caller's. */
    kz_alloc_fail_after(0);
    i = (size_t)store_append(f.s, &cs, on_ack, &a);
    kz_alloc_fail_after(-1);
    ASSERT_ERR((int)i, -KZ_ENOMEM);
    ASSERT(cs.hdr != NULL && cs.body != NULL);

    ASSERT_OK(store_append(f.s, &cs, on_ack, &a));
    RUN_UNTIL(&f.loop, a.called == 1);
    ASSERT_OK(a.status);
    ASSERT_EQ(a.called, 1); /* no callback for the refused calls */
    fx_fini(&f);
}

/* hold_lock(path): a second connection holding the write lock. */
static sqlite3 *
hold_lock(const char *path)
{
    sqlite3 *db = NULL;

    ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    return db;
}

static void
release_lock(sqlite3 *db)
{
    ASSERT_EQ(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    ASSERT_EQ(sqlite3_close(db), SQLITE_OK);
}

TEST(queue_full_while_locked)
{
    struct store_opts o = {
        .max_batch = 2, .max_queue = 4, .busy_timeout_ms = 30000};
    struct ack a[16];
    struct store_cs cs;
    struct fx f;
    sqlite3 *db;
    int i, n = -1, rc;

    memset(a, 0, sizeof(a));
    fx_init(&f, &o);
    db = hold_lock(f.path);
    for (i = 0; i < 16; i++) {
        mk_cs(&cs, "network", 1, (uint64_t)i + 1, 10, 0);
        rc = store_append(f.s, &cs, on_ack, &a[i]);
        if (rc == -KZ_EAGAIN) {
            kz_free(cs.hdr);
            kz_free(cs.body);
            n = i;
            break;
        }
        ASSERT_OK(rc);
        if (i == 0)
            usleep(100 * 1000); /* let the thread block on the lock */
    }
    /* 4 queued, and (almost surely) 1 or 2 taken by the blocked thread. */
    ASSERT_GE(n, 4);
    ASSERT_LE(n, 6);
    release_lock(db);
    RUN_UNTIL(&f.loop, a[n - 1].called == 1);
    for (i = 0; i < n; i++) {
        ASSERT_OK(a[i].status);
        ASSERT_U64_EQ(a[i].res.server_seq, (uint64_t)i + 1);
    }
    fx_fini(&f);
}

TEST(busy_failure_then_recovery)
{
    struct store_opts o = {.busy_timeout_ms = 50};
    struct ack a[3], b = {0};
    struct store_stats st;
    struct pull p = {0};
    struct fx f;
    sqlite3 *db;
    int i;

    memset(a, 0, sizeof(a));
    fx_init(&f, &o);
    db = hold_lock(f.path);
    for (i = 0; i < 3; i++)
        append(f.s, &a[i], "network", 1, (uint64_t)i + 1, 10, 0);
    RUN_UNTIL(&f.loop, a[2].called == 1);
    for (i = 0; i < 3; i++) {
        ASSERT_ERR(a[i].status, -KZ_EDB);
        ASSERT_U64_EQ(a[i].res.server_seq, 0);
    }
    release_lock(db);

    append(f.s, &b, "network", 1, 1, 10, 0);
    RUN_UNTIL(&f.loop, b.called == 1);
    ASSERT_OK(b.status);
    ASSERT_U64_EQ(b.res.server_seq, 1);
    do_pull(&f, &p, "network", 0, 1 << 20, 100);
    ASSERT_EQ(p.n, 1);
    pull_free(&p);
    store_stats(f.s, &st);
    ASSERT_U64_EQ(st.failed, 3);
    ASSERT_U64_EQ(st.appends, 1);
    fx_fini(&f);
}

/* ---- crash: acknowledged means durable --------------------------------- */

#define CRASH_INFLIGHT 32
#define CRASH_MAX 100000u

struct crash {
    struct store *s; /* the child's store */
    int wfd;         /* pipe to the parent */
    uint64_t next;   /* next author_seq to submit */
};

static void crash_submit(struct crash *c);

static void
crash_ack(void *data, int status, const struct store_append_res *res)
{
    struct crash *c = data;
    uint64_t rec[2];

    if (status != 0)
        _exit(3);
    rec[0] = res->server_seq;
    rec[1] = 0;
    if (write(c->wfd, rec, sizeof(rec)) != (ssize_t)sizeof(rec))
        _exit(4);
    crash_submit(c);
}

static void
crash_submit(struct crash *c)
{
    struct store_cs cs;

    if (c->next > CRASH_MAX)
        return;
    mk_cs(&cs, "network", 0xC5, c->next, 500, 1);
    if (store_append(c->s, &cs, crash_ack, c) != 0)
        _exit(5);
    c->next++;
}

static void
crash_child(const char *path, int wfd, uint64_t start)
{
    uv_loop_t loop;
    struct crash c = {.wfd = wfd, .next = start};
    int i;

    if (uv_loop_init(&loop) != 0 ||
        store_sqlite_open(&c.s, &loop, path, NULL) != 0)
        _exit(2);
    for (i = 0; i < CRASH_INFLIGHT; i++)
        crash_submit(&c);
    uv_run(&loop, UV_RUN_DEFAULT); /* until killed */
    _exit(6);
}

/*
 * crash_round(f, start, kill_after, acked): runs a child that appends from
 * author_seq ${start} on, kills it with SIGKILL after ${kill_after} acks,
 * and marks every acked server_seq in ${acked}.  Returns the highest.
 */
static uint64_t
crash_round(struct fx *f, uint64_t start, size_t kill_after, uint8_t *acked)
{
    uint64_t rec[2], max = 0;
    size_t got = 0, off = 0;
    struct pollfd pfd;
    int fds[2], status, killed = 0;
    ssize_t r;
    pid_t pid;

    ASSERT_OK(pipe(fds));
    pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        crash_child(f->path, fds[1], start);
    }
    close(fds[1]);

    /* Read acks until EOF: those sent before the kill landed count too. */
    pfd.fd = fds[0];
    pfd.events = POLLIN;
    for (;;) {
        ASSERT_EQ(poll(&pfd, 1, 30000), 1);
        r = read(fds[0], (uint8_t *)rec + off, sizeof(rec) - off);
        ASSERT_GE(r, 0);
        if (r == 0)
            break;
        off += (size_t)r;
        if (off < sizeof(rec))
            continue;
        off = 0;
        ASSERT(rec[0] >= start && rec[0] <= CRASH_MAX);
        acked[rec[0]] = 1;
        max = KZ_MAX(max, rec[0]);
        if (++got >= kill_after && !killed) {
            ASSERT_OK(kill(pid, SIGKILL));
            killed = 1;
        }
    }
    close(fds[0]);
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    fprintf(stderr, "from %llu: acked %zu, highest %llu\n",
            (unsigned long long)start, got, (unsigned long long)max);
    return max;
}

TEST(acked_survives_sigkill)
{
    struct fx f;
    struct pull p = {0};
    uint8_t *acked;
    uint64_t max, head = 0, i;
    int round;

    fx_init(&f, NULL);
    fx_close_store(&f); /* the children open it */
    acked = kz_calloc(CRASH_MAX + 1, 1);
    ASSERT(acked != NULL);
    for (round = 1; round <= 3; round++) {
        max = crash_round(&f, head + 1, (size_t)round * 100, acked);

        /* Every acked changeset is there, byte for byte, densely. */
        fx_open(&f, NULL);
        do_pull(&f, &p, "network", 0, SIZE_MAX, STORE_PULL_ITEMS_MAX);
        ASSERT_GE(p.head, max);
        ASSERT_EQ(p.n, p.head);
        for (i = 0; i < p.n; i++) {
            ASSERT_U64_EQ(p.items[i].server_seq, i + 1);
            item_check(&p.items[i], 0xC5, i + 1, 500, 1);
        }
        for (i = 1; i <= CRASH_MAX; i++)
            if (acked[i])
                ASSERT_LE(i, p.head);
        fprintf(stderr, "round %d: head %llu\n", round,
                (unsigned long long)p.head);
        head = p.head;
        pull_free(&p);
        fx_close_store(&f);
    }
    kz_free(acked);
    fx_fini(&f);
}

T_MAIN(T(append_pull_roundtrip), T(dense_per_scope),
       T(duplicate_acked_stored_once), T(same_seq_other_bytes_refused),
       T(gap_refused_with_expected), T(pull_pages), T(group_commit_batches),
       T(roster_versions), T(keys_pages), T(durable_across_reopen),
       T(close_with_jobs_in_flight), T(close_from_callback), T(two_stores),
       T(open_errors), T(bad_arguments), T(queue_full_while_locked),
       T(busy_failure_then_recovery), T(acked_survives_sigkill))
