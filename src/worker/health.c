/*
 * health.c - rate-limited touches of the health file (see health.h).
 */
#include "worker/health.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"

void eddy_health_init(struct eddy_health *h, const char *path)
{
    h->path = path != NULL ? eddy_strdup(path) : NULL;
    h->last_ms = 0;
    h->touched = false;
}

void eddy_health_cleanup(struct eddy_health *h)
{
    free(h->path);
    h->path = NULL;
}

/* Set the file's times to now, creating it first when it is missing. */
static eddy_err touch_file(const char *path, struct eddy_error *err)
{
    if (utimensat(AT_FDCWD, path, NULL, 0) == 0)
        return EDDY_OK;
    if (errno != ENOENT)
        goto fail;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd < 0)
        goto fail;
    close(fd);
    /* A file that existed already (a race with another writer) gets now too. */
    if (utimensat(AT_FDCWD, path, NULL, 0) == 0)
        return EDDY_OK;
fail:
    return eddy_error_set(err, EDDY_EIO, "health file %s: %s", path, strerror(errno));
}

eddy_err eddy_health_touch(struct eddy_health *h, uint64_t now_ms, struct eddy_error *err)
{
    if (h->path == NULL)
        return EDDY_OK;
    if (h->touched && now_ms - h->last_ms < EDDY_HEALTH_INTERVAL_MS)
        return EDDY_OK;
    h->touched = true;
    h->last_ms = now_ms;
    return touch_file(h->path, err);
}
