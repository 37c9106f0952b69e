/*
 * itest_support.c - the shared rig of eddy's C integration tests (see
 * itest_support.h). It wires the pieces exactly as src/cli/runtime.c does,
 * so the tests exercise the production path: environment, credential chain,
 * endpoint resolution, the curl-on-libuv client.
 */
#include "itest_support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <cmocka.h>

#include "base/buf.h"
#include "aws/endpoint.h"
#include "aws/sigv4.h"
#include "base/clock.h"

void itest_rig_open(struct itest_rig *r, unsigned max_attempts)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(uv_loop_init(&r->loop), 0);
    struct eddy_error err = {0};
    struct eddy_http_config hc = {0};
    hc.ca_bundle = getenv("AWS_CA_BUNDLE");
    if (hc.ca_bundle && *hc.ca_bundle == '\0')
        hc.ca_bundle = NULL;
    r->http = eddy_http_new(&r->loop, &hc, &err);
    if (r->http == NULL)
        fail_msg("eddy_http_new: %s", eddy_error_text(&err));
    r->creds = eddy_creds_new(&r->loop, eddy_http_transport(r->http), eddy_clock_system());
    assert_non_null(r->creds);
    struct eddy_aws_config ac = {0};
    ac.loop = &r->loop;
    ac.transport = eddy_http_transport(r->http);
    ac.creds = r->creds;
    ac.max_attempts = max_attempts;
    if (eddy_aws_init(&r->aws, &ac, &err) != EDDY_OK)
        fail_msg("eddy_aws_init: %s", eddy_error_text(&err));
    if (eddy_sqs_init(&r->sqs, &r->aws, NULL, &err) != EDDY_OK ||
        eddy_ddb_init(&r->ddb, &r->aws, NULL, &err) != EDDY_OK ||
        eddy_eb_init(&r->eb, &r->aws, NULL, &err) != EDDY_OK)
        fail_msg("service client: %s", eddy_error_text(&err));
}

void itest_rig_close(struct itest_rig *r)
{
    eddy_eb_cleanup(&r->eb);
    eddy_ddb_cleanup(&r->ddb);
    eddy_sqs_cleanup(&r->sqs);
    eddy_aws_cleanup(&r->aws);
    eddy_creds_close(r->creds, NULL, NULL);
    eddy_http_close(r->http, NULL, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&r->loop), 0);
}

void itest_done(struct itest_wait *w, eddy_err err, const struct eddy_aws_reply *reply)
{
    w->calls++;
    w->err = err;
    if (reply == NULL)
        return;
    w->status = reply->status;
    w->attempts = reply->attempts;
    snprintf(w->code, sizeof w->code, "%s", reply->error_code ? reply->error_code : "");
    snprintf(w->message, sizeof w->message, "%s", reply->error_message);
    snprintf(w->detail, sizeof w->detail, "%s", reply->error ? eddy_error_text(reply->error) : "");
}

double itest_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void itest_run(struct itest_rig *r, struct itest_wait *w, double timeout_s)
{
    double deadline = itest_now() + timeout_s;
    /* every request carries curl's timeouts, so a turn of the loop ends */
    while (w->calls == 0 && itest_now() < deadline)
        uv_run(&r->loop, UV_RUN_ONCE);
    if (w->calls != 1)
        fail_msg("callback ran %d times (want 1) within %.0f s", w->calls, timeout_s);
}

struct raw_call {
    struct itest_wait *w;
    cJSON *json;
};

static void on_raw(eddy_err err, const struct eddy_aws_reply *reply, void *ud)
{
    struct raw_call *rc = ud;
    itest_done(rc->w, err, reply);
    if (reply->json)
        rc->json = cJSON_Duplicate(reply->json, true);
}

