/*
 * roster.c: the roster codec, its rules, lookups and role rights
 * (DESIGN.md §4; PROTOCOL.md §Roster).
 *
 *     roster = [ body:bin(≤1 MiB), sig:bin(64) ]
 *     body   = [ format:uint (=1), version:uint(≥1), admin:bin(32),
 *                members:[ member, … ](≤4096) ]
 *     member = [ name:str(1..64, [A-Za-z0-9._-]),
 *                site:str(1..32, [A-Za-z0-9_-]),
 *                role:str("admin"|"site"|"observer"),
 *                sign_pk:bin(32), dh_pk:bin(32), revoked:bool,
 *                revoked_seqs:[ [ scope:str(1..128), seq:uint ], … ](≤64) ]
 *
 * Order of work in roster_decode: the outer array and its two bins are
 * read (bounded), the signature over the body bytes is verified with the
 * trusted admin key, and only then is the body parsed.  A format other than
 * 1 is -KZ_EVERSION; it is read before the body array's length is checked,
 * so that a later format with more fields reads as "unsupported".
 *
 * Uniqueness of names and keys is checked by sorting an index (n log n), so
 * that a 4096-member roster costs no 16 million comparisons.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "changeset.h" /* struct kz_str */
#include "err.h"
#include "limits.h"
#include "mpk.h"

#include "roster.h"

#define PREALLOC_MAX 64u
#define ROLE_STR_MAX 8u /* "observer" */

struct roster {
    uint64_t version;              /* ≥ 1 */
    struct kz_sign_pk admin;       /* admin's Ed25519 public key */
    struct roster_member *members; /* n entries; owned */
    uint32_t n;                    /* members in use */
    uint32_t cap;                  /* entries allocated */
};

/* ---- small helpers ---------------------------------------------------- */

static int
name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* A device name: 1..64 bytes of [A-Za-z0-9._-]. */
static bool
name_valid(const char *p, size_t len)
{
    size_t i;

    if (len == 0 || len > KZ_LIM_DEVICE_NAME_MAX)
        return false;
    for (i = 0; i < len; i++)
        if (!name_char(p[i]) && p[i] != '.')
            return false;
    return true;
}

/* A site code: 1..32 bytes of [A-Za-z0-9_-]. */
static bool
site_valid(const char *p, size_t len)
{
    size_t i;

    if (len == 0 || len > KZ_LIM_SITE_MAX)
        return false;
    for (i = 0; i < len; i++)
        if (!name_char(p[i]))
            return false;
    return true;
}

enum scope_kind { SCOPE_BAD, SCOPE_NETWORK, SCOPE_SITE, SCOPE_PRIVATE };

/*
 * scope_parse(p, len, site, site_len): the kind of scope ${p}; for site:X
 * and private:X, *${site} points at X within ${p}.
 */
static enum scope_kind
scope_parse(const char *p, size_t len, const char **site, size_t *site_len)
{
    *site = NULL;
    *site_len = 0;
    if (len == 0 || len > KZ_LIM_NAME_MAX)
        return SCOPE_BAD;
    if (len == 7 && memcmp(p, "network", 7) == 0)
        return SCOPE_NETWORK;
    if (len > 5 && memcmp(p, "site:", 5) == 0 && site_valid(p + 5, len - 5)) {
        *site = p + 5;
        *site_len = len - 5;
        return SCOPE_SITE;
    }
    if (len > 8 && memcmp(p, "private:", 8) == 0 &&
        site_valid(p + 8, len - 8)) {
        *site = p + 8;
        *site_len = len - 8;
        return SCOPE_PRIVATE;
    }
    return SCOPE_BAD;
}

static bool
scope_valid_n(const char *p, size_t len)
{
    const char *s;
    size_t sl;

    return scope_parse(p, len, &s, &sl) != SCOPE_BAD;
}

/** roster_name_valid(name): 1..64 bytes of [A-Za-z0-9._-]. */
bool
roster_name_valid(const char *name)
{
    return name != NULL &&
           name_valid(name, strnlen(name, KZ_LIM_DEVICE_NAME_MAX + 1));
}

/** roster_site_valid(site): 1..32 bytes of [A-Za-z0-9_-]. */
bool
roster_site_valid(const char *site)
{
    return site != NULL && site_valid(site, strnlen(site, KZ_LIM_SITE_MAX + 1));
}

