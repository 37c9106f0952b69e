/* Unit tests for relay/lease: acquire, renew, local expiry, fair share
 * between processes, takeover of a dead process's shards, loss to another
 * owner, release on stop. Two lease modules share one fake table
 * (fakeaws.h, conditions evaluated for real) and one fake clock; ticks are
 * driven by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/log.h"
#include "core/record.h"
#include "record_tree.h"
#include "fakeaws.h"
#include "relay/lease.h"

#define SHARDS 8
#define LEASE_MS 3000

struct proc {
    struct eddy_lease *l;
    const char *owner;
    unsigned acquired, lost, surrendered;
    bool stopped;
};

static void on_event(uint32_t shard, enum eddy_lease_event ev, void *ud)
{
    struct proc *p = ud;
    assert_true(shard < SHARDS);
    if (ev == EDDY_LEASE_ACQUIRED)
        p->acquired++;
    if (ev == EDDY_LEASE_LOST)
        p->lost++;
    if (ev == EDDY_LEASE_SURRENDER) {
        p->surrendered++;
        eddy_lease_give_back(p->l, shard); /* idle at once */
    }
}

static void proc_new(struct fakeaws *w, struct proc *p, const char *owner)
{
    memset(p, 0, sizeof *p);
    p->owner = owner;
    struct eddy_lease_config cfg = {
        .table = "t", .shards = SHARDS, .lease_ms = LEASE_MS, .owner = owner, .tick_ms = 3600000};
    struct eddy_error err = {0};
    p->l = eddy_lease_new(&w->rig.loop, &w->ddb, &cfg, &w->rig.fake_clock.clock, on_event, p, &err);
    assert_non_null(p->l);
}

static bool quiet(struct fakeaws *w, void *ud)
{
    (void)ud;
    return fakeaws_waiting(w) == 0 && eddy_fake_inflight(w->rig.fake) == 0;
}

static bool never(struct fakeaws *w, void *ud)
{
    (void)w;
    (void)ud;
    return false;
}

/* Until nothing is in flight, with room for the AWS layer's retry backoffs
 * (1-2 ms) to send again. */
static void settle(struct fakeaws *w)
{
    uv_run(&w->rig.loop, UV_RUN_NOWAIT);
    assert_true(fakeaws_run(w, quiet, NULL, 5000));
    fakeaws_run(w, never, NULL, 15);
    assert_true(fakeaws_run(w, quiet, NULL, 5000));
}

static void tick(struct fakeaws *w, struct proc *p)
{
    assert_true(eddy_lease_tick(p->l));
    settle(w);
}

static void on_stopped(void *ud)
{
    ((struct proc *)ud)->stopped = true;
}

static bool is_stopped(struct fakeaws *w, void *ud)
{
    (void)w;
    return ((struct proc *)ud)->stopped;
}

static void proc_stop(struct fakeaws *w, struct proc *p)
{
    eddy_lease_close(p->l, on_stopped, p);
    assert_false(p->stopped);
    assert_true(fakeaws_run(w, is_stopped, p, 5000));
}

/* Lease items in the table owned by owner. */
static unsigned owned_in_table(const struct fakeaws *w, const char *owner)
{
    unsigned n = 0;
    for (uint32_t i = 0; i < SHARDS; i++) {
        char *sk = eddy_record_lease_sk(i);
        const cJSON *it = fakeaws_get(w, EDDY_RECORD_LEASE_PK, sk);
        free(sk);
        const char *o = NULL;
        int64_t exp = 0;
        struct eddy_error err;
        if (it && eddy_record_parse_lease(it, &o, &exp, &err) == EDDY_OK && strcmp(o, owner) == 0)
            n++;
    }
    return n;
}

static int64_t expires_of(const struct fakeaws *w, uint32_t shard)
{
    char *sk = eddy_record_lease_sk(shard);
    const cJSON *it = fakeaws_get(w, EDDY_RECORD_LEASE_PK, sk);
    free(sk);
    const char *o = NULL;
    int64_t exp = 0;
    struct eddy_error err;
    assert_non_null(it);
    assert_int_equal(eddy_record_parse_lease(it, &o, &exp, &err), EDDY_OK);
    return exp;
}

