/*
 * test_schema.c: the shipped Kinderschutz schema (client/schema/
 * kinderschutz.sql) against domain.md §2-§4 and the sample data.
 *
 * Every test builds a fresh in-memory replica: the engine's declaration
 * table kz_track_decl, then the schema file, then the four sample files
 * unchanged (they carry their own BEGIN/COMMIT and PRAGMA foreign_keys).
 * The core test is projection_keeps_indicators: the state office's replica
 * (no private tables, no private columns, no unreleased rows) must give
 * exactly the same v_ind* rows as a site's full replica.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "t.h"

#define SCHEMA_PATH KZ_SOURCE_DIR "/client/schema/kinderschutz.sql"
#define SAMPLE_DIR KZ_SHARED_DIR "/sample-data/"
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* The engine creates this table before it runs the schema file. */
static const char decl_sql[] =
    "CREATE TABLE kz_track_decl(tbl TEXT PRIMARY KEY, scope_kind TEXT NOT "
    "NULL CHECK (scope_kind IN ('network','site','private')), owner_col "
    "TEXT, private_cols TEXT, cond_private_cols TEXT, cond_private_when "
    "TEXT, row_filter TEXT);";

static const char *const sample_files[] = {
    "01_reference.sql",
    "10_site_hannover.sql",
    "11_site_oldenburg.sql",
    "12_site_lueneburg.sql",
};

/* ---- helpers ------------------------------------------------------------ */

static void
exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        T_FAIL_("SQL failed: %s\n  in: %.300s", msg ? msg : "?", sql);
}

static void
exec_file(sqlite3 *db, const char *path)
{
    char *sql = t_slurp(path, NULL);
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        T_FAIL_("%s: %s", path, msg ? msg : "?");
    free(sql);
}

/* The schema only, on an empty database. */
static sqlite3 *
open_schema(void)
{
    sqlite3 *db = NULL;

    ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
    exec_ok(db, decl_sql);
    exec_file(db, SCHEMA_PATH);
    return db;
}

/* The schema plus the four sample files, in the README's order. */
static sqlite3 *
open_sample(void)
{
    sqlite3 *db = open_schema();
    char path[1024];
    size_t i;

    for (i = 0; i < N_ELEMS(sample_files); i++) {
        snprintf(path, sizeof(path), "%s%s", SAMPLE_DIR, sample_files[i]);
        exec_file(db, path);
    }
    return db;
}

/* One integer from a query with optional text parameter ${arg}. */
static long long
q_int(sqlite3 *db, const char *sql, const char *arg)
{
    sqlite3_stmt *st = NULL;
    long long v;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        T_FAIL_("prepare: %s\n  in: %s", sqlite3_errmsg(db), sql);
    if (arg != NULL)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW)
        T_FAIL_("no row: %s\n  in: %s", sqlite3_errmsg(db), sql);
    v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1
                                                  : sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The whole result of ${sql} as text, one line per row ("NULL" for NULL). */
static char *
q_dump(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    int rc, i, n;

    ASSERT(f != NULL);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        T_FAIL_("prepare: %s\n  in: %s", sqlite3_errmsg(db), sql);
    n = sqlite3_column_count(st);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (i = 0; i < n; i++) {
            const unsigned char *v = sqlite3_column_text(st, i);
            fprintf(f, "%s%s", i ? "|" : "", v ? (const char *)v : "NULL");
        }
        fputc('\n', f);
    }
    if (rc != SQLITE_DONE)
        T_FAIL_("step: %s\n  in: %s", sqlite3_errmsg(db), sql);
    sqlite3_finalize(st);
    fclose(f);
    return out;
}

/* ASSERT_DUMP_EQ((db, sql), want): q_dump's text equals ${want}. */
#define ASSERT_DUMP_EQ(args, want)                                             \
    do {                                                                       \
        char *d_ = q_dump args;                                                \
        ASSERT_STR_EQ(d_, want);                                               \
        free(d_);                                                              \
    } while (0)

/* Does column ${col} exist in table ${tbl}? */
static int
has_column(sqlite3 *db, const char *tbl, const char *col)
{
    char sql[256];

    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*) FROM pragma_table_info('%s') WHERE name = ?",
             tbl);
    return q_int(db, sql, col) == 1;
}

/* Calls ${fn} for every name of the comma list ${list} (spaces trimmed). */
static void
each_name(const char *list, void (*fn)(const char *name, void *data),
          void *data)
{
    char buf[512];
    char *p, *tok, *save = NULL;

    if (list == NULL)
        return;
    snprintf(buf, sizeof(buf), "%s", list);
    for (tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        p = tok + strlen(tok);
        while (p > tok && isspace((unsigned char)p[-1]))
            *--p = '\0';
        fn(tok, data);
    }
}

/* Runs ${sql} and expects a constraint error whose message has ${needle}. */
static void
expect_refused(sqlite3 *db, const char *sql, const char *needle)
{
    char *msg = NULL;
    int rc;

    exec_ok(db, "SAVEPOINT t");
    rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        T_FAIL_("accepted, expected refusal by %s:\n  %s", needle, sql);
    if (msg == NULL || strstr(msg, needle) == NULL)
        T_FAIL_("refused with \"%s\", expected %s:\n  %s", msg ? msg : "?",
                needle, sql);
    sqlite3_free(msg);
    exec_ok(db, "ROLLBACK TO t; RELEASE t");
}

