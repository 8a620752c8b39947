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
#include <sys/epoll.h>
#include <unistd.h>

#include "ccb/commands.h"
#include "ccb/wire.h"
#include "ccb/broker_internal.h"
#include "ccb/fiber.h"
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
 * fiber back to its worker, which hands the connection to the loop; the
 * loop watches the fd (epoll) and the step's deadline and queues the fiber
 * back on the worker that started it (fibers never move between threads:
 * errno and OpenSSL's error queue are thread-local). A peer that stalls mid
 * handshake thus holds an fd and the touched pages of a fiber stack, never
 * a thread; workers only ever run CPU-bound steps.
 *
 * Shutdown: hs_cancel makes every wait fail at once (without yielding), the
 * fibers the loop is watching are queued back cancelled, and a worker exits
 * only once no fiber it started is left.
 */

void bk_queue_job(ccb_broker *b, bk_conn *c)
{
	pthread_mutex_lock(&b->qlock);
	bk_list_add_tail(&b->jobs, &c->qnode);
	pthread_cond_signal(&b->qcond);
	pthread_mutex_unlock(&b->qlock);
}

static void worker_handshake(ccb_broker *b, bk_conn *c)
{
	ccb_sec_command cmd;
	ccb_error e = {0};
	ccb_sec_server_config sec;
	ccb_err rc;

	/* The settings of the moment (ccb_broker_reload_security() swaps them). */
	pthread_mutex_lock(&b->qlock);
	sec = b->sec;
	pthread_mutex_unlock(&b->qlock);
	rc = ccb_sec_server_accept(c->s, &sec, &cmd, &e);
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

/* The stream's wait hook, on the fiber: park until the loop says the fd is
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

/* Next connection for worker idx (qlock held): resumed fibers first, then
 * new handshakes; NULL when it is time to quit. */
static bk_conn *worker_next(ccb_broker *b, unsigned idx)
{
	for (;;) {
		bk_list *l = NULL;
		if (!bk_list_empty(&b->rq[idx]))
			l = &b->rq[idx];
		else if (b->wquit && !b->wfib[idx])
			return NULL;
		else if (!b->wquit && !bk_list_empty(&b->jobs))
			l = &b->jobs;
		if (l) {
			bk_conn *c = bk_container(l->next, bk_conn, qnode);
			bk_list_del(&c->qnode);
			return c;
		}
		pthread_cond_wait(&b->qcond, &b->qlock);
	}
}

void *bk_worker_main(void *arg)
{
	bk_worker_arg *wa = arg;
	ccb_broker *b = wa->b;
	unsigned idx = wa->idx;

	free(wa);
	for (;;) {
		bk_conn *c;
		uint64_t one = 1;
		bool finished, had_fiber;

		pthread_mutex_lock(&b->qlock);
		if (!(c = worker_next(b, idx))) {
			pthread_mutex_unlock(&b->qlock);
			return NULL;
		}
		if (!c->s) {
			ccb_error e;
			int fd = c->fd;
			if (ccb_stream_new(fd, &c->s, &e) == CCB_OK) {
				ccb_stream_set_peer_name(c->s, c->hs->peer);
				ccb_stream_set_deadline(c->s, c->deadline_ms);
				/* Each step of the handshake gets a few seconds at most. */
				ccb_stream_set_timeout(c->s, BK_HANDSHAKE_STEP_MS);
			} else {
				c->fd = -1;
			}
		}
		if (c->s && !c->hs->fib) {
			c->hs->owner = b;
			c->hs->home = idx;
			if ((c->hs->fib = ccb__fiber_new(0, fiber_main, c))) {
				ccb__stream_set_wait_hook(c->s, fiber_wait, c);
				b->wfib[idx]++;
			}
		}
		b->wcur[idx] = c;
		pthread_mutex_unlock(&b->qlock);

		had_fiber = c->hs->fib != NULL;
		if (!c->s || !c->hs->fib) {
			c->hs->rc = CCB_ERR_NOMEM;
			snprintf(c->hs->err, sizeof c->hs->err, "out of memory for the handshake");
			finished = true;
		} else {
			finished = ccb__fiber_resume(c->hs->fib);
		}
		if (finished && c->hs->fib) {
			ccb__stream_set_wait_hook(c->s, NULL, NULL);
			ccb__fiber_free(c->hs->fib);
			c->hs->fib = NULL;
		}

		pthread_mutex_lock(&b->qlock);
		b->wcur[idx] = NULL;
		if (finished && had_fiber)
			b->wfib[idx]--;
		c->hs->waiting = !finished;
		if (c->hs->waiting && atomic_load(&b->hs_cancel)) {
			/* Stopping: no one watches the fd any more; run it out. */
			c->hs->waiting = false;
			c->hs->wait_res = -1;
			bk_list_add_tail(&b->rq[idx], &c->qnode);
		} else {
			bk_list_add_tail(&b->done, &c->qnode);
		}
		pthread_mutex_unlock(&b->qlock);
		if (write(b->done_efd, &one, sizeof one) < 0) {
			/* eventfd counter overflow is impossible here */
		}
	}
}

/* Loop: a parked fiber's wait is over (res as fiber_wait returns it). */
void bk_fiber_wake(ccb_broker *b, bk_conn *c, int res)
{
	bk_epoll_del(b, c);
	bk_list_del(&c->hs->wnode);
	if (b->hs_nwait)
		b->hs_nwait--;
	c->hs->waiting = false;
	c->hs->wait_res = res;
	pthread_mutex_lock(&b->qlock);
	bk_list_add_tail(&b->rq[c->hs->home], &c->qnode);
	pthread_cond_broadcast(&b->qcond);
	pthread_mutex_unlock(&b->qlock);
}

/* Loop: watch a parked fiber's fd until its step deadline. */
void bk_fiber_park(ccb_broker *b, bk_conn *c)
{
	uint32_t ev = c->hs->wait_events & POLLOUT ? EPOLLOUT : EPOLLIN | EPOLLRDHUP;

	bk_list_add_tail(&b->hs_wait, &c->hs->wnode);
	b->hs_nwait++;
	if (!bk_epoll_add(b, c, ev))
		bk_fiber_wake(b, c, -1);
}

/* Loop: fail the waits whose deadline has passed. */
void bk_fiber_timers(ccb_broker *b, int64_t now)
{
	bk_list *n, *next;

	for (n = b->hs_wait.next; n != &b->hs_wait; n = next) {
		bk_conn *c = bk_container(n, bk_hs, wnode)->conn;
		next = n->next;
		if (c->hs->wait_deadline <= now)
			bk_fiber_wake(b, c, 0);
	}
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

void bk_workers_stop(ccb_broker *b)
{
	if (!b->workers)
		return;
	pthread_mutex_lock(&b->qlock);
	atomic_store(&b->hs_cancel, true);
	/* Parked fibers (the loop's) and those parked but not yet seen by
	 * the loop go back to their workers, cancelled. */
	while (!bk_list_empty(&b->hs_wait)) {
		bk_conn *c = bk_container(b->hs_wait.next, bk_hs, wnode)->conn;
		bk_epoll_del(b, c);
		bk_list_del(&c->hs->wnode);
		c->hs->waiting = false;
		c->hs->wait_res = -1;
		bk_list_add_tail(&b->rq[c->hs->home], &c->qnode);
	}
	b->hs_nwait = 0;
	for (bk_list *n = b->done.next, *next; n != &b->done; n = next) {
		bk_conn *c = bk_container(n, bk_conn, qnode);
		next = n->next;
		if (c->hs->waiting) {
			bk_list_del(&c->qnode);
			c->hs->waiting = false;
			c->hs->wait_res = -1;
			bk_list_add_tail(&b->rq[c->hs->home], &c->qnode);
		}
	}
	b->wquit = true;
	for (unsigned i = 0; i < b->nworkers; i++)
		if (b->wcur[i] && b->wcur[i]->s)
			ccb_stream_shutdown(b->wcur[i]->s);
	pthread_cond_broadcast(&b->qcond);
	pthread_mutex_unlock(&b->qlock);
	for (unsigned i = 0; i < b->nworkers; i++)
		if (b->workers[i])
			pthread_join(b->workers[i], NULL);
	free(b->workers);
	b->workers = NULL;
}

/* Connections left on the worker queues once the workers are gone. */
void bk_drain_queues(ccb_broker *b)
{
	while (!bk_list_empty(&b->jobs)) {
		bk_conn *c = bk_container(b->jobs.next, bk_conn, qnode);
		bk_list_del(&c->qnode);
		bk_conn_close(b, c);
	}
	while (!bk_list_empty(&b->done)) {
		bk_conn *c = bk_container(b->done.next, bk_conn, qnode);
		bk_list_del(&c->qnode);
		bk_conn_close(b, c);
	}
}
