/*
 * server.c: kzsyncd's listener, session list, notify fan-out and shutdown.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "alloc.h"
#include "err.h"
#include "join.h"
#include "errcode.h"
#include "log.h"

#include "server_int.h"

static void
on_connection(uv_stream_t *l, int status)
{
    struct server *srv = l->data;

    if (status < 0) {
        kz_log_warn("accept: %s", uv_strerror(status));
        return;
    }
    session_accept(srv);
}

static void
on_roster_loaded(void *data, int status, uint64_t version, const uint8_t *bytes,
                 size_t len)
{
    struct server *srv = data;
    const char *why = NULL;

    if (status == -KZ_ENOENT) {
        kz_log_info("no roster yet: the admin's first roster is awaited");
        return;
    }
    if (status != 0) {
        kz_log_error("cannot read the stored roster: %s", kz_err_name(status));
        return;
    }
    if (auth_load(srv, bytes, len, &why) != 0) {
        kz_log_error("the stored roster (version %llu) does not verify: %s",
                     (unsigned long long)version, why ? why : "?");
        return;
    }
    kz_log_info("roster version %llu loaded", (unsigned long long)version);
    /* Sessions admitted before it was read (provisional) are members now,
     * or refused. */
    server_roster_changed(srv);
}

int
server_new(struct server **out, uv_loop_t *loop, const char *dir,
           const struct config *cfg, const struct kz_identity *id)
{
    struct server *srv;
    struct store_opts so;
    char path[2048];
    int err;

    *out = NULL;
    srv = kz_calloc(1, sizeof(*srv));
    if (srv == NULL)
        return -KZ_ENOMEM;
    srv->loop = loop;
    srv->cfg = *cfg;
    srv->id = *id;
    srv->dir = kz_strdup(dir);
    if (srv->dir == NULL) {
        err = -KZ_ENOMEM;
        goto fail;
    }
    if (cfg->admin_key[0]) {
        struct kz_sign_pk k;
        if (adminkey_decode(&k, cfg->admin_key) == 0)
            memcpy(srv->admin_pk, k.b, sizeof(srv->admin_pk));
        else {
            kz_log_error("admin_key in the configuration is not an admin key");
            err = -KZ_EINVAL;
            goto fail;
        }
        srv->have_admin = 1;
    }
    if (cfg->store_path[0] == '/')
        snprintf(path, sizeof(path), "%s", cfg->store_path);
    else
        snprintf(path, sizeof(path), "%s/%s", dir, cfg->store_path);
    memset(&so, 0, sizeof(so));
    so.max_batch = cfg->store_max_batch;
    err = store_sqlite_open(&srv->store, loop, path, &so);
    if (err) {
        kz_log_error("cannot open the store %s: %s", path, kz_strerror(err));
        goto fail;
    }
    if (store_roster_get(srv->store, on_roster_loaded, srv) != 0)
        kz_log_error("cannot queue reading the roster");
    *out = srv;
    return 0;
fail:
    sodium_memzero(&srv->id, sizeof(srv->id));
    kz_free(srv->dir);
    kz_free(srv);
    return err;
}

int
server_listen(struct server *srv)
{
    struct sockaddr_storage addr;
    char host[256];
    int port = 0, err;

    if (config_split_listen(srv->cfg.listen, host, sizeof(host), &port) != 0) {
        kz_log_error("listen = %s: not HOST:PORT", srv->cfg.listen);
        return -KZ_EINVAL;
    }
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0) {
        kz_log_error("listen = %s: not an IP address", srv->cfg.listen);
        return -KZ_EINVAL;
    }
    uv_tcp_init(srv->loop, &srv->listener);
    srv->listener.data = srv;
    srv->listening = 1;
    err = uv_tcp_bind(&srv->listener, (struct sockaddr *)&addr, 0);
    if (err == 0)
        err = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
    if (err) {
        kz_log_error("cannot listen on %s: %s", srv->cfg.listen,
                     uv_strerror(err));
        return err;
    }
    kz_log_info("listening on %s", srv->cfg.listen);
    return 0;
}

void
server_session_gone(struct server *srv, struct session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else if (srv->sessions == s)
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    srv->n_sessions--;
    srv->stats.sessions = srv->n_sessions;
}

