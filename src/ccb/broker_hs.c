/*
 * The broker's security-handshake workers and their fibers: the worker
 * threads, the fibers' wait hook, and the loop's side of a parked fiber
 * (watching its fd, waking it, its step deadline), plus the per-source
 * handshake count. Moved out of broker.c unchanged.
 */

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "ccb/commands.h"
#include "ccb/wire.h"
#include "broker_internal.h"
#include "fiber.h"
#include "cedar/stream_internal.h"
#include "security/policy.h"
#include "util/util.h"

/* Longest wait for one message of a security handshake (within the
 * handshake deadline). */
#define BK_HANDSHAKE_STEP_MS 5000

/*
 * Every security handshake (and every status reply) runs on a fiber of its
 * own (fiber.h). The blocking stream code stays as it is: when the socket
 * has nothing to read or no room to write, the stream's wait hook yields the
 * fiber back to its worker, which watches the fd in its own epoll set until
 * the step's deadline and resumes the fiber there (fibers never move between
 * threads: errno and OpenSSL's error queue are thread-local). A peer that
 * stalls mid handshake thus holds an fd and the touched pages of a fiber
 * stack, never a thread. A wait costs no thread hand-off. A worker sleeps
 * in epoll_wait on its set; bk_queue_job wakes a sleeping worker through
 * its wake-up signal.
 *
 * The workers accept (wk_accept; the listen fds are in every worker's set,
 * EPOLLEXCLUSIVE): a connection whose first message is complete is queued
 * without waking anyone and taken by the same worker next; one whose
 * message is not there yet is looked at again after the worker's next job
 * (wk_settle), then left to the loop, which queues it once complete (the
 * jobs queue) or closes it at its deadline. A finished handshake's command
 * is served by its worker too, at once if b->lock is free, else at the
 * worker's next settling. On a VM a cross-thread wake-up costs more CPU
 * than the command; this way an ordinary registration costs the loop none.
 *
 * A fiber's fd is added to its worker's set at its first wait, edge-
 * triggered, and stays there until the fiber ends: a fiber only waits after
 * the socket said EAGAIN, so an edge always follows; an edge that arrives
 * while the fiber still had bytes to read is a spurious wake-up, which the
 * stream's I/O loops absorb (they retry and wait again).
 *
 * Shutdown: hs_cancel makes every wait fail at once (without yielding);
 * bk_workers_stop wakes every worker, which resumes its waiting fibers
 * cancelled and exits only once no fiber it started is left.
 */

/* Connections a worker accepts per readable listen socket. */
#define BK_WK_ACCEPTS 4
/* Accepted connections a worker holds back for a second look. */
#define BK_WK_PEND 16

/* One worker's state. epfd/efd: its own thread only, except efd written by
 * bk_queue_job/bk_workers_stop; idle, cur and nfib under qlock. */
struct bk_wk {
	ccb_broker *b;
	unsigned idx;
	pthread_t thread;
	bool started;
	int epfd;
	ccb__wakeup wake; /* bk_queue_job and stop wake the worker */
	bool idle;           /* asleep in epoll_wait; bk_queue_job wakes it */
	bk_conn *cur;        /* the new connection it runs (for shutdown) */
	unsigned nfib;       /* live fibers it started */
	bk_list waits;       /* its fibers waiting for their fd (hs->wnode) */
	/* Accepted before their first message arrived: looked at again once
	 * this worker has run a job (wk_settle), then left to the loop. */
	bk_conn *pend[BK_WK_PEND];
	size_t npend;
	/* Finished handshakes whose command waits for b->lock (qnode). */
	bk_list fin;
	int64_t next_timer;  /* no wait deadline falls before this */
};

#define BK_WK_EVENTS 64
/* Longest sleep of an idle worker with waiting fibers (timer granularity
 * is the earliest deadline anyway; this only bounds a stale estimate). */
#define BK_WK_TICK_MS 1000

void bk_queue_job(ccb_broker *b, bk_conn *c)
{
	pthread_mutex_lock(&b->qlock);
	bk_list_add_tail(&b->jobs, &c->qnode);
	/* A busy worker takes the job when it is done; wake one only if all
	 * are asleep. A worker that accepted it takes it next itself. */
	for (unsigned i = 0; !b->worker_accepting && i < b->nworkers; i++) {
		bk_wk *w = &b->wk[i];
		if (w->idle) {
			w->idle = false;
			ccb__wakeup_signal(&w->wake);
			break;
		}
	}
	pthread_mutex_unlock(&b->qlock);
}

