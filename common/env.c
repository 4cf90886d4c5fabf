/*
 * env.c: the system environment.
 */
#include <time.h>

#include <sodium.h>

#include "env.h"

static uint64_t
clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t
sys_wall_ms(void *data)
{
    (void)data;
    return clock_ms(CLOCK_REALTIME);
}

static uint64_t
sys_mono_ms(void *data)
{
    (void)data;
    return clock_ms(CLOCK_MONOTONIC);
}

static void
sys_random(void *data, void *p, size_t len)
{
    (void)data;
    randombytes_buf(p, len);
}

static const struct kz_env system_env = {sys_wall_ms, sys_mono_ms, sys_random,
                                         NULL};

const struct kz_env *
kz_env_system(void)
{
    return &system_env;
}
