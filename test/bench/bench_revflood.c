/*
 * bench_revflood: legitimate dial latency through a broker to a listener
 * while the listener's reverse connects are attacked (issue 15 item 2), as
 * a ratio to the same dials unloaded. All in this process, loopback only:
 * an in-process broker, a ccb_listener with an echo handler, and attackers
 * that keep K CCB_REQUESTs outstanding whose MyAddress is a black hole (a
 * listen(0) socket on 127.0.0.2 with its accept queue full) from S source
 * addresses (127.0.0.10...), plus M whose MyAddress accepts and never reads
 * (127.0.0.3, from 127.0.0.4); every answered request is sent again. Both
 * sides run with their default caps. Prints a table and a JSON object;
 * asserts nothing.
 *
 *   bench_revflood [-n DIALS] [-k BLACKHOLES] [-m SILENT] [-s SOURCES]
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "../fault/fault.h"

typedef struct {
	double p50, p99, max;
	int ok, n;
} lat;

static volatile int stop_attack;
static int broker_port;
static char target_ccbid[32];
static uint64_t attacks_sent, attacks_answered;

static double pct(const int64_t *v, int n, double p)
{
	int i = (int)(p * (n - 1) + 0.5);
	return n ? (double)v[i] / 1000.0 : 0;
}

static void measure(lat *r, const char *contact, int n)
{
	int64_t *t = calloc((size_t)n, sizeof *t);
	const char *ct[1] = {contact};

	memset(r, 0, sizeof *r);
	r->n = n;
	for (int i = 0; i < n; i++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		if (ft_dial_echo(ct, 1, 20000, false, NULL, NULL) == CCB_OK)
			r->ok++;
		clock_gettime(CLOCK_MONOTONIC, &b);
		t[i] = (b.tv_sec - a.tv_sec) * 1000000LL + (b.tv_nsec - a.tv_nsec) / 1000;
	}
	qsort(t, (size_t)n, sizeof *t, ft_cmp_i64);
	r->p50 = pct(t, n, 0.50);
	r->p99 = pct(t, n, 0.99);
	r->max = n ? (double)t[n - 1] / 1000.0 : 0;
	free(t);
}

static int listen_on(const char *ip, int backlog, int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, ip, &a.sin_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, backlog) ||
	    getsockname(fd, (struct sockaddr *)&a, &len))
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

static ccb_stream *attack(const char *src, const char *my_address, uint64_t n)
{
	struct sockaddr_in a = {.sin_family = AF_INET}, d = {.sin_family = AF_INET};
	ccb_sec_client_config sc = {.auth_methods = "CLAIMTOBE", .claimtobe_user = "tool",
				    .uid_domain = "vm"};
	ccb_sec_info info;
	ccb_classad *ad = NULL;
	ccb_stream *s = NULL;
	char cid[32];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(cid, sizeof cid, "attack-%llu", (unsigned long long)n);
	inet_pton(AF_INET, src, &a.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &d.sin_addr);
	d.sin_port = htons((uint16_t)broker_port);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
	    connect(fd, (struct sockaddr *)&d, sizeof d) || ccb_stream_new(fd, &s, NULL)) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	ccb_stream_set_timeout(s, 10000);
	{
		ccb_ad_field f[] = {CCB_AD_STRING(CCB_ATTR_CCBID, target_ccbid),
				    CCB_AD_STRING(CCB_ATTR_CLAIM_ID, cid),
				    CCB_AD_STRING(CCB_ATTR_MY_ADDRESS, my_address),
				    CCB_AD_STRING(CCB_ATTR_NAME, "ATTACK")};
		if (ccb_sec_client_start(s, &sc, CCB_CMD_CCB_REQUEST, 0, NULL, &info, NULL) ||
		    ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, NULL) ||
		    ccb_control_ad_write(s, ad, CCB_VERSION_NUM(25, 14, 0), NULL)) {
			ccb_classad_free(ad);
			ccb_stream_free(s);
			return NULL;
		}
	}
	ccb_classad_free(ad);
	return s;
}

typedef struct {
	int k, m, nsrc;
	char bh[64], silent[64];
} attack_cfg;

/* Keep k + m requests outstanding; send a new one for every answer. */
static void *attacker(void *arg)
{
	attack_cfg *a = arg;
	int n = a->k + a->m;
	ccb_stream **s = calloc((size_t)n, sizeof *s);
	struct pollfd *p = calloc((size_t)n, sizeof *p);
	uint64_t seq = 0;

	while (!__atomic_load_n(&stop_attack, __ATOMIC_ACQUIRE)) {
		for (int i = 0; i < n; i++) {
			if (!s[i]) {
				char src[32];
				if (i < a->k)
					snprintf(src, sizeof src, "127.0.0.%d", 10 + i % a->nsrc);
				else
					snprintf(src, sizeof src, "127.0.0.4");
				s[i] = attack(src, i < a->k ? a->bh : a->silent, seq++);
				if (s[i])
					__atomic_add_fetch(&attacks_sent, 1, __ATOMIC_RELAXED);
			}
			p[i].fd = s[i] ? ccb_stream_fd(s[i]) : -1;
			p[i].events = POLLIN;
			p[i].revents = 0;
		}
		if (poll(p, (nfds_t)n, 100) <= 0)
			continue;
		for (int i = 0; i < n; i++)
			if (p[i].revents && s[i]) {
				ccb_stream_free(s[i]);
				s[i] = NULL;
				__atomic_add_fetch(&attacks_answered, 1, __ATOMIC_RELAXED);
			}
	}
	for (int i = 0; i < n; i++)
		ccb_stream_free(s[i]);
	free(s);
	free(p);
	return NULL;
}

