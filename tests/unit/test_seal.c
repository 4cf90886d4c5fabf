/*
 * test_seal.c: sealed changeset bodies and signed key envelopes.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "alloc.h"
#include "err.h"
#include "seal.h"

#include "t.h"

static void
keys(struct kz_sign_pk *spk, struct kz_sign_sk *ssk, struct kz_dh_pk *dpk,
     struct kz_dh_sk *dsk)
{
    ASSERT_OK(kz_sign_keypair(kz_env_system(), spk, ssk));
    ASSERT_OK(kz_dh_keypair(kz_env_system(), dpk, dsk));
}

TEST(body_round_trip_and_tamper)
{
    struct kz_aead_key k, other;
    static const uint8_t hdr[] = "header bytes";
    static const uint8_t body[] = "the body of a changeset";
    uint8_t *s = NULL, *p = NULL;
    size_t sl = 0, pl = 0, i;

    randombytes_buf(k.b, sizeof(k.b));
    randombytes_buf(other.b, sizeof(other.b));
    ASSERT_OK(kz_seal_body(&s, &sl, body, sizeof(body), hdr, sizeof(hdr), &k,
                           kz_env_system()));
    ASSERT_EQ(sl, sizeof(body) + KZ_SEAL_BODY_OVERHEAD);
    ASSERT(memmem(s, sl, "changeset", 9) == NULL); /* no plaintext */
    ASSERT_OK(kz_open_body(&p, &pl, s, sl, hdr, sizeof(hdr), &k));
    ASSERT_EQ(pl, sizeof(body));
    ASSERT_MEM_EQ(p, body, pl);
    kz_free(p);
    ASSERT_ERR(kz_open_body(&p, &pl, s, sl, hdr, sizeof(hdr), &other),
               -KZ_EAUTH);
    /* The header is bound: another header does not open it. */
    ASSERT_ERR(kz_open_body(&p, &pl, s, sl, hdr, sizeof(hdr) - 1, &k),
               -KZ_EAUTH);
    for (i = 0; i < sl; i++) {
        s[i] ^= 0x01;
        ASSERT_ERR(kz_open_body(&p, &pl, s, sl, hdr, sizeof(hdr), &k),
                   -KZ_EAUTH);
        s[i] ^= 0x01;
    }
    ASSERT_ERR(kz_open_body(&p, &pl, s, KZ_SEAL_BODY_OVERHEAD - 1, hdr,
                            sizeof(hdr), &k),
               -KZ_EMALFORMED);
    kz_free(s);
}

TEST(envelope_round_trip)
{
    struct kz_sign_pk spk;
    struct kz_sign_sk ssk;
    struct kz_dh_pk dpk, dpk2;
    struct kz_dh_sk dsk, dsk2;
    struct kz_aead_key k, got;
    struct kz_env_info info;
    uint8_t *e = NULL;
    size_t el = 0;

    keys(&spk, &ssk, &dpk, &dsk);
    ASSERT_OK(kz_dh_keypair(kz_env_system(), &dpk2, &dsk2));
    randombytes_buf(k.b, sizeof(k.b));
    ASSERT_OK(kz_env_make(&e, &el, "site:HAN", 3, &k, &dpk, &ssk, &spk));
    ASSERT_OK(kz_env_decode(&info, e, el, NULL));
    ASSERT_STR_EQ(info.scope, "site:HAN");
    ASSERT_U64_EQ(info.epoch, 3);
    ASSERT_MEM_EQ(info.sealer.b, spk.b, 32);
    ASSERT_OK(kz_env_open(&got, &info, &dpk, &dsk));
    ASSERT_MEM_EQ(got.b, k.b, 32);
    /* Only its recipient opens it. */
    ASSERT_ERR(kz_env_open(&got, &info, &dpk2, &dsk2), -KZ_EINVAL);
    memcpy(info.recipient.b, dpk2.b, 32);
    ASSERT_ERR(kz_env_open(&got, &info, &dpk2, &dsk2), -KZ_EAUTH);
    kz_free(e);
}

TEST(envelope_every_flipped_byte_is_refused)
{
    struct kz_sign_pk spk;
    struct kz_sign_sk ssk;
    struct kz_dh_pk dpk;
    struct kz_dh_sk dsk;
    struct kz_aead_key k;
    struct kz_env_info info;
    uint8_t *e = NULL;
    size_t el = 0, i;

    keys(&spk, &ssk, &dpk, &dsk);
    randombytes_buf(k.b, sizeof(k.b));
    ASSERT_OK(kz_env_make(&e, &el, "network", 1, &k, &dpk, &ssk, &spk));
    for (i = 0; i < el; i++) {
        e[i] ^= 0x04;
        ASSERT(kz_env_decode(&info, e, el, NULL) < 0);
        e[i] ^= 0x04;
    }
    for (i = 0; i < el; i++)
        ASSERT(kz_env_decode(&info, e, i, NULL) < 0);
    ASSERT_OK(kz_env_decode(&info, e, el, NULL));
    kz_free(e);
}

TEST(envelope_exact_bytes_negative)
{
    struct kz_env_info info;
    static const uint8_t bomb[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t empty[] = {0x90};
    static const uint8_t wrong[] = {0x92, 0xc4, 0x01, 0x00, 0xc4, 0x00};

    ASSERT(kz_env_decode(&info, bomb, sizeof(bomb), NULL) < 0);
    ASSERT(kz_env_decode(&info, empty, sizeof(empty), NULL) < 0);
    ASSERT(kz_env_decode(&info, wrong, sizeof(wrong), NULL) < 0);
    ASSERT(kz_env_decode(&info, NULL, 0, NULL) < 0);
}

/* KZ_WRITE_CORPUS=dir writes seeds for tests/fuzz/fuzz_envelope.c. */
TEST(write_corpus)
{
    const char *dir = getenv("KZ_WRITE_CORPUS");
    static const char *const scopes[] = {"network", "site:HAN", "private:OL",
                                         "site:LG"};
    size_t i;

    if (dir == NULL)
        return;
    for (i = 0; i < 4; i++) {
        struct kz_sign_pk spk;
        struct kz_sign_sk ssk;
        struct kz_dh_pk dpk;
        struct kz_dh_sk dsk;
        struct kz_aead_key k;
        uint8_t *e = NULL;
        size_t el = 0;
        char path[512];
        FILE *f;

        keys(&spk, &ssk, &dpk, &dsk);
        randombytes_buf(k.b, sizeof(k.b));
        ASSERT_OK(kz_env_make(&e, &el, scopes[i], i + 1, &k, &dpk, &ssk, &spk));
        snprintf(path, sizeof(path), "%s/env%zu", dir, i);
        f = fopen(path, "wb");
        ASSERT(f != NULL);
        ASSERT_EQ(fwrite(e, 1, el, f), el);
        fclose(f);
        kz_free(e);
    }
}

T_MAIN(T(write_corpus), T(body_round_trip_and_tamper), T(envelope_round_trip),
       T(envelope_every_flipped_byte_is_refused),
       T(envelope_exact_bytes_negative))
