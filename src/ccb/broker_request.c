/*
 * The broker's requests: CCB_REQUEST (ccb-protocol.md §6) forwarded to its
 * target as a standard request (the target connects back to the requester)
 * or a streaming one (§7: the target dials the broker, which relays), the
 * requester's socket while it waits, and the target's hello that completes
 * a streaming session (§7.5). Registrations and result reports are in
 * broker_proto.c. Runs on the loop thread only.
 */

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ccb/commands.h"
#include "ccb/wire.h"
#include "broker_internal.h"
#include "cedar/stream_internal.h"
#include "util/util.h"

/* Wire texts of the C++ broker (ccb-protocol.md §12). */
#define TXT_INVALID_CCBID "invalid CCBID"
#define TXT_BAD_ROUTE "invalid tunnel route"
#define TXT_STREAMING_OFF                                                                  \
	"CCB streaming mode is required to reach this daemon but is disabled on the CCB server " \
	"(CCB_SERVER_STREAMING is false)"
#define TXT_FORWARD_FAILED "failed to forward request to target"
#define TXT_PROXY_FORWARD_FAILED "failed to forward proxy request to target"
#define TXT_SESSION_CAP "CCB streaming session limit reached on the broker"
#define TXT_HANDSHAKE_CAP "CCB streaming handshake limit reached on the broker"
#define TXT_DUP_ID "duplicate connect id"

void bk_req_free(ccb_broker *b, bk_req *q)
{
	if (bk_map_get(&b->reqs, q->id) == q)
		bk_map_del(&b->reqs, q->id);
	bk_list_del(&q->fifo);
	bk_list_del(&q->tnode);
	if (q->target && q->target->npending)
		q->target->npending--;
	if (q->streaming && b->handshaking)
		b->handshaking--;
	if (q->c)
		q->c->req = NULL;
	ccb__free_secret(q->connect_id);
	free(q);
}

/* End a request with a failure: reply `text` (when `reply`), close the
 * requester, count it failed. */
void bk_fail_request(ccb_broker *b, bk_req *q, const char *text, bool reply)
{
	bk_conn *c = q->c;

	/* A relay hop never answers on its pipe (§9.3). */
	if (q->inbound) {
		reply = false;
		b->st.tunnel_relays_failed++;
	}
	bk_req_free(b, q);
	b->st.requests_failed++;
	if (!c)
		return;
	if (reply)
		bk_reply_close(b, c, false, text);
	else
		bk_conn_close(b, c);
}

/* Whether a request needs the proxy (srv:1377-1394 RequestNeedsProxy, with
 * golang-ccb's extra cases; ccb-behaviour-notes.md §1.3). */
static bool needs_proxy(const ccb_classad *ad, const char *my_address, const char *route)
{
	ccb_sinful *sf = NULL;
	bool yes = ccb_ad_bool_or(ad, CCB_ATTR_CCB_STREAMING_REQUIRED, false) || (route && *route);

	if (!yes && my_address && *my_address && ccb_sinful_parse(my_address, &sf, NULL) == CCB_OK) {
		yes = ccb_sinful_ccbid(sf) != NULL;
		ccb_sinful_free(sf);
	}
	return yes;
}

bool bk_route_ok(const char *route)
{
	char buf[512], *save = NULL, *tok;
	int n = 0;

	if (strlen(route) >= sizeof buf)
		return false;
	snprintf(buf, sizeof buf, "%s", route);
	for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		if (ccb_ccbid_parse(tok, NULL, NULL) != CCB_OK || ++n > 8)
			return false;
	return n > 0;
}

bk_req *bk_req_new(ccb_broker *b, bk_conn *c, const char *connect_id, bool streaming)
{
	bk_req *q = calloc(1, sizeof *q);

	if (!q)
		return NULL;
	q->id = b->next_req++;
	q->streaming = streaming;
	q->c = c;
	q->connect_id = ccb_strdup(connect_id);
	q->created_ms = ccb_now_ms();
	bk_list_init(&q->fifo);
	bk_list_init(&q->tnode);
	if (!q->connect_id || !bk_map_put(&b->reqs, q->id, q)) {
		ccb__free_secret(q->connect_id);
		free(q);
		return NULL;
	}
	return q;
}

