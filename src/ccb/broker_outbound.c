/*
 * The broker's outbound proxy: CCB_PROXY_CONNECT (82), ccb-protocol.md §9.1
 * (H:src/ccb/ccb_server.cpp HandleProxyConnect, StartOutgoingProxyRequest,
 * OutgoingConnectComplete, OutboundTargetAllowed).
 *
 * The loop thread reads the request, applies the checks that cost nothing
 * (fields, an IP-literal target against the lists, caps, duplicate id, TTL)
 * and hands the dial to a thread of its own: a direct / shared-port /
 * CCB-routed connect through ccb_dial_sinful(), or CCB_PROXY_CONNECT to the
 * next hop with CCBTTL - 1. A host-name target is resolved and checked on
 * that thread too. The thread never touches the requester's connection; it
 * queues its result and wakes the loop through the workers' wake-up signal; the
 * loop replies {Result[, ErrorString]} and splices. At most
 * outbound_max_dials threads run at once.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "ccb/attributes.h"
#include "ccb/commands.h"
#include "ccb/dial.h"
#include "ccb/wire.h"
#include "broker_internal.h"
#include "sec_copy.h"
#include "outbound.h"
#include "util/util.h"

/* Wire texts of the C++ broker (ccb-protocol.md §12). */
#define TXT_NOT_PERMITTED "target not permitted by this broker"
#define TXT_TTL_EXPIRED "outbound proxy TTL expired"
#define TXT_DIAL_FAILED "outbound connection to target failed"
#define TXT_SESSION_CAP "CCB session limit reached on the broker"
#define TXT_HANDSHAKE_CAP "CCB handshake limit reached on the broker"
#define TXT_DUP_ID "duplicate connect id"

/* The connect bound of one outbound dial (C++: CEDAR's 20 s default). */
#define OB_DIAL_MS 20000

typedef struct ob_job {
	bk_list node; /* ob->running, then ob->done */
	ccb_broker *b;
	bk_conn *c; /* requester; loop-owned, never touched by the thread */
	uint64_t id;
	char *target, *connect_id, *name;
	long long ttl;
	bool forward, check_target;
	ccb_dial_cancel *cancel;
	int fwd_fd; /* the next hop's socket while forwarding (under ob->mu) */
	bool stopping;
	pthread_t th;
	/* result (thread -> loop) */
	int fd;
	bool not_permitted;
	char detail[CCB_ERROR_DETAIL_SIZE];
} ob_job;

struct bk_outbound {
	bool enabled;
	char *allow, *deny, *next_hop; /* NULL: default / none */
	int ttl;
	unsigned max_dials;
	ccb_sec_client_config sec;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bk_list running, done;
	unsigned nrunning;
	uint64_t next_id;
	uint64_t requests, forwarded, failed, succeeded;
};

ccb_err bk_outbound_init(ccb_broker *b, const ccb_broker_config *cfg, ccb_error *err)
{
	bk_outbound *ob = calloc(1, sizeof *ob);

	b->cfg.outbound_target_allowlist = b->cfg.outbound_target_denylist = NULL;
	b->cfg.outbound_next_hop = NULL;
	/* The caller's strings: ob->sec gets a deep copy below. */
	memset(&b->cfg.client_security, 0, sizeof b->cfg.client_security);
	if (!ob)
		return ccb_error_set(err, CCB_ERR_NOMEM, "broker: outbound proxy");
	b->ob = ob;
	pthread_mutex_init(&ob->mu, NULL);
	pthread_cond_init(&ob->cv, NULL);
	bk_list_init(&ob->running);
	bk_list_init(&ob->done);
	ob->next_id = 1;
	ob->ttl = cfg->outbound_ttl > 0 ? cfg->outbound_ttl : CCB_OUTBOUND_DEFAULT_TTL;
	ob->max_dials = cfg->outbound_max_dials ? cfg->outbound_max_dials : 64;
	if (!ccb__sec_client_copy(&ob->sec, &cfg->client_security) ||
	    (cfg->outbound_target_allowlist &&
	     !(ob->allow = ccb_strdup(cfg->outbound_target_allowlist))) ||
	    (cfg->outbound_target_denylist && !(ob->deny = ccb_strdup(cfg->outbound_target_denylist))) ||
	    (cfg->outbound_next_hop && *cfg->outbound_next_hop &&
	     !(ob->next_hop = ccb_strdup(cfg->outbound_next_hop))))
		return ccb_error_set(err, CCB_ERR_NOMEM, "broker: outbound proxy");
	if (ob->next_hop) {
		char **list = NULL;
		size_t n = 0;
		ccb_err rc = ccb_broker_list_split(ob->next_hop, &list, &n, err);
		ccb_strv_free(list);
		if (rc)
			return ccb_error_prefix(err, "CCB_OUTBOUND_NEXT_HOP: ");
	}
	/* b->cfg keeps pointing at our copies (valid until bk_outbound_free),
	 * so other broker code may read cfg.outbound_next_hop. */
	b->cfg.outbound_target_allowlist = ob->allow;
	b->cfg.outbound_target_denylist = ob->deny;
	b->cfg.outbound_next_hop = ob->next_hop;
	/* An inside CCB forwards by definition (ccb_server.cpp: the next hop
	 * implies the command). */
	ob->enabled = cfg->outbound_proxy || ob->next_hop;
	if (ob->enabled)
		CCB_LOG(CCB_LOG_INFO, "broker: outbound proxy (CCB_PROXY_CONNECT) on%s%s, TTL %d",
			ob->next_hop ? ", forwarding to " : "", ob->next_hop ? ob->next_hop : "", ob->ttl);
	return CCB_OK;
}

