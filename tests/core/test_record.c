/*
 * Unit tests for core/record: keys and items exactly as github.com/a-h/stream
 * writes them with WithCodecTag("json") (store.go: createRecord adds
 * _namespace, _pk, _seq, _sk, _typ, _ts and _date to the marshalled fields;
 * sort keys STATE, STATE/%d, INBOUND/%d/%d/%s, OUTBOUND/%d/%d/%s), plus
 * eddy's own items, ids, limits and parsing.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "core/attr.h"
#include "core/record.h"
#include "record_tree.h"
#include "svc/eventbridge.h"
#include "eddy/rng.h"

/* 2023-11-14T22:13:20Z */
#define NOW 1700000000

static const struct eddy_record_entity entity = {"machine", "abc", 12, NOW, 0};

static cJSON *json(const char *text)
{
    cJSON *j = NULL;
    struct eddy_error err;
    if (eddy_json_parse(text, strlen(text), &j, &err) != EDDY_OK)
        fail_msg("bad test JSON %s: %s", text, err.detail);
    return j;
}

static void assert_item(const cJSON *item, const char *want_text)
{
    cJSON *want = cJSON_Parse(want_text);
    assert_non_null(want);
    if (!cJSON_Compare(want, item, true)) {
        char *got = cJSON_PrintUnformatted(item);
        fail_msg("item\n  got  %s\n  want %s", got, want_text);
    }
    cJSON_Delete(want);
}

static const char *slot_state = "{\"id\":\"abc\",\"balance\":-3,\"payout\":4,\"winChance\":0.18,"
                                "\"games\":1,\"wins\":1,\"losses\":0,\"isCoinInSlot\":false}";

static void test_state_item(void **state)
{
    (void)state;
    cJSON *s = json(slot_state), *item = NULL;
    struct eddy_error err;
    assert_int_equal(record_build_state(&entity, s, false, &item, &err), EDDY_OK);
    assert_item(item, "{\"_pk\":{\"S\":\"machine/abc\"},\"_sk\":{\"S\":\"STATE\"},"
                      "\"_namespace\":{\"S\":\"machine\"},\"_seq\":{\"N\":\"12\"},"
                      "\"_typ\":{\"S\":\"machine\"},\"_ts\":{\"N\":\"1700000000\"},"
                      "\"_date\":{\"S\":\"2023-11-14T22:13:20Z\"},"
                      "\"id\":{\"S\":\"abc\"},\"balance\":{\"N\":\"-3\"},\"payout\":{\"N\":\"4\"},"
                      "\"winChance\":{\"N\":\"0.18\"},\"games\":{\"N\":\"1\"},"
                      "\"wins\":{\"N\":\"1\"},\"losses\":{\"N\":\"0\"},"
                      "\"isCoinInSlot\":{\"BOOL\":false}}");
    cJSON_Delete(item);
    /* EDDY_STATE_HISTORY: the same item under STATE/<seq>. */
    assert_int_equal(record_build_state(&entity, s, true, &item, &err), EDDY_OK);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(item, "_sk"), "S")->valuestring,
                        "STATE/12");
    cJSON_Delete(item);
    cJSON_Delete(s);
}

static void test_state_parse(void **state)
{
    (void)state;
    /* A state item as a-h/stream writes it. */
    cJSON *item = cJSON_Parse(
        "{\"_pk\":{\"S\":\"machine/abc\"},\"_sk\":{\"S\":\"STATE\"},"
        "\"_namespace\":{\"S\":\"machine\"},\"_seq\":{\"N\":\"7\"},\"_typ\":{\"S\":\"machine\"},"
        "\"_ts\":{\"N\":\"1700000000\"},\"_date\":{\"S\":\"2023-11-14T22:13:20Z\"},"
        "\"id\":{\"S\":\"abc\"},\"balance\":{\"N\":\"-3\"},\"payout\":{\"N\":\"4\"},"
        "\"winChance\":{\"N\":\"0.18\"},\"games\":{\"N\":\"1\"},\"wins\":{\"N\":\"1\"},"
        "\"losses\":{\"N\":\"0\"},\"isCoinInSlot\":{\"BOOL\":false},"
        "\"_custom\":{\"N\":\"12345678901234567890123\"}}");
    cJSON *got = NULL;
    int64_t seq = -1;
    struct eddy_error err;
    assert_int_equal(eddy_record_parse_state(item, &got, &seq, &err), EDDY_OK);
    assert_int_equal(seq, 7);
    cJSON *want = json(slot_state);
    /* Only reserved names are dropped; other fields, exact numbers, stay. */
    cJSON_AddRawToObject(want, "_custom", "12345678901234567890123");
    assert_true(cJSON_Compare(want, got, true));
    cJSON_Delete(want);
    cJSON_Delete(got);
    /* _seq must be a whole number. */
    cJSON_ReplaceItemInObject(item, "_seq", cJSON_Parse("{\"N\":\"1.5\"}"));
    assert_int_equal(eddy_record_parse_state(item, &got, &seq, &err), EDDY_EPARSE);
    assert_string_equal(err.detail, "machine/abc: _seq 1.5 is not a whole number");
    cJSON_DeleteItemFromObject(item, "_seq");
    assert_int_equal(eddy_record_parse_state(item, &got, &seq, &err), EDDY_EPARSE);
    assert_string_equal(err.detail, "machine/abc: missing attribute _seq");
    cJSON_Delete(item);
}