#define DEFAULT_MAX_PER_REQUESTER_TARGET 32

/* Requests from c's IP still pending for target t, standard or streaming. */
static unsigned pending_from(ccb_broker *b, const bk_conn *c, const bk_reg *t)
{
	unsigned n = 0;

	for (const bk_list *x = t->pending.next; x != &t->pending; x = x->next) {
		const bk_req *q = bk_container(x, bk_req, tnode);
		if (q->c && !strcmp(bk_peer_ip(q->c), bk_peer_ip(c)))
			n++;
	}
	for (const bk_list *x = b->sess_fifo.next; x != &b->sess_fifo; x = x->next) {
		const bk_req *q = bk_container(x, bk_req, fifo);
		if (q->target_id == t->id && q->c && !strcmp(bk_peer_ip(q->c), bk_peer_ip(c)))
			n++;
	}
	return n;
}

/* The registration a request names, or NULL once the request is answered
 * (a bad or unknown CCBID, or this requester's cap for the target). */
static bk_reg *request_target(ccb_broker *b, bk_conn *c, const char *ccbid)
{
	uint64_t tid = 0;
	ccb_error e;
	bk_reg *t;
	unsigned cap, n;

	if (ccb_ccbid_parse(ccbid, &tid, &e) != CCB_OK) {
		/* C++ answers "invalid CCBID" (srv:927-944); the reason follows. */
		char text[CCB_ERROR_DETAIL_SIZE + 32];
		b->st.requests_failed++;
		snprintf(text, sizeof text, "%s: %s", TXT_INVALID_CCBID, e.detail);
		CCB_LOG(CCB_LOG_WARNING, "broker: request from %s: %s", bk_peer(c), text);
		bk_reply_close(b, c, false, text);
		return NULL;
	}
	t = bk_map_get(&b->regs, tid);
	if (!t) {
		char text[256];
		b->st.requests++;
		b->st.requests_not_found++;
		snprintf(text, sizeof text,
			 "CCB server rejecting request for ccbid %s because no daemon is currently "
			 "registered with that id (perhaps it recently disconnected).",
			 ccbid);
		bk_reply_close(b, c, false, text);
		return NULL;
	}
	/* One requester cannot pile up requests for one target (issue 15):
	 * not in C++, which queues them all; answered in its RequestReply
	 * form {Result = false, ErrorString} (srv:1231-1245). */
	cap = b->cfg.max_requests_per_requester_target ? b->cfg.max_requests_per_requester_target
						       : DEFAULT_MAX_PER_REQUESTER_TARGET;
	n = pending_from(b, c, t);
	if (n >= cap) {
		char text[256];
		b->st.requests++;
		b->st.requests_failed++;
		snprintf(text, sizeof text,
			 "CCB server rejecting request for ccbid %s: %u requests from %s for "
			 "this target are already pending (limit "
			 "CCB_SERVER_MAX_REQUESTS_PER_REQUESTER_TARGET = %u)",
			 ccbid, n, c->hs->peer_ip, cap);
		CCB_LOG(CCB_LOG_WARNING, "broker: %s", text);
		bk_reply_close(b, c, false, text);
		return NULL;
	}
	return t;
}

/* A streaming session request (proxy or tunnel relay) waits for its target's
 * hello on c: counted, in the session FIFO (its deadline order). */
void bk_streaming_started(ccb_broker *b, bk_conn *c, bk_req *q)
{
	b->st.streaming_requests++;
	b->handshaking++;
	if (b->handshaking > b->st.handshakes_peak)
		b->st.handshakes_peak = b->handshaking;
	bk_list_add_tail(&b->sess_fifo, &q->fifo);
	c->state = BK_PROXY_REQ;
}


/* A streaming (proxy) request to `t`, under the session caps: forwarded
 * to the target, which is to dial the broker itself. NULL once the
 * request is answered or closed. */
