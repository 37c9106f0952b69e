/*
 * main.c - the eddy binary: eddy_main() with the machines built into libeddy
 * (the slot machine), or any machine loaded from a shared object.
 */
#include "eddy/eddy.h"

int main(int argc, char **argv)
{
    return eddy_main(argc, argv, NULL, 0);
}
