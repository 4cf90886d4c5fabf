/*
 * fuzz_roster.c: the roster decoder on arbitrary bytes.
 *
 * Every input is tried three ways:
 *   1. roster_decode with a fixed trusted admin key (the key of the seed
 *      FUZZ_ADMIN_SEED, which tests/unit/test_roster.c signs the corpus
 *      with): the envelope parser and the signature check;
 *   2. roster__decode_body on the input itself, with no signature check,
 *      so that mutations reach the body parser at all;
 *   3. if the input is an envelope [ body:bin, sig:bin ], the body parser
 *      on its body, so that mutated signed seeds keep reaching it.
 * Properties, beyond "never crash, hang or leak": every failure carries a
 * static reason and one of the documented codes; a body that decodes
 * re-encodes (our encoding is the shortest, so no longer than the input)
 * and decodes to the same roster; every decoded member obeys the rules.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "crypto.h"
#include "err.h"
#include "mpk.h"
#include "roster.h"

#define FUZZ_ADMIN_SEED 0x46 /* every byte; shared with test_roster.c */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
    if (!cond)
        abort();
}

static void
check_members(const struct roster *r)
{
    uint32_t i, j;

    check(roster_version(r) >= 1);
    check(roster_n_members(r) <= KZ_LIM_ROSTER_MEMBERS);
    for (i = 0; i < roster_n_members(r); i++) {
        const struct roster_member *m = roster_member(r, i);

        check(roster_name_valid(m->name));
        check(roster_site_valid(m->site));
        check(roster_role_name(m->role) != NULL);
        check(m->n_seqs <= KZ_LIM_ROSTER_SEQS_MAX);
        check(m->revoked || m->n_seqs == 0);
        for (j = 0; j < m->n_seqs; j++)
            check(roster_scope_valid(m->seqs[j].scope));
        check(roster_find_by_name(r, m->name) == m);
        check(roster_find_by_sign(r, &m->sign_pk) == m);
        check(roster_find_by_dh(r, &m->dh_pk) == m);
        /* A revoked member has no rights at all. */
        if (m->revoked)
            check(!roster_may_read(r, m, "network"));
    }
    check(roster_find_by_sign(r, roster_admin(r)) != NULL);
}

static int
same(const struct roster *a, const struct roster *b)
{
    uint32_t i;

    if (roster_version(a) != roster_version(b) ||
        memcmp(roster_admin(a), roster_admin(b), 32) != 0 ||
        roster_n_members(a) != roster_n_members(b))
        return 0;
    for (i = 0; i < roster_n_members(a); i++) {
        const struct roster_member *x = roster_member(a, i);
        const struct roster_member *y = roster_member(b, i);

        if (strcmp(x->name, y->name) != 0 || strcmp(x->site, y->site) != 0 ||
            x->role != y->role || x->revoked != y->revoked ||
            memcmp(&x->sign_pk, &y->sign_pk, 32) != 0 ||
            memcmp(&x->dh_pk, &y->dh_pk, 32) != 0 || x->n_seqs != y->n_seqs)
            return 0;
        if (x->n_seqs &&
            memcmp(x->seqs, y->seqs, x->n_seqs * sizeof(*x->seqs)) != 0)
            return 0;
    }
    return 1;
}

static void
fuzz_body(const uint8_t *data, size_t size)
{
    struct roster *r, *r2;
    const char *why = NULL;
    uint8_t *p;
    size_t len;
    int rc;

    rc = roster__decode_body(&r, data, size, &why);
    if (rc != 0) {
        check(r == NULL);
        check(why != NULL);
        check(rc == -KZ_EMALFORMED || rc == -KZ_ELIMIT || rc == -KZ_EVERSION ||
              rc == -KZ_ENOMEM);
        return;
    }
    check(why == NULL);
    check_members(r);
    check(roster__encode_body(r, &p, &len) == 0);
    check(len <= size);
    check(roster__decode_body(&r2, p, len, NULL) == 0);
    check(same(r, r2));
    roster_free(r2);
    kz_free(p);
    roster_free(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct kz_sign_pk admin;
    static int init;
    struct roster *r;
    struct kz_rd rd;
    const char *why = NULL;
    const uint8_t *body;
    size_t body_len;
    uint32_t n;
    int rc;

    if (!init) {
        struct kz_sign_sk sk;
        uint8_t seed[32];

        check(kz_crypto_init() == 0);
        memset(seed, FUZZ_ADMIN_SEED, sizeof(seed));
        check(kz_sign_seed_keypair(&admin, &sk, seed) == 0);
        kz_crypto_wipe(&sk, sizeof(sk));
        init = 1;
    }

    rc = roster_decode(&r, data, size, &admin, &why);
    if (rc == 0) {
        check(why == NULL);
        check(memcmp(roster_admin(r), &admin, 32) == 0);
        check_members(r);
        roster_free(r);
    } else {
        check(r == NULL);
        check(why != NULL);
        check(rc == -KZ_EMALFORMED || rc == -KZ_ELIMIT || rc == -KZ_EVERSION ||
              rc == -KZ_EAUTH || rc == -KZ_ENOMEM);
    }

    fuzz_body(data, size);

    kz_rd_init(&rd, data, size);
    if (kz_mpk_array(&rd, 2, &n) == 0 && n == 2 &&
        kz_mpk_bin(&rd, KZ_LIM_ROSTER_MAX, &body, &body_len) == 0)
        fuzz_body(body, body_len);
    return 0;
}
