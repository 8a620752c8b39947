/* ccb_dial against scripted fake brokers and targets over loopback. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ccb/dial.h"
#include "fakeccb.h"
#include "sptest.h"

/* ---- progress recorder ----------------------------------------------------- */

typedef struct rec {
	pthread_mutex_t mu;
	int events, impostors, active, max_active, won;
	char steps[2048];
} rec;

static void rec_fn(const ccb_dial_event *ev, void *user)
{
	rec *r = user;

	pthread_mutex_lock(&r->mu);
	r->events++;
	if (!strcmp(ev->step, "impostor"))
		r->impostors++;
	if (ev->attempt && !strcmp(ev->step, "connect")) {
		r->active++;
		if (r->active > r->max_active)
			r->max_active = r->active;
	}
	if (ev->attempt && (!strcmp(ev->step, "failed") || !strcmp(ev->step, "cancelled") ||
			    !strcmp(ev->step, "won")))
		r->active--;
	if (!strcmp(ev->step, "won"))
		r->won++;
	/* Connect ids never reach progress details. */
	size_t l = strlen(r->steps);
	snprintf(r->steps + l, sizeof r->steps - l, "%d:%s ", ev->attempt, ev->step);
	pthread_mutex_unlock(&r->mu);
}

static void rec_init(rec *r)
{
	memset(r, 0, sizeof *r);
	pthread_mutex_init(&r->mu, NULL);
}

static ccb_sec_client_config csec;

static void opts_init(ccb_dial_config *o, int timeout_ms)
{
	memset(o, 0, sizeof *o);
	fb_client_sec(&csec);
	o->broker_sec = &csec;
	o->timeout_ms = timeout_ms;
}

static bool all_hex40(const char *s)
{
	return ccb_connect_id_valid(s);
}

/* ---- standard mode ------------------------------------------------------- */

static void test_success(void)
{
	int fds0 = ccbt_count_fds(), thr0 = ccbt_count_threads();
	fake_broker b;
	ccb_dial_config o;
	ccb_dial_info info;
	ccb_stream *s = NULL;
	ccb_error err;
	const char *c[1];

	fb_start(&b, FB_FORWARD, TG_ECHO, "7");
	c[0] = fb_contact(&b);
	opts_init(&o, 10000);
	o.info = &info;
	CU_ASSERT_EQUAL_FATAL(ccb_dial(c, 1, &o, &s, &err), CCB_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT(fb_echo(s, "ping"));
	CU_ASSERT_FALSE(info.proxied);
	CU_ASSERT_EQUAL(info.attempts, 1);
	ccb_stream_free(s);
	fb_stop(&b);
	CU_ASSERT_EQUAL(b.requests, 1);
	CU_ASSERT_STRING_EQUAL(b.ccbid, "7");
	CU_ASSERT_STRING_EQUAL(b.name, "TOOL");
	CU_ASSERT(all_hex40(b.claim_id));
	CU_ASSERT_EQUAL(strncmp(b.my_address, "<127.0.0.1:", 11), 0);
	CU_ASSERT_FALSE(b.streaming_required);
	CU_ASSERT_FALSE(b.has_route);
	CU_ASSERT_EQUAL(b.target_rc, CCB_OK);
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds0);
	CU_ASSERT_EQUAL(ccbt_count_threads(), thr0);
}

/* A requester keeping broker sessions: the second dial resumes when the
 * broker kept the session, and when it did not (restart), the refused
 * resumption is retried on a new connection within the same dial. */
