/*
 * session.c: one client connection of kzsyncd.
 *
 * State machine (PROTOCOL.md §Session state machine):
 *
 *   accept ──► HANDSHAKE ──(Noise XX done, key in roster)──► HELLO
 *                  │  (handshake timeout, bad bytes,           │ HELLO
 *                  │   key not in roster → ERROR AUTH)         ▼
 *                  └──────────────► CLOSING ◄───────────── READY
 *                                     ▲       (any protocol error: one
 *                                     │        ERROR, then close; idle;
 *                                     │        slow reader; revoked)
 *
 * A session dies in one place, session_close(), which is idempotent: it
 * stops reading and closes the handles.  Memory is freed only when every
 * handle's close callback has run and no store callback is pending (refs);
 * a store callback that finds the session CLOSING only drops its ref.
 * Messages are handled at most SESSION_MSGS_PER_TICK per wakeup; while a
 * session has too many pushes waiting for the store, or unhandled
 * messages, it stops reading (backpressure), so one client cannot starve
 * the loop or grow the server's memory.
 */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include <sodium.h>

#include "alloc.h"
#include "changeset.h"
#include "err.h"
#include "errcode.h"
#include "log.h"
#include "roster.h"
#include "seal.h"

#include "server_int.h"

#define MAX_BATCH_BYTES (8u * 1024 * 1024)
#define BATCH_ITEMS_MAX 4096u

static void session_pump(struct session *s);
static void session_flush(struct session *s);
static void on_timer(uv_timer_t *t);
static void session_start_reading(struct session *s);
static void session_arm_idle(struct session *s);
static void on_kick(uv_timer_t *t);

static uint64_t
now_ms(struct session *s)
{
    return uv_now(s->srv->loop);
}

static void
maybe_free(struct session *s)
{
    struct server *srv = s->srv;

    if (s->handles > 0 || s->refs > 0 || s->writing || s->shutting)
        return;
    s->magic = 0;
    kz_chan_free(s->chan);
    kz_buf_free(&s->wbuf);
    kz_free(s->subs);
    kz_free(s->pull.cur);
    kz_free(s);
    server_session_freed(srv); /* may free srv: last */
}

static void
on_handle_closed(uv_handle_t *h)
{
    struct session *s = h->data;

    s->handles--;
    maybe_free(s);
}

/* Closes the handles (once); memory goes when their callbacks have run. */
static void
close_handles(struct session *s)
{
    if (s->handles_closing)
        return;
    s->handles_closing = 1;
    if (s->reading)
        uv_read_stop((uv_stream_t *)&s->tcp);
    s->reading = 0;
    uv_timer_stop(&s->timer);
    uv_timer_stop(&s->kick);
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->kick, on_handle_closed);
    uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
}

static void
closing_state(struct session *s, const char *reason)
{
    s->state = SS_CLOSING;
    s->close_reason = reason;
    kz_log_info("session %llu %s closed: %s", (unsigned long long)s->id,
                s->admitted ? s->member.name : s->peer, reason);
    server_session_gone(s->srv, s);
}

void
session_close(struct session *s, const char *reason)
{
    if (s->state == SS_CLOSING)
        return;
    closing_state(s, reason);
    close_handles(s);
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
    struct session *s = req->data;

    (void)status;
    s->shutting = 0;
    if (s->eof_seen && !s->handles_closing)
        close_handles(s); /* the peer had finished: nothing to wait for */
    maybe_free(s);        /* else the peer's EOF, or the linger timer, closes */
}

/* Lingering: once the output is out, a FIN; the peer's EOF (or the
 * timer) then closes. */
static void
linger_step(struct session *s)
{
    if (s->handles_closing || s->writing || s->shutting || s->shut_sent ||
        kz_chan_out(s->chan)->len > 0)
        return;
    s->shutdown_req.data = s;
    if (uv_shutdown(&s->shutdown_req, (uv_stream_t *)&s->tcp, on_shutdown) !=
        0) {
        close_handles(s);
        return;
    }
    s->shutting = 1;
    s->shut_sent = 1;
}

/*
 * Closes after the output queued so far — the last ERROR included — has
 * gone out, for at most SESSION_LINGER_MS (PROTOCOL.md, CLOSING): nothing
 * more is handled, input is read and dropped (closing a socket with unread
 * input would reset the connection, and the peer could lose the ERROR),
 * then a FIN, and the close on the peer's EOF or the timer.
 */
static void
session_close_lingering(struct session *s, const char *reason)
{
    if (s->state == SS_CLOSING)
        return;
    closing_state(s, reason);
    s->lingering = 1;
    uv_timer_stop(&s->kick);
    uv_timer_start(&s->timer, on_timer, SESSION_LINGER_MS, 0);
    if (!s->reading)
        session_start_reading(s);
    session_flush(s);
    linger_step(s);
}

/* Sends ${m}; a failure closes the session.  Returns 0 or the error. */
static int
send_msg(struct session *s, const struct kz_msg *m)
{
    struct kz_buf b;
    int err;

    if (s->state == SS_CLOSING)
        return -KZ_ECLOSED;
    kz_buf_init(&b, (size_t)KZ_LIM_FRAME_MAX + 8);
    err = kz_msg_encode(m, &b);
    if (err == 0)
        err = kz_chan_send(s->chan, b.p, b.len);
    kz_buf_free(&b);
    if (err == -KZ_ELIMIT) {
        session_close(s, "slow reader: output buffer full");
        s->srv->stats.closed_bad++;
    } else if (err) {
        kz_log_error("session %llu: cannot send %s: %s",
                     (unsigned long long)s->id, kz_msg_name(m->type),
                     kz_err_name(err));
        session_close(s, "send failed");
    }
    return err;
}

static void
send_error(struct session *s, uint32_t req, uint32_t code, const char *text)
{
    struct kz_msg m;

    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_ERROR;
    m.error.req = req;
    m.error.code = code;
    m.error.text.p = text;
    m.error.text.len = strlen(text) > 256 ? 256 : strlen(text);
    (void)send_msg(s, &m);
}

/* A peer that breaks the protocol gets one ERROR and a closed connection. */
static void
protocol_error(struct session *s, uint32_t code, const char *text)
{
    kz_log_warn("session %llu %s: %s: %s", (unsigned long long)s->id,
                s->admitted ? s->member.name : s->peer, kz_wire_err_name(code),
                text);
    s->srv->stats.closed_bad++;
    if (kz_chan_state(s->chan) == KZ_CHAN_READY && s->state != SS_CLOSING) {
        send_error(s, 0, code, text);
        session_close_lingering(s, kz_wire_err_name(code));
        return;
    }
    session_close(s, kz_wire_err_name(code));
}

