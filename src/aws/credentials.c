/*
 * credentials.c - the AWS credential chain, cached and refreshed on the loop
 * (see credentials.h for the contract).
 *
 * A resolution walks the providers in order. The environment and the shared
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

#include "aws/ini.h"
#include "base/alloc.h"
#include "base/log.h"

#define ECS_HOST_URL "http://169.254.170.2"
#define IMDS_DEFAULT_URL "http://169.254.169.254"
#define IMDS_IPV6_URL "http://[fd00:ec2::254]"
#define ECS_TIMEOUT_MS 2000u
#define IMDS_TIMEOUT_MS 1000u
#define REPLY_MAX ((size_t)64 << 10)
#define SHARED_FILE_MAX ((size_t)1 << 20)
#define TOKEN_FILE_MAX ((size_t)16 << 10)
#define DETAIL_MAX ((size_t)4096)

struct waiter {
    eddy_creds_cb cb;
    void *ud;
    struct waiter *next;
};

enum step { STEP_NONE, STEP_ECS, STEP_IMDS_TOKEN, STEP_IMDS_ROLE, STEP_IMDS_CREDS };

/*
 * What a provider concluded: credentials found; nothing here, try the next;
 * a configuration error (EDDY_ECONFIG); configured but failed, so the chain
 * stops (EDDY_ECREDENTIALS); a request is in flight.
 */
enum outcome { FOUND, NOTHING, FATAL, STOP, PENDING };

struct eddy_creds {
    uv_loop_t *loop;
    struct eddy_transport transport;
    const struct eddy_clock *clock;
    struct eddy_creds_timing timing;
    bool is_static;

    struct eddy_credentials cur; /* valid when have */
    bool have;
    int64_t refresh_at; /* unix ms; 0 when cur does not expire */
    uint32_t retry_ms;  /* next backoff after a failed refresh; 0 = none yet */

    uv_timer_t kick;
    uv_timer_t refresh;
    struct waiter *waiters;
    bool want_refresh;

    /* the resolution in progress */
    bool resolving;
    enum step step;
    bool inflight;
    uint64_t req_id;
    struct eddy_buf detail;
    char *imds_base;
    char *imds_token; /* secret */

    bool closing;
    int open_handles;
};

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
static void
note(struct eddy_creds *c, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (c->detail.len)
        (void)eddy_buf_appends(&c->detail, "; ");
    (void)eddy_buf_appends(&c->detail, line); /* a full detail is cut, never fatal */
}

/* An environment variable, with "" treated as unset (as the SDKs do). */
static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

/* ------------------------------------------------------------------------ */
/* Provider 1: the environment. */

