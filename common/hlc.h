/*
 * hlc.h: hybrid logical clock (DESIGN.md §3).
 *
 * An hlc is 64 bits: 48-bit milliseconds since the Unix epoch, then a 16-bit
 * counter.  Local clock = max(wall clock, highest hlc seen) + 1 on every
 * local change.  The module is pure: the wall clock is passed in.
 */
#ifndef KZ_HLC_H
#define KZ_HLC_H

#include <stdint.h>

#include "kz.h"

#define KZ_HLC_CTR_BITS 16
#define KZ_HLC_MS_MAX ((UINT64_C(1) << 48) - 1)
#define KZ_HLC_SKEW_MS_DEFAULT (10 * 60 * 1000)

#define KZ_HLC_MS(h) ((uint64_t)(h) >> KZ_HLC_CTR_BITS)
#define KZ_HLC_CTR(h) ((uint16_t)((h)&0xffff))
#define KZ_HLC_MAKE(ms, ctr) (((uint64_t)(ms) << KZ_HLC_CTR_BITS) | (ctr))

struct kz_hlc {
    uint64_t last;     /* highest hlc issued or observed */
    int64_t offset_ms; /* correction added to the wall clock (server time) */
    uint64_t skew_ms;  /* how far ahead of now a remote hlc may be */
};

/** kz_hlc_init(c, last): a clock resuming after ${last} (0 for new). */
void kz_hlc_init(struct kz_hlc *c, uint64_t last);

/** kz_hlc_wall(c, wall_ms): the corrected wall clock as an hlc (ctr 0). */
uint64_t kz_hlc_wall(const struct kz_hlc *c, uint64_t wall_ms);

/**
 * kz_hlc_tick(c, wall_ms): the hlc of a new local change:
 * max(corrected wall clock, last) + 1.  Never returns 0.
 */
uint64_t kz_hlc_tick(struct kz_hlc *c, uint64_t wall_ms);

/**
 * kz_hlc_observe(c, remote, wall_ms): adopts a received ${remote} hlc into
 * the clock.  Returns 0, or -KZ_ECLOCK (and adopts nothing) when ${remote}
 * lies beyond now + skew: such a change waits in quarantine.
 */
KZ_MUST_CHECK int kz_hlc_observe(struct kz_hlc *c, uint64_t remote,
                                 uint64_t wall_ms);

/** kz_hlc_is_future(c, h, wall_ms): 1 if ${h} is beyond now + skew. */
int kz_hlc_is_future(const struct kz_hlc *c, uint64_t h, uint64_t wall_ms);

#endif /* KZ_HLC_H */
