/*
 * record.c - keys and items of the table (see record.h for the layout).
 *
 * Builders start from the JSON fields (converted exactly by attr.c) and add
 * the underscore attributes the way a-h/stream's createRecord does. Parsers
 * read everything they return from attributes; the only key they look into
 * is a sort key's fixed prefix and its decimal seq/idx, never an id.
 */
#include "core/record.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "core/attr.h"
#include "eddy/rng.h"

static const char *const reserved[] = {
    "_pk",   "_sk",  "_seq",      "_typ", "_namespace", "_ts",
    "_date", "_eid", "_rejected", "_ttl", "_eddy",      "_tms",
};

static bool is_reserved(const char *name)
{
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(reserved); i++) {
        if (strcmp(name, reserved[i]) == 0)
            return true;
    }
    return false;
}

eddy_err eddy_record_check_id(const char *what, const char *s, struct eddy_error *err)
{
    if (s == NULL || s[0] == '\0')
        return eddy_error_set(err, EDDY_EINVAL, "%s is empty", what);
    size_t n = strlen(s);
    if (n > EDDY_RECORD_ID_MAX)
        return eddy_error_set(err, EDDY_EINVAL, "%s is %zu bytes, the limit is %d bytes", what, n,
                              EDDY_RECORD_ID_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return eddy_error_set(err, EDDY_EINVAL,
                                  "%s has a control character (0x%02x) at byte %zu", what, c, i);
    }
    if (!eddy_utf8_valid(s))
        return eddy_error_set(err, EDDY_EINVAL, "%s is not valid UTF-8", what);
    return EDDY_OK;
}

/* Keys are built in an eddy_buf and handed over: the caller frees them. */

char *eddy_record_pk(const char *ns, const char *id)
{
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    eddy_buf_appendf(&b, "%s/%s", ns, id);
    return eddy_buf_take(&b, NULL);
}

char *eddy_record_sk_state_version(int64_t seq)
{
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    eddy_buf_appendf(&b, "STATE/%" PRId64, seq);
    return eddy_buf_take(&b, NULL);
}

char *eddy_record_sk_inbound(int64_t seq, size_t idx, const char *type)
{
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    eddy_buf_appendf(&b, "INBOUND/%" PRId64 "/%zu/%s", seq, idx, type);
    return eddy_buf_take(&b, NULL);
}

char *eddy_record_sk_outbound(int64_t seq, size_t idx, const char *type)
{
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    eddy_buf_appendf(&b, "OUTBOUND/%" PRId64 "/%zu/%s", seq, idx, type);
    return eddy_buf_take(&b, NULL);
}

char *eddy_record_sk_event(const char *event_id)
{
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    eddy_buf_appendf(&b, "EVENT/%s", event_id);
    return eddy_buf_take(&b, NULL);
}

char *eddy_record_outbox_pk(uint32_t shard)
{
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    eddy_buf_appendf(&b, "#outbox/%" PRIu32, shard);
    return eddy_buf_take(&b, NULL);
}

char *eddy_record_outbox_sk(const char *ns, const char *id, int64_t seq, size_t idx)
{
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    eddy_buf_appendf(&b, "%s/%s/%020" PRId64 "/%04zu", ns, id, seq, idx);
    return eddy_buf_take(&b, NULL);
}

char *eddy_record_lease_sk(uint32_t shard)
{
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    eddy_buf_appendf(&b, "outbox/%" PRIu32, shard);
    return eddy_buf_take(&b, NULL);
}

uint32_t eddy_record_shard(const char *pk, uint32_t shards)
{
    return eddy_fnv1a32(pk, strlen(pk)) % shards;
}

/* ---- building ---- */

static void put_s(cJSON *item, const char *name, const char *v)
{
    cJSON *av = cJSON_AddObjectToObject(item, name);
    cJSON_AddStringToObject(av, "S", v);
}

static void put_n(cJSON *item, const char *name, int64_t v)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, v);
    cJSON *av = cJSON_AddObjectToObject(item, name);
    cJSON_AddStringToObject(av, "N", text);
}