bool bk_outbound_enabled(const ccb_broker *b)
{
	return b->ob && b->ob->enabled;
}

static void job_free(ob_job *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	ccb_dial_cancel_free(j->cancel);
	free(j->target);
	ccb__free_secret(j->connect_id);
	free(j->name);
	free(j);
}

/* ---- the dial thread ------------------------------------------------------------- */

/* Forwarding: publish the next hop's socket so bk_outbound_stop() can
 * shut it down (the exchange itself has no cancellation token). */
static void fwd_socket(int fd, void *user)
{
	ob_job *j = user;
	bk_outbound *ob = j->b->ob;

	pthread_mutex_lock(&ob->mu);
	j->fwd_fd = fd;
	if (fd >= 0 && j->stopping)
		shutdown(fd, SHUT_RDWR);
	pthread_mutex_unlock(&ob->mu);
}

static void *dial_main(void *arg)
{
	ob_job *j = arg;
	ccb_broker *b = j->b;
	bk_outbound *ob = b->ob;
	ccb_error e = {0};
	if (j->check_target &&
	    !ccb__outbound_target_allowed(j->target, ob->allow, ob->deny, j->detail, sizeof j->detail)) {
		j->not_permitted = true;
	} else if (j->forward) {
		ccb__outbound_req q = {
			.brokers = ob->next_hop,
			.target = j->target,
			.ttl = (int)(j->ttl - 1), /* always sent, 0 included */
			.name = j->name,
			.sec = &ob->sec,
			.deadline_ms = ccb_now_ms() + OB_DIAL_MS,
			.t0_ms = ccb_now_ms(),
			.cancel = j->cancel,
			.on_socket = fwd_socket,
			.socket_user = j,
		};
		if (ccb__outbound_connect(&q, &j->fd, &e))
			snprintf(j->detail, sizeof j->detail, "%s", e.detail);
	} else {
		/* The full connect path; never through an outbound broker again:
		 * we are the exit point. */
		ccb_dial_config o = {.broker_sec = &ob->sec,
				   .timeout_ms = OB_DIAL_MS,
				   .stagger_ms = -1,
				   .cancel = j->cancel,
				   .name = j->name};
		ccb_stream *st = NULL;
		if (ccb_dial_sinful(j->target, &o, &st, &e) ||
		    ccb_stream_detach_fd(st, &j->fd)) {
			snprintf(j->detail, sizeof j->detail, "%s",
				 e.detail[0] ? e.detail : "could not take over the connection");
			j->fd = -1;
		}
		ccb_stream_free(st);
	}
	pthread_mutex_lock(&ob->mu);
	bk_list_del(&j->node);
	bk_list_add_tail(&ob->done, &j->node);
	ob->nrunning--;
	pthread_cond_broadcast(&ob->cv);
	pthread_mutex_unlock(&ob->mu);
	ccb__wakeup_signal(&b->done_signal);
	return NULL;
}

/* ---- the loop: request ------------------------------------------------------------ */

static bool host_is_literal(const char *target)
{
	ccb_sinful *s = NULL;
	bool yes = false;

	if (ccb_sinful_parse_address(target, &s, NULL) == CCB_OK && ccb_sinful_host(s)) {
		const char *h = ccb_sinful_host(s);
		yes = strspn(h, "0123456789.") == strlen(h) || strchr(h, ':') != NULL;
	}
	ccb_sinful_free(s);
	return yes;
}

