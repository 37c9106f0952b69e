/*
 * Unit tests for aws/credentials and aws/ini: the INI dialect, the pure
 * parsers (RFC 3339 times, ECS/IMDS documents), each provider of the chain
 * and their order, the exact ECS and IMDS request shapes (against the fake
 * transport), caching, refresh ahead of expiry with a fake clock, shared
 * resolutions, cancellation, that no secret reaches the logs, and the ECS
 * and IMDS shapes again over real HTTP against a loopback server.
 *
 * Every test clears the AWS_* variables it may touch before and after it
 * runs, and points HOME at a fresh temporary directory, so no test sees the
 * machine's own ~/.aws or another test's settings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/ini.h"
#include "base/alloc.h"
#include "base/log.h"
#include "fake_transport.h"
#include "testserver.h"

/* 2026-11-27T22:00:00Z */
#define T0_MS ((int64_t)1795816800000)

static const char *const aws_vars[] = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
};

/* ------------------------------------------------------------------------ */
/* Fixture: a loop, a fake transport, a fake clock, a scratch HOME. */

struct fx {
    uv_loop_t loop;
    struct eddy_fake_transport *fake;
    struct eddy_clock_fake clock;
    struct eddy_creds *creds;
    char home[256];
    char *saved_home;
    char *files[8];
    size_t nfiles;
    struct eddy_http *http;         /* loopback tests: closed at teardown */
    struct eddy_testserver *server; /* even when an assertion failed */
};

/* The process's own values, put back when the group ends. */
static char *saved_env[EDDY_ARRAY_SIZE(aws_vars)];

static int group_setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(aws_vars); i++) {
        const char *v = getenv(aws_vars[i]);
        saved_env[i] = v ? eddy_strdup(v) : NULL;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(aws_vars); i++) {
        if (saved_env[i])
            setenv(aws_vars[i], saved_env[i], 1);
        else
            unsetenv(aws_vars[i]);
        eddy_free_secret(saved_env[i]);
    }
    return 0;
}

static void clear_aws_env(void)
{
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(aws_vars); i++)
        unsetenv(aws_vars[i]);
}

static int setup(void **state)
{
    struct fx *f = eddy_calloc(1, sizeof *f);
    clear_aws_env();
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(f->home, sizeof f->home, "%s/eddy-creds-XXXXXX", tmp);
    assert_non_null(mkdtemp(f->home));
    const char *home = getenv("HOME");
    f->saved_home = home ? eddy_strdup(home) : NULL;
    setenv("HOME", f->home, 1);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->fake = eddy_fake_new(&f->loop);
    eddy_clock_fake_init(&f->clock, T0_MS);
    f->creds = eddy_creds_new(&f->loop, eddy_fake_transport(f->fake), &f->clock.clock);
    assert_non_null(f->creds);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->creds)
        eddy_creds_close(f->creds, NULL, NULL);
    if (f->http)
        eddy_http_close(f->http, NULL, NULL);
    if (f->server)
        eddy_testserver_close(f->server, NULL, NULL);
    eddy_fake_close(f->fake, NULL, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    for (size_t i = 0; i < f->nfiles; i++) {
        unlink(f->files[i]);
        free(f->files[i]);
    }
    char aws[300];
    snprintf(aws, sizeof aws, "%s/.aws", f->home);
    rmdir(aws);
    rmdir(f->home);
    clear_aws_env();
    if (f->saved_home)
        setenv("HOME", f->saved_home, 1);
    else
        unsetenv("HOME");
    free(f->saved_home);
    free(f);
    return 0;
}

/* Write text to a fresh mkstemp file (removed at teardown); returns its path. */
static const char *write_temp(struct fx *f, const char *text)
{
    char path[300];
    snprintf(path, sizeof path, "%s/file-XXXXXX", f->home);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    assert_true(f->nfiles < EDDY_ARRAY_SIZE(f->files));
    f->files[f->nfiles] = eddy_strdup(path);
    return f->files[f->nfiles++];
}

/* Replace the fixture's chain with a fresh one (no cache). */
static void renew(struct fx *f)
{
    eddy_creds_close(f->creds, NULL, NULL);
    f->creds = eddy_creds_new(&f->loop, eddy_fake_transport(f->fake), &f->clock.clock);
}

/* What a get callback saw. */
struct result {
    int calls;
    eddy_err err;
    char akid[128];
    char secret[128];
    char token[256];
    bool has_token;
    int64_t expires;
    char provider[32];
    char detail[4096];
};

static void on_creds(eddy_err err, const struct eddy_credentials *c, const char *detail, void *ud)
{
    struct result *r = ud;
    r->calls++;
    r->err = err;
    if (c) {
        snprintf(r->akid, sizeof r->akid, "%s", c->access_key_id);
        snprintf(r->secret, sizeof r->secret, "%s", c->secret_access_key);
        r->has_token = c->session_token != NULL;
        snprintf(r->token, sizeof r->token, "%s", c->session_token ? c->session_token : "");
        r->expires = c->expires_unix_ms;
        snprintf(r->provider, sizeof r->provider, "%s", c->provider);
    }
    snprintf(r->detail, sizeof r->detail, "%s", detail ? detail : "");
}

/* One get, run the loop until it is answered. */
static void get_once(struct fx *f, struct result *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(eddy_creds_get(f->creds, on_creds, r), EDDY_OK);
    assert_int_equal(r->calls, 0); /* never inside get */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(r->calls, 1);
}

/* The same over the real client, whose idle keep-alive connections keep
 * the loop alive: run until the answer came. */
