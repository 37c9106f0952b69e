/*
 * machine.c - the machine registry and the emit collector (see machine.h).
 *
 * This file does not run machines and knows nothing of DynamoDB. It only
 * finds a machine table (linked in or in a shared object), checks
 * it, and collects what process() emits.
 */
#include "core/machine.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "core/names.h"

eddy_err eddy_machine_check(const struct eddy_machine *m, struct eddy_error *err)
{
    if (m == NULL)
        return eddy_error_set(err, EDDY_ECONFIG, "machine table is NULL");
    if (m->abi_version != EDDY_MACHINE_ABI)
        return eddy_error_set(err, EDDY_ECONFIG,
                              "machine ABI version %d, this eddy supports version %d",
                              m->abi_version, EDDY_MACHINE_ABI);
    if (m->name == NULL || m->name[0] == '\0')
        return eddy_error_set(err, EDDY_ECONFIG, "machine has no name (namespace)");
    for (const char *p = m->name; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '/')
            return eddy_error_set(err, EDDY_ECONFIG,
                                  "machine name \"%s\": control characters and '/' are not "
                                  "allowed in a namespace",
                                  m->name);
    }
    const char *missing = NULL;
    if (m->state_new == NULL)
        missing = "state_new";
    else if (m->state_load == NULL)
        missing = "state_load";
    else if (m->state_save == NULL)
        missing = "state_save";
    else if (m->state_free == NULL)
        missing = "state_free";
    else if (m->process == NULL)
        missing = "process";
    if (missing)
        return eddy_error_set(err, EDDY_ECONFIG, "machine \"%s\" has no %s function", m->name,
                              missing);
    return EDDY_OK;
}

const struct eddy_machine *eddy_machine_find(const struct eddy_named_machine *machines, size_t n,
                                             const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (machines[i].machine && machines[i].name && strcmp(machines[i].name, name) == 0)
            return machines[i].machine;
    }
    for (size_t i = 0; i < n; i++) {
        const struct eddy_machine *m = machines[i].machine;
        if (m && m->name && strcmp(m->name, name) == 0)
            return m;
    }
    return NULL;
}

eddy_err eddy_machine_load(const char *path, struct eddy_machine_ref *ref, struct eddy_error *err)
{
    ref->machine = NULL;
    ref->dl = NULL;
    /* RTLD_LOCAL keeps two machines from interposing each other's symbols;
     * RTLD_NOW reports a missing symbol here rather than mid-event. */
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL)
        return eddy_error_set(err, EDDY_ECONFIG, "cannot load machine %s: %s", path, dlerror());
    /* POSIX sanctions this conversion for dlsym results. */
    eddy_machine_entry_fn entry;
    void *sym = dlsym(dl, EDDY_MACHINE_SYMBOL);
    memcpy(&entry, &sym, sizeof entry);
    if (sym == NULL) {
        eddy_error_set(err, EDDY_ECONFIG, "machine %s does not export %s()", path,
                       EDDY_MACHINE_SYMBOL);
        goto fail;
    }
    const struct eddy_machine *m = entry();
    if (eddy_machine_check(m, err) != EDDY_OK) {
        char inner[EDDY_ERROR_DETAIL_MAX];
        snprintf(inner, sizeof inner, "%s", eddy_error_text(err));
        eddy_error_set(err, EDDY_ECONFIG, "machine %s: %s", path, inner);
        goto fail;
    }
    ref->machine = m;
    ref->dl = dl;
    return EDDY_OK;
fail:
    dlclose(dl);
    return EDDY_ECONFIG;
}

static int is_path(const char *spec)
{
    size_t n = strlen(spec);
    return strchr(spec, '/') != NULL || (n > 3 && strcmp(spec + n - 3, ".so") == 0);
}

