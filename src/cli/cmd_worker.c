/*
 * cmd_worker.c - `eddy worker`, the default command: configuration ->
 * runtime -> processor (+ relay) -> consumer, one libuv loop, until a signal.
 *
 * Shutdown (the process shell, shell.h, as for `eddy relay`). The first
 * SIGTERM or SIGINT starts the drain, in this order: the
 * consumer stops polling (a long poll out is left to return, and what it
 * brings is released, up to DRAIN_POLL_MARGIN_S before the drain's end;
 * then it is aborted), releases the messages not started, waits for the
 * transactions in flight and flushes the deletes; the
 * processor closes; the relay finishes the batch in hand and gives its leases
 * back; the last metric line is written; every handle is closed and the loop
 * closes. A timer enforces EDDY_DRAIN_SECONDS: when it fires the process
 * says so and exits 1. A second signal exits at once (1): safe, because an
 * event that was committed and not yet deleted is received again and found
 * by its dedupe marker.
 *
 * Metrics: one EMF line on stdout every EDDY_METRICS_INTERVAL and at exit.
 * Logs go to stderr (cli.c configures them).
 */
#include "cli/commands.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cli/runtime.h"
#include "cli/shell.h"
#include "core/processor.h"
#include "relay/relay.h"
#include "svc/dynamodb.h"
#include "worker/consumer.h"
#include "worker/envelope.h"
#include "worker/health.h"
#include "base/metrics.h"

struct worker {
    struct eddy_runtime rt;
    const struct eddy_config *cfg;
    struct eddy_envelope_spec spec;
    bool spec_ok;
    struct eddy_metrics *metrics;
    struct eddy_health health;
    struct eddy_processor *proc;
    struct eddy_relay *relay;
    struct eddy_consumer *cons;
    struct eddy_shell shell;
    struct eddy_processor_stats last;
    eddy_consumer_probe_done_fn probe_done; /* the breaker's probe out, if any */
    void *probe_done_ud;
};

/* The processor's counts since the last call into the metrics. */
static void count_processor(struct worker *w)
{
    struct eddy_processor_stats s;
    eddy_processor_stats(w->proc, &s);
    eddy_metrics_add(w->metrics, EDDY_METRIC_conflicts, s.conflicts - w->last.conflicts);
    eddy_metrics_add(w->metrics, EDDY_METRIC_retries, s.retries - w->last.retries);
    w->last = s;
}

static void emit_metrics(struct worker *w)
{
    if (w->proc)
        count_processor(w);
    eddy_shell_metric_line(&w->rt, w->metrics);
}

static void shell_emit(void *ud)
{
    emit_metrics(ud);
}

static eddy_err submit(void *ud, struct eddy_proc_batch *batch)
{
    return eddy_processor_submit(ud, batch);
}

/* A probe gets one attempt of this long: a store that takes longer than
 * this to answer one GetItem is not ready for the work held back. */
#define PROBE_TIMEOUT_MS 3000

static void probe_answered(eddy_err err, struct eddy_ddb_item_result *res,
                           const struct eddy_aws_reply *reply, void *ud)
{
    struct worker *w = ud;
    eddy_ddb_item_result_cleanup(res);
    eddy_consumer_probe_done_fn done = w->probe_done;
    w->probe_done = NULL;
    done(err, err == EDDY_OK ? NULL : eddy_error_text(reply->error), w->probe_done_ud);
}

/* The consumer's circuit breaker probes the table with one GetItem. */
static eddy_err probe(void *ud, eddy_consumer_probe_done_fn done, void *done_ud)
{
    struct worker *w = ud;
    struct eddy_error err;
    w->probe_done = done;
    w->probe_done_ud = done_ud;
    eddy_err rc = eddy_ddb_probe(&w->rt.ddb, w->cfg->table_str, PROBE_TIMEOUT_MS, probe_answered, w,
                                 NULL, &err);
    if (rc != EDDY_OK) {
        w->probe_done = NULL;
        eddy_log(EDDY_LOG_WARN, NULL, "circuit breaker probe: %s", eddy_error_text(&err));
    }
    return rc;
}

/* ---- shutdown, in order: consumer, processor, relay, handles ---- */

static void finish_loop(struct worker *w)
{
    eddy_shell_close(&w->shell); /* the last metric line, then the handles */
}

static void relay_stopped(void *ud)
{
    struct worker *w = ud;
    w->relay = NULL; /* freed after this call */
    finish_loop(w);
}

static void processor_closed(void *ud)
{
    struct worker *w = ud;
    w->proc = NULL;
    if (w->relay)
        eddy_relay_close(w->relay, relay_stopped, w);
    else
        finish_loop(w);
}

static void consumer_drained(void *ud)
{
    struct worker *w = ud;
    w->cons = NULL;     /* freed after this callback */
    count_processor(w); /* its last counts, before it goes */
    eddy_processor_close(w->proc, processor_closed, w);
}

