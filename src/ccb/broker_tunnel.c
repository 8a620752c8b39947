/*
 * The inside CCB (ccb-protocol.md §9.2-9.4): a broker with
 * CCB_OUTBOUND_NEXT_HOP registers upstream with each next hop as an ordinary
 * listener (the library's ccb_listener, run inside the broker process),
 * stamps its own registrants with the tunnel paths it learns from those
 * registrations, holds their registration replies until the tunnel is up,
 * and relays routed reverse connects from upstream to the next local
 * registrant. The entry broker's back-compat path for pre-25.13
 * requesters that send a nested CCBID without streaming (§9.4) is in
 * broker_tunnel_old.c.
 *
 * Threads: the upstream listener calls up_handler() on its own job threads,
 * and old-client dials run on their own short threads (at most
 * TUN_MAX_DIALERS at once); both only queue an item and poke the loop's wake-up signal. All
 * broker state is touched on the loop thread only (bk_tunnel_event).
 *
 * What is checked against HTCondor's source (src/ccb/ccb_server.cpp, read,
 * not copied): RegisterUpstream / OnUpstreamRegistered (tunnel list:
 * each upstream contact's broker part re-rendered bare + "#" + our id),
 * HandleRegistration's deferral and SweepDeferredRegistrationReplies (hang
 * up after CCB_TUNNEL_REGISTRATION_TIMEOUT, never a reply without CCBID),
 * StartInboundRelay (head/tail split, fresh connect id, "inbound tunnel
 * relay for ...", prior hop = our address, never a reply on the pipe,
 * CCBTunnelRelays / CCBTunnelRelaysFailed), and the old-client path's
 * failure texts (§12).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "ccb/addr.h"
#include "broker_internal.h"
#include "outbound.h"
#include "ccb/commands.h"
#include "ccb/dial.h"
#include "ccb/listener.h"
#include "ccb/wire.h"
#include "cedar/stream_internal.h"
#include "util/util.h"
#include "broker_tunnel.h"

void bk_tun_item_free(tun_item *it)
{
	if (!it)
		return;
	ccb_stream_free(it->s);
	free(it->route);
	free(it->orig);
	free(it->prior);
	free(it);
}

static void poke(struct bk_tunnel *t)
{
	ccb__wakeup_signal(&t->wake);
}

/* Queue an item for the loop; false (item untouched) when the queue is full. */
bool bk_tun_push(struct bk_tunnel *t, tun_item *it)
{
	pthread_mutex_lock(&t->mu);
	if (t->nq >= TUN_MAX_QUEUE || atomic_load(&t->quit)) {
		pthread_mutex_unlock(&t->mu);
		return false;
	}
	it->next = NULL;
	*t->tail = it;
	t->tail = &it->next;
	t->nq++;
	pthread_mutex_unlock(&t->mu);
	poke(t);
	return true;
}

/* ---- upstream registration ------------------------------------------------- */

/* A reverse connect over one of our upstream registrations (lst:578-590):
 * with a route it is a tunnel hop to relay; without one the requester wants
 * this broker itself, so it is served like an accepted connection. */
static void up_handler(ccb_stream *s, const ccb_listener_conn_info *info, void *user)
{
	ccb_broker *b = user;
	struct bk_tunnel *t = b->tun;
	tun_item *it = calloc(1, sizeof *it);

	if (it) {
		it->s = s;
		it->route = ccb_strdup(info->route ? info->route : "");
		it->orig = ccb_strdup(info->original_requester ? info->original_requester : "");
		it->prior = ccb_strdup(info->prior_hop ? info->prior_hop : "");
		snprintf(it->peer, sizeof it->peer, "%s", info->broker ? info->broker : "upstream");
	}
	if (!it || !it->route || !it->orig || !it->prior || !bk_tun_push(t, it)) {
		CCB_LOG(CCB_LOG_WARNING, "broker: tunnel: dropping an upstream reverse connect (%s)",
			it ? "queue full" : "out of memory");
		if (it)
			bk_tun_item_free(it);
		else
			ccb_stream_free(s);
	}
}

static void *watcher_main(void *arg)
{
	ccb_broker *b = arg;
	struct bk_tunnel *t = b->tun;
	uint64_t gen = 0;

	while (!atomic_load(&t->quit))
		if (ccb_listener_wait_change(t->up, &gen, 200, NULL) == CCB_OK)
			poke(t);
	return NULL;
}

