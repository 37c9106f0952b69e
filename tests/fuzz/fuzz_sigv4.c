/*
 * fuzz_sigv4 - SigV4 canonicalisation (aws/sigv4.h): the path, the query
 * and the headers of a request as a caller or a proxy might shape them.
 *
 * Input lines: flags (first byte: normalise the path, encode it once),
 * method, path, query, then "name:value" headers; after an empty line, the
 * payload. Signing gives a 64-hex-digit signature and an Authorization
 * header, or a refusal with a reason; the same request signs the same twice
 * (with the key cache and without), and the canonical URI and query hold
 * only printable ASCII (the rest is percent-encoded).
 */
#include <string.h>

#include "aws/sigv4.h"
#include "fuzz.h"

static struct eddy_str line(const char **at, const char *end)
{
    const char *s = *at;
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    const char *e = nl ? nl : end;
    *at = nl ? nl + 1 : end;
    return (struct eddy_str){s, (size_t)(e - s)};
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = malloc(size);
    memcpy(text, data, size);
    const char *at = text + 1, *end = text + size;
    struct eddy_sigv4_request req = {0};
    struct eddy_sigv4_header h[EDDY_SIGV4_MAX_HEADERS + 8];
    size_t n = 0;
    req.method = line(&at, end);
    req.path = line(&at, end);
    req.query = line(&at, end);
    h[n++] =
        (struct eddy_sigv4_header){EDDY_STR_LIT("Host"), EDDY_STR_LIT("example.amazonaws.com")};
    h[n++] =
        (struct eddy_sigv4_header){EDDY_STR_LIT("X-Amz-Date"), EDDY_STR_LIT("20150830T123600Z")};
    while (at < end && n < EDDY_SIGV4_MAX_HEADERS + 8) {
        struct eddy_str l = line(&at, end);
        if (l.len == 0)
            break;
        const char *colon = memchr(l.ptr, ':', l.len);
        size_t k = colon ? (size_t)(colon - l.ptr) : l.len;
        h[n++] = (struct eddy_sigv4_header){
            {l.ptr, k}, {colon ? colon + 1 : l.ptr + l.len, colon ? l.len - k - 1 : 0}};
    }
    req.headers = h;
    req.nheaders = n;
    req.payload = at;
    req.payload_len = (size_t)(end - at);
    struct eddy_sigv4_params params = {"us-east-1", "service", 1440938160, (data[0] & 1) != 0,
                                       (data[0] & 2) != 0};
    struct eddy_sigv4_credentials creds = {"AKIDEXAMPLE",
                                           "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL};
    struct eddy_sigv4_result a, b;
    eddy_sigv4_result_init(&a);
    eddy_sigv4_result_init(&b);
    /* one warm cache for every input (the key derivation is four HMACs);
     * the same request signed without it must agree */
    static struct eddy_sigv4_key_cache cache;
    struct eddy_error err = {0};
    eddy_err rc = eddy_sigv4_sign(&params, &creds, &req, &cache, true, &a, &err);
    if (rc == EDDY_OK) {
        FUZZ_CHECK(strlen(a.signature) == 64 && strspn(a.signature, "0123456789abcdef") == 64,
                   "a signature that is not 64 hex digits");
        FUZZ_CHECK(a.authorization.len > 0, "no Authorization header");
        /* the canonical URI and query (lines 2 and 3) are percent-encoded
         * (S3's single-encoded path is signed as sent: query only) */
        const char *cr = a.canonical_request.ptr, *cend = cr + a.canonical_request.len;
        const char *l2 = memchr(cr, '\n', (size_t)(cend - cr));
        FUZZ_CHECK(l2 != NULL, "a canonical request of one line");
        if (params.single_encode_path)
            l2 = memchr(l2 + 1, '\n', (size_t)(cend - l2 - 1));
        FUZZ_CHECK(l2 != NULL, "a canonical request of two lines");
        int lines = params.single_encode_path ? 1 : 0;
        for (const char *c = l2 + 1; c < cend && lines < 2; c++) {
            if (*c == '\n') {
                lines++;
                continue;
            }
            FUZZ_CHECK((unsigned char)*c > 0x20 && (unsigned char)*c < 0x7f,
                       "byte 0x%02x unencoded in the canonical URI or query", (unsigned char)*c);
        }
        static unsigned count; /* the cold path (4 more HMACs) one input in 16 */
        rc =
            eddy_sigv4_sign(&params, &creds, &req, (count++ & 15) ? &cache : NULL, false, &b, &err);
        FUZZ_CHECK(rc == EDDY_OK && strcmp(a.signature, b.signature) == 0,
                   "the same request signs differently");
    } else {
        FUZZ_CHECK(err.detail[0] != '\0', "refusal %s without a reason", eddy_err_name(rc));
        FUZZ_CHECK(a.authorization.len == 0, "an Authorization header on error");
    }
    eddy_sigv4_result_cleanup(&a);
    eddy_sigv4_result_cleanup(&b);
    free(text);
    return 0;
}
