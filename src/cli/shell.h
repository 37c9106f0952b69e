/*
 * shell.h - the process shell of the long-running commands, `eddy worker`
 * and `eddy relay`: the same signals, drain budget and metric lines for both.
 *
 *   - The first SIGTERM or SIGINT starts the command's drain (its drain
 *     function, once); a command may also start it itself, and on a fatal
 *     error (eddy_shell_fail) the process then exits 3.
 *   - EDDY_DRAIN_SECONDS bounds the drain: when it runs out the shell says
 *     so and exits 1 at once.
 *   - A second signal exits 1 at once. Safe in both commands: an event
 *     committed and not yet deleted is received again and meets its dedupe
 *     marker; an outbox entry published and not yet deleted is published
 *     again (at least once).
 *   - Every EDDY_METRICS_INTERVAL seconds, and once when the shell closes,
 *     the command's emit function writes its metric line.
 *
 * eddy_shell_close closes the shell's handles (after the drain finished);
 * the loop can then end.
 */
#ifndef EDDY_CLI_SHELL_H
#define EDDY_CLI_SHELL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct eddy_shell {
    const char *name; /* "worker", "relay": in the log lines */
    void (*drain)(void *ud, const char *why);
    void (*emit)(void *ud);
    void *ud;
    uv_signal_t sigterm, sigint;
    uv_timer_t drain_timer, emit_timer;
    int64_t drain_seconds;
    int signals;
    bool draining;
    int exit_code; /* 0, or 3 after eddy_shell_fail */
};

/* Start the signal handlers and the metrics timer. drain and emit are the
 * command's; emit may be NULL. */
void eddy_shell_start(struct eddy_shell *s, uv_loop_t *loop, const char *name,
                      int64_t drain_seconds, int64_t metrics_interval_s,
                      void (*drain)(void *ud, const char *why), void (*emit)(void *ud), void *ud);
/* Start the drain (once), with the budget running. */
void eddy_shell_drain(struct eddy_shell *s, const char *why);
/* The command cannot go on (why: for the log; the detail was logged where
 * it was found): drain as on a signal, then exit 3 (exit_code). */
void eddy_shell_fail(struct eddy_shell *s, const char *why);
/* One metric line on stdout: the connections the runtime's HTTP client
 * opened, then every counter of m (EMF). */
struct eddy_runtime;
struct eddy_metrics;
struct eddy_config;
struct eddy_error;
void eddy_shell_metric_line(struct eddy_runtime *rt, struct eddy_metrics *m);

/* What both commands build from the configuration. The metrics, as
 * EDDY_METRICS and EDDY_METRICS_SERVICE say. */
struct eddy_metrics *eddy_shell_metrics_new(const struct eddy_config *cfg);
/* The relay (not started): the outbox settings, and the runtime's bus (its
 * Custom Event Bus when EDDY_EVENT_BUS is one's ARN). seed 0: from the
 * clock. NULL with err filled when the settings do not make one. */
struct eddy_relay *eddy_shell_relay_new(struct eddy_runtime *rt, const struct eddy_config *cfg,
                                        struct eddy_metrics *m, uint64_t seed,
                                        struct eddy_error *err);
/* The last metric line, then close the handles. */
void eddy_shell_close(struct eddy_shell *s);

#endif
