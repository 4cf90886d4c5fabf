/*
 * config.h: kzsyncd's configuration, DIR/kzsyncd.conf (INI, read with
 * libinih).  `kzsyncd init` writes it; an operator may edit it.
 *
 *   [server]
 *   listen = 127.0.0.1:7400        ; HOST:PORT, IPv4 or [IPv6]
 *   admin_key = kzadmin1.…         ; set by `kzsyncd trust`
 *   max_connections = 1024
 *   handshake_timeout_ms = 10000
 *   idle_timeout_ms = 300000
 *   max_output_bytes = 33554432    ; per connection, then "slow reader";
 *                                  ; 17 MiB (one BATCH) .. 1 GiB
 *   log_level = info               ; error, warning, info, debug
 *   [store]
 *   path = store.db                ; relative to DIR
 *   max_batch = 256                ; jobs per group commit
 */
#ifndef KZ_SERVER_CONFIG_H
#define KZ_SERVER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "kz.h"

/* The least max_output_bytes: one frame of KZ_LIM_FRAME_MAX (16 MiB) and
 * the overhead of its transport records, with room to spare. */
#define CONFIG_MIN_OUTPUT_BYTES (UINT64_C(17) * 1024 * 1024)

struct config {
    char listen[256];              /* HOST:PORT */
    char admin_key[128];           /* text form, "" until trusted */
    uint32_t max_connections;      /* sessions at once */
    uint32_t handshake_timeout_ms; /* accept → handshake done */
    uint32_t idle_timeout_ms;      /* no whole record from the peer */
    uint64_t max_output_bytes;     /* buffered output per session */
    int log_level;                 /* enum kz_log_level */
    char store_path[1024];         /* absolute, or relative to DIR */
    uint32_t store_max_batch;      /* jobs per transaction */
};

/** config_defaults(c): every field at its default. */
void config_defaults(struct config *c);

/**
 * config_load(c, path, err, err_len): defaults, then ${path}.  Returns 0;
 * -ENOENT; -KZ_EINVAL with "[section] key: …" in ${err} for an unknown key, a
 * bad number or an unknown section.
 */
KZ_MUST_CHECK int config_load(struct config *c, const char *path, char *err,
                              size_t err_len);

/**
 * config_save(c, path): writes ${c} to ${path} (mode 0600, via a temporary
 * file and rename).  Returns 0 or -errno.
 */
KZ_MUST_CHECK int config_save(const struct config *c, const char *path);

/**
 * config_split_listen(listen, host, host_len, port): "HOST:PORT" or
 * "[V6]:PORT" → host text and port.  Returns 0 or -KZ_EINVAL.
 */
KZ_MUST_CHECK int config_split_listen(const char *listen, char *host,
                                      size_t host_len, int *port);

#endif /* KZ_SERVER_CONFIG_H */
