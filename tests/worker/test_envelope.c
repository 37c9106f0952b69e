/*
 * Unit tests for worker/envelope: JSON Pointers, the default EventBridge
 * envelope, custom pointers, the MessageId fallback, exact numbers, and
 * every class of poison with its reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "worker/envelope.h"

/* What EventBridge delivers to an SQS target (a real envelope's shape). */
static const char eventbridge_body[] =
    "{\"version\":\"0\",\"id\":\"6a7e8feb-b491-4cf7-a9f1-bf3703467718\","
    "\"detail-type\":\"Spin\",\"source\":\"slotmachine\",\"account\":\"111122223333\","
    "\"time\":\"2017-12-22T18:43:48Z\",\"region\":\"us-east-1\",\"resources\":[],"
    "\"detail\":{\"id\":\"machine-42\",\"bet\":5}}";

static struct eddy_envelope_spec default_spec;

static int setup(void **state)
{
    (void)state;
    return eddy_envelope_spec_init(&default_spec, NULL, NULL, NULL, NULL, NULL) == EDDY_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    eddy_envelope_spec_cleanup(&default_spec);
    return 0;
}

/* Decode a C string with the default pointers; the reason lands in err. */
static eddy_err decode(struct eddy_envelope *env, const char *body, const char *message_id,
                       struct eddy_error *err)
{
    return eddy_envelope_decode(env, &default_spec, body, strlen(body), message_id, err);
}

/* Expect poison whose reason contains want. */
static void expect_poison(const char *body, const char *want)
{
    struct eddy_envelope env;
    struct eddy_error err = {0};
    assert_int_equal(decode(&env, body, "mid-1", &err), EDDY_EPOISON);
    assert_int_equal(err.code, EDDY_EPOISON);
    if (strstr(err.detail, want) == NULL)
        fail_msg("reason \"%s\" lacks \"%s\" (body %s)", err.detail, want, body);
    assert_null(env.data);
    assert_null(env.entity_id);
    eddy_envelope_cleanup(&env);
}

static void test_eventbridge_defaults(void **state)
{
    (void)state;
    struct eddy_envelope env;
    struct eddy_error err = {0};
    assert_int_equal(decode(&env, eventbridge_body, "sqs-message-id", &err), EDDY_OK);
    assert_string_equal(env.entity_id, "machine-42");
    assert_string_equal(env.event_type, "Spin");
    assert_string_equal(env.event_id, "6a7e8feb-b491-4cf7-a9f1-bf3703467718");
    assert_false(env.event_id_is_message_id);
    assert_true(cJSON_IsObject(env.data));
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(env.data, "bet")->valueint, 5);
    eddy_envelope_cleanup(&env);
    assert_null(env.data);
    eddy_envelope_cleanup(&env); /* twice is harmless */
}

/* The body need not be NUL-terminated: only len bytes are read. */
static void test_body_is_bytes_with_length(void **state)
{
    (void)state;
    size_t len = strlen(eventbridge_body);
    char *body = eddy_malloc(len + 8);
    memcpy(body, eventbridge_body, len);
    memcpy(body + len, "garbage!", 8);
    struct eddy_envelope env;
    struct eddy_error err = {0};
    assert_int_equal(eddy_envelope_decode(&env, &default_spec, body, len, "m", &err), EDDY_OK);
    assert_string_equal(env.entity_id, "machine-42");
    eddy_envelope_cleanup(&env);
    assert_int_equal(eddy_envelope_decode(&env, &default_spec, body, len + 8, "m", &err),
                     EDDY_EPOISON);
    assert_non_null(strstr(err.detail, "not JSON"));
    free(body);
}