int bk_worker_epfd(const ccb_broker *b, unsigned i)
{
	return b->wk && i < b->nworkers ? b->wk[i].epfd : -1;
}

/* Worker: a listen socket is readable. A few connections at a time, so
 * that the other workers (woken by the next arrivals) share a burst; the
 * ones ready are queued for this worker's next turn, without a wake-up. */
static void wk_accept(bk_wk *w, int lfd)
{
	ccb_broker *b = w->b;

	pthread_mutex_lock(&b->lock);
	if (!b->accept_paused) {
		b->worker_accepting = true;
		bk_accept(b, lfd, BK_WK_ACCEPTS, w->pend, &w->npend, BK_WK_PEND);
		b->worker_accepting = false;
	}
	pthread_mutex_unlock(&b->lock);
}

/*
 * Worker: settle what it held back, under b->lock: the connections it
 * accepted before their first message (looked at again: under load a job's
 * run is time enough for it to arrive, which spares the loop a wake-up and a
 * hand-off; still silent ones go to the loop, or are closed when quitting),
 * and the finished handshakes whose command waited for the lock. With
 * `wait` the lock is waited for (the worker is about to sleep or quit: it
 * never sleeps holding either), else only tried.
 */
static void wk_settle(bk_wk *w, bool wait, bool quitting)
{
	ccb_broker *b = w->b;

	if (wait)
		pthread_mutex_lock(&b->lock);
	else if (pthread_mutex_trylock(&b->lock) != 0)
		return;
	b->worker_accepting = true;
	for (size_t i = 0; i < w->npend; i++) {
		bk_conn *c = w->pend[i];
		if (quitting)
			bk_conn_close(b, c);
		else if (bk_new_readable(b, c))
			bk_new_to_loop(b, c);
	}
	w->npend = 0;
	while (!bk_list_empty(&w->fin)) {
		bk_conn *c = bk_container(w->fin.next, bk_conn, qnode);
		bk_list_del(&c->qnode);
		bk_finish_handshake(b, c);
	}
	b->worker_accepting = false;
	pthread_mutex_unlock(&b->lock);
}

static void worker_handshake(ccb_broker *b, bk_conn *c)
{
	ccb_sec_command cmd;
	ccb_error e = {0};
	bk_sec *sec;
	ccb_err rc;

	/* The settings of the moment (ccb_broker_reload_security() swaps them;
	 * our reference keeps this block alive until the handshake is done). */
	pthread_mutex_lock(&b->qlock);
	sec = b->sec;
	atomic_fetch_add(&sec->refs, 1);
	pthread_mutex_unlock(&b->qlock);
	rc = ccb_sec_server_accept(c->s, &sec->cfg, &cmd, &e);
	bk_sec_release(sec);
	if (rc == CCB_OK) {
		c->hs->cmd = cmd.command;
		snprintf(c->hs->user, sizeof c->hs->user, "%s", cmd.info.user);
		snprintf(c->hs->peer_ip, sizeof c->hs->peer_ip, "%s", cmd.peer_ip);
		if (cmd.info.peer_version[0]) {
			int ma, mi, pa;
			unsigned num;
			if (ccb__sec_version_parse(cmd.info.peer_version, &ma, &mi, &pa, &num, NULL) == CCB_OK)
				c->peer_version = num;
		}
		/* The command's first message belongs to the handshake's deadline. */
		ccb_stream_set_max_message(c->s, b->max_message);
		switch (c->hs->cmd) {
		case CCB_CMD_CCB_REGISTER:
			rc = ccb_control_ad_read(c->s, &c->hs->ad, &e);
			/* A registration socket never turns encryption on later:
			 * its plaintext need not be digested any more. */
			ccb__stream_stop_digests(c->s);
			break;
		case CCB_CMD_CCB_REQUEST:
		case CCB_CMD_CCB_PROXY_CONNECT:
			rc = ccb_control_ad_read(c->s, &c->hs->ad, &e);
			break;
		case CCB_CMD_CCB_REVERSE_CONNECT:
			rc = ccb_hello_read_ad(c->s, c->hs->cmd, NULL, &c->hs->ad, &e);
			break;
		default:
			break;
		}
	}
	c->hs->rc = rc;
	if (rc)
		snprintf(c->hs->err, sizeof c->hs->err, "%s", e.detail);
}

