/* The exit broker of an outbound proxy dials through the full connect path
 * (ccb-protocol.md §9.1): a CCB-routed target (a real ccb_listener behind
 * a second broker), a target behind a shared-port server (sock=), and a
 * forwarding broker whose next hop is gone (clear failure, nothing leaks).
 * Loopback only. */
#include "fault.h"

#include "ccb/sharedport.h"

static ccb_sec_client_config daemon_sec = {
	.auth_methods = "CLAIMTOBE", .claimtobe_user = "condor", .uid_domain = "vm"};

static void start_proxy(bkt_broker *k, const char *next_hop)
{
	ccb_broker_config cfg;

	bkt_config(&cfg, &k->sec);
	cfg.outbound_proxy = true;
	cfg.outbound_target_denylist = ""; /* loopback targets here */
	cfg.client_security = daemon_sec;
	cfg.outbound_next_hop = next_hop;
	bkt_start(k, &cfg);
}

/* Through `proxy`: send an int, expect it + 1 back (the echo handlers). */
static ccb_err echo_through(int proxy_port, const char *target, ccb_error *err)
{
	ccb_dial_config o = {0};
	ccb_dial_info info;
	ccb_stream *s = NULL;
	char broker[64];
	int64_t v = 0;
	ccb_err rc;

	snprintf(broker, sizeof broker, "127.0.0.1:%d", proxy_port);
	o.broker_sec = &daemon_sec;
	o.outbound_ccb_address = broker;
	o.outbound_force = true;
	o.timeout_ms = 15000;
	o.info = &info;
	if ((rc = ccb_dial_sinful(target, &o, &s, err)))
		return rc;
	CU_ASSERT(info.outbound);
	ccb_stream_set_timeout(s, 5000);
	if (ccb_stream_put_int(s, 41) || ccb_stream_end_message(s) || ccb_stream_get_int(s, &v) ||
	    ccb_stream_end_of_message(s) || v != 42)
		rc = ccb_error_set(err, CCB_ERR_PROTOCOL, "echo through the relay failed");
	ccb_stream_free(s);
	return rc;
}

