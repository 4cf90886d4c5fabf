/*
 * conn.h: the client's connection to kzsyncd over libuv: TCP connect (a
 * name or an address), the Noise channel with the pinned server key, and
 * application messages in both directions.
 *
 * Everything runs on the caller's loop.  Callbacks: on_ready once the
 * handshake is done; on_msg for every message (decoded; borrowed for the
 * call); on_close exactly once, with 0 after conn_close or the error that
 * ended the connection and a one-line reason.  The struct is freed after
 * on_close returns.
 */
#ifndef KZ_CLIENT_CONN_H
#define KZ_CLIENT_CONN_H

#include <stdint.h>

#include <uv.h>

#include "crypto.h"
#include "kz.h"
#include "msg.h"

struct conn;

struct conn_cbs {
    void (*on_ready)(struct conn *c, void *data);
    void (*on_msg)(struct conn *c, const struct kz_msg *m, void *data);
    void (*on_close)(struct conn *c, int err, const char *why, void *data);
};

struct conn_opts {
    const char *server;               /* "HOST:PORT" or "[V6]:PORT" */
    const struct kz_dh_sk *sk;        /* our static key; copied */
    const struct kz_dh_pk *server_pk; /* pinned; copied */
    uint32_t timeout_ms;              /* connect + handshake, and idle */
    uint32_t idle_ms; /* once ready: silence limit instead (0: timeout_ms) */
};

/**
 * conn_open(out, loop, opts, cbs, data): starts connecting.  Returns 0 (the
 * callbacks follow) or -KZ_EINVAL (a bad server address) / -KZ_ENOMEM.
 */
KZ_MUST_CHECK int conn_open(struct conn **out, uv_loop_t *loop,
                            const struct conn_opts *opts,
                            const struct conn_cbs *cbs, void *data);

/**
 * conn_send(c, m): encrypts and queues ${m}.  Returns 0, or an error after
 * which the connection closes (on_close follows).
 */
KZ_MUST_CHECK int conn_send(struct conn *c, const struct kz_msg *m);

/** conn_close(c): closes; on_close(c, 0, …) follows.  Idempotent. */
void conn_close(struct conn *c);

/** conn_server_time(c): the server's clock from the handshake (ms). */
uint64_t conn_server_time(const struct conn *c);

/** conn_pending(c): bytes queued for the server and not yet written. */
size_t conn_pending(const struct conn *c);

/** conn_pause(c, on): stops or resumes reading (backpressure). */
void conn_pause(struct conn *c, int on);

#endif /* KZ_CLIENT_CONN_H */
