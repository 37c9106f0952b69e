/*
 * record.h - the keys and items eddy keeps in its DynamoDB table.
 *
 * Pure renderers and parsers: no I/O. Records are rendered as DynamoDB
 * JSON text ({"_pk":{"S":"machine/1"}, ...}), sent as is; items read back
 * are cJSON trees in the same attribute value JSON, as the DynamoDB client
 * hands them over.
 *
 * The layout is github.com/a-h/stream's (store.go with WithCodecTag("json")),
 * so either program can read and advance an entity the other wrote:
 *
 *   item            _pk              _sk                          attributes
 *   state           <ns>/<id>        STATE                        state fields, _namespace,
 *   state version   <ns>/<id>        STATE/<seq>                  _seq, _typ = ns, _ts, _date
 *   inbound event   <ns>/<id>        INBOUND/<seq>/<idx>/<type>   event fields, _namespace,
 *                                                                 _seq, _typ = type, _ts,
 *                                                                 _date, _eid
 *   refused event   <ns>/<id>        REJECTED/<seq>/<idx>/<type>  as inbound, and _rejected
 *   repair          <ns>/<id>        REPAIR/<seq>                 the repaired state's fields,
 *                                                                 as inbound, _typ = eddy.Repair
 *   outbound event  <ns>/<id>        OUTBOUND/<seq>/<idx>/<type>  event fields, as inbound
 *                                                                 without _eid
 *   dedupe marker   <ns>/<id>        EVENT/<event id>             _seq, _ttl
 *   outbox entry    #outbox/<shard>  <ns>/<id>/<seq:020>/<idx:04> see below
 *   relay lease     #lease           outbox/<shard>, member/<o>   owner, expires (members: _ttl)
 *   dead outbox     #outbox-dead/<s> as the outbox entry          the entry, error, attempts, _ts
 *
 * As in a-h/stream, <seq> and <idx> in INBOUND/OUTBOUND/STATE sort keys are
 * plain decimals (not padded), _seq and _ts are N, _ts is unix seconds and
 * _date is RFC 3339 UTC of the same second ("2006-01-02T15:04:05Z").
 * eddy adds _eid (the source event id) to inbound records; a-h/stream ignores
 * attributes it does not know. Records only eddy understands (refusals,
 * repairs) go under the REJECTED/ and REPAIR/ prefixes, which a-h/stream's
 * QueryWithHistory skips (it reads STATE, INBOUND and OUTBOUND only): a
 * refusal under INBOUND/ would read there as an applied event, a repair as
 * an event it has no reader for. They share the step's _seq and idx
 * numbering with the inbound records, and each has its dedupe marker.
 * Earlier versions of eddy wrote both under INBOUND/ (a refusal with
 * _rejected, a repair with _typ eddy.Repair); the parsers read both forms.
 *
 * An outbox entry is a ready EventBridge PutEvents entry plus what the relay
 * needs to order, group and delete it, so the relay never splits a key:
 *   _namespace (S), _id (S, the entity id), _seq (N), _idx (N),
 *   _typ (S, the outbound type), _eid (S, the stable event id, equal to _sk),
 *   _ts (N), _tms (N, unix ms: the commit time, for relay latency and lag), _date (S),
 *   DetailType (S), Detail (S, JSON text), and when known Source (S),
 *   Resources (L of S), TraceHeader (S), EventBusName (S) - named as in
 *   PutEvents.
 * Detail is the event's JSON object plus a member "eddy" holding
 *   {"entity", "namespace", "seq", "idx", "id"}, id being the stable
 *   "<ns>/<id>/<seq>/<idx>", so consumers can drop duplicates. An outbound
 *   event may not have a member "eddy" of its own.
 *
 * Reserved names: state and event fields may not use the attribute names
 * eddy writes (_pk, _sk, _seq, _typ, _namespace, _ts, _date, _eid, _rejected,
 * _ttl, _tms) nor "_eddy"; a renderer refuses them rather than overwrite them.
 * Parsers drop exactly these names and keep every other field.
 */
#ifndef EDDY_CORE_RECORD_H
#define EDDY_CORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "base/err.h"

/* Limits: ids, DynamoDB keys, items and transactions, EventBridge entries. */
#define EDDY_RECORD_ID_MAX 1024

/* The Source of an entity's outbound events when none is configured or
 * recorded: "eddy.<ns>". The one place it is spelled. */
