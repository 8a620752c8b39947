/* The outbound proxy, CCB_PROXY_CONNECT (82): the allow/deny matrix, the
 * request's texts, authorization, a relay to a plain target and a CEDAR
 * command to a real daemon through it, TTL across a chain of three brokers
 * (CCBTTL 0 is sent), caps and duplicate ids shared with streaming, the
 * requester's exceptions (ccb-protocol.md §9.1, §12). Loopback only. */
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>

#include "bktest.h"
#include "ccb/attributes.h"
#include "ccb/dial.h"
#include "outbound.h"

static int fds_before;

/* ---- helpers ------------------------------------------------------------------- */

static void ob_config(ccb_broker_config *c, ccb_sec_server_config *sec)
{
	bkt_config(c, sec);
	c->outbound_proxy = true;
	c->outbound_target_denylist = ""; /* loopback targets in these tests */
}

static ccb_sec_client_config client_sec;

/* Send CCB_PROXY_CONNECT {MyAddress, ClaimId, CCBTTL (if ttl >= 0)} as
 * `user`; the stream stays open for the reply. */
static ccb_err proxy_request(int port, const char *user, const char *target, const char *cid,
			     int ttl, ccb_stream **s)
{
	ccb_classad *ad = NULL;
	ccb_error e;
	ccb_err rc;
	ccb_ad_field f[] = {CCB_AD_STRING(CCB_ATTR_MY_ADDRESS, target),
			    CCB_AD_STRING(CCB_ATTR_CLAIM_ID, cid), CCB_AD_STRING(CCB_ATTR_NAME, "TOOL"),
			    CCB_AD_INT(CCB_ATTR_CCB_TTL, ttl)};

	if ((rc = bkt_connect(port, CCB_CMD_CCB_PROXY_CONNECT, user, s, &e)))
		return rc;
	if ((rc = ccb_ad_new(f, ttl >= 0 ? 4 : 3, &ad, &e)) == CCB_OK)
		rc = ccb_control_ad_write(*s, ad, 0, &e);
	ccb_classad_free(ad);
	return rc;
}

/* Whole exchange; `text` gets ErrorString ("" on success); *relay the
 * relayed fd on success (else -1). */
static bool proxy_connect(int port, const char *target, int ttl, char *text, size_t len, int *relay)
{
	ccb_stream *s = NULL;
	char cid[CCB_CONNECT_ID_SIZE];
	bool ok = false;
	ccb_classad *reply = NULL;

	*relay = -1;
	text[0] = '\0';
	ccb_connect_id_new(cid, NULL);
	CU_ASSERT_EQUAL_FATAL(proxy_request(port, "condor", target, cid, ttl, &s), CCB_OK);
	ccb_stream_set_timeout(s, 30000);
	CU_ASSERT_EQUAL_FATAL(ccb_control_ad_read(s, &reply, NULL), CCB_OK);
	ok = ccb_ad_bool_or(reply, CCB_ATTR_RESULT, false);
	snprintf(text, len, "%s", ccb_ad_string_or(reply, CCB_ATTR_ERROR_STRING, ""));
	if (ok) {
		/* Success carries Result only: no ErrorString, no ProxyMode. */
		CU_ASSERT_PTR_NULL(ccb_ad_string_or(reply, CCB_ATTR_ERROR_STRING, NULL));
		CU_ASSERT(!ccb_ad_bool_or(reply, CCB_ATTR_PROXY_MODE, false));
		CU_ASSERT_EQUAL(ccb_stream_detach_fd(s, relay), CCB_OK);
		if (*relay >= 0) /* streams leave their fd non-blocking */
			fcntl(*relay, F_SETFL, fcntl(*relay, F_GETFL) & ~O_NONBLOCK);
	}
	ccb_classad_free(reply);
	ccb_stream_free(s);
	return ok;
}

static void expect_refused(int port, const char *target, int ttl, const char *want)
{
	char text[256];
	int fd;

	CU_ASSERT(!proxy_connect(port, target, ttl, text, sizeof text, &fd));
	CU_ASSERT_STRING_EQUAL(text, want);
}

/* A plain TCP target: accepts one connection, echoes it upper-cased. */
typedef struct echo {
	int lfd;
	uint16_t port;
	pthread_t t;
	char sinful[64];
} echo;

