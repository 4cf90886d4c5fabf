/*
 * frame.h: an incremental, restartable length-prefix splitter (STYLE.md 8;
 * PROTOCOL.md §Framing).
 *
 * One framer serves both framing layers of the protocol:
 *
 *     Noise records:        u16 BE length L ‖ L bytes   (hdr_len 2)
 *     application frames:   u32 BE length N ‖ N bytes   (hdr_len 4)
 *
 * Bytes go in with kz_framer_feed in whatever pieces the network delivers;
 * whole frames come out of kz_framer_next.  The framer never consumes a
 * partial header, and it tells *need-more* (0) apart from *malformed* (< 0).
 *
 * State machine (per frame; `err` is the sticky POISONED state):
 *
 *     HEADER --(hdr_len bytes buffered)--> check min ≤ L ≤ max
 *        ^                                    |          |
 *        |                               ok   v          | bad
 *        |                        BODY (wait for L bytes) v
 *        |                                    |       POISONED (final:
 *        +--- next call drops the frame <-- returned     every call
 *                                           by next      returns err)
 *
 * Memory is bounded: at most hdr_len + max_len bytes are ever buffered
 * (kz_framer_feed takes only what fits, see there).  Because a full buffer
 * always holds a complete header, and therefore either a whole frame or a
 * length over the limit, kz_framer_next always makes progress when feed
 * could not take everything.  The buffer grows on demand (a session that
 * only ever sees small frames never allocates 16 MiB) and is released when
 * it empties after having grown beyond KZ_FRAMER_KEEP bytes.
 *
 * The struct is public because sessions embed it; its fields are private
 * (use the functions).
 */
#ifndef KZ_PROTO_FRAME_H
#define KZ_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "kz.h"

/* A buffer larger than this is freed whenever it runs empty. */
#define KZ_FRAMER_KEEP (64u * 1024)

struct kz_framer {
    uint8_t *p;       /* buffered bytes; owned; NULL while empty */
    size_t cap;       /* bytes allocated at p */
    size_t len;       /* bytes buffered at p (returned frames included) */
    size_t off;       /* first byte at p not yet returned as a frame */
    size_t taken;     /* bytes of the frame next returned, dropped lazily */
    uint32_t min_len; /* smallest payload length accepted */
    uint32_t max_len; /* largest payload length accepted */
    unsigned hdr_len; /* 2 or 4: length prefix, big-endian */
    int err;          /* sticky: 0, -KZ_EMALFORMED or -KZ_ELIMIT */
    const char *why;  /* static description of err, or NULL */
};

/**
 * kz_framer_init(f, hdr_len, min_len, max_len): an empty framer for frames
 * with a ${hdr_len}-byte (2 or 4) big-endian length prefix and payloads of
 * ${min_len}..${max_len} bytes.  Allocates nothing.  Returns 0, or
 * -KZ_EINVAL for another ${hdr_len}, ${min_len} > ${max_len}, or a
 * ${max_len} the prefix cannot express (> 65535 for 2 bytes).
 */
KZ_MUST_CHECK int kz_framer_init(struct kz_framer *f, unsigned hdr_len,
                                 uint32_t min_len, uint32_t max_len);

/** kz_framer_free(f): releases the buffer; ${f} may be re-initialised. */
void kz_framer_free(struct kz_framer *f);

/**
 * kz_framer_set_max(f, max_len): changes the largest payload accepted from
 * now on (e.g. the pre-authentication limit is lifted after the handshake);
 * frames already buffered are judged by the new limit when kz_framer_next
 * reaches them.  Returns 0, or -KZ_EINVAL as kz_framer_init (then nothing
 * changes).
 */
KZ_MUST_CHECK int kz_framer_set_max(struct kz_framer *f, uint32_t max_len);

/**
 * kz_framer_feed(f, p, n, used): copies up to ${n} bytes from ${p} (borrowed
 * for the call only) into the buffer.  *${used} gets how many were taken:
 * all of them unless the buffer would exceed hdr_len + max_len bytes; then
 * the caller drains frames with kz_framer_next (at least one frame or an
 * error is then guaranteed) and feeds the rest.  Ends the loan of the frame
 * last returned by kz_framer_next.  Returns 0, the sticky error of a
 * poisoned framer (-KZ_EMALFORMED, -KZ_ELIMIT; nothing taken), or
 * -KZ_ENOMEM (nothing taken; not sticky, the call may be retried).
 */
KZ_MUST_CHECK int kz_framer_feed(struct kz_framer *f, const void *p, size_t n,
                                 size_t *used);

/**
 * kz_framer_next(f, payload, len): the next whole frame.  Returns 1 with
 * *${payload} / *${len} set to its payload (borrowed from ${f} until the
 * next call of any kz_framer function on ${f}), 0 if more bytes are needed
 * (nothing is consumed, not even a complete header), or a negative error
 * that poisons the framer: -KZ_EMALFORMED for a length below min_len,
 * -KZ_ELIMIT for one above max_len (see kz_framer_why).
 */
KZ_MUST_CHECK int kz_framer_next(struct kz_framer *f, const uint8_t **payload,
                                 size_t *len);

/** kz_framer_buffered(f): bytes buffered and not yet returned as frames. */
size_t kz_framer_buffered(const struct kz_framer *f);

/** kz_framer_why(f): static text of the sticky error, or NULL. */
const char *kz_framer_why(const struct kz_framer *f);

/**
 * kz_frame_put_header(hdr, hdr_len, len): writes ${len} as a ${hdr_len}-byte
 * (2 or 4) big-endian prefix to ${hdr}, which must have room for it; a
 * writer may reserve the room first and patch it once the payload is
 * known.  Returns 0, -KZ_EINVAL for another ${hdr_len}, or -KZ_ELIMIT if
 * ${len} does not fit the prefix (nothing is written then).
 */
KZ_MUST_CHECK int kz_frame_put_header(uint8_t *hdr, unsigned hdr_len,
                                      size_t len);

#endif /* KZ_PROTO_FRAME_H */
