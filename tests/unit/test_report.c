/*
 * test_report.c: the consolidated report (client/report.c) on the sample
 * data: every format is produced, HTML is one self-contained page with the
 * German section headings and SVG charts, no format carries personal data,
 * and CSV and JSON carry the same figures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "err.h"
#include "report.h"

#include "t.h"

#define SCHEMA_PATH KZ_SOURCE_DIR "/client/schema/kinderschutz.sql"
#define SAMPLE_DIR KZ_SHARED_DIR "/sample-data/"
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- fixture ------------------------------------------------------------ */

static void
exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        T_FAIL_("SQL failed: %s\n  in: %.300s", msg ? msg : "?", sql);
}

static sqlite3 *
open_sample(void)
{
    static const char *const files[] = {
        SCHEMA_PATH,
        SAMPLE_DIR "01_reference.sql",
        SAMPLE_DIR "10_site_hannover.sql",
        SAMPLE_DIR "11_site_oldenburg.sql",
        SAMPLE_DIR "12_site_lueneburg.sql",
    };
    sqlite3 *db = NULL;
    size_t i;

    ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
    exec_ok(db, "CREATE TABLE kz_track_decl(tbl TEXT PRIMARY KEY, scope_kind "
                "TEXT NOT NULL CHECK (scope_kind IN ('network','site',"
                "'private')), owner_col TEXT, private_cols TEXT, "
                "cond_private_cols TEXT, cond_private_when TEXT, row_filter "
                "TEXT);");
    for (i = 0; i < N_ELEMS(files); i++) {
        char *sql = t_slurp(files[i], NULL);
        exec_ok(db, sql);
        free(sql);
    }
    return db;
}

/* The report of ${db} in ${fmt} as a NUL-terminated string (caller frees). */
static char *
render(sqlite3 *db, enum report_format fmt)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    const char *why = NULL;
    int rc;

    ASSERT(f != NULL);
    rc = report_write(db, fmt, f, &why);
    if (rc != 0)
        T_FAIL_("report_write(%d): %d (%s)", (int)fmt, rc, why ? why : "?");
    fclose(f);
    ASSERT_GT(len, 100);
    return buf;
}

/* ---- CSV reading (RFC 4180) --------------------------------------------- */

#define CSV_FIELDS 8

/* Parses one record at *${pp} into ${f} (each field malloc'd); returns the
 * number of fields, 0 at the end of input. */
static int
csv_record(const char **pp, char *f[CSV_FIELDS])
{
    const char *p = *pp;
    int n = 0;

    if (*p == '\0')
        return 0;
    for (;;) {
        char *val = malloc(strlen(p) + 1), *o = val;

        ASSERT(val != NULL);
        if (*p == '"') {
            for (p++;; p++) {
                if (*p == '\0')
                    T_FAIL_("unterminated quoted CSV field");
                if (*p == '"') {
                    if (p[1] == '"') {
                        *o++ = '"';
                        p++;
                        continue;
                    }
                    p++;
                    break;
                }
                *o++ = *p;
            }
        } else {
            while (*p != ',' && *p != '\r' && *p != '\n' && *p != '\0') {
                if (*p == '"')
                    T_FAIL_("quote inside an unquoted CSV field");
                *o++ = *p++;
            }
        }
        *o = '\0';
        if (n >= CSV_FIELDS)
            T_FAIL_("CSV record with more than %d fields", CSV_FIELDS);
        f[n++] = val;
        if (*p == ',') {
            p++;
            continue;
        }
        if (p[0] != '\r' || p[1] != '\n')
            T_FAIL_("CSV record not ended by CRLF");
        p += 2;
        break;
    }
    *pp = p;
    return n;
}