/* ---- row counts --------------------------------------------------------- */

struct count {
    const char *tbl;
    int han, ol, lg;
};

/* sample-data/README.md, "Rows (HAN / OL / LG)". */
static const struct count site_counts[] = {
    {"institution", 12, 10, 9},
    {"contact", 22, 20, 18},
    {"agreement", 4, 3, 3},
    {"network_event", 6, 5, 4},
    {"training", 3, 3, 2},
    {"consultation", 4, 3, 3},
    {"case_review", 2, 2, 1},
    {"network", 3, 2, 2},
    {"network_membership", 23, 13, 14},
    {"measure", 5, 3, 3},
    {"funding_grant", 2, 1, 2},
};

TEST(sample_row_counts)
{
    sqlite3 *db = open_sample();
    const char *codes[] = {"HAN", "OL", "LG"};
    char sql[256];
    size_t i, k;

    for (i = 0; i < N_ELEMS(site_counts); i++) {
        const int want[] = {site_counts[i].han, site_counts[i].ol,
                            site_counts[i].lg};
        snprintf(sql, sizeof(sql),
                 "SELECT COUNT(*) FROM %s t JOIN site s ON s.id = t.site_id "
                 "WHERE s.code = ?",
                 site_counts[i].tbl);
        for (k = 0; k < 3; k++) {
            long long got = q_int(db, sql, codes[k]);
            if (got != want[k])
                T_FAIL_("%s at %s: %lld rows, README says %d",
                        site_counts[i].tbl, codes[k], got, want[k]);
        }
    }
    /* 01_reference.sql, per the README. */
    ASSERT_EQ(q_int(db, "SELECT COUNT(*) FROM site", NULL), 5);
    ASSERT_EQ(q_int(db, "SELECT COUNT(*) FROM municipality", NULL), 17);
    ASSERT_EQ(q_int(db, "SELECT COUNT(*) FROM institution_type", NULL), 40);
    ASSERT_EQ(q_int(db, "SELECT COUNT(*) FROM recommendation", NULL), 8);
    ASSERT_EQ(q_int(db, "SELECT COUNT(*) FROM retention_rule", NULL), 10);
    ASSERT_EQ(q_int(db,
                    "SELECT COUNT(*) FROM code_list WHERE list_name = "
                    "'kkg_3_2_category'",
                    NULL),
              18);
    ASSERT_EQ(q_int(db,
                    "SELECT COUNT(*) FROM institution_type WHERE "
                    "kkg_3_2_category IS NOT NULL",
                    NULL) > 0,
              1);
    ASSERT_EQ(q_int(db,
                    "SELECT COUNT(*) FROM v_as_of WHERE as_of = "
                    "'2026-11-27'",
                    NULL),
              1);
    sqlite3_close(db);
}

TEST(foreign_keys_hold)
{
    sqlite3 *db = open_sample();
    char *fk = q_dump(db, "PRAGMA foreign_key_check");

    if (fk[0] != '\0')
        T_FAIL_("foreign_key_check:\n%s", fk);
    free(fk);
    ASSERT_DUMP_EQ((db, "PRAGMA integrity_check"), "ok\n");
    sqlite3_close(db);
}

/* Every foreign key of the schema is DEFERRABLE INITIALLY DEFERRED. */
TEST(foreign_keys_deferred)
{
    sqlite3 *db = open_schema();
    char *bad = q_dump(
        db, "SELECT m.name FROM sqlite_master m WHERE m.type = 'table' "
            "AND m.sql LIKE '%REFERENCES%' AND (length(m.sql) - "
            "length(replace(m.sql, 'REFERENCES', ''))) / 10 <> "
            "(length(m.sql) - length(replace(m.sql, 'DEFERRABLE INITIALLY "
            "DEFERRED', ''))) / 29");
    char *msg = NULL;

    if (bad[0] != '\0')
        T_FAIL_("tables with a non-deferred foreign key:\n%s", bad);
    free(bad);
    sqlite3_close(db);

    /* Behaviour: a dangling key is accepted inside the transaction and
     * refused only at COMMIT. */
    db = open_sample();
    exec_ok(db, "BEGIN; INSERT INTO measure_recommendation (id, site_id, "
                "measure_id, recommendation_id) VALUES ('x1', "
                "'ff0b6321-e6d0-522f-bb7f-e3b4bd7809a4', 'no-such-measure', "
                "'ce47f1f5-4f03-5343-a687-c5a3f2f00aae')");
    ASSERT_EQ(sqlite3_exec(db, "COMMIT", NULL, NULL, &msg), SQLITE_CONSTRAINT);
    ASSERT(msg != NULL && strstr(msg, "FOREIGN KEY") != NULL);
    sqlite3_free(msg);
    exec_ok(db, "ROLLBACK");
    sqlite3_close(db);
}

/* ---- orientation figures of domain.md §3 -------------------------------- */

TEST(orientation_ind05_reviews)
{
    sqlite3 *db = open_sample();

    ASSERT_DUMP_EQ((db, "SELECT site_code, status, review_state, days_overdue "
                        "FROM v_ind05_agreement_reviews WHERE review_state <> "
                        "'ok' ORDER BY site_code, days_overdue DESC"),
                   "HAN|in_force|overdue|285\n"
                   "HAN|under_review|overdue|210\n"
                   "LG|in_force|due_90d|NULL\n"
                   "LG|in_force|due_90d|NULL\n"
                   "OL|in_force|overdue|78\n");
    sqlite3_close(db);
}