static void test_inbound_outbound(void **state)
{
    (void)state;
    cJSON *data = json("{\"userId\":\"u1\"}"), *item = NULL;
    struct eddy_error err;
    const char *meta = "\"_pk\":{\"S\":\"machine/abc\"},\"_namespace\":{\"S\":\"machine\"},"
                       "\"_seq\":{\"N\":\"12\"},\"_ts\":{\"N\":\"1700000000\"},"
                       "\"_date\":{\"S\":\"2023-11-14T22:13:20Z\"}";
    char want[1024];
    assert_int_equal(
        record_build_inbound(&entity, 0, "PullHandle", "ev-1", data, NULL, &item, &err), EDDY_OK);
    snprintf(want, sizeof want,
             "{%s,\"_sk\":{\"S\":\"INBOUND/12/0/PullHandle\"},\"_typ\":{\"S\":\"PullHandle\"},"
             "\"_eid\":{\"S\":\"ev-1\"},\"userId\":{\"S\":\"u1\"}}",
             meta);
    assert_item(item, want);
    cJSON_Delete(item);
    /* A refused event carries _rejected, under REJECTED/ where a-h/stream's
     * QueryWithHistory does not look (it would read it as applied). */
    assert_int_equal(record_build_inbound(&entity, 3, "PullHandle", "ev-2", data,
                                          "cannot pull handle", &item, &err),
                     EDDY_OK);
    snprintf(want, sizeof want,
             "{%s,\"_sk\":{\"S\":\"REJECTED/12/3/PullHandle\"},\"_typ\":{\"S\":\"PullHandle\"},"
             "\"_eid\":{\"S\":\"ev-2\"},\"_rejected\":{\"S\":\"cannot pull handle\"},"
             "\"userId\":{\"S\":\"u1\"}}",
             meta);
    assert_item(item, want);
    cJSON_Delete(item);
    cJSON_Delete(data);

    data = json("{\"userId\":\"u1\",\"amount\":4}");
    assert_int_equal(record_build_outbound(&entity, 1, "Payout", data, &item, &err), EDDY_OK);
    snprintf(want, sizeof want,
             "{%s,\"_sk\":{\"S\":\"OUTBOUND/12/1/Payout\"},\"_typ\":{\"S\":\"Payout\"},"
             "\"userId\":{\"S\":\"u1\"},\"amount\":{\"N\":\"4\"}}",
             meta);
    assert_item(item, want);
    cJSON_Delete(item);
    cJSON_Delete(data);
    /* An event without fields (InsertCoin) is just the metadata. */
    assert_int_equal(
        record_build_inbound(&entity, 0, "InsertCoin", "ev-3", NULL, NULL, &item, &err), EDDY_OK);
    snprintf(want, sizeof want,
             "{%s,\"_sk\":{\"S\":\"INBOUND/12/0/InsertCoin\"},\"_typ\":{\"S\":\"InsertCoin\"},"
             "\"_eid\":{\"S\":\"ev-3\"}}",
             meta);
    assert_item(item, want);
    cJSON_Delete(item);
}

static void test_dedupe_and_lease(void **state)
{
    (void)state;
    cJSON *item = NULL;
    struct eddy_error err;
    assert_int_equal(
        record_build_dedupe(&entity, "ev-1", NOW + EDDY_RECORD_DEDUPE_TTL_S, &item, &err), EDDY_OK);
    assert_item(item, "{\"_pk\":{\"S\":\"machine/abc\"},\"_sk\":{\"S\":\"EVENT/ev-1\"},"
                      "\"_seq\":{\"N\":\"12\"},\"_ttl\":{\"N\":\"1701209600\"}}");
    cJSON_Delete(item);

    assert_int_equal(record_build_lease(7, "host-1:42", 1700000030000, &item, &err), EDDY_OK);
    assert_item(item, "{\"_pk\":{\"S\":\"#lease\"},\"_sk\":{\"S\":\"outbox/7\"},"
                      "\"owner\":{\"S\":\"host-1:42\"},\"expires\":{\"N\":\"1700000030000\"}}");
    const char *owner = NULL;
    int64_t expires = 0;
    assert_int_equal(eddy_record_parse_lease(item, &owner, &expires, &err), EDDY_OK);
    assert_string_equal(owner, "host-1:42");
    assert_true(expires == 1700000030000);
    cJSON_Delete(item);
}

/* A trace header carried from the inbound message is cut to PutEvents'
 * 500 characters. */
static void test_trace_header_cut(void **state)
{
    (void)state;
    const struct eddy_record_entity e = {"machine", "m1", 3, NOW, 0};
    char th[700];
    memset(th, 'a', sizeof th - 1);
    memcpy(th, "Root=1-", 7);
    th[sizeof th - 1] = '\0';
    cJSON *data = json("{\"x\":1}"), *item = NULL;
    struct eddy_record_publish pub = {"eddy.test", NULL, th, NULL};
    struct eddy_error err;
    assert_int_equal(record_build_outbox(&e, 4, 0, "T", data, &pub, &item, &err), EDDY_OK);
    struct eddy_record_outbox o;
    assert_int_equal(eddy_record_parse_outbox(item, &o, &err), EDDY_OK);
    assert_int_equal(strlen(o.trace_header), 500);
    assert_int_equal(strncmp(o.trace_header, th, 500), 0);
    cJSON_Delete(item);
    cJSON_Delete(data);
}

