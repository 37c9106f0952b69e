/*
 * json.c - JSON text in and out without trees where none is needed (see
 * json.h): the writer, the canonical decimal form and the strict reader.
 *
 * Doubles are formatted and read with snprintf/strtod, which assume the C
 * locale's decimal point; eddy never calls setlocale().
 */
#include "base/json.h"

#include <assert.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

/* The longest number cJSON 1.7 parses itself; longer ones are patched in. */
#define CJSON_NUMBER_MAX 63
/* Exponents are saturated here: anything near it is out of range anyway. */
#define EXP_SATURATE 1000000000L

/* ---- the JSON writer ---- */

void eddy_jw_init(struct eddy_jw *w, size_t max)
{
    eddy_jw_init_block(w, max, NULL);
}

void eddy_jw_init_block(struct eddy_jw *w, size_t max, char *block)
{
    eddy_buf_init(&w->buf, max);
    w->comma = false;
    w->rc = EDDY_OK;
    if (block != NULL && max >= EDDY_JW_BLOCK - 1) {
        w->buf.ptr = block;
        w->buf.cap = EDDY_JW_BLOCK;
        block[0] = '\0';
        return;
    }
    free(block);
    /* Bodies and records mostly fit in 1 KB: growing from a few bytes would
     * cost a realloc and a copy at every doubling. 1023 bytes and the NUL
     * make one 1 KiB block, which glibc's per-thread cache serves (1 KiB
     * and its NUL took a 2 KiB block, past that cache). Under a smaller
     * cap, the cap: the first write past it reports the limit. */
    size_t first = EDDY_JW_BLOCK - 1;
    w->rc = eddy_buf_reserve(&w->buf, w->buf.max < first ? w->buf.max : first);
    assert(w->rc == EDDY_OK); /* len is 0 and n is at most the cap */
}

void eddy_jw_cleanup(struct eddy_jw *w)
{
    eddy_buf_cleanup(&w->buf);
}

static void jw_put(struct eddy_jw *w, const char *p, size_t n)
{
    if (w->rc == EDDY_OK)
        w->rc = eddy_buf_append(&w->buf, p, n);
}

static void jw_sep(struct eddy_jw *w)
{
    if (w->comma)
        jw_put(w, ",", 1);
    w->comma = true;
}

void eddy_jw_open(struct eddy_jw *w, char brace)
{
    jw_sep(w);
    jw_put(w, &brace, 1);
    w->comma = false;
}

void eddy_jw_close(struct eddy_jw *w, char brace)
{
    jw_put(w, &brace, 1);
    w->comma = true;
}

void eddy_jw_key_n(struct eddy_jw *w, const char *key, size_t n)
{
    eddy_jw_str(w, key, n);
    jw_put(w, ":", 1);
    w->comma = false;
}

void eddy_jw_key_raw(struct eddy_jw *w, const char *quoted, size_t n)
{
    jw_sep(w);
    jw_put(w, quoted, n);
    w->comma = false;
}

