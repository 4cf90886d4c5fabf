/*
 * sync.h: a sync session with kzsyncd (DESIGN.md §7): push every local
 * change, pull everything new, apply, persist cursors — each step
 * crash-safe — and, in run mode, stay connected: pull at once on NOTIFY,
 * push local writes within a second, full round every N seconds.
 *
 * One round, as an explicit state machine over conn.c:
 *
 *   CONNECT → HELLO/WELCOME (clock check) → round: ROSTER_GET (→ ROSTER_PUT
 *   if the admin changed it and the server does not hold it yet) →
 *   KEYS_GET… → KEYS_PUT… (keys owed to others) → PUSH… (window of PUSHes,
 *   outbox acked as they are acknowledged) → PULL… (until a PULL brings
 *   nothing) → IDLE
 *   one-shot: IDLE → close, success.  run: IDLE → round on events (every
 *   round refreshes the roster and keys first).
 *
 * Crash safety: changesets are in the outbox before they are pushed and
 * leave it only once acknowledged (durable at the server); a re-push is
 * acknowledged again.  Each pulled changeset is applied together with its
 * cursor in one transaction.  So a kill at any moment loses nothing and the
 * next run converges.
 */
#ifndef KZ_CLIENT_SYNC_H
#define KZ_CLIENT_SYNC_H

#include <stdint.h>

#include <uv.h>

#include "ctx.h"
#include "kz.h"

struct sync_stats {
    uint64_t pushed;      /* changesets acknowledged */
    uint64_t pulled;      /* changesets received */
    uint64_t applied;     /* of those, new to this replica */
    uint64_t rows;        /* rows touched by applies */
    uint64_t conflicts;   /* concurrent overwrites recorded */
    uint64_t quarantined; /* cells waiting in quarantine */
    uint64_t replayed;    /* changesets served again, skipped */
};

struct sync_opts {
    int run;             /* 1: stay connected (kzsync run) */
    uint32_t every_s;    /* run: full round at least this often */
    int progress;        /* show progress on stderr (a terminal) */
    uint32_t timeout_ms; /* connect/handshake and silence limit */
};

struct sync;

/**
 * sync_start(out, loop, c, opts, done, data): connects and runs (one round
 * or, with opts->run, until sync_stop).  ${c} is borrowed and must outlive
 * the session.  ${done} runs once with 0 (success; in run mode: after
 * sync_stop) or the error that ended it, a one-line reason, and the
 * counts; the session is freed after it returns.
 */
KZ_MUST_CHECK int sync_start(struct sync **out, uv_loop_t *loop, struct kzc *c,
                             const struct sync_opts *opts,
                             void (*done)(void *data, int err, const char *why,
                                          const struct sync_stats *st),
                             void *data);

/** sync_stop(s): finishes the step under way, then closes; done follows. */
void sync_stop(struct sync *s);

#endif /* KZ_CLIENT_SYNC_H */
