/*
 * bench_load.c: many clients against one kzsyncd over loopback.
 *
 *     bench_load [--reps N] [--clients N] [--window N] [--seconds S]
 *                [--body BYTES] [--idle N] [--idle-wait S] [--no-push]
 *                [--no-idle] [--perf-idle FILE]
 *
 * Every repetition sets up a fresh network with the real command line
 * (bench_net.h: kzsyncd init/trust/run, kzsync init LAND
 * --create-network, kzsync sync LAND), then enrolls the load devices the
 * way `kzsync member add` does, only N at once: the roster kept in LAND's
 * replica is decoded with the admin key, bumped, given N members (role
 * site, each its own site L0001…, keys derived from the index), signed by
 * LAND's identity (kzc_save_roster) and uploaded by `kzsync sync LAND`
 * (ROSTER_PUT).
 *
 * push (--clients, default 100): one libuv loop, one connection per
 * device (client/conn.c: Noise XX, then HELLO/WELCOME).  When all are
 * ready, each keeps --window (default 1) PUSHes in flight: a changeset of
 * its scope site:L…, author_seq 1, 2, 3 …, header from kz_cs_header_encode,
 * a --body byte body (default 200), Ed25519 signature over header ‖ body.
 * The changesets are made and signed before the timed part, so that the
 * generator's CPU (it shares the machine) goes to the network only.  The
 * latency of a push is from conn_send to its PUSH_ACK (durable: the server
 * acknowledges after its group commit, synchronous=FULL).  The first
 * second is warm-up; pushes sent in the next --seconds (default 10) are
 * counted and their latencies kept.  Every reply must be a PUSH_ACK.
 *
 * idle (--idle, default 1000): as many devices connect, complete the
 * handshake and HELLO/WELCOME, and then sit idle --idle-wait seconds
 * (default 5); kzsyncd's VmRSS (/proc/PID/status) is read before the
 * first connection and after the wait.  max_connections is raised in the
 * bench's kzsyncd.conf; RLIMIT_NOFILE must allow it (bench_net.sh).
 *
 * --perf-idle FILE: in the first idle repetition, `perf record -e
 * page-faults --call-graph dwarf` is attached to kzsyncd from before the
 * first connection to the end of the wait: who touches the memory.
 */
#include <sodium.h>
#include <sqlite3.h>
#include <sys/resource.h>

#include <uv.h>

#include "bench_net.h"

#include "alloc.h"
#include "changeset.h"
#include "conn.h"
#include "crypto.h"
#include "ctx.h"
#include "err.h"
#include "join.h"
#include "msg.h"
#include "roster.h"

#define MAX_WINDOW 64

/* One load device. */
struct dev {
    char name[32], site[16], scope[32];
    struct kz_sign_pk spk;
    struct kz_sign_sk ssk;
    struct kz_dh_pk dpk;
    struct kz_dh_sk dsk;
};

static void
make_dev(struct dev *d, int i)
{
    uint8_t seed[32], dseed[32], in[16];

    snprintf(d->name, sizeof(d->name), "load-%04d", i + 1);
    snprintf(d->site, sizeof(d->site), "L%04d", i + 1);
    snprintf(d->scope, sizeof(d->scope), "site:%s", d->site);
    memset(in, 0, sizeof(in));
    snprintf((char *)in, sizeof(in), "s%d", i);
    if (kz_hash(seed, 32, in, sizeof(in)) != 0)
        bn_die("hash");
    in[0] = 'd';
    if (kz_hash(dseed, 32, in, sizeof(in)) != 0)
        bn_die("hash");
    memcpy(d->dsk.b, dseed, 32);
    if (kz_sign_seed_keypair(&d->spk, &d->ssk, seed) != 0 ||
        kz_dh_public(&d->dpk, &d->dsk) != 0)
        bn_die("keys");
}

