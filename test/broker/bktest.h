/* Broker test helpers: an in-process broker on a thread, and scripted
 * clients (a fake listener and a fake requester) built from ccb_stream,
 * ccb_sec_client_start and the wire helpers. Loopback only. */
#ifndef BKTEST_H
#define BKTEST_H

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ccb/addr.h"
#include "ccb/broker.h"
#include "ccb/commands.h"
#include "ccb/security.h"
#include "ccb/wire.h"
#include "ccbt.h"
#include "util/util.h"

typedef struct bkt_broker {
	ccb_broker *b;
	pthread_t t;
	int port;
	ccb_sec_server_config sec;
	ccb_err rc;
} bkt_broker;

/* A config every test starts from: 127.0.0.1:0, CLAIMTOBE, DAEMON for
 * condor@vm, short timeouts. */
static inline void bkt_config(ccb_broker_config *c, ccb_sec_server_config *sec)
{
	memset(c, 0, sizeof *c);
	memset(sec, 0, sizeof *sec);
	sec->uid_domain = "vm";
	sec->auth_methods[CCB_PERM_ALLOW] = "CLAIMTOBE";
	sec->allow[CCB_PERM_DAEMON] = "condor@vm";
	c->listen = "127.0.0.1:0";
	c->security = *sec; /* copied: change c->security, not *sec, afterwards */
	c->handshake_timeout_ms = 5000;
	c->handshake_workers = 2;
}

static void *bkt_run(void *arg)
{
	bkt_broker *k = arg;
	k->rc = ccb_broker_run(k->b, NULL);
	return NULL;
}

static inline void bkt_start(bkt_broker *k, const ccb_broker_config *c)
{
	ccb_error err = {0};
	ccb_err rc = ccb_broker_new(c, &k->b, &err);

	if (rc)
		fprintf(stderr, "broker_new: %s\n", err.detail);
	CU_ASSERT_EQUAL_FATAL(rc, CCB_OK);
	k->port = ccb_broker_port(k->b, 0);
	CU_ASSERT_FATAL(k->port > 0);
	pthread_create(&k->t, NULL, bkt_run, k);
}

static inline void bkt_stop(bkt_broker *k)
{
	ccb_broker_stop(k->b);
	pthread_join(k->t, NULL);
	CU_ASSERT_EQUAL(k->rc, CCB_OK);
	ccb_broker_free(k->b);
	k->b = NULL;
}

/* A stat from the broker's JSON status, -1 if absent. */
static inline long long bkt_stat(ccb_broker *b, const char *name)
{
	char *s = NULL;
	ccb_broker_status_json(b, false, &s, NULL);
	json_t *o = s ? json_loads(s, 0, NULL) : NULL;
	json_t *v = o ? json_object_get(json_object_get(o, "stats"), name) : NULL;
	long long r = v ? (long long)json_integer_value(v) : -1;

	json_decref(o);
	ccb_free(s);
	return r;
}

/* Wait (up to 10 s) until a stat reaches `want`. */
static inline bool bkt_wait_stat(ccb_broker *b, const char *name, long long want)
{
	for (int i = 0; i < 1000; i++) {
		if (bkt_stat(b, name) == want)
			return true;
		usleep(10000);
	}
	fprintf(stderr, "stat %s is %lld, wanted %lld\n", name, bkt_stat(b, name), want);
	return false;
}

static inline ccb_sec_client_config bkt_client(const char *user)
{
	ccb_sec_client_config sc = {0};
	sc.auth_methods = "CLAIMTOBE";
	sc.claimtobe_user = user;
	sc.uid_domain = "vm";
	return sc;
}

/* Connect and run the handshake for `command` as `user`. */
static inline ccb_err bkt_connect(int port, int command, const char *user, ccb_stream **s,
				  ccb_error *err)
{
	ccb_sec_client_config sc = bkt_client(user);
	ccb_sec_info info;
	ccb_err rc = ccb_stream_connect("127.0.0.1", port, 10000, s, err);

	if (rc)
		return rc;
	/* a broker that stops answering fails the test, not ctest's timeout */
	ccb_stream_set_timeout(*s, 30000);
	rc = ccb_sec_client_start(*s, &sc, command, 0, NULL, &info, err);
	if (rc) {
		ccb_stream_free(*s);
		*s = NULL;
	}
	return rc;
}

/* ---- fake listener ---------------------------------------------------------- */

typedef struct bkt_listener {
	ccb_stream *s;
	char contact[256];
	char cookie[64];
	uint64_t id;
	bool streaming_advertised;
} bkt_listener;

