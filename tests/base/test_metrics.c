/* Unit tests for worker/metrics: histogram precision and the EMF line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "base/alloc.h"
#include "eddy/rng.h"
#include "base/metrics.h"

/* Emit into memory and parse the line back. */
static cJSON *emit_json(struct eddy_metrics *m, int64_t unix_ms, const char *ns, char **line)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(eddy_metrics_emit(m, f, unix_ms, ns), EDDY_OK);
    fclose(f);
    if (line != NULL)
        *line = text;
    if (len == 0) {
        free(text);
        if (line != NULL)
            *line = NULL;
        return NULL;
    }
    assert_int_equal(text[len - 1], '\n');
    assert_null(memchr(text, '\n', len - 1)); /* exactly one line */
    cJSON *j = cJSON_ParseWithLength(text, len);
    assert_non_null(j);
    if (line == NULL)
        free(text);
    return j;
}

static double num(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Quantiles of random samples over many magnitudes stay within 2%. */
static void test_hist_precision(void **state)
{
    (void)state;
    struct eddy_hist *h = eddy_calloc(1, sizeof *h);
    enum { N = 20000 };
    uint64_t *v = eddy_malloc(N * sizeof *v);
    struct eddy_rng rng;
    eddy_rng_seed(&rng, 42);
    for (size_t i = 0; i < N; i++) {
        /* log-uniform from 1 us to about 17 minutes */
        v[i] = (uint64_t)1 << eddy_rng_below(&rng, 30);
        v[i] += eddy_rng_below(&rng, v[i]);
        eddy_hist_record(h, v[i]);
    }
    qsort(v, N, sizeof *v, cmp_u64);
    const double qs[] = {0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0};
    for (size_t k = 0; k < EDDY_ARRAY_SIZE(qs); k++) {
        size_t rank = (size_t)(qs[k] * N + 0.999999);
        double exact = (double)v[rank - 1];
        double got = eddy_hist_quantile(h, qs[k]);
        assert_true(got >= exact * 0.98 && got <= exact * 1.02);
    }
    assert_int_equal(h->count, N);
    assert_int_equal(h->max_us, v[N - 1]);
    /* Small values are exact; an empty histogram says 0. */
    eddy_hist_reset(h);
    assert_true(eddy_hist_quantile(h, 0.5) == 0);
    for (uint64_t i = 1; i <= 31; i++)
        eddy_hist_record(h, i);
    assert_true(eddy_hist_quantile(h, 0.5) == 16);
    assert_true(eddy_hist_quantile(h, 1.0) == 31);
    /* Huge samples are clamped, never out of the array. */
    eddy_hist_record(h, UINT64_MAX);
    assert_true(eddy_hist_quantile(h, 1.0) >= (double)((uint64_t)1 << 39));
    free(v);
    free(h);
}

/* A quantile read from bins, as from a fleet's merged distribution: the
 * first bin whose running count reaches ceil(q * total). */
static double bins_quantile(const double *values, const uint64_t *counts, size_t n, double q)
{
    uint64_t total = 0, seen = 0;
    for (size_t k = 0; k < n; k++)
        total += counts[k];
    uint64_t rank = (uint64_t)(q * (double)total + 0.999999);
    for (size_t k = 0; k < n; k++) {
        seen += counts[k];
        if (seen >= rank)
            return values[k];
    }
    return values[n - 1];
}

/* Record n log-uniform samples from 2^lo to 2^hi us; sorted into v. */
static void record_spread(struct eddy_hist *h, uint64_t *v, size_t n, unsigned lo, unsigned hi)
{
    struct eddy_rng rng;
    eddy_rng_seed(&rng, 7);
    eddy_hist_reset(h);
    for (size_t i = 0; i < n; i++) {
        v[i] = (uint64_t)1 << (lo + eddy_rng_below(&rng, hi - lo));
        v[i] += eddy_rng_below(&rng, v[i]);
        eddy_hist_record(h, v[i]);
    }
    qsort(v, n, sizeof *v, cmp_u64);
}

/* The bins fit the limit, ascend, keep every sample, and say the quantiles
 * within half a bin: 32 buckets to a power of two (2%), 4, 8 or 32 of them
 * merged (7%, 13%, 50%). */
static void check_bins(const struct eddy_hist *h, const uint64_t *v, size_t n, size_t max,
                       double tolerance)
{
    double values[EDDY_HIST_EMF_BINS];
    uint64_t counts[EDDY_HIST_EMF_BINS], total = 0;
    size_t bins = eddy_hist_bins(h, max, values, counts);
    assert_true(bins > 0 && bins <= max);
    for (size_t k = 0; k < bins; k++) {
        assert_true(k == 0 || values[k] > values[k - 1]);
        assert_true(counts[k] > 0);
        total += counts[k];
    }
    assert_int_equal(total, n);
    assert_true(values[bins - 1] <= (double)h->max_us);
    const double qs[] = {0.01, 0.5, 0.9, 0.99};
    for (size_t k = 0; k < EDDY_ARRAY_SIZE(qs); k++) {
        double exact = (double)v[(size_t)(qs[k] * (double)n + 0.999999) - 1];
        double got = bins_quantile(values, counts, bins, qs[k]);
        assert_true(got >= exact * (1 - tolerance) && got <= exact * (1 + tolerance));
    }
}

static void test_hist_bins(void **state)
{
    (void)state;
    struct eddy_hist *h = eddy_calloc(1, sizeof *h);
    enum { N = 20000 };
    uint64_t *v = eddy_malloc(N * sizeof *v);
    double values[EDDY_HIST_EMF_BINS];
    uint64_t counts[EDDY_HIST_EMF_BINS];
    assert_int_equal(eddy_hist_bins(h, EDDY_HIST_EMF_BINS, values, counts), 0);
    /* 100 samples, 1..100 ms: as many buckets at most, none merged */
    for (uint64_t i = 1; i <= 100; i++)
        v[i - 1] = 1000 * i;
    for (size_t i = 0; i < 100; i++)
        eddy_hist_record(h, v[i]);
    check_bins(h, v, 100, EDDY_HIST_EMF_BINS, 0.02);
    /* 1 to 256 ms: 8 powers of two, 256 buckets, merged by 4 into 64 */
    record_spread(h, v, N, 10, 18);
    assert_int_equal(eddy_hist_bins(h, EDDY_HIST_EMF_BINS, values, counts), 64);
    check_bins(h, v, N, EDDY_HIST_EMF_BINS, 0.07);
    /* 32 us to 17 minutes: 25 powers of two, merged by 8 into 100 (about
     * 13%), or by 32 into 25 for a limit of 40 */
    record_spread(h, v, N, 5, 30);
    assert_int_equal(eddy_hist_bins(h, EDDY_HIST_EMF_BINS, values, counts), 100);
    check_bins(h, v, N, EDDY_HIST_EMF_BINS, 0.13);
    assert_int_equal(eddy_hist_bins(h, 40, values, counts), 25);
    check_bins(h, v, N, 40, 0.5);
    free(v);
    free(h);
}

static void test_hist_merge(void **state)
{
    (void)state;
    struct eddy_hist *a = eddy_calloc(1, sizeof *a), *b = eddy_calloc(1, sizeof *b);
    for (uint64_t i = 0; i < 100; i++)
        eddy_hist_record(i < 50 ? a : b, 1000 * (i + 1));
    eddy_hist_merge(a, b);
    assert_int_equal(a->count, 100);
    double p50 = eddy_hist_quantile(a, 0.5);
    assert_true(p50 >= 50000 * 0.98 && p50 <= 50000 * 1.02);
    assert_int_equal(a->max_us, 100000);
    free(a);
    free(b);
}

static void check_directive_service(const cJSON *j, int64_t ts, const char *ns, const char *service,
                                    bool with_latency)
{
    const cJSON *aws = cJSON_GetObjectItemCaseSensitive(j, "_aws");
    assert_true(cJSON_IsObject(aws));
    assert_true(num(aws, "Timestamp") == (double)ts);
    const cJSON *cwm = cJSON_GetObjectItemCaseSensitive(aws, "CloudWatchMetrics");
    assert_true(cJSON_IsArray(cwm));
    assert_int_equal(cJSON_GetArraySize(cwm), 1);
    const cJSON *d = cJSON_GetArrayItem(cwm, 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(d, "Namespace")->valuestring, ns);
    const cJSON *dims = cJSON_GetObjectItemCaseSensitive(d, "Dimensions");
    assert_int_equal(cJSON_GetArraySize(dims), 1);
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetArrayItem(dims, 0), 0)->valuestring, "Service");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "Service")->valuestring, service);
    /* Every listed metric has a value member of the right kind, and vice versa. */
    const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(d, "Metrics");
    int expect = EDDY_METRIC_COUNTERS + (with_latency ? 3 : 0);
    assert_int_equal(cJSON_GetArraySize(metrics), expect);
    const cJSON *md;
    cJSON_ArrayForEach(md, metrics)
    {
        const char *name = cJSON_GetObjectItemCaseSensitive(md, "Name")->valuestring;
        const char *unit = cJSON_GetObjectItemCaseSensitive(md, "Unit")->valuestring;
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(j, name);
        /* a latency's distribution is an object (check_distribution) */
        size_t len = strlen(name);
        bool distribution = len > 7 && strcmp(name + len - 7, "latency") == 0;
        assert_true(distribution ? cJSON_IsObject(value) : cJSON_IsNumber(value));
        assert_string_equal(unit, strstr(name, "latency") ? "Milliseconds" : "Count");
    }
    assert_int_equal(cJSON_GetArraySize(j), 2 + expect); /* _aws, Service, values */
}

