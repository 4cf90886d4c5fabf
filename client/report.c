/* report.c: the consolidated report (HTML, CSV, JSON) from the views. */
/*
 * Structure: a static table of sections; each section holds tables, each
 * table is one SQL query over the indicator views (v_ind*, v_as_of) plus
 * code_list labels, with German column headings and, for HTML, up to two
 * bar charts and optionally a matrix layout (rows × sites).  A query result
 * is fetched once into memory (struct rs) and then handed to the emitter
 * of the chosen format, so that every format shows exactly the same
 * figures.
 *
 * Privacy: no query here reads a base table except code_list (labels) and,
 * for the legend of the site codes in the HTML header, site.code and
 * site.name (organisational reference data).  The views read no personal
 * or site-only column (client/schema/kinderschutz.sql, section 4), so the
 * report holds no names of persons, no contact details and no free-text
 * notes, also on a site's own replica.
 *
 * HTML: one page, inline CSS and SVG, no script and no external resource;
 * German number and date notation; DP-03 suppressed cells shown as "< 3";
 * print layout with a page per section, repeated table heads and the
 * reference date and page number in the page margin.
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
#define LBL(list, expr)                                                        \
    "COALESCE((SELECT label_de FROM code_list WHERE list_name = '" list        \
    "' AND code = " expr "), " expr ")"

/* A horizontal bar chart of some columns of a table (HTML only).  Keys
 * are column names of the table's query, comma-separated. */
struct rp_chart {
    const char *caption; /* German caption: what is shown; NULL = none */
    const char *labels;  /* keys of the columns joined into the bar label */
    const char *series;  /* keys of the value columns (legend if > 1) */
    const char *target;  /* key of a target value drawn as a tick, or NULL */
    const char *colors;  /* one "#rrggbb" per series, or NULL (palette) */
    int stacked;         /* 1: series stacked in one bar; 0: side by side */
    int totals;          /* 1: chart the "ALL" rows; 0: the other rows */
};

#define NO_CHART                                                               \
    {                                                                          \
        NULL, NULL, NULL, NULL, NULL, 0, 0                                     \
    }

struct rp_table {
    const char *id;        /* machine id (CSV "table", JSON "id") */
    const char *indicator; /* e.g. "IND-05" */
    const char *title;     /* German caption */
    const char *heads;     /* German headings, '|'-separated, one per column */
    const char *sql;       /* the query; column names are the machine keys */
    const char *note;      /* German footnote, or NULL */
    const char *pivot;     /* HTML only: key of the value column shown as
                              a matrix (rows × sites), or NULL */
    struct rp_chart charts[2]; /* HTML only; caption NULL = no chart */
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
    {"partners_by_site",
     "IND-01",
     "Aktive Netzwerkpartner je Standort",
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
     NULL,
     {{"Aktive Partner je Standort nach Sektor (NZFH)", "site_code",
       "kjh,health,other", NULL, NULL, 1, 0}}},
    {"partners_by_sector",
     "IND-01",
     "Aktive Netzwerkpartner nach Sektor (fein)",
     "Standort|Sektor|Partner",
     ALL_LAST("SELECT site_code, " LBL(
         "sector_code",
         "sector_code") " AS sector, SUM(partners) AS partners"
                        " FROM v_ind01_partners_by_sector"
                        " GROUP BY site_code, sector_code"
                        " UNION ALL SELECT 'ALL', " LBL(
                            "sector_code",
                            "sector_code") ", SUM(partners) FROM "
                                           "v_ind01_partners_by_sector"
                                           " GROUP BY sector_code") "site_code,"
                                                                    " partners "
                                                                    "DESC, "
                                                                    "sector",
     NULL,
     "partners",
     {{"Alle Standorte: aktive Partner je Sektor", "sector", "partners", NULL,
       NULL, 0, 1}}},
    {"partners_by_municipality",
     "IND-01",
     "Aktive Netzwerkpartner je Standort und Kommune",
     "Standort|AGS|Kommune|Kinder- und Jugendhilfe|Gesundheitswesen|"
     "Weitere Bereiche|Partner gesamt",
     "SELECT site_code, municipality_ags AS ags, municipality_name AS"
     " municipality,"
     " SUM(CASE WHEN nzfh_sector = 'kjh' THEN partners ELSE 0 END) AS kjh,"
     " SUM(CASE WHEN nzfh_sector = 'health' THEN partners ELSE 0 END) AS"
     " health,"
     " SUM(CASE WHEN nzfh_sector = 'other' THEN partners ELSE 0 END) AS"
     " other,"
     " SUM(partners) AS partners FROM v_ind01_partners_by_sector"
     " GROUP BY site_code, municipality_ags, municipality_name"
     " ORDER BY site_code, municipality_ags",
     "Kommune: Sitz der Einrichtung (ohne Angabe: leer).",
     NULL,
     {NO_CHART}},
    {"networks_kkg",
     "IND-02/03",
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
     "Welche Kategorien fehlen, zeigt die folgende Tabelle (IND-02b).",
     NULL,
     {{"Abdeckung der 18 KKG-Kategorien je Netzwerk", "site_code,network_name",
       "coverage_pct", NULL, NULL, 0, 0},
      {"Anteil Gesundheitswesen an den Partnern je Netzwerk",
       "site_code,network_name", "health_share_pct", NULL, NULL, 0, 0}}},
    {"kkg_gaps",
     "IND-02b",
     "Fehlende Kategorien nach § 3 Abs. 2 KKG je Netzwerk",
     "Standort|Netzwerk|fehlend|Fehlende Kategorien",
     "SELECT site_code, network_name, COUNT(*) AS missing,"
     " group_concat(kkg_category_label_de, '; ') AS categories"
     " FROM (SELECT * FROM v_ind02b_kkg_gaps"
     " ORDER BY site_code, network_name, sort_order)"
     " GROUP BY site_code, network_id, network_name"
     " ORDER BY site_code, network_name",
     NULL,
     NULL,
     {NO_CHART}},
    {"directory_currency",
     "IND-14",
     "Aktualität des Partnerverzeichnisses",
     "Standort|Aktive Einrichtungen|nicht geprüft seit 24 Monaten|Anteil",
     ALL_LAST("SELECT site_code, active_institutions, not_verified_24m,"
              " not_verified_pct FROM v_ind14_directory_currency"
              " UNION ALL SELECT 'ALL', SUM(active_institutions),"
              " SUM(not_verified_24m), ROUND(100.0 * SUM(not_verified_24m)"
              " / NULLIF(SUM(active_institutions), 0), 1)"
              " FROM v_ind14_directory_currency") "site_code",
     "Nicht geprüft: Angaben der Einrichtung seit mehr als 24 Monaten nicht "
     "bestätigt oder nie geprüft.",
     NULL,
     {NO_CHART}},
};

static const struct rp_table agreement_tables[] = {
    {"agreements_by_site",
     "IND-04/05",
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
     NULL,
     {{"Überprüfungen der Vereinbarungen je Standort", "site_code",
       "reviews_overdue,reviews_due_90d", NULL, "#c0392b,#f0a030", 1, 0}}},
    {"agreement_reviews_due",
     "IND-05",
     "Überprüfungen überfällig oder in 90 Tagen fällig",
     "Standort|Vereinbarung|Art|Status|Überprüfung fällig am|Prüfstatus|"
     "Tage überfällig|Tage bis Fälligkeit",
     "SELECT site_code, title, " LBL(
         "agreement_kind",
         "agreement_kind") " AS kind, " LBL("agreement_status",
                                            "status") " AS status,"
                                                      " next_review_due, CASE "
                                                      "review_state WHEN "
                                                      "'overdue' THEN "
                                                      "'überfällig'"
                                                      " ELSE 'in 90 Tagen "
                                                      "fällig' END AS "
                                                      "review_state, "
                                                      "days_overdue,"
                                                      " days_until_due FROM "
                                                      "v_ind05_agreement_"
                                                      "reviews"
                                                      " WHERE review_state IN "
                                                      "('overdue', 'due_90d')"
                                                      " ORDER BY site_code, "
                                                      "review_state DESC, "
                                                      "next_review_due",
     NULL,
     NULL,
     {NO_CHART}},
};

