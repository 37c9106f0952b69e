/*
 * sigv4.c - AWS Signature Version 4 header signing (see sigv4.h).
 *
 * Every AWS call eddy makes is signed here, so the hot path is written to do
 * little: the canonical request is never assembled in memory (it is streamed
 * through a small chunk buffer into SHA-256) unless the caller asks to keep
 * it, headers are sorted through an index array on the stack, the signed
 * header list is written once, straight into the Authorization value, and the
 * four HMACs of the signing key are done once a day per region and service
 * (struct eddy_sigv4_key_cache). One OpenSSL digest context, kept in the
 * result from one call to the next, serves the payload hash, the canonical
 * request hash and the HMACs.
 *
 * HMAC-SHA256 is written out (RFC 2104) over that one digest context rather
 * than through OpenSSL's MAC objects: OpenSSL 3's one-shot HMAC() fetches and
 * allocates a MAC context on every call, which costs more than the hashing.
 * The test suite checks it against HMAC().
 *
 * OpenSSL's SHA-256 fails only when it cannot allocate; like eddy_malloc,
 * this file aborts then rather than carry an untested error path.
 *
 * Not here: presigned URLs (query signing), chunked S3 payloads, SigV4a.
 */
#include "aws/sigv4.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "eddy/rng.h"

#define ALGORITHM "AWS4-HMAC-SHA256"
#define SCOPE_TERMINATOR "aws4_request"
/* Longest region or service name accepted; keeps the string to sign on the stack. */
#define SCOPE_PART_MAX 63
/* Longest secret access key accepted (AWS issues 40 characters). */
#define SECRET_MAX 256
/* Path segments kept while removing dot segments. */
#define PATH_SEGMENTS_MAX 256

/* ---- SHA-256 and HMAC over one reusable digest context ---------------- */

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    /* An explicit fetch, done once: EVP_sha256() would make OpenSSL 3 look
     * the implementation up again on every init. */
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (sha256_md == NULL)
        abort();
}

static const EVP_MD *sha256(void)
{
    pthread_once(&sha256_once, sha256_fetch);
    return sha256_md;
}

static EVP_MD_CTX *digest_new(void)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c == NULL)
        abort();
    return c;
}

static void digest_begin(EVP_MD_CTX *c)
{
    if (EVP_DigestInit_ex(c, sha256(), NULL) != 1)
        abort();
}

static void digest_update(EVP_MD_CTX *c, const void *p, size_t n)
{
    if (n && EVP_DigestUpdate(c, p, n) != 1)
        abort();
}

static void digest_end(EVP_MD_CTX *c, unsigned char out[32])
{
    if (EVP_DigestFinal_ex(c, out, NULL) != 1)
        abort();
}

static void digest_once(EVP_MD_CTX *c, const void *p, size_t n, unsigned char out[32])
{
    digest_begin(c);
    digest_update(c, p, n);
    digest_end(c, out);
}

/* HMAC-SHA256 (RFC 2104). out may alias key. */
static void hmac_sha256(EVP_MD_CTX *c, const void *key, size_t klen, const void *msg, size_t mlen,
                        unsigned char out[32])
{
    unsigned char pad[64] = {0};
    unsigned char inner[32];
    if (klen > sizeof pad)
        digest_once(c, key, klen, pad);
    else
        memcpy(pad, key, klen);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] ^= 0x36;
    digest_begin(c);
    digest_update(c, pad, sizeof pad);
    digest_update(c, msg, mlen);
    digest_end(c, inner);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] ^= 0x36 ^ 0x5c;
    digest_begin(c);
    digest_update(c, pad, sizeof pad);
    digest_update(c, inner, sizeof inner);
    digest_end(c, out);
    eddy_wipe(pad, sizeof pad);
    eddy_wipe(inner, sizeof inner);
}

static void hex32(const unsigned char in[32], char out[65])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[64] = '\0';
}

void eddy_sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    if (EVP_Digest(p, n, md, NULL, sha256(), NULL) != 1)
        abort();
    hex32(md, out);
}

/* ---- the sink: SHA-256 of the canonical request, optionally kept ------- */

