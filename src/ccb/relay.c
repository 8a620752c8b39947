/*
 * Relay engine for the broker's streaming mode (ccb-protocol.md §7.7).
 *
 * Layout: an engine owns `threads` workers. Each worker has an epoll set, a
 * wake-up (util/wakeup.h: new relays, stop) and the list of relays it owns.
 * ccb__relay_start() prepares a relay on the caller's thread (fds
 * non-blocking, pipes) and queues it on a worker under that worker's mutex;
 * from then on only the worker touches it, so no per-relay locking exists.
 *
 * Per relay there are two directions (a->b, b->a). A direction moves bytes
 * either with splice(2) source -> pipe -> destination, or with recv/send
 * through the worker's shared scratch buffer; only bytes the destination did
 * not take are kept in a per-direction heap buffer (so an idle or flowing
 * copy-mode relay holds no buffer). While a direction holds unsent bytes it
 * does not read its source, so TCP backpressure reaches the sender.
 *
 * Sockets are registered edge-triggered for input and output; any event on
 * either socket of a relay pumps both directions until they would block, with
 * a per-wake budget so one fast relay cannot starve the others (a relay that
 * used its budget is put on the worker's ready list and pumped again after the
 * next non-blocking epoll_wait).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "relay.h"
#include "util/util.h"
#include "util/wakeup.h"

/* Pipe size asked for with F_SETPIPE_SZ (default pipes hold 64 KiB). The
 * kernel refuses it past pipe-max-size or the per-user pipe quota
 * (pipe-user-pages-soft, 64 MiB of pipe pages by default); the pipe then keeps
 * what it got. Past the soft quota new pipes only get 2 pages: splice still
 * works, with smaller steps. Every relay starts with RELAY_PIPE_SIZE; a
 * direction that has moved RELAY_GROW_AFTER bytes (a bulk transfer) asks once
 * for RELAY_PIPE_BULK (the default pipe-max-size). That cuts the splice
 * calls per GiB about five-fold (strace -c) and the relay's CPU per GiB by
 * 7-14 % (bench_relay, 256 KiB blasts both ways: 0.28 -> 0.25 s/GiB over four
 * runs of 5-8 rounds; HTCondor's ccb_proxy_bench through `ccbctl broker`,
 * three sessions: 0.270 / 0.296 / 0.307 -> 0.250 / 0.266 / 0.264 s/GiB);
 * throughput did not change measurably (docs/performance.md, "Relay").
 * Idle or interactive relays never grow, so they use the quota no faster
 * than before. */
#define RELAY_PIPE_SIZE (128 * 1024)
#define RELAY_PIPE_BULK (1024 * 1024)
#define RELAY_GROW_AFTER (1024 * 1024)
/* Shared scratch buffer for user-space copies, one per worker. */
#define RELAY_SCRATCH_SIZE (64 * 1024)
/* Bytes one direction may move per wake before yielding to other relays. */
#define RELAY_BUDGET (4u * 1024 * 1024)
#define RELAY_MAX_EVENTS 128

struct relay;

/* epoll user data: which relay and which of its two sockets. */
struct endpoint {
	struct relay *r;
	int side;
};

struct dir {
	int src, dst;
	int pr, pw;          /* pipe read/write ends; -1 in copy mode */
	size_t pipe_cap;     /* capacity of the pipe */
	bool grown;          /* asked for RELAY_PIPE_BULK already */
	size_t pending;      /* bytes taken from src, not yet given to dst */
	uint8_t *buf;        /* copy mode: unsent bytes (heap, only while pending) */
	size_t buf_off;
	bool eof;            /* source gave EOF */
	bool done;           /* EOF seen, drained, dst shut down for writing */
	uint64_t bytes;
};

struct worker;

struct relay {
	struct worker *w;
	int fd[2];
	struct endpoint ep[2];
	struct dir d[2];     /* d[0]: a -> b, d[1]: b -> a */
	ccb__relay_done_fn done;
	void *user;
	bool registered;     /* fds are in the worker's epoll set */
	bool finished;       /* closed; freed after the current batch */
	bool on_ready;
	struct relay *next, *prev;   /* worker's live list */
	struct relay *qnext;         /* start queue / dead list */
	struct relay *rnext;         /* ready list */
};

