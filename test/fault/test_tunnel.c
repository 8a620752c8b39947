/* Inside-CCB tunnels on loopback (ccb-protocol.md §9.2-9.4): brokers in this
 * process, the inner ones registered upstream with CCB_OUTBOUND_NEXT_HOP; a
 * real listener behind the innermost; dials of its nested contact through
 * two and three levels; unknown route heads, hostile CCBRoute values, held
 * registration replies and their timeout, a dropped inner broker, and a
 * pre-25.13 requester's "5#42" request (§9.4). The namespace version, where
 * the path exists only through the tunnel, is test_netns_tunnel.c. */
#include <poll.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fault.h"

static ccb_sec_client_config up_sec = {
	.auth_methods = "CLAIMTOBE", .claimtobe_user = "condor", .uid_domain = "vm"};

/* A broker registered upstream with `next_hop` (NULL: a plain one). */
/* CCB_OUTBOUND_TARGET_DENYLIST of the next hop started (NULL: HTCondor's
 * default, which refuses loopback requesters on the old-client path). */
static const char *hop_denylist;

static void start_hop(bkt_broker *k, const char *next_hop, long hold_ms)
{
	ccb_broker_config c;

	bkt_config(&c, &k->sec);
	c.outbound_target_denylist = hop_denylist;
	c.security.allow[CCB_PERM_READ] = "*";
	c.outbound_next_hop = next_hop;
	c.client_security = up_sec;
	c.upstream_reconnect_interval_ms = 200;
	c.tunnel_registration_timeout_ms = hold_ms;
	bkt_start(k, &c);
}

static char *addr_of(bkt_broker *k)
{
	char *a = malloc(64);
	snprintf(a, 64, "127.0.0.1:%d", k->port);
	return a;
}

