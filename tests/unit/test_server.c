/*
 * test_server.c: kzsyncd's listener and sessions (server/server.c,
 * session.c) in this process, on loopback, with the allocator's fault hook,
 * or with an enrolled device that speaks the protocol (Noise handshake,
 * HELLO, requests) on the same loop.
 *
 * Each test runs its own uv_loop_t and temporary directory, drives the loop
 * with RUN_UNTIL(cond), bounded by a deadline, and stops the server at the
 * end.  Tests that need the server's internals (a session's PULL state, the
 * store) read them through server_int.h.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <limits.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>
#include <uv.h>

#include "alloc.h"
#include "chan.h"
#include "changeset.h"
#include "env.h"
#include "err.h"
#include "errcode.h"
#include "join.h"
#include "keyfile.h"
#include "log.h"
#include "msg.h"
#include "roster.h"
#include "seal.h"
#include "server.h"
#include "store.h"
#include "store_job.h"

#include "server_int.h"

#include "t.h"
#include "loop_util.h"

#define DEADLINE_NS (UINT64_C(10) * 1000 * 1000 * 1000)

/* A loopback client that only connects and notes the server's close. */
struct cli {
    uv_tcp_t tcp;
    uv_connect_t req;
    int connected, eof, closed;
};

static void
cli_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char b[4096];

    (void)h;
    (void)hint;
    *buf = uv_buf_init(b, sizeof(b));
}

static void
cli_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct cli *c = st->data;

    (void)buf;
    if (n < 0)
        c->eof = 1;
}

static void
cli_connected(uv_connect_t *req, int status)
{
    struct cli *c = req->data;

    ASSERT_EQ(status, 0);
    c->connected = 1;
    ASSERT_OK(uv_read_start((uv_stream_t *)&c->tcp, cli_alloc, cli_read));
}

static void
cli_closed(uv_handle_t *h)
{
    ((struct cli *)h->data)->closed = 1;
}

static void
cli_connect(uv_loop_t *loop, struct cli *c, int port)
{
    struct sockaddr_in a;

    memset(c, 0, sizeof(*c));
    ASSERT_OK(uv_ip4_addr("127.0.0.1", port, &a));
    ASSERT_OK(uv_tcp_init(loop, &c->tcp));
    c->tcp.data = c->req.data = c;
    ASSERT_OK(
        uv_tcp_connect(&c->req, &c->tcp, (struct sockaddr *)&a, cli_connected));
}

struct fixture {
    char dir[PATH_MAX];
    uv_loop_t loop;
    struct server *srv;
    struct kz_dh_pk server_pk; /* the server's Noise static key */
    int port, stopped;
};

/* The temporary directory, removed at exit even when a test fails. */
static char tmp_dir[PATH_MAX];

static void
remove_tmp_dir(void)
{
    char p[PATH_MAX + 256];
    struct dirent *e;
    DIR *d;

    if (tmp_dir[0] == '\0' || (d = opendir(tmp_dir)) == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", tmp_dir, e->d_name);
        (void)unlink(p);
    }
    closedir(d);
    (void)rmdir(tmp_dir);
    tmp_dir[0] = '\0';
}

static void
on_stopped(void *data)
{
    ((struct fixture *)data)->stopped = 1;
}

/* A loopback port free a moment ago (the kernel picks it; another process
 * could take it before the server binds it, which fails the test loudly). */