static bk_req *start_streaming(ccb_broker *b, bk_conn *c, bk_reg *t, const char *connect_id,
			       const char *name, const char *route)
{
	size_t sessions = b->handshaking;
	ccb__relay_stats rs;
	char orig[320], rid[24];
	bk_req *q;

	ccb__relay_engine_stats(b->relay, &rs);
	sessions += (size_t)rs.active;
	/* Caps (srv:1396-1440, §7.5 step 1). */
	if (b->cfg.max_streaming_sessions && sessions >= b->cfg.max_streaming_sessions) {
		b->st.requests_failed++;
		bk_reply_close(b, c, false, TXT_SESSION_CAP);
		return NULL;
	}
	if (b->cfg.max_streaming_handshakes && b->handshaking >= b->cfg.max_streaming_handshakes) {
		b->st.requests_failed++;
		bk_reply_close(b, c, false, TXT_HANDSHAKE_CAP);
		return NULL;
	}
	for (bk_list *n = b->sess_fifo.next; n != &b->sess_fifo; n = n->next)
		if (!strcmp(bk_container(n, bk_req, fifo)->connect_id, connect_id)) {
			b->st.requests_failed++;
			bk_reply_close(b, c, false, TXT_DUP_ID);
			return NULL;
		}
	if (bk_outbound_has_id(b, connect_id)) {
		b->st.requests_failed++;
		bk_reply_close(b, c, false, TXT_DUP_ID);
		return NULL;
	}
	q = bk_req_new(b, c, connect_id, true);
	if (!q) {
		bk_conn_close(b, c);
		return NULL;
	}
	q->target_id = t->id;
	snprintf(rid, sizeof rid, "%" PRIu64, q->id);
	snprintf(orig, sizeof orig, "%s at %s", c->hs ? c->hs->user : "", bk_peer(c));
	/* Forward (§7.5 step 3, capture S5 conn 1 msg 13): the target is to
	 * dial the broker itself. */
	if (!bk_forward_proxy_request(b, t, connect_id, rid, name, orig, route)) {
		bk_req_free(b, q);
		b->st.requests_failed++;
		bk_drop_reg(b, t, "forwarding a proxy request failed");
		bk_reply_close(b, c, false, TXT_PROXY_FORWARD_FAILED);
		return NULL;
	}
	bk_streaming_started(b, c, q);
	CCB_LOG(CCB_LOG_INFO,
		"broker: started streaming (proxy) session request id %" PRIu64
		" from %s to ccbid %" PRIu64,
		q->id, bk_peer(c), t->id);
	return q;
}

/* A standard request to `t`: forwarded on its registration socket; the
 * requester waits for the target's result. NULL once the request is
 * answered or closed. */
static bk_req *start_standard(ccb_broker *b, bk_conn *c, bk_reg *t, const char *my_address,
			      const char *connect_id, const char *name)
{
	ccb_classad *fwd = NULL;
	char rid[24];
	bk_req *q = bk_req_new(b, c, connect_id, false);

	if (!q) {
		bk_conn_close(b, c);
		return NULL;
	}
	q->target_id = t->id;
	snprintf(rid, sizeof rid, "%" PRIu64, q->id);
	b->st.requests++;
	/* Forwarded request (§6.3, srv:1195-1229): strings the C++ listener
	 * insists on. */
	{
		ccb_ad_field f[] = {CCB_AD_INT(CCB_ATTR_COMMAND, CCB_CMD_CCB_REQUEST),
				    CCB_AD_STRING(CCB_ATTR_MY_ADDRESS, my_address),
				    CCB_AD_STRING(CCB_ATTR_CLAIM_ID, connect_id),
				    CCB_AD_STRING(CCB_ATTR_REQUEST_ID, rid),
				    CCB_AD_STRING(CCB_ATTR_NAME, name)};
		if (ccb_ad_new(f, CCB_AD_NFIELDS(f), &fwd, NULL) || !bk_send_ad(b, t->c, fwd)) {
			ccb_classad_free(fwd);
			bk_req_free(b, q);
			b->st.requests_failed++;
			bk_drop_reg(b, t, "forwarding a request failed");
			bk_reply_close(b, c, false, TXT_FORWARD_FAILED);
			return NULL;
		}
	}
	ccb_classad_free(fwd);
	q->target = t;
	t->npending++;
	bk_list_add_tail(&t->pending, &q->tnode);
	bk_list_add_tail(&b->std_fifo, &q->fifo);
	c->state = BK_REQ;
	CCB_LOG(CCB_LOG_DEBUG, "broker: request id %" PRIu64 " from %s to ccbid %" PRIu64, q->id,
		bk_peer(c), t->id);
	return q;
}

