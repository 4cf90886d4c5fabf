/*
 * keyfile.c: the identity key file (format: see keyfile.h).
 *
 *   plain  : magic(18) kind(1) seal=0(1) sign_pk(32) dh_pk(32)
 *            sign_sk(64) dh_sk(32) check(32) = BLAKE2b-256(bytes 0..179)
 *   sealed : magic(18) kind(1) seal=1(1) sign_pk(32) dh_pk(32)
 *            opslimit(8,BE) memlimit(8,BE) salt(16) nonce(24)
 *            XChaCha20-Poly1305(sign_sk ‖ dh_sk)(96+16), AD = bytes 0..139
 *
 * The whole file image lives in a fixed stack buffer (at most 252 bytes), so
 * there is no heap copy of a secret to forget; every buffer that held a
 * secret (the image, the decrypted secrets, the Argon2id key) is wiped with
 * sodium_memzero on every path, in the exit ladder of each function.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "alloc.h"
#include "crypto.h"
#include "err.h"
#include "rd.h"

#include "keyfile.h"

#define MAGIC "kzsync-identity-1\n"
#define MAGIC_LEN 18u
#define MAGIC_STEM_LEN 16u /* "kzsync-identity-": a version mismatch */

#define OFF_KIND 18u
#define OFF_SEAL 19u
#define OFF_SIGN_PK 20u
#define OFF_DH_PK 52u
#define OFF_BODY 84u /* plain: sign_sk; sealed: opslimit */
#define SECRET_LEN (KZ_SIGN_SK_LEN + KZ_DH_LEN) /* 96 */
#define CHECK_LEN 32u
#define SALT_LEN 16u
#define SEALED_AD_LEN (OFF_BODY + 8u + 8u + SALT_LEN + KZ_XAEAD_NONCE_LEN)

KZ_STATIC_ASSERT(sizeof(MAGIC) - 1 == MAGIC_LEN, "magic");
KZ_STATIC_ASSERT(KEYFILE_PLAIN_LEN == OFF_BODY + SECRET_LEN + CHECK_LEN,
                 "plain layout");
KZ_STATIC_ASSERT(SEALED_AD_LEN == 140u, "sealed layout");
KZ_STATIC_ASSERT(KEYFILE_SEALED_LEN ==
                     SEALED_AD_LEN + SECRET_LEN + KZ_AEAD_TAG_LEN,
                 "sealed layout");
KZ_STATIC_ASSERT(SALT_LEN == crypto_pwhash_SALTBYTES, "salt");

/* say(msg, msg_len, fmt, …): the one-line message, if wanted. */
static void say(char *msg, size_t msg_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
say(char *msg, size_t msg_len, const char *fmt, ...)
{
    va_list ap;

    if (msg == NULL || msg_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, msg_len, fmt, ap);
    va_end(ap);
}

static void
put_be64(uint8_t *p, uint64_t v)
{
    int i;

    for (i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xffu);
        v >>= 8;
    }
}

static int
all_zero(const void *p, size_t len)
{
    return sodium_is_zero(p, len) == 1;
}

/* The Argon2id cost range a file may ask for. */
static int
kdf_ok(uint64_t ops, uint64_t mem)
{
    return ops >= crypto_pwhash_OPSLIMIT_MIN &&
           ops <= crypto_pwhash_OPSLIMIT_SENSITIVE &&
           mem >= crypto_pwhash_MEMLIMIT_MIN &&
           mem <= crypto_pwhash_MEMLIMIT_SENSITIVE;
}

/*
 * derive(key, passphrase, salt, ops, mem): Argon2id13 → 32-byte AEAD key.
 * Returns 0 or -KZ_ENOMEM (libsodium's only failure for valid limits is
 * failing to get the memory); ${key} is zero on error.
 */