/* Key lengths are DynamoDB's: 2048 bytes of partition key, 1024 of sort key. */
static eddy_err put_keys(cJSON *item, const char *pk, const char *sk, struct eddy_error *err)
{
    if (strlen(pk) > EDDY_RECORD_PK_MAX)
        return eddy_error_set(err, EDDY_ELIMIT,
                              "partition key %.64s... is %zu bytes, over DynamoDB's %d-byte "
                              "partition key limit",
                              pk, strlen(pk), EDDY_RECORD_PK_MAX);
    if (strlen(sk) > EDDY_RECORD_SK_MAX)
        return eddy_error_set(err, EDDY_ELIMIT,
                              "sort key %.64s... of %s is %zu bytes, over DynamoDB's %d-byte "
                              "sort key limit",
                              sk, pk, strlen(sk), EDDY_RECORD_SK_MAX);
    put_s(item, "_pk", pk);
    put_s(item, "_sk", sk);
    return EDDY_OK;
}

static eddy_err check_entity(const struct eddy_record_entity *e, struct eddy_error *err)
{
    eddy_err rc = eddy_record_check_id("namespace", e->ns, err);
    if (rc == EDDY_OK)
        rc = eddy_record_check_id("entity id", e->id, err);
    if (rc == EDDY_OK && e->seq < 0)
        rc = eddy_error_set(err, EDDY_EINVAL, "%s/%s: negative _seq", e->ns, e->id);
    return rc;
}

/* The fields of data as an item, refusing reserved names. */
static eddy_err fields_item(const struct eddy_record_entity *e, const char *what, const cJSON *data,
                            cJSON **item, struct eddy_error *err)
{
    *item = NULL;
    if (data == NULL) {
        *item = cJSON_CreateObject();
        return EDDY_OK;
    }
    if (!cJSON_IsObject(data))
        return eddy_error_set(err, EDDY_EINVAL, "%s of %s/%s is not a JSON object", what, e->ns,
                              e->id);
    for (const cJSON *c = data->child; c; c = c->next) {
        if (is_reserved(c->string))
            return eddy_error_set(err, EDDY_EINVAL,
                                  "%s of %s/%s: field \"%s\" is a name eddy reserves", what, e->ns,
                                  e->id, c->string);
    }
    struct eddy_error inner;
    if (eddy_attr_item_from_json(data, item, &inner) != EDDY_OK)
        return eddy_error_set(err, inner.code, "%s of %s/%s: %s", what, e->ns, e->id, inner.detail);
    return EDDY_OK;
}

static eddy_err check_size(const cJSON *item, const char *what, const struct eddy_record_entity *e,
                           struct eddy_error *err)
{
    char name[256];
    snprintf(name, sizeof name, "%s of %.64s/%.64s", what, e->ns, e->id);
    return eddy_record_check_item_size(item, name, NULL, err);
}

/* a-h/stream's createRecord: fields + _namespace _pk _seq _sk _typ _ts _date. */
static eddy_err build_record(const struct eddy_record_entity *e, const char *sk, const char *typ,
                             const char *what, const cJSON *data, cJSON **out,
                             struct eddy_error *err)
{
    cJSON *item = NULL;
    char *pk = NULL;
    *out = NULL;
    eddy_err rc = check_entity(e, err);
    if (rc == EDDY_OK)
        rc = fields_item(e, what, data, &item, err);
    if (rc)
        goto done;
    pk = eddy_record_pk(e->ns, e->id);
    rc = put_keys(item, pk, sk, err);
    if (rc)
        goto done;
    char date[21];
    eddy_time_rfc3339(e->now_s, date);
    put_s(item, "_namespace", e->ns);
    put_n(item, "_seq", e->seq);
    put_s(item, "_typ", typ);
    put_n(item, "_ts", e->now_s);
    put_s(item, "_date", date);
    *out = item;
    item = NULL;
done:
    cJSON_Delete(item);
    free(pk);
    return rc;
}

eddy_err eddy_record_build_state(const struct eddy_record_entity *e, const cJSON *state,
                                 bool version, cJSON **item, struct eddy_error *err)
{
    char *sk = version ? eddy_record_sk_state_version(e->seq) : eddy_strdup(EDDY_RECORD_STATE_SK);
    eddy_err rc = build_record(e, sk, e->ns, "state", state, item, err);
    free(sk);
    if (rc == EDDY_OK && (rc = check_size(*item, "state item", e, err)) != EDDY_OK) {
        cJSON_Delete(*item);
        *item = NULL;
    }
    return rc;
}