/* CCB_REQUEST (§6): check it, then start a streaming or standard request;
 * the requester's socket then waits in the loop. */
void bk_handle_request(ccb_broker *b, bk_conn *c)
{
	const char *ccbid, *my_address, *connect_id, *route;
	const char *rname = ccb_ad_string_or(c->hs->ad, CCB_ATTR_NAME, "");
	char name[512];
	bk_reg *t;
	bk_req *q;
	bool streaming;
	ccb_error e;

	/* Missing or non-string fields: close without a reply (srv:875-922). */
	if (ccb_ad_need_string(c->hs->ad, CCB_ATTR_CCBID, &ccbid, &e) ||
	    ccb_ad_need_string(c->hs->ad, CCB_ATTR_MY_ADDRESS, &my_address, &e) ||
	    ccb_ad_need_string(c->hs->ad, CCB_ATTR_CLAIM_ID, &connect_id, &e)) {
		b->st.bad_input++;
		CCB_LOG(CCB_LOG_WARNING, "broker: bad CCB_REQUEST from %s: %s", bk_peer(c), e.detail);
		bk_conn_close(b, c);
		return;
	}
	route = ccb_ad_string_or(c->hs->ad, CCB_ATTR_CCB_ROUTE, "");
	/* A pre-25.13 requester's nested CCBID ("5#42") without streaming (§9.4,
	 * srv:925-945: the test is CCBStreamingRequired alone). */
	if (strchr(ccbid, '#') && !ccb_ad_bool_or(c->hs->ad, CCB_ATTR_CCB_STREAMING_REQUIRED, false)) {
		bk_tunnel_old_client(b, c, ccbid, my_address, connect_id);
		return;
	}
	if (!(t = request_target(b, c, ccbid)))
		return;
	if (ccb_ad_bool_or(c->hs->ad, CCB_ATTR_CCB_STREAMING_REQUIRED, false) && b->cfg.streaming_disabled) {
		b->st.requests_failed++;
		bk_reply_close(b, c, false, TXT_STREAMING_OFF);
		return;
	}
	streaming = !b->cfg.streaming_disabled && needs_proxy(c->hs->ad, my_address, route);
	if (streaming && *route && !bk_route_ok(route)) {
		b->st.requests_failed++;
		bk_reply_close(b, c, false, TXT_BAD_ROUTE);
		return;
	}
	/* Name forwarded as "<requester's Name> on <peer>" (capture S1 conn 1 msg 13). */
	snprintf(name, sizeof name, "%s on %s", rname, bk_peer(c));
	q = streaming ? start_streaming(b, c, t, connect_id, name, route)
		      : start_standard(b, c, t, my_address, connect_id, name);
	if (!q)
		return;
	c->req = q;
	ccb_classad_free(c->hs->ad);
	c->hs->ad = NULL;
	ccb__stream_trim(c->s);
	if (!bk_epoll_add(b, c, BK_EDGE))
		bk_fail_request(b, q, NULL, false);
}

/* The requester's socket became readable while waiting. For a standard
 * request that means it is done (it closed after the reverse connect, or
 * sent something): C++ counts it as succeeded (srv:2788-2827). A streaming
 * requester that leaves cancels its session. */