static int
derive(struct kz_aead_key *key, const char *passphrase,
       const uint8_t salt[static SALT_LEN], uint64_t ops, uint64_t mem)
{
    if (crypto_pwhash(key->b, sizeof(key->b), passphrase, strlen(passphrase),
                      salt, (unsigned long long)ops, (size_t)mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
        sodium_memzero(key, sizeof(*key));
        return -KZ_ENOMEM;
    }
    return 0;
}

/*
 * id_consistent(id): 0 if both public keys follow from the secret keys (or,
 * for a server, the Ed25519 fields are all zero), else -KZ_EMALFORMED.  The
 * compares are constant time: sign_sk is secret.
 */
static int
id_consistent(const struct kz_identity *id)
{
    struct kz_sign_pk spk;
    struct kz_sign_sk ssk;
    struct kz_dh_pk dpk;
    int rc = -KZ_EMALFORMED;

    if (id->kind == KEYFILE_KIND_SERVER) {
        if (!all_zero(&id->sign_pk, sizeof(id->sign_pk)) ||
            !all_zero(&id->sign_sk, sizeof(id->sign_sk)))
            goto out;
    } else if (id->kind == KEYFILE_KIND_DEVICE) {
        if (kz_sign_seed_keypair(&spk, &ssk, id->sign_sk.b) != 0)
            goto out;
        if (!kz_crypto_eq(&spk, &id->sign_pk, sizeof(spk)) ||
            !kz_crypto_eq(&ssk, &id->sign_sk, sizeof(ssk)))
            goto out;
    } else {
        goto out;
    }
    if (kz_dh_public(&dpk, &id->dh_sk) != 0 ||
        !kz_crypto_eq(&dpk, &id->dh_pk, sizeof(dpk)))
        goto out;
    rc = 0;
out:
    sodium_memzero(&ssk, sizeof(ssk));
    return rc;
}

/**
 * keyfile_wipe(id): sodium_memzero of the whole of *${id}; NULL is a no-op.
 */
void
keyfile_wipe(struct kz_identity *id)
{
    if (id != NULL)
        sodium_memzero(id, sizeof(*id));
}

/**
 * keyfile_generate(id, env): a fresh device identity: an Ed25519 pair and a
 * separate X25519 pair, randomness from ${env}.  Returns 0 or -KZ_ECRYPTO
 * (then *${id} is zero).
 */
int
keyfile_generate(struct kz_identity *id, const struct kz_env *env)
{
    int rc;

    sodium_memzero(id, sizeof(*id));
    id->kind = KEYFILE_KIND_DEVICE;
    if ((rc = kz_sign_keypair(env, &id->sign_pk, &id->sign_sk)) != 0)
        goto err;
    if ((rc = kz_dh_keypair(env, &id->dh_pk, &id->dh_sk)) != 0)
        goto err;
    return 0;
err:
    keyfile_wipe(id);
    return rc;
}

/**
 * keyfile_generate_server(id, env): a fresh server identity: an X25519 pair
 * only, kind KEYFILE_KIND_SERVER.  Returns 0 or -KZ_ECRYPTO (*${id} zero).
 */
int
keyfile_generate_server(struct kz_identity *id, const struct kz_env *env)
{
    int rc;

    sodium_memzero(id, sizeof(*id));
    id->kind = KEYFILE_KIND_SERVER;
    if ((rc = kz_dh_keypair(env, &id->dh_pk, &id->dh_sk)) != 0) {
        keyfile_wipe(id);
        return rc;
    }
    return 0;
}

/*
 * encode(img, len, id, passphrase, kdf): the file image of ${id} in
 * ${img} (KEYFILE_SEALED_LEN bytes of room); *${len} its length.  Returns 0,
 * -KZ_ENOMEM (Argon2id) or -KZ_ECRYPTO.  On error ${img} is wiped.
 */
static int
encode(uint8_t img[static KEYFILE_SEALED_LEN], size_t *len,
       const struct kz_identity *id, const char *passphrase,
       const struct keyfile_kdf *kdf)
{
    uint8_t secret[SECRET_LEN];
    struct kz_aead_key key;
    const uint8_t *salt, *nonce;
    int rc;

    memcpy(img, MAGIC, MAGIC_LEN);
    img[OFF_KIND] = (uint8_t)id->kind;
    img[OFF_SEAL] = (uint8_t)(passphrase != NULL);
    memcpy(img + OFF_SIGN_PK, id->sign_pk.b, KZ_SIGN_PK_LEN);
    memcpy(img + OFF_DH_PK, id->dh_pk.b, KZ_DH_LEN);
    memcpy(secret, id->sign_sk.b, KZ_SIGN_SK_LEN);
    memcpy(secret + KZ_SIGN_SK_LEN, id->dh_sk.b, KZ_DH_LEN);
    sodium_memzero(&key, sizeof(key));

    if (passphrase == NULL) {
        memcpy(img + OFF_BODY, secret, SECRET_LEN);
        rc = kz_hash(img + OFF_BODY + SECRET_LEN, CHECK_LEN, img,
                     OFF_BODY + SECRET_LEN);
        if (rc != 0)
            goto out;
        *len = KEYFILE_PLAIN_LEN;
        goto out;
    }
    put_be64(img + OFF_BODY, kdf->opslimit);
    put_be64(img + OFF_BODY + 8, kdf->memlimit);
    salt = img + OFF_BODY + 16;
    nonce = salt + SALT_LEN;
    randombytes_buf(img + OFF_BODY + 16, SALT_LEN + KZ_XAEAD_NONCE_LEN);
    if ((rc = derive(&key, passphrase, salt, kdf->opslimit, kdf->memlimit)) !=
        0)
        goto out;
    rc = kz_xaead_encrypt(img + SEALED_AD_LEN, secret, SECRET_LEN, img,
                          SEALED_AD_LEN, nonce, &key);
    if (rc != 0)
        goto out;
    *len = KEYFILE_SEALED_LEN;
out:
    if (rc != 0)
        sodium_memzero(img, KEYFILE_SEALED_LEN);
    sodium_memzero(secret, sizeof(secret));
    sodium_memzero(&key, sizeof(key));
    return rc;
}

/* write_all(fd, p, len): 0 or -errno (EINTR retried). */
static int
write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return kz_err_from_errno(errno);
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* fsync_dir(path): fsync of the directory that holds ${path}. */
static int
fsync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int fd, rc = 0;

    if (slash == NULL)
        dir = kz_strdup(".");
    else if (slash == path)
        dir = kz_strdup("/");
    else {
        size_t n = (size_t)(slash - path);
        dir = kz_malloc(n + 1);
        if (dir != NULL) {
            memcpy(dir, path, n);
            dir[n] = '\0';
        }
    }
    if (dir == NULL)
        return -KZ_ENOMEM;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        rc = kz_err_from_errno(errno);
    else {
        if (fsync(fd) != 0 && errno != EINVAL)
            rc = kz_err_from_errno(errno);
        close(fd);
    }
    kz_free(dir);
    return rc;
}

