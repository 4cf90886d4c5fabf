/*
 * test_chan.c: the secure channel: handshake, pinning, records, framing,
 * tampering.
 */
#include <string.h>

#include <sodium.h>

#include "chan.h"
#include "crypto.h"
#include "err.h"
#include "msg.h"

#include "t.h"

struct pair {
    struct kz_dh_sk cs, ss;
    struct kz_dh_pk cp, sp;
    struct kz_chan *c, *s;
};

static void
pair_new(struct pair *p, const struct kz_dh_pk *pin)
{
    struct kz_chan_cfg cc = {0}, sc = {0};

    ASSERT_OK(kz_dh_keypair(kz_env_system(), &p->cp, &p->cs));
    ASSERT_OK(kz_dh_keypair(kz_env_system(), &p->sp, &p->ss));
    cc.initiator = 1;
    cc.s = &p->cs;
    cc.pinned = pin ? pin : &p->sp;
    cc.env = kz_env_system();
    sc.s = &p->ss;
    sc.env = kz_env_system();
    ASSERT_OK(kz_chan_new(&p->c, &cc));
    ASSERT_OK(kz_chan_new(&p->s, &sc));
}

static void
pair_free(struct pair *p)
{
    kz_chan_free(p->c);
    kz_chan_free(p->s);
}

/* Moves what ${a} has to send into ${b}, ${step} bytes at a time. */
static int
move(struct kz_chan *a, struct kz_chan *b, size_t step)
{
    struct kz_buf *o = kz_chan_out(a);
    int err = 0;

    while (o->len > 0 && err == 0) {
        size_t n = o->len < step ? o->len : step;
        err = kz_chan_feed(b, o->p, n);
        kz_buf_consume(o, n);
    }
    return err;
}

static void
handshake(struct pair *p, size_t step)
{
    ASSERT_OK(move(p->c, p->s, step)); /* msg 1 */
    ASSERT_OK(move(p->s, p->c, step)); /* msg 2 → client sends msg 3 */
    ASSERT_OK(move(p->c, p->s, step)); /* msg 3 */
    ASSERT_EQ(kz_chan_state(p->c), KZ_CHAN_READY);
    ASSERT_EQ(kz_chan_state(p->s), KZ_CHAN_READY);
}

static void
send_ping(struct kz_chan *c, uint64_t nonce)
{
    struct kz_msg m;
    struct kz_buf b;

    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_PING;
    m.ping.nonce = nonce;
    kz_buf_init(&b, 1024);
    ASSERT_OK(kz_msg_encode(&m, &b));
    ASSERT_OK(kz_chan_send(c, b.p, b.len));
    kz_buf_free(&b);
}

static uint64_t
recv_ping(struct kz_chan *c)
{
    const uint8_t *p;
    size_t len;
    struct kz_msg m;
    uint64_t n;

    ASSERT_EQ(kz_chan_next(c, &p, &len), 1);
    ASSERT_OK(kz_msg_decode(&m, p, len, NULL));
    ASSERT_EQ(m.type, KZ_MSG_PING);
    n = m.ping.nonce;
    kz_msg_clear(&m);
    return n;
}

TEST(handshake_and_messages_both_ways)
{
    struct pair p;
    struct kz_dh_pk k;

    pair_new(&p, NULL);
    handshake(&p, 1 << 20);
    ASSERT_OK(kz_chan_remote(p.s, &k));
    ASSERT_MEM_EQ(k.b, p.cp.b, 32);
    ASSERT_OK(kz_chan_remote(p.c, &k));
    ASSERT_MEM_EQ(k.b, p.sp.b, 32);
    ASSERT(kz_chan_server_time(p.c) > UINT64_C(1700000000000));
    send_ping(p.c, 7);
    send_ping(p.c, 8);
    ASSERT_OK(move(p.c, p.s, 1 << 20));
    ASSERT_U64_EQ(recv_ping(p.s), 7);
    ASSERT_U64_EQ(recv_ping(p.s), 8);
    send_ping(p.s, 9);
    ASSERT_OK(move(p.s, p.c, 1 << 20));
    ASSERT_U64_EQ(recv_ping(p.c), 9);
    pair_free(&p);
}

TEST(one_byte_at_a_time)
{
    struct pair p;

    pair_new(&p, NULL);
    handshake(&p, 1);
    send_ping(p.c, 42);
    ASSERT_OK(move(p.c, p.s, 1));
    ASSERT_U64_EQ(recv_ping(p.s), 42);
    pair_free(&p);
}