static void test_custom_pointers(void **state)
{
    (void)state;
    struct eddy_envelope_spec spec;
    struct eddy_error err = {0};
    assert_int_equal(eddy_envelope_spec_init(&spec, "/payload/account", "/payload/kind",
                                             "/meta/eventId", "/payload", &err),
                     EDDY_OK);
    const char *body = "{\"meta\":{\"eventId\":\"ev-9\"},"
                       "\"payload\":{\"account\":\"acc-1\",\"kind\":\"Opened\",\"n\":1}}";
    struct eddy_envelope env;
    assert_int_equal(eddy_envelope_decode(&env, &spec, body, strlen(body), "m", &err), EDDY_OK);
    assert_string_equal(env.entity_id, "acc-1");
    assert_string_equal(env.event_type, "Opened");
    assert_string_equal(env.event_id, "ev-9");
    assert_non_null(cJSON_GetObjectItemCaseSensitive(env.data, "kind"));
    eddy_envelope_cleanup(&env);
    /* With the defaults the same body is poison: no /detail/id. */
    expect_poison(body, "entity id (/detail/id) is missing");
    eddy_envelope_spec_cleanup(&spec);

    /* The empty pointer is the whole document. */
    assert_int_equal(eddy_envelope_spec_init(&spec, "/who", "/what", NULL, "", &err), EDDY_OK);
    body = "{\"who\":\"w\",\"what\":\"t\"}";
    assert_int_equal(eddy_envelope_decode(&env, &spec, body, strlen(body), "m", &err), EDDY_OK);
    assert_int_equal(cJSON_GetArraySize(env.data), 2);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(env.data, "what")->valuestring, "t");
    assert_string_equal(env.event_id, "m");
    eddy_envelope_cleanup(&env);
    eddy_envelope_spec_cleanup(&spec);
}

static void test_pointer_escapes_and_indices(void **state)
{
    (void)state;
    const char *text = "{\"a/b\":{\"m~n\":[{\"id\":\"first\"},{\"id\":\"second\"}]},"
                       "\"~1\":\"tilde-one\",\"\":{\"\":\"empty keys\"},\"01\":\"key 01\"}";
    cJSON *root = cJSON_Parse(text);
    assert_non_null(root);
    struct {
        const char *pointer;
        const char *want; /* NULL: nothing there */
    } cases[] = {
        {"/a~1b/m~0n/1/id", "second"},
        {"/a~1b/m~0n/0/id", "first"},
        {"/a~1b/m~0n/2/id", NULL},
        {"/a~1b/m~0n/-/id", NULL},  /* past the end */
        {"/a~1b/m~0n/01/id", NULL}, /* leading zero is no index */
        {"/a~1b/m~0n/1x/id", NULL},
        {"/a~1b/m~0n/99999999999999999999/id", NULL},
        {"/~01", "tilde-one"}, /* ~01 is "~1", not "/" + "1"... */
        {"/a/b", NULL},        /* ...and a bare '/' splits */
        {"//", "empty keys"},
        {"/01", "key 01"}, /* on an object, "01" is just a key */
    };
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(cases); i++) {
        struct eddy_json_pointer p;
        assert_int_equal(eddy_json_pointer_parse(&p, cases[i].pointer, NULL), EDDY_OK);
        const cJSON *v = eddy_json_pointer_get(&p, root);
        if (cases[i].want == NULL) {
            if (v != NULL)
                fail_msg("%s found something", cases[i].pointer);
        } else {
            if (!cJSON_IsString(v) || strcmp(v->valuestring, cases[i].want) != 0)
                fail_msg("%s did not find %s", cases[i].pointer, cases[i].want);
        }
        eddy_json_pointer_cleanup(&p);
    }
    cJSON_Delete(root);
}

static void test_bad_pointers_are_config_errors(void **state)
{
    (void)state;
    const char *bad[] = {"detail/id", "/a~2b", "/a~", "~0", " /x"};
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(bad); i++) {
        struct eddy_envelope_spec spec;
        struct eddy_error err = {0};
        assert_int_equal(eddy_envelope_spec_init(&spec, NULL, NULL, bad[i], NULL, &err),
                         EDDY_ECONFIG);
        assert_non_null(strstr(err.detail, "event id pointer"));
        assert_non_null(strstr(err.detail, bad[i]));
    }
    struct eddy_json_pointer p;
    struct eddy_error err = {0};
    assert_int_equal(eddy_json_pointer_parse(&p, "/a~2b", &err), EDDY_ECONFIG);
    assert_non_null(strstr(err.detail, "'~' must be followed by 0 or 1"));
    assert_int_equal(eddy_json_pointer_parse(&p, "x", &err), EDDY_ECONFIG);
    assert_non_null(strstr(err.detail, "start with '/'"));
}

