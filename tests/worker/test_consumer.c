/*
 * test_consumer.c - the consumer against the fake transport and a fake
 * processor: lanes and coalescing, per-event results and the failure
 * policies, FIFO release after a failure, poison to the DLQ, drain, and the
 * store's circuit breaker (messages held, polls stopped, probes, resume).
 */
#include "rig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "worker/consumer.h"
#include "base/metrics.h"

#define ATTRS "{\"Attributes\":{\"VisibilityTimeout\":\"30\"}}"

struct fakeproc {
    struct eddy_proc_batch *b[16];
    int n;
};

static eddy_err fake_submit(void *ud, struct eddy_proc_batch *batch)
{
    struct fakeproc *fp = ud;
    assert_true(fp->n < 16);
    fp->b[fp->n++] = batch;
    return EDDY_OK;
}

static void complete(struct eddy_proc_batch *b, const enum eddy_event_result *res)
{
    for (size_t i = 0; i < b->nevents; i++) {
        b->events[i].result = res[i];
        snprintf(b->events[i].reason, sizeof b->events[i].reason, "reason %zu", i);
    }
    b->cb(b, EDDY_OK, b->ud);
}

static char *message(const char *id, const char *entity, const char *type)
{
    static char buf[512];
    if (entity == NULL) {
        snprintf(buf, sizeof buf,
                 "{\"MessageId\":\"%s\",\"ReceiptHandle\":\"rh-%s\",\"Body\":\"nope {\","
                 "\"Attributes\":{\"ApproximateReceiveCount\":\"1\"}}",
                 id, id);
    } else {
        snprintf(buf, sizeof buf,
                 "{\"MessageId\":\"%s\",\"ReceiptHandle\":\"rh-%s\",\"Body\":"
                 "\"{\\\"id\\\":\\\"ev-%s\\\",\\\"detail-type\\\":\\\"%s\\\",\\\"detail\\\":"
                 "{\\\"id\\\":\\\"%s\\\"}}\",\"Attributes\":{\"ApproximateReceiveCount\":\"1\","
                 "\"MessageGroupId\":\"g1\"}}",
                 id, id, id, type, entity);
    }
    return buf;
}

/*
 * {"Messages":[...]} from a line of "id:entity" words, "id" alone being a
 * poison body: "b1:B a1:A p1"; each message at its nth receive (1 to 9).
 */
