/*
 * The CCB broker: lifetime, the epoll loop, the handshake worker pool.
 * Accepting is in broker_accept.c, protocol handling in broker_proto.c
 * (inside CCB: broker_tunnel.c, CCB_PROXY_CONNECT: broker_outbound.c),
 * reconnect records in broker_store.c, the status in broker_status.c;
 * docs/internals.md has the whole map.
 *
 * Reading CEDAR messages in the loop: a ccb_stream reads exactly the bytes
 * of one message (no read-ahead), so on EPOLLIN the loop peeks at the kernel
 * buffer (recv MSG_PEEK) and walks the packet headers (1-byte end flag +
 * 4-byte big-endian body length, the same under AES-GCM where the length is
 * the sealed length; cedar-stream.md §2, §6) until a packet with the end flag
 * is wholly present. Only then is the message read with the ordinary stream
 * call, which cannot block. A partial message waits for more bytes, bounded
 * by the handshake timeout (slow loris) and the message cap. Sockets are
 * registered edge-triggered so a partial message does not spin the loop.
 *
 * The connection plumbing this relies on (bk_conn_*, bk_epoll_*,
 * bk_peek_message, bk_send_ad) is in broker_conn.c, the list and map in
 * broker_map.c.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ccb/commands.h"
#include "ccb/wire.h"
#include "broker_internal.h"
#include "sec_copy.h"
#include "fiber.h"
#include "cedar/stream_internal.h"
#include "security/remote_version.h"
#include "util/util.h"

#define BK_FD_RESERVE 32
/* Connections over the limit kept for status/admin commands, so that a full
 * broker can still be observed. */
#define BK_ADMIN_RESERVE 8

/* ---- permissions ------------------------------------------------------------------ */

/* ccb-protocol.md §1, §10 (srv:285-358): 67 DAEMON, 68 READ, 69 raw ALLOW. */
static int broker_perm(int command, void *user)
{
	ccb_broker *b = user;

	switch (command) {
	case CCB_CMD_CCB_REGISTER: return CCB_PERM_DAEMON;
	case CCB_CMD_CCB_REQUEST: return CCB_PERM_READ;
	case CCB_CMD_CCB_REVERSE_CONNECT: return b->cfg.streaming_disabled ? -1 : CCB_PERM_ALLOW;
	case CCB_CMD_DC_NOP: return CCB_PERM_ALLOW;
	case CCB_CMD_DC_SEC_QUERY: return CCB_PERM_ALLOW;
	case CCB_CMD_LIBCCB_STATUS: return CCB_PERM_READ;
	case CCB_CMD_CCB_PROXY_CONNECT: return bk_outbound_enabled(b) ? CCB_PERM_DAEMON : -1;
	/* DC_NOP_READ .. DC_NOP_DAEMON, as daemon core registers them. */
	case 60020: return CCB_PERM_READ;
	case 60021: return CCB_PERM_WRITE;
	case 60023: return CCB_PERM_ADMINISTRATOR;
	case 60026: return CCB_PERM_DAEMON;
	}
	return -1;
}

/* ---- new / free --------------------------------------------------------------------- */

bk_sec *bk_sec_new(const ccb_sec_server_config *cfg)
{
	bk_sec *s = calloc(1, sizeof *s);

	if (s && !ccb__sec_server_copy(&s->cfg, cfg)) {
		free(s);
		return NULL;
	}
	if (s)
		atomic_init(&s->refs, 1);
	return s;
}

void bk_sec_release(bk_sec *s)
{
	if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
		ccb__sec_server_clear(&s->cfg);
		free(s);
	}
}

static long ms_or(int v, long dflt)
{
	return v == 0 ? dflt : v;
}

/* An empty broker that ccb_broker_free() can take at any point of
 * ccb_broker_new(). */
static ccb_broker *broker_alloc(void)
{
	ccb_broker *b = calloc(1, sizeof *b);

	if (!b)
		return NULL;
	b->epfd = b->spare_fd = b->store_fd = -1;
	b->stop_signal = b->done_signal = (ccb__wakeup)CCB__WAKEUP_NONE;
	pthread_mutex_init(&b->lock, NULL);
	pthread_mutex_init(&b->qlock, NULL);
	pthread_cond_init(&b->qcond, NULL);
	bk_list_init(&b->jobs);
	bk_list_init(&b->lru);
	bk_list_init(&b->new_list);
	bk_list_init(&b->partial_list);
	bk_list_init(&b->std_fifo);
	bk_list_init(&b->sess_fifo);
	bk_list_init(&b->dead);
	b->next_id = 1;
	b->next_req = 1;
	return b;
}