static void test_outbox(void **state)
{
    (void)state;
    /* An id with '/' in it: the relay reads it from _id, not from the key. */
    const struct eddy_record_entity e = {"machine", "a/b", 12, NOW, 0};
    cJSON *data = json("{\"userId\":\"u1\",\"amount\":12345678901234567890123}"), *item = NULL;
    cJSON *resources = cJSON_Parse("[\"arn:aws:x\"]");
    struct eddy_record_publish pub = {"eddy.test", resources, "Root=1-abc", NULL};
    struct eddy_error err;
    assert_int_equal(record_build_outbox(&e, 16, 1, "Payout", data, &pub, &item, &err), EDDY_OK);
    char want_pk[32];
    snprintf(want_pk, sizeof want_pk, "#outbox/%u",
             (unsigned)(eddy_fnv1a32("machine/a/b", 11) % 16));
    struct eddy_record_outbox o;
    assert_int_equal(eddy_record_parse_outbox(item, &o, &err), EDDY_OK);
    assert_string_equal(o.pk, want_pk);
    assert_string_equal(o.sk, "machine/a/b/00000000000000000012/0001");
    assert_string_equal(o.ns, "machine");
    assert_string_equal(o.id, "a/b");
    assert_int_equal(o.seq, 12);
    assert_int_equal(o.idx, 1);
    assert_string_equal(o.type, "Payout");
    assert_string_equal(o.detail_type, "Payout");
    assert_string_equal(o.event_id, o.sk);
    assert_string_equal(o.source, "eddy.test");
    assert_string_equal(o.trace_header, "Root=1-abc");
    assert_null(o.event_bus);
    assert_string_equal(cJSON_GetObjectItem(o.resources->child, "S")->valuestring, "arn:aws:x");
    /* Detail: the event plus metadata, numbers exact. */
    assert_string_equal(o.detail, "{\"userId\":\"u1\",\"amount\":12345678901234567890123,"
                                  "\"eddy\":{\"entity\":\"a/b\",\"namespace\":\"machine\","
                                  "\"seq\":12,\"idx\":1,\"id\":\"machine/a/b/12/1\"}}");
    cJSON_Delete(item);
    /* Without Source the relay fills its own in. */
    assert_int_equal(record_build_outbox(&e, 16, 0, "GameResult", NULL, NULL, &item, &err),
                     EDDY_OK);
    assert_int_equal(eddy_record_parse_outbox(item, &o, &err), EDDY_OK);
    assert_null(o.source);
    assert_string_equal(o.detail, "{\"eddy\":{\"entity\":\"a/b\",\"namespace\":\"machine\","
                                  "\"seq\":12,\"idx\":0,\"id\":\"machine/a/b/12/0\"}}");
    /* _tms: the commit time in ms, from now_s when now_ms is not given */
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(item, "_tms"), "N")->valuestring,
                        "1700000000000");
    cJSON_DeleteItemFromObject(item, "_id");
    assert_int_equal(eddy_record_parse_outbox(item, &o, &err), EDDY_EPARSE);
    assert_non_null(strstr(err.detail, "missing _id"));
    cJSON_Delete(item);
    cJSON_Delete(resources);
    cJSON_Delete(data);
}

/* The fields the commit path hands to the publisher are the row's own. */
static void test_outbox_fields(void **state)
{
    (void)state;
    const struct eddy_record_entity e = {"machine", "a/b", 12, NOW, (int64_t)NOW * 1000 + 7};
    cJSON *data = json("{\"userId\":\"u1\"}");
    cJSON *resources = cJSON_Parse("[\"arn:aws:x\",\"arn:aws:y\"]");
    char th[600];
    memset(th, 't', sizeof th - 1);
    th[sizeof th - 1] = '\0';
    struct eddy_record_publish pub = {"eddy.test", resources, th, "bus-1"};
    struct eddy_record_text t = {0};
    struct eddy_error err;
    assert_int_equal(eddy_record_render_outbox(&e, 16, 1, "Payout", data, &pub, &t, &err), EDDY_OK);
    cJSON *item = cJSON_ParseWithLength(t.json, t.len);
    struct eddy_record_outbox o;
    assert_int_equal(eddy_record_parse_outbox(item, &o, &err), EDDY_OK);
    /* the row's text holds Detail escaped, where the fields say */
    size_t at = t.outbox->detail_at, dlen = t.outbox->detail_json_len;
    assert_true(dlen >= 2 && at + dlen < t.len);
    assert_memory_equal(t.json + at - 5, "{\"S\":\"", 6);
    assert_memory_equal(t.json + at + dlen - 1, "\"}", 2);
    cJSON *dj = cJSON_ParseWithLength(t.json + at, dlen);
    assert_true(cJSON_IsString(dj));
    assert_string_equal(dj->valuestring, o.detail);
    assert_non_null(strchr(o.detail, '"')); /* there was something to escape */
    cJSON_Delete(dj);
    struct eddy_record_outbox_fields *f = eddy_record_outbox_fields_dup(t.outbox);
    assert_int_equal(f->detail_at, at); /* the copy keeps the span */
    eddy_record_text_cleanup(&t);       /* the copy stands alone */
    assert_null(t.outbox);
    assert_string_equal(f->pk, o.pk);
    assert_string_equal(f->sk, o.sk);
    assert_string_equal(f->ns, o.ns);
    assert_string_equal(f->id, o.id);
    assert_int_equal(f->seq, o.seq);
    assert_int_equal(f->idx, o.idx);
    assert_string_equal(f->type, o.detail_type);
    assert_string_equal(f->detail, o.detail);
    assert_string_equal(f->source, o.source);
    assert_string_equal(f->trace_header, o.trace_header); /* cut at 500 as written */
    assert_string_equal(f->event_bus, o.event_bus);
    assert_int_equal(f->ts, NOW);
    assert_int_equal(f->tms, (int64_t)NOW * 1000 + 7);
    assert_int_equal(f->nresources, 2);
    assert_string_equal(f->resources[1], "arn:aws:y");
    free(f);
    cJSON_Delete(item);
    /* without the optional fields */
    assert_int_equal(eddy_record_render_outbox(&e, 16, 0, "GameResult", NULL, NULL, &t, &err),
                     EDDY_OK);
    assert_null(t.outbox->source);
    assert_null(t.outbox->trace_header);
    assert_null(t.outbox->event_bus);
    assert_null(t.outbox->resources);
    eddy_record_text_cleanup(&t);
    cJSON_Delete(resources);
    cJSON_Delete(data);
}