static void push_receive_nth(struct rig *r, const char *line, int nth)
{
    assert_true(nth >= 1 && nth <= 9);
    char *json = malloc(8192);
    strcpy(json, "{\"Messages\":[");
    char words[256];
    snprintf(words, sizeof words, "%s", line);
    int n = 0;
    for (char *save = NULL, *w = strtok_r(words, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        char *colon = strchr(w, ':');
        if (colon)
            *colon = '\0';
        if (n++)
            strcat(json, ",");
        char *m = message(w, colon ? colon + 1 : NULL, "InsertCoin");
        char *count = strstr(m, "\"ApproximateReceiveCount\":\"1\"");
        count[strlen("\"ApproximateReceiveCount\":\"")] = (char)('0' + nth);
        strcat(json, m);
    }
    strcat(json, "]}");
    eddy_fake_push_json(r->fake, 200, json);
    free(json);
}

static void push_receive(struct rig *r, const char *line)
{
    push_receive_nth(r, line, 1);
}

/* The breaker's probe: records each call; the test answers it. */
struct fakeprobe {
    int calls;
    eddy_consumer_probe_done_fn done;
    void *done_ud;
};

static eddy_err fake_probe(void *ud, eddy_consumer_probe_done_fn done, void *done_ud)
{
    struct fakeprobe *p = ud;
    assert_null(p->done); /* one probe at a time */
    p->calls++;
    p->done = done;
    p->done_ud = done_ud;
    return EDDY_OK;
}

static void answer_probe(struct fakeprobe *p, eddy_err err)
{
    eddy_consumer_probe_done_fn done = p->done;
    assert_non_null(done);
    p->done = NULL;
    done(err, err ? "connection refused" : NULL, p->done_ud);
}

struct setup {
    struct rig r;
    struct fakeprobe probe;
    struct eddy_envelope_spec spec;
    struct eddy_metrics *m;
    struct fakeproc fp;
    struct eddy_consumer *c;
    int drained;
    size_t inflight_at_close; /* in hand when the close called back */
    char *log;                /* the log text, while captured */
    size_t log_len;
    FILE *log_file;
};

#define DLQ "http://127.0.0.1:4566/123456789012/dlq"
/* A queue whose redrive policy moves a message to the DLQ after 3 receives. */
#define REDRIVE_ATTRS                                                                              \
    "{\"Attributes\":{\"VisibilityTimeout\":\"30\",\"RedrivePolicy\":"                             \
    "\"{\\\"deadLetterTargetArn\\\":\\\"arn:aws:sqs:us-east-1:123456789012:"                       \
    "dlq\\\",\\\"maxReceiveCount\\\":3}\"}}"

/* What a test changes of the usual consumer; zero: the usual. */
struct opts {
    const char *url;        /* NULL: RIG_QURL */
    const char *dlq;        /* NULL: none (poison then redriven); else rejections go there too */
    int max_inflight;       /* 0: 10 */
    const char *attrs;      /* GetQueueAttributes' reply; NULL: ATTRS */
    int pollers;            /* 0: 1 */
    bool capture_log;       /* warnings into s->log until teardown */
    uint32_t drain_poll_ms; /* 0: long polls canceled at close */
};

/* The consumer's close callback; the consumer is freed after it. */
static void on_drained(void *ud)
{
    struct setup *s = ud;
    s->inflight_at_close = eddy_consumer_inflight(s->c);
    s->c = NULL;
    s->drained = 1;
}

static void setup(struct setup *s, struct opts o)
{
    memset(s, 0, sizeof *s);
    if (o.capture_log) {
        s->log_file = open_memstream(&s->log, &s->log_len);
        eddy_log_configure(EDDY_LOG_WARN, EDDY_LOG_JSON, s->log_file);
    }
    rig_init_sqs(&s->r);
    struct eddy_error err = {0};
    assert_int_equal(eddy_envelope_spec_init(&s->spec, NULL, NULL, NULL, NULL, &err), EDDY_OK);
    s->m = eddy_metrics_new(EDDY_METRICS_OFF);
    struct eddy_consumer_config cfg = {.queue_url = o.url ? o.url : RIG_QURL,
                                       .dlq_url = o.dlq,
                                       .max_inflight = o.max_inflight ? o.max_inflight : 10,
                                       .pollers = o.pollers ? o.pollers : 1,
                                       .wait_s = 0,
                                       .drain_poll_ms = o.drain_poll_ms,
                                       .coalesce_max = 16,
                                       .rejected_to_dlq = o.dlq != NULL,
                                       .on_poison = o.dlq ? EDDY_POISON_DLQ : EDDY_POISON_REDRIVE,
                                       .spec = &s->spec,
                                       .submit = fake_submit,
                                       .submit_ud = &s->fp,
                                       .probe = fake_probe,
                                       .probe_ud = &s->probe,
                                       .probe_min_ms = 1,
                                       .probe_max_ms = 2,
                                       .metrics = s->m,
                                       .seed = 3,
                                       .ack_flush_ms = 1};
    s->c = eddy_consumer_new(&s->r.loop, &s->r.sqs, &cfg, &err);
    assert_non_null(s->c);
    eddy_fake_push_json(s->r.fake, 200, o.attrs ? o.attrs : ATTRS);
    eddy_consumer_start(s->c);
}

/*
 * Close the consumer (if the test has not begun to), answer the DLQ sends
 * still out (dlq_replies) and the acknowledgements, and wait for the close
 * callback: nothing is left in hand.
 */
static void close_consumer(struct setup *s, int dlq_replies)
{
    if (s->c)
        eddy_consumer_close(s->c, on_drained, s);
    for (int i = 0; i < dlq_replies; i++)
        eddy_fake_push_json(s->r.fake, 200, "{\"MessageId\":\"d1\"}");
    for (int i = 0; i < 8; i++)
        eddy_fake_push_json(s->r.fake, 200, RIG_ALL_OK);
    rig_run_until(&s->r, &s->drained, 2000);
    assert_true(s->drained);
    assert_int_equal(s->inflight_at_close, 0);
}

/* The log captured since setup (valid until teardown). */
static const char *captured_log(struct setup *s)
{
    fflush(s->log_file);
    return s->log;
}

static void teardown(struct setup *s)
{
    if (s->log_file) {
        eddy_log_configure(EDDY_LOG_WARN, EDDY_LOG_JSON, stderr);
        fclose(s->log_file);
        free(s->log);
    }
    eddy_metrics_free(s->m);
    eddy_envelope_spec_cleanup(&s->spec);
    rig_close(&s->r);
}

/* Every request of op whose body holds needle. */
static int bodies_with(struct rig *r, const char *op, const char *needle)
{
    int n = 0;
    for (size_t i = 0; i < eddy_fake_count(r->fake); i++)
        if (strcmp(rig_op(r, i), op) == 0 && strstr(eddy_fake_request_at(r->fake, i)->body, needle))
            n++;
    return n;
}

/* A row of what the requests sent hold: n requests of op with needle. */
struct sent {
    const char *op, *needle;
    int n;
};

static void expect_sent(struct rig *r, const struct sent *rows, size_t nrows)
{
    for (size_t i = 0; i < nrows; i++)
        if (bodies_with(r, rows[i].op, rows[i].needle) != rows[i].n)
            fail_msg("%s with %s: %d, not %d", rows[i].op, rows[i].needle,
                     bodies_with(r, rows[i].op, rows[i].needle), rows[i].n);
}

/* A row of the metrics' totals. */
struct total {
    enum eddy_metric_counter metric;
    uint64_t n;
};

static void expect_totals(struct eddy_metrics *m, const struct total *rows, size_t nrows)
{
    for (size_t i = 0; i < nrows; i++)
        assert_int_equal(eddy_metrics_total(m, rows[i].metric), rows[i].n);
}

#define EXPECT_SENT(r, ...)                                                                        \
    expect_sent(r, (const struct sent[]){__VA_ARGS__},                                             \
                sizeof((const struct sent[]){__VA_ARGS__}) / sizeof(struct sent))
#define EXPECT_TOTALS(m, ...)                                                                      \
    expect_totals(m, (const struct total[]){__VA_ARGS__},                                          \
                  sizeof((const struct total[]){__VA_ARGS__}) / sizeof(struct total))

/* Run the loop until n requests of op went out (or give up after 2,000 turns). */
static void run_until_sent(struct setup *s, const char *op, size_t n)
{
    for (int turns = 0; rig_count(&s->r, op) < n && turns < 2000; turns++)
        uv_run(&s->r.loop, UV_RUN_ONCE);
}

static int fp_at_least(struct setup *s, int n)
{
    for (int turns = 0; s->fp.n < n && turns < 2000; turns++)
        uv_run(&s->r.loop, UV_RUN_ONCE);
    return s->fp.n >= n;
}

/* One receive of line (see push_receive), then wait for n batches submitted. */
static void receive(struct setup *s, const char *line, int batches)
{
    push_receive(&s->r, line);
    assert_true(fp_at_least(s, batches));
}

static struct eddy_proc_batch *batch_of(struct setup *s, const char *entity)
{
    for (int i = 0; i < s->fp.n; i++)
        if (strcmp(s->fp.b[i]->entity_id, entity) == 0)
            return s->fp.b[i];
    fail_msg("no batch for %s", entity);
    return NULL;
}

static void test_lanes_coalesce_and_results(void **state)
{
    (void)state;
    struct setup s;
    setup(&s, (struct opts){0});
    receive(&s, "b1:B a1:A a2:A a3:A p1", 2);
    assert_string_equal(s.fp.b[0]->entity_id, "B");
    assert_string_equal(s.fp.b[1]->entity_id, "A");
    assert_int_equal(s.fp.b[1]->nevents, 1);
    assert_int_equal(eddy_consumer_inflight(s.c), 4); /* the poison left at once */
    /* A's first batch done: the two waiting events go together, in order */
    complete(s.fp.b[1], (enum eddy_event_result[]){EDDY_EV_APPLIED});
    assert_true(fp_at_least(&s, 3));
    assert_int_equal(s.fp.b[2]->nevents, 2);
    assert_string_equal(s.fp.b[2]->events[0].event_id, "ev-a2");
    assert_string_equal(s.fp.b[2]->events[1].event_id, "ev-a3");
    eddy_consumer_close(s.c, on_drained, &s);
    complete(s.fp.b[0], (enum eddy_event_result[]){EDDY_EV_REJECTED});
    complete(s.fp.b[2], (enum eddy_event_result[]){EDDY_EV_DUPLICATE, EDDY_EV_ERROR});
    close_consumer(&s, 0);
    teardown(&s);
}

/* A lane freed by one entity and reused for a longer entity id holds it
 * whole (lanes are sized to their keys). */
static void test_lane_reused_for_longer_id(void **state)
{
    (void)state;
    struct setup s;
    setup(&s, (struct opts){0});
    receive(&s, "a1:A", 1);
    complete(s.fp.b[0], (enum eddy_event_result[]){EDDY_EV_APPLIED});
    char id[201], line[256];
    memset(id, 'L', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    snprintf(line, sizeof line, "b1:%s", id);
    receive(&s, line, 2);
    assert_string_equal(s.fp.b[1]->entity_id, id);
    complete(s.fp.b[1], (enum eddy_event_result[]){EDDY_EV_APPLIED});
    close_consumer(&s, 0);
    EXPECT_SENT(&s.r, {"DeleteMessageBatch", "\"rh-a1\"", 1},
                {"DeleteMessageBatch", "\"rh-b1\"", 1});
    teardown(&s);
}

/* A poll asks for a full batch of 10, and only when 10 fit under max_inflight. */
static void test_polls_for_full_batches(void **state)
{
    (void)state;
    struct setup s;
    setup(&s, (struct opts){0}); /* max_inflight 10, one poller */
    receive(&s, "a1:A b1:B c1:C", 3);
    for (int i = 0; i < 20; i++)
        uv_run(&s.r.loop, UV_RUN_NOWAIT);
    /* 3 in flight: no poll for the 7 slots left */
    assert_int_equal(rig_count(&s.r, "ReceiveMessage"), 1);
    for (int i = 0; i < 3; i++)
        complete(s.fp.b[i], (enum eddy_event_result[]){EDDY_EV_APPLIED});
    run_until_sent(&s, "ReceiveMessage", 2);
    assert_int_equal(rig_count(&s.r, "ReceiveMessage"), 2);
    EXPECT_SENT(&s.r, {"ReceiveMessage", "\"MaxNumberOfMessages\":10", 2});
    close_consumer(&s, 0);
    teardown(&s);
}

static void run_until_receives(struct setup *s, size_t n)
{
    run_until_sent(s, "ReceiveMessage", n);
    for (int i = 0; i < 20; i++)
        uv_run(&s->r.loop, UV_RUN_NOWAIT);
}

/* Complete a batch that lost n OCC races (and then committed). */
static void complete_after_conflicts(struct eddy_proc_batch *b, unsigned n)
{
    b->conflicts = n;
    complete(b, (enum eddy_event_result[]){EDDY_EV_APPLIED});
}

/*
 * Contention: a batch that lost OCC races lowers the window by 4 for each,
 * down to one receive (10); at 10, one more pauses the receives (one pause
 * at a time): the receive that was out returns, and the next waits for the
 * pause to end, though a committed batch without a conflict raised the
 * window by 1.
 */
static void test_contention_window_and_pauses(void **state)
{
    (void)state;
    struct setup s;
    setup(&s, (struct opts){.max_inflight = 30});
    receive(&s, "a1:A b1:B c1:C d1:D e1:E f1:F", 6);
    run_until_receives(&s, 2); /* room for 24: a receive is out */
    assert_int_equal(eddy_consumer_window(s.c), 30);
    complete_after_conflicts(s.fp.b[0], 2);
    assert_int_equal(eddy_consumer_window(s.c), 22);
    for (int i = 1; i < 4; i++)
        complete_after_conflicts(s.fp.b[i], 1);
    assert_int_equal(eddy_consumer_window(s.c), 10);
    assert_false(eddy_consumer_yielding(s.c));
    complete_after_conflicts(s.fp.b[4], 1);
    assert_true(eddy_consumer_yielding(s.c));
    complete_after_conflicts(s.fp.b[5], 3); /* during the pause: no other */
    assert_int_equal(eddy_consumer_window(s.c), 10);
    assert_int_equal(eddy_metrics_total(s.m, EDDY_METRIC_contention_pauses), 1);
    receive(&s, "g1:G", 7);
    complete_after_conflicts(s.fp.b[6], 0); /* room for a receive again */
    assert_int_equal(eddy_consumer_window(s.c), 11);
    for (int i = 0; i < 20; i++)
        uv_run(&s.r.loop, UV_RUN_NOWAIT);
    assert_int_equal(rig_count(&s.r, "ReceiveMessage"), 2); /* none while it pauses */
    run_until_sent(&s, "ReceiveMessage", 3);
    assert_int_equal(rig_count(&s.r, "ReceiveMessage"), 3);
    assert_false(eddy_consumer_yielding(s.c));
    close_consumer(&s, 0);
    teardown(&s);
}

/* An empty queue is watched by one long poll, not by every poller: the
 * others park after an empty receive and join again when messages come. */
static void test_empty_queue_one_poll(void **state)
{
    (void)state;
    struct setup s;
    setup(&s, (struct opts){.max_inflight = 40, .pollers = 3});
    for (int i = 0; i < 3; i++)
        eddy_fake_push_json(s.r.fake, 200, "{\"Messages\":[]}");
    run_until_receives(&s, 4);
    assert_int_equal(rig_count(&s.r, "ReceiveMessage"), 4); /* 3, then one goes on */
    receive(&s, "a1:A", 1); /* the one still polling gets a message */
    run_until_receives(&s, 7);
    assert_int_equal(rig_count(&s.r, "ReceiveMessage"), 7); /* all three poll again */
    complete(s.fp.b[0], (enum eddy_event_result[]){EDDY_EV_APPLIED});
    close_consumer(&s, 0);
    teardown(&s);
}

static void test_results_reach_sqs(void **state)
{
    (void)state;
    struct setup s;
    setup(&s, (struct opts){0});
    receive(&s, "x1:X y1:Y p1", 2);
    eddy_consumer_close(s.c, on_drained, &s);
    complete(s.fp.b[0], (enum eddy_event_result[]){EDDY_EV_APPLIED});
    complete(s.fp.b[1], (enum eddy_event_result[]){EDDY_EV_ERROR});
    close_consumer(&s, 0);
    /* transient and poison (redrive): visible again after 1..2 s (receive count 1) */
    EXPECT_SENT(&s.r, {"DeleteMessageBatch", "\"rh-x1\"", 1},
                {"DeleteMessageBatch", "\"rh-y1\"", 0},
                {"ChangeMessageVisibilityBatch", "\"rh-y1\"", 1},
                {"ChangeMessageVisibilityBatch", "\"rh-p1\"", 1},
                {"ChangeMessageVisibilityBatch", "\"VisibilityTimeout\":0", 0});
    EXPECT_TOTALS(s.m, {EDDY_METRIC_received, 3}, {EDDY_METRIC_processed, 1},
                  {EDDY_METRIC_poison, 1}, {EDDY_METRIC_retries, 1});
    teardown(&s);
}

/*
 * A batch that fails as a whole (a stored state that does not load) is
 * retried, and the log says why, not only the error's name.
 */
static void test_batch_error_logged_with_reason(void **state)
{
    (void)state;
    struct setup s;
    setup(&s, (struct opts){.capture_log = true});
    receive(&s, "x1:X", 1);
    eddy_consumer_close(s.c, on_drained, &s);
    struct eddy_proc_batch *b = s.fp.b[0];
    b->events[0].result = EDDY_EV_ERROR;
    snprintf(b->events[0].reason, sizeof b->events[0].reason,
             "state item of machine/X does not load: balance: missing");
    b->cb(b, EDDY_EPARSE, b->ud);
    close_consumer(&s, 0);
    assert_non_null(strstr(captured_log(&s), "does not load: balance: missing"));
    EXPECT_TOTALS(s.m, {EDDY_METRIC_retries, 1});
    teardown(&s);
}

static void test_fifo_releases_rest_of_group(void **state)
{
    (void)state;
    struct setup s;
    setup(&s, (struct opts){.url = RIG_QURL ".fifo"});
    receive(&s, "f1:E1 f2:E1 f3:E2", 1);
    assert_true(eddy_consumer_fifo(s.c));
    assert_int_equal(s.fp.b[0]->nevents, 1);
    eddy_consumer_close(s.c, on_drained, &s);
    complete(s.fp.b[0], (enum eddy_event_result[]){EDDY_EV_ERROR});
    close_consumer(&s, 0);
    assert_int_equal(s.fp.n, 1); /* f2 and f3 were never processed */
    EXPECT_SENT(&s.r, {"ChangeMessageVisibilityBatch", "\"rh-f2\"", 1},
                {"ChangeMessageVisibilityBatch", "\"rh-f3\"", 1},
                {"DeleteMessageBatch", "rh-f", 0});
    teardown(&s);
}

static void test_poison_to_dlq(void **state)
{
    (void)state;
    struct setup s;
    setup(&s, (struct opts){.dlq = DLQ});
    push_receive(&s.r, "p9");
    run_until_sent(&s, "SendMessage", 1);
    assert_int_equal(rig_count(&s.r, "SendMessage"), 1);
    close_consumer(&s, 1);
    EXPECT_SENT(&s.r, {"SendMessage", "eddy-error", 1}, {"SendMessage", "not JSON", 1},
                {"SendMessage", "\"p9\"", 1}, {"DeleteMessageBatch", "\"rh-p9\"", 1});
    teardown(&s);
}

/* The one SendMessage request's body, parsed. */
static cJSON *sent_message(struct setup *s)
{
    cJSON *sent = NULL;
    for (size_t i = 0; i < eddy_fake_count(s->r.fake); i++)
        if (strcmp(rig_op(&s->r, i), "SendMessage") == 0)
            sent = cJSON_Parse(eddy_fake_request_at(s->r.fake, i)->body);
    assert_non_null(sent);
    return sent;
}

/* A poison body just under 256 KiB: with eddy-error and eddy-message-id it no
 * longer fits one SQS message, so it is cut until body and attributes fit,
 * and eddy-truncated keeps its length. */
static void test_poison_near_limit_fits_dlq(void **state)
{
    (void)state;
    struct setup s;
    setup(&s, (struct opts){.dlq = DLQ});
    size_t len = EDDY_SQS_MAX_MESSAGE_BYTES - 40;
    char *body = malloc(len + 1);
    memset(body, 'x', len);
    memcpy(body + len - 4, "\xe2\x82\xac!", 4); /* a 3-byte character near the cut */
    body[len] = '\0';
    cJSON *reply = cJSON_CreateObject();
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "MessageId", "big1");
    cJSON_AddStringToObject(m, "ReceiptHandle", "rh-big1");
    cJSON_AddStringToObject(m, "Body", body);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(reply, "Messages"), m);
    char *json = cJSON_PrintUnformatted(reply);
    eddy_fake_push_json(s.r.fake, 200, json);
    free(json);
    cJSON_Delete(reply);
    /* sent to the DLQ, or (refused) its visibility changed for the redrive */
    for (int turns = 0; rig_count(&s.r, "SendMessage") == 0 &&
                        rig_count(&s.r, "ChangeMessageVisibilityBatch") == 0 && turns < 2000;
         turns++)
        uv_run(&s.r.loop, UV_RUN_ONCE);
    assert_int_equal(rig_count(&s.r, "SendMessage"), 1);
    cJSON *sent = sent_message(&s);
    const char *b = cJSON_GetObjectItemCaseSensitive(sent, "MessageBody")->valuestring;
    size_t total = strlen(b);
    const cJSON *attr;
    cJSON_ArrayForEach(attr, cJSON_GetObjectItemCaseSensitive(sent, "MessageAttributes"))
    {
        total += strlen(attr->string);
        total += strlen(cJSON_GetObjectItemCaseSensitive(attr, "DataType")->valuestring);
        total += strlen(cJSON_GetObjectItemCaseSensitive(attr, "StringValue")->valuestring);
    }
    assert_true(total <= EDDY_SQS_MAX_MESSAGE_BYTES);
    assert_true(strlen(b) < len && strncmp(b, body, strlen(b)) == 0);
    assert_true(((unsigned char)body[strlen(b)] & 0xC0) != 0x80); /* cut between characters */
    const cJSON *cut = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(sent, "MessageAttributes"), "eddy-truncated");
    assert_non_null(cut);
    char want[32];
    snprintf(want, sizeof want, "%zu", len);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cut, "StringValue")->valuestring, want);
    cJSON_Delete(sent);
    free(body);
    close_consumer(&s, 1);
    EXPECT_SENT(&s.r, {"DeleteMessageBatch", "\"rh-big1\"", 1});
    teardown(&s);
}