struct worker {
	ccb__relay_engine *e;
	pthread_t th;
	bool started;
	int ep;
	ccb__wakeup wake; /* new relays queued, or stop */
	pthread_mutex_t mu;
	struct relay *queue;         /* under mu */
	bool closed;                 /* under mu: no more relays accepted */
	atomic_bool stop;
	/* owned by the worker thread */
	struct relay *live;
	struct relay *ready;
	struct relay *dead;
	uint8_t *scratch;
};

struct ccb__relay_engine {
	unsigned nworkers;
	struct worker *workers;
	size_t max_relays;
	bool force_copy;
	atomic_bool stopping;
	atomic_uint next_worker;
	atomic_uint_fast64_t sessions, active, bytes, failed, refused;
};

/* ---- helpers ----------------------------------------------------------- */

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static bool set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return false;
	if (fl & O_NONBLOCK)
		return true;
	return fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

/* A pipe for one direction; false leaves the direction in copy mode. */
static bool dir_make_pipe(struct dir *d)
{
	int p[2];
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
		CCB_LOG(CCB_LOG_DEBUG, "relay: pipe2 failed (%s), using user-space copy", ccb__strerror(errno));
		return false;
	}
	(void)fcntl(p[1], F_SETPIPE_SZ, RELAY_PIPE_SIZE);
	int sz = fcntl(p[1], F_GETPIPE_SZ);
	d->pr = p[0];
	d->pw = p[1];
	d->pipe_cap = sz > 0 ? (size_t)sz : 65536;
	return true;
}

/* A bulk direction: ask once for a larger pipe (refused past the quota or
 * pipe-max-size: the pipe keeps its size). The pipe may hold data; growing
 * keeps it. */
static void dir_grow_pipe(struct dir *d)
{
	d->grown = true;
	if (fcntl(d->pw, F_SETPIPE_SZ, RELAY_PIPE_BULK) < 0)
		return;
	int sz = fcntl(d->pw, F_GETPIPE_SZ);
	if (sz > 0)
		d->pipe_cap = (size_t)sz;
}

/* Swallow a SIGPIPE that splice() may have raised on this (signal-blocked)
 * thread, so it does not stay pending. */
static void eat_sigpipe(void)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGPIPE);
	struct timespec zero = {0, 0};
	while (sigtimedwait(&s, NULL, &zero) == SIGPIPE) {
	}
}

static bool hard_error(int err)
{
	return err != EAGAIN && err != EWOULDBLOCK && err != EINTR;
}

/* Switch a direction from splice to copy mode, keeping bytes already in the
 * pipe. Returns false on a hard error. */
static bool dir_to_copy(struct dir *d)
{
	if (d->pending > 0) {
		uint8_t *b = malloc(d->pending);
		if (!b)
			return false;
		size_t got = 0;
		while (got < d->pending) {
			ssize_t n = read(d->pr, b + got, d->pending - got);
			if (n <= 0) {
				if (n < 0 && errno == EINTR)
					continue;
				free(b);
				return false;
			}
			got += (size_t)n;
		}
		d->buf = b;
		d->buf_off = 0;
	}
	close_fd(&d->pr);
	close_fd(&d->pw);
	return true;
}

enum pump_result { PUMP_IDLE, PUMP_BUDGET, PUMP_FAIL };

static void count_bytes(struct relay *r, struct dir *d, size_t n)
{
	d->bytes += n;
	atomic_fetch_add_explicit(&r->w->e->bytes, n, memory_order_relaxed);
}

/* splice mode: move what can be moved now. */
static enum pump_result pump_splice(struct relay *r, struct dir *d)
{
	size_t moved = 0;
	for (;;) {
		bool progress = false;
		if (!d->eof && d->pending < d->pipe_cap) {
			ssize_t n = splice(d->src, NULL, d->pw, NULL, d->pipe_cap - d->pending,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				d->pending += (size_t)n;
				progress = true;
			} else if (n == 0) {
				d->eof = true;
				progress = true;
			} else if (errno == EINVAL || errno == ENOSYS) {
				return dir_to_copy(d) ? PUMP_BUDGET : PUMP_FAIL;
			} else if (hard_error(errno)) {
				CCB_LOG(CCB_LOG_DEBUG, "relay: read fd %d: %s", d->src, ccb__strerror(errno));
				return PUMP_FAIL;
			}
		}
		if (d->pending > 0) {
			ssize_t n = splice(d->pr, NULL, d->dst, NULL, d->pending,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				d->pending -= (size_t)n;
				count_bytes(r, d, (size_t)n);
				moved += (size_t)n;
				progress = true;
				if (!d->grown && d->bytes >= RELAY_GROW_AFTER)
					dir_grow_pipe(d);
			} else if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
				return dir_to_copy(d) ? PUMP_BUDGET : PUMP_FAIL;
			} else if (n < 0 && hard_error(errno)) {
				if (errno == EPIPE)
					eat_sigpipe();
				CCB_LOG(CCB_LOG_DEBUG, "relay: write fd %d: %s", d->dst, ccb__strerror(errno));
				return PUMP_FAIL;
			}
		}
		if (!progress || (d->eof && d->pending == 0))
			return PUMP_IDLE;
		if (moved >= RELAY_BUDGET)
			return PUMP_BUDGET;
	}
}

