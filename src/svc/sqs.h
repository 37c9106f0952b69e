/*
 * sqs.h - the SQS calls eddy makes, with typed results (JSON protocol).
 *
 * ReceiveMessage (long poll), DeleteMessageBatch, ChangeMessageVisibilityBatch,
 * SendMessage and GetQueueAttributes. Batch limits (10 entries, 10 message
 * attributes, 256 KiB messages) are checked before the call: EDDY_ELIMIT
 * with the limit named. Batch entries get the ids "0".."9" (their index),
 * so per-entry results come back in the order of the request.
 *
 * Every callback gets a result struct it owns: release it with the matching
 * _cleanup (also after an error; a zeroed result is fine to clean). Copy the
 * struct by value to keep it past the callback. The starts follow the async
 * contract of awscall.h.
 */
#ifndef EDDY_SVC_SQS_H
#define EDDY_SVC_SQS_H

#include <stdbool.h>
#include <stdint.h>

#include "aws/awscall.h"

#define EDDY_SQS_MAX_BATCH 10
#define EDDY_SQS_MAX_MESSAGE_BYTES 262144 /* body plus message attributes */
#define EDDY_SQS_MAX_ATTRIBUTES 10
#define EDDY_SQS_MAX_WAIT_S 20
#define EDDY_SQS_POLL_MARGIN_MS 5000 /* a long poll's HTTP timeout is wait + this */

struct eddy_sqs {
    struct eddy_aws_client client;
};

/* ep NULL: from the environment. */
EDDY_MUST_USE eddy_err eddy_sqs_init(struct eddy_sqs *s, struct eddy_aws *aws,
                                     const struct eddy_endpoint *ep, struct eddy_error *err);
void eddy_sqs_cleanup(struct eddy_sqs *s);

/* ---- ReceiveMessage ---- */

struct eddy_sqs_receive_params {
    const char *queue_url;
    int wait_s;       /* 0..20 */
    int max;          /* 1..10 */
    int visibility_s; /* < 0: the queue's */
};

/* A message attribute: DataType "String" / "Number" (value as text) or
 * "Binary" (value is the base64 text). */
struct eddy_sqs_attr {
    const char *name;
    const char *type;
    const char *value;
};

/* All strings live in one allocation (mem); absent ones are NULL. */
struct eddy_sqs_message {
    const char *message_id;
    const char *receipt_handle;
    const char *body;
    size_t body_len;
    const char *md5_of_body;
    const char *group_id;     /* MessageGroupId (FIFO) */
    const char *dedup_id;     /* MessageDeduplicationId (FIFO) */
    const char *trace_header; /* AWSTraceHeader */
    uint32_t receive_count;   /* ApproximateReceiveCount */
    int64_t sent_ms;          /* SentTimestamp; 0 when absent */
    int64_t first_receive_ms; /* ApproximateFirstReceiveTimestamp */
    struct eddy_sqs_attr *attrs;
    size_t nattrs;
    void *mem;
};
void eddy_sqs_message_cleanup(struct eddy_sqs_message *m);

struct eddy_sqs_receive_result {
    struct eddy_sqs_message *msgs; /* take one by copying it and zeroing the slot */
    size_t n;
};
void eddy_sqs_receive_result_cleanup(struct eddy_sqs_receive_result *r);

typedef void (*eddy_sqs_receive_cb)(eddy_err err, struct eddy_sqs_receive_result *res,
                                    const struct eddy_aws_reply *reply, void *ud);

/* A ReceiveMessage reply's text into *res (zeroed first; cleaned up on
 * failure): EDDY_EPARSE when it is not a JSON object, Messages is neither
 * an array nor null, or a message lacks MessageId, ReceiptHandle or Body.
 * Exposed for tests and fuzzing. */
EDDY_MUST_USE eddy_err eddy_sqs_receive_parse(const char *text, size_t len,
                                              struct eddy_sqs_receive_result *res,
                                              struct eddy_error *err);

/* Asks for all system attributes and all message attributes. The HTTP
 * timeout is wait_s plus EDDY_SQS_POLL_MARGIN_MS. */
