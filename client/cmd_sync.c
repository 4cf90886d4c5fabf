/*
 * cmd_sync.c: `kzsync sync DIR` (one round) and `kzsync run DIR [--every
 * SECONDS]` (stay in sync until SIGTERM/SIGINT).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "ctx.h"
#include "err.h"
#include "sync.h"

#include "cli.h"

static const char sync_usage[] =
    "usage: kzsync sync DIR\n"
    "\n"
    "One round with the server: push every local change, pull everything\n"
    "new, apply it.  Each step is crash-safe; rerun after any failure.\n"
    "Exit 0 only on success; 4 server unreachable, 5 refused, 6 version.\n";

static const char run_usage[] =
    "usage: kzsync run DIR [--every SECONDS]\n"
    "\n"
    "Stays in sync: pulls at once when the server reports news, pushes local\n"
    "writes within a second, and does a full round at least every SECONDS\n"
    "(default 300).  While the server is unreachable it retries with\n"
    "exponential backoff (1 s doubling to 5 min, with jitter).  SIGTERM or\n"
    "SIGINT stops it cleanly.\n";

struct run {
    uv_loop_t loop;      /* own loop */
    struct kzc k;        /* the device */
    struct sync *sync;   /* the session, NULL between attempts */
    struct sync_opts o;  /* options */
    uv_signal_t sigterm; /* stop */
    uv_signal_t sigint;
    uv_timer_t retry; /* backoff */
    int stopping;     /* a signal came */
    int err;          /* result of the last session */
    char why[400];
    uint32_t backoff_ms; /* next delay */
    uint64_t started_ms; /* when the last session started */
    int quiet_ok;        /* sync: print a summary line */
};

static void start(struct run *x);
static void on_retry(uv_timer_t *t);

static void
on_done(void *data, int err, const char *why, const struct sync_stats *st)
{
    struct run *x = data;

    x->sync = NULL;
    x->err = err;
    snprintf(x->why, sizeof(x->why), "%s", why);
    if (x->o.progress)
        fputs("\r\033[K", stderr);
    if (!x->o.run) {
        if (err == 0)
            fprintf(
                stderr,
                "kzsync: in sync: pushed %llu, received %llu changesets "
                "(%llu new, %llu rows), %llu conflicts recorded%s\n",
                (unsigned long long)st->pushed, (unsigned long long)st->pulled,
                (unsigned long long)st->applied, (unsigned long long)st->rows,
                (unsigned long long)st->conflicts,
                st->quarantined ? "; some cells wait in quarantine "
                                  "(kzsync status)"
                                : "");
        if (err == 0 && st->replayed)
            fprintf(stderr,
                    "kzsync: the server sent %llu changeset%s this device "
                    "had applied before; skipped (a replay or a server "
                    "restored from a backup)\n",
                    (unsigned long long)st->replayed,
                    st->replayed == 1 ? "" : "s");
        uv_close((uv_handle_t *)&x->sigterm, NULL);
        uv_close((uv_handle_t *)&x->sigint, NULL);
        uv_close((uv_handle_t *)&x->retry, NULL);
        return;
    }
    if (x->stopping) {
        uv_close((uv_handle_t *)&x->sigterm, NULL);
        uv_close((uv_handle_t *)&x->sigint, NULL);
        uv_close((uv_handle_t *)&x->retry, NULL);
        return;
    }
    if (err == -KZ_EREFUSED || err == -KZ_EVERSION || err == -KZ_EAUTH) {
        /* Retrying will not help (refused, no common version, or a server
         * that is not the pinned one): say so and stop. */
        uv_close((uv_handle_t *)&x->sigterm, NULL);
        uv_close((uv_handle_t *)&x->sigint, NULL);
        uv_close((uv_handle_t *)&x->retry, NULL);
        return;
    }
    {
        uint32_t delay;
        /* A session that ran for a while starts the backoff afresh. */
        if (uv_now(&x->loop) - x->started_ms > 60000)
            x->backoff_ms = 1000;
        /* Jitter below the step, so that 5 min stays the longest wait. */
        delay = x->backoff_ms / 2 + randombytes_uniform(x->backoff_ms / 2 + 1);
        fprintf(stderr, "kzsync run: %s; retrying in %.1f s\n",
                why && why[0] ? why : "disconnected", delay / 1000.0);
        uv_timer_start(&x->retry, on_retry, delay, 0);
        x->backoff_ms = x->backoff_ms >= 150000 ? 300000 : x->backoff_ms * 2;
    }
}

