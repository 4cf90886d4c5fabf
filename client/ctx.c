/*
 * ctx.c: the device's identity, server, admin key and roster (ctx.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "alloc.h"
#include "err.h"
#include "join.h"
#include "keys.h"
#include "limits.h"
#include "mpk.h"
#include "rd.h"

#include "ctx.h"

/*
 * The admin key a roster claims, before anything is verified: only for
 * trust on first use, after which roster_decode checks the signature with
 * it.  roster = [body:bin, sig:bin(64)], body = [format, version,
 * admin:bin(32), …] (PROTOCOL.md §Roster).
 */
static int
claimed_admin(const uint8_t *p, size_t len, struct kz_sign_pk *out)
{
    struct kz_rd r, b;
    const uint8_t *body = NULL, *admin = NULL;
    size_t body_len = 0, admin_len = 0;
    uint32_t n = 0;
    uint64_t v = 0;

    kz_rd_init(&r, p, len);
    if (kz_mpk_array(&r, 2, &n) || n != 2 ||
        kz_mpk_bin(&r, KZ_LIM_ROSTER_MAX, &body, &body_len))
        return -KZ_EMALFORMED;
    kz_rd_init(&b, body, body_len);
    if (kz_mpk_array(&b, 8, &n) || n < 3 || kz_mpk_uint(&b, UINT64_MAX, &v) ||
        kz_mpk_uint(&b, UINT64_MAX, &v) ||
        kz_mpk_bin(&b, 32, &admin, &admin_len) || admin_len != 32)
        return -KZ_EMALFORMED;
    memcpy(out->b, admin, 32);
    return 0;
}

static int
load_roster(struct kzc *c)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    const char *why = NULL;
    int err;

    err = replica_meta_get_blob(c->r, "roster", &bytes, &len);
    if (err == -KZ_ENOENT)
        return 0;
    if (err)
        return err;
    if (!c->have_admin) {
        kz_free(bytes);
        snprintf(c->err, sizeof(c->err), "a roster without an admin key");
        return -KZ_EDB;
    }
    err = roster_decode(&c->roster, bytes, len, &c->admin, &why);
    kz_free(bytes);
    if (err)
        snprintf(c->err, sizeof(c->err), "the stored roster: %s",
                 why ? why : kz_strerror(err));
    return err;
}