static void *echo_main(void *arg)
{
	echo *e = arg;
	int fd = accept(e->lfd, NULL, NULL);
	char buf[256];
	ssize_t n;

	if (fd < 0)
		return NULL;
	while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] >= 'a' && buf[i] <= 'z')
				buf[i] = (char)(buf[i] - 32);
		if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
			break;
	}
	close(fd);
	return NULL;
}

static void echo_start(echo *e)
{
	e->lfd = ccbt_listen(&e->port);
	snprintf(e->sinful, sizeof e->sinful, "<127.0.0.1:%u>", e->port);
	pthread_create(&e->t, NULL, echo_main, e);
}

static void echo_stop(echo *e)
{
	shutdown(e->lfd, SHUT_RDWR);
	pthread_join(e->t, NULL);
	close(e->lfd);
}

static void expect_echo(int fd)
{
	char buf[16] = "";
	size_t got = 0;

	CU_ASSERT_EQUAL(send(fd, "hello", 5, MSG_NOSIGNAL), 5);
	while (got < 5) {
		ssize_t n = recv(fd, buf + got, 5 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	CU_ASSERT_EQUAL(got, 5);
	CU_ASSERT_NSTRING_EQUAL(buf, "HELLO", 5);
}

/* ---- the target check ------------------------------------------------------------ */

static void test_matrix(void)
{
	static const struct {
		const char *target, *allow, *deny;
		bool ok;
	} m[] = {
		/* HTCondor's defaults: allow "*", deny loopback and link-local. */
		{"<127.0.0.1:9618>", NULL, NULL, false},
		{"<127.1.2.3:9618>", NULL, NULL, false},
		{"<[::1]:9618>", NULL, NULL, false},
		{"<169.254.10.1:9618>", NULL, NULL, false},
		{"<[fe80::1]:9618>", NULL, NULL, false},
		{"<localhost:9618>", NULL, NULL, false}, /* the name and its address */
		{"<10.1.2.3:9618>", NULL, NULL, true},
		{"<[2001:db8::5]:9618>", NULL, NULL, true},
		{"<192.0.2.7:9618?sock=collector>", NULL, NULL, true},
		/* An empty allow-list permits nothing; an empty deny-list denies nothing. */
		{"<10.1.2.3:9618>", "", NULL, false},
		{"<127.0.0.1:9618>", "*", "", true},
		/* CIDR, exact address, IPv6 CIDR. */
		{"<10.1.2.3:9618>", "10.0.0.0/8", "", true},
		{"<11.1.2.3:9618>", "10.0.0.0/8", "", false},
		{"<10.1.2.3:9618>", "10.1.2.3", "", true},
		{"<10.1.2.4:9618>", "10.1.2.3", "", false},
		{"<[2001:db8::5]:9618>", "2001:db8::/32", "", true},
		{"<[2001:db9::5]:9618>", "2001:db8::/32", "", false},
		{"<10.1.2.3:9618>", "192.168.0.0/16, 10.1.0.0/16", "", true},
		/* Deny wins over allow. */
		{"<10.1.2.3:9618>", "10.0.0.0/8", "10.1.0.0/16", false},
		{"<10.2.2.3:9618>", "10.0.0.0/8", "10.1.0.0/16", true},
		/* Globs on the host text, any case; a name's addresses meet the CIDRs. */
		{"<LocalHost:9618>", "local*", "", true},
		{"<localhost:9618>", "*", "127.0.0.0/8", false},
		{"<localhost:9618>", "127.0.0.1", "", true},
		{"<localhost:9618>", "*.example.com", "", false},
		/* Not an address. */
		{"not a sinful", NULL, NULL, false},
		{"", "*", "", false},
	};
	char why[128];

	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
		bool ok = ccb__outbound_target_allowed(m[i].target, m[i].allow, m[i].deny, why, sizeof why);
		if (ok != m[i].ok)
			fprintf(stderr, "matrix %zu: %s allow=%s deny=%s: got %d (%s)\n", i, m[i].target,
				m[i].allow ? m[i].allow : "(default)", m[i].deny ? m[i].deny : "(default)",
				ok, why);
		CU_ASSERT_EQUAL(ok, m[i].ok);
	}
}

static void test_parse(void)
{
	ccb_classad *ad = NULL;
	const char *t, *c;
	long long ttl;
	ccb_ad_field f[] = {CCB_AD_STRING(CCB_ATTR_MY_ADDRESS, "<10.0.0.1:1>"),
			    CCB_AD_STRING(CCB_ATTR_CLAIM_ID, "42"), CCB_AD_INT(CCB_ATTR_CCB_TTL, 3)};

	CU_ASSERT_EQUAL_FATAL(ccb_ad_new(f, 3, &ad, NULL), CCB_OK);
	CU_ASSERT_PTR_NULL(ccb__outbound_parse(ad, 8, &t, &c, &ttl));
	CU_ASSERT_EQUAL(ttl, 3);
	/* A request only lowers the local budget. */
	CU_ASSERT_PTR_NULL(ccb__outbound_parse(ad, 2, &t, &c, &ttl));
	CU_ASSERT_EQUAL(ttl, 2);
	ccb_classad_free(ad);
	/* Without CCBTTL: the local budget. */
	CU_ASSERT_EQUAL_FATAL(ccb_ad_new(f, 2, &ad, NULL), CCB_OK);
	CU_ASSERT_PTR_NULL(ccb__outbound_parse(ad, 5, &t, &c, &ttl));
	CU_ASSERT_EQUAL(ttl, 5);
	ccb_classad_free(ad);
	CU_ASSERT_EQUAL_FATAL(ccb_ad_new(f + 1, 2, &ad, NULL), CCB_OK);
	CU_ASSERT_STRING_EQUAL(ccb__outbound_parse(ad, 8, &t, &c, &ttl),
			       "missing target address or connect id");
	ccb_classad_free(ad);
}

static void test_bypass(void)
{
	/* HTCondor's exceptions: loopback, local, this host's name, the brokers. */
	CU_ASSERT(ccb__outbound_bypass("<127.0.0.1:5>", "10.9.9.9:9618"));
	CU_ASSERT(ccb__outbound_bypass("<127.0.0.5:5>", "10.9.9.9:9618"));
	CU_ASSERT(ccb__outbound_bypass("<[::1]:5>", "10.9.9.9:9618"));
	CU_ASSERT(ccb__outbound_bypass("<localhost:5>", "10.9.9.9:9618"));
	CU_ASSERT(ccb__outbound_bypass("<10.9.9.9:9618>", "10.9.9.8:1 <10.9.9.9:9618>"));
	CU_ASSERT(ccb__outbound_bypass("<10.9.9.9:9618>", "10.9.9.9")); /* default port */
	CU_ASSERT(!ccb__outbound_bypass("<10.9.9.9:1234>", "10.9.9.9:9618"));
	CU_ASSERT(!ccb__outbound_bypass("<192.0.2.1:5?sock=x>", "10.9.9.9:9618"));
}

/* ---- the broker -------------------------------------------------------------------- */

static void test_relay_and_texts(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	echo e;
	char text[256], other[64];
	int fd;

	fds_before = ccbt_count_fds();
	ob_config(&cfg, &k.sec);
	cfg.outbound_target_allowlist = "127.0.0.1";
	bkt_start(&k, &cfg);
	echo_start(&e);
	CU_ASSERT(proxy_connect(k.port, e.sinful, 8, text, sizeof text, &fd));
	if (fd >= 0) {
		expect_echo(fd);
		close(fd);
	}
	echo_stop(&e);
	CU_ASSERT(bkt_wait_stat(k.b, "CCBStreamingActive", 0));
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBOutboundRequests"), 1);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBStreamingSessions"), 1);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBOutboundFailed"), 0);
	/* Not in the allow-list. */
	snprintf(other, sizeof other, "<127.0.0.2:%u>", e.port);
	expect_refused(k.port, other, 8, "target not permitted by this broker");
	/* Nobody listens: the dial fails. */
	expect_refused(k.port, e.sinful, 8, "outbound connection to target failed");
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBOutboundFailed"), 1);
	/* Missing connect id. */
	{
		ccb_stream *s = NULL;
		bool ok = true;
		CU_ASSERT_EQUAL_FATAL(proxy_request(k.port, "condor", e.sinful, "", 8, &s), CCB_OK);
		CU_ASSERT_EQUAL(bkt_reply(s, &ok, text, sizeof text), CCB_OK);
		CU_ASSERT(!ok);
		CU_ASSERT_STRING_EQUAL(text, "missing target address or connect id");
		ccb_stream_free(s);
	}
	/* DAEMON authorization: "nobody" is refused at the handshake. */
	{
		ccb_stream *s = NULL;
		ccb_error er;
		CU_ASSERT_NOT_EQUAL(bkt_connect(k.port, CCB_CMD_CCB_PROXY_CONNECT, "nobody", &s, &er),
				    CCB_OK);
		ccb_stream_free(s);
	}
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBOutboundRequests"), 4);
	bkt_stop(&k);

	/* HTCondor's default deny-list refuses loopback. */
	bkt_config(&cfg, &k.sec);
	cfg.outbound_proxy = true;
	bkt_start(&k, &cfg);
	expect_refused(k.port, "<127.0.0.1:9>", 8, "target not permitted by this broker");
	expect_refused(k.port, "<localhost:9>", 8, "target not permitted by this broker");
	bkt_stop(&k);

	/* Off by default: the command is not served. */
	bkt_config(&cfg, &k.sec);
	bkt_start(&k, &cfg);
	{
		ccb_stream *s = NULL;
		ccb_error er;
		CU_ASSERT_NOT_EQUAL(bkt_connect(k.port, CCB_CMD_CCB_PROXY_CONNECT, "condor", &s, &er),
				    CCB_OK);
		ccb_stream_free(s);
	}
	bkt_stop(&k);
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds_before);
}

