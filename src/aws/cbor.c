/*
 * cbor.c - CBOR bodies over libcbor (see cbor.h).
 *
 * The writer calls libcbor's encoders on room reserved in the buffer (an
 * item head is at most 9 bytes). The decoder drives cbor_stream_decode one
 * item at a time; its callbacks build the cJSON tree on an explicit stack of
 * open containers, so the depth of the input costs no C stack and is capped.
 * A container is attached to its parent when it opens, and closes when its
 * count of items (two per map pair) reaches zero or, for an indefinite one,
 * at its break.
 */
#include "aws/cbor.h"

#include <cbor.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

#define HEAD_MAX 9 /* initial byte + an 8-byte argument */

/* ---- the writer ---- */

void eddy_cbor_w_init(struct eddy_cbor_w *w, size_t max)
{
    eddy_buf_init(&w->buf, max);
    w->rc = eddy_buf_reserve(&w->buf, 1024);
}

void eddy_cbor_w_cleanup(struct eddy_cbor_w *w)
{
    eddy_buf_cleanup(&w->buf);
}

/* Room for one head; NULL (and rc set) past the cap. */
static unsigned char *head_room(struct eddy_cbor_w *w)
{
    if (w->rc == EDDY_OK)
        w->rc = eddy_buf_reserve(&w->buf, HEAD_MAX);
    return w->rc == EDDY_OK ? (unsigned char *)w->buf.ptr + w->buf.len : NULL;
}

static void head_done(struct eddy_cbor_w *w, size_t n)
{
    if (n == 0) { /* cannot happen with HEAD_MAX bytes of room */
        w->rc = EDDY_ELIMIT;
        return;
    }
    w->buf.len += n;
    w->buf.ptr[w->buf.len] = '\0';
}

void eddy_cbor_map(struct eddy_cbor_w *w, size_t npairs)
{
    unsigned char *p = head_room(w);
    if (p)
        head_done(w, cbor_encode_map_start(npairs, p, HEAD_MAX));
}

void eddy_cbor_array(struct eddy_cbor_w *w, size_t n)
{
    unsigned char *p = head_room(w);
    if (p)
        head_done(w, cbor_encode_array_start(n, p, HEAD_MAX));
}

void eddy_cbor_text(struct eddy_cbor_w *w, const char *s, size_t n)
{
    unsigned char *p = head_room(w);
    if (p)
        head_done(w, cbor_encode_string_start(n, p, HEAD_MAX));
    if (w->rc == EDDY_OK)
        w->rc = eddy_buf_append(&w->buf, s, n);
}

void eddy_cbor_ctext(struct eddy_cbor_w *w, const char *s)
{
    eddy_cbor_text(w, s, strlen(s));
}

void eddy_cbor_int(struct eddy_cbor_w *w, int64_t v)
{
    unsigned char *p = head_room(w);
    if (p == NULL)
        return;
    if (v >= 0)
        head_done(w, cbor_encode_uint((uint64_t)v, p, HEAD_MAX));
    else /* CBOR stores -1 - v */
        head_done(w, cbor_encode_negint((uint64_t)(-(v + 1)), p, HEAD_MAX));
}

void eddy_cbor_bool(struct eddy_cbor_w *w, bool v)
{
    unsigned char *p = head_room(w);
    if (p)
        head_done(w, cbor_encode_bool(v, p, HEAD_MAX));
}

void eddy_cbor_time(struct eddy_cbor_w *w, int64_t unix_s)
{
    unsigned char *p = head_room(w);
    if (p)
        head_done(w, cbor_encode_tag(1, p, HEAD_MAX));
    eddy_cbor_int(w, unix_s);
}

void eddy_cbor_ktext(struct eddy_cbor_w *w, const char *key, const char *s)
{
    eddy_cbor_ctext(w, key);
    eddy_cbor_ctext(w, s);
}

/* ---- the decoder ---- */

enum chunks { CHUNKS_NONE, CHUNKS_TEXT, CHUNKS_BYTES };

struct frame {
    cJSON *node;   /* an array or an object */
    uint64_t left; /* items still to come (2 per map pair); unused when indef */
    bool indef;
    char *key; /* a map's key waiting for its value */
};

struct dec {
    struct frame stack[EDDY_CBOR_MAX_DEPTH];
    size_t depth;
    cJSON *root;
    bool root_done;
    enum chunks chunks; /* inside an indefinite string */
    struct eddy_buf chunk;
    const char *bad; /* why decoding stopped, NULL while fine */
};

