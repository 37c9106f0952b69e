/*
 * health.h - the worker's side of the container health check.
 *
 * The worker calls eddy_health_touch each time its loop makes progress (a
 * poll returned, a message was acknowledged, a timer ran); the touch sets the
 * health file's modification time to now, creating the file if needed.
 * `eddy healthcheck` (the container's health check command) exits 0 while
 * that time is recent, so a stuck loop turns the task unhealthy and the
 * orchestrator replaces it.
 *
 * Touches are rate-limited in memory to one a second (by the monotonic clock
 * the caller passes), so the cost on the loop is one utimensat() system call
 * a second at most: a metadata update of a small local file, a few
 * microseconds, which is why it is done synchronously and not on the thread
 * pool. The file should live on local storage (a tmpfs or the container's
 * own layer), never on a network mount.
 */
#ifndef EDDY_WORKER_HEALTH_H
#define EDDY_WORKER_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

#define EDDY_HEALTH_INTERVAL_MS 1000

struct eddy_health {
    char *path;       /* NULL: health reporting is off */
    uint64_t last_ms; /* monotonic time of the last attempt */
    bool touched;     /* an attempt was made */
};

/* path (copied) may be NULL to turn health reporting off. */
void eddy_health_init(struct eddy_health *h, const char *path);
void eddy_health_cleanup(struct eddy_health *h);

/*
 * Record progress at monotonic time now_ms. Touches the file when it has not
 * been touched in the last EDDY_HEALTH_INTERVAL_MS (or never), else returns
 * at once. EDDY_EIO (with the path and reason in err) when the file cannot be
 * created or updated; the next attempt still waits for the interval, so a
 * broken path is reported once a second at most. Off: always EDDY_OK.
 */
EDDY_MUST_USE eddy_err eddy_health_touch(struct eddy_health *h, uint64_t now_ms,
                                         struct eddy_error *err);

#endif
