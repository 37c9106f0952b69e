/*
 * commands.c - the table of subcommands, and how they print JSON.
 */
#include "cli/commands.h"

#include <stdio.h>
#include <string.h>

#include "base/json.h"

static const struct eddy_command commands[] = {
    {"worker", eddy_cmd_worker},   {"relay", eddy_cmd_relay},   {"get", eddy_cmd_get},
    {"history", eddy_cmd_history}, {"replay", eddy_cmd_replay}, {"outbox", eddy_cmd_outbox},
};

const struct eddy_command *eddy_command_find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

void eddy_cli_print_json(cJSON *o)
{
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    eddy_jw_tree(&w, o);
    puts(eddy_buf_cstr(&w.buf));
    eddy_jw_cleanup(&w);
    cJSON_Delete(o);
}