void
session_close_with(struct session *s, uint32_t code, const char *why)
{
    protocol_error(s, code, why);
}

static void
on_written(uv_write_t *req, int status)
{
    struct session *s = req->data;

    s->writing = 0;
    kz_buf_reset(&s->wbuf);
    if (s->wbuf.cap > (1u << 20)) {
        kz_buf_free(&s->wbuf);
        kz_buf_init(&s->wbuf, (size_t)s->srv->cfg.max_output_bytes);
    }
    if (s->state == SS_CLOSING) {
        if (s->lingering && status >= 0 && !s->handles_closing) {
            session_flush(s);
            linger_step(s);
        } else if (s->lingering) {
            close_handles(s);
        }
        maybe_free(s);
        return;
    }
    if (status < 0) {
        session_close(s, "write failed");
        return;
    }
    session_flush(s);
    session_pump(s);
}

/* Writes what the channel has: try first, queue the rest (STYLE.md 14). */
static void
session_flush(struct session *s)
{
    struct kz_buf *out = kz_chan_out(s->chan), tmp;
    uv_buf_t b;
    int n;

    if (s->writing || out->len == 0 || uv_is_closing((uv_handle_t *)&s->tcp))
        return;
    b = uv_buf_init((char *)out->p, (unsigned)out->len);
    n = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
    if (n > 0)
        kz_buf_consume(out, (size_t)n);
    else if (n < 0 && n != UV_EAGAIN) {
        if (s->state == SS_CLOSING)
            close_handles(s);
        else
            session_close(s, "write failed");
        return;
    }
    if (out->len == 0)
        return;
    /* The rest goes out from wbuf, which lives until on_written. */
    tmp = s->wbuf;
    s->wbuf = *out;
    *out = tmp;
    b = uv_buf_init((char *)s->wbuf.p, (unsigned)s->wbuf.len);
    s->wreq.data = s;
    if (uv_write(&s->wreq, (uv_stream_t *)&s->tcp, &b, 1, on_written) != 0) {
        if (s->state == SS_CLOSING)
            close_handles(s);
        else
            session_close(s, "write failed");
        return;
    }
    s->writing = 1;
}

static int
scope_from(const struct kz_str *k, char out[KZ_LIM_NAME_MAX + 1])
{
    if (k->len == 0 || k->len > KZ_LIM_NAME_MAX ||
        memchr(k->p, 0, k->len) != NULL)
        return -KZ_EMALFORMED;
    memcpy(out, k->p, k->len);
    out[k->len] = '\0';
    return 0;
}

/* ---- HELLO --------------------------------------------------------- */