void
server_scope_grew(struct server *srv, struct session *from, const char *scope,
                  uint64_t seq)
{
    struct session *s, *next;

    for (s = srv->sessions; s != NULL; s = next) {
        next = s->next; /* a failed send may close s */
        if (s != from && session_reads(s, scope))
            session_notify(s, scope, seq);
    }
}

void
server_roster_changed(struct server *srv)
{
    struct session *s, *next;

    for (s = srv->sessions; s != NULL; s = next) {
        struct member m;
        struct kz_dh_pk key;

        next = s->next;
        if (s->state == SS_HANDSHAKE || s->state == SS_CLOSING)
            continue;
        if (kz_chan_remote(s->chan, &key) != 0)
            continue;
        if (auth_admit(srv, &key, &m) == 0) {
            if (!s->admitted)
                kz_log_info("session %llu: now in the roster as %s",
                            (unsigned long long)s->id, m.name);
            s->member = m;
            s->admitted = 1;
            s->provisional = 0;
        } else if (s->admitted || s->provisional) {
            /* Revoked or removed: refused from now on. */
            session_close_with(s, KZ_WIRE_AUTH,
                               "no longer in the roster (revoked)");
        }
    }
}

void
server_get_stats(const struct server *srv, struct server_stats *out)
{
    *out = srv->stats;
}

/* The end of a stop: once the store is closed and no session is left
 * (a session closed after an ERROR lingers up to SESSION_LINGER_MS and
 * reads into srv->rbuf meanwhile). */
static void
maybe_finish(struct server *srv)
{
    void (*cb)(void *) = srv->stop_cb;
    void *cb_data = srv->stop_data;

    if (!srv->store_closed || srv->n_live > 0)
        return;
    kz_log_info("stopped");
    auth_free(srv);
    sodium_memzero(&srv->id, sizeof(srv->id));
    kz_free(srv->dir);
    kz_free(srv);
    if (cb)
        cb(cb_data);
}

static void
on_store_closed(void *data)
{
    struct server *srv = data;

    kz_log_info("store closed");
    srv->store_closed = 1;
    maybe_finish(srv);
}

void
server_session_freed(struct server *srv)
{
    srv->n_live--;
    maybe_finish(srv);
}

/* Sessions are closing; their store callbacks still arrive, and the store
 * finishes every queued job before its close callback.  Signature checks
 * still on the thread pool come back first: they may not find the store
 * gone. */
static void
close_store(struct server *srv)
{
    if (srv->pending_work > 0) {
        srv->close_store_later = 1;
        return;
    }
    srv->close_store_later = 0;
    store_close(srv->store, on_store_closed, srv);
}

void
server_work_done(struct server *srv)
{
    srv->pending_work--;
    if (srv->close_store_later && srv->pending_work == 0)
        close_store(srv);
}

static void
on_spare_closed(uv_handle_t *h)
{
    struct server *srv = h->data;

    srv->spare_busy = 0;
    if (srv->accept_owed && !srv->stopping) {
        /* Not stopping, so nothing to finish: uncount the spare before the
         * waiting connection is counted against max_connections. */
        srv->accept_owed = 0;
        srv->n_live--;
        session_accept(srv);
        return;
    }
    server_session_freed(srv);
}

void
server_accept_refuse(struct server *srv)
{
    if (srv->spare_busy) {
        /* on_spare_closed tries again. */
        srv->accept_owed = 1;
        return;
    }
    uv_tcp_init(srv->loop, &srv->spare);
    srv->spare.data = srv;
    srv->spare_busy = 1;
    srv->n_live++; /* the server outlives the handle (maybe_finish) */
    if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&srv->spare) ==
        0)
        srv->stats.refused++;
    uv_close((uv_handle_t *)&srv->spare, on_spare_closed);
}

static void
on_listener_closed(uv_handle_t *h)
{
    close_store(h->data);
}

void
server_stop(struct server *srv, void (*cb)(void *data), void *data)
{
    struct session *s, *next;

    if (srv->stopping)
        return;
    srv->stopping = 1;
    srv->stop_cb = cb;
    srv->stop_data = data;
    kz_log_info("stopping: %u sessions (%u more closing)", srv->n_sessions,
                srv->n_live - srv->n_sessions);
    for (s = srv->sessions; s != NULL; s = next) {
        next = s->next;
        session_close_with(s, KZ_WIRE_SHUTDOWN, "server stopping");
    }
    if (srv->listening)
        uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    else
        close_store(srv);
}
