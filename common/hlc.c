/*
 * hlc.c: hybrid logical clock.
 */
#include "err.h"

#include "hlc.h"

void
kz_hlc_init(struct kz_hlc *c, uint64_t last)
{
    c->last = last;
    c->offset_ms = 0;
    c->skew_ms = KZ_HLC_SKEW_MS_DEFAULT;
}

uint64_t
kz_hlc_wall(const struct kz_hlc *c, uint64_t wall_ms)
{
    int64_t ms = (int64_t)wall_ms + c->offset_ms;

    if (ms < 0)
        ms = 0;
    if ((uint64_t)ms > KZ_HLC_MS_MAX)
        ms = (int64_t)KZ_HLC_MS_MAX;
    return KZ_HLC_MAKE((uint64_t)ms, 0);
}

uint64_t
kz_hlc_tick(struct kz_hlc *c, uint64_t wall_ms)
{
    uint64_t now = kz_hlc_wall(c, wall_ms);

    /*
     * A counter overflow simply carries into the millisecond field: the clock
     * runs a little ahead, which the max() rule absorbs.
     */
    c->last = (now > c->last ? now : c->last) + 1;
    return c->last;
}

int
kz_hlc_is_future(const struct kz_hlc *c, uint64_t h, uint64_t wall_ms)
{
    uint64_t now_ms = KZ_HLC_MS(kz_hlc_wall(c, wall_ms));

    return KZ_HLC_MS(h) > now_ms + c->skew_ms;
}

int
kz_hlc_observe(struct kz_hlc *c, uint64_t remote, uint64_t wall_ms)
{
    if (kz_hlc_is_future(c, remote, wall_ms))
        return -KZ_ECLOCK;
    if (remote > c->last)
        c->last = remote;
    return 0;
}
