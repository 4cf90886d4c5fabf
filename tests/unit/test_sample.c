/*
 * test_sample.c: the fictional sample network (../shared/sample-data) end to
 * end at the engine level, with no server: the state office LAND (admin),
 * the centres HAN, OL, LG and a second Hannover device HAN2, each a replica
 * made by replica_create with the shipped Kinderschutz schema.  The sample
 * files are loaded unchanged through the real `sqlite3` shell, so capture
 * is proven for a plain SQLite client; changesets move between replicas in
 * this process, per scope and in order (private:X before site:X at a site
 * device), the way the server would relay them.
 */
#include "engine_util.h"

#define SAMPLE_DIR KZ_SHARED_DIR "/sample-data/"
#define SCHEMA_SQL KZ_SOURCE_DIR "/client/schema/kinderschutz.sql"

/* Ids from the sample files. */
#define HAN_ID "ff0b6321-e6d0-522f-bb7f-e3b4bd7809a4"
#define OL_ID "fdf6a271-5ece-550f-aec9-5d22cdfa281e"
#define LG_ID "c9840d23-4470-58c3-ae01-2e09abf96451"
#define HAN_ASD_NORD "fffffe51-157f-59ca-b8f3-19229121bcd9" /* not natural */
#define LG_REVIEW "042a0913-de40-53d6-8152-cdee88a6962b"    /* FA-LG-2026-01 */

/* A marker for values written by the tests into private columns. */
#define SECRET "nur-intern-7731"

struct net {
    char dir[256];
    struct replica *land, *han, *han2, *ol, *lg;
};

static struct replica *
sample_replica(const char *dir, const char *name, enum replica_role role,
               const char *site)
{
    struct replica_opts o;
    struct replica *r = NULL;
    uint8_t key[32];
    char path[512];

    randombytes_buf(key, sizeof(key));
    memset(&o, 0, sizeof(o));
    o.site = site;
    o.device = name;
    o.role = role;
    o.device_key = key;
    o.env = NULL; /* capture stamps with SQLite's real clock: use it too */
    o.no_schema = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (replica_create(&r, path, &o) != 0)
        T_FAIL_("replica_create %s: %s", name, replica_errmsg(NULL));
    return r;
}

/* Runs the sqlite3 shell on DIR/NAME/replica.db with ${input} on stdin;
 * returns its exit status; its stderr goes to ${err_out} (may be NULL). */
static int
shell_file(const struct net *n, const char *name, const char *input,
           char *err_out, size_t err_len)
{
    char cmd[2048], errf[600];
    int rc;

    snprintf(errf, sizeof(errf), "%s/shell.err", n->dir);
    snprintf(cmd, sizeof(cmd), "sqlite3 -bail '%s/%s/replica.db' < '%s' 2>'%s'",
             n->dir, name, input, errf);
    rc = system(cmd);
    if (err_out) {
        FILE *f = fopen(errf, "r");
        size_t got = 0;
        err_out[0] = '\0';
        if (f) {
            got = fread(err_out, 1, err_len - 1, f);
            err_out[got] = '\0';
            fclose(f);
        }
    }
    return rc;
}

/* Writes ${sql} to a file and runs it through the sqlite3 shell. */
static int
shell_sql(const struct net *n, const char *name, const char *sql, char *err_out,
          size_t err_len)
{
    char path[600];
    FILE *f;

    snprintf(path, sizeof(path), "%s/shell.sql", n->dir);
    f = fopen(path, "w");
    ASSERT(f != NULL);
    ASSERT_EQ(fputs(sql, f) >= 0, 1);
    ASSERT_EQ(fclose(f), 0);
    return shell_file(n, name, path, err_out, err_len);
}

static void
load_sample(const struct net *n, const char *name, const char *file)
{
    char err[2048];

    if (shell_file(n, name, file, err, sizeof(err)) != 0)
        T_FAIL_("sqlite3 < %s at %s failed: %s", file, name, err);
}

static void
build_ok(struct replica *r)
{
    int rc = replica_build(r, 0);
    if (rc < 0)
        T_FAIL_("build at %s: %s (%s)", replica_site(r), kz_err_name(rc),
                replica_errmsg(r));
}

/* The site scopes of one centre: every device pulls private:X, then site:X,
 * from each other device; the state office pulls site:X from each. */
static void
sync_site(struct net *n, const char *site, struct replica **dev, int n_dev)
{
    char priv[64], pub[64];
    int a, b;

    snprintf(priv, sizeof(priv), "private:%s", site);
    snprintf(pub, sizeof(pub), "site:%s", site);
    for (b = 0; b < n_dev; b++) {
        for (a = 0; a < n_dev; a++)
            if (a != b)
                ship(dev[a], dev[b], priv);
        for (a = 0; a < n_dev; a++)
            if (a != b)
                ship(dev[a], dev[b], pub);
    }
    for (a = 0; a < n_dev; a++)
        ship(dev[a], n->land, pub);
}

static void
build_all(struct net *n)
{
    build_ok(n->land);
    build_ok(n->han);
    build_ok(n->han2);
    build_ok(n->ol);
    build_ok(n->lg);
}

static void
sync_all(struct net *n)
{
    struct replica *han[2] = {n->han, n->han2};

    ship(n->land, n->han, "network");
    ship(n->land, n->han2, "network");
    ship(n->land, n->ol, "network");
    ship(n->land, n->lg, "network");
    sync_site(n, "HAN", han, 2);
    sync_site(n, "OL", &n->ol, 1);
    sync_site(n, "LG", &n->lg, 1);
}

