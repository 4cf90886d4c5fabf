/*
 * cli.c: helpers shared by the kzsync commands.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "err.h"

#include "cli.h"

void
cli_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "kzsync %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int
cli_exit_for(int err)
{
    switch (-err) {
    case 0: return KZ_EXIT_OK;
    case ENOENT:
    case EEXIST: return KZ_EXIT_NOREPLICA;
    case ECONNREFUSED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ETIMEDOUT:
    case KZ_ETIMEDOUT:
    case KZ_ECLOSED: return KZ_EXIT_UNREACHABLE;
    case KZ_EAUTH:
    case KZ_EPERM:
    case KZ_EREFUSED: return KZ_EXIT_REFUSED;
    case KZ_EVERSION: return KZ_EXIT_VERSION;
    case KZ_EUSAGE:
    case KZ_EINVAL: return KZ_EXIT_USAGE;
    default: return KZ_EXIT_FAIL;
    }
}

int
cli_wants_help(int argc, char **argv, const char *usage)
{
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 1;
        }
        if (strcmp(argv[i], "--") == 0)
            break;
    }
    return 0;
}