static void test_shard(void **state)
{
    (void)state;
    /* FNV-1a 32 of "machine/abc", independently: fold the bytes by hand. */
    uint32_t h = 2166136261u;
    for (const char *p = "machine/abc"; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    assert_int_equal(eddy_record_shard("machine/abc", 64), h % 64);
    assert_int_equal(eddy_record_shard("machine/abc", 1), 0);
}

static void expect_id_error(const char *id, const char *want)
{
    struct eddy_error err;
    assert_int_equal(eddy_record_check_id("entity id", id, &err), EDDY_EINVAL);
    assert_string_equal(err.detail, want);
}

static void test_ids(void **state)
{
    (void)state;
    char id[1100];
    memset(id, 'x', sizeof id);
    id[1024] = '\0';
    struct eddy_error err;
    assert_int_equal(eddy_record_check_id("entity id", id, &err), EDDY_OK);
    id[1024] = 'x';
    id[1025] = '\0';
    expect_id_error(id, "entity id is 1025 bytes, the limit is 1024 bytes");
    expect_id_error("", "entity id is empty");
    expect_id_error("a\nb", "entity id has a control character (0x0a) at byte 1");
    expect_id_error("ab\x7f", "entity id has a control character (0x7f) at byte 2");
    expect_id_error("\xc3(", "entity id is not valid UTF-8");
    assert_int_equal(eddy_record_check_id("entity id", "caf\xc3\xa9/1", &err), EDDY_OK);
    /* The builders check too, naming the entity. */
    struct eddy_record_entity bad = {"machine", "a\tb", 1, NOW, 0};
    cJSON *item = NULL;
    assert_int_equal(record_build_state(&bad, NULL, false, &item, &err), EDDY_EINVAL);
    assert_string_equal(err.detail, "entity id has a control character (0x09) at byte 1");
    assert_null(item);
    /* An event id long enough to push EVENT/<id> past the sort key limit. */
    memset(id, 'e', 1020);
    id[1020] = '\0';
    assert_int_equal(record_build_dedupe(&entity, id, NOW, &item, &err), EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "over DynamoDB's 1024-byte sort key limit"));
}

static void test_reserved_names(void **state)
{
    (void)state;
    cJSON *s = json("{\"id\":\"abc\",\"_seq\":5}"), *item = NULL;
    struct eddy_error err;
    assert_int_equal(record_build_state(&entity, s, false, &item, &err), EDDY_EINVAL);
    assert_string_equal(err.detail, "state of machine/abc: field \"_seq\" is a name eddy reserves");
    cJSON_Delete(s);
    s = json("{\"_pk\":\"x\"}");
    assert_int_equal(record_build_inbound(&entity, 0, "T", "e", s, NULL, &item, &err), EDDY_EINVAL);
    assert_non_null(strstr(err.detail, "inbound event T of machine/abc: field \"_pk\""));
    cJSON_Delete(s);
    /* Conversion errors name the entity and the field. */
    s = json("{\"balance\":1e999}");
    assert_int_equal(record_build_state(&entity, s, false, &item, &err), EDDY_EINVAL);
    assert_string_equal(err.detail, "state of machine/abc: balance: number 1e999 out of "
                                    "DynamoDB range (1E-130 to 9.9E+125)");
    cJSON_Delete(s);
}

static void test_history_parse(void **state)
{
    (void)state;
    cJSON *data = json("{\"userId\":\"u1\"}"), *item = NULL;
    struct eddy_error err;
    assert_int_equal(record_build_inbound(&entity, 10, "PullHandle", "ev-9", data,
                                          "cannot pull handle", &item, &err),
                     EDDY_OK);
    struct eddy_record_history h;
    assert_int_equal(eddy_record_parse_history(item, &h, &err), EDDY_OK);
    assert_int_equal(h.kind, EDDY_RECORD_INBOUND);
    assert_int_equal(h.seq, 12);
    assert_int_equal(h.idx, 10);
    assert_int_equal(h.ts, NOW);
    assert_string_equal(h.type, "PullHandle");
    assert_string_equal(h.event_id, "ev-9");
    assert_string_equal(h.rejected, "cannot pull handle");
    assert_true(cJSON_Compare(h.data, data, true));
    eddy_record_history_cleanup(&h);
    cJSON_Delete(item);
    cJSON_Delete(data);
    /* An outbound record written by a-h/stream: no _eid. */
    item = cJSON_Parse("{\"_pk\":{\"S\":\"machine/abc\"},\"_sk\":{\"S\":\"OUTBOUND/3/1/Payout\"},"
                       "\"_seq\":{\"N\":\"3\"},\"_typ\":{\"S\":\"Payout\"},"
                       "\"amount\":{\"N\":\"4\"}}");
    assert_int_equal(eddy_record_parse_history(item, &h, &err), EDDY_OK);
    assert_int_equal(h.kind, EDDY_RECORD_OUTBOUND);
    assert_int_equal(h.seq, 3);
    assert_int_equal(h.idx, 1);
    assert_null(h.event_id);
    assert_null(h.rejected);
    assert_int_equal(cJSON_GetObjectItem(h.data, "amount")->valuedouble, 4);
    eddy_record_history_cleanup(&h);
    cJSON_Delete(item);
}

/* Refusals and repairs are read in both forms: the new sort keys and the
 * INBOUND/ records of earlier versions, so existing tables keep working. */