/* Bytes a JSON string cannot hold as they are: the controls, '"' and '\\'. */
static const unsigned char needs_escape[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1,
    [0x07] = 1, [0x08] = 1, [0x09] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1,
    [0x0e] = 1, [0x0f] = 1, [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1,
    [0x15] = 1, [0x16] = 1, [0x17] = 1, [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1,
    [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, ['"'] = 1,  ['\\'] = 1,
};

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* The bytes of x that need an escape, each marked by its high bit: the
 * "has a byte below / equal to" tests. A borrow can mark a byte only above
 * one that really needs an escape, so the lowest mark is always exact. */
static uint64_t escape_marks(uint64_t x)
{
    uint64_t below = (x - ONES * 0x20) & ~x;
    uint64_t q = x ^ (ONES * '"');
    uint64_t bs = x ^ (ONES * '\\');
    return (below | ((q - ONES) & ~q) | ((bs - ONES) & ~bs)) & HIGHS;
}

/* How many bytes of s[0..n) from the start need no escape: eight at a time;
 * in the word that holds the first one that does, its place is the lowest
 * mark (little-endian loads: the first byte is the lowest) or found byte
 * by byte. */
static size_t clean_prefix(const char *s, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        uint64_t m = escape_marks(x);
        if (m) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return i + (size_t)__builtin_ctzll(m) / 8;
#else
            break;
#endif
        }
    }
    while (i < n && !needs_escape[(unsigned char)s[i]])
        i++;
    return i;
}

static const char hex_digits[] = "0123456789abcdef";

/* The escape of ch (one that needs one) into out; returns its length. */
static size_t escape_one(unsigned char ch, char *out)
{
    out[0] = '\\';
    switch (ch) {
    case '\n':
        out[1] = 'n';
        return 2;
    case '\r':
        out[1] = 'r';
        return 2;
    case '\t':
        out[1] = 't';
        return 2;
    case '"':
    case '\\':
        out[1] = (char)ch;
        return 2;
    default:
        memcpy(out, "\\u00", 4);
        out[4] = hex_digits[ch >> 4];
        out[5] = hex_digits[ch & 15];
        return 6;
    }
}

/*
 * The string written straight into the buffer while it has room, with no
 * check per piece: a Detail that is itself JSON has an escape every few
 * bytes, and each piece appended on its own cost more than the scan. The
 * room is checked once for the string as it is and again at each escape
 * (the rest of the string and the closing quote must still fit); false, with
 * the buffer as it was, when it would not fit: the caller appends piece by
 * piece, which grows the buffer or reports the cap.
 */
static bool jw_str_in_room(struct eddy_jw *w, const char *s, size_t n)
{
    struct eddy_buf *b = &w->buf;
    if (w->rc != EDDY_OK || b->ptr == NULL)
        return false;
    size_t top = b->cap - 1 < b->max ? b->cap - 1 : b->max; /* the most len may become */
    if (b->len > top || top - b->len < n + 2)
        return false;
    char *o = b->ptr + b->len, *lim = b->ptr + top;
    *o++ = '"';
    for (;;) {
        /* a byte at a time first: in a Detail, most runs end within a few
         * bytes, where the word scan and a memcpy call cost more */
        size_t run = 0, few = n < 16 ? n : 16;
        while (run < few && !needs_escape[(unsigned char)s[run]]) {
            o[run] = s[run];
            run++;
        }
        if (run == few && run < n) {
            size_t more = clean_prefix(s + run, n - run);
            memcpy(o + run, s + run, more);
            run += more;
        }
        o += run;
        if (run == n)
            break;
        s += run;
        n -= run;
        if ((size_t)(lim - o) < n + 6) { /* this escape (6 at most), the rest, the quote */
            b->ptr[b->len] = '\0';
            return false;
        }
        o += escape_one((unsigned char)*s, o);
        s++;
        n--;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->ptr);
    b->ptr[b->len] = '\0';
    return true;
}

void eddy_jw_str(struct eddy_jw *w, const char *s, size_t n)
{
    jw_sep(w);
    if (jw_str_in_room(w, s, n))
        return;
    jw_put(w, "\"", 1);
    for (;;) {
        size_t run = clean_prefix(s, n);
        jw_put(w, s, run);
        if (run == n)
            break;
        char esc[6];
        jw_put(w, esc, escape_one((unsigned char)s[run], esc));
        s += run + 1;
        n -= run + 1;
    }
    jw_put(w, "\"", 1);
}

size_t eddy_json_format_int(int64_t v, char out[24])
{
    char tmp[20];
    /* the magnitude as unsigned: -INT64_MIN does not fit an int64_t */
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t k = sizeof tmp;
    do {
        tmp[--k] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t n = 0;
    if (v < 0)
        out[n++] = '-';
    memcpy(out + n, tmp + k, sizeof tmp - k);
    n += sizeof tmp - k;
    out[n] = '\0';
    return n;
}

void eddy_jw_int(struct eddy_jw *w, int64_t v)
{
    char num[24];
    size_t n = eddy_json_format_int(v, num);
    jw_sep(w);
    jw_put(w, num, n);
}

/*
 * A double as the shortest text that reads back as it, the digits an N
 * attribute of the same number holds. Not cJSON's printer: it takes
 * "%1.15g" when that reads back within about an ulp, so 10000000000000002
 * would come out as 1e+16. NaN and infinities, which JSON cannot hold, as
 * null, as cJSON prints them (an attribute refuses them).
 */
static void jw_double(struct eddy_jw *w, double d)
{
    char num[32];
    if (!eddy_json_format_double(d, num))
        memcpy(num, "null", sizeof "null");
    eddy_jw_raw(w, num, strlen(num));
}

void eddy_jw_tree(struct eddy_jw *w, const cJSON *v)
{
    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        bool obj = cJSON_IsObject(v);
        eddy_jw_open(w, obj ? '{' : '[');
        for (const cJSON *c = v->child; c; c = c->next) {
            if (obj)
                eddy_jw_key(w, c->string ? c->string : "");
            eddy_jw_tree(w, c);
        }
        eddy_jw_close(w, obj ? '}' : ']');
    } else if (cJSON_IsString(v)) {
        eddy_jw_cstr(w, v->valuestring ? v->valuestring : "");
    } else if (cJSON_IsBool(v)) {
        eddy_jw_bool(w, cJSON_IsTrue(v));
    } else if (cJSON_IsRaw(v) && v->valuestring) {
        eddy_jw_raw(w, v->valuestring, strlen(v->valuestring));
    } else if (cJSON_IsNumber(v)) {
        jw_double(w, v->valuedouble);
    } else if (cJSON_IsNull(v)) {
        eddy_jw_raw(w, "null", 4);
    } else {
        abort(); /* no type, or a Raw without text: cJSON cannot print it either */
    }
}

void eddy_jw_bool(struct eddy_jw *w, bool v)
{
    jw_sep(w);
    jw_put(w, v ? "true" : "false", v ? 4 : 5);
}

void eddy_jw_raw(struct eddy_jw *w, const char *json, size_t n)
{
    jw_sep(w);
    jw_put(w, json, n);
}

/* ---- the arena ---- */

#define ARENA_FIRST 2048                    /* the default first chunk */
#define ARENA_MIN_SHIFT 8                   /* the smallest chunk: 256 bytes */
#define ARENA_CHUNK_MAX ((size_t)256 << 10) /* chunks double up to this */
#define ARENA_ALIGN 8                       /* cJSON nodes hold pointers and a double */
#define CACHE_CLASSES 11                    /* 256 B .. 256 KiB, powers of two */
#define CACHE_SLOTS 4                       /* free chunks kept per class and thread */

struct eddy_json_chunk {
    struct eddy_json_chunk *next;
    size_t size; /* bytes after this header (a power of two), which keeps them 16-aligned */
};

static _Thread_local struct eddy_json_arena *current;
/* Free chunks by size class: replies and bodies come and go one after
 * another, so most chunks are taken from here again. */
static _Thread_local struct {
    struct eddy_json_chunk *slot[CACHE_CLASSES][CACHE_SLOTS];
    unsigned n[CACHE_CLASSES];
} cache;

static char *chunk_data(struct eddy_json_chunk *c)
{
    return (char *)(c + 1);
}

/* The size class of a chunk of 2^k bytes, or -1 past the cached ones. */
static int chunk_class(size_t size)
{
    int k = 0;
    while (((size_t)1 << (k + ARENA_MIN_SHIFT)) < size)
        k++;
    return k < CACHE_CLASSES ? k : -1;
}

/* A chunk of at least size bytes, rounded up to a power of two (unless
 * exact: then size bytes, taken fresh). */
static struct eddy_json_chunk *chunk_get(size_t size, bool exact)
{
    int k = exact ? -1 : chunk_class(size);
    if (k >= 0 && cache.n[k] > 0)
        return cache.slot[k][--cache.n[k]];
    if (k >= 0)
        size = (size_t)1 << (k + ARENA_MIN_SHIFT);
    struct eddy_json_chunk *c = eddy_malloc(sizeof *c + size);
    c->size = size;
    return c;
}

/* Only a chunk of exactly its class's size goes back to the cache (an
 * exact one is smaller than its class says). */
static void chunk_put(struct eddy_json_chunk *c)
{
    int k = chunk_class(c->size);
    if (k >= 0 && c->size == (size_t)1 << (k + ARENA_MIN_SHIFT) && cache.n[k] < CACHE_SLOTS)
        cache.slot[k][cache.n[k]++] = c;
    else
        free(c);
}

void eddy_json_arena_init(struct eddy_json_arena *a, size_t first)
{
    memset(a, 0, sizeof *a);
    a->first = first == 0 ? ARENA_FIRST : first;
    a->next = a->first;
}

void eddy_json_arena_init_exact(struct eddy_json_arena *a, size_t size)
{
    eddy_json_arena_init(a, size < ARENA_ALIGN ? ARENA_ALIGN : size);
    a->exact = true;
}

void eddy_json_arena_cleanup(struct eddy_json_arena *a)
{
    struct eddy_json_chunk *c = a->chunks, *next;
    for (; c; c = next) {
        next = c->next;
        chunk_put(c);
    }
    a->chunks = NULL;
    a->cur = a->end = NULL;
    a->next = a->first;
}

/* What the arena takes for a request of n bytes. */
static size_t arena_round(size_t n)
{
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    return n == 0 ? ARENA_ALIGN : n;
}

void *eddy_json_arena_alloc(struct eddy_json_arena *a, size_t n)
{
    n = arena_round(n);
    if ((size_t)(a->end - a->cur) < n || a->cur == NULL) {
        if (a->next == 0) /* zeroed, never initialised */
            a->first = a->next = ARENA_FIRST;
        bool exact = a->exact && a->chunks == NULL && n <= a->next;
        struct eddy_json_chunk *c = chunk_get(n > a->next ? n : a->next, exact);
        if (a->next < ARENA_CHUNK_MAX)
            a->next *= 2;
        c->next = a->chunks;
        a->chunks = c;
        a->cur = chunk_data(c);
        a->end = a->cur + c->size;
    }
    void *p = a->cur;
    a->cur += n;
    return p;
}

char *eddy_json_arena_strndup(struct eddy_json_arena *a, const char *s, size_t n)
{
    char *p = eddy_json_arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

size_t eddy_json_arena_str_size(size_t n)
{
    return arena_round(n + 1);
}

size_t eddy_json_copy_size(const cJSON *v)
{
    size_t n = arena_round(sizeof(cJSON));
    if (v->string)
        n += arena_round(strlen(v->string) + 1);
    if (v->valuestring)
        n += arena_round(strlen(v->valuestring) + 1);
    for (const cJSON *c = v->child; c; c = c->next)
        n += eddy_json_copy_size(c);
    return n;
}

cJSON *eddy_json_arena_copy(struct eddy_json_arena *a, const cJSON *v)
{
    cJSON *copy = eddy_json_arena_alloc(a, sizeof *copy);
    *copy = *v;
    copy->next = copy->prev = copy->child = NULL;
    if (v->string)
        copy->string = eddy_json_arena_strndup(a, v->string, strlen(v->string));
    if (v->valuestring)
        copy->valuestring = eddy_json_arena_strndup(a, v->valuestring, strlen(v->valuestring));
    cJSON *last = NULL;
    for (const cJSON *c = v->child; c; c = c->next) {
        cJSON *k = eddy_json_arena_copy(a, c);
        if (last) {
            last->next = k;
            k->prev = last;
        } else {
            copy->child = k;
        }
        last = k;
    }
    if (copy->child)
        copy->child->prev = last; /* as cJSON links them */
    return copy;
}

static bool arena_owns(const struct eddy_json_arena *a, const void *p)
{
    for (struct eddy_json_chunk *c = a->chunks; c; c = c->next) {
        const char *d = chunk_data(c);
        if ((const char *)p >= d && (const char *)p < d + c->size)
            return true;
    }
    return false;
}

static void *hook_malloc(size_t n)
{
    return current ? eddy_json_arena_alloc(current, n) : eddy_malloc(n);
}

static void hook_free(void *p)
{
    if (current && arena_owns(current, p))
        return; /* freed with the arena */
    free(p);
}

void eddy_json_use_eddy_alloc(void)
{
    cJSON_Hooks hooks = {.malloc_fn = hook_malloc, .free_fn = hook_free};
    cJSON_InitHooks(&hooks);
}

static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

struct eddy_json_arena *eddy_json_arena_enter(struct eddy_json_arena *a)
{
    (void)pthread_once(&hooks_once, eddy_json_use_eddy_alloc);
    struct eddy_json_arena *prev = current;
    current = a;
    return prev;
}

void eddy_json_arena_leave(struct eddy_json_arena *prev)
{
    current = prev;
}

/* ---- decimals ---- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static size_t skip_digits(const char *s, size_t n, size_t i)
{
    while (i < n && is_digit(s[i]))
        i++;
    return i;
}

/* Read the exponent digits at s[i..n) into *exp, saturating. */
static size_t read_exponent(const char *s, size_t n, size_t i, long *exp)
{
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    size_t start = i;
    long e = 0;
    for (; i < n && is_digit(s[i]); i++) {
        if (e < EXP_SATURATE)
            e = e * 10 + (s[i] - '0');
    }
    if (i == start)
        return 0;
    *exp = neg ? -e : e;
    return i;
}

/* Collect the significant digits of int part + fraction into d. */
static void collect_digits(const char *ip, size_t il, const char *fp, size_t fl, long exp,
                           struct eddy_decimal *d)
{
    d->digits = il + fl < sizeof d->small ? d->small : eddy_malloc(il + fl + 1);
    size_t lz = 0, n = 0;
    bool seen = false;
    for (size_t k = 0; k < il + fl; k++) {
        char c = k < il ? ip[k] : fp[k - il];
        if (!seen && c == '0') {
            lz++;
            continue;
        }
        seen = true;
        d->digits[n++] = c;
    }
    while (n > 0 && d->digits[n - 1] == '0')
        n--;
    d->digits[n] = '\0';
    d->ndigits = n;
    d->zero = n == 0;
    d->adj = d->zero ? 0 : (long)il - 1 - (long)lz + exp;
}

/*
 * Parse s[0..n) as a decimal. strict: JSON's grammar exactly. Otherwise
 * also a leading '+', leading zeros, ".5" and "5." (other writers of N).
 * On success eddy_decimal_cleanup(d) must follow.
 */
bool eddy_decimal_parse(const char *s, size_t n, bool strict, struct eddy_decimal *d)
{
    size_t i = 0;
    d->digits = NULL;
    d->neg = false;
    if (i < n && (s[i] == '-' || (!strict && s[i] == '+')))
        d->neg = s[i++] == '-';
    size_t is = i;
    i = skip_digits(s, n, i);
    size_t il = i - is;
    if (strict && (il == 0 || (il > 1 && s[is] == '0')))
        return false;
    size_t fs = i, fl = 0;
    if (i < n && s[i] == '.') {
        fs = ++i;
        i = skip_digits(s, n, i);
        fl = i - fs;
        if (strict && fl == 0)
            return false;
    }
    if (il + fl == 0)
        return false;
    long exp = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i = read_exponent(s, n, i + 1, &exp);
        if (i == 0)
            return false;
    }
    if (i != n)
        return false;
    collect_digits(s + is, il, s + fs, fl, exp, d);
    return true;
}

void eddy_decimal_cleanup(struct eddy_decimal *d)
{
    if (d->digits != d->small)
        free(d->digits);
    d->digits = NULL;
}

bool eddy_decimal_equal(const struct eddy_decimal *a, const struct eddy_decimal *b)
{
    if (a->zero || b->zero)
        return a->zero && b->zero;
    return a->neg == b->neg && a->adj == b->adj && a->ndigits == b->ndigits &&
           memcmp(a->digits, b->digits, a->ndigits) == 0;
}

/*
 * A fraction with at most 15 significant digits and %g's plain notation
 * (1e-4 <= |d| < 1e15), written as "%.15g" writes it, without printf: the
 * fewest decimals k for which m / 10^k, m = |d| * 10^k rounded, is d again.
 * m and 10^k are exact doubles (m < 10^15, k <= 19), so that division is
 * correctly rounded, as strtod reads "m e-k": the text reads back as d. No
 * other decimal of 15 significant digits or fewer reads back as d
 * (DBL_DIG), and %.15g gives the nearest one with its trailing zeros cut,
 * which is this one: k is the least, so m does not end in 0. False when d
 * is not such a fraction; then printf decides.
 */
static bool format_short_fraction(double d, char out[32])
{
    static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,
                                 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19};
    double a = fabs(d);
    if (!(a >= 1e-4 && a < 1e15))
        return false;
    for (int k = 1; k < (int)(sizeof p10 / sizeof p10[0]); k++) {
        double m = nearbyint(a * p10[k]);
        if (m >= 1e15)
            return false;
        if (m / p10[k] != a)
            continue;
        char digits[24];
        size_t n = eddy_json_format_int((int64_t)m, digits), at = 0;
        if (d < 0)
            out[at++] = '-';
        if (n > (size_t)k) { /* integer digits, the point, k decimals */
            memcpy(out + at, digits, n - (size_t)k);
            at += n - (size_t)k;
            out[at++] = '.';
            memcpy(out + at, digits + n - (size_t)k, (size_t)k);
            at += (size_t)k;
        } else { /* "0.", zeros, the digits */
            out[at++] = '0';
            out[at++] = '.';
            memset(out + at, '0', (size_t)k - n);
            at += (size_t)k - n;
            memcpy(out + at, digits, n);
            at += n;
        }
        out[at] = '\0';
        return true;
    }
    return false;
}