/* The library's requester: a CEDAR command to a real daemon (a second
 * broker's status query) runs end to end over the relay. */
static void test_dial_command_through(void)
{
	ccb_broker_config cfg;
	bkt_broker proxy = {0}, target = {0};
	ccb_sec_client_config sc = bkt_client("condor");
	ccb_dial_info info;
	ccb_dial_config o = {0};
	ccb_stream *s = NULL;
	ccb_error e = {0};
	char addr[64], *json = NULL;

	fds_before = ccbt_count_fds();
	ob_config(&cfg, &proxy.sec);
	bkt_start(&proxy, &cfg);
	bkt_config(&cfg, &target.sec);
	bkt_start(&target, &cfg);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", proxy.port);
	o.broker_sec = &sc;
	o.outbound_ccb_address = addr;
	o.outbound_force = true; /* loopback would be dialed directly */
	o.info = &info;
	o.timeout_ms = 20000;
	{
		char tsin[64];
		snprintf(tsin, sizeof tsin, "<127.0.0.1:%d>", target.port);
		ccb_err rc = ccb_dial_command(tsin, &o, &sc, CCB_CMD_LIBCCB_STATUS, 0, &s, NULL, &e);
		if (rc)
			fprintf(stderr, "dial_command: %s\n", e.detail);
		CU_ASSERT_EQUAL_FATAL(rc, CCB_OK);
	}
	CU_ASSERT(info.outbound);
	CU_ASSERT_STRING_EQUAL(info.broker, addr);
	CU_ASSERT_EQUAL(ccb_stream_get_string(s, &json), CCB_OK);
	CU_ASSERT_PTR_NOT_NULL(json);
	if (json)
		CU_ASSERT_PTR_NOT_NULL(strstr(json, ccb_broker_address(target.b)));
	ccb_free(json);
	ccb_stream_free(s);
	CU_ASSERT_EQUAL(bkt_stat(proxy.b, "CCBOutboundRequests"), 1);
	/* Without outbound_force the loopback target is reached directly. */
	o.outbound_force = false;
	{
		char tsin[64];
		snprintf(tsin, sizeof tsin, "<127.0.0.1:%d>", target.port);
		CU_ASSERT_EQUAL(ccb_dial_command(tsin, &o, &sc, CCB_CMD_DC_NOP, 0, &s, NULL, &e), CCB_OK);
		CU_ASSERT(!info.outbound);
		ccb_stream_free(s);
	}
	CU_ASSERT_EQUAL(bkt_stat(proxy.b, "CCBOutboundRequests"), 1);
	/* A refusal reaches the caller with the broker's text; no fall-back. */
	o.outbound_force = true;
	{
		ccb_err rc = ccb_dial_sinful("<127.0.0.1:1>", &o, &s, &e);
		CU_ASSERT_EQUAL(rc, CCB_ERR_NO_BROKER);
		CU_ASSERT_PTR_NOT_NULL(strstr(e.detail, "outbound connection to target failed"));
	}
	bkt_stop(&proxy);
	bkt_stop(&target);
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds_before);
}