/**
 * keyfile_save_kdf(path, id, passphrase, kdf, msg, msg_len): keyfile_save
 * with the Argon2id cost ${kdf} (NULL = MODERATE); -KZ_EINVAL if it is
 * outside the range a load accepts.
 */
int
keyfile_save_kdf(const char *path, const struct kz_identity *id,
                 const char *passphrase, const struct keyfile_kdf *kdf,
                 char *msg, size_t msg_len)
{
    static const struct keyfile_kdf moderate = {
        crypto_pwhash_OPSLIMIT_MODERATE, crypto_pwhash_MEMLIMIT_MODERATE};
    uint8_t img[KEYFILE_SEALED_LEN];
    size_t len = 0, tmp_len;
    char *tmp = NULL;
    int fd = -1, rc;

    if (kdf == NULL)
        kdf = &moderate;
    if (passphrase != NULL && passphrase[0] == '\0') {
        say(msg, msg_len, "%s: refusing to seal with an empty passphrase",
            path);
        rc = -KZ_EINVAL;
        goto err0;
    }
    if (passphrase != NULL && !kdf_ok(kdf->opslimit, kdf->memlimit)) {
        say(msg, msg_len, "%s: Argon2id limits out of range", path);
        rc = -KZ_EINVAL;
        goto err0;
    }
    if (id_consistent(id) != 0) {
        say(msg, msg_len, "%s: not saving an inconsistent identity", path);
        rc = -KZ_EINVAL;
        goto err0;
    }
    if ((rc = encode(img, &len, id, passphrase, kdf)) != 0) {
        say(msg, msg_len, "%s: %s", path,
            rc == -KZ_ENOMEM ? "Argon2id could not get its memory"
                             : "sealing the identity failed");
        goto err0;
    }

    /* path + ".tmp-XXXXXX" in the same directory, so rename is atomic. */
    tmp_len = strlen(path) + sizeof(".tmp-XXXXXX");
    if ((tmp = kz_malloc(tmp_len)) == NULL) {
        say(msg, msg_len, "%s: out of memory", path);
        rc = -KZ_ENOMEM;
        goto err0;
    }
    snprintf(tmp, tmp_len, "%s.tmp-XXXXXX", path);
    if ((fd = mkstemp(tmp)) < 0) {
        rc = kz_err_from_errno(errno);
        say(msg, msg_len, "%s: cannot create a temporary file: %s", path,
            strerror(-rc));
        goto err0;
    }
    if (fchmod(fd, 0600) != 0 || (rc = write_all(fd, img, len)) != 0 ||
        fsync(fd) != 0) {
        if (rc == 0)
            rc = kz_err_from_errno(errno);
        say(msg, msg_len, "%s: cannot write: %s", tmp, strerror(-rc));
        goto err1;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = kz_err_from_errno(errno);
        say(msg, msg_len, "%s: cannot write: %s", tmp, strerror(-rc));
        goto err1;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = kz_err_from_errno(errno);
        say(msg, msg_len, "%s: cannot rename %s: %s", path, tmp, strerror(-rc));
        goto err1;
    }
    if ((rc = fsync_dir(path)) != 0) {
        /* The file is in place; only its durability is in doubt. */
        say(msg, msg_len, "%s: cannot sync the directory: %s", path,
            rc == -KZ_ENOMEM ? "out of memory" : strerror(-rc));
        goto err0;
    }
    kz_free(tmp);
    sodium_memzero(img, sizeof(img));
    return 0;

err1:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
err0:
    kz_free(tmp);
    sodium_memzero(img, sizeof(img));
    return rc;
}