#define EDDY_RECORD_SOURCE_MAX (EDDY_RECORD_ID_MAX + 8)
void eddy_record_default_source(const char *ns, char out[EDDY_RECORD_SOURCE_MAX]);
#define EDDY_RECORD_PK_MAX 2048
#define EDDY_RECORD_SK_MAX 1024
#define EDDY_RECORD_ITEM_MAX (400 * 1024)
#define EDDY_RECORD_TXN_ITEMS_MAX 100
#define EDDY_RECORD_TXN_BYTES_MAX (4 * 1024 * 1024)
#define EDDY_RECORD_ENTRY_MAX (256 * 1024)
/* PutEvents' TraceHeader: longer ones are cut to this. */
#define EDDY_RECORD_TRACE_HEADER_MAX 500
/* EDDY_DEDUPE_TTL's default: 14 days. */
#define EDDY_RECORD_DEDUPE_TTL_S (14 * 24 * 3600)

#define EDDY_RECORD_STATE_SK "STATE"
/* The _typ of a repair record (eddy replay --repair). */
#define EDDY_RECORD_REPAIR_TYPE "eddy.Repair"
#define EDDY_RECORD_LEASE_PK "#lease"

/*
 * Refuse an empty value, one over 1,024 bytes, one with control characters
 * or one that is not UTF-8. what names it in the error ("entity id").
 */
EDDY_MUST_USE eddy_err eddy_record_check_id(const char *what, const char *s,
                                            struct eddy_error *err);

/*
 * The longest ids the keys leave room for: each id must fit the longest
 * sort key eddy builds from it, under DynamoDB's 1,024 bytes.
 *   entity id   the outbox entry's <ns>/<id>/<seq:020>/<idx:04>: 1,024 - 27
 *               - the namespace's length (990 bytes for "machine")
 *   event id    the dedupe marker's EVENT/<id>: 1,018 bytes
 *   event type  OUTBOUND/<seq>/<idx>/<type> with a 19-digit seq and a
 *               4-digit idx: 990 bytes (inbound and outbound types alike)
 * A namespace leaves room for an entity id of at least one byte: at most
 * 996 bytes; it may not start with '#' (eddy's own #outbox and #lease
 * partitions).
 */
#define EDDY_RECORD_OUTBOX_SK_EXTRA 27 /* "/" "/" 20 digits "/" 4 digits */
#define EDDY_RECORD_EVENT_ID_MAX (EDDY_RECORD_SK_MAX - 6)
#define EDDY_RECORD_TYPE_MAX (EDDY_RECORD_SK_MAX - 34)
#define EDDY_RECORD_NS_MAX (EDDY_RECORD_SK_MAX - EDDY_RECORD_OUTBOX_SK_EXTRA - 1)
/* The longest entity id under namespace ns (0 when ns leaves no room). */
size_t eddy_record_entity_id_max(const char *ns);
/* eddy_record_check_id plus the limits above; errors name the key that sets them. */
EDDY_MUST_USE eddy_err eddy_record_check_entity_id(const char *ns, const char *id,
                                                   struct eddy_error *err);
EDDY_MUST_USE eddy_err eddy_record_check_event_id(const char *id, struct eddy_error *err);
EDDY_MUST_USE eddy_err eddy_record_check_type(const char *what, const char *type,
                                              struct eddy_error *err);
EDDY_MUST_USE eddy_err eddy_record_check_namespace(const char *ns, struct eddy_error *err);

/* Keys (malloc'd; free them). They do not check lengths; the renderers do. */
char *eddy_record_pk(const char *ns, const char *id);
char *eddy_record_sk_state_version(int64_t seq);
char *eddy_record_sk_inbound(int64_t seq, size_t idx, const char *type);
char *eddy_record_sk_outbound(int64_t seq, size_t idx, const char *type);
char *eddy_record_sk_rejected(int64_t seq, size_t idx, const char *type);
char *eddy_record_sk_repair(int64_t seq);
char *eddy_record_sk_event(const char *event_id);
char *eddy_record_outbox_pk(uint32_t shard);
/* The dead-letter partition of a shard's outbox. */
char *eddy_record_outbox_dead_pk(uint32_t shard);
char *eddy_record_outbox_sk(const char *ns, const char *id, int64_t seq, size_t idx);
char *eddy_record_lease_sk(uint32_t shard);
/* The outbox shard of an entity: fnv1a32(_pk) % shards (shards > 0). */
uint32_t eddy_record_shard(const char *pk, uint32_t shards);

/* Which entity a commit writes, at which _seq and time. */
struct eddy_record_entity {
    const char *ns;
    const char *id;
    int64_t seq;    /* the new _seq */
    int64_t now_s;  /* unix seconds, for _ts and _date */
    int64_t now_ms; /* unix ms for an outbox entry's _tms; 0: now_s * 1000 */
};

