/*
 * test_msg.c: the application messages (proto/msg.h) and the wire error
 * table (proto/errcode.h).
 *
 * Positive tests round-trip one sample of every message type through
 * kz_msg_encode / kz_msg_decode and look at our bytes with msgpack-c as an
 * oracle (our own bytes only: msgpack-c never sees hostile input).  Negative
 * tests are exact bytes, written with the low-level mpk writer or by hand.
 *
 * With KZ_WRITE_CORPUS=DIR set, the test write_corpus writes fuzz seeds (one
 * message per file, without the length prefix) to DIR/msg/.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <msgpack.h>

#include "alloc.h"
#include "err.h"
#include "errcode.h"
#include "frame.h"
#include "limits.h"
#include "mpk.h"
#include "msg.h"

#include "t.h"

static const uint8_t sig_a[KZ_MSG_SIG_LEN] = {0x5a, 1, 2, 3, [63] = 0xee};
static const uint8_t hdr_a[44] = {0x99, 0x01, 0xa1, 0x6e, 0xc4, 0x20};
static const uint8_t body_a[] = {0x94, 0x01, 0x90, 0x90, 0x90, 0xff};

static struct kz_str
S(const char *s) {
    struct kz_str r = {s, strlen(s)};
    return r;
}

static struct kz_msg_bin
B(const void *p, size_t len) {
    struct kz_msg_bin b = {p, len};
    return b;
}

/* Storage for the samples' arrays (borrowed by the messages). */
static struct kz_msg_cursor s_cursors[3];
static struct kz_msg_item s_items[2];
static struct kz_str s_scopes[3];
static struct kz_msg_bin s_envs[2];
static struct kz_msg_key s_keys[3];

/* sample(type): a valid message of ${type} with every field non-trivial. */
static struct kz_msg
sample(enum kz_msg_type type)
{
    struct kz_msg m;

    memset(&m, 0, sizeof(m));
    m.type = type;
    switch (type) {
    case KZ_MSG_HELLO:
        m.hello.min_version = 1;
        m.hello.max_version = 3;
        m.hello.software = S("kzsync/0.1.0");
        break;
    case KZ_MSG_WELCOME:
        m.welcome.version = 1;
        m.welcome.server_time_ms = UINT64_C(1717171717171);
        m.welcome.max_frame = KZ_LIM_FRAME_MAX;
        m.welcome.max_batch_bytes = 4u << 20;
        break;
    case KZ_MSG_PUSH:
        m.push.req = 7;
        m.push.scope = S("site:HAN");
        m.push.hdr = B(hdr_a, sizeof(hdr_a));
        m.push.body = B(body_a, sizeof(body_a));
        m.push.sig = sig_a;
        break;
    case KZ_MSG_PUSH_ACK:
        m.push_ack.req = 7;
        m.push_ack.server_seq = 1234567;
        m.push_ack.duplicate = true;
        break;
    case KZ_MSG_PULL:
        s_cursors[0] = (struct kz_msg_cursor){S("network"), 0};
        s_cursors[1] = (struct kz_msg_cursor){S("site:HAN"), 99};
        s_cursors[2] = (struct kz_msg_cursor){S("private:HAN"), UINT64_MAX};
        m.pull.req = 8;
        m.pull.cursors = s_cursors;
        m.pull.n_cursors = 3;
        m.pull.max_bytes = 1u << 20;
        break;
    case KZ_MSG_BATCH:
        s_items[0] =
            (struct kz_msg_item){S("network"), 1, B(hdr_a, sizeof(hdr_a)),
                                 B(body_a, sizeof(body_a)), sig_a};
        s_items[1] = (struct kz_msg_item){S("site:OL"), UINT64_MAX,
                                          B(hdr_a, 10), B(NULL, 0), sig_a};
        m.batch.req = 8;
        m.batch.items = s_items;
        m.batch.n_items = 2;
        m.batch.done = true;
        break;
    case KZ_MSG_SUBSCRIBE:
        s_scopes[0] = S("network");
        s_scopes[1] = S("site:HAN");
        s_scopes[2] = S("private:HAN");
        m.subscribe.scopes = s_scopes;
        m.subscribe.n_scopes = 3;
        break;
    case KZ_MSG_NOTIFY:
        m.notify.scope = S("site:LG");
        m.notify.server_seq = 42;
        break;
    case KZ_MSG_ROSTER_GET:
        m.roster_get.req = 9;
        m.roster_get.have_version = 12;
        break;
    case KZ_MSG_ROSTER:
        m.roster.req = 9;
        m.roster.has_roster = true;
        m.roster.roster = B(body_a, sizeof(body_a));
        break;
    case KZ_MSG_ROSTER_PUT:
        m.roster_put.req = 10;
        m.roster_put.roster = B(hdr_a, sizeof(hdr_a));
        break;
    case KZ_MSG_OK: m.ok.req = 10; break;
    case KZ_MSG_KEYS_PUT:
        s_envs[0] = B(hdr_a, sizeof(hdr_a));
        s_envs[1] = B(sig_a, sizeof(sig_a));
        m.keys_put.req = 11;
        m.keys_put.envs = s_envs;
        m.keys_put.n_envs = 2;
        break;
    case KZ_MSG_KEYS_GET:
        m.keys_get.req = 12;
        m.keys_get.after_id = 5;
        break;
    case KZ_MSG_KEYS:
        s_keys[0] = (struct kz_msg_key){6, B(hdr_a, sizeof(hdr_a))};
        s_keys[1] = (struct kz_msg_key){7, B(sig_a, 1)};
        s_keys[2] = (struct kz_msg_key){UINT64_MAX, B(NULL, 0)};
        m.keys.req = 12;
        m.keys.keys = s_keys;
        m.keys.n_keys = 3;
        m.keys.done = false;
        break;
    case KZ_MSG_ERROR:
        m.error.req = 7;
        m.error.code = KZ_WIRE_SEQ_GAP;
        m.error.text = S("author_seq gap: expected 18");
        break;
    case KZ_MSG_PING:
    case KZ_MSG_PONG: m.ping.nonce = UINT64_C(0xfedcba9876543210); break;
    }
    return m;
}

