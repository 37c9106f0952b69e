/*
 * config.c - parse eddy's settings from the environment and flags (see
 * config.h). Every value is checked here, at start, so a bad deployment fails
 * at once with the name of the variable instead of misbehaving later.
 */
#include "cli/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/record.h"
#include "worker/envelope.h"

struct setting {
    const char *var;
    const char *flag;
    enum eddy_config_type type;
    const char *def;
    int64_t min, max;
    const char *choices;
    const char *help;
    size_t str_off; /* offsetof the _str field */
    size_t val_off; /* offsetof the value field */
};

static const struct setting settings[] = {
#define EDDY_CFG_ROW(field, var, flag, type, def, min, max, choices, help)                         \
    {var,                                                                                          \
     flag,                                                                                         \
     type,                                                                                         \
     def,                                                                                          \
     min,                                                                                          \
     max,                                                                                          \
     choices,                                                                                      \
     help,                                                                                         \
     offsetof(struct eddy_config, field##_str),                                                    \
     offsetof(struct eddy_config, field)},
    EDDY_CONFIG_MAP(EDDY_CFG_ROW)
#undef EDDY_CFG_ROW
};

/* An integer as written: an optional '-' and digits, nothing around them
 * (strtoll alone would take " 10" and "+10"). */
static bool plain_integer(const char *s, bool sign)
{
    if (sign && *s == '-')
        s++;
    return *s >= '0' && *s <= '9';
}

/* The integer s starts with (signed when sign) into *v, and where it ends. */
static bool leading_integer(const char *s, bool sign, long long *v, char **end)
{
    if (!plain_integer(s, sign))
        return false;
    errno = 0;
    *v = strtoll(s, end, 10);
    return errno == 0 && *end != s;
}

static bool parse_int(const char *s, int64_t *out)
{
    long long v;
    char *end;
    if (!leading_integer(s, true, &v, &end) || *end != '\0')
        return false;
    *out = v;
    return true;
}

static bool parse_secs(const char *s, int64_t *out)
{
    long long v;
    char *end;
    if (!leading_integer(s, false, &v, &end))
        return false;
    int64_t mul = 1;
    if (*end == 's')
        end++;
    else if (*end == 'm')
        mul = 60, end++;
    else if (*end == 'h')
        mul = 3600, end++;
    else if (*end == 'd')
        mul = 86400, end++;
    if (*end != '\0' || v > INT64_MAX / mul)
        return false;
    *out = v * mul;
    return true;
}

static bool parse_bool(const char *s, int64_t *out)
{
    static const char *const yes[] = {"1", "true", "on", "yes"};
    static const char *const no[] = {"0", "false", "off", "no"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = 1, true;
        if (strcasecmp(s, no[i]) == 0)
            return *out = 0, true;
    }
    return false;
}

/* Index of s among the '|'-separated choices, or -1. */
static int64_t choice_index(const char *choices, const char *s)
{
    size_t n = strlen(s);
    int64_t i = 0;
    for (const char *p = choices; *p; i++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, s, n) == 0)
            return i;
        if (!bar)
            break;
        p = bar + 1;
    }
    return -1;
}

