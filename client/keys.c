/*
 * keys.c: scope data keys: storage, acceptance, making and sharing (keys.h).
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "alloc.h"
#include "err.h"
#include "roster.h"
#include "seal.h"

#include "keys.h"

static const char keys_sql[] =
    "CREATE TABLE IF NOT EXISTS kz_scope_key(scope TEXT NOT NULL,"
    " epoch INTEGER NOT NULL, env BLOB NOT NULL, PRIMARY KEY (scope, epoch))"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS kz_key_sent(scope TEXT NOT NULL,"
    " epoch INTEGER NOT NULL, recipient BLOB NOT NULL,"
    " PRIMARY KEY (scope, epoch, recipient)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS kz_key_basis(scope TEXT NOT NULL,"
    " epoch INTEGER NOT NULL, revoked INTEGER NOT NULL,"
    " PRIMARY KEY (scope, epoch)) WITHOUT ROWID;";

/*
 * Whether a member's role and site would let it hold ${scope}, revoked or
 * not: who could have had a key of it.
 */
static int
entitled_by_role(const struct roster_member *m, const char *scope)
{
    if (strcmp(scope, "network") == 0)
        return 1;
    if (strncmp(scope, "site:", 5) == 0)
        return m->role != ROSTER_ROLE_SITE || strcmp(m->site, scope + 5) == 0;
    if (strncmp(scope, "private:", 8) == 0)
        return m->role == ROSTER_ROLE_SITE && strcmp(m->site, scope + 8) == 0;
    return 0;
}

/* Revoked members that could have held ${scope}, per the roster. */
static int64_t
revoked_entitled(const struct kzc *c, const char *scope)
{
    uint32_t i;
    int64_t n = 0;

    for (i = 0; c->roster && i < roster_n_members(c->roster); i++) {
        const struct roster_member *m = roster_member(c->roster, i);
        n += m->revoked && entitled_by_role(m, scope);
    }
    return n;
}

/*
 * Records how many revoked members could hold ${scope} when this device
 * made or received epoch ${epoch}: a later revocation makes the count grow,
 * which tells the key maker to start a new epoch — also when the member it
 * took over from (a revoked key holder) had sent the keys.
 */
static int
set_basis(struct kzc *c, const char *scope, uint64_t epoch)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(
            replica_db(c->r),
            "INSERT OR IGNORE INTO kz_key_basis VALUES (?, ?, ?)", -1, &st,
            NULL) != SQLITE_OK)
        return -KZ_EDB;
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)epoch);
    sqlite3_bind_int64(st, 3, revoked_entitled(c, scope));
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -KZ_EDB;
}

static int64_t
get_basis(struct kzc *c, const char *scope, uint64_t epoch)
{
    sqlite3_stmt *st = NULL;
    int64_t v = 0;

    if (sqlite3_prepare_v2(replica_db(c->r),
                           "SELECT revoked FROM kz_key_basis WHERE scope = ?"
                           " AND epoch = ?",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)epoch);
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

int
keys_init(struct kzc *c)
{
    char *msg = NULL;

    if (sqlite3_exec(replica_db(c->r), keys_sql, NULL, NULL, &msg) !=
        SQLITE_OK) {
        snprintf(c->err, sizeof(c->err), "key tables: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return -KZ_EDB;
    }
    return 0;
}

static int
env_of(struct kzc *c, const char *scope, uint64_t epoch, uint8_t **out,
       size_t *len)
{
    sqlite3_stmt *st = NULL;
    int err = -KZ_ENOENT;

    *out = NULL;
    if (sqlite3_prepare_v2(replica_db(c->r),
                           "SELECT env FROM kz_scope_key WHERE scope = ? AND"
                           " epoch = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return -KZ_EDB;
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)epoch);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *len = (size_t)sqlite3_column_bytes(st, 0);
        *out = kz_malloc(*len ? *len : 1);
        if (*out == NULL)
            err = -KZ_ENOMEM;
        else {
            memcpy(*out, sqlite3_column_blob(st, 0), *len);
            err = 0;
        }
    }
    sqlite3_finalize(st);
    return err;
}

int
keys_get(struct kzc *c, const char *scope, uint64_t epoch,
         struct kz_aead_key *key)
{
    struct kz_env_info info;
    uint8_t *env = NULL;
    size_t len = 0;
    int err;

    if ((err = env_of(c, scope, epoch, &env, &len)))
        return err;
    err = kz_env_decode(&info, env, len, NULL);
    kz_free(env);
    if (err == 0)
        err = kz_env_open(key, &info, &c->id.dh_pk, &c->id.dh_sk);
    sodium_memzero(&info, sizeof(info));
    return err;
}

int
keys_latest(struct kzc *c, const char *scope, uint64_t *epoch)
{
    sqlite3_stmt *st = NULL;
    int err = -KZ_ENOENT;

    if (sqlite3_prepare_v2(replica_db(c->r),
                           "SELECT max(epoch) FROM kz_scope_key WHERE"
                           " scope = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return -KZ_EDB;
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *epoch = (uint64_t)sqlite3_column_int64(st, 0);
        err = 0;
    }
    sqlite3_finalize(st);
    return err;
}

static int
store_env(struct kzc *c, const char *scope, uint64_t epoch, const uint8_t *env,
          size_t len)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(replica_db(c->r),
                           "INSERT INTO kz_scope_key VALUES (?, ?, ?)", -1, &st,
                           NULL) != SQLITE_OK)
        return -KZ_EDB;
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)epoch);
    sqlite3_bind_blob(st, 3, env, (int)len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -KZ_EDB;
}