static const struct rp_table meeting_tables[] = {
    {"meetings_by_site",
     "IND-07b",
     "Netzwerktreffen und Teilnehmende je Jahr",
     "Standort|Jahr|Treffen|Teilnehmende",
     ALL_LAST("SELECT site_code, year, SUM(meetings) AS meetings,"
              " SUM(participants) AS participants"
              " FROM v_ind07b_meetings_total GROUP BY site_code, year"
              " UNION ALL SELECT 'ALL', year, SUM(meetings),"
              " SUM(participants) FROM v_ind07b_meetings_total"
              " GROUP BY year") "site_code, year",
     "Gezählt werden Treffen bis zum Stichtag.",
     NULL,
     {{"Netzwerktreffen je Standort und Jahr", "site_code,year", "meetings",
       NULL, NULL, 0, 0},
      {"Teilnehmende an Netzwerktreffen je Standort und Jahr", "site_code,year",
       "participants", NULL, NULL, 0, 0}}},
    {"meetings_by_type",
     "IND-07b",
     "Treffen und Teilnehmende je Jahr nach Art des Treffens",
     "Standort|Jahr|Art|Treffen|Teilnehmende",
     ALL_LAST("SELECT site_code, year, " LBL(
         "event_type",
         "event_type") " AS event_type, meetings, participants"
                       " FROM v_ind07b_meetings_total"
                       " UNION ALL SELECT 'ALL', year, " LBL(
                           "event_type",
                           "event_type") ", SUM(meetings),"
                                         " SUM(participants)"
                                         " FROM "
                                         "v_ind07b_meetings_total"
                                         " GROUP BY year,"
                                         " event_type") "site_code, year, "
                                                        "event_type",
     "Gezählt werden Treffen bis zum Stichtag.",
     NULL,
     {NO_CHART}},
    {"meetings_by_network",
     "IND-06",
     "Treffen je Netzwerk und Jahr gegen den Zielwert",
     "Standort|Netzwerk|Jahr|Treffen|Zielwert|Ziel erreicht",
     "SELECT site_code, network_name, year, meetings, target, target_met"
     " FROM v_ind06_meetings_per_network"
     " ORDER BY site_code, network_name, year",
     "Zielwert: regelmäßige Netzwerktreffen (RL Frühe Hilfen Nds. Nr. 4.3).",
     NULL,
     {{"Treffen je Netzwerk und Jahr; senkrechter Strich = Zielwert",
       "site_code,network_name,year", "meetings", "target", NULL, 0, 0}}},
    {"meeting_participants_by_sector",
     "IND-07",
     "Teilnehmende an Treffen nach Sektor (NZFH)",
     "Standort|Jahr|Sektor|Treffen|Teilnehmende|erreichte Partner",
     ALL_LAST("SELECT site_code, year, " LBL(
         "nzfh_sector",
         "nzfh_sector") " AS sector, meetings, participants, partners_reached"
                        " FROM v_ind07_meeting_participants"
                        " UNION ALL SELECT 'ALL', year, " LBL(
                            "nzfh_sector",
                            "nzfh_sector") ", SUM(meetings),"
                                           " SUM(participants), "
                                           "SUM(partners_reached)"
                                           " FROM v_ind07_meeting_participants"
                                           " GROUP BY year, nzfh_sector") "site"
                                                                          "_cod"
                                                                          "e, "
                                                                          "year"
                                                                          ", "
                                                                          "sect"
                                                                          "or",
     NULL,
     NULL,
     {NO_CHART}},
};

static const struct rp_table training_tables[] = {
    {"trainings_by_site",
     "IND-08",
     "Fortbildungen je Standort und Jahr",
     "Standort|Jahr|Fortbildungen|Unterrichtseinheiten|Teilnehmende|"
     "Teilnehmenden-UE|Anteil interdisziplinär|Sensibilisierung "
     "Kinderschutz|"
     "Bewertung (1–5)",
     ALL_LAST("SELECT site_code, year, trainings, teaching_units,"
              " participants, participant_units, interdisciplinary_pct,"
              " awareness_trainings, evaluation_mean FROM v_ind08_trainings"
              /* The total from the trainings themselves: the sites'
               * shares are rounded already. */
              " UNION ALL SELECT 'ALL', year, COUNT(*), SUM(teaching_units),"
              " SUM(participants_total), SUM(participants_total *"
              " teaching_units), ROUND(AVG(is_interdisciplinary) * 100, 1),"
              " SUM(training_kind = 'awareness_child_protection'), NULL"
              " FROM v_training_held GROUP BY year") "site_code, year",
     "UE = Unterrichtseinheit zu 45 Minuten. Die mittlere Bewertung "
     "wird "
     "nicht über Standorte gemittelt.",
     NULL,
     {{"Fortbildungen je Standort und Jahr", "site_code,year", "trainings",
       NULL, NULL, 0, 0},
      {"Teilnehmende an Fortbildungen je Standort und Jahr", "site_code,year",
       "participants", NULL, NULL, 0, 0}}},
    {"training_participants_by_sector",
     "IND-08b",
     "Teilnehmende an Fortbildungen nach Sektor",
     "Standort|Jahr|Sektor (NZFH)|Sektor|Teilnehmende",
     ALL_LAST("SELECT site_code, year, " LBL(
         "nzfh_sector",
         "nzfh_"
         "sector") " AS nzfh_sector, " LBL("sector_code",
                                           "sector_code") " AS sector, "
                                                          "participants FROM "
                                                          "v_ind08b_trainings_"
                                                          "by_sector"
                                                          " UNION ALL SELECT "
                                                          "'ALL', "
                                                          "year, " LBL(
                                                              "nzfh_sector",
                                                              "nzf"
                                                              "h_"
                                                              "sec"
                                                              "to"
                                                              "r") ", " LBL("se"
                                                                            "ct"
                                                                            "or"
                                                                            "_c"
                                                                            "od"
                                                                            "e",
                                                                            "se"
                                                                            "ct"
                                                                            "or"
                                                                            "_c"
                                                                            "od"
                                                                            "e") ", "
                                                                                 "SUM("
                                                                                 "participants"
                                                                                 ")"
                                                                                 " FROM "
                                                                                 "v_ind08b_"
                                                                                 "trainings_"
                                                                                 "by_sector"
                                                                                 " GROUP BY "
                                                                                 "year, "
                                                                                 "nzfh_sector,"
                                                                                 " sector_"
                                                                                 "code") "site"
                                                                                         "_cod"
                                                                                         "e, "
                                                                                         "year"
                                                                                         ", "
                                                                                         "nzfh"
                                                                                         "_sec"
                                                                                         "tor,"
                                                                                         " sec"
                                                                                         "tor",
     NULL,
     "participants",
     {NO_CHART}},
};

