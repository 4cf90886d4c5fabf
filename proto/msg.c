/*
 * msg.c: the application messages (msg.h; PROTOCOL.md §Messages).
 *
 * Format, one msgpack array per message, the type number first (`req` is
 * uint(1..2^32-1) except in ERROR, where 0 means "no request"; `name` is a
 * str of 1..128 bytes without NUL; `seq` is uint(1..2^64-1)):
 *
 *     1  HELLO       [1, min_version:u32≥1, max_version:u32≥min,
 * software:str(≤64)] 2  WELCOME     [2, version:u32≥1, server_time_ms:uint,
 *                     max_frame:uint(1..16 MiB), max_batch_bytes:u32≥1]
 *     3  PUSH        [3, req, scope:name, hdr:bin(≤256), body:bin(≤8 MiB),
 *                     sig:bin(64)]
 *     4  PUSH_ACK    [4, req, server_seq:seq, duplicate:bool]
 *     5  PULL        [5, req, [[scope:name, after_seq:uint], …(≤1024)],
 *                     max_bytes:u32≥1]
 *     6  BATCH       [6, req, [[scope:name, server_seq:seq, hdr:bin(≤256),
 *                     body:bin(≤8 MiB), sig:bin(64)], …(≤4096)], done:bool]
 *     7  SUBSCRIBE   [7, [name, …(≤1024)]]
 *     8  NOTIFY      [8, scope:name, server_seq:seq]
 *     9  ROSTER_GET  [9, req, have_version:uint]
 *     10 ROSTER      [10, req, roster:bin(≤1 MiB) | nil]
 *     11 ROSTER_PUT  [11, req, roster:bin(≤1 MiB)]
 *     12 OK          [12, req]
 *     13 KEYS_PUT    [13, req, [bin(≤4096), …(≤1024)]]
 *     14 KEYS_GET    [14, req, after_id:uint]
 *     15 KEYS        [15, req, [[id:seq, env:bin(≤4096)], …(≤1024)], done:bool]
 *     16 ERROR       [16, req:u32 (0 = none), code:u32≥1, text:str(≤256)]
 *     17 PING        [17, nonce:uint]
 *     18 PONG        [18, nonce:uint]
 *
 * The type is read before the element count is checked, so an unknown type
 * is reported as such and not as a wrong count.  The decoder works on a
 * sticky struct kz_rd: helpers record the first failure and later calls
 * are no-ops, and the result is checked once at the end.  Array fields are
 * allocated only after kz_mpk_array checked the count against its limit
 * and the bytes left, and then for min(n, 64) entries, doubling as entries
 * are actually read.
 */
#include <string.h>

#include "alloc.h"
#include "err.h"
#include "limits.h"
#include "rd.h"

#include "frame.h"
#include "msg.h"

#define PREALLOC_MAX 64u

/* Per type: name, element count (the type included) and direction. */
static const struct {
    const char *name; /* kz_msg_name */
    uint32_t n;       /* elements of the array */
    unsigned dir;     /* KZ_MSG_C2S | KZ_MSG_S2C */
} info[KZ_MSG_TYPE_MAX + 1] = {
    [KZ_MSG_HELLO] = {"HELLO", 4, KZ_MSG_C2S},
    [KZ_MSG_WELCOME] = {"WELCOME", 5, KZ_MSG_S2C},
    [KZ_MSG_PUSH] = {"PUSH", 6, KZ_MSG_C2S},
    [KZ_MSG_PUSH_ACK] = {"PUSH_ACK", 4, KZ_MSG_S2C},
    [KZ_MSG_PULL] = {"PULL", 4, KZ_MSG_C2S},
    [KZ_MSG_BATCH] = {"BATCH", 4, KZ_MSG_S2C},
    [KZ_MSG_SUBSCRIBE] = {"SUBSCRIBE", 2, KZ_MSG_C2S},
    [KZ_MSG_NOTIFY] = {"NOTIFY", 3, KZ_MSG_S2C},
    [KZ_MSG_ROSTER_GET] = {"ROSTER_GET", 3, KZ_MSG_C2S},
    [KZ_MSG_ROSTER] = {"ROSTER", 3, KZ_MSG_S2C},
    [KZ_MSG_ROSTER_PUT] = {"ROSTER_PUT", 3, KZ_MSG_C2S},
    [KZ_MSG_OK] = {"OK", 2, KZ_MSG_S2C},
    [KZ_MSG_KEYS_PUT] = {"KEYS_PUT", 3, KZ_MSG_C2S},
    [KZ_MSG_KEYS_GET] = {"KEYS_GET", 3, KZ_MSG_C2S},
    [KZ_MSG_KEYS] = {"KEYS", 4, KZ_MSG_S2C},
    [KZ_MSG_ERROR] = {"ERROR", 4, KZ_MSG_C2S | KZ_MSG_S2C},
    [KZ_MSG_PING] = {"PING", 2, KZ_MSG_C2S | KZ_MSG_S2C},
    [KZ_MSG_PONG] = {"PONG", 2, KZ_MSG_C2S | KZ_MSG_S2C},
};