static void get_wait(struct fx *f, struct result *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(eddy_creds_get(f->creds, on_creds, r), EDDY_OK);
    assert_int_equal(r->calls, 0);
    while (r->calls == 0 && uv_run(&f->loop, UV_RUN_ONCE))
        ;
    assert_int_equal(r->calls, 1);
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

/* An ECS/IMDS credentials document expiring at unix ms exp (0: no Expiration). */
static char *doc(const char *akid, int64_t exp, bool with_code)
{
    char when[21], *out = eddy_malloc(512);
    eddy_time_rfc3339(exp / 1000, when);
    snprintf(out, 512,
             "{%s\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"secret-%s\",\"Token\":\"token-%s\""
             "%s%s%s}",
             with_code ? "\"Code\":\"Success\",\"Type\":\"AWS-HMAC\"," : "", akid, akid, akid,
             exp ? ",\"Expiration\":\"" : "", exp ? when : "", exp ? "\"" : "");
    return out;
}

/* Queue the three IMDS replies: token, role, credentials. */
static void push_imds(struct fx *f, const char *akid, int64_t exp)
{
    eddy_fake_push_status(f->fake, 200, NULL, "IMDSTOKEN==");
    eddy_fake_push_status(f->fake, 200, NULL, "my-role\n");
    char *d = doc(akid, exp, true);
    eddy_fake_push_json(f->fake, 200, d);
    free(d);
}

/* ------------------------------------------------------------------------ */
/* The INI dialect. */

struct ini_rec {
    char lines[32][96];
    int n;
};

static bool ini_collect(struct eddy_str section, struct eddy_str key, struct eddy_str value,
                        void *ud)
{
    struct ini_rec *r = ud;
    if (r->n < 32)
        snprintf(r->lines[r->n++], 96, "[%.*s] %.*s=%.*s", (int)section.len, section.ptr,
                 key.ptr ? (int)key.len : 1, key.ptr ? key.ptr : "*", (int)value.len, value.ptr);
    return true;
}

static void test_ini_dialect(void **state)
{
    (void)state;
    const char *text = "\xEF\xBB\xBF# comment\r\n"
                       "top = level\r\n"
                       "; another\r\n"
                       "\r\n"
                       "[  default ]  # trailing\r\n"
                       "  aws_access_key_id   =   AKID  \r\n"
                       "key_with_hash = a#b ; cut here\r\n"
                       "s3 =\r\n"
                       "  max_concurrent_requests = 20\r\n"
                       "\tsigv = s3v4\n"
                       "after = nested\n"
                       "[profile  work]\n"
                       "empty =\n"
                       "last=x";
    struct ini_rec r = {0};
    struct eddy_error err = {0};
    assert_int_equal(eddy_ini_parse(eddy_str_c(text), ini_collect, &r, &err), EDDY_OK);
    const char *want[] = {"[] top=level",
                          "[default] *=",
                          "[default] aws_access_key_id=AKID",
                          "[default] key_with_hash=a#b",
                          "[default] s3=",
                          "[default] after=nested",
                          "[profile  work] *=",
                          "[profile  work] empty=",
                          "[profile  work] last=x"};
    assert_int_equal(r.n, (int)EDDY_ARRAY_SIZE(want));
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(want); i++)
        assert_string_equal(r.lines[i], want[i]);
}

static void test_ini_malformed(void **state)
{
    (void)state;
    struct ini_rec r = {0};
    struct eddy_error err = {0};
    const char *text = "[a]\nk = v\nthis line is junk SECRETVALUE\n";
    assert_int_equal(eddy_ini_parse(eddy_str_c(text), ini_collect, &r, &err), EDDY_EPARSE);
    assert_contains(err.detail, "line 3");
    assert_null(strstr(err.detail, "SECRETVALUE")); /* the content is never echoed */
    assert_int_equal(r.n, 2);
    assert_int_equal(eddy_ini_parse(eddy_str_c("[unterminated\n"), ini_collect, &r, &err),
                     EDDY_EPARSE);
    assert_int_equal(eddy_ini_parse(eddy_str_c("= no key\n"), ini_collect, &r, &err), EDDY_EPARSE);
    assert_int_equal(eddy_ini_parse(eddy_str_c(""), ini_collect, &r, &err), EDDY_OK);
}

/* ------------------------------------------------------------------------ */
/* Pure parsers. */

static void test_parse_time(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_int_equal(eddy_creds_parse_time(eddy_str_c("2026-11-27T22:00:00Z"), &ms), EDDY_OK);
    assert_int_equal(ms, T0_MS);
    assert_int_equal(eddy_creds_parse_time(eddy_str_c("1970-01-01T00:00:00Z"), &ms), EDDY_OK);
    assert_int_equal(ms, 0);
    assert_int_equal(eddy_creds_parse_time(eddy_str_c("2024-02-29T12:34:56.789Z"), &ms), EDDY_OK);
    assert_int_equal(ms, (int64_t)1709210096789);
    assert_int_equal(eddy_creds_parse_time(eddy_str_c("2026-11-28T00:00:00+02:00"), &ms), EDDY_OK);
    assert_int_equal(ms, T0_MS);
    assert_int_equal(eddy_creds_parse_time(eddy_str_c("2026-11-27T21:30:00-00:30"), &ms), EDDY_OK);
    assert_int_equal(ms, T0_MS);
    const char *bad[] = {"",
                         "2026-11-27",
                         "2026-11-27T22:00:00",
                         "2026-13-27T22:00:00Z",
                         "2025-02-29T22:00:00Z",
                         "2026-11-27T24:00:00Z",
                         "2026-11-27T22:00:00.Z",
                         "2026-11-27T22:00:00Zjunk",
                         "2026-11-27X22:00:00Z",
                         "2026-11-27T22:00:00+2:00",
                         "tomorrow at noon, roughly"};
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(bad); i++)
        assert_int_equal(eddy_creds_parse_time(eddy_str_c(bad[i]), &ms), EDDY_EPARSE);
}

static void test_parse_document(void **state)
{
    (void)state;
    struct eddy_credentials c = {0};
    struct eddy_error err = {0};
    const char *ok = "{\"Code\":\"Success\",\"AccessKeyId\":\"ASIA1\",\"SecretAccessKey\":\"s\","
                     "\"Token\":\"t\",\"Expiration\":\"2026-11-27T23:00:00Z\"}";
    assert_int_equal(eddy_creds_parse_document(eddy_str_c(ok), "imds", true, &c, &err), EDDY_OK);
    assert_string_equal(c.access_key_id, "ASIA1");
    assert_string_equal(c.secret_access_key, "s");
    assert_string_equal(c.session_token, "t");
    assert_int_equal(c.expires_unix_ms, T0_MS + 3600000);
    assert_string_equal(c.provider, "imds");
    eddy_credentials_cleanup(&c);
    assert_null(c.access_key_id);

    const char *no_token = "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}";
    assert_int_equal(eddy_creds_parse_document(eddy_str_c(no_token), "ecs", false, &c, &err),
                     EDDY_OK);
    assert_null(c.session_token);
    assert_int_equal(c.expires_unix_ms, 0);
    eddy_credentials_cleanup(&c);

    struct {
        const char *body;
        bool code;
        eddy_err want;
        const char *says;
    } bad[] = {
        {"", false, EDDY_EPARSE, "not a JSON object"},
        {"{\"AccessKeyId\":", false, EDDY_EPARSE, "not a JSON object"},
        {"[1,2]", false, EDDY_EPARSE, "not a JSON object"},
        {"{\"SecretAccessKey\":\"s\"}", false, EDDY_EPARSE, "no AccessKeyId"},
        {"{\"AccessKeyId\":\"A\"}", false, EDDY_EPARSE, "no SecretAccessKey"},
        {"{\"AccessKeyId\":\"\",\"SecretAccessKey\":\"s\"}", false, EDDY_EPARSE, "AccessKeyId"},
        {"{\"AccessKeyId\":7,\"SecretAccessKey\":\"s\"}", false, EDDY_EPARSE, "AccessKeyId"},
        {"{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Token\":[]}", false, EDDY_EPARSE,
         "Token"},
        {"{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Expiration\":\"soon\"}", false,
         EDDY_EPARSE, "Expiration is not an RFC 3339 time"},
        {"{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}", true, EDDY_EPARSE, "no Code"},
        {"{\"Code\":\"Failure\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}", true,
         EDDY_ECREDENTIALS, "Code is \"Failure\""},
    };
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(bad); i++) {
        memset(&c, 0, sizeof c);
        eddy_error_clear(&err);
        assert_int_equal(
            eddy_creds_parse_document(eddy_str_c(bad[i].body), "ecs", bad[i].code, &c, &err),
            bad[i].want);
        assert_contains(err.detail, bad[i].says);
        assert_null(c.access_key_id);
    }
}

