/*
 * changeset.h: the changeset codec (DESIGN.md §4; PROTOCOL.md §Changesets).
 *
 * A changeset is one author's batch of cells for one scope: a header and a
 * body.  This module encodes and decodes both as msgpack.  Sealing (AEAD with
 * the header as associated data) and signing live in proto/seal (issue 4);
 * nothing here knows keys.
 *
 * Header, a msgpack array of 9:
 *
 *     [ format:uint (=1), scope:str(≤128), author:bin(32), author_seq:uint,
 *       epoch:uint, n_cells:uint, n_rows:uint, hlc_min:uint, hlc_max:uint ]
 *
 * Body, a msgpack array of 4:
 *
 *     [ format:uint (=2; 1 is still read),
 *       tables:  [ [ name:str, [ col:str, … ] ], … ],
 *       authors: [ key:bin(32), … ],
 *       rows:    [ row, … ] ]
 *
 *     row  = [ table:uint, pk:[ value, … ], cells:[ cell, … ] ]
 *          | [ table:uint, pk:[ value, … ], hlc:uint, author:uint,
 *              base_hlc:uint, base_author:uint, cells:[ cell, … ] ]
 *     cell = [ col:uint, flags:uint, value, hlc:uint, author:uint,
 *              base_hlc:uint, base_author:uint ]
 *          | [ col:uint, value ]
 *     value = nil | int | float64 | str | bin
 *
 * A row of 7 (format 2) carries a version; its short cells [col, value]
 * have flags 0 and exactly that version.  In a row of 3, and in format 1,
 * every cell is whole.  Most rows' cells share one version (a row
 * inserted, or one column updated), so format 2 is about a fifth smaller.
 *
 * `table` indexes `tables`; `author` and `base_author` index `authors`.  `col`
 * 0 is the row's existence cell (value 1 = live, 0 = deleted); col k ≥ 1 is
 * the k-th column name of the table's list.  Columns are named, not numbered,
 * so replicas whose schemas differ map them by name (a column this replica
 * does not have yet waits in quarantine).  base_hlc = 0 means "no base": the
 * author had never seen the cell.  Flag bit 0 (KZ_CELL_RETRACT) marks a cell
 * that leaves a scope (see client/apply.c); other flag bits must be 0.
 *
 * Every count is checked against proto/limits.h and against the bytes left
 * before anything is allocated.  Decoded strings and blobs are borrowed from
 * the input buffer, which must outlive the reader.
 */
#ifndef KZ_PROTO_CHANGESET_H
#define KZ_PROTO_CHANGESET_H

#include <stddef.h>
#include <stdint.h>

#include "kz.h"
#include "limits.h"

#define KZ_CS_FORMAT 1      /* the header's */
#define KZ_CS_BODY_FORMAT 2 /* the body's written; 1 and 2 are read */
#define KZ_KEY_LEN 32       /* an author's Ed25519 public key */
#define KZ_CELL_RETRACT 0x1u

enum kz_vtype {
    KZ_V_NULL = 0,
    KZ_V_INT = 1,
    KZ_V_REAL = 2,
    KZ_V_TEXT = 3,
    KZ_V_BLOB = 4
};

/* One SQLite value; text and blob bytes are borrowed. */
struct kz_value {
    enum kz_vtype type; /* which of the fields below is meaningful */
    int64_t i;          /* KZ_V_INT */
    double d;           /* KZ_V_REAL */
    const uint8_t *p;   /* KZ_V_TEXT (not NUL-terminated), KZ_V_BLOB */
    size_t len;         /* bytes at p */
};

/* A borrowed string (not NUL-terminated). */
struct kz_str {
    const char *p; /* bytes; borrowed */
    size_t len;    /* byte count */
};

struct kz_cs_header {
    uint32_t format; /* KZ_CS_FORMAT */
    char scope[KZ_LIM_NAME_MAX +
               1]; /* "network", "site:HAN", … ; NUL-terminated */
    uint8_t author[KZ_KEY_LEN]; /* signer's Ed25519 public key */
    uint64_t author_seq;        /* 1, 2, 3 … per author and scope */
    uint32_t epoch;             /* key epoch of the scope */
    uint32_t n_cells;           /* cells in the body */
    uint32_t n_rows;            /* rows in the body */
    uint64_t hlc_min;           /* lowest cell hlc */
    uint64_t hlc_max;           /* highest cell hlc */
};

struct kz_cs_cell {
    uint32_t col;          /* 0 = existence, k = table's k-th column */
    uint32_t flags;        /* KZ_CELL_RETRACT or 0 */
    struct kz_value value; /* the cell's value */
    uint64_t hlc;          /* version: hlc … */
    uint32_t author;       /* … and author (index into authors) */
    uint64_t base_hlc;     /* base version, 0 if none … */
    uint32_t base_author;  /* … and its author (index) */
};

/* A cell version: hlc and author, and the base version the author had
 * seen (base_hlc 0: none).  Authors are indexes into the body's list. */
struct kz_cs_ver {
    uint64_t hlc;
    uint32_t author;
    uint64_t base_hlc;
    uint32_t base_author;
};

struct kz_cs_row {
    uint32_t table;                         /* index into tables */
    uint32_t n_pk;                          /* primary-key values */
    struct kz_value pk[KZ_LIM_PK_COLS_MAX]; /* borrowed */
    uint32_t n_cells;                       /* cells that follow */
};

struct kz_cs_table {
    struct kz_str name;  /* table name */
    uint32_t n_cols;     /* columns */
    struct kz_str *cols; /* column names; owned by the reader */
};

