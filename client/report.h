/*
 * report.h: the consolidated state-level view (DESIGN.md §9, domain.md §3)
 * as one self-contained HTML page, as CSV or as JSON.
 *
 * The report reads only the indicator views of the shipped schema (v_as_of,
 * v_ind*) and the labels in code_list.  It never reads a table that holds
 * personal data, so it shows the same figures on the state office's
 * projection and on a site's full replica, and no names of persons.
 */
#ifndef KZ_REPORT_H
#define KZ_REPORT_H

#include <stdio.h>

#include <sqlite3.h>

enum report_format {
    REPORT_HTML, /* one page, inline CSS and SVG charts, printable, German */
    REPORT_CSV,  /* RFC 4180, long format (see report_write) */
    REPORT_JSON /* one object, sections → tables → rows (see report_write) */
};

/**
 * report_format_parse(name, out): sets *${out} from "html", "csv" or
 * "json" (exact, lower case).  Returns 0, or -KZ_EINVAL for any other
 * ${name} (also NULL), leaving *${out} unchanged.
 */
int report_format_parse(const char *name, enum report_format *out);

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
int report_write(sqlite3 *db, enum report_format fmt, FILE *out,
                 const char **err);

#endif /* KZ_REPORT_H */
