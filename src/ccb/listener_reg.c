/*
 * CCB listener: one registration session per broker, on its own worker
 * thread (ccb__lst_reg_main): connect (cancellable by stop), authenticate,
 * register or re-register (ccb-protocol.md §4), then serve the registration
 * (heartbeats, dead broker detection §5, forwarded requests §6.3 handed to
 * listener_rc.c) until it fails; then reconnect after a jittered wait.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ccb/addr.h"
#include "ccb/listener.h"
#include "ccb/sharedport.h"
#include "ccb/wire.h"
#include "cedar/connect.h"
#include "listener_internal.h"
#include "security/remote_version.h"
#include "util/util.h"

/* ---- connecting ---------------------------------------------------------------- */

static void set_state(reg *r, reg_state st)
{
	pthread_mutex_lock(&r->l->mu);
	r->state = st;
	pthread_mutex_unlock(&r->l->mu);
}

/* Open a stream to `host`:`port` (through shared port when `spid` is set),
 * published in *slot under l->mu so that stop() can shut it down. */
static ccb_err open_stream(ccb_listener *l, const char *host, int port, const char *spid,
			   int64_t deadline, int timeout_ms, const char *what, ccb_stream **slot,
			   ccb_stream **out, ccb_error *err)
{
	ccb_stream *s = NULL;
	char peer[128];
	int fd;
	ccb_err rc;

	*out = NULL;
	/* The stop signal cuts the connect short (cedar/connect.h). */
	rc = ccb__tcp_connect(host, port, deadline, what, ccb__wakeup_fd(&l->stop_signal), &fd,
			      err);
	if (rc)
		return rc;
	rc = ccb_stream_new(fd, &s, err);
	if (rc)
		return rc;
	snprintf(peer, sizeof peer, "%s %s:%d", what, host, port);
	ccb_stream_set_peer_name(s, peer);
	ccb_stream_set_timeout(s, timeout_ms);
	pthread_mutex_lock(&l->mu);
	if (l->stopping) {
		pthread_mutex_unlock(&l->mu);
		ccb_stream_free(s);
		return ccb_error_set(err, CCB_ERR_CANCELLED, "%s: stopped", peer);
	}
	*slot = s;
	pthread_mutex_unlock(&l->mu);
	if (spid) {
		/* <host:port?sock=id>: SHARED_PORT_CONNECT first (shared-port.md). */
		rc = ccb_sharedport_send_connect(s, spid, NULL, deadline, err);
		if (rc) {
			pthread_mutex_lock(&l->mu);
			*slot = NULL;
			pthread_mutex_unlock(&l->mu);
			ccb_stream_free(s);
			return rc;
		}
	}
	*out = s;
	return CCB_OK;
}

static void close_stream(ccb_listener *l, ccb_stream **slot)
{
	ccb_stream *s;

	pthread_mutex_lock(&l->mu);
	s = *slot;
	*slot = NULL;
	pthread_mutex_unlock(&l->mu);
	ccb_stream_free(s);
}

void ccb__lst_free_queue(reg *r)
{
	while (r->q_head) {
		result_item *it = r->q_head;
		r->q_head = it->next;
		ccb_classad_free(it->ad);
		free(it);
	}
	r->q_tail = NULL;
}

/* ---- one registration session (§4) ------------------------------------------- */

