/*
 * alloc.h - allocation that never returns NULL.
 *
 * Out of memory aborts the process (as Redis does): a worker that cannot
 * allocate cannot make progress, and an abort lets the orchestrator restart it.
 * Every message stays on the queue and is redelivered, so nothing is lost,
 * and no caller has to carry an untested out-of-memory path.
 */
#ifndef EDDY_BASE_ALLOC_H
#define EDDY_BASE_ALLOC_H

#include <stddef.h>

void *eddy_malloc(size_t n);
void *eddy_calloc(size_t count, size_t size);
void *eddy_realloc(void *p, size_t n);
char *eddy_strdup(const char *s);
char *eddy_strndup(const char *s, size_t n);
/* Overwrite n bytes at p in a way the compiler may not elide (secrets). */
void eddy_wipe(void *p, size_t n);
/* Wipe a NUL-terminated secret string and free it. NULL is fine. */
void eddy_free_secret(char *s);

#define eddy_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define EDDY_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
