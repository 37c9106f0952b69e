/*
 * awscall.c - the AWS JSON protocol call (see awscall.h): sign, send,
 * classify, retry with backoff, cancel.
 *
 * A call moves through: credentials (only when eddy_creds_current has none)
 * -> http -> done, or -> backoff -> credentials/http again. Header lines that
 * never change (Host, Content-Type) are built once per client; the ones that
 * change per attempt are built in the client's scratch buffers, because the
 * transport copies the header lines on send. The body is the call's own
 * from eddy_aws_call to call_release, after the callback: every attempt
 * lends the same bytes to the transport, which reads them until its
 * callback (http.h), so nothing copies a body per attempt. The payload hash
 * is computed once per call, and the SigV4 signing key is cached per client.
 */
#include "aws/awscall.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/cbor.h"
#include "base/alloc.h"
#include "base/log.h"

#define MAX_OP_NAME 64

#define RPCV2_PROTOCOL "rpc-v2-cbor"

enum call_state { CALL_IDLE, CALL_CREDS, CALL_HTTP, CALL_BACKOFF, CALL_DONE };
static const char *const call_state_names[] = {"idle", "creds", "http", "backoff", "done"};

struct eddy_aws_call {
    struct eddy_aws_client *c;
    struct eddy_list link; /* in the client's list of calls in flight */
    const char *op;
    eddy_aws_cb cb;
    void *ud;
    struct eddy_buf body; /* lent to every attempt; freed by call_release */
    char payload_hash[65];
    uint32_t timeout_ms;
    size_t max_response;
    bool idempotent;
    bool raw_reply; /* a 2xx JSON body is handed over as text, not parsed */
    bool canceled;
    bool creds_pending; /* an eddy_creds_get callback is owed to this call */
    bool timer_init;
    enum call_state state;
    unsigned max_attempts;
    unsigned attempts;
    struct eddy_retry_call retry;
    uint64_t http_id;
    uv_timer_t timer;
    /* the outcome of the last attempt */
    long status;
    cJSON *json;                  /* in arena: read during the callback, freed at once */
    struct eddy_str raw;          /* raw_reply: the 2xx body, valid during the callback */
    struct eddy_json_arena arena; /* zeroed: a default first chunk */
    char request_id[96];
    char *error_code;
    char *error_message;
    struct eddy_aws_class klass; /* of an error reply */
    struct eddy_error error;
};

/*
 * Every change of a call's state goes through here (as curl's mstate()):
 * what cannot happen is asserted (no move out of done, where the callback
 * has run; none to the same state; out of http only to idle, when the
 * reply came), and at debug level each move is logged.
 */
static void call_set_state(struct eddy_aws_call *call, enum call_state to)
{
    enum call_state from = call->state;
    assert(from != CALL_DONE); /* the callback runs exactly once */
    assert(to != from);
    assert(from != CALL_HTTP || to == CALL_IDLE);
    if (eddy_log_enabled(EDDY_LOG_DEBUG))
        eddy_log(EDDY_LOG_DEBUG, NULL, "%s %s: call %s -> %s (attempt %u)", call->c->info->name,
                 call->op, call_state_names[from], call_state_names[to], call->attempts);
    call->state = to;
}

/* ---- context and clients ---- */