static const struct rp_table consultation_tables[] = {
    {"consultations_by_site",
     "IND-09",
     "Beratungen je Standort und Jahr",
     "Standort|Jahr|Beratungen|Stunden|außerhalb des eigenen Einzugsgebiets",
     /* Hours from the minutes: the view's hours per kind are rounded
      * already, and a sum of them can be off by a tenth or more. */
     ALL_LAST(
         "WITH m AS (SELECT s.code AS site_code, strftime('%Y',"
         " c.consultation_date) AS year, SUM(c.duration_minutes) AS"
         " minutes FROM consultation c JOIN site s ON s.id = c.site_id"
         " CROSS JOIN v_as_of a WHERE c.consultation_date <= a.as_of"
         " GROUP BY 1, 2), v AS (SELECT site_code, year,"
         " SUM(consultations) AS consultations, SUM(outside_catchment)"
         " AS outside_catchment FROM v_ind09_consultations GROUP BY"
         " site_code, year) SELECT v.site_code, v.year,"
         " v.consultations, ROUND(m.minutes / 60.0, 1) AS hours,"
         " v.outside_catchment FROM v JOIN m USING (site_code, year)"
         " UNION ALL SELECT 'ALL', v.year, SUM(v.consultations),"
         " ROUND(SUM(m.minutes) / 60.0, 1), SUM(v.outside_catchment)"
         " FROM v JOIN m USING (site_code, year) GROUP BY v.year") "site_code, "
                                                                   "year",
     NULL,
     NULL,
     {{"Beratungen je Standort und Jahr", "site_code,year", "consultations",
       NULL, NULL, 0, 0},
      {"Beratungsstunden je Standort und Jahr", "site_code,year", "hours", NULL,
       NULL, 0, 0}}},
    {"consultations_by_kind",
     "IND-09",
     "Beratungen nach Art",
     "Standort|Jahr|Art|Beratungen|Stunden|außerhalb des Einzugsgebiets|"
     "beratene Kommunen",
     "SELECT site_code, year, " LBL(
         "consultation_kind",
         "consultation_kind") " AS kind,"
                              " consultations, hours, outside_catchment, "
                              "municipalities_advised"
                              " FROM v_ind09_consultations ORDER BY site_code, "
                              "year, kind",
     "Anonyme Fallberatungen erfassen nur Thema, Art der anfragenden Stelle "
     "und Kommune (DP-01).",
     NULL,
     {NO_CHART}},
};

static const struct rp_table review_tables[] = {
    {"case_reviews",
     "IND-10",
     "Freigegebene Fallanalysen je Standort und Jahr",
     "Standort|Jahr|Fallanalysen|abgeschlossen|laufend|geplant",
     ALL_LAST("SELECT site_code, review_year, reviews, completed,"
              " in_progress, planned FROM v_ind10_case_reviews"
              " UNION ALL SELECT 'ALL', review_year, SUM(reviews),"
              " SUM(completed), SUM(in_progress), SUM(planned)"
              " FROM v_ind10_case_reviews GROUP BY review_year") "site_code, "
                                                                 "review_year",
     "Nur nach Vier-Augen-Prüfung an das Land freigegebene Fallanalysen "
     "(DP-02).",
     NULL,
     {{"Freigegebene Fallanalysen je Standort und Jahr nach Stand",
       "site_code,review_year", "completed,in_progress,planned", NULL, NULL, 1,
       0}}},
    {"findings",
     "IND-10b",
     "Befunde nach Kategorie und Wirkung (landesweit, alle Jahre)",
     "Standort|Kategorie|förderlich|hinderlich|Befunde gesamt",
     "SELECT 'ALL' AS site_code, " LBL(
         "finding_category",
         "category") " AS category,"
                     " SUM(CASE WHEN polarity = 'supportive' THEN findings "
                     "ELSE 0 END)"
                     " AS supportive,"
                     " SUM(CASE WHEN polarity = 'hindering' THEN findings ELSE "
                     "0 END)"
                     " AS hindering, SUM(findings) AS findings"
                     " FROM v_ind10b_findings GROUP BY category ORDER BY "
                     "findings DESC,"
                     " category",
     NULL,
     NULL,
     {{"Befunde je Kategorie nach Wirkung", "category", "supportive,hindering",
       NULL, "#70ad47,#c0392b", 1, 1}}},
    {"findings_by_site",
     "IND-10b",
     "Befunde je Standort und Jahr nach Kategorie und Wirkung",
     "Standort|Jahr|Kategorie|förderlich|hinderlich|Befunde gesamt",
     "SELECT site_code, review_year, " LBL(
         "finding_category",
         "category") " AS category,"
                     " SUM(CASE WHEN polarity = 'supportive' THEN findings"
                     " ELSE 0 END) AS supportive,"
                     " SUM(CASE WHEN polarity = 'hindering' THEN findings"
                     " ELSE 0 END) AS hindering, SUM(findings) AS findings"
                     " FROM v_ind10b_findings"
                     " GROUP BY site_code, review_year, category"
                     " ORDER BY site_code, review_year, category",
     "Nur freigegebene Fallanalysen; keine Aufgliederung unter Standort × "
     "Jahr (DP-03).",
     NULL,
     {NO_CHART}},
    {"reviews_by_risk_type",
     "IND-10c",
     "Fallanalysen nach Gefährdungsart (landesweit je Jahr)",
     "Standort|Jahr|Gefährdungsart|Fallanalysen|unterdrückt",
     "SELECT site_code, review_year, " LBL(
         "risk_type", "risk_type") " AS risk_type, reviews, suppressed FROM "
                                   "v_ind10c_reviews_by_risk_type"
                                   " ORDER BY review_year, risk_type",
     "„< 3“: Zellen mit 1 oder 2 Fallanalysen werden zum Schutz vor "
     "Reidentifizierung nicht ausgewiesen (DP-03).",
     NULL,
     {NO_CHART}},
    {"reviews_by_age_band",
     "IND-10d",
     "Fallanalysen nach Altersgruppe (landesweit je Jahr)",
     "Standort|Jahr|Altersgruppe|Fallanalysen|unterdrückt",
     "SELECT site_code, review_year, " LBL(
         "age_band", "child_age_band") " AS age_band, reviews, suppressed FROM "
                                       "v_ind10d_reviews_by_age_band v"
                                       " ORDER BY review_year, instr('under_1 "
                                       "1_to_3 3_to_6 6_to_10 10_to_14"
                                       " 14_to_18 multiple unknown', "
                                       "v.child_age_band), age_band",
     "„< 3“: Zellen mit 1 oder 2 Fallanalysen werden zum Schutz vor "
     "Reidentifizierung nicht ausgewiesen (DP-03).",
     NULL,
     {NO_CHART}},
    {"measures",
     "IND-11",
     "Maßnahmen je Standort",
     "Standort|Maßnahmen|umgesetzt|in Arbeit|geplant|verworfen|überfällig|"
     "Umsetzungsquote|Tage bis Umsetzung (Mittel)",
     ALL_LAST(
         "SELECT site_code, measures, implemented, in_progress, planned,"
         " dropped, overdue, implementation_rate_pct,"
         " mean_days_to_implementation FROM v_ind11_measures"
         " UNION ALL SELECT 'ALL', SUM(measures), SUM(implemented),"
         " SUM(in_progress), SUM(planned), SUM(dropped), SUM(overdue),"
         " ROUND(100.0 * SUM(implemented) / NULLIF(SUM(measures)"
         " - SUM(dropped), 0), 1), NULL FROM v_ind11_measures") "site_code",
     "Umsetzungsquote = umgesetzt ÷ (gesamt − verworfen). Maßnahmen aus "
     "nicht freigegebenen Fallanalysen zählen nicht.",
     NULL,
     {{"Maßnahmen je Standort nach Stand", "site_code",
       "implemented,in_progress,planned,dropped", NULL,
       "#70ad47,#2e75b6,#f0a030,#a5a5a5", 1, 0},
      {"Umsetzungsquote je Standort", "site_code", "implementation_rate_pct",
       NULL, NULL, 0, 0}}},
    {"recommendations",
     "IND-12",
     "Umsetzung externer Empfehlungen (alle Standorte)",
     "Standort|Quelle|Empfehlung|Thema|Maßnahmen|umgesetzt|"
     "Standorte mit Maßnahmen",
     "SELECT 'ALL' AS site_code, " LBL(
         "recommendation_source",
         "source") " AS source, title_de, CASE theme"
                   " WHEN 'risk_assessment' THEN 'Gefährdungseinschätzung'"
                   " WHEN 'training' THEN 'Fortbildung'"
                   " WHEN 'child_participation' THEN 'Beteiligung von Kindern'"
                   " WHEN 'error_culture' THEN 'Fehlerkultur'"
                   " WHEN 'cooperation_police_justice' THEN"
                   " 'Zusammenarbeit mit Polizei und Justiz'"
                   " WHEN 'handover' THEN 'Fallübergabe'"
                   " WHEN 'network_quality' THEN 'Qualität der Netzwerkarbeit'"
                   " ELSE theme END AS theme, SUM(measures) AS measures,"
                   " SUM(implemented) AS implemented,"
                   " SUM(measures > 0) AS sites_with_measures"
                   " FROM v_ind12_recommendations"
                   " GROUP BY recommendation_id, source, title_de, theme"
                   " ORDER BY source, title_de",
     "Empfehlungstexte sind Paraphrasen, solange sie nicht gegen die Quelle "
     "geprüft sind.",
     NULL,
     {NO_CHART}},
    {"recommendations_by_site",
     "IND-12",
     "Umsetzung externer Empfehlungen je Standort",
     "Standort|Quelle|Empfehlung|Maßnahmen|umgesetzt",
     "SELECT site_code, " LBL("recommendation_source",
                              "source") " AS source, title_de, measures,"
                                        " implemented"
                                        " FROM v_ind12_recommendations"
                                        " ORDER BY site_code, source,"
                                        " title_de",
     "Auch Empfehlungen ohne Maßnahme (0) sind aufgeführt.",
     NULL,
     {NO_CHART}},
};