/* ------------------------------------------------------------------------ */
/* Provider 1: the environment. */

static void test_env(void **state)
{
    struct fx *f = *state;
    struct result r;
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
    setenv("AWS_SESSION_TOKEN", "env-token", 1);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_OK);
    assert_string_equal(r.provider, "environment");
    assert_string_equal(r.akid, "AKIAENV");
    assert_string_equal(r.secret, "env-secret");
    assert_string_equal(r.token, "env-token");
    assert_int_equal(r.expires, 0);
    assert_string_equal(r.detail, "");
    assert_int_equal(eddy_fake_count(f->fake), 0);
    const struct eddy_credentials *cur = eddy_creds_current(f->creds);
    assert_non_null(cur);
    assert_string_equal(cur->access_key_id, "AKIAENV");

    /* Cached: the environment is not read again. */
    setenv("AWS_ACCESS_KEY_ID", "AKIACHANGED", 1);
    get_once(f, &r);
    assert_string_equal(r.akid, "AKIAENV");

    /* A fresh chain without a token. */
    unsetenv("AWS_SESSION_TOKEN");
    renew(f);
    get_once(f, &r);
    assert_string_equal(r.akid, "AKIACHANGED");
    assert_false(r.has_token);
}

static void test_env_partial(void **state)
{
    struct fx *f = *state;
    struct result r;
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECONFIG);
    assert_contains(r.detail, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
    assert_null(strstr(r.detail, "AKIAENV"));
    assert_null(eddy_creds_current(f->creds));

    unsetenv("AWS_ACCESS_KEY_ID");
    setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/creds", 1);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECONFIG);
    assert_contains(r.detail, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
    assert_null(strstr(r.detail, "env-secret"));
    assert_int_equal(eddy_fake_count(f->fake), 0); /* the chain stopped there */
}

/* ------------------------------------------------------------------------ */
/* Provider 2: the shared files. */

static const char *const creds_file = "# eddy test credentials\r\n"
                                      "[default]\r\n"
                                      "aws_access_key_id = AKIADEFAULT\r\n"
                                      "aws_secret_access_key = default-secret\r\n"
                                      "\r\n"
                                      "  ; the work profile\r\n"
                                      "[work]\r\n"
                                      "\taws_access_key_id=AKIAWORK   # inline comment\r\n"
                                      "aws_secret_access_key   =   work-secret\r\n"
                                      "aws_session_token = work-token\r\n";

static const char *const config_file = "[default]\n"
                                       "region = eu-west-1\n"
                                       "[profile work]\n"
                                       "aws_access_key_id = AKIACONFIGWORK\n"
                                       "aws_secret_access_key = config-work-secret\n"
                                       "[profile   cfgonly]  ; comment\n"
                                       "s3 =\n"
                                       "  addressing_style = path\n"
                                       "aws_access_key_id = AKIACFGONLY\n"
                                       "aws_secret_access_key = cfgonly-secret\n"
                                       "[cfgonly]\n"
                                       "aws_access_key_id = AKIAWRONGSECTION\n"
                                       "aws_secret_access_key = wrong\n"
                                       "[profile assumer]\n"
                                       "role_arn = arn:aws:iam::123456789012:role/r\n";

static void test_shared_files(void **state)
{
    struct fx *f = *state;
    struct result r;
    setenv("AWS_SHARED_CREDENTIALS_FILE", write_temp(f, creds_file), 1);
    setenv("AWS_CONFIG_FILE", write_temp(f, config_file), 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);

    get_once(f, &r); /* default profile, from the credentials file */
    assert_int_equal(r.err, EDDY_OK);
    assert_string_equal(r.provider, "shared-files");
    assert_string_equal(r.akid, "AKIADEFAULT");
    assert_string_equal(r.secret, "default-secret");
    assert_false(r.has_token);

    /* The credentials file wins over the config file for the same profile. */
    setenv("AWS_PROFILE", "work", 1);
    renew(f);
    get_once(f, &r);
    assert_string_equal(r.akid, "AKIAWORK");
    assert_string_equal(r.secret, "work-secret");
    assert_string_equal(r.token, "work-token");

    /* Only in the config file: [profile name], never [name]. */
    setenv("AWS_PROFILE", "cfgonly", 1);
    renew(f);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_OK);
    assert_string_equal(r.akid, "AKIACFGONLY");
    assert_string_equal(r.secret, "cfgonly-secret");
    assert_int_equal(eddy_fake_count(f->fake), 0);
}

static void test_shared_files_home_default(void **state)
{
    struct fx *f = *state;
    struct result r;
    char dir[300], path[320];
    snprintf(dir, sizeof dir, "%s/.aws", f->home);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/config", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("[default]\naws_access_key_id = AKIAHOME\naws_secret_access_key = home-secret\n", fp);
    fclose(fp);
    f->files[f->nfiles++] = eddy_strdup(path);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_OK);
    assert_string_equal(r.provider, "shared-files");
    assert_string_equal(r.akid, "AKIAHOME");
}

static void test_shared_files_errors(void **state)
{
    struct fx *f = *state;
    struct result r;
    setenv("AWS_SHARED_CREDENTIALS_FILE", write_temp(f, creds_file), 1);
    setenv("AWS_CONFIG_FILE", write_temp(f, config_file), 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);

    /* An explicit profile that no file has stops the chain. */
    setenv("AWS_PROFILE", "nosuch", 1);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECONFIG);
    assert_contains(r.detail, "shared-files: profile 'nosuch' (AWS_PROFILE) not found");

    /* A profile with only role_arn gives nothing; the chain goes on. */
    setenv("AWS_PROFILE", "assumer", 1);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECREDENTIALS);
    assert_contains(r.detail, "role_arn, sso and credential_process are not supported");
    assert_contains(r.detail, "imds: disabled");

    /* A key without its secret is a configuration error naming the key. */
    setenv("AWS_SHARED_CREDENTIALS_FILE", write_temp(f, "[half]\naws_access_key_id = AKIAHALF\n"),
           1);
    setenv("AWS_PROFILE", "half", 1);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECONFIG);
    assert_contains(r.detail, "has aws_access_key_id but no aws_secret_access_key");
    assert_null(strstr(r.detail, "AKIAHALF"));

    /* A malformed file names the line, not its content. */
    setenv("AWS_SHARED_CREDENTIALS_FILE", write_temp(f, "[default]\nAKIAJUNK-secret\n"), 1);
    unsetenv("AWS_PROFILE");
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECREDENTIALS);
    assert_contains(r.detail, "line 2: expected [section] or key = value");
    assert_null(strstr(r.detail, "AKIAJUNK"));
}

/* ------------------------------------------------------------------------ */
/* Chain order, and the error when nothing yields. */

