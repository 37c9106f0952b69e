/*
 * envelope.c - JSON Pointers and the message body decoder (see envelope.h).
 *
 * Every check here guards something further down: the entity id becomes part
 * of a DynamoDB key (so it has a length limit, must be valid UTF-8 and may not
 * hide control characters that would make two ids look alike in logs), the
 * event id becomes the dedupe marker's key, and the data goes to the machine.
 * The reasons are written for the person reading the DLQ.
 */
#include "worker/envelope.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/json.h"
#include "core/record.h"

/* Unescape one reference token of len bytes: ~1 -> '/', ~0 -> '~'. */
static eddy_err parse_token(const char *s, size_t len, char **out, const char *text,
                            struct eddy_error *err)
{
    char *tok = eddy_malloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '~') {
            tok[n++] = s[i];
            continue;
        }
        if (i + 1 >= len || (s[i + 1] != '0' && s[i + 1] != '1')) {
            free(tok);
            return eddy_error_set(err, EDDY_ECONFIG,
                                  "JSON pointer \"%s\": '~' must be followed by 0 or 1", text);
        }
        tok[n++] = s[i + 1] == '0' ? '~' : '/';
        i++;
    }
    tok[n] = '\0';
    *out = tok;
    return EDDY_OK;
}

eddy_err eddy_json_pointer_parse(struct eddy_json_pointer *p, const char *text,
                                 struct eddy_error *err)
{
    memset(p, 0, sizeof *p);
    if (text == NULL)
        return eddy_error_set(err, EDDY_ECONFIG, "JSON pointer is missing");
    if (text[0] != '\0' && text[0] != '/')
        return eddy_error_set(err, EDDY_ECONFIG,
                              "JSON pointer \"%s\" must be empty or start with '/'", text);
    size_t count = 0;
    for (const char *c = text; *c != '\0'; c++)
        count += *c == '/';
    p->text = eddy_strdup(text);
    p->tokens = eddy_calloc(count ? count : 1, sizeof *p->tokens);
    const char *at = text;
    while (*at == '/') {
        const char *start = at + 1;
        const char *end = strchr(start, '/');
        if (end == NULL)
            end = start + strlen(start);
        eddy_err rc = parse_token(start, (size_t)(end - start), &p->tokens[p->ntokens], text, err);
        if (rc != EDDY_OK) {
            eddy_json_pointer_cleanup(p);
            return rc;
        }
        p->ntokens++;
        at = end;
    }
    return EDDY_OK;
}

void eddy_json_pointer_cleanup(struct eddy_json_pointer *p)
{
    for (size_t i = 0; i < p->ntokens; i++)
        free(p->tokens[i]);
    free(p->tokens);
    free(p->text);
    memset(p, 0, sizeof *p);
}

/* An array index as RFC 6901 spells it: "0" or digits without a leading zero. */
static bool parse_index(const char *tok, int *out)
{
    if (tok[0] == '\0' || (tok[0] == '0' && tok[1] != '\0'))
        return false;
    long v = 0;
    for (const char *c = tok; *c != '\0'; c++) {
        if (*c < '0' || *c > '9')
            return false;
        v = v * 10 + (*c - '0');
        if (v > INT32_MAX)
            return false;
    }
    *out = (int)v;
    return true;
}

const cJSON *eddy_json_pointer_get(const struct eddy_json_pointer *p, const cJSON *root)
{
    const cJSON *at = root;
    for (size_t i = 0; i < p->ntokens && at != NULL; i++) {
        int index;
        if (cJSON_IsObject(at))
            at = cJSON_GetObjectItemCaseSensitive(at, p->tokens[i]);
        else if (cJSON_IsArray(at) && parse_index(p->tokens[i], &index))
            at = cJSON_GetArrayItem(at, index);
        else
            at = NULL;
    }
    return at;
}

static eddy_err spec_pointer(struct eddy_json_pointer *p, const char *text, const char *dflt,
                             const char *what, struct eddy_error *err)
{
    eddy_err rc = eddy_json_pointer_parse(p, text != NULL ? text : dflt, err);
    if (rc != EDDY_OK && err != NULL) {
        char detail[EDDY_ERROR_DETAIL_MAX];
        snprintf(detail, sizeof detail, "%s", err->detail);
        eddy_error_set(err, rc, "%s pointer: %s", what, detail);
    }
    return rc;
}