static void expect_entity(const char *id_json, const char *want)
{
    char body[512];
    snprintf(body, sizeof body, "{\"id\":\"e\",\"detail-type\":\"T\",\"detail\":{\"id\":%s}}",
             id_json);
    struct eddy_envelope env;
    struct eddy_error err = {0};
    if (decode(&env, body, "m", &err) != EDDY_OK)
        fail_msg("%s: %s", id_json, err.detail);
    assert_string_equal(env.entity_id, want);
    eddy_envelope_cleanup(&env);
}

static void test_integer_entity_ids(void **state)
{
    (void)state;
    expect_entity("42", "42");
    expect_entity("-7", "-7");
    expect_entity("0", "0");
    expect_entity("-0", "0");
    expect_entity("1e3", "1000");
    expect_entity("9007199254740993", "9007199254740993"); /* 2^53 + 1: no double holds it */
    expect_entity("123456789012345678901234567890", "123456789012345678901234567890");
    expect_entity("\"007\"", "007");
    /* an integer is its digits however it is spelled, past 1e21 too */
    expect_entity("1e21", "1000000000000000000000");
    expect_entity("1000000000000000000000", "1000000000000000000000");
    expect_entity("1.5e1", "15");
    expect_entity("-2E+22", "-20000000000000000000000");
    expect_entity("123456789012345678901234567890e2", "12345678901234567890123456789000");
    expect_entity("-0.0", "0");
    expect_poison("{\"id\":\"e\",\"detail-type\":\"T\",\"detail\":{\"id\":1.5}}",
                  "entity id (/detail/id) is a number but not an integer");
    expect_poison("{\"id\":\"e\",\"detail-type\":\"T\",\"detail\":{\"id\":1.00000000000000000001}}",
                  "is a number but not an integer");
}

static void test_message_id_fallback(void **state)
{
    (void)state;
    const char *absent = "{\"detail-type\":\"T\",\"detail\":{\"id\":\"x\"}}";
    struct eddy_envelope env;
    struct eddy_error err = {0};
    assert_int_equal(decode(&env, absent, "0d0c8f36-sqs", &err), EDDY_OK);
    assert_string_equal(env.event_id, "0d0c8f36-sqs");
    assert_true(env.event_id_is_message_id);
    eddy_envelope_cleanup(&env);
    assert_int_equal(decode(&env, absent, NULL, &err), EDDY_EPOISON);
    assert_string_equal(err.detail, "event id (/id) is missing and the message has no MessageId");
}

/* An event id that is there but unusable is poison, never replaced by the
 * MessageId: each redelivered copy has a MessageId of its own, so the event
 * would be applied once per copy. */
static void test_unusable_event_id_is_poison(void **state)
{
    (void)state;
    const struct {
        const char *id, *why;
    } cases[] = {
        {"42", "event id (/id) is a number, not a string"},
        {"null", "event id (/id) is null, not a string"},
        {"\"\"", "event id (/id) is empty"},
        {"{\"x\":1}", "event id (/id) is an object, not a string"},
        {"[\"a\"]", "event id (/id) is an array, not a string"},
        {"true", "event id (/id) is a boolean, not a string"},
        {"12345678901234567890123", "event id (/id) is a number, not a string"},
    };
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(cases); i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"id\":%s,\"detail-type\":\"T\",\"detail\":{\"id\":\"x\"}}",
                 cases[i].id);
        struct eddy_envelope env;
        struct eddy_error err = {0};
        assert_int_equal(decode(&env, body, "0d0c8f36-sqs", &err), EDDY_EPOISON);
        assert_string_equal(err.detail, cases[i].why);
        assert_null(env.event_id);
    }
}

/* A body of exactly n bytes: an envelope padded with spaces inside a string. */
static char *body_of_size(size_t n)
{
    const char *head = "{\"id\":\"e\",\"detail-type\":\"T\",\"detail\":{\"id\":\"x\",\"pad\":\"";
    const char *tail = "\"}}";
    char *b = eddy_malloc(n + 1);
    size_t h = strlen(head), t = strlen(tail);
    memcpy(b, head, h);
    memset(b + h, ' ', n - h - t);
    memcpy(b + n - t, tail, t);
    b[n] = '\0';
    return b;
}

