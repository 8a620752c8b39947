/* The CCB broker over loopback with scripted listeners and requesters:
 * registration, heartbeats, standard requests and results, failures,
 * reconnects, the record file, authorization and the status query. */
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "bktest.h"

static int fds_before;

static void fds_mark(void)
{
	fds_before = ccbt_count_fds();
}

static bool fds_back(void *arg)
{
	(void)arg;
	return ccbt_count_fds() == fds_before;
}

static void fds_check(void)
{
	/* Descriptors closed on other threads may lag a moment: wait (bounded)
	 * until the count is back. */
	CU_ASSERT(ccbt_wait_until(10000, fds_back, NULL));
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds_before);
}

/* Register, heartbeat, standard request -> forwarded -> hello -> result ->
 * reply, with the exact attributes of captures S1. */
static void test_register_request_result(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	bkt_listener l;
	ccb_stream *rq = NULL, *hs = NULL;
	ccb_classad *fwd = NULL, *hello = NULL;
	char cid[CCB_CONNECT_ID_SIZE], myaddr[64], expect[128], text[256];
	const char *v;
	uint16_t lport;
	int lfd, afd;
	bool ok = false;

	fds_mark();
	bkt_config(&cfg, &k.sec);
	bkt_start(&k, &cfg);
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &l), CCB_OK);
	/* The collector's form: its address with addrs, then #id (S1 capture). */
	snprintf(expect, sizeof expect, "127.0.0.1:%d?addrs=127.0.0.1-%d#1", k.port, k.port);
	CU_ASSERT_STRING_EQUAL(l.contact, expect);
	CU_ASSERT_EQUAL(l.id, 1);
	CU_ASSERT(strlen(l.cookie) > 0 && strspn(l.cookie, "0123456789") == strlen(l.cookie));
	CU_ASSERT(l.streaming_advertised);
	CU_ASSERT(bkt_heartbeat(&l));
	CU_ASSERT(bkt_heartbeat(&l));

	/* A requester with its own listen socket. */
	lfd = ccbt_listen(&lport);
	snprintf(myaddr, sizeof myaddr, "<127.0.0.1:%u?alias=vm>", lport);
	ccb_connect_id_new(cid, NULL);
	CU_ASSERT_EQUAL_FATAL(bkt_request(k.port, "1", myaddr, cid, false, &rq), CCB_OK);

	/* Forwarded request: Command 68, strings, Name "TOOL on <peer>". */
	CU_ASSERT_EQUAL_FATAL(ccb_control_ad_read(l.s, &fwd, NULL), CCB_OK);
	{
		int64_t cmd = 0;
		CU_ASSERT_EQUAL(ccb_classad_get_int(fwd, CCB_ATTR_COMMAND, &cmd), CCB_OK);
		CU_ASSERT_EQUAL(cmd, CCB_CMD_CCB_REQUEST);
		CU_ASSERT_EQUAL(ccb_classad_count(fwd), 5);
		CU_ASSERT(ccb_classad_get_string(fwd, CCB_ATTR_MY_ADDRESS, &v) == CCB_OK && !strcmp(v, myaddr));
		CU_ASSERT(ccb_classad_get_string(fwd, CCB_ATTR_CLAIM_ID, &v) == CCB_OK && !strcmp(v, cid));
		CU_ASSERT(ccb_classad_get_string(fwd, CCB_ATTR_REQUEST_ID, &v) == CCB_OK && !strcmp(v, "1"));
		CU_ASSERT(ccb_classad_get_string(fwd, CCB_ATTR_NAME, &v) == CCB_OK &&
			  !strncmp(v, "TOOL on <127.0.0.1:", 19));
	}
	/* The target dials the requester and says hello. */
	{
		ccb_stream *ts = NULL;
		CU_ASSERT_EQUAL_FATAL(ccb_stream_connect("127.0.0.1", lport, 5000, &ts, NULL), CCB_OK);
		CU_ASSERT_EQUAL(ccb_hello_ad_from_request(fwd, &hello, NULL), CCB_OK);
		CU_ASSERT_EQUAL(ccb_hello_write(ts, hello, 0, NULL), CCB_OK);
		afd = accept(lfd, NULL, NULL);
		CU_ASSERT_FATAL(afd >= 0);
		ccb_stream_new(afd, &hs, NULL);
		ccb_classad_free(hello);
		hello = NULL;
		CU_ASSERT_EQUAL(ccb_hello_read(hs, cid, &hello, NULL), CCB_OK);
		ccb_stream_free(ts);
		ccb_stream_free(hs);
	}
	CU_ASSERT_EQUAL(bkt_result(&l, fwd, true, NULL), CCB_OK);
	CU_ASSERT_EQUAL(bkt_reply(rq, &ok, text, sizeof text), CCB_OK);
	CU_ASSERT(ok);
	CU_ASSERT_STRING_EQUAL(text, "");
	ccb_stream_free(rq);
	ccb_classad_free(fwd);
	ccb_classad_free(hello);
	fwd = hello = NULL;

	/* A failure report reaches the requester with its text. */
	ccb_connect_id_new(cid, NULL);
	CU_ASSERT_EQUAL_FATAL(bkt_request(k.port, "1", myaddr, cid, false, &rq), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(ccb_control_ad_read(l.s, &fwd, NULL), CCB_OK);
	CU_ASSERT(ccb_classad_get_string(fwd, CCB_ATTR_REQUEST_ID, &v) == CCB_OK && !strcmp(v, "2"));
	CU_ASSERT_EQUAL(bkt_result(&l, fwd, false, "failed to connect"), CCB_OK);
	CU_ASSERT_EQUAL(bkt_reply(rq, &ok, text, sizeof text), CCB_OK);
	CU_ASSERT(!ok);
	CU_ASSERT_STRING_EQUAL(text, "failed to connect");
	ccb_stream_free(rq);
	ccb_classad_free(fwd);

	CU_ASSERT(bkt_wait_stat(k.b, "CCBRequests", 2));
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBRequestsSucceeded"), 1);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBRequestsFailed"), 1);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBEndpointsConnected"), 1);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBEndpointsRegistered"), 1);
	{
		char *s = NULL;
		ccb_broker_status_json(k.b, true, &s, NULL);
		json_t *o = json_loads(s, 0, NULL), *r;
		r = json_array_get(json_object_get(o, "registrations"), 0);
		CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "ccbid")), 1);
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "name")),
				       "MASTER <127.0.0.1:1234?alias=vm>");
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "address")),
				       ccb_broker_address(k.b));
		/* Secrets stay out of the status. */
		CU_ASSERT_PTR_NULL(strstr(s, l.cookie));
		json_decref(o);
		ccb_free(s);
	}
	bkt_listener_close(&l);
	close(lfd);
	bkt_stop(&k);
	fds_check();
}

