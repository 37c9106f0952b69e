/*
 * busv2.h - the relay's publisher on an EventBridge Custom Event Bus (an
 * event-busv2 ARN in EDDY_EVENT_BUS), through svc/eventbridge2.h.
 *
 * Each entry goes out with SystemMetadata.EventGroupId = the entity
 * ("<namespace>/<id>") and DeduplicationId = its stable event id
 * ("<namespace>/<id>/<seq>/<idx>"), both through eddy_eb2_system_id (hashed
 * when over 128 characters). A FIFO subscriber then gets each entity's
 * events in order, and an entry published again (after a crash between
 * PutEvents and the outbox delete, or by a sweep overlapping a slow
 * publisher) within the bus's deduplication window is answered
 * DEDUPLICATED, which counts as published, and is not delivered twice.
 * Calls take up to 100 entries and 1 MiB (each entry counted as the
 * classic bus counts it, plus its two ids), and several entries of one
 * entity may share a call: the bus keeps their order. An entry over the
 * API's limits on its fields (eddy_eb2_entry_check: Source, DetailType,
 * Resources) is dead before it joins a call. There is no TraceHeader in
 * this API; an entry's is dropped.
 */
#ifndef EDDY_RELAY_BUSV2_H
#define EDDY_RELAY_BUSV2_H

#include "relay/relay.h"

/* client is a struct eddy_eb2 *. */
extern const struct eddy_relay_bus eddy_relay_bus_v2;

#endif
