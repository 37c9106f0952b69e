/*
 * creds_provider.h - inside the credential chain (credentials.c): the state
 * of struct eddy_creds, the one interface every provider implements (one
 * provider a file, as aws-c-auth does: creds_env.c, creds_files.c,
 * creds_ecs.c, creds_imds.c) and the helpers they share. Not for use
 * outside src/aws.
 */
#ifndef EDDY_AWS_CREDS_PROVIDER_H
#define EDDY_AWS_CREDS_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/credentials.h"
#include "base/buf.h"
#include "base/closer.h"
#include "base/list.h"

#define ECS_HOST_URL "http://169.254.170.2"
#define IMDS_DEFAULT_URL "http://169.254.169.254"
#define IMDS_IPV6_URL "http://[fd00:ec2::254]"
#define ECS_TIMEOUT_MS 2000u
#define ECS_ATTEMPTS 3u /* as the SDKs ask the container endpoint */
#define IMDS_TIMEOUT_MS 1000u
#define REPLY_MAX ((size_t)64 << 10)
#define SHARED_FILE_MAX ((size_t)1 << 20)
#define TOKEN_FILE_MAX ((size_t)16 << 10)
#define DETAIL_MAX ((size_t)4096)

struct waiter {
    eddy_creds_cb cb;
    void *ud;
    struct eddy_list link; /* in c->waiters */
};

enum step { STEP_NONE, STEP_ECS, STEP_IMDS_TOKEN, STEP_IMDS_ROLE, STEP_IMDS_CREDS };

/*
 * What a provider concluded: credentials found; nothing here, try the next;
 * a configuration error (EDDY_ECONFIG); configured but failed, so the chain
 * stops (EDDY_ECREDENTIALS); a request is in flight; a failure that may pass,
 * so the provider starts again after timing.retry_min_ms (c->attempts counts
 * its tries within the resolution).
 */
enum outcome { FOUND, NOTHING, FATAL, STOP, PENDING, AGAIN };

struct eddy_creds {
    uv_loop_t *loop;
    struct eddy_transport transport;
    const struct eddy_clock *clock;
    struct eddy_creds_timing timing;
    bool is_static;

    struct eddy_credentials cur; /* valid when have */
    bool have;
    int64_t refresh_at; /* unix ms; 0 when cur does not expire */
    uint32_t retry_ms;  /* next backoff after a failed refresh; 0 = none yet */

    uv_timer_t kick;
    uv_timer_t refresh;
    uv_timer_t again;         /* a provider's next try (AGAIN) */
    struct eddy_list waiters; /* struct waiter, oldest first */
    bool want_refresh;

    /* the resolution in progress */
    bool resolving;
    size_t provider;   /* the chain's provider that owns the request in flight */
    unsigned attempts; /* that provider's tries so far */
    enum step step;
    bool inflight;
    uint64_t req_id;
    struct eddy_buf detail;
    char *imds_base;
    char *imds_token; /* secret */

    struct eddy_closer closer; /* closing once it began */
};

/*
 * A provider. start is called in chain order until one does not say NOTHING;
 * a provider that sends a request returns PENDING and gets its reply in done
 * (NULL for the providers that answer at once).
 */
struct creds_provider {
    const char *name;
    enum outcome (*start)(struct eddy_creds *c, struct eddy_credentials *out);
    enum outcome (*done)(struct eddy_creds *c, eddy_err err, const struct eddy_http_response *resp,
                         struct eddy_credentials *out);
};

extern const struct creds_provider creds_env_provider;   /* creds_env.c */
extern const struct creds_provider creds_files_provider; /* creds_files.c */
extern const struct creds_provider creds_ecs_provider;   /* creds_ecs.c */
extern const struct creds_provider creds_imds_provider;  /* creds_imds.c */

/* The detail text: "provider: reason; provider: reason". */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void creds_note(struct eddy_creds *c, const char *fmt, ...);
/* An environment variable, with "" treated as unset (as the SDKs do). */
const char *creds_env(const char *name);
/* Read a whole small file. Returns 0 or an errno value (EFBIG over max). */
int creds_read_small_file(const char *path, size_t max, char **out, size_t *len);
bool creds_is_http_url(const char *u);
EDDY_MUST_USE eddy_err creds_send_req(struct eddy_creds *c, enum step step, const char *method,
                                      const char *url, const char *const *headers, size_t nheaders,
                                      uint32_t timeout_ms);
/* "Name: value" for a header that may hold a secret (free with eddy_free_secret). */
char *creds_header_line(const char *name, const char *value);
void creds_trim(char *s, size_t *len);
/* A reply worth parsing, or a note saying why not. */
bool creds_reply_ok(struct eddy_creds *c, const char *what, eddy_err err,
                    const struct eddy_http_response *resp);

#endif
