/*
 * apply.h - one event through a machine, done one way: the processor runs
 * events with it and `eddy replay` runs the stored ones again with it, so
 * what replay compares is what the processor did.
 *
 * eddy_apply copies the state (state_copy, or save + load), seeds the rng
 * from the event id (eddy_rng_seed_bytes), runs process() with the data, or
 * {} when the event has none, and normalises the outcome: anything but
 * EDDY_PROCESS_OK and EDDY_PROCESS_REJECTED is EDDY_PROCESS_FAILED; a
 * refusal without a reason is "rejected by the machine", a failure without
 * one "the machine failed". Data that is not a JSON object fails without
 * running the machine.
 */
#ifndef EDDY_CORE_APPLY_H
#define EDDY_CORE_APPLY_H

#include <cjson/cJSON.h>

#include "base/err.h"
#include "core/machine.h"

struct eddy_applied {
    enum eddy_outcome outcome;
    void *state; /* on EDDY_PROCESS_OK the new state, the caller's to free; else NULL */
    char reason[EDDY_MACHINE_REASON_MAX]; /* "" on EDDY_PROCESS_OK */
};

/*
 * Apply the event (type, event_id, data) to state, collecting what the
 * machine emits into emit (reset first). EDDY_EMACHINE, with the detail,
 * when the state cannot be copied; otherwise EDDY_OK and out filled.
 */
EDDY_MUST_USE eddy_err eddy_apply(const struct eddy_machine *m, const void *state, const char *type,
                                  const char *event_id, const cJSON *data, struct eddy_emit *emit,
                                  struct eddy_applied *out, struct eddy_error *err);

#endif