static void test_size_limit(void **state)
{
    (void)state;
    char *b = body_of_size(EDDY_ENVELOPE_BODY_MAX);
    struct eddy_envelope env;
    struct eddy_error err = {0};
    assert_int_equal(decode(&env, b, "m", &err), EDDY_OK);
    eddy_envelope_cleanup(&env);
    free(b);
    b = body_of_size(EDDY_ENVELOPE_BODY_MAX + 1);
    assert_int_equal(decode(&env, b, "m", &err), EDDY_EPOISON);
    assert_string_equal(err.detail,
                        "message body is 262145 bytes, over the 256 KB SQS message limit");
    free(b);
}

static void test_poison_reasons(void **state)
{
    (void)state;
    expect_poison("", "message body is empty");
    expect_poison("not json", "message body is not JSON");
    expect_poison("   ", "message body is not JSON");
    expect_poison("{\"detail\":", "message body is not JSON");
    expect_poison("[1,2,3]", "entity id (/detail/id) is missing");
    expect_poison("{\"detail-type\":\"T\",\"detail\":{}}", "entity id (/detail/id) is missing");
    expect_poison("{\"detail-type\":\"T\",\"detail\":{\"id\":{}}}",
                  "entity id (/detail/id) is an object, not a string or an integer");
    expect_poison("{\"detail-type\":\"T\",\"detail\":{\"id\":true}}",
                  "entity id (/detail/id) is a boolean, not a string or an integer");
    expect_poison("{\"detail-type\":\"T\",\"detail\":{\"id\":null}}", "is null, not a string");
    expect_poison("{\"detail-type\":\"T\",\"detail\":{\"id\":\"\"}}",
                  "entity id (/detail/id) is empty");
    expect_poison("{\"detail-type\":\"T\",\"detail\":{\"id\":\"a\\u0001b\"}}",
                  "entity id (/detail/id) contains a control character at byte 1");
    expect_poison("{\"detail-type\":\"T\",\"detail\":{\"id\":\"ab\\u007f\"}}",
                  "contains a control character at byte 2");
    expect_poison("{\"detail-type\":\"T\",\"detail\":{\"id\":\"\\u0085\"}}",
                  "contains a control character at byte 0");
    expect_poison("{\"detail-type\":\"T\",\"detail\":{\"id\":\"a\\u0000b\"}}",
                  "message body is not JSON");
    expect_poison("{\"detail-type\":\"T\",\"detail\":{\"id\":\"\xff\"}}",
                  "entity id (/detail/id) is not valid UTF-8 at byte 0");
    expect_poison("{\"detail-type\":\"T\",\"detail\":{\"id\":\"ok\xc0\xaf\"}}",
                  "is not valid UTF-8 at byte 2"); /* overlong '/' */
    expect_poison("{\"detail-type\":\"T\",\"detail\":{\"id\":\"\xed\xa0\x80\"}}",
                  "not valid UTF-8"); /* an encoded surrogate */
    expect_poison("{\"detail-type\":\"T\",\"detail\":{\"id\":\"\\ud800\"}}",
                  "message body is not JSON"); /* a lone surrogate escape */
    expect_poison("{\"detail\":{\"id\":\"x\"}}", "event type (/detail-type) is missing");
    expect_poison("{\"detail-type\":\"\",\"detail\":{\"id\":\"x\"}}",
                  "event type (/detail-type) is empty");
    expect_poison("{\"detail-type\":[\"T\"],\"detail\":{\"id\":\"x\"}}",
                  "event type (/detail-type) is an array, not a string");
    expect_poison("{\"detail-type\":\"T\",\"detail\":[{\"id\":\"x\"}]}",
                  "entity id (/detail/id) is missing");
    expect_poison("{\"id\":\"e\",\"detail-type\":\"T\",\"detail\":{\"id\":\"x\"},\"x\":1} {}",
                  "message body is not JSON");
}