/* The configuration with its defaults filled in; its strings copied. */
static ccb_err init_config(ccb_broker *b, const ccb_broker_config *cfg, ccb_error *err)
{
	b->cfg = *cfg;
	b->listen_text = ccb_strdup(cfg->listen ? cfg->listen : "0.0.0.0:9618");
	b->public_text = cfg->public_address && cfg->public_address[0] ? ccb_strdup(cfg->public_address) : NULL;
	b->record_path = cfg->reconnect_file && cfg->reconnect_file[0] ? ccb_strdup(cfg->reconnect_file) : NULL;
	b->cfg.listen = b->cfg.public_address = b->cfg.reconnect_file = NULL;
	b->sweep_ms = ms_or(cfg->sweep_interval_ms, 1200L * 1000);
	b->idle_ms = ms_or(cfg->target_idle_timeout_ms, 3600L * 1000);
	b->req_timeout_ms = ms_or(cfg->request_timeout_ms, 60L * 1000);
	b->sess_timeout_ms = ms_or(cfg->streaming_handshake_timeout_ms, 300L * 1000);
	b->hs_timeout_ms = cfg->handshake_timeout_ms > 0 ? cfg->handshake_timeout_ms : 20L * 1000;
	b->max_message = cfg->max_message ? cfg->max_message : CCB_CONTROL_MAX_MESSAGE;
	if (b->max_message < 1024)
		b->max_message = 1024;
	if (!b->listen_text)
		return ccb_error_set(err, CCB_ERR_NOMEM, "broker");
	return CCB_OK;
}

/* The connection limit: every fd the hard limit allows (the collector dies
 * at its limit), less a reserve, or the configured maximum if lower. */
static void init_limits(ccb_broker *b, const ccb_broker_config *cfg)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
			getrlimit(RLIMIT_NOFILE, &rl);
		}
		b->max_conns = rl.rlim_cur > BK_FD_RESERVE * 2 + BK_ADMIN_RESERVE
				       ? (unsigned)(rl.rlim_cur - BK_FD_RESERVE - BK_ADMIN_RESERVE)
				       : (unsigned)rl.rlim_cur / 2;
	} else {
		b->max_conns = 1000;
	}
	if (cfg->max_connections && cfg->max_connections < b->max_conns)
		b->max_conns = cfg->max_connections;
	b->admin_reserve = BK_ADMIN_RESERVE;
}

/* A deep copy of the security settings with the broker's command table
 * and, unless the caller gave one, a session store of its own. */
static ccb_err init_security(ccb_broker *b, const ccb_broker_config *cfg, ccb_error *err)
{
	ccb_err rc;

	/* b->cfg must not keep the caller's strings. */
	memset(&b->cfg.security, 0, sizeof b->cfg.security);
	if (!(b->sec = bk_sec_new(&cfg->security)))
		return ccb_error_set(err, CCB_ERR_NOMEM, "broker: copy of the security settings");
	b->sec->cfg.command_perm = broker_perm;
	b->sec->cfg.user = b;
	if (!b->sec->cfg.sessions) {
		/* Room for a session per connection, as daemons negotiate one
		 * each (4096 at least). */
		size_t want = (size_t)b->max_conns + BK_ADMIN_RESERVE;
		if ((rc = ccb_sec_sessions_new(want > 4096 ? want : 0, &b->own_sessions, err)))
			return rc;
		b->sec->cfg.sessions = b->own_sessions;
	}
	return CCB_OK;
}

/* What the loop needs: the heartbeat reply, the peek buffer, the epoll set
 * with the wake-up signals and the listen sockets in it, the spare descriptor. */
