/*
 * fuzz_envelope - a standalone mutation fuzzer for the envelope decoder.
 *
 *   fuzz_envelope CORPUS_DIR [SECONDS [MAX_RUNS [SEED]]]
 *
 * Reads the seed bodies in CORPUS_DIR, then until SECONDS pass (default 20)
 * or MAX_RUNS inputs ran (0: no limit), mutates a seed with a seeded
 * generator (bit flips, byte inserts and deletes, splices of two seeds,
 * truncation, JSON tokens, deep nesting) and decodes the result with the
 * default pointers and with a custom set. Each input sits in a buffer of
 * exactly its length, so the sanitizers see any read past the end. The
 * decoder must return an envelope that keeps its promises, or EDDY_EPOISON
 * with a reason; anything else aborts with the input's run number and seed,
 * which replay it. Needs no libFuzzer: it builds with the project.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/json.h"
#include "eddy/rng.h"
#include "worker/envelope.h"

#define SEED_MAX ((size_t)300 * 1024)
#define INPUT_MAX (EDDY_ENVELOPE_BODY_MAX + 4096)

struct corpus {
    struct eddy_buf *items;
    size_t n;
};

static const char *const dictionary[] = {
    "{\"detail\":",
    "\"id\":",
    "\"detail-type\":",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\u0000",
    "\\ud800",
    "\\udc00",
    "\\\"",
    "\\\\",
    "\\u00e9",
    "null",
    "true",
    "false",
    "0",
    "-0",
    "1e308",
    "-1e-400",
    "12345678901234567890123456789012345678901234567890",
    "0.1",
    "1.",
    "-",
    "\xff",
    "\xc0\xaf",
    "\xed\xa0\x80",
    "\xf4\x90\x80\x80",
    "\x01",
    "~0",
    "~1",
    "/",
    "{\"id\":\"x\"}",
    "\"a/b\":",
    "\"m~n\":",
    "[0,1,2]",
    "   ",
    "\n",
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void load_corpus(const char *dir, struct corpus *c)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        perror(dir);
        exit(2);
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL)
            continue;
        c->items = eddy_realloc(c->items, (c->n + 1) * sizeof *c->items);
        struct eddy_buf *b = &c->items[c->n++];
        eddy_buf_init(b, SEED_MAX);
        char chunk[4096];
        size_t got;
        while ((got = fread(chunk, 1, sizeof chunk, f)) > 0 &&
               eddy_buf_append(b, chunk, got) == EDDY_OK)
            ;
        fclose(f);
    }
    closedir(d);
    if (c->n == 0) {
        fprintf(stderr, "fuzz_envelope: no seeds in %s\n", dir);
        exit(2);
    }
}

static void insert(struct eddy_buf *b, size_t at, const char *p, size_t n)
{
    if (n == 0 || b->len + n > INPUT_MAX)
        return;
    size_t tail = b->len - at;
    if (eddy_buf_reserve(b, n) != EDDY_OK)
        return;
    memmove(b->ptr + at + n, b->ptr + at, tail);
    memcpy(b->ptr + at, p, n);
    b->len += n;
    b->ptr[b->len] = '\0';
}

static void erase(struct eddy_buf *b, size_t at, size_t n)
{
    if (at + n > b->len)
        n = b->len - at;
    memmove(b->ptr + at, b->ptr + at + n, b->len - at - n);
    eddy_buf_truncate(b, b->len - n);
}

/* "[[[[" or "{\"a\":{\"a\":" many levels deep, sometimes closed again. */
static void nest(struct eddy_buf *b, struct eddy_rng *r, size_t at)
{
    size_t depth = 1 + (size_t)eddy_rng_below(r, 3000);
    bool object = eddy_rng_below(r, 2);
    bool close = eddy_rng_below(r, 2);
    struct eddy_buf n;
    eddy_buf_init(&n, INPUT_MAX);
    for (size_t i = 0; i < depth; i++)
        eddy_buf_puts(&n, object ? "{\"a\":" : "[");
    eddy_buf_puts(&n, "1");
    for (size_t i = 0; close && i < depth; i++)
        eddy_buf_putc(&n, object ? '}' : ']');
    insert(b, at, n.ptr, n.len);
    eddy_buf_cleanup(&n);
}