/* Serve the registration until it fails or stop. */
static ccb_err serve(reg *r, ccb_stream *s, unsigned peer_version, ccb_error *err)
{
	ccb_listener *l = r->l;
	/* C++ sends no heartbeats to brokers older than 7.5.0 (§5.2). */
	int64_t hb = peer_version && peer_version < CCB_VERSION_NUM(7, 5, 0) ? 0 : l->heartbeat_ms;
	int64_t last_recv = ccb_now_ms(), last_hb = last_recv;
	int fd = ccb_stream_fd(s);

	for (;;) {
		result_item *q;
		int64_t now, wait_until = INT64_MAX;
		int m;

		/* Send queued result reports (this thread is the only writer). */
		pthread_mutex_lock(&l->mu);
		q = r->q_head;
		r->q_head = r->q_tail = NULL;
		pthread_mutex_unlock(&l->mu);
		while (q) {
			result_item *it = q;
			ccb_err rc = ccb_control_ad_write(s, it->ad, peer_version, err);
			q = it->next;
			ccb_classad_free(it->ad);
			free(it);
			if (rc) {
				while (q) {
					it = q;
					q = it->next;
					ccb_classad_free(it->ad);
					free(it);
				}
				return ccb_error_prefix(err, "send result report: ");
			}
		}
		now = ccb_now_ms();
		if (hb > 0) {
			/* ALIVE after `hb` of silence; dead after 3x that (§5.2). */
			int64_t hb_due = (last_recv > last_hb ? last_recv : last_hb) + hb;
			int64_t dead_at = last_recv + 3 * hb;

			if (now >= dead_at)
				return ccb_error_set(err, CCB_ERR_TIMEOUT,
						     "broker %s silent for %lld ms (3 heartbeat intervals)",
						     r->address, (long long)(now - last_recv));
			if (now >= hb_due) {
				ccb_ad_field f[] = {CCB_AD_INT(CCB_ATTR_COMMAND, CCB_CMD_ALIVE)};
				ccb_classad *ad = NULL;
				ccb_err rc = ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, err);
				if (rc == CCB_OK)
					rc = ccb_control_ad_write(s, ad, peer_version, err);
				ccb_classad_free(ad);
				if (rc)
					return ccb_error_prefix(err, "send heartbeat: ");
				last_hb = now;
				pthread_mutex_lock(&l->mu);
				r->heartbeats_sent++;
				pthread_mutex_unlock(&l->mu);
				continue;
			}
			wait_until = hb_due < dead_at ? hb_due : dead_at;
		}
		m = ccb__lst_wait_any(l, fd, POLLIN, ccb__wakeup_fd(&r->wake),
			     wait_until == INT64_MAX ? -1 : ccb_deadline_left(wait_until));
		if (m & 4)
			return ccb_error_set(err, CCB_ERR_CANCELLED, "stopped");
		if (m & 2)
			ccb__wakeup_drain(&r->wake);
		if (m & 1) {
			ccb_classad *ad = NULL;
			int64_t cmd = -1;
			ccb_err rc = ccb_control_ad_read(s, &ad, err);

			if (rc)
				return ccb_error_prefix(err, "read from broker: ");
			last_recv = ccb_now_ms();
			ccb_classad_get_int(ad, CCB_ATTR_COMMAND, &cmd);
			if (cmd == CCB_CMD_ALIVE) {
				pthread_mutex_lock(&l->mu);
				r->last_heartbeat = ccb_wall_s();
				pthread_mutex_unlock(&l->mu);
			} else if (cmd == CCB_CMD_CCB_REQUEST) {
				if (!ccb__lst_handle_request(r, s, peer_version, ad)) {
					ccb_classad_free(ad);
					return ccb_error_set(err, ccb_stream_error(s)->code,
							     "send failure report: %s",
							     ccb_stream_error(s)->detail);
				}
			} else {
				CCB_LOG(CCB_LOG_DEBUG,
					"ccb listener: ignoring message with Command %lld from broker %s",
					(long long)cmd, r->address);
			}
			ccb_classad_free(ad);
		}
	}
}

/* Authenticate for CCB_REGISTER on the fresh stream `s`; the broker's
 * version (0 unknown) in *peer_version. */
static ccb_err reg_authenticate(reg *r, ccb_stream *s, unsigned *peer_version, ccb_error *err)
{
	ccb_sec_client_config sc = r->l->sec;
	ccb_sec_info info;
	ccb_err rc;
	int a, b, c;

	set_state(r, ST_AUTHENTICATING);
	/* SSL checks the broker's certificate against its alias, else host. */
	if (!sc.ssl_server_host)
		sc.ssl_server_host = r->alias ? r->alias : r->host;
	/* Every registration negotiates a new session, as C++ forces with
	 * USE_TMP_SEC_SESSION (§4.1); our client never resumes anyway. */
	rc = ccb_sec_client_start(s, &sc, CCB_CMD_CCB_REGISTER, 0, r->sinful, &info, err);
	if (rc) {
		ccb_error_prefix(err, "register with %s: ", r->address);
		return rc;
	}
	if (ccb__sec_version_parse(info.peer_version, &a, &b, &c, peer_version, NULL))
		*peer_version = 0;
	return CCB_OK;
}

