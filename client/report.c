/* report.c: the consolidated report (HTML, CSV, JSON) from the views. */
/*
 * Structure: a static table of sections; each section holds tables, each
 * table is one SQL query over the indicator views (v_ind*, v_as_of) plus
 * code_list labels, with German column headings and an optional bar chart.
 * A query result is fetched once into memory (struct rs) and then handed
 * to the emitter of the chosen format, so that every format shows exactly
 * the same figures.
 *
 * Privacy: no query here reads a base table except code_list (labels).  The
 * views read no personal or site-only column (client/schema/
 * kinderschutz.sql, section 4), so the report holds no names of persons,
 * no contact details and no free-text notes, also on a site's own replica.
 *
 * Column-key conventions used by the HTML emitter only (CSV and JSON carry
 * raw values): "site_code" "ALL" is shown as "Gesamt" and its row is a
 * total row; keys ending in "_pct" are percentages, "_eur" euro amounts,
 * "_met" yes/no flags, "suppressed" a DP-03 flag.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "err.h"
#include "report.h"

/* ---- report definition --------------------------------------------------- */

/* German label of a code from code_list, or the code itself. */
#define LBL(list, expr)                                                       \
    "COALESCE((SELECT label_de FROM code_list WHERE list_name = '" list       \
    "' AND code = " expr "), " expr ")"

struct rp_table {
    const char *id;        /* machine id (CSV "table", JSON "id") */
    const char *indicator; /* e.g. "IND-05" */
    const char *title;     /* German caption */
    const char *heads;     /* German headings, '|'-separated, one per column */
    const char *sql;       /* the query; column names are the machine keys */
    const char *note;      /* German footnote, or NULL */
    int chart_label;       /* column for the bar label, -1 = no chart */
    int chart_label2;      /* second label column appended, or -1 */
    int chart_value;       /* numeric column for the bar length */
    int chart_totals;      /* 1: chart the "ALL" rows, 0: the other rows */
};

struct rp_section {
    const char *id;                /* machine id, also the HTML anchor */
    const char *title;             /* German heading */
    const char *intro;             /* German sentence under the heading */
    const struct rp_table *tables; /* borrowed static array */
    size_t n_tables;               /* entries in tables */
};

#define ALL_LAST(q) "SELECT * FROM (" q ") ORDER BY site_code = 'ALL', "

static const struct rp_table partner_tables[] = {
    {"partners_by_site", "IND-01", "Aktive Netzwerkpartner je Standort",
     "Standort|Kinder- und Jugendhilfe|Gesundheitswesen|Weitere Bereiche|"
     "Partner gesamt",
     ALL_LAST("SELECT site_code,"
              " SUM(CASE WHEN nzfh_sector = 'kjh' THEN partners ELSE 0 END)"
              " AS kjh,"
              " SUM(CASE WHEN nzfh_sector = 'health' THEN partners ELSE 0"
              " END) AS health,"
              " SUM(CASE WHEN nzfh_sector = 'other' THEN partners ELSE 0 END)"
              " AS other,"
              " SUM(partners) AS partners"
              " FROM v_ind01_partners_by_sector GROUP BY site_code"
              " UNION ALL SELECT 'ALL',"
              " SUM(CASE WHEN nzfh_sector = 'kjh' THEN partners ELSE 0 END),"
              " SUM(CASE WHEN nzfh_sector = 'health' THEN partners ELSE 0"
              " END),"
              " SUM(CASE WHEN nzfh_sector = 'other' THEN partners ELSE 0"
              " END),"
              " SUM(partners) FROM v_ind01_partners_by_sector") "site_code",
     "Sektoren nach dem Schema des NZFH; jede Einrichtung zählt einmal je "
     "Standort.",
     0, -1, 4, 0},
    {"partners_by_sector", "IND-01",
     "Aktive Netzwerkpartner nach Sektor (fein)",
     "Standort|Sektor|Partner",
     ALL_LAST("SELECT site_code, " LBL("sector_code", "sector_code")
              " AS sector, SUM(partners) AS partners"
              " FROM v_ind01_partners_by_sector"
              " GROUP BY site_code, sector_code"
              " UNION ALL SELECT 'ALL', " LBL("sector_code", "sector_code")
              ", SUM(partners) FROM v_ind01_partners_by_sector"
              " GROUP BY sector_code") "site_code, partners DESC, sector",
     NULL, 1, -1, 2, 1},
    {"networks_kkg", "IND-02/03",
     "Netzwerke: Abdeckung der 18 Kategorien nach § 3 Abs. 2 KKG und "
     "Anteil Gesundheitswesen",
     "Standort|Netzwerk|KKG-Kategorien|von|Abdeckung|Partner|"
     "davon Gesundheitswesen|Anteil Gesundheitswesen",
     "SELECT c.site_code, c.network_name, c.categories_covered,"
     " c.categories_total, c.coverage_pct, h.partners, h.health_partners,"
     " h.health_share_pct"
     " FROM v_ind02_kkg_coverage c"
     " JOIN v_ind03_health_share h ON h.network_id = c.network_id"
     " ORDER BY c.site_code, c.network_name",
     "Fehlende Kategorien je Netzwerk: Sicht v_ind02b_kkg_gaps.", 1, -1, 4,
     0},
    {"directory_currency", "IND-14",
     "Aktualität des Partnerverzeichnisses",
     "Standort|Aktive Einrichtungen|nicht geprüft seit 24 Monaten|Anteil",
     ALL_LAST("SELECT site_code, active_institutions, not_verified_24m,"
              " not_verified_pct FROM v_ind14_directory_currency"
              " UNION ALL SELECT 'ALL', SUM(active_institutions),"
              " SUM(not_verified_24m), ROUND(100.0 * SUM(not_verified_24m)"
              " / NULLIF(SUM(active_institutions), 0), 1)"
              " FROM v_ind14_directory_currency") "site_code",
     NULL, -1, -1, 0, 0},
};

