/*
 * eventbridge2.c - PutEvents on the Custom Event Bus (see eventbridge2.h).
 * The request is written with the CBOR writer straight into the body
 * buffer; awscall decodes the reply into a cJSON tree, read here.
 */
#include "svc/eventbridge2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/cbor.h"
#include "base/alloc.h"

#define SOURCE_MAX 256
#define DETAIL_TYPE_MAX 128
#define RESOURCES_MAX 100
#define RESOURCE_MAX 2048

struct op {
    eddy_eb2_put_cb cb;
    void *ud;
    size_t n;
};

/* ---- the bus ARN ---- */

static bool all_of(const char *p, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] == '\0' || strchr(set, p[i]) == NULL)
            return false;
    return true;
}

#define LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789"
#define NAME_CHARS LOWER_DIGITS "ABCDEFGHIJKLMNOPQRSTUVWXYZ._-"

/* "aws" or "aws-xx(-yy)*" */
static bool partition_ok(const char *p, size_t n)
{
    if (n < 3 || strncmp(p, "aws", 3) != 0)
        return false;
    for (size_t i = 3; i < n; i++) {
        if (p[i] == '-' && (i + 1 == n || p[i + 1] == '-'))
            return false;
        if (p[i] != '-' && !all_of(p + i, 1, LOWER_DIGITS))
            return false;
    }
    return n == 3 || p[3] == '-';
}

/* [a-z][a-z0-9]*(-[a-z0-9]+)* */
static bool region_ok(const char *p, size_t n)
{
    if (n == 0 || p[0] < 'a' || p[0] > 'z' || p[n - 1] == '-')
        return false;
    for (size_t i = 1; i < n; i++)
        if (p[i] == '-' ? p[i - 1] == '-' : !all_of(p + i, 1, LOWER_DIGITS))
            return false;
    return true;
}

/* The account (12 digits) of an event-busv2 ARN into acct, or false. */
static bool parse_bus_arn(const char *s, char acct[13])
{
    const char *f[6]; /* arn, partition, service, region, account, resource */
    size_t len[6];
    const char *p = s;
    if (s == NULL || strlen(s) > EDDY_EB2_ARN_MAX)
        return false;
    for (int i = 0; i < 6; i++) {
        const char *c = i < 5 ? strchr(p, ':') : p + strlen(p);
        if (c == NULL)
            return false;
        f[i] = p;
        len[i] = (size_t)(c - p);
        p = c + 1;
    }
    if (len[0] != 3 || strncmp(f[0], "arn", 3) != 0 || !partition_ok(f[1], len[1]) || len[2] != 6 ||
        strncmp(f[2], "events", 6) != 0 || !region_ok(f[3], len[3]) || len[4] != 12 ||
        !all_of(f[4], 12, "0123456789"))
        return false;
    const char *r = f[5];
    if (strncmp(r, "event-busv2/", 12) != 0)
        return false;
    const char *name = r + 12, *slash = strchr(name, '/');
    if (slash == NULL)
        return false;
    size_t nlen = (size_t)(slash - name);
    if (nlen < 1 || nlen > 256 || !all_of(name, nlen, NAME_CHARS) || strchr("._-", name[0]))
        return false;
    if (strlen(slash + 1) != 25 || !all_of(slash + 1, 25, LOWER_DIGITS))
        return false;
    memcpy(acct, f[4], 12);
    acct[12] = '\0';
    return true;
}

bool eddy_eb2_is_bus_arn(const char *s)
{
    char acct[13];
    return parse_bus_arn(s, acct);
}

eddy_err eddy_eb2_init(struct eddy_eb2 *e, struct eddy_aws *aws, const char *bus_arn,
                       const struct eddy_endpoint *ep, struct eddy_error *err)
{
    memset(e, 0, sizeof *e);
    char acct[13];
    if (!parse_bus_arn(bus_arn, acct))
        return eddy_error_set(err, EDDY_ECONFIG,
                              "\"%.200s\" is not a Custom Event Bus ARN "
                              "(arn:aws:events:<region>:<account>:event-busv2/<name>/<id>)",
                              bus_arn ? bus_arn : "");
    struct eddy_endpoint resolved = {0};
    if (ep == NULL && aws != NULL) {
        eddy_err rc =
            eddy_endpoint_resolve_account(EDDY_AWS_EVENTBRIDGE2, aws->region, acct, &resolved, err);
        if (rc)
            return rc;
        ep = &resolved;
    }
    eddy_err rc = eddy_aws_client_init(&e->client, aws, EDDY_AWS_EVENTBRIDGE2, ep, err);
    eddy_endpoint_cleanup(&resolved);
    if (rc)
        return rc;
    e->bus_arn = eddy_strdup(bus_arn);
    return EDDY_OK;
}