/**
 * roster_scope_valid(scope): whether ${scope} is "network", "site:SITE" or
 * "private:SITE" with a valid SITE.
 */
bool
roster_scope_valid(const char *scope)
{
    return scope != NULL &&
           scope_valid_n(scope, strnlen(scope, KZ_LIM_NAME_MAX + 1));
}

/** roster_role_name(role): "admin", "site", "observer", or NULL. */
const char *
roster_role_name(enum roster_role role)
{
    switch (role) {
    case ROSTER_ROLE_ADMIN: return "admin";
    case ROSTER_ROLE_SITE: return "site";
    case ROSTER_ROLE_OBSERVER: return "observer";
    }
    return NULL;
}

static int
role_parse_n(const char *p, size_t len, enum roster_role *role)
{
    if (len == 5 && memcmp(p, "admin", 5) == 0)
        *role = ROSTER_ROLE_ADMIN;
    else if (len == 4 && memcmp(p, "site", 4) == 0)
        *role = ROSTER_ROLE_SITE;
    else if (len == 8 && memcmp(p, "observer", 8) == 0)
        *role = ROSTER_ROLE_OBSERVER;
    else
        return -KZ_EINVAL;
    return 0;
}

/**
 * roster_role_parse(s, role): *${role} for the exact names "admin", "site",
 * "observer".  Returns 0 or -KZ_EINVAL.
 */
int
roster_role_parse(const char *s, enum roster_role *role)
{
    if (s == NULL)
        return -KZ_EINVAL;
    return role_parse_n(s, strnlen(s, ROLE_STR_MAX + 1), role);
}

/* Makes room for one more member.  Returns 0 or -KZ_ENOMEM / -KZ_ELIMIT. */
static int
reserve_one(struct roster *r, uint32_t hint)
{
    struct roster_member *p;
    uint32_t ncap;

    if (r->n < r->cap)
        return 0;
    if (r->n >= KZ_LIM_ROSTER_MEMBERS)
        return -KZ_ELIMIT;
    if (r->cap == 0)
        ncap = KZ_MAX(1u, KZ_MIN(hint, PREALLOC_MAX));
    else
        ncap = KZ_MIN(r->cap * 2u, KZ_LIM_ROSTER_MEMBERS);
    p = kz_reallocarray(r->members, ncap, sizeof(*p));
    if (p == NULL)
        return -KZ_ENOMEM;
    r->members = p;
    r->cap = ncap;
    return 0;
}

/* ---- construction ----------------------------------------------------- */

/**
 * roster_new(out, admin): an empty roster of version 1 whose admin key is
 * ${admin} (copied).  Returns 0 or -KZ_ENOMEM (*${out} is then NULL).
 */
int
roster_new(struct roster **out, const struct kz_sign_pk *admin)
{
    struct roster *r;

    *out = NULL;
    if ((r = kz_calloc(1, sizeof(*r))) == NULL)
        return -KZ_ENOMEM;
    r->version = 1;
    r->admin = *admin;
    *out = r;
    return 0;
}

/** roster_free(r): frees ${r} and its members; NULL is a no-op. */
void
roster_free(struct roster *r)
{
    uint32_t i;

    if (r == NULL)
        return;
    for (i = 0; i < r->n; i++)
        kz_free(r->members[i].seqs);
    kz_free(r->members);
    kz_free(r);
}

/** roster_version(r): the version number (≥ 1). */
uint64_t
roster_version(const struct roster *r)
{
    return r->version;
}

/** roster_bump(r): version + 1; 0 or -KZ_ELIMIT at UINT64_MAX. */
int
roster_bump(struct roster *r)
{
    if (r->version == UINT64_MAX)
        return -KZ_ELIMIT;
    r->version++;
    return 0;
}

/** roster_admin(r): the admin's Ed25519 public key; borrowed from ${r}. */
const struct kz_sign_pk *
roster_admin(const struct roster *r)
{
    return &r->admin;
}

/** roster_n_members(r): the number of members, revoked ones included. */
uint32_t
roster_n_members(const struct roster *r)
{
    return r->n;
}

/** roster_member(r, i): the ${i}-th member, or NULL if out of range. */
const struct roster_member *
roster_member(const struct roster *r, uint32_t i)
{
    return i < r->n ? &r->members[i] : NULL;
}