static void test_chain_order(void **state)
{
    struct fx *f = *state;
    struct result r;
    int64_t exp = T0_MS + 6 * 3600 * 1000;
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", write_temp(f, creds_file), 1);
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/task", 1);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);

    get_once(f, &r); /* env beats everything */
    assert_string_equal(r.provider, "environment");

    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    renew(f);
    get_once(f, &r); /* files beat ECS and IMDS */
    assert_string_equal(r.provider, "shared-files");
    assert_int_equal(eddy_fake_count(f->fake), 0);

    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    char *d = doc("ASIAECS", exp, false);
    eddy_fake_push_json(f->fake, 200, d);
    free(d);
    renew(f);
    get_once(f, &r); /* ECS beats IMDS */
    assert_string_equal(r.provider, "ecs");
    assert_string_equal(r.akid, "ASIAECS");
    assert_int_equal(eddy_fake_count(f->fake), 1);

    unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    push_imds(f, "ASIAIMDS", exp);
    renew(f);
    get_once(f, &r); /* and IMDS last */
    assert_string_equal(r.provider, "imds");
    assert_string_equal(r.akid, "ASIAIMDS");
    assert_int_equal(eddy_fake_count(f->fake), 4);
}

static void test_nothing_found(void **state)
{
    struct fx *f = *state;
    struct result r;
    setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECREDENTIALS);
    assert_contains(r.detail, "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set");
    assert_contains(r.detail, "shared-files: profile 'default': no file ");
    assert_contains(r.detail, "/.aws/credentials");
    assert_contains(r.detail, "/.aws/config");
    assert_contains(r.detail, "ecs: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and "
                              "AWS_CONTAINER_CREDENTIALS_FULL_URI not set");
    assert_contains(r.detail, "imds: disabled by AWS_EC2_METADATA_DISABLED");
    assert_int_equal(eddy_fake_count(f->fake), 0);
    assert_null(eddy_creds_current(f->creds));

    /* IMDS enabled but unreachable: the reason is the network. */
    unsetenv("AWS_EC2_METADATA_DISABLED");
    eddy_fake_push_error(f->fake, EDDY_ETIMEOUT);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECREDENTIALS);
    assert_contains(r.detail, "environment: ");
    assert_contains(r.detail, "shared-files: ");
    assert_contains(r.detail, "ecs: ");
    assert_contains(r.detail, "imds: token request failed (timed out)");
    assert_int_equal(eddy_fake_count(f->fake), 1);
}

/* ------------------------------------------------------------------------ */
/* Provider 3: the ECS container endpoint, request shapes on the fake. */

static void assert_headers(const struct eddy_fake_request *q, size_t n)
{
    assert_int_equal(q->nheaders, n);
}

static void test_ecs_relative_uri(void **state)
{
    struct fx *f = *state;
    struct result r;
    int64_t exp = T0_MS + 6 * 3600 * 1000;
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/3f2a-task", 1);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/ignored", 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Basic raw token==", 1);
    char *d = doc("ASIAECS", exp, false);
    eddy_fake_push_json(f->fake, 200, d);
    free(d);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_OK);
    assert_string_equal(r.provider, "ecs");
    assert_string_equal(r.akid, "ASIAECS");
    assert_string_equal(r.secret, "secret-ASIAECS");
    assert_string_equal(r.token, "token-ASIAECS");
    assert_int_equal(r.expires, exp);

    assert_int_equal(eddy_fake_count(f->fake), 1);
    const struct eddy_fake_request *q = eddy_fake_request_at(f->fake, 0);
    assert_string_equal(q->method, "GET");
    assert_string_equal(q->url, "http://169.254.170.2/v2/credentials/3f2a-task");
    assert_string_equal(eddy_fake_request_header(q, "Authorization"), "Basic raw token==");
    assert_string_equal(eddy_fake_request_header(q, "Accept"), "application/json");
    assert_headers(q, 2);
    assert_int_equal(q->body_len, 0);
    assert_true(q->timeout_ms > 0 && q->timeout_ms <= 5000);
    assert_true(q->max_response > 0);
}

static void test_ecs_full_uri_token_file(void **state)
{
    struct fx *f = *state;
    struct result r;
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:51679/creds?id=7", 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "from-env-not-used", 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", write_temp(f, "  file-token/abc==\r\n\n"), 1);
    char *d = doc("ASIAFULL", 0, false);
    eddy_fake_push_json(f->fake, 200, d);
    free(d);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_OK);
    assert_string_equal(r.akid, "ASIAFULL");
    assert_int_equal(r.expires, 0);
    const struct eddy_fake_request *q = eddy_fake_last(f->fake);
    assert_string_equal(q->url, "http://127.0.0.1:51679/creds?id=7");
    assert_string_equal(eddy_fake_request_header(q, "Authorization"), "file-token/abc==");

    /* No token at all: no Authorization header. */
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    d = doc("ASIANOAUTH", 0, false);
    eddy_fake_push_json(f->fake, 200, d);
    free(d);
    renew(f);
    get_once(f, &r);
    assert_string_equal(r.akid, "ASIANOAUTH");
    q = eddy_fake_last(f->fake);
    assert_null(eddy_fake_request_header(q, "Authorization"));
    assert_headers(q, 1);
}

static void test_ecs_config_errors(void **state)
{
    struct fx *f = *state;
    struct result r;
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "ftp://127.0.0.1/creds", 1);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECONFIG);
    assert_contains(r.detail, "AWS_CONTAINER_CREDENTIALS_FULL_URI is not a valid http:// or "
                              "https:// URL");

    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/creds", 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "abc\r\nX-Injected: 1", 1);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECONFIG);
    assert_contains(r.detail, "line break");
    assert_null(strstr(r.detail, "abc"));

    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/nonexistent/eddy/token", 1);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECONFIG);
    assert_contains(r.detail, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");

    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/has space", 1);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECONFIG);
    assert_contains(r.detail, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is not a valid path");
    assert_int_equal(eddy_fake_count(f->fake), 0);
}

static void test_ecs_failures(void **state)
{
    struct fx *f = *state;
    struct result r;
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/creds", 1);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:2", 1);

    eddy_fake_push_json(f->fake, 200, "{\"AccessKeyId\": \"ASIA\", \"SecretAcc");
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECREDENTIALS);
    assert_contains(r.detail, "ecs: credentials response is not a JSON object");
    assert_contains(r.detail, "imds: not tried, the ECS container endpoint is configured");
    assert_int_equal(eddy_fake_count(f->fake), 1); /* IMDS was not asked */

    eddy_fake_push_json(f->fake, 200, "{\"AccessKeyId\":\"ASIA\",\"Expiration\":\"x\"}");
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECREDENTIALS);
    assert_contains(r.detail, "ecs: response has no SecretAccessKey");

    /* a failure that may pass is asked again, up to three tries in all */
    struct eddy_creds_timing t = EDDY_CREDS_TIMING_DEFAULT;
    t.retry_min_ms = 1;
    eddy_creds_set_timing(f->creds, &t);
    for (int i = 0; i < 3; i++)
        eddy_fake_push_status(f->fake, 500, NULL, "oops");
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECREDENTIALS);
    assert_contains(r.detail, "ecs: request returned HTTP 500");

    for (int i = 0; i < 3; i++)
        eddy_fake_push_error(f->fake, EDDY_ENET);
    get_once(f, &r);
    assert_contains(r.detail, "ecs: request failed (network error)");

    /* Credentials that expired already are refused. */
    char *d = doc("ASIAOLD", T0_MS - 1000, false);
    eddy_fake_push_json(f->fake, 200, d);
    free(d);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECREDENTIALS);
    assert_contains(r.detail, "ecs: the credentials expired at 2026-11-27T21:59:59Z");
    assert_int_equal(eddy_fake_count(f->fake), 9);
    assert_null(eddy_creds_current(f->creds));
}

