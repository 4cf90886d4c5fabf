/*
 * chan.c: Noise XX handshake and encrypted records (see chan.h).
 *
 * Every Noise message travels as u16 BE length ‖ message; a record framer
 * (2-byte prefix) splits them.  During the handshake it accepts only the
 * fixed sizes of PROTOCOL.md (32, 104, 64); afterwards 16..65535.  The
 * decrypted record payloads form the application stream, which a second
 * framer (4-byte prefix, 1..KZ_LIM_FRAME_MAX) splits into messages.
 */
#include <string.h>

#include <sodium.h>

#include "alloc.h"
#include "err.h"
#include "frame.h"
#include "limits.h"
#include "noise.h"

#include "chan.h"

#define REC_MAX KZ_LIM_NOISE_MSG_MAX            /* one Noise message */
#define REC_PT_MAX (REC_MAX - KZ_NOISE_TAG_LEN) /* plaintext per record */
#define MSG1_LEN 32u
#define MSG2_LEN 104u
#define MSG3_LEN 64u
#define TIME_LEN 8u

struct kz_chan {
    enum kz_chan_state state; /* see chan.h */
    int initiator;            /* 1: client */
    struct kz_noise *hs;      /* handshake; NULL after split */
    struct kz_noise_cs *tx;   /* our direction */
    struct kz_noise_cs *rx;   /* the peer's */
    struct kz_dh_pk pinned;   /* initiator: required server key */
    struct kz_dh_pk remote;   /* peer's static key once known */
    int have_remote;          /* remote is set */
    int hs_read_n;            /* handshake messages read so far */
    uint64_t server_ms;       /* initiator: clock from message 2 */
    const struct kz_env *env; /* borrowed */
    struct kz_framer rec;     /* records (2-byte prefix) */
    struct kz_framer app;     /* application frames (4-byte prefix) */
    struct kz_buf out;        /* ciphertext to write */
    uint8_t *pt;              /* scratch for one record's plaintext */
    size_t pt_used;           /* bytes of pt written: wiped by free */
    uint64_t records_in;      /* whole records read (handshake too) */
    const char *why;          /* static text of the failure */
    int err;                  /* sticky */
    int rx_err;               /* sticky receive-side error: an
                                 application frame out of range; we may
                                 still send (one ERROR) */
};

static int
fail(struct kz_chan *c, int err, const char *why)
{
    if (c->err == 0) {
        c->err = err;
        c->why = why;
    }
    c->state = KZ_CHAN_FAILED;
    kz_noise_free(c->hs);
    c->hs = NULL;
    kz_noise_cs_free(c->tx);
    kz_noise_cs_free(c->rx);
    c->tx = c->rx = NULL;
    return c->err;
}

/* Appends u16 length ‖ bytes to the output. */
static int
put_record(struct kz_chan *c, const uint8_t *p, size_t n)
{
    kz_buf_be16(&c->out, (uint16_t)n);
    kz_buf_append(&c->out, p, n);
    return c->out.err;
}

/* Writes our next handshake message, with ${payload}. */
static int
hs_write(struct kz_chan *c, const uint8_t *payload, size_t len)
{
    uint8_t msg[256];
    size_t n = 0;
    int err;

    err = kz_noise_write(c->hs, payload, len, msg, sizeof(msg), &n);
    if (err)
        return fail(c, err, "handshake write failed");
    err = put_record(c, msg, n);
    sodium_memzero(msg, sizeof(msg));
    return err ? fail(c, err, "output buffer") : 0;
}

static int
hs_split(struct kz_chan *c)
{
    int err = kz_noise_split(c->hs, &c->tx, &c->rx);

    if (err)
        return fail(c, err, "handshake split failed");
    kz_noise_free(c->hs);
    c->hs = NULL;
    err = kz_framer_set_max(&c->rec, REC_MAX);
    if (err)
        return fail(c, err, "framer");
    c->state = KZ_CHAN_READY;
    return 0;
}

