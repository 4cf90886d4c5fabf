/*
 * changeset.c: the changeset codec (DESIGN.md §4; PROTOCOL.md §Changesets).
 *
 * Header, a msgpack array of 9:
 *
 *     [ format:uint (=1), scope:str(1..128, no NUL), author:bin(32),
 *       author_seq:uint(≥1), epoch:uint(≤2^32-1),
 *       n_cells:uint(≤KZ_LIM_CS_CELLS_MAX), n_rows:uint(≤KZ_LIM_CS_ROWS_MAX),
 *       hlc_min:uint, hlc_max:uint(≥hlc_min; hlc_min ≥ 1 if n_cells > 0) ]
 *
 * Body, a msgpack array of 4:
 *
 *     [ format:uint (=1),
 *       tables:  [ [ name:str, [ col:str, … ] ], … ],   ≤ 256 tables,
 *                                                      ≤ 256 cols each,
 *                                                      names 1..128, no NUL
 *       authors: [ key:bin(32), … ],                    ≤ 256
 *       rows:    [ row, … ] ]                           ≤ 65536
 *
 *     row  = [ table:uint, pk:[ value, … ](1..8, no nil), cells:[ cell, … ] ]
 *     cell = [ col:uint(≤ n_cols), flags:uint(bit 0 only), value,
 *              hlc:uint(≥1), author:uint, base_hlc:uint, base_author:uint ]
 *     value = nil | int | float64 | str(≤1 MiB) | bin(≤8 MiB)
 *
 * At most KZ_LIM_CS_CELLS_MAX cells in all rows together; the whole body at
 * most KZ_LIM_CS_BODY_MAX bytes, the header KZ_LIM_CS_HEADER_MAX.  A format
 * other than 1 is -KZ_EVERSION; it is read before the array's length is
 * checked, so that a later format with more fields reads as "unsupported"
 * and not as "malformed".
 *
 * The reader never allocates from a declared count without checking it
 * against its limit and the bytes left (kz_mpk_array does both), and then
 * preallocates min(n, 64) entries and grows.
 */
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "err.h"
#include "limits.h"
#include "mpk.h"

#include "changeset.h"

#define PREALLOC_MAX 64u

struct kz_cs_rd {
    struct kz_rd rd;            /* the body; its err/why are sticky */
    struct kz_cs_table *tables; /* n_tables entries, cols owned */
    uint32_t n_tables;          /* tables parsed */
    const uint8_t **authors;    /* n_authors keys, borrowed from input */
    uint32_t n_authors;         /* authors parsed */
    uint32_t n_rows;            /* rows declared */
    uint32_t rows_read;         /* rows returned by next_row */
    uint32_t n_cells;           /* cells declared by the rows so far */
    uint32_t cells_left;        /* cells of the current row not yet read */
    uint32_t row_n_cols;        /* column count of the current row's table */
    uint32_t format;            /* the body's format (1 or 2) */
    int row_has_ver;            /* the current row carries a version */
    struct kz_cs_ver row_ver;   /* … this one (format 2) */
};

struct kz_cs_wr {
    size_t max_len;                 /* cap on the whole body */
    struct kz_mpk_wr tables;        /* encoded table entries */
    uint32_t *table_cols;           /* n_cols of each table */
    uint32_t n_tables;              /* tables declared */
    uint32_t cap_tables;            /* entries allocated in table_cols */
    uint8_t (*authors)[KZ_KEY_LEN]; /* author keys, in index order */
    uint32_t n_authors;             /* authors declared */
    uint32_t cap_authors;           /* entries allocated in authors */
    struct kz_mpk_wr rows;          /* encoded rows */
    uint32_t n_rows;                /* rows started */
    uint32_t n_cells_decl;          /* cells declared by kz_cs_wr_row */
    uint32_t n_cells;               /* cells written */
    uint32_t row_cells_left;        /* cells the current row still needs */
    uint32_t row_n_cols;      /* column count of the current row's table */
    int row_has_ver;          /* the current row carries a version … */
    struct kz_cs_ver row_ver; /* … this one: its cells may be short */
    int err;                  /* sticky error of row/cell */
};

/* Records a decode failure in ${rd} (sticky; the first one wins). */
#define RD_FAIL(rd, code, why) kz_rd_fail((rd), (code), (why))

/*
 * grow(p, cap, need, size, max): the array ${p} (of *${cap} elements of
 * ${size} bytes) resized to hold at least ${need}, or NULL (then ${p} is
 * untouched).  Capacity starts at min(max, 64) and doubles, never beyond
 * ${max} (a declared count that was already checked) unless ${need} is.
 */
