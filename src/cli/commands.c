/*
 * commands.c - the table of subcommands.
 */
#include "cli/commands.h"

#include <stdio.h>
#include <string.h>

static int not_built(struct eddy_cli_context *ctx)
{
    (void)ctx;
    fprintf(stderr, "eddy: this command is not part of this build yet\n");
    return 3;
}

static const struct eddy_command commands[] = {
    {"worker", not_built}, {"relay", not_built},  {"get", not_built},
    {"history", not_built}, {"replay", not_built},
};

const struct eddy_command *eddy_command_find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}