static eddy_err set_value(struct eddy_config *cfg, const struct setting *s, const char *value,
                          const char *source, struct eddy_error *err)
{
    const char **strp = (const char **)((char *)cfg + s->str_off);
    int64_t *valp = (int64_t *)((char *)cfg + s->val_off);
    int64_t v = 0;
    *strp = value;
    if (value == NULL) {
        *valp = 0;
        return EDDY_OK;
    }
    struct eddy_error why;
    switch (s->type) {
    case EDDY_CFG_STR:
        return EDDY_OK;
    case EDDY_CFG_POINTER: {
        struct eddy_json_pointer p;
        if (eddy_json_pointer_parse(&p, value, &why) != EDDY_OK)
            return eddy_error_set(err, EDDY_ECONFIG, "%s: %s", source, why.detail);
        eddy_json_pointer_cleanup(&p);
        return EDDY_OK;
    }
    case EDDY_CFG_NAMESPACE:
        if (eddy_record_check_namespace(value, &why) != EDDY_OK)
            return eddy_error_set(err, EDDY_ECONFIG, "%s: %s", source, why.detail);
        return EDDY_OK;
    case EDDY_CFG_INT:
        if (!parse_int(value, &v) || v < s->min || v > s->max)
            return eddy_error_set(err, EDDY_ECONFIG, "%s: \"%s\" is not an integer in %lld..%lld",
                                  source, value, (long long)s->min, (long long)s->max);
        break;
    case EDDY_CFG_SECS:
        if (!parse_secs(value, &v) || v < s->min || v > s->max)
            return eddy_error_set(err, EDDY_ECONFIG,
                                  "%s: \"%s\" is not a duration of %lld..%lld seconds "
                                  "(e.g. 30, 30s, 5m, 2h, 14d)",
                                  source, value, (long long)s->min, (long long)s->max);
        break;
    case EDDY_CFG_BOOL:
        if (!parse_bool(value, &v))
            return eddy_error_set(err, EDDY_ECONFIG, "%s: \"%s\" is not on/off", source, value);
        break;
    case EDDY_CFG_ENUM:
        v = choice_index(s->choices, value);
        if (v < 0)
            return eddy_error_set(err, EDDY_ECONFIG, "%s: \"%s\" is not one of %s", source, value,
                                  s->choices);
        break;
    }
    *valp = v;
    return EDDY_OK;
}

static const struct setting *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (strlen(settings[i].flag) == len && strncmp(settings[i].flag, name, len) == 0)
            return &settings[i];
    return NULL;
}

static eddy_err load_flags(struct eddy_config *cfg, int argc, char **argv, int first,
                           struct eddy_error *err)
{
    cfg->args = argv + first;
    cfg->nargs = 0;
    bool options = true;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (options && strcmp(a, "--") == 0) { /* the rest are positionals, even "--x" */
            options = false;
            continue;
        }
        if (!options || strncmp(a, "--", 2) != 0) {
            argv[first + cfg->nargs++] = argv[i]; /* keep positionals in order */
            continue;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct setting *s = find_flag(name, len);
        if (s == NULL)
            return eddy_error_set(err, EDDY_ECONFIG, "unknown flag %s (see eddy --help)", a);
        const char *value = eq ? eq + 1 : NULL;
        if (value == NULL && s->type == EDDY_CFG_BOOL)
            value = "on";
        if (value == NULL) {
            if (i + 1 >= argc)
                return eddy_error_set(err, EDDY_ECONFIG, "flag --%s needs a value", s->flag);
            value = argv[++i];
        }
        char source[64];
        snprintf(source, sizeof source, "--%s", s->flag);
        eddy_err rc = set_value(cfg, s, value, source, err);
        if (rc)
            return rc;
    }
    return EDDY_OK;
}

eddy_err eddy_config_load(struct eddy_config *cfg, int argc, char **argv, int first,
                          struct eddy_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        const struct setting *s = &settings[i];
        const char *env = getenv(s->var);
        const char *value = (env && *env) ? env : s->def;
        eddy_err rc = set_value(cfg, s, value, env && *env ? s->var : "default", err);
        if (rc)
            return rc;
    }
    return load_flags(cfg, argc, argv, first, err);
}

void eddy_config_help(FILE *out)
{
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        const struct setting *s = &settings[i];
        char left[80];
        snprintf(left, sizeof left, "  %s, --%s", s->var, s->flag);
        fprintf(out, "%-52s %s", left, s->help);
        if (s->choices)
            fprintf(out, " [%s]", s->choices);
        if (s->def)
            fprintf(out, " (default: %s)", s->def);
        fputc('\n', out);
    }
}
