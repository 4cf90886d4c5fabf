/*
 * test_keyfile.c: common/keyfile: round trips (plain, sealed, server), the
 * 0600 rule, wrong passphrases, corrupt files (every byte flipped, every
 * length), atomic replace, and allocation-failure loops.
 *
 * Sealed files use Argon2id at crypto_pwhash_*_MIN so the tests stay fast;
 * the production default (MODERATE) is exercised once, unless
 * KZ_SKIP_SLOW is set.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "alloc.h"
#include "crypto.h"
#include "err.h"
#include "keyfile.h"

#include "t.h"

static const struct keyfile_kdf low_kdf = {crypto_pwhash_OPSLIMIT_MIN,
                                           crypto_pwhash_MEMLIMIT_MIN};

/* A deterministic env: randomness is a counter stream. */
static void
det_random(void *data, void *p, size_t len)
{
    unsigned *ctr = data;
    uint8_t *b = p;
    size_t i;

    for (i = 0; i < len; i++)
        b[i] = (uint8_t)((*ctr)++ * 131u + 7u);
}

static uint64_t
zero_ms(void *data)
{
    (void)data;
    return 0;
}

static unsigned det_ctr;
static const struct kz_env det_env = {zero_ms, zero_ms, det_random, &det_ctr};

struct tmp {
    char dir[64];   /* mkdtemp directory */
    char path[128]; /* dir/identity */
};

static void
tmp_init(struct tmp *t)
{
    ASSERT_OK(kz_crypto_init());
    snprintf(t->dir, sizeof(t->dir), "/tmp/kz-keyfile-XXXXXX");
    ASSERT(mkdtemp(t->dir) != NULL);
    snprintf(t->path, sizeof(t->path), "%s/identity", t->dir);
}

/* Removes the directory; fails the test if a stray temp file is left. */
static void
tmp_done(struct tmp *t)
{
    unlink(t->path);
    if (rmdir(t->dir) != 0)
        T_FAIL_("%s not empty (temporary file left behind?)", t->dir);
}

static void
assert_id_eq(const struct kz_identity *a, const struct kz_identity *b)
{
    ASSERT_EQ(a->kind, b->kind);
    ASSERT_MEM_EQ(a->sign_pk.b, b->sign_pk.b, KZ_SIGN_PK_LEN);
    ASSERT_MEM_EQ(a->sign_sk.b, b->sign_sk.b, KZ_SIGN_SK_LEN);
    ASSERT_MEM_EQ(a->dh_pk.b, b->dh_pk.b, KZ_DH_LEN);
    ASSERT_MEM_EQ(a->dh_sk.b, b->dh_sk.b, KZ_DH_LEN);
}

static void
assert_zero(const struct kz_identity *id)
{
    ASSERT(sodium_is_zero((const unsigned char *)id, sizeof(*id)));
}

/* contains(hay, n, needle, m): 1 if ${needle} occurs in ${hay}. */
static int
contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
    size_t i;

    for (i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return 1;
    return 0;
}

static size_t
read_all(const char *path, uint8_t *p, size_t max)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    ASSERT(f != NULL);
    n = fread(p, 1, max, f);
    fclose(f);
    return n;
}

static void
write_all(const char *path, const uint8_t *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    ASSERT(fd >= 0);
    ASSERT(fchmod(fd, 0600) == 0);
    ASSERT_EQ(write(fd, p, len), (long long)len);
    close(fd);
}

TEST(generate_is_two_independent_pairs)
{
    struct kz_identity a, b;

    ASSERT_OK(kz_crypto_init());
    ASSERT_OK(keyfile_generate(&a, kz_env_system()));
    ASSERT_OK(keyfile_generate(&b, kz_env_system()));
    ASSERT_EQ(a.kind, KEYFILE_KIND_DEVICE);
    ASSERT(memcmp(a.sign_pk.b, b.sign_pk.b, 32) != 0);
    ASSERT(memcmp(a.dh_pk.b, b.dh_pk.b, 32) != 0);
    /* Not derived from one another: the DH secret is not the sign seed. */
    ASSERT(memcmp(a.sign_sk.b, a.dh_sk.b, 32) != 0);
    keyfile_wipe(&a);
    assert_zero(&a);
    keyfile_wipe(&b);
    keyfile_wipe(NULL);
}

