/*
 * eb2_reply.h - the canned PutEvents reply of the Custom Event Bus (RPC v2
 * CBOR) that the client's and the relay's tests both read results from:
 * FailedEntryCount, then one map a result holding the fields that are set.
 * Header only, as rig.h.
 */
#ifndef EDDY_TESTS_EB2_REPLY_H
#define EDDY_TESTS_EB2_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "aws/cbor.h"
#include "fake_transport.h"

struct eb2_result {
    const char *event_id;
    const char *sequence_number;
    const char *success_code; /* PUBLISHED, DEDUPLICATED */
    const char *error_code;
    const char *error_message;
};

/* Queue an HTTP 200 reply with these n results (n may be fewer than the
 * entries sent: a short reply). */
static inline void eb2_push_results(struct eddy_fake_transport *f, int64_t failed,
                                    const struct eb2_result *rows, size_t n)
{
    struct eddy_cbor_w w;
    eddy_cbor_w_init(&w, 0);
    eddy_cbor_map(&w, 2);
    eddy_cbor_ctext(&w, "FailedEntryCount");
    eddy_cbor_int(&w, failed);
    eddy_cbor_ctext(&w, "Entries");
    eddy_cbor_array(&w, n);
    for (size_t i = 0; i < n; i++) {
        const char *names[] = {"EventId", "SequenceNumber", "SuccessCode", "ErrorCode",
                               "ErrorMessage"};
        const char *values[] = {rows[i].event_id, rows[i].sequence_number, rows[i].success_code,
                                rows[i].error_code, rows[i].error_message};
        size_t set = 0;
        for (size_t k = 0; k < 5; k++)
            set += values[k] != NULL;
        eddy_cbor_map(&w, set);
        for (size_t k = 0; k < 5; k++)
            if (values[k])
                eddy_cbor_ktext(&w, names[k], values[k]);
    }
    struct eddy_fake_reply rep = {.status = 200,
                                  .headers = "Content-Type: application/cbor\r\n"
                                             "x-amzn-RequestId: req-1\r\n",
                                  .body = w.buf.ptr,
                                  .body_len = w.buf.len};
    eddy_fake_push(f, &rep);
    eddy_cbor_w_cleanup(&w);
}

#endif