static void test_unknown_and_invalid(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	ccb_stream *rq = NULL;
	char text[256];
	bool ok = true;

	fds_mark();
	bkt_config(&cfg, &k.sec);
	bkt_start(&k, &cfg);
	CU_ASSERT_EQUAL_FATAL(bkt_request(k.port, "999", "<127.0.0.1:9>", "ab", false, &rq), CCB_OK);
	CU_ASSERT_EQUAL(bkt_reply(rq, &ok, text, sizeof text), CCB_OK);
	CU_ASSERT(!ok);
	CU_ASSERT_STRING_EQUAL(text, "CCB server rejecting request for ccbid 999 because no daemon is "
				     "currently registered with that id (perhaps it recently disconnected).");
	ccb_stream_free(rq);
	/* Strict CCBIDs: C++'s "invalid CCBID" (srv:927-944) and the reason;
	 * "0001" is not read as 1, and 2^64 is neither echoed nor saturated. */
	{
		static const char *const bad[][2] = {
			{"1x", "is not all decimal digits"},
			{"0001", "has a leading zero"},
			{"18446744073709551616", "does not fit in 64 bits"},
			{"99999999999999999999999", "does not fit in 64 bits"},
			{"", "is empty"},
			{"-1", "is not all decimal digits"},
			{" 1", "is not all decimal digits"},
		};
		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			CU_ASSERT_EQUAL_FATAL(bkt_request(k.port, bad[i][0], "<127.0.0.1:9>", "ab", false, &rq),
					      CCB_OK);
			CU_ASSERT_EQUAL(bkt_reply(rq, &ok, text, sizeof text), CCB_OK);
			CU_ASSERT(!ok);
			CU_ASSERT(!strncmp(text, "invalid CCBID: ", 15) && strstr(text, bad[i][1]));
			if (strncmp(text, "invalid CCBID: ", 15) || !strstr(text, bad[i][1]))
				fprintf(stderr, "CCBID \"%s\": %s\n", bad[i][0], text);
			ccb_stream_free(rq);
		}
	}
	/* The largest id is valid (and not registered). */
	CU_ASSERT_EQUAL_FATAL(bkt_request(k.port, "18446744073709551615", "<127.0.0.1:9>", "ab", false, &rq),
			      CCB_OK);
	CU_ASSERT_EQUAL(bkt_reply(rq, &ok, text, sizeof text), CCB_OK);
	CU_ASSERT(!ok && strstr(text, "because no daemon is currently registered"));
	ccb_stream_free(rq);
	/* Missing ClaimId: closed without a reply (srv:911-922). */
	{
		ccb_classad *ad = NULL, *reply = NULL;
		ccb_ad_field f[] = {CCB_AD_STRING(CCB_ATTR_CCBID, "1"),
				    CCB_AD_STRING(CCB_ATTR_MY_ADDRESS, "<127.0.0.1:9>")};
		CU_ASSERT_EQUAL_FATAL(bkt_connect(k.port, CCB_CMD_CCB_REQUEST, "tool", &rq, NULL), CCB_OK);
		ccb_ad_new(f, 2, &ad, NULL);
		CU_ASSERT_EQUAL(ccb_control_ad_write(rq, ad, 0, NULL), CCB_OK);
		CU_ASSERT_EQUAL(ccb_control_ad_read(rq, &reply, NULL), CCB_ERR_CLOSED);
		ccb_classad_free(ad);
		ccb_stream_free(rq);
	}
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBRequestsNotFound"), 2);
	bkt_stop(&k);
	fds_check();
}

