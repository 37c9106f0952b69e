/*
 * cmd_store.c - the commands that read an entity back: get, history, replay
 * (and replay --repair).
 *
 *   eddy get <id>        {"id":..,"namespace":..,"seq":N,"state":{...}}; exit 1
 *                        when the entity has no state item
 *   eddy history <id>    one JSON object a line per item of the entity's
 *                        partition, in (seq, kind, idx) order:
 *                        {"kind":"inbound","seq":3,"idx":0,"type":..,"eventId":..,
 *                         "rejected":..,"ts":..,"sk":..,"data":{...}}
 *                        kinds: inbound, outbound, dedupe, state_version, state
 *   eddy replay <id>     re-runs the stored inbound events in (seq, idx) order
 *                        through the current machine, the rng seeded from each
 *                        stored event id (_eid), and prints one line per
 *                        difference:
 *                          {"diff":"state","stored":{..},"replayed":{..}}
 *                          {"diff":"outbound","seq":..,"idx":..,"stored":..,"replayed":..}
 *                          {"diff":"outcome","seq":..,"idx":..,"stored":..,"replayed":..}
 *                          {"diff":"not_reproducible","seq":..,"idx":..,"type":..,"reason":..}
 *                        then a summary {"id":..,"seq":..,"events":N,"equal":bool}
 *                        (with "after", "notReproducible" and "unchecked" when
 *                        they apply). Exit 0 when equal, 1 when different, 4
 *                        when a record is not reproducible, 3 on errors.
 *   --after <seq>        start from the state recorded at seq (a repair, a
 *                        STATE/<seq> version or the state item): the records up
 *                        to it are taken as they are.
 *   --repair             when different, writes the replayed state as the next
 *                        version in one transaction conditioned on the _seq the
 *                        replay read (OCC), with a REPAIR/<seq> record holding
 *                        the new state's fields and its dedupe marker. Exit 0
 *                        when repaired (or equal), 3 when the entity moved
 *                        meanwhile (run replay again). It refuses (exit 4) while
 *                        a record in the range is not reproducible, and (exit 5)
 *                        when the replayed outbound events contradict recorded
 *                        ones, unless --contradict.
 * Where the replay starts: at the last repair (authoritative: its fields are
 * the state at that point, and the steps before it are settled, history is
 * never rewritten), or at --after, or from the machine's initial state. An
 * inbound record without _eid was written by another program (a-h/stream):
 * replay cannot seed its rng, so it says so rather than invent a result, and
 * the steps after it, whose state is then unknown, are left unchecked.
 *
 * These are one-shot commands, so they run the loop until each call is done.
 * Ids come from the command line and from attributes, never from keys.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/json.h"
#include "cli/commands.h"
#include "cli/runtime.h"
#include "cli/sync.h"
#include "core/apply.h"
#include "core/commit.h"
#include "core/machine.h"
#include "core/record.h"

/* ---- shared setup ---- */

struct cmd {
    struct eddy_runtime rt;
    const char *name;
    const char *id;
    char *pk;
};

/* Open the runtime for the entity named on the command line, run the
 * command, close; the exit status. */
static int run_cmd(struct eddy_cli_context *ctx, const char *name,
                   int (*run)(struct cmd *c, const struct eddy_config *cfg))
{
    struct eddy_error err = {0};
    struct cmd c = {.name = name};
    if (ctx->cfg->nargs != 1) {
        fprintf(stderr, "eddy %s: expected one entity id (eddy %s <id>)\n", name, name);
        return 2;
    }
    c.id = ctx->cfg->args[0];
    if (eddy_record_check_id("entity id", c.id, &err) != EDDY_OK) {
        fprintf(stderr, "eddy %s: %s\n", name, eddy_error_text(&err));
        return 2;
    }
    if (eddy_runtime_init(&c.rt, ctx, &err) != EDDY_OK) {
        fprintf(stderr, "eddy %s: %s\n", name, eddy_error_text(&err));
        return err.code == EDDY_ECONFIG ? 2 : 3;
    }
    c.pk = eddy_record_pk(c.rt.ns, c.id);
    int code = run(&c, ctx->cfg);
    free(c.pk);
    if (eddy_runtime_cleanup(&c.rt) != 0 && code == 0)
        code = 3;
    return code;
}