/* The ECS agent limits its rate (429) when many tasks start on one host: a
 * failure that may pass is asked again after retry_min_ms, in the same
 * resolution, and the waiters get the answer of the last try. A refusal
 * (4xx) is not asked again. */
static void test_ecs_asks_again(void **state)
{
    struct fx *f = *state;
    struct result r;
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/creds", 1);
    struct eddy_creds_timing t = EDDY_CREDS_TIMING_DEFAULT;
    t.retry_min_ms = 1;
    eddy_creds_set_timing(f->creds, &t);

    eddy_fake_push_status(f->fake, 429, NULL, "slow down");
    eddy_fake_push_error(f->fake, EDDY_ETIMEOUT);
    char *d = doc("ASIAAGAIN", T0_MS + 6 * 3600 * 1000, false);
    eddy_fake_push_json(f->fake, 200, d);
    free(d);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_OK);
    assert_string_equal(r.akid, "ASIAAGAIN");
    assert_int_equal(eddy_fake_count(f->fake), 3);

    renew(f);
    eddy_creds_set_timing(f->creds, &t);
    eddy_fake_push_status(f->fake, 403, NULL, "no");
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECREDENTIALS);
    assert_contains(r.detail, "ecs: request returned HTTP 403");
    assert_int_equal(eddy_fake_count(f->fake), 4);
}

/* ------------------------------------------------------------------------ */
/* Provider 4: IMDSv2, request shapes on the fake. */

static void test_imds_flow(void **state)
{
    struct fx *f = *state;
    struct result r;
    int64_t exp = T0_MS + 6 * 3600 * 1000;
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:8111/", 1);
    push_imds(f, "ASIAIMDS", exp);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_OK);
    assert_string_equal(r.provider, "imds");
    assert_string_equal(r.akid, "ASIAIMDS");
    assert_string_equal(r.secret, "secret-ASIAIMDS");
    assert_string_equal(r.token, "token-ASIAIMDS");
    assert_int_equal(r.expires, exp);

    assert_int_equal(eddy_fake_count(f->fake), 3);
    const struct eddy_fake_request *q = eddy_fake_request_at(f->fake, 0);
    assert_string_equal(q->method, "PUT");
    assert_string_equal(q->url, "http://127.0.0.1:8111/latest/api/token");
    assert_string_equal(eddy_fake_request_header(q, "X-aws-ec2-metadata-token-ttl-seconds"),
                        "21600");
    assert_headers(q, 1);
    assert_int_equal(q->body_len, 0);
    assert_int_equal(q->timeout_ms, 1000);

    q = eddy_fake_request_at(f->fake, 1);
    assert_string_equal(q->method, "GET");
    assert_string_equal(q->url, "http://127.0.0.1:8111/latest/meta-data/iam/security-credentials/");
    assert_string_equal(eddy_fake_request_header(q, "X-aws-ec2-metadata-token"), "IMDSTOKEN==");
    assert_headers(q, 1);
    assert_int_equal(q->timeout_ms, 1000);

    q = eddy_fake_request_at(f->fake, 2);
    assert_string_equal(q->method, "GET");
    assert_string_equal(q->url,
                        "http://127.0.0.1:8111/latest/meta-data/iam/security-credentials/my-role");
    assert_string_equal(eddy_fake_request_header(q, "X-aws-ec2-metadata-token"), "IMDSTOKEN==");
    assert_headers(q, 1);
    assert_int_equal(q->timeout_ms, 1000);
}

static void test_imds_default_endpoint(void **state)
{
    struct fx *f = *state;
    struct result r;
    eddy_fake_push_error(f->fake, EDDY_ENET);
    get_once(f, &r);
    assert_string_equal(eddy_fake_request_at(f->fake, 0)->url,
                        "http://169.254.169.254/latest/api/token");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6", 1);
    eddy_fake_push_error(f->fake, EDDY_ENET);
    get_once(f, &r);
    assert_string_equal(eddy_fake_request_at(f->fake, 1)->url,
                        "http://[fd00:ec2::254]/latest/api/token");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "169.254.169.254", 1);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECONFIG);
    assert_contains(r.detail, "AWS_EC2_METADATA_SERVICE_ENDPOINT is not an http");
    assert_int_equal(eddy_fake_count(f->fake), 2);
}

static void test_imds_failures(void **state)
{
    struct fx *f = *state;
    struct result r;
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:8111", 1);

    eddy_fake_push_status(f->fake, 403, NULL, "");
    get_once(f, &r);
    assert_contains(r.detail, "imds: token request returned HTTP 403");

    eddy_fake_push_status(f->fake, 200, NULL, "TOKEN");
    eddy_fake_push_status(f->fake, 404, NULL, "");
    get_once(f, &r);
    assert_contains(r.detail, "imds: no IAM role attached to the instance (HTTP 404)");

    eddy_fake_push_status(f->fake, 200, NULL, "TOKEN");
    eddy_fake_push_status(f->fake, 200, NULL, "../../etc\n");
    get_once(f, &r);
    assert_contains(r.detail, "imds: the role name is malformed");

    eddy_fake_push_status(f->fake, 200, NULL, "TOKEN");
    eddy_fake_push_status(f->fake, 200, NULL, "my-role");
    eddy_fake_push_json(f->fake, 200,
                        "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"AccessKeyId\":\"A\","
                        "\"SecretAccessKey\":\"s\"}");
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECREDENTIALS);
    assert_contains(r.detail, "imds: Code is \"AssumeRoleUnauthorizedAccess\", not Success");

    eddy_fake_push_status(f->fake, 200, NULL, "TOKEN");
    eddy_fake_push_status(f->fake, 200, NULL, "my-role");
    eddy_fake_push_json(f->fake, 200, "not json at all");
    get_once(f, &r);
    assert_contains(r.detail, "imds: credentials response is not a JSON object");

    eddy_fake_push_status(f->fake, 200, NULL, "BAD TOKEN\r\nX: y");
    get_once(f, &r);
    assert_contains(r.detail, "imds: token response is empty or malformed");
    assert_int_equal(eddy_fake_count(f->fake), 12);
}

static void test_imds_disabled(void **state)
{
    struct fx *f = *state;
    struct result r;
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:8111", 1);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECREDENTIALS);
    assert_contains(r.detail, "imds: disabled by AWS_EC2_METADATA_DISABLED");
    assert_int_equal(eddy_fake_count(f->fake), 0);

    /* Anything but "true" leaves it on. */
    setenv("AWS_EC2_METADATA_DISABLED", "false", 1);
    push_imds(f, "ASIAON", T0_MS + 3600000);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_OK);
    assert_int_equal(eddy_fake_count(f->fake), 3);
}