eddy_err itest_call(struct itest_rig *r, struct eddy_aws_client *c, const char *op,
                    const char *body, cJSON **out, struct itest_wait *w)
{
    struct itest_wait local = {0};
    struct raw_call rc = {w ? w : &local, NULL};
    memset(rc.w, 0, sizeof *rc.w);
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    assert_int_equal(eddy_buf_appends(&b, body), EDDY_OK);
    struct eddy_error err = {0};
    eddy_err e = eddy_aws_call(c, op, &b, NULL, on_raw, &rc, NULL, &err);
    eddy_buf_cleanup(&b);
    if (e != EDDY_OK)
        fail_msg("%s: start failed: %s", op, eddy_error_text(&err));
    itest_run(r, rc.w, 60);
    if (out)
        *out = rc.json;
    else
        cJSON_Delete(rc.json);
    return rc.w->err;
}

void itest_unique_name(const char *prefix, char *out, size_t size)
{
    unsigned char rnd[8];
    assert_int_equal(getrandom(rnd, sizeof rnd, 0), (ssize_t)sizeof rnd);
    int n = snprintf(out, size, "%s-", prefix);
    assert_true(n > 0 && (size_t)n + 17 <= size);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(out + n + 2 * i, 3, "%02x", rnd[i]);
}

/* Fail the test with what the service said. */
static void must(eddy_err e, const char *what, const struct itest_wait *w)
{
    if (e != EDDY_OK)
        fail_msg("%s: %s (%s: %s; %s)", what, eddy_err_name(e), w->code, w->message, w->detail);
}

void itest_create_table(struct itest_rig *r, const char *name)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"TableName\":\"%s\",\"BillingMode\":\"PAY_PER_REQUEST\","
             "\"AttributeDefinitions\":[{\"AttributeName\":\"_pk\",\"AttributeType\":\"S\"},"
             "{\"AttributeName\":\"_sk\",\"AttributeType\":\"S\"}],"
             "\"KeySchema\":[{\"AttributeName\":\"_pk\",\"KeyType\":\"HASH\"},"
             "{\"AttributeName\":\"_sk\",\"KeyType\":\"RANGE\"}]}",
             name);
    struct itest_wait w;
    must(itest_call(r, &r->ddb.client, "CreateTable", body, NULL, &w), "CreateTable", &w);
}

void itest_delete_table(struct itest_rig *r, const char *name)
{
    char body[256];
    snprintf(body, sizeof body, "{\"TableName\":\"%s\"}", name);
    struct itest_wait w;
    must(itest_call(r, &r->ddb.client, "DeleteTable", body, NULL, &w), "DeleteTable", &w);
}

void itest_create_queue(struct itest_rig *r, const char *name, char **url, char **arn)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"QueueName\":\"%s\",\"Attributes\":{\"VisibilityTimeout\":\"30\"}}", name);
    struct itest_wait w;
    cJSON *reply = NULL;
    must(itest_call(r, &r->sqs.client, "CreateQueue", body, &reply, &w), "CreateQueue", &w);
    const char *u = itest_jstr(reply, "QueueUrl", (const char *)NULL);
    assert_non_null(u);
    *url = strdup(u);
    cJSON_Delete(reply);
    snprintf(body, sizeof body, "{\"QueueUrl\":\"%s\",\"AttributeNames\":[\"QueueArn\"]}", *url);
    must(itest_call(r, &r->sqs.client, "GetQueueAttributes", body, &reply, &w),
         "GetQueueAttributes", &w);
    const char *a = itest_jstr(reply, "Attributes", "QueueArn", (const char *)NULL);
    assert_non_null(a);
    *arn = strdup(a);
    cJSON_Delete(reply);
}

void itest_delete_queue(struct itest_rig *r, const char *url)
{
    char body[512];
    snprintf(body, sizeof body, "{\"QueueUrl\":\"%s\"}", url);
    struct itest_wait w;
    must(itest_call(r, &r->sqs.client, "DeleteQueue", body, NULL, &w), "DeleteQueue", &w);
}

cJSON *itest_json(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (j == NULL)
        fail_msg("bad JSON in the test: %s", text);
    return j;
}

const char *itest_jstr(const cJSON *obj, ...)
{
    va_list ap;
    va_start(ap, obj);
    const char *key;
    while (obj && (key = va_arg(ap, const char *)) != NULL)
        obj = cJSON_GetObjectItemCaseSensitive(obj, key);
    va_end(ap);
    return cJSON_IsString(obj) ? obj->valuestring : NULL;
}

/* ---- the query protocol, for IAM and STS setup calls ---- */