static void *
grow(void *p, uint32_t *cap, uint32_t need, size_t size, uint32_t max)
{
    uint32_t ncap;
    void *np;

    if (need <= *cap)
        return p;
    ncap = *cap ? *cap : KZ_MIN(max, PREALLOC_MAX);
    while (ncap < need && ncap != 0 && ncap <= max / 2)
        ncap *= 2;
    if (ncap < need)
        ncap = KZ_MAX(need, KZ_MIN(max, need * 2u));
    np = kz_reallocarray(p, ncap, size);
    if (np != NULL)
        *cap = ncap;
    return np;
}

/* A name: 1..KZ_LIM_NAME_MAX bytes, no NUL (it becomes an identifier). */
static void
rd_name(struct kz_rd *rd, struct kz_str *s, const char *why_empty)
{
    if (kz_mpk_str(rd, KZ_LIM_NAME_MAX, s) != 0)
        return;
    if (s->len == 0)
        RD_FAIL(rd, -KZ_EMALFORMED, why_empty);
    else if (memchr(s->p, 0, s->len) != NULL)
        RD_FAIL(rd, -KZ_EMALFORMED, "name contains a NUL byte");
}

/*
 * rd_format(rd, want, max): an array of ${want} whose first item, the
 * format, is 1..${max} (else a version error, checked before the length).
 * Returns the format, or 0 after a failure.
 */
static uint32_t
rd_format(struct kz_rd *rd, uint32_t want, uint32_t max, const char *why)
{
    uint32_t n;
    uint64_t format;

    if (kz_mpk_array(rd, KZ_LIM_COUNT_MAX, &n) != 0)
        return 0;
    if (n == 0) {
        RD_FAIL(rd, -KZ_EMALFORMED, why);
        return 0;
    }
    if (kz_mpk_uint(rd, UINT64_MAX, &format) != 0)
        return 0;
    if (format < 1 || format > max) {
        RD_FAIL(rd, -KZ_EVERSION, "unsupported changeset format");
        return 0;
    }
    if (n != want) {
        RD_FAIL(rd, -KZ_EMALFORMED, why);
        return 0;
    }
    return (uint32_t)format;
}

/* Header checks shared by encode (→ -KZ_EINVAL) and decode. */
static const char *
header_invalid(const struct kz_cs_header *h, size_t scope_len)
{
    if (scope_len == 0)
        return "empty scope";
    if (h->author_seq == 0)
        return "author_seq 0";
    if (h->n_cells > KZ_LIM_CS_CELLS_MAX)
        return "n_cells over limit";
    if (h->n_rows > KZ_LIM_CS_ROWS_MAX)
        return "n_rows over limit";
    if (h->hlc_min > h->hlc_max)
        return "hlc_min > hlc_max";
    if (h->n_cells > 0 && h->hlc_min == 0)
        return "hlc_min 0";
    return NULL;
}

/*
 * kz_cs_header_encode(h, out, out_len): packs ${h}; *${out} is allocated
 * (caller frees with kz_free).  Returns 0, -KZ_ENOMEM or -KZ_EINVAL (format
 * not 1, scope empty or not NUL-terminated within KZ_LIM_NAME_MAX bytes or
 * any other field the decoder would refuse).
 */
int
kz_cs_header_encode(const struct kz_cs_header *h, uint8_t **out,
                    size_t *out_len)
{
    struct kz_mpk_wr w;
    size_t scope_len;
    int rc;

    *out = NULL;
    *out_len = 0;
    scope_len = strnlen(h->scope, sizeof(h->scope));
    if (h->format != KZ_CS_FORMAT || scope_len == sizeof(h->scope) ||
        header_invalid(h, scope_len) != NULL)
        return -KZ_EINVAL;
    kz_mpk_wr_init(&w, KZ_LIM_CS_HEADER_MAX);
    kz_mpk_wr_array(&w, 9);
    kz_mpk_wr_uint(&w, h->format);
    kz_mpk_wr_str(&w, h->scope, scope_len);
    kz_mpk_wr_bin(&w, h->author, KZ_KEY_LEN);
    kz_mpk_wr_uint(&w, h->author_seq);
    kz_mpk_wr_uint(&w, h->epoch);
    kz_mpk_wr_uint(&w, h->n_cells);
    kz_mpk_wr_uint(&w, h->n_rows);
    kz_mpk_wr_uint(&w, h->hlc_min);
    kz_mpk_wr_uint(&w, h->hlc_max);
    rc = kz_mpk_wr_finish(&w, out, out_len);
    /* The header is validated and short: only allocation can fail. */
    if (rc == -KZ_ELIMIT)
        rc = -KZ_EINVAL;
    return rc;
}

/*
 * kz_cs_header_decode(h, p, len): parses exactly ${len} bytes (trailing
 * bytes are an error).  Returns 0 or -KZ_EMALFORMED / -KZ_ELIMIT /
 * -KZ_EVERSION; on error *${h} is unspecified.  ${why}, if not NULL, gets a
 * static description of the failure.
 */