EDDY_MUST_USE eddy_err eddy_sqs_receive(struct eddy_sqs *s, const struct eddy_sqs_receive_params *p,
                                        eddy_sqs_receive_cb cb, void *ud,
                                        struct eddy_aws_call **handle, struct eddy_error *err);

/* ---- DeleteMessageBatch, ChangeMessageVisibilityBatch ---- */

struct eddy_sqs_batch_entry {
    const char *receipt_handle;
    int visibility_s; /* ChangeMessageVisibilityBatch only: 0..43200 */
};

struct eddy_sqs_entry_result {
    bool ok;
    bool sender_fault;
    char *code; /* NULL when ok; "NoResult" when SQS named the entry nowhere */
    char *message;
};

struct eddy_sqs_batch_result {
    struct eddy_sqs_entry_result *entries; /* n, in request order */
    size_t n;
    size_t nfailed;
};
void eddy_sqs_batch_result_cleanup(struct eddy_sqs_batch_result *r);

typedef void (*eddy_sqs_batch_cb)(eddy_err err, struct eddy_sqs_batch_result *res,
                                  const struct eddy_aws_reply *reply, void *ud);

/* A batch reply's text for a call of n entries into *r (zeroed first;
 * cleaned up on failure): EDDY_EPARSE when it is not a JSON object. An
 * entry named in neither list fails with code "NoResult". Exposed for
 * tests and fuzzing. */
EDDY_MUST_USE eddy_err eddy_sqs_batch_parse(const char *text, size_t len, size_t n,
                                            struct eddy_sqs_batch_result *r,
                                            struct eddy_error *err);

/* err EDDY_OK means the call worked; entries may still have failed (nfailed). */
EDDY_MUST_USE eddy_err eddy_sqs_delete_batch(struct eddy_sqs *s, const char *queue_url,
                                             const struct eddy_sqs_batch_entry *entries, size_t n,
                                             eddy_sqs_batch_cb cb, void *ud,
                                             struct eddy_aws_call **handle, struct eddy_error *err);
EDDY_MUST_USE eddy_err eddy_sqs_change_visibility_batch(struct eddy_sqs *s, const char *queue_url,
                                                        const struct eddy_sqs_batch_entry *entries,
                                                        size_t n, eddy_sqs_batch_cb cb, void *ud,
                                                        struct eddy_aws_call **handle,
                                                        struct eddy_error *err);

/* ---- SendMessage ---- */

struct eddy_sqs_send_params {
    const char *queue_url;
    const char *body;
    const struct eddy_sqs_attr *attrs; /* e.g. {"eddy-error", "String", reason} */
    size_t nattrs;
    const char *group_id; /* FIFO queues */
    const char *dedup_id; /* FIFO queues without content-based deduplication */
    int delay_s;          /* < 0: none */
};

struct eddy_sqs_send_result {
    char *message_id;
    char *sequence_number; /* FIFO only */
};
void eddy_sqs_send_result_cleanup(struct eddy_sqs_send_result *r);

typedef void (*eddy_sqs_send_cb)(eddy_err err, struct eddy_sqs_send_result *res,
                                 const struct eddy_aws_reply *reply, void *ud);

EDDY_MUST_USE eddy_err eddy_sqs_send(struct eddy_sqs *s, const struct eddy_sqs_send_params *p,
                                     eddy_sqs_send_cb cb, void *ud, struct eddy_aws_call **handle,
                                     struct eddy_error *err);

/* ---- GetQueueAttributes ---- */

struct eddy_sqs_queue_attrs {
    int visibility_timeout_s;
    bool fifo;
    char *dlq_arn;         /* from RedrivePolicy; NULL without one */
    int max_receive_count; /* from RedrivePolicy; 0 without one */
};
void eddy_sqs_queue_attrs_cleanup(struct eddy_sqs_queue_attrs *a);

typedef void (*eddy_sqs_attrs_cb)(eddy_err err, struct eddy_sqs_queue_attrs *res,
                                  const struct eddy_aws_reply *reply, void *ud);

EDDY_MUST_USE eddy_err eddy_sqs_get_queue_attributes(struct eddy_sqs *s, const char *queue_url,
                                                     eddy_sqs_attrs_cb cb, void *ud,
                                                     struct eddy_aws_call **handle,
                                                     struct eddy_error *err);

#endif