TEST(orientation_ind11_measures)
{
    sqlite3 *db = open_sample();

    ASSERT_DUMP_EQ(
        (db, "SELECT site_code, measures, implemented, overdue, "
             "printf('%.1f', implementation_rate_pct) FROM "
             "v_ind11_measures ORDER BY site_code"),
        "HAN|5|2|1|40.0\n"
        "LG|1|1|0|100.0\n" /* only the recommendation-driven measure */
        "OL|3|2|1|66.7\n");
    sqlite3_close(db);
}

TEST(orientation_ind10cd_suppressed)
{
    sqlite3 *db = open_sample();

    ASSERT_EQ(q_int(db, "SELECT COUNT(*) FROM v_ind10_case_reviews", NULL), 4);
    ASSERT_EQ(q_int(db, "SELECT SUM(reviews) FROM v_ind10_case_reviews", NULL),
              4);
    ASSERT_EQ(
        q_int(db, "SELECT COUNT(*) FROM v_ind10c_reviews_by_risk_type", NULL),
        4);
    ASSERT_EQ(q_int(db,
                    "SELECT COUNT(*) FROM v_ind10c_reviews_by_risk_type "
                    "WHERE reviews IS NOT NULL OR suppressed <> 1 OR "
                    "site_code <> 'ALL'",
                    NULL),
              0);
    ASSERT_EQ(
        q_int(db, "SELECT COUNT(*) FROM v_ind10d_reviews_by_age_band", NULL),
        4);
    ASSERT_EQ(q_int(db,
                    "SELECT COUNT(*) FROM v_ind10d_reviews_by_age_band "
                    "WHERE reviews IS NOT NULL OR suppressed <> 1 OR "
                    "site_code <> 'ALL'",
                    NULL),
              0);
    /* The unreleased LG review counts nowhere. */
    ASSERT_EQ(q_int(db,
                    "SELECT COUNT(*) FROM v_ind10_case_reviews WHERE "
                    "site_code = 'LG'",
                    NULL),
              0);
    ASSERT_EQ(q_int(db,
                    "SELECT COUNT(*) FROM v_ind10b_findings WHERE "
                    "site_code = 'LG'",
                    NULL),
              0);
    sqlite3_close(db);
}

/* Three released reviews in one cell are shown; the cell is not suppressed. */
TEST(ind10c_shows_cells_of_three)
{
    sqlite3 *db = open_sample();
    int i;
    char sql[512];

    for (i = 0; i < 3; i++) {
        snprintf(sql, sizeof(sql),
                 "INSERT INTO case_review (id, site_id, review_code, "
                 "review_year, method, trigger_kind, child_age_band, "
                 "risk_type, status, anonymisation_checked, "
                 "released_to_state) VALUES ('cr%d', "
                 "'ff0b6321-e6d0-522f-bb7f-e3b4bd7809a4', 'FA-T-%d', 2024, "
                 "'other', 'routine_case', '3_to_6', 'neglect', "
                 "'completed', 1, 1)",
                 i, i);
        exec_ok(db, sql);
    }
    ASSERT_DUMP_EQ((db, "SELECT reviews, suppressed FROM "
                        "v_ind10c_reviews_by_risk_type WHERE "
                        "review_year = 2024"),
                   "3|0\n");
    sqlite3_close(db);
}

/* ---- constraints -------------------------------------------------------- */

/* The number of constraints named *_enum or *_bool in the schema. */
static int
count_named_checks(sqlite3 *db)
{
    char *all = q_dump(db, "SELECT sql FROM sqlite_master WHERE type = "
                           "'table' AND name NOT LIKE 'kz_%'");
    const char *p = all;
    int n = 0;

    while ((p = strstr(p, "CONSTRAINT ")) != NULL) {
        size_t len;

        p += strlen("CONSTRAINT ");
        len = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
        if (len > 5 && (strncmp(p + len - 5, "_enum", 5) == 0 ||
                        strncmp(p + len - 5, "_bool", 5) == 0))
            n++;
    }
    free(all);
    return n;
}

