/*
 * conn.c: a libuv TCP connection carrying the Noise channel (see conn.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "alloc.h"
#include "chan.h"
#include "err.h"
#include "frame.h"

#include "conn.h"

#define READ_BUF (64u * 1024)

enum { C_RESOLVING = 1, C_CONNECTING, C_HANDSHAKE, C_READY, C_CLOSING };

struct conn {
    uv_loop_t *loop;           /* borrowed */
    int state;                 /* C_* */
    uv_getaddrinfo_t gai;      /* name resolution */
    uv_connect_t creq;         /* connect request */
    uv_tcp_t tcp;              /* the socket */
    uv_timer_t timer;          /* connect/handshake/idle timeout */
    uv_write_t wreq;           /* write in flight */
    size_t wq_armed;           /* its bytes queued when the timer was set */
    int writing;               /* wreq in flight */
    struct kz_buf wbuf;        /* bytes of the write in flight */
    struct kz_chan *chan;      /* Noise */
    struct conn_cbs cbs;       /* callbacks */
    void *data;                /* their cookie */
    struct kz_dh_sk sk;        /* our static key; wiped */
    struct kz_dh_pk server_pk; /* pinned */
    char host[256];            /* server name */
    char port[8];              /* server port */
    uint32_t timeout_ms;       /* see conn_opts */
    uint32_t idle_ms;          /* see conn_opts */
    int handles;               /* open handles */
    int tcp_open;              /* tcp initialised */
    int closed_cb_done;        /* on_close delivered */
    int err;                   /* why it closes */
    char why[200];             /* one line */
    int paused;                /* reading stopped by conn_pause */
    int reading;               /* uv_read_start active */
    int in_callback;           /* inside on_msg: defer the free */
    int resolving;             /* gai in flight */
    uint8_t rbuf[READ_BUF];    /* read buffer */
};

static void finish(struct conn *c);

static void
maybe_free(struct conn *c)
{
    if (c->handles > 0 || c->writing || c->resolving || c->in_callback)
        return;
    if (!c->closed_cb_done) {
        c->closed_cb_done = 1;
        c->in_callback = 1;
        if (c->cbs.on_close)
            c->cbs.on_close(c, c->err, c->why, c->data);
        c->in_callback = 0;
    }
    kz_chan_free(c->chan);
    kz_buf_free(&c->wbuf);
    sodium_memzero(&c->sk, sizeof(c->sk));
    kz_free(c);
}

static void
on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;

    c->handles--;
    maybe_free(c);
}

static void
fail(struct conn *c, int err, const char *fmt, const char *arg)
{
    if (c->state == C_CLOSING)
        return;
    if (c->err == 0) {
        c->err = err;
        snprintf(c->why, sizeof(c->why), fmt, arg ? arg : "");
    }
    finish(c);
}

/* Closes everything; on_close follows once the handles are closed. */
static void
finish(struct conn *c)
{
    if (c->state == C_CLOSING)
        return;
    c->state = C_CLOSING;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_closed);
    if (c->tcp_open)
        uv_close((uv_handle_t *)&c->tcp, on_closed);
    else
        c->handles--;
    maybe_free(c);
}

static void flush(struct conn *c);
static void arm_timer(struct conn *c);

static void
on_written(uv_write_t *w, int status)
{
    struct conn *c = w->data;

    c->writing = 0;
    kz_buf_reset(&c->wbuf);
    if (c->state == C_CLOSING) {
        maybe_free(c);
        return;
    }
    if (status < 0) {
        fail(c, -KZ_ECLOSED, "writing to the server failed: %s",
             uv_strerror(status));
        return;
    }
    arm_timer(c); /* bytes moved: the silence counts from here */
    flush(c);
}

static void
flush(struct conn *c)
{
    struct kz_buf *out = kz_chan_out(c->chan), tmp;
    uv_buf_t b;
    int n;

    if (c->writing || out->len == 0 || c->state == C_CLOSING)
        return;
    b = uv_buf_init((char *)out->p, (unsigned)out->len);
    n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n > 0)
        kz_buf_consume(out, (size_t)n);
    else if (n < 0 && n != UV_EAGAIN) {
        fail(c, -KZ_ECLOSED, "writing to the server failed: %s",
             uv_strerror(n));
        return;
    }
    if (out->len == 0)
        return;
    tmp = c->wbuf;
    c->wbuf = *out;
    *out = tmp;
    b = uv_buf_init((char *)c->wbuf.p, (unsigned)c->wbuf.len);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
        fail(c, -KZ_ECLOSED, "writing to the server failed%s", NULL);
        return;
    }
    c->writing = 1;
    /* The silence timer measures this write's progress from here. */
    c->wq_armed = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
}

