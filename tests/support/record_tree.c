/*
 * record_tree.c - record trees for tests: the renderers' text, parsed (see
 * record_tree.h).
 */
#include "record_tree.h"

#include <stdlib.h>

/* The tree of a rendered item; the text goes. */
static eddy_err to_tree(eddy_err rc, struct eddy_record_text *t, cJSON **item)
{
    *item = NULL;
    if (rc == EDDY_OK) {
        *item = cJSON_ParseWithLength(t->json, t->len);
        if (*item == NULL)
            abort(); /* the text was just written: only memory can fail here */
    }
    eddy_record_text_cleanup(t);
    return rc;
}

eddy_err record_build_state(const struct eddy_record_entity *e, const cJSON *state, bool version,
                            cJSON **item, struct eddy_error *err)
{
    struct eddy_record_text t = {0};
    return to_tree(eddy_record_render_state(e, state, version, &t, err), &t, item);
}

eddy_err record_build_state_kept(const struct eddy_record_entity *e, const cJSON *state,
                                 const cJSON *keep, bool version, cJSON **item,
                                 struct eddy_error *err)
{
    struct eddy_record_text t = {0};
    return to_tree(eddy_record_render_state_kept(e, state, keep, version, &t, err), &t, item);
}

eddy_err record_build_inbound(const struct eddy_record_entity *e, size_t idx, const char *type,
                              const char *event_id, const cJSON *data, const char *rejected,
                              cJSON **item, struct eddy_error *err)
{
    struct eddy_record_text t = {0};
    return to_tree(eddy_record_render_inbound(e, idx, type, event_id, data, rejected, &t, err), &t,
                   item);
}

eddy_err record_build_outbound(const struct eddy_record_entity *e, size_t idx, const char *type,
                               const cJSON *data, cJSON **item, struct eddy_error *err)
{
    struct eddy_record_text t = {0};
    return to_tree(eddy_record_render_outbound(e, idx, type, data, &t, err), &t, item);
}

eddy_err record_build_repair(const struct eddy_record_entity *e, const char *event_id,
                             const cJSON *state, cJSON **item, struct eddy_error *err)
{
    struct eddy_record_text t = {0};
    return to_tree(eddy_record_render_repair(e, event_id, state, &t, err), &t, item);
}

eddy_err record_build_dedupe(const struct eddy_record_entity *e, const char *event_id,
                             int64_t ttl_unix_s, cJSON **item, struct eddy_error *err)
{
    struct eddy_record_text t = {0};
    return to_tree(eddy_record_render_dedupe(e, event_id, ttl_unix_s, &t, err), &t, item);
}

eddy_err record_build_outbox(const struct eddy_record_entity *e, uint32_t shards, size_t idx,
                             const char *type, const cJSON *data,
                             const struct eddy_record_publish *pub, cJSON **item,
                             struct eddy_error *err)
{
    struct eddy_record_text t = {0};
    return to_tree(eddy_record_render_outbox(e, shards, idx, type, data, pub, &t, err), &t, item);
}

eddy_err record_build_lease(uint32_t shard, const char *owner, int64_t expires_ms, cJSON **item,
                            struct eddy_error *err)
{
    struct eddy_record_text t = {0};
    return to_tree(eddy_record_render_lease(shard, owner, expires_ms, &t, err), &t, item);
}
