/*
 * msg.h: the application messages exchanged after the handshake
 * (PROTOCOL.md §Messages).
 *
 * Every message is one msgpack array whose first element is its type
 * number; it travels as one application frame (u32 BE length ‖ message,
 * PROTOCOL.md §Framing).  Notation as in PROTOCOL.md; `req` is
 * uint(1..2^32-1) in requests and in the replies that answer them; a
 * `name` is a str of 1..128 bytes without NUL; `seq` is uint(1..2^64-1).
 *
 *     1  HELLO       c→s [1, min_version:uint(1..2^32-1),
 *                         max_version:uint(min_version..2^32-1),
 *                         software:str(≤64)]
 *     2  WELCOME     s→c [2, version:uint(1..2^32-1), server_time_ms:uint,
 *                         max_frame:uint(1..16 MiB),
 *                         max_batch_bytes:uint(1..2^32-1)]
 *     3  PUSH        c→s [3, req, scope:name, hdr:bin(≤256),
 *                         body:bin(≤8 MiB), sig:bin(64)]
 *     4  PUSH_ACK    s→c [4, req, server_seq:seq, duplicate:bool]
 *     5  PULL        c→s [5, req, cursors:[[scope:name, after_seq:uint], …
 *                         (≤1024)], max_bytes:uint(1..2^32-1)]
 *     6  BATCH       s→c [6, req, items:[[scope:name, server_seq:seq,
 *                         hdr:bin(≤256), body:bin(≤8 MiB), sig:bin(64)], …
 *                         (≤4096)], done:bool]
 *     7  SUBSCRIBE   c→s [7, scopes:[name, …(≤1024)]]
 *     8  NOTIFY      s→c [8, scope:name, server_seq:seq]
 *     9  ROSTER_GET  c→s [9, req, have_version:uint]
 *     10 ROSTER      s→c [10, req, roster:bin(≤1 MiB) | nil]
 *     11 ROSTER_PUT  c→s [11, req, roster:bin(≤1 MiB)]
 *     12 OK          s→c [12, req]
 *     13 KEYS_PUT    c→s [13, req, envelopes:[bin(≤4096), …(≤1024)]]
 *     14 KEYS_GET    c→s [14, req, after_id:uint]
 *     15 KEYS        s→c [15, req, envelopes:[[id:seq, env:bin(≤4096)], …
 *                         (≤1024)], done:bool]
 *     16 ERROR       both [16, req:uint(≤2^32-1) (0 = no request),
 *                         code:uint(1..2^32-1), text:str(≤256)]
 *     17 PING        both [17, nonce:uint]
 *     18 PONG        both [18, nonce:uint]
 *
 * Decoding is bounded (proto/mpk.h: every length and count is checked
 * against its limit and the bytes left before it is used) and exact: an
 * unknown type, a wrong element count, a wrong type, a value out of range
 * and trailing bytes are all rejected.  Decoded strs and bins are BORROWED
 * from the input, which must outlive the struct kz_msg.  The four array
 * fields (PULL cursors, BATCH items, SUBSCRIBE scopes, KEYS_PUT and KEYS
 * envelopes) are decoded into one small array OWNED by the struct kz_msg
 * (preallocated for min(n, 64) entries and grown as entries are read) and
 * freed by kz_msg_clear.
 *
 * Encoding reads the same struct; there the array fields and all bytes are
 * borrowed from the caller.  An encoder refuses (-KZ_EINVAL) every value
 * the decoder would refuse, so what we send, we also accept.
 */
#ifndef KZ_PROTO_MSG_H
#define KZ_PROTO_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "changeset.h" /* struct kz_str */
#include "kz.h"
#include "limits.h"
#include "mpk.h"

#define KZ_PROTO_VERSION 1u /* the only protocol version so far */
#define KZ_MSG_SIG_LEN 64u  /* an Ed25519 signature */
#define KZ_MSG_HDR_LEN 4u   /* u32 BE length prefix of a frame */

enum kz_msg_type {
    KZ_MSG_HELLO = 1,
    KZ_MSG_WELCOME = 2,
    KZ_MSG_PUSH = 3,
    KZ_MSG_PUSH_ACK = 4,
    KZ_MSG_PULL = 5,
    KZ_MSG_BATCH = 6,
    KZ_MSG_SUBSCRIBE = 7,
    KZ_MSG_NOTIFY = 8,
    KZ_MSG_ROSTER_GET = 9,
    KZ_MSG_ROSTER = 10,
    KZ_MSG_ROSTER_PUT = 11,
    KZ_MSG_OK = 12,
    KZ_MSG_KEYS_PUT = 13,
    KZ_MSG_KEYS_GET = 14,
    KZ_MSG_KEYS = 15,
    KZ_MSG_ERROR = 16,
    KZ_MSG_PING = 17,
    KZ_MSG_PONG = 18
};
#define KZ_MSG_TYPE_MAX 18u

