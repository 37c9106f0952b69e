/*
 * runtime.c - build and tear down the AWS plumbing for a command (see
 * runtime.h).
 */
#include "cli/runtime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"

enum {
    PART_LOOP = 1,
    PART_HTTP = 2,
    PART_CREDS = 4,
    PART_AWS = 8,
    PART_DDB = 16,
    PART_SQS = 32,
    PART_EB = 64,
    PART_MACHINE = 128,
    PART_EB2 = 256,
};

void eddy_runtime_count_connections(struct eddy_runtime *rt, struct eddy_metrics *m)
{
    if (!(rt->parts & PART_HTTP))
        return;
    struct eddy_http_stats st;
    eddy_http_stats(rt->http, &st);
    eddy_metrics_add(m, EDDY_METRIC_connections, st.sockets_opened - rt->connections_counted);
    rt->connections_counted = st.sockets_opened;
}

static eddy_err init_clients(struct eddy_runtime *rt, struct eddy_error *err)
{
    struct eddy_http_config hc = {0};
    hc.ca_bundle = getenv("AWS_CA_BUNDLE");
    if (hc.ca_bundle && *hc.ca_bundle == '\0')
        hc.ca_bundle = NULL;
    if (hc.ca_bundle && access(hc.ca_bundle, R_OK) != 0) /* else every call fails, unexplained */
        return eddy_error_set(err, EDDY_ECONFIG, "AWS_CA_BUNDLE: cannot read %.200s (%s)",
                              hc.ca_bundle, strerror(errno));
    rt->http = eddy_http_new(&rt->loop, &hc, err);
    if (rt->http == NULL)
        return err ? err->code : EDDY_EIO;
    rt->parts |= PART_HTTP;
    rt->creds = eddy_creds_new(&rt->loop, eddy_http_transport(rt->http), eddy_clock_system());
    rt->parts |= PART_CREDS;
    struct eddy_aws_config ac = {0};
    ac.loop = &rt->loop;
    ac.transport = eddy_http_transport(rt->http);
    ac.creds = rt->creds;
    eddy_err rc = eddy_aws_init(&rt->aws, &ac, err);
    if (rc)
        return rc;
    rt->parts |= PART_AWS;
    if ((rc = eddy_ddb_init(&rt->ddb, &rt->aws, NULL, err)) != EDDY_OK)
        return rc;
    rt->parts |= PART_DDB;
    if ((rc = eddy_sqs_init(&rt->sqs, &rt->aws, NULL, err)) != EDDY_OK)
        return rc;
    rt->parts |= PART_SQS;
    if ((rc = eddy_eb_init(&rt->eb, &rt->aws, NULL, err)) != EDDY_OK)
        return rc;
    rt->parts |= PART_EB;
    return EDDY_OK;
}

/* The Custom Event Bus client when EDDY_EVENT_BUS names one. A value that
 * looks meant for one but is not its ARN is refused here, naming the
 * variable, rather than sent to the classic bus as a name. */
static eddy_err init_custom_bus(struct eddy_runtime *rt, const char *bus, struct eddy_error *err)
{
    if (bus == NULL || strstr(bus, ":event-busv2/") == NULL)
        return EDDY_OK;
    struct eddy_error e = {0};
    if (eddy_eb2_init(&rt->eb2, &rt->aws, bus, NULL, &e) != EDDY_OK)
        return eddy_error_set(err, e.code, "EDDY_EVENT_BUS: %s", e.detail);
    rt->parts |= PART_EB2;
    rt->eb2_on = true;
    return EDDY_OK;
}

eddy_err eddy_runtime_init(struct eddy_runtime *rt, const struct eddy_cli_context *ctx,
                           struct eddy_error *err)
{
    memset(rt, 0, sizeof *rt);
    const struct eddy_config *cfg = ctx->cfg;
    if (cfg->machine_str == NULL)
        return eddy_error_set(err, EDDY_ECONFIG, "EDDY_MACHINE is required (e.g. slotmachine)");
    if (cfg->table_str == NULL)
        return eddy_error_set(err, EDDY_ECONFIG, "EDDY_TABLE is required");
    eddy_err rc =
        eddy_machine_select(cfg->machine_str, ctx->machines, ctx->nmachines, &rt->machine, err);
    if (rc)
        return rc;
    rt->parts |= PART_MACHINE;
    rt->m = rt->machine.machine;
    rt->ns = cfg->ns_str ? cfg->ns_str : rt->m->name;
    eddy_record_default_source(rt->ns, rt->default_source);
    rt->event_source = cfg->event_source_str ? cfg->event_source_str : rt->default_source;
    if (uv_loop_init(&rt->loop) != 0) {
        rc = eddy_error_set(err, EDDY_EIO, "cannot create the event loop");
        goto fail;
    }
    rt->parts |= PART_LOOP;
    if ((rc = init_clients(rt, err)) != EDDY_OK ||
        (rc = init_custom_bus(rt, cfg->event_bus_str, err)) != EDDY_OK)
        goto fail;
    return EDDY_OK;
fail:
    eddy_runtime_cleanup(rt);
    return rc;
}

/* The HTTP client goes last: the credential chain may still have a request
 * on it, whose callback its close waits for. */
static void creds_closed(void *ud)
{
    struct eddy_runtime *rt = ud;
    if (rt->parts & PART_HTTP)
        eddy_http_close(rt->http, NULL, NULL);
}

int eddy_runtime_cleanup(struct eddy_runtime *rt)
{
    int rc = 0;
    if (rt->parts & PART_EB2)
        eddy_eb2_cleanup(&rt->eb2);
    if (rt->parts & PART_EB)
        eddy_eb_cleanup(&rt->eb);
    if (rt->parts & PART_SQS)
        eddy_sqs_cleanup(&rt->sqs);
    if (rt->parts & PART_DDB)
        eddy_ddb_cleanup(&rt->ddb);
    if (rt->parts & PART_AWS)
        eddy_aws_cleanup(&rt->aws);
    if (rt->parts & PART_CREDS)
        eddy_creds_close(rt->creds, creds_closed, rt);
    else
        creds_closed(rt);
    if (rt->parts & PART_LOOP) {
        uv_run(&rt->loop, UV_RUN_DEFAULT);
        rc = uv_loop_close(&rt->loop);
        if (rc != 0)
            EDDY_ERROR("event loop did not close cleanly: %s", uv_strerror(rc));
    }
    if (rt->parts & PART_MACHINE)
        eddy_machine_release(&rt->machine);
    rt->parts = 0;
    return rc;
}
