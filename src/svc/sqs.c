/*
 * sqs.c - SQS over the JSON protocol (see sqs.h). Requests are written
 * straight into the body buffer (eddy_jw); replies are read from the parsed
 * JSON into plain structs. A received message is copied into one allocation,
 * so it costs one malloc and one free however many fields it has.
 */
#include "svc/sqs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "svc/svccall.h"

/* batch entry ids are the index as one digit */
_Static_assert(EDDY_SQS_MAX_BATCH <= 10, "batch entry ids are one digit");

enum op_kind { OP_RECEIVE, OP_DELETE, OP_VISIBILITY, OP_SEND, OP_ATTRS };

struct op {
    enum op_kind kind;
    union {
        eddy_sqs_receive_cb receive;
        eddy_sqs_batch_cb batch;
        eddy_sqs_send_cb send;
        eddy_sqs_attrs_cb attrs;
    } cb;
    void *ud;
    size_t n; /* batch entries */
};

eddy_err eddy_sqs_init(struct eddy_sqs *s, struct eddy_aws *aws, const struct eddy_endpoint *ep,
                       struct eddy_error *err)
{
    return eddy_aws_client_init(&s->client, aws, EDDY_AWS_SQS, ep, err);
}

void eddy_sqs_cleanup(struct eddy_sqs *s)
{
    eddy_aws_client_cleanup(&s->client);
}

static void on_reply(eddy_err err, const struct eddy_aws_reply *reply, void *ud);

/* Send the body in w for o; frees o when the start fails. */
static eddy_err start(struct eddy_sqs *s, const char *opname, struct eddy_jw *w, struct op *o,
                      const struct eddy_aws_call_opts *opts, struct eddy_aws_call **handle,
                      struct eddy_error *err)
{
    eddy_err rc = eddy_svc_call(&s->client, opname, w, opts, on_reply, o, handle, err);
    if (rc)
        free(o);
    return rc;
}

static struct op *op_new(enum op_kind kind, void *ud)
{
    struct op *o = eddy_calloc(1, sizeof *o);
    o->kind = kind;
    o->ud = ud;
    return o;
}

static const char *jstr(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A number that SQS may send as a string ("3") or as a number. */
static int64_t jnum(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsNumber(v))
        return (int64_t)v->valuedouble;
    if (cJSON_IsString(v))
        return strtoll(v->valuestring, NULL, 10);
    return 0;
}

/* ---- ReceiveMessage ---- */

eddy_err eddy_sqs_receive(struct eddy_sqs *s, const struct eddy_sqs_receive_params *p,
                          eddy_sqs_receive_cb cb, void *ud, struct eddy_aws_call **handle,
                          struct eddy_error *err)
{
    if (s == NULL || p == NULL || p->queue_url == NULL || cb == NULL)
        return eddy_error_set(err, EDDY_EINVAL, "SQS ReceiveMessage: queue URL and cb required");
    if (p->max < 1 || p->max > EDDY_SQS_MAX_BATCH)
        return eddy_error_set(err, EDDY_ELIMIT,
                              "SQS ReceiveMessage takes 1..%d messages (asked for %d)",
                              EDDY_SQS_MAX_BATCH, p->max);
    if (p->wait_s < 0 || p->wait_s > EDDY_SQS_MAX_WAIT_S)
        return eddy_error_set(err, EDDY_ELIMIT, "SQS ReceiveMessage waits 0..%d s (asked for %d)",
                              EDDY_SQS_MAX_WAIT_S, p->wait_s);
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    eddy_jw_open(&w, '{');
    EDDY_JW_KSTR(&w, "QueueUrl", p->queue_url);
    EDDY_JW_KINT(&w, "MaxNumberOfMessages", p->max);
    EDDY_JW_KINT(&w, "WaitTimeSeconds", p->wait_s);
    if (p->visibility_s >= 0)
        EDDY_JW_KINT(&w, "VisibilityTimeout", p->visibility_s);
    /* AttributeNames is the older name of MessageSystemAttributeNames; servers
     * that know only one of them read that one */
    static const char *const all_lists[] = {"AttributeNames", "MessageSystemAttributeNames",
                                            "MessageAttributeNames"};
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(all_lists); i++) {
        eddy_jw_key(&w, all_lists[i]);
        eddy_jw_open(&w, '[');
        eddy_jw_cstr(&w, "All");
        eddy_jw_close(&w, ']');
    }
    eddy_jw_close(&w, '}');
    struct eddy_aws_call_opts opts = {(uint32_t)p->wait_s * 1000 + EDDY_SQS_POLL_MARGIN_MS, true,
                                      0};
    struct op *o = op_new(OP_RECEIVE, ud);
    o->cb.receive = cb;
    return start(s, "ReceiveMessage", &w, o, &opts, handle, err);
}

