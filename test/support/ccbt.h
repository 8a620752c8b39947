/*
 * Test support: a CUnit runner and loopback helpers shared by every suite.
 * Tests only ever talk to 127.0.0.1 / ::1.
 */
#ifndef CCBT_H
#define CCBT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <CUnit/CUnit.h>

typedef struct ccbt_test {
	const char *name;
	void (*fn)(void);
} ccbt_test;

typedef struct ccbt_suite {
	const char *name;
	const ccbt_test *tests; /* terminated by {NULL, NULL} */
} ccbt_suite;

/* Run the suites (terminated by {NULL, NULL}) with CUnit's verbose basic
 * runner; returns the process exit code (non-zero on any failure). */
int ccbt_run(const ccbt_suite *suites);

/* A connected TCP pair over 127.0.0.1: fds[0] is the connecting side,
 * fds[1] the accepted side. Aborts the test program on failure. */
void ccbt_tcp_pair(int fds[2]);

/* Listen on 127.0.0.1 with an ephemeral port; returns the fd, port in *port. */
int ccbt_listen(uint16_t *port);

/* Read a whole file; NULL if it cannot be read. Caller frees. */
char *ccbt_read_file(const char *path, size_t *len);

/* Number of open file descriptors of this process. */
int ccbt_count_fds(void);

/* Number of threads of this process. */
int ccbt_count_threads(void);
/* Run a shell command made from fmt (at most 511 bytes); its exit status,
 * -1 when it did not exit normally. */
int ccbt_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Raw loopback I/O for golden-byte tests: read exactly n bytes (fails the
 * test on EOF), check the next bytes equal `hex` (printing both on a
 * mismatch), send the bytes of `hex`. Hex may contain spaces. */
void ccbt_read_raw(int fd, uint8_t *buf, size_t n);
void ccbt_expect_wire(int fd, const char *hex);
void ccbt_send_hex(int fd, const char *hex);

/* Wait for an event instead of sleeping a fixed time: call cond(arg) every
 * few milliseconds until it returns true (then true) or timeout_ms pass
 * (then false, after one last check). Never asserts timing: callers
 * CU_ASSERT the result, with a generous timeout. */
bool ccbt_wait_until(int timeout_ms, bool (*cond)(void *arg), void *arg);

/* A condition variable whose timed waits run on CLOCK_MONOTONIC, and the
 * absolute CLOCK_MONOTONIC time `ms` from now for pthread_cond_timedwait on
 * it (a wall-clock step then neither shortens nor stretches the wait). */
void ccbt_cond_init_monotonic(pthread_cond_t *cv);
void ccbt_monotonic_deadline(struct timespec *ts, long ms);

/* Decode hex (spaces allowed) into a malloc'd buffer; aborts on bad input. */
uint8_t *ccbt_unhex(const char *hex, size_t *len);

#endif