/* A random JSON value for mutate_tree: odd strings, exact and inexact numbers. */
static cJSON *random_value(struct eddy_rng *r)
{
    static const char alphabet[] = "ab/~0\x01\x1f\x7f\xc2\x85\xe4\xb8\xad\xff -\\\"";
    char text[40];
    size_t n = (size_t)eddy_rng_below(r, sizeof text);
    switch (eddy_rng_below(r, 8)) {
    case 0:
    case 1:
        for (size_t i = 0; i < n; i++)
            text[i] = alphabet[eddy_rng_below(r, sizeof alphabet - 1)];
        text[n] = '\0';
        return cJSON_CreateString(text);
    case 2:
        return cJSON_CreateNumber((double)(int64_t)eddy_rng_next(r) /
                                  (double)(1 + eddy_rng_below(r, 3)));
    case 3:
        snprintf(text, sizeof text, "%llu%llu", (unsigned long long)eddy_rng_next(r),
                 (unsigned long long)eddy_rng_next(r));
        return cJSON_CreateRaw(text);
    case 4:
        return eddy_rng_below(r, 2) ? cJSON_CreateNull() : cJSON_CreateTrue();
    case 5:
        return cJSON_CreateObject();
    case 6: {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "id", random_value(r));
        return o;
    }
    default:
        return cJSON_CreateArray();
    }
}

/* Parse the input, swap one value for a random one, print it back: valid JSON, odd values. */
static void mutate_tree(struct eddy_buf *b, struct eddy_rng *r)
{
    cJSON *root = cJSON_ParseWithLength(b->ptr ? b->ptr : "", b->len);
    if (root == NULL)
        return;
    cJSON *parents[256], *items[256];
    size_t n = 0, walked = 0;
    parents[n] = NULL, items[n++] = root;
    while (walked < n && n < 256) {
        cJSON *node = items[walked++], *child;
        cJSON_ArrayForEach(child, node)
        {
            if (n < 256)
                parents[n] = node, items[n++] = child;
        }
    }
    size_t k = 1 + (size_t)eddy_rng_below(r, n > 1 ? n - 1 : 1);
    if (k < n)
        cJSON_ReplaceItemViaPointer(parents[k], items[k], random_value(r));
    char *text = cJSON_PrintUnformatted(root);
    if (text != NULL) {
        eddy_buf_reset(b);
        eddy_buf_puts(b, text);
        free(text);
    }
    cJSON_Delete(root);
}

static void mutate_once(struct eddy_buf *b, const struct corpus *c, struct eddy_rng *r)
{
    size_t at = b->len ? (size_t)eddy_rng_below(r, b->len + 1) : 0;
    char byte = (char)eddy_rng_below(r, 256);
    switch (eddy_rng_below(r, 14)) {
    case 0: /* bit flip */
        if (at < b->len)
            b->ptr[at] ^= (char)(1u << eddy_rng_below(r, 8));
        break;
    case 1: /* set a byte */
        if (at < b->len)
            b->ptr[at] = byte;
        break;
    case 2:
        insert(b, at, &byte, 1);
        break;
    case 3: /* delete a short range */
        if (at < b->len)
            erase(b, at, 1 + (size_t)eddy_rng_below(r, 16));
        break;
    case 4: { /* a JSON token */
        const char *tok = dictionary[eddy_rng_below(r, EDDY_ARRAY_SIZE(dictionary))];
        insert(b, at, tok, strlen(tok));
        break;
    }
    case 5: { /* splice: our head, another seed's tail */
        const struct eddy_buf *o = &c->items[eddy_rng_below(r, c->n)];
        size_t from = o->len ? (size_t)eddy_rng_below(r, o->len) : 0;
        eddy_buf_truncate(b, at);
        insert(b, b->len, o->ptr + from, o->len - from);
        break;
    }
    case 6:
        eddy_buf_truncate(b, at);
        break;
    case 7: /* copy a chunk of ourselves elsewhere */
        if (at < b->len) {
            size_t n = 1 + (size_t)eddy_rng_below(r, b->len - at);
            char *tmp = eddy_malloc(n); /* not strndup: the input may hold NULs */
            memcpy(tmp, b->ptr + at, n);
            insert(b, (size_t)eddy_rng_below(r, b->len + 1), tmp, n);
            free(tmp);
        }
        break;
    case 8:
        nest(b, r, at);
        break;
    default: /* 5 in 14: keep it JSON */
        mutate_tree(b, r);
        break;
    }
}

/* Whether the envelope kept the very data and event type the body holds:
 * the body parsed again on its own, the pointers applied, printed alike. */
static bool kept_as_sent(const struct eddy_envelope_spec *spec, const struct eddy_envelope *env,
                         const char *body, size_t len)
{
    cJSON *root = NULL;
    struct eddy_error err = {0};
    if (eddy_json_parse(body, len, &root, &err) != EDDY_OK)
        return false;
    const cJSON *type = eddy_json_pointer_get(&spec->event_type, root);
    char *a = cJSON_PrintUnformatted(eddy_json_pointer_get(&spec->event_data, root));
    char *b = cJSON_PrintUnformatted(env->data);
    bool same = a && b && strcmp(a, b) == 0 && cJSON_IsString(type) &&
                strcmp(type->valuestring, env->event_type) == 0;
    free(a);
    free(b);
    cJSON_Delete(root);
    return same;
}