#define RD_FAIL(rd, code, why) kz_rd_fail((rd), (code), (why))

/* ---- decoding helpers; each records its failure in ${rd} ---- */

/* A request id: 1..2^32-1 (0 is reserved for "no request" in ERROR). */
static void
rd_req(struct kz_rd *rd, uint32_t *req)
{
    if (kz_mpk_u32(rd, req) == 0 && *req == 0)
        RD_FAIL(rd, -KZ_EMALFORMED, "req 0");
}

/* A u32 that must be ≥ 1. */
static void
rd_u32_pos(struct kz_rd *rd, uint32_t *v, const char *why_zero)
{
    if (kz_mpk_u32(rd, v) == 0 && *v == 0)
        RD_FAIL(rd, -KZ_EMALFORMED, why_zero);
}

/* A sequence number: 1..2^64-1. */
static void
rd_seq(struct kz_rd *rd, uint64_t *v, const char *why_zero)
{
    if (kz_mpk_uint(rd, UINT64_MAX, v) == 0 && *v == 0)
        RD_FAIL(rd, -KZ_EMALFORMED, why_zero);
}

/* A scope name: 1..KZ_LIM_NAME_MAX bytes, no NUL. */
static void
rd_name(struct kz_rd *rd, struct kz_str *s)
{
    if (kz_mpk_str(rd, KZ_LIM_NAME_MAX, s) != 0)
        return;
    if (s->len == 0)
        RD_FAIL(rd, -KZ_EMALFORMED, "empty scope");
    else if (memchr(s->p, 0, s->len) != NULL)
        RD_FAIL(rd, -KZ_EMALFORMED, "scope contains a NUL byte");
}

static void
rd_bin(struct kz_rd *rd, uint32_t max, struct kz_msg_bin *b)
{
    (void)kz_mpk_bin(rd, max, &b->p, &b->len);
}

/* An Ed25519 signature: a bin of exactly KZ_MSG_SIG_LEN bytes. */
static void
rd_sig(struct kz_rd *rd, const uint8_t **sig)
{
    size_t len;

    if (kz_mpk_bin(rd, KZ_LIM_BIN_MAX, sig, &len) == 0 &&
        len != KZ_MSG_SIG_LEN) {
        *sig = NULL;
        RD_FAIL(rd, -KZ_EMALFORMED, "signature is not 64 bytes");
    }
}

/* An array of exactly ${want} elements (a tuple inside a message). */
static void
rd_tuple(struct kz_rd *rd, uint32_t want, const char *why)
{
    uint32_t n;

    if (kz_mpk_array(rd, KZ_LIM_COUNT_MAX, &n) == 0 && n != want)
        RD_FAIL(rd, -KZ_EMALFORMED, why);
}

/*
 * rd_list(rd, m, max, size, n): an array header of at most ${max} entries;
 * returns room for the first min(n, 64) entries of ${size} bytes, owned by
 * ${m} (NULL if n is 0 or on failure, recorded in ${rd}).
 */
static void *
rd_list(struct kz_rd *rd, struct kz_msg *m, uint32_t max, size_t size,
        uint32_t *n, uint32_t *cap)
{
    *cap = 0;
    if (kz_mpk_array(rd, max, n) != 0 || *n == 0)
        return NULL;
    m->owned = kz_mallocarray(KZ_MIN(*n, PREALLOC_MAX), size);
    if (m->owned == NULL) {
        RD_FAIL(rd, -KZ_ENOMEM, "out of memory");
        return NULL;
    }
    *cap = KZ_MIN(*n, PREALLOC_MAX);
    return m->owned;
}

