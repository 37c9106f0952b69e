/*
 * cbor.h - the bodies of the Smithy RPC v2 CBOR protocol (RFC 8949), over
 * libcbor.
 *
 * A writer puts a request straight into one size-capped buffer with
 * libcbor's encoders (definite lengths, as Smithy clients send them; an
 * error, the buffer's cap, sticks in rc and is checked once). A decoder
 * turns a reply into a cJSON tree with libcbor's streaming decoder, so the
 * rest of the AWS plumbing reads CBOR replies the way it reads JSON ones:
 * maps become objects (keys must be text), arrays arrays, text strings
 * strings (indefinite ones joined), byte strings base64 text, integers and
 * floats numbers (integers past 2^53 lose precision, as JSON numbers do),
 * booleans, null and undefined null; tags are dropped and their value kept
 * (tag 1, an epoch time, becomes its number of seconds).
 *
 * The decoder refuses, with EDDY_EPARSE and the byte offset: malformed or
 * truncated input, a map key that is not text, a break outside an
 * indefinite item, trailing bytes after the one top-level item, and nesting
 * deeper than EDDY_CBOR_MAX_DEPTH. It never trusts a length from the input
 * for an allocation: a claimed length larger than the input fails as
 * truncated.
 */
#ifndef EDDY_AWS_CBOR_H
#define EDDY_AWS_CBOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "base/err.h"

#define EDDY_CBOR_MAX_DEPTH 64

struct eddy_cbor_w {
    struct eddy_buf buf;
    eddy_err rc;
};

void eddy_cbor_w_init(struct eddy_cbor_w *w, size_t max);
void eddy_cbor_w_cleanup(struct eddy_cbor_w *w);
void eddy_cbor_map(struct eddy_cbor_w *w, size_t npairs);
void eddy_cbor_array(struct eddy_cbor_w *w, size_t n);
void eddy_cbor_text(struct eddy_cbor_w *w, const char *s, size_t n);
void eddy_cbor_ctext(struct eddy_cbor_w *w, const char *s);
void eddy_cbor_int(struct eddy_cbor_w *w, int64_t v);
void eddy_cbor_bool(struct eddy_cbor_w *w, bool v);
/* A timestamp as Smithy sends it: tag 1 and epoch seconds. */
void eddy_cbor_time(struct eddy_cbor_w *w, int64_t unix_s);
/* key and text value together */
void eddy_cbor_ktext(struct eddy_cbor_w *w, const char *key, const char *s);

/*
 * Decode the n bytes at p (one CBOR data item) into *out (the caller
 * deletes it with cJSON_Delete). On error *out is NULL and err says where.
 */
EDDY_MUST_USE eddy_err eddy_cbor_parse(const void *p, size_t n, cJSON **out,
                                       struct eddy_error *err);

#endif