/* Send the register ad (with the previous CCBID and cookie when
 * re-registering; the CCBID sent is left in *old_ccbid) and read the
 * broker's reply into *reply. */
static ccb_err reg_exchange(reg *r, ccb_stream *s, unsigned peer_version, char **old_ccbid,
			    ccb_classad **reply, ccb_error *err)
{
	ccb_listener *l = r->l;
	ccb_classad *ad = NULL;
	char *old_cookie = NULL;
	ccb_err rc = CCB_OK;

	set_state(r, ST_REGISTERING);
	pthread_mutex_lock(&l->mu);
	if (r->ccbid && r->cookie) {
		*old_ccbid = ccb_strdup(r->ccbid);
		old_cookie = ccb_strdup(r->cookie);
		if (!*old_ccbid || !old_cookie)
			rc = ccb_error_set(err, CCB_ERR_NOMEM,
					   "register with %s: out of memory copying the previous CCBID",
					   r->address);
	}
	pthread_mutex_unlock(&l->mu);
	if (rc)
		goto out;
	{
		/* §4.1: Command, Name, and on re-registration the previous CCBID
		 * and cookie verbatim (strings; NULL leaves them out). */
		ccb_ad_field f[] = {
			CCB_AD_INT(CCB_ATTR_COMMAND, CCB_CMD_CCB_REGISTER),
			CCB_AD_STRING(CCB_ATTR_NAME, l->name),
			CCB_AD_STRING(CCB_ATTR_CCBID, *old_ccbid),
			CCB_AD_STRING(CCB_ATTR_CLAIM_ID, old_cookie),
		};
		rc = ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, err);
	}
	if (rc == CCB_OK)
		rc = ccb_control_ad_write(s, ad, peer_version, err);
	if (rc == CCB_OK)
		rc = ccb_control_ad_read(s, reply, err);
	if (rc)
		ccb_error_prefix(err, "register with %s: ", r->address);
out:
	ccb__free_secret(old_cookie);
	ccb_classad_free(ad);
	return rc;
}

/* Take the broker's register reply: r is registered under its CCBID (and
 * cookie), or nothing changes and the error says why. */
static ccb_err reg_accept_reply(reg *r, const ccb_classad *reply, const char *old_ccbid,
				ccb_error *err)
{
	ccb_listener *l = r->l;
	const char *ccbid = NULL, *cookie = NULL;
	char *new_ccbid = NULL, *new_cookie = NULL;
	bool streaming = false;
	ccb_err rc;

	/* §4.2: CCBID is required (C++ aborts without it, Go errors); the
	 * cookie and CCBStreaming are optional; unknown attributes ignored. */
	rc = ccb_ad_need_string(reply, CCB_ATTR_CCBID, &ccbid, err);
	if (rc == CCB_OK && (!ccbid[0] || strlen(ccbid) > CCB_ADDR_MAX_TEXT))
		rc = ccb_error_set(err, CCB_ERR_PROTOCOL, "empty or oversized CCBID");
	if (rc) {
		ccb_error_prefix(err, "register reply from %s: ", r->address);
		return rc;
	}
	cookie = ccb_ad_string_or(reply, CCB_ATTR_CLAIM_ID, NULL);
	streaming = ccb_ad_bool_or(reply, CCB_ATTR_CCB_STREAMING, false);
	/* Copy before touching r: a copy that fails is a failed registration,
	 * never one marked registered with a NULL CCBID. */
	new_ccbid = ccb_strdup(ccbid);
	new_cookie = cookie ? ccb_strdup(cookie) : NULL;
	if (!new_ccbid || (cookie && !new_cookie)) {
		ccb__free_secret(new_cookie);
		free(new_ccbid);
		return ccb_error_set(err, CCB_ERR_NOMEM,
				     "register reply from %s: out of memory copying the CCBID/cookie",
				     r->address);
	}
	pthread_mutex_lock(&l->mu);
	free(r->ccbid);
	r->ccbid = new_ccbid;
	ccb__free_secret(r->cookie);
	r->cookie = new_cookie;
	r->streaming = streaming;
	r->registered = true;
	r->registered_at = ccb_wall_s();
	/* Registered again: the failure that led here is history (issue 13). */
	if (r->last_error[0]) {
		memcpy(r->previous_error, r->last_error, sizeof r->previous_error);
		r->previous_error_at = r->last_error_at;
		r->last_error[0] = '\0';
		r->last_error_at = 0;
	}
	r->session++;
	r->registrations++;
	r->state = ST_REGISTERED;
	l->gen++;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	CCB_LOG(CCB_LOG_INFO, "ccb listener: registered with %s as %s%s", r->address, ccbid,
		old_ccbid && strcmp(old_ccbid, ccbid) ? " (new CCBID)" : "");
	return CCB_OK;
}

