/*
 * fuzz_changeset.c: the changeset header decoder and the streaming body
 * reader on arbitrary bytes.
 *
 * Every input is tried both as a header and as a body.  Properties, beyond
 * "never crash, hang or leak": every failure carries a static reason; a
 * header that decodes re-encodes and decodes to the same struct; a body that
 * reads to the end yields only in-range indexes, at most the declared rows,
 * and at most KZ_LIM_CS_CELLS_MAX cells; and the writer accepts what the
 * reader read (but for the size cap) and writes it so that the reader gets
 * the same back, with and without row versions (format 2).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "changeset.h"
#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
    if (!cond)
        abort();
}

static void
fuzz_header(const uint8_t *data, size_t size)
{
    struct kz_cs_header h, g;
    const char *why = NULL;
    uint8_t *p;
    size_t len;
    int rc;

    rc = kz_cs_header_decode(&h, data, size, &why);
    if (rc != 0) {
        check(rc == -KZ_EMALFORMED || rc == -KZ_ELIMIT || rc == -KZ_EVERSION);
        check(why != NULL);
        return;
    }
    check(why == NULL);
    check(h.format == KZ_CS_FORMAT);
    check(strlen(h.scope) <= KZ_LIM_NAME_MAX);
    rc = kz_cs_header_encode(&h, &p, &len);
    check(rc == 0);
    check(len <= size); /* ours is the shortest encoding */
    check(kz_cs_header_decode(&g, p, len, NULL) == 0);
    check(memcmp(&g, &h, sizeof(h)) == 0);
    kz_free(p);
}

static void
fuzz_body(const uint8_t *data, size_t size)
{
    struct kz_cs_rd *r;
    struct kz_cs_row row;
    struct kz_cs_cell c;
    const char *why = NULL;
    uint32_t rows = 0, cells = 0, i;
    int rc;

    rc = kz_cs_rd_new(&r, data, size, &why);
    if (rc != 0) {
        check(r == NULL);
        check(why != NULL);
        return;
    }
    for (i = 0; i < kz_cs_rd_n_tables(r); i++)
        check(kz_cs_rd_table(r, i)->n_cols <= KZ_LIM_CS_COLS_MAX);
    while ((rc = kz_cs_rd_next_row(r, &row)) == 1) {
        const struct kz_cs_table *t = kz_cs_rd_table(r, row.table);

        rows++;
        check(t != NULL);
        check(row.n_pk >= 1 && row.n_pk <= KZ_LIM_PK_COLS_MAX);
        /* Read only some cells of odd rows: next_row must cope. */
        while ((row.table & 1) == 0 || cells % 3 != 2) {
            rc = kz_cs_rd_next_cell(r, &c);
            if (rc != 1)
                break;
            cells++;
            check(c.col <= t->n_cols);
            check(c.hlc != 0);
            check(kz_cs_rd_author(r, c.author) != NULL);
            check(kz_cs_rd_author(r, c.base_author) != NULL);
        }
        if (rc < 0)
            break;
    }
    check(rc <= 0);
    check(rc == 0 || kz_cs_rd_why(r) != NULL);
    check(rows <= kz_cs_rd_n_rows(r));
    check(cells <= KZ_LIM_CS_CELLS_MAX);
    kz_cs_rd_free(r);
}

static int
same_value(const struct kz_value *a, const struct kz_value *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case KZ_V_INT: return a->i == b->i;
    case KZ_V_REAL: return memcmp(&a->d, &b->d, sizeof(a->d)) == 0;
    case KZ_V_TEXT:
    case KZ_V_BLOB:
        return a->len == b->len &&
               (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
    default: return 1;
    }
}

/* The author key behind index ${i} of reader ${r}. */
static const uint8_t *
akey(const struct kz_cs_rd *r, uint32_t i)
{
    const uint8_t *k = kz_cs_rd_author(r, i);
    check(k != NULL);
    return k;
}

