/*
 * sync.c: the sync session (see sync.h for the state machine).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <unistd.h>

#include <sodium.h>

#include "alloc.h"
#include "changeset.h"
#include "conn.h"
#include "err.h"
#include "errcode.h"
#include "hlc.h"
#include "keys.h"
#include "seal.h"

#include "sync.h"

#define PUSH_WINDOW 16u
/* The build packs this many log rows per step (its own transaction), and
 * packs the next step only while less than BUILD_AHEAD bytes wait to be
 * written: the server checks and stores one step's changesets while the
 * next is packed. */
#define BUILD_STEP_ROWS 8192u
#define BUILD_AHEAD (1024u * 1024)
#define PULL_MAX_BYTES (8u * 1024 * 1024)
/* Pulled changesets applied in one transaction, at most (their opened
 * bodies are held meanwhile: PULL_MAX_BYTES bounds them). */
#define BATCH_APPLY_MAX 64u
#define MAX_SCOPES 256u
#define TICK_MS 250u /* local writes reach the server within a second */
#define KEEPALIVE_MS 60000u
#define LOCKWAIT_MS 100u        /* another process's round: try again after */
#define LOCKWAIT_MAX_MS 120000u /* one-shot: then give up */
#define IDLE_LIMIT_MS (KEEPALIVE_MS * 5 / 2) /* run: silence, then gone */
#define STOP_GRACE_MS 5000u /* run: a round still busy when asked to stop */

enum sync_state {
    ST_CONNECT = 1,  /* connecting, handshake */
    ST_WELCOME,      /* HELLO sent */
    ST_ROSTER,       /* ROSTER_GET sent */
    ST_ROSTER_CHECK, /* admin: ROSTER_GET sent: is its upload there? */
    ST_ROSTER_PUT,   /* ROSTER_PUT sent */
    ST_KEYS,         /* KEYS_GET sent */
    ST_KEYS_PUT,     /* KEYS_PUT sent */
    ST_PUSH,         /* pushing the outbox */
    ST_PULL,         /* pulling */
    ST_IDLE,         /* run mode: waiting for events */
    ST_LOCKWAIT,     /* another process syncs this folder: waiting */
    ST_DONE          /* closing */
};

/* A PUSH waiting for its acknowledgement. */
struct inflight {
    uint32_t req;                    /* its request id */
    char scope[KZ_LIM_NAME_MAX + 1]; /* outbox scope */
    uint64_t seq;                    /* author_seq */
};

struct sync {
    uv_loop_t *loop;                       /* borrowed */
    struct kzc *c;                         /* borrowed */
    struct sync_opts o;                    /* copy */
    struct conn *conn;                     /* NULL when not connected */
    enum sync_state state;                 /* see sync.h */
    uv_timer_t tick;                       /* run mode: change detection */
    int tick_open;                         /* tick initialised */
    uint32_t next_req;                     /* request ids */
    uint32_t wait_req;                     /* the request answered next */
    struct inflight inflight[PUSH_WINDOW]; /* PUSHes in flight */
    uint32_t n_inflight;
    char scopes[MAX_SCOPES][KZ_LIM_NAME_MAX + 1]; /* pull order */
    uint32_t n_scopes;
    char outbox_scopes[16][KZ_LIM_NAME_MAX + 1]; /* scopes we push to */
    uint64_t outbox_sent[16];                    /* last seq sent in each */
    uint32_t n_outbox;
    uint32_t outbox_i;                /* scope being pushed */
    int build_more;                   /* log rows may wait to be packed */
    uint64_t pull_items;              /* items in the current PULL */
    int want_push, want_pull;         /* run mode: events */
    struct keys_out owed;             /* envelopes being uploaded */
    uint32_t owed_off;                /* first not yet acknowledged */
    uint32_t owed_chunk;              /* in the KEYS_PUT under way */
    char no_key[KZ_LIM_NAME_MAX + 1]; /* a scope we could not seal for */
    int stopping;                     /* sync_stop called */
    int subscribed;                   /* SUBSCRIBE sent */
    int64_t data_version;             /* PRAGMA data_version last seen */
    uint64_t last_round_ms;           /* run: last full round */
    uint64_t last_ping_ms;            /* run: last keepalive PING */
    int err;                          /* first error */
    char why[400];                    /* its reason */
    struct sync_stats st;             /* counts */
    void (*done)(void *, int, const char *, const struct sync_stats *);
    void *data; /* done's cookie */
    int done_called;
    int lock_fd;          /* DIR/sync.lock, or -1 */
    int locked;           /* a round holds it */
    uv_timer_t lockwait;  /* retries the lock */
    int lockwait_open;    /* lockwait initialised */
    uint64_t lockwait_ms; /* one-shot: waiting since */
    struct conn_opts co;  /* one-shot: connects once it holds the lock */
};

static void start_round(struct sync *s);
static void push_more(struct sync *s);
static void push_start(struct sync *s);
static void pull(struct sync *s);

static void fail(struct sync *s, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
finish_if_closed(struct sync *s)
{
    if (s->conn != NULL || s->tick_open || s->lockwait_open || s->done_called)
        return;
    s->done_called = 1;
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* and with it the lock */
    keys_out_free(&s->owed);
    s->done(s->data, s->err, s->err ? s->why : "", &s->st);
    kz_free(s);
}

static void
on_tick_closed(uv_handle_t *h)
{
    struct sync *s = h->data;

    s->tick_open = 0;
    finish_if_closed(s);
}

static void
on_lockwait_closed(uv_handle_t *h)
{
    struct sync *s = h->data;

    s->lockwait_open = 0;
    finish_if_closed(s);
}

/*
 * Two kzsync processes on one folder (a `run`, and a `sync` by hand) must
 * not seal, push and acknowledge the same outbox side by side — one would
 * seal a changeset afresh that the other had pushed, and the server refuse
 * it as other content under the same sequence number — nor make scope keys
 * side by side.  A round holds an exclusive flock on DIR/sync.lock; `run`
 * lets go of it between rounds.  Returns 1 (held), 0 (another process has
 * it) or an error.
 */
static int
round_lock(struct sync *s)
{
    if (s->locked)
        return 1;
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) == 0) {
        s->locked = 1;
        return 1;
    }
    return errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
}

