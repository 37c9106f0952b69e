/*
 * runtime.h - what every command needs to talk to AWS, built from the
 * configuration: the loop, the HTTP client, the credential chain, the shared
 * AWS context, the service clients (the Custom Event Bus's too when
 * EDDY_EVENT_BUS is its ARN) and the selected machine.
 *
 * eddy_runtime_init either builds all of it or nothing (and fills err);
 * eddy_runtime_cleanup tears it down in reverse order, running the loop until
 * every handle is closed, and reports whether uv_loop_close succeeded.
 */
#ifndef EDDY_CLI_RUNTIME_H
#define EDDY_CLI_RUNTIME_H

#include <stdbool.h>
#include <uv.h>

#include "aws/awscall.h"
#include "aws/credentials.h"
#include "aws/http.h"
#include "base/metrics.h"
#include "cli/commands.h"
#include "core/machine.h"
#include "core/record.h"
#include "svc/dynamodb.h"
#include "svc/eventbridge.h"
#include "svc/eventbridge2.h"
#include "svc/sqs.h"

struct eddy_runtime {
    uv_loop_t loop;
    struct eddy_http *http;
    struct eddy_creds *creds;
    struct eddy_aws aws;
    struct eddy_ddb ddb;
    struct eddy_sqs sqs;
    struct eddy_eb eb;
    struct eddy_eb2 eb2; /* when EDDY_EVENT_BUS is a Custom Event Bus ARN (eb2_on) */
    bool eb2_on;
    struct eddy_machine_ref machine;
    const struct eddy_machine *m; /* machine.machine */
    const char *ns;               /* EDDY_NAMESPACE or the machine's name */
    /* EDDY_EVENT_SOURCE, or the default "eddy.<ns>" (core/record.h) */
    const char *event_source;
    char default_source[EDDY_RECORD_SOURCE_MAX];
    unsigned parts;               /* what was initialised, for cleanup */
    uint64_t connections_counted; /* see eddy_runtime_count_connections */
};

/* Build the runtime. needs_table/needs_queue check the required settings. */
EDDY_MUST_USE eddy_err eddy_runtime_init(struct eddy_runtime *rt,
                                         const struct eddy_cli_context *ctx,
                                         struct eddy_error *err);
/* Add the connections the HTTP client opened since the last call to the
 * metric "connections". */
void eddy_runtime_count_connections(struct eddy_runtime *rt, struct eddy_metrics *m);
/* Returns 0 when the loop closed cleanly, else a negative libuv code. */
int eddy_runtime_cleanup(struct eddy_runtime *rt);

#endif
