/*
 * keyfile.h: a device's (or the server's) identity key file (DESIGN.md §4).
 *
 * An identity is two independent key pairs:
 *
 *   - Ed25519 (sign_pk, sign_sk): signs changesets, key envelopes, join
 *     requests and, on the admin device, rosters;
 *   - X25519 (dh_pk, dh_sk): the Noise static key, and the key that sealed
 *     scope keys are addressed to (crypto_box_seal).
 *
 * They are generated separately (kz_sign_keypair, kz_dh_keypair), never
 * derived from one another.  The server's identity (kzsyncd) has the X25519
 * pair only: same file format, kind KEYFILE_KIND_SERVER, and the Ed25519
 * fields all zero (in memory and in the file).
 *
 * File format "kzsync-identity-1", binary, every number big-endian:
 *
 *   plain (seal = 0), 212 bytes:
 *     0   magic    18  "kzsync-identity-1\n"
 *     18  kind      1  1 = device, 2 = server
 *     19  seal      1  0
 *     20  sign_pk  32  Ed25519 public key (zero for a server)
 *     52  dh_pk    32  X25519 public key
 *     84  sign_sk  64  Ed25519 secret key (seed ‖ public key; zero for a
 * server) 148 dh_sk    32  X25519 secret scalar 180 check    32  BLAKE2b-256 of
 * bytes 0..179 (catches corruption)
 *
 *   passphrase-sealed (seal = 1), 252 bytes:
 *     0   magic    18  as above
 *     18  kind      1
 *     19  seal      1  1
 *     20  sign_pk  32
 *     52  dh_pk    32
 *     84  opslimit  8  Argon2id passes      (crypto_pwhash_OPSLIMIT_*)
 *     92  memlimit  8  Argon2id memory, bytes (crypto_pwhash_MEMLIMIT_*)
 *     100 salt     16  random (crypto_pwhash_SALTBYTES)
 *     116 nonce    24  random XChaCha20-Poly1305 nonce
 *     140 ct      112  XChaCha20-Poly1305(sign_sk ‖ dh_sk), tag appended;
 *                      key = Argon2id13(passphrase, salt, opslimit,
 *                      memlimit), 32 bytes; associated data = bytes 0..139
 *
 * The public keys are in clear so that a tool can show them without the
 * passphrase; the associated data (sealed) or the check hash (plain) covers
 * them, and a load also re-derives both public keys from the secret keys
 * and refuses a file where they differ.  A load accepts opslimit and
 * memlimit only within [crypto_pwhash_*_MIN, crypto_pwhash_*_SENSITIVE], so
 * a damaged file cannot ask for terabytes of memory.
 *
 * The file is written with mode 0600 through a temporary file in the same
 * directory, fsync, rename and an fsync of the directory, so a crash leaves
 * either the old file or the new one.  A load refuses a file whose mode
 * gives the group or others any access (as ssh does), and one that is not a
 * regular file.
 *
 * Argon2id at OPSLIMIT_MODERATE/MEMLIMIT_MODERATE takes about a second and
 * 256 MiB: never call keyfile_save/keyfile_load with a passphrase on an
 * event-loop thread (STYLE.md 13).  Call kz_crypto_init() first.
 *
 * Every error is a negative code, and a one-line English message naming the
 * file goes to ${msg} (if not NULL; truncated to ${msg_len} bytes, always
 * NUL-terminated), ready to print as the CLI's one error line.
 */
#ifndef KZ_KEYFILE_H
#define KZ_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "env.h"
#include "kz.h"

#define KEYFILE_KIND_DEVICE 1u  /* Ed25519 + X25519 */
#define KEYFILE_KIND_SERVER 2u  /* X25519 only; Ed25519 fields zero */
#define KEYFILE_PLAIN_LEN 212u  /* bytes of a plain file */
#define KEYFILE_SEALED_LEN 252u /* bytes of a passphrase-sealed file */
#define KEYFILE_MSG_LEN                                                        \
    512u /* a message buffer that never truncates                              \
            paths shorter than ~400 bytes */