/**
 * roster_add_member(r, name, site, role, sign_pk, dh_pk): appends a member
 * (not revoked).  Returns 0, -KZ_EINVAL, -KZ_EEXIST, -KZ_ELIMIT or
 * -KZ_ENOMEM; ${r} is then unchanged.
 */
int
roster_add_member(struct roster *r, const char *name, const char *site,
                  enum roster_role role, const struct kz_sign_pk *sign_pk,
                  const struct kz_dh_pk *dh_pk)
{
    struct roster_member *m;
    size_t name_len, site_len;
    int rc;

    if (name == NULL || site == NULL || roster_role_name(role) == NULL)
        return -KZ_EINVAL;
    name_len = strnlen(name, KZ_LIM_DEVICE_NAME_MAX + 1);
    site_len = strnlen(site, KZ_LIM_SITE_MAX + 1);
    if (!name_valid(name, name_len) || !site_valid(site, site_len))
        return -KZ_EINVAL;
    if (roster_find_by_name(r, name) != NULL ||
        roster_find_by_sign(r, sign_pk) != NULL ||
        roster_find_by_dh(r, dh_pk) != NULL)
        return -KZ_EEXIST;
    if ((rc = reserve_one(r, 1)) != 0)
        return rc;
    m = &r->members[r->n];
    memset(m, 0, sizeof(*m));
    memcpy(m->name, name, name_len);
    memcpy(m->site, site, site_len);
    m->role = role;
    m->sign_pk = *sign_pk;
    m->dh_pk = *dh_pk;
    r->n++;
    return 0;
}

/* seqs_valid(seqs, n): each scope valid and unique. */
static bool
seqs_valid(const struct roster_seq *seqs, uint32_t n)
{
    uint32_t i, j;
    size_t len;

    for (i = 0; i < n; i++) {
        len = strnlen(seqs[i].scope, sizeof(seqs[i].scope));
        if (len == sizeof(seqs[i].scope) || !scope_valid_n(seqs[i].scope, len))
            return false;
        for (j = 0; j < i; j++)
            if (strcmp(seqs[i].scope, seqs[j].scope) == 0)
                return false;
    }
    return true;
}

/**
 * roster_revoke(r, name, seqs, n_seqs): marks ${name} revoked with its last
 * accepted author_seqs.  Returns 0, -KZ_ENOENT, -KZ_EEXIST, -KZ_EPERM,
 * -KZ_EINVAL or -KZ_ENOMEM; ${r} is then unchanged.
 */
int
roster_revoke(struct roster *r, const char *name, const struct roster_seq *seqs,
              uint32_t n_seqs)
{
    struct roster_member *m;
    struct roster_seq *copy = NULL;

    m = (struct roster_member *)roster_find_by_name(r, name);
    if (m == NULL)
        return -KZ_ENOENT;
    if (m->revoked)
        return -KZ_EEXIST;
    if (kz_crypto_eq(m->sign_pk.b, r->admin.b, KZ_SIGN_PK_LEN))
        return -KZ_EPERM;
    if (n_seqs > KZ_LIM_ROSTER_SEQS_MAX || (n_seqs > 0 && seqs == NULL) ||
        !seqs_valid(seqs, n_seqs))
        return -KZ_EINVAL;
    if (n_seqs > 0) {
        copy = kz_mallocarray(n_seqs, sizeof(*copy));
        if (copy == NULL)
            return -KZ_ENOMEM;
        memcpy(copy, seqs, n_seqs * sizeof(*copy));
    }
    m->revoked = true;
    m->seqs = copy;
    m->n_seqs = n_seqs;
    return 0;
}

/* ---- lookups and rights ----------------------------------------------- */

/**
 * roster_find_by_dh(r, dh_pk): the member whose X25519 key is ${dh_pk}, or
 * NULL; constant-time compares, no early exit.
 */
const struct roster_member *
roster_find_by_dh(const struct roster *r, const struct kz_dh_pk *dh_pk)
{
    const struct roster_member *found = NULL;
    uint32_t i;

    for (i = 0; i < r->n; i++)
        if (kz_crypto_eq(r->members[i].dh_pk.b, dh_pk->b, KZ_DH_LEN))
            found = &r->members[i];
    return found;
}

