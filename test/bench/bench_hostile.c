/*
 * Legitimate dials through a broker while peers hold security handshakes
 * stalled (issue 15 item 1): p50/p99 of N dials (requester -> in-process
 * broker -> ccb_listener, echo checked) unloaded, then with S stalled
 * handshakes open (a genuine first message, then silence; default S = 64
 * and 1000), as a ratio to the unloaded figures (goal: p99 <= 2x). Also the
 * broker's cost per stalled handshake (RSS and fds of this process, which
 * holds the stalled peers' sockets too: only raw fds). Prints a table and a
 * JSON line; asserts nothing. Loopback only.
 *
 *   bench_hostile [-n DIALS] [STALLED...]
 */
#include <getopt.h>

#include "../fault/fault.h"
#include "../fault/stall.h"

typedef struct {
	int stalled, ok, n;
	double p50, p99, max;
	long waiting_end;
	double rss_kib_each, fds_each;
} result;

static double pct(const int64_t *v, int n, double p)
{
	return n ? (double)v[(int)(p * (n - 1) + 0.5)] / 1000.0 : 0;
}

static void dials(const char *contact, int n, result *r)
{
	int64_t *t = calloc((size_t)n, sizeof *t);
	const char *ct[1] = {contact};

	r->n = n;
	r->ok = 0;
	for (int i = 0; i < n && t; i++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		if (ft_dial_echo(ct, 1, 4000, false, NULL, NULL) == CCB_OK)
			r->ok++;
		clock_gettime(CLOCK_MONOTONIC, &b);
		t[i] = (b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000;
	}
	if (t) {
		qsort(t, (size_t)n, sizeof *t, ft_cmp_i64);
		r->p50 = pct(t, n, 0.5);
		r->p99 = pct(t, n, 0.99);
		r->max = (double)t[n - 1] / 1000.0;
	}
	free(t);
}

static void *run(void *arg)
{
	ccb_broker_run(arg, NULL);
	return NULL;
}

int main(int argc, char **argv)
{
	int n = 200, opt, nst = 0, st[16];
	ccb_broker_config cfg;
	ccb_sec_server_config sec;
	ccb_listener_config lc = ft_listener_config();
	ccb_broker *b = NULL;
	ccb_listener *l;
	ccb_error err = {0};
	pthread_t t;
	char addr[64], *contact;
	uint8_t *msg;
	size_t len;
	result base = {0}, res[16];
	struct rlimit rl;
	int port;

	signal(SIGPIPE, SIG_IGN);
	while ((opt = getopt(argc, argv, "n:h")) != -1) {
		if (opt == 'n') {
			n = atoi(optarg);
		} else {
			fprintf(stderr, "usage: bench_hostile [-n DIALS] [STALLED...]\n");
			return 2;
		}
	}
	for (; optind < argc && nst < 16; optind++)
		st[nst++] = atoi(argv[optind]);
	if (!nst) {
		st[nst++] = 64;
		st[nst++] = 1000;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (!(msg = st_capture_first_message(&len))) {
		fprintf(stderr, "could not capture a first handshake message\n");
		return 1;
	}
	bkt_config(&cfg, &sec);
	cfg.handshake_workers = 8;
	cfg.handshake_timeout_ms = 60000;
	cfg.max_handshakes_per_source = 100000;
	if (ccb_broker_new(&cfg, &b, &err)) {
		fprintf(stderr, "broker: %s\n", err.detail);
		return 1;
	}
	port = ccb_broker_port(b, 0);
	pthread_create(&t, NULL, run, b);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	lc.broker = addr;
	if (!(l = ft_listener_start(&lc)) || ccb_listener_wait_registered(l, 1, 10000, NULL)) {
		fprintf(stderr, "listener did not register\n");
		return 1;
	}
	ccb_listener_contact_list(l, &contact, NULL);
	dials(contact, n / 4 + 1, &base); /* warm-up */
	dials(contact, n, &base);
	for (int k = 0; k < nst; k++) {
		int *fds = calloc((size_t)st[k], sizeof *fds), open = 0;
		long rss0 = st_rss_kib(), fd0 = ccbt_count_fds();
		result *r = &res[k];

		memset(r, 0, sizeof *r);
		r->stalled = st[k];
		for (int i = 0; i < st[k]; i++)
			if ((fds[i] = st_stall("127.0.0.1", port, msg, len)) >= 0)
				open++;
		for (int i = 0; i < 300 && bkt_stat(b, "HandshakesWaitingForPeer") < open; i++)
			usleep(10000);
		r->rss_kib_each = open ? (double)(st_rss_kib() - rss0) / open : 0;
		/* Both ends are in this process: the broker's share is one. */
		r->fds_each = open ? (double)(ccbt_count_fds() - fd0) / open - 1.0 : 0;
		dials(contact, n, r);
		r->stalled = open;
		r->waiting_end = (long)bkt_stat(b, "HandshakesWaitingForPeer");
		for (int i = 0; i < st[k]; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		free(fds);
		for (int i = 0; i < 500 && bkt_stat(b, "HandshakesInProgress") > 0; i++)
			usleep(10000);
	}
	printf("legitimate dials through the broker (%d each; 8 handshake workers)\n", n);
	printf("%-10s %6s %9s %9s %9s %9s %9s %10s %9s\n", "stalled", "ok", "p50 ms", "p99 ms",
	       "max ms", "p50 x", "p99 x", "KiB RSS/1", "fds/1");
	printf("%-10d %6d %9.2f %9.2f %9.2f %9s %9s %10s %9s\n", 0, base.ok, base.p50, base.p99,
	       base.max, "1.00", "1.00", "-", "-");
	for (int k = 0; k < nst; k++)
		printf("%-10d %6d %9.2f %9.2f %9.2f %9.2f %9.2f %10.1f %9.2f\n", res[k].stalled,
		       res[k].ok, res[k].p50, res[k].p99, res[k].max,
		       base.p50 > 0 ? res[k].p50 / base.p50 : 0, base.p99 > 0 ? res[k].p99 / base.p99 : 0,
		       res[k].rss_kib_each, res[k].fds_each);
	printf("{\"bench\":\"hostile\",\"dials\":%d,\"unloaded\":{\"ok\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f}",
	       n, base.ok, base.p50, base.p99);
	for (int k = 0; k < nst; k++)
		printf(",\"stalled_%d\":{\"ok\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p99_ratio\":%.2f,"
		       "\"still_waiting_at_end\":%ld,\"rss_kib_per_stalled\":%.1f,\"fds_per_stalled\":%.2f}",
		       res[k].stalled, res[k].ok, res[k].p50, res[k].p99,
		       base.p99 > 0 ? res[k].p99 / base.p99 : 0, res[k].waiting_end,
		       res[k].rss_kib_each, res[k].fds_each);
	printf("}\n");
	ccb_free(contact);
	ccb_listener_free(l);
	ccb_broker_stop(b);
	pthread_join(t, NULL);
	ccb_broker_free(b);
	free(msg);
	return 0;
}