static const struct rp_table agreement_tables[] = {
    {"agreements_by_site", "IND-04/05",
     "Vereinbarungen in Kraft und Überprüfungen je Standort",
     "Standort|Vereinbarungen in Kraft|Aktive Partner|davon gebunden|"
     "Anteil gebunden|Überprüfung überfällig|Überprüfung in 90 Tagen fällig",
     ALL_LAST("SELECT c.site_code, c.agreements_in_force, c.active_partners,"
              " c.bound_partners, c.bound_share_pct,"
              " COALESCE(r.overdue, 0) AS reviews_overdue,"
              " COALESCE(r.due_90d, 0) AS reviews_due_90d"
              " FROM v_ind04_agreement_coverage c LEFT JOIN"
              " (SELECT site_code, SUM(review_state = 'overdue') AS overdue,"
              " SUM(review_state = 'due_90d') AS due_90d"
              " FROM v_ind05_agreement_reviews GROUP BY site_code) r"
              " ON r.site_code = c.site_code"
              " UNION ALL SELECT 'ALL',"
              " (SELECT SUM(agreements_in_force)"
              " FROM v_ind04_agreement_coverage),"
              " (SELECT SUM(active_partners) FROM v_ind04_agreement_coverage),"
              " (SELECT SUM(bound_partners) FROM v_ind04_agreement_coverage),"
              " (SELECT ROUND(100.0 * SUM(bound_partners)"
              " / NULLIF(SUM(active_partners), 0), 1)"
              " FROM v_ind04_agreement_coverage),"
              " (SELECT COUNT(*) FROM v_ind05_agreement_reviews"
              " WHERE review_state = 'overdue'),"
              " (SELECT COUNT(*) FROM v_ind05_agreement_reviews"
              " WHERE review_state = 'due_90d')") "site_code",
     "In Kraft: Status „in Kraft“ oder „in Überprüfung“ und Stichtag im "
     "Gültigkeitszeitraum. Gebunden: aktiver Partner ist Vertragspartei "
     "mindestens einer Vereinbarung in Kraft.",
     0, -1, 5, 0},
    {"agreement_reviews_due", "IND-05",
     "Überprüfungen überfällig oder in 90 Tagen fällig",
     "Standort|Vereinbarung|Art|Status|Überprüfung fällig am|Prüfstand|"
     "Tage überfällig|Tage bis Fälligkeit",
     "SELECT site_code, title, " LBL("agreement_kind", "agreement_kind")
     " AS kind, " LBL("agreement_status", "status") " AS status,"
     " next_review_due, CASE review_state WHEN 'overdue' THEN 'überfällig'"
     " ELSE 'in 90 Tagen fällig' END AS review_state, days_overdue,"
     " days_until_due FROM v_ind05_agreement_reviews"
     " WHERE review_state IN ('overdue', 'due_90d')"
     " ORDER BY site_code, review_state DESC, next_review_due",
     NULL, -1, -1, 0, 0},
};

static const struct rp_table meeting_tables[] = {
    {"meetings_by_site", "IND-07b", "Netzwerktreffen und Teilnehmende je Jahr",
     "Standort|Jahr|Treffen|Teilnehmende",
     ALL_LAST("SELECT site_code, year, SUM(meetings) AS meetings,"
              " SUM(participants) AS participants"
              " FROM v_ind07b_meetings_total GROUP BY site_code, year"
              " UNION ALL SELECT 'ALL', year, SUM(meetings),"
              " SUM(participants) FROM v_ind07b_meetings_total"
              " GROUP BY year") "site_code, year",
     "Gezählt werden Treffen bis zum Stichtag.", 0, 1, 2, 0},
    {"meetings_by_network", "IND-06",
     "Treffen je Netzwerk und Jahr gegen den Zielwert",
     "Standort|Netzwerk|Jahr|Treffen|Zielwert|Ziel erreicht",
     "SELECT site_code, network_name, year, meetings, target, target_met"
     " FROM v_ind06_meetings_per_network"
     " ORDER BY site_code, network_name, year",
     "Zielwert: regelmäßige Netzwerktreffen (RL Frühe Hilfen Nds. Nr. 4.3).",
     -1, -1, 0, 0},
    {"meeting_participants_by_sector", "IND-07",
     "Teilnehmende an Treffen nach Sektor (NZFH)",
     "Standort|Jahr|Sektor|Treffen|Teilnehmende|erreichte Partner",
     ALL_LAST("SELECT site_code, year, " LBL("nzfh_sector", "nzfh_sector")
              " AS sector, meetings, participants, partners_reached"
              " FROM v_ind07_meeting_participants"
              " UNION ALL SELECT 'ALL', year, "
              LBL("nzfh_sector", "nzfh_sector") ", SUM(meetings),"
              " SUM(participants), SUM(partners_reached)"
              " FROM v_ind07_meeting_participants"
              " GROUP BY year, nzfh_sector") "site_code, year, sector",
     NULL, -1, -1, 0, 0},
};

static const struct rp_table training_tables[] = {
    {"trainings_by_site", "IND-08", "Fortbildungen je Standort und Jahr",
     "Standort|Jahr|Fortbildungen|Unterrichtseinheiten|Teilnehmende|"
     "Teilnehmenden-UE|Anteil interdisziplinär|Sensibilisierung Kinderschutz|"
     "Bewertung (1–5)",
     ALL_LAST("SELECT site_code, year, trainings, teaching_units,"
              " participants, participant_units, interdisciplinary_pct,"
              " awareness_trainings, evaluation_mean FROM v_ind08_trainings"
              " UNION ALL SELECT 'ALL', year, SUM(trainings),"
              " SUM(teaching_units), SUM(participants),"
              " SUM(participant_units), ROUND(SUM(interdisciplinary_pct"
              " * trainings) / SUM(trainings), 1), SUM(awareness_trainings),"
              " NULL FROM v_ind08_trainings GROUP BY year") "site_code, year",
     "UE = Unterrichtseinheit zu 45 Minuten. Die mittlere Bewertung wird "
     "nicht über Standorte gemittelt.",
     0, 1, 4, 0},
    {"training_participants_by_sector", "IND-08b",
     "Teilnehmende an Fortbildungen nach Sektor",
     "Standort|Jahr|Sektor (NZFH)|Sektor|Teilnehmende",
     ALL_LAST("SELECT site_code, year, " LBL("nzfh_sector", "nzfh_sector")
              " AS nzfh_sector, " LBL("sector_code", "sector_code")
              " AS sector, participants FROM v_ind08b_trainings_by_sector"
              " UNION ALL SELECT 'ALL', year, "
              LBL("nzfh_sector", "nzfh_sector") ", "
              LBL("sector_code", "sector_code") ", SUM(participants)"
              " FROM v_ind08b_trainings_by_sector"
              " GROUP BY year, nzfh_sector, sector_code")
     "site_code, year, nzfh_sector, sector",
     NULL, -1, -1, 0, 0},
};