/*
 * rd_room(rd, m, cap, i, n, size): makes sure the owned array of ${m} has
 * room for entry ${i} of ${n}, doubling it (never beyond ${n}).  Returns the
 * array or NULL (failure recorded in ${rd}; the old array stays owned).
 */
static void *
rd_room(struct kz_rd *rd, struct kz_msg *m, uint32_t *cap, uint32_t i,
        uint32_t n, size_t size)
{
    uint32_t ncap;
    void *np;

    if (i < *cap)
        return m->owned;
    ncap = *cap > n / 2 ? n : *cap * 2;
    np = kz_reallocarray(m->owned, ncap, size);
    if (np == NULL) {
        RD_FAIL(rd, -KZ_ENOMEM, "out of memory");
        return NULL;
    }
    m->owned = np;
    *cap = ncap;
    return np;
}

static void
rd_hello(struct kz_rd *rd, struct kz_msg_hello *h)
{
    rd_u32_pos(rd, &h->min_version, "min_version 0");
    (void)kz_mpk_u32(rd, &h->max_version);
    if (rd->err == 0 && h->max_version < h->min_version)
        RD_FAIL(rd, -KZ_EMALFORMED, "max_version < min_version");
    (void)kz_mpk_str(rd, KZ_LIM_SOFTWARE_MAX, &h->software);
}

static void
rd_welcome(struct kz_rd *rd, struct kz_msg_welcome *w)
{
    uint64_t max_frame;

    rd_u32_pos(rd, &w->version, "version 0");
    (void)kz_mpk_uint(rd, UINT64_MAX, &w->server_time_ms);
    if (kz_mpk_uint(rd, KZ_LIM_FRAME_MAX, &max_frame) == 0 && max_frame == 0)
        RD_FAIL(rd, -KZ_EMALFORMED, "max_frame 0");
    w->max_frame = (uint32_t)max_frame;
    rd_u32_pos(rd, &w->max_batch_bytes, "max_batch_bytes 0");
}

static void
rd_push(struct kz_rd *rd, struct kz_msg_push *p)
{
    rd_req(rd, &p->req);
    rd_name(rd, &p->scope);
    rd_bin(rd, KZ_LIM_CS_HEADER_MAX, &p->hdr);
    rd_bin(rd, KZ_LIM_CS_BODY_MAX, &p->body);
    rd_sig(rd, &p->sig);
}

static void
rd_push_ack(struct kz_rd *rd, struct kz_msg_push_ack *a)
{
    rd_req(rd, &a->req);
    rd_seq(rd, &a->server_seq, "server_seq 0");
    (void)kz_mpk_bool(rd, &a->duplicate);
}

static void
rd_pull(struct kz_rd *rd, struct kz_msg *m)
{
    struct kz_msg_pull *p = &m->pull;
    struct kz_msg_cursor *c;
    uint32_t n, cap, i;

    rd_req(rd, &p->req);
    c = rd_list(rd, m, KZ_LIM_PULL_SCOPES_MAX, sizeof(*c), &n, &cap);
    for (i = 0; i < n && rd->err == 0; i++) {
        if ((c = rd_room(rd, m, &cap, i, n, sizeof(*c))) == NULL)
            break;
        rd_tuple(rd, 2, "cursor is not an array of 2");
        rd_name(rd, &c[i].scope);
        (void)kz_mpk_uint(rd, UINT64_MAX, &c[i].after_seq);
        p->cursors = c;
        p->n_cursors = i + 1;
    }
    rd_u32_pos(rd, &p->max_bytes, "max_bytes 0");
}

static void
rd_batch(struct kz_rd *rd, struct kz_msg *m)
{
    struct kz_msg_batch *b = &m->batch;
    struct kz_msg_item *it;
    uint32_t n, cap, i;

    rd_req(rd, &b->req);
    it = rd_list(rd, m, KZ_LIM_BATCH_ITEMS_MAX, sizeof(*it), &n, &cap);
    for (i = 0; i < n && rd->err == 0; i++) {
        if ((it = rd_room(rd, m, &cap, i, n, sizeof(*it))) == NULL)
            break;
        rd_tuple(rd, 5, "item is not an array of 5");
        rd_name(rd, &it[i].scope);
        rd_seq(rd, &it[i].server_seq, "server_seq 0");
        rd_bin(rd, KZ_LIM_CS_HEADER_MAX, &it[i].hdr);
        rd_bin(rd, KZ_LIM_CS_BODY_MAX, &it[i].body);
        rd_sig(rd, &it[i].sig);
        b->items = it;
        b->n_items = i + 1;
    }
    (void)kz_mpk_bool(rd, &b->done);
}

