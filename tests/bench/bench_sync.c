/*
 * bench_sync.c: end to end, through the real kzsync and kzsyncd over
 * loopback, against plain SQLite inserting the same rows in the same run.
 *
 *     bench_sync [--reps N] [--rows N] [--perf DIR]
 *
 * Each repetition, in a fresh temporary directory (bench_net.h):
 *   setup (not timed): kzsyncd init/trust/run, kzsync init LAND
 *     --create-network, reference data, kzsync sync LAND; kzsync init HAN,
 *     kzsync member add LAND … --role site, kzsync sync LAND.  Then the
 *     workload's table (that of bench_engine: TEXT pk + 4 short TEXT + 2
 *     INTEGER + 1 REAL + 1 TEXT of ~200 bytes) is created and tracked as
 *     "network" in both replicas through the C API (replica_open +
 *     replica_track).  HAN has never synced.
 *   timed:
 *     a. ${rows} rows inserted at LAND into the tracked table, one
 *        transaction (in this process, replica_db of LAND);
 *     b. `kzsync sync LAND`: replica_build_step (fold + pack, 8,192 log
 *        rows a step), sign, PUSH over Noise while the next step is packed,
 *        server verifies and stores (group commit, synchronous=FULL),
 *        PUSH_ACKs, outbox acked;
 *     c. `kzsync sync HAN` (fresh device): roster, PULL, verify every
 *        signature against the roster, apply with the cursor.
 *     plain: the same rows inserted into a plain SQLite database with the
 *        engine's pragmas, one transaction (same code as bench_engine).
 *   checked: HAN holds every row, and replica_digest("network") of LAND
 *   and HAN are equal.
 * Then as many repetitions with HAN already running `kzsync run`: timed
 * from the first insert at LAND, through `kzsync sync LAND`, until HAN's
 * cursor reaches the last changeset LAND stored (HAN pulls on each NOTIFY
 * while LAND still pushes); checked the same way.
 *
 * Then the cryptography of the path, measured in this process with the
 * product's own code (kz_chan, libsodium through common/crypto.h): a whole
 * Noise XX handshake (both sides), the transport (kz_chan_send / feed /
 * next with 1 MiB frames, and raw ChaCha20-Poly1305 on 64 KiB records),
 * Ed25519 sign/verify of header ‖ body at the median changeset size of
 * the run, and XChaCha20-Poly1305 (the body sealing of proto/seal.h: LAND
 * seals each body once, HAN opens it).  The crypto share of the
 * end-to-end time is computed from them and the run's byte and changeset
 * counts.
 *
 * --perf DIR: one more repetition with `perf record` on kzsync sync LAND,
 * kzsync sync HAN and (attached) kzsyncd; prints the share of CPU samples
 * per DSO of each, so libsodium's share is measured, not modelled.
 */
#include <sodium.h>
#include <sqlite3.h>
#include <sys/resource.h>

#include "bench_net.h"

#include "chan.h"
#include "crypto.h"
#include "err.h"
#include "replica.h"

#include "bench_workload.h"

static const char PRAGMAS[] = "PRAGMA journal_mode = WAL;"
                              "PRAGMA synchronous = NORMAL;"
                              "PRAGMA foreign_keys = ON;"
                              "PRAGMA recursive_triggers = ON;"
                              "PRAGMA temp_store = MEMORY;"
                              /* As replica.c opens the replica. */
                              "PRAGMA mmap_size = 268435456;";
static const struct track_decl NET = {"network", NULL, NULL, NULL, NULL, NULL};