static void worker_send(ccb_broker *b, bk_conn *c)
{
	(void)b;
	/* The status reply: one string; may be large, so not in the loop. */
	ccb_stream_set_deadline(c->s, ccb_deadline_in(10000));
	if (ccb_stream_put_string(c->s, c->hs->send_text) || ccb_stream_end_message(c->s))
		CCB_LOG(CCB_LOG_INFO, "broker: status reply to %s: %s", bk_peer(c),
			ccb_stream_error(c->s)->detail);
	c->hs->rc = CCB_ERR_CLOSED; /* loop closes it */
}

static void fiber_main(void *arg)
{
	bk_conn *c = arg;

	if (c->state == BK_SEND)
		worker_send(c->hs->owner, c);
	else
		worker_handshake(c->hs->owner, c);
}

/* The stream's wait hook, on the fiber: park until the worker sees the fd
 * ready (> 0), the deadline passed (0) or the broker is stopping (< 0). */
static int fiber_wait(void *ctx, int fd, short events, int64_t deadline)
{
	bk_conn *c = ctx;

	(void)fd;
	if (atomic_load(&c->hs->owner->hs_cancel))
		return -1;
	if (deadline <= ccb_now_ms())
		return 0;
	c->hs->wait_events = events;
	c->hs->wait_deadline = deadline;
	ccb__fiber_yield(c->hs->fib);
	return c->hs->wait_res;
}

/* Worker: watch a fiber that yielded; false when its fd cannot be watched
 * (then the wait fails). */
static bool wk_watch(bk_wk *w, bk_conn *c)
{
	uint32_t want = (c->hs->wait_events & POLLOUT ? EPOLLOUT : EPOLLIN | EPOLLRDHUP) | EPOLLET;

	if (c->hs->wait_registered != want) {
		struct epoll_event ev = {.events = want, .data.ptr = c};
		int op = c->hs->wait_registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
		if (epoll_ctl(w->epfd, op, c->fd, &ev) < 0)
			return false;
		c->hs->wait_registered = want;
	}
	c->hs->waiting = true;
	bk_list_add_tail(&w->waits, &c->hs->wnode);
	atomic_fetch_add(&w->b->hs_nwait, 1);
	if (c->hs->wait_deadline < w->next_timer)
		w->next_timer = c->hs->wait_deadline;
	return true;
}

/* Worker: run c's fiber (starting it if new) until it waits or ends; an
 * ended handshake's command is served here (now, or at wk_settle). */
static void wk_run(bk_wk *w, bk_conn *c)
{
	ccb_broker *b = w->b;
	for (;;) {
		bool finished;
		if (!c->s || !c->hs->fib) {
			c->hs->rc = CCB_ERR_NOMEM;
			snprintf(c->hs->err, sizeof c->hs->err, "out of memory for the handshake");
			finished = true;
		} else {
			finished = ccb__fiber_resume(c->hs->fib);
		}
		if (!finished) {
			if (!atomic_load(&b->hs_cancel) && wk_watch(w, c))
				return;
			/* Stopping, or the fd cannot be watched: fail the wait. */
			c->hs->wait_res = -1;
			continue;
		}
		break;
	}
	if (c->hs->wait_registered) {
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		c->hs->wait_registered = 0;
	}
	if (c->hs->fib) {
		ccb__stream_set_wait_hook(c->s, NULL, NULL);
		ccb__fiber_free(c->hs->fib);
		c->hs->fib = NULL;
	}
	pthread_mutex_lock(&b->qlock);
	if (c->hs->counted_fib) {
		c->hs->counted_fib = false;
		w->nfib--;
	}
	if (w->cur == c)
		w->cur = NULL;
	pthread_mutex_unlock(&b->qlock);
	/* The command is served here, not handed to the loop: a hand-off
	 * costs a wake-up, more CPU on a virtual machine than the command
	 * itself. The lock is only tried now; if it is taken the command
	 * waits for the worker's next settling (wk_settle). The loop frees
	 * closed connections itself (bk_conn_reap), after any event of its
	 * current batch that may still point at them. */
	if (pthread_mutex_trylock(&b->lock) == 0) {
		bk_finish_handshake(b, c);
		pthread_mutex_unlock(&b->lock);
		return;
	}
	bk_list_add_tail(&w->fin, &c->qnode);
}

/* Worker: a fiber's wait is over (res as fiber_wait returns it). */
static void wk_wake(bk_wk *w, bk_conn *c, int res)
{
	bk_list_del(&c->hs->wnode);
	atomic_fetch_sub(&w->b->hs_nwait, 1);
	c->hs->waiting = false;
	c->hs->wait_res = res;
	wk_run(w, c);
}

/* Worker: fail the waits whose deadline has passed (all of them when
 * stopping); recompute the earliest deadline. */
