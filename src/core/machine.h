/*
 * machine.h (core) - finding, loading and checking machines, and the
 * collector behind eddy_emit().
 *
 * A machine is picked by a spec string (--machine / EDDY_MACHINE):
 *   - a value containing '/' or ending in ".so" is a shared object path: it is
 *     dlopen()ed and its EDDY_MACHINE_SYMBOL ("eddy_machine_entry") called;
 *   - any other value is a name: the table given to eddy_main() is searched
 *     for a machine of that name or, failing that, of that namespace.
 * libeddy has no machine of its own: the eddy binary passes the slot
 * machine from main.c.
 * Whatever the source, the table is checked (ABI version, name, required
 * functions) before eddy uses it.
 *
 * This module does not run machines; the processor does, on the emit
 * collector declared here.
 */
#ifndef EDDY_CORE_MACHINE_H
#define EDDY_CORE_MACHINE_H

#include <stddef.h>

#include "base/err.h"
#include "eddy/machine.h"

/* A loaded or found machine. dl is the dlopen() handle, NULL when linked in. */
struct eddy_machine_ref {
    const struct eddy_machine *machine;
    void *dl;
};

/* Refuse a table with another ABI version, no name or a missing function. */
EDDY_MUST_USE eddy_err eddy_machine_check(const struct eddy_machine *m, struct eddy_error *err);
/* The machine in machines[0..n) named name, else the one of that namespace,
 * else NULL. */
const struct eddy_machine *eddy_machine_find(const struct eddy_named_machine *machines, size_t n,
                                             const char *name);
/* dlopen path and fetch its table. EDDY_ECONFIG with the reason on failure. */
EDDY_MUST_USE eddy_err eddy_machine_load(const char *path, struct eddy_machine_ref *ref,
                                         struct eddy_error *err);
/* Resolve a spec as described above. */
EDDY_MUST_USE eddy_err eddy_machine_select(const char *spec,
                                           const struct eddy_named_machine *machines, size_t n,
                                           struct eddy_machine_ref *ref, struct eddy_error *err);
/* dlclose when loaded. The machine must no longer be used. */
void eddy_machine_release(struct eddy_machine_ref *ref);

/*
 * The machine's own spelling of its state's fields: the saved form of a
 * fresh state, state_save(state_new(id)). NULL when either fails (names are
 * then taken as stored). The caller frees it.
 */
cJSON *eddy_machine_state_model(const struct eddy_machine *m, const char *id);
/*
 * Load a stored state: json's member names are first matched to model's
 * spelling as a-h/stream's decoder matches them (core/names.h; json is
 * changed in place), then state_load runs. EDDY_EPARSE with the machine's
 * reason (or the ambiguous names) on failure.
 */
EDDY_MUST_USE eddy_err eddy_machine_state_load(const struct eddy_machine *m, cJSON *json,
                                               const cJSON *model, void **state,
                                               struct eddy_error *err);

/* Copy a state with state_copy, or state_save + state_load. NULL on failure. */
void *eddy_machine_state_copy(const struct eddy_machine *m, const void *state,
                              struct eddy_error *err);

/* The most events one process() call may emit. */
#define EDDY_EMIT_MAX 100

struct eddy_emitted {
    char *type;       /* NUL-terminated, in a buffer the slot keeps for the next event */
    size_t type_size; /* the buffer's size */
    cJSON *data;      /* an object */
};

/* What process() emitted, in order. Filled through eddy_emit(). Reset
 * between events, it keeps its slots' type buffers: emitting allocates
 * nothing for a type that fits the one emitted there before. */
struct eddy_emit {
    struct eddy_emitted *v;
    size_t n;
    size_t cap;
};

void eddy_emit_init(struct eddy_emit *e);
/* Free the events and forget them; the collector may be reused. */
void eddy_emit_reset(struct eddy_emit *e);
void eddy_emit_cleanup(struct eddy_emit *e);

#endif