/* Re-registration with contact + cookie keeps the CCBID and evicts the
 * stale socket; a wrong cookie gets a fresh id. */
static void test_reregister(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	bkt_listener a, a2, a3, b2;
	char contact[256], cookie[64];

	fds_mark();
	bkt_config(&cfg, &k.sec);
	bkt_start(&k, &cfg);
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &a), CCB_OK);
	snprintf(contact, sizeof contact, "%s", a.contact);
	snprintf(cookie, sizeof cookie, "%s", a.cookie);
	/* Old socket still open: the new one takes the id, the old is closed. */
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", contact, cookie, &a2), CCB_OK);
	CU_ASSERT_EQUAL(a2.id, a.id);
	CU_ASSERT_STRING_EQUAL(a2.cookie, cookie);
	{
		ccb_classad *ad = NULL;
		CU_ASSERT_EQUAL(ccb_control_ad_read(a.s, &ad, NULL), CCB_ERR_CLOSED);
	}
	bkt_listener_close(&a);
	CU_ASSERT(bkt_heartbeat(&a2));
	/* After the socket closed. */
	bkt_listener_close(&a2);
	CU_ASSERT(bkt_wait_stat(k.b, "CCBEndpointsConnected", 0));
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", contact, cookie, &a3), CCB_OK);
	CU_ASSERT_EQUAL(a3.id, a.id);
	/* Wrong cookie: a fresh id, not an error. */
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", contact, "12345", &b2), CCB_OK);
	CU_ASSERT_NOT_EQUAL(b2.id, a.id);
	CU_ASSERT_STRING_NOT_EQUAL(b2.cookie, cookie);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBReconnects"), 2);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBEndpointsRegistered"), 2);
	bkt_listener_close(&a3);
	bkt_listener_close(&b2);
	bkt_stop(&k);
	fds_check();
}

