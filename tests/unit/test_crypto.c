/*
 * test_crypto.c: common/crypto against Project Wycheproof
 * (../shared/testvectors/wycheproof/) plus round trips and forgeries.
 *
 * Every test case's result must match:
 *   valid       the operation succeeds with exactly the expected output;
 *   invalid     the operation fails (or cannot be expressed: a nonce or
 *               signature length that our fixed-size types cannot carry is
 *               "rejected by construction" and counted as such);
 *   acceptable  X25519 only.  We require libsodium's exact behaviour, which
 *               is what the protocol relies on: when the expected shared
 *               secret is all zeros (low-order public key) kz_dh must return
 *               -KZ_ECRYPTO; otherwise (twist points, non-canonical u) it
 *               must succeed with the expected output.
 * The number of cases run is asserted per file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "crypto.h"
#include "err.h"
#include "hex.h"

#include "t.h"

#define WP_DIR KZ_SHARED_DIR "/testvectors/wycheproof/"

static cJSON *
load(const char *path)
{
    FILE *f = fopen(path, "rb");
    long len;
    char *p;
    cJSON *j;

    if (f == NULL)
        T_FAIL_("cannot open %s (KZ_SHARED_DIR must hold the vectors)", path);
    ASSERT(fseek(f, 0, SEEK_END) == 0);
    len = ftell(f);
    ASSERT(len > 0);
    ASSERT(fseek(f, 0, SEEK_SET) == 0);
    p = malloc((size_t)len + 1);
    ASSERT(p != NULL);
    ASSERT(fread(p, 1, (size_t)len, f) == (size_t)len);
    p[len] = '\0';
    fclose(f);
    j = cJSON_Parse(p);
    free(p);
    if (j == NULL)
        T_FAIL_("cannot parse %s", path);
    return j;
}

static const char *
str(const cJSON *j, const char *key)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, key);

    ASSERT(cJSON_IsString(f));
    return f->valuestring;
}

/* hex(j, key, len): decoded field (malloc, at least 1 byte). */
static uint8_t *
hex(const cJSON *j, const char *key, size_t *len)
{
    const char *s = str(j, key);
    size_t n = strlen(s);
    uint8_t *p;

    ASSERT(n % 2 == 0);
    p = malloc(n / 2 + 1);
    ASSERT(p != NULL);
    ASSERT_OK(kz_hex_decode(p, n / 2, s));
    *len = n / 2;
    return p;
}

static int
is_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    size_t i;

    for (i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

static void
init(void)
{
    ASSERT_OK(kz_crypto_init());
}

TEST(wycheproof_x25519)
{
    cJSON *j;
    const cJSON *g, *t;
    int n = 0, n_valid = 0, n_acc_zero = 0, n_acc_ok = 0;

    init();
    j = load(WP_DIR "x25519_test.json");
    cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(j, "testGroups"))
    {
        ASSERT_STR_EQ(str(g, "curve"), "curve25519");
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(g, "tests"))
        {
            size_t pub_len, priv_len, sh_len;
            uint8_t *pub = hex(t, "public", &pub_len);
            uint8_t *priv = hex(t, "private", &priv_len);
            uint8_t *sh = hex(t, "shared", &sh_len);
            const char *res = str(t, "result");
            struct kz_dh_pk pk;
            struct kz_dh_sk sk;
            struct kz_dh_shared out;
            int rc;

            ASSERT_EQ(pub_len, 32);
            ASSERT_EQ(priv_len, 32);
            ASSERT_EQ(sh_len, 32);
            memcpy(pk.b, pub, 32);
            memcpy(sk.b, priv, 32);
            rc = kz_dh(&out, &sk, &pk);
            if (strcmp(res, "valid") == 0) {
                ASSERT_OK(rc);
                ASSERT_MEM_EQ(out.b, sh, 32);
                n_valid++;
            } else if (strcmp(res, "acceptable") == 0) {
                if (is_zero(sh, 32)) {
                    ASSERT_ERR(rc, -KZ_ECRYPTO);
                    ASSERT(is_zero(out.b, 32));
                    n_acc_zero++;
                } else {
                    ASSERT_OK(rc);
                    ASSERT_MEM_EQ(out.b, sh, 32);
                    n_acc_ok++;
                }
            } else {
                T_FAIL_("tcId %d: unexpected result %s",
                        cJSON_GetObjectItemCaseSensitive(t, "tcId")->valueint,
                        res);
            }
            n++;
            free(pub);
            free(priv);
            free(sh);
        }
    }
    cJSON_Delete(j);
    ASSERT_EQ(n, 518);
    ASSERT_EQ(n_valid, 264);
    ASSERT_EQ(n_acc_zero, 31);
    ASSERT_EQ(n_acc_ok, 223);
}

