/*
 * sectool: what the security tests cannot do from bash.  It acts with a
 * real device's identity (DIR/identity.key, the server and server key kept
 * in DIR/replica.db), over the real protocol (client/conn.c: Noise with the
 * pinned server key, proto/msg.c), or reads the server's store directly.
 *
 *   sectool push DIR SCOPE [SEQ]
 *       connects as DIR's device and PUSHes a changeset it signs itself
 *       for SCOPE (author_seq SEQ, default 1; body sealed under a random
 *       key).  Prints the server's answer: "PUSH_ACK <server_seq> <dup>" or
 *       "ERROR <CODE> <text>".  Exit 0 when an answer came, 1 otherwise.
 *   sectool pull DIR SCOPE
 *       connects as DIR's device and PULLs SCOPE from 0.  Prints
 *       "BATCH <items>" (all batches of the answer) or "ERROR <CODE> <text>".
 *   sectool craft DIR SCOPE SEQ EPOCH
 *       prints four hex lines: author (DIR's Ed25519 key), header, sealed
 *       body (random key), signature by DIR over header ‖ body — a
 *       correctly signed changeset, for inserting into a store.
 *   sectool hdr STORE_DB SCOPE SERVER_SEQ
 *       decodes the header stored at (SCOPE, SERVER_SEQ) in kzs_cs:
 *       "scope=<s> epoch=<e> author_seq=<n> author=<hex>".
 *   sectool tryopen DIR STORE_DB SCOPE SERVER_SEQ
 *       tries to open the sealed body stored at (SCOPE, SERVER_SEQ) with
 *       every scope key DIR's device holds (kz_scope_key, opened with its
 *       identity).  Prints "keys <n> opened <m>" and one "opens <scope>
 *       <epoch>" line per key that opens it.  Exit 0.
 *   sectool keys DIR
 *       lists "<scope> <epoch>" for every key DIR's device can open.
 *   sectool roster DIR replay|flipped|forged
 *       connects as DIR's device and sends ROSTER_PUT with the roster DIR
 *       holds: as it is (replay), with one byte of its signed body flipped
 *       (flipped), or a roster of DIR's own making, one version newer,
 *       naming DIR's key as the admin key and signed with it (forged).  Prints
 * "OK" or "ERROR <CODE> <text>".  Exit 0 when an answer came, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sqlite3.h>
#include <uv.h>

#include "alloc.h"
#include "changeset.h"
#include "conn.h"
#include "crypto.h"
#include "ctx.h"
#include "env.h"
#include "errcode.h"
#include "hex.h"
#include "keys.h"
#include "msg.h"
#include "seal.h"

static void
die(const char *what)
{
    fprintf(stderr, "sectool: %s\n", what);
    exit(1);
}

static void
print_hex(const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\n");
}

/* A correctly signed changeset of DIR's device for SCOPE. */
struct crafted {
    uint8_t *hdr, *body;
    size_t hdr_len, body_len;
    uint8_t sig[64];
};

static void
craft(struct kzc *c, const char *scope, uint64_t seq, uint32_t epoch,
      struct crafted *out)
{
    struct kz_cs_header h;
    struct kz_aead_key key;
    uint8_t plain[64], *both;
    uint64_t now = kz_env_wall_ms(kz_env_system());

    memset(&h, 0, sizeof(h));
    h.format = KZ_CS_FORMAT;
    snprintf(h.scope, sizeof(h.scope), "%s", scope);
    memcpy(h.author, c->id.sign_pk.b, 32);
    h.author_seq = seq;
    h.epoch = epoch;
    h.n_cells = 1;
    h.n_rows = 1;
    h.hlc_min = h.hlc_max = now << 16;
    if (kz_cs_header_encode(&h, &out->hdr, &out->hdr_len) != 0)
        die("cannot encode the header");
    randombytes_buf(key.b, sizeof(key.b));
    randombytes_buf(plain, sizeof(plain));
    if (kz_seal_body(&out->body, &out->body_len, plain, sizeof(plain), out->hdr,
                     out->hdr_len, &key, kz_env_system()) != 0)
        die("cannot seal");
    both = kz_malloc(out->hdr_len + out->body_len);
    if (both == NULL)
        die("out of memory");
    memcpy(both, out->hdr, out->hdr_len);
    memcpy(both + out->hdr_len, out->body, out->body_len);
    crypto_sign_detached(out->sig, NULL, both, out->hdr_len + out->body_len,
                         c->id.sign_sk.b);
    kz_free(both);
}