eddy_err eddy_machine_select(const char *spec, const struct eddy_named_machine *machines, size_t n,
                             struct eddy_machine_ref *ref, struct eddy_error *err)
{
    ref->machine = NULL;
    ref->dl = NULL;
    if (spec == NULL || spec[0] == '\0')
        return eddy_error_set(err, EDDY_ECONFIG,
                              "no machine chosen: set EDDY_MACHINE or --machine to a name "
                              "(e.g. slotmachine) or a shared object path");
    if (is_path(spec))
        return eddy_machine_load(spec, ref, err);
    const struct eddy_machine *m = eddy_machine_find(machines, n, spec);
    if (m == NULL)
        return eddy_error_set(err, EDDY_ECONFIG, "no machine named \"%s\"", spec);
    eddy_err rc = eddy_machine_check(m, err);
    if (rc == EDDY_OK)
        ref->machine = m;
    return rc;
}

void eddy_machine_release(struct eddy_machine_ref *ref)
{
    if (ref->dl)
        dlclose(ref->dl);
    ref->dl = NULL;
    ref->machine = NULL;
}

cJSON *eddy_machine_state_model(const struct eddy_machine *m, const char *id)
{
    void *fresh = m->state_new(id ? id : "");
    if (fresh == NULL)
        return NULL;
    cJSON *model = m->state_save(fresh);
    m->state_free(fresh);
    return model;
}

eddy_err eddy_machine_state_load(const struct eddy_machine *m, cJSON *json, const cJSON *model,
                                 void **state, struct eddy_error *err)
{
    *state = NULL;
    eddy_err rc = eddy_names_fold(json, model, err);
    if (rc)
        return rc;
    char why[EDDY_MACHINE_ERR_MAX] = "";
    if (m->state_load(json, state, why, sizeof why) != 0 || *state == NULL) {
        *state = NULL; /* a machine that fails keeps nothing for us to free */
        return eddy_error_set(err, EDDY_EPARSE, "%s", why[0] ? why : "state_load failed");
    }
    return EDDY_OK;
}

void *eddy_machine_state_copy(const struct eddy_machine *m, const void *state,
                              struct eddy_error *err)
{
    if (m->state_copy) {
        void *copy = m->state_copy(state);
        if (copy == NULL)
            eddy_error_set(err, EDDY_EMACHINE, "%s: state_copy failed", m->name);
        return copy;
    }
    cJSON *json = m->state_save(state);
    if (json == NULL) {
        eddy_error_set(err, EDDY_EMACHINE, "%s: state_save failed", m->name);
        return NULL;
    }
    void *copy = NULL;
    char why[EDDY_MACHINE_ERR_MAX] = "";
    if (m->state_load(json, &copy, why, sizeof why) != 0) {
        eddy_error_set(err, EDDY_EMACHINE, "%s: saved state does not load: %s", m->name, why);
        copy = NULL;
    }
    cJSON_Delete(json);
    return copy;
}

void eddy_emit_init(struct eddy_emit *e)
{
    e->v = NULL;
    e->n = 0;
    e->cap = 0;
}

void eddy_emit_reset(struct eddy_emit *e)
{
    for (size_t i = 0; i < e->n; i++) {
        cJSON_Delete(e->v[i].data);
        e->v[i].data = NULL;
    }
    e->n = 0;
}

void eddy_emit_cleanup(struct eddy_emit *e)
{
    eddy_emit_reset(e);
    for (size_t i = 0; i < e->cap; i++)
        free(e->v[i].type);
    free(e->v);
    eddy_emit_init(e);
}

int eddy_emit(struct eddy_emit *e, const char *type, cJSON *data)
{
    if (data == NULL)
        data = cJSON_CreateObject();
    if (e == NULL || type == NULL || type[0] == '\0' || !cJSON_IsObject(data) ||
        e->n >= EDDY_EMIT_MAX) {
        cJSON_Delete(data);
        return -1;
    }
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 4;
        e->v = eddy_realloc(e->v, cap * sizeof *e->v);
        memset(e->v + e->cap, 0, (cap - e->cap) * sizeof *e->v);
        e->cap = cap;
    }
    struct eddy_emitted *em = &e->v[e->n];
    size_t len = strlen(type);
    if (len + 1 > em->type_size) {
        free(em->type);
        em->type_size = len + 1 < 32 ? 32 : len + 1;
        em->type = eddy_malloc(em->type_size);
    }
    memcpy(em->type, type, len + 1);
    em->data = data;
    e->n++;
    return 0;
}
