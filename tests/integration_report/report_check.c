/*
 * report_check.c: checks on a `kzsync report --format html` page and on
 * what headless Chromium made of it (tests/integration_report).
 *
 *   report_check html PAGE [REPLICA_DB]
 *       one self-contained page: no script, no external resource, the
 *       German section headings, inline SVG charts, the reference date;
 *       no personal data: a fixed list of names from the sample data and,
 *       with REPLICA_DB, every personal or site-only value in that replica
 *       (contacts, users, named participants, sole practitioners, notes,
 *       unreleased case reviews).
 *   report_check dom DOM MIN_CHARTS
 *       the DOM Chromium rendered (--dump-dom) has the section headings and
 *       at least MIN_CHARTS <svg> charts, each with bars of positive size.
 *   report_check png PNG WIDTH HEIGHT
 *       a PNG of that size (IHDR) and large enough not to be blank: a
 *       uniform page compresses to a few KB, the report to far more.
 *   report_check log LOG
 *       Chromium's stderr (--enable-logging=stderr) holds no message of the
 *       page's console and no uncaught error.
 *   report_check pdf PDF MIN_PAGES
 *       a PDF with at least MIN_PAGES pages.
 *
 * Exit 0 if all checks pass, 1 with one line per failure otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

static int failures;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "report_check: ");                                 \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            failures++;                                                        \
        }                                                                      \
    } while (0)

static const char *const headings[] = {
    "Netzwerkpartner nach Sektor",
    "Kooperationsvereinbarungen",
    "Netzwerktreffen",
    "Fortbildungen",
    "Beratungen",
    "Fallanalysen und Maßnahmen",
    "Fördermittel",
};
#define N_HEADINGS (sizeof(headings) / sizeof(headings[0]))

/* The whole file ${path}, NUL-terminated; *${len} its size. */
static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    long n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0 || (p = malloc((size_t)n + 1)) == NULL ||
        fread(p, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "report_check: cannot read %s\n", path);
        exit(1);
    }
    fclose(f);
    p[n] = '\0';
    if (len != NULL)
        *len = (size_t)n;
    return p;
}

static size_t
count(const char *s, const char *what)
{
    size_t n = 0;

    for (; (s = strstr(s, what)) != NULL; s++)
        n++;
    return n;
}

/* Occurrences of ${what} in the ${len} bytes at ${p} (binary-safe). */
static size_t
count_mem(const char *p, size_t len, const char *what)
{
    size_t n = 0, w = strlen(what), k;

    for (k = 0; k + w <= len; k++)
        n += p[k] == what[0] && memcmp(p + k, what, w) == 0;
    return n;
}

static void
check_headings(const char *text, const char *what)
{
    size_t i;

    for (i = 0; i < N_HEADINGS; i++) {
        char want[128];

        snprintf(want, sizeof(want), "\">%s</h2>", headings[i]);
        CHECK(strstr(text, want) != NULL, "%s lacks the heading \"%s\"", what,
              headings[i]);
    }
}

/* Personal or site-only values of a replica that no report may show. */
static const char *const pd_sql =
    "SELECT first_name || ' ' || last_name FROM contact"
    " UNION SELECT email FROM contact WHERE email IS NOT NULL"
    " UNION SELECT phone FROM contact WHERE phone IS NOT NULL"
    " UNION SELECT username FROM app_user"
    " UNION SELECT display_name FROM app_user"
    " UNION SELECT email FROM app_user WHERE email IS NOT NULL"
    " UNION SELECT first_name || ' ' || last_name FROM training_participant"
    " UNION SELECT name FROM institution WHERE is_natural_person = 1"
    " UNION SELECT email FROM institution WHERE email IS NOT NULL"
    " UNION SELECT outcome_note FROM consultation"
    " WHERE outcome_note IS NOT NULL"
    " UNION SELECT summary_anonymised FROM case_review"
    " WHERE summary_anonymised IS NOT NULL"
    " UNION SELECT review_code FROM case_review WHERE released_to_state = 0";