/* Writes what reader ${r} reads into ${w}; 1 if the body read to its end. */
static int
rewrite(struct kz_cs_rd *r, struct kz_cs_wr *w)
{
    static struct kz_cs_cell cells[KZ_LIM_CS_CELLS_MAX];
    struct kz_cs_row row;
    uint32_t i, j, rows = 0;
    int rc;

    for (i = 0; i < kz_cs_rd_n_tables(r); i++) {
        const struct kz_cs_table *t = kz_cs_rd_table(r, i);
        char name[KZ_LIM_NAME_MAX + 1];
        char(*cols)[KZ_LIM_NAME_MAX + 1] =
            kz_calloc(t->n_cols + 1, sizeof(*cols));
        const char **cp = kz_calloc(t->n_cols + 1, sizeof(*cp));

        check(cols != NULL && cp != NULL);
        memcpy(name, t->name.p, t->name.len);
        name[t->name.len] = '\0';
        for (j = 0; j < t->n_cols; j++) {
            memcpy(cols[j], t->cols[j].p, t->cols[j].len);
            cols[j][t->cols[j].len] = '\0';
            cp[j] = cols[j];
        }
        check(kz_cs_wr_table(w, name, cp, t->n_cols) == (int)i);
        kz_free(cols);
        kz_free(cp);
    }
    for (i = 0; i < kz_cs_rd_n_authors(r); i++)
        check(kz_cs_wr_author(w, akey(r, i)) >= 0); /* duplicates merge */
    while ((rc = kz_cs_rd_next_row(r, &row)) == 1) {
        struct kz_cs_ver v, *vp = NULL;
        uint32_t n = 0;

        while (n < KZ_LIM_CS_CELLS_MAX &&
               (rc = kz_cs_rd_next_cell(r, &cells[n])) == 1)
            n++;
        if (rc < 0)
            return 0;
        for (j = 0; j < n; j++) {
            cells[j].author =
                (uint32_t)kz_cs_wr_author(w, akey(r, cells[j].author));
            cells[j].base_author =
                (uint32_t)kz_cs_wr_author(w, akey(r, cells[j].base_author));
        }
        if (n > 0 && (rows++ & 1) == 0) {
            v.hlc = cells[0].hlc;
            v.author = cells[0].author;
            v.base_hlc = cells[0].base_hlc;
            v.base_author = cells[0].base_author;
            vp = &v;
        }
        kz_cs_wr_row(w, row.table, row.pk, row.n_pk, n, vp);
        for (j = 0; j < n; j++)
            kz_cs_wr_cell(w, &cells[j]);
    }
    return rc == 0;
}

/* The writer gives back what the reader read. */
static void
fuzz_rewrite(const uint8_t *data, size_t size)
{
    struct kz_cs_rd *r = NULL, *a = NULL, *b = NULL;
    struct kz_cs_wr *w = NULL;
    struct kz_cs_row ra, rb;
    struct kz_cs_cell ca, cb;
    uint8_t *out = NULL;
    size_t out_len = 0;
    uint32_t i;
    int rc;

    if (kz_cs_rd_new(&r, data, size, NULL) != 0)
        return;
    check(kz_cs_wr_new(&w, KZ_LIM_CS_BODY_MAX) == 0);
    if (!rewrite(r, w))
        goto out;
    rc = kz_cs_wr_finish(w, &out, &out_len);
    check(rc == 0 || rc == -KZ_ELIMIT);
    if (rc != 0)
        goto out;
    check(kz_cs_rd_new(&a, data, size, NULL) == 0);
    check(kz_cs_rd_new(&b, out, out_len, NULL) == 0);
    check(kz_cs_rd_n_tables(a) == kz_cs_rd_n_tables(b));
    for (i = 0; i < kz_cs_rd_n_tables(a); i++)
        check(kz_cs_rd_table(a, i)->n_cols == kz_cs_rd_table(b, i)->n_cols);
    while ((rc = kz_cs_rd_next_row(a, &ra)) == 1) {
        check(kz_cs_rd_next_row(b, &rb) == 1);
        check(ra.table == rb.table && ra.n_pk == rb.n_pk);
        for (i = 0; i < ra.n_pk; i++)
            check(same_value(&ra.pk[i], &rb.pk[i]));
        while ((rc = kz_cs_rd_next_cell(a, &ca)) == 1) {
            check(kz_cs_rd_next_cell(b, &cb) == 1);
            check(ca.col == cb.col && ca.flags == cb.flags);
            check(same_value(&ca.value, &cb.value));
            check(ca.hlc == cb.hlc && ca.base_hlc == cb.base_hlc);
            check(memcmp(akey(a, ca.author), akey(b, cb.author), 32) == 0);
            check(memcmp(akey(a, ca.base_author), akey(b, cb.base_author),
                         32) == 0);
        }
        check(rc == 0);
        check(kz_cs_rd_next_cell(b, &cb) == 0);
    }
    check(rc == 0);
    check(kz_cs_rd_next_row(b, &rb) == 0);
out:
    kz_cs_rd_free(r);
    kz_cs_rd_free(a);
    kz_cs_rd_free(b);
    kz_cs_wr_free(w);
    kz_free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_header(data, size);
    fuzz_body(data, size);
    fuzz_rewrite(data, size);
    return 0;
}