/* Data must be an object; here the entity id lives outside it. */
static void test_data_must_be_object(void **state)
{
    (void)state;
    struct eddy_envelope_spec spec;
    assert_int_equal(eddy_envelope_spec_init(&spec, "/who", NULL, NULL, "/data", NULL), EDDY_OK);
    const char *bodies[] = {
        "{\"who\":\"w\",\"detail-type\":\"T\"}",
        "{\"who\":\"w\",\"detail-type\":\"T\",\"data\":[1]}",
        "{\"who\":\"w\",\"detail-type\":\"T\",\"data\":\"{}\"}",
    };
    const char *want[] = {
        "event data (/data) is missing",
        "event data (/data) is an array, not an object",
        "event data (/data) is a string, not an object",
    };
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(bodies); i++) {
        struct eddy_envelope env;
        struct eddy_error err = {0};
        assert_int_equal(eddy_envelope_decode(&env, &spec, bodies[i], strlen(bodies[i]), "m", &err),
                         EDDY_EPOISON);
        assert_string_equal(err.detail, want[i]);
    }
    eddy_envelope_spec_cleanup(&spec);
}

/* Decode {"id":event_id,"detail-type":type,"detail":{"id":entity}} with spec. */
static eddy_err decode_ids(const struct eddy_envelope_spec *spec, size_t entity, size_t event_id,
                           size_t type, const char *message_id, struct eddy_error *err)
{
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    eddy_buf_puts(&b, "{");
    if (event_id) {
        eddy_buf_puts(&b, "\"id\":\"");
        for (size_t i = 0; i < event_id; i++)
            eddy_buf_putc(&b, 'v');
        eddy_buf_puts(&b, "\",");
    }
    eddy_buf_puts(&b, "\"detail-type\":\"");
    for (size_t i = 0; i < type; i++)
        eddy_buf_putc(&b, 't');
    eddy_buf_puts(&b, "\",\"detail\":{\"id\":\"");
    for (size_t i = 0; i < entity; i++)
        eddy_buf_putc(&b, 'k');
    eddy_buf_puts(&b, "\"}}");
    struct eddy_envelope env;
    eddy_err rc = eddy_envelope_decode(&env, spec, b.ptr, b.len, message_id, err);
    eddy_envelope_cleanup(&env);
    eddy_buf_cleanup(&b);
    return rc;
}

/* Each id's limit is the longest key built from it: an entity id in the
 * outbox sort key <ns>/<id>/<seq:020>/<idx:04>, an event id in EVENT/<id>,
 * a type in OUTBOUND/<seq>/<idx>/<type>; all under 1,024 bytes. */
/* Deep nesting is said as such, not as malformed JSON at some offset. */
static void test_deep_nesting(void **state)
{
    (void)state;
    size_t n = 100000;
    char *b = eddy_malloc(n + 1);
    memset(b, '[', n);
    b[n] = '\0';
    expect_poison(b, "JSON nested deeper than 1000 levels at offset 1000");
    /* objects too, and brackets inside a string are not nesting */
    const char *head = "{\"a\":\"[[[\\\"{{\",\"b\":";
    memcpy(b, head, strlen(head));
    expect_poison(b, "nested deeper than 1000 levels");
    free(b);
}

/* A member with an empty name anywhere in the data is poison at decode. */
static void test_empty_names_poison(void **state)
{
    (void)state;
    expect_poison("{\"id\":\"e\",\"detail-type\":\"T\",\"detail\":{\"id\":\"x\",\"\":1}}",
                  "event data (/detail) has a member with an empty name");
    expect_poison("{\"id\":\"e\",\"detail-type\":\"T\",\"detail\":{\"id\":\"x\",\"m\":[{\"a\":{"
                  "\"\":null}}]}}",
                  "has a member with an empty name");
}