void eddy_eb2_cleanup(struct eddy_eb2 *e)
{
    eddy_aws_client_cleanup(&e->client);
    free(e->bus_arn);
    e->bus_arn = NULL;
}

/* ---- ids and sizes ---- */

void eddy_eb2_system_id(const char *id, char out[EDDY_EB2_ID_MAX + 1])
{
    size_t n = strlen(id);
    if (n >= 1 && n <= EDDY_EB2_ID_MAX) {
        memcpy(out, id, n + 1);
        return;
    }
    char hex[65];
    eddy_sha256_hex(id, n, hex);
    size_t keep = EDDY_EB2_ID_MAX - 1 - 64; /* 63 bytes of the id, '#', the hash */
    if (keep > n)
        keep = n;
    while (keep > 0 && ((unsigned char)id[keep] & 0xC0) == 0x80)
        keep--; /* not inside a UTF-8 sequence */
    memcpy(out, id, keep);
    out[keep] = '#';
    memcpy(out + keep + 1, hex, 65);
}

static size_t len_or_0(const char *s)
{
    return s ? strlen(s) : 0;
}

size_t eddy_eb2_entry_size(const struct eddy_eb2_entry *en)
{
    size_t n = en->time_s ? 14 : 0;
    n += len_or_0(en->source) + len_or_0(en->detail_type) + len_or_0(en->detail);
    n += len_or_0(en->group_id) + len_or_0(en->dedup_id);
    for (size_t i = 0; i < en->nresources; i++)
        n += len_or_0(en->resources[i]);
    return n;
}

/* ---- the request ---- */

/* Characters as the API counts them (Unicode scalar values): the bytes
 * that do not continue a UTF-8 sequence. */
static size_t chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static eddy_err over(struct eddy_error *err, const char *field, size_t got, int min, int max)
{
    return eddy_error_set(err, EDDY_ELIMIT,
                          "EventBridgeV2 PutEvents: %s is %zu characters, not %d..%d", field, got,
                          min, max);
}

eddy_err eddy_eb2_entry_check(const struct eddy_eb2_entry *en, struct eddy_error *err)
{
    if (en->source == NULL || en->detail_type == NULL || en->detail == NULL ||
        (en->nresources && en->resources == NULL))
        return eddy_error_set(err, EDDY_EINVAL,
                              "EventBridgeV2 PutEvents: an entry needs Source, DetailType and "
                              "Detail");
    size_t ls = chars(en->source), lt = chars(en->detail_type);
    if (ls < 1 || ls > SOURCE_MAX)
        return over(err, "Source", ls, 1, SOURCE_MAX);
    if (lt < 1 || lt > DETAIL_TYPE_MAX)
        return over(err, "DetailType", lt, 1, DETAIL_TYPE_MAX);
    const char *ids[2] = {en->group_id, en->dedup_id};
    for (int k = 0; k < 2; k++)
        if (ids[k] && (ids[k][0] == '\0' || chars(ids[k]) > EDDY_EB2_ID_MAX))
            return over(err,
                        k ? "DeduplicationId (eddy_eb2_system_id)"
                          : "EventGroupId (eddy_eb2_system_id)",
                        chars(ids[k]), 1, EDDY_EB2_ID_MAX);
    if (en->nresources > RESOURCES_MAX)
        return eddy_error_set(err, EDDY_ELIMIT,
                              "EventBridgeV2 PutEvents: %zu Resources, over the limit of %d",
                              en->nresources, RESOURCES_MAX);
    for (size_t r = 0; r < en->nresources; r++) {
        if (en->resources[r] == NULL)
            return eddy_error_set(err, EDDY_EINVAL,
                                  "EventBridgeV2 PutEvents: resource %zu is missing", r);
        if (chars(en->resources[r]) > RESOURCE_MAX)
            return over(err, "a resource", chars(en->resources[r]), 0, RESOURCE_MAX);
    }
    return EDDY_OK;
}