static int
str_eq(struct kz_str a, struct kz_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static int
bin_eq(struct kz_msg_bin a, struct kz_msg_bin b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static int
sig_eq(const uint8_t *a, const uint8_t *b)
{
    return a != NULL && b != NULL && memcmp(a, b, KZ_MSG_SIG_LEN) == 0;
}

/* msg_eq(a, b): field by field (arrays element by element). */
static int
msg_eq(const struct kz_msg *a, const struct kz_msg *b)
{
    uint32_t i;

    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case KZ_MSG_HELLO:
        return a->hello.min_version == b->hello.min_version &&
               a->hello.max_version == b->hello.max_version &&
               str_eq(a->hello.software, b->hello.software);
    case KZ_MSG_WELCOME:
        return memcmp(&a->welcome, &b->welcome, sizeof(a->welcome)) == 0;
    case KZ_MSG_PUSH:
        return a->push.req == b->push.req &&
               str_eq(a->push.scope, b->push.scope) &&
               bin_eq(a->push.hdr, b->push.hdr) &&
               bin_eq(a->push.body, b->push.body) &&
               sig_eq(a->push.sig, b->push.sig);
    case KZ_MSG_PUSH_ACK:
        return a->push_ack.req == b->push_ack.req &&
               a->push_ack.server_seq == b->push_ack.server_seq &&
               a->push_ack.duplicate == b->push_ack.duplicate;
    case KZ_MSG_PULL:
        if (a->pull.req != b->pull.req ||
            a->pull.max_bytes != b->pull.max_bytes ||
            a->pull.n_cursors != b->pull.n_cursors)
            return 0;
        for (i = 0; i < a->pull.n_cursors; i++)
            if (!str_eq(a->pull.cursors[i].scope, b->pull.cursors[i].scope) ||
                a->pull.cursors[i].after_seq != b->pull.cursors[i].after_seq)
                return 0;
        return 1;
    case KZ_MSG_BATCH:
        if (a->batch.req != b->batch.req || a->batch.done != b->batch.done ||
            a->batch.n_items != b->batch.n_items)
            return 0;
        for (i = 0; i < a->batch.n_items; i++) {
            const struct kz_msg_item *x = &a->batch.items[i];
            const struct kz_msg_item *y = &b->batch.items[i];
            if (!str_eq(x->scope, y->scope) || x->server_seq != y->server_seq ||
                !bin_eq(x->hdr, y->hdr) || !bin_eq(x->body, y->body) ||
                !sig_eq(x->sig, y->sig))
                return 0;
        }
        return 1;
    case KZ_MSG_SUBSCRIBE:
        if (a->subscribe.n_scopes != b->subscribe.n_scopes)
            return 0;
        for (i = 0; i < a->subscribe.n_scopes; i++)
            if (!str_eq(a->subscribe.scopes[i], b->subscribe.scopes[i]))
                return 0;
        return 1;
    case KZ_MSG_NOTIFY:
        return str_eq(a->notify.scope, b->notify.scope) &&
               a->notify.server_seq == b->notify.server_seq;
    case KZ_MSG_ROSTER_GET:
        return a->roster_get.req == b->roster_get.req &&
               a->roster_get.have_version == b->roster_get.have_version;
    case KZ_MSG_ROSTER:
        return a->roster.req == b->roster.req &&
               a->roster.has_roster == b->roster.has_roster &&
               (!a->roster.has_roster ||
                bin_eq(a->roster.roster, b->roster.roster));
    case KZ_MSG_ROSTER_PUT:
        return a->roster_put.req == b->roster_put.req &&
               bin_eq(a->roster_put.roster, b->roster_put.roster);
    case KZ_MSG_OK: return a->ok.req == b->ok.req;
    case KZ_MSG_KEYS_PUT:
        if (a->keys_put.req != b->keys_put.req ||
            a->keys_put.n_envs != b->keys_put.n_envs)
            return 0;
        for (i = 0; i < a->keys_put.n_envs; i++)
            if (!bin_eq(a->keys_put.envs[i], b->keys_put.envs[i]))
                return 0;
        return 1;
    case KZ_MSG_KEYS_GET:
        return a->keys_get.req == b->keys_get.req &&
               a->keys_get.after_id == b->keys_get.after_id;
    case KZ_MSG_KEYS:
        if (a->keys.req != b->keys.req || a->keys.done != b->keys.done ||
            a->keys.n_keys != b->keys.n_keys)
            return 0;
        for (i = 0; i < a->keys.n_keys; i++)
            if (a->keys.keys[i].id != b->keys.keys[i].id ||
                !bin_eq(a->keys.keys[i].env, b->keys.keys[i].env))
                return 0;
        return 1;
    case KZ_MSG_ERROR:
        return a->error.req == b->error.req && a->error.code == b->error.code &&
               str_eq(a->error.text, b->error.text);
    case KZ_MSG_PING:
    case KZ_MSG_PONG: return a->ping.nonce == b->ping.nonce;
    }
    return 0;
}

/* pack(m, out, len): ${m} without prefix, malloc'd (kz_free). */
static void
pack(const struct kz_msg *m, uint8_t **out, size_t *len)
{
    struct kz_mpk_wr w;

    kz_mpk_wr_init(&w, KZ_LIM_FRAME_MAX);
    ASSERT_OK(kz_msg_pack(m, &w));
    ASSERT_OK(kz_mpk_wr_finish(&w, out, len));
}

/* Decodes ${p}/${len}, expecting ${code} and, if not NULL, ${why}. */
static void
expect_fail(const void *p, size_t len, int code, const char *why)
{
    struct kz_msg m;
    const char *w = NULL;

    ASSERT_ERR(kz_msg_decode(&m, p, len, &w), code);
    ASSERT(w != NULL);
    if (why != NULL)
        ASSERT_STR_EQ(w, why);
    ASSERT(m.owned == NULL);
    ASSERT_EQ(m.type, 0);
}

TEST(round_trip_every_type)
{
    uint32_t t;

    for (t = 1; t <= KZ_MSG_TYPE_MAX; t++) {
        struct kz_msg m = sample((enum kz_msg_type)t), d;
        struct kz_buf out;
        msgpack_unpacked u;
        size_t off = 0;
        const char *why = "x";
        uint8_t *p;
        size_t len;

        /* Framed. */
        kz_buf_init(&out, 1 << 20);
        kz_buf_u8(&out, 0xaa); /* something before: encode appends */
        ASSERT_OK(kz_msg_encode(&m, &out));
        ASSERT_GT(out.len, 5);
        ASSERT_EQ(out.p[0], 0xaa);
        pack(&m, &p, &len);
        ASSERT_EQ(out.len, 1 + 4 + len);
        ASSERT_EQ(((size_t)out.p[1] << 24 | (size_t)out.p[2] << 16 |
                   (size_t)out.p[3] << 8 | out.p[4]),
                  len);
        ASSERT_MEM_EQ(out.p + 5, p, len);
        ASSERT_OK(kz_msg_decode(&d, out.p + 5, len, &why));
        ASSERT(why == NULL);
        ASSERT_EQ(d.type, t);
        ASSERT(msg_eq(&m, &d));
        kz_msg_clear(&d);
        ASSERT(d.owned == NULL);

        /* The oracle: one array of the right size whose first element is
         * the type, and nothing after it. */
        msgpack_unpacked_init(&u);
        ASSERT_EQ(msgpack_unpack_next(&u, (const char *)p, len, &off),
                  MSGPACK_UNPACK_SUCCESS);
        ASSERT_EQ(off, len);
        ASSERT_EQ(u.data.type, MSGPACK_OBJECT_ARRAY);
        ASSERT_GE(u.data.via.array.size, 2);
        ASSERT_EQ(u.data.via.array.ptr[0].type,
                  MSGPACK_OBJECT_POSITIVE_INTEGER);
        ASSERT_EQ(u.data.via.array.ptr[0].via.u64, t);
        msgpack_unpacked_destroy(&u);
        kz_free(p);
        kz_buf_free(&out);
        ASSERT_STR_EQ(kz_msg_name(t), kz_msg_name(t)); /* not NULL */
        ASSERT_NE(kz_msg_dir(t), 0);
    }
    ASSERT_STR_EQ(kz_msg_name(0), "UNKNOWN");
    ASSERT_STR_EQ(kz_msg_name(19), "UNKNOWN");
    ASSERT_STR_EQ(kz_msg_name(KZ_MSG_ROSTER_PUT), "ROSTER_PUT");
    ASSERT_EQ(kz_msg_dir(KZ_MSG_PUSH), KZ_MSG_C2S);
    ASSERT_EQ(kz_msg_dir(KZ_MSG_BATCH), KZ_MSG_S2C);
    ASSERT_EQ(kz_msg_dir(KZ_MSG_ERROR), KZ_MSG_C2S | KZ_MSG_S2C);
    ASSERT_EQ(kz_msg_dir(19), 0);
}

TEST(hello_offers_this_version)
{
    struct kz_msg m, d;
    uint8_t *p;
    size_t len;

    memset(&m, 0xff, sizeof(m));
    kz_msg_hello(&m, "kzsync/9.9");
    ASSERT_EQ(m.type, KZ_MSG_HELLO);
    ASSERT(m.owned == NULL);
    pack(&m, &p, &len);
    ASSERT_OK(kz_msg_decode(&d, p, len, NULL));
    ASSERT_EQ(d.type, KZ_MSG_HELLO);
    ASSERT_EQ(d.hello.min_version, KZ_PROTO_VERSION);
    ASSERT_EQ(d.hello.max_version, KZ_PROTO_VERSION);
    ASSERT_EQ(d.hello.software.len, 10);
    ASSERT(memcmp(d.hello.software.p, "kzsync/9.9", 10) == 0);
    kz_msg_clear(&d);
    kz_free(p);
}

TEST(oracle_reads_every_field_of_a_batch)
{
    struct kz_msg m = sample(KZ_MSG_BATCH);
    msgpack_unpacked u;
    msgpack_object_array *a, *it;
    size_t off = 0, len;
    uint8_t *p;

    pack(&m, &p, &len);
    msgpack_unpacked_init(&u);
    ASSERT_EQ(msgpack_unpack_next(&u, (const char *)p, len, &off),
              MSGPACK_UNPACK_SUCCESS);
    a = &u.data.via.array;
    ASSERT_EQ(a->size, 4);
    ASSERT_EQ(a->ptr[1].via.u64, 8);
    ASSERT_EQ(a->ptr[2].type, MSGPACK_OBJECT_ARRAY);
    ASSERT_EQ(a->ptr[2].via.array.size, 2);
    it = &a->ptr[2].via.array.ptr[1].via.array;
    ASSERT_EQ(it->size, 5);
    ASSERT_EQ(it->ptr[0].type, MSGPACK_OBJECT_STR);
    ASSERT_EQ(it->ptr[0].via.str.size, 7);
    ASSERT_MEM_EQ(it->ptr[0].via.str.ptr, "site:OL", 7);
    ASSERT_U64_EQ(it->ptr[1].via.u64, UINT64_MAX);
    ASSERT_EQ(it->ptr[2].type, MSGPACK_OBJECT_BIN);
    ASSERT_EQ(it->ptr[2].via.bin.size, 10);
    ASSERT_EQ(it->ptr[3].type, MSGPACK_OBJECT_BIN);
    ASSERT_EQ(it->ptr[3].via.bin.size, 0);
    ASSERT_EQ(it->ptr[4].via.bin.size, 64);
    ASSERT_MEM_EQ(it->ptr[4].via.bin.ptr, sig_a, 64);
    ASSERT_EQ(a->ptr[3].type, MSGPACK_OBJECT_BOOLEAN);
    ASSERT(a->ptr[3].via.boolean);
    msgpack_unpacked_destroy(&u);
    kz_free(p);
}

TEST(exact_bytes)
{
    struct kz_msg m;
    struct kz_buf out;
    static const uint8_t ping[] = {0, 0, 0, 3, 0x92, 0x11, 0x05};
    static const uint8_t hello[] = {0x94, 0x01, 0x01, 0x01, 0xa2, 'k', 'z'};
    static const uint8_t roster_nil[] = {0x93, 0x0a, 0x01, 0xc0};
    static const uint8_t roster_empty[] = {0x93, 0x0a, 0x01, 0xc4, 0x00};
    static const uint8_t error0[] = {0x94, 0x10, 0x00, 0x0c, 0xa0};
    /* Non-shortest forms are accepted: req as uint32, type as int8. */
    static const uint8_t ok_long[] = {0x92, 0xd0, 0x0c, 0xce, 0, 0, 0, 5};
    static const uint8_t sub_empty[] = {0x92, 0x07, 0xdc, 0x00, 0x00};

    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_PING;
    m.ping.nonce = 5;
    kz_buf_init(&out, 64);
    ASSERT_OK(kz_msg_encode(&m, &out));
    ASSERT_EQ(out.len, sizeof(ping));
    ASSERT_MEM_EQ(out.p, ping, sizeof(ping));
    kz_buf_free(&out);

    ASSERT_OK(kz_msg_decode(&m, hello, sizeof(hello), NULL));
    ASSERT_EQ(m.type, KZ_MSG_HELLO);
    ASSERT_EQ(m.hello.min_version, 1);
    ASSERT_EQ(m.hello.max_version, 1);
    ASSERT_EQ(m.hello.software.len, 2);
    ASSERT(m.hello.software.p == (const char *)hello + 5); /* borrowed */
    kz_msg_clear(&m);

    ASSERT_OK(kz_msg_decode(&m, roster_nil, sizeof(roster_nil), NULL));
    ASSERT_EQ(m.type, KZ_MSG_ROSTER);
    ASSERT(!m.roster.has_roster);
    ASSERT_OK(kz_msg_decode(&m, roster_empty, sizeof(roster_empty), NULL));
    ASSERT(m.roster.has_roster);
    ASSERT_EQ(m.roster.roster.len, 0);

    ASSERT_OK(kz_msg_decode(&m, error0, sizeof(error0), NULL));
    ASSERT_EQ(m.error.req, 0);
    ASSERT_EQ(m.error.code, KZ_WIRE_STATE);
    ASSERT_EQ(m.error.text.len, 0);

    ASSERT_OK(kz_msg_decode(&m, ok_long, sizeof(ok_long), NULL));
    ASSERT_EQ(m.type, KZ_MSG_OK);
    ASSERT_EQ(m.ok.req, 5);

    ASSERT_OK(kz_msg_decode(&m, sub_empty, sizeof(sub_empty), NULL));
    ASSERT_EQ(m.type, KZ_MSG_SUBSCRIBE);
    ASSERT_EQ(m.subscribe.n_scopes, 0);
    ASSERT(m.owned == NULL);
    kz_msg_clear(&m);
}

TEST(truncated_at_every_offset_and_trailing_byte)
{
    uint32_t t;

    for (t = 1; t <= KZ_MSG_TYPE_MAX; t++) {
        struct kz_msg m = sample((enum kz_msg_type)t);
        uint8_t *p, *q;
        size_t len, i;

        pack(&m, &p, &len);
        for (i = 0; i < len; i++) {
            /* A copy of exactly i bytes, so ASan sees any over-read. */
            q = malloc(i ? i : 1);
            ASSERT(q != NULL);
            memcpy(q, p, i);
            expect_fail(q, i, -KZ_EMALFORMED, NULL);
            free(q);
        }
        q = malloc(len + 1);
        ASSERT(q != NULL);
        memcpy(q, p, len);
        q[len] = 0xc0;
        expect_fail(q, len + 1, -KZ_EMALFORMED, "trailing bytes");
        free(q);
        kz_free(p);
    }
}

TEST(unknown_type_and_wrong_shape)
{
    static const uint8_t t0[] = {0x91, 0x00};
    static const uint8_t t19[] = {0x92, 0x13, 0x05};
    static const uint8_t t_big[] = {0x91, 0xcf, 0xff, 0xff, 0xff,
                                    0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t t_neg[] = {0x92, 0xff, 0x05};
    static const uint8_t t_str[] = {0x92, 0xa1, 0x11, 0x05};
    static const uint8_t empty[] = {0x90};
    static const uint8_t map[] = {0x81, 0x11, 0x05};
    static const uint8_t scalar[] = {0x11};
    static const uint8_t ping3[] = {0x93, 0x11, 0x05, 0x05};
    static const uint8_t ping1[] = {0x91, 0x11};
    static const uint8_t c1[] = {0x92, 0x11, 0xc1};

    expect_fail(t0, sizeof(t0), -KZ_EMALFORMED, "unknown message type");
    expect_fail(t19, sizeof(t19), -KZ_EMALFORMED, "unknown message type");
    expect_fail(t_big, sizeof(t_big), -KZ_EMALFORMED, "unknown message type");
    expect_fail(t_neg, sizeof(t_neg), -KZ_EMALFORMED, NULL);
    expect_fail(t_str, sizeof(t_str), -KZ_EMALFORMED, "expected integer");
    expect_fail(empty, sizeof(empty), -KZ_EMALFORMED, NULL);
    expect_fail(map, sizeof(map), -KZ_EMALFORMED, "expected array");
    expect_fail(scalar, sizeof(scalar), -KZ_EMALFORMED, "expected array");
    expect_fail(ping3, sizeof(ping3), -KZ_EMALFORMED, "wrong element count");
    expect_fail(ping1, sizeof(ping1), -KZ_EMALFORMED, "wrong element count");
    expect_fail(c1, sizeof(c1), -KZ_EMALFORMED, NULL);
    expect_fail(NULL, 0, -KZ_EMALFORMED, "truncated");
}

TEST(absurd_counts_fail_fast_without_allocating)
{
    /* msgpack-c#1013: five bytes that claim billions of elements. */
    static const uint8_t whole[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t pull[] = {0x94, 0x05, 0x01, 0xdd, 0xff,
                                   0xff, 0xff, 0xff, 0x01};
    static const uint8_t pull_lie[] = {0x94, 0x05, 0x01, 0xdc,
                                       0x03, 0xff, 0x01};
    static const uint8_t batch[] = {0x94, 0x06, 0x01, 0xdd, 0x00,
                                    0x01, 0x00, 0x00, 0xc3};
    static const uint8_t sub[] = {0x92, 0x07, 0xdc, 0x04, 0x01};
    static const uint8_t keys[] = {0x94, 0x0f, 0x01, 0xdc, 0x04, 0x01, 0xc3};
    static const uint8_t keys_put[] = {0x93, 0x0d, 0x01, 0xdc, 0x04, 0x01};
    static const uint8_t push_body[] = {0x96, 0x03, 0x01, 0xa1, 'n',  0xc4,
                                        0x00, 0xc6, 0x00, 0x80, 0x00, 0x01};
    static const uint8_t str_lie[] = {0x94, 0x01, 0x01, 0x01, 0xd9, 0x20};

    kz_alloc_fail_after(0); /* any allocation would fail the test */
    expect_fail(whole, sizeof(whole), -KZ_ELIMIT, "array count over limit");
    expect_fail(pull, sizeof(pull), -KZ_ELIMIT, "array count over limit");
    expect_fail(pull_lie, sizeof(pull_lie), -KZ_EMALFORMED,
                "array count over bytes left");
    expect_fail(batch, sizeof(batch), -KZ_ELIMIT, "array count over limit");
    expect_fail(sub, sizeof(sub), -KZ_ELIMIT, "array count over limit");
    expect_fail(keys, sizeof(keys), -KZ_ELIMIT, "array count over limit");
    expect_fail(keys_put, sizeof(keys_put), -KZ_ELIMIT,
                "array count over limit");
    expect_fail(push_body, sizeof(push_body), -KZ_ELIMIT, "bin over limit");
    expect_fail(str_lie, sizeof(str_lie), -KZ_EMALFORMED,
                "str over bytes left");
    kz_alloc_fail_after(-1);
}

/* Builds [type, …] with the mpk writer; fields are written by ${fill}. */
typedef void fill_cb(struct kz_mpk_wr *w);

static void
expect_built(uint32_t type, uint32_t n, fill_cb *fill, int code,
             const char *why)
{
    struct kz_mpk_wr w;
    uint8_t *p;
    size_t len;

    kz_mpk_wr_init(&w, KZ_LIM_FRAME_MAX + 64);
    kz_mpk_wr_array(&w, n);
    kz_mpk_wr_uint(&w, type);
    fill(&w);
    ASSERT_OK(kz_mpk_wr_finish(&w, &p, &len));
    expect_fail(p, len, code, why);
    kz_free(p);
}

static void
sig(struct kz_mpk_wr *w)
{
    kz_mpk_wr_bin(w, sig_a, KZ_MSG_SIG_LEN);
}

static void
f_hello_min0(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 0);
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_str(w, "", 0);
}
static void
f_hello_max_lt_min(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 2);
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_str(w, "", 0);
}
static void
f_hello_version_u64(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_uint(w, UINT64_C(1) << 32);
    kz_mpk_wr_str(w, "", 0);
}
static void
f_hello_long_software(struct kz_mpk_wr *w)
{
    char s[KZ_LIM_SOFTWARE_MAX + 1];
    memset(s, 'x', sizeof(s));
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_str(w, s, sizeof(s));
}
static void
f_hello_software_bin(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_bin(w, "kz", 2);
}
static void
f_welcome_frame_big(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_uint(w, 0);
    kz_mpk_wr_uint(w, KZ_LIM_FRAME_MAX + 1);
    kz_mpk_wr_uint(w, 1);
}
static void
f_welcome_batch0(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_uint(w, 0);
    kz_mpk_wr_uint(w, 1024);
    kz_mpk_wr_uint(w, 0);
}
static void
f_push_req0(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 0);
    kz_mpk_wr_str(w, "n", 1);
    kz_mpk_wr_bin(w, "", 0);
    kz_mpk_wr_bin(w, "", 0);
    sig(w);
}
static void
f_push_scope_empty(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_str(w, "", 0);
    kz_mpk_wr_bin(w, "", 0);
    kz_mpk_wr_bin(w, "", 0);
    sig(w);
}
static void
f_push_scope_nul(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_str(w, "a\0b", 3);
    kz_mpk_wr_bin(w, "", 0);
    kz_mpk_wr_bin(w, "", 0);
    sig(w);
}
static void
f_push_scope_long(struct kz_mpk_wr *w)
{
    char s[KZ_LIM_NAME_MAX + 1];
    memset(s, 's', sizeof(s));
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_str(w, s, sizeof(s));
    kz_mpk_wr_bin(w, "", 0);
    kz_mpk_wr_bin(w, "", 0);
    sig(w);
}
static void
f_push_hdr_long(struct kz_mpk_wr *w)
{
    uint8_t h[KZ_LIM_CS_HEADER_MAX + 1] = {0};
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_str(w, "n", 1);
    kz_mpk_wr_bin(w, h, sizeof(h));
    kz_mpk_wr_bin(w, "", 0);
    sig(w);
}
static void
f_push_hdr_str(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_str(w, "n", 1);
    kz_mpk_wr_str(w, "h", 1);
    kz_mpk_wr_bin(w, "", 0);
    sig(w);
}
static void
f_push_sig63(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_str(w, "n", 1);
    kz_mpk_wr_bin(w, "", 0);
    kz_mpk_wr_bin(w, "", 0);
    kz_mpk_wr_bin(w, sig_a, 63);
}
static void
f_push_sig65(struct kz_mpk_wr *w)
{
    uint8_t s[65] = {0};
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_str(w, "n", 1);
    kz_mpk_wr_bin(w, "", 0);
    kz_mpk_wr_bin(w, "", 0);
    kz_mpk_wr_bin(w, s, sizeof(s));
}
static void
f_push_ack_seq0(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_uint(w, 0);
    kz_mpk_wr_bool(w, false);
}
static void
f_push_ack_dup_int(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_uint(w, 0);
}
static void
f_pull_cursor3(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_array(w, 1);
    kz_mpk_wr_array(w, 3);
    kz_mpk_wr_str(w, "n", 1);
    kz_mpk_wr_uint(w, 0);
    kz_mpk_wr_uint(w, 0);
    kz_mpk_wr_uint(w, 1);
}
static void
f_pull_1025(struct kz_mpk_wr *w)
{
    uint32_t i;
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_array(w, KZ_LIM_PULL_SCOPES_MAX + 1);
    for (i = 0; i <= KZ_LIM_PULL_SCOPES_MAX; i++) {
        kz_mpk_wr_array(w, 2);
        kz_mpk_wr_str(w, "n", 1);
        kz_mpk_wr_uint(w, i);
    }
    kz_mpk_wr_uint(w, 1);
}
static void
f_pull_max0(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_array(w, 0);
    kz_mpk_wr_uint(w, 0);
}
static void
f_pull_after_neg(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_array(w, 1);
    kz_mpk_wr_array(w, 2);
    kz_mpk_wr_str(w, "n", 1);
    kz_mpk_wr_int(w, -1);
    kz_mpk_wr_uint(w, 1);
}
static void
f_batch_item4(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_array(w, 1);
    kz_mpk_wr_array(w, 4);
    kz_mpk_wr_str(w, "n", 1);
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_bin(w, "", 0);
    kz_mpk_wr_bin(w, "", 0);
    kz_mpk_wr_bool(w, true);
}
static void
f_batch_seq0(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_array(w, 1);
    kz_mpk_wr_array(w, 5);
    kz_mpk_wr_str(w, "n", 1);
    kz_mpk_wr_uint(w, 0);
    kz_mpk_wr_bin(w, "", 0);
    kz_mpk_wr_bin(w, "", 0);
    sig(w);
    kz_mpk_wr_bool(w, true);
}
static void
f_batch_done_nil(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_array(w, 0);
    kz_mpk_wr_nil(w);
}
static void
f_batch_4097(struct kz_mpk_wr *w)
{
    uint32_t i;
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_array(w, KZ_LIM_BATCH_ITEMS_MAX + 1);
    for (i = 0; i <= KZ_LIM_BATCH_ITEMS_MAX; i++)
        kz_mpk_wr_nil(w);
    kz_mpk_wr_bool(w, true);
}
static void
f_sub_not_array(struct kz_mpk_wr *w)
{
    kz_mpk_wr_str(w, "network", 7);
}
static void
f_sub_nul(struct kz_mpk_wr *w)
{
    kz_mpk_wr_array(w, 2);
    kz_mpk_wr_str(w, "network", 7);
    kz_mpk_wr_str(w, "\0", 1);
}
static void
f_notify_seq0(struct kz_mpk_wr *w)
{
    kz_mpk_wr_str(w, "network", 7);
    kz_mpk_wr_uint(w, 0);
}
static void
f_roster_str(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_str(w, "r", 1);
}
static void
f_roster_put_nil(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_nil(w);
}
static void
f_roster_big(struct kz_mpk_wr *w)
{
    uint8_t *r = calloc(1, KZ_LIM_ROSTER_MAX + 1);
    ASSERT(r != NULL);
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_bin(w, r, KZ_LIM_ROSTER_MAX + 1);
    free(r);
}
static void
f_ok_req_u64(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, UINT64_C(1) << 32);
}
static void
f_keys_put_env_big(struct kz_mpk_wr *w)
{
    uint8_t e[KZ_LIM_KEY_ENV_MAX + 1] = {0};
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_array(w, 1);
    kz_mpk_wr_bin(w, e, sizeof(e));
}
static void
f_keys_id0(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_array(w, 1);
    kz_mpk_wr_array(w, 2);
    kz_mpk_wr_uint(w, 0);
    kz_mpk_wr_bin(w, "e", 1);
    kz_mpk_wr_bool(w, true);
}
static void
f_keys_1025(struct kz_mpk_wr *w)
{
    uint32_t i;
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_array(w, KZ_LIM_KEYS_MAX + 1);
    for (i = 0; i <= KZ_LIM_KEYS_MAX; i++) {
        kz_mpk_wr_array(w, 2);
        kz_mpk_wr_uint(w, i + 1);
        kz_mpk_wr_bin(w, "e", 1);
    }
    kz_mpk_wr_bool(w, true);
}
static void
f_error_code0(struct kz_mpk_wr *w)
{
    kz_mpk_wr_uint(w, 0);
    kz_mpk_wr_uint(w, 0);
    kz_mpk_wr_str(w, "", 0);
}
static void
f_error_text_long(struct kz_mpk_wr *w)
{
    char s[KZ_LIM_ERROR_TEXT_MAX + 1];
    memset(s, 'e', sizeof(s));
    kz_mpk_wr_uint(w, 0);
    kz_mpk_wr_uint(w, 1);
    kz_mpk_wr_str(w, s, sizeof(s));
}
static void
f_ping_float(struct kz_mpk_wr *w)
{
    kz_mpk_wr_f64(w, 1.0);
}