/**
 * keyfile_save(path, id, passphrase, msg, msg_len): writes ${id} to ${path}
 * (mode 0600, atomically replacing any existing file), sealed with
 * ${passphrase} if it is not NULL (Argon2id at OPSLIMIT_MODERATE and
 * MEMLIMIT_MODERATE).  Returns 0, -KZ_EINVAL, -KZ_ENOMEM, -KZ_ECRYPTO or
 * -errno.
 */
int
keyfile_save(const char *path, const struct kz_identity *id,
             const char *passphrase, char *msg, size_t msg_len)
{
    return keyfile_save_kdf(path, id, passphrase, NULL, msg, msg_len);
}

/*
 * read_file(path, img, len, msg, msg_len): opens ${path}, checks that it is
 * a regular file with no group/other access, and reads at most
 * KEYFILE_SEALED_LEN + 1 bytes into ${img}.  Returns 0, -KZ_EPERM,
 * -KZ_EMALFORMED (too long) or -errno.
 */
static int
read_file(const char *path, uint8_t img[static KEYFILE_SEALED_LEN + 1],
          size_t *len, char *msg, size_t msg_len)
{
    struct stat st;
    size_t got = 0;
    int fd, rc = 0;

    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        rc = kz_err_from_errno(errno);
        say(msg, msg_len, "%s: cannot open the identity file: %s", path,
            strerror(-rc));
        return rc;
    }
    /* fstat of the open file: no window between the check and the read. */
    if (fstat(fd, &st) != 0) {
        rc = kz_err_from_errno(errno);
        say(msg, msg_len, "%s: %s", path, strerror(-rc));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        say(msg, msg_len, "%s: the identity file is not a regular file", path);
        rc = -KZ_EPERM;
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        say(msg, msg_len,
            "%s: mode %04o gives group/other access to the identity "
            "keys; refusing it (chmod 600 %s)",
            path, (unsigned)(st.st_mode & 07777), path);
        rc = -KZ_EPERM;
        goto out;
    }
    while (got < KEYFILE_SEALED_LEN + 1) {
        ssize_t n = read(fd, img + got, KEYFILE_SEALED_LEN + 1 - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = kz_err_from_errno(errno);
            say(msg, msg_len, "%s: cannot read: %s", path, strerror(-rc));
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    *len = got;
out:
    close(fd);
    return rc;
}

/*
 * decode(id, img, len, passphrase, path, msg, msg_len): parses the file
 * image through a bounded reader.  Returns as keyfile_load.
 */
static int
decode(struct kz_identity *id, const uint8_t *img, size_t len,
       const char *passphrase, const char *path, char *msg, size_t msg_len)
{
    uint8_t secret[SECRET_LEN];
    uint8_t check[CHECK_LEN];
    struct kz_aead_key key;
    struct kz_rd rd;
    const uint8_t *magic, *spk, *dpk, *body, *salt, *nonce, *ct, *sum;
    uint64_t ops, mem;
    uint8_t kind, seal;
    int rc = -KZ_EMALFORMED;

    sodium_memzero(&key, sizeof(key));
    sodium_memzero(secret, sizeof(secret));
    kz_rd_init(&rd, img, len);
    magic = kz_rd_bytes(&rd, MAGIC_LEN);
    if (magic == NULL || memcmp(magic, MAGIC, MAGIC_STEM_LEN) != 0) {
        say(msg, msg_len, "%s: not a kzsync identity file", path);
        goto out;
    }
    if (memcmp(magic, MAGIC, MAGIC_LEN) != 0) {
        say(msg, msg_len,
            "%s: identity file of another format version (this is "
            "kzsync-identity-1)",
            path);
        rc = -KZ_EVERSION;
        goto out;
    }
    kind = kz_rd_u8(&rd);
    seal = kz_rd_u8(&rd);
    spk = kz_rd_bytes(&rd, KZ_SIGN_PK_LEN);
    dpk = kz_rd_bytes(&rd, KZ_DH_LEN);
    if (rd.err ||
        (kind != KEYFILE_KIND_DEVICE && kind != KEYFILE_KIND_SERVER) ||
        seal > 1 ||
        rd.left != (seal ? KEYFILE_SEALED_LEN : KEYFILE_PLAIN_LEN) - OFF_BODY) {
        say(msg, msg_len, "%s: corrupt identity file (header or size)", path);
        goto out;
    }
    id->kind = kind;
    memcpy(id->sign_pk.b, spk, KZ_SIGN_PK_LEN);
    memcpy(id->dh_pk.b, dpk, KZ_DH_LEN);

    if (!seal) {
        body = kz_rd_bytes(&rd, SECRET_LEN);
        sum = kz_rd_bytes(&rd, CHECK_LEN);
        if (body == NULL || sum == NULL ||
            kz_hash(check, CHECK_LEN, img, OFF_BODY + SECRET_LEN) != 0 ||
            !kz_crypto_eq(check, sum, CHECK_LEN)) {
            say(msg, msg_len, "%s: corrupt identity file (check hash)", path);
            goto out;
        }
        memcpy(secret, body, SECRET_LEN);
    } else {
        ops = kz_rd_be64(&rd);
        mem = kz_rd_be64(&rd);
        salt = kz_rd_bytes(&rd, SALT_LEN);
        nonce = kz_rd_bytes(&rd, KZ_XAEAD_NONCE_LEN);
        ct = kz_rd_bytes(&rd, SECRET_LEN + KZ_AEAD_TAG_LEN);
        if (rd.err || !kdf_ok(ops, mem)) {
            say(msg, msg_len,
                "%s: corrupt identity file (Argon2id limits out of range)",
                path);
            goto out;
        }
        if (passphrase == NULL) {
            say(msg, msg_len,
                "%s: the identity file is passphrase-protected and no "
                "passphrase was given",
                path);
            rc = -KZ_EAUTH;
            goto out;
        }
        if ((rc = derive(&key, passphrase, salt, ops, mem)) != 0) {
            say(msg, msg_len, "%s: Argon2id could not get its memory", path);
            goto out;
        }
        rc = kz_xaead_decrypt(secret, ct, SECRET_LEN + KZ_AEAD_TAG_LEN, img,
                              SEALED_AD_LEN, nonce, &key);
        if (rc != 0) {
            say(msg, msg_len,
                "%s: wrong passphrase (or the identity file is corrupt)", path);
            rc = -KZ_EAUTH;
            goto out;
        }
        rc = -KZ_EMALFORMED;
    }
    memcpy(id->sign_sk.b, secret, KZ_SIGN_SK_LEN);
    memcpy(id->dh_sk.b, secret + KZ_SIGN_SK_LEN, KZ_DH_LEN);
    if (id_consistent(id) != 0) {
        say(msg, msg_len,
            "%s: corrupt identity file (public and secret keys differ)", path);
        goto out;
    }
    rc = 0;
out:
    sodium_memzero(secret, sizeof(secret));
    sodium_memzero(&key, sizeof(key));
    return rc;
}

/**
 * keyfile_load(path, id, passphrase, msg, msg_len): reads the identity at
 * ${path} into *${id}; ${passphrase} is needed for a sealed file and ignored
 * for a plain one.  On any error *${id} is zero.  Returns 0, -KZ_EPERM,
 * -KZ_EAUTH, -KZ_EMALFORMED, -KZ_EVERSION, -KZ_ENOMEM or -errno.
 */
int
keyfile_load(const char *path, struct kz_identity *id, const char *passphrase,
             char *msg, size_t msg_len)
{
    uint8_t img[KEYFILE_SEALED_LEN + 1];
    size_t len;
    int rc;

    sodium_memzero(id, sizeof(*id));
    if ((rc = read_file(path, img, &len, msg, msg_len)) != 0)
        goto out;
    rc = decode(id, img, len, passphrase, path, msg, msg_len);
out:
    sodium_memzero(img, sizeof(img));
    if (rc != 0)
        keyfile_wipe(id);
    return rc;
}
