/*
 * metrics.c - counters, log-linear latency histograms and the EMF line
 * (see metrics.h).
 *
 * Bucket layout: samples below 2^SUB (32) get one bucket each; a sample with
 * its highest set bit at e >= SUB falls in one of 32 equal buckets covering
 * [2^e, 2^(e+1)), chosen by its SUB bits below the highest one. The index is
 * continuous across the two ranges, so one array holds them all.
 */
#include "base/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"

#define SUB EDDY_HIST_SUB_BITS
#define SUB_COUNT ((uint64_t)1 << SUB)
#define HIST_MAX_US (((uint64_t)1 << EDDY_HIST_MAX_BITS) - 1)

struct eddy_metrics {
    enum eddy_metrics_mode mode;
    const char *service; /* the Service dimension's value (borrowed) */
    uint64_t interval[EDDY_METRIC_COUNTERS];
    uint64_t total[EDDY_METRIC_COUNTERS];
    struct eddy_hist interval_hist[EDDY_METRIC_LATENCIES];
    struct eddy_hist total_hist[EDDY_METRIC_LATENCIES];
};

static const char *const counter_names[] = {
#define EDDY_METRIC_NAME(name) #name,
    EDDY_METRIC_COUNTER_MAP(EDDY_METRIC_NAME)
#undef EDDY_METRIC_NAME
};

static const char *const latency_names[] = {
#define EDDY_METRIC_NAME(name) #name,
    EDDY_METRIC_LATENCY_MAP(EDDY_METRIC_NAME)
#undef EDDY_METRIC_NAME
};

const char *eddy_metric_counter_name(enum eddy_metric_counter c)
{
    return (unsigned)c < EDDY_METRIC_COUNTERS ? counter_names[c] : "?";
}

const char *eddy_metric_latency_name(enum eddy_metric_latency l)
{
    return (unsigned)l < EDDY_METRIC_LATENCIES ? latency_names[l] : "?";
}

bool eddy_metrics_mode_parse(const char *s, enum eddy_metrics_mode *out)
{
    if (s != NULL && strcmp(s, "emf") == 0)
        *out = EDDY_METRICS_EMF;
    else if (s != NULL && strcmp(s, "off") == 0)
        *out = EDDY_METRICS_OFF;
    else
        return false;
    return true;
}

static size_t bucket_index(uint64_t us)
{
    if (us < SUB_COUNT)
        return (size_t)us;
    if (us > HIST_MAX_US)
        us = HIST_MAX_US;
    unsigned e = 63u - (unsigned)__builtin_clzll(us);
    uint64_t top = us >> (e - SUB); /* in [SUB_COUNT, 2 * SUB_COUNT) */
    return (size_t)(((uint64_t)(e - SUB) << SUB) + top);
}

/* The smallest sample bucket i holds, and how many values it spans. */
static void bucket_range(size_t i, uint64_t *low, uint64_t *width)
{
    if (i < SUB_COUNT) {
        *low = i;
        *width = 1;
        return;
    }
    unsigned shift = (unsigned)(i >> SUB) - 1;
    *low = ((i & (SUB_COUNT - 1)) + SUB_COUNT) << shift;
    *width = (uint64_t)1 << shift;
}

void eddy_hist_reset(struct eddy_hist *h)
{
    memset(h, 0, sizeof *h);
}

void eddy_hist_record(struct eddy_hist *h, uint64_t us)
{
    h->buckets[bucket_index(us)]++;
    h->count++;
    if (us > h->max_us)
        h->max_us = us > HIST_MAX_US ? HIST_MAX_US : us;
}

void eddy_hist_merge(struct eddy_hist *dst, const struct eddy_hist *src)
{
    for (size_t i = 0; i < EDDY_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    if (src->max_us > dst->max_us)
        dst->max_us = src->max_us;
}

double eddy_hist_quantile(const struct eddy_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (!(q > 0))
        q = 0;
    if (q > 1)
        q = 1;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < EDDY_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t low, width;
            bucket_range(i, &low, &width);
            double mid = (double)low + (double)(width - 1) / 2.0;
            return mid > (double)h->max_us ? (double)h->max_us : mid;
        }
    }
    return (double)h->max_us;
}

/* The bins when 2^merge neighbouring buckets make one; counts them only
 * (values NULL) or writes them. */
