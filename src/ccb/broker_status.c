/*
 * The broker's status (JSON), its network query (CCB_CMD_LIBCCB_STATUS) and
 * the JSON-config front end.
 */
#include <limits.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ccb/addr.h"
#include "ccb/commands.h"
#include "broker_internal.h"
#include "util/util.h"

char *bk_status_json_locked(ccb_broker *b, bool pretty)
{
	json_t *o = json_object(), *st = json_object(), *lim = json_object();
	ccb__relay_stats rs;
	size_t max = b->cfg.status_detail_max ? b->cfg.status_detail_max : 1000;
	char *out;

	if (!o || !st || !lim) {
		json_decref(o);
		json_decref(st);
		json_decref(lim);
		return NULL;
	}
	ccb__relay_engine_stats(b->relay, &rs);
	json_object_set_new(o, "address", json_string(b->pub_sinful));
	/* HTCondor's names (ccb-protocol.md §11.3). */
	json_object_set_new(st, "CCBEndpointsConnected", json_integer((json_int_t)b->regs.n));
	json_object_set_new(st, "CCBEndpointsConnectedPeak", json_integer((json_int_t)b->st.connected_peak));
	json_object_set_new(st, "CCBEndpointsRegistered", json_integer((json_int_t)b->recs.n));
	json_object_set_new(st, "CCBReconnects", json_integer((json_int_t)b->st.reconnects));
	json_object_set_new(st, "CCBRequests", json_integer((json_int_t)b->st.requests));
	json_object_set_new(st, "CCBRequestsNotFound", json_integer((json_int_t)b->st.requests_not_found));
	json_object_set_new(st, "CCBRequestsSucceeded", json_integer((json_int_t)b->st.requests_succeeded));
	json_object_set_new(st, "CCBRequestsFailed", json_integer((json_int_t)b->st.requests_failed));
	json_object_set_new(st, "CCBStreamingRequests", json_integer((json_int_t)b->st.streaming_requests));
	json_object_set_new(st, "CCBStreamingSessions", json_integer((json_int_t)rs.sessions));
	json_object_set_new(st, "CCBStreamingFailed", json_integer((json_int_t)rs.failed));
	json_object_set_new(st, "CCBStreamingActive", json_integer((json_int_t)rs.active));
	json_object_set_new(st, "CCBStreamingHandshakesActive", json_integer((json_int_t)b->handshaking));
	json_object_set_new(st, "CCBStreamingHandshakesActivePeak",
			    json_integer((json_int_t)b->st.handshakes_peak));
	json_object_set_new(st, "CCBStreamingBytes", json_integer((json_int_t)rs.bytes));
	bk_tunnel_status(b, st);
	/* libccb's own. */
	json_object_set_new(st, "PendingRequests", json_integer((json_int_t)b->reqs.n));
	json_object_set_new(st, "Connections", json_integer((json_int_t)b->nconns));
	json_object_set_new(st, "ConnectionsAccepted", json_integer((json_int_t)b->st.connections_accepted));
	json_object_set_new(st, "ConnectionsRefused", json_integer((json_int_t)b->st.connections_refused));
	json_object_set_new(st, "ConnectionsRefusedAtLimit", json_integer((json_int_t)b->st.refused_at_limit));
	json_object_set_new(st, "ConnectionsRefusedNoFd", json_integer((json_int_t)b->st.refused_no_fd));
	json_object_set_new(st, "AdminConnectionsOverLimit", json_integer((json_int_t)b->st.admin_over_limit));
	json_object_set_new(st, "HandshakesFailed", json_integer((json_int_t)b->st.handshakes_failed));
	json_object_set_new(st, "HandshakesInProgress", json_integer((json_int_t)b->hs_active));
	json_object_set_new(st, "HandshakesWaitingForPeer", json_integer((json_int_t)b->hs_nwait));
	json_object_set_new(st, "HandshakesRefusedPerSource",
			    json_integer((json_int_t)b->st.handshakes_source_refused));
	json_object_set_new(st, "BadInputClosed", json_integer((json_int_t)b->st.bad_input));
	json_object_set_new(st, "RequestsTimedOut", json_integer((json_int_t)b->st.requests_timed_out));
	json_object_set_new(st, "StreamingHandshakesTimedOut",
			    json_integer((json_int_t)b->st.streaming_handshakes_timed_out));
	json_object_set_new(st, "StreamingRelaysRefused", json_integer((json_int_t)rs.refused));
	json_object_set_new(st, "TargetsIdleDropped", json_integer((json_int_t)b->st.targets_idle_dropped));
	json_object_set_new(st, "RecordsPruned", json_integer((json_int_t)b->st.records_pruned));
	json_object_set_new(st, "RecordFileErrors", json_integer((json_int_t)b->st.record_file_errors));
	json_object_set_new(o, "stats", st);
	json_object_set_new(lim, "max_connections", json_integer(b->max_conns));
	json_object_set_new(lim, "admin_reserve", json_integer(b->admin_reserve));
	json_object_set_new(lim, "at_connection_limit", json_boolean(b->nconns >= b->max_conns));
	json_object_set_new(lim, "max_streaming_sessions", json_integer(b->cfg.max_streaming_sessions));
	json_object_set_new(lim, "max_streaming_handshakes", json_integer(b->cfg.max_streaming_handshakes));
	json_object_set_new(lim, "max_message", json_integer((json_int_t)b->max_message));
	json_object_set_new(lim, "max_handshakes_per_source", json_integer(b->hs_per_source));
	json_object_set_new(lim, "streaming", json_boolean(!b->cfg.streaming_disabled));
	bk_outbound_status(b, st, lim);
	json_object_set_new(o, "limits", lim);
	if (b->regs.n > max) {
		json_object_set_new(o, "registrations_truncated", json_true());
	} else {
		json_t *arr = json_array();
		for (bk_list *n = b->lru.next; arr && n != &b->lru; n = n->next) {
			bk_reg *r = bk_container(n, bk_reg, lru);
			char contact[320];
			bk_contact(b, r->id, contact, sizeof contact);
			json_array_append_new(
				arr, json_pack("{s:I,s:s,s:s,s:s,s:I,s:I,s:I}", "ccbid", (json_int_t)r->id,
					       "contact", contact, "peer", r->c ? bk_peer(r->c) : "",
					       "name", r->name, "registered", (json_int_t)r->registered_wall,
					       "last_heard", (json_int_t)r->heard_wall, "pending",
					       (json_int_t)r->npending));
		}
		json_object_set_new(o, "registrations", arr ? arr : json_null());
	}
	out = json_dumps(o, (pretty ? JSON_INDENT(2) : JSON_COMPACT) | JSON_SORT_KEYS);
	json_decref(o);
	return out;
}