static void
rd_subscribe(struct kz_rd *rd, struct kz_msg *m)
{
    struct kz_msg_subscribe *s = &m->subscribe;
    struct kz_str *sc;
    uint32_t n, cap, i;

    sc = rd_list(rd, m, KZ_LIM_SUBSCRIBE_SCOPES_MAX, sizeof(*sc), &n, &cap);
    for (i = 0; i < n && rd->err == 0; i++) {
        if ((sc = rd_room(rd, m, &cap, i, n, sizeof(*sc))) == NULL)
            break;
        rd_name(rd, &sc[i]);
        s->scopes = sc;
        s->n_scopes = i + 1;
    }
}

static void
rd_roster(struct kz_rd *rd, struct kz_msg_roster *r)
{
    rd_req(rd, &r->req);
    if (kz_mpk_peek(rd) == KZ_MPK_NIL) {
        (void)kz_mpk_nil(rd);
        return;
    }
    rd_bin(rd, KZ_LIM_ROSTER_MAX, &r->roster);
    r->has_roster = rd->err == 0;
}

static void
rd_keys_put(struct kz_rd *rd, struct kz_msg *m)
{
    struct kz_msg_keys_put *k = &m->keys_put;
    struct kz_msg_bin *e;
    uint32_t n, cap, i;

    rd_req(rd, &k->req);
    e = rd_list(rd, m, KZ_LIM_KEYS_MAX, sizeof(*e), &n, &cap);
    for (i = 0; i < n && rd->err == 0; i++) {
        if ((e = rd_room(rd, m, &cap, i, n, sizeof(*e))) == NULL)
            break;
        rd_bin(rd, KZ_LIM_KEY_ENV_MAX, &e[i]);
        k->envs = e;
        k->n_envs = i + 1;
    }
}

static void
rd_keys(struct kz_rd *rd, struct kz_msg *m)
{
    struct kz_msg_keys *k = &m->keys;
    struct kz_msg_key *e;
    uint32_t n, cap, i;

    rd_req(rd, &k->req);
    e = rd_list(rd, m, KZ_LIM_KEYS_MAX, sizeof(*e), &n, &cap);
    for (i = 0; i < n && rd->err == 0; i++) {
        if ((e = rd_room(rd, m, &cap, i, n, sizeof(*e))) == NULL)
            break;
        rd_tuple(rd, 2, "key is not an array of 2");
        rd_seq(rd, &e[i].id, "key id 0");
        rd_bin(rd, KZ_LIM_KEY_ENV_MAX, &e[i].env);
        k->keys = e;
        k->n_keys = i + 1;
    }
    (void)kz_mpk_bool(rd, &k->done);
}

static void
rd_error(struct kz_rd *rd, struct kz_msg_error *e)
{
    (void)kz_mpk_u32(rd, &e->req);
    rd_u32_pos(rd, &e->code, "error code 0");
    (void)kz_mpk_str(rd, KZ_LIM_ERROR_TEXT_MAX, &e->text);
}

/*
 * kz_msg_decode(m, p, len, why): decodes exactly ${len} bytes into *${m};
 * strs and bins borrow from ${p}, array fields are owned by *${m} (free with
 * kz_msg_clear).  Returns 0, -KZ_EMALFORMED, -KZ_ELIMIT or -KZ_ENOMEM; on
 * error *${m} is cleared.  *${why} gets NULL or a static description.
 */