/* The shell's drain: the consumer first (see the top of the file). */
static void shell_drain(void *ud, const char *why)
{
    struct worker *w = ud;
    (void)why;
    eddy_consumer_close(w->cons, consumer_drained, w);
}

static void on_fatal(const struct eddy_error *err, void *ud)
{
    struct worker *w = ud;
    (void)err; /* logged where it was found */
    eddy_shell_fail(&w->shell, "cannot consume the queue");
}

/* ---- setup ---- */

static eddy_err make_processor(struct worker *w, struct eddy_error *err)
{
    const struct eddy_config *cfg = w->cfg;
    bool relay_on = cfg->relay && cfg->event_bus_str != NULL;
    struct eddy_processor_config pc = {
        .table = cfg->table_str,
        .ns = w->rt.ns,
        .machine = w->rt.m,
        .dedupe_ttl_s = cfg->dedupe_ttl,
        .state_history = cfg->state_history != 0,
        .occ_retries = (int)cfg->occ_retries,
        .outbox_shards = (uint32_t)cfg->outbox_shards,
        .event_source = w->rt.event_source,
        .event_bus = cfg->event_bus_str,
        .cache_entities = (size_t)cfg->cache_entities,
        .on_reject = (enum eddy_reject_policy)cfg->on_reject,
        .group_max_items = 100,
        .commits_max = (size_t)cfg->max_commits,
        .feed_max = (size_t)cfg->max_inflight,
    };
    uint64_t seed = uv_hrtime() ^ ((uint64_t)getpid() << 32);
    if (relay_on) {
        w->relay = eddy_shell_relay_new(&w->rt, cfg, w->metrics, seed + 7, err);
        if (w->relay == NULL)
            return err->code;
        pc.on_outbox = eddy_relay_on_outbox;
        pc.on_outbox_ud = w->relay;
        pc.on_outbox_expect = eddy_relay_on_outbox_expect;
    } else if (cfg->relay) {
        eddy_log(EDDY_LOG_INFO, NULL, "EDDY_EVENT_BUS is not set: the outbox relay is off");
    }
    w->proc = eddy_processor_new(&w->rt.loop, &w->rt.ddb, &pc, eddy_clock_system(), seed, err);
    return w->proc ? EDDY_OK : err->code;
}

/* Of the drain, the seconds kept after the long polls for releasing what
 * they brought and for the rest of the shutdown. */
#define DRAIN_POLL_MARGIN_S 3

static eddy_err make_consumer(struct worker *w, struct eddy_error *err)
{
    const struct eddy_config *cfg = w->cfg;
    int64_t poll_s = cfg->drain_seconds - DRAIN_POLL_MARGIN_S;
    enum eddy_poison_policy pp = cfg->dlq_url_str ? EDDY_POISON_DLQ : EDDY_POISON_REDRIVE;
    if (cfg->on_poison_str && !eddy_poison_policy_parse(cfg->on_poison_str, &pp))
        return eddy_error_set(err, EDDY_ECONFIG, "EDDY_ON_POISON: \"%s\" is not dlq|redrive|drop",
                              cfg->on_poison_str);
    struct eddy_consumer_config cc = {
        .queue_url = cfg->queue_url_str,
        .dlq_url = cfg->dlq_url_str,
        .max_inflight = (int)cfg->max_inflight,
        .pollers = (int)cfg->pollers,
        .wait_s = (int)cfg->wait_seconds,
        .drain_poll_ms = poll_s > 0 ? (uint32_t)(poll_s * 1000) : 0,
        .visibility_s = (int)cfg->visibility_timeout,
        .coalesce_max = (int)cfg->coalesce_max,
        .rejected_to_dlq = (enum eddy_reject_policy)cfg->on_reject == EDDY_REJECT_DLQ,
        .on_poison = pp,
        .spec = &w->spec,
        .event_types = w->rt.m->event_types,
        .submit = submit,
        .submit_ud = w->proc,
        .probe = probe,
        .probe_ud = w,
        .probe_min_ms = (uint32_t)cfg->breaker_probe_ms,
        .probe_max_ms = (uint32_t)cfg->breaker_probe_max_ms,
        .metrics = w->metrics,
        .health = &w->health,
        .seed = uv_hrtime() * 2654435761u,
        .on_fatal = on_fatal,
        .on_fatal_ud = w,
    };
    w->cons = eddy_consumer_new(&w->rt.loop, &w->rt.sqs, &cc, err);
    return w->cons ? EDDY_OK : err->code;
}

/*
 * A health check that could fail while the worker is well gets its task
 * replaced by ECS, in a loop: the health file's folder must exist and be
 * writable (a read-only root file system), and the file must be allowed to
 * grow older than twice the longest quiet gap between two refreshes (an idle
 * worker refreshes it once a long poll; with DynamoDB down, once a probe).
 */
