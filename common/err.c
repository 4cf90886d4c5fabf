/*
 * err.c: names and messages for the codes of err.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "err.h"

const char *
kz_err_name(int err)
{
    switch (-err) {
    case 0: return "OK";
#define XX(name, msg)                                                          \
    case KZ_##name: return "KZ_" #name;
        KZ_ERR_MAP(XX)
#undef XX
    default: break;
    }
    if (err < 0 && -err < KZ_ERR_BASE_) {
        const char *s = strerrorname_np(-err);
        if (s != NULL)
            return s;
    }
    return "KZ_EUNKNOWN";
}

const char *
kz_strerror(int err)
{
    switch (-err) {
    case 0: return "success";
#define XX(name, msg)                                                          \
    case KZ_##name: return msg;
        KZ_ERR_MAP(XX)
#undef XX
    default: break;
    }
    if (err < 0 && -err < KZ_ERR_BASE_)
        return strerror(-err);
    return "unknown error";
}

int
kz_err_from_errno(int e)
{
    return e > 0 ? -e : -KZ_EIO;
}
