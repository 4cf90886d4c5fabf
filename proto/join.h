/*
 * join.h: the one-line texts that people copy between machines
 * (DESIGN.md §8; PROTOCOL.md §Keys and join requests).
 *
 * Join request, printed by `kzsync init` (without --create-network) and
 * consumed by `kzsync member add DIR REQUEST --role site|observer`:
 *
 *     "kzjoin1." base64url( [ body:bin, sig:bin(64) ] )
 *     body = [ format:uint (=1), name:str(1..64), site:str(1..32),
 *              sign_pk:bin(32), dh_pk:bin(32), created_ms:uint ]
 *
 * sig is the Ed25519 signature by sign_pk over the body bytes: proof that
 * the requester holds the signing key (the X25519 key proves itself in
 * every Noise handshake).  name and site follow the roster's rules
 * (roster_name_valid, roster_site_valid).  The whole text is at most
 * KZ_LIM_JOIN_MAX characters.
 *
 * Admin key, printed by `kzsync init --create-network`, taken by
 * `kzsyncd trust DIR ADMIN_KEY`:  "kzadmin1." base64url(Ed25519 pk, 32).
 *
 * Server key, printed by `kzsyncd init`, passed as `--server-key`:
 *                                 "kzserver1." base64url(X25519 pk, 32).
 *
 * base64url is RFC 4648 §5 without padding (libsodium's
 * sodium_base64_VARIANT_URLSAFE_NO_PADDING); decoders accept only the
 * canonical encoding (unused trailing bits zero), no whitespace, no
 * padding, nothing before the prefix or after the last character.  A
 * trailing newline is the caller's to strip.
 */
#ifndef KZ_PROTO_JOIN_H
#define KZ_PROTO_JOIN_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "kz.h"
#include "limits.h"

#define JOIN_FORMAT 1
#define JOIN_PREFIX "kzjoin1."
#define ADMINKEY_PREFIX "kzadmin1."
#define SERVERKEY_PREFIX "kzserver1."
#define KEYTEXT_B64_LEN 43u                        /* base64url of 32 bytes */
#define ADMINKEY_TEXT_LEN (9u + KEYTEXT_B64_LEN)   /* 52 characters */
#define SERVERKEY_TEXT_LEN (10u + KEYTEXT_B64_LEN) /* 53 characters */

/* A join request, decoded or to be encoded. */
struct join_request {
    char name[KZ_LIM_DEVICE_NAME_MAX + 1]; /* device name, NUL-terminated */
    char site[KZ_LIM_SITE_MAX + 1];        /* site code, NUL-terminated */
    struct kz_sign_pk sign_pk;             /* requester's Ed25519 key */
    struct kz_dh_pk dh_pk;                 /* requester's X25519 key */
    uint64_t created_ms;                   /* wall clock at creation, ms */
};

/**
 * join_encode(jr, sign_sk, out): the text of ${jr}, signed with ${sign_sk}
 * (whose public key must be jr->sign_pk).  *${out} is a NUL-terminated
 * string the caller frees with kz_free.  Returns 0, -KZ_EINVAL (bad name or
 * site, or a key that does not match), -KZ_ECRYPTO or -KZ_ENOMEM.
 */
KZ_MUST_CHECK int join_encode(const struct join_request *jr,
                              const struct kz_sign_sk *sign_sk, char **out);

/**
 * join_decode(jr, text, why): parses the NUL-terminated ${text}.  The body
 * is read with bounded reads into *${jr} and its signature verified with
 * the sign_pk it names before the function returns success; nothing is
 * allocated and nothing is borrowed.  Returns 0 or:
 *   -KZ_ELIMIT     longer than KZ_LIM_JOIN_MAX;
 *   -KZ_EVERSION   "kzjoinN." with N ≠ 1, or body format ≠ 1;
 *   -KZ_EMALFORMED wrong prefix, bad base64url, bad structure, name or site;
 *   -KZ_EAUTH      the signature does not verify;
 *   -KZ_EINVAL     ${text} is NULL.
 * On error *${jr} is zero.  ${why}, if not NULL, gets a static reason.
 */
KZ_MUST_CHECK int join_decode(struct join_request *jr, const char *text,
                              const char **why);

/**
 * adminkey_encode(pk, out): writes "kzadmin1.…" (ADMINKEY_TEXT_LEN chars
 * and a NUL) to ${out}.  Returns 0 or -KZ_ECRYPTO.
 */
KZ_MUST_CHECK int adminkey_encode(const struct kz_sign_pk *pk,
                                  char out[static ADMINKEY_TEXT_LEN + 1]);

/**
 * adminkey_decode(pk, text): strict inverse of adminkey_encode; the key
 * must also be a valid Ed25519 point that is not of small order.  Returns
 * 0, -KZ_EMALFORMED (*${pk} zero) or -KZ_EINVAL (${text} NULL).
 */
KZ_MUST_CHECK int adminkey_decode(struct kz_sign_pk *pk, const char *text);

/**
 * serverkey_encode(pk, out): writes "kzserver1.…" (SERVERKEY_TEXT_LEN
 * chars and a NUL) to ${out}.  Returns 0 or -KZ_ECRYPTO.
 */
KZ_MUST_CHECK int serverkey_encode(const struct kz_dh_pk *pk,
                                   char out[static SERVERKEY_TEXT_LEN + 1]);

/**
 * serverkey_decode(pk, text): strict inverse of serverkey_encode; an
 * all-zero key is refused (other low-order keys fail in the handshake,
 * where kz_dh refuses them).  Returns 0, -KZ_EMALFORMED (*${pk} zero) or
 * -KZ_EINVAL.
 */
KZ_MUST_CHECK int serverkey_decode(struct kz_dh_pk *pk, const char *text);

/*
 * Internal, for tests and fuzz targets only: join__decode_body parses a
 * join body (the msgpack inside the envelope) WITHOUT the signature check,
 * join__encode_body encodes one.  Returns as join_decode.
 */
KZ_MUST_CHECK int join__decode_body(struct join_request *jr, const uint8_t *p,
                                    size_t len, const char **why);
KZ_MUST_CHECK int join__encode_body(const struct join_request *jr,
                                    uint8_t **out, size_t *len);

#endif /* KZ_PROTO_JOIN_H */