static const struct rp_table funding_tables[] = {
    {"funding_by_site",
     "IND-13",
     "Fördermittel je Standort und Jahr",
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
     NULL,
     NULL,
     {{"Fördermittel je Standort und Jahr: bewilligt und verausgabt",
       "site_code,grant_year", "granted_eur,spent_eur", NULL, NULL, 0, 0}}},
    {"funding_by_purpose",
     "IND-13",
     "Fördermittel nach Mittelgeber und Zweck",
     "Standort|Jahr|Mittelgeber|Zweck|bewilligt (EUR)|verausgabt (EUR)|"
     "Mittelabfluss|Verwendungsnachweise überfällig",
     "SELECT site_code, grant_year, " LBL(
         "funder",
         "funder") " AS funder, " LBL("funding_purpose",
                                      "purpose") " AS purpose, granted_eur, "
                                                 "spent_eur,"
                                                 " utilisation_pct, "
                                                 "reports_overdue FROM "
                                                 "v_ind13_funding"
                                                 " ORDER BY site_code, "
                                                 "grant_year, funder, purpose",
     NULL,
     NULL,
     {NO_CHART}},
};

#define SECTION(id, title, intro, tables)                                      \
    {                                                                          \
        id, title, intro, tables, sizeof(tables) / sizeof((tables)[0])         \
    }

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
    int type;    /* SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_NULL */
    long long i; /* value if SQLITE_INTEGER */
    double d;    /* value if SQLITE_FLOAT */
    char *s;     /* NUL-terminated value if SQLITE_TEXT; owned */
};

struct rs {
    int n_cols;         /* columns */
    size_t n_rows;      /* rows fetched */
    size_t cap_rows;    /* rows allocated */
    char **keys;        /* column names (machine keys); owned */
    char **heads;       /* German headings; owned */
    struct cell *cells; /* n_rows * n_cols, row-major; owned */
    int site_col;       /* index of "site_code", or -1 */
};

struct ctx {
    sqlite3 *db;      /* borrowed */
    FILE *out;        /* borrowed */
    const char **err; /* where to put the reason; may be NULL */
    char as_of[16];   /* the reference date, YYYY-MM-DD */
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
        return fail(x, -KZ_EDB,
                    "cannot query the indicator views (schema "
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

            if (cap >
                SIZE_MAX / sizeof(*p) / (size_t)(r->n_cols ? r->n_cols : 1))
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
            case SQLITE_INTEGER: row[c].i = sqlite3_column_int64(st, c); break;
            case SQLITE_FLOAT: row[c].d = sqlite3_column_double(st, c); break;
            case SQLITE_NULL: break;
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
    case SQLITE_INTEGER: snprintf(buf, len, "%lld", c->i); return buf;
    case SQLITE_FLOAT: snprintf(buf, len, "%.15g", c->d); return buf;
    case SQLITE_TEXT: return c->s;
    default: return "";
    }
}

static int
ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);

    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---- HTML -------------------------------------------------------------- */

#define NBSP "\xC2\xA0" /* U+00A0: keeps a number and its unit together */

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

static int
is_year_key(const char *key)
{
    return strcmp(key, "year") == 0 || ends_with(key, "_year");
}

/* Is ${s} an ISO date YYYY-MM-DD? */
static int
is_iso_date(const char *s)
{
    int k;

    for (k = 0; k < 10; k++)
        if (k == 4 || k == 7 ? s[k] != '-' : (s[k] < '0' || s[k] > '9'))
            return 0;
    return s[10] == '\0';
}

/* ISO date ${iso} (checked with is_iso_date) as DD.MM.YYYY in ${buf}. */
static void
date_de(char *buf, size_t len, const char *iso)
{
    snprintf(buf, len, "%.2s.%.2s.%.4s", iso + 8, iso + 5, iso);
}

/* Human text of cell ${c} in column ${key}, German notation, reals with
 * ${dec} decimals (see rs_decimals); a NULL in a row flagged ${suppressed}
 * (DP-03) is shown as "< 3". */
static void
html_cell(FILE *f, const struct cell *c, const char *key, int suppressed,
          int dec)
{
    char buf[96];

    if (c->type == SQLITE_NULL) {
        fputs(suppressed ? "&lt;" NBSP "3" : "–", f);
        return;
    }
    if (c->type == SQLITE_TEXT) {
        if (strcmp(key, "site_code") == 0 && strcmp(c->s, "ALL") == 0)
            fputs("Gesamt", f);
        else if (is_iso_date(c->s)) {
            date_de(buf, sizeof(buf), c->s);
            fputs(buf, f);
        } else
            html_esc(f, c->s);
        return;
    }
    if (ends_with(key, "_met") || strcmp(key, "suppressed") == 0) {
        fputs(cell_num(c) != 0 ? "ja" : "nein", f);
        return;
    }
    if (ends_with(key, "_eur")) {
        fmt_de(buf, sizeof(buf), cell_num(c), dec);
        fprintf(f, "%s" NBSP "€", buf);
        return;
    }
    if (ends_with(key, "_pct")) {
        fmt_de(buf, sizeof(buf), cell_num(c), 1);
        fprintf(f, "%s" NBSP "%%", buf);
        return;
    }
    if (c->type == SQLITE_INTEGER) {
        if (is_year_key(key))
            fprintf(f, "%lld", c->i);
        else {
            fmt_de(buf, sizeof(buf), (double)c->i, 0);
            fputs(buf, f);
        }
        return;
    }
    fmt_de(buf, sizeof(buf), c->d, dec);
    fputs(buf, f);
}