/* The whole sample network, loaded and synced. */
static void
net_setup(struct net *n)
{
    memset(n, 0, sizeof(*n));
    tmpdir_make(n->dir, sizeof(n->dir));
    n->land = sample_replica(n->dir, "land", REPLICA_ROLE_ADMIN, "LAND");
    n->han = sample_replica(n->dir, "han", REPLICA_ROLE_SITE, "HAN");
    n->han2 = sample_replica(n->dir, "han2", REPLICA_ROLE_SITE, "HAN");
    n->ol = sample_replica(n->dir, "ol", REPLICA_ROLE_SITE, "OL");
    n->lg = sample_replica(n->dir, "lg", REPLICA_ROLE_SITE, "LG");

    load_sample(n, "land", SAMPLE_DIR "01_reference.sql");
    ASSERT_GT(replica_build(n->land, 0), 0);
    ASSERT_GT(ship(n->land, n->han, "network"), 0);
    ship(n->land, n->han2, "network");
    ship(n->land, n->ol, "network");
    ship(n->land, n->lg, "network");
    ASSERT_EQ(sql_int(n->han, "SELECT count(*) FROM site"), 5);

    load_sample(n, "han", SAMPLE_DIR "10_site_hannover.sql");
    load_sample(n, "ol", SAMPLE_DIR "11_site_oldenburg.sql");
    load_sample(n, "lg", SAMPLE_DIR "12_site_lueneburg.sql");
    /* The shell's writes were captured. */
    ASSERT_GT(sql_int(n->han, "SELECT count(*) FROM kz_log"), 100);
    build_all(n);
    sync_all(n);
}

static void
net_free(struct net *n)
{
    replica_free(n->land);
    replica_free(n->han);
    replica_free(n->han2);
    replica_free(n->ol);
    replica_free(n->lg);
    tmpdir_rm(n->dir);
}

static void
assert_same_digest(struct replica *a, struct replica *b, const char *scope)
{
    char da[65], db[65];

    digest_hex(a, scope, da);
    digest_hex(b, scope, db);
    if (strcmp(da, db) != 0)
        T_FAIL_("digest of %s differs: %s %s vs %s %s", scope, replica_site(a),
                da, replica_site(b), db);
}