static bool id_in_flight(bk_outbound *ob, const char *cid)
{
	bool found = false;

	pthread_mutex_lock(&ob->mu);
	for (bk_list *n = ob->running.next; !found && n != &ob->running; n = n->next)
		found = !strcmp(bk_container(n, ob_job, node)->connect_id, cid);
	for (bk_list *n = ob->done.next; !found && n != &ob->done; n = n->next)
		found = !strcmp(bk_container(n, ob_job, node)->connect_id, cid);
	pthread_mutex_unlock(&ob->mu);
	return found;
}

bool bk_outbound_has_id(ccb_broker *b, const char *connect_id)
{
	return b->ob && connect_id && id_in_flight(b->ob, connect_id);
}

static void refuse(ccb_broker *b, bk_conn *c, const char *text, bool count_failed)
{
	if (count_failed)
		b->st.requests_failed++;
	bk_reply_close(b, c, false, text);
}

/* The checks before a proxy-connect is dialed: an allowed target, the
 * streaming caps and duplicate-id rule (shared tables, §7.5), the TTL.
 * False once the request is refused. */
static bool admit(ccb_broker *b, bk_conn *c, const char *target, const char *cid, long long ttl)
{
	bk_outbound *ob = b->ob;
	size_t sessions;
	unsigned running;
	ccb__relay_stats rs;

	if (host_is_literal(target)) {
		char why[128];
		if (!ccb__outbound_target_allowed(target, ob->allow, ob->deny, why, sizeof why)) {
			CCB_LOG(CCB_LOG_INFO,
				"broker: refusing proxy-connect from %s to disallowed target %s (%s)",
				bk_peer(c), target, why);
			refuse(b, c, TXT_NOT_PERMITTED, false);
			return false;
		}
	}
	ccb__relay_engine_stats(b->relay, &rs);
	sessions = b->handshaking + (size_t)rs.active;
	if (b->cfg.max_streaming_sessions && sessions >= b->cfg.max_streaming_sessions) {
		CCB_LOG(CCB_LOG_INFO,
			"broker: refusing proxy-connect from %s: at the session limit "
			"(CCB_SERVER_MAX_STREAMING_SESSIONS=%u)",
			bk_peer(c), b->cfg.max_streaming_sessions);
		refuse(b, c, TXT_SESSION_CAP, true);
		return false;
	}
	pthread_mutex_lock(&ob->mu);
	running = ob->nrunning;
	pthread_mutex_unlock(&ob->mu);
	if ((b->cfg.max_streaming_handshakes && b->handshaking >= b->cfg.max_streaming_handshakes) ||
	    running >= ob->max_dials) {
		CCB_LOG(CCB_LOG_INFO,
			"broker: refusing proxy-connect from %s: at the handshake limit "
			"(CCB_SERVER_MAX_STREAMING_HANDSHAKES=%u, %u outbound dials running)",
			bk_peer(c), b->cfg.max_streaming_handshakes, running);
		refuse(b, c, TXT_HANDSHAKE_CAP, true);
		return false;
	}
	for (bk_list *n = b->sess_fifo.next; n != &b->sess_fifo; n = n->next)
		if (!strcmp(bk_container(n, bk_req, fifo)->connect_id, cid)) {
			refuse(b, c, TXT_DUP_ID, true);
			return false;
		}
	if (id_in_flight(ob, cid)) {
		refuse(b, c, TXT_DUP_ID, true);
		return false;
	}
	if (ob->next_hop && ttl <= 0) {
		CCB_LOG(CCB_LOG_INFO,
			"broker: refusing to forward proxy-connect from %s to %s: outbound TTL expired "
			"(possible next-hop loop)",
			bk_peer(c), target);
		ob->failed++;
		refuse(b, c, TXT_TTL_EXPIRED, true);
		return false;
	}
	return true;
}

