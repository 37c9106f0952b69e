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

static eddy_err check(const struct eddy_eb_entry *entries, size_t n, struct eddy_error *err)
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
    EDDY_JW_KSTR(w, "Detail", en->detail);
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
    eddy_err rc = check(entries, n, err);
    if (rc)
        return rc;
    if (e == NULL || cb == NULL)
        return eddy_error_set(err, EDDY_EINVAL, "EventBridge PutEvents: client and cb required");
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
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
    struct eddy_aws_call_opts opts = {.idempotent = false};
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

static char *dup_or_null(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? eddy_strdup(v->valuestring) : NULL;
}

/* Entries come back in request order, one each. An entry with neither an id
 * nor a code (a short reply) counts as failed, so it is sent again. */
static eddy_err parse(const cJSON *json, size_t n, struct eddy_eb_put_result *r,
                      struct eddy_error *err)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(json, "Entries");
    if (!cJSON_IsArray(arr))
        return eddy_error_set(err, EDDY_EPARSE, "EventBridge PutEvents: reply has no Entries");
    r->entries = eddy_calloc(n, sizeof *r->entries);
    r->n = n;
    const cJSON *e = arr->child;
    for (size_t i = 0; i < n; i++, e = e ? e->next : NULL) {
        struct eddy_eb_entry_result *er = &r->entries[i];
        er->event_id = dup_or_null(e, "EventId");
        er->error_code = dup_or_null(e, "ErrorCode");
        er->error_message = dup_or_null(e, "ErrorMessage");
        if (er->event_id == NULL && er->error_code == NULL)
            er->error_code = eddy_strdup("NoResult");
        if (er->error_code)
            r->failed_count++;
    }
    const cJSON *fc = cJSON_GetObjectItemCaseSensitive(json, "FailedEntryCount");
    if (cJSON_IsNumber(fc) && fc->valuedouble > (double)r->failed_count)
        r->failed_count = (size_t)fc->valuedouble; /* trust the larger count */
    return EDDY_OK;
}

static void on_reply(eddy_err err, const struct eddy_aws_reply *reply, void *ud)
{
    struct op *o = ud;
    struct eddy_eb_put_result res = {0};
    struct eddy_error perr = {0};
    struct eddy_aws_reply r = *reply;
    if (err == EDDY_OK && reply->json) {
        err = parse(reply->json, o->n, &res, &perr);
        if (err)
            r.error = &perr;
    }
    o->cb(err, &res, &r, o->ud);
    free(o);
}