static void test_broker_sessions(void)
{
	fake_broker b;
	ccb_dial_config o;
	ccb_stream *s = NULL;
	ccb_error err;
	const char *c[1];
	rec r;

	for (int kept = 0; kept < 2; kept++) {
		fb_start(&b, FB_FORWARD, TG_ECHO, "7");
		if (kept)
			ccb_sec_sessions_new(8, &b.cfg.sessions, NULL);
		c[0] = fb_contact(&b);
		opts_init(&o, 10000);
		ccb_sec_sessions_new(8, &csec.sessions, NULL);
		for (int i = 0; i < 2; i++) {
			rec_init(&r);
			o.progress = rec_fn;
			o.progress_user = &r;
			CU_ASSERT_EQUAL_FATAL(ccb_dial(c, 1, &o, &s, &err), CCB_OK);
			CU_ASSERT(fb_echo(s, "ping"));
			ccb_stream_free(s);
			/* Only the second dial of a broker that forgot its sessions
			 * reconnects. */
			CU_ASSERT_EQUAL(strstr(r.steps, "1:connect 1:authenticate 1:authenticate 1:connect") != NULL,
					i == 1 && !kept);
		}
		CU_ASSERT_EQUAL(ccb_sec_sessions_count(csec.sessions), 1);
		fb_stop(&b);
		CU_ASSERT_EQUAL(b.requests, 2);
		ccb_sec_sessions_free(b.cfg.sessions);
		ccb_sec_sessions_free(csec.sessions);
		csec.sessions = NULL;
	}
}

static void test_reply_before_hello(void)
{
	fake_broker b;
	ccb_dial_config o;
	ccb_stream *s = NULL;
	const char *c[1];
	rec r;

	rec_init(&r);
	fb_start(&b, FB_REPLY_FIRST, TG_ECHO, "3");
	c[0] = fb_contact(&b);
	opts_init(&o, 10000);
	o.name = "tester's dial";
	o.progress = rec_fn;
	o.progress_user = &r;
	CU_ASSERT_EQUAL_FATAL(ccb_dial(c, 1, &o, &s, NULL), CCB_OK);
	CU_ASSERT(fb_echo(s, "x"));
	ccb_stream_free(s);
	fb_stop(&b);
	CU_ASSERT_STRING_EQUAL(b.name, "tester's dial");
	CU_ASSERT_PTR_NOT_NULL(strstr(r.steps, "1:broker reply"));
	CU_ASSERT_EQUAL(r.won, 1);
}

static void test_impostor_ignored(void)
{
	fake_broker b;
	ccb_dial_config o;
	ccb_stream *s = NULL;
	const char *c[1];
	rec r;

	rec_init(&r);
	fb_start(&b, FB_IMPOSTOR_FIRST, TG_ECHO, "11");
	c[0] = fb_contact(&b);
	opts_init(&o, 10000);
	o.progress = rec_fn;
	o.progress_user = &r;
	CU_ASSERT_EQUAL_FATAL(ccb_dial(c, 1, &o, &s, NULL), CCB_OK);
	CU_ASSERT(fb_echo(s, "real"));
	ccb_stream_free(s);
	fb_stop(&b);
	CU_ASSERT_EQUAL(r.impostors, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.steps, "1:impostor 1:reverse connect 1:hello"));
}

static void expect_failure(fb_mode mode, int timeout_ms, ccb_err want, const char *text)
{
	int fds0 = ccbt_count_fds();
	fake_broker b;
	ccb_dial_config o;
	ccb_stream *s = (ccb_stream *)&o;
	ccb_error err;
	const char *c[1];
	int64_t t0;

	fb_start(&b, mode, TG_ECHO, "5");
	c[0] = fb_contact(&b);
	opts_init(&o, timeout_ms);
	t0 = ccb_now_ms();
	CU_ASSERT_EQUAL(ccb_dial(c, 1, &o, &s, &err), want);
	CU_ASSERT(ccb_now_ms() - t0 < timeout_ms + 3000);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_EQUAL(err.code, want);
	if (!strstr(err.detail, text) || getenv("CCBT_SHOW_DETAILS"))
		fprintf(stderr, "\n  detail: %s\n", err.detail);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, text));
	/* the detail names the broker */
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "broker 127.0.0.1:"));
	fb_stop(&b);
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds0);
}