/* ---- get ---- */

static int run_get(struct cmd *c, const struct eddy_config *cfg)
{
    const char *table = cfg->table_str;
    struct eddy_error err = {0};
    cJSON *key = cJSON_CreateObject();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(key, "_pk"), "S", c->pk);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(key, "_sk"), "S", EDDY_RECORD_STATE_SK);
    cJSON *item = NULL;
    eddy_err rc = eddy_sync_get_item(&c->rt, table, key, &item, &err);
    cJSON_Delete(key);
    if (rc != EDDY_OK) {
        fprintf(stderr, "eddy get: %s\n", eddy_error_text(&err));
        return 3;
    }
    if (item == NULL) {
        fprintf(stderr, "eddy get: %s has no state\n", c->pk);
        return 1;
    }
    cJSON *state = NULL;
    int64_t seq = 0;
    rc = eddy_record_parse_state(item, &state, &seq, &err);
    cJSON_Delete(item);
    if (rc != EDDY_OK) {
        fprintf(stderr, "eddy get: %s\n", eddy_error_text(&err));
        return 3;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "id", c->id);
    cJSON_AddStringToObject(out, "namespace", c->rt.ns);
    cJSON_AddNumberToObject(out, "seq", (double)seq);
    cJSON_AddItemToObject(out, "state", state);
    eddy_cli_print_json(out);
    return 0;
}

/* ---- history ---- */

struct rec {
    struct eddy_record_history h;
    const cJSON *item;
    char *unreadable; /* why the record does not parse (history shows it as such), or NULL */
};

static int kind_rank(enum eddy_record_kind k)
{
    static const int rank[] = {
        [EDDY_RECORD_INBOUND] = 0,       [EDDY_RECORD_OUTBOUND] = 1, [EDDY_RECORD_DEDUPE] = 2,
        [EDDY_RECORD_STATE_VERSION] = 3, [EDDY_RECORD_STATE] = 4,    [EDDY_RECORD_OTHER] = 5};
    return rank[k];
}

static int rec_cmp(const void *a, const void *b)
{
    const struct eddy_record_history *x = &((const struct rec *)a)->h;
    const struct eddy_record_history *y = &((const struct rec *)b)->h;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    if (kind_rank(x->kind) != kind_rank(y->kind))
        return kind_rank(x->kind) - kind_rank(y->kind);
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static const char *item_sk(const cJSON *item)
{
    const cJSON *sk =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(item, "_sk"), "S");
    return cJSON_IsString(sk) ? sk->valuestring : NULL;
}

/*
 * Parse and sort the items; *n of them. A record that does not parse stops
 * the parse with an error naming it, unless keep_unreadable: then it is kept
 * (sorted last) with the reason in unreadable, and the others go on.
 */
static eddy_err parse_records(const cJSON *items, bool keep_unreadable, struct rec **out, size_t *n,
                              struct eddy_error *err)
{
    size_t cap = (size_t)cJSON_GetArraySize(items);
    struct rec *v = eddy_calloc(cap ? cap : 1, sizeof *v);
    size_t k = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, items)
    {
        struct eddy_error perr = {0};
        eddy_err rc = eddy_record_parse_history(item, &v[k].h, &perr);
        if (rc != EDDY_OK) {
            const char *sk = item_sk(item);
            if (keep_unreadable) {
                memset(&v[k].h, 0, sizeof v[k].h);
                v[k].h.kind = EDDY_RECORD_OTHER;
                v[k].h.seq = INT64_MAX;
                v[k].unreadable = eddy_strdup(eddy_error_text(&perr));
                v[k++].item = item;
                continue;
            }
            eddy_error_set(err, rc, "record %.200s is unreadable: %s", sk ? sk : "without _sk",
                           eddy_error_text(&perr));
            for (size_t i = 0; i < k; i++) {
                eddy_record_history_cleanup(&v[i].h);
                free(v[i].unreadable);
            }
            free(v);
            return rc;
        }
        v[k++].item = item;
    }
    qsort(v, k, sizeof *v, rec_cmp);
    *out = v;
    *n = k;
    return EDDY_OK;
}

static void free_records(struct rec *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        eddy_record_history_cleanup(&v[i].h);
        free(v[i].unreadable);
    }
    free(v);
}

