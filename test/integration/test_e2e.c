/*
 * End to end with the real parts, in one process over loopback: our broker,
 * our listener registering with it, our requester dialing the listener's
 * CCB sinful, standard and streaming, then the security handshake with the
 * target through the reversed (or relayed) connection. Also a broker
 * restart with its reconnect file: the listener gets its old CCBID back and
 * the sinful it advertised keeps working. And the sinful itself: HTCondor's
 * full form with a real command port, dialed directly from the same
 * private network (PrivNet rule).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ccb/addr.h"
#include "ccb/ccb.h"
#include "ccb/commands.h"
#include "ccbt.h"

/* The target's private command: read a string, answer it upper-cased. */
#define ECHO_CMD 60111

static int perm_of(int command, void *user)
{
	(void)user;
	switch (command) {
	case CCB_CMD_DC_NOP:
	case 60020: /* DC_NOP_READ, what condor_ping asks about */
	case ECHO_CMD: return CCB_PERM_READ;
	case CCB_CMD_DC_SEC_QUERY: return CCB_PERM_ALLOW;
	}
	return -1;
}

static ccb_sec_server_config target_sec;
static ccb_sec_client_config client_sec;

/* Connections the target served, by way. */
static int served_direct, served_reversed;
static pthread_mutex_t served_mu = PTHREAD_MUTEX_INITIALIZER;