int
keys_accept(struct kzc *c, const uint8_t *env, size_t len, const char **why)
{
    const struct roster_member *m;
    struct kz_env_info info;
    struct kz_aead_key key, have;
    int err;

    *why = NULL;
    if ((err = kz_env_decode(&info, env, len, why)))
        return err;
    if (sodium_memcmp(info.recipient.b, c->id.dh_pk.b, 32) != 0) {
        *why = "a key envelope for another device";
        return -KZ_EAUTH;
    }
    m = c->roster ? roster_find_by_sign(c->roster, &info.sealer) : NULL;
    if (m == NULL) {
        *why = "a key from a device not in this device's roster yet";
        return -KZ_ENOENT;
    }
    if (m->revoked || !roster_may_read(c->roster, m, info.scope) ||
        (m->role != ROSTER_ROLE_ADMIN &&
         strncmp(info.scope, "private:", 8) != 0)) {
        *why = "a key from a device that may not hand out this scope's key";
        return -KZ_EPERM;
    }
    if ((err = kz_env_open(&key, &info, &c->id.dh_pk, &c->id.dh_sk))) {
        *why = "a key envelope that does not open";
        return err;
    }
    err = keys_get(c, info.scope, info.epoch, &have);
    if (err == 0) {
        int same = sodium_memcmp(have.b, key.b, sizeof(key.b)) == 0;
        sodium_memzero(&have, sizeof(have));
        sodium_memzero(&key, sizeof(key));
        if (!same) {
            *why = "a second, different key for an epoch already held";
            return -KZ_EEXIST;
        }
        return 1;
    }
    sodium_memzero(&key, sizeof(key));
    if (err != -KZ_ENOENT)
        return err;
    if ((err = store_env(c, info.scope, info.epoch, env, len)) ||
        (err = set_basis(c, info.scope, info.epoch))) {
        *why = "cannot store the key";
        return err;
    }
    return 0;
}

/* Creates epoch ${epoch} of ${scope} and keeps it (sealed to ourselves). */
static int
make_key(struct kzc *c, const char *scope, uint64_t epoch)
{
    struct kz_aead_key k;
    uint8_t *env = NULL;
    size_t len = 0;
    int err;

    kz_env_random(kz_env_system(), k.b, sizeof(k.b));
    err = kz_env_make(&env, &len, scope, epoch, &k, &c->id.dh_pk,
                      &c->id.sign_sk, &c->id.sign_pk);
    sodium_memzero(&k, sizeof(k));
    if (err == 0)
        err = store_env(c, scope, epoch, env, len);
    if (err == 0)
        err = set_basis(c, scope, epoch);
    kz_free(env);
    return err;
}

static int
was_sent(struct kzc *c, const char *scope, uint64_t epoch,
         const struct kz_dh_pk *to)
{
    sqlite3_stmt *st = NULL;
    int found = 0;

    if (sqlite3_prepare_v2(replica_db(c->r),
                           "SELECT 1 FROM kz_key_sent WHERE scope = ? AND"
                           " epoch = ? AND recipient = ?",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)epoch);
        sqlite3_bind_blob(st, 3, to->b, 32, SQLITE_STATIC);
        found = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    return found;
}

/* Did we send epoch ${epoch} to a device the roster now revokes? */
static int
sent_to_revoked(struct kzc *c, const char *scope, uint64_t epoch)
{
    uint32_t i;

    for (i = 0; i < roster_n_members(c->roster); i++) {
        const struct roster_member *m = roster_member(c->roster, i);
        if (m->revoked && was_sent(c, scope, epoch, &m->dh_pk))
            return 1;
    }
    return 0;
}

