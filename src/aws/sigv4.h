/*
 * sigv4.h - AWS Signature Version 4, header signing. Pure: no I/O, the time
 * is an argument.
 *
 * Checked case by case against AWS's public test suite: the canonical
 * request, the string to sign and the signature separately.
 */
#ifndef EDDY_AWS_SIGV4_H
#define EDDY_AWS_SIGV4_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

struct eddy_sigv4_header {
    struct eddy_str name;
    struct eddy_str value;
};

/* Headers a request may carry beyond which signing refuses (EDDY_ELIMIT). */
#define EDDY_SIGV4_MAX_HEADERS 64

struct eddy_sigv4_request {
    struct eddy_str method;
    struct eddy_str path;  /* as sent, before normalisation, e.g. "/" */
    struct eddy_str query; /* without '?', may be empty */
    /* As sent; must include host. Names are matched without regard to case;
     * Authorization, User-Agent, X-Amzn-Trace-Id and hop-by-hop headers
     * (Connection, Expect, Transfer-Encoding, Upgrade) are not signed, as the
     * SDKs do, because proxies and tracing may change them. */
    const struct eddy_sigv4_header *headers;
    size_t nheaders;
    const void *payload;
    size_t payload_len;
    /* Optional lowercase hex SHA-256 of the payload, when already known. */
    const char *payload_hash;
};

struct eddy_sigv4_credentials {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL or "" when none */
};

struct eddy_sigv4_params {
    const char *region;
    const char *service;
    int64_t unix_s;      /* request time */
    bool normalize_path; /* true for every service but S3 */
    /* S3 only: the path is signed as sent (already encoded), not encoded
     * again. false (every other service): encode the path once more. */
    bool single_encode_path;
};

/*
 * A signing key depends only on the secret, the day, the region and the
 * service: callers keep one of these per client so four HMACs are done once a
 * day, not per request. Zeroed means empty. The key is secret: wipe it with
 * eddy_sigv4_key_cache_cleanup.
 */
struct eddy_sigv4_key_cache {
    char date[9];
    char region[32];
    char service[32];
    uint64_t secret_hash; /* which secret the key belongs to */
    unsigned char key[32];
};
void eddy_sigv4_key_cache_cleanup(struct eddy_sigv4_key_cache *c);

/*
 * The result. The caller inits it (eddy_sigv4_result_init) and cleans it
 * up. canonical_request and string_to_sign are filled only when asked
 * (keep_intermediate), for tests and debugging; they hold no secret.
 */
struct eddy_sigv4_result {
    struct eddy_buf canonical_request;
    struct eddy_buf string_to_sign;
    struct eddy_buf authorization; /* value of the Authorization header */
    char signature[65];
    char amz_date[17];     /* value for X-Amz-Date */
    char payload_hash[65]; /* hex SHA-256 of the payload */
    void *md;              /* the digest context (OpenSSL's), kept from one
                              signature to the next; NULL until the first */
};
void eddy_sigv4_result_init(struct eddy_sigv4_result *r);
void eddy_sigv4_result_cleanup(struct eddy_sigv4_result *r);

/*
 * Sign req. The caller has already put X-Amz-Date (r->amz_date as computed
 * from params->unix_s; see eddy_time_amz) and, with a session token,
 * X-Amz-Security-Token among req->headers, as the SDKs do, so they are
 * signed. cache may be NULL. creds->session_token is not read here: the
 * headers decide what is signed (a token added after signing stays unsigned,
 * as the suite's post-sts-header-after case does).
 *
 * out may be reused from one call to the next: its buffers and its digest
 * context are kept, so with a warm cache signing does not touch the heap. On error
 * out->authorization is empty.
 */
EDDY_MUST_USE eddy_err eddy_sigv4_sign(const struct eddy_sigv4_params *params,
                                       const struct eddy_sigv4_credentials *creds,
                                       const struct eddy_sigv4_request *req,
                                       struct eddy_sigv4_key_cache *cache, bool keep_intermediate,
                                       struct eddy_sigv4_result *out, struct eddy_error *err);

/* Lowercase hex SHA-256 of p (out: 65 bytes). */
void eddy_sha256_hex(const void *p, size_t n, char out[65]);
/* The same, with r's digest context: no context made and freed per hash
 * (the payload hash of every call). */
void eddy_sigv4_payload_hash(struct eddy_sigv4_result *r, const void *p, size_t n, char out[65]);

#endif