int
kzc_open(struct kzc *c, const char *dir)
{
    char path[4096], text[128], msg[KEYFILE_MSG_LEN];
    int err;

    memset(c, 0, sizeof(*c));
    c->dir = dir;
    if ((err = replica_open(&c->r, dir, NULL)) != 0) {
        snprintf(c->err, sizeof(c->err), "%s", replica_errmsg(NULL));
        return err;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, KZC_IDENTITY_FILE);
    err = keyfile_load(path, &c->id, getenv(KZC_PASSPHRASE_ENV), msg,
                       sizeof(msg));
    if (err) {
        snprintf(c->err, sizeof(c->err), "%s", msg[0] ? msg : kz_strerror(err));
        goto fail;
    }
    if (replica_meta_get(c->r, "server", c->server, sizeof(c->server)) != 0 ||
        replica_meta_get(c->r, "server_key", text, sizeof(text)) != 0 ||
        serverkey_decode(&c->server_pk, text) != 0) {
        snprintf(c->err, sizeof(c->err),
                 "%s was not set up with kzsync init (no server)", dir);
        err = -KZ_ENOENT;
        goto fail;
    }
    if (replica_meta_get(c->r, "admin_key", text, sizeof(text)) == 0 &&
        adminkey_decode(&c->admin, text) == 0)
        c->have_admin = 1;
    if ((err = load_roster(c)))
        goto fail;
    if ((err = keys_init(c)))
        goto fail;
    if (sqlite3_exec(replica_db(c->r),
                     "CREATE TABLE IF NOT EXISTS kz_sealed(scope TEXT NOT NULL,"
                     " seq INTEGER NOT NULL, epoch INTEGER NOT NULL,"
                     " nonce BLOB NOT NULL, PRIMARY KEY (scope, seq))"
                     " WITHOUT ROWID",
                     NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(c->err, sizeof(c->err), "cannot create kz_sealed");
        err = -KZ_EDB;
        goto fail;
    }
    return 0;
fail:
    kzc_close(c);
    return err;
}

void
kzc_close(struct kzc *c)
{
    roster_free(c->roster);
    c->roster = NULL;
    replica_free(c->r);
    c->r = NULL;
    keyfile_wipe(&c->id);
}

const struct roster_member *
kzc_me(const struct kzc *c)
{
    return c->roster ? roster_find_by_dh(c->roster, &c->id.dh_pk) : NULL;
}

static enum replica_role
role_of(enum roster_role r)
{
    switch (r) {
    case ROSTER_ROLE_ADMIN: return REPLICA_ROLE_ADMIN;
    case ROSTER_ROLE_OBSERVER: return REPLICA_ROLE_OBSERVER;
    default: return REPLICA_ROLE_SITE;
    }
}

int
kzc_set_roster(struct kzc *c, const uint8_t *bytes, size_t len)
{
    struct roster *nr = NULL;
    const struct roster_member *me;
    const char *why = NULL;
    struct kz_sign_pk admin;
    int err, pin = 0;

    if (c->have_admin) {
        admin = c->admin;
    } else {
        /* First roster: learn the admin key from it (trust on first use
         * over the pinned server), then require that it lists us. */
        if ((err = claimed_admin(bytes, len, &admin)) != 0) {
            snprintf(c->err, sizeof(c->err),
                     "the server's roster is malformed");
            return err;
        }
        pin = 1;
    }
    err = roster_decode(&nr, bytes, len, &admin, &why);
    if (err) {
        snprintf(c->err, sizeof(c->err), "roster refused: %s",
                 why ? why : kz_strerror(err));
        return err;
    }
    if (c->roster && roster_version(nr) <= roster_version(c->roster)) {
        roster_free(nr);
        return 1;
    }
    me = roster_find_by_dh(nr, &c->id.dh_pk);
    if (pin && me == NULL) {
        roster_free(nr);
        snprintf(c->err, sizeof(c->err),
                 "this device is not in the network's roster yet: ask the "
                 "state office to add it (kzsync member add)");
        return -KZ_EAUTH;
    }
    if ((err = replica_meta_set_blob(c->r, "roster", bytes, len)))
        goto fail;
    if (pin) {
        char text[ADMINKEY_TEXT_LEN + 1];
        if ((err = adminkey_encode(&admin, text)) ||
            (err = replica_meta_set(c->r, "admin_key", text)))
            goto fail;
        c->admin = admin;
        c->have_admin = 1;
    }
    if (me && !me->revoked && (err = replica_set_role(c->r, role_of(me->role))))
        goto fail;
    roster_free(c->roster);
    c->roster = nr;
    return 0;
fail:
    roster_free(nr);
    snprintf(c->err, sizeof(c->err), "cannot keep the roster: %s",
             replica_errmsg(c->r));
    return err;
}

uint32_t
kzc_scopes(const struct kzc *c, char out[][KZ_LIM_NAME_MAX + 1], uint32_t max)
{
    const struct roster_member *me = kzc_me(c);
    uint32_t n = 0, i, j;

    if (max == 0)
        return 0;
    snprintf(out[n++], KZ_LIM_NAME_MAX + 1, "network");
    if (me == NULL || me->revoked)
        return n;
    if (me->role == ROSTER_ROLE_SITE) {
        if (n < max)
            snprintf(out[n++], KZ_LIM_NAME_MAX + 1, "private:%s", me->site);
        if (n < max)
            snprintf(out[n++], KZ_LIM_NAME_MAX + 1, "site:%s", me->site);
        return n;
    }
    for (i = 0; i < roster_n_members(c->roster) && n < max; i++) {
        const struct roster_member *m = roster_member(c->roster, i);
        char scope[KZ_LIM_NAME_MAX + 1];
        int dup = 0;
        if (m->role != ROSTER_ROLE_SITE)
            continue;
        snprintf(scope, sizeof(scope), "site:%s", m->site);
        for (j = 0; j < n; j++)
            dup |= strcmp(out[j], scope) == 0;
        if (!dup)
            memcpy(out[n++], scope, sizeof(scope));
    }
    return n;
}

int
kzc_save_roster(struct kzc *c, struct roster *r)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    int err;

    err = roster_encode_sign(r, &c->id.sign_sk, &bytes, &len);
    if (err) {
        snprintf(c->err, sizeof(c->err), "cannot sign the roster: %s",
                 kz_strerror(err));
        return err;
    }
    err = replica_meta_set_blob(c->r, "roster", bytes, len);
    if (err == 0)
        err = replica_meta_set(c->r, "roster_dirty", "1");
    kz_free(bytes);
    if (err)
        snprintf(c->err, sizeof(c->err), "cannot keep the roster: %s",
                 replica_errmsg(c->r));
    return err;
}
