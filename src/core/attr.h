/*
 * attr.h - exact JSON <-> DynamoDB attribute values, and item sizes.
 *
 * Attribute values are handled in their JSON wire form, as cJSON trees, the
 * way the DynamoDB client sends and receives them: {"S":"x"}, {"N":"12"},
 * {"M":{...}}. An "item" is a JSON object of attribute name -> value.
 *
 * JSON -> attribute value:
 *   object -> M, array -> L, string -> S, true/false -> BOOL, null -> NULL,
 *   number -> N holding decimal text. A cJSON number (a double) is written in
 *   the shortest text that reads back as the same double (integers up to
 *   1e21 without exponent, so 2^53 reads as "9007199254740992"). A cJSON Raw
 *   item holding a JSON number (what eddy_json_parse makes of numbers a
 *   double cannot hold) is written verbatim. A number DynamoDB cannot hold
 *   exactly is refused, never rounded: more than 38 significant digits, a
 *   magnitude outside 1E-130 .. 9.99..9E+125, NaN or infinity.
 *
 * Attribute value -> JSON:
 *   N -> a cJSON number when a double holds the value exactly (in the sense
 *   that the shortest text of the double names the same decimal value, so
 *   "0.1" is a number), else a Raw item with the decimal text; S, BOOL, NULL,
 *   M, L as expected. Types written by other tools are read too: SS -> array
 *   of strings, NS -> array of numbers, B -> the base64 string as is, BS ->
 *   array of base64 strings; eddy_attr_write_members_kept writes them back
 *   in their stored types.
 *
 * Every error names the path of the value (e.g. "balance",
 * "items[3].price") and the reason.
 *
 * Event bodies are read with eddy_json_parse (base/json.h), which keeps
 * their numbers exact.
 */
#ifndef EDDY_CORE_ATTR_H
#define EDDY_CORE_ATTR_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/err.h"
#include "base/json.h"

/* DynamoDB's limits on numbers and on nesting. */
#define EDDY_ATTR_NUMBER_DIGITS 38
#define EDDY_ATTR_EXP_MIN (-130) /* smallest magnitude 1E-130 */
#define EDDY_ATTR_EXP_MAX 125    /* largest magnitude 9.99..9E+125 */
#define EDDY_ATTR_DEPTH_MAX 32

/* One JSON value -> one attribute value. path names it in errors (may be ""). */
EDDY_MUST_USE eddy_err eddy_attr_from_json(const cJSON *json, const char *path, cJSON **out,
                                           struct eddy_error *err);
/* A JSON object -> an item (the object's members become attributes). */
EDDY_MUST_USE eddy_err eddy_attr_item_from_json(const cJSON *object, cJSON **out,
                                                struct eddy_error *err);
/*
 * The same conversion as eddy_attr_item_from_json, written as text: the
 * object's members as "name": attribute-value pairs into w (the caller
 * writes the braces), with their DynamoDB item size added to *size.
 */
EDDY_MUST_USE eddy_err eddy_attr_write_members(struct eddy_jw *w, const cJSON *object, size_t *size,
                                               struct eddy_error *err);
/*
 * The same, keeping stored types. keep is the item as it was read (or the
 * part eddy_attr_item_keepers returns): a member whose stored attribute
 * (found by name as core/names.h matches names: exact, else without regard
 * to case) is B, SS, NS or BS, at any depth inside M and L (a list's
 * elements matched by value before position, so an element the machine
 * moved keeps its own type), is written
 *   - as it was stored, when it converts to the same JSON (the machine left
 *     it alone);
 *   - else in the stored type when the new value fits it: B from base64
 *     text, SS from distinct strings, NS from distinct numbers, BS from
 *     distinct base64 strings, a set never empty;
 *   - else refused (EDDY_EINVAL naming the field and the stored type):
 *     eddy does not change a stored attribute's type behind the back of
 *     the program that wrote it.
 * Every other member is converted as eddy_attr_write_members does.
 */
EDDY_MUST_USE eddy_err eddy_attr_write_members_kept(struct eddy_jw *w, const cJSON *object,
                                                    const cJSON *keep, size_t *size,
                                                    struct eddy_error *err);
/*
 * The attributes of item whose values hold B, SS, NS or BS at any depth,
 * copied (all eddy_attr_write_members_kept needs of the stored item), or
 * NULL when there are none, which is the common case.
 */
cJSON *eddy_attr_item_keepers(const cJSON *item);
/* DynamoDB's size of the number in text (see eddy_attr_item_size). */
size_t eddy_attr_number_size(const char *text);
/* The same for digits[0..n), an integer as eddy_json_format_int writes it
 * (an optional '-', no leading zeros), without parsing it. */
size_t eddy_attr_integer_size(const char *digits, size_t n);
/* One attribute value -> JSON. */
EDDY_MUST_USE eddy_err eddy_attr_to_json(const cJSON *av, const char *path, cJSON **out,
                                         struct eddy_error *err);
/* An item -> a JSON object. */
EDDY_MUST_USE eddy_err eddy_attr_item_to_json(const cJSON *item, cJSON **out,
                                              struct eddy_error *err);

/*
 * Check that text is a JSON number DynamoDB can hold exactly; on failure
 * EDDY_EINVAL with "<path>: number <text> ..." in err.
 */
EDDY_MUST_USE eddy_err eddy_attr_check_number(const char *text, const char *path,
                                              struct eddy_error *err);

/* True when the NUL-terminated s is well-formed UTF-8 (no surrogates). */
bool eddy_utf8_valid(const char *s);

/*
 * DynamoDB's size of an item or a value, by AWS's rules: names and strings
 * by their UTF-8 bytes, numbers 1 byte per 2 significant digits plus 1,
 * binary by decoded bytes, BOOL and NULL 1 byte, M and L 3 bytes plus 1
 * per element. Rounded up wherever AWS says "approximately", so a check
 * against 400 KB never passes an item DynamoDB would refuse.
 */
size_t eddy_attr_item_size(const cJSON *item);
size_t eddy_attr_value_size(const cJSON *av);

#endif