static const struct rp_table consultation_tables[] = {
    {"consultations_by_site", "IND-09", "Beratungen je Standort und Jahr",
     "Standort|Jahr|Beratungen|Stunden|außerhalb des eigenen Einzugsgebiets",
     ALL_LAST("SELECT site_code, year, SUM(consultations) AS consultations,"
              " ROUND(SUM(hours), 1) AS hours,"
              " SUM(outside_catchment) AS outside_catchment"
              " FROM v_ind09_consultations GROUP BY site_code, year"
              " UNION ALL SELECT 'ALL', year, SUM(consultations),"
              " ROUND(SUM(hours), 1), SUM(outside_catchment)"
              " FROM v_ind09_consultations GROUP BY year") "site_code, year",
     NULL, 0, 1, 2, 0},
    {"consultations_by_kind", "IND-09", "Beratungen nach Art",
     "Standort|Jahr|Art|Beratungen|Stunden|außerhalb des Einzugsgebiets|"
     "beratene Kommunen",
     "SELECT site_code, year, "
     LBL("consultation_kind", "consultation_kind") " AS kind,"
     " consultations, hours, outside_catchment, municipalities_advised"
     " FROM v_ind09_consultations ORDER BY site_code, year, kind",
     "Anonyme Fallberatungen erfassen nur Thema, Art der anfragenden Stelle "
     "und Kommune (DP-01).",
     -1, -1, 0, 0},
};

static const struct rp_table review_tables[] = {
    {"case_reviews", "IND-10", "Freigegebene Fallanalysen je Standort und Jahr",
     "Standort|Jahr|Fallanalysen|abgeschlossen|laufend|geplant",
     ALL_LAST("SELECT site_code, review_year, reviews, completed,"
              " in_progress, planned FROM v_ind10_case_reviews"
              " UNION ALL SELECT 'ALL', review_year, SUM(reviews),"
              " SUM(completed), SUM(in_progress), SUM(planned)"
              " FROM v_ind10_case_reviews GROUP BY review_year")
     "site_code, review_year",
     "Nur nach Vier-Augen-Prüfung an das Land freigegebene Fallanalysen "
     "(DP-02).",
     0, 1, 2, 0},
    {"findings", "IND-10b",
     "Befunde nach Kategorie und Wirkung (landesweit, alle Jahre)",
     "Standort|Kategorie|förderlich|hinderlich|Befunde gesamt",
     "SELECT 'ALL' AS site_code, " LBL("finding_category", "category")
     " AS category,"
     " SUM(CASE WHEN polarity = 'supportive' THEN findings ELSE 0 END)"
     " AS supportive,"
     " SUM(CASE WHEN polarity = 'hindering' THEN findings ELSE 0 END)"
     " AS hindering, SUM(findings) AS findings"
     " FROM v_ind10b_findings GROUP BY category ORDER BY findings DESC,"
     " category",
     NULL, 1, -1, 4, 1},
    {"reviews_by_risk_type", "IND-10c",
     "Fallanalysen nach Gefährdungsart (landesweit je Jahr)",
     "Standort|Jahr|Gefährdungsart|Fallanalysen|unterdrückt",
     "SELECT site_code, review_year, " LBL("risk_type", "risk_type")
     " AS risk_type, reviews, suppressed FROM v_ind10c_reviews_by_risk_type"
     " ORDER BY review_year, risk_type",
     "Zellen mit 1–2 Fallanalysen werden nicht ausgewiesen (DP-03).", -1, -1,
     0, 0},
    {"reviews_by_age_band", "IND-10d",
     "Fallanalysen nach Altersgruppe (landesweit je Jahr)",
     "Standort|Jahr|Altersgruppe|Fallanalysen|unterdrückt",
     "SELECT site_code, review_year, " LBL("age_band", "child_age_band")
     " AS age_band, reviews, suppressed FROM v_ind10d_reviews_by_age_band"
     " ORDER BY review_year, age_band",
     "Zellen mit 1–2 Fallanalysen werden nicht ausgewiesen (DP-03).", -1, -1,
     0, 0},
    {"measures", "IND-11", "Maßnahmen je Standort",
     "Standort|Maßnahmen|umgesetzt|in Arbeit|geplant|verworfen|überfällig|"
     "Umsetzungsquote|Tage bis Umsetzung (Mittel)",
     ALL_LAST("SELECT site_code, measures, implemented, in_progress, planned,"
              " dropped, overdue, implementation_rate_pct,"
              " mean_days_to_implementation FROM v_ind11_measures"
              " UNION ALL SELECT 'ALL', SUM(measures), SUM(implemented),"
              " SUM(in_progress), SUM(planned), SUM(dropped), SUM(overdue),"
              " ROUND(100.0 * SUM(implemented) / NULLIF(SUM(measures)"
              " - SUM(dropped), 0), 1), NULL FROM v_ind11_measures")
     "site_code",
     "Umsetzungsquote = umgesetzt ÷ (gesamt − verworfen). Maßnahmen aus "
     "nicht freigegebenen Fallanalysen zählen nicht.",
     0, -1, 7, 0},
    {"recommendations", "IND-12",
     "Umsetzung externer Empfehlungen (alle Standorte)",
     "Standort|Quelle|Empfehlung|Thema|Maßnahmen|umgesetzt|"
     "Standorte mit Maßnahmen",
     "SELECT 'ALL' AS site_code, " LBL("recommendation_source", "source")
     " AS source, title_de, theme, SUM(measures) AS measures,"
     " SUM(implemented) AS implemented,"
     " SUM(measures > 0) AS sites_with_measures"
     " FROM v_ind12_recommendations"
     " GROUP BY recommendation_id, source, title_de, theme"
     " ORDER BY source, title_de",
     "Empfehlungstexte sind Paraphrasen, solange sie nicht gegen die Quelle "
     "geprüft sind.",
     -1, -1, 0, 0},
};