TEST(wycheproof_ed25519)
{
    cJSON *j;
    const cJSON *g, *t;
    int n = 0, n_ok = 0, n_bad = 0;

    init();
    j = load(WP_DIR "ed25519_test.json");
    cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(j, "testGroups"))
    {
        const cJSON *pkj = cJSON_GetObjectItemCaseSensitive(g, "publicKey");
        size_t pk_len;
        uint8_t *pkb = hex(pkj, "pk", &pk_len);
        struct kz_sign_pk pk;

        ASSERT_EQ(pk_len, 32);
        memcpy(pk.b, pkb, 32);
        free(pkb);
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(g, "tests"))
        {
            size_t msg_len, sig_len;
            uint8_t *msg = hex(t, "msg", &msg_len);
            uint8_t *sigb = hex(t, "sig", &sig_len);
            int valid = strcmp(str(t, "result"), "valid") == 0;
            int ok = 0;

            ASSERT(valid || strcmp(str(t, "result"), "invalid") == 0);
            /* A signature that is not 64 bytes cannot be a struct
             * kz_sign_sig: rejected by construction. */
            if (sig_len == KZ_SIGN_SIG_LEN) {
                struct kz_sign_sig sig;

                memcpy(sig.b, sigb, 64);
                ok = kz_sign_verify(&sig, msg, msg_len, &pk) == 0;
            }
            if (ok != valid)
                T_FAIL_("ed25519 tcId %d: got %d, want %d",
                        cJSON_GetObjectItemCaseSensitive(t, "tcId")->valueint,
                        ok, valid);
            n_ok += ok;
            n_bad += !ok;
            n++;
            free(msg);
            free(sigb);
        }
    }
    cJSON_Delete(j);
    ASSERT_EQ(n, 151);
    ASSERT_EQ(n_ok, 88);
    ASSERT_EQ(n_bad, 63);
}

/*
 * aead_file(path, iv_bits, x): runs every case; groups whose nonce is not
 * ${iv_bits} must be invalid and are counted as rejected by construction.
 */
static void
aead_file(const char *path, int iv_bits, int x, int want_run, int want_rej)
{
    cJSON *j = load(path);
    const cJSON *g, *t;
    int n_run = 0, n_rej = 0, n_valid = 0;

    cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(j, "testGroups"))
    {
        int iv_size = cJSON_GetObjectItemCaseSensitive(g, "ivSize")->valueint;
        int key_size = cJSON_GetObjectItemCaseSensitive(g, "keySize")->valueint;
        int tag_size = cJSON_GetObjectItemCaseSensitive(g, "tagSize")->valueint;

        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(g, "tests"))
        {
            size_t key_len, iv_len, aad_len, msg_len, ct_len, tag_len;
            uint8_t *key = hex(t, "key", &key_len);
            uint8_t *iv = hex(t, "iv", &iv_len);
            uint8_t *aad = hex(t, "aad", &aad_len);
            uint8_t *msg = hex(t, "msg", &msg_len);
            uint8_t *ct = hex(t, "ct", &ct_len);
            uint8_t *tag = hex(t, "tag", &tag_len);
            const char *res = str(t, "result");
            int valid = strcmp(res, "valid") == 0;
            struct kz_aead_key k;
            uint8_t *full, *out;
            int rc;

            ASSERT(valid || strcmp(res, "invalid") == 0);
            if (iv_size != iv_bits || key_size != 256 || tag_size != 128 ||
                tag_len != 16 || key_len != 32) {
                ASSERT(!valid);
                n_rej++;
                goto next;
            }
            ASSERT_EQ(iv_len * 8, (size_t)iv_bits);
            memcpy(k.b, key, 32);
            full = malloc(ct_len + 16 + 1);
            out = malloc(ct_len + 16 + 1);
            ASSERT(full != NULL && out != NULL);
            memcpy(full, ct, ct_len);
            memcpy(full + ct_len, tag, 16);
            rc = x ? kz_xaead_decrypt(out, full, ct_len + 16, aad, aad_len, iv,
                                      &k)
                   : kz_cpaead_decrypt(out, full, ct_len + 16, aad, aad_len, iv,
                                       &k);
            if (valid) {
                ASSERT_OK(rc);
                ASSERT_EQ(msg_len, ct_len);
                ASSERT_MEM_EQ(out, msg, msg_len);
                rc = x ? kz_xaead_encrypt(out, msg, msg_len, aad, aad_len, iv,
                                          &k)
                       : kz_cpaead_encrypt(out, msg, msg_len, aad, aad_len, iv,
                                           &k);
                ASSERT_OK(rc);
                ASSERT_MEM_EQ(out, full, ct_len + 16);
                n_valid++;
            } else {
                ASSERT_ERR(rc, -KZ_EAUTH);
            }
            n_run++;
            free(full);
            free(out);
        next:
            free(key);
            free(iv);
            free(aad);
            free(msg);
            free(ct);
            free(tag);
        }
    }
    cJSON_Delete(j);
    fprintf(stderr, "   %s: %d run (%d valid), %d rejected by construction\n",
            path, n_run, n_valid, n_rej);
    ASSERT_EQ(n_run, want_run);
    ASSERT_EQ(n_rej, want_rej);
}