/* Names from the sample files (they must not depend on the replica). */
static const char *const pd_fixed[] = {
    "Jana Ostermann", "Miriam Lühmann", "m.luehmann",     "Tobias Kessler",
    "t.kessler",      "Timo Niemeyer",  "Nadine Garbers", "Wiegenlied",
    "mailto:",        "tel:",
};

static void
check_html(const char *path, const char *db_path)
{
    char *html = slurp(path, NULL);
    const char *p;
    size_t i;

    CHECK(strncmp(html, "<!DOCTYPE html>", 15) == 0, "no doctype");
    CHECK(strstr(html, "<html lang=\"de\">") != NULL, "not marked German");
    CHECK(strstr(html, "<meta charset=\"utf-8\">") != NULL, "no charset");
    /* Nothing to run, nothing to fetch. */
    CHECK(strstr(html, "<script") == NULL, "has a <script>");
    CHECK(count(html, " onload=") + count(html, " onerror=") +
                  count(html, " onclick=") + count(html, "javascript:") ==
              0,
          "has an event handler");
    CHECK(strstr(html, "http:") == NULL && strstr(html, "https:") == NULL,
          "has a URL");
    CHECK(strstr(html, "src=") == NULL, "has a src= attribute");
    CHECK(strstr(html, "<link") == NULL, "has a <link>");
    CHECK(strstr(html, "url(") == NULL, "has a CSS url()");
    CHECK(strstr(html, "@import") == NULL, "has a CSS @import");
    CHECK(strstr(html, "<iframe") == NULL && strstr(html, "<object") == NULL,
          "embeds a document");
    for (p = html; (p = strstr(p, "href=")) != NULL; p++)
        CHECK(strncmp(p, "href=\"#", 7) == 0, "external link: %.60s", p);
    check_headings(html, "the page");
    CHECK(strstr(html, "Stichtag: <strong>27.11.2026</strong>") != NULL,
          "no reference date 27.11.2026");
    CHECK(strstr(html, "<svg") != NULL, "no inline SVG");

    for (i = 0; i < sizeof(pd_fixed) / sizeof(pd_fixed[0]); i++)
        CHECK(strstr(html, pd_fixed[i]) == NULL, "personal data: \"%s\"",
              pd_fixed[i]);
    if (db_path != NULL) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        int n = 0;

        if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) !=
                SQLITE_OK ||
            sqlite3_prepare_v2(db, pd_sql, -1, &st, NULL) != SQLITE_OK) {
            fprintf(stderr, "report_check: cannot query %s: %s\n", db_path,
                    sqlite3_errmsg(db));
            exit(1);
        }
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *s = (const char *)sqlite3_column_text(st, 0);

            if (s != NULL && strlen(s) >= 4)
                CHECK(strstr(html, s) == NULL,
                      "personal/site-only data of the replica: \"%s\"", s);
            n++;
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        /* The replica really holds such data, or the check is empty. */
        CHECK(n >= 10, "%s holds only %d personal values", db_path, n);
    }
    free(html);
}

/* The value of attribute ${name} in the tag starting at ${tag}, or -1. */
static double
attr_num(const char *tag, const char *name)
{
    const char *end = strchr(tag, '>'), *p;
    char want[32];

    snprintf(want, sizeof(want), " %s=\"", name);
    p = strstr(tag, want);
    if (p == NULL || end == NULL || p > end)
        return -1;
    return strtod(p + strlen(want), NULL);
}

