/*
 * fuzz_join.c: the join request, admin key and server key decoders on
 * arbitrary bytes.
 *
 * The input, NUL-terminated, is tried as a join request, an admin key and
 * a server key text; it is also tried as a bare join body (the msgpack
 * inside the envelope) with no signature check, so that mutations reach the
 * body parser.  Properties, beyond "never crash, hang or leak": failures
 * carry a static reason and a documented code and leave the output zero;
 * a decoded key re-encodes to exactly the input; a decoded body re-encodes
 * (shortest form) and decodes to the same request.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "alloc.h"
#include "err.h"
#include "join.h"
#include "roster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
    if (!cond)
        abort();
}

static void
fuzz_text(const char *text, size_t len)
{
    struct join_request jr;
    struct kz_sign_pk spk;
    struct kz_dh_pk dpk;
    char a[ADMINKEY_TEXT_LEN + 1], s[SERVERKEY_TEXT_LEN + 1];
    const char *why = NULL;
    int rc;

    rc = join_decode(&jr, text, &why);
    if (rc == 0) {
        check(why == NULL);
        check(len <= KZ_LIM_JOIN_MAX);
        check(roster_name_valid(jr.name));
        check(roster_site_valid(jr.site));
    } else {
        check(why != NULL);
        check(rc == -KZ_EMALFORMED || rc == -KZ_ELIMIT || rc == -KZ_EVERSION ||
              rc == -KZ_EAUTH);
        check(sodium_is_zero((const unsigned char *)&jr, sizeof(jr)));
    }

    if (adminkey_decode(&spk, text) == 0) {
        check(adminkey_encode(&spk, a) == 0);
        check(strcmp(a, text) == 0);
    } else {
        check(sodium_is_zero(spk.b, sizeof(spk.b)));
    }
    if (serverkey_decode(&dpk, text) == 0) {
        check(serverkey_encode(&dpk, s) == 0);
        check(strcmp(s, text) == 0);
    } else {
        check(sodium_is_zero(dpk.b, sizeof(dpk.b)));
    }
}

static void
fuzz_body(const uint8_t *data, size_t size)
{
    struct join_request jr, jr2;
    const char *why = NULL;
    uint8_t *p;
    size_t len;
    int rc;

    rc = join__decode_body(&jr, data, size, &why);
    if (rc != 0) {
        check(why != NULL);
        check(rc == -KZ_EMALFORMED || rc == -KZ_ELIMIT || rc == -KZ_EVERSION);
        return;
    }
    check(join__encode_body(&jr, &p, &len) == 0);
    check(len <= size);
    check(join__decode_body(&jr2, p, len, NULL) == 0);
    check(memcmp(&jr, &jr2, sizeof(jr)) == 0);
    kz_free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    if (sodium_init() < 0)
        abort();
    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    fuzz_text(text, strlen(text));
    free(text);
    fuzz_body(data, size);
    return 0;
}
