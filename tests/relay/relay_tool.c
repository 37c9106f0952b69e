/*
 * relay_tool.c - a driver for the relay's integration tests and numbers,
 * against the local AWS named by the usual AWS_* variables.
 *
 *   relay_tool items --shards N --ns NS --entities E --events K [--prefix P] [--pad BYTES]
 *       print outbox entries as the processor builds them
 *       (record_build_outbox), one attribute-value JSON item a line:
 *       entity P<e> for e < E, seq 1..K, idx 0, data {"n": seq}
 *   relay_tool latency --table T --bus B --shards N --count C --mode fast|poll
 *                      [--poll-ms P]
 *       run a relay in this process (no leases) and commit C entries one
 *       at a time with PutItem; fast: hand the entry to the relay when the PutItem is
 *       done, as the processor's on_outbox hook does (publish on commit);
 *       poll: do not (the sweeps find it). Prints
 *       the commit-to-publish latency (PutItem done -> PutEvents accepted)
 *   relay_tool throughput --table T --bus B --shards N --count C
 *       write C entries (BatchWriteItem), then time one relay publishing
 *       and deleting them all; prints events/s
 * Results are one JSON line on stdout.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/awscall.h"
#include "record_tree.h"
#include "aws/credentials.h"
#include "aws/http.h"
#include "base/alloc.h"
#include "base/log.h"
#include "core/record.h"
#include "relay/relay.h"
#include "svc/dynamodb.h"
#include "svc/eventbridge.h"

struct opts {
    const char *cmd, *table, *bus, *ns, *prefix, *mode;
    uint32_t shards, entities, events, count, poll_ms, pad;
};

struct tool {
    struct opts o;
    uv_loop_t loop;
    struct eddy_http *http;
    struct eddy_creds *creds;
    struct eddy_aws aws;
    struct eddy_ddb ddb;
    struct eddy_eb eb;
    struct eddy_relay *relay;
    struct eddy_relay_stats st; /* its last stats, taken as it closed */
    uv_timer_t timer;
    /* latency */
    uint32_t next;               /* next entry to write */
    uint64_t t0;                 /* its commit time (uv_hrtime) */
    uint64_t pub_ns;             /* when it was published, 0 until then */
    char *waiting_sk;            /* the entry in flight */
    struct eddy_record_text row; /* the entry as rendered, handed over once committed */
    double *lat_ms;
    uint32_t nlat;
    /* throughput */
    uint64_t published, start_ns, end_ns;
    cJSON *batch;
    bool failed;
};

/* The data of entry seq: its number, and o->pad bytes of padding. */
static cJSON *outbox_data(const struct opts *o, int64_t seq)
{
    cJSON *data = cJSON_CreateObject();
    cJSON_AddNumberToObject(data, "n", (double)seq);
    if (o->pad) {
        char *pad = eddy_calloc(1, o->pad + 1);
        memset(pad, 'p', o->pad);
        cJSON_AddStringToObject(data, "pad", pad);
        free(pad);
    }
    return data;
}

/* The entry as the commit path renders it (text and fields). */
static void outbox_row(const struct opts *o, const char *id, int64_t seq,
                       struct eddy_record_text *out)
{
    int64_t now_ms = eddy_clock_unix_ms(eddy_clock_system());
    struct eddy_record_entity e = {o->ns, id, seq, now_ms / 1000, now_ms};
    cJSON *data = outbox_data(o, seq);
    struct eddy_error err = {0};
    if (eddy_record_render_outbox(&e, o->shards, 0, "Happened", data, NULL, out, &err) != EDDY_OK) {
        fprintf(stderr, "relay_tool: %s\n", eddy_error_text(&err));
        exit(2);
    }
    cJSON_Delete(data);
}

static cJSON *outbox_item(const struct opts *o, const char *id, int64_t seq)
{
    int64_t now_ms = eddy_clock_unix_ms(eddy_clock_system());
    struct eddy_record_entity e = {o->ns, id, seq, now_ms / 1000, now_ms};
    cJSON *data = outbox_data(o, seq);
    cJSON *item = NULL;
    struct eddy_error err = {0};
    if (record_build_outbox(&e, o->shards, 0, "Happened", data, NULL, &item, &err) != EDDY_OK) {
        fprintf(stderr, "relay_tool: %s\n", eddy_error_text(&err));
        exit(2);
    }
    cJSON_Delete(data);
    return item;
}