static void test_long_ids(void **state)
{
    (void)state;
    struct eddy_envelope_spec spec;
    struct eddy_error err = {0};
    assert_int_equal(eddy_envelope_spec_init(&spec, NULL, NULL, NULL, NULL, &err), EDDY_OK);
    eddy_envelope_spec_namespace(&spec, "machine");
    assert_int_equal(spec.entity_id_max, 990);
    assert_int_equal(spec.event_id_max, 1018);
    assert_int_equal(spec.type_max, 990);
    assert_int_equal(decode_ids(&spec, 990, 1018, 990, "m", &err), EDDY_OK);
    assert_int_equal(decode_ids(&spec, 991, 8, 8, "m", &err), EDDY_EPOISON);
    assert_string_equal(err.detail, "entity id (/detail/id) is 991 bytes, over the 990-byte limit "
                                    "(the sort key machine/<id>/<seq>/<idx> of the outbox must "
                                    "fit DynamoDB's 1024 bytes)");
    assert_int_equal(decode_ids(&spec, 8, 1019, 8, "m", &err), EDDY_EPOISON);
    assert_string_equal(err.detail, "event id (/id) is 1019 bytes, over the 1018-byte limit (the "
                                    "sort key EVENT/<id> must fit DynamoDB's 1024 bytes)");
    assert_int_equal(decode_ids(&spec, 8, 8, 991, "m", &err), EDDY_EPOISON);
    assert_non_null(strstr(err.detail, "event type (/detail-type) is 991 bytes"));
    char mid[1020];
    memset(mid, 'm', sizeof mid - 1);
    mid[sizeof mid - 1] = '\0';
    assert_int_equal(decode_ids(&spec, 8, 0, 8, mid, &err), EDDY_EPOISON);
    assert_non_null(strstr(err.detail, "event id (MessageId) is 1019 bytes"));
    /* a longer namespace leaves less room; without one, 997 bytes */
    eddy_envelope_spec_namespace(&spec, "a-much-longer-namespace");
    assert_int_equal(decode_ids(&spec, 975, 8, 8, "m", &err), EDDY_EPOISON);
    assert_int_equal(decode_ids(&spec, 974, 8, 8, "m", &err), EDDY_OK);
    eddy_envelope_spec_cleanup(&spec);
    assert_int_equal(decode_ids(&default_spec, 997, 8, 8, "m", &err), EDDY_OK);
    assert_int_equal(decode_ids(&default_spec, 998, 8, 8, "m", &err), EDDY_EPOISON);
}

/* Numbers a double would round reach the machine as their exact text. */
static void test_precision_kept(void **state)
{
    (void)state;
    const char *body = "{\"id\":\"e\",\"detail-type\":\"T\",\"detail\":{\"id\":\"x\","
                       "\"amount\":12345678901234567890123,\"price\":0.1,"
                       "\"tiny\":1.0000000000000000000000001,\"n\":[9007199254740993]}}";
    struct eddy_envelope env;
    struct eddy_error err = {0};
    assert_int_equal(decode(&env, body, "m", &err), EDDY_OK);
    char *out = cJSON_PrintUnformatted(env.data);
    assert_non_null(out);
    assert_non_null(strstr(out, "\"amount\":12345678901234567890123"));
    assert_non_null(strstr(out, "\"tiny\":1.0000000000000000000000001"));
    assert_non_null(strstr(out, "[9007199254740993]"));
    const cJSON *price = cJSON_GetObjectItemCaseSensitive(env.data, "price");
    assert_true(cJSON_IsNumber(price) && price->valuedouble == 0.1);
    free(out);
    eddy_envelope_cleanup(&env);
}

/* A chunk as base/json.c lays it out: its data follow this header. */
struct chunk {
    struct chunk *next;
    size_t size;
};

/* Whether the n bytes at p lie in env's one chunk. */
static bool kept(const struct eddy_envelope *env, const void *p, size_t n)
{
    const struct chunk *c = (const void *)env->arena.chunks;
    const char *d = (const char *)(c + 1);
    return (const char *)p >= d && (const char *)p + n <= d + c->size;
}

static bool tree_kept(const struct eddy_envelope *env, const cJSON *j)
{
    for (; j; j = j->next)
        if (!kept(env, j, sizeof *j) || (j->string && !kept(env, j->string, 1)) ||
            (j->valuestring && !kept(env, j->valuestring, 1)) || !tree_kept(env, j->child))
            return false;
    return true;
}

/*
 * A message in hand keeps only what the processor reads (type, event id,
 * entity id, the data whole: nested values, escapes, exact numbers, arrays
 * with cJSON's links), in one chunk of exactly their size, nothing of it in
 * the body; not the body's whole tree in a chunk rounded up to a power of
 * two.
 */
