/*
 * main.c - the eddy binary: eddy_main() with the slot machine linked in
 * (chosen as "slotmachine" or by its namespace "machine"), or any machine
 * loaded from a shared object.
 */
#include "eddy/eddy.h"
#include "slotmachine/slotmachine.h"

static const struct eddy_named_machine machines[] = {
    {"slotmachine", &eddy_slotmachine},
};

int main(int argc, char **argv)
{
    return eddy_main_named(argc, argv, machines, sizeof machines / sizeof machines[0]);
}
