/*
 * test_server.c: kzsyncd's listener (server/server.c, session.c) in this
 * process, on loopback, with the allocator's fault hook.
 *
 * Each test runs its own uv_loop_t and temporary directory, drives the loop
 * with RUN_UNTIL(cond), bounded by a deadline, and stops the server at the
 * end.
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

#include <uv.h>

#include "alloc.h"
#include "env.h"
#include "err.h"
#include "keyfile.h"
#include "log.h"
#include "server.h"

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

static void
fixture_start(struct fixture *f, uint32_t max_connections)
{
    struct config cfg;
    struct kz_identity id;
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
    config_defaults(&cfg);
    cfg.max_connections = max_connections;
    f->port = free_port();
    snprintf(cfg.listen, sizeof(cfg.listen), "127.0.0.1:%d", f->port);
    ASSERT_OK(keyfile_generate_server(&id, kz_env_system()));
    ASSERT_OK(server_new(&f->srv, &f->loop, f->dir, &cfg, &id));
    ASSERT_OK(server_listen(f->srv));
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

T_MAIN(T(listener_survives_out_of_memory_at_accept),
       T(connection_waiting_on_the_spare_counts_only_itself))