/* What a daemon behind NAT runs for each reverse connection. */
static void serve(ccb_stream *conn, const ccb_listener_conn_info *info, void *user)
{
	ccb_sec_command cmd;
	char *text = NULL;

	(void)user;
	pthread_mutex_lock(&served_mu);
	if (info->direct)
		served_direct++;
	else
		served_reversed++;
	pthread_mutex_unlock(&served_mu);
	ccb_stream_set_timeout(conn, 5000);
	if (ccb_sec_server_accept(conn, &target_sec, &cmd, NULL) == CCB_OK && cmd.command == ECHO_CMD &&
	    ccb_stream_get_string(conn, &text) == CCB_OK && ccb_stream_end_of_message(conn) == CCB_OK) {
		for (char *p = text; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
		ccb_stream_put_string(conn, text);
		ccb_stream_end_message(conn);
	}
	ccb_free(text);
	ccb_stream_free(conn);
}

struct broker_run {
	ccb_broker *b;
	pthread_t t;
};

static void *broker_main(void *arg)
{
	struct broker_run *br = arg;
	ccb_broker_run(br->b, NULL);
	return NULL;
}

static void broker_start(struct broker_run *br, const char *listen, const char *record_file)
{
	ccb_broker_config cfg = {0};
	static ccb_sec_server_config sec;
	ccb_error err = {0};

	memset(&sec, 0, sizeof sec);
	sec.auth_methods[CCB_PERM_ALLOW] = "CLAIMTOBE";
	sec.uid_domain = "vm";
	sec.allow[CCB_PERM_DAEMON] = "condor@vm";
	cfg.listen = listen;
	cfg.security = sec;
	cfg.reconnect_file = record_file;
	CU_ASSERT_EQUAL_FATAL(ccb_broker_new(&cfg, &br->b, &err), CCB_OK);
	pthread_create(&br->t, NULL, broker_main, br);
}

static void broker_stop(struct broker_run *br)
{
	ccb_broker_stop(br->b);
	pthread_join(br->t, NULL);
	ccb_broker_free(br->b);
}

static ccb_listener *listener_start(const char *broker)
{
	ccb_listener_config lc = {0};
	ccb_listener *l = NULL;
	ccb_error err = {0};

	lc.broker = broker;
	lc.security = client_sec;
	lc.handler = serve;
	lc.name = "e2e target";
	lc.reconnect_interval_ms = 100;
	lc.private_network_name = "e2e-private";
	CU_ASSERT_EQUAL_FATAL(ccb_listener_new(&lc, &l, &err), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(ccb_listener_start(l, &err), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(ccb_listener_wait_registered(l, 1, 10000, NULL), CCB_OK);
	return l;
}

/* The sinful the target advertises, as the library writes it. */
static char *target_sinful(ccb_listener *l)
{
	char *out = NULL;
	ccb_error err = {0};

	CU_ASSERT_EQUAL_FATAL(ccb_listener_sinful(l, &out, &err), CCB_OK);
	return out;
}

/* One echo through CCB; returns the dial's info. */
static ccb_err echo_through(const char *sinful, bool streaming, ccb_dial_info *info, char **reply)
{
	ccb_dial_config o = {0};
	ccb_stream *s = NULL;
	ccb_sec_info si;
	ccb_error err = {0};
	ccb_err rc;

	o.broker_sec = &client_sec;
	o.timeout_ms = 10000;
	o.streaming = streaming;
	o.info = info;
	*reply = NULL;
	rc = ccb_dial_command(sinful, &o, &client_sec, ECHO_CMD, 0, &s, &si, &err);
	if (rc) {
		fprintf(stderr, "\ndial %s: %s\n", sinful, err.detail);
		return rc;
	}
	CU_ASSERT(si.encrypted);
	CU_ASSERT_STRING_EQUAL(si.method, "CLAIMTOBE");
	if (ccb_stream_put_string(s, "hello through ccb") || ccb_stream_end_message(s) ||
	    ccb_stream_get_string(s, reply) || ccb_stream_end_of_message(s))
		rc = ccb_stream_error(s)->code;
	ccb_stream_free(s);
	return rc;
}

static long long stat_of(ccb_broker *b, const char *name)
{
	char *text = NULL;
	ccb_broker_status_json(b, false, &text, NULL);
	json_t *root = json_loads(text, 0, NULL);
	long long v = json_integer_value(json_object_get(json_object_get(root, "stats"), name));

	json_decref(root);
	ccb_free(text);
	return v;
}

/* A counter the broker bumps after the dial has returned (a target's
 * result report follows its hello): its value once it reaches `want`, or
 * after 5 s. */
static long long stat_settled(ccb_broker *b, const char *name, long long want)
{
	long long v = stat_of(b, name);

	for (int i = 0; i < 250 && v != want; i++) {
		usleep(20000);
		v = stat_of(b, name);
	}
	return v;
}

static bool none_registered(void *l)
{
	return ccb_listener_num_registered(l) == 0;
}

static void setup_security(void)
{
	memset(&target_sec, 0, sizeof target_sec);
	target_sec.auth_methods[CCB_PERM_ALLOW] = "CLAIMTOBE";
	target_sec.uid_domain = "vm";
	target_sec.command_perm = perm_of;
	target_sec.authentication[CCB_PERM_READ] = CCB_SEC_LEVEL_REQUIRED;
	memset(&client_sec, 0, sizeof client_sec);
	client_sec.auth_methods = "CLAIMTOBE";
	client_sec.claimtobe_user = "condor";
	client_sec.uid_domain = "vm";
}

static void test_standard_and_streaming(void)
{
	int fds0 = ccbt_count_fds();
	struct broker_run br;
	ccb_listener *l;
	ccb_dial_info info;
	char *sinful, *reply = NULL;

	setup_security();
	broker_start(&br, "127.0.0.1:0", NULL);
	l = listener_start(ccb_broker_address(br.b));
	sinful = target_sinful(l);

	/* Standard: the target connects back to us. */
	CU_ASSERT_EQUAL(echo_through(sinful, false, &info, &reply), CCB_OK);
	if (reply)
		CU_ASSERT_STRING_EQUAL(reply, "HELLO THROUGH CCB");
	CU_ASSERT_FALSE(info.proxied);
	free(reply);

	/* Streaming: the broker relays, end-to-end security through it. */
	CU_ASSERT_EQUAL(echo_through(sinful, true, &info, &reply), CCB_OK);
	if (reply)
		CU_ASSERT_STRING_EQUAL(reply, "HELLO THROUGH CCB");
	CU_ASSERT(info.proxied);
	free(reply);

	/* condor_ping's question through CCB. */
	{
		ccb_dial_config o = {.broker_sec = &client_sec, .timeout_ms = 10000};
		ccb_stream *s = NULL;
		ccb_sec_info si;
		bool ok = false;
		CU_ASSERT_EQUAL(ccb_dial_command(sinful, &o, &client_sec, CCB_CMD_DC_SEC_QUERY, 60020, &s,
						 &si, NULL), CCB_OK);
		CU_ASSERT(s && ccb_sec_client_query_reply(s, &ok, NULL) == CCB_OK && ok);
		ccb_stream_free(s);
	}

	CU_ASSERT_EQUAL(stat_of(br.b, "CCBEndpointsConnected"), 1);
	/* As HTCondor counts: CCBRequests are the standard ones, streaming
	 * ones count in CCBStreamingRequests; both succeed. */
	CU_ASSERT_EQUAL(stat_of(br.b, "CCBRequests"), 2);
	CU_ASSERT_EQUAL(stat_settled(br.b, "CCBRequestsSucceeded", 3), 3);
	CU_ASSERT_EQUAL(stat_of(br.b, "CCBStreamingRequests"), 1);
	CU_ASSERT_EQUAL(stat_of(br.b, "CCBRequestsNotFound"), 0);

	/* An unknown CCBID is reported as such. */
	{
		ccb_dial_config o = {.broker_sec = &client_sec, .timeout_ms = 5000};
		ccb_stream *s = NULL;
		ccb_error err = {0};
		char bad[300];
		snprintf(bad, sizeof bad, "<127.0.0.1:0?CCBID=127.0.0.1:%d%%23999>", ccb_broker_port(br.b, 0));
		CU_ASSERT_EQUAL(ccb_dial_sinful(bad, &o, &s, &err), CCB_ERR_UNKNOWN_CCBID);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "no daemon is currently registered"));
		CU_ASSERT_PTR_NULL(s);
	}

	ccb_listener_stop(l);
	ccb_listener_free(l);
	broker_stop(&br);
	ccb_free(sinful);
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds0);
}