/* The CSV value of (table, site, column) in the first row that has it. */
static char *
csv_value(const char *csv, const char *table, const char *site,
          const char *column)
{
    const char *p = csv;
    char *f[CSV_FIELDS], *found = NULL;
    int n, i, first = 1;

    while ((n = csv_record(&p, f)) > 0) {
        ASSERT_EQ(n, CSV_FIELDS);
        if (first) {
            ASSERT_STR_EQ(f[0], "section");
            first = 0;
        } else if (found == NULL && strcmp(f[1], table) == 0 &&
                   strcmp(f[4], site) == 0 && strcmp(f[5], column) == 0) {
            found = f[7];
            f[7] = NULL;
        }
        for (i = 0; i < n; i++)
            free(f[i]);
    }
    if (found == NULL)
        T_FAIL_("CSV has no %s/%s/%s", table, site, column);
    return found;
}

/* ---- JSON reading ------------------------------------------------------- */

/* The rows of table ${table} in the JSON report ${root}. */
static const cJSON *
json_rows(const cJSON *root, const char *table)
{
    const cJSON *sec, *tab;

    cJSON_ArrayForEach(sec, cJSON_GetObjectItem(root, "sections"))
    {
        cJSON_ArrayForEach(tab, cJSON_GetObjectItem(sec, "tables"))
        {
            if (strcmp(cJSON_GetObjectItem(tab, "id")->valuestring, table) == 0)
                return cJSON_GetObjectItem(tab, "rows");
        }
    }
    T_FAIL_("JSON has no table %s", table);
    return NULL;
}

static const cJSON *
json_row(const cJSON *root, const char *table, const char *site)
{
    const cJSON *row;

    cJSON_ArrayForEach(row, json_rows(root, table))
    {
        const cJSON *s = cJSON_GetObjectItem(row, "site_code");
        if (cJSON_IsString(s) && strcmp(s->valuestring, site) == 0)
            return row;
    }
    T_FAIL_("JSON has no row %s/%s", table, site);
    return NULL;
}

static double
json_num(const cJSON *root, const char *table, const char *site,
         const char *column)
{
    const cJSON *v = cJSON_GetObjectItem(json_row(root, table, site), column);

    if (!cJSON_IsNumber(v))
        T_FAIL_("JSON %s/%s/%s is not a number", table, site, column);
    return v->valuedouble;
}

/* ---- tests -------------------------------------------------------------- */

TEST(html_is_one_self_contained_page)
{
    static const char *const headings[] = {
        "Netzwerkpartner nach Sektor",
        "Kooperationsvereinbarungen",
        "Netzwerktreffen",
        "Fortbildungen",
        "Beratungen",
        "Fallanalysen und Maßnahmen",
        "Fördermittel",
    };
    sqlite3 *db = open_sample();
    char *html = render(db, REPORT_HTML);
    const char *p;
    size_t i;

    ASSERT(strncmp(html, "<!DOCTYPE html>", 15) == 0);
    ASSERT(strstr(html, "<html lang=\"de\">") != NULL);
    ASSERT(strstr(html, "<meta charset=\"utf-8\">") != NULL);
    ASSERT(strstr(html, "</html>") != NULL);
    for (i = 0; i < N_ELEMS(headings); i++) {
        char want[128];

        snprintf(want, sizeof(want), "\">%s</h2>", headings[i]);
        if (strstr(html, want) == NULL)
            T_FAIL_("HTML lacks the section heading %s", headings[i]);
    }
    ASSERT(strstr(html, "<svg") != NULL);
    ASSERT(strstr(html, "<rect class=\"bar\"") != NULL);
    ASSERT(strstr(html, "<style>") != NULL);
    ASSERT(strstr(html, "@media print") != NULL);
    ASSERT(strstr(html, "Stichtag: <strong>27.11.2026</strong>") != NULL);
    /* Charts are captioned, scaled and have legends where needed. */
    ASSERT(strstr(html, "<figcaption>Aktive Partner je Standort nach Sektor "
                        "(NZFH)</figcaption>") != NULL);
    ASSERT(strstr(html, "class=\"axis\"") != NULL);
    ASSERT(strstr(html, ">Überprüfung überfällig</text>") != NULL);
    /* DP-03: suppressed cells are marked, never blank. */
    ASSERT(strstr(html, "<td class=\"n supp\">&lt;\xC2\xA0"
                        "3</td>") != NULL);
    /* Codes are labelled in German; dates in German notation. */
    ASSERT(strstr(html, "Gefährdungseinschätzung") != NULL);
    ASSERT(strstr(html, ">risk_assessment<") == NULL);
    ASSERT(strstr(html, "15.02.2026") != NULL);
    ASSERT(strstr(html, "HAN</strong> – Koordinierungszentrum") != NULL);
    /* Nothing is fetched: no URL at all, no src=, links only in-page. */
    ASSERT(strstr(html, "http") == NULL);
    ASSERT(strstr(html, "src=") == NULL);
    ASSERT(strstr(html, "<link") == NULL);
    ASSERT(strstr(html, "<script") == NULL);
    ASSERT(strstr(html, "url(") == NULL);
    ASSERT(strstr(html, "@import") == NULL);
    for (p = html; (p = strstr(p, "href=")) != NULL; p++)
        if (strncmp(p, "href=\"#", 7) != 0)
            T_FAIL_("external link: %.60s", p);
    /* Figures in German notation, totals labelled. */
    ASSERT(strstr(html, "66,7\xC2\xA0%") != NULL);
    ASSERT(strstr(html, "Gesamt") != NULL);
    free(html);
    sqlite3_close(db);
}