static size_t hist_bins_merged(const struct eddy_hist *h, unsigned merge, double *values_us,
                               uint64_t *counts)
{
    size_t n = 0, first = 0;
    uint64_t in_bin = 0;
    for (size_t i = 0; i <= EDDY_HIST_BUCKETS; i++) {
        if (i == EDDY_HIST_BUCKETS || (i >> merge) != (first >> merge)) {
            if (in_bin && values_us) {
                uint64_t low, width, last_low, last_width;
                bucket_range(first, &low, &width);
                bucket_range(i - 1, &last_low, &last_width);
                double mid = ((double)low + (double)(last_low + last_width - 1)) / 2.0;
                values_us[n] = mid > (double)h->max_us ? (double)h->max_us : mid;
                counts[n] = in_bin;
            }
            n += in_bin != 0;
            first = i;
            in_bin = 0;
        }
        if (i < EDDY_HIST_BUCKETS)
            in_bin += h->buckets[i];
    }
    return n;
}

size_t eddy_hist_bins(const struct eddy_hist *h, size_t max, double *values_us, uint64_t *counts)
{
    if (h->count == 0)
        return 0;
    /* 32 to a bin: one per power of two, at most 36 */
    unsigned merge = 0;
    while (merge < SUB && hist_bins_merged(h, merge, NULL, NULL) > max)
        merge++;
    return hist_bins_merged(h, merge, values_us, counts);
}

struct eddy_metrics *eddy_metrics_new(enum eddy_metrics_mode mode)
{
    struct eddy_metrics *m = eddy_calloc(1, sizeof *m);
    m->mode = mode;
    m->service = "eddy";
    return m;
}

void eddy_metrics_free(struct eddy_metrics *m)
{
    free(m);
}

void eddy_metrics_set_service(struct eddy_metrics *m, const char *service)
{
    m->service = service != NULL && *service != '\0' ? service : "eddy";
}

enum eddy_metrics_mode eddy_metrics_mode(const struct eddy_metrics *m)
{
    return m->mode;
}

void eddy_metrics_add(struct eddy_metrics *m, enum eddy_metric_counter c, uint64_t n)
{
    if ((unsigned)c >= EDDY_METRIC_COUNTERS)
        return;
    m->interval[c] += n;
    m->total[c] += n;
}

void eddy_metrics_observe(struct eddy_metrics *m, enum eddy_metric_latency l, int64_t us)
{
    if ((unsigned)l >= EDDY_METRIC_LATENCIES)
        return;
    uint64_t v = us > 0 ? (uint64_t)us : 0;
    eddy_hist_record(&m->interval_hist[l], v);
    eddy_hist_record(&m->total_hist[l], v);
}

uint64_t eddy_metrics_total(const struct eddy_metrics *m, enum eddy_metric_counter c)
{
    return (unsigned)c < EDDY_METRIC_COUNTERS ? m->total[c] : 0;
}

uint64_t eddy_metrics_interval(const struct eddy_metrics *m, enum eddy_metric_counter c)
{
    return (unsigned)c < EDDY_METRIC_COUNTERS ? m->interval[c] : 0;
}

const struct eddy_hist *eddy_metrics_total_hist(const struct eddy_metrics *m,
                                                enum eddy_metric_latency l)
{
    return (unsigned)l < EDDY_METRIC_LATENCIES ? &m->total_hist[l] : NULL;
}

/* s as a JSON string body: quotes, backslashes and control bytes escaped. */
static void append_json_escaped(struct eddy_buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            eddy_buf_putf(b, "\\%c", c);
        else if (c < 0x20)
            eddy_buf_putf(b, "\\u%04x", c);
        else
            eddy_buf_putc(b, (char)c);
    }
}

