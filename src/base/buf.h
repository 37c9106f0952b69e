/*
 * buf.h - owning, size-capped byte buffers and borrowed string views.
 *
 * struct eddy_buf owns its bytes, is always NUL-terminated (so ptr can be
 * handed to C string functions) and refuses to grow past its cap, like
 * curl's dynbuf: every buffer fed by the network has a limit.
 * struct eddy_str borrows: it never frees and may not be NUL-terminated.
 */
#ifndef EDDY_BASE_BUF_H
#define EDDY_BASE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/err.h"

struct eddy_str {
    const char *ptr;
    size_t len;
};

#define EDDY_STR_LIT(lit) ((struct eddy_str){(lit), sizeof(lit) - 1})
static inline struct eddy_str eddy_str_c(const char *s)
{
    return (struct eddy_str){s, s ? strlen(s) : 0};
}
static inline bool eddy_str_eq(struct eddy_str a, struct eddy_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}
static inline bool eddy_str_eqc(struct eddy_str a, const char *b)
{
    return eddy_str_eq(a, eddy_str_c(b));
}

/*
 * struct eddy_sstr: a NUL-terminated text built piece by piece in its own
 * 256 bytes (on the stack where it is declared), moved to the heap only
 * when longer; eddy_sstr_cleanup frees that. For texts made on hot paths
 * (keys, member paths) without malloc or printf. s is the text, len its
 * length.
 */
struct eddy_sstr {
    char *s;
    size_t len, cap;
    char buf[256];
};
void eddy_sstr_init(struct eddy_sstr *t);
void eddy_sstr_put(struct eddy_sstr *t, const char *p, size_t n);
void eddy_sstr_truncate(struct eddy_sstr *t, size_t len);
void eddy_sstr_cleanup(struct eddy_sstr *t);

/* The cap used when init is given 0: 64 MiB. */
#define EDDY_BUF_DEFAULT_MAX ((size_t)64 << 20)

struct eddy_buf {
    char *ptr; /* NULL until the first append; see eddy_buf_cstr */
    size_t len;
    size_t cap;   /* allocated bytes, including room for the NUL */
    size_t max;   /* the most len may reach */
    bool refused; /* an append was refused since init or reset */
};

void eddy_buf_init(struct eddy_buf *b, size_t max);
void eddy_buf_cleanup(struct eddy_buf *b);
/* Forget the contents, keep the allocation. */
void eddy_buf_reset(struct eddy_buf *b);
/* Make room for n more bytes; EDDY_ELIMIT when that would pass the cap. */
EDDY_MUST_USE eddy_err eddy_buf_reserve(struct eddy_buf *b, size_t n);
/* eddy_buf_append when the bytes do not fit the allocation (grows it). */
EDDY_MUST_USE eddy_err eddy_buf_append_grow(struct eddy_buf *b, const void *p, size_t n);

/* Append n bytes (p may be NULL when n is 0). Inline: the JSON writers
 * append a few bytes at a time, and nearly always into room already there,
 * which needs no call. The cap is checked too, since max may have been
 * lowered below an allocation made earlier. */
EDDY_MUST_USE static inline eddy_err eddy_buf_append(struct eddy_buf *b, const void *p, size_t n)
{
    if (n < b->cap - b->len && b->len + n <= b->max) {
        if (n)
            memcpy(b->ptr + b->len, p, n);
        b->len += n;
        b->ptr[b->len] = '\0';
        return EDDY_OK;
    }
    return eddy_buf_append_grow(b, p, n);
}
EDDY_MUST_USE static inline eddy_err eddy_buf_appends(struct eddy_buf *b, const char *s)
{
    return eddy_buf_append(b, s, strlen(s));
}
EDDY_MUST_USE static inline eddy_err eddy_buf_appendc(struct eddy_buf *b, char c)
{
    return eddy_buf_append(b, &c, 1);
}
EDDY_MUST_USE static inline eddy_err eddy_buf_append_str(struct eddy_buf *b, struct eddy_str s)
{
    return eddy_buf_append(b, s.ptr, s.len);
}
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
EDDY_MUST_USE eddy_err
eddy_buf_appendf(struct eddy_buf *b, const char *fmt, ...);
/* Append lowercase hex of n bytes. */
EDDY_MUST_USE eddy_err eddy_buf_append_hex(struct eddy_buf *b, const unsigned char *p, size_t n);
/*
 * The puts: the appends for text built in many steps and checked once, at
 * the end, with eddy_buf_refused() (a refused put leaves the buffer as it
 * was, so a later one may still fit: check before using the text).
 */
static inline void eddy_buf_put(struct eddy_buf *b, const void *p, size_t n)
{
    if (eddy_buf_append(b, p, n) != EDDY_OK)
        return; /* recorded in b->refused */
}
static inline void eddy_buf_puts(struct eddy_buf *b, const char *s)
{
    eddy_buf_put(b, s, strlen(s));
}
static inline void eddy_buf_putc(struct eddy_buf *b, char c)
{
    eddy_buf_put(b, &c, 1);
}
static inline void eddy_buf_put_str(struct eddy_buf *b, struct eddy_str s)
{
    eddy_buf_put(b, s.ptr, s.len);
}
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void eddy_buf_putf(struct eddy_buf *b, const char *fmt, ...);
void eddy_buf_put_hex(struct eddy_buf *b, const unsigned char *p, size_t n);
/* Whether an append or put was refused since init or reset. */
static inline bool eddy_buf_refused(const struct eddy_buf *b)
{
    return b->refused;
}
/* Drop bytes past len (len <= b->len). */
void eddy_buf_truncate(struct eddy_buf *b, size_t len);
/* The contents as a C string; "" when empty. Borrowed. */
const char *eddy_buf_cstr(const struct eddy_buf *b);
static inline struct eddy_str eddy_buf_str(const struct eddy_buf *b)
{
    return (struct eddy_str){eddy_buf_cstr(b), b->len};
}
/* Hand the bytes over to the caller (free() them); the buffer is left empty. */
char *eddy_buf_take(struct eddy_buf *b, size_t *len);

#endif