/* A -> B -> C: each forwards with CCBTTL - 1; the exit dials. */
static void test_ttl_chain(void)
{
	ccb_broker_config cfg;
	bkt_broker k[3] = {{0}};
	ccb_sec_client_config sc = bkt_client("condor");
	char hop[2][64], text[256];
	echo e;
	int fd;

	fds_before = ccbt_count_fds();
	for (int i = 2; i >= 0; i--) {
		ob_config(&cfg, &k[i].sec);
		cfg.client_security = sc;
		if (i < 2)
			cfg.outbound_next_hop = hop[i];
		if (i == 0)
			cfg.outbound_proxy = false; /* implied by the next hop */
		bkt_start(&k[i], &cfg);
		if (i > 0)
			snprintf(hop[i - 1], sizeof hop[i - 1], "127.0.0.1:%d", k[i].port);
	}
	echo_start(&e);
	/* TTL 2 reaches the exit (A: 2, B: 1, C: 0 and dials). */
	CU_ASSERT(proxy_connect(k[0].port, e.sinful, 2, text, sizeof text, &fd));
	if (fd >= 0) {
		expect_echo(fd);
		close(fd);
	}
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(bkt_stat(k[i].b, "CCBOutboundRequests"), 1);
	CU_ASSERT_EQUAL(bkt_stat(k[0].b, "CCBOutboundForwarded"), 1);
	CU_ASSERT_EQUAL(bkt_stat(k[1].b, "CCBOutboundForwarded"), 1);
	CU_ASSERT_EQUAL(bkt_stat(k[2].b, "CCBOutboundForwarded"), 0);
	/* TTL 1: B gets CCBTTL = 0 (sent, not left out) and refuses. */
	expect_refused(k[0].port, e.sinful, 1, "outbound connection to target failed");
	CU_ASSERT_EQUAL(bkt_stat(k[1].b, "CCBOutboundRequests"), 2);
	CU_ASSERT_EQUAL(bkt_stat(k[1].b, "CCBOutboundFailed"), 1);
	CU_ASSERT_EQUAL(bkt_stat(k[2].b, "CCBOutboundRequests"), 1);
	/* TTL 0 at a forwarding broker: refused there. */
	expect_refused(k[0].port, e.sinful, 0, "outbound proxy TTL expired");
	CU_ASSERT_EQUAL(bkt_stat(k[0].b, "CCBOutboundFailed"), 2);
	CU_ASSERT_EQUAL(bkt_stat(k[1].b, "CCBOutboundRequests"), 2);
	echo_stop(&e);
	for (int i = 0; i < 3; i++)
		bkt_stop(&k[i]);

	/* The local budget caps a larger request: A's TTL 1 forwards 0. */
	for (int i = 1; i >= 0; i--) {
		ob_config(&cfg, &k[i].sec);
		cfg.client_security = sc;
		if (i == 0) {
			cfg.outbound_next_hop = hop[0];
			cfg.outbound_ttl = 1;
		} else {
			cfg.outbound_next_hop = "127.0.0.1:1"; /* never reached */
		}
		bkt_start(&k[i], &cfg);
		if (i == 1)
			snprintf(hop[0], sizeof hop[0], "127.0.0.1:%d", k[1].port);
	}
	expect_refused(k[0].port, "<127.0.0.1:9>", 8, "outbound connection to target failed");
	CU_ASSERT_EQUAL(bkt_stat(k[1].b, "CCBOutboundFailed"), 1);
	CU_ASSERT_EQUAL(bkt_stat(k[1].b, "CCBOutboundForwarded"), 0);
	for (int i = 0; i < 2; i++)
		bkt_stop(&k[i]);
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds_before);
}