static void
on_hello(struct session *s, const struct kz_msg_hello *h)
{
    struct kz_msg m;

    if (h->min_version > KZ_PROTO_VERSION || h->max_version < 1) {
        char text[128];
        snprintf(text, sizeof(text),
                 "protocol versions %u..%u offered; this server speaks 1",
                 h->min_version, h->max_version);
        protocol_error(s, KZ_WIRE_VERSION, text);
        return;
    }
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_WELCOME;
    m.welcome.version = KZ_PROTO_VERSION;
    {
        uv_timeval64_t tv;
        if (uv_gettimeofday(&tv) == 0)
            m.welcome.server_time_ms =
                (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
    }
    m.welcome.max_frame = KZ_LIM_FRAME_MAX;
    m.welcome.max_batch_bytes = MAX_BATCH_BYTES;
    if (send_msg(s, &m) == 0) {
        s->state = SS_READY;
        session_arm_idle(s);
    }
}

/* ---- PUSH ---------------------------------------------------------- */

/*
 * A PUSH on its way: its signature is checked on libuv's thread pool (an
 * Ed25519 verification of a 1 MB changeset is over a millisecond of CPU,
 * which the loop should not spend), then it goes to the store.  A session's
 * PUSHes reach the store in the order they arrived: they wait in the
 * session's verification queue until every one before them is checked.
 */
struct push_ctx {
    struct session *s;               /* borrowed; s->refs held */
    uint32_t req;                    /* the PUSH */
    char scope[KZ_LIM_NAME_MAX + 1]; /* for NOTIFY */
    uv_work_t work;                  /* the signature check */
    int checked;                     /* the check has finished */
    int vrc;                         /* its result: 0 or an error */
    struct store_cs cs;              /* hdr and body owned until stored */
    struct push_ctx *next;           /* the session's queue */
};

static void
push_ctx_free(struct push_ctx *x)
{
    kz_free(x->cs.hdr);
    kz_free(x->cs.body);
    kz_free(x);
}

/* A queued PUSH is finished with: the session holds it no longer. */
static void
push_done(struct session *s, struct push_ctx *x)
{
    s->refs--;
    s->pushes--;
    s->held -= x->cs.hdr_len + x->cs.body_len;
    push_ctx_free(x);
}

static void
on_appended(void *data, int status, const struct store_append_res *res)
{
    struct push_ctx *x = data;
    struct session *s = x->s;
    struct kz_msg m;

    if (s->state == SS_CLOSING) {
        if (status == 0 && !res->duplicate)
            server_scope_grew(s->srv, NULL, x->scope, res->server_seq);
        push_done(s, x);
        maybe_free(s);
        return;
    }
    if (status == 0) {
        memset(&m, 0, sizeof(m));
        m.type = KZ_MSG_PUSH_ACK;
        m.push_ack.req = x->req;
        m.push_ack.server_seq = res->server_seq;
        m.push_ack.duplicate = res->duplicate != 0;
        (void)send_msg(s, &m);
        s->srv->stats.pushes++;
        if (!res->duplicate)
            server_scope_grew(s->srv, s, x->scope, res->server_seq);
    } else if (status == -KZ_ESEQ) {
        char text[320];
        snprintf(text, sizeof(text),
                 "author_seq gap in %s: the server expects %llu", x->scope,
                 (unsigned long long)res->expected_seq);
        send_error(s, x->req, KZ_WIRE_SEQ_GAP, text);
    } else if (status == -KZ_EEXIST) {
        send_error(s, x->req, KZ_WIRE_SEQ_GAP,
                   "this author_seq was stored with other content");
    } else {
        kz_log_error("store: append failed: %s", kz_err_name(status));
        send_error(s, x->req, KZ_WIRE_STORE,
                   "the server could not store the changeset; retry later");
    }
    push_done(s, x);
    session_flush(s);
    session_pump(s);
}

/* ERROR PERM for ${req}: the member may not ${what} ("read", "write")
 * ${scope} under the roster in force. */
static void
refuse_scope(struct session *s, uint32_t req, const char *what,
             const char *scope)
{
    char text[320];

    snprintf(text, sizeof(text), "%s may not %s scope %s", s->member.name, what,
             scope);
    send_error(s, req, KZ_WIRE_PERM, text);
}

/* On the thread pool: touches only the push's own bytes. */
static void
push_check(uv_work_t *w)
{
    struct push_ctx *x = w->data;

    x->vrc = kz_cs_verify(x->cs.sig, x->cs.hdr, x->cs.hdr_len, x->cs.body,
                          x->cs.body_len, x->cs.author);
}

/* Back on the loop: stores, in arrival order, every checked PUSH at the
 * head of the session's queue. */
static void
push_drain(struct session *s)
{
    while (s->vq_head && s->vq_head->checked) {
        struct push_ctx *x = s->vq_head;
        int err;

        s->vq_head = x->next;
        if (s->vq_head == NULL)
            s->vq_tail = NULL;
        x->next = NULL;
        if (s->state == SS_CLOSING || x->vrc) {
            int bad = s->state != SS_CLOSING;
            push_done(s, x);
            if (bad)
                protocol_error(s, KZ_WIRE_SIGNATURE,
                               "the changeset signature is bad");
            continue;
        }
        if (!auth_may_write(s->srv, &s->member, x->scope)) {
            /* The roster changed while the signature was checked. */
            refuse_scope(s, x->req, "write", x->scope);
            push_done(s, x);
            continue;
        }
        err = store_append(s->srv->store, &x->cs, on_appended, x);
        if (err) {
            send_error(
                s, x->req, err == -KZ_EAGAIN ? KZ_WIRE_BUSY : KZ_WIRE_STORE,
                err == -KZ_EAGAIN ? "the server is busy; retry later"
                                  : "the server could not store the changeset;"
                                    " retry later");
            push_done(s, x);
        }
    }
}

static void
push_checked(uv_work_t *w, int status)
{
    struct push_ctx *x = w->data;
    struct session *s = x->s;
    struct server *srv = s->srv;

    x->checked = 1;
    if (status != 0 && x->vrc == 0)
        x->vrc = -KZ_ECLOSED; /* cancelled */
    push_drain(s);
    server_work_done(srv); /* before: maybe_free may end the server */
    if (s->state == SS_CLOSING) {
        maybe_free(s);
    } else {
        session_flush(s);
        session_pump(s);
    }
}

static void
on_push(struct session *s, const struct kz_msg_push *p)
{
    struct kz_cs_header h;
    struct push_ctx *x = NULL;
    const char *why = NULL;
    char scope[KZ_LIM_NAME_MAX + 1];
    int err;

    if (scope_from(&p->scope, scope) != 0) {
        protocol_error(s, KZ_WIRE_PROTOCOL, "bad scope name");
        return;
    }
    if (!auth_may_write(s->srv, &s->member, scope)) {
        refuse_scope(s, p->req, "write", scope);
        return;
    }
    err = kz_cs_header_decode(&h, p->hdr.p, p->hdr.len, &why);
    if (err) {
        protocol_error(s, KZ_WIRE_PROTOCOL, why ? why : "bad changeset header");
        return;
    }
    if (strcmp(h.scope, scope) != 0) {
        protocol_error(s, KZ_WIRE_PROTOCOL,
                       "the PUSH scope differs from its header's");
        return;
    }
    if (memcmp(h.author, s->member.sign_pk, 32) != 0) {
        send_error(s, p->req, KZ_WIRE_PERM,
                   "a device pushes only its own changesets");
        return;
    }
    if (p->body.len == 0 || h.author_seq == 0 || h.author_seq > INT64_MAX) {
        /* The store keeps neither; a retry would not help. */
        protocol_error(s, KZ_WIRE_PROTOCOL,
                       p->body.len == 0 ? "an empty changeset body"
                                        : "author_seq out of range");
        return;
    }
    x = kz_calloc(1, sizeof(*x));
    if (x == NULL) {
        send_error(s, p->req, KZ_WIRE_BUSY, "out of memory; retry later");
        return;
    }
    memcpy(x->cs.scope, scope, sizeof(scope));
    memcpy(x->cs.author, h.author, 32);
    x->cs.author_seq = h.author_seq;
    memcpy(x->cs.sig, p->sig, STORE_SIG_LEN);
    x->cs.hdr = kz_malloc(p->hdr.len);
    x->cs.body = kz_malloc(p->body.len ? p->body.len : 1);
    if (x->cs.hdr == NULL || x->cs.body == NULL) {
        push_ctx_free(x);
        send_error(s, p->req, KZ_WIRE_BUSY, "out of memory; retry later");
        return;
    }
    memcpy(x->cs.hdr, p->hdr.p, p->hdr.len);
    x->cs.hdr_len = p->hdr.len;
    if (p->body.len)
        memcpy(x->cs.body, p->body.p, p->body.len);
    x->cs.body_len = p->body.len;
    x->s = s;
    x->req = p->req;
    memcpy(x->scope, scope, sizeof(scope));
    x->work.data = x;
    /* The signature covers header ‖ body; it is checked before storing. */
    if (uv_queue_work(s->srv->loop, &x->work, push_check, push_checked) != 0) {
        push_ctx_free(x);
        send_error(s, p->req, KZ_WIRE_BUSY, "the server is busy; retry later");
        return;
    }
    if (s->vq_tail)
        s->vq_tail->next = x;
    else
        s->vq_head = x;
    s->vq_tail = x;
    s->refs++;
    s->pushes++;
    s->held += x->cs.hdr_len + x->cs.body_len;
    s->srv->pending_work++;
}

/* ---- PULL ---------------------------------------------------------- */

static void pull_step(struct session *s);
static int pull_may_read(struct session *s);

static void
send_batch(struct session *s, struct kz_msg_item *items, uint32_t n, int done)
{
    struct kz_msg m;

    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_BATCH;
    m.batch.req = s->pull.req;
    m.batch.items = items;
    m.batch.n_items = n;
    m.batch.done = done != 0;
    (void)send_msg(s, &m);
}

static void
on_pulled(void *data, int status, struct store_pull_res *res)
{
    struct session *s = data;
    struct kz_msg_item *items = NULL;
    uint32_t i;
    size_t used = 0;

    s->refs--;
    kz_log_debug("session %llu: pulled %s: status %d, %u items, more %d",
                 (unsigned long long)s->id, s->pull.cur[s->pull.i].scope,
                 status, res ? res->n : 0, res ? res->more : 0);
    if (s->state == SS_CLOSING) {
        maybe_free(s);
        return;
    }
    if (status != 0) {
        send_error(s, s->pull.req, KZ_WIRE_STORE,
                   "the server could not read the store; retry later");
        s->pull.active = 0;
        session_flush(s);
        session_pump(s);
        return;
    }
    /* Read under the roster of the request; sent under today's. */
    if (!pull_may_read(s)) {
        session_pump(s); /* flushes; reading paused during the PULL */
        return;
    }
    if (res->n > 0) {
        items = kz_calloc(res->n, sizeof(*items));
        if (items == NULL) {
            send_error(s, s->pull.req, KZ_WIRE_BUSY, "out of memory");
            s->pull.active = 0;
            session_pump(s); /* flushes; reading paused during the PULL */
            return;
        }
    }
    for (i = 0; i < res->n; i++) {
        struct store_item *it = &res->items[i];
        items[i].scope.p = s->pull.cur[s->pull.i].scope;
        items[i].scope.len = strlen(s->pull.cur[s->pull.i].scope);
        items[i].server_seq = it->server_seq;
        items[i].hdr.p = it->hdr;
        items[i].hdr.len = it->hdr_len;
        items[i].body.p = it->body;
        items[i].body.len = it->body_len;
        items[i].sig = it->sig;
        used += it->hdr_len + it->body_len + STORE_SIG_LEN;
    }
    if (res->n > 0)
        s->pull.cur[s->pull.i].after = res->items[res->n - 1].server_seq;
    s->pull.budget = used >= s->pull.budget ? 0 : s->pull.budget - used;
    if (!res->more || res->n == 0)
        s->pull.i++;
    {
        int done = s->pull.i >= s->pull.n || s->pull.budget == 0;
        if (res->n > 0 || done)
            send_batch(s, items, res->n, done);
        if (done)
            s->pull.active = 0;
    }
    kz_free(items);
    session_flush(s);
    if (s->state == SS_CLOSING)
        return;
    if (s->pull.active)
        pull_step(s);
    /* Reading paused during the PULL; also when pull_step refused. */
    if (s->state != SS_CLOSING && !s->pull.active)
        session_pump(s);
}

/* Whether the PULL may still read its current scope: a roster that changed
 * since on_pull checked it may have taken the scope away (a device moved to
 * another site, say; a revoked one is closed).  If not, the PULL ends with
 * ERROR PERM. */
static int
pull_may_read(struct session *s)
{
    if (auth_may_read(s->srv, &s->member, s->pull.cur[s->pull.i].scope))
        return 1;
    refuse_scope(s, s->pull.req, "read", s->pull.cur[s->pull.i].scope);
    s->pull.active = 0;
    return 0;
}

static void
pull_step(struct session *s)
{
    int err;

    if (!pull_may_read(s))
        return;
    err = store_pull(s->srv->store, s->pull.cur[s->pull.i].scope,
                     s->pull.cur[s->pull.i].after, s->pull.budget,
                     BATCH_ITEMS_MAX, on_pulled, s);
    if (err) {
        send_error(s, s->pull.req, KZ_WIRE_BUSY,
                   "the server is busy; retry later");
        s->pull.active = 0;
        return;
    }
    s->refs++;
}

static void
on_pull(struct session *s, const struct kz_msg_pull *p)
{
    uint32_t i;

    if (s->pull.active) {
        send_error(s, p->req, KZ_WIRE_STATE, "one PULL at a time");
        return;
    }
    kz_free(s->pull.cur);
    s->pull.cur = NULL;
    if (p->n_cursors == 0) {
        s->pull.req = p->req;
        send_batch(s, NULL, 0, 1);
        return;
    }
    s->pull.cur = kz_calloc(p->n_cursors, sizeof(*s->pull.cur));
    if (s->pull.cur == NULL) {
        send_error(s, p->req, KZ_WIRE_BUSY, "out of memory");
        return;
    }
    for (i = 0; i < p->n_cursors; i++) {
        if (scope_from(&p->cursors[i].scope, s->pull.cur[i].scope) != 0) {
            protocol_error(s, KZ_WIRE_PROTOCOL, "bad scope name");
            return;
        }
        if (!auth_may_read(s->srv, &s->member, s->pull.cur[i].scope)) {
            refuse_scope(s, p->req, "read", s->pull.cur[i].scope);
            return;
        }
        s->pull.cur[i].after = p->cursors[i].after_seq;
    }
    s->pull.req = p->req;
    s->pull.n = p->n_cursors;
    s->pull.i = 0;
    s->pull.budget = KZ_MIN((size_t)p->max_bytes, (size_t)MAX_BATCH_BYTES);
    s->pull.active = 1;
    pull_step(s);
}

/* ---- SUBSCRIBE, NOTIFY --------------------------------------------- */

static void
on_subscribe(struct session *s, const struct kz_msg_subscribe *sub)
{
    uint32_t i;

    kz_free(s->subs);
    s->subs = NULL;
    s->n_subs = 0;
    if (sub->n_scopes == 0)
        return;
    s->subs = kz_calloc(sub->n_scopes, sizeof(*s->subs));
    if (s->subs == NULL) {
        send_error(s, 0, KZ_WIRE_BUSY, "out of memory");
        return;
    }
    for (i = 0; i < sub->n_scopes; i++) {
        char scope[KZ_LIM_NAME_MAX + 1];
        if (scope_from(&sub->scopes[i], scope) != 0) {
            protocol_error(s, KZ_WIRE_PROTOCOL, "bad scope name");
            return;
        }
        /* Kept even if the member may not read it now: session_reads
         * asks the roster in force at each NOTIFY. */
        memcpy(s->subs[s->n_subs++].scope, scope, sizeof(scope));
    }
}

int
session_reads(const struct session *s, const char *scope)
{
    uint32_t i;

    if (s->state != SS_READY || !s->admitted)
        return 0;
    for (i = 0; i < s->n_subs; i++)
        if (strcmp(s->subs[i].scope, scope) == 0)
            return auth_may_read(s->srv, &s->member, scope);
    return 0;
}

void
session_notify(struct session *s, const char *scope, uint64_t seq)
{
    struct kz_msg m;

    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_NOTIFY;
    m.notify.scope.p = scope;
    m.notify.scope.len = strlen(scope);
    m.notify.server_seq = seq;
    if (send_msg(s, &m) == 0)
        session_flush(s);
}

/* ---- ROSTER -------------------------------------------------------- */

/*
 * A ROSTER_PUT on its way: the signature check and the parse (up to 1 MiB)
 * run on libuv's thread pool, as a PUSH's check does, with a copy of the
 * trusted admin key; back on the loop the version is compared and the
 * roster stored, and put in force once durable.
 */
struct roster_ctx {
    struct session *s;       /* borrowed; refs held */
    uint32_t req;            /* the ROSTER_PUT */
    uv_work_t work;          /* the check */
    uint8_t *bytes;          /* the roster as sent; owned until stored */
    size_t len;              /* held by the session meanwhile */
    struct kz_sign_pk admin; /* the trusted admin key, copied */
    struct roster *r;        /* decoded and verified; in force once durable */
    int vrc;                 /* the check's result */
    const char *why;         /* its reason (static text) */
};

static void
roster_done(struct session *s, struct roster_ctx *x)
{
    s->refs--;
    s->held -= x->len;
    roster_free(x->r);
    kz_free(x->bytes);
    kz_free(x);
}

static void
on_roster_stored(void *data, int status, uint64_t version)
{
    struct roster_ctx *x = data;
    struct session *s = x->s;
    int err = status;

    if (err == 0) {
        err = auth_install(s->srv, x->r);
        x->r = NULL; /* taken, installed or freed */
    }
    if (err == 0) {
        kz_log_info("roster version %llu stored", (unsigned long long)version);
        server_roster_changed(s->srv);
    }
    if (s->state != SS_CLOSING) {
        if (err == 0) {
            struct kz_msg m;
            memset(&m, 0, sizeof(m));
            m.type = KZ_MSG_OK;
            m.ok.req = x->req;
            (void)send_msg(s, &m);
        } else if (err == -KZ_EVERSION) {
            send_error(s, x->req, KZ_WIRE_ROSTER,
                       "the server has this roster version or a newer one");
        } else {
            send_error(s, x->req, KZ_WIRE_STORE,
                       "the roster could not be stored");
        }
    }
    roster_done(s, x);
    if (s->state == SS_CLOSING) {
        maybe_free(s);
    } else {
        session_flush(s);
        session_pump(s);
    }
}

/* On the thread pool: touches only the context's own bytes. */
static void
roster_check(uv_work_t *w)
{
    struct roster_ctx *x = w->data;

    x->vrc = roster_decode(&x->r, x->bytes, x->len, &x->admin, &x->why);
}

static void
roster_checked(uv_work_t *w, int status)
{
    struct roster_ctx *x = w->data;
    struct session *s = x->s;
    struct server *srv = s->srv;
    int err;

    if (status != 0 && x->vrc == 0)
        x->vrc = -KZ_ECLOSED; /* cancelled */
    if (s->state == SS_CLOSING) {
        roster_done(s, x);
        server_work_done(srv); /* before: maybe_free may end the server */
        maybe_free(s);
        return;
    }
    if (x->vrc == 0 && roster_version(x->r) <= srv->roster_version) {
        x->vrc = -KZ_EVERSION;
        x->why = "the server has this roster version or a newer one";
    }
    if (x->vrc) {
        kz_log_warn("session %llu: roster refused: %s",
                    (unsigned long long)s->id,
                    x->why ? x->why : kz_err_name(x->vrc));
        send_error(s, x->req, KZ_WIRE_ROSTER,
                   x->why ? x->why : "roster refused");
        roster_done(s, x);
    } else {
        err = store_roster_put(srv->store, roster_version(x->r), &x->bytes,
                               x->len, on_roster_stored, x);
        if (err) {
            send_error(s, x->req, KZ_WIRE_BUSY,
                       "the server is busy; retry later");
            roster_done(s, x);
        }
        /* else: the store has the bytes; the ref is held until stored */
    }
    session_flush(s);
    session_pump(s);
    server_work_done(srv);
}

static void
on_roster_put(struct session *s, const struct kz_msg_roster_put *p)
{
    struct roster_ctx *x;

    if (!s->srv->have_admin) {
        send_error(s, p->req, KZ_WIRE_ROSTER,
                   "this server trusts no admin key yet (kzsyncd trust)");
        return;
    }
    x = kz_calloc(1, sizeof(*x));
    if (x == NULL ||
        (x->bytes = kz_malloc(p->roster.len ? p->roster.len : 1)) == NULL) {
        kz_free(x);
        send_error(s, p->req, KZ_WIRE_BUSY, "out of memory");
        return;
    }
    memcpy(x->bytes, p->roster.p, p->roster.len);
    x->len = p->roster.len;
    x->s = s;
    x->req = p->req;
    memcpy(x->admin.b, s->srv->admin_pk, sizeof(x->admin.b));
    x->work.data = x;
    if (uv_queue_work(s->srv->loop, &x->work, roster_check, roster_checked) !=
        0) {
        kz_free(x->bytes);
        kz_free(x);
        send_error(s, p->req, KZ_WIRE_BUSY, "the server is busy; retry later");
        return;
    }
    s->refs++;
    s->held += x->len;
    s->srv->pending_work++;
}

struct rget_ctx {
    struct session *s; /* refs held */
    uint32_t req;
    uint64_t have;
};

static void
on_roster_got(void *data, int status, uint64_t version, const uint8_t *bytes,
              size_t len)
{
    struct rget_ctx *x = data;
    struct session *s = x->s;
    struct kz_msg m;

    s->refs--;
    if (s->state != SS_CLOSING) {
        memset(&m, 0, sizeof(m));
        m.type = KZ_MSG_ROSTER;
        m.roster.req = x->req;
        if (status == 0 && version > x->have) {
            m.roster.has_roster = true;
            m.roster.roster.p = bytes;
            m.roster.roster.len = len;
        }
        if (status != 0 && status != -KZ_ENOENT)
            send_error(s, x->req, KZ_WIRE_STORE, "cannot read the roster");
        else
            (void)send_msg(s, &m);
    }
    kz_free(x);
    if (s->state == SS_CLOSING) {
        maybe_free(s);
    } else {
        session_flush(s);
        session_pump(s); /* reading may have paused for the pending ones */
    }
}

static void
on_roster_get(struct session *s, const struct kz_msg_roster_get *g)
{
    struct rget_ctx *x = kz_calloc(1, sizeof(*x));

    if (x == NULL) {
        send_error(s, g->req, KZ_WIRE_BUSY, "out of memory");
        return;
    }
    x->s = s;
    x->req = g->req;
    x->have = g->have_version;
    if (store_roster_get(s->srv->store, on_roster_got, x) != 0) {
        kz_free(x);
        send_error(s, g->req, KZ_WIRE_BUSY, "the server is busy");
        return;
    }
    s->refs++;
}

/* ---- KEYS ---------------------------------------------------------- */

struct keys_ctx {
    struct session *s; /* refs held */
    uint32_t req;      /* the request */
};

/*
 * A KEYS_PUT on its way.  Key envelopes are relayed, never opened: the
 * server checks that each is signed by the member it names as sealer (on
 * libuv's thread pool: up to 1024 signatures), then, back on the loop,
 * that this member is the one connected, that it may hold the scope, and
 * that the recipient is a member entitled to it — then stores them all for
 * their recipients.
 */
struct kput_ctx {
    struct session *s;        /* borrowed; refs held */
    uint32_t req;             /* the KEYS_PUT */
    uv_work_t work;           /* the signature checks */
    uint32_t n;               /* envelopes */
    struct store_key *keys;   /* their copies; bytes owned until stored */
    struct kz_env_info *info; /* decoded on the thread pool */
    size_t bytes;             /* held by the session meanwhile */
    int vrc;                  /* the checks' result */
    const char *why;          /* its reason (static text) */
};

static void
kput_done(struct session *s, struct kput_ctx *x)
{
    uint32_t i;

    s->refs--;
    s->held -= x->bytes;
    for (i = 0; i < x->n; i++)
        kz_free(x->keys[i].bytes);
    kz_free(x->keys);
    kz_free(x->info);
    kz_free(x);
}

static void
on_keys_stored(void *data, int status, uint64_t last_id)
{
    struct kput_ctx *x = data;
    struct session *s = x->s;

    (void)last_id;
    if (s->state != SS_CLOSING) {
        if (status == 0) {
            struct kz_msg m;
            memset(&m, 0, sizeof(m));
            m.type = KZ_MSG_OK;
            m.ok.req = x->req;
            (void)send_msg(s, &m);
        } else {
            send_error(s, x->req, KZ_WIRE_STORE,
                       "the key envelopes could not be stored");
        }
    }
    kput_done(s, x);
    if (s->state == SS_CLOSING) {
        maybe_free(s);
    } else {
        session_flush(s);
        session_pump(s);
    }
}

/* On the thread pool: touches only the context's own bytes. */
static void
keys_check(uv_work_t *w)
{
    struct kput_ctx *x = w->data;
    uint32_t i;

    for (i = 0; i < x->n && x->vrc == 0; i++)
        x->vrc = kz_env_decode(&x->info[i], x->keys[i].bytes, x->keys[i].len,
                               &x->why);
}

static void
keys_checked(uv_work_t *w, int status)
{
    struct kput_ctx *x = w->data;
    struct session *s = x->s;
    struct server *srv = s->srv;
    uint32_t i;
    int err = x->vrc;

    if (status != 0 && err == 0)
        err = -KZ_ECLOSED; /* cancelled */
    if (s->state == SS_CLOSING) {
        kput_done(s, x);
        server_work_done(srv); /* before: maybe_free may end the server */
        maybe_free(s);
        return;
    }
    for (i = 0; i < x->n && err == 0; i++) {
        const struct kz_env_info *info = &x->info[i];
        struct member to;

        if (memcmp(info->sealer.b, s->member.sign_pk, 32) != 0) {
            err = -KZ_EPERM;
            x->why = "an envelope sealed by another member";
        } else if (!auth_may_read(srv, &s->member, info->scope)) {
            err = -KZ_EPERM;
            x->why = "the sealer may not hold this scope";
        } else if (auth_admit(srv, &info->recipient, &to) != 0 ||
                   !auth_may_read(srv, &to, info->scope)) {
            err = -KZ_EPERM;
            x->why = "the recipient may not hold this scope";
        }
    }
    if (err) {
        /* PROTOCOL.md: SIGNATURE or PERM (a malformed envelope too). */
        send_error(s, x->req,
                   err == -KZ_ECLOSED ? KZ_WIRE_BUSY
                   : err == -KZ_EAUTH ? KZ_WIRE_SIGNATURE
                                      : KZ_WIRE_PERM,
                   x->why ? x->why : "envelope refused");
        kput_done(s, x);
    } else {
        for (i = 0; i < x->n; i++)
            memcpy(x->keys[i].recipient, x->info[i].recipient.b, 32);
        if (store_keys_put(srv->store, x->keys, x->n, on_keys_stored, x) != 0) {
            send_error(s, x->req, KZ_WIRE_BUSY,
                       "the server is busy; retry later");
            kput_done(s, x);
        }
        /* else: the store has the bytes; the ref is held until stored */
    }
    session_flush(s);
    session_pump(s);
    server_work_done(srv);
}

static void
on_keys_put(struct session *s, const struct kz_msg_keys_put *p)
{
    struct kput_ctx *x;
    uint32_t i;

    if (p->n_envs == 0) {
        send_error(s, p->req, KZ_WIRE_PROTOCOL, "no envelopes");
        return;
    }
    x = kz_calloc(1, sizeof(*x));
    if (x == NULL)
        goto oom;
    x->s = s;
    x->req = p->req;
    x->keys = kz_calloc(p->n_envs, sizeof(*x->keys));
    x->info = kz_calloc(p->n_envs, sizeof(*x->info));
    if (x->keys == NULL || x->info == NULL)
        goto oom;
    for (i = 0; i < p->n_envs; i++) {
        x->keys[i].bytes = kz_malloc(p->envs[i].len ? p->envs[i].len : 1);
        if (x->keys[i].bytes == NULL)
            goto oom;
        x->n = i + 1;
        memcpy(x->keys[i].bytes, p->envs[i].p, p->envs[i].len);
        x->keys[i].len = p->envs[i].len;
        x->bytes += p->envs[i].len;
    }
    x->work.data = x;
    if (uv_queue_work(s->srv->loop, &x->work, keys_check, keys_checked) != 0) {
        s->refs++; /* kput_done drops it */
        s->held += x->bytes;
        kput_done(s, x);
        send_error(s, p->req, KZ_WIRE_BUSY, "the server is busy; retry later");
        return;
    }
    s->refs++;
    s->held += x->bytes;
    s->srv->pending_work++;
    return;
oom:
    if (x) {
        s->refs++; /* kput_done drops both */
        s->held += x->bytes;
        kput_done(s, x);
    }
    send_error(s, p->req, KZ_WIRE_BUSY, "out of memory");
}

static void
on_keys_got(void *data, int status, struct store_keys_res *res)
{
    struct keys_ctx *x = data;
    struct session *s = x->s;

    s->refs--;
    s->keys_get = 0;
    if (s->state != SS_CLOSING) {
        if (status != 0) {
            send_error(s, x->req, KZ_WIRE_STORE, "cannot read key envelopes");
        } else {
            struct kz_msg m;
            struct kz_msg_key *k = NULL;
            uint32_t i;
            if (res->n)
                k = kz_calloc(res->n, sizeof(*k));
            if (res->n && k == NULL) {
                send_error(s, x->req, KZ_WIRE_BUSY, "out of memory");
            } else {
                for (i = 0; i < res->n; i++) {
                    k[i].id = res->keys[i].id;
                    k[i].env.p = res->keys[i].bytes;
                    k[i].env.len = res->keys[i].len;
                }
                memset(&m, 0, sizeof(m));
                m.type = KZ_MSG_KEYS;
                m.keys.req = x->req;
                m.keys.keys = k;
                m.keys.n_keys = res->n;
                m.keys.done = !res->more;
                (void)send_msg(s, &m);
                kz_free(k);
            }
        }
    }
    kz_free(x);
    if (s->state == SS_CLOSING) {
        maybe_free(s);
    } else {
        session_flush(s);
        session_pump(s); /* reading may have paused for the pending ones */
    }
}

static void
on_keys_get(struct session *s, const struct kz_msg_keys_get *g)
{
    struct keys_ctx *x;

    if (s->keys_get) {
        send_error(s, g->req, KZ_WIRE_STATE, "one KEYS_GET at a time");
        return;
    }
    x = kz_calloc(1, sizeof(*x));
    if (x == NULL) {
        send_error(s, g->req, KZ_WIRE_BUSY, "out of memory");
        return;
    }
    x->s = s;
    x->req = g->req;
    if (store_keys_get(s->srv->store, s->member.dh_pk, g->after_id,
                       KZ_LIM_KEYS_MAX, on_keys_got, x) != 0) {
        kz_free(x);
        send_error(s, g->req, KZ_WIRE_BUSY, "the server is busy");
        return;
    }
    s->refs++;
    s->keys_get = 1;
}

/* ---- dispatch ------------------------------------------------------ */

static void
on_message(struct session *s, const uint8_t *p, size_t len)
{
    struct kz_msg m;
    const char *why = NULL;
    int err;

    err = kz_msg_decode(&m, p, len, &why);
    if (err) {
        protocol_error(s, err == -KZ_ELIMIT ? KZ_WIRE_LIMIT : KZ_WIRE_PROTOCOL,
                       why ? why : "malformed message");
        return;
    }
    kz_log_debug("session %llu: %s", (unsigned long long)s->id,
                 kz_msg_name(m.type));
    if (!(kz_msg_dir(m.type) & KZ_MSG_C2S)) {
        protocol_error(s, KZ_WIRE_STATE, "a message only the server sends");
        goto out;
    }
    if (s->state == SS_HELLO) {
        if (m.type != KZ_MSG_HELLO)
            protocol_error(s, KZ_WIRE_STATE, "HELLO comes first");
        else
            on_hello(s, &m.hello);
        goto out;
    }
    if (m.type == KZ_MSG_PING) {
        struct kz_msg r = m;
        r.type = KZ_MSG_PONG;
        (void)send_msg(s, &r);
        goto out;
    }
    if (m.type == KZ_MSG_PONG)
        goto out;
    if (m.type == KZ_MSG_ERROR) {
        /* The client gives up on the session: so does the server. */
        kz_log_info("session %llu: client reports %s",
                    (unsigned long long)s->id, kz_wire_err_name(m.error.code));
        session_close(s, "the client reported an error");
        goto out;
    }
    if (s->provisional && m.type != KZ_MSG_ROSTER_PUT &&
        m.type != KZ_MSG_ROSTER_GET) {
        protocol_error(s, KZ_WIRE_AUTH,
                       "not in the roster yet: only the admin's first roster "
                       "is accepted");
        goto out;
    }
    switch (m.type) {
    case KZ_MSG_PUSH: on_push(s, &m.push); break;
    case KZ_MSG_PULL: on_pull(s, &m.pull); break;
    case KZ_MSG_SUBSCRIBE: on_subscribe(s, &m.subscribe); break;
    case KZ_MSG_ROSTER_GET: on_roster_get(s, &m.roster_get); break;
    case KZ_MSG_ROSTER_PUT: on_roster_put(s, &m.roster_put); break;
    case KZ_MSG_KEYS_PUT: on_keys_put(s, &m.keys_put); break;
    case KZ_MSG_KEYS_GET: on_keys_get(s, &m.keys_get); break;
    default: protocol_error(s, KZ_WIRE_STATE, "message not allowed now"); break;
    }
out:
    kz_msg_clear(&m);
}

static void
on_admitted(struct session *s)
{
    struct kz_dh_pk key;

    if (kz_chan_remote(s->chan, &key) != 0) {
        session_close(s, "no client key");
        return;
    }
    if (auth_admit(s->srv, &key, &s->member) == 0) {
        s->admitted = 1;
        s->srv->stats.admitted++;
        kz_log_info("session %llu from %s: %s (site %s)",
                    (unsigned long long)s->id, s->peer, s->member.name,
                    s->member.site);
    } else if (s->srv->roster_version == 0) {
        s->provisional = 1;
        kz_log_info("session %llu from %s: no roster yet; provisional",
                    (unsigned long long)s->id, s->peer);
    } else {
        protocol_error(s, KZ_WIRE_AUTH,
                       "this device is not in the roster or was revoked");
        return;
    }
    /* The handshake timer keeps running until HELLO (session_arm_idle). */
    s->state = SS_HELLO;
}

/*
 * Whether the session has enough requests waiting for the store or the
 * thread pool (of any kind: a client that floods KEYS_GET must not fill
 * the store queue all sessions share), or holds enough of their bytes,
 * that it should not read more for now.
 */
static int
session_busy(const struct session *s)
{
    return s->refs >= SESSION_REQS_IN_FLIGHT ||
           s->held >= SESSION_HELD_BYTES_MAX;
}

/* Handles buffered messages, at most SESSION_MSGS_PER_TICK. */
static void
session_pump(struct session *s)
{
    uint32_t n = 0;

    while (s->state != SS_CLOSING && s->state != SS_HANDSHAKE &&
           !session_busy(s) && n < SESSION_MSGS_PER_TICK && !s->pull.active) {
        const uint8_t *p;
        size_t len;
        int got = kz_chan_next(s->chan, &p, &len);
        if (got < 0) {
            protocol_error(s, KZ_WIRE_LIMIT,
                           kz_chan_why(s->chan) ? kz_chan_why(s->chan)
                                                : "bad framing");
            return;
        }
        if (got == 0)
            break;
        on_message(s, p, len);
        n++;
    }
    if (s->state == SS_CLOSING)
        return;
    session_flush(s);
    if (n == SESSION_MSGS_PER_TICK) {
        /* More may be buffered: continue on the next loop iteration. */
        if (s->reading) {
            uv_read_stop((uv_stream_t *)&s->tcp);
            s->reading = 0;
        }
        uv_timer_start(&s->kick, on_kick, 0, 0);
        return;
    }
    if (session_busy(s) || s->pull.active || s->writing) {
        if (s->reading) {
            uv_read_stop((uv_stream_t *)&s->tcp);
            s->reading = 0;
        }
        return;
    }
    if (!s->reading)
        session_start_reading(s);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct session *s = h->data;

    (void)hint;
    *buf = uv_buf_init((char *)s->srv->rbuf, sizeof(s->srv->rbuf));
}

static void
on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct session *s = st->data;
    uint64_t records;
    int err;

    (void)buf;
    if (s->state == SS_CLOSING) {
        /* Lingering: input is dropped; the peer's EOF ends it, once what
         * we queued is out (or the linger time is up). */
        if (nread < 0) {
            if (s->reading)
                uv_read_stop((uv_stream_t *)&s->tcp);
            s->reading = 0;
            s->eof_seen = 1;
            if (!s->writing && !s->shutting &&
                (s->shut_sent || kz_chan_out(s->chan)->len == 0))
                close_handles(s);
        }
        return;
    }
    if (nread < 0) {
        session_close(s, nread == UV_EOF ? "peer closed" : "read failed");
        return;
    }
    if (nread == 0)
        return;
    records = kz_chan_records_in(s->chan);
    err = kz_chan_feed(s->chan, s->srv->rbuf, (size_t)nread);
    if (kz_chan_records_in(s->chan) != records)
        s->last_read_ms = now_ms(s); /* bytes alone are no sign of life */
    if (err) {
        s->srv->stats.closed_bad++;
        kz_log_warn("session %llu %s: %s", (unsigned long long)s->id, s->peer,
                    kz_chan_why(s->chan) ? kz_chan_why(s->chan)
                                         : kz_err_name(err));
        /* Before the handshake completes there is no key to send with. */
        if (kz_chan_state(s->chan) == KZ_CHAN_READY)
            protocol_error(s, KZ_WIRE_PROTOCOL, "bad record");
        else
            session_close(s, "handshake failed");
        return;
    }
    if (s->state == SS_HANDSHAKE && kz_chan_state(s->chan) == KZ_CHAN_READY) {
        session_flush(s);
        on_admitted(s);
        if (s->state == SS_CLOSING)
            return;
    }
    session_flush(s);
    session_pump(s);
}