/* Optional PutEvents fields carried from the inbound message or configuration. */
struct eddy_record_publish {
    const char *source;       /* NULL: the relay fills in its configured Source */
    const cJSON *resources;   /* array of strings, or NULL */
    const char *trace_header; /* X-Ray header, or NULL */
    const char *event_bus;    /* EventBusName, or NULL for the relay's */
};
/*
 * The records, rendered as DynamoDB JSON text (the attribute map, braces
 * included) with their DynamoDB item size: written once, sent as is (a
 * transaction item's item_json). Each renderer checks ids and names,
 * converts the JSON exactly (attr.h) and checks key lengths and the 400 KB
 * item limit; errors name the entity, the field or the limit. out comes
 * empty, or holding a spare block to write into (eddy_record_spare_text).
 * On error out holds no record; eddy_record_text_release gives back a
 * block it may still hold.
 */
struct eddy_record_outbox_fields;
struct eddy_record_text {
    char *json; /* owned */
    size_t len;
    size_t cap;  /* bytes allocated at json */
    size_t size; /* DynamoDB's size of the item (eddy_attr_item_size) */
    /* An outbox entry's fields as rendered (owned), else NULL: what the
     * publisher needs on the commit path, so it reads nothing back. */
    struct eddy_record_outbox_fields *outbox;
};
/* One allocation holding every string. */
struct eddy_record_outbox_fields {
    const char *pk, *sk; /* the row's keys; sk is the stable event id too */
    const char *ns, *id;
    int64_t seq, idx;
    int64_t ts, tms;    /* _ts, _tms */
    const char *type;   /* DetailType */
    const char *detail; /* Detail, eddy's metadata included */
    /* Detail as the row's text holds it: a JSON string, quotes included,
     * at json[detail_at .. detail_at + detail_json_len) of the row (the
     * eddy_record_text it came with), so a publisher need not escape it
     * again. */
    size_t detail_at, detail_json_len;
    const char *source;           /* NULL when not recorded */
    const char *trace_header;     /* NULL when not recorded */
    const char *event_bus;        /* NULL when not recorded */
    const char *const *resources; /* nresources strings */
    size_t nresources;
};
/* A copy in one allocation (free() frees it). */
struct eddy_record_outbox_fields *
eddy_record_outbox_fields_dup(const struct eddy_record_outbox_fields *f);
void eddy_record_text_cleanup(struct eddy_record_text *t);

/*
 * Blocks to render records into. A step's records are freed together when
 * its transaction returns, often a hundred at once, and glibc's per-thread
 * cache keeps seven blocks of a size: the rest of those frees, and the
 * mallocs of the next step, took malloc's slow paths. A renderer given a
 * text whose json is a spare block (eddy_record_spare_text) writes into it;
 * eddy_record_text_release gives a record's block back.
 */
#define EDDY_RECORD_SPARE_MAX 128
struct eddy_record_spare {
    char *block[EDDY_RECORD_SPARE_MAX];
    size_t n;
};
void eddy_record_spare_cleanup(struct eddy_record_spare *s);
/* An empty text holding a spare block when s has one, else all zero. */
struct eddy_record_text eddy_record_spare_text(struct eddy_record_spare *s);
/* eddy_record_text_cleanup, keeping t's block in s when it is a block of
 * EDDY_JW_BLOCK bytes and s has room. */
void eddy_record_text_release(struct eddy_record_text *t, struct eddy_record_spare *s);
EDDY_MUST_USE eddy_err eddy_record_render_state(const struct eddy_record_entity *e,
                                                const cJSON *state, bool version,
                                                struct eddy_record_text *out,
                                                struct eddy_error *err);
/*
 * The state item keeping the stored types of the attributes in keep (the
 * stored item, or eddy_attr_item_keepers of it): B, SS, NS and BS survive a
 * commit (see eddy_attr_write_members_kept). keep NULL: render_state.
 */
EDDY_MUST_USE eddy_err eddy_record_render_state_kept(const struct eddy_record_entity *e,
                                                     const cJSON *state, const cJSON *keep,
                                                     bool version, struct eddy_record_text *out,
                                                     struct eddy_error *err);
/* rejected: the machine's reason (the record goes under REJECTED/), or NULL
 * when the event was applied (INBOUND/). */
EDDY_MUST_USE eddy_err eddy_record_render_inbound(const struct eddy_record_entity *e, size_t idx,
                                                  const char *type, const char *event_id,
                                                  const cJSON *data, const char *rejected,
                                                  struct eddy_record_text *out,
                                                  struct eddy_error *err);
EDDY_MUST_USE eddy_err eddy_record_render_outbound(const struct eddy_record_entity *e, size_t idx,
                                                   const char *type, const cJSON *data,
                                                   struct eddy_record_text *out,
                                                   struct eddy_error *err);
