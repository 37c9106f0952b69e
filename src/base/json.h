/*
 * json.h - JSON text without trees where none is needed, and numbers kept
 * exact.
 *
 * The writer (struct eddy_jw) puts request bodies and records straight into
 * one buffer. The decimal form (struct eddy_decimal) is the one canonical
 * form every decision about a number goes through, so "1.50", "15e-1" and the
 * double 1.5 compare equal. eddy_json_parse is the JSON reader for anything
 * whose numbers must stay exact (event bodies): cJSON parses numbers into
 * doubles, so it re-reads the number tokens from the text and turns those a
 * double would round into Raw items holding the original text.
 */
#ifndef EDDY_BASE_JSON_H
#define EDDY_BASE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "base/err.h"

/*
 * A small JSON writer for request bodies and records made of strings and
 * numbers: straight into one buffer, no tree. Commas are placed by the
 * writer; an error (the buffer's cap) sticks in rc and is checked once.
 */
struct eddy_jw {
    struct eddy_buf buf;
    eddy_err rc;
    bool comma; /* a value precedes at this level */
};
void eddy_jw_init(struct eddy_jw *w, size_t max);
/* The first block eddy_jw_init allocates: most bodies and records fit. */
#define EDDY_JW_BLOCK 1024
/* eddy_jw_init, writing into block (EDDY_JW_BLOCK bytes from malloc, the
 * writer's from now on) instead of a new one. NULL: eddy_jw_init. */
void eddy_jw_init_block(struct eddy_jw *w, size_t max, char *block);
void eddy_jw_cleanup(struct eddy_jw *w);
void eddy_jw_open(struct eddy_jw *w, char brace);  /* '{' or '[' */
void eddy_jw_close(struct eddy_jw *w, char brace); /* '}' or ']' */
/* A string value: the runs that need no escape are copied whole (found
 * eight bytes at a time); '"', '\\' and the controls are escaped, every
 * other byte (UTF-8 too) is kept as it is. */
void eddy_jw_str(struct eddy_jw *w, const char *s, size_t n);
void eddy_jw_key_n(struct eddy_jw *w, const char *key, size_t n);
/* A key given as its JSON text with the quotes and the colon ("\"Id\":"),
 * copied as it is: see EDDY_JW_KEY. */
void eddy_jw_key_raw(struct eddy_jw *w, const char *quoted, size_t n);
/* A key that is a string literal needing no escape, written as one
 * preformatted literal. */
#define EDDY_JW_KEY(w, lit) eddy_jw_key_raw((w), "\"" lit "\":", sizeof("\"" lit "\":") - 1)
void eddy_jw_int(struct eddy_jw *w, int64_t v);
void eddy_jw_bool(struct eddy_jw *w, bool v);
/* A cJSON tree written as JSON text, straight into the buffer: the same
 * value cJSON_PrintUnformatted gives, but numbers exact (the shortest text
 * that reads back as the same double, as eddy_json_format_double writes
 * it; a Raw item as its text) and strings by eddy_jw_str (so \b and \f
 * come out as \u0008 and \u000c). */
void eddy_jw_tree(struct eddy_jw *w, const cJSON *v);
/* A value that is JSON text already (an item rendered earlier), as it is. */
void eddy_jw_raw(struct eddy_jw *w, const char *json, size_t n);
/* The C string forms are inline: a literal's length is known where it is
 * written, so no strlen runs for it. */
static inline void eddy_jw_key(struct eddy_jw *w, const char *key)
{
    eddy_jw_key_n(w, key, strlen(key));
}
static inline void eddy_jw_cstr(struct eddy_jw *w, const char *s)
{
    eddy_jw_str(w, s, strlen(s));
}
/* key and string value together */
static inline void eddy_jw_kstr(struct eddy_jw *w, const char *key, const char *s)
{
    eddy_jw_key(w, key);
    eddy_jw_cstr(w, s);
}
static inline void eddy_jw_kint(struct eddy_jw *w, const char *key, int64_t v)
{
    eddy_jw_key(w, key);
    eddy_jw_int(w, v);
}

/* The same with a key that is a string literal (EDDY_JW_KEY). */
#define EDDY_JW_KSTR(w, lit, s) (EDDY_JW_KEY(w, lit), eddy_jw_cstr((w), (s)))
#define EDDY_JW_KINT(w, lit, v) (EDDY_JW_KEY(w, lit), eddy_jw_int((w), (v)))

/* The decimal text of v (INT64_MIN too) and a NUL; returns its length. */
size_t eddy_json_format_int(int64_t v, char out[24]);

/* A decimal number: value = [-]d1.d2d3... x 10^adj. Numbers of up to 47
 * digits (DynamoDB's limit is 38) keep them in small, without allocating;
 * so a decimal is not copied by value. */
struct eddy_decimal {
    bool neg;
    bool zero;
    char *digits; /* significant digits, no leading or trailing zeros */
    size_t ndigits;
    long adj;
    char small[48];
};