static eddy_err check(const struct eddy_eb2_entry *entries, size_t n, struct eddy_error *err)
{
    if (entries == NULL || n == 0)
        return eddy_error_set(err, EDDY_EINVAL, "EventBridgeV2 PutEvents: no entries");
    if (n > EDDY_EB2_MAX_ENTRIES)
        return eddy_error_set(err, EDDY_ELIMIT,
                              "EventBridgeV2 PutEvents takes at most %d entries (got %zu)",
                              EDDY_EB2_MAX_ENTRIES, n);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        struct eddy_error why;
        eddy_err rc = eddy_eb2_entry_check(&entries[i], &why);
        if (rc)
            return eddy_error_set(err, rc, "%s (entry %zu)", why.detail, i);
        total += eddy_eb2_entry_size(&entries[i]);
    }
    if (total > EDDY_EB2_MAX_BYTES)
        return eddy_error_set(err, EDDY_ELIMIT,
                              "EventBridgeV2 PutEvents entries are %zu bytes, over the %d byte "
                              "(1 MiB) limit",
                              total, EDDY_EB2_MAX_BYTES);
    return EDDY_OK;
}

static void write_entry(struct eddy_cbor_w *w, const struct eddy_eb2_entry *en)
{
    bool meta = en->group_id || en->dedup_id;
    eddy_cbor_map(w, 3 + (en->nresources > 0) + (en->time_s != 0) + meta);
    eddy_cbor_ktext(w, "Source", en->source);
    eddy_cbor_ktext(w, "DetailType", en->detail_type);
    eddy_cbor_ktext(w, "Detail", en->detail);
    if (en->nresources) {
        eddy_cbor_ctext(w, "Resources");
        eddy_cbor_array(w, en->nresources);
        for (size_t i = 0; i < en->nresources; i++)
            eddy_cbor_ctext(w, en->resources[i]);
    }
    if (en->time_s) {
        eddy_cbor_ctext(w, "Time");
        eddy_cbor_time(w, en->time_s);
    }
    if (meta) {
        eddy_cbor_ctext(w, "SystemMetadata");
        eddy_cbor_map(w, (en->group_id != NULL) + (en->dedup_id != NULL));
        if (en->group_id)
            eddy_cbor_ktext(w, "EventGroupId", en->group_id);
        if (en->dedup_id)
            eddy_cbor_ktext(w, "DeduplicationId", en->dedup_id);
    }
}

static void on_reply(eddy_err err, const struct eddy_aws_reply *reply, void *ud);

eddy_err eddy_eb2_put_events(struct eddy_eb2 *e, const struct eddy_eb2_entry *entries, size_t n,
                             eddy_eb2_put_cb cb, void *ud, struct eddy_aws_call **handle,
                             struct eddy_error *err)
{
    eddy_err rc = check(entries, n, err);
    if (rc)
        return rc;
    if (e == NULL || e->bus_arn == NULL || cb == NULL)
        return eddy_error_set(err, EDDY_EINVAL, "EventBridgeV2 PutEvents: client and cb required");
    struct eddy_cbor_w w;
    eddy_cbor_w_init(&w, 0);
    eddy_cbor_map(&w, 2);
    eddy_cbor_ktext(&w, "EventBusArn", e->bus_arn);
    eddy_cbor_ctext(&w, "Entries");
    eddy_cbor_array(&w, n);
    for (size_t i = 0; i < n; i++)
        write_entry(&w, &entries[i]);
    if (w.rc) {
        eddy_cbor_w_cleanup(&w);
        return eddy_error_set(err, w.rc, "EventBridgeV2 PutEvents: request body over its cap");
    }
    struct op *o = eddy_calloc(1, sizeof *o);
    *o = (struct op){cb, ud, n};
    /* Not retried after a timeout: the caller sends the entries again, and
     * with DeduplicationIds the bus recognises what it already took. */
    struct eddy_aws_call_opts opts = {.idempotent = false};
    rc = eddy_aws_call(&e->client, "PutEvents", &w.buf, &opts, on_reply, o, handle, err);
    eddy_cbor_w_cleanup(&w);
    if (rc)
        free(o);
    return rc;
}

