/*
 * cmd_init.c: `kzsync init DIR --site SITE [--device NAME] --server
 * HOST:PORT --server-key KEY [--create-network]` (DESIGN.md §8).
 *
 * Creates DIR with the device's identity (DIR/identity.key, mode 0600;
 * sealed with $KZSYNC_PASSPHRASE if it is set) and its replica.  With
 * --create-network this device is the admin (the state office): it makes
 * roster version 1 with itself as admin, to be uploaded by its first sync,
 * and prints the admin key (for `kzsyncd trust`).  Otherwise it prints a
 * one-line join request for the admin's `kzsync member add`.  The key or
 * request is the last line of stdout.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "alloc.h"
#include "ctx.h"
#include "err.h"
#include "join.h"
#include "keyfile.h"
#include "replica.h"
#include "roster.h"

#include "cli.h"

static const char usage[] =
    "usage: kzsync init DIR --site SITE [--device NAME] --server HOST:PORT\n"
    "                       --server-key KEY [--create-network]\n"
    "                       [--admin-key ADMIN_KEY]\n"
    "\n"
    "Sets up this device in DIR: its keys (DIR/identity.key, mode 0600;\n"
    "sealed with the passphrase in $KZSYNC_PASSPHRASE if set) and its\n"
    "replica DIR/replica.db with the shipped schema.  SITE is the site code\n"
    "(HAN, OL, LG, … or LAND for the state office); NAME defaults to\n"
    "SITE-<host name>.  KEY is what `kzsyncd init` printed.\n"
    "\n"
    "--create-network  this device is the network's admin (the state\n"
    "                  office): prints the admin key for `kzsyncd trust`.\n"
    "Otherwise prints a one-line join request: give it to the state office\n"
    "for `kzsync member add`.  The key or request is the last line.\n"
    "\n"
    "--admin-key       the network's admin key (kzadmin1.…, from the state\n"
    "                  office, like the server key): the device then accepts\n"
    "                  only rosters signed by it.  Without it the device\n"
    "                  trusts the admin key of the first roster the server\n"
    "                  gives it, which a dishonest server operator could\n"
    "                  abuse: give it whenever you can.\n";

static int
valid_site(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > KZ_LIM_SITE_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (!isupper((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) &&
            s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

int
cmd_init(int argc, char **argv)
{
    static const struct option opts[] = {
        {"site", required_argument, NULL, 's'},
        {"device", required_argument, NULL, 'd'},
        {"server", required_argument, NULL, 'S'},
        {"server-key", required_argument, NULL, 'k'},
        {"create-network", no_argument, NULL, 'c'},
        {"admin-key", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *site = NULL, *device = NULL, *server = NULL, *skey = NULL;
    const char *akey = NULL;
    struct kz_sign_pk admin_pk;
    const char *dir, *pass = getenv(KZC_PASSPHRASE_ENV);
    char name[KZ_LIM_DEVICE_NAME_MAX + 1], host[64] = "device";
    char path[4096], msg[KEYFILE_MSG_LEN];
    struct kz_identity id;
    struct kz_dh_pk server_pk;
    struct replica_opts ro;
    struct replica *r = NULL;
    struct stat st;
    int c, create = 0, err, rc = KZ_EXIT_FAIL;

    if (cli_wants_help(argc, argv, usage))
        return KZ_EXIT_OK;
    optind = 0;
    while ((c = getopt_long(argc, argv, "s:d:S:k:ca:h", opts, NULL)) != -1) {
        switch (c) {
        case 'a': akey = optarg; break;
        case 's': site = optarg; break;
        case 'd': device = optarg; break;
        case 'S': server = optarg; break;
        case 'k': skey = optarg; break;
        case 'c': create = 1; break;
        default: fputs(usage, stderr); return KZ_EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || !site || !server || !skey) {
        fputs(usage, stderr);
        return KZ_EXIT_USAGE;
    }
    dir = argv[optind];
    if (!valid_site(site)) {
        cli_err("init",
                "site code %s: use capitals, digits, _ or - (HAN, OL, "
                "LAND …)",
                site);
        return KZ_EXIT_USAGE;
    }
    if (serverkey_decode(&server_pk, skey) != 0) {
        cli_err("init", "--server-key %s is not a server key (kzserver1.…)",
                skey);
        return KZ_EXIT_USAGE;
    }
    if (akey && create) {
        cli_err("init", "--admin-key goes with joining a network, not with "
                        "--create-network");
        return KZ_EXIT_USAGE;
    }
    if (akey && adminkey_decode(&admin_pk, akey) != 0) {
        cli_err("init", "--admin-key %s is not an admin key (kzadmin1.…)",
                akey);
        return KZ_EXIT_USAGE;
    }
    if (strchr(server, ':') == NULL) {
        cli_err("init", "--server %s is not HOST:PORT", server);
        return KZ_EXIT_USAGE;
    }
    if (device == NULL) {
        (void)gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        snprintf(name, sizeof(name), "%s-%s", site, host);
    } else {
        snprintf(name, sizeof(name), "%s", device);
    }
    if (strlen(name) == 0 ||
        (device && strlen(device) > KZ_LIM_DEVICE_NAME_MAX)) {
        cli_err("init", "device name: 1..%u bytes", KZ_LIM_DEVICE_NAME_MAX);
        return KZ_EXIT_USAGE;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, KZC_IDENTITY_FILE);
    if (stat(path, &st) == 0) {
        cli_err("init", "%s exists: this device is set up already", path);
        return KZ_EXIT_NOREPLICA;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        cli_err("init", "cannot create %s: %s", dir, strerror(errno));
        return KZ_EXIT_FAIL;
    }
    if ((err = keyfile_generate(&id, kz_env_system()))) {
        cli_err("init", "cannot make keys: %s", kz_strerror(err));
        return KZ_EXIT_FAIL;
    }
    memset(&ro, 0, sizeof(ro));
    ro.site = site;
    ro.device = name;
    ro.role = create ? REPLICA_ROLE_ADMIN : REPLICA_ROLE_SITE;
    ro.device_key = id.sign_pk.b;
    if ((err = replica_create(&r, dir, &ro))) {
        cli_err("init", "%s", replica_errmsg(NULL));
        rc = cli_exit_for(err);
        goto out;
    }
    if ((err = keyfile_save(path, &id, pass && pass[0] ? pass : NULL, msg,
                            sizeof(msg)))) {
        cli_err("init", "%s", msg[0] ? msg : kz_strerror(err));
        goto out;
    }
    if ((err = replica_meta_set(r, "server", server)) ||
        (err = replica_meta_set(r, "server_key", skey)) ||
        (err = replica_meta_set(r, "device", name)) ||
        (akey && (err = replica_meta_set(r, "admin_key", akey)))) {
        cli_err("init", "%s", replica_errmsg(r));
        goto out;
    }
    if (create) {
        struct kzc k;
        struct roster *ro_ = NULL;
        char text[ADMINKEY_TEXT_LEN + 1];

        memset(&k, 0, sizeof(k));
        k.r = r;
        k.id = id;
        if ((err = adminkey_encode(&id.sign_pk, text)) ||
            (err = replica_meta_set(r, "admin_key", text)) ||
            (err = roster_new(&ro_, &id.sign_pk)) ||
            (err = roster_add_member(ro_, name, site, ROSTER_ROLE_ADMIN,
                                     &id.sign_pk, &id.dh_pk)) ||
            (err = kzc_save_roster(&k, ro_))) {
            cli_err("init", "cannot create the network: %s",
                    k.err[0] ? k.err : kz_strerror(err));
            roster_free(ro_);
            sodium_memzero(&k.id, sizeof(k.id));
            goto out;
        }
        roster_free(ro_);
        sodium_memzero(&k.id, sizeof(k.id));
        fprintf(stderr,
                "kzsync: %s is the admin of a new network (site %s); give "
                "this admin key to the server (kzsyncd trust):\n",
                name, site);
        printf("%s\n", text);
    } else {
        struct join_request jr;
        char *text = NULL;

        memset(&jr, 0, sizeof(jr));
        snprintf(jr.name, sizeof(jr.name), "%s", name);
        snprintf(jr.site, sizeof(jr.site), "%s", site);
        jr.sign_pk = id.sign_pk;
        jr.dh_pk = id.dh_pk;
        jr.created_ms = kz_env_wall_ms(kz_env_system());
        if ((err = join_encode(&jr, &id.sign_sk, &text))) {
            cli_err("init", "cannot make the join request: %s",
                    kz_strerror(err));
            goto out;
        }
        if (akey == NULL)
            fprintf(stderr,
                    "kzsync: warning: no --admin-key: this device will trust "
                    "the admin key of the first roster the server sends\n");
        fprintf(stderr,
                "kzsync: %s set up for site %s; give this join request to "
                "the state office (kzsync member add):\n",
                name, site);
        printf("%s\n", text);
        kz_free(text);
    }
    rc = KZ_EXIT_OK;
out:
    keyfile_wipe(&id);
    replica_free(r);
    return rc;
}
