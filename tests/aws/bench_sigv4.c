/*
 * bench_sigv4.c - the CPU cost of signing one DynamoDB request.
 *
 * Signs a typical TransactWriteItems call (POST /, host, content-type,
 * x-amz-date, x-amz-target, a session token as on ECS, a ~1 KB JSON body)
 * 100k times with a warm key cache and a reused result, as the AWS call
 * layer does, and prints microseconds per signature (CPU time of the
 * process, and wall time), in three rounds. For comparison it also prints the cost with no
 * key cache (four more HMACs) and of hashing the body alone.
 *
 *   bench_sigv4 [iterations]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/sigv4.h"
#include "base/clock.h"

static double now_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void make_body(char *body, size_t cap)
{
    size_t n = (size_t)snprintf(body, cap,
                                "{\"TransactItems\":[{\"Put\":{\"TableName\":\"eddy\",\"Item\":{"
                                "\"_pk\":{\"S\":\"slotmachine/machine-0042\"},"
                                "\"_sk\":{\"S\":\"STATE\"},\"_seq\":{\"N\":\"17\"},"
                                "\"_typ\":{\"S\":\"slotmachine\"},\"_ts\":{\"N\":\"1440938160\"},"
                                "\"balance\":{\"N\":\"120\"},\"history\":{\"S\":\"");
    for (; n < cap - 64; n++)
        body[n] = (char)('a' + n % 26);
    snprintf(body + n, cap - n, "\"}},\"ConditionExpression\":\"_seq = :prev\"}}]}");
}

struct bench {
    struct eddy_sigv4_header h[5];
    struct eddy_sigv4_request req;
    struct eddy_sigv4_params params;
    struct eddy_sigv4_credentials creds;
    char amz[17];
    char body[1024];
};

static void bench_init(struct bench *b)
{
    memset(b, 0, sizeof *b);
    b->params = (struct eddy_sigv4_params){"us-east-1", "dynamodb", 1440938160, true, false};
    eddy_time_amz(b->params.unix_s, b->amz);
    make_body(b->body, sizeof b->body);
    b->creds =
        (struct eddy_sigv4_credentials){"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                        "FQoGZXIvYXdzEBYaDEXAMPLESESSIONTOKEN"};
    b->h[0] = (struct eddy_sigv4_header){EDDY_STR_LIT("Host"),
                                         EDDY_STR_LIT("dynamodb.us-east-1.amazonaws.com")};
    b->h[1] = (struct eddy_sigv4_header){EDDY_STR_LIT("Content-Type"),
                                         EDDY_STR_LIT("application/x-amz-json-1.0")};
    b->h[2] = (struct eddy_sigv4_header){EDDY_STR_LIT("X-Amz-Date"), eddy_str_c(b->amz)};
    b->h[3] = (struct eddy_sigv4_header){EDDY_STR_LIT("X-Amz-Target"),
                                         EDDY_STR_LIT("DynamoDB_20120810.TransactWriteItems")};
    b->h[4] = (struct eddy_sigv4_header){EDDY_STR_LIT("X-Amz-Security-Token"),
                                         eddy_str_c(b->creds.session_token)};
    b->req = (struct eddy_sigv4_request){
        .method = EDDY_STR_LIT("POST"),
        .path = EDDY_STR_LIT("/"),
        .headers = b->h,
        .nheaders = 5,
        .payload = b->body,
        .payload_len = strlen(b->body),
    };
}

/* Sign n times; returns CPU µs per signature, *wall_us the wall time. */
static double run(struct bench *b, long n, struct eddy_sigv4_key_cache *cache, double *wall_us)
{
    struct eddy_sigv4_result r;
    eddy_sigv4_result_init(&r);
    struct eddy_error err;
    double c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    double w0 = now_s(CLOCK_MONOTONIC);
    for (long i = 0; i < n; i++) {
        if (eddy_sigv4_sign(&b->params, &b->creds, &b->req, cache, false, &r, &err) != EDDY_OK) {
            fprintf(stderr, "sign failed: %s\n", err.detail);
            exit(1);
        }
    }
    double cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    *wall_us = (now_s(CLOCK_MONOTONIC) - w0) * 1e6 / (double)n;
    eddy_sigv4_result_cleanup(&r);
    return cpu * 1e6 / (double)n;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
    if (n <= 0)
        n = 100000;
    struct bench b;
    bench_init(&b);
    struct eddy_sigv4_key_cache cache = {0};
    double wall;

    run(&b, n / 10 + 1, &cache, &wall); /* warm up caches and the key */
    /* Three rounds: on a shared machine the best one is the cost, the
     * spread shows the noise. */
    for (int round = 1; round <= 3; round++) {
        double warm = run(&b, n, &cache, &wall);
        printf("sigv4 sign, warm key cache, %zu-byte body: %.3f us/signature CPU "
               "(%.3f us wall), %ld signatures, round %d\n",
               b.req.payload_len, warm, wall, n, round);
    }
    double cold = run(&b, n / 10 + 1, NULL, &wall);
    printf("sigv4 sign, no key cache:                  %.3f us/signature CPU\n", cold);

    char hex[65];
    double c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    for (long i = 0; i < n; i++)
        eddy_sha256_hex(b.body, b.req.payload_len, hex);
    printf("sha256 of the body alone:                  %.3f us CPU\n",
           (now_s(CLOCK_PROCESS_CPUTIME_ID) - c0) * 1e6 / (double)n);
    eddy_sigv4_key_cache_cleanup(&cache);
    return 0;
}