eddy_err eddy_aws_init(struct eddy_aws *aws, const struct eddy_aws_config *cfg,
                       struct eddy_error *err)
{
    memset(aws, 0, sizeof *aws);
    if (cfg == NULL || cfg->loop == NULL || cfg->transport.ops == NULL || cfg->creds == NULL)
        return eddy_error_set(err, EDDY_EINVAL, "aws: loop, transport and creds are required");
    aws->loop = cfg->loop;
    aws->transport = cfg->transport;
    aws->creds = cfg->creds;
    aws->clock = cfg->clock ? cfg->clock : eddy_clock_system();
    eddy_err rc;
    if (cfg->region) {
        if (strlen(cfg->region) >= EDDY_REGION_MAX || cfg->region[0] == '\0')
            return eddy_error_set(err, EDDY_ECONFIG, "aws: bad region");
        snprintf(aws->region, sizeof aws->region, "%s", cfg->region);
    } else if ((rc = eddy_region_from_env(aws->region, err)) != EDDY_OK) {
        return rc;
    }
    if (cfg->max_attempts)
        aws->max_attempts = cfg->max_attempts;
    else if ((rc = eddy_retry_max_attempts_env(&aws->max_attempts, err)) != EDDY_OK)
        return rc;
    aws->backoff_base_ms = cfg->backoff_base_ms ? cfg->backoff_base_ms : EDDY_RETRY_BASE_MS;
    aws->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : EDDY_RETRY_CAP_MS;
    uint64_t seed =
        cfg->seed ? cfg->seed : eddy_clock_mono_ms(aws->clock) ^ (uint64_t)uv_os_getpid();
    eddy_rng_seed(&aws->rng, seed);
    return EDDY_OK;
}

void eddy_aws_cleanup(struct eddy_aws *aws)
{
    memset(aws, 0, sizeof *aws);
}

static char *header_line(const char *name, const char *value)
{
    size_t n = strlen(name) + 2 + strlen(value) + 1;
    char *s = eddy_malloc(n);
    snprintf(s, n, "%s: %s", name, value);
    return s;
}

eddy_err eddy_aws_client_init(struct eddy_aws_client *c, struct eddy_aws *aws,
                              enum eddy_aws_service svc, const struct eddy_endpoint *ep,
                              struct eddy_error *err)
{
    memset(c, 0, sizeof *c);
    eddy_list_init(&c->calls);
    c->info = eddy_aws_service_info(svc);
    if (aws == NULL || c->info == NULL)
        return eddy_error_set(err, EDDY_EINVAL, "aws client: unknown service");
    if (ep) {
        c->ep.url = eddy_strdup(ep->url);
        c->ep.host = eddy_strdup(ep->host);
        c->ep.path = eddy_strdup(ep->path);
        c->ep.tls = ep->tls;
    } else {
        eddy_err rc = eddy_endpoint_resolve(svc, aws->region, &c->ep, err);
        if (rc)
            return rc;
    }
    c->aws = aws;
    c->svc = svc;
    eddy_retry_quota_init(&c->quota);
    eddy_sigv4_result_init(&c->sig);
    c->host_line = header_line("Host", c->ep.host);
    c->ctype_line = header_line("Content-Type", c->info->content_type);
    eddy_buf_init(&c->token_line, 0);
    eddy_buf_init(&c->op_url, 0);
    eddy_buf_init(&c->auth_line, 0);
    return EDDY_OK;
}

void eddy_aws_client_cleanup(struct eddy_aws_client *c)
{
    if (c->aws == NULL)
        return;
    eddy_endpoint_cleanup(&c->ep);
    eddy_sigv4_key_cache_cleanup(&c->keys);
    eddy_sigv4_result_cleanup(&c->sig);
    free(c->host_line);
    free(c->ctype_line);
    if (c->token_line.ptr)
        eddy_wipe(c->token_line.ptr, c->token_line.cap);
    eddy_buf_cleanup(&c->token_line);
    eddy_buf_cleanup(&c->auth_line);
    eddy_buf_cleanup(&c->op_url);
    memset(c, 0, sizeof *c);
}

void eddy_aws_client_cancel_all(struct eddy_aws_client *c)
{
    /* cancel never finishes a call synchronously, so the list stays intact */
    struct eddy_list *q;
    eddy_list_foreach(q, &c->calls)
    {
        eddy_aws_call_cancel(eddy_list_data(q, struct eddy_aws_call, link));
    }
}

/* ---- error replies ---- */

struct eddy_str eddy_aws_error_code(struct eddy_str type)
{
    const char *p = type.ptr, *end = type.ptr + type.len;
    const char *hash = type.len ? memchr(p, '#', type.len) : NULL;
    if (hash)
        p = hash + 1;
    const char *colon = p < end ? memchr(p, ':', (size_t)(end - p)) : NULL;
    if (colon)
        end = colon;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return (struct eddy_str){p, (size_t)(end - p)};
}