static void
check_dom(const char *path, long min_charts)
{
    char *dom = slurp(path, NULL);
    const char *svg = dom, *p;
    long charts = 0;

    check_headings(dom, "the rendered DOM");
    CHECK(strstr(dom, "27.11.2026") != NULL, "DOM lacks the reference date");
    while ((svg = strstr(svg, "<svg")) != NULL) {
        const char *close = strstr(svg, "</svg>");
        long bars = 0;

        CHECK(close != NULL, "unterminated <svg>");
        if (close == NULL)
            break;
        CHECK(attr_num(svg, "width") > 0 && attr_num(svg, "height") > 0,
              "an <svg> without a size: %.80s", svg);
        for (p = svg;
             (p = strstr(p, "<rect class=\"bar\"")) != NULL && p < close; p++) {
            CHECK(attr_num(p, "width") > 0 && attr_num(p, "height") > 0,
                  "a bar without a size: %.100s", p);
            bars++;
        }
        CHECK(bars > 0 || strstr(svg, "<text") != NULL, "an empty chart: %.80s",
              svg);
        CHECK(count(svg, "<text") > 0, "a chart without labels");
        charts += bars > 0;
        svg = close;
    }
    CHECK(charts >= min_charts, "%ld charts with bars, expected >= %ld", charts,
          min_charts);
    free(dom);
}

static unsigned long
be32(const unsigned char *p)
{
    return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 |
           (unsigned long)p[2] << 8 | p[3];
}

static void
check_png(const char *path, unsigned long w, unsigned long h)
{
    size_t len;
    unsigned char *png = (unsigned char *)slurp(path, &len);

    CHECK(len > 33 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0 &&
              memcmp(png + 12, "IHDR", 4) == 0,
          "%s is no PNG", path);
    if (len > 33) {
        CHECK(be32(png + 16) == w && be32(png + 20) == h,
              "%s is %lux%lu, expected %lux%lu", path, be32(png + 16),
              be32(png + 20), w, h);
    }
    /* A blank or single-colour page of this size is a few KB. */
    CHECK(len > 60000, "%s has only %zu bytes: blank page?", path, len);
    free(png);
}

static void
check_log(const char *path)
{
    char *log = slurp(path, NULL), *line, *save = NULL;

    for (line = strtok_r(log, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save))
        CHECK(strstr(line, ":CONSOLE") == NULL &&
                  strstr(line, "Uncaught") == NULL,
              "console message: %.200s", line);
    free(log);
}

static void
check_pdf(const char *path, long min_pages)
{
    size_t len;
    char *pdf = slurp(path, &len);
    /* Chromium (Skia) writes the page dictionaries uncompressed. */
    long pages = (long)count_mem(pdf, len, "/Type /Page") -
                 (long)count_mem(pdf, len, "/Type /Pages");

    CHECK(len > 4 && memcmp(pdf, "%PDF", 4) == 0, "%s is no PDF", path);
    CHECK(pages >= min_pages, "%s has %ld pages, expected >= %ld", path, pages,
          min_pages);
    free(pdf);
}

int
main(int argc, char **argv)
{
    const char *cmd = argc > 2 ? argv[1] : "";

    if (strcmp(cmd, "html") == 0 && (argc == 3 || argc == 4))
        check_html(argv[2], argc == 4 ? argv[3] : NULL);
    else if (strcmp(cmd, "dom") == 0 && argc == 4)
        check_dom(argv[2], strtol(argv[3], NULL, 10));
    else if (strcmp(cmd, "png") == 0 && argc == 5)
        check_png(argv[2], strtoul(argv[3], NULL, 10),
                  strtoul(argv[4], NULL, 10));
    else if (strcmp(cmd, "log") == 0 && argc == 3)
        check_log(argv[2]);
    else if (strcmp(cmd, "pdf") == 0 && argc == 4)
        check_pdf(argv[2], strtol(argv[3], NULL, 10));
    else {
        fputs("usage: report_check html PAGE [DB] | dom DOM MIN_CHARTS | "
              "png PNG W H | log LOG | pdf PDF MIN_PAGES\n",
              stderr);
        return 2;
    }
    return failures ? 1 : 0;
}