static void test_broker_errors(void)
{
	expect_failure(FB_UNKNOWN_CCBID, 10000, CCB_ERR_UNKNOWN_CCBID,
		       "no daemon is currently registered with that id");
	expect_failure(FB_TARGET_FAILED, 10000, CCB_ERR_NO_CALLBACK, "failed to connect");
	expect_failure(FB_CLOSE, 10000, CCB_ERR_NO_CALLBACK, "closed the connection without a reply");
}

static void test_silent_broker(void)
{
	int64_t t0 = ccb_now_ms();

	/* Timeout details say how long was waited for what (error.h). */
	expect_failure(FB_SILENT, 800, CCB_ERR_NO_CALLBACK, "did not call back within ");
	expect_failure(FB_SILENT, 800, CCB_ERR_NO_CALLBACK, " ms of the request");
	CU_ASSERT(ccb_now_ms() - t0 >= 800);
	/* a broker that never even accepts: the handshake times out */
	expect_failure(FB_NO_ACCEPT, 500, CCB_ERR_TIMEOUT, "reading a message timed out after ");
	expect_failure(FB_NO_ACCEPT, 500, CCB_ERR_TIMEOUT, " ms");
}

static void test_dead_broker_and_auth(void)
{
	ccb_dial_config o;
	ccb_stream *s = NULL;
	ccb_error err;
	char contact[64];
	const char *c[1] = {contact};
	fake_broker b;

	snprintf(contact, sizeof contact, "127.0.0.1:%u#1", fb_dead_port());
	opts_init(&o, 5000);
	CU_ASSERT_EQUAL(ccb_dial(c, 1, &o, &s, &err), CCB_ERR_NO_BROKER);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "connection refused by 127.0.0.1:"));
	/* READ refused to our identity */
	fb_start_allow(&b, FB_FORWARD, TG_ECHO, "1", "somebody@else");
	c[0] = fb_contact(&b);
	CU_ASSERT_EQUAL(ccb_dial(c, 1, &o, &s, &err), CCB_ERR_NOT_AUTHORIZED);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "authenticate"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "answered DENIED"));
	fb_stop(&b);
	CU_ASSERT_EQUAL(b.requests, 0);
	/* bad arguments */
	CU_ASSERT_EQUAL(ccb_dial(c, 0, &o, &s, &err), CCB_ERR_INVALID_ARG);
	o.broker_sec = NULL;
	CU_ASSERT_EQUAL(ccb_dial(c, 1, &o, &s, &err), CCB_ERR_INVALID_ARG);
	opts_init(&o, 5000);
	c[0] = "not a contact";
	CU_ASSERT_EQUAL(ccb_dial(c, 1, &o, &s, &err), CCB_ERR_INVALID_ARG);
}

/* ---- several brokers ------------------------------------------------------ */

static void test_race(void)
{
	int fds0 = ccbt_count_fds(), thr0 = ccbt_count_threads();
	fake_broker silent, good;
	ccb_dial_config o;
	ccb_dial_info info;
	ccb_stream *s = NULL;
	ccb_error err;
	char dead[64];
	const char *c[3];
	int64_t t0, took;

	for (int round = 0; round < 3; round++) {
		fb_start(&silent, FB_SILENT, TG_ECHO, "2");
		fb_start(&good, FB_FORWARD, TG_ECHO, "9");
		snprintf(dead, sizeof dead, "127.0.0.1:%u#4", fb_dead_port());
		c[0] = dead;
		c[1] = fb_contact(&silent);
		c[2] = fb_contact(&good);
		opts_init(&o, 10000);
		o.stagger_ms = 200;
		o.info = &info;
		t0 = ccb_now_ms();
		CU_ASSERT_EQUAL_FATAL(ccb_dial(c, 3, &o, &s, &err), CCB_OK);
		took = ccb_now_ms() - t0;
		/* Not held by the silent broker: well under the timeout. */
		CU_ASSERT(took < o.timeout_ms / 2);
		CU_ASSERT(fb_echo(s, "race"));
		CU_ASSERT(strstr(info.broker, "127.0.0.1:") != NULL);
		ccb_stream_free(s);
		fb_stop(&silent);
		fb_stop(&good);
		CU_ASSERT_EQUAL(good.requests, 1);
	}
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds0);
	CU_ASSERT_EQUAL(ccbt_count_threads(), thr0);
}