static sqlite3 *
plain_open(const char *path)
{
    sqlite3 *db = NULL;

    if (sqlite3_open_v2(path, &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        bn_die("open %s", path);
    sqlite3_busy_timeout(db, 10000);
    exec_ok(db, PRAGMAS);
    exec_ok(db, BW_CREATE_SQL);
    return db;
}

static struct replica *
open_replica(const char *dir)
{
    struct replica *r = NULL;
    int err = replica_open(&r, dir, NULL);

    if (err)
        bn_die("replica_open %s: %s (%s)", dir, kz_err_name(err),
               replica_errmsg(NULL));
    sqlite3_busy_timeout(replica_db(r), 10000);
    return r;
}

static void
create_tracked(const char *dir)
{
    struct replica *r = open_replica(dir);
    int err;

    exec_ok(replica_db(r), BW_CREATE_SQL);
    if ((err = replica_track(r, "item", &NET)))
        bn_die("replica_track %s: %s", dir, replica_errmsg(r));
    replica_free(r);
}

/* Changesets of scope network in the server's store: count, bytes. */
static void
store_counts(const char *srv, int64_t *n, int64_t *bytes, int64_t *median_sz)
{
    char path[700];
    sqlite3 *db = NULL;

    snprintf(path, sizeof(path), "%s/store.db", srv);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        bn_die("open %s", path);
    sqlite3_busy_timeout(db, 10000);
    *n = sql_int(db, "SELECT count(*) FROM kzs_cs WHERE scope = 'network'");
    *bytes = sql_int(db, "SELECT coalesce(sum(length(hdr) + length(body) + "
                         "length(sig)), 0) FROM kzs_cs WHERE scope = "
                         "'network'");
    if (median_sz) {
        char q[300];
        snprintf(q, sizeof(q),
                 "SELECT length(hdr) + length(body) FROM kzs_cs WHERE scope ="
                 " 'network' ORDER BY 1 LIMIT 1 OFFSET %lld",
                 (long long)(*n / 2));
        *median_sz = sql_int(db, q);
    }
    sqlite3_close(db);
}

/* Runs a command; wall seconds, and its CPU seconds in *cpu. */
static double
time_cmd_cpu(char *const argv[], const char *log, double *cpu)
{
    double t0 = bn_now(), t1;
    pid_t pid = bn_spawn(argv, log);
    struct rusage ru;
    int st;

    if (wait4(pid, &st, 0, &ru) != pid)
        bn_die("wait4: %s", strerror(errno));
    bn_child_forget(pid);
    t1 = bn_now();
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        bn_die("%s %s %s failed (status %d); see %s", argv[0], argv[1],
               argv[2] ? argv[2] : "", st, log);
    *cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    return t1 - t0;
}

/* ---- one repetition ----------------------------------------------------- */

struct rep {
    double ins, plain, push, pull, e2e;
    double cpu_push, cpu_pull, cpu_srv;
    int64_t n_cs, cs_bytes, cs_median;
};

/* Setup up to "HAN enrolled, tables tracked"; returns HAN's directory. */
static void
setup_rep(struct bn_net *n, char *han, size_t han_len)
{
    char cmd[4096], join[1024];

    bn_setup(n, "sync", 64, "warning");
    snprintf(han, han_len, "%s/han", n->root);
    snprintf(cmd, sizeof(cmd),
             "'%s' init '%s' --site HAN --device han-1 --server %s "
             "--server-key %s",
             bn_kzsync, han, n->addr, n->server_key);
    bn_run_ok(join, sizeof(join), n->log, "kzsync init han", cmd);
    snprintf(cmd, sizeof(cmd), "'%s' member add '%s' '%s' --role site",
             bn_kzsync, n->land, join);
    bn_run_ok(NULL, 0, n->log, "kzsync member add", cmd);
    snprintf(cmd, sizeof(cmd), "'%s' sync '%s'", bn_kzsync, n->land);
    bn_run_ok(NULL, 0, n->log, "kzsync sync land", cmd);
    create_tracked(n->land);
    create_tracked(han);
}

static void
check_rep(struct bn_net *n, const char *han, int rows)
{
    struct replica *a = open_replica(n->land), *b = open_replica(han);
    uint8_t da[32], db_[32];

    if (sql_int(replica_db(b), "SELECT count(*) FROM item") != rows)
        bn_die("HAN holds %lld rows, not %d",
               (long long)sql_int(replica_db(b), "SELECT count(*) FROM item"),
               rows);
    if (sql_int(replica_db(b), "SELECT count(*) FROM kz_quarantine") != 0)
        bn_die("HAN has cells in quarantine");
    if (replica_digest(a, "network", da) != 0 ||
        replica_digest(b, "network", db_) != 0)
        bn_die("replica_digest failed");
    if (memcmp(da, db_, 32) != 0)
        bn_die("LAND and HAN differ after the sync");
    replica_free(a);
    replica_free(b);
}

static void
run_rep(int r, const struct rowdata *d, int rows, struct rep *o)
{
    struct bn_net n;
    char han[700], plain[700];
    char *push_argv[] = {bn_kzsync, (char *)"sync", n.land, NULL};
    char *pull_argv[] = {bn_kzsync, (char *)"sync", han, NULL};
    struct replica *land;
    sqlite3 *p;
    int64_t n0, b0;
    double srv0;

    setup_rep(&n, han, sizeof(han));
    push_argv[2] = n.land;
    store_counts(n.srv, &n0, &b0, NULL);
    snprintf(plain, sizeof(plain), "%s/plain.db", n.root);
    p = plain_open(plain);
    land = open_replica(n.land);
    if (r % 2 == 0) {
        o->plain = insert_rows(p, d, rows);
        o->ins = insert_rows(replica_db(land), d, rows);
    } else {
        o->ins = insert_rows(replica_db(land), d, rows);
        o->plain = insert_rows(p, d, rows);
    }
    replica_free(land);
    sqlite3_close(p);
    srv0 = bn_proc_cpu_s(n.pid);
    o->push = time_cmd_cpu(push_argv, n.log, &o->cpu_push);
    o->pull = time_cmd_cpu(pull_argv, n.log, &o->cpu_pull);
    o->cpu_srv = bn_proc_cpu_s(n.pid) - srv0;
    o->e2e = o->ins + o->push + o->pull;
    store_counts(n.srv, &o->n_cs, &o->cs_bytes, &o->cs_median);
    o->n_cs -= n0;
    o->cs_bytes -= b0;
    check_rep(&n, han, rows);
    bn_teardown(&n);
    fprintf(stderr,
            "rep %d: insert %.3f (plain %.3f) push %.3f pull %.3f e2e %.3f s;"
            " %lld cs, %.1f MB; cpu push %.2f pull %.2f server %.2f s\n",
            r + 1, o->ins, o->plain, o->push, o->pull, o->e2e,
            (long long)o->n_cs, o->cs_bytes / 1e6, o->cpu_push, o->cpu_pull,
            o->cpu_srv);
}

/*
 * The same, with HAN already running `kzsync run` (connected, subscribed):
 * LAND inserts and runs `kzsync sync`, and HAN pulls on each NOTIFY while
 * LAND still pushes.  Timed from the start of the insert until HAN's
 * cursor reaches the last changeset LAND stored.  Returns that time.
 */
static double
run_rep_live(const struct rowdata *d, int rows)
{
    struct bn_net n;
    char han[700], path[800];
    char *push_argv[] = {bn_kzsync, (char *)"sync", NULL, NULL};
    char *run_argv[] = {bn_kzsync, (char *)"run", han, NULL};
    struct replica *land;
    sqlite3 *hdb = NULL, *sdb = NULL;
    pid_t run;
    double t0, t1;
    int64_t last = 0;
    int i;

    setup_rep(&n, han, sizeof(han));
    push_argv[2] = n.land;
    run = bn_spawn(run_argv, n.log);
    snprintf(path, sizeof(path), "%s/replica.db", han);
    if (sqlite3_open_v2(path, &hdb, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        bn_die("open %s", path);
    sqlite3_busy_timeout(hdb, 10000);
    /* Its first round done (it then subscribes): at most 30 s. */
    for (i = 0; i < 3000 && sql_int(hdb, "SELECT count(*) FROM kz_meta WHERE"
                                         " key = 'last_sync'") == 0;
         i++)
        usleep(10000);
    if (i == 3000)
        bn_die("kzsync run HAN did not finish its first round; see %s", n.log);
    usleep(200000);
    land = open_replica(n.land);
    t0 = bn_now();
    (void)insert_rows(replica_db(land), d, rows);
    replica_free(land);
    (void)bn_time_cmd(push_argv, n.log);
    snprintf(path, sizeof(path), "%s/store.db", n.srv);
    if (sqlite3_open_v2(path, &sdb, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        bn_die("open %s", path);
    sqlite3_busy_timeout(sdb, 10000);
    last = sql_int(sdb, "SELECT max(server_seq) FROM kzs_cs WHERE scope ="
                        " 'network'");
    sqlite3_close(sdb);
    /* HAN done: at most 120 s more. */
    for (i = 0; i < 60000 && sql_int(hdb, "SELECT coalesce(max(server_seq), 0)"
                                          " FROM kz_cursor WHERE scope ="
                                          " 'network'") < last;
         i++)
        usleep(2000);
    t1 = bn_now();
    sqlite3_close(hdb);
    if (i == 60000)
        bn_die("HAN did not pull everything within 120 s; see %s", n.log);
    bn_stop(run, SIGTERM);
    check_rep(&n, han, rows);
    bn_teardown(&n);
    return t1 - t0;
}

/* ---- perf ---------------------------------------------------------------- */

/* Prints the DSO shares of ${data}; returns libsodium's share (%). */
static double
perf_dso(const char *data, const char *label)
{
    char cmd[1024], line[512];
    FILE *p;
    double sodium = 0;
    int shown = 0;

    snprintf(cmd, sizeof(cmd),
             "perf report -i '%s' --no-children --sort dso -q --stdio "
             "2>/dev/null",
             data);
    p = popen(cmd, "r");
    if (p == NULL)
        bn_die("popen perf report");
    printf("   %s:", label);
    while (fgets(line, sizeof(line), p)) {
        double pct;
        char dso[256];
        if (sscanf(line, " %lf%% %255s", &pct, dso) != 2)
            continue;
        if (strstr(dso, "libsodium"))
            sodium += pct;
        if (shown < 5 && pct >= 1.0) {
            printf(" %s %.1f%%", dso, pct);
            shown++;
        }
    }
    pclose(p);
    printf("  => libsodium %.1f%%\n", sodium);
    return sodium;
}

static void
run_perf(const char *dir, const struct rowdata *d, int rows)
{
    struct bn_net n;
    char han[700], f_push[800], f_pull[800], f_srv[800], pidtxt[32];
    struct replica *land;
    pid_t perf_srv;
    double t_push, t_pull;

    mkdir(dir, 0755);
    snprintf(f_push, sizeof(f_push), "%s/push.data", dir);
    snprintf(f_pull, sizeof(f_pull), "%s/pull.data", dir);
    snprintf(f_srv, sizeof(f_srv), "%s/kzsyncd.data", dir);
    setup_rep(&n, han, sizeof(han));
    land = open_replica(n.land);
    (void)insert_rows(replica_db(land), d, rows);
    replica_free(land);
    snprintf(pidtxt, sizeof(pidtxt), "%d", (int)n.pid);
    {
        char *argv[] = {(char *)"/usr/bin/perf",
                        (char *)"record",
                        (char *)"-F",
                        (char *)"999",
                        (char *)"--call-graph",
                        (char *)"dwarf,16384",
                        (char *)"-o",
                        f_srv,
                        (char *)"-p",
                        pidtxt,
                        NULL};
        perf_srv = bn_spawn(argv, n.log);
        usleep(500000);
    }
    {
        char *argv[] = {(char *)"/usr/bin/perf",
                        (char *)"record",
                        (char *)"-F",
                        (char *)"999",
                        (char *)"--call-graph",
                        (char *)"dwarf,16384",
                        (char *)"-o",
                        f_push,
                        (char *)"--",
                        bn_kzsync,
                        (char *)"sync",
                        n.land,
                        NULL};
        t_push = bn_time_cmd(argv, n.log);
    }
    {
        char *argv[] = {(char *)"/usr/bin/perf",
                        (char *)"record",
                        (char *)"-F",
                        (char *)"999",
                        (char *)"--call-graph",
                        (char *)"dwarf,16384",
                        (char *)"-o",
                        f_pull,
                        (char *)"--",
                        bn_kzsync,
                        (char *)"sync",
                        han,
                        NULL};
        t_pull = bn_time_cmd(argv, n.log);
    }
    bn_stop(perf_srv, SIGINT);
    check_rep(&n, han, rows);
    bn_teardown(&n);
    printf("\nperf (one more repetition under perf record -F 999 --call-graph "
           "dwarf; "
           "push %.2f s, pull %.2f s wall): CPU samples by DSO\n",
           t_push, t_pull);
    perf_dso(f_push, "kzsync sync LAND");
    perf_dso(f_srv, "kzsyncd         ");
    perf_dso(f_pull, "kzsync sync HAN ");
    printf("   data in %s (perf report -i FILE --no-children --sort dso,sym)"
           "\n",
           dir);
}

/* ---- cryptography ------------------------------------------------------ */

struct cryptofig {
    double hs;        /* one XX handshake, both sides, s */
    double chan_seal; /* kz_chan_send, MB/s of app bytes */
    double chan_open; /* kz_chan_feed + next, MB/s */
    double aead_enc;  /* raw ChaCha20-Poly1305, 64 KiB records, MB/s */
    double aead_dec;
    double xaead_enc; /* XChaCha20-Poly1305 on the changeset size */
    double xaead_dec;
    double sign; /* Ed25519 sign of hdr‖body, s */
    double verify;
};

static void
pump(struct kz_chan *from, struct kz_chan *to)
{
    struct kz_buf *o = kz_chan_out(from);
    int err;

    if (o->len == 0)
        return;
    if ((err = kz_chan_feed(to, o->p, o->len)))
        bn_die("kz_chan_feed: %s (%s)", kz_err_name(err),
               kz_chan_why(to) ? kz_chan_why(to) : "");
    kz_buf_consume(o, o->len);
}

static void
chan_pair(struct kz_chan **ci, struct kz_chan **cr, const struct kz_dh_sk *csk,
          const struct kz_dh_sk *ssk, const struct kz_dh_pk *spk,
          size_t out_max)
{
    struct kz_chan_cfg a, b;
    int i, err;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.initiator = 1;
    a.s = csk;
    a.pinned = spk;
    a.env = kz_env_system();
    a.out_max = out_max;
    b.initiator = 0;
    b.s = ssk;
    b.env = kz_env_system();
    b.out_max = out_max;
    if ((err = kz_chan_new(ci, &a)) || (err = kz_chan_new(cr, &b)))
        bn_die("kz_chan_new: %s", kz_err_name(err));
    for (i = 0; i < 8; i++) {
        pump(*ci, *cr);
        pump(*cr, *ci);
        if (kz_chan_state(*ci) == KZ_CHAN_READY &&
            kz_chan_state(*cr) == KZ_CHAN_READY)
            return;
    }
    bn_die("handshake did not complete");
}

static void
measure_crypto(struct cryptofig *f, size_t cs_size)
{
    struct kz_dh_pk cpk, spk;
    struct kz_dh_sk csk, ssk;
    struct kz_sign_pk gpk;
    struct kz_sign_sk gsk;
    struct kz_sign_sig sig;
    struct kz_aead_key key;
    struct kz_chan *ci, *cr;
    double v[64], t0;
    uint8_t nonce[24] = {0}, *buf, *ct;
    size_t total = (size_t)64 << 20, frame = (size_t)1 << 20, done;
    int i, k, err;

    if (kz_crypto_init() != 0)
        bn_die("kz_crypto_init");
    if (kz_dh_keypair(kz_env_system(), &cpk, &csk) ||
        kz_dh_keypair(kz_env_system(), &spk, &ssk) ||
        kz_sign_keypair(kz_env_system(), &gpk, &gsk))
        bn_die("keypair");
    randombytes_buf(key.b, sizeof(key.b));

    /* Handshake: median of 31 batches of 20. */
    for (k = 0; k < 31; k++) {
        t0 = bn_now();
        for (i = 0; i < 20; i++) {
            chan_pair(&ci, &cr, &csk, &ssk, &spk, (size_t)1 << 20);
            kz_chan_free(ci);
            kz_chan_free(cr);
        }
        v[k] = (bn_now() - t0) / 20;
    }
    f->hs = bn_median(v, 31);

    /* Transport through kz_chan: 64 MiB of 1 MiB frames, 5 times. */
    buf = malloc(frame + 4);
    ct = malloc(cs_size + 64 > 65536 + 16 ? cs_size + 64 : 65536 + 16);
    if (buf == NULL || ct == NULL)
        bn_die("out of memory");
    randombytes_buf(buf, frame + 4);
    buf[0] = (uint8_t)(frame >> 24);
    buf[1] = (uint8_t)(frame >> 16);
    buf[2] = (uint8_t)(frame >> 8);
    buf[3] = (uint8_t)frame;
    {
        double vs[5], vo[5];
        for (k = 0; k < 5; k++) {
            double ts = 0, to = 0;
            chan_pair(&ci, &cr, &csk, &ssk, &spk, (size_t)80 << 20);
            for (done = 0; done < total; done += 16 * frame) {
                size_t j;
                t0 = bn_now();
                for (j = 0; j < 16; j++)
                    if ((err = kz_chan_send(ci, buf, frame + 4)))
                        bn_die("kz_chan_send: %s", kz_err_name(err));
                ts += bn_now() - t0;
                t0 = bn_now();
                {
                    /* As a socket would deliver it: 64 KiB reads, each
                     * followed by taking the whole frames out. */
                    struct kz_buf *o = kz_chan_out(ci);
                    size_t off = 0;
                    while (off < o->len) {
                        size_t nb = o->len - off < 65536 ? o->len - off : 65536;
                        if ((err = kz_chan_feed(cr, o->p + off, nb)))
                            bn_die("kz_chan_feed: %s", kz_err_name(err));
                        off += nb;
                        for (;;) {
                            const uint8_t *m;
                            size_t len;
                            int got = kz_chan_next(cr, &m, &len);
                            if (got < 0)
                                bn_die("kz_chan_next");
                            if (got == 0)
                                break;
                            if (len != frame)
                                bn_die("frame of %zu bytes", len);
                        }
                    }
                    kz_buf_consume(o, o->len);
                }
                to += bn_now() - t0;
            }
            vs[k] = total / ts / 1e6;
            vo[k] = total / to / 1e6;
            kz_chan_free(ci);
            kz_chan_free(cr);
        }
        f->chan_seal = bn_median(vs, 5);
        f->chan_open = bn_median(vo, 5);
    }

    /* Raw ChaCha20-Poly1305 on 64 KiB records (the Noise record size). */
    {
        double ve[5], vd[5];
        size_t rec = 65519, n_rec = 1024;
        for (k = 0; k < 5; k++) {
            t0 = bn_now();
            for (i = 0; i < (int)n_rec; i++)
                if (kz_cpaead_encrypt(ct, buf, rec, NULL, 0, nonce, &key))
                    bn_die("encrypt");
            ve[k] = rec * n_rec / (bn_now() - t0) / 1e6;
            t0 = bn_now();
            for (i = 0; i < (int)n_rec; i++)
                if (kz_cpaead_decrypt(buf, ct, rec + 16, NULL, 0, nonce, &key))
                    bn_die("decrypt");
            vd[k] = rec * n_rec / (bn_now() - t0) / 1e6;
        }
        f->aead_enc = bn_median(ve, 5);
        f->aead_dec = bn_median(vd, 5);
    }

    /* Ed25519 and XChaCha20-Poly1305 on one changeset (hdr ‖ body). */
    free(buf);
    buf = malloc(cs_size + 64);
    if (buf == NULL)
        bn_die("out of memory");
    randombytes_buf(buf, cs_size);
    {
        double vs[15], vv[15], ve[15], vd[15];
        for (k = 0; k < 15; k++) {
            t0 = bn_now();
            if (kz_sign_detached(&sig, buf, cs_size, &gsk))
                bn_die("sign");
            vs[k] = bn_now() - t0;
            t0 = bn_now();
            if (crypto_sign_verify_detached(sig.b, buf, cs_size, gpk.b) != 0)
                bn_die("verify");
            vv[k] = bn_now() - t0;
            t0 = bn_now();
            if (kz_xaead_encrypt(ct, buf, cs_size, NULL, 0, nonce, &key))
                bn_die("xencrypt");
            ve[k] = cs_size / (bn_now() - t0) / 1e6;
            t0 = bn_now();
            if (kz_xaead_decrypt(buf, ct, cs_size + 16, NULL, 0, nonce, &key))
                bn_die("xdecrypt");
            vd[k] = cs_size / (bn_now() - t0) / 1e6;
        }
        f->sign = bn_median(vs, 15);
        f->verify = bn_median(vv, 15);
        f->xaead_enc = bn_median(ve, 15);
        f->xaead_dec = bn_median(vd, 15);
    }
    free(buf);
    free(ct);
}

/* ---- main ------------------------------------------------------------------
 */

int
main(int argc, char **argv)
{
    int reps = 5, rows = 100000, i, r;
    const char *perf_dir = NULL;
    struct rowdata *d;
    struct rep rp[64];
    double v_ins[64], v_plain[64], v_push[64], v_pull[64], v_e2e[64],
        v_cpush[64], v_cpull[64], v_csrv[64], v_ncs[64], v_bytes[64], v_med[64],
        v_live[64];
    struct cryptofig cf;

    bn_prog = "bench_sync";
    /* As kzsync and kzsyncd do (client/main.c), for the in-process
     * insert of both sides. */
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
            rows = atoi(argv[++i]);
        else if (strcmp(argv[i], "--perf") == 0 && i + 1 < argc)
            perf_dir = argv[++i];
        else
            bn_die("usage: bench_sync [--reps N (1-64)] [--rows N] "
                   "[--perf DIR]");
    }
    if (reps < 1 || reps > 64 || rows < 100)
        bn_die("usage: bench_sync [--reps N (1-64)] [--rows N] [--perf DIR]");
    bn_paths();
    signal(SIGPIPE, SIG_IGN);
    bn_print_machine(argc, argv);
    printf("sqlite:  %s; libsodium %s\n", sqlite3_libversion(),
           sodium_version_string());
    printf("binaries: %s, %s\n", bn_kzsync, bn_kzsyncd);
    printf("workload: %d rows of bench_engine's table (TEXT pk + 4 TEXT "
           "10-20 B + 2 INTEGER + 1 REAL + 1 TEXT 190-210 B), tracked as "
           "network at LAND, pulled by a fresh site device HAN; loopback\n",
           rows);
    fflush(stdout);
    if (kz_crypto_init() != 0)
        bn_die("kz_crypto_init");

    d = gen_rows(rows);
    if (d == NULL)
        bn_die("out of memory");
    for (r = 0; r < reps; r++) {
        run_rep(r, d, rows, &rp[r]);
        v_ins[r] = rp[r].ins;
        v_plain[r] = rp[r].plain;
        v_push[r] = rp[r].push;
        v_pull[r] = rp[r].pull;
        v_e2e[r] = rp[r].e2e;
        v_cpush[r] = rp[r].cpu_push;
        v_cpull[r] = rp[r].cpu_pull;
        v_csrv[r] = rp[r].cpu_srv;
        v_ncs[r] = (double)rp[r].n_cs;
        v_bytes[r] = (double)rp[r].cs_bytes;
        v_med[r] = (double)rp[r].cs_median;
    }
    for (r = 0; r < reps; r++) {
        v_live[r] = run_rep_live(d, rows);
        fprintf(stderr, "live rep %d: e2e %.3f s\n", r + 1, v_live[r]);
    }

    {
        double ins = bn_median(v_ins, reps), pl = bn_median(v_plain, reps);
        double pu = bn_median(v_push, reps), pd = bn_median(v_pull, reps);
        double e2e = bn_median(v_e2e, reps);
        double ncs = bn_median(v_ncs, reps), bytes = bn_median(v_bytes, reps);
        double csz = bn_median(v_med, reps);
        double t_hs, t_tr, t_sg, t_vf, t_x, total;

        printf("\nmedians of %d repetitions, %d rows                 time     "
               "rows/s   vs plain  target\n",
               reps, rows);
        printf("plain SQLite INSERT, 1 txn                     %8.3f s %9.0f"
               "      1.00x\n",
               pl, rows / pl);
        printf("a. tracked INSERT at LAND, 1 txn               %8.3f s %9.0f"
               "  %8.2fx\n",
               ins, rows / ins, ins / pl);
        printf("b. kzsync sync LAND (build, sign, push)        %8.3f s %9.0f"
               "  %8.2fx\n",
               pu, rows / pu, pu / pl);
        printf("c. kzsync sync HAN (fresh: pull, verify, apply)%8.3f s %9.0f"
               "  %8.2fx\n",
               pd, rows / pd, pd / pl);
        printf("end to end a+b+c                               %8.3f s %9.0f"
               "  %8.2fx  <= 4x\n",
               e2e, rows / e2e, e2e / pl);
        printf("   (vs two plain inserts, one at each end: %.2fx)\n",
               e2e / (2 * pl));
        {
            double lv = bn_median(v_live, reps);
            printf("end to end, HAN running kzsync run         %8.3f s %9.0f"
                   "  %8.2fx\n",
                   lv, rows / lv, lv / pl);
            printf("   (a, then b while HAN pulls on NOTIFY, until HAN's "
                   "cursor reaches LAND's last changeset)\n");
        }
        printf("   %.0f changesets, %.1f MB (hdr+body+sig), median changeset "
               "%.0f bytes\n",
               ncs, bytes / 1e6, csz);
        printf("   CPU: kzsync sync LAND %.2f s, kzsyncd %.2f s (push+pull), "
               "kzsync sync HAN %.2f s\n",
               bn_median(v_cpush, reps), bn_median(v_csrv, reps),
               bn_median(v_cpull, reps));
        fflush(stdout);

        measure_crypto(&cf, (size_t)csz);
        printf("\ncryptography (this process, product code; medians)\n");
        printf("   Noise XX handshake, both sides (kz_chan)     %8.3f ms\n",
               cf.hs * 1e3);
        printf("   kz_chan_send (seal, 1 MiB frames)            %8.0f MB/s\n",
               cf.chan_seal);
        printf("   kz_chan_feed + next (open)                   %8.0f MB/s\n",
               cf.chan_open);
        printf("   ChaCha20-Poly1305, 64 KiB records  enc %6.0f MB/s, dec "
               "%6.0f MB/s\n",
               cf.aead_enc, cf.aead_dec);
        printf("   Ed25519 on %.0f B (hdr+body): sign %.3f ms, verify %.3f ms"
               "\n",
               csz, cf.sign * 1e3, cf.verify * 1e3);
        printf("   XChaCha20-Poly1305 on %.0f B (body sealing): enc %.0f "
               "MB/s, dec %.0f MB/s\n",
               csz, cf.xaead_enc, cf.xaead_dec);
        /* The run's crypto: 2 connections; the bytes sealed and opened
         * twice (LAND→server, server→HAN); n signs at LAND, n verifies at
         * the server and n at HAN. */
        t_hs = 2 * cf.hs;
        t_tr = 2 * (bytes / 1e6) * (1 / cf.chan_seal + 1 / cf.chan_open);
        t_sg = ncs * cf.sign;
        t_vf = 2 * ncs * cf.verify;
        t_x = (bytes / 1e6) * (1 / cf.xaead_enc + 1 / cf.xaead_dec);
        total = t_hs + t_tr + t_sg + t_vf + t_x;
        printf("\ncrypto share of the end-to-end time (modelled from the "
               "figures above and this run's counts)\n");
        printf("   2 handshakes                                 %8.3f s\n",
               t_hs);
        printf("   transport, %.1f MB sealed+opened twice        %8.3f s\n",
               bytes / 1e6, t_tr);
        printf("   %.0f signs (LAND)                              %8.3f s\n",
               ncs, t_sg);
        printf("   %.0f verifies (server + HAN)                   %8.3f s\n",
               2 * ncs, t_vf);
        printf("   bodies sealed at LAND + opened at HAN (XChaCha) %7.3f s\n",
               t_x);
        printf("   total                                        %8.3f s  "
               "%5.1f%% of %.3f s  target <= 25%%\n",
               total, 100 * total / e2e, e2e);
    }
    fflush(stdout);
    if (perf_dir)
        run_perf(perf_dir, d, rows);
    free(d);
    return 0;
}
