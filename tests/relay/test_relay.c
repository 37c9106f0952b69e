/* Unit tests for relay/relay against a fake table and bus (fakeaws.h):
 * order per entity, only failed entries resent, an entity waiting for its
 * failed entry while the others go on, the 10 entry and 256 KB limits,
 * shards sharing calls, dead entries, unprocessed deletes, paging, sweeps
 * fair across entities, publish on commit with the grace, calls that wait
 * for the entries on their way (or not), and stop. No
 * leases here (lease_ms 0): test_lease.c covers them, but for a lease that
 * runs out locally for a moment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/log.h"
#include "fakeaws.h"
#include "relay/busv2.h"
#include "relay/relay.h"
#include "base/metrics.h"

#define PK0 "#outbox/0"

struct relay_rig {
    struct fakeaws w;
    struct eddy_relay *relay;
    struct eddy_metrics *metrics;
    struct eddy_relay_config cfg;
    bool stopped;
    size_t hooked; /* on_publish calls */
};

static void on_publish(const struct eddy_record_outbox *e, int64_t unix_ms, void *ud)
{
    struct relay_rig *r = ud;
    assert_non_null(e->sk);
    assert_true(unix_ms > 0);
    r->hooked++;
}

static void relay_rig_init(struct relay_rig *r)
{
    memset(r, 0, sizeof *r);
    fakeaws_init(&r->w);
    r->metrics = eddy_metrics_new(EDDY_METRICS_OFF);
    r->cfg = (struct eddy_relay_config){.table = "t",
                                        .shards = 1,
                                        .event_bus = "bus",
                                        .poll_ms = 3600000,
                                        .retry_base_ms = 1,
                                        .retry_cap_ms = 4,
                                        .seed = 1,
                                        .on_publish = on_publish,
                                        .on_publish_ud = r};
}

static void relay_rig_start(struct relay_rig *r)
{
    struct eddy_error err = {0};
    r->relay = eddy_relay_new(&r->w.rig.loop, &r->w.ddb, &r->w.eb, &r->cfg,
                              &r->w.rig.fake_clock.clock, r->metrics, &err);
    assert_non_null(r->relay);
    assert_int_equal(eddy_relay_start(r->relay), EDDY_OK);
}

static void on_stopped(void *ud)
{
    ((struct relay_rig *)ud)->stopped = true;
}

static bool is_stopped(struct fakeaws *w, void *ud)
{
    (void)w;
    return ((struct relay_rig *)ud)->stopped;
}

static void relay_rig_close(struct relay_rig *r)
{
    eddy_relay_close(r->relay, on_stopped, r);
    assert_false(r->stopped); /* never from inside the call */
    assert_true(fakeaws_run(&r->w, is_stopped, r, 5000));
    eddy_metrics_free(r->metrics);
    fakeaws_close(&r->w);
}

static bool outbox_empty(struct fakeaws *w, void *ud)
{
    (void)ud;
    return fakeaws_count(w, PK0) == 0;
}

/* Every entity's (seq, idx) strictly ascending in publish order. */
static void assert_ordered(const cJSON *published)
{
    cJSON *last = cJSON_CreateObject();
    const cJSON *en;
    cJSON_ArrayForEach(en, published)
    {
        char id[256];
        int64_t seq, idx;
        fakeaws_detail_meta(cJSON_GetObjectItem(en, "Detail")->valuestring, id, sizeof id, &seq,
                            &idx);
        double key = (double)seq * 10000 + (double)idx;
        cJSON *prev = cJSON_GetObjectItem(last, id);
        if (prev) {
            assert_true(key > prev->valuedouble);
            cJSON_SetNumberValue(prev, key);
        } else {
            cJSON_AddNumberToObject(last, id, key);
        }
    }
    cJSON_Delete(last);
}

static unsigned attempts_of(const struct fakeaws *w, const char *id, int64_t seq)
{
    unsigned n = 0;
    const cJSON *en;
    cJSON_ArrayForEach(en, w->sent)
    {
        char eid[256];
        int64_t s, idx;
        fakeaws_detail_meta(cJSON_GetObjectItem(en, "Detail")->valuestring, eid, sizeof eid, &s,
                            &idx);
        n += strcmp(eid, id) == 0 && s == seq;
    }
    return n;
}

/* The position in w->published of (id, seq), or -1. */
static int published_at(const struct fakeaws *w, const char *id, int64_t seq)
{
    int i = 0;
    const cJSON *en;
    cJSON_ArrayForEach(en, w->published)
    {
        char eid[256];
        int64_t s, idx;
        fakeaws_detail_meta(cJSON_GetObjectItem(en, "Detail")->valuestring, eid, sizeof eid, &s,
                            &idx);
        if (strcmp(eid, id) == 0 && s == seq)
            return i;
        i++;
    }
    return -1;
}

static void test_publishes_in_order_and_deletes(void **state)
{
    (void)state;
    struct relay_rig r;
    relay_rig_init(&r);
    const char *ids[] = {"a", "b", "c"};
    for (int64_t seq = 4; seq >= 1; seq--) /* written out of order on purpose */
        for (size_t k = 0; k < 3; k++)
            fakeaws_put_outbox(&r.w, 1, "slot", ids[k], seq, (size_t)(seq % 2), 0);
    fakeaws_put_outbox(&r.w, 1, "slot", "a", 4, 1, 0); /* two entries at seq 4 */
    relay_rig_start(&r);
    assert_true(fakeaws_run(&r.w, outbox_empty, NULL, 5000));
    struct eddy_relay_stats st;
    eddy_relay_stats(r.relay, &st);
    assert_int_equal(st.published, 13);
    assert_int_equal(st.deleted, 13);
    assert_int_equal(st.failed_entries, 0);
    assert_int_equal(r.hooked, 13);
    assert_int_equal(cJSON_GetArraySize(r.w.published), 13);
    assert_int_equal(cJSON_GetArraySize(r.w.sent), 13);
    assert_false(r.w.same_entity_in_call);
    assert_true(r.w.max_call_entries <= 10);
    assert_ordered(r.w.published);
    /* the entry as PutEvents carries it */
    const cJSON *en = cJSON_GetArrayItem(r.w.published, 0);
    assert_string_equal(cJSON_GetObjectItem(en, "Source")->valuestring, "eddy.slot");
    assert_string_equal(cJSON_GetObjectItem(en, "DetailType")->valuestring, "Happened");
    assert_string_equal(cJSON_GetObjectItem(en, "EventBusName")->valuestring, "bus");
    assert_non_null(strstr(cJSON_GetObjectItem(en, "Detail")->valuestring, "\"eddy\""));
    assert_int_equal(eddy_metrics_total(r.metrics, EDDY_METRIC_published), 13);
    assert_int_equal(
        eddy_metrics_total_hist(r.metrics, EDDY_LATENCY_commit_to_publish_latency)->count, 13);
    relay_rig_close(&r);
}

