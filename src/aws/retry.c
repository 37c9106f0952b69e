/*
 * retry.c - the AWS SDKs' standard retry mode (see retry.h).
 *
 * The throttling and transient codes are the SDKs' (botocore's
 * retries/standard.py and the Go SDK v2's retry package): a service that
 * answers with one of these codes is saying "later", whatever the HTTP
 * status.
 */
#include "aws/retry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * The one table of the AWS error codes eddy tells apart: the error a call
 * that ends with the code returns, and how standard mode retries it. A code
 * matches whole or as the last dotted part ("KMS.ThrottlingException",
 * "AWS.SimpleQueueService.RequestThrottled"); a prefix row matches any code
 * that starts with it. Codes not listed are EDDY_EAWS, not retried.
 */
static const struct code_class {
    const char *code;
    bool prefix;
    eddy_err err;
    enum eddy_retry_class retry;
} codes[] = {
    /* throttling (botocore's retries/standard.py, the Go SDK v2) */
    {"Throttling", false, EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
    {"ThrottlingException", false, EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
    {"ThrottledException", false, EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
    {"RequestThrottledException", false, EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
    {"TooManyRequestsException", false, EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
    {"ProvisionedThroughputExceededException", false, EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
    {"TransactionInProgressException", false, EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
    {"RequestLimitExceeded", false, EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
    {"BandwidthLimitExceeded", false, EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
    {"LimitExceededException", false, EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
    {"RequestThrottled", false, EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
    {"SlowDown", false, EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
    {"PriorRequestNotComplete", false, EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
    {"EC2ThrottledException", false, EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
    /* DynamoDB's CancellationReasons codes that ask for the same */
    {"ThrottlingError", false, EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
    {"TransactionConflict", false, EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
    {"ProvisionedThroughputExceeded", false, EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
    /* transient */
    {"RequestTimeout", false, EDDY_ETRANSIENT, EDDY_RETRY_TRANSIENT},
    {"RequestTimeoutException", false, EDDY_ETRANSIENT, EDDY_RETRY_TRANSIENT},
    {"InternalError", false, EDDY_ETRANSIENT, EDDY_RETRY_TRANSIENT},
    {"InternalFailure", false, EDDY_ETRANSIENT, EDDY_RETRY_TRANSIENT},
    {"InternalServerError", false, EDDY_ETRANSIENT, EDDY_RETRY_TRANSIENT},
    {"ServiceUnavailable", false, EDDY_ETRANSIENT, EDDY_RETRY_TRANSIENT},
    {"ServiceUnavailableException", false, EDDY_ETRANSIENT, EDDY_RETRY_TRANSIENT},
    {"IDPCommunicationError", false, EDDY_ETRANSIENT, EDDY_RETRY_TRANSIENT},
    {"TransactionConflictException", false, EDDY_ETRANSIENT, EDDY_RETRY_TRANSIENT},
    /* answers the caller acts on */
    {"ConditionalCheckFailedException", false, EDDY_ECONDITION, EDDY_RETRY_NO},
    {"TransactionCanceledException", false, EDDY_ETXN_CANCELED, EDDY_RETRY_NO},
    /* the request's identity or signature */
    {"UnrecognizedClientException", false, EDDY_EAUTH, EDDY_RETRY_NO},
    {"InvalidSignatureException", false, EDDY_EAUTH, EDDY_RETRY_NO},
    {"SignatureDoesNotMatch", false, EDDY_EAUTH, EDDY_RETRY_NO},
    {"IncompleteSignature", false, EDDY_EAUTH, EDDY_RETRY_NO},
    {"IncompleteSignatureException", false, EDDY_EAUTH, EDDY_RETRY_NO},
    {"MissingAuthenticationToken", false, EDDY_EAUTH, EDDY_RETRY_NO},
    {"MissingAuthenticationTokenException", false, EDDY_EAUTH, EDDY_RETRY_NO},
    {"InvalidClientTokenId", false, EDDY_EAUTH, EDDY_RETRY_NO},
    {"AuthFailure", false, EDDY_EAUTH, EDDY_RETRY_NO},
    {"InvalidAccessKeyId", false, EDDY_EAUTH, EDDY_RETRY_NO},
    {"AccessDenied", true, EDDY_EAUTH, EDDY_RETRY_NO},
    {"ExpiredToken", true, EDDY_EAUTH, EDDY_RETRY_NO},
};

static bool row_matches(const struct code_class *row, const char *code, size_t len)
{
    size_t n = strlen(row->code);
    if (row->prefix)
        return len >= n && memcmp(code, row->code, n) == 0;
    return len == n && memcmp(code, row->code, n) == 0;
}

static const struct code_class *find_code(const char *code, size_t len)
{
    const char *last = code;
    for (size_t i = 0; i < len; i++)
        if (code[i] == '.')
            last = code + i + 1;
    size_t last_len = len - (size_t)(last - code);
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
        if (row_matches(&codes[i], code, len) ||
            (last != code && !codes[i].prefix && row_matches(&codes[i], last, last_len)))
            return &codes[i];
    return NULL;
}

struct eddy_aws_class eddy_aws_classify(eddy_err transport_err, long http_status,
                                        const char *error_code)
{
    if (transport_err == EDDY_ETIMEOUT)
        return (struct eddy_aws_class){EDDY_ETIMEOUT, EDDY_RETRY_TIMEOUT};
    if (transport_err == EDDY_ENET)
        return (struct eddy_aws_class){EDDY_ENET, EDDY_RETRY_TRANSIENT};
    if (transport_err != EDDY_OK) /* canceled, over a limit: retrying gives the same */
        return (struct eddy_aws_class){transport_err, EDDY_RETRY_NO};
    if (error_code && error_code[0]) {
        /* "ns#Code" -> "Code"; "Code;Sender" or "Code:..." -> "Code" */
        const char *hash = strrchr(error_code, '#');
        const char *code = hash ? hash + 1 : error_code;
        const struct code_class *row = find_code(code, strcspn(code, ";:"));
        /* a 5xx is retried whatever code it carries, as in the SDKs' standard mode */
        if (row && !(http_status >= 500 && row->retry == EDDY_RETRY_NO))
            return (struct eddy_aws_class){row->err, row->retry};
    }
    if (http_status >= 200 && http_status < 300)
        return (struct eddy_aws_class){EDDY_OK, EDDY_RETRY_NO};
    if (http_status == 429) /* Too Many Requests, whatever the body says */
        return (struct eddy_aws_class){EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE};
    if (http_status >= 500)
        return (struct eddy_aws_class){EDDY_ETRANSIENT, EDDY_RETRY_TRANSIENT};
    if (http_status == 401 || http_status == 403)
        return (struct eddy_aws_class){EDDY_EAUTH, EDDY_RETRY_NO};
    return (struct eddy_aws_class){EDDY_EAWS, EDDY_RETRY_NO};
}

bool eddy_aws_code_throttles(const char *code)
{
    return eddy_aws_classify(EDDY_OK, 400, code).retry == EDDY_RETRY_THROTTLE;
}

const char *eddy_retry_class_name(enum eddy_retry_class cls)
{
    switch (cls) {
    case EDDY_RETRY_THROTTLE:
        return "throttle";
    case EDDY_RETRY_TRANSIENT:
        return "transient";
    case EDDY_RETRY_TIMEOUT:
        return "timeout";
    case EDDY_RETRY_NO:
    default:
        return "no";
    }
}

const char *eddy_retry_stop_name(enum eddy_retry_stop stop)
{
    switch (stop) {
    case EDDY_RETRY_STOP_NOT_RETRYABLE:
        return "not retryable";
    case EDDY_RETRY_STOP_MAX_ATTEMPTS:
        return "max attempts reached";
    case EDDY_RETRY_STOP_QUOTA:
        return "retry quota exhausted";
    case EDDY_RETRY_STOP_NONE:
    default:
        return "none";
    }
}

void eddy_retry_quota_init(struct eddy_retry_quota *q)
{
    q->available = EDDY_RETRY_QUOTA_INITIAL;
    q->capacity = EDDY_RETRY_QUOTA_INITIAL;
}

void eddy_retry_call_init(struct eddy_retry_call *c)
{
    c->failed = 0;
    c->last_cost = 0;
    c->stop = EDDY_RETRY_STOP_NONE;
}

/* base * 2^attempt, computed without overflowing past the cap */
static uint32_t backoff_ceiling(unsigned attempt, uint32_t base_ms, uint32_t cap_ms)
{
    return attempt < 32 && base_ms <= (cap_ms >> attempt) ? base_ms << attempt : cap_ms;
}

uint32_t eddy_backoff_full_jitter(struct eddy_rng *rng, unsigned attempt, uint32_t base_ms,
                                  uint32_t cap_ms)
{
    uint32_t ceiling = backoff_ceiling(attempt, base_ms, cap_ms);
    if (ceiling == 0)
        return 0;
    return (uint32_t)eddy_rng_below(rng, ceiling);
}

uint32_t eddy_backoff_equal_jitter(struct eddy_rng *rng, unsigned attempt, uint32_t base_ms,
                                   uint32_t cap_ms)
{
    uint32_t d = backoff_ceiling(attempt, base_ms, cap_ms);
    return d / 2 + (uint32_t)eddy_rng_below(rng, (uint64_t)d - d / 2 + 1);
}

bool eddy_retry_decide(struct eddy_retry_quota *q, struct eddy_retry_call *c,
                       enum eddy_retry_class cls, unsigned max_attempts, struct eddy_rng *rng,
                       uint32_t *delay_ms)
{
    if (max_attempts == 0)
        max_attempts = EDDY_RETRY_MAX_ATTEMPTS_DEFAULT;
    c->failed++;
    *delay_ms = 0;
    if (cls == EDDY_RETRY_NO) {
        c->stop = EDDY_RETRY_STOP_NOT_RETRYABLE;
        return false;
    }
    if (c->failed >= max_attempts) {
        c->stop = EDDY_RETRY_STOP_MAX_ATTEMPTS;
        return false;
    }
    uint32_t cost = cls == EDDY_RETRY_TIMEOUT ? EDDY_RETRY_TIMEOUT_COST : EDDY_RETRY_COST;
    if (q->available < cost) {
        c->stop = EDDY_RETRY_STOP_QUOTA;
        return false;
    }
    q->available -= cost;
    c->last_cost = cost;
    c->stop = EDDY_RETRY_STOP_NONE;
    *delay_ms = eddy_backoff_full_jitter(rng, c->failed - 1, EDDY_RETRY_BASE_MS, EDDY_RETRY_CAP_MS);
    return true;
}

void eddy_retry_on_success(struct eddy_retry_quota *q, const struct eddy_retry_call *c)
{
    uint32_t refund = c->last_cost ? c->last_cost : EDDY_RETRY_NO_RETRY_REFUND;
    uint32_t room = q->capacity - q->available;
    q->available += refund < room ? refund : room;
}

eddy_err eddy_retry_parse_max_attempts(const char *text, unsigned *out, struct eddy_error *err)
{
    if (text == NULL || text[0] == '\0') {
        *out = EDDY_RETRY_MAX_ATTEMPTS_DEFAULT;
        return EDDY_OK;
    }
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    /* strtoul accepts leading blanks and a sign; a setting should not. */
    bool digits_only = text[0] >= '0' && text[0] <= '9' && *end == '\0';
    if (!digits_only || errno != 0 || v < 1 || v > EDDY_RETRY_MAX_ATTEMPTS_LIMIT)
        return eddy_error_set(err, EDDY_ECONFIG,
                              "AWS_MAX_ATTEMPTS: \"%.64s\" is not a whole number from 1 to %u",
                              text, EDDY_RETRY_MAX_ATTEMPTS_LIMIT);
    *out = (unsigned)v;
    return EDDY_OK;
}

eddy_err eddy_retry_max_attempts_env(unsigned *out, struct eddy_error *err)
{
    return eddy_retry_parse_max_attempts(getenv("AWS_MAX_ATTEMPTS"), out, err);
}
