/*
 * breaker.c - the store's circuit breaker (see breaker.h).
 *
 * Every change of state goes through set_state, which checks and traces
 * it against the diagram's moves (base/state.h), schedules the next probe
 * when the breaker opens and writes the log line: the state is never
 * assigned anywhere else.
 */
#include "worker/breaker.h"

#include "aws/retry.h"
#include "base/log.h"
#include "base/state.h"

/* The moves of the diagram in breaker.h. */
static const struct eddy_state breaker_state_v[] = {
    [EDDY_BREAKER_CLOSED] = {"closed", EDDY_STATE_TO(EDDY_BREAKER_OPEN)},
    [EDDY_BREAKER_OPEN] = {"open", EDDY_STATE_TO(EDDY_BREAKER_PROBING) |
                                       EDDY_STATE_TO(EDDY_BREAKER_CLOSED)},
    [EDDY_BREAKER_PROBING] = {"probing", EDDY_STATE_TO(EDDY_BREAKER_CLOSED) |
                                             EDDY_STATE_TO(EDDY_BREAKER_OPEN)},
};
static const struct eddy_states breaker_states = EDDY_STATES("circuit breaker", breaker_state_v);

const char *eddy_breaker_state_name(enum eddy_breaker_state s)
{
    return eddy_state_name(&breaker_states, s);
}

bool eddy_breaker_store_down(eddy_err err)
{
    return err == EDDY_ENET || err == EDDY_ETIMEOUT || err == EDDY_ETRANSIENT ||
           err == EDDY_ETHROTTLED;
}

void eddy_breaker_init(struct eddy_breaker *b, const struct eddy_breaker_config *cfg)
{
    *b = (struct eddy_breaker){.cfg = *cfg, .state = EDDY_BREAKER_CLOSED};
    if (b->cfg.name == NULL)
        b->cfg.name = "the store";
    if (b->cfg.probe_min_ms == 0)
        b->cfg.probe_min_ms = EDDY_BREAKER_PROBE_MIN_MS;
    if (b->cfg.probe_max_ms == 0)
        b->cfg.probe_max_ms = EDDY_BREAKER_PROBE_MAX_MS;
    if (b->cfg.probe_max_ms < b->cfg.probe_min_ms)
        b->cfg.probe_max_ms = b->cfg.probe_min_ms;
    if (b->cfg.clock == NULL)
        b->cfg.clock = eddy_clock_system();
    eddy_rng_seed(&b->rng, cfg->seed);
}

/* The delay before the next probe: min * 2^level capped at max, then
 * between half and all of it. */
static uint64_t probe_delay(struct eddy_breaker *b)
{
    return eddy_backoff_equal_jitter(&b->rng, b->level, b->cfg.probe_min_ms, b->cfg.probe_max_ms);
}

/* The one place the state changes: checked and traced (base/state.h),
 * and the opening and the closing logged. */
static void set_state(struct eddy_breaker *b, enum eddy_breaker_state to, const char *why)
{
    enum eddy_breaker_state from = b->state;
    uint64_t now = eddy_clock_mono_ms(b->cfg.clock);
    eddy_state_move(&breaker_states, from, to, "%s", b->cfg.name);
    b->state = to;
    struct eddy_log_fields f = {.error = why, .seq = EDDY_LOG_NOSEQ};
    switch (to) {
    case EDDY_BREAKER_OPEN: {
        uint64_t delay = probe_delay(b);
        b->probe_at_ms = now + delay;
        if (from == EDDY_BREAKER_CLOSED) {
            b->opens++;
            b->opened_ms = now;
            b->outage_probes = 0;
            eddy_log(EDDY_LOG_WARN, &f,
                     "%s is down: circuit breaker open; messages in hand wait, no more are "
                     "received; probing in %llu ms",
                     b->cfg.name, (unsigned long long)delay);
        } else {
            b->probe_failures++;
            eddy_log(EDDY_LOG_DEBUG, &f,
                     "%s probe %u failed; circuit breaker open, next in %llu ms", b->cfg.name,
                     b->outage_probes, (unsigned long long)delay);
        }
        break;
    }
    case EDDY_BREAKER_PROBING:
        b->probes++;
        b->outage_probes++;
        break;
    case EDDY_BREAKER_CLOSED:
        eddy_log(EDDY_LOG_INFO, NULL,
                 "%s answers again: circuit breaker closed after %llu ms (%u probes); resuming",
                 b->cfg.name, (unsigned long long)(now - b->opened_ms), b->outage_probes);
        break;
    }
}

void eddy_breaker_failure(struct eddy_breaker *b, const char *why)
{
    if (b->state != EDDY_BREAKER_CLOSED)
        return;
    if (b->unproven && b->level < 32)
        b->level++;
    b->unproven = false;
    set_state(b, EDDY_BREAKER_OPEN, why);
}

void eddy_breaker_success(struct eddy_breaker *b)
{
    if (b->state == EDDY_BREAKER_CLOSED) {
        b->level = 0;
        b->unproven = false;
        return;
    }
    /* A call that was out when the breaker opened came back fine: the
     * store works. A probe still out reports into CLOSED and is ignored. */
    b->level = 0;
    b->unproven = false;
    set_state(b, EDDY_BREAKER_CLOSED, NULL);
}

uint64_t eddy_breaker_wait_ms(const struct eddy_breaker *b)
{
    if (b->state != EDDY_BREAKER_OPEN)
        return 0;
    uint64_t now = eddy_clock_mono_ms(b->cfg.clock);
    return b->probe_at_ms > now ? b->probe_at_ms - now : 0;
}

bool eddy_breaker_probe_start(struct eddy_breaker *b)
{
    if (b->state != EDDY_BREAKER_OPEN || eddy_breaker_wait_ms(b) > 0)
        return false;
    set_state(b, EDDY_BREAKER_PROBING, NULL);
    return true;
}

void eddy_breaker_probe_done(struct eddy_breaker *b, bool ok, const char *why)
{
    if (b->state != EDDY_BREAKER_PROBING)
        return; /* closed meanwhile by a call that succeeded */
    if (ok) {
        b->unproven = true;
        set_state(b, EDDY_BREAKER_CLOSED, NULL);
        return;
    }
    if (b->level < 32)
        b->level++;
    set_state(b, EDDY_BREAKER_OPEN, why);
}
