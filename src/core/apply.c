/*
 * apply.c - one event through a machine (see apply.h).
 */
#include "core/apply.h"

#include <stdio.h>
#include <string.h>

#include "eddy/rng.h"

eddy_err eddy_apply(const struct eddy_machine *m, const void *state, const char *type,
                    const char *event_id, const cJSON *data, struct eddy_emit *emit,
                    struct eddy_applied *out, struct eddy_error *err)
{
    out->state = NULL;
    out->reason[0] = '\0';
    eddy_emit_reset(emit);
    if (data != NULL && !cJSON_IsObject(data)) {
        out->outcome = EDDY_PROCESS_FAILED;
        snprintf(out->reason, sizeof out->reason, "event data is not a JSON object");
        return EDDY_OK;
    }
    void *copy = eddy_machine_state_copy(m, state, err);
    if (copy == NULL)
        return EDDY_EMACHINE;
    cJSON *empty = data ? NULL : cJSON_CreateObject();
    struct eddy_event ev = {type, event_id, data ? data : empty};
    struct eddy_rng rng;
    eddy_rng_seed_bytes(&rng, event_id, strlen(event_id));
    enum eddy_outcome o = m->process(copy, &ev, emit, &rng, out->reason, sizeof out->reason);
    cJSON_Delete(empty);
    if (o == EDDY_PROCESS_OK) {
        out->outcome = o;
        out->state = copy;
        out->reason[0] = '\0';
        return EDDY_OK;
    }
    m->state_free(copy);
    out->outcome = o == EDDY_PROCESS_REJECTED ? o : EDDY_PROCESS_FAILED;
    if (out->reason[0] == '\0')
        snprintf(out->reason, sizeof out->reason, "%s",
                 o == EDDY_PROCESS_REJECTED ? "rejected by the machine" : "the machine failed");
    return EDDY_OK;
}