static int
free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    ASSERT(fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_OK(bind(fd, (struct sockaddr *)&a, sizeof(a)));
    ASSERT_OK(getsockname(fd, (struct sockaddr *)&a, &len));
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* The temporary directory and the loop; no server yet. */
static void
fixture_init(struct fixture *f)
{
    const char *base = getenv("TMPDIR");

    memset(f, 0, sizeof(*f));
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    ASSERT_LT(snprintf(f->dir, sizeof(f->dir), "%s/kzserver.XXXXXX", base),
              (int)sizeof(f->dir));
    ASSERT(mkdtemp(f->dir) != NULL);
    snprintf(tmp_dir, sizeof(tmp_dir), "%s", f->dir);
    atexit(remove_tmp_dir);
    ASSERT_OK(uv_loop_init(&f->loop));
}

/* A server on f->dir with ${cfg} (its listen address is set here). */
static void
fixture_serve(struct fixture *f, struct config *cfg)
{
    struct kz_identity id;

    f->port = free_port();
    snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:%d", f->port);
    ASSERT_OK(keyfile_generate_server(&id, kz_env_system()));
    f->server_pk = id.dh_pk;
    ASSERT_OK(server_new(&f->srv, &f->loop, f->dir, cfg, &id));
    keyfile_wipe(&id);
    ASSERT_OK(server_listen(f->srv));
}

static void
fixture_start(struct fixture *f, uint32_t max_connections)
{
    struct config cfg;

    fixture_init(f);
    config_defaults(&cfg);
    cfg.max_connections = max_connections;
    fixture_serve(f, &cfg);
}

static void
fixture_stop(struct fixture *f)
{
    server_stop(f->srv, on_stopped, f);
    RUN_UNTIL(&f->loop, f->stopped);
    ASSERT_OK(uv_run(&f->loop, UV_RUN_DEFAULT));
    ASSERT_OK(uv_loop_close(&f->loop));
    remove_tmp_dir();
    ASSERT_EQ(access(f->dir, F_OK), -1);
}

static uint64_t
stat_of(struct fixture *f, int which)
{
    struct server_stats st;

    server_get_stats(f->srv, &st);
    return which == 0 ? st.accepted : which == 1 ? st.refused : st.sessions;
}

/*
 * No memory for a session: the connection is closed at once, and the
 * listener goes on accepting.  (libuv stops watching a listener whose
 * connection callback accepted nothing: before, every later connection
 * waited forever.)  Two at once while memory is out: the second waits for
 * the spare handle, and is closed too.
 */
TEST(listener_survives_out_of_memory_at_accept)
{
    struct fixture f;
    struct cli c[4];
    int i;

    fixture_start(&f, 1024);

    kz_alloc_fail_after(0);
    cli_connect(&f.loop, &c[0], f.port);
    RUN_UNTIL(&f.loop, c[0].eof);
    cli_connect(&f.loop, &c[1], f.port);
    cli_connect(&f.loop, &c[2], f.port);
    RUN_UNTIL(&f.loop, c[1].eof && c[2].eof);
    kz_alloc_fail_after(-1);
    ASSERT_EQ(stat_of(&f, 1), 3); /* refused */
    ASSERT_EQ(stat_of(&f, 0), 0); /* accepted */

    /* Memory is back: the next connection gets a session. */
    cli_connect(&f.loop, &c[3], f.port);
    RUN_UNTIL(&f.loop, c[3].connected && stat_of(&f, 0) == 1);
    ASSERT_EQ(stat_of(&f, 2), 1);
    ASSERT_EQ(c[3].eof, 0);

    for (i = 0; i < 4; i++)
        uv_close((uv_handle_t *)&c[i].tcp, cli_closed);
    RUN_UNTIL(&f.loop,
              c[0].closed && c[1].closed && c[2].closed && c[3].closed);
    fixture_stop(&f);
}

/* Memory comes back while a connection waits for the spare handle: it gets
 * a session, and the spare (closed by then) does not count against
 * max_connections. */
static void
memory_back(uv_check_t *h)
{
    struct fixture *f = h->data;
    struct server_stats st;

    server_get_stats(f->srv, &st);
    if (st.refused >= 1)
        kz_alloc_fail_after(-1);
}

TEST(connection_waiting_on_the_spare_counts_only_itself)
{
    struct fixture f;
    struct cli c[2];
    uv_check_t chk;
    int i;

    fixture_start(&f, 1);
    ASSERT_OK(uv_check_init(&f.loop, &chk));
    chk.data = &f;
    ASSERT_OK(uv_check_start(&chk, memory_back));
    kz_alloc_fail_after(0);
    cli_connect(&f.loop, &c[0], f.port);
    cli_connect(&f.loop, &c[1], f.port);
    RUN_UNTIL(&f.loop, c[0].eof && stat_of(&f, 0) == 1);
    kz_alloc_fail_after(-1);
    ASSERT_EQ(stat_of(&f, 1), 1); /* refused: the first only */
    ASSERT_EQ(stat_of(&f, 2), 1);
    ASSERT_EQ(c[1].eof, 0);
    uv_close((uv_handle_t *)&chk, NULL);
    for (i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&c[i].tcp, cli_closed);
    RUN_UNTIL(&f.loop, c[0].closed && c[1].closed);
    fixture_stop(&f);
}

/* ---- an enrolled device on the test's loop -------------------------- */

/* A device that speaks the protocol: Noise handshake, HELLO, requests.
 * What it receives is noted per message type. */
struct dev {
    uv_tcp_t tcp;
    uv_connect_t req;
    struct kz_chan *chan;       /* Noise channel, initiator */
    int connected, eof, closed; /* connect done; EOF or error; closed */
    int welcomed;               /* WELCOME received */
    uint32_t batches;           /* BATCH messages received */
    uint32_t batch_items;       /* items in them */
    uint32_t batch_req;         /* req of the last BATCH */
    int batch_done;             /* the last BATCH had done = true */
    uint32_t errors;            /* ERROR messages received */
    uint32_t error_req;         /* req of the last ERROR */
    uint32_t error_code;        /* its code */
    char error_text[257];       /* its text */
    uint32_t pongs;             /* PONG messages received */
    uint64_t pong_nonce;        /* nonce of the last PONG */
    uint32_t oks;               /* OK messages received */
    uint32_t ok_req;            /* req of the last OK */
    uint32_t acks;              /* PUSH_ACK messages received */
    uint32_t notifies;          /* NOTIFY messages received */
    char notify_scope[65];      /* scope of the last NOTIFY */
    uint64_t notify_seq;        /* its server_seq */
    uint32_t keys_msgs;         /* KEYS messages received */
    uint32_t keys_n;            /* envelopes in them */
    uint64_t keys_last_id;      /* id of the last envelope received */
    int keys_done;              /* the last KEYS had done = true */
    char keys_scopes[64];       /* their scopes' first letters, in order */
};

/* One uv_write in flight and the bytes it sends. */
struct dev_write {
    uv_write_t req;
    uint8_t bytes[]; /* live until dev_written */
};

static void
dev_written(uv_write_t *req, int status)
{
    struct dev_write *w = (struct dev_write *)req; /* req comes first */

    (void)status; /* a failed write shows up as the server's silence */
    free(w);
}

/* Sends what the channel has buffered. */
static void
dev_flush(struct dev *d)
{
    struct kz_buf *out = kz_chan_out(d->chan);
    struct dev_write *w;
    uv_buf_t b;

    if (out->len == 0)
        return;
    w = malloc(sizeof(*w) + out->len);
    ASSERT(w != NULL);
    memcpy(w->bytes, out->p, out->len);
    b = uv_buf_init((char *)w->bytes, (unsigned)out->len);
    ASSERT_OK(uv_write(&w->req, (uv_stream_t *)&d->tcp, &b, 1, dev_written));
    kz_buf_consume(out, out->len);
}

static void
dev_got(struct dev *d, const struct kz_msg *m)
{
    switch (m->type) {
    case KZ_MSG_WELCOME: d->welcomed = 1; break;
    case KZ_MSG_BATCH:
        d->batches++;
        d->batch_items += m->batch.n_items;
        d->batch_req = m->batch.req;
        d->batch_done = m->batch.done;
        break;
    case KZ_MSG_ERROR:
        d->errors++;
        d->error_req = m->error.req;
        d->error_code = m->error.code;
        snprintf(d->error_text, sizeof(d->error_text), "%.*s",
                 (int)m->error.text.len, m->error.text.p);
        break;
    case KZ_MSG_PONG:
        d->pongs++;
        d->pong_nonce = m->ping.nonce;
        break;
    case KZ_MSG_PUSH_ACK: d->acks++; break;
    case KZ_MSG_NOTIFY:
        d->notifies++;
        snprintf(d->notify_scope, sizeof(d->notify_scope), "%.*s",
                 (int)m->notify.scope.len, m->notify.scope.p);
        d->notify_seq = m->notify.server_seq;
        break;
    case KZ_MSG_OK:
        d->oks++;
        d->ok_req = m->ok.req;
        break;
    case KZ_MSG_KEYS: {
        struct kz_env_info info;
        uint32_t i;
        d->keys_msgs++;
        d->keys_done = m->keys.done;
        for (i = 0; i < m->keys.n_keys; i++, d->keys_n++) {
            ASSERT_GT(m->keys.keys[i].id, d->keys_last_id);
            d->keys_last_id = m->keys.keys[i].id;
            ASSERT_OK(kz_env_decode(&info, m->keys.keys[i].env.p,
                                    m->keys.keys[i].env.len, NULL));
            if (d->keys_n + 1 < sizeof(d->keys_scopes))
                d->keys_scopes[d->keys_n] = info.scope[0];
        }
        break;
    }
    default: break;
    }
}

static void
dev_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct dev *d = st->data;
    const uint8_t *p;
    size_t len;
    int got;

    if (n < 0) {
        d->eof = 1;
        uv_read_stop(st);
        return;
    }
    if (n == 0)
        return;
    ASSERT_OK(kz_chan_feed(d->chan, (const uint8_t *)buf->base, (size_t)n));
    dev_flush(d); /* handshake message 3 */
    while ((got = kz_chan_next(d->chan, &p, &len)) == 1) {
        struct kz_msg m;
        ASSERT_OK(kz_msg_decode(&m, p, len, NULL));
        dev_got(d, &m);
        kz_msg_clear(&m);
    }
    ASSERT_GE(got, 0);
}

static void
dev_connected(uv_connect_t *req, int status)
{
    struct dev *d = req->data;

    ASSERT_EQ(status, 0);
    d->connected = 1;
    ASSERT_OK(uv_read_start((uv_stream_t *)&d->tcp, cli_alloc, dev_read));
    dev_flush(d); /* handshake message 1 */
}

static void
dev_closed(uv_handle_t *h)
{
    ((struct dev *)h->data)->closed = 1;
}

/* Encodes ${m} and sends it. */
static void
dev_send(struct dev *d, const struct kz_msg *m)
{
    struct kz_buf b;

    kz_buf_init(&b, (size_t)1 << 20);
    ASSERT_OK(kz_msg_encode(m, &b));
    ASSERT_OK(kz_chan_send(d->chan, b.p, b.len));
    kz_buf_free(&b);
    dev_flush(d);
}

