/*
 * log.c: leveled one-line logger.  Lines carry a syslog priority prefix
 * ("<3>" …) that journald understands when stderr is the journal, and a
 * plain level word otherwise.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

static _Atomic int level = KZ_LOG_INFO;

void
kz_log_set_level(enum kz_log_level l)
{
    atomic_store(&level, (int)l);
}

void
kz_log(enum kz_log_level l, const char *fmt, ...)
{
    static const char *const word[] = {"error", "warning", "info", "debug"};
    static const int prio[] = {3, 4, 6, 7};
    char line[1024];
    va_list ap;
    int n;

    if ((int)l > atomic_load(&level))
        return;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    /* systemd sets JOURNAL_STREAM when stderr is the journal. */
    if (getenv("JOURNAL_STREAM") != NULL)
        fprintf(stderr, "<%d>%s\n", prio[l], line);
    else
        fprintf(stderr, "%s: %s\n", word[l], line);
}
