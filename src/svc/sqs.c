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
    struct eddy_aws_call_opts opts = {
        .timeout_ms = (uint32_t)p->wait_s * 1000 + EDDY_SQS_POLL_MARGIN_MS,
        .idempotent = true,
        .raw_reply = true, /* read by eddy_sqs_receive_parse */
    };
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

/*
 * ReceiveMessage's reply is read straight from its text, without a tree:
 * one pass over a message notes where each field it keeps lies, then one
 * allocation takes them all, unescaped. A field is the first member of its
 * name (as a lookup in a tree finds it), and counts as absent when that one
 * is not a string (a number, for the numeric attributes).
 */
static bool field_is_str(const struct eddy_jr_field *f)
{
    return f->type == EDDY_JR_STRING;
}

/* The bytes a string field takes in the block (an upper bound: escapes
 * only shrink), with its NUL. */
static size_t field_size(const struct eddy_jr_field *f)
{
    return field_is_str(f) ? f->s.len + 1 : 0;
}

/* A string field unescaped into the block at *p, as a C string (a \u0000
 * ends it, as it ends a C string); NULL when absent. *len gets its length. */
static const char *field_dup(const struct eddy_jr_field *f, char **p, size_t *len)
{
    if (!field_is_str(f))
        return NULL;
    char *out = *p;
    size_t n = eddy_jr_unescape(&f->s, out);
    if (f->s.escaped)
        n = strnlen(out, n);
    out[n] = '\0';
    *p += n + 1;
    if (len)
        *len = n;
    return out;
}

/* strtoll(s, NULL, 10) of a string's text: white space, a sign, digits,
 * saturating. */
static int64_t text_to_i64(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')))
        i++;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (lim - d) / 10) {
            v = lim;
            break;
        }
        v = v * 10 + d;
    }
    return neg ? (int64_t)(0 - v) : (int64_t)v;
}

/* A number SQS may send as a string ("3") or as a number; 0 when absent. */
static int64_t field_i64(const struct eddy_jr_field *f)
{
    if (f->type == EDDY_JR_NUMBER) {
        double d = eddy_jr_field_double(f);
        return d >= 0x1p63 ? INT64_MAX : d <= -0x1p63 ? INT64_MIN : (int64_t)d;
    }
    if (f->type != EDDY_JR_STRING)
        return 0;
    if (!f->s.escaped)
        return text_to_i64(f->s.ptr, f->s.len);
    char small[64];
    char *buf = f->s.len <= sizeof small ? small : eddy_malloc(f->s.len);
    size_t n = eddy_jr_unescape(&f->s, buf);
    int64_t v = text_to_i64(buf, strnlen(buf, n));
    if (buf != small)
        free(buf);
    return v;
}

/* a key and its length, for the tables of the names read */
#define KEY(lit)                                                                                   \
    {                                                                                              \
        (lit), sizeof(lit) - 1                                                                     \
    }

enum { F_ID, F_RH, F_BODY, F_MD5, F_ATTRS, F_MATTRS, F_NFIELDS };
enum { A_GROUP, A_DEDUP, A_TRACE, A_COUNT, A_SENT, A_FIRST, A_NFIELDS };

struct msg_fields {
    struct eddy_jr_field f[F_NFIELDS];
    struct eddy_jr_field a[A_NFIELDS]; /* in Attributes */
    const char *mattrs, *mattrs_end;   /* MessageAttributes' text, when an object */
};

/* One member of a message attribute: {"DataType":..,"StringValue"|"BinaryValue":..}. */
enum { T_TYPE, T_STR, T_BIN, T_NFIELDS };
struct attr_fields {
    struct eddy_jr_str name;
    struct eddy_jr_field f[T_NFIELDS];
};

static const struct eddy_jr_field *attr_value(const struct attr_fields *a)
{
    return field_is_str(&a->f[T_STR]) ? &a->f[T_STR] : &a->f[T_BIN];
}

/* The members of one message attribute; false when it is not an object. */
static bool attr_read(struct eddy_jr *r, struct attr_fields *a)
{
    static const struct eddy_str names[T_NFIELDS] = {
        [T_TYPE] = KEY("DataType"), [T_STR] = KEY("StringValue"), [T_BIN] = KEY("BinaryValue")};
    return eddy_jr_fields(r, names, T_NFIELDS, a->f);
}

/* The attributes that are objects, and the bytes they take in the block. */
static size_t attrs_size(const struct msg_fields *m, size_t *n)
{
    size_t sz = 0;
    *n = 0;
    if (m->mattrs == NULL)
        return 0;
    struct eddy_jr r;
    eddy_jr_init(&r, m->mattrs, (size_t)(m->mattrs_end - m->mattrs));
    (void)eddy_jr_object(&r);
    struct attr_fields a;
    while (eddy_jr_member(&r, &a.name)) {
        if (!attr_read(&r, &a))
            continue;
        (*n)++;
        sz += sizeof(struct eddy_sqs_attr) + a.name.len + 1 + field_size(&a.f[T_TYPE]) +
              field_size(attr_value(&a));
    }
    return sz;
}