static void test_history_both_forms(void **state)
{
    (void)state;
    struct eddy_error err;
    struct eddy_record_history h;
    static const struct {
        const char *item;
        int64_t seq, idx;
        const char *type, *rejected;
        bool repair;
    } cases[] = {
        {"{\"_sk\":{\"S\":\"REJECTED/7/2/PullHandle\"},\"_seq\":{\"N\":\"7\"},"
         "\"_typ\":{\"S\":\"PullHandle\"},\"_eid\":{\"S\":\"e\"},"
         "\"_rejected\":{\"S\":\"cannot pull handle\"}}",
         7, 2, "PullHandle", "cannot pull handle", false},
        {"{\"_sk\":{\"S\":\"INBOUND/7/2/PullHandle\"},\"_seq\":{\"N\":\"7\"},"
         "\"_typ\":{\"S\":\"PullHandle\"},\"_eid\":{\"S\":\"e\"},"
         "\"_rejected\":{\"S\":\"cannot pull handle\"}}",
         7, 2, "PullHandle", "cannot pull handle", false},
        /* REJECTED/ without a reason is still a refusal */
        {"{\"_sk\":{\"S\":\"REJECTED/7/0/X\"},\"_seq\":{\"N\":\"7\"},"
         "\"_typ\":{\"S\":\"X\"},\"_eid\":{\"S\":\"e\"}}",
         7, 0, "X", "rejected", false},
        {"{\"_sk\":{\"S\":\"REPAIR/9\"},\"_seq\":{\"N\":\"9\"},"
         "\"_typ\":{\"S\":\"eddy.Repair\"},\"_eid\":{\"S\":\"r\"},\"count\":{\"N\":\"3\"}}",
         9, 0, "eddy.Repair", NULL, true},
        {"{\"_sk\":{\"S\":\"INBOUND/9/0/eddy.Repair\"},\"_seq\":{\"N\":\"9\"},"
         "\"_typ\":{\"S\":\"eddy.Repair\"},\"_eid\":{\"S\":\"r\"},\"count\":{\"N\":\"3\"}}",
         9, 0, "eddy.Repair", NULL, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *item = cJSON_Parse(cases[i].item);
        assert_non_null(item);
        assert_int_equal(eddy_record_parse_history(item, &h, &err), EDDY_OK);
        assert_int_equal(h.kind, EDDY_RECORD_INBOUND);
        assert_int_equal(h.seq, cases[i].seq);
        assert_int_equal(h.idx, cases[i].idx);
        assert_string_equal(h.type, cases[i].type);
        if (cases[i].rejected)
            assert_string_equal(h.rejected, cases[i].rejected);
        else
            assert_null(h.rejected);
        assert_int_equal(h.repair, cases[i].repair);
        eddy_record_history_cleanup(&h);
        cJSON_Delete(item);
    }
}

static void test_repair_record(void **state)
{
    (void)state;
    cJSON *s = json("{\"count\":3}"), *item = NULL;
    struct eddy_error err;
    assert_int_equal(record_build_repair(&entity, "repair-12-1", s, &item, &err), EDDY_OK);
    assert_item(item, "{\"_pk\":{\"S\":\"machine/abc\"},\"_sk\":{\"S\":\"REPAIR/12\"},"
                      "\"_namespace\":{\"S\":\"machine\"},\"_seq\":{\"N\":\"12\"},"
                      "\"_typ\":{\"S\":\"eddy.Repair\"},\"_ts\":{\"N\":\"1700000000\"},"
                      "\"_date\":{\"S\":\"2023-11-14T22:13:20Z\"},"
                      "\"_eid\":{\"S\":\"repair-12-1\"},\"count\":{\"N\":\"3\"}}");
    struct eddy_record_history h;
    assert_int_equal(eddy_record_parse_history(item, &h, &err), EDDY_OK);
    assert_true(h.repair);
    assert_true(cJSON_Compare(h.data, s, true));
    eddy_record_history_cleanup(&h);
    cJSON_Delete(item);
    cJSON_Delete(s);
}

/* Binary and set attributes keep their stored types through a commit. */
static void test_state_keeps_types(void **state)
{
    (void)state;
    cJSON *stored = cJSON_Parse(
        "{\"_pk\":{\"S\":\"machine/abc\"},\"_sk\":{\"S\":\"STATE\"},\"_seq\":{\"N\":\"11\"},"
        "\"Balance\":{\"N\":\"1\"},\"Photo\":{\"B\":\"AAEC\"},"
        "\"Tags\":{\"SS\":[\"a\",\"b\"]},\"Lucky\":{\"NS\":[\"7\",\"1.5\"]},"
        "\"Blobs\":{\"BS\":[\"AA==\"]},"
        "\"Inner\":{\"M\":{\"Keys\":{\"SS\":[\"k\"]},\"n\":{\"N\":\"2\"}}}}");
    cJSON *json = NULL, *item = NULL;
    int64_t seq = 0;
    struct eddy_error err;
    assert_int_equal(eddy_record_parse_state(stored, &json, &seq, &err), EDDY_OK);
    /* the machine changed only balance (and spells it its own way) */
    cJSON_DeleteItemFromObject(json, "Balance");
    cJSON_AddNumberToObject(json, "balance", 2);
    cJSON *keep = eddy_attr_item_keepers(stored);
    assert_non_null(keep);
    assert_null(cJSON_GetObjectItemCaseSensitive(keep, "Balance")); /* only what JSON loses */
    assert_int_equal(record_build_state_kept(&entity, json, keep, false, &item, &err), EDDY_OK);
    const char *names[] = {"Photo", "Tags", "Lucky", "Blobs", "Inner"};
    for (size_t i = 0; i < 5; i++)
        assert_true(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(item, names[i]),
                                  cJSON_GetObjectItemCaseSensitive(stored, names[i]), true));
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(item, "balance"), "N")->valuestring,
        "2");
    cJSON_Delete(item);
    /* without keep, the same JSON would have changed every type */
    assert_int_equal(record_build_state(&entity, json, false, &item, &err), EDDY_OK);
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(item, "Photo"), "S"));
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(item, "Tags"), "L"));
    cJSON_Delete(item);
    cJSON_Delete(keep);
    cJSON_Delete(json);
    cJSON_Delete(stored);
}

static void test_sizes(void **state)
{
    (void)state;
    /* A state that cannot fit in 400 KB. */
    size_t n = 410 * 1024;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    cJSON *s = cJSON_CreateObject(), *item = NULL;
    cJSON_AddStringToObject(s, "blob", big);
    struct eddy_error err;
    assert_int_equal(record_build_state(&entity, s, false, &item, &err), EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "state item of machine/abc is "));
    assert_non_null(strstr(err.detail, "over DynamoDB's 400 KB item size limit"));
    assert_null(item);
    cJSON_Delete(s);
    free(big);
    /* A small item's size: names plus values. */
    cJSON *small = cJSON_Parse("{\"_pk\":{\"S\":\"machine/abc\"},\"_seq\":{\"N\":\"12\"}}");
    size_t size = 0;
    assert_int_equal(eddy_record_check_item_size(small, "x", &size, &err), EDDY_OK);
    assert_int_equal(size, 3 + 11 + 4 + 2);
    cJSON_Delete(small);
    assert_int_equal(eddy_record_check_txn(100, 4 * 1024 * 1024, &err), EDDY_OK);
    assert_int_equal(eddy_record_check_txn(101, 10, &err), EDDY_ELIMIT);
    assert_string_equal(err.detail,
                        "transaction has 101 items, over DynamoDB's 100-item TransactWriteItems "
                        "limit");
    assert_int_equal(eddy_record_check_txn(10, 4 * 1024 * 1024 + 1, &err), EDDY_ELIMIT);
    assert_string_equal(err.detail, "transaction request is 4194305 bytes, over the 4 MB "
                                    "TransactWriteItems size limit");
}