/* A decoded envelope must keep every promise envelope.h makes. */
static void check(eddy_err rc, const struct eddy_envelope_spec *spec,
                  const struct eddy_envelope *env, const struct eddy_error *err, const char *body,
                  size_t len, uint64_t run)
{
    bool ok;
    if (rc == EDDY_OK) {
        ok = env->data != NULL && env->entity_id != NULL && env->entity_id[0] != '\0' &&
             strlen(env->entity_id) <= EDDY_ENVELOPE_ID_MAX && env->event_type != NULL &&
             env->event_type[0] != '\0' && env->event_id != NULL && env->event_id[0] != '\0' &&
             cJSON_IsObject(env->data);
        for (const char *p = ok ? env->entity_id : ""; *p != '\0'; p++)
            ok = ok && (unsigned char)*p >= 0x20 && *p != 0x7f;
        if (ok) {
            char *text = cJSON_PrintUnformatted(env->data); /* Raw numbers print too */
            ok = text != NULL;
            free(text);
        }
        ok = ok && kept_as_sent(spec, env, body, len);
    } else {
        ok = rc == EDDY_EPOISON && err->code == EDDY_EPOISON && err->detail[0] != '\0' &&
             env->data == NULL && env->entity_id == NULL;
    }
    if (!ok) {
        fprintf(stderr, "fuzz_envelope: broken promise at run %llu (rc %s: %s)\n",
                (unsigned long long)run, eddy_err_name(rc), err->detail);
        abort();
    }
}

/* Decoded and refused inputs, so a run shows it reached past the parser. */
static uint64_t decoded, refused;

static void run_one(const struct eddy_buf *input, const struct eddy_envelope_spec *specs,
                    size_t nspecs, uint64_t run)
{
    /* An exact-size copy: no NUL after it, so an over-read is caught. */
    char *body = eddy_malloc(input->len ? input->len : 1);
    if (input->len)
        memcpy(body, input->ptr, input->len);
    for (size_t s = 0; s < nspecs; s++) {
        struct eddy_envelope env;
        struct eddy_error err = {0};
        eddy_err rc = eddy_envelope_decode(&env, &specs[s], body, input->len,
                                           run % 7 ? "msg-id" : NULL, &err);
        check(rc, &specs[s], &env, &err, body, input->len, run);
        if (rc == EDDY_OK)
            decoded++;
        else
            refused++;
        eddy_envelope_cleanup(&env);
    }
    free(body);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fuzz_envelope CORPUS_DIR [SECONDS [MAX_RUNS [SEED]]]\n");
        return 2;
    }
    double seconds = argc > 2 ? atof(argv[2]) : 20;
    uint64_t max_runs = argc > 3 ? strtoull(argv[3], NULL, 10) : 0;
    uint64_t seed = argc > 4 ? strtoull(argv[4], NULL, 10) : (uint64_t)time(NULL);
    struct corpus c = {0};
    load_corpus(argv[1], &c);

    struct eddy_envelope_spec specs[2];
    if (eddy_envelope_spec_init(&specs[0], NULL, NULL, NULL, NULL, NULL) != EDDY_OK ||
        eddy_envelope_spec_init(&specs[1], "/a~1b/m~0n/1/id", "/detail-type", "/detail/id",
                                "/detail", NULL) != EDDY_OK)
        return 2;
    printf("fuzz_envelope: %zu seeds, seed %llu, %.0f s\n", c.n, (unsigned long long)seed, seconds);

    struct eddy_rng rng;
    eddy_rng_seed(&rng, seed);
    struct eddy_buf input;
    eddy_buf_init(&input, INPUT_MAX);
    double start = now_s();
    uint64_t run = 0;
    for (; max_runs == 0 || run < max_runs; run++) {
        if ((run & 63) == 0 && now_s() - start >= seconds)
            break;
        const struct eddy_buf *s = &c.items[run < c.n ? run : eddy_rng_below(&rng, c.n)];
        eddy_buf_reset(&input);
        eddy_buf_put(&input, s->ptr ? s->ptr : "", s->len);
        /* The seeds unchanged first, then more and more mutations. */
        size_t rounds = run < c.n ? 0 : 1 + (size_t)eddy_rng_below(&rng, 8);
        if (eddy_rng_below(&rng, 2) && rounds > 1)
            rounds = 1; /* one small change keeps half the inputs near valid JSON */
        for (size_t k = 0; k < rounds; k++)
            mutate_once(&input, &c, &rng);
        run_one(&input, specs, EDDY_ARRAY_SIZE(specs), run);
    }
    printf("fuzz_envelope: %llu inputs in %.1f s (%llu decodes, %llu poison), no failures\n",
           (unsigned long long)run, now_s() - start, (unsigned long long)decoded,
           (unsigned long long)refused);

    eddy_buf_cleanup(&input);
    for (size_t i = 0; i < c.n; i++)
        eddy_buf_cleanup(&c.items[i]);
    free(c.items);
    eddy_envelope_spec_cleanup(&specs[0]);
    eddy_envelope_spec_cleanup(&specs[1]);
    return 0;
}