static void fail_batch(struct eddy_proc_batch *b, eddy_err err)
{
    for (size_t i = 0; i < b->nevents; i++)
        b->events[i].result = EDDY_EV_ERROR;
    eddy_error_set(&b->error, err, "%s: TransactWriteItems: injected", b->entity_id);
    b->cb(b, err, b->ud);
}

/* A batch that failed after some of its events were settled (a split batch
 * whose first step committed): event i's result is res[i]. */
static void fail_batch_after(struct eddy_proc_batch *b, eddy_err err,
                             const enum eddy_event_result *res)
{
    for (size_t i = 0; i < b->nevents; i++)
        b->events[i].result = res[i];
    eddy_error_set(&b->error, err, "%s: failed after its first step: injected", b->entity_id);
    b->cb(b, err, b->ud);
}

/*
 * A batch that fails after its first step committed settles the committed
 * events by their own results: their messages are deleted, not backed off
 * (nor sent to the DLQ on their last receive), and not released when the
 * batch was canceled; the events not committed are backed off.
 */
static void test_committed_events_of_failed_batch(void **state)
{
    (void)state;
    struct setup s;
    setup(&s, (struct opts){0});
    receive(&s, "a1:A a2:A a3:A b1:B", 2);
    struct eddy_proc_batch *b = batch_of(&s, "B"); /* before A's ids go with its messages */
    complete(batch_of(&s, "A"), (enum eddy_event_result[]){EDDY_EV_APPLIED});
    assert_true(fp_at_least(&s, 3));
    struct eddy_proc_batch *a = s.fp.b[2];
    assert_int_equal(a->nevents, 2);
    fail_batch_after(a, EDDY_ECONFLICT, (enum eddy_event_result[]){EDDY_EV_APPLIED, EDDY_EV_ERROR});
    fail_batch_after(b, EDDY_ECANCELED, (enum eddy_event_result[]){EDDY_EV_APPLIED});
    close_consumer(&s, 0);
    EXPECT_SENT(&s.r, {"DeleteMessageBatch", "\"rh-a2\"", 1},
                {"DeleteMessageBatch", "\"rh-b1\"", 1},
                {"ChangeMessageVisibilityBatch", "\"rh-a2\"", 0},
                {"ChangeMessageVisibilityBatch", "\"rh-b1\"", 0},
                {"ChangeMessageVisibilityBatch", "\"rh-a3\"", 1});
    EXPECT_TOTALS(s.m, {EDDY_METRIC_processed, 3}, {EDDY_METRIC_retries, 1});
    teardown(&s);
}

