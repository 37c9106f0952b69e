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
 * The first provider that yields wins. A configuration error (one of the
 * two environment keys set without the other, an AWS_PROFILE naming no
 * profile, a bad container URI or token) stops the chain with EDDY_ECONFIG.
 * When the ECS variables are set the container endpoint is authoritative: if
 * it fails, IMDS is not asked (a task must not quietly run with the instance
 * role), as the AWS SDKs do. When nothing yields, EDDY_ECREDENTIALS with a
 * detail naming each provider and why it gave nothing.
 *
 * Temporary credentials are cached and refreshed from a loop timer before
 * they expire (refresh_ahead before expiry, or at half their lifetime when
 * they live less than twice that); the old ones are served until the new
 * ones land. eddy_creds_current never returns credentials within the margin
 * of their expiry, so no request is signed with expired ones; a caller that
 * gets NULL calls eddy_creds_get and waits. A failed refresh keeps the old
 * credentials while they are valid and retries with exponential backoff.
 * Secrets are wiped when replaced or freed and never logged; error details
 * name providers and reasons only.
 */
#ifndef EDDY_AWS_CREDENTIALS_H
#define EDDY_AWS_CREDENTIALS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "aws/http.h"
#include "base/clock.h"
#include "base/closer.h"
#include "base/err.h"

struct eddy_credentials {
    char *access_key_id;
    char *secret_access_key;
    char *session_token;     /* NULL when none */
    int64_t expires_unix_ms; /* 0: does not expire */
    const char *provider;    /* "environment", "shared-files", "ecs", "imds", "static" */
};

struct eddy_creds;

/*
 * transport is used for the ECS and IMDS providers (ops may be NULL: those
 * providers then report that they have no transport); clock for expiry (NULL:
 * the system clock). Nothing is resolved until the first eddy_creds_get.
 * NULL when loop is NULL.
 */
struct eddy_creds *eddy_creds_new(uv_loop_t *loop, struct eddy_transport transport,
                                  const struct eddy_clock *clock);

/* Tunables; eddy_creds_new starts with EDDY_CREDS_TIMING_DEFAULT. */
struct eddy_creds_timing {
    uint32_t refresh_ahead_ms; /* refresh this long before expiry (5 min) */
    uint32_t margin_ms;        /* current() gives NULL this close to expiry (60 s) */
    uint32_t retry_min_ms;     /* first retry after a failed refresh (1 s) */
    uint32_t retry_max_ms;     /* backoff cap (60 s) */
};
#define EDDY_CREDS_TIMING_DEFAULT ((struct eddy_creds_timing){300000, 60000, 1000, 60000})
void eddy_creds_set_timing(struct eddy_creds *c, const struct eddy_creds_timing *t);

/*
 * Credentials usable now (not within the margin of expiry), or NULL. Valid
 * until control returns to the loop (a refresh may replace them then).
 * Past the refresh point, this also starts a background refresh (from the
 * loop) in case the timer was late (a suspended host, a clock step).
 */
const struct eddy_credentials *eddy_creds_current(struct eddy_creds *c);

/*
 * Called once, from the loop. On failure creds is NULL and detail names each
 * provider tried and why it gave nothing. Pointers valid during the call only.
 */
typedef void (*eddy_creds_cb)(eddy_err err, const struct eddy_credentials *creds,
                              const char *detail, void *ud);

/*
 * Resolve (or reuse) credentials. Concurrent gets share one resolution.
 * Returns EDDY_EINVAL (no cb) or EDDY_ECANCELED (closing) without calling
 * cb; otherwise cb runs once, later, from the loop. Errors given to cb:
 * EDDY_ECONFIG, EDDY_ECREDENTIALS, EDDY_ECANCELED.
 *
 * The shared files (and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE) are read
 * synchronously on the loop when a resolution runs: they are small local
 * files read once per resolution, which happens at start and at most once
 * per refresh.
 */
EDDY_MUST_USE eddy_err eddy_creds_get(struct eddy_creds *c, eddy_creds_cb cb, void *ud);

/* Stop the refresh timer and cancel an ECS/IMDS request in flight; once
 * its handles are closed and the transport has answered the canceled
 * request, from the loop: fail pending gets with EDDY_ECANCELED, call cb
 * (may be NULL), then free c. Close c before (or in the same loop turn as)
 * the transport, then run the loop. Closing twice does nothing the second
 * time. */
void eddy_creds_close(struct eddy_creds *c, eddy_close_cb cb, void *ud);

/* A fixed provider (tests, tools): never expires, no I/O. */
struct eddy_creds *eddy_creds_new_static(uv_loop_t *loop, const char *access_key_id,
                                         const char *secret_access_key, const char *session_token);

/*
 * Parse an ECS or IMDS credentials document (AccessKeyId, SecretAccessKey,
 * Token, Expiration as RFC 3339; with require_code, Code must be "Success")
 * into out, whose strings are then owned by the caller (free them with
 * eddy_credentials_cleanup). provider must be a static string. EDDY_EPARSE
 * with a detail naming the field on malformed input, EDDY_ECREDENTIALS when
 * Code is not "Success"; out is untouched on error.
 */
EDDY_MUST_USE eddy_err eddy_creds_parse_document(struct eddy_str body, const char *provider,
                                                 bool require_code, struct eddy_credentials *out,
                                                 struct eddy_error *err);
/* Wipe and free the strings of c and zero it. */
void eddy_credentials_cleanup(struct eddy_credentials *c);
/* "2026-11-27T23:00:00Z", fractional seconds and +hh:mm offsets accepted. */
EDDY_MUST_USE eddy_err eddy_creds_parse_time(struct eddy_str s, int64_t *unix_ms);

#endif