/* count(*) of ${sql} with one text parameter. */
static long long
count1(struct replica *r, const char *sql, const char *p1)
{
    sqlite3_stmt *st = NULL;
    long long v;

    if (sqlite3_prepare_v2(replica_db(r), sql, -1, &st, NULL) != SQLITE_OK)
        T_FAIL_("prepare %s: %s", sql, sqlite3_errmsg(replica_db(r)));
    sqlite3_bind_text(st, 1, p1, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_ROW)
        T_FAIL_("no row: %s", sql);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The first column of the first row of ${sql} as a malloc'd string. */
static char *
sql_text(struct replica *r, const char *sql)
{
    sqlite3_stmt *st = NULL;
    char *s;

    if (sqlite3_prepare_v2(replica_db(r), sql, -1, &st, NULL) != SQLITE_OK)
        T_FAIL_("prepare %s: %s", sql, sqlite3_errmsg(replica_db(r)));
    if (sqlite3_step(st) != SQLITE_ROW)
        T_FAIL_("no row: %s", sql);
    s = sqlite3_column_text(st, 0)
            ? strdup((const char *)sqlite3_column_text(st, 0))
            : NULL;
    sqlite3_finalize(st);
    return s;
}

/* ${sql} must be refused with a message containing ${rule}. */
static void
refused(struct replica *r, const char *sql, const char *rule)
{
    char *msg = NULL;

    if (sqlite3_exec(replica_db(r), sql, NULL, NULL, &msg) == SQLITE_OK)
        T_FAIL_("not refused at %s: %s", replica_site(r), sql);
    if (msg == NULL || strstr(msg, rule) == NULL)
        T_FAIL_("refused without %s at %s: %s: %s", rule, replica_site(r), sql,
                msg ? msg : "?");
    sqlite3_free(msg);
}

static void
no_quarantine(struct net *n)
{
    struct replica *all[5] = {n->land, n->han, n->han2, n->ol, n->lg};
    int i;

    for (i = 0; i < 5; i++) {
        long long q = sql_int(all[i], "SELECT count(*) FROM kz_quarantine");
        if (q != 0) {
            char *why = sql_text(all[i], "SELECT tbl || ' ' || col || ': ' ||"
                                         " reason FROM kz_quarantine LIMIT 1");
            T_FAIL_("%lld quarantined cells at %s device %d, e.g. %s", q,
                    replica_site(all[i]), i, why ? why : "?");
        }
    }
}

TEST(converged_digests_per_scope)
{
    struct net n;
    struct replica *all[5];
    int i;

    net_setup(&n);
    all[0] = n.land, all[1] = n.han, all[2] = n.han2, all[3] = n.ol;
    all[4] = n.lg;
    no_quarantine(&n);
    for (i = 1; i < 5; i++)
        assert_same_digest(n.land, all[i], "network");
    assert_same_digest(n.han, n.han2, "site:HAN");
    assert_same_digest(n.han, n.land, "site:HAN");
    assert_same_digest(n.ol, n.land, "site:OL");
    assert_same_digest(n.lg, n.land, "site:LG");
    assert_same_digest(n.han, n.han2, "private:HAN");
    /* Everything HAN holds, HAN2 holds. */
    assert_same_digest(n.han, n.han2, NULL);
    /* Each centre got its own rows, the state office all three. */
    ASSERT_EQ(sql_int(n.han2, "SELECT count(*) FROM institution"), 12);
    ASSERT_EQ(sql_int(n.han2, "SELECT count(*) FROM contact"), 22);
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM institution"), 31);
    ASSERT_EQ(sql_int(n.han, "SELECT count(*) FROM institution WHERE"
                             " site_id <> '" HAN_ID "'"),
              0);
    ASSERT_EQ(sql_int(n.ol, "SELECT count(*) FROM network_membership WHERE"
                            " site_id <> '" OL_ID "'"),
              0);
    /* Nothing was captured twice: applies are not local changes. */
    for (i = 0; i < 5; i++)
        ASSERT_EQ(replica_build(all[i], 0), 0);
    net_free(&n);
}

/* The personal strings of the sample, as the centres hold them. */
struct strs {
    char **s;
    size_t n, cap;
};

static void
strs_collect(struct strs *v, struct replica *r, const char *sql)
{
    sqlite3_stmt *st = NULL;

    ASSERT_EQ(sqlite3_prepare_v2(replica_db(r), sql, -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (t == NULL || *t == '\0')
            continue;
        if (v->n == v->cap) {
            v->cap = v->cap ? v->cap * 2 : 64;
            v->s = realloc(v->s, v->cap * sizeof(char *));
            ASSERT(v->s != NULL);
        }
        v->s[v->n] = strdup(t);
        ASSERT(v->s[v->n] != NULL);
        v->n++;
    }
    sqlite3_finalize(st);
}

static void
strs_free(struct strs *v)
{
    size_t i;

    for (i = 0; i < v->n; i++)
        free(v->s[i]);
    free(v->s);
}

/*
 * Where ${s} occurs in ${p} as a name, not as the start of a longer word:
 * "Vera" is in "Veranstaltung" and "Jan" in "Januar" without being the
 * person.  A hit followed by a lower-case letter (ASCII or ä ö ü ß) is such
 * a word; any other hit counts (in a record the next column's bytes follow
 * directly, so "Vera" "Ohlsen" reads "VeraOhlsen").  Returns the offset or
 * -1.
 */
static long
find_name(const unsigned char *p, size_t len, const char *s)
{
    size_t n = strlen(s), i;

    if (n == 0 || n > len)
        return -1;
    for (i = 0; i + n <= len; i++) {
        const unsigned char *after = p + i + n;
        size_t rest = len - i - n;
        if (p[i] != (unsigned char)s[0] || memcmp(p + i, s, n) != 0)
            continue;
        if (rest > 0 && *after >= 'a' && *after <= 'z')
            continue;
        if (rest > 1 && after[0] == 0xC3 &&
            (after[1] == 0xA4 || after[1] == 0xB6 || after[1] == 0xBC ||
             after[1] == 0x9F))
            continue;
        return (long)i;
    }
    return -1;
}

TEST(state_replica_is_the_privacy_projection)
{
    static const char *const private_cols[][2] = {
        {"institution", "notes"},
        {"network", "coordinator_user_id"},
        {"network_membership", "delegate_contact_id"},
        {"document", "file_ref"},
        {"consultation", "outcome_note"},
        {"case_review", "summary_anonymised"},
        {"case_review", "anonymisation_checked_by"},
    };
    static const char *const natural_cols[] = {
        "name",  "short_name", "sponsor_name", "street", "postal_code",
        "phone", "email",      "website",      "notes"};
    struct replica *sites[4], *han[2];
    struct strs names = {0};
    struct net n;
    unsigned char *bytes;
    size_t len, i;
    char sql[512], path[600];

    net_setup(&n);
    sites[0] = n.han, sites[1] = n.han2, sites[2] = n.ol, sites[3] = n.lg;
    han[0] = n.han, han[1] = n.han2;
    /* The sample leaves institution.notes and a natural person's
     * short_name empty: fill them at HAN, so that they are tested too. */
    sql_ok(n.han,
           "UPDATE institution SET notes = 'Interne Notiz " SECRET "' || id");
    sql_ok(n.han, "UPDATE institution SET short_name = 'Wiegenlied " SECRET
                  "' WHERE is_natural_person = 1");
    ASSERT_GT(replica_build(n.han, 0), 0);
    sync_site(&n, "HAN", han, 2);
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM contact"), 0);
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM training_participant"), 0);
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM app_user"), 0);
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM audit_log"), 0);
    for (i = 0; i < KZ_ARRAY_SIZE(private_cols); i++) {
        long long rows, set;
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s",
                 private_cols[i][0]);
        rows = sql_int(n.land, sql);
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM %s WHERE %s IS NOT NULL",
                 private_cols[i][0], private_cols[i][1]);
        set = sql_int(n.land, sql);
        if (set != 0)
            T_FAIL_("LAND holds %lld values of private %s.%s", set,
                    private_cols[i][0], private_cols[i][1]);
        /* The column is really in use at the centres (not vacuous)... */
        ASSERT_GT(sql_int(n.han, sql) + sql_int(n.ol, sql) + sql_int(n.lg, sql),
                  0);
        /* ...and the rows themselves did reach the state office. */
        ASSERT_GT(rows, 0);
    }
    ASSERT_GT(sql_int(n.land, "SELECT count(*) FROM institution WHERE"
                              " is_natural_person = 1"),
              0);
    for (i = 0; i < KZ_ARRAY_SIZE(natural_cols); i++) {
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM institution WHERE is_natural_person = 1"
                 " AND %s IS NOT NULL",
                 natural_cols[i]);
        if (sql_int(n.land, sql) != 0)
            T_FAIL_("LAND holds institution.%s of a natural person",
                    natural_cols[i]);
        ASSERT_GT(sql_int(n.han, sql) + sql_int(n.ol, sql) + sql_int(n.lg, sql),
                  0);
    }
    /* Organisational data of other institutions is there. */
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM institution WHERE"
                              " is_natural_person = 0 AND (name IS NULL OR"
                              " phone IS NULL)"),
              0);

    /* The unreleased review FA-LG-2026-01 and everything of it. */
    ASSERT_EQ(sql_int(n.lg, "SELECT count(*) FROM case_review WHERE"
                            " review_code = 'FA-LG-2026-01'"),
              1);
    ASSERT_EQ(sql_int(n.land,
                      "SELECT count(*) FROM case_review WHERE"
                      " review_code = 'FA-LG-2026-01' OR id = '" LG_REVIEW "'"),
              0);
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM case_review WHERE"
                              " site_id = '" LG_ID "'"),
              0);
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM case_review_sector WHERE"
                              " case_review_id = '" LG_REVIEW "'"),
              0);
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM case_review_finding WHERE"
                              " case_review_id = '" LG_REVIEW "'"),
              0);
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM measure WHERE"
                              " case_review_id = '" LG_REVIEW "'"),
              0);
    ASSERT_GT(sql_int(n.lg, "SELECT count(*) FROM measure WHERE"
                            " case_review_id = '" LG_REVIEW "'"),
              0);
    /* Links of its measures too; LG's other measure is there. */
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM measure_recommendation"
                              " WHERE measure_id NOT IN (SELECT id FROM"
                              " measure)"),
              0);
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM measure WHERE"
                              " site_id = '" LG_ID "'"),
              1);
    /* The released reviews of HAN and OL are there (4 in all). */
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM case_review"), 4);

    /* No personal string of the sample anywhere in LAND's file. */
    for (i = 0; i < 4; i++) {
        strs_collect(&names, sites[i],
                     "SELECT first_name FROM contact UNION"
                     " SELECT last_name FROM contact UNION"
                     " SELECT email FROM contact UNION"
                     " SELECT first_name || ' ' || last_name"
                     " FROM contact");
        strs_collect(&names, sites[i],
                     "SELECT first_name FROM training_participant UNION"
                     " SELECT last_name FROM training_participant UNION"
                     " SELECT first_name || ' ' || last_name FROM"
                     " training_participant");
        strs_collect(&names, sites[i],
                     "SELECT display_name FROM app_user UNION"
                     " SELECT email FROM app_user");
    }
    ASSERT_GT(names.n, 150);
    strs_collect(&names, n.han,
                 "SELECT notes FROM institution UNION SELECT"
                 " short_name FROM institution WHERE"
                 " is_natural_person = 1");
    sql_ok(n.land, "PRAGMA wal_checkpoint(TRUNCATE)");
    snprintf(path, sizeof(path), "%s/land/replica.db", n.dir);
    bytes = (unsigned char *)t_slurp(path, &len);
    ASSERT_GT(len, 4096);
    for (i = 0; i < names.n; i++) {
        long at = find_name(bytes, len, names.s[i]);
        if (at >= 0) {
            long from = at > 40 ? at - 40 : 0;
            size_t k;
            char ctx[128];
            for (k = 0; k < sizeof(ctx) - 1 && (size_t)from + k < len &&
                        (long)k < at - from + 60;
                 k++) {
                unsigned char c = bytes[from + (long)k];
                ctx[k] = c >= 0x20 && c < 0x7f ? (char)c : '.';
            }
            ctx[k] = '\0';
            T_FAIL_("LAND's replica.db holds \"%s\" at %ld: %s", names.s[i], at,
                    ctx);
        }
    }
    ASSERT_EQ(find_name(bytes, len, SECRET), -1);
    /* The check can see: the same strings are in a centre's file. */
    free(bytes);
    sql_ok(n.han, "PRAGMA wal_checkpoint(TRUNCATE)");
    snprintf(path, sizeof(path), "%s/han/replica.db", n.dir);
    bytes = (unsigned char *)t_slurp(path, &len);
    ASSERT(find_name(bytes, len, "miriam.luehmann@kz-hannover.example") >= 0);
    ASSERT(find_name(bytes, len, "Ohlsen") >= 0);
    ASSERT(find_name(bytes, len, SECRET) >= 0);
    free(bytes);
    strs_free(&names);
    net_free(&n);
}

