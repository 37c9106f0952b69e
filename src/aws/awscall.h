/*
 * awscall.h - one call of the AWS JSON protocol (awsJson1_0 / awsJson1_1),
 * signed, retried and classified.
 *
 * struct eddy_aws is what every service client shares: the loop, the
 * transport, the credentials, the clock, a seeded generator for backoff
 * jitter and AWS_MAX_ATTEMPTS. struct eddy_aws_client is one per service: its
 * endpoint, its retry quota (as the SDKs keep one per client), its SigV4 key
 * cache and the header lines that never change, built once.
 *
 * A call POSTs the JSON body with X-Amz-Target "<prefix>.<Operation>"
 * (services of the Smithy RPC v2 CBOR protocol: the CBOR body to
 * <endpoint path>service/<prefix>/operation/<Operation> with
 * "Smithy-Protocol: rpc-v2-cbor" and "Accept: application/cbor", the reply
 * decoded by aws/cbor.h into the same cJSON tree), signs every attempt afresh (new X-Amz-Date,
 * X-Amz-Security-Token when the credentials carry one), and retries as the SDKs' standard mode
 * does: throttling, transient errors, 5xx, connection errors and timeouts, with exponential backoff
 * and full jitter capped at 20 s, while the retry quota lasts, up to max attempts. Errors are read
 * from `__type` (namespace and
 * ":..." suffix dropped), `message`/`Message`, and the x-amzn-query-error
 * header SQS sends for compatibility with its query protocol.
 *
 * Async contract: eddy_aws_call that returns an error never calls cb;
 * otherwise cb runs exactly once, later, from the loop.
 */
#ifndef EDDY_AWS_AWSCALL_H
#define EDDY_AWS_AWSCALL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <cjson/cJSON.h>

#include "aws/credentials.h"
#include "aws/endpoint.h"
#include "aws/http.h"
#include "aws/retry.h"
#include "aws/sigv4.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/json.h"
#include "base/list.h"
#include "eddy/rng.h"

struct eddy_aws_config {
    uv_loop_t *loop;
    struct eddy_transport transport;
    struct eddy_creds *creds;       /* borrowed; outlives the context */
    const struct eddy_clock *clock; /* NULL: the system clock */
    const char *region;             /* NULL: from the environment */
    unsigned max_attempts;          /* 0: AWS_MAX_ATTEMPTS, else 3 */
    uint64_t seed;                  /* backoff jitter; 0: from the clock */
    /* Test hooks: backoff base and cap in ms (0: the standard 1000 and 20000). */
    uint32_t backoff_base_ms;
    uint32_t backoff_max_ms;
};

/* The shared context. Embed it; fields are read-only for users. */
struct eddy_aws {
    uv_loop_t *loop;
    struct eddy_transport transport;
    struct eddy_creds *creds;
    const struct eddy_clock *clock;
    struct eddy_rng rng;
    unsigned max_attempts;    /* AWS_MAX_ATTEMPTS */
    uint32_t backoff_base_ms; /* EDDY_RETRY_BASE_MS unless a test says */
    uint32_t backoff_max_ms;  /* EDDY_RETRY_CAP_MS unless a test says */
    char region[EDDY_REGION_MAX];
};

/* EDDY_ECONFIG (with the variable named) when the region or AWS_MAX_ATTEMPTS
 * from the environment is missing or invalid. */
EDDY_MUST_USE eddy_err eddy_aws_init(struct eddy_aws *aws, const struct eddy_aws_config *cfg,
                                     struct eddy_error *err);
void eddy_aws_cleanup(struct eddy_aws *aws);

struct eddy_aws_call;

/* One per service. Embed it; cleanup only when no call is in flight. */
struct eddy_aws_client {
    struct eddy_aws *aws;
    enum eddy_aws_service svc;
    const struct eddy_aws_service_info *info;
    struct eddy_endpoint ep;
    struct eddy_sigv4_key_cache keys;
    struct eddy_retry_quota quota; /* standard mode: one per client, shared by its calls */
    struct eddy_sigv4_result sig;  /* reused from one signature to the next */
    char *host_line;               /* "Host: ..." */
    char *ctype_line;              /* "Content-Type: ..." */
    /* per-attempt header lines; the transport copies them on send (it
     * borrows the body, which the call keeps until after its callback) */
    char target_line[128];  /* X-Amz-Target, or Smithy-Protocol */
    struct eddy_buf op_url; /* RPC v2: the endpoint URL with the operation's path */
    char date_line[32];
    struct eddy_buf token_line; /* holds a session token: wiped */
    struct eddy_buf auth_line;
    struct eddy_list calls; /* in flight (struct eddy_aws_call), for cancel_all */
    size_t inflight;
};

