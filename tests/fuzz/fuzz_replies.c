/*
 * fuzz_replies - the readers of replies that go without a tree
 * (eddy_sqs_receive_parse, eddy_sqs_batch_parse, eddy_eb_put_parse), each
 * against the reading of a cJSON tree it replaced (kept here as the
 * reference), on the same input.
 *
 * ReceiveMessage:
 * Whatever the reader accepts, the tree reading accepts too and gives the
 * same messages, field by field. Whatever strict JSON (eddy_json_parse,
 * nested at most EDDY_JR_MAX_DEPTH deep, every \u escape whole) accepts,
 * the reader accepts unless the tree reading refuses it too (a message
 * without its fields).
 */
#include <string.h>

#include "base/json.h"
#include "fuzz.h"
#include "svc/eventbridge.h"
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

/* Whether text is JSON both readings must take: strict, nested at most
 * EDDY_JR_MAX_DEPTH deep, every \\u escape whole; *tree gets it. */
static bool strict_json(const char *text, size_t size, cJSON **tree)
{
    struct eddy_error serr = {0};
    *tree = NULL;
    return eddy_json_parse(text, size, tree, &serr) == EDDY_OK && cJSON_IsObject(*tree) &&
           depth_of(text, size) <= EDDY_JR_MAX_DEPTH && hex_escapes_whole(text, size);
}

static void fuzz_receive(const char *text, size_t size)
{
    struct eddy_sqs_receive_result res;
    struct eddy_error err = {0};
    eddy_err rc = eddy_sqs_receive_parse(text, size, &res, &err);
    FUZZ_CHECK(rc == EDDY_OK || (rc == EDDY_EPARSE && err.detail[0] && res.n == 0 && !res.msgs),
               "a refusal without a reason, or with messages left");
    if (size == 0) {
        FUZZ_CHECK(rc == EDDY_OK && res.n == 0, "an empty reply is no messages");
        return;
    }
    cJSON *tree = cJSON_ParseWithLength(text, size);
    if (rc == EDDY_OK) {
        FUZZ_CHECK(cJSON_IsObject(tree), "the reader took what cJSON does not");
        FUZZ_CHECK(check_tree(tree, &res, true),
                   "the reader took a reply the tree reading refuses");
    } else {
        cJSON *strict = NULL;
        if (strict_json(text, size, &strict))
            FUZZ_CHECK(!check_tree(strict, &res, false), "the reader refused strict JSON: %s",
                       err.detail);
        cJSON_Delete(strict);
    }
    cJSON_Delete(tree);
    eddy_sqs_receive_result_cleanup(&res);
}

/* ---- DeleteMessageBatch and ChangeMessageVisibilityBatch ---- */

static size_t ref_entry_index(const cJSON *e, size_t n)
{
    const char *id = jstr(e, "Id");
    if (id == NULL || *id < '0' || *id > '9')
        return n;
    char *end;
    unsigned long i = strtoul(id, &end, 10);
    return *end == '\0' && i < n ? (size_t)i : n;
}

/* The tree reading of a batch reply, as svc/sqs.c had it. */
static void ref_batch(const cJSON *json, size_t n, struct eddy_sqs_batch_result *r)
{
    r->entries = calloc(n, sizeof *r->entries);
    r->n = n;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(json, "Successful"))
    {
        size_t i = ref_entry_index(e, n);
        if (i < n)
            r->entries[i].ok = true;
    }
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(json, "Failed"))
    {
        size_t i = ref_entry_index(e, n);
        if (i == n || r->entries[i].code)
            continue;
        const char *code = jstr(e, "Code"), *msg = jstr(e, "Message");
        r->entries[i].ok = false;
        r->entries[i].code = strdup(code ? code : "Unknown");
        r->entries[i].message = strdup(msg ? msg : "");
        r->entries[i].sender_fault =
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "SenderFault"));
    }
    for (size_t i = 0; i < n; i++) {
        if (r->entries[i].ok)
            continue;
        if (r->entries[i].code == NULL) {
            r->entries[i].code = strdup("NoResult");
            r->entries[i].message = strdup("the reply names this entry nowhere");
        }
        r->nfailed++;
    }
}