/* The target leaves while a request is pending; a silent target times out. */
static void test_target_gone_and_timeout(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	bkt_listener l;
	ccb_stream *rq = NULL;
	ccb_classad *fwd = NULL;
	char text[256];
	bool ok = true;

	fds_mark();
	bkt_config(&cfg, &k.sec);
	cfg.request_timeout_ms = 300;
	bkt_start(&k, &cfg);
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &l), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(bkt_request(k.port, "1", "<127.0.0.1:9>", "c1", false, &rq), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(ccb_control_ad_read(l.s, &fwd, NULL), CCB_OK);
	ccb_classad_free(fwd);
	CU_ASSERT_EQUAL(bkt_reply(rq, &ok, text, sizeof text), CCB_OK);
	CU_ASSERT(!ok);
	CU_ASSERT_STRING_EQUAL(text, "timed out waiting for target to connect");
	ccb_stream_free(rq);
	/* A late result for the timed-out request is only logged. */
	CU_ASSERT(bkt_heartbeat(&l));

	CU_ASSERT_EQUAL_FATAL(bkt_request(k.port, "1", "<127.0.0.1:9>", "c2", false, &rq), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(ccb_control_ad_read(l.s, &fwd, NULL), CCB_OK);
	ccb_classad_free(fwd);
	bkt_listener_close(&l);
	CU_ASSERT_EQUAL(bkt_reply(rq, &ok, text, sizeof text), CCB_OK);
	CU_ASSERT(!ok);
	CU_ASSERT_STRING_EQUAL(text, "target disconnected from the CCB server before it reported a result");
	ccb_stream_free(rq);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBRequestsFailed"), 2);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "RequestsTimedOut"), 1);
	bkt_stop(&k);
	fds_check();
}

/* A peer that may only READ cannot register (DAEMON needed). */
static void test_authorization(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	bkt_listener l;

	fds_mark();
	bkt_config(&cfg, &k.sec);
	bkt_start(&k, &cfg);
	CU_ASSERT_EQUAL(bkt_register(k.port, "nobody", NULL, NULL, &l), CCB_ERR_NOT_AUTHORIZED);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBEndpointsConnected"), 0);
	CU_ASSERT(bkt_wait_stat(k.b, "HandshakesFailed", 1));
	/* DC_SEC_QUERY is answered (what condor_ping sends). */
	{
		ccb_sec_client_config sc = bkt_client("nobody");
		ccb_stream *s = NULL;
		ccb_sec_info info;
		bool authorized = true;
		CU_ASSERT_EQUAL_FATAL(ccb_stream_connect("127.0.0.1", k.port, 5000, &s, NULL), CCB_OK);
		CU_ASSERT_EQUAL(ccb_sec_client_start(s, &sc, CCB_CMD_DC_SEC_QUERY, CCB_CMD_CCB_REGISTER,
						     NULL, &info, NULL), CCB_OK);
		CU_ASSERT_EQUAL(ccb_sec_client_query_reply(s, &authorized, NULL), CCB_OK);
		CU_ASSERT(!authorized);
		CU_ASSERT_PTR_NOT_NULL(strstr(info.peer_version, "$CondorVersion: 25."));
		ccb_stream_free(s);
	}
	bkt_stop(&k);
	fds_check();
}

static char *tmp_path(const char *tag)
{
	static char path[128];
	snprintf(path, sizeof path, "/tmp/ccbt-broker-%s-%d", tag, (int)getpid());
	return path;
}

/* A corrupt record file is skipped line by line; good records still work. */
static void test_corrupt_record_file(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	bkt_listener l1, l2;
	char *path = tmp_path("corrupt");
	FILE *f;

	fds_mark();
	f = fopen(path, "w");
	fprintf(f, "127.0.0.1 7 424242\n");
	fprintf(f, "garbage line here and more\n");
	fprintf(f, "127.0.0.1 x 1\n\n");
	fprintf(f, "127.0.0.1 9 777\n");
	fprintf(f, "127.0.0.1 12 99"); /* torn: no newline */
	fclose(f);
	bkt_config(&cfg, &k.sec);
	cfg.reconnect_file = path;
	bkt_start(&k, &cfg);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBEndpointsRegistered"), 2);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "RecordFileErrors"), 4);
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", "127.0.0.1:1#7", "424242", &l1), CCB_OK);
	CU_ASSERT_EQUAL(l1.id, 7);
	/* The torn record is not trusted: new id, past max + 100. */
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", "127.0.0.1:1#12", "99", &l2), CCB_OK);
	CU_ASSERT_EQUAL(l2.id, 109);
	bkt_listener_close(&l1);
	bkt_listener_close(&l2);
	bkt_stop(&k);
	{
		/* The file was rewritten clean: three good lines, mode 0600. */
		size_t len;
		char *text = ccbt_read_file(path, &len);
		int lines = 0;
		struct stat stt;
		for (size_t i = 0; text && i < len; i++)
			lines += text[i] == '\n';
		CU_ASSERT_EQUAL(lines, 3);
		CU_ASSERT_PTR_NULL(strstr(text ? text : "", "garbage"));
		free(text);
		CU_ASSERT(stat(path, &stt) == 0 && (stt.st_mode & 0777) == 0600);
	}
	unlink(path);
	fds_check();
}

/* Reconnect records are bounded (issue 15): churning registrations keep at
 * most max_reconnect_records, the oldest absent ones dropped, never one of
 * a connected target; the file stays bounded too; a file over the limit is
 * cut down on load. */
static void test_record_bounds(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	bkt_listener keep, l;
	char *path = tmp_path("bounds");
	long long n;
	size_t len;
	char *text;
	int lines = 0;
	FILE *f;

	fds_mark();
	bkt_config(&cfg, &k.sec);
	cfg.reconnect_file = path;
	cfg.max_reconnect_records = 10;
	bkt_start(&k, &cfg);
	/* The first one stays connected throughout. */
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &keep), CCB_OK);
	for (int i = 0; i < 60; i++) {
		CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &l), CCB_OK);
		bkt_listener_close(&l);
		n = bkt_stat(k.b, "CCBEndpointsRegistered");
		CU_ASSERT(n >= 1 && n <= 10);
	}
	CU_ASSERT(bkt_stat(k.b, "RecordsPruned") >= 50);
	/* The connected target's record survived: it reclaims its CCBID. */
	{
		bkt_listener again;
		uint64_t id = keep.id;
		bkt_listener_close(&keep);
		CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", keep.contact, keep.cookie, &again),
				      CCB_OK);
		CU_ASSERT_EQUAL(again.id, id);
		bkt_listener_close(&again);
	}
	/* The file holds at most the limit plus what was appended since the
	 * last rewrite (bounded by 2 x limit x 128 bytes). */
	text = ccbt_read_file(path, &len);
	for (size_t i = 0; text && i < len; i++)
		lines += text[i] == '\n';
	CU_ASSERT(lines >= 1 && lines <= 20);
	CU_ASSERT(len <= 2 * 10 * 128);
	free(text);
	bkt_stop(&k);

	/* A file of 50 records loaded under a limit of 10: cut down to 9
	 * (90%), the newest kept, and the file rewritten. */
	f = fopen(path, "w");
	for (int i = 1; i <= 50; i++)
		fprintf(f, "127.0.0.1 %d %d\n", i, 1000 + i);
	fclose(f);
	bkt_config(&cfg, &k.sec);
	cfg.reconnect_file = path;
	cfg.max_reconnect_records = 10;
	bkt_start(&k, &cfg);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBEndpointsRegistered"), 9);
	text = ccbt_read_file(path, &len);
	lines = 0;
	for (size_t i = 0; text && i < len; i++)
		lines += text[i] == '\n';
	CU_ASSERT_EQUAL(lines, 9);
	free(text);
	bkt_stop(&k);
	unlink(path);
	fds_check();
}

