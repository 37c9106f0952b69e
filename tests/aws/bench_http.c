/*
 * bench_http.c - cost of one keep-alive HTTP request through aws/http.
 *
 * Sends N sequential POSTs (1 KB body, headers shaped like a signed AWS JSON
 * call) and prints requests per second and CPU microseconds per request.
 *
 *     bench_http [N] [URL [CA_FILE]] [--new-client]
 *     bench_http --serve [--tls] [--close]
 *
 * Without URL, the loopback test server runs on the same loop in the same
 * process, so the CPU figure is client + server. With URL (any HTTP/1.1
 * keep-alive server in another process, on loopback), the figure is the
 * client's alone; CA_FILE is the CA bundle to trust for an https URL.
 * --serve runs only that server, with the same answers: it prints its URL
 * (and with --tls, on a second line, the certificate to trust) and serves
 * until it is killed, so that `bench_http N URL` in another process
 * measures the client alone. --close makes the server close every
 * connection after its answer, so each request pays a new connection (over
 * TLS, a resumed handshake); --new-client makes a new client for every
 * request, so each pays a full handshake and reads the CA bundle.
 * Not a test: it asserts only that every request got 200.
 */
#include <stdbool.h>
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
    const char *ca_file;
    bool new_client; /* a new client for every request */
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

static bool close_each; /* --serve --close */

static void handler(const struct eddy_testserver_request *req, struct eddy_testserver_reply *reply,
                    void *ud)
{
    (void)req;
    (void)ud;
    reply->close_after = close_each;
    reply->headers = "Content-Type: application/x-amz-json-1.0\r\n"
                     "x-amzn-RequestId: 00000000-0000-0000-0000-000000000000\r\n";
    reply->body = "{\"Item\":{\"_pk\":{\"S\":\"slot/1\"},\"_seq\":{\"N\":\"7\"}}}";
}

static void send_next(struct bench *b);

static void client_new(struct bench *b)
{
    struct eddy_error err = {0};
    struct eddy_http_config cfg = {.ca_bundle = b->ca_file};
    b->http = eddy_http_new(&b->loop, &cfg, &err);
    if (!b->http) {
        fprintf(stderr, "bench_http: %s\n", eddy_error_text(&err));
        exit(1);
    }
    b->t = eddy_http_transport(b->http);
}

static void on_done(eddy_err err, const struct eddy_http_response *resp, void *ud)
{
    struct bench *b = ud;
    if (err != EDDY_OK || resp->status != 200)
        b->failed++;
    if (b->new_client) {
        eddy_http_close(b->http, NULL, NULL);
        client_new(b);
    }
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
static int serve(bool tls)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct eddy_testserver *s = tls ? eddy_testserver_start_tls(&loop, handler, NULL)
                                    : eddy_testserver_start(&loop, handler, NULL);
    printf("%s/\n", eddy_testserver_url(s));
    if (tls)
        printf("%s\n", eddy_testserver_ca_file(s));
    fflush(stdout);
    uv_run(&loop, UV_RUN_DEFAULT); /* until killed */
    return 0;
}

int main(int argc, char **argv)
{
    static struct bench b;
    const char *pos[3] = {0};
    int npos = 0;
    bool serving = false, tls = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--serve") == 0)
            serving = true;
        else if (strcmp(argv[i], "--tls") == 0)
            tls = true;
        else if (strcmp(argv[i], "--close") == 0)
            close_each = true;
        else if (strcmp(argv[i], "--new-client") == 0)
            b.new_client = true;
        else if (npos < 3)
            pos[npos++] = argv[i];
    }
    if (serving)
        return serve(tls);
    long n = pos[0] ? strtol(pos[0], NULL, 10) : 10000;
    if (n <= 0)
        n = 10000;
    uv_loop_init(&b.loop);
    memset(b.body, 'a', sizeof b.body);
    if (pos[1]) {
        snprintf(b.url, sizeof b.url, "%s", pos[1]);
        b.ca_file = pos[2];
    } else {
        b.server = eddy_testserver_start(&b.loop, handler, NULL);
        snprintf(b.url, sizeof b.url, "%s/", eddy_testserver_url(b.server));
    }
    client_new(&b);
    run(&b, 200); /* warm up: connection, handles, buffers */
    double c0 = cpu_us();
    uint64_t t0 = uv_hrtime();
    run(&b, n);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    double cpu = cpu_us() - c0;
    printf("bench_http: %ld sequential POSTs (1 KB body%s) to %s\n", n,
           b.new_client ? ", a new client each" : "",
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
