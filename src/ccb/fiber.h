/*
 * Cooperative fibers for the broker's handshakes: a function run on its own
 * small mmap'd stack (guard page below it) that can yield back to whoever
 * resumed it and be resumed later. Not installed.
 *
 * A fiber must always be resumed on the thread that first ran it: code on
 * its stack may keep the address of thread-local state (errno, OpenSSL's
 * error queue) across a yield. Under ASan and TSan every switch is
 * announced to the sanitizer.
 *
 * Include as "fiber.h": only the broker's handshake code (src/ccb/broker*.c)
 * and test/broker/test_fiber.c.
 */
#ifndef CCB_FIBER_H
#define CCB_FIBER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ccb__fiber ccb__fiber;

/* A fiber that will run fn(arg) when first resumed. `stack` bytes of stack
 * (rounded up to pages; 0: the default) plus a guard page, reserved, not
 * committed: only the pages it touches cost memory. NULL when out of memory. */
ccb__fiber *ccb__fiber_new(size_t stack, void (*fn)(void *), void *arg);
/* Run the fiber until it yields or returns. True once fn has returned. */
bool ccb__fiber_resume(ccb__fiber *f);
/* From inside the fiber: back to the ccb__fiber_resume() that ran it. */
void ccb__fiber_yield(ccb__fiber *f);
/* Free a fiber that has finished or was never resumed. */
void ccb__fiber_free(ccb__fiber *f);

#endif