TEST(bad_fields)
{
    const int M = -KZ_EMALFORMED, L = -KZ_ELIMIT;

    expect_built(1, 4, f_hello_min0, M, "min_version 0");
    expect_built(1, 4, f_hello_max_lt_min, M, "max_version < min_version");
    expect_built(1, 4, f_hello_version_u64, M, "integer out of range");
    expect_built(1, 4, f_hello_long_software, L, "str over limit");
    expect_built(1, 4, f_hello_software_bin, M, "expected str");
    expect_built(2, 5, f_welcome_frame_big, M, "integer out of range");
    expect_built(2, 5, f_welcome_batch0, M, "max_batch_bytes 0");
    expect_built(3, 6, f_push_req0, M, "req 0");
    expect_built(3, 6, f_push_scope_empty, M, "empty scope");
    expect_built(3, 6, f_push_scope_nul, M, "scope contains a NUL byte");
    expect_built(3, 6, f_push_scope_long, L, "str over limit");
    expect_built(3, 6, f_push_hdr_long, L, "bin over limit");
    expect_built(3, 6, f_push_hdr_str, M, "expected bin");
    expect_built(3, 6, f_push_sig63, M, "signature is not 64 bytes");
    expect_built(3, 6, f_push_sig65, M, "signature is not 64 bytes");
    expect_built(4, 4, f_push_ack_seq0, M, "server_seq 0");
    expect_built(4, 4, f_push_ack_dup_int, M, NULL);
    expect_built(5, 4, f_pull_cursor3, M, "cursor is not an array of 2");
    expect_built(5, 4, f_pull_1025, L, "array count over limit");
    expect_built(5, 4, f_pull_max0, M, "max_bytes 0");
    expect_built(5, 4, f_pull_after_neg, M, "integer out of range");
    expect_built(6, 4, f_batch_item4, M, "item is not an array of 5");
    expect_built(6, 4, f_batch_seq0, M, "server_seq 0");
    expect_built(6, 4, f_batch_done_nil, M, NULL);
    expect_built(6, 4, f_batch_4097, L, "array count over limit");
    expect_built(7, 2, f_sub_not_array, M, "expected array");
    expect_built(7, 2, f_sub_nul, M, "scope contains a NUL byte");
    expect_built(8, 3, f_notify_seq0, M, "server_seq 0");
    expect_built(10, 3, f_roster_str, M, "expected bin");
    expect_built(10, 3, f_roster_big, L, "bin over limit");
    expect_built(11, 3, f_roster_put_nil, M, "expected bin");
    expect_built(11, 3, f_roster_big, L, "bin over limit");
    expect_built(12, 2, f_ok_req_u64, M, "integer out of range");
    expect_built(13, 3, f_keys_put_env_big, L, "bin over limit");
    expect_built(15, 4, f_keys_id0, M, "key id 0");
    expect_built(15, 4, f_keys_1025, L, "array count over limit");
    expect_built(16, 4, f_error_code0, M, "error code 0");
    expect_built(16, 4, f_error_text_long, L, "str over limit");
    expect_built(17, 2, f_ping_float, M, "expected integer");
}

