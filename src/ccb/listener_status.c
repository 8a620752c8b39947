/*
 * CCB listener: what it reports (registration state, contacts, the status
 * dump, waits for a change) and its configuration from HTCondor knobs
 * (ccb-protocol.md §13), as broker_status.c does for the broker.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ccb/addr.h"
#include "ccb/config.h"
#include "ccb/listener.h"
#include "listener_internal.h"
#include "util/util.h"

static const char *const state_names[] = {"idle", "connecting", "authenticating", "registering",
					  "registered", "reconnect_wait", "stopped"};

size_t ccb_listener_num_registered(ccb_listener *l)
{
	size_t n = 0, i;

	pthread_mutex_lock(&l->mu);
	for (i = 0; i < l->nregs; i++)
		n += l->regs[i].registered;
	pthread_mutex_unlock(&l->mu);
	return n;
}

static void deadline_ts(int64_t ms, struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Wait on l->cv (held) until `until` (INT64_MAX: forever); false on timeout. */
static bool cv_wait_until(ccb_listener *l, int64_t until)
{
	struct timespec ts;
	int64_t left;

	if (until == INT64_MAX) {
		pthread_cond_wait(&l->cv, &l->mu);
		return true;
	}
	left = until - ccb_now_ms();
	if (left <= 0)
		return false;
	deadline_ts(left, &ts);
	pthread_cond_timedwait(&l->cv, &l->mu, &ts);
	return true;
}

ccb_err ccb_listener_wait_registered(ccb_listener *l, size_t n, int timeout_ms, ccb_error *err)
{
	int64_t until = timeout_ms < 0 ? INT64_MAX : ccb_now_ms() + timeout_ms;
	ccb_err rc = CCB_ERR_TIMEOUT;
	size_t k = 0;

	if (!l)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "wait for registration: NULL listener");
	pthread_mutex_lock(&l->mu);
	for (;;) {
		size_t i;
		k = 0;
		for (i = 0; i < l->nregs; i++)
			k += l->regs[i].registered;
		if (k >= n) {
			rc = CCB_OK;
			break;
		}
		if (l->stopping) {
			rc = CCB_ERR_CANCELLED;
			break;
		}
		if (!cv_wait_until(l, until))
			break;
	}
	pthread_mutex_unlock(&l->mu);
	if (rc == CCB_ERR_TIMEOUT)
		return ccb_error_set(err, rc, "timed out after %d ms waiting for %zu broker registrations (%zu registered)",
				     timeout_ms, n, k);
	if (rc == CCB_ERR_CANCELLED)
		return ccb_error_set(err, rc, "listener stopped while waiting for %zu broker registrations (%zu registered)",
				     n, k);
	return CCB_OK;
}

ccb_err ccb_listener_wait_change(ccb_listener *l, uint64_t *gen, int timeout_ms, ccb_error *err)
{
	int64_t until = timeout_ms < 0 ? INT64_MAX : ccb_now_ms() + timeout_ms;
	bool changed, stopping;

	if (!l || !gen)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "wait for a contact change: NULL argument");
	pthread_mutex_lock(&l->mu);
	while (l->gen == *gen && timeout_ms != 0 && !l->stopping && cv_wait_until(l, until))
		;
	changed = l->gen != *gen;
	stopping = l->stopping;
	*gen = l->gen;
	pthread_mutex_unlock(&l->mu);
	if (changed)
		return CCB_OK;
	if (stopping)
		return ccb_error_set(err, CCB_ERR_CANCELLED, "listener stopped while waiting for a contact change");
	return ccb_error_set(err, CCB_ERR_TIMEOUT, "contacts unchanged after %d ms", timeout_ms);
}

ccb_err ccb_listener_contacts(ccb_listener *l, char ***out, size_t *n, ccb_error *err)
{
	ccb_buf b;
	ccb_err rc;
	size_t i;

	if (!l || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "listener contacts: NULL argument");
	ccb_buf_init(&b);
	pthread_mutex_lock(&l->mu);
	for (i = 0; i < l->nregs; i++)
		if (l->regs[i].registered && l->regs[i].ccbid) {
			ccb_buf_append_str(&b, l->regs[i].ccbid);
			ccb_buf_append_str(&b, " ");
		}
	pthread_mutex_unlock(&l->mu);
	if (!ccb_buf_terminate(&b)) {
		ccb_buf_free(&b);
		return ccb_error_set(err, CCB_ERR_NOMEM, "listener contacts: out of memory");
	}
	rc = ccb_contact_list_split((const char *)b.data, out, n, err);
	ccb_buf_free(&b);
	if (rc)
		ccb_error_prefix(err, "listener contacts: ");
	return rc;
}