/* A requester cannot pile up requests for one target: beyond the cap it
 * gets {Result = false, ErrorString naming the limit} at once; another
 * target is unaffected. */
static void test_requests_per_requester_target(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	bkt_listener t1, t2;
	ccb_stream *rq[4] = {0}, *extra = NULL;
	char id1[24], id2[24], text[512];
	ccb_classad *fwd = NULL;
	bool ok = true;

	fds_mark();
	bkt_config(&cfg, &k.sec);
	cfg.max_requests_per_requester_target = 3;
	bkt_start(&k, &cfg);
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &t1), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &t2), CCB_OK);
	snprintf(id1, sizeof id1, "%llu", (unsigned long long)t1.id);
	snprintf(id2, sizeof id2, "%llu", (unsigned long long)t2.id);
	for (int i = 0; i < 3; i++) {
		char cid[16];
		snprintf(cid, sizeof cid, "c%d", i);
		CU_ASSERT_EQUAL_FATAL(bkt_request(k.port, id1, "<127.0.0.1:9>", cid, false, &rq[i]), CCB_OK);
		/* Forwarded to the target (read it so the order is known). */
		CU_ASSERT_EQUAL(ccb_control_ad_read(t1.s, &fwd, NULL), CCB_OK);
		ccb_classad_free(fwd);
		fwd = NULL;
	}
	CU_ASSERT_EQUAL_FATAL(bkt_request(k.port, id1, "<127.0.0.1:9>", "c3", false, &rq[3]), CCB_OK);
	CU_ASSERT_EQUAL(bkt_reply(rq[3], &ok, text, sizeof text), CCB_OK);
	CU_ASSERT(!ok);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "3 requests from 127.0.0.1 for this target are already pending"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "CCB_SERVER_MAX_REQUESTS_PER_REQUESTER_TARGET = 3"));
	/* Another target: fine. */
	CU_ASSERT_EQUAL_FATAL(bkt_request(k.port, id2, "<127.0.0.1:9>", "d0", false, &extra), CCB_OK);
	CU_ASSERT_EQUAL(ccb_control_ad_read(t2.s, &fwd, NULL), CCB_OK);
	ccb_classad_free(fwd);
	/* Once one is done (its requester gone), there is room again. */
	ccb_stream_free(rq[0]);
	rq[0] = NULL;
	{
		bool forwarded = false;
		for (int i = 0; i < 200 && !forwarded; i++) {
			ccb_stream *s = NULL;
			bool r = true, answered = false;
			CU_ASSERT_EQUAL_FATAL(bkt_request(k.port, id1, "<127.0.0.1:9>", "c4", false, &s),
					      CCB_OK);
			/* Either forwarded to the target or refused to us. */
			while (!forwarded && !answered) {
				if (ccb_stream_wait_readable(t1.s, 10) == CCB_OK) {
					CU_ASSERT_EQUAL(ccb_control_ad_read(t1.s, &fwd, NULL), CCB_OK);
					ccb_classad_free(fwd);
					forwarded = true;
				} else if (ccb_stream_wait_readable(s, 10) == CCB_OK) {
					CU_ASSERT_EQUAL(bkt_reply(s, &r, text, sizeof text), CCB_OK);
					answered = true;
				}
			}
			if (forwarded) {
				ccb_stream_free(rq[3]);
				rq[3] = s;
			} else {
				ccb_stream_free(s);
			}
		}
		CU_ASSERT(forwarded);
	}
	for (int i = 0; i < 4; i++)
		ccb_stream_free(rq[i]);
	ccb_stream_free(extra);
	bkt_listener_close(&t1);
	bkt_listener_close(&t2);
	bkt_stop(&k);
	fds_check();
}