static void run_until_probes(struct setup *s, int n)
{
    for (int turns = 0; s->probe.calls < n && turns < 2000; turns++)
        uv_run(&s->r.loop, UV_RUN_ONCE);
    assert_int_equal(s->probe.calls, n);
}

/*
 * Batches that fail because the store is down keep their messages in hand
 * (no visibility change, no DLQ), stop the polls, and are submitted again,
 * in order, once a probe answers.
 */
static void test_store_down_holds_and_resumes(void **state)
{
    (void)state;
    struct setup s;
    setup(&s, (struct opts){.max_inflight = 20}); /* room for a second poll */
    receive(&s, "a1:A a2:A b1:B", 2);
    run_until_sent(&s, "ReceiveMessage", 2);
    assert_int_equal(rig_count(&s.r, "ReceiveMessage"), 2); /* waiting for a reply */
    assert_string_equal(s.fp.b[0]->entity_id, "A");
    assert_int_equal(s.fp.b[0]->nevents, 1);

    fail_batch(s.fp.b[0], EDDY_ENET);
    assert_int_equal(eddy_consumer_breaker(s.c)->state, EDDY_BREAKER_OPEN);
    fail_batch(s.fp.b[1], EDDY_ETHROTTLED);
    eddy_fake_push_json(s.r.fake, 200, "{\"Messages\":[]}"); /* the poll out comes back */
    run_until_probes(&s, 1);
    assert_int_equal(rig_count(&s.r, "ReceiveMessage"), 2); /* no poll while open */
    assert_int_equal(rig_count(&s.r, "ChangeMessageVisibilityBatch"), 0);
    assert_int_equal(s.fp.n, 2);
    assert_int_equal(eddy_consumer_inflight(s.c), 3);

    answer_probe(&s.probe, EDDY_ENET); /* still down: another probe, later */
    run_until_probes(&s, 2);
    assert_int_equal(s.fp.n, 2);
    assert_int_equal(eddy_consumer_breaker(s.c)->state, EDDY_BREAKER_PROBING);

    answer_probe(&s.probe, EDDY_OK);
    assert_true(eddy_breaker_closed(eddy_consumer_breaker(s.c)));
    assert_true(fp_at_least(&s, 4));
    struct eddy_proc_batch *a = strcmp(s.fp.b[2]->entity_id, "A") == 0 ? s.fp.b[2] : s.fp.b[3];
    struct eddy_proc_batch *b = a == s.fp.b[2] ? s.fp.b[3] : s.fp.b[2];
    assert_int_equal(a->nevents, 2); /* the held event first, then the one behind it */
    assert_string_equal(a->events[0].event_id, "ev-a1");
    assert_string_equal(a->events[1].event_id, "ev-a2");
    assert_string_equal(b->events[0].event_id, "ev-b1");
    run_until_sent(&s, "ReceiveMessage", 3);
    assert_int_equal(rig_count(&s.r, "ReceiveMessage"), 3); /* polling again */

    complete(a, (enum eddy_event_result[]){EDDY_EV_APPLIED, EDDY_EV_APPLIED});
    complete(b, (enum eddy_event_result[]){EDDY_EV_APPLIED});
    EXPECT_TOTALS(s.m, {EDDY_METRIC_held, 2}, {EDDY_METRIC_breaker_opened, 1},
                  {EDDY_METRIC_breaker_probes, 2}, {EDDY_METRIC_processed, 3},
                  {EDDY_METRIC_retries, 0});
    close_consumer(&s, 0);
    teardown(&s);
}