/* a/2 fails twice; only it is resent; a/3 waits for it; b goes on. */
static bool fail_a2_twice(const cJSON *entry, unsigned attempt, void *ud)
{
    (void)ud;
    char id[64];
    int64_t seq, idx;
    fakeaws_detail_meta(cJSON_GetObjectItem(entry, "Detail")->valuestring, id, sizeof id, &seq,
                        &idx);
    return strcmp(id, "a") == 0 && seq == 2 && attempt <= 2;
}

static void test_failed_entry_resent_alone_entity_waits(void **state)
{
    (void)state;
    struct relay_rig r;
    relay_rig_init(&r);
    r.cfg.retry_base_ms = 20; /* long enough for b to go on meanwhile */
    r.cfg.retry_cap_ms = 40;
    for (int64_t seq = 1; seq <= 4; seq++) {
        fakeaws_put_outbox(&r.w, 1, "slot", "a", seq, 0, 0);
        fakeaws_put_outbox(&r.w, 1, "slot", "b", seq, 0, 0);
    }
    r.w.fail_entry = fail_a2_twice;
    relay_rig_start(&r);
    assert_true(fakeaws_run(&r.w, outbox_empty, NULL, 5000));
    assert_int_equal(attempts_of(&r.w, "a", 2), 3);
    for (int64_t seq = 1; seq <= 4; seq++) {
        assert_int_equal(attempts_of(&r.w, "b", seq), 1);
        if (seq != 2)
            assert_int_equal(attempts_of(&r.w, "a", seq), 1);
    }
    assert_int_equal(cJSON_GetArraySize(r.w.sent), 10);
    assert_ordered(r.w.published);
    /* b was not held back by a's failure: all of b left before a/2 did */
    assert_true(published_at(&r.w, "b", 4) < published_at(&r.w, "a", 2));
    assert_true(published_at(&r.w, "a", 2) < published_at(&r.w, "a", 3));
    struct eddy_relay_stats st;
    eddy_relay_stats(r.relay, &st);
    assert_int_equal(st.failed_entries, 2);
    assert_int_equal(st.retries, 2);
    assert_int_equal(st.published, 8);
    assert_int_equal(eddy_metrics_total(r.metrics, EDDY_METRIC_publish_failures), 2);
    assert_int_equal(eddy_metrics_total(r.metrics, EDDY_METRIC_retries), 2);
    relay_rig_close(&r);
}

/* A call that fails as a whole (5xx after the AWS layer's retries): its
 * entries are sent again, nothing is lost, order holds. */
static void test_failed_call_retried(void **state)
{
    (void)state;
    struct relay_rig r;
    relay_rig_init(&r);
    for (int64_t seq = 1; seq <= 3; seq++)
        fakeaws_put_outbox(&r.w, 1, "slot", "a", seq, 0, 0);
    r.w.fail_put_calls = 2; /* both attempts of the first call */
    relay_rig_start(&r);
    assert_true(fakeaws_run(&r.w, outbox_empty, NULL, 5000));
    assert_int_equal(cJSON_GetArraySize(r.w.published), 3);
    assert_ordered(r.w.published);
    struct eddy_relay_stats st;
    eddy_relay_stats(r.relay, &st);
    assert_int_equal(st.failed_entries, 1);
    assert_int_equal(st.retries, 1);
    relay_rig_close(&r);
}

/* n outbox rows in shard 1, one of each of n slot entities e000.. */
static void put_entities(struct relay_rig *r, int n)
{
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "e%03d", i);
        fakeaws_put_outbox(&r->w, 1, "slot", id, 1, 0, 0);
    }
}

static void test_batches_of_ten(void **state)
{
    (void)state;
    struct relay_rig r;
    relay_rig_init(&r);
    r.cfg.inflight_max = 1; /* one call at a time: the split is visible */
    put_entities(&r, 25);
    relay_rig_start(&r);
    assert_true(fakeaws_run(&r.w, outbox_empty, NULL, 5000));
    assert_int_equal(r.w.put_calls, 3);
    assert_int_equal(r.w.max_call_entries, 10);
    assert_int_equal(cJSON_GetArraySize(r.w.published), 25);
    relay_rig_close(&r);
}

static bool all_published(struct fakeaws *w, void *ud)
{
    return (size_t)cJSON_GetArraySize(w->published) == *(size_t *)ud;
}

/* *ud entries published and PK0's rows all deleted */
static bool published_and_gone(struct fakeaws *w, void *ud)
{
    return all_published(w, ud) && fakeaws_count(w, PK0) == 0;
}

/* Shards read in the same loop turn share their PutEvents call. */
static void test_shards_share_calls(void **state)
{
    (void)state;
    struct relay_rig r;
    relay_rig_init(&r);
    r.cfg.shards = 4;
    bool used[4] = {false};
    for (int i = 0; i < 8; i++) {
        char id[16], pk[32];
        snprintf(id, sizeof id, "m%d", i);
        snprintf(pk, sizeof pk, "slot/%s", id);
        used[eddy_record_shard(pk, 4)] = true;
        fakeaws_put_outbox(&r.w, 4, "slot", id, 1, 0, 0);
    }
    assert_true(used[0] + used[1] + used[2] + used[3] >= 2);
    relay_rig_start(&r);
    size_t want = 8;
    assert_true(fakeaws_run(&r.w, all_published, &want, 5000));
    assert_int_equal(r.w.put_calls, 1);
    assert_int_equal(r.w.max_call_entries, 8);
    relay_rig_close(&r);
}

static void test_batches_under_256k(void **state)
{
    (void)state;
    struct relay_rig r;
    relay_rig_init(&r);
    for (int i = 0; i < 9; i++) {
        char id[16];
        snprintf(id, sizeof id, "e%d", i);
        fakeaws_put_outbox(&r.w, 1, "slot", id, 1, 0, 60 * 1024);
    }
    relay_rig_start(&r);
    assert_true(fakeaws_run(&r.w, outbox_empty, NULL, 5000));
    assert_true(r.w.max_call_bytes <= 256 * 1024);
    assert_int_equal(r.w.max_call_entries, 4); /* 4 x 60 KB fit, 5 do not */
    assert_int_equal(r.w.put_calls, 3);
    assert_int_equal(cJSON_GetArraySize(r.w.published), 9);
    relay_rig_close(&r);
}

/* A stored entry over 256 KB (the processor refuses them; be defensive):
 * moved to the dead letters at once; its entity's later entries go on. */
