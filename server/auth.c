/*
 * auth.c: the roster as kzsyncd uses it: which Noise static keys are
 * admitted, and who may read and write which scope (DESIGN.md §4).
 *
 * The server trusts one admin key (`kzsyncd trust`); a roster is accepted
 * only if that key signed it and its version is newer than the one held
 * (proto/roster.c verifies the signature before parsing anything).
 */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "roster.h"

#include "server_int.h"

static int
role_of(enum roster_role r)
{
    switch (r) {
    case ROSTER_ROLE_ADMIN: return AUTH_ROLE_ADMIN;
    case ROSTER_ROLE_OBSERVER: return AUTH_ROLE_OBSERVER;
    default: return AUTH_ROLE_SITE;
    }
}

int
auth_decode(struct server *srv, const uint8_t *bytes, size_t len,
            struct roster **out, const char **why)
{
    struct kz_sign_pk admin;
    int err;

    *out = NULL;
    if (!srv->have_admin) {
        *why = "this server trusts no admin key yet (kzsyncd trust)";
        return -KZ_EAUTH;
    }
    memcpy(admin.b, srv->admin_pk, sizeof(admin.b));
    err = roster_decode(out, bytes, len, &admin, why);
    if (err)
        return err;
    if (roster_version(*out) <= srv->roster_version) {
        roster_free(*out);
        *out = NULL;
        *why = "the server has this roster version or a newer one";
        return -KZ_EVERSION;
    }
    return 0;
}

int
auth_install(struct server *srv, struct roster *r)
{
    if (roster_version(r) <= srv->roster_version) {
        roster_free(r);
        return -KZ_EVERSION;
    }
    roster_free(srv->roster);
    srv->roster = r;
    srv->roster_version = roster_version(r);
    return 0;
}

int
auth_load(struct server *srv, const uint8_t *bytes, size_t len,
          const char **why)
{
    struct roster *r;
    int err;

    err = auth_decode(srv, bytes, len, &r, why);
    return err ? err : auth_install(srv, r);
}

int
auth_admit(struct server *srv, const struct kz_dh_pk *key, struct member *out)
{
    const struct roster_member *m;

    if (srv->roster == NULL)
        return -KZ_EAUTH;
    m = roster_find_by_dh(srv->roster, key);
    if (m == NULL || m->revoked)
        return -KZ_EAUTH;
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", m->name);
    snprintf(out->site, sizeof(out->site), "%s", m->site);
    out->role = role_of(m->role);
    memcpy(out->sign_pk, m->sign_pk.b, 32);
    memcpy(out->dh_pk, m->dh_pk.b, 32);
    return 0;
}

static const struct roster_member *
current(const struct server *srv, const struct member *m)
{
    struct kz_dh_pk k;

    if (srv->roster == NULL)
        return NULL;
    memcpy(k.b, m->dh_pk, sizeof(k.b));
    return roster_find_by_dh(srv->roster, &k);
}

int
auth_may_write(const struct server *srv, const struct member *m,
               const char *scope)
{
    const struct roster_member *rm = current(srv, m);

    return rm != NULL && roster_may_write(srv->roster, rm, scope);
}

int
auth_may_read(const struct server *srv, const struct member *m,
              const char *scope)
{
    const struct roster_member *rm = current(srv, m);

    return rm != NULL && roster_may_read(srv->roster, rm, scope);
}

void
auth_free(struct server *srv)
{
    roster_free(srv->roster);
    srv->roster = NULL;
}
