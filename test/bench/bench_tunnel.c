/*
 * Relay throughput through inside-CCB tunnels (ccb-protocol.md §9.3), both
 * directions at once, measured like bench_relay (non-blocking ends that keep
 * sending buffers and count what they receive). Brokers run in this process
 * on 127.0.0.1: a plain streaming session through one broker (0 tunnel
 * hops), then through one and two inside CCBs registered upstream with
 * CCB_OUTBOUND_NEXT_HOP. The target is a real ccb_listener; the requester
 * uses ccb_dial with the nested contact. Asserts nothing.
 *
 *   bench_tunnel [-t seconds-per-case] [-s buffer-size]
 *
 * Output: one JSON line, then a text table.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ccb/broker.h"
#include "ccb/dial.h"
#include "ccb/listener.h"
#include "ccb/stream.h"
#include "blast.h"
#include "ccbt.h"

static double seconds = 2.0;
static size_t bufsz = 65536;


/* The target side: blast on the relayed connection. */
static struct blaster target_b;
static pthread_mutex_t tmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tcv = PTHREAD_COND_INITIALIZER;
static bool target_done;

static void handler(ccb_stream *conn, const ccb_listener_conn_info *info, void *user)
{
	int fd = -1;

	(void)info;
	(void)user;
	if (ccb_stream_detach_fd(conn, &fd) == CCB_OK) {
		target_b.fd = fd;
		blast(&target_b);
		close(fd);
	}
	ccb_stream_free(conn);
	pthread_mutex_lock(&tmu);
	target_done = true;
	pthread_cond_broadcast(&tcv);
	pthread_mutex_unlock(&tmu);
}

typedef struct hop {
	ccb_broker *b;
	pthread_t t;
	char addr[64];
} hop;

static void *run(void *arg)
{
	ccb_broker_run(((hop *)arg)->b, NULL);
	return NULL;
}

static ccb_sec_client_config csec = {
	.auth_methods = "CLAIMTOBE", .claimtobe_user = "condor", .uid_domain = "vm"};

static bool hop_start(hop *h, const char *next)
{
	ccb_sec_server_config sec = {0};
	ccb_broker_config c = {0};
	ccb_error err = {0};

	sec.uid_domain = "vm";
	sec.auth_methods[CCB_PERM_ALLOW] = "CLAIMTOBE";
	sec.allow[CCB_PERM_DAEMON] = "condor@vm";
	sec.allow[CCB_PERM_READ] = "*";
	c.listen = "127.0.0.1:0";
	c.security = sec;
	c.outbound_next_hop = next;
	c.client_security = csec;
	c.upstream_reconnect_interval_ms = 200;
	c.relay_threads = 1;
	if (ccb_broker_new(&c, &h->b, &err)) {
		fprintf(stderr, "bench_tunnel: broker: %s\n", err.detail);
		return false;
	}
	snprintf(h->addr, sizeof h->addr, "127.0.0.1:%d", ccb_broker_port(h->b, 0));
	pthread_create(&h->t, NULL, run, h);
	return true;
}

static void hop_stop(hop *h)
{
	ccb_broker_stop(h->b);
	pthread_join(h->t, NULL);
	ccb_broker_free(h->b);
}

/* One case: `levels` brokers in a chain (0 = the outer one alone). */
static bool one_case(int levels, double *a2b, double *b2a)
{
	hop hops[3];
	ccb_listener_config lc = {0};
	ccb_listener *l = NULL;
	ccb_dial_config o = {0};
	ccb_stream *s = NULL;
	ccb_error err = {0};
	struct blaster req = {0};
	char *contact = NULL;
	const char *cp;
	int fd = -1, n = 0;
	bool ok = false;

	for (; n <= levels; n++)
		if (!hop_start(&hops[n], n ? hops[n - 1].addr : NULL))
			goto out;
	lc.broker = hops[levels].addr;
	lc.security = csec;
	lc.handler = handler;
	lc.name = "BENCH target";
	lc.heartbeat_interval_ms = CCB_LISTENER_HEARTBEAT_OFF;
	if (ccb_listener_new(&lc, &l, &err) || ccb_listener_start(l, &err) ||
	    ccb_listener_wait_registered(l, 1, 20000, NULL)) {
		fprintf(stderr, "bench_tunnel: listener: %s\n", err.detail);
		goto out;
	}
	ccb_listener_contact_list(l, &contact, NULL);
	cp = contact;
	o.broker_sec = &csec;
	o.timeout_ms = 20000;
	o.streaming = o.require_streaming = o.broker_advertises_streaming = true;
	target_done = false;
	target_b = (struct blaster){.bufsz = bufsz, .seconds = seconds};
	req.bufsz = bufsz;
	req.seconds = seconds;
	req.start = target_b.start = now_s() + 0.3;
	if (ccb_dial(&cp, 1, &o, &s, &err) || ccb_stream_detach_fd(s, &fd)) {
		fprintf(stderr, "bench_tunnel: dial %s: %s\n", contact, err.detail);
		goto out;
	}
	req.fd = fd;
	blast(&req);
	pthread_mutex_lock(&tmu);
	while (!target_done)
		pthread_cond_wait(&tcv, &tmu);
	pthread_mutex_unlock(&tmu);
	*a2b = (double)target_b.received / target_b.elapsed / (1024.0 * 1024.0);
	*b2a = (double)req.received / req.elapsed / (1024.0 * 1024.0);
	ok = !req.error && !target_b.error;
out:
	if (fd >= 0)
		close(fd);
	ccb_stream_free(s);
	ccb_free(contact);
	ccb_listener_free(l);
	while (n-- > 0)
		hop_stop(&hops[n]);
	return ok;
}

int main(int argc, char **argv)
{
	double a2b[3] = {0}, b2a[3] = {0};
	bool ok[3];
	int opt;

	while ((opt = getopt(argc, argv, "t:s:h")) != -1) {
		switch (opt) {
		case 't': seconds = atof(optarg); break;
		case 's': bufsz = (size_t)strtoul(optarg, NULL, 10); break;
		default:
			fprintf(opt == 'h' ? stdout : stderr,
				"usage: bench_tunnel [-t seconds-per-case] [-s buffer-size]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	if (seconds <= 0 || bufsz == 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	for (int k = 0; k < 3; k++)
		ok[k] = one_case(k, &a2b[k], &b2a[k]);
	printf("{\"bench\":\"tunnel\",\"seconds_per_case\":%.1f,\"buffer\":%zu,\"cases\":[", seconds,
	       bufsz);
	for (int k = 0; k < 3; k++)
		printf("%s{\"tunnel_hops\":%d,\"req_to_tgt_mibs\":%.1f,\"tgt_to_req_mibs\":%.1f,\"ok\":%s}",
		       k ? "," : "", k, a2b[k], b2a[k], ok[k] ? "true" : "false");
	printf("]}\n");
	printf("%-34s %16s %16s\n", "path", "req->tgt MiB/s", "tgt->req MiB/s");
	for (int k = 0; k < 3; k++)
		printf("%-34s %16.1f %16.1f%s\n",
		       k == 0 ? "one broker (streaming)" : k == 1 ? "1 tunnel hop (2 brokers)"
								 : "2 tunnel hops (3 brokers)",
		       a2b[k], b2a[k], ok[k] ? "" : "  (failed)");
	return ok[0] && ok[1] && ok[2] ? 0 : 1;
}