bool eddy_json_format_double(double d, char out[32])
{
    if (!isfinite(d))
        return false;
    if (d == floor(d) && fabs(d) < 1e21) {
        /* below 2^63 an integral double converts to int64_t exactly (-0.0
         * keeps its sign, as "%.0f" does) */
        if (fabs(d) < 0x1p63 && !(d == 0 && signbit(d)))
            eddy_json_format_int((int64_t)d, out);
        else
            snprintf(out, 32, "%.0f", d);
        return true;
    }
    if (format_short_fraction(d, out))
        return true;
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
    return true;
}

/*
 * True when text (a decimal of value v) survives the trip through a double:
 * the shortest text of the double names the same decimal value. *out gets
 * the double.
 */
bool eddy_decimal_fits_double(const char *text, const struct eddy_decimal *v, double *out)
{
    double d = strtod(text, NULL);
    char back[32];
    if (!eddy_json_format_double(d, back))
        return false;
    struct eddy_decimal b;
    if (!eddy_decimal_parse(back, strlen(back), false, &b))
        return false;
    bool same = eddy_decimal_equal(v, &b);
    eddy_decimal_cleanup(&b);
    *out = d;
    return same;
}

/* ---- exact comparison ---- */

/* The decimal text of a number item (a Raw item's own, else the double's
 * shortest), or NULL for NaN and infinities. */