eddy_err eddy_envelope_spec_init(struct eddy_envelope_spec *s, const char *entity_id,
                                 const char *event_type, const char *event_id,
                                 const char *event_data, struct eddy_error *err)
{
    memset(s, 0, sizeof *s);
    eddy_err rc =
        spec_pointer(&s->entity_id, entity_id, EDDY_ENVELOPE_DEFAULT_ENTITY_ID, "entity id", err);
    if (rc == EDDY_OK)
        rc = spec_pointer(&s->event_type, event_type, EDDY_ENVELOPE_DEFAULT_EVENT_TYPE,
                          "event type", err);
    if (rc == EDDY_OK)
        rc = spec_pointer(&s->event_id, event_id, EDDY_ENVELOPE_DEFAULT_EVENT_ID, "event id", err);
    if (rc == EDDY_OK)
        rc = spec_pointer(&s->event_data, event_data, EDDY_ENVELOPE_DEFAULT_EVENT_DATA,
                          "event data", err);
    if (rc != EDDY_OK) {
        eddy_envelope_spec_cleanup(s);
        return rc;
    }
    eddy_envelope_spec_namespace(s, "");
    s->event_id_max = EDDY_RECORD_EVENT_ID_MAX;
    s->type_max = EDDY_RECORD_TYPE_MAX;
    return EDDY_OK;
}

void eddy_envelope_spec_namespace(struct eddy_envelope_spec *s, const char *ns)
{
    free(s->ns);
    s->ns = eddy_strdup(ns);
    s->entity_id_max = eddy_record_entity_id_max(ns);
}

void eddy_envelope_spec_cleanup(struct eddy_envelope_spec *s)
{
    eddy_json_pointer_cleanup(&s->entity_id);
    eddy_json_pointer_cleanup(&s->event_type);
    eddy_json_pointer_cleanup(&s->event_id);
    eddy_json_pointer_cleanup(&s->event_data);
    free(s->ns);
    s->ns = NULL;
}

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v) || cJSON_IsRaw(v))
        return "a number";
    if (cJSON_IsObject(v))
        return "an object";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsNull(v))
        return "null";
    return "an unknown value";
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (len == 0 || s[0] > 0xf4 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    /* Overlong forms, UTF-16 surrogates and code points past U+10FFFF. */
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return len;
}

/*
 * Check a string the envelope takes: not empty, at most max bytes (key_ns
 * and key name the sort key that sets the limit: put together only for the
 * error), valid UTF-8, and (when no_controls) free of C0, DEL and C1
 * control characters.
 */
static eddy_err check_text(const char *s, const char *what, const char *ptr, size_t max,
                           const char *key_ns, const char *key, bool no_controls,
                           struct eddy_error *err)
{
    size_t len = strlen(s);
    if (len == 0)
        return eddy_error_set(err, EDDY_EPOISON, "%s (%s) is empty", what, ptr);
    if (len > max)
        return eddy_error_set(err, EDDY_EPOISON,
                              "%s (%s) is %zu bytes, over the %zu-byte limit (the sort key %.64s%s "
                              "must fit DynamoDB's %d bytes)",
                              what, ptr, len, max, key_ns, key, EDDY_RECORD_SK_MAX);
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(u + i, len - i);
        if (n == 0)
            return eddy_error_set(err, EDDY_EPOISON, "%s (%s) is not valid UTF-8 at byte %zu", what,
                                  ptr, i);
        bool control = u[i] < 0x20 || u[i] == 0x7f || (n == 2 && u[i] == 0xc2 && u[i + 1] < 0xa0);
        if (no_controls && control)
            return eddy_error_set(err, EDDY_EPOISON,
                                  "%s (%s) contains a control character at byte %zu", what, ptr, i);
        i += n;
    }
    return EDDY_OK;
}

/*
 * The plain decimal digits of an integral number, whatever its spelling
 * ("1e3", "1000", "1.0e21"): NULL when it is not an integer or its digits
 * would be longer than max (an id that long is refused anyway).
 */
static char *integer_digits(const char *text, size_t max)
{
    struct eddy_decimal d;
    if (!eddy_decimal_parse(text, strlen(text), true, &d))
        return NULL;
    char *out = NULL;
    if (d.zero) {
        out = eddy_strdup("0"); /* no "-0" */
    } else if (d.adj >= 0 && (size_t)d.adj + 1 >= d.ndigits && (size_t)d.adj + 2 <= max + 1) {
        size_t n = (size_t)d.adj + 1; /* digits before the point */
        out = eddy_malloc(n + 2);
        size_t k = 0;
        if (d.neg)
            out[k++] = '-';
        memcpy(out + k, d.digits, d.ndigits);
        memset(out + k + d.ndigits, '0', n - d.ndigits);
        out[k + n] = '\0';
    }
    eddy_decimal_cleanup(&d);
    return out;
}

