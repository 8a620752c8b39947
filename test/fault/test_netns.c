/* A silently dropped link between listener and broker (root only).
 *
 * ADDRESSES: libccb tests only ever use 127.0.0.1 / ::1. This test is the one
 * exception issue #9 allows: it creates two private network namespaces joined
 * by a veth pair and gives the ends 10.203.0.1/30 (broker side) and
 * 10.203.0.2/30 (listener side). Those addresses exist only inside the two
 * namespaces, which are deleted at the end (also on failure, and by an
 * atexit handler); nothing outside them is touched.
 *
 * The broker (`ccbctl broker`) runs in namespace A, the listener in
 * namespace B (this program re-executed with --netns-listener under
 * `ip netns exec`, since ccbctl cannot set a millisecond heartbeat). Then
 * `tc qdisc ... netem loss 100%` (or the blackhole qdisc where sch_netem is
 * missing) drops every packet on both veth ends: no FIN, no RST. The listener's heartbeats (300 ms here; dead after 3 silent
 * intervals, ccb-protocol.md §5.2) must detect the dead broker, and once
 * the qdisc is removed it must register again with the same CCBID (the
 * broker still holds the stale registration; the cookie reclaims it, §4.4).
 *
 * Without root or without `ip netns` the test prints "skipped: <reason>"
 * and passes. */
#include <stdarg.h>
#include <sys/stat.h>

#include "fault.h"

#define IP "/usr/sbin/ip"
#define BROKER_ADDR "10.203.0.1:9618"

static char ns_a[32], ns_b[32], veth_a[16], veth_b[16];
static bool ns_made;
static const char *drop_qdisc;


static void ns_cleanup(void)
{
	if (!ns_made)
		return;
	ccbt_sh(IP " netns del %s >/dev/null 2>&1", ns_a);
	ccbt_sh(IP " netns del %s >/dev/null 2>&1", ns_b);
	ns_made = false;
}

/* Create the namespaces and the link; NULL on success, else why not. */
static const char *ns_setup(void)
{
	int id = (int)getpid() % 100000;

	if (geteuid() != 0)
		return "not root";
	if (access(IP, X_OK) != 0 || access("/usr/sbin/tc", X_OK) != 0)
		return "no ip/tc";
	snprintf(ns_a, sizeof ns_a, "ccbtA%d", id);
	snprintf(ns_b, sizeof ns_b, "ccbtB%d", id);
	snprintf(veth_a, sizeof veth_a, "cfa%d", id);
	snprintf(veth_b, sizeof veth_b, "cfb%d", id);
	if (ccbt_sh(IP " netns add %s >/dev/null 2>&1", ns_a) != 0)
		return "cannot create a network namespace";
	ns_made = true;
	atexit(ns_cleanup);
	if (ccbt_sh(IP " netns add %s", ns_b) ||
	    ccbt_sh(IP " link add %s netns %s type veth peer name %s netns %s", veth_a, ns_a, veth_b,
	       ns_b) ||
	    ccbt_sh(IP " -n %s addr add 10.203.0.1/30 dev %s", ns_a, veth_a) ||
	    ccbt_sh(IP " -n %s addr add 10.203.0.2/30 dev %s", ns_b, veth_b) ||
	    ccbt_sh(IP " -n %s link set %s up", ns_a, veth_a) ||
	    ccbt_sh(IP " -n %s link set %s up", ns_b, veth_b) || ccbt_sh(IP " -n %s link set lo up", ns_a) ||
	    ccbt_sh(IP " -n %s link set lo up", ns_b)) {
		ns_cleanup();
		return "cannot set up the veth pair";
	}
	/* netem loss 100% as the issue asks; where sch_netem is not available
	 * the blackhole qdisc drops every packet just as silently. */
	if (ccbt_sh("/usr/sbin/tc -n %s qdisc add dev %s root netem loss 0%% >/dev/null 2>&1", ns_b,
	       veth_b) == 0)
		drop_qdisc = "netem loss 100%";
	else if (ccbt_sh("/usr/sbin/tc -n %s qdisc add dev %s root blackhole >/dev/null 2>&1", ns_b,
		    veth_b) == 0)
		drop_qdisc = "blackhole";
	else {
		ns_cleanup();
		return "neither the netem nor the blackhole qdisc is available";
	}
	ccbt_sh("/usr/sbin/tc -n %s qdisc del dev %s root", ns_b, veth_b);
	return NULL;
}

/* The listener side, run inside namespace B. Prints "registered#K <contacts>"
 * on the K-th registration and "lost#K" when it loses it. */
static int listener_main(const char *broker)
{
	ccb_listener_config c = ft_listener_config();
	ccb_listener *l;
	uint64_t gen = 0;
	int reg = 0, lost = 0;
	bool was = false;

	c.broker = broker;
	c.name = "NETNS test";
	c.timeout_ms = 1000;
	c.reconnect_interval_ms = 300;
	l = ft_listener_start_hb(&c, 300);
	if (!l)
		return 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		bool now;
		ccb_listener_wait_change(l, &gen, 200, NULL);
		now = ccb_listener_num_registered(l) == 1;
		if (now && !was) {
			char *cl = NULL;
			ccb_listener_contact_list(l, &cl, NULL);
			printf("registered#%d %s\n", ++reg, cl ? cl : "");
			ccb_free(cl);
		} else if (!now && was) {
			printf("lost#%d\n", ++lost);
		}
		was = now;
	}
}