static const char *kind_name(enum eddy_record_kind k)
{
    static const char *const names[] = {"state",    "state_version", "inbound",
                                        "outbound", "dedupe",        "other"};
    return names[k];
}

static void add_opt_str(cJSON *o, const char *name, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, name, v);
}

static void print_record(const struct rec *r)
{
    cJSON *o = cJSON_CreateObject();
    if (r->unreadable) {
        cJSON_AddStringToObject(o, "kind", "unreadable");
        add_opt_str(o, "sk", item_sk(r->item));
        cJSON_AddStringToObject(o, "error", r->unreadable);
        eddy_cli_print_json(o);
        return;
    }
    cJSON_AddStringToObject(o, "kind", kind_name(r->h.kind));
    cJSON_AddNumberToObject(o, "seq", (double)r->h.seq);
    if (r->h.kind == EDDY_RECORD_INBOUND || r->h.kind == EDDY_RECORD_OUTBOUND)
        cJSON_AddNumberToObject(o, "idx", (double)r->h.idx);
    add_opt_str(o, "type", r->h.type);
    add_opt_str(o, "eventId", r->h.event_id);
    add_opt_str(o, "rejected", r->h.rejected);
    if (r->h.ts)
        cJSON_AddNumberToObject(o, "ts", (double)r->h.ts);
    const cJSON *sk =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r->item, "_sk"), "S");
    add_opt_str(o, "sk", cJSON_IsString(sk) ? sk->valuestring : NULL);
    if (r->h.data)
        cJSON_AddItemReferenceToObject(o, "data", r->h.data);
    eddy_cli_print_json(o);
}

static int run_history(struct cmd *c, const struct eddy_config *cfg)
{
    const char *table = cfg->table_str;
    struct eddy_error err = {0};
    cJSON *items = NULL;
    struct rec *v = NULL;
    size_t n = 0;
    if (eddy_sync_query_partition(&c->rt, table, c->pk, &items, &err) != EDDY_OK ||
        parse_records(items, true, &v, &n, &err) != EDDY_OK) {
        fprintf(stderr, "eddy history: %s\n", eddy_error_text(&err));
        cJSON_Delete(items);
        return 3;
    }
    size_t unreadable = 0;
    for (size_t i = 0; i < n; i++) {
        print_record(&v[i]);
        unreadable += v[i].unreadable != NULL;
    }
    if (unreadable)
        fprintf(stderr,
                "eddy history: %s: %zu unreadable record(s), shown as kind \"unreadable\"\n", c->pk,
                unreadable);
    free_records(v, n);
    cJSON_Delete(items);
    if (n == 0) {
        fprintf(stderr, "eddy history: %s has no records\n", c->pk);
        return 1;
    }
    return 0;
}

/* ---- replay ---- */

/* Exit statuses of replay (README, "Inspect, replay, repair"). */
enum {
    REPLAY_EQUAL = 0,
    REPLAY_DIFFERS = 1,
    REPLAY_ERROR = 3, /* a failed call, or the entity moved under a repair */
    REPLAY_NOT_REPRODUCIBLE = 4,
    REPLAY_CONTRADICTS = 5, /* --repair refused: it would contradict recorded outbound events */
};

struct replay {
    const struct eddy_machine *m;
    cJSON *model; /* the machine's spelling of its fields (core/names.h) */
    void *state;  /* NULL from a record that could not be reproduced on */
    struct eddy_emit emit;
    cJSON *outbound; /* replayed: [{"seq","idx","type","data"}] in order */
    int64_t start;   /* the replay starts from the state recorded at this seq (0: initial) */
    int64_t lost_at; /* seq of the first record not reproducible, INT64_MAX when none */
    int64_t lost_last;
    size_t events, foreign, unchecked, contradicts;
    bool differ;
    int64_t out_seq;
    int out_idx;
};

static void diff_line(struct replay *r, const char *what, int64_t seq, int64_t idx, cJSON *stored,
                      cJSON *replayed)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "diff", what);
    if (seq >= 0) {
        cJSON_AddNumberToObject(o, "seq", (double)seq);
        cJSON_AddNumberToObject(o, "idx", (double)idx);
    }
    if (stored && strcmp(what, "outbound") == 0)
        r->contradicts++;
    cJSON_AddItemToObject(o, "stored", stored ? stored : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "replayed", replayed ? replayed : cJSON_CreateNull());
    eddy_cli_print_json(o);
    r->differ = true;
}