/*
 * The entity id as text: a string as it is, an integer as its plain decimal
 * digits. An integer is treated the same whether the reader kept it as a
 * double (1e21) or as exact text (a Raw item, 123456789012345678901234567890).
 */
static eddy_err entity_id_text(struct eddy_json_arena *a, const cJSON *v, const char *ptr,
                               const char **out, struct eddy_error *err)
{
    if (v == NULL)
        return eddy_error_set(err, EDDY_EPOISON, "entity id (%s) is missing", ptr);
    if (cJSON_IsString(v) && v->valuestring != NULL) {
        *out = v->valuestring; /* in the arena with the tree */
        return EDDY_OK;
    }
    if (cJSON_IsNumber(v) || cJSON_IsRaw(v)) {
        char text[32];
        const char *t = v->valuestring;
        if (cJSON_IsNumber(v)) /* the reader keeps it exact: the double is the number sent */
            t = eddy_json_format_double(v->valuedouble, text) ? text : NULL;
        char *digits = t ? integer_digits(t, EDDY_ENVELOPE_ID_MAX) : NULL;
        if (digits) {
            *out = eddy_json_arena_strndup(a, digits, strlen(digits));
            free(digits);
            return EDDY_OK;
        }
        return eddy_error_set(err, EDDY_EPOISON,
                              "entity id (%s) is a number but not an integer of at most %d digits",
                              ptr, EDDY_ENVELOPE_ID_MAX);
    }
    return eddy_error_set(err, EDDY_EPOISON, "entity id (%s) is %s, not a string or an integer",
                          ptr, type_name(v));
}

static eddy_err take_entity_id(struct eddy_envelope *env, const struct eddy_envelope_spec *spec,
                               struct eddy_json_arena *a, const cJSON *root, struct eddy_error *err)
{
    const char *ptr = spec->entity_id.text;
    const cJSON *v = eddy_json_pointer_get(&spec->entity_id, root);
    eddy_err rc = entity_id_text(a, v, ptr, &env->entity_id, err);
    if (rc == EDDY_OK)
        rc = check_text(env->entity_id, "entity id", ptr, spec->entity_id_max,
                        spec->ns ? spec->ns : "", "/<id>/<seq>/<idx> of the outbox", true, err);
    return rc;
}

static eddy_err take_event_type(struct eddy_envelope *env, const struct eddy_envelope_spec *spec,
                                const cJSON *root, struct eddy_error *err)
{
    const char *ptr = spec->event_type.text;
    const cJSON *v = eddy_json_pointer_get(&spec->event_type, root);
    if (v == NULL)
        return eddy_error_set(err, EDDY_EPOISON, "event type (%s) is missing", ptr);
    if (!cJSON_IsString(v) || v->valuestring == NULL)
        return eddy_error_set(err, EDDY_EPOISON, "event type (%s) is %s, not a string", ptr,
                              type_name(v));
    eddy_err rc = check_text(v->valuestring, "event type", ptr, spec->type_max, "",
                             "OUTBOUND/<seq>/<idx>/<type>", false, err);
    if (rc == EDDY_OK)
        env->event_type = v->valuestring;
    return rc;
}

/*
 * The event id, else (only when the pointer finds nothing) the MessageId. A
 * value that is there but unusable (not a string, or an empty one, or null)
 * is poison rather than replaced: a quiet stand-in would defeat
 * deduplication of the copies SQS and EventBridge may deliver under
 * different MessageIds, and the event would be applied once per copy.
 */
static eddy_err take_event_id(struct eddy_envelope *env, const struct eddy_envelope_spec *spec,
                              const cJSON *root, const char *message_id, struct eddy_error *err)
{
    const char *ptr = spec->event_id.text;
    const cJSON *v = eddy_json_pointer_get(&spec->event_id, root);
    if (v != NULL) {
        if (!cJSON_IsString(v) || v->valuestring == NULL)
            return eddy_error_set(err, EDDY_EPOISON, "event id (%s) is %s, not a string", ptr,
                                  type_name(v));
        eddy_err rc = check_text(v->valuestring, "event id", ptr, spec->event_id_max, "",
                                 "EVENT/<id>", false, err);
        if (rc == EDDY_OK)
            env->event_id = v->valuestring;
        return rc;
    }
    if (message_id == NULL || message_id[0] == '\0')
        return eddy_error_set(err, EDDY_EPOISON,
                              "event id (%s) is missing and the message has no MessageId", ptr);
    eddy_err rc = check_text(message_id, "event id", "MessageId", spec->event_id_max, "",
                             "EVENT/<id>", false, err);
    if (rc == EDDY_OK) {
        env->event_id = message_id; /* copied with the rest in keep() */
        env->event_id_is_message_id = true;
    }
    return rc;
}