/* The "_aws" member: which of the line's members are metrics, and their units. */
static void append_directive(const struct eddy_metrics *m, struct eddy_buf *b, int64_t unix_ms,
                             const char *ns)
{
    eddy_buf_putf(b, "{\"_aws\":{\"Timestamp\":%lld,\"CloudWatchMetrics\":[{\"Namespace\":\"",
                  (long long)unix_ms);
    append_json_escaped(b, ns);
    eddy_buf_puts(b, "\",\"Dimensions\":[[\"Service\"]],\"Metrics\":[");
    for (size_t c = 0; c < EDDY_METRIC_COUNTERS; c++)
        eddy_buf_putf(b, "%s{\"Name\":\"%s\",\"Unit\":\"Count\"}", c ? "," : "", counter_names[c]);
    for (size_t l = 0; l < EDDY_METRIC_LATENCIES; l++) {
        if (m->interval_hist[l].count == 0)
            continue;
        for (int p = 0; p < 3; p++)
            eddy_buf_putf(b, ",{\"Name\":\"%s%s\",\"Unit\":\"Milliseconds\"}", latency_names[l],
                          p == 0   ? ""
                          : p == 1 ? "_p50"
                                   : "_p99");
    }
    eddy_buf_puts(b, "]}]},\"Service\":\"");
    append_json_escaped(b, m->service);
    eddy_buf_putc(b, '"');
}

/* "name":{"Values":[...],"Counts":[...],"Min":..,"Max":..,"Count":..,"Sum":..},
 * in milliseconds to the microsecond; Min, Max and Sum from those values,
 * so that they agree. */
static void append_distribution(struct eddy_buf *b, const char *name, const struct eddy_hist *h)
{
    double values[EDDY_HIST_EMF_BINS];
    uint64_t counts[EDDY_HIST_EMF_BINS], us[EDDY_HIST_EMF_BINS];
    size_t n = eddy_hist_bins(h, EDDY_HIST_EMF_BINS, values, counts);
    uint64_t sum = 0, count = 0;
    eddy_buf_putf(b, ",\"%s\":{\"Values\":[", name);
    for (size_t k = 0; k < n; k++) {
        us[k] = (uint64_t)(values[k] + 0.5);
        eddy_buf_putf(b, "%s%.3f", k ? "," : "", (double)us[k] / 1000.0);
        sum += us[k] * counts[k];
        count += counts[k];
    }
    eddy_buf_puts(b, "],\"Counts\":[");
    for (size_t k = 0; k < n; k++)
        eddy_buf_putf(b, "%s%llu", k ? "," : "", (unsigned long long)counts[k]);
    eddy_buf_putf(b, "],\"Min\":%.3f,\"Max\":%.3f,\"Count\":%llu,\"Sum\":%.3f}",
                  (double)us[0] / 1000.0, (double)us[n - 1] / 1000.0, (unsigned long long)count,
                  (double)sum / 1000.0);
}

static void append_values(const struct eddy_metrics *m, struct eddy_buf *b)
{
    for (size_t c = 0; c < EDDY_METRIC_COUNTERS; c++)
        eddy_buf_putf(b, ",\"%s\":%llu", counter_names[c], (unsigned long long)m->interval[c]);
    for (size_t l = 0; l < EDDY_METRIC_LATENCIES; l++) {
        const struct eddy_hist *h = &m->interval_hist[l];
        if (h->count == 0)
            continue;
        eddy_buf_putf(b, ",\"%s_p50\":%.3f,\"%s_p99\":%.3f", latency_names[l],
                      eddy_hist_quantile(h, 0.50) / 1000.0, latency_names[l],
                      eddy_hist_quantile(h, 0.99) / 1000.0);
        append_distribution(b, latency_names[l], h);
    }
    eddy_buf_puts(b, "}\n");
}

static void reset_interval(struct eddy_metrics *m)
{
    memset(m->interval, 0, sizeof m->interval);
    for (size_t l = 0; l < EDDY_METRIC_LATENCIES; l++)
        eddy_hist_reset(&m->interval_hist[l]);
}

eddy_err eddy_metrics_emit(struct eddy_metrics *m, FILE *out, int64_t unix_ms, const char *ns)
{
    if (m->mode == EDDY_METRICS_OFF) {
        reset_interval(m);
        return EDDY_OK;
    }
    /* No tight cap: the line is bounded by the fixed metric list, ns and service. */
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    append_directive(m, &b, unix_ms, ns != NULL ? ns : "eddy");
    append_values(m, &b);
    reset_interval(m);
    /* One fwrite, so a line is never interleaved with a log line. */
    eddy_err rc = EDDY_OK;
    if (fwrite(b.ptr, 1, b.len, out) != b.len || fflush(out) != 0)
        rc = EDDY_EIO;
    eddy_buf_cleanup(&b);
    return rc;
}