/* An entry of `bytes` as PutEvents counts it (eddy_eb_entry_size: Time,
 * Source, DetailType, Detail), or the refusal: data {"pad": "x..."}. */
static eddy_err entry_of(size_t bytes, size_t *got, struct eddy_error *err)
{
    struct eddy_record_entity e = {"machine", "1", 5, 1700000000, 0};
    struct eddy_record_publish pub = {"eddy.machine", NULL, NULL, NULL};
    /* the size without the pad: an empty pad's entry, less its "" */
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "pad", "");
    cJSON *item = NULL;
    assert_int_equal(record_build_outbox(&e, 16, 0, "Big", data, &pub, &item, err), EDDY_OK);
    struct eddy_record_outbox o;
    assert_int_equal(eddy_record_parse_outbox(item, &o, err), EDDY_OK);
    struct eddy_eb_entry en = {
        .source = o.source, .detail_type = o.detail_type, .detail = o.detail, .time_s = e.now_s};
    size_t base = eddy_eb_entry_size(&en);
    assert_int_equal(base, 14 + strlen("eddy.machine") + strlen("Big") + strlen(o.detail));
    cJSON_Delete(item); /* o's strings with it */
    cJSON_Delete(data);
    char *pad = eddy_calloc(1, bytes - base + 1);
    memset(pad, 'x', bytes - base);
    data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "pad", pad);
    free(pad);
    item = NULL;
    eddy_err rc = record_build_outbox(&e, 16, 0, "Big", data, &pub, &item, err);
    if (rc == EDDY_OK) {
        assert_int_equal(eddy_record_parse_outbox(item, &o, err), EDDY_OK);
        en.source = o.source;
        en.detail_type = o.detail_type;
        en.detail = o.detail;
        *got = eddy_eb_entry_size(&en); /* what the relay counts */
    }
    cJSON_Delete(item);
    cJSON_Delete(data);
    return rc;
}

/* One size rule at commit and at publish, Time included: every entry the
 * commit path accepts is one PutEvents takes (262,144 bytes at most), and the
 * next byte is refused at commit time with the limit named. */
static void test_entry_size_boundary(void **state)
{
    (void)state;
    struct eddy_error err = {0};
    for (size_t bytes = 262131; bytes <= EDDY_EB_MAX_BYTES; bytes++) {
        size_t got = 0;
        assert_int_equal(entry_of(bytes, &got, &err), EDDY_OK);
        assert_int_equal(got, bytes);
    }
    size_t got = 0;
    assert_int_equal(entry_of(EDDY_EB_MAX_BYTES + 1, &got, &err), EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "262145 bytes"));
    assert_non_null(strstr(err.detail, "262,144 byte"));
}

/* On a Custom Event Bus (EDDY_EVENT_BUS an event-busv2 ARN) an entry is
 * also held to that API's limits on its fields, at commit time with the
 * limit named: the relay could never publish it. A classic bus has none. */
static void test_entry_limits_of_custom_bus(void **state)
{
    (void)state;
    const char *bus =
        "arn:aws:events:us-east-1:123456789012:event-busv2/orders/abcdefghijklmnopqrstuvwxy";
    char type[130], source[258];
    memset(type, 'T', sizeof type - 1);
    type[sizeof type - 1] = '\0';
    memset(source, 's', sizeof source - 1);
    source[sizeof source - 1] = '\0';
    cJSON *data = cJSON_CreateObject();
    struct eddy_record_publish pub = {"eddy.machine", NULL, NULL, bus};
    struct eddy_record_text t = {0};
    struct eddy_error err = {0};
    assert_int_equal(eddy_record_render_outbox(&entity, 16, 0, type, data, &pub, &t, &err),
                     EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "DetailType is 129 characters, not 1..128"));
    assert_non_null(strstr(err.detail, "Custom Event Bus"));
    type[128] = '\0';
    assert_int_equal(eddy_record_render_outbox(&entity, 16, 0, type, data, &pub, &t, &err),
                     EDDY_OK);
    eddy_record_text_cleanup(&t);
    pub.source = source;
    assert_int_equal(eddy_record_render_outbox(&entity, 16, 0, "T", data, &pub, &t, &err),
                     EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "Source is 257 characters, not 1..256"));
    pub.event_bus = "orders"; /* a classic bus */
    assert_int_equal(eddy_record_render_outbox(&entity, 16, 0, "T", data, &pub, &t, &err), EDDY_OK);
    eddy_record_text_cleanup(&t);
    cJSON_Delete(data);
}

static void test_keys(void **state)
{
    (void)state;
    char *k;
    assert_string_equal(k = eddy_record_pk("machine", "1"), "machine/1");
    free(k);
    assert_string_equal(k = eddy_record_sk_state_version(10), "STATE/10");
    free(k);
    assert_string_equal(k = eddy_record_sk_inbound(10, 2, "InsertCoin"), "INBOUND/10/2/InsertCoin");
    free(k);
    assert_string_equal(k = eddy_record_sk_outbound(1, 0, "GameResult"), "OUTBOUND/1/0/GameResult");
    free(k);
    assert_string_equal(k = eddy_record_sk_rejected(10, 2, "PullHandle"),
                        "REJECTED/10/2/PullHandle");
    free(k);
    assert_string_equal(k = eddy_record_sk_repair(11), "REPAIR/11");
    free(k);
    assert_string_equal(k = eddy_record_sk_event("e-1"), "EVENT/e-1");
    free(k);
    assert_string_equal(k = eddy_record_outbox_pk(3), "#outbox/3");
    free(k);
    assert_string_equal(k = eddy_record_outbox_sk("machine", "1", 5, 2),
                        "machine/1/00000000000000000005/0002");
    free(k);
    assert_string_equal(k = eddy_record_lease_sk(3), "outbox/3");
    free(k);
}

/* Keys are built without printf: the same text as printf's, at the edges of
 * the numbers and past the renderers' room on the stack (256 bytes). */