/* The tunnel paths from the upstream contacts (OnUpstreamRegistered,
 * srv:545-614): "<next hop>#<our id>" re-rendered with a bare broker
 * part; a contact whose broker part is not a valid address is skipped. */
static char *paths_from(ccb_listener *up)
{
	char *list = NULL, *save = NULL, *tok, *out;
	size_t cap, len = 0;

	if (ccb_listener_contact_list(up, &list, NULL))
		return NULL;
	cap = strlen(list) + 1;
	out = malloc(cap);
	if (!out) {
		free(list);
		return NULL;
	}
	out[0] = '\0';
	for (tok = strtok_r(list, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		ccb_contact c = {0};
		char *hash = strrchr(tok, '#');
		ccb_sinful *sf = NULL;
		char *bare = NULL;
		size_t need;

		/* A nested upstream contact ("A#3#9") stays nested: its broker
		 * part up to the first '#' is the address, the rest are hops. */
		if (!hash || ccb_contact_split(tok, &c, NULL) != CCB_OK) {
			ccb_contact_clear(&c);
			continue;
		}
		if (ccb_sinful_parse_address(c.broker, &sf, NULL) == CCB_OK)
			ccb_sinful_format_bare(sf, &bare, NULL);
		ccb_sinful_free(sf);
		if (!bare) {
			CCB_LOG(CCB_LOG_WARNING,
				"broker: tunnel: next-hop contact %s is not a valid address; skipping that path",
				tok);
			ccb_contact_clear(&c);
			continue;
		}
		need = strlen(bare) + strlen(tok) + 2;
		if (len + need >= cap) {
			char *n = realloc(out, len + need + 1);
			if (!n) {
				free(bare);
				ccb_contact_clear(&c);
				break;
			}
			out = n;
			cap = len + need + 1;
		}
		len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? " " : "", bare);
		for (size_t i = 0; i < c.n_ids; i++)
			len += (size_t)snprintf(out + len, cap - len, "#%s", c.ids[i]);
		free(bare);
		ccb_contact_clear(&c);
	}
	free(list);
	if (!out[0]) {
		free(out);
		return NULL;
	}
	return out;
}

/* The upstream registrations changed: re-derive the paths, flush held
 * replies. A lost upstream keeps the last paths (as C++ does): the hop
 * reconnects and normally reclaims the same id. */
static void refresh_paths(ccb_broker *b)
{
	struct bk_tunnel *t = b->tun;
	char *p = t->up ? paths_from(t->up) : NULL;
	size_t i = 0, flushed = 0;
	bk_mnode *n = NULL;
	bk_reg *r;

	if (!p || (t->paths && !strcmp(p, t->paths))) {
		free(p);
		return;
	}
	free(t->paths);
	t->paths = p;
	CCB_LOG(CCB_LOG_INFO, "broker: registered with next-hop CCB(s); tunnel paths for local registrants: %s",
		p);
	if (!t->nheld)
		return;
	/* Flush held replies; collect first (a failed reply drops a reg). */
	{
		bk_reg **held = calloc(t->nheld, sizeof *held);
		size_t k = 0;
		if (!held)
			return;
		while ((r = bk_map_next(&b->regs, &i, &n)))
			if (r->held && k < t->nheld)
				held[k++] = r;
		t->nheld = 0;
		for (size_t j = 0; j < k; j++)
			if (bk_send_reg_reply(b, held[j]))
				flushed++;
		free(held);
	}
	CCB_LOG(CCB_LOG_INFO, "broker: tunnel up: sent %zu held registration repl%s", flushed,
		flushed == 1 ? "y" : "ies");
}

/* The queue and its wake-up signal (every broker that needs them: an inside CCB,
 * or an entry broker serving an old client). */
ccb_err bk_tun_new(ccb_broker *b, ccb_error *err)
{
	struct bk_tunnel *t = calloc(1, sizeof *t);

	if (!t)
		return ccb_error_set(err, CCB_ERR_NOMEM, "broker tunnel");
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	t->tail = &t->head;
	t->hold_ms = b->cfg.tunnel_registration_timeout_ms == 0 ? 300L * 1000
							    : b->cfg.tunnel_registration_timeout_ms;
	t->wake = (ccb__wakeup)CCB__WAKEUP_NONE;
	b->tun = t;
	if (ccb__wakeup_init(&t->wake, err))
		return ccb_error_prefix(err, "broker tunnel: ");
	if (!(t->econn = bk_conn_new(ccb__wakeup_fd(&t->wake), BK_EVENT)) ||
	    !bk_epoll_add(b, t->econn, EPOLLIN))
		return ccb_error_set(err, CCB_ERR_NOMEM, "broker tunnel");
	return CCB_OK;
}

