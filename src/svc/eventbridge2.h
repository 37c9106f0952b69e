/*
 * eventbridge2.h - PutEvents on an EventBridge Custom Event Bus (the
 * eventbridgev2 API, 2025-05-15: Smithy RPC v2 CBOR, endpoint prefix
 * "eventsv2", signing name "events").
 *
 * The bus is named by its ARN,
 * arn:<partition>:events:<region>:<account>:event-busv2/<name>/<25 [a-z0-9]>.
 * Each entry may carry SystemMetadata: an EventGroupId (a FIFO subscriber
 * delivers one group's events in order) and a DeduplicationId (the bus
 * answers SuccessCode DEDUPLICATED, and delivers nothing, for an id it has
 * seen within its window). Both are 1..128 characters:
 * eddy_eb2_system_id turns any id into one that fits.
 *
 * At most 100 entries a call and 1 MiB of entries (counted as the classic
 * bus counts them, plus the two ids), and each entry's fields within the
 * API's limits (eddy_eb2_entry_check), checked before the call: EDDY_ELIMIT
 * naming the limit. A call that works may still have failed entries: resend
 * only those. There is no TraceHeader in this API. The start follows the
 * async contract of awscall.h; the callback owns the result
 * (eddy_eb2_put_result_cleanup).
 */
#ifndef EDDY_SVC_EVENTBRIDGE2_H
#define EDDY_SVC_EVENTBRIDGE2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/awscall.h"

#define EDDY_EB2_MAX_ENTRIES 100
#define EDDY_EB2_MAX_BYTES 1048576
#define EDDY_EB2_ID_MAX 128 /* EventGroupId, DeduplicationId */
#define EDDY_EB2_ARN_MAX 1011

struct eddy_eb2 {
    struct eddy_aws_client client;
    char *bus_arn;
};

/* True when s is an event-busv2 ARN (the model's pattern). */
bool eddy_eb2_is_bus_arn(const char *s);

/*
 * A client for the bus bus_arn (EDDY_ECONFIG when it is not an event-busv2
 * ARN). ep NULL: AWS_ENDPOINT_URL_EVENTBRIDGEV2, else AWS_ENDPOINT_URL,
 * else https://<account>.eventsv2.<region>.amazonaws.com with the bus's
 * account, as the service's endpoint rules route it.
 */
EDDY_MUST_USE eddy_err eddy_eb2_init(struct eddy_eb2 *e, struct eddy_aws *aws, const char *bus_arn,
                                     const struct eddy_endpoint *ep, struct eddy_error *err);
void eddy_eb2_cleanup(struct eddy_eb2 *e);

/*
 * id as an EventGroupId or DeduplicationId: itself when 1..128 bytes, else
 * its first bytes (cut on a character boundary) + '#' + the hex SHA-256 of
 * the whole id, 128 bytes at most. The same id always gives the same value.
 */
void eddy_eb2_system_id(const char *id, char out[EDDY_EB2_ID_MAX + 1]);

struct eddy_eb2_entry {
    const char *source;
    const char *detail_type;
    const char *detail; /* a JSON object, as text */
    const char *const *resources;
    size_t nresources;
    int64_t time_s;       /* unix seconds; 0: the time of the call */
    const char *group_id; /* EventGroupId, or NULL */
    const char *dedup_id; /* DeduplicationId, or NULL */
};

/* One per entry sent, in order. ok: published or deduplicated (an event
 * with that DeduplicationId was accepted before); else error_code/message. */
struct eddy_eb2_entry_result {
    bool ok;
    bool deduplicated;
    char *event_id;
    char *sequence_number;
    char *error_code;
    char *error_message;
};

struct eddy_eb2_put_result {
    struct eddy_eb2_entry_result *entries;
    size_t n;
    size_t failed_count; /* FailedEntryCount, or the failed entries if more */
};
void eddy_eb2_put_result_cleanup(struct eddy_eb2_put_result *r);

typedef void (*eddy_eb2_put_cb)(eddy_err err, struct eddy_eb2_put_result *res,
                                const struct eddy_aws_reply *reply, void *ud);

EDDY_MUST_USE eddy_err eddy_eb2_put_events(struct eddy_eb2 *e, const struct eddy_eb2_entry *entries,
                                           size_t n, eddy_eb2_put_cb cb, void *ud,
                                           struct eddy_aws_call **handle, struct eddy_error *err);

/* The size of one entry against the 1 MiB limit. */
size_t eddy_eb2_entry_size(const struct eddy_eb2_entry *entry);
/*
 * The API's limits on one entry's fields, in characters: Source 1..256,
 * DetailType 1..128, at most 100 Resources of 0..2048, the two ids 1..128;
 * EDDY_ELIMIT naming the field and its limit (EDDY_EINVAL for a missing
 * field). An entry refused here never passes, whatever the call: the
 * check before each call, and what the commit path and the relay ask of
 * an entry before it joins one.
 */
EDDY_MUST_USE eddy_err eddy_eb2_entry_check(const struct eddy_eb2_entry *entry,
                                            struct eddy_error *err);

/*
 * The PutEvents reply body (CBOR) for a call of nsent entries, into *out
 * (cleanup even on error). A reply with fewer results than entries sent
 * marks the missing ones failed ("NoResult"), so they are sent again.
 * EDDY_EPARSE when the body is not CBOR or not the reply's shape. Exposed
 * for the fuzz driver; the client uses it on every reply.
 */
EDDY_MUST_USE eddy_err eddy_eb2_put_result_parse(const void *body, size_t len, size_t nsent,
                                                 struct eddy_eb2_put_result *out,
                                                 struct eddy_error *err);

#endif
