/*
 * fuzz.h - what the libFuzzer targets of tests/fuzz share: the entry point's
 * declaration and a check that aborts with a message, so a broken promise is
 * a crash libFuzzer reports and saves.
 */
#ifndef EDDY_TESTS_FUZZ_H
#define EDDY_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "broken promise at %s:%d: ", __FILE__, __LINE__);                      \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