/* Connects as ${id} to the server of ${f}: handshake, HELLO, WELCOME. */
static void
dev_open(struct dev *d, struct fixture *f, const struct kz_identity *id)
{
    static const char sw[] = "test_server/1";
    struct kz_chan_cfg cc;
    struct sockaddr_in a;
    struct kz_msg m;

    memset(d, 0, sizeof(*d));
    memset(&cc, 0, sizeof(cc));
    cc.initiator = 1;
    cc.s = &id->dh_sk;
    cc.pinned = &f->server_pk;
    cc.env = kz_env_system();
    cc.out_max = (size_t)1 << 20;
    ASSERT_OK(kz_chan_new(&d->chan, &cc));
    ASSERT_OK(uv_ip4_addr("127.0.0.1", f->port, &a));
    ASSERT_OK(uv_tcp_init(&f->loop, &d->tcp));
    d->tcp.data = d->req.data = d;
    ASSERT_OK(
        uv_tcp_connect(&d->req, &d->tcp, (struct sockaddr *)&a, dev_connected));
    RUN_UNTIL(&f->loop, kz_chan_state(d->chan) == KZ_CHAN_READY || d->eof);
    ASSERT_EQ(d->eof, 0);
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_HELLO;
    m.hello.min_version = 1;
    m.hello.max_version = 1;
    m.hello.software.p = sw;
    m.hello.software.len = sizeof(sw) - 1;
    dev_send(d, &m);
    RUN_UNTIL(&f->loop, d->welcomed || d->eof);
    ASSERT_EQ(d->eof, 0);
}

static void
dev_close(struct dev *d, uv_loop_t *loop)
{
    uv_close((uv_handle_t *)&d->tcp, dev_closed);
    RUN_UNTIL(loop, d->closed);
    kz_chan_free(d->chan);
}

/* Sends a PULL of ${n} scopes, each from the start. */
static void
dev_pull(struct dev *d, uint32_t req, const char *const *scopes, uint32_t n)
{
    struct kz_msg_cursor c[4];
    struct kz_msg m;
    uint32_t i;

    ASSERT_LE(n, KZ_ARRAY_SIZE(c));
    memset(c, 0, sizeof(c));
    for (i = 0; i < n; i++) {
        c[i].scope.p = scopes[i];
        c[i].scope.len = strlen(scopes[i]);
    }
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_PULL;
    m.pull.req = req;
    m.pull.cursors = c;
    m.pull.n_cursors = n;
    m.pull.max_bytes = 1u << 20;
    dev_send(d, &m);
}

/* ---- the store, seeded and held --------------------------------------- */

/* Completions of store jobs the test submits itself. */
struct done {
    uint32_t called; /* callbacks run */
    int status;      /* status of the first that failed, or 0 */
};

static void
on_roster_put_done(void *data, int status, uint64_t stored)
{
    struct done *d = data;

    (void)stored;
    d->called++;
    if (d->status == 0)
        d->status = status;
}

static void
on_append_done(void *data, int status, const struct store_append_res *res)
{
    struct done *d = data;

    (void)res;
    d->called++;
    if (d->status == 0)
        d->status = status;
}

static void
on_keys_put_done(void *data, int status, uint64_t last_id)
{
    struct done *d = data;

    (void)last_id;
    d->called++;
    if (d->status == 0)
        d->status = status;
}

static void
on_pull_done(void *data, int status, struct store_pull_res *res)
{
    struct done *d = data;

    (void)res;
    d->called++;
    if (d->status == 0)
        d->status = status;
}

static void
on_store_closed(void *data)
{
    ((struct done *)data)->called++;
}

/* The path of the store's database in ${f}, with ${cfg}'s store_path. */
static void
store_db_path(const struct fixture *f, const struct config *cfg, char *out,
              size_t len)
{
    ASSERT_LT(snprintf(out, len, "%s/%s", f->dir, cfg->store_path), (int)len);
}

/*
 * make_roster(admin, version, member, site): a roster of ${version} where
 * ${admin} is the admin device "hq-1" and, if ${member} is not NULL,
 * ${member} is the site device "han-1" of ${site}.
 */
static struct roster *
make_roster(const struct kz_identity *admin, uint64_t version,
            const struct kz_identity *member, const char *site)
{
    struct roster *r;
    uint64_t v;

    ASSERT_OK(roster_new(&r, &admin->sign_pk));
    for (v = 1; v < version; v++)
        ASSERT_OK(roster_bump(r));
    ASSERT_OK(roster_add_member(r, "hq-1", "HQ", ROSTER_ROLE_ADMIN,
                                &admin->sign_pk, &admin->dh_pk));
    if (member != NULL)
        ASSERT_OK(roster_add_member(r, "han-1", site, ROSTER_ROLE_SITE,
                                    &member->sign_pk, &member->dh_pk));
    return r;
}

/* make_roster, signed by ${admin} into *${bytes} (kz_free). */
static void
signed_roster(const struct kz_identity *admin, uint64_t version,
              const struct kz_identity *member, const char *site,
              uint8_t **bytes, size_t *len)
{
    struct roster *r = make_roster(admin, version, member, site);

    ASSERT_OK(roster_encode_sign(r, &admin->sign_sk, bytes, len));
    roster_free(r);
}

/* Hands ${st} one changeset of ${scope} by ${author} (opaque bytes: the
 * server never opens them); ${app} counts its completion. */
static void
append_cs(struct store *st, const char *scope, const struct kz_identity *author,
          struct done *app)
{
    struct store_cs cs;

    memset(&cs, 0, sizeof(cs));
    snprintf(cs.scope, sizeof(cs.scope), "%s", scope);
    memcpy(cs.author, author->sign_pk.b, sizeof(cs.author));
    cs.author_seq = 1;
    cs.hdr_len = 16;
    cs.body_len = 64;
    cs.hdr = kz_malloc(cs.hdr_len);
    cs.body = kz_malloc(cs.body_len);
    ASSERT(cs.hdr != NULL && cs.body != NULL);
    memset(cs.hdr, 0x48, cs.hdr_len);
    memset(cs.body, 0x42, cs.body_len);
    ASSERT_OK(store_append(st, &cs, on_append_done, app));
}

/*
 * seed_store_with(f, cfg, admin, member): before the server starts, stores
 * in its database a roster (version 1) where ${admin} is the admin device
 * and ${member} (if not NULL) the site device "han-1" of HAN, one
 * changeset in "network" and, with a member, one of it in "site:HAN".
 */
static void
seed_store_with(struct fixture *f, const struct config *cfg,
                const struct kz_identity *admin,
                const struct kz_identity *member)
{
    char path[PATH_MAX + 1024];
    struct store *st;
    struct done put = {0}, app = {0}, closed = {0};
    uint8_t *bytes;
    size_t len;
    uint32_t n = member != NULL ? 2 : 1;

    signed_roster(admin, 1, member, "HAN", &bytes, &len);
    store_db_path(f, cfg, path, sizeof(path));
    ASSERT_OK(store_sqlite_open(&st, &f->loop, path, NULL));
    ASSERT_OK(store_roster_put(st, 1, &bytes, len, on_roster_put_done, &put));
    append_cs(st, "network", admin, &app);
    if (member != NULL)
        append_cs(st, "site:HAN", member, &app);
    RUN_UNTIL(&f->loop, put.called == 1 && app.called == n);
    ASSERT_OK(put.status);
    ASSERT_OK(app.status);
    store_close(st, on_store_closed, &closed);
    RUN_UNTIL(&f->loop, closed.called == 1);
}