static void form_append(struct eddy_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            eddy_buf_putc(b, (char)c);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            eddy_buf_put(b, esc, 3);
        }
    }
}

struct query_call {
    struct itest_wait w;
    char *body;
};

static void on_query_http(eddy_err err, const struct eddy_http_response *resp, void *ud)
{
    struct query_call *q = ud;
    itest_done(&q->w, err, NULL);
    if (resp) {
        q->w.status = resp->status;
        q->body = strndup(resp->body.ptr ? resp->body.ptr : "", resp->body.len);
    }
}

/* Sign the form for service; fills the four header lines. */
static void query_sign(const struct eddy_endpoint *ep, const char *service, struct eddy_buf *form,
                       char lines[4][1024])
{
    struct eddy_sigv4_result sig;
    eddy_sigv4_result_init(&sig);
    int64_t now = (int64_t)time(NULL);
    char amz[17];
    eddy_time_amz(now, amz);
    const char *ctype = "application/x-www-form-urlencoded; charset=utf-8";
    struct eddy_sigv4_header h[3] = {{eddy_str_c("Host"), eddy_str_c(ep->host)},
                                     {eddy_str_c("Content-Type"), eddy_str_c(ctype)},
                                     {eddy_str_c("X-Amz-Date"), eddy_str_c(amz)}};
    struct eddy_sigv4_request req = {
        eddy_str_c("POST"), eddy_str_c(ep->path), eddy_str_c(""), h, 3, form->ptr, form->len, NULL};
    struct eddy_sigv4_credentials cr = {getenv("AWS_ACCESS_KEY_ID"),
                                        getenv("AWS_SECRET_ACCESS_KEY"), NULL};
    struct eddy_sigv4_params sp = {"us-east-1", service, now, true, false};
    struct eddy_error err = {0};
    if (eddy_sigv4_sign(&sp, &cr, &req, NULL, false, &sig, &err) != EDDY_OK)
        fail_msg("sign %s: %s", service, eddy_error_text(&err));
    snprintf(lines[0], 1024, "Host: %s", ep->host);
    snprintf(lines[1], 1024, "Content-Type: %s", ctype);
    snprintf(lines[2], 1024, "X-Amz-Date: %s", amz);
    snprintf(lines[3], 1024, "Authorization: %s", sig.authorization.ptr);
    eddy_sigv4_result_cleanup(&sig);
}

long itest_query(struct itest_rig *r, const char *service, char **xml, ...)
{
    struct eddy_endpoint ep;
    struct eddy_error err = {0};
    if (eddy_endpoint_parse(getenv("AWS_ENDPOINT_URL"), "AWS_ENDPOINT_URL", &ep, &err))
        fail_msg("%s", eddy_error_text(&err));
    struct eddy_buf form;
    eddy_buf_init(&form, 0);
    va_list ap;
    va_start(ap, xml);
    const char *name;
    while ((name = va_arg(ap, const char *)) != NULL) {
        if (form.len)
            eddy_buf_putc(&form, '&');
        eddy_buf_puts(&form, name);
        eddy_buf_putc(&form, '=');
        form_append(&form, va_arg(ap, const char *));
    }
    va_end(ap);
    char lines[4][1024];
    query_sign(&ep, service, &form, lines);
    const char *const headers[4] = {lines[0], lines[1], lines[2], lines[3]};
    struct eddy_http_request req = {"POST", ep.url, headers, 4, form.ptr, form.len, 30000, 0};
    struct query_call q = {0};
    struct eddy_transport t = eddy_http_transport(r->http);
    assert_int_equal(eddy_transport_send(&t, &req, on_query_http, &q, NULL), EDDY_OK);
    itest_run(r, &q.w, 60);
    eddy_buf_cleanup(&form);
    eddy_endpoint_cleanup(&ep);
    *xml = q.body;
    return q.w.status;
}

char *itest_xml_text(const char *xml, const char *tag)
{
    char open[128], close[128];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = strstr(xml, open);
    if (a == NULL)
        return NULL;
    a += strlen(open);
    const char *b = strstr(a, close);
    return b ? strndup(a, (size_t)(b - a)) : NULL;
}