static int cmd_items(const struct opts *o)
{
    for (uint32_t e = 0; e < o->entities; e++) {
        char id[128];
        snprintf(id, sizeof id, "%s%" PRIu32, o->prefix, e);
        for (uint32_t s = 1; s <= o->events; s++) {
            cJSON *item = outbox_item(o, id, s);
            char *text = cJSON_PrintUnformatted(item);
            puts(text);
            free(text);
            cJSON_Delete(item);
        }
    }
    return 0;
}

/* ---- clients ---- */

static void clients_init(struct tool *t)
{
    struct eddy_error err = {0};
    uv_loop_init(&t->loop);
    struct eddy_http_config hc = {0};
    hc.ca_bundle = getenv("AWS_CA_BUNDLE");
    t->http = eddy_http_new(&t->loop, &hc, &err);
    t->creds = eddy_creds_new(&t->loop, eddy_http_transport(t->http), NULL);
    struct eddy_aws_config ac = {
        .loop = &t->loop, .transport = eddy_http_transport(t->http), .creds = t->creds};
    if (t->http == NULL || eddy_aws_init(&t->aws, &ac, &err) != EDDY_OK ||
        eddy_ddb_init(&t->ddb, &t->aws, NULL, &err) != EDDY_OK ||
        eddy_eb_init(&t->eb, &t->aws, NULL, &err) != EDDY_OK) {
        fprintf(stderr, "relay_tool: %s\n", eddy_error_text(&err));
        exit(2);
    }
    uv_timer_init(&t->loop, &t->timer);
}

static int clients_close(struct tool *t)
{
    uv_close((uv_handle_t *)&t->timer, NULL);
    eddy_eb_cleanup(&t->eb);
    eddy_ddb_cleanup(&t->ddb);
    eddy_aws_cleanup(&t->aws);
    eddy_creds_close(t->creds, NULL, NULL);
    eddy_http_close(t->http, NULL, NULL);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&t->loop);
    if (rc != 0)
        fprintf(stderr, "relay_tool: loop did not close: %s\n", uv_strerror(rc));
    return rc == 0 ? 0 : 3;
}

static void on_relay_stopped(void *ud)
{
    struct tool *t = ud;
    eddy_relay_stats(t->relay, &t->st);
    t->relay = NULL; /* freed after this call */
}

static void relay_start(struct tool *t,
                        void (*hook)(const struct eddy_record_outbox *, int64_t, void *))
{
    struct eddy_relay_config rc = {.table = t->o.table,
                                   .shards = t->o.shards,
                                   .event_bus = t->o.bus,
                                   .event_source = "eddy.bench",
                                   .poll_ms = t->o.poll_ms,
                                   .sweep_max_ms = t->o.poll_ms,
                                   .on_publish = hook,
                                   .on_publish_ud = t};
    struct eddy_error err = {0};
    t->relay = eddy_relay_new(&t->loop, &t->ddb, &t->eb, &rc, NULL, NULL, &err);
    if (t->relay == NULL || eddy_relay_start(t->relay) != EDDY_OK) {
        fprintf(stderr, "relay_tool: relay: %s\n", eddy_error_text(&err));
        exit(2);
    }
}

static void finish(struct tool *t)
{
    uv_timer_stop(&t->timer);
    eddy_relay_close(t->relay, on_relay_stopped, t);
}

/* ---- latency ---- */

static void write_next(uv_timer_t *h);

/* A sample needs both ends: a poll may publish the entry before the
 * PutItem callback has run (then the latency is about 0). */