/* Column index of key ${key} in ${r}, or -1. */
static int
rs_col(const struct rs *r, const char *key)
{
    int c;

    for (c = 0; c < r->n_cols; c++)
        if (strcmp(r->keys[c], key) == 0)
            return c;
    return -1;
}

/* Resolves the comma-separated keys ${list} to column indexes in ${out}
 * (at most ${max}); returns their number, or -1 if one is unknown. */
static int
rs_cols(const struct rs *r, const char *list, int *out, int max)
{
    char key[64];
    int n = 0;

    while (list != NULL && *list != '\0') {
        size_t len = strcspn(list, ",");

        if (n == max || len >= sizeof(key))
            return -1;
        memcpy(key, list, len);
        key[len] = '\0';
        if ((out[n++] = rs_col(r, key)) < 0)
            return -1;
        list += len + (list[len] == ',');
    }
    return n;
}

/* Decimals for the reals of column ${col}: 2 for euro amounts and the
 * mean evaluation, 1 for percentages, else 0 if every value of the column
 * is whole and 1 if not, so that one column shows one format. */
static int
rs_decimals(const struct rs *r, int col)
{
    const char *key = r->keys[col];
    size_t k;

    if (ends_with(key, "_eur") || strcmp(key, "evaluation_mean") == 0)
        return 2;
    if (ends_with(key, "_pct"))
        return 1;
    for (k = 0; k < r->n_rows; k++) {
        const struct cell *c = rs_cell(r, k, col);

        if (c->type == SQLITE_FLOAT && fabs(c->d - round(c->d)) > 1e-9)
            return 1;
    }
    return 0;
}

/* Is row ${row} flagged as suppressed (DP-03) by a "suppressed" column? */
static int
rs_suppressed(const struct rs *r, size_t row)
{
    int c = rs_col(r, "suppressed");

    return c >= 0 && cell_num(rs_cell(r, row, c)) == 1;
}

/* Is column ${col} numeric (right-aligned)?  Years are not. */
static int
rs_numeric(const struct rs *r, int col)
{
    size_t k;

    if (is_year_key(r->keys[col]))
        return 0;
    for (k = 0; k < r->n_rows; k++) {
        int type = rs_cell(r, k, col)->type;

        if (type != SQLITE_NULL)
            return type == SQLITE_INTEGER || type == SQLITE_FLOAT;
    }
    return strcmp(r->keys[col], "reviews") == 0 ||
           ends_with(r->keys[col], "_pct");
}

static const char html_css[] =
    "body{font-family:'DejaVu Sans',Arial,Helvetica,sans-serif;"
    "font-size:14px;color:#1a1a1a;margin:0 auto;max-width:1100px;"
    "padding:1.5em;line-height:1.4}"
    "h1{font-size:1.6em;border-bottom:3px solid #1f4e79;padding-bottom:.3em;"
    "margin-bottom:.4em}"
    "h2{font-size:1.35em;color:#1f4e79;margin-top:2em;"
    "border-bottom:1px solid #9bb7d4}"
    "h3{font-size:1.08em;margin:1.8em 0 .4em}"
    "h3 small{font-weight:normal;color:#5a5a5a}"
    "p{margin:.35em 0}"
    "p.meta,p.note,p.intro{color:#444;font-size:.92em}"
    "ul.sites{margin:.3em 0 .6em;padding-left:1.2em;font-size:.92em;"
    "color:#333}"
    "nav ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.4em}"
    "nav a{display:inline-block;padding:.2em .6em;border:1px solid #9bb7d4;"
    "border-radius:3px;text-decoration:none;color:#1f4e79}"
    ".charts{display:flex;flex-wrap:wrap;gap:.2em 2.5em;"
    "align-items:flex-start}"
    "figure{margin:.4em 0 .8em}"
    "figcaption{font-size:.9em;font-weight:bold;color:#333;"
    "margin-bottom:.2em}"
    "svg{display:block;max-width:100%;height:auto}"
    "svg text{font-size:12px;fill:#1a1a1a}"
    "svg text.in{fill:#fff}"
    "svg text.tick,svg text.axis{font-size:11px;fill:#555}"
    "table{border-collapse:collapse;margin:.4em 0;font-size:.92em;"
    "max-width:100%}"
    "th,td{border:1px solid #c8d3de;padding:.25em .6em;text-align:left;"
    "vertical-align:top}"
    "th{background:#e8eff6}"
    "th.n,td.n{text-align:right}"
    "td.n{white-space:nowrap}"
    "td.supp{color:#8a5a00}"
    "tr.total td{font-weight:bold;background:#f3f6f9}"
    "tr:not(.total)+tr.total td{border-top:2px solid #7f9db9}"
    "td.total,th.total{font-weight:bold;background:#f3f6f9}"
    "footer{margin-top:2.5em;border-top:1px solid #9bb7d4}"
    "@page{size:A4;margin:14mm 12mm 16mm}"
    "@media print{body{max-width:none;padding:0;font-size:9pt}"
    "nav{display:none}section+section{break-before:page}"
    "h2,h3{break-after:avoid}figure,tr,div.keep{break-inside:avoid}"
    "thead{display:table-header-group}"
    "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}"
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