TEST(limits_are_inclusive)
{
    struct kz_msg m, d;
    struct kz_msg_cursor *c = calloc(KZ_LIM_PULL_SCOPES_MAX, sizeof(*c));
    struct kz_msg_item *it = calloc(KZ_LIM_BATCH_ITEMS_MAX, sizeof(*it));
    char name[KZ_LIM_NAME_MAX];
    char sw[KZ_LIM_SOFTWARE_MAX];
    uint8_t *p;
    size_t len;
    uint32_t i;

    ASSERT(c != NULL && it != NULL);
    memset(name, 'n', sizeof(name));
    memset(sw, 's', sizeof(sw));
    for (i = 0; i < KZ_LIM_PULL_SCOPES_MAX; i++)
        c[i] = (struct kz_msg_cursor){{name, sizeof(name)}, i};
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_PULL;
    m.pull.req = UINT32_MAX;
    m.pull.cursors = c;
    m.pull.n_cursors = KZ_LIM_PULL_SCOPES_MAX;
    m.pull.max_bytes = UINT32_MAX;
    pack(&m, &p, &len);
    ASSERT_OK(kz_msg_decode(&d, p, len, NULL));
    ASSERT(msg_eq(&m, &d));
    kz_msg_clear(&d);
    kz_free(p);

    for (i = 0; i < KZ_LIM_BATCH_ITEMS_MAX; i++)
        it[i] = (struct kz_msg_item){{name, 1 + i % KZ_LIM_NAME_MAX},
                                     i + 1,
                                     B(hdr_a, i % 45),
                                     B(NULL, 0),
                                     sig_a};
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_BATCH;
    m.batch.req = 1;
    m.batch.items = it;
    m.batch.n_items = KZ_LIM_BATCH_ITEMS_MAX;
    pack(&m, &p, &len);
    ASSERT_OK(kz_msg_decode(&d, p, len, NULL));
    ASSERT(msg_eq(&m, &d));
    kz_msg_clear(&d);
    kz_free(p);

    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_HELLO;
    m.hello.min_version = m.hello.max_version = UINT32_MAX;
    m.hello.software = (struct kz_str){sw, sizeof(sw)};
    pack(&m, &p, &len);
    ASSERT_OK(kz_msg_decode(&d, p, len, NULL));
    ASSERT(msg_eq(&m, &d));
    kz_free(p);
    free(c);
    free(it);
}