/* Every column with a named enum/bool CHECK refuses a bad value. */
TEST(every_enum_and_bool_refuses_bad_value)
{
    sqlite3 *db = open_sample();
    sqlite3_stmt *st = NULL;
    int tested = 0;

    /* The append-only trigger would refuse first; CHECKs are the subject. */
    exec_ok(db, "DROP TRIGGER audit_log_append_only");
    ASSERT_EQ(sqlite3_prepare_v2(
                  db,
                  "SELECT m.name, c.name, m.sql FROM sqlite_master m, "
                  "pragma_table_info(m.name) c WHERE m.type = 'table' AND "
                  "m.name NOT LIKE 'kz_%' AND m.name NOT LIKE 'sqlite_%'",
                  -1, &st, NULL),
              SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *tbl = (const char *)sqlite3_column_text(st, 0);
        const char *col = (const char *)sqlite3_column_text(st, 1);
        const char *ddl = (const char *)sqlite3_column_text(st, 2);
        char name[160], sql[512], cnt[256];
        int is_bool;

        for (is_bool = 0; is_bool < 2; is_bool++) {
            snprintf(name, sizeof(name), "%s_%s_%s", tbl, col,
                     is_bool ? "bool" : "enum");
            if (strstr(ddl, name) == NULL)
                continue;
            snprintf(cnt, sizeof(cnt), "SELECT COUNT(*) FROM %s", tbl);
            if (q_int(db, cnt, NULL) == 0)
                T_FAIL_("%s has no sample row to test %s", tbl, name);
            snprintf(sql, sizeof(sql),
                     "UPDATE %s SET %s = %s WHERE rowid = (SELECT MIN(rowid) "
                     "FROM %s)",
                     tbl, col, is_bool ? "2" : "'no_such_code'", tbl);
            expect_refused(db, sql, name);
            tested++;
        }
    }
    sqlite3_finalize(st);
    /* Every named enum/bool constraint of the schema was exercised. */
    ASSERT_EQ(tested, count_named_checks(db));
    ASSERT_GE(tested, 41); /* at least one per §2.6 list */
    sqlite3_close(db);
}

TEST(named_constraints_refuse)
{
    sqlite3 *db = open_sample();

    /* DP-01: an anonymous case consultation names no institution. */
    expect_refused(
        db,
        "INSERT INTO consultation (id, site_id, consultation_kind, "
        "consultation_date, requesting_institution_id, topic, event_format) "
        "VALUES ('c-x', 'ff0b6321-e6d0-522f-bb7f-e3b4bd7809a4', "
        "'anonymous_case_consultation', '2026-01-01', "
        "'3319cce9-a063-56e8-97f4-cec9a35e411d', 'risk_assessment_anonymous', "
        "'online')",
        "dp01_anonymous_consultation_no_institution");
    expect_refused(db,
                   "UPDATE consultation SET requesting_institution_id = "
                   "'3319cce9-a063-56e8-97f4-cec9a35e411d' WHERE "
                   "consultation_kind = 'anonymous_case_consultation'",
                   "dp01_anonymous_consultation_no_institution");
    /* DP-01: month only. */
    expect_refused(db,
                   "UPDATE case_review SET completed_month = '2025-11-14' "
                   "WHERE review_code = 'FA-HAN-2025-01'",
                   "dp01_case_review_completed_month_coarse");
    /* DP-02: no release before the four-eyes check. */
    expect_refused(db,
                   "UPDATE case_review SET released_to_state = 1 WHERE "
                   "review_code = 'FA-LG-2026-01'",
                   "dp02_release_requires_anonymisation_check");
    expect_refused(db,
                   "UPDATE case_review SET anonymisation_checked = 0 WHERE "
                   "review_code = 'FA-HAN-2025-01'",
                   "dp02_release_requires_anonymisation_check");
    /* The conditional "req" columns. */
    expect_refused(db,
                   "UPDATE institution SET name = NULL WHERE "
                   "is_natural_person = 0",
                   "institution_name_req");
    expect_refused(db,
                   "UPDATE case_review_finding SET statement = NULL WHERE "
                   "released_to_state = 1",
                   "case_review_finding_statement_req");
    /* DP-07. */
    expect_refused(db,
                   "UPDATE institution SET share_scope = 'state_wide' WHERE "
                   "is_natural_person = 1",
                   "institution_dp07_natural_person_not_shared");
    expect_refused(db,
                   "UPDATE document SET share_scope = 'state_wide' WHERE "
                   "contains_personal_data = 1",
                   "document_dp07_personal_not_shared");
    /* NOT NULL and UNIQUE. */
    expect_refused(db, "UPDATE contact SET last_name = NULL",
                   "NOT NULL constraint failed: contact.last_name");
    expect_refused(db, "UPDATE network SET meeting_target_per_year = NULL",
                   "NOT NULL constraint failed");
    expect_refused(db,
                   "INSERT INTO site (id, code, name, site_kind, "
                   "data_protection_regime, active) VALUES ('s-x', 'HAN', "
                   "'x', 'coordination_centre', 'ndsg', 1)",
                   "UNIQUE constraint failed: site.code");
    expect_refused(db,
                   "INSERT INTO network_membership (id, site_id, network_id, "
                   "institution_id, membership_role, joined_on) SELECT 'm-x', "
                   "site_id, network_id, institution_id, 'member', joined_on "
                   "FROM network_membership LIMIT 1",
                   "UNIQUE constraint failed");
    expect_refused(db,
                   "INSERT INTO case_review_finding (id, site_id, "
                   "case_review_id, finding_no, category, polarity, "
                   "statement) SELECT 'f-x', site_id, case_review_id, "
                   "finding_no, category, polarity, 'x' FROM "
                   "case_review_finding LIMIT 1",
                   "UNIQUE constraint failed");
    expect_refused(db, "UPDATE audit_log SET details = 'changed'",
                   "audit_log is append-only");
    sqlite3_close(db);
}

