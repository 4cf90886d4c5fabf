/*
 * recproxy: a recording TCP proxy for the security tests (loopback only).
 *
 *   recproxy LISTEN_PORT TARGET_PORT CAPTURE_FILE
 *
 * Listens on 127.0.0.1:LISTEN_PORT; every accepted connection is forwarded
 * to 127.0.0.1:TARGET_PORT, and every byte in either direction is appended
 * to CAPTURE_FILE (as it passes; no framing), so the test can grep the
 * whole conversation for plaintext.  Prints "recproxy listening" on stderr
 * once it listens.  Stops on SIGTERM/SIGINT.  Single-threaded poll loop,
 * at most MAX_PAIRS connections at a time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PAIRS 64

static volatile sig_atomic_t stop;

static void
on_sig(int sig)
{
    (void)sig;
    stop = 1;
}

struct pair {
    int a, b; /* client side, server side; -1 when unused */
};

static int
connect_to(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void
close_pair(struct pair *p)
{
    if (p->a >= 0)
        close(p->a);
    if (p->b >= 0)
        close(p->b);
    p->a = p->b = -1;
}

int
main(int argc, char **argv)
{
    struct pair pairs[MAX_PAIRS];
    struct sockaddr_in sa;
    struct sigaction act;
    int lfd, one = 1, lport, tport, cap, i;
    static char buf[65536];

    if (argc != 4) {
        fprintf(stderr,
                "usage: recproxy LISTEN_PORT TARGET_PORT CAPTURE_FILE\n");
        return 2;
    }
    lport = atoi(argv[1]);
    tport = atoi(argv[2]);
    cap = open(argv[3], O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (cap < 0) {
        perror("recproxy: capture file");
        return 1;
    }
    memset(&act, 0, sizeof(act));
    act.sa_handler = on_sig;
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    signal(SIGPIPE, SIG_IGN);
    for (i = 0; i < MAX_PAIRS; i++)
        pairs[i].a = pairs[i].b = -1;

    lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0)
        return 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)lport);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(lfd, 16) != 0) {
        fprintf(stderr, "recproxy: cannot listen on %d: %s\n", lport,
                strerror(errno));
        return 1;
    }
    fprintf(stderr, "recproxy listening on 127.0.0.1:%d -> %d\n", lport, tport);

    while (!stop) {
        struct pollfd pfd[1 + 2 * MAX_PAIRS];
        int who[1 + 2 * MAX_PAIRS];
        int n = 0, rc;

        pfd[n].fd = lfd;
        pfd[n].events = POLLIN;
        who[n++] = -1;
        for (i = 0; i < MAX_PAIRS; i++) {
            if (pairs[i].a < 0)
                continue;
            pfd[n].fd = pairs[i].a;
            pfd[n].events = POLLIN;
            who[n++] = 2 * i;
            pfd[n].fd = pairs[i].b;
            pfd[n].events = POLLIN;
            who[n++] = 2 * i + 1;
        }
        rc = poll(pfd, (nfds_t)n, 500);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (i = 0; i < n; i++) {
            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (who[i] < 0) {
                int c = accept(lfd, NULL, NULL), s, k;
                if (c < 0)
                    continue;
                s = connect_to(tport);
                for (k = 0; k < MAX_PAIRS && pairs[k].a >= 0; k++)
                    ;
                if (s < 0 || k == MAX_PAIRS) {
                    close(c);
                    if (s >= 0)
                        close(s);
                    continue;
                }
                pairs[k].a = c;
                pairs[k].b = s;
                continue;
            }
            {
                struct pair *p = &pairs[who[i] / 2];
                int from = (who[i] % 2) ? p->b : p->a;
                int to = (who[i] % 2) ? p->a : p->b;
                ssize_t r;
                if (from < 0)
                    continue; /* closed earlier in this round */
                r = read(from, buf, sizeof(buf));
                if (r <= 0) {
                    if (r < 0 && errno == EINTR)
                        continue;
                    close_pair(p);
                    continue;
                }
                if (write_all(cap, buf, (size_t)r) != 0) {
                    perror("recproxy: capture");
                    return 1;
                }
                if (write_all(to, buf, (size_t)r) != 0)
                    close_pair(p);
            }
        }
    }
    for (i = 0; i < MAX_PAIRS; i++)
        close_pair(&pairs[i]);
    close(lfd);
    fsync(cap);
    close(cap);
    return 0;
}