/* Send d->buf's pending bytes; true if all went (or would block: *blocked). */
static bool copy_flush(struct relay *r, struct dir *d, bool *blocked, size_t *moved)
{
	while (d->pending > 0) {
		ssize_t n = send(d->dst, d->buf + d->buf_off, d->pending, MSG_NOSIGNAL);
		if (n > 0) {
			d->pending -= (size_t)n;
			d->buf_off += (size_t)n;
			count_bytes(r, d, (size_t)n);
			*moved += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && !hard_error(errno)) {
			*blocked = true;
			return true;
		}
		CCB_LOG(CCB_LOG_DEBUG, "relay: send fd %d: %s", d->dst, n < 0 ? ccb__strerror(errno) : "sent 0");
		return false;
	}
	free(d->buf);
	d->buf = NULL;
	d->buf_off = 0;
	return true;
}

/* copy mode: recv into the worker's scratch, send at once, keep the rest. */
static enum pump_result pump_copy(struct relay *r, struct dir *d)
{
	size_t moved = 0;
	uint8_t *scratch = r->w->scratch;
	for (;;) {
		bool blocked = false;
		if (d->pending > 0) {
			if (!copy_flush(r, d, &blocked, &moved))
				return PUMP_FAIL;
			if (blocked)
				return PUMP_IDLE;
		}
		if (d->eof)
			return PUMP_IDLE;
		if (moved >= RELAY_BUDGET)
			return PUMP_BUDGET;
		ssize_t n = recv(d->src, scratch, RELAY_SCRATCH_SIZE, 0);
		if (n == 0) {
			d->eof = true;
			return PUMP_IDLE;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (!hard_error(errno))
				return PUMP_IDLE;
			CCB_LOG(CCB_LOG_DEBUG, "relay: recv fd %d: %s", d->src, ccb__strerror(errno));
			return PUMP_FAIL;
		}
		size_t got = (size_t)n, sent = 0;
		while (sent < got) {
			ssize_t m = send(d->dst, scratch + sent, got - sent, MSG_NOSIGNAL);
			if (m > 0) {
				sent += (size_t)m;
				continue;
			}
			if (m < 0 && errno == EINTR)
				continue;
			if (m < 0 && !hard_error(errno))
				break;
			CCB_LOG(CCB_LOG_DEBUG, "relay: send fd %d: %s", d->dst, m < 0 ? ccb__strerror(errno) : "sent 0");
			return PUMP_FAIL;
		}
		if (sent > 0) {
			count_bytes(r, d, sent);
			moved += sent;
		}
		if (sent < got) {
			d->buf = malloc(got - sent);
			if (!d->buf)
				return PUMP_FAIL;
			memcpy(d->buf, scratch + sent, got - sent);
			d->buf_off = 0;
			d->pending = got - sent;
			return PUMP_IDLE; /* wait for EPOLLOUT on dst */
		}
	}
}

static enum pump_result pump_dir(struct relay *r, struct dir *d)
{
	if (d->done)
		return PUMP_IDLE;
	/* A splice -> copy switch returns PUMP_BUDGET: the relay is pumped again soon. */
	enum pump_result res = d->pr >= 0 ? pump_splice(r, d) : pump_copy(r, d);
	if (res == PUMP_FAIL)
		return res;
	if (d->eof && d->pending == 0) {
		/* ccb-protocol.md §7.7: source EOF, drained -> half-close the destination. */
		if (shutdown(d->dst, SHUT_WR) != 0 && errno != ENOTCONN)
			CCB_LOG(CCB_LOG_DEBUG, "relay: shutdown fd %d: %s", d->dst, ccb__strerror(errno));
		d->done = true;
		return PUMP_IDLE;
	}
	return res;
}