static ccb_listener *listen_at(bkt_broker *k, char **contact)
{
	ccb_listener_config c = ft_listener_config();
	char addr[64];
	ccb_listener *l;

	snprintf(addr, sizeof addr, "127.0.0.1:%d", k->port);
	c.broker = addr;
	l = ft_listener_start(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_EQUAL_FATAL(ccb_listener_wait_registered(l, 1, 10000, NULL), CCB_OK);
	ccb_listener_contact_list(l, contact, NULL);
	return l;
}

static ccb_err dial1(const char *contact)
{
	ccb_error err = {0};
	ccb_err rc = ft_dial_echo(&contact, 1, 10000, true, NULL, &err);

	if (rc)
		printf("\n    dial %s: %s", contact, err.detail);
	return rc;
}

static void test_two_levels(void)
{
	bkt_broker outer = {0}, inner = {0};
	ccb_listener *l;
	char *contact = NULL, *up, want[128];
	int ids = 0;

	start_hop(&outer, NULL, 0);
	up = addr_of(&outer);
	start_hop(&inner, up, 0);
	l = listen_at(&inner, &contact);
	printf("\n    nested contact: %s", contact);
	/* "<outer>#<inner's id>#<listener's id>" */
	snprintf(want, sizeof want, "127.0.0.1:%d", outer.port);
	CU_ASSERT_EQUAL(strncmp(contact, want, strlen(want)), 0);
	for (const char *p = contact; *p; p++)
		ids += *p == '#';
	CU_ASSERT_EQUAL(ids, 2);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(dial1(contact), CCB_OK);
	CU_ASSERT(bkt_wait_stat(inner.b, "CCBTunnelRelays", 3));
	CU_ASSERT_EQUAL(bkt_stat(inner.b, "CCBTunnelRelaysFailed"), 0);
	CU_ASSERT(bkt_wait_stat(outer.b, "CCBStreamingActive", 0));
	CU_ASSERT(bkt_wait_stat(inner.b, "CCBStreamingActive", 0));

	/* ccbctl probe shows the hops of the nested contact. */
	{
		char *sinful = NULL, *out = NULL, cfg[96];
		ccb_error e = {0};
		FILE *f;
		int rc;
		snprintf(cfg, sizeof cfg, "/tmp/ccbt-tunnel-probe-%d.json", (int)getpid());
		f = fopen(cfg, "w");
		fprintf(f, "{\"SEC_DEFAULT_AUTHENTICATION_METHODS\": \"CLAIMTOBE\", \"UID_DOMAIN\": \"vm\","
			   " \"SEC_CLAIMTOBE_USER\": \"condor\"}\n");
		fclose(f);
		CU_ASSERT_EQUAL_FATAL(ccb_listener_sinful(l, &sinful, &e), CCB_OK);
		{
			char *argv[] = {CCBCTL_PATH, "probe", "--json", "-c", cfg, sinful, NULL};
			rc = ccbt_proc_run(argv, NULL, 30000, &out);
		}
		/* The echo target is no command server: the probe's condor_ping
		 * step fails (exit 1), the path up to the hello works. */
		CU_ASSERT(rc == 0 || rc == 1);
		{
			json_t *o = out ? json_loads(out, 0, NULL) : NULL;
			json_t *hops = json_object_get(json_array_get(json_object_get(o, "paths"), 0), "hops");
			CU_ASSERT_EQUAL(json_array_size(hops), 2);
			json_t *steps = json_object_get(json_array_get(json_object_get(o, "paths"), 0), "steps");
			bool hello = false;
			for (size_t i = 0; i < json_array_size(steps); i++)
				if (!strcmp(json_string_value(json_object_get(json_array_get(steps, i), "step")), "hello"))
					hello = json_is_true(json_object_get(json_array_get(steps, i), "ok"));
			CU_ASSERT(hello);
			CU_ASSERT_PTR_NOT_NULL(json_object_get(json_array_get(hops, 0), "ms"));
			if (json_array_size(hops) != 2)
				printf("\n    probe: %s", out ? out : "(nothing)");
			json_decref(o);
		}
		free(out);
		ccb_free(sinful);
		unlink(cfg);
		ids = 0;
	}
	CU_ASSERT(bkt_wait_stat(inner.b, "CCBTunnelRelays", 4));
	/* Unknown route head at the inner broker: the pipe is dropped. */
	{
		char bad[256];
		snprintf(bad, sizeof bad, "%.*s#99999", (int)(strrchr(contact, '#') - contact), contact);
		CU_ASSERT_NOT_EQUAL(dial1(bad), CCB_OK);
		CU_ASSERT(bkt_wait_stat(inner.b, "CCBTunnelRelaysFailed", 1));
	}
	ccb_listener_free(l);
	ccb_free(contact);
	bkt_stop(&inner);
	bkt_stop(&outer);
	free(up);
}

static void test_three_levels(void)
{
	bkt_broker b0 = {0}, b1 = {0}, b2 = {0};
	ccb_listener *l;
	char *contact = NULL, *a0, *a1;
	int ids = 0;

	start_hop(&b0, NULL, 0);
	a0 = addr_of(&b0);
	start_hop(&b1, a0, 0);
	a1 = addr_of(&b1);
	start_hop(&b2, a1, 0);
	l = listen_at(&b2, &contact);
	printf("\n    nested contact: %s", contact);
	for (const char *p = contact; *p; p++)
		ids += *p == '#';
	CU_ASSERT_EQUAL(ids, 3);
	CU_ASSERT_EQUAL(dial1(contact), CCB_OK);
	CU_ASSERT(bkt_wait_stat(b1.b, "CCBTunnelRelays", 1));
	CU_ASSERT(bkt_wait_stat(b2.b, "CCBTunnelRelays", 1));
	ccb_listener_free(l);
	ccb_free(contact);
	bkt_stop(&b2);
	bkt_stop(&b1);
	bkt_stop(&b0);
	free(a0);
	free(a1);
}

/* Hostile CCBRoute values at the entry broker: "invalid tunnel route". */
static void test_hostile_routes(void)
{
	static const char *const bad[] = {"x", "1 -2", "1\t2", "1 2 3 4 5 6 7 8 9", "0x10", " ",
					  "99999999999999999999999", "1;2"};
	bkt_broker outer = {0}, inner = {0};
	ccb_listener *l;
	char *contact = NULL, *up, id[32];
	const char *p, *q;

	start_hop(&outer, NULL, 0);
	up = addr_of(&outer);
	start_hop(&inner, up, 0);
	l = listen_at(&inner, &contact);
	p = strchr(contact, '#') + 1;
	q = strchr(p, '#');
	snprintf(id, sizeof id, "%.*s", (int)(q - p), p);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ccb_stream *s = NULL;
		ccb_classad *ad = NULL;
		ccb_error e;
		bool ok = true;
		char text[256] = "";
		ccb_ad_field f[] = {CCB_AD_STRING(CCB_ATTR_CCBID, id),
				    CCB_AD_STRING(CCB_ATTR_CLAIM_ID, "hostile"),
				    CCB_AD_STRING(CCB_ATTR_MY_ADDRESS, ""),
				    CCB_AD_STRING(CCB_ATTR_NAME, "TOOL"),
				    CCB_AD_BOOL(CCB_ATTR_CCB_STREAMING_REQUIRED, true),
				    CCB_AD_STRING(CCB_ATTR_CCB_ROUTE, bad[i])};
		CU_ASSERT_EQUAL_FATAL(bkt_connect(outer.port, CCB_CMD_CCB_REQUEST, "tool", &s, &e), CCB_OK);
		CU_ASSERT_EQUAL(ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, &e), CCB_OK);
		CU_ASSERT_EQUAL(ccb_control_ad_write(s, ad, CCB_VERSION_NUM(25, 14, 0), &e), CCB_OK);
		ccb_classad_free(ad);
		CU_ASSERT_EQUAL(bkt_reply(s, &ok, text, sizeof text), CCB_OK);
		CU_ASSERT_FALSE(ok);
		if (strcmp(text, "invalid tunnel route"))
			printf("\n    route '%s': %s", bad[i], text);
		CU_ASSERT_STRING_EQUAL(text, "invalid tunnel route");
		ccb_stream_free(s);
	}
	/* Nothing reached the inner broker. */
	CU_ASSERT_EQUAL(bkt_stat(inner.b, "CCBTunnelRelays"), 0);
	CU_ASSERT_EQUAL(bkt_stat(inner.b, "CCBTunnelRelaysFailed"), 0);
	CU_ASSERT_EQUAL(dial1(contact), CCB_OK);
	ccb_listener_free(l);
	ccb_free(contact);
	bkt_stop(&inner);
	bkt_stop(&outer);
	free(up);
}