/* DP-11: privacy by default. */
TEST(privacy_defaults)
{
    sqlite3 *db = open_sample();

    exec_ok(db,
            "INSERT INTO contact (id, site_id, institution_id, first_name, "
            "last_name) VALUES ('ct-x', 'ff0b6321-e6d0-522f-bb7f-"
            "e3b4bd7809a4', 'e5779ac5-92af-5c80-8237-002b00a8db42', 'A', "
            "'B');"
            "INSERT INTO institution (id, site_id, name, "
            "institution_type_code, sponsor_kind) VALUES ('i-x', "
            "'ff0b6321-e6d0-522f-bb7f-e3b4bd7809a4', 'X', 'midwife', "
            "'freelance');"
            "INSERT INTO document (id, site_id, doc_kind, title) VALUES "
            "('d-x', 'ff0b6321-e6d0-522f-bb7f-e3b4bd7809a4', 'minutes', "
            "'X');"
            "INSERT INTO case_review (id, site_id, review_code, review_year, "
            "method, trigger_kind, child_age_band, risk_type) VALUES "
            "('cr-x', 'ff0b6321-e6d0-522f-bb7f-e3b4bd7809a4', 'FA-X', 2026, "
            "'other', 'routine_case', 'unknown', 'not_specified');"
            "INSERT INTO case_review_finding (id, site_id, case_review_id, "
            "finding_no, category, polarity, statement) VALUES ('f-x', "
            "'ff0b6321-e6d0-522f-bb7f-e3b4bd7809a4', 'cr-x', 1, "
            "'tools_procedures', 'hindering', 'x');");
    ASSERT_DUMP_EQ((db, "SELECT listing_consent FROM contact WHERE "
                        "id = 'ct-x'"),
                   "0\n");
    ASSERT_DUMP_EQ((db, "SELECT share_scope, is_natural_person FROM "
                        "institution WHERE id = 'i-x'"),
                   "site|0\n");
    ASSERT_DUMP_EQ((db, "SELECT share_scope, contains_personal_data "
                        "FROM document WHERE id = 'd-x'"),
                   "site|1\n");
    ASSERT_DUMP_EQ((db, "SELECT released_to_state, "
                        "anonymisation_checked FROM case_review WHERE "
                        "id = 'cr-x'"),
                   "0|0\n");
    ASSERT_DUMP_EQ((db, "SELECT released_to_state FROM "
                        "case_review_finding WHERE id = 'f-x'"),
                   "0\n");
    sqlite3_close(db);
}

/* ---- tracking declarations --------------------------------------------- */

struct col_ctx {
    sqlite3 *db;
    const char *tbl;
    const char *what;
};

static void
check_col(const char *name, void *data)
{
    struct col_ctx *c = data;
    char sql[256];

    if (!has_column(c->db, c->tbl, name))
        T_FAIL_("kz_track_decl %s.%s names unknown column %s", c->tbl, c->what,
                name);
    /* A private column is NULL on the state replica: it must allow NULL. */
    snprintf(sql, sizeof(sql),
             "SELECT \"notnull\" FROM pragma_table_info('%s') WHERE name = ?",
             c->tbl);
    if (q_int(c->db, sql, name) != 0)
        T_FAIL_("%s.%s is private but NOT NULL", c->tbl, name);
}

static void
check_pred(sqlite3 *db, const char *tbl, const char *pred)
{
    sqlite3_stmt *st = NULL;
    char sql[1024];
    const char *pk = strcmp(tbl, "code_list") == 0 ? "code" : "id";

    if (pred == NULL)
        return;
    snprintf(sql, sizeof(sql), "SELECT (%s) FROM %s WHERE %s = ?", pred, tbl,
             pk);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        T_FAIL_("predicate of %s does not compile: %s\n  %s", tbl,
                sqlite3_errmsg(db), sql);
    sqlite3_finalize(st);
}

TEST(track_decl_names_real_tables_and_columns)
{
    sqlite3 *db = open_sample();
    sqlite3_stmt *st = NULL;
    char *undeclared;

    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "SELECT tbl, scope_kind, owner_col, "
                                 "private_cols, cond_private_cols, "
                                 "cond_private_when, row_filter FROM "
                                 "kz_track_decl",
                                 -1, &st, NULL),
              SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *tbl = (const char *)sqlite3_column_text(st, 0);
        const char *kind = (const char *)sqlite3_column_text(st, 1);
        const char *owner = (const char *)sqlite3_column_text(st, 2);
        const char *pcols = (const char *)sqlite3_column_text(st, 3);
        const char *ccols = (const char *)sqlite3_column_text(st, 4);
        const char *cwhen = (const char *)sqlite3_column_text(st, 5);
        const char *filter = (const char *)sqlite3_column_text(st, 6);
        struct col_ctx c = {db, tbl, "private_cols"};

        if (q_int(db,
                  "SELECT COUNT(*) FROM sqlite_master WHERE type = "
                  "'table' AND name = ?",
                  tbl) != 1)
            T_FAIL_("kz_track_decl names unknown table %s", tbl);
        if (strcmp(kind, "network") == 0) {
            ASSERT(owner == NULL && pcols == NULL && ccols == NULL &&
                   filter == NULL);
        } else {
            ASSERT(owner != NULL && strcmp(owner, "site_id") == 0);
            ASSERT(has_column(db, tbl, owner));
        }
        if (strcmp(kind, "private") == 0)
            ASSERT(pcols == NULL && ccols == NULL && filter == NULL);
        ASSERT((ccols == NULL) == (cwhen == NULL));
        each_name(pcols, check_col, &c);
        c.what = "cond_private_cols";
        each_name(ccols, check_col, &c);
        check_pred(db, tbl, cwhen);
        check_pred(db, tbl, filter);
    }
    sqlite3_finalize(st);

    undeclared = q_dump(db, "SELECT name FROM sqlite_master WHERE type = "
                            "'table' AND name NOT LIKE 'kz_%' AND name NOT "
                            "LIKE 'sqlite_%' AND name <> 'report_setting' "
                            "AND name NOT IN (SELECT tbl FROM kz_track_decl) "
                            "ORDER BY name");
    if (undeclared[0] != '\0')
        T_FAIL_("tables without a tracking declaration:\n%s", undeclared);
    free(undeclared);
    ASSERT_EQ(q_int(db,
                    "SELECT COUNT(*) FROM kz_track_decl WHERE tbl = "
                    "'report_setting'",
                    NULL),
              0);
    /* domain.md §2.2 classes. */
    ASSERT_DUMP_EQ((db, "SELECT group_concat(tbl, ',') FROM (SELECT tbl "
                        "FROM kz_track_decl WHERE scope_kind = "
                        "'private' ORDER BY tbl)"),
                   "app_user,audit_log,contact,training_participant\n");
    ASSERT_EQ(q_int(db,
                    "SELECT COUNT(*) FROM kz_track_decl WHERE "
                    "scope_kind = 'network'",
                    NULL),
              7);
    ASSERT_EQ(q_int(db,
                    "SELECT COUNT(*) FROM kz_track_decl WHERE "
                    "scope_kind = 'site'",
                    NULL),
              17);
    sqlite3_close(db);
}