/* Adds devices [0, n) to LAND's roster and uploads it. */
static void
enroll(struct bn_net *n, const struct dev *devs, int count)
{
    struct kzc k;
    struct roster *r = NULL;
    uint8_t *bytes = NULL;
    size_t len = 0;
    const char *why = NULL;
    char cmd[2048];
    int i, err;

    memset(&k, 0, sizeof(k));
    if ((err = kzc_open(&k, n->land)))
        bn_die("kzc_open %s: %s", n->land, k.err);
    if ((err = replica_meta_get_blob(k.r, "roster", &bytes, &len)))
        bn_die("no roster in %s", n->land);
    if ((err = roster_decode(&r, bytes, len, &k.admin, &why)))
        bn_die("roster_decode: %s", why ? why : kz_err_name(err));
    kz_free(bytes);
    if ((err = roster_bump(r)))
        bn_die("roster_bump");
    for (i = 0; i < count; i++)
        if ((err = roster_add_member(r, devs[i].name, devs[i].site,
                                     ROSTER_ROLE_SITE, &devs[i].spk,
                                     &devs[i].dpk)))
            bn_die("roster_add_member %s: %s", devs[i].name, kz_err_name(err));
    if ((err = kzc_save_roster(&k, r)))
        bn_die("kzc_save_roster: %s", k.err);
    roster_free(r);
    kzc_close(&k);
    snprintf(cmd, sizeof(cmd), "'%s' sync '%s'", bn_kzsync, n->land);
    bn_run_ok(NULL, 0, n->log, "kzsync sync land (roster upload)", cmd);
}

/* ---- the load generator ----------------------------------------------------
 */

/* A prepared PUSH. */
struct pre {
    uint8_t hdr[KZ_LIM_CS_HEADER_MAX];
    size_t hdr_len;
    uint8_t sig[64];
    double sent; /* uv_hrtime at conn_send, s */
};

struct gen;

struct cli {
    struct gen *g;
    struct conn *conn;
    int idx;
    int ready;      /* WELCOME received */
    int closed;     /* on_close ran */
    uint32_t next;  /* next author_seq to send (1-based) */
    uint32_t acked; /* PUSH_ACKs received */
    uint32_t inflight;
    struct pre *pre; /* n_pre prepared pushes, pre[i] has author_seq i+1 */
    uint32_t n_pre;
    uint8_t *body; /* shared by its pushes */
};

struct gen {
    uv_loop_t loop;
    uv_timer_t timer;
    struct cli *c;
    const struct dev *devs;
    int n;
    int opened; /* conn_open calls made */
    int n_ready, n_closed;
    int pushing; /* 1 while sending */
    int window;
    size_t body_len;
    double t_start, t_warm, t_end;
    /* measurement */
    double *lat;
    size_t n_lat, cap_lat;
    uint64_t acks_in_window, sent_in_window;
    int exhausted;
    int failed;
    char why[300];
    /* idle mode */
    int idle;
    double idle_wait;
    pid_t srv_pid;
    long rss_before, rss_after, hwm_after;
    double t_all_ready;
    int phase; /* 0 connecting, 1 running, 2 draining, 3 closing */
    struct kz_dh_pk server_pk;
    const char *addr;
};

static double
hr_s(void)
{
    return (double)uv_hrtime() / 1e9;
}