/* One handshake message from the peer. */
static int
hs_read(struct kz_chan *c, const uint8_t *msg, size_t len)
{
    uint8_t payload[256];
    size_t n = 0;
    int err;

    /* Message sizes are fixed: check before any cryptography. */
    if (len != (c->initiator        ? MSG2_LEN
                : c->hs_read_n == 0 ? MSG1_LEN
                                    : MSG3_LEN))
        return fail(c, -KZ_EMALFORMED, "handshake message of the wrong size");
    c->hs_read_n++;
    err = kz_noise_read(c->hs, msg, len, payload, sizeof(payload), &n);
    if (err)
        return fail(c, err, "handshake message refused");
    if (c->initiator) {
        /* Message 2: the server's static key must be the pinned one. */
        if (n != TIME_LEN)
            return fail(c, -KZ_EMALFORMED, "handshake payload size");
        if (kz_noise_remote_static(c->hs, &c->remote) != 0 ||
            sodium_memcmp(c->remote.b, c->pinned.b, sizeof(c->pinned.b)) != 0)
            return fail(c, -KZ_EAUTH, "the server's key is not the pinned key");
        c->have_remote = 1;
        c->server_ms =
            ((uint64_t)payload[0] << 56) | ((uint64_t)payload[1] << 48) |
            ((uint64_t)payload[2] << 40) | ((uint64_t)payload[3] << 32) |
            ((uint64_t)payload[4] << 24) | ((uint64_t)payload[5] << 16) |
            ((uint64_t)payload[6] << 8) | (uint64_t)payload[7];
        if ((err = hs_write(c, NULL, 0)))
            return err;
        return hs_split(c);
    }
    if (n != 0)
        return fail(c, -KZ_EMALFORMED, "handshake payload size");
    if (kz_noise_next(c->hs) == KZ_NOISE_WRITE) {
        /* Message 1 read: answer with message 2 and our clock. */
        uint64_t now = kz_env_wall_ms(c->env);
        uint8_t t[TIME_LEN];
        int i;
        for (i = 7; i >= 0; i--) {
            t[i] = (uint8_t)now;
            now >>= 8;
        }
        return hs_write(c, t, sizeof(t));
    }
    /* Message 3 read: the client's key is known. */
    if (kz_noise_remote_static(c->hs, &c->remote) != 0)
        return fail(c, -KZ_EAUTH, "no client key");
    c->have_remote = 1;
    return hs_split(c);
}

int
kz_chan_new(struct kz_chan **out, const struct kz_chan_cfg *cfg)
{
    struct kz_noise_cfg nc;
    struct kz_chan *c;
    int err;

    *out = NULL;
    if (cfg->s == NULL || cfg->env == NULL ||
        (cfg->initiator && cfg->pinned == NULL))
        return -KZ_EINVAL;
    c = kz_calloc(1, sizeof(*c));
    if (c == NULL)
        return -KZ_ENOMEM;
    c->state = KZ_CHAN_HANDSHAKE;
    c->initiator = cfg->initiator;
    c->env = cfg->env;
    if (cfg->pinned)
        c->pinned = *cfg->pinned;
    kz_buf_init(&c->out,
                cfg->out_max ? cfg->out_max : (size_t)KZ_LIM_FRAME_MAX * 2);
    /* Records are ≥ one tag; handshake sizes are checked exactly. */
    if ((err = kz_framer_init(&c->rec, 2, KZ_NOISE_TAG_LEN,
                              KZ_LIM_PREAUTH_FRAME_MAX)) ||
        (err = kz_framer_init(&c->app, 4, 1, KZ_LIM_FRAME_MAX)))
        goto fail;
    c->pt = kz_malloc(REC_MAX);
    if (c->pt == NULL) {
        err = -KZ_ENOMEM;
        goto fail;
    }
    memset(&nc, 0, sizeof(nc));
    nc.protocol = KZ_CHAN_PROTOCOL;
    nc.initiator = cfg->initiator;
    nc.prologue = (const uint8_t *)KZ_CHAN_PROLOGUE;
    nc.prologue_len = sizeof(KZ_CHAN_PROLOGUE) - 1;
    nc.s = cfg->s;
    nc.env = cfg->env;
    if ((err = kz_noise_new(&c->hs, &nc)))
        goto fail;
    if (c->initiator && (err = hs_write(c, NULL, 0)))
        goto fail;
    *out = c;
    return 0;
fail:
    kz_chan_free(c);
    return err;
}

void
kz_chan_free(struct kz_chan *c)
{
    if (c == NULL)
        return;
    kz_noise_free(c->hs);
    kz_noise_cs_free(c->tx);
    kz_noise_cs_free(c->rx);
    kz_framer_free(&c->rec);
    kz_framer_free(&c->app);
    if (c->out.p)
        sodium_memzero(c->out.p, c->out.cap);
    kz_buf_free(&c->out);
    /* Only what a record ever wrote: wiping all REC_MAX would fault in
     * 64 KiB per session, even one that never got past the handshake. */
    if (c->pt)
        sodium_memzero(c->pt, c->pt_used);
    kz_free(c->pt);
    sodium_memzero(c, sizeof(*c));
    kz_free(c);
}