static void test_all_fail_reports_each(void)
{
	fake_broker unk, fail;
	ccb_dial_config o;
	ccb_stream *s = NULL;
	ccb_error err;
	char dead[64], port[16];
	const char *c[3];

	fb_start(&unk, FB_UNKNOWN_CCBID, TG_ECHO, "2");
	fb_start(&fail, FB_TARGET_FAILED, TG_ECHO, "3");
	snprintf(dead, sizeof dead, "127.0.0.1:%u#4", fb_dead_port());
	c[0] = dead;
	c[1] = fb_contact(&unk);
	c[2] = fb_contact(&fail);
	opts_init(&o, 10000);
	CU_ASSERT_EQUAL(ccb_dial(c, 3, &o, &s, &err), CCB_ERR_UNKNOWN_CCBID);
	snprintf(port, sizeof port, ":%u", unk.port);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, port));
	snprintf(port, sizeof port, ":%u", fail.port);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, port));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "; "));
	fb_stop(&unk);
	fb_stop(&fail);
}

static void test_sequential(void)
{
	fake_broker good, silent1, silent2;
	ccb_dial_config o;
	ccb_stream *s = NULL;
	char d1[64], d2[64];
	const char *c[3];
	rec r;

	/* Strictly sequential: never two attempts at once. */
	rec_init(&r);
	fb_start(&good, FB_FORWARD, TG_ECHO, "1");
	snprintf(d1, sizeof d1, "127.0.0.1:%u#4", fb_dead_port());
	snprintf(d2, sizeof d2, "127.0.0.1:%u#5", fb_dead_port());
	c[0] = d1;
	c[1] = d2;
	c[2] = fb_contact(&good);
	opts_init(&o, 10000);
	o.stagger_ms = -1;
	o.progress = rec_fn;
	o.progress_user = &r;
	CU_ASSERT_EQUAL_FATAL(ccb_dial(c, 3, &o, &s, NULL), CCB_OK);
	CU_ASSERT(fb_echo(s, "seq"));
	ccb_stream_free(s);
	fb_stop(&good);
	CU_ASSERT_EQUAL(r.max_active, 1);
	CU_ASSERT_EQUAL(r.won, 1);

	/* With a stagger, two silent brokers overlap before the deadline. */
	rec_init(&r);
	fb_start(&silent1, FB_SILENT, TG_ECHO, "1");
	fb_start(&silent2, FB_SILENT, TG_ECHO, "2");
	c[0] = fb_contact(&silent1);
	c[1] = fb_contact(&silent2);
	opts_init(&o, 1000);
	o.stagger_ms = 50;
	o.progress = rec_fn;
	o.progress_user = &r;
	CU_ASSERT_EQUAL(ccb_dial(c, 2, &o, &s, NULL), CCB_ERR_NO_CALLBACK);
	CU_ASSERT_EQUAL(r.max_active, 2);
	fb_stop(&silent1);
	fb_stop(&silent2);
	CU_ASSERT_EQUAL(silent1.requests + silent2.requests, 2);

	/* Sequential with a silent broker first: the second is never asked. */
	rec_init(&r);
	fb_start(&silent1, FB_SILENT, TG_ECHO, "1");
	fb_start(&silent2, FB_SILENT, TG_ECHO, "2");
	c[0] = fb_contact(&silent1);
	c[1] = fb_contact(&silent2);
	opts_init(&o, 600);
	o.stagger_ms = -1;
	o.progress = rec_fn;
	o.progress_user = &r;
	CU_ASSERT_EQUAL(ccb_dial(c, 2, &o, &s, NULL), CCB_ERR_NO_CALLBACK);
	CU_ASSERT_EQUAL(r.max_active, 1);
	fb_stop(&silent1);
	fb_stop(&silent2);
	CU_ASSERT_EQUAL(silent1.requests + silent2.requests, 1);
}

