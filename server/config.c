/*
 * config.c: the INI configuration of kzsyncd (see config.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "err.h"
#include "log.h"

#include "config.h"

struct load_ctx {
    struct config *c; /* being filled */
    char *err;        /* message buffer */
    size_t err_len;
    int bad; /* a problem was found */
};

void
config_defaults(struct config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->listen, sizeof(c->listen), "127.0.0.1:7400");
    c->max_connections = 1024;
    c->handshake_timeout_ms = 10000;
    c->idle_timeout_ms = 300000;
    c->max_output_bytes = UINT64_C(32) * 1024 * 1024;
    c->log_level = KZ_LOG_INFO;
    snprintf(c->store_path, sizeof(c->store_path), "store.db");
    c->store_max_batch = 256;
}

static int
parse_u64(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    unsigned long long x;

    errno = 0;
    x = strtoull(v, &end, 10);
    if (errno || end == v || *end != '\0' || v[0] == '-' || x < min || x > max)
        return -1;
    *out = x;
    return 0;
}

static int
on_value(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *x = user;
    struct config *c = x->c;
    uint64_t v = 0;
    const char *what = NULL;

    if (x->bad)
        return 0;
    if (strcmp(section, "server") == 0) {
        if (strcmp(name, "listen") == 0) {
            if (strlen(value) >= sizeof(c->listen))
                what = "listen is too long";
            else
                snprintf(c->listen, sizeof(c->listen), "%s", value);
        } else if (strcmp(name, "admin_key") == 0) {
            if (strlen(value) >= sizeof(c->admin_key))
                what = "admin_key is too long";
            else
                snprintf(c->admin_key, sizeof(c->admin_key), "%s", value);
        } else if (strcmp(name, "max_connections") == 0) {
            if (parse_u64(value, 1, 1000000, &v))
                what = "max_connections must be 1..1000000";
            c->max_connections = (uint32_t)v;
        } else if (strcmp(name, "handshake_timeout_ms") == 0) {
            if (parse_u64(value, 100, 600000, &v))
                what = "handshake_timeout_ms must be 100..600000";
            c->handshake_timeout_ms = (uint32_t)v;
        } else if (strcmp(name, "idle_timeout_ms") == 0) {
            if (parse_u64(value, 1000, 86400000, &v))
                what = "idle_timeout_ms must be 1000..86400000";
            c->idle_timeout_ms = (uint32_t)v;
        } else if (strcmp(name, "max_output_bytes") == 0) {
            /* At least one whole frame (a BATCH is one) and its records'
             * overhead; below 1 GiB, as libuv writes lengths as unsigned. */
            if (parse_u64(value, CONFIG_MIN_OUTPUT_BYTES, UINT64_C(1) << 30,
                          &v))
                what = "max_output_bytes must be 17 MiB..1 GiB";
            c->max_output_bytes = v;
        } else if (strcmp(name, "log_level") == 0) {
            static const char *const lv[] = {"error", "warning", "info",
                                             "debug"};
            int i, found = -1;
            for (i = 0; i < 4; i++)
                if (strcasecmp(value, lv[i]) == 0)
                    found = i;
            if (found < 0)
                what = "log_level must be error, warning, info or debug";
            else
                c->log_level = found;
        } else {
            what = "unknown key in [server]";
        }
    } else if (strcmp(section, "store") == 0) {
        if (strcmp(name, "path") == 0) {
            if (strlen(value) == 0 || strlen(value) >= sizeof(c->store_path))
                what = "store path is empty or too long";
            else
                snprintf(c->store_path, sizeof(c->store_path), "%s", value);
        } else if (strcmp(name, "max_batch") == 0) {
            if (parse_u64(value, 1, 65536, &v))
                what = "max_batch must be 1..65536";
            c->store_max_batch = (uint32_t)v;
        } else {
            what = "unknown key in [store]";
        }
    } else {
        what = "unknown section (server or store)";
    }
    if (what) {
        snprintf(x->err, x->err_len, "[%s] %s: %s", section, name, what);
        x->bad = 1;
        return 0;
    }
    return 1;
}

int
config_load(struct config *c, const char *path, char *err, size_t err_len)
{
    struct load_ctx x = {c, err, err_len, 0};
    FILE *f;
    int rc;

    config_defaults(c);
    err[0] = '\0';
    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        return -errno;
    }
    rc = ini_parse_file(f, on_value, &x);
    fclose(f);
    if (x.bad)
        return -KZ_EINVAL;
    if (rc != 0) {
        snprintf(err, err_len, "line %d: not INI syntax", rc);
        return -KZ_EINVAL;
    }
    return 0;
}

static const char *
level_name(int l)
{
    static const char *const lv[] = {"error", "warning", "info", "debug"};
    return l >= 0 && l < 4 ? lv[l] : "info";
}

int
config_save(const struct config *c, const char *path)
{
    char tmp[1200];
    FILE *f;
    int fd;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return -ENAMETOOLONG;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    f = fdopen(fd, "w");
    if (f == NULL) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return -e;
    }
    fprintf(f,
            "; kzsyncd configuration (written by kzsyncd init/trust)\n"
            "[server]\n"
            "listen = %s\n"
            "admin_key = %s\n"
            "max_connections = %u\n"
            "handshake_timeout_ms = %u\n"
            "idle_timeout_ms = %u\n"
            "max_output_bytes = %llu\n"
            "log_level = %s\n"
            "[store]\n"
            "path = %s\n"
            "max_batch = %u\n",
            c->listen, c->admin_key, c->max_connections,
            c->handshake_timeout_ms, c->idle_timeout_ms,
            (unsigned long long)c->max_output_bytes, level_name(c->log_level),
            c->store_path, c->store_max_batch);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        int e = errno;
        fclose(f);
        unlink(tmp);
        return -e;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return -e;
    }
    return 0;
}

int
config_split_listen(const char *listen, char *host, size_t host_len, int *port)
{
    const char *colon;
    uint64_t p = 0;
    size_t hl;

    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (close == NULL || close[1] != ':')
            return -KZ_EINVAL;
        hl = (size_t)(close - listen - 1);
        colon = close + 1;
        listen++;
    } else {
        colon = strrchr(listen, ':');
        if (colon == NULL)
            return -KZ_EINVAL;
        hl = (size_t)(colon - listen);
    }
    if (hl == 0 || hl >= host_len || parse_u64(colon + 1, 1, 65535, &p) != 0)
        return -KZ_EINVAL;
    memcpy(host, listen, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}