TEST(encode_refuses_what_decode_would)
{
    struct kz_mpk_wr w;
    struct kz_buf out;
    struct kz_msg m;
    struct kz_msg_cursor bad_c = {{"a\0", 2}, 0};
    struct kz_msg_item bad_it;
    struct kz_str bad_s = {"", 0};
    struct kz_msg_bin bad_env = {NULL, 1};
    struct kz_msg_key bad_k = {0, {NULL, 0}};
    char text[KZ_LIM_ERROR_TEXT_MAX + 1];

#define REFUSE(setup)                                                          \
    do {                                                                       \
        m = sample(m.type);                                                    \
        setup;                                                                 \
        ASSERT_ERR(kz_msg_pack(&m, &w), -KZ_EINVAL);                           \
        ASSERT_ERR(kz_msg_encode(&m, &out), -KZ_EINVAL);                       \
        ASSERT_EQ(kz_mpk_wr_len(&w), 0);                                       \
        ASSERT_EQ(out.len, 0);                                                 \
    } while (0)

    kz_mpk_wr_init(&w, KZ_LIM_FRAME_MAX);
    kz_buf_init(&out, KZ_LIM_FRAME_MAX + 4);
    memset(&m, 0, sizeof(m));
    memset(text, 't', sizeof(text));
    REFUSE(m.type = (enum kz_msg_type)0);
    REFUSE(m.type = (enum kz_msg_type)19);
    m.type = KZ_MSG_HELLO;
    REFUSE(m.hello.min_version = 0);
    REFUSE(m.hello.max_version = 0);
    REFUSE(m.hello.software.len = KZ_LIM_SOFTWARE_MAX + 1);
    REFUSE(m.hello.software.p = NULL);
    m.type = KZ_MSG_WELCOME;
    REFUSE(m.welcome.version = 0);
    REFUSE(m.welcome.max_frame = KZ_LIM_FRAME_MAX + 1);
    REFUSE(m.welcome.max_frame = 0);
    REFUSE(m.welcome.max_batch_bytes = 0);
    m.type = KZ_MSG_PUSH;
    REFUSE(m.push.req = 0);
    REFUSE(m.push.scope = bad_s);
    REFUSE(m.push.scope.len = KZ_LIM_NAME_MAX + 1);
    REFUSE(m.push.hdr.len = KZ_LIM_CS_HEADER_MAX + 1);
    REFUSE(m.push.body.len = KZ_LIM_CS_BODY_MAX + 1);
    REFUSE(m.push.sig = NULL);
    m.type = KZ_MSG_PUSH_ACK;
    REFUSE(m.push_ack.server_seq = 0);
    m.type = KZ_MSG_PULL;
    REFUSE(m.pull.max_bytes = 0);
    REFUSE(m.pull.cursors = &bad_c; m.pull.n_cursors = 1);
    REFUSE(m.pull.cursors = NULL);
    REFUSE(m.pull.n_cursors = KZ_LIM_PULL_SCOPES_MAX + 1);
    m.type = KZ_MSG_BATCH;
    (void)sample(KZ_MSG_BATCH); /* fills s_items[] */
    bad_it = s_items[0];
    bad_it.sig = NULL;
    REFUSE(m.batch.items = &bad_it; m.batch.n_items = 1);
    REFUSE(m.batch.n_items = KZ_LIM_BATCH_ITEMS_MAX + 1);
    m.type = KZ_MSG_SUBSCRIBE;
    REFUSE(m.subscribe.scopes = &bad_s; m.subscribe.n_scopes = 1);
    m.type = KZ_MSG_NOTIFY;
    REFUSE(m.notify.server_seq = 0);
    m.type = KZ_MSG_ROSTER_GET;
    REFUSE(m.roster_get.req = 0);
    m.type = KZ_MSG_ROSTER;
    REFUSE(m.roster.roster.len = KZ_LIM_ROSTER_MAX + 1);
    m.type = KZ_MSG_ROSTER_PUT;
    REFUSE(m.roster_put.roster.p = NULL);
    m.type = KZ_MSG_OK;
    REFUSE(m.ok.req = 0);
    m.type = KZ_MSG_KEYS_PUT;
    REFUSE(m.keys_put.envs = &bad_env; m.keys_put.n_envs = 1);
    REFUSE(m.keys_put.n_envs = KZ_LIM_KEYS_MAX + 1);
    m.type = KZ_MSG_KEYS_GET;
    REFUSE(m.keys_get.req = 0);
    m.type = KZ_MSG_KEYS;
    REFUSE(m.keys.keys = &bad_k; m.keys.n_keys = 1);
    m.type = KZ_MSG_ERROR;
    REFUSE(m.error.code = 0);
    REFUSE(m.error.text = ((struct kz_str){text, sizeof(text)}));
#undef REFUSE
    /* A ROSTER without a roster ignores the bin field. */
    m = sample(KZ_MSG_ROSTER);
    m.roster.has_roster = false;
    m.roster.roster.len = KZ_LIM_ROSTER_MAX + 1;
    ASSERT_OK(kz_msg_pack(&m, &w));
    kz_mpk_wr_free(&w);
    kz_buf_free(&out);
}