/* Rows of a query as sorted text lines. */
struct rows {
    char **line;
    size_t n, cap;
};

static int
cmp_line(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
rows_of(sqlite3 *db, const char *view, const char *site, struct rows *out)
{
    sqlite3_stmt *st = NULL;
    char *sql;
    int rc, ncol, k;

    memset(out, 0, sizeof(*out));
    sql = site ? sqlite3_mprintf("SELECT * FROM \"%w\" WHERE site_code = %Q",
                                 view, site)
               : sqlite3_mprintf("SELECT * FROM \"%w\"", view);
    ASSERT(sql != NULL);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        T_FAIL_("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_free(sql);
    ncol = sqlite3_column_count(st);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char *line = sqlite3_mprintf("");
        for (k = 0; k < ncol && line; k++) {
            const char *v = (const char *)sqlite3_column_text(st, k);
            char *l2 =
                sqlite3_mprintf("%s%s%s", line, k ? " | " : "", v ? v : "NULL");
            sqlite3_free(line);
            line = l2;
        }
        ASSERT(line != NULL);
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 32;
            out->line = realloc(out->line, out->cap * sizeof(char *));
            ASSERT(out->line != NULL);
        }
        out->line[out->n++] = line;
    }
    if (rc != SQLITE_DONE)
        T_FAIL_("%s: %s", view, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (out->n)
        qsort(out->line, out->n, sizeof(char *), cmp_line);
}

static void
rows_free(struct rows *r)
{
    size_t i;

    for (i = 0; i < r->n; i++)
        sqlite3_free(r->line[i]);
    free(r->line);
}

/* Compares every v_ind% view of ${db} with ${ref}; returns rows compared. */
static size_t
same_views(sqlite3 *db, const char *who, sqlite3 *ref, const char *site)
{
    sqlite3_stmt *st = NULL;
    size_t total = 0, n_views = 0;

    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "SELECT name FROM sqlite_master WHERE"
                                 " type = 'view' AND name LIKE 'v_ind%'"
                                 " ORDER BY name",
                                 -1, &st, NULL),
              SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *view = (const char *)sqlite3_column_text(st, 0);
        struct rows a, b;
        size_t i;

        rows_of(db, view, site, &a);
        rows_of(ref, view, site, &b);
        for (i = 0; i < a.n || i < b.n; i++) {
            const char *la = i < a.n ? a.line[i] : "(none)";
            const char *lb = i < b.n ? b.line[i] : "(none)";
            if (strcmp(la, lb) != 0)
                T_FAIL_("%s at %s differs from one database (%s): row %zu:"
                        "\n  %s\n  %s",
                        view, who, site ? site : "all sites", i, la, lb);
        }
        total += a.n;
        n_views++;
        rows_free(&a);
        rows_free(&b);
    }
    sqlite3_finalize(st);
    ASSERT_GE(n_views, 18);
    return total;
}