static void lat_sample(struct tool *t)
{
    if (t->t0 == 0 || t->pub_ns == 0)
        return;
    t->lat_ms[t->nlat++] = t->pub_ns > t->t0 ? (double)(t->pub_ns - t->t0) / 1e6 : 0;
    t->t0 = t->pub_ns = 0;
    free(t->waiting_sk);
    t->waiting_sk = NULL;
    if (t->nlat == t->o.count) {
        finish(t);
        return;
    }
    /* Poll only: start at a random phase of the poll interval. */
    uint64_t gap = strcmp(t->o.mode, "poll") == 0 ? (uint64_t)rand() % t->o.poll_ms : 5;
    uv_timer_start(&t->timer, write_next, gap, 0);
}

static void lat_published(const struct eddy_record_outbox *e, int64_t unix_ms, void *ud)
{
    struct tool *t = ud;
    (void)unix_ms;
    if (t->waiting_sk == NULL || strcmp(e->sk, t->waiting_sk) != 0)
        return;
    t->pub_ns = uv_hrtime();
    lat_sample(t);
}

static void on_put_item(eddy_err rc, struct eddy_ddb_item_result *res,
                        const struct eddy_aws_reply *reply, void *ud)
{
    struct tool *t = ud;
    eddy_ddb_item_result_cleanup(res);
    if (rc != EDDY_OK) {
        fprintf(stderr, "relay_tool: PutItem: %s\n", eddy_error_text(reply->error));
        t->failed = true;
        finish(t);
        return;
    }
    t->t0 = uv_hrtime();
    if (strcmp(t->o.mode, "fast") == 0) /* publish on commit */
        eddy_relay_publish(t->relay, &t->row);
    eddy_record_text_cleanup(&t->row);
    t->next++;
    lat_sample(t);
}

static void write_next(uv_timer_t *h)
{
    struct tool *t = eddy_container_of(h, struct tool, timer);
    char id[32];
    snprintf(id, sizeof id, "lat%" PRIu32, t->next % 16);
    eddy_record_text_cleanup(&t->row);
    outbox_row(&t->o, id, t->next / 16 + 1, &t->row);
    cJSON *item = cJSON_ParseWithLength(t->row.json, t->row.len);
    free(t->waiting_sk);
    t->waiting_sk = eddy_strdup(t->row.outbox->sk);
    struct eddy_error err = {0};
    if (eddy_ddb_put_item(&t->ddb, t->o.table, item, NULL, NULL, on_put_item, t, NULL, &err) !=
        EDDY_OK) {
        fprintf(stderr, "relay_tool: PutItem: %s\n", eddy_error_text(&err));
        t->failed = true;
        finish(t);
    }
    cJSON_Delete(item);
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, uint32_t n, double q)
{
    uint32_t i = (uint32_t)(q * n + 0.999999);
    return v[(i ? i : 1) - 1];
}

static int cmd_latency(struct tool *t)
{
    clients_init(t);
    t->lat_ms = eddy_calloc(t->o.count, sizeof *t->lat_ms);
    relay_start(t, lat_published);
    uv_timer_start(&t->timer, write_next, 200, 0);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    int rc = clients_close(t);
    qsort(t->lat_ms, t->nlat, sizeof *t->lat_ms, dbl_cmp);
    if (t->nlat)
        printf("{\"mode\":\"%s\",\"poll_ms\":%" PRIu32 ",\"n\":%" PRIu32
               ",\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f}\n",
               t->o.mode, t->o.poll_ms, t->nlat, pct(t->lat_ms, t->nlat, 0.5),
               pct(t->lat_ms, t->nlat, 0.99), t->lat_ms[t->nlat - 1]);
    free(t->lat_ms);
    eddy_record_text_cleanup(&t->row);
    free(t->waiting_sk);
    return t->failed || t->nlat != t->o.count ? 1 : rc;
}

/* ---- throughput ---- */

static void load_next(struct tool *t);

static void tp_published(const struct eddy_record_outbox *e, int64_t unix_ms, void *ud)
{
    struct tool *t = ud;
    (void)e;
    (void)unix_ms;
    if (++t->published == t->o.count) {
        t->end_ns = uv_hrtime();
        finish(t);
    }
}

