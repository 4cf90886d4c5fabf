/*
 * cmd_info.c: `kzsync digest`, `kzsync conflicts` and `kzsync status`.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "err.h"
#include "replica.h"

#include "cli.h"

static const char digest_usage[] =
    "usage: kzsync digest DIR [--scope SCOPE]\n"
    "\n"
    "Prints a hex digest of the tracked content of the replica in DIR: of\n"
    "one scope (network, site:NAME or private:NAME) or of everything it\n"
    "holds.  Replicas that hold the same changes print the same digest,\n"
    "whatever order the changes arrived in.  The digest is the last line.\n";

static const char conflicts_usage[] =
    "usage: kzsync conflicts DIR [--limit N]\n"
    "\n"
    "Lists the concurrent overwrites recorded in the replica in DIR, newest\n"
    "first: when, table, row key, column, the value kept and the value that\n"
    "lost, with their versions.  A person can restore the other value with\n"
    "any SQLite tool; the change is then synced like any other.\n";

static const char status_usage[] =
    "usage: kzsync status DIR\n"
    "\n"
    "Shows the replica in DIR: identity, local changes not yet sent (per\n"
    "scope), recorded conflicts and cells waiting in quarantine.\n";

/* Opens DIR's replica or prints why not; returns an exit code. */
static int
open_replica(const char *cmd, const char *dir, struct replica **r)
{
    int err = replica_open(r, dir, NULL);

    if (err) {
        cli_err(cmd, "%s",
                replica_errmsg(NULL)[0] ? replica_errmsg(NULL)
                                        : kz_strerror(err));
        return cli_exit_for(err);
    }
    return KZ_EXIT_OK;
}