static void check_directive(const cJSON *j, int64_t ts, const char *ns, bool with_latency)
{
    check_directive_service(j, ts, ns, "eddy", with_latency);
}

/* EMF's histogram value: Values and Counts of one length, Count their sum,
 * Min and Max the ends, Sum what the bins add up to (values in ms). */
static void check_distribution(const cJSON *j, const char *name, uint64_t count, double sum)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, name);
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(d, "Values");
    const cJSON *counts = cJSON_GetObjectItemCaseSensitive(d, "Counts");
    int n = cJSON_GetArraySize(values);
    assert_true(n > 0 && n <= EDDY_HIST_EMF_BINS);
    assert_int_equal(cJSON_GetArraySize(counts), n);
    double total = 0, got_sum = 0;
    for (int k = 0; k < n; k++) {
        double v = cJSON_GetArrayItem(values, k)->valuedouble;
        double c = cJSON_GetArrayItem(counts, k)->valuedouble;
        assert_true(k == 0 || v > cJSON_GetArrayItem(values, k - 1)->valuedouble);
        total += c;
        got_sum += v * c;
    }
    assert_true(total == (double)count && num(d, "Count") == (double)count);
    assert_true(num(d, "Min") == cJSON_GetArrayItem(values, 0)->valuedouble);
    assert_true(num(d, "Max") == cJSON_GetArrayItem(values, n - 1)->valuedouble);
    assert_true(num(d, "Sum") >= got_sum - 0.01 && num(d, "Sum") <= got_sum + 0.01);
    assert_true(got_sum >= sum * 0.98 && got_sum <= sum * 1.02);
    assert_int_equal(cJSON_GetArraySize(d), 6);
}