void eddy_sqs_message_cleanup(struct eddy_sqs_message *m)
{
    free(m->mem);
    memset(m, 0, sizeof *m);
}

void eddy_sqs_receive_result_cleanup(struct eddy_sqs_receive_result *r)
{
    for (size_t i = 0; i < r->n; i++)
        eddy_sqs_message_cleanup(&r->msgs[i]);
    free(r->msgs);
    r->msgs = NULL;
    r->n = 0;
}

static size_t slen(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static const char *adup(char **p, const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *r = memcpy(*p, s, n);
    *p += n;
    return r;
}

/* The strings of one message attribute: {"DataType":..,"StringValue"|"BinaryValue":..}. */
static const char *attr_value(const cJSON *a)
{
    const char *v = jstr(a, "StringValue");
    return v ? v : jstr(a, "BinaryValue");
}

/* Copy the message attributes into the block at *p (array first, then strings). */
static size_t attrs_size(const cJSON *ma, size_t *n)
{
    size_t sz = 0;
    *n = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, ma)
    {
        if (!cJSON_IsObject(a) || a->string == NULL)
            continue;
        (*n)++;
        sz += sizeof(struct eddy_sqs_attr) + slen(a->string) + slen(jstr(a, "DataType")) +
              slen(attr_value(a));
    }
    return sz;
}

static void attrs_fill(struct eddy_sqs_message *m, const cJSON *ma, size_t n, char **p)
{
    m->attrs = (struct eddy_sqs_attr *)(void *)*p;
    *p += n * sizeof(struct eddy_sqs_attr);
    const cJSON *a;
    size_t i = 0;
    cJSON_ArrayForEach(a, ma)
    {
        if (!cJSON_IsObject(a) || a->string == NULL)
            continue;
        m->attrs[i].name = adup(p, a->string);
        m->attrs[i].type = adup(p, jstr(a, "DataType"));
        m->attrs[i].value = adup(p, attr_value(a));
        i++;
    }
    m->nattrs = n;
}

static eddy_err message_parse(const cJSON *j, struct eddy_sqs_message *m, size_t idx,
                              struct eddy_error *err)
{
    const char *id = jstr(j, "MessageId"), *rh = jstr(j, "ReceiptHandle"), *body = jstr(j, "Body");
    if (id == NULL || rh == NULL || body == NULL)
        return eddy_error_set(err, EDDY_EPARSE,
                              "SQS ReceiveMessage: message %zu lacks MessageId, ReceiptHandle "
                              "or Body",
                              idx);
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(j, "Attributes");
    const cJSON *ma = cJSON_GetObjectItemCaseSensitive(j, "MessageAttributes");
    const char *md5 = jstr(j, "MD5OfBody"), *gid = jstr(at, "MessageGroupId"),
               *did = jstr(at, "MessageDeduplicationId"), *trace = jstr(at, "AWSTraceHeader");
    size_t nattrs = 0;
    size_t asz = cJSON_IsObject(ma) ? attrs_size(ma, &nattrs) : 0;
    size_t sz =
        asz + slen(id) + slen(rh) + slen(body) + slen(md5) + slen(gid) + slen(did) + slen(trace);
    char *p = eddy_malloc(sz);
    m->mem = p;
    if (nattrs)
        attrs_fill(m, ma, nattrs, &p);
    m->message_id = adup(&p, id);
    m->receipt_handle = adup(&p, rh);
    m->body = adup(&p, body);
    m->body_len = strlen(body);
    m->md5_of_body = adup(&p, md5);
    m->group_id = adup(&p, gid);
    m->dedup_id = adup(&p, did);
    m->trace_header = adup(&p, trace);
    int64_t rc = jnum(at, "ApproximateReceiveCount");
    m->receive_count = rc < 0 ? 0 : rc > UINT32_MAX ? UINT32_MAX : (uint32_t)rc;
    m->sent_ms = jnum(at, "SentTimestamp");
    m->first_receive_ms = jnum(at, "ApproximateFirstReceiveTimestamp");
    return EDDY_OK;
}