static const char *json_string(const cJSON *obj, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, a);
    if (!cJSON_IsString(v) && b)
        v = cJSON_GetObjectItemCaseSensitive(obj, b);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/*
 * msg, copied with the value of every x-amz-security-token in it replaced:
 * a signature error quotes the canonical request it expected, session token
 * and all ("x-amz-security-token:<token>", or "X-Amz-Security-Token=<token>"
 * in a query string), and the message goes into logs and error details.
 */
static char *redact_token(const char *msg)
{
    static const char name[] = "x-amz-security-token";
    static const char mark[] = "[redacted]";
    const size_t n = sizeof name - 1;
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    const char *p = msg;
    for (const char *q = msg; *q; q++) {
        if (strncasecmp(q, name, n) != 0 || (q[n] != ':' && q[n] != '='))
            continue;
        q += n + 1;
        eddy_buf_put(&b, p, (size_t)(q - p));
        eddy_buf_put(&b, mark, sizeof mark - 1);
        q += strcspn(q, "\r\n&; \t\"");
        p = q;
        if (*q == '\0')
            break;
    }
    eddy_buf_puts(&b, p);
    const char *text = eddy_buf_cstr(&b);
    char *out = eddy_strdup(text);
    eddy_buf_cleanup(&b);
    return out;
}

struct eddy_aws_class eddy_aws_read_error(long status, const cJSON *json,
                                          struct eddy_str query_error, struct eddy_str error_type,
                                          char **code_out, char **message_out)
{
    struct eddy_str code = {NULL, 0}, tcode = {NULL, 0};
    if (query_error.ptr && query_error.len) {
        const char *semi = memchr(query_error.ptr, ';', query_error.len);
        code = (struct eddy_str){query_error.ptr,
                                 semi ? (size_t)(semi - query_error.ptr) : query_error.len};
    }
    const char *type = json ? json_string(json, "__type", "code") : NULL;
    if (type)
        tcode = eddy_aws_error_code(eddy_str_c(type));
    else if (error_type.ptr)
        tcode = eddy_aws_error_code(error_type);
    /* a NUL in a header or __type ends the code there (logs and classify read C strings) */
    code.len = code.ptr ? strnlen(code.ptr, code.len) : 0;
    tcode.len = tcode.ptr ? strnlen(tcode.ptr, tcode.len) : 0;
    if (code.len == 0)
        code = tcode;
    char *c = code.len ? eddy_strndup(code.ptr, code.len)
                       : eddy_strdup(status >= 500 ? "InternalFailure" : "HTTPError");
    const char *msg = json ? json_string(json, "message", "Message") : NULL;
    *message_out = redact_token(msg ? msg : "");
    struct eddy_aws_class k = eddy_aws_classify(EDDY_OK, status, c);
    if (k.err == EDDY_EAWS && tcode.len && !eddy_str_eq(tcode, code)) {
        char *t = eddy_strndup(tcode.ptr, tcode.len);
        k = eddy_aws_classify(EDDY_OK, status, t);
        free(t);
    }
    if (k.err == EDDY_OK) /* an error reply with a 2xx status: still an error, never success */
        k = (struct eddy_aws_class){EDDY_EAWS, EDDY_RETRY_NO};
    *code_out = c;
    return k;
}

/* Fill call->error_code and error_message from an error reply; return its
 * class. */
static eddy_err read_error(struct eddy_aws_call *call, const struct eddy_http_response *resp)
{
    struct eddy_str q = {NULL, 0}, t = {NULL, 0};
    if (!eddy_http_response_header(resp, "x-amzn-query-error", &q))
        q = (struct eddy_str){NULL, 0};
    if (!eddy_http_response_header(resp, "x-amzn-ErrorType", &t))
        t = (struct eddy_str){NULL, 0};
    call->klass = eddy_aws_read_error(resp->status, call->json, q, t, &call->error_code,
                                      &call->error_message);
    return call->klass.err;
}