/* Many dials at once from several threads through the same broker and target. */
#define N_THREADS 4
#define N_PER_THREAD 25

static const char *shared_sinful;
static int ok_count;
static pthread_mutex_t ok_mu = PTHREAD_MUTEX_INITIALIZER;

static void *dialer(void *arg)
{
	intptr_t k = (intptr_t)arg;
	for (int i = 0; i < N_PER_THREAD; i++) {
		ccb_dial_info info;
		char *reply = NULL;
		if (echo_through(shared_sinful, (i + k) % 3 == 0, &info, &reply) == CCB_OK && reply &&
		    !strcmp(reply, "HELLO THROUGH CCB")) {
			pthread_mutex_lock(&ok_mu);
			ok_count++;
			pthread_mutex_unlock(&ok_mu);
		}
		free(reply);
	}
	return NULL;
}

static void test_concurrent_dials(void)
{
	struct broker_run br;
	ccb_listener *l;
	pthread_t t[N_THREADS];
	char *sinful;

	setup_security();
	broker_start(&br, "127.0.0.1:0", NULL);
	l = listener_start(ccb_broker_address(br.b));
	sinful = target_sinful(l);
	shared_sinful = sinful;
	ok_count = 0;
	for (intptr_t i = 0; i < N_THREADS; i++)
		pthread_create(&t[i], NULL, dialer, (void *)i);
	for (int i = 0; i < N_THREADS; i++)
		pthread_join(t[i], NULL);
	CU_ASSERT_EQUAL(ok_count, N_THREADS * N_PER_THREAD);
	{
		int streaming = 0;
		for (int k = 0; k < N_THREADS; k++)
			for (int i = 0; i < N_PER_THREAD; i++)
				streaming += (i + k) % 3 == 0;
		CU_ASSERT_EQUAL(stat_of(br.b, "CCBRequests"), N_THREADS * N_PER_THREAD - streaming);
		CU_ASSERT_EQUAL(stat_of(br.b, "CCBStreamingRequests"), streaming);
		CU_ASSERT_EQUAL(stat_settled(br.b, "CCBRequestsSucceeded", N_THREADS * N_PER_THREAD),
				N_THREADS * N_PER_THREAD);
	}
	CU_ASSERT_EQUAL(stat_of(br.b, "CCBRequestsFailed"), 0);
	ccb_listener_stop(l);
	ccb_listener_free(l);
	broker_stop(&br);
	ccb_free(sinful);
}

