/*
 * roster.h: the roster, the admin-signed list of members (DESIGN.md §4;
 * PROTOCOL.md §Roster).
 *
 * Encoding, one msgpack value:
 *
 *     roster = [ body:bin, sig:bin(64) ]
 *
 * where sig is the admin's Ed25519 signature over the body bytes, and body
 * is itself msgpack:
 *
 *     body   = [ format:uint (=1), version:uint(≥1), admin:bin(32),
 *                members:[ member, … ] ]                (≤ 4096 members)
 *     member = [ name:str(1..64), site:str(1..32),
 *                role:str ("admin" | "site" | "observer"),
 *                sign_pk:bin(32), dh_pk:bin(32), revoked:bool,
 *                revoked_seqs:[ [ scope:str(1..128), seq:uint ], … ] ]
 *                                                        (≤ 64 entries)
 *
 * Rules (a decoder refuses, an encoder will not produce, anything else):
 *   - name is 1..64 bytes of [A-Za-z0-9._-]; site is 1..32 bytes of
 *     [A-Za-z0-9_-] (it becomes part of the scope names site:SITE and
 *     private:SITE);
 *   - names, sign_pks and dh_pks are each unique across all members,
 *     revoked ones included (a key is never reused);
 *   - a member whose sign_pk equals admin exists, has role "admin" and is
 *     not revoked (other "admin" members may exist: further state-office
 *     devices; only the admin key signs rosters);
 *   - revoked_seqs is empty unless revoked is true; each scope is a valid
 *     scope name ("network", "site:SITE", "private:SITE") and appears once.
 *     seq is the last author_seq of that scope accepted from the device:
 *     changesets it signed with a higher author_seq are refused.
 *
 * roster_decode verifies the signature with the trusted admin key before
 * it parses a byte of the body (STYLE.md 15), and then requires the body's
 * admin field to be that same key.
 */
#ifndef KZ_PROTO_ROSTER_H
#define KZ_PROTO_ROSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "kz.h"
#include "limits.h"

#define ROSTER_FORMAT 1

enum roster_role {
    ROSTER_ROLE_ADMIN = 1,   /* "admin": roster, keys, writes network */
    ROSTER_ROLE_SITE = 2,    /* "site": its own site's scopes */
    ROSTER_ROLE_OBSERVER = 3 /* "observer": reads network and site:* */
};

/* One entry of a revoked member's revoked_seqs. */
struct roster_seq {
    char scope[KZ_LIM_NAME_MAX + 1]; /* scope name, NUL-terminated */
    uint64_t seq;                    /* last accepted author_seq */
};

/* One member (device).  Owned by its roster; read-only for callers. */
struct roster_member {
    char name[KZ_LIM_DEVICE_NAME_MAX + 1]; /* device name, NUL-terminated */
    char site[KZ_LIM_SITE_MAX + 1];        /* site code, NUL-terminated */
    enum roster_role role;                 /* role */
    struct kz_sign_pk sign_pk;             /* Ed25519 public key */
    struct kz_dh_pk dh_pk;                 /* X25519 public key */
    bool revoked;                          /* revoked: may do nothing */
    uint32_t n_seqs;                       /* entries in seqs */
    struct roster_seq *seqs;               /* owned by the roster; NULL if 0 */
};

struct roster;

/**
 * roster_new(out, admin): an empty roster of version 1 whose admin key is
 * ${admin} (copied).  *${out} is freed with roster_free.  Returns 0 or
 * -KZ_ENOMEM (*${out} is then NULL).
 */
KZ_MUST_CHECK int roster_new(struct roster **out,
                             const struct kz_sign_pk *admin);

/** roster_free(r): frees ${r} and its members; NULL is a no-op. */
void roster_free(struct roster *r);

/** roster_version(r): the version number (≥ 1). */
uint64_t roster_version(const struct roster *r);

/**
 * roster_bump(r): version + 1, to be done once before encoding a changed
 * roster.  Returns 0 or -KZ_ELIMIT (version is UINT64_MAX).
 */
KZ_MUST_CHECK int roster_bump(struct roster *r);

/** roster_admin(r): the admin's Ed25519 public key; borrowed from ${r}. */
const struct kz_sign_pk *roster_admin(const struct roster *r);

/** roster_n_members(r): the number of members, revoked ones included. */
uint32_t roster_n_members(const struct roster *r);

/**
 * roster_member(r, i): the ${i}-th member (in roster order), or NULL if
 * ${i} is out of range.  Borrowed: valid until ${r} is changed or freed.
 */
const struct roster_member *roster_member(const struct roster *r, uint32_t i);

/**
 * roster_add_member(r, name, site, role, sign_pk, dh_pk): appends a member
 * (not revoked).  Strings and keys are copied.  Does not bump the version.
 * Returns 0, -KZ_EINVAL (bad name, site or role), -KZ_EEXIST (the name or
 * either key is already in the roster, revoked members included),
 * -KZ_ELIMIT (KZ_LIM_ROSTER_MEMBERS reached) or -KZ_ENOMEM; ${r} is then
 * unchanged.
 */
KZ_MUST_CHECK int roster_add_member(struct roster *r, const char *name,
                                    const char *site, enum roster_role role,
                                    const struct kz_sign_pk *sign_pk,
                                    const struct kz_dh_pk *dh_pk);

/**
 * roster_revoke(r, name, seqs, n_seqs): marks the member ${name} revoked,
 * with the last accepted author_seq per scope (${seqs}, ${n_seqs} entries,
 * copied; may be NULL if n_seqs is 0).  Does not bump the version.  Returns
 * 0, -KZ_ENOENT (no such member), -KZ_EEXIST (already revoked), -KZ_EPERM
 * (the member holding the admin key cannot be revoked), -KZ_EINVAL (a bad
 * or repeated scope, or n_seqs > KZ_LIM_ROSTER_SEQS_MAX) or -KZ_ENOMEM;
 * ${r} is then unchanged.
 */