/* A dial job for requester `c`, or NULL when out of memory. */
static ob_job *job_new(ccb_broker *b, bk_conn *c, const char *target, const char *cid,
		       long long ttl)
{
	bk_outbound *ob = b->ob;
	ob_job *j = calloc(1, sizeof *j);

	if (j) {
		j->fd = -1;
		j->fwd_fd = -1;
		j->b = b;
		j->c = c;
		j->id = ob->next_id++;
		j->ttl = ttl;
		j->forward = ob->next_hop != NULL;
		j->check_target = !host_is_literal(target);
		j->target = ccb_strdup(target);
		j->connect_id = ccb_strdup(cid);
		j->name = ccb_strdup(ccb_ad_string_or(c->hs->ad, CCB_ATTR_NAME, "CCB outbound proxy"));
		ccb_dial_cancel_new(&j->cancel, NULL); /* NULL: checked below */
		bk_list_init(&j->node);
	}
	if (!j || !j->target || !j->connect_id || !j->name || !j->cancel) {
		job_free(j);
		return NULL;
	}
	return j;
}

void bk_outbound_handle(ccb_broker *b, bk_conn *c)
{
	bk_outbound *ob = b->ob;
	const char *target, *cid, *bad;
	long long ttl;
	ob_job *j;

	if (!bk_outbound_enabled(b)) {
		bk_conn_close(b, c);
		return;
	}
	ob->requests++;
	bad = ccb__outbound_parse(c->hs->ad, ob->ttl, &target, &cid, &ttl);
	if (bad) {
		b->st.bad_input++;
		CCB_LOG(CCB_LOG_INFO, "broker: CCB_PROXY_CONNECT from %s: %s", bk_peer(c), bad);
		refuse(b, c, bad, false);
		return;
	}
	if (!admit(b, c, target, cid, ttl))
		return;
	if (!(j = job_new(b, c, target, cid, ttl))) {
		ob->failed++;
		refuse(b, c, TXT_DIAL_FAILED, true);
		return;
	}
	ccb_classad_free(c->hs->ad);
	c->hs->ad = NULL;
	c->state = BK_OUTBOUND;
	pthread_mutex_lock(&ob->mu);
	bk_list_add_tail(&ob->running, &j->node);
	ob->nrunning++;
	if (pthread_create(&j->th, NULL, dial_main, j) != 0) {
		bk_list_del(&j->node);
		ob->nrunning--;
		pthread_mutex_unlock(&ob->mu);
		CCB_LOG(CCB_LOG_WARNING, "broker: outbound proxy connection to %s failed to start: no thread",
			j->target);
		job_free(j);
		ob->failed++;
		refuse(b, c, TXT_DIAL_FAILED, true);
		return;
	}
	pthread_mutex_unlock(&ob->mu);
	b->handshaking++;
	if (b->handshaking > b->st.handshakes_peak)
		b->st.handshakes_peak = b->handshaking;
	/* Not CCBStreamingRequests: C++ counts that in StartProxyRequest only. */
	if (j->forward)
		ob->forwarded++;
	CCB_LOG(CCB_LOG_INFO, "broker: %s %s for outbound proxy request id %" PRIu64 " from %s (TTL %lld)",
		j->forward ? "forwarding to next hop for" : "dialing target", j->target, j->id, bk_peer(c),
		ttl);
}

/* ---- the loop: results ------------------------------------------------------------ */

static void finish(ccb_broker *b, ob_job *j)
{
	bk_outbound *ob = b->ob;
	bk_conn *c = j->c;
	ccb_error e;
	int fa = -1;

	pthread_join(j->th, NULL);
	if (b->handshaking)
		b->handshaking--;
	if (j->not_permitted) {
		CCB_LOG(CCB_LOG_INFO, "broker: refusing proxy-connect from %s to disallowed target %s (%s)",
			bk_peer(c), j->target, j->detail);
		bk_reply_close(b, c, false, TXT_NOT_PERMITTED);
		job_free(j);
		return;
	}
	if (j->fd < 0) {
		CCB_LOG(CCB_LOG_INFO, "broker: outbound proxy dial to %s failed for request id %" PRIu64 ": %s",
			j->target, j->id, j->detail);
		b->st.requests_failed++;
		ob->failed++;
		bk_reply_close(b, c, false, TXT_DIAL_FAILED);
		job_free(j);
		return;
	}
	/* {Result = true} only, then the raw relay (no hello, no ProxyMode). */
	{
		ccb_ad_field f[] = {CCB_AD_BOOL(CCB_ATTR_RESULT, true)};
		ccb_classad *ad = NULL;
		bool sent = ccb_ad_new(f, 1, &ad, NULL) == CCB_OK && bk_send_ad(b, c, ad);
		ccb_classad_free(ad);
		if (!sent || ccb_stream_detach_fd(c->s, &fa)) {
			CCB_LOG(CCB_LOG_INFO, "broker: outbound request id %" PRIu64 ": requester %s lost",
				j->id, bk_peer(c));
			b->st.requests_failed++;
			bk_conn_close(b, c);
			job_free(j);
			return;
		}
	}
	if (ccb__relay_start(b->relay, fa, j->fd, NULL, NULL, &e)) {
		CCB_LOG(CCB_LOG_WARNING, "broker: outbound request id %" PRIu64 ": relay refused: %s",
			j->id, e.detail);
		close(fa);
		close(j->fd);
		j->fd = -1;
		b->st.requests_failed++;
		bk_conn_close(b, c);
		job_free(j);
		return;
	}
	j->fd = -1; /* the relay owns both */
	CCB_LOG(CCB_LOG_INFO, "broker: established relay for outbound request id %" PRIu64 " (%s <-> %s)",
		j->id, bk_peer(c), j->target);
	b->st.requests_succeeded++;
	ob->succeeded++;
	bk_conn_close(b, c);
	job_free(j);
}