/* Escaping: a network name with markup comes out as text. */
TEST(html_escapes_data)
{
    sqlite3 *db = open_sample();
    char *html;

    exec_ok(db, "UPDATE network SET name = '<b>A&B \"x\" ''y''</b>' WHERE "
                "id = '17f4a4d9-d1ed-5304-860c-48639fcbe6bf'");
    html = render(db, REPORT_HTML);
    ASSERT(strstr(html, "<b>A&B") == NULL);
    ASSERT(
        strstr(html, "&lt;b&gt;A&amp;B &quot;x&quot; &#39;y&#39;&lt;/b&gt;") !=
        NULL);
    free(html);
    sqlite3_close(db);
}

/* Strings of personal or site-only data that no report may contain. */
static const char *const pd_sql =
    "SELECT first_name || ' ' || last_name FROM contact"
    " UNION SELECT email FROM contact WHERE email IS NOT NULL"
    " UNION SELECT phone FROM contact WHERE phone IS NOT NULL"
    " UNION SELECT username FROM app_user"
    " UNION SELECT display_name FROM app_user"
    " UNION SELECT email FROM app_user WHERE email IS NOT NULL"
    " UNION SELECT first_name || ' ' || last_name FROM training_participant"
    " UNION SELECT name FROM institution WHERE is_natural_person = 1"
    " UNION SELECT sponsor_name FROM institution WHERE is_natural_person = 1"
    " UNION SELECT email FROM institution WHERE email IS NOT NULL"
    " UNION SELECT outcome_note FROM consultation WHERE outcome_note"
    " IS NOT NULL"
    " UNION SELECT summary_anonymised FROM case_review WHERE"
    " summary_anonymised IS NOT NULL"
    " UNION SELECT statement FROM case_review_finding"
    " UNION SELECT review_code FROM case_review WHERE released_to_state = 0"
    " UNION SELECT title FROM measure WHERE case_review_id IN (SELECT id"
    " FROM case_review WHERE released_to_state = 0)";

/* Names from the sample files, as a fixed list too (domain.md DP-16). */
static const char *const pd_fixed[] = {
    "Jana Ostermann",      "Miriam Lühmann", "m.luehmann",     "Tobias Kessler",
    "t.kessler",           "Timo Niemeyer",  "Nadine Garbers", "Wiegenlied",
    "kz-hannover.example", ".example",       "mailto:",
};

