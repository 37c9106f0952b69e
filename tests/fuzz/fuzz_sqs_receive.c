/*
 * fuzz_sqs_receive - the ReceiveMessage reply reader (svc/sqs.h,
 * eddy_sqs_receive_parse), which reads the text without a tree, against the
 * reading of a cJSON tree it replaced (kept here as the reference).
 *
 * Whatever the reader accepts, the tree reading accepts too and gives the
 * same messages, field by field. Whatever strict JSON (eddy_json_parse,
 * nested at most EDDY_JR_MAX_DEPTH deep, every \u escape whole) accepts,
 * the reader accepts unless the tree reading refuses it too (a message
 * without its fields).
 */
#include <string.h>

#include "base/json.h"
#include "fuzz.h"
#include "svc/sqs.h"

static const char *jstr(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t jnum(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        return d >= 0x1p63 ? INT64_MAX : d <= -0x1p63 ? INT64_MIN : (int64_t)d;
    }
    if (cJSON_IsString(v))
        return strtoll(v->valuestring, NULL, 10);
    return 0;
}

static bool same_str(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* The message j, read from the tree, against m (when read); false when j
 * lacks a field (the reference refuses the reply). */
static bool check_message(const cJSON *j, const struct eddy_sqs_message *m, bool read)
{
    const char *id = jstr(j, "MessageId"), *rh = jstr(j, "ReceiptHandle"), *body = jstr(j, "Body");
    if (id == NULL || rh == NULL || body == NULL)
        return false;
    if (!read)
        return true;
    FUZZ_CHECK(m != NULL, "the reader has fewer messages");
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(j, "Attributes");
    FUZZ_CHECK(same_str(m->message_id, id) && same_str(m->receipt_handle, rh) &&
                   same_str(m->body, body) && m->body_len == strlen(body) &&
                   same_str(m->md5_of_body, jstr(j, "MD5OfBody")) &&
                   same_str(m->group_id, jstr(at, "MessageGroupId")) &&
                   same_str(m->dedup_id, jstr(at, "MessageDeduplicationId")) &&
                   same_str(m->trace_header, jstr(at, "AWSTraceHeader")),
               "a string field differs");
    int64_t rc = jnum(at, "ApproximateReceiveCount");
    FUZZ_CHECK(m->receive_count == (rc < 0            ? 0
                                    : rc > UINT32_MAX ? UINT32_MAX
                                                      : (uint32_t)rc) &&
                   m->sent_ms == jnum(at, "SentTimestamp") &&
                   m->first_receive_ms == jnum(at, "ApproximateFirstReceiveTimestamp"),
               "a number field differs");
    const cJSON *ma = cJSON_GetObjectItemCaseSensitive(j, "MessageAttributes"), *a;
    size_t i = 0;
    if (cJSON_IsObject(ma)) {
        cJSON_ArrayForEach(a, ma)
        {
            if (!cJSON_IsObject(a) || a->string == NULL)
                continue;
            FUZZ_CHECK(i < m->nattrs, "fewer message attributes");
            const char *v = jstr(a, "StringValue");
            FUZZ_CHECK(same_str(m->attrs[i].name, a->string) &&
                           same_str(m->attrs[i].type, jstr(a, "DataType")) &&
                           same_str(m->attrs[i].value, v ? v : jstr(a, "BinaryValue")),
                       "message attribute %zu differs", i);
            i++;
        }
    }
    FUZZ_CHECK(i == m->nattrs, "more message attributes");
    return true;
}

/* The reference's verdict on the tree: true when it takes the reply, and
 * then the messages must be res's. */
static bool check_tree(const cJSON *root, const struct eddy_sqs_receive_result *res, bool read)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "Messages"), *m;
    if (msgs == NULL || cJSON_IsNull(msgs)) {
        FUZZ_CHECK(!read || res->n == 0, "messages from a reply without any");
        return true;
    }
    if (!cJSON_IsArray(msgs))
        return false;
    size_t i = 0;
    cJSON_ArrayForEach(m, msgs)
    {
        if (!check_message(m, read && i < res->n ? &res->msgs[i] : NULL, read)) {
            FUZZ_CHECK(!read, "the reader took a message the tree reading refuses");
            return false;
        }
        i++;
    }
    FUZZ_CHECK(!read || i == res->n, "another number of messages");
    return true;
}

/* The deepest nesting of the text, outside strings. */
static size_t depth_of(const char *t, size_t n)
{
    size_t d = 0, max = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '"') {
            for (i++; i < n && t[i] != '"'; i++)
                if (t[i] == '\\')
                    i++;
        } else if (t[i] == '[' || t[i] == '{') {
            if (++d > max)
                max = d;
        } else if ((t[i] == ']' || t[i] == '}') && d > 0) {
            d--;
        }
    }
    return max;
}

/* Whether every \u escape of the text has its four hex digits (cJSON
 * reads a bad one as \u0000; the reader refuses it). */
static bool hex_escapes_whole(const char *t, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (t[i] != '\\')
            continue;
        if (t[i + 1] == 'u') {
            if (n - i < 6)
                return false;
            for (size_t k = 2; k < 6; k++)
                if (!strchr("0123456789abcdefABCDEF", t[i + k]) || t[i + k] == '\0')
                    return false;
        }
        i++;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct eddy_sqs_receive_result res;
    struct eddy_error err = {0};
    eddy_err rc = eddy_sqs_receive_parse(text, size, &res, &err);
    FUZZ_CHECK(rc == EDDY_OK || (rc == EDDY_EPARSE && err.detail[0] && res.n == 0 && !res.msgs),
               "a refusal without a reason, or with messages left");
    if (size == 0) {
        FUZZ_CHECK(rc == EDDY_OK && res.n == 0, "an empty reply is no messages");
        return 0;
    }
    cJSON *tree = cJSON_ParseWithLength(text, size);
    if (rc == EDDY_OK) {
        FUZZ_CHECK(cJSON_IsObject(tree), "the reader took what cJSON does not");
        FUZZ_CHECK(check_tree(tree, &res, true),
                   "the reader took a reply the tree reading refuses");
    } else {
        cJSON *strict = NULL;
        struct eddy_error serr = {0};
        if (eddy_json_parse(text, size, &strict, &serr) == EDDY_OK && cJSON_IsObject(strict) &&
            depth_of(text, size) <= EDDY_JR_MAX_DEPTH && hex_escapes_whole(text, size))
            FUZZ_CHECK(!check_tree(strict, &res, false), "the reader refused strict JSON: %s",
                       err.detail);
        cJSON_Delete(strict);
    }
    cJSON_Delete(tree);
    eddy_sqs_receive_result_cleanup(&res);
    return 0;
}