struct sink {
    EVP_MD_CTX *ctx;
    struct eddy_buf *keep; /* NULL unless the caller keeps intermediates */
    eddy_err keep_rc;      /* first failure to append to keep */
    size_t n;
    unsigned char chunk[1024];
};

static void sink_flush(struct sink *s)
{
    digest_update(s->ctx, s->chunk, s->n);
    s->n = 0;
}

static void sink_write(struct sink *s, const void *p, size_t n)
{
    if (s->keep && s->keep_rc == EDDY_OK)
        s->keep_rc = eddy_buf_append(s->keep, p, n);
    if (n > sizeof s->chunk - s->n) {
        sink_flush(s);
        if (n >= sizeof s->chunk) {
            digest_update(s->ctx, p, n);
            return;
        }
    }
    memcpy(s->chunk + s->n, p, n);
    s->n += n;
}

static void sink_putc(struct sink *s, char c)
{
    sink_write(s, &c, 1);
}

static void sink_str(struct sink *s, struct eddy_str str)
{
    sink_write(s, str.ptr, str.len);
}

/* ---- character classes ------------------------------------------------- */

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static bool is_space(char c)
{
    /* Tabs and line breaks count too: a folded (multi-line) header value
     * is signed as its lines joined by single spaces. */
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void percent(char out[3], unsigned char c)
{
    static const char digits[] = "0123456789ABCDEF";
    out[0] = '%';
    out[1] = digits[c >> 4];
    out[2] = digits[c & 15];
}

/* RFC 3986 encoding: unreserved characters (and '/' in a path) as they
 * are, the rest %XX. */
static void sink_encode(struct sink *s, const char *p, size_t n, bool keep_slash)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_unreserved((unsigned char)p[i]) || (keep_slash && p[i] == '/'))
            continue;
        sink_write(s, p + run, i - run);
        char esc[3];
        percent(esc, (unsigned char)p[i]);
        sink_write(s, esc, 3);
        run = i + 1;
    }
    sink_write(s, p + run, n - run);
}

/* ---- canonical URI ----------------------------------------------------- */

/* A path (or a piece of it) as sent: encoded once more, except for S3. */
static void sink_path(struct sink *s, struct eddy_str p, bool encode)
{
    if (encode)
        sink_encode(s, p.ptr, p.len, true);
    else
        sink_str(s, p);
}

/* Split path on '/', dropping empty and "." segments and resolving "..". */
static eddy_err path_segments(struct eddy_str path, struct eddy_str *segs, size_t *nsegs,
                              struct eddy_error *err)
{
    size_t n = 0;
    size_t i = 0;
    while (i < path.len) {
        while (i < path.len && path.ptr[i] == '/')
            i++;
        size_t start = i;
        while (i < path.len && path.ptr[i] != '/')
            i++;
        struct eddy_str seg = {path.ptr + start, i - start};
        if (seg.len == 0 || eddy_str_eqc(seg, "."))
            continue;
        if (eddy_str_eqc(seg, "..")) {
            if (n > 0)
                n--;
            continue;
        }
        if (n == PATH_SEGMENTS_MAX)
            return eddy_error_set(err, EDDY_ELIMIT, "sigv4: path has more than %d segments",
                                  PATH_SEGMENTS_MAX);
        segs[n++] = seg;
    }
    *nsegs = n;
    return EDDY_OK;
}

static eddy_err write_uri(struct sink *s, const struct eddy_sigv4_params *params,
                          struct eddy_str path, struct eddy_error *err)
{
    bool encode = !params->single_encode_path;
    if (path.len == 0 || (path.len == 1 && path.ptr[0] == '/')) {
        sink_putc(s, '/');
        return EDDY_OK;
    }
    if (!params->normalize_path) {
        sink_path(s, path, encode);
        return EDDY_OK;
    }
    struct eddy_str segs[PATH_SEGMENTS_MAX];
    size_t n = 0;
    eddy_err rc = path_segments(path, segs, &n, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        sink_putc(s, '/');
        sink_path(s, segs[i], encode);
    }
    if (n == 0 || path.ptr[path.len - 1] == '/')
        sink_putc(s, '/');
    return EDDY_OK;
}

/* ---- canonical query string -------------------------------------------- */