static cJSON *str_or_null(const char *s)
{
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

/* A recorded state (a repair, a state version, the state item) as the machine loads it. */
static eddy_err load_recorded(struct replay *r, const struct rec *at, void **state,
                              struct eddy_error *err)
{
    cJSON *json = cJSON_Duplicate(at->h.data, true);
    struct eddy_error why;
    eddy_err rc = eddy_machine_state_load(r->m, json, r->model, state, &why);
    cJSON_Delete(json);
    if (rc)
        return eddy_error_set(err, EDDY_EPARSE,
                              "the state recorded at seq %" PRId64 " does not load: %s", at->h.seq,
                              why.detail);
    return EDDY_OK;
}

/*
 * An inbound record without a source event id was written by another
 * program (a-h/stream writes none): the rng cannot be seeded as it was, so
 * replay does not invent a result. From here the state is unknown.
 */
static void not_reproducible(struct replay *r, const struct rec *in)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "diff", "not_reproducible");
    cJSON_AddNumberToObject(o, "seq", (double)in->h.seq);
    cJSON_AddNumberToObject(o, "idx", (double)in->h.idx);
    cJSON_AddStringToObject(o, "type", in->h.type ? in->h.type : "");
    cJSON_AddStringToObject(o, "reason",
                            "no source event id (_eid): written by another program, "
                            "so the rng cannot be seeded as it was");
    eddy_cli_print_json(o);
    r->foreign++;
    if (r->lost_at == INT64_MAX)
        r->lost_at = in->h.seq;
    r->lost_last = in->h.seq;
    if (r->state) /* a machine's state_free need not take NULL */
        r->m->state_free(r->state);
    r->state = NULL;
}

/* Run one stored inbound event; compare its outcome with the stored one. */
static eddy_err replay_event(struct replay *r, const struct rec *in, struct eddy_error *err)
{
    if (in->h.event_id == NULL) {
        not_reproducible(r, in);
        return EDDY_OK;
    }
    if (r->state == NULL) { /* after a record not reproducible: nothing to run it on */
        r->unchecked++;
        return EDDY_OK;
    }
    r->events++;
    struct eddy_applied a;
    eddy_err rc = eddy_apply(r->m, r->state, in->h.type ? in->h.type : "", in->h.event_id,
                             in->h.data, &r->emit, &a, err);
    if (rc != EDDY_OK)
        return rc;
    const char *now = a.outcome == EDDY_PROCESS_OK ? NULL : a.reason;
    if ((now == NULL) != (in->h.rejected == NULL) || a.outcome == EDDY_PROCESS_FAILED)
        diff_line(r, "outcome", in->h.seq, in->h.idx, str_or_null(in->h.rejected),
                  a.outcome == EDDY_PROCESS_FAILED ? cJSON_CreateString("failed")
                                                   : str_or_null(now));
    if (a.outcome != EDDY_PROCESS_OK)
        return EDDY_OK;
    r->m->state_free(r->state);
    r->state = a.state;
    if (in->h.seq != r->out_seq) {
        r->out_seq = in->h.seq;
        r->out_idx = 0;
    }
    for (size_t j = 0; j < r->emit.n; j++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "seq", (double)in->h.seq);
        cJSON_AddNumberToObject(o, "idx", r->out_idx++);
        cJSON_AddStringToObject(o, "type", r->emit.v[j].type);
        cJSON_AddItemToObject(o, "data", cJSON_Duplicate(r->emit.v[j].data, true));
        cJSON_AddItemToArray(r->outbound, o);
    }
    return EDDY_OK;
}

static cJSON *event_json(const char *type, const cJSON *data)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type ? type : "");
    cJSON_AddItemToObject(o, "data", data ? cJSON_Duplicate(data, true) : cJSON_CreateObject());
    return o;
}

/* Whether stored outbound record x is compared: after the start, before the state was lost. */
static bool compared(const struct replay *r, const struct rec *x)
{
    return x->h.kind == EDDY_RECORD_OUTBOUND && x->h.seq > r->start && x->h.seq < r->lost_at;
}