/*
 * Parse s[0..n) as a decimal. strict: JSON's grammar exactly. Otherwise
 * also a leading '+', leading zeros, ".5" and "5." (other writers of numbers).
 * On success eddy_decimal_cleanup(d) must follow (on failure it may).
 */
bool eddy_decimal_parse(const char *s, size_t n, bool strict, struct eddy_decimal *d);
void eddy_decimal_cleanup(struct eddy_decimal *d);
bool eddy_decimal_equal(const struct eddy_decimal *a, const struct eddy_decimal *b);
/*
 * True when text (a decimal of value v) survives the trip through a double:
 * the shortest text of the double names the same decimal value. *out gets
 * the double.
 */
bool eddy_decimal_fits_double(const char *text, const struct eddy_decimal *v, double *out);
/*
 * The text of a double: shortest round-trip form, integers below 1e21
 * without exponent. out must hold 32 bytes. Returns false for NaN and
 * infinities.
 */
bool eddy_json_format_double(double d, char out[32]);

/*
 * Whether a and b are the same JSON value exactly, for every decision that
 * a value changed: numbers by their decimal value (a Raw item's text, a
 * double's shortest text; "1.50" and 1.5 are equal, 0.3 and
 * 0.30000000000000004 are not, NaN equals nothing), strings byte for byte,
 * arrays element by element, objects by member names (case counts) in any
 * order. cJSON_Compare is not exact: it takes numbers within about an ulp
 * as equal, and a Raw item never equal to a number. False when either is
 * NULL.
 */
bool eddy_json_equal(const cJSON *a, const cJSON *b);
/* The same for two numbers (cJSON numbers or Raw items holding one). */
bool eddy_json_number_equal(const cJSON *a, const cJSON *b);

/*
 * Make cJSON allocate through eddy_malloc (base/alloc.h), so cJSON too aborts
 * on out of memory instead of returning NULL, and through an arena while one
 * is entered (below). Once, at process start, before any cJSON call;
 * eddy_main does it (entering an arena does it too).
 */
void eddy_json_use_eddy_alloc(void);

/*
 * An arena for cJSON trees that live as long as one unit of work (a reply, a
 * message body): between eddy_json_arena_enter and _leave, on this thread,
 * every cJSON allocation comes from the arena, one bump of a pointer, and
 * cJSON_Delete of what the arena holds does nothing; cleanup then frees the
 * whole tree at once instead of node by node. Its chunks go back to a small
 * per-thread cache, so a steady stream of replies allocates nothing.
 *
 * The rules that keep it safe: only parsing runs while an arena is entered;
 * a tree in an arena is never cJSON_Delete'd, detached and kept, or linked
 * into a tree outside it (copy with cJSON_Duplicate, outside the arena,
 * what must outlive it); after cleanup nothing of it is touched.
 */
struct eddy_json_chunk;
struct eddy_json_arena {
    struct eddy_json_chunk *chunks; /* newest first */
    char *cur;
    char *end;
    size_t first; /* the first chunk's size */
    size_t next;  /* size of the next chunk to ask for */
    bool exact;   /* the first chunk is first bytes, not rounded up */
};
/* first: a guess of the bytes the trees will take (0: a small default).
 * Chunks are rounded up to a power of two, so they can be cached. */
void eddy_json_arena_init(struct eddy_json_arena *a, size_t first);
/* An arena whose first chunk is size bytes exactly, for what is kept a
 * while and whose size is known (eddy_json_copy_size): it is allocated
 * for a and freed with it, never cached. More than size still works (a
 * further chunk). */
void eddy_json_arena_init_exact(struct eddy_json_arena *a, size_t size);
/* Free every tree in a (the chunks go back to the cache); a is empty again. */
void eddy_json_arena_cleanup(struct eddy_json_arena *a);
/* cJSON allocates from a on this thread until the matching leave; returns
 * the arena entered before, to give to leave. */
struct eddy_json_arena *eddy_json_arena_enter(struct eddy_json_arena *a);
void eddy_json_arena_leave(struct eddy_json_arena *prev);
/* n bytes from the arena itself, 8-aligned (strings that live with the tree). */
void *eddy_json_arena_alloc(struct eddy_json_arena *a, size_t n);
/* s[0..n) and a NUL, copied into the arena. */
char *eddy_json_arena_strndup(struct eddy_json_arena *a, const char *s, size_t n);
/* The bytes eddy_json_arena_strndup takes from an arena for n bytes. */
size_t eddy_json_arena_str_size(size_t n);
/* The bytes eddy_json_arena_copy takes from an arena for v and all below it. */
size_t eddy_json_copy_size(const cJSON *v);
/* A deep copy of v (its key, strings and Raw texts too) in a; its next and
 * prev are NULL. Children keep cJSON's links (the first child's prev is the
 * last child). Nesting is bounded by the reader's (CJSON_NESTING_LIMIT). */
cJSON *eddy_json_arena_copy(struct eddy_json_arena *a, const cJSON *v);

/*
 * Parse len bytes of JSON text. Numbers a double cannot hold exactly become
 * cJSON Raw items with their text. Refuses what is not strict JSON
 * (EDDY_EPARSE, with the offset). *out is the caller's to cJSON_Delete.
 */