struct qparam {
    size_t koff, voff, end; /* offsets in the encoded copy */
    struct eddy_str key;
    struct eddy_str value;
};

/* Append p decoded (%XX) and encoded again, so a query given raw and one
 * given already encoded sign alike. */
static eddy_err append_query_part(struct eddy_buf *b, const char *p, size_t n)
{
    eddy_err rc = EDDY_OK;
    for (size_t i = 0; i < n && rc == EDDY_OK; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '%' && i + 2 < n && hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
            c = (unsigned char)(hexval(p[i + 1]) << 4 | hexval(p[i + 2]));
            i += 2;
        }
        if (is_unreserved(c)) {
            rc = eddy_buf_appendc(b, (char)c);
        } else {
            char esc[3];
            percent(esc, c);
            rc = eddy_buf_append(b, esc, 3);
        }
    }
    return rc;
}

static int str_cmp(struct eddy_str a, struct eddy_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c)
        return c;
    return (a.len > b.len) - (a.len < b.len);
}

static int qparam_cmp(const void *pa, const void *pb)
{
    const struct qparam *a = pa;
    const struct qparam *b = pb;
    int c = str_cmp(a->key, b->key);
    return c ? c : str_cmp(a->value, b->value);
}

/* Encode every key and value into tmp and point q at them. */
static eddy_err encode_query(struct eddy_str query, struct eddy_buf *tmp, struct qparam *q,
                             size_t *nq)
{
    size_t n = 0;
    size_t i = 0;
    while (i < query.len) {
        size_t start = i;
        while (i < query.len && query.ptr[i] != '&')
            i++;
        size_t end = i++;
        if (end == start)
            continue; /* "a=1&&b=2" */
        const char *eq = memchr(query.ptr + start, '=', end - start);
        size_t klen = eq ? (size_t)(eq - (query.ptr + start)) : end - start;
        size_t koff = tmp->len;
        eddy_err rc = append_query_part(tmp, query.ptr + start, klen);
        size_t voff = tmp->len;
        if (rc == EDDY_OK && eq)
            rc = append_query_part(tmp, eq + 1, (size_t)(query.ptr + end - (eq + 1)));
        if (rc)
            return rc;
        q[n].koff = koff;
        q[n].voff = voff;
        q[n].end = tmp->len;
        n++;
    }
    /* Only now, with tmp no longer growing, are pointers into it stable. */
    const char *base = eddy_buf_cstr(tmp);
    for (size_t k = 0; k < n; k++) {
        q[k].key = (struct eddy_str){base + q[k].koff, q[k].voff - q[k].koff};
        q[k].value = (struct eddy_str){base + q[k].voff, q[k].end - q[k].voff};
    }
    *nq = n;
    return EDDY_OK;
}

/* Query strings are rare on eddy's calls (JSON protocols POST to "/"), so
 * this path may allocate. */
static eddy_err write_query(struct sink *s, struct eddy_str query, struct eddy_error *err)
{
    if (query.len == 0)
        return EDDY_OK;
    size_t cap = 1;
    for (size_t i = 0; i < query.len; i++)
        cap += query.ptr[i] == '&';
    struct qparam *q = eddy_calloc(cap, sizeof *q);
    struct eddy_buf tmp;
    eddy_buf_init(&tmp, 0);
    size_t n = 0;
    eddy_err rc = encode_query(query, &tmp, q, &n);
    if (rc) {
        eddy_error_set(err, rc, "sigv4: query string of %zu bytes is too long", query.len);
        goto done;
    }
    qsort(q, n, sizeof *q, qparam_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i)
            sink_putc(s, '&');
        sink_str(s, q[i].key);
        sink_putc(s, '=');
        sink_str(s, q[i].value);
    }
done:
    eddy_buf_cleanup(&tmp);
    free(q);
    return rc;
}

/* ---- canonical headers ------------------------------------------------- */

static int name_cmp(struct eddy_str a, struct eddy_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)lower(a.ptr[i]);
        unsigned char y = (unsigned char)lower(b.ptr[i]);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return (a.len > b.len) - (a.len < b.len);
}