/* ep NULL: resolve from the environment (eddy_endpoint_resolve). ep is copied. */
EDDY_MUST_USE eddy_err eddy_aws_client_init(struct eddy_aws_client *c, struct eddy_aws *aws,
                                            enum eddy_aws_service svc,
                                            const struct eddy_endpoint *ep, struct eddy_error *err);
void eddy_aws_client_cleanup(struct eddy_aws_client *c);
/* Cancel every call in flight (shutdown); each callback runs with EDDY_ECANCELED. */
void eddy_aws_client_cancel_all(struct eddy_aws_client *c);

struct eddy_aws_call_opts {
    uint32_t timeout_ms;   /* per attempt; 0: the transport's default (long polls: wait + margin) */
    bool idempotent;       /* false: a timed-out attempt is not repeated (it may have applied) */
    unsigned max_attempts; /* 0: the context's */
    size_t max_response;   /* reply body cap; 0: the transport's (16 MiB) */
    /* A 2xx JSON reply is not parsed: reply->body has its text and
     * reply->json is NULL (the service reads the fields it keeps straight
     * from the text). Error replies, and RPC v2 CBOR, are parsed as ever. */
    bool raw_reply;
};

/*
 * What the service answered, valid during the callback only. json is the
 * parsed body (an object; NULL when the body was not JSON, or for RPC v2
 * not a CBOR map), in an arena of the call (base/json.h): read it, never
 * detach or delete items; copy what must outlive the callback
 * (cJSON_Duplicate). error_code is set for every non-2xx
 * reply: the x-amzn-query-error code when present, else __type without its
 * namespace, else the HTTP status as text.
 */
struct eddy_aws_reply {
    long status; /* 0 when no response was received */
    cJSON *json;
    const char *request_id;    /* "" when none */
    const char *error_code;    /* NULL on success */
    const char *error_message; /* "" when none */
    unsigned attempts;
    const struct eddy_error *error; /* code EDDY_OK on success, else the detail */
    struct eddy_str body;           /* a 2xx reply's text with raw_reply, else empty */
};

/*
 * err: EDDY_OK (2xx with a JSON object body), EDDY_ETHROTTLED, EDDY_ETRANSIENT
 * (5xx and transient codes), EDDY_ECONDITION (ConditionalCheckFailedException),
 * EDDY_ETXN_CANCELED (TransactionCanceledException: read CancellationReasons
 * from reply->json), EDDY_EAUTH, EDDY_EAWS (other 4xx), EDDY_EPARSE (reply not
 * JSON), EDDY_ENET, EDDY_ETIMEOUT, EDDY_ELIMIT (reply over its cap),
 * EDDY_ECREDENTIALS, EDDY_ECANCELED. reply is never NULL.
 */
typedef void (*eddy_aws_cb)(eddy_err err, const struct eddy_aws_reply *reply, void *ud);

/*
 * Call op (e.g. "GetItem") with body, a JSON object. The body is taken
 * over: *body is left empty whatever the outcome. opts may be NULL. *handle
 * (handle may be NULL) stays valid until cb runs. op must stay valid until cb.
 */
EDDY_MUST_USE eddy_err eddy_aws_call(struct eddy_aws_client *c, const char *op,
                                     struct eddy_buf *body, const struct eddy_aws_call_opts *opts,
                                     eddy_aws_cb cb, void *ud, struct eddy_aws_call **handle,
                                     struct eddy_error *err);

/* Abort the attempt in flight or the backoff wait; cb runs later with
 * EDDY_ECANCELED (unless it already ran, in which case do not call this). */
void eddy_aws_call_cancel(struct eddy_aws_call *call);

/*
 * A pure helper, exposed for tests: the error code in a __type value
 * ("com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException" and
 * "...#X:http://..." give the part after '#' and before ':'). The class of
 * an error reply is eddy_aws_classify's (aws/retry.h).
 */
struct eddy_str eddy_aws_error_code(struct eddy_str type);
/*
 * The code and message of a non-2xx reply, and its class (eddy_aws_classify
 * of the code, or of __type when the code is not one it knows): json is the
 * parsed body (NULL when it was not a JSON object or CBOR map), query_error
 * and error_type the x-amzn-query-error and x-amzn-ErrorType headers (ptr
 * NULL when absent). The code is the query-protocol one when present (SQS
 * sends both; either may mark throttling), else __type (or code) without
 * its namespace, else the ErrorType header, else InternalFailure (5xx) or
 * HTTPError. The class is never EDDY_OK: a reply read here is an error,
 * whatever its status says. *code and *message are malloc'd.
 */
struct eddy_aws_class eddy_aws_read_error(long status, const cJSON *json,
                                          struct eddy_str query_error, struct eddy_str error_type,
                                          char **code, char **message);

#endif