/* Who may send a message type (kz_msg_dir). */
#define KZ_MSG_C2S 1u /* client → server */
#define KZ_MSG_S2C 2u /* server → client */

/* Borrowed bytes. */
struct kz_msg_bin {
    const uint8_t *p; /* bytes; borrowed; may be NULL if len is 0 */
    size_t len;       /* byte count */
};

struct kz_msg_hello {
    uint32_t min_version;   /* lowest protocol version spoken, ≥ 1 */
    uint32_t max_version;   /* highest, ≥ min_version */
    struct kz_str software; /* e.g. "kzsync/0.1.0"; ≤ 64 bytes */
};

struct kz_msg_welcome {
    uint32_t version;         /* the chosen protocol version */
    uint64_t server_time_ms;  /* server wall clock, ms since the epoch */
    uint32_t max_frame;       /* largest frame the server accepts */
    uint32_t max_batch_bytes; /* cap on a PULL's max_bytes */
};

struct kz_msg_push {
    uint32_t req;           /* request id, ≥ 1 */
    struct kz_str scope;    /* scope name */
    struct kz_msg_bin hdr;  /* encoded changeset header (≤ 256) */
    struct kz_msg_bin body; /* sealed body (≤ 8 MiB) */
    const uint8_t *sig;     /* KZ_MSG_SIG_LEN bytes; borrowed */
};

struct kz_msg_push_ack {
    uint32_t req;        /* the PUSH answered */
    uint64_t server_seq; /* position of the changeset in its scope, ≥ 1 */
    bool duplicate;      /* it had been stored before */
};

struct kz_msg_cursor {
    struct kz_str scope; /* scope name */
    uint64_t after_seq;  /* send changesets with server_seq > this */
};

struct kz_msg_pull {
    uint32_t req;                        /* request id, ≥ 1 */
    const struct kz_msg_cursor *cursors; /* n_cursors entries */
    uint32_t n_cursors;                  /* ≤ KZ_LIM_PULL_SCOPES_MAX */
    uint32_t max_bytes;                  /* budget of the answer, ≥ 1 */
};

struct kz_msg_item {
    struct kz_str scope;    /* scope name */
    uint64_t server_seq;    /* ≥ 1 */
    struct kz_msg_bin hdr;  /* encoded changeset header (≤ 256) */
    struct kz_msg_bin body; /* sealed body (≤ 8 MiB) */
    const uint8_t *sig;     /* KZ_MSG_SIG_LEN bytes; borrowed */
};

struct kz_msg_batch {
    uint32_t req;                    /* the PULL answered */
    const struct kz_msg_item *items; /* n_items entries */
    uint32_t n_items;                /* ≤ KZ_LIM_BATCH_ITEMS_MAX */
    bool done;                       /* last BATCH of this PULL */
};

struct kz_msg_subscribe {
    const struct kz_str *scopes; /* n_scopes scope names */
    uint32_t n_scopes;           /* ≤ KZ_LIM_SUBSCRIBE_SCOPES_MAX */
};

struct kz_msg_notify {
    struct kz_str scope; /* the scope that grew */
    uint64_t server_seq; /* its newest server_seq, ≥ 1 */
};

struct kz_msg_roster_get {
    uint32_t req;          /* request id, ≥ 1 */
    uint64_t have_version; /* roster version held, 0 = none */
};

struct kz_msg_roster {
    uint32_t req;             /* the ROSTER_GET answered */
    bool has_roster;          /* false: nil (current or none exists) */
    struct kz_msg_bin roster; /* encoded signed roster if has_roster */
};

struct kz_msg_roster_put {
    uint32_t req;             /* request id, ≥ 1 */
    struct kz_msg_bin roster; /* encoded signed roster (≤ 1 MiB) */
};

struct kz_msg_ok {
    uint32_t req; /* the request answered */
};

struct kz_msg_keys_put {
    uint32_t req;                  /* request id, ≥ 1 */
    const struct kz_msg_bin *envs; /* n_envs signed key envelopes */
    uint32_t n_envs;               /* ≤ KZ_LIM_KEYS_MAX */
};

struct kz_msg_keys_get {
    uint32_t req;      /* request id, ≥ 1 */
    uint64_t after_id; /* send envelopes with id > this */
};

struct kz_msg_key {
    uint64_t id;           /* server-assigned envelope id, ≥ 1 */
    struct kz_msg_bin env; /* the envelope (≤ 4096) */
};

struct kz_msg_keys {
    uint32_t req;                  /* the KEYS_GET answered */
    const struct kz_msg_key *keys; /* n_keys entries */
    uint32_t n_keys;               /* ≤ KZ_LIM_KEYS_MAX */
    bool done;                     /* no envelopes beyond these */
};

struct kz_msg_error {
    uint32_t req;       /* the request refused, 0 = none */
    uint32_t code;      /* errcode.h, ≥ 1 */
    struct kz_str text; /* English detail, ≤ 256 bytes */
};

