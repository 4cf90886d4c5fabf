/*
 * fuzz_msg.c: the application message decoder on arbitrary bytes.
 *
 * Properties, beyond "never crash, hang or leak": a failure is one of the
 * documented codes with a static reason and leaves nothing allocated; a
 * message that decodes has a known type, and its array counts are within
 * their limits; it re-encodes (kz_msg_pack accepts everything kz_msg_decode
 * returns), the re-encoding is no longer than the input (ours is the
 * shortest form), and it decodes again and re-encodes to the very same
 * bytes; kz_msg_encode frames the same bytes behind a correct length
 * prefix.  (An input as long as its re-encoding need not be identical to
 * it: a positive int32 `d2` is as long as the uint32 `ce` we write; seed
 * int32_req.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "err.h"
#include "limits.h"
#include "mpk.h"
#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
    if (!cond)
        abort();
}

static void
pack(const struct kz_msg *m, uint8_t **out, size_t *len)
{
    struct kz_mpk_wr w;

    kz_mpk_wr_init(&w, KZ_LIM_FRAME_MAX);
    check(kz_msg_pack(m, &w) == 0);
    check(kz_mpk_wr_finish(&w, out, len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kz_msg m, m2;
    struct kz_buf out;
    const char *why = NULL;
    uint8_t *p, *q;
    size_t len, qlen;
    int rc;

    rc = kz_msg_decode(&m, data, size, &why);
    if (rc != 0) {
        check(rc == -KZ_EMALFORMED || rc == -KZ_ELIMIT);
        check(why != NULL);
        check(m.owned == NULL);
        return 0;
    }
    check(why == NULL);
    check(m.type >= 1 && m.type <= KZ_MSG_TYPE_MAX);
    check(kz_msg_dir(m.type) != 0);
    switch (m.type) {
    case KZ_MSG_PULL: check(m.pull.n_cursors <= KZ_LIM_PULL_SCOPES_MAX); break;
    case KZ_MSG_BATCH: check(m.batch.n_items <= KZ_LIM_BATCH_ITEMS_MAX); break;
    case KZ_MSG_SUBSCRIBE:
        check(m.subscribe.n_scopes <= KZ_LIM_SUBSCRIBE_SCOPES_MAX);
        break;
    case KZ_MSG_KEYS_PUT: check(m.keys_put.n_envs <= KZ_LIM_KEYS_MAX); break;
    case KZ_MSG_KEYS: check(m.keys.n_keys <= KZ_LIM_KEYS_MAX); break;
    default: break;
    }

    pack(&m, &p, &len);
    check(len <= size);
    check(kz_msg_decode(&m2, p, len, NULL) == 0);
    check(m2.type == m.type);
    pack(&m2, &q, &qlen);
    check(qlen == len && memcmp(p, q, len) == 0);

    kz_buf_init(&out, KZ_LIM_FRAME_MAX + 4);
    check(kz_msg_encode(&m2, &out) == 0);
    check(out.len == 4 + len);
    check(((size_t)out.p[0] << 24 | (size_t)out.p[1] << 16 |
           (size_t)out.p[2] << 8 | out.p[3]) == len);
    check(memcmp(out.p + 4, p, len) == 0);
    kz_buf_free(&out);

    kz_free(q);
    kz_free(p);
    kz_msg_clear(&m2);
    kz_msg_clear(&m);
    return 0;
}