TEST(encode_failure_leaves_the_buffer_as_it_was)
{
    struct kz_msg m = sample(KZ_MSG_PUSH), d;
    struct kz_buf out;
    size_t body_len = 6u << 20; /* three exceed a frame, two fit */
    uint8_t *body = calloc(1, body_len);
    struct kz_msg_item *it = calloc(3, sizeof(*it));
    uint32_t i;

    ASSERT(body != NULL && it != NULL);
    /* A cap too small for the message: -KZ_ELIMIT, buffer unchanged. */
    kz_buf_init(&out, 40);
    kz_buf_append(&out, "abc", 3);
    ASSERT_ERR(kz_msg_encode(&m, &out), -KZ_ELIMIT);
    ASSERT_EQ(out.len, 3);
    ASSERT_EQ(out.err, 0);
    ASSERT_MEM_EQ(out.p, "abc", 3);
    /* A smaller message still fits. */
    m = sample(KZ_MSG_PING);
    ASSERT_OK(kz_msg_encode(&m, &out));
    ASSERT_EQ(out.len, 3 + 4 + 11);
    /* A sticky error in ${out} is returned as is. */
    out.err = -KZ_ENOMEM;
    ASSERT_ERR(kz_msg_encode(&m, &out), -KZ_ENOMEM);
    kz_buf_free(&out);

    /* Three full-size items exceed one frame: -KZ_ELIMIT, although the
     * buffer itself could hold them; two fit. */
    for (i = 0; i < 3; i++)
        it[i] =
            (struct kz_msg_item){S("network"), i + 1, B(hdr_a, sizeof(hdr_a)),
                                 B(body, body_len), sig_a};
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_BATCH;
    m.batch.req = 1;
    m.batch.items = it;
    m.batch.n_items = 3;
    kz_buf_init(&out, SIZE_MAX);
    ASSERT_ERR(kz_msg_encode(&m, &out), -KZ_ELIMIT);
    ASSERT_EQ(out.len, 0);
    ASSERT_EQ(out.err, 0);
    m.batch.n_items = 2;
    ASSERT_OK(kz_msg_encode(&m, &out));
    ASSERT_LE(out.len, 4 + 2 * kz_msg_item_size(&it[0]) + 32);
    ASSERT_OK(kz_msg_decode(&d, out.p + 4, out.len - 4, NULL));
    ASSERT(msg_eq(&m, &d));
    kz_msg_clear(&d);
    kz_buf_free(&out);
    free(body);
    free(it);
}