static void reset_outcome(struct eddy_aws_call *call)
{
    call->status = 0;
    eddy_json_arena_cleanup(&call->arena); /* the whole tree at once */
    call->json = NULL;
    call->raw = (struct eddy_str){NULL, 0};
    call->request_id[0] = '\0';
    free(call->error_code);
    free(call->error_message);
    call->error_code = call->error_message = NULL;
    call->klass = (struct eddy_aws_class){EDDY_OK, EDDY_RETRY_NO};
    eddy_error_clear(&call->error);
}

static void read_request_id(struct eddy_aws_call *call, const struct eddy_http_response *resp)
{
    struct eddy_str v;
    if (eddy_http_response_header(resp, "x-amzn-RequestId", &v) ||
        eddy_http_response_header(resp, "x-amz-request-id", &v)) {
        size_t n = v.len < sizeof call->request_id ? v.len : sizeof call->request_id - 1;
        memcpy(call->request_id, v.ptr, n);
        call->request_id[n] = '\0';
    }
}

/* An RPC v2 body decoded into call->json; EDDY_EPARSE with detail when it
 * is not one CBOR map. */
static eddy_err parse_cbor_body(struct eddy_aws_call *call, struct eddy_str body)
{
    struct eddy_error perr = {0};
    struct eddy_json_arena *prev = eddy_json_arena_enter(&call->arena);
    eddy_err rc = eddy_cbor_parse(body.ptr, body.len, &call->json, &perr);
    eddy_json_arena_leave(prev);
    if (rc == EDDY_OK && !cJSON_IsObject(call->json)) {
        call->json = NULL;
        eddy_error_set(&perr, EDDY_EPARSE, "CBOR: the top-level item is not a map");
    }
    if (call->json)
        return EDDY_OK;
    return eddy_error_set(&call->error, EDDY_EPARSE,
                          "%s %s: HTTP %ld reply is not a CBOR map (%zu bytes, %s, request id %s)",
                          call->c->info->name, call->op, call->status, body.len, perr.detail,
                          call->request_id[0] ? call->request_id : "none");
}

/* Parse the body into call->json; EDDY_EPARSE with detail when not JSON. */
static eddy_err parse_body(struct eddy_aws_call *call, struct eddy_str body)
{
    if (call->c->info->protocol == EDDY_AWS_RPCV2_CBOR)
        return parse_cbor_body(call, body);
    const char *end = NULL;
    /* the tree goes into the call's arena: one chunk or two instead of a
     * malloc per node and string (a guess of its size: the text twice) */
    eddy_json_arena_init(&call->arena, body.len * 2 + 512);
    struct eddy_json_arena *prev = eddy_json_arena_enter(&call->arena);
    call->json = cJSON_ParseWithLengthOpts(body.ptr, body.len, &end, false);
    eddy_json_arena_leave(prev);
    if (call->json && !cJSON_IsObject(call->json)) {
        call->json = NULL;
        end = NULL;
    }
    if (call->json)
        return EDDY_OK;
    size_t at = end && end >= body.ptr ? (size_t)(end - body.ptr) : 0;
    return eddy_error_set(&call->error, EDDY_EPARSE,
                          "%s %s: HTTP %ld reply is not a JSON object (%zu bytes, bad at byte "
                          "%zu, request id %s)",
                          call->c->info->name, call->op, call->status, body.len, at,
                          call->request_id[0] ? call->request_id : "none");
}

