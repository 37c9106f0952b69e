/*
 * machine.h - the state machine API: what a user of eddy writes.
 *
 * A machine is a table of functions (struct eddy_machine) over an opaque state
 * type. eddy loads the state of an entity, hands each inbound event to
 * process(), stores the new state together with the inbound event and the
 * events the machine emitted, all in one DynamoDB transaction. The machine
 * never talks to AWS, never reads the clock and never blocks.
 *
 * A machine reaches eddy in one of two ways:
 *   - linked in: a program calls eddy_main() (eddy/eddy.h) with a table of
 *     machines and picks one by name (EDDY_MACHINE=slotmachine);
 *   - loaded: a shared object named with --machine ./x.so or
 *     EDDY_MACHINE=./x.so exports EDDY_MACHINE_SYMBOL, a function returning
 *     its table (see EDDY_MACHINE_EXPORT below).
 * eddy refuses a table whose abi_version differs from EDDY_MACHINE_ABI.
 *
 * Determinism contract. Replay (`eddy replay <id>`) runs the stored inbound
 * events through the machine again and compares the result with what is
 * stored, so process() must be a pure function of (state, event, rng):
 *   - no clock, no rand(), no environment, no I/O, no global mutable state;
 *   - all randomness comes from the rng argument. eddy seeds it for every
 *     event from the source event id: eddy_rng_seed_bytes(rng, ev->id,
 *     strlen(ev->id)), i.e. seed = FNV-1a 64 of the id bytes, state = four
 *     SplitMix64 outputs, generator = xoshiro256**, eddy_rng_float64 =
 *     (next >> 11) * 2^-53 (see eddy/rng.h). The same event id always draws
 *     the same numbers, on every host and in every replay;
 *   - emitted events depend on the same inputs only, and come out in the
 *     order emitted.
 *
 * State copies. eddy processes each event on a fresh copy of the state and
 * keeps the copy only when process() returns EDDY_PROCESS_OK, so a rejected
 * or failed event leaves no trace in the state. When state_copy is NULL,
 * eddy copies with state_save() followed by state_load(); a machine whose
 * state is cheap to clone may provide state_copy to skip the JSON round
 * trip. Either way process() may change the state freely before it refuses.
 *
 * JSON. State and event data are cJSON trees. Numbers that a double cannot
 * hold exactly (integers past 2^53, long decimals) arrive as cJSON Raw items
 * holding the literal decimal text; a machine that wants such numbers reads
 * valuestring, one that does not should refuse them with a reason. A machine
 * may emit Raw numbers too; eddy stores them as DynamoDB numbers verbatim.
 */
#ifndef EDDY_MACHINE_H
#define EDDY_MACHINE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "eddy/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever struct eddy_machine or the calling conventions change. */
#define EDDY_MACHINE_ABI 1

/* The largest reason text eddy passes to process() (bytes, with the NUL). */
#define EDDY_MACHINE_REASON_MAX 512
/* The largest error text eddy passes to state_load() (bytes, with the NUL). */
#define EDDY_MACHINE_ERR_MAX 512

enum eddy_outcome {
    /* The event was applied; the state and the emitted events are kept. */
    EDDY_PROCESS_OK = 0,
    /* A domain refusal ("cannot pull handle"): recorded with the reason,
     * the state is unchanged, emitted events are dropped. Replay sees the
     * same refusal. */
    EDDY_PROCESS_REJECTED = 1,
    /* A bug or an input the machine cannot make sense of: nothing is
     * recorded and the message goes to the failure policy. */
    EDDY_PROCESS_FAILED = 2,
};

/*
 * One inbound event, borrowed for the duration of process(). data holds the
 * names its producer gave it; events a-h/stream's default store recorded
 * carry Go field names (UserID), so a machine sharing a table with such a
 * program reads event fields as its decoder does: the exact name, else one
 * that matches without regard to case (the slot machine's event_field()).
 */
struct eddy_event {
    const char *type;  /* e.g. "PullHandle" */
    const char *id;    /* the source event id, the seed of the rng */
    const cJSON *data; /* the event's JSON (an object; never NULL) */
};

/*
 * The collector of outbound events. Opaque to machines; eddy owns it.
 * eddy_emit() takes ownership of data (which must be an object or NULL for
 * {}), also when it fails. It returns 0, or -1 when type is empty or data is
 * not an object; the machine should then return EDDY_PROCESS_FAILED.
 */
struct eddy_emit;
int eddy_emit(struct eddy_emit *e, const char *type, cJSON *data);

struct eddy_machine {
    int abi_version;  /* EDDY_MACHINE_ABI */
    const char *name; /* the namespace, e.g. "machine": _pk = "<name>/<id>" */

    /* The initial state of an entity never seen before. NULL on failure. */
    void *(*state_new)(const char *id);
    /*
     * Load a state saved by state_save() (or written by another program
     * sharing the table). On failure return -1 and write into err a text
     * that names the field, e.g. "balance: expected an integer".
     *
     * Names arrive in the machine's own spelling: before this is called,
     * eddy renames each stored member that matches a member of the saved
     * form of a fresh state (state_save(state_new(id))) only without regard
     * to case, as a-h/stream's decoder matches attributes to Go fields (its
     * default store writes Balance, IsCoinInSlot). An exact name wins.
     * Fields a fresh state does not save are matched only exactly.
     */
    int (*state_load)(const cJSON *json, void **state, char *err, size_t errlen);
    /* The state as a JSON object; the caller frees it. NULL on failure.
     * The tree is the caller's alone: eddy may build it in an arena freed
     * at once after use, so keep no part of it, nor any cJSON made during
     * the call. */
    cJSON *(*state_save)(const void *state);
    void (*state_free)(void *state);
    /* Optional: a deep copy of state, or NULL to use save + load. */
    void *(*state_copy)(const void *state);

    /*
     * Apply one event to state. On EDDY_PROCESS_REJECTED or _FAILED write
     * a short reason into reason (reasonlen bytes, NUL-terminated).
     */
    enum eddy_outcome (*process)(void *state, const struct eddy_event *ev, struct eddy_emit *emit,
                                 struct eddy_rng *rng, char *reason, size_t reasonlen);

    /*
     * Optional: the inbound event types the machine handles, ending with NULL.
     * When set, the worker treats a message of any other type as poison (sent
     * to the DLQ with "unknown event type X") instead of recording a refusal.
     * process() should still refuse an unknown type with a reason, for replay
     * and for callers that do not check.
     */
    const char *const *event_types;
};

/*
 * A machine linked into a program, as eddy_main_named() is given it:
 * --machine / EDDY_MACHINE picks it by name (when not NULL) or by its
 * namespace.
 */
struct eddy_named_machine {
    const char *name;
    const struct eddy_machine *machine;
};

/*
 * A shared object exports a function with this name and type; eddy resolves
 * it with dlsym() after dlopen(). Write EDDY_MACHINE_EXPORT(my_machine) once
 * in the machine's source file.
 */
#define EDDY_MACHINE_SYMBOL "eddy_machine_entry"
typedef const struct eddy_machine *(*eddy_machine_entry_fn)(void);
#define EDDY_MACHINE_EXPORT(table)                                                                 \
    __attribute__((visibility("default"))) const struct eddy_machine *eddy_machine_entry(void);    \
    const struct eddy_machine *eddy_machine_entry(void)                                            \
    {                                                                                              \
        return &(table);                                                                           \
    }

#ifdef __cplusplus
}
#endif

#endif
