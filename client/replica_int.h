/*
 * replica_int.h: what the engine's files share (replica.c, track.c,
 * capture.c, apply.c, digest.c).  Not for other modules.
 */
#ifndef KZ_REPLICA_INT_H
#define KZ_REPLICA_INT_H

#include <stdint.h>

#include <sqlite3.h>

#include "buf.h"
#include "changeset.h"
#include "env.h"
#include "hlc.h"
#include "replica.h"

#define REPLICA_MAX_COLS 62   /* non-pk columns; cell 0 is existence */
#define REPLICA_CELL_BYTES 10 /* hlc (8, BE) + device index (2, BE) */
#define REPLICA_DEFAULT_MAX_CELLS 20000u

enum track_kind { TRACK_NETWORK = 0, TRACK_SITE = 1, TRACK_PRIVATE = 2 };

struct tracked {
    int id;     /* kz_tracked.id: the table's number in kz_log/kz_clock */
    char *name; /* table name; owned */
    enum track_kind kind; /* scope kind */
    uint32_t n_pk;        /* primary-key columns */
    char **pk;            /* their names, in key order; owned */
    uint32_t n_cols;      /* other columns: cell k ≥ 1 is cols[k - 1] */
    char **cols;          /* owned */
    uint64_t priv_mask;   /* bit k: cell k always travels in private:NAME */
    uint64_t cond_mask;   /* bit k: private while cond_when holds */
    uint64_t keep_type; /* bit k: cell k's values keep their type (1 vs 1.0) */
    uint32_t pk_keep_type; /* bit i: so do key column i's */
    char *cond_when;       /* SQL predicate or NULL; owned */
    char *row_filter;      /* SQL predicate or NULL; owned */
    char *owner_col;       /* site/private tables: owner column; owned */
    sqlite3_stmt *row_st; /* cached: cols…, cond, filter WHERE pk = …; owned */
    struct wcache {
        int op;           /* 0 insert, 1 update, 2 delete */
        uint64_t mask;    /* columns written */
        sqlite3_stmt *st; /* owned */
    } wc[8];              /* prepared writes of apply.c */
    uint32_t wc_next;     /* next wc slot to reuse */
    sqlite3_stmt *key_st; /* cached: SELECT json_array(?, …) (apply.c); owned */
    int has_fk;           /* declares a foreign key (checked per apply) */
    int referenced;       /* a foreign key whose ON DELETE action can leave
                             rows referring to nothing refers to it
                             (checked per apply) */
    int cascaded;         /* one of them is CASCADE or SET DEFAULT */
    uint64_t fk_cols;     /* bit k: cell k is a column of a foreign key
                             (checked per apply) */
    uint64_t ref_cols;    /* bit k: a foreign key refers to cell k (not a
                             key column; checked per apply) */
    int capture_paused;   /* capture triggers dropped for this apply */
};

/* The values of one row's primary key (sqlite3_value_dup copies). */
struct pkvals {
    uint32_t n;                           /* key columns */
    sqlite3_value *v[KZ_LIM_PK_COLS_MAX]; /* owned; sqlite3_value_free */
};

/* A cell version: hlc and the author's local device index. */
struct cver {
    uint64_t hlc; /* 0 = never written */
    uint16_t dev; /* kz_device.idx */
};

/* This connection's hlcs for the stored round of a build in steps
 * (capture.c, fold_step; kz_round). */
struct fold_round {
    int64_t *seq;  /* the round's log seqs not folded yet, ascending; owned */
    uint64_t *hlc; /* their hlcs; owned */
    uint32_t cap;  /* entries seq and hlc have room for */
    uint32_t n;    /* entries in use; 0: none kept */
    int dense;     /* seq without gaps */
    int64_t id;    /* kz_meta round_id of the round they are for */
    int64_t pos;   /* the round's position they were given at */
    int64_t next_pos;   /* ... once this step commits */
    int64_t later_id;   /* round whose newer keys temp.kz_later holds */
    int64_t later_upto; /* ... up to this log seq */
};

struct replica {
    sqlite3 *db;              /* DIR/replica.db */
    char *dir;                /* owned */
    const struct kz_env *env; /* borrowed */
    struct kz_hlc clock;      /* last hlc persisted in kz_meta */
    char site[64];            /* own site code */
    enum replica_role role;   /* own role */
    uint8_t key[KZ_KEY_LEN];  /* own author id */
    uint16_t self_dev;        /* own kz_device.idx */
    struct tracked *tables;   /* owned array */
    uint32_t n_tables;
    uint8_t (*dev_keys)[KZ_KEY_LEN]; /* kz_device idx → key cache; owned */
    uint32_t n_dev;                  /* entries in dev_keys */
    sqlite3_stmt *split_st;  /* cached: a composite key's parts (capture.c) */
    uint32_t fold_chunk;     /* log rows per fold round; 0: the default (tests
                                make it small) */
    int64_t apply_log_floor; /* kz_log's last seq when the apply began */
    uint32_t n_paused;       /* tables whose capture is paused (apply.c) */
    int fk_written; /* this changeset's apply wrote a table a foreign key
                       leaves from or refers to (apply.c) */
    int notes_used; /* temp.kz_touched or temp.kz_fk_undo may have rows */
    sqlite3_stmt *revived_st; /* cached: notes a row alive again
                                 (replica__note_revived) */
    int revived_used;         /* temp.kz_revived may have rows */
    uint32_t tables_gen;      /* bumped by every track__load */
    uint32_t retried_gen;     /* tables_gen of the last whole retry */
    struct kz_buf paused_sql; /* their triggers, to create again; valid while
                                 n_paused > 0 */
    struct fold_round round;  /* replica_build_step's round */
    char errmsg[256];         /* last error's detail */
};