/* The outcome of one HTTP response: EDDY_OK or the class of the error. */
static eddy_err read_response(struct eddy_aws_call *call, const struct eddy_http_response *resp)
{
    call->status = resp->status;
    read_request_id(call, resp);
    bool ok = resp->status >= 200 && resp->status < 300;
    if (ok && call->raw_reply && call->c->info->protocol != EDDY_AWS_RPCV2_CBOR) {
        /* resp lives until on_http returns, and the callback runs in it */
        call->raw = resp->body;
        return EDDY_OK;
    }
    if (ok && resp->body.len == 0) {
        struct eddy_json_arena *prev = eddy_json_arena_enter(&call->arena);
        call->json = cJSON_CreateObject(); /* an operation with no output */
        eddy_json_arena_leave(prev);
        return EDDY_OK;
    }
    eddy_err prc = resp->body.len ? parse_body(call, resp->body) : EDDY_EPARSE;
    if (ok)
        return prc;
    eddy_error_clear(&call->error); /* an error page need not be JSON */
    eddy_err e = read_error(call, resp);
    eddy_error_set(&call->error, e, "%s %s: %s: %s (HTTP %ld, request id %s, attempt %u)",
                   call->c->info->name, call->op, call->error_code,
                   call->error_message[0] ? call->error_message : "no message", resp->status,
                   call->request_id[0] ? call->request_id : "none", call->attempts);
    return e;
}

/* ---- the call ---- */

static void on_http(eddy_err err, const struct eddy_http_response *resp, void *ud);
static void on_timer(uv_timer_t *t);

/* The n parts joined into out (cap bytes with the NUL), cut as snprintf
 * would: the per-attempt header lines, without a printf per call. */
static void join(char *out, size_t cap, const char *const *parts, size_t nparts)
{
    size_t n = 0;
    for (size_t i = 0; i < nparts; i++) {
        size_t len = strlen(parts[i]);
        if (len > cap - 1 - n)
            len = cap - 1 - n;
        memcpy(out + n, parts[i], len);
        n += len;
    }
    out[n] = '\0';
}

#define DATE_PREFIX "X-Amz-Date: "