/* One session with the broker: connect, authenticate, register, serve
 * until it fails or stop. */
static ccb_err reg_session(reg *r, bool *was_registered, ccb_error *err)
{
	ccb_listener *l = r->l;
	ccb_classad *reply = NULL;
	ccb_stream *s = NULL;
	char *old_ccbid = NULL;
	unsigned peer_version = 0;
	ccb_err rc;

	set_state(r, ST_CONNECTING);
	rc = open_stream(l, r->host, r->port, r->spid, ccb_deadline_in(l->timeout_ms), l->timeout_ms,
			 "broker", &r->s, &s, err);
	if (rc)
		return rc;
	rc = reg_authenticate(r, s, &peer_version, err);
	if (rc == CCB_OK)
		rc = reg_exchange(r, s, peer_version, &old_ccbid, &reply, err);
	if (rc == CCB_OK)
		rc = reg_accept_reply(r, reply, old_ccbid, err);
	if (rc == CCB_OK) {
		*was_registered = true;
		rc = serve(r, s, peer_version, err);
	}
	free(old_ccbid);
	ccb_classad_free(reply);
	close_stream(l, &r->s);
	return rc;
}

static int64_t jittered(int64_t ms)
{
	uint32_t rnd = 0;

	ccb_random_bytes(&rnd, sizeof rnd, NULL);
	/* Uniform in [75%, 125%] of the interval. */
	return ms * 3 / 4 + (int64_t)(rnd % (uint64_t)(ms / 2 + 1));
}

void *ccb__lst_reg_main(void *arg)
{
	reg *r = arg;
	ccb_listener *l = r->l;

	while (!ccb_listener_stopping(l)) {
		ccb_error err = {0};
		bool was_registered = false;
		ccb_err rc = reg_session(r, &was_registered, &err);
		int64_t until;

		pthread_mutex_lock(&l->mu);
		if (r->registered) {
			r->registered = false;
			l->gen++;
			pthread_cond_broadcast(&l->cv);
		}
		ccb__lst_free_queue(r);
		if (!l->stopping && rc) {
			snprintf(r->last_error, sizeof r->last_error, "%s", err.detail);
			r->last_error_at = ccb_wall_s();
			r->state = ST_RECONNECT_WAIT;
		}
		pthread_mutex_unlock(&l->mu);
		if (rc == CCB_ERR_CANCELLED || ccb_listener_stopping(l))
			break;
		CCB_LOG(CCB_LOG_WARNING, "ccb listener: broker %s: %s; retrying", r->address,
			err.detail);
		until = ccb_now_ms() + jittered(l->reconnect_ms);
		while (ccb_now_ms() < until)
			if (ccb__lst_wait_any(l, -1, 0, -1, ccb_deadline_left(until)) & 4)
				break;
		pthread_mutex_lock(&l->mu);
		if (!l->stopping)
			r->reconnects++;
		pthread_mutex_unlock(&l->mu);
	}
	set_state(r, ST_STOPPED);
	return NULL;
}