struct policy_ctx {
    sqlite3 *db;
    const char *tbl;
};

static void
check_policy_col(const char *name, void *data)
{
    struct policy_ctx *c = data;
    char word[128];
    size_t n = strcspn(name, " (");
    sqlite3_stmt *st = NULL;
    int found;

    snprintf(word, sizeof(word), "%.*s", (int)n, name);
    ASSERT_EQ(sqlite3_prepare_v2(
                  c->db,
                  "SELECT COUNT(*) FROM kz_track_decl WHERE tbl = ?1 AND "
                  "(scope_kind = 'private' OR ','||ifnull(private_cols,'')||"
                  "',' LIKE '%,'||?2||',%' OR ','||ifnull(cond_private_cols,"
                  "'')||',' LIKE '%,'||?2||',%')",
                  -1, &st, NULL),
              SQLITE_OK);
    sqlite3_bind_text(st, 1, c->tbl, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, word, -1, SQLITE_STATIC);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    found = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (!found)
        T_FAIL_("sync_policy says %s.%s is personal/hidden; kz_track_decl "
                "does not keep it private",
                c->tbl, word);
}

/* Every column sync_policy marks personal or state-hidden stays private. */
TEST(track_decl_covers_sync_policy)
{
    sqlite3 *db = open_sample();
    sqlite3_stmt *st = NULL;

    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "SELECT table_name, personal_columns, "
                                 "state_hidden_columns, row_filter_state "
                                 "FROM sync_policy",
                                 -1, &st, NULL),
              SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *tbl = (const char *)sqlite3_column_text(st, 0);
        const char *filter = (const char *)sqlite3_column_text(st, 3);
        struct policy_ctx c = {db, tbl};

        each_name((const char *)sqlite3_column_text(st, 1), check_policy_col,
                  &c);
        each_name((const char *)sqlite3_column_text(st, 2), check_policy_col,
                  &c);
        if (filter != NULL &&
            q_int(db,
                  "SELECT COUNT(*) FROM kz_track_decl WHERE tbl = ? AND "
                  "row_filter IS NOT NULL",
                  tbl) != 1)
            T_FAIL_("sync_policy has a row filter for %s, kz_track_decl "
                    "does not",
                    tbl);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* ---- the projection ----------------------------------------------------- */

/*
 * Turns ${db} into what the state office's replica holds: class P tables
 * empty, rows failing row_filter gone, private columns NULL and conditional
 * private columns NULL where their predicate holds.  Every predicate is
 * evaluated on the full data, before anything changes, as the engine does
 * on the owning site.
 */