static void
exec_file(sqlite3 *db, const char *path)
{
    char *sql = t_slurp(path, NULL), *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        T_FAIL_("%s: %s", path, msg ? msg : "?");
    free(sql);
}

TEST(indicator_views_match_one_database)
{
    static const char *const files[] = {
        "01_reference.sql", "10_site_hannover.sql", "11_site_oldenburg.sql",
        "12_site_lueneburg.sql"};
    struct net n;
    sqlite3 *ref = NULL;
    char path[600];
    char *msg = NULL;
    size_t i, rows;

    net_setup(&n);
    snprintf(path, sizeof(path), "%s/one.db", n.dir);
    ASSERT_EQ(sqlite3_open(path, &ref), SQLITE_OK);
    if (sqlite3_exec(ref,
                     "CREATE TABLE kz_track_decl(tbl TEXT PRIMARY KEY,"
                     " scope_kind TEXT NOT NULL, owner_col TEXT,"
                     " private_cols TEXT, cond_private_cols TEXT,"
                     " cond_private_when TEXT, row_filter TEXT)",
                     NULL, NULL, &msg) != SQLITE_OK)
        T_FAIL_("%s", msg);
    exec_file(ref, SCHEMA_SQL);
    for (i = 0; i < KZ_ARRAY_SIZE(files); i++) {
        snprintf(path, sizeof(path), "%s%s", SAMPLE_DIR, files[i]);
        exec_file(ref, path);
    }

    /* The state office: the whole result of every view. */
    rows = same_views(replica_db(n.land), "LAND", ref, NULL);
    ASSERT_GT(rows, 100);
    /* Spot checks from domain.md §3 "Output on the sample data". */
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM v_ind05_agreement_reviews"
                              " WHERE site_code = 'LG' AND review_state ="
                              " 'due_90d'"),
              2);
    ASSERT_EQ(sql_int(n.land, "SELECT days_overdue FROM"
                              " v_ind05_agreement_reviews WHERE site_code ="
                              " 'OL' AND review_state = 'overdue'"),
              78);
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM"
                              " v_ind10c_reviews_by_risk_type WHERE"
                              " suppressed = 0"),
              0);

    /* The centres: their own rows.  report_setting is local (class L) and
     * does not travel: each device sets its reference date itself. */
    sql_ok(n.han,
           "INSERT INTO report_setting VALUES ('as_of_date', '2026-11-27')");
    sql_ok(n.han2,
           "INSERT INTO report_setting VALUES ('as_of_date', '2026-11-27')");
    sql_ok(n.ol,
           "INSERT INTO report_setting VALUES ('as_of_date', '2026-11-27')");
    sql_ok(n.lg,
           "INSERT INTO report_setting VALUES ('as_of_date', '2026-11-27')");
    ASSERT_GT(same_views(replica_db(n.han), "HAN", ref, "HAN"), 20);
    ASSERT_GT(same_views(replica_db(n.han2), "HAN2", ref, "HAN"), 20);
    ASSERT_GT(same_views(replica_db(n.ol), "OL", ref, "OL"), 20);
    ASSERT_GT(same_views(replica_db(n.lg), "LG", ref, "LG"), 20);
    /* And the state office agrees with each centre on its rows. */
    ASSERT_GT(same_views(replica_db(n.land), "LAND", replica_db(n.lg), "LG"),
              20);
    sqlite3_close(ref);
    net_free(&n);
}