int
kz_msg_decode(struct kz_msg *m, const uint8_t *p, size_t len, const char **why)
{
    struct kz_rd rd;
    uint32_t n;
    uint64_t type;

    memset(m, 0, sizeof(*m));
    kz_rd_init(&rd, p, len);
    if (len > KZ_LIM_FRAME_MAX)
        RD_FAIL(&rd, -KZ_ELIMIT, "message over the frame limit");
    if (kz_mpk_array(&rd, KZ_LIM_COUNT_MAX, &n) == 0 && n == 0)
        RD_FAIL(&rd, -KZ_EMALFORMED, "empty message array");
    if (kz_mpk_uint(&rd, UINT64_MAX, &type) != 0)
        goto err0;
    if (type == 0 || type > KZ_MSG_TYPE_MAX) {
        RD_FAIL(&rd, -KZ_EMALFORMED, "unknown message type");
        goto err0;
    }
    if (n != info[type].n) {
        RD_FAIL(&rd, -KZ_EMALFORMED, "wrong element count");
        goto err0;
    }
    m->type = (enum kz_msg_type)type;
    switch (m->type) {
    case KZ_MSG_HELLO: rd_hello(&rd, &m->hello); break;
    case KZ_MSG_WELCOME: rd_welcome(&rd, &m->welcome); break;
    case KZ_MSG_PUSH: rd_push(&rd, &m->push); break;
    case KZ_MSG_PUSH_ACK: rd_push_ack(&rd, &m->push_ack); break;
    case KZ_MSG_PULL: rd_pull(&rd, m); break;
    case KZ_MSG_BATCH: rd_batch(&rd, m); break;
    case KZ_MSG_SUBSCRIBE: rd_subscribe(&rd, m); break;
    case KZ_MSG_NOTIFY:
        rd_name(&rd, &m->notify.scope);
        rd_seq(&rd, &m->notify.server_seq, "server_seq 0");
        break;
    case KZ_MSG_ROSTER_GET:
        rd_req(&rd, &m->roster_get.req);
        (void)kz_mpk_uint(&rd, UINT64_MAX, &m->roster_get.have_version);
        break;
    case KZ_MSG_ROSTER: rd_roster(&rd, &m->roster); break;
    case KZ_MSG_ROSTER_PUT:
        rd_req(&rd, &m->roster_put.req);
        rd_bin(&rd, KZ_LIM_ROSTER_MAX, &m->roster_put.roster);
        break;
    case KZ_MSG_OK: rd_req(&rd, &m->ok.req); break;
    case KZ_MSG_KEYS_PUT: rd_keys_put(&rd, m); break;
    case KZ_MSG_KEYS_GET:
        rd_req(&rd, &m->keys_get.req);
        (void)kz_mpk_uint(&rd, UINT64_MAX, &m->keys_get.after_id);
        break;
    case KZ_MSG_KEYS: rd_keys(&rd, m); break;
    case KZ_MSG_ERROR: rd_error(&rd, &m->error); break;
    case KZ_MSG_PING:
    case KZ_MSG_PONG: (void)kz_mpk_uint(&rd, UINT64_MAX, &m->ping.nonce); break;
    }
    if (rd.err == 0 && rd.left != 0)
        RD_FAIL(&rd, -KZ_EMALFORMED, "trailing bytes");
    if (rd.err != 0)
        goto err0;
    if (why != NULL)
        *why = NULL;
    return 0;

err0:
    kz_msg_clear(m);
    if (why != NULL)
        *why = rd.why;
    return rd.err;
}

/* kz_msg_clear(m): frees what kz_msg_decode allocated; zeroes *${m}. */
void
kz_msg_clear(struct kz_msg *m)
{
    kz_free(m->owned);
    memset(m, 0, sizeof(*m));
}

void
kz_msg_hello(struct kz_msg *m, const char *software)
{
    memset(m, 0, sizeof(*m));
    m->type = KZ_MSG_HELLO;
    m->hello.min_version = KZ_PROTO_VERSION;
    m->hello.max_version = KZ_PROTO_VERSION;
    m->hello.software.p = software;
    m->hello.software.len = strlen(software);
}

/* ---- encoding: first validate (→ -KZ_EINVAL), then write ---- */

static int
name_ok(const struct kz_str *s)
{
    return s->len >= 1 && s->len <= KZ_LIM_NAME_MAX && s->p != NULL &&
           memchr(s->p, 0, s->len) == NULL;
}

static int
str_ok(const struct kz_str *s, size_t max)
{
    return s->len <= max && (s->p != NULL || s->len == 0);
}

static int
bin_ok(const struct kz_msg_bin *b, size_t max)
{
    return b->len <= max && (b->p != NULL || b->len == 0);
}

static int
list_ok(const void *p, uint32_t n, uint32_t max)
{
    return n <= max && (p != NULL || n == 0);
}

static int
item_ok(const struct kz_msg_item *it)
{
    return name_ok(&it->scope) && it->server_seq != 0 &&
           bin_ok(&it->hdr, KZ_LIM_CS_HEADER_MAX) &&
           bin_ok(&it->body, KZ_LIM_CS_BODY_MAX) && it->sig != NULL;
}

