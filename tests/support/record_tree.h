/*
 * record_tree.h - the records of core/record.h as cJSON trees, for tests
 * that build items to seed a fake table or to compare against: each is the
 * product's text renderer, parsed. eddy itself sends the text.
 */
#ifndef EDDY_TESTS_RECORD_TREE_H
#define EDDY_TESTS_RECORD_TREE_H

#include "core/record.h"

/* Same arguments, checks and errors as eddy_record_render_*; on success
 * *item is the caller's to cJSON_Delete, on error NULL. */
EDDY_MUST_USE eddy_err record_build_state(const struct eddy_record_entity *e, const cJSON *state,
                                          bool version, cJSON **item, struct eddy_error *err);
EDDY_MUST_USE eddy_err record_build_state_kept(const struct eddy_record_entity *e,
                                               const cJSON *state, const cJSON *keep, bool version,
                                               cJSON **item, struct eddy_error *err);
EDDY_MUST_USE eddy_err record_build_inbound(const struct eddy_record_entity *e, size_t idx,
                                            const char *type, const char *event_id,
                                            const cJSON *data, const char *rejected, cJSON **item,
                                            struct eddy_error *err);
EDDY_MUST_USE eddy_err record_build_outbound(const struct eddy_record_entity *e, size_t idx,
                                             const char *type, const cJSON *data, cJSON **item,
                                             struct eddy_error *err);
EDDY_MUST_USE eddy_err record_build_repair(const struct eddy_record_entity *e, const char *event_id,
                                           const cJSON *state, cJSON **item,
                                           struct eddy_error *err);
EDDY_MUST_USE eddy_err record_build_dedupe(const struct eddy_record_entity *e, const char *event_id,
                                           int64_t ttl_unix_s, cJSON **item,
                                           struct eddy_error *err);
EDDY_MUST_USE eddy_err record_build_outbox(const struct eddy_record_entity *e, uint32_t shards,
                                           size_t idx, const char *type, const cJSON *data,
                                           const struct eddy_record_publish *pub, cJSON **item,
                                           struct eddy_error *err);
EDDY_MUST_USE eddy_err record_build_lease(uint32_t shard, const char *owner, int64_t expires_ms,
                                          cJSON **item, struct eddy_error *err);

#endif