static void test_keys_as_printf(void **state)
{
    (void)state;
    char want[2200], *k;
    const int64_t seqs[] = {0, 9, 10, INT64_MAX, -1, INT64_MIN};
    const size_t idxs[] = {0, 9999, 10000, 123456};
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(seqs); i++) {
        for (size_t j = 0; j < EDDY_ARRAY_SIZE(idxs); j++) {
            snprintf(want, sizeof want, "ns/id/%020" PRId64 "/%04zu", seqs[i], idxs[j]);
            assert_string_equal(k = eddy_record_outbox_sk("ns", "id", seqs[i], idxs[j]), want);
            free(k);
            snprintf(want, sizeof want, "INBOUND/%" PRId64 "/%zu/T", seqs[i], idxs[j]);
            assert_string_equal(k = eddy_record_sk_inbound(seqs[i], idxs[j], "T"), want);
            free(k);
        }
        snprintf(want, sizeof want, "STATE/%" PRId64, seqs[i]);
        assert_string_equal(k = eddy_record_sk_state_version(seqs[i]), want);
        free(k);
    }
    assert_string_equal(k = eddy_record_outbox_dead_pk(UINT32_MAX), "#outbox-dead/4294967295");
    free(k);
    char id[2048];
    memset(id, 'x', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    snprintf(want, sizeof want, "machine/%s", id);
    assert_string_equal(k = eddy_record_pk("machine", id), want);
    free(k);
    snprintf(want, sizeof want, "machine/%s/00000000000000000007/0001", id);
    assert_string_equal(k = eddy_record_outbox_sk("machine", id, 7, 1), want);
    free(k);
}

/* The Detail text of an outbox entry of data: want_data (data as JSON,
 * numbers and escapes as the writer spells them), then eddy's metadata. */
static void check_detail(const char *data_text, const char *want_data)
{
    cJSON *data = json(data_text);
    struct eddy_record_text t = {0};
    struct eddy_error err;
    assert_int_equal(eddy_record_render_outbox(&entity, 16, 3, "Won", data, NULL, &t, &err),
                     EDDY_OK);
    char want[1024];
    snprintf(want, sizeof want,
             "%.*s,\"eddy\":{\"entity\":\"abc\",\"namespace\":\"machine\",\"seq\":12,\"idx\":3,"
             "\"id\":\"machine/abc/12/3\"}}",
             (int)strlen(want_data) - 1, want_data);
    if (strcmp(t.outbox->detail, want) != 0)
        fail_msg("detail of %s\n  got  %s\n  want %s", data_text, t.outbox->detail, want);
    /* and the row holds the same text, escaped once */
    cJSON *row = cJSON_Parse(t.json);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(row, "Detail"), "S")->valuestring,
                        want);
    cJSON_Delete(row);
    eddy_record_text_cleanup(&t);
    cJSON_Delete(data);
}

static void test_outbox_detail_text(void **state)
{
    (void)state;
    check_detail("{\"a\":1}", "{\"a\":1}");
    /* numbers in the shortest text that reads back as the same double, as
     * the history record's N holds them; long ones as they came */
    check_detail("{\"n\":-0,\"z\":0,\"big\":2147483648,\"neg\":-2147483649,\"f\":0.1,"
                 "\"e\":1e100,\"tiny\":5e-100,\"third\":0.3333333333333333,\"x\":"
                 "123456789012345678901234567890,"
                 "\"d\":12.50,\"i\":-7}",
                 "{\"n\":-0,\"z\":0,\"big\":2147483648,\"neg\":-2147483649,\"f\":0.1,"
                 "\"e\":1e+100,\"tiny\":5e-100,\"third\":0.3333333333333333,\"x\":"
                 "123456789012345678901234567890,"
                 "\"d\":12.5,\"i\":-7}");
    const char *plain =
        "{\"s\":\"plain \xc3\xa9 text\",\"l\":[1,[true,false,null],{}],\"o\":{\"k\":[]}}";
    check_detail(plain, plain);
    /* escapes: \n \r \t by name, the other controls (\b and \f too) as
     * \u00XX, '/' as it is */
    check_detail("{\"s\":\"a\\bb\\fc\\nd\\re\\tf\\u0001g\\\"h\\\\i\\/j\"}",
                 "{\"s\":\"a\\u0008b\\u000cc\\nd\\re\\tf\\u0001g\\\"h\\\\i/j\"}");
    check_detail("{\"k\\b\":\"v\",\"q\\\"\":1}", "{\"k\\u0008\":\"v\",\"q\\\"\":1}");
}

/* A number a double holds, but only just (cJSON's own printer would round
 * it to 15 digits): the published Detail says what the OUTBOUND history
 * record says, to the digit. */
static void test_detail_numbers_as_recorded(void **state)
{
    (void)state;
    static const char *const names[] = {"orderId", "amount", "rate"};
    static const char *const digits[] = {"10000000000000002", "1.0000000000000002",
                                         "0.30000000000000004"};
    cJSON *data = json("{\"orderId\":10000000000000002,\"amount\":1.0000000000000002,"
                       "\"rate\":0.30000000000000004}");
    struct eddy_record_text h = {0}, o = {0};
    struct eddy_error err;
    assert_int_equal(eddy_record_render_emitted(&entity, 16, 3, "Paid", data, NULL, &h, &o, &err),
                     EDDY_OK);
    cJSON *history = cJSON_Parse(h.json);
    for (size_t i = 0; i < 3; i++) {
        assert_false(cJSON_IsRaw(cJSON_GetObjectItem(data, names[i]))); /* a double holds it */
        const cJSON *n = cJSON_GetObjectItem(cJSON_GetObjectItem(history, names[i]), "N");
        assert_string_equal(n->valuestring, digits[i]);
    }
    assert_non_null(strstr(o.outbox->detail, "{\"orderId\":10000000000000002,\"amount\":"
                                             "1.0000000000000002,\"rate\":0.30000000000000004,"));
    cJSON_Delete(history);
    eddy_record_text_cleanup(&h);
    eddy_record_text_cleanup(&o);
    cJSON_Delete(data);
}

