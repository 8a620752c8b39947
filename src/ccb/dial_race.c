/*
 * The dial's happy-eyeballs race (dial_internal.h): one thread per broker
 * attempt, launched staggered in a random order; the caller's thread waits
 * on one condition variable (monotonic clock) for a winner, a cancel, or the
 * deadline, then stops the rest and joins every thread before returning.
 * Wire reference: ccb-protocol.md §8 (several brokers).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ccb/addr.h"
#include "util/util.h"
#include "dial_internal.h"

/* ---- cancel tokens: the dials a token reaches ------------------------------- */

/* Returns false if the token was already fired. */
static bool token_attach(race *r)
{
	ccb_dial_cancel *c = r->o->cancel;
	bool ok;

	if (!c)
		return true;
	pthread_mutex_lock(&c->mu);
	ok = !c->fired;
	if (ok) {
		r->next_on_token = c->races;
		c->races = r;
	}
	pthread_mutex_unlock(&c->mu);
	return ok;
}

static void token_detach(race *r)
{
	ccb_dial_cancel *c = r->o->cancel;

	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	for (race **p = &c->races; *p; p = &(*p)->next_on_token)
		if (*p == r) {
			*p = r->next_on_token;
			break;
		}
	pthread_mutex_unlock(&c->mu);
}

/* ---- progress ---------------------------------------------------------- */


