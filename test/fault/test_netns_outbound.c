/* The outbound proxy (CCB_PROXY_CONNECT) across private networks (root only).
 *
 * ADDRESSES: libccb tests only ever use 127.0.0.1 / ::1, except the netns
 * tests. This one creates four network namespaces joined in a line by three
 * veth pairs, with addresses that exist only inside them (deleted at the
 * end, also on failure, and by an atexit handler):
 *
 *   R (requester) 10.204.0.2 --- 10.204.0.1 I (inner broker)
 *   I             10.204.1.2 --- 10.204.1.1 G (gateway broker)
 *   G             10.204.2.1 --- 10.204.2.2 T (target daemon)
 *
 * No namespace has a route beyond its own links, so R can reach only I, and
 * T is reachable only from G. The target is a `ccbctl broker` (a CEDAR
 * daemon answering condor_ping's DC_SEC_QUERY); I forwards CCB_PROXY_CONNECT
 * to G (CCB_OUTBOUND_NEXT_HOP), G dials T. From R: a direct ping of T fails
 * (no route), `--outbound` G fails (no route to G either), `--outbound` I
 * succeeds end to end, and so does OUTBOUND_CCB_ADDRESS from the config (T
 * is not local, so HTCondor's exceptions do not apply). A target outside G's
 * allow-list is refused at G and reported through I. The statistics of I
 * and G show the forwards and the dials. (TTL exhaustion along a chain is
 * covered on loopback by test/broker/test_outbound.c.)
 *
 * Without root or without `ip netns` the test prints "skipped: <reason>"
 * and passes. */
#include <stdarg.h>

#include "fault.h"

#define IP "/usr/sbin/ip"

static char ns[4][32], cfgs[4][128];
static bool ns_made;
static const char *const role[4] = {"R", "I", "G", "T"};


static void ns_cleanup(void)
{
	if (!ns_made)
		return;
	for (int i = 0; i < 4; i++)
		ccbt_sh(IP " netns del %s >/dev/null 2>&1", ns[i]);
	ns_made = false;
}

/* Link namespaces a and b: a gets net.x.1... as given. */
static int link_ns(int a, const char *addr_a, int b, const char *addr_b, int k)
{
	char va[16], vb[16];
	int id = (int)getpid() % 100000;

	snprintf(va, sizeof va, "co%d%c", id, 'a' + k);
	snprintf(vb, sizeof vb, "cp%d%c", id, 'a' + k);
	return ccbt_sh(IP " link add %s netns %s type veth peer name %s netns %s", va, ns[a], vb, ns[b]) ||
	       ccbt_sh(IP " -n %s addr add %s dev %s", ns[a], addr_a, va) ||
	       ccbt_sh(IP " -n %s addr add %s dev %s", ns[b], addr_b, vb) ||
	       ccbt_sh(IP " -n %s link set %s up", ns[a], va) || ccbt_sh(IP " -n %s link set %s up", ns[b], vb);
}

static const char *ns_setup(void)
{
	int id = (int)getpid() % 100000;

	if (geteuid() != 0)
		return "not root";
	if (access(IP, X_OK) != 0)
		return "no ip";
	for (int i = 0; i < 4; i++)
		snprintf(ns[i], sizeof ns[i], "ccbo%s%d", role[i], id);
	if (ccbt_sh(IP " netns add %s >/dev/null 2>&1", ns[0]) != 0)
		return "cannot create a network namespace";
	ns_made = true;
	atexit(ns_cleanup);
	for (int i = 1; i < 4; i++)
		if (ccbt_sh(IP " netns add %s", ns[i])) {
			ns_cleanup();
			return "cannot create a network namespace";
		}
	for (int i = 0; i < 4; i++)
		if (ccbt_sh(IP " -n %s link set lo up", ns[i])) {
			ns_cleanup();
			return "cannot bring up lo";
		}
	if (link_ns(1, "10.204.0.1/30", 0, "10.204.0.2/30", 0) ||
	    link_ns(2, "10.204.1.1/30", 1, "10.204.1.2/30", 1) ||
	    link_ns(2, "10.204.2.1/30", 3, "10.204.2.2/30", 2)) {
		ns_cleanup();
		return "cannot set up the veth pairs";
	}
	return NULL;
}

