/*
 * creds_imds.c - the credential provider of IMDSv2 (token PUT, role GET, credentials GET) (see
 * credentials.h).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/creds_provider.h"
#include "base/alloc.h"

static enum outcome imds_start(struct eddy_creds *c)
{
    const char *disabled = creds_env("AWS_EC2_METADATA_DISABLED");
    if (disabled && strcasecmp(disabled, "true") == 0) {
        creds_note(c, "imds: disabled by AWS_EC2_METADATA_DISABLED");
        return NOTHING;
    }
    const char *endpoint = creds_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    const char *mode = creds_env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
    if (endpoint && !creds_is_http_url(endpoint)) {
        creds_note(c, "imds: AWS_EC2_METADATA_SERVICE_ENDPOINT is not an http:// or https:// URL");
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
    eddy_err e = creds_send_req(c, STEP_IMDS_TOKEN, "PUT", url, headers, 1, IMDS_TIMEOUT_MS);
    free(url);
    if (e != EDDY_OK) {
        creds_note(c, "imds: token request not sent (%s)", eddy_err_msg(e));
        return NOTHING;
    }
    return PENDING;
}

/* GET <base>/latest/meta-data/iam/security-credentials/<role> with the token. */
static enum outcome imds_get(struct eddy_creds *c, enum step step, const char *role)
{
    struct eddy_buf url;
    eddy_buf_init(&url, 0);
    eddy_buf_putf(&url, "%s/latest/meta-data/iam/security-credentials/%s", c->imds_base, role);
    char *h = creds_header_line("X-aws-ec2-metadata-token", c->imds_token);
    const char *headers[] = {h};
    eddy_err e = creds_send_req(c, step, "GET", eddy_buf_cstr(&url), headers, 1, IMDS_TIMEOUT_MS);
    eddy_free_secret(h);
    eddy_buf_cleanup(&url);
    if (e != EDDY_OK) {
        creds_note(c, "imds: request not sent (%s)", eddy_err_msg(e));
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
    if (!creds_reply_ok(c, "imds: token request", err, resp))
        return NOTHING;
    size_t n = resp->body.len;
    char *token = eddy_strndup(resp->body.ptr ? resp->body.ptr : "", n);
    creds_trim(token, &n);
    if (!printable_token(token, n) || n > 4096) {
        creds_note(c, "imds: token response is empty or malformed");
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
        creds_note(c, "imds: no IAM role attached to the instance (HTTP 404)");
        return NOTHING;
    }
    if (!creds_reply_ok(c, "imds: role request", err, resp))
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
        creds_note(c, "imds: %s",
                   role.len ? "the role name is malformed"
                            : "no IAM role attached to the instance");
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
    if (!creds_reply_ok(c, "imds: credentials request", err, resp))
        return NOTHING;
    struct eddy_error perr = {0};
    if (eddy_creds_parse_document(resp->body, "imds", true, got, &perr) != EDDY_OK) {
        creds_note(c, "%s", eddy_error_text(&perr));
        return NOTHING;
    }
    return FOUND;
}

static enum outcome imds_begin(struct eddy_creds *c, struct eddy_credentials *out)
{
    (void)out;
    return imds_start(c);
}

static enum outcome imds_done(struct eddy_creds *c, eddy_err err,
                              const struct eddy_http_response *resp, struct eddy_credentials *out)
{
    switch (c->step) {
    case STEP_IMDS_TOKEN:
        return imds_token_done(c, err, resp);
    case STEP_IMDS_ROLE:
        return imds_role_done(c, err, resp);
    default:
        return imds_creds_done(c, err, resp, out);
    }
}

const struct creds_provider creds_imds_provider = {"imds", imds_begin, imds_done};