static void fuzz_batch(const char *text, size_t size, size_t n)
{
    struct eddy_sqs_batch_result res;
    struct eddy_error err = {0};
    eddy_err rc = eddy_sqs_batch_parse(text, size, n, &res, &err);
    FUZZ_CHECK(rc == EDDY_OK || (rc == EDDY_EPARSE && err.detail[0] && !res.entries),
               "batch: a refusal without a reason, or with entries left");
    cJSON *tree = size ? cJSON_ParseWithLength(text, size) : cJSON_CreateObject();
    if (rc == EDDY_OK) {
        FUZZ_CHECK(cJSON_IsObject(tree), "batch: the reader took what cJSON does not");
        struct eddy_sqs_batch_result ref = {0};
        ref_batch(tree, n, &ref);
        FUZZ_CHECK(ref.n == res.n && ref.nfailed == res.nfailed, "batch: counts differ");
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(ref.entries[i].ok == res.entries[i].ok &&
                           ref.entries[i].sender_fault == res.entries[i].sender_fault &&
                           same_str(ref.entries[i].code, res.entries[i].code) &&
                           same_str(ref.entries[i].message, res.entries[i].message),
                       "batch: entry %zu differs", i);
        eddy_sqs_batch_result_cleanup(&ref);
    } else {
        cJSON *strict = NULL;
        FUZZ_CHECK(!strict_json(text, size, &strict), "batch: the reader refused strict JSON: %s",
                   err.detail);
        cJSON_Delete(strict);
    }
    cJSON_Delete(tree);
    eddy_sqs_batch_result_cleanup(&res);
}

/* ---- PutEvents ---- */

static char *ref_dup(const cJSON *obj, const char *key)
{
    const char *s = jstr(obj, key);
    return s ? strdup(s) : NULL;
}

/* The tree reading of a PutEvents reply, as svc/eventbridge.c had it;
 * false when it refuses the reply. */
static bool ref_put(const cJSON *json, size_t n, struct eddy_eb_put_result *r)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(json, "Entries");
    if (!cJSON_IsArray(arr))
        return false;
    r->entries = calloc(n, sizeof *r->entries);
    r->n = n;
    const cJSON *e = arr->child;
    for (size_t i = 0; i < n; i++, e = e ? e->next : NULL) {
        struct eddy_eb_entry_result *er = &r->entries[i];
        er->event_id = ref_dup(e, "EventId");
        er->error_code = ref_dup(e, "ErrorCode");
        er->error_message = ref_dup(e, "ErrorMessage");
        if (er->event_id == NULL && er->error_code == NULL)
            er->error_code = strdup("NoResult");
        if (er->error_code)
            r->failed_count++;
    }
    const cJSON *fc = cJSON_GetObjectItemCaseSensitive(json, "FailedEntryCount");
    if (cJSON_IsNumber(fc) && fc->valuedouble > (double)r->failed_count)
        r->failed_count = fc->valuedouble < 0x1p63 ? (size_t)fc->valuedouble : SIZE_MAX;
    return true;
}

static void fuzz_put(const char *text, size_t size, size_t n)
{
    struct eddy_eb_put_result res;
    struct eddy_error err = {0};
    eddy_err rc = eddy_eb_put_parse(text, size, n, &res, &err);
    FUZZ_CHECK(rc == EDDY_OK || (rc == EDDY_EPARSE && err.detail[0] && !res.entries),
               "put: a refusal without a reason, or with entries left");
    cJSON *tree = size ? cJSON_ParseWithLength(text, size) : cJSON_CreateObject();
    struct eddy_eb_put_result ref = {0};
    if (rc == EDDY_OK) {
        FUZZ_CHECK(cJSON_IsObject(tree) && ref_put(tree, n, &ref),
                   "put: the reader took what the tree reading refuses");
        FUZZ_CHECK(ref.n == res.n && ref.failed_count == res.failed_count, "put: counts differ");
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(same_str(ref.entries[i].event_id, res.entries[i].event_id) &&
                           same_str(ref.entries[i].error_code, res.entries[i].error_code) &&
                           same_str(ref.entries[i].error_message, res.entries[i].error_message),
                       "put: entry %zu differs", i);
    } else {
        cJSON *strict = NULL;
        if (strict_json(text, size, &strict))
            FUZZ_CHECK(!ref_put(strict, n, &ref), "put: the reader refused strict JSON: %s",
                       err.detail);
        cJSON_Delete(strict);
    }
    eddy_eb_put_result_cleanup(&ref);
    cJSON_Delete(tree);
    eddy_eb_put_result_cleanup(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    fuzz_receive(text, size);
    fuzz_batch(text, size, 10);
    fuzz_batch(text, size, 2);
    fuzz_put(text, size, 10);
    fuzz_put(text, size, 1);
    return 0;
}