/* Records expire after two sweep intervals without their target. */
static void test_record_expiry(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	bkt_listener l;

	fds_mark();
	bkt_config(&cfg, &k.sec);
	cfg.sweep_interval_ms = 100;
	bkt_start(&k, &cfg);
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &l), CCB_OK);
	/* deliberate: time passes for several sweeps; the target must survive them. */
	usleep(400 * 1000);
	/* Still connected: kept alive. */
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBEndpointsRegistered"), 1);
	bkt_listener_close(&l);
	CU_ASSERT(bkt_wait_stat(k.b, "CCBEndpointsRegistered", 0));
	CU_ASSERT_EQUAL(bkt_stat(k.b, "RecordsPruned"), 1);
	bkt_stop(&k);
	fds_check();
}

/* The network status query (CCB_CMD_LIBCCB_STATUS, READ). */
static void test_status_query(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	bkt_listener l;
	ccb_sec_client_config sc = bkt_client("tool");
	char addr[64], *json = NULL;
	ccb_error err = {0};

	fds_mark();
	bkt_config(&cfg, &k.sec);
	bkt_start(&k, &cfg);
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &l), CCB_OK);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", k.port);
	CU_ASSERT_EQUAL(ccb_broker_query_status(addr, &sc, 5000, &json, &err), CCB_OK);
	{
		json_t *o = json_loads(json ? json : "", 0, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(o);
		CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(o, "stats"),
								   "CCBEndpointsConnected")), 1);
		CU_ASSERT_EQUAL(json_array_size(json_object_get(o, "registrations")), 1);
		json_decref(o);
	}
	ccb_free(json);
	CU_ASSERT_STRING_EQUAL(ccb_command_name(CCB_CMD_LIBCCB_STATUS), "CCB_LIBCCB_STATUS");
	bkt_listener_close(&l);
	bkt_stop(&k);
	fds_check();
}