static bool name_is(struct eddy_str name, struct eddy_str lc)
{
    return name.len == lc.len && name_cmp(name, lc) == 0;
}

static bool header_signed(struct eddy_str name)
{
    /* clang-format off */
#define SKIP(lit) {lit, sizeof lit - 1}
    static const struct eddy_str skip[] = {
        SKIP("authorization"), SKIP("connection"), SKIP("expect"), SKIP("transfer-encoding"),
        SKIP("upgrade"), SKIP("user-agent"), SKIP("x-amzn-trace-id"),
    };
#undef SKIP
    /* clang-format on */
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(skip); i++)
        if (name_is(name, skip[i]))
            return false;
    return true;
}

/* The signed headers as indexes into req->headers, sorted by lowercase name;
 * a stable insertion sort keeps repeated names in the order they were sent,
 * which is the order their values are joined in. */
static eddy_err sort_headers(const struct eddy_sigv4_request *req, uint16_t *idx, size_t *nidx,
                             struct eddy_error *err)
{
    if (req->nheaders > EDDY_SIGV4_MAX_HEADERS)
        return eddy_error_set(err, EDDY_ELIMIT, "sigv4: %zu headers, more than %d", req->nheaders,
                              EDDY_SIGV4_MAX_HEADERS);
    bool host = false;
    size_t n = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        struct eddy_str name = req->headers[i].name;
        if (name.len == 0)
            return eddy_error_set(err, EDDY_EINVAL, "sigv4: header %zu has no name", i);
        if (!header_signed(name))
            continue;
        host = host || name_is(name, EDDY_STR_LIT("host"));
        size_t j = n++;
        while (j > 0 && name_cmp(req->headers[idx[j - 1]].name, name) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = (uint16_t)i;
    }
    if (!host)
        return eddy_error_set(err, EDDY_EINVAL, "sigv4: the request has no host header");
    *nidx = n;
    return EDDY_OK;
}

/* A value trimmed, with each run of blanks inside it made one space. */
static void sink_trimmed(struct sink *s, struct eddy_str v)
{
    size_t i = 0;
    size_t n = v.len;
    while (i < n && is_space(v.ptr[i]))
        i++;
    while (n > i && is_space(v.ptr[n - 1]))
        n--;
    while (i < n) {
        size_t j = i;
        while (j < n && !is_space(v.ptr[j]))
            j++;
        sink_write(s, v.ptr + i, j - i);
        if (j == n)
            break;
        sink_putc(s, ' ');
        while (is_space(v.ptr[j]))
            j++;
        i = j;
    }
}

static eddy_err append_lower(struct eddy_buf *b, struct eddy_str s)
{
    eddy_err rc = eddy_buf_reserve(b, s.len);
    if (rc)
        return rc;
    for (size_t i = 0; i < s.len; i++)
        b->ptr[b->len++] = lower(s.ptr[i]);
    b->ptr[b->len] = '\0';
    return EDDY_OK;
}

/* "name:v1,v2\n" per distinct name, and the names joined by ';' appended to
 * signed (the Authorization value under construction). */
static eddy_err write_headers(struct sink *s, const struct eddy_sigv4_request *req,
                              const uint16_t *idx, size_t n, struct eddy_buf *signed_list)
{
    eddy_err rc = EDDY_OK;
    for (size_t k = 0; k < n && rc == EDDY_OK; k++) {
        const struct eddy_sigv4_header *h = &req->headers[idx[k]];
        bool repeat = k > 0 && name_cmp(req->headers[idx[k - 1]].name, h->name) == 0;
        if (repeat) {
            sink_putc(s, ',');
        } else {
            if (k > 0) {
                sink_putc(s, '\n');
                rc = eddy_buf_appendc(signed_list, ';');
            }
            size_t at = signed_list->len;
            if (rc == EDDY_OK)
                rc = append_lower(signed_list, h->name);
            if (rc == EDDY_OK)
                sink_write(s, signed_list->ptr + at, h->name.len);
            sink_putc(s, ':');
        }
        sink_trimmed(s, h->value);
    }
    sink_write(s, "\n\n", 2);
    return rc;
}

/* ---- time, scope and the signing key ----------------------------------- */