TEST(wycheproof_chacha20_poly1305)
{
    init();
    aead_file(WP_DIR "chacha20_poly1305_test.json", 96, 0, 316, 9);
}

TEST(wycheproof_xchacha20_poly1305)
{
    init();
    aead_file(WP_DIR "xchacha20_poly1305_test.json", 192, 1, 306, 9);
}

TEST(sign_roundtrip_and_forgery)
{
    struct kz_sign_pk pk, pk2;
    struct kz_sign_sk sk, sk2;
    struct kz_sign_sig sig;
    uint8_t seed[32];
    uint8_t msg[] = "changeset header and ciphertext";

    init();
    ASSERT_OK(kz_sign_keypair(kz_env_system(), &pk, &sk));
    ASSERT_OK(kz_sign_detached(&sig, msg, sizeof(msg), &sk));
    ASSERT_OK(kz_sign_verify(&sig, msg, sizeof(msg), &pk));
    msg[0] ^= 1;
    ASSERT_ERR(kz_sign_verify(&sig, msg, sizeof(msg), &pk), -KZ_EAUTH);
    msg[0] ^= 1;
    sig.b[63] ^= 0x10;
    ASSERT_ERR(kz_sign_verify(&sig, msg, sizeof(msg), &pk), -KZ_EAUTH);
    /* Seeded key pairs are deterministic. */
    memset(seed, 7, sizeof(seed));
    ASSERT_OK(kz_sign_seed_keypair(&pk, &sk, seed));
    ASSERT_OK(kz_sign_seed_keypair(&pk2, &sk2, seed));
    ASSERT_MEM_EQ(pk.b, pk2.b, 32);
    ASSERT(kz_crypto_eq(sk.b, sk2.b, 64));
    kz_crypto_wipe(&sk, sizeof(sk));
    kz_crypto_wipe(&sk2, sizeof(sk2));
}

TEST(dh_agree)
{
    struct kz_dh_pk pa, pb, p2;
    struct kz_dh_sk sa, sb;
    struct kz_dh_shared s1, s2;

    init();
    ASSERT_OK(kz_dh_keypair(kz_env_system(), &pa, &sa));
    ASSERT_OK(kz_dh_keypair(kz_env_system(), &pb, &sb));
    ASSERT_OK(kz_dh_public(&p2, &sa));
    ASSERT_MEM_EQ(p2.b, pa.b, 32);
    ASSERT_OK(kz_dh(&s1, &sa, &pb));
    ASSERT_OK(kz_dh(&s2, &sb, &pa));
    ASSERT(kz_crypto_eq(s1.b, s2.b, 32));
    memset(pb.b, 0, 32);
    memset(s1.b, 0xaa, 32);
    ASSERT_ERR(kz_dh(&s1, &sa, &pb), -KZ_ECRYPTO);
    ASSERT(is_zero(s1.b, 32));
}