static eddy_err receive_parse(const cJSON *json, struct eddy_sqs_receive_result *r,
                              struct eddy_error *err)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(json, "Messages");
    if (msgs == NULL || cJSON_IsNull(msgs))
        return EDDY_OK; /* the long poll ended empty */
    if (!cJSON_IsArray(msgs))
        return eddy_error_set(err, EDDY_EPARSE, "SQS ReceiveMessage: Messages is not an array");
    size_t n = (size_t)cJSON_GetArraySize(msgs);
    if (n == 0)
        return EDDY_OK;
    r->msgs = eddy_calloc(n, sizeof *r->msgs);
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        eddy_err rc = message_parse(m, &r->msgs[r->n], r->n, err);
        if (rc) {
            eddy_sqs_receive_result_cleanup(r);
            return rc;
        }
        r->n++;
    }
    return EDDY_OK;
}

/* ---- DeleteMessageBatch, ChangeMessageVisibilityBatch ---- */

static eddy_err batch_start(struct eddy_sqs *s, enum op_kind kind, const char *queue_url,
                            const struct eddy_sqs_batch_entry *entries, size_t n,
                            eddy_sqs_batch_cb cb, void *ud, struct eddy_aws_call **handle,
                            struct eddy_error *err)
{
    const char *opname = kind == OP_DELETE ? "DeleteMessageBatch" : "ChangeMessageVisibilityBatch";
    if (s == NULL || queue_url == NULL || cb == NULL || (n && entries == NULL))
        return eddy_error_set(err, EDDY_EINVAL, "SQS %s: queue URL, entries and cb required",
                              opname);
    if (n == 0 || n > EDDY_SQS_MAX_BATCH)
        return eddy_error_set(err, n ? EDDY_ELIMIT : EDDY_EINVAL,
                              "SQS %s takes 1..%d entries (got %zu)", opname, EDDY_SQS_MAX_BATCH,
                              n);
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    eddy_jw_open(&w, '{');
    EDDY_JW_KSTR(&w, "QueueUrl", queue_url);
    EDDY_JW_KEY(&w, "Entries");
    eddy_jw_open(&w, '[');
    for (size_t i = 0; i < n; i++) {
        if (entries[i].receipt_handle == NULL) {
            eddy_jw_cleanup(&w);
            return eddy_error_set(err, EDDY_EINVAL, "SQS %s: entry %zu has no receipt handle",
                                  opname, i);
        }
        char id = (char)('0' + i); /* the index (n <= 10): results map back by it */
        eddy_jw_open(&w, '{');
        EDDY_JW_KEY(&w, "Id");
        eddy_jw_str(&w, &id, 1);
        EDDY_JW_KSTR(&w, "ReceiptHandle", entries[i].receipt_handle);
        if (kind == OP_VISIBILITY)
            EDDY_JW_KINT(&w, "VisibilityTimeout", entries[i].visibility_s);
        eddy_jw_close(&w, '}');
    }
    eddy_jw_close(&w, ']');
    eddy_jw_close(&w, '}');
    struct op *o = op_new(kind, ud);
    o->cb.batch = cb;
    o->n = n;
    struct eddy_aws_call_opts opts = {0, true, 0};
    return start(s, opname, &w, o, &opts, handle, err);
}

eddy_err eddy_sqs_delete_batch(struct eddy_sqs *s, const char *queue_url,
                               const struct eddy_sqs_batch_entry *entries, size_t n,
                               eddy_sqs_batch_cb cb, void *ud, struct eddy_aws_call **handle,
                               struct eddy_error *err)
{
    return batch_start(s, OP_DELETE, queue_url, entries, n, cb, ud, handle, err);
}

eddy_err eddy_sqs_change_visibility_batch(struct eddy_sqs *s, const char *queue_url,
                                          const struct eddy_sqs_batch_entry *entries, size_t n,
                                          eddy_sqs_batch_cb cb, void *ud,
                                          struct eddy_aws_call **handle, struct eddy_error *err)
{
    return batch_start(s, OP_VISIBILITY, queue_url, entries, n, cb, ud, handle, err);
}

void eddy_sqs_batch_result_cleanup(struct eddy_sqs_batch_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->entries[i].code);
        free(r->entries[i].message);
    }
    free(r->entries);
    memset(r, 0, sizeof *r);
}

/* The request index an entry id names, or n when it names none. */
static size_t entry_index(const cJSON *e, size_t n)
{
    const char *id = jstr(e, "Id");
    if (id == NULL || *id < '0' || *id > '9')
        return n;
    char *end;
    unsigned long i = strtoul(id, &end, 10);
    return *end == '\0' && i < n ? (size_t)i : n;
}