int
cmd_digest(int argc, char **argv)
{
    static const struct option opts[] = {
        {"scope", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *scope = NULL;
    struct replica *r = NULL;
    uint8_t d[32];
    char hex[65];
    int c, rc, err;

    if (cli_wants_help(argc, argv, digest_usage))
        return KZ_EXIT_OK;
    optind = 0;
    while ((c = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
        if (c == 's') {
            scope = optarg;
        } else {
            fputs(digest_usage, stderr);
            return KZ_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fputs(digest_usage, stderr);
        return KZ_EXIT_USAGE;
    }
    if ((rc = open_replica("digest", argv[optind], &r)) != KZ_EXIT_OK)
        return rc;
    err = replica_digest(r, scope, d);
    if (err) {
        cli_err("digest", "%s",
                replica_errmsg(r)[0] ? replica_errmsg(r) : kz_strerror(err));
        replica_free(r);
        return cli_exit_for(err);
    }
    sodium_bin2hex(hex, sizeof(hex), d, sizeof(d));
    printf("%s\n", hex);
    replica_free(r);
    return KZ_EXIT_OK;
}

static void
print_value(sqlite3_stmt *st, int col)
{
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_NULL: fputs("NULL", stdout); break;
    case SQLITE_BLOB:
        printf("<%d bytes>", sqlite3_column_bytes(st, col));
        break;
    case SQLITE_TEXT:
        printf("'%s'", (const char *)sqlite3_column_text(st, col));
        break;
    default: fputs((const char *)sqlite3_column_text(st, col), stdout); break;
    }
}

int
cmd_conflicts(int argc, char **argv)
{
    static const struct option opts[] = {
        {"limit", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct replica *r = NULL;
    sqlite3_stmt *st = NULL;
    long limit = 1000, n = 0;
    int c, rc;

    if (cli_wants_help(argc, argv, conflicts_usage))
        return KZ_EXIT_OK;
    optind = 0;
    while ((c = getopt_long(argc, argv, "l:h", opts, NULL)) != -1) {
        char *end = NULL;
        if (c == 'l' && (limit = strtol(optarg, &end, 10)) > 0 && *end == '\0')
            continue;
        fputs(conflicts_usage, stderr);
        return KZ_EXIT_USAGE;
    }
    if (optind != argc - 1) {
        fputs(conflicts_usage, stderr);
        return KZ_EXIT_USAGE;
    }
    if ((rc = open_replica("conflicts", argv[optind], &r)) != KZ_EXIT_OK)
        return rc;
    rc = sqlite3_prepare_v2(
        replica_db(r),
        "SELECT at, tbl, pk, col, winner,"
        " CASE winner WHEN 'local' THEN local_value ELSE remote_value END,"
        " CASE winner WHEN 'local' THEN remote_value ELSE local_value END,"
        " CASE winner WHEN 'local' THEN local_hlc ELSE remote_hlc END,"
        " CASE winner WHEN 'local' THEN remote_hlc ELSE local_hlc END,"
        " hex(substr(CASE winner WHEN 'local' THEN local_author"
        "  ELSE remote_author END, 1, 4)),"
        " hex(substr(CASE winner WHEN 'local' THEN remote_author"
        "  ELSE local_author END, 1, 4))"
        " FROM kz_conflict ORDER BY id DESC LIMIT ?",
        -1, &st, NULL);
    if (rc != SQLITE_OK) {
        cli_err("conflicts", "%s", sqlite3_errmsg(replica_db(r)));
        replica_free(r);
        return KZ_EXIT_FAIL;
    }
    sqlite3_bind_int64(st, 1, limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        printf("%s  %s  key ", sqlite3_column_text(st, 0),
               sqlite3_column_text(st, 1));
        print_value(st, 2);
        printf("  column %s\n    kept: ", sqlite3_column_text(st, 3));
        print_value(st, 5);
        printf("  (%s change, hlc %lld by device %s…)\n    lost: ",
               sqlite3_column_text(st, 4),
               (long long)sqlite3_column_int64(st, 7),
               sqlite3_column_text(st, 9));
        print_value(st, 6);
        printf("  (hlc %lld by device %s…)\n",
               (long long)sqlite3_column_int64(st, 8),
               sqlite3_column_text(st, 10));
        n++;
    }
    sqlite3_finalize(st);
    printf("%ld conflict%s\n", n, n == 1 ? "" : "s");
    replica_free(r);
    return rc == SQLITE_DONE ? KZ_EXIT_OK : KZ_EXIT_FAIL;
}

static void
print_scope(void *data, const char *scope, uint64_t n)
{
    (void)data;
    printf("  %-24s %llu changeset%s to send\n", scope, (unsigned long long)n,
           n == 1 ? "" : "s");
}

static long long
count(struct replica *r, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long v = -1;

    if (sqlite3_prepare_v2(replica_db(r), sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

int
cmd_status(int argc, char **argv)
{
    struct replica *r = NULL;
    char hex[65];
    int rc, made;

    if (cli_wants_help(argc, argv, status_usage))
        return KZ_EXIT_OK;
    if (argc != 2 || argv[1][0] == '-') {
        fputs(status_usage, stderr);
        return KZ_EXIT_USAGE;
    }
    if ((rc = open_replica("status", argv[1], &r)) != KZ_EXIT_OK)
        return rc;
    /* Pack what was written since the last look, so the counts are true. */
    made = replica_build(r, 0);
    if (made < 0) {
        cli_err("status", "%s", replica_errmsg(r));
        replica_free(r);
        return cli_exit_for(made);
    }
    sodium_bin2hex(hex, sizeof(hex), replica_device_key(r), 32);
    printf("replica   %s/replica.db\n", argv[1]);
    printf("site      %s\n", replica_site(r));
    {
        char v[256];
        if (replica_meta_get(r, "device", v, sizeof(v)) == 0)
            printf("device    %s (%.16s…)\n", v, hex);
        else
            printf("device    %.16s…\n", hex);
        printf("role      %s\n",
               replica_role(r) == REPLICA_ROLE_ADMIN ? "admin (state office)"
               : replica_role(r) == REPLICA_ROLE_OBSERVER ? "observer"
                                                          : "site");
        if (replica_meta_get(r, "server", v, sizeof(v)) == 0)
            printf("server    %s\n", v);
        if (replica_meta_get(r, "last_sync", v, sizeof(v)) == 0)
            printf("last sync %s (UTC)\n", v);
        else
            printf("last sync never\n");
    }
    {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(replica_db(r),
                               "SELECT scope, server_seq FROM kz_cursor"
                               " ORDER BY scope",
                               -1, &st, NULL) == SQLITE_OK) {
            int any = 0;
            while (sqlite3_step(st) == SQLITE_ROW) {
                if (!any)
                    printf(
                        "received (per scope, up to the server's number):\n");
                any = 1;
                printf("  %-24s %lld\n", sqlite3_column_text(st, 0),
                       (long long)sqlite3_column_int64(st, 1));
            }
        }
        sqlite3_finalize(st);
    }
    printf("pending:\n");
    if (count(r, "SELECT count(*) FROM kz_outbox") == 0)
        printf("  nothing to send\n");
    else if (replica_outbox_scopes(r, print_scope, NULL) != 0)
        printf("  (could not read the outbox)\n");
    printf("conflicts %lld recorded\n",
           count(r, "SELECT count(*) FROM kz_conflict"));
    printf("waiting   %lld cells in quarantine\n",
           count(r, "SELECT count(*) FROM kz_quarantine"));
    {
        /* Why they wait: each cell is retried after every apply and after
         * migrations, and stays until it applies; nothing is dropped. */
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(replica_db(r),
                               "SELECT reason, tbl, count(*) FROM"
                               " kz_quarantine GROUP BY reason, tbl"
                               " ORDER BY 3 DESC LIMIT 20",
                               -1, &st, NULL) == SQLITE_OK) {
            while (sqlite3_step(st) == SQLITE_ROW)
                printf("  %6lld  %s: %s\n",
                       (long long)sqlite3_column_int64(st, 2),
                       sqlite3_column_text(st, 1), sqlite3_column_text(st, 0));
        }
        sqlite3_finalize(st);
    }
    replica_free(r);
    return KZ_EXIT_OK;
}