eddy_err eddy_record_build_inbound(const struct eddy_record_entity *e, size_t idx, const char *type,
                                   const char *event_id, const cJSON *data, const char *rejected,
                                   cJSON **item, struct eddy_error *err)
{
    *item = NULL;
    eddy_err rc = eddy_record_check_id("event type", type, err);
    if (rc == EDDY_OK)
        rc = eddy_record_check_id("event id", event_id, err);
    if (rc)
        return rc;
    char *sk = eddy_record_sk_inbound(e->seq, idx, type);
    char what[96];
    snprintf(what, sizeof what, "inbound event %.64s", type);
    rc = build_record(e, sk, type, what, data, item, err);
    free(sk);
    if (rc)
        return rc;
    put_s(*item, "_eid", event_id);
    if (rejected)
        put_s(*item, "_rejected", rejected);
    if ((rc = check_size(*item, what, e, err)) != EDDY_OK) {
        cJSON_Delete(*item);
        *item = NULL;
    }
    return rc;
}

eddy_err eddy_record_build_outbound(const struct eddy_record_entity *e, size_t idx,
                                    const char *type, const cJSON *data, cJSON **item,
                                    struct eddy_error *err)
{
    *item = NULL;
    eddy_err rc = eddy_record_check_id("outbound event type", type, err);
    if (rc)
        return rc;
    char *sk = eddy_record_sk_outbound(e->seq, idx, type);
    char what[96];
    snprintf(what, sizeof what, "outbound event %.64s", type);
    rc = build_record(e, sk, type, what, data, item, err);
    free(sk);
    if (rc == EDDY_OK && (rc = check_size(*item, what, e, err)) != EDDY_OK) {
        cJSON_Delete(*item);
        *item = NULL;
    }
    return rc;
}

eddy_err eddy_record_build_dedupe(const struct eddy_record_entity *e, const char *event_id,
                                  int64_t ttl_unix_s, cJSON **item, struct eddy_error *err)
{
    *item = NULL;
    eddy_err rc = check_entity(e, err);
    if (rc == EDDY_OK)
        rc = eddy_record_check_id("event id", event_id, err);
    if (rc)
        return rc;
    char *pk = eddy_record_pk(e->ns, e->id);
    char *sk = eddy_record_sk_event(event_id);
    cJSON *out = cJSON_CreateObject();
    rc = put_keys(out, pk, sk, err);
    free(pk);
    free(sk);
    if (rc) {
        cJSON_Delete(out);
        return rc;
    }
    put_n(out, "_seq", e->seq);
    put_n(out, "_ttl", ttl_unix_s);
    *item = out;
    return EDDY_OK;
}

eddy_err eddy_record_build_lease(uint32_t shard, const char *owner, int64_t expires_ms,
                                 cJSON **item, struct eddy_error *err)
{
    *item = NULL;
    eddy_err rc = eddy_record_check_id("lease owner", owner, err);
    if (rc)
        return rc;
    char *sk = eddy_record_lease_sk(shard);
    cJSON *out = cJSON_CreateObject();
    put_keys(out, EDDY_RECORD_LEASE_PK, sk, err); /* short keys: cannot fail */
    free(sk);
    put_s(out, "owner", owner);
    put_n(out, "expires", expires_ms);
    *item = out;
    return EDDY_OK;
}

/* ---- the outbox entry ---- */

/*
 * Detail: the event's object plus the "eddy" metadata object
 * {"entity", "namespace", "seq", "idx", "id"}, where id is the stable
 * "<ns>/<id>/<seq>/<idx>" consumers use to drop duplicates. Printed exactly.
 * NULL when the event itself has a member "eddy" (it would be overwritten).
 */
static char *outbox_detail(const struct eddy_record_entity *e, size_t idx, const cJSON *data)
{
    if (data && cJSON_GetObjectItemCaseSensitive(data, "eddy"))
        return NULL;
    cJSON *detail = data ? cJSON_Duplicate(data, true) : cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(detail, "eddy");
    cJSON_AddStringToObject(meta, "entity", e->id);
    cJSON_AddStringToObject(meta, "namespace", e->ns);
    cJSON_AddNumberToObject(meta, "seq", (double)e->seq);
    cJSON_AddNumberToObject(meta, "idx", (double)idx);
    struct eddy_buf id;
    eddy_buf_init(&id, 0);
    eddy_buf_appendf(&id, "%s/%s/%lld/%zu", e->ns, e->id, (long long)e->seq, idx);
    cJSON_AddStringToObject(meta, "id", eddy_buf_cstr(&id));
    eddy_buf_cleanup(&id);
    char *text = cJSON_PrintUnformatted(detail);
    cJSON_Delete(detail);
    return text;
}