int
kz_cs_header_decode(struct kz_cs_header *h, const uint8_t *p, size_t len,
                    const char **why)
{
    struct kz_rd rd;
    struct kz_str scope = {NULL, 0};
    const uint8_t *author = NULL;
    size_t author_len = 0;
    const char *bad;

    memset(h, 0, sizeof(*h));
    kz_rd_init(&rd, p, len);
    if (len > KZ_LIM_CS_HEADER_MAX)
        RD_FAIL(&rd, -KZ_ELIMIT, "header over limit");
    (void)rd_format(&rd, 9, KZ_CS_FORMAT, "header is not an array of 9");
    if (kz_mpk_str(&rd, KZ_LIM_NAME_MAX, &scope) == 0 &&
        memchr(scope.p, 0, scope.len) != NULL)
        RD_FAIL(&rd, -KZ_EMALFORMED, "scope contains a NUL byte");
    if (kz_mpk_bin(&rd, KZ_LIM_BIN_MAX, &author, &author_len) == 0 &&
        author_len != KZ_KEY_LEN)
        RD_FAIL(&rd, -KZ_EMALFORMED, "author is not 32 bytes");
    (void)kz_mpk_uint(&rd, UINT64_MAX, &h->author_seq);
    (void)kz_mpk_u32(&rd, &h->epoch);
    (void)kz_mpk_u32(&rd, &h->n_cells);
    (void)kz_mpk_u32(&rd, &h->n_rows);
    (void)kz_mpk_uint(&rd, UINT64_MAX, &h->hlc_min);
    (void)kz_mpk_uint(&rd, UINT64_MAX, &h->hlc_max);
    if (rd.err == 0 && rd.left != 0)
        RD_FAIL(&rd, -KZ_EMALFORMED, "trailing bytes after header");
    if (rd.err == 0 && (bad = header_invalid(h, scope.len)) != NULL)
        RD_FAIL(
            &rd,
            (h->n_cells > KZ_LIM_CS_CELLS_MAX || h->n_rows > KZ_LIM_CS_ROWS_MAX)
                ? -KZ_ELIMIT
                : -KZ_EMALFORMED,
            bad);
    if (rd.err != 0)
        goto err0;
    h->format = KZ_CS_FORMAT;
    memcpy(h->scope, scope.p, scope.len);
    h->scope[scope.len] = '\0';
    memcpy(h->author, author, KZ_KEY_LEN);
    if (why != NULL)
        *why = NULL;
    return 0;

err0:
    if (why != NULL)
        *why = rd.why;
    return rd.err;
}

/* rd_tables(r): the body's table list into r->tables. */
static void
rd_tables(struct kz_cs_rd *r)
{
    struct kz_rd *rd = &r->rd;
    uint32_t n, cap = 0, i;

    if (kz_mpk_array(rd, KZ_LIM_CS_TABLES_MAX, &n) != 0)
        return;
    for (i = 0; i < n && rd->err == 0; i++) {
        struct kz_cs_table *t;
        uint32_t m, ccap = 0, j;
        void *np;

        np = grow(r->tables, &cap, i + 1, sizeof(*r->tables), n);
        if (np == NULL) {
            RD_FAIL(rd, -KZ_ENOMEM, "out of memory");
            return;
        }
        r->tables = np;
        t = &r->tables[i];
        memset(t, 0, sizeof(*t));
        r->n_tables = i + 1; /* so that kz_cs_rd_free sees t->cols */
        if (kz_mpk_array(rd, KZ_LIM_COUNT_MAX, &m) != 0)
            return;
        if (m != 2) {
            RD_FAIL(rd, -KZ_EMALFORMED, "table is not an array of 2");
            return;
        }
        rd_name(rd, &t->name, "empty table name");
        if (kz_mpk_array(rd, KZ_LIM_CS_COLS_MAX, &m) != 0)
            return;
        for (j = 0; j < m && rd->err == 0; j++) {
            np = grow(t->cols, &ccap, j + 1, sizeof(*t->cols), m);
            if (np == NULL) {
                RD_FAIL(rd, -KZ_ENOMEM, "out of memory");
                return;
            }
            t->cols = np;
            rd_name(rd, &t->cols[j], "empty column name");
            t->n_cols = j + 1;
        }
    }
}