static void test_oversize_entry_dead(void **state)
{
    (void)state;
    struct relay_rig r;
    relay_rig_init(&r);
    fakeaws_put_outbox(&r.w, 1, "slot", "big", 1, 0, 0);
    fakeaws_put_outbox(&r.w, 1, "slot", "big", 3, 0, 0);
    fakeaws_put_outbox(&r.w, 1, "slot", "small", 1, 0, 0);
    /* big/2: an item with a Detail over the limit, written past the builder */
    cJSON *item =
        cJSON_Duplicate(fakeaws_get(&r.w, PK0, "slot/big/00000000000000000001/0000"), true);
    assert_non_null(item);
    cJSON_ReplaceItemInObject(item, "_sk", cJSON_CreateObject());
    cJSON_AddStringToObject(cJSON_GetObjectItem(item, "_sk"), "S",
                            "slot/big/00000000000000000002/0000");
    cJSON_ReplaceItemInObject(item, "_seq", cJSON_CreateObject());
    cJSON_AddStringToObject(cJSON_GetObjectItem(item, "_seq"), "N", "2");
    char *huge = eddy_malloc(300 * 1024);
    memset(huge, 'x', 300 * 1024 - 1);
    huge[300 * 1024 - 1] = '\0';
    cJSON *detail = cJSON_CreateObject();
    cJSON_AddStringToObject(detail, "S", huge);
    cJSON_ReplaceItemInObject(item, "Detail", detail);
    free(huge);
    fakeaws_put(&r.w, item);
    cJSON_Delete(item);
    relay_rig_start(&r);
    assert_true(fakeaws_run(&r.w, published_and_gone, &(size_t){3}, 5000));
    assert_true(published_at(&r.w, "big", 1) < published_at(&r.w, "big", 3));
    assert_true(published_at(&r.w, "small", 1) >= 0);
    assert_int_equal(attempts_of(&r.w, "big", 2), 0); /* never sent */
    const cJSON *dead = fakeaws_get(&r.w, "#outbox-dead/0", "slot/big/00000000000000000002/0000");
    assert_non_null(dead);
    assert_non_null(
        strstr(cJSON_GetObjectItem(cJSON_GetObjectItem(dead, "error"), "S")->valuestring,
               "over the 262144 byte"));
    struct eddy_relay_stats st;
    eddy_relay_stats(r.relay, &st);
    assert_int_equal(st.dead, 1);
    assert_int_equal(eddy_metrics_total(r.metrics, EDDY_METRIC_publish_dead), 1);
    relay_rig_close(&r);
}

/* An entry refused for good (a validation error) is dead after one try; one
 * refused for a reason that might pass is dead after `attempts` tries. Its
 * entity's next entries flow. */
static bool fail_a1(const cJSON *entry, unsigned attempt, void *ud)
{
    (void)attempt;
    (void)ud;
    char id[64];
    int64_t seq, idx;
    fakeaws_detail_meta(cJSON_GetObjectItem(entry, "Detail")->valuestring, id, sizeof id, &seq,
                        &idx);
    return strcmp(id, "a") == 0 && seq == 1;
}

/* The whole of a log file, as a string to free. */
static char *log_text(FILE *log)
{
    long n = ftell(log);
    assert_true(n >= 0);
    char *text = calloc(1, (size_t)n + 1);
    rewind(log);
    assert_int_equal(fread(text, 1, (size_t)n, log), (size_t)n);
    return text;
}

static void dead_case(const char *code, unsigned want_attempts)
{
    struct relay_rig r;
    relay_rig_init(&r);
    r.cfg.attempts = 3;
    for (int64_t seq = 1; seq <= 3; seq++)
        fakeaws_put_outbox(&r.w, 1, "slot", "a", seq, 0, 0);
    r.w.fail_entry = fail_a1;
    r.w.fail_code = code;
    FILE *log = tmpfile(); /* the entries' moves, traced at debug (base/state.h) */
    eddy_log_configure(EDDY_LOG_DEBUG, EDDY_LOG_TEXT, log);
    relay_rig_start(&r);
    assert_true(fakeaws_run(&r.w, published_and_gone, &(size_t){2}, 5000));
    eddy_log_configure(EDDY_LOG_ERROR, EDDY_LOG_TEXT, stderr);
    char *text = log_text(log);
    fclose(log);
    assert_non_null(strstr(text, "relay entry slot/a/00000000000000000001/0000: wait -> sent"));
    assert_non_null(strstr(text, "relay entry slot/a/00000000000000000001/0000: sent -> dead"));
    assert_true((strstr(text, "00000000000000000001/0000: sent -> wait") != NULL) ==
                (want_attempts > 1));
    assert_non_null(strstr(text, "relay entry slot/a/00000000000000000002/0000: sent -> done"));
    free(text);
    assert_int_equal(attempts_of(&r.w, "a", 1), want_attempts);
    assert_true(published_at(&r.w, "a", 2) < published_at(&r.w, "a", 3));
    const cJSON *dead = fakeaws_get(&r.w, "#outbox-dead/0", "slot/a/00000000000000000001/0000");
    assert_non_null(dead);
    assert_non_null(
        strstr(cJSON_GetObjectItem(cJSON_GetObjectItem(dead, "error"), "S")->valuestring, code));
    char n[16];
    snprintf(n, sizeof n, "%u", want_attempts);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(dead, "attempts"), "N")->valuestring, n);
    assert_non_null(cJSON_GetObjectItem(dead, "Detail")); /* the entry, to send again */
    assert_int_equal(r.w.transact_calls, 1);
    assert_int_equal(eddy_metrics_total(r.metrics, EDDY_METRIC_publish_dead), 1);
    relay_rig_close(&r);
}

static void test_refused_for_good_is_dead(void **state)
{
    (void)state;
    dead_case("ValidationException", 1);
}

static void test_refused_attempts_times_is_dead(void **state)
{
    (void)state;
    dead_case("InternalFailure", 3);
}

/* n rows published and deleted, BatchWriteItem leaving keys unprocessed:
 * the next reply leaves `next` keys, or each of `calls` replies one key.
 * Every key is deleted in the end, none given up (its row would be
 * published again by a sweep), and nothing is published twice. */
static void unprocessed_case(int n, int next, int calls, int retries)
{
    struct relay_rig r;
    relay_rig_init(&r);
    put_entities(&r, n);
    r.w.unprocessed_next = next;
    r.w.unprocessed_calls = calls;
    relay_rig_start(&r);
    assert_true(fakeaws_run(&r.w, outbox_empty, NULL, 10000));
    struct eddy_relay_stats st;
    eddy_relay_stats(r.relay, &st);
    assert_int_equal(r.w.unprocessed_calls, 0);
    assert_int_equal(st.deleted, n);
    assert_int_equal(st.delete_retries, retries);
    assert_int_equal(st.published, n);
    assert_int_equal(cJSON_GetArraySize(r.w.sent), n);
    relay_rig_close(&r);
}

static void test_unprocessed_deletes_retried(void **state)
{
    (void)state;
    unprocessed_case(30, 7, 0, 7);
}

/* DynamoDB throttling: every BatchWriteItem of a while leaves a key
 * unprocessed; each key fails once or twice. */
static void test_throttled_deletes_keep_their_keys(void **state)
{
    (void)state;
    unprocessed_case(300, 0, 12, 12);
}

