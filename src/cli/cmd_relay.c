/*
 * cmd_relay.c - `eddy relay`: the outbox relay alone, without consuming.
 *
 * Runs the relay (leased shards, poll interval) until SIGTERM or SIGINT,
 * then lets it finish the PutEvents calls in hand and delete their entries,
 * gives the leases back and exits 0. If that takes longer than
 * EDDY_DRAIN_SECONDS, the calls still in flight are cancelled (their entries
 * stay in the outbox and are published by whoever takes the shard next).
 * Metrics go to stdout as EMF lines every EDDY_METRICS_INTERVAL seconds.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "cli/commands.h"
#include "cli/runtime.h"
#include "relay/busv2.h"
#include "relay/relay.h"
#include "base/metrics.h"

struct relay_cmd {
    struct eddy_runtime rt;
    struct eddy_relay *relay;
    struct eddy_metrics *metrics;
    uv_signal_t sigterm, sigint;
    uv_timer_t drain, emit;
    uint64_t drain_ms, emit_ms;
    bool stopping, stopped;
};

static void emit_metrics(struct relay_cmd *c)
{
    eddy_runtime_count_connections(&c->rt, c->metrics);
    if (eddy_metrics_emit(c->metrics, stdout, eddy_clock_unix_ms(eddy_clock_system()), "eddy") ==
        EDDY_OK)
        fflush(stdout);
}

static void on_emit(uv_timer_t *t)
{
    emit_metrics(eddy_container_of(t, struct relay_cmd, emit));
}

static void on_relay_stopped(void *ud)
{
    struct relay_cmd *c = ud;
    c->stopped = true;
    emit_metrics(c);
    uv_close((uv_handle_t *)&c->sigterm, NULL);
    uv_close((uv_handle_t *)&c->sigint, NULL);
    uv_close((uv_handle_t *)&c->drain, NULL);
    uv_close((uv_handle_t *)&c->emit, NULL);
}

/* The drain budget ran out: cancel what is in flight so the relay ends. */
static void on_drain(uv_timer_t *t)
{
    struct relay_cmd *c = eddy_container_of(t, struct relay_cmd, drain);
    EDDY_WARN("relay: drain budget of %llu ms spent; cancelling the calls in flight",
              (unsigned long long)c->drain_ms);
    eddy_aws_client_cancel_all(&c->rt.eb.client);
    eddy_aws_client_cancel_all(&c->rt.ddb.client);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct relay_cmd *c = h->data;
    if (c->stopping)
        return;
    c->stopping = true;
    EDDY_INFO("relay: signal %d: finishing the batch in hand, giving the leases back", signum);
    uv_timer_start(&c->drain, on_drain, c->drain_ms, 0);
    eddy_relay_stop(c->relay, on_relay_stopped, c);
}

static eddy_err relay_create(struct relay_cmd *c, const struct eddy_config *cfg,
                             struct eddy_error *err)
{
    enum eddy_metrics_mode mode = EDDY_METRICS_EMF;
    eddy_metrics_mode_parse(cfg->metrics_str, &mode);
    c->metrics = eddy_metrics_new(mode);
    struct eddy_buf source;
    eddy_buf_init(&source, 0);
    if (cfg->event_source_str)
        eddy_buf_appends(&source, cfg->event_source_str);
    else
        eddy_buf_appendf(&source, "eddy.%s", c->rt.ns);
    struct eddy_relay_config rc = {
        .table = cfg->table_str,
        .shards = (uint32_t)cfg->outbox_shards,
        .event_bus = cfg->event_bus_str,
        .event_source = eddy_buf_cstr(&source),
        .poll_ms = (uint32_t)cfg->relay_poll_ms,
        .lease_ms = (uint32_t)cfg->lease_ms,
        .grace_ms = (uint32_t)cfg->outbox_grace * 1000,
        .sweep_max_ms = (uint32_t)cfg->sweep_max * 1000,
        .attempts = (uint32_t)cfg->publish_attempts,
    };
    if (c->rt.eb2_on) { /* a Custom Event Bus ARN */
        rc.bus = &eddy_relay_bus_v2;
        rc.bus_client = &c->rt.eb2;
    }
    c->relay = eddy_relay_new(&c->rt.loop, &c->rt.ddb, &c->rt.eb, &rc, NULL, c->metrics, err);
    eddy_buf_cleanup(&source);
    if (c->relay == NULL)
        return err->code;
    if (eddy_relay_start(c->relay) != EDDY_OK)
        return eddy_error_set(err, EDDY_EINVAL, "the relay did not start");
    return EDDY_OK;
}

static void handles_start(struct relay_cmd *c, const struct eddy_config *cfg)
{
    uv_loop_t *loop = &c->rt.loop;
    c->drain_ms = (uint64_t)cfg->drain_seconds * 1000;
    c->emit_ms = (uint64_t)cfg->metrics_interval * 1000;
    uv_signal_init(loop, &c->sigterm);
    uv_signal_init(loop, &c->sigint);
    c->sigterm.data = c;
    c->sigint.data = c;
    uv_signal_start(&c->sigterm, on_signal, SIGTERM);
    uv_signal_start(&c->sigint, on_signal, SIGINT);
    uv_timer_init(loop, &c->drain);
    uv_timer_init(loop, &c->emit);
    uv_timer_start(&c->emit, on_emit, c->emit_ms, c->emit_ms);
}

int eddy_cmd_relay(struct eddy_cli_context *ctx)
{
    const struct eddy_config *cfg = ctx->cfg;
    struct eddy_error err;
    eddy_error_clear(&err);
    if (cfg->event_bus_str == NULL || cfg->event_bus_str[0] == '\0') {
        fprintf(stderr, "eddy relay: EDDY_EVENT_BUS is required for the relay\n");
        return 2;
    }
    struct relay_cmd *c = eddy_calloc(1, sizeof *c);
    int code = 0;
    eddy_err rc = eddy_runtime_init(&c->rt, ctx, &err);
    if (rc != EDDY_OK) {
        fprintf(stderr, "eddy relay: %s\n", eddy_error_text(&err));
        free(c);
        return rc == EDDY_ECONFIG ? 2 : 3;
    }
    if ((rc = relay_create(c, cfg, &err)) != EDDY_OK) {
        fprintf(stderr, "eddy relay: %s\n", eddy_error_text(&err));
        code = rc == EDDY_ECONFIG ? 2 : 3;
        if (c->relay)
            eddy_relay_stop(c->relay, NULL, NULL);
    } else {
        handles_start(c, cfg);
        uv_run(&c->rt.loop, UV_RUN_DEFAULT);
        code = c->stopped ? 0 : 3;
    }
    if (eddy_runtime_cleanup(&c->rt) != 0)
        code = 3;
    eddy_relay_free(c->relay);
    eddy_metrics_free(c->metrics);
    free(c);
    return code;
}