static ccb_err init_loop(ccb_broker *b, ccb_error *err)
{
	ccb_ad_field f[] = {CCB_AD_INT(CCB_ATTR_COMMAND, CCB_CMD_ALIVE)};

	if (ccb_ad_new(f, 1, &b->alive_ad, err))
		return CCB_ERR_NOMEM;
	b->peek_cap = 2 * b->max_message + 4096;
	b->peek = malloc(b->peek_cap);
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	b->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (!b->peek)
		return ccb_error_set(err, CCB_ERR_NOMEM, "broker: peek buffer");
	if (b->epfd < 0)
		return ccb_error_set(err, CCB_ERR_IO, "broker: epoll: %s", ccb__strerror(errno));
	if (ccb__wakeup_init(&b->stop_signal, err) || ccb__wakeup_init(&b->done_signal, err))
		return ccb_error_prefix(err, "broker: ");
	b->stop_conn = bk_conn_new(ccb__wakeup_fd(&b->stop_signal), BK_EVENT);
	b->done_conn = bk_conn_new(ccb__wakeup_fd(&b->done_signal), BK_EVENT);
	if (!b->stop_conn || !b->done_conn || !bk_epoll_add(b, b->stop_conn, EPOLLIN) ||
	    !bk_epoll_add(b, b->done_conn, EPOLLIN))
		return ccb_error_set(err, CCB_ERR_NOMEM, "broker");
	for (size_t i = 0; i < b->nl; i++) {
		/* Watched by the handshake workers once the broker runs
		 * (bk_set_accepting). */
		b->lconn[i] = bk_conn_new(b->lfd[i], BK_LISTEN);
		if (!b->lconn[i])
			return ccb_error_set(err, CCB_ERR_NOMEM, "broker");
	}
	return CCB_OK;
}

/* The handshake workers. They only run the CPU-bound steps (a handshake
 * waiting for its peer sleeps on a fiber), so one per CPU is enough; more
 * only contend for OpenSSL's and our locks. */
static ccb_err start_workers(ccb_broker *b, const ccb_broker_config *cfg, ccb_error *err)
{
	if (cfg->handshake_workers) {
		b->nworkers = cfg->handshake_workers;
	} else {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		b->nworkers = ncpu < 2 ? 2 : ncpu > 8 ? 8 : (unsigned)ncpu;
	}
	b->hs_per_source = cfg->max_handshakes_per_source ? cfg->max_handshakes_per_source : 64;
	return bk_workers_start(b, err);
}