/* Sign one attempt and hand it to the transport. */
static eddy_err send_attempt(struct eddy_aws_call *call, const struct eddy_credentials *cr,
                             struct eddy_error *err)
{
    struct eddy_aws_client *c = call->c;
    int64_t unix_s = eddy_clock_unix_ms(c->aws->clock) / 1000;
    /* the date is written once, into its header line */
    memcpy(c->date_line, DATE_PREFIX, sizeof DATE_PREFIX - 1);
    char *amz_date = c->date_line + sizeof DATE_PREFIX - 1;
    eddy_time_amz(unix_s, amz_date);
    bool token = cr->session_token && cr->session_token[0];
    bool rpcv2 = c->info->protocol == EDDY_AWS_RPCV2_CBOR;
    const char *url = c->ep.url, *path = c->ep.path;
    struct eddy_sigv4_header sh[6] = {
        {EDDY_STR_LIT("Host"), eddy_str_c(c->ep.host)},
        {EDDY_STR_LIT("Content-Type"), eddy_str_c(c->info->content_type)},
        {EDDY_STR_LIT("X-Amz-Date"), eddy_str_c(amz_date)},
        {EDDY_STR_LIT("X-Amz-Security-Token"), eddy_str_c(token ? cr->session_token : "")},
        {EDDY_STR_LIT("X-Amz-Target"), eddy_str_c("")},
        {EDDY_STR_LIT("Smithy-Protocol"), eddy_str_c(RPCV2_PROTOCOL)},
    };
    size_t nsh = token ? 4 : 3;
    if (rpcv2) {
        /* the operation is in the path; Accept is sent but left unsigned */
        eddy_buf_reset(&c->op_url);
        const char *parts[] = {c->ep.url, "service/", c->info->target_prefix, "/operation/",
                               call->op};
        for (size_t i = 0; i < EDDY_ARRAY_SIZE(parts); i++)
            eddy_buf_puts(&c->op_url, parts[i]);
        url = eddy_buf_cstr(&c->op_url);
        path = url + strlen(c->ep.url) - strlen(c->ep.path);
        sh[nsh++] = sh[5];
        join(c->target_line, sizeof c->target_line,
             (const char *[]){"Smithy-Protocol: ", RPCV2_PROTOCOL}, 2);
    } else {
        join(c->target_line, sizeof c->target_line,
             (const char *[]){"X-Amz-Target: ", c->info->target_prefix, ".", call->op}, 4);
        sh[4].value = eddy_str_c(c->target_line + 14);
        sh[nsh++] = sh[4];
    }
    struct eddy_sigv4_request sreq = {
        EDDY_STR_LIT("POST"), eddy_str_c(path), {"", 0},           sh, nsh,
        call->body.ptr,       call->body.len,   call->payload_hash};
    struct eddy_sigv4_params params = {c->aws->region, c->info->signing_name, unix_s, true, false};
    struct eddy_sigv4_credentials sc = {cr->access_key_id, cr->secret_access_key,
                                        token ? cr->session_token : NULL};
    eddy_err rc = eddy_sigv4_sign(&params, &sc, &sreq, &c->keys, false, &c->sig, err);
    if (rc)
        return rc;
    eddy_buf_reset(&c->auth_line);
    eddy_buf_puts(&c->auth_line, "Authorization: ");
    eddy_buf_put_str(&c->auth_line, eddy_buf_str(&c->sig.authorization));
    /* No Expect line: the transport suppresses curl's "Expect: 100-continue"
     * itself, and an "Expect:" line here would send an empty Expect header. */
    const char *lines[8] = {c->host_line, c->ctype_line, c->target_line, c->date_line,
                            eddy_buf_cstr(&c->auth_line)};
    size_t n = 5;
    if (rpcv2)
        lines[n++] = "Accept: application/cbor";
    if (token) {
        eddy_buf_reset(&c->token_line);
        eddy_buf_puts(&c->token_line, "X-Amz-Security-Token: ");
        eddy_buf_puts(&c->token_line, cr->session_token);
        lines[n++] = eddy_buf_cstr(&c->token_line);
    }
    struct eddy_http_request hreq = {"POST",
                                     url,
                                     lines,
                                     n,
                                     call->body.ptr,
                                     call->body.len,
                                     call->timeout_ms,
                                     call->max_response};
    rc = eddy_transport_send(&c->aws->transport, &hreq, on_http, call, &call->http_id);
    if (rc)
        return eddy_error_set(err, rc, "%s %s: could not send: %s", c->info->name, call->op,
                              eddy_err_msg(rc));
    call_set_state(call, CALL_HTTP);
    return EDDY_OK;
}

static void on_creds(eddy_err err, const struct eddy_credentials *creds, const char *detail,
                     void *ud);

/* Start attempt number call->attempts + 1. */
static eddy_err attempt_start(struct eddy_aws_call *call, struct eddy_error *err)
{
    assert(call->state == CALL_IDLE || call->state == CALL_BACKOFF);
    call->attempts++;
    const struct eddy_credentials *cr = eddy_creds_current(call->c->aws->creds);
    if (cr)
        return send_attempt(call, cr, err);
    eddy_err rc = eddy_creds_get(call->c->aws->creds, on_creds, call);
    if (rc)
        return eddy_error_set(err, rc == EDDY_ECANCELED ? rc : EDDY_ECREDENTIALS,
                              "%s %s: no credentials: %s", call->c->info->name, call->op,
                              eddy_err_msg(rc));
    call->creds_pending = true;
    call_set_state(call, CALL_CREDS);
    return EDDY_OK;
}

static void on_timer_close(uv_handle_t *h)
{
    free(eddy_container_of(h, struct eddy_aws_call, timer));
}

/* Free call once nothing refers to it any more. */
static void call_release(struct eddy_aws_call *call)
{
    if (call->creds_pending)
        return; /* on_creds comes back for it */
    eddy_buf_cleanup(&call->body);
    reset_outcome(call);
    if (call->timer_init)
        uv_close((uv_handle_t *)&call->timer, on_timer_close);
    else
        free(call);
}

static void unlink_call(struct eddy_aws_call *call)
{
    eddy_list_remove(&call->link);
    call->c->inflight--;
}