ccb_err ccb_listener_contact_list(ccb_listener *l, char **out, ccb_error *err)
{
	char **v = NULL;
	size_t n = 0;
	ccb_err rc;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "listener contact list: NULL out");
	*out = NULL;
	if ((rc = ccb_listener_contacts(l, &v, &n, err)))
		return rc;
	if (n == 0 && !(*out = ccb_strdup("")))
		rc = ccb_error_set(err, CCB_ERR_NOMEM, "listener contact list: out of memory");
	else if (n > 0)
		rc = ccb_contact_list_join((const char *const *)v, n, out, err);
	ccb_strv_free(v);
	return rc;
}

bool ccb_listener_broker_supports_streaming(ccb_listener *l, size_t index)
{
	bool b = false;

	pthread_mutex_lock(&l->mu);
	if (index < l->nregs)
		b = l->regs[index].registered && l->regs[index].streaming;
	pthread_mutex_unlock(&l->mu);
	return b;
}

ccb_err ccb_listener_status_json(ccb_listener *l, char **out, ccb_error *err)
{
	json_t *root, *arr;
	char *contacts = NULL;
	size_t i, nreg = 0;
	ccb_err rc;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "listener status: NULL out");
	*out = NULL;
	if (!l)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "listener status: NULL listener");
	if ((rc = ccb_listener_contact_list(l, &contacts, err)))
		return ccb_error_prefix(err, "listener status: ");
	root = json_object();
	arr = json_array();

	pthread_mutex_lock(&l->mu);
	for (i = 0; i < l->nregs; i++) {
		reg *r = &l->regs[i];
		nreg += r->registered;
		json_array_append_new(
			arr, json_pack("{s:s,s:s,s:s?,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:s}", "address",
				       r->address, "state", state_names[r->state], "ccbid",
				       r->registered ? r->ccbid : NULL, "registered_at",
				       (json_int_t)r->registered_at, "last_heartbeat",
				       (json_int_t)r->last_heartbeat, "heartbeats_sent",
				       (json_int_t)r->heartbeats_sent, "registrations",
				       (json_int_t)r->registrations, "reconnects",
				       (json_int_t)r->reconnects, "requests_served", (json_int_t)r->served,
				       "requests_failed", (json_int_t)r->failed, "streaming",
				       r->registered && r->streaming, "last_error", r->last_error));
		{
			json_t *b = json_array_get(arr, json_array_size(arr) - 1);
			json_object_set_new(b, "last_error_at", json_integer(r->last_error_at));
			json_object_set_new(b, "previous_error", json_string(r->previous_error));
			json_object_set_new(b, "previous_error_at",
					    json_integer(r->previous_error_at));
		}
	}
	pthread_mutex_unlock(&l->mu);
	json_object_set_new(root, "registered", json_integer((json_int_t)nreg));
	json_object_set_new(root, "command_address", json_string(l->base_text));
	json_object_set_new(root, "contacts", json_string(contacts ? contacts : ""));
	json_object_set_new(root, "brokers", arr);
	pthread_mutex_lock(&l->mu);
	json_object_set_new(root, "reverse_connects_pending", json_integer(l->npending));
	json_object_set_new(root, "reverse_connects_pending_peak",
			    json_integer((json_int_t)l->pending_peak));
	json_object_set_new(root, "reverse_connects_refused", json_integer((json_int_t)l->refused_busy));
	json_object_set_new(root, "handlers_running", json_integer(l->active_jobs));
	pthread_mutex_unlock(&l->mu);
	*out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	free(contacts);
	if (!*out)
		return ccb_error_set(err, CCB_ERR_NOMEM, "listener status: out of memory");
	return CCB_OK;
}

const char *ccb_listener_address(const ccb_listener *l)
{
	return l ? l->base_text : NULL;
}

ccb_err ccb_listener_sinful(ccb_listener *l, char **out, ccb_error *err)
{
	ccb_sinful *s = NULL;
	char **v = NULL;
	size_t n = 0;
	ccb_err rc;

	if (out)
		*out = NULL;
	if (!l || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "listener sinful: NULL argument");
	if ((rc = ccb_listener_contacts(l, &v, &n, err)))
		return ccb_error_prefix(err, "listener sinful: ");
	if (n == 0) {
		ccb_strv_free(v);
		return ccb_error_set(err, CCB_ERR_STATE,
				     "listener sinful: not registered with any CCB broker yet, so "
				     "there is no CCBID to advertise");
	}
	/* HTCondor's full daemon sinful: the command address plus CCBID and,
	 * with a CCBID, PrivNet (daemon_core.cpp 1262-1305); the parameters
	 * come out in std::map order (CCBID, PrivNet, addrs, alias, noUDP). */
	rc = ccb_sinful_dup(l->base, &s, err);
	if (rc == CCB_OK)
		rc = ccb_sinful_set_ccb_contacts(s, (const char *const *)v, n, err);
	if (rc == CCB_OK && l->privnet)
		rc = ccb_sinful_set_param(s, CCB_SINFUL_PRIVNET, l->privnet, err);
	if (rc == CCB_OK)
		rc = ccb_sinful_format(s, out, err);
	if (rc)
		ccb_error_prefix(err, "listener sinful: ");
	ccb_sinful_free(s);
	ccb_strv_free(v);
	return rc;
}

