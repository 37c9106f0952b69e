/*
 * fuzz_attr - the JSON <-> DynamoDB attribute value codec (core/attr.h),
 * both ways.
 *
 * The first byte picks the direction, the rest is JSON text (read with the
 * exact reader).
 *   JSON -> item -> JSON: whatever eddy_attr_item_from_json accepts comes
 *     back as the same JSON (numbers compared by decimal value, so 1.50 and
 *     1.5 are one number); the text writer (eddy_attr_write_members) writes
 *     exactly the tree the tree builder makes, and its size is
 *     eddy_attr_item_size of that tree.
 *   item -> JSON -> item: an item of S, N, BOOL, NULL, M and L that
 *     eddy_attr_item_to_json accepts comes back as the same item, numbers
 *     again by value.
 * Every refusal carries a reason.
 */
#include <string.h>

#include "base/json.h"
#include "core/attr.h"
#include "fuzz.h"

/* The decimal value of a number item (a double or Raw text). */
static bool number_value(const cJSON *n, struct eddy_decimal *d)
{
    char text[32];
    const char *t = text;
    if (cJSON_IsRaw(n))
        t = n->valuestring;
    else if (!eddy_json_format_double(n->valuedouble, text))
        return false;
    return eddy_decimal_parse(t, strlen(t), false, d);
}

static bool numbers_equal(const cJSON *a, const cJSON *b)
{
    struct eddy_decimal x, y;
    if (!number_value(a, &x))
        return false;
    if (!number_value(b, &y)) {
        eddy_decimal_cleanup(&x);
        return false;
    }
    bool eq = eddy_decimal_equal(&x, &y);
    eddy_decimal_cleanup(&x);
    eddy_decimal_cleanup(&y);
    return eq;
}

static bool is_num(const cJSON *v)
{
    return cJSON_IsNumber(v) || cJSON_IsRaw(v);
}

/* Same JSON value; numbers by decimal value; members in order. */
static bool json_equal(const cJSON *a, const cJSON *b)
{
    if (is_num(a) || is_num(b))
        return is_num(a) && is_num(b) && numbers_equal(a, b);
    if ((a->type & 0xff) != (b->type & 0xff))
        return false;
    if (cJSON_IsString(a))
        return strcmp(a->valuestring, b->valuestring) == 0;
    if (cJSON_IsObject(a) || cJSON_IsArray(a)) {
        const cJSON *x = a->child, *y = b->child;
        for (; x && y; x = x->next, y = y->next) {
            if (cJSON_IsObject(a) && strcmp(x->string, y->string) != 0)
                return false;
            if (!json_equal(x, y))
                return false;
        }
        return x == NULL && y == NULL;
    }
    return true; /* true, false, null */
}

/* Same attribute value: {"N": text} compared by value, the rest as JSON. */
static bool av_equal(const cJSON *a, const cJSON *b);

static bool item_equal(const cJSON *a, const cJSON *b)
{
    const cJSON *x = a->child, *y = b->child;
    for (; x && y; x = x->next, y = y->next) {
        if (strcmp(x->string, y->string) != 0 || !av_equal(x, y))
            return false;
    }
    return x == NULL && y == NULL;
}

static bool av_equal(const cJSON *a, const cJSON *b)
{
    const cJSON *ta = a->child, *tb = b->child;
    if (ta == NULL || tb == NULL || strcmp(ta->string, tb->string) != 0)
        return false;
    if (strcmp(ta->string, "N") == 0) {
        struct eddy_decimal x, y;
        if (!eddy_decimal_parse(ta->valuestring, strlen(ta->valuestring), false, &x))
            return false;
        if (!eddy_decimal_parse(tb->valuestring, strlen(tb->valuestring), false, &y)) {
            eddy_decimal_cleanup(&x);
            return false;
        }
        bool eq = eddy_decimal_equal(&x, &y);
        eddy_decimal_cleanup(&x);
        eddy_decimal_cleanup(&y);
        return eq;
    }
    if (strcmp(ta->string, "M") == 0)
        return item_equal(ta, tb);
    if (strcmp(ta->string, "L") == 0) {
        const cJSON *x = ta->child, *y = tb->child;
        for (; x && y; x = x->next, y = y->next) {
            if (!av_equal(x, y))
                return false;
        }
        return x == NULL && y == NULL;
    }
    return json_equal(ta, tb);
}