/* ---- streaming -------------------------------------------------------------- */

static void test_streaming(void)
{
	int fds0 = ccbt_count_fds();
	fake_broker b;
	ccb_dial_config o;
	ccb_dial_info info;
	ccb_stream *s = NULL;
	ccb_error err;
	char nested[64];
	const char *c[1];

	fb_start(&b, FB_STREAM, TG_ECHO, "8");
	c[0] = fb_contact(&b);
	opts_init(&o, 10000);
	o.streaming = true;
	o.info = &info;
	CU_ASSERT_EQUAL_FATAL(ccb_dial(c, 1, &o, &s, &err), CCB_OK);
	CU_ASSERT(info.proxied);
	CU_ASSERT_FALSE(ccb_stream_crypto_on(s));
	CU_ASSERT(fb_echo(s, "relayed"));
	ccb_stream_free(s);
	fb_stop(&b);
	CU_ASSERT(b.streaming_required);
	CU_ASSERT_STRING_EQUAL(b.my_address, CCB_DIAL_PROXY_PLACEHOLDER);
	CU_ASSERT_STRING_EQUAL(b.ccbid, "8");
	CU_ASSERT_FALSE(b.has_route);

	/* HTCondor tool style: empty MyAddress. */
	fb_start(&b, FB_STREAM, TG_ECHO, "8");
	c[0] = fb_contact(&b);
	opts_init(&o, 10000);
	o.proxy_return_addr = "";
	CU_ASSERT_EQUAL_FATAL(ccb_dial(c, 1, &o, &s, &err), CCB_OK);
	CU_ASSERT(fb_echo(s, "tool"));
	ccb_stream_free(s);
	fb_stop(&b);
	CU_ASSERT(b.streaming_required);
	CU_ASSERT_STRING_EQUAL(b.my_address, "");

	/* A nested contact streams with CCBRoute, without being asked to. */
	fb_start(&b, FB_STREAM, TG_ECHO, "5");
	snprintf(nested, sizeof nested, "127.0.0.1:%u#5#42#7", b.port);
	c[0] = nested;
	opts_init(&o, 10000);
	o.proxy_return_addr = "<10.0.0.1:9618?CCBID=10.0.0.2:9618%231>";
	CU_ASSERT_EQUAL_FATAL(ccb_dial(c, 1, &o, &s, &err), CCB_OK);
	CU_ASSERT(fb_echo(s, "nested"));
	ccb_stream_free(s);
	fb_stop(&b);
	CU_ASSERT_STRING_EQUAL(b.ccbid, "5");
	CU_ASSERT(b.has_route);
	CU_ASSERT_STRING_EQUAL(b.route, "42 7");
	CU_ASSERT_STRING_EQUAL(b.my_address, "<10.0.0.1:9618?CCBID=10.0.0.2:9618%231>");
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds0);
}

