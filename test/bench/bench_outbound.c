/*
 * bench_outbound: relay throughput through the outbound proxy
 * (CCB_PROXY_CONNECT, ccb-protocol.md §9.1), both directions at once, as
 * bench_relay measures it (ccb_proxy_bench's loop): a direct loopback TCP
 * connection, then the same two ends joined through one outbound broker
 * (it dials the target), then through two (the first forwards to the second
 * with CCBTTL - 1). The brokers run in this process on loopback; the setup
 * time of each proxied connection is printed too. Asserts nothing.
 *
 *   bench_outbound [-t seconds-per-case] [-s size]
 *
 * Output: one JSON line, then a text table.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>

#include "../broker/bktest.h"
#include "blast.h"
#include "outbound.h"

struct result {
	const char *mode;
	double a2b, b2a, setup_ms;
	bool ok;
};

static void run_pair(int a_fd, int b_fd, size_t size, double seconds, struct result *r)
{
	struct blaster a = {.fd = a_fd, .bufsz = size, .seconds = seconds};
	struct blaster b = {.fd = b_fd, .bufsz = size, .seconds = seconds};
	pthread_t ta, tb;

	a.start = b.start = now_s() + 0.05;
	pthread_create(&ta, NULL, blast, &a);
	pthread_create(&tb, NULL, blast, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	r->a2b = (double)b.received / b.elapsed / (1024.0 * 1024.0);
	r->b2a = (double)a.received / a.elapsed / (1024.0 * 1024.0);
	r->ok = !a.error && !b.error;
}

static void start_broker(bkt_broker *k, const char *next_hop, const ccb_sec_client_config *sc)
{
	ccb_broker_config cfg;
	ccb_error err = {0};

	bkt_config(&cfg, &k->sec);
	cfg.outbound_proxy = true;
	cfg.outbound_target_denylist = "";
	cfg.outbound_next_hop = next_hop;
	cfg.client_security = *sc;
	if (ccb_broker_new(&cfg, &k->b, &err)) {
		fprintf(stderr, "bench_outbound: broker: %s\n", err.detail);
		exit(1);
	}
	k->port = ccb_broker_port(k->b, 0);
	pthread_create(&k->t, NULL, bkt_run, k);
}

static void stop_broker(bkt_broker *k)
{
	ccb_broker_stop(k->b);
	pthread_join(k->t, NULL);
	ccb_broker_free(k->b);
}

/* Through `broker`: the requester's fd and the target's accepted fd. */
static bool proxied(int lfd, const char *target, const char *broker, const ccb_sec_client_config *sc,
		    int *req, int *tgt, double *setup_ms)
{
	ccb_error e = {0};
	double t0 = now_s();
	ccb__outbound_req q = {.brokers = broker, .target = target, .ttl = 8, .sec = sc,
			       .deadline_ms = ccb_now_ms() + 20000, .t0_ms = ccb_now_ms()};

	if (ccb__outbound_connect(&q, req, &e)) {
		fprintf(stderr, "bench_outbound: %s: %s\n", broker, e.detail);
		return false;
	}
	*setup_ms = (now_s() - t0) * 1000.0;
	*tgt = accept(lfd, NULL, NULL);
	return *tgt >= 0;
}

int main(int argc, char **argv)
{
	double seconds = 2.0;
	size_t size = 65536;
	bkt_broker exitb = {0}, fwd = {0};
	ccb_sec_client_config sc = bkt_client("condor");
	struct result res[3] = {{.mode = "direct"}, {.mode = "outbound 1 hop"}, {.mode = "outbound 2 hops"}};
	char hop[64], b1[64], target[64];
	uint16_t tport;
	int lfd, opt;

	signal(SIGPIPE, SIG_IGN);
	while ((opt = getopt(argc, argv, "t:s:")) != -1) {
		if (opt == 't')
			seconds = atof(optarg);
		else if (opt == 's')
			size = (size_t)atol(optarg);
		else {
			fprintf(stderr, "usage: bench_outbound [-t seconds-per-case] [-s size]\n");
			return 2;
		}
	}
	if (seconds <= 0 || size == 0)
		return 2;
	lfd = ccbt_listen(&tport);
	snprintf(target, sizeof target, "<127.0.0.1:%u>", tport);
	start_broker(&exitb, NULL, &sc);
	snprintf(hop, sizeof hop, "127.0.0.1:%d", exitb.port);
	start_broker(&fwd, hop, &sc);
	snprintf(b1, sizeof b1, "127.0.0.1:%d", fwd.port);
	for (int i = 0; i < 3; i++) {
		int a = -1, b = -1;
		if (i == 0) {
			int p[2];
			ccbt_tcp_pair(p);
			a = p[0];
			b = p[1];
		} else if (!proxied(lfd, target, i == 1 ? hop : b1, &sc, &a, &b, &res[i].setup_ms)) {
			continue;
		}
		run_pair(a, b, size, seconds, &res[i]);
		close(a);
		close(b);
	}
	printf("{\"bench\":\"outbound\",\"seconds_per_case\":%.1f,\"size\":%zu,\"cases\":[", seconds,
	       size);
	for (int i = 0; i < 3; i++)
		printf("%s{\"mode\":\"%s\",\"req_to_tgt_mibs\":%.1f,\"tgt_to_req_mibs\":%.1f,"
		       "\"setup_ms\":%.2f,\"ok\":%s}",
		       i ? "," : "", res[i].mode, res[i].a2b, res[i].b2a, res[i].setup_ms,
		       res[i].ok ? "true" : "false");
	printf("]}\n");
	printf("%-18s %10s %16s %16s %10s\n", "case", "buffer", "req->tgt MiB/s", "tgt->req MiB/s",
	       "setup ms");
	for (int i = 0; i < 3; i++)
		printf("%-18s %10zu %16.1f %16.1f %10.2f%s\n", res[i].mode, size, res[i].a2b, res[i].b2a,
		       res[i].setup_ms, res[i].ok ? "" : "  (error)");
	stop_broker(&fwd);
	stop_broker(&exitb);
	close(lfd);
	return 0;
}