static void test_emf_line_and_deltas(void **state)
{
    (void)state;
    struct eddy_metrics *m = eddy_metrics_new(EDDY_METRICS_EMF);
    eddy_metrics_add(m, EDDY_METRIC_received, 10);
    eddy_metrics_inc(m, EDDY_METRIC_processed);
    eddy_metrics_inc(m, EDDY_METRIC_processed);
    eddy_metrics_inc(m, EDDY_METRIC_poison);
    for (int i = 1; i <= 100; i++)
        eddy_metrics_observe(m, EDDY_LATENCY_processing_latency, i * 1000); /* 1..100 ms */
    cJSON *j = emit_json(m, 1700000000123, "eddy", NULL);
    check_directive(j, 1700000000123, "eddy", true);
    assert_true(num(j, "received") == 10);
    assert_true(num(j, "processed") == 2);
    assert_true(num(j, "poison") == 1);
    assert_true(num(j, "heartbeats") == 0);
    double p50 = num(j, "processing_latency_p50"), p99 = num(j, "processing_latency_p99");
    assert_true(p50 >= 50 * 0.98 && p50 <= 50 * 1.02);
    assert_true(p99 >= 99 * 0.98 && p99 <= 99 * 1.02);
    check_distribution(j, "processing_latency", 100, 5050);
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "outbox_lag_p50"));
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "outbox_lag"));
    cJSON_Delete(j);

    /* The next line holds only what happened since. */
    eddy_metrics_add(m, EDDY_METRIC_received, 3);
    j = emit_json(m, 1700000060123, "my \"ns\"", NULL);
    check_directive(j, 1700000060123, "my \"ns\"", false);
    assert_true(num(j, "received") == 3);
    assert_true(num(j, "processed") == 0);
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "processing_latency_p50"));
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "processing_latency"));
    cJSON_Delete(j);

    /* Totals keep counting across emits. */
    assert_int_equal(eddy_metrics_total(m, EDDY_METRIC_received), 13);
    assert_int_equal(eddy_metrics_interval(m, EDDY_METRIC_received), 0);
    assert_int_equal(eddy_metrics_total_hist(m, EDDY_LATENCY_processing_latency)->count, 100);
    eddy_metrics_free(m);
}