static void
on_timeout(uv_timer_t *t)
{
    struct conn *c = t->data;
    size_t wq = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);

    /* A long write still leaving over a slow link is not silence: only a
     * time without a byte moving either way is. */
    if (c->writing && wq < c->wq_armed) {
        arm_timer(c);
        return;
    }
    fail(c, -KZ_ETIMEDOUT,
         c->state == C_READY ? "the server went silent%s"
                             : "no answer from the server in time%s",
         NULL);
}

static void
arm_timer(struct conn *c)
{
    uint32_t ms =
        c->state == C_READY && c->idle_ms ? c->idle_ms : c->timeout_ms;

    if (!ms)
        return;
    c->wq_armed = c->writing
                      ? uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp)
                      : SIZE_MAX;
    uv_timer_start(&c->timer, on_timeout, ms, 0);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct conn *c = h->data;

    (void)hint;
    *buf = uv_buf_init((char *)c->rbuf, sizeof(c->rbuf));
}

static void
deliver(struct conn *c)
{
    while (c->state == C_READY && !c->paused) {
        const uint8_t *p;
        size_t len;
        struct kz_msg m;
        const char *why = NULL;
        int got = kz_chan_next(c->chan, &p, &len), err;

        if (got < 0) {
            fail(c, got, "bad framing from the server: %s",
                 kz_chan_why(c->chan));
            return;
        }
        if (got == 0)
            return;
        err = kz_msg_decode(&m, p, len, &why);
        if (err) {
            fail(c, err, "malformed message from the server: %s", why);
            return;
        }
        c->in_callback = 1;
        c->cbs.on_msg(c, &m, c->data);
        c->in_callback = 0;
        kz_msg_clear(&m);
        if (c->state == C_CLOSING) {
            maybe_free(c);
            return;
        }
        flush(c);
    }
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    int err;

    (void)buf;
    if (c->state == C_CLOSING || nread == 0)
        return;
    if (nread < 0) {
        fail(c, -KZ_ECLOSED,
             nread == UV_EOF ? "the server closed the connection%s"
                             : "reading from the server failed%s",
             NULL);
        return;
    }
    arm_timer(c);
    err = kz_chan_feed(c->chan, c->rbuf, (size_t)nread);
    if (err) {
        fail(c, err == -KZ_EAUTH ? -KZ_EAUTH : -KZ_EREFUSED,
             "secure channel failed: %s",
             kz_chan_why(c->chan) ? kz_chan_why(c->chan) : kz_err_name(err));
        return;
    }
    flush(c);
    if (c->state == C_HANDSHAKE && kz_chan_state(c->chan) == KZ_CHAN_READY) {
        c->state = C_READY;
        arm_timer(c); /* the idle limit from now on */
        c->in_callback = 1;
        if (c->cbs.on_ready)
            c->cbs.on_ready(c, c->data);
        c->in_callback = 0;
        if (c->state == C_CLOSING) {
            maybe_free(c);
            return;
        }
        flush(c);
    }
    deliver(c);
}