static void attrs_fill(struct eddy_sqs_message *m, const struct msg_fields *mf, size_t n, char **p)
{
    m->attrs = (struct eddy_sqs_attr *)(void *)*p;
    *p += n * sizeof(struct eddy_sqs_attr);
    struct eddy_jr r;
    eddy_jr_init(&r, mf->mattrs, (size_t)(mf->mattrs_end - mf->mattrs));
    (void)eddy_jr_object(&r);
    struct attr_fields a;
    size_t i = 0;
    while (i < n && eddy_jr_member(&r, &a.name)) {
        if (!attr_read(&r, &a))
            continue;
        struct eddy_jr_field name = {EDDY_JR_STRING, a.name};
        m->attrs[i].name = field_dup(&name, p, NULL);
        m->attrs[i].type = field_dup(&a.f[T_TYPE], p, NULL);
        m->attrs[i].value = field_dup(attr_value(&a), p, NULL);
        i++;
    }
    m->nattrs = n;
}

/* Attributes: the system attributes eddy keeps. */
static void sys_attrs_read(struct eddy_jr *r, struct msg_fields *m)
{
    static const struct eddy_str names[A_NFIELDS] = {
        [A_GROUP] = KEY("MessageGroupId"), [A_DEDUP] = KEY("MessageDeduplicationId"),
        [A_TRACE] = KEY("AWSTraceHeader"), [A_COUNT] = KEY("ApproximateReceiveCount"),
        [A_SENT] = KEY("SentTimestamp"),   [A_FIRST] = KEY("ApproximateFirstReceiveTimestamp"),
    };
    (void)eddy_jr_fields(r, names, A_NFIELDS, m->a);
}

/* One element of Messages: where its fields lie. */
static void message_read(struct eddy_jr *r, struct msg_fields *m)
{
    static const struct eddy_str names[F_NFIELDS] = {
        [F_ID] = KEY("MessageId"),     [F_RH] = KEY("ReceiptHandle"),
        [F_BODY] = KEY("Body"),        [F_MD5] = KEY("MD5OfBody"),
        [F_ATTRS] = KEY("Attributes"), [F_MATTRS] = KEY("MessageAttributes"),
    };
    memset(m, 0, sizeof *m);
    if (eddy_jr_peek(r) != EDDY_JR_OBJECT) {
        (void)eddy_jr_skip(r); /* has none of the fields: refused below */
        return;
    }
    (void)eddy_jr_object(r);
    struct eddy_jr_str k;
    while (eddy_jr_member(r, &k)) {
        size_t i = 0;
        while (i < F_NFIELDS && !eddy_jr_str_eq(&k, names[i].ptr, names[i].len))
            i++;
        if (i == F_ATTRS || i == F_MATTRS) {
            bool first = m->f[i].type == EDDY_JR_END;
            enum eddy_jr_type t = eddy_jr_peek(r);
            if (first)
                m->f[i].type = t;
            if (first && t == EDDY_JR_OBJECT && i == F_ATTRS) {
                sys_attrs_read(r, m);
            } else if (first && t == EDDY_JR_OBJECT) {
                m->mattrs = r->p;
                (void)eddy_jr_skip(r);
                m->mattrs_end = r->p;
            } else {
                (void)eddy_jr_skip(r);
            }
        } else if (i < F_NFIELDS) {
            eddy_jr_take(r, &m->f[i]);
        } else {
            (void)eddy_jr_skip(r);
        }
    }
}

