/*
 * log.c - JSON-lines and text log output (see log.h).
 *
 * A line is formatted into a stack buffer and written with one fwrite, so
 * lines from one process never interleave.
 */
#include "base/log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"

static enum eddy_log_level min_level = EDDY_LOG_INFO;
static enum eddy_log_format out_format = EDDY_LOG_JSON;
static FILE *out_file;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void eddy_log_configure(enum eddy_log_level level, enum eddy_log_format format, FILE *out)
{
    min_level = level;
    out_format = format;
    out_file = out;
}

bool eddy_log_enabled(enum eddy_log_level level)
{
    return level >= min_level && level != EDDY_LOG_OFF;
}

bool eddy_log_level_parse(const char *s, enum eddy_log_level *out)
{
    for (int i = 0; i <= EDDY_LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum eddy_log_level)i;
            return true;
        }
    }
    return false;
}

/* Append s as the inside of a JSON string. */
static void json_escape(struct eddy_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            eddy_buf_putc(b, '\\');
            eddy_buf_putc(b, (char)c);
        } else if (c < 0x20) {
            eddy_buf_putf(b, "\\u%04x", c);
        } else {
            eddy_buf_putc(b, (char)c);
        }
    }
}

static void field(struct eddy_buf *b, const char *key, const char *val)
{
    if (val == NULL)
        return;
    if (out_format == EDDY_LOG_JSON) {
        eddy_buf_putf(b, ",\"%s\":\"", key);
        json_escape(b, val);
        eddy_buf_putc(b, '"');
    } else {
        eddy_buf_putf(b, " %s=%s", key, val);
    }
}

static void timestamp(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

void eddy_log(enum eddy_log_level level, const struct eddy_log_fields *f, const char *fmt, ...)
{
    if (!eddy_log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char ts[32];
    timestamp(ts);

    struct eddy_buf b;
    /* No cap of its own: the message is cut at 2 KiB above and the fields
     * are ids and reasons of bounded length, so a line is a few KiB at
     * most, and is never cut into broken JSON. */
    eddy_buf_init(&b, 0);
    if (out_format == EDDY_LOG_JSON) {
        eddy_buf_putf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, level_names[level]);
        json_escape(&b, msg);
        eddy_buf_putc(&b, '"');
    } else {
        eddy_buf_putf(&b, "%s %-5s %s", ts, level_names[level], msg);
    }
    if (f) {
        field(&b, "entity", f->entity);
        field(&b, "event_id", f->event_id);
        if (f->seq >= 0) {
            char seq[24];
            snprintf(seq, sizeof seq, "%lld", (long long)f->seq);
            if (out_format == EDDY_LOG_JSON)
                eddy_buf_putf(&b, ",\"seq\":%s", seq);
            else
                field(&b, "seq", seq);
        }
        field(&b, "message_id", f->message_id);
        field(&b, "request_id", f->request_id);
        field(&b, "error", f->error);
    }
    if (out_format == EDDY_LOG_JSON)
        eddy_buf_putc(&b, '}');
    eddy_buf_putc(&b, '\n');
    if (eddy_buf_refused(&b)) { /* past 64 MiB: cannot happen, said anyway */
        eddy_buf_reset(&b);
        eddy_buf_putf(&b, "%s %s a log line over the buffer cap was dropped\n", ts,
                      level_names[level]);
    }
    FILE *o = out_file ? out_file : stderr;
    fwrite(b.ptr, 1, b.len, o);
    fflush(o);
    eddy_buf_cleanup(&b);
}
