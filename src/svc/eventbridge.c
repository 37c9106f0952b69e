/*
 * eventbridge.c - PutEvents over the JSON protocol (awsJson1_1, see
 * eventbridge.h). The request is written straight into the body buffer.
 */
#include "svc/eventbridge.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "svc/svccall.h"

struct op {
    eddy_eb_put_cb cb;
    void *ud;
    size_t n;
};

eddy_err eddy_eb_init(struct eddy_eb *e, struct eddy_aws *aws, const struct eddy_endpoint *ep,
                      struct eddy_error *err)
{
    return eddy_aws_client_init(&e->client, aws, EDDY_AWS_EVENTBRIDGE, ep, err);
}

void eddy_eb_cleanup(struct eddy_eb *e)
{
    eddy_aws_client_cleanup(&e->client);
}

size_t eddy_eb_entry_size(const struct eddy_eb_entry *en)
{
    size_t n = en->time_s ? 14 : 0;
    n += en->source ? strlen(en->source) : 0;
    n += en->detail_type ? strlen(en->detail_type) : 0;
    n += en->detail ? strlen(en->detail) : 0;
    for (size_t i = 0; i < en->nresources; i++)
        n += en->resources[i] ? strlen(en->resources[i]) : 0;
    return n;
}

static eddy_err check(const struct eddy_eb_entry *entries, size_t n, size_t *bytes,
                      struct eddy_error *err)
{
    if (entries == NULL || n == 0)
        return eddy_error_set(err, EDDY_EINVAL, "EventBridge PutEvents: no entries");
    if (n > EDDY_EB_MAX_ENTRIES)
        return eddy_error_set(err, EDDY_ELIMIT,
                              "EventBridge PutEvents takes at most %d entries (got %zu)",
                              EDDY_EB_MAX_ENTRIES, n);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const struct eddy_eb_entry *en = &entries[i];
        if (en->source == NULL || en->detail_type == NULL || en->detail == NULL ||
            (en->nresources && en->resources == NULL))
            return eddy_error_set(err, EDDY_EINVAL,
                                  "EventBridge PutEvents: entry %zu needs Source, DetailType "
                                  "and Detail",
                                  i);
        total += eddy_eb_entry_size(en);
    }
    *bytes = total;
    if (total > EDDY_EB_MAX_BYTES)
        return eddy_error_set(err, EDDY_ELIMIT,
                              "EventBridge PutEvents entries are %zu bytes, over the %d byte "
                              "(256 KiB) limit",
                              total, EDDY_EB_MAX_BYTES);
    return EDDY_OK;
}

static void write_entry(struct eddy_jw *w, const struct eddy_eb_entry *en)
{
    eddy_jw_open(w, '{');
    EDDY_JW_KSTR(w, "Source", en->source);
    EDDY_JW_KSTR(w, "DetailType", en->detail_type);
    if (en->detail_json) {
        EDDY_JW_KEY(w, "Detail");
        eddy_jw_raw(w, en->detail_json, en->detail_json_len);
    } else {
        EDDY_JW_KSTR(w, "Detail", en->detail);
    }
    if (en->event_bus_name)
        EDDY_JW_KSTR(w, "EventBusName", en->event_bus_name);
    if (en->nresources) {
        EDDY_JW_KEY(w, "Resources");
        eddy_jw_open(w, '[');
        for (size_t i = 0; i < en->nresources; i++)
            eddy_jw_cstr(w, en->resources[i] ? en->resources[i] : "");
        eddy_jw_close(w, ']');
    }
    if (en->trace_header)
        EDDY_JW_KSTR(w, "TraceHeader", en->trace_header);
    if (en->time_s)
        EDDY_JW_KINT(w, "Time", en->time_s); /* JSON protocol timestamps: epoch seconds */
    eddy_jw_close(w, '}');
}

static void on_reply(eddy_err err, const struct eddy_aws_reply *reply, void *ud);

eddy_err eddy_eb_put_events(struct eddy_eb *e, const struct eddy_eb_entry *entries, size_t n,
                            eddy_eb_put_cb cb, void *ud, struct eddy_aws_call **handle,
                            struct eddy_error *err)
{
    size_t bytes = 0;
    eddy_err rc = check(entries, n, &bytes, err);
    if (rc)
        return rc;
    if (e == NULL || cb == NULL)
        return eddy_error_set(err, EDDY_EINVAL, "EventBridge PutEvents: client and cb required");
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    /* room for the entries, their escapes and names, as a rule: the body is
     * not grown by doubling */
    w.rc = eddy_buf_reserve(&w.buf, bytes + bytes / 4 + n * 128 + 32);
    eddy_jw_open(&w, '{');
    EDDY_JW_KEY(&w, "Entries");
    eddy_jw_open(&w, '[');
    for (size_t i = 0; i < n; i++)
        write_entry(&w, &entries[i]);
    eddy_jw_close(&w, ']');
    eddy_jw_close(&w, '}');
    struct op *o = eddy_calloc(1, sizeof *o);
    o->cb = cb;
    o->ud = ud;
    o->n = n;
    /* not idempotent: a repeat after a timeout may publish twice (consumers
     * drop duplicates by the event id in the detail) */
    struct eddy_aws_call_opts opts = {.idempotent = false, .raw_reply = true};
    rc = eddy_svc_call(&e->client, "PutEvents", &w, &opts, on_reply, o, handle, err);
    if (rc)
        free(o);
    return rc;
}