static void
assert_no_personal_data(sqlite3 *db, const char *text, const char *what)
{
    sqlite3_stmt *st = NULL;
    size_t i;
    int n = 0;

    for (i = 0; i < N_ELEMS(pd_fixed); i++)
        if (strstr(text, pd_fixed[i]) != NULL)
            T_FAIL_("%s contains personal data \"%s\"", what, pd_fixed[i]);
    ASSERT_EQ(sqlite3_prepare_v2(db, pd_sql, -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(st, 0);

        if (s != NULL && strlen(s) >= 4 && strstr(text, s) != NULL)
            T_FAIL_("%s contains personal/site-only data \"%s\"", what, s);
        n++;
    }
    sqlite3_finalize(st);
    ASSERT_GT(n, 60); /* the list really holds the sample's data */
}

TEST(no_personal_data_in_any_format)
{
    sqlite3 *db = open_sample();
    enum report_format fmts[] = {REPORT_HTML, REPORT_CSV, REPORT_JSON};
    const char *names[] = {"HTML", "CSV", "JSON"};
    size_t i;

    for (i = 0; i < N_ELEMS(fmts); i++) {
        char *text = render(db, fmts[i]);

        assert_no_personal_data(db, text, names[i]);
        free(text);
    }
    sqlite3_close(db);
}

/* On the state office's projection the report is byte for byte the same. */
TEST(same_report_on_state_projection)
{
    sqlite3 *db = open_sample();
    enum report_format fmts[] = {REPORT_HTML, REPORT_CSV, REPORT_JSON};
    char *before[3];
    size_t i;

    for (i = 0; i < N_ELEMS(fmts); i++)
        before[i] = render(db, fmts[i]);
    /* What the state office cannot decrypt (kz_track_decl). */
    exec_ok(db,
            "PRAGMA foreign_keys = OFF;"
            "DELETE FROM contact; DELETE FROM app_user;"
            "DELETE FROM training_participant; DELETE FROM audit_log;"
            "UPDATE institution SET notes = NULL;"
            "UPDATE institution SET name = NULL, short_name = NULL,"
            " sponsor_name = NULL, street = NULL, postal_code = NULL,"
            " phone = NULL, email = NULL, website = NULL"
            " WHERE is_natural_person = 1;"
            "UPDATE network SET coordinator_user_id = NULL;"
            "UPDATE network_membership SET delegate_contact_id = NULL;"
            "UPDATE network_event SET notes = NULL, minutes_document_id = NULL"
            " WHERE minutes_document_id IN (SELECT id FROM document WHERE"
            " contains_personal_data = 1);"
            "UPDATE consultation SET outcome_note = NULL;"
            "UPDATE case_review SET summary_anonymised = NULL,"
            " anonymisation_checked_by = NULL;"
            "UPDATE case_review_finding SET statement = NULL"
            " WHERE released_to_state = 0;"
            "DELETE FROM measure_recommendation WHERE measure_id IN (SELECT id"
            " FROM measure WHERE case_review_id IN (SELECT id FROM"
            " case_review WHERE released_to_state = 0));"
            "DELETE FROM measure WHERE case_review_id IN (SELECT id FROM"
            " case_review WHERE released_to_state = 0);"
            "DELETE FROM case_review_finding WHERE case_review_id IN (SELECT"
            " id FROM case_review WHERE released_to_state = 0);"
            "DELETE FROM case_review_sector WHERE case_review_id IN (SELECT"
            " id FROM case_review WHERE released_to_state = 0);"
            "DELETE FROM case_review WHERE released_to_state = 0;"
            "DELETE FROM document WHERE contains_personal_data = 1;"
            "UPDATE document SET file_ref = NULL;");
    for (i = 0; i < N_ELEMS(fmts); i++) {
        char *after = render(db, fmts[i]);

        if (strcmp(before[i], after) != 0)
            T_FAIL_("format %zu differs on the projection", i);
        free(after);
        free(before[i]);
    }
    sqlite3_close(db);
}

TEST(csv_and_json_carry_the_same_figures)
{
    static const struct {
        const char *table, *site, *column;
        double want;
    } figures[] = {
        {"agreements_by_site", "HAN", "reviews_overdue", 2},
        {"agreements_by_site", "OL", "reviews_overdue", 1},
        {"agreements_by_site", "LG", "reviews_due_90d", 2},
        {"agreements_by_site", "ALL", "reviews_overdue", 3},
        {"measures", "HAN", "implementation_rate_pct", 40.0},
        {"measures", "OL", "implementation_rate_pct", 66.7},
        {"measures", "OL", "overdue", 1},
        {"measures", "ALL", "measures", 9},
        {"partners_by_site", "HAN", "partners", 12},
        {"partners_by_site", "ALL", "partners", 31},
        {"funding_by_site", "HAN", "granted_eur", 70000},
        {"case_reviews", "ALL", "reviews", 2},
    };
    sqlite3 *db = open_sample();
    char *csv = render(db, REPORT_CSV);
    char *json = render(db, REPORT_JSON);
    cJSON *root = cJSON_Parse(json);
    size_t i;

    ASSERT(root != NULL);
    for (i = 0; i < N_ELEMS(figures); i++) {
        char *v = csv_value(csv, figures[i].table, figures[i].site,
                            figures[i].column);
        double c = strtod(v, NULL);
        double j = json_num(root, figures[i].table, figures[i].site,
                            figures[i].column);

        if (c != j || c != figures[i].want)
            T_FAIL_("%s/%s/%s: CSV %s, JSON %g, expected %g", figures[i].table,
                    figures[i].site, figures[i].column, v, j, figures[i].want);
        free(v);
    }
    cJSON_Delete(root);
    free(json);
    free(csv);
    sqlite3_close(db);
}

/* Every row of ${table} in the JSON of ${root}: its ${column} against
 * ${sql} (?1 the row's site_code, 'ALL' for the total; ?2 its year), run on
 * ${db}; returns how many rows were compared. */
static int
rows_match_records(const cJSON *root, sqlite3 *db, const char *table,
                   const char *column, const char *sql)
{
    const cJSON *row;
    sqlite3_stmt *st = NULL;
    int n = 0;

    ASSERT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    cJSON_ArrayForEach(row, json_rows(root, table))
    {
        const cJSON *site = cJSON_GetObjectItem(row, "site_code");
        const cJSON *year = cJSON_GetObjectItem(row, "year");
        const cJSON *v = cJSON_GetObjectItem(row, column);
        double want;

        ASSERT(cJSON_IsString(site) && cJSON_IsString(year));
        ASSERT(cJSON_IsNumber(v));
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, site->valuestring, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, year->valuestring, -1, SQLITE_STATIC);
        ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
        want = sqlite3_column_double(st, 0);
        if (v->valuedouble != want)
            T_FAIL_("%s/%s/%s/%s: %g, from the records %g", table,
                    site->valuestring, year->valuestring, column,
                    v->valuedouble, want);
        n++;
    }
    sqlite3_finalize(st);
    return n;
}