static void test_streaming_unsupported(void)
{
	fake_broker b;
	ccb_dial_config o;
	ccb_dial_info info;
	ccb_stream *s = NULL;
	ccb_error err;
	const char *c[1];
	int64_t t0;

	/* The broker refuses streaming (C++ with CCB_SERVER_STREAMING=false). */
	fb_start(&b, FB_STREAM_DISABLED, TG_ECHO, "8");
	c[0] = fb_contact(&b);
	opts_init(&o, 10000);
	o.streaming = true;
	CU_ASSERT_EQUAL(ccb_dial(c, 1, &o, &s, &err), CCB_ERR_STREAMING_UNSUPPORTED);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "disabled"));
	fb_stop(&b);
	CU_ASSERT_EQUAL(b.requests, 1);

	/* RequireStreaming and a broker below the version gate: fails fast,
	 * no request sent. (Our fake broker announces 25.14.0; a gate of
	 * 99.0.0 makes it "too old".) */
	fb_start(&b, FB_STREAM, TG_ECHO, "8");
	c[0] = fb_contact(&b);
	opts_init(&o, 10000);
	o.require_streaming = true;
	o.streaming_min_version = CCB_VERSION_NUM(99, 0, 0);
	t0 = ccb_now_ms();
	CU_ASSERT_EQUAL(ccb_dial(c, 1, &o, &s, &err), CCB_ERR_STREAMING_UNSUPPORTED);
	CU_ASSERT(ccb_now_ms() - t0 < o.timeout_ms / 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "25.14.0"));
	fb_stop(&b);
	CU_ASSERT_EQUAL(b.requests, 0);

	/* The same gate passes with the broker's CCBStreaming advertisement. */
	fb_start(&b, FB_STREAM, TG_ECHO, "8");
	c[0] = fb_contact(&b);
	o.broker_advertises_streaming = true;
	CU_ASSERT_EQUAL_FATAL(ccb_dial(c, 1, &o, &s, &err), CCB_OK);
	CU_ASSERT(fb_echo(s, "advertised"));
	ccb_stream_free(s);
	fb_stop(&b);

	/* Without RequireStreaming: fall back to a standard request. */
	fb_start(&b, FB_FORWARD, TG_ECHO, "8");
	c[0] = fb_contact(&b);
	opts_init(&o, 10000);
	o.streaming = true;
	o.streaming_min_version = CCB_VERSION_NUM(99, 0, 0);
	o.info = &info;
	CU_ASSERT_EQUAL_FATAL(ccb_dial(c, 1, &o, &s, &err), CCB_OK);
	CU_ASSERT_FALSE(info.proxied);
	CU_ASSERT(fb_echo(s, "fallback"));
	ccb_stream_free(s);
	fb_stop(&b);
	CU_ASSERT_FALSE(b.streaming_required);
}

/* ---- shared port ------------------------------------------------------------ */

static void test_shared_port_target(void)
{
	fake_broker b;
	ccb_dial_config o;
	ccb_dial_info info;
	ccb_stream *s = NULL;
	ccb_error err;
	char addr[256];
	uint8_t *want;
	size_t wlen;
	int64_t deadline_field = 0;

	fb_start(&b, FB_FORWARD, TG_SP, "12");
	/* The target's advertised sinful: its own (unreachable) address, the
	 * shared-port daemon's CCBID and its sock=. */
	snprintf(addr, sizeof addr, "<127.0.0.1:1?CCBID=127.0.0.1:%u%%2312&sock=master_29761_7690>",
		 b.port);
	opts_init(&o, 10000);
	o.info = &info;
	CU_ASSERT_EQUAL_FATAL(ccb_dial_sinful(addr, &o, &s, &err), CCB_OK);
	CU_ASSERT(info.via_shared_port);
	CU_ASSERT(fb_echo(s, "sp"));
	ccb_stream_free(s);
	fb_stop(&b);
	CU_ASSERT_STRING_EQUAL(b.ccbid, "12");
	/* SHARED_PORT_CONNECT as HTCondor's tool sends it (capture S6 conn 8
	 * message 2): int 75, id, "TOOL", deadline seconds, 0 more args. */
	want = ccbt_unhex("01 0000002f 000000000000004b"
			  " 6d61737465725f32393736315f3736393000" /* master_29761_7690 */
			  " 544f4f4c00"                            /* TOOL */
			  " 0000000000000000 0000000000000000",
			  &wlen);
	CU_ASSERT_EQUAL_FATAL(b.sp_len, wlen);
	for (int i = 0; i < 8; i++)
		deadline_field = deadline_field << 8 | b.sp_bytes[wlen - 16 + i];
	CU_ASSERT(deadline_field > 0 && deadline_field <= 10);
	memset(b.sp_bytes + wlen - 16, 0, 8);
	CU_ASSERT_EQUAL(memcmp(b.sp_bytes, want, wlen), 0);
	free(want);
}