static void test_pages(void **state)
{
    (void)state;
    struct relay_rig r;
    relay_rig_init(&r);
    r.cfg.page_size = 3;
    r.cfg.round_max = 7; /* a second sweep takes the rest */
    r.cfg.poll_ms = 1;
    for (int64_t seq = 1; seq <= 10; seq++)
        fakeaws_put_outbox(&r.w, 1, "slot", "a", seq, 0, 0);
    relay_rig_start(&r);
    assert_true(fakeaws_run(&r.w, outbox_empty, NULL, 5000));
    assert_int_equal(cJSON_GetArraySize(r.w.published), 10);
    assert_int_equal(cJSON_GetArraySize(r.w.sent), 10);
    assert_ordered(r.w.published);
    struct eddy_relay_stats st;
    eddy_relay_stats(r.relay, &st);
    assert_true(st.sweeps >= 2);
    relay_rig_close(&r);
}

/* One entity's backlog does not hold back another of its shard: the sweep
 * reads a page of it and goes on past it, so b leaves in the first calls. */
static bool b_published(struct fakeaws *w, void *ud)
{
    (void)ud;
    return published_at(w, "b", 1) >= 0;
}

static void test_sweep_fair_across_entities(void **state)
{
    (void)state;
    struct relay_rig r;
    relay_rig_init(&r);
    r.cfg.page_size = 20;
    for (int64_t seq = 1; seq <= 300; seq++)
        fakeaws_put_outbox(&r.w, 1, "slot", "a", seq, 0, 0);
    fakeaws_put_outbox(&r.w, 1, "slot", "b", 1, 0, 0); /* sorts after all of a */
    relay_rig_start(&r);
    assert_true(fakeaws_run(&r.w, b_published, NULL, 5000));
    assert_true(published_at(&r.w, "b", 1) <= 1);
    assert_int_equal(r.w.query_calls, 2); /* a page of a, then past a */
    relay_rig_close(&r);
}

/* Publish on commit: entries handed over are published and deleted without
 * any Query; rows younger than the grace are left to their process. */
static bool three_published(struct fakeaws *w, void *ud)
{
    (void)ud;
    return cJSON_GetArraySize(w->published) == 3 && fakeaws_count(w, PK0) == 1;
}

static bool one_query(struct fakeaws *w, void *ud)
{
    (void)ud;
    return w->query_calls == 1 && fakeaws_waiting(w) == 0;
}

static void hand_over(struct relay_rig *r, const char *id, int64_t seq)
{
    struct eddy_record_entity e = {"slot", id, seq, 1700000000, 1700000000000};
    cJSON *data = cJSON_CreateObject();
    struct eddy_record_text t = {0};
    struct eddy_error err = {0};
    assert_int_equal(eddy_record_render_outbox(&e, 1, 0, "Happened", data, NULL, &t, &err),
                     EDDY_OK);
    cJSON *item = cJSON_Parse(t.json);
    fakeaws_put(&r->w, item); /* committed */
    cJSON_Delete(item);
    eddy_relay_on_outbox(&t, r->relay);
    eddy_record_text_cleanup(&t);
    cJSON_Delete(data);
}

static void test_publish_on_commit(void **state)
{
    (void)state;
    struct relay_rig r;
    relay_rig_init(&r);
    r.cfg.grace_ms = 10000;
    fakeaws_put_outbox(&r.w, 1, "slot", "other", 1, 0, 0); /* another process's, young */
    relay_rig_start(&r);
    assert_true(fakeaws_run(&r.w, one_query, NULL, 5000)); /* the first sweep */
    size_t queries = r.w.query_calls;
    hand_over(&r, "a", 1);
    hand_over(&r, "a", 2);
    hand_over(&r, "b", 1);
    assert_true(fakeaws_run(&r.w, three_published, NULL, 5000));
    assert_int_equal(r.w.query_calls, queries);
    assert_int_equal(r.w.put_calls, 2); /* a/1 and b/1 together, then a/2 */
    assert_ordered(r.w.published);
    assert_non_null(fakeaws_get(&r.w, PK0, "slot/other/00000000000000000001/0000"));
    struct eddy_relay_stats st;
    eddy_relay_stats(r.relay, &st);
    assert_int_equal(st.committed, 3);
    assert_int_equal(st.swept, 0);
    /* past the grace, a sweep takes the other process's row */
    eddy_clock_fake_advance(&r.w.rig.fake_clock, 10001);
    eddy_relay_sweep(r.relay, 0);
    assert_true(fakeaws_run(&r.w, outbox_empty, NULL, 5000));
    assert_int_equal(cJSON_GetArraySize(r.w.published), 4);
    relay_rig_close(&r);
}

/* A committed row is taken over, not copied, and its Detail goes out as the
 * row's text holds it, escaped once when the row was rendered: a mark made
 * in that text shows in the PutEvents entry. */
static void test_publish_sends_row_text(void **state)
{
    (void)state;
    struct relay_rig r;
    relay_rig_init(&r);
    relay_rig_start(&r);
    struct eddy_record_entity e = {"slot", "a", 1, 1700000000, 1700000000000};
    cJSON *data = cJSON_Parse("{\"note\":\"say \\\"hi\\\"\"}");
    struct eddy_record_text t = {0};
    struct eddy_error err = {0};
    assert_int_equal(eddy_record_render_outbox(&e, 1, 0, "Happened", data, NULL, &t, &err),
                     EDDY_OK);
    cJSON *item = cJSON_Parse(t.json);
    fakeaws_put(&r.w, item); /* committed */
    cJSON_Delete(item);
    char *hi = strstr(strstr(t.json + t.outbox->detail_at, "say "), "hi");
    assert_non_null(hi);
    memcpy(hi, "HI", 2);
    eddy_relay_publish(r.relay, &t);
    assert_null(t.json);
    assert_null(t.outbox);
    eddy_record_text_cleanup(&t);
    assert_true(fakeaws_run(&r.w, published_and_gone, &(size_t){1}, 5000));
    const cJSON *detail =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(r.w.published, 0), "Detail");
    assert_true(cJSON_IsString(detail));
    assert_non_null(strstr(detail->valuestring, "\"say \\\"HI\\\"\""));
    cJSON_Delete(data);
    relay_rig_close(&r);
}

/* Whether the next request waiting for its answer is a call to op. */
static bool op_waiting(struct fakeaws *w, const char *op)
{
    if (fakeaws_waiting(w) == 0)
        return false;
    const struct eddy_fake_request *req = eddy_fake_request_at(w->rig.fake, w->answered);
    return strstr(eddy_fake_request_header(req, "X-Amz-Target"), op) != NULL;
}

static bool puts_waiting(struct fakeaws *w, void *ud)
{
    (void)ud;
    return op_waiting(w, "PutEvents");
}

/* Stop with PutEvents in flight: they finish, what it holds is published
 * and deleted, no sweep starts. */