static const struct rp_table funding_tables[] = {
    {"funding_by_site", "IND-13", "Fördermittel je Standort und Jahr",
     "Standort|Jahr|Bewilligungen|bewilligt (EUR)|verausgabt (EUR)|"
     "Mittelabfluss|Verwendungsnachweise überfällig",
     ALL_LAST("SELECT site_code, grant_year, SUM(grants) AS grants,"
              " SUM(granted_cent) / 100.0 AS granted_eur,"
              " SUM(spent_cent) / 100.0 AS spent_eur,"
              " ROUND(100.0 * SUM(spent_cent) / NULLIF(SUM(granted_cent), 0),"
              " 1) AS utilisation_pct,"
              " SUM(reports_overdue) AS reports_overdue"
              " FROM v_ind13_funding GROUP BY site_code, grant_year"
              " UNION ALL SELECT 'ALL', grant_year, SUM(grants),"
              " SUM(granted_cent) / 100.0, SUM(spent_cent) / 100.0,"
              " ROUND(100.0 * SUM(spent_cent) / NULLIF(SUM(granted_cent), 0),"
              " 1), SUM(reports_overdue) FROM v_ind13_funding"
              " GROUP BY grant_year") "site_code, grant_year",
     NULL, 0, 1, 3, 0},
    {"funding_by_purpose", "IND-13",
     "Fördermittel nach Mittelgeber und Zweck",
     "Standort|Jahr|Mittelgeber|Zweck|bewilligt (EUR)|verausgabt (EUR)|"
     "Mittelabfluss|Verwendungsnachweise überfällig",
     "SELECT site_code, grant_year, " LBL("funder", "funder") " AS funder, "
     LBL("funding_purpose", "purpose") " AS purpose, granted_eur, spent_eur,"
     " utilisation_pct, reports_overdue FROM v_ind13_funding"
     " ORDER BY site_code, grant_year, funder, purpose",
     NULL, -1, -1, 0, 0},
};

#define SECTION(id, title, intro, tables)                                     \
    {id, title, intro, tables, sizeof(tables) / sizeof((tables)[0])}

static const struct rp_section sections[] = {
    SECTION("partners", "Netzwerkpartner nach Sektor",
            "Aktive Mitgliedschaften zum Stichtag: Netzwerk und Einrichtung "
            "aktiv, beigetreten und nicht ausgeschieden.",
            partner_tables),
    SECTION("agreements", "Kooperationsvereinbarungen",
            "Schriftliche Vereinbarungen nach § 3 Abs. 3 KKG und § 8a Abs. 4 "
            "SGB VIII und ihre regelmäßige Überprüfung.",
            agreement_tables),
    SECTION("meetings", "Netzwerktreffen",
            "Treffen, Runde Tische und Fachtage; Teilnehmende nur als "
            "Anzahl.",
            meeting_tables),
    SECTION("trainings", "Fortbildungen",
            "Fortbildungen und Qualifizierungen; Teilnehmende nur als "
            "Anzahl.",
            training_tables),
    SECTION("consultations", "Beratungen",
            "Beratungen von Kommunen und Einrichtungen sowie anonyme "
            "Fallberatungen.",
            consultation_tables),
    SECTION("reviews", "Fallanalysen und Maßnahmen",
            "Anonymisierte Fallanalysen („Aus Fehlern lernen“), ihre Befunde "
            "und die daraus abgeleiteten Maßnahmen.",
            review_tables),
    SECTION("funding", "Fördermittel",
            "Zuwendungen nach Mittelgeber und Zweck, Mittelabfluss und "
            "Verwendungsnachweise.",
            funding_tables),
};

#define N_SECTIONS (sizeof(sections) / sizeof(sections[0]))

/* ---- fetched results --------------------------------------------------- */

struct cell {
    int type;      /* SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_NULL */
    long long i;   /* value if SQLITE_INTEGER */
    double d;      /* value if SQLITE_FLOAT */
    char *s;       /* NUL-terminated value if SQLITE_TEXT; owned */
};

struct rs {
    int n_cols;           /* columns */
    size_t n_rows;        /* rows fetched */
    size_t cap_rows;      /* rows allocated */
    char **keys;          /* column names (machine keys); owned */
    char **heads;         /* German headings; owned */
    struct cell *cells;   /* n_rows * n_cols, row-major; owned */
    int site_col;         /* index of "site_code", or -1 */
};

struct ctx {
    sqlite3 *db;          /* borrowed */
    FILE *out;            /* borrowed */
    const char **err;     /* where to put the reason; may be NULL */
    char as_of[16];       /* the reference date, YYYY-MM-DD */
};

static void
rs_free(struct rs *r)
{
    size_t k;
    int c;

    if (r->cells != NULL)
        for (k = 0; k < r->n_rows * (size_t)r->n_cols; k++)
            free(r->cells[k].s);
    for (c = 0; c < r->n_cols; c++) {
        if (r->keys != NULL)
            free(r->keys[c]);
        if (r->heads != NULL)
            free(r->heads[c]);
    }
    free(r->keys);
    free(r->heads);
    free(r->cells);
    memset(r, 0, sizeof(*r));
}

static char *
dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static int
fail(struct ctx *x, int rc, const char *why)
{
    if (x->err != NULL)
        *x->err = why;
    return rc;
}

