/*
 * eventbridge.h - EventBridge PutEvents with per-entry results.
 *
 * At most 10 entries a call and 256 KiB of entries (counted as EventBridge
 * does: Source, DetailType, Detail, Resources and 14 bytes for a Time), both
 * checked before the call: EDDY_ELIMIT naming the limit. A call that works
 * may still have failed entries: FailedEntryCount and, per entry, an error
 * code and message; resend only those. The start follows the async contract
 * of awscall.h; the callback owns the result (eddy_eb_put_result_cleanup).
 */
#ifndef EDDY_SVC_EVENTBRIDGE_H
#define EDDY_SVC_EVENTBRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include "aws/awscall.h"

#define EDDY_EB_MAX_ENTRIES 10
#define EDDY_EB_MAX_BYTES 262144

struct eddy_eb {
    struct eddy_aws_client client;
};

EDDY_MUST_USE eddy_err eddy_eb_init(struct eddy_eb *e, struct eddy_aws *aws,
                                    const struct eddy_endpoint *ep, struct eddy_error *err);
void eddy_eb_cleanup(struct eddy_eb *e);

struct eddy_eb_entry {
    const char *source;
    const char *detail_type;
    const char *detail;         /* a JSON object, as text */
    const char *event_bus_name; /* NULL: the default bus */
    const char *const *resources;
    size_t nresources;
    const char *trace_header; /* X-Ray trace header, or NULL */
    int64_t time_s;           /* unix seconds; 0: the time of the call */
    /* detail as a JSON string, quotes included, when the caller has it
     * already (it escaped detail once, for the outbox row): written as it
     * is instead of escaping detail again; NULL: escaped here. The size
     * rule counts detail, as ever. */
    const char *detail_json;
    size_t detail_json_len;
};

/* One per entry sent, in order: event_id on success, else error_code/message. */
struct eddy_eb_entry_result {
    char *event_id;
    char *error_code;
    char *error_message;
};

struct eddy_eb_put_result {
    struct eddy_eb_entry_result *entries;
    size_t n;
    size_t failed_count; /* FailedEntryCount */
};
void eddy_eb_put_result_cleanup(struct eddy_eb_put_result *r);

typedef void (*eddy_eb_put_cb)(eddy_err err, struct eddy_eb_put_result *res,
                               const struct eddy_aws_reply *reply, void *ud);

EDDY_MUST_USE eddy_err eddy_eb_put_events(struct eddy_eb *e, const struct eddy_eb_entry *entries,
                                          size_t n, eddy_eb_put_cb cb, void *ud,
                                          struct eddy_aws_call **handle, struct eddy_error *err);

/* A PutEvents reply's text for a call of n entries into *res (zeroed
 * first; cleaned up on failure): EDDY_EPARSE when it is not a JSON object
 * or has no Entries array. Exposed for tests and fuzzing. */
EDDY_MUST_USE eddy_err eddy_eb_put_parse(const char *text, size_t len, size_t n,
                                         struct eddy_eb_put_result *res, struct eddy_error *err);

/* The size EventBridge counts for one entry against the 256 KiB limit: the
 * one rule, used by the commit path (record.c) and the relay alike. */
size_t eddy_eb_entry_size(const struct eddy_eb_entry *entry);

#endif