/* replica.c */
int replica__exec(struct replica *r, const char *sql);
int replica__dberr(struct replica *r, int rc, const char *what);
int replica__meta_get_int(struct replica *r, const char *key, int64_t *out);
int replica__meta_set_int(struct replica *r, const char *key, int64_t v);
int replica__meta_get_text(struct replica *r, const char *key, char *out,
                           size_t out_len);
int replica__meta_set_text(struct replica *r, const char *key, const char *v);
int replica__dev_idx(struct replica *r, const uint8_t key[KZ_KEY_LEN],
                     uint16_t *idx);
const uint8_t *replica__dev_key(struct replica *r, uint16_t idx);
int replica__begin(struct replica *r);
int replica__commit(struct replica *r);
void replica__rollback(struct replica *r);
int replica__save_clock(struct replica *r);
int replica__set_applying(struct replica *r, int on);
int replica__cver_cmp(struct replica *r, struct cver a, struct cver b);
int replica__cursor_set(struct replica *r, const char *scope, uint64_t seq);
/* The author_seq the next changeset of ${scope} gets (1 if none yet). */
int replica__outseq_next(struct replica *r, const char *scope, int64_t *next);
struct schema_file;
int replica__migrate(struct replica *r, const struct schema_file *files,
                     int *applied);

/* The kz_quarantine reason of cells whose row key cannot be kept exactly
 * here (track.c): kept and reported, never retried. */
#define REPLICA_Q_UNKEYABLE "key that cannot be kept exactly here"
/* Cells for a table or column this replica does not have yet: only a
 * change of the tracked tables (track__load) can let them in. */
#define REPLICA_Q_NO_TABLE "no such table here yet"
#define REPLICA_Q_NO_COLUMN "no such column here yet"
/* Cells newer than the delete of their row (apply.c): only the row alive
 * again can let them in. */
#define REPLICA_Q_WAITING "row deleted; kept in case it is inserted again"
/* Those reasons, as an SQL list: a retry after a changeset passes such
 * cells over (apply.c). */
#define REPLICA_Q_IDLE                                                         \
    "'" REPLICA_Q_UNKEYABLE "', '" REPLICA_Q_NO_TABLE                          \
    "', '" REPLICA_Q_NO_COLUMN "', '" REPLICA_Q_WAITING "'"

/* A kz_quarantine flag beside the wire's (KZ_CELL_RETRACT): a cell of this
 * device never sent, moved out with its row (apply.c, fk_move_row); when
 * it comes back it is to be sent again (dirty), with its base.  Never on
 * the wire: the decoder refuses any flag but KZ_CELL_RETRACT. */
#define REPLICA_QF_UNSENT 0x100u

/* The statement that notes a row alive again, its "row deleted" cells
 * worth a try (apply.c's retry after a changeset): INSERT OR IGNORE INTO
 * temp.kz_revived VALUES (?1 table number, ?2 kz_clock key).  Prepared
 * once, reset, for the caller to bind, step and reset. */
int replica__revived_stmt(struct replica *r, sqlite3_stmt **out);

/* track.c */
int track__load(struct replica *r);
void track__free_all(struct replica *r);
struct tracked *track__by_name(struct replica *r, const char *name, size_t len);
struct tracked *track__by_id(struct replica *r, int id);
int track__apply_decls(struct replica *r);
int track__retrack_all(struct replica *r);
/*
 * Inside an apply's transaction: track__capture_pause drops T's capture
 * triggers, so that the apply's own writes to T are not logged (and then
 * deleted) row by row; track__capture_resume creates them again, word for
 * word as they stood, in the same transaction, before it commits;
 * track__capture_forget is for after a rollback, which restored them.
 * replica__commit refuses to commit while a table is paused.
 */
int track__capture_pause(struct replica *r, struct tracked *t);
int track__capture_resume(struct replica *r);
void track__capture_forget(struct replica *r);
/* Stored keys of composite-key tables from before trigger generation 3
 * (json_array() alone) in the form of track__key_sql. */
int track__rekey(struct replica *r);
/* The kz_clock key of a key of ${n} parts, given as SQL expressions: the
 * value itself, or for n > 1 a JSON array (track.c says how). */
struct kz_buf;
void track__key_sql(struct kz_buf *b, uint32_t n, const char *const *parts,
                    const char *fail);
/* "SELECT key, ok, shown" for a key of ${n} > 1 parts bound as ?1…?n: ok
 * is 0 when the key cannot be kept (track.c), and shown is then a JSON
 * array of the parts' quote() to keep with the cells. */
int track__key_stmt(struct replica *r, uint32_t n, sqlite3_stmt **out);
char *track__sql_quote_ident(const char *name);

/* capture.c */
int capture__fold(struct replica *r);
/* Frees replica_build_step's round (replica_free). */
void capture__round_free(struct replica *r);
int replica__pk_split_init(struct replica *r);
int replica__pk_split(struct replica *r, const struct tracked *t,
                      sqlite3_value *pk, struct pkvals *out);
void replica__pk_free(struct pkvals *pv);
void replica__value_from_sqlite(struct kz_value *out, sqlite3_value *v);
int replica__row_stmt(struct replica *r, struct tracked *t,
                      const struct pkvals *pv, sqlite3_stmt **out);
uint64_t replica__public_mask(const struct tracked *t, int alive,
                              int cond_holds, int filter_ok);

/* cell blobs */
struct cver cver_get(const uint8_t *v, size_t v_len, uint32_t k);
void cver_put(uint8_t *v, uint32_t k, struct cver c);

#endif /* KZ_REPLICA_INT_H */