TEST(shell_edit_is_captured_and_synced)
{
    struct net n;
    struct replica *han[2];
    char err[2048], sql[2048];
    char *party;

    net_setup(&n);
    han[0] = n.han, han[1] = n.han2;
    party = sql_text(n.han,
                     "SELECT id FROM agreement_party WHERE site_id = '" HAN_ID
                     "' ORDER BY id LIMIT 1");
    ASSERT(party != NULL);
    ASSERT_EQ(count1(n.land,
                     "SELECT count(*) FROM agreement_party WHERE id = ?",
                     party),
              1);
    ASSERT_EQ(sql_int(n.han, "SELECT is_natural_person FROM institution WHERE"
                             " id = '" HAN_ASD_NORD "'"),
              0);
    snprintf(sql, sizeof(sql),
             "UPDATE institution SET phone = '+49 40 66969-199'"
             " WHERE id = '" HAN_ASD_NORD "';\n"
             "DELETE FROM agreement_party WHERE id = '%s';\n"
             "INSERT INTO training (id, site_id, title, training_kind,"
             " target_group, is_interdisciplinary, start_date, end_date,"
             " teaching_units, municipality_id, event_format,"
             " organiser_institution_id, capacity, participants_total,"
             " evaluation_mean, funding_source) VALUES"
             " ('5a1e0000-0000-4000-8000-000000000001', '" HAN_ID "',"
             " 'Fachtag Schutzkonzepte (Test)', 'conference_day', NULL, 1,"
             " '2026-11-02', NULL, 6, NULL, 'in_person', NULL, 80, 54, NULL,"
             " 'state');\n",
             party);
    if (shell_sql(&n, "han", sql, err, sizeof(err)) != 0)
        T_FAIL_("sqlite3 shell: %s", err);
    ASSERT_EQ(sql_int(n.han, "SELECT count(*) FROM kz_log"), 3);
    ASSERT_GT(replica_build(n.han, 0), 0);
    sync_site(&n, "HAN", han, 2);

    ASSERT_EQ(sql_int(n.han2, "SELECT phone = '+49 40 66969-199' FROM"
                              " institution WHERE id = '" HAN_ASD_NORD "'"),
              1);
    ASSERT_EQ(count1(n.han2,
                     "SELECT count(*) FROM agreement_party WHERE id = ?",
                     party),
              0);
    ASSERT_EQ(sql_int(n.han2, "SELECT count(*) FROM training WHERE id ="
                              " '5a1e0000-0000-4000-8000-000000000001' AND"
                              " participants_total = 54"),
              1);
    ASSERT_EQ(sql_int(n.land, "SELECT phone = '+49 40 66969-199' FROM"
                              " institution WHERE id = '" HAN_ASD_NORD "'"),
              1);
    ASSERT_EQ(count1(n.land,
                     "SELECT count(*) FROM agreement_party WHERE id = ?",
                     party),
              0);
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM training WHERE id ="
                              " '5a1e0000-0000-4000-8000-000000000001' AND"
                              " title = 'Fachtag Schutzkonzepte (Test)'"),
              1);
    assert_same_digest(n.han, n.han2, "site:HAN");
    assert_same_digest(n.han, n.land, "site:HAN");
    assert_same_digest(n.han, n.han2, "private:HAN");
    no_quarantine(&n);
    free(party);
    net_free(&n);
}

TEST(ownership_rules)
{
    struct net n;
    char err[2048];

    net_setup(&n);
    /* OL writes a Hannover row: refused, by libsqlite3 and by the shell. */
    refused(n.ol,
            "INSERT INTO training (id, site_id, title, training_kind,"
            " is_interdisciplinary, start_date, event_format,"
            " participants_total) VALUES ('5a1e0000-0000-4000-8000-00000000000"
            "2', '" HAN_ID "', 'x', 'inhouse_training', 0, '2026-01-01',"
            " 'online', 1)",
            "SITE-OWNER");
    refused(n.ol,
            "UPDATE institution SET site_id = '" HAN_ID "' WHERE id ="
            " (SELECT id FROM institution LIMIT 1)",
            "SITE-OWNER");
    refused(n.ol,
            "INSERT INTO contact (id, site_id, institution_id, first_name,"
            " last_name, is_iefk, listing_consent, status) SELECT"
            " '5a1e0000-0000-4000-8000-000000000003', '" HAN_ID "', id, 'A',"
            " 'B', 0, 0, 'active' FROM institution LIMIT 1",
            "SITE-OWNER");
    ASSERT_NE(shell_sql(&n, "ol",
                        "UPDATE funding_grant SET site_id = '" HAN_ID "';\n",
                        err, sizeof(err)),
              0);
    ASSERT(strstr(err, "SITE-OWNER") != NULL);
    /* A network table at a centre. */
    refused(n.ol, "UPDATE site SET name = 'x' WHERE code = 'OL'",
            "NETWORK-ADMIN");
    refused(n.ol,
            "INSERT INTO code_list VALUES ('kkg_3_2_category', 'kkgXX', 'x',"
            " 'x', 99)",
            "NETWORK-ADMIN");
    ASSERT_NE(
        shell_sql(&n, "han", "DELETE FROM municipality;\n", err, sizeof(err)),
        0);
    ASSERT(strstr(err, "NETWORK-ADMIN") != NULL);
    /* The state office writes no site row. */
    refused(n.land,
            "UPDATE institution SET phone = '0' WHERE id = '" HAN_ASD_NORD "'",
            "SITE-OWNER");
    refused(n.land,
            "INSERT INTO training (id, site_id, title, training_kind,"
            " is_interdisciplinary, start_date, event_format,"
            " participants_total) VALUES ('5a1e0000-0000-4000-8000-00000000000"
            "4', '" HAN_ID "', 'x', 'inhouse_training', 0, '2026-01-01',"
            " 'online', 1)",
            "SITE-OWNER");
    refused(n.land, "DELETE FROM network_event", "SITE-OWNER");
    /* Nothing refused left a trace. */
    ASSERT_EQ(sql_int(n.ol, "SELECT count(*) FROM kz_log"), 0);
    ASSERT_EQ(sql_int(n.han, "SELECT count(*) FROM kz_log"), 0);
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM kz_log"), 0);
    ASSERT_EQ(replica_build(n.ol, 0), 0);
    ASSERT_EQ(replica_build(n.land, 0), 0);
    ASSERT_EQ(sql_int(n.ol, "SELECT count(*) FROM institution WHERE site_id ="
                            " '" HAN_ID "'"),
              0);
    /* Its own rows a centre writes freely. */
    sql_ok(n.ol, "UPDATE institution SET verified_on = '2026-11-20' WHERE"
                 " site_id = '" OL_ID "'");
    ASSERT_GT(replica_build(n.ol, 0), 0);
    net_free(&n);
}