static const char *number_text(const cJSON *v, char buf[32])
{
    if (cJSON_IsRaw(v))
        return v->valuestring; /* NULL in a tree built wrongly: equal to nothing */
    return eddy_json_format_double(v->valuedouble, buf) ? buf : NULL;
}

bool eddy_json_number_equal(const cJSON *a, const cJSON *b)
{
    /* two doubles: distinct ones have distinct shortest texts, and -0 and
     * 0 are the same decimal, so == decides without formatting */
    if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
        return a->valuedouble == b->valuedouble;
    char ba[32], bb[32];
    const char *ta = number_text(a, ba), *tb = number_text(b, bb);
    if (ta == NULL || tb == NULL)
        return false;
    struct eddy_decimal da, db;
    bool same = false;
    if (eddy_decimal_parse(ta, strlen(ta), false, &da)) {
        if (eddy_decimal_parse(tb, strlen(tb), false, &db)) {
            same = eddy_decimal_equal(&da, &db);
            eddy_decimal_cleanup(&db);
        }
        eddy_decimal_cleanup(&da);
    }
    return same;
}

/* Every member of a has a member of its name in b, of the same value. */
static bool members_in(const cJSON *a, const cJSON *b)
{
    for (const cJSON *c = a->child; c; c = c->next) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(b, c->string);
        if (d == NULL || !eddy_json_equal(c, d))
            return false;
    }
    return true;
}