ccb_err ccb_broker_status_json(ccb_broker *b, bool pretty, char **out, ccb_error *err)
{
	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "broker status: NULL out");
	*out = NULL;
	if (!b)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "broker status: NULL broker");
	pthread_mutex_lock(&b->lock);
	*out = bk_status_json_locked(b, pretty);
	pthread_mutex_unlock(&b->lock);
	if (!*out)
		return ccb_error_set(err, CCB_ERR_NOMEM, "broker status: out of memory");
	return CCB_OK;
}

ccb_err ccb_broker_query_status(const char *address, const ccb_sec_client_config *sec,
				int timeout_ms, char **json, ccb_error *err)
{
	ccb_sec_client_config dflt = {0};
	ccb_sinful *sf = NULL;
	ccb_stream *s = NULL;
	ccb_sec_info info;
	ccb_err rc;

	if (!address || !json)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_broker_query_status: missing argument");
	*json = NULL;
	if (timeout_ms <= 0)
		timeout_ms = 20000;
	if ((rc = ccb_sinful_parse_address(address, &sf, err)))
		return rc;
	rc = ccb_stream_connect(ccb_sinful_host(sf), ccb_sinful_port(sf) < 0 ? 9618 : ccb_sinful_port(sf),
				timeout_ms, &s, err);
	ccb_sinful_free(sf);
	if (rc)
		return ccb_error_prefix(err, "broker %s", address);
	ccb_stream_set_deadline(s, ccb_deadline_in(timeout_ms));
	ccb_stream_set_max_message(s, 64 * 1024 * 1024);
	if ((rc = ccb_sec_client_start(s, sec ? sec : &dflt, CCB_CMD_LIBCCB_STATUS, 0, address, &info,
				       err))) {
		/* A libccb broker closes a status query only when its security
		 * policy refuses it or when it is at its connection limit with its
		 * status reserve (docs/performance.md) full too: say both. */
		if ((rc == CCB_ERR_CLOSED || rc == CCB_ERR_IO) && err)
			ccb_error_prefix(err, "broker %s refused the status query (its security policy "
					      "does not grant READ to this client, or it is at its "
					      "connection limit and its status reserve is in use): ",
					 address);
		goto out;
	}
	if ((rc = ccb_stream_get_string(s, json)) || (rc = ccb_stream_end_of_message(s))) {
		ccb_error_set(err, rc, "status reply: %s", ccb_stream_error(s)->detail);
		free(*json);
		*json = NULL;
	}
out:
	ccb_stream_free(s);
	return rc;
}