TEST(concurrent_edits_on_two_hannover_devices)
{
    struct net n;
    struct replica *han[2];
    static const char *const conflict_sql =
        "SELECT count(*) FROM kz_conflict WHERE tbl = 'institution' AND pk = "
        "'" HAN_ASD_NORD "' AND col = 'email' AND ((local_value ="
        " 'a@asd-nord-han.example' AND remote_value = 'b@asd-nord-han.example')"
        " OR (local_value = 'b@asd-nord-han.example' AND remote_value ="
        " 'a@asd-nord-han.example'))";
    char *e1, *e2, *e3;

    net_setup(&n);
    han[0] = n.han, han[1] = n.han2;
    /* Neither has seen the other's edit. */
    sql_ok(n.han, "UPDATE institution SET email = 'a@asd-nord-han.example'"
                  " WHERE id = '" HAN_ASD_NORD "'");
    sql_ok(n.han2, "UPDATE institution SET email = 'b@asd-nord-han.example'"
                   " WHERE id = '" HAN_ASD_NORD "'");
    ASSERT_GT(replica_build(n.han, 0), 0);
    ASSERT_GT(replica_build(n.han2, 0), 0);
    sync_site(&n, "HAN", han, 2);

    assert_same_digest(n.han, n.han2, "site:HAN");
    assert_same_digest(n.han, n.han2, "private:HAN");
    assert_same_digest(n.han, n.land, "site:HAN");
    e1 = sql_text(
        n.han, "SELECT email FROM institution WHERE id = '" HAN_ASD_NORD "'");
    e2 = sql_text(
        n.han2, "SELECT email FROM institution WHERE id = '" HAN_ASD_NORD "'");
    e3 = sql_text(
        n.land, "SELECT email FROM institution WHERE id = '" HAN_ASD_NORD "'");
    ASSERT_STR_EQ(e1, e2);
    ASSERT_STR_EQ(e1, e3);
    ASSERT(strcmp(e1, "a@asd-nord-han.example") == 0 ||
           strcmp(e1, "b@asd-nord-han.example") == 0);
    /* One conflict each, both values kept, opposite winners. */
    ASSERT_EQ(sql_int(n.han, conflict_sql), 1);
    ASSERT_EQ(sql_int(n.han2, conflict_sql), 1);
    ASSERT_EQ(sql_int(n.han, "SELECT count(*) FROM kz_conflict"), 1);
    ASSERT_EQ(sql_int(n.han2, "SELECT count(*) FROM kz_conflict"), 1);
    ASSERT_EQ(sql_int(n.han, "SELECT count(*) FROM kz_conflict WHERE"
                             " local_value = 'a@asd-nord-han.example'"),
              1);
    ASSERT_EQ(sql_int(n.han2, "SELECT count(*) FROM kz_conflict WHERE"
                              " local_value = 'b@asd-nord-han.example'"),
              1);
    {
        char *w1 = sql_text(n.han, "SELECT winner FROM kz_conflict");
        char *w2 = sql_text(n.han2, "SELECT winner FROM kz_conflict");
        ASSERT(strcmp(w1, w2) != 0);
        free(w1);
        free(w2);
    }
    /* Nothing more to send: the merge is not a new local change. */
    ASSERT_EQ(replica_build(n.han, 0), 0);
    ASSERT_EQ(replica_build(n.han2, 0), 0);
    free(e1);
    free(e2);
    free(e3);
    net_free(&n);
}

static long long
land_review_rows(struct replica *land)
{
    return sql_int(land,
                   "SELECT (SELECT count(*) FROM case_review WHERE id ="
                   " '" LG_REVIEW "') + (SELECT count(*) FROM"
                   " case_review_sector WHERE case_review_id = '" LG_REVIEW
                   "') + (SELECT count(*) FROM"
                   " case_review_finding WHERE case_review_id = '" LG_REVIEW
                   "') + (SELECT count(*) FROM measure WHERE"
                   " case_review_id = '" LG_REVIEW "') + (SELECT"
                   " count(*) FROM measure_recommendation WHERE"
                   " measure_id IN (SELECT id FROM measure WHERE"
                   " case_review_id = '" LG_REVIEW "'))");
}