static void test_config_load(void)
{
	char *path = tmp_path("cfg");
	FILE *f = fopen(path, "w");
	ccb_config *c = NULL;
	ccb_broker_config bc;

	fprintf(f, "{\"CCB_SERVER_LISTEN\": \"127.0.0.1:0, [::1]:0\", \"CCB_SWEEP_INTERVAL\": 30,"
		   " \"CCB_SERVER_STREAMING\": false, \"CCB_SERVER_MAX_CONNECTIONS\": 77,"
		   " \"CCB_SERVER_REQUEST_TIMEOUT\": -1, \"ALLOW_DAEMON\": \"condor@vm\"}");
	fclose(f);
	CU_ASSERT_EQUAL_FATAL(ccb_config_load(path, &c, NULL), CCB_OK);
	CU_ASSERT_EQUAL(ccb_broker_config_load(c, &bc, NULL), CCB_OK);
	CU_ASSERT_STRING_EQUAL(bc.listen, "127.0.0.1:0, [::1]:0");
	CU_ASSERT_EQUAL(bc.sweep_interval_ms, 30000);
	CU_ASSERT(bc.streaming_disabled);
	CU_ASSERT_EQUAL(bc.max_connections, 77);
	CU_ASSERT_EQUAL(bc.request_timeout_ms, -1);
	CU_ASSERT_STRING_EQUAL(bc.security.allow[CCB_PERM_DAEMON], "condor@vm");
	/* Both families bind; ports are known before run. */
	{
		ccb_broker *b = NULL;
		CU_ASSERT_EQUAL_FATAL(ccb_broker_new(&bc, &b, NULL), CCB_OK);
		CU_ASSERT_EQUAL(ccb_broker_listen_count(b), 2);
		CU_ASSERT(ccb_broker_port(b, 0) > 0 && ccb_broker_port(b, 1) > 0);
		CU_ASSERT_EQUAL(ccb_broker_port(b, 2), -1);
		/* Stop before run: run returns at once. */
		ccb_broker_stop(b);
		CU_ASSERT_EQUAL(ccb_broker_run(b, NULL), CCB_OK);
		CU_ASSERT_EQUAL(ccb_broker_run(b, NULL), CCB_ERR_STATE);
		ccb_broker_free(b);
	}
	ccb_config_free(c);
	unlink(path);
}

/* Registration and a request over IPv6 loopback. */
static void test_ipv6(void)
{
	ccb_broker_config cfg;
	ccb_sec_server_config sec;
	ccb_broker *b = NULL;
	bkt_broker k = {0};
	ccb_stream *s = NULL;
	ccb_sec_client_config sc = bkt_client("condor");
	ccb_sec_info info;
	char expect[64];

	bkt_config(&cfg, &sec);
	cfg.listen = "[::1]:0";
	if (ccb_broker_new(&cfg, &b, NULL) != CCB_OK)
		return; /* no IPv6 on this host */
	k.b = b;
	k.port = ccb_broker_port(b, 0);
	pthread_create(&k.t, NULL, bkt_run, &k);
	snprintf(expect, sizeof expect, "<[::1]:%d?addrs=[--1]-%d>", k.port, k.port);
	CU_ASSERT_STRING_EQUAL(ccb_broker_address(b), expect);
	CU_ASSERT_EQUAL_FATAL(ccb_stream_connect("::1", k.port, 5000, &s, NULL), CCB_OK);
	CU_ASSERT_EQUAL(ccb_sec_client_start(s, &sc, CCB_CMD_CCB_REGISTER, 0, NULL, &info, NULL), CCB_OK);
	{
		ccb_ad_field f[] = {CCB_AD_INT(CCB_ATTR_COMMAND, 67), CCB_AD_STRING(CCB_ATTR_NAME, "X")};
		ccb_classad *ad = NULL, *reply = NULL;
		const char *v = "";
		ccb_ad_new(f, 2, &ad, NULL);
		CU_ASSERT_EQUAL(ccb_control_ad_write(s, ad, 0, NULL), CCB_OK);
		CU_ASSERT_EQUAL(ccb_control_ad_read(s, &reply, NULL), CCB_OK);
		ccb_classad_get_string(reply, CCB_ATTR_CCBID, &v);
		snprintf(expect, sizeof expect, "[::1]:%d?addrs=[--1]-%d#1", k.port, k.port);
		CU_ASSERT_STRING_EQUAL(v, expect);
		ccb_classad_free(ad);
		ccb_classad_free(reply);
	}
	ccb_stream_free(s);
	bkt_stop(&k);
}