static void finish(struct eddy_aws_call *call, eddy_err e)
{
    if (e == EDDY_ECANCELED) {
        reset_outcome(call);
        eddy_error_set(&call->error, e, "%s %s: canceled", call->c->info->name, call->op);
    } else if (e != EDDY_OK && call->error.code == EDDY_OK)
        eddy_error_set(&call->error, e, "%s %s: %s", call->c->info->name, call->op,
                       eddy_err_msg(e));
    else if (e == EDDY_OK)
        eddy_error_clear(&call->error);
    call_set_state(call, CALL_DONE);
    if (call->timer_init)
        uv_timer_stop(&call->timer);
    unlink_call(call);
    struct eddy_aws_reply reply = {call->status,
                                   call->json,
                                   call->request_id,
                                   call->error_code,
                                   call->error_message ? call->error_message : "",
                                   call->attempts,
                                   &call->error,
                                   call->raw};
    call->cb(e, &reply, call->ud);
    call_release(call);
}

/* The retry class of an attempt that ended in e (its class is in
 * call->klass when a reply came). */
static enum eddy_retry_class retry_class(const struct eddy_aws_call *call, eddy_err transport_err,
                                         eddy_err e)
{
    if (e == EDDY_OK || e == EDDY_EPARSE)
        return EDDY_RETRY_NO;
    enum eddy_retry_class cls = transport_err != EDDY_OK
                                    ? eddy_aws_classify(transport_err, 0, NULL).retry
                                    : call->klass.retry;
    if (cls == EDDY_RETRY_TIMEOUT && !call->idempotent)
        cls = EDDY_RETRY_NO; /* it may have been applied: the caller decides */
    return cls;
}

/* Wait, then try again; false when no retry is allowed. */
static bool schedule_retry(struct eddy_aws_call *call, enum eddy_retry_class cls)
{
    struct eddy_aws *aws = call->c->aws;
    uint32_t delay = 0;
    if (call->canceled || !eddy_retry_decide(&call->c->quota, &call->retry, cls, call->max_attempts,
                                             &aws->rng, &delay)) {
        if (call->retry.stop == EDDY_RETRY_STOP_QUOTA) {
            char was[EDDY_ERROR_DETAIL_MAX];
            memcpy(was, call->error.detail, sizeof was);
            eddy_error_set(&call->error, call->error.code, "%.400s (retry quota exhausted)", was);
        }
        return false;
    }
    if (aws->backoff_base_ms != EDDY_RETRY_BASE_MS || aws->backoff_max_ms != EDDY_RETRY_CAP_MS)
        delay = eddy_backoff_full_jitter(&aws->rng, call->retry.failed - 1, aws->backoff_base_ms,
                                         aws->backoff_max_ms);
    if (!call->timer_init) {
        uv_timer_init(aws->loop, &call->timer);
        call->timer_init = true;
    }
    call_set_state(call, CALL_BACKOFF);
    uv_timer_start(&call->timer, on_timer, delay, 0);
    return true;
}

static void on_http(eddy_err err, const struct eddy_http_response *resp, void *ud)
{
    struct eddy_aws_call *call = ud;
    assert(call->state == CALL_HTTP);
    call_set_state(call, CALL_IDLE);
    if (call->canceled || err == EDDY_ECANCELED) {
        finish(call, EDDY_ECANCELED);
        return;
    }
    reset_outcome(call);
    eddy_err e;
    if (err != EDDY_OK || resp == NULL) {
        e = err != EDDY_OK ? err : EDDY_ENET;
        eddy_error_set(&call->error, e, "%s %s: %s (attempt %u)", call->c->info->name, call->op,
                       e == EDDY_ELIMIT ? "reply over its size cap" : eddy_err_msg(e),
                       call->attempts);
    } else {
        e = read_response(call, resp);
    }
    if (e == EDDY_OK) {
        eddy_retry_on_success(&call->c->quota, &call->retry);
        finish(call, e);
        return;
    }
    enum eddy_retry_class cls = retry_class(call, err, e);
    if (cls == EDDY_RETRY_NO || !schedule_retry(call, cls))
        finish(call, e);
}