static bool elements_equal(const cJSON *a, const cJSON *b)
{
    const cJSON *c = a->child, *d = b->child;
    for (; c && d; c = c->next, d = d->next) {
        if (!eddy_json_equal(c, d))
            return false;
    }
    return c == NULL && d == NULL;
}

bool eddy_json_equal(const cJSON *a, const cJSON *b)
{
    if (a == NULL || b == NULL)
        return false;
    bool num_a = cJSON_IsNumber(a) || cJSON_IsRaw(a), num_b = cJSON_IsNumber(b) || cJSON_IsRaw(b);
    if (num_a || num_b)
        return num_a && num_b && eddy_json_number_equal(a, b);
    if ((a->type & 0xFF) != (b->type & 0xFF))
        return false;
    if (cJSON_IsString(a))
        return a->valuestring && b->valuestring && strcmp(a->valuestring, b->valuestring) == 0;
    if (cJSON_IsArray(a))
        return elements_equal(a, b);
    if (cJSON_IsObject(a))
        return members_in(a, b) && members_in(b, a);
    return true; /* true, false, null: the type is the value */
}

/* ---- strict JSON reading with exact numbers ---- */

struct token {
    size_t off;
    size_t len;
};

struct scan {
    const char *text;
    size_t len;
    struct token *tok; /* inline until more numbers come */
    size_t ntok;
    size_t cap;
    bool has_long;
    struct token inline_tok[32];
};

/* Skip the string starting at the quote at i; returns the index after it. */
static size_t skip_string(const char *s, size_t n, size_t i, struct eddy_error *err)
{
    for (i++; i < n; i++) {
        i += clean_prefix(s + i, n - i); /* to the next '"', '\\' or control */
        if (i >= n)
            break;
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            return i + 1;
        if (c < 0x20) {
            eddy_error_set(err, EDDY_EPARSE, "control character in a string at offset %zu", i);
            return 0;
        }
        if (c == '\\') {
            if (i + 5 < n && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0) {
                eddy_error_set(err, EDDY_EPARSE, "\\u0000 in a string at offset %zu", i);
                return 0;
            }
            i++;
        }
    }
    eddy_error_set(err, EDDY_EPARSE, "unterminated string");
    return 0;
}

static eddy_err add_token(struct scan *sc, size_t off, size_t len, struct eddy_error *err)
{
    struct eddy_decimal d;
    if (!eddy_decimal_parse(sc->text + off, len, true, &d))
        return eddy_error_set(err, EDDY_EPARSE, "malformed number \"%.*s\" at offset %zu",
                              (int)(len > 64 ? 64 : len), sc->text + off, off);
    eddy_decimal_cleanup(&d);
    if (sc->ntok == sc->cap) {
        sc->cap *= 2;
        if (sc->tok == sc->inline_tok) {
            sc->tok = eddy_malloc(sc->cap * sizeof *sc->tok);
            memcpy(sc->tok, sc->inline_tok, sizeof sc->inline_tok);
        } else {
            sc->tok = eddy_realloc(sc->tok, sc->cap * sizeof *sc->tok);
        }
    }
    sc->tok[sc->ntok++] = (struct token){off, len};
    if (len > CJSON_NUMBER_MAX)
        sc->has_long = true;
    return EDDY_OK;
}

/* Find every number token of the text, in order, checking its grammar; and
 * refuse a control byte outside the strings, which cJSON would skip. */
static eddy_err scan_numbers(struct scan *sc, struct eddy_error *err)
{
    const char *s = sc->text;
    size_t n = sc->len, i = 0;
    while (i < n) {
        if (s[i] == '"') {
            i = skip_string(s, n, i, err);
            if (i == 0)
                return EDDY_EPARSE;
        } else if (s[i] == '-' || is_digit(s[i])) {
            size_t start = i;
            while (i < n && (is_digit(s[i]) || strchr("+-.eE", s[i]) != NULL) && s[i] != '\0')
                i++;
            eddy_err rc = add_token(sc, start, i - start, err);
            if (rc)
                return rc;
        } else if ((unsigned char)s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') {
            /* cJSON skips every byte up to 0x20 as white space, NUL too;
             * JSON's white space is space, tab, LF and CR alone */
            return eddy_error_set(err, EDDY_EPARSE, "control character at offset %zu", i);
        } else {
            i++;
        }
    }
    return EDDY_OK;
}

/* Put the exact value of token t into item: a number, or Raw with its text. */
static eddy_err settle_number(cJSON *parent, cJSON *item, const struct scan *sc,
                              const struct token *t, cJSON **root)
{
    char small[CJSON_NUMBER_MAX + 1]; /* most numbers: no allocation */
    char *text = t->len < sizeof small ? small : eddy_malloc(t->len + 1);
    memcpy(text, sc->text + t->off, t->len);
    text[t->len] = '\0';
    struct eddy_decimal d;
    double v;
    eddy_decimal_parse(text, t->len, true, &d); /* checked by add_token */
    bool fits = eddy_decimal_fits_double(text, &d, &v);
    eddy_decimal_cleanup(&d);
    if (fits) {
        cJSON_SetNumberValue(item, v);
        if (text != small)
            free(text);
        return EDDY_OK;
    }
    cJSON *raw = cJSON_CreateRaw(text);
    if (text != small)
        free(text);
    if (raw == NULL)
        return EDDY_ENOMEM;
    if (parent == NULL) {
        cJSON_Delete(item);
        *root = raw;
        return EDDY_OK;
    }
    raw->string = item->string;
    raw->type |= item->type & cJSON_StringIsConst;
    item->string = NULL;
    cJSON_ReplaceItemViaPointer(parent, item, raw);
    return EDDY_OK;
}