/* valid(m): 1 if the decoder would accept every field of ${m}. */
static int
valid(const struct kz_msg *m)
{
    uint32_t i;

    switch (m->type) {
    case KZ_MSG_HELLO:
        return m->hello.min_version != 0 &&
               m->hello.max_version >= m->hello.min_version &&
               str_ok(&m->hello.software, KZ_LIM_SOFTWARE_MAX);
    case KZ_MSG_WELCOME:
        return m->welcome.version != 0 && m->welcome.max_frame != 0 &&
               m->welcome.max_frame <= KZ_LIM_FRAME_MAX &&
               m->welcome.max_batch_bytes != 0;
    case KZ_MSG_PUSH:
        return m->push.req != 0 && name_ok(&m->push.scope) &&
               bin_ok(&m->push.hdr, KZ_LIM_CS_HEADER_MAX) &&
               bin_ok(&m->push.body, KZ_LIM_CS_BODY_MAX) && m->push.sig != NULL;
    case KZ_MSG_PUSH_ACK:
        return m->push_ack.req != 0 && m->push_ack.server_seq != 0;
    case KZ_MSG_PULL:
        if (m->pull.req == 0 || m->pull.max_bytes == 0 ||
            !list_ok(m->pull.cursors, m->pull.n_cursors,
                     KZ_LIM_PULL_SCOPES_MAX))
            return 0;
        for (i = 0; i < m->pull.n_cursors; i++)
            if (!name_ok(&m->pull.cursors[i].scope))
                return 0;
        return 1;
    case KZ_MSG_BATCH:
        if (m->batch.req == 0 ||
            !list_ok(m->batch.items, m->batch.n_items, KZ_LIM_BATCH_ITEMS_MAX))
            return 0;
        for (i = 0; i < m->batch.n_items; i++)
            if (!item_ok(&m->batch.items[i]))
                return 0;
        return 1;
    case KZ_MSG_SUBSCRIBE:
        if (!list_ok(m->subscribe.scopes, m->subscribe.n_scopes,
                     KZ_LIM_SUBSCRIBE_SCOPES_MAX))
            return 0;
        for (i = 0; i < m->subscribe.n_scopes; i++)
            if (!name_ok(&m->subscribe.scopes[i]))
                return 0;
        return 1;
    case KZ_MSG_NOTIFY:
        return name_ok(&m->notify.scope) && m->notify.server_seq != 0;
    case KZ_MSG_ROSTER_GET: return m->roster_get.req != 0;
    case KZ_MSG_ROSTER:
        return m->roster.req != 0 &&
               (!m->roster.has_roster ||
                bin_ok(&m->roster.roster, KZ_LIM_ROSTER_MAX));
    case KZ_MSG_ROSTER_PUT:
        return m->roster_put.req != 0 &&
               bin_ok(&m->roster_put.roster, KZ_LIM_ROSTER_MAX);
    case KZ_MSG_OK: return m->ok.req != 0;
    case KZ_MSG_KEYS_PUT:
        if (m->keys_put.req == 0 ||
            !list_ok(m->keys_put.envs, m->keys_put.n_envs, KZ_LIM_KEYS_MAX))
            return 0;
        for (i = 0; i < m->keys_put.n_envs; i++)
            if (!bin_ok(&m->keys_put.envs[i], KZ_LIM_KEY_ENV_MAX))
                return 0;
        return 1;
    case KZ_MSG_KEYS_GET: return m->keys_get.req != 0;
    case KZ_MSG_KEYS:
        if (m->keys.req == 0 ||
            !list_ok(m->keys.keys, m->keys.n_keys, KZ_LIM_KEYS_MAX))
            return 0;
        for (i = 0; i < m->keys.n_keys; i++)
            if (m->keys.keys[i].id == 0 ||
                !bin_ok(&m->keys.keys[i].env, KZ_LIM_KEY_ENV_MAX))
                return 0;
        return 1;
    case KZ_MSG_ERROR:
        return m->error.code != 0 &&
               str_ok(&m->error.text, KZ_LIM_ERROR_TEXT_MAX);
    case KZ_MSG_PING:
    case KZ_MSG_PONG: return 1;
    }
    return 0; /* an unknown type */
}

