/*
 * mpk_wr.c: the msgpack writer: msgpack-c's msgpack_packer does the
 * encoding (it picks the shortest form of every integer, str and bin
 * header), our capped struct kz_buf holds the bytes.
 *
 * Why not msgpack_sbuffer as the sink: msgpack_sbuffer_write grows with
 * libc realloc, which kz_alloc_fail_after cannot reach (so the STYLE.md 19
 * fault loops would not cover it), it has no cap (we would check one before
 * every write anyway), it starts at 8 KiB even for a 60-byte header, and
 * what it returns would have to be freed with free() rather than kz_free.
 * struct kz_buf already is a capped, sticky, kz_realloc-backed sbuffer; the
 * packer writes into it through the same one-function callback interface
 * that msgpack_sbuffer_write implements.
 */
#include <msgpack.h>

#include "alloc.h"
#include "err.h"
#include "limits.h"

#include "changeset.h" /* struct kz_value */
#include "mpk.h"

/* The msgpack_packer_write callback: append to the capped buffer. */
static int
sink(void *data, const char *p, size_t len)
{
    struct kz_buf *b = data;

    kz_buf_append(b, p, len);
    return b->err ? -1 : 0;
}

/*
 * packer(w, pk): a packer on ${w}, or NULL when ${w} already failed.  The
 * packer is two pointers, so each call makes its own and mpk.h does not
 * need <msgpack.h>.
 */
static msgpack_packer *
packer(struct kz_mpk_wr *w, msgpack_packer *pk)
{
    if (w->b.err)
        return NULL;
    msgpack_packer_init(pk, &w->b, sink);
    return pk;
}

static void
set_err(struct kz_mpk_wr *w, int err)
{
    if (w->b.err == 0)
        w->b.err = err;
}

/* kz_mpk_wr_init(w, max_len): an empty writer capped at ${max_len} bytes. */
void
kz_mpk_wr_init(struct kz_mpk_wr *w, size_t max_len)
{
    kz_buf_init(&w->b, max_len);
}

/* kz_mpk_wr_free(w): releases the bytes; ${w} may be re-initialised. */
void
kz_mpk_wr_free(struct kz_mpk_wr *w)
{
    kz_buf_free(&w->b);
}

/* kz_mpk_wr_reset(w): drops the bytes and clears the error; keeps memory. */
void
kz_mpk_wr_reset(struct kz_mpk_wr *w)
{
    kz_buf_reset(&w->b);
}

/*
 * kz_mpk_wr_err(w): the sticky error: 0, -KZ_ENOMEM, -KZ_ELIMIT (cap or a
 * limit of proto/limits.h) or -KZ_EINVAL (a bad kz_value type).
 */
int
kz_mpk_wr_err(const struct kz_mpk_wr *w)
{
    return w->b.err;
}

/* kz_mpk_wr_len(w): bytes written so far. */
size_t
kz_mpk_wr_len(const struct kz_mpk_wr *w)
{
    return w->b.len;
}

void
kz_mpk_wr_array(struct kz_mpk_wr *w, uint32_t n)
{
    msgpack_packer pk;

    if (n > KZ_LIM_COUNT_MAX)
        set_err(w, -KZ_ELIMIT);
    if (packer(w, &pk))
        (void)msgpack_pack_array(&pk, n);
}

void
kz_mpk_wr_map(struct kz_mpk_wr *w, uint32_t n)
{
    msgpack_packer pk;

    if (n > KZ_LIM_COUNT_MAX)
        set_err(w, -KZ_ELIMIT);
    if (packer(w, &pk))
        (void)msgpack_pack_map(&pk, n);
}

void
kz_mpk_wr_uint(struct kz_mpk_wr *w, uint64_t v)
{
    msgpack_packer pk;

    if (packer(w, &pk))
        (void)msgpack_pack_uint64(&pk, v);
}

void
kz_mpk_wr_int(struct kz_mpk_wr *w, int64_t v)
{
    msgpack_packer pk;

    if (packer(w, &pk))
        (void)msgpack_pack_int64(&pk, v);
}

void
kz_mpk_wr_f64(struct kz_mpk_wr *w, double v)
{
    msgpack_packer pk;

    if (packer(w, &pk))
        (void)msgpack_pack_double(&pk, v);
}

void
kz_mpk_wr_nil(struct kz_mpk_wr *w)
{
    msgpack_packer pk;

    if (packer(w, &pk))
        (void)msgpack_pack_nil(&pk);
}

void
kz_mpk_wr_bool(struct kz_mpk_wr *w, bool v)
{
    msgpack_packer pk;

    if (packer(w, &pk))
        (void)(v ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
}

/* kz_mpk_wr_str(w, p, len): a str of ${len} bytes (copied). */
void
kz_mpk_wr_str(struct kz_mpk_wr *w, const void *p, size_t len)
{
    msgpack_packer pk;

    if (len > KZ_LIM_STR_MAX)
        set_err(w, -KZ_ELIMIT);
    if (packer(w, &pk))
        (void)msgpack_pack_str_with_body(&pk, p, len);
}

/* kz_mpk_wr_bin(w, p, len): a bin of ${len} bytes (copied). */
void
kz_mpk_wr_bin(struct kz_mpk_wr *w, const void *p, size_t len)
{
    msgpack_packer pk;

    if (len > KZ_LIM_BIN_MAX)
        set_err(w, -KZ_ELIMIT);
    if (packer(w, &pk))
        (void)msgpack_pack_bin_with_body(&pk, p, len);
}

/* kz_mpk_wr_value(w, v): the encoding kz_mpk_value reads back. */
void
kz_mpk_wr_value(struct kz_mpk_wr *w, const struct kz_value *v)
{
    switch (v->type) {
    case KZ_V_NULL: kz_mpk_wr_nil(w); break;
    case KZ_V_INT: kz_mpk_wr_int(w, v->i); break;
    case KZ_V_REAL: kz_mpk_wr_f64(w, v->d); break;
    case KZ_V_TEXT: kz_mpk_wr_str(w, v->p, v->len); break;
    case KZ_V_BLOB: kz_mpk_wr_bin(w, v->p, v->len); break;
    default: set_err(w, -KZ_EINVAL); break;
    }
}

/*
 * kz_mpk_wr_raw(w, p, len): appends ${len} bytes that are already msgpack
 * (e.g. another writer's output); the caller vouches for them.
 */
void
kz_mpk_wr_raw(struct kz_mpk_wr *w, const void *p, size_t len)
{
    kz_buf_append(&w->b, p, len);
}

/*
 * kz_mpk_wr_finish(w, out, out_len): moves the bytes to *${out} (caller
 * frees with kz_free) and leaves ${w} empty and reusable.  Returns 0, or the
 * sticky error (then nothing is returned and the bytes are freed).
 */
int
kz_mpk_wr_finish(struct kz_mpk_wr *w, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    return kz_buf_steal(&w->b, out, out_len);
}
