/*
 * credentials.c - the AWS credential chain, cached and refreshed on the loop
 * (see credentials.h for the contract).
 *
 * A resolution walks the providers in order (one a file, behind the one
 * interface of creds_provider.h). The environment and the shared
 * files are read synchronously, on the loop, from a 0 ms timer callback:
 * they are small local files (capped at 1 MiB) read once per resolution,
 * which is cheaper and simpler than a uv_fs round trip per file, and a
 * resolution runs at start and about once per credential lifetime. The ECS
 * and IMDS providers go through the injected struct eddy_transport, one
 * request at a time, as a small state machine driven by the transport's
 * callback.
 *
 * Two timers: `kick` (0 ms) moves every get and every lazily noticed refresh
 * onto the loop, so callbacks never run inside eddy_creds_get; `refresh`
 * (unreferenced, so it never keeps a loop alive on its own) fires ahead of
 * expiry and drives the retry backoff after a failed refresh. Everything
 * that holds a secret (credentials, the IMDS token, header lines, file text,
 * parsed JSON) is wiped before it is freed. Nothing here logs a secret:
 * details name providers, variables, files and reasons only.
 */
#include "aws/credentials.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/creds_provider.h"
#include "base/alloc.h"
#include "base/log.h"

/* ------------------------------------------------------------------------ */
/* Parsing: RFC 3339 times and the ECS/IMDS credentials document. */

