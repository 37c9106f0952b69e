/*
 * bench_http.c - cost of one keep-alive HTTP request through aws/http.
 *
 * Sends N sequential POSTs (1 KB body, headers shaped like a signed AWS JSON
 * call) and prints requests per second and CPU microseconds per request.
 *
 *     bench_http [N] [URL]
 *     bench_http --serve
 *
 * Without URL, the loopback test server runs on the same loop in the same
 * process, so the CPU figure is client + server. With URL (any HTTP/1.1
 * keep-alive server in another process, on loopback), the figure is the
 * client's alone. --serve runs only that server, with the same answers:
 * it prints its URL and serves until it is killed, so that
 * `bench_http N URL` in another process measures the client alone.
 * Not a test: it asserts only that every request got 200.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "aws/http.h"
#include "testserver.h"

struct bench {
    uv_loop_t loop;
    struct eddy_testserver *server;
    struct eddy_http *http;
    struct eddy_transport t;
    char url[256];
    char body[1024];
    long target;
    long done;
    long failed;
};

static const char *const headers[] = {
    "Content-Type: application/x-amz-json-1.0",
    "X-Amz-Target: DynamoDB_20120810.GetItem",
    "X-Amz-Date: 20240101T000000Z",
    "X-Amz-Content-Sha256: 0000000000000000000000000000000000000000000000000000000000000000",
    "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/dynamodb/"
    "aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
    "Signature=0000000000000000000000000000000000000000000000000000000000000000",
};

static void handler(const struct eddy_testserver_request *req, struct eddy_testserver_reply *reply,
                    void *ud)
{
    (void)req;
    (void)ud;
    reply->headers = "Content-Type: application/x-amz-json-1.0\r\n"
                     "x-amzn-RequestId: 00000000-0000-0000-0000-000000000000\r\n";
    reply->body = "{\"Item\":{\"_pk\":{\"S\":\"slot/1\"},\"_seq\":{\"N\":\"7\"}}}";
}

static void send_next(struct bench *b);

static void on_done(eddy_err err, const struct eddy_http_response *resp, void *ud)
{
    struct bench *b = ud;
    if (err != EDDY_OK || resp->status != 200)
        b->failed++;
    if (++b->done < b->target)
        send_next(b);
    else
        uv_stop(&b->loop);
}

static void send_next(struct bench *b)
{
    struct eddy_http_request req = {
        .method = "POST",
        .url = b->url,
        .headers = headers,
        .nheaders = sizeof headers / sizeof headers[0],
        .body = b->body,
        .body_len = sizeof b->body,
    };
    if (eddy_transport_send(&b->t, &req, on_done, b, NULL) != EDDY_OK) {
        fprintf(stderr, "bench_http: send failed\n");
        exit(1);
    }
}

static double cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void run(struct bench *b, long n)
{
    b->target = n;
    b->done = 0;
    send_next(b);
    uv_run(&b->loop, UV_RUN_DEFAULT); /* until on_done calls uv_stop */
}

/* The server half alone, for a client in another process. */
static int serve(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct eddy_testserver *s = eddy_testserver_start(&loop, handler, NULL);
    printf("%s/\n", eddy_testserver_url(s));
    fflush(stdout);
    uv_run(&loop, UV_RUN_DEFAULT); /* until killed */
    return 0;
}

int main(int argc, char **argv)
{
    static struct bench b;
    if (argc > 1 && strcmp(argv[1], "--serve") == 0)
        return serve();
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 10000;
    if (n <= 0)
        n = 10000;
    uv_loop_init(&b.loop);
    memset(b.body, 'a', sizeof b.body);
    if (argc > 2) {
        snprintf(b.url, sizeof b.url, "%s", argv[2]);
    } else {
        b.server = eddy_testserver_start(&b.loop, handler, NULL);
        snprintf(b.url, sizeof b.url, "%s/", eddy_testserver_url(b.server));
    }
    struct eddy_error err = {0};
    b.http = eddy_http_new(&b.loop, NULL, &err);
    if (!b.http) {
        fprintf(stderr, "bench_http: %s\n", eddy_error_text(&err));
        return 1;
    }
    b.t = eddy_http_transport(b.http);
    run(&b, 200); /* warm up: connection, handles, buffers */
    double c0 = cpu_us();
    uint64_t t0 = uv_hrtime();
    run(&b, n);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    double cpu = cpu_us() - c0;
    printf("bench_http: %ld sequential keep-alive POSTs (1 KB body) to %s\n", n,
           b.server ? "the in-process test server" : b.url);
    printf("  %.0f requests/s, %.1f us wall per request\n", (double)n / secs,
           secs * 1e6 / (double)n);
    printf("  %.1f us CPU per request (%s)\n", cpu / (double)n,
           b.server ? "client + server: same process" : "client only");
    if (b.server)
        printf("  connections accepted: %u\n", eddy_testserver_connections(b.server));
    printf("  failed: %ld\n", b.failed);
    eddy_http_close(b.http, NULL, NULL);
    if (b.server)
        eddy_testserver_close(b.server, NULL, NULL);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&b.loop);
    return b.failed || rc ? 1 : 0;
}