/* Shares and hours in total (and per site, from hours per kind) come from
 * the records, not from figures rounded already: the sample's trainings
 * give 57.1 % in 2026 (4 of 7), not 57.2 from the sites' 50, 50 and 66.7;
 * three consultations of 45 minutes give 2.3 hours, not 2.4 from 0.8 per
 * kind. */
TEST(totals_come_from_the_records_not_from_rounded_figures)
{
    sqlite3 *db = open_sample();
    char *json;
    cJSON *root;

    exec_ok(db, "UPDATE consultation SET duration_minutes = 45 WHERE site_id"
                " = (SELECT id FROM site WHERE code = 'OL')");
    json = render(db, REPORT_JSON);
    root = cJSON_Parse(json);
    ASSERT(root != NULL);
    ASSERT_GT(rows_match_records(
                  root, db, "trainings_by_site", "interdisciplinary_pct",
                  "SELECT ROUND(AVG(is_interdisciplinary) * 100, 1) FROM"
                  " v_training_held WHERE ?1 IN ('ALL', site_code) AND"
                  " year = ?2"),
              3);
    ASSERT_GT(rows_match_records(
                  root, db, "consultations_by_site", "hours",
                  "SELECT ROUND(SUM(c.duration_minutes) / 60.0, 1) FROM"
                  " consultation c JOIN site s ON s.id = c.site_id WHERE"
                  " ?1 IN ('ALL', s.code) AND strftime('%Y',"
                  " c.consultation_date) = ?2 AND c.consultation_date <="
                  " (SELECT as_of FROM v_as_of)"),
              3);
    ASSERT_EQ(json_num(root, "consultations_by_site", "OL", "hours"), 2.3);
    cJSON_Delete(root);
    free(json);
    sqlite3_close(db);
}