static void test_acquire_all_alone(void **state)
{
    (void)state;
    struct fakeaws w;
    fakeaws_init(&w);
    struct proc a;
    proc_new(&w, &a, "proc-a");
    eddy_lease_start(a.l);
    assert_int_equal(a.acquired, 0); /* never from inside the call */
    settle(&w);
    assert_int_equal(a.acquired, SHARDS);
    assert_int_equal(eddy_lease_count(a.l), SHARDS);
    assert_int_equal(eddy_lease_members(a.l), 1);
    assert_int_equal(eddy_lease_fair_share(a.l), SHARDS);
    assert_int_equal(owned_in_table(&w, "proc-a"), SHARDS);
    assert_int_equal(expires_of(&w, 3), w.rig.fake_clock.unix_ms + LEASE_MS);
    const cJSON *member = fakeaws_get(&w, EDDY_RECORD_LEASE_PK, "member/proc-a");
    assert_non_null(member);
    /* members of processes gone are deleted by DynamoDB's TTL, an hour on */
    const cJSON *ttl = cJSON_GetObjectItem(cJSON_GetObjectItem(member, "_ttl"), "N");
    assert_non_null(ttl);
    assert_int_equal(strtoll(ttl->valuestring, NULL, 10),
                     (w.rig.fake_clock.unix_ms + LEASE_MS) / 1000 + 3600);
    proc_stop(&w, &a);
    fakeaws_close(&w);
}

static void test_renew_then_local_expiry(void **state)
{
    (void)state;
    struct fakeaws w;
    fakeaws_init(&w);
    struct proc a;
    proc_new(&w, &a, "proc-a");
    eddy_lease_start(a.l);
    settle(&w);
    eddy_clock_fake_advance(&w.rig.fake_clock, LEASE_MS / 3);
    tick(&w, &a);
    assert_int_equal(expires_of(&w, 0), w.rig.fake_clock.unix_ms + LEASE_MS); /* renewed */
    assert_int_equal(a.acquired, SHARDS);                                     /* not again */
    /* renewals now fail (network): held until the lease runs out locally */
    w.fail_ddb_writes = true;
    eddy_clock_fake_advance(&w.rig.fake_clock, LEASE_MS / 3);
    tick(&w, &a);
    assert_true(eddy_lease_held(a.l, 0));
    eddy_clock_fake_advance(&w.rig.fake_clock, LEASE_MS / 3 + LEASE_MS / 3);
    assert_false(eddy_lease_held(a.l, 0)); /* 9/10 of the period after the last renewal */
    assert_int_equal(eddy_lease_count(a.l), 0);
    tick(&w, &a);
    assert_int_equal(a.lost, SHARDS);
    w.fail_ddb_writes = false;
    proc_stop(&w, &a);
    fakeaws_close(&w);
}

static void test_fair_share_and_takeover(void **state)
{
    (void)state;
    struct fakeaws w;
    fakeaws_init(&w);
    struct proc a, b;
    proc_new(&w, &a, "proc-a");
    proc_new(&w, &b, "proc-b");
    eddy_lease_start(a.l);
    settle(&w);
    assert_int_equal(eddy_lease_count(a.l), SHARDS);
    /* b joins: nothing is free yet */
    eddy_lease_start(b.l);
    settle(&w);
    assert_int_equal(eddy_lease_count(b.l), 0);
    assert_int_equal(eddy_lease_members(b.l), 2);
    assert_int_equal(eddy_lease_fair_share(b.l), SHARDS / 2);
    /* a sees b and gives back the shards over its share */
    eddy_clock_fake_advance(&w.rig.fake_clock, LEASE_MS / 3);
    tick(&w, &a);
    assert_int_equal(a.surrendered, SHARDS / 2);
    assert_int_equal(eddy_lease_count(a.l), SHARDS / 2);
    assert_int_equal(owned_in_table(&w, "proc-a"), SHARDS / 2);
    tick(&w, &b);
    assert_int_equal(eddy_lease_count(b.l), SHARDS / 2);
    assert_int_equal(owned_in_table(&w, "proc-b"), SHARDS / 2);
    for (uint32_t i = 0; i < SHARDS; i++)
        assert_true(eddy_lease_held(a.l, i) != eddy_lease_held(b.l, i));
    /* a dies (no more ticks); b keeps ticking and takes a's shards over */
    int64_t a_last = w.rig.fake_clock.unix_ms;
    int64_t taken_at = 0;
    for (int k = 0; k < 8 && eddy_lease_count(b.l) < SHARDS; k++) {
        eddy_clock_fake_advance(&w.rig.fake_clock, LEASE_MS / 3);
        tick(&w, &b);
        taken_at = w.rig.fake_clock.unix_ms;
    }
    assert_int_equal(eddy_lease_count(b.l), SHARDS);
    assert_true(taken_at - a_last <= 2 * LEASE_MS);
    assert_int_equal(owned_in_table(&w, "proc-b"), SHARDS);
    /* a wakes up: its leases ran out and belong to b now */
    assert_int_equal(eddy_lease_count(a.l), 0);
    tick(&w, &a);
    assert_int_equal(a.lost, SHARDS / 2);
    assert_int_equal(eddy_lease_count(a.l), 0);
    assert_int_equal(owned_in_table(&w, "proc-b"), SHARDS);
    proc_stop(&w, &a);
    assert_int_equal(owned_in_table(&w, "proc-b"), SHARDS); /* a releases nothing of b's */
    proc_stop(&w, &b);
    fakeaws_close(&w);
}