/* ------------------------------------------------------------------------ */
/* Caching, refresh ahead of expiry, margins, backoff. */

/* Run the loop until current() gives akid, or about 3 s pass. */
struct poll_wait {
    uv_timer_t timer;
    struct eddy_creds *creds;
    const char *akid;
    int ticks;
};

static void on_poll(uv_timer_t *t)
{
    struct poll_wait *w = eddy_container_of(t, struct poll_wait, timer);
    const struct eddy_credentials *c = eddy_creds_current(w->creds);
    if ((c && strcmp(c->access_key_id, w->akid) == 0) || ++w->ticks > 300)
        uv_close((uv_handle_t *)t, NULL);
}

static void wait_for(struct fx *f, const char *akid)
{
    struct poll_wait w = {.creds = f->creds, .akid = akid};
    uv_timer_init(&f->loop, &w.timer);
    uv_timer_start(&w.timer, on_poll, 10, 10);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    const struct eddy_credentials *c = eddy_creds_current(f->creds);
    assert_non_null(c);
    assert_string_equal(c->access_key_id, akid);
}

static void test_refresh_when_clock_passes_refresh_point(void **state)
{
    struct fx *f = *state;
    struct result r;
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:8111", 1);
    push_imds(f, "ASIAONE", T0_MS + 3600000);
    get_once(f, &r);
    assert_string_equal(r.akid, "ASIAONE");

    /* Before the refresh point (55 min): nothing happens. */
    eddy_clock_fake_advance(&f->clock, 54 * 60000);
    assert_string_equal(eddy_creds_current(f->creds)->access_key_id, "ASIAONE");
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(eddy_fake_count(f->fake), 3);

    /* Past it: the old ones are still served while the refresh runs. */
    eddy_clock_fake_advance(&f->clock, 2 * 60000);
    push_imds(f, "ASIATWO", T0_MS + 2 * 3600000);
    assert_string_equal(eddy_creds_current(f->creds)->access_key_id, "ASIAONE");
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(eddy_fake_count(f->fake), 6);
    const struct eddy_credentials *c = eddy_creds_current(f->creds);
    assert_non_null(c);
    assert_string_equal(c->access_key_id, "ASIATWO");
    assert_string_equal(c->secret_access_key, "secret-ASIATWO");
    assert_int_equal(c->expires_unix_ms, T0_MS + 2 * 3600000);
}

static void test_within_margin(void **state)
{
    struct fx *f = *state;
    struct result r;
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:8111", 1);
    push_imds(f, "ASIAONE", T0_MS + 3600000);
    get_once(f, &r);
    /* 30 s before expiry: inside the 60 s margin, never handed out. */
    eddy_clock_fake_advance(&f->clock, 3600000 - 30000);
    assert_null(eddy_creds_current(f->creds));
    push_imds(f, "ASIATWO", T0_MS + 2 * 3600000);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_OK);
    assert_string_equal(r.akid, "ASIATWO");
    assert_string_equal(eddy_creds_current(f->creds)->access_key_id, "ASIATWO");
    assert_int_equal(eddy_fake_count(f->fake), 6);
}

static void test_refresh_timer(void **state)
{
    struct fx *f = *state;
    struct result r;
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:8111", 1);
    const struct eddy_creds_timing t = {
        .refresh_ahead_ms = 100, .margin_ms = 10, .retry_min_ms = 10, .retry_max_ms = 100};
    eddy_creds_set_timing(f->creds, &t);
    /* Lives 400 ms (fake time): refreshed 300 ms in, by the timer alone. */
    eddy_fake_push_status(f->fake, 200, NULL, "TOKEN");
    eddy_fake_push_status(f->fake, 200, NULL, "my-role");
    eddy_fake_push_json(f->fake, 200,
                        "{\"Code\":\"Success\",\"AccessKeyId\":\"ASIASHORT\",\"SecretAccessKey\":"
                        "\"s\",\"Token\":\"t\",\"Expiration\":\"2026-11-27T22:00:00.400Z\"}");
    get_once(f, &r);
    assert_string_equal(r.akid, "ASIASHORT");
    assert_int_equal(r.expires, T0_MS + 400);
    assert_int_equal(eddy_fake_count(f->fake), 3);
    push_imds(f, "ASIALONG", 0); /* no Expiration: no further refresh */
    wait_for(f, "ASIALONG");
    assert_int_equal(eddy_fake_count(f->fake), 6);
    assert_int_equal(eddy_creds_current(f->creds)->expires_unix_ms, 0);
}

static void test_refresh_failure_keeps_old(void **state)
{
    struct fx *f = *state;
    struct result r;
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:8111", 1);
    const struct eddy_creds_timing t = {
        .refresh_ahead_ms = 300000, .margin_ms = 60000, .retry_min_ms = 10, .retry_max_ms = 40};
    eddy_creds_set_timing(f->creds, &t);
    push_imds(f, "ASIAONE", T0_MS + 3600000);
    get_once(f, &r);

    eddy_clock_fake_advance(&f->clock, 56 * 60000);
    eddy_fake_push_error(f->fake, EDDY_ENET);
    assert_string_equal(eddy_creds_current(f->creds)->access_key_id, "ASIAONE");
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(eddy_fake_count(f->fake), 4);
    /* Still valid: kept, and current() does not hammer the endpoint. */
    assert_string_equal(eddy_creds_current(f->creds)->access_key_id, "ASIAONE");
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(eddy_fake_count(f->fake), 4);

    /* The backoff retries on its own: one more failure, then success. */
    eddy_fake_push_error(f->fake, EDDY_ETIMEOUT);
    push_imds(f, "ASIATWO", T0_MS + 2 * 3600000);
    wait_for(f, "ASIATWO");
    assert_int_equal(eddy_fake_count(f->fake), 8);

    /* Past expiry with the endpoint down: dropped, and an error. */
    eddy_clock_fake_advance(&f->clock, 2 * 3600000);
    assert_null(eddy_creds_current(f->creds));
    eddy_fake_push_error(f->fake, EDDY_ENET);
    get_once(f, &r);
    assert_int_equal(r.err, EDDY_ECREDENTIALS);
    assert_null(eddy_creds_current(f->creds));
}

/* ------------------------------------------------------------------------ */
/* Shared resolutions, cancellation, the static provider. */

struct chained {
    struct result first;
    struct result again;
    struct eddy_creds *creds;
};

static void on_first_then_get(eddy_err err, const struct eddy_credentials *c, const char *detail,
                              void *ud)
{
    struct chained *ch = ud;
    on_creds(err, c, detail, &ch->first);
    assert_int_equal(eddy_creds_get(ch->creds, on_creds, &ch->again), EDDY_OK);
    assert_int_equal(ch->again.calls, 0);
}