void eddy_eb_put_result_cleanup(struct eddy_eb_put_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->entries[i].event_id);
        free(r->entries[i].error_code);
        free(r->entries[i].error_message);
    }
    free(r->entries);
    memset(r, 0, sizeof *r);
}

/* One element of Entries: its first EventId, ErrorCode and ErrorMessage. */
static void entry_read(struct eddy_jr *r, struct eddy_eb_entry_result *er)
{
    struct eddy_jr_field id = {0}, code = {0}, msg = {0};
    if (eddy_jr_peek(r) == EDDY_JR_OBJECT) {
        (void)eddy_jr_object(r);
        struct eddy_jr_str k;
        while (eddy_jr_member(r, &k)) {
            if (EDDY_JR_KEY_IS(&k, "EventId"))
                eddy_jr_take(r, &id);
            else if (EDDY_JR_KEY_IS(&k, "ErrorCode"))
                eddy_jr_take(r, &code);
            else if (EDDY_JR_KEY_IS(&k, "ErrorMessage"))
                eddy_jr_take(r, &msg);
            else
                (void)eddy_jr_skip(r);
        }
    } else {
        (void)eddy_jr_skip(r); /* names nothing: NoResult */
    }
    if (r->rc != EDDY_OK)
        return;
    er->event_id = eddy_jr_field_strdup(&id);
    er->error_code = eddy_jr_field_strdup(&code);
    er->error_message = eddy_jr_field_strdup(&msg);
}

/* Entries come back in request order, one each. An entry with neither an id
 * nor a code (a short reply) counts as failed, so it is sent again. Read
 * from the reply's text, without a tree. */
eddy_err eddy_eb_put_parse(const char *text, size_t len, size_t n, struct eddy_eb_put_result *res,
                           struct eddy_error *err)
{
    memset(res, 0, sizeof *res);
    res->entries = eddy_calloc(n ? n : 1, sizeof *res->entries);
    res->n = n;
    struct eddy_jr r;
    eddy_jr_init(&r, text, len);
    struct eddy_jr_field fc = {0};
    bool entries = false, seen = false;
    struct eddy_jr_str k;
    if (len == 0)
        goto done; /* an empty body is an empty object: no Entries */
    (void)eddy_jr_object(&r);
    while (eddy_jr_member(&r, &k)) {
        if (EDDY_JR_KEY_IS(&k, "FailedEntryCount")) {
            eddy_jr_take(&r, &fc);
        } else if (!seen && EDDY_JR_KEY_IS(&k, "Entries")) {
            seen = true;
            if (eddy_jr_peek(&r) != EDDY_JR_ARRAY) {
                (void)eddy_jr_skip(&r);
                continue;
            }
            entries = true;
            (void)eddy_jr_array(&r);
            for (size_t i = 0; eddy_jr_element(&r); i++) {
                if (i < n)
                    entry_read(&r, &res->entries[i]);
                else
                    (void)eddy_jr_skip(&r);
            }
        } else {
            (void)eddy_jr_skip(&r);
        }
    }
    (void)eddy_jr_finish(&r);
done:
    if (r.rc != EDDY_OK || !entries) {
        eddy_eb_put_result_cleanup(res);
        if (r.rc != EDDY_OK)
            return eddy_error_set(err, EDDY_EPARSE,
                                  "EventBridge PutEvents: reply is not a JSON object (%zu bytes, "
                                  "bad at byte %zu)",
                                  len, r.at);
        return eddy_error_set(err, EDDY_EPARSE, "EventBridge PutEvents: reply has no Entries");
    }
    for (size_t i = 0; i < n; i++) {
        struct eddy_eb_entry_result *er = &res->entries[i];
        if (er->event_id == NULL && er->error_code == NULL)
            er->error_code = eddy_strdup("NoResult");
        if (er->error_code)
            res->failed_count++;
    }
    double f = eddy_jr_field_double(&fc);
    if (f > (double)res->failed_count)
        res->failed_count = f < 0x1p63 ? (size_t)f : SIZE_MAX; /* trust the larger count */
    return EDDY_OK;
}

static void on_reply(eddy_err err, const struct eddy_aws_reply *reply, void *ud)
{
    struct op *o = ud;
    struct eddy_eb_put_result res = {0};
    struct eddy_error perr = {0};
    struct eddy_aws_reply r = *reply;
    if (err == EDDY_OK) {
        err = eddy_eb_put_parse(reply->body.ptr, reply->body.len, o->n, &res, &perr);
        if (err)
            r.error = &perr;
    }
    o->cb(err, &res, &r, o->ud);
    free(o);
}