/* ---- one request over a real connection ------------------------------ */

struct req {
    struct kzc *c;
    int kind; /* 'P' push, 'L' pull, 'R' roster put */
    const char *scope;
    uint8_t *roster;
    size_t roster_len;
    uint64_t seq;
    struct crafted cs;
    int answered;
    uint64_t items;
    char line[512];
};

static void
send_or_die(struct conn *conn, struct kz_msg *m)
{
    if (conn_send(conn, m) != 0)
        die("cannot send");
}

static void
on_ready(struct conn *conn, void *data)
{
    struct kz_msg m;
    static const char sw[] = "kzsec-sectool/1";

    (void)data;
    kz_msg_hello(&m, sw);
    send_or_die(conn, &m);
}

static void
on_msg(struct conn *conn, const struct kz_msg *m, void *data)
{
    struct req *r = data;
    struct kz_msg out;

    memset(&out, 0, sizeof(out));
    switch (m->type) {
    case KZ_MSG_WELCOME:
        if (r->kind == 'P') {
            out.type = KZ_MSG_PUSH;
            out.push.req = 1;
            out.push.scope.p = r->scope;
            out.push.scope.len = strlen(r->scope);
            out.push.hdr.p = r->cs.hdr;
            out.push.hdr.len = r->cs.hdr_len;
            out.push.body.p = r->cs.body;
            out.push.body.len = r->cs.body_len;
            out.push.sig = r->cs.sig;
        } else if (r->kind == 'R') {
            out.type = KZ_MSG_ROSTER_PUT;
            out.roster_put.req = 1;
            out.roster_put.roster.p = r->roster;
            out.roster_put.roster.len = r->roster_len;
        } else {
            struct kz_msg_cursor cur;
            cur.scope.p = r->scope;
            cur.scope.len = strlen(r->scope);
            cur.after_seq = 0;
            out.type = KZ_MSG_PULL;
            out.pull.req = 1;
            out.pull.cursors = &cur;
            out.pull.n_cursors = 1;
            out.pull.max_bytes = 1u << 20;
            send_or_die(conn, &out);
            return;
        }
        send_or_die(conn, &out);
        return;
    case KZ_MSG_PUSH_ACK:
        snprintf(r->line, sizeof(r->line), "PUSH_ACK %llu %d",
                 (unsigned long long)m->push_ack.server_seq,
                 m->push_ack.duplicate ? 1 : 0);
        r->answered = 1;
        conn_close(conn);
        return;
    case KZ_MSG_OK:
        snprintf(r->line, sizeof(r->line), "OK");
        r->answered = 1;
        conn_close(conn);
        return;
    case KZ_MSG_BATCH:
        r->items += m->batch.n_items;
        if (m->batch.done) {
            snprintf(r->line, sizeof(r->line), "BATCH %llu",
                     (unsigned long long)r->items);
            r->answered = 1;
            conn_close(conn);
        }
        return;
    case KZ_MSG_ERROR:
        snprintf(r->line, sizeof(r->line), "ERROR %s %.*s",
                 kz_wire_err_name(m->error.code), (int)m->error.text.len,
                 m->error.text.p);
        r->answered = 1;
        conn_close(conn);
        return;
    case KZ_MSG_PING:
        out = *m;
        out.type = KZ_MSG_PONG;
        send_or_die(conn, &out);
        return;
    default: return; /* NOTIFY etc. */
    }
}

static void
on_close(struct conn *conn, int err, const char *why, void *data)
{
    struct req *r = data;

    (void)conn;
    if (!r->answered)
        snprintf(r->line, sizeof(r->line), "CLOSED %d %s", err, why ? why : "");
}

static int
do_request(struct kzc *c, struct req *r)
{
    static const struct conn_cbs cbs = {on_ready, on_msg, on_close};
    struct conn_opts co;
    struct conn *conn = NULL;
    uv_loop_t loop;

    memset(&co, 0, sizeof(co));
    co.server = c->server;
    co.sk = &c->id.dh_sk;
    co.server_pk = &c->server_pk;
    co.timeout_ms = 10000;
    uv_loop_init(&loop);
    if (conn_open(&conn, &loop, &co, &cbs, r) != 0)
        die("cannot connect");
    uv_run(&loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&loop);
    printf("%s\n", r->line);
    return r->answered ? 0 : 1;
}

