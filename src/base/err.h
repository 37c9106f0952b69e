/*
 * err.h - the one error type of eddy.
 *
 * Every fallible function returns an eddy_err. The codes come from one X-macro
 * table that also yields their names and messages, in the manner of libuv's
 * UV_ERRNO_MAP. Each code tells the caller what to do with the failure:
 * retry it, drop the input, or fix the configuration.
 *
 * Detail text (which field, which limit, what AWS said) is written once, where
 * the error is found, into a struct eddy_error the caller passes down, and
 * logged once, where the error is handled.
 */
#ifndef EDDY_BASE_ERR_H
#define EDDY_BASE_ERR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* X(NAME, retryable, message) */
#define EDDY_ERRNO_MAP(X)                                                                          \
    X(OK, false, "success")                                                                        \
    X(NOMEM, false, "out of memory")                                                               \
    X(INVAL, false, "invalid argument")                                                            \
    X(CONFIG, false, "invalid configuration")                                                      \
    X(PARSE, false, "malformed input")                                                             \
    X(LIMIT, false, "size or count limit exceeded")                                                \
    X(IO, false, "input/output error")                                                             \
    X(TIMEOUT, true, "timed out")                                                                  \
    X(CANCELED, false, "canceled")                                                                 \
    X(NET, true, "network error")                                                                  \
    X(HTTP, false, "unexpected HTTP status")                                                       \
    X(THROTTLED, true, "throttled by the service")                                                 \
    X(TRANSIENT, true, "transient service error")                                                  \
    X(AWS, false, "AWS service error")                                                             \
    X(AUTH, false, "request not authorized")                                                       \
    X(CREDENTIALS, false, "no usable credentials")                                                 \
    X(CONDITION, false, "conditional check failed")                                                \
    X(TXN_CANCELED, false, "transaction canceled")                                                 \
    X(CONFLICT, true, "optimistic concurrency conflict")                                           \
    X(DUPLICATE, false, "event already applied")                                                   \
    X(NOT_FOUND, false, "not found")                                                               \
    X(REJECTED, false, "rejected by the machine")                                                  \
    X(MACHINE, false, "machine failed")                                                            \
    X(POISON, false, "undecodable message")                                                        \
    X(RETRIES, false, "retries exhausted")

typedef enum {
#define EDDY_ERR_ENUM(name, retry, msg) EDDY_E##name,
    EDDY_ERRNO_MAP(EDDY_ERR_ENUM)
#undef EDDY_ERR_ENUM
        EDDY_E_COUNT
} eddy_err;

#define EDDY_OK EDDY_EOK

/* "EDDY_ETIMEOUT" style name, and a short human message. Never NULL. */
const char *eddy_err_name(eddy_err err);
const char *eddy_err_msg(eddy_err err);
/* True when repeating the same call later may succeed. */
bool eddy_err_retryable(eddy_err err);

/* An error with its detail, filled where the error is found. */
#define EDDY_ERROR_DETAIL_MAX 512
struct eddy_error {
    eddy_err code;
    char detail[EDDY_ERROR_DETAIL_MAX];
};

/*
 * Record code and a printf-style detail in err (which may be NULL) and
 * return code, so a caller can write `return eddy_error_set(err, ...)`.
 */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
eddy_err
eddy_error_set(struct eddy_error *err, eddy_err code, const char *fmt, ...);
eddy_err eddy_error_vset(struct eddy_error *err, eddy_err code, const char *fmt, va_list ap);
void eddy_error_clear(struct eddy_error *err);
/* The detail when set, else the code's message. */
const char *eddy_error_text(const struct eddy_error *err);

#endif