/* The reverse connection arrives through our own shared-port endpoint. */
static void test_reverse_via_endpoint(void)
{
	char dir[64];
	fake_broker b;
	sp_bg srv = {0};
	ccb_sharedport_server_config scfg = {0};
	ccb_sharedport_endpoint_config ecfg = {0};
	ccb_dial_config o;
	ccb_stream *s = NULL;
	ccb_error err;
	char spaddr[64];
	const char *c[1];

	sp_mkdir(dir);
	scfg.socket_dir = ecfg.socket_dir = dir;
	ecfg.name = "tool";
	CU_ASSERT_FATAL(ccb_sharedport_server_new(&scfg, &srv.srv, NULL) == CCB_OK);
	sp_start(&srv, sp_run_main);
	snprintf(spaddr, sizeof spaddr, "<127.0.0.1:%u>", ccb_sharedport_server_port(srv.srv));
	fb_start(&b, FB_FORWARD, TG_ECHO, "6");
	c[0] = fb_contact(&b);
	opts_init(&o, 10000);
	o.sharedport_endpoint = &ecfg;
	o.sharedport_address = spaddr;
	CU_ASSERT_EQUAL(ccb_dial(c, 1, &o, &s, &err), CCB_OK);
	if (s)
		CU_ASSERT(fb_echo(s, "endpoint"));
	ccb_stream_free(s);
	fb_stop(&b);
	CU_ASSERT_PTR_NOT_NULL(strstr(b.my_address, "sock=tool_"));
	ccb_sharedport_server_stop(srv.srv);
	sp_join(&srv);
	ccb_sharedport_server_free(srv.srv);
	CU_ASSERT_EQUAL(sp_rmdir(dir), 0);
}

/* ---- cancellation --------------------------------------------------------- */

struct bg_dial {
	const char **c;
	size_t n;
	ccb_dial_config o;
	ccb_err rc;
	ccb_error err;
	ccb_stream *s;
};

static void *bg_dial_main(void *arg)
{
	struct bg_dial *d = arg;
	d->rc = ccb_dial(d->c, d->n, &d->o, &d->s, &d->err);
	return NULL;
}

static void test_cancel(void)
{
	int fds0 = ccbt_count_fds(), thr0 = ccbt_count_threads();
	fake_broker s1, s2, hole;
	struct bg_dial d;
	const char *c[3];
	pthread_t th;
	int64_t t0;

	fb_start(&s1, FB_SILENT, TG_ECHO, "1");
	fb_start(&s2, FB_SILENT, TG_ECHO, "2");
	fb_start(&hole, FB_NO_ACCEPT, TG_ECHO, "3");
	c[0] = fb_contact(&s1);
	c[1] = fb_contact(&s2);
	c[2] = fb_contact(&hole);
	memset(&d, 0, sizeof d);
	d.c = c;
	d.n = 3;
	opts_init(&d.o, 20000);
	d.o.stagger_ms = 50;
	ccb_dial_cancel_new(&d.o.cancel, NULL);
	pthread_create(&th, NULL, bg_dial_main, &d);
	sp_sleep_ms(400);
	t0 = ccb_now_ms();
	ccb_dial_cancel_fire(d.o.cancel);
	pthread_join(th, NULL);
	CU_ASSERT(ccb_now_ms() - t0 < 5000);
	CU_ASSERT_EQUAL(d.rc, CCB_ERR_CANCELLED);
	CU_ASSERT_EQUAL(d.err.code, CCB_ERR_CANCELLED);
	CU_ASSERT_PTR_NULL(d.s);
	CU_ASSERT(ccb_dial_cancel_fired(d.o.cancel));
	/* A fired token stops later dials at once. */
	CU_ASSERT_EQUAL(ccb_dial(c, 3, &d.o, &d.s, NULL), CCB_ERR_CANCELLED);
	CU_ASSERT_EQUAL(ccb_dial_sinful("<127.0.0.1:1>", &d.o, &d.s, NULL), CCB_ERR_CANCELLED);
	ccb_dial_cancel_free(d.o.cancel);
	fb_stop(&s1);
	fb_stop(&s2);
	fb_stop(&hole);
	CU_ASSERT_EQUAL(s1.requests + s2.requests, 2);
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds0);
	CU_ASSERT_EQUAL(ccbt_count_threads(), thr0);
}