/**
 * kz_cs_header_encode(h, out, out_len): packs ${h}; *${out} is allocated
 * (caller frees with kz_free).  Returns 0, -KZ_ENOMEM or -KZ_EINVAL.
 */
KZ_MUST_CHECK int kz_cs_header_encode(const struct kz_cs_header *h,
                                      uint8_t **out, size_t *out_len);

/**
 * kz_cs_header_decode(h, p, len): parses exactly ${len} bytes (trailing
 * bytes are an error).  Returns 0 or -KZ_EMALFORMED / -KZ_ELIMIT /
 * -KZ_EVERSION; on error *${h} is unspecified.  ${why}, if not NULL, gets a
 * static description of the failure.
 */
KZ_MUST_CHECK int kz_cs_header_decode(struct kz_cs_header *h, const uint8_t *p,
                                      size_t len, const char **why);

/* Streaming body reader. */
struct kz_cs_rd;

/**
 * kz_cs_rd_new(out, p, len): opens a body; parses format, tables and
 * authors.  ${p} is borrowed and must outlive the reader.  Returns 0 or a
 * decode error (see kz_cs_rd_why).  Caller frees with kz_cs_rd_free.
 */
KZ_MUST_CHECK int kz_cs_rd_new(struct kz_cs_rd **out, const uint8_t *p,
                               size_t len, const char **why);
void kz_cs_rd_free(struct kz_cs_rd *r);

uint32_t kz_cs_rd_n_tables(const struct kz_cs_rd *r);
const struct kz_cs_table *kz_cs_rd_table(const struct kz_cs_rd *r, uint32_t i);
uint32_t kz_cs_rd_n_authors(const struct kz_cs_rd *r);
/** kz_cs_rd_author(r, i): 32 bytes, borrowed; NULL if ${i} is out of range. */
const uint8_t *kz_cs_rd_author(const struct kz_cs_rd *r, uint32_t i);
uint32_t kz_cs_rd_n_rows(const struct kz_cs_rd *r);

/**
 * kz_cs_rd_next_row(r, row): reads the next row's table and primary key.
 * Returns 1 with a row, 0 at the end (after checking that no bytes are
 * left), or a negative error.  Indexes (table, col, author) are checked
 * against the body's own lists; pk values are NULL-free, and the pk count is
 * 1..KZ_LIM_PK_COLS_MAX.  The row's cells must be read before the next row.
 */
KZ_MUST_CHECK int kz_cs_rd_next_row(struct kz_cs_rd *r, struct kz_cs_row *row);

/**
 * kz_cs_rd_next_cell(r, cell): reads the current row's next cell.  Returns 1
 * with a cell, 0 when the row has no more, or a negative error.  Rejects a
 * col beyond the table's column count, unknown flag bits, hlc 0, and an
 * existence cell whose value is not the integer 0 or 1.
 */
KZ_MUST_CHECK int kz_cs_rd_next_cell(struct kz_cs_rd *r,
                                     struct kz_cs_cell *cell);

/** kz_cs_rd_why(r): static text of the first decode failure, or NULL. */
const char *kz_cs_rd_why(const struct kz_cs_rd *r);

/* Body writer. */
struct kz_cs_wr;

/**
 * kz_cs_wr_new(out, max_len): a writer whose body may grow to ${max_len}
 * bytes.  Caller frees with kz_cs_wr_free.
 */
KZ_MUST_CHECK int kz_cs_wr_new(struct kz_cs_wr **out, size_t max_len);
void kz_cs_wr_free(struct kz_cs_wr *w);

/**
 * kz_cs_wr_table(w, name, cols, n_cols): declares a table; returns its index
 * (≥ 0) or a negative error.  Names are copied.
 */
KZ_MUST_CHECK int kz_cs_wr_table(struct kz_cs_wr *w, const char *name,
                                 const char *const *cols, uint32_t n_cols);

/** kz_cs_wr_author(w, key): index of ${key}, adding it if new; or < 0. */
KZ_MUST_CHECK int kz_cs_wr_author(struct kz_cs_wr *w,
                                  const uint8_t key[KZ_KEY_LEN]);

/**
 * kz_cs_wr_row(w, table, pk, n_pk, n_cells, ver): starts a row that will
 * have exactly ${n_cells} cells; with ${ver} (may be NULL) the row carries
 * that version and its cells of flags 0 and that version are written
 * short.  Errors are sticky (see kz_cs_wr_finish).
 */
void kz_cs_wr_row(struct kz_cs_wr *w, uint32_t table, const struct kz_value *pk,
                  uint32_t n_pk, uint32_t n_cells, const struct kz_cs_ver *ver);

/** kz_cs_wr_cell(w, cell): appends one cell of the current row. */
void kz_cs_wr_cell(struct kz_cs_wr *w, const struct kz_cs_cell *cell);

/** kz_cs_wr_len(w): bytes written so far (rows), to bound a batch. */
size_t kz_cs_wr_len(const struct kz_cs_wr *w);
uint32_t kz_cs_wr_n_rows(const struct kz_cs_wr *w);
uint32_t kz_cs_wr_n_cells(const struct kz_cs_wr *w);

/**
 * kz_cs_wr_finish(w, out, out_len): the whole body; *${out} is allocated
 * (caller frees with kz_free).  Returns the first sticky error if any:
 * -KZ_ENOMEM, -KZ_ELIMIT (body over max_len or a count over its limit),
 * -KZ_EINVAL (a row with a wrong cell count, an index out of range).
 * The writer is emptied (tables, authors and rows) and may be reused.
 */
KZ_MUST_CHECK int kz_cs_wr_finish(struct kz_cs_wr *w, uint8_t **out,
                                  size_t *out_len);

#endif /* KZ_PROTO_CHANGESET_H */