static bool digits(const char *p, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

/* The zone suffix at p (len n): Z or +hh:mm / -hh:mm, as an offset in ms. */
static bool parse_zone(const char *p, size_t n, int64_t *off_ms)
{
    int hh, mm;
    if (n == 1 && (p[0] == 'Z' || p[0] == 'z')) {
        *off_ms = 0;
        return true;
    }
    if (n != 6 || (p[0] != '+' && p[0] != '-') || p[3] != ':' || !digits(p + 1, 2, &hh) ||
        !digits(p + 4, 2, &mm) || hh > 23 || mm > 59)
        return false;
    *off_ms = (p[0] == '-' ? -1 : 1) * ((int64_t)hh * 3600 + mm * 60) * 1000;
    return true;
}

eddy_err eddy_creds_parse_time(struct eddy_str s, int64_t *unix_ms)
{
    const char *p = s.ptr;
    int y, mo, d, h, mi, se;
    if (!p || s.len < 20 || !digits(p, 4, &y) || p[4] != '-' || !digits(p + 5, 2, &mo) ||
        p[7] != '-' || !digits(p + 8, 2, &d) || (p[10] != 'T' && p[10] != 't' && p[10] != ' ') ||
        !digits(p + 11, 2, &h) || p[13] != ':' || !digits(p + 14, 2, &mi) || p[16] != ':' ||
        !digits(p + 17, 2, &se))
        return EDDY_EPARSE;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 60)
        return EDDY_EPARSE;
    size_t i = 19;
    int64_t frac_ms = 0;
    if (p[i] == '.') {
        size_t start = ++i;
        int64_t scale = 100;
        while (i < s.len && p[i] >= '0' && p[i] <= '9') {
            frac_ms += (p[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start)
            return EDDY_EPARSE;
    }
    int64_t off_ms;
    if (!parse_zone(p + i, s.len - i, &off_ms))
        return EDDY_EPARSE;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + mi * 60 + se;
    *unix_ms = secs * 1000 + frac_ms - off_ms;
    return EDDY_OK;
}

/* Wipe every string in a parsed tree before it is freed. */
static void json_wipe(cJSON *j)
{
    for (; j; j = j->next) {
        if (j->valuestring)
            eddy_wipe(j->valuestring, strlen(j->valuestring));
        json_wipe(j->child);
    }
}

static eddy_err doc_string(const cJSON *root, const char *name, bool required, const char *provider,
                           const char **out, struct eddy_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return eddy_error_set(err, EDDY_EPARSE, "%s: response has no %s", provider, name);
        return EDDY_OK;
    }
    if (!cJSON_IsString(v) || (required && v->valuestring[0] == '\0'))
        return eddy_error_set(err, EDDY_EPARSE, "%s: %s is not a non-empty string", provider, name);
    *out = v->valuestring;
    return EDDY_OK;
}

static eddy_err doc_fields(const cJSON *root, const char *provider, bool require_code,
                           struct eddy_credentials *out, struct eddy_error *err)
{
    const char *code, *akid, *secret, *token, *exp;
    eddy_err e;
    if (require_code) {
        if ((e = doc_string(root, "Code", true, provider, &code, err)) != EDDY_OK)
            return e;
        if (strcmp(code, "Success") != 0)
            return eddy_error_set(err, EDDY_ECREDENTIALS, "%s: Code is \"%.40s\", not Success",
                                  provider, code);
    }
    if ((e = doc_string(root, "AccessKeyId", true, provider, &akid, err)) != EDDY_OK ||
        (e = doc_string(root, "SecretAccessKey", true, provider, &secret, err)) != EDDY_OK ||
        (e = doc_string(root, "Token", false, provider, &token, err)) != EDDY_OK ||
        (e = doc_string(root, "Expiration", false, provider, &exp, err)) != EDDY_OK)
        return e;
    int64_t expires = 0;
    if (exp && eddy_creds_parse_time(eddy_str_c(exp), &expires) != EDDY_OK)
        return eddy_error_set(err, EDDY_EPARSE, "%s: Expiration is not an RFC 3339 time", provider);
    *out = (struct eddy_credentials){
        .access_key_id = eddy_strdup(akid),
        .secret_access_key = eddy_strdup(secret),
        .session_token = token && token[0] ? eddy_strdup(token) : NULL,
        .expires_unix_ms = expires,
        .provider = provider,
    };
    return EDDY_OK;
}

eddy_err eddy_creds_parse_document(struct eddy_str body, const char *provider, bool require_code,
                                   struct eddy_credentials *out, struct eddy_error *err)
{
    if (!out || !provider || (body.len && !body.ptr))
        return eddy_error_set(err, EDDY_EINVAL, "credentials: bad arguments");
    cJSON *root = body.len ? cJSON_ParseWithLength(body.ptr, body.len) : NULL;
    eddy_err e;
    if (!root || !cJSON_IsObject(root))
        e = eddy_error_set(err, EDDY_EPARSE, "%s: credentials response is not a JSON object",
                           provider);
    else
        e = doc_fields(root, provider, require_code, out, err);
    if (root) {
        json_wipe(root);
        cJSON_Delete(root);
    }
    return e;
}

void eddy_credentials_cleanup(struct eddy_credentials *c)
{
    if (!c)
        return;
    eddy_free_secret(c->access_key_id);
    eddy_free_secret(c->secret_access_key);
    eddy_free_secret(c->session_token);
    *c = (struct eddy_credentials){0};
}

/* ------------------------------------------------------------------------ */
/* The detail text: "provider: reason; provider: reason". */

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void
creds_note(struct eddy_creds *c, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (c->detail.len)
        eddy_buf_puts(&c->detail, "; ");
    eddy_buf_puts(&c->detail, line); /* a full detail is cut, never fatal */
}

/* An environment variable, with "" treated as unset (as the SDKs do). */
const char *creds_env(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

/* ------------------------------------------------------------------------ */
/* HTTP plumbing shared by the ECS and IMDS providers. */

static void on_http(eddy_err err, const struct eddy_http_response *resp, void *ud);

bool creds_is_http_url(const char *u)
{
    size_t skip = strncasecmp(u, "http://", 7) == 0    ? 7
                  : strncasecmp(u, "https://", 8) == 0 ? 8
                                                       : 0;
    if (!skip || u[skip] == '\0' || u[skip] == '/')
        return false;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++) {
        if (*p <= ' ' || *p == 0x7f)
            return false; /* no spaces or control bytes: they would corrupt the request */
    }
    return true;
}

eddy_err creds_send_req(struct eddy_creds *c, enum step step, const char *method, const char *url,
                        const char *const *headers, size_t nheaders, uint32_t timeout_ms)
{
    if (!c->transport.ops)
        return EDDY_EINVAL;
    struct eddy_http_request req = {
        .method = method,
        .url = url,
        .headers = headers,
        .nheaders = nheaders,
        .timeout_ms = timeout_ms,
        .max_response = REPLY_MAX,
    };
    eddy_err e = eddy_transport_send(&c->transport, &req, on_http, c, &c->req_id);
    if (e == EDDY_OK) {
        c->inflight = true;
        c->step = step;
    }
    return e;
}

/* "Name: value" for a header that may hold a secret (free with eddy_free_secret). */
char *creds_header_line(const char *name, const char *value)
{
    size_t n = strlen(name), v = strlen(value);
    char *h = eddy_malloc(n + 2 + v + 1);
    memcpy(h, name, n);
    memcpy(h + n, ": ", 2);
    memcpy(h + n + 2, value, v + 1);
    return h;
}

void creds_trim(char *s, size_t *len)
{
    size_t n = *len, start = 0;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    while (start < n && (s[start] == ' ' || s[start] == '\t'))
        start++;
    memmove(s, s + start, n - start);
    s[n - start] = '\0';
    *len = n - start;
}

/* A reply worth parsing, or a note saying why not. */
bool creds_reply_ok(struct eddy_creds *c, const char *what, eddy_err err,
                    const struct eddy_http_response *resp)
{
    if (err != EDDY_OK) {
        creds_note(c, "%s failed (%s)", what, eddy_err_msg(err));
        return false;
    }
    if (resp->status != 200) {
        creds_note(c, "%s returned HTTP %ld", what, resp->status);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* The resolution: run the chain, cache, schedule, answer the waiters. */

/* The providers, in the order the SDKs ask them. */
static const struct creds_provider *const chain[] = {
    &creds_env_provider,
    &creds_files_provider,
    &creds_ecs_provider,
    &creds_imds_provider,
};

static void on_refresh(uv_timer_t *t);
static void on_kick(uv_timer_t *t);
static void on_again(uv_timer_t *t);

static bool closing(const struct eddy_creds *c)
{
    return eddy_closer_closing(&c->closer);
}

static void flush(struct eddy_creds *c, eddy_err code, const struct eddy_credentials *creds,
                  const char *detail)
{
    /* Detach first: a callback may call eddy_creds_get, which queues anew. */
    struct eddy_list these, *q;
    eddy_list_move(&c->waiters, &these);
    while ((q = eddy_list_head(&these))) {
        struct waiter *w = eddy_list_data(q, struct waiter, link);
        eddy_list_remove(q);
        w->cb(code, creds, detail, w->ud);
        free(w);
    }
}

static void resolution_clear(struct eddy_creds *c)
{
    free(c->imds_base);
    c->imds_base = NULL;
    eddy_free_secret(c->imds_token);
    c->imds_token = NULL;
    c->step = STEP_NONE;
    c->resolving = false;
}

static bool usable(const struct eddy_creds *c, int64_t now)
{
    return c->have && (c->cur.expires_unix_ms == 0 ||
                       now < c->cur.expires_unix_ms - (int64_t)c->timing.margin_ms);
}

/* Refresh ahead of expiry, or at half-life for short-lived credentials. */
static void schedule_refresh(struct eddy_creds *c, int64_t now)
{
    int64_t exp = c->cur.expires_unix_ms;
    if (!c->have || exp == 0) {
        c->refresh_at = 0;
        uv_timer_stop(&c->refresh);
        return;
    }
    int64_t ahead = exp - (int64_t)c->timing.refresh_ahead_ms;
    int64_t half = now + (exp - now) / 2;
    c->refresh_at = ahead > half ? ahead : half;
    int64_t delay = c->refresh_at - now;
    if (delay < (int64_t)c->timing.retry_min_ms)
        delay = c->timing.retry_min_ms;
    uv_timer_start(&c->refresh, on_refresh, (uint64_t)delay, 0);
}

static void finish_err(struct eddy_creds *c, eddy_err code)
{
    resolution_clear(c);
    int64_t now = eddy_clock_unix_ms(c->clock);
    if (c->have && c->cur.expires_unix_ms && now >= c->cur.expires_unix_ms) {
        eddy_credentials_cleanup(&c->cur);
        c->have = false;
        c->refresh_at = 0;
    }
    if (c->have && c->cur.expires_unix_ms) {
        /* Keep the old ones while valid; try again with backoff. */
        uint32_t max = c->timing.retry_max_ms;
        c->retry_ms = !c->retry_ms            ? c->timing.retry_min_ms
                      : c->retry_ms > max / 2 ? max
                                              : c->retry_ms * 2;
        c->refresh_at = now + c->retry_ms;
        uv_timer_start(&c->refresh, on_refresh, c->retry_ms, 0);
        EDDY_WARN("credential refresh failed, retrying in %u ms: %s", (unsigned)c->retry_ms,
                  eddy_buf_cstr(&c->detail));
    }
    flush(c, code, NULL, eddy_buf_cstr(&c->detail));
}

static void finish_ok(struct eddy_creds *c, struct eddy_credentials *got)
{
    int64_t now = eddy_clock_unix_ms(c->clock);
    if (got->expires_unix_ms && got->expires_unix_ms <= now) {
        char when[21];
        eddy_time_rfc3339(got->expires_unix_ms / 1000, when);
        creds_note(c, "%s: the credentials expired at %s", got->provider, when);
        eddy_credentials_cleanup(got);
        finish_err(c, EDDY_ECREDENTIALS);
        return;
    }
    resolution_clear(c);
    eddy_credentials_cleanup(&c->cur);
    c->cur = *got;
    c->have = true;
    c->retry_ms = 0;
    schedule_refresh(c, now);
    if (c->cur.expires_unix_ms) {
        char when[21];
        eddy_time_rfc3339(c->cur.expires_unix_ms / 1000, when);
        EDDY_INFO("credentials from %s, expiring %s", c->cur.provider, when);
    } else {
        EDDY_INFO("credentials from %s", c->cur.provider);
    }
    flush(c, EDDY_OK, &c->cur, NULL);
}

static void conclude(struct eddy_creds *c, enum outcome o, struct eddy_credentials *got)
{
    switch (o) {
    case FOUND:
        finish_ok(c, got);
        break;
    case FATAL:
        finish_err(c, EDDY_ECONFIG);
        break;
    case NOTHING:
    case STOP:
        finish_err(c, EDDY_ECREDENTIALS);
        break;
    case AGAIN:
        uv_timer_start(&c->again, on_again, c->timing.retry_min_ms, 0);
        break;
    case PENDING:
        break;
    }
}

static void resolve(struct eddy_creds *c)
{
    struct eddy_credentials got = {0};
    c->resolving = true;
    c->want_refresh = false;
    c->attempts = 0;
    eddy_buf_reset(&c->detail);
    enum outcome o = NOTHING;
    for (c->provider = 0; c->provider < EDDY_ARRAY_SIZE(chain) && o == NOTHING; c->provider++) {
        o = chain[c->provider]->start(c, &got);
        if (o != NOTHING)
            break;
    }
    conclude(c, o, &got);
}

static void on_http(eddy_err err, const struct eddy_http_response *resp, void *ud)
{
    struct eddy_creds *c = ud;
    c->inflight = false;
    if (closing(c)) {
        eddy_closer_release(&c->closer); /* the hold of eddy_creds_close */
        return;
    }
    struct eddy_credentials got = {0};
    enum outcome o = NOTHING;
    if (c->step == STEP_NONE || c->provider >= EDDY_ARRAY_SIZE(chain) ||
        chain[c->provider]->done == NULL)
        creds_note(c, "internal: reply with no request");
    else
        o = chain[c->provider]->done(c, err, resp, &got);
    conclude(c, o, &got);
}

/* The provider that said AGAIN starts over, in the same resolution. */
static void on_again(uv_timer_t *t)
{
    struct eddy_creds *c = eddy_container_of(t, struct eddy_creds, again);
    if (closing(c) || !c->resolving)
        return;
    struct eddy_credentials got = {0};
    conclude(c, chain[c->provider]->start(c, &got), &got);
}

static void on_refresh(uv_timer_t *t)
{
    struct eddy_creds *c = eddy_container_of(t, struct eddy_creds, refresh);
    if (!closing(c) && !c->resolving)
        resolve(c);
}

static void on_kick(uv_timer_t *t)
{
    struct eddy_creds *c = eddy_container_of(t, struct eddy_creds, kick);
    if (closing(c))
        return;
    bool ok = usable(c, eddy_clock_unix_ms(c->clock));
    if (ok && !eddy_list_empty(&c->waiters)) {
        /* Serve the cached ones, even mid-refresh. Gets made by these
         * callbacks restarted the kick and are served on the next one. */
        flush(c, EDDY_OK, &c->cur, NULL);
    }
    if (closing(c) || c->resolving || c->is_static)
        return;
    if ((!ok && !eddy_list_empty(&c->waiters)) || c->want_refresh)
        resolve(c);
}

/* ------------------------------------------------------------------------ */
/* The public API. */

/* Every handle is closed and the canceled request answered: fail the gets
 * still waiting, before the caller's close callback runs. */
static void creds_last(struct eddy_closer *closer)
{
    struct eddy_creds *c = eddy_container_of(closer, struct eddy_creds, closer);
    flush(c, EDDY_ECANCELED, NULL, "credentials closed");
    resolution_clear(c);
}

/* After the caller's close callback. */
static void creds_free(struct eddy_closer *closer)
{
    struct eddy_creds *c = eddy_container_of(closer, struct eddy_creds, closer);
    eddy_credentials_cleanup(&c->cur);
    eddy_buf_cleanup(&c->detail);
    free(c);
}

struct eddy_creds *eddy_creds_new(uv_loop_t *loop, struct eddy_transport transport,
                                  const struct eddy_clock *clock)
{
    if (!loop)
        return NULL;
    struct eddy_creds *c = eddy_calloc(1, sizeof *c);
    c->loop = loop;
    c->transport = transport;
    c->clock = clock ? clock : eddy_clock_system();
    c->timing = EDDY_CREDS_TIMING_DEFAULT;
    eddy_buf_init(&c->detail, DETAIL_MAX);
    uv_timer_init(loop, &c->kick);
    uv_timer_init(loop, &c->refresh);
    uv_timer_init(loop, &c->again);
    uv_unref((uv_handle_t *)&c->refresh); /* housekeeping never keeps a loop alive */
    eddy_list_init(&c->waiters);
    eddy_closer_init(&c->closer, creds_last, creds_free);
    return c;
}

struct eddy_creds *eddy_creds_new_static(uv_loop_t *loop, const char *access_key_id,
                                         const char *secret_access_key, const char *session_token)
{
    if (!access_key_id || !access_key_id[0] || !secret_access_key || !secret_access_key[0])
        return NULL;
    struct eddy_creds *c = eddy_creds_new(loop, (struct eddy_transport){0}, NULL);
    if (!c)
        return NULL;
    c->is_static = true;
    c->have = true;
    c->cur = (struct eddy_credentials){
        .access_key_id = eddy_strdup(access_key_id),
        .secret_access_key = eddy_strdup(secret_access_key),
        .session_token = session_token && session_token[0] ? eddy_strdup(session_token) : NULL,
        .provider = "static",
    };
    return c;
}

void eddy_creds_set_timing(struct eddy_creds *c, const struct eddy_creds_timing *t)
{
    if (!c || !t)
        return;
    c->timing = *t;
    if (c->timing.retry_min_ms == 0)
        c->timing.retry_min_ms = 1;
    if (c->timing.retry_max_ms < c->timing.retry_min_ms)
        c->timing.retry_max_ms = c->timing.retry_min_ms;
    if (c->have && !c->resolving && !closing(c))
        schedule_refresh(c, eddy_clock_unix_ms(c->clock));
}

const struct eddy_credentials *eddy_creds_current(struct eddy_creds *c)
{
    if (!c || closing(c) || !c->have)
        return NULL;
    if (c->cur.expires_unix_ms == 0)
        return &c->cur;
    int64_t now = eddy_clock_unix_ms(c->clock);
    if (c->refresh_at && now >= c->refresh_at && !c->resolving && !c->want_refresh) {
        c->want_refresh = true; /* the timer is late: refresh from the loop now */
        uv_timer_start(&c->kick, on_kick, 0, 0);
    }
    return usable(c, now) ? &c->cur : NULL;
}

eddy_err eddy_creds_get(struct eddy_creds *c, eddy_creds_cb cb, void *ud)
{
    if (!c || !cb)
        return EDDY_EINVAL;
    if (closing(c))
        return EDDY_ECANCELED;
    struct waiter *w = eddy_calloc(1, sizeof *w);
    w->cb = cb;
    w->ud = ud;
    eddy_list_insert_tail(&c->waiters, &w->link);
    uv_timer_start(&c->kick, on_kick, 0, 0);
    return EDDY_OK;
}

void eddy_creds_close(struct eddy_creds *c, eddy_close_cb cb, void *ud)
{
    if (!c || !eddy_closer_begin(&c->closer, cb, ud))
        return;
    eddy_closer_close(&c->closer, (uv_handle_t *)&c->kick);
    eddy_closer_close(&c->closer, (uv_handle_t *)&c->refresh);
    eddy_closer_close(&c->closer, (uv_handle_t *)&c->again);
    if (c->inflight) { /* its callback (EDDY_ECANCELED) is still owed */
        eddy_closer_hold(&c->closer);
        eddy_transport_cancel(&c->transport, c->req_id);
    }
}
