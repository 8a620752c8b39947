/*
 * CCB requester: blocking dial through one or more brokers by connection
 * reversal, with happy-eyeballs racing and streaming (proxy) mode. This file
 * holds the public entry points and their option handling; the race is in
 * dial_race.c, one broker attempt in dial_attempt.c (dial_internal.h).
 * Wire reference: ccb-protocol.md §6 (standard request), §7 (streaming),
 * §8 (several brokers), §12 (broker error texts); ARCHITECTURE.md "Threads".
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccb/addr.h"
#include "ccb/dial.h"
#include "ccb/sharedport.h"
#include "ccb/wire.h"
#include "outbound.h"
#include "security/remote_version.h"
#include "util/util.h"
#include "dial_internal.h"

/* ---- cancel tokens ---------------------------------------------------- */

ccb_err ccb_dial_cancel_new(ccb_dial_cancel **out, ccb_error *err)
{
	ccb_dial_cancel *c;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_dial_cancel_new: NULL out");
	if (!(*out = c = calloc(1, sizeof *c)))
		return ccb_error_set(err, CCB_ERR_NOMEM, "new dial cancel token: out of memory");
	pthread_mutex_init(&c->mu, NULL);
	return CCB_OK;
}

void ccb_dial_cancel_fire(ccb_dial_cancel *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->fired = true;
	for (race *r = c->races; r; r = r->next_on_token) {
		pthread_mutex_lock(&r->mu);
		r->cancelled = true;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
	pthread_mutex_unlock(&c->mu);
}

bool ccb_dial_cancel_fired(ccb_dial_cancel *c)
{
	bool f;

	if (!c)
		return false;
	pthread_mutex_lock(&c->mu);
	f = c->fired;
	pthread_mutex_unlock(&c->mu);
	return f;
}

void ccb_dial_cancel_free(ccb_dial_cancel *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* ---- dial through brokers ---------------------------------------------- */

ccb_err ccb_dial(const char *const *contacts, size_t n, const ccb_dial_config *opts,
		 ccb_stream **out, ccb_error *err)
{
	if (out)
		*out = NULL;
	if (!contacts || !n || !opts || !opts->broker_sec || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG,
				     "dial: need contacts, options with broker_sec, and out");
	for (size_t i = 0; i < n; i++)
		if (!contacts[i])
			return ccb_error_set(err, CCB_ERR_INVALID_ARG, "dial: contact %zu is NULL", i);
	return ccb__dial_race_run(contacts, n, opts, out, err);
}

/* ---- conveniences ------------------------------------------------------ */

static void direct_event(const ccb_dial_config *o, int64_t t0, const char *step, ccb_err code,
			 const char *detail)
{
	ccb_dial_event ev = {.attempt = 0, .broker = "", .step = step,
			     .elapsed_ms = ccb_now_ms() - t0, .code = code, .detail = detail};
	if (o && o->progress)
		o->progress(&ev, o->progress_user);
}

/* PrivNet rule (Daemon::Set_addr, H:src/condor_daemon_client/daemon.cpp
 * 2180-2214; sinful.md §4.1): a target on our own private network is dialed
 * at its PrivAddr (alias kept) or, without one, at its public host:port with
 * the CCBID dropped. Like HTCondor, no fall-back to CCB afterwards. */
static ccb_err apply_privnet(const ccb_dial_config *o, int64_t t0, ccb_sinful **sp, ccb_error *err)
{
	ccb_sinful *s = *sp, *p = NULL;
	const char *net = ccb_sinful_private_network(s), *pa = ccb_sinful_private_addr(s);
	char detail[CCB_ERROR_DETAIL_SIZE];
	ccb_err rc;

	if (!o->private_network_name || !*o->private_network_name || !net ||
	    strcmp(net, o->private_network_name))
		return CCB_OK;
	if (!pa) {
		snprintf(detail, sizeof detail, "PrivNet %s is ours: dialing the public address directly",
			 net);
		direct_event(o, t0, "private network", CCB_OK, detail);
		return ccb_sinful_set_param(s, CCB_SINFUL_CCBID, NULL, err);
	}
	if ((rc = ccb_sinful_parse_address(pa, &p, err))) {
		ccb_error_prefix(err, "PrivAddr of the target: ");
		return rc;
	}
	if (!ccb_sinful_alias(p) && ccb_sinful_alias(s) &&
	    (rc = ccb_sinful_set_param(p, CCB_SINFUL_ALIAS, ccb_sinful_alias(s), err))) {
		ccb_sinful_free(p);
		return rc;
	}
	snprintf(detail, sizeof detail, "PrivNet %s is ours: dialing PrivAddr %s", net, pa);
	direct_event(o, t0, "private network", CCB_OK, detail);
	ccb_sinful_free(s);
	*sp = p;
	return CCB_OK;
}

ccb_err ccb_dial_sinful(const char *address, const ccb_dial_config *opts, ccb_stream **out,
			ccb_error *err)
{
	static const ccb_dial_config none;
	const ccb_dial_config *o = opts ? opts : &none;
	ccb_sinful *s = NULL;
	char **contacts = NULL;
	size_t n = 0;
	int64_t t0 = ccb_now_ms(), deadline;
	ccb_err rc;

	if (out)
		*out = NULL;
	if (!address || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "dial: need an address and out");
	if (ccb_dial_cancel_fired(o->cancel))
		return ccb_error_set(err, CCB_ERR_CANCELLED, "dial cancelled");
	deadline = t0 + (o->timeout_ms > 0 ? o->timeout_ms : CCB_DIAL_DEFAULT_TIMEOUT_MS);
	if ((rc = ccb_sinful_parse_address(address, &s, err)))
		return rc;
	if (ccb__dial_outbound_wanted(o, address)) {
		rc = ccb__dial_outbound(address, o, t0, deadline, out, err);
		goto out;
	}
	if ((rc = apply_privnet(o, t0, &s, err)))
		goto out;
	if (ccb_sinful_ccbid(s)) {
		ccb_dial_config copy = *o;

		if ((rc = ccb_sinful_ccb_contacts(s, &contacts, &n, err)))
			goto out;
		if (n == 0) {
			rc = ccb_error_set(err, CCB_ERR_INVALID_ARG, "dial %s: empty CCBID", address);
			goto out;
		}
		if (!copy.target_shared_port_id)
			copy.target_shared_port_id = ccb_sinful_shared_port_id(s);
		rc = ccb_dial((const char *const *)contacts, n, &copy, out, err);
	} else if (ccb_sinful_port(s) <= 0) {
		rc = ccb_error_set(err, CCB_ERR_INVALID_ARG, "dial %s: no port", address);
	} else if (ccb_sinful_shared_port_id(s)) {
		direct_event(o, t0, "connect", CCB_OK, "through shared port");
		rc = ccb_sharedport_dial(ccb_sinful_host(s), (uint16_t)ccb_sinful_port(s),
					 ccb_sinful_shared_port_id(s), o->shared_port_client_name,
					 deadline, out, err);
		if (rc == CCB_OK) {
			direct_event(o, t0, "shared port", CCB_OK, "SHARED_PORT_CONNECT sent");
			ccb_stream_set_deadline(*out, INT64_MAX);
			if (o->info) {
				memset(o->info, 0, sizeof *o->info);
				o->info->via_shared_port = true;
			}
		}
	} else {
		int fd;
		direct_event(o, t0, "connect", CCB_OK, "direct");
		rc = ccb_tcp_connect(ccb_sinful_host(s), ccb_sinful_port(s), deadline, "target", &fd,
				     err);
		if (rc == CCB_OK)
			rc = ccb_stream_new(fd, out, err);
		if (rc == CCB_OK && o->info)
			memset(o->info, 0, sizeof *o->info);
	}
	if (rc == CCB_OK && o->info && !ccb_sinful_ccbid(s))
		o->info->elapsed_ms = ccb_now_ms() - t0;
	if (rc && !ccb_sinful_ccbid(s))
		direct_event(o, t0, "failed", rc, err ? err->detail : "");
out:
	if (rc == CCB_OK) {
		/* Every path (CCB, outbound, shared port, direct) hands the
		 * stream over without the dial's deadline (dial.h). */
		ccb_stream_set_deadline(*out, INT64_MAX);
		ccb_stream_set_timeout(*out, CCB_STREAM_DEFAULT_TIMEOUT_MS);
	}
	ccb_strv_free(contacts);
	ccb_sinful_free(s);
	return rc;
}

ccb_err ccb_dial_command(const char *address, const ccb_dial_config *opts,
			 const ccb_sec_client_config *target_sec, int command, int auth_command,
			 ccb_stream **out, ccb_sec_info *info, ccb_error *err)
{
	int64_t t0 = ccb_now_ms();
	int timeout = opts && opts->timeout_ms > 0 ? opts->timeout_ms : CCB_DIAL_DEFAULT_TIMEOUT_MS;
	ccb_sec_client_config sc;
	ccb_sec_info tmp;
	ccb_sinful *s = NULL;
	ccb_stream *st = NULL;
	ccb_err rc;

	if (out)
		*out = NULL;
	if (!target_sec || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "dial command: need target_sec and out");
	sc = *target_sec;
	/* SSL names the server by the alias, else the host dialed
	 * (security-handshake.md §7.5). */
	if (!sc.ssl_server_host && ccb_sinful_parse_address(address, &s, NULL) == CCB_OK)
		sc.ssl_server_host = ccb_sinful_alias(s) ? ccb_sinful_alias(s) : ccb_sinful_host(s);
	/* Twice at most: a refused cached session is forgotten, so the second
	 * connection negotiates a new one. */
	for (int tries = 0; tries < 2; tries++) {
		if ((rc = ccb_dial_sinful(address, opts, &st, err)))
			break;
		ccb_stream_set_deadline(st, t0 + timeout);
		rc = ccb_sec_client_start(st, &sc, command, auth_command, address,
					  info ? info : &tmp, err);
		if (rc != CCB_ERR_SESSION_REFUSED)
			break;
		ccb_stream_free(st);
		st = NULL;
	}
	ccb_sinful_free(s);
	if (rc && !st)
		return rc;
	if (rc) {
		ccb_error_prefix(err, "dial command %d to %s: ", command, address);
		ccb_stream_free(st);
		return rc;
	}
	ccb_stream_set_deadline(st, INT64_MAX);
	ccb_stream_set_timeout(st, CCB_STREAM_DEFAULT_TIMEOUT_MS);
	*out = st;
	return CCB_OK;
}