static void test_stop_finishes_batch_in_hand(void **state)
{
    (void)state;
    struct relay_rig r;
    relay_rig_init(&r);
    r.cfg.inflight_max = 1;
    for (int64_t seq = 1; seq <= 3; seq++)
        fakeaws_put_outbox(&r.w, 1, "slot", "a", seq, 0, 0);
    r.w.hold_puts = true;
    relay_rig_start(&r);
    assert_true(fakeaws_run(&r.w, puts_waiting, NULL, 5000));
    assert_int_equal(r.w.put_calls, 0);
    eddy_relay_close(r.relay, on_stopped, &r);
    fakeaws_release_puts(&r.w);
    assert_true(fakeaws_run(&r.w, is_stopped, &r, 5000));
    assert_int_equal(r.w.put_calls, 3); /* what it held is published, in order */
    assert_int_equal(cJSON_GetArraySize(r.w.published), 3);
    assert_ordered(r.w.published);
    assert_int_equal(fakeaws_count(&r.w, PK0), 0);
    eddy_metrics_free(r.metrics);
    fakeaws_close(&r.w);
}

static bool two_puts_waiting(struct fakeaws *w, void *ud)
{
    (void)ud;
    return fakeaws_waiting(w) == 2;
}

/* An entry that comes while a call is out goes in a call of its own after a
 * short linger: it does not wait for the call in flight to come back. */
static void test_partial_call_does_not_wait_for_calls_out(void **state)
{
    (void)state;
    struct relay_rig r;
    relay_rig_init(&r);
    relay_rig_start(&r);
    assert_true(fakeaws_run(&r.w, one_query, NULL, 5000)); /* the first sweep */
    r.w.hold_puts = true;
    hand_over(&r, "a", 1);
    assert_true(fakeaws_run(&r.w, puts_waiting, NULL, 5000));
    hand_over(&r, "b", 1);
    assert_true(fakeaws_run(&r.w, two_puts_waiting, NULL, 5000));
    fakeaws_release_puts(&r.w);
    r.w.hold_puts = false;
    assert_true(fakeaws_run(&r.w, published_and_gone, &(size_t){2}, 5000));
    assert_int_equal(r.w.put_calls, 2);
    relay_rig_close(&r);
}

static bool nothing_held(struct fakeaws *w, void *ud)
{
    struct relay_rig *r = ud;
    struct eddy_relay_stats st;
    eddy_relay_stats(r->relay, &st);
    return st.held == 0 && fakeaws_waiting(w) == 0;
}

/* A started rig whose calls wait on what comes, not on the clock (a linger
 * of ten minutes), past its first sweep. */
static void start_lingering(struct relay_rig *r)
{
    relay_rig_init(r);
    r->cfg.linger_ms = 600000;
    relay_rig_start(r);
    assert_true(fakeaws_run(&r->w, one_query, NULL, 5000));
}

/* The entries of a commit in flight are on their way: a call that is not
 * full waits for them (the hint from the commit path), and goes at once
 * when they are in and nothing else is coming. */
static void test_call_waits_for_commit_in_flight(void **state)
{
    (void)state;
    struct relay_rig r;
    start_lingering(&r);
    eddy_relay_on_outbox_expect(+3, r.relay); /* a commit of 3 entries is out */
    hand_over(&r, "a", 1);                    /* another commit, back */
    for (int i = 0; i < 5; i++)
        uv_run(&r.w.rig.loop, UV_RUN_NOWAIT);
    assert_int_equal(fakeaws_waiting(&r.w), 0); /* a/1 waits */
    eddy_relay_on_outbox_expect(-3, r.relay);   /* back: its entries come */
    hand_over(&r, "b", 1);
    hand_over(&r, "c", 1);
    hand_over(&r, "d", 1);
    assert_true(fakeaws_run(&r.w, nothing_held, &r, 5000));
    assert_int_equal(r.w.put_calls, 1);
    assert_int_equal(r.w.max_call_entries, 4);
    /* a commit that is back without entries (it failed) lets the call go */
    eddy_relay_on_outbox_expect(+9, r.relay);
    hand_over(&r, "a", 2);
    for (int i = 0; i < 5; i++)
        uv_run(&r.w.rig.loop, UV_RUN_NOWAIT);
    assert_int_equal(fakeaws_waiting(&r.w), 0);
    eddy_relay_on_outbox_expect(-9, r.relay);
    assert_true(fakeaws_run(&r.w, nothing_held, &r, 5000));
    assert_int_equal(r.w.put_calls, 2);
    relay_rig_close(&r);
}

/* Commits that come back canceled (conflicts: no entries come) stop
 * holding calls for their entries: after ten of them, a commit of three
 * entries in flight does not hold x/1, which the first test's commit did. */
static void test_canceled_commits_do_not_hold_calls(void **state)
{
    (void)state;
    struct relay_rig r;
    start_lingering(&r);
    for (int i = 0; i < 10; i++) {
        eddy_relay_on_outbox_expect(+3, r.relay);
        eddy_relay_on_outbox_expect(-3, r.relay);
    }
    eddy_relay_on_outbox_expect(+3, r.relay);
    hand_over(&r, "x", 1);
    assert_true(fakeaws_run(&r.w, nothing_held, &r, 5000));
    eddy_relay_on_outbox_expect(-3, r.relay);
    assert_int_equal(r.w.put_calls, 1);
    relay_rig_close(&r);
}

/* PutEvents calls sent and not answered. */
static size_t puts_out(const struct fakeaws *w)
{
    size_t n = 0;
    for (size_t i = w->answered; i < eddy_fake_count(w->rig.fake); i++) {
        const struct eddy_fake_request *req = eddy_fake_request_at(w->rig.fake, i);
        n += !req->canceled && strstr(eddy_fake_request_header(req, "X-Amz-Target"), "PutEvents");
    }
    return n;
}

static bool one_put_out(struct fakeaws *w, void *ud)
{
    (void)ud;
    return puts_out(w) == 1;
}

static bool two_puts_out(struct fakeaws *w, void *ud)
{
    (void)ud;
    return puts_out(w) == 2;
}

/* A commit of a few entries does not hold a call it would not fill: with
 * ten entities held (their call out), x/1 goes at once although a commit of
 * two entries is in flight. */