static void
make_projection(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    char *sql;

    exec_ok(db, "PRAGMA foreign_keys = OFF");
    exec_ok(db, "CREATE TEMP TABLE proj_null (tbl TEXT, col TEXT, rid "
                "INTEGER); CREATE TEMP TABLE proj_drop (tbl TEXT, rid "
                "INTEGER)");
    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "SELECT tbl, cond_private_cols, "
                                 "cond_private_when, row_filter FROM "
                                 "kz_track_decl WHERE scope_kind = 'site'",
                                 -1, &st, NULL),
              SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *tbl = (const char *)sqlite3_column_text(st, 0);
        const char *ccols = (const char *)sqlite3_column_text(st, 1);
        const char *cwhen = (const char *)sqlite3_column_text(st, 2);
        const char *filter = (const char *)sqlite3_column_text(st, 3);

        if (ccols != NULL) {
            sql = sqlite3_mprintf("INSERT INTO proj_null SELECT '%q', '%q', "
                                  "rowid FROM %s WHERE (%s)",
                                  tbl, ccols, tbl, cwhen);
            exec_ok(db, sql);
            sqlite3_free(sql);
        }
        if (filter != NULL) {
            sql = sqlite3_mprintf("INSERT INTO proj_drop SELECT '%q', rowid "
                                  "FROM %s WHERE NOT coalesce((%s), 0)",
                                  tbl, tbl, filter);
            exec_ok(db, sql);
            sqlite3_free(sql);
        }
    }
    sqlite3_finalize(st);

    /* Apply: conditional columns, dropped rows, private columns, P tables. */
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT DISTINCT tbl, col FROM proj_null",
                                 -1, &st, NULL),
              SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *tbl = (const char *)sqlite3_column_text(st, 0);
        char cols[512], *p, *tok, *save = NULL;

        snprintf(cols, sizeof(cols), "%s",
                 (const char *)sqlite3_column_text(st, 1));
        for (tok = strtok_r(cols, ",", &save); tok != NULL;
             tok = strtok_r(NULL, ",", &save)) {
            for (p = tok; *p == ' '; p++)
                ;
            sql = sqlite3_mprintf("UPDATE %s SET %s = NULL WHERE rowid IN "
                                  "(SELECT rid FROM proj_null WHERE tbl = "
                                  "'%q')",
                                  tbl, p, tbl);
            exec_ok(db, sql);
            sqlite3_free(sql);
        }
    }
    sqlite3_finalize(st);
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT DISTINCT tbl FROM proj_drop", -1,
                                 &st, NULL),
              SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *tbl = (const char *)sqlite3_column_text(st, 0);

        sql = sqlite3_mprintf("DELETE FROM %s WHERE rowid IN (SELECT rid "
                              "FROM proj_drop WHERE tbl = '%q')",
                              tbl, tbl);
        exec_ok(db, sql);
        sqlite3_free(sql);
    }
    sqlite3_finalize(st);
    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "SELECT tbl, scope_kind, private_cols FROM "
                                 "kz_track_decl WHERE scope_kind = 'private' "
                                 "OR private_cols IS NOT NULL",
                                 -1, &st, NULL),
              SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *tbl = (const char *)sqlite3_column_text(st, 0);
        const char *kind = (const char *)sqlite3_column_text(st, 1);
        char cols[512], *p, *tok, *save = NULL;

        if (strcmp(kind, "private") == 0) {
            sql = sqlite3_mprintf("DELETE FROM %s", tbl);
            exec_ok(db, sql);
            sqlite3_free(sql);
            continue;
        }
        snprintf(cols, sizeof(cols), "%s",
                 (const char *)sqlite3_column_text(st, 2));
        for (tok = strtok_r(cols, ",", &save); tok != NULL;
             tok = strtok_r(NULL, ",", &save)) {
            for (p = tok; *p == ' '; p++)
                ;
            sql = sqlite3_mprintf("UPDATE %s SET %s = NULL", tbl, p);
            exec_ok(db, sql);
            sqlite3_free(sql);
        }
    }
    sqlite3_finalize(st);
    exec_ok(db, "DROP TABLE proj_null; DROP TABLE proj_drop");
}

/* The full result of view ${v}, ordered by every column. */
static char *
dump_view(sqlite3 *db, const char *v)
{
    char sql[1024], *s;
    int n, i;
    size_t len;

    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM pragma_table_info('%s')",
             v);
    n = (int)q_int(db, sql, NULL);
    ASSERT_GT(n, 0);
    len = (size_t)snprintf(sql, sizeof(sql), "SELECT * FROM %s ORDER BY ", v);
    for (i = 1; i <= n && len < sizeof(sql) - 8; i++)
        len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s%d",
                                i > 1 ? "," : "", i);
    s = q_dump(db, sql);
    return s;
}

TEST(projection_keeps_indicators)
{
    sqlite3 *full = open_sample();
    sqlite3 *proj = NULL;
    sqlite3_backup *b;
    sqlite3_stmt *st = NULL;
    char *fk;
    int views = 0;

    ASSERT_EQ(sqlite3_open(":memory:", &proj), SQLITE_OK);
    b = sqlite3_backup_init(proj, "main", full, "main");
    ASSERT(b != NULL);
    ASSERT_EQ(sqlite3_backup_step(b, -1), SQLITE_DONE);
    ASSERT_EQ(sqlite3_backup_finish(b), SQLITE_OK);
    make_projection(proj);

    /* The projection really is stripped ... */
    ASSERT_EQ(q_int(proj, "SELECT COUNT(*) FROM contact", NULL), 0);
    ASSERT_EQ(q_int(proj, "SELECT COUNT(*) FROM app_user", NULL), 0);
    ASSERT_EQ(q_int(proj,
                    "SELECT COUNT(*) FROM case_review WHERE "
                    "released_to_state = 0",
                    NULL),
              0);
    ASSERT_EQ(q_int(proj, "SELECT COUNT(*) FROM measure", NULL), 9);
    ASSERT_EQ(q_int(proj,
                    "SELECT COUNT(*) FROM institution WHERE "
                    "is_natural_person = 1 AND name IS NOT NULL",
                    NULL),
              0);
    ASSERT_GT(q_int(proj,
                    "SELECT COUNT(*) FROM institution WHERE "
                    "is_natural_person = 1",
                    NULL),
              0);
    /* ... and consistent: no dangling reference on the state replica. */
    fk = q_dump(proj, "PRAGMA foreign_key_check");
    if (fk[0] != '\0')
        T_FAIL_("projection has dangling foreign keys:\n%s", fk);
    free(fk);

    ASSERT_EQ(sqlite3_prepare_v2(full,
                                 "SELECT name FROM sqlite_master WHERE type "
                                 "= 'view' AND name LIKE 'v_ind%' ORDER BY "
                                 "name",
                                 -1, &st, NULL),
              SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        char *a = dump_view(full, v), *p = dump_view(proj, v);

        if (a[0] == '\0')
            T_FAIL_("%s is empty on the sample data", v);
        if (strcmp(a, p) != 0)
            T_FAIL_("%s differs on the projection\nfull:\n%s\nprojection:\n%s",
                    v, a, p);
        free(a);
        free(p);
        views++;
    }
    sqlite3_finalize(st);
    ASSERT_EQ(views, 20);
    sqlite3_close(proj);
    sqlite3_close(full);
}

