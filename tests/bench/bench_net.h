/*
 * bench_net.h: what the benchmarks share: dying with a message (stopping
 * the processes started), the clock, medians, /proc readers, the machine
 * line; and for bench_sync and bench_load the paths of the
 * built kzsync and kzsyncd (found next to the benchmark executable), running
 * a command and keeping the last line of its stdout, a kzsyncd started and
 * stopped by its pid, and a network set up with the real command line:
 *
 *     kzsyncd init ROOT/srv --listen 127.0.0.1:PORT      (server key)
 *     kzsync init ROOT/land --site LAND --device land-1 … --create-network
 *     kzsyncd trust ROOT/srv ADMIN_KEY ; kzsyncd run ROOT/srv &
 *     sqlite3 -bail ROOT/land/replica.db < sample-data/01_reference.sql
 *     kzsync sync ROOT/land
 *
 * Loopback only.  Every process started here is stopped by its pid
 * (SIGTERM, then SIGKILL after 10 s) and reaped.  Header-only: each
 * benchmark is one executable (tests/bench/CMakeLists.txt).
 */
#ifndef KZ_BENCH_NET_H
#define KZ_BENCH_NET_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef BN_REFERENCE_SQL /* set by tests/bench/CMakeLists.txt */
#error "BN_REFERENCE_SQL (the sample network's 01_reference.sql) is not set"
#endif

static const char *bn_prog = "bench";
static char bn_kzsync[1100], bn_kzsyncd[1100];

/* Processes started by bn_spawn and not yet reaped: bn_die stops them. */
#define BN_MAX_CHILDREN 16
static pid_t bn_children[BN_MAX_CHILDREN];

static inline void
bn_child_forget(pid_t pid)
{
    int i;

    for (i = 0; i < BN_MAX_CHILDREN; i++)
        if (bn_children[i] == pid)
            bn_children[i] = 0;
}

static inline void bn_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static inline void
bn_die(const char *fmt, ...)
{
    va_list ap;

    int i, j, st;

    va_start(ap, fmt);
    fprintf(stderr, "%s: ", bn_prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    for (i = 0; i < BN_MAX_CHILDREN; i++) {
        pid_t pid = bn_children[i];
        if (pid <= 0)
            continue;
        kill(pid, SIGTERM);
        for (j = 0; j < 1000 && waitpid(pid, &st, WNOHANG) != pid; j++)
            usleep(10000);
        if (j == 1000) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
        }
        bn_children[i] = 0;
    }
    exit(1);
}

static inline double
bn_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* BUILD/tests/bench/bench_x → BUILD/client/kzsync, BUILD/server/kzsyncd. */
static inline void
bn_paths(void)
{
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *p;
    int i;

    if (n <= 0)
        bn_die("readlink /proc/self/exe");
    self[n] = '\0';
    for (i = 0; i < 3; i++) {
        p = strrchr(self, '/');
        if (p == NULL)
            bn_die("unexpected executable path %s", self);
        *p = '\0';
    }
    snprintf(bn_kzsync, sizeof(bn_kzsync), "%s/client/kzsync", self);
    snprintf(bn_kzsyncd, sizeof(bn_kzsyncd), "%s/server/kzsyncd", self);
    if (access(bn_kzsync, X_OK) != 0 || access(bn_kzsyncd, X_OK) != 0)
        bn_die("kzsync/kzsyncd not built next to %s", self);
    unsetenv("KZSYNC_PASSPHRASE");
}

/*
 * bn_run(last, len, log, fmt, …): runs the shell command; its stderr is
 * appended to ${log}; the last line of its stdout goes to ${last} (if not
 * NULL).  Returns the exit status.
 */
