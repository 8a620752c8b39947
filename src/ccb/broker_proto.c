/*
 * The broker's commands: registration and heartbeats (ccb-protocol.md §4,
 * §5), the targets' result reports (§6.4), the dispatch of a command after
 * its handshake, and the timers that bound requests and registrations.
 * Requests themselves (§6, §7) are in broker_request.c. Runs on the loop
 * thread only.
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

/* Wire texts of the C++ broker (ccb-protocol.md §12). */
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
	bool ok;

	if (b->pub_contact_ok) {
		int n = snprintf(out, size, "%s#%" PRIu64, b->pub_bare, id);
		ok = n >= 0 && (size_t)n < size;
	} else {
		ok = ccb_contact_make(b->pub_bare, id, &contact, NULL) == CCB_OK &&
		     (size_t)snprintf(out, size, "%s", contact) < size;
	}
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
		bk_req_free(b, q);
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
		bk_handle_request(b, c);
		return;
	case CCB_CMD_CCB_REVERSE_CONNECT:
		bk_handle_hello(b, c);
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
