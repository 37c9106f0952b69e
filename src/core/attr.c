/*
 * attr.c - exact JSON <-> DynamoDB attribute values (see attr.h).
 *
 * Numbers are the delicate part. Every decision about a number goes through
 * one canonical form (struct eddy_decimal: sign, significant digits, exponent of
 * the first digit), so "1.50", "15e-1" and the double 1.5 compare equal and
 * DynamoDB's limits (38 digits, 1E-130 .. 9.99E+125) are checked once, on
 * the digits rather than on a double that may already have rounded.
 *
 * The canonical form and the strict reader are base/json's.
 */
#include "core/attr.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/json.h"
#include "core/names.h"

static const char *path_or_value(const char *path)
{
    return path && path[0] ? path : "value";
}

static eddy_err check_decimal(const struct eddy_decimal *d, const char *text, const char *path,
                              struct eddy_error *err)
{
    if (d->zero)
        return EDDY_OK;
    if (d->ndigits > EDDY_ATTR_NUMBER_DIGITS)
        return eddy_error_set(err, EDDY_EINVAL,
                              "%.200s: number %.64s has %zu significant digits, DynamoDB keeps %d",
                              path_or_value(path), text, d->ndigits, EDDY_ATTR_NUMBER_DIGITS);
    if (d->adj < EDDY_ATTR_EXP_MIN || d->adj > EDDY_ATTR_EXP_MAX)
        return eddy_error_set(err, EDDY_EINVAL,
                              "%.200s: number %.64s out of DynamoDB range (1E-130 to 9.9E+125)",
                              path_or_value(path), text);
    return EDDY_OK;
}

eddy_err eddy_attr_check_number(const char *text, const char *path, struct eddy_error *err)
{
    struct eddy_decimal d;
    if (!eddy_decimal_parse(text, strlen(text), true, &d))
        return eddy_error_set(err, EDDY_EINVAL, "%.200s: \"%.64s\" is not a JSON number",
                              path_or_value(path), text);
    eddy_err rc = check_decimal(&d, text, path, err);
    eddy_decimal_cleanup(&d);
    return rc;
}

/* ---- JSON -> attribute values ---- */