/* Stored outbound records (v, in order) against the replayed ones. */
static void compare_outbound(struct replay *r, const struct rec *v, size_t n)
{
    const cJSON *rep = r->outbound->child;
    size_t i = 0;
    while (i < n || rep) {
        while (i < n && !compared(r, &v[i]))
            i++;
        const struct rec *st = i < n ? &v[i] : NULL;
        if (st == NULL && rep == NULL)
            break;
        int64_t rs = rep ? (int64_t)cJSON_GetObjectItem(rep, "seq")->valuedouble : INT64_MAX;
        int64_t ri = rep ? (int64_t)cJSON_GetObjectItem(rep, "idx")->valuedouble : 0;
        int64_t ss = st ? st->h.seq : INT64_MAX, si = st ? st->h.idx : 0;
        bool take_st = st && (ss < rs || (ss == rs && si <= ri));
        bool take_rep = rep && (rs < ss || (rs == ss && ri <= si));
        cJSON *sj = take_st ? event_json(st->h.type, st->h.data) : NULL;
        cJSON *rj = take_rep ? event_json(cJSON_GetObjectItem(rep, "type")->valuestring,
                                          cJSON_GetObjectItem(rep, "data"))
                             : NULL;
        if (sj && rj && eddy_json_equal(sj, rj)) {
            cJSON_Delete(sj);
            cJSON_Delete(rj);
        } else {
            diff_line(r, "outbound", take_st ? ss : rs, take_st ? si : ri, sj, rj);
        }
        if (take_st)
            i++;
        if (take_rep)
            rep = rep->next;
    }
}

/* The stored state item, or NULL. */
static const struct rec *state_rec(const struct rec *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i].h.kind == EDDY_RECORD_STATE)
            return &v[i];
    }
    return NULL;
}

/* The stored state, normalised through the machine like the replayed one. */
static cJSON *stored_state(struct replay *r, const struct rec *st)
{
    if (st == NULL)
        return NULL;
    void *loaded = NULL;
    struct eddy_error ignored;
    if (load_recorded(r, st, &loaded, &ignored) != EDDY_OK)
        return cJSON_Duplicate(st->h.data, true);
    cJSON *json = r->m->state_save(loaded);
    r->m->state_free(loaded);
    return json;
}

/*
 * Where the replay starts. Everything up to the last repair is settled (a
 * repair accepted what came before it), and so is everything up to
 * --after: the replay starts from the state recorded there, a repair, a
 * state version (STATE/<seq>) or the state item, and never guesses one.
 */
static eddy_err replay_start(struct replay *r, const char *id, int64_t after, const struct rec *v,
                             size_t n, struct eddy_error *err)
{
    const struct rec *from = NULL;
    for (size_t i = 0; i < n; i++) {
        if (v[i].h.kind == EDDY_RECORD_INBOUND && v[i].h.repair && v[i].h.seq > after)
            from = &v[i];
    }
    for (size_t i = 0; i < n && from == NULL && after > 0; i++) {
        const struct rec *x = &v[i];
        if (x->h.seq == after && (x->h.repair || x->h.kind == EDDY_RECORD_STATE_VERSION ||
                                  x->h.kind == EDDY_RECORD_STATE))
            from = x;
    }
    if (from == NULL && after > 0)
        return eddy_error_set(err, EDDY_EINVAL,
                              "no state is recorded at seq %" PRId64 " (a repair, a STATE/%" PRId64
                              " version or the state item at that seq): replay cannot start "
                              "after it",
                              after, after);
    r->start = from ? from->h.seq : 0;
    if (from)
        return load_recorded(r, from, &r->state, err);
    r->state = r->m->state_new(id);
    if (r->state == NULL)
        return eddy_error_set(err, EDDY_EMACHINE, "%s: state_new failed", r->m->name);
    return EDDY_OK;
}

static void print_summary(const struct replay *r, const char *id, int64_t seq)
{
    cJSON *sum = cJSON_CreateObject();
    cJSON_AddStringToObject(sum, "id", id);
    cJSON_AddNumberToObject(sum, "seq", (double)seq);
    cJSON_AddNumberToObject(sum, "events", (double)r->events);
    cJSON_AddBoolToObject(sum, "equal", !r->differ && r->foreign == 0);
    if (r->start > 0)
        cJSON_AddNumberToObject(sum, "after", (double)r->start);
    if (r->foreign) {
        cJSON_AddNumberToObject(sum, "notReproducible", (double)r->foreign);
        cJSON_AddNumberToObject(sum, "unchecked", (double)r->unchecked);
    }
    eddy_cli_print_json(sum);
}