TEST(item_size_is_an_upper_bound)
{
    struct kz_msg m = sample(KZ_MSG_BATCH);
    uint8_t *p;
    size_t len, bound = 0;
    uint32_t i;

    pack(&m, &p, &len);
    for (i = 0; i < m.batch.n_items; i++)
        bound += kz_msg_item_size(&m.batch.items[i]);
    ASSERT_LE(len, bound + 32);
    kz_free(p);
}

/* A PULL of ${n} cursors (exercises the decoder's growth past 64). */
static void
big_pull(uint32_t n, uint8_t **p, size_t *len)
{
    struct kz_msg_cursor *c = calloc(n, sizeof(*c));
    struct kz_msg m;
    uint32_t i;

    ASSERT(c != NULL);
    for (i = 0; i < n; i++)
        c[i] = (struct kz_msg_cursor){S("site:HAN"), i};
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_PULL;
    m.pull.req = 1;
    m.pull.cursors = c;
    m.pull.n_cursors = n;
    m.pull.max_bytes = 1;
    pack(&m, p, len);
    free(c);
}

TEST(alloc_failure_loop)
{
    uint32_t t;
    long n;
    uint8_t *p;
    size_t len;

    /* Decoding: every type, and a PULL that grows its array 4 times. */
    for (t = 1; t <= KZ_MSG_TYPE_MAX + 1; t++) {
        int seen_ok = 0;

        if (t <= KZ_MSG_TYPE_MAX) {
            struct kz_msg s = sample((enum kz_msg_type)t);
            pack(&s, &p, &len);
        } else {
            big_pull(1000, &p, &len);
        }
        for (n = 0; n < 100 && !seen_ok; n++) {
            struct kz_msg m;
            const char *why;
            int rc;

            kz_alloc_fail_after(n);
            rc = kz_msg_decode(&m, p, len, &why);
            kz_alloc_fail_after(-1);
            if (rc == 0) {
                kz_msg_clear(&m);
                seen_ok = 1;
            } else {
                ASSERT_ERR(rc, -KZ_ENOMEM);
                ASSERT_STR_EQ(why, "out of memory");
                ASSERT(m.owned == NULL);
            }
        }
        ASSERT(seen_ok);
        kz_free(p);
    }
    /* Encoding into a fresh buffer. */
    for (t = 1; t <= KZ_MSG_TYPE_MAX; t++) {
        struct kz_msg m = sample((enum kz_msg_type)t);
        int seen_ok = 0;

        for (n = 0; n < 100 && !seen_ok; n++) {
            struct kz_buf out;
            int rc;

            kz_buf_init(&out, KZ_LIM_FRAME_MAX + 4);
            kz_alloc_fail_after(n);
            rc = kz_msg_encode(&m, &out);
            kz_alloc_fail_after(-1);
            if (rc == 0)
                seen_ok = 1;
            else
                ASSERT_ERR(rc, -KZ_ENOMEM);
            ASSERT_EQ(out.err, 0);
            ASSERT_EQ(out.len, rc == 0 ? out.len : 0);
            kz_buf_free(&out);
        }
        ASSERT(seen_ok);
    }
}

TEST(decode_grows_past_the_preallocation)
{
    uint32_t sizes[] = {63, 64, 65, 128, 129, 1000, 1024};
    size_t i;

    for (i = 0; i < KZ_ARRAY_SIZE(sizes); i++) {
        struct kz_msg m;
        uint8_t *p;
        size_t len;
        uint32_t j;

        big_pull(sizes[i], &p, &len);
        ASSERT_OK(kz_msg_decode(&m, p, len, NULL));
        ASSERT_EQ(m.pull.n_cursors, sizes[i]);
        for (j = 0; j < sizes[i]; j++)
            ASSERT_EQ(m.pull.cursors[j].after_seq, j);
        kz_msg_clear(&m);
        /* Cut inside the last cursor: the partial array is freed. */
        expect_fail(p, len - 3, -KZ_EMALFORMED, NULL);
        kz_free(p);
    }
}