/** roster_find_by_sign(r, sign_pk): as roster_find_by_dh for Ed25519. */
const struct roster_member *
roster_find_by_sign(const struct roster *r, const struct kz_sign_pk *sign_pk)
{
    const struct roster_member *found = NULL;
    uint32_t i;

    for (i = 0; i < r->n; i++)
        if (kz_crypto_eq(r->members[i].sign_pk.b, sign_pk->b, KZ_SIGN_PK_LEN))
            found = &r->members[i];
    return found;
}

/** roster_find_by_name(r, name): the member named ${name}, or NULL. */
const struct roster_member *
roster_find_by_name(const struct roster *r, const char *name)
{
    uint32_t i;

    if (name == NULL)
        return NULL;
    for (i = 0; i < r->n; i++)
        if (strcmp(r->members[i].name, name) == 0)
            return &r->members[i];
    return NULL;
}

/* member_of(r, m): ${m} points into ${r}'s member array (our invariant). */
static bool
member_of(const struct roster *r, const struct roster_member *m)
{
    uint32_t i;

    for (i = 0; i < r->n; i++)
        if (&r->members[i] == m)
            return true;
    return false;
}

/* own_site(m, site, len): ${site} (len bytes) is ${m}'s site. */
static bool
own_site(const struct roster_member *m, const char *site, size_t len)
{
    return strlen(m->site) == len && memcmp(m->site, site, len) == 0;
}

/**
 * roster_may_read(r, m, scope): whether ${m} may read ${scope}: admin and
 * observer → network and every site:*; site → network, site:SITE,
 * private:SITE of its own SITE; revoked → nothing.
 */
bool
roster_may_read(const struct roster *r, const struct roster_member *m,
                const char *scope)
{
    enum scope_kind k;
    const char *site;
    size_t site_len;

    if (m == NULL || scope == NULL || !KZ_ALWAYS(member_of(r, m)) || m->revoked)
        return false;
    k = scope_parse(scope, strnlen(scope, KZ_LIM_NAME_MAX + 1), &site,
                    &site_len);
    switch (k) {
    case SCOPE_NETWORK: return true;
    case SCOPE_SITE:
        return m->role == ROSTER_ROLE_ADMIN ||
               m->role == ROSTER_ROLE_OBSERVER ||
               (m->role == ROSTER_ROLE_SITE && own_site(m, site, site_len));
    case SCOPE_PRIVATE:
        return m->role == ROSTER_ROLE_SITE && own_site(m, site, site_len);
    case SCOPE_BAD: break;
    }
    return false;
}

/**
 * roster_may_write(r, m, scope): admin → network; site → site:SITE and
 * private:SITE of its own SITE; observer and revoked → nothing.
 */
bool
roster_may_write(const struct roster *r, const struct roster_member *m,
                 const char *scope)
{
    enum scope_kind k;
    const char *site;
    size_t site_len;

    if (m == NULL || scope == NULL || !KZ_ALWAYS(member_of(r, m)) || m->revoked)
        return false;
    k = scope_parse(scope, strnlen(scope, KZ_LIM_NAME_MAX + 1), &site,
                    &site_len);
    switch (k) {
    case SCOPE_NETWORK: return m->role == ROSTER_ROLE_ADMIN;
    case SCOPE_SITE:
    case SCOPE_PRIVATE:
        return m->role == ROSTER_ROLE_SITE && own_site(m, site, site_len);
    case SCOPE_BAD: break;
    }
    return false;
}

/**
 * roster_seq_accepted(m, scope, seq): any seq for a member that is not
 * revoked; for a revoked one only seq ≤ its revoked_seqs entry of ${scope}.
 */
bool
roster_seq_accepted(const struct roster_member *m, const char *scope,
                    uint64_t seq)
{
    uint32_t i;

    if (m == NULL || scope == NULL)
        return false;
    if (!m->revoked)
        return true;
    for (i = 0; i < m->n_seqs; i++)
        if (strcmp(m->seqs[i].scope, scope) == 0)
            return seq <= m->seqs[i].seq;
    return false;
}

/* ---- whole-roster rules ----------------------------------------------- */

