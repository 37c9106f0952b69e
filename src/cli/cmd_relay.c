/*
 * cmd_relay.c - `eddy relay`: the outbox relay alone, without consuming.
 *
 * Runs the relay (leased shards, poll interval) until SIGTERM or SIGINT,
 * then lets it finish the PutEvents calls in hand and delete their entries,
 * gives the leases back and exits 0. The process shell (shell.h) is the
 * worker's: past EDDY_DRAIN_SECONDS, or on a second signal, it exits 1 at
 * once (entries not yet deleted stay in the outbox and are published by
 * whoever takes the shard next). Metrics go to stdout as EMF lines every
 * EDDY_METRICS_INTERVAL seconds and at exit.
 */
#include <stdio.h>
#include <stdlib.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "cli/commands.h"
#include "cli/runtime.h"
#include "cli/shell.h"
#include "relay/relay.h"
#include "base/metrics.h"

struct relay_cmd {
    struct eddy_runtime rt;
    struct eddy_relay *relay;
    struct eddy_metrics *metrics;
    struct eddy_shell shell;
    bool stopped;
};

static void shell_emit(void *ud)
{
    struct relay_cmd *c = ud;
    eddy_shell_metric_line(&c->rt, c->metrics);
}

static void on_relay_stopped(void *ud)
{
    struct relay_cmd *c = ud;
    c->stopped = true;
    c->relay = NULL; /* freed after this call */
    eddy_shell_close(&c->shell);
}

static void shell_drain(void *ud, const char *why)
{
    struct relay_cmd *c = ud;
    (void)why;
    eddy_relay_close(c->relay, on_relay_stopped, c);
}

static eddy_err relay_create(struct relay_cmd *c, const struct eddy_config *cfg,
                             struct eddy_error *err)
{
    c->metrics = eddy_shell_metrics_new(cfg);
    c->relay = eddy_shell_relay_new(&c->rt, cfg, c->metrics, 0, err);
    if (c->relay == NULL)
        return err->code;
    eddy_err rc = eddy_relay_start(c->relay);
    if (rc != EDDY_OK)
        return eddy_error_set(err, rc, "the relay did not start");
    return EDDY_OK;
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
    } else {
        eddy_shell_start(&c->shell, &c->rt.loop, "relay", cfg->drain_seconds, cfg->metrics_interval,
                         shell_drain, shell_emit, c);
        uv_run(&c->rt.loop, UV_RUN_DEFAULT);
        code = c->stopped ? c->shell.exit_code : 3;
    }
    eddy_relay_close(c->relay, NULL, NULL); /* one not closed yet goes in the cleanup's run */
    if (eddy_runtime_cleanup(&c->rt) != 0)
        code = 3;
    eddy_metrics_free(c->metrics);
    free(c);
    return code;
}
