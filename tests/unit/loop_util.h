/*
 * loop_util.h: driving a test's own uv_loop_t until a condition holds,
 * bounded by a deadline (test_store.c, test_server.c).  The includer
 * defines DEADLINE_NS and includes t.h first.
 */
#ifndef KZ_LOOP_UTIL_H
#define KZ_LOOP_UTIL_H

#include <stdint.h>

#include <uv.h>

/* A repeating timer's callback: it only keeps uv_run(UV_RUN_ONCE) from
 * blocking past the deadline check. */
static inline void
loop_tick(uv_timer_t *t)
{
    (void)t;
}

/* RUN_UNTIL(loop, cond): runs ${loop} until ${cond}, failing at a deadline. */
#define RUN_UNTIL(loopp, cond)                                                 \
    do {                                                                       \
        uv_timer_t t_;                                                         \
        uint64_t dl_ = uv_hrtime() + DEADLINE_NS;                              \
        ASSERT_OK(uv_timer_init((loopp), &t_));                                \
        ASSERT_OK(uv_timer_start(&t_, loop_tick, 10, 10));                     \
        while (!(cond)) {                                                      \
            if (uv_hrtime() > dl_)                                             \
                T_FAIL_("timed out waiting for %s", #cond);                    \
            uv_run((loopp), UV_RUN_ONCE);                                      \
        }                                                                      \
        uv_close((uv_handle_t *)&t_, NULL);                                    \
        uv_run((loopp), UV_RUN_NOWAIT);                                        \
    } while (0)

#endif /* KZ_LOOP_UTIL_H */