ccb_err bk_tunnel_start(ccb_broker *b, ccb_error *err)
{
	const char *hops = b->cfg.outbound_next_hop;
	struct bk_tunnel *t;
	ccb_listener_config lc = {0};
	char **list = NULL, name[600];
	size_t n = 0;
	ccb_err rc;

	/* Borrowed by the caller only during ccb_broker_new(). */
	b->cfg.outbound_next_hop = NULL;
	if (!hops || !*hops)
		return CCB_OK;
	if ((rc = ccb_broker_list_split(hops, &list, &n, err)))
		return ccb_error_prefix(err, "CCB_OUTBOUND_NEXT_HOP: ");
	if (!n) {
		ccb_strv_free(list);
		return CCB_OK;
	}
	if ((rc = bk_tun_new(b, err))) {
		ccb_strv_free(list);
		return rc;
	}
	t = b->tun;
	/* Registered as a normal listener (srv:516-543): Name as a daemon's
	 * "<SUBSYS> <sinful>"; our own command socket is the broker's, so the
	 * listener opens none. */
	snprintf(name, sizeof name, "CCB %s", b->pub_sinful);
	lc.brokers = (const char *const *)list;
	lc.n_brokers = n;
	lc.security = b->cfg.client_security; /* copied by ccb_listener_new() */
	lc.handler = up_handler;
	lc.user = b;
	lc.name = name;
	lc.own_command_address = b->pub_sinful;
	lc.reconnect_interval_ms = b->cfg.upstream_reconnect_interval_ms;
	rc = ccb_listener_new(&lc, &t->up, err);
	ccb_strv_free(list);
	if (rc)
		return ccb_error_prefix(err, "CCB_OUTBOUND_NEXT_HOP: ");
	if ((rc = ccb_listener_start(t->up, err)))
		return ccb_error_prefix(err, "CCB_OUTBOUND_NEXT_HOP: ");
	if (pthread_create(&t->watcher, NULL, watcher_main, b) != 0)
		return ccb_error_set(err, CCB_ERR_NOMEM, "broker tunnel: cannot start a thread");
	t->watcher_on = true;
	CCB_LOG(CCB_LOG_INFO,
		"broker: registering with next-hop CCB %s; local registrations wait until the tunnel is up",
		hops);
	return CCB_OK;
}

void bk_tunnel_free(ccb_broker *b)
{
	struct bk_tunnel *t = b->tun;

	if (!t)
		return;
	atomic_store(&t->quit, true);
	if (t->up)
		ccb_listener_stop(t->up);
	if (t->watcher_on)
		pthread_join(t->watcher, NULL);
	/* Old-client dialers finish within their dial timeout. */
	pthread_mutex_lock(&t->mu);
	while (t->dialers)
		pthread_cond_wait(&t->cv, &t->mu);
	pthread_mutex_unlock(&t->mu);
	ccb_listener_free(t->up);
	while (t->head) {
		tun_item *it = t->head;
		t->head = it->next;
		if (it->req)
			bk_conn_close(b, it->req);
		bk_tun_item_free(it);
	}
	if (t->econn) {
		bk_epoll_del(b, t->econn);
		free(t->econn);
	}
	ccb__wakeup_close(&t->wake);
	free(t->paths);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
	free(t);
	b->tun = NULL;
}

const char *bk_tunnel_paths(ccb_broker *b)
{
	return b->tun ? b->tun->paths : NULL;
}

bool bk_tunnel_hold(ccb_broker *b, bk_reg *r)
{
	struct bk_tunnel *t = b->tun;

	if (!t || t->paths)
		return false;
	r->held = true;
	r->held_ms = ccb_now_ms();
	t->nheld++;
	return true;
}

void bk_tunnel_timers(ccb_broker *b, int64_t now)
{
	struct bk_tunnel *t = b->tun;
	size_t i = 0;
	bk_mnode *n = NULL;
	bk_reg *r, *late[64];
	size_t k = 0, alive = 0;

	if (!t || !t->nheld)
		return;
	/* SweepDeferredRegistrationReplies (srv:2503-2544): hang up, never a
	 * reply without CCBID. Dropped registrations leave the count here. */
	while ((r = bk_map_next(&b->regs, &i, &n))) {
		if (!r->held)
			continue;
		alive++;
		if (t->hold_ms > 0 && now - r->held_ms >= t->hold_ms && k < 64)
			late[k++] = r;
	}
	t->nheld = alive - k;
	for (size_t j = 0; j < k; j++) {
		CCB_LOG(CCB_LOG_WARNING,
			"broker: this inside CCB has still not registered upstream after %ld s; "
			"disconnecting waiting registrant ccbid %" PRIu64 " (%s) so it retries later",
			t->hold_ms / 1000, late[j]->id, late[j]->c ? bk_peer(late[j]->c) : "?");
		late[j]->held = false;
		bk_drop_reg(b, late[j], NULL);
	}
}