static void emit_v(race *r, attempt *a, const char *step, ccb_err code, const ccb_sec_info *sec,
		   const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

void ccb__dial_emit(race *r, attempt *a, const char *step, ccb_err code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit_v(r, a, step, code, NULL, fmt, ap);
	va_end(ap);
}

/* The "authenticated" step carries the handshake's outcome. */
void ccb__dial_emit_sec(race *r, attempt *a, const ccb_sec_info *sec, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit_v(r, a, "authenticated", CCB_OK, sec, fmt, ap);
	va_end(ap);
}

static void emit_v(race *r, attempt *a, const char *step, ccb_err code, const ccb_sec_info *sec,
		   const char *fmt, va_list ap)
{
	char detail[512];
	ccb_dial_event ev;

	vsnprintf(detail, sizeof detail, fmt, ap);
	CCB_LOG(CCB_LOG_DEBUG, "ccb dial: attempt %d %s: %s: %s", a ? a->idx : 0,
		a ? a->broker : "", step, detail);
	if (!r->o->progress)
		return;
	ev.attempt = a ? a->idx : 0;
	ev.broker = a ? a->broker : "";
	ev.step = step;
	ev.elapsed_ms = ccb_now_ms() - r->t0;
	ev.code = code;
	ev.detail = detail;
	ev.sec = sec;
	pthread_mutex_lock(&r->progress_mu);
	r->o->progress(&ev, r->o->progress_user);
	pthread_mutex_unlock(&r->progress_mu);
}

static int rank(ccb_err c)
{
	switch (c) {
	case CCB_ERR_UNKNOWN_CCBID: return 9;
	case CCB_ERR_STREAMING_UNSUPPORTED: return 8;
	case CCB_ERR_NO_CALLBACK: return 7;
	case CCB_ERR_NOT_AUTHORIZED:
	case CCB_ERR_AUTH:
	case CCB_ERR_UNSUPPORTED: return 6;
	case CCB_ERR_LIMIT: return 5;
	case CCB_ERR_PROTOCOL: return 4;
	case CCB_ERR_TIMEOUT: return 3;
	case CCB_ERR_NO_BROKER: return 2;
	case CCB_ERR_CANCELLED: return 0;
	default: return 1;
	}
}

/* Append "; " (unless first) and `piece`, cut to `budget` bytes. */
static void append_piece(char *buf, size_t size, size_t *len, const char *piece, size_t budget)
{
	char tmp[CCB_ERROR_DETAIL_SIZE];
	size_t pl = (size_t)snprintf(tmp, sizeof tmp, "%s%s", *len ? "; " : "", piece);

	if (pl >= sizeof tmp)
		pl = sizeof tmp - 1;
	if (pl > budget && budget > 5) {
		memcpy(tmp + budget - 3, "...", 4);
		pl = budget;
	}
	if (*len + pl >= size)
		return;
	memcpy(buf + *len, tmp, pl + 1);
	*len += pl;
}

static void cond_wait_until(race *r, int64_t when_ms)
{
	struct timespec ts;
	int64_t ms = when_ms - ccb_now_ms();

	if (ms <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&r->cv, &r->mu, &ts);
}

static void shuffle(const char **v, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		uint32_t x = 0;
		ccb_random_bytes(&x, sizeof x, NULL);
		size_t j = x % i;
		const char *t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

/* Whether a fixed local port or endpoint id forces one attempt at a time. */
static bool fixed_local_resource(const ccb_dial_config *o)
{
	if (o->sharedport_endpoint)
		return o->sharedport_endpoint->id != NULL;
	if (o->listen_addr && !o->streaming && !o->proxy_return_addr && !o->require_streaming) {
		ccb_sinful *s = NULL;
		bool fixed = false;
		if (!ccb_sinful_parse_address(o->listen_addr, &s, NULL))
			fixed = ccb_sinful_port(s) > 0;
		ccb_sinful_free(s);
		return fixed;
	}
	return false;
}

/* ---- the race ------------------------------------------------------------ */

static void race_free(race *r)
{
	if (r->a)
		for (size_t i = 0; i < r->n; i++)
			ccb_stream_free(r->a[i].result);
	ccb__wakeup_close(&r->stop_signal);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	pthread_mutex_destroy(&r->progress_mu);
	free(r->a);
	free(r->order);
}

/* The attempts in a random order, none started, each "not tried" until it
 * runs; the stop signal, and the condition variable on the monotonic clock. */
static ccb_err race_init(race *r, const char *const *contacts, size_t n, const ccb_dial_config *opts,
			 ccb_error *err)
{
	pthread_condattr_t ca;
	ccb_error e;

	memset(r, 0, sizeof *r);
	r->o = opts;
	r->n = n;
	r->t0 = ccb_now_ms();
	r->deadline = r->t0 + (opts->timeout_ms > 0 ? opts->timeout_ms : CCB_DIAL_DEFAULT_TIMEOUT_MS);
	r->stagger = opts->stagger_ms ? opts->stagger_ms : CCB_DIAL_DEFAULT_STAGGER_MS;
	if (fixed_local_resource(opts))
		r->stagger = -1;
	r->stop_signal = (ccb__wakeup)CCB__WAKEUP_NONE;
	pthread_mutex_init(&r->mu, NULL);
	pthread_mutex_init(&r->progress_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cv, &ca);
	pthread_condattr_destroy(&ca);
	r->a = calloc(n, sizeof *r->a);
	r->order = calloc(n, sizeof *r->order);
	if (!r->a || !r->order) {
		race_free(r);
		return ccb_error_set(err, CCB_ERR_NOMEM, "dial: out of memory");
	}
	if (ccb__wakeup_init(&r->stop_signal, &e)) {
		race_free(r);
		return ccb_error_set(err, e.code, "dial: %s", e.detail);
	}
	memcpy(r->order, contacts, n * sizeof *r->order);
	shuffle(r->order, n);
	for (size_t i = 0; i < n; i++) {
		attempt *a = &r->a[i];

		a->r = r;
		a->idx = (int)i + 1;
		a->contact = r->order[i];
		a->code = CCB_ERR_TIMEOUT;
		snprintf(a->broker, sizeof a->broker, "%s", r->order[i]);
		snprintf(a->detail, sizeof a->detail,
			 "broker %s: not tried within the dial's %lld ms", r->order[i],
			 (long long)(r->deadline - r->t0));
	}
	return CCB_OK;
}

/* Start the next attempt's thread (r->mu held). */
static void launch_next(race *r)
{
	attempt *x = &r->a[r->launched++];

	if (r->failed_pending > 0)
		r->failed_pending--;
	r->running++;
	if (pthread_create(&x->th, NULL, ccb__dial_attempt_main, x) != 0) {
		r->running--;
		x->code = CCB_ERR_NOMEM;
		snprintf(x->detail, sizeof x->detail, "broker %s: cannot start thread", x->contact);
		return;
	}
	x->started = true;
}

/* Launch attempts (the next one after `stagger` ms, or as soon as one
 * fails; one at a time when stagger is -1) and wait on the condition
 * variable until a winner, a cancel, every attempt failed, or the deadline
 * plus a grace for attempts to report their own timeout. r->mu held. */
static void race_wait(race *r)
{
	int64_t next_launch = ccb_now_ms(), grace_end = 0;

	for (;;) {
		int64_t now = ccb_now_ms(), wake;

		if (r->winner || r->cancelled)
			return;
		if (r->launched == r->n && r->running == 0)
			return;
		if (now >= r->deadline) {
			/* Attempts carry the deadline themselves; give them a moment
			 * to report their own reason before stopping them. */
			r->timed_out = true;
			if (r->running == 0)
				return;
			if (!grace_end)
				grace_end = r->deadline + CCB__DIAL_DEADLINE_GRACE_MS;
			if (now >= grace_end)
				return;
			cond_wait_until(r, grace_end);
			continue;
		}
		if (r->launched < r->n &&
		    (r->running == 0 ||
		     (r->stagger >= 0 && (r->failed_pending > 0 || now >= next_launch)))) {
			launch_next(r);
			next_launch = now + (r->stagger > 0 ? r->stagger : 0);
			continue;
		}
		wake = r->deadline;
		if (r->launched < r->n && r->stagger >= 0 && next_launch < wake)
			wake = next_launch;
		cond_wait_until(r, wake);
	}
}

/* Stop everything still running (losers, or all on cancel/deadline) and
 * join every thread. Called with r->mu held; returns with it released. */
static void race_stop_and_join(race *r)
{
	r->stop = true;
	ccb__wakeup_signal(&r->stop_signal);
	for (size_t i = 0; i < r->launched; i++)
		if (&r->a[i] != r->winner)
			ccb__dial_shutdown_registered(&r->a[i]);
	pthread_mutex_unlock(&r->mu);
	for (size_t i = 0; i < r->launched; i++)
		if (r->a[i].started)
			pthread_join(r->a[i].th, NULL);
}

/* Hand the winner's stream to the caller: through the target's shared port
 * first when it has one, then with the dial's deadline lifted. */
static ccb_err race_deliver(race *r, ccb_stream **out, ccb_error *err)
{
	const ccb_dial_config *opts = r->o;
	attempt *w = r->winner;
	ccb_stream *s = w->result;
	ccb_error e;

	w->result = NULL;
	if (opts->target_shared_port_id) {
		/* The registrant is condor_shared_port: ask it for the
		 * daemon before the command (§6.7). */
		ccb_stream_set_deadline(s, r->deadline);
		if (ccb_sharedport_send_connect(s, opts->target_shared_port_id,
						opts->shared_port_client_name, r->deadline, &e)) {
			ccb_stream_free(s);
			return ccb_error_set(err, CCB_ERR_NO_CALLBACK,
					     "dial: broker %s: shared port connect: %s", w->broker,
					     e.detail);
		}
		ccb__dial_emit(r, w, "shared port", CCB_OK, "SHARED_PORT_CONNECT %s sent",
			       opts->target_shared_port_id);
	}
	ccb_stream_set_deadline(s, INT64_MAX);
	ccb_stream_set_timeout(s, CCB_STREAM_DEFAULT_TIMEOUT_MS);
	if (opts->info) {
		snprintf(opts->info->broker, sizeof opts->info->broker, "%s", w->broker);
		opts->info->proxied = w->proxied;
		opts->info->via_shared_port = opts->target_shared_port_id != NULL;
		opts->info->attempts = (int)r->launched;
		opts->info->elapsed_ms = ccb_now_ms() - r->t0;
	}
	*out = s;
	ccb_error_clear(err);
	return CCB_OK;
}

/* Every attempt failed: the most telling failure decides the code; the
 * detail names every broker, that failure first, each cut to its share. */
static ccb_err race_report_failure(race *r, ccb_error *err)
{
	char detail[CCB_ERROR_DETAIL_SIZE * 4], shortd[CCB_ERROR_DETAIL_SIZE];
	size_t len = 0, slen = 0, budget, n = r->n;
	attempt *a = r->a, *best = &a[0];
	long long waited = (long long)(r->deadline - r->t0);

	for (size_t i = 0; i < n; i++) {
		/* An attempt stopped at the deadline timed out. */
		if (r->timed_out && a[i].code == CCB_ERR_CANCELLED) {
			bool requested = a[i].phase >= PH_REQUESTED;

			a[i].code = requested ? CCB_ERR_NO_CALLBACK : CCB_ERR_TIMEOUT;
			snprintf(a[i].detail, sizeof a[i].detail, "broker %s: %s %lld ms", a[i].broker,
				 requested ? "the target did not call back within the dial's"
					   : "timed out after the dial's",
				 waited);
		}
		if (rank(a[i].code) > rank(best->code) ||
		    (rank(a[i].code) == rank(best->code) && a[i].phase > best->phase))
			best = &a[i];
		len += (size_t)snprintf(detail + len, sizeof detail - len, "%s%s", i ? "; " : "",
					a[i].detail);
		if (len >= sizeof detail)
			len = sizeof detail - 1;
	}
	budget = (sizeof shortd - 8) / n;
	shortd[0] = '\0';
	append_piece(shortd, sizeof shortd, &slen, best->detail, budget);
	for (size_t i = 0; i < n; i++)
		if (&a[i] != best)
			append_piece(shortd, sizeof shortd, &slen, a[i].detail, budget);
	if (n == 1)
		snprintf(shortd, sizeof shortd, "%s", best->detail);
	ccb__dial_emit(r, NULL, "failed", best->code, "%s", detail);
	return ccb_error_set(err, best->code, "dial: %s", shortd);
}

ccb_err ccb__dial_race_run(const char *const *contacts, size_t n, const ccb_dial_config *opts,
			   ccb_stream **out, ccb_error *err)
{
	race r;
	bool token_ok;
	ccb_err rc;

	if ((rc = race_init(&r, contacts, n, opts, err)))
		return rc;
	token_ok = token_attach(&r);
	pthread_mutex_lock(&r.mu);
	if (!token_ok)
		r.cancelled = true;
	race_wait(&r);
	race_stop_and_join(&r);
	token_detach(&r);
	if (r.winner) {
		rc = race_deliver(&r, out, err);
	} else if (r.cancelled) {
		rc = ccb_error_set(err, CCB_ERR_CANCELLED, "dial cancelled");
		ccb__dial_emit(&r, NULL, "cancelled", rc, "dial cancelled");
	} else {
		rc = race_report_failure(&r, err);
	}
	race_free(&r);
	return rc;
}
