/* The C tests' assertions: CHECK counts, never aborts, and main prints
 * "N passed, M failed" (tests/ffi.rs reads that line). */
#ifndef NB_CHECK_H
#define NB_CHECK_H

#include <stdio.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (cond) {                                                              \
            passed++;                                                            \
        } else {                                                                 \
            failed++;                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

#define CHECK_EQ_STR(a, b) CHECK((a) != NULL && strcmp((a), (b)) == 0)

/* The last line of every test program. */
static int report(void) {
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

#endif
