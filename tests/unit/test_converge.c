/*
 * test_converge.c: a seeded property test of the engine.
 *
 * N replicas edit one table at random — inserts, updates of one or two
 * columns (sometimes to the same value), deletes and re-inserts of a small
 * pool of keys, so many edits hit the same cells concurrently — and sync
 * through a simulated server: one log per scope in push order, which each
 * replica pulls from its own cursor in random steps.  Changesets are split
 * at random batch sizes, some are delivered twice, and some are offered
 * ahead of their turn (refused as a gap, delivered later).
 *
 * The test keeps a vector clock per replica, so it knows for every cell
 * version which versions its author had seen.  At the end:
 *   - all replicas have the same digest;
 *   - every recorded conflict is between two truly concurrent versions
 *     (no sequential edit is ever reported);
 *   - every version that lost to the final value without its author's
 *     successor having seen it appears in some conflict record (nothing is
 *     dropped silently).
 *
 * KZ_SEED=<n> reruns one seed; KZ_STEPS=<n> changes the length.
 */
#include <inttypes.h>

#include "changeset.h"

#include "engine_util.h"

#define N 4
#define POOL 24
#define MAX_LOG 20000
#define MAX_VER 200000

struct entry {
    struct kz_cs_header hdr; /* decoded header */
    uint8_t *body;           /* owned */
    size_t body_len;
    int vc[N]; /* author's vector clock when built */
};

struct ver {
    uint64_t hlc;       /* version … */
    uint8_t author[32]; /* … */
    int pk;             /* key number */
    uint32_t col;       /* cell */
    int vc[N];          /* author's vector clock */
    int mentioned;      /* appears in some conflict record */
    uint64_t base;      /* base hlc, for diagnostics */
    uint64_t seq;       /* author_seq of its changeset */
};

struct sim {
    uint64_t rng; /* xorshift state */
    char dir[256];
    struct replica *r[N];
    uint8_t key[N][32];   /* author ids */
    int vc[N][N];         /* knowledge */
    uint64_t recorded[N]; /* outbox seq recorded in vers */
    int (*cs_vc)[N];      /* [i * MAX_LOG + seq]: vc of a changeset */
    uint64_t pushed[N];   /* outbox seq moved to the log */
    size_t cursor[N];     /* next log entry to pull */
    struct entry *log;
    size_t n_log;
    struct ver *vers;
    size_t n_vers;
};

