/*
 * cmd_report.c: `kzsync report DIR --format html|csv|json [--out FILE]`.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "replica.h"
#include "report.h"

#include "cli.h"

static const char usage[] =
    "usage: kzsync report DIR --format html|csv|json [--out FILE]\n"
    "\n"
    "Writes the consolidated report of the replica in DIR: per site and in\n"
    "total, network partners by sector, cooperation agreements and their\n"
    "reviews, meetings, trainings, consultations, case reviews and\n"
    "measures, funding.  HTML is one self-contained page with charts; CSV\n"
    "and JSON carry the same figures.  Without --out it goes to stdout.\n"
    "The report holds no personal data, also on a site's own replica.\n";

int
cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *fmt_name = NULL, *out_path = NULL, *why = NULL;
    enum report_format fmt;
    struct replica *r = NULL;
    char tmp[4096];
    FILE *out = stdout;
    int c, err;

    if (cli_wants_help(argc, argv, usage))
        return KZ_EXIT_OK;
    optind = 0;
    while ((c = getopt_long(argc, argv, "f:o:h", opts, NULL)) != -1) {
        if (c == 'f')
            fmt_name = optarg;
        else if (c == 'o')
            out_path = optarg;
        else {
            fputs(usage, stderr);
            return KZ_EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || fmt_name == NULL) {
        fputs(usage, stderr);
        return KZ_EXIT_USAGE;
    }
    if (report_format_parse(fmt_name, &fmt) != 0) {
        cli_err("report", "unknown format %s (html, csv or json)", fmt_name);
        return KZ_EXIT_USAGE;
    }
    if ((err = replica_open(&r, argv[optind], NULL)) != 0) {
        cli_err("report", "%s", replica_errmsg(NULL));
        return cli_exit_for(err);
    }
    if (out_path) {
        /* Written beside the target and renamed: never half a report. */
        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", out_path) >=
            sizeof(tmp)) {
            cli_err("report", "output path too long");
            replica_free(r);
            return KZ_EXIT_USAGE;
        }
        if ((out = fopen(tmp, "w")) == NULL) {
            cli_err("report", "cannot write %s: %s", tmp, strerror(errno));
            replica_free(r);
            return KZ_EXIT_FAIL;
        }
    }
    err = report_write(replica_db(r), fmt, out, &why);
    if (out_path) {
        if (fclose(out) != 0 && err == 0)
            err = -KZ_EIO;
        if (err == 0 && rename(tmp, out_path) != 0)
            err = kz_err_from_errno(errno);
        if (err)
            (void)remove(tmp);
    } else if (fflush(stdout) != 0 && err == 0) {
        err = -KZ_EIO;
    }
    replica_free(r);
    if (err) {
        cli_err("report", "%s", why ? why : kz_strerror(err));
        return cli_exit_for(err) == KZ_EXIT_USAGE ? KZ_EXIT_FAIL
                                                  : cli_exit_for(err);
    }
    if (out_path)
        fprintf(stderr, "kzsync report: wrote %s\n", out_path);
    return KZ_EXIT_OK;
}