/* Runs the query of ${t} and fetches every row into ${r}. */
static int
rs_fetch(struct ctx *x, const struct rp_table *t, struct rs *r)
{
    sqlite3_stmt *st = NULL;
    const char *h = t->heads;
    int c, rc;

    memset(r, 0, sizeof(*r));
    r->site_col = -1;
    if (sqlite3_prepare_v2(x->db, t->sql, -1, &st, NULL) != SQLITE_OK)
        return fail(x, -KZ_EDB, "cannot query the indicator views (schema "
                                "missing or outdated)");
    r->n_cols = sqlite3_column_count(st);
    r->keys = calloc((size_t)r->n_cols, sizeof(*r->keys));
    r->heads = calloc((size_t)r->n_cols, sizeof(*r->heads));
    if (r->keys == NULL || r->heads == NULL)
        goto nomem;
    for (c = 0; c < r->n_cols; c++) {
        size_t len = strcspn(h, "|");

        r->keys[c] = dup_n(sqlite3_column_name(st, c),
                           strlen(sqlite3_column_name(st, c)));
        r->heads[c] = dup_n(h, len);
        if (r->keys[c] == NULL || r->heads[c] == NULL)
            goto nomem;
        h += len + (h[len] == '|');
        if (strcmp(r->keys[c], "site_code") == 0)
            r->site_col = c;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct cell *row;

        if (r->n_rows == r->cap_rows) {
            size_t cap = r->cap_rows ? r->cap_rows * 2 : 16;
            struct cell *p;

            if (cap > SIZE_MAX / sizeof(*p) / (size_t)(r->n_cols ? r->n_cols
                                                                  : 1))
                goto nomem;
            p = realloc(r->cells, cap * (size_t)r->n_cols * sizeof(*p));
            if (p == NULL)
                goto nomem;
            r->cells = p;
            r->cap_rows = cap;
        }
        row = r->cells + r->n_rows * (size_t)r->n_cols;
        memset(row, 0, (size_t)r->n_cols * sizeof(*row));
        r->n_rows++;
        for (c = 0; c < r->n_cols; c++) {
            row[c].type = sqlite3_column_type(st, c);
            switch (row[c].type) {
            case SQLITE_INTEGER:
                row[c].i = sqlite3_column_int64(st, c);
                break;
            case SQLITE_FLOAT:
                row[c].d = sqlite3_column_double(st, c);
                break;
            case SQLITE_NULL:
                break;
            default: /* text; a blob is shown as text too */
                row[c].type = SQLITE_TEXT;
                row[c].s = dup_n((const char *)sqlite3_column_text(st, c),
                                 (size_t)sqlite3_column_bytes(st, c));
                if (row[c].s == NULL)
                    goto nomem;
            }
        }
    }
    if (rc != SQLITE_DONE) {
        rc = fail(x, -KZ_EDB, sqlite3_errstr(rc));
        sqlite3_finalize(st);
        rs_free(r);
        return rc;
    }
    sqlite3_finalize(st);
    return 0;

nomem:
    sqlite3_finalize(st);
    rs_free(r);
    return fail(x, -KZ_ENOMEM, "out of memory");
}

static const struct cell *
rs_cell(const struct rs *r, size_t row, int col)
{
    return r->cells + row * (size_t)r->n_cols + (size_t)col;
}

/* Is row ${row} of ${r} a total ("ALL") row? */
static int
rs_is_total(const struct rs *r, size_t row)
{
    const struct cell *c;

    if (r->site_col < 0)
        return 0;
    c = rs_cell(r, row, r->site_col);
    return c->type == SQLITE_TEXT && strcmp(c->s, "ALL") == 0;
}

/* A numeric cell as double; NULL and text give NAN. */
static double
cell_num(const struct cell *c)
{
    if (c->type == SQLITE_INTEGER)
        return (double)c->i;
    if (c->type == SQLITE_FLOAT)
        return c->d;
    return NAN;
}

/* Machine text of a cell (CSV): integers plain, reals with up to 15
 * significant digits, "" for NULL.  ${buf} holds at least 64 bytes. */
static const char *
cell_text(const struct cell *c, char *buf, size_t len)
{
    switch (c->type) {
    case SQLITE_INTEGER:
        snprintf(buf, len, "%lld", c->i);
        return buf;
    case SQLITE_FLOAT:
        snprintf(buf, len, "%.15g", c->d);
        return buf;
    case SQLITE_TEXT:
        return c->s;
    default:
        return "";
    }
}

static int
ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);

    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---- HTML -------------------------------------------------------------- */

