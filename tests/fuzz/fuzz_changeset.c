/*
 * fuzz_changeset.c: the changeset header decoder and the streaming body
 * reader on arbitrary bytes.
 *
 * Every input is tried both as a header and as a body.  Properties, beyond
 * "never crash, hang or leak": every failure carries a static reason; a
 * header that decodes re-encodes and decodes to the same struct; a body that
 * reads to the end yields only in-range indexes, at most the declared rows,
 * and at most KZ_LIM_CS_CELLS_MAX cells.
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_header(data, size);
    fuzz_body(data, size);
    return 0;
}
