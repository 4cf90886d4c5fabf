/*
 * cmd_member.c: `kzsync member add DIR REQUEST --role site|observer`,
 * `kzsync member revoke DIR NAME`, `kzsync member list DIR`.
 *
 * Only the admin (the state office) changes the roster: it signs a new
 * version, keeps it in its replica and uploads it with its next sync; the
 * server accepts it only with the admin's signature and a higher version.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "alloc.h"
#include "ctx.h"
#include "err.h"
#include "join.h"
#include "roster.h"

#include "cli.h"

static const char usage[] =
    "usage: kzsync member add DIR REQUEST --role site|observer\n"
    "       kzsync member revoke DIR NAME\n"
    "       kzsync member list DIR\n"
    "\n"
    "add     admits the device whose join request (printed by its kzsync\n"
    "        init) is REQUEST, as a device of its site or as an observer\n"
    "revoke  revokes the device NAME: the server refuses it from then on and\n"
    "        its changesets beyond what was received are refused\n"
    "list    the roster as this device knows it\n"
    "Only the state office's device (the admin) may add and revoke; the new\n"
    "roster reaches the server with its next sync.\n";

/* Opens DIR and checks that this device is the admin. */
static int
open_admin(struct kzc *k, const char *dir, const char *cmd)
{
    const struct roster_member *me;
    int err = kzc_open(k, dir);

    if (err) {
        cli_err(cmd, "%s", k->err);
        return cli_exit_for(err);
    }
    me = kzc_me(k);
    if (me == NULL || me->role != ROSTER_ROLE_ADMIN || me->revoked) {
        cli_err(cmd, "only the network's admin (the state office's device) "
                     "changes the roster");
        kzc_close(k);
        return KZ_EXIT_FAIL;
    }
    return KZ_EXIT_OK;
}

/* A copy of the current roster with the next version number. */
static int
next_roster(struct kzc *k, struct roster **out)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    const char *why = NULL;
    int err;

    *out = NULL;
    if ((err = replica_meta_get_blob(k->r, "roster", &bytes, &len)))
        return err;
    err = roster_decode(out, bytes, len, &k->admin, &why);
    kz_free(bytes);
    if (err == 0 && (err = roster_bump(*out))) {
        roster_free(*out);
        *out = NULL;
    }
    return err;
}