static void test_ccb_routed_target(void)
{
	bkt_broker proxy = {0}, ccb = {0};
	ccb_broker_config cfg;
	ccb_listener_config lc = ft_listener_config();
	ccb_listener *l;
	char addr[64], *sinful = NULL;
	ccb_error e = {0};
	int fds = ccbt_count_fds();

	bkt_config(&cfg, &ccb.sec);
	bkt_start(&ccb, &cfg);
	start_proxy(&proxy, NULL);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", ccb.port);
	lc.broker = addr;
	l = ft_listener_start(&lc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_EQUAL_FATAL(ccb_listener_wait_registered(l, 1, 10000, NULL), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(ccb_listener_sinful(l, &sinful, &e), CCB_OK);
	CU_ASSERT_PTR_NOT_NULL(strstr(sinful, "CCBID="));
	{
		ccb_err rc = echo_through(proxy.port, sinful, &e);
		if (rc)
			fprintf(stderr, "through the proxy to %s: %s\n", sinful, e.detail);
		CU_ASSERT_EQUAL(rc, CCB_OK);
	}
	/* The exit broker asked the target's CCB for a reverse connection. */
	CU_ASSERT_EQUAL(bkt_stat(proxy.b, "CCBOutboundRequests"), 1);
	CU_ASSERT_EQUAL(bkt_stat(ccb.b, "CCBRequests"), 1);
	free(sinful);
	ccb_listener_free(l);
	bkt_stop(&proxy);
	bkt_stop(&ccb);
	CU_ASSERT(ft_settle(fds, -1, 5000));
}

typedef struct {
	ccb_sharedport_endpoint *ep;
} sp_target;

static void *sp_echo_main(void *arg)
{
	sp_target *t = arg;
	ccb_stream *s = NULL;
	int64_t v;

	if (ccb_sharedport_endpoint_accept(t->ep, ccb_now_ms() + 15000, &s, NULL) != CCB_OK)
		return NULL;
	ccb_stream_set_timeout(s, 5000);
	if (ccb_stream_get_int(s, &v) == CCB_OK && ccb_stream_end_of_message(s) == CCB_OK) {
		ccb_stream_put_int(s, v + 1);
		ccb_stream_end_message(s);
	}
	ccb_stream_free(s);
	return NULL;
}

static void *sp_run_server(void *arg)
{
	ccb_sharedport_server_run(arg, NULL);
	return NULL;
}

static void test_shared_port_target(void)
{
	bkt_broker proxy = {0};
	char dir[] = "/tmp/ccbt-outbound-sp-XXXXXX", target[128];
	ccb_sharedport_server_config scfg = {0};
	ccb_sharedport_endpoint_config ecfg = {0};
	ccb_sharedport_server *srv = NULL;
	sp_target t = {0};
	pthread_t ts, te;
	ccb_error e = {0};
	int fds = ccbt_count_fds();

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	scfg.socket_dir = dir;
	ecfg.socket_dir = dir;
	ecfg.id = "outbound_target";
	CU_ASSERT_EQUAL_FATAL(ccb_sharedport_server_new(&scfg, &srv, &e), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(ccb_sharedport_endpoint_new(&ecfg, &t.ep, &e), CCB_OK);
	pthread_create(&ts, NULL, sp_run_server, srv);
	pthread_create(&te, NULL, sp_echo_main, &t);
	snprintf(target, sizeof target, "<127.0.0.1:%u?sock=outbound_target>",
		 (unsigned)ccb_sharedport_server_port(srv));
	start_proxy(&proxy, NULL);
	{
		ccb_err rc = echo_through(proxy.port, target, &e);
		if (rc)
			fprintf(stderr, "through the proxy to %s: %s\n", target, e.detail);
		CU_ASSERT_EQUAL(rc, CCB_OK);
	}
	bkt_stop(&proxy);
	ccb_sharedport_endpoint_shutdown(t.ep);
	pthread_join(te, NULL);
	ccb_sharedport_server_stop(srv);
	pthread_join(ts, NULL);
	ccb_sharedport_server_free(srv);
	ccb_sharedport_endpoint_free(t.ep);
	rmdir(dir);
	CU_ASSERT(ft_settle(fds, -1, 5000));
}

/* The next hop dies: the forwarding broker answers with HTCondor's text,
 * keeps serving, and holds nothing of the failed requests. */
static void test_next_hop_gone(void)
{
	bkt_broker exitb = {0}, fwd = {0};
	char hop[64], broker[64];
	ccb_dial_config o = {0};
	ccb_stream *s = NULL;
	ccb_error e = {0};
	int fds = ccbt_count_fds();

	start_proxy(&exitb, NULL);
	snprintf(hop, sizeof hop, "127.0.0.1:%d", exitb.port);
	start_proxy(&fwd, hop);
	snprintf(broker, sizeof broker, "127.0.0.1:%d", fwd.port);
	o.broker_sec = &daemon_sec;
	o.outbound_ccb_address = broker;
	o.outbound_force = true;
	o.timeout_ms = 15000;
	/* Works while the next hop is up (the exit dials the forwarder's own port). */
	{
		char tgt[64];
		snprintf(tgt, sizeof tgt, "<127.0.0.1:%d>", fwd.port);
		CU_ASSERT_EQUAL(ccb_dial_sinful(tgt, &o, &s, &e), CCB_OK);
		ccb_stream_free(s);
		s = NULL;
		bkt_stop(&exitb);
		for (int i = 0; i < 3; i++) {
			CU_ASSERT_EQUAL(ccb_dial_sinful(tgt, &o, &s, &e), CCB_ERR_NO_BROKER);
			CU_ASSERT_PTR_NOT_NULL(strstr(e.detail, "outbound connection to target failed"));
		}
	}
	CU_ASSERT_EQUAL(bkt_stat(fwd.b, "CCBOutboundFailed"), 3);
	CU_ASSERT_EQUAL(bkt_stat(fwd.b, "CCBStreamingHandshakesActive"), 0);
	CU_ASSERT(bkt_wait_stat(fwd.b, "Connections", 0));
	bkt_stop(&fwd);
	CU_ASSERT(ft_settle(fds, -1, 5000));
}

static const ccbt_test tests[] = {
	{"CCB-routed target through the exit broker", test_ccb_routed_target},
	{"shared-port target through the exit broker", test_shared_port_target},
	{"next hop gone: clear failure, nothing held", test_next_hop_gone},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"fault outbound routes", tests}, {NULL, NULL}};

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return ccbt_run(suites);
}