/* rd_authors(r): the body's author list into r->authors. */
static void
rd_authors(struct kz_cs_rd *r)
{
    struct kz_rd *rd = &r->rd;
    uint32_t n, cap = 0, i;

    if (kz_mpk_array(rd, KZ_LIM_CS_AUTHORS_MAX, &n) != 0)
        return;
    for (i = 0; i < n && rd->err == 0; i++) {
        const uint8_t *key;
        size_t len;
        void *np;

        np = grow(r->authors, &cap, i + 1, sizeof(*r->authors), n);
        if (np == NULL) {
            RD_FAIL(rd, -KZ_ENOMEM, "out of memory");
            return;
        }
        r->authors = np;
        if (kz_mpk_bin(rd, KZ_LIM_BIN_MAX, &key, &len) != 0)
            return;
        if (len != KZ_KEY_LEN) {
            RD_FAIL(rd, -KZ_EMALFORMED, "author is not 32 bytes");
            return;
        }
        r->authors[i] = key;
        r->n_authors = i + 1;
    }
}

/*
 * kz_cs_rd_new(out, p, len): opens a body; parses format, tables and
 * authors.  ${p} is borrowed and must outlive the reader.  Returns 0 or a
 * decode error (see kz_cs_rd_why).  Caller frees with kz_cs_rd_free.
 *
 * Errors: -KZ_ENOMEM, -KZ_EMALFORMED, -KZ_ELIMIT, -KZ_EVERSION; then *${out}
 * is NULL and *${why} (if not NULL) gets the reason.
 */
int
kz_cs_rd_new(struct kz_cs_rd **out, const uint8_t *p, size_t len,
             const char **why)
{
    struct kz_cs_rd *r;
    int rc;

    *out = NULL;
    if (why != NULL)
        *why = NULL;
    r = kz_calloc(1, sizeof(*r));
    if (r == NULL) {
        rc = -KZ_ENOMEM;
        if (why != NULL)
            *why = "out of memory";
        goto err0;
    }
    kz_rd_init(&r->rd, p, len);
    if (len > KZ_LIM_CS_BODY_MAX)
        RD_FAIL(&r->rd, -KZ_ELIMIT, "body over limit");
    r->format =
        rd_format(&r->rd, 4, KZ_CS_BODY_FORMAT, "body is not an array of 4");
    rd_tables(r);
    rd_authors(r);
    (void)kz_mpk_array(&r->rd, KZ_LIM_CS_ROWS_MAX, &r->n_rows);
    if (r->rd.err != 0)
        goto err1;
    *out = r;
    return 0;

err1:
    rc = r->rd.err;
    if (why != NULL)
        *why = r->rd.why;
    kz_cs_rd_free(r);
err0:
    return rc;
}

/* kz_cs_rd_free(r): frees ${r} and its tables; NULL is a no-op. */
void
kz_cs_rd_free(struct kz_cs_rd *r)
{
    uint32_t i;

    if (r == NULL)
        return;
    for (i = 0; i < r->n_tables; i++)
        kz_free(r->tables[i].cols);
    kz_free(r->tables);
    kz_free(r->authors);
    kz_free(r);
}

uint32_t
kz_cs_rd_n_tables(const struct kz_cs_rd *r)
{
    return r->n_tables;
}

/* kz_cs_rd_table(r, i): table ${i}, borrowed from ${r}; NULL if out of range.
 */
const struct kz_cs_table *
kz_cs_rd_table(const struct kz_cs_rd *r, uint32_t i)
{
    return i < r->n_tables ? &r->tables[i] : NULL;
}

uint32_t
kz_cs_rd_n_authors(const struct kz_cs_rd *r)
{
    return r->n_authors;
}

/* kz_cs_rd_author(r, i): 32 bytes, borrowed; NULL if ${i} is out of range. */
const uint8_t *
kz_cs_rd_author(const struct kz_cs_rd *r, uint32_t i)
{
    return i < r->n_authors ? r->authors[i] : NULL;
}

uint32_t
kz_cs_rd_n_rows(const struct kz_cs_rd *r)
{
    return r->n_rows;
}

/*
 * kz_cs_rd_next_row(r, row): reads the next row's table and primary key.
 * Returns 1 with a row, 0 at the end (after checking that no bytes are
 * left), or a negative error.  Indexes (table, col, author) are checked
 * against the body's own lists; pk values are NULL-free, and the pk count is
 * 1..KZ_LIM_PK_COLS_MAX.  Cells of the previous row that were not read are
 * read (and so checked) and dropped.  Errors are sticky.
 */
