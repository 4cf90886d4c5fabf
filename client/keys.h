/*
 * keys.h: the scope data keys of a device (DESIGN.md §4).
 *
 * Every scope (network, site:NAME, private:NAME) has its own data key per
 * epoch.  A device keeps each key as the envelope that brought it, sealed to
 * its own X25519 key (kz_scope_key), so the keys are no more readable than
 * the identity file (which may be passphrase-sealed).
 *
 * Who makes and hands out keys (keys_duties):
 *   the admin           network and site:NAME for every site in the roster;
 *   a site's key holder  private:NAME — the earliest enrolled non-revoked
 *                        device of NAME (roster order); it alone makes the
 *                        key, so two devices never make rival keys.
 * A maker creates epoch 1 when none exists, and a new epoch when a device
 * that could have held the newest epoch has been revoked since this device
 * made or received it (kz_key_basis) — also when the revoked device was
 * the key holder this one took over from; it seals every epoch to every
 * member entitled to read the scope (roster_may_read) that has not had it.
 * A receiver accepts an envelope only if it verifies, is addressed to it,
 * and its sealer may hold the scope: the server cannot slip in a key of its
 * own.
 */
#ifndef KZ_CLIENT_KEYS_H
#define KZ_CLIENT_KEYS_H

#include <stdint.h>

#include "crypto.h"
#include "ctx.h"
#include "kz.h"

/* Envelopes made for others, to send with KEYS_PUT. */
struct keys_out {
    uint32_t n; /* envelopes */
    struct keys_env {
        uint8_t *bytes; /* owned */
        size_t len;
        char scope[KZ_LIM_NAME_MAX + 1];
        uint64_t epoch;
        struct kz_dh_pk recipient;
    } * envs; /* owned */
};

/** keys_init(c): creates the key tables if needed. */
KZ_MUST_CHECK int keys_init(struct kzc *c);

/** keys_get(c, scope, epoch, key): 0, or -KZ_ENOENT if this device has none. */
KZ_MUST_CHECK int keys_get(struct kzc *c, const char *scope, uint64_t epoch,
                           struct kz_aead_key *key);

/** keys_latest(c, scope, epoch): the newest epoch held, or -KZ_ENOENT. */
KZ_MUST_CHECK int keys_latest(struct kzc *c, const char *scope,
                              uint64_t *epoch);

/**
 * keys_accept(c, env, len, why): verifies an envelope received from the
 * server against the roster and keeps it.  Returns 0 (kept), 1 (had it),
 * or a negative error with ${why}: -KZ_ENOENT a sealer the roster here does
 * not list (yet), -KZ_EVERSION a format this kzsync does not know (both
 * may pass), -KZ_EPERM a sealer not (or no longer) entitled to the scope,
 * -KZ_EEXIST a different key for an epoch held, -KZ_EAUTH not for us or a
 * bad signature, -KZ_EMALFORMED, or a local error (-KZ_EDB, -KZ_ENOMEM).
 */
KZ_MUST_CHECK int keys_accept(struct kzc *c, const uint8_t *env, size_t len,
                              const char **why);

/**
 * keys_duties(c, out): makes the keys this device is responsible for and
 * the envelopes still owed to entitled members (see above).  New own keys
 * are stored at once; *${out} lists what to upload (free with
 * keys_out_free; mark with keys_sent once the server took them).
 */
KZ_MUST_CHECK int keys_duties(struct kzc *c, struct keys_out *out);
KZ_MUST_CHECK int keys_sent(struct kzc *c, const struct keys_out *out);
void keys_out_free(struct keys_out *out);

#endif /* KZ_CLIENT_KEYS_H */