static inline int bn_run(char *last, size_t len, const char *log,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline int
bn_run(char *last, size_t len, const char *log, const char *fmt, ...)
{
    char cmd[4096], full[4400], line[4096];
    va_list ap;
    FILE *p;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    snprintf(full, sizeof(full), "%s 2>>'%s'", cmd, log);
    if (last)
        last[0] = '\0';
    p = popen(full, "r");
    if (p == NULL)
        bn_die("popen %s", cmd);
    while (fgets(line, sizeof(line), p)) {
        line[strcspn(line, "\n")] = '\0';
        if (last && line[0] && len > 0) {
            size_t l = strlen(line);
            if (l >= len)
                l = len - 1;
            memcpy(last, line, l);
            last[l] = '\0';
        }
    }
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static inline void
bn_run_ok(char *last, size_t len, const char *log, const char *what,
          const char *cmd)
{
    int rc = bn_run(last, len, log, "%s", cmd);

    if (rc != 0)
        bn_die("%s failed (exit %d): %s; see %s", what, rc, cmd, log);
}

/* A port that was free a moment ago (bind 127.0.0.1:0). */
static inline int
bn_free_port(void)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0)
        bn_die("cannot find a free port: %s", strerror(errno));
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Waits (≤ 10 s) until 127.0.0.1:${port} accepts a connection. */
static inline void
bn_wait_port(int port, pid_t pid)
{
    int i;

    for (i = 0; i < 1000; i++) {
        struct sockaddr_in a;
        int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return;
        if (pid > 0 && waitpid(pid, NULL, WNOHANG) == pid) {
            bn_child_forget(pid);
            bn_die("kzsyncd exited at start");
        }
        usleep(10000);
    }
    bn_die("kzsyncd does not listen on port %d", port);
}

/* Starts ${argv} with stdout and stderr to ${log}; returns its pid. */
static inline pid_t
bn_spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();

    if (pid < 0)
        bn_die("fork: %s", strerror(errno));
    if (pid == 0) {
        FILE *f = fopen(log, "a");
        if (f) {
            dup2(fileno(f), 1);
            dup2(fileno(f), 2);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    {
        int i;
        for (i = 0; i < BN_MAX_CHILDREN && bn_children[i] > 0; i++)
            ;
        if (i < BN_MAX_CHILDREN)
            bn_children[i] = pid;
    }
    return pid;
}

/* SIGTERM, wait ≤ 10 s, else SIGKILL; reaps.  Returns the wait status. */
static inline int
bn_stop(pid_t pid, int sig)
{
    int i, st = 0;

    if (pid <= 0)
        return 0;
    kill(pid, sig);
    for (i = 0; i < 1000; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            bn_child_forget(pid);
            return st;
        }
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    bn_child_forget(pid);
    return st;
}

/* Runs ${argv} to completion (stdout/stderr to ${log}); returns seconds. */
static inline double
bn_time_cmd(char *const argv[], const char *log)
{
    double t0 = bn_now(), t1;
    pid_t pid = bn_spawn(argv, log);
    int st;

    if (waitpid(pid, &st, 0) != pid)
        bn_die("waitpid: %s", strerror(errno));
    bn_child_forget(pid);
    t1 = bn_now();
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        bn_die("%s %s %s failed (status %d); see %s", argv[0], argv[1],
               argv[2] ? argv[2] : "", st, log);
    return t1 - t0;
}

/* Replaces the line "KEY = …" of the INI file ${path} (kzsyncd.conf). */
static inline void
bn_conf_set(const char *path, const char *key, const char *val)
{
    char buf[8192], out[8400], line[1024];
    FILE *f = fopen(path, "r");
    size_t o = 0, kl = strlen(key);
    int found = 0;

    if (f == NULL)
        bn_die("open %s", path);
    buf[0] = '\0';
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, kl) == 0 &&
            (line[kl] == ' ' || line[kl] == '=')) {
            o += (size_t)snprintf(out + o, sizeof(out) - o, "%s = %s\n", key,
                                  val);
            found = 1;
        } else {
            o += (size_t)snprintf(out + o, sizeof(out) - o, "%s", line);
        }
        if (o >= sizeof(out) - 1)
            bn_die("%s too long", path);
    }
    fclose(f);
    if (!found)
        bn_die("%s has no %s", path, key);
    f = fopen(path, "w");
    if (f == NULL || fputs(out, f) < 0 || fclose(f) != 0)
        bn_die("write %s", path);
    (void)buf;
}

static inline void
bn_rm_rf(const char *dir)
{
    char cmd[700];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        bn_die("%s failed", cmd);
}