/* Walk the tree in document order, pairing number items with tokens. */
static eddy_err settle_tree(cJSON *node, const struct scan *sc, size_t *next, cJSON **root,
                            struct eddy_error *err)
{
    if (cJSON_IsNumber(node)) {
        if (*next >= sc->ntok)
            return eddy_error_set(err, EDDY_EPARSE, "number tokens out of step");
        return settle_number(NULL, node, sc, &sc->tok[(*next)++], root);
    }
    cJSON *child = node->child, *following;
    for (; child; child = following) {
        following = child->next;
        eddy_err rc = EDDY_OK;
        if (cJSON_IsNumber(child)) {
            if (*next >= sc->ntok)
                return eddy_error_set(err, EDDY_EPARSE, "number tokens out of step");
            rc = settle_number(node, child, sc, &sc->tok[(*next)++], root);
        } else if (cJSON_IsArray(child) || cJSON_IsObject(child)) {
            rc = settle_tree(child, sc, next, root, err);
        }
        if (rc)
            return rc;
    }
    return EDDY_OK;
}

/* cJSON cannot read numbers over 63 characters: blank them to "0   ". */
static char *blank_long_numbers(const struct scan *sc)
{
    char *copy = eddy_malloc(sc->len + 1);
    memcpy(copy, sc->text, sc->len);
    copy[sc->len] = '\0';
    for (size_t k = 0; k < sc->ntok; k++) {
        if (sc->tok[k].len > CJSON_NUMBER_MAX) {
            memset(copy + sc->tok[k].off, ' ', sc->tok[k].len);
            copy[sc->tok[k].off] = '0';
        }
    }
    return copy;
}

/* Where text[0..upto) first nests deeper than cJSON's limit (outside
 * strings), or SIZE_MAX when it does not. */
static size_t too_deep_at(const char *text, size_t upto)
{
    size_t depth = 0;
    for (size_t i = 0; i < upto; i++) {
        char c = text[i];
        if (c == '"') {
            for (i++; i < upto && text[i] != '"'; i++)
                if (text[i] == '\\')
                    i++;
        } else if (c == '[' || c == '{') {
            if (++depth > CJSON_NESTING_LIMIT)
                return i;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return SIZE_MAX;
}

static cJSON *parse_whole(const char *text, size_t len, struct eddy_error *err)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (root == NULL) {
        size_t at = end ? (size_t)(end - text) : 0;
        size_t deep = too_deep_at(text, at < len ? at + 1 : len);
        if (deep != SIZE_MAX)
            eddy_error_set(err, EDDY_EPARSE, "JSON nested deeper than %d levels at offset %zu",
                           CJSON_NESTING_LIMIT, deep);
        else
            eddy_error_set(err, EDDY_EPARSE, "malformed JSON at offset %zu", at);
        return NULL;
    }
    for (const char *p = end; p < text + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            eddy_error_set(err, EDDY_EPARSE, "trailing characters after JSON at offset %zu",
                           (size_t)(p - text));
            cJSON_Delete(root);
            return NULL;
        }
    }
    return root;
}

eddy_err eddy_json_parse(const char *text, size_t len, cJSON **out, struct eddy_error *err)
{
    *out = NULL;
    struct scan sc; /* field by field: zeroing the inline tokens cost more than the scan */
    sc.text = text;
    sc.len = len;
    sc.tok = sc.inline_tok;
    sc.ntok = 0;
    sc.cap = EDDY_ARRAY_SIZE(sc.inline_tok);
    sc.has_long = false;
    char *copy = NULL;
    cJSON *root = NULL;
    eddy_err rc = scan_numbers(&sc, err);
    if (rc)
        goto done;
    if (sc.has_long)
        copy = blank_long_numbers(&sc);
    root = parse_whole(copy ? copy : text, len, err);
    if (root == NULL) {
        rc = EDDY_EPARSE;
        goto done;
    }
    size_t next = 0;
    if (sc.ntok > 0) /* no number in the text: none in the tree to settle */
        rc = settle_tree(root, &sc, &next, &root, err);
    if (rc == EDDY_OK && next != sc.ntok)
        rc = eddy_error_set(err, EDDY_EPARSE, "number tokens out of step");
    if (rc == EDDY_OK) {
        *out = root;
        root = NULL;
    }
done:
    cJSON_Delete(root);
    free(copy);
    if (sc.tok != sc.inline_tok)
        free(sc.tok);
    return rc;
}

eddy_err eddy_json_parse_in(struct eddy_json_arena *a, const char *text, size_t len, cJSON **out,
                            struct eddy_error *err)
{
    struct eddy_json_arena *prev = eddy_json_arena_enter(a);
    eddy_err rc = eddy_json_parse(text, len, out, err);
    eddy_json_arena_leave(prev);
    return rc;
}

/* ---- the pull reader ---- */

static bool jr_fail(struct eddy_jr *r, const char *at)
{
    if (r->rc == EDDY_OK) {
        r->rc = EDDY_EPARSE;
        r->at = (size_t)(at - r->text);
    }
    r->p = r->end; /* nothing more is read */
    return false;
}

/* White space as cJSON skips it: every byte up to 0x20, so the reader and
 * the trees agree on what a reply is. */
static void jr_ws(struct eddy_jr *r)
{
    while (r->p < r->end && (unsigned char)*r->p <= 0x20)
        r->p++;
}