static void
wr_str(struct kz_mpk_wr *w, const struct kz_str *s)
{
    kz_mpk_wr_str(w, s->p, s->len);
}

static void
wr_bin(struct kz_mpk_wr *w, const struct kz_msg_bin *b)
{
    kz_mpk_wr_bin(w, b->p, b->len);
}

/* put(m, w): writes a valid ${m}; errors are sticky in ${w}. */
static void
put(const struct kz_msg *m, struct kz_mpk_wr *w)
{
    uint32_t i;

    kz_mpk_wr_array(w, info[m->type].n);
    kz_mpk_wr_uint(w, (uint64_t)m->type);
    switch (m->type) {
    case KZ_MSG_HELLO:
        kz_mpk_wr_uint(w, m->hello.min_version);
        kz_mpk_wr_uint(w, m->hello.max_version);
        wr_str(w, &m->hello.software);
        break;
    case KZ_MSG_WELCOME:
        kz_mpk_wr_uint(w, m->welcome.version);
        kz_mpk_wr_uint(w, m->welcome.server_time_ms);
        kz_mpk_wr_uint(w, m->welcome.max_frame);
        kz_mpk_wr_uint(w, m->welcome.max_batch_bytes);
        break;
    case KZ_MSG_PUSH:
        kz_mpk_wr_uint(w, m->push.req);
        wr_str(w, &m->push.scope);
        wr_bin(w, &m->push.hdr);
        wr_bin(w, &m->push.body);
        kz_mpk_wr_bin(w, m->push.sig, KZ_MSG_SIG_LEN);
        break;
    case KZ_MSG_PUSH_ACK:
        kz_mpk_wr_uint(w, m->push_ack.req);
        kz_mpk_wr_uint(w, m->push_ack.server_seq);
        kz_mpk_wr_bool(w, m->push_ack.duplicate);
        break;
    case KZ_MSG_PULL:
        kz_mpk_wr_uint(w, m->pull.req);
        kz_mpk_wr_array(w, m->pull.n_cursors);
        for (i = 0; i < m->pull.n_cursors; i++) {
            kz_mpk_wr_array(w, 2);
            wr_str(w, &m->pull.cursors[i].scope);
            kz_mpk_wr_uint(w, m->pull.cursors[i].after_seq);
        }
        kz_mpk_wr_uint(w, m->pull.max_bytes);
        break;
    case KZ_MSG_BATCH:
        kz_mpk_wr_uint(w, m->batch.req);
        kz_mpk_wr_array(w, m->batch.n_items);
        for (i = 0; i < m->batch.n_items; i++) {
            const struct kz_msg_item *it = &m->batch.items[i];

            kz_mpk_wr_array(w, 5);
            wr_str(w, &it->scope);
            kz_mpk_wr_uint(w, it->server_seq);
            wr_bin(w, &it->hdr);
            wr_bin(w, &it->body);
            kz_mpk_wr_bin(w, it->sig, KZ_MSG_SIG_LEN);
        }
        kz_mpk_wr_bool(w, m->batch.done);
        break;
    case KZ_MSG_SUBSCRIBE:
        kz_mpk_wr_array(w, m->subscribe.n_scopes);
        for (i = 0; i < m->subscribe.n_scopes; i++)
            wr_str(w, &m->subscribe.scopes[i]);
        break;
    case KZ_MSG_NOTIFY:
        wr_str(w, &m->notify.scope);
        kz_mpk_wr_uint(w, m->notify.server_seq);
        break;
    case KZ_MSG_ROSTER_GET:
        kz_mpk_wr_uint(w, m->roster_get.req);
        kz_mpk_wr_uint(w, m->roster_get.have_version);
        break;
    case KZ_MSG_ROSTER:
        kz_mpk_wr_uint(w, m->roster.req);
        if (m->roster.has_roster)
            wr_bin(w, &m->roster.roster);
        else
            kz_mpk_wr_nil(w);
        break;
    case KZ_MSG_ROSTER_PUT:
        kz_mpk_wr_uint(w, m->roster_put.req);
        wr_bin(w, &m->roster_put.roster);
        break;
    case KZ_MSG_OK: kz_mpk_wr_uint(w, m->ok.req); break;
    case KZ_MSG_KEYS_PUT:
        kz_mpk_wr_uint(w, m->keys_put.req);
        kz_mpk_wr_array(w, m->keys_put.n_envs);
        for (i = 0; i < m->keys_put.n_envs; i++)
            wr_bin(w, &m->keys_put.envs[i]);
        break;
    case KZ_MSG_KEYS_GET:
        kz_mpk_wr_uint(w, m->keys_get.req);
        kz_mpk_wr_uint(w, m->keys_get.after_id);
        break;
    case KZ_MSG_KEYS:
        kz_mpk_wr_uint(w, m->keys.req);
        kz_mpk_wr_array(w, m->keys.n_keys);
        for (i = 0; i < m->keys.n_keys; i++) {
            kz_mpk_wr_array(w, 2);
            kz_mpk_wr_uint(w, m->keys.keys[i].id);
            wr_bin(w, &m->keys.keys[i].env);
        }
        kz_mpk_wr_bool(w, m->keys.done);
        break;
    case KZ_MSG_ERROR:
        kz_mpk_wr_uint(w, m->error.req);
        kz_mpk_wr_uint(w, m->error.code);
        wr_str(w, &m->error.text);
        break;
    case KZ_MSG_PING:
    case KZ_MSG_PONG: kz_mpk_wr_uint(w, m->ping.nonce); break;
    }
}

