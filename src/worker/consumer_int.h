/*
 * consumer_int.h - inside the consumer (consumer.h): its state and the
 * functions its files share. The flow of a message, one file a step:
 * consumer_poller.c receives and decodes it; consumer_lanes.c queues it on
 * its entity's lane and runs the lane's batches; consumer_policies.c decides
 * what becomes of it after its batch (delete, DLQ, poison, backoff, or held
 * while the store is down, with the circuit breaker's probes);
 * consumer_heartbeat.c extends it while it is in hand; consumer.c holds the
 * lifecycle (new, start, close) and the one place a message leaves,
 * consumer_finish(). Not for use outside the consumer.
 */
#ifndef EDDY_WORKER_CONSUMER_INT_H
#define EDDY_WORKER_CONSUMER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/closer.h"
#include "base/clock.h"
#include "base/list.h"
#include "base/log.h"
#include "base/lru.h"
#include "worker/consumer.h"

enum action { ACT_DELETE, ACT_BACKOFF, ACT_RELEASE };
enum state { ST_NEW, ST_STARTING, ST_RUNNING, ST_DRAINING, ST_CLOSING };

struct lane;

/* What a DLQ send needs while it is in flight: allocated for it alone, so
 * the messages in hand do not each carry it. */
struct dlq_out {
    struct eddy_sqs_attr attrs[3];
    char *cut; /* a shortened body for the DLQ, see dlq_body */
    char cut_len[24];
    char reason[]; /* the eddy-error text */
};

struct cmsg {
    struct eddy_list link;    /* lane queue, or the free list */
    struct eddy_list hb_link; /* in hand, least recently extended first */
    struct eddy_consumer *c;
    struct eddy_sqs_message m;
    struct eddy_envelope env;
    uint64_t received_us;
    uint64_t extended_ms;
    struct dlq_out *dlq; /* while a DLQ send is in flight */
};

struct lane {
    struct eddy_list link; /* the free list, the blocked list, or the parked list */
    struct eddy_consumer *c;
    struct eddy_list msgs; /* waiting, in receive order (cmsg.link) */
    size_t n;
    bool busy, blocked, parked, in_map;
    struct cmsg **inbatch;          /* inbatch and events: room for cap messages, */
    struct eddy_proc_event *events; /* grown to the largest batch, coalesce_max at most */
    size_t cap;
    struct eddy_proc_batch batch;
    size_t key_cap; /* bytes of key */
    char key[];     /* sized to the keys it held, not to the 1 KiB limit */
};

struct poller {
    struct eddy_consumer *c;
    struct eddy_aws_call *call;
    int asked;
    bool idle;
    unsigned failures;
    uv_timer_t timer;
};

struct eddy_consumer {
    uv_loop_t *loop;
    struct eddy_sqs *sqs;
    struct eddy_consumer_config cfg; /* strings below are owned copies */
    char *queue_url, *dlq_url;
    bool dlq_fifo;
    struct eddy_acker *acker;
    struct poller *pollers;
    int npollers;
    uv_timer_t hb_timer;
    uv_timer_t start_timer;
    uv_timer_t probe_timer;
    uv_timer_t drain_timer; /* cancels the long polls left out after close */
    struct eddy_breaker breaker;
    bool probing;            /* a probe call is out */
    struct eddy_list parked; /* lanes with work, waiting for the breaker to close */
    struct eddy_aws_call *attrs_call;
    struct eddy_map lanes;       /* key -> struct lane */
    struct eddy_map busy;        /* FIFO: entity -> lane with a batch in flight */
    struct eddy_list free_lanes; /* lane.link */
    struct eddy_list blocked;    /* FIFO: lanes waiting for their entity (lane.link) */
    struct eddy_list free_msgs;  /* cmsg.link */
    struct eddy_list hb;         /* the messages in hand (cmsg.hb_link) */
    size_t inflight, reserved, sends;
    size_t window;           /* messages taken in hand at most now (contention) */
    unsigned yields;         /* pauses in a row, the window at its least and still losing */
    uint64_t yield_until_ms; /* no receive before then */
    int visibility_s;
    int max_receives; /* the queue's redrive policy: maxReceiveCount, 0 without one */
    bool fifo;
    struct eddy_rng rng;
    enum state state;
    struct eddy_closer closer;
};

static inline uint64_t now_ms(const struct eddy_consumer *c)
{
    return eddy_clock_mono_ms(c->cfg.clock);
}

/* consumer.c */
/* A sign of life for the health file. */
void consumer_progress(struct eddy_consumer *c);
void consumer_log_msg(enum eddy_log_level level, const struct cmsg *msg, const char *error,
                      const char *what);
/* A message slot, zeroed, from the free list. */
struct cmsg *consumer_msg_get(struct eddy_consumer *c);
/* The one place a message leaves the consumer's hands. */
void consumer_finish(struct cmsg *msg, enum action act);
void consumer_check_drained(struct eddy_consumer *c);

/* consumer_poller.c */
void consumer_poll_once(struct poller *p);
/* The idle pollers ask again (room was made, or the store is back). */
void consumer_wake_pollers(struct eddy_consumer *c);

/* consumer_lanes.c */
/* The first lane of a list (lane.link), taken off it; NULL when empty. */
struct lane *consumer_lane_take(struct eddy_list *list);
/* Kick each lane of a list (lane.link: the parked or the blocked lanes),
 * which waited for the breaker or for its entity. */
void consumer_lanes_kick(struct eddy_list *list);
struct lane *consumer_lane_get(struct eddy_consumer *c, const char *key);
void consumer_lane_free(void *v);
void consumer_lane_tidy(struct lane *l);
void consumer_lane_push(struct lane *l, struct cmsg *msg);
void consumer_lane_push_front(struct lane *l, struct cmsg *msg);
void consumer_lane_release(struct lane *l);
void consumer_lane_kick(struct lane *l);

/* consumer_policies.c */
void consumer_poison(struct cmsg *msg, const char *reason);
bool consumer_settle(struct cmsg *msg, const struct eddy_proc_event *ev, eddy_err err,
                     const struct eddy_error *berr);
bool consumer_hold(struct lane *l, size_t n);
bool consumer_hand_back(struct lane *l, size_t n, const char *why);
void consumer_store_failed(struct eddy_consumer *c, const char *why);
void consumer_store_ok(struct eddy_consumer *c);

/* consumer_poller.c */
/* A batch came back with its OCC conflicts, committed or not: the window and
 * the pauses of contention (consumer.h). */
void consumer_contention(struct eddy_consumer *c, unsigned conflicts, bool committed);

/* consumer_heartbeat.c */
void consumer_hb_append(struct eddy_consumer *c, struct cmsg *msg);
void consumer_hb_unlink(struct cmsg *msg);
/* Start the heartbeat's timer (the visibility timeout is known). */
void consumer_hb_start(struct eddy_consumer *c);

#endif
