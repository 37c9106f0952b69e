/*
 * busv2.c - the Custom Event Bus as a relay bus (see busv2.h): the relay's
 * entries become eventbridgev2 entries with their two ids, taken from the
 * outbox rows, and the v2 results become the relay's per-entry results
 * (DEDUPLICATED is accepted).
 */
#include "relay/busv2.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "svc/eventbridge2.h"

struct ids {
    char group[EDDY_EB2_ID_MAX + 1];
    char dedup[EDDY_EB2_ID_MAX + 1];
};

/* The entity "<ns>/<id>" and the stable event id "<ns>/<id>/<seq>/<idx>"
 * (the Detail's eddy.id), each as a system id. */
static void ids_of(const struct eddy_record_outbox *row, struct ids *out)
{
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    eddy_buf_putf(&b, "%s/%s", row->ns ? row->ns : "", row->id ? row->id : "");
    eddy_eb2_system_id(eddy_buf_cstr(&b), out->group);
    eddy_buf_putf(&b, "/%" PRId64 "/%" PRId64, row->seq, row->idx);
    eddy_eb2_system_id(eddy_buf_cstr(&b), out->dedup);
    eddy_buf_cleanup(&b);
}

static struct eddy_eb2_entry v2_entry(const struct eddy_eb_entry *e, const struct ids *ids)
{
    /* EventBusName and TraceHeader have no place in this API */
    return (struct eddy_eb2_entry){e->source,     e->detail_type, e->detail,  e->resources,
                                   e->nresources, e->time_s,      ids->group, ids->dedup};
}

static size_t v2_entry_size(const struct eddy_eb_entry *entry, const struct eddy_record_outbox *row)
{
    struct ids ids;
    ids_of(row, &ids);
    struct eddy_eb2_entry v = v2_entry(entry, &ids);
    return eddy_eb2_entry_size(&v);
}

static eddy_err v2_entry_check(const struct eddy_eb_entry *entry,
                               const struct eddy_record_outbox *row, struct eddy_error *err)
{
    struct ids ids;
    ids_of(row, &ids);
    struct eddy_eb2_entry v = v2_entry(entry, &ids);
    return eddy_eb2_entry_check(&v, err);
}

struct v2_call {
    eddy_eb_put_cb cb;
    void *ud;
    struct eddy_eb2_entry *ents;
    struct ids *ids;
};

static void v2_call_free(struct v2_call *c)
{
    free(c->ents);
    free(c->ids);
    free(c);
}

/* The v2 results as the relay reads them: an event id when accepted
 * (published or deduplicated), else the error code and message. */
static void on_v2_put(eddy_err err, struct eddy_eb2_put_result *res,
                      const struct eddy_aws_reply *reply, void *ud)
{
    struct v2_call *c = ud;
    struct eddy_eb_put_result out = {0};
    if (err == EDDY_OK) {
        out.entries = eddy_calloc(res->n ? res->n : 1, sizeof *out.entries);
        out.n = res->n;
        out.failed_count = res->failed_count;
        for (size_t i = 0; i < res->n; i++) {
            struct eddy_eb2_entry_result *in = &res->entries[i];
            struct eddy_eb_entry_result *o = &out.entries[i];
            if (in->ok) {
                o->event_id = in->event_id ? in->event_id : eddy_strdup("");
                in->event_id = NULL;
            } else {
                o->error_code = in->error_code;
                o->error_message = in->error_message;
                in->error_code = in->error_message = NULL;
            }
        }
    }
    eddy_eb2_put_result_cleanup(res);
    c->cb(err, &out, reply, c->ud); /* the callback owns out */
    v2_call_free(c);
}

static eddy_err v2_put(void *client, const struct eddy_eb_entry *entries,
                       const struct eddy_record_outbox *const *rows, size_t n, eddy_eb_put_cb cb,
                       void *ud, struct eddy_error *err)
{
    if (rows == NULL)
        return eddy_error_set(err, EDDY_EINVAL, "Custom Event Bus: the outbox rows are needed");
    struct v2_call *c = eddy_calloc(1, sizeof *c);
    c->cb = cb;
    c->ud = ud;
    c->ents = eddy_calloc(n ? n : 1, sizeof *c->ents);
    c->ids = eddy_calloc(n ? n : 1, sizeof *c->ids);
    for (size_t i = 0; i < n; i++) {
        ids_of(rows[i], &c->ids[i]);
        c->ents[i] = v2_entry(&entries[i], &c->ids[i]);
    }
    eddy_err rc = eddy_eb2_put_events(client, c->ents, n, on_v2_put, c, NULL, err);
    if (rc)
        v2_call_free(c);
    return rc;
}

static bool v2_accepted(const struct eddy_eb_entry_result *res)
{
    return res->error_code == NULL || res->error_code[0] == '\0';
}

/* Codes that no retry changes; the others (InternalFailure, throttling)
 * are retried up to the attempts. */
static bool v2_refused_for_good(const char *code)
{
    static const char *const codes[] = {"InvalidInputException", "ValidationException",
                                        "InvalidArgument", "MalformedDetail"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

const struct eddy_relay_bus eddy_relay_bus_v2 = {
    .name = "custom (event-busv2)",
    .max_entries = EDDY_EB2_MAX_ENTRIES,
    .max_bytes = EDDY_EB2_MAX_BYTES,
    .entity_shares_call = true,
    .put = v2_put,
    .entry_size = v2_entry_size,
    .entry_check = v2_entry_check,
    .accepted = v2_accepted,
    .refused_for_good = v2_refused_for_good,
};