/* Characters (UTF-8 code points) in ${s}. */
static size_t
utf8_len(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/*
 * The label of row ${row} in a chart: the texts of the columns ${lab}
 * (${n_lab} of them) joined by spaces into ${buf} (size ${len}).  When
 * longer than ${max} characters, the longest part is cut with an ellipsis,
 * so that short parts such as the site and the year stay readable.
 */
static void
chart_label(const struct rs *r, size_t row, const int *lab, int n_lab,
            size_t max, char *buf, size_t len)
{
    char part[3][256];
    size_t n[3], total = 0;
    int i, longest = 0;

    for (i = 0; i < n_lab && i < 3; i++) {
        part[i][0] = '\0';
        label_append(part[i], sizeof(part[i]), rs_cell(r, row, lab[i]));
        n[i] = utf8_len(part[i]);
        total += n[i] + (i > 0);
        if (n[i] > n[longest])
            longest = i;
    }
    if (total > max && n[longest] > total - max + 1) {
        size_t keep = n[longest] - (total - max) - 1, chars = 0, k;
        char *p = part[longest];

        for (k = 0; p[k] != '\0'; k++)
            if (((unsigned char)p[k] & 0xC0) != 0x80 && chars++ == keep)
                break;
        snprintf(p + k, sizeof(part[0]) - k, "…");
    }
    buf[0] = '\0';
    for (i = 0; i < n_lab && i < 3; i++) {
        size_t used = strlen(buf);

        snprintf(buf + used, len - used, "%s%s", i ? " " : "", part[i]);
    }
}

#define CH_SERIES 4 /* at most this many series per chart */
#define CH_LABEL 42 /* bar labels are cut to this many characters */
#define CH_CHAR_W 7 /* approximate width of a character at 12px, pixels */

/* Colour of series ${i} of ${ch} into ${buf} (8 bytes). */
static void
chart_color(const struct rp_chart *ch, int i, char buf[8])
{
    static const char *const palette[CH_SERIES] = {"#2e75b6", "#ed7d31",
                                                   "#70ad47", "#a5a5a5"};
    const char *p = ch->colors;
    int k;

    snprintf(buf, 8, "%s", palette[i % CH_SERIES]);
    for (k = 0; p != NULL && k < i; k++)
        if ((p = strchr(p, ',')) != NULL)
            p++;
    if (p != NULL && p[0] == '#' &&
        strspn(p + 1, "0123456789abcdefABCDEF") >= 6)
        snprintf(buf, 8, "%.7s", p);
}

/* A step of 1, 2, 2.5 or 5 × 10^k giving about four intervals up to
 * ${max}; whole numbers only for counts (${whole}). */
static double
chart_step(double max, int whole)
{
    double raw = max / 4, mag, norm;

    if (!(raw > 0))
        return 1;
    mag = pow(10, floor(log10(raw)));
    norm = raw / mag;
    if (norm <= 1)
        norm = 1;
    else if (norm <= 2)
        norm = 2;
    else if (norm <= 2.5 && mag >= 10)
        norm = 2.5;
    else if (norm <= 5)
        norm = 5;
    else
        norm = 10;
    return whole && norm * mag < 1 ? 1 : norm * mag;
}

/* The unit of an axis whose values come from column ${key}. */
static const char *
chart_unit(const char *key)
{
    if (ends_with(key, "_eur"))
        return "Euro";
    if (ends_with(key, "_pct"))
        return "Prozent";
    if (strcmp(key, "hours") == 0)
        return "Stunden";
    return "Anzahl";
}

/*
 * A horizontal bar chart of ${ch} over ${r}, as inline SVG in a <figure>
 * with a visible caption: one bar (stacked) or one bar per series (side by
 * side) for every row charted, the value at the end of the bar, a legend
 * when there is more than one series or a target, an axis with a scale and
 * its unit.  Long labels are cut; the full label is each bar's tooltip.
 * Nothing is drawn if a key is unknown or no row qualifies.
 */
static void
html_chart(FILE *f, const struct rp_chart *ch, const struct rs *r)
{
    enum { BAR_H = 16, GAP = 8, PLOT_W = 320, VAL_W = 110, AXIS_H = 40 };
    int lab[3], ser[CH_SERIES], n_lab, n_ser, tgt = -1, whole = 1;
    int label_w, legend_h, group_h, plot_top, plot_h, width, height, i;
    int val_dec, legend_w = 0;
    size_t k, n = 0, max_chars = 4;
    double max = 0, step, axis, t;
    char label[512], color[8], num[96];
    const char *key0;
    int y;

    if (ch->caption == NULL)
        return;
    n_lab = rs_cols(r, ch->labels, lab, 3);
    n_ser = rs_cols(r, ch->series, ser, CH_SERIES);
    if (n_lab <= 0 || n_ser <= 0)
        return;
    if (ch->target != NULL && (tgt = rs_col(r, ch->target)) < 0)
        return;
    key0 = r->keys[ser[0]];
    /* Values at the bars: euro amounts without cents. */
    val_dec = ends_with(key0, "_eur") ? 0 : rs_decimals(r, ser[0]);

    /* Rows charted, the largest value, the widest label. */
    for (k = 0; k < r->n_rows; k++) {
        double sum = 0;

        if (rs_is_total(r, k) != ch->totals)
            continue;
        n++;
        chart_label(r, k, lab, n_lab, CH_LABEL, label, sizeof(label));
        if (utf8_len(label) > max_chars)
            max_chars = utf8_len(label);
        for (i = 0; i < n_ser; i++) {
            const struct cell *c = rs_cell(r, k, ser[i]);
            double v = cell_num(c);

            if (c->type == SQLITE_FLOAT)
                whole = 0;
            if (isnan(v))
                continue;
            sum = ch->stacked ? sum + v : v;
            if (sum > max)
                max = sum;
        }
        t = tgt >= 0 ? cell_num(rs_cell(r, k, tgt)) : NAN;
        if (!isnan(t) && t > max)
            max = t;
    }
    if (n == 0)
        return;
    if (ends_with(key0, "_pct") && max < 100)
        max = 100;
    if (ends_with(key0, "_eur"))
        whole = 0;
    step = chart_step(max, whole);
    axis = ceil(max / step - 1e-9) * step;
    if (!(axis > 0))
        axis = step;
    label_w = (int)max_chars * CH_CHAR_W + 14;
    legend_h = n_ser > 1 || tgt >= 0 ? 26 : 0;
    group_h = ch->stacked || n_ser == 1 ? BAR_H : n_ser * (BAR_H + 2) - 2;
    plot_top = legend_h + 4;
    plot_h = (int)n * (group_h + GAP);
    for (i = 0; legend_h > 0 && i < n_ser; i++)
        legend_w += 16 + (int)utf8_len(r->heads[ser[i]]) * CH_CHAR_W + 18;
    if (tgt >= 0)
        legend_w += 14 + (int)utf8_len(r->heads[tgt]) * CH_CHAR_W + 10;
    width = label_w + PLOT_W + VAL_W;
    if (label_w + legend_w > width)
        width = label_w + legend_w;
    height = plot_top + plot_h + AXIS_H;

    fputs("<figure><figcaption>", f);
    html_esc(f, ch->caption);
    fprintf(f,
            "</figcaption>\n<svg role=\"img\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" aria-label=\"",
            width, height, width, height);
    html_esc(f, ch->caption);
    fputs("\"><title>", f);
    html_esc(f, ch->caption);
    fputs("</title>\n", f);

    /* Legend. */
    if (legend_h > 0) {
        int x = label_w;

        for (i = 0; i < n_ser; i++) {
            chart_color(ch, i, color);
            fprintf(f,
                    "<rect x=\"%d\" y=\"6\" width=\"12\" height=\"12\" "
                    "fill=\"%s\"/><text x=\"%d\" y=\"16\">",
                    x, color, x + 16);
            html_esc(f, r->heads[ser[i]]);
            fputs("</text>\n", f);
            x += 16 + (int)utf8_len(r->heads[ser[i]]) * CH_CHAR_W + 18;
        }
        if (tgt >= 0) {
            fprintf(f,
                    "<line x1=\"%d\" y1=\"4\" x2=\"%d\" y2=\"20\" "
                    "stroke=\"#1a1a1a\" stroke-width=\"3\"/>"
                    "<text x=\"%d\" y=\"16\">",
                    x + 5, x + 5, x + 14);
            html_esc(f, r->heads[tgt]);
            fputs("</text>\n", f);
        }
    }

    /* Scale: grid lines, tick values, the unit. */
    for (t = 0; t <= axis + step / 2; t += step) {
        int x = label_w + (int)lround(t / axis * PLOT_W);

        fmt_de(num, sizeof(num), t, step < 1 ? 1 : 0);
        fprintf(f,
                "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
                "stroke=\"#d9d9d9\"/><text class=\"tick\" x=\"%d\" y=\"%d\" "
                "text-anchor=\"middle\">%s</text>\n",
                x, plot_top, x, plot_top + plot_h + 3, x,
                plot_top + plot_h + 16, num);
    }
    fprintf(f,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
            "stroke=\"#1a1a1a\"/>\n<text class=\"axis\" x=\"%d\" y=\"%d\" "
            "text-anchor=\"middle\">%s</text>\n",
            label_w, plot_top, label_w, plot_top + plot_h + 3,
            label_w + PLOT_W / 2, plot_top + plot_h + 33, chart_unit(key0));

    /* Bars. */
    y = plot_top + GAP / 2;
    for (k = 0; k < r->n_rows; k++) {
        int supp = rs_suppressed(r, k), end = 0, any = 0, tx = -1;
        double x = label_w, sum = 0;

        if (rs_is_total(r, k) != ch->totals)
            continue;
        t = tgt >= 0 ? cell_num(rs_cell(r, k, tgt)) : NAN;
        if (!isnan(t))
            tx = label_w + (int)lround(t / axis * PLOT_W);
        chart_label(r, k, lab, n_lab, CH_LABEL, label, sizeof(label));
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", label_w - 6,
                y + group_h / 2 + 4);
        html_esc(f, label);
        fputs("</text>\n", f);
        chart_label(r, k, lab, n_lab, SIZE_MAX, label, sizeof(label));
        for (i = 0; i < n_ser; i++) {
            const struct cell *c = rs_cell(r, k, ser[i]);
            double v = cell_num(c), w;
            int by = ch->stacked ? y : y + i * (BAR_H + 2);

            if (!ch->stacked)
                x = label_w;
            w = isnan(v) || v <= 0 ? 0 : v / axis * PLOT_W;
            chart_color(ch, i, color);
            if (w > 0) {
                fprintf(f,
                        "<rect class=\"bar\" x=\"%.1f\" y=\"%d\" "
                        "width=\"%.1f\" height=\"%d\" fill=\"%s\"><title>",
                        x, by, w, BAR_H, color);
                html_esc(f, label);
                fputs(" – ", f);
                html_esc(f, r->heads[ser[i]]);
                fputs(": ", f);
                html_cell(f, c, r->keys[ser[i]], supp, rs_decimals(r, ser[i]));
                fputs("</title></rect>\n", f);
            }
            if (ch->stacked && c->type == SQLITE_INTEGER && n_ser > 1) {
                fmt_de(num, sizeof(num), (double)c->i, 0);
                if (w >= (double)strlen(num) * CH_CHAR_W + 6)
                    fprintf(f,
                            "<text class=\"in\" x=\"%.1f\" y=\"%d\" "
                            "text-anchor=\"middle\">%s</text>\n",
                            x + w / 2, by + BAR_H - 4, num);
            }
            if (!isnan(v)) {
                sum += v;
                any = 1;
            }
            x += w;
            if (!ch->stacked) {
                /* After the bar, or after the target tick if later. */
                end = (int)lround(x);
                if (n_ser == 1 && tx > end)
                    end = tx;
                fprintf(f, "<text x=\"%d\" y=\"%d\">", end + 5, by + BAR_H - 4);
                html_cell(f, c, r->keys[ser[i]], supp, val_dec);
                fputs("</text>\n", f);
            }
        }
        if (tx >= 0) {
            fprintf(f,
                    "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
                    "stroke=\"#1a1a1a\" stroke-width=\"3\"><title>",
                    tx, y - 3, tx, y + group_h + 3);
            html_esc(f, r->heads[tgt]);
            fputs(": ", f);
            html_cell(f, rs_cell(r, k, tgt), r->keys[tgt], 0,
                      rs_decimals(r, tgt));
            fputs("</title></line>\n", f);
        }
        end = (int)lround(x);
        if (tx > end)
            end = tx;
        if (ch->stacked) {
            struct cell tot = {whole ? SQLITE_INTEGER : SQLITE_FLOAT,
                               (long long)llround(sum), sum, NULL};

            if (!any)
                tot.type = SQLITE_NULL;
            fprintf(f, "<text x=\"%d\" y=\"%d\">", end + 5, y + BAR_H - 4);
            html_cell(f, n_ser == 1 ? rs_cell(r, k, ser[0]) : &tot, key0, supp,
                      val_dec);
            fputs("</text>\n", f);
        }
        y += group_h + GAP;
    }
    fputs("</svg></figure>\n", f);
}