/* "20150830T123600Z": eddy_time_amz, for the years a date stamp can hold. */
static eddy_err amz_date(int64_t unix_s, char out[17], struct eddy_error *err)
{
    if (unix_s < 0 || unix_s > INT64_C(253402300799)) /* years 1970..9999 */
        return eddy_error_set(err, EDDY_EINVAL, "sigv4: time %lld is out of range",
                              (long long)unix_s);
    eddy_time_amz(unix_s, out);
    return EDDY_OK;
}

static void derive_key(EVP_MD_CTX *c, const char *secret, size_t slen, const char *date,
                       const char *region, const char *service, unsigned char key[32])
{
    unsigned char k[4 + SECRET_MAX];
    memcpy(k, "AWS4", 4);
    memcpy(k + 4, secret, slen);
    hmac_sha256(c, k, 4 + slen, date, 8, key);
    eddy_wipe(k, sizeof k);
    hmac_sha256(c, key, 32, region, strlen(region), key);
    hmac_sha256(c, key, 32, service, strlen(service), key);
    hmac_sha256(c, key, 32, SCOPE_TERMINATOR, sizeof SCOPE_TERMINATOR - 1, key);
}

/* The signing key for this day, region, service and secret: from the cache
 * when it holds that one, else derived (into the cache when the names fit
 * it, else into local). */
static const unsigned char *signing_key(EVP_MD_CTX *c, struct eddy_sigv4_key_cache *cache,
                                        const char *secret, size_t slen, const char *date,
                                        const struct eddy_sigv4_params *params,
                                        unsigned char local[32])
{
    size_t rlen = strlen(params->region);
    size_t svlen = strlen(params->service);
    if (cache == NULL || rlen >= sizeof cache->region || svlen >= sizeof cache->service) {
        derive_key(c, secret, slen, date, params->region, params->service, local);
        return local;
    }
    /* A 64-bit FNV-1a of the secret notices rotated credentials without
     * keeping a copy of the secret in the cache. */
    uint64_t h = eddy_fnv1a64(secret, slen);
    if (h == cache->secret_hash && memcmp(cache->date, date, 9) == 0 &&
        strcmp(cache->region, params->region) == 0 && strcmp(cache->service, params->service) == 0)
        return cache->key;
    derive_key(c, secret, slen, date, params->region, params->service, cache->key);
    memcpy(cache->date, date, 9);
    memcpy(cache->region, params->region, rlen + 1);
    memcpy(cache->service, params->service, svlen + 1);
    cache->secret_hash = h;
    return cache->key;
}

void eddy_sigv4_key_cache_cleanup(struct eddy_sigv4_key_cache *c)
{
    eddy_wipe(c, sizeof *c);
}

/* ---- signing ----------------------------------------------------------- */

void eddy_sigv4_result_init(struct eddy_sigv4_result *r)
{
    eddy_buf_init(&r->canonical_request, (size_t)1 << 20);
    eddy_buf_init(&r->string_to_sign, 4096);
    eddy_buf_init(&r->authorization, 8192);
    r->signature[0] = '\0';
    r->amz_date[0] = '\0';
    r->payload_hash[0] = '\0';
    r->md = NULL;
}

/* The result's digest context, made on first use. */
static EVP_MD_CTX *result_digest(struct eddy_sigv4_result *r)
{
    if (r->md == NULL)
        r->md = digest_new();
    return r->md;
}

void eddy_sigv4_payload_hash(struct eddy_sigv4_result *r, const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    digest_once(result_digest(r), p, n, md);
    hex32(md, out);
}

static void wipe_buf(struct eddy_buf *b)
{
    if (b->ptr)
        eddy_wipe(b->ptr, b->cap);
    eddy_buf_cleanup(b);
}

/* The canonical request holds the session token, the Authorization value a
 * signature usable until the request expires: wiped like secrets. */
void eddy_sigv4_result_cleanup(struct eddy_sigv4_result *r)
{
    wipe_buf(&r->canonical_request);
    wipe_buf(&r->string_to_sign);
    wipe_buf(&r->authorization);
    EVP_MD_CTX_free(r->md); /* its state is cleansed as it is freed */
    r->md = NULL;
}