static eddy_err put_publish(cJSON *item, const struct eddy_record_publish *pub,
                            struct eddy_error *err)
{
    if (pub == NULL)
        return EDDY_OK;
    if (pub->source)
        put_s(item, "Source", pub->source);
    if (pub->trace_header)
        put_s(item, "TraceHeader", pub->trace_header);
    if (pub->event_bus)
        put_s(item, "EventBusName", pub->event_bus);
    if (pub->resources) {
        cJSON *av = NULL;
        if (!cJSON_IsArray(pub->resources))
            return eddy_error_set(err, EDDY_EINVAL, "Resources must be an array of strings");
        for (const cJSON *r = pub->resources->child; r; r = r->next) {
            if (!cJSON_IsString(r))
                return eddy_error_set(err, EDDY_EINVAL, "Resources must be an array of strings");
        }
        eddy_err rc = eddy_attr_from_json(pub->resources, "Resources", &av, err);
        if (rc)
            return rc;
        cJSON_AddItemToObject(item, "Resources", av);
    }
    return EDDY_OK;
}

/* EventBridge counts Source, DetailType, Detail, Resources and TraceHeader. */
static size_t entry_size(const struct eddy_record_publish *pub, const char *type,
                         const char *detail)
{
    size_t n = strlen(type) + strlen(detail);
    n += pub && pub->source ? strlen(pub->source) : 256; /* room for the configured one */
    if (pub && pub->trace_header)
        n += strlen(pub->trace_header);
    for (const cJSON *r = pub && pub->resources ? pub->resources->child : NULL; r; r = r->next)
        n += cJSON_IsString(r) ? strlen(r->valuestring) : 0;
    return n;
}

static eddy_err outbox_attrs(cJSON *item, const struct eddy_record_entity *e, size_t idx,
                             const char *type, const char *eid, const cJSON *data,
                             const struct eddy_record_publish *pub, struct eddy_error *err)
{
    struct eddy_error inner;
    char *detail = NULL;
    cJSON *check = NULL;
    /* The Detail text must carry numbers exactly, as the records do. */
    eddy_err rc = fields_item(e, "outbound event", data, &check, &inner);
    cJSON_Delete(check);
    if (rc)
        return eddy_error_set(err, inner.code, "%s", inner.detail);
    detail = outbox_detail(e, idx, data);
    if (detail == NULL)
        return eddy_error_set(err, EDDY_EINVAL,
                              "outbound event %.64s of %.64s/%.64s has a member \"eddy\", which "
                              "is reserved for eddy's metadata",
                              type, e->ns, e->id);
    size_t size = entry_size(pub, type, detail);
    if (size > EDDY_RECORD_ENTRY_MAX) {
        rc = eddy_error_set(err, EDDY_ELIMIT,
                            "outbound event %.64s of %.64s/%.64s is %zu bytes as an EventBridge "
                            "entry, over the 256 KB PutEvents entry limit",
                            type, e->ns, e->id, size);
        goto done;
    }
    char date[21];
    eddy_time_rfc3339(e->now_s, date);
    put_s(item, "_namespace", e->ns);
    put_s(item, "_id", e->id);
    put_n(item, "_seq", e->seq);
    put_n(item, "_idx", (int64_t)idx);
    put_s(item, "_typ", type);
    put_s(item, "_eid", eid);
    put_n(item, "_ts", e->now_s);
    put_n(item, "_tms", e->now_ms ? e->now_ms : e->now_s * 1000);
    put_s(item, "_date", date);
    put_s(item, "DetailType", type);
    put_s(item, "Detail", detail);
    rc = put_publish(item, pub, err);
done:
    free(detail);
    return rc;
}

eddy_err eddy_record_build_outbox(const struct eddy_record_entity *e, uint32_t shards, size_t idx,
                                  const char *type, const cJSON *data,
                                  const struct eddy_record_publish *pub, cJSON **item,
                                  struct eddy_error *err)
{
    *item = NULL;
    eddy_err rc = check_entity(e, err);
    if (rc == EDDY_OK)
        rc = eddy_record_check_id("outbound event type", type, err);
    if (rc)
        return rc;
    if (shards == 0)
        return eddy_error_set(err, EDDY_EINVAL, "outbox shard count is 0");
    char *pk = eddy_record_pk(e->ns, e->id);
    char *opk = eddy_record_outbox_pk(eddy_record_shard(pk, shards));
    char *osk = eddy_record_outbox_sk(e->ns, e->id, e->seq, idx);
    cJSON *out = cJSON_CreateObject();
    rc = put_keys(out, opk, osk, err);
    if (rc == EDDY_OK)
        rc = outbox_attrs(out, e, idx, type, osk, data, pub, err);
    if (rc == EDDY_OK)
        rc = check_size(out, "outbox entry", e, err);
    free(pk);
    free(opk);
    free(osk);
    if (rc)
        cJSON_Delete(out);
    else
        *item = out;
    return rc;
}

