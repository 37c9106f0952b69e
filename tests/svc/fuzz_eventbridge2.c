/*
 * fuzz_eventbridge2 - a standalone mutation fuzzer for the Custom Event Bus
 * reply decoder (CBOR -> per-entry results).
 *
 *   fuzz_eventbridge2 [SECONDS [MAX_RUNS [SEED]]]
 *
 * The seeds are replies built here with the CBOR writer (published,
 * deduplicated, failed and short replies, an error body, indefinite-length
 * items written by hand). Until SECONDS pass (default 10) or MAX_RUNS inputs
 * ran (0: no limit), a seed is mutated with a seeded generator (bit flips,
 * byte inserts and deletes, CBOR heads, splices, truncation) and decoded as
 * the reply to 1, 3 and 100 entries. Each input sits in a heap buffer of
 * exactly its length, so the sanitizers see any read past the end. The
 * decoder must return results that keep their promises (one per entry
 * sent, each either ok or with an error code, the failed count within the
 * entries) or EDDY_EPARSE; anything else aborts with the run and seed,
 * which replay it. Needs no libFuzzer: it builds with the project.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/cbor.h"
#include "base/alloc.h"
#include "eddy/rng.h"
#include "svc/eventbridge2.h"

#define NSEEDS 6
#define INPUT_MAX 4096

static struct eddy_buf seeds[NSEEDS];

static void entry(struct eddy_cbor_w *w, const char *k1, const char *v1, const char *k2,
                  const char *v2)
{
    eddy_cbor_map(w, k2 ? 2 : 1);
    eddy_cbor_ktext(w, k1, v1);
    if (k2)
        eddy_cbor_ktext(w, k2, v2);
}

static void make_seeds(void)
{
    struct eddy_cbor_w w;
    for (int s = 0; s < 4; s++) {
        eddy_cbor_w_init(&w, 0);
        eddy_cbor_map(&w, 2);
        eddy_cbor_ctext(&w, "FailedEntryCount");
        eddy_cbor_int(&w, s);
        eddy_cbor_ctext(&w, "Entries");
        eddy_cbor_array(&w, (size_t)(3 - (s == 3)));
        entry(&w, "EventId", "e1", "SuccessCode", "PUBLISHED");
        entry(&w, "SuccessCode", "DEDUPLICATED", "SequenceNumber", "0002");
        if (s != 3)
            entry(&w, "ErrorCode", "InternalFailure", "ErrorMessage", "again");
        seeds[s] = w.buf;
    }
    eddy_cbor_w_init(&w, 0);
    eddy_cbor_map(&w, 2);
    eddy_cbor_ktext(&w, "__type", "com.amazonaws.eventbridgev2#ThrottlingException");
    eddy_cbor_ktext(&w, "message", "slow down");
    seeds[4] = w.buf;
    /* {_ "Entries": [_ {_ "SuccessCode": (_ "PUBLI", "SHED")}]} */
    static const unsigned char indef[] = {0xbf, 0x67, 'E', 'n',  't',  'r',  'i',  'e',  's', 0x9f,
                                          0xbf, 0x6b, 'S', 'u',  'c',  'c',  'e',  's',  's', 'C',
                                          'o',  'd',  'e', 0x7f, 0x65, 'P',  'U',  'B',  'L', 'I',
                                          0x64, 'S',  'H', 'E',  'D',  0xff, 0xff, 0xff, 0xff};
    eddy_buf_init(&seeds[5], 0);
    eddy_buf_put(&seeds[5], indef, sizeof indef);
}

static const unsigned char heads[] = {0x9f, 0xbf, 0xff, 0x5f, 0x7f, 0xc1, 0x1b, 0xfb,
                                      0xf9, 0xf7, 0xa1, 0x81, 0x60, 0x40, 0x1c, 0xfe};

static size_t mutate(struct eddy_rng *r, unsigned char *b, size_t n)
{
    int rounds = 1 + (int)eddy_rng_below(r, 4);
    for (int i = 0; i < rounds; i++) {
        size_t at = n ? (size_t)eddy_rng_below(r, n) : 0;
        switch (eddy_rng_below(r, 6)) {
        case 0:
            if (n)
                b[at] ^= (unsigned char)(1u << eddy_rng_below(r, 8));
            break;
        case 1:
            if (n < INPUT_MAX) {
                memmove(b + at + 1, b + at, n - at);
                b[at] = heads[eddy_rng_below(r, sizeof heads)];
                n++;
            }
            break;
        case 2:
            if (n) {
                memmove(b + at, b + at + 1, n - at - 1);
                n--;
            }
            break;
        case 3:
            n = at;
            break;
        case 4: { /* splice the tail of another seed */
            const struct eddy_buf *o = &seeds[eddy_rng_below(r, NSEEDS)];
            size_t from = (size_t)eddy_rng_below(r, o->len);
            size_t k = o->len - from;
            if (at + k > INPUT_MAX)
                k = INPUT_MAX - at;
            memcpy(b + at, o->ptr + from, k);
            n = at + k;
            break;
        }
        default:
            if (n)
                b[at] = (unsigned char)eddy_rng_next(r);
            break;
        }
    }
    return n;
}

static void check(const unsigned char *in, size_t n, unsigned long run, uint64_t seed)
{
    static const size_t nsent[] = {1, 3, 100};
    for (size_t k = 0; k < 3; k++) {
        unsigned char *p = eddy_malloc(n ? n : 1);
        memcpy(p, in, n);
        struct eddy_eb2_put_result res;
        struct eddy_error err = {0};
        eddy_err rc = eddy_eb2_put_result_parse(p, n, nsent[k], &res, &err);
        bool good = rc == EDDY_OK || (rc == EDDY_EPARSE && err.detail[0]);
        if (rc == EDDY_OK) {
            size_t failed = 0;
            good = res.n == nsent[k] && res.failed_count <= res.n;
            for (size_t i = 0; good && i < res.n; i++) {
                const struct eddy_eb2_entry_result *e = &res.entries[i];
                good = e->ok == (e->error_code == NULL) && (!e->deduplicated || e->ok);
                failed += !e->ok;
            }
            good = good && res.failed_count >= failed;
        }
        eddy_eb2_put_result_cleanup(&res);
        free(p);
        if (!good) {
            fprintf(stderr, "fuzz_eventbridge2: run %lu (seed %llu): rc %s, broken result\n", run,
                    (unsigned long long)seed, eddy_err_name(rc));
            abort();
        }
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 10;
    unsigned long max_runs = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : (uint64_t)time(NULL);
    make_seeds();
    struct eddy_rng rng;
    eddy_rng_seed(&rng, seed);
    static unsigned char input[INPUT_MAX + 1];
    double end = now_s() + seconds;
    unsigned long run = 0;
    for (int s = 0; s < NSEEDS; s++)
        check((const unsigned char *)seeds[s].ptr, seeds[s].len, run++, seed);
    while ((max_runs == 0 || run < max_runs) && (run % 256 || now_s() < end)) {
        const struct eddy_buf *s = &seeds[eddy_rng_below(&rng, NSEEDS)];
        memcpy(input, s->ptr, s->len);
        size_t n = mutate(&rng, input, s->len);
        check(input, n, run++, seed);
    }
    for (int s = 0; s < NSEEDS; s++)
        eddy_buf_cleanup(&seeds[s]);
    printf("fuzz_eventbridge2: %lu inputs, seed %llu, no failure\n", run, (unsigned long long)seed);
    return 0;
}