TEST(plain_round_trip_mode_0600)
{
    struct tmp t;
    struct kz_identity id, got;
    struct stat st;
    char msg[KEYFILE_MSG_LEN];

    tmp_init(&t);
    ASSERT_OK(keyfile_generate(&id, &det_env));
    ASSERT_OK(keyfile_save(t.path, &id, NULL, msg, sizeof(msg)));
    ASSERT(stat(t.path, &st) == 0);
    ASSERT_EQ(st.st_mode & 07777, 0600);
    ASSERT_EQ(st.st_size, KEYFILE_PLAIN_LEN);
    ASSERT_OK(keyfile_load(t.path, &got, NULL, msg, sizeof(msg)));
    assert_id_eq(&id, &got);
    /* A passphrase is ignored for a plain file. */
    ASSERT_OK(keyfile_load(t.path, &got, "whatever", NULL, 0));
    assert_id_eq(&id, &got);
    keyfile_wipe(&id);
    keyfile_wipe(&got);
    tmp_done(&t);
}

TEST(group_or_other_access_refused)
{
    static const mode_t modes[] = {0644, 0640, 0604, 0660, 0601, 0610, 0666};
    struct tmp t;
    struct kz_identity id, got;
    char msg[KEYFILE_MSG_LEN], want[64];
    size_t i;

    tmp_init(&t);
    ASSERT_OK(keyfile_generate(&id, &det_env));
    ASSERT_OK(keyfile_save(t.path, &id, NULL, NULL, 0));
    for (i = 0; i < KZ_ARRAY_SIZE(modes); i++) {
        ASSERT(chmod(t.path, modes[i]) == 0);
        memset(&got, 0xaa, sizeof(got));
        msg[0] = '\0';
        ASSERT_ERR(keyfile_load(t.path, &got, NULL, msg, sizeof(msg)),
                   -KZ_EPERM);
        assert_zero(&got);
        /* The message names the file and the mode. */
        ASSERT(strstr(msg, t.path) != NULL);
        snprintf(want, sizeof(want), "mode %04o", (unsigned)modes[i]);
        if (strstr(msg, want) == NULL)
            T_FAIL_("message lacks \"%s\": %s", want, msg);
    }
    /* 0400 is fine. */
    ASSERT(chmod(t.path, 0400) == 0);
    ASSERT_OK(keyfile_load(t.path, &got, NULL, NULL, 0));
    keyfile_wipe(&got);
    keyfile_wipe(&id);
    tmp_done(&t);
}

TEST(not_a_regular_file_refused)
{
    struct tmp t;
    struct kz_identity got;
    char msg[KEYFILE_MSG_LEN];

    tmp_init(&t);
    ASSERT(mkdir(t.path, 0700) == 0);
    ASSERT_ERR(keyfile_load(t.path, &got, NULL, msg, sizeof(msg)), -KZ_EPERM);
    ASSERT(strstr(msg, "not a regular file") != NULL);
    ASSERT(rmdir(t.path) == 0);
    ASSERT_ERR(keyfile_load(t.path, &got, NULL, msg, sizeof(msg)), -ENOENT);
    ASSERT(strstr(msg, t.path) != NULL);
    assert_zero(&got);
    tmp_done(&t);
}

TEST(sealed_round_trip_and_wrong_passphrase)
{
    struct tmp t;
    struct kz_identity id, got;
    struct stat st;
    uint8_t img[KEYFILE_SEALED_LEN + 8];
    char msg[KEYFILE_MSG_LEN];

    tmp_init(&t);
    ASSERT_OK(keyfile_generate(&id, &det_env));
    ASSERT_OK(keyfile_save_kdf(t.path, &id, "correct horse", &low_kdf, msg,
                               sizeof(msg)));
    ASSERT(stat(t.path, &st) == 0);
    ASSERT_EQ(st.st_mode & 07777, 0600);
    ASSERT_EQ(read_all(t.path, img, sizeof(img)), KEYFILE_SEALED_LEN);
    /* The secret keys do not appear in the file. */
    ASSERT(!contains(img, KEYFILE_SEALED_LEN, id.sign_sk.b, 32));
    ASSERT(!contains(img, KEYFILE_SEALED_LEN, id.dh_sk.b, 32));

    ASSERT_OK(keyfile_load(t.path, &got, "correct horse", msg, sizeof(msg)));
    assert_id_eq(&id, &got);

    memset(&got, 0x55, sizeof(got));
    ASSERT_ERR(keyfile_load(t.path, &got, "correct horsf", msg, sizeof(msg)),
               -KZ_EAUTH);
    assert_zero(&got);
    ASSERT(strstr(msg, "wrong passphrase") != NULL);
    ASSERT(strstr(msg, t.path) != NULL);

    ASSERT_ERR(keyfile_load(t.path, &got, "", msg, sizeof(msg)), -KZ_EAUTH);
    ASSERT_ERR(keyfile_load(t.path, &got, NULL, msg, sizeof(msg)), -KZ_EAUTH);
    ASSERT(strstr(msg, "passphrase-protected") != NULL);
    assert_zero(&got);
    keyfile_wipe(&id);
    tmp_done(&t);
}