static void test_link_drop(void)
{
	const char *why = ns_setup();
	char cfg[128], self[512], line[512], first[256], want[64];
	ccbt_proc *bp = NULL, *lp = NULL;
	int64_t t0;
	ssize_t n;
	FILE *f;

	if (why) {
		printf("\n    skipped: %s\n", why);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	CU_ASSERT_FATAL(n > 0);
	self[n] = '\0';
	snprintf(cfg, sizeof cfg, "/tmp/ccbt-fault-netns-%d.json", (int)getpid());
	f = fopen(cfg, "w");
	fprintf(f,
		"{\"CCB_SERVER_LISTEN\": \"" BROKER_ADDR "\","
		" \"SEC_DEFAULT_AUTHENTICATION_METHODS\": \"CLAIMTOBE\", \"UID_DOMAIN\": \"vm\","
		" \"ALLOW_DAEMON\": \"condor@vm\", \"CCB_SERVER_TARGET_IDLE_TIMEOUT\": 0}\n");
	fclose(f);
	{
		char *argv[] = {IP, "netns", "exec", ns_a, CCBCTL_PATH, "broker", "-c", cfg, NULL};
		bp = ccbt_proc_start(argv, NULL);
	}
	if (!ccbt_proc_wait_line(bp, "listening ", 15000, NULL, 0)) {
		fprintf(stderr, "broker: %s\n", ccbt_proc_output(bp));
		CU_FAIL("broker did not start in the namespace");
		goto out;
	}
	{
		char *argv[] = {IP, "netns", "exec", ns_b, self, "--netns-listener", BROKER_ADDR, NULL};
		lp = ccbt_proc_start(argv, NULL);
	}
	if (!ccbt_proc_wait_line(lp, "registered#1 ", 15000, line, sizeof line)) {
		fprintf(stderr, "listener: %s\n", ccbt_proc_output(lp));
		CU_FAIL("listener did not register across the veth");
		goto out;
	}
	snprintf(first, sizeof first, "%s", line + strlen("registered#1 "));
	snprintf(want, sizeof want, BROKER_ADDR "?addrs=");
	CU_ASSERT_EQUAL(strncmp(first, want, strlen(want)), 0);

	/* Drop everything silently. */
	/* Both directions: a qdisc only sees the egress of its device. */
	CU_ASSERT_EQUAL_FATAL(ccbt_sh("/usr/sbin/tc -n %s qdisc add dev %s root %s", ns_b, veth_b,
				 drop_qdisc), 0);
	CU_ASSERT_EQUAL_FATAL(ccbt_sh("/usr/sbin/tc -n %s qdisc add dev %s root %s", ns_a, veth_a,
				 drop_qdisc), 0);
	t0 = ccb_now_ms();
	CU_ASSERT(ccbt_proc_wait_line(lp, "lost#1", 15000, NULL, 0));
	printf("\n    [%s] heartbeats detected the dead link after %" PRId64
	       " ms (interval 300 ms)\n", drop_qdisc, ccb_now_ms() - t0);
	/* 3 intervals of silence (+ the 1 s I/O timeout at worst), not the
	 * kernel's TCP retransmission timeout (minutes). */
	CU_ASSERT(ccb_now_ms() - t0 < 6000);
	/* Restore: the listener comes back with the same CCBID. */
	CU_ASSERT_EQUAL(ccbt_sh("/usr/sbin/tc -n %s qdisc del dev %s root", ns_b, veth_b), 0);
	CU_ASSERT_EQUAL(ccbt_sh("/usr/sbin/tc -n %s qdisc del dev %s root", ns_a, veth_a), 0);
	t0 = ccb_now_ms();
	CU_ASSERT(ccbt_proc_wait_line(lp, "registered#2 ", 20000, line, sizeof line));
	printf("    re-registered %" PRId64 " ms after the link came back: %s\n", ccb_now_ms() - t0,
	       strcmp(line + strlen("registered#2 "), first) ? "NEW CCBID" : "same CCBID");
	CU_ASSERT_STRING_EQUAL(line + strlen("registered#2 "), first);
out:
	if (lp)
		ccbt_proc_stop(lp, SIGKILL, 5000);
	if (bp)
		ccbt_proc_stop(bp, SIGTERM, 5000);
	unlink(cfg);
	ns_cleanup();
}

static const ccbt_test tests[] = {
	{"link silently dropped: heartbeats, re-registration", test_link_drop},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"fault netns", tests}, {NULL, NULL}};

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && !strcmp(argv[1], "--netns-listener"))
		return listener_main(argv[2]);
	return ccbt_run(suites);
}
