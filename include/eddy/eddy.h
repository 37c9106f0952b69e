/*
 * eddy.h - embedding eddy in a program of your own.
 *
 * A program that links its machines in calls eddy_main() from main() with a
 * table of them; eddy then behaves exactly like the eddy binary (worker,
 * relay, get, history, replay, healthcheck), choosing the machine named by
 * --machine / EDDY_MACHINE among the table, or loading a shared object when
 * the value is a path. eddy_main_named() also gives each machine a name to
 * be chosen by besides its namespace (the eddy binary offers its slot
 * machine, namespace "machine", as "slotmachine").
 *
 *     static const struct eddy_machine *const machines[] = {&my_machine};
 *     int main(int argc, char **argv)
 *     {
 *         return eddy_main(argc, argv, machines, 1);
 *     }
 */
#ifndef EDDY_EDDY_H
#define EDDY_EDDY_H

#include <stddef.h>

#include "eddy/machine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Run eddy; returns the process exit status. machines may be NULL when n is 0. */
int eddy_main(int argc, char **argv, const struct eddy_machine *const *machines, size_t n);
/* The same with a name for each machine. machines may be NULL when n is 0. */
int eddy_main_named(int argc, char **argv, const struct eddy_named_machine *machines, size_t n);

#ifdef __cplusplus
}
#endif

#endif
