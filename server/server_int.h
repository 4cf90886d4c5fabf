/*
 * server_int.h: what server.c, session.c and auth.c share.
 */
#ifndef KZ_SERVER_INT_H
#define KZ_SERVER_INT_H

#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "chan.h"
#include "config.h"
#include "crypto.h"
#include "keyfile.h"
#include "msg.h"
#include "server.h"
#include "store.h"

#define SESSION_MAGIC 0x6b7a7373u     /* "kzss": debug check */
#define SESSION_READ_BUF (64u * 1024) /* one socket read */
#define SESSION_MSGS_PER_TICK 64u     /* messages handled per wakeup */
#define SESSION_REQS_IN_FLIGHT 64     /* requests pending: reading pauses */
#define SESSION_HELD_BYTES_MAX (32u * 1024 * 1024) /* their bytes: likewise */
#define SESSION_SUBS_MAX 1024u                     /* subscribed scopes */
#define SESSION_LINGER_MS 2000u /* CLOSING: output flushed for this long */

/* A member of the roster, as the server needs it. */
struct member {
    char name[65];       /* device name */
    char site[33];       /* site code */
    int role;            /* AUTH_ROLE_* */
    uint8_t sign_pk[32]; /* Ed25519: signs its changesets */
    uint8_t dh_pk[32];   /* X25519: its Noise static key */
};

enum session_state {
    SS_HANDSHAKE = 1, /* Noise messages 1..3 */
    SS_HELLO,         /* admitted (or provisional); waiting for HELLO */
    SS_READY,         /* serving requests */
    SS_CLOSING        /* session_close called; waiting for uv_close */
};

/* One subscribed scope. */
struct sub {
    char scope[KZ_LIM_NAME_MAX + 1];
};

/* A PULL being answered, cursor by cursor. */
struct pull_job {
    uint32_t req; /* the PULL's id */
    uint32_t n;   /* cursors */
    uint32_t i;   /* cursor being served */
    struct {
        char scope[KZ_LIM_NAME_MAX + 1];
        uint64_t after; /* next item after this seq */
    } * cur;            /* owned */
    size_t budget;      /* bytes left of max_bytes */
    int active;         /* a PULL is being answered */
};

struct push_ctx;

struct session {
    uint32_t magic;              /* SESSION_MAGIC */
    struct server *srv;          /* borrowed */
    struct session *prev, *next; /* server's list */
    uv_tcp_t tcp;                /* the connection */
    uv_timer_t timer;            /* handshake / idle timeout */
    uv_timer_t kick;             /* continue handling buffered messages */
    uv_write_t wreq;             /* the write in flight */
    int writing;                 /* wreq is in flight */
    uv_shutdown_t shutdown_req;  /* lingering close: the FIN */
    int shutting;                /* shutdown_req is in flight */
    int shut_sent;               /* it was sent */
    int lingering;               /* CLOSING after an ERROR: output first */
    int handles_closing;         /* uv_close called on the handles */
    int eof_seen;                /* lingering: the peer closed its side */
    struct kz_buf wbuf;          /* bytes of the write in flight */
    struct kz_chan *chan;        /* Noise channel */
    enum session_state state;    /* see above */
    int handles;                 /* open uv handles (close counting) */
    int refs;                    /* pending store callbacks */
    int admitted;                /* member is valid */
    int provisional;             /* no roster yet: may only put one */
    struct member member;        /* who this is, once admitted */
    char peer[64];               /* address, for the log */
    uint64_t id;                 /* session number, for the log */
    uint32_t pushes;             /* PUSHes waiting for the store */
    size_t held;                 /* bytes of requests pending (PUSH, KEYS_PUT,
                                    ROSTER_PUT) */
    int keys_get;                /* a KEYS_GET is being answered */
    int reading;                 /* uv_read_start active */
    struct sub *subs;            /* subscribed scopes; owned */
    uint32_t n_subs;
    struct pull_job pull;     /* the PULL being answered */
    struct push_ctx *vq_head; /* PUSHes whose signature is being */
    struct push_ctx *vq_tail; /*   checked, in arrival order */
    uint64_t last_read_ms;    /* for the idle timeout */
    const char *close_reason; /* why it closed, for the log */
};