/* A repair record (REPAIR/<seq>) holding the repaired state's fields. */
EDDY_MUST_USE eddy_err eddy_record_render_repair(const struct eddy_record_entity *e,
                                                 const char *event_id, const cJSON *state,
                                                 struct eddy_record_text *out,
                                                 struct eddy_error *err);
/* ttl_unix_s: when DynamoDB may delete the marker (now + EDDY_DEDUPE_TTL). */
EDDY_MUST_USE eddy_err eddy_record_render_dedupe(const struct eddy_record_entity *e,
                                                 const char *event_id, int64_t ttl_unix_s,
                                                 struct eddy_record_text *out,
                                                 struct eddy_error *err);
EDDY_MUST_USE eddy_err eddy_record_render_outbox(const struct eddy_record_entity *e,
                                                 uint32_t shards, size_t idx, const char *type,
                                                 const cJSON *data,
                                                 const struct eddy_record_publish *pub,
                                                 struct eddy_record_text *out,
                                                 struct eddy_error *err);
EDDY_MUST_USE eddy_err eddy_record_render_lease(uint32_t shard, const char *owner,
                                                int64_t expires_ms, struct eddy_record_text *out,
                                                struct eddy_error *err);
/* An emitted event's history record and outbox entry together: its fields
 * are checked once, by the history record (the commit path's way). */
EDDY_MUST_USE eddy_err eddy_record_render_emitted(
    const struct eddy_record_entity *e, uint32_t shards, size_t idx, const char *type,
    const cJSON *data, const struct eddy_record_publish *pub, struct eddy_record_text *history,
    struct eddy_record_text *outbox, struct eddy_error *err);

/* A state item -> the state's JSON (reserved attributes dropped) and _seq. */
EDDY_MUST_USE eddy_err eddy_record_parse_state(const cJSON *item, cJSON **state, int64_t *seq,
                                               struct eddy_error *err);

enum eddy_record_kind {
    EDDY_RECORD_STATE,
    EDDY_RECORD_STATE_VERSION,
    EDDY_RECORD_INBOUND,
    EDDY_RECORD_OUTBOUND,
    EDDY_RECORD_DEDUPE,
    EDDY_RECORD_OTHER,
};

/* One item of an entity's partition, for history and replay. Refusals and
 * repairs, in either form, are of kind EDDY_RECORD_INBOUND. */
struct eddy_record_history {
    enum eddy_record_kind kind;
    int64_t seq;          /* _seq */
    int64_t idx;          /* from the INBOUND/OUTBOUND sort key; 0 otherwise */
    int64_t ts;           /* _ts, 0 when absent */
    const char *type;     /* _typ (borrowed from the item), NULL when absent */
    const char *event_id; /* _eid, NULL when absent (records written by a-h/stream) */
    const char *rejected; /* _rejected, NULL when the event was applied */
    bool repair;          /* a repair record (REPAIR/<seq>, or INBOUND/ with _typ eddy.Repair) */
    cJSON *data;          /* the fields without reserved names (owned) */
};
/* Classify and read item; borrowed strings live as long as item. */
EDDY_MUST_USE eddy_err eddy_record_parse_history(const cJSON *item, struct eddy_record_history *out,
                                                 struct eddy_error *err);
void eddy_record_history_cleanup(struct eddy_record_history *h);

/* An outbox entry as the relay reads it; strings borrowed from the item. */
struct eddy_record_outbox {
    const char *pk, *sk; /* to delete it */
    const char *ns, *id;
    int64_t seq, idx;
    const char *type, *event_id;
    const char *detail_type, *detail;
    const char *source;       /* NULL when not recorded */
    const char *trace_header; /* NULL when not recorded */
    const char *event_bus;    /* NULL when not recorded */
    const cJSON *resources;   /* the L attribute value's array, or NULL */
};
EDDY_MUST_USE eddy_err eddy_record_parse_outbox(const cJSON *item, struct eddy_record_outbox *out,
                                                struct eddy_error *err);
/* owner borrowed from item. */
EDDY_MUST_USE eddy_err eddy_record_parse_lease(const cJSON *item, const char **owner,
                                               int64_t *expires_ms, struct eddy_error *err);

/*
 * Size checks (attr.h's item size). what names the item in the error
 * ("state item of machine/1"). check_txn takes the totals of one
 * TransactWriteItems call: its items and its request's bytes (the JSON text
 * the DynamoDB client refuses over 4 MB, always more than DynamoDB's
 * aggregate item size, whose limit is 4 MB too).
 */
EDDY_MUST_USE eddy_err eddy_record_check_item_size(const cJSON *item, const char *what,
                                                   size_t *size, struct eddy_error *err);
EDDY_MUST_USE eddy_err eddy_record_check_txn(size_t items, size_t bytes, struct eddy_error *err);

#endif
