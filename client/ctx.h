/*
 * ctx.h: what the networked commands of kzsync share: the replica, the
 * device's identity (DIR/identity.key), the server it syncs with, the
 * admin key and the roster as this device last saw them.
 *
 * Kept in the replica's kz_meta: server (HOST:PORT), server_key
 * (kzserver1.…), admin_key (kzadmin1.…, learned from the first roster the
 * pinned server serves, then pinned), roster (the signed roster bytes),
 * roster_dirty (1: the admin changed it; the next sync uploads it).
 */
#ifndef KZ_CLIENT_CTX_H
#define KZ_CLIENT_CTX_H

#include <stdint.h>

#include "crypto.h"
#include "keyfile.h"
#include "kz.h"
#include "replica.h"
#include "roster.h"

#define KZC_IDENTITY_FILE "identity.key"
#define KZC_PASSPHRASE_ENV "KZSYNC_PASSPHRASE"

struct kzc {
    const char *dir;           /* borrowed */
    struct replica *r;         /* owned */
    struct kz_identity id;     /* owned; wiped */
    char server[256];          /* HOST:PORT */
    struct kz_dh_pk server_pk; /* pinned */
    struct kz_sign_pk admin;   /* admin key, once known */
    int have_admin;            /* admin is set */
    struct roster *roster;     /* owned; NULL if none yet */
    char err[512];             /* last error, one line */
};

/**
 * kzc_open(c, dir): opens the replica and the identity in ${dir} (the
 * passphrase, if the key file is sealed, comes from $KZSYNC_PASSPHRASE),
 * and loads the server, admin key and roster.  On error c->err says why
 * and nothing is left open.
 */
KZ_MUST_CHECK int kzc_open(struct kzc *c, const char *dir);
void kzc_close(struct kzc *c);

/**
 * kzc_set_roster(c, bytes, len): verifies ${bytes} as a roster (with the
 * pinned admin key, or — on a device that has none yet — pins the key that
 * signed it, provided the roster lists this device), keeps it in the
 * replica if its version is newer, and updates the device's role.
 * Returns 0, 1 if it was not newer (ignored), or an error (c->err).
 */
KZ_MUST_CHECK int kzc_set_roster(struct kzc *c, const uint8_t *bytes,
                                 size_t len);

/** kzc_me(c): this device's roster entry, or NULL. */
const struct roster_member *kzc_me(const struct kzc *c);

/**
 * kzc_scopes(c, out, max): the scopes this device reads, pull order
 * (private:X before site:X); returns how many.
 */
uint32_t kzc_scopes(const struct kzc *c, char out[][KZ_LIM_NAME_MAX + 1],
                    uint32_t max);

/**
 * kzc_save_roster(c, r): signs ${r} with this device's key (the admin's),
 * stores it as the current roster and marks it for upload.
 */
KZ_MUST_CHECK int kzc_save_roster(struct kzc *c, struct roster *r);

#endif /* KZ_CLIENT_CTX_H */
