/*
 * Test support: real child processes (ccbctl broker, listen, ping...) for
 * integration tests. Output (stdout and stderr merged) is collected in the
 * background so the child never blocks on a full pipe; tests wait for a
 * line matching a pattern, then stop the child and check how it exited.
 */
#ifndef CCBT_PROC_H
#define CCBT_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct ccbt_proc ccbt_proc;

/* Start argv[0] (a path) with argv; NULL-terminated. Extra environment
 * entries "NAME=value" (NULL-terminated, may be NULL). Aborts the test
 * program if the process cannot be started. */
ccbt_proc *ccbt_proc_start(char *const argv[], char *const env[]);

/* Wait up to timeout_ms for an output line containing `needle`; copy the
 * whole line (without newline) into line[size] when given. False on
 * timeout or when the child exits first. */
bool ccbt_proc_wait_line(ccbt_proc *p, const char *needle, int timeout_ms, char *line,
			 size_t size);

/* Everything the child printed so far (NUL-terminated, owned by p). */
const char *ccbt_proc_output(ccbt_proc *p);

pid_t ccbt_proc_pid(const ccbt_proc *p);

/* Send `sig` (0: none) and wait up to timeout_ms for the exit; then
 * SIGKILL if needed. Returns the exit code, 128+signal when killed by a
 * signal, -1 if it had to be SIGKILLed after the timeout. Frees p. */
int ccbt_proc_stop(ccbt_proc *p, int sig, int timeout_ms);

/* Run a command to completion (timeout_ms, then SIGKILL), collecting its
 * output into *out (malloc'd, may be NULL). Returns as ccbt_proc_stop. */
int ccbt_proc_run(char *const argv[], char *const env[], int timeout_ms, char **out);

#endif