static enum outcome from_env(struct eddy_creds *c, struct eddy_credentials *out)
{
    const char *akid = env("AWS_ACCESS_KEY_ID");
    const char *secret = env("AWS_SECRET_ACCESS_KEY");
    if (!akid && !secret) {
        note(c, "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set");
        return NOTHING;
    }
    if (!akid || !secret) {
        note(c, "environment: %s is set but %s is not",
             akid ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
             akid ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return FATAL;
    }
    const char *token = env("AWS_SESSION_TOKEN");
    *out = (struct eddy_credentials){
        .access_key_id = eddy_strdup(akid),
        .secret_access_key = eddy_strdup(secret),
        .session_token = token ? eddy_strdup(token) : NULL,
        .provider = "environment",
    };
    return FOUND;
}

/* ------------------------------------------------------------------------ */
/* Provider 2: the shared credentials and config files. */

/* Read a whole small file. Returns 0 or an errno value (EFBIG over max). */
static int read_small_file(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = 0;
    char *p = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = errno;
        goto done;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        rc = S_ISREG(st.st_mode) ? EFBIG : EISDIR;
        goto done;
    }
    size_t size = (size_t)st.st_size, n = 0;
    p = eddy_malloc(size + 1);
    while (n < size) {
        ssize_t r = read(fd, p + n, size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? errno : 0;
            break; /* a file that shrank is read as it is now */
        }
        n += (size_t)r;
    }
    p[n] = '\0';
    *len = n;
done:
    close(fd);
    if (rc) {
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* path from var, else $HOME/<rel>; a leading "~/" is expanded. NULL when no HOME. */
static char *shared_path(const char *var, const char *rel)
{
    const char *v = env(var);
    const char *home = env("HOME");
    struct eddy_buf b;
    eddy_buf_init(&b, 4096);
    if (v && strncmp(v, "~/", 2) == 0 && home)
        (void)eddy_buf_appendf(&b, "%s/%s", home, v + 2);
    else if (v)
        (void)eddy_buf_appends(&b, v);
    else if (home)
        (void)eddy_buf_appendf(&b, "%s/%s", home, rel);
    else
        return NULL;
    return eddy_buf_take(&b, NULL);
}

/* What a file says about one profile. Views into the file text. */
struct profile_scan {
    const char *profile;
    bool config_style; /* sections are "profile <name>" (and "default") */
    bool seen;
    bool unsupported; /* role_arn, sso_*, credential_process, ... */
    struct eddy_str akid, secret, token;
};

static bool section_matches(const struct profile_scan *s, struct eddy_str section)
{
    if (!s->config_style)
        return eddy_str_eqc(section, s->profile);
    if (strcmp(s->profile, "default") == 0 && eddy_str_eqc(section, "default"))
        return true;
    if (section.len < 8 || strncmp(section.ptr, "profile", 7) != 0 ||
        (section.ptr[7] != ' ' && section.ptr[7] != '\t'))
        return false;
    struct eddy_str name = {section.ptr + 8, section.len - 8};
    while (name.len && (name.ptr[0] == ' ' || name.ptr[0] == '\t')) {
        name.ptr++;
        name.len--;
    }
    return eddy_str_eqc(name, s->profile);
}

static bool key_is(struct eddy_str key, const char *name)
{
    return key.len == strlen(name) && strncasecmp(key.ptr, name, key.len) == 0;
}

static bool on_ini(struct eddy_str section, struct eddy_str key, struct eddy_str value, void *ud)
{
    struct profile_scan *s = ud;
    if (!section_matches(s, section))
        return true;
    s->seen = true;
    if (!key.ptr)
        return true;
    if (key_is(key, "aws_access_key_id"))
        s->akid = value;
    else if (key_is(key, "aws_secret_access_key"))
        s->secret = value;
    else if (key_is(key, "aws_session_token"))
        s->token = value;
    else if (key_is(key, "role_arn") || key_is(key, "credential_process") ||
             key_is(key, "sso_session") || key_is(key, "sso_start_url") ||
             key_is(key, "web_identity_token_file"))
        s->unsupported = true;
    return true;
}

/* One shared file, read and scanned for one profile. */
struct shared_file {
    char *path;
    char *text; /* secret: wiped when freed */
    size_t len;
    struct profile_scan scan;
    char status[400]; /* why it gave nothing, for the detail */
};

static void shared_load(struct shared_file *f, const char *var, const char *rel,
                        const char *profile, bool config_style)
{
    *f = (struct shared_file){.scan = {.profile = profile, .config_style = config_style}};
    f->path = shared_path(var, rel);
    if (!f->path) {
        snprintf(f->status, sizeof f->status, "%s not set and HOME not set", var);
        return;
    }
    int rc = read_small_file(f->path, SHARED_FILE_MAX, &f->text, &f->len);
    if (rc == ENOENT) {
        snprintf(f->status, sizeof f->status, "no file %s", f->path);
        return;
    }
    if (rc) {
        snprintf(f->status, sizeof f->status, "cannot read %s (%s)", f->path,
                 rc == EFBIG ? "larger than 1 MiB" : strerror(rc));
        return;
    }
    struct eddy_error perr = {0};
    if (eddy_ini_parse((struct eddy_str){f->text, f->len}, on_ini, &f->scan, &perr) != EDDY_OK) {
        snprintf(f->status, sizeof f->status, "%s: %s", f->path, eddy_error_text(&perr));
        f->scan.akid = f->scan.secret = f->scan.token = (struct eddy_str){NULL, 0};
    } else if (!f->scan.seen) {
        snprintf(f->status, sizeof f->status, "no profile in %s", f->path);
    } else {
        snprintf(
            f->status, sizeof f->status, "no aws_access_key_id for the profile in %s%s", f->path,
            f->scan.unsupported ? " (role_arn, sso and credential_process are not supported)" : "");
    }
}

static void shared_cleanup(struct shared_file *f)
{
    if (f->text) {
        eddy_wipe(f->text, f->len);
        free(f->text);
    }
    free(f->path);
}

/* The profile's keys in f, if it has any. */
static enum outcome shared_take(struct eddy_creds *c, const struct shared_file *f,
                                struct eddy_credentials *out)
{
    const struct profile_scan *s = &f->scan;
    if (!s->akid.len && !s->secret.len)
        return NOTHING;
    if (!s->akid.len || !s->secret.len) {
        note(c, "shared-files: profile '%s' in %s has %s but no %s", s->profile, f->path,
             s->akid.len ? "aws_access_key_id" : "aws_secret_access_key",
             s->akid.len ? "aws_secret_access_key" : "aws_access_key_id");
        return FATAL;
    }
    *out = (struct eddy_credentials){
        .access_key_id = eddy_strndup(s->akid.ptr, s->akid.len),
        .secret_access_key = eddy_strndup(s->secret.ptr, s->secret.len),
        .session_token = s->token.len ? eddy_strndup(s->token.ptr, s->token.len) : NULL,
        .provider = "shared-files",
    };
    return FOUND;
}

/* The credentials file wins over the config file for the same profile. */
static enum outcome from_files(struct eddy_creds *c, struct eddy_credentials *out)
{
    const char *explicit_profile = env("AWS_PROFILE");
    const char *profile = explicit_profile ? explicit_profile : "default";
    struct shared_file f[2];
    shared_load(&f[0], "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials", profile, false);
    shared_load(&f[1], "AWS_CONFIG_FILE", ".aws/config", profile, true);
    enum outcome o = shared_take(c, &f[0], out);
    if (o == NOTHING)
        o = shared_take(c, &f[1], out);
    if (o == NOTHING) {
        bool missing = explicit_profile && !f[0].scan.seen && !f[1].scan.seen;
        note(c, "shared-files: profile '%s'%s: %s; %s", profile,
             missing ? " (AWS_PROFILE) not found" : "", f[0].status, f[1].status);
        o = missing ? FATAL : NOTHING;
    }
    shared_cleanup(&f[0]);
    shared_cleanup(&f[1]);
    return o;
}

/* ------------------------------------------------------------------------ */
/* HTTP plumbing shared by the ECS and IMDS providers. */

static void on_http(eddy_err err, const struct eddy_http_response *resp, void *ud);

static bool is_http_url(const char *u)
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

static eddy_err send_req(struct eddy_creds *c, enum step step, const char *method, const char *url,
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
static char *header_line(const char *name, const char *value)
{
    size_t n = strlen(name), v = strlen(value);
    char *h = eddy_malloc(n + 2 + v + 1);
    memcpy(h, name, n);
    memcpy(h + n, ": ", 2);
    memcpy(h + n + 2, value, v + 1);
    return h;
}

static void trim_in_place(char *s, size_t *len)
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

/* ------------------------------------------------------------------------ */
/* Provider 3: the ECS container endpoint. */

/* The Authorization value, or NULL for none. The _FILE variable wins, as in
 * the SDKs, because it is how a rotated token is delivered. */
static enum outcome ecs_token(struct eddy_creds *c, char **out)
{
    const char *file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *direct = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    size_t len = 0;
    *out = NULL;
    if (file) {
        int rc = read_small_file(file, TOKEN_FILE_MAX, out, &len);
        if (rc) {
            note(c, "ecs: cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s (%s)", file,
                 rc == EFBIG ? "larger than 16 KiB" : strerror(rc));
            return FATAL;
        }
        trim_in_place(*out, &len);
    } else if (direct) {
        len = strlen(direct);
        *out = eddy_strndup(direct, len);
    }
    if (!*out)
        return FOUND;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)(*out)[i];
        if (ch < ' ' && ch != '\t') {
            note(c, "ecs: the authorization token holds a line break or control byte");
            eddy_wipe(*out, len);
            free(*out);
            *out = NULL;
            return FATAL;
        }
    }
    if (len == 0) {
        free(*out);
        *out = NULL;
    }
    return FOUND;
}

static enum outcome ecs_url(struct eddy_creds *c, const char *rel, const char *full, char **url)
{
    struct eddy_buf b;
    eddy_buf_init(&b, 8192);
    /* RELATIVE wins over FULL, as in the SDKs. */
    if (rel)
        (void)eddy_buf_appendf(&b, "%s%s%s", ECS_HOST_URL, rel[0] == '/' ? "" : "/", rel);
    else
        (void)eddy_buf_appends(&b, full);
    if (!is_http_url(eddy_buf_cstr(&b))) {
        note(c, "ecs: %s is not a valid %s",
             rel ? "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" : "AWS_CONTAINER_CREDENTIALS_FULL_URI",
             rel ? "path" : "http:// or https:// URL");
        eddy_buf_cleanup(&b);
        return FATAL;
    }
    *url = eddy_buf_take(&b, NULL);
    return FOUND;
}

/* ECS is configured but failed: the chain stops here (see credentials.h). */
static enum outcome ecs_failed(struct eddy_creds *c)
{
    note(c, "imds: not tried, the ECS container endpoint is configured");
    return STOP;
}

static enum outcome ecs_start(struct eddy_creds *c)
{
    const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (!rel && !full) {
        note(c, "ecs: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and "
                "AWS_CONTAINER_CREDENTIALS_FULL_URI not set");
        return NOTHING;
    }
    char *url = NULL, *token = NULL, *auth = NULL;
    enum outcome o = ecs_url(c, rel, full, &url);
    if (o == FOUND)
        o = ecs_token(c, &token);
    if (o != FOUND)
        goto done;
    const char *headers[2] = {"Accept: application/json", NULL};
    size_t n = 1;
    if (token)
        headers[n++] = auth = header_line("Authorization", token);
    eddy_err e = send_req(c, STEP_ECS, "GET", url, headers, n, ECS_TIMEOUT_MS);
    if (e == EDDY_OK) {
        o = PENDING;
    } else {
        note(c, "ecs: request not sent (%s)", eddy_err_msg(e));
        o = ecs_failed(c);
    }
done:
    free(url);
    eddy_free_secret(token);
    eddy_free_secret(auth);
    return o;
}

/* A reply worth parsing, or a note saying why not. */
static bool reply_ok(struct eddy_creds *c, const char *what, eddy_err err,
                     const struct eddy_http_response *resp)
{
    if (err != EDDY_OK) {
        note(c, "%s failed (%s)", what, eddy_err_msg(err));
        return false;
    }
    if (resp->status != 200) {
        note(c, "%s returned HTTP %ld", what, resp->status);
        return false;
    }
    return true;
}

static enum outcome ecs_done(struct eddy_creds *c, eddy_err err,
                             const struct eddy_http_response *resp, struct eddy_credentials *got)
{
    if (!reply_ok(c, "ecs: request", err, resp))
        return ecs_failed(c);
    struct eddy_error perr = {0};
    if (eddy_creds_parse_document(resp->body, "ecs", false, got, &perr) != EDDY_OK) {
        note(c, "%s", eddy_error_text(&perr));
        return ecs_failed(c);
    }
    return FOUND;
}

/* ------------------------------------------------------------------------ */
/* Provider 4: IMDSv2 (token PUT, role GET, credentials GET). */

static enum outcome imds_start(struct eddy_creds *c)
{
    const char *disabled = env("AWS_EC2_METADATA_DISABLED");
    if (disabled && strcasecmp(disabled, "true") == 0) {
        note(c, "imds: disabled by AWS_EC2_METADATA_DISABLED");
        return NOTHING;
    }
    const char *endpoint = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    const char *mode = env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
    if (endpoint && !is_http_url(endpoint)) {
        note(c, "imds: AWS_EC2_METADATA_SERVICE_ENDPOINT is not an http:// or https:// URL");
        return FATAL;
    }
    if (!endpoint)
        endpoint = mode && strcasecmp(mode, "IPv6") == 0 ? IMDS_IPV6_URL : IMDS_DEFAULT_URL;
    size_t n = strlen(endpoint);
    while (n && endpoint[n - 1] == '/')
        n--;
    c->imds_base = eddy_strndup(endpoint, n);
    char *url = eddy_malloc(n + sizeof "/latest/api/token");
    memcpy(url, c->imds_base, n);
    memcpy(url + n, "/latest/api/token", sizeof "/latest/api/token");
    const char *headers[] = {"X-aws-ec2-metadata-token-ttl-seconds: 21600"};
    eddy_err e = send_req(c, STEP_IMDS_TOKEN, "PUT", url, headers, 1, IMDS_TIMEOUT_MS);
    free(url);
    if (e != EDDY_OK) {
        note(c, "imds: token request not sent (%s)", eddy_err_msg(e));
        return NOTHING;
    }
    return PENDING;
}

/* GET <base>/latest/meta-data/iam/security-credentials/<role> with the token. */
static enum outcome imds_get(struct eddy_creds *c, enum step step, const char *role)
{
    struct eddy_buf url;
    eddy_buf_init(&url, 0);
    (void)eddy_buf_appendf(&url, "%s/latest/meta-data/iam/security-credentials/%s", c->imds_base,
                           role);
    char *h = header_line("X-aws-ec2-metadata-token", c->imds_token);
    const char *headers[] = {h};
    eddy_err e = send_req(c, step, "GET", eddy_buf_cstr(&url), headers, 1, IMDS_TIMEOUT_MS);
    eddy_free_secret(h);
    eddy_buf_cleanup(&url);
    if (e != EDDY_OK) {
        note(c, "imds: request not sent (%s)", eddy_err_msg(e));
        return NOTHING;
    }
    return PENDING;
}

static bool printable_token(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] == 0x7f)
            return false;
    }
    return n > 0;
}