/* Draining with the breaker open hands the held messages back (visibility
 * 0) and waits for the probe that is out. */
static void test_drain_while_store_down(void **state)
{
    (void)state;
    struct setup s;
    setup(&s, (struct opts){0});
    receive(&s, "c1:C", 1);
    fail_batch(s.fp.b[0], EDDY_ETRANSIENT);
    run_until_probes(&s, 1);
    eddy_consumer_close(s.c, on_drained, &s);
    for (int i = 0; i < 4; i++)
        eddy_fake_push_json(s.r.fake, 200, RIG_ALL_OK);
    for (int turns = 0; turns < 50; turns++)
        uv_run(&s.r.loop, UV_RUN_NOWAIT);
    assert_false(s.drained); /* the probe is still out */
    answer_probe(&s.probe, EDDY_ENET);
    close_consumer(&s, 0);
    assert_int_equal(s.fp.n, 1);
    EXPECT_SENT(&s.r, {"ChangeMessageVisibilityBatch", "\"rh-c1\"", 1},
                {"ChangeMessageVisibilityBatch", "\"VisibilityTimeout\":0", 1});
    teardown(&s);
}

/*
 * The store down while the consumer drains: no breaker waits for it, so a
 * message not committed is released (visible again at once), not backed
 * off nor, on its last receive, sent to the DLQ: an outage must not use up
 * the receives of valid messages. A committed event is deleted.
 */
