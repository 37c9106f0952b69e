/*
 * fakeaws.h - a tiny DynamoDB table and EventBridge bus behind the fake
 * transport, for the relay and lease unit tests.
 *
 * The rig answers each request the code under test sends, in order, by its
 * X-Amz-Target: Query (one partition, sorted by _sk, Limit and
 * ExclusiveStartKey or an ":after" sort key bound honoured, LastEvaluatedKey
 * when more), TransactWriteItems (puts and deletes, unconditional), PutItem and
 * DeleteItem (with the two conditions the lease module writes, evaluated
 * for real), BatchWriteItem (deletes) and PutEvents (every entry recorded,
 * accepted or refused as the test's hooks say). Time is a fake clock the
 * test moves; backoffs are real but tiny (1 ms base in the AWS layer).
 */
#ifndef EDDY_TESTS_FAKEAWS_H
#define EDDY_TESTS_FAKEAWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <cjson/cJSON.h>

#include "aws/awscall.h"
#include "rig.h"
#include "svc/dynamodb.h"
#include "svc/eventbridge.h"

struct fakeaws;

/* Return true to refuse this PutEvents entry (attempt counts from 1 for
 * each distinct Detail). */
typedef bool (*fakeaws_fail_fn)(const cJSON *entry, unsigned attempt, void *ud);

struct fakeaws {
    struct rig rig; /* loop, fake transport, fake clock (rig.fake_clock), AWS context */
    struct eddy_ddb ddb;
    struct eddy_eb eb;
    size_t answered;  /* requests answered so far */
    cJSON *items;     /* the table: an array of items */
    cJSON *sent;      /* every PutEvents entry sent, in order (copies) */
    cJSON *published; /* the accepted ones, in order */
    cJSON *attempts;  /* Detail -> times sent */
    size_t put_calls, query_calls, write_calls, transact_calls;
    size_t max_call_entries, max_call_bytes;
    bool same_entity_in_call; /* a call carried two entries of one entity */
    /* hooks */
    fakeaws_fail_fn fail_entry;
    void *fail_ud;
    const char *fail_code;      /* the ErrorCode of refused entries; NULL: InternalFailure */
    unsigned fail_put_calls;    /* answer the next N PutEvents attempts with HTTP 500 */
    size_t unprocessed_next;    /* report this many keys unprocessed once */
    unsigned unprocessed_calls; /* report the first key of the next N BatchWriteItem unprocessed */
    bool hold_puts;             /* leave PutEvents unanswered */
    const char *hold_target;    /* leave requests whose X-Amz-Target has this, and those after */
    bool fail_ddb_writes;       /* answer PutItem/DeleteItem attempts with a network error */
    void (*on_query)(struct fakeaws *w, void *ud); /* after each Query is answered */
    void *on_query_ud;
};

void fakeaws_init(struct fakeaws *w);
/* Close everything and assert the loop closes. */
void fakeaws_close(struct fakeaws *w);

/* Put an item (attribute-value JSON, copied) into the table. */
void fakeaws_put(struct fakeaws *w, const cJSON *item);
/* An outbox entry as the processor builds it (eddy_record_build_outbox),
 * with data {"n": seq} padded by pad bytes of text. */
void fakeaws_put_outbox(struct fakeaws *w, uint32_t shards, const char *ns, const char *id,
                        int64_t seq, size_t idx, size_t pad);
/* Items whose _pk is pk. */
size_t fakeaws_count(const struct fakeaws *w, const char *pk);
/* The item at (pk, sk), or NULL. */
const cJSON *fakeaws_get(const struct fakeaws *w, const char *pk, const char *sk);

/* Answer requests until done(ud) or timeout_ms of wall time; true if done. */
bool fakeaws_run(struct fakeaws *w, bool (*done)(struct fakeaws *w, void *ud), void *ud,
                 int timeout_ms);
/* Requests waiting for an answer the rig held back (hold_puts). */
size_t fakeaws_waiting(const struct fakeaws *w);
/* Answer the PutEvents held back. */
void fakeaws_release_puts(struct fakeaws *w);

/* The "_eddy" metadata of a Detail text: id and seq, idx (-1 when absent). */
void fakeaws_detail_meta(const char *detail, char *id, size_t idlen, int64_t *seq, int64_t *idx);

#endif