static void
round_unlock(struct sync *s)
{
    if (s->locked && flock(s->lock_fd, LOCK_UN) == 0)
        s->locked = 0;
}

static void
shut(struct sync *s)
{
    s->state = ST_DONE;
    round_unlock(s);
    if (s->conn)
        conn_close(s->conn);
    if (s->tick_open && !uv_is_closing((uv_handle_t *)&s->tick))
        uv_close((uv_handle_t *)&s->tick, on_tick_closed);
    if (s->lockwait_open && !uv_is_closing((uv_handle_t *)&s->lockwait))
        uv_close((uv_handle_t *)&s->lockwait, on_lockwait_closed);
    finish_if_closed(s);
}

static void
fail(struct sync *s, int err, const char *fmt, ...)
{
    va_list ap;

    if (s->err == 0) {
        s->err = err;
        va_start(ap, fmt);
        vsnprintf(s->why, sizeof(s->why), fmt, ap);
        va_end(ap);
    }
    shut(s);
}

static void
progress(struct sync *s, const char *what)
{
    if (!s->o.progress)
        return;
    fprintf(stderr, "\r\033[Kkzsync: %s — pushed %llu, pulled %llu changesets",
            what, (unsigned long long)s->st.pushed,
            (unsigned long long)s->st.pulled);
    fflush(stderr);
}

static int
send_msg(struct sync *s, struct kz_msg *m)
{
    int err = conn_send(s->conn, m);

    if (err)
        fail(s, err, "cannot send to the server: %s", kz_strerror(err));
    return err;
}

/* ---- round: HELLO, clock, roster ------------------------------------ */

static void
on_ready(struct conn *conn, void *data)
{
    struct sync *s = data;
    struct kz_msg m;
    static const char sw[] = "kzsync/0.1.0";

    (void)conn;
    kz_msg_hello(&m, sw);
    if (send_msg(s, &m) == 0)
        s->state = ST_WELCOME;
}

static void
check_clock(struct sync *s, uint64_t server_ms)
{
    uint64_t now = kz_env_wall_ms(kz_env_system());
    int64_t diff = (int64_t)server_ms - (int64_t)now;
    int64_t skew = KZ_HLC_SKEW_MS_DEFAULT;
    int err;

    if (diff > skew || diff < -skew) {
        fprintf(stderr,
                "kzsync: this computer's clock is %lld minutes %s the "
                "server's; kzsync corrects its own clock by that\n",
                (long long)(diff < 0 ? -diff : diff) / 60000,
                diff < 0 ? "ahead of" : "behind");
        err = replica_set_clock_offset(s->c->r, diff);
    } else {
        err = replica_set_clock_offset(s->c->r, 0);
    }
    if (err)
        fail(s, err, "cannot keep the clock offset");
}

static void
roster_get(struct sync *s)
{
    struct kz_msg m;

    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_ROSTER_GET;
    m.roster_get.req = s->wait_req = ++s->next_req;
    m.roster_get.have_version = s->c->roster ? roster_version(s->c->roster) : 0;
    if (send_msg(s, &m) == 0)
        s->state = ST_ROSTER;
}

/* The admin uploads its roster when it changed it (kzsync member …). */
static int
roster_put_if_dirty(struct sync *s)
{
    char dirty[8] = "";
    uint8_t *bytes = NULL;
    size_t len = 0;
    struct kz_msg m;
    int err;

    if (replica_meta_get(s->c->r, "roster_dirty", dirty, sizeof(dirty)) != 0 ||
        strcmp(dirty, "1") != 0)
        return 0;
    if (s->state != ST_ROSTER_CHECK) {
        /* First ask whether the server holds it already: a crash after it
         * stored the last upload, before we noted so, must not make the
         * server refuse the same version for ever. */
        uint64_t v = s->c->roster ? roster_version(s->c->roster) : 0;
        memset(&m, 0, sizeof(m));
        m.type = KZ_MSG_ROSTER_GET;
        m.roster_get.req = s->wait_req = ++s->next_req;
        m.roster_get.have_version = v ? v - 1 : 0;
        if (send_msg(s, &m) != 0)
            return -1;
        s->state = ST_ROSTER_CHECK;
        return 1;
    }
    if ((err = replica_meta_get_blob(s->c->r, "roster", &bytes, &len))) {
        fail(s, err, "cannot read the roster to upload");
        return -1;
    }
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_ROSTER_PUT;
    m.roster_put.req = s->wait_req = ++s->next_req;
    m.roster_put.roster.p = bytes;
    m.roster_put.roster.len = len;
    err = send_msg(s, &m);
    kz_free(bytes);
    if (err)
        return -1;
    s->state = ST_ROSTER_PUT;
    return 1;
}

static void keys_get_next(struct sync *s);

/* The admin's roster is the server's already, or goes up now. */
static void
on_roster_check(struct sync *s, const struct kz_msg_roster *r)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    int err, same;

    if ((err = replica_meta_get_blob(s->c->r, "roster", &bytes, &len))) {
        fail(s, err, "cannot read the roster to upload");
        return;
    }
    same = r->has_roster && r->roster.len == len &&
           memcmp(r->roster.p, bytes, len) == 0;
    kz_free(bytes);
    if (!same) {
        if (roster_put_if_dirty(s) == 0) {
            /* no longer to upload after all */
            s->n_scopes = kzc_scopes(s->c, s->scopes, MAX_SCOPES);
            keys_get_next(s);
        }
        return;
    }
    if ((err = replica_meta_set(s->c->r, "roster_dirty", "0"))) {
        fail(s, err, "cannot update the roster state");
        return;
    }
    s->n_scopes = kzc_scopes(s->c, s->scopes, MAX_SCOPES);
    keys_get_next(s);
}

static void
keys_get_next(struct sync *s)
{
    struct kz_msg m;
    char after[32] = "0";

    if (replica_meta_get(s->c->r, "keys_after", after, sizeof(after)) != 0)
        snprintf(after, sizeof(after), "0");
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_KEYS_GET;
    m.keys_get.req = s->wait_req = ++s->next_req;
    m.keys_get.after_id = strtoull(after, NULL, 10);
    if (send_msg(s, &m) == 0)
        s->state = ST_KEYS;
}

