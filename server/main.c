/*
 * main.c: kzsyncd (DESIGN.md §8):
 *
 *   kzsyncd init DIR [--listen HOST:PORT]   prints the server public key
 *   kzsyncd trust DIR ADMIN_KEY             the network's admin key
 *   kzsyncd run DIR                         foreground; SIGTERM = clean stop
 *
 * DIR holds server.key (mode 0600), kzsyncd.conf and the store.  Logs go
 * to stderr, one line per event; never content.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>
#include <sqlite3.h>
#include <uv.h>

#include "config.h"
#include "err.h"
#include "join.h"
#include "keyfile.h"
#include "log.h"
#include "server.h"

enum { EXIT_OK_ = 0, EXIT_FAIL_ = 1, EXIT_USAGE_ = 2, EXIT_DIR_ = 3 };

static const char usage_text[] =
    "usage: kzsyncd init DIR [--listen HOST:PORT]\n"
    "       kzsyncd trust DIR ADMIN_KEY\n"
    "       kzsyncd run DIR\n"
    "\n"
    "init   creates DIR with the server's key (printed, last line: give it\n"
    "       to every device as --server-key) and kzsyncd.conf\n"
    "trust  sets the network's admin key (printed by kzsync init\n"
    "       --create-network); only rosters it signed are accepted\n"
    "run    serves in the foreground until SIGTERM or SIGINT\n"
    "\n"
    "exit codes: 0 ok, 1 failed, 2 usage, 3 DIR missing or already set up\n";

static void
path_in(char *out, size_t len, const char *dir, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static int
cmd_init(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct kz_identity id;
    struct config cfg;
    const char *listen = NULL, *dir;
    char keyp[4096], confp[4096], msg[KEYFILE_MSG_LEN], text[128], host[256];
    struct stat st;
    int c, err, port;

    optind = 0;
    while ((c = getopt_long(argc, argv, "l:h", opts, NULL)) != -1) {
        if (c == 'l') {
            listen = optarg;
        } else {
            fputs(usage_text, c == 'h' ? stdout : stderr);
            return c == 'h' ? EXIT_OK_ : EXIT_USAGE_;
        }
    }
    if (optind != argc - 1) {
        fputs(usage_text, stderr);
        return EXIT_USAGE_;
    }
    dir = argv[optind];
    config_defaults(&cfg);
    if (listen) {
        if (strlen(listen) >= sizeof(cfg.listen) ||
            config_split_listen(listen, host, sizeof(host), &port) != 0) {
            fprintf(stderr, "kzsyncd init: --listen %s is not HOST:PORT\n",
                    listen);
            return EXIT_USAGE_;
        }
        snprintf(cfg.listen, sizeof(cfg.listen), "%s", listen);
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "kzsyncd init: cannot create %s: %s\n", dir,
                strerror(errno));
        return EXIT_DIR_;
    }
    path_in(keyp, sizeof(keyp), dir, "server.key");
    path_in(confp, sizeof(confp), dir, "kzsyncd.conf");
    if (stat(keyp, &st) == 0) {
        fprintf(stderr, "kzsyncd init: %s exists: this server is set up\n",
                keyp);
        return EXIT_DIR_;
    }
    if ((err = keyfile_generate_server(&id, kz_env_system())) != 0 ||
        (err = keyfile_save(keyp, &id, NULL, msg, sizeof(msg))) != 0) {
        fprintf(stderr, "kzsyncd init: %s\n", msg[0] ? msg : kz_strerror(err));
        keyfile_wipe(&id);
        return EXIT_FAIL_;
    }
    if ((err = config_save(&cfg, confp)) != 0) {
        fprintf(stderr, "kzsyncd init: cannot write %s: %s\n", confp,
                kz_strerror(err));
        keyfile_wipe(&id);
        return EXIT_FAIL_;
    }
    err = serverkey_encode(&id.dh_pk, text);
    keyfile_wipe(&id);
    if (err) {
        fprintf(stderr, "kzsyncd init: %s\n", kz_strerror(err));
        return EXIT_FAIL_;
    }
    fprintf(stderr, "kzsyncd: set up %s (listen %s); the server key:\n", dir,
            cfg.listen);
    printf("%s\n", text);
    return EXIT_OK_;
}

static int
cmd_trust(int argc, char **argv)
{
    struct config cfg;
    struct kz_sign_pk admin;
    char confp[4096], err_text[256];
    int err;

    if (argc != 3 || argv[1][0] == '-') {
        fputs(usage_text,
              argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc == 2 && strcmp(argv[1], "--help") == 0 ? EXIT_OK_
                                                           : EXIT_USAGE_;
    }
    if (adminkey_decode(&admin, argv[2]) != 0) {
        fprintf(stderr, "kzsyncd trust: %s is not an admin key (kzadmin1.…)\n",
                argv[2]);
        return EXIT_USAGE_;
    }
    path_in(confp, sizeof(confp), argv[1], "kzsyncd.conf");
    if ((err = config_load(&cfg, confp, err_text, sizeof(err_text))) != 0) {
        fprintf(stderr, "kzsyncd trust: %s\n", err_text);
        return err == -ENOENT ? EXIT_DIR_ : EXIT_FAIL_;
    }
    if (cfg.admin_key[0] && strcmp(cfg.admin_key, argv[2]) != 0) {
        fprintf(stderr,
                "kzsyncd trust: %s already trusts another admin key; "
                "changing it is deliberate work: edit admin_key there\n",
                confp);
        return EXIT_FAIL_;
    }
    snprintf(cfg.admin_key, sizeof(cfg.admin_key), "%s", argv[2]);
    if ((err = config_save(&cfg, confp)) != 0) {
        fprintf(stderr, "kzsyncd trust: cannot write %s: %s\n", confp,
                kz_strerror(err));
        return EXIT_FAIL_;
    }
    fprintf(stderr, "kzsyncd: %s now trusts the admin key\n", argv[1]);
    return EXIT_OK_;
}

struct run_ctx {
    struct server *srv;  /* the server */
    uv_signal_t sigterm; /* SIGTERM */
    uv_signal_t sigint;  /* SIGINT */
    int stopped;         /* server_stop finished */
};