static void write_cfg(int i, const char *json)
{
	FILE *f;

	snprintf(cfgs[i], sizeof cfgs[i], "/tmp/ccbt-netns-outbound-%s-%d.json", role[i], (int)getpid());
	f = fopen(cfgs[i], "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(json, f);
	fclose(f);
}

#define SEC_JSON                                                                                 \
	"\"SEC_DEFAULT_AUTHENTICATION_METHODS\": \"CLAIMTOBE\", \"SEC_CLAIMTOBE_USER\": \"condor\", " \
	"\"UID_DOMAIN\": \"vm\", \"ALLOW_DAEMON\": \"condor@vm\""

static ccbt_proc *start_broker(int i)
{
	char *argv[] = {IP, "netns", "exec", ns[i], CCBCTL_PATH, "broker", "-c", cfgs[i], "-v", NULL};
	ccbt_proc *p = ccbt_proc_start(argv, NULL);

	if (!ccbt_proc_wait_line(p, "listening ", 15000, NULL, 0)) {
		fprintf(stderr, "broker %s: %s\n", role[i], ccbt_proc_output(p));
		ccbt_proc_stop(p, SIGKILL, 5000);
		return NULL;
	}
	return p;
}

/* ccbctl in namespace i; returns its exit code, output in *out. */
static int run_in(int i, char **out, const char *a1, const char *a2, const char *a3,
		  const char *a4, const char *a5, const char *a6)
{
	char *argv[] = {IP,	    "netns",	 "exec",      ns[i],	   CCBCTL_PATH, (char *)a1,
			(char *)a2, (char *)a3, (char *)a4, (char *)a5, (char *)a6, NULL};
	return ccbt_proc_run(argv, NULL, 60000, out);
}

static long long status_stat(int i, const char *broker, const char *name)
{
	char *out = NULL;
	long long v = -1;

	if (run_in(i, &out, "status", "-c", cfgs[i], "--broker", broker, NULL) == 0 && out) {
		json_t *o = json_loads(out, 0, NULL);
		json_t *x = json_object_get(json_object_get(o, "stats"), name);
		if (x)
			v = (long long)json_integer_value(x);
		json_decref(o);
	}
	free(out);
	return v;
}

static void test_two_level_outbound(void)
{
	const char *why = ns_setup();
	ccbt_proc *inner = NULL, *gw = NULL, *target = NULL;
	char *out = NULL;
	int rc;

	if (why) {
		printf("\n    skipped: %s\n", why);
		return;
	}
	write_cfg(0, "{" SEC_JSON ", \"CCB_DIAL_TIMEOUT\": 10}\n");
	write_cfg(1, "{\"CCB_SERVER_LISTEN\": \"10.204.0.1:9618\", \"CCB_OUTBOUND_NEXT_HOP\": "
		     "\"10.204.1.1:9618\", " SEC_JSON "}\n");
	write_cfg(2, "{\"CCB_SERVER_LISTEN\": \"10.204.1.1:9618\", \"CCB_OUTBOUND_PROXY\": true, "
		     "\"CCB_OUTBOUND_TARGET_ALLOWLIST\": \"10.204.2.0/24\", " SEC_JSON "}\n");
	write_cfg(3, "{\"CCB_SERVER_LISTEN\": \"10.204.2.2:9618\", " SEC_JSON "}\n");
	target = start_broker(3);
	gw = start_broker(2);
	inner = start_broker(1);
	CU_ASSERT_FATAL(target && gw && inner);

	/* No route from R to T, nor to G. */
	rc = run_in(0, &out, "ping", "-c", cfgs[0], "<10.204.2.2:9618>", NULL, NULL);
	CU_ASSERT_NOT_EQUAL(rc, 0);
	CU_ASSERT(out && strstr(out, "unreachable"));
	free(out);
	rc = run_in(0, &out, "ping", "-c", cfgs[0], "--outbound", "10.204.1.1:9618",
		    "<10.204.2.2:9618>");
	CU_ASSERT_NOT_EQUAL(rc, 0);
	free(out);
	/* Through I, which forwards to G, which dials T. */
	rc = run_in(0, &out, "ping", "-c", cfgs[0], "--outbound", "10.204.0.1:9618",
		    "<10.204.2.2:9618>");
	if (rc != 0)
		fprintf(stderr, "ping through I: %s\n", out ? out : "");
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT(out && strstr(out, "READ access:  ALLOWED"));
	free(out);
	out = NULL;
	/* The same from the config: OUTBOUND_CCB_ADDRESS. */
	write_cfg(0, "{" SEC_JSON ", \"CCB_DIAL_TIMEOUT\": 10, "
		     "\"OUTBOUND_CCB_ADDRESS\": \"10.204.0.1:9618\"}\n");
	rc = run_in(0, &out, "probe", "-c", cfgs[0], "<10.204.2.2:9618>", NULL, NULL);
	if (rc != 0)
		fprintf(stderr, "probe with OUTBOUND_CCB_ADDRESS: %s\n", out ? out : "");
	CU_ASSERT_EQUAL(rc, 0);
	if (out)
		printf("\n%s", out);
	free(out);
	out = NULL;
	/* Outside G's allow-list: refused there, reported through I. */
	rc = run_in(0, &out, "ping", "-c", cfgs[0], "<10.204.1.2:9618>", NULL, NULL);
	CU_ASSERT_NOT_EQUAL(rc, 0);
	free(out);
	CU_ASSERT_EQUAL(status_stat(0, "10.204.0.1:9618", "CCBOutboundRequests"), 3);
	CU_ASSERT_EQUAL(status_stat(0, "10.204.0.1:9618", "CCBOutboundForwarded"), 3);
	CU_ASSERT_EQUAL(status_stat(0, "10.204.0.1:9618", "CCBOutboundFailed"), 1);
	CU_ASSERT_EQUAL(status_stat(2, "10.204.1.1:9618", "CCBOutboundRequests"), 3);
	CU_ASSERT_EQUAL(status_stat(2, "10.204.1.1:9618", "CCBOutboundForwarded"), 0);

	if (inner)
		ccbt_proc_stop(inner, SIGTERM, 5000);
	if (gw)
		ccbt_proc_stop(gw, SIGTERM, 5000);
	if (target)
		ccbt_proc_stop(target, SIGTERM, 5000);
	for (int i = 0; i < 4; i++)
		unlink(cfgs[i]);
	ns_cleanup();
}

static const ccbt_test tests[] = {
	{"outbound proxy through two brokers across private networks", test_two_level_outbound},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"fault netns outbound", tests}, {NULL, NULL}};

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return ccbt_run(suites);
}