/* ---- the reply ---- */

void eddy_eb2_put_result_cleanup(struct eddy_eb2_put_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        struct eddy_eb2_entry_result *er = &r->entries[i];
        free(er->event_id);
        free(er->sequence_number);
        free(er->error_code);
        free(er->error_message);
    }
    free(r->entries);
    memset(r, 0, sizeof *r);
}

static const char *str_of(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static char *dup_of(const cJSON *obj, const char *key)
{
    const char *s = str_of(obj, key);
    return s ? eddy_strdup(s) : NULL;
}

/* One result: an ErrorCode fails it; a SuccessCode (or, failing that, an
 * EventId) makes it published; neither is a missing result. */
static void read_entry(const cJSON *e, struct eddy_eb2_entry_result *er)
{
    er->error_code = cJSON_IsObject(e) ? dup_of(e, "ErrorCode") : NULL;
    if (er->error_code) {
        er->error_message = dup_of(e, "ErrorMessage");
        return;
    }
    const char *success = cJSON_IsObject(e) ? str_of(e, "SuccessCode") : NULL;
    er->event_id = cJSON_IsObject(e) ? dup_of(e, "EventId") : NULL;
    er->sequence_number = cJSON_IsObject(e) ? dup_of(e, "SequenceNumber") : NULL;
    er->deduplicated = success && strcmp(success, "DEDUPLICATED") == 0;
    er->ok = success != NULL || er->event_id != NULL;
    if (!er->ok) {
        er->error_code = eddy_strdup("NoResult");
        er->error_message = eddy_strdup("the reply has no result for this entry");
    }
}

static eddy_err parse_tree(const cJSON *json, size_t nsent, struct eddy_eb2_put_result *r,
                           struct eddy_error *err)
{
    memset(r, 0, sizeof *r);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(json, "Entries");
    if (!cJSON_IsArray(arr))
        return eddy_error_set(err, EDDY_EPARSE, "EventBridgeV2 PutEvents: reply has no Entries");
    r->entries = eddy_calloc(nsent ? nsent : 1, sizeof *r->entries);
    r->n = nsent;
    const cJSON *e = arr->child;
    for (size_t i = 0; i < nsent; i++, e = e ? e->next : NULL) {
        read_entry(e, &r->entries[i]);
        if (!r->entries[i].ok)
            r->failed_count++;
    }
    const cJSON *fc = cJSON_GetObjectItemCaseSensitive(json, "FailedEntryCount");
    if (cJSON_IsNumber(fc) && fc->valuedouble > (double)r->failed_count &&
        fc->valuedouble <= (double)nsent)
        r->failed_count = (size_t)fc->valuedouble; /* trust the larger count */
    return EDDY_OK;
}

eddy_err eddy_eb2_put_result_parse(const void *body, size_t len, size_t nsent,
                                   struct eddy_eb2_put_result *out, struct eddy_error *err)
{
    memset(out, 0, sizeof *out);
    cJSON *json = NULL;
    eddy_err rc = eddy_cbor_parse(body, len, &json, err);
    if (rc == EDDY_OK && !cJSON_IsObject(json))
        rc = eddy_error_set(err, EDDY_EPARSE, "EventBridgeV2 PutEvents: reply is not a map");
    if (rc == EDDY_OK)
        rc = parse_tree(json, nsent, out, err);
    cJSON_Delete(json);
    return rc;
}

static void on_reply(eddy_err err, const struct eddy_aws_reply *reply, void *ud)
{
    struct op *o = ud;
    struct eddy_eb2_put_result res = {0};
    struct eddy_error perr = {0};
    struct eddy_aws_reply r = *reply;
    if (err == EDDY_OK && reply->json) {
        err = parse_tree(reply->json, o->n, &res, &perr);
        if (err)
            r.error = &perr;
    }
    o->cb(err, &res, &r, o->ud);
    free(o);
}