/* The broker goes away and comes back on the same port with its record
 * file: the listener re-registers with its old CCBID, so the sinful it
 * advertised before still reaches it. */
static void test_broker_restart_keeps_ccbid(void)
{
	char dir[] = "/tmp/ccbt-e2e-XXXXXX", file[300], listen[64], *before, *after, *reply = NULL;
	struct broker_run br;
	ccb_listener *l;
	ccb_dial_info info;
	uint64_t gen = 0;

	setup_security();
	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	snprintf(file, sizeof file, "%s/reconnect", dir);
	broker_start(&br, "127.0.0.1:0", file);
	snprintf(listen, sizeof listen, "127.0.0.1:%d", ccb_broker_port(br.b, 0));
	l = listener_start(ccb_broker_address(br.b));
	before = target_sinful(l);
	ccb_listener_wait_change(l, &gen, 0, NULL);
	broker_stop(&br);
	/* Lost (the stopped broker closed the connection), then registered
	 * again once the broker is back. */
	CU_ASSERT(ccbt_wait_until(10000, none_registered, l));
	broker_start(&br, listen, file);
	CU_ASSERT_EQUAL(ccb_listener_wait_registered(l, 1, 10000, NULL), CCB_OK);
	after = target_sinful(l);
	CU_ASSERT_STRING_EQUAL(after, before);
	CU_ASSERT_EQUAL(stat_of(br.b, "CCBReconnects"), 1);
	CU_ASSERT_EQUAL(echo_through(before, false, &info, &reply), CCB_OK);
	free(reply);
	ccb_listener_stop(l);
	ccb_listener_free(l);
	broker_stop(&br);
	free(before);
	free(after);
	unlink(file);
	rmdir(dir);
}

/* The full sinful: command port, the broker's contact in the collector's
 * form (URL-encoded inside CCBID), PrivNet; dialed through the broker by
 * anyone, directly by a requester on the same private network; and the
 * broker still takes a contact in the old bare form. */