/* ---- parsing ---- */

static const char *get_s(const cJSON *item, const char *name)
{
    const cJSON *av = cJSON_GetObjectItemCaseSensitive(item, name);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(av, "S");
    return cJSON_IsString(s) ? s->valuestring : NULL;
}

/* A decimal integer in s[0..n) that fits int64 and is >= 0. */
static bool parse_uint(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;
    if (n == 0 || n > 18)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* An N attribute holding a whole number (a-h/stream: strconv.ParseInt). */
static eddy_err get_n(const cJSON *item, const char *name, bool required, int64_t *out,
                      struct eddy_error *err)
{
    const cJSON *av = cJSON_GetObjectItemCaseSensitive(item, name);
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(av, "N");
    const char *pk = get_s(item, "_pk");
    *out = 0;
    if (av == NULL && !required)
        return EDDY_OK;
    if (!cJSON_IsString(n))
        return eddy_error_set(err, EDDY_EPARSE, "%s: %s attribute %s", pk ? pk : "item",
                              av ? "non-number" : "missing", name);
    const char *s = n->valuestring;
    bool neg = s[0] == '-';
    if (!parse_uint(s + neg, strlen(s + neg), out))
        return eddy_error_set(err, EDDY_EPARSE, "%s: %s %.32s is not a whole number",
                              pk ? pk : "item", name, s);
    if (neg)
        *out = -*out;
    return EDDY_OK;
}

/* The item's fields without reserved names, as JSON. */
static eddy_err fields_json(const cJSON *item, cJSON **out, struct eddy_error *err)
{
    cJSON *copy = cJSON_CreateObject();
    for (const cJSON *c = item->child; c; c = c->next) {
        if (!is_reserved(c->string))
            cJSON_AddItemReferenceToObject(copy, c->string, (cJSON *)c);
    }
    eddy_err rc = eddy_attr_item_to_json(copy, out, err);
    cJSON_Delete(copy); /* references: the item's nodes stay */
    return rc;
}

eddy_err eddy_record_parse_state(const cJSON *item, cJSON **state, int64_t *seq,
                                 struct eddy_error *err)
{
    *state = NULL;
    if (!cJSON_IsObject(item))
        return eddy_error_set(err, EDDY_EPARSE, "state item is not an object");
    eddy_err rc = get_n(item, "_seq", true, seq, err);
    if (rc)
        return rc;
    struct eddy_error inner;
    rc = fields_json(item, state, &inner);
    if (rc) {
        const char *pk = get_s(item, "_pk");
        return eddy_error_set(err, rc, "state of %s: %s", pk ? pk : "?", inner.detail);
    }
    return EDDY_OK;
}

/* idx of "INBOUND/<seq>/<idx>/<type>": the decimals right after the prefix. */
static int64_t sk_idx(const char *sk, size_t prefix)
{
    const char *p = sk + prefix;
    const char *slash = strchr(p, '/');
    if (slash == NULL)
        return 0;
    p = slash + 1;
    int64_t idx = 0;
    size_t n = strspn(p, "0123456789");
    return parse_uint(p, n, &idx) ? idx : 0;
}

static enum eddy_record_kind sk_kind(const char *sk, int64_t *idx)
{
    *idx = 0;
    if (sk == NULL)
        return EDDY_RECORD_OTHER;
    if (strcmp(sk, "STATE") == 0)
        return EDDY_RECORD_STATE;
    if (strncmp(sk, "STATE/", 6) == 0)
        return EDDY_RECORD_STATE_VERSION;
    if (strncmp(sk, "EVENT/", 6) == 0)
        return EDDY_RECORD_DEDUPE;
    if (strncmp(sk, "INBOUND/", 8) == 0) {
        *idx = sk_idx(sk, 8);
        return EDDY_RECORD_INBOUND;
    }
    if (strncmp(sk, "OUTBOUND/", 9) == 0) {
        *idx = sk_idx(sk, 9);
        return EDDY_RECORD_OUTBOUND;
    }
    return EDDY_RECORD_OTHER;
}

eddy_err eddy_record_parse_history(const cJSON *item, struct eddy_record_history *out,
                                   struct eddy_error *err)
{
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(item))
        return eddy_error_set(err, EDDY_EPARSE, "history item is not an object");
    out->kind = sk_kind(get_s(item, "_sk"), &out->idx);
    eddy_err rc = get_n(item, "_seq", out->kind != EDDY_RECORD_OTHER, &out->seq, err);
    if (rc == EDDY_OK)
        rc = get_n(item, "_ts", false, &out->ts, err);
    if (rc)
        return rc;
    out->type = get_s(item, "_typ");
    out->event_id = get_s(item, "_eid");
    out->rejected = get_s(item, "_rejected");
    if (out->kind == EDDY_RECORD_DEDUPE)
        return EDDY_OK;
    rc = fields_json(item, &out->data, err);
    return rc;
}

