/*
 * server.h: kzsyncd's server: one libuv loop, a listening socket, sessions
 * (session.c), the store (store.h) and the roster (auth.c).
 *
 * Threads: everything here runs on the loop thread; the store's disk work
 * runs on its own thread and comes back through callbacks (STYLE.md 13).
 */
#ifndef KZ_SERVER_SERVER_H
#define KZ_SERVER_SERVER_H

#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "crypto.h"
#include "keyfile.h"
#include "kz.h"

struct server;
struct session;

/* Counters for the log and for tests. */
struct server_stats {
    uint64_t accepted;   /* connections accepted */
    uint64_t refused;    /* refused at accept (max_connections, stopping) */
    uint64_t admitted;   /* sessions that passed the roster check */
    uint64_t closed_bad; /* sessions closed for a protocol error */
    uint32_t sessions;   /* open now */
    uint64_t pushes;     /* changesets acknowledged */
};

/**
 * server_new(out, loop, dir, cfg, id): a server for the data folder ${dir}
 * with configuration ${cfg} (copied) and the server identity ${id}
 * (copied; the caller wipes its own).  Opens the store.  Returns 0 or an
 * error with a message logged.
 */
KZ_MUST_CHECK int server_new(struct server **out, uv_loop_t *loop,
                             const char *dir, const struct config *cfg,
                             const struct kz_identity *id);

/** server_listen(s): binds and listens on cfg.listen.  0 or -errno. */
KZ_MUST_CHECK int server_listen(struct server *s);

/**
 * server_stop(s, cb, data): stops accepting, closes every session, lets
 * the store finish every job in flight (acknowledged pushes are durable),
 * closes it, frees ${s} and calls ${cb}.  Idempotent.
 */
void server_stop(struct server *s, void (*cb)(void *data), void *data);

void server_get_stats(const struct server *s, struct server_stats *out);

#endif /* KZ_SERVER_SERVER_H */