/* ---- relay lifetime ---------------------------------------------------- */

static void relay_free_mem(struct relay *r)
{
	for (int i = 0; i < 2; i++) {
		close_fd(&r->d[i].pr);
		close_fd(&r->d[i].pw);
		free(r->d[i].buf);
	}
	free(r);
}

/* Close both sockets, update stats, call done. The memory stays until the
 * worker's batch ends (other events of the same batch may still name it). */
static void relay_finish(struct relay *r, bool failed)
{
	struct worker *w = r->w;
	ccb__relay_engine *e = w->e;
	if (r->finished)
		return;
	r->finished = true;
	for (int i = 0; i < 2; i++) {
		if (r->registered)
			(void)epoll_ctl(w->ep, EPOLL_CTL_DEL, r->fd[i], NULL);
		close_fd(&r->fd[i]);
		close_fd(&r->d[i].pr);
		close_fd(&r->d[i].pw);
	}
	/* unlink from the live list */
	if (r->registered) {
		if (r->prev)
			r->prev->next = r->next;
		else
			w->live = r->next;
		if (r->next)
			r->next->prev = r->prev;
	}
	if (failed)
		atomic_fetch_add(&e->failed, 1);
	atomic_fetch_sub(&e->active, 1);
	if (r->done)
		r->done(r->user, r->d[0].bytes, r->d[1].bytes, failed);
	r->qnext = w->dead;
	w->dead = r;
}

static void relay_pump(struct relay *r)
{
	if (r->finished)
		return;
	bool budget = false;
	for (int i = 0; i < 2; i++) {
		enum pump_result res = pump_dir(r, &r->d[i]);
		if (res == PUMP_FAIL) {
			relay_finish(r, true);
			return;
		}
		if (res == PUMP_BUDGET)
			budget = true;
	}
	if (r->d[0].done && r->d[1].done) {
		relay_finish(r, false);
		return;
	}
	if (budget && !r->on_ready) {
		r->on_ready = true;
		r->rnext = r->w->ready;
		r->w->ready = r;
	}
}

/* A socket reported an error condition: fail the relay if SO_ERROR is set. */
static bool socket_failed(int fd)
{
	int soerr = 0;
	socklen_t len = sizeof soerr;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
		return true;
	if (soerr != 0)
		CCB_LOG(CCB_LOG_DEBUG, "relay: fd %d: %s", fd, ccb__strerror(soerr));
	return soerr != 0;
}

static void worker_adopt(struct worker *w, struct relay *r)
{
	for (int i = 0; i < 2; i++) {
		struct epoll_event ev = {
			.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
			.data.ptr = &r->ep[i],
		};
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, r->fd[i], &ev) != 0) {
			CCB_LOG(CCB_LOG_WARNING, "relay: epoll_ctl add fd %d: %s", r->fd[i], ccb__strerror(errno));
			if (i == 1)
				(void)epoll_ctl(w->ep, EPOLL_CTL_DEL, r->fd[0], NULL);
			r->registered = false;
			/* not on the live list: finish without unlinking */
			relay_finish(r, true);
			return;
		}
	}
	r->registered = true;
	r->prev = NULL;
	r->next = w->live;
	if (w->live)
		w->live->prev = r;
	w->live = r;
	relay_pump(r);
}

/* Free finished relays; one still on a ready list stays until that list has
 * been walked (it is skipped there because it is finished). */