static void test_concurrent_gets(void **state)
{
    struct fx *f = *state;
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:8111", 1);
    struct eddy_fake_reply slow = {.status = 200, .body = "TOKEN", .delay_ms = 20};
    eddy_fake_push(f->fake, &slow);
    eddy_fake_push_status(f->fake, 200, NULL, "my-role");
    char *d = doc("ASIASHARED", T0_MS + 3600000, true);
    eddy_fake_push_json(f->fake, 200, d);
    free(d);

    struct result r[3] = {0};
    struct chained ch = {.creds = f->creds};
    for (int i = 0; i < 3; i++)
        assert_int_equal(eddy_creds_get(f->creds, on_creds, &r[i]), EDDY_OK);
    assert_int_equal(eddy_creds_get(f->creds, on_first_then_get, &ch), EDDY_OK);
    assert_int_equal(r[0].calls + r[1].calls + r[2].calls, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].err, EDDY_OK);
        assert_string_equal(r[i].akid, "ASIASHARED");
    }
    assert_int_equal(ch.first.calls, 1);
    assert_int_equal(ch.again.calls, 1); /* served from the cache */
    assert_string_equal(ch.again.akid, "ASIASHARED");
    assert_int_equal(eddy_fake_count(f->fake), 3); /* one resolution */
    assert_int_equal(eddy_creds_get(NULL, on_creds, &r[0]), EDDY_EINVAL);
    assert_int_equal(eddy_creds_get(f->creds, NULL, NULL), EDDY_EINVAL);
}

/* What the close callback saw: the gets it waited for, and the request. */
struct closed {
    int calls;
    int gets_answered;
    size_t inflight;
    struct result *r;
    struct eddy_fake_transport *fake;
};

static void on_creds_closed(void *ud)
{
    struct closed *c = ud;
    c->calls++;
    c->gets_answered = c->r->calls;
    c->inflight = eddy_fake_inflight(c->fake);
}

static void test_close_cancels(void **state)
{
    struct fx *f = *state;
    struct result r = {0}, r2 = {0};
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:8111", 1);

    /* Closed before the loop ran: the pending get is canceled. */
    assert_int_equal(eddy_creds_get(f->creds, on_creds, &r), EDDY_OK);
    eddy_creds_close(f->creds, NULL, NULL);
    assert_int_equal(eddy_creds_get(f->creds, on_creds, &r2), EDDY_ECANCELED);
    f->creds = NULL;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.err, EDDY_ECANCELED);
    assert_int_equal(r2.calls, 0);

    /* Closed with the IMDS request in flight: the request is canceled. */
    f->creds = eddy_creds_new(&f->loop, eddy_fake_transport(f->fake), &f->clock.clock);
    memset(&r, 0, sizeof r);
    assert_int_equal(eddy_creds_get(f->creds, on_creds, &r), EDDY_OK);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* the fake waits for a reply */
    assert_int_equal(r.calls, 0);
    assert_int_equal(eddy_fake_inflight(f->fake), 1);
    struct closed closed = {.r = &r, .fake = f->fake};
    eddy_creds_close(f->creds, on_creds_closed, &closed);
    eddy_creds_close(f->creds, on_creds_closed, &closed); /* a second close does nothing */
    f->creds = NULL;
    assert_int_equal(closed.calls, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.err, EDDY_ECANCELED);
    /* cb once, after the canceled request was answered and the get failed */
    assert_int_equal(closed.calls, 1);
    assert_int_equal(closed.gets_answered, 1);
    assert_int_equal(closed.inflight, 0);
    assert_true(eddy_fake_request_at(f->fake, 0)->canceled);
    assert_int_equal(eddy_fake_inflight(f->fake), 0);
}

/* A transport that answers only when the test says so, even a cancel. */
struct slow {
    eddy_http_cb cb;
    void *ud;
    int sends, cancels;
};

static eddy_err slow_send(void *self, const struct eddy_http_request *req, eddy_http_cb cb,
                          void *ud, uint64_t *id)
{
    (void)req;
    struct slow *s = self;
    s->cb = cb;
    s->ud = ud;
    *id = (uint64_t)++s->sends;
    return EDDY_OK;
}

static void slow_cancel(void *self, uint64_t id)
{
    (void)id;
    ((struct slow *)self)->cancels++;
}

/* The close waits for the canceled request's answer, however late it is:
 * only then do the gets fail, cb run and the chain go. */
static void test_close_waits_for_answer(void **state)
{
    struct fx *f = *state;
    static const struct eddy_transport_ops slow_ops = {.send = slow_send, .cancel = slow_cancel};
    struct slow slow = {0};
    struct result r = {0};
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:8111", 1);
    struct eddy_creds *c =
        eddy_creds_new(&f->loop, (struct eddy_transport){&slow_ops, &slow}, &f->clock.clock);
    assert_int_equal(eddy_creds_get(c, on_creds, &r), EDDY_OK);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(slow.sends, 1);
    struct closed closed = {.r = &r, .fake = f->fake};
    eddy_creds_close(c, on_creds_closed, &closed);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* the handles close; the answer is owed */
    assert_int_equal(slow.cancels, 1);
    assert_int_equal(closed.calls, 0);
    assert_int_equal(r.calls, 0);
    slow.cb(EDDY_ECANCELED, NULL, slow.ud);
    assert_int_equal(closed.calls, 1);
    assert_int_equal(closed.gets_answered, 1);
    assert_int_equal(r.err, EDDY_ECANCELED);
}