static void on_loaded(eddy_err rc, struct eddy_ddb_batch_write_result *res,
                      const struct eddy_aws_reply *reply, void *ud)
{
    struct tool *t = ud;
    if (rc != EDDY_OK || res->nunprocessed) {
        fprintf(stderr, "relay_tool: BatchWriteItem: %s\n", eddy_error_text(reply->error));
        exit(3);
    }
    eddy_ddb_batch_write_result_cleanup(res);
    cJSON_Delete(t->batch);
    t->batch = NULL;
    if (t->next < t->o.count) {
        load_next(t);
        return;
    }
    t->start_ns = uv_hrtime();
    relay_start(t, tp_published);
}

/* Entities of 10 entries each, written 25 a call. */
static void load_next(struct tool *t)
{
    struct eddy_ddb_write_req reqs[EDDY_DDB_MAX_BATCH_WRITE];
    size_t n = 0;
    t->batch = cJSON_CreateArray();
    for (; n < EDDY_DDB_MAX_BATCH_WRITE && t->next < t->o.count; n++, t->next++) {
        char id[32];
        snprintf(id, sizeof id, "tp%" PRIu32, t->next / 10);
        cJSON *item = outbox_item(&t->o, id, t->next % 10 + 1);
        cJSON_AddItemToArray(t->batch, item);
        reqs[n] = (struct eddy_ddb_write_req){.put_item = item};
    }
    struct eddy_error err = {0};
    if (eddy_ddb_batch_write(&t->ddb, t->o.table, reqs, n, on_loaded, t, NULL, &err) != EDDY_OK) {
        fprintf(stderr, "relay_tool: BatchWriteItem: %s\n", eddy_error_text(&err));
        exit(3);
    }
}

static int cmd_throughput(struct tool *t)
{
    clients_init(t);
    load_next(t);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    const struct eddy_relay_stats st = t->st;
    int rc = clients_close(t);
    double s = (double)(t->end_ns - t->start_ns) / 1e9;
    printf("{\"n\":%" PRIu64 ",\"seconds\":%.3f,\"events_per_s\":%.0f,\"put_calls\":%" PRIu64
           ",\"deleted\":%" PRIu64 "}\n",
           t->published, s, (double)t->published / s, st.put_calls, st.deleted);
    return t->published == t->o.count && st.deleted == t->o.count ? rc : 1;
}

static uint32_t num(const char *s)
{
    return (uint32_t)strtoul(s, NULL, 10);
}

static void parse(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.cmd = argv[1],
                       .ns = "bench",
                       .prefix = "e",
                       .mode = "fast",
                       .shards = 8,
                       .entities = 1,
                       .events = 1,
                       .count = 10,
                       .poll_ms = 1000};
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--table"))
            o->table = v;
        else if (!strcmp(k, "--bus"))
            o->bus = v;
        else if (!strcmp(k, "--ns"))
            o->ns = v;
        else if (!strcmp(k, "--prefix"))
            o->prefix = v;
        else if (!strcmp(k, "--mode"))
            o->mode = v;
        else if (!strcmp(k, "--shards"))
            o->shards = num(v);
        else if (!strcmp(k, "--entities"))
            o->entities = num(v);
        else if (!strcmp(k, "--events"))
            o->events = num(v);
        else if (!strcmp(k, "--count"))
            o->count = num(v);
        else if (!strcmp(k, "--poll-ms"))
            o->poll_ms = num(v);
        else if (!strcmp(k, "--pad"))
            o->pad = num(v);
        else {
            fprintf(stderr, "relay_tool: unknown option %s\n", k);
            exit(2);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: relay_tool items|latency|throughput [options]\n");
        return 2;
    }
    eddy_log_configure(EDDY_LOG_WARN, EDDY_LOG_JSON, stderr);
    struct tool *t = eddy_calloc(1, sizeof *t);
    parse(argc, argv, &t->o);
    int rc = 2;
    if (!strcmp(t->o.cmd, "items"))
        rc = cmd_items(&t->o);
    else if (!strcmp(t->o.cmd, "latency") && t->o.table && t->o.bus && t->o.count)
        rc = cmd_latency(t);
    else if (!strcmp(t->o.cmd, "throughput") && t->o.table && t->o.bus && t->o.count)
        rc = cmd_throughput(t);
    else
        fprintf(stderr, "relay_tool: unknown command or missing --table/--bus\n");
    free(t);
    return rc;
}