static enum outcome imds_token_done(struct eddy_creds *c, eddy_err err,
                                    const struct eddy_http_response *resp)
{
    if (!reply_ok(c, "imds: token request", err, resp))
        return NOTHING;
    size_t n = resp->body.len;
    char *token = eddy_strndup(resp->body.ptr ? resp->body.ptr : "", n);
    trim_in_place(token, &n);
    if (!printable_token(token, n) || n > 4096) {
        note(c, "imds: token response is empty or malformed");
        eddy_wipe(token, n);
        free(token);
        return NOTHING;
    }
    c->imds_token = token;
    return imds_get(c, STEP_IMDS_ROLE, "");
}

/* IAM role names: letters, digits and +=,.@_- (at most 64). */
static bool valid_role(struct eddy_str r)
{
    if (r.len == 0 || r.len > 64)
        return false;
    for (size_t i = 0; i < r.len; i++) {
        char ch = r.ptr[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || strchr("+=,.@_-", ch) != NULL;
        if (!ok || ch == '\0')
            return false;
    }
    return true;
}

static enum outcome imds_role_done(struct eddy_creds *c, eddy_err err,
                                   const struct eddy_http_response *resp)
{
    if (err == EDDY_OK && resp->status == 404) {
        note(c, "imds: no IAM role attached to the instance (HTTP 404)");
        return NOTHING;
    }
    if (!reply_ok(c, "imds: role request", err, resp))
        return NOTHING;
    struct eddy_str body = resp->body;
    const char *nl = body.len ? memchr(body.ptr, '\n', body.len) : NULL;
    struct eddy_str role = {body.ptr, nl ? (size_t)(nl - body.ptr) : body.len};
    while (role.len && (role.ptr[role.len - 1] == '\r' || role.ptr[role.len - 1] == ' '))
        role.len--;
    while (role.len && role.ptr[0] == ' ') {
        role.ptr++;
        role.len--;
    }
    if (!valid_role(role)) {
        note(c, "imds: %s",
             role.len ? "the role name is malformed" : "no IAM role attached to the instance");
        return NOTHING;
    }
    char *name = eddy_strndup(role.ptr, role.len);
    enum outcome o = imds_get(c, STEP_IMDS_CREDS, name);
    free(name);
    return o;
}

static enum outcome imds_creds_done(struct eddy_creds *c, eddy_err err,
                                    const struct eddy_http_response *resp,
                                    struct eddy_credentials *got)
{
    if (!reply_ok(c, "imds: credentials request", err, resp))
        return NOTHING;
    struct eddy_error perr = {0};
    if (eddy_creds_parse_document(resp->body, "imds", true, got, &perr) != EDDY_OK) {
        note(c, "%s", eddy_error_text(&perr));
        return NOTHING;
    }
    return FOUND;
}

/* ------------------------------------------------------------------------ */
/* The resolution: run the chain, cache, schedule, answer the waiters. */

static void on_refresh(uv_timer_t *t);
static void on_kick(uv_timer_t *t);

static void flush(struct eddy_creds *c, eddy_err code, const struct eddy_credentials *creds,
                  const char *detail)
{
    /* Detach first: a callback may call eddy_creds_get, which queues anew. */
    struct waiter *w = c->waiters;
    c->waiters = NULL;
    while (w) {
        struct waiter *next = w->next;
        w->cb(code, creds, detail, w->ud);
        free(w);
        w = next;
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
        note(c, "%s: the credentials expired at %s", got->provider, when);
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
    case PENDING:
        break;
    }
}

static void resolve(struct eddy_creds *c)
{
    struct eddy_credentials got = {0};
    c->resolving = true;
    c->want_refresh = false;
    eddy_buf_reset(&c->detail);
    enum outcome o = from_env(c, &got);
    if (o == NOTHING)
        o = from_files(c, &got);
    if (o == NOTHING)
        o = ecs_start(c);
    if (o == NOTHING)
        o = imds_start(c);
    conclude(c, o, &got);
}

static void maybe_free(struct eddy_creds *c);

static void on_http(eddy_err err, const struct eddy_http_response *resp, void *ud)
{
    struct eddy_creds *c = ud;
    c->inflight = false;
    if (c->closing) {
        maybe_free(c);
        return;
    }
    struct eddy_credentials got = {0};
    enum outcome o = NOTHING;
    switch (c->step) {
    case STEP_ECS:
        o = ecs_done(c, err, resp, &got);
        break;
    case STEP_IMDS_TOKEN:
        o = imds_token_done(c, err, resp);
        break;
    case STEP_IMDS_ROLE:
        o = imds_role_done(c, err, resp);
        break;
    case STEP_IMDS_CREDS:
        o = imds_creds_done(c, err, resp, &got);
        break;
    case STEP_NONE:
        note(c, "internal: reply with no request");
        break;
    }
    conclude(c, o, &got);
}

static void on_refresh(uv_timer_t *t)
{
    struct eddy_creds *c = eddy_container_of(t, struct eddy_creds, refresh);
    if (!c->closing && !c->resolving)
        resolve(c);
}

static void on_kick(uv_timer_t *t)
{
    struct eddy_creds *c = eddy_container_of(t, struct eddy_creds, kick);
    if (c->closing)
        return;
    bool ok = usable(c, eddy_clock_unix_ms(c->clock));
    if (ok && c->waiters) {
        /* Serve the cached ones, even mid-refresh. Gets made by these
         * callbacks restarted the kick and are served on the next one. */
        flush(c, EDDY_OK, &c->cur, NULL);
    }
    if (c->closing || c->resolving || c->is_static)
        return;
    if ((!ok && c->waiters) || c->want_refresh)
        resolve(c);
}

/* ------------------------------------------------------------------------ */
/* The public API. */

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
    uv_unref((uv_handle_t *)&c->refresh); /* housekeeping never keeps a loop alive */
    c->open_handles = 2;
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
    if (c->have && !c->resolving && !c->closing)
        schedule_refresh(c, eddy_clock_unix_ms(c->clock));
}

