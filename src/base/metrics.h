/*
 * metrics.h - the counters (worker and relay) and latency percentiles, written as
 * CloudWatch Embedded Metric Format (EMF) lines.
 *
 * Counters count since the last emit and since init. Latencies go into
 * fixed-size log-linear histograms (in the manner of HdrHistogram): 32 linear
 * sub-buckets per power of two, so a reported percentile is within about 1.6%
 * of the true value (the bucket's midpoint is reported); recording a sample
 * is a few shifts and one increment, with no allocation. Samples are in
 * microseconds, from 0 to about 12 days; larger ones count as the largest.
 *
 * eddy_metrics_emit writes one JSON line that CloudWatch Logs turns into
 * metrics (namespace as given, one dimension "Service", "eddy" unless
 * eddy_metrics_set_service says otherwise): every
 * counter as the delta since the previous emit, and each latency seen in
 * the interval, in milliseconds, twice: as the task's own p50 and p99
 * (<name>_p50, <name>_p99), and as <name>, its distribution (EMF's
 * histogram value: Values and Counts, at most EDDY_HIST_EMF_BINS bins, with
 * Min, Max, Count and Sum), which CloudWatch merges across the tasks of a
 * fleet, so that a percentile statistic of <name> is the fleet's. A latency
 * with no samples in the interval is left out of the line. Then the interval
 * starts over; totals since init stay, for tests and the bench. In
 * EDDY_METRICS_OFF mode nothing is written, but counting and totals work
 * the same.
 *
 * The struct is about 60 KB; allocate it with eddy_metrics_new.
 */
#ifndef EDDY_BASE_METRICS_H
#define EDDY_BASE_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/err.h"

/* X(name): the name is also the metric's name in the EMF line. */
#define EDDY_METRIC_COUNTER_MAP(X)                                                                 \
    X(received)                                                                                    \
    X(processed)                                                                                   \
    X(rejected)                                                                                    \
    X(poison)                                                                                      \
    X(duplicates)                                                                                  \
    X(conflicts)                                                                                   \
    X(retries)                                                                                     \
    X(published)                                                                                   \
    X(publish_failures)                                                                            \
    X(publish_dead)                                                                                \
    X(deleted)                                                                                     \
    X(released)                                                                                    \
    X(heartbeats)                                                                                  \
    X(connections)                                                                                 \
    X(held)                                                                                        \
    X(breaker_opened)                                                                              \
    X(breaker_probes)                                                                              \
    X(contention_pauses)

/* X(name): emitted as <name>_p50 and <name>_p99. */
#define EDDY_METRIC_LATENCY_MAP(X)                                                                 \
    X(processing_latency)                                                                          \
    X(commit_to_publish_latency)                                                                   \
    X(outbox_lag)

enum eddy_metric_counter {
#define EDDY_METRIC_ENUM(name) EDDY_METRIC_##name,
    EDDY_METRIC_COUNTER_MAP(EDDY_METRIC_ENUM)
#undef EDDY_METRIC_ENUM
        EDDY_METRIC_COUNTERS
};

enum eddy_metric_latency {
#define EDDY_METRIC_ENUM(name) EDDY_LATENCY_##name,
    EDDY_METRIC_LATENCY_MAP(EDDY_METRIC_ENUM)
#undef EDDY_METRIC_ENUM
        EDDY_METRIC_LATENCIES
};

enum eddy_metrics_mode { EDDY_METRICS_EMF, EDDY_METRICS_OFF };

/* "received", "processing_latency", ...; "?" when out of range. */
const char *eddy_metric_counter_name(enum eddy_metric_counter c);
const char *eddy_metric_latency_name(enum eddy_metric_latency l);
/* Parse "emf" or "off"; false when unknown. */
bool eddy_metrics_mode_parse(const char *s, enum eddy_metrics_mode *out);

/*
 * A log-linear histogram of microsecond samples; usable on its own (the
 * bench does). Zero-initialised storage is an empty histogram.
 */
#define EDDY_HIST_SUB_BITS 5
#define EDDY_HIST_MAX_BITS 40 /* samples >= 2^40 us count as 2^40 - 1 */
#define EDDY_HIST_BUCKETS ((EDDY_HIST_MAX_BITS - EDDY_HIST_SUB_BITS + 1) << EDDY_HIST_SUB_BITS)

struct eddy_hist {
    uint64_t count;
    uint64_t max_us;
    uint64_t buckets[EDDY_HIST_BUCKETS];
};

void eddy_hist_reset(struct eddy_hist *h);
void eddy_hist_record(struct eddy_hist *h, uint64_t us);
/* Add every sample of src to dst. */
void eddy_hist_merge(struct eddy_hist *dst, const struct eddy_hist *src);
/*
 * The q-th quantile (0 < q <= 1) in microseconds: the smallest bucket
 * holding at least ceil(q * count) samples, reported at its midpoint and
 * never above the largest sample. 0 when empty.
 */
double eddy_hist_quantile(const struct eddy_hist *h, double q);
/* CloudWatch drops a histogram value of more bins. */
#define EDDY_HIST_EMF_BINS 100
/*
 * The histogram in at most max (>= 40) bins, for EMF: the non-empty buckets,
 * neighbours merged (2, 4, ... 32 to a bin) until they fit, each bin's value
 * its midpoint in microseconds (never above the largest sample) and its
 * count. Returns the bins written, in ascending order; 0 when empty.
 */
size_t eddy_hist_bins(const struct eddy_hist *h, size_t max, double *values_us, uint64_t *counts);

struct eddy_metrics;

struct eddy_metrics *eddy_metrics_new(enum eddy_metrics_mode mode);
void eddy_metrics_free(struct eddy_metrics *m);
/* The value of the Service dimension (borrowed; "eddy" when NULL or empty). */
void eddy_metrics_set_service(struct eddy_metrics *m, const char *service);
enum eddy_metrics_mode eddy_metrics_mode(const struct eddy_metrics *m);

void eddy_metrics_add(struct eddy_metrics *m, enum eddy_metric_counter c, uint64_t n);
static inline void eddy_metrics_inc(struct eddy_metrics *m, enum eddy_metric_counter c)
{
    eddy_metrics_add(m, c, 1);
}
/* One latency sample in microseconds (a negative clock step counts as 0). */
void eddy_metrics_observe(struct eddy_metrics *m, enum eddy_metric_latency l, int64_t us);

/*
 * Write one EMF line to out (namespace ns, "eddy" when NULL) stamped with
 * unix_ms, then start a new interval. EDDY_EIO when the write fails (the
 * interval starts over anyway: a lost line loses one interval, never counts
 * twice). Writes nothing in EDDY_METRICS_OFF mode.
 */
EDDY_MUST_USE eddy_err eddy_metrics_emit(struct eddy_metrics *m, FILE *out, int64_t unix_ms,
                                         const char *ns);

/* Totals since eddy_metrics_new. */
uint64_t eddy_metrics_total(const struct eddy_metrics *m, enum eddy_metric_counter c);
/* The counter's value in the current interval (since the last emit). */
uint64_t eddy_metrics_interval(const struct eddy_metrics *m, enum eddy_metric_counter c);
/* Histogram of every sample since eddy_metrics_new. Borrowed. */
const struct eddy_hist *eddy_metrics_total_hist(const struct eddy_metrics *m,
                                                enum eddy_metric_latency l);

#endif
