/*
 * creds_ecs.c - the credential provider of the ECS container endpoint (see credentials.h).
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

/* The Authorization value, or NULL for none. The _FILE variable wins, as in
 * the SDKs, because it is how a rotated token is delivered. */
static enum outcome ecs_token(struct eddy_creds *c, char **out)
{
    const char *file = creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *direct = creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    size_t len = 0;
    *out = NULL;
    if (file) {
        int rc = creds_read_small_file(file, TOKEN_FILE_MAX, out, &len);
        if (rc) {
            creds_note(c, "ecs: cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s (%s)", file,
                       rc == EFBIG ? "larger than 16 KiB" : strerror(rc));
            return FATAL;
        }
        creds_trim(*out, &len);
    } else if (direct) {
        len = strlen(direct);
        *out = eddy_strndup(direct, len);
    }
    if (!*out)
        return FOUND;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)(*out)[i];
        if (ch < ' ' && ch != '\t') {
            creds_note(c, "ecs: the authorization token holds a line break or control byte");
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
        eddy_buf_putf(&b, "%s%s%s", ECS_HOST_URL, rel[0] == '/' ? "" : "/", rel);
    else
        eddy_buf_puts(&b, full);
    if (eddy_buf_refused(&b)) {
        creds_note(c, "ecs: the container credentials URL is over its limit of 8192 bytes");
        eddy_buf_cleanup(&b);
        return FATAL;
    }
    if (!creds_is_http_url(eddy_buf_cstr(&b))) {
        creds_note(c, "ecs: %s is not a valid %s",
                   rel ? "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
                       : "AWS_CONTAINER_CREDENTIALS_FULL_URI",
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
    creds_note(c, "imds: not tried, the ECS container endpoint is configured");
    return STOP;
}

static enum outcome ecs_start(struct eddy_creds *c)
{
    const char *rel = creds_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = creds_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (!rel && !full) {
        creds_note(c, "ecs: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and "
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
        headers[n++] = auth = creds_header_line("Authorization", token);
    eddy_err e = creds_send_req(c, STEP_ECS, "GET", url, headers, n, ECS_TIMEOUT_MS);
    if (e == EDDY_OK) {
        o = PENDING;
    } else {
        creds_note(c, "ecs: request not sent (%s)", eddy_err_msg(e));
        o = ecs_failed(c);
    }
done:
    free(url);
    eddy_free_secret(token);
    eddy_free_secret(auth);
    return o;
}

/* A failure the endpoint may not repeat: it timed out, the connection
 * failed, or it answered 429 (the agent limits the rate) or 5xx. */
static bool ecs_transient(eddy_err err, const struct eddy_http_response *resp)
{
    if (err != EDDY_OK)
        return err == EDDY_ETIMEOUT || err == EDDY_ENET;
    return resp && (resp->status == 429 || resp->status >= 500);
}

static enum outcome ecs_done(struct eddy_creds *c, eddy_err err,
                             const struct eddy_http_response *resp, struct eddy_credentials *got)
{
    if (ecs_transient(err, resp) && ++c->attempts < ECS_ATTEMPTS)
        return AGAIN; /* many tasks starting on one host: ask again */
    if (!creds_reply_ok(c, "ecs: request", err, resp))
        return ecs_failed(c);
    struct eddy_error perr = {0};
    if (eddy_creds_parse_document(resp->body, "ecs", false, got, &perr) != EDDY_OK) {
        creds_note(c, "%s", eddy_error_text(&perr));
        return ecs_failed(c);
    }
    return FOUND;
}

static enum outcome ecs_begin(struct eddy_creds *c, struct eddy_credentials *out)
{
    (void)out;
    return ecs_start(c);
}

const struct creds_provider creds_ecs_provider = {"ecs", ecs_begin, ecs_done};
