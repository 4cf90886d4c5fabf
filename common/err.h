/*
 * err.h: the one table of error codes.
 *
 * Every fallible function returns 0 or a negative code: -errno for system
 * errors (as libuv does), or one of the KZ_E* codes below, which lie outside
 * the errno range.  Wire error codes are a separate, stable table in proto/.
 */
#ifndef KZ_ERR_H
#define KZ_ERR_H

#define KZ_ERR_MAP(XX)                                                         \
    XX(EINVAL, "invalid argument")                                             \
    XX(ENOMEM, "out of memory")                                                \
    XX(ELIMIT, "a limit was exceeded")                                         \
    XX(EMALFORMED, "malformed input")                                          \
    XX(EAGAIN, "more input is needed")                                         \
    XX(ENOENT, "not found")                                                    \
    XX(EEXIST, "already exists")                                               \
    XX(EDB, "database error")                                                  \
    XX(ESCHEMA, "table cannot be tracked")                                     \
    XX(EOWNER, "row belongs to another site")                                  \
    XX(EAUTH, "authentication failed")                                         \
    XX(ECRYPTO, "cryptographic operation failed")                              \
    XX(ECLOCK, "clock skew beyond the limit")                                  \
    XX(ESEQ, "sequence gap")                                                   \
    XX(EVERSION, "unsupported version")                                        \
    XX(EPERM, "not permitted")                                                 \
    XX(ECLOSED, "connection closed")                                           \
    XX(ETIMEDOUT, "timed out")                                                 \
    XX(EIO, "input/output error")                                              \
    XX(EREFUSED, "refused by the peer")                                        \
    XX(EUSAGE, "usage error")

enum kz_err {
    KZ_ERR_BASE_ = 4000,
#define XX(name, msg) KZ_##name,
    KZ_ERR_MAP(XX)
#undef XX
        KZ_ERR_END_
};

/** kz_err_name(err): "KZ_EINVAL", "ENOENT", …; ${err} is 0 or negative. */
const char *kz_err_name(int err);

/** kz_strerror(err): a short English sentence for ${err}; never NULL. */
const char *kz_strerror(int err);

/** kz_err_from_errno(e): -e for a positive errno ${e}; -KZ_EIO if e is 0. */
int kz_err_from_errno(int e);

#endif /* KZ_ERR_H */