static int
site_known(struct kzc *k, const char *site)
{
    sqlite3_stmt *st = NULL;
    int found = 0;

    if (sqlite3_prepare_v2(replica_db(k->r),
                           "SELECT 1 FROM site WHERE code = ?", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
        found = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    return found;
}

static int
member_add(int argc, char **argv)
{
    static const struct option opts[] = {{"role", required_argument, NULL, 'r'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *role_name = NULL, *why = NULL;
    enum roster_role role;
    struct join_request jr;
    struct roster *nr = NULL;
    struct kzc k;
    int c, err, rc;

    if (cli_wants_help(argc, argv, usage))
        return KZ_EXIT_OK;
    optind = 0;
    while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
        if (c == 'r') {
            role_name = optarg;
        } else {
            fputs(usage, stderr);
            return KZ_EXIT_USAGE;
        }
    }
    if (optind != argc - 2 || role_name == NULL ||
        roster_role_parse(role_name, &role) != 0 || role == ROSTER_ROLE_ADMIN) {
        fputs(usage, stderr);
        return KZ_EXIT_USAGE;
    }
    if ((err = join_decode(&jr, argv[optind + 1], &why))) {
        cli_err("member add", "not a valid join request: %s",
                why ? why : kz_strerror(err));
        return KZ_EXIT_USAGE;
    }
    if ((rc = open_admin(&k, argv[optind], "member add")) != KZ_EXIT_OK)
        return rc;
    if (role == ROSTER_ROLE_SITE && !site_known(&k, jr.site)) {
        cli_err("member add",
                "site %s is not in the site table of the "
                "reference data",
                jr.site);
        kzc_close(&k);
        return KZ_EXIT_FAIL;
    }
    err = next_roster(&k, &nr);
    if (err == 0)
        err = roster_add_member(nr, jr.name, jr.site, role, &jr.sign_pk,
                                &jr.dh_pk);
    if (err == 0)
        err = kzc_save_roster(&k, nr);
    if (err) {
        cli_err("member add", "%s",
                err == -KZ_EEXIST ? "a device of that name or key is in the "
                                    "roster already"
                : k.err[0]        ? k.err
                                  : kz_strerror(err));
        roster_free(nr);
        kzc_close(&k);
        return KZ_EXIT_FAIL;
    }
    printf("added %s (site %s, %s) to roster version %llu; it reaches the "
           "server with the next sync\n",
           jr.name, jr.site, roster_role_name(role),
           (unsigned long long)roster_version(nr));
    roster_free(nr);
    kzc_close(&k);
    return KZ_EXIT_OK;
}

static int
member_revoke(int argc, char **argv)
{
    const struct roster_member *m;
    struct roster_seq seqs[64];
    uint32_t n = 0;
    struct roster *nr = NULL;
    sqlite3_stmt *st = NULL;
    struct kzc k;
    int err, rc;

    if (cli_wants_help(argc, argv, usage))
        return KZ_EXIT_OK;
    if (argc != 3 || argv[1][0] == '-') {
        fputs(usage, stderr);
        return KZ_EXIT_USAGE;
    }
    if ((rc = open_admin(&k, argv[1], "member revoke")) != KZ_EXIT_OK)
        return rc;
    m = roster_find_by_name(k.roster, argv[2]);
    if (m == NULL) {
        cli_err("member revoke", "no device %s in the roster", argv[2]);
        kzc_close(&k);
        return KZ_EXIT_FAIL;
    }
    if (memcmp(m->sign_pk.b, k.id.sign_pk.b, 32) == 0) {
        cli_err("member revoke", "the admin cannot revoke itself");
        kzc_close(&k);
        return KZ_EXIT_FAIL;
    }
    /* What was received of it so far stays valid; nothing beyond. */
    if (sqlite3_prepare_v2(replica_db(k.r),
                           "SELECT scope, seq FROM kz_seen WHERE author = ?",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_blob(st, 1, m->sign_pk.b, 32, SQLITE_STATIC);
        while (n < 64 && sqlite3_step(st) == SQLITE_ROW) {
            snprintf(seqs[n].scope, sizeof(seqs[n].scope), "%s",
                     (const char *)sqlite3_column_text(st, 0));
            seqs[n].seq = (uint64_t)sqlite3_column_int64(st, 1);
            n++;
        }
    }
    sqlite3_finalize(st);
    err = next_roster(&k, &nr);
    if (err == 0)
        err = roster_revoke(nr, argv[2], seqs, n);
    if (err == 0)
        err = kzc_save_roster(&k, nr);
    if (err) {
        cli_err("member revoke", "%s", k.err[0] ? k.err : kz_strerror(err));
        roster_free(nr);
        kzc_close(&k);
        return KZ_EXIT_FAIL;
    }
    printf("revoked %s in roster version %llu; it takes effect at the server "
           "with the next sync\n",
           argv[2], (unsigned long long)roster_version(nr));
    roster_free(nr);
    kzc_close(&k);
    return KZ_EXIT_OK;
}

static int
member_list(int argc, char **argv)
{
    struct kzc k;
    uint32_t i;
    int err;

    if (cli_wants_help(argc, argv, usage))
        return KZ_EXIT_OK;
    if (argc != 2 || argv[1][0] == '-') {
        fputs(usage, stderr);
        return KZ_EXIT_USAGE;
    }
    if ((err = kzc_open(&k, argv[1]))) {
        cli_err("member list", "%s", k.err);
        return cli_exit_for(err);
    }
    if (k.roster == NULL) {
        printf("no roster yet (it arrives with the first sync)\n");
        kzc_close(&k);
        return KZ_EXIT_OK;
    }
    printf("roster version %llu\n",
           (unsigned long long)roster_version(k.roster));
    for (i = 0; i < roster_n_members(k.roster); i++) {
        const struct roster_member *m = roster_member(k.roster, i);
        char hex[17];
        sodium_bin2hex(hex, sizeof(hex), m->sign_pk.b, 8);
        printf("  %-24s %-6s %-9s %s…%s%s\n", m->name, m->site,
               roster_role_name(m->role), hex, m->revoked ? "  REVOKED" : "",
               memcmp(m->dh_pk.b, k.id.dh_pk.b, 32) == 0 ? "  (this device)"
                                                         : "");
    }
    kzc_close(&k);
    return KZ_EXIT_OK;
}

int
cmd_member(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? KZ_EXIT_USAGE : KZ_EXIT_OK;
    }
    if (strcmp(argv[1], "add") == 0)
        return member_add(argc - 1, argv + 1);
    if (strcmp(argv[1], "revoke") == 0)
        return member_revoke(argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0)
        return member_list(argc - 1, argv + 1);
    fputs(usage, stderr);
    return KZ_EXIT_USAGE;
}