/* The sum of ${column} over the rows of ${table} for ${site} whose ${key}
 * (a string) is ${val}; every row of the site when ${key} is NULL. */
static double
json_sum(const cJSON *root, const char *table, const char *site,
         const char *key, const char *val, const char *column)
{
    const cJSON *row;
    double sum = 0;
    int found = 0;

    cJSON_ArrayForEach(row, json_rows(root, table))
    {
        const cJSON *s = cJSON_GetObjectItem(row, "site_code");
        const cJSON *k = key ? cJSON_GetObjectItem(row, key) : NULL;
        const cJSON *v = cJSON_GetObjectItem(row, column);
        if (!cJSON_IsString(s) || strcmp(s->valuestring, site) != 0)
            continue;
        if (key && (!cJSON_IsString(k) || strcmp(k->valuestring, val)))
            continue;
        ASSERT(cJSON_IsNumber(v));
        sum += v->valuedouble;
        found++;
    }
    if (!found)
        T_FAIL_("JSON has no row %s/%s/%s", table, site, val ? val : "");
    return sum;
}

/* The breakdowns domain.md names, on the sample: partners per
 * municipality, meetings per event type, findings per site and year,
 * recommendations per site (with those without a measure). */
TEST(breakdowns_by_municipality_type_year_and_site)
{
    sqlite3 *db = open_sample();
    char *json = render(db, REPORT_JSON);
    cJSON *root = cJSON_Parse(json);

    ASSERT(root != NULL);
    ASSERT_EQ(json_sum(root, "partners_by_municipality", "HAN", "ags",
                       "03241001", "kjh"),
              3);
    ASSERT_EQ(json_sum(root, "partners_by_municipality", "HAN", "ags",
                       "03241001", "partners"),
              8);
    ASSERT_EQ(json_sum(root, "partners_by_municipality", "HAN", NULL, NULL,
                       "partners"),
              json_num(root, "partners_by_site", "HAN", "partners"));
    ASSERT_EQ(json_sum(root, "meetings_by_type", "HAN", "event_type",
                       "Treffen Sozialraumbündnis", "meetings"),
              2);
    ASSERT_EQ(json_sum(root, "meetings_by_type", "HAN", "event_type",
                       "Treffen Sozialraumbündnis", "participants"),
              74);
    ASSERT_EQ(
        json_sum(root, "meetings_by_type", "ALL", NULL, NULL, "participants"),
        json_sum(root, "meetings_by_site", "ALL", NULL, NULL, "participants"));
    ASSERT_EQ(
        json_sum(root, "findings_by_site", "HAN", NULL, NULL, "findings") +
            json_sum(root, "findings_by_site", "OL", NULL, NULL, "findings"),
        json_sum(root, "findings", "ALL", NULL, NULL, "findings"));
    ASSERT_EQ(json_sum(root, "recommendations_by_site", "HAN", NULL, NULL,
                       "measures"),
              5);
    ASSERT_EQ(json_sum(root, "recommendations_by_site", "HAN", NULL, NULL,
                       "implemented"),
              1);
    ASSERT_EQ(json_sum(root, "recommendations_by_site", "LG", NULL, NULL,
                       "measures") +
                  json_sum(root, "recommendations_by_site", "OL", NULL, NULL,
                           "measures") +
                  json_sum(root, "recommendations_by_site", "HAN", NULL, NULL,
                           "measures"),
              json_sum(root, "recommendations", "ALL", NULL, NULL, "measures"));
    cJSON_Delete(root);
    free(json);
    sqlite3_close(db);
}

