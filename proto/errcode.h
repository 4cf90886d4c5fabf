/*
 * errcode.h: the stable table of wire error codes (STYLE.md 3; PROTOCOL.md
 * §Error codes).
 *
 * These numbers travel in ERROR messages (proto/msg.h) and are part of the
 * protocol: a number, once assigned, keeps its meaning forever; new codes
 * are appended.  They are separate from the internal KZ_E* codes of
 * common/err.h, which may change between releases; kz_wire_err_from_kz and
 * kz_wire_err_to_kz translate at the edge.
 *
 * A receiver MUST accept a code it does not know and treat it as a
 * non-retryable failure of the request (kz_wire_err_name gives "UNKNOWN").
 *
 * Columns: number, name, retry (1 = transient: the same request may
 * succeed later, after a backoff), default English text.
 */
#ifndef KZ_PROTO_ERRCODE_H
#define KZ_PROTO_ERRCODE_H

#include <stdint.h>

#define KZ_WIRE_ERR_MAP(XX)                                                    \
    XX(1, PROTOCOL, 0, "malformed message")                                    \
    XX(2, VERSION, 0, "unsupported protocol version")                          \
    XX(3, LIMIT, 0, "a limit was exceeded")                                    \
    XX(4, AUTH, 0, "not admitted or revoked")                                  \
    XX(5, PERM, 0, "not permitted for this member or scope")                   \
    XX(6, SEQ_GAP, 0, "author_seq gap")                                        \
    XX(7, SIGNATURE, 0, "bad signature")                                       \
    XX(8, ROSTER, 0, "roster refused: not signed by the admin or older")       \
    XX(9, STORE, 1, "server storage failure, retry later")                     \
    XX(10, BUSY, 1, "server overloaded, retry later")                          \
    XX(11, TIMEOUT, 1, "timed out")                                            \
    XX(12, STATE, 0, "message not allowed in this session state")              \
    XX(13, NOT_FOUND, 0, "not found")                                          \
    XX(14, SHUTDOWN, 1, "server stopping")                                     \
    XX(15, INTERNAL, 1, "internal server error, retry later")

enum kz_wire_err {
#define XX(num, name, retry, text) KZ_WIRE_##name = num,
    KZ_WIRE_ERR_MAP(XX)
#undef XX
        KZ_WIRE_ERR_END_
};

/** kz_wire_err_name(code): "PROTOCOL", "SEQ_GAP", …, or "UNKNOWN". */
const char *kz_wire_err_name(uint32_t code);

/**
 * kz_wire_err_text(code): the default English text of ${code} ("unknown
 * error" for a number not in the table); never NULL.  An ERROR message
 * carries its own text, which may say more (SEQ_GAP names the expected
 * next author_seq).
 */
const char *kz_wire_err_text(uint32_t code);

/**
 * kz_wire_err_retryable(code): 1 if ${code} is transient (STORE, BUSY,
 * TIMEOUT, SHUTDOWN, INTERNAL), else 0 (unknown codes included).
 */
int kz_wire_err_retryable(uint32_t code);

/**
 * kz_wire_err_from_kz(kzerr): the wire code for an internal error
 * ${kzerr} (0 or negative): -KZ_EMALFORMED → PROTOCOL, -KZ_EVERSION →
 * VERSION, -KZ_ELIMIT → LIMIT, -KZ_EAUTH → AUTH, -KZ_EPERM / -KZ_EOWNER →
 * PERM, -KZ_ESEQ → SEQ_GAP, -KZ_ECRYPTO → SIGNATURE, -KZ_EREFUSED → ROSTER,
 * -KZ_EDB / -KZ_EIO → STORE, -KZ_ENOMEM / -KZ_EAGAIN → BUSY, -KZ_ETIMEDOUT
 * → TIMEOUT, -KZ_ENOENT → NOT_FOUND, -KZ_ECLOSED → SHUTDOWN, anything else
 * (0 and -errno included) → INTERNAL.
 */
uint32_t kz_wire_err_from_kz(int kzerr);

/**
 * kz_wire_err_to_kz(code): the internal error a client reports for a
 * received ${code}: the inverse of kz_wire_err_from_kz where it has one
 * (ROSTER → -KZ_EREFUSED, STORE → -KZ_EIO, BUSY → -KZ_EAGAIN, STATE →
 * -KZ_EMALFORMED, INTERNAL and unknown codes → -KZ_EREFUSED).
 */
int kz_wire_err_to_kz(uint32_t code);

#endif /* KZ_PROTO_ERRCODE_H */