struct kz_msg_ping {
    uint64_t nonce; /* echoed by PONG */
};

/* One message: ${type} says which member of the union is meaningful. */
struct kz_msg {
    enum kz_msg_type type; /* KZ_MSG_* */
    union {
        struct kz_msg_hello hello;           /* KZ_MSG_HELLO */
        struct kz_msg_welcome welcome;       /* KZ_MSG_WELCOME */
        struct kz_msg_push push;             /* KZ_MSG_PUSH */
        struct kz_msg_push_ack push_ack;     /* KZ_MSG_PUSH_ACK */
        struct kz_msg_pull pull;             /* KZ_MSG_PULL */
        struct kz_msg_batch batch;           /* KZ_MSG_BATCH */
        struct kz_msg_subscribe subscribe;   /* KZ_MSG_SUBSCRIBE */
        struct kz_msg_notify notify;         /* KZ_MSG_NOTIFY */
        struct kz_msg_roster_get roster_get; /* KZ_MSG_ROSTER_GET */
        struct kz_msg_roster roster;         /* KZ_MSG_ROSTER */
        struct kz_msg_roster_put roster_put; /* KZ_MSG_ROSTER_PUT */
        struct kz_msg_ok ok;                 /* KZ_MSG_OK */
        struct kz_msg_keys_put keys_put;     /* KZ_MSG_KEYS_PUT */
        struct kz_msg_keys_get keys_get;     /* KZ_MSG_KEYS_GET */
        struct kz_msg_keys keys;             /* KZ_MSG_KEYS */
        struct kz_msg_error error;           /* KZ_MSG_ERROR */
        struct kz_msg_ping ping;             /* KZ_MSG_PING, KZ_MSG_PONG */
    };
    void *owned; /* the decoder's array (see above); kz_msg_clear frees */
};

/**
 * kz_msg_decode(m, p, len, why): decodes exactly ${len} bytes at ${p} (one
 * frame's payload, without the length prefix) into *${m}.  Strs and bins
 * in *${m} borrow from ${p}; an array field is owned by *${m}: call
 * kz_msg_clear(m) when done (always safe).  Returns 0, or -KZ_EMALFORMED
 * (unknown type, wrong element count or type, value out of range, trailing
 * bytes, truncation), -KZ_ELIMIT (a length or count over its limit) or
 * -KZ_ENOMEM; on error *${m} is cleared (nothing to free).  *${why}, if
 * ${why} is not NULL, gets NULL on success or a static description.
 */
KZ_MUST_CHECK int kz_msg_decode(struct kz_msg *m, const uint8_t *p, size_t len,
                                const char **why);

/** kz_msg_clear(m): frees what kz_msg_decode allocated; zeroes *${m}. */
void kz_msg_clear(struct kz_msg *m);

/**
 * kz_msg_hello(m, software): *${m} = a HELLO offering this build's protocol
 * version only, from ${software} (borrowed, e.g. "kzsync/0.1.0").
 */
void kz_msg_hello(struct kz_msg *m, const char *software);

/**
 * kz_msg_pack(m, w): appends ${m} as one msgpack array to ${w} (no length
 * prefix).  Returns 0; -KZ_EINVAL if ${m} holds anything the decoder would
 * refuse (then ${w} is untouched); or the writer's sticky error (-KZ_ENOMEM,
 * -KZ_ELIMIT from its cap).
 */
KZ_MUST_CHECK int kz_msg_pack(const struct kz_msg *m, struct kz_mpk_wr *w);

/**
 * kz_msg_encode(m, out): appends one frame, the u32 BE length and ${m}
 * packed, to ${out}, ready for the stream.  Returns 0; -KZ_EINVAL (as
 * kz_msg_pack); -KZ_ELIMIT if the message is over KZ_LIM_FRAME_MAX or
 * would take ${out} over its cap; -KZ_ENOMEM; or ${out}'s sticky error if
 * it was already set.  On failure nothing is appended and ${out}'s error is
 * left as it was, so the caller may still encode a smaller message (e.g.
 * split a BATCH, or send an ERROR).
 */
KZ_MUST_CHECK int kz_msg_encode(const struct kz_msg *m, struct kz_buf *out);

/**
 * kz_msg_item_size(it): an upper bound on the bytes ${it} takes in a
 * BATCH, so that a server can fill BATCH frames up to KZ_LIM_FRAME_MAX.
 * A BATCH with items of total bound S packs to at most S + 32 bytes.
 */
size_t kz_msg_item_size(const struct kz_msg_item *it);

/** kz_msg_name(type): "HELLO", "PUSH", … or "UNKNOWN"; never NULL. */
const char *kz_msg_name(uint32_t type);

/**
 * kz_msg_dir(type): KZ_MSG_C2S and/or KZ_MSG_S2C: who may send ${type}
 * (ERROR, PING and PONG go both ways); 0 for an unknown type.
 */
unsigned kz_msg_dir(uint32_t type);

#endif /* KZ_PROTO_MSG_H */