TEST(wire_error_table)
{
    uint32_t c;

    ASSERT_STR_EQ(kz_wire_err_name(KZ_WIRE_PROTOCOL), "PROTOCOL");
    ASSERT_STR_EQ(kz_wire_err_name(6), "SEQ_GAP");
    ASSERT_STR_EQ(kz_wire_err_name(14), "SHUTDOWN");
    ASSERT_STR_EQ(kz_wire_err_name(0), "UNKNOWN");
    ASSERT_STR_EQ(kz_wire_err_name(999), "UNKNOWN");
    ASSERT_STR_EQ(kz_wire_err_text(2), "unsupported protocol version");
    ASSERT_STR_EQ(kz_wire_err_text(999), "unknown error");
    /* The numbers are the protocol: they never change. */
    ASSERT_EQ(KZ_WIRE_PROTOCOL, 1);
    ASSERT_EQ(KZ_WIRE_VERSION, 2);
    ASSERT_EQ(KZ_WIRE_LIMIT, 3);
    ASSERT_EQ(KZ_WIRE_AUTH, 4);
    ASSERT_EQ(KZ_WIRE_PERM, 5);
    ASSERT_EQ(KZ_WIRE_SEQ_GAP, 6);
    ASSERT_EQ(KZ_WIRE_SIGNATURE, 7);
    ASSERT_EQ(KZ_WIRE_ROSTER, 8);
    ASSERT_EQ(KZ_WIRE_STORE, 9);
    ASSERT_EQ(KZ_WIRE_BUSY, 10);
    ASSERT_EQ(KZ_WIRE_TIMEOUT, 11);
    ASSERT_EQ(KZ_WIRE_STATE, 12);
    ASSERT_EQ(KZ_WIRE_NOT_FOUND, 13);
    ASSERT_EQ(KZ_WIRE_SHUTDOWN, 14);
    ASSERT_EQ(KZ_WIRE_INTERNAL, 15);
    for (c = 1; c < KZ_WIRE_ERR_END_; c++) {
        ASSERT(strcmp(kz_wire_err_name(c), "UNKNOWN") != 0);
        ASSERT(strcmp(kz_wire_err_text(c), "unknown error") != 0);
        ASSERT_LT(kz_wire_err_to_kz(c), 0);
        /* Where both directions exist, they agree. */
        if (c != KZ_WIRE_STATE && c != KZ_WIRE_INTERNAL)
            ASSERT_EQ(kz_wire_err_from_kz(kz_wire_err_to_kz(c)), c);
    }
    ASSERT(kz_wire_err_retryable(KZ_WIRE_BUSY));
    ASSERT(kz_wire_err_retryable(KZ_WIRE_STORE));
    ASSERT(!kz_wire_err_retryable(KZ_WIRE_PROTOCOL));
    ASSERT(!kz_wire_err_retryable(999));
    ASSERT_EQ(kz_wire_err_from_kz(-KZ_EMALFORMED), KZ_WIRE_PROTOCOL);
    ASSERT_EQ(kz_wire_err_from_kz(-KZ_ELIMIT), KZ_WIRE_LIMIT);
    ASSERT_EQ(kz_wire_err_from_kz(-KZ_EOWNER), KZ_WIRE_PERM);
    ASSERT_EQ(kz_wire_err_from_kz(-KZ_EDB), KZ_WIRE_STORE);
    ASSERT_EQ(kz_wire_err_from_kz(-KZ_ENOMEM), KZ_WIRE_BUSY);
    ASSERT_EQ(kz_wire_err_from_kz(-KZ_EINVAL), KZ_WIRE_INTERNAL);
    ASSERT_EQ(kz_wire_err_from_kz(-5 /* EIO errno */), KZ_WIRE_INTERNAL);
    ASSERT_EQ(kz_wire_err_from_kz(0), KZ_WIRE_INTERNAL);
    ASSERT_EQ(kz_wire_err_to_kz(999), -KZ_EREFUSED);
}

/* Writes ${len} bytes to DIR/msg/NAME. */
static void
seed(const char *dir, const char *name, const uint8_t *p, size_t len)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/msg", dir);
    (void)mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/msg/%s", dir, name);
    f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT_EQ(fwrite(p, 1, len, f), len);
    ASSERT_EQ(fclose(f), 0);
}

TEST(write_corpus)
{
    static const uint8_t issue1013[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t pull1013[] = {0x94, 0x05, 0x01, 0xdd, 0xff,
                                       0xff, 0xff, 0xff, 0x01};
    static const uint8_t type19[] = {0x92, 0x13, 0x05};
    const char *dir = getenv("KZ_WRITE_CORPUS");
    char name[64];
    uint32_t t;
    uint8_t *p;
    size_t len;

    if (dir == NULL)
        return; /* only on demand: KZ_WRITE_CORPUS=tests/fuzz/corpus */
    for (t = 1; t <= KZ_MSG_TYPE_MAX; t++) {
        struct kz_msg m = sample((enum kz_msg_type)t);

        pack(&m, &p, &len);
        snprintf(name, sizeof(name), "%02u_%s", t, kz_msg_name(t));
        seed(dir, name, p, len);
        /* A second, smaller variant: empty arrays, zeros, nil roster. */
        switch (m.type) {
        case KZ_MSG_PULL: m.pull.n_cursors = 1; break;
        case KZ_MSG_BATCH: m.batch.n_items = 0; break;
        case KZ_MSG_SUBSCRIBE: m.subscribe.n_scopes = 0; break;
        case KZ_MSG_ROSTER: m.roster.has_roster = false; break;
        case KZ_MSG_KEYS:
            m.keys.n_keys = 1;
            m.keys.done = true;
            break;
        case KZ_MSG_KEYS_PUT: m.keys_put.n_envs = 0; break;
        case KZ_MSG_ERROR:
            m.error.req = 0;
            m.error.text.len = 0;
            break;
        case KZ_MSG_PING:
        case KZ_MSG_PONG: m.ping.nonce = 0; break;
        default: kz_free(p); continue;
        }
        kz_free(p);
        pack(&m, &p, &len);
        snprintf(name, sizeof(name), "%02u_%s_small", t, kz_msg_name(t));
        seed(dir, name, p, len);
        kz_free(p);
    }
    big_pull(100, &p, &len);
    seed(dir, "05_PULL_100", p, len);
    kz_free(p);
    seed(dir, "issue1013", issue1013, sizeof(issue1013));
    seed(dir, "pull1013", pull1013, sizeof(pull1013));
    seed(dir, "type19", type19, sizeof(type19));
}

T_MAIN(T(round_trip_every_type), T(hello_offers_this_version),
       T(oracle_reads_every_field_of_a_batch), T(exact_bytes),
       T(truncated_at_every_offset_and_trailing_byte),
       T(unknown_type_and_wrong_shape),
       T(absurd_counts_fail_fast_without_allocating), T(bad_fields),
       T(limits_are_inclusive), T(encode_refuses_what_decode_would),
       T(encode_failure_leaves_the_buffer_as_it_was),
       T(item_size_is_an_upper_bound), T(alloc_failure_loop),
       T(decode_grows_past_the_preallocation), T(wire_error_table),
       T(write_corpus))