/* A target reached through a CCB that never answers: the dial stays
 * pending (its thread waits in the security handshake) until the broker
 * stops and cancels it. */
static void pending_target(int silent_port, char *buf, size_t len)
{
	snprintf(buf, len, "<127.0.0.1:9?CCBID=127.0.0.1:%d#1>", silent_port);
}

static void test_caps_and_duplicates(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	ccb_sec_client_config sc = bkt_client("condor");
	uint16_t sport;
	int silent;
	char target[96], cid[CCB_CONNECT_ID_SIZE], text[256];
	ccb_stream *pending = NULL;
	bkt_listener l;

	fds_before = ccbt_count_fds();
	silent = ccbt_listen(&sport); /* never accepts: connects complete, nothing answers */
	pending_target(sport, target, sizeof target);

	/* Duplicate ids, within outbound and across to streaming. */
	ob_config(&cfg, &k.sec);
	cfg.client_security = sc;
	bkt_start(&k, &cfg);
	ccb_connect_id_new(cid, NULL);
	CU_ASSERT_EQUAL_FATAL(proxy_request(k.port, "condor", target, cid, 8, &pending), CCB_OK);
	CU_ASSERT(bkt_wait_stat(k.b, "CCBStreamingHandshakesActive", 1));
	{
		ccb_stream *s = NULL;
		bool ok = true;
		CU_ASSERT_EQUAL_FATAL(proxy_request(k.port, "condor", target, cid, 8, &s), CCB_OK);
		CU_ASSERT_EQUAL(bkt_reply(s, &ok, text, sizeof text), CCB_OK);
		CU_ASSERT(!ok);
		CU_ASSERT_STRING_EQUAL(text, "duplicate connect id");
		ccb_stream_free(s);
	}
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &l), CCB_OK);
	{
		ccb_stream *s = NULL;
		bool ok = true;
		CU_ASSERT_EQUAL_FATAL(bkt_request(k.port, "1", "", cid, true, &s), CCB_OK);
		CU_ASSERT_EQUAL(bkt_reply(s, &ok, text, sizeof text), CCB_OK);
		CU_ASSERT(!ok);
		CU_ASSERT_STRING_EQUAL(text, "duplicate connect id");
		ccb_stream_free(s);
	}
	bkt_listener_close(&l);
	/* Stopping cancels the pending dial; its requester is closed. */
	bkt_stop(&k);
	ccb_stream_free(pending);
	pending = NULL;

	/* Handshake cap. */
	ob_config(&cfg, &k.sec);
	cfg.client_security = sc;
	cfg.max_streaming_handshakes = 1;
	bkt_start(&k, &cfg);
	ccb_connect_id_new(cid, NULL);
	CU_ASSERT_EQUAL_FATAL(proxy_request(k.port, "condor", target, cid, 8, &pending), CCB_OK);
	CU_ASSERT(bkt_wait_stat(k.b, "CCBStreamingHandshakesActive", 1));
	expect_refused(k.port, "<127.0.0.1:9>", 8, "CCB handshake limit reached on the broker");
	bkt_stop(&k);
	ccb_stream_free(pending);
	pending = NULL;

	/* A forward whose next hop accepts and never answers: pending until
	 * the broker stops and shuts the next hop's socket down. */
	{
		char hop[64];
		snprintf(hop, sizeof hop, "127.0.0.1:%u", sport);
		ob_config(&cfg, &k.sec);
		cfg.client_security = sc;
		cfg.outbound_next_hop = hop;
		bkt_start(&k, &cfg);
		ccb_connect_id_new(cid, NULL);
		CU_ASSERT_EQUAL_FATAL(proxy_request(k.port, "condor", "<127.0.0.1:9>", cid, 8, &pending),
				      CCB_OK);
		CU_ASSERT(bkt_wait_stat(k.b, "OutboundDialsActive", 1));
		CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBOutboundForwarded"), 1);
		bkt_stop(&k);
		ccb_stream_free(pending);
		pending = NULL;
	}

	/* Session cap. */
	ob_config(&cfg, &k.sec);
	cfg.client_security = sc;
	cfg.max_streaming_sessions = 1;
	bkt_start(&k, &cfg);
	ccb_connect_id_new(cid, NULL);
	CU_ASSERT_EQUAL_FATAL(proxy_request(k.port, "condor", target, cid, 8, &pending), CCB_OK);
	CU_ASSERT(bkt_wait_stat(k.b, "CCBStreamingHandshakesActive", 1));
	expect_refused(k.port, "<127.0.0.1:9>", 8, "CCB session limit reached on the broker");
	bkt_stop(&k);
	ccb_stream_free(pending);
	close(silent);
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds_before);
}

static const ccbt_test tests[] = {
	{"allow/deny matrix", test_matrix},
	{"request parsing and TTL clamp", test_parse},
	{"requester exceptions", test_bypass},
	{"relay, texts, authorization, default off", test_relay_and_texts},
	{"CEDAR command through the outbound broker", test_dial_command_through},
	{"TTL across a chain of three brokers", test_ttl_chain},
	{"caps and duplicate ids", test_caps_and_duplicates},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"broker outbound proxy", tests}, {NULL, NULL}};

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	(void)client_sec;
	return ccbt_run(suites);
}