/* ---- relays -------------------------------------------------------------------- */

/* Split "head tail..." (SplitRoute): false for an empty route. */
bool bk_route_split(const char *route, char *head, size_t hn, const char **tail)
{
	size_t len;

	while (*route == ' ')
		route++;
	len = strcspn(route, " ");
	if (!len || len >= hn)
		return false;
	memcpy(head, route, len);
	head[len] = '\0';
	route += len;
	while (*route == ' ')
		route++;
	*tail = route;
	return true;
}

/* Make `s` a loop connection (counted in nconns); NULL when refused. */
static bk_conn *adopt(ccb_broker *b, ccb_stream **s, bk_state st, const char *peer)
{
	bk_conn *c;

	if (b->nconns >= b->max_conns) {
		b->st.connections_refused++;
		return NULL;
	}
	c = bk_conn_new(ccb_stream_fd(*s), st);
	if (!c)
		return NULL;
	c->s = *s;
	*s = NULL;
	ccb_stream_set_peer_name(c->s, peer);
	b->nconns++;
	return c;
}

/* StartInboundRelay (srv:1501-1557): ask the local registrant `route`'s head
 * to reverse-connect with a fresh connect id and splice it to `c` (already
 * a loop connection). Takes `c` in every case. */
static void start_relay(ccb_broker *b, bk_conn *c, const char *route, const char *orig,
			const char *prior, bool old_client)
{
	char head[32], cid[41], rid[24], name[400];
	const char *tail = "";
	uint8_t raw[20];
	bk_reg *t = NULL;
	bk_req *q;

	if (!bk_route_ok(route) || !bk_route_split(route, head, sizeof head, &tail)) {
		CCB_LOG(CCB_LOG_WARNING, "broker: tunnel relay with an invalid route '%.64s' from %s; dropped",
			route, bk_peer(c));
		b->st.tunnel_relays_failed++;
		bk_conn_close(b, c);
		return;
	}
	t = bk_map_get(&b->regs, strtoull(head, NULL, 10));
	if (!t || t->held) {
		CCB_LOG(CCB_LOG_WARNING,
			"broker: inbound relay cannot continue: no daemon registered as next-hop ccbid %s "
			"(original requester %s); dropping",
			head, orig && *orig ? orig : "(unknown)");
		b->st.tunnel_relays_failed++;
		bk_conn_close(b, c);
		return;
	}
	/* StartProxyRequest's caps hold for relay hops too (srv:1396-1439);
	 * nothing is replied on the pipe. */
	{
		size_t sessions = b->handshaking;
		ccb__relay_stats rs;
		ccb__relay_engine_stats(b->relay, &rs);
		sessions += (size_t)rs.active;
		if ((b->cfg.max_streaming_sessions && sessions >= b->cfg.max_streaming_sessions) ||
		    (b->cfg.max_streaming_handshakes &&
		     b->handshaking >= b->cfg.max_streaming_handshakes)) {
			CCB_LOG(CCB_LOG_WARNING,
				"broker: refusing a tunnel relay from %s: at the streaming session or "
				"handshake limit",
				bk_peer(c));
			b->st.requests_failed++;
			if (!old_client)
				b->st.tunnel_relays_failed++;
			bk_conn_close(b, c);
			return;
		}
	}
	if (ccb_random_bytes(raw, sizeof raw, NULL)) {
		b->st.tunnel_relays_failed++;
		bk_conn_close(b, c);
		return;
	}
	ccb_hex_encode(raw, sizeof raw, cid);
	cid[40] = '\0';
	q = bk_req_new(b, c, cid, true);
	if (!q) {
		b->st.tunnel_relays_failed++;
		bk_conn_close(b, c);
		return;
	}
	q->inbound = true;
	snprintf(rid, sizeof rid, "%" PRIu64, q->id);
	/* The old-client hop is named after the dialed requester (srv:1780-1786). */
	if (old_client)
		snprintf(name, sizeof name, "%s", bk_peer(c));
	else
		snprintf(name, sizeof name, "inbound tunnel relay for %s",
			 orig && *orig ? orig : "(unknown)");
	CCB_LOG(CCB_LOG_DEBUG,
		"broker: relaying inbound tunnel to next-hop ccbid %s (remaining route '%s') for "
		"original requester %s via prior hop %s",
		head, tail, orig && *orig ? orig : "(unknown)", prior && *prior ? prior : "(unknown)");
	/* The audit attributes pass on unchanged, except that we are now the
	 * prior hop; logged, never trusted. */
	if (!bk_forward_proxy_request(b, t, cid, rid, name, orig, tail)) {
		bk_req_free(b, q);
		b->st.tunnel_relays_failed++;
		bk_drop_reg(b, t, "forwarding a tunnel relay failed");
		bk_conn_close(b, c);
		return;
	}
	if (!old_client)
		b->st.tunnel_relays++;
	bk_streaming_started(b, c, q);
	c->req = q;
	CCB_LOG(CCB_LOG_INFO,
		"broker: started streaming (proxy) session request id %" PRIu64
		" (inbound tunnel relay) to ccbid %" PRIu64,
		q->id, t->id);
	if (!bk_epoll_add(b, c, EPOLLIN | EPOLLRDHUP | EPOLLET))
		bk_fail_request(b, q, NULL, false);
}