const struct eddy_credentials *eddy_creds_current(struct eddy_creds *c)
{
    if (!c || c->closing || !c->have)
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
    if (c->closing)
        return EDDY_ECANCELED;
    struct waiter *w = eddy_calloc(1, sizeof *w);
    w->cb = cb;
    w->ud = ud;
    struct waiter **tail = &c->waiters;
    while (*tail)
        tail = &(*tail)->next;
    *tail = w;
    uv_timer_start(&c->kick, on_kick, 0, 0);
    return EDDY_OK;
}

static void maybe_free(struct eddy_creds *c)
{
    if (c->open_handles || c->inflight)
        return;
    flush(c, EDDY_ECANCELED, NULL, "credentials closed");
    resolution_clear(c);
    eddy_credentials_cleanup(&c->cur);
    eddy_buf_cleanup(&c->detail);
    free(c);
}

static void on_closed(uv_handle_t *h)
{
    struct eddy_creds *c = h->data;
    c->open_handles--;
    maybe_free(c);
}

void eddy_creds_close(struct eddy_creds *c)
{
    if (!c || c->closing)
        return;
    c->closing = true;
    if (c->inflight)
        eddy_transport_cancel(&c->transport, c->req_id);
    c->kick.data = c;
    c->refresh.data = c;
    uv_close((uv_handle_t *)&c->kick, on_closed);
    uv_close((uv_handle_t *)&c->refresh, on_closed);
}
