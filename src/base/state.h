/*
 * state.h - a component's state changes through one setter that can trace
 * them (as curl's mstate()).
 *
 * A component whose state is an enum describes its states once, in a
 * table: each state's name and the states it may move to. Its one setter,
 * the only code that assigns the state, passes every move through
 * eddy_state_move, which checks the move against the table and, at debug
 * level (EDDY_LOG_LEVEL=debug), logs it:
 *
 *     "<what> <who>: <from> -> <to>"        lease shard 3: free -> held
 *
 * A move the table does not have is a bug: it is logged at error level,
 * naming both states, and asserted. The setter does whatever else the
 * change entails (an info line, a counter, a timer).
 *
 *     enum shard_state { S_FREE, S_HELD, S_RELEASING };
 *     static const struct eddy_state shard_state_v[] = {
 *         [S_FREE] = {"free", EDDY_STATE_TO(S_HELD)},
 *         [S_HELD] = {"held", EDDY_STATE_TO(S_FREE) | EDDY_STATE_TO(S_RELEASING)},
 *         [S_RELEASING] = {"releasing", EDDY_STATE_TO(S_FREE)},
 *     };
 *     static const struct eddy_states shard_states = EDDY_STATES("lease shard", shard_state_v);
 *
 *     static void shard_set_state(struct lease_shard *s, uint32_t i, enum shard_state to)
 *     {
 *         eddy_state_move(&shard_states, s->st, to, "%" PRIu32, i);
 *         s->st = to;
 *     }
 *
 * The check costs a shift and a test; the trace, a call that finds the
 * debug level off.
 */
#ifndef EDDY_BASE_STATE_H
#define EDDY_BASE_STATE_H

#include <stdbool.h>
#include <stdint.h>

/* One state: its name in the trace, and the states it may move to. */
struct eddy_state {
    const char *name;
    uint32_t to; /* EDDY_STATE_TO(a) | EDDY_STATE_TO(b) ... */
};

/* A component's states (at most 32), indexed by its enum. */
struct eddy_states {
    const char *what; /* "lease shard", "consumer": the trace's first word(s) */
    const struct eddy_state *v;
    unsigned n;
};

#define EDDY_STATE_TO(s) (UINT32_C(1) << (s))
#define EDDY_STATES(what, table)                                                                   \
    {                                                                                              \
        (what), (table), (unsigned)(sizeof(table) / sizeof((table)[0]))                            \
    }

/* Whether the table has the move from -> to. */
bool eddy_state_allowed(const struct eddy_states *s, unsigned from, unsigned to);
/* State k's name; "?" when the table has none. */
const char *eddy_state_name(const struct eddy_states *s, unsigned k);

/* Check and trace the move from -> to. who: printf-style, the instance
 * (a shard number, a queue), or NULL. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
void eddy_state_move(const struct eddy_states *s, unsigned from, unsigned to, const char *who,
                     ...);

#endif