/*
 * kz_msg_pack(m, w): appends ${m} as one msgpack array to ${w}.  Returns 0,
 * -KZ_EINVAL (${w} untouched) or the writer's sticky error.
 */
int
kz_msg_pack(const struct kz_msg *m, struct kz_mpk_wr *w)
{
    if (!valid(m))
        return -KZ_EINVAL;
    put(m, w);
    return kz_mpk_wr_err(w);
}

/*
 * kz_msg_encode(m, out): appends u32 BE length ‖ ${m} to ${out}.  Returns 0,
 * -KZ_EINVAL, -KZ_ELIMIT, -KZ_ENOMEM or ${out}'s sticky error; on failure
 * nothing is appended and ${out}'s error is left as it was.
 *
 * The message is packed straight into ${out} (no second copy of a 16 MiB
 * BATCH) by lending its buffer to a writer whose cap is also the frame
 * limit, and the length prefix is patched in afterwards.
 */
int
kz_msg_encode(const struct kz_msg *m, struct kz_buf *out)
{
    static const uint8_t zero[KZ_MSG_HDR_LEN];
    struct kz_mpk_wr w;
    size_t start;
    int rc;

    if (out->err)
        return out->err;
    if (!valid(m))
        return -KZ_EINVAL;
    start = out->len;
    w.b = *out;
    if (out->max - start > KZ_MSG_HDR_LEN + (size_t)KZ_LIM_FRAME_MAX)
        w.b.max = start + KZ_MSG_HDR_LEN + KZ_LIM_FRAME_MAX;
    kz_buf_append(&w.b, zero, sizeof(zero));
    put(m, &w);
    rc = kz_mpk_wr_err(&w);
    if (rc == 0)
        rc = kz_frame_put_header(w.b.p + start, KZ_MSG_HDR_LEN,
                                 w.b.len - start - KZ_MSG_HDR_LEN);
    /* The writer may have moved the memory; the length and error are
     * ${out}'s own. */
    out->p = w.b.p;
    out->cap = w.b.cap;
    out->len = rc == 0 ? w.b.len : start;
    return rc;
}

/* kz_msg_item_size(it): an upper bound on ${it}'s bytes in a BATCH. */
size_t
kz_msg_item_size(const struct kz_msg_item *it)
{
    /* fixarray 1; str32 header 5; uint64 9; two bin32 headers 10; the
     * signature's bin8 header 2. */
    return 1 + 5 + it->scope.len + 9 + 5 + it->hdr.len + 5 + it->body.len + 2 +
           KZ_MSG_SIG_LEN;
}

/* kz_msg_name(type): "HELLO", "PUSH", … or "UNKNOWN"; never NULL. */
const char *
kz_msg_name(uint32_t type)
{
    if (type == 0 || type > KZ_MSG_TYPE_MAX)
        return "UNKNOWN";
    return info[type].name;
}

/* kz_msg_dir(type): KZ_MSG_C2S and/or KZ_MSG_S2C; 0 for an unknown type. */
unsigned
kz_msg_dir(uint32_t type)
{
    if (type == 0 || type > KZ_MSG_TYPE_MAX)
        return 0;
    return info[type].dir;
}