/* Registration replies wait for the tunnel; with a short timeout the
 * registrant is hung up on (never a reply without CCBID) and gets its
 * reply once the next hop exists. */
static void test_held_replies(void)
{
	bkt_broker outer = {0}, inner = {0};
	ccb_listener_config c = ft_listener_config();
	ccb_listener *l;
	char addr[64], up[64], *contact;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof sa;

	/* A next-hop port nobody listens on yet. */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	getsockname(fd, (struct sockaddr *)&sa, &len);
	port = ntohs(sa.sin_port);
	close(fd);
	snprintf(up, sizeof up, "127.0.0.1:%d", port);
	start_hop(&inner, up, 600);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", inner.port);
	c.broker = addr;
	l = ft_listener_start(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_EQUAL(ccb_listener_wait_registered(l, 1, 1500, NULL), CCB_ERR_TIMEOUT);
	CU_ASSERT(bkt_wait_stat(inner.b, "CCBEndpointsConnected", 0));
	/* Now the next hop comes up on that port. */
	{
		ccb_broker_config bc;
		char listen[64];
		bkt_config(&bc, &outer.sec);
		bc.security.allow[CCB_PERM_READ] = "*";
		snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
		bc.listen = listen;
		bkt_start(&outer, &bc);
	}
	CU_ASSERT_EQUAL(ccb_listener_wait_registered(l, 1, 15000, NULL), CCB_OK);
	ccb_listener_contact_list(l, &contact, NULL);
	CU_ASSERT(contact && strstr(contact, up) == contact);
	CU_ASSERT_EQUAL(dial1(contact), CCB_OK);
	ccb_free(contact);
	ccb_listener_free(l);
	bkt_stop(&inner);
	bkt_stop(&outer);
}

/* The inner broker goes away: dials fail cleanly, the outer broker drops
 * its registration and holds nothing. */
static void test_inner_dropped(void)
{
	bkt_broker outer = {0}, inner = {0};
	ccb_listener *l;
	char *contact = NULL, *up;
	int fds;

	start_hop(&outer, NULL, 0);
	up = addr_of(&outer);
	fds = ccbt_count_fds();
	start_hop(&inner, up, 0);
	l = listen_at(&inner, &contact);
	CU_ASSERT_EQUAL(dial1(contact), CCB_OK);
	CU_ASSERT(bkt_wait_stat(outer.b, "CCBEndpointsConnected", 1));
	ccb_listener_free(l);
	bkt_stop(&inner);
	CU_ASSERT(bkt_wait_stat(outer.b, "CCBEndpointsConnected", 0));
	CU_ASSERT_NOT_EQUAL(dial1(contact), CCB_OK);
	CU_ASSERT(bkt_wait_stat(outer.b, "CCBStreamingHandshakesActive", 0));
	CU_ASSERT(bkt_wait_stat(outer.b, "CCBStreamingActive", 0));
	CU_ASSERT(ft_settle(fds, -1, 5000));
	ccb_free(contact);
	bkt_stop(&outer);
	free(up);
}

/* §9.4: a pre-25.13 requester sends CCBID "5#42" without streaming; the
 * entry broker dials it, sends the hello, replies, and relays down the
 * tunnel. */
static void test_old_client(void)
{
	bkt_broker outer = {0}, inner = {0};
	ccb_listener *l;
	char *contact = NULL, *up, my[64], ccbid[64];
	int lfd = socket(AF_INET, SOCK_STREAM, 0), afd;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof sa;
	ccb_stream *req = NULL, *rev = NULL;
	ccb_classad *hello = NULL;
	ccb_error e = {0};
	bool ok = false;
	char text[256];
	int64_t v = 0;

	/* Our requester is on loopback, which the default deny list refuses
	 * (test_old_client_not_permitted). */
	hop_denylist = "::2";
	start_hop(&outer, NULL, 0);
	hop_denylist = NULL;
	up = addr_of(&outer);
	start_hop(&inner, up, 0);
	l = listen_at(&inner, &contact);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CU_ASSERT_EQUAL_FATAL(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	listen(lfd, 4);
	getsockname(lfd, (struct sockaddr *)&sa, &len);
	snprintf(my, sizeof my, "<127.0.0.1:%d>", ntohs(sa.sin_port));
	snprintf(ccbid, sizeof ccbid, "%s", strchr(contact, '#') + 1);
	CU_ASSERT_EQUAL_FATAL(bkt_request(outer.port, ccbid, my, "oldclientid", false, &req), CCB_OK);
	CU_ASSERT_FATAL(poll(&(struct pollfd){.fd = lfd, .events = POLLIN}, 1, 10000) == 1);
	afd = accept(lfd, NULL, NULL);
	CU_ASSERT_FATAL(afd >= 0);
	CU_ASSERT_EQUAL_FATAL(ccb_stream_new(afd, &rev, &e), CCB_OK);
	ccb_stream_set_timeout(rev, 10000);
	CU_ASSERT_EQUAL(ccb_hello_read(rev, "oldclientid", &hello, &e), CCB_OK);
	/* {ClaimId, MyAddress = the broker} and nothing else (srv:1730-1745). */
	{
		const char *ma = ccb_ad_string_or(hello, CCB_ATTR_MY_ADDRESS, "");
		char want[64];
		snprintf(want, sizeof want, "<127.0.0.1:%d", outer.port);
		CU_ASSERT_EQUAL(strncmp(ma, want, strlen(want)), 0);
		CU_ASSERT_PTR_NULL(ccb_ad_string_or(hello, CCB_ATTR_REQUEST_ID, NULL));
	}
	ccb_classad_free(hello);
	CU_ASSERT_EQUAL(bkt_reply(req, &ok, text, sizeof text), CCB_OK);
	CU_ASSERT(ok);
	/* The echo through the tunnel. */
	CU_ASSERT_EQUAL(ccb_stream_put_int(rev, 41), CCB_OK);
	CU_ASSERT_EQUAL(ccb_stream_end_message(rev), CCB_OK);
	CU_ASSERT_EQUAL(ccb_stream_get_int(rev, &v), CCB_OK);
	CU_ASSERT_EQUAL(v, 42);
	ccb_stream_free(rev);
	ccb_stream_free(req);
	CU_ASSERT(bkt_wait_stat(inner.b, "CCBTunnelRelays", 1));
	/* Unknown head: "no route to tunneled target". */
	CU_ASSERT_EQUAL_FATAL(bkt_request(outer.port, "999#1", my, "oldclient2", false, &req), CCB_OK);
	CU_ASSERT_EQUAL(bkt_reply(req, &ok, text, sizeof text), CCB_OK);
	CU_ASSERT_FALSE(ok);
	CU_ASSERT_STRING_EQUAL(text, "no route to tunneled target");
	ccb_stream_free(req);
	/* A malformed nested id: the same answer (srv:1600-1620). */
	CU_ASSERT_EQUAL_FATAL(bkt_request(outer.port, "1#x#2", my, "oldclient3", false, &req), CCB_OK);
	CU_ASSERT_EQUAL(bkt_reply(req, &ok, text, sizeof text), CCB_OK);
	CU_ASSERT_FALSE(ok);
	CU_ASSERT_STRING_EQUAL(text, "no route to tunneled target");
	ccb_stream_free(req);
	/* The entry broker counts no tunnel relay of its own for old clients. */
	CU_ASSERT_EQUAL(bkt_stat(outer.b, "CCBTunnelRelays"), 0);
	close(lfd);
	ccb_listener_free(l);
	ccb_free(contact);
	bkt_stop(&inner);
	bkt_stop(&outer);
	free(up);
}

/* The old-client path dials the requester's MyAddress: the outbound deny
 * and allow lists guard it (srv:1620-1634), so with HTCondor's default
 * deny list a loopback requester is refused, not dialed. */
static void test_old_client_not_permitted(void)
{
	bkt_broker outer = {0}, inner = {0};
	ccb_listener *l;
	char *contact = NULL, *up, my[64], ccbid[64], text[256];
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof sa;
	ccb_stream *req = NULL;
	bool ok = true;

	start_hop(&outer, NULL, 0);
	up = addr_of(&outer);
	start_hop(&inner, up, 0);
	l = listen_at(&inner, &contact);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CU_ASSERT_EQUAL_FATAL(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	listen(lfd, 4);
	getsockname(lfd, (struct sockaddr *)&sa, &len);
	snprintf(my, sizeof my, "<127.0.0.1:%d>", ntohs(sa.sin_port));
	snprintf(ccbid, sizeof ccbid, "%s", strchr(contact, '#') + 1);
	CU_ASSERT_EQUAL_FATAL(bkt_request(outer.port, ccbid, my, "oldclient4", false, &req), CCB_OK);
	CU_ASSERT_EQUAL(bkt_reply(req, &ok, text, sizeof text), CCB_OK);
	CU_ASSERT_FALSE(ok);
	CU_ASSERT_STRING_EQUAL(text, "target not permitted");
	/* Nothing dialed us. */
	CU_ASSERT_EQUAL(poll(&(struct pollfd){.fd = lfd, .events = POLLIN}, 1, 0), 0);
	ccb_stream_free(req);
	close(lfd);
	ccb_listener_free(l);
	ccb_free(contact);
	bkt_stop(&inner);
	bkt_stop(&outer);
	free(up);
}

static const ccbt_test tests[] = {
	{"two levels: nested contact, relays, unknown route head", test_two_levels},
	{"three levels", test_three_levels},
	{"hostile CCBRoute values at the entry broker", test_hostile_routes},
	{"registration replies held until the tunnel is up", test_held_replies},
	{"inner broker dropped: outer recovers, nothing leaks", test_inner_dropped},
	{"pre-25.13 requester: nested CCBID without streaming", test_old_client},
	{"pre-25.13 requester: MyAddress refused by the deny list", test_old_client_not_permitted},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"fault tunnel", tests}, {NULL, NULL}};

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return ccbt_run(suites);
}
