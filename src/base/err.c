/*
 * err.c - names, messages and detail for eddy_err.
 */
#include "base/err.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    const char *msg;
} table[] = {
#define EDDY_ERR_ROW(name, msg) {"EDDY_E" #name, msg},
    EDDY_ERRNO_MAP(EDDY_ERR_ROW)
#undef EDDY_ERR_ROW
};

const char *eddy_err_name(eddy_err err)
{
    if ((unsigned)err >= EDDY_E_COUNT)
        return "EDDY_EUNKNOWN";
    return table[err].name;
}

const char *eddy_err_msg(eddy_err err)
{
    if ((unsigned)err >= EDDY_E_COUNT)
        return "unknown error";
    return table[err].msg;
}

eddy_err eddy_error_vset(struct eddy_error *err, eddy_err code, const char *fmt, va_list ap)
{
    if (err == NULL)
        return code;
    err->code = code;
    if (fmt == NULL)
        snprintf(err->detail, sizeof err->detail, "%s", eddy_err_msg(code));
    else
        vsnprintf(err->detail, sizeof err->detail, fmt, ap);
    return code;
}

eddy_err eddy_error_set(struct eddy_error *err, eddy_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    eddy_error_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void eddy_error_clear(struct eddy_error *err)
{
    if (err == NULL)
        return;
    err->code = EDDY_OK;
    err->detail[0] = '\0';
}

const char *eddy_error_text(const struct eddy_error *err)
{
    if (err == NULL)
        return "";
    if (err->detail[0] != '\0')
        return err->detail;
    return eddy_err_msg(err->code);
}
