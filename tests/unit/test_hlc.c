/*
 * test_hlc.c: the hybrid logical clock.
 */
#include "err.h"
#include "hlc.h"

#include "t.h"

TEST(tick_is_monotonic_when_wall_clock_stalls)
{
    struct kz_hlc c;
    uint64_t a, b;

    kz_hlc_init(&c, 0);
    a = kz_hlc_tick(&c, 1000);
    b = kz_hlc_tick(&c, 1000);
    ASSERT_U64_EQ(KZ_HLC_MS(a), 1000);
    ASSERT_U64_EQ(b, a + 1);
}

TEST(tick_follows_wall_clock)
{
    struct kz_hlc c;

    kz_hlc_init(&c, 0);
    (void)kz_hlc_tick(&c, 1000);
    ASSERT_U64_EQ(kz_hlc_tick(&c, 2000), KZ_HLC_MAKE(2000, 1));
}

TEST(tick_never_goes_back_when_wall_clock_does)
{
    struct kz_hlc c;
    uint64_t a;

    kz_hlc_init(&c, 0);
    a = kz_hlc_tick(&c, 5000);
    ASSERT_GT(kz_hlc_tick(&c, 10), a);
}

TEST(observe_adopts_remote_within_skew)
{
    struct kz_hlc c;
    uint64_t remote = KZ_HLC_MAKE(1000 + 60000, 7);

    kz_hlc_init(&c, 0);
    ASSERT_OK(kz_hlc_observe(&c, remote, 1000));
    ASSERT_U64_EQ(kz_hlc_tick(&c, 1000), remote + 1);
}

TEST(observe_refuses_remote_beyond_skew)
{
    struct kz_hlc c;
    uint64_t remote = KZ_HLC_MAKE(1000 + KZ_HLC_SKEW_MS_DEFAULT + 1, 0);

    kz_hlc_init(&c, 0);
    ASSERT_ERR(kz_hlc_observe(&c, remote, 1000), -KZ_ECLOCK);
    ASSERT_U64_EQ(c.last, 0);
    ASSERT(kz_hlc_is_future(&c, remote, 1000));
    ASSERT(!kz_hlc_is_future(&c, remote, 2000));
}

TEST(offset_corrects_wall_clock)
{
    struct kz_hlc c;

    kz_hlc_init(&c, 0);
    c.offset_ms = 3600000;
    ASSERT_U64_EQ(KZ_HLC_MS(kz_hlc_tick(&c, 1000)), 3601000);
}

TEST(counter_overflow_carries)
{
    struct kz_hlc c;

    kz_hlc_init(&c, KZ_HLC_MAKE(1000, 0xffff));
    ASSERT_U64_EQ(kz_hlc_tick(&c, 1000), KZ_HLC_MAKE(1001, 0));
}

T_MAIN(T(tick_is_monotonic_when_wall_clock_stalls), T(tick_follows_wall_clock),
       T(tick_never_goes_back_when_wall_clock_does),
       T(observe_adopts_remote_within_skew),
       T(observe_refuses_remote_beyond_skew), T(offset_corrects_wall_clock),
       T(counter_overflow_carries))