TEST(save_refuses_bad_arguments)
{
    struct tmp t;
    struct kz_identity id;
    struct keyfile_kdf k;
    char msg[KEYFILE_MSG_LEN];

    tmp_init(&t);
    ASSERT_OK(keyfile_generate(&id, &det_env));
    ASSERT_ERR(keyfile_save_kdf(t.path, &id, "", &low_kdf, msg, sizeof(msg)),
               -KZ_EINVAL);
    k = low_kdf;
    k.memlimit = crypto_pwhash_MEMLIMIT_MIN - 1;
    ASSERT_ERR(keyfile_save_kdf(t.path, &id, "pw", &k, msg, sizeof(msg)),
               -KZ_EINVAL);
    k = low_kdf;
    k.opslimit = crypto_pwhash_OPSLIMIT_SENSITIVE + 1;
    ASSERT_ERR(keyfile_save_kdf(t.path, &id, "pw", &k, msg, sizeof(msg)),
               -KZ_EINVAL);
    /* An inconsistent identity (pk not of sk) is refused. */
    id.dh_pk.b[0] ^= 1;
    ASSERT_ERR(keyfile_save(t.path, &id, NULL, msg, sizeof(msg)), -KZ_EINVAL);
    id.dh_pk.b[0] ^= 1;
    id.kind = 7;
    ASSERT_ERR(keyfile_save(t.path, &id, NULL, msg, sizeof(msg)), -KZ_EINVAL);
    keyfile_wipe(&id);
    ASSERT(access(t.path, F_OK) != 0);
    /* A directory that does not exist: -ENOENT, nothing left behind. */
    ASSERT_OK(keyfile_generate(&id, &det_env));
    ASSERT_ERR(keyfile_save("/nonexistent-kz/dir/identity", &id, NULL, msg,
                            sizeof(msg)),
               -ENOENT);
    keyfile_wipe(&id);
    tmp_done(&t);
}

TEST(server_identity_round_trip)
{
    struct tmp t;
    struct kz_identity id, got;

    tmp_init(&t);
    ASSERT_OK(keyfile_generate_server(&id, &det_env));
    ASSERT_EQ(id.kind, KEYFILE_KIND_SERVER);
    ASSERT(sodium_is_zero(id.sign_pk.b, 32));
    ASSERT(sodium_is_zero(id.sign_sk.b, 64));
    ASSERT_OK(keyfile_save(t.path, &id, NULL, NULL, 0));
    ASSERT_OK(keyfile_load(t.path, &got, NULL, NULL, 0));
    assert_id_eq(&id, &got);
    ASSERT_OK(keyfile_save_kdf(t.path, &id, "pw", &low_kdf, NULL, 0));
    ASSERT_OK(keyfile_load(t.path, &got, "pw", NULL, 0));
    assert_id_eq(&id, &got);
    keyfile_wipe(&id);
    keyfile_wipe(&got);
    tmp_done(&t);
}