/* ---- configuration (§13) -------------------------------------------------------- */

ccb_err ccb_listener_config_load(const ccb_config *c, ccb_listener_config *out, ccb_error *err)
{
	const char *addr;
	long long hb, rec, to, cto, hto, mp, mpr;
	char **v = NULL;
	size_t n = 0;
	ccb_err rc;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "listener config: NULL out");
	memset(out, 0, sizeof *out);
	addr = ccb_config_get(c, "CCB_ADDRESS");
	if ((rc = ccb_config_int(c, "CCB_LISTENER_CONNECT_TIMEOUT_MS", DEFAULT_CONNECT_MS, &cto, err)) ||
	    (rc = ccb_config_int(c, "CCB_LISTENER_HELLO_TIMEOUT_MS", DEFAULT_HELLO_MS, &hto, err)) ||
	    (rc = ccb_config_int(c, "CCB_LISTENER_MAX_PENDING", DEFAULT_MAX_PENDING, &mp, err)) ||
	    (rc = ccb_config_int(c, "CCB_LISTENER_MAX_PENDING_PER_REQUESTER",
				 DEFAULT_MAX_PENDING_PER_REQUESTER, &mpr, err)))
		return rc;
	if (cto < 1 || cto > 3600000 || hto < 1 || hto > 3600000)
		return ccb_error_set(err, CCB_ERR_CONFIG,
				     "CCB_LISTENER_CONNECT_TIMEOUT_MS and CCB_LISTENER_HELLO_TIMEOUT_MS "
				     "must be between 1 and 3600000 (one hour)");
	if (mp < 1 || mp > 1000000 || mpr < 1 || mpr > 1000000)
		return ccb_error_set(err, CCB_ERR_CONFIG,
				     "CCB_LISTENER_MAX_PENDING and CCB_LISTENER_MAX_PENDING_PER_REQUESTER "
				     "must be between 1 and 1000000");
	if ((rc = ccb_config_int(c, "CCB_HEARTBEAT_INTERVAL", DEFAULT_HEARTBEAT_S, &hb, err)) ||
	    (rc = ccb_config_int(c, "CCB_RECONNECT_TIME", DEFAULT_RECONNECT_S, &rec, err)) ||
	    (rc = ccb_config_int(c, "CCB_TIMEOUT", DEFAULT_TIMEOUT_S, &to, err)) ||
	    (rc = ccb_config_client_security(c, &out->security, err)))
		return rc;
	if (hb < 0 || hb > 86400 * 24 || rec < 0 || rec > 86400 * 24 || to < 0 || to > 86400 * 24)
		return ccb_error_set(err, CCB_ERR_CONFIG,
				     "CCB_HEARTBEAT_INTERVAL, CCB_RECONNECT_TIME and CCB_TIMEOUT must be "
				     "between 0 and 24 days (2073600 s)");
	if (!addr || !*addr)
		return ccb_error_set(err, CCB_ERR_CONFIG, "CCB_ADDRESS is not set");
	rc = ccb_broker_list_split(addr, &v, &n, err);
	if (rc == CCB_OK && n == 0)
		rc = ccb_error_set(err, CCB_ERR_CONFIG, "CCB_ADDRESS names no broker");
	if (rc) {
		ccb_strv_free(v);
		memset(out, 0, sizeof *out);
		return rc == CCB_ERR_NOMEM ? rc : CCB_ERR_CONFIG;
	}
	out->brokers = (const char *const *)v;
	out->n_brokers = n;
	/* The knobs are in seconds (HTCondor's); the struct in milliseconds. */
	out->heartbeat_interval_ms = hb == 0 ? CCB_LISTENER_HEARTBEAT_OFF : (int)hb * 1000;
	out->reconnect_interval_ms = (int)rec * 1000;
	out->timeout_ms = (int)to * 1000;
	out->reverse_connect_timeout_ms = (int)cto;
	out->reverse_hello_timeout_ms = (int)hto;
	out->max_pending_reverse_connects = (int)mp;
	out->max_pending_per_requester = (int)mpr;
	out->name = ccb_config_get(c, "CCB_LISTENER_NAME");
	out->command_address = ccb_config_get(c, "CCB_LISTENER_COMMAND_ADDRESS");
	out->private_network_name = ccb_config_get(c, "PRIVATE_NETWORK_NAME");
	return CCB_OK;
}

void ccb_listener_config_clear(ccb_listener_config *cfg)
{
	if (!cfg)
		return;
	ccb_strv_free((char **)cfg->brokers);
	memset(cfg, 0, sizeof *cfg);
}