static void test_store_down_while_draining_releases(void **state)
{
    (void)state;
    struct setup s;
    setup(&s, (struct opts){.dlq = DLQ, .attrs = REDRIVE_ATTRS});
    push_receive_nth(&s.r, "r1:R s1:S", 3); /* their last receive */
    assert_true(fp_at_least(&s, 2));
    struct eddy_proc_batch *r1 = batch_of(&s, "R"), *s1 = batch_of(&s, "S");
    eddy_consumer_close(s.c, on_drained, &s);
    fail_batch(r1, EDDY_ETIMEOUT);
    fail_batch_after(s1, EDDY_ETHROTTLED, (enum eddy_event_result[]){EDDY_EV_APPLIED});
    close_consumer(&s, 0);
    assert_int_equal(rig_count(&s.r, "SendMessage"), 0);
    EXPECT_SENT(&s.r, {"ChangeMessageVisibilityBatch", "\"rh-r1\"", 1},
                {"ChangeMessageVisibilityBatch", "\"VisibilityTimeout\":0", 1},
                {"DeleteMessageBatch", "\"rh-r1\"", 0}, {"DeleteMessageBatch", "\"rh-s1\"", 1});
    EXPECT_TOTALS(s.m, {EDDY_METRIC_retries, 0}, {EDDY_METRIC_processed, 1});
    teardown(&s);
}

/*
 * Reasons reach the log and the DLQ whole: a machine's reason of 400 bytes
 * is the eddy-error of its message, and a batch error with no reason on its
 * events is logged with the batch's detail, not the error's name.
 */
static void test_reasons_whole(void **state)
{
    (void)state;
    struct setup s;
    setup(&s, (struct opts){.dlq = DLQ, .capture_log = true});
    receive(&s, "w1:A w2:B", 2);
    char longwhy[401];
    memset(longwhy, 'r', 399);
    longwhy[399] = '!';
    longwhy[400] = '\0';
    struct eddy_proc_batch *a = s.fp.b[0], *b = s.fp.b[1];
    a->events[0].result = EDDY_EV_FAILED;
    snprintf(a->events[0].reason, sizeof a->events[0].reason, "%s", longwhy);
    a->cb(a, EDDY_OK, a->ud);
    eddy_error_set(&b->error, EDDY_ECONFLICT,
                   "machine/B: still in conflict after 11 attempts (EDDY_OCC_RETRIES=10)");
    b->events[0].result = EDDY_EV_ERROR;
    b->events[0].reason[0] = '\0';
    b->cb(b, EDDY_ECONFLICT, b->ud);
    run_until_sent(&s, "SendMessage", 1);
    EXPECT_SENT(&s.r, {"SendMessage", longwhy, 1});
    close_consumer(&s, 1);
    assert_non_null(strstr(captured_log(&s), "still in conflict after 11 attempts"));
    teardown(&s);
}