static eddy_err message_fill(const struct msg_fields *mf, struct eddy_sqs_message *m, size_t idx,
                             struct eddy_error *err)
{
    const struct eddy_jr_field *f = mf->f, *a = mf->a;
    if (!field_is_str(&f[F_ID]) || !field_is_str(&f[F_RH]) || !field_is_str(&f[F_BODY]))
        return eddy_error_set(err, EDDY_EPARSE,
                              "SQS ReceiveMessage: message %zu lacks MessageId, ReceiptHandle "
                              "or Body",
                              idx);
    size_t nattrs = 0;
    size_t sz = attrs_size(mf, &nattrs) + field_size(&f[F_ID]) + field_size(&f[F_RH]) +
                field_size(&f[F_BODY]) + field_size(&f[F_MD5]) + field_size(&a[A_GROUP]) +
                field_size(&a[A_DEDUP]) + field_size(&a[A_TRACE]);
    char *p = eddy_malloc(sz);
    m->mem = p;
    if (nattrs)
        attrs_fill(m, mf, nattrs, &p);
    m->message_id = field_dup(&f[F_ID], &p, NULL);
    m->receipt_handle = field_dup(&f[F_RH], &p, NULL);
    m->body = field_dup(&f[F_BODY], &p, &m->body_len);
    m->md5_of_body = field_dup(&f[F_MD5], &p, NULL);
    m->group_id = field_dup(&a[A_GROUP], &p, NULL);
    m->dedup_id = field_dup(&a[A_DEDUP], &p, NULL);
    m->trace_header = field_dup(&a[A_TRACE], &p, NULL);
    int64_t rc = field_i64(&a[A_COUNT]);
    m->receive_count = rc < 0 ? 0 : rc > UINT32_MAX ? UINT32_MAX : (uint32_t)rc;
    m->sent_ms = field_i64(&a[A_SENT]);
    m->first_receive_ms = field_i64(&a[A_FIRST]);
    return EDDY_OK;
}

/* Messages: each element read and copied out, the result grown by doubling. */
static eddy_err messages_read(struct eddy_jr *r, struct eddy_sqs_receive_result *res,
                              struct eddy_error *err)
{
    size_t cap = 0;
    (void)eddy_jr_array(r);
    while (eddy_jr_element(r)) {
        struct msg_fields mf;
        message_read(r, &mf);
        if (r->rc != EDDY_OK)
            break;
        if (res->n == cap) {
            cap = cap ? cap * 2 : EDDY_SQS_MAX_BATCH;
            res->msgs = eddy_realloc(res->msgs, cap * sizeof *res->msgs);
        }
        memset(&res->msgs[res->n], 0, sizeof res->msgs[res->n]);
        eddy_err rc = message_fill(&mf, &res->msgs[res->n], res->n, err);
        if (rc)
            return rc;
        res->n++;
    }
    return EDDY_OK;
}

