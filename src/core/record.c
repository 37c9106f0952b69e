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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/json.h"
#include "core/attr.h"
#include "eddy/rng.h"
#include "svc/eventbridge.h"
#include "svc/eventbridge2.h"

static const char *const reserved[] = {
    "_pk",   "_sk",  "_seq",      "_typ", "_namespace", "_ts",
    "_date", "_eid", "_rejected", "_ttl", "_eddy",      "_tms",
};

static bool is_reserved(const char *name)
{
    if (name[0] != '_')
        return false; /* each of them starts with '_' */
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

size_t eddy_record_entity_id_max(const char *ns)
{
    size_t used = strlen(ns) + EDDY_RECORD_OUTBOX_SK_EXTRA;
    return used < EDDY_RECORD_SK_MAX ? EDDY_RECORD_SK_MAX - used : 0;
}

/* An id over max bytes, said with the key that sets the limit. */
static eddy_err check_key_part(const char *what, const char *s, size_t max, const char *key,
                               struct eddy_error *err)
{
    eddy_err rc = eddy_record_check_id(what, s, err);
    if (rc == EDDY_OK && strlen(s) > max)
        rc = eddy_error_set(err, EDDY_EINVAL,
                            "%s is %zu bytes, the limit is %zu bytes (the sort key %s must fit "
                            "DynamoDB's %d bytes)",
                            what, strlen(s), max, key, EDDY_RECORD_SK_MAX);
    return rc;
}

eddy_err eddy_record_check_entity_id(const char *ns, const char *id, struct eddy_error *err)
{
    char key[160];
    snprintf(key, sizeof key, "%.64s/<id>/<seq>/<idx> of the outbox", ns);
    return check_key_part("entity id", id, eddy_record_entity_id_max(ns), key, err);
}

eddy_err eddy_record_check_event_id(const char *id, struct eddy_error *err)
{
    return check_key_part("event id", id, EDDY_RECORD_EVENT_ID_MAX, "EVENT/<id>", err);
}

eddy_err eddy_record_check_type(const char *what, const char *type, struct eddy_error *err)
{
    return check_key_part(what, type, EDDY_RECORD_TYPE_MAX, "OUTBOUND/<seq>/<idx>/<type>", err);
}

eddy_err eddy_record_check_namespace(const char *ns, struct eddy_error *err)
{
    eddy_err rc = check_key_part("namespace", ns, EDDY_RECORD_NS_MAX,
                                 "<namespace>/<id>/<seq>/<idx> of the outbox", err);
    if (rc == EDDY_OK && ns[0] == '#')
        rc = eddy_error_set(err, EDDY_EINVAL,
                            "namespace \"%.64s\" starts with '#', which eddy keeps for its own "
                            "partitions (#outbox, #lease)",
                            ns);
    return rc;
}

/*
 * Keys are built into a struct eddy_sstr (on the stack) while the renderers
 * write an item: no printf, as keys are made for every item of every step.
 */
static void key_str(struct eddy_sstr *k, const char *s)
{
    eddy_sstr_put(k, s, strlen(s));
}

/* v in decimal, zero-padded to width digits (after a minus sign), as
 * printf's "%0<width+sign>" does. */
static void key_int(struct eddy_sstr *k, int64_t v, int width)
{
    char d[48]; /* written from the end: 20 digits and a sign, padded to width <= 40 */
    char *p = d + sizeof d;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (width > 0 && d + sizeof d - p < width && p > d + 1)
        *--p = '0';
    if (v < 0)
        *--p = '-';
    eddy_sstr_put(k, p, (size_t)(d + sizeof d - p));
}

/* The key handed over as an allocation of its own. */
static char *key_take(struct eddy_sstr *k)
{
    if (k->s != k->buf)
        return k->s;
    return eddy_strndup(k->buf, k->len);
}

/* The keys' one spelling, for the functions below and the renderers. */
static const char *key_pk(struct eddy_sstr *k, const char *ns, const char *id)
{
    eddy_sstr_init(k);
    key_str(k, ns);
    eddy_sstr_put(k, "/", 1);
    key_str(k, id);
    return k->s;
}

/* The sort keys of one step's records: <prefix>/<seq>/<idx>/<type>. */
static const char *key_step(struct eddy_sstr *k, const char *prefix, int64_t seq, size_t idx,
                            const char *type)
{
    eddy_sstr_init(k);
    key_str(k, prefix);
    eddy_sstr_put(k, "/", 1);
    key_int(k, seq, 0);
    eddy_sstr_put(k, "/", 1);
    key_int(k, (int64_t)idx, 0);
    eddy_sstr_put(k, "/", 1);
    key_str(k, type);
    return k->s;
}

/* <prefix><n>: STATE/<seq>, REPAIR/<seq>, #outbox/<shard>, ... */
static const char *key_num(struct eddy_sstr *k, const char *prefix, int64_t n)
{
    eddy_sstr_init(k);
    key_str(k, prefix);
    key_int(k, n, 0);
    return k->s;
}

static const char *key_event(struct eddy_sstr *k, const char *event_id)
{
    eddy_sstr_init(k);
    key_str(k, "EVENT/");
    key_str(k, event_id);
    return k->s;
}

/* <ns>/<id>/<seq:020>/<idx:04>, which sorts an outbox shard in commit order */
static const char *key_outbox_sk(struct eddy_sstr *k, const char *ns, const char *id, int64_t seq,
                                 size_t idx)
{
    key_pk(k, ns, id);
    eddy_sstr_put(k, "/", 1);
    key_int(k, seq, seq < 0 ? 19 : 20);
    eddy_sstr_put(k, "/", 1);
    key_int(k, (int64_t)idx, 4);
    return k->s;
}

char *eddy_record_pk(const char *ns, const char *id)
{
    struct eddy_sstr k;
    key_pk(&k, ns, id);
    return key_take(&k);
}

char *eddy_record_sk_state_version(int64_t seq)
{
    struct eddy_sstr k;
    key_num(&k, "STATE/", seq);
    return key_take(&k);
}

char *eddy_record_sk_inbound(int64_t seq, size_t idx, const char *type)
{
    struct eddy_sstr k;
    key_step(&k, "INBOUND", seq, idx, type);
    return key_take(&k);
}

char *eddy_record_sk_rejected(int64_t seq, size_t idx, const char *type)
{
    struct eddy_sstr k;
    key_step(&k, "REJECTED", seq, idx, type);
    return key_take(&k);
}

char *eddy_record_sk_repair(int64_t seq)
{
    struct eddy_sstr k;
    key_num(&k, "REPAIR/", seq);
    return key_take(&k);
}

char *eddy_record_sk_outbound(int64_t seq, size_t idx, const char *type)
{
    struct eddy_sstr k;
    key_step(&k, "OUTBOUND", seq, idx, type);
    return key_take(&k);
}

char *eddy_record_sk_event(const char *event_id)
{
    struct eddy_sstr k;
    key_event(&k, event_id);
    return key_take(&k);
}

char *eddy_record_outbox_pk(uint32_t shard)
{
    struct eddy_sstr k;
    key_num(&k, "#outbox/", shard);
    return key_take(&k);
}

char *eddy_record_outbox_dead_pk(uint32_t shard)
{
    struct eddy_sstr k;
    key_num(&k, "#outbox-dead/", shard);
    return key_take(&k);
}

char *eddy_record_outbox_sk(const char *ns, const char *id, int64_t seq, size_t idx)
{
    struct eddy_sstr k;
    key_outbox_sk(&k, ns, id, seq, idx);
    return key_take(&k);
}

char *eddy_record_lease_sk(uint32_t shard)
{
    struct eddy_sstr k;
    key_num(&k, "outbox/", shard);
    return key_take(&k);
}

uint32_t eddy_record_shard(const char *pk, uint32_t shards)
{
    return eddy_fnv1a32(pk, strlen(pk)) % shards;
}

/* ---- building ---- */

/*
 * Records are rendered as DynamoDB JSON text, with their DynamoDB size
 * counted on the way (the commit path sends the text as it is); the cJSON
 * builders parse that text back for the callers that want a tree.
 */
struct render {
    struct eddy_jw w;
    size_t size;
};

/* Room for an item well past the 400 KB limit, so the limit is what refuses it. */
#define RENDER_MAX ((size_t)8 << 20)

/* out (or NULL) may bring a spare block to write into: it goes to the
 * writer, and out stays empty until render_end fills it. */
static void render_start(struct render *r, struct eddy_record_text *out)
{
    char *block = NULL;
    if (out) {
        block = out->cap == EDDY_JW_BLOCK ? out->json : NULL;
        if (block)
            out->json = NULL, out->cap = 0;
    }
    eddy_jw_init_block(&r->w, RENDER_MAX, block);
    eddy_jw_open(&r->w, '{');
    r->size = 0;
}

/*
 * "name":{"S":"v"} and "name":{"N":"v"}: the name and the type come as one
 * quoted literal ("\"_pk\":{\"S\":"), written as it is, so only the value is
 * scanned for escapes, and the value's length is counted once.
 */
static void put_typed(struct render *r, const char *quoted, size_t quoted_len, size_t name_len,
                      const char *v, size_t n)
{
    eddy_jw_key_raw(&r->w, quoted, quoted_len);
    eddy_jw_str(&r->w, v, n);
    eddy_jw_close(&r->w, '}');
    r->size += name_len + n;
}

#define TYPED_KEY(lit, t) "\"" lit "\":{\"" t "\":"
#define put_s_n(r, lit, v, n)                                                                      \
    put_typed((r), TYPED_KEY(lit, "S"), sizeof TYPED_KEY(lit, "S") - 1, sizeof lit - 1, (v), (n))
#define put_s(r, lit, v) put_s_n(r, lit, (v), strlen(v))

static void put_n_lit(struct render *r, const char *quoted, size_t quoted_len, size_t name_len,
                      int64_t v)
{
    char text[24];
    size_t n = eddy_json_format_int(v, text);
    eddy_jw_key_raw(&r->w, quoted, quoted_len);
    eddy_jw_str(&r->w, text, n);
    eddy_jw_close(&r->w, '}');
    r->size += name_len + eddy_attr_integer_size(text, n);
}
#define put_n(r, lit, v)                                                                           \
    put_n_lit((r), TYPED_KEY(lit, "N"), sizeof TYPED_KEY(lit, "N") - 1, sizeof lit - 1, (v))

/* Key lengths are DynamoDB's: 2048 bytes of partition key, 1024 of sort key. */
static eddy_err put_keys(struct render *r, const char *pk, const char *sk, struct eddy_error *err)
{
    size_t pk_len = strlen(pk), sk_len = strlen(sk);
    if (pk_len > EDDY_RECORD_PK_MAX)
        return eddy_error_set(err, EDDY_ELIMIT,
                              "partition key %.64s... is %zu bytes, over DynamoDB's %d-byte "
                              "partition key limit",
                              pk, pk_len, EDDY_RECORD_PK_MAX);
    if (sk_len > EDDY_RECORD_SK_MAX)
        return eddy_error_set(err, EDDY_ELIMIT,
                              "sort key %.64s... of %s is %zu bytes, over DynamoDB's %d-byte "
                              "sort key limit",
                              sk, pk, sk_len, EDDY_RECORD_SK_MAX);
    put_s_n(r, "_pk", pk, pk_len);
    put_s_n(r, "_sk", sk, sk_len);
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

/* What an error names: what ("inbound event"), followed by a type when
 * there is one. Printed only when there is an error to write. */
static const char *what_text(char buf[96], const char *what, const char *type)
{
    if (type == NULL)
        return what;
    snprintf(buf, 96, "%s %.64s", what, type);
    return buf;
}

/* The fields of data as attributes, refusing reserved names. */
static eddy_err put_fields(struct render *r, const struct eddy_record_entity *e, const char *what,
                           const char *what_type, const cJSON *data, const cJSON *keep,
                           struct eddy_error *err)
{
    char name[96];
    if (data == NULL)
        return EDDY_OK;
    if (!cJSON_IsObject(data))
        return eddy_error_set(err, EDDY_EINVAL, "%s of %s/%s is not a JSON object",
                              what_text(name, what, what_type), e->ns, e->id);
    for (const cJSON *c = data->child; c; c = c->next) {
        if (is_reserved(c->string))
            return eddy_error_set(err, EDDY_EINVAL,
                                  "%s of %s/%s: field \"%s\" is a name eddy reserves",
                                  what_text(name, what, what_type), e->ns, e->id, c->string);
    }
    struct eddy_error inner;
    if (eddy_attr_write_members_kept(&r->w, data, keep, &r->size, &inner) != EDDY_OK)
        return eddy_error_set(err, inner.code, "%s of %s/%s: %s", what_text(name, what, what_type),
                              e->ns, e->id, inner.detail);
    return EDDY_OK;
}

/* Close the item, check its size and hand the text over; frees r either way. */
static eddy_err render_end(struct render *r, const char *what, const char *what_type,
                           const struct eddy_record_entity *e, eddy_err rc,
                           struct eddy_record_text *out, struct eddy_error *err)
{
    eddy_jw_close(&r->w, '}');
    if (rc == EDDY_OK && (r->w.rc != EDDY_OK || r->size > EDDY_RECORD_ITEM_MAX)) {
        char name[256], w[96];
        snprintf(name, sizeof name, "%s of %.64s/%.64s", what_text(w, what, what_type), e->ns,
                 e->id);
        rc = r->w.rc != EDDY_OK
                 ? eddy_error_set(err, EDDY_ELIMIT,
                                  "%s is over %zu bytes, over DynamoDB's 400 KB item size limit",
                                  name, RENDER_MAX)
                 : eddy_error_set(err, EDDY_ELIMIT,
                                  "%s is %zu bytes, over DynamoDB's 400 KB item size limit", name,
                                  r->size);
    }
    if (rc == EDDY_OK) {
        out->size = r->size;
        out->cap = r->w.buf.cap;
        out->json = eddy_buf_take(&r->w.buf, &out->len);
    }
    eddy_jw_cleanup(&r->w);
    return rc;
}

/* a-h/stream's createRecord: fields + _namespace _pk _seq _sk _typ _ts _date. */
static eddy_err put_record(struct render *r, const struct eddy_record_entity *e, const char *sk,
                           const char *typ, const char *what, const char *what_type,
                           const cJSON *data, const cJSON *keep, struct eddy_error *err)
{
    eddy_err rc = check_entity(e, err);
    if (rc == EDDY_OK)
        rc = put_fields(r, e, what, what_type, data, keep, err);
    if (rc)
        return rc;
    struct eddy_sstr pk;
    rc = put_keys(r, key_pk(&pk, e->ns, e->id), sk, err);
    eddy_sstr_cleanup(&pk);
    if (rc)
        return rc;
    char date[21];
    eddy_time_rfc3339(e->now_s, date);
    put_s(r, "_namespace", e->ns);
    put_n(r, "_seq", e->seq);
    put_s(r, "_typ", typ);
    put_n(r, "_ts", e->now_s);
    put_s(r, "_date", date);
    return EDDY_OK;
}

void eddy_record_text_cleanup(struct eddy_record_text *t)
{
    free(t->json);
    free(t->outbox);
    t->outbox = NULL;
    t->json = NULL;
    t->len = t->cap = t->size = 0;
}

void eddy_record_spare_cleanup(struct eddy_record_spare *s)
{
    while (s->n)
        free(s->block[--s->n]);
}

struct eddy_record_text eddy_record_spare_text(struct eddy_record_spare *s)
{
    struct eddy_record_text t = {0};
    if (s->n) {
        t.json = s->block[--s->n];
        t.cap = EDDY_JW_BLOCK;
    }
    return t;
}

void eddy_record_text_release(struct eddy_record_text *t, struct eddy_record_spare *s)
{
    if (t->json && t->cap == EDDY_JW_BLOCK && s->n < EDDY_RECORD_SPARE_MAX) {
        s->block[s->n++] = t->json;
        t->json = NULL;
    }
    eddy_record_text_cleanup(t);
}

eddy_err eddy_record_render_state(const struct eddy_record_entity *e, const cJSON *state,
                                  bool version, struct eddy_record_text *out,
                                  struct eddy_error *err)
{
    return eddy_record_render_state_kept(e, state, NULL, version, out, err);
}

eddy_err eddy_record_render_state_kept(const struct eddy_record_entity *e, const cJSON *state,
                                       const cJSON *keep, bool version,
                                       struct eddy_record_text *out, struct eddy_error *err)
{
    struct eddy_sstr sk;
    eddy_sstr_init(&sk);
    if (version)
        key_num(&sk, "STATE/", e->seq);
    struct render r;
    render_start(&r, out);
    eddy_err rc = put_record(&r, e, version ? sk.s : EDDY_RECORD_STATE_SK, e->ns, "state", NULL,
                             state, keep, err);
    eddy_sstr_cleanup(&sk);
    return render_end(&r, "state item", NULL, e, rc, out, err);
}

eddy_err eddy_record_render_inbound(const struct eddy_record_entity *e, size_t idx,
                                    const char *type, const char *event_id, const cJSON *data,
                                    const char *rejected, struct eddy_record_text *out,
                                    struct eddy_error *err)
{
    eddy_err rc = eddy_record_check_id("event type", type, err);
    if (rc == EDDY_OK)
        rc = eddy_record_check_id("event id", event_id, err);
    if (rc)
        return rc;
    /* A refusal goes where a-h/stream's history queries do not look. */
    struct eddy_sstr sk;
    key_step(&sk, rejected ? "REJECTED" : "INBOUND", e->seq, idx, type);
    struct render r;
    render_start(&r, out);
    rc = put_record(&r, e, sk.s, type, "inbound event", type, data, NULL, err);
    eddy_sstr_cleanup(&sk);
    if (rc == EDDY_OK) {
        put_s(&r, "_eid", event_id);
        if (rejected)
            put_s(&r, "_rejected", rejected);
    }
    return render_end(&r, "inbound event", type, e, rc, out, err);
}

eddy_err eddy_record_render_repair(const struct eddy_record_entity *e, const char *event_id,
                                   const cJSON *state, struct eddy_record_text *out,
                                   struct eddy_error *err)
{
    eddy_err rc = eddy_record_check_id("event id", event_id, err);
    if (rc)
        return rc;
    char *sk = eddy_record_sk_repair(e->seq);
    struct render r;
    render_start(&r, out);
    rc = put_record(&r, e, sk, EDDY_RECORD_REPAIR_TYPE, "repair", NULL, state, NULL, err);
    free(sk);
    if (rc == EDDY_OK)
        put_s(&r, "_eid", event_id);
    return render_end(&r, "repair record", NULL, e, rc, out, err);
}

eddy_err eddy_record_render_outbound(const struct eddy_record_entity *e, size_t idx,
                                     const char *type, const cJSON *data,
                                     struct eddy_record_text *out, struct eddy_error *err)
{
    eddy_err rc = eddy_record_check_id("outbound event type", type, err);
    if (rc)
        return rc;
    struct eddy_sstr sk;
    key_step(&sk, "OUTBOUND", e->seq, idx, type);
    struct render r;
    render_start(&r, out);
    rc = put_record(&r, e, sk.s, type, "outbound event", type, data, NULL, err);
    eddy_sstr_cleanup(&sk);
    return render_end(&r, "outbound event", type, e, rc, out, err);
}

eddy_err eddy_record_render_dedupe(const struct eddy_record_entity *e, const char *event_id,
                                   int64_t ttl_unix_s, struct eddy_record_text *out,
                                   struct eddy_error *err)
{
    eddy_err rc = check_entity(e, err);
    if (rc == EDDY_OK)
        rc = eddy_record_check_id("event id", event_id, err);
    if (rc)
        return rc;
    struct eddy_sstr pk, sk;
    key_pk(&pk, e->ns, e->id);
    key_event(&sk, event_id);
    struct render r;
    render_start(&r, out);
    rc = put_keys(&r, pk.s, sk.s, err);
    eddy_sstr_cleanup(&pk);
    eddy_sstr_cleanup(&sk);
    if (rc == EDDY_OK) {
        put_n(&r, "_seq", e->seq);
        put_n(&r, "_ttl", ttl_unix_s);
    }
    return render_end(&r, "dedupe marker", NULL, e, rc, out, err);
}

eddy_err eddy_record_render_lease(uint32_t shard, const char *owner, int64_t expires_ms,
                                  struct eddy_record_text *out, struct eddy_error *err)
{
    eddy_err rc = eddy_record_check_id("lease owner", owner, err);
    if (rc)
        return rc;
    char *sk = eddy_record_lease_sk(shard);
    struct render r;
    render_start(&r, out);
    put_keys(&r, EDDY_RECORD_LEASE_PK, sk, err); /* short keys: cannot fail */
    free(sk);
    put_s(&r, "owner", owner);
    put_n(&r, "expires", expires_ms);
    struct eddy_record_entity none = {"lease", owner, 0, 0, 0};
    return render_end(&r, "lease", NULL, &none, EDDY_OK, out, err);
}

/* ---- the outbox entry ---- */

/*
 * Detail: the event's object plus the "eddy" metadata object
 * {"entity", "namespace", "seq", "idx", "id"}, where id is the stable
 * "<ns>/<id>/<seq>/<idx>" consumers use to drop duplicates. Written exactly
 * by eddy_jw_tree: each number in the digits the history record's N holds
 * (long numbers are Raw items and keep the text they came in). Refused when
 * the event itself has a member "eddy" (it would be overwritten).
 */
static eddy_err outbox_detail(const struct eddy_record_entity *e, size_t idx, const char *type,
                              const cJSON *data, char **out, struct eddy_error *err)
{
    if (data && cJSON_GetObjectItemCaseSensitive(data, "eddy"))
        return eddy_error_set(err, EDDY_EINVAL,
                              "outbound event %.64s of %.64s/%.64s has a member \"eddy\", which "
                              "is reserved for eddy's metadata",
                              type, e->ns, e->id);
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    if (data && data->child) {
        eddy_jw_tree(&w, data);
        if (w.rc == EDDY_OK)
            w.buf.len--; /* without its closing brace */
        w.comma = true;
    } else {
        eddy_buf_putc(&w.buf, '{');
    }
    eddy_jw_key(&w, "eddy");
    eddy_jw_open(&w, '{');
    eddy_jw_kstr(&w, "entity", e->id);
    eddy_jw_kstr(&w, "namespace", e->ns);
    eddy_jw_kint(&w, "seq", e->seq);
    eddy_jw_kint(&w, "idx", (int64_t)idx);
    eddy_jw_key(&w, "id");
    struct eddy_sstr full; /* <ns>/<id>/<seq>/<idx> */
    key_pk(&full, e->ns, e->id);
    eddy_sstr_put(&full, "/", 1);
    key_int(&full, e->seq, 0);
    eddy_sstr_put(&full, "/", 1);
    key_int(&full, (int64_t)idx, 0);
    eddy_jw_str(&w, full.s, full.len);
    eddy_sstr_cleanup(&full);
    eddy_jw_close(&w, '}');
    eddy_jw_close(&w, '}');
    if (w.rc != EDDY_OK) { /* past the writer's cap, far past PutEvents' */
        eddy_jw_cleanup(&w);
        return eddy_error_set(err, EDDY_ELIMIT,
                              "outbound event %.64s of %.64s/%.64s: its Detail is over %zu bytes",
                              type, e->ns, e->id, (size_t)EDDY_BUF_DEFAULT_MAX);
    }
    *out = eddy_buf_take(&w.buf, NULL);
    return EDDY_OK;
}

/* PutEvents takes at most 500 characters of TraceHeader; the header
 * carried from the inbound message may be longer */
static size_t trace_header_len(const char *th)
{
    size_t n = strnlen(th, EDDY_RECORD_TRACE_HEADER_MAX + 1);
    if (n > EDDY_RECORD_TRACE_HEADER_MAX) {
        n = EDDY_RECORD_TRACE_HEADER_MAX;
        while (n > 0 && ((unsigned char)th[n] & 0xC0) == 0x80)
            n--; /* not inside a UTF-8 character */
    }
    return n;
}

static eddy_err put_publish(struct render *r, const struct eddy_record_publish *pub,
                            struct eddy_error *err)
{
    if (pub == NULL)
        return EDDY_OK;
    if (pub->source)
        put_s(r, "Source", pub->source);
    if (pub->trace_header) {
        char th[EDDY_RECORD_TRACE_HEADER_MAX + 1];
        size_t n = trace_header_len(pub->trace_header);
        memcpy(th, pub->trace_header, n);
        th[n] = '\0';
        put_s(r, "TraceHeader", th);
    }
    if (pub->event_bus)
        put_s(r, "EventBusName", pub->event_bus);
    if (pub->resources) {
        if (!cJSON_IsArray(pub->resources))
            return eddy_error_set(err, EDDY_EINVAL, "Resources must be an array of strings");
        size_t n = 0, inner = 0;
        eddy_jw_key(&r->w, "Resources");
        eddy_jw_open(&r->w, '{');
        eddy_jw_key(&r->w, "L");
        eddy_jw_open(&r->w, '[');
        for (const cJSON *c = pub->resources->child; c; c = c->next, n++) {
            if (!cJSON_IsString(c))
                return eddy_error_set(err, EDDY_EINVAL, "Resources must be an array of strings");
            if (!eddy_utf8_valid(c->valuestring))
                return eddy_error_set(err, EDDY_EINVAL, "Resources[%zu]: string is not valid UTF-8",
                                      n);
            eddy_jw_open(&r->w, '{');
            eddy_jw_kstr(&r->w, "S", c->valuestring);
            eddy_jw_close(&r->w, '}');
            inner += strlen(c->valuestring);
        }
        eddy_jw_close(&r->w, ']');
        eddy_jw_close(&r->w, '}');
        r->size += strlen("Resources") + 3 + n + inner;
    }
    return EDDY_OK;
}

void eddy_record_default_source(const char *ns, char out[EDDY_RECORD_SOURCE_MAX])
{
    /* as snprintf "eddy.%s" would, without printf: every outbox entry sizes it */
    size_t n = strnlen(ns, EDDY_RECORD_SOURCE_MAX - 6);
    memcpy(out, "eddy.", 5);
    memcpy(out + 5, ns, n);
    out[5 + n] = '\0';
}

/*
 * The entry as the relay will send it, against the bus's limits: its
 * PutEvents size, by the one rule the relay uses too (eddy_eb_entry_size:
 * Time, Source, DetailType, Detail, Resources), and on a Custom Event Bus
 * (an event-busv2 ARN) that API's limits on an entry's fields
 * (eddy_eb2_entry_check, the relay's too). The relay always sends Time (the
 * commit second); without a recorded Source it sends "eddy.<namespace>"
 * unless configured otherwise.
 */
static eddy_err entry_check(const struct eddy_record_entity *e,
                            const struct eddy_record_publish *pub, const char *type,
                            const char *detail, struct eddy_error *err)
{
    char fallback[EDDY_RECORD_SOURCE_MAX];
    eddy_record_default_source(e->ns, fallback);
    size_t nres = 0;
    for (const cJSON *r = pub && pub->resources ? pub->resources->child : NULL; r; r = r->next)
        nres++;
    const char **res = nres ? eddy_calloc(nres, sizeof *res) : NULL;
    size_t k = 0;
    for (const cJSON *r = pub && pub->resources ? pub->resources->child : NULL; r; r = r->next)
        res[k++] = cJSON_IsString(r) ? r->valuestring : NULL;
    struct eddy_eb_entry en = {
        .source = pub && pub->source ? pub->source : fallback,
        .detail_type = type,
        .detail = detail,
        .resources = res,
        .nresources = nres,
        .time_s = e->now_s ? e->now_s : 1,
    };
    size_t size = eddy_eb_entry_size(&en);
    struct eddy_eb2_entry v2 = {en.source, type, detail, res, nres, en.time_s, NULL, NULL};
    struct eddy_error why;
    eddy_err rc = EDDY_OK;
    if (size > EDDY_RECORD_ENTRY_MAX)
        rc = eddy_error_set(err, EDDY_ELIMIT,
                            "outbound event %.64s of %.64s/%.64s is %zu bytes as an EventBridge "
                            "entry (Time, Source, DetailType, Detail with eddy's metadata, "
                            "Resources), over the 262,144 byte (256 KB) PutEvents entry limit",
                            type, e->ns, e->id, size);
    else if (pub && pub->event_bus && eddy_eb2_is_bus_arn(pub->event_bus) &&
             eddy_eb2_entry_check(&v2, &why) != EDDY_OK)
        rc = eddy_error_set(err, why.code,
                            "outbound event %.64s of %.64s/%.64s cannot go to the Custom Event "
                            "Bus: %s",
                            type, e->ns, e->id, why.detail);
    free(res);
    return rc;
}

/* The event's fields must be storable as they are in the history record. */
static eddy_err check_fields(const struct eddy_record_entity *e, const cJSON *data,
                             struct eddy_error *err)
{
    struct render scratch;
    render_start(&scratch, NULL);
    eddy_err rc = put_fields(&scratch, e, "outbound event", NULL, data, NULL, err);
    eddy_jw_cleanup(&scratch.w);
    return rc;
}

/* checked: the event's fields were rendered already (its history record). */
static eddy_err outbox_attrs(struct render *r, const struct eddy_record_entity *e, size_t idx,
                             const char *type, const char *eid, const cJSON *data,
                             const struct eddy_record_publish *pub, bool checked, char **detail_out,
                             size_t detail_span[2], struct eddy_error *err)
{
    struct eddy_error inner;
    eddy_err rc = checked ? EDDY_OK : check_fields(e, data, &inner);
    if (rc)
        return eddy_error_set(err, inner.code, "%s", inner.detail);
    char *detail = NULL;
    rc = outbox_detail(e, idx, type, data, &detail, err);
    if (rc)
        return rc;
    rc = entry_check(e, pub, type, detail, err);
    if (rc) {
        free(detail);
        return rc;
    }
    char date[21];
    eddy_time_rfc3339(e->now_s, date);
    put_s(r, "_namespace", e->ns);
    put_s(r, "_id", e->id);
    put_n(r, "_seq", e->seq);
    put_n(r, "_idx", (int64_t)idx);
    put_s(r, "_typ", type);
    put_s(r, "_eid", eid);
    put_n(r, "_ts", e->now_s);
    put_n(r, "_tms", e->now_ms ? e->now_ms : e->now_s * 1000);
    put_s(r, "_date", date);
    put_s(r, "DetailType", type);
    /* put_s, keeping where the escaped text is: the publisher sends it */
    eddy_jw_key(&r->w, "Detail");
    eddy_jw_open(&r->w, '{');
    eddy_jw_key(&r->w, "S");
    detail_span[0] = r->w.buf.len;
    eddy_jw_cstr(&r->w, detail);
    detail_span[1] = r->w.buf.len - detail_span[0];
    eddy_jw_close(&r->w, '}');
    r->size += strlen("Detail") + strlen(detail);
    *detail_out = detail;
    return put_publish(r, pub, err);
}

/* Copy s into the block at *at; NULL stays NULL. */
static const char *fields_put(char **at, const char *s, size_t n)
{
    if (s == NULL)
        return NULL;
    char *d = *at;
    memcpy(d, s, n);
    d[n] = '\0';
    *at += n + 1;
    return d;
}

static size_t len_or_0(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

struct eddy_record_outbox_fields *
eddy_record_outbox_fields_dup(const struct eddy_record_outbox_fields *src)
{
    size_t bytes = 0;
    const char *str[] = {src->pk,     src->sk,     src->ns,        src->id,          src->type,
                         src->detail, src->source, src->event_bus, src->trace_header};
    for (size_t i = 0; i < sizeof str / sizeof str[0]; i++)
        bytes += len_or_0(str[i]);
    for (size_t i = 0; i < src->nresources; i++)
        bytes += len_or_0(src->resources[i]);
    struct eddy_record_outbox_fields *f =
        eddy_malloc(sizeof *f + src->nresources * sizeof(char *) + bytes);
    *f = *src;
    const char **rv = (const char **)(f + 1);
    char *at = (char *)(rv + src->nresources);
    f->pk = fields_put(&at, src->pk, strlen(src->pk));
    f->sk = fields_put(&at, src->sk, strlen(src->sk));
    f->ns = fields_put(&at, src->ns, strlen(src->ns));
    f->id = fields_put(&at, src->id, strlen(src->id));
    f->type = fields_put(&at, src->type, strlen(src->type));
    f->detail = fields_put(&at, src->detail, strlen(src->detail));
    f->source = fields_put(&at, src->source, src->source ? strlen(src->source) : 0);
    f->event_bus = fields_put(&at, src->event_bus, src->event_bus ? strlen(src->event_bus) : 0);
    f->trace_header =
        fields_put(&at, src->trace_header, src->trace_header ? strlen(src->trace_header) : 0);
    for (size_t i = 0; i < src->nresources; i++)
        rv[i] = fields_put(&at, src->resources[i], strlen(src->resources[i]));
    f->resources = src->nresources ? rv : NULL;
    return f;
}

/* The fields of the outbox entry just rendered, in one allocation. */
static struct eddy_record_outbox_fields *
outbox_fields(const struct eddy_record_entity *e, size_t idx, const char *type, const char *opk,
              const char *osk, const char *detail, const size_t detail_span[2],
              const struct eddy_record_publish *pub)
{
    const cJSON *res = pub ? pub->resources : NULL;
    size_t nres = 0;
    for (const cJSON *c = res ? res->child : NULL; c; c = c->next)
        nres++;
    const char **rv = nres ? eddy_calloc(nres, sizeof *rv) : NULL;
    size_t k = 0;
    for (const cJSON *c = res ? res->child : NULL; c; c = c->next)
        rv[k++] = c->valuestring;
    char th[EDDY_RECORD_TRACE_HEADER_MAX + 1];
    if (pub && pub->trace_header) {
        size_t n = trace_header_len(pub->trace_header);
        memcpy(th, pub->trace_header, n);
        th[n] = '\0';
    }
    struct eddy_record_outbox_fields f = {
        .pk = opk,
        .sk = osk,
        .ns = e->ns,
        .id = e->id,
        .seq = e->seq,
        .idx = (int64_t)idx,
        .ts = e->now_s,
        .tms = e->now_ms ? e->now_ms : e->now_s * 1000,
        .type = type,
        .detail = detail,
        .detail_at = detail_span[0],
        .detail_json_len = detail_span[1],
        .source = pub ? pub->source : NULL,
        .trace_header = pub && pub->trace_header ? th : NULL,
        .event_bus = pub ? pub->event_bus : NULL,
        .resources = rv,
        .nresources = nres,
    };
    struct eddy_record_outbox_fields *out = eddy_record_outbox_fields_dup(&f);
    free(rv);
    return out;
}

static eddy_err render_outbox(const struct eddy_record_entity *e, uint32_t shards, size_t idx,
                              const char *type, const cJSON *data,
                              const struct eddy_record_publish *pub, bool checked,
                              struct eddy_record_text *out, struct eddy_error *err)
{
    eddy_err rc = check_entity(e, err);
    if (rc == EDDY_OK)
        rc = eddy_record_check_id("outbound event type", type, err);
    if (rc)
        return rc;
    if (shards == 0)
        return eddy_error_set(err, EDDY_EINVAL, "outbox shard count is 0");
    struct eddy_sstr pk, opk_key, osk_key;
    key_pk(&pk, e->ns, e->id);
    const char *opk = key_num(&opk_key, "#outbox/", eddy_record_shard(pk.s, shards));
    const char *osk = key_outbox_sk(&osk_key, e->ns, e->id, e->seq, idx);
    struct render r;
    char *detail = NULL;
    size_t detail_span[2] = {0, 0};
    render_start(&r, out);
    rc = put_keys(&r, opk, osk, err);
    if (rc == EDDY_OK)
        rc = outbox_attrs(&r, e, idx, type, osk, data, pub, checked, &detail, detail_span, err);
    rc = render_end(&r, "outbox entry", NULL, e, rc, out, err);
    if (rc == EDDY_OK)
        out->outbox = outbox_fields(e, idx, type, opk, osk, detail, detail_span, pub);
    free(detail);
    eddy_sstr_cleanup(&pk);
    eddy_sstr_cleanup(&opk_key);
    eddy_sstr_cleanup(&osk_key);
    return rc;
}

eddy_err eddy_record_render_outbox(const struct eddy_record_entity *e, uint32_t shards, size_t idx,
                                   const char *type, const cJSON *data,
                                   const struct eddy_record_publish *pub,
                                   struct eddy_record_text *out, struct eddy_error *err)
{
    return render_outbox(e, shards, idx, type, data, pub, false, out, err);
}

eddy_err eddy_record_render_emitted(const struct eddy_record_entity *e, uint32_t shards, size_t idx,
                                    const char *type, const cJSON *data,
                                    const struct eddy_record_publish *pub,
                                    struct eddy_record_text *history,
                                    struct eddy_record_text *outbox, struct eddy_error *err)
{
    eddy_err rc = eddy_record_render_outbound(e, idx, type, data, history, err);
    if (rc)
        return rc;
    rc = render_outbox(e, shards, idx, type, data, pub, true, outbox, err);
    if (rc)
        eddy_record_text_cleanup(history);
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
    const char *where = get_s(item, "_pk");
    /* the next commit writes _seq + 1: a version that cannot advance is the
     * state's fault, said here rather than blamed on the next event */
    if (*seq < 0 || *seq == INT64_MAX)
        return eddy_error_set(err, EDDY_EPARSE, "%s: _seq %" PRId64 " is %s",
                              where ? where : "item", *seq,
                              *seq < 0 ? "negative" : "the largest there is (it cannot advance)");
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
    if (strncmp(sk, "REJECTED/", 9) == 0) {
        *idx = sk_idx(sk, 9);
        return EDDY_RECORD_INBOUND;
    }
    if (strncmp(sk, "REPAIR/", 7) == 0)
        return EDDY_RECORD_INBOUND;
    return EDDY_RECORD_OTHER;
}

eddy_err eddy_record_parse_history(const cJSON *item, struct eddy_record_history *out,
                                   struct eddy_error *err)
{
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(item))
        return eddy_error_set(err, EDDY_EPARSE, "history item is not an object");
    const char *sk = get_s(item, "_sk");
    out->kind = sk_kind(sk, &out->idx);
    eddy_err rc = get_n(item, "_seq", out->kind != EDDY_RECORD_OTHER, &out->seq, err);
    if (rc == EDDY_OK)
        rc = get_n(item, "_ts", false, &out->ts, err);
    if (rc)
        return rc;
    out->type = get_s(item, "_typ");
    out->event_id = get_s(item, "_eid");
    out->rejected = get_s(item, "_rejected");
    /* Both forms: REPAIR/<seq> and REJECTED/..., and the INBOUND/... records
     * with _typ eddy.Repair or _rejected that earlier versions wrote. */
    bool repair_sk = sk && strncmp(sk, "REPAIR/", 7) == 0;
    out->repair = out->kind == EDDY_RECORD_INBOUND &&
                  (repair_sk || (out->type && strcmp(out->type, EDDY_RECORD_REPAIR_TYPE) == 0));
    if (repair_sk)
        out->type = EDDY_RECORD_REPAIR_TYPE;
    if (out->rejected == NULL && sk && strncmp(sk, "REJECTED/", 9) == 0)
        out->rejected = "rejected";
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
                              "transaction request is %zu bytes, over the 4 MB "
                              "TransactWriteItems size limit",
                              bytes);
    return EDDY_OK;
}