TEST(large_message_spans_records)
{
    struct pair p;
    struct kz_msg m;
    struct kz_buf b;
    uint8_t *big = calloc(1, 300000);
    const uint8_t *q;
    size_t len;

    pair_new(&p, NULL);
    handshake(&p, 1 << 20);
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_ROSTER_PUT;
    m.roster_put.req = 1;
    m.roster_put.roster.p = big;
    m.roster_put.roster.len = 300000;
    kz_buf_init(&b, 1 << 20);
    ASSERT_OK(kz_msg_encode(&m, &b));
    ASSERT_OK(kz_chan_send(p.c, b.p, b.len));
    ASSERT_OK(move(p.c, p.s, 4096));
    ASSERT_EQ(kz_chan_next(p.s, &q, &len), 1);
    ASSERT_EQ(len, b.len - 4);
    kz_buf_free(&b);
    free(big);
    pair_free(&p);
}

TEST(wrong_pinned_key_fails_before_client_identifies)
{
    struct pair p;
    struct kz_dh_pk other;
    struct kz_dh_sk osk;
    size_t before;

    ASSERT_OK(kz_dh_keypair(kz_env_system(), &other, &osk));
    pair_new(&p, &other);
    ASSERT_OK(move(p.c, p.s, 1 << 20));
    before = kz_chan_out(p.c)->len;
    ASSERT_ERR(move(p.s, p.c, 1 << 20), -KZ_EAUTH);
    ASSERT_EQ(kz_chan_state(p.c), KZ_CHAN_FAILED);
    /* Message 3, which carries the client's key, was never written. */
    ASSERT_EQ(kz_chan_out(p.c)->len, before);
    ASSERT(strstr(kz_chan_why(p.c), "pinned") != NULL);
    pair_free(&p);
}

TEST(any_flipped_byte_is_fatal)
{
    size_t i;

    /* Flip each byte of handshake message 2 and of a transport record. */
    for (i = 0; i < 2 + 104; i++) {
        struct pair p;
        pair_new(&p, NULL);
        ASSERT_OK(move(p.c, p.s, 1 << 20));
        kz_chan_out(p.s)->p[i] ^= 0x20;
        ASSERT(move(p.s, p.c, 1 << 20) < 0);
        ASSERT_EQ(kz_chan_state(p.c), KZ_CHAN_FAILED);
        pair_free(&p);
    }
    for (i = 0;; i++) {
        struct pair p;
        const uint8_t *q;
        size_t len;
        pair_new(&p, NULL);
        handshake(&p, 1 << 20);
        send_ping(p.c, 1);
        if (i >= kz_chan_out(p.c)->len) {
            pair_free(&p);
            break;
        }
        kz_chan_out(p.c)->p[i] ^= 0x01;
        if (move(p.c, p.s, 1 << 20) == 0)
            ASSERT_EQ(kz_chan_next(p.s, &q, &len), 0); /* length grew */
        else
            ASSERT_EQ(kz_chan_state(p.s), KZ_CHAN_FAILED);
        pair_free(&p);
    }
}

TEST(garbage_and_oversized_records_are_refused)
{
    struct pair p;
    static const uint8_t huge[] = {0xff, 0xff};
    static const uint8_t short_msg[] = {0x00, 0x20, 1, 2, 3};

    pair_new(&p, NULL);
    /* Before the handshake only small records are accepted. */
    ASSERT(kz_chan_feed(p.s, huge, sizeof(huge)) < 0);
    pair_free(&p);

    pair_new(&p, NULL);
    ASSERT_OK(kz_chan_feed(p.s, short_msg, sizeof(short_msg))); /* need more */
    ASSERT_EQ(kz_chan_state(p.s), KZ_CHAN_HANDSHAKE);
    pair_free(&p);

    pair_new(&p, NULL);
    {
        uint8_t wrong[2 + 40] = {0x00, 40};
        ASSERT_ERR(kz_chan_feed(p.s, wrong, sizeof(wrong)), -KZ_EMALFORMED);
    }
    pair_free(&p);
}

TEST(send_refused_before_ready_and_over_cap)
{
    struct pair p;
    struct kz_chan_cfg cc = {0};
    struct kz_chan *small = NULL;
    uint8_t junk[1000] = {0};

    pair_new(&p, NULL);
    ASSERT_ERR(kz_chan_send(p.c, junk, sizeof(junk)), -KZ_EINVAL);
    cc.initiator = 1;
    cc.s = &p.cs;
    cc.pinned = &p.sp;
    cc.env = kz_env_system();
    cc.out_max = 256;
    kz_chan_free(p.c);
    ASSERT_OK(kz_chan_new(&small, &cc));
    p.c = small;
    handshake(&p, 1 << 20);
    ASSERT_ERR(kz_chan_send(p.c, junk, sizeof(junk)), -KZ_ELIMIT);
    pair_free(&p);
}

T_MAIN(T(handshake_and_messages_both_ways), T(one_byte_at_a_time),
       T(large_message_spans_records),
       T(wrong_pinned_key_fails_before_client_identifies),
       T(any_flipped_byte_is_fatal),
       T(garbage_and_oversized_records_are_refused),
       T(send_refused_before_ready_and_over_cap))