void eddy_jr_init(struct eddy_jr *r, const char *text, size_t len)
{
    r->text = r->p = text;
    r->end = text + len;
    r->rc = EDDY_OK;
    r->at = 0;
    r->depth = 0;
    r->first = true;
}

enum eddy_jr_type eddy_jr_peek(struct eddy_jr *r)
{
    jr_ws(r);
    if (r->rc != EDDY_OK)
        return EDDY_JR_BAD;
    if (r->p == r->end)
        return EDDY_JR_END;
    switch (*r->p) {
    case '{':
        return EDDY_JR_OBJECT;
    case '[':
        return EDDY_JR_ARRAY;
    case '"':
        return EDDY_JR_STRING;
    case 't':
    case 'f':
        return EDDY_JR_BOOL;
    case 'n':
        return EDDY_JR_NULL;
    default:
        return *r->p == '-' || is_digit(*r->p) ? EDDY_JR_NUMBER : EDDY_JR_BAD;
    }
}

static bool jr_open(struct eddy_jr *r, char brace)
{
    jr_ws(r);
    if (r->p == r->end || *r->p != brace || r->depth >= EDDY_JR_MAX_DEPTH)
        return jr_fail(r, r->p);
    r->p++;
    r->depth++;
    r->first = true;
    return true;
}

bool eddy_jr_object(struct eddy_jr *r)
{
    return jr_open(r, '{');
}

bool eddy_jr_array(struct eddy_jr *r)
{
    return jr_open(r, '[');
}

/* At a level entered: true when another member or element follows (its
 * comma consumed), false at the closing brace (consumed: the level is left,
 * and the level around it is past its first value) or on a fault. */
static bool jr_more(struct eddy_jr *r, char close)
{
    jr_ws(r);
    if (r->rc != EDDY_OK || r->p == r->end || r->depth == 0)
        return jr_fail(r, r->p);
    if (*r->p == close) {
        r->p++;
        r->depth--;
        r->first = false;
        return false;
    }
    if (!r->first) {
        if (*r->p != ',')
            return jr_fail(r, r->p);
        r->p++;
        jr_ws(r);
    }
    r->first = false;
    return true;
}

/* Four hex digits at p into *v. */
static bool hex4(const char *p, unsigned *v)
{
    unsigned x = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return false;
        x = x << 4 | d;
    }
    *v = x;
    return true;
}

/* The escape at p (its backslash; p < end): its length in the text, 0 when
 * it is not one JSON allows. A \u escape of a high surrogate takes its low
 * one with it; a lone surrogate is refused. */
static size_t escape_len(const char *p, const char *end)
{
    if (end - p < 2)
        return 0;
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return 2;
    case 'u':
        break;
    default:
        return 0;
    }
    unsigned u, lo;
    if (end - p < 6 || !hex4(p + 2, &u))
        return 0;
    if (u >= 0xDC00 && u <= 0xDFFF)
        return 0;
    if (u < 0xD800 || u > 0xDBFF)
        return 6;
    if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || !hex4(p + 8, &lo) || lo < 0xDC00 ||
        lo > 0xDFFF)
        return 0;
    return 12;
}

bool eddy_jr_string(struct eddy_jr *r, struct eddy_jr_str *s)
{
    jr_ws(r);
    if (r->p == r->end || *r->p != '"')
        return jr_fail(r, r->p);
    const char *p = ++r->p;
    s->escaped = false;
    for (;;) {
        /* the same runs the writer copies whole: no quote, backslash or control */
        p += clean_prefix(p, (size_t)(r->end - p));
        if (p == r->end)
            return jr_fail(r, p);
        if (*p == '"')
            break;
        if (*p != '\\')
            return jr_fail(r, p); /* a control character */
        size_t n = escape_len(p, r->end);
        if (n == 0)
            return jr_fail(r, p);
        s->escaped = true;
        p += n;
    }
    s->ptr = r->p;
    s->len = (size_t)(p - r->p);
    r->p = p + 1;
    return true;
}

bool eddy_jr_number(struct eddy_jr *r, struct eddy_str *text)
{
    jr_ws(r);
    const char *p = r->p, *e = r->end;
    if (p < e && *p == '-')
        p++;
    if (p == e || !is_digit(*p))
        return jr_fail(r, p);
    if (*p == '0')
        p++;
    else
        while (p < e && is_digit(*p))
            p++;
    if (p < e && *p == '.') {
        p++;
        if (p == e || !is_digit(*p))
            return jr_fail(r, p);
        while (p < e && is_digit(*p))
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p == e || !is_digit(*p))
            return jr_fail(r, p);
        while (p < e && is_digit(*p))
            p++;
    }
    text->ptr = r->p;
    text->len = (size_t)(p - r->p);
    r->p = p;
    return true;
}

static bool jr_literal(struct eddy_jr *r, const char *lit, size_t n)
{
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, lit, n) != 0)
        return jr_fail(r, r->p);
    r->p += n;
    return true;
}

bool eddy_jr_member(struct eddy_jr *r, struct eddy_jr_str *key)
{
    if (!jr_more(r, '}'))
        return false;
    if (!eddy_jr_string(r, key))
        return false;
    jr_ws(r);
    if (r->p == r->end || *r->p != ':')
        return jr_fail(r, r->p);
    r->p++;
    return true;
}

bool eddy_jr_element(struct eddy_jr *r)
{
    return jr_more(r, ']');
}