static void batch_parse(const cJSON *json, size_t n, struct eddy_sqs_batch_result *r)
{
    r->entries = eddy_calloc(n, sizeof *r->entries);
    r->n = n;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(json, "Successful"))
    {
        size_t i = entry_index(e, n);
        if (i < n)
            r->entries[i].ok = true;
    }
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(json, "Failed"))
    {
        size_t i = entry_index(e, n);
        if (i == n || r->entries[i].code)
            continue;
        const char *code = jstr(e, "Code"), *msg = jstr(e, "Message");
        r->entries[i].ok = false;
        r->entries[i].code = eddy_strdup(code ? code : "Unknown");
        r->entries[i].message = eddy_strdup(msg ? msg : "");
        r->entries[i].sender_fault =
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "SenderFault"));
    }
    for (size_t i = 0; i < n; i++) {
        if (r->entries[i].ok)
            continue;
        if (r->entries[i].code == NULL) {
            r->entries[i].code = eddy_strdup("NoResult");
            r->entries[i].message = eddy_strdup("the reply names this entry nowhere");
        }
        r->nfailed++;
    }
}

/* ---- SendMessage ---- */

static eddy_err send_check(const struct eddy_sqs_send_params *p, struct eddy_error *err)
{
    if (p == NULL || p->queue_url == NULL || p->body == NULL || (p->nattrs && p->attrs == NULL))
        return eddy_error_set(err, EDDY_EINVAL, "SQS SendMessage: queue URL and body required");
    if (p->nattrs > EDDY_SQS_MAX_ATTRIBUTES)
        return eddy_error_set(err, EDDY_ELIMIT,
                              "SQS SendMessage takes at most %d message attributes (got %zu)",
                              EDDY_SQS_MAX_ATTRIBUTES, p->nattrs);
    size_t size = strlen(p->body);
    for (size_t i = 0; i < p->nattrs; i++) {
        const struct eddy_sqs_attr *a = &p->attrs[i];
        if (a->name == NULL || a->type == NULL || a->value == NULL)
            return eddy_error_set(err, EDDY_EINVAL, "SQS SendMessage: attribute %zu incomplete", i);
        size += strlen(a->name) + strlen(a->type) + strlen(a->value);
    }
    if (size > EDDY_SQS_MAX_MESSAGE_BYTES)
        return eddy_error_set(err, EDDY_ELIMIT,
                              "SQS message is %zu bytes with its attributes, over the %d byte "
                              "(256 KiB) limit",
                              size, EDDY_SQS_MAX_MESSAGE_BYTES);
    return EDDY_OK;
}

static void send_attrs(struct eddy_jw *w, const struct eddy_sqs_send_params *p)
{
    EDDY_JW_KEY(w, "MessageAttributes");
    eddy_jw_open(w, '{');
    for (size_t i = 0; i < p->nattrs; i++) {
        const struct eddy_sqs_attr *a = &p->attrs[i];
        eddy_jw_key(w, a->name);
        eddy_jw_open(w, '{');
        EDDY_JW_KSTR(w, "DataType", a->type);
        bool binary = strncmp(a->type, "Binary", 6) == 0;
        eddy_jw_kstr(w, binary ? "BinaryValue" : "StringValue", a->value);
        eddy_jw_close(w, '}');
    }
    eddy_jw_close(w, '}');
}

eddy_err eddy_sqs_send(struct eddy_sqs *s, const struct eddy_sqs_send_params *p,
                       eddy_sqs_send_cb cb, void *ud, struct eddy_aws_call **handle,
                       struct eddy_error *err)
{
    eddy_err rc = send_check(p, err);
    if (rc)
        return rc;
    if (s == NULL || cb == NULL)
        return eddy_error_set(err, EDDY_EINVAL, "SQS SendMessage: client and cb required");
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    eddy_jw_open(&w, '{');
    EDDY_JW_KSTR(&w, "QueueUrl", p->queue_url);
    EDDY_JW_KSTR(&w, "MessageBody", p->body);
    if (p->nattrs)
        send_attrs(&w, p);
    if (p->group_id)
        EDDY_JW_KSTR(&w, "MessageGroupId", p->group_id);
    if (p->dedup_id)
        EDDY_JW_KSTR(&w, "MessageDeduplicationId", p->dedup_id);
    if (p->delay_s >= 0)
        EDDY_JW_KINT(&w, "DelaySeconds", p->delay_s);
    eddy_jw_close(&w, '}');
    struct op *o = op_new(OP_SEND, ud);
    o->cb.send = cb;
    /* a repeated send after a timeout may duplicate: FIFO dedup ids make it safe */
    struct eddy_aws_call_opts opts = {0, p->dedup_id != NULL, 0};
    return start(s, "SendMessage", &w, o, &opts, handle, err);
}