/* Register (or re-register with old contact + cookie). */
static inline ccb_err bkt_register(int port, const char *user, const char *old_contact,
				   const char *old_cookie, bkt_listener *l)
{
	ccb_classad *ad = NULL, *reply = NULL;
	const char *v;
	ccb_error err;
	ccb_err rc;
	ccb_ad_field f[] = {CCB_AD_INT(CCB_ATTR_COMMAND, CCB_CMD_CCB_REGISTER),
			    CCB_AD_STRING(CCB_ATTR_NAME, "MASTER <127.0.0.1:1234?alias=vm>"),
			    CCB_AD_STRING(CCB_ATTR_CCBID, old_contact),
			    CCB_AD_STRING(CCB_ATTR_CLAIM_ID, old_cookie)};

	memset(l, 0, sizeof *l);
	if ((rc = bkt_connect(port, CCB_CMD_CCB_REGISTER, user, &l->s, &err)))
		return rc;
	rc = ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, &err);
	if (!rc)
		rc = ccb_control_ad_write(l->s, ad, CCB_VERSION_NUM(25, 14, 0), &err);
	if (!rc)
		rc = ccb_control_ad_read(l->s, &reply, &err);
	if (!rc && ccb_classad_get_string(reply, CCB_ATTR_CCBID, &v) == CCB_OK) {
		const char *h = strrchr(v, '#');
		snprintf(l->contact, sizeof l->contact, "%s", v);
		l->id = h ? strtoull(h + 1, NULL, 10) : 0;
	} else if (!rc) {
		rc = CCB_ERR_PROTOCOL;
	}
	if (!rc && ccb_classad_get_string(reply, CCB_ATTR_CLAIM_ID, &v) == CCB_OK)
		snprintf(l->cookie, sizeof l->cookie, "%s", v);
	if (!rc) {
		int64_t cmd = 0;
		ccb_classad_get_int(reply, CCB_ATTR_COMMAND, &cmd);
		if (cmd != CCB_CMD_CCB_REGISTER)
			rc = CCB_ERR_PROTOCOL;
		l->streaming_advertised = ccb_ad_bool_or(reply, CCB_ATTR_CCB_STREAMING, false);
	}
	ccb_classad_free(ad);
	ccb_classad_free(reply);
	if (rc) {
		ccb_stream_free(l->s);
		l->s = NULL;
	}
	return rc;
}

static inline void bkt_listener_close(bkt_listener *l)
{
	ccb_stream_free(l->s);
	l->s = NULL;
}

/* Send ALIVE and expect {Command = 441} back. */
static inline bool bkt_heartbeat(bkt_listener *l)
{
	ccb_ad_field f[] = {CCB_AD_INT(CCB_ATTR_COMMAND, CCB_CMD_ALIVE)};
	ccb_classad *ad = NULL, *reply = NULL;
	int64_t cmd = 0;
	bool ok;

	ok = ccb_ad_new(f, 1, &ad, NULL) == CCB_OK &&
	     ccb_control_ad_write(l->s, ad, CCB_VERSION_NUM(25, 14, 0), NULL) == CCB_OK &&
	     ccb_control_ad_read(l->s, &reply, NULL) == CCB_OK &&
	     ccb_classad_get_int(reply, CCB_ATTR_COMMAND, &cmd) == CCB_OK && cmd == CCB_CMD_ALIVE &&
	     ccb_classad_count(reply) == 1;
	ccb_classad_free(ad);
	ccb_classad_free(reply);
	return ok;
}

/* Report a result for a forwarded request. */
static inline ccb_err bkt_result(bkt_listener *l, const ccb_classad *fwd, bool ok, const char *text)
{
	ccb_classad *hello = NULL, *res = NULL;
	ccb_err rc = ccb_hello_ad_from_request(fwd, &hello, NULL);

	if (!rc)
		rc = ccb_result_ad_new(hello, ok, text, &res, NULL);
	if (!rc)
		rc = ccb_control_ad_write(l->s, res, CCB_VERSION_NUM(25, 14, 0), NULL);
	ccb_classad_free(hello);
	ccb_classad_free(res);
	return rc;
}

/* ---- fake requester ----------------------------------------------------------- */

/* Send a CCB_REQUEST; *s stays open for the reply. */
static inline ccb_err bkt_request(int port, const char *ccbid, const char *my_address,
				  const char *connect_id, bool streaming, ccb_stream **s)
{
	ccb_classad *ad = NULL;
	ccb_error err;
	ccb_err rc;
	ccb_ad_field f[] = {CCB_AD_STRING(CCB_ATTR_CCBID, ccbid),
			    CCB_AD_STRING(CCB_ATTR_CLAIM_ID, connect_id),
			    CCB_AD_STRING(CCB_ATTR_MY_ADDRESS, my_address),
			    CCB_AD_STRING(CCB_ATTR_NAME, "TOOL"),
			    CCB_AD_BOOL(CCB_ATTR_CCB_STREAMING_REQUIRED, true)};

	if ((rc = bkt_connect(port, CCB_CMD_CCB_REQUEST, "tool", s, &err)))
		return rc;
	rc = ccb_ad_new(f, CCB_AD_NFIELDS(f) - (streaming ? 0 : 1), &ad, &err);
	if (!rc)
		rc = ccb_control_ad_write(*s, ad, CCB_VERSION_NUM(25, 14, 0), &err);
	ccb_classad_free(ad);
	return rc;
}

/* Read the broker's reply: Result and ErrorString (copied into text). */
static inline ccb_err bkt_reply(ccb_stream *s, bool *ok, char *text, size_t len)
{
	ccb_classad *ad = NULL;
	ccb_err rc = ccb_control_ad_read(s, &ad, NULL);

	if (!rc) {
		*ok = ccb_ad_bool_or(ad, CCB_ATTR_RESULT, false);
		snprintf(text, len, "%s", ccb_ad_string_or(ad, CCB_ATTR_ERROR_STRING, "(none)"));
	}
	ccb_classad_free(ad);
	return rc;
}

#endif