static int
cmp_name(const void *a, const void *b)
{
    const struct roster_member *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static int
cmp_sign(const void *a, const void *b)
{
    const struct roster_member *const *x = a, *const *y = b;
    return memcmp((*x)->sign_pk.b, (*y)->sign_pk.b, KZ_SIGN_PK_LEN);
}

static int
cmp_dh(const void *a, const void *b)
{
    const struct roster_member *const *x = a, *const *y = b;
    return memcmp((*x)->dh_pk.b, (*y)->dh_pk.b, KZ_DH_LEN);
}

/* has_dup(idx, n, cmp): sorts ${idx} by ${cmp}; any two equal neighbours? */
static bool
has_dup(const struct roster_member **idx, uint32_t n,
        int (*cmp)(const void *, const void *))
{
    uint32_t i;

    qsort(idx, n, sizeof(*idx), cmp);
    for (i = 1; i < n; i++)
        if (cmp(&idx[i - 1], &idx[i]) == 0)
            return true;
    return false;
}

/*
 * check(r, why): the whole-roster rules (unique names and keys; an
 * unrevoked admin member holding the admin key).  The per-member rules were
 * checked when the members were made.  Returns 0, -KZ_EMALFORMED (with
 * *${why}) or -KZ_ENOMEM.  Uniqueness compares public keys, which are not
 * secret, so memcmp is fine here.
 */
static int
check(const struct roster *r, const char **why)
{
    const struct roster_member **idx = NULL;
    const struct roster_member *adm;
    uint32_t i;
    int rc = -KZ_EMALFORMED;

    if (r->version == 0) {
        *why = "version 0";
        return rc;
    }
    if (r->n == 0) {
        *why = "no unrevoked admin member holds the admin key";
        return rc;
    }
    idx = kz_mallocarray(r->n, sizeof(*idx));
    if (idx == NULL) {
        *why = "out of memory";
        return -KZ_ENOMEM;
    }
    for (i = 0; i < r->n; i++)
        idx[i] = &r->members[i];
    if (has_dup(idx, r->n, cmp_name))
        *why = "duplicate member name";
    else if (has_dup(idx, r->n, cmp_sign))
        *why = "duplicate sign_pk";
    else if (has_dup(idx, r->n, cmp_dh))
        *why = "duplicate dh_pk";
    else
        rc = 0;
    kz_free(idx);
    if (rc != 0)
        return rc;
    /* Keys are unique now, so at most one member holds the admin key. */
    adm = roster_find_by_sign(r, &r->admin);
    if (adm == NULL || adm->role != ROSTER_ROLE_ADMIN || adm->revoked) {
        *why = "no unrevoked admin member holds the admin key";
        return -KZ_EMALFORMED;
    }
    return 0;
}

/* ---- decoding --------------------------------------------------------- */

#define RD_FAIL(rd, code, why) kz_rd_fail((rd), (code), (why))

/* rd_seqs(rd, m): a member's revoked_seqs; allocates m->seqs. */
static void
rd_seqs(struct kz_rd *rd, struct roster_member *m)
{
    struct kz_str s;
    uint32_t n, i, two;

    if (kz_mpk_array(rd, KZ_LIM_ROSTER_SEQS_MAX, &n) != 0)
        return;
    if (n > 0 && !m->revoked) {
        RD_FAIL(rd, -KZ_EMALFORMED, "revoked_seqs of an unrevoked member");
        return;
    }
    if (n == 0)
        return;
    /* n ≤ 64 and ≤ the bytes left: a small, bounded allocation. */
    m->seqs = kz_calloc(n, sizeof(*m->seqs));
    if (m->seqs == NULL) {
        RD_FAIL(rd, -KZ_ENOMEM, "out of memory");
        return;
    }
    for (i = 0; i < n && rd->err == 0; i++) {
        struct roster_seq *q = &m->seqs[i];

        if (kz_mpk_array(rd, KZ_LIM_COUNT_MAX, &two) != 0)
            return;
        if (two != 2) {
            RD_FAIL(rd, -KZ_EMALFORMED,
                    "revoked_seqs entry is not [scope, seq]");
            return;
        }
        if (kz_mpk_str(rd, KZ_LIM_NAME_MAX, &s) != 0)
            return;
        if (!scope_valid_n(s.p, s.len)) {
            RD_FAIL(rd, -KZ_EMALFORMED, "revoked_seqs: bad scope name");
            return;
        }
        memcpy(q->scope, s.p, s.len);
        q->scope[s.len] = '\0';
        if (kz_mpk_uint(rd, UINT64_MAX, &q->seq) != 0)
            return;
        m->n_seqs = i + 1; /* entries owned so far */
    }
    if (rd->err == 0 && !seqs_valid(m->seqs, m->n_seqs))
        RD_FAIL(rd, -KZ_EMALFORMED, "revoked_seqs: repeated scope");
}

/* rd_member(rd, m): one member into the zeroed ${m}. */
static void
rd_member(struct kz_rd *rd, struct roster_member *m)
{
    struct kz_str s;
    uint32_t n;

    if (kz_mpk_array(rd, KZ_LIM_COUNT_MAX, &n) != 0)
        return;
    if (n != 7) {
        RD_FAIL(rd, -KZ_EMALFORMED, "member is not an array of 7");
        return;
    }
    if (kz_mpk_str(rd, KZ_LIM_DEVICE_NAME_MAX, &s) != 0)
        return;
    if (!name_valid(s.p, s.len)) {
        RD_FAIL(rd, -KZ_EMALFORMED, "bad member name");
        return;
    }
    memcpy(m->name, s.p, s.len);
    if (kz_mpk_str(rd, KZ_LIM_SITE_MAX, &s) != 0)
        return;
    if (!site_valid(s.p, s.len)) {
        RD_FAIL(rd, -KZ_EMALFORMED, "bad site code");
        return;
    }
    memcpy(m->site, s.p, s.len);
    if (kz_mpk_str(rd, ROLE_STR_MAX, &s) != 0) {
        if (rd->err == -KZ_ELIMIT) { /* a long str is an unknown role */
            rd->err = -KZ_EMALFORMED;
            rd->why = "unknown role";
        }
        return;
    }
    if (role_parse_n(s.p, s.len, &m->role) != 0) {
        RD_FAIL(rd, -KZ_EMALFORMED, "unknown role");
        return;
    }
    (void)kz_mpk_bin_n(rd, 32, m->sign_pk.b, "sign_pk is not 32 bytes");
    (void)kz_mpk_bin_n(rd, 32, m->dh_pk.b, "dh_pk is not 32 bytes");
    if (kz_mpk_bool(rd, &m->revoked) != 0)
        return;
    rd_seqs(rd, m);
}

/*
 * decode_body(r, p, len): parses a body into the fresh ${r}.  Errors are
 * sticky in the returned reader state.
 */
static void
decode_body(struct kz_rd *rd, struct roster *r)
{
    uint64_t format;
    uint32_t n, i;

    if (kz_mpk_array(rd, KZ_LIM_COUNT_MAX, &n) != 0)
        return;
    if (n == 0) {
        RD_FAIL(rd, -KZ_EMALFORMED, "empty roster body");
        return;
    }
    if (kz_mpk_uint(rd, UINT64_MAX, &format) != 0)
        return;
    if (format != ROSTER_FORMAT) {
        RD_FAIL(rd, -KZ_EVERSION, "unsupported roster format");
        return;
    }
    if (n != 4) {
        RD_FAIL(rd, -KZ_EMALFORMED, "roster body is not an array of 4");
        return;
    }
    if (kz_mpk_uint(rd, UINT64_MAX, &r->version) != 0)
        return;
    if (r->version == 0) {
        RD_FAIL(rd, -KZ_EMALFORMED, "version 0");
        return;
    }
    (void)kz_mpk_bin_n(rd, 32, r->admin.b, "admin is not 32 bytes");
    if (kz_mpk_array(rd, KZ_LIM_ROSTER_MEMBERS, &n) != 0)
        return;
    for (i = 0; i < n && rd->err == 0; i++) {
        if (reserve_one(r, n) != 0) {
            RD_FAIL(rd, -KZ_ENOMEM, "out of memory");
            return;
        }
        memset(&r->members[r->n], 0, sizeof(r->members[r->n]));
        r->n++; /* owned from here on, so roster_free releases its seqs */
        rd_member(rd, &r->members[r->n - 1]);
    }
    if (rd->err == 0 && rd->left != 0)
        RD_FAIL(rd, -KZ_EMALFORMED, "trailing bytes after the roster body");
}

/**
 * roster__decode_body(out, p, len, why): parses a body with NO signature
 * check; for tests and fuzz targets only.  Returns as roster_decode minus
 * -KZ_EAUTH.
 */
int
roster__decode_body(struct roster **out, const uint8_t *p, size_t len,
                    const char **why)
{
    static const struct kz_sign_pk zero;
    struct roster *r = NULL;
    struct kz_rd rd;
    const char *w = NULL;
    int rc;

    *out = NULL;
    if ((rc = roster_new(&r, &zero)) != 0) {
        w = "out of memory";
        goto err;
    }
    kz_rd_init(&rd, p, len);
    decode_body(&rd, r);
    if ((rc = rd.err) != 0) {
        w = rd.why;
        goto err;
    }
    if ((rc = check(r, &w)) != 0)
        goto err;
    *out = r;
    if (why != NULL)
        *why = NULL;
    return 0;
err:
    roster_free(r);
    if (why != NULL)
        *why = w;
    return rc;
}

/**
 * roster_decode(out, p, len, trusted_admin, why): verifies the admin
 * signature with ${trusted_admin}, then parses the body; the body's admin
 * key must be ${trusted_admin}.  Returns 0, -KZ_EAUTH, -KZ_EVERSION,
 * -KZ_ELIMIT, -KZ_EMALFORMED or -KZ_ENOMEM; *${out} is NULL on error.
 */
int
roster_decode(struct roster **out, const uint8_t *p, size_t len,
              const struct kz_sign_pk *trusted_admin, const char **why)
{
    struct kz_sign_sig sig;
    struct kz_rd rd;
    const uint8_t *body = NULL, *s = NULL;
    size_t body_len = 0, s_len = 0;
    const char *w = NULL;
    uint32_t n;
    int rc;

    *out = NULL;
    if (len > KZ_LIM_ROSTER_MAX) {
        w = "roster over KZ_LIM_ROSTER_MAX";
        rc = -KZ_ELIMIT;
        goto out;
    }
    /* The envelope: [ body:bin, sig:bin(64) ], nothing after it. */
    kz_rd_init(&rd, p, len);
    if (kz_mpk_array(&rd, KZ_LIM_COUNT_MAX, &n) == 0 && n != 2)
        RD_FAIL(&rd, -KZ_EMALFORMED, "roster is not [body, sig]");
    (void)kz_mpk_bin(&rd, KZ_LIM_ROSTER_MAX, &body, &body_len);
    if (kz_mpk_bin(&rd, KZ_SIGN_SIG_LEN, &s, &s_len) == 0 &&
        s_len != KZ_SIGN_SIG_LEN)
        RD_FAIL(&rd, -KZ_EMALFORMED, "signature is not 64 bytes");
    if (rd.err == 0 && rd.left != 0)
        RD_FAIL(&rd, -KZ_EMALFORMED, "trailing bytes after the roster");
    if ((rc = rd.err) != 0) {
        w = rd.why;
        goto out;
    }
    /* Signature first: not one byte of the body is parsed before this. */
    memcpy(sig.b, s, KZ_SIGN_SIG_LEN);
    if (kz_sign_verify(&sig, body, body_len, trusted_admin) != 0) {
        w = "bad admin signature";
        rc = -KZ_EAUTH;
        goto out;
    }
    if ((rc = roster__decode_body(out, body, body_len, &w)) != 0)
        goto out;
    if (!kz_crypto_eq((*out)->admin.b, trusted_admin->b, KZ_SIGN_PK_LEN)) {
        roster_free(*out);
        *out = NULL;
        w = "roster names another admin key";
        rc = -KZ_EAUTH;
        goto out;
    }
out:
    if (why != NULL)
        *why = w;
    return rc;
}

/* ---- encoding --------------------------------------------------------- */

/* member_valid(m): the per-member rules the decoder enforces. */
static bool
member_valid(const struct roster_member *m)
{
    size_t nl = strnlen(m->name, sizeof(m->name));
    size_t sl = strnlen(m->site, sizeof(m->site));

    if (nl == sizeof(m->name) || !name_valid(m->name, nl))
        return false;
    if (sl == sizeof(m->site) || !site_valid(m->site, sl))
        return false;
    if (roster_role_name(m->role) == NULL)
        return false;
    if (m->n_seqs > KZ_LIM_ROSTER_SEQS_MAX || (m->n_seqs > 0 && !m->revoked))
        return false;
    return seqs_valid(m->seqs, m->n_seqs);
}

/**
 * roster__encode_body(r, out, len): the body of ${r}, unsigned; for tests,
 * fuzz targets and roster_encode_sign.  Returns 0, -KZ_EINVAL (a rule is
 * broken), -KZ_ELIMIT or -KZ_ENOMEM.
 */
int
roster__encode_body(const struct roster *r, uint8_t **out, size_t *len)
{
    struct kz_mpk_wr w;
    const char *why;
    uint32_t i, j;
    int rc;

    *out = NULL;
    *len = 0;
    if ((rc = check(r, &why)) != 0)
        return rc == -KZ_ENOMEM ? rc : -KZ_EINVAL;
    for (i = 0; i < r->n; i++)
        if (!member_valid(&r->members[i]))
            return -KZ_EINVAL;
    kz_mpk_wr_init(&w, KZ_LIM_ROSTER_MAX);
    kz_mpk_wr_array(&w, 4);
    kz_mpk_wr_uint(&w, ROSTER_FORMAT);
    kz_mpk_wr_uint(&w, r->version);
    kz_mpk_wr_bin(&w, r->admin.b, KZ_SIGN_PK_LEN);
    kz_mpk_wr_array(&w, r->n);
    for (i = 0; i < r->n; i++) {
        const struct roster_member *m = &r->members[i];
        const char *role = roster_role_name(m->role);

        kz_mpk_wr_array(&w, 7);
        kz_mpk_wr_str(&w, m->name, strlen(m->name));
        kz_mpk_wr_str(&w, m->site, strlen(m->site));
        kz_mpk_wr_str(&w, role, strlen(role));
        kz_mpk_wr_bin(&w, m->sign_pk.b, KZ_SIGN_PK_LEN);
        kz_mpk_wr_bin(&w, m->dh_pk.b, KZ_DH_LEN);
        kz_mpk_wr_bool(&w, m->revoked);
        kz_mpk_wr_array(&w, m->n_seqs);
        for (j = 0; j < m->n_seqs; j++) {
            kz_mpk_wr_array(&w, 2);
            kz_mpk_wr_str(&w, m->seqs[j].scope, strlen(m->seqs[j].scope));
            kz_mpk_wr_uint(&w, m->seqs[j].seq);
        }
    }
    return kz_mpk_wr_finish(&w, out, len);
}

/**
 * roster_encode_sign(r, admin_sk, out, len): encodes ${r} and signs the
 * body with ${admin_sk} (must be the roster's admin key).  Returns 0,
 * -KZ_EINVAL, -KZ_ELIMIT, -KZ_ECRYPTO or -KZ_ENOMEM.
 */
int
roster_encode_sign(const struct roster *r, const struct kz_sign_sk *admin_sk,
                   uint8_t **out, size_t *len)
{
    struct kz_sign_pk pk;
    struct kz_sign_sk sk;
    struct kz_sign_sig sig;
    struct kz_mpk_wr w;
    uint8_t *body = NULL;
    size_t body_len;
    int rc;

    *out = NULL;
    *len = 0;
    /* The secret key's own public key (from its seed) must be the admin's. */
    rc = kz_sign_seed_keypair(&pk, &sk, admin_sk->b);
    kz_crypto_wipe(&sk, sizeof(sk));
    if (rc != 0)
        return rc;
    if (!kz_crypto_eq(pk.b, r->admin.b, KZ_SIGN_PK_LEN))
        return -KZ_EINVAL;
    if ((rc = roster__encode_body(r, &body, &body_len)) != 0)
        return rc;
    if ((rc = kz_sign_detached(&sig, body, body_len, admin_sk)) != 0)
        goto out;
    kz_mpk_wr_init(&w, KZ_LIM_ROSTER_MAX);
    kz_mpk_wr_array(&w, 2);
    kz_mpk_wr_bin(&w, body, body_len);
    kz_mpk_wr_bin(&w, sig.b, KZ_SIGN_SIG_LEN);
    rc = kz_mpk_wr_finish(&w, out, len);
out:
    kz_free(body);
    return rc;
}