/* Sends the next chunk of owed envelopes (at most KZ_LIM_KEYS_MAX). */
static void
keys_put_chunk(struct sync *s)
{
    struct kz_msg m;
    struct kz_msg_bin *envs;
    uint32_t i, n;
    int err;

    if (s->owed_off >= s->owed.n) {
        keys_out_free(&s->owed);
        push_start(s);
        return;
    }
    n = s->owed.n - s->owed_off;
    if (n > KZ_LIM_KEYS_MAX)
        n = KZ_LIM_KEYS_MAX;
    envs = kz_calloc(n, sizeof(*envs));
    if (envs == NULL) {
        fail(s, -KZ_ENOMEM, "out of memory");
        return;
    }
    for (i = 0; i < n; i++) {
        envs[i].p = s->owed.envs[s->owed_off + i].bytes;
        envs[i].len = s->owed.envs[s->owed_off + i].len;
    }
    s->owed_chunk = n;
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_KEYS_PUT;
    m.keys_put.req = s->wait_req = ++s->next_req;
    m.keys_put.envs = envs;
    m.keys_put.n_envs = n;
    err = send_msg(s, &m);
    kz_free(envs);
    if (err == 0)
        s->state = ST_KEYS_PUT;
}

/* Keys we make or owe others go up before our changesets need them. */
static void
keys_put_owed(struct sync *s)
{
    int err;

    keys_out_free(&s->owed);
    s->owed_off = 0;
    err = keys_duties(s->c, &s->owed);
    if (err) {
        fail(s, err, "cannot make or share scope keys: %s", kz_strerror(err));
        return;
    }
    keys_put_chunk(s);
}

static void
on_keys(struct sync *s, const struct kz_msg_keys *k)
{
    uint64_t last = 0;
    uint32_t i;
    char text[32];

    for (i = 0; i < k->n_keys; i++) {
        const char *why = NULL;
        int rc = keys_accept(s->c, k->keys[i].env.p, k->keys[i].env.len, &why);
        if (rc == -KZ_EDB || rc == -KZ_ENOMEM) {
            fail(s, rc, "cannot keep a key envelope: %s",
                 why ? why : kz_strerror(rc));
            return;
        }
        if (rc == -KZ_ENOENT || rc == -KZ_EVERSION) {
            /* It may pass later (a roster newer than ours, a newer kzsync):
             * not skipped; the next round asks for it again. */
            fail(s, -KZ_EIO,
                 "a key envelope cannot be taken yet: %s; sync "
                 "again (a newer kzsync may be needed)",
                 why ? why : kz_strerror(rc));
            return;
        }
        if (rc < 0) {
            /* Refused for good (its sealer was revoked since, say): asking
             * again would bring it again, and every later key with it. */
            fprintf(stderr,
                    "kzsync: skipped a key envelope from the server: %s\n",
                    why ? why : kz_strerror(rc));
        }
        last = k->keys[i].id;
    }
    if (last) {
        snprintf(text, sizeof(text), "%llu", (unsigned long long)last);
        if (replica_meta_set(s->c->r, "keys_after", text) != 0) {
            fail(s, -KZ_EDB, "cannot record the keys received");
            return;
        }
    }
    if (!k->done) {
        keys_get_next(s);
        return;
    }
    keys_put_owed(s);
}

static void
after_roster(struct sync *s)
{
    int rc = roster_put_if_dirty(s);

    if (rc != 0)
        return;
    s->n_scopes = kzc_scopes(s->c, s->scopes, MAX_SCOPES);
    keys_get_next(s);
}

/* ---- push ------------------------------------------------------------ */

/* Adds ${scope} to the scopes pushed, once. */
static void
collect_scope(void *data, const char *scope, uint64_t n)
{
    struct sync *s = data;
    uint32_t i;

    (void)n;
    for (i = 0; i < s->n_outbox; i++)
        if (strcmp(s->outbox_scopes[i], scope) == 0)
            return;
    if (s->n_outbox < 16) {
        snprintf(s->outbox_scopes[s->n_outbox], KZ_LIM_NAME_MAX + 1, "%s",
                 scope);
        s->outbox_sent[s->n_outbox++] = 0;
    }
}

/* Packs one more step of local changes and looks at every scope again
 * (the step may have added to a scope already pushed). */
static int
build_next(struct sync *s)
{
    int more = 0;
    int made = replica_build_step(s->c->r, 0, BUILD_STEP_ROWS, &more);

    if (made < 0) {
        fail(s, made, "cannot pack local changes: %s", replica_errmsg(s->c->r));
        return made;
    }
    s->build_more = more;
    if (replica_outbox_scopes(s->c->r, collect_scope, s) != 0) {
        fail(s, -KZ_EDB, "cannot read the outbox");
        return -KZ_EDB;
    }
    s->outbox_i = 0;
    return 0;
}

static void
push_start(struct sync *s)
{
    s->n_outbox = 0;
    s->outbox_i = 0;
    s->build_more = 1;
    s->state = ST_PUSH;
    push_more(s);
}

/* A changeset as it goes to the server: header with the key epoch, body
 * sealed under the scope's newest key, the author's signature over both. */
struct sealed {
    uint8_t *hdr, *body; /* owned */
    size_t hdr_len, body_len;
    uint8_t sig[64];
};

/*
 * Seals a changeset for the server.  The first time it picks the newest key
 * epoch and a random nonce and keeps both (kz_sealed); a re-push after a
 * crash seals again with the same epoch and nonce, which gives the very
 * same bytes (the server acknowledges a re-sent changeset only if it is
 * identical, and Ed25519 signatures are deterministic).  Returns 0, 1 if
 * this device has no key for the scope yet, or an error.
 */