static void on_timer(uv_timer_t *t)
{
    struct eddy_aws_call *call = eddy_container_of(t, struct eddy_aws_call, timer);
    if (call->canceled) {
        finish(call, EDDY_ECANCELED);
        return;
    }
    struct eddy_error err = {0};
    eddy_err rc = attempt_start(call, &err);
    if (rc) {
        call->error = err;
        finish(call, rc);
    }
}

static void on_creds(eddy_err err, const struct eddy_credentials *creds, const char *detail,
                     void *ud)
{
    struct eddy_aws_call *call = ud;
    call->creds_pending = false;
    if (call->state == CALL_DONE) { /* canceled meanwhile and already answered */
        call_release(call);
        return;
    }
    if (call->canceled)
        return; /* the 0 ms timer set by cancel answers */
    if (err != EDDY_OK || creds == NULL) {
        eddy_err e = err == EDDY_ECANCELED || err == EDDY_ECONFIG ? err : EDDY_ECREDENTIALS;
        eddy_error_set(&call->error, e, "%s %s: %s", call->c->info->name, call->op,
                       detail && *detail ? detail : eddy_err_msg(e));
        finish(call, e);
        return;
    }
    eddy_err rc = send_attempt(call, creds, &call->error);
    if (rc)
        finish(call, rc);
}

eddy_err eddy_aws_call(struct eddy_aws_client *c, const char *op, struct eddy_buf *body,
                       const struct eddy_aws_call_opts *opts, eddy_aws_cb cb, void *ud,
                       struct eddy_aws_call **handle, struct eddy_error *err)
{
    if (c == NULL || c->aws == NULL || op == NULL || body == NULL || cb == NULL ||
        strlen(op) > MAX_OP_NAME) {
        if (body)
            eddy_buf_cleanup(body);
        return eddy_error_set(err, EDDY_EINVAL, "aws call: client, op, body and cb are required");
    }
    struct eddy_aws_call *call = eddy_calloc(1, sizeof *call);
    call->c = c;
    call->op = op;
    call->cb = cb;
    call->ud = ud;
    call->body = *body;
    eddy_buf_init(body, body->max);
    if (call->body.len == 0) /* an operation without input: an empty object or map */
        eddy_buf_puts(&call->body, c->info->protocol == EDDY_AWS_RPCV2_CBOR ? "\xa0" : "{}");
    eddy_sigv4_payload_hash(&c->sig, call->body.ptr, call->body.len, call->payload_hash);
    call->timeout_ms = opts ? opts->timeout_ms : 0;
    call->max_response = opts ? opts->max_response : 0;
    call->idempotent = opts ? opts->idempotent : true;
    call->raw_reply = opts && opts->raw_reply;
    call->max_attempts = opts && opts->max_attempts ? opts->max_attempts : c->aws->max_attempts;
    eddy_retry_call_init(&call->retry);
    eddy_err rc = attempt_start(call, err);
    if (rc) {
        eddy_buf_cleanup(&call->body);
        free(call);
        return rc;
    }
    eddy_list_insert_head(&c->calls, &call->link);
    c->inflight++;
    if (handle)
        *handle = call;
    return EDDY_OK;
}

void eddy_aws_call_cancel(struct eddy_aws_call *call)
{
    if (call == NULL || call->canceled || call->state == CALL_DONE)
        return;
    call->canceled = true;
    switch (call->state) {
    case CALL_HTTP:
        eddy_transport_cancel(&call->c->aws->transport, call->http_id);
        break;
    case CALL_CREDS:
    case CALL_BACKOFF:
        if (!call->timer_init) {
            uv_timer_init(call->c->aws->loop, &call->timer);
            call->timer_init = true;
        }
        uv_timer_start(&call->timer, on_timer, 0, 0);
        break;
    default:
        break;
    }
}
