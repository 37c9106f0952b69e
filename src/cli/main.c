/*
 * main.c - the eddy binary: worker (default), relay, get, history, replay,
 * healthcheck.
 */
#include <stdio.h>
#include <string.h>

#include "eddy_version.h"

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("eddy %s\n", EDDY_VERSION);
        return 0;
    }
    fprintf(stderr, "eddy: not yet implemented\n");
    return 2;
}