/* Whether j holds, at any depth, an object member with an empty name. */
static bool has_empty_name(const cJSON *j)
{
    for (const cJSON *c = j->child; c; c = c->next) {
        if (cJSON_IsObject(j) && c->string[0] == '\0')
            return true;
        if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && has_empty_name(c))
            return true;
    }
    return false;
}

static eddy_err take_data(struct eddy_envelope *env, const struct eddy_envelope_spec *spec,
                          const cJSON *root, struct eddy_error *err)
{
    const char *ptr = spec->event_data.text;
    const cJSON *v = eddy_json_pointer_get(&spec->event_data, root);
    if (v == NULL)
        return eddy_error_set(err, EDDY_EPOISON, "event data (%s) is missing", ptr);
    if (!cJSON_IsObject(v))
        return eddy_error_set(err, EDDY_EPOISON, "event data (%s) is %s, not an object", ptr,
                              type_name(v));
    /* DynamoDB has no empty attribute names, and stores mangle empty map
     * keys: such a record would not read back (history, replay) */
    if (has_empty_name(v))
        return eddy_error_set(err, EDDY_EPOISON,
                              "event data (%s) has a member with an empty name, at some depth",
                              ptr);
    env->data = v;
    return EDDY_OK;
}

static eddy_err parse_body(struct eddy_json_arena *a, const char *body, size_t len, cJSON **root,
                           struct eddy_error *err)
{
    if (body == NULL || len == 0)
        return eddy_error_set(err, EDDY_EPOISON, "message body is empty");
    if (len > EDDY_ENVELOPE_BODY_MAX)
        return eddy_error_set(err, EDDY_EPOISON,
                              "message body is %zu bytes, over the 256 KB SQS message limit", len);
    /*
     * The exact reader also refuses \u0000 in strings: cJSON strings end at
     * the first NUL, so two entity ids could silently become one.
     */
    struct eddy_error perr = {0};
    if (eddy_json_parse_in(a, body, len, root, &perr) != EDDY_OK || *root == NULL)
        return eddy_error_set(err, EDDY_EPOISON, "message body is not JSON: %s",
                              eddy_error_text(&perr));
    return EDDY_OK;
}

/*
 * What the envelope keeps while the message waits: the data object and the
 * three ids, copied into one block of exactly their size. The body's whole
 * tree (the envelope's other members, names and all) took several times as
 * much, for every message in hand.
 */
static void keep(struct eddy_envelope *env, const cJSON *data)
{
    size_t ne = strlen(env->entity_id), nt = strlen(env->event_type), ni = strlen(env->event_id);
    eddy_json_arena_init_exact(&env->arena,
                               eddy_json_copy_size(data) + eddy_json_arena_str_size(ne) +
                                   eddy_json_arena_str_size(nt) + eddy_json_arena_str_size(ni));
    env->data = eddy_json_arena_copy(&env->arena, data);
    env->entity_id = eddy_json_arena_strndup(&env->arena, env->entity_id, ne);
    env->event_type = eddy_json_arena_strndup(&env->arena, env->event_type, nt);
    env->event_id = eddy_json_arena_strndup(&env->arena, env->event_id, ni);
}

eddy_err eddy_envelope_decode(struct eddy_envelope *env, const struct eddy_envelope_spec *spec,
                              const char *body, size_t len, const char *message_id,
                              struct eddy_error *err)
{
    memset(env, 0, sizeof *env);
    /* The body's tree lives only for the decode: its chunks come from and
     * go back to the thread's cache (base/json.h). A guess of its size
     * (nodes of 64 bytes, names, strings), so most bodies take one chunk. */
    struct eddy_json_arena scratch;
    eddy_json_arena_init(&scratch, len * 4 + 512);
    cJSON *root = NULL;
    eddy_err rc = parse_body(&scratch, body, len, &root, err);
    if (rc == EDDY_OK)
        rc = take_entity_id(env, spec, &scratch, root, err);
    if (rc == EDDY_OK)
        rc = take_event_type(env, spec, root, err);
    if (rc == EDDY_OK)
        rc = take_event_id(env, spec, root, message_id, err);
    if (rc == EDDY_OK)
        rc = take_data(env, spec, root, err);
    if (rc == EDDY_OK)
        keep(env, env->data);
    else
        eddy_envelope_cleanup(env);
    eddy_json_arena_cleanup(&scratch);
    return rc;
}

void eddy_envelope_cleanup(struct eddy_envelope *env)
{
    eddy_json_arena_cleanup(&env->arena); /* the data and the ids */
    memset(env, 0, sizeof *env);
}