static void test_sinful_direct_and_ccb(void)
{
	int fds0 = ccbt_count_fds();
	struct broker_run br;
	ccb_listener *l;
	ccb_dial_info info;
	ccb_sinful *sf = NULL;
	char *sinful, *reply = NULL, want[512], bare[300];
	char **v = NULL;
	size_t n = 0;
	int bport, cport;

	setup_security();
	broker_start(&br, "127.0.0.1:0", NULL);
	bport = ccb_broker_port(br.b, 0);
	snprintf(want, sizeof want, "<127.0.0.1:%d?addrs=127.0.0.1-%d>", bport, bport);
	CU_ASSERT_STRING_EQUAL(ccb_broker_address(br.b), want);
	l = listener_start(ccb_broker_address(br.b));
	sinful = target_sinful(l);
	CU_ASSERT_EQUAL_FATAL(ccb_sinful_parse(sinful, &sf, NULL), CCB_OK);
	cport = ccb_sinful_port(sf);
	CU_ASSERT(cport > 0);
	/* The broker's contact, as the collector writes it (S1 capture). */
	CU_ASSERT_EQUAL(ccb_sinful_ccb_contacts(sf, &v, &n, NULL), CCB_OK);
	snprintf(want, sizeof want, "127.0.0.1:%d?addrs=127.0.0.1-%d#1", bport, bport);
	CU_ASSERT(n == 1 && !strcmp(v[0], want));
	ccb_strv_free(v);
	ccb_sinful_free(sf);
	snprintf(want, sizeof want,
		 "<127.0.0.1:%d?CCBID=127.0.0.1:%d%%3faddrs%%3d127.0.0.1-%d#1&PrivNet=e2e-private"
		 "&addrs=127.0.0.1-%d&noUDP>",
		 cport, bport, bport, cport);
	CU_ASSERT_STRING_EQUAL(sinful, want);

	/* Through the broker (no PRIVATE_NETWORK_NAME on our side). */
	served_direct = served_reversed = 0;
	CU_ASSERT_EQUAL(echo_through(sinful, false, &info, &reply), CCB_OK);
	if (reply)
		CU_ASSERT_STRING_EQUAL(reply, "HELLO THROUGH CCB");
	free(reply);
	CU_ASSERT_STRING_NOT_EQUAL(info.broker, "");

	/* Same private network: straight to the command port, no request. */
	{
		ccb_dial_config o = {.broker_sec = &client_sec, .timeout_ms = 10000,
				   .private_network_name = "e2e-private", .info = &info};
		ccb_stream *s = NULL;
		ccb_sec_info si;
		char *text = NULL;
		CU_ASSERT_EQUAL_FATAL(ccb_dial_command(sinful, &o, &client_sec, ECHO_CMD, 0, &s, &si,
						       NULL), CCB_OK);
		CU_ASSERT(ccb_stream_put_string(s, "direct") == CCB_OK &&
			  ccb_stream_end_message(s) == CCB_OK && ccb_stream_get_string(s, &text) == CCB_OK);
		CU_ASSERT(text && !strcmp(text, "DIRECT"));
		ccb_free(text);
		ccb_stream_free(s);
		CU_ASSERT_STRING_EQUAL(info.broker, "");
	}
	/* Another network name: through CCB again. */
	{
		ccb_dial_config o = {.broker_sec = &client_sec, .timeout_ms = 10000,
				   .private_network_name = "elsewhere"};
		ccb_stream *s = NULL;
		ccb_sec_info si;
		bool ok = false;
		CU_ASSERT_EQUAL(ccb_dial_command(sinful, &o, &client_sec, CCB_CMD_DC_SEC_QUERY, 60020, &s,
						 &si, NULL), CCB_OK);
		CU_ASSERT(s && ccb_sec_client_query_reply(s, &ok, NULL) == CCB_OK && ok);
		ccb_stream_free(s);
	}
	/* The old bare contact form still reaches the same target. */
	snprintf(bare, sizeof bare, "<127.0.0.1:%d?CCBID=127.0.0.1:%d#1>", cport, bport);
	CU_ASSERT_EQUAL(echo_through(bare, false, &info, &reply), CCB_OK);
	free(reply);
	CU_ASSERT_EQUAL(stat_of(br.b, "CCBRequests"), 3);
	pthread_mutex_lock(&served_mu);
	CU_ASSERT_EQUAL(served_direct, 1);
	CU_ASSERT_EQUAL(served_reversed, 3);
	pthread_mutex_unlock(&served_mu);

	ccb_listener_stop(l);
	ccb_listener_free(l);
	broker_stop(&br);
	ccb_free(sinful);
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds0);
}

static const ccbt_test tests[] = {
	{"broker + listener + dial: standard, streaming, ping", test_standard_and_streaming},
	{"full sinful: through the broker and direct (PrivNet)", test_sinful_direct_and_ccb},
	{"100 dials from 4 threads", test_concurrent_dials},
	{"broker restart keeps the CCBID", test_broker_restart_keeps_ccbid},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"end to end", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