static void wk_timers(bk_wk *w, int64_t now, bool cancel)
{
	bk_list *n, *next;
	int64_t first = now + BK_WK_TICK_MS;

	/* A fiber woken here may wait again: it goes to the tail, after
	 * `next`; it is seen again in this pass only with a deadline already
	 * past, which cannot happen (fiber_wait returns 0 then). */
	for (n = w->waits.next; n != &w->waits; n = next) {
		bk_conn *c = bk_container(n, bk_hs, wnode)->conn;
		next = n->next;
		if (cancel)
			wk_wake(w, c, -1);
		else if (c->hs->wait_deadline <= now)
			wk_wake(w, c, 0);
		else if (c->hs->wait_deadline < first)
			first = c->hs->wait_deadline;
	}
	w->next_timer = first;
}

/* Worker: the next new handshake (NULL: none), and whether to quit (qlock
 * held). */
static bk_conn *wk_take(bk_wk *w, bool *quit)
{
	ccb_broker *b = w->b;
	bk_conn *c;

	w->cur = NULL;
	*quit = b->wquit && !w->nfib;
	if (b->wquit || bk_list_empty(&b->jobs))
		return NULL;
	c = bk_container(b->jobs.next, bk_conn, qnode);
	bk_list_del(&c->qnode);
	if (!c->s) {
		ccb_error e;
		/* accept4 made the fd non-blocking and gave the peer's address. */
		if (ccb__stream_new_named(c->fd, c->hs->peer, true, &c->s, &e) == CCB_OK) {
			ccb_stream_set_deadline(c->s, c->deadline_ms);
			/* Each step of the handshake gets a few seconds at most. */
			ccb_stream_set_timeout(c->s, BK_HANDSHAKE_STEP_MS);
		} else {
			c->fd = -1;
		}
	}
	if (c->s && !c->hs->fib) {
		c->hs->owner = b;
		c->hs->home = w->idx;
		if ((c->hs->fib = ccb__fiber_new(0, fiber_main, c))) {
			ccb__stream_set_wait_hook(c->s, fiber_wait, c);
			w->nfib++;
			c->hs->counted_fib = true;
		}
	}
	w->cur = c;
	return c;
}

/*
 * A worker's loop: new handshakes from the shared queue, and the events of
 * its own fibers' fds. It sleeps only when there is no job; with a job
 * waiting it still polls its set (without sleeping) so that waiting fibers
 * are not starved by a stream of new connections.
 */
static void *worker_main(void *arg)
{
	bk_wk *w = arg;
	ccb_broker *b = w->b;
	struct epoll_event ev[BK_WK_EVENTS];

	w->next_timer = INT64_MAX;
	for (;;) {
		bk_conn *c;
		bool quit, cancel, held;
		int timeout = 0, n;
		int64_t now;

		pthread_mutex_lock(&b->qlock);
		c = wk_take(w, &quit);
		held = w->npend || !bk_list_empty(&w->fin);
		if (quit) {
			pthread_mutex_unlock(&b->qlock);
			if (held)
				wk_settle(w, true, true);
			return NULL;
		}
		if (!c && !held) {
			if (bk_list_empty(&w->waits)) {
				timeout = -1;
			} else {
				now = ccb_now_ms();
				timeout = w->next_timer <= now ? 0
					  : (int)(w->next_timer - now < BK_WK_TICK_MS ? w->next_timer - now
										  : BK_WK_TICK_MS);
			}
			w->idle = true;
		}
		pthread_mutex_unlock(&b->qlock);

		if (c)
			wk_run(w, c);
		/* Connections it accepted that are now ready are queued: it
		 * takes them next. */
		if (w->npend || !bk_list_empty(&w->fin))
			wk_settle(w, !c, false);
		if (c && bk_list_empty(&w->waits))
			continue;
		n = epoll_wait(w->epfd, ev, BK_WK_EVENTS, timeout);
		if (!c) {
			pthread_mutex_lock(&b->qlock);
			w->idle = false;
			pthread_mutex_unlock(&b->qlock);
		}
		for (int i = 0; i < n; i++) {
			bk_conn *fc = ev[i].data.ptr;
			if (!fc) {
				ccb__wakeup_drain(&w->wake);
				continue;
			}
			if (bk_is_listen(b, fc)) {
				wk_accept(w, fc->fd);
				continue;
			}
			if (fc->hs->waiting)
				wk_wake(w, fc, 1);
		}
		cancel = atomic_load(&b->hs_cancel);
		now = ccb_now_ms();
		if (cancel || now >= w->next_timer)
			wk_timers(w, now, cancel);
	}
}