bool eddy_jr_skip(struct eddy_jr *r)
{
    struct eddy_jr_str s;
    struct eddy_str num;
    switch (eddy_jr_peek(r)) {
    case EDDY_JR_OBJECT:
        if (!eddy_jr_object(r))
            return false;
        while (eddy_jr_member(r, &s))
            if (!eddy_jr_skip(r))
                return false;
        return r->rc == EDDY_OK;
    case EDDY_JR_ARRAY:
        if (!eddy_jr_array(r))
            return false;
        while (eddy_jr_element(r))
            if (!eddy_jr_skip(r))
                return false;
        return r->rc == EDDY_OK;
    case EDDY_JR_STRING:
        return eddy_jr_string(r, &s);
    case EDDY_JR_NUMBER:
        return eddy_jr_number(r, &num);
    case EDDY_JR_BOOL:
        return *r->p == 't' ? jr_literal(r, "true", 4) : jr_literal(r, "false", 5);
    case EDDY_JR_NULL:
        return jr_literal(r, "null", 4);
    default:
        return jr_fail(r, r->p);
    }
}

eddy_err eddy_jr_finish(struct eddy_jr *r)
{
    jr_ws(r);
    if (r->rc == EDDY_OK && (r->p != r->end || r->depth != 0))
        jr_fail(r, r->p);
    return r->rc;
}

size_t eddy_jr_unescape(const struct eddy_jr_str *s, char *out)
{
    if (!s->escaped) {
        memcpy(out, s->ptr, s->len);
        return s->len;
    }
    const char *p = s->ptr, *end = s->ptr + s->len;
    char *o = out;
    while (p < end) {
        /* the runs between escapes: a string with escapes has them close */
        while (p < end && *p != '\\')
            *o++ = *p++;
        if (p == end)
            break;
        char c = p[1];
        if (c != 'u') {
            switch (c) {
            case 'b':
                *o++ = '\b';
                break;
            case 'f':
                *o++ = '\f';
                break;
            case 'n':
                *o++ = '\n';
                break;
            case 'r':
                *o++ = '\r';
                break;
            case 't':
                *o++ = '\t';
                break;
            default: /* '"', '\\' and '/' stand for themselves */
                *o++ = c;
                break;
            }
            p += 2;
            continue;
        }
        unsigned u = 0, lo = 0xDC00;
        (void)hex4(p + 2, &u); /* checked when the string was read */
        p += 6;
        if (u >= 0xD800 && u <= 0xDBFF) {
            (void)hex4(p + 2, &lo);
            p += 6;
            u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (u < 0x80) {
            *o++ = (char)u;
        } else if (u < 0x800) {
            *o++ = (char)(0xC0 | u >> 6);
            *o++ = (char)(0x80 | (u & 0x3F));
        } else if (u < 0x10000) {
            *o++ = (char)(0xE0 | u >> 12);
            *o++ = (char)(0x80 | ((u >> 6) & 0x3F));
            *o++ = (char)(0x80 | (u & 0x3F));
        } else {
            *o++ = (char)(0xF0 | u >> 18);
            *o++ = (char)(0x80 | ((u >> 12) & 0x3F));
            *o++ = (char)(0x80 | ((u >> 6) & 0x3F));
            *o++ = (char)(0x80 | (u & 0x3F));
        }
    }
    return (size_t)(o - out);
}

bool eddy_jr_str_eq(const struct eddy_jr_str *s, const char *lit, size_t n)
{
    if (!s->escaped)
        return s->len == n && memcmp(s->ptr, lit, n) == 0;
    if (s->len > 256)
        return false; /* an escaped key this long names none of eddy's */
    char buf[256];
    size_t len = strnlen(buf, eddy_jr_unescape(s, buf)); /* a \u0000 ends it, as in cJSON */
    return len == n && memcmp(buf, lit, n) == 0;
}

void eddy_jr_take(struct eddy_jr *r, struct eddy_jr_field *f)
{
    enum eddy_jr_type t = eddy_jr_peek(r);
    if (f->type != EDDY_JR_END || t == EDDY_JR_OBJECT || t == EDDY_JR_ARRAY) {
        if (f->type == EDDY_JR_END && t != EDDY_JR_BAD)
            f->type = t; /* the first of its name counts, whatever its type */
        (void)eddy_jr_skip(r);
        return;
    }
    if (t == EDDY_JR_STRING) {
        if (eddy_jr_string(r, &f->s))
            f->type = t;
        return;
    }
    const char *start = r->p;
    if (eddy_jr_skip(r)) {
        f->type = t;
        f->s = (struct eddy_jr_str){start, (size_t)(r->p - start), false};
    }
}

bool eddy_jr_fields(struct eddy_jr *r, const struct eddy_str *names, size_t n,
                    struct eddy_jr_field *fields)
{
    memset(fields, 0, n * sizeof *fields); /* type EDDY_JR_END: none yet */
    if (eddy_jr_peek(r) != EDDY_JR_OBJECT) {
        (void)eddy_jr_skip(r);
        return false;
    }
    (void)eddy_jr_object(r);
    struct eddy_jr_str k;
    while (eddy_jr_member(r, &k)) {
        size_t i = 0;
        while (i < n && !eddy_jr_str_eq(&k, names[i].ptr, names[i].len))
            i++;
        if (i < n)
            eddy_jr_take(r, &fields[i]);
        else
            (void)eddy_jr_skip(r);
    }
    return true;
}

char *eddy_jr_field_strdup(const struct eddy_jr_field *f)
{
    if (f->type != EDDY_JR_STRING)
        return NULL;
    char *out = eddy_malloc(f->s.len + 1);
    size_t n = eddy_jr_unescape(&f->s, out);
    if (f->s.escaped)
        n = strnlen(out, n);
    out[n] = '\0';
    return out;
}

double eddy_jr_field_double(const struct eddy_jr_field *f)
{
    if (f->type != EDDY_JR_NUMBER)
        return 0;
    char small[64]; /* strtod wants a NUL after the number */
    char *text = f->s.len < sizeof small ? small : eddy_malloc(f->s.len + 1);
    memcpy(text, f->s.ptr, f->s.len);
    text[f->s.len] = '\0';
    double d = strtod(text, NULL);
    if (text != small)
        free(text);
    return d;
}

bool eddy_jr_field_true(const struct eddy_jr_field *f)
{
    return f->type == EDDY_JR_BOOL && f->s.len == 4;
}