static void test_few_committed_entries_do_not_hold_a_call(void **state)
{
    (void)state;
    struct relay_rig r;
    start_lingering(&r);
    r.w.hold_puts = true;
    const char *ids[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
    for (int k = 0; k < 10; k++)
        hand_over(&r, ids[k], 1); /* a full call, out */
    assert_true(fakeaws_run(&r.w, one_put_out, NULL, 5000));
    eddy_relay_on_outbox_expect(+2, r.relay);
    hand_over(&r, "x", 1);
    assert_true(fakeaws_run(&r.w, two_puts_out, NULL, 5000));
    eddy_relay_on_outbox_expect(-2, r.relay);
    fakeaws_release_puts(&r.w);
    assert_true(fakeaws_run(&r.w, nothing_held, &r, 5000));
    assert_int_equal(r.w.put_calls, 2);
    relay_rig_close(&r);
}

/* Five busy entities, commits bringing some of them while a call is out:
 * the call that is open waits for the call in flight (its entities' next
 * entries wait for it), so the calls stay in step and each carries all
 * five, the most the classic bus allows (one entry of an entity a call). */
static void test_calls_in_step_for_busy_entities(void **state)
{
    (void)state;
    struct relay_rig r;
    start_lingering(&r);
    const char *ids[] = {"a", "b", "c", "d", "e"};
    r.w.hold_puts = true;
    for (int k = 0; k < 3; k++) /* a commit of a, b, c: one call, held */
        hand_over(&r, ids[k], 1);
    assert_true(fakeaws_run(&r.w, one_put_out, NULL, 5000));
    for (int64_t seq = 1; seq <= 4; seq++) {
        /* commits while a call is out: a, b, c's next entries (behind the
         * call), d and e's (their first, or behind the call) */
        for (int k = 0; k < 5; k++)
            hand_over(&r, ids[k], seq + (k < 3));
        /* nothing goes meanwhile (without the wait: d/1 and e/1 alone) */
        assert_false(fakeaws_run(&r.w, two_puts_out, NULL, 100));
        fakeaws_release_puts(&r.w);
        r.w.hold_puts = true;
        assert_true(fakeaws_run(&r.w, one_put_out, NULL, 5000));
    }
    fakeaws_release_puts(&r.w);
    assert_true(fakeaws_run(&r.w, nothing_held, &r, 5000));
    /* 23 entries: a, b, c 1..5 and d, e 1..4, in 5 calls: 3, 5, 5, 5, 5 */
    assert_int_equal(cJSON_GetArraySize(r.w.published), 23);
    assert_int_equal(r.w.put_calls, 5);
    assert_int_equal(r.w.max_call_entries, 5);
    assert_false(r.w.same_entity_in_call);
    assert_ordered(r.w.published);
    relay_rig_close(&r);
}

static bool published_n(struct fakeaws *w, void *ud)
{
    return (size_t)cJSON_GetArraySize(w->published) == *(size_t *)ud;
}

/* Five busy entities whose lanes run dry between commits (PutEvents
 * answers faster than the commits come): a commit brings a, b and c's next
 * entries while one with d and e's is in flight. The call waits for d and
 * e, whose entries are all published, instead of going with three and
 * leaving d and e to a call of two. */
static void test_call_waits_for_dry_busy_entities(void **state)
{
    (void)state;
    struct relay_rig r;
    start_lingering(&r);
    const char *ids[] = {"a", "b", "c", "d", "e"};
    for (int k = 0; k < 5; k++)
        for (int64_t seq = 1; seq <= 4; seq++)
            hand_over(&r, ids[k], seq);
    assert_true(fakeaws_run(&r.w, published_n, &(size_t){20}, 5000));
    assert_int_equal(r.w.put_calls, 4);       /* their deletes wait to fill a batch */
    eddy_relay_on_outbox_expect(+4, r.relay); /* d/5, d/6, e/5, e/6 */
    for (int k = 0; k < 3; k++)
        for (int64_t seq = 5; seq <= 6; seq++)
            hand_over(&r, ids[k], seq);
    for (int i = 0; i < 5; i++)
        uv_run(&r.w.rig.loop, UV_RUN_NOWAIT);
    assert_int_equal(fakeaws_waiting(&r.w), 0); /* a/5, b/5, c/5 wait */
    eddy_relay_on_outbox_expect(-4, r.relay);
    for (int k = 3; k < 5; k++)
        for (int64_t seq = 5; seq <= 6; seq++)
            hand_over(&r, ids[k], seq);
    assert_true(fakeaws_run(&r.w, nothing_held, &r, 5000));
    assert_int_equal(cJSON_GetArraySize(r.w.published), 30);
    assert_int_equal(r.w.put_calls, 6); /* then 5 and 5 */
    assert_false(r.w.same_entity_in_call);
    assert_ordered(r.w.published);
    relay_rig_close(&r);
}

/* On a bus whose calls take an entity's entries together (as the Custom
 * Event Bus does), a commit's entries of an entity join the open call
 * behind the first: a/1, b/1, a/2, b/2 go in one call, not a/1 and b/1
 * first and a/2 and b/2 after their round trip. */
static void test_shared_call_takes_a_commits_entries(void **state)
{
    (void)state;
    struct relay_rig r;
    struct eddy_relay_bus shared = eddy_relay_bus_classic;
    shared.entity_shares_call = true;
    relay_rig_init(&r);
    r.cfg.bus = &shared;
    r.cfg.bus_client = &r.w.eb;
    relay_rig_start(&r);
    assert_true(fakeaws_run(&r.w, one_query, NULL, 5000));
    for (int64_t seq = 1; seq <= 2; seq++) {
        hand_over(&r, "a", seq);
        hand_over(&r, "b", seq);
    }
    assert_true(fakeaws_run(&r.w, nothing_held, &r, 5000));
    assert_int_equal(r.w.put_calls, 1);
    assert_int_equal(r.w.max_call_entries, 4);
    assert_true(r.w.same_entity_in_call);
    assert_ordered(r.w.published);
    relay_rig_close(&r);
}

/* Stop while the round's Query is out: the reply is relayed by nothing,
 * the round ends cleanly (no leak, nothing sent). */
static void test_stop_during_query(void **state)
{
    (void)state;
    struct relay_rig r;
    relay_rig_init(&r);
    fakeaws_put_outbox(&r.w, 1, "slot", "a", 1, 0, 0);
    relay_rig_start(&r);
    uv_run(&r.w.rig.loop, UV_RUN_NOWAIT); /* the poll fires: the Query goes out */
    assert_int_equal(fakeaws_waiting(&r.w), 1);
    relay_rig_close(&r);
    assert_int_equal(r.w.query_calls, 1);
    assert_int_equal(r.w.put_calls, 0);
}

static void test_stop_before_start(void **state)
{
    (void)state;
    struct relay_rig r;
    relay_rig_init(&r);
    struct eddy_error err = {0};
    r.relay = eddy_relay_new(&r.w.rig.loop, &r.w.ddb, &r.w.eb, &r.cfg, NULL, NULL, &err);
    assert_non_null(r.relay);
    assert_false(eddy_relay_holds(r.relay, 0));
    eddy_relay_sweep(r.relay, 0); /* ignored */
    relay_rig_close(&r);
    assert_int_equal(r.w.query_calls, 0);
}

static void test_config_checked(void **state)
{
    (void)state;
    struct relay_rig r;
    relay_rig_init(&r);
    struct eddy_error err = {0};
    r.cfg.shards = 0;
    assert_null(eddy_relay_new(&r.w.rig.loop, &r.w.ddb, &r.w.eb, &r.cfg, NULL, NULL, &err));
    assert_int_equal(err.code, EDDY_ECONFIG);
    r.cfg.shards = 1;
    r.cfg.table = NULL;
    assert_null(eddy_relay_new(&r.w.rig.loop, &r.w.ddb, &r.w.eb, &r.cfg, NULL, NULL, &err));
    assert_int_equal(err.code, EDDY_EINVAL);
    eddy_metrics_free(r.metrics);
    fakeaws_close(&r.w);
}

static bool a1_deleted(struct fakeaws *w, void *ud)
{
    (void)ud;
    return cJSON_GetArraySize(w->published) == 1 &&
           fakeaws_get(w, PK0, "slot/a/00000000000000000001/0000") == NULL;
}

static bool a3_handled(struct fakeaws *w, void *ud)
{
    struct relay_rig *r = ud;
    struct eddy_relay_stats st;
    eddy_relay_stats(r->relay, &st);
    return st.committed + st.overflow == 3 && fakeaws_waiting(w) == 0 && st.held == 0;
}

/* held_max reached: a/2 is left to the sweeps. a/3, committed once there is
 * room again, is left to them too (its entity has an entry there), so the
 * sweeps publish a/2 before a/3 (one a round: a row left for held_max ends
 * it); then a/4 is published at once. */
static void test_overflow_keeps_entity_order(void **state)
{
    (void)state;
    struct relay_rig r;
    relay_rig_init(&r);
    r.cfg.grace_ms = 10000;
    r.cfg.held_max = 1;
    r.cfg.poll_ms = 50;
    relay_rig_start(&r);
    assert_true(fakeaws_run(&r.w, one_query, NULL, 5000));
    r.w.hold_puts = true;
    hand_over(&r, "a", 1);
    assert_true(fakeaws_run(&r.w, puts_waiting, NULL, 5000));
    hand_over(&r, "a", 2); /* held_max reached */
    fakeaws_release_puts(&r.w);
    assert_true(fakeaws_run(&r.w, a1_deleted, NULL, 5000));
    hand_over(&r, "a", 3); /* room again */
    assert_true(fakeaws_run(&r.w, a3_handled, &r, 5000));
    assert_int_equal(cJSON_GetArraySize(r.w.published), 1);
    struct eddy_relay_stats st;
    eddy_relay_stats(r.relay, &st);
    assert_int_equal(st.overflow, 2);
    eddy_clock_fake_advance(&r.w.rig.fake_clock, 10001);
    eddy_relay_sweep(r.relay, 0);
    assert_true(fakeaws_run(&r.w, outbox_empty, NULL, 5000));
    assert_int_equal(cJSON_GetArraySize(r.w.published), 3);
    assert_ordered(r.w.published);
    hand_over(&r, "a", 4); /* all taken: published at once */
    assert_true(fakeaws_run(&r.w, published_and_gone, &(size_t){4}, 5000));
    eddy_relay_stats(r.relay, &st);
    assert_int_equal(st.overflow, 2);
    assert_int_equal(st.committed, 2);
    assert_int_equal(st.swept, 2);
    relay_rig_close(&r);
}

static bool never(struct fakeaws *w, void *ud)
{
    (void)w;
    (void)ud;
    return false;
}

struct sweep_wait {
    struct relay_rig *r;
    uint64_t sweeps; /* before */
};

/* A sweep more than before is done, and what it took is published. */
static bool swept_and_idle(struct fakeaws *w, void *ud)
{
    struct sweep_wait *sw = ud;
    struct eddy_relay_stats st;
    eddy_relay_stats(sw->r->relay, &st);
    return st.sweeps > sw->sweeps && nothing_held(w, sw->r);
}

/* A sweep that leaves a row for held_max ends there: a later row of that
 * entity, on a later page or in the next round, would otherwise be taken
 * (once there is room) before it. The next round starts over. */
static void test_sweep_ends_at_held_max(void **state)
{
    (void)state;
    struct relay_rig r;
    relay_rig_init(&r);
    r.cfg.held_max = 1;
    r.cfg.page_size = 2;
    fakeaws_put_outbox(&r.w, 1, "slot", "a", 1, 0, 0);
    fakeaws_put_outbox(&r.w, 1, "slot", "a", 2, 0, 0);
    fakeaws_put_outbox(&r.w, 1, "slot", "b", 1, 0, 0);
    r.w.hold_puts = true;
    relay_rig_start(&r);
    assert_true(fakeaws_run(&r.w, puts_waiting, NULL, 5000)); /* a/1 taken */
    fakeaws_run(&r.w, never, NULL, 100);
    struct eddy_relay_stats st;
    eddy_relay_stats(r.relay, &st);
    assert_int_equal(st.queries, 1); /* a/2 left: not on to b/1 */
    fakeaws_release_puts(&r.w);
    for (int round = 0; round < 5 && fakeaws_count(&r.w, PK0) > 0; round++) {
        assert_true(fakeaws_run(&r.w, nothing_held, &r, 5000));
        eddy_relay_stats(r.relay, &st);
        struct sweep_wait sw = {&r, st.sweeps};
        eddy_relay_sweep(r.relay, 0);
        assert_true(fakeaws_run(&r.w, swept_and_idle, &sw, 5000));
    }
    assert_int_equal(fakeaws_count(&r.w, PK0), 0);
    assert_int_equal(cJSON_GetArraySize(r.w.published), 3);
    assert_ordered(r.w.published);
    relay_rig_close(&r);
}

/* An outbox row as the commit path renders it, of outbound type type. */
static void hand_over_type(struct relay_rig *r, const char *id, int64_t seq, const char *type)
{
    struct eddy_record_entity e = {"slot", id, seq, 1700000000, 1700000000000};
    cJSON *data = cJSON_CreateObject();
    struct eddy_record_text t = {0};
    struct eddy_error err = {0};
    assert_int_equal(eddy_record_render_outbox(&e, 1, 0, type, data, NULL, &t, &err), EDDY_OK);
    cJSON *item = cJSON_Parse(t.json);
    fakeaws_put(&r->w, item); /* committed */
    cJSON_Delete(item);
    eddy_relay_on_outbox(&t, r->relay);
    eddy_record_text_cleanup(&t);
    cJSON_Delete(data);
}

/* PutEvents to the fake bus through a client that, as the Custom Event
 * Bus's does, refuses the whole call before sending it when an entry's
 * DetailType is over 128 characters. */
static eddy_err put_checked(void *client, const struct eddy_eb_entry *entries,
                            const struct eddy_record_outbox *const *rows, size_t n,
                            eddy_eb_put_cb cb, void *ud, struct eddy_error *err)
{
    (void)rows;
    for (size_t i = 0; i < n; i++)
        if (strlen(entries[i].detail_type) > 128)
            return eddy_error_set(err, EDDY_ELIMIT, "entry %zu: DetailType over 128", i);
    return eddy_eb_put_events(client, entries, n, cb, ud, NULL, err);
}

static bool dead_and_two_published(struct fakeaws *w, void *ud)
{
    struct relay_rig *r = ud;
    struct eddy_relay_stats st;
    eddy_relay_stats(r->relay, &st);
    return st.dead == 1 && cJSON_GetArraySize(w->published) == 2 && fakeaws_count(w, PK0) == 0;
}

/* bad/1 (a DetailType of 200 characters) is refused by the client; bad/2
 * and ok/1 come in the same turn. bad/1 is dead with the limit named,
 * bad/2 and ok/1 are published. */
static const cJSON *refused_entry_case(struct relay_rig *r, struct eddy_relay_bus *bus)
{
    bus->put = put_checked;
    relay_rig_init(r);
    r->cfg.bus = bus;
    r->cfg.bus_client = &r->w.eb;
    relay_rig_start(r);
    assert_true(fakeaws_run(&r->w, one_query, NULL, 5000));
    char type[201];
    memset(type, 'T', sizeof type - 1);
    type[sizeof type - 1] = '\0';
    hand_over_type(r, "bad", 1, type);
    hand_over_type(r, "bad", 2, "Happened");
    hand_over_type(r, "ok", 1, "Happened");
    assert_true(fakeaws_run(&r->w, dead_and_two_published, r, 5000));
    assert_true(published_at(&r->w, "bad", 2) >= 0);
    assert_true(published_at(&r->w, "ok", 1) >= 0);
    const cJSON *dead = fakeaws_get(&r->w, "#outbox-dead/0", "slot/bad/00000000000000000001/0000");
    assert_non_null(dead);
    const char *error = cJSON_GetObjectItem(cJSON_GetObjectItem(dead, "error"), "S")->valuestring;
    assert_non_null(strstr(error, "DetailType"));
    assert_non_null(strstr(error, "128"));
    return dead;
}

/* On the Custom Event Bus an entry over a limit of the API's on an entry's
 * fields is dead before it joins a call: never sent, nothing else held up. */
static void test_v2_entry_over_a_limit_dead(void **state)
{
    (void)state;
    struct relay_rig r;
    struct eddy_relay_bus bus = eddy_relay_bus_v2;
    refused_entry_case(&r, &bus);
    assert_int_equal(r.w.put_calls, 1); /* bad/2 and ok/1 together */
    relay_rig_close(&r);
}

/* A bus client that refuses a call before sending it (an entry the relay
 * did not know to be invalid): the call is not sent again as it was; its
 * entries go each in a call of its own, the refused one is dead. */
static void test_call_refused_before_sending(void **state)
{
    (void)state;
    struct relay_rig r;
    struct eddy_relay_bus bus = eddy_relay_bus_classic;
    const cJSON *dead = refused_entry_case(&r, &bus);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(dead, "attempts"), "N")->valuestring, "1");
    relay_rig_close(&r);
}