/* One table cell <td> of row ${row}, column ${col} of ${r}. */
static void
html_td(FILE *f, const struct rs *r, size_t row, int col, int num)
{
    const struct cell *c = rs_cell(r, row, col);
    int supp = c->type == SQLITE_NULL && rs_suppressed(r, row);

    fputs(supp  ? "<td class=\"n supp\">"
          : num ? "<td class=\"n\">"
                : "<td>",
          f);
    html_cell(f, c, r->keys[col], supp, rs_decimals(r, col));
    fputs("</td>", f);
}

/* Do rows ${a} and ${b} of ${r} agree in every column but the site and
 * column ${skip}? */
static int
rs_same_key(const struct rs *r, size_t a, size_t b, int skip)
{
    char n1[64], n2[64];
    int c;

    for (c = 0; c < r->n_cols; c++) {
        if (c == r->site_col || c == skip)
            continue;
        if (rs_cell(r, a, c)->type != rs_cell(r, b, c)->type ||
            strcmp(cell_text(rs_cell(r, a, c), n1, sizeof(n1)),
                   cell_text(rs_cell(r, b, c), n2, sizeof(n2))) != 0)
            return 0;
    }
    return 1;
}

/* Is the site of row ${a} of ${r} that of row ${b}? */
static int
rs_same_site(const struct rs *r, size_t a, size_t b)
{
    const struct cell *x = rs_cell(r, a, r->site_col);
    const struct cell *y = rs_cell(r, b, r->site_col);

    return x->type == SQLITE_TEXT && y->type == SQLITE_TEXT &&
           strcmp(x->s, y->s) == 0;
}

/*
 * Table ${r} as a matrix: one line per key (all columns but the site and
 * ${val}; the order of the totals first), one column per site and the
 * total last, the cells from column ${val}.  A key without a row at a site
 * has the count 0 there.  Returns -KZ_ENOMEM, or 0.
 */
static int
html_pivot(FILE *f, const struct rs *r, int val)
{
    size_t *keys = NULL, *sites = NULL, n_keys = 0, n_sites = 0, k, j, s;
    int c, pass, num = rs_numeric(r, val);

    keys = malloc((r->n_rows + 1) * sizeof(*keys));
    sites = malloc((r->n_rows + 1) * sizeof(*sites));
    if (keys == NULL || sites == NULL) {
        free(keys);
        free(sites);
        return -KZ_ENOMEM;
    }
    for (pass = 1; pass >= 0; pass--) /* totals first, then the sites */
        for (k = 0; k < r->n_rows; k++) {
            if (rs_is_total(r, k) != pass)
                continue;
            for (j = 0; j < n_keys && !rs_same_key(r, keys[j], k, val); j++)
                ;
            if (j == n_keys)
                keys[n_keys++] = k;
        }
    for (pass = 0; pass <= 1; pass++) /* sites first, the total last */
        for (k = 0; k < r->n_rows; k++) {
            if (rs_is_total(r, k) != pass)
                continue;
            for (j = 0; j < n_sites && !rs_same_site(r, sites[j], k); j++)
                ;
            if (j == n_sites)
                sites[n_sites++] = k;
        }

    fputs("<table>\n<thead><tr>", f);
    for (c = 0; c < r->n_cols; c++) {
        if (c == r->site_col || c == val)
            continue;
        fputs("<th scope=\"col\">", f);
        html_esc(f, r->heads[c]);
        fputs("</th>", f);
    }
    for (s = 0; s < n_sites; s++) {
        int tot = rs_is_total(r, sites[s]);

        fputs(tot ? "<th scope=\"col\" class=\"n total\">"
                  : "<th scope=\"col\" class=\"n\">",
              f);
        html_cell(f, rs_cell(r, sites[s], r->site_col), "site_code", 0, 0);
        fputs("</th>", f);
    }
    fputs("</tr></thead>\n<tbody>\n", f);
    for (j = 0; j < n_keys; j++) {
        fputs("<tr>", f);
        for (c = 0; c < r->n_cols; c++)
            if (c != r->site_col && c != val)
                html_td(f, r, keys[j], c, rs_numeric(r, c));
        for (s = 0; s < n_sites; s++) {
            int tot = rs_is_total(r, sites[s]);

            for (k = 0; k < r->n_rows; k++)
                if (rs_same_site(r, sites[s], k) &&
                    rs_same_key(r, keys[j], k, val))
                    break;
            if (k < r->n_rows) {
                const struct cell *cell = rs_cell(r, k, val);

                fputs(tot ? "<td class=\"n total\">" : "<td class=\"n\">", f);
                html_cell(f, cell, r->keys[val], rs_suppressed(r, k),
                          rs_decimals(r, val));
                fputs("</td>", f);
            } else {
                fputs(tot ? "<td class=\"n total\">" : "<td class=\"n\">", f);
                fputs(num ? "0" : "–", f);
                fputs("</td>", f);
            }
        }
        fputs("</tr>\n", f);
    }
    fputs("</tbody>\n</table>\n", f);
    free(keys);
    free(sites);
    return 0;
}

