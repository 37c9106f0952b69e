/*
 * fuzz_envelope - the message body decoder (worker/envelope.h) with JSON
 * pointers.
 *
 * Input: a JSON pointer, a NUL, then the body (without a NUL, the whole
 * input is the body and the pointer is empty). The body is decoded with the
 * default pointers, with a custom set whose entity id pointer is the one in
 * the input (when it parses), and with the MessageId present or not. Each
 * body sits in a buffer of exactly its length, so the sanitizers see a read
 * past its end. A decode gives an envelope that keeps envelope.h's promises
 * or EDDY_EPOISON with a reason; a pointer gives a parse or EDDY_ECONFIG.
 */
#include <string.h>

#include "base/json.h"
#include "core/attr.h"
#include "fuzz.h"
#include "worker/envelope.h"

/* The data and event type the body holds: the body parsed again on its own,
 * the pointers applied; the data printed. */
static char *as_sent(const struct eddy_envelope_spec *spec, const char *body, size_t len,
                     char **type)
{
    cJSON *root = NULL;
    struct eddy_error err = {0};
    FUZZ_CHECK(eddy_json_parse(body, len, &root, &err) == EDDY_OK, "decoded, yet not JSON");
    const cJSON *t = eddy_json_pointer_get(&spec->event_type, root);
    FUZZ_CHECK(cJSON_IsString(t), "decoded without a type");
    *type = strdup(t->valuestring);
    char *text = cJSON_PrintUnformatted(eddy_json_pointer_get(&spec->event_data, root));
    cJSON_Delete(root);
    return text;
}

static void check_decoded(const struct eddy_envelope_spec *spec, const struct eddy_envelope *env,
                          const char *body, size_t len)
{
    FUZZ_CHECK(env->data && env->entity_id && env->event_type && env->event_id, "missing parts");
    FUZZ_CHECK(env->entity_id[0] && strlen(env->entity_id) <= spec->entity_id_max,
               "entity id of %zu bytes", strlen(env->entity_id));
    FUZZ_CHECK(env->event_id[0] && strlen(env->event_id) <= spec->event_id_max,
               "event id of %zu bytes", strlen(env->event_id));
    FUZZ_CHECK(env->event_type[0] && strlen(env->event_type) <= spec->type_max,
               "event type of %zu bytes", strlen(env->event_type));
    FUZZ_CHECK(eddy_utf8_valid(env->entity_id) && eddy_utf8_valid(env->event_id) &&
                   eddy_utf8_valid(env->event_type),
               "an id is not UTF-8");
    for (const unsigned char *p = (const unsigned char *)env->entity_id; *p; p++)
        FUZZ_CHECK(*p >= 0x20 && *p != 0x7f, "a control character in the entity id");
    FUZZ_CHECK(cJSON_IsObject(env->data), "data is not an object");
    char *text = cJSON_PrintUnformatted(env->data); /* Raw numbers print too */
    FUZZ_CHECK(text != NULL, "data does not print");
    /* what the envelope kept is what the body holds */
    char *type = NULL;
    char *sent = as_sent(spec, body, len, &type);
    FUZZ_CHECK(sent && strcmp(sent, text) == 0, "the data kept differs from the body's");
    FUZZ_CHECK(type && strcmp(type, env->event_type) == 0, "the type kept differs");
    free(type);
    free(sent);
    free(text);
}

static void decode(const struct eddy_envelope_spec *spec, const char *body, size_t len,
                   const char *message_id)
{
    struct eddy_envelope env;
    struct eddy_error err = {0};
    eddy_err rc = eddy_envelope_decode(&env, spec, body, len, message_id, &err);
    if (rc == EDDY_OK) {
        check_decoded(spec, &env, body, len);
        if (env.event_id_is_message_id)
            FUZZ_CHECK(message_id && strcmp(env.event_id, message_id) == 0, "a made-up event id");
    } else {
        FUZZ_CHECK(rc == EDDY_EPOISON && err.code == EDDY_EPOISON && err.detail[0] != '\0',
                   "refusal %s without a reason", eddy_err_name(rc));
        FUZZ_CHECK(env.data == NULL && env.entity_id == NULL, "a refused envelope holds parts");
    }
    eddy_envelope_cleanup(&env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct eddy_envelope_spec dflt;
    static bool ready;
    if (!ready) {
        if (eddy_envelope_spec_init(&dflt, NULL, NULL, NULL, NULL, NULL) != EDDY_OK)
            abort();
        eddy_envelope_spec_namespace(&dflt, "machine");
        ready = true;
    }
    const uint8_t *nul = memchr(data, 0, size);
    const uint8_t *b = nul ? nul + 1 : data;
    size_t len = size - (size_t)(b - data);
    char *body = malloc(len ? len : 1); /* exactly len bytes: no NUL after it */
    if (len)
        memcpy(body, b, len);
    decode(&dflt, body, len, "msg-1");
    decode(&dflt, body, len, NULL);
    if (nul) {
        struct eddy_envelope_spec spec;
        struct eddy_error err = {0};
        eddy_err rc =
            eddy_envelope_spec_init(&spec, (const char *)data, NULL, "/detail/id", "/detail", &err);
        if (rc == EDDY_OK) {
            decode(&spec, body, len, "msg-2");
            eddy_envelope_spec_cleanup(&spec);
        } else {
            FUZZ_CHECK(rc == EDDY_ECONFIG && err.detail[0] != '\0', "a pointer refused without "
                                                                    "a reason");
        }
    }
    free(body);
    return 0;
}
