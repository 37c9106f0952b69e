/*
 * itest_support.h - what eddy's C integration tests share: the AWS plumbing
 * built from the environment (as the eddy binary builds it), a way to wait
 * on the loop for one call, a synchronous raw JSON-protocol call for setup
 * (CreateTable, CreateQueue, CreateEventBus, ...: calls eddy itself never
 * makes), and names unique to the run.
 *
 * The endpoints, region, credentials and CA bundle come from the variables
 * tests/integration/with-local-aws exports (see meson.build there). Nothing
 * here talks to anything but the local AWS.
 */
#ifndef EDDY_ITEST_SUPPORT_H
#define EDDY_ITEST_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include <cjson/cJSON.h>

#include "aws/awscall.h"
#include "aws/credentials.h"
#include "aws/http.h"
#include "svc/dynamodb.h"
#include "svc/eventbridge.h"
#include "svc/sqs.h"

/* The plumbing: a loop, the real HTTP client, the real credential chain,
 * the shared AWS context and the three service clients. */
struct itest_rig {
    uv_loop_t loop;
    struct eddy_http *http;
    struct eddy_creds *creds;
    struct eddy_aws aws;
    struct eddy_sqs sqs;
    struct eddy_ddb ddb;
    struct eddy_eb eb;
};

/* Build everything from the environment (AWS_CA_BUNDLE, the credential
 * chain, AWS_REGION, AWS_ENDPOINT_URL*). max_attempts 0: AWS_MAX_ATTEMPTS or 3.
 * Fails the test on any error. */
void itest_rig_open(struct itest_rig *r, unsigned max_attempts);
/* Tear down in reverse order, run the loop dry, assert uv_loop_close == 0. */
void itest_rig_close(struct itest_rig *r);

/* What one call's callback saw. */
struct itest_wait {
    int calls;
    eddy_err err;
    long status;
    unsigned attempts;
    char code[128];
    char message[256];
    char detail[EDDY_ERROR_DETAIL_MAX];
};

/* Record a callback's outcome in w (reply may be NULL). */
void itest_done(struct itest_wait *w, eddy_err err, const struct eddy_aws_reply *reply);
/* Run the loop until w's callback ran (exactly once), at most timeout_s. */
void itest_run(struct itest_rig *r, struct itest_wait *w, double timeout_s);

/* One raw JSON-protocol call on client c, waited for. body is JSON text.
 * *out (out may be NULL) gets a copy of the reply JSON, owned by the caller.
 * Returns the call's error; w (may be NULL) gets the details. */
eddy_err itest_call(struct itest_rig *r, struct eddy_aws_client *c, const char *op,
                    const char *body, cJSON **out, struct itest_wait *w);

/* "<prefix>-<16 random hex digits>" into out (at least 80 bytes). */
void itest_unique_name(const char *prefix, char *out, size_t size);

/* A table shaped like eddy's (_pk/_sk strings, on demand). */
void itest_create_table(struct itest_rig *r, const char *name);
void itest_delete_table(struct itest_rig *r, const char *name);
/* A standard queue; url and arn get malloc'd strings. */
void itest_create_queue(struct itest_rig *r, const char *name, char **url, char **arn);
void itest_delete_queue(struct itest_rig *r, const char *url);

/* One AWS query-protocol call (IAM, STS: form in, XML out) to AWS_ENDPOINT_URL,
 * signed as service with the environment's key (no session token), waited
 * for. params are "Name", "value" pairs (values are form-encoded here),
 * NULL-terminated. Returns the HTTP status (0 when none came back) and the
 * body in *xml (malloc'd). For setup only: eddy speaks the JSON protocol. */
long itest_query(struct itest_rig *r, const char *service, char **xml, ...);
/* The text of the first <tag>...</tag> in xml (malloc'd), or NULL. */
char *itest_xml_text(const char *xml, const char *tag);

/* A cJSON tree from literal JSON text; fails the test when malformed. */
cJSON *itest_json(const char *text);
/* The string at obj.k1.k2 ... (NULL-terminated keys), or NULL. */
const char *itest_jstr(const cJSON *obj, ...);

/* Seconds on a monotonic clock. */
double itest_now(void);

#endif