/* Every view of domain.md §3 exists under its exact name with site_code. */
TEST(indicator_views_exist)
{
    static const char *const names[] = {
        "v_as_of",
        "v_active_membership",
        "v_ind01_partners_by_sector",
        "v_ind02_kkg_coverage",
        "v_ind02b_kkg_gaps",
        "v_ind03_health_share",
        "v_ind04_agreement_coverage",
        "v_ind05_agreement_reviews",
        "v_ind06_meetings_per_network",
        "v_ind07_meeting_participants",
        "v_ind07b_meetings_total",
        "v_ind08_trainings",
        "v_ind08b_trainings_by_sector",
        "v_ind09_consultations",
        "v_ind10_case_reviews",
        "v_ind10b_findings",
        "v_ind10c_reviews_by_risk_type",
        "v_ind10d_reviews_by_age_band",
        "v_ind11_measures",
        "v_ind12_recommendations",
        "v_ind13_funding",
        "v_ind14_directory_currency",
        "v_site_contacts_due",
    };
    sqlite3 *db = open_sample();
    char sql[256];
    size_t i;

    for (i = 0; i < N_ELEMS(names); i++) {
        if (q_int(db,
                  "SELECT COUNT(*) FROM sqlite_master WHERE type = "
                  "'view' AND name = ?",
                  names[i]) != 1)
            T_FAIL_("missing view %s", names[i]);
        if (i == 0)
            continue; /* v_as_of is a single date */
        snprintf(sql, sizeof(sql),
                 "SELECT COUNT(*) FROM pragma_table_info"
                 "('%s') WHERE name = 'site_code'",
                 names[i]);
        if (q_int(db, sql, NULL) != 1)
            T_FAIL_("%s has no site_code column", names[i]);
    }
    /* Without a setting, v_as_of is today. */
    exec_ok(db, "DELETE FROM report_setting");
    ASSERT_EQ(q_int(db, "SELECT as_of = date('now') FROM v_as_of", NULL), 1);
    sqlite3_close(db);
}

/* ---- the plain sqlite3 shell -------------------------------------------- */

TEST(sqlite3_shell_loads_sample)
{
    char dir[] = "/tmp/kz_schema_XXXXXX";
    char cmd[4096], path[512];
    sqlite3 *db = NULL;
    FILE *f;
    size_t i;
    int rc;

    if (system("command -v sqlite3 >/dev/null 2>&1") != 0) {
        fprintf(stderr, "sqlite3 shell not installed; skipped\n");
        return;
    }
    ASSERT(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/decl.sql", dir);
    f = fopen(path, "w");
    ASSERT(f != NULL);
    fputs(decl_sql, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "sqlite3 -bail %s/replica.db < %s/decl.sql && "
             "sqlite3 -bail %s/replica.db < '%s'",
             dir, dir, dir, SCHEMA_PATH);
    for (i = 0; i < N_ELEMS(sample_files); i++) {
        size_t len = strlen(cmd);
        snprintf(cmd + len, sizeof(cmd) - len,
                 " && sqlite3 -bail %s/replica.db < '%s%s'", dir, SAMPLE_DIR,
                 sample_files[i]);
    }
    rc = system(cmd);
    ASSERT_EQ(rc, 0);

    snprintf(path, sizeof(path), "%s/replica.db", dir);
    ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_EQ(q_int(db, "SELECT COUNT(*) FROM institution", NULL), 31);
    ASSERT_EQ(q_int(db,
                    "SELECT COUNT(*) FROM v_ind05_agreement_reviews "
                    "WHERE review_state = 'overdue'",
                    NULL),
              3);
    sqlite3_close(db);
    unlink(path);
    snprintf(path, sizeof(path), "%s/decl.sql", dir);
    unlink(path);
    rmdir(dir);
}

T_MAIN(T(sample_row_counts), T(foreign_keys_hold), T(foreign_keys_deferred),
       T(orientation_ind05_reviews), T(orientation_ind11_measures),
       T(orientation_ind10cd_suppressed), T(ind10c_shows_cells_of_three),
       T(every_enum_and_bool_refuses_bad_value), T(named_constraints_refuse),
       T(privacy_defaults), T(track_decl_names_real_tables_and_columns),
       T(track_decl_covers_sync_policy), T(projection_keeps_indicators),
       T(indicator_views_exist), T(sqlite3_shell_loads_sample))