/* A renewal goes out before the lease runs out locally and comes back after:
 * for that moment the shard is not held, and its sweep timer fires. The
 * lease was neither lost nor given back, so its sweeps go on once the
 * renewal is in: a dead process's row is still swept. */
static bool shard_held(struct fakeaws *w, void *ud)
{
    (void)w;
    return eddy_relay_holds(ud, 0);
}

static bool swept_once(struct fakeaws *w, void *ud)
{
    struct eddy_relay_stats st;
    eddy_relay_stats(ud, &st);
    return st.sweeps == 1 && st.queries == 1 && fakeaws_waiting(w) == 0;
}

static bool renewal_waiting(struct fakeaws *w, void *ud)
{
    (void)ud;
    return op_waiting(w, "TransactWriteItems");
}

static void test_sweeps_go_on_after_a_lease_lapse(void **state)
{
    (void)state;
    struct relay_rig r;
    relay_rig_init(&r);
    const uint32_t lease_ms = 3000000; /* its ticks (a third of it) only by hand */
    r.cfg.lease_ms = lease_ms;
    r.cfg.poll_ms = 300;
    r.cfg.sweep_max_ms = 300;
    relay_rig_start(&r);
    assert_true(fakeaws_run(&r.w, shard_held, r.relay, 5000));
    assert_true(fakeaws_run(&r.w, swept_once, r.relay, 5000)); /* next in 300 ms */
    eddy_clock_fake_advance(&r.w.rig.fake_clock, lease_ms * 85 / 100);
    r.w.hold_target = "TransactWriteItems";
    assert_true(eddy_relay_lease_tick(r.relay));
    assert_true(fakeaws_run(&r.w, renewal_waiting, NULL, 5000));
    eddy_clock_fake_advance(&r.w.rig.fake_clock, lease_ms / 10); /* past the local expiry */
    assert_false(eddy_relay_holds(r.relay, 0));
    fakeaws_run(&r.w, never, NULL, 400); /* the sweep timer fires meanwhile */
    r.w.hold_target = NULL;
    assert_true(fakeaws_run(&r.w, shard_held, r.relay, 5000)); /* the renewal is in */
    fakeaws_put_outbox(&r.w, 1, "slot", "dead", 1, 0, 0);
    assert_true(fakeaws_run(&r.w, outbox_empty, NULL, 5000));
    assert_int_equal(cJSON_GetArraySize(r.w.published), 1);
    relay_rig_close(&r);
}