TEST(release_case_review_to_state)
{
    struct net n;
    long long sectors, findings, measures, links;
    char *stmt;

    net_setup(&n);
    ASSERT_EQ(land_review_rows(n.land), 0);
    /* DP-02: no release before the four-eyes check. */
    refused(
        n.lg,
        "UPDATE case_review SET released_to_state = 1 WHERE id = '" LG_REVIEW
        "'",
        "dp02_release_requires_anonymisation_check");
    ASSERT_EQ(sql_int(n.lg, "SELECT count(*) FROM kz_log"), 0);

    sql_ok(n.lg, "UPDATE case_review SET anonymisation_checked = 1,"
                 " anonymisation_checked_by = (SELECT id FROM app_user"
                 " ORDER BY id LIMIT 1), anonymisation_checked_on ="
                 " '2026-11-25' WHERE id = '" LG_REVIEW "'");
    sql_ok(n.lg, "UPDATE case_review_finding SET released_to_state = 1"
                 " WHERE case_review_id = '" LG_REVIEW "' AND finding_no = 1");
    sql_ok(n.lg,
           "UPDATE case_review SET released_to_state = 1 WHERE id = '" LG_REVIEW
           "'");
    ASSERT_GT(replica_build(n.lg, 0), 0);
    ship(n.lg, n.land, "site:LG");

    sectors = sql_int(n.lg, "SELECT count(*) FROM case_review_sector WHERE"
                            " case_review_id = '" LG_REVIEW "'");
    findings = sql_int(n.lg, "SELECT count(*) FROM case_review_finding WHERE"
                             " case_review_id = '" LG_REVIEW "'");
    measures = sql_int(n.lg, "SELECT count(*) FROM measure WHERE"
                             " case_review_id = '" LG_REVIEW "'");
    links = sql_int(n.lg, "SELECT count(*) FROM measure_recommendation WHERE"
                          " measure_id IN (SELECT id FROM measure WHERE"
                          " case_review_id = '" LG_REVIEW "')");
    ASSERT_EQ(sectors, 4);
    ASSERT_EQ(findings, 2);
    ASSERT_EQ(measures, 2);
    ASSERT_EQ(sql_int(n.land,
                      "SELECT count(*) FROM case_review WHERE id = '" LG_REVIEW
                      "' AND review_code = 'FA-LG-2026-01'"
                      " AND released_to_state = 1 AND"
                      " anonymisation_checked = 1 AND"
                      " summary_anonymised IS NULL AND"
                      " anonymisation_checked_by IS NULL"),
              1);
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM case_review_sector WHERE"
                              " case_review_id = '" LG_REVIEW "'"),
              sectors);
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM case_review_finding WHERE"
                              " case_review_id = '" LG_REVIEW "'"),
              findings);
    /* The statement only of the released finding. */
    stmt =
        sql_text(n.lg, "SELECT statement FROM case_review_finding WHERE"
                       " case_review_id = '" LG_REVIEW "' AND finding_no = 1");
    ASSERT_EQ(count1(n.land,
                     "SELECT count(*) FROM case_review_finding WHERE"
                     " finding_no = 1 AND statement = ?",
                     stmt),
              1);
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM case_review_finding WHERE"
                              " case_review_id = '" LG_REVIEW "' AND"
                              " finding_no = 2 AND statement IS NULL"),
              1);
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM measure WHERE"
                              " case_review_id = '" LG_REVIEW "'"),
              measures);
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM measure_recommendation"
                              " WHERE measure_id IN (SELECT id FROM measure"
                              " WHERE case_review_id = '" LG_REVIEW "')"),
              links);
    ASSERT_EQ(sql_int(n.land, "SELECT reviews FROM v_ind10_case_reviews WHERE"
                              " site_code = 'LG'"),
              1);
    assert_same_digest(n.lg, n.land, "site:LG");
    no_quarantine(&n);

    /*
     * Withdrawn: LG retracts the review and everything of it from site:LG
     * (one changeset, every row of it), and the state office should lose
     * it again.
     */
    sql_ok(n.lg,
           "UPDATE case_review SET released_to_state = 0 WHERE id = '" LG_REVIEW
           "'");
    ASSERT_GT(replica_build(n.lg, 0), 0);
    {
        struct replica_cs cs;
        ASSERT_EQ(replica_outbox_get(n.lg, "site:LG", 2, &cs), 1);
        ASSERT_U64_EQ(cs.hdr.author_seq, 3);
        ASSERT_EQ(cs.hdr.n_rows, 1 + sectors + findings + measures + links);
        replica_cs_clear(&cs);
    }
    ship(n.lg, n.land, "site:LG");
    /* The withdrawn review leaves the state office's replica whole
     * (a retracted owner cell must not count as a change of owner). */
    if (land_review_rows(n.land) != 0)
        T_FAIL_("after un-release LAND still holds: review %lld, sectors %lld,"
                " findings %lld, measures %lld, links %lld",
                sql_int(n.land, "SELECT count(*) FROM case_review WHERE id ="
                                " '" LG_REVIEW "'"),
                sql_int(n.land, "SELECT count(*) FROM case_review_sector"
                                " WHERE case_review_id = '" LG_REVIEW "'"),
                sql_int(n.land, "SELECT count(*) FROM case_review_finding"
                                " WHERE case_review_id = '" LG_REVIEW "'"),
                sql_int(n.land, "SELECT count(*) FROM measure WHERE"
                                " case_review_id = '" LG_REVIEW "'"),
                sql_int(n.land, "SELECT count(*) FROM measure_recommendation"
                                " WHERE measure_id IN (SELECT id FROM measure"
                                " WHERE case_review_id = '" LG_REVIEW "')"));
    ASSERT_EQ(count1(n.land,
                     "SELECT count(*) FROM case_review_finding WHERE"
                     " statement = ?",
                     stmt),
              0);
    ASSERT_EQ(sql_int(n.land, "SELECT count(*) FROM v_ind10_case_reviews WHERE"
                              " site_code = 'LG'"),
              0);
    assert_same_digest(n.lg, n.land, "site:LG");
    no_quarantine(&n);
    /* LG itself keeps it all. */
    ASSERT_EQ(sql_int(n.lg, "SELECT count(*) FROM case_review_finding WHERE"
                            " case_review_id = '" LG_REVIEW "'"),
              findings);
    free(stmt);
    net_free(&n);
}

T_MAIN(T(converged_digests_per_scope),
       T(state_replica_is_the_privacy_projection),
       T(indicator_views_match_one_database),
       T(shell_edit_is_captured_and_synced), T(ownership_rules),
       T(concurrent_edits_on_two_hannover_devices),
       T(release_case_review_to_state))