/* ---- the store ------------------------------------------------------- */

static void
stored(const char *db, const char *scope, const char *seq, uint8_t **hdr,
       size_t *hdr_len, uint8_t **body, size_t *body_len)
{
    sqlite3 *d = NULL;
    sqlite3_stmt *st = NULL;

    if (sqlite3_open_v2(db, &d, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(d,
                           "SELECT hdr, body FROM kzs_cs WHERE scope = ?"
                           " AND server_seq = ?",
                           -1, &st, NULL) != SQLITE_OK)
        die("cannot read the store");
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, atoll(seq));
    if (sqlite3_step(st) != SQLITE_ROW)
        die("no such changeset in the store");
    *hdr_len = (size_t)sqlite3_column_bytes(st, 0);
    *body_len = (size_t)sqlite3_column_bytes(st, 1);
    *hdr = kz_malloc(*hdr_len + 1);
    *body = kz_malloc(*body_len + 1);
    if (*hdr == NULL || *body == NULL)
        die("out of memory");
    memcpy(*hdr, sqlite3_column_blob(st, 0), *hdr_len);
    memcpy(*body, sqlite3_column_blob(st, 1), *body_len);
    sqlite3_finalize(st);
    sqlite3_close(d);
}

/* Calls fn for every (scope, epoch) whose key the device can open. */
static uint32_t
each_key(struct kzc *c,
         void (*fn)(void *, const char *, uint64_t, struct kz_aead_key *),
         void *data)
{
    sqlite3_stmt *st = NULL;
    uint32_t n = 0;

    if (sqlite3_prepare_v2(replica_db(c->r),
                           "SELECT scope, epoch FROM kz_scope_key ORDER BY"
                           " scope, epoch",
                           -1, &st, NULL) != SQLITE_OK)
        die("cannot read kz_scope_key");
    while (sqlite3_step(st) == SQLITE_ROW) {
        char scope[KZ_LIM_NAME_MAX + 1];
        uint64_t epoch = (uint64_t)sqlite3_column_int64(st, 1);
        struct kz_aead_key k;
        snprintf(scope, sizeof(scope), "%s",
                 (const char *)sqlite3_column_text(st, 0));
        if (keys_get(c, scope, epoch, &k) != 0)
            continue;
        n++;
        fn(data, scope, epoch, &k);
        sodium_memzero(&k, sizeof(k));
    }
    sqlite3_finalize(st);
    return n;
}

struct tryopen {
    const uint8_t *hdr, *body;
    size_t hdr_len, body_len;
    uint32_t opened;
};

static void
try_one(void *data, const char *scope, uint64_t epoch, struct kz_aead_key *k)
{
    struct tryopen *t = data;
    uint8_t *plain = NULL;
    size_t plain_len = 0;

    if (kz_open_body(&plain, &plain_len, t->body, t->body_len, t->hdr,
                     t->hdr_len, k) == 0) {
        printf("opens %s %llu\n", scope, (unsigned long long)epoch);
        t->opened++;
        sodium_memzero(plain, plain_len);
        kz_free(plain);
    }
}

static void
list_one(void *data, const char *scope, uint64_t epoch, struct kz_aead_key *k)
{
    (void)data;
    (void)k;
    printf("%s %llu\n", scope, (unsigned long long)epoch);
}

static void
open_dir(struct kzc *c, const char *dir)
{
    if (kzc_open(c, dir) != 0) {
        fprintf(stderr, "sectool: %s: %s\n", dir, c->err);
        exit(1);
    }
}