static void worker_reap(struct worker *w)
{
	struct relay *keep = NULL;
	while (w->dead) {
		struct relay *r = w->dead;
		w->dead = r->qnext;
		if (r->on_ready) {
			r->qnext = keep;
			keep = r;
		} else {
			relay_free_mem(r);
		}
	}
	w->dead = keep;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);

	struct epoll_event evs[RELAY_MAX_EVENTS];
	for (;;) {
		int timeout = w->ready ? 0 : -1;
		int n = epoll_wait(w->ep, evs, RELAY_MAX_EVENTS, timeout);
		/* relays that used their budget in an earlier round get their turn after
		 * this round's events (taken now so that relays which use it up again in
		 * this round wait for the next one) */
		struct relay *ready = w->ready;
		w->ready = NULL;
		if (n < 0) {
			w->ready = ready;
			if (errno == EINTR)
				continue;
			CCB_LOG(CCB_LOG_ERROR, "relay: epoll_wait: %s", ccb__strerror(errno));
			break;
		}
		bool woken = false;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL) {
				woken = true;
				continue;
			}
			struct endpoint *ep = evs[i].data.ptr;
			struct relay *r = ep->r;
			if (r->finished)
				continue;
			if ((evs[i].events & EPOLLERR) && socket_failed(r->fd[ep->side])) {
				relay_finish(r, true);
				continue;
			}
			relay_pump(r);
		}
		while (ready) {
			struct relay *r = ready;
			ready = r->rnext;
			r->on_ready = false;
			relay_pump(r);
		}
		if (woken) {
			ccb__wakeup_drain(&w->wake);
			pthread_mutex_lock(&w->mu);
			struct relay *q = w->queue;
			w->queue = NULL;
			pthread_mutex_unlock(&w->mu);
			/* reverse to keep start order */
			struct relay *rev = NULL;
			while (q) {
				struct relay *nx = q->qnext;
				q->qnext = rev;
				rev = q;
				q = nx;
			}
			while (rev) {
				struct relay *nx = rev->qnext;
				worker_adopt(w, rev);
				rev = nx;
			}
		}
		worker_reap(w);
		if (atomic_load(&w->stop))
			break;
	}

	/* Stop: refuse further relays, then close everything this worker owns. */
	pthread_mutex_lock(&w->mu);
	w->closed = true;
	struct relay *q = w->queue;
	w->queue = NULL;
	pthread_mutex_unlock(&w->mu);
	while (q) {
		struct relay *nx = q->qnext;
		q->registered = false;
		relay_finish(q, false);
		q = nx;
	}
	while (w->live)
		relay_finish(w->live, false);
	for (struct relay *r = w->ready; r; r = r->rnext)
		r->on_ready = false;
	w->ready = NULL;
	worker_reap(w);
	return NULL;
}

/* ---- public ------------------------------------------------------------ */

static void engine_destroy(ccb__relay_engine *e)
{
	for (unsigned i = 0; i < e->nworkers; i++) {
		struct worker *w = &e->workers[i];
		if (w->started) {
			atomic_store(&w->stop, true);
			ccb__wakeup_signal(&w->wake);
		}
	}
	for (unsigned i = 0; i < e->nworkers; i++) {
		struct worker *w = &e->workers[i];
		if (w->started)
			pthread_join(w->th, NULL);
		close_fd(&w->ep);
		ccb__wakeup_close(&w->wake);
		pthread_mutex_destroy(&w->mu);
		free(w->scratch);
	}
	free(e->workers);
	free(e);
}

ccb__relay_engine *ccb__relay_engine_new(unsigned threads, size_t max_relays, ccb_error *err)
{
	if (threads == 0)
		threads = 1;
	ccb__relay_engine *e = calloc(1, sizeof *e);
	if (!e) {
		ccb_error_set(err, CCB_ERR_NOMEM, "relay engine: out of memory");
		return NULL;
	}
	e->workers = calloc(threads, sizeof *e->workers);
	if (!e->workers) {
		free(e);
		ccb_error_set(err, CCB_ERR_NOMEM, "relay engine: out of memory");
		return NULL;
	}
	e->max_relays = max_relays;
	const char *fc = getenv("CCB_RELAY_FORCE_COPY");
	e->force_copy = fc && *fc && strcmp(fc, "0") != 0;
	atomic_init(&e->stopping, false);
	atomic_init(&e->next_worker, 0);
	atomic_init(&e->sessions, 0);
	atomic_init(&e->active, 0);
	atomic_init(&e->bytes, 0);
	atomic_init(&e->failed, 0);
	atomic_init(&e->refused, 0);
	for (unsigned i = 0; i < threads; i++) {
		struct worker *w = &e->workers[i];
		w->e = e;
		w->ep = -1;
		w->wake = (ccb__wakeup)CCB__WAKEUP_NONE;
		atomic_init(&w->stop, false);
		pthread_mutex_init(&w->mu, NULL);
	}
	e->nworkers = threads;
	for (unsigned i = 0; i < threads; i++) {
		struct worker *w = &e->workers[i];
		w->scratch = malloc(RELAY_SCRATCH_SIZE);
		if (!w->scratch) {
			ccb_error_set(err, CCB_ERR_NOMEM, "relay engine: out of memory");
			goto fail;
		}
		if (ccb__wakeup_init(&w->wake, err)) {
			ccb_error_prefix(err, "relay engine: ");
			goto fail;
		}
		w->ep = epoll_create1(EPOLL_CLOEXEC);
		if (w->ep < 0) {
			ccb_error_set(err, CCB_ERR_IO, "relay engine: epoll: %s", ccb__strerror(errno));
			goto fail;
		}
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, ccb__wakeup_fd(&w->wake), &ev) != 0) {
			ccb_error_set(err, CCB_ERR_IO, "relay engine: epoll_ctl: %s", ccb__strerror(errno));
			goto fail;
		}
		int rc = pthread_create(&w->th, NULL, worker_main, w);
		if (rc != 0) {
			ccb_error_set(err, CCB_ERR_IO, "relay engine: start thread: %s", ccb__strerror(rc));
			goto fail;
		}
		w->started = true;
	}
	return e;