void bk_outbound_drain(ccb_broker *b)
{
	bk_outbound *ob = b->ob;
	bk_list got;

	if (!ob)
		return;
	bk_list_init(&got);
	pthread_mutex_lock(&ob->mu);
	while (!bk_list_empty(&ob->done)) {
		bk_list *n = ob->done.next;
		bk_list_del(n);
		bk_list_add_tail(&got, n);
	}
	pthread_mutex_unlock(&ob->mu);
	while (!bk_list_empty(&got)) {
		ob_job *j = bk_container(got.next, ob_job, node);
		bk_list_del(&j->node);
		finish(b, j);
	}
}

/* Cancel every dial, wait for the threads, close their requesters. */
void bk_outbound_stop(ccb_broker *b)
{
	bk_outbound *ob = b->ob;

	if (!ob)
		return;
	pthread_mutex_lock(&ob->mu);
	for (bk_list *n = ob->running.next; n != &ob->running; n = n->next) {
		ob_job *j = bk_container(n, ob_job, node);
		ccb_dial_cancel_fire(j->cancel);
		j->stopping = true;
		if (j->fwd_fd >= 0)
			shutdown(j->fwd_fd, SHUT_RDWR);
	}
	while (ob->nrunning)
		pthread_cond_wait(&ob->cv, &ob->mu);
	while (!bk_list_empty(&ob->done)) {
		ob_job *j = bk_container(ob->done.next, ob_job, node);
		bk_list_del(&j->node);
		pthread_mutex_unlock(&ob->mu);
		pthread_join(j->th, NULL);
		if (b->handshaking)
			b->handshaking--;
		bk_conn_close(b, j->c);
		job_free(j);
		pthread_mutex_lock(&ob->mu);
	}
	pthread_mutex_unlock(&ob->mu);
}

void bk_outbound_free(ccb_broker *b)
{
	bk_outbound *ob = b->ob;

	if (!ob)
		return;
	bk_outbound_stop(b);
	pthread_mutex_destroy(&ob->mu);
	pthread_cond_destroy(&ob->cv);
	b->cfg.outbound_target_allowlist = b->cfg.outbound_target_denylist = NULL;
	b->cfg.outbound_next_hop = NULL;
	ccb__sec_client_clear(&ob->sec);
	free(ob->allow);
	free(ob->deny);
	free(ob->next_hop);
	free(ob);
	b->ob = NULL;
}

void bk_outbound_status(ccb_broker *b, json_t *st, json_t *lim)
{
	bk_outbound *ob = b->ob;

	if (!ob)
		return;
	/* HTCondor's names (ccb-protocol.md §11.3). */
	json_object_set_new(st, "CCBOutboundRequests", json_integer((json_int_t)ob->requests));
	json_object_set_new(st, "CCBOutboundForwarded", json_integer((json_int_t)ob->forwarded));
	json_object_set_new(st, "CCBOutboundFailed", json_integer((json_int_t)ob->failed));
	/* libccb's own. */
	json_object_set_new(st, "OutboundRelays", json_integer((json_int_t)ob->succeeded));
	pthread_mutex_lock(&ob->mu);
	json_object_set_new(st, "OutboundDialsActive", json_integer((json_int_t)ob->nrunning));
	pthread_mutex_unlock(&ob->mu);
	json_object_set_new(lim, "outbound_proxy", json_boolean(ob->enabled));
	json_object_set_new(lim, "outbound_ttl", json_integer(ob->ttl));
	json_object_set_new(lim, "outbound_next_hop", ob->next_hop ? json_string(ob->next_hop) : json_null());
}
