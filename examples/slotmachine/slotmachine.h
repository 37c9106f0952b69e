/*
 * slotmachine.h - the example machine: a one-armed bandit.
 *
 * A port of the slot machine that ships with github.com/a-h/stream, keeping
 * its namespace ("machine") and the JSON names of its state, so a machine
 * written by either program can be read and advanced by the other:
 *
 *   {"id":"1","balance":0,"payout":4,"winChance":0.18,"games":0,"wins":0,
 *    "losses":0,"isCoinInSlot":false}
 *
 * Inbound events:
 *   InsertCoin {}           rejected "cannot insert coin" when a coin is
 *                           already in the slot, else the coin goes in.
 *   PullHandle {"userId"}   rejected "cannot pull handle" without a coin;
 *                           else takes the coin and plays: a win (when
 *                           eddy_rng_float64(rng) < winChance) adds 1 to wins
 *                           and takes payout-1 from balance, a loss adds 1 to
 *                           losses and 1 to balance; games grows by 1.
 * Outbound events of a pull, in this order:
 *   GameResult {"machineId", "win"}   always;
 *   Payout {"userId", "amount"}       on a win, amount = payout.
 *
 * Bad input is a refusal, not a failure: an unknown event type ("unknown event
 * type X") and malformed data ("PullHandle: userId must be a string") are
 * rejected with the reason, so they are recorded with the event and replay
 * sees the same refusal. EDDY_PROCESS_FAILED is kept for what cannot happen
 * with correct code (eddy_emit refusing an event).
 */
#ifndef EDDY_EXAMPLES_SLOTMACHINE_H
#define EDDY_EXAMPLES_SLOTMACHINE_H

#include <stdbool.h>
#include <stdint.h>

#include "eddy/machine.h"

/* The state, public so tests and tools can look inside. */
struct eddy_slotmachine_state {
    char *id;
    int64_t balance;
    int64_t payout;
    double win_chance;
    int64_t games;
    int64_t wins;
    int64_t losses;
    bool is_coin_in_slot;
};

/* The machine table (namespace "machine"), selected as "slotmachine". */
extern const struct eddy_machine eddy_slotmachine;

#endif
