/*
 * names.c - stored member names matched to a machine's spelling (see
 * names.h).
 *
 * Objects are small (a state's fields), so matching is a linear scan per
 * member; renaming replaces the member's name string with cJSON's own
 * allocator, keeping the member where it is.
 */
#include "core/names.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static char fold(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool equal_fold(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        if (fold(*a) != fold(*b))
            return false;
    }
    return *a == *b;
}

static const cJSON *find_exact(const cJSON *obj, const char *name)
{
    for (const cJSON *c = obj->child; c; c = c->next) {
        if (c->string && strcmp(c->string, name) == 0)
            return c;
    }
    return NULL;
}

const cJSON *eddy_names_find(const cJSON *obj, const char *name)
{
    if (!cJSON_IsObject(obj) || name == NULL)
        return NULL;
    const cJSON *hit = find_exact(obj, name);
    for (const cJSON *c = obj->child; c && hit == NULL; c = c->next) {
        if (c->string && equal_fold(c->string, name))
            hit = c;
    }
    return hit;
}

static void rename_member(cJSON *c, const char *name)
{
    size_t n = strlen(name) + 1;
    char *copy = cJSON_malloc(n);
    if (copy == NULL)
        abort(); /* eddy's out-of-memory policy */
    memcpy(copy, name, n);
    if (!(c->type & cJSON_StringIsConst))
        cJSON_free(c->string);
    c->string = copy;
    c->type &= ~cJSON_StringIsConst;
}

/* The other member of obj than c that also folds onto name only without case, or NULL. */
static const cJSON *rival(const cJSON *obj, const cJSON *c, const char *name)
{
    for (const cJSON *o = obj->child; o; o = o->next) {
        if (o != c && o->string && equal_fold(o->string, name) && strcmp(o->string, name) != 0)
            return o;
    }
    return NULL;
}

static eddy_err fold_value(cJSON *v, const cJSON *model, struct eddy_error *err)
{
    if (cJSON_IsObject(v) && cJSON_IsObject(model))
        return eddy_names_fold(v, model, err);
    if (cJSON_IsArray(v) && cJSON_IsArray(model) && cJSON_IsObject(model->child)) {
        for (cJSON *e = v->child; e; e = e->next) {
            eddy_err rc = fold_value(e, model->child, err);
            if (rc)
                return rc;
        }
    }
    return EDDY_OK;
}

eddy_err eddy_names_fold(cJSON *obj, const cJSON *model, struct eddy_error *err)
{
    if (!cJSON_IsObject(obj) || !cJSON_IsObject(model))
        return EDDY_OK;
    for (cJSON *c = obj->child; c; c = c->next) {
        if (c->string == NULL)
            continue;
        const cJSON *field = find_exact(model, c->string);
        if (field == NULL) {
            field = eddy_names_find(model, c->string);
            /* an exact member for that field wins; this one stays unknown */
            if (field && find_exact(obj, field->string))
                field = NULL;
            const cJSON *other = field ? rival(obj, c, field->string) : NULL;
            if (other)
                return eddy_error_set(err, EDDY_EPARSE,
                                      "attributes \"%.64s\" and \"%.64s\" both match the "
                                      "machine's field \"%.64s\" (names are matched without "
                                      "regard to case)",
                                      c->string, other->string, field->string);
            if (field)
                rename_member(c, field->string);
        }
        if (field) {
            eddy_err rc = fold_value(c, field, err);
            if (rc)
                return rc;
        }
    }
    return EDDY_OK;
}