/* Overwrite a string the caller handed over, then free it: a broker that
 * kept the pointer would read garbage (ASan: a use after free). */
static void scrub(char *s)
{
	memset(s, 'x', strlen(s));
	ccb_free(s);
}

/* ccb_broker_new() and ccb_broker_reload_security() deep-copy the security
 * settings: the caller frees its strings right after each call. */
static void test_security_deep_copy(void)
{
	bkt_broker k = {0};
	ccb_broker_config cfg;
	ccb_sec_server_config sec;
	bkt_listener l;
	ccb_error err = {0};
	char *methods = strdup("CLAIMTOBE"), *allow = strdup("condor@vm"), *dom = strdup("vm");

	bkt_config(&cfg, &k.sec);
	cfg.security.auth_methods[CCB_PERM_ALLOW] = methods;
	cfg.security.allow[CCB_PERM_DAEMON] = allow;
	cfg.security.uid_domain = dom;
	bkt_start(&k, &cfg);
	scrub(methods);
	scrub(allow);
	scrub(dom);
	memset(&cfg.security, 0, sizeof cfg.security);
	CU_ASSERT_EQUAL(bkt_register(k.port, "condor", NULL, NULL, &l), CCB_OK);
	bkt_listener_close(&l);

	/* Reload: only alice may register now; the strings go at once. */
	memset(&sec, 0, sizeof sec);
	sec.auth_methods[CCB_PERM_ALLOW] = methods = strdup("CLAIMTOBE");
	sec.allow[CCB_PERM_DAEMON] = allow = strdup("alice@vm");
	sec.uid_domain = dom = strdup("vm");
	CU_ASSERT_EQUAL(ccb_broker_reload_security(k.b, &sec, &err), CCB_OK);
	scrub(methods);
	scrub(allow);
	scrub(dom);
	CU_ASSERT_NOT_EQUAL(bkt_register(k.port, "condor", NULL, NULL, &l), CCB_OK);
	CU_ASSERT_EQUAL(bkt_register(k.port, "alice", NULL, NULL, &l), CCB_OK);
	bkt_listener_close(&l);
	/* Many reloads: each config can be freed (ccbctl broker's SIGHUP). */
	sec.auth_methods[CCB_PERM_ALLOW] = "CLAIMTOBE";
	sec.uid_domain = "vm";
	for (int i = 0; i < 100; i++) {
		sec.allow[CCB_PERM_DAEMON] = allow = strdup(i % 2 ? "alice@vm" : "bob@vm");
		CU_ASSERT_EQUAL(ccb_broker_reload_security(k.b, &sec, &err), CCB_OK);
		scrub(allow);
	}
	CU_ASSERT_EQUAL(bkt_register(k.port, "alice", NULL, NULL, &l), CCB_OK);
	bkt_listener_close(&l);
	CU_ASSERT_EQUAL(ccb_broker_reload_security(k.b, NULL, &err), CCB_ERR_INVALID_ARG);
	bkt_stop(&k);
}

static const ccbt_test tests[] = {
	{"security settings deep-copied (new and reload)", test_security_deep_copy},
	{"reconnect records bounded", test_record_bounds},
	{"requests per requester per target capped", test_requests_per_requester_target},
	{"register, heartbeat, request, hello, result", test_register_request_result},
	{"unknown and invalid CCBID", test_unknown_and_invalid},
	{"re-registration keeps the CCBID", test_reregister},
	{"target gone and request timeout", test_target_gone_and_timeout},
	{"authorization of CCB_REGISTER", test_authorization},
	{"corrupt record file", test_corrupt_record_file},
	{"record expiry", test_record_expiry},
	{"status over the network", test_status_query},
	{"config file and two listen sockets", test_config_load},
	{"IPv6 loopback", test_ipv6},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"broker", tests}, {NULL, NULL}};

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return ccbt_run(suites);
}
