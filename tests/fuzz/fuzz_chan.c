/*
 * fuzz_chan.c: the server side of the secure channel (proto/chan.h) fed
 * arbitrary bytes in arbitrary pieces: record framing, handshake messages
 * and, if the bytes get that far, whatever follows.  The first input byte
 * chooses the piece size.  Seeds in corpus/chan/ are a real client's
 * first message and garbage of the right shapes.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "chan.h"
#include "crypto.h"
#include "env.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fixed_random(void *d, void *p, size_t len)
{
    (void)d;
    memset(p, 0x5a, len);
}

static uint64_t
fixed_clock(void *d)
{
    (void)d;
    return UINT64_C(1790000000000);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct kz_env env = {fixed_clock, fixed_clock, fixed_random,
                                      NULL};
    struct kz_chan_cfg cfg;
    struct kz_chan *c = NULL;
    struct kz_dh_sk sk;
    size_t step, off;

    if (size == 0)
        return 0;
    step = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    memset(sk.b, 0x11, sizeof(sk.b));
    memset(&cfg, 0, sizeof(cfg));
    cfg.s = &sk;
    cfg.env = &env;
    cfg.out_max = 1u << 20;
    if (kz_chan_new(&c, &cfg) != 0)
        return 0;
    for (off = 0; off < size; off += step) {
        const uint8_t *msg;
        size_t len, n = size - off < step ? size - off : step;
        if (kz_chan_feed(c, data + off, n) != 0)
            break;
        while (kz_chan_next(c, &msg, &len) == 1)
            ;
        kz_chan_out(c)->len = 0;
    }
    kz_chan_free(c);
    return 0;
}
