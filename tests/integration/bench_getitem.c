/*
 * bench_getitem.c - the request rate of a keep-alive GetItem loop against
 * the local AWS's DynamoDB, through the whole client: credentials, SigV4,
 * the JSON protocol, curl multi on libuv, and the typed result.
 *
 *     bench_getitem [N]      (environment as for the integration tests)
 *
 * Runs N (default 2000) sequential GetItems, then N with 16 in flight, and
 * prints requests per second and the client's CPU microseconds per request
 * (getrusage of this process: the server is another process, so the CPU
 * figure is eddy's alone), and per run the connections the client opened
 * and the uv_poll_t handles it created (eddy_http_stats): the local AWS
 * keeps connections alive, so both stay at the number of connections in
 * flight, not the number of requests. The rate is bounded by moto, which
 * serves one DynamoDB request at a time in Python. Not a test: it checks
 * only that every call returned the item.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>

#include "aws/awscall.h"
#include "aws/credentials.h"
#include "aws/http.h"
#include "base/clock.h"
#include "svc/dynamodb.h"

struct bench {
    uv_loop_t loop;
    struct eddy_http *http;
    struct eddy_creds *creds;
    struct eddy_aws aws;
    struct eddy_ddb ddb;
    char table[64];
    cJSON *key;
    long target, issued, done, failed;
    eddy_err setup_err;
    int setup_done;
};

static void die(const char *what, const struct eddy_error *err)
{
    fprintf(stderr, "bench_getitem: %s: %s\n", what, err ? eddy_error_text(err) : "failed");
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void on_setup(eddy_err err, const struct eddy_aws_reply *reply, void *ud)
{
    struct bench *b = ud;
    b->setup_err = err;
    b->setup_done = 1;
    if (err)
        fprintf(stderr, "bench_getitem: %s\n", eddy_error_text(reply->error));
}

/* One raw setup call (CreateTable, PutItem, DeleteTable), waited for. */
static void setup_call(struct bench *b, const char *op, const char *body)
{
    struct eddy_buf buf;
    eddy_buf_init(&buf, 0);
    eddy_buf_puts(&buf, body);
    struct eddy_error err = {0};
    b->setup_done = 0;
    if (eddy_aws_call(&b->ddb.client, op, &buf, NULL, on_setup, b, NULL, &err) != EDDY_OK)
        die(op, &err);
    while (!b->setup_done)
        uv_run(&b->loop, UV_RUN_ONCE);
    if (b->setup_err)
        die(op, NULL);
}

static void open_plumbing(struct bench *b)
{
    struct eddy_error err = {0};
    uv_loop_init(&b->loop);
    struct eddy_http_config hc = {0};
    hc.ca_bundle = getenv("AWS_CA_BUNDLE");
    if (hc.ca_bundle && *hc.ca_bundle == '\0')
        hc.ca_bundle = NULL;
    if ((b->http = eddy_http_new(&b->loop, &hc, &err)) == NULL)
        die("http", &err);
    b->creds = eddy_creds_new(&b->loop, eddy_http_transport(b->http), eddy_clock_system());
    struct eddy_aws_config ac = {
        .loop = &b->loop, .transport = eddy_http_transport(b->http), .creds = b->creds};
    if (eddy_aws_init(&b->aws, &ac, &err) != EDDY_OK)
        die("aws", &err);
    if (eddy_ddb_init(&b->ddb, &b->aws, NULL, &err) != EDDY_OK)
        die("dynamodb", &err);
}

static void close_plumbing(struct bench *b)
{
    eddy_ddb_cleanup(&b->ddb);
    eddy_aws_cleanup(&b->aws);
    eddy_creds_close(b->creds, NULL, NULL);
    eddy_http_close(b->http, NULL, NULL);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&b->loop) != 0)
        fprintf(stderr, "bench_getitem: loop did not close cleanly\n");
}

