/*
 * cli.h: the commands of `kzsync` (DESIGN.md §8) and their exit codes.
 *
 * Each command is `int cmd_x(int argc, char **argv)` with argv[0] the
 * command's name; it parses its own options with getopt_long, prints what
 * it prints (a key, a join request or a digest as the last line of stdout),
 * writes errors to stderr as one line "kzsync CMD: …", and returns an exit
 * code below.
 */
#ifndef KZ_CLI_H
#define KZ_CLI_H

#include <stdio.h>

enum kz_exit {
    KZ_EXIT_OK = 0,          /* success */
    KZ_EXIT_FAIL = 1,        /* the command failed (see the message) */
    KZ_EXIT_USAGE = 2,       /* wrong arguments or options */
    KZ_EXIT_NOREPLICA = 3,   /* DIR holds no replica (or one exists: init) */
    KZ_EXIT_UNREACHABLE = 4, /* the server cannot be reached */
    KZ_EXIT_REFUSED = 5,     /* the server refused us (key, roster, rights) */
    KZ_EXIT_VERSION = 6      /* protocol or replica version not supported */
};

int cmd_digest(int argc, char **argv);
int cmd_conflicts(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_member(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_run(int argc, char **argv);

/* Shared helpers (cli.c). */

/** cli_err(cmd, fmt, …): prints "kzsync CMD: …" and a newline to stderr. */
void cli_err(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** cli_exit_for(err): the exit code for a KZ error code. */
int cli_exit_for(int err);

/**
 * cli_wants_help(argc, argv, usage): prints ${usage} to stdout and returns
 * 1 when --help or -h is among the arguments.
 */
int cli_wants_help(int argc, char **argv, const char *usage);

#endif /* KZ_CLI_H */
