/*
 * hostile.c: a misbehaving peer of kzsyncd for integration.hostile_peers.
 *
 *   kz_hostile MODE HOST PORT [DIR] [N] [SECONDS]
 *
 * Pre-handshake modes (raw TCP, no keys):
 *   garbage  HOST PORT N        N pseudo-random bytes (seeded), then waits
 *   bigrec   HOST PORT          a record length of 0xffff and 1000 bytes
 *   slowloris HOST PORT         handshake message 1, one byte per second
 *   idle     HOST PORT N SECS   N connections that send nothing, held SECS
 *   churn    HOST PORT N [P]    N connects, each closed at once (a pause
 *                               of 20 ms after every P of them)
 * Modes of an enrolled device (DIR is its kzsync directory: identity and
 * pinned server key come from there; the handshake and HELLO are real):
 *   bigframe HOST PORT DIR N    an application frame length of 4 GiB,
 *                               followed by N bytes of it
 *   bomb     HOST PORT DIR N    msgpack count bomb variant N (0..3):
 *                                 0  the message `dd ff ff ff ff`
 *                                 1  a PUSH whose array claims 2^32-1 elements
 *                                 2  a PUSH whose hdr is `dd ff ff ff ff`
 *                                 3  a PULL whose cursor list claims 2^32-1
 *   nohello  HOST PORT DIR SECS handshake, then silence (no HELLO)
 *   newversion HOST PORT DIR  HELLO offering only versions 2..7
 *   badrec   HOST PORT DIR      handshake, HELLO, then a record with a bad tag
 *   pingfirst HOST PORT DIR     handshake, then PING before HELLO
 *   scopediff HOST PORT DIR     a PUSH whose scope is not its header's
 *   errflood HOST PORT DIR      a malformed message (HELLO again) followed at
 *                               once by 8 MiB of PINGs: the server must
 *                               still deliver its ERROR before it closes
 *                               (no reset that could lose it)
 *   manyrget HOST PORT DIR N    N ROSTER_GETs in one write, then a PING: the
 *                               PONG must come (reading pauses while many
 *                               requests are pending, and must resume);
 *                               prints "manyrget: PONG after N ms"
 *   stallpull HOST PORT DIR     with a small receive buffer: a PULL of
 *                               site:HAN from the start, prints "pulled",
 *                               reads nothing for 1.5 s (the server is
 *                               stopped meanwhile), then reads to the end:
 *                               ERROR SHUTDOWN must come after the queued
 *                               BATCH (exit 0), not be lost with it
 *   keepsend HOST PORT DIR SECS HELLO, prints "keepsend: ready", then a
 *                               PING every 20 ms for SECS s without reading
 *                               (the server is stopped meanwhile)
 *   twokeys  HOST PORT DIR      two KEYS_GET at once: the second must be
 *                               refused (ERROR STATE with its req) and the
 *                               session kept (a PING gets its PONG); prints
 *                               "twokeys: second refused, still open"
 *
 * Every mode prints lines "local=IP:PORT" (its side of each connection, so
 * the test can find the session in the server's log) and a last line
 * "MODE: closed by server after N ms[ (ERROR CODE)]" or "MODE: still open
 * after N ms".  Exit status: 0 if the server closed every connection within
 * the mode's deadline, 1 if not, 2 on a usage or local error.  Nothing here
 * blocks without a bound: every wait is a poll with a deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "chan.h"
#include "crypto.h"
#include "ctx.h"
#include "errcode.h"
#include "msg.h"
#include "alloc.h"
#include "changeset.h"

static const char *g_host;
static const char *g_port;
static int g_rcvbuf; /* > 0: SO_RCVBUF of the connection, set before connect */

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
print_local(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
    }
    printf("local=%s:%d\n", ip, port);
    fflush(stdout);
}

/* A connected socket, or -1. */
static int
dial(int quiet)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if (getaddrinfo(g_host, g_port, &hints, &res) != 0)
        return -1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (g_rcvbuf > 0)
            (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &g_rcvbuf,
                             sizeof(g_rcvbuf));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (!quiet)
            print_local(fd);
    }
    return fd;
}

/* Writes all of p (bounded by the socket: we only ever send little);
 * returns 0, or -1 if the peer closed. */