/* seed_store_with, then the server of ${f} started with ${cfg}, ${admin}
 * trusted, and its roster in force. */
static void
serve_seeded(struct fixture *f, struct config *cfg,
             const struct kz_identity *admin, const struct kz_identity *member)
{
    seed_store_with(f, cfg, admin, member);
    ASSERT_OK(adminkey_encode(&admin->sign_pk, cfg->admin_key));
    fixture_serve(f, cfg);
    RUN_UNTIL(&f->loop, f->srv->roster_version == 1);
}

/* A second connection to the store's database holding its write lock: the
 * store thread blocks on its next write until release_lock. */
static sqlite3 *
hold_lock(const struct fixture *f, const struct config *cfg)
{
    char path[PATH_MAX + 1024];
    sqlite3 *db = NULL;

    store_db_path(f, cfg, path, sizeof(path));
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

/* The store's counters, waited on from the loop thread (the store thread
 * updates them): until pulls reaches ${pulls} (0: any) and queued is at
 * most ${queued}, or the deadline. */
static void
wait_store(struct store *st, uint64_t pulls, uint64_t queued)
{
    uint64_t dl = uv_hrtime() + DEADLINE_NS;
    struct store_stats ss;

    for (;;) {
        store_stats(st, &ss);
        if (ss.pulls >= pulls && ss.queued <= queued)
            return;
        if (uv_hrtime() > dl)
            T_FAIL_("timed out waiting for the store: pulls %llu, queued %llu",
                    (unsigned long long)ss.pulls,
                    (unsigned long long)ss.queued);
        uv_sleep(1);
    }
}

/*
 * A PULL is served one store read at a time: after the BATCH of the first
 * scope, the session asks the store for the next one (on_pulled →
 * pull_step).  If the store refuses that read because its queue is full,
 * the client gets ERROR BUSY for the PULL, which PROTOCOL.md counts among
 * the refused requests after which "the session continues".  The session
 * stops reading while a PULL runs, so after that refusal it must flush the
 * ERROR and read again (the session_pump at the end of on_pulled).  Before
 * b0468dd it did neither: the ERROR sat in the output buffer, nothing more
 * was read, and the session hung until the idle timeout.  A flush alone
 * delivers the ERROR but leaves the PING below unanswered.
 *
 * Here the store queue is really full at that moment: once the store
 * thread has read the first scope, and before the session gets that
 * result, the test holds the database's write lock, hands the store a
 * write (the store thread blocks on the lock, for at most its busy
 * timeout of 5 s; the test needs milliseconds), and fills the queue with
 * reads until store_pull says -KZ_EAGAIN.  The session's next read of the
 * PULL is then refused by the store's own submit().
 */
TEST(pull_refused_midway_by_a_full_store_queue_reads_again)
{
    static const char *const scopes[] = {"network", "site:HAN"};
    struct kz_identity admin;
    struct store_key key;
    struct store_stats ss;
    struct config cfg;
    struct fixture f;
    struct session *s;
    struct kz_msg m;
    struct done w = {0}, fill = {0};
    struct dev d;
    uv_timer_t tick;
    uint64_t dl;
    uint32_t n_fill;
    uint8_t *env;
    sqlite3 *db;
    int rc;

    ASSERT_OK(keyfile_generate(&admin, kz_env_system()));
    fixture_init(&f);
    config_defaults(&cfg);
    serve_seeded(&f, &cfg, &admin, NULL);
    dev_open(&d, &f, &admin);
    s = f.srv->sessions;
    ASSERT(s != NULL && s->next == NULL && s->admitted);

    /* The PULL is read and its first store read queued; the result of that
     * read has not reached the session yet (it comes through the store's
     * uv_async, on a later turn of the loop).  Not RUN_UNTIL: its last
     * turn, which closes its timer, could deliver that result. */
    store_stats(f.srv->store, &ss);
    dev_pull(&d, 7, scopes, 2);
    ASSERT_OK(uv_timer_init(&f.loop, &tick));
    ASSERT_OK(uv_timer_start(&tick, loop_tick, 10, 10));
    dl = uv_hrtime() + DEADLINE_NS;
    while (!s->pull.active) {
        if (uv_hrtime() > dl)
            T_FAIL_("timed out waiting for the PULL to be read");
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&tick);
    ASSERT_EQ(s->pull.i, 0);

    /* The store thread has read "network"; then it blocks on a write, and
     * the queue fills up behind it. */
    wait_store(f.srv->store, ss.pulls + 1, UINT64_MAX);
    db = hold_lock(&f, &cfg);
    memset(&key, 0, sizeof(key));
    env = kz_malloc(32);
    ASSERT(env != NULL);
    memset(env, 0x45, 32);
    key.bytes = env;
    key.len = 32;
    ASSERT_OK(store_keys_put(f.srv->store, &key, 1, on_keys_put_done, &w));
    wait_store(f.srv->store, 0, 0); /* the store thread took the write */
    for (n_fill = 0; n_fill <= STORE_DEFAULT_MAX_QUEUE; n_fill++) {
        rc = store_pull(f.srv->store, "network", 0, 0, 0, on_pull_done, &fill);
        if (rc == -KZ_EAGAIN)
            break;
        ASSERT_OK(rc);
    }
    ASSERT_EQ(n_fill, STORE_DEFAULT_MAX_QUEUE);
    ASSERT_EQ(s->pull.i, 0); /* still: the loop did not turn */
    uv_close((uv_handle_t *)&tick, NULL);

    /* The BATCH of "network", then the refusal of "site:HAN". */
    RUN_UNTIL(&f.loop, d.errors == 1 || d.eof);
    ASSERT_EQ(d.eof, 0);
    ASSERT_EQ(d.batches, 1);
    ASSERT_EQ(d.batch_items, 1);
    ASSERT_EQ(d.batch_done, 0);
    ASSERT_EQ(d.error_req, 7);
    ASSERT_EQ(d.error_code, KZ_WIRE_BUSY);
    ASSERT_STR_EQ(d.error_text, "the server is busy; retry later");
    ASSERT_EQ(s->pull.active, 0);

    /* The session continues: a PING is answered while the store is still
     * held (before the fix, nothing was read any more). */
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_PING;
    m.ping.nonce = 0x5eed;
    dev_send(&d, &m);
    RUN_UNTIL(&f.loop, d.pongs == 1 || d.eof);
    ASSERT_EQ(d.eof, 0);
    ASSERT_U64_EQ(d.pong_nonce, 0x5eed);

    /* The store drains; the same PULL, asked again, is answered in full. */
    release_lock(db);
    RUN_UNTIL(&f.loop, w.called == 1 && fill.called == n_fill);
    ASSERT_OK(w.status);
    ASSERT_OK(fill.status);
    dev_pull(&d, 8, scopes, 2);
    RUN_UNTIL(&f.loop,
              (d.batch_req == 8 && d.batch_done) || d.errors > 1 || d.eof);
    ASSERT_EQ(d.errors, 1);
    ASSERT_EQ(d.batch_items, 2);

    dev_close(&d, &f.loop);
    keyfile_wipe(&admin);
    fixture_stop(&f);
}

/* The session of the device named ${name} (admitted), or NULL. */
static struct session *
session_named(struct fixture *f, const char *name)
{
    struct session *s;

    for (s = f->srv->sessions; s != NULL; s = s->next)
        if (s->admitted && strcmp(s->member.name, name) == 0)
            return s;
    return NULL;
}

/* Two devices of a server whose roster changes while one of them pulls:
 * see pull_across_roster_change. */
struct rc {
    struct kz_identity admin, member;
    struct fixture f;
    struct dev da, dm;  /* the admin hq-1, the site device han-1 */
    struct session *sm; /* han-1's session */
    sqlite3 *db;
    uint64_t pulls; /* the store's reads before the PULL */
};

/*
 * The site device han-1 of HAN may read "network" and "site:HAN" under
 * roster version 1; version 2, which the admin sends as a ROSTER_PUT on
 * its own connection, moves han-1 to site OSL: "network" is still
 * readable, "site:HAN" no longer.  han-1 sends PULL 7 of ${scopes} (two)
 * while version 1 is in force; the first scope's store read then runs
 * after version 2 is stored and its result comes after version 2 is in
 * force.  The order is fixed by the store's one queue: the test holds the
 * database's write lock, so the store thread blocks on the roster's write
 * (for at most its busy timeout of 5 s; the test needs milliseconds);
 * han-1's PULL is then read (both scopes are allowed) and its first read
 * queued behind that write.  Once the lock is released, the store runs the
 * write, then the read, and posts their callbacks in that order:
 * on_roster_stored installs version 2, then on_pulled gets the read.
 * Returns once the admin has its OK and han-1 an ERROR or the PULL's end.
 */
static void
pull_across_roster_change(struct rc *x, const char *const *scopes)
{
    struct store_stats ss;
    struct session *sa;
    struct config cfg;
    struct kz_msg m;
    uint8_t *bytes;
    size_t len;

    memset(x, 0, sizeof(*x));
    ASSERT_OK(keyfile_generate(&x->admin, kz_env_system()));
    ASSERT_OK(keyfile_generate(&x->member, kz_env_system()));
    fixture_init(&x->f);
    config_defaults(&cfg);
    seed_store_with(&x->f, &cfg, &x->admin, &x->member);
    ASSERT_OK(adminkey_encode(&x->admin.sign_pk, cfg.admin_key));
    fixture_serve(&x->f, &cfg);
    RUN_UNTIL(&x->f.loop, x->f.srv->roster_version == 1);
    dev_open(&x->dm, &x->f, &x->member);
    dev_open(&x->da, &x->f, &x->admin);
    x->sm = session_named(&x->f, "han-1");
    sa = session_named(&x->f, "hq-1");
    ASSERT(x->sm != NULL && sa != NULL);
    ASSERT_EQ(x->sm->member.role, AUTH_ROLE_SITE);

    /* The roster's write reaches the store thread, which blocks on it:
     * the check on the thread pool is back (pending_work), the bytes are
     * still held by the admin's session (until stored), and the store's
     * queue is empty. */
    x->db = hold_lock(&x->f, &cfg);
    signed_roster(&x->admin, 2, &x->member, "OSL", &bytes, &len);
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_ROSTER_PUT;
    m.roster_put.req = 3;
    m.roster_put.roster.p = bytes;
    m.roster_put.roster.len = len;
    dev_send(&x->da, &m);
    kz_free(bytes);
    RUN_UNTIL(&x->f.loop, (sa->held > 0 && x->f.srv->pending_work == 0) ||
                              x->da.errors > 0 || x->da.eof);
    ASSERT_EQ(x->da.errors, 0);
    ASSERT_EQ(x->da.eof, 0);
    wait_store(x->f.srv->store, 0, 0);
    ASSERT_U64_EQ(x->f.srv->roster_version, 1);

    /* han-1's PULL: both scopes allowed by version 1; the first read
     * waits in the store's queue behind the roster. */
    store_stats(x->f.srv->store, &ss);
    x->pulls = ss.pulls;
    dev_pull(&x->dm, 7, scopes, 2);
    RUN_UNTIL(&x->f.loop, x->sm->pull.active || x->dm.errors > 0 || x->dm.eof);
    ASSERT_EQ(x->dm.errors, 0);
    ASSERT_EQ(x->sm->pull.i, 0);
    store_stats(x->f.srv->store, &ss);
    ASSERT_U64_EQ(ss.queued, 1);
    ASSERT_U64_EQ(x->f.srv->roster_version, 1);
    ASSERT_EQ(x->dm.batches, 0);

    release_lock(x->db);
    RUN_UNTIL(&x->f.loop,
              (x->da.oks == 1 && (x->dm.errors == 1 || x->dm.batch_done)) ||
                  x->da.errors > 0 || x->dm.eof || x->da.eof);
    ASSERT_EQ(x->da.errors, 0);
    ASSERT_EQ(x->da.ok_req, 3);
    ASSERT_U64_EQ(x->f.srv->roster_version, 2);
    ASSERT_EQ(x->dm.eof, 0);
}

/* han-1's session goes on after the refusal: a PING is answered, and a
 * PULL of "network" alone is answered in full (1 item). */
static void
session_goes_on(struct rc *x)
{
    struct kz_msg m;
    int batches = x->dm.batches, items = x->dm.batch_items;

    ASSERT(session_named(&x->f, "han-1") == x->sm);
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_PING;
    m.ping.nonce = 0x5eed;
    dev_send(&x->dm, &m);
    RUN_UNTIL(&x->f.loop, x->dm.pongs == 1 || x->dm.eof);
    ASSERT_EQ(x->dm.eof, 0);
    ASSERT_U64_EQ(x->dm.pong_nonce, 0x5eed);

    dev_pull(&x->dm, 8, (const char *const[]){"network"}, 1);
    RUN_UNTIL(&x->f.loop, (x->dm.batch_req == 8 && x->dm.batch_done) ||
                              x->dm.errors > 1 || x->dm.eof);
    ASSERT_EQ(x->dm.errors, 1);
    ASSERT_EQ(x->dm.batches, batches + 1);
    ASSERT_EQ(x->dm.batch_items, items + 1);
}

static void
rc_done(struct rc *x)
{
    dev_close(&x->dm, &x->f.loop);
    dev_close(&x->da, &x->f.loop);
    keyfile_wipe(&x->member);
    keyfile_wipe(&x->admin);
    fixture_stop(&x->f);
}

/*
 * The sibling of the test above for a refusal by the roster: pull_step
 * checks auth_may_read again before each scope's store read, because a
 * roster that changed since on_pull checked the PULL may have taken the
 * scope away.  The client then gets ERROR PERM for the PULL, the session
 * continues (PROTOCOL.md, "Refused requests"), and it must read again.
 * Here the read of "network" spans the change; "site:HAN" is refused
 * before its read.
 */
TEST(pull_refused_midway_by_a_roster_change_reads_again)
{
    static const char *const scopes[] = {"network", "site:HAN"};
    struct store_stats ss, after;
    struct rc x;

    pull_across_roster_change(&x, scopes);
    ASSERT_EQ(x.dm.batches, 1);
    ASSERT_EQ(x.dm.batch_req, 7);
    ASSERT_EQ(x.dm.batch_items, 1);
    ASSERT_EQ(x.dm.batch_done, 0);
    ASSERT_EQ(x.dm.error_req, 7);
    ASSERT_EQ(x.dm.error_code, KZ_WIRE_PERM);
    ASSERT_STR_EQ(x.dm.error_text, "han-1 may not read scope site:HAN");
    ASSERT_EQ(x.sm->pull.active, 0);
    /* Refused before its read: the store read "network" only. */
    store_stats(x.f.srv->store, &ss);
    ASSERT_U64_EQ(ss.pulls, x.pulls + 1);
    session_goes_on(&x);

    /* A PULL of "site:HAN" is refused at once: no store read. */
    store_stats(x.f.srv->store, &ss);
    dev_pull(&x.dm, 9, scopes + 1, 1);
    RUN_UNTIL(&x.f.loop, x.dm.errors == 2 || x.dm.eof);
    ASSERT_EQ(x.dm.eof, 0);
    ASSERT_EQ(x.dm.batches, 2);
    ASSERT_EQ(x.dm.error_req, 9);
    ASSERT_EQ(x.dm.error_code, KZ_WIRE_PERM);
    ASSERT_STR_EQ(x.dm.error_text, "han-1 may not read scope site:HAN");
    ASSERT_EQ(x.sm->pull.active, 0);
    store_stats(x.f.srv->store, &after);
    ASSERT_U64_EQ(after.pulls, ss.pulls);
    rc_done(&x);
}

/*
 * The same when the scope taken away is the one whose read spans the
 * change: its result, read under version 1, comes once version 2 is in
 * force, and none of its changesets may go out (on_pulled checks again;
 * before, it sent han-1 the "site:HAN" changeset).
 */
TEST(pull_of_a_scope_taken_away_during_its_read_sends_none_of_it)
{
    static const char *const scopes[] = {"site:HAN", "network"};
    struct rc x;

    pull_across_roster_change(&x, scopes);
    ASSERT_EQ(x.dm.batches, 0);
    ASSERT_EQ(x.dm.batch_items, 0);
    ASSERT_EQ(x.dm.errors, 1);
    ASSERT_EQ(x.dm.error_req, 7);
    ASSERT_EQ(x.dm.error_code, KZ_WIRE_PERM);
    ASSERT_STR_EQ(x.dm.error_text, "han-1 may not read scope site:HAN");
    ASSERT_EQ(x.sm->pull.active, 0);
    session_goes_on(&x);
    rc_done(&x);
}

/*
 * The idle clock runs only while the server waits for the peer.  A device
 * whose PULL waits longer than the idle timeout for a store held up (here
 * by another connection's write lock, as a long group commit or a slow
 * disk would) is not idle: before, the session was closed with ERROR
 * TIMEOUT "idle timeout" while its own request was still being served.
 */
TEST(session_waiting_for_the_store_is_not_idle)
{
    static const char *const scopes[] = {"network"};
    struct kz_identity admin;
    struct store_key key;
    struct config cfg;
    struct fixture f;
    struct done w = {0};
    struct dev d;
    uint64_t until;
    uint8_t *env;
    sqlite3 *db;

    ASSERT_OK(keyfile_generate(&admin, kz_env_system()));
    fixture_init(&f);
    config_defaults(&cfg);
    cfg.idle_timeout_ms = 1000; /* the least the configuration allows */
    serve_seeded(&f, &cfg, &admin, NULL);
    dev_open(&d, &f, &admin);

    /* The store thread blocks on a write behind the test's lock (for at
     * most its busy timeout of 5 s); the PULL's read waits behind it. */
    db = hold_lock(&f, &cfg);
    memset(&key, 0, sizeof(key));
    env = kz_malloc(32);
    ASSERT(env != NULL);
    memset(env, 0x45, 32);
    key.bytes = env;
    key.len = 32;
    ASSERT_OK(store_keys_put(f.srv->store, &key, 1, on_keys_put_done, &w));
    wait_store(f.srv->store, 0, 0);
    dev_pull(&d, 7, scopes, 1);

    /* Two idle timeouts pass with the PULL unanswered. */
    until = uv_hrtime() + UINT64_C(2000000) * cfg.idle_timeout_ms;
    RUN_UNTIL(&f.loop, uv_hrtime() > until || d.errors > 0 || d.eof);
    ASSERT_EQ(d.errors, 0);
    ASSERT_EQ(d.eof, 0);
    ASSERT_EQ(d.batches, 0);

    /* The store goes on; the PULL is answered on the same session. */
    release_lock(db);
    RUN_UNTIL(&f.loop,
              (d.batch_req == 7 && d.batch_done) || d.errors > 0 || d.eof);
    ASSERT_EQ(d.errors, 0);
    ASSERT_EQ(d.batch_items, 1);
    RUN_UNTIL(&f.loop, w.called == 1);
    ASSERT_OK(w.status);

    dev_close(&d, &f.loop);
    keyfile_wipe(&admin);
    fixture_stop(&f);
}

/*
 * Nor is a device whose bytes wait unread because the server's loop fell
 * behind: a loop turn runs its timers before its reads.  The test stands
 * for a loop held up: it sends a PING and keeps the loop from running for
 * longer than the idle timeout; on the next turn the session's timer
 * comes first, with the PING in its socket.  Before, that timer closed the
 * session with ERROR TIMEOUT "idle timeout".
 */
TEST(session_whose_bytes_wait_unread_is_not_idle)
{
    struct kz_identity admin;
    struct config cfg;
    struct fixture f;
    struct kz_msg m;
    struct dev d;

    ASSERT_OK(keyfile_generate(&admin, kz_env_system()));
    fixture_init(&f);
    config_defaults(&cfg);
    cfg.idle_timeout_ms = 1000;
    serve_seeded(&f, &cfg, &admin, NULL);
    dev_open(&d, &f, &admin);

    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_PING;
    m.ping.nonce = 0x1d1e;
    dev_send(&d, &m); /* written to the socket at once (uv_write) */
    uv_sleep(cfg.idle_timeout_ms + 300);
    RUN_UNTIL(&f.loop, d.pongs == 1 || d.errors > 0 || d.eof);
    ASSERT_EQ(d.errors, 0);
    ASSERT_EQ(d.eof, 0);
    ASSERT_U64_EQ(d.pong_nonce, 0x1d1e);

    dev_close(&d, &f.loop);
    keyfile_wipe(&admin);
    fixture_stop(&f);
}

/* Stores ${n} copies of an envelope of ${scope}'s key (epoch 1) for
 * ${to}, sealed and signed by ${by}. */
static void
put_envs(struct store *st, const char *scope, uint32_t n,
         const struct kz_identity *by, const struct kz_identity *to,
         struct done *put)
{
    struct kz_aead_key key;
    struct store_key *k;
    uint8_t *env;
    size_t len;
    uint32_t i;

    randombytes_buf(key.b, sizeof(key.b));
    ASSERT_OK(kz_env_make(&env, &len, scope, 1, &key, &to->dh_pk, &by->sign_sk,
                          &by->sign_pk));
    sodium_memzero(&key, sizeof(key));
    k = kz_calloc(n, sizeof(*k));
    ASSERT(k != NULL);
    for (i = 0; i < n; i++) {
        memcpy(k[i].recipient, to->dh_pk.b, sizeof(k[i].recipient));
        k[i].bytes = kz_malloc(len);
        ASSERT(k[i].bytes != NULL);
        memcpy(k[i].bytes, env, len);
        k[i].len = len;
    }
    ASSERT_OK(store_keys_put(st, k, n, on_keys_put_done, put));
    kz_free(k);
    kz_free(env);
}

/*
 * Bytes that complete no record are no sign of life: a peer that trickles
 * a PING's record a byte every 200 ms (its 30-odd bytes would take some
 * 7 s) is closed as idle once the idle timeout passes after its last whole
 * record, with ERROR TIMEOUT; before, every byte reset the idle clock,
 * and such a peer held its session as long as it liked.
 */
TEST(peer_trickling_a_record_is_idle)
{
    struct kz_identity admin;
    struct config cfg;
    struct fixture f;
    struct kz_msg m;
    struct kz_buf *out;
    struct dev d;
    size_t i, n;

    ASSERT_OK(keyfile_generate(&admin, kz_env_system()));
    fixture_init(&f);
    config_defaults(&cfg);
    cfg.idle_timeout_ms = 1000; /* the least the configuration allows */
    serve_seeded(&f, &cfg, &admin, NULL);
    dev_open(&d, &f, &admin);

    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_PING;
    m.ping.nonce = 0x7e1e;
    {
        struct kz_buf b;
        kz_buf_init(&b, 1024);
        ASSERT_OK(kz_msg_encode(&m, &b));
        ASSERT_OK(kz_chan_send(d.chan, b.p, b.len));
        kz_buf_free(&b);
    }
    out = kz_chan_out(d.chan);
    n = out->len;
    ASSERT_GT(n, 20);
    for (i = 0; i + 1 < n && !d.eof; i++) {
        uint64_t until = uv_hrtime() + UINT64_C(200000000);
        uv_buf_t b = uv_buf_init((char *)out->p + i, 1);
        ASSERT_EQ(uv_try_write((uv_stream_t *)&d.tcp, &b, 1), 1);
        RUN_UNTIL(&f.loop, uv_hrtime() > until || d.eof);
    }
    ASSERT_EQ(d.eof, 1);
    ASSERT_LT(i + 1, n); /* before the record was whole */
    ASSERT_EQ(d.pongs, 0);
    ASSERT_EQ(d.errors, 1);
    ASSERT_EQ(d.error_code, KZ_WIRE_TIMEOUT);
    ASSERT_STR_EQ(d.error_text, "idle timeout");

    kz_buf_consume(out, out->len);
    dev_close(&d, &f.loop);
    keyfile_wipe(&admin);
    fixture_stop(&f);
}

/* Puts in force at once, as on_roster_stored does once a ROSTER_PUT is
 * durable, the roster of ${version} where ${admin} is "hq-1" and ${member}
 * the site device "han-1" of ${site}. */
static void
install_roster(struct fixture *f, const struct kz_identity *admin,
               uint64_t version, const struct kz_identity *member,
               const char *site)
{
    ASSERT_OK(auth_install(f->srv, make_roster(admin, version, member, site)));
    server_roster_changed(f->srv);
    ASSERT_U64_EQ(f->srv->roster_version, version);
}

/* Sends a PING and waits for its PONG: what the server sent before is in. */
static void
dev_roundtrip(struct dev *d, uv_loop_t *loop)
{
    struct kz_msg m;
    uint32_t pongs = d->pongs;

    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_PING;
    m.ping.nonce = 0x5eed + pongs;
    dev_send(d, &m);
    RUN_UNTIL(loop, d->pongs > pongs || d->eof);
    ASSERT_EQ(d->eof, 0);
}

/*
 * A KEYS_GET hands out every envelope sealed to the member, in pages of
 * KZ_LIM_KEYS_MAX, whatever the roster in force says of its scope now:
 * here han-1 got envelopes of "site:HAN" while it was at HAN (stored
 * directly, as KEYS_PUT would have under roster version 1), and version 2
 * has moved it to OSL, version 3 back to HAN.  Withholding the site:HAN
 * ones at OSL (as 20000e5 did) let the client's cursor pass them, and
 * back at HAN they never came (found by a review).
 */
TEST(keys_get_hands_out_every_envelope_sealed_to_the_member)
{
    struct kz_identity admin, member;
    char path[PATH_MAX + 1024];
    struct done put = {0}, kput = {0}, closed = {0};
    struct config cfg;
    struct fixture f;
    struct store *st;
    struct kz_msg m;
    struct dev d;
    uint8_t *bytes;
    size_t len;

    ASSERT_OK(keyfile_generate(&admin, kz_env_system()));
    ASSERT_OK(keyfile_generate(&member, kz_env_system()));
    fixture_init(&f);
    config_defaults(&cfg);
    signed_roster(&admin, 2, &member, "OSL", &bytes, &len);
    store_db_path(&f, &cfg, path, sizeof(path));
    ASSERT_OK(store_sqlite_open(&st, &f.loop, path, NULL));
    ASSERT_OK(store_roster_put(st, 2, &bytes, len, on_roster_put_done, &put));
    put_envs(st, "network", 1, &admin, &member, &kput); /* id 1 */
    put_envs(st, "site:HAN", KZ_LIM_KEYS_MAX, &admin, &member, &kput);
    put_envs(st, "site:OSL", 1, &admin, &member, &kput); /* the last */
    RUN_UNTIL(&f.loop, put.called == 1 && kput.called == 3);
    ASSERT_OK(put.status);
    ASSERT_OK(kput.status);
    store_close(st, on_store_closed, &closed);
    RUN_UNTIL(&f.loop, closed.called == 1);
    ASSERT_OK(adminkey_encode(&admin.sign_pk, cfg.admin_key));
    fixture_serve(&f, &cfg);
    RUN_UNTIL(&f.loop, f.srv->roster_version == 2);
    dev_open(&d, &f, &member);

    /* At OSL: the first page, ids 1 .. 1024, all of them. */
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_KEYS_GET;
    m.keys_get.req = 5;
    dev_send(&d, &m);
    RUN_UNTIL(&f.loop, d.keys_msgs == 1 || d.errors > 0 || d.eof);
    ASSERT_EQ(d.errors, 0);
    ASSERT_EQ(d.keys_n, KZ_LIM_KEYS_MAX);
    ASSERT_U64_EQ(d.keys_last_id, KZ_LIM_KEYS_MAX);
    ASSERT_EQ(d.keys_done, 0);

    /* Back at HAN, the client asks after the highest id it got: the rest,
     * the last site:HAN one and site:OSL's. */
    install_roster(&f, &admin, 3, &member, "HAN");
    m.keys_get.req = 6;
    m.keys_get.after_id = d.keys_last_id;
    dev_send(&d, &m);
    RUN_UNTIL(&f.loop, d.keys_msgs == 2 || d.errors > 0 || d.eof);
    ASSERT_EQ(d.errors, 0);
    ASSERT_EQ(d.keys_n, KZ_LIM_KEYS_MAX + 2);
    ASSERT_U64_EQ(d.keys_last_id, KZ_LIM_KEYS_MAX + 2);
    ASSERT_EQ(d.keys_done, 1);
    ASSERT_EQ(d.keys_scopes[0], 'n');
    ASSERT_EQ(d.keys_scopes[1], 's');

    dev_close(&d, &f.loop);
    keyfile_wipe(&member);
    keyfile_wipe(&admin);
    fixture_stop(&f);
}

/*
 * A PUSH's write permission is asked again once its signature is checked
 * (on the thread pool), under the roster then in force: here version 2,
 * which moves han-1 from HAN to OSL, is installed while han-1's PUSH of
 * site:HAN waits for that check.  The PUSH is refused with PERM and
 * nothing is stored (before, it was stored and acknowledged); the session
 * goes on.
 */
TEST(push_of_a_scope_taken_away_during_its_check_is_refused)
{
    struct kz_identity admin, member;
    struct kz_cs_header h;
    struct kz_sign_sig sig;
    struct store_stats ss, after;
    struct config cfg;
    struct fixture f;
    struct session *sm;
    struct kz_msg m;
    struct dev d;
    uv_timer_t tick;
    uint64_t dl;
    uint8_t body[48], *hdr = NULL;
    size_t hdr_len = 0;

    ASSERT_OK(keyfile_generate(&admin, kz_env_system()));
    ASSERT_OK(keyfile_generate(&member, kz_env_system()));
    fixture_init(&f);
    config_defaults(&cfg);
    serve_seeded(&f, &cfg, &admin, &member);
    dev_open(&d, &f, &member);
    sm = session_named(&f, "han-1");
    ASSERT(sm != NULL);

    /* The next changeset of han-1 in site:HAN (the store has its first). */
    memset(&h, 0, sizeof(h));
    h.format = KZ_CS_FORMAT;
    snprintf(h.scope, sizeof(h.scope), "site:HAN");
    memcpy(h.author, member.sign_pk.b, sizeof(h.author));
    h.author_seq = 2;
    h.epoch = 1;
    h.n_cells = h.n_rows = 1;
    h.hlc_min = h.hlc_max = 1;
    ASSERT_OK(kz_cs_header_encode(&h, &hdr, &hdr_len));
    memset(body, 0x42, sizeof(body));
    ASSERT_OK(
        kz_cs_sign(&sig, hdr, hdr_len, body, sizeof(body), &member.sign_sk));
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_PUSH;
    m.push.req = 4;
    m.push.scope.p = h.scope;
    m.push.scope.len = strlen(h.scope);
    m.push.hdr.p = hdr;
    m.push.hdr.len = hdr_len;
    m.push.body.p = body;
    m.push.body.len = sizeof(body);
    m.push.sig = sig.b;
    store_stats(f.srv->store, &ss);
    dev_send(&d, &m);
    kz_free(hdr);

    /* on_push has queued the check; its result comes through the thread
     * pool's uv_async on a later turn of the loop.  Not RUN_UNTIL: its
     * last turn, which closes its timer, could deliver that result. */
    ASSERT_OK(uv_timer_init(&f.loop, &tick));
    ASSERT_OK(uv_timer_start(&tick, loop_tick, 10, 10));
    dl = uv_hrtime() + DEADLINE_NS;
    while (sm->vq_head == NULL && d.errors == 0 && !d.eof) {
        if (uv_hrtime() > dl)
            T_FAIL_("timed out waiting for the PUSH to be read");
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&tick);
    ASSERT_EQ(d.errors, 0);
    ASSERT_U64_EQ(f.srv->pending_work, 1); /* not back yet */

    install_roster(&f, &admin, 2, &member, "OSL");
    uv_close((uv_handle_t *)&tick, NULL);

    RUN_UNTIL(&f.loop, d.errors > 0 || d.acks > 0 || d.eof);
    ASSERT_EQ(d.acks, 0);
    ASSERT_EQ(d.errors, 1);
    ASSERT_EQ(d.error_req, 4);
    ASSERT_EQ(d.error_code, KZ_WIRE_PERM);
    ASSERT_STR_EQ(d.error_text, "han-1 may not write scope site:HAN");
    ASSERT(sm->vq_head == NULL);
    store_stats(f.srv->store, &after);
    ASSERT_U64_EQ(after.appends, ss.appends);

    /* The session goes on. */
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_PING;
    m.ping.nonce = 0x5eed;
    dev_send(&d, &m);
    RUN_UNTIL(&f.loop, d.pongs == 1 || d.eof);
    ASSERT_EQ(d.eof, 0);

    dev_close(&d, &f.loop);
    keyfile_wipe(&member);
    keyfile_wipe(&admin);
    fixture_stop(&f);
}

/*
 * A subscription is judged against the roster in force at each NOTIFY,
 * not only when it was made: han-1 of HAN subscribes to site:HAN and
 * site:OSL and is notified of site:HAN's growth only; once a roster moves
 * it to OSL, it is notified of site:OSL's and no longer of site:HAN's,
 * without subscribing again (before, site:OSL had been dropped from its
 * set for good).
 */
TEST(subscription_follows_the_roster_in_force)
{
    static const struct kz_str scopes[] = {{"site:HAN", 8}, {"site:OSL", 8}};
    struct kz_identity admin, member;
    struct config cfg;
    struct fixture f;
    struct kz_msg m;
    struct dev d;

    ASSERT_OK(keyfile_generate(&admin, kz_env_system()));
    ASSERT_OK(keyfile_generate(&member, kz_env_system()));
    fixture_init(&f);
    config_defaults(&cfg);
    serve_seeded(&f, &cfg, &admin, &member);
    dev_open(&d, &f, &member);
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_SUBSCRIBE;
    m.subscribe.scopes = scopes;
    m.subscribe.n_scopes = 2;
    dev_send(&d, &m);
    dev_roundtrip(&d, &f.loop);

    server_scope_grew(f.srv, NULL, "site:OSL", 5);
    server_scope_grew(f.srv, NULL, "site:HAN", 6);
    dev_roundtrip(&d, &f.loop);
    ASSERT_EQ(d.notifies, 1);
    ASSERT_STR_EQ(d.notify_scope, "site:HAN");
    ASSERT_U64_EQ(d.notify_seq, 6);

    install_roster(&f, &admin, 2, &member, "OSL");
    server_scope_grew(f.srv, NULL, "site:HAN", 7);
    server_scope_grew(f.srv, NULL, "site:OSL", 8);
    dev_roundtrip(&d, &f.loop);
    ASSERT_EQ(d.notifies, 2);
    ASSERT_STR_EQ(d.notify_scope, "site:OSL");
    ASSERT_U64_EQ(d.notify_seq, 8);
    ASSERT_EQ(d.errors, 0);

    dev_close(&d, &f.loop);
    keyfile_wipe(&member);
    keyfile_wipe(&admin);
    fixture_stop(&f);
}

T_MAIN(T(listener_survives_out_of_memory_at_accept),
       T(connection_waiting_on_the_spare_counts_only_itself),
       T(pull_refused_midway_by_a_full_store_queue_reads_again),
       T(pull_refused_midway_by_a_roster_change_reads_again),
       T(pull_of_a_scope_taken_away_during_its_read_sends_none_of_it),
       T(session_waiting_for_the_store_is_not_idle),
       T(session_whose_bytes_wait_unread_is_not_idle),
       T(keys_get_hands_out_every_envelope_sealed_to_the_member),
       T(peer_trickling_a_record_is_idle),
       T(push_of_a_scope_taken_away_during_its_check_is_refused),
       T(subscription_follows_the_roster_in_force))