static uint64_t
rnd(struct sim *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

static uint32_t
rndn(struct sim *s, uint32_t n)
{
    return (uint32_t)(rnd(s) % n);
}

/* Records the versions of outbox changesets not yet recorded. */
static void
record(struct sim *s, int i)
{
    struct replica_cs cs;
    int rc;

    while ((rc = replica_outbox_get(s->r[i], "network", s->recorded[i], &cs)) ==
           1) {
        struct kz_cs_rd *rd = NULL;
        struct kz_cs_row row;
        struct kz_cs_cell c;

        /* Each changeset is one event of its author. */
        s->vc[i][i]++;
        ASSERT_LT(cs.hdr.author_seq, MAX_LOG);
        memcpy(s->cs_vc[(size_t)i * MAX_LOG + cs.hdr.author_seq], s->vc[i],
               sizeof(s->vc[i]));
        ASSERT_OK(kz_cs_rd_new(&rd, cs.body, cs.body_len, NULL));
        while (kz_cs_rd_next_row(rd, &row) == 1) {
            int pk;
            ASSERT_EQ(row.pk[0].type, KZ_V_TEXT);
            pk = atoi((const char *)row.pk[0].p + 1);
            while (kz_cs_rd_next_cell(rd, &c) == 1) {
                struct ver *v;
                ASSERT_LT(s->n_vers, MAX_VER);
                v = &s->vers[s->n_vers++];
                v->hlc = c.hlc;
                memcpy(v->author, kz_cs_rd_author(rd, c.author), 32);
                ASSERT_MEM_EQ(v->author, s->key[i], 32);
                v->pk = pk;
                v->col = c.col;
                memcpy(v->vc, s->vc[i], sizeof(v->vc));
                v->mentioned = 0;
                v->base = c.base_hlc;
                v->seq = cs.hdr.author_seq;
            }
        }
        kz_cs_rd_free(rd);
        s->recorded[i] = cs.hdr.author_seq;
        replica_cs_clear(&cs);
    }
    ASSERT_EQ(rc, 0);
}

static void
build(struct sim *s, int i)
{
    uint32_t cells = 1 + rndn(s, 12);
    int made, more = 0, steps = 0;

    if (rndn(s, 2)) {
        made = replica_build(s->r[i], cells);
    } else {
        /* In steps of a few log rows, as a sync builds. */
        uint32_t rows = 1 + rndn(s, 8);
        int m;
        made = 0;
        do {
            m = replica_build_step(s->r[i], cells, rows, &more);
            ASSERT(m >= 0);
            made += m;
            ASSERT_LT(++steps, 100000);
        } while (more);
    }
    ASSERT(made >= 0);
    if (made > 0)
        record(s, i);
}

static void
push(struct sim *s, int i)
{
    struct replica_cs cs;
    int rc;

    build(s, i);
    while ((rc = replica_outbox_get(s->r[i], "network", s->pushed[i], &cs)) ==
           1) {
        struct entry *e;
        ASSERT_LT(s->n_log, MAX_LOG);
        e = &s->log[s->n_log++];
        e->hdr = cs.hdr;
        e->body = cs.body;
        e->body_len = cs.body_len;
        cs.body = NULL;
        memcpy(e->vc, s->cs_vc[(size_t)i * MAX_LOG + cs.hdr.author_seq],
               sizeof(e->vc));
        s->pushed[i] = cs.hdr.author_seq;
        replica_cs_clear(&cs);
    }
    ASSERT_EQ(rc, 0);
    ASSERT_OK(replica_outbox_ack(s->r[i], "network", s->pushed[i]));
}

static void
deliver(struct sim *s, int i, size_t k)
{
    struct entry *e = &s->log[k];
    struct apply_stats st;
    int j, rc;

    rc = replica_apply(s->r[i], &e->hdr, e->body, e->body_len, &st);
    if (rc != 0)
        T_FAIL_("apply: %s: %s", kz_err_name(rc), replica_errmsg(s->r[i]));
    ASSERT_EQ(st.quarantined, 0);
    for (j = 0; j < N; j++)
        if (e->vc[j] > s->vc[i][j])
            s->vc[i][j] = e->vc[j];
}

static void
pull(struct sim *s, int i, size_t max)
{
    size_t n = 0;

    build(s, i); /* local edits get their versions before the apply */
    while (s->cursor[i] < s->n_log && n < max) {
        deliver(s, i, s->cursor[i]++);
        n++;
    }
}

static void
local_write(struct sim *s, int i)
{
    char sql[256];
    int pk = (int)rndn(s, POOL);
    char id[16];

    snprintf(id, sizeof(id), "k%d", pk);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM item WHERE id = '%s'", id);
    if (sql_int(s->r[i], sql) == 0) {
        snprintf(sql, sizeof(sql),
                 "INSERT INTO item VALUES ('%s', %u, 'v%u', %u.5)", id,
                 rndn(s, 4), rndn(s, 4), rndn(s, 4));
    } else if (rndn(s, 10) == 0) {
        snprintf(sql, sizeof(sql), "DELETE FROM item WHERE id = '%s'", id);
    } else if (rndn(s, 3) == 0) {
        snprintf(sql, sizeof(sql),
                 "UPDATE item SET a = %u, b = 'v%u' WHERE id = '%s'",
                 rndn(s, 4), rndn(s, 4), id);
    } else {
        static const char *const col[] = {"a", "b", "c"};
        uint32_t c = rndn(s, 3);
        snprintf(sql, sizeof(sql),
                 "UPDATE item SET %s = %s%u%s WHERE id = '%s'", col[c],
                 c == 1 ? "'v" : "", rndn(s, 4), c == 1 ? "'" : "", id);
    }
    sql_ok(s->r[i], sql);
}

/* Offers a changeset ahead of its author's previous one: must be refused. */
static void
offer_ahead(struct sim *s, int i)
{
    size_t k, p;

    for (k = s->cursor[i] + 1; k < s->n_log; k++) {
        if (memcmp(s->log[k].hdr.author, s->key[i], 32) == 0)
            continue;
        for (p = k; p-- > s->cursor[i];) {
            if (memcmp(s->log[p].hdr.author, s->log[k].hdr.author, 32) == 0) {
                int rc = replica_apply(s->r[i], &s->log[k].hdr, s->log[k].body,
                                       s->log[k].body_len, NULL);
                ASSERT_ERR(rc, -KZ_ESEQ);
                return;
            }
        }
    }
}

static void
redeliver(struct sim *s, int i)
{
    struct apply_stats st;
    size_t k;
    char before[65], after[65];

    if (s->cursor[i] == 0)
        return;
    k = rndn(s, (uint32_t)s->cursor[i]);
    digest_hex(s->r[i], "network", before);
    ASSERT_OK(replica_apply(s->r[i], &s->log[k].hdr, s->log[k].body,
                            s->log[k].body_len, &st));
    ASSERT_EQ(st.duplicate, 1);
    digest_hex(s->r[i], "network", after);
    ASSERT_STR_EQ(before, after);
}

static int
vc_le(const int *a, const int *b)
{
    int j;
    for (j = 0; j < N; j++)
        if (a[j] > b[j])
            return 0;
    return 1;
}

static int
ver_cmp(const struct ver *a, const struct ver *b)
{
    if (a->hlc != b->hlc)
        return a->hlc < b->hlc ? -1 : 1;
    return memcmp(a->author, b->author, 32);
}

static struct ver *
ver_find(struct sim *s, uint64_t hlc, const void *author, int pk, uint32_t col)
{
    size_t i;
    for (i = 0; i < s->n_vers; i++)
        if (s->vers[i].hlc == hlc && s->vers[i].pk == pk &&
            s->vers[i].col == col && memcmp(s->vers[i].author, author, 32) == 0)
            return &s->vers[i];
    return NULL;
}

static void
dump_cell(struct sim *s, int pk, uint32_t col, const struct ver *m1,
          const struct ver *m2)
{
    size_t q;
    for (q = 0; q < s->n_vers; q++) {
        struct ver *x = &s->vers[q];
        int a;
        if (x->pk != pk || (x->col != col && x->col != 0))
            continue;
        for (a = 0; a < N && memcmp(s->key[a], x->author, 32); a++)
            ;
        fprintf(stderr,
                "  c%u hlc %llu base %llu seq %llu by r%d vc %d.%d.%d.%d%s%s\n",
                x->col, (unsigned long long)(x->hlc & 0xffffffffu),
                (unsigned long long)(x->base & 0xffffffffu),
                (unsigned long long)x->seq, a, x->vc[0], x->vc[1], x->vc[2],
                x->vc[3], x == m1 ? " <1" : "", x == m2 ? " <2" : "");
    }
}

/* Checks every conflict record of every replica. */
static void
check_conflicts(struct sim *s, long *n_conf)
{
    int i;

    *n_conf = 0;
    for (i = 0; i < N; i++) {
        sqlite3_stmt *st = NULL;
        ASSERT_EQ(sqlite3_prepare_v2(replica_db(s->r[i]),
                                     "SELECT local_hlc, local_author,"
                                     " remote_hlc, remote_author, pk,"
                                     " CASE col WHEN '(row)' THEN 0"
                                     " WHEN 'a' THEN 1 WHEN 'b' THEN 2"
                                     " ELSE 3 END FROM kz_conflict",
                                     -1, &st, NULL),
                  SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
            int pk = atoi((const char *)sqlite3_column_text(st, 4) + 1);
            uint32_t col = (uint32_t)sqlite3_column_int(st, 5);
            struct ver *l = ver_find(s, (uint64_t)sqlite3_column_int64(st, 0),
                                     sqlite3_column_blob(st, 1), pk, col);
            struct ver *r = ver_find(s, (uint64_t)sqlite3_column_int64(st, 2),
                                     sqlite3_column_blob(st, 3), pk, col);
            ASSERT(l != NULL && r != NULL);
            if (vc_le(l->vc, r->vc) || vc_le(r->vc, l->vc))
                dump_cell(s, l->pk, l->col, l, r);
            if (vc_le(l->vc, r->vc) || vc_le(r->vc, l->vc))
                T_FAIL_("conflict between sequential versions (replica %d):"
                        " k%d cell %u, local vc %d.%d.%d.%d, remote vc"
                        " %d.%d.%d.%d",
                        i, l->pk, l->col, l->vc[0], l->vc[1], l->vc[2],
                        l->vc[3], r->vc[0], r->vc[1], r->vc[2], r->vc[3]);
            l->mentioned = r->mentioned = 1;
            (*n_conf)++;
        }
        sqlite3_finalize(st);
    }
}

/* Every version not seen by the final winner's author was reported. */
static void
check_nothing_silently_lost(struct sim *s, long *n_lost)
{
    size_t i, j;

    *n_lost = 0;
    for (i = 0; i < s->n_vers; i++) {
        struct ver *w = &s->vers[i], *f = w;
        for (j = 0; j < s->n_vers; j++) {
            struct ver *x = &s->vers[j];
            if (x->pk == w->pk && x->col == w->col && ver_cmp(x, f) > 0)
                f = x;
        }
        if (f == w || vc_le(w->vc, f->vc))
            continue;
        (*n_lost)++;
        if (!w->mentioned)
            dump_cell(s, w->pk, w->col, w, f);
        if (!w->mentioned)
            T_FAIL_("version of k%d cell %u lost without a conflict record",
                    w->pk, w->col);
    }
}

static void
run(uint64_t seed, int steps)
{
    struct sim s;
    struct tclock clock;
    char d0[65];
    long n_conf, n_lost;
    int i, step;

    memset(&s, 0, sizeof(s));
    s.rng = seed * 2654435761u + 1;
    s.log = calloc(MAX_LOG, sizeof(*s.log));
    s.vers = calloc(MAX_VER, sizeof(*s.vers));
    s.cs_vc = calloc((size_t)N * MAX_LOG, sizeof(*s.cs_vc));
    ASSERT(s.log && s.vers && s.cs_vc);
    tmpdir_make(s.dir, sizeof(s.dir));
    tclock_init(&clock, kz_env_wall_ms(kz_env_system()));
    for (i = 0; i < N; i++) {
        char name[8];
        snprintf(name, sizeof(name), "r%d", i);
        s.r[i] = replica_test_new(s.dir, name, &clock.env, REPLICA_ROLE_ADMIN,
                                  "LAND");
        memcpy(s.key[i], replica_device_key(s.r[i]), 32);
        sql_ok(s.r[i], "CREATE TABLE item(id TEXT PRIMARY KEY, a INTEGER,"
                       " b TEXT, c REAL)");
        ASSERT_OK(replica_track(
            s.r[i], "item",
            &(struct track_decl){"network", NULL, NULL, NULL, NULL, NULL}));
    }
    for (step = 0; step < steps; step++) {
        int who = (int)rndn(&s, N);
        uint32_t op = rndn(&s, 100);

        clock.ms += rndn(&s, 3);
        if (op < 50)
            local_write(&s, who);
        else if (op < 68)
            push(&s, who);
        else if (op < 90)
            pull(&s, who, 1 + rndn(&s, 6));
        else if (op < 95)
            redeliver(&s, who);
        else
            offer_ahead(&s, who);
    }
    for (i = 0; i < N; i++)
        push(&s, i);
    for (i = 0; i < N; i++)
        pull(&s, i, MAX_LOG);
    digest_hex(s.r[0], NULL, d0);
    for (i = 1; i < N; i++) {
        char d[65];
        digest_hex(s.r[i], NULL, d);
        if (strcmp(d, d0) != 0)
            T_FAIL_("seed %" PRIu64 ": replica %d diverged", seed, i);
    }
    check_conflicts(&s, &n_conf);
    check_nothing_silently_lost(&s, &n_lost);
    fprintf(stderr,
            "seed %" PRIu64 ": %d steps, %zu changesets, %zu versions, %ld "
            "conflict records, %ld concurrent losses\n",
            seed, steps, s.n_log, s.n_vers, n_conf, n_lost);
    ASSERT_GT(n_conf, 0); /* the workload really is concurrent */
    for (i = 0; i < N; i++)
        replica_free(s.r[i]);
    for (i = 0; i < (int)s.n_log; i++)
        free(s.log[i].body);
    free(s.log);
    free(s.vers);
    free(s.cs_vc);
    tmpdir_rm(s.dir);
}

static int
env_int(const char *name, int def)
{
    const char *v = getenv(name);
    return v ? atoi(v) : def;
}

TEST(random_edits_converge_with_exact_conflicts)
{
    const char *seed = getenv("KZ_SEED");
    int steps = env_int("KZ_STEPS", 4000);

    if (seed) {
        run(strtoull(seed, NULL, 10), steps);
        return;
    }
    for (uint64_t n = 1; n <= 5; n++)
        run(n, steps);
}

T_MAIN(T(random_edits_converge_with_exact_conflicts))
