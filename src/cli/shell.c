/*
 * shell.c - the process shell of `eddy worker` and `eddy relay` (see shell.h).
 */
#include "cli/shell.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/metrics.h"
#include "cli/config.h"
#include "cli/runtime.h"
#include "relay/busv2.h"
#include "relay/relay.h"

static void exit_now(void)
{
    fflush(stdout);
    fflush(stderr);
    _exit(1);
}

static void drain_expired(uv_timer_t *t)
{
    struct eddy_shell *s = eddy_container_of(t, struct eddy_shell, drain_timer);
    eddy_log(EDDY_LOG_ERROR, NULL,
             "%s: drain did not finish within %lld s (EDDY_DRAIN_SECONDS); "
             "exiting",
             s->name, (long long)s->drain_seconds);
    exit_now();
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct eddy_shell *s = h->data;
    if (++s->signals > 1) {
        eddy_log(EDDY_LOG_WARN, NULL, "%s: second signal (%s): exiting now", s->name,
                 strsignal(signum));
        exit_now();
    }
    eddy_shell_drain(s, strsignal(signum));
}

static void emit_tick(uv_timer_t *t)
{
    struct eddy_shell *s = eddy_container_of(t, struct eddy_shell, emit_timer);
    s->emit(s->ud);
}

void eddy_shell_start(struct eddy_shell *s, uv_loop_t *loop, const char *name,
                      int64_t drain_seconds, int64_t metrics_interval_s,
                      void (*drain)(void *ud, const char *why), void (*emit)(void *ud), void *ud)
{
    memset(s, 0, sizeof *s);
    s->name = name;
    s->drain = drain;
    s->emit = emit;
    s->ud = ud;
    s->drain_seconds = drain_seconds;
    uv_signal_init(loop, &s->sigterm);
    uv_signal_init(loop, &s->sigint);
    s->sigterm.data = s->sigint.data = s;
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_timer_init(loop, &s->drain_timer);
    uv_timer_init(loop, &s->emit_timer);
    if (emit) {
        uint64_t every = (uint64_t)metrics_interval_s * 1000;
        uv_timer_start(&s->emit_timer, emit_tick, every, every);
    }
}

void eddy_shell_drain(struct eddy_shell *s, const char *why)
{
    if (s->draining)
        return;
    s->draining = true;
    eddy_log(EDDY_LOG_INFO, NULL, "%s: %s: draining (at most %lld s)", s->name, why,
             (long long)s->drain_seconds);
    uv_timer_start(&s->drain_timer, drain_expired, (uint64_t)s->drain_seconds * 1000, 0);
    s->drain(s->ud, why);
}

void eddy_shell_fail(struct eddy_shell *s, const char *why)
{
    s->exit_code = 3;
    eddy_shell_drain(s, why);
}

void eddy_shell_metric_line(struct eddy_runtime *rt, struct eddy_metrics *m)
{
    eddy_runtime_count_connections(rt, m);
    if (eddy_metrics_emit(m, stdout, eddy_clock_unix_ms(eddy_clock_system()), "eddy") == EDDY_OK)
        fflush(stdout);
}

struct eddy_metrics *eddy_shell_metrics_new(const struct eddy_config *cfg)
{
    enum eddy_metrics_mode mode = EDDY_METRICS_EMF;
    eddy_metrics_mode_parse(cfg->metrics_str, &mode);
    struct eddy_metrics *m = eddy_metrics_new(mode);
    eddy_metrics_set_service(m, cfg->metrics_service_str);
    return m;
}

struct eddy_relay *eddy_shell_relay_new(struct eddy_runtime *rt, const struct eddy_config *cfg,
                                        struct eddy_metrics *m, uint64_t seed,
                                        struct eddy_error *err)
{
    struct eddy_relay_config rc = {
        .table = cfg->table_str,
        .shards = (uint32_t)cfg->outbox_shards,
        .event_bus = cfg->event_bus_str,
        .event_source = rt->event_source,
        .poll_ms = (uint32_t)cfg->relay_poll_ms,
        .lease_ms = (uint32_t)cfg->lease_ms,
        .grace_ms = (uint32_t)cfg->outbox_grace * 1000,
        .sweep_max_ms = (uint32_t)cfg->sweep_max * 1000,
        .attempts = (uint32_t)cfg->publish_attempts,
        .seed = seed,
    };
    if (rt->eb2_on) { /* a Custom Event Bus ARN */
        rc.bus = &eddy_relay_bus_v2;
        rc.bus_client = &rt->eb2;
    }
    return eddy_relay_new(&rt->loop, &rt->ddb, &rt->eb, &rc, NULL, m, err);
}

void eddy_shell_close(struct eddy_shell *s)
{
    if (s->emit)
        s->emit(s->ud); /* the last line, after every commit and delete */
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->drain_timer, NULL);
    uv_close((uv_handle_t *)&s->emit_timer, NULL);
}