bool eddy_utf8_valid(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        size_t extra;
        uint32_t cp;
        if (*s < 0x80) {
            s++;
            continue;
        } else if ((*s & 0xe0) == 0xc0) {
            extra = 1, cp = *s & 0x1f;
        } else if ((*s & 0xf0) == 0xe0) {
            extra = 2, cp = *s & 0x0f;
        } else if ((*s & 0xf8) == 0xf0) {
            extra = 3, cp = *s & 0x07;
        } else {
            return false;
        }
        for (size_t k = 1; k <= extra; k++) {
            if ((s[k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[k] & 0x3f);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        s += extra + 1;
    }
    return true;
}

/*
 * The path of the member being written, for error messages, is a struct
 * eddy_sstr: writing an item allocates nothing for it. Extend path by
 * ".name" or "[i]"; returns the old length to restore.
 */
static size_t path_push_n(struct eddy_sstr *p, const char *name, size_t name_len, size_t index)
{
    size_t old = p->len;
    if (name) {
        if (p->len)
            eddy_sstr_put(p, ".", 1);
        eddy_sstr_put(p, name, name_len);
    } else {
        char text[24];
        int n = snprintf(text, sizeof text, "[%zu]", index);
        eddy_sstr_put(p, text, (size_t)n);
    }
    return old;
}

static size_t path_push(struct eddy_sstr *p, const char *name, size_t index)
{
    return path_push_n(p, name, name ? strlen(name) : 0, index);
}

/* A JSON number's decimal text (its own text when Raw), checked against
 * DynamoDB's limits; *out points into buf or into j. */
static eddy_err number_text(const cJSON *j, const char *path, char buf[32], const char **out,
                            struct eddy_error *err)
{
    *out = buf;
    if (cJSON_IsRaw(j)) {
        *out = j->valuestring ? j->valuestring : "";
    } else if (!eddy_json_format_double(j->valuedouble, buf)) {
        return eddy_error_set(err, EDDY_EINVAL, "%.200s: NaN or infinity cannot be stored",
                              path_or_value(path));
    }
    return eddy_attr_check_number(*out, path, err);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Up to this many members, every pair is compared: cheaper than sorting. */
#define PAIRWISE_MAX 8

/* A member name that occurs twice in obj, or NULL. Sorting keeps it n log n. */
static const char *duplicate_name(const cJSON *obj)
{
    size_t n = 0, k = 0;
    for (const cJSON *c = obj->child; c; c = c->next)
        n++;
    if (n < 2)
        return NULL;
    const char *small[64]; /* most objects: no allocation */
    const char **names = n <= EDDY_ARRAY_SIZE(small) ? small : eddy_malloc(n * sizeof *names);
    for (const cJSON *c = obj->child; c; c = c->next)
        names[k++] = c->string;
    const char *dup = NULL;
    if (n <= PAIRWISE_MAX) {
        for (size_t i = 1; i < n && dup == NULL; i++)
            for (size_t j = 0; j < i && dup == NULL; j++)
                if (names[i][0] == names[j][0] && strcmp(names[i], names[j]) == 0)
                    dup = names[i];
        return dup; /* names is small */
    }
    qsort(names, n, sizeof *names, cmp_names);
    for (k = 1; k < n && dup == NULL; k++) {
        if (strcmp(names[k - 1], names[k]) == 0)
            dup = names[k];
    }
    if (names != small)
        free(names);
    return dup;
}

/*
 * Written straight into a JSON writer, with the DynamoDB size counted on the
 * way: the commit path renders each record once into its request. The
 * tree forms (eddy_attr_from_json, eddy_attr_item_from_json) parse what was
 * written, so there is one set of conversion rules.
 */

static size_t number_size(const char *text);

static eddy_err write_av(struct eddy_jw *w, const cJSON *j, const cJSON *keep,
                         struct eddy_sstr *path, int depth, size_t *size, struct eddy_error *err);

/* {"<type>":"s"}: the opening as one literal ("{\"N\":"), only s escaped */
#define TYPED_OPEN(t) "{\"" t "\":"
static void write_typed_n(struct eddy_jw *w, const char *open, size_t open_len, const char *s,
                          size_t n)
{
    eddy_jw_key_raw(w, open, open_len);
    eddy_jw_str(w, s, n);
    eddy_jw_close(w, '}');
}
#define write_typed(w, t, s)                                                                       \
    write_typed_n((w), TYPED_OPEN(t), sizeof TYPED_OPEN(t) - 1, (s), strlen(s))

size_t eddy_attr_integer_size(const char *digits, size_t n)
{
    if (n == 1 && digits[0] == '0')
        return number_size(digits);
    size_t first = digits[0] == '-' ? 1 : 0;
    while (n > first + 1 && digits[n - 1] == '0')
        n--; /* trailing zeros are not significant */
    return (n - first + 1) / 2 + 1;
}

static eddy_err write_number(struct eddy_jw *w, const cJSON *j, const char *path, size_t *size,
                             struct eddy_error *err)
{
    char buf[32];
    const char *t;
    double d = j->valuedouble;
    if (!cJSON_IsRaw(j) && d == floor(d) && fabs(d) < 0x1p63 && !(d == 0 && signbit(d))) {
        /* an integer: eddy_json_format_double's digits, and always within
         * DynamoDB's limits (at most 19 digits), so neither parsed nor
         * checked */
        size_t n = eddy_json_format_int((int64_t)d, buf);
        write_typed_n(w, TYPED_OPEN("N"), sizeof TYPED_OPEN("N") - 1, buf, n);
        *size += eddy_attr_integer_size(buf, n);
        return EDDY_OK;
    }
    eddy_err rc = number_text(j, path, buf, &t, err);
    if (rc)
        return rc;
    write_typed(w, "N", t);
    *size += number_size(t);
    return EDDY_OK;
}

/* The stored attribute value of map member c: by name (names.h's rule). */
static const cJSON *kept_member(const cJSON *keep, const cJSON *c)
{
    return keep ? eddy_names_find(keep, c->string) : NULL;
}

static size_t count_children(const cJSON *j)
{
    size_t n = 0;
    for (const cJSON *c = j->child; c; c = c->next)
        n++;
    return n;
}

/* The first stored element not yet taken whose value (was[k]) is e's, or
 * SIZE_MAX; taken[] is marked. */
static size_t take_equal(const cJSON *e, cJSON **was, bool *taken, size_t m)
{
    for (size_t k = 0; k < m; k++) {
        if (!taken[k] && eddy_json_equal(was[k], e)) {
            taken[k] = true;
            return k;
        }
    }
    return SIZE_MAX;
}

/*
 * The stored element each element of list j keeps the type of (an array
 * of j's length, NULL where none), matched by value before position, so
 * that an element the machine moved (a string put in front of a stored
 * binary) keeps its own type and not the type of whatever was stored where
 * it now is. In order: the element stored at the same position when its
 * value is the same; else a stored element of the same value not taken yet
 * (moved); else the one stored at its position when no element took it
 * (changed in place: its type where the new value fits, as a map member
 * keeps it); else none, and the element is new (its natural type).
 */
static const cJSON **list_kept(const cJSON *j, const cJSON *keep, const char *path)
{
    size_t n = count_children(j), m = count_children(keep);
    const cJSON **out = eddy_calloc(n ? n : 1, sizeof *out);
    const cJSON **stored = eddy_calloc(m ? m : 1, sizeof *stored);
    cJSON **was = eddy_calloc(m ? m : 1, sizeof *was);
    bool *taken = eddy_calloc(m ? m : 1, sizeof *taken);
    struct eddy_error ignored;
    size_t k = 0;
    for (const cJSON *s = keep->child; s; s = s->next, k++) {
        stored[k] = s;
        if (eddy_attr_to_json(s, path, &was[k], &ignored) != EDDY_OK)
            was[k] = NULL; /* unreadable: equal to nothing */
    }
    size_t i = 0;
    for (const cJSON *e = j->child; e && i < m; e = e->next, i++) {
        if (eddy_json_equal(was[i], e)) {
            out[i] = stored[i];
            taken[i] = true;
        }
    }
    i = 0;
    for (const cJSON *e = j->child; e; e = e->next, i++) {
        size_t at = out[i] ? SIZE_MAX : take_equal(e, was, taken, m);
        if (at != SIZE_MAX)
            out[i] = stored[at];
    }
    for (i = 0; i < n && i < m; i++) {
        if (out[i] == NULL && !taken[i])
            out[i] = stored[i]; /* no element took it: changed in place */
    }
    for (k = 0; k < m; k++)
        cJSON_Delete(was[k]);
    free(was);
    free(taken);
    free(stored);
    return out;
}

/* The members of j (a map's "name": value pairs or a list's values); *size
 * gets the names and values as an item counts them (no element overhead).
 * keep: the stored attributes (an object for a map, an array for a list)
 * whose types are kept (see eddy_attr_write_members_kept), or NULL. */
static eddy_err write_members(struct eddy_jw *w, const cJSON *j, const cJSON *keep,
                              struct eddy_sstr *path, int depth, size_t *size, size_t *count,
                              struct eddy_error *err)
{
    bool is_map = cJSON_IsObject(j);
    if (depth > EDDY_ATTR_DEPTH_MAX)
        return eddy_error_set(err, EDDY_EINVAL, "%.200s: nested deeper than DynamoDB's %d levels",
                              path_or_value(path->s), EDDY_ATTR_DEPTH_MAX);
    const char *dup = is_map ? duplicate_name(j) : NULL;
    if (dup)
        return eddy_error_set(err, EDDY_EINVAL, "%.200s: member \"%.64s\" appears twice",
                              path_or_value(path->s), dup);
    const cJSON **kept = !is_map && keep ? list_kept(j, keep, path->s) : NULL;
    size_t index = 0;
    eddy_err rc = EDDY_OK;
    for (const cJSON *c = j->child; c && rc == EDDY_OK; c = c->next, index++) {
        if (is_map && c->string[0] == '\0') { /* moto and other stores mangle them */
            rc = eddy_error_set(err, EDDY_EINVAL, "%.200s: a member has an empty name",
                                path_or_value(path->s));
            break;
        }
        size_t name_len = is_map ? strlen(c->string) : 0;
        size_t old = path_push_n(path, is_map ? c->string : NULL, name_len, index);
        if (is_map && !eddy_utf8_valid(c->string))
            rc = eddy_error_set(err, EDDY_EINVAL, "%.200s: name is not valid UTF-8", path->s);
        if (rc == EDDY_OK && is_map) {
            eddy_jw_key_n(w, c->string, name_len);
            *size += name_len;
        }
        const cJSON *k = is_map ? kept_member(keep, c) : kept ? kept[index] : NULL;
        if (rc == EDDY_OK)
            rc = write_av(w, c, k, path, depth + 1, size, err);
        eddy_sstr_truncate(path, old);
    }
    free(kept);
    *count = index;
    return rc;
}

static eddy_err write_container(struct eddy_jw *w, const cJSON *j, const cJSON *keep,
                                struct eddy_sstr *path, int depth, size_t *size,
                                struct eddy_error *err)
{
    bool is_map = cJSON_IsObject(j);
    size_t inner = 0, count = 0;
    eddy_jw_open(w, '{');
    eddy_jw_key(w, is_map ? "M" : "L");
    eddy_jw_open(w, is_map ? '{' : '[');
    eddy_err rc = write_members(w, j, keep, path, depth, &inner, &count, err);
    eddy_jw_close(w, is_map ? '}' : ']');
    eddy_jw_close(w, '}');
    *size += 3 + count + inner; /* 3 bytes, and 1 per element */
    return rc;
}

static eddy_err write_kept(struct eddy_jw *w, const cJSON *j, const cJSON *av, const char *path,
                           size_t *size, struct eddy_error *err);

/* A stored value of a type JSON does not have (B, SS, NS, BS): its type name, else NULL. */
static const char *binary_or_set(const cJSON *av)
{
    const cJSON *v = cJSON_IsObject(av) ? av->child : NULL;
    if (v == NULL || v->string == NULL)
        return NULL;
    static const char *const types[] = {"B", "SS", "NS", "BS"};
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(types); i++) {
        if (strcmp(v->string, types[i]) == 0)
            return types[i];
    }
    return NULL;
}

static eddy_err write_av(struct eddy_jw *w, const cJSON *j, const cJSON *keep,
                         struct eddy_sstr *path, int depth, size_t *size, struct eddy_error *err)
{
    const char *p = path->s;
    if (binary_or_set(keep))
        return write_kept(w, j, keep, p, size, err);
    const cJSON *kv = keep ? keep->child : NULL;
    bool keep_map = kv && kv->string && strcmp(kv->string, "M") == 0 && cJSON_IsObject(j);
    bool keep_list = kv && kv->string && strcmp(kv->string, "L") == 0 && cJSON_IsArray(j);
    if (cJSON_IsNumber(j) || cJSON_IsRaw(j))
        return write_number(w, j, p, size, err);
    if (cJSON_IsObject(j) || cJSON_IsArray(j))
        return write_container(w, j, keep_map || keep_list ? kv : NULL, path, depth, size, err);
    if (cJSON_IsString(j)) {
        if (!eddy_utf8_valid(j->valuestring))
            return eddy_error_set(err, EDDY_EINVAL, "%.200s: string is not valid UTF-8",
                                  path_or_value(p));
        size_t n = strlen(j->valuestring);
        write_typed_n(w, TYPED_OPEN("S"), sizeof TYPED_OPEN("S") - 1, j->valuestring, n);
        *size += n;
    } else if (cJSON_IsBool(j) || cJSON_IsNull(j)) {
        eddy_jw_open(w, '{');
        eddy_jw_key(w, cJSON_IsNull(j) ? "NULL" : "BOOL");
        eddy_jw_bool(w, cJSON_IsNull(j) || cJSON_IsTrue(j));
        eddy_jw_close(w, '}');
        *size += 1;
    } else {
        return eddy_error_set(err, EDDY_EINVAL, "%.200s: not a JSON value", path_or_value(p));
    }
    return EDDY_OK;
}

/* ---- keeping the stored types of binary and set attributes ---- */

static bool is_base64(const char *s)
{
    size_t n = strlen(s), pad = 0;
    if (n % 4 != 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (c == '=' && i + 2 >= n && (i + 1 == n || s[i + 1] == '='))
            pad++;
        else if (!alnum && c != '+' && c != '/')
            return false;
    }
    return pad <= 2;
}

/* Whether a and b (numbers, or strings) are the same set member. */
static bool same_member(const cJSON *a, const cJSON *b, bool numbers)
{
    return numbers ? eddy_json_number_equal(a, b) : strcmp(a->valuestring, b->valuestring) == 0;
}

/* Whether the array j holds a number DynamoDB cannot store at all. */
static bool holds_nonfinite(const cJSON *j)
{
    for (const cJSON *c = j->child; c; c = c->next) {
        if (cJSON_IsNumber(c) && !isfinite(c->valuedouble))
            return true;
    }
    return false;
}

/* Why j cannot be a set of type t ("SS", "NS", "BS"), or NULL when it can. */
static const char *set_misfit(const cJSON *j, const char *t)
{
    bool numbers = t[0] == 'N', binary = t[0] == 'B';
    if (!cJSON_IsArray(j))
        return "is not an array";
    if (j->child == NULL)
        return "is empty, and DynamoDB has no empty sets";
    for (const cJSON *c = j->child; c; c = c->next) {
        if (numbers ? !(cJSON_IsNumber(c) || cJSON_IsRaw(c)) : !cJSON_IsString(c))
            return numbers ? "holds a member that is not a number"
                           : "holds a member that is not a string";
        if (binary && !is_base64(c->valuestring))
            return "holds a member that is not base64 text";
        if (!numbers && !eddy_utf8_valid(c->valuestring))
            return "holds a string that is not valid UTF-8";
        for (const cJSON *d = j->child; d != c; d = d->next) {
            if (same_member(c, d, numbers))
                return "holds a member twice";
        }
    }
    return NULL;
}

static eddy_err write_set(struct eddy_jw *w, const cJSON *j, const char *t, const char *path,
                          size_t *size, struct eddy_error *err)
{
    eddy_jw_open(w, '{');
    eddy_jw_key(w, t);
    eddy_jw_open(w, '[');
    for (const cJSON *c = j->child; c; c = c->next) {
        if (t[0] != 'N') {
            eddy_jw_cstr(w, c->valuestring);
            *size += strlen(c->valuestring);
            continue;
        }
        char buf[32];
        const char *text;
        eddy_err rc = number_text(c, path, buf, &text, err);
        if (rc)
            return rc;
        eddy_jw_cstr(w, text);
        *size += number_size(text);
    }
    eddy_jw_close(w, ']');
    eddy_jw_close(w, '}');
    return EDDY_OK;
}

static const char *type_words(const char *t)
{
    return t[0] == 'B'   ? (t[1] ? "a binary set (BS)" : "binary (B)")
           : t[0] == 'S' ? "a string set (SS)"
                         : "a number set (NS)";
}

/*
 * j where the stored value av is B, SS, NS or BS: written as stored when the
 * machine left it as it read it, else in the stored type when j fits it,
 * else refused. "Left it" is exact equality (eddy_json_equal): a number one
 * ulp away is a change, and writing the stored value back would lose it.
 */
static eddy_err write_kept(struct eddy_jw *w, const cJSON *j, const cJSON *av, const char *path,
                           size_t *size, struct eddy_error *err)
{
    const char *t = binary_or_set(av);
    cJSON *was = NULL;
    struct eddy_error ignored;
    bool same = eddy_attr_to_json(av, path, &was, &ignored) == EDDY_OK && eddy_json_equal(was, j);
    cJSON_Delete(was);
    if (same) {
        char *text = cJSON_PrintUnformatted(av);
        if (text == NULL)
            abort(); /* eddy's out-of-memory policy */
        eddy_jw_raw(w, text, strlen(text));
        free(text);
        *size += eddy_attr_value_size(av);
        return EDDY_OK;
    }
    const char *misfit = NULL;
    if (strcmp(t, "B") == 0) {
        misfit = !cJSON_IsString(j)           ? "is not a string"
                 : !is_base64(j->valuestring) ? "is not base64 text"
                                              : NULL;
        if (misfit == NULL) {
            write_typed(w, "B", j->valuestring);
            *size += (strlen(j->valuestring) + 3) / 4 * 3; /* as eddy_attr_value_size counts */
            return EDDY_OK;
        }
    } else if (t[0] == 'N' && cJSON_IsArray(j) && holds_nonfinite(j)) {
        /* no number at all, whatever the type: said before members are compared */
        return eddy_error_set(err, EDDY_EINVAL, "%.200s: NaN or infinity cannot be stored",
                              path_or_value(path));
    } else if ((misfit = set_misfit(j, t)) == NULL) {
        return write_set(w, j, t, path, size, err);
    }
    return eddy_error_set(err, EDDY_EINVAL,
                          "%.200s: stored as %s, and the new value %s; eddy keeps a stored "
                          "attribute's type rather than change it",
                          path_or_value(path), type_words(t), misfit);
}

eddy_err eddy_attr_write_members(struct eddy_jw *w, const cJSON *object, size_t *size,
                                 struct eddy_error *err)
{
    return eddy_attr_write_members_kept(w, object, NULL, size, err);
}

eddy_err eddy_attr_write_members_kept(struct eddy_jw *w, const cJSON *object, const cJSON *keep,
                                      size_t *size, struct eddy_error *err)
{
    if (!cJSON_IsObject(object))
        return eddy_error_set(err, EDDY_EINVAL, "an item must be a JSON object");
    for (const cJSON *c = object->child; c; c = c->next) {
        if (c->string[0] == '\0')
            return eddy_error_set(err, EDDY_EINVAL, "an attribute name may not be empty");
    }
    struct eddy_sstr path;
    eddy_sstr_init(&path);
    size_t count = 0;
    eddy_err rc =
        write_members(w, object, cJSON_IsObject(keep) ? keep : NULL, &path, 0, size, &count, err);
    eddy_sstr_cleanup(&path);
    return rc;
}

/* The tree form of what w holds; w is cleaned up. */
static eddy_err written_tree(struct eddy_jw *w, eddy_err rc, cJSON **out)
{
    *out = NULL;
    if (rc == EDDY_OK && w->rc != EDDY_OK)
        rc = w->rc;
    if (rc == EDDY_OK) {
        *out = cJSON_ParseWithLength(w->buf.ptr, w->buf.len);
        if (*out == NULL)
            abort(); /* the text was just written: only memory can fail here */
    }
    eddy_jw_cleanup(w);
    return rc;
}

eddy_err eddy_attr_from_json(const cJSON *json, const char *path, cJSON **out,
                             struct eddy_error *err)
{
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    struct eddy_sstr p;
    eddy_sstr_init(&p);
    eddy_sstr_put(&p, path ? path : "", path ? strlen(path) : 0);
    size_t size = 0;
    eddy_err rc = write_av(&w, json, NULL, &p, 1, &size, err);
    eddy_sstr_cleanup(&p);
    return written_tree(&w, rc, out);
}

eddy_err eddy_attr_item_from_json(const cJSON *object, cJSON **out, struct eddy_error *err)
{
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    eddy_jw_open(&w, '{');
    size_t size = 0;
    eddy_err rc = eddy_attr_write_members(&w, object, &size, err);
    eddy_jw_close(&w, '}');
    return written_tree(&w, rc, out);
}

size_t eddy_attr_number_size(const char *text)
{
    return number_size(text);
}

/* ---- attribute values -> JSON ---- */

/* The JSON text of a canonical decimal: "-d.dddE+x". */
static char *decimal_text(const struct eddy_decimal *d)
{
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    if (d->zero) {
        eddy_buf_puts(&b, "0");
    } else {
        eddy_buf_putf(&b, "%s%c", d->neg ? "-" : "", d->digits[0]);
        if (d->ndigits > 1)
            eddy_buf_putf(&b, ".%s", d->digits + 1);
        eddy_buf_putf(&b, "E%+ld", d->adj);
    }
    return eddy_buf_take(&b, NULL);
}

static eddy_err number_from_text(const char *text, const char *path, cJSON **out,
                                 struct eddy_error *err)
{
    struct eddy_decimal d;
    size_t n = strlen(text);
    if (!eddy_decimal_parse(text, n, false, &d))
        return eddy_error_set(err, EDDY_EPARSE, "%.200s: N value \"%.64s\" is not a number",
                              path_or_value(path), text);
    double v;
    if (eddy_decimal_fits_double(text, &d, &v)) {
        *out = cJSON_CreateNumber(v);
    } else {
        struct eddy_decimal strict;
        bool is_json = eddy_decimal_parse(text, n, true, &strict);
        eddy_decimal_cleanup(&strict);
        char *t = is_json ? eddy_strdup(text) : decimal_text(&d);
        *out = cJSON_CreateRaw(t);
        free(t);
    }
    eddy_decimal_cleanup(&d);
    return *out ? EDDY_OK : EDDY_ENOMEM;
}

static eddy_err from_av(const cJSON *av, struct eddy_sstr *path, cJSON **out,
                        struct eddy_error *err);

/* M, L and the sets: each element converted with conv ("N", "S" or NULL for any AV). */
static eddy_err container_from_av(const cJSON *v, bool is_map, const char *elem,
                                  struct eddy_sstr *path, cJSON **out, struct eddy_error *err)
{
    const char *p = path_or_value(path->s);
    if (is_map ? !cJSON_IsObject(v) : !cJSON_IsArray(v))
        return eddy_error_set(err, EDDY_EPARSE, "%.200s: malformed %s", p, is_map ? "map" : "list");
    cJSON *body = is_map ? cJSON_CreateObject() : cJSON_CreateArray();
    size_t index = 0;
    for (const cJSON *c = v->child; c; c = c->next, index++) {
        size_t old = path_push(path, is_map ? c->string : NULL, index);
        cJSON *j = NULL;
        eddy_err rc;
        if (elem == NULL)
            rc = from_av(c, path, &j, err);
        else if (!cJSON_IsString(c))
            rc = eddy_error_set(err, EDDY_EPARSE, "%.200s: set member is not a string", path->s);
        else if (strcmp(elem, "N") == 0)
            rc = number_from_text(c->valuestring, path->s, &j, err);
        else
            rc = (j = cJSON_CreateString(c->valuestring)) ? EDDY_OK : EDDY_ENOMEM;
        eddy_sstr_truncate(path, old);
        if (rc) {
            cJSON_Delete(body);
            return rc;
        }
        if (is_map)
            cJSON_AddItemToObject(body, c->string, j);
        else
            cJSON_AddItemToArray(body, j);
    }
    *out = body;
    return EDDY_OK;
}

static eddy_err from_av(const cJSON *av, struct eddy_sstr *path, cJSON **out,
                        struct eddy_error *err)
{
    const char *p = path_or_value(path->s);
    *out = NULL;
    const cJSON *v = cJSON_IsObject(av) ? av->child : NULL;
    if (v == NULL || v->next != NULL)
        return eddy_error_set(err, EDDY_EPARSE, "%.200s: not an attribute value", p);
    const char *t = v->string;
    if (strcmp(t, "M") == 0 || strcmp(t, "L") == 0)
        return container_from_av(v, t[0] == 'M', NULL, path, out, err);
    if (strcmp(t, "SS") == 0 || strcmp(t, "BS") == 0)
        return container_from_av(v, false, "S", path, out, err);
    if (strcmp(t, "NS") == 0)
        return container_from_av(v, false, "N", path, out, err);
    if (strcmp(t, "BOOL") == 0 && cJSON_IsBool(v))
        *out = cJSON_CreateBool(cJSON_IsTrue(v));
    else if (strcmp(t, "NULL") == 0)
        *out = cJSON_CreateNull();
    else if (!cJSON_IsString(v) || (strcmp(t, "S") && strcmp(t, "N") && strcmp(t, "B")))
        return eddy_error_set(err, EDDY_EPARSE, "%.200s: unsupported attribute value type %.16s", p,
                              t);
    else if (t[0] == 'N')
        return number_from_text(v->valuestring, path->s, out, err);
    else
        *out = cJSON_CreateString(v->valuestring);
    return *out ? EDDY_OK : EDDY_ENOMEM;
}

eddy_err eddy_attr_to_json(const cJSON *av, const char *path, cJSON **out, struct eddy_error *err)
{
    struct eddy_sstr p;
    eddy_sstr_init(&p);
    if (path)
        eddy_sstr_put(&p, path, strlen(path));
    eddy_err rc = from_av(av, &p, out, err);
    eddy_sstr_cleanup(&p);
    return rc;
}

eddy_err eddy_attr_item_to_json(const cJSON *item, cJSON **out, struct eddy_error *err)
{
    *out = NULL;
    if (!cJSON_IsObject(item))
        return eddy_error_set(err, EDDY_EPARSE, "an item must be a JSON object");
    struct eddy_sstr p;
    eddy_sstr_init(&p);
    eddy_err rc = container_from_av(item, true, NULL, &p, out, err);
    eddy_sstr_cleanup(&p);
    return rc;
}

/* ---- sizes ---- */

static size_t number_size(const char *text)
{
    struct eddy_decimal d;
    if (!eddy_decimal_parse(text, strlen(text), false, &d))
        return strlen(text) + 1;
    size_t n = (d.ndigits + 1) / 2 + 1;
    eddy_decimal_cleanup(&d);
    return n;
}

static size_t elements_size(const cJSON *v, bool names, bool overhead)
{
    size_t n = 0;
    for (const cJSON *c = v->child; c; c = c->next) {
        if (names && c->string)
            n += strlen(c->string);
        if (overhead)
            n += 1 + eddy_attr_value_size(c);
        else if (cJSON_IsString(c))
            n += strlen(c->valuestring);
    }
    return n;
}

size_t eddy_attr_value_size(const cJSON *av)
{
    const cJSON *v = cJSON_IsObject(av) ? av->child : NULL;
    if (v == NULL || v->string == NULL)
        return 0;
    const char *t = v->string;
    if (strcmp(t, "M") == 0 || strcmp(t, "L") == 0)
        return 3 + elements_size(v, t[0] == 'M', true);
    if (strcmp(t, "SS") == 0 || strcmp(t, "BS") == 0)
        return elements_size(v, false, false); /* base64 text outweighs its bytes */
    if (strcmp(t, "NS") == 0) {
        size_t n = 0;
        for (const cJSON *c = v->child; c; c = c->next)
            n += cJSON_IsString(c) ? number_size(c->valuestring) : 0;
        return n;
    }
    if (!cJSON_IsString(v))
        return 1; /* BOOL, NULL */
    size_t len = strlen(v->valuestring);
    if (strcmp(t, "N") == 0)
        return number_size(v->valuestring);
    if (strcmp(t, "B") == 0)
        return (len + 3) / 4 * 3;
    return len;
}

size_t eddy_attr_item_size(const cJSON *item)
{
    size_t n = 0;
    for (const cJSON *c = item ? item->child : NULL; c; c = c->next)
        n += (c->string ? strlen(c->string) : 0) + eddy_attr_value_size(c);
    return n;
}

/* Whether av holds B, SS, NS or BS, at any depth. */
static bool holds_binary_or_set(const cJSON *av)
{
    if (binary_or_set(av))
        return true;
    const cJSON *v = cJSON_IsObject(av) ? av->child : NULL;
    if (v == NULL || v->string == NULL || (strcmp(v->string, "M") && strcmp(v->string, "L")))
        return false;
    for (const cJSON *c = v->child; c; c = c->next) {
        if (holds_binary_or_set(c))
            return true;
    }
    return false;
}

cJSON *eddy_attr_item_keepers(const cJSON *item)
{
    cJSON *out = NULL;
    for (const cJSON *c = cJSON_IsObject(item) ? item->child : NULL; c; c = c->next) {
        if (c->string == NULL || !holds_binary_or_set(c))
            continue;
        if (out == NULL)
            out = cJSON_CreateObject();
        cJSON_AddItemToObject(out, c->string, cJSON_Duplicate(c, true));
    }
    return out;
}