static void fail(struct dec *d, const char *why)
{
    if (d->bad == NULL)
        d->bad = why;
}

/* Close every container whose items are all in. */
static void settle(struct dec *d)
{
    while (d->depth > 0) {
        struct frame *f = &d->stack[d->depth - 1];
        if (f->indef || f->left > 0)
            return;
        d->depth--;
    }
    d->root_done = true;
}

/* Attach v to the open container (or make it the root); false when refused. */
static bool attach(struct dec *d, cJSON *v)
{
    if (d->bad || d->chunks != CHUNKS_NONE) {
        fail(d, d->chunks != CHUNKS_NONE ? "an item inside an indefinite string" : d->bad);
        cJSON_Delete(v);
        return false;
    }
    if (d->depth == 0) {
        if (d->root) {
            fail(d, "more than one top-level item");
            cJSON_Delete(v);
            return false;
        }
        d->root = v;
        return true;
    }
    struct frame *f = &d->stack[d->depth - 1];
    if (!f->indef)
        f->left--;
    if (cJSON_IsArray(f->node)) {
        cJSON_AddItemToArray(f->node, v);
        return true;
    }
    if (f->key == NULL) {
        if (!cJSON_IsString(v)) {
            fail(d, "a map key that is not a text string");
            cJSON_Delete(v);
            return false;
        }
        f->key = eddy_strdup(v->valuestring);
        cJSON_Delete(v);
        return true;
    }
    cJSON_AddItemToObject(f->node, f->key, v);
    free(f->key);
    f->key = NULL;
    return true;
}

static void scalar(struct dec *d, cJSON *v)
{
    if (attach(d, v))
        settle(d);
}

/* Open a container of n items (indef: until its break). */
static void open_container(struct dec *d, cJSON *node, uint64_t n, bool indef)
{
    if (d->depth == EDDY_CBOR_MAX_DEPTH) {
        fail(d, "nesting deeper than 64 levels");
        cJSON_Delete(node);
        return;
    }
    if (!attach(d, node))
        return;
    if (!indef && n == 0) {
        settle(d);
        return;
    }
    d->stack[d->depth++] = (struct frame){node, n, indef, NULL};
}

static cJSON *text_node(const char *p, size_t n)
{
    char *s = eddy_strndup(p, n);
    cJSON *v = cJSON_CreateString(s);
    free(s);
    return v;
}

static cJSON *bytes_node(const unsigned char *p, size_t n)
{
    char *s = eddy_malloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)s, p, (int)n);
    cJSON *v = cJSON_CreateString(s);
    free(s);
    return v;
}

static void on_uint(struct dec *d, uint64_t v)
{
    scalar(d, cJSON_CreateNumber((double)v));
}

static void on_negint(struct dec *d, uint64_t v)
{
    scalar(d, cJSON_CreateNumber(-1.0 - (double)v));
}

static void cb_u8(void *ud, uint8_t v)
{
    on_uint(ud, v);
}
static void cb_u16(void *ud, uint16_t v)
{
    on_uint(ud, v);
}
static void cb_u32(void *ud, uint32_t v)
{
    on_uint(ud, v);
}
static void cb_u64(void *ud, uint64_t v)
{
    on_uint(ud, v);
}
static void cb_n8(void *ud, uint8_t v)
{
    on_negint(ud, v);
}
static void cb_n16(void *ud, uint16_t v)
{
    on_negint(ud, v);
}
static void cb_n32(void *ud, uint32_t v)
{
    on_negint(ud, v);
}
static void cb_n64(void *ud, uint64_t v)
{
    on_negint(ud, v);
}

/* A string, or one chunk of an indefinite one. */
static void on_string(struct dec *d, enum chunks kind, const unsigned char *p, size_t n)
{
    if (d->chunks == CHUNKS_NONE) {
        scalar(d, kind == CHUNKS_TEXT ? text_node((const char *)p, n) : bytes_node(p, n));
        return;
    }
    if (d->chunks != kind) {
        fail(d, "a chunk of the wrong type inside an indefinite string");
        return;
    }
    if (eddy_buf_append(&d->chunk, p, n) != EDDY_OK)
        fail(d, "an indefinite string over its cap");
}

static void cb_text(void *ud, cbor_data p, size_t n)
{
    on_string(ud, CHUNKS_TEXT, p, n);
}
static void cb_bytes(void *ud, cbor_data p, size_t n)
{
    on_string(ud, CHUNKS_BYTES, p, n);
}