/* Integer attributes (_seq, _ts, _ttl, ...) are counted as DynamoDB counts
 * numbers: 1 byte per 2 significant digits, plus 1. */
static void test_number_sizes(void **state)
{
    (void)state;
    const int64_t values[] = {0,        1,         9,          10,         12,          100,
                              1200,     123456789, 1000000000, 1700000000, -1,          -10,
                              -1234500, INT64_MAX, INT64_MIN,  999999999,  10000000001, 1010};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        struct eddy_record_entity e = entity;
        e.seq = values[i] < 0 ? 7 : values[i];
        struct eddy_record_text t = {0};
        struct eddy_error err;
        assert_int_equal(eddy_record_render_dedupe(&e, "ev-1", values[i], &t, &err), EDDY_OK);
        cJSON *item = cJSON_Parse(t.json);
        assert_non_null(item);
        if (t.size != eddy_attr_item_size(item))
            fail_msg("%" PRId64 ": size %zu, the item's %zu", values[i], t.size,
                     eddy_attr_item_size(item));
        char ttl[32];
        snprintf(ttl, sizeof ttl, "%" PRId64, values[i]);
        assert_string_equal(
            cJSON_GetObjectItem(cJSON_GetObjectItem(item, "_ttl"), "N")->valuestring, ttl);
        cJSON_Delete(item);
        eddy_record_text_cleanup(&t);
    }
}

static void test_default_source(void **state)
{
    (void)state;
    char out[EDDY_RECORD_SOURCE_MAX], want[EDDY_RECORD_SOURCE_MAX];
    eddy_record_default_source("machine", out);
    assert_string_equal(out, "eddy.machine");
    char *ns = malloc(EDDY_RECORD_SOURCE_MAX + 10);
    for (size_t n = EDDY_RECORD_SOURCE_MAX - 8; n < EDDY_RECORD_SOURCE_MAX + 9; n++) {
        memset(ns, 'n', n);
        ns[n] = '\0';
        eddy_record_default_source(ns, out);
        snprintf(want, sizeof want, "eddy.%s", ns);
        assert_string_equal(out, want);
    }
    free(ns);
}

/* A render given a spare block writes into it, to the same text; blocks
 * come back on release, at most EDDY_RECORD_SPARE_MAX of them, and only
 * blocks of EDDY_JW_BLOCK bytes. A refused render loses no block (ASan). */
static void test_spare_blocks(void **state)
{
    (void)state;
    struct eddy_record_spare spare = {0};
    struct eddy_error err;
    cJSON *s = json(slot_state);
    struct eddy_record_text t = {0};
    assert_int_equal(eddy_record_render_state(&entity, s, false, &t, &err), EDDY_OK);
    assert_int_equal(t.cap, EDDY_JW_BLOCK);
    char *want = eddy_strdup(t.json), *block = t.json;
    eddy_record_text_release(&t, &spare);
    assert_null(t.json);
    assert_int_equal(spare.n, 1);

    t = eddy_record_spare_text(&spare);
    assert_ptr_equal(t.json, block);
    assert_int_equal(spare.n, 0);
    assert_int_equal(eddy_record_render_state(&entity, s, false, &t, &err), EDDY_OK);
    assert_ptr_equal(t.json, block);
    assert_string_equal(t.json, want);
    assert_int_equal(t.len, strlen(want));
    eddy_record_text_release(&t, &spare);

    /* refused before writing: the text still holds its block */
    t = eddy_record_spare_text(&spare);
    assert_int_not_equal(
        eddy_record_render_inbound(&entity, 0, "bad\ttype", "e1", s, NULL, &t, &err), EDDY_OK);
    eddy_record_text_release(&t, &spare);
    assert_int_equal(spare.n, 1);
    /* refused while writing: the writer had the block and freed it */
    cJSON *huge = json("{\"n\":1e999}");
    t = eddy_record_spare_text(&spare);
    assert_int_not_equal(eddy_record_render_state(&entity, huge, false, &t, &err), EDDY_OK);
    assert_null(t.json);
    eddy_record_text_release(&t, &spare);
    assert_int_equal(spare.n, 0);
    cJSON_Delete(huge);

    /* a record that outgrew its block is freed, not kept */
    char big[2100];
    snprintf(big, sizeof big, "{\"s\":\"%02000d\"}", 7);
    cJSON *b = json(big);
    assert_int_equal(eddy_record_render_state(&entity, b, false, &t, &err), EDDY_OK);
    assert_true(t.cap > EDDY_JW_BLOCK);
    eddy_record_text_release(&t, &spare);
    assert_int_equal(spare.n, 0);
    cJSON_Delete(b);

    for (int i = 0; i <= EDDY_RECORD_SPARE_MAX; i++) {
        assert_int_equal(eddy_record_render_state(&entity, s, false, &t, &err), EDDY_OK);
        eddy_record_text_release(&t, &spare);
    }
    assert_int_equal(spare.n, EDDY_RECORD_SPARE_MAX);
    eddy_record_spare_cleanup(&spare);
    assert_int_equal(spare.n, 0);
    free(want);
    cJSON_Delete(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_as_printf),
        cmocka_unit_test(test_state_item),
        cmocka_unit_test(test_state_parse),
        cmocka_unit_test(test_inbound_outbound),
        cmocka_unit_test(test_dedupe_and_lease),
        cmocka_unit_test(test_trace_header_cut),
        cmocka_unit_test(test_outbox),
        cmocka_unit_test(test_outbox_fields),
        cmocka_unit_test(test_shard),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_reserved_names),
        cmocka_unit_test(test_history_parse),
        cmocka_unit_test(test_history_both_forms),
        cmocka_unit_test(test_repair_record),
        cmocka_unit_test(test_state_keeps_types),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_entry_size_boundary),
        cmocka_unit_test(test_entry_limits_of_custom_bus),
        cmocka_unit_test(test_outbox_detail_text),
        cmocka_unit_test(test_detail_numbers_as_recorded),
        cmocka_unit_test(test_number_sizes),
        cmocka_unit_test(test_default_source),
        cmocka_unit_test(test_spare_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