/* Between a's query and its renewal, another owner writes shard 5's lease:
 * the renewal's condition fails and a loses the shard. */
static void steal_shard5(struct fakeaws *w, void *ud)
{
    (void)ud;
    cJSON *item = NULL;
    struct eddy_error err = {0};
    assert_int_equal(record_build_lease(5, "thief", w->rig.fake_clock.unix_ms + 60000, &item, &err),
                     EDDY_OK);
    fakeaws_put(w, item);
    cJSON_Delete(item);
    w->on_query = NULL;
}

static void test_renew_refused_loses_shard(void **state)
{
    (void)state;
    struct fakeaws w;
    fakeaws_init(&w);
    struct proc a;
    proc_new(&w, &a, "proc-a");
    eddy_lease_start(a.l);
    settle(&w);
    w.on_query = steal_shard5;
    eddy_clock_fake_advance(&w.rig.fake_clock, LEASE_MS / 3);
    FILE *log = tmpfile(); /* the shard's moves, traced at debug (base/state.h) */
    eddy_log_configure(EDDY_LOG_DEBUG, EDDY_LOG_TEXT, log);
    tick(&w, &a);
    eddy_log_configure(EDDY_LOG_ERROR, EDDY_LOG_TEXT, stderr);
    static char text[1 << 16];
    rewind(log);
    text[fread(text, 1, sizeof text - 1, log)] = '\0';
    fclose(log);
    assert_non_null(strstr(text, "lease shard 5: held -> free"));
    assert_null(strstr(text, "lease shard 4:")); /* kept: no move */
    assert_int_equal(a.lost, 1);
    assert_false(eddy_lease_held(a.l, 5));
    assert_int_equal(eddy_lease_count(a.l), SHARDS - 1);
    /* the next tick sees it taken and does not try to acquire it */
    tick(&w, &a);
    assert_int_equal(a.acquired, SHARDS);
    proc_stop(&w, &a);
    assert_int_equal(owned_in_table(&w, "thief"), 1);
    fakeaws_close(&w);
}

static void test_stop_releases_everything(void **state)
{
    (void)state;
    struct fakeaws w;
    fakeaws_init(&w);
    struct proc a;
    proc_new(&w, &a, "proc-a");
    eddy_lease_start(a.l);
    settle(&w);
    assert_int_equal(fakeaws_count(&w, EDDY_RECORD_LEASE_PK), SHARDS + 1);
    proc_stop(&w, &a);
    assert_int_equal(fakeaws_count(&w, EDDY_RECORD_LEASE_PK), 0);
    /* a new process takes them at once, without waiting for expiry */
    struct proc b;
    proc_new(&w, &b, "proc-b");
    eddy_lease_start(b.l);
    settle(&w);
    assert_int_equal(eddy_lease_count(b.l), SHARDS);
    proc_stop(&w, &b);
    fakeaws_close(&w);
}

static void test_stop_unstarted_and_bad_config(void **state)
{
    (void)state;
    struct fakeaws w;
    fakeaws_init(&w);
    struct proc a;
    proc_new(&w, &a, "proc-a");
    proc_stop(&w, &a);
    assert_int_equal(w.write_calls, 0);
    struct eddy_lease_config cfg = {.table = "t", .shards = 0, .lease_ms = LEASE_MS, .owner = "x"};
    struct eddy_error err = {0};
    assert_null(eddy_lease_new(&w.rig.loop, &w.ddb, &cfg, NULL, on_event, &a, &err));
    cfg.shards = 4;
    cfg.owner = "";
    assert_null(eddy_lease_new(&w.rig.loop, &w.ddb, &cfg, NULL, on_event, &a, &err));
    fakeaws_close(&w);
}

int main(void)
{
    eddy_log_configure(EDDY_LOG_ERROR, EDDY_LOG_TEXT, stderr);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acquire_all_alone),
        cmocka_unit_test(test_renew_then_local_expiry),
        cmocka_unit_test(test_fair_share_and_takeover),
        cmocka_unit_test(test_renew_refused_loses_shard),
        cmocka_unit_test(test_stop_releases_everything),
        cmocka_unit_test(test_stop_unstarted_and_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