void eddy_record_history_cleanup(struct eddy_record_history *h)
{
    cJSON_Delete(h->data);
    h->data = NULL;
}

static eddy_err need(const char *v, const char *name, const char *sk, struct eddy_error *err)
{
    if (v == NULL)
        return eddy_error_set(err, EDDY_EPARSE, "outbox entry %.128s: missing %s", sk ? sk : "?",
                              name);
    return EDDY_OK;
}

eddy_err eddy_record_parse_outbox(const cJSON *item, struct eddy_record_outbox *out,
                                  struct eddy_error *err)
{
    memset(out, 0, sizeof *out);
    out->pk = get_s(item, "_pk");
    out->sk = get_s(item, "_sk");
    out->ns = get_s(item, "_namespace");
    out->id = get_s(item, "_id");
    out->type = get_s(item, "_typ");
    out->event_id = get_s(item, "_eid");
    out->detail_type = get_s(item, "DetailType");
    out->detail = get_s(item, "Detail");
    out->source = get_s(item, "Source");
    out->trace_header = get_s(item, "TraceHeader");
    out->event_bus = get_s(item, "EventBusName");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(item, "Resources");
    out->resources = cJSON_GetObjectItemCaseSensitive(res, "L");
    eddy_err rc = EDDY_OK;
    const char *sk = out->sk;
    if ((rc = need(out->pk, "_pk", sk, err)) || (rc = need(out->sk, "_sk", sk, err)) ||
        (rc = need(out->ns, "_namespace", sk, err)) || (rc = need(out->id, "_id", sk, err)) ||
        (rc = need(out->type, "_typ", sk, err)) || (rc = need(out->event_id, "_eid", sk, err)) ||
        (rc = need(out->detail_type, "DetailType", sk, err)) ||
        (rc = need(out->detail, "Detail", sk, err)))
        return rc;
    if ((rc = get_n(item, "_seq", true, &out->seq, err)) ||
        (rc = get_n(item, "_idx", true, &out->idx, err)))
        return rc;
    return EDDY_OK;
}

eddy_err eddy_record_parse_lease(const cJSON *item, const char **owner, int64_t *expires_ms,
                                 struct eddy_error *err)
{
    *owner = get_s(item, "owner");
    if (*owner == NULL)
        return eddy_error_set(err, EDDY_EPARSE, "lease item: missing owner");
    return get_n(item, "expires", true, expires_ms, err);
}

/* ---- limits ---- */

eddy_err eddy_record_check_item_size(const cJSON *item, const char *what, size_t *size,
                                     struct eddy_error *err)
{
    size_t n = eddy_attr_item_size(item);
    if (size)
        *size = n;
    if (n > EDDY_RECORD_ITEM_MAX)
        return eddy_error_set(err, EDDY_ELIMIT,
                              "%s is %zu bytes, over DynamoDB's 400 KB item size limit", what, n);
    return EDDY_OK;
}

eddy_err eddy_record_check_txn(size_t items, size_t bytes, struct eddy_error *err)
{
    if (items > EDDY_RECORD_TXN_ITEMS_MAX)
        return eddy_error_set(err, EDDY_ELIMIT,
                              "transaction has %zu items, over DynamoDB's %d-item "
                              "TransactWriteItems limit",
                              items, EDDY_RECORD_TXN_ITEMS_MAX);
    if (bytes > EDDY_RECORD_TXN_BYTES_MAX)
        return eddy_error_set(err, EDDY_ELIMIT,
                              "transaction is %zu bytes, over DynamoDB's 4 MB TransactWriteItems "
                              "size limit",
                              bytes);
    return EDDY_OK;
}
