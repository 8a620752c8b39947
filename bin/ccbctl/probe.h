/* ccbctl probe: the steps of each broker path (probe.c runs them,
 * probe_report.c prints them). */
#ifndef CCBCTL_PROBE_H
#define CCBCTL_PROBE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccb/error.h"
#include "ccb/security.h"

#define PROBE_MAX_STEPS 16

/* One step of a path: open until done; code CCB_OK when it went well. */
typedef struct pstep {
	char name[24];
	int64_t start_ms, ms;
	bool done;
	ccb_err code;
	char detail[512];
} pstep;

typedef struct probe probe; /* the whole run (probe.c) */

/* One broker contact's path (or the direct one), filled by its thread under
 * the probe's lock, read by the printer once every thread is joined. */
typedef struct ppath {
	probe *p;
	const char *contact; /* NULL: the sinful has no CCBID (direct / shared port) */
	char broker[300];
	pstep steps[PROBE_MAX_STEPS];
	int n;
	int64_t t0;
	bool streaming;      /* the request went out in streaming mode */
	char my_address[300];
	bool have_bsec, have_tsec, authorized, ok, finished;
	ccb_sec_info bsec, tsec;
	pthread_t th;
} ppath;

/* The progress line on stderr (call only when stderr is a terminal). */
void probe_spin(const ppath *paths, size_t n, int64_t t0, int tick);
/* Every path's steps, with the likely cause and a fix for a failed one, as
 * JSON or text on stdout; true when one path works. */
bool probe_print(const char *address, const ppath *paths, size_t n, bool as_json);

#endif