static void
session_start_reading(struct session *s)
{
    if (uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read) == 0)
        s->reading = 1;
    else
        session_close(s, "read failed");
}

static void
on_kick(uv_timer_t *t)
{
    struct session *s = t->data;

    if (s->state != SS_CLOSING)
        session_pump(s);
}

/* Whether the peer's bytes wait in the socket, not read yet. */
static int
input_waiting(struct session *s)
{
    uv_os_fd_t fd;
    int n = 0;

    if (uv_fileno((uv_handle_t *)&s->tcp, &fd) != 0)
        return 0;
    return ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

static void
on_timer(uv_timer_t *t)
{
    struct session *s = t->data;
    const struct config *c = &s->srv->cfg;

    if (s->state == SS_CLOSING) {
        close_handles(s); /* the linger time is up */
        return;
    }
    if (s->state == SS_HANDSHAKE) {
        s->srv->stats.closed_bad++;
        session_close(s, "handshake timeout");
        return;
    }
    if (s->state == SS_HELLO) {
        protocol_error(s, KZ_WIRE_TIMEOUT, "no HELLO in time");
        return;
    }
    if (now_ms(s) - s->last_read_ms < c->idle_timeout_ms)
        return;
    /* The idle clock runs only while the server waits for the peer: not
     * while a request of its is still with the store or the thread pool,
     * nor while its bytes wait unread in a session that reads (a loop turn
     * runs its timers before its reads: a server that fell behind must not
     * blame the peer for its own delay).  A session that stopped reading
     * with nothing pending is still closed, whatever waits. */
    if (s->refs > 0 || (s->reading && input_waiting(s))) {
        s->last_read_ms = now_ms(s);
        return;
    }
    protocol_error(s, KZ_WIRE_TIMEOUT, "idle timeout");
}

void
session_accept(struct server *srv)
{
    struct session *s;
    struct kz_chan_cfg cc;
    struct sockaddr_storage ss;
    int len = sizeof(ss), err;

    s = kz_calloc(1, sizeof(*s));
    if (s == NULL) {
        kz_log_error("accept: out of memory; connection closed");
        server_accept_refuse(srv);
        return;
    }
    s->magic = SESSION_MAGIC;
    s->srv = srv;
    s->id = ++srv->next_id;
    kz_buf_init(&s->wbuf, (size_t)srv->cfg.max_output_bytes);
    uv_tcp_init(srv->loop, &s->tcp);
    uv_timer_init(srv->loop, &s->timer);
    uv_timer_init(srv->loop, &s->kick);
    s->tcp.data = s->timer.data = s->kick.data = s;
    s->handles = 3;
    s->state = SS_HANDSHAKE;
    /* Link first: session_close unlinks. */
    s->next = srv->sessions;
    if (srv->sessions)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->n_sessions++;
    srv->n_live++;
    srv->stats.sessions = srv->n_sessions;
    if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&s->tcp) != 0) {
        session_close(s, "accept failed");
        return;
    }
    srv->stats.accepted++;
    snprintf(s->peer, sizeof(s->peer), "?");
    if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &len) == 0) {
        char ip[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof(ip));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof(ip));
            port = ntohs(a->sin6_port);
        }
        snprintf(s->peer, sizeof(s->peer), "%s:%d", ip, port);
    }
    if (srv->stopping || srv->n_live > srv->cfg.max_connections) {
        srv->stats.refused++;
        session_close(s, srv->stopping ? "server stopping"
                                       : "too many connections");
        return;
    }
    memset(&cc, 0, sizeof(cc));
    cc.initiator = 0;
    cc.s = &srv->id.dh_sk;
    cc.env = kz_env_system();
    cc.out_max = (size_t)srv->cfg.max_output_bytes;
    err = kz_chan_new(&s->chan, &cc);
    if (err) {
        session_close(s, "out of memory");
        return;
    }
    uv_tcp_nodelay(&s->tcp, 1);
    s->last_read_ms = uv_now(srv->loop);
    uv_timer_start(&s->timer, on_timer, srv->cfg.handshake_timeout_ms, 0);
    session_start_reading(s);
    kz_log_debug("session %llu from %s", (unsigned long long)s->id, s->peer);
}

/* After the handshake: the idle timer replaces the handshake timer. */
static void
session_arm_idle(struct session *s)
{
    uint64_t every = s->srv->cfg.idle_timeout_ms / 4;
    uv_timer_start(&s->timer, on_timer, every ? every : 1, every ? every : 1);
}