static int
owe(struct kzc *c, struct keys_out *out, const char *scope)
{
    uint64_t latest = 0, e;
    uint32_t i;
    int err;

    err = keys_latest(c, scope, &latest);
    if (err == -KZ_ENOENT) {
        latest = 1;
        err = make_key(c, scope, latest);
    } else if (err == 0 &&
               (sent_to_revoked(c, scope, latest) ||
                revoked_entitled(c, scope) > get_basis(c, scope, latest))) {
        /* A device that held the newest key was revoked: new epoch. */
        latest++;
        err = make_key(c, scope, latest);
    }
    if (err)
        return err;
    for (i = 0; i < roster_n_members(c->roster); i++) {
        const struct roster_member *m = roster_member(c->roster, i);
        if (m->revoked || !roster_may_read(c->roster, m, scope) ||
            sodium_memcmp(m->dh_pk.b, c->id.dh_pk.b, 32) == 0)
            continue;
        for (e = 1; e <= latest; e++) {
            struct kz_aead_key k;
            struct keys_env *x;
            void *p;

            if (was_sent(c, scope, e, &m->dh_pk))
                continue;
            if (keys_get(c, scope, e, &k) != 0)
                continue; /* an epoch we never held */
            p = kz_reallocarray(out->envs, out->n + 1, sizeof(*out->envs));
            if (p == NULL) {
                sodium_memzero(&k, sizeof(k));
                return -KZ_ENOMEM;
            }
            out->envs = p;
            x = &out->envs[out->n];
            memset(x, 0, sizeof(*x));
            err = kz_env_make(&x->bytes, &x->len, scope, e, &k, &m->dh_pk,
                              &c->id.sign_sk, &c->id.sign_pk);
            sodium_memzero(&k, sizeof(k));
            if (err)
                return err;
            snprintf(x->scope, sizeof(x->scope), "%s", scope);
            x->epoch = e;
            x->recipient = m->dh_pk;
            out->n++;
        }
    }
    return 0;
}

/*
 * The private:NAME key holder: the first of NAME's non-revoked site devices
 * in roster order, i.e. the earliest enrolled.  Adding devices never
 * changes it, so two devices never make rival first keys; when the holder
 * is revoked the next one takes over, already holding the keys, and starts
 * a new epoch (kz_key_basis).
 */
static int
is_holder(const struct kzc *c, const struct roster_member *me)
{
    uint32_t i;

    for (i = 0; i < roster_n_members(c->roster); i++) {
        const struct roster_member *m = roster_member(c->roster, i);
        if (m->revoked || m->role != ROSTER_ROLE_SITE ||
            strcmp(m->site, me->site) != 0)
            continue;
        return m == me;
    }
    return 0;
}

int
keys_duties(struct kzc *c, struct keys_out *out)
{
    const struct roster_member *me = kzc_me(c);
    char scope[KZ_LIM_NAME_MAX + 1];
    uint32_t i, j;
    int err = 0;

    memset(out, 0, sizeof(*out));
    if (me == NULL || me->revoked)
        return 0;
    if (me->role == ROSTER_ROLE_ADMIN) {
        if ((err = owe(c, out, "network")))
            return err;
        for (i = 0; i < roster_n_members(c->roster) && err == 0; i++) {
            const struct roster_member *m = roster_member(c->roster, i);
            int dup = 0;
            if (m->role != ROSTER_ROLE_SITE)
                continue;
            for (j = 0; j < i; j++) {
                const struct roster_member *o = roster_member(c->roster, j);
                dup |= o->role == ROSTER_ROLE_SITE &&
                       strcmp(o->site, m->site) == 0;
            }
            if (dup)
                continue;
            snprintf(scope, sizeof(scope), "site:%s", m->site);
            err = owe(c, out, scope);
        }
    } else if (me->role == ROSTER_ROLE_SITE && is_holder(c, me)) {
        snprintf(scope, sizeof(scope), "private:%s", me->site);
        err = owe(c, out, scope);
    }
    return err;
}

int
keys_sent(struct kzc *c, const struct keys_out *out)
{
    sqlite3_stmt *st = NULL;
    uint32_t i;
    int rc = SQLITE_DONE;

    if (out->n == 0)
        return 0;
    if (sqlite3_prepare_v2(replica_db(c->r),
                           "INSERT OR IGNORE INTO kz_key_sent VALUES (?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        return -KZ_EDB;
    for (i = 0; i < out->n && rc == SQLITE_DONE; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, out->envs[i].scope, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)out->envs[i].epoch);
        sqlite3_bind_blob(st, 3, out->envs[i].recipient.b, 32, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -KZ_EDB;
}

void
keys_out_free(struct keys_out *out)
{
    uint32_t i;

    for (i = 0; i < out->n; i++)
        kz_free(out->envs[i].bytes);
    kz_free(out->envs);
    memset(out, 0, sizeof(*out));
}