/* Longest time knob in seconds: its milliseconds fit an int. */
#define MAX_TIME_KNOB_S 2073600 /* 24 days */

/* A time knob in seconds, as HTCondor writes them. Unset keeps the
 * default; for timeouts HTCondor documents "0 = never" (`zero_never`), 0
 * and negative values disable, elsewhere 0 keeps the default. */
static ccb_err get_ms(const ccb_config *c, const char *knob, bool zero_never, int *out,
		      ccb_error *err)
{
	long long v;
	ccb_err rc;

	*out = 0;
	if (!ccb_config_get(c, knob))
		return CCB_OK;
	if ((rc = ccb_config_int(c, knob, 0, &v, err)))
		return rc;
	if (v < 0 && !zero_never)
		return ccb_error_set(err, CCB_ERR_CONFIG, "%s must not be negative", knob);
	if (v > MAX_TIME_KNOB_S)
		return ccb_error_set(err, CCB_ERR_CONFIG, "%s must be at most %d s (24 days), is %lld",
				     knob, MAX_TIME_KNOB_S, v);
	if (v > 0)
		*out = (int)(v * 1000);
	else if (v < 0 || zero_never)
		*out = -1;
	return CCB_OK;
}

ccb_err ccb_broker_config_load(const ccb_config *c, ccb_broker_config *out, ccb_error *err)
{
	long long v;
	bool bv;
	ccb_err rc;

	if (!c || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_broker_config_load: missing argument");
	memset(out, 0, sizeof *out);
	/* The broker's own outbound connections (upstream registrations,
	 * CCB_PROXY_CONNECT to a next hop, CCB-routed targets) use the
	 * SEC_CLIENT_* knobs, as HTCondor's collector does. */
	if ((rc = ccb_config_server_security(c, &out->security, err)) ||
	    (rc = ccb_config_client_security(c, &out->client_security, err)))
		return rc;
	out->listen = ccb_config_get(c, "CCB_SERVER_LISTEN");
	out->public_address = ccb_config_get(c, "CCB_SERVER_PUBLIC_ADDRESS");
	out->reconnect_file = ccb_config_get(c, "CCB_RECONNECT_FILE");
	if ((rc = ccb_config_bool(c, "CCB_RECONNECT_ALLOWED_FROM_ANY_IP", false, &bv, err)))
		return rc;
	out->reconnect_any_ip = bv;
	if ((rc = ccb_config_bool(c, "CCB_SERVER_STREAMING", true, &bv, err)))
		return rc;
	out->streaming_disabled = !bv;
	if ((rc = get_ms(c, "CCB_SWEEP_INTERVAL", false, &out->sweep_interval_ms, err)) ||
	    (rc = get_ms(c, "CCB_SERVER_TARGET_IDLE_TIMEOUT", true, &out->target_idle_timeout_ms, err)) ||
	    (rc = get_ms(c, "CCB_SERVER_REQUEST_TIMEOUT", true, &out->request_timeout_ms, err)) ||
	    (rc = get_ms(c, "CCB_SERVER_STREAMING_HANDSHAKE_TIMEOUT", true,
			 &out->streaming_handshake_timeout_ms, err)) ||
	    (rc = get_ms(c, "CCB_SERVER_HANDSHAKE_TIMEOUT", false, &out->handshake_timeout_ms, err)))
		return rc;
	if (out->sweep_interval_ms < 0)
		out->sweep_interval_ms = 0;
#define UINT_KNOB(knob, field)                                                   \
	do {                                                                     \
		if ((rc = ccb_config_int(c, knob, 0, &v, err)))                  \
			return rc;                                               \
		if (v < 0)                                                       \
			return ccb_error_set(err, CCB_ERR_CONFIG, "%s must not be negative", knob); \
		out->field = (unsigned)v;                                        \
	} while (0)
	UINT_KNOB("CCB_SERVER_MAX_STREAMING_SESSIONS", max_streaming_sessions);
	UINT_KNOB("CCB_SERVER_MAX_STREAMING_HANDSHAKES", max_streaming_handshakes);
	UINT_KNOB("CCB_SERVER_MAX_CONNECTIONS", max_connections);
	UINT_KNOB("CCB_SERVER_HANDSHAKE_WORKERS", handshake_workers);
	UINT_KNOB("CCB_SERVER_MAX_HANDSHAKES_PER_SOURCE", max_handshakes_per_source);
	UINT_KNOB("CCB_SERVER_MAX_REQUESTS_PER_REQUESTER_TARGET", max_requests_per_requester_target);
	if ((rc = ccb_config_int(c, "CCB_SERVER_MAX_RECONNECT_RECORDS", 0, &v, err)))
		return rc;
	if (v < 0)
		return ccb_error_set(err, CCB_ERR_CONFIG,
				     "CCB_SERVER_MAX_RECONNECT_RECORDS must not be negative");
	out->max_reconnect_records = (size_t)v;
	if ((rc = ccb_config_int(c, "CCB_SERVER_MAX_MESSAGE", 0, &v, err)))
		return rc;
	if (v < 0)
		return ccb_error_set(err, CCB_ERR_CONFIG, "CCB_SERVER_MAX_MESSAGE must not be negative");
	out->max_message = (size_t)v;
	out->outbound_next_hop = ccb_config_get(c, "CCB_OUTBOUND_NEXT_HOP");
	if ((rc = get_ms(c, "CCB_TUNNEL_REGISTRATION_TIMEOUT", true,
			 &out->tunnel_registration_timeout_ms, err)) ||
	    (rc = get_ms(c, "CCB_RECONNECT_TIME", false, &out->upstream_reconnect_interval_ms, err)))
		return rc;
#undef UINT_KNOB
	/* Outbound proxy (ccb-protocol.md §9.1, §13). */
	if ((rc = ccb_config_bool(c, "CCB_OUTBOUND_PROXY", false, &bv, err)))
		return rc;
	out->outbound_proxy = bv;
	out->outbound_target_allowlist = ccb_config_get(c, "CCB_OUTBOUND_TARGET_ALLOWLIST");
	out->outbound_target_denylist = ccb_config_get(c, "CCB_OUTBOUND_TARGET_DENYLIST");
	out->outbound_next_hop = ccb_config_get(c, "CCB_OUTBOUND_NEXT_HOP");
	if ((rc = ccb_config_int(c, "CCB_OUTBOUND_TTL", 8, &v, err)))
		return rc;
	if (v < 1 || v > 1000)
		return ccb_error_set(err, CCB_ERR_CONFIG, "CCB_OUTBOUND_TTL must be 1..1000 (is %lld)", v);
	out->outbound_ttl = (int)v;
	return CCB_OK;
}
