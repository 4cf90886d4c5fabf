/*
 * env.h: clock and randomness, injectable so that tests are deterministic
 * (STYLE.md 12).
 */
#ifndef KZ_ENV_H
#define KZ_ENV_H

#include <stddef.h>
#include <stdint.h>

struct kz_env {
    uint64_t (*wall_ms)(void *data); /* ms since the Unix epoch */
    uint64_t (*mono_ms)(void *data); /* monotonic ms */
    void (*random)(void *data, void *p, size_t len); /* fills p */
    void *data;                                      /* cookie for the above */
};

/** kz_env_system(): the real clocks and libsodium's randombytes. */
const struct kz_env *kz_env_system(void);

static inline uint64_t
kz_env_wall_ms(const struct kz_env *e)
{
    return e->wall_ms(e->data);
}

static inline uint64_t
kz_env_mono_ms(const struct kz_env *e)
{
    return e->mono_ms(e->data);
}

static inline void
kz_env_random(const struct kz_env *e, void *p, size_t len)
{
    e->random(e->data, p, len);
}

#endif /* KZ_ENV_H */