static eddy_err check_part(const char *what, const char *v, size_t max, struct eddy_error *err)
{
    if (v == NULL || v[0] == '\0')
        return eddy_error_set(err, EDDY_EINVAL, "sigv4: no %s", what);
    if (strlen(v) > max)
        return eddy_error_set(err, EDDY_EINVAL, "sigv4: %s is longer than %zu bytes", what, max);
    return EDDY_OK;
}

static eddy_err check_inputs(const struct eddy_sigv4_params *params,
                             const struct eddy_sigv4_credentials *creds,
                             const struct eddy_sigv4_request *req, struct eddy_error *err)
{
    eddy_err rc;
    if ((rc = check_part("region", params->region, SCOPE_PART_MAX, err)) ||
        (rc = check_part("service", params->service, SCOPE_PART_MAX, err)) ||
        (rc = check_part("access key id", creds->access_key_id, 128, err)))
        return rc;
    /* The secret's text never goes into a message, only its absence. */
    if ((rc = check_part("secret access key", creds->secret_access_key, SECRET_MAX, err)))
        return rc;
    if (req->method.len == 0)
        return eddy_error_set(err, EDDY_EINVAL, "sigv4: no method");
    if (req->payload_len > 0 && req->payload == NULL)
        return eddy_error_set(err, EDDY_EINVAL, "sigv4: payload of %zu bytes is NULL",
                              req->payload_len);
    if (req->payload_hash && strlen(req->payload_hash) != 64)
        return eddy_error_set(err, EDDY_EINVAL, "sigv4: payload hash is not 64 hex digits");
    return EDDY_OK;
}

/* The canonical request, hashed into creq_hash, its signed header list
 * taken from (and already written to) out->authorization at [at, end). */
static eddy_err canonical_request(EVP_MD_CTX *c, const struct eddy_sigv4_params *params,
                                  const struct eddy_sigv4_request *req, bool keep,
                                  struct eddy_sigv4_result *out, const uint16_t *idx, size_t nidx,
                                  unsigned char creq_hash[32], struct eddy_error *err)
{
    struct sink s;
    s.ctx = c;
    s.keep = keep ? &out->canonical_request : NULL;
    s.keep_rc = EDDY_OK;
    s.n = 0;
    digest_begin(c);
    sink_str(&s, req->method);
    sink_putc(&s, '\n');
    eddy_err rc = write_uri(&s, params, req->path, err);
    if (rc)
        return rc;
    sink_putc(&s, '\n');
    if ((rc = write_query(&s, req->query, err)))
        return rc;
    sink_putc(&s, '\n');
    size_t at = out->authorization.len;
    if ((rc = write_headers(&s, req, idx, nidx, &out->authorization)))
        return eddy_error_set(err, rc, "sigv4: signed header names exceed %zu bytes",
                              out->authorization.max);
    sink_write(&s, out->authorization.ptr + at, out->authorization.len - at);
    sink_putc(&s, '\n');
    sink_write(&s, out->payload_hash, 64);
    sink_flush(&s);
    digest_end(c, creq_hash);
    if (s.keep_rc)
        return eddy_error_set(err, s.keep_rc, "sigv4: canonical request exceeds %zu bytes",
                              out->canonical_request.max);
    return EDDY_OK;
}

/* "20150830/us-east-1/service/aws4_request"; returns its length. */
static size_t build_scope(char *out, const char *date, const struct eddy_sigv4_params *params)
{
    size_t rlen = strlen(params->region);
    size_t slen = strlen(params->service);
    char *p = out;
    memcpy(p, date, 8);
    p += 8;
    *p++ = '/';
    memcpy(p, params->region, rlen);
    p += rlen;
    *p++ = '/';
    memcpy(p, params->service, slen);
    p += slen;
    *p++ = '/';
    memcpy(p, SCOPE_TERMINATOR, sizeof SCOPE_TERMINATOR);
    return (size_t)(p - out) + sizeof SCOPE_TERMINATOR - 1;
}

