/*
 * The entry broker's back-compat path for pre-25.13 requesters that send a
 * nested CCBID ("5#42") without streaming (ccb-protocol.md §9.4): the broker
 * dials the requester itself on a short thread (at most TUN_MAX_DIALERS at
 * once), gives it the hello it waits for, and hands the connection to the
 * tunnel's relay (broker_tunnel.c) through the item queue.
 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccb/commands.h"
#include "ccb/dial.h"
#include "ccb/wire.h"
#include "broker_internal.h"
#include "broker_tunnel.h"
#include "outbound.h"
#include "util/util.h"

typedef struct dial_job {
	ccb_broker *b;
	tun_item *it;
	char *my_address, *connect_id;
} dial_job;

static void *dial_main(void *arg)
{
	dial_job *j = arg;
	struct bk_tunnel *t = j->b->tun;
	ccb_dial_config o = {0};
	ccb_classad *hello = NULL;
	ccb_error e = {0};

	o.timeout_ms = TUN_DIAL_TIMEOUT_MS;
	/* Dial the requester itself and give it the hello it waits for:
	 * {ClaimId = its connect id, MyAddress = this broker}. */
	ccb_ad_field f[] = {CCB_AD_STRING(CCB_ATTR_CLAIM_ID, j->connect_id),
			    CCB_AD_STRING(CCB_ATTR_MY_ADDRESS, j->b->pub_sinful)};
	char why[256];
	bool permitted, dialed;

	/* MyAddress comes from the requester: the same guard as the outbound
	 * proxy's before the broker dials it (srv:1620-1634, OutboundTargetAllowed;
	 * by default loopback and link-local addresses are refused). Names are
	 * resolved, so this runs here, off the loop thread. */
	permitted = ccb__outbound_target_allowed(j->my_address, j->b->cfg.outbound_target_allowlist,
						 j->b->cfg.outbound_target_denylist, why, sizeof why);
	if (!permitted) {
		CCB_LOG(CCB_LOG_WARNING, "broker: refusing old-client tunnel request: reverse-connect "
			"target %s is not permitted by this broker (%s)", j->my_address, why);
		snprintf(e.detail, sizeof e.detail, "target not permitted");
	}
	dialed = permitted && ccb_dial_sinful(j->my_address, &o, &j->it->s, &e) == CCB_OK;

	/* The hello is {ClaimId, MyAddress} (srv:1730-1745). */
	if (!dialed || ccb_ad_new(f, CCB_AD_NFIELDS(f), &hello, &e) ||
	    (ccb_stream_set_deadline(j->it->s, ccb_deadline_in(TUN_DIAL_TIMEOUT_MS)),
	     ccb_hello_write(j->it->s, hello, 0, &e))) {
		CCB_LOG(CCB_LOG_INFO, "broker: old-client tunnel request: reverse connect to %s failed: %s",
			j->my_address, e.detail);
		ccb_stream_free(j->it->s);
		j->it->s = NULL;
		j->it->failed = true;
		j->it->fail_text = !permitted ? TXT_NOT_PERMITTED
				   : dialed   ? TXT_SEND_FAILED
					      : TXT_REVERSE_FAILED;
	} else {
		ccb_stream_set_deadline(j->it->s, INT64_MAX);
	}
	ccb_classad_free(hello);
	if (!bk_tun_push(t, j->it)) {
		/* Only while stopping: bk_tunnel_free closes what is queued, so
		 * queue it anyway. */
		pthread_mutex_lock(&t->mu);
		j->it->next = NULL;
		*t->tail = j->it;
		t->tail = &j->it->next;
		pthread_mutex_unlock(&t->mu);
	}
	free(j->my_address);
	ccb__free_secret(j->connect_id);
	free(j);
	pthread_mutex_lock(&t->mu);
	t->dialers--;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

/* The checks before an old client's nested CCBID is dialed for: a
 * well-formed id whose head is registered here ("5#42" -> route "5 42"
 * in route[rn]), a MyAddress, the session and handshake caps. False once
 * the request is answered. */
