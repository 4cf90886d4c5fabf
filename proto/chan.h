/*
 * chan.h: the secure channel of a connection (PROTOCOL.md §Handshake and
 * transport): the Noise XX handshake, then encrypted records carrying the
 * stream of application frames.  Pure: no I/O, no clock except through
 * struct kz_env.  The server's sessions and the client's connection drive
 * one each: bytes from the socket go in with kz_chan_feed, whole
 * application messages come out of kz_chan_next, messages to send go in
 * with kz_chan_send, and kz_chan_out holds the ciphertext to write.
 *
 *   initiator (client)                      responder (server)
 *   HANDSHAKE --msg1--> ........................ HANDSHAKE
 *             <--msg2 (server clock) ..........
 *   check pinned key (else FAILED, msg3 not sent)
 *             --msg3--> ........................ remote key known
 *   READY                                        READY
 *   any failure: FAILED (sticky; close the connection)
 */
#ifndef KZ_PROTO_CHAN_H
#define KZ_PROTO_CHAN_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "crypto.h"
#include "env.h"
#include "kz.h"

#define KZ_CHAN_PROTOCOL "Noise_XX_25519_ChaChaPoly_BLAKE2b"
#define KZ_CHAN_PROLOGUE "kzsync/1"

enum kz_chan_state {
    KZ_CHAN_HANDSHAKE = 1, /* messages 1-3 under way */
    KZ_CHAN_READY,         /* transport records flow */
    KZ_CHAN_FAILED         /* poisoned; close */
};

struct kz_chan_cfg {
    int initiator;                 /* 1: client, 0: server */
    const struct kz_dh_sk *s;      /* our static key; copied */
    const struct kz_dh_pk *pinned; /* initiator: the server key required */
    const struct kz_env *env;      /* randomness, clock; borrowed */
    size_t out_max;                /* cap on buffered ciphertext (bytes) */
};

struct kz_chan;

/**
 * kz_chan_new(out, cfg): a channel in HANDSHAKE; the initiator's first
 * message is already in kz_chan_out.  Free with kz_chan_free.  Returns 0,
 * -KZ_EINVAL (no static key; an initiator without a pinned key),
 * -KZ_ENOMEM or a Noise error.
 */
KZ_MUST_CHECK int kz_chan_new(struct kz_chan **out,
                              const struct kz_chan_cfg *cfg);

/** kz_chan_free(c): wipes and frees; NULL is a no-op. */
void kz_chan_free(struct kz_chan *c);

/**
 * kz_chan_feed(c, p, n): takes ${n} bytes received from the peer (borrowed
 * for the call): handshake messages are answered (into kz_chan_out),
 * transport records are decrypted into the application stream.  Returns
 * 0 or a final error that puts ${c} in FAILED: -KZ_EMALFORMED, -KZ_ELIMIT
 * (framing), -KZ_EAUTH (a tag failed; the server key is not the pinned
 * one), -KZ_ECRYPTO, -KZ_ENOMEM.  kz_chan_why tells more.
 */
KZ_MUST_CHECK int kz_chan_feed(struct kz_chan *c, const uint8_t *p, size_t n);

/**
 * kz_chan_next(c, msg, len): the next whole application message (payload of
 * one frame, without its length prefix), borrowed until the next call on
 * ${c}.  Returns 1, 0 if none is complete yet, or a final error (frame
 * length out of range: -KZ_ELIMIT / -KZ_EMALFORMED).  That error is sticky
 * for receiving only: the channel stays READY for sending, so the peer
 * can be told why before the connection closes.
 */
KZ_MUST_CHECK int kz_chan_next(struct kz_chan *c, const uint8_t **msg,
                               size_t *len);

/**
 * kz_chan_send(c, frames, len): queues application bytes (whole frames,
 * each u32 length ‖ msgpack; see kz_msg_encode) and encrypts them into
 * records in kz_chan_out.  Only in READY.  Returns 0, -KZ_EINVAL (not
 * READY), -KZ_ELIMIT (kz_chan_out would exceed out_max: the peer reads too
 * slowly), -KZ_ENOMEM or a Noise error (FAILED).
 */
KZ_MUST_CHECK int kz_chan_send(struct kz_chan *c, const uint8_t *frames,
                               size_t len);

/** kz_chan_out(c): ciphertext waiting to be written; consume what is sent. */
struct kz_buf *kz_chan_out(struct kz_chan *c);

enum kz_chan_state kz_chan_state(const struct kz_chan *c);

/** kz_chan_records_in(c): whole records read from the peer so far, the
 * handshake's messages included (a peer that sends bytes but completes no
 * record makes no progress). */
uint64_t kz_chan_records_in(const struct kz_chan *c);

/** kz_chan_remote(c, out): the peer's static key (after message 2 / 3). */
KZ_MUST_CHECK int kz_chan_remote(const struct kz_chan *c, struct kz_dh_pk *out);

/** kz_chan_server_time(c): initiator: the server's clock from message 2. */
uint64_t kz_chan_server_time(const struct kz_chan *c);

/** kz_chan_why(c): static text of the failure, or NULL. */
const char *kz_chan_why(const struct kz_chan *c);

#endif /* KZ_PROTO_CHAN_H */