static eddy_err begin_authorization(struct eddy_buf *b, const char *akid, const char *scope,
                                    size_t scope_len)
{
    eddy_err rc = eddy_buf_appends(b, ALGORITHM " Credential=");
    if (rc == EDDY_OK)
        rc = eddy_buf_appends(b, akid);
    if (rc == EDDY_OK)
        rc = eddy_buf_appendc(b, '/');
    if (rc == EDDY_OK)
        rc = eddy_buf_append(b, scope, scope_len);
    if (rc == EDDY_OK)
        rc = eddy_buf_appends(b, ", SignedHeaders=");
    return rc;
}

/* "AWS4-HMAC-SHA256\n<amz date>\n<scope>\n<hex of the canonical request hash>" */
static size_t build_string_to_sign(char *out, const char *amz, const char *scope, size_t scope_len,
                                   const unsigned char creq_hash[32])
{
    char *p = out;
    memcpy(p, ALGORITHM "\n", sizeof ALGORITHM);
    p += sizeof ALGORITHM;
    memcpy(p, amz, 16);
    p += 16;
    *p++ = '\n';
    memcpy(p, scope, scope_len);
    p += scope_len;
    *p++ = '\n';
    hex32(creq_hash, p);
    return (size_t)(p - out) + 64;
}

static void reset_result(struct eddy_sigv4_result *out)
{
    eddy_buf_reset(&out->canonical_request);
    eddy_buf_reset(&out->string_to_sign);
    eddy_buf_reset(&out->authorization);
    out->signature[0] = '\0';
}

eddy_err eddy_sigv4_sign(const struct eddy_sigv4_params *params,
                         const struct eddy_sigv4_credentials *creds,
                         const struct eddy_sigv4_request *req, struct eddy_sigv4_key_cache *cache,
                         bool keep_intermediate, struct eddy_sigv4_result *out,
                         struct eddy_error *err)
{
    reset_result(out);
    uint16_t idx[EDDY_SIGV4_MAX_HEADERS];
    size_t nidx = 0;
    eddy_err rc = check_inputs(params, creds, req, err);
    if (rc == EDDY_OK)
        rc = sort_headers(req, idx, &nidx, err);
    if (rc == EDDY_OK)
        rc = amz_date(params->unix_s, out->amz_date, err);
    if (rc)
        return rc;
    char date[9];
    memcpy(date, out->amz_date, 8);
    date[8] = '\0';
    char scope[8 + 1 + SCOPE_PART_MAX + 1 + SCOPE_PART_MAX + 1 + sizeof SCOPE_TERMINATOR];
    size_t scope_len = build_scope(scope, date, params);
    char sts[sizeof ALGORITHM + 17 + sizeof scope + 65];
    unsigned char md[32];
    unsigned char local_key[32];
    EVP_MD_CTX *c = result_digest(out);

    if (req->payload_hash) {
        memcpy(out->payload_hash, req->payload_hash, 65);
    } else {
        digest_once(c, req->payload, req->payload_len, md);
        hex32(md, out->payload_hash);
    }
    if ((rc = begin_authorization(&out->authorization, creds->access_key_id, scope, scope_len))) {
        eddy_error_set(err, rc, "sigv4: access key id too long");
        goto done;
    }
    rc = canonical_request(c, params, req, keep_intermediate, out, idx, nidx, md, err);
    if (rc)
        goto done;
    size_t sts_len = build_string_to_sign(sts, out->amz_date, scope, scope_len, md);
    if (keep_intermediate && (rc = eddy_buf_append(&out->string_to_sign, sts, sts_len))) {
        eddy_error_set(err, rc, "sigv4: string to sign too long");
        goto done;
    }
    const char *secret = creds->secret_access_key;
    const unsigned char *key =
        signing_key(c, cache, secret, strlen(secret), date, params, local_key);
    hmac_sha256(c, key, 32, sts, sts_len, md);
    hex32(md, out->signature);
    if ((rc = eddy_buf_appends(&out->authorization, ", Signature=")) ||
        (rc = eddy_buf_append(&out->authorization, out->signature, 64)))
        eddy_error_set(err, rc, "sigv4: Authorization exceeds %zu bytes", out->authorization.max);
done:
    eddy_wipe(local_key, sizeof local_key);
    if (rc)
        reset_result(out);
    return rc;
}