int
kz_cs_rd_next_row(struct kz_cs_rd *r, struct kz_cs_row *row)
{
    struct kz_rd *rd = &r->rd;
    struct kz_cs_cell cell;
    uint32_t n, i;
    int rc;

    memset(row, 0, sizeof(*row));
    while (rd->err == 0 && r->cells_left > 0)
        if ((rc = kz_cs_rd_next_cell(r, &cell)) < 0)
            return rc;
    if (rd->err != 0)
        return rd->err;
    if (r->rows_read == r->n_rows) {
        if (rd->left != 0)
            RD_FAIL(rd, -KZ_EMALFORMED, "trailing bytes after body");
        return rd->err;
    }
    if (kz_mpk_array(rd, KZ_LIM_COUNT_MAX, &n) == 0 && n != 3 &&
        (n != 7 || r->format < 2))
        RD_FAIL(rd, -KZ_EMALFORMED,
                r->format < 2 ? "row is not an array of 3"
                              : "row is not an array of 3 or 7");
    if (kz_mpk_u32(rd, &row->table) == 0 && row->table >= r->n_tables)
        RD_FAIL(rd, -KZ_EMALFORMED, "table index out of range");
    if (kz_mpk_array(rd, KZ_LIM_PK_COLS_MAX, &row->n_pk) == 0 && row->n_pk == 0)
        RD_FAIL(rd, -KZ_EMALFORMED, "empty primary key");
    for (i = 0; i < row->n_pk && rd->err == 0; i++)
        if (kz_mpk_value(rd, &row->pk[i]) == 0 &&
            (row->pk[i].type == KZ_V_NULL ||
             (row->pk[i].type == KZ_V_REAL && isnan(row->pk[i].d))))
            RD_FAIL(rd, -KZ_EMALFORMED, "NULL or NaN in primary key");
    r->row_has_ver = rd->err == 0 && n == 7;
    if (r->row_has_ver) {
        struct kz_cs_ver *v = &r->row_ver;
        if (kz_mpk_uint(rd, UINT64_MAX, &v->hlc) == 0 && v->hlc == 0)
            RD_FAIL(rd, -KZ_EMALFORMED, "row hlc 0");
        if (kz_mpk_u32(rd, &v->author) == 0 && v->author >= r->n_authors)
            RD_FAIL(rd, -KZ_EMALFORMED, "author index out of range");
        (void)kz_mpk_uint(rd, UINT64_MAX, &v->base_hlc);
        if (kz_mpk_u32(rd, &v->base_author) == 0 &&
            v->base_author >= r->n_authors)
            RD_FAIL(rd, -KZ_EMALFORMED, "base_author index out of range");
    }
    if (kz_mpk_array(rd, KZ_LIM_COUNT_MAX, &row->n_cells) == 0 &&
        row->n_cells > KZ_LIM_CS_CELLS_MAX - r->n_cells)
        RD_FAIL(rd, -KZ_ELIMIT, "too many cells");
    if (rd->err != 0) {
        memset(row, 0, sizeof(*row));
        return rd->err;
    }
    r->rows_read++;
    r->n_cells += row->n_cells;
    r->cells_left = row->n_cells;
    r->row_n_cols = r->tables[row->table].n_cols;
    return 1;
}

/*
 * kz_cs_rd_next_cell(r, cell): reads the current row's next cell.  Returns 1
 * with a cell, 0 when the row has no more, or a negative error.  Rejects a
 * col beyond the table's column count, unknown flag bits, hlc 0, an author
 * or base_author out of range, and an existence cell whose value is not the
 * integer 0 or 1.  Errors are sticky.
 */
int
kz_cs_rd_next_cell(struct kz_cs_rd *r, struct kz_cs_cell *cell)
{
    struct kz_rd *rd = &r->rd;
    uint32_t n;

    memset(cell, 0, sizeof(*cell));
    if (rd->err != 0)
        return rd->err;
    if (r->cells_left == 0)
        return 0;
    if (kz_mpk_array(rd, KZ_LIM_COUNT_MAX, &n) == 0 && n != 7 &&
        (n != 2 || !r->row_has_ver))
        RD_FAIL(rd, -KZ_EMALFORMED,
                r->row_has_ver ? "cell is not an array of 2 or 7"
                               : "cell is not an array of 7");
    if (kz_mpk_u32(rd, &cell->col) == 0 && cell->col > r->row_n_cols)
        RD_FAIL(rd, -KZ_EMALFORMED, "column index out of range");
    if (n == 7 && kz_mpk_u32(rd, &cell->flags) == 0 &&
        (cell->flags & ~KZ_CELL_RETRACT) != 0)
        RD_FAIL(rd, -KZ_EMALFORMED, "unknown cell flag bits");
    if (kz_mpk_value(rd, &cell->value) == 0 && cell->col == 0 &&
        (cell->value.type != KZ_V_INT ||
         (cell->value.i != 0 && cell->value.i != 1)))
        RD_FAIL(rd, -KZ_EMALFORMED, "existence cell is not 0 or 1");
    if (n == 2) {
        /* A short cell: flags 0 and the row's version. */
        cell->hlc = r->row_ver.hlc;
        cell->author = r->row_ver.author;
        cell->base_hlc = r->row_ver.base_hlc;
        cell->base_author = r->row_ver.base_author;
    } else {
        if (kz_mpk_uint(rd, UINT64_MAX, &cell->hlc) == 0 && cell->hlc == 0)
            RD_FAIL(rd, -KZ_EMALFORMED, "cell hlc 0");
        if (kz_mpk_u32(rd, &cell->author) == 0 && cell->author >= r->n_authors)
            RD_FAIL(rd, -KZ_EMALFORMED, "author index out of range");
        (void)kz_mpk_uint(rd, UINT64_MAX, &cell->base_hlc);
        if (kz_mpk_u32(rd, &cell->base_author) == 0 &&
            cell->base_author >= r->n_authors)
            RD_FAIL(rd, -KZ_EMALFORMED, "base_author index out of range");
    }
    if (rd->err != 0) {
        memset(cell, 0, sizeof(*cell));
        return rd->err;
    }
    r->cells_left--;
    return 1;
}

