/*
 * envelope.h - decoding an SQS message body into the event it carries.
 *
 * The body is JSON (by default the envelope EventBridge delivers to a queue);
 * four JSON Pointers (RFC 6901) pick out the parts eddy needs:
 *
 *   entity id   default /detail/id    a string, or an integer number (used as
 *                                     its decimal text)
 *   event type  default /detail-type  a non-empty string
 *   event id    default /id           a non-empty string; when the pointer
 *                                     finds nothing, the SQS MessageId (a
 *                                     value there but not a non-empty string
 *                                     is poison, never replaced)
 *   event data  default /detail       an object
 *
 * Pointers are checked and split once, at start (eddy_envelope_spec_init):
 * a malformed one is a configuration error. A body that does not decode is
 * poison (EDDY_EPOISON): the detail text says exactly why, and the worker
 * sends it to the DLQ as the reason. The decoder never trusts the body: any
 * bytes at all give either an envelope or EDDY_EPOISON.
 *
 * The body is parsed with the exact JSON reader of base/json.h, so numbers
 * a double cannot hold (big integers, long decimals) reach the machine and
 * DynamoDB unrounded, as cJSON Raw items holding their text. The body's tree
 * lives only for the decode; the envelope keeps what eddy uses, the data
 * object and the three ids, copied into one allocation of exactly their
 * size (base/json.h), freed at once: a message waiting in hand costs that
 * and its body, not the whole tree.
 *
 * This is not a general JSON Pointer library: "-" (past the end of an array)
 * and indices with leading zeros find nothing, as RFC 6901 says.
 */
#ifndef EDDY_WORKER_ENVELOPE_H
#define EDDY_WORKER_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/err.h"
#include "base/json.h"

/* SQS's largest message body: 256 KiB. */
#define EDDY_ENVELOPE_BODY_MAX ((size_t)256 * 1024)
/* An upper bound of every id length below, in bytes (DynamoDB's sort key
 * limit); the limits a decode applies are the spec's, derived from the
 * longest key built from each id (core/record.h). */
#define EDDY_ENVELOPE_ID_MAX 1024
#define EDDY_ENVELOPE_TYPE_MAX 1024

#define EDDY_ENVELOPE_DEFAULT_ENTITY_ID "/detail/id"
#define EDDY_ENVELOPE_DEFAULT_EVENT_TYPE "/detail-type"
#define EDDY_ENVELOPE_DEFAULT_EVENT_ID "/id"
#define EDDY_ENVELOPE_DEFAULT_EVENT_DATA "/detail"

/* A parsed JSON Pointer: its reference tokens, unescaped (~1 -> /, ~0 -> ~). */
struct eddy_json_pointer {
    char *text; /* as configured, for error messages */
    char **tokens;
    size_t ntokens; /* 0: the whole document */
};

/*
 * Parse text as a JSON Pointer ("" or "/a/b~1c/0"). EDDY_ECONFIG, naming
 * the pointer and the fault, when it does not start with '/' or has a '~'
 * not followed by 0 or 1. On error p needs no cleanup.
 */
EDDY_MUST_USE eddy_err eddy_json_pointer_parse(struct eddy_json_pointer *p, const char *text,
                                               struct eddy_error *err);
void eddy_json_pointer_cleanup(struct eddy_json_pointer *p);
/* The value p refers to in root, or NULL when there is none. Borrowed. */
const cJSON *eddy_json_pointer_get(const struct eddy_json_pointer *p, const cJSON *root);

/* The four pointers, parsed once and shared by every decode, and the
 * longest ids they may find. */
struct eddy_envelope_spec {
    struct eddy_json_pointer entity_id;
    struct eddy_json_pointer event_type;
    struct eddy_json_pointer event_id;
    struct eddy_json_pointer event_data;
    char *ns;             /* the namespace the entity ids are limited for */
    size_t entity_id_max; /* the outbox sort key <ns>/<id>/<seq:020>/<idx:04> fits */
    size_t event_id_max;  /* EVENT/<id> fits */
    size_t type_max;      /* OUTBOUND/<seq>/<idx>/<type> fits */
};

/*
 * Parse the four pointers; NULL picks the default. EDDY_ECONFIG when one is
 * malformed, with the detail naming which ("event type pointer \"x\": ...").
 * On error s needs no cleanup.
 */
EDDY_MUST_USE eddy_err eddy_envelope_spec_init(struct eddy_envelope_spec *s, const char *entity_id,
                                               const char *event_type, const char *event_id,
                                               const char *event_data, struct eddy_error *err);
void eddy_envelope_spec_cleanup(struct eddy_envelope_spec *s);
/*
 * Limit entity ids to what namespace ns leaves room for in the outbox sort
 * key (990 bytes for "machine"). Until it is called the limit assumes an
 * empty namespace (997 bytes). The worker calls it with its namespace.
 */
void eddy_envelope_spec_namespace(struct eddy_envelope_spec *s, const char *ns);

/* One decoded message. The strings are NUL-terminated; they and the data
 * live in arena until eddy_envelope_cleanup. */
struct eddy_envelope {
    struct eddy_json_arena arena;
    const char *entity_id;       /* never empty, no control characters, valid UTF-8 */
    const char *event_type;      /* never empty, valid UTF-8 */
    const char *event_id;        /* never empty, valid UTF-8 */
    bool event_id_is_message_id; /* the MessageId stood in for the event id */
    const cJSON *data;           /* the object the data pointer found, copied whole (its key too)
                                    into arena (never cJSON_Delete it) */
};

/*
 * Decode len bytes of body (need not be NUL-terminated). message_id is the
 * SQS MessageId (may be NULL when the caller has none). On success env owns
 * what it holds until eddy_envelope_cleanup. On error env is left empty
 * (cleanup is still allowed) and the code is EDDY_EPOISON, with the reason
 * in err, e.g. "message body is 300000 bytes, over the 256 KB SQS message
 * limit" or "entity id (/detail/id) is missing".
 */
EDDY_MUST_USE eddy_err eddy_envelope_decode(struct eddy_envelope *env,
                                            const struct eddy_envelope_spec *spec, const char *body,
                                            size_t len, const char *message_id,
                                            struct eddy_error *err);
void eddy_envelope_cleanup(struct eddy_envelope *env);

#endif