/* ---- dial + CEDAR to the target ------------------------------------------- */

static void test_dial_command(void)
{
	fake_broker b;
	ccb_dial_config o;
	ccb_sec_client_config tsec = {0};
	ccb_sec_info info;
	ccb_stream *s = NULL;
	ccb_error err;
	char addr[128];
	bool authorized = false;

	fb_start(&b, FB_FORWARD, TG_SEC, "21");
	snprintf(addr, sizeof addr, "<127.0.0.1:1?CCBID=127.0.0.1:%u%%2321>", b.port);
	opts_init(&o, 10000);
	tsec.auth_methods = "CLAIMTOBE";
	tsec.claimtobe_user = "alice";
	tsec.uid_domain = "vm";
	CU_ASSERT_EQUAL_FATAL(ccb_dial_command(addr, &o, &tsec, CCB_CMD_DC_SEC_QUERY, 60020, &s, &info,
					       &err),
			      CCB_OK);
	CU_ASSERT_EQUAL(ccb_sec_client_query_reply(s, &authorized, &err), CCB_OK);
	CU_ASSERT(authorized);
	CU_ASSERT(info.encrypted);
	CU_ASSERT_EQUAL(strncmp(info.peer_version, "$CondorVersion: ", 16), 0);
	ccb_stream_free(s);
	fb_stop(&b);
	CU_ASSERT_EQUAL(b.target_rc, CCB_OK);
	/* A bad address. */
	CU_ASSERT_EQUAL(ccb_dial_sinful("<nonsense", &o, &s, &err), CCB_ERR_PARSE);
	CU_ASSERT_EQUAL(ccb_dial_sinful("<127.0.0.1:1?CCBID=x%231>", NULL, &s, &err),
			CCB_ERR_INVALID_ARG);
}

static const ccbt_test std_tests[] = {
	{"success, hello validated", test_success},
	{"success reply before the hello", test_reply_before_hello},
	{"broker sessions kept, resumed, refused and renegotiated", test_broker_sessions},
	{"impostor hello ignored", test_impostor_ignored},
	{"broker error replies", test_broker_errors},
	{"silent broker, deadline", test_silent_broker},
	{"dead broker, auth refused, bad arguments", test_dead_broker_and_auth},
	{NULL, NULL},
};

static const ccbt_test multi_tests[] = {
	{"race: dead and silent brokers do not hold the dial", test_race},
	{"all fail: every broker reported", test_all_fail_reports_each},
	{"sequential mode and stagger", test_sequential},
	{"cancellation leaves no threads or fds", test_cancel},
	{NULL, NULL},
};

static const ccbt_test mode_tests[] = {
	{"streaming", test_streaming},
	{"streaming unsupported and RequireStreaming", test_streaming_unsupported},
	{"shared-port target gets SHARED_PORT_CONNECT", test_shared_port_target},
	{"reverse connection via shared-port endpoint", test_reverse_via_endpoint},
	{"dial + CEDAR to the target", test_dial_command},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {
	{"dial standard", std_tests},
	{"dial several brokers", multi_tests},
	{"dial modes", mode_tests},
	{NULL, NULL},
};

static void *nothing(void *arg)
{
	return arg;
}

int main(void)
{
	pthread_t t;

	/* Sanitizer runtimes start a helper thread with the first thread;
	 * start it before any thread count is taken. */
	pthread_create(&t, NULL, nothing, NULL);
	pthread_join(t, NULL);
	return ccbt_run(suites);
}