static int
send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;

    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * Reads until EOF or an error (the server closed) or ${deadline_ms}
 * (absolute, now_ms clock).  Received bytes go to ${c} if it is not NULL
 * (so an ERROR can be decoded).  Returns 1 if closed, 0 if still open.
 */
static int
wait_closed(int fd, uint64_t deadline_ms, struct kz_chan *c)
{
    uint8_t buf[65536];

    for (;;) {
        uint64_t now = now_ms();
        struct pollfd pfd = {fd, POLLIN, 0};
        int r;
        ssize_t n;

        if (now >= deadline_ms)
            return 0;
        r = poll(&pfd, 1, (int)(deadline_ms - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        n = recv(fd, buf, sizeof(buf), 0);
        if (n == 0)
            return 1;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return 1; /* ECONNRESET: closed too */
        }
        if (c != NULL && kz_chan_state(c) == KZ_CHAN_READY)
            if (kz_chan_feed(c, buf, (size_t)n) != 0)
                c = NULL; /* a broken record: ignore the rest */
    }
}

static int
report(const char *mode, int closed, uint64_t t0, const char *extra)
{
    uint64_t dt = now_ms() - t0;

    if (closed)
        printf("%s: closed by server after %llu ms%s%s\n", mode,
               (unsigned long long)dt, extra ? " " : "", extra ? extra : "");
    else
        printf("%s: still open after %llu ms%s%s\n", mode,
               (unsigned long long)dt, extra ? " " : "", extra ? extra : "");
    fflush(stdout);
    return closed ? 0 : 1;
}

/* ---- pre-handshake ---------------------------------------------------- */

static int
mode_garbage(unsigned long n)
{
    uint8_t buf[4096];
    uint32_t x = 0x2545f491u;
    unsigned long sent = 0;
    uint64_t t0 = now_ms();
    int fd = dial(0), closed;

    if (fd < 0)
        return 2;
    while (sent < n) {
        size_t i, k = n - sent < sizeof(buf) ? n - sent : sizeof(buf);
        for (i = 0; i < k; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            buf[i] = (uint8_t)x;
        }
        if (sent == 0 && k >= 2) {
            /* Not the one valid message-1 length (0x0020). */
            buf[0] = 0x13;
            buf[1] = 0x37;
        }
        if (send_all(fd, buf, k) != 0)
            break; /* closed while we were still sending: fine */
        sent += k;
    }
    closed = wait_closed(fd, now_ms() + 5000, NULL);
    close(fd);
    return report("garbage", closed, t0, NULL);
}

static int
mode_bigrec(void)
{
    uint8_t buf[1002];
    uint64_t t0 = now_ms();
    int fd = dial(0), closed;

    if (fd < 0)
        return 2;
    memset(buf, 0x41, sizeof(buf));
    buf[0] = 0xff;
    buf[1] = 0xff;
    (void)send_all(fd, buf, sizeof(buf));
    closed = wait_closed(fd, now_ms() + 5000, NULL);
    close(fd);
    return report("bigrec", closed, t0, NULL);
}

static int
mode_slowloris(unsigned secs_max)
{
    uint8_t msg1[34];
    uint64_t t0 = now_ms(), deadline = t0 + (uint64_t)secs_max * 1000u;
    size_t i;
    int fd = dial(0), closed = 0;

    if (fd < 0)
        return 2;
    msg1[0] = 0;
    msg1[1] = 32;
    randombytes_buf(msg1 + 2, 32);
    for (i = 0; i < sizeof(msg1) && !closed; i++) {
        if (send_all(fd, msg1 + i, 1) != 0) {
            closed = 1;
            break;
        }
        /* One byte per second; notice a close meanwhile. */
        closed = wait_closed(fd, KZ_MIN(now_ms() + 1000, deadline), NULL);
        if (now_ms() >= deadline)
            break;
    }
    if (!closed)
        closed = wait_closed(fd, deadline, NULL);
    close(fd);
    {
        char extra[64];
        snprintf(extra, sizeof(extra), "(%zu bytes sent)", i);
        return report("slowloris", closed, t0, extra);
    }
}

static int
mode_idle(unsigned long n, unsigned secs)
{
    int *fds = calloc(n, sizeof(int));
    unsigned long i, opened = 0, closed = 0;
    uint64_t t0 = now_ms(), deadline = t0 + (uint64_t)secs * 1000u;

    if (fds == NULL)
        return 2;
    for (i = 0; i < n; i++) {
        fds[i] = dial(1);
        if (fds[i] >= 0)
            opened++;
    }
    printf("idle: %lu of %lu connections open\n", opened, n);
    fflush(stdout);
    /* Hold them; count those the server closes. */
    while (now_ms() < deadline && closed < opened) {
        struct pollfd *p = calloc(n, sizeof(*p));
        unsigned long k = 0;
        if (p == NULL)
            break;
        for (i = 0; i < n; i++)
            if (fds[i] >= 0) {
                p[k].fd = fds[i];
                p[k].events = POLLIN;
                k++;
            }
        if (poll(p, k, (int)KZ_MIN(deadline - now_ms(), 200u)) > 0) {
            for (i = 0; i < k; i++) {
                if (p[i].revents) {
                    uint8_t b[256];
                    ssize_t r = recv(p[i].fd, b, sizeof(b), MSG_DONTWAIT);
                    if (r == 0 ||
                        (r < 0 && errno != EAGAIN && errno != EINTR)) {
                        unsigned long j;
                        for (j = 0; j < n; j++)
                            if (fds[j] == p[i].fd) {
                                close(fds[j]);
                                fds[j] = -1;
                            }
                        closed++;
                    }
                }
            }
        }
        free(p);
    }
    for (i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    printf("idle: %lu of %lu closed by the server after %llu ms\n", closed,
           opened, (unsigned long long)(now_ms() - t0));
    return report("idle", opened == n && closed == opened, t0, NULL);
}

static int
mode_churn(unsigned long n, unsigned long pace)
{
    unsigned long i, ok = 0;
    uint64_t t0 = now_ms();

    for (i = 0; i < n && now_ms() - t0 < 60000; i++) {
        int fd = dial(1);
        if (fd >= 0) {
            ok++;
            close(fd);
        }
        if (pace && (i + 1) % pace == 0) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    printf("churn: %lu of %lu connects in %llu ms\n", ok, n,
           (unsigned long long)(now_ms() - t0));
    return ok == n ? 0 : 1;
}

/* ---- an enrolled device ----------------------------------------------- */

struct dev {
    struct kzc k;
    struct kz_chan *c;
    int fd;
};

static int
flush_out(struct dev *d)
{
    struct kz_buf *out = kz_chan_out(d->c);

    if (out->len == 0)
        return 0;
    if (send_all(d->fd, out->p, out->len) != 0)
        return -1;
    kz_buf_consume(out, out->len);
    return 0;
}

/* Reads from the socket into the channel until ${want} says stop or the
 * deadline passes.  Returns 1 if ${want} was met, 0 on timeout, -1 if the
 * connection closed or failed. */
static int
pump_until(struct dev *d, int (*want)(struct dev *, void *), void *arg,
           uint64_t deadline)
{
    uint8_t buf[65536];

    for (;;) {
        struct pollfd pfd = {d->fd, POLLIN, 0};
        ssize_t n;
        uint64_t now;

        if (want(d, arg))
            return 1;
        now = now_ms();
        if (now >= deadline)
            return 0;
        if (poll(&pfd, 1, (int)(deadline - now)) <= 0)
            continue;
        n = recv(d->fd, buf, sizeof(buf), 0);
        if (n <= 0)
            return -1;
        if (kz_chan_feed(d->c, buf, (size_t)n) != 0)
            return -1;
        if (flush_out(d) != 0)
            return -1;
    }
}

static int
is_ready(struct dev *d, void *arg)
{
    (void)arg;
    return kz_chan_state(d->c) == KZ_CHAN_READY;
}

static int
got_msg(struct dev *d, void *arg)
{
    struct kz_msg *m = arg;
    const uint8_t *p;
    size_t len;

    if (kz_chan_next(d->c, &p, &len) != 1)
        return 0;
    return kz_msg_decode(m, p, len, NULL) == 0;
}

static int
send_frame_bytes(struct dev *d, const uint8_t *p, size_t n)
{
    if (kz_chan_send(d->c, p, n) != 0)
        return -1;
    return flush_out(d);
}

/* Encodes ${m} into the channel's output, not sent yet; 0 or -1. */
static int
queue_msg(struct dev *d, const struct kz_msg *m)
{
    struct kz_buf b;
    int rc;

    kz_buf_init(&b, (size_t)1 << 20);
    rc = kz_msg_encode(m, &b) == 0 && kz_chan_send(d->c, b.p, b.len) == 0 ? 0
                                                                          : -1;
    kz_buf_free(&b);
    return rc;
}

/* Encodes and sends ${m}; 0 or -1. */
static int
send_msg(struct dev *d, const struct kz_msg *m)
{
    return queue_msg(d, m) == 0 ? flush_out(d) : -1;
}

/* A HELLO offering versions ${min}..${max}. */
static void
hello_msg(struct kz_msg *m, uint32_t min, uint32_t max)
{
    static const char sw[] = "kz_hostile/1";

    memset(m, 0, sizeof(*m));
    m->type = KZ_MSG_HELLO;
    m->hello.min_version = min;
    m->hello.max_version = max;
    m->hello.software.p = sw;
    m->hello.software.len = sizeof(sw) - 1;
}

/* Connects as the device in ${dir}: handshake, and HELLO/WELCOME if
 * ${hello}.  Returns 0 or -1 (a message was printed). */
static int
dev_open(struct dev *d, const char *dir, int hello)
{
    struct kz_chan_cfg cc;

    memset(d, 0, sizeof(*d));
    d->fd = -1;
    if (kzc_open(&d->k, dir) != 0) {
        fprintf(stderr, "kz_hostile: %s\n", d->k.err);
        return -1;
    }
    memset(&cc, 0, sizeof(cc));
    cc.initiator = 1;
    cc.s = &d->k.id.dh_sk;
    cc.pinned = &d->k.server_pk;
    cc.env = kz_env_system();
    cc.out_max = (size_t)64 << 20;
    if (kz_chan_new(&d->c, &cc) != 0) {
        fprintf(stderr, "kz_hostile: cannot make a channel\n");
        return -1;
    }
    d->fd = dial(0);
    if (d->fd < 0 || flush_out(d) != 0) {
        fprintf(stderr, "kz_hostile: cannot connect\n");
        return -1;
    }
    if (pump_until(d, is_ready, NULL, now_ms() + 5000) != 1) {
        fprintf(stderr, "kz_hostile: handshake failed: %s\n",
                kz_chan_why(d->c) ? kz_chan_why(d->c) : "closed/timeout");
        return -1;
    }
    if (hello) {
        struct kz_msg m;

        hello_msg(&m, 1, 1);
        if (send_msg(d, &m) != 0) {
            fprintf(stderr, "kz_hostile: cannot send HELLO\n");
            return -1;
        }
        memset(&m, 0, sizeof(m));
        if (pump_until(d, got_msg, &m, now_ms() + 5000) != 1 ||
            m.type != KZ_MSG_WELCOME) {
            fprintf(stderr, "kz_hostile: no WELCOME\n");
            kz_msg_clear(&m);
            return -1;
        }
        kz_msg_clear(&m);
    }
    return 0;
}

static void
dev_close(struct dev *d)
{
    if (d->fd >= 0)
        close(d->fd);
    kz_chan_free(d->c);
    kzc_close(&d->k);
}

/* After the bad input: waits for the close, and names the ERROR received
 * before it (if any) in ${extra}. */
static int
expect_error_and_close(struct dev *d, const char *mode, uint64_t t0)
{
    char extra[128] = "(no ERROR)";
    const uint8_t *p;
    size_t len;
    int closed = wait_closed(d->fd, now_ms() + 5000, d->c);

    while (kz_chan_next(d->c, &p, &len) == 1) {
        struct kz_msg m;
        if (kz_msg_decode(&m, p, len, NULL) == 0 && m.type == KZ_MSG_ERROR)
            snprintf(extra, sizeof(extra), "(ERROR %s: %.*s)",
                     kz_wire_err_name(m.error.code), (int)m.error.text.len,
                     m.error.text.p);
        kz_msg_clear(&m);
    }
    return report(mode, closed, t0, extra);
}

/* Sends ${m}, then expect_error_and_close; closes ${d}. */
static int
send_and_expect_close(struct dev *d, const struct kz_msg *m, const char *mode)
{
    uint64_t t0 = now_ms();
    int rc;

    (void)send_msg(d, m);
    rc = expect_error_and_close(d, mode, t0);
    dev_close(d);
    return rc;
}

static int
mode_bigframe(const char *dir, size_t tail)
{
    struct dev d;
    uint8_t *junk;
    uint64_t t0;
    int rc;

    if (dev_open(&d, dir, 1) != 0) {
        dev_close(&d);
        return 2;
    }
    t0 = now_ms();
    junk = calloc(1, tail + 4);
    if (junk == NULL) {
        dev_close(&d);
        return 2;
    }
    /* u32 BE 0xffffffff: a 4 GiB frame, then ${tail} bytes of its
     * "payload". */
    junk[0] = junk[1] = junk[2] = junk[3] = 0xff;
    memset(junk + 4, 0x90, tail);
    (void)send_frame_bytes(&d, junk, tail + 4);
    free(junk);
    rc = expect_error_and_close(&d, "bigframe", t0);
    dev_close(&d);
    return rc;
}

static int
mode_bomb(const char *dir, unsigned variant)
{
    static const uint8_t v0[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    /* [3, 1, "site:HAN", …] with an array32 header claiming 2^32-1. */
    static const uint8_t v1[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x03, 0x01, 0xa8,
                                 's',  'i',  't',  'e',  ':',  'H',  'A',  'N'};
    uint8_t v2[8 + 9 + 7 + 2 + 2 + 64];
    /* [5, 1, cursors: array32 claiming 2^32-1, …] */
    static const uint8_t v3[] = {0x94, 0x05, 0x01, 0xdd, 0xff,
                                 0xff, 0xff, 0xff, 0x90};
    const uint8_t *msg;
    size_t len, o = 0;
    uint8_t frame[4 + sizeof(v2)];
    struct dev d;
    uint64_t t0;
    int rc;
    char mode[32];

    /* [3, 1, "site:HAN", hdr = bin `dd ff ff ff ff`, body = bin "", sig] */
    v2[o++] = 0x96;
    v2[o++] = 0x03;
    v2[o++] = 0x01;
    v2[o++] = 0xa8;
    memcpy(v2 + o, "site:HAN", 8);
    o += 8;
    v2[o++] = 0xc4;
    v2[o++] = 5;
    memcpy(v2 + o, v0, 5);
    o += 5;
    v2[o++] = 0xc4;
    v2[o++] = 0;
    v2[o++] = 0xc4;
    v2[o++] = 64;
    memset(v2 + o, 0, 64);
    o += 64;
    switch (variant) {
    case 0:
        msg = v0;
        len = sizeof(v0);
        break;
    case 1:
        msg = v1;
        len = sizeof(v1);
        break;
    case 2:
        msg = v2;
        len = o;
        break;
    case 3:
        msg = v3;
        len = sizeof(v3);
        break;
    default: fprintf(stderr, "kz_hostile: bomb variant 0..3\n"); return 2;
    }
    if (dev_open(&d, dir, 1) != 0) {
        dev_close(&d);
        return 2;
    }
    t0 = now_ms();
    frame[0] = (uint8_t)(len >> 24);
    frame[1] = (uint8_t)(len >> 16);
    frame[2] = (uint8_t)(len >> 8);
    frame[3] = (uint8_t)len;
    memcpy(frame + 4, msg, len);
    (void)send_frame_bytes(&d, frame, 4 + len);
    snprintf(mode, sizeof(mode), "bomb%u", variant);
    rc = expect_error_and_close(&d, mode, t0);
    dev_close(&d);
    return rc;
}

static int
mode_nohello(const char *dir, unsigned secs)
{
    struct dev d;
    uint64_t t0;
    int rc;

    if (dev_open(&d, dir, 0) != 0) {
        dev_close(&d);
        return 2;
    }
    t0 = now_ms();
    rc = report("nohello", wait_closed(d.fd, t0 + (uint64_t)secs * 1000u, d.c),
                t0, NULL);
    dev_close(&d);
    return rc;
}

static int
mode_badrec(const char *dir)
{
    struct dev d;
    uint8_t rec[2 + 40];
    uint64_t t0;
    int rc;

    if (dev_open(&d, dir, 1) != 0) {
        dev_close(&d);
        return 2;
    }
    t0 = now_ms();
    rec[0] = 0;
    rec[1] = 40;
    randombytes_buf(rec + 2, 40);
    (void)send_all(d.fd, rec, sizeof(rec));
    rc = expect_error_and_close(&d, "badrec", t0);
    dev_close(&d);
    return rc;
}

/* A device that speaks only a protocol version the server does not: it
 * must get ERROR VERSION and a closed connection (no downgrade). */
static int
mode_newversion(const char *dir)
{
    struct dev d;
    struct kz_msg m;

    if (dev_open(&d, dir, 0) != 0) {
        dev_close(&d);
        return 2;
    }
    hello_msg(&m, 2, 7);
    return send_and_expect_close(&d, &m, "newversion");
}

/* PING before HELLO: only HELLO is allowed then (ERROR STATE, close). */
static int
mode_pingfirst(const char *dir)
{
    struct dev d;
    struct kz_msg m;

    if (dev_open(&d, dir, 0) != 0) {
        dev_close(&d);
        return 2;
    }
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_PING;
    m.ping.nonce = 1;
    return send_and_expect_close(&d, &m, "pingfirst");
}

/* A PUSH for scope site:HAN carrying a header of scope network. */
static int
mode_scopediff(const char *dir)
{
    struct dev d;
    struct kz_msg m;
    struct kz_cs_header h;
    uint8_t *hdr = NULL, body[16] = {0}, sig[64] = {0};
    size_t hdr_len = 0;
    int rc;

    if (dev_open(&d, dir, 1) != 0) {
        dev_close(&d);
        return 2;
    }
    memset(&h, 0, sizeof(h));
    h.format = KZ_CS_FORMAT;
    snprintf(h.scope, sizeof(h.scope), "network");
    memcpy(h.author, d.k.id.sign_pk.b, sizeof(h.author));
    h.author_seq = 1;
    h.epoch = 1;
    h.n_cells = 1;
    h.n_rows = 1;
    h.hlc_min = h.hlc_max = 1;
    if (kz_cs_header_encode(&h, &hdr, &hdr_len) != 0) {
        dev_close(&d);
        return 2;
    }
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_PUSH;
    m.push.req = 1;
    m.push.scope.p = "site:HAN";
    m.push.scope.len = 8;
    m.push.hdr.p = hdr;
    m.push.hdr.len = hdr_len;
    m.push.body.p = body;
    m.push.body.len = sizeof(body);
    m.push.sig = sig;
    rc = send_and_expect_close(&d, &m, "scopediff");
    kz_free(hdr);
    return rc;
}

struct want_req {
    uint32_t type, req; /* wanted */
    uint32_t code;      /* its ERROR code, if an ERROR */
    int open;           /* 0 once the session closed */
};

/* Reads messages until one of ${w}'s type and req arrives. */
static int
got_reply(struct dev *d, void *arg)
{
    struct want_req *w = arg;
    struct kz_msg m;

    while (got_msg(d, &m)) {
        uint32_t req = m.type == KZ_MSG_ERROR  ? m.error.req
                       : m.type == KZ_MSG_KEYS ? m.keys.req
                       : m.type == KZ_MSG_PONG ? (uint32_t)m.ping.nonce
                                               : 0;
        int hit = m.type == w->type && req == w->req;
        if (hit && m.type == KZ_MSG_ERROR)
            w->code = m.error.code;
        kz_msg_clear(&m);
        if (hit)
            return 1;
    }
    return 0;
}

/* HELLO again (ERROR STATE), then PINGs the server will not read. */
static int
mode_errflood(const char *dir)
{
    struct dev d;
    struct kz_msg m;
    uint64_t t0;
    int rc;

    if (dev_open(&d, dir, 1) != 0) {
        dev_close(&d);
        return 2;
    }
    hello_msg(&m, 1, 1);
    if (queue_msg(&d, &m) != 0) {
        dev_close(&d);
        return 2;
    }
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_PING;
    while (kz_chan_out(d.c)->len < ((size_t)8 << 20) && queue_msg(&d, &m) == 0)
        m.ping.nonce++;
    t0 = now_ms();
    /* Non-blocking: what the server does not read stays unsent. */
    {
        struct kz_buf *out = kz_chan_out(d.c);
        int fl = fcntl(d.fd, F_GETFL);
        (void)fcntl(d.fd, F_SETFL, fl | O_NONBLOCK);
        while (out->len > 0) {
            ssize_t n = send(d.fd, out->p, out->len, MSG_NOSIGNAL);
            if (n <= 0)
                break;
            kz_buf_consume(out, (size_t)n);
        }
        (void)fcntl(d.fd, F_SETFL, fl);
    }
    rc = expect_error_and_close(&d, "errflood", t0);
    dev_close(&d);
    return rc;
}

static int
mode_manyrget(const char *dir, unsigned long n)
{
    struct dev d;
    struct kz_msg m;
    struct want_req w;
    uint64_t t0;
    unsigned long i;
    int ok;

    if (dev_open(&d, dir, 1) != 0) {
        dev_close(&d);
        return 2;
    }
    t0 = now_ms();
    for (i = 0; i <= n; i++) {
        memset(&m, 0, sizeof(m));
        if (i < n) {
            m.type = KZ_MSG_ROSTER_GET;
            m.roster_get.req = (uint32_t)i + 1;
        } else {
            m.type = KZ_MSG_PING;
            m.ping.nonce = 7;
        }
        if (queue_msg(&d, &m) != 0) {
            dev_close(&d);
            return 2;
        }
    }
    (void)flush_out(&d); /* all in one write */
    memset(&w, 0, sizeof(w));
    w.type = KZ_MSG_PONG;
    w.req = 7;
    ok = pump_until(&d, got_reply, &w, now_ms() + 5000) == 1;
    printf("manyrget: %s after %llu ms\n", ok ? "PONG" : "NO PONG (stalled)",
           (unsigned long long)(now_ms() - t0));
    dev_close(&d);
    return ok ? 0 : 1;
}

static int
got_shutdown(struct dev *d, void *arg)
{
    int *seen = arg;
    struct kz_msg m;

    while (got_msg(d, &m)) {
        if (m.type == KZ_MSG_ERROR && m.error.code == KZ_WIRE_SHUTDOWN)
            *seen = 1;
        kz_msg_clear(&m);
    }
    return *seen;
}

static int
mode_stallpull(const char *dir)
{
    struct dev d;
    struct kz_msg m;
    struct kz_msg_cursor cur;
    struct timespec pause = {1, 500 * 1000 * 1000};
    uint64_t t0;
    int seen = 0, rc;

    g_rcvbuf = 16384; /* so that the BATCH waits in the server's queue */
    if (dev_open(&d, dir, 1) != 0) {
        dev_close(&d);
        return 2;
    }
    memset(&m, 0, sizeof(m));
    memset(&cur, 0, sizeof(cur));
    cur.scope.p = "site:HAN";
    cur.scope.len = 8;
    m.type = KZ_MSG_PULL;
    m.pull.req = 1;
    m.pull.cursors = &cur;
    m.pull.n_cursors = 1;
    m.pull.max_bytes = 8u << 20;
    if (send_msg(&d, &m) != 0) {
        dev_close(&d);
        return 2;
    }
    printf("stallpull: pulled\n");
    fflush(stdout);
    nanosleep(&pause, NULL);
    t0 = now_ms();
    rc = pump_until(&d, got_shutdown, &seen, now_ms() + 10000);
    printf("stallpull: %s after %llu ms\n",
           seen     ? "ERROR SHUTDOWN received"
           : rc < 0 ? "closed without ERROR SHUTDOWN"
                    : "no ERROR SHUTDOWN in time",
           (unsigned long long)(now_ms() - t0));
    dev_close(&d);
    return seen ? 0 : 1;
}

static int
mode_keepsend(const char *dir, unsigned secs)
{
    struct dev d;
    struct kz_msg m;
    uint64_t end;
    unsigned long n = 0;

    if (dev_open(&d, dir, 1) != 0) {
        dev_close(&d);
        return 2;
    }
    printf("keepsend: ready\n");
    fflush(stdout);
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_PING;
    for (end = now_ms() + (uint64_t)secs * 1000u; now_ms() < end; n++) {
        struct timespec pause = {0, 20 * 1000 * 1000};
        m.ping.nonce = n;
        if (send_msg(&d, &m) != 0)
            break; /* the server closed */
        nanosleep(&pause, NULL);
    }
    printf("keepsend: %lu PINGs sent\n", n);
    dev_close(&d);
    return 0;
}

static int
mode_twokeys(const char *dir)
{
    struct dev d;
    struct kz_msg m;
    struct want_req w;
    uint64_t t0;
    int ok = 0;

    if (dev_open(&d, dir, 1) != 0) {
        dev_close(&d);
        return 2;
    }
    /* Both in one write, so that the server reads them together, before
     * the store has answered the first. */
    memset(&m, 0, sizeof(m));
    m.type = KZ_MSG_KEYS_GET;
    t0 = now_ms();
    for (m.keys_get.req = 1; m.keys_get.req <= 2; m.keys_get.req++) {
        if (queue_msg(&d, &m) != 0) {
            dev_close(&d);
            return 2;
        }
    }
    (void)flush_out(&d);
    memset(&w, 0, sizeof(w));
    w.type = KZ_MSG_ERROR;
    w.req = 2;
    if (pump_until(&d, got_reply, &w, now_ms() + 5000) == 1 &&
        w.code == KZ_WIRE_STATE) {
        memset(&m, 0, sizeof(m));
        m.type = KZ_MSG_PING;
        m.ping.nonce = 3;
        (void)send_msg(&d, &m);
        memset(&w, 0, sizeof(w));
        w.type = KZ_MSG_PONG;
        w.req = 3;
        ok = pump_until(&d, got_reply, &w, now_ms() + 5000) == 1;
    }
    printf("twokeys: %s after %llu ms\n",
           ok ? "second refused, still open" : "not as required",
           (unsigned long long)(now_ms() - t0));
    dev_close(&d);
    return ok ? 0 : 1;
}

static int
usage(void)
{
    fputs("usage: kz_hostile MODE HOST PORT [DIR] [N] [SECONDS] (see "
          "hostile.c)\n",
          stderr);
    return 2;
}

int
main(int argc, char **argv)
{
    const char *mode;

    if (argc < 4)
        return usage();
    signal(SIGPIPE, SIG_IGN);
    if (kz_crypto_init() != 0)
        return 2;
    mode = argv[1];
    g_host = argv[2];
    g_port = argv[3];
    if (strcmp(mode, "garbage") == 0 && argc == 5)
        return mode_garbage(strtoul(argv[4], NULL, 10));
    if (strcmp(mode, "bigrec") == 0 && argc == 4)
        return mode_bigrec();
    if (strcmp(mode, "slowloris") == 0 && argc == 5)
        return mode_slowloris((unsigned)strtoul(argv[4], NULL, 10));
    if (strcmp(mode, "idle") == 0 && argc == 6)
        return mode_idle(strtoul(argv[4], NULL, 10),
                         (unsigned)strtoul(argv[5], NULL, 10));
    if (strcmp(mode, "churn") == 0 && (argc == 5 || argc == 6))
        return mode_churn(strtoul(argv[4], NULL, 10),
                          argc == 6 ? strtoul(argv[5], NULL, 10) : 0);
    if (strcmp(mode, "bigframe") == 0 && argc == 6)
        return mode_bigframe(argv[4], strtoul(argv[5], NULL, 10));
    if (strcmp(mode, "bomb") == 0 && argc == 6)
        return mode_bomb(argv[4], (unsigned)strtoul(argv[5], NULL, 10));
    if (strcmp(mode, "nohello") == 0 && argc == 6)
        return mode_nohello(argv[4], (unsigned)strtoul(argv[5], NULL, 10));
    if (strcmp(mode, "badrec") == 0 && argc == 5)
        return mode_badrec(argv[4]);
    if (strcmp(mode, "newversion") == 0 && argc == 5)
        return mode_newversion(argv[4]);
    if (strcmp(mode, "pingfirst") == 0 && argc == 5)
        return mode_pingfirst(argv[4]);
    if (strcmp(mode, "scopediff") == 0 && argc == 5)
        return mode_scopediff(argv[4]);
    if (strcmp(mode, "twokeys") == 0 && argc == 5)
        return mode_twokeys(argv[4]);
    if (strcmp(mode, "errflood") == 0 && argc == 5)
        return mode_errflood(argv[4]);
    if (strcmp(mode, "stallpull") == 0 && argc == 5)
        return mode_stallpull(argv[4]);
    if (strcmp(mode, "keepsend") == 0 && argc == 6)
        return mode_keepsend(argv[4], (unsigned)strtoul(argv[5], NULL, 10));
    if (strcmp(mode, "manyrget") == 0 && argc == 6)
        return mode_manyrget(argv[4], strtoul(argv[5], NULL, 10));
    return usage();
}
