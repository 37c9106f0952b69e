/*
 * credentials.h - the AWS credential chain, cached and refreshed on the loop.
 *
 * Providers, in order (as the AWS SDKs do):
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *   2. shared files: AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials),
 *      AWS_CONFIG_FILE (~/.aws/config), profile AWS_PROFILE (default)
 *   3. ECS container endpoint: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on
 *      http://169.254.170.2) or AWS_CONTAINER_CREDENTIALS_FULL_URI, with
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN or _FILE sent raw in Authorization
 *   4. IMDSv2: PUT token, GET role, GET credentials; AWS_EC2_METADATA_DISABLED,
 *      AWS_EC2_METADATA_SERVICE_ENDPOINT
 *
 * Temporary credentials are cached and refreshed from a loop timer before
 * they expire; eddy_creds_current never returns credentials that expire
 * within the refresh margin, so no request is signed with expired ones.
 * Secrets are wiped when freed and never logged.
 */
#ifndef EDDY_AWS_CREDENTIALS_H
#define EDDY_AWS_CREDENTIALS_H

#include <stdint.h>
#include <uv.h>

#include "aws/http.h"
#include "base/clock.h"
#include "base/err.h"

struct eddy_credentials {
    char *access_key_id;
    char *secret_access_key;
    char *session_token;     /* NULL when none */
    int64_t expires_unix_ms; /* 0: does not expire */
    const char *provider;    /* "environment", "shared-files", "ecs", "imds" (static) */
};

struct eddy_creds;

/*
 * transport is used for the ECS and IMDS providers; clock for expiry.
 * Nothing is resolved until the first eddy_creds_get.
 */
struct eddy_creds *eddy_creds_new(uv_loop_t *loop, struct eddy_transport transport,
                                  const struct eddy_clock *clock);

/* Credentials usable now (not within the refresh margin of expiry), or NULL. */
const struct eddy_credentials *eddy_creds_current(struct eddy_creds *c);

/*
 * Called once, from the loop. On failure creds is NULL and detail names each
 * provider tried and why it gave nothing. Pointers valid during the call only.
 */
typedef void (*eddy_creds_cb)(eddy_err err, const struct eddy_credentials *creds,
                              const char *detail, void *ud);

/* Resolve (or reuse) credentials. Concurrent gets share one resolution. */
eddy_err eddy_creds_get(struct eddy_creds *c, eddy_creds_cb cb, void *ud);

/* Stop the refresh timer, fail pending gets with EDDY_ECANCELED, and free c
 * once its handles are closed. */
void eddy_creds_close(struct eddy_creds *c);

/* A fixed provider (tests, tools): never expires, no I/O. */
struct eddy_creds *eddy_creds_new_static(uv_loop_t *loop, const char *access_key_id,
                                         const char *secret_access_key,
                                         const char *session_token);

#endif