/* Only the types that round-trip: S, N, BOOL, NULL, M, L, one each. */
static bool plain_av(const cJSON *av, int depth)
{
    if (!cJSON_IsObject(av) || av->child == NULL || av->child->next != NULL || depth > 40)
        return false;
    const cJSON *t = av->child;
    if (strcmp(t->string, "S") == 0)
        return cJSON_IsString(t);
    if (strcmp(t->string, "N") == 0)
        return cJSON_IsString(t);
    if (strcmp(t->string, "BOOL") == 0)
        return cJSON_IsBool(t);
    if (strcmp(t->string, "NULL") == 0)
        return cJSON_IsTrue(t);
    if (strcmp(t->string, "M") == 0 || strcmp(t->string, "L") == 0) {
        if (strcmp(t->string, "M") == 0 ? !cJSON_IsObject(t) : !cJSON_IsArray(t))
            return false;
        for (const cJSON *c = t->child; c; c = c->next)
            if (!plain_av(c, depth + 1))
                return false;
        return true;
    }
    return false;
}

static void json_to_item(const cJSON *json)
{
    cJSON *item = NULL, *back = NULL;
    struct eddy_error err = {0};
    eddy_err rc = eddy_attr_item_from_json(json, &item, &err);
    /* the text writer agrees with the tree builder */
    struct eddy_jw w;
    eddy_jw_init(&w, (size_t)16 << 20);
    eddy_jw_open(&w, '{');
    size_t size = 0;
    struct eddy_error werr = {0};
    eddy_err wrc = cJSON_IsObject(json) ? eddy_attr_write_members(&w, json, &size, &werr) : rc;
    eddy_jw_close(&w, '}');
    if (rc != EDDY_OK) {
        FUZZ_CHECK(item == NULL && err.detail[0] != '\0', "refusal without a reason");
        FUZZ_CHECK(wrc != EDDY_OK, "the writer accepts what the builder refuses: %s", err.detail);
        eddy_jw_cleanup(&w);
        return;
    }
    FUZZ_CHECK(wrc == EDDY_OK && w.rc == EDDY_OK, "the writer refuses what the builder accepts: %s",
               werr.detail);
    cJSON *written = cJSON_ParseWithLength(w.buf.ptr, w.buf.len);
    FUZZ_CHECK(written != NULL, "the writer's text is not JSON");
    char *p1 = cJSON_PrintUnformatted(written), *p2 = cJSON_PrintUnformatted(item);
    FUZZ_CHECK(p1 && p2 && strcmp(p1, p2) == 0, "writer and builder differ");
    FUZZ_CHECK(size == eddy_attr_item_size(item), "writer size %zu, item size %zu", size,
               eddy_attr_item_size(item));
    free(p1);
    free(p2);
    cJSON_Delete(written);
    eddy_jw_cleanup(&w);
    rc = eddy_attr_item_to_json(item, &back, &err);
    FUZZ_CHECK(rc == EDDY_OK, "an item made from JSON does not read back: %s", err.detail);
    FUZZ_CHECK(json_equal(json, back), "JSON -> item -> JSON is not the identity");
    cJSON_Delete(back);
    cJSON_Delete(item);
}

static void item_to_json(const cJSON *item)
{
    cJSON *json = NULL, *back = NULL;
    struct eddy_error err = {0};
    eddy_err rc = eddy_attr_item_to_json(item, &json, &err);
    if (rc != EDDY_OK) {
        FUZZ_CHECK(json == NULL && err.detail[0] != '\0', "refusal without a reason");
        return;
    }
    bool plain = cJSON_IsObject(item);
    for (const cJSON *c = item->child; plain && c; c = c->next)
        plain = plain_av(c, 0);
    if (plain) {
        rc = eddy_attr_item_from_json(json, &back, &err);
        /* the way back may refuse only what DynamoDB cannot hold or never
         * sends: a number past its range, deep nesting, text that is not
         * UTF-8, an empty name, a name twice in one map */
        if (rc == EDDY_OK)
            FUZZ_CHECK(item_equal(item, back), "item -> JSON -> item is not the identity");
        else
            FUZZ_CHECK(strstr(err.detail, "number") != NULL || strstr(err.detail, "deep") != NULL ||
                           strstr(err.detail, "UTF-8") != NULL ||
                           strstr(err.detail, "empty") != NULL ||
                           strstr(err.detail, "appears twice") != NULL,
                       "an item read to JSON does not convert back: %s", err.detail);
        cJSON_Delete(back);
    }
    cJSON_Delete(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    cJSON *root = NULL;
    struct eddy_error err = {0};
    if (eddy_json_parse((const char *)data + 1, size - 1, &root, &err) != EDDY_OK)
        return 0;
    if (data[0] & 1)
        item_to_json(root);
    else
        json_to_item(root);
    cJSON_Delete(root);
    return 0;
}