/* A failure that is not the store being down is retried after a backoff;
 * on the last receive the redrive policy allows, the message goes to the
 * DLQ with the reason instead of being moved there without one. */
static void test_last_receive_to_dlq_with_reason(void **state)
{
    (void)state;
    struct setup s;
    setup(&s, (struct opts){.dlq = DLQ, .attrs = REDRIVE_ATTRS});
    char *json = malloc(4096);
    snprintf(json, 4096, "{\"Messages\":[%s,", message("r1", "R", "InsertCoin"));
    char *second = message("r2", "S", "InsertCoin");
    char *count = strstr(second, "\"ApproximateReceiveCount\":\"1\"");
    assert_non_null(count);
    count[strlen("\"ApproximateReceiveCount\":\"")] = '3'; /* its last receive */
    strcat(json, second);
    strcat(json, "]}");
    eddy_fake_push_json(s.r.fake, 200, json);
    free(json);
    assert_true(fp_at_least(&s, 2));
    for (int i = 0; i < 2; i++) {
        struct eddy_proc_batch *b = s.fp.b[i];
        b->events[0].result = EDDY_EV_ERROR;
        snprintf(b->events[0].reason, sizeof b->events[0].reason,
                 "state item of machine/%s does not load: balance: missing", b->entity_id);
        b->cb(b, EDDY_EPARSE, b->ud);
    }
    run_until_sent(&s, "SendMessage", 1);
    close_consumer(&s, 1);
    assert_int_equal(rig_count(&s.r, "SendMessage"), 1);
    /* the first receive: backed off for another try */
    EXPECT_SENT(&s.r, {"SendMessage", "eddy-error", 1},
                {"SendMessage", "machine/S does not load: balance: missing", 1},
                {"SendMessage", "after 3 receives", 1}, {"DeleteMessageBatch", "\"rh-r2\"", 1},
                {"ChangeMessageVisibilityBatch", "\"rh-r1\"", 1},
                {"DeleteMessageBatch", "\"rh-r1\"", 0});
    teardown(&s);
}

/* The processor's outcome alone decides: a refusal it recorded is deleted
 * even with the DLQ policy's flag set; one it did not write goes to the DLQ. */
static void test_rejections(void **state)
{
    (void)state;
    struct setup s;
    setup(&s, (struct opts){.dlq = DLQ});
    receive(&s, "r1:R u1:U", 2);
    complete(batch_of(&s, "U"), (enum eddy_event_result[]){EDDY_EV_REJECTED_UNWRITTEN});
    run_until_sent(&s, "SendMessage", 1);
    eddy_consumer_close(s.c, on_drained, &s);
    eddy_fake_push_json(s.r.fake, 200, "{\"MessageId\":\"d1\"}");
    complete(batch_of(&s, "R"), (enum eddy_event_result[]){EDDY_EV_REJECTED});
    close_consumer(&s, 0);
    assert_int_equal(rig_count(&s.r, "SendMessage"), 1);
    EXPECT_SENT(&s.r, {"SendMessage", "rejected: reason 0", 1}, {"SendMessage", "\"u1\"", 1},
                {"DeleteMessageBatch", "\"rh-r1\"", 1}, {"DeleteMessageBatch", "\"rh-u1\"", 1});
    EXPECT_TOTALS(s.m, {EDDY_METRIC_rejected, 2});
    teardown(&s);
}

/*
 * The heartbeat's timer is set only while messages are in hand: not when
 * idle, set by a receive, and it extends a message held past half the
 * visibility timeout (1 s here); once nothing is in hand it is stopped.
 */
static void test_heartbeat_only_while_in_hand(void **state)
{
    (void)state;
    struct setup s;
    setup(&s, (struct opts){.attrs = "{\"Attributes\":{\"VisibilityTimeout\":\"1\"}}"});
    run_until_sent(&s, "ReceiveMessage", 1);
    assert_false(eddy_consumer_heartbeat_armed(s.c));
    receive(&s, "h1:H", 1);
    assert_true(eddy_consumer_heartbeat_armed(s.c));
    run_until_sent(&s, "ChangeMessageVisibilityBatch", 1);
    EXPECT_SENT(&s.r, {"ChangeMessageVisibilityBatch", "\"rh-h1\"", 1},
                {"ChangeMessageVisibilityBatch", "\"VisibilityTimeout\":1", 1});
    assert_true(eddy_consumer_heartbeat_armed(s.c)); /* for the next extension */
    complete(s.fp.b[0], (enum eddy_event_result[]){EDDY_EV_APPLIED});
    assert_false(eddy_consumer_heartbeat_armed(s.c));
    EXPECT_TOTALS(s.m, {EDDY_METRIC_processed, 1});
    close_consumer(&s, 0);
    teardown(&s);
}

/*
 * A long poll out at close is not canceled (SQS would still hand it the
 * next messages, hidden for their visibility timeout): it returns, and what
 * it brings is released at once, not processed; no poll follows it.
 */
static void test_drain_lets_the_poll_return(void **state)
{
    (void)state;
    struct setup s;
    setup(&s, (struct opts){.drain_poll_ms = 60000});
    run_until_receives(&s, 1);
    eddy_consumer_close(s.c, on_drained, &s);
    for (int turns = 0; turns < 50; turns++)
        uv_run(&s.r.loop, UV_RUN_NOWAIT);
    assert_false(s.drained); /* the poll is still out */
    push_receive(&s.r, "a1:A b1:B");
    close_consumer(&s, 0);
    assert_int_equal(s.fp.n, 0);
    assert_int_equal(rig_count(&s.r, "ReceiveMessage"), 1);
    EXPECT_SENT(&s.r, {"ChangeMessageVisibilityBatch", "\"rh-a1\"", 1},
                {"ChangeMessageVisibilityBatch", "\"rh-b1\"", 1});
    assert_int_equal(bodies_with(&s.r, "ChangeMessageVisibilityBatch", "\"VisibilityTimeout\":0"),
                     rig_count(&s.r, "ChangeMessageVisibilityBatch"));
    teardown(&s);
}