TEST(json_parses_with_cjson)
{
    sqlite3 *db = open_sample();
    char *json = render(db, REPORT_JSON);
    cJSON *root = cJSON_Parse(json);
    const cJSON *secs, *sec, *tab, *row;
    int n_sec = 0, n_supp = 0;

    ASSERT(root != NULL);
    ASSERT_STR_EQ(cJSON_GetObjectItem(root, "as_of")->valuestring,
                  "2026-11-27");
    secs = cJSON_GetObjectItem(root, "sections");
    ASSERT(cJSON_IsArray(secs));
    cJSON_ArrayForEach(sec, secs)
    {
        ASSERT(cJSON_IsString(cJSON_GetObjectItem(sec, "title")));
        cJSON_ArrayForEach(tab, cJSON_GetObjectItem(sec, "tables"))
        {
            ASSERT(cJSON_IsArray(cJSON_GetObjectItem(tab, "columns")));
            if (strcmp(cJSON_GetObjectItem(tab, "id")->valuestring,
                       "reviews_by_risk_type") != 0)
                continue;
            /* DP-03: every cell suppressed, the count is null. */
            cJSON_ArrayForEach(row, cJSON_GetObjectItem(tab, "rows"))
            {
                ASSERT(cJSON_IsNull(cJSON_GetObjectItem(row, "reviews")));
                ASSERT_EQ(cJSON_GetObjectItem(row, "suppressed")->valueint, 1);
                n_supp++;
            }
        }
        n_sec++;
    }
    ASSERT_EQ(n_sec, 7);
    ASSERT_EQ(n_supp, 4);
    cJSON_Delete(root);
    free(json);
    sqlite3_close(db);
}

TEST(csv_is_rfc4180)
{
    sqlite3 *db = open_sample();
    char *csv, *v;

    /* A title with a comma and a quote must be quoted and doubled. */
    exec_ok(db, "UPDATE agreement SET title = 'Vereinbarung \"A\", Teil 2' "
                "WHERE id = '5b52bc12-e72f-5548-93f0-7ae02e1243df'");
    csv = render(db, REPORT_CSV);
    ASSERT(strstr(csv, "\"Vereinbarung \"\"A\"\", Teil 2\"") != NULL);
    v = csv_value(csv, "agreement_reviews_due", "HAN", "title");
    ASSERT_STR_EQ(v, "Vereinbarung \"A\", Teil 2");
    free(v);
    /* Suppressed cells are empty fields. */
    v = csv_value(csv, "reviews_by_risk_type", "ALL", "reviews");
    ASSERT_STR_EQ(v, "");
    free(v);
    free(csv);
    sqlite3_close(db);
}

TEST(errors_are_reported)
{
    sqlite3 *db = NULL;
    const char *why = NULL;
    enum report_format fmt = REPORT_CSV;
    FILE *f = fopen("/dev/null", "w");

    ASSERT(f != NULL);
    ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
    ASSERT_EQ(report_write(db, REPORT_HTML, f, &why), -KZ_EDB);
    ASSERT(why != NULL && strstr(why, "schema") != NULL);
    ASSERT_EQ(report_write(db, REPORT_HTML, NULL, NULL), -KZ_EINVAL);
    ASSERT_EQ(report_write(NULL, REPORT_HTML, f, NULL), -KZ_EINVAL);
    ASSERT_EQ(report_write(db, (enum report_format)42, f, NULL), -KZ_EINVAL);
    ASSERT_EQ(report_format_parse("json", &fmt), 0);
    ASSERT_EQ(fmt, REPORT_JSON);
    ASSERT_EQ(report_format_parse("HTML", &fmt), -KZ_EINVAL);
    ASSERT_EQ(report_format_parse(NULL, &fmt), -KZ_EINVAL);
    ASSERT_EQ(fmt, REPORT_JSON);
    /* No transaction is left open. */
    ASSERT_EQ(sqlite3_get_autocommit(db), 1);
    sqlite3_close(db);
    fclose(f);
}

T_MAIN(T(html_is_one_self_contained_page), T(html_escapes_data),
       T(no_personal_data_in_any_format), T(same_report_on_state_projection),
       T(csv_and_json_carry_the_same_figures),
       T(totals_come_from_the_records_not_from_rounded_figures),
       T(breakdowns_by_municipality_type_year_and_site),
       T(json_parses_with_cjson), T(csv_is_rfc4180), T(errors_are_reported))