static void gen_fail(struct gen *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
gen_fail(struct gen *g, const char *fmt, ...)
{
    va_list ap;

    if (g->failed)
        return;
    g->failed = 1;
    va_start(ap, fmt);
    vsnprintf(g->why, sizeof(g->why), fmt, ap);
    va_end(ap);
}

static void
send_push(struct cli *c)
{
    struct gen *g = c->g;
    struct pre *p;
    struct kz_msg m;
    int err;

    if (c->next > c->n_pre) {
        g->exhausted = 1;
        return;
    }
    p = &c->pre[c->next - 1];
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_PUSH;
    m.push.req = c->next;
    m.push.scope.p = g->devs[c->idx].scope;
    m.push.scope.len = strlen(g->devs[c->idx].scope);
    m.push.hdr.p = p->hdr;
    m.push.hdr.len = p->hdr_len;
    m.push.body.p = c->body;
    m.push.body.len = g->body_len;
    m.push.sig = p->sig;
    p->sent = hr_s();
    if (p->sent >= g->t_warm && p->sent < g->t_end)
        g->sent_in_window++;
    if ((err = conn_send(c->conn, &m)) != 0) {
        gen_fail(g, "conn_send: %s", kz_err_name(err));
        return;
    }
    c->next++;
    c->inflight++;
}

static void
fill(struct cli *c)
{
    while (c->g->pushing && !c->g->failed &&
           c->inflight < (uint32_t)c->g->window && c->next <= c->n_pre)
        send_push(c);
    if (c->next > c->n_pre)
        c->g->exhausted = 1;
}

static void
on_ready(struct conn *conn, void *data)
{
    struct cli *c = data;
    struct kz_msg m;
    static const char sw[] = "bench_load/0.1";

    kz_msg_hello(&m, sw);
    if (conn_send(conn, &m) != 0)
        gen_fail(c->g, "cannot send HELLO");
}

static void
on_msg(struct conn *conn, const struct kz_msg *m, void *data)
{
    struct cli *c = data;
    struct gen *g = c->g;

    (void)conn;
    switch (m->type) {
    case KZ_MSG_WELCOME:
        if (!c->ready) {
            c->ready = 1;
            g->n_ready++;
        }
        return;
    case KZ_MSG_PUSH_ACK: {
        uint32_t seq = m->push_ack.req;
        double now = hr_s();
        struct pre *p;
        if (seq == 0 || seq >= c->next) {
            gen_fail(g, "PUSH_ACK for an unknown req %u", seq);
            return;
        }
        if (m->push_ack.duplicate) {
            gen_fail(g, "PUSH_ACK says duplicate");
            return;
        }
        p = &c->pre[seq - 1];
        c->acked++;
        c->inflight--;
        if (p->sent >= g->t_warm && p->sent < g->t_end) {
            g->acks_in_window++;
            if (g->n_lat < g->cap_lat)
                g->lat[g->n_lat++] = now - p->sent;
        }
        fill(c);
        return;
    }
    case KZ_MSG_PING: {
        struct kz_msg r = *m;
        r.type = KZ_MSG_PONG;
        if (conn_send(conn, &r) != 0)
            gen_fail(g, "cannot send PONG");
        return;
    }
    case KZ_MSG_NOTIFY: return;
    case KZ_MSG_ERROR:
        gen_fail(g, "client %d: ERROR %u: %.*s", c->idx, m->error.code,
                 (int)m->error.text.len, m->error.text.p);
        return;
    default:
        gen_fail(g, "client %d: unexpected %s", c->idx, kz_msg_name(m->type));
    }
}

static void
on_close(struct conn *conn, int err, const char *why, void *data)
{
    struct cli *c = data;

    (void)conn;
    c->conn = NULL;
    c->closed = 1;
    c->g->n_closed++;
    if (err && c->g->phase < 3)
        gen_fail(c->g, "client %d closed: %s", c->idx, why);
}

static void
close_all(struct gen *g)
{
    int i;

    g->phase = 3;
    for (i = 0; i < g->opened; i++)
        if (g->c[i].conn && !g->c[i].closed)
            conn_close(g->c[i].conn);
}

static void
on_tick(uv_timer_t *t)
{
    struct gen *g = t->data;
    static const struct conn_cbs cbs = {on_ready, on_msg, on_close};
    double now = hr_s();
    int i;

    if (g->failed && g->phase < 3) {
        close_all(g);
    }
    switch (g->phase) {
    case 0: /* open connections, 50 per 10 ms tick */
        for (i = 0; i < 50 && g->opened < g->n; i++) {
            struct conn_opts co;
            struct cli *c = &g->c[g->opened];
            int err;
            memset(&co, 0, sizeof(co));
            co.server = g->addr;
            co.sk = &g->devs[g->opened].dsk;
            co.server_pk = &g->server_pk;
            co.timeout_ms = 0;
            c->g = g;
            c->idx = g->opened;
            if ((err = conn_open(&c->conn, &g->loop, &co, &cbs, c)))
                bn_die("conn_open: %s", kz_err_name(err));
            g->opened++;
        }
        if (g->n_ready == g->n) {
            g->t_all_ready = now;
            g->phase = 1;
            if (g->idle) {
                g->t_end = now + g->idle_wait;
            } else {
                g->t_start = now;
                g->t_warm = now + 1.0;
                g->t_end = g->t_warm + (g->t_end - 0);
                g->pushing = 1;
                for (i = 0; i < g->n; i++)
                    fill(&g->c[i]);
            }
        } else if (now - g->t_start > 60) {
            gen_fail(g, "only %d of %d connections ready after 60 s",
                     g->n_ready, g->n);
        }
        break;
    case 1:
        if (now >= g->t_end) {
            if (g->idle) {
                g->rss_after = bn_proc_kb(g->srv_pid, "VmRSS:");
                g->hwm_after = bn_proc_kb(g->srv_pid, "VmHWM:");
                close_all(g);
            } else {
                g->pushing = 0;
                g->phase = 2;
                g->t_start = now; /* drain deadline base */
            }
        }
        break;
    case 2: {
        int busy = 0;
        for (i = 0; i < g->n; i++)
            busy += g->c[i].inflight > 0;
        if (busy == 0 || now - g->t_start > 10) {
            if (busy)
                gen_fail(g, "%d clients still waiting for acks after 10 s",
                         busy);
            close_all(g);
        }
        break;
    }
    default:
        if (g->n_closed == g->opened || now - g->t_start > 120)
            uv_timer_stop(t);
        break;
    }
}

/* Prepares ${per} signed pushes for every client. */
static void
prepare(struct gen *g, uint32_t per)
{
    int i;
    uint32_t k;

    for (i = 0; i < g->n; i++) {
        struct cli *c = &g->c[i];
        const struct dev *d = &g->devs[i];
        uint8_t *both = malloc(KZ_LIM_CS_HEADER_MAX + g->body_len);
        c->pre = calloc(per, sizeof(*c->pre));
        c->body = malloc(g->body_len);
        c->n_pre = per;
        c->next = 1;
        if (both == NULL || c->pre == NULL || c->body == NULL)
            bn_die("out of memory");
        randombytes_buf(c->body, g->body_len);
        for (k = 0; k < per; k++) {
            struct kz_cs_header h;
            struct kz_sign_sig sig;
            uint8_t *hb = NULL;
            size_t hl = 0;
            memset(&h, 0, sizeof(h));
            h.format = KZ_CS_FORMAT;
            snprintf(h.scope, sizeof(h.scope), "%s", d->scope);
            memcpy(h.author, d->spk.b, 32);
            h.author_seq = k + 1;
            h.epoch = 0;
            h.n_cells = 1;
            h.n_rows = 1;
            h.hlc_min = h.hlc_max = ((uint64_t)1700000000000 << 16) + k;
            if (kz_cs_header_encode(&h, &hb, &hl) != 0 ||
                hl > KZ_LIM_CS_HEADER_MAX)
                bn_die("kz_cs_header_encode");
            memcpy(c->pre[k].hdr, hb, hl);
            c->pre[k].hdr_len = hl;
            memcpy(both, hb, hl);
            memcpy(both + hl, c->body, g->body_len);
            kz_free(hb);
            if (kz_sign_detached(&sig, both, hl + g->body_len, &d->ssk))
                bn_die("sign");
            memcpy(c->pre[k].sig, sig.b, 64);
        }
        free(both);
    }
}

static double
cpu_self(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int
cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
pct(const double *v, size_t n, double p)
{
    size_t i;

    if (n == 0)
        return 0;
    i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

struct push_res {
    double rate, p50, p99, p999, max, cpu_srv, cpu_gen, secs;
    uint64_t acks;
};

struct idle_res {
    long rss0, rss1, hwm;
    double connect_s;
};

static void
gen_run(struct gen *g)
{
    int i;

    if (uv_loop_init(&g->loop) != 0)
        bn_die("uv_loop_init");
    uv_timer_init(&g->loop, &g->timer);
    g->timer.data = g;
    g->t_start = hr_s();
    uv_timer_start(&g->timer, on_tick, 0, 10);
    uv_run(&g->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&g->timer, NULL);
    uv_run(&g->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&g->loop) != 0)
        fprintf(stderr, "bench_load: loop not empty at close\n");
    for (i = 0; i < g->n; i++) {
        free(g->c[i].pre);
        free(g->c[i].body);
    }
}

static void
run_push(const struct dev *devs, int clients, int window, double secs,
         size_t body_len, struct push_res *out)
{
    struct bn_net n;
    struct gen g;
    uint32_t per;
    double c0, s0, c1, s1;

    bn_setup(&n, "load", (unsigned)clients + 64, "warning");
    enroll(&n, devs, clients);
    memset(&g, 0, sizeof(g));
    g.devs = devs;
    g.n = clients;
    g.window = window;
    g.body_len = body_len;
    g.t_end = secs; /* duration; made absolute when all are ready */
    g.addr = n.addr;
    g.srv_pid = n.pid;
    if (serverkey_decode(&g.server_pk, n.server_key) != 0)
        bn_die("bad server key %s", n.server_key);
    /* Enough for 40,000 pushes/s over warm-up + window + margin. */
    per = (uint32_t)((secs + 3) * 40000 / clients) + 16;
    g.c = calloc((size_t)clients, sizeof(*g.c));
    g.cap_lat = (size_t)per * (size_t)clients;
    g.lat = malloc(g.cap_lat * sizeof(double));
    if (g.c == NULL || g.lat == NULL)
        bn_die("out of memory");
    prepare(&g, per);
    c0 = cpu_self();
    s0 = bn_proc_cpu_s(n.pid);
    gen_run(&g);
    c1 = cpu_self();
    s1 = bn_proc_cpu_s(n.pid);
    if (g.failed)
        bn_die("push run failed: %s (server log %s)", g.why, n.srvlog);
    if (g.exhausted)
        bn_die("prepared pushes ran out: raise the cap in run_push");
    qsort(g.lat, g.n_lat, sizeof(double), cmp_d);
    out->acks = g.acks_in_window;
    out->secs = secs;
    out->rate = (double)g.acks_in_window / secs;
    out->p50 = pct(g.lat, g.n_lat, 0.50);
    out->p99 = pct(g.lat, g.n_lat, 0.99);
    out->p999 = pct(g.lat, g.n_lat, 0.999);
    out->max = g.n_lat ? g.lat[g.n_lat - 1] : 0;
    out->cpu_gen = c1 - c0;
    out->cpu_srv = s1 - s0;
    if (g.acks_in_window != g.sent_in_window)
        bn_die("%llu pushes sent in the window, %llu acknowledged",
               (unsigned long long)g.sent_in_window,
               (unsigned long long)g.acks_in_window);
    {
        /* Every acknowledged push is in the store. */
        char path[700];
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        long long stored = -1, acked = 0;
        int i;
        for (i = 0; i < clients; i++)
            acked += g.c[i].acked;
        snprintf(path, sizeof(path), "%s/store.db", n.srv);
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
                SQLITE_OK &&
            sqlite3_prepare_v2(db,
                               "SELECT count(*) FROM kzs_cs WHERE scope LIKE "
                               "'site:L%'",
                               -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            stored = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        if (stored != acked)
            bn_die("%lld pushes acknowledged, %lld stored", acked, stored);
    }
    free(g.lat);
    free(g.c);
    bn_teardown(&n);
}

static void
run_idle(const struct dev *devs, int count, double wait_s, struct idle_res *out,
         const char *perf_file)
{
    struct bn_net n;
    struct gen g;
    pid_t perf = 0;

    bn_setup(&n, "idle", (unsigned)count + 64, "info");
    enroll(&n, devs, count);
    usleep(500000);
    memset(&g, 0, sizeof(g));
    g.devs = devs;
    g.n = count;
    g.idle = 1;
    g.idle_wait = wait_s;
    g.addr = n.addr;
    g.srv_pid = n.pid;
    if (serverkey_decode(&g.server_pk, n.server_key) != 0)
        bn_die("bad server key %s", n.server_key);
    g.c = calloc((size_t)count, sizeof(*g.c));
    if (g.c == NULL)
        bn_die("out of memory");
    if (perf_file) {
        char pidtxt[32];
        char *argv[] = {(char *)"/usr/bin/perf",
                        (char *)"record",
                        (char *)"-e",
                        (char *)"page-faults",
                        (char *)"-c",
                        (char *)"1",
                        (char *)"--call-graph",
                        (char *)"dwarf",
                        (char *)"-o",
                        (char *)perf_file,
                        (char *)"-p",
                        pidtxt,
                        NULL};
        snprintf(pidtxt, sizeof(pidtxt), "%d", (int)n.pid);
        perf = bn_spawn(argv, n.log);
        usleep(1000000);
    }
    g.rss_before = bn_proc_kb(n.pid, "VmRSS:");
    gen_run(&g);
    if (perf)
        bn_stop(perf, SIGINT);
    if (g.failed)
        bn_die("idle run failed: %s (server log %s)", g.why, n.srvlog);
    out->rss0 = g.rss_before;
    out->rss1 = g.rss_after;
    out->hwm = g.hwm_after;
    out->connect_s = g.t_all_ready - g.t_start;
    free(g.c);
    bn_teardown(&n);
}

int
main(int argc, char **argv)
{
    int reps = 3, clients = 100, window = 1, idle = 1000, i, r, do_push = 1,
        do_idle = 1, ndev;
    const char *perf_idle = NULL;
    double secs = 10, idle_wait = 5;
    size_t body = 200;
    struct dev *devs;
    struct rlimit rl;

    bn_prog = "bench_load";
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc)
            clients = atoi(argv[++i]);
        else if (strcmp(argv[i], "--window") == 0 && i + 1 < argc)
            window = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            secs = atof(argv[++i]);
        else if (strcmp(argv[i], "--body") == 0 && i + 1 < argc)
            body = (size_t)atol(argv[++i]);
        else if (strcmp(argv[i], "--idle") == 0 && i + 1 < argc)
            idle = atoi(argv[++i]);
        else if (strcmp(argv[i], "--idle-wait") == 0 && i + 1 < argc)
            idle_wait = atof(argv[++i]);
        else if (strcmp(argv[i], "--no-push") == 0)
            do_push = 0;
        else if (strcmp(argv[i], "--no-idle") == 0)
            do_idle = 0;
        else if (strcmp(argv[i], "--perf-idle") == 0 && i + 1 < argc)
            perf_idle = argv[++i];
        else
            bn_die("usage: see the comment at the top of bench_load.c");
    }
    if (reps < 1 || reps > 64 || clients < 1 || clients > 4000 || window < 1 ||
        window > MAX_WINDOW || secs < 1 || secs > 120 || body < 1 ||
        body > 65536 || idle < 1 || idle > 4000 || idle_wait < 0 ||
        idle_wait > 600)
        bn_die("argument out of range (see bench_load.c)");
    bn_paths();
    signal(SIGPIPE, SIG_IGN);
    if (kz_crypto_init() != 0)
        bn_die("kz_crypto_init");
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
        rl.rlim_cur < (rlim_t)(idle > clients ? idle : clients) + 64)
        bn_die("RLIMIT_NOFILE %lu is too low: ulimit -n 4096",
               (unsigned long)rl.rlim_cur);
    bn_print_machine(argc, argv);
    printf("libuv %s, libsodium %s, sqlite %s; loopback; generator and "
           "kzsyncd share the machine\n",
           uv_version_string(), sodium_version_string(), sqlite3_libversion());
    fflush(stdout);
    ndev = idle > clients ? idle : clients;
    devs = calloc((size_t)ndev, sizeof(*devs));
    if (devs == NULL)
        bn_die("out of memory");
    for (i = 0; i < ndev; i++)
        make_dev(&devs[i], i);

    if (do_push) {
        struct push_res pr[64];
        double v_rate[64], v_p50[64], v_p99[64], v_p999[64], v_max[64],
            v_cs[64], v_cg[64];
        for (r = 0; r < reps; r++) {
            run_push(devs, clients, window, secs, body, &pr[r]);
            fprintf(stderr,
                    "push rep %d: %llu acks in %.0f s = %.0f/s; p50 %.2f ms "
                    "p99 %.2f ms p99.9 %.2f ms max %.2f ms; cpu kzsyncd %.2f "
                    "s, generator %.2f s\n",
                    r + 1, (unsigned long long)pr[r].acks, pr[r].secs,
                    pr[r].rate, pr[r].p50 * 1e3, pr[r].p99 * 1e3,
                    pr[r].p999 * 1e3, pr[r].max * 1e3, pr[r].cpu_srv,
                    pr[r].cpu_gen);
            v_rate[r] = pr[r].rate;
            v_p50[r] = pr[r].p50 * 1e3;
            v_p99[r] = pr[r].p99 * 1e3;
            v_p999[r] = pr[r].p999 * 1e3;
            v_max[r] = pr[r].max * 1e3;
            v_cs[r] = pr[r].cpu_srv;
            v_cg[r] = pr[r].cpu_gen;
        }
        printf("\npush: %d clients, window %d, body %zu B, %.0f s measured "
               "after 1 s warm-up; medians of %d repetitions\n",
               clients, window, body, secs, reps);
        printf("   durable acknowledged pushes/s     %9.0f        target >= "
               "5000\n",
               bn_median(v_rate, reps));
        printf("   ack latency p50                   %9.2f ms\n",
               bn_median(v_p50, reps));
        printf("   ack latency p99                   %9.2f ms     target <= "
               "50 ms\n",
               bn_median(v_p99, reps));
        printf("   ack latency p99.9 / max           %9.2f / %.2f ms\n",
               bn_median(v_p999, reps), bn_median(v_max, reps));
        printf("   CPU during the run (incl. warm-up and drain): kzsyncd "
               "%.2f s, generator %.2f s\n",
               bn_median(v_cs, reps), bn_median(v_cg, reps));
        fflush(stdout);
    }
    if (do_idle) {
        struct idle_res ir[64];
        double v0[64], v1[64], vh[64], vc[64];
        for (r = 0; r < reps; r++) {
            run_idle(devs, idle, idle_wait, &ir[r], r == 0 ? perf_idle : NULL);
            fprintf(stderr,
                    "idle rep %d: kzsyncd VmRSS %.1f MiB before, %.1f MiB "
                    "with %d idle sessions (VmHWM %.1f MiB); all ready in "
                    "%.2f s\n",
                    r + 1, ir[r].rss0 / 1024.0, ir[r].rss1 / 1024.0, idle,
                    ir[r].hwm / 1024.0, ir[r].connect_s);
            v0[r] = ir[r].rss0 / 1024.0;
            v1[r] = ir[r].rss1 / 1024.0;
            vh[r] = ir[r].hwm / 1024.0;
            vc[r] = ir[r].connect_s;
        }
        printf("\nidle: %d authenticated sessions (handshake + HELLO/WELCOME),"
               " idle %.0f s; medians of %d repetitions\n",
               idle, idle_wait, reps);
        printf("   kzsyncd VmRSS before connecting   %9.1f MiB\n",
               bn_median(v0, reps));
        printf("   kzsyncd VmRSS with %d idle        %9.1f MiB    target <= "
               "64 MiB\n",
               idle, bn_median(v1, reps));
        printf("   per session                       %9.1f KiB\n",
               (bn_median(v1, reps) - bn_median(v0, reps)) * 1024.0 / idle);
        printf("   kzsyncd VmHWM                     %9.1f MiB\n",
               bn_median(vh, reps));
        printf("   all %d ready (handshake + HELLO) in %6.2f s\n", idle,
               bn_median(vc, reps));
    }
    free(devs);
    return 0;
}
