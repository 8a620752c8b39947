/*
 * libccb — the monotonic clock that stream and shared-port deadlines use.
 *
 * Deadlines passed to libccb (ccb_stream_set_deadline(), the deadline
 * arguments of the shared-port and connect functions) are absolute times on
 * this clock: milliseconds of CLOCK_MONOTONIC, which never jumps when the
 * wall clock is set. Its epoch is arbitrary (typically boot), so a value is
 * only meaningful compared with another value of the same clock.
 */
#ifndef CCB_CLOCK_H
#define CCB_CLOCK_H

#include <stdint.h>

#include "ccb/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The current time of the monotonic clock (CLOCK_MONOTONIC), in
 * milliseconds. Thread safe; cannot fail.
 */
CCB_API int64_t ccb_now_ms(void);

/**
 * The absolute deadline `ms` milliseconds from now on the ccb_now_ms()
 * clock; `ms` < 0 means "no deadline" and gives INT64_MAX, the value every
 * deadline argument takes for none. Thread safe; cannot fail.
 */
CCB_API int64_t ccb_deadline_in(int64_t ms);

#ifdef __cplusplus
}
#endif

#endif
