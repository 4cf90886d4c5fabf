/*
 * limits.h: every wire limit in one place (STYLE.md 7; PROTOCOL.md §Limits).
 *
 * Decoders check these before any allocation, and every declared count must
 * also be ≤ the bytes left.  Limits before authentication are much smaller.
 */
#ifndef KZ_PROTO_LIMITS_H
#define KZ_PROTO_LIMITS_H

/* Framing. */
#define KZ_LIM_FRAME_MAX (16u * 1024 * 1024) /* one frame after auth */
#define KZ_LIM_PREAUTH_FRAME_MAX 1024u       /* a handshake frame */

/* msgpack values. */
#define KZ_LIM_DEPTH_MAX 8u               /* nesting of arrays/maps */
#define KZ_LIM_STR_MAX (1u * 1024 * 1024) /* one str value */
#define KZ_LIM_BIN_MAX (8u * 1024 * 1024) /* one bin value */
#define KZ_LIM_COUNT_MAX 65536u           /* elements of one array/map */
#define KZ_LIM_NAME_MAX 128u              /* table, column, scope names */

/* Changesets. */
#define KZ_LIM_CS_HEADER_MAX 256u /* encoded header (needs ≤ 238) */
#define KZ_LIM_CS_BODY_MAX (8u * 1024 * 1024) /* encoded body */
#define KZ_LIM_CS_CELLS_MAX 65536u            /* cells in one changeset */
#define KZ_LIM_CS_ROWS_MAX 65536u             /* rows in one changeset */
#define KZ_LIM_CS_TABLES_MAX 256u             /* tables in one changeset */
#define KZ_LIM_CS_COLS_MAX 256u               /* columns of one table */
#define KZ_LIM_CS_AUTHORS_MAX 256u            /* distinct cell authors */
#define KZ_LIM_PK_COLS_MAX 8u                 /* primary-key columns */

/* Noise (proto/noise.h).  65535 is the spec's own maximum message size. */
#define KZ_LIM_NOISE_MSG_MAX 65535u /* one Noise message */

/* Application messages (proto/msg.h; PROTOCOL.md §Messages). */
#define KZ_LIM_SOFTWARE_MAX 64u              /* HELLO software string */
#define KZ_LIM_PULL_SCOPES_MAX 1024u         /* cursors in one PULL */
#define KZ_LIM_SUBSCRIBE_SCOPES_MAX 1024u    /* scopes in one SUBSCRIBE */
#define KZ_LIM_BATCH_ITEMS_MAX 4096u         /* changesets in one BATCH */
#define KZ_LIM_ROSTER_MAX (1u * 1024 * 1024) /* an encoded roster */
#define KZ_LIM_KEY_ENV_MAX 4096u             /* one signed key envelope */
#define KZ_LIM_KEYS_MAX 1024u                /* envelopes in KEYS(_PUT) */
#define KZ_LIM_ERROR_TEXT_MAX 256u           /* ERROR text */

/* Rosters and join requests (proto/roster.h, proto/join.h; PROTOCOL.md
 * §Roster, §Keys and join requests). */
#define KZ_LIM_ROSTER_MEMBERS 4096u /* members of one roster */
#define KZ_LIM_ROSTER_SEQS_MAX 64u  /* revoked_seqs of a member */
#define KZ_LIM_DEVICE_NAME_MAX 64u  /* a device (member) name */
#define KZ_LIM_SITE_MAX 32u         /* a site code */
#define KZ_LIM_JOIN_MAX 512u        /* a join request, chars */

#endif /* KZ_PROTO_LIMITS_H */