KZ_MUST_CHECK int roster_revoke(struct roster *r, const char *name,
                                const struct roster_seq *seqs, uint32_t n_seqs);

/** roster_role_name(role): "admin", "site", "observer", or NULL. */
const char *roster_role_name(enum roster_role role);

/**
 * roster_role_parse(s, role): *${role} for the exact names "admin", "site",
 * "observer".  Returns 0 or -KZ_EINVAL.
 */
KZ_MUST_CHECK int roster_role_parse(const char *s, enum roster_role *role);

/**
 * roster_find_by_dh(r, dh_pk): the member whose X25519 key is ${dh_pk}
 * (revoked or not), or NULL.  Every member's key is compared in constant
 * time and the scan does not stop early.  Borrowed from ${r}.
 */
const struct roster_member *roster_find_by_dh(const struct roster *r,
                                              const struct kz_dh_pk *dh_pk);

/** roster_find_by_sign(r, sign_pk): as roster_find_by_dh for Ed25519. */
const struct roster_member *
roster_find_by_sign(const struct roster *r, const struct kz_sign_pk *sign_pk);

/** roster_find_by_name(r, name): the member named ${name}, or NULL. */
const struct roster_member *roster_find_by_name(const struct roster *r,
                                                const char *name);

/**
 * roster_may_read(r, m, scope): whether member ${m} of ${r} may read (hold
 * the key of) ${scope} (DESIGN.md §4):
 *   admin     network, every site:*;
 *   site      network, site:SITE and private:SITE of its own SITE;
 *   observer  network, every site:*;
 *   revoked   nothing.
 * An unknown or malformed scope, or a NULL ${m}, is false.  ${m} must come
 * from ${r} itself (roster_member, roster_find_*): a member of another
 * roster (e.g. the previous version) is our bug, trapped in debug builds
 * and false in release builds.
 */
bool roster_may_read(const struct roster *r, const struct roster_member *m,
                     const char *scope);

/**
 * roster_may_write(r, m, scope): whether ${m} may author changesets in
 * ${scope}: admin → network; site → site:SITE and private:SITE of its own
 * SITE; observer and revoked members → nothing.
 */
bool roster_may_write(const struct roster *r, const struct roster_member *m,
                      const char *scope);

/**
 * roster_seq_accepted(m, scope, seq): whether a changeset by ${m} in
 * ${scope} with author_seq ${seq} is within what the roster accepts: any
 * seq for a member that is not revoked; for a revoked one, only seq ≤ the
 * recorded revoked_seqs entry of ${scope} (none recorded: nothing).  Write
 * rights are checked separately (roster_may_write on the roster in force
 * when the changeset was written).
 */
bool roster_seq_accepted(const struct roster_member *m, const char *scope,
                         uint64_t seq);

/** roster_name_valid(name): whether ${name} is 1..64 bytes of [A-Za-z0-9._-].
 */
bool roster_name_valid(const char *name);

/** roster_site_valid(site): whether ${site} is 1..32 bytes of [A-Za-z0-9_-]. */
bool roster_site_valid(const char *site);

/**
 * roster_scope_valid(scope): whether ${scope} is "network", "site:SITE" or
 * "private:SITE" with a valid SITE.
 */
bool roster_scope_valid(const char *scope);

/**
 * roster_encode_sign(r, admin_sk, out, len): encodes ${r} and signs the
 * body with ${admin_sk}, whose public key must be the roster's admin key.
 * *${out} is allocated (caller frees with kz_free).  Returns 0, -KZ_EINVAL
 * (${admin_sk} is not the admin's key, or ${r} breaks a rule above, e.g.
 * no unrevoked admin member), -KZ_ELIMIT (over KZ_LIM_ROSTER_MAX),
 * -KZ_ECRYPTO or -KZ_ENOMEM.
 */
KZ_MUST_CHECK int roster_encode_sign(const struct roster *r,
                                     const struct kz_sign_sk *admin_sk,
                                     uint8_t **out, size_t *len);

/**
 * roster_decode(out, p, len, trusted_admin, why): parses exactly ${len}
 * bytes.  The signature is checked with ${trusted_admin} before the body is
 * parsed, and the body's admin key must equal ${trusted_admin}.  *${out} is
 * freed with roster_free; nothing is borrowed from ${p}.  Returns 0 or:
 *   -KZ_EAUTH      bad signature, or a body naming another admin key;
 *   -KZ_EVERSION   format other than 1;
 *   -KZ_ELIMIT     over KZ_LIM_ROSTER_MAX, or a count over its limit;
 *   -KZ_EMALFORMED anything else that breaks the format or the rules;
 *   -KZ_ENOMEM.
 * On error *${out} is NULL.  ${why}, if not NULL, gets a static reason.
 */
KZ_MUST_CHECK int roster_decode(struct roster **out, const uint8_t *p,
                                size_t len,
                                const struct kz_sign_pk *trusted_admin,
                                const char **why);

/*
 * Internal, for tests and fuzz targets only (STYLE.md 2: module__x):
 * roster__decode_body parses a body WITHOUT any signature check, and
 * roster__encode_body encodes one without signing.  Nothing else may call
 * them: a roster that did not come through roster_decode is not trusted.
 */
KZ_MUST_CHECK int roster__decode_body(struct roster **out, const uint8_t *p,
                                      size_t len, const char **why);
KZ_MUST_CHECK int roster__encode_body(const struct roster *r, uint8_t **out,
                                      size_t *len);

#endif /* KZ_PROTO_ROSTER_H */