static bool old_client_admit(ccb_broker *b, bk_conn *c, const char *ccbid, const char *my_address,
			     char *route, size_t rn)
{
	struct bk_tunnel *t = b->tun;
	char head[32];
	const char *tail;
	size_t sessions = b->handshaking;
	ccb__relay_stats rs;
	unsigned dialing = 0;

	/* A malformed id and an unknown head get the same answer (srv:1600-1620). */
	if (strlen(ccbid) >= rn) {
		b->st.requests_failed++;
		bk_reply_close(b, c, false, TXT_NO_ROUTE);
		return false;
	}
	snprintf(route, rn, "%s", ccbid);
	for (char *p = route; *p; p++)
		if (*p == '#')
			*p = ' ';
	if (strstr(ccbid, "##") || ccbid[0] == '#' || ccbid[strlen(ccbid) - 1] == '#' ||
	    !bk_route_ok(route) || !bk_route_split(route, head, sizeof head, &tail)) {
		b->st.requests_failed++;
		bk_reply_close(b, c, false, TXT_NO_ROUTE);
		return false;
	}
	if (!bk_map_get(&b->regs, strtoull(head, NULL, 10))) {
		b->st.requests++;
		b->st.requests_not_found++;
		bk_reply_close(b, c, false, TXT_NO_ROUTE);
		return false;
	}
	/* MyAddress is checked against the outbound allow/deny lists by the
	 * dial thread (dial_main); an empty one cannot be dialed at all. */
	if (!my_address[0]) {
		b->st.requests_failed++;
		bk_reply_close(b, c, false, TXT_REVERSE_FAILED);
		return false;
	}
	ccb__relay_engine_stats(b->relay, &rs);
	sessions += (size_t)rs.active;
	if (b->cfg.max_streaming_sessions && sessions >= b->cfg.max_streaming_sessions) {
		b->st.requests_failed++;
		bk_reply_close(b, c, false, TXT_OLD_SESSION_CAP);
		return false;
	}
	if (t) {
		pthread_mutex_lock(&t->mu);
		dialing = t->dialers;
		pthread_mutex_unlock(&t->mu);
	}
	if (b->cfg.max_streaming_handshakes &&
	    b->handshaking + dialing >= b->cfg.max_streaming_handshakes) {
		b->st.requests_failed++;
		bk_reply_close(b, c, false, TXT_OLD_HANDSHAKE_CAP);
		return false;
	}
	return true;
}

/* Start the dial thread for an old client's request `c` (its outcome comes
 * back as a queued item). False, with nothing left behind, when it could
 * not be started. */
static bool old_client_dial(ccb_broker *b, bk_conn *c, struct bk_tunnel *t, const char *route,
			    const char *my_address, const char *connect_id)
{
	dial_job *j = NULL;
	pthread_t th;
	pthread_attr_t at;
	bool started = false;

	pthread_mutex_lock(&t->mu);
	if (t->dialers < TUN_MAX_DIALERS && (j = calloc(1, sizeof *j)) &&
	    (j->it = calloc(1, sizeof *j->it))) {
		j->b = b;
		j->it->req = c;
		j->it->route = ccb_strdup(route);
		j->my_address = ccb_strdup(my_address);
		j->connect_id = ccb_strdup(connect_id);
		snprintf(j->it->peer, sizeof j->it->peer, "%s", my_address);
		{
			char o[320];
			snprintf(o, sizeof o, "%s at %s", c->hs ? c->hs->user : "", bk_peer(c));
			j->it->orig = ccb_strdup(o);
		}
		j->it->prior = ccb_strdup(b->pub_bare);
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		if (j->it->route && j->my_address && j->connect_id && j->it->orig && j->it->prior &&
		    pthread_create(&th, &at, dial_main, j) == 0) {
			t->dialers++;
			started = true;
		}
		pthread_attr_destroy(&at);
	}
	pthread_mutex_unlock(&t->mu);
	if (!started && j) {
		if (j->it) {
			j->it->req = NULL;
			bk_tun_item_free(j->it);
		}
		free(j->my_address);
		ccb__free_secret(j->connect_id);
		free(j);
	}
	return started;
}

void bk_tunnel_old_client(ccb_broker *b, bk_conn *c, const char *ccbid, const char *my_address,
			  const char *connect_id)
{
	char route[512];

	if (!old_client_admit(b, c, ccbid, my_address, route, sizeof route))
		return;
	/* The dial must not block the loop: a short thread, bounded in number.
	 * Without a tunnel object (a plain entry broker) make one lazily. */
	if (!b->tun) {
		ccb_error e = {0};
		if (bk_tun_new(b, &e)) {
			CCB_LOG(CCB_LOG_WARNING, "broker: %s", e.detail);
			b->st.requests_failed++;
			bk_reply_close(b, c, false, TXT_REVERSE_FAILED);
			return;
		}
	}
	if (!old_client_dial(b, c, b->tun, route, my_address, connect_id)) {
		b->st.requests_failed++;
		bk_reply_close(b, c, false, TXT_REVERSE_FAILED);
		return;
	}
	CCB_LOG(CCB_LOG_INFO, "broker: old-client request from %s for nested ccbid %s: dialing %s",
		bk_peer(c), ccbid, my_address);
	/* The request connection waits, out of epoll, for the dial's outcome.
	 * (ccbid and my_address borrow from this ad: logged above.) */
	ccb_classad_free(c->hs->ad);
	c->hs->ad = NULL;
}