static void
on_retry(uv_timer_t *t)
{
    start(t->data);
}

static void
start(struct run *x)
{
    int err;

    x->started_ms = uv_now(&x->loop);
    err = sync_start(&x->sync, &x->loop, &x->k, &x->o, on_done, x);

    if (err) {
        x->err = err;
        snprintf(x->why, sizeof(x->why), "%s", kz_strerror(err));
        uv_close((uv_handle_t *)&x->sigterm, NULL);
        uv_close((uv_handle_t *)&x->sigint, NULL);
        uv_close((uv_handle_t *)&x->retry, NULL);
    }
}

static void
on_signal(uv_signal_t *h, int signum)
{
    struct run *x = h->data;

    (void)signum;
    x->stopping = 1;
    uv_timer_stop(&x->retry);
    if (x->sync)
        sync_stop(x->sync);
    else {
        uv_close((uv_handle_t *)&x->sigterm, NULL);
        uv_close((uv_handle_t *)&x->sigint, NULL);
        uv_close((uv_handle_t *)&x->retry, NULL);
    }
}

static int
go(const char *cmd, const char *dir, int run, uint32_t every)
{
    struct run x;
    int err, rc;

    memset(&x, 0, sizeof(x));
    if ((err = kzc_open(&x.k, dir))) {
        cli_err(cmd, "%s", x.k.err);
        return cli_exit_for(err);
    }
    signal(SIGPIPE, SIG_IGN);
    x.o.run = run;
    x.o.every_s = every;
    x.o.progress = isatty(2) && !run;
    x.backoff_ms = 1000;
    uv_loop_init(&x.loop);
    uv_signal_init(&x.loop, &x.sigterm);
    uv_signal_init(&x.loop, &x.sigint);
    uv_timer_init(&x.loop, &x.retry);
    x.sigterm.data = x.sigint.data = x.retry.data = &x;
    uv_signal_start(&x.sigterm, on_signal, SIGTERM);
    uv_signal_start(&x.sigint, on_signal, SIGINT);
    start(&x);
    uv_run(&x.loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&x.loop);
    if (run && x.stopping) {
        rc = KZ_EXIT_OK;
    } else if (x.err) {
        cli_err(cmd, "%s", x.why[0] ? x.why : kz_strerror(x.err));
        rc = x.err == -KZ_EREFUSED || x.err == -KZ_EAUTH ? KZ_EXIT_REFUSED
                                                         : cli_exit_for(x.err);
        if (rc == KZ_EXIT_USAGE)
            rc = KZ_EXIT_FAIL;
    } else {
        rc = KZ_EXIT_OK;
    }
    kzc_close(&x.k);
    return rc;
}

int
cmd_sync(int argc, char **argv)
{
    if (cli_wants_help(argc, argv, sync_usage))
        return KZ_EXIT_OK;
    if (argc != 2 || argv[1][0] == '-') {
        fputs(sync_usage, stderr);
        return KZ_EXIT_USAGE;
    }
    return go("sync", argv[1], 0, 0);
}

int
cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"every", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    long every = 300;
    int c;

    if (cli_wants_help(argc, argv, run_usage))
        return KZ_EXIT_OK;
    optind = 0;
    while ((c = getopt_long(argc, argv, "e:h", opts, NULL)) != -1) {
        char *end = NULL;
        if (c == 'e' && (every = strtol(optarg, &end, 10)) >= 1 &&
            every <= 86400 && *end == '\0')
            continue;
        fputs(run_usage, stderr);
        return KZ_EXIT_USAGE;
    }
    if (optind != argc - 1) {
        fputs(run_usage, stderr);
        return KZ_EXIT_USAGE;
    }
    return go("run", argv[optind], 1, (uint32_t)every);
}
