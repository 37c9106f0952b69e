/*
 * buf.c - growable buffers with a cap (see buf.h).
 */
#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/alloc.h"

void eddy_buf_init(struct eddy_buf *b, size_t max)
{
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max ? max : EDDY_BUF_DEFAULT_MAX;
    b->refused = false;
}

void eddy_buf_cleanup(struct eddy_buf *b)
{
    free(b->ptr);
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    b->refused = false;
}

void eddy_buf_reset(struct eddy_buf *b)
{
    b->len = 0;
    b->refused = false;
    if (b->ptr)
        b->ptr[0] = '\0';
}

eddy_err eddy_buf_reserve(struct eddy_buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n) {
        b->refused = true;
        return EDDY_ELIMIT;
    }
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return EDDY_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    b->ptr = eddy_realloc(b->ptr, cap);
    b->cap = cap;
    return EDDY_OK;
}

eddy_err eddy_buf_append_grow(struct eddy_buf *b, const void *p, size_t n)
{
    eddy_err rc = eddy_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->ptr + b->len, p, n);
    b->len += n;
    b->ptr[b->len] = '\0';
    return EDDY_OK;
}

static eddy_err buf_vappendf(struct eddy_buf *b, const char *fmt, va_list ap0)
{
    char small[256];
    va_list ap;
    va_copy(ap, ap0);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->refused = true;
        return EDDY_EINVAL;
    }
    if ((size_t)n < sizeof small)
        return eddy_buf_append(b, small, (size_t)n);
    eddy_err rc = eddy_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_copy(ap, ap0);
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return EDDY_OK;
}

eddy_err eddy_buf_appendf(struct eddy_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    eddy_err rc = buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void eddy_buf_putf(struct eddy_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (buf_vappendf(b, fmt, ap) != EDDY_OK) {
        /* recorded in b->refused */
    }
    va_end(ap);
}

eddy_err eddy_buf_append_hex(struct eddy_buf *b, const unsigned char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    eddy_err rc = eddy_buf_reserve(b, n * 2);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        b->ptr[b->len++] = hex[p[i] >> 4];
        b->ptr[b->len++] = hex[p[i] & 15];
    }
    b->ptr[b->len] = '\0';
    return EDDY_OK;
}

void eddy_buf_put_hex(struct eddy_buf *b, const unsigned char *p, size_t n)
{
    if (eddy_buf_append_hex(b, p, n) != EDDY_OK)
        return; /* recorded in b->refused */
}

void eddy_buf_truncate(struct eddy_buf *b, size_t len)
{
    if (len < b->len) {
        b->len = len;
        b->ptr[len] = '\0';
    }
}

const char *eddy_buf_cstr(const struct eddy_buf *b)
{
    return b->ptr ? b->ptr : "";
}

char *eddy_buf_take(struct eddy_buf *b, size_t *len)
{
    char *p = b->ptr ? b->ptr : eddy_strdup("");
    if (len)
        *len = b->len;
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    b->refused = false;
    return p;
}

/* ---- small texts ---- */

void eddy_sstr_init(struct eddy_sstr *t)
{
    t->s = t->buf;
    t->len = 0;
    t->cap = sizeof t->buf;
    t->buf[0] = '\0';
}

void eddy_sstr_put(struct eddy_sstr *t, const char *p, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap * 2 > t->len + n + 1 ? t->cap * 2 : t->len + n + 1;
        if (t->s == t->buf) {
            t->s = eddy_malloc(cap);
            memcpy(t->s, t->buf, t->len);
        } else {
            t->s = eddy_realloc(t->s, cap);
        }
        t->cap = cap;
    }
    memcpy(t->s + t->len, p, n);
    t->len += n;
    t->s[t->len] = '\0';
}

void eddy_sstr_truncate(struct eddy_sstr *t, size_t len)
{
    t->len = len;
    t->s[len] = '\0';
}

void eddy_sstr_cleanup(struct eddy_sstr *t)
{
    if (t->s != t->buf)
        free(t->s);
    t->s = NULL;
}