static int
seal_outbox(struct sync *s, const struct replica_cs *cs, struct sealed *sd)
{
    struct kz_cs_header h = cs->hdr;
    struct kz_aead_key key;
    struct kz_sign_sig sig;
    sqlite3_stmt *st = NULL;
    uint8_t nonce[KZ_SEAL_NONCE_LEN];
    uint64_t epoch = 0;
    int rc, have = 0;

    memset(sd, 0, sizeof(*sd));
    if (sqlite3_prepare_v2(replica_db(s->c->r),
                           "SELECT epoch, nonce FROM kz_sealed WHERE scope = ?"
                           " AND seq = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return -KZ_EDB;
    sqlite3_bind_text(st, 1, h.scope, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)h.author_seq);
    if (sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_bytes(st, 1) == KZ_SEAL_NONCE_LEN) {
        epoch = (uint64_t)sqlite3_column_int64(st, 0);
        memcpy(nonce, sqlite3_column_blob(st, 1), sizeof(nonce));
        have = 1;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (!have) {
        if (keys_latest(s->c, h.scope, &epoch) != 0)
            return 1;
        kz_env_random(kz_env_system(), nonce, sizeof(nonce));
    }
    if (keys_get(s->c, h.scope, epoch, &key) != 0)
        return 1;
    if (!have) {
        rc = sqlite3_prepare_v2(replica_db(s->c->r),
                                "INSERT INTO kz_sealed VALUES (?, ?, ?, ?)", -1,
                                &st, NULL) == SQLITE_OK
                 ? 0
                 : -KZ_EDB;
        if (rc == 0) {
            sqlite3_bind_text(st, 1, h.scope, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, (int64_t)h.author_seq);
            sqlite3_bind_int64(st, 3, (int64_t)epoch);
            sqlite3_bind_blob(st, 4, nonce, sizeof(nonce), SQLITE_STATIC);
            rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -KZ_EDB;
        }
        sqlite3_finalize(st);
        if (rc)
            goto out;
    }
    h.epoch = (uint32_t)epoch;
    if ((rc = kz_cs_header_encode(&h, &sd->hdr, &sd->hdr_len)) != 0)
        goto out;
    rc = kz_seal_body_nonce(&sd->body, &sd->body_len, cs->body, cs->body_len,
                            sd->hdr, sd->hdr_len, &key, nonce);
    if (rc)
        goto out;
    rc = kz_cs_sign(&sig, sd->hdr, sd->hdr_len, sd->body, sd->body_len,
                    &s->c->id.sign_sk);
    if (rc == 0)
        memcpy(sd->sig, sig.b, sizeof(sd->sig));
out:
    sodium_memzero(&key, sizeof(key));
    if (rc) {
        kz_free(sd->hdr);
        kz_free(sd->body);
        memset(sd, 0, sizeof(*sd));
    }
    return rc;
}

static void
push_more(struct sync *s)
{
    while (s->state == ST_PUSH && s->n_inflight < PUSH_WINDOW) {
        struct replica_cs cs;
        struct kz_msg m;
        struct kz_sign_sig sig;
        int rc;

        if (s->outbox_i >= s->n_outbox) {
            /* Everything packed is sent: pack more, unless enough still
             * waits to be written (an acknowledgement comes back here). */
            if (!s->build_more || conn_pending(s->conn) >= BUILD_AHEAD ||
                build_next(s) != 0)
                break;
            continue;
        }
        rc = replica_outbox_get(s->c->r, s->outbox_scopes[s->outbox_i],
                                s->outbox_sent[s->outbox_i], &cs);
        if (rc < 0) {
            fail(s, rc, "cannot read the outbox");
            return;
        }
        if (rc == 0) {
            s->outbox_i++;
            continue;
        }
        {
            struct sealed sd;
            rc = seal_outbox(s, &cs, &sd);
            if (rc == 1) {
                /* No key for this scope yet: leave it in the outbox. */
                snprintf(s->no_key, sizeof(s->no_key), "%s", cs.hdr.scope);
                replica_cs_clear(&cs);
                s->outbox_i++;
                continue;
            }
            if (rc < 0) {
                replica_cs_clear(&cs);
                fail(s, rc, "cannot seal a changeset: %s", kz_strerror(rc));
                return;
            }
            /* PUSH carries the sealed form; keep cs's bytes for the ids. */
            kz_free(cs.hdr_bytes);
            kz_free(cs.body);
            cs.hdr_bytes = sd.hdr;
            cs.hdr_len = sd.hdr_len;
            cs.body = sd.body;
            cs.body_len = sd.body_len;
            memcpy(sig.b, sd.sig, sizeof(sig.b));
        }
        memset(&m, 0, sizeof(m));
        m.type = KZ_MSG_PUSH;
        m.push.req = ++s->next_req;
        m.push.scope.p = cs.hdr.scope;
        m.push.scope.len = strlen(cs.hdr.scope);
        m.push.hdr.p = cs.hdr_bytes;
        m.push.hdr.len = cs.hdr_len;
        m.push.body.p = cs.body;
        m.push.body.len = cs.body_len;
        m.push.sig = sig.b;
        s->inflight[s->n_inflight].req = m.push.req;
        snprintf(s->inflight[s->n_inflight].scope, KZ_LIM_NAME_MAX + 1, "%s",
                 cs.hdr.scope);
        s->inflight[s->n_inflight].seq = cs.hdr.author_seq;
        s->outbox_sent[s->outbox_i] = cs.hdr.author_seq;
        rc = send_msg(s, &m);
        replica_cs_clear(&cs);
        if (rc)
            return;
        s->n_inflight++;
    }
    if (s->state == ST_PUSH && s->n_inflight == 0 &&
        s->outbox_i >= s->n_outbox && !s->build_more) {
        progress(s, "pushed");
        pull(s);
    }
}

static void
on_push_ack(struct sync *s, const struct kz_msg_push_ack *a)
{
    sqlite3 *db;
    uint32_t i;
    int err;

    for (i = 0; i < s->n_inflight; i++)
        if (s->inflight[i].req == a->req)
            break;
    if (i == s->n_inflight) {
        fail(s, -KZ_EMALFORMED, "the server acknowledged an unknown push");
        return;
    }
    /* Durable at the server: it may leave the outbox, and when it is the
     * next changeset of its scope, the cursor moves onto it instead of a
     * PULL bringing it back (PROTOCOL.md, PUSH_ACK).  One transaction. */
    db = replica_db(s->c->r);
    err = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
              ? 0
              : -KZ_EDB;
    if (err == 0)
        err = replica_outbox_ack(s->c->r, s->inflight[i].scope,
                                 s->inflight[i].seq);
    if (err == 0) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db,
                               "DELETE FROM kz_sealed WHERE scope = ? AND"
                               " seq <= ?",
                               -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, s->inflight[i].scope, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, (int64_t)s->inflight[i].seq);
            if (sqlite3_step(st) != SQLITE_DONE)
                err = -KZ_EDB;
        } else {
            err = -KZ_EDB;
        }
        sqlite3_finalize(st);
    }
    if (err == 0 && (err = replica_cursor_follow(s->c->r, s->inflight[i].scope,
                                                 a->server_seq)) > 0)
        err = 0;
    if (err == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        err = -KZ_EDB;
    if (err && !sqlite3_get_autocommit(db))
        (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    if (err) {
        fail(s, err, "cannot update the outbox: %s", replica_errmsg(s->c->r));
        return;
    }
    s->inflight[i] = s->inflight[--s->n_inflight];
    s->st.pushed++;
    progress(s, "pushing");
    push_more(s);
}

/* ---- pull ------------------------------------------------------------ */

static void
pull(struct sync *s)
{
    struct kz_msg m;
    struct kz_msg_cursor cur[MAX_SCOPES];
    uint32_t i;

    memset(&m, 0, sizeof(m));
    for (i = 0; i < s->n_scopes; i++) {
        uint64_t seq = 0;
        if (replica_cursor_get(s->c->r, s->scopes[i], &seq) != 0) {
            fail(s, -KZ_EDB, "cannot read the cursors");
            return;
        }
        cur[i].scope.p = s->scopes[i];
        cur[i].scope.len = strlen(s->scopes[i]);
        cur[i].after_seq = seq;
    }
    m.type = KZ_MSG_PULL;
    m.pull.req = s->wait_req = ++s->next_req;
    m.pull.cursors = cur;
    m.pull.n_cursors = s->n_scopes;
    m.pull.max_bytes = PULL_MAX_BYTES;
    s->pull_items = 0;
    if (send_msg(s, &m) == 0)
        s->state = ST_PULL;
}

/* Checks a pulled changeset against the roster before anything reads it:
 * the author is a member allowed to write the scope, and signed it. */
static int
verify_item(struct sync *s, const struct kz_msg_item *it,
            struct kz_cs_header *h, char *scope)
{
    const struct roster_member *m;
    struct kz_sign_pk author;

    scope[0] = '\0';
    if (it->scope.len == 0 || it->scope.len > KZ_LIM_NAME_MAX)
        return -KZ_EMALFORMED;
    memcpy(scope, it->scope.p, it->scope.len);
    scope[it->scope.len] = '\0';
    if (kz_cs_header_decode(h, it->hdr.p, it->hdr.len, NULL) != 0 ||
        strcmp(h->scope, scope) != 0)
        return -KZ_EMALFORMED;
    memcpy(author.b, h->author, sizeof(author.b));
    m = s->c->roster ? roster_find_by_sign(s->c->roster, &author) : NULL;
    if (m == NULL)
        return -KZ_ENOENT;
    if (!roster_may_write(s->c->roster, m, scope) &&
        !(m->revoked && roster_seq_accepted(m, scope, h->author_seq)))
        return -KZ_EPERM;
    return kz_cs_verify(it->sig, it->hdr.p, it->hdr.len, it->body.p,
                        it->body.len, h->author);
}

/* A pulled changeset checked and opened, waiting for apply_pulled. */
struct pulled {
    struct kz_cs_header h;
    char scope[KZ_LIM_NAME_MAX + 1];
    uint64_t server_seq;
    uint8_t *plain; /* opened body; NULL for our own */
    size_t plain_len;
    int own; /* ours: only the cursor moves */
};

/*
 * Applies the first ${n} of ${p} in one transaction and counts them.  A
 * changeset that fails ends the round with its error; those before it are
 * kept.  Returns 0, or -1 when the round failed.
 */
static int
apply_pulled(struct sync *s, struct pulled *p, uint32_t n)
{
    struct replica_in in[BATCH_APPLY_MAX];
    struct apply_stats st[BATCH_APPLY_MAX];
    uint32_t i, done = 0;
    int err;

    if (n == 0)
        return 0;
    for (i = 0; i < n; i++) {
        in[i].hdr = &p[i].h;
        in[i].body = p[i].plain;
        in[i].body_len = p[i].plain_len;
        in[i].server_seq = p[i].server_seq;
    }
    err = replica_apply_many(s->c->r, in, n, st, &done);
    for (i = 0; i < done; i++) {
        s->st.pulled++;
        s->pull_items++;
        if (p[i].own)
            continue; /* here already; only the cursor moved */
        if (st[i].duplicate) {
            s->st.replayed++; /* applied before: the server served it again */
            continue;
        }
        s->st.applied++;
        s->st.rows += st[i].rows;
        s->st.conflicts += st[i].conflicts;
        s->st.quarantined += st[i].quarantined;
    }
    if (err == 0)
        return 0;
    if (err == -KZ_ESEQ && p[done].own) {
        /* This folder is older than the server's copy of our own
         * changeset: it lacks those changes and must not move on. */
        fail(s, -KZ_EREFUSED,
             "%s: was this folder restored from a backup or copied?  Set the "
             "device up anew (kzsync init in a new folder) and ask the state "
             "office to add it",
             replica_errmsg(s->c->r));
    } else if (err == -KZ_ESEQ) {
        struct kz_sign_pk ak;
        const struct roster_member *am;
        memcpy(ak.b, p[done].h.author, sizeof(ak.b));
        am = roster_find_by_sign(s->c->roster, &ak);
        fail(s, -KZ_EREFUSED,
             "changesets of device %s missing: %s (the server withheld or "
             "lost them)",
             am ? am->name : "?", replica_errmsg(s->c->r));
    } else {
        fail(s, err, "cannot apply changeset %llu of %s: %s",
             (unsigned long long)p[done].server_seq, p[done].scope,
             replica_errmsg(s->c->r));
    }
    return -1;
}

/* Wipes and frees the opened bodies of ${p}'s ${n} entries. */
static void
pulled_clear(struct pulled *p, uint32_t n)
{
    uint32_t i;

    for (i = 0; i < n; i++) {
        if (p[i].plain) {
            sodium_memzero(p[i].plain, p[i].plain_len);
            kz_free(p[i].plain);
        }
        memset(&p[i], 0, sizeof(p[i]));
    }
}

/*
 * A BATCH's changesets: each checked against the roster and opened first,
 * then applied in one transaction (BATCH_APPLY_MAX at a time).  One that
 * fails its check ends the round after those before it are applied.
 * Returns 0, or -1 when the round failed.
 */
static int
apply_batch(struct sync *s, const struct kz_msg_batch *b)
{
    struct pulled *p = NULL;
    uint32_t i, n = 0, cap = KZ_MIN(b->n_items, BATCH_APPLY_MAX);
    int rc = -1;

    if (b->n_items == 0)
        return 0;
    p = kz_calloc(cap, sizeof(*p));
    if (p == NULL) {
        fail(s, -KZ_ENOMEM, "cannot apply a batch: out of memory");
        return -1;
    }
    for (i = 0; i < b->n_items; i++) {
        const struct kz_msg_item *it = &b->items[i];
        struct pulled *x = &p[n];
        struct kz_aead_key key;
        int err;

        memset(x, 0, sizeof(*x));
        x->server_seq = it->server_seq;
        err = verify_item(s, it, &x->h, x->scope);
        if (err) {
            if (apply_pulled(s, p, n) == 0)
                fail(s, err == -KZ_ENOMEM ? err : -KZ_EREFUSED,
                     "refused changeset %llu of %s: %s",
                     (unsigned long long)it->server_seq, x->scope,
                     err == -KZ_ENOENT  ? "its author is not in the roster"
                     : err == -KZ_EAUTH ? "the signature does not verify"
                     : err == -KZ_EPERM ? "its author may not write this scope"
                                        : "malformed");
            goto out;
        }
        x->own = memcmp(x->h.author, s->c->id.sign_pk.b, 32) == 0;
        if (!x->own) {
            if (keys_get(s->c, x->scope, x->h.epoch, &key) != 0) {
                if (apply_pulled(s, p, n) == 0)
                    fail(s, -KZ_EREFUSED,
                         "no key yet for %s (epoch %u): the state office, or "
                         "the site's first device, must sync first; then "
                         "sync again",
                         x->scope, x->h.epoch);
                goto out;
            }
            err = kz_open_body(&x->plain, &x->plain_len, it->body.p,
                               it->body.len, it->hdr.p, it->hdr.len, &key);
            sodium_memzero(&key, sizeof(key));
            if (err) {
                if (apply_pulled(s, p, n) == 0)
                    fail(s, -KZ_EREFUSED,
                         "changeset %llu of %s does not decrypt: tampered "
                         "with, or sealed under another key",
                         (unsigned long long)it->server_seq, x->scope);
                goto out;
            }
        }
        if (++n == cap && i + 1 < b->n_items) {
            if (apply_pulled(s, p, n) != 0)
                goto out;
            pulled_clear(p, cap);
            n = 0;
        }
    }
    rc = apply_pulled(s, p, n);
out:
    pulled_clear(p, cap);
    kz_free(p);
    return rc;
}

static void
on_batch(struct sync *s, const struct kz_msg_batch *b)
{
    uint32_t i;

    if (apply_batch(s, b) != 0)
        return;
    progress(s, "pulling");
    if (!b->done)
        return;
    if (s->pull_items > 0) {
        pull(s); /* more may be waiting */
        return;
    }
    /* Round complete. */
    if (s->no_key[0] && !s->o.run) {
        fail(s, -KZ_EREFUSED,
             "changes of %s wait in the outbox: this device has no key for it "
             "yet (the state office, or the site's first device, must sync "
             "first)",
             s->no_key);
        return;
    }
    s->last_round_ms = uv_now(s->loop);
    {
        /* Cells waiting for time to pass (a future hlc) or for rows that
         * arrived in this round get another chance now. */
        sqlite3_stmt *q = NULL;
        int waiting = 0;
        if (sqlite3_prepare_v2(replica_db(s->c->r),
                               "SELECT EXISTS (SELECT 1 FROM kz_quarantine)",
                               -1, &q, NULL) == SQLITE_OK &&
            sqlite3_step(q) == SQLITE_ROW)
            waiting = sqlite3_column_int(q, 0);
        sqlite3_finalize(q);
        if (waiting && replica_retry_quarantine(s->c->r, NULL) != 0) {
            fail(s, -KZ_EDB, "cannot retry quarantined cells: %s",
                 replica_errmsg(s->c->r));
            return;
        }
    }
    {
        char when[32];
        time_t t = time(NULL);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
        if (replica_meta_set(s->c->r, "last_sync", when) != 0) {
            fail(s, -KZ_EDB, "cannot record the sync time");
            return;
        }
    }
    round_unlock(s);
    if (!s->o.run || s->stopping) {
        shut(s);
        return;
    }
    s->state = ST_IDLE;
    if (!s->subscribed) {
        struct kz_msg m;
        struct kz_str sc[MAX_SCOPES];
        for (i = 0; i < s->n_scopes; i++) {
            sc[i].p = s->scopes[i];
            sc[i].len = strlen(s->scopes[i]);
        }
        memset(&m, 0, sizeof(m));
        m.type = KZ_MSG_SUBSCRIBE;
        m.subscribe.scopes = sc;
        m.subscribe.n_scopes = s->n_scopes;
        if (send_msg(s, &m) != 0)
            return;
        s->subscribed = 1;
    }
    if (s->want_push || s->want_pull)
        start_round(s);
}

/*
 * A round: the roster and the scope keys first — a device enrolled,
 * revoked or given a new key epoch since the last round is known before
 * its changesets arrive, and keys owed to new devices go up — then push,
 * then pull.  In run mode every round does so, not only the first.
 */
static const struct conn_cbs conn_cbs;

/* One-shot: whether it has waited for the lock too long (then failed). */
static int
lockwait_expired(struct sync *s)
{
    if (uv_now(s->loop) - s->lockwait_ms <= LOCKWAIT_MAX_MS)
        return 0;
    fail(s, -KZ_EIO,
         "another kzsync process has been syncing %s for %u minutes; try "
         "again later",
         s->c->dir, LOCKWAIT_MAX_MS / 60000u);
    return 1;
}

static void
on_lockwait(uv_timer_t *t)
{
    struct sync *s = t->data;
    int rc, err;

    if (s->conn != NULL) {
        start_round(s); /* run: a round waits for the lock */
        return;
    }
    /* one-shot: the lock first, then the connection (its silence limit
     * would run out while it waited) */
    rc = round_lock(s);
    if (rc < 0) {
        fail(s, -KZ_EIO, "cannot lock %s/sync.lock: %s", s->c->dir,
             strerror(-rc));
    } else if (rc == 0) {
        if (!lockwait_expired(s))
            uv_timer_start(&s->lockwait, on_lockwait, LOCKWAIT_MS, 0);
    } else {
        s->state = ST_CONNECT;
        if ((err = conn_open(&s->conn, s->loop, &s->co, &conn_cbs, s)))
            fail(s, err, "cannot connect: %s", kz_strerror(err));
    }
}

static void
start_round(struct sync *s)
{
    int rc = round_lock(s);

    if (rc < 0) {
        fail(s, -KZ_EIO, "cannot lock %s/sync.lock: %s", s->c->dir,
             strerror(-rc));
        return;
    }
    if (rc == 0) {
        /* Another process syncs this folder: its round ends soon. */
        if (s->state != ST_LOCKWAIT) {
            s->state = ST_LOCKWAIT;
            s->lockwait_ms = uv_now(s->loop);
        } else if (!s->o.run && lockwait_expired(s)) {
            return;
        }
        uv_timer_start(&s->lockwait, on_lockwait, LOCKWAIT_MS, 0);
        return;
    }
    s->want_push = s->want_pull = 0;
    s->no_key[0] = '\0';
    roster_get(s);
}

/* ---- messages -------------------------------------------------------- */

static int
exit_err_for(uint32_t code)
{
    switch (code) {
    case KZ_WIRE_AUTH:
    case KZ_WIRE_PERM:
    case KZ_WIRE_SIGNATURE:
    case KZ_WIRE_ROSTER: return -KZ_EREFUSED;
    case KZ_WIRE_VERSION: return -KZ_EVERSION;
    default: return -KZ_EIO;
    }
}

static void
on_msg(struct conn *conn, const struct kz_msg *m, void *data)
{
    struct sync *s = data;
    int err;

    (void)conn;
    if (s->state == ST_DONE)
        return;
    switch (m->type) {
    case KZ_MSG_WELCOME:
        if (s->state != ST_WELCOME)
            break;
        if (m->welcome.version != 1) {
            fail(s, -KZ_EVERSION,
                 "the server chose protocol version %u; this kzsync speaks 1",
                 m->welcome.version);
            return;
        }
        check_clock(s, m->welcome.server_time_ms);
        if (s->state != ST_DONE)
            start_round(s);
        return;
    case KZ_MSG_ROSTER:
        if (s->state == ST_ROSTER_CHECK && m->roster.req == s->wait_req) {
            on_roster_check(s, &m->roster);
            return;
        }
        if (s->state != ST_ROSTER || m->roster.req != s->wait_req)
            break;
        if (m->roster.has_roster) {
            err =
                kzc_set_roster(s->c, m->roster.roster.p, m->roster.roster.len);
            if (err < 0) {
                fail(s, err == -KZ_EAUTH ? -KZ_EREFUSED : err, "%s", s->c->err);
                return;
            }
        }
        if (s->c->roster == NULL) {
            fail(s, -KZ_EREFUSED,
                 "the server has no roster yet: the state office must sync "
                 "first (kzsync init --create-network, then kzsync sync)");
            return;
        }
        after_roster(s);
        return;
    case KZ_MSG_OK:
        if (m->ok.req != s->wait_req)
            break;
        if (s->state == ST_ROSTER_PUT) {
            if ((err = replica_meta_set(s->c->r, "roster_dirty", "0"))) {
                fail(s, err, "cannot update the roster state");
                return;
            }
            s->n_scopes = kzc_scopes(s->c, s->scopes, MAX_SCOPES);
            keys_get_next(s);
            return;
        }
        if (s->state == ST_KEYS_PUT) {
            struct keys_out part = {s->owed_chunk, s->owed.envs + s->owed_off};
            if ((err = keys_sent(s->c, &part))) {
                fail(s, err, "cannot record the keys shared");
                return;
            }
            s->owed_off += s->owed_chunk;
            keys_put_chunk(s);
            return;
        }
        break;
    case KZ_MSG_KEYS:
        if (s->state != ST_KEYS || m->keys.req != s->wait_req)
            break;
        on_keys(s, &m->keys);
        return;
    case KZ_MSG_PUSH_ACK:
        if (s->state != ST_PUSH)
            break;
        on_push_ack(s, &m->push_ack);
        return;
    case KZ_MSG_BATCH:
        if (s->state != ST_PULL || m->batch.req != s->wait_req)
            break;
        on_batch(s, &m->batch);
        return;
    case KZ_MSG_NOTIFY:
        s->want_pull = 1;
        if (s->state == ST_IDLE)
            start_round(s);
        return;
    case KZ_MSG_PING: {
        struct kz_msg r = *m;
        r.type = KZ_MSG_PONG;
        (void)send_msg(s, &r);
        return;
    }
    case KZ_MSG_PONG: return;
    case KZ_MSG_ERROR: {
        char text[300];
        size_t i;
        snprintf(text, sizeof(text), "%.*s", (int)m->error.text.len,
                 m->error.text.p);
        /* The server's words go to a terminal: no control characters. */
        for (i = 0; text[i]; i++)
            if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
                text[i] = '?';
        if (m->error.code == KZ_WIRE_SEQ_GAP &&
            strstr(text, "other content") != NULL)
            fail(s, -KZ_EREFUSED,
                 "the server holds other changes under this device's "
                 "sequence numbers: was this folder copied or restored from "
                 "a backup?  Set the device up anew (kzsync init in a new "
                 "folder) and ask the state office to add it");
        else if (m->error.code == KZ_WIRE_AUTH)
            fail(s, -KZ_EREFUSED,
                 "the server refused this device: %s (the state office adds "
                 "devices with kzsync member add)",
                 text);
        else
            fail(s, exit_err_for(m->error.code), "the server refused: %s: %s",
                 kz_wire_err_name(m->error.code), text);
        return;
    }
    default: break;
    }
    fail(s, -KZ_EMALFORMED, "unexpected %s from the server",
         kz_msg_name(m->type));
}

static void
on_conn_close(struct conn *conn, int err, const char *why, void *data)
{
    struct sync *s = data;

    (void)conn;
    s->conn = NULL;
    if (err && s->err == 0) {
        s->err = err;
        snprintf(s->why, sizeof(s->why), "%s", why);
    } else if (s->err == 0 && s->state != ST_DONE) {
        s->err = -KZ_ECLOSED;
        snprintf(s->why, sizeof(s->why), "the server closed the connection");
    }
    shut(s);
}

/* Run mode: notice local writes (any connection) and the periodic round. */
static void
on_tick(uv_timer_t *t)
{
    struct sync *s = t->data;
    sqlite3_stmt *st = NULL;
    int64_t dv = s->data_version;

    if (s->state == ST_DONE)
        return;
    if (sqlite3_prepare_v2(replica_db(s->c->r), "PRAGMA data_version", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        dv = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (dv != s->data_version) {
        s->data_version = dv;
        s->want_push = 1;
    }
    if (s->o.every_s &&
        uv_now(s->loop) - s->last_round_ms >= (uint64_t)s->o.every_s * 1000u) {
        s->want_push = s->want_pull = 1;
    }
    if (s->state == ST_IDLE && (s->want_push || s->want_pull)) {
        start_round(s);
    } else if (s->state == ST_IDLE &&
               uv_now(s->loop) - s->last_ping_ms >= KEEPALIVE_MS) {
        /* Keep the connection from looking idle to the server. */
        struct kz_msg m;
        memset(&m, 0, sizeof(m));
        m.type = KZ_MSG_PING;
        m.ping.nonce = ++s->next_req;
        s->last_ping_ms = uv_now(s->loop);
        (void)send_msg(s, &m);
    }
}

static const struct conn_cbs conn_cbs = {on_ready, on_msg, on_conn_close};

int
sync_start(struct sync **out, uv_loop_t *loop, struct kzc *c,
           const struct sync_opts *o,
           void (*done)(void *, int, const char *, const struct sync_stats *),
           void *data)
{
    struct conn_opts co;
    struct sync *s;
    int err;

    *out = NULL;
    s = kz_calloc(1, sizeof(*s));
    if (s == NULL)
        return -KZ_ENOMEM;
    s->loop = loop;
    s->c = c;
    s->o = *o;
    s->done = done;
    s->data = data;
    s->state = ST_CONNECT;
    s->data_version = -1;
    {
        char path[4096];
        snprintf(path, sizeof(path), "%s/sync.lock", c->dir);
        s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (s->lock_fd < 0) {
            err = kz_err_from_errno(errno);
            kz_free(s);
            return err;
        }
    }
    uv_timer_init(loop, &s->lockwait);
    s->lockwait.data = s;
    s->lockwait_open = 1;
    memset(&co, 0, sizeof(co));
    co.server = c->server;
    co.sk = &c->id.dh_sk;
    co.server_pk = &c->server_pk;
    co.timeout_ms = o->timeout_ms ? o->timeout_ms : 30000;
    if (o->run) {
        uv_timer_init(loop, &s->tick);
        s->tick.data = s;
        s->tick_open = 1;
        uv_timer_start(&s->tick, on_tick, TICK_MS, TICK_MS);
        s->last_round_ms = uv_now(loop);
        /* Connecting and the handshake keep their limit; then silence is
         * normal, but we PING after KEEPALIVE_MS without traffic and the
         * server answers: no byte for IDLE_LIMIT_MS means the link or the
         * server is gone (a half-open connection, a hung server), and the
         * backoff reconnects. */
        co.idle_ms = IDLE_LIMIT_MS;
    }
    s->co = co;
    if (!o->run && round_lock(s) != 1) {
        /* Another process syncs this folder: wait for it (on_lockwait). */
        s->state = ST_LOCKWAIT;
        s->lockwait_ms = uv_now(loop);
        uv_timer_start(&s->lockwait, on_lockwait, LOCKWAIT_MS, 0);
        *out = s;
        return 0;
    }
    err = conn_open(&s->conn, loop, &co, &conn_cbs, s);
    if (err) {
        if (s->tick_open)
            uv_close((uv_handle_t *)&s->tick, NULL);
        uv_close((uv_handle_t *)&s->lockwait, NULL);
        /* freed after the close callbacks: keep it simple and run them */
        uv_run(loop, UV_RUN_NOWAIT);
        close(s->lock_fd);
        kz_free(s);
        return err;
    }
    *out = s;
    return 0;
}

static void
on_stop_grace(uv_timer_t *t)
{
    struct sync *s = t->data;

    if (s->state != ST_DONE)
        shut(s);
}

void
sync_stop(struct sync *s)
{
    s->stopping = 1;
    if (s->state == ST_IDLE || s->state == ST_CONNECT ||
        s->state == ST_WELCOME || s->state == ST_ROSTER ||
        s->state == ST_LOCKWAIT) {
        if (!s->o.run && s->err == 0) {
            s->err = -KZ_EIO;
            snprintf(s->why, sizeof(s->why),
                     "interrupted before the sync was done");
        }
        shut(s);
    } else if (s->o.run && s->state != ST_DONE) {
        /* A round under way ends by itself, unless the server hangs:
         * then it ends here.  Nothing is lost (outbox and cursors are
         * crash-safe). */
        uv_timer_start(&s->lockwait, on_stop_grace, STOP_GRACE_MS, 0);
    }
}