ccb_err bk_workers_start(ccb_broker *b, ccb_error *err)
{
	b->wk = calloc(b->nworkers, sizeof *b->wk);
	if (!b->wk)
		return ccb_error_set(err, CCB_ERR_NOMEM, "broker");
	for (unsigned i = 0; i < b->nworkers; i++) {
		bk_wk *w = &b->wk[i];
		*w = (bk_wk){.b = b, .idx = i, .epfd = -1, .wake = CCB__WAKEUP_NONE};
		bk_list_init(&w->waits);
		bk_list_init(&w->fin);
	}
	for (unsigned i = 0; i < b->nworkers; i++) {
		bk_wk *w = &b->wk[i];
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (ccb__wakeup_init(&w->wake, err))
			return ccb_error_prefix(err, "broker: worker: ");
		if (w->epfd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, ccb__wakeup_fd(&w->wake), &ev) < 0)
			return ccb_error_set(err, CCB_ERR_IO, "broker: worker epoll: %s",
					     ccb__strerror(errno));
		if (pthread_create(&w->thread, NULL, worker_main, w))
			return ccb_error_set(err, CCB_ERR_NOMEM, "broker: worker thread");
		w->started = true;
	}
	return CCB_OK;
}

void bk_workers_stop(ccb_broker *b)
{
	if (!b->wk)
		return;
	pthread_mutex_lock(&b->qlock);
	atomic_store(&b->hs_cancel, true);
	b->wquit = true;
	for (unsigned i = 0; i < b->nworkers; i++) {
		bk_wk *w = &b->wk[i];
		if (w->cur && w->cur->s)
			ccb_stream_shutdown(w->cur->s);
		ccb__wakeup_signal(&w->wake);
	}
	pthread_mutex_unlock(&b->qlock);
	for (unsigned i = 0; i < b->nworkers; i++)
		if (b->wk[i].started) {
			pthread_join(b->wk[i].thread, NULL);
			b->wk[i].started = false;
		}
}

void bk_workers_free(ccb_broker *b)
{
	if (!b->wk)
		return;
	for (unsigned i = 0; i < b->nworkers; i++) {
		if (b->wk[i].epfd >= 0)
			close(b->wk[i].epfd);
		ccb__wakeup_close(&b->wk[i].wake);
	}
	free(b->wk);
	b->wk = NULL;
}

static uint64_t src_key(const char *ip)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *ip; ip++)
		h = (h ^ (uint8_t)*ip) * 0x100000001b3ULL;
	return h;
}

/* Loop: count a handshake against its source; false when the source is at
 * its cap (CCB_SERVER_MAX_HANDSHAKES_PER_SOURCE). */
bool bk_hs_admit(ccb_broker *b, bk_conn *c)
{
	uint64_t k = src_key(c->hs->peer_ip);
	uintptr_t n = (uintptr_t)bk_map_get(&b->hs_src, k);

	if (n >= b->hs_per_source) {
		b->st.handshakes_source_refused++;
		if (b->st.handshakes_source_refused % 1000 == 1)
			CCB_LOG(CCB_LOG_WARNING,
				"broker: %s already has %u security handshakes in progress "
				"(CCB_SERVER_MAX_HANDSHAKES_PER_SOURCE); refusing %s (%llu refused so far)",
				c->hs->peer_ip, b->hs_per_source, c->hs->peer,
				(unsigned long long)b->st.handshakes_source_refused);
		return false;
	}
	if (!bk_map_put(&b->hs_src, k, (void *)(n + 1)))
		return false;
	/* The key is kept: the handshake rewrites peer_ip. */
	c->hs->src_key = k;
	c->hs->counted = true;
	b->hs_active++;
	return true;
}

void bk_hs_release(ccb_broker *b, bk_conn *c)
{
	uint64_t k;
	uintptr_t n;

	if (!c->hs->counted)
		return;
	c->hs->counted = false;
	k = c->hs->src_key;
	n = (uintptr_t)bk_map_get(&b->hs_src, k);
	if (n > 1)
		bk_map_put(&b->hs_src, k, (void *)(n - 1));
	else
		bk_map_del(&b->hs_src, k);
	if (b->hs_active)
		b->hs_active--;
}

/* Connections left on the worker queues once the workers are gone. */
void bk_drain_queues(ccb_broker *b)
{
	while (!bk_list_empty(&b->jobs)) {
		bk_conn *c = bk_container(b->jobs.next, bk_conn, qnode);
		bk_list_del(&c->qnode);
		bk_conn_close(b, c);
	}
}