static void test_static(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    assert_null(eddy_creds_new_static(&f->loop, NULL, "s", NULL));
    assert_null(eddy_creds_new_static(&f->loop, "AKIA", "", NULL));
    struct eddy_creds *s = eddy_creds_new_static(&f->loop, "AKIASTATIC", "static-secret", "tok");
    assert_non_null(s);
    const struct eddy_credentials *c = eddy_creds_current(s);
    assert_non_null(c);
    assert_string_equal(c->access_key_id, "AKIASTATIC");
    assert_string_equal(c->session_token, "tok");
    assert_int_equal(eddy_creds_get(s, on_creds, &r), EDDY_OK);
    assert_int_equal(r.calls, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.err, EDDY_OK);
    assert_string_equal(r.provider, "static");
    assert_string_equal(r.secret, "static-secret");
    eddy_creds_close(s, NULL, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

/* Log at debug into a file through a resolution, a failed refresh and a
 * configuration error; no key, secret or token may appear. */
static void test_no_secrets_in_logs(void **state)
{
    struct fx *f = *state;
    struct result r;
    FILE *log = tmpfile();
    assert_non_null(log);
    eddy_log_configure(EDDY_LOG_DEBUG, EDDY_LOG_JSON, log);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:8111", 1);
    push_imds(f, "ASIAIMDS", T0_MS + 3600000);
    get_once(f, &r);
    eddy_clock_fake_advance(&f->clock, 56 * 60000);
    eddy_fake_push_error(f->fake, EDDY_ENET);
    assert_non_null(eddy_creds_current(f->creds));
    uv_run(&f->loop, UV_RUN_DEFAULT);
    setenv("AWS_ACCESS_KEY_ID", "AKIAPARTIAL", 1);
    renew(f);
    get_once(f, &r);
    eddy_log_configure(EDDY_LOG_INFO, EDDY_LOG_JSON, NULL);

    char text[8192] = {0};
    rewind(log);
    size_t n = fread(text, 1, sizeof text - 1, log);
    fclose(log);
    text[n] = '\0';
    assert_contains(text, "credentials from imds");
    assert_contains(text, "credential refresh failed");
    const char *secrets[] = {"ASIAIMDS", "secret-", "token-", "IMDSTOKEN", "AKIAPARTIAL"};
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(secrets); i++)
        assert_null(strstr(text, secrets[i]));
}

/* ------------------------------------------------------------------------ */
/* Over real HTTP: the loopback server plays the ECS and IMDS endpoints. */

struct endpoint {
    char seen[16][160]; /* "METHOD target header-of-interest" per request */
    int n;
    bool malformed;  /* ECS answers junk */
    int64_t expires; /* of the documents served */
};

static void reply_doc(struct endpoint *e, struct eddy_testserver_reply *reply, const char *akid,
                      bool code)
{
    static char body[512];
    char *d = doc(akid, e->expires, code);
    snprintf(body, sizeof body, "%s", d);
    free(d);
    reply->body = body;
    reply->headers = "Content-Type: application/json\r\n";
}

static void endpoint_handler(const struct eddy_testserver_request *req,
                             struct eddy_testserver_reply *reply, void *ud)
{
    struct endpoint *e = ud;
    const char *ttl = eddy_testserver_header(req, "X-aws-ec2-metadata-token-ttl-seconds");
    const char *tok = eddy_testserver_header(req, "X-aws-ec2-metadata-token");
    const char *auth = eddy_testserver_header(req, "Authorization");
    if (e->n < 16)
        snprintf(e->seen[e->n++], 160, "%s %s ttl=%s token=%s auth=%s", req->method, req->target,
                 ttl ? ttl : "-", tok ? tok : "-", auth ? auth : "-");
    const char *creds_path = "/latest/meta-data/iam/security-credentials/";
    bool token_ok = tok && strcmp(tok, "LOOPTOKEN") == 0;
    if (strcmp(req->method, "PUT") == 0 && strcmp(req->target, "/latest/api/token") == 0 && ttl) {
        reply->body = "LOOPTOKEN";
    } else if (strcmp(req->method, "GET") == 0 && strcmp(req->target, creds_path) == 0 &&
               token_ok) {
        reply->body = "loop-role\n";
    } else if (strcmp(req->method, "GET") == 0 && token_ok &&
               strncmp(req->target, creds_path, strlen(creds_path)) == 0 &&
               strcmp(req->target + strlen(creds_path), "loop-role") == 0) {
        reply_doc(e, reply, "ASIALOOPIMDS", true);
    } else if (strcmp(req->target, "/ecs/creds") == 0 && auth &&
               strcmp(auth, "raw token/value==") == 0) {
        if (e->malformed)
            reply->body = "{\"AccessKeyId\":\"ASIA\",";
        else
            reply_doc(e, reply, "ASIALOOPECS", false);
    } else {
        reply->status = 401;
    }
}

/* Put the fixture's chain on the real HTTP client, talking to a server
 * that plays the endpoint ep. */
static void loopback_start(struct fx *f, struct endpoint *ep)
{
    memset(ep, 0, sizeof *ep);
    ep->expires = T0_MS + 6 * 3600 * 1000;
    f->server = eddy_testserver_start(&f->loop, endpoint_handler, ep);
    struct eddy_error err = {0};
    f->http = eddy_http_new(&f->loop, NULL, &err);
    assert_non_null(f->http);
    eddy_creds_close(f->creds, NULL, NULL);
    f->creds = eddy_creds_new(&f->loop, eddy_http_transport(f->http), &f->clock.clock);
}

static void test_loopback_imds(void **state)
{
    struct fx *f = *state;
    struct endpoint ep;
    loopback_start(f, &ep);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", eddy_testserver_url(f->server), 1);
    struct result r[3] = {0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(eddy_creds_get(f->creds, on_creds, &r[i]), EDDY_OK);
    while (r[0].calls + r[1].calls + r[2].calls < 3 && uv_run(&f->loop, UV_RUN_ONCE))
        ;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].err, EDDY_OK);
        assert_string_equal(r[i].provider, "imds");
        assert_string_equal(r[i].akid, "ASIALOOPIMDS");
        assert_string_equal(r[i].token, "token-ASIALOOPIMDS");
        assert_int_equal(r[i].expires, ep.expires);
    }
    assert_int_equal(eddy_testserver_requests(f->server), 3); /* one shared resolution */
    assert_int_equal(ep.n, 3);
    assert_string_equal(ep.seen[0], "PUT /latest/api/token ttl=21600 token=- auth=-");
    assert_string_equal(ep.seen[1], "GET /latest/meta-data/iam/security-credentials/ ttl=- "
                                    "token=LOOPTOKEN auth=-");
    assert_string_equal(ep.seen[2], "GET /latest/meta-data/iam/security-credentials/loop-role "
                                    "ttl=- token=LOOPTOKEN auth=-");
}

static void test_loopback_imds_unreachable(void **state)
{
    struct fx *f = *state;
    struct endpoint ep;
    struct result r;
    loopback_start(f, &ep);
    /* A port nothing listens on: the chain fails fast with the reason. */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", eddy_testserver_port(f->server));
    eddy_testserver_close(f->server, NULL, NULL);
    f->server = NULL;
    uv_run(&f->loop, UV_RUN_NOWAIT);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    uint64_t start = uv_hrtime();
    get_wait(f, &r);
    assert_int_equal(r.err, EDDY_ECREDENTIALS);
    assert_contains(r.detail, "imds: token request failed (");
    assert_true(uv_hrtime() - start < (uint64_t)1500 * 1000000); /* within the 1 s budget */
}

static void test_loopback_ecs(void **state)
{
    struct fx *f = *state;
    struct endpoint ep;
    struct result r;
    loopback_start(f, &ep);
    char url[128];
    snprintf(url, sizeof url, "%s/ecs/creds", eddy_testserver_url(f->server));
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "raw token/value==", 1);
    get_wait(f, &r);
    assert_int_equal(r.err, EDDY_OK);
    assert_string_equal(r.provider, "ecs");
    assert_string_equal(r.akid, "ASIALOOPECS");
    assert_string_equal(r.secret, "secret-ASIALOOPECS");
    assert_int_equal(ep.n, 1);
    assert_string_equal(ep.seen[0], "GET /ecs/creds ttl=- token=- auth=raw token/value==");

    /* Malformed JSON from the endpoint: a clear error, IMDS not asked. */
    ep.malformed = true;
    eddy_creds_close(f->creds, NULL, NULL);
    f->creds = eddy_creds_new(&f->loop, eddy_http_transport(f->http), &f->clock.clock);
    get_wait(f, &r);
    assert_int_equal(r.err, EDDY_ECREDENTIALS);
    assert_contains(r.detail, "ecs: credentials response is not a JSON object");
    assert_int_equal(ep.n, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ini_dialect),
        cmocka_unit_test(test_ini_malformed),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_parse_document),
        cmocka_unit_test_setup_teardown(test_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_partial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_files_home_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_files_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_relative_uri, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_full_uri_token_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_config_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_asks_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_default_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_when_clock_passes_refresh_point, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_within_margin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_failure_keeps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_gets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_waits_for_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_secrets_in_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback_imds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback_imds_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback_ecs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