static void start_chunks(struct dec *d, enum chunks kind)
{
    if (d->chunks != CHUNKS_NONE) {
        fail(d, "an indefinite string inside another");
        return;
    }
    d->chunks = kind;
    eddy_buf_reset(&d->chunk);
}

static void cb_text_start(void *ud)
{
    start_chunks(ud, CHUNKS_TEXT);
}
static void cb_bytes_start(void *ud)
{
    start_chunks(ud, CHUNKS_BYTES);
}

static void cb_array(void *ud, size_t n)
{
    open_container(ud, cJSON_CreateArray(), n, false);
}
static void cb_indef_array(void *ud)
{
    open_container(ud, cJSON_CreateArray(), 0, true);
}

static void cb_map(void *ud, size_t n)
{
    struct dec *d = ud;
    if (n > UINT64_MAX / 2) {
        fail(d, "a map longer than any input");
        return;
    }
    open_container(d, cJSON_CreateObject(), 2 * (uint64_t)n, false);
}
static void cb_indef_map(void *ud)
{
    open_container(ud, cJSON_CreateObject(), 0, true);
}

static void cb_break(void *ud)
{
    struct dec *d = ud;
    if (d->chunks != CHUNKS_NONE) {
        enum chunks kind = d->chunks;
        d->chunks = CHUNKS_NONE;
        const unsigned char *p = (const unsigned char *)eddy_buf_cstr(&d->chunk);
        on_string(d, kind, p, d->chunk.len);
        return;
    }
    struct frame *f = d->depth ? &d->stack[d->depth - 1] : NULL;
    if (f == NULL || !f->indef) {
        fail(d, "a break outside an indefinite item");
        return;
    }
    if (f->key) {
        fail(d, "a map key without a value");
        return;
    }
    f->indef = false;
    f->left = 0;
    settle(d);
}

static void cb_tag(void *ud, uint64_t tag)
{
    (void)ud; /* the value that follows stands for itself */
    (void)tag;
}

static void cb_float(void *ud, float v)
{
    scalar(ud, cJSON_CreateNumber((double)v));
}
static void cb_double(void *ud, double v)
{
    scalar(ud, cJSON_CreateNumber(v));
}
static void cb_null(void *ud)
{
    scalar(ud, cJSON_CreateNull());
}
static void cb_bool(void *ud, bool v)
{
    scalar(ud, cJSON_CreateBool(v));
}

static const struct cbor_callbacks callbacks = {
    .uint8 = cb_u8,
    .uint16 = cb_u16,
    .uint32 = cb_u32,
    .uint64 = cb_u64,
    .negint8 = cb_n8,
    .negint16 = cb_n16,
    .negint32 = cb_n32,
    .negint64 = cb_n64,
    .byte_string_start = cb_bytes_start,
    .byte_string = cb_bytes,
    .string = cb_text,
    .string_start = cb_text_start,
    .indef_array_start = cb_indef_array,
    .array_start = cb_array,
    .indef_map_start = cb_indef_map,
    .map_start = cb_map,
    .tag = cb_tag,
    .float2 = cb_float,
    .float4 = cb_float,
    .float8 = cb_double,
    .undefined = cb_null,
    .null = cb_null,
    .boolean = cb_bool,
    .indef_break = cb_break,
};

static void dec_cleanup(struct dec *d)
{
    for (size_t i = 0; i < d->depth; i++)
        free(d->stack[i].key);
    eddy_buf_cleanup(&d->chunk);
}

eddy_err eddy_cbor_parse(const void *p, size_t n, cJSON **out, struct eddy_error *err)
{
    *out = NULL;
    struct dec d;
    memset(&d, 0, sizeof d);
    eddy_buf_init(&d.chunk, n);
    const unsigned char *bytes = p;
    size_t off = 0;
    while (d.bad == NULL && !d.root_done) {
        if (off == n) {
            fail(&d, n ? "truncated" : "empty");
            break;
        }
        struct cbor_decoder_result r = cbor_stream_decode(bytes + off, n - off, &callbacks, &d);
        if (r.status != CBOR_DECODER_FINISHED) {
            fail(&d, r.status == CBOR_DECODER_NEDATA ? "truncated" : "malformed");
            break;
        }
        off += r.read;
    }
    if (d.bad == NULL && off != n)
        fail(&d, "trailing bytes after the top-level item");
    dec_cleanup(&d);
    if (d.bad) {
        cJSON_Delete(d.root);
        return eddy_error_set(err, EDDY_EPARSE, "CBOR: %s at byte %zu of %zu", d.bad, off, n);
    }
    *out = d.root;
    return EDDY_OK;
}
