/*
 * alloc.c - allocation that aborts on exhaustion (see alloc.h).
 */
#include "base/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"out of memory allocating %zu bytes\"}\n", n);
    abort();
}

void *eddy_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *eddy_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        oom(count * size);
    return p;
}

void *eddy_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *eddy_strndup(const char *s, size_t n)
{
    char *p = eddy_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *eddy_strdup(const char *s)
{
    return eddy_strndup(s, strlen(s));
}

void eddy_wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

void eddy_free_secret(char *s)
{
    if (s == NULL)
        return;
    eddy_wipe(s, strlen(s));
    free(s);
}
