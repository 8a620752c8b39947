/*
 * The broker's commands: registration and heartbeats (ccb-protocol.md §4,
 * §5), standard requests and results (§6), streaming sessions (§7), and the
 * timers that bound them. Runs on the loop thread only.
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

#define BK_READ_TIMEOUT_MS 1000
#define BK_EDGE (EPOLLIN | EPOLLRDHUP | EPOLLET)

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
#define TXT_HS_TIMEOUT \
	"CCB streaming handshake timed out: the target did not connect back to the broker"
/* Not C++ (it waits forever or closes silently); golang-ccb's text. */
#define TXT_REQ_TIMEOUT "timed out waiting for target to connect"
#define TXT_TARGET_GONE "target disconnected from the CCB server before it reported a result"

/* Cookies: decimal digits, as the C++ reconnect check requires
 * (srv:800-803); compared as text. */
static bool all_digits(const char *s)
{
	if (!s || !*s || strlen(s) > 20)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* ---- registrations ------------------------------------------------------------- */

static uint64_t alloc_id(ccb_broker *b)
{
	/* Never an id that has a record or is in use (srv:2718-2755). */
	while (b->next_id == 0 || bk_map_get(&b->recs, b->next_id) || bk_map_get(&b->regs, b->next_id))
		b->next_id++;
	return b->next_id++;
}

static void touch(ccb_broker *b, bk_reg *r)
{
	r->heard_ms = ccb_now_ms();
	r->heard_wall = ccb_wall_s();
	bk_list_del(&r->lru);
	bk_list_add_tail(&b->lru, &r->lru);
}

void bk_drop_reg(ccb_broker *b, bk_reg *r, const char *why)
{
	/* Pending standard requests fail; the record stays (srv:2757-2786). */
	while (!bk_list_empty(&r->pending)) {
		bk_req *q = bk_container(r->pending.next, bk_req, tnode);
		bk_fail_request(b, q, why ? TXT_TARGET_GONE : NULL, why != NULL);
	}
	if (why)
		CCB_LOG(CCB_LOG_INFO, "broker: dropping registration ccbid %" PRIu64 " (%s): %s", r->id,
			r->c ? bk_peer(r->c) : "?", why);
	if (bk_map_get(&b->regs, r->id) == r)
		bk_map_del(&b->regs, r->id);
	bk_list_del(&r->lru);
	if (r->c) {
		r->c->reg = NULL;
		bk_conn_close(b, r->c);
	}
	free(r);
}

bool bk_contact(const ccb_broker *b, uint64_t id, char *out, size_t size)
{
	char *contact = NULL;
	bool ok = ccb_contact_make(b->pub_bare, id, &contact, NULL) == CCB_OK &&
		  (size_t)snprintf(out, size, "%s", contact) < size;

	free(contact);
	if (!ok && size)
		out[0] = '\0';
	return ok;
}

static void handle_register(ccb_broker *b, bk_conn *c)
{
	const char *name = ccb_ad_string_or(c->hs->ad, CCB_ATTR_NAME, "");
	const char *old = ccb_ad_string_or(c->hs->ad, CCB_ATTR_CCBID, NULL);
	const char *cookie = ccb_ad_string_or(c->hs->ad, CCB_ATTR_CLAIM_ID, NULL);
	bk_rec *rec = NULL;
	bk_reg *r;
	uint64_t id = 0;
	bool reclaimed = false;
	char contact[320];

	/* Reclaim: cookie all digits, id after the last '#', record with the
	 * same cookie and (unless allowed from any IP) the same peer IP
	 * (srv:766-829, 2643-2716; ccb-protocol.md §4.4). */
	if (old && cookie && all_digits(cookie)) {
		const char *hash = strrchr(old, '#');
		const char *num = hash ? hash + 1 : old;
		uint64_t want = 0;
		ccb_error pe;
		if (ccb_ccbid_parse(num, &want, &pe) != CCB_OK) {
			CCB_LOG(CCB_LOG_INFO, "broker: %s asked to reclaim a bad CCBID (%s); new id",
				bk_peer(c), pe.detail);
		} else {
			rec = bk_map_get(&b->recs, want);
			if (rec && !strcmp(rec->cookie, cookie) &&
			    (b->cfg.reconnect_any_ip || !strcmp(rec->ip, c->hs->peer_ip))) {
				id = rec->id;
				reclaimed = true;
			} else {
				CCB_LOG(CCB_LOG_INFO,
					"broker: %s asked to reclaim ccbid %s; no matching record, new id",
					bk_peer(c), num);
				rec = NULL;
			}
		}
	}
	if (reclaimed) {
		bk_reg *stale = bk_map_get(&b->regs, id);
		if (stale)
			bk_drop_reg(b, stale, "replaced by a re-registration");
		b->st.reconnects++;
	} else {
		id = alloc_id(b);
		rec = bk_rec_new(b, id, c->hs->peer_ip);
		if (!rec) {
			bk_conn_close(b, c);
			return;
		}
		bk_store_append(b, rec);
	}
	rec->alive_ms = ccb_now_ms();

	r = calloc(1, sizeof *r + strlen(name) + 1);
	if (!r) {
		bk_conn_close(b, c);
		return;
	}
	r->id = id;
	r->c = c;
	memcpy(r->name, name, strlen(name) + 1);
	bk_list_init(&r->lru);
	bk_list_init(&r->pending);
	r->registered_wall = ccb_wall_s();
	if (!bk_contact(b, id, contact, sizeof contact) || !bk_map_put(&b->regs, id, r)) {
		free(r);
		bk_conn_close(b, c);
		return;
	}
	c->reg = r;
	c->state = BK_REG;
	ccb_classad_free(c->hs->ad);
	c->hs->ad = NULL;
	touch(b, r);
	if (b->regs.n > b->st.connected_peak)
		b->st.connected_peak = b->regs.n;

	/* An inside CCB whose tunnel is not up yet holds the reply (§9.2). */
	if (!bk_tunnel_hold(b, r) && !bk_send_reg_reply(b, r))
		return;
	CCB_LOG(CCB_LOG_INFO, "broker: %s ccbid %" PRIu64 " for %s (%s)%s",
		reclaimed ? "reconnected" : "registered", id, bk_peer(c), r->name,
		r->held ? "; reply held until the tunnel is up" : "");
	/* A registration keeps nothing of its handshake. */
	free(c->hs);
	c->hs = NULL;
	if (!bk_epoll_add(b, c, BK_EDGE))
		bk_drop_reg(b, r, "epoll");
}

bool bk_send_reg_reply(ccb_broker *b, bk_reg *r)
{
	const char *paths = bk_tunnel_paths(b);
	bk_rec *rec = bk_map_get(&b->recs, r->id);
	ccb_classad *reply = NULL;
	char own[320], *list = NULL;

	r->held = false;
	if (!rec) {
		bk_drop_reg(b, r, "reconnect record lost");
		return false;
	}
	/* A tunnelling inside CCB stamps every tunnel path + "#<id>" (srv:157-171
	 * CCBIDToContactString over the tunnel list, §9.2); otherwise the
	 * contact is our own address + "#<id>". Built for the reply only: a
	 * registration does not keep it (docs/performance.md). */
	if (paths && *paths) {
		size_t cap = strlen(paths) * 2 + 64, len = 0;
		char *dup = ccb_strdup(paths), *save = NULL, *tok;
		if (!(list = malloc(cap)) || !dup) {
			free(list);
			free(dup);
			bk_drop_reg(b, r, "out of memory");
			return false;
		}
		list[0] = '\0';
		for (tok = strtok_r(dup, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
			int n = snprintf(list + len, cap - len, "%s%s#%" PRIu64, len ? " " : "", tok,
					 r->id);
			if (n < 0 || (size_t)n >= cap - len)
				break;
			len += (size_t)n;
		}
		free(dup);
	} else if (!bk_contact(b, r->id, own, sizeof own)) {
		bk_drop_reg(b, r, "contact");
		return false;
	}
	/* Reply: CCBID = full contact, Command = 67, ClaimId = cookie
	 * (srv:831-863, capture S1 conn 1 message 10), plus golang-ccb's
	 * streaming advertisement (§7.8). Never a reply without CCBID. */
	{
		ccb_ad_field f[] = {CCB_AD_STRING(CCB_ATTR_CCBID, list ? list : own),
				    CCB_AD_INT(CCB_ATTR_COMMAND, CCB_CMD_CCB_REGISTER),
				    CCB_AD_STRING(CCB_ATTR_CLAIM_ID, rec->cookie),
				    CCB_AD_BOOL(CCB_ATTR_CCB_STREAMING, true)};
		size_t nf = CCB_AD_NFIELDS(f) - (b->cfg.streaming_disabled ? 1 : 0);
		bool sent = ccb_ad_new(f, nf, &reply, NULL) == CCB_OK && bk_send_ad(b, r->c, reply);
		free(list);
		if (!sent) {
			ccb_classad_free(reply);
			bk_drop_reg(b, r, "registration reply failed");
			return false;
		}
	}
	ccb_classad_free(reply);
	ccb__stream_trim(r->c->s);
	return true;
}

/* Ask target `t` to dial this broker for a streaming request or a tunnel
 * relay hop (§7.5 step 3, capture S5 conn 1 msg 13; §9.3): the forwarded
 * CCB_REQUEST with the audit attributes (empty ones left out) and the
 * rest of the route. False when it could not be sent. */
bool bk_forward_proxy_request(ccb_broker *b, bk_reg *t, const char *connect_id, const char *rid,
			      const char *name, const char *orig, const char *route)
{
	ccb_ad_field f[] = {CCB_AD_INT(CCB_ATTR_COMMAND, CCB_CMD_CCB_REQUEST),
			    CCB_AD_STRING(CCB_ATTR_MY_ADDRESS, b->pub_sinful),
			    CCB_AD_STRING(CCB_ATTR_CLAIM_ID, connect_id),
			    CCB_AD_STRING(CCB_ATTR_REQUEST_ID, rid),
			    CCB_AD_STRING(CCB_ATTR_NAME, name),
			    CCB_AD_STRING(CCB_ATTR_CCB_ORIGINAL_REQUESTER, orig && *orig ? orig : NULL),
			    CCB_AD_STRING(CCB_ATTR_CCB_PRIOR_HOP, b->pub_bare),
			    CCB_AD_STRING(CCB_ATTR_CCB_ROUTE, route && *route ? route : NULL)};
	ccb_classad *fwd = NULL;
	bool ok = ccb_ad_new(f, CCB_AD_NFIELDS(f), &fwd, NULL) == CCB_OK && bk_send_ad(b, t->c, fwd);

	ccb_classad_free(fwd);
	return ok;
}

/* ---- requests ---------------------------------------------------------------------- */

static void req_free(ccb_broker *b, bk_req *q)
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
	req_free(b, q);
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

static bool route_ok(const char *route)
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

bool bk_route_ok(const char *route)
{
	return route_ok(route);
}

static bk_req *req_new(ccb_broker *b, bk_conn *c, const char *connect_id, bool streaming);

bk_req *bk_req_new(ccb_broker *b, bk_conn *c, const char *connect_id, bool streaming)
{
	return req_new(b, c, connect_id, streaming);
}

void bk_req_free(ccb_broker *b, bk_req *q)
{
	req_free(b, q);
}

static bk_req *req_new(ccb_broker *b, bk_conn *c, const char *connect_id, bool streaming)
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
	q = req_new(b, c, connect_id, true);
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
		req_free(b, q);
		b->st.requests_failed++;
		bk_drop_reg(b, t, "forwarding a proxy request failed");
		bk_reply_close(b, c, false, TXT_PROXY_FORWARD_FAILED);
		return NULL;
	}
	b->st.streaming_requests++;
	b->handshaking++;
	if (b->handshaking > b->st.handshakes_peak)
		b->st.handshakes_peak = b->handshaking;
	bk_list_add_tail(&b->sess_fifo, &q->fifo);
	c->state = BK_PROXY_REQ;
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
	bk_req *q = req_new(b, c, connect_id, false);

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
			req_free(b, q);
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
static void handle_request(ccb_broker *b, bk_conn *c)
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
	if (streaming && *route && !route_ok(route)) {
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
	req_free(b, q);
	b->st.requests_succeeded++;
	bk_conn_close(b, c);
}

/* A result report on a registration socket (§6.4, srv:1055-1171). */
static void handle_result(ccb_broker *b, bk_reg *r, ccb_classad *ad)
{
	const char *cid;
	uint64_t rid;
	bk_req *q;
	ccb_error e;
	bool ok;

	if (ccb_ad_need_decimal(ad, CCB_ATTR_REQUEST_ID, &rid, &e) ||
	    ccb_ad_need_string(ad, CCB_ATTR_CLAIM_ID, &cid, &e)) {
		b->st.bad_input++;
		bk_drop_reg(b, r, e.detail);
		return;
	}
	ok = ccb_ad_bool_or(ad, CCB_ATTR_RESULT, false);
	q = bk_map_get(&b->reqs, rid);
	if (!q) {
		CCB_LOG(CCB_LOG_DEBUG,
			"broker: received '%s' for request id %" PRIu64
			" from ccbid %" PRIu64 " (client which has gone away)",
			ok ? "success" : "failure", rid, r->id);
		return;
	}
	if (strcmp(q->connect_id, cid) || (!q->streaming && q->target != r)) {
		b->st.bad_input++;
		bk_drop_reg(b, r, "result does not match the request's connect id");
		return;
	}
	if (q->streaming) {
		/* The hello is the success signal; an early failure ends the
		 * session now instead of at the handshake timeout. */
		if (!ok)
			bk_fail_request(b, q, ccb_ad_string_or(ad, CCB_ATTR_ERROR_STRING, ""), true);
		return;
	}
	{
		bk_conn *c = q->c;
		req_free(b, q);
		if (ok)
			b->st.requests_succeeded++;
		else
			b->st.requests_failed++;
		bk_reply_close(b, c, ok, ccb_ad_string_or(ad, CCB_ATTR_ERROR_STRING, ""));
	}
}

static void handle_reg_message(ccb_broker *b, bk_reg *r, ccb_classad *ad)
{
	int64_t cmd;

	touch(b, r);
	if (ccb_classad_get_int(ad, CCB_ATTR_COMMAND, &cmd) == CCB_OK && cmd == CCB_CMD_ALIVE) {
		/* Heartbeat: answer {Command = 441} (§5.1, srv:1074-1078). */
		if (!bk_send_ad(b, r->c, b->alive_ad))
			bk_drop_reg(b, r, "heartbeat reply failed");
		return;
	}
	handle_result(b, r, ad);
}

void bk_reg_readable(ccb_broker *b, bk_conn *c)
{
	bk_reg *r = c->reg;

	for (;;) {
		enum peek_res pr = bk_peek_message(b, c);
		ccb_classad *ad = NULL;
		ccb_error e;

		if (pr == PK_NONE) {
			bk_list_del(&c->tnode);
			return;
		}
		if (pr == PK_PARTIAL) {
			/* Slow loris bound: the rest must come within the timeout. */
			if (!bk_list_linked(&c->tnode)) {
				c->deadline_ms = ccb_now_ms() + b->hs_timeout_ms;
				bk_list_add_tail(&b->partial_list, &c->tnode);
			}
			return;
		}
		bk_list_del(&c->tnode);
		if (pr == PK_CLOSED) {
			bk_drop_reg(b, r, "connection closed");
			return;
		}
		if (pr == PK_BAD) {
			b->st.bad_input++;
			bk_drop_reg(b, r, "bad or oversized CEDAR frame");
			return;
		}
		ccb_stream_set_timeout(c->s, BK_READ_TIMEOUT_MS);
		if (ccb_control_ad_read(c->s, &ad, &e)) {
			b->st.bad_input++;
			bk_drop_reg(b, r, e.detail);
			return;
		}
		handle_reg_message(b, r, ad);
		ccb_classad_free(ad);
		/* The handler may have dropped the registration. */
		if (c->state != BK_REG)
			return;
		/* An idle registration holds no message buffers (the reply's
		 * included). */
		ccb__stream_trim(c->s);
		/* The kernel held exactly that message: nothing is left to read,
		 * and bytes arriving since raise a new edge (EPOLLET), so the
		 * peek that would only say EAGAIN is saved. */
		if (b->peek_total == b->peek_len && b->peek_total < b->peek_cap)
			return;
	}
}

/* ---- streaming: the target's hello (§7.5 steps 4-6) -------------------------------- */

static void handle_hello(ccb_broker *b, bk_conn *t)
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
	req_free(b, q);
	b->st.requests_succeeded++;
	bk_conn_close(b, rq);
	bk_conn_close(b, t);
}

