/*
 * errcode.c: names, texts and KZ_E* mappings of the wire error codes
 * (errcode.h; PROTOCOL.md §Error codes).
 */
#include "err.h"

#include "errcode.h"

/* kz_wire_err_name(code): "PROTOCOL", "SEQ_GAP", …, or "UNKNOWN". */
const char *
kz_wire_err_name(uint32_t code)
{
    switch (code) {
#define XX(num, name, retry, text)                                             \
    case num: return #name;
        KZ_WIRE_ERR_MAP(XX)
#undef XX
    default: return "UNKNOWN";
    }
}

/* kz_wire_err_text(code): default English text; never NULL. */
const char *
kz_wire_err_text(uint32_t code)
{
    switch (code) {
#define XX(num, name, retry, text)                                             \
    case num: return text;
        KZ_WIRE_ERR_MAP(XX)
#undef XX
    default: return "unknown error";
    }
}

/* kz_wire_err_retryable(code): 1 if ${code} is transient, else 0. */
int
kz_wire_err_retryable(uint32_t code)
{
    switch (code) {
#define XX(num, name, retry, text)                                             \
    case num: return retry;
        KZ_WIRE_ERR_MAP(XX)
#undef XX
    default: return 0;
    }
}

/* kz_wire_err_from_kz(kzerr): the wire code for an internal error. */
uint32_t
kz_wire_err_from_kz(int kzerr)
{
    switch (-kzerr) {
    case KZ_EMALFORMED: return KZ_WIRE_PROTOCOL;
    case KZ_EVERSION: return KZ_WIRE_VERSION;
    case KZ_ELIMIT: return KZ_WIRE_LIMIT;
    case KZ_EAUTH: return KZ_WIRE_AUTH;
    case KZ_EPERM:
    case KZ_EOWNER: return KZ_WIRE_PERM;
    case KZ_ESEQ: return KZ_WIRE_SEQ_GAP;
    case KZ_ECRYPTO: return KZ_WIRE_SIGNATURE;
    case KZ_EREFUSED: return KZ_WIRE_ROSTER;
    case KZ_EDB:
    case KZ_EIO: return KZ_WIRE_STORE;
    case KZ_ENOMEM:
    case KZ_EAGAIN: return KZ_WIRE_BUSY;
    case KZ_ETIMEDOUT: return KZ_WIRE_TIMEOUT;
    case KZ_ENOENT: return KZ_WIRE_NOT_FOUND;
    case KZ_ECLOSED: return KZ_WIRE_SHUTDOWN;
    default: return KZ_WIRE_INTERNAL;
    }
}

/* kz_wire_err_to_kz(code): the internal error for a received ${code}. */
int
kz_wire_err_to_kz(uint32_t code)
{
    switch (code) {
    case KZ_WIRE_PROTOCOL:
    case KZ_WIRE_STATE: return -KZ_EMALFORMED;
    case KZ_WIRE_VERSION: return -KZ_EVERSION;
    case KZ_WIRE_LIMIT: return -KZ_ELIMIT;
    case KZ_WIRE_AUTH: return -KZ_EAUTH;
    case KZ_WIRE_PERM: return -KZ_EPERM;
    case KZ_WIRE_SEQ_GAP: return -KZ_ESEQ;
    case KZ_WIRE_SIGNATURE: return -KZ_ECRYPTO;
    case KZ_WIRE_STORE: return -KZ_EIO;
    case KZ_WIRE_BUSY: return -KZ_EAGAIN;
    case KZ_WIRE_TIMEOUT: return -KZ_ETIMEDOUT;
    case KZ_WIRE_NOT_FOUND: return -KZ_ENOENT;
    case KZ_WIRE_SHUTDOWN: return -KZ_ECLOSED;
    default: /* ROSTER, INTERNAL, unknown */ return -KZ_EREFUSED;
    }
}