/* Table ${t} with the rows ${r}: heading, charts, table, footnote. */
static int
html_table(FILE *f, const struct rp_table *t, const struct rs *r)
{
    int c, hide_site, pivot = -1, *num;
    size_t k, totals = 0;

    /* The heading stays with its charts on paper (div.keep). */
    fprintf(f, "<div class=\"keep\">\n<h3 id=\"%s\">", t->id);
    html_esc(f, t->title);
    fprintf(f, " <small>(%s)</small></h3>\n", t->indicator);
    if (r->n_rows == 0) {
        fputs("<p class=\"note\">Keine Daten zum Stichtag.</p>\n</div>\n", f);
        return 0;
    }
    if (t->charts[0].caption != NULL) {
        fputs("<div class=\"charts\">\n", f);
        html_chart(f, &t->charts[0], r);
        html_chart(f, &t->charts[1], r);
        fputs("</div>\n", f);
    }
    fputs("</div>\n", f);
    if (t->pivot != NULL && r->site_col >= 0)
        pivot = rs_col(r, t->pivot);
    if (pivot >= 0) {
        if (html_pivot(f, r, pivot) != 0)
            return -KZ_ENOMEM;
    } else {
        /* A table of totals only needs no site column ("Gesamt" each). */
        for (k = 0; k < r->n_rows; k++)
            totals += (size_t)rs_is_total(r, k);
        hide_site = totals == r->n_rows;
        if ((num = calloc((size_t)r->n_cols, sizeof(*num))) == NULL)
            return -KZ_ENOMEM;
        fputs("<table>\n<thead><tr>", f);
        for (c = 0; c < r->n_cols; c++) {
            if (hide_site && c == r->site_col)
                continue;
            num[c] = rs_numeric(r, c);
            fputs(num[c] ? "<th scope=\"col\" class=\"n\">"
                         : "<th scope=\"col\">",
                  f);
            html_esc(f, r->heads[c]);
            fputs("</th>", f);
        }
        fputs("</tr></thead>\n<tbody>\n", f);
        for (k = 0; k < r->n_rows; k++) {
            fputs(rs_is_total(r, k) && !hide_site ? "<tr class=\"total\">"
                                                  : "<tr>",
                  f);
            for (c = 0; c < r->n_cols; c++)
                if (!(hide_site && c == r->site_col))
                    html_td(f, r, k, c, num[c]);
            fputs("</tr>\n", f);
        }
        fputs("</tbody>\n</table>\n", f);
        free(num);
    }
    if (t->note != NULL) {
        fputs("<p class=\"note\">", f);
        html_esc(f, t->note);
        fputs("</p>\n", f);
    }
    return 0;
}

static void
html_begin(struct ctx *x)
{
    FILE *f = x->out;
    sqlite3_stmt *st = NULL;
    char date[16];
    size_t s;
    int n = 0;

    if (is_iso_date(x->as_of))
        date_de(date, sizeof(date), x->as_of);
    else
        snprintf(date, sizeof(date), "unbekannt");
    fputs("<!DOCTYPE html>\n<html lang=\"de\">\n<head>\n"
          "<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, "
          "initial-scale=1\">\n<title>Koordinierungszentren Kinderschutz – "
          "Landesübersicht zum ",
          f);
    fputs(date, f);
    fprintf(f, "</title>\n<style>%s", html_css);
    /* Printed pages name the report and its reference date. */
    fprintf(f,
            "@page{@bottom-left{content:\"Koordinierungszentren Kinderschutz"
            " – Landesübersicht, Stichtag %s\";font:8pt 'DejaVu Sans',"
            "Arial,sans-serif;color:#555}@bottom-right{content:\"Seite \" "
            "counter(page) \" von \" counter(pages);font:8pt 'DejaVu Sans',"
            "Arial,sans-serif;color:#555}}",
            date);
    fputs("</style>\n</head>\n<body>\n<header>\n"
          "<h1>Koordinierungszentren Kinderschutz – Landesübersicht</h1>\n"
          "<p class=\"meta\">Stichtag: <strong>",
          f);
    fputs(date, f);
    fputs("</strong>. Kennzahlen je Standort und insgesamt („Gesamt“ = "
          "alle Standorte). Der Bericht enthält keine personenbezogenen "
          "Daten: keine Namen, keine Kontaktdaten, keine Freitextnotizen, "
          "keine nicht freigegebenen Fallanalysen.</p>\n",
          f);
    /* The site codes used in the tables (organisational data only). */
    if (sqlite3_prepare_v2(x->db,
                           "SELECT code, name FROM site WHERE site_kind = "
                           "'coordination_centre' ORDER BY code",
                           -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *code = (const char *)sqlite3_column_text(st, 0);
            const char *name = (const char *)sqlite3_column_text(st, 1);

            if (code == NULL || name == NULL)
                continue;
            fputs(n++ == 0 ? "<p class=\"meta\">Standorte:</p>\n"
                             "<ul class=\"sites\">"
                           : "",
                  f);
            fputs("<li><strong>", f);
            html_esc(f, code);
            fputs("</strong> – ", f);
            html_esc(f, name);
            fputs("</li>", f);
        }
        if (n > 0)
            fputs("</ul>\n", f);
    }
    sqlite3_finalize(st);
    fputs("<p class=\"meta\">Zeichen: „–“ = kein Wert; „&lt;" NBSP "3“ = "
          "aus Datenschutzgründen nicht ausgewiesen (1 oder 2 Fälle, "
          "DP-03). Die Balkendiagramme zeigen die Standorte ohne die "
          "Gesamtzeile, sofern nicht anders angegeben.</p>\n</header>\n"
          "<nav><ul>",
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
                v = cJSON_AddNumberToObject(row, r->keys[c], (double)cell->i);
                break;
            case SQLITE_FLOAT:
                v = cJSON_AddNumberToObject(row, r->keys[c], cell->d);
                break;
            case SQLITE_TEXT:
                v = cJSON_AddStringToObject(row, r->keys[c], cell->s);
                break;
            default: v = cJSON_AddNullToObject(row, r->keys[c]);
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

    if (sqlite3_prepare_v2(x->db, "SELECT as_of FROM v_as_of", -1, &st, NULL) !=
        SQLITE_OK)
        return fail(x, -KZ_EDB,
                    "no view v_as_of: the replica lacks the "
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
report_write(sqlite3 *db, enum report_format fmt, FILE *out, const char **err)
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
    if (sqlite3_exec(db, "SAVEPOINT kz_report", NULL, NULL, NULL) != SQLITE_OK)
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
                if (html_table(out, tab, &r) != 0) {
                    rs_free(&r);
                    rc = fail(&x, -KZ_ENOMEM, "out of memory");
                    goto out;
                }
                break;
            case REPORT_CSV: csv_table(out, sec, tab, &r); break;
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
