/*
 * The dial's parts (not installed):
 *
 *   dial.c          public entry points: ccb_dial(), ccb_dial_sinful(),
 *                   ccb_dial_command(), cancel tokens, option checks
 *   dial_race.c     the happy-eyeballs race: attempt threads launched
 *                   staggered, joined through one mutex + condition variable
 *                   (monotonic waits), the winner delivered or the failures
 *                   summed up
 *   dial_attempt.c  one attempt against one broker: connect, authenticate,
 *                   CCB_REQUEST, then the reverse connection (standard) or
 *                   the relayed socket (streaming)
 *
 * Threads: the caller's thread owns the race; each attempt runs on its own
 * thread. Stopping an attempt is a flag under race.mu, the race's stop
 * wake-up (util/wakeup.h) every attempt polls, and a shutdown of the sockets
 * the attempt registered (ccb__dial_reg_stream / _endpoint).
 */
#ifndef CCB_DIAL_INTERNAL_H
#define CCB_DIAL_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "ccb/dial.h"
#include "ccb/security.h"
#include "ccb/sharedport.h"
#include "ccb/stream.h"
#include "util/wakeup.h"

/* Default port of a broker address without one: the collector's (§3.3). */
#define CCB__DIAL_BROKER_DEFAULT_PORT 9618
/* Most time one reverse connection may take to deliver its hello. */
#define CCB__DIAL_HELLO_TIMEOUT_MS 5000
/* Most time one shared-port hand-off may take once its socket is readable. */
#define CCB__DIAL_HANDOFF_WAIT_MS 1000
/* Grace after the deadline for attempts to report their own timeout. */
#define CCB__DIAL_DEADLINE_GRACE_MS 1000

/* Phases an attempt reaches, to pick the most telling failure. */
enum ccb__dial_phase { PH_START, PH_CONNECTED, PH_AUTHENTICATED, PH_REQUESTED, PH_REPLIED };

struct ccb_dial_cancel {
	pthread_mutex_t mu;
	bool fired;
	struct ccb__dial_race *races; /* dials using the token */
};

typedef struct ccb__dial_race race;

typedef struct ccb__dial_attempt {
	race *r;
	int idx; /* 1-based, in launch order */
	const char *contact;
	char broker[256]; /* host:port of the broker, for details */
	pthread_t th;
	bool started;
	/* written by the attempt thread, read by the caller after join */
	ccb_err code;
	char detail[CCB_ERROR_DETAIL_SIZE];
	enum ccb__dial_phase phase;
	int64_t requested_at; /* when CCB_REQUEST went out (ccb_now_ms) */
	ccb_stream *result;
	bool proxied;
	/* under r->mu: what a canceller shuts down */
	ccb_stream *reg[2];
	ccb_sharedport_endpoint *reg_ep;
} attempt;

struct ccb__dial_race {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_mutex_t progress_mu;
	const ccb_dial_config *o;
	int64_t t0, deadline;
	ccb__wakeup stop_signal; /* raised once when attempts must end; never drained */
	attempt *a;              /* n attempts, in launch order */
	const char **order;      /* the contacts, shuffled */
	size_t n, launched;
	int stagger;             /* ms between launches; -1: one at a time */
	bool timed_out;          /* the deadline passed before an outcome */
	/* under mu */
	bool stop;      /* attempts must end */
	bool cancelled; /* token fired */
	attempt *winner;
	int running;
	int failed_pending; /* failures the launcher has not reacted to yet */
	struct ccb__dial_race *next_on_token;
};

/* ---- dial_race.c ---------------------------------------------------------- */

/* The whole race of ccb_dial(): set up, launch, wait, stop, join, and then
 * deliver the winner's stream in *out or report the failures in err. */
ccb_err ccb__dial_race_run(const char *const *contacts, size_t n, const ccb_dial_config *opts,
			   ccb_stream **out, ccb_error *err);

/* Progress event (and debug log line) for attempt `a` (NULL: the dial). */
void ccb__dial_emit(race *r, attempt *a, const char *step, ccb_err code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* The "authenticated" step, carrying the handshake's outcome. */
void ccb__dial_emit_sec(race *r, attempt *a, const ccb_sec_info *sec, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- dial_attempt.c ------------------------------------------------------- */

/* Thread body of one attempt: runs it, then reports to the race (winner,
 * or a failure the launcher reacts to). */
void *ccb__dial_attempt_main(void *arg);

/* Shut down what attempt `a` registered (r->mu held). */
void ccb__dial_shutdown_registered(attempt *a);

#endif