TEST(save_replaces_atomically)
{
    struct tmp t;
    struct kz_identity a, b, got;

    tmp_init(&t);
    ASSERT_OK(keyfile_generate(&a, &det_env));
    ASSERT_OK(keyfile_generate(&b, &det_env));
    ASSERT_OK(keyfile_save(t.path, &a, NULL, NULL, 0));
    ASSERT(chmod(t.path, 0644) == 0); /* the new file is 0600 regardless */
    ASSERT_OK(keyfile_save(t.path, &b, NULL, NULL, 0));
    ASSERT_OK(keyfile_load(t.path, &got, NULL, NULL, 0));
    assert_id_eq(&b, &got);
    keyfile_wipe(&a);
    keyfile_wipe(&b);
    keyfile_wipe(&got);
    tmp_done(&t); /* fails if a .tmp-XXXXXX was left */
}

/* Every single-byte change and every truncation of ${img} must be refused. */
static void
corrupt_all(const char *path, const uint8_t *img, size_t len, const char *pass)
{
    uint8_t buf[KEYFILE_SEALED_LEN + 2];
    struct kz_identity got;
    size_t i;
    int rc;

    for (i = 0; i < len; i++) {
        memcpy(buf, img, len);
        buf[i] ^= (uint8_t)(1u << (i % 8));
        write_all(path, buf, len);
        rc = keyfile_load(path, &got, pass, NULL, 0);
        if (rc == 0)
            T_FAIL_("byte %zu flipped: accepted", i);
        ASSERT(rc == -KZ_EMALFORMED || rc == -KZ_EAUTH || rc == -KZ_EVERSION);
        assert_zero(&got);
    }
    for (i = 0; i < len; i++) {
        write_all(path, img, i);
        ASSERT_ERR(keyfile_load(path, &got, pass, NULL, 0), -KZ_EMALFORMED);
    }
    memcpy(buf, img, len);
    buf[len] = 0;
    write_all(path, buf, len + 1);
    ASSERT_ERR(keyfile_load(path, &got, pass, NULL, 0), -KZ_EMALFORMED);
    assert_zero(&got);
}

TEST(corrupt_plain_file_refused)
{
    struct tmp t;
    struct kz_identity id;
    uint8_t img[KEYFILE_SEALED_LEN + 1];
    size_t len;

    tmp_init(&t);
    ASSERT_OK(keyfile_generate(&id, &det_env));
    ASSERT_OK(keyfile_save(t.path, &id, NULL, NULL, 0));
    len = read_all(t.path, img, sizeof(img));
    ASSERT_EQ(len, KEYFILE_PLAIN_LEN);
    corrupt_all(t.path, img, len, NULL);
    keyfile_wipe(&id);
    tmp_done(&t);
}

TEST(corrupt_sealed_file_refused)
{
    struct tmp t;
    struct kz_identity id;
    uint8_t img[KEYFILE_SEALED_LEN + 1];
    size_t len;

    tmp_init(&t);
    ASSERT_OK(keyfile_generate(&id, &det_env));
    ASSERT_OK(keyfile_save_kdf(t.path, &id, "pw", &low_kdf, NULL, 0));
    len = read_all(t.path, img, sizeof(img));
    ASSERT_EQ(len, KEYFILE_SEALED_LEN);
    corrupt_all(t.path, img, len, "pw");
    keyfile_wipe(&id);
    tmp_done(&t);
}

TEST(exact_bytes_negative)
{
    struct tmp t;
    struct kz_identity got;
    char msg[KEYFILE_MSG_LEN];
    uint8_t img[KEYFILE_SEALED_LEN];

    tmp_init(&t);
    /* Another format version: the stem matches, the digit does not. */
    memset(img, 0, sizeof(img));
    memcpy(img, "kzsync-identity-2\n", 18);
    write_all(t.path, img, KEYFILE_PLAIN_LEN);
    ASSERT_ERR(keyfile_load(t.path, &got, NULL, msg, sizeof(msg)),
               -KZ_EVERSION);
    ASSERT(strstr(msg, "another format version") != NULL);
    /* Not ours at all. */
    write_all(t.path, (const uint8_t *)"-----BEGIN OPENSSH", 18);
    ASSERT_ERR(keyfile_load(t.path, &got, NULL, msg, sizeof(msg)),
               -KZ_EMALFORMED);
    ASSERT(strstr(msg, "not a kzsync identity file") != NULL);
    /* Empty file. */
    write_all(t.path, img, 0);
    ASSERT_ERR(keyfile_load(t.path, &got, NULL, msg, sizeof(msg)),
               -KZ_EMALFORMED);
    /* Right size, all-zero keys: the check hash fails. */
    memcpy(img, "kzsync-identity-1\n", 18);
    img[18] = 1;
    write_all(t.path, img, KEYFILE_PLAIN_LEN);
    ASSERT_ERR(keyfile_load(t.path, &got, NULL, msg, sizeof(msg)),
               -KZ_EMALFORMED);
    /* Sealed, memlimit 2^63: refused before Argon2id runs. */
    memset(img + 20, 0, sizeof(img) - 20);
    img[19] = 1;
    img[84 + 7] = 1; /* opslimit 1 */
    img[92] = 0x80;  /* memlimit 2^63 */
    write_all(t.path, img, KEYFILE_SEALED_LEN);
    ASSERT_ERR(keyfile_load(t.path, &got, "pw", msg, sizeof(msg)),
               -KZ_EMALFORMED);
    ASSERT(strstr(msg, "limits out of range") != NULL);
    assert_zero(&got);
    tmp_done(&t);
}

