/*
 * err.h - the one error type of eddy.
 *
 * Every fallible function returns an eddy_err. The codes come from one X-macro
 * table that also yields their names and messages, in the manner of libuv's
 * UV_ERRNO_MAP. Each code tells the caller what to do with the failure:
 * retry it, drop the input, or fix the configuration.
 *
 * A function that returns an eddy_err is declared EDDY_MUST_USE: its result
 * is checked, or the function is not called. eddy_error_set/vset alone
 * return the code they are given (for `return eddy_error_set(...)`); text
 * built in many steps uses the buffer's puts (base/buf.h), checked once.
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

/* X(NAME, message). Whether to retry is the caller's call: the AWS layer
 * classifies replies (aws/retry.h), the processor conflicts. */
#define EDDY_ERRNO_MAP(X)                                                                          \
    X(OK, "success")                                                                               \
    X(NOMEM, "out of memory")                                                                      \
    X(INVAL, "invalid argument")                                                                   \
    X(CONFIG, "invalid configuration")                                                             \
    X(PARSE, "malformed input")                                                                    \
    X(LIMIT, "size or count limit exceeded")                                                       \
    X(IO, "input/output error")                                                                    \
    X(TIMEOUT, "timed out")                                                                        \
    X(CANCELED, "canceled")                                                                        \
    X(NET, "network error")                                                                        \
    X(THROTTLED, "throttled by the service")                                                       \
    X(TRANSIENT, "transient service error")                                                        \
    X(AWS, "AWS service error")                                                                    \
    X(AUTH, "request not authorized")                                                              \
    X(CREDENTIALS, "no usable credentials")                                                        \
    X(CONDITION, "conditional check failed")                                                       \
    X(TXN_CANCELED, "transaction canceled")                                                        \
    X(CONFLICT, "optimistic concurrency conflict")                                                 \
    X(MACHINE, "machine failed")                                                                   \
    X(POISON, "undecodable message")

/* On functions that return an eddy_err: the caller must look at it. */
#if defined(__GNUC__)
#define EDDY_MUST_USE __attribute__((warn_unused_result))
#else
#define EDDY_MUST_USE
#endif

typedef enum {
#define EDDY_ERR_ENUM(name, msg) EDDY_E##name,
    EDDY_ERRNO_MAP(EDDY_ERR_ENUM)
#undef EDDY_ERR_ENUM
        EDDY_E_COUNT
} eddy_err;

#define EDDY_OK EDDY_EOK

/* "EDDY_ETIMEOUT" style name, and a short human message. Never NULL. */
const char *eddy_err_name(eddy_err err);
const char *eddy_err_msg(eddy_err err);

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