/* The Service dimension is the configured one (a stack's alarms filter on it). */
static void test_service_dimension(void **state)
{
    (void)state;
    struct eddy_metrics *m = eddy_metrics_new(EDDY_METRICS_EMF);
    eddy_metrics_set_service(m, "orders-\"prod\"");
    eddy_metrics_inc(m, EDDY_METRIC_received);
    cJSON *j = emit_json(m, 1700000000123, "eddy", NULL);
    check_directive_service(j, 1700000000123, "eddy", "orders-\"prod\"", false);
    cJSON_Delete(j);
    eddy_metrics_set_service(m, ""); /* unset: the default */
    j = emit_json(m, 1700000060123, "eddy", NULL);
    check_directive_service(j, 1700000060123, "eddy", "eddy", false);
    cJSON_Delete(j);
    eddy_metrics_free(m);
}

static void test_off_writes_nothing(void **state)
{
    (void)state;
    struct eddy_metrics *m = eddy_metrics_new(EDDY_METRICS_OFF);
    eddy_metrics_add(m, EDDY_METRIC_published, 5);
    eddy_metrics_observe(m, EDDY_LATENCY_outbox_lag, -5); /* a clock step back counts as 0 */
    char *line = (char *)"unset";
    assert_null(emit_json(m, 1, NULL, &line));
    assert_null(line);
    assert_int_equal(eddy_metrics_total(m, EDDY_METRIC_published), 5);
    assert_int_equal(eddy_metrics_interval(m, EDDY_METRIC_published), 0);
    assert_int_equal(eddy_metrics_total_hist(m, EDDY_LATENCY_outbox_lag)->max_us, 0);
    eddy_metrics_free(m);
}

static void test_names_and_mode(void **state)
{
    (void)state;
    assert_string_equal(eddy_metric_counter_name(EDDY_METRIC_publish_failures), "publish_failures");
    assert_string_equal(eddy_metric_latency_name(EDDY_LATENCY_commit_to_publish_latency),
                        "commit_to_publish_latency");
    assert_string_equal(eddy_metric_counter_name(EDDY_METRIC_COUNTERS), "?");
    enum eddy_metrics_mode mode;
    assert_true(eddy_metrics_mode_parse("off", &mode));
    assert_int_equal(mode, EDDY_METRICS_OFF);
    assert_true(eddy_metrics_mode_parse("emf", &mode));
    assert_int_equal(mode, EDDY_METRICS_EMF);
    assert_false(eddy_metrics_mode_parse("statsd", &mode));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_precision),     cmocka_unit_test(test_hist_bins),
        cmocka_unit_test(test_hist_merge),         cmocka_unit_test(test_emf_line_and_deltas),
        cmocka_unit_test(test_off_writes_nothing), cmocka_unit_test(test_service_dimension),
        cmocka_unit_test(test_names_and_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