int
main(int argc, char **argv)
{
    struct kzc c;

    if (kz_crypto_init() != 0)
        die("libsodium");
    if (argc >= 4 && strcmp(argv[1], "push") == 0) {
        struct req r;
        int rc;
        memset(&r, 0, sizeof(r));
        open_dir(&c, argv[2]);
        r.c = &c;
        r.kind = 'P';
        r.scope = argv[3];
        r.seq = argc > 4 ? strtoull(argv[4], NULL, 10) : 1;
        craft(&c, r.scope, r.seq, 1, &r.cs);
        rc = do_request(&c, &r);
        kzc_close(&c);
        kz_free(r.cs.hdr);
        kz_free(r.cs.body);
        return rc;
    }
    if (argc == 4 && strcmp(argv[1], "pull") == 0) {
        struct req r;
        int rc;
        memset(&r, 0, sizeof(r));
        open_dir(&c, argv[2]);
        r.c = &c;
        r.kind = 'L';
        r.scope = argv[3];
        rc = do_request(&c, &r);
        kzc_close(&c);
        return rc;
    }
    if (argc == 4 && strcmp(argv[1], "roster") == 0) {
        struct req r;
        int rc;
        memset(&r, 0, sizeof(r));
        open_dir(&c, argv[2]);
        r.c = &c;
        r.kind = 'R';
        if (strcmp(argv[3], "forged") == 0) {
            struct roster *f = NULL;
            uint64_t v;
            if (c.roster == NULL || roster_new(&f, &c.id.sign_pk) != 0 ||
                roster_add_member(f, "forger-1", "HAN", ROSTER_ROLE_ADMIN,
                                  &c.id.sign_pk, &c.id.dh_pk) != 0)
                die("cannot forge a roster");
            for (v = roster_version(c.roster); v > 0; v--)
                if (roster_bump(f) != 0)
                    die("cannot forge a roster");
            if (roster_encode_sign(f, &c.id.sign_sk, &r.roster,
                                   &r.roster_len) != 0)
                die("cannot forge a roster");
            roster_free(f);
        } else {
            if (replica_meta_get_blob(c.r, "roster", &r.roster,
                                      &r.roster_len) != 0 ||
                r.roster_len < 80)
                die("no roster held");
            if (strcmp(argv[3], "flipped") == 0)
                r.roster[r.roster_len / 2] ^= 0x01;
            else if (strcmp(argv[3], "replay") != 0)
                die("roster: replay, flipped or forged");
        }
        rc = do_request(&c, &r);
        kzc_close(&c);
        kz_free(r.roster);
        return rc;
    }
    if (argc == 6 && strcmp(argv[1], "craft") == 0) {
        struct crafted cs;
        open_dir(&c, argv[2]);
        craft(&c, argv[3], strtoull(argv[4], NULL, 10),
              (uint32_t)strtoul(argv[5], NULL, 10), &cs);
        print_hex(c.id.sign_pk.b, 32);
        print_hex(cs.hdr, cs.hdr_len);
        print_hex(cs.body, cs.body_len);
        print_hex(cs.sig, 64);
        kz_free(cs.hdr);
        kz_free(cs.body);
        kzc_close(&c);
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "hdr") == 0) {
        uint8_t *hdr, *body;
        size_t hl, bl;
        struct kz_cs_header h;
        const char *why = NULL;
        stored(argv[2], argv[3], argv[4], &hdr, &hl, &body, &bl);
        if (kz_cs_header_decode(&h, hdr, hl, &why) != 0) {
            printf("undecodable %s\n", why ? why : "");
            kz_free(hdr);
            kz_free(body);
            return 1;
        }
        kz_free(hdr);
        kz_free(body);
        printf("scope=%s epoch=%u author_seq=%llu author=", h.scope, h.epoch,
               (unsigned long long)h.author_seq);
        print_hex(h.author, 32);
        return 0;
    }
    if (argc == 6 && strcmp(argv[1], "tryopen") == 0) {
        struct tryopen t;
        uint8_t *hdr, *body;
        uint32_t n;
        memset(&t, 0, sizeof(t));
        stored(argv[3], argv[4], argv[5], &hdr, &t.hdr_len, &body, &t.body_len);
        t.hdr = hdr;
        t.body = body;
        open_dir(&c, argv[2]);
        n = each_key(&c, try_one, &t);
        printf("keys %u opened %u\n", n, t.opened);
        kzc_close(&c);
        kz_free(hdr);
        kz_free(body);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "keys") == 0) {
        open_dir(&c, argv[2]);
        (void)each_key(&c, list_one, NULL);
        kzc_close(&c);
        return 0;
    }
    fprintf(stderr,
            "usage: sectool push DIR SCOPE [SEQ] | pull DIR SCOPE |"
            " craft DIR SCOPE SEQ EPOCH | hdr STORE_DB SCOPE SERVER_SEQ |"
            " tryopen DIR STORE_DB SCOPE SERVER_SEQ | keys DIR |"
            " roster DIR replay|flipped|forged\n");
    return 2;
}