/* kz_cs_rd_why(r): static text of the first decode failure, or NULL. */
const char *
kz_cs_rd_why(const struct kz_cs_rd *r)
{
    return r->rd.why;
}

/*
 * kz_cs_wr_new(out, max_len): a writer whose body may grow to ${max_len}
 * bytes (clamped to KZ_LIM_CS_BODY_MAX).  Caller frees with kz_cs_wr_free.
 * Returns 0 or -KZ_ENOMEM.
 */
int
kz_cs_wr_new(struct kz_cs_wr **out, size_t max_len)
{
    struct kz_cs_wr *w;

    *out = NULL;
    w = kz_calloc(1, sizeof(*w));
    if (w == NULL)
        return -KZ_ENOMEM;
    w->max_len = KZ_MIN(max_len, (size_t)KZ_LIM_CS_BODY_MAX);
    kz_mpk_wr_init(&w->tables, w->max_len);
    kz_mpk_wr_init(&w->rows, w->max_len);
    *out = w;
    return 0;
}

/* kz_cs_wr_free(w): frees ${w}; NULL is a no-op. */
void
kz_cs_wr_free(struct kz_cs_wr *w)
{
    if (w == NULL)
        return;
    kz_mpk_wr_free(&w->tables);
    kz_mpk_wr_free(&w->rows);
    kz_free(w->table_cols);
    kz_free(w->authors);
    kz_free(w);
}

/* A name the reader accepts: 1..KZ_LIM_NAME_MAX bytes.  0 or an error. */
static int
wr_name_check(const char *s)
{
    size_t len;

    if (s == NULL)
        return -KZ_EINVAL;
    len = strnlen(s, KZ_LIM_NAME_MAX + 1);
    if (len == 0)
        return -KZ_EINVAL;
    return len > KZ_LIM_NAME_MAX ? -KZ_ELIMIT : 0;
}

/*
 * kz_cs_wr_table(w, name, cols, n_cols): declares a table; returns its index
 * (≥ 0) or a negative error.  Names are copied.  Errors (not sticky: the
 * writer is left as it was, so the caller may finish the batch without this
 * table): -KZ_EINVAL (NULL or empty name), -KZ_ELIMIT (a name over
 * KZ_LIM_NAME_MAX, over KZ_LIM_CS_COLS_MAX columns, over
 * KZ_LIM_CS_TABLES_MAX tables, or the body cap), -KZ_ENOMEM.
 */
int
kz_cs_wr_table(struct kz_cs_wr *w, const char *name, const char *const *cols,
               uint32_t n_cols)
{
    size_t saved = kz_mpk_wr_len(&w->tables);
    uint32_t i;
    void *np;
    int rc;

    if ((rc = wr_name_check(name)) != 0)
        goto err0;
    if (n_cols > KZ_LIM_CS_COLS_MAX || w->n_tables >= KZ_LIM_CS_TABLES_MAX) {
        rc = -KZ_ELIMIT;
        goto err0;
    }
    if (n_cols > 0 && cols == NULL) {
        rc = -KZ_EINVAL;
        goto err0;
    }
    for (i = 0; i < n_cols; i++)
        if ((rc = wr_name_check(cols[i])) != 0)
            goto err0;
    np = grow(w->table_cols, &w->cap_tables, w->n_tables + 1,
              sizeof(*w->table_cols), KZ_LIM_CS_TABLES_MAX);
    if (np == NULL) {
        rc = -KZ_ENOMEM;
        goto err0;
    }
    w->table_cols = np;
    kz_mpk_wr_array(&w->tables, 2);
    kz_mpk_wr_str(&w->tables, name, strlen(name));
    kz_mpk_wr_array(&w->tables, n_cols);
    for (i = 0; i < n_cols; i++)
        kz_mpk_wr_str(&w->tables, cols[i], strlen(cols[i]));
    if ((rc = kz_mpk_wr_err(&w->tables)) != 0)
        goto err1;
    w->table_cols[w->n_tables] = n_cols;
    return (int)w->n_tables++;

err1:
    /* Drop the partial entry and the error: table errors are not sticky. */
    w->tables.b.len = saved;
    w->tables.b.err = 0;
err0:
    return rc;
}