struct server {
    uv_loop_t *loop;          /* borrowed */
    char *dir;                /* owned */
    struct config cfg;        /* copy */
    struct kz_identity id;    /* server key; wiped on free */
    uv_tcp_t listener;        /* listening socket */
    int listening;            /* listener is open */
    uv_tcp_t spare;           /* accepts a connection there is no memory for,
                                 to close it at once (server_accept_refuse) */
    int spare_busy;           /* spare is closing */
    int accept_owed;          /* a connection waits for spare to be free */
    struct store *store;      /* owned */
    struct session *sessions; /* list head */
    uint32_t n_sessions;      /* in the list */
    uint32_t n_live;          /* sessions not yet freed, lingering ones too:
                                 max_connections counts these */
    uint64_t next_id;         /* session numbers */
    uint8_t admin_pk[32];     /* trusted admin key */
    int have_admin;           /* admin_pk is set */
    struct roster *roster;    /* current roster, verified; owned */
    uint64_t roster_version;  /* 0 = none */
    int stopping;             /* server_stop called */
    uint32_t pending_work;    /* thread-pool checks not yet back */
    int close_store_later;    /* stopping: close the store when they are */
    int store_closed;         /* store_close finished */
    void (*stop_cb)(void *);  /* server_stop's callback */
    void *stop_data;
    struct server_stats stats; /* counters */
    /* One read buffer for all sessions: libuv fills it just before the
     * read callback, which consumes it whole (kz_chan_feed copies what it
     * keeps), so an idle session costs no 64 KiB of its own. */
    uint8_t rbuf[SESSION_READ_BUF];
};

/* server.c: closes the connection waiting on the listener (a session could
 * not be allocated for it).  Without an accept, libuv stops watching the
 * listener and every later connection would wait forever. */
void server_accept_refuse(struct server *srv);

/* session.c */
void session_accept(struct server *srv);
void session_close(struct session *s, const char *reason);
/* session_close_with(s, code, why): one ERROR ${code} (if the channel is
 * up), then session_close. */
void session_close_with(struct session *s, uint32_t code, const char *why);
void session_notify(struct session *s, const char *scope, uint64_t seq);
int session_reads(const struct session *s, const char *scope);

/* auth.c: the roster as the server uses it. */
enum { AUTH_ROLE_ADMIN = 1, AUTH_ROLE_SITE = 2, AUTH_ROLE_OBSERVER = 3 };
/* The roster ${bytes} if the trusted admin signed it and it is newer than
 * the one in force (else -KZ_EAUTH, a decode error or -KZ_EVERSION). */
int auth_decode(struct server *srv, const uint8_t *bytes, size_t len,
                struct roster **out, const char **why);
/* Puts ${r} in force (takes it), unless one as new is: -KZ_EVERSION. */
int auth_install(struct server *srv, struct roster *r);
/* auth_decode, then auth_install. */
int auth_load(struct server *srv, const uint8_t *bytes, size_t len,
              const char **why);
int auth_admit(struct server *srv, const struct kz_dh_pk *key,
               struct member *out);
int auth_may_write(const struct server *srv, const struct member *m,
                   const char *scope);
int auth_may_read(const struct server *srv, const struct member *m,
                  const char *scope);
void auth_free(struct server *srv);

/* server.c */
void server_session_gone(struct server *srv, struct session *s);
/* server_session_freed(srv): a session's memory is gone (n_live). */
void server_session_freed(struct server *srv);
void server_scope_grew(struct server *srv, struct session *from,
                       const char *scope, uint64_t seq);
void server_roster_changed(struct server *srv);
/* server_work_done(srv): a thread-pool job of a session came back. */
void server_work_done(struct server *srv);

#endif /* KZ_SERVER_INT_H */