TEST(seal_roundtrip)
{
    struct kz_dh_pk pk, pk2;
    struct kz_dh_sk sk, sk2;
    uint8_t key[32], ct[32 + KZ_SEAL_OVERHEAD], pt[32];

    init();
    memset(key, 0x42, sizeof(key));
    ASSERT_OK(kz_dh_keypair(kz_env_system(), &pk, &sk));
    ASSERT_OK(kz_dh_keypair(kz_env_system(), &pk2, &sk2));
    ASSERT_OK(kz_seal(ct, key, sizeof(key), &pk));
    ASSERT_OK(kz_seal_open(pt, ct, sizeof(ct), &pk, &sk));
    ASSERT_MEM_EQ(pt, key, 32);
    ASSERT_ERR(kz_seal_open(pt, ct, sizeof(ct), &pk2, &sk2), -KZ_EAUTH);
    ASSERT(is_zero(pt, 32));
    ct[10] ^= 1;
    ASSERT_ERR(kz_seal_open(pt, ct, sizeof(ct), &pk, &sk), -KZ_EAUTH);
    ASSERT_ERR(kz_seal_open(pt, ct, KZ_SEAL_OVERHEAD - 1, &pk, &sk),
               -KZ_EMALFORMED);
}

TEST(xaead_roundtrip)
{
    struct kz_aead_key k;
    uint8_t nonce[24], buf[64 + 16], out[64];
    const uint8_t ad[] = "header";

    init();
    memset(k.b, 1, 32);
    memset(nonce, 2, 24);
    memset(buf, 'x', 64);
    /* In place. */
    ASSERT_OK(kz_xaead_encrypt(buf, buf, 64, ad, sizeof(ad), nonce, &k));
    ASSERT_OK(
        kz_xaead_decrypt(out, buf, sizeof(buf), ad, sizeof(ad), nonce, &k));
    ASSERT_EQ(out[0], 'x');
    ASSERT_ERR(
        kz_xaead_decrypt(out, buf, sizeof(buf), ad, sizeof(ad) - 1, nonce, &k),
        -KZ_EAUTH);
    ASSERT(is_zero(out, 64));
    ASSERT_ERR(kz_xaead_decrypt(out, buf, 15, NULL, 0, nonce, &k),
               -KZ_EMALFORMED);
}

TEST(hash_known_answer)
{
    /* BLAKE2b-512("") and BLAKE2b-512("abc") from RFC 7693 / the
     * reference implementation. */
    static const char *empty =
        "786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419"
        "d25e1031afee585313896444934eb04b903a685b1448b755d56f701afe9be2ce";
    static const char *abc =
        "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
        "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923";
    uint8_t out[64], want[64], k[32];

    init();
    ASSERT_OK(kz_hash(out, 64, NULL, 0));
    ASSERT_OK(kz_hex_decode(want, 64, empty));
    ASSERT_MEM_EQ(out, want, 64);
    ASSERT_OK(kz_hash(out, 64, "abc", 3));
    ASSERT_OK(kz_hex_decode(want, 64, abc));
    ASSERT_MEM_EQ(out, want, 64);
    ASSERT_ERR(kz_hash(out, 15, "abc", 3), -KZ_EINVAL);
    ASSERT_ERR(kz_hash(out, 65, "abc", 3), -KZ_EINVAL);
    memset(k, 0, sizeof(k));
    ASSERT_OK(kz_hash_keyed(out, 32, "abc", 3, k));
    ASSERT_OK(kz_hash(want, 32, "abc", 3));
    ASSERT(!kz_crypto_eq(out, want, 32)); /* keyed mode differs */
}

T_MAIN(T(wycheproof_x25519), T(wycheproof_ed25519),
       T(wycheproof_chacha20_poly1305), T(wycheproof_xchacha20_poly1305),
       T(sign_roundtrip_and_forgery), T(dh_agree), T(seal_roundtrip),
       T(xaead_roundtrip), T(hash_known_answer))