/*
 * kz_cs_wr_author(w, key): index of ${key}, adding it if new; or < 0:
 * -KZ_ELIMIT (over KZ_LIM_CS_AUTHORS_MAX) or -KZ_ENOMEM.  Not sticky.
 */
int
kz_cs_wr_author(struct kz_cs_wr *w, const uint8_t key[KZ_KEY_LEN])
{
    uint32_t i;
    void *np;

    for (i = 0; i < w->n_authors; i++)
        if (memcmp(w->authors[i], key, KZ_KEY_LEN) == 0)
            return (int)i;
    if (w->n_authors >= KZ_LIM_CS_AUTHORS_MAX)
        return -KZ_ELIMIT;
    np = grow(w->authors, &w->cap_authors, w->n_authors + 1,
              sizeof(*w->authors), KZ_LIM_CS_AUTHORS_MAX);
    if (np == NULL)
        return -KZ_ENOMEM;
    w->authors = np;
    memcpy(w->authors[w->n_authors], key, KZ_KEY_LEN);
    return (int)w->n_authors++;
}

static void
wr_fail(struct kz_cs_wr *w, int err)
{
    if (w->err == 0)
        w->err = err;
}

/*
 * kz_cs_wr_row(w, table, pk, n_pk, n_cells, ver): starts a row that will
 * have exactly ${n_cells} cells.  With a version ${ver} (may be NULL), the
 * row carries it, and each of its cells with flags 0 and exactly that
 * version is written short.  Errors are sticky (see kz_cs_wr_finish):
 * -KZ_EINVAL (the previous row is short of cells, table out of range, n_pk
 * not 1..KZ_LIM_PK_COLS_MAX, a NULL, NaN or unknown-typed pk value, a version
 * with hlc 0 or an undeclared author), -KZ_ELIMIT (rows or cells over
 * their limits, or the body cap), -KZ_ENOMEM.
 */
void
kz_cs_wr_row(struct kz_cs_wr *w, uint32_t table, const struct kz_value *pk,
             uint32_t n_pk, uint32_t n_cells, const struct kz_cs_ver *ver)
{
    uint32_t i;

    if (w->err != 0)
        return;
    if (w->row_cells_left != 0 || table >= w->n_tables || n_pk == 0 ||
        n_pk > KZ_LIM_PK_COLS_MAX || pk == NULL ||
        (ver != NULL && (ver->hlc == 0 || ver->author >= w->n_authors ||
                         ver->base_author >= w->n_authors))) {
        wr_fail(w, -KZ_EINVAL);
        return;
    }
    for (i = 0; i < n_pk; i++) {
        if (pk[i].type == KZ_V_NULL ||
            (pk[i].type == KZ_V_REAL && isnan(pk[i].d))) {
            wr_fail(w, -KZ_EINVAL);
            return;
        }
    }
    if (w->n_rows >= KZ_LIM_CS_ROWS_MAX ||
        n_cells > KZ_LIM_CS_CELLS_MAX - w->n_cells_decl) {
        wr_fail(w, -KZ_ELIMIT);
        return;
    }
    kz_mpk_wr_array(&w->rows, ver != NULL ? 7 : 3);
    kz_mpk_wr_uint(&w->rows, table);
    kz_mpk_wr_array(&w->rows, n_pk);
    for (i = 0; i < n_pk; i++)
        kz_mpk_wr_value(&w->rows, &pk[i]);
    if (ver != NULL) {
        kz_mpk_wr_uint(&w->rows, ver->hlc);
        kz_mpk_wr_uint(&w->rows, ver->author);
        kz_mpk_wr_uint(&w->rows, ver->base_hlc);
        kz_mpk_wr_uint(&w->rows, ver->base_author);
    }
    kz_mpk_wr_array(&w->rows, n_cells);
    if (kz_mpk_wr_err(&w->rows) != 0) {
        wr_fail(w, kz_mpk_wr_err(&w->rows));
        return;
    }
    w->n_rows++;
    w->n_cells_decl += n_cells;
    w->row_cells_left = n_cells;
    w->row_n_cols = w->table_cols[table];
    w->row_has_ver = ver != NULL;
    if (ver != NULL)
        w->row_ver = *ver;
}

/*
 * kz_cs_wr_cell(w, cell): appends one cell of the current row.  Sticky
 * -KZ_EINVAL for a cell the reader would refuse (no cell left in the row,
 * col over the table's columns, unknown flags, hlc 0, author or base_author
 * not declared, an existence cell that is not the integer 0 or 1);
 * -KZ_ELIMIT for a value over its limit or the body cap; -KZ_ENOMEM.
 */
