/*
 * state.c - checked and traced state changes (see state.h).
 */
#include "base/state.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>

#include "base/log.h"

bool eddy_state_allowed(const struct eddy_states *s, unsigned from, unsigned to)
{
    return from < s->n && to < s->n && to < 32 && (s->v[from].to & EDDY_STATE_TO(to)) != 0;
}

const char *eddy_state_name(const struct eddy_states *s, unsigned k)
{
    return k < s->n && s->v[k].name ? s->v[k].name : "?";
}

void eddy_state_move(const struct eddy_states *s, unsigned from, unsigned to, const char *who, ...)
{
    bool ok = eddy_state_allowed(s, from, to);
    if (ok && !eddy_log_enabled(EDDY_LOG_DEBUG))
        return;
    char name[128] = "";
    if (who) {
        va_list ap;
        va_start(ap, who);
        name[0] = ' ';
        vsnprintf(name + 1, sizeof name - 1, who, ap);
        va_end(ap);
    }
    eddy_log(ok ? EDDY_LOG_DEBUG : EDDY_LOG_ERROR, NULL, "%s%s: %s -> %s%s", s->what, name,
             eddy_state_name(s, from), eddy_state_name(s, to),
             ok ? "" : " is no move of its (a bug)");
    assert(ok);
}