static void create_table(struct bench *b)
{
    unsigned char rnd[6];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        die("getrandom", NULL);
    snprintf(b->table, sizeof b->table, "bench-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
             rnd[3], rnd[4], rnd[5]);
    char body[1024];
    snprintf(body, sizeof body,
             "{\"TableName\":\"%s\",\"BillingMode\":\"PAY_PER_REQUEST\","
             "\"AttributeDefinitions\":[{\"AttributeName\":\"_pk\",\"AttributeType\":\"S\"},"
             "{\"AttributeName\":\"_sk\",\"AttributeType\":\"S\"}],"
             "\"KeySchema\":[{\"AttributeName\":\"_pk\",\"KeyType\":\"HASH\"},"
             "{\"AttributeName\":\"_sk\",\"KeyType\":\"RANGE\"}]}",
             b->table);
    setup_call(b, "CreateTable", body);
    snprintf(body, sizeof body,
             "{\"TableName\":\"%s\",\"Item\":{\"_pk\":{\"S\":\"slot/1\"},\"_sk\":{\"S\":\"state\"},"
             "\"_seq\":{\"N\":\"7\"},\"state\":{\"S\":\"{\\\"credits\\\":100}\"}}}",
             b->table);
    setup_call(b, "PutItem", body);
    b->key = cJSON_Parse("{\"_pk\":{\"S\":\"slot/1\"},\"_sk\":{\"S\":\"state\"}}");
}

static void send_next(struct bench *b);

static void on_item(eddy_err err, struct eddy_ddb_item_result *res,
                    const struct eddy_aws_reply *reply, void *ud)
{
    (void)reply;
    struct bench *b = ud;
    if (err != EDDY_OK || res->item == NULL)
        b->failed++;
    eddy_ddb_item_result_cleanup(res);
    b->done++;
    if (b->issued < b->target)
        send_next(b);
}

static void send_next(struct bench *b)
{
    struct eddy_error err = {0};
    b->issued++;
    if (eddy_ddb_get_item(&b->ddb, b->table, b->key, true, on_item, b, NULL, &err) != EDDY_OK)
        die("GetItem", &err);
}

/* n GetItems, inflight at a time; prints one line unless label is NULL. */
static void run(struct bench *b, const char *label, long n, long inflight)
{
    b->target = n;
    b->issued = b->done = b->failed = 0;
    struct eddy_http_stats s0, s1;
    eddy_http_stats(b->http, &s0);
    double t0 = now_s(), c0 = cpu_us();
    for (long i = 0; i < inflight && b->issued < n; i++)
        send_next(b);
    while (b->done < n)
        uv_run(&b->loop, UV_RUN_ONCE);
    double secs = now_s() - t0, cpu = cpu_us() - c0;
    eddy_http_stats(b->http, &s1);
    if (b->failed)
        fprintf(stderr, "bench_getitem: %ld of %ld GetItems failed\n", b->failed, n);
    if (label)
        printf("%-22s %6ld requests %7.0f requests/s %6.1f us client CPU/request "
               "%3llu connects %3llu poll handles\n",
               label, n, (double)n / secs, cpu / (double)n,
               (unsigned long long)(s1.sockets_opened - s0.sockets_opened),
               (unsigned long long)(s1.polls_created - s0.polls_created));
}

int main(int argc, char **argv)
{
    static struct bench b;
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 2000;
    if (n <= 0)
        n = 2000;
    open_plumbing(&b);
    create_table(&b);
    run(&b, NULL, 100, 1); /* warm up: connection, credentials, key cache */
    run(&b, "GetItem sequential", n, 1);
    run(&b, "GetItem 16 in flight", n, 16);
    char body[256];
    snprintf(body, sizeof body, "{\"TableName\":\"%s\"}", b.table);
    setup_call(&b, "DeleteTable", body);
    cJSON_Delete(b.key);
    close_plumbing(&b);
    return b.failed ? 1 : 0;
}