static eddy_err check_health(const struct eddy_config *cfg, struct eddy_error *err)
{
    const char *path = cfg->health_file_str;
    if (path == NULL || path[0] == '\0')
        return EDDY_OK;
    char *dir = eddy_strdup(path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    struct stat st;
    eddy_err rc = EDDY_OK;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        rc = eddy_error_set(err, EDDY_ECONFIG, "EDDY_HEALTH_FILE: folder %.200s does not exist",
                            dir);
    else if (access(dir, W_OK) != 0)
        rc = eddy_error_set(err, EDDY_ECONFIG,
                            "EDDY_HEALTH_FILE: folder %.200s is not writable (%s)", dir,
                            strerror(errno));
    free(dir);
    if (rc)
        return rc;
    int64_t probe_s = (cfg->breaker_probe_max_ms + 999) / 1000;
    if (cfg->health_max_age < 2 * cfg->wait_seconds)
        return eddy_error_set(err, EDDY_ECONFIG,
                              "EDDY_HEALTH_MAX_AGE (%lld s) must be at least twice "
                              "EDDY_WAIT_SECONDS (%lld s): an idle worker refreshes the health "
                              "file once a long poll",
                              (long long)cfg->health_max_age, (long long)cfg->wait_seconds);
    if (cfg->health_max_age < 2 * probe_s)
        return eddy_error_set(err, EDDY_ECONFIG,
                              "EDDY_HEALTH_MAX_AGE (%lld s) must be at least twice "
                              "EDDY_BREAKER_PROBE_MAX_MS (%lld ms): with DynamoDB down the "
                              "health file is refreshed once a probe",
                              (long long)cfg->health_max_age, (long long)cfg->breaker_probe_max_ms);
    return EDDY_OK;
}

static eddy_err setup(struct worker *w, struct eddy_error *err)
{
    const struct eddy_config *cfg = w->cfg;
    if (check_health(cfg, err) != EDDY_OK)
        return EDDY_ECONFIG;
    eddy_err rc = eddy_envelope_spec_init(&w->spec, cfg->entity_ptr_str, cfg->type_ptr_str,
                                          cfg->id_ptr_str, cfg->data_ptr_str, err);
    if (rc)
        return rc;
    w->spec_ok = true;
    eddy_envelope_spec_namespace(&w->spec, w->rt.ns);
    w->metrics = eddy_shell_metrics_new(cfg);
    eddy_health_init(&w->health, cfg->health_file_str);
    if ((rc = make_processor(w, err)) != EDDY_OK)
        return rc;
    return make_consumer(w, err);
}

static void start(struct worker *w)
{
    eddy_shell_start(&w->shell, &w->rt.loop, "worker", w->cfg->drain_seconds,
                     w->cfg->metrics_interval, shell_drain, shell_emit, w);
    if (w->relay && eddy_relay_start(w->relay) != EDDY_OK) {
        /* logged where it failed; no worker without the relay it was asked
         * for, as no `eddy relay` either */
        eddy_shell_fail(&w->shell, "the relay did not start");
        return;
    }
    eddy_consumer_start(w->cons);
}

static void teardown(struct worker *w)
{
    if (w->cons) /* not started: freed by the loop's last run */
        eddy_consumer_close(w->cons, NULL, NULL);
    eddy_relay_close(w->relay, NULL, NULL); /* one not closed yet goes in the cleanup's run */
    if (w->spec_ok)
        eddy_envelope_spec_cleanup(&w->spec);
    eddy_health_cleanup(&w->health);
    eddy_metrics_free(w->metrics);
}

int eddy_cmd_worker(struct eddy_cli_context *ctx)
{
    struct worker *w = eddy_calloc(1, sizeof *w);
    w->cfg = ctx->cfg;
    struct eddy_error err;
    eddy_error_clear(&err);
    int code = 0;
    if (eddy_runtime_init(&w->rt, ctx, &err) != EDDY_OK) {
        fprintf(stderr, "eddy worker: %s\n", eddy_error_text(&err));
        code = err.code == EDDY_ECONFIG ? 2 : 3;
        goto out;
    }
    if (setup(w, &err) != EDDY_OK) {
        fprintf(stderr, "eddy worker: %s\n", eddy_error_text(&err));
        code = err.code == EDDY_ECONFIG ? 2 : 3;
        if (w->proc)
            eddy_processor_close(w->proc, NULL, NULL);
        goto cleanup;
    }
    start(w);
    uv_run(&w->rt.loop, UV_RUN_DEFAULT);
    code = w->shell.exit_code;
cleanup:
    teardown(w);
    if (eddy_runtime_cleanup(&w->rt) != 0 && code == 0)
        code = 3;
out:
    free(w);
    return code;
}