static void
start_reading(struct conn *c)
{
    if (!c->reading && !c->paused && c->state != C_CLOSING &&
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = 1;
}

static void
on_connected(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    struct kz_chan_cfg cc;
    int err;

    if (c->state == C_CLOSING) {
        maybe_free(c);
        return;
    }
    if (status < 0) {
        fail(c, status == UV_ECONNREFUSED ? -ECONNREFUSED : -KZ_ECLOSED,
             "cannot connect to the server: %s", uv_strerror(status));
        return;
    }
    memset(&cc, 0, sizeof(cc));
    cc.initiator = 1;
    cc.s = &c->sk;
    cc.pinned = &c->server_pk;
    cc.env = kz_env_system();
    err = kz_chan_new(&c->chan, &cc);
    if (err) {
        fail(c, err, "cannot start the handshake%s", NULL);
        return;
    }
    c->state = C_HANDSHAKE;
    uv_tcp_nodelay(&c->tcp, 1);
    start_reading(c);
    flush(c);
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct conn *c = req->data;

    c->resolving = 0;
    if (c->state == C_CLOSING) {
        uv_freeaddrinfo(res);
        maybe_free(c);
        return;
    }
    if (status < 0 || res == NULL) {
        uv_freeaddrinfo(res);
        fail(c, -EHOSTUNREACH, "cannot resolve the server name %s", c->host);
        return;
    }
    c->state = C_CONNECTING;
    uv_tcp_init(c->loop, &c->tcp);
    c->tcp.data = c;
    c->tcp_open = 1;
    c->creq.data = c;
    if (uv_tcp_connect(&c->creq, &c->tcp, res->ai_addr, on_connected) != 0) {
        uv_freeaddrinfo(res);
        fail(c, -KZ_ECLOSED, "cannot connect to %s", c->host);
        return;
    }
    uv_freeaddrinfo(res);
}

int
conn_open(struct conn **out, uv_loop_t *loop, const struct conn_opts *o,
          const struct conn_cbs *cbs, void *data)
{
    struct addrinfo hints;
    struct conn *c;
    const char *colon;
    size_t hl;

    *out = NULL;
    if (o->server[0] == '[') {
        const char *e = strchr(o->server, ']');
        if (e == NULL || e[1] != ':')
            return -KZ_EINVAL;
        hl = (size_t)(e - o->server - 1);
        colon = e + 1;
    } else {
        colon = strrchr(o->server, ':');
        if (colon == NULL)
            return -KZ_EINVAL;
        hl = (size_t)(colon - o->server);
    }
    if (hl == 0 || strlen(colon + 1) == 0 || strlen(colon + 1) > 5 ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return -KZ_EINVAL;
    c = kz_calloc(1, sizeof(*c));
    if (c == NULL)
        return -KZ_ENOMEM;
    if (hl >= sizeof(c->host)) {
        kz_free(c);
        return -KZ_EINVAL;
    }
    memcpy(c->host, o->server[0] == '[' ? o->server + 1 : o->server, hl);
    snprintf(c->port, sizeof(c->port), "%s", colon + 1);
    c->loop = loop;
    c->cbs = *cbs;
    c->data = data;
    c->sk = *o->sk;
    c->server_pk = *o->server_pk;
    c->timeout_ms = o->timeout_ms;
    c->idle_ms = o->idle_ms;
    kz_buf_init(&c->wbuf, (size_t)64 * 1024 * 1024);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->handles = 2; /* timer, tcp */
    c->state = C_RESOLVING;
    arm_timer(c);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->gai.data = c;
    c->resolving = 1;
    *out = c;
    if (uv_getaddrinfo(loop, &c->gai, on_resolved, c->host, c->port, &hints) !=
        0) {
        /* Reported through on_close, like every other failure. */
        c->resolving = 0;
        fail(c, -EHOSTUNREACH, "cannot resolve the server name %s", c->host);
    }
    return 0;
}

int
conn_send(struct conn *c, const struct kz_msg *m)
{
    struct kz_buf b;
    int err;

    if (c->state != C_READY)
        return -KZ_ECLOSED;
    kz_buf_init(&b, (size_t)KZ_LIM_FRAME_MAX + 8);
    err = kz_msg_encode(m, &b);
    if (err == 0)
        err = kz_chan_send(c->chan, b.p, b.len);
    kz_buf_free(&b);
    if (err) {
        fail(c, err, "cannot send to the server: %s", kz_err_name(err));
        return err;
    }
    if (!c->in_callback)
        flush(c);
    return 0;
}

void
conn_close(struct conn *c)
{
    finish(c);
}

uint64_t
conn_server_time(const struct conn *c)
{
    return c->chan ? kz_chan_server_time(c->chan) : 0;
}

size_t
conn_pending(const struct conn *c)
{
    return (c->chan ? kz_chan_out((struct kz_chan *)c->chan)->len : 0) +
           c->wbuf.len;
}

void
conn_pause(struct conn *c, int on)
{
    if (c->state == C_CLOSING)
        return;
    c->paused = on;
    if (on && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    } else if (!on && c->state >= C_HANDSHAKE) {
        start_reading(c);
        deliver(c);
    }
}
