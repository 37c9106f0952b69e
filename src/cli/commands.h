/*
 * commands.h - the subcommands eddy_main dispatches to.
 *
 * Each command gets the parsed configuration and the linked-in machines and
 * returns the process exit code: 0 success, 1 a negative answer (replay found
 * a difference, healthcheck failed), 2 bad usage or configuration, 3 a
 * runtime failure; replay adds 4 (a record is not reproducible) and 5
 * (--repair refused: it would contradict recorded outbound events).
 */
#ifndef EDDY_CLI_COMMANDS_H
#define EDDY_CLI_COMMANDS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "cli/config.h"

struct eddy_named_machine;

struct eddy_cli_context {
    struct eddy_config *cfg;
    const struct eddy_named_machine *machines;
    size_t nmachines;
};

struct eddy_command {
    const char *name;
    int (*run)(struct eddy_cli_context *ctx);
};

/* `eddy relay` (cmd_relay.c). */
/* The commands (cmd_worker.c, cmd_relay.c, cmd_store.c, cmd_outbox.c). */
int eddy_cmd_worker(struct eddy_cli_context *ctx);
int eddy_cmd_relay(struct eddy_cli_context *ctx);
int eddy_cmd_get(struct eddy_cli_context *ctx);
int eddy_cmd_history(struct eddy_cli_context *ctx);
int eddy_cmd_replay(struct eddy_cli_context *ctx);
int eddy_cmd_outbox(struct eddy_cli_context *ctx);

/* The command called name, or NULL. */
const struct eddy_command *eddy_command_find(const char *name);
/* o as one line of JSON on stdout, numbers exact (as the records hold
 * them), then deleted. */
void eddy_cli_print_json(cJSON *o);

#endif