static void *run_broker(void *arg)
{
	ccb_broker_run(arg, NULL);
	return NULL;
}

int main(int argc, char **argv)
{
	int n = 200, opt, bh_port = 0, silent_port = 0, fill[16], nfill = 0, bh_fd, silent_fd;
	attack_cfg a = {.k = 256, .m = 200, .nsrc = 16};
	ccb_broker_config cfg;
	ccb_sec_server_config sec;
	ccb_broker *b = NULL;
	ccb_listener_config lc = ft_listener_config();
	ccb_listener *l;
	pthread_t bt, at;
	struct rlimit rl;
	char addr[64], *contact, *h;
	lat base, load;
	int thr0, thr_max = 0;

	while ((opt = getopt(argc, argv, "n:k:m:s:")) != -1) {
		if (opt == 'n')
			n = atoi(optarg);
		else if (opt == 'k')
			a.k = atoi(optarg);
		else if (opt == 'm')
			a.m = atoi(optarg);
		else if (opt == 's')
			a.nsrc = atoi(optarg) > 0 && atoi(optarg) <= 200 ? atoi(optarg) : 16;
		else {
			fprintf(stderr, "usage: %s [-n DIALS] [-k BLACKHOLES] [-m SILENT] [-s SOURCES]\n",
				argv[0]);
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(&cfg, 0, sizeof cfg);
	memset(&sec, 0, sizeof sec);
	sec.uid_domain = "vm";
	sec.auth_methods[CCB_PERM_ALLOW] = "CLAIMTOBE";
	sec.allow[CCB_PERM_DAEMON] = "condor@vm";
	cfg.listen = "127.0.0.1:0";
	cfg.security = sec;
	if (ccb_broker_new(&cfg, &b, NULL)) {
		fprintf(stderr, "broker failed to start\n");
		return 1;
	}
	broker_port = ccb_broker_port(b, 0);
	pthread_create(&bt, NULL, run_broker, b);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", broker_port);
	lc.broker = addr;
	lc.dial_timeout_ms = 0;
	l = ft_listener_start(&lc);
	if (!l || ccb_listener_wait_registered(l, 1, 10000, NULL) != CCB_OK) {
		fprintf(stderr, "listener did not register\n");
		return 1;
	}
	ccb_listener_contact_list(l, &contact, NULL);
	h = contact ? strrchr(contact, '#') : NULL;
	if (!h)
		return 1;
	snprintf(target_ccbid, sizeof target_ccbid, "%s", h + 1);

	/* Black hole: listen(0) with a full queue. */
	bh_fd = listen_on("127.0.0.2", 0, &bh_port);
	for (; bh_fd >= 0 && nfill < 16; nfill++) {
		struct sockaddr_in d = {.sin_family = AF_INET, .sin_port = htons((uint16_t)bh_port)};
		struct pollfd p;
		inet_pton(AF_INET, "127.0.0.2", &d.sin_addr);
		fill[nfill] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		connect(fill[nfill], (struct sockaddr *)&d, sizeof d);
		p.fd = fill[nfill];
		p.events = POLLOUT;
		if (poll(&p, 1, 300) == 0) {
			nfill++;
			break;
		}
	}
	silent_fd = listen_on("127.0.0.3", 4096, &silent_port);
	snprintf(a.bh, sizeof a.bh, "<127.0.0.2:%d>", bh_port);
	snprintf(a.silent, sizeof a.silent, "<127.0.0.3:%d>", silent_port);

	thr0 = ft_count_threads();
	measure(&base, contact, n);
	pthread_create(&at, NULL, attacker, &a);
	sleep(2); /* let the attack build up */
	{
		/* Sample threads while measuring under load. */
		measure(&load, contact, n);
		thr_max = ft_count_threads();
	}
	{
		char *st = NULL;
		ccb_listener_status_json(l, &st, NULL);
		json_t *j = st ? json_loads(st, 0, NULL) : NULL;
		long long peak = j ? (long long)json_integer_value(
					     json_object_get(j, "reverse_connects_pending_peak"))
				   : -1;
		long long refused =
			j ? (long long)json_integer_value(json_object_get(j, "reverse_connects_refused"))
			  : -1;
		__atomic_store_n(&stop_attack, 1, __ATOMIC_RELEASE);
		pthread_join(at, NULL);

		printf("%-22s %8s %10s %10s %10s\n", "case", "ok", "p50 ms", "p99 ms", "max ms");
		printf("%-22s %4d/%-4d %10.2f %10.2f %10.2f\n", "unloaded", base.ok, base.n, base.p50,
		       base.p99, base.max);
		printf("%-22s %4d/%-4d %10.2f %10.2f %10.2f\n", "reverse-connect attack", load.ok,
		       load.n, load.p50, load.p99, load.max);
		printf("ratio (attack / unloaded): p50 %.2f, p99 %.2f\n",
		       base.p50 > 0 ? load.p50 / base.p50 : 0, base.p99 > 0 ? load.p99 / base.p99 : 0);
		printf("attack: %d black-holed from %d sources + %d silent outstanding; %llu sent, "
		       "%llu answered; listener pending peak %lld, refused %lld; threads %d -> %d\n",
		       a.k, a.nsrc, a.m, (unsigned long long)attacks_sent,
		       (unsigned long long)attacks_answered, peak, refused, thr0, thr_max);
		printf("{\"bench\": \"revflood\", \"dials\": %d, \"unloaded\": {\"ok\": %d, \"p50_ms\": "
		       "%.3f, \"p99_ms\": %.3f}, \"attack\": {\"ok\": %d, \"p50_ms\": %.3f, \"p99_ms\": "
		       "%.3f, \"blackholes\": %d, \"silent\": %d, \"sources\": %d}, \"ratio_p50\": %.3f, "
		       "\"ratio_p99\": %.3f, \"pending_peak\": %lld, \"refused\": %lld}\n",
		       n, base.ok, base.p50, base.p99, load.ok, load.p50, load.p99, a.k, a.m, a.nsrc,
		       base.p50 > 0 ? load.p50 / base.p50 : 0, base.p99 > 0 ? load.p99 / base.p99 : 0,
		       peak, refused);
		json_decref(j);
		ccb_free(st);
	}
	ccb_listener_free(l);
	ccb_free(contact);
	ccb_broker_stop(b);
	pthread_join(bt, NULL);
	ccb_broker_free(b);
	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	if (bh_fd >= 0)
		close(bh_fd);
	if (silent_fd >= 0)
		close(silent_fd);
	return 0;
}