EDDY_MUST_USE eddy_err eddy_json_parse(const char *text, size_t len, cJSON **out,
                                       struct eddy_error *err);
/* The same, the tree (and what the parse needs meanwhile) in arena a. */
EDDY_MUST_USE eddy_err eddy_json_parse_in(struct eddy_json_arena *a, const char *text, size_t len,
                                          cJSON **out, struct eddy_error *err);

/*
 * A pull reader of JSON text, for replies read into plain fields without a
 * tree. It walks the text once; the caller asks for what it expects next
 * and skips the rest. The first fault sticks (rc, at): every later call
 * returns false, so a reading loop needs one check at the end.
 *
 * Strict JSON (RFC 8259): no control characters in strings, the \u escapes
 * checked (a lone surrogate is refused, as cJSON does), numbers by JSON's
 * grammar, nothing but white space after the value, at most
 * EDDY_JR_MAX_DEPTH levels. As in cJSON, white space is any byte up to
 * 0x20, and UTF-8 is not checked.
 */
#define EDDY_JR_MAX_DEPTH 64

enum eddy_jr_type {
    EDDY_JR_END,
    EDDY_JR_OBJECT,
    EDDY_JR_ARRAY,
    EDDY_JR_STRING,
    EDDY_JR_NUMBER,
    EDDY_JR_BOOL,
    EDDY_JR_NULL,
    EDDY_JR_BAD
};

struct eddy_jr {
    const char *text;
    const char *p;
    const char *end;
    eddy_err rc; /* EDDY_EPARSE after the first fault */
    size_t at;   /* the offset of the fault */
    int depth;
    bool first; /* no member or element read yet at this level */
};

/* A string as it is in the text, between its quotes; escaped: it holds a
 * backslash (eddy_jr_unescape gives its value). */
struct eddy_jr_str {
    const char *ptr;
    size_t len;
    bool escaped;
};

void eddy_jr_init(struct eddy_jr *r, const char *text, size_t len);
/* The type of the value that comes next (white space skipped). */
enum eddy_jr_type eddy_jr_peek(struct eddy_jr *r);
/* Enter the object or array that comes next; false (a fault) when another
 * value comes. */
bool eddy_jr_object(struct eddy_jr *r);
bool eddy_jr_array(struct eddy_jr *r);
/* The next member's key of the object entered, its value next; false at
 * the closing brace (consumed) or on a fault. */
bool eddy_jr_member(struct eddy_jr *r, struct eddy_jr_str *key);
/* Whether another element of the array entered follows; false at the
 * closing bracket (consumed) or on a fault. */
bool eddy_jr_element(struct eddy_jr *r);
/* The string that comes next; false (a fault) for another value. */
bool eddy_jr_string(struct eddy_jr *r, struct eddy_jr_str *s);
/* The number that comes next, as its text. */
bool eddy_jr_number(struct eddy_jr *r, struct eddy_str *text);
/* Skip the value that comes next, whole (its text is checked all the same). */
bool eddy_jr_skip(struct eddy_jr *r);
/* After the top value: nothing but white space may follow. EDDY_OK or
 * EDDY_EPARSE. */
eddy_err eddy_jr_finish(struct eddy_jr *r);
/* Whether key s names the literal lit (an escaped key is decoded first, and
 * a \u0000 ends it, as it ends a cJSON key). */
bool eddy_jr_str_eq(const struct eddy_jr_str *s, const char *lit, size_t n);
#define EDDY_JR_KEY_IS(s, lit) eddy_jr_str_eq((s), (lit), sizeof(lit) - 1)
/*
 * A field a reply is read into: the first member of its name, as a lookup
 * in a tree finds it. type EDDY_JR_END: none yet; s: a string's text
 * (between its quotes), or a number's or a boolean's.
 */
struct eddy_jr_field {
    enum eddy_jr_type type;
    struct eddy_jr_str s;
};
/* The value that comes next into f when f has none yet; skipped either way. */
void eddy_jr_take(struct eddy_jr *r, struct eddy_jr_field *f);
/* The object that comes next read into fields by a table: the member
 * named names[i] into fields[i] (eddy_jr_take: the first of its name), any
 * other member skipped; the n fields are cleared first. False, the value
 * skipped, when it is not an object. */
bool eddy_jr_fields(struct eddy_jr *r, const struct eddy_str *names, size_t n,
                    struct eddy_jr_field *fields);
/* A string field's value as a C string (malloc'd; a \u0000 ends it, as it
 * ends a cJSON string); NULL for any other type. */
char *eddy_jr_field_strdup(const struct eddy_jr_field *f);
/* A number field's value, as cJSON reads it (strtod); 0 for another type. */
double eddy_jr_field_double(const struct eddy_jr_field *f);
/* Whether the field is the literal true. */
bool eddy_jr_field_true(const struct eddy_jr_field *f);
/* The value of string s into out (s->len bytes are always enough; no NUL
 * added); returns its length. The string was checked when it was read. */
size_t eddy_jr_unescape(const struct eddy_jr_str *s, char *out);

#endif
