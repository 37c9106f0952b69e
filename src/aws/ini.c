/*
 * ini.c - the AWS shared-file INI dialect (see ini.h).
 *
 * Line by line over a borrowed view; nothing is copied, so secrets in the
 * text are never duplicated here. The caller owns (and wipes) the text.
 */
#include "aws/ini.h"

#include <stdbool.h>
#include <string.h>

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

static struct eddy_str trim(struct eddy_str s)
{
    while (s.len && is_space(s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len && is_space(s.ptr[s.len - 1]))
        s.len--;
    return s;
}

/* Cut an inline comment: `#` or `;` preceded by whitespace. */
static struct eddy_str cut_comment(struct eddy_str s)
{
    for (size_t i = 1; i < s.len; i++) {
        if ((s.ptr[i] == '#' || s.ptr[i] == ';') && is_space(s.ptr[i - 1]))
            return (struct eddy_str){s.ptr, i};
    }
    return s;
}

/* The next line (without its LF) and advance *rest past it. */
static struct eddy_str next_line(struct eddy_str *rest)
{
    const char *nl = rest->len ? memchr(rest->ptr, '\n', rest->len) : NULL;
    size_t n = nl ? (size_t)(nl - rest->ptr) : rest->len;
    struct eddy_str line = {rest->ptr, n};
    size_t skip = nl ? n + 1 : n;
    rest->ptr += skip;
    rest->len -= skip;
    return line;
}

struct ini_state {
    struct eddy_str section;
    bool nested; /* the last pair had an empty value: indented lines belong to it */
};

/* One line; false with *bad set when it is malformed, false alone to stop. */
static bool parse_line(struct ini_state *st, struct eddy_str raw, eddy_ini_cb cb, void *ud,
                       bool *bad)
{
    bool indented = raw.len && (raw.ptr[0] == ' ' || raw.ptr[0] == '\t');
    struct eddy_str line = trim(raw);
    if (line.len == 0 || line.ptr[0] == '#' || line.ptr[0] == ';')
        return true;
    if (indented && st->nested)
        return true; /* a sub-property such as `s3 =` / `  max_concurrent_requests = 2` */
    st->nested = false;
    if (line.ptr[0] == '[') {
        line = cut_comment(line);
        line = trim(line);
        if (line.len < 2 || line.ptr[line.len - 1] != ']') {
            *bad = true;
            return false;
        }
        st->section = trim((struct eddy_str){line.ptr + 1, line.len - 2});
        return cb(st->section, (struct eddy_str){NULL, 0}, (struct eddy_str){"", 0}, ud);
    }
    const char *eq = memchr(line.ptr, '=', line.len);
    if (!eq || eq == line.ptr) {
        *bad = true;
        return false;
    }
    struct eddy_str key = trim((struct eddy_str){line.ptr, (size_t)(eq - line.ptr)});
    struct eddy_str value = {eq + 1, line.len - (size_t)(eq + 1 - line.ptr)};
    value = trim(cut_comment(trim(value)));
    if (key.len == 0) {
        *bad = true;
        return false;
    }
    st->nested = value.len == 0;
    return cb(st->section, key, value, ud);
}

eddy_err eddy_ini_parse(struct eddy_str text, eddy_ini_cb cb, void *ud, struct eddy_error *err)
{
    if (!cb || (text.len && !text.ptr))
        return eddy_error_set(err, EDDY_EINVAL, "ini: no text or callback");
    struct eddy_str rest = text;
    if (rest.len >= 3 && memcmp(rest.ptr, "\xEF\xBB\xBF", 3) == 0) {
        rest.ptr += 3;
        rest.len -= 3;
    }
    struct ini_state st = {.section = {"", 0}, .nested = false};
    size_t lineno = 0;
    while (rest.len) {
        struct eddy_str line = next_line(&rest);
        lineno++;
        bool bad = false;
        if (!parse_line(&st, line, cb, ud, &bad)) {
            if (bad)
                return eddy_error_set(err, EDDY_EPARSE,
                                      "line %zu: expected [section] or key = value", lineno);
            break;
        }
    }
    return EDDY_OK;
}
