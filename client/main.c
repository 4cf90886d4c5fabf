/*
 * main.c: the kzsync command line (DESIGN.md §8).
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>
#include <sqlite3.h>

#include "cli.h"

struct command {
    const char *name;                 /* first argument */
    int (*fn)(int argc, char **argv); /* argv[0] is the name */
    const char *summary;              /* one line for --help */
};

static const struct command commands[] = {
    {"init", cmd_init, "set up this device (and, for the admin, the network)"},
    {"member", cmd_member, "admin: add, revoke and list devices"},
    {"sync", cmd_sync, "one round with the server: push, pull, apply"},
    {"run", cmd_run, "stay in sync until stopped"},
    {"status", cmd_status, "local changes not yet sent, conflicts, quarantine"},
    {"digest", cmd_digest, "hex digest of the tracked content (of a scope)"},
    {"conflicts", cmd_conflicts, "concurrent overwrites recorded, both values"},
    {"report", cmd_report, "consolidated report as html, csv or json"},
};

static void
usage(FILE *f)
{
    size_t i;

    fputs("usage: kzsync COMMAND DIR [OPTIONS]    (kzsync COMMAND --help)\n"
          "\n"
          "Offline-first sync of the coordination centres' records.  DIR\n"
          "holds one replica, DIR/replica.db, which any SQLite tool may read\n"
          "and write; every write to a tracked table is synced.\n"
          "\n"
          "commands:\n",
          f);
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\nexit codes: 0 ok, 1 failed, 2 usage, 3 no replica in DIR,\n"
          "4 server unreachable, 5 refused by the server, 6 version not "
          "supported\n",
          f);
}

int
main(int argc, char **argv)
{
    size_t i;

    if (argc < 2) {
        usage(stderr);
        return KZ_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return KZ_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        puts("kzsync 0.1.0");
        return KZ_EXIT_OK;
    }
    /* Before any other SQLite call: SQLite's memory statistics, which
     * nothing here reads, take a global mutex on every allocation (3% of
     * a build or an apply).  Refused only after SQLite started: harmless. */
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if (sodium_init() < 0) {
        fputs("kzsync: libsodium failed to initialise\n", stderr);
        return KZ_EXIT_FAIL;
    }
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "kzsync: unknown command %s (kzsync --help)\n", argv[1]);
    return KZ_EXIT_USAGE;
}