static void test_keeps_only_what_is_used(void **state)
{
    (void)state;
    const char *text =
        "{\"version\":\"0\",\"id\":\"ev-1\",\"detail-type\":\"Spin\",\"source\":\"s\","
        "\"account\":\"111122223333\",\"time\":\"2017-12-22T18:43:48Z\",\"resources\":[],"
        "\"detail\":{\"id\":\"machine-42\",\"bet\":5,\"big\":12345678901234567890123,"
        "\"s\":\"a\\\"b\\u00e9\\n\",\"list\":[1,\"two\",{\"three\":[true,false,null]}],"
        "\"empty\":{},\"none\":[]}}";
    size_t len = strlen(text);
    char *body = eddy_malloc(len);
    memcpy(body, text, len);
    struct eddy_envelope env;
    struct eddy_error err = {0};
    assert_int_equal(eddy_envelope_decode(&env, &default_spec, body, len, "m", &err), EDDY_OK);
    memset(body, 'x', len); /* nothing may point into the body */
    free(body);

    const char *want = "{\"id\":\"machine-42\",\"bet\":5,\"big\":12345678901234567890123,"
                       "\"s\":\"a\\\"b\u00e9\\n\",\"list\":[1,\"two\",{\"three\":[true,false,"
                       "null]}],\"empty\":{},\"none\":[]}";
    char *out = cJSON_PrintUnformatted(env.data);
    assert_string_equal(out, want);
    free(out);
    assert_string_equal(env.entity_id, "machine-42");
    assert_string_equal(env.event_type, "Spin");
    assert_string_equal(env.event_id, "ev-1");
    assert_string_equal(env.data->string, "detail");
    /* cJSON's links: the first child's prev is the last one, reached by index */
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(env.data, "list");
    assert_int_equal(cJSON_GetArraySize(list), 3);
    assert_ptr_equal(list->child->prev, cJSON_GetArrayItem(list, 2));
    assert_ptr_equal(env.data->child->prev, cJSON_GetObjectItemCaseSensitive(env.data, "none"));
    assert_true(cJSON_IsRaw(cJSON_GetObjectItemCaseSensitive(env.data, "big")));

    /* one chunk, exactly the size of what it holds, all of it in there */
    const struct chunk *c = (const void *)env.arena.chunks;
    assert_non_null(c);
    assert_null(c->next);
    assert_int_equal(c->size, eddy_json_copy_size(env.data) + eddy_json_arena_str_size(10) +
                                  eddy_json_arena_str_size(4) + eddy_json_arena_str_size(4));
    assert_true(tree_kept(&env, env.data));
    assert_true(kept(&env, env.entity_id, 11) && kept(&env, env.event_type, 5) &&
                kept(&env, env.event_id, 5));
    eddy_envelope_cleanup(&env);

    /* a stand-in MessageId and an integer entity id are kept too */
    const char *b2 = "{\"detail-type\":\"T\",\"detail\":{\"id\":1e3}}";
    char mid[] = "sqs-message-id";
    assert_int_equal(decode(&env, b2, mid, &err), EDDY_OK);
    memset(mid, 'x', sizeof mid - 1);
    assert_string_equal(env.event_id, "sqs-message-id");
    assert_true(env.event_id_is_message_id);
    assert_string_equal(env.entity_id, "1000");
    assert_true(kept(&env, env.event_id, 15) && kept(&env, env.entity_id, 5));
    eddy_envelope_cleanup(&env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eventbridge_defaults),
        cmocka_unit_test(test_body_is_bytes_with_length),
        cmocka_unit_test(test_custom_pointers),
        cmocka_unit_test(test_pointer_escapes_and_indices),
        cmocka_unit_test(test_bad_pointers_are_config_errors),
        cmocka_unit_test(test_integer_entity_ids),
        cmocka_unit_test(test_message_id_fallback),
        cmocka_unit_test(test_unusable_event_id_is_poison),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_poison_reasons),
        cmocka_unit_test(test_data_must_be_object),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_empty_names_poison),
        cmocka_unit_test(test_long_ids),
        cmocka_unit_test(test_precision_kept),
        cmocka_unit_test(test_keeps_only_what_is_used),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