void
kz_cs_wr_cell(struct kz_cs_wr *w, const struct kz_cs_cell *cell)
{
    const struct kz_value *v = &cell->value;

    if (w->err != 0)
        return;
    if (w->row_cells_left == 0 || cell->col > w->row_n_cols ||
        (cell->flags & ~KZ_CELL_RETRACT) != 0 || cell->hlc == 0 ||
        cell->author >= w->n_authors || cell->base_author >= w->n_authors ||
        (cell->col == 0 && (v->type != KZ_V_INT || (v->i != 0 && v->i != 1)))) {
        wr_fail(w, -KZ_EINVAL);
        return;
    }
    if (w->row_has_ver && cell->flags == 0 && cell->hlc == w->row_ver.hlc &&
        cell->author == w->row_ver.author &&
        cell->base_hlc == w->row_ver.base_hlc &&
        cell->base_author == w->row_ver.base_author) {
        kz_mpk_wr_array(&w->rows, 2);
        kz_mpk_wr_uint(&w->rows, cell->col);
        kz_mpk_wr_value(&w->rows, v);
    } else {
        kz_mpk_wr_array(&w->rows, 7);
        kz_mpk_wr_uint(&w->rows, cell->col);
        kz_mpk_wr_uint(&w->rows, cell->flags);
        kz_mpk_wr_value(&w->rows, v);
        kz_mpk_wr_uint(&w->rows, cell->hlc);
        kz_mpk_wr_uint(&w->rows, cell->author);
        kz_mpk_wr_uint(&w->rows, cell->base_hlc);
        kz_mpk_wr_uint(&w->rows, cell->base_author);
    }
    if (kz_mpk_wr_err(&w->rows) != 0) {
        wr_fail(w, kz_mpk_wr_err(&w->rows));
        return;
    }
    w->row_cells_left--;
    w->n_cells++;
}

/* kz_cs_wr_len(w): bytes written so far (rows), to bound a batch. */
size_t
kz_cs_wr_len(const struct kz_cs_wr *w)
{
    return kz_mpk_wr_len(&w->rows);
}

uint32_t
kz_cs_wr_n_rows(const struct kz_cs_wr *w)
{
    return w->n_rows;
}

/* kz_cs_wr_n_cells(w): cells written so far (for the header's n_cells). */
uint32_t
kz_cs_wr_n_cells(const struct kz_cs_wr *w)
{
    return w->n_cells;
}

/* Empties ${w} for reuse, keeping its memory. */
static void
wr_empty(struct kz_cs_wr *w)
{
    kz_mpk_wr_reset(&w->tables);
    kz_mpk_wr_reset(&w->rows);
    w->n_tables = 0;
    w->n_authors = 0;
    w->n_rows = 0;
    w->n_cells_decl = 0;
    w->n_cells = 0;
    w->row_cells_left = 0;
    w->row_n_cols = 0;
    w->row_has_ver = 0;
    w->err = 0;
}

/*
 * kz_cs_wr_finish(w, out, out_len): the whole body; *${out} is allocated
 * (caller frees with kz_free).  Returns the first sticky error if any:
 * -KZ_ENOMEM, -KZ_ELIMIT (body over max_len or a count over its limit),
 * -KZ_EINVAL (a row with a wrong cell count, an index out of range).
 * The writer is emptied (tables, authors and rows) and may be reused,
 * whether it succeeded or not.
 */
int
kz_cs_wr_finish(struct kz_cs_wr *w, uint8_t **out, size_t *out_len)
{
    struct kz_mpk_wr body;
    uint32_t i;
    int rc;

    *out = NULL;
    *out_len = 0;
    if ((rc = w->err) != 0)
        goto out;
    if (w->row_cells_left != 0) {
        rc = -KZ_EINVAL;
        goto out;
    }
    kz_mpk_wr_init(&body, w->max_len);
    kz_mpk_wr_array(&body, 4);
    kz_mpk_wr_uint(&body, KZ_CS_BODY_FORMAT);
    kz_mpk_wr_array(&body, w->n_tables);
    kz_mpk_wr_raw(&body, w->tables.b.p, w->tables.b.len);
    kz_mpk_wr_array(&body, w->n_authors);
    for (i = 0; i < w->n_authors; i++)
        kz_mpk_wr_bin(&body, w->authors[i], KZ_KEY_LEN);
    kz_mpk_wr_array(&body, w->n_rows);
    kz_mpk_wr_raw(&body, w->rows.b.p, w->rows.b.len);
    rc = kz_mpk_wr_finish(&body, out, out_len);
out:
    wr_empty(w);
    return rc;
}