void eddy_sqs_send_result_cleanup(struct eddy_sqs_send_result *r)
{
    free(r->message_id);
    free(r->sequence_number);
    memset(r, 0, sizeof *r);
}

/* ---- GetQueueAttributes ---- */

eddy_err eddy_sqs_get_queue_attributes(struct eddy_sqs *s, const char *queue_url,
                                       eddy_sqs_attrs_cb cb, void *ud,
                                       struct eddy_aws_call **handle, struct eddy_error *err)
{
    if (s == NULL || queue_url == NULL || cb == NULL)
        return eddy_error_set(err, EDDY_EINVAL,
                              "SQS GetQueueAttributes: queue URL and cb required");
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    eddy_jw_open(&w, '{');
    EDDY_JW_KSTR(&w, "QueueUrl", queue_url);
    EDDY_JW_KEY(&w, "AttributeNames");
    eddy_jw_open(&w, '[');
    eddy_jw_cstr(&w, "All");
    eddy_jw_close(&w, ']');
    eddy_jw_close(&w, '}');
    struct op *o = op_new(OP_ATTRS, ud);
    o->cb.attrs = cb;
    struct eddy_aws_call_opts opts = {0, true, 0};
    return start(s, "GetQueueAttributes", &w, o, &opts, handle, err);
}

void eddy_sqs_queue_attrs_cleanup(struct eddy_sqs_queue_attrs *a)
{
    free(a->dlq_arn);
    memset(a, 0, sizeof *a);
}

static eddy_err attrs_parse(const cJSON *json, struct eddy_sqs_queue_attrs *a,
                            struct eddy_error *err)
{
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(json, "Attributes");
    a->visibility_timeout_s = (int)jnum(at, "VisibilityTimeout");
    const char *fifo = jstr(at, "FifoQueue");
    a->fifo = fifo && strcmp(fifo, "true") == 0;
    const char *rp = jstr(at, "RedrivePolicy");
    if (rp == NULL || *rp == '\0')
        return EDDY_OK;
    cJSON *pol = cJSON_Parse(rp); /* RedrivePolicy is JSON inside a string */
    if (!cJSON_IsObject(pol)) {
        cJSON_Delete(pol);
        return eddy_error_set(err, EDDY_EPARSE,
                              "SQS GetQueueAttributes: RedrivePolicy is not "
                              "a JSON object");
    }
    const char *arn = jstr(pol, "deadLetterTargetArn");
    a->dlq_arn = arn ? eddy_strdup(arn) : NULL;
    a->max_receive_count = (int)jnum(pol, "maxReceiveCount");
    cJSON_Delete(pol);
    return EDDY_OK;
}

/* ---- replies ---- */

static void deliver(struct op *o, eddy_err err, const struct eddy_aws_reply *reply)
{
    struct eddy_error perr = {0};
    const cJSON *json = err == EDDY_OK ? reply->json : NULL;
    struct eddy_aws_reply r = *reply;
    if (err == EDDY_OK)
        r.error = &perr;
    switch (o->kind) {
    case OP_RECEIVE: {
        struct eddy_sqs_receive_result res = {0};
        if (json)
            err = receive_parse(json, &res, &perr);
        o->cb.receive(err, &res, &r, o->ud);
        break;
    }
    case OP_DELETE:
    case OP_VISIBILITY: {
        struct eddy_sqs_batch_result res = {0};
        if (json)
            batch_parse(json, o->n, &res);
        o->cb.batch(err, &res, &r, o->ud);
        break;
    }
    case OP_SEND: {
        struct eddy_sqs_send_result res = {0};
        const char *id = jstr(json, "MessageId"), *seq = jstr(json, "SequenceNumber");
        res.message_id = id ? eddy_strdup(id) : NULL;
        res.sequence_number = seq ? eddy_strdup(seq) : NULL;
        if (json && id == NULL)
            err = eddy_error_set(&perr, EDDY_EPARSE, "SQS SendMessage: reply has no MessageId");
        o->cb.send(err, &res, &r, o->ud);
        break;
    }
    case OP_ATTRS: {
        struct eddy_sqs_queue_attrs res = {0};
        if (json)
            err = attrs_parse(json, &res, &perr);
        o->cb.attrs(err, &res, &r, o->ud);
        break;
    }
    }
}

static void on_reply(eddy_err err, const struct eddy_aws_reply *reply, void *ud)
{
    struct op *o = ud;
    deliver(o, err, reply);
    free(o);
}
