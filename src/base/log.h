/*
 * log.h - structured logs, one JSON object a line (or text for people).
 *
 * Each line carries time, level and msg, plus whichever of the context fields
 * are set: entity, event id, seq, message id, AWS request id, error.
 * Callers never pass credentials or signatures; payloads are logged only at
 * debug level (check eddy_log_enabled first).
 */
#ifndef EDDY_BASE_LOG_H
#define EDDY_BASE_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum eddy_log_level { EDDY_LOG_DEBUG, EDDY_LOG_INFO, EDDY_LOG_WARN, EDDY_LOG_ERROR, EDDY_LOG_OFF };
enum eddy_log_format { EDDY_LOG_JSON, EDDY_LOG_TEXT };

struct eddy_log_fields {
    const char *entity;
    const char *event_id;
    const char *message_id;
    const char *request_id;
    const char *error;
    int64_t seq; /* < 0: absent */
};

#define EDDY_LOG_NOSEQ ((int64_t)-1)

void eddy_log_configure(enum eddy_log_level level, enum eddy_log_format format, FILE *out);
bool eddy_log_enabled(enum eddy_log_level level);
/* Parse "debug", "info", "warn", "error", "off"; false when unknown. */
bool eddy_log_level_parse(const char *s, enum eddy_log_level *out);

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void eddy_log(enum eddy_log_level level, const struct eddy_log_fields *f, const char *fmt, ...);

#define EDDY_DEBUG(...) eddy_log(EDDY_LOG_DEBUG, NULL, __VA_ARGS__)
#define EDDY_INFO(...) eddy_log(EDDY_LOG_INFO, NULL, __VA_ARGS__)
#define EDDY_WARN(...) eddy_log(EDDY_LOG_WARN, NULL, __VA_ARGS__)
#define EDDY_ERROR(...) eddy_log(EDDY_LOG_ERROR, NULL, __VA_ARGS__)

#endif