TEST(alloc_failure_loop)
{
    struct tmp t;
    struct kz_identity id, got;
    long n;
    int rc, ok = 0;

    tmp_init(&t);
    ASSERT_OK(keyfile_generate(&id, &det_env));
    for (n = 0; n < 50 && ok < 3; n++) {
        kz_alloc_fail_after(n);
        rc = keyfile_save(t.path, &id, NULL, NULL, 0);
        kz_alloc_fail_after(-1);
        if (rc != 0 && rc != -KZ_ENOMEM)
            T_FAIL_("n=%ld: save %d (%s)", n, rc, kz_err_name(rc));
        kz_alloc_fail_after(n);
        rc = keyfile_save_kdf(t.path, &id, "pw", &low_kdf, NULL, 0);
        kz_alloc_fail_after(-1);
        if (rc != 0 && rc != -KZ_ENOMEM)
            T_FAIL_("n=%ld: save sealed %d (%s)", n, rc, kz_err_name(rc));
        if (rc == 0) {
            kz_alloc_fail_after(n);
            rc = keyfile_load(t.path, &got, "pw", NULL, 0);
            kz_alloc_fail_after(-1);
            if (rc != 0 && rc != -KZ_ENOMEM)
                T_FAIL_("n=%ld: load %d (%s)", n, rc, kz_err_name(rc));
            if (rc == 0) {
                assert_id_eq(&id, &got);
                ok++;
            }
        }
    }
    ASSERT_GT(ok, 0);
    keyfile_wipe(&id);
    keyfile_wipe(&got);
    tmp_done(&t);
}

TEST(moderate_default_round_trip)
{
    struct tmp t;
    struct kz_identity id, got;
    uint8_t img[KEYFILE_SEALED_LEN];

    if (getenv("KZ_SKIP_SLOW") != NULL)
        return;
    tmp_init(&t);
    ASSERT_OK(keyfile_generate(&id, kz_env_system()));
    ASSERT_OK(keyfile_save(t.path, &id, "pw", NULL, 0));
    ASSERT_EQ(read_all(t.path, img, sizeof(img)), KEYFILE_SEALED_LEN);
    /* opslimit and memlimit are MODERATE, big-endian at 84 and 92. */
    ASSERT_EQ(img[84 + 7], crypto_pwhash_OPSLIMIT_MODERATE);
    ASSERT_EQ(((uint32_t)img[92 + 4] << 24) | ((uint32_t)img[92 + 5] << 16),
              crypto_pwhash_MEMLIMIT_MODERATE);
    ASSERT_OK(keyfile_load(t.path, &got, "pw", NULL, 0));
    assert_id_eq(&id, &got);
    keyfile_wipe(&id);
    keyfile_wipe(&got);
    tmp_done(&t);
}

T_MAIN(T(generate_is_two_independent_pairs), T(plain_round_trip_mode_0600),
       T(group_or_other_access_refused), T(not_a_regular_file_refused),
       T(sealed_round_trip_and_wrong_passphrase), T(save_refuses_bad_arguments),
       T(server_identity_round_trip), T(save_replaces_atomically),
       T(corrupt_plain_file_refused), T(corrupt_sealed_file_refused),
       T(exact_bytes_negative), T(alloc_failure_loop),
       T(moderate_default_round_trip))