/* Render the repair's items: state (+ version), the REPAIR/<seq> record, its marker. */
static eddy_err repair_items(const struct eddy_config *cfg, const cJSON *state, const cJSON *keep,
                             const struct eddy_record_entity *re, const char *eid,
                             struct eddy_record_text *items, size_t *n, struct eddy_error *err)
{
    eddy_err rc = eddy_record_render_state_kept(re, state, keep, false, &items[0], err);
    if (rc == EDDY_OK)
        rc = eddy_record_render_repair(re, eid, state, &items[1], err);
    if (rc == EDDY_OK)
        rc = eddy_record_render_dedupe(re, eid, re->now_s + cfg->dedupe_ttl, &items[2], err);
    *n = 3;
    if (rc == EDDY_OK && cfg->state_history) {
        rc = eddy_record_render_state_kept(re, state, keep, true, &items[3], err);
        *n = 4;
    }
    return rc;
}

/* keep: the stored state item, whose binary and set attributes keep their types. */
static int write_repair(struct cmd *c, const struct eddy_config *cfg, const cJSON *state,
                        const cJSON *keep, int64_t seq, size_t contradicts)
{
    struct eddy_error err = {0};
    int64_t now_ms = eddy_clock_unix_ms(eddy_clock_system());
    struct eddy_record_entity re = {c->rt.ns, c->id, seq + 1, now_ms / 1000, now_ms};
    char eid[64];
    snprintf(eid, sizeof eid, "repair-%" PRId64 "-%" PRId64, seq + 1, now_ms);
    struct eddy_record_text items[4] = {{0}};
    size_t n = 0;
    struct eddy_commit commit;
    eddy_commit_init(&commit, cfg->table_str);
    cJSON *prev = eddy_commit_prev_new(seq);
    eddy_err rc = repair_items(cfg, state, keep, &re, eid, items, &n, &err);
    if (rc == EDDY_OK) {
        struct eddy_ddb_txn_item t[4] = {0};
        for (size_t i = 0; i < n; i++) {
            if (i == 0)
                eddy_commit_state_put(&commit, prev, &t[i]);
            else
                eddy_commit_new_put(&commit, &t[i]);
            t[i].item_json = items[i].json;
        }
        rc = eddy_sync_transact_write(&c->rt, t, n, &err);
    }
    for (size_t i = 0; i < 4; i++)
        eddy_record_text_cleanup(&items[i]);
    cJSON_Delete(prev);
    eddy_commit_cleanup(&commit);
    if (rc == EDDY_ETXN_CANCELED) {
        fprintf(stderr,
                "eddy replay: %s changed since the replay read it at seq %" PRId64
                "; run replay again\n",
                c->pk, seq);
        return REPLAY_ERROR;
    }
    if (rc != EDDY_OK) {
        fprintf(stderr, "eddy replay: repair failed: %s\n", eddy_error_text(&err));
        return REPLAY_ERROR;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddTrueToObject(o, "repaired");
    cJSON_AddStringToObject(o, "id", c->id);
    cJSON_AddNumberToObject(o, "seq", (double)(seq + 1));
    cJSON_AddStringToObject(o, "eventId", eid);
    if (contradicts)
        cJSON_AddNumberToObject(o, "contradicts", (double)contradicts);
    eddy_cli_print_json(o);
    return REPLAY_EQUAL;
}

/* What --repair may do after the comparison; the exit status when it may not. */
static int repair_refused(const struct cmd *c, const struct eddy_config *cfg,
                          const struct replay *r)
{
    if (r->foreign) {
        fprintf(stderr,
                "eddy replay: not repaired: %zu inbound record(s) of %s (seq %" PRId64 "..%" PRId64
                ") carry no source event id; they were written by another program "
                "and eddy cannot re-run them. To accept the history up to them as it is, repair "
                "from the state recorded after them: --after %" PRId64 " (that needs a state "
                "recorded at seq %" PRId64 ")\n",
                r->foreign, c->pk, r->lost_at, r->lost_last, r->lost_last, r->lost_last);
        return REPLAY_NOT_REPRODUCIBLE;
    }
    if (r->contradicts && !cfg->contradict) {
        fprintf(stderr,
                "eddy replay: not repaired: the replayed events contradict %zu recorded "
                "outbound event(s) of %s (the \"outbound\" lines above with a stored event), "
                "which may have been published already; a repair does not retract them. Pass "
                "--contradict to repair anyway\n",
                r->contradicts, c->pk);
        return REPLAY_CONTRADICTS;
    }
    return 0;
}

/* Replay v into r; then compare and print. Returns the exit status. */
static int replay_records(struct cmd *c, const struct eddy_config *cfg, struct replay *r,
                          const struct rec *v, size_t n)
{
    struct eddy_error err = {0};
    for (size_t i = 0; i < n; i++) {
        const struct rec *x = &v[i];
        if (x->h.kind != EDDY_RECORD_INBOUND || x->h.seq <= r->start || x->h.repair)
            continue;
        if (replay_event(r, x, &err) != EDDY_OK) {
            fprintf(stderr, "eddy replay: %s: %s\n", c->pk, eddy_error_text(&err));
            return REPLAY_ERROR;
        }
    }
    compare_outbound(r, v, n);
    const struct rec *st = state_rec(v, n);
    int64_t seq = st ? st->h.seq : 0;
    cJSON *stored = stored_state(r, st);
    cJSON *replayed = r->state ? r->m->state_save(r->state) : NULL;
    if (r->state && (stored == NULL || !eddy_json_equal(stored, replayed)))
        diff_line(r, "state", -1, -1, cJSON_Duplicate(stored, true),
                  cJSON_Duplicate(replayed, true));
    print_summary(r, c->id, seq);
    int code = r->foreign ? REPLAY_NOT_REPRODUCIBLE : r->differ ? REPLAY_DIFFERS : REPLAY_EQUAL;
    if (cfg->repair && (r->foreign || r->differ)) {
        code = repair_refused(c, cfg, r);
        if (code == 0)
            code = write_repair(c, cfg, replayed, st ? st->item : NULL, seq, r->contradicts);
    }
    cJSON_Delete(stored);
    cJSON_Delete(replayed);
    return code;
}

static int run_replay(struct cmd *c, const struct eddy_config *cfg)
{
    struct eddy_error err = {0};
    cJSON *items = NULL;
    struct rec *v = NULL;
    size_t n = 0;
    if (eddy_sync_query_partition(&c->rt, cfg->table_str, c->pk, &items, &err) != EDDY_OK ||
        parse_records(items, false, &v, &n, &err) != EDDY_OK) {
        fprintf(stderr, "eddy replay: %s: %s; nothing replayed\n", c->pk, eddy_error_text(&err));
        cJSON_Delete(items);
        return REPLAY_ERROR;
    }
    int code = REPLAY_DIFFERS;
    struct replay r = {.m = c->rt.m, .out_seq = -1, .lost_at = INT64_MAX};
    r.model = eddy_machine_state_model(r.m, c->id);
    if (n == 0) {
        fprintf(stderr, "eddy replay: %s has no records\n", c->pk);
    } else if (replay_start(&r, c->id, cfg->replay_after, v, n, &err) != EDDY_OK) {
        fprintf(stderr, "eddy replay: %s: %s\n", c->pk, eddy_error_text(&err));
        code = REPLAY_ERROR;
    } else {
        eddy_emit_init(&r.emit);
        r.outbound = cJSON_CreateArray();
        code = replay_records(c, cfg, &r, v, n);
        eddy_emit_cleanup(&r.emit);
        cJSON_Delete(r.outbound);
    }
    if (r.state)
        r.m->state_free(r.state);
    cJSON_Delete(r.model);
    free_records(v, n);
    cJSON_Delete(items);
    return code;
}

/* The commands, for the table in commands.c. */

int eddy_cmd_get(struct eddy_cli_context *ctx)
{
    return run_cmd(ctx, "get", run_get);
}

int eddy_cmd_history(struct eddy_cli_context *ctx)
{
    return run_cmd(ctx, "history", run_history);
}

int eddy_cmd_replay(struct eddy_cli_context *ctx)
{
    return run_cmd(ctx, "replay", run_replay);
}