fail:
	engine_destroy(e);
	return NULL;
}

/* Reserve a slot under the cap. */
static bool reserve_slot(ccb__relay_engine *e)
{
	uint_fast64_t cur = atomic_load(&e->active);
	for (;;) {
		if (e->max_relays && cur >= e->max_relays)
			return false;
		if (atomic_compare_exchange_weak(&e->active, &cur, cur + 1))
			return true;
	}
}

ccb_err ccb__relay_start(ccb__relay_engine *e, int fd_a, int fd_b, ccb__relay_done_fn done, void *user,
			 ccb_error *err)
{
	if (!e || fd_a < 0 || fd_b < 0 || fd_a == fd_b)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "relay start: bad arguments");
	if (atomic_load(&e->stopping))
		return ccb_error_set(err, CCB_ERR_STATE, "relay start: engine is shutting down");
	if (!reserve_slot(e)) {
		atomic_fetch_add(&e->refused, 1);
		return ccb_error_set(err, CCB_ERR_LIMIT, "relay start: %zu relays already running (cap)",
				     e->max_relays);
	}
	if (!set_nonblock(fd_a) || !set_nonblock(fd_b)) {
		atomic_fetch_sub(&e->active, 1);
		return ccb_error_set(err, CCB_ERR_IO, "relay start: make fds non-blocking: %s", ccb__strerror(errno));
	}
	struct relay *r = calloc(1, sizeof *r);
	if (!r) {
		atomic_fetch_sub(&e->active, 1);
		return ccb_error_set(err, CCB_ERR_NOMEM, "relay start: out of memory");
	}
	r->fd[0] = fd_a;
	r->fd[1] = fd_b;
	r->done = done;
	r->user = user;
	for (int i = 0; i < 2; i++) {
		r->ep[i].r = r;
		r->ep[i].side = i;
		struct dir *d = &r->d[i];
		d->src = r->fd[i];
		d->dst = r->fd[1 - i];
		d->pr = d->pw = -1;
		if (!e->force_copy)
			(void)dir_make_pipe(d);
	}
	unsigned idx = atomic_fetch_add(&e->next_worker, 1) % e->nworkers;
	struct worker *w = &e->workers[idx];
	r->w = w;
	atomic_fetch_add(&e->sessions, 1);
	pthread_mutex_lock(&w->mu);
	bool refused = w->closed || atomic_load(&e->stopping);
	if (!refused) {
		r->qnext = w->queue;
		w->queue = r;
	}
	pthread_mutex_unlock(&w->mu);
	if (refused) {
		for (int i = 0; i < 2; i++) {
			close_fd(&r->d[i].pr);
			close_fd(&r->d[i].pw);
		}
		free(r);
		atomic_fetch_sub(&e->sessions, 1);
		atomic_fetch_sub(&e->active, 1);
		return ccb_error_set(err, CCB_ERR_STATE, "relay start: engine is shutting down");
	}
	ccb__wakeup_signal(&w->wake);
	return CCB_OK;
}

void ccb__relay_engine_stats(ccb__relay_engine *e, ccb__relay_stats *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof *out);
	if (!e)
		return;
	out->sessions = atomic_load(&e->sessions);
	out->active = atomic_load(&e->active);
	out->bytes = atomic_load(&e->bytes);
	out->failed = atomic_load(&e->failed);
	out->refused = atomic_load(&e->refused);
}

void ccb__relay_engine_free(ccb__relay_engine *e)
{
	if (!e)
		return;
	atomic_store(&e->stopping, true);
	engine_destroy(e);
}