/* VmRSS/VmHWM/… of /proc/PID/status in kB (pid 0: self), or -1. */
static inline long
bn_proc_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t n = strlen(field);
    FILE *f;
    long v = -1;

    if (pid > 0)
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    else
        snprintf(path, sizeof(path), "/proc/self/status");
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, field, n) == 0) {
            v = strtol(line + n, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* utime + stime of a running process, seconds. */
static inline double
bn_proc_cpu_s(pid_t pid)
{
    char path[64], buf[2048], *p;
    unsigned long ut = 0, stt = 0;
    FILE *f;
    int i;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL || fgets(buf, sizeof(buf), f) == NULL)
        bn_die("read %s", path);
    fclose(f);
    p = strrchr(buf, ')');
    for (i = 0; p && i < 12; i++)
        p = strchr(p + 1, ' ');
    if (p == NULL || sscanf(p + 1, "%lu %lu", &ut, &stt) != 2)
        bn_die("parse %s", path);
    return (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
}

/* A server and the state office's device, set up with the real CLI. */
struct bn_net {
    char root[512];       /* temporary directory */
    char srv[600];        /* ROOT/srv */
    char land[600];       /* ROOT/land */
    char log[600];        /* ROOT/cli.log: every command's stderr */
    char srvlog[600];     /* ROOT/kzsyncd.log */
    char addr[64];        /* 127.0.0.1:PORT */
    char server_key[128]; /* kzserver1.… */
    char admin_key[128];  /* kzadmin1.… */
    int port;
    pid_t pid; /* kzsyncd run */
};

static inline void
bn_server_start(struct bn_net *n)
{
    char *argv[] = {bn_kzsyncd, (char *)"run", n->srv, NULL};

    n->pid = bn_spawn(argv, n->srvlog);
    bn_wait_port(n->port, n->pid);
}

/*
 * bn_setup(n, tag, max_conns, log_level): a fresh ROOT, server initialised
 * (max_connections, log_level set in its kzsyncd.conf), LAND created with
 * --create-network and the reference data, server trusted and running, LAND
 * synced once (roster and reference data uploaded).
 */
static inline void
bn_setup(struct bn_net *n, const char *tag, unsigned max_conns,
         const char *log_level)
{
    const char *base = getenv("TMPDIR");
    char cmd[4096], conf[700], v[32];

    memset(n, 0, sizeof(*n));
    snprintf(n->root, sizeof(n->root), "%s/kzbench-%s.XXXXXX",
             base ? base : "/tmp", tag);
    if (mkdtemp(n->root) == NULL)
        bn_die("mkdtemp %s: %s", n->root, strerror(errno));
    snprintf(n->srv, sizeof(n->srv), "%s/srv", n->root);
    snprintf(n->land, sizeof(n->land), "%s/land", n->root);
    snprintf(n->log, sizeof(n->log), "%s/cli.log", n->root);
    snprintf(n->srvlog, sizeof(n->srvlog), "%s/kzsyncd.log", n->root);
    n->port = bn_free_port();
    snprintf(n->addr, sizeof(n->addr), "127.0.0.1:%d", n->port);

    snprintf(cmd, sizeof(cmd), "'%s' init '%s' --listen %s", bn_kzsyncd, n->srv,
             n->addr);
    bn_run_ok(n->server_key, sizeof(n->server_key), n->log, "kzsyncd init",
              cmd);
    snprintf(conf, sizeof(conf), "%s/kzsyncd.conf", n->srv);
    snprintf(v, sizeof(v), "%u", max_conns);
    bn_conf_set(conf, "max_connections", v);
    bn_conf_set(conf, "log_level", log_level);
    snprintf(cmd, sizeof(cmd),
             "'%s' init '%s' --site LAND --device land-1 --server %s "
             "--server-key %s --create-network",
             bn_kzsync, n->land, n->addr, n->server_key);
    bn_run_ok(n->admin_key, sizeof(n->admin_key), n->log, "kzsync init land",
              cmd);
    snprintf(cmd, sizeof(cmd), "'%s' trust '%s' %s", bn_kzsyncd, n->srv,
             n->admin_key);
    bn_run_ok(NULL, 0, n->log, "kzsyncd trust", cmd);
    bn_server_start(n);
    snprintf(cmd, sizeof(cmd), "sqlite3 -bail '%s/replica.db' < '%s'", n->land,
             BN_REFERENCE_SQL);
    bn_run_ok(NULL, 0, n->log, "sqlite3 reference data", cmd);
    snprintf(cmd, sizeof(cmd), "'%s' sync '%s'", bn_kzsync, n->land);
    bn_run_ok(NULL, 0, n->log, "kzsync sync land", cmd);
}

/* Stops the server; removes ROOT unless KZBENCH_KEEP is set. */
static inline void
bn_teardown(struct bn_net *n)
{
    int st = bn_stop(n->pid, SIGTERM);

    n->pid = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fprintf(stderr, "%s: kzsyncd ended with status %d (see %s)\n", bn_prog,
                st, n->srvlog);
    if (getenv("KZBENCH_KEEP"))
        fprintf(stderr, "%s: kept %s\n", bn_prog, n->root);
    else
        bn_rm_rf(n->root);
}

static inline void
bn_print_machine(int argc, char **argv)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512], cpu[256] = "?";
    struct utsname u;
    int i;

    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c += 1 + (c[1] == ' ');
                c[strcspn(c, "\n")] = '\0';
                snprintf(cpu, sizeof(cpu), "%s", c);
            }
            break;
        }
    }
    if (f)
        fclose(f);
    printf("command:");
    for (i = 0; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\n");
    if (uname(&u) == 0)
        printf("machine: %s %s %s, nproc %ld, CPU %s\n", u.sysname, u.release,
               u.machine, sysconf(_SC_NPROCESSORS_ONLN), cpu);
}

static inline int
bn_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static inline double
bn_median(const double *v, int n)
{
    double tmp[64];
    int i;

    if (n <= 0)
        return 0;
    if (n > 64)
        n = 64;
    for (i = 0; i < n; i++)
        tmp[i] = v[i];
    qsort(tmp, (size_t)n, sizeof(double), bn_cmp_double);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

#endif /* KZ_BENCH_NET_H */