/* A poll that has not returned by drain_poll_ms is canceled, and the drain ends. */
static void test_drain_cancels_a_late_poll(void **state)
{
    (void)state;
    struct setup s;
    setup(&s, (struct opts){.drain_poll_ms = 5});
    run_until_receives(&s, 1);
    eddy_consumer_close(s.c, on_drained, &s);
    rig_run_until(&s.r, &s.drained, 5000);
    assert_true(s.drained);
    assert_int_equal(rig_count(&s.r, "ReceiveMessage"), 1);
    assert_int_equal(rig_count(&s.r, "ChangeMessageVisibilityBatch"), 0);
    teardown(&s);
}

/* A consumer closed before it started calls back from the loop, having sent
 * nothing, and is freed after its callback. */
static void test_close_before_start(void **state)
{
    (void)state;
    struct rig r;
    rig_init_sqs(&r);
    struct eddy_envelope_spec spec;
    struct eddy_error err = {0};
    assert_int_equal(eddy_envelope_spec_init(&spec, NULL, NULL, NULL, NULL, &err), EDDY_OK);
    struct eddy_metrics *m = eddy_metrics_new(EDDY_METRICS_OFF);
    struct fakeproc fp = {0};
    struct eddy_consumer_config cfg = {.queue_url = RIG_QURL,
                                       .max_inflight = 10,
                                       .coalesce_max = 1,
                                       .spec = &spec,
                                       .submit = fake_submit,
                                       .submit_ud = &fp,
                                       .on_poison = EDDY_POISON_REDRIVE,
                                       .metrics = m};
    struct setup s = {0};
    s.c = eddy_consumer_new(&r.loop, &r.sqs, &cfg, &err);
    assert_non_null(s.c);
    eddy_consumer_close(s.c, on_drained, &s);
    assert_false(s.drained); /* later, from the loop */
    rig_run_until(&r, &s.drained, 1000);
    assert_true(s.drained);
    assert_int_equal(eddy_fake_count(r.fake), 0);
    eddy_metrics_free(m);
    eddy_envelope_spec_cleanup(&spec);
    rig_close(&r);
}

static void test_backoff_grows(void **state)
{
    (void)state;
    assert_int_equal(eddy_consumer_backoff_s(0), 2);
    assert_int_equal(eddy_consumer_backoff_s(1), 2);
    assert_int_equal(eddy_consumer_backoff_s(5), 32);
    assert_int_equal(eddy_consumer_backoff_s(9), 512);
    assert_int_equal(eddy_consumer_backoff_s(10), EDDY_CONSUMER_BACKOFF_MAX_S);
    assert_int_equal(eddy_consumer_backoff_s(1000), EDDY_CONSUMER_BACKOFF_MAX_S);
    enum eddy_poison_policy p;
    assert_true(eddy_poison_policy_parse("redrive", &p));
    assert_int_equal(p, EDDY_POISON_REDRIVE);
    assert_false(eddy_poison_policy_parse("later", &p));
}

static void test_config_checked(void **state)
{
    (void)state;
    struct eddy_envelope_spec spec;
    struct eddy_error err = {0};
    assert_int_equal(eddy_envelope_spec_init(&spec, NULL, NULL, NULL, NULL, &err), EDDY_OK);
    struct eddy_consumer_config cfg = {.queue_url = RIG_QURL,
                                       .max_inflight = 10,
                                       .coalesce_max = 1,
                                       .spec = &spec,
                                       .submit = fake_submit,
                                       .on_poison = EDDY_POISON_DLQ};
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct eddy_metrics *m = eddy_metrics_new(EDDY_METRICS_OFF);
    cfg.metrics = m;
    assert_null(eddy_consumer_new(&loop, NULL, &cfg, &err));
    assert_int_equal(err.code, EDDY_ECONFIG);
    assert_non_null(strstr(err.detail, "EDDY_DLQ_URL"));
    cfg.on_poison = EDDY_POISON_REDRIVE;
    cfg.queue_url = NULL;
    assert_null(eddy_consumer_new(&loop, NULL, &cfg, &err));
    assert_non_null(strstr(err.detail, "EDDY_QUEUE_URL"));
    eddy_metrics_free(m);
    eddy_envelope_spec_cleanup(&spec);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lanes_coalesce_and_results),
        cmocka_unit_test(test_results_reach_sqs),
        cmocka_unit_test(test_batch_error_logged_with_reason),
        cmocka_unit_test(test_polls_for_full_batches),
        cmocka_unit_test(test_contention_window_and_pauses),
        cmocka_unit_test(test_lane_reused_for_longer_id),
        cmocka_unit_test(test_empty_queue_one_poll),
        cmocka_unit_test(test_fifo_releases_rest_of_group),
        cmocka_unit_test(test_poison_to_dlq),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_poison_near_limit_fits_dlq),
        cmocka_unit_test(test_reasons_whole),
        cmocka_unit_test(test_store_down_holds_and_resumes),
        cmocka_unit_test(test_committed_events_of_failed_batch),
        cmocka_unit_test(test_drain_while_store_down),
        cmocka_unit_test(test_store_down_while_draining_releases),
        cmocka_unit_test(test_last_receive_to_dlq_with_reason),
        cmocka_unit_test(test_heartbeat_only_while_in_hand),
        cmocka_unit_test(test_drain_lets_the_poll_return),
        cmocka_unit_test(test_drain_cancels_a_late_poll),
        cmocka_unit_test(test_close_before_start),
        cmocka_unit_test(test_backoff_grows),
        cmocka_unit_test(test_config_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
