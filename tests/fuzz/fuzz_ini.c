/*
 * fuzz_ini - the shared config and credentials file parser (aws/ini.h).
 *
 * Any bytes give a walk or EDDY_EPARSE naming a line. Every section, key
 * and value handed out lies inside the text and is trimmed; a key is never
 * empty.
 */
#include <ctype.h>
#include <string.h>

#include "aws/ini.h"
#include "fuzz.h"

struct walk {
    const char *text;
    size_t len;
    size_t calls;
};

static void inside(const struct walk *w, struct eddy_str s, const char *what)
{
    if (s.len == 0)
        return;
    FUZZ_CHECK(s.ptr >= w->text && s.ptr + s.len <= w->text + w->len, "%s outside the text", what);
    FUZZ_CHECK(!isspace((unsigned char)s.ptr[0]) && !isspace((unsigned char)s.ptr[s.len - 1]),
               "%s not trimmed", what);
}

static bool on_pair(struct eddy_str section, struct eddy_str key, struct eddy_str value, void *ud)
{
    struct walk *w = ud;
    inside(w, section, "section");
    inside(w, value, "value");
    if (key.ptr != NULL) {
        FUZZ_CHECK(key.len > 0, "an empty key");
        inside(w, key, "key");
    } else {
        FUZZ_CHECK(key.len == 0 && value.len == 0, "a header with a key or value");
    }
    return ++w->calls < 100000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (size)
        memcpy(text, data, size);
    struct walk w = {text, size, 0};
    struct eddy_error err = {0};
    eddy_err rc = eddy_ini_parse((struct eddy_str){text, size}, on_pair, &w, &err);
    if (rc != EDDY_OK)
        FUZZ_CHECK(rc == EDDY_EPARSE && strstr(err.detail, "line") != NULL,
                   "refusal %s without a line: %s", eddy_err_name(rc), err.detail);
    free(text);
    return 0;
}