static void
html_esc(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* ${v} in German notation: '.' thousands, ',' decimals, ${dec} decimals. */
static void
fmt_de(char *buf, size_t len, double v, int dec)
{
    char raw[64], *dot, *o = buf;
    const char *p;
    size_t int_len, k;

    snprintf(raw, sizeof(raw), "%.*f", dec, fabs(v) < 5e-324 ? 0.0 : v);
    p = raw;
    if (*p == '-') {
        if (o < buf + len - 1)
            *o++ = '-';
        p++;
    }
    dot = strchr(p, '.');
    int_len = dot ? (size_t)(dot - p) : strlen(p);
    for (k = 0; k < int_len && o < buf + len - 2; k++) {
        if (k > 0 && (int_len - k) % 3 == 0)
            *o++ = '.';
        *o++ = p[k];
    }
    if (dot != NULL)
        for (p = dot; *p != '\0' && o < buf + len - 1; p++)
            *o++ = *p == '.' ? ',' : *p;
    *o = '\0';
}

/* Human text of cell ${c} in column ${key}, German notation. */
static void
html_cell(FILE *f, const struct cell *c, const char *key)
{
    char buf[96];

    if (c->type == SQLITE_NULL) {
        fputs(strcmp(key, "reviews") == 0 ? "•" : "–", f);
        return;
    }
    if (c->type == SQLITE_TEXT) {
        if (strcmp(key, "site_code") == 0 && strcmp(c->s, "ALL") == 0)
            fputs("Gesamt", f);
        else
            html_esc(f, c->s);
        return;
    }
    if (ends_with(key, "_met") || strcmp(key, "suppressed") == 0) {
        fputs(cell_num(c) != 0 ? "ja" : "nein", f);
        return;
    }
    if (ends_with(key, "_eur")) {
        fmt_de(buf, sizeof(buf), cell_num(c), 2);
        fprintf(f, "%s €", buf);
        return;
    }
    if (ends_with(key, "_pct")) {
        fmt_de(buf, sizeof(buf), cell_num(c), 1);
        fprintf(f, "%s %%", buf);
        return;
    }
    if (c->type == SQLITE_INTEGER) {
        if (strcmp(key, "year") == 0 || ends_with(key, "_year"))
            fprintf(f, "%lld", c->i);
        else {
            fmt_de(buf, sizeof(buf), (double)c->i, 0);
            fputs(buf, f);
        }
        return;
    }
    fmt_de(buf, sizeof(buf), c->d, fabs(c->d - round(c->d)) < 1e-9 ? 0 : 2);
    fputs(buf, f);
}

static const char html_css[] =
    "body{font-family:'DejaVu Sans',Arial,Helvetica,sans-serif;"
    "color:#1a1a1a;margin:0 auto;max-width:1100px;padding:1.5em;"
    "line-height:1.4}"
    "h1{font-size:1.6em;border-bottom:3px solid #1f4e79;padding-bottom:.3em}"
    "h2{font-size:1.3em;color:#1f4e79;margin-top:2em;"
    "border-bottom:1px solid #9bb7d4}"
    "h3{font-size:1.05em;margin:1.4em 0 .4em}"
    "p.meta,p.note,p.intro{color:#444;font-size:.92em}"
    "nav ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.4em}"
    "nav a{display:inline-block;padding:.2em .6em;border:1px solid #9bb7d4;"
    "border-radius:3px;text-decoration:none;color:#1f4e79}"
    "table{border-collapse:collapse;width:100%;margin:.3em 0;"
    "font-size:.9em}"
    "th,td{border:1px solid #c8d3de;padding:.25em .5em;text-align:left;"
    "vertical-align:top}"
    "th{background:#e8eff6}"
    "td.n{text-align:right;white-space:nowrap}"
    "tr.total td{font-weight:bold;background:#f3f6f9}"
    "svg{display:block;margin:.5em 0 1em}"
    "svg text{font-size:12px;fill:#1a1a1a}"
    "svg rect.bar{fill:#2e75b6}"
    "@media print{body{max-width:none;padding:0;font-size:10pt}"
    "nav{display:none}h2{page-break-before:auto;break-after:avoid}"
    "table,svg{page-break-inside:avoid;break-inside:avoid}"
    "th{background:#eee !important}svg rect.bar{fill:#555 !important}"
    "a{color:inherit;text-decoration:none}}";

/* Appends the plain text of label cell ${c} to ${buf} (size ${len}). */
static void
label_append(char *buf, size_t len, const struct cell *c)
{
    char num[64];
    const char *s = cell_text(c, num, sizeof(num));
    size_t used = strlen(buf);

    if (c->type == SQLITE_TEXT && strcmp(s, "ALL") == 0)
        s = "Gesamt";
    snprintf(buf + used, len - used, "%s%s", used ? " " : "", s);
}

/* Writes ${s} escaped, cut to ${max} characters (UTF-8) with an ellipsis. */
static void
html_esc_cut(FILE *f, const char *s, size_t max)
{
    size_t chars = 0, k;
    char tmp[512];

    for (k = 0; s[k] != '\0' && k < sizeof(tmp) - 4; k++) {
        if (((unsigned char)s[k] & 0xC0) != 0x80 && ++chars > max)
            break;
        tmp[k] = s[k];
    }
    tmp[k] = '\0';
    html_esc(f, tmp);
    if (s[k] != '\0')
        fputs("…", f);
}

/* A horizontal bar chart of one column of ${r}, as inline SVG.  Long labels
 * are cut; the full label is the bar's tooltip (<title>). */
static void
html_chart(FILE *f, const struct rp_table *t, const struct rs *r)
{
    const int bar_h = 18, gap = 6, label_w = 300, bar_w = 360, val_w = 120;
    char label[256];
    double max = 0;
    size_t k, n = 0;
    int y;

    for (k = 0; k < r->n_rows; k++) {
        double v = cell_num(rs_cell(r, k, t->chart_value));

        if (rs_is_total(r, k) != t->chart_totals)
            continue;
        n++;
        if (!isnan(v) && v > max)
            max = v;
    }
    if (n == 0)
        return;
    fprintf(f,
            "<svg role=\"img\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d "
            "%d\" aria-label=\"",
            label_w + bar_w + val_w, (int)n * (bar_h + gap) + gap,
            label_w + bar_w + val_w, (int)n * (bar_h + gap) + gap);
    html_esc(f, r->heads[t->chart_value]);
    fputs("\">\n<title>", f);
    html_esc(f, r->heads[t->chart_value]);
    fputs("</title>\n", f);
    y = gap;
    for (k = 0; k < r->n_rows; k++) {
        const struct cell *vc = rs_cell(r, k, t->chart_value);
        const struct cell *lc = rs_cell(r, k, t->chart_label);
        double v = cell_num(vc);
        int w;

        if (rs_is_total(r, k) != t->chart_totals)
            continue;
        w = (isnan(v) || max <= 0) ? 0 : (int)lround(v / max * bar_w);
        label[0] = '\0';
        label_append(label, sizeof(label), lc);
        if (t->chart_label2 >= 0)
            label_append(label, sizeof(label),
                         rs_cell(r, k, t->chart_label2));
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">",
                label_w - 8, y + bar_h - 5);
        html_esc_cut(f, label, 40);
        fprintf(f,
                "</text><rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%d\" "
                "height=\"%d\"><title>",
                label_w, y, w, bar_h);
        html_esc(f, label);
        fprintf(f, "</title></rect><text x=\"%d\" y=\"%d\">",
                label_w + w + 6, y + bar_h - 5);
        html_cell(f, vc, r->keys[t->chart_value]);
        fputs("</text>\n", f);
        y += bar_h + gap;
    }
    fputs("</svg>\n", f);
}

