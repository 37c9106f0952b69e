/*
 * config.h - eddy's configuration: environment variables (the ECS way) with
 * matching command-line flags.
 *
 * One table (EDDY_CONFIG_MAP) names every setting once: its variable, its
 * flag, its type, its default and its help text. --help is printed from it,
 * parsing reads it, and an invalid value fails at start with a message naming
 * the variable (or flag) it came from. Flags win over the environment.
 */
#ifndef EDDY_CLI_CONFIG_H
#define EDDY_CLI_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/err.h"

/* Types of a setting. */
enum eddy_config_type {
    EDDY_CFG_STR,       /* any string */
    EDDY_CFG_INT,       /* integer in [min, max] */
    EDDY_CFG_BOOL,      /* on/off, true/false, 1/0, yes/no */
    EDDY_CFG_ENUM,      /* one of a '|'-separated list */
    EDDY_CFG_SECS,      /* duration: integer seconds, or with a suffix s, m, h, d */
    EDDY_CFG_POINTER,   /* a JSON Pointer (RFC 6901) */
    EDDY_CFG_NAMESPACE, /* an entity namespace (core/record.h's rules) */
};

/* X(field, VARIABLE, flag, type, default, min, max, choices, help) */
#define EDDY_CONFIG_MAP(X)                                                                         \
    X(queue_url, "EDDY_QUEUE_URL", "queue-url", EDDY_CFG_STR, NULL, 0, 0, NULL,                    \
      "SQS queue to consume (required by worker)")                                                 \
    X(table, "EDDY_TABLE", "table", EDDY_CFG_STR, NULL, 0, 0, NULL, "DynamoDB table (required)")   \
    X(machine, "EDDY_MACHINE", "machine", EDDY_CFG_STR, NULL, 0, 0, NULL,                          \
      "built-in machine name (slotmachine) or path to a machine .so (required)")                   \
    X(ns, "EDDY_NAMESPACE", "namespace", EDDY_CFG_NAMESPACE, NULL, 0, 0, NULL,                     \
      "entity namespace (default: the machine's name)")                                            \
    X(entity_ptr, "EDDY_ENTITY_ID", "entity-id", EDDY_CFG_POINTER, "/detail/id", 0, 0, NULL,       \
      "JSON Pointer to the entity id in the message body")                                         \
    X(type_ptr, "EDDY_EVENT_TYPE", "event-type", EDDY_CFG_POINTER, "/detail-type", 0, 0, NULL,     \
      "JSON Pointer to the event type")                                                            \
    X(id_ptr, "EDDY_EVENT_ID", "event-id", EDDY_CFG_POINTER, "/id", 0, 0, NULL,                    \
      "JSON Pointer to the event id (the SQS MessageId when absent; unusable: poison)")            \
    X(data_ptr, "EDDY_EVENT_DATA", "event-data", EDDY_CFG_POINTER, "/detail", 0, 0, NULL,          \
      "JSON Pointer to the event data")                                                            \
    X(max_inflight, "EDDY_MAX_INFLIGHT", "max-inflight", EDDY_CFG_INT, "100", 1, 100000, NULL,     \
      "messages in flight at most")                                                                \
    X(pollers, "EDDY_POLLERS", "pollers", EDDY_CFG_INT, "0", 0, 1000, NULL,                        \
      "concurrent long polls (0: derived, max-inflight/10 clamped to 1..8)")                       \
    X(wait_seconds, "EDDY_WAIT_SECONDS", "wait-seconds", EDDY_CFG_INT, "20", 0, 20, NULL,          \
      "long-poll wait")                                                                            \
    X(visibility_timeout, "EDDY_VISIBILITY_TIMEOUT", "visibility-timeout", EDDY_CFG_SECS, "0", 0,  \
      43200, NULL, "visibility per message (0: the queue's)")                                      \
    X(coalesce_max, "EDDY_COALESCE_MAX", "coalesce-max", EDDY_CFG_INT, "16", 1, 100, NULL,         \
      "events of one entity per transaction")                                                      \
    X(max_commits, "EDDY_MAX_COMMITS", "max-commits", EDDY_CFG_INT, "4", 1, 1000, NULL,            \
      "TransactWriteItems calls in flight at once (fewer: more events per call)")                  \
    X(cache_entities, "EDDY_CACHE_ENTITIES", "cache-entities", EDDY_CFG_INT, "10000", 0, 10000000, \
      NULL, "cached entity states (LRU; 0 disables the cache)")                                    \
    X(on_reject, "EDDY_ON_REJECT", "on-reject", EDDY_CFG_ENUM, "record", 0, 0, "record|dlq|drop",  \
      "what to do with an event the machine rejects")                                              \
    X(on_poison, "EDDY_ON_POISON", "on-poison", EDDY_CFG_ENUM, NULL, 0, 0, "dlq|redrive|drop",     \
      "what to do with an undecodable message (default: dlq with a DLQ, else redrive)")            \
    X(dlq_url, "EDDY_DLQ_URL", "dlq-url", EDDY_CFG_STR, NULL, 0, 0, NULL,                          \
      "queue that poison messages are sent to")                                                    \
    X(drain_seconds, "EDDY_DRAIN_SECONDS", "drain-seconds", EDDY_CFG_SECS, "25", 1, 3600, NULL,    \
      "shutdown budget after SIGTERM or SIGINT; past it, exit 1")                                  \
    X(occ_retries, "EDDY_OCC_RETRIES", "occ-retries", EDDY_CFG_INT, "10", 0, 1000, NULL,           \
      "retries of a commit after a version conflict")                                              \
    X(breaker_probe_ms, "EDDY_BREAKER_PROBE_MS", "breaker-probe-ms", EDDY_CFG_INT, "250", 10,      \
      60000, NULL, "store down: first delay before probing DynamoDB (doubles per failed probe)")   \
    X(breaker_probe_max_ms, "EDDY_BREAKER_PROBE_MAX_MS", "breaker-probe-max-ms", EDDY_CFG_INT,     \
      "2000", 10, 600000, NULL, "store down: largest delay between probes")                        \
    X(dedupe_ttl, "EDDY_DEDUPE_TTL", "dedupe-ttl", EDDY_CFG_SECS, "14d", 60, 31536000, NULL,       \
      "how long dedupe markers live (DynamoDB TTL)")                                               \
    X(state_history, "EDDY_STATE_HISTORY", "state-history", EDDY_CFG_BOOL, "0", 0, 0, NULL,        \
      "also write each state version as STATE/<seq>")                                              \
    X(repair, "EDDY_REPAIR", "repair", EDDY_CFG_BOOL, "0", 0, 0, NULL,                             \
      "replay: write the recomputed state as the next version (a REPAIR/<seq> record)")            \
    X(replay_after, "EDDY_REPLAY_AFTER", "after", EDDY_CFG_INT, "0", 0, INT64_MAX, NULL,           \
      "replay: start from the state recorded at this seq, taking the records up to it as they "    \
      "are (0: from the start)")                                                                   \
    X(contradict, "EDDY_REPAIR_CONTRADICT", "contradict", EDDY_CFG_BOOL, "0", 0, 0, NULL,          \
      "replay --repair: repair even when the replayed events contradict recorded outbound ones")   \
    X(event_bus, "EDDY_EVENT_BUS", "event-bus", EDDY_CFG_STR, NULL, 0, 0, NULL,                    \
      "EventBridge bus name or ARN, or a Custom Event Bus ARN (event-busv2: entries carry the "    \
      "entity as EventGroupId and the event id as DeduplicationId) (required for the relay)")      \
    X(event_source, "EDDY_EVENT_SOURCE", "event-source", EDDY_CFG_STR, NULL, 0, 0, NULL,           \
      "Source of published events (default: eddy.<namespace>)")                                    \
    X(outbox_shards, "EDDY_OUTBOX_SHARDS", "outbox-shards", EDDY_CFG_INT, "8", 1, 1024, NULL,      \
      "outbox shards")                                                                             \
    X(relay, "EDDY_RELAY", "relay", EDDY_CFG_BOOL, "on", 0, 0, NULL,                               \
      "run the outbox relay in the worker")                                                        \
    X(relay_poll_ms, "EDDY_RELAY_POLL_MS", "relay-poll-ms", EDDY_CFG_INT, "1000", 10, 3600000,     \
      NULL, "shortest interval between two sweeps of an outbox shard")                             \
    X(outbox_grace, "EDDY_OUTBOX_GRACE", "outbox-grace", EDDY_CFG_SECS, "10", 0, 86400, NULL,      \
      "sweeps publish only outbox rows older than this")                                           \
    X(sweep_max, "EDDY_SWEEP_MAX", "sweep-max", EDDY_CFG_SECS, "30", 1, 3600, NULL,                \
      "longest interval between two sweeps of an empty outbox shard")                              \
    X(publish_attempts, "EDDY_PUBLISH_ATTEMPTS", "publish-attempts", EDDY_CFG_INT, "10", 1, 1000,  \
      NULL, "refusals of an outbox entry before it is moved to the dead letters")                  \
    X(lease_ms, "EDDY_LEASE_MS", "lease-ms", EDDY_CFG_INT, "40000", 1000, 3600000, NULL,           \
      "relay shard lease duration")                                                                \
    X(log_level, "EDDY_LOG_LEVEL", "log-level", EDDY_CFG_ENUM, "info", 0, 0,                       \
      "debug|info|warn|error", "log level")                                                        \
    X(log_format, "EDDY_LOG_FORMAT", "log-format", EDDY_CFG_ENUM, "json", 0, 0, "json|text",       \
      "log format")                                                                                \
    X(metrics, "EDDY_METRICS", "metrics", EDDY_CFG_ENUM, "emf", 0, 0, "emf|off",                   \
      "CloudWatch Embedded Metric Format lines on stdout")                                         \
    X(metrics_interval, "EDDY_METRICS_INTERVAL", "metrics-interval", EDDY_CFG_SECS, "60", 1,       \
      86400, NULL, "seconds between metric lines")                                                 \
    X(metrics_service, "EDDY_METRICS_SERVICE", "metrics-service", EDDY_CFG_STR, "eddy", 0, 0,      \
      NULL, "value of the metrics' Service dimension (e.g. the stack name)")                       \
    X(health_file, "EDDY_HEALTH_FILE", "health-file", EDDY_CFG_STR, NULL, 0, 0, NULL,              \
      "file the worker touches on progress and `eddy healthcheck` reads")                          \
    X(health_max_age, "EDDY_HEALTH_MAX_AGE", "health-max-age", EDDY_CFG_SECS, "60", 1, 86400,      \
      NULL, "healthcheck fails when the health file is older than this")

struct eddy_config {
#define EDDY_CFG_FIELD(field, var, flag, type, def, min, max, choices, help)                       \
    const char *field##_str;                                                                       \
    int64_t field;
    EDDY_CONFIG_MAP(EDDY_CFG_FIELD)
#undef EDDY_CFG_FIELD
    /* positional arguments left after flags (owned by argv) */
    int nargs;
    char **args;
};

/*
 * Fill cfg from the environment, then from flags in argv[first..argc).
 * Unknown flags and invalid values give EDDY_ECONFIG with a detail that names
 * the variable or flag. Strings are borrowed from environ/argv.
 */
EDDY_MUST_USE eddy_err eddy_config_load(struct eddy_config *cfg, int argc, char **argv, int first,
                                        struct eddy_error *err);

/* Print every setting with its variable, flag, default and help. */
void eddy_config_help(FILE *out);

#endif