/* ---- dispatch after the handshake ------------------------------------------------------ */

void bk_handle_command(ccb_broker *b, bk_conn *c)
{
	ccb_stream_set_timeout(c->s, BK_READ_TIMEOUT_MS);
	ccb_stream_set_deadline(c->s, INT64_MAX);
	switch (c->hs->cmd) {
	case CCB_CMD_CCB_REGISTER:
		handle_register(b, c);
		return;
	case CCB_CMD_CCB_REQUEST:
		handle_request(b, c);
		return;
	case CCB_CMD_CCB_REVERSE_CONNECT:
		handle_hello(b, c);
		return;
	case CCB_CMD_CCB_PROXY_CONNECT:
		bk_outbound_handle(b, c);
		return;
	case CCB_CMD_LIBCCB_STATUS:
		c->hs->send_text = bk_status_json_locked(b, false);
		if (!c->hs->send_text) {
			bk_conn_close(b, c);
			return;
		}
		c->state = BK_SEND;
		bk_queue_job(b, c);
		return;
	default:
		/* DC_SEC_QUERY (answered already), DC_NOP*: done. */
		bk_conn_close(b, c);
		return;
	}
}

/* ---- timers ------------------------------------------------------------------------------ */

void bk_timers(ccb_broker *b, int64_t now)
{
	/* Connections that never sent (all of) their first message. */
	while (!bk_list_empty(&b->new_list)) {
		bk_conn *c = bk_container(b->new_list.next, bk_conn, tnode);
		if (c->deadline_ms > now)
			break;
		b->st.bad_input++;
		CCB_LOG(CCB_LOG_INFO, "broker: %s sent no complete first message within %ld ms; closed",
			bk_peer(c), b->hs_timeout_ms);
		bk_conn_close(b, c);
	}
	/* Partial messages that do not complete (slow loris). */
	while (!bk_list_empty(&b->partial_list)) {
		bk_conn *c = bk_container(b->partial_list.next, bk_conn, tnode);
		if (c->deadline_ms > now)
			break;
		b->st.bad_input++;
		bk_list_del(&c->tnode);
		if (c->reg)
			bk_drop_reg(b, c->reg, "message not completed in time");
		else
			bk_conn_close(b, c);
	}
	if (b->req_timeout_ms > 0)
		while (!bk_list_empty(&b->std_fifo)) {
			bk_req *q = bk_container(b->std_fifo.next, bk_req, fifo);
			if (q->created_ms + b->req_timeout_ms > now)
				break;
			b->st.requests_timed_out++;
			CCB_LOG(CCB_LOG_INFO, "broker: request id %" PRIu64 " timed out", q->id);
			bk_fail_request(b, q, TXT_REQ_TIMEOUT, true);
		}
	if (b->sess_timeout_ms > 0)
		while (!bk_list_empty(&b->sess_fifo)) {
			bk_req *q = bk_container(b->sess_fifo.next, bk_req, fifo);
			if (q->created_ms + b->sess_timeout_ms > now)
				break;
			b->st.streaming_handshakes_timed_out++;
			/* srv:2462-2501; tests grep "handshake" and "timed out". */
			CCB_LOG(CCB_LOG_INFO,
				"broker: CCB streaming handshake timed out for request id %" PRIu64, q->id);
			bk_fail_request(b, q, TXT_HS_TIMEOUT, true);
		}
	if (b->idle_ms > 0)
		while (!bk_list_empty(&b->lru)) {
			bk_reg *r = bk_container(b->lru.next, bk_reg, lru);
			if (r->heard_ms + b->idle_ms > now)
				break;
			b->st.targets_idle_dropped++;
			bk_drop_reg(b, r, "silent past the heartbeat window");
		}
	bk_tunnel_timers(b, now);
	if (now >= b->next_sweep_ms) {
		bk_store_sweep(b);
		b->next_sweep_ms = now + b->sweep_ms;
	}
}
