/*
 * log.h: one line per event on stderr, journald-friendly.
 *
 * Never log payloads, keys or record content: only ids, counts, error
 * names and the static `why` of a reader.
 */
#ifndef KZ_LOG_H
#define KZ_LOG_H

enum kz_log_level { KZ_LOG_ERROR, KZ_LOG_WARN, KZ_LOG_INFO, KZ_LOG_DEBUG };

/** kz_log_set_level(l): messages above ${l} are dropped (default INFO). */
void kz_log_set_level(enum kz_log_level l);

void kz_log(enum kz_log_level l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define kz_log_error(...) kz_log(KZ_LOG_ERROR, __VA_ARGS__)
#define kz_log_warn(...) kz_log(KZ_LOG_WARN, __VA_ARGS__)
#define kz_log_info(...) kz_log(KZ_LOG_INFO, __VA_ARGS__)
#define kz_log_debug(...) kz_log(KZ_LOG_DEBUG, __VA_ARGS__)

#endif /* KZ_LOG_H */