void bk_requester_readable(ccb_broker *b, bk_conn *c)
{
	bk_req *q = c->req;

	if (!q) {
		bk_conn_close(b, c);
		return;
	}
	if (q->inbound) {
		/* The upstream pipe may carry the requester's first bytes for
		 * the target already: they wait in the kernel; only EOF ends the
		 * hop. */
		char byte;
		ssize_t n = recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
			return;
		CCB_LOG(CCB_LOG_INFO, "broker: upstream pipe of tunnel relay %" PRIu64 " closed", q->id);
		bk_fail_request(b, q, NULL, false);
		return;
	}
	if (q->streaming) {
		CCB_LOG(CCB_LOG_INFO, "broker: requester %s left streaming session %" PRIu64, bk_peer(c),
			q->id);
		bk_fail_request(b, q, NULL, false);
		return;
	}
	CCB_LOG(CCB_LOG_DEBUG, "broker: removed request id=%" PRIu64 " (requester closed)", q->id);
	bk_req_free(b, q);
	b->st.requests_succeeded++;
	bk_conn_close(b, c);
}

/* ---- streaming: the target's hello (§7.5 steps 4-6) -------------------------------- */

void bk_handle_hello(ccb_broker *b, bk_conn *t)
{
	const char *cid = ccb_ad_string_or(t->hs->ad, CCB_ATTR_CLAIM_ID, "");
	bk_req *q = NULL;
	bk_conn *rq;
	ccb_classad *reply = NULL;
	ccb_error e;
	int fa = -1, fb = -1;

	for (bk_list *n = b->sess_fifo.next; n != &b->sess_fifo; n = n->next)
		if (!strcmp(bk_container(n, bk_req, fifo)->connect_id, cid)) {
			q = bk_container(n, bk_req, fifo);
			break;
		}
	if (!q) {
		CCB_LOG(CCB_LOG_INFO, "broker: reverse connect from %s matches no streaming session",
			bk_peer(t));
		b->st.bad_input++;
		bk_conn_close(b, t);
		return;
	}
	rq = q->c;
	/* Reply {Result = true, ProxyMode = true}, then replay the target's
	 * hello unchanged under the requester's session (capture S5 conn 6
	 * messages 10-11). */
	{
		ccb_ad_field f[] = {CCB_AD_BOOL(CCB_ATTR_RESULT, true),
				    CCB_AD_BOOL(CCB_ATTR_PROXY_MODE, true)};
		/* A relay hop only splices (srv:1501-1557, reply_to_requester
		 * false). */
		bool sent = q->inbound || (ccb_ad_new(f, CCB_AD_NFIELDS(f), &reply, NULL) == CCB_OK &&
					   bk_send_ad(b, rq, reply));
		ccb_classad_free(reply);
		if (sent && !q->inbound) {
			ccb_stream_set_deadline(rq->s, ccb_deadline_in(500));
			sent = ccb_hello_write(rq->s, t->hs->ad, rq->peer_version, &e) == CCB_OK;
		}
		if (!sent || ccb_stream_detach_fd(rq->s, &fa) || ccb_stream_detach_fd(t->s, &fb)) {
			CCB_LOG(CCB_LOG_INFO, "broker: streaming session %" PRIu64 ": requester %s lost",
				q->id, bk_peer(rq));
			if (fa >= 0)
				close(fa);
			bk_fail_request(b, q, NULL, false);
			bk_conn_close(b, t);
			return;
		}
	}
	bk_epoll_del(b, rq);
	/* Crypto is simply not applied to the raw fds from here on. */
	if (ccb__relay_start(b->relay, fa, fb, NULL, NULL, &e)) {
		CCB_LOG(CCB_LOG_WARNING, "broker: streaming session %" PRIu64 ": relay refused: %s",
			q->id, e.detail);
		close(fa);
		close(fb);
		bk_fail_request(b, q, NULL, false);
		bk_conn_close(b, t);
		return;
	}
	CCB_LOG(CCB_LOG_INFO, "broker: established relay for request id %" PRIu64 " (%s <-> %s)", q->id,
		bk_peer(rq), bk_peer(t));
	bk_req_free(b, q);
	b->st.requests_succeeded++;
	bk_conn_close(b, rq);
	bk_conn_close(b, t);
}