ccb_err ccb_broker_new(const ccb_broker_config *cfg, ccb_broker **out, ccb_error *err)
{
	ccb_broker *b;
	ccb_err rc;

	if (!cfg || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_broker_new: missing argument");
	*out = NULL;
	b = broker_alloc();
	if (!b)
		return ccb_error_set(err, CCB_ERR_NOMEM, "broker");
	if ((rc = init_config(b, cfg, err)))
		goto fail;
	init_limits(b, cfg);
	if ((rc = init_security(b, cfg, err)) || (rc = bk_listen_all(b, err)) || (rc = init_loop(b, err)) || (rc = bk_store_open(b, err)) ||
	    (rc = bk_tunnel_start(b, err)))
		goto fail;
	b->relay = ccb__relay_engine_new(cfg->relay_threads, 0, err);
	if (!b->relay) {
		rc = err ? err->code : CCB_ERR_NOMEM;
		goto fail;
	}
	if ((rc = bk_outbound_init(b, cfg, err)) || (rc = start_workers(b, cfg, err)))
		goto fail;
	b->next_sweep_ms = ccb_now_ms() + b->sweep_ms;
	CCB_LOG(CCB_LOG_INFO, "broker: listening on %s, public address %s, max %u connections",
		b->listen_text, b->pub_sinful, b->max_conns);
	*out = b;
	return CCB_OK;
fail:
	ccb_broker_free(b);
	return rc;
}

static void close_all(ccb_broker *b)
{
	bk_list *n;

	bk_drain_queues(b);
	bk_outbound_stop(b);
	/* Requests first (their replies would go to closing sockets anyway). */
	while (!bk_list_empty(&b->std_fifo)) {
		bk_req *q = bk_container(b->std_fifo.next, bk_req, fifo);
		bk_fail_request(b, q, NULL, false);
	}
	while (!bk_list_empty(&b->sess_fifo)) {
		bk_req *q = bk_container(b->sess_fifo.next, bk_req, fifo);
		bk_fail_request(b, q, NULL, false);
	}
	while (!bk_list_empty(&b->lru)) {
		bk_reg *r = bk_container(b->lru.next, bk_reg, lru);
		bk_drop_reg(b, r, NULL);
	}
	while (!bk_list_empty(&b->new_list)) {
		n = b->new_list.next;
		bk_conn_close(b, bk_container(n, bk_conn, tnode));
	}
	while (!bk_list_empty(&b->partial_list)) {
		n = b->partial_list.next;
		bk_conn_close(b, bk_container(n, bk_conn, tnode));
	}
}

void ccb_broker_free(ccb_broker *b)
{
	if (!b)
		return;
	bk_tunnel_free(b);
	bk_workers_stop(b);
	pthread_mutex_lock(&b->lock);
	close_all(b);
	bk_conn_reap(b);
	pthread_mutex_unlock(&b->lock);
	bk_outbound_free(b);
	ccb__relay_engine_free(b->relay);
	bk_store_close(b);
	{
		size_t i = 0;
		bk_mnode *n = NULL;
		void *v;
		while ((v = bk_map_next(&b->recs, &i, &n)))
			free(v);
	}
	bk_map_free(&b->recs);
	bk_map_free(&b->regs);
	bk_map_free(&b->reqs);
	for (size_t i = 0; i < b->nl; i++) {
		if (b->lconn[i]) {
			bk_epoll_del(b, b->lconn[i]);
			free(b->lconn[i]);
		}
		close(b->lfd[i]);
	}
	free(b->stop_conn);
	free(b->done_conn);
	if (b->epfd >= 0)
		close(b->epfd);
	ccb__wakeup_close(&b->stop_signal);
	ccb__wakeup_close(&b->done_signal);
	if (b->spare_fd >= 0)
		close(b->spare_fd);
	bk_sec_release(b->sec);
	ccb_sec_sessions_free(b->own_sessions);
	ccb_classad_free(b->alive_ad);
	free(b->peek);
	free(b->listen_text);
	free(b->public_text);
	free(b->record_path);
	free(b->pub_sinful);
	free(b->pub_bare);
	bk_workers_free(b);
	bk_map_free(&b->hs_src);
	pthread_mutex_destroy(&b->lock);
	pthread_mutex_destroy(&b->qlock);
	pthread_cond_destroy(&b->qcond);
	free(b);
}

const char *ccb_broker_address(const ccb_broker *b)
{
	return b->pub_sinful;
}

size_t ccb_broker_listen_count(const ccb_broker *b)
{
	return b->nl;
}

int ccb_broker_port(const ccb_broker *b, size_t i)
{
	return i < b->nl ? b->lport[i] : -1;
}

void ccb_broker_stop(ccb_broker *b)
{
	if (!b)
		return;
	/* Only async-signal-safe operations here (an eventfd write). */
	atomic_store(&b->stopping, true);
	ccb__wakeup_signal(&b->stop_signal);
}

/* ---- the loop ------------------------------------------------------------------------ */

ccb_err ccb_broker_reload_security(ccb_broker *b, const ccb_sec_server_config *sec,
				   ccb_error *err)
{
	bk_sec *n, *old;

	if (!b || !sec)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_broker_reload_security: NULL argument");
	if (!(n = bk_sec_new(sec)))
		return ccb_error_set(err, CCB_ERR_NOMEM, "reload security settings: out of memory");
	pthread_mutex_lock(&b->qlock);
	/* The broker's own command table and session store stay. */
	old = b->sec;
	n->cfg.command_perm = old->cfg.command_perm;
	n->cfg.user = old->cfg.user;
	n->cfg.sessions = old->cfg.sessions;
	b->sec = n;
	pthread_mutex_unlock(&b->qlock);
	bk_sec_release(old);
	CCB_LOG(CCB_LOG_INFO, "broker: security settings reloaded");
	return CCB_OK;
}

/* A new connection goes to a handshake worker only once its whole first
 * message is here, so peers that connect and stall, or trickle their first
 * message (slow loris), cost no worker: the accept deadline closes them.
 * True while it still waits for (the rest of) that message. */
bool bk_new_readable(ccb_broker *b, bk_conn *c)
{
	switch (bk_peek_message(b, c)) {
	case PK_NONE:
	case PK_PARTIAL:
		return true; /* edge-triggered: woken again when more arrives */
	case PK_BAD:
		b->st.bad_input++;
		CCB_LOG(CCB_LOG_INFO, "broker: %s sent a bad or oversized first frame; closed", bk_peer(c));
		bk_conn_close(b, c);
		return false;
	case PK_CLOSED:
		bk_conn_close(b, c);
		return false;
	case PK_COMPLETE:
		break;
	}
	if (c->reserve && !bk_reserve_admit(b, c)) {
		bk_conn_close(b, c);
		return false;
	}
	if (!bk_hs_admit(b, c)) {
		bk_conn_close(b, c);
		return false;
	}
	bk_epoll_del(b, c);
	bk_list_del(&c->tnode);
	c->state = BK_HANDSHAKE;
	bk_queue_job(b, c);
	return false;
}

/* The outbound dial threads' signal: their finished dials. */
static void drain_done(ccb_broker *b)
{
	ccb__wakeup_drain(&b->done_signal);
	bk_outbound_drain(b);
}

/* A connection whose handshake is over (b->lock held): close it if the
 * handshake failed or it was a status reply, else serve its command. */
void bk_finish_handshake(ccb_broker *b, bk_conn *c)
{
	bk_hs_release(b, c);
	if (c->state == BK_SEND || c->hs->rc) {
		if (c->state != BK_SEND) {
			b->st.handshakes_failed++;
			CCB_LOG(CCB_LOG_INFO, "broker: connection from %s refused: %s", bk_peer(c),
				c->hs ? c->hs->err : "");
		}
		bk_conn_close(b, c);
		return;
	}
	bk_handle_command(b, c);
}

static int loop_tick_ms(const ccb_broker *b)
{
	long t = b->hs_timeout_ms;

	if (b->req_timeout_ms > 0 && b->req_timeout_ms < t)
		t = b->req_timeout_ms;
	if (b->sess_timeout_ms > 0 && b->sess_timeout_ms < t)
		t = b->sess_timeout_ms;
	if (b->idle_ms > 0 && b->idle_ms < t)
		t = b->idle_ms;
	if (b->sweep_ms < t)
		t = b->sweep_ms;
	t /= 4;
	return t < 10 ? 10 : t > 1000 ? 1000 : (int)t;
}

ccb_err ccb_broker_run(ccb_broker *b, ccb_error *err)
{
	struct epoll_event evs[128];
	int expected = 0, tick;
	int64_t next_tick, until;

	if (!b)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_broker_run: NULL broker");
	if (!atomic_compare_exchange_strong(&b->run_state, &expected, 1))
		return ccb_error_set(err, CCB_ERR_STATE, "broker already ran");
	tick = loop_tick_ms(b);
	next_tick = ccb_now_ms() + tick;
	pthread_mutex_lock(&b->lock);
	bk_set_accepting(b, true);
	until = next_tick;
	pthread_mutex_unlock(&b->lock);
	while (!atomic_load(&b->stopping)) {
		int64_t now = ccb_now_ms();
		int wait = until > now ? (int)(until - now) : 0;
		int n = epoll_wait(b->epfd, evs, 128, wait);

		if (n < 0 && errno != EINTR) {
			atomic_store(&b->run_state, 2);
			return ccb_error_set(err, CCB_ERR_IO, "broker: epoll_wait: %s", ccb__strerror(errno));
		}
		pthread_mutex_lock(&b->lock);
		for (int i = 0; i < n; i++) {
			bk_conn *c = evs[i].data.ptr;
			switch (c->state) {
			case BK_EVENT:
				if (c == b->done_conn)
					drain_done(b);
				else
					bk_tunnel_event(b, c);
				break;
			case BK_NEW:
				bk_new_readable(b, c);
				break;
			case BK_REG:
				bk_reg_readable(b, c);
				break;
			case BK_REQ:
			case BK_PROXY_REQ:
				bk_requester_readable(b, c);
				break;
			default:
				break;
			}
		}
		now = ccb_now_ms();
		if (now >= next_tick) {
			bk_timers(b, now);
			next_tick = now + tick;
		}
		if (b->accept_paused && now >= b->accept_resume_ms)
			bk_set_accepting(b, true);
		/* A worker that pauses accepting (out of descriptors) wakes the
		 * loop, which then sleeps only until the pause ends. */
		until = b->accept_paused && b->accept_resume_ms < next_tick ? b->accept_resume_ms
									    : next_tick;
		bk_conn_reap(b);
		pthread_mutex_unlock(&b->lock);
	}
	pthread_mutex_lock(&b->lock);
	bk_set_accepting(b, false);
	pthread_mutex_unlock(&b->lock);
	bk_workers_stop(b);
	pthread_mutex_lock(&b->lock);
	close_all(b);
	bk_store_sweep(b);
	bk_conn_reap(b);
	pthread_mutex_unlock(&b->lock);
	atomic_store(&b->run_state, 2);
	CCB_LOG(CCB_LOG_INFO, "broker: stopped");
	return CCB_OK;
}