static void handle_item(ccb_broker *b, tun_item *it)
{
	bk_conn *c;
	bool old = it->req != NULL;

	if (it->req) {
		/* Old client (§9.4): answer its request, then relay the socket we
		 * dialed (which got its hello) down the tunnel. */
		bk_conn *rq = it->req;
		char head[32];
		const char *tail = "";
		bool there = bk_route_split(it->route, head, sizeof head, &tail) &&
			     bk_map_get(&b->regs, strtoull(head, NULL, 10));

		it->req = NULL;
		if (it->failed || !there) {
			b->st.requests_failed++;
			bk_reply_close(b, rq, false, it->failed ? it->fail_text : TXT_DEREGISTERED);
			return;
		}
		b->st.requests_succeeded++;
		bk_reply_close(b, rq, true, NULL);
	}
	if (!it->s)
		return;
	c = adopt(b, &it->s, BK_NEW, it->peer);
	if (!c) {
		CCB_LOG(CCB_LOG_WARNING, "broker: tunnel: connection limit; dropping a relay from %s",
			it->peer);
		b->st.tunnel_relays_failed++;
		return;
	}
	if (!it->route[0]) {
		/* For this broker itself: the requester's command follows, as on
		 * an accepted connection. */
		c->deadline_ms = ccb_now_ms() + b->hs_timeout_ms;
		if (ccb_stream_detach_fd(c->s, &c->fd))
			c->fd = -1;
		ccb_stream_free(c->s);
		c->s = NULL;
		if (c->fd < 0) {
			bk_conn_close(b, c);
			return;
		}
		bk_list_add_tail(&b->new_list, &c->tnode);
		if (!bk_epoll_add(b, c, EPOLLIN | EPOLLRDHUP | EPOLLET))
			bk_conn_close(b, c);
		return;
	}
	start_relay(b, c, it->route, it->orig, it->prior, old);
}

bool bk_tunnel_event(ccb_broker *b, bk_conn *ec)
{
	struct bk_tunnel *t = b->tun;
	tun_item *list;

	if (!t || ec != t->econn)
		return false;
	ccb__wakeup_drain(&t->wake);
	pthread_mutex_lock(&t->mu);
	list = t->head;
	t->head = NULL;
	t->tail = &t->head;
	t->nq = 0;
	pthread_mutex_unlock(&t->mu);
	refresh_paths(b);
	while (list) {
		tun_item *it = list;
		list = it->next;
		handle_item(b, it);
		bk_tun_item_free(it);
	}
	return true;
}

void bk_tunnel_status(ccb_broker *b, void *obj)
{
	json_t *st = obj;
	struct bk_tunnel *t = b->tun;

	json_object_set_new(st, "CCBTunnelRelays", json_integer((json_int_t)b->st.tunnel_relays));
	json_object_set_new(st, "CCBTunnelRelaysFailed",
			    json_integer((json_int_t)b->st.tunnel_relays_failed));
	if (t && t->up) {
		json_object_set_new(st, "CCBTunnelPaths", t->paths ? json_string(t->paths) : json_null());
		json_object_set_new(st, "CCBTunnelRegistrationsHeld", json_integer((json_int_t)t->nheld));
	}
}
