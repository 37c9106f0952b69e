/*
 * fuzz_aws_error - AWS error replies (aws/awscall.h): a body in JSON or
 * CBOR and the x-amzn-query-error and x-amzn-ErrorType headers, as a
 * service, a proxy or a broken load balancer might send them.
 *
 * Input: byte 0 picks the status and the body's format, then two header
 * lines (an empty one: the header is absent), then the body. The reader
 * always gives a non-empty code without control characters beyond what the
 * reply held, a message, and a class that is one of the error classes.
 */
#include <string.h>

#include "aws/awscall.h"
#include "aws/cbor.h"
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
    static const long statuses[] = {400, 403, 404, 409, 413, 429, 500, 502, 503, 504, 200, 0};
    if (size < 1)
        return 0;
    char *text = malloc(size);
    memcpy(text, data, size);
    const char *at = text + 1, *end = text + size;
    long status = statuses[(data[0] >> 1) % (sizeof statuses / sizeof statuses[0])];
    struct eddy_str q = line(&at, end), t = line(&at, end);
    if (q.len == 0)
        q.ptr = NULL;
    if (t.len == 0)
        t.ptr = NULL;
    cJSON *json = NULL;
    struct eddy_error err = {0};
    if (data[0] & 1) {
        if (eddy_cbor_parse(at, (size_t)(end - at), &json, &err) != EDDY_OK)
            json = NULL;
    } else {
        json = cJSON_ParseWithLengthOpts(at, (size_t)(end - at), NULL, false);
    }
    if (json && !cJSON_IsObject(json)) {
        cJSON_Delete(json);
        json = NULL;
    }
    char *code = NULL, *message = NULL;
    struct eddy_aws_class k = eddy_aws_read_error(status, json, q, t, &code, &message);
    eddy_err e = k.err;
    FUZZ_CHECK(code != NULL && code[0] != '\0', "an error without a code");
    FUZZ_CHECK(message != NULL, "an error without a message");
    FUZZ_CHECK(e == EDDY_ETHROTTLED || e == EDDY_ETRANSIENT || e == EDDY_ECONDITION ||
                   e == EDDY_ETXN_CANCELED || e == EDDY_EAUTH || e == EDDY_EAWS,
               "class %s for an error reply", eddy_err_name(e));
    if (status >= 500)
        FUZZ_CHECK(e != EDDY_EAWS && k.retry != EDDY_RETRY_NO, "a 5xx that is not retried");
    FUZZ_CHECK((k.retry == EDDY_RETRY_NO) == (e != EDDY_ETHROTTLED && e != EDDY_ETRANSIENT),
               "class %s retried as %s", eddy_err_name(e), eddy_retry_class_name(k.retry));
    free(code);
    free(message);
    cJSON_Delete(json);
    free(text);
    return 0;
}