int main(void)
{
    eddy_log_configure(EDDY_LOG_ERROR, EDDY_LOG_TEXT, stderr);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publishes_in_order_and_deletes),
        cmocka_unit_test(test_failed_entry_resent_alone_entity_waits),
        cmocka_unit_test(test_failed_call_retried),
        cmocka_unit_test(test_batches_of_ten),
        cmocka_unit_test(test_shards_share_calls),
        cmocka_unit_test(test_batches_under_256k),
        cmocka_unit_test(test_oversize_entry_dead),
        cmocka_unit_test(test_refused_for_good_is_dead),
        cmocka_unit_test(test_refused_attempts_times_is_dead),
        cmocka_unit_test(test_unprocessed_deletes_retried),
        cmocka_unit_test(test_pages),
        cmocka_unit_test(test_sweep_fair_across_entities),
        cmocka_unit_test(test_publish_on_commit),
        cmocka_unit_test(test_publish_sends_row_text),
        cmocka_unit_test(test_stop_finishes_batch_in_hand),
        cmocka_unit_test(test_partial_call_does_not_wait_for_calls_out),
        cmocka_unit_test(test_call_waits_for_commit_in_flight),
        cmocka_unit_test(test_canceled_commits_do_not_hold_calls),
        cmocka_unit_test(test_calls_in_step_for_busy_entities),
        cmocka_unit_test(test_call_waits_for_dry_busy_entities),
        cmocka_unit_test(test_shared_call_takes_a_commits_entries),
        cmocka_unit_test(test_few_committed_entries_do_not_hold_a_call),
        cmocka_unit_test(test_stop_during_query),
        cmocka_unit_test(test_stop_before_start),
        cmocka_unit_test(test_config_checked),
        cmocka_unit_test(test_sweeps_go_on_after_a_lease_lapse),
        cmocka_unit_test(test_v2_entry_over_a_limit_dead),
        cmocka_unit_test(test_call_refused_before_sending),
        cmocka_unit_test(test_overflow_keeps_entity_order),
        cmocka_unit_test(test_sweep_ends_at_held_max),
        cmocka_unit_test(test_throttled_deletes_keep_their_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