static void
html_table(FILE *f, const struct rp_table *t, const struct rs *r)
{
    size_t k;
    int c;

    fprintf(f, "<h3 id=\"%s\">", t->id);
    html_esc(f, t->title);
    fprintf(f, " <small>(%s)</small></h3>\n", t->indicator);
    if (r->n_rows == 0) {
        fputs("<p class=\"note\">Keine Daten zum Stichtag.</p>\n", f);
        return;
    }
    if (t->chart_label >= 0)
        html_chart(f, t, r);
    fputs("<table>\n<thead><tr>", f);
    for (c = 0; c < r->n_cols; c++) {
        fputs("<th scope=\"col\">", f);
        html_esc(f, r->heads[c]);
        fputs("</th>", f);
    }
    fputs("</tr></thead>\n<tbody>\n", f);
    for (k = 0; k < r->n_rows; k++) {
        fputs(rs_is_total(r, k) ? "<tr class=\"total\">" : "<tr>", f);
        for (c = 0; c < r->n_cols; c++) {
            const struct cell *cell = rs_cell(r, k, c);

            fputs(cell->type == SQLITE_INTEGER || cell->type == SQLITE_FLOAT
                      ? "<td class=\"n\">"
                      : "<td>",
                  f);
            html_cell(f, cell, r->keys[c]);
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</tbody>\n</table>\n", f);
    if (t->note != NULL) {
        fputs("<p class=\"note\">", f);
        html_esc(f, t->note);
        fputs("</p>\n", f);
    }
}

static void
html_begin(struct ctx *x)
{
    FILE *f = x->out;
    size_t s;

    fputs("<!DOCTYPE html>\n<html lang=\"de\">\n<head>\n"
          "<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, "
          "initial-scale=1\">\n<title>Koordinierungszentren Kinderschutz – "
          "Landesübersicht zum ",
          f);
    html_esc(f, x->as_of);
    fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n", html_css);
    fputs("<h1>Koordinierungszentren Kinderschutz – Landesübersicht</h1>\n"
          "<p class=\"meta\">Stichtag: <strong>",
          f);
    html_esc(f, x->as_of);
    fputs("</strong>. Je Standort und insgesamt, berechnet aus den "
          "Indikatorsichten (domain.md §3). Der Bericht enthält keine "
          "personenbezogenen Daten: keine Namen, keine Kontaktdaten, keine "
          "Freitextnotizen, keine nicht freigegebenen Fallanalysen. "
          "„–“ = kein Wert, „•“ = unterdrückt (1–2 Fälle).</p>\n<nav><ul>",
          f);
    for (s = 0; s < N_SECTIONS; s++) {
        fprintf(f, "<li><a href=\"#%s\">", sections[s].id);
        html_esc(f, sections[s].title);
        fputs("</a></li>", f);
    }
    fputs("</ul></nav>\n", f);
}

/* ---- CSV --------------------------------------------------------------- */

/* One RFC 4180 field: quoted if it holds a comma, quote, CR or LF. */
static void
csv_field(FILE *f, const char *s, int last)
{
    if (strpbrk(s, ",\"\r\n") != NULL) {
        fputc('"', f);
        for (; *s != '\0'; s++) {
            if (*s == '"')
                fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputs(last ? "\r\n" : ",", f);
}

static void
csv_table(FILE *f, const struct rp_section *sec, const struct rp_table *t,
          const struct rs *r)
{
    char num[64], rowno[32];
    size_t k;
    int c;

    for (k = 0; k < r->n_rows; k++) {
        const char *site = "";

        if (r->site_col >= 0)
            site = cell_text(rs_cell(r, k, r->site_col), num, sizeof(num));
        snprintf(rowno, sizeof(rowno), "%zu", k + 1);
        for (c = 0; c < r->n_cols; c++) {
            char site_buf[64];

            if (c == r->site_col)
                continue;
            snprintf(site_buf, sizeof(site_buf), "%s", site);
            csv_field(f, sec->id, 0);
            csv_field(f, t->id, 0);
            csv_field(f, t->indicator, 0);
            csv_field(f, rowno, 0);
            csv_field(f, site_buf, 0);
            csv_field(f, r->keys[c], 0);
            csv_field(f, r->heads[c], 0);
            csv_field(f, cell_text(rs_cell(r, k, c), num, sizeof(num)), 1);
        }
    }
}

/* ---- JSON -------------------------------------------------------------- */

static cJSON *
json_table(const struct rp_table *t, const struct rs *r)
{
    cJSON *o = cJSON_CreateObject(), *cols, *rows;
    size_t k;
    int c;

    if (o == NULL)
        return NULL;
    cJSON_AddStringToObject(o, "id", t->id);
    cJSON_AddStringToObject(o, "indicator", t->indicator);
    cJSON_AddStringToObject(o, "title", t->title);
    if (t->note != NULL)
        cJSON_AddStringToObject(o, "note", t->note);
    cols = cJSON_AddArrayToObject(o, "columns");
    rows = cJSON_AddArrayToObject(o, "rows");
    if (cols == NULL || rows == NULL)
        goto nomem;
    for (c = 0; c < r->n_cols; c++) {
        cJSON *col = cJSON_CreateObject();

        if (col == NULL || !cJSON_AddItemToArray(cols, col))
            goto nomem_item;
        if (cJSON_AddStringToObject(col, "key", r->keys[c]) == NULL ||
            cJSON_AddStringToObject(col, "label", r->heads[c]) == NULL)
            goto nomem;
        continue;
nomem_item:
        cJSON_Delete(col);
        goto nomem;
    }
    for (k = 0; k < r->n_rows; k++) {
        cJSON *row = cJSON_CreateObject();

        if (row == NULL)
            goto nomem;
        if (!cJSON_AddItemToArray(rows, row)) {
            cJSON_Delete(row);
            goto nomem;
        }
        for (c = 0; c < r->n_cols; c++) {
            const struct cell *cell = rs_cell(r, k, c);
            cJSON *v;

            switch (cell->type) {
            case SQLITE_INTEGER:
                v = cJSON_AddNumberToObject(row, r->keys[c],
                                            (double)cell->i);
                break;
            case SQLITE_FLOAT:
                v = cJSON_AddNumberToObject(row, r->keys[c], cell->d);
                break;
            case SQLITE_TEXT:
                v = cJSON_AddStringToObject(row, r->keys[c], cell->s);
                break;
            default:
                v = cJSON_AddNullToObject(row, r->keys[c]);
            }
            if (v == NULL)
                goto nomem;
        }
    }
    return o;

nomem:
    cJSON_Delete(o);
    return NULL;
}

/* ---- driver ------------------------------------------------------------ */

static int
read_as_of(struct ctx *x)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(x->db, "SELECT as_of FROM v_as_of", -1, &st,
                           NULL) != SQLITE_OK)
        return fail(x, -KZ_EDB, "no view v_as_of: the replica lacks the "
                                "Kinderschutz schema");
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
        snprintf(x->as_of, sizeof(x->as_of), "%s",
                 (const char *)sqlite3_column_text(st, 0));
    else
        snprintf(x->as_of, sizeof(x->as_of), "?");
    rc = (rc == SQLITE_ROW || rc == SQLITE_DONE)
             ? 0
             : fail(x, -KZ_EDB, sqlite3_errstr(rc));
    sqlite3_finalize(st);
    return rc;
}

/**
 * report_format_parse(name, out): sets *${out} from "html", "csv" or
 * "json" (exact, lower case).  Returns 0, or -KZ_EINVAL for any other
 * ${name} (also NULL), leaving *${out} unchanged.
 */
int
report_format_parse(const char *name, enum report_format *out)
{
    if (name == NULL || out == NULL)
        return -KZ_EINVAL;
    if (strcmp(name, "html") == 0)
        *out = REPORT_HTML;
    else if (strcmp(name, "csv") == 0)
        *out = REPORT_CSV;
    else if (strcmp(name, "json") == 0)
        *out = REPORT_JSON;
    else
        return -KZ_EINVAL;
    return 0;
}

/**
 * report_write(db, fmt, out, err): writes the consolidated report of the
 * replica ${db} in format ${fmt} to ${out}.
 *
 * Content, per site and in total: network partners by sector (with KKG
 * coverage and directory currency), cooperation agreements in force and
 * their reviews overdue or due within 90 days, meetings against the target
 * and participants, trainings and participants, consultations, case
 * reviews (DP-03 suppressed breakdowns as in the views), findings, measures
 * and recommendations, funding.  Rows whose site_code is "ALL" are totals.
 *
 * CSV is a long format with one header line and the columns
 *   section,table,indicator,row,site_code,column,label,value
 * one record per cell: ${row} numbers the rows of a table from 1, ${column}
 * is the machine key of the cell and ${label} its German heading; a NULL
 * value (e.g. a suppressed cell) is an empty field.  Fields are quoted per
 * RFC 4180 (CRLF line ends).
 *
 * JSON is {"as_of", "sections": [{"id", "title", "tables": [{"id",
 * "indicator", "title", "columns": [{"key", "label"}], "rows": [{key:
 * value}]}]}]} with numbers as numbers and NULL as null.
 *
 * All three formats carry the same figures; the output depends only on the
 * data and the reference date (v_as_of), not on the time of the call.
 *
 * All queries run in one read transaction (a savepoint, released before
 * the return), so every table sees the same state of the replica.
 *
 * Ownership: ${db} and ${out} are borrowed; nothing is closed.  ${err} may
 * be NULL; otherwise, on failure, *${err} is set to a static one-line
 * reason in English (never to be freed).
 *
 * Returns 0; -KZ_EINVAL for a NULL ${db}/${out} or an unknown ${fmt};
 * -KZ_EDB when a query fails (e.g. the schema lacks the indicator views);
 * -KZ_ENOMEM when memory runs out; -KZ_EIO when writing to ${out} fails.
 * On failure part of the report may already have been written.
 */
int
report_write(sqlite3 *db, enum report_format fmt, FILE *out,
             const char **err)
{
    struct ctx x = {db, out, err, ""};
    cJSON *root = NULL, *jsecs = NULL;
    size_t s, t;
    int rc;

    if (db == NULL || out == NULL)
        return fail(&x, -KZ_EINVAL, "no database or output");
    if (fmt != REPORT_HTML && fmt != REPORT_CSV && fmt != REPORT_JSON)
        return fail(&x, -KZ_EINVAL, "unknown report format");
    /* One read transaction, so that every table sees the same data. */
    if (sqlite3_exec(db, "SAVEPOINT kz_report", NULL, NULL, NULL) !=
        SQLITE_OK)
        return fail(&x, -KZ_EDB, "cannot open a read transaction");
    rc = read_as_of(&x);
    if (rc != 0)
        goto out;

    if (fmt == REPORT_HTML) {
        html_begin(&x);
    } else if (fmt == REPORT_CSV) {
        fputs("section,table,indicator,row,site_code,column,label,value\r\n",
              out);
    } else {
        root = cJSON_CreateObject();
        if (root == NULL ||
            cJSON_AddStringToObject(root, "report",
                                    "kzsync consolidated view") == NULL ||
            cJSON_AddStringToObject(root, "as_of", x.as_of) == NULL ||
            (jsecs = cJSON_AddArrayToObject(root, "sections")) == NULL) {
            rc = fail(&x, -KZ_ENOMEM, "out of memory");
            goto out;
        }
    }

    for (s = 0; s < N_SECTIONS; s++) {
        const struct rp_section *sec = &sections[s];
        cJSON *jsec = NULL, *jtabs = NULL;

        if (fmt == REPORT_HTML) {
            fprintf(out, "<section>\n<h2 id=\"%s\">", sec->id);
            html_esc(out, sec->title);
            fputs("</h2>\n<p class=\"intro\">", out);
            html_esc(out, sec->intro);
            fputs("</p>\n", out);
        } else if (fmt == REPORT_JSON) {
            jsec = cJSON_CreateObject();
            if (jsec == NULL || !cJSON_AddItemToArray(jsecs, jsec)) {
                cJSON_Delete(jsec);
                rc = fail(&x, -KZ_ENOMEM, "out of memory");
                goto out;
            }
            if (cJSON_AddStringToObject(jsec, "id", sec->id) == NULL ||
                cJSON_AddStringToObject(jsec, "title", sec->title) == NULL ||
                (jtabs = cJSON_AddArrayToObject(jsec, "tables")) == NULL) {
                rc = fail(&x, -KZ_ENOMEM, "out of memory");
                goto out;
            }
        }
        for (t = 0; t < sec->n_tables; t++) {
            const struct rp_table *tab = &sec->tables[t];
            struct rs r;
            cJSON *jt;

            rc = rs_fetch(&x, tab, &r);
            if (rc != 0)
                goto out;
            switch (fmt) {
            case REPORT_HTML:
                html_table(out, tab, &r);
                break;
            case REPORT_CSV:
                csv_table(out, sec, tab, &r);
                break;
            case REPORT_JSON:
                jt = json_table(tab, &r);
                if (jt == NULL || !cJSON_AddItemToArray(jtabs, jt)) {
                    cJSON_Delete(jt);
                    rs_free(&r);
                    rc = fail(&x, -KZ_ENOMEM, "out of memory");
                    goto out;
                }
                break;
            }
            rs_free(&r);
        }
        if (fmt == REPORT_HTML)
            fputs("</section>\n", out);
    }

    if (fmt == REPORT_HTML) {
        fputs("<footer><p class=\"meta\">Erzeugt von kzsync aus den "
              "Indikatorsichten. Kleine Fallzahlen werden nur landesweit je "
              "Jahr und mit Zellunterdrückung ausgewiesen (DP-03).</p>"
              "</footer>\n</body>\n</html>\n",
              out);
    } else if (fmt == REPORT_JSON) {
        char *text = cJSON_Print(root);

        if (text == NULL) {
            rc = fail(&x, -KZ_ENOMEM, "out of memory");
            goto out;
        }
        fputs(text, out);
        fputc('\n', out);
        cJSON_free(text);
    }
    if (fflush(out) != 0 || ferror(out))
        rc = fail(&x, -KZ_EIO, "cannot write the report");

out:
    cJSON_Delete(root);
    sqlite3_exec(db, "RELEASE kz_report", NULL, NULL, NULL);
    return rc;
}