eddy_err eddy_sqs_receive_parse(const char *text, size_t len, struct eddy_sqs_receive_result *res,
                                struct eddy_error *err)
{
    memset(res, 0, sizeof *res);
    if (len == 0)
        return EDDY_OK; /* an operation with no output: no messages */
    struct eddy_jr r;
    eddy_jr_init(&r, text, len);
    eddy_err rc = EDDY_OK;
    bool seen = false;
    struct eddy_jr_str k;
    if (eddy_jr_peek(&r) != EDDY_JR_OBJECT)
        goto bad;
    (void)eddy_jr_object(&r);
    while (rc == EDDY_OK && eddy_jr_member(&r, &k)) {
        if (seen || !EDDY_JR_KEY_IS(&k, "Messages")) {
            (void)eddy_jr_skip(&r);
            continue;
        }
        seen = true;
        enum eddy_jr_type t = eddy_jr_peek(&r);
        if (t == EDDY_JR_ARRAY) {
            rc = messages_read(&r, res, err);
        } else {
            (void)eddy_jr_skip(&r);
            if (t != EDDY_JR_NULL && r.rc == EDDY_OK)
                rc = eddy_error_set(err, EDDY_EPARSE,
                                    "SQS ReceiveMessage: Messages is not an array");
        }
    }
    if (rc == EDDY_OK && eddy_jr_finish(&r) == EDDY_OK)
        return EDDY_OK;
bad:
    if (rc == EDDY_OK)
        rc = eddy_error_set(err, EDDY_EPARSE,
                            "SQS ReceiveMessage: reply is not a JSON object (%zu bytes, bad at "
                            "byte %zu)",
                            len, r.rc ? r.at : 0);
    eddy_sqs_receive_result_cleanup(res);
    return rc;
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
    struct eddy_aws_call_opts opts = {.idempotent = true, .raw_reply = true};
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

/* The request index an entry id names ("0".."9" as sent; digits only, as
 * strtoul would take them whole), or n when it names none. */
static size_t entry_index(const struct eddy_jr_field *id, size_t n)
{
    char small[32], *s = NULL; /* ids are short: on the stack, as a rule */
    if (id->type == EDDY_JR_STRING && id->s.len < sizeof small) {
        size_t k = eddy_jr_unescape(&id->s, small);
        small[id->s.escaped ? strnlen(small, k) : k] = '\0';
        s = small;
    } else {
        s = eddy_jr_field_strdup(id);
    }
    size_t i = n;
    if (s && *s >= '0' && *s <= '9') {
        uint64_t v = 0;
        const char *p = s;
        for (; *p >= '0' && *p <= '9' && v < n; p++)
            v = v * 10 + (uint64_t)(*p - '0');
        if (*p == '\0' && v < n)
            i = (size_t)v;
    }
    if (s != small)
        free(s);
    return i;
}

/* One element of Successful or Failed: its first Id, Code, Message and
 * SenderFault (none when it is not an object: it names no entry). */
enum { B_ID, B_CODE, B_MSG, B_FAULT, B_NFIELDS };

static void batch_entry_read(struct eddy_jr *r, struct eddy_jr_field e[B_NFIELDS])
{
    static const struct eddy_str names[B_NFIELDS] = {[B_ID] = KEY("Id"),
                                                     [B_CODE] = KEY("Code"),
                                                     [B_MSG] = KEY("Message"),
                                                     [B_FAULT] = KEY("SenderFault")};
    (void)eddy_jr_fields(r, names, B_NFIELDS, e);
}

/* The entries of Successful (failed false) or Failed into r. Their values
 * are taken from an array, or from an object's members (as a tree's
 * children are); anything else holds none. */
static void batch_list_read(struct eddy_jr *jr, bool failed, size_t n,
                            struct eddy_sqs_batch_result *r)
{
    enum eddy_jr_type t = eddy_jr_peek(jr);
    if (t != EDDY_JR_ARRAY && t != EDDY_JR_OBJECT) {
        (void)eddy_jr_skip(jr);
        return;
    }
    struct eddy_jr_str k;
    if (t == EDDY_JR_ARRAY)
        (void)eddy_jr_array(jr);
    else
        (void)eddy_jr_object(jr);
    while (t == EDDY_JR_ARRAY ? eddy_jr_element(jr) : eddy_jr_member(jr, &k)) {
        struct eddy_jr_field e[B_NFIELDS];
        batch_entry_read(jr, e);
        if (jr->rc != EDDY_OK)
            return;
        size_t i = entry_index(&e[B_ID], n);
        if (i == n)
            continue;
        struct eddy_sqs_entry_result *er = &r->entries[i];
        if (!failed) {
            er->ok = true;
            continue;
        }
        if (er->code)
            continue;
        char *code = eddy_jr_field_strdup(&e[B_CODE]), *msg = eddy_jr_field_strdup(&e[B_MSG]);
        er->ok = false;
        er->code = code ? code : eddy_strdup("Unknown");
        er->message = msg ? msg : eddy_strdup("");
        er->sender_fault = eddy_jr_field_true(&e[B_FAULT]);
    }
}

eddy_err eddy_sqs_batch_parse(const char *text, size_t len, size_t n,
                              struct eddy_sqs_batch_result *r, struct eddy_error *err)
{
    memset(r, 0, sizeof *r);
    r->entries = eddy_calloc(n ? n : 1, sizeof *r->entries);
    r->n = n;
    struct eddy_jr jr;
    eddy_jr_init(&jr, text, len);
    if (len) {
        bool ok_seen = false, failed_seen = false;
        struct eddy_jr_str k;
        (void)eddy_jr_object(&jr);
        while (eddy_jr_member(&jr, &k)) {
            if (!ok_seen && EDDY_JR_KEY_IS(&k, "Successful")) {
                ok_seen = true;
                batch_list_read(&jr, false, n, r);
            } else if (!failed_seen && EDDY_JR_KEY_IS(&k, "Failed")) {
                failed_seen = true;
                batch_list_read(&jr, true, n, r);
            } else {
                (void)eddy_jr_skip(&jr);
            }
        }
        (void)eddy_jr_finish(&jr);
    }
    if (jr.rc != EDDY_OK) {
        eddy_sqs_batch_result_cleanup(r);
        return eddy_error_set(err, EDDY_EPARSE,
                              "SQS batch: reply is not a JSON object (%zu bytes, bad at byte %zu)",
                              len, jr.at);
    }
    for (size_t i = 0; i < n; i++) {
        if (r->entries[i].code) /* named as failed: whatever Successful says, in either order */
            r->entries[i].ok = false;
        if (r->entries[i].ok)
            continue;
        if (r->entries[i].code == NULL) {
            r->entries[i].code = eddy_strdup("NoResult");
            r->entries[i].message = eddy_strdup("the reply names this entry nowhere");
        }
        r->nfailed++;
    }
    return EDDY_OK;
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
    struct eddy_aws_call_opts opts = {.idempotent = p->dedup_id != NULL};
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
    struct eddy_aws_call_opts opts = {.idempotent = true};
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
        if (err == EDDY_OK)
            err = eddy_sqs_receive_parse(reply->body.ptr, reply->body.len, &res, &perr);
        o->cb.receive(err, &res, &r, o->ud);
        break;
    }
    case OP_DELETE:
    case OP_VISIBILITY: {
        struct eddy_sqs_batch_result res = {0};
        if (err == EDDY_OK)
            err = eddy_sqs_batch_parse(reply->body.ptr, reply->body.len, o->n, &res, &perr);
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