/* A loaded or generated identity.  Public because callers embed it; wipe it
 * with keyfile_wipe when done. */
struct kz_identity {
    uint32_t kind;             /* KEYFILE_KIND_DEVICE or _SERVER */
    struct kz_sign_pk sign_pk; /* Ed25519 public key (zero for a server) */
    struct kz_sign_sk sign_sk; /* Ed25519 secret key; secret */
    struct kz_dh_pk dh_pk;     /* X25519 public key */
    struct kz_dh_sk dh_sk;     /* X25519 secret key; secret */
};

/* Argon2id cost for keyfile_save_kdf.  Tests pass the _MIN limits. */
struct keyfile_kdf {
    uint64_t opslimit; /* crypto_pwhash opslimit, MIN..SENSITIVE */
    uint64_t memlimit; /* crypto_pwhash memlimit in bytes, MIN..SENSITIVE */
};

/**
 * keyfile_generate(id, env): a fresh device identity: an Ed25519 pair and a
 * separate X25519 pair, randomness from ${env}.  Returns 0 or -KZ_ECRYPTO
 * (then *${id} is zero).
 */
KZ_MUST_CHECK int keyfile_generate(struct kz_identity *id,
                                   const struct kz_env *env);

/**
 * keyfile_generate_server(id, env): a fresh server identity: an X25519 pair
 * only, kind KEYFILE_KIND_SERVER.  Returns 0 or -KZ_ECRYPTO (*${id} zero).
 */
KZ_MUST_CHECK int keyfile_generate_server(struct kz_identity *id,
                                          const struct kz_env *env);

/**
 * keyfile_save(path, id, passphrase, msg, msg_len): writes ${id} to ${path}
 * (mode 0600, atomically replacing any existing file), sealed with
 * ${passphrase} if it is not NULL (Argon2id at OPSLIMIT_MODERATE and
 * MEMLIMIT_MODERATE; salt and nonce from libsodium's randombytes).  Nothing
 * is borrowed beyond the call.  Returns 0, -KZ_EINVAL (an empty passphrase
 * or a malformed ${id}), -KZ_ENOMEM, -KZ_ECRYPTO, or -errno of
 * open/write/fsync/rename (then no temporary file is left behind).
 */
KZ_MUST_CHECK int keyfile_save(const char *path, const struct kz_identity *id,
                               const char *passphrase, char *msg,
                               size_t msg_len);

/**
 * keyfile_save_kdf(path, id, passphrase, kdf, msg, msg_len): keyfile_save
 * with the Argon2id cost ${kdf} (NULL = MODERATE); -KZ_EINVAL if it is
 * outside the range a load accepts.
 */
KZ_MUST_CHECK int keyfile_save_kdf(const char *path,
                                   const struct kz_identity *id,
                                   const char *passphrase,
                                   const struct keyfile_kdf *kdf, char *msg,
                                   size_t msg_len);

/**
 * keyfile_load(path, id, passphrase, msg, msg_len): reads the identity at
 * ${path} into *${id}.  ${passphrase} is needed for a sealed file and
 * ignored for a plain one.  On any error *${id} is zero.  Returns 0 or:
 *   -KZ_EPERM      the mode allows group/other access, or not a regular
 *                  file (the message names the file and its mode);
 *   -KZ_EAUTH      wrong passphrase, or none given for a sealed file;
 *   -KZ_EMALFORMED not a kzsync identity file, wrong size, corrupt
 *                  (check hash, public keys that do not match), Argon2id
 *                  limits out of range;
 *   -KZ_EVERSION   magic of another format version;
 *   -KZ_ENOMEM     Argon2id could not get its memory;
 *   -errno         open/read failed (-ENOENT: no such file).
 */
KZ_MUST_CHECK int keyfile_load(const char *path, struct kz_identity *id,
                               const char *passphrase, char *msg,
                               size_t msg_len);

/** keyfile_wipe(id): sodium_memzero of the whole of *${id}; NULL is a no-op. */
void keyfile_wipe(struct kz_identity *id);

#endif /* KZ_KEYFILE_H */