/* Decrypts one transport record into the application stream. */
static int
record_in(struct kz_chan *c, const uint8_t *rec, size_t len)
{
    size_t n = 0, off = 0;
    int err;

    if (len > c->pt_used)
        c->pt_used = KZ_MIN(len, (size_t)REC_MAX); /* decrypt writes < len */
    err = kz_noise_cs_decrypt(c->rx, rec, len, c->pt, REC_MAX, &n);
    if (err)
        return fail(c, err, "a record did not decrypt");
    while (off < n) {
        size_t used = 0;
        err = kz_framer_feed(&c->app, c->pt + off, n - off, &used);
        if (err)
            return fail(c, err, "application framing");
        off += used;
        if (off < n) {
            /* The application framer is full: the caller must drain it
             * first.  A peer never needs that much in flight. */
            return fail(c, -KZ_ELIMIT, "application frames not drained");
        }
    }
    return 0;
}

int
kz_chan_feed(struct kz_chan *c, const uint8_t *p, size_t n)
{
    size_t off = 0;
    int err;

    if (c->state == KZ_CHAN_FAILED)
        return c->err;
    if (c->rx_err)
        return c->rx_err;
    while (off < n || kz_framer_buffered(&c->rec) > 0) {
        const uint8_t *rec;
        size_t len = 0, used = 0;
        int got;

        if (off < n) {
            err = kz_framer_feed(&c->rec, p + off, n - off, &used);
            if (err)
                return fail(c, err,
                            kz_framer_why(&c->rec) ? kz_framer_why(&c->rec)
                                                   : "record framing");
            off += used;
        }
        got = kz_framer_next(&c->rec, &rec, &len);
        if (got < 0)
            return fail(c, got, kz_framer_why(&c->rec));
        if (got == 0) {
            if (off >= n)
                break;
            continue;
        }
        if (c->state == KZ_CHAN_HANDSHAKE)
            err = hs_read(c, rec, len);
        else
            err = record_in(c, rec, len);
        if (err)
            return err;
        c->records_in++;
    }
    return 0;
}

int
kz_chan_next(struct kz_chan *c, const uint8_t **msg, size_t *len)
{
    int got;

    if (c->state == KZ_CHAN_FAILED)
        return c->err;
    if (c->rx_err)
        return c->rx_err;
    got = kz_framer_next(&c->app, msg, len);
    if (got < 0) {
        /* The records were sound, only the peer's framing is not: keep the
         * sending side, so that the peer can be told why (ERROR LIMIT). */
        c->rx_err = got;
        c->why = kz_framer_why(&c->app);
    }
    return got;
}

int
kz_chan_send(struct kz_chan *c, const uint8_t *frames, size_t len)
{
    size_t off = 0;

    if (c->state != KZ_CHAN_READY)
        return c->state == KZ_CHAN_FAILED ? c->err : -KZ_EINVAL;
    while (off < len) {
        size_t chunk = KZ_MIN(len - off, (size_t)REC_PT_MAX), n = 0;
        uint8_t *dst;
        int err;

        if (kz_buf_reserve(&c->out, chunk + KZ_NOISE_TAG_LEN + 2) != 0) {
            int e = c->out.err;
            c->out.err = 0; /* the caller may close with a reason */
            return e;
        }
        dst = c->out.p + c->out.len + 2;
        err = kz_noise_cs_encrypt(c->tx, frames + off, chunk, dst,
                                  chunk + KZ_NOISE_TAG_LEN, &n);
        if (err)
            return fail(c, err, "encryption failed");
        c->out.p[c->out.len] = (uint8_t)(n >> 8);
        c->out.p[c->out.len + 1] = (uint8_t)n;
        c->out.len += n + 2;
        off += chunk;
    }
    return 0;
}

struct kz_buf *
kz_chan_out(struct kz_chan *c)
{
    return &c->out;
}

uint64_t
kz_chan_records_in(const struct kz_chan *c)
{
    return c->records_in;
}

enum kz_chan_state
kz_chan_state(const struct kz_chan *c)
{
    return c->state;
}

int
kz_chan_remote(const struct kz_chan *c, struct kz_dh_pk *out)
{
    if (!c->have_remote)
        return -KZ_ENOENT;
    *out = c->remote;
    return 0;
}

uint64_t
kz_chan_server_time(const struct kz_chan *c)
{
    return c->server_ms;
}

const char *
kz_chan_why(const struct kz_chan *c)
{
    return c->why;
}