static void
on_stopped(void *data)
{
    struct run_ctx *x = data;

    x->stopped = 1;
    uv_close((uv_handle_t *)&x->sigterm, NULL);
    uv_close((uv_handle_t *)&x->sigint, NULL);
}

static void
on_signal(uv_signal_t *h, int signum)
{
    struct run_ctx *x = h->data;

    kz_log_info("%s: stopping after the work in flight",
                signum == SIGTERM ? "SIGTERM" : "SIGINT");
    server_stop(x->srv, on_stopped, x);
}

static int
cmd_run(int argc, char **argv)
{
    struct run_ctx x;
    struct config cfg;
    struct kz_identity id;
    uv_loop_t loop;
    char keyp[4096], confp[4096], err_text[KEYFILE_MSG_LEN];
    int err;

    if (argc != 2 || argv[1][0] == '-') {
        int help = argc == 2 && strcmp(argv[1], "--help") == 0;
        fputs(usage_text, help ? stdout : stderr);
        return help ? EXIT_OK_ : EXIT_USAGE_;
    }
    path_in(confp, sizeof(confp), argv[1], "kzsyncd.conf");
    path_in(keyp, sizeof(keyp), argv[1], "server.key");
    if ((err = config_load(&cfg, confp, err_text, sizeof(err_text))) != 0) {
        fprintf(stderr, "kzsyncd run: %s\n", err_text);
        return err == -ENOENT ? EXIT_DIR_ : EXIT_FAIL_;
    }
    kz_log_set_level((enum kz_log_level)cfg.log_level);
    if ((err = keyfile_load(keyp, &id, NULL, err_text, sizeof(err_text))) !=
        0) {
        fprintf(stderr, "kzsyncd run: %s\n", err_text);
        return EXIT_FAIL_;
    }
    if (!cfg.admin_key[0])
        kz_log_warn("no admin key trusted yet (kzsyncd trust): no device "
                    "can be admitted");
    signal(SIGPIPE, SIG_IGN);
    memset(&x, 0, sizeof(x));
    if (uv_loop_init(&loop) != 0) {
        keyfile_wipe(&id);
        return EXIT_FAIL_;
    }
    err = server_new(&x.srv, &loop, argv[1], &cfg, &id);
    keyfile_wipe(&id);
    if (err) {
        uv_loop_close(&loop);
        return EXIT_FAIL_;
    }
    uv_signal_init(&loop, &x.sigterm);
    uv_signal_init(&loop, &x.sigint);
    x.sigterm.data = x.sigint.data = &x;
    uv_signal_start(&x.sigterm, on_signal, SIGTERM);
    uv_signal_start(&x.sigint, on_signal, SIGINT);
    if ((err = server_listen(x.srv)) != 0) {
        server_stop(x.srv, on_stopped, &x);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return EXIT_FAIL_;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    err = uv_loop_close(&loop);
    if (err)
        kz_log_warn("loop closed with handles open: %s", uv_strerror(err));
    return x.stopped ? EXIT_OK_ : EXIT_FAIL_;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE_;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, stdout);
        return EXIT_OK_;
    }
    if (strcmp(argv[1], "--version") == 0) {
        puts("kzsyncd 0.1.0");
        return EXIT_OK_;
    }
    /* Before any other SQLite call: SQLite's memory statistics, which
     * nothing here reads, take a global mutex on every allocation (3% of
     * a build or an apply).  Refused only after SQLite started: harmless. */
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if (sodium_init() < 0) {
        fputs("kzsyncd: libsodium failed to initialise\n", stderr);
        return EXIT_FAIL_;
    }
    if (strcmp(argv[1], "init") == 0)
        return cmd_init(argc - 1, argv + 1);
    if (strcmp(argv[1], "trust") == 0)
        return cmd_trust(argc - 1, argv + 1);
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    fprintf(stderr, "kzsyncd: unknown command %s (kzsyncd --help)\n", argv[1]);
    return EXIT_USAGE_;
}
