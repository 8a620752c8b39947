/*
 * Relay throughput, both directions at once, measured as HTCondor's
 * ccb_proxy_bench does (ccb-behaviour-notes.md §5): each end makes its socket
 * non-blocking, polls for read and write, keeps sending buffers of one size
 * and counts what it receives; a direction's rate is the bytes its receiver
 * got divided by the elapsed time. Asserts nothing.
 *
 * Local mode (default): for a few buffer sizes, a direct loopback TCP
 * connection vs the same two ends joined through the relay engine
 * (src/ccb/relay.c) with splice, and with the user-space copy path.
 *
 *   bench_relay [-t seconds-per-case] [-s size[,size...]] [-m modes] [-p[CPU]]
 *
 * -m picks the local cases (direct, relay-splice, relay-copy); -p pins the
 * two blasting ends to CPUs 0 and 1 (and the relay process to CPU, if given).
 *
 * End-to-end mode: through a real broker's streaming session
 * (ccb-protocol.md §7): a target thread registers at the broker, a requester
 * sends CCB_REQUEST with CCBStreamingRequired=true for it, the target connects
 * back to the broker and both ends then blast through the broker's relay.
 *
 *   bench_relay --broker ADDRESS [--config FILE] [-t seconds] [-s size]
 *
 * Output: one JSON line, then a text table. Besides the wall-clock ratio to
 * the direct connection, each case gives the CPU per GiB of the ends and of
 * the relay, and their ratio to the direct case's ("CPU vs direct": the
 * relayed path's throughput at equal CPU), which does not depend on whether
 * the machine has a core for each busy thread.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ccb/addr.h"
#include "ccb/config.h"
#include "relay.h"
#include "ccb/security.h"
#include "ccb/stream.h"
#include "ccb/wire.h"
#include "blast.h"
#include "ccbt.h"
#include "security/policy.h"
#include "util/util.h"
#include "addr/addr_internal.h"


struct result {
	const char *mode;
	size_t size;
	double a2b, b2a; /* MiB/s */
	double relay_cpu_s_per_gib; /* the relay process's CPU per GiB moved, -1 direct */
	double ends_cpu_s_per_gib;  /* the two blasting ends' CPU per GiB moved */
	bool ok;
};

/* --pin: end a on CPU 0, end b on CPU 1, the relay on CPU pin_relay (-1: not pinned). */
static bool pin;
static int pin_relay = -1;

static void pin_self(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void)sched_setaffinity(0, sizeof set, &set);
}

struct pinned {
	struct blaster *b;
	int cpu;
};

static void *blast_pinned(void *arg)
{
	struct pinned *p = arg;
	if (pin)
		pin_self(p->cpu);
	return blast(p->b);
}

static double rusage_cpu_s(int who)
{
	struct rusage ru;
	getrusage(who, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

/* Blast between end_a and end_b; a2b = what end_b received per second. */
static void run_pair(int end_a, int end_b, size_t size, double seconds, struct result *r)
{
	struct blaster a = {.fd = end_a, .bufsz = size, .seconds = seconds};
	struct blaster b = {.fd = end_b, .bufsz = size, .seconds = seconds};
	a.start = b.start = now_s() + 0.05;
	pthread_t ta, tb;
	struct pinned pa = {&a, 0}, pb = {&b, 1};
	double cpu0 = rusage_cpu_s(RUSAGE_SELF);
	pthread_create(&ta, NULL, blast_pinned, &pa);
	pthread_create(&tb, NULL, blast_pinned, &pb);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	r->size = size;
	r->a2b = (double)b.received / b.elapsed / (1024.0 * 1024.0);
	r->b2a = (double)a.received / a.elapsed / (1024.0 * 1024.0);
	r->ok = !a.error && !b.error;
	/* This process does nothing else meanwhile: its CPU is the two ends'. */
	r->ends_cpu_s_per_gib = r->a2b + r->b2a > 0
		? (rusage_cpu_s(RUSAGE_SELF) - cpu0) / ((r->a2b + r->b2a) * seconds / 1024.0) : -1;
}

static void local_case(const char *mode, size_t size, double seconds, struct result *r)
{
	r->mode = mode;
	r->relay_cpu_s_per_gib = -1;
	if (strcmp(mode, "direct") == 0) {
		int p[2];
		ccbt_tcp_pair(p);
		run_pair(p[0], p[1], size, seconds, r);
		close(p[0]);
		close(p[1]);
		return;
	}
	/* The relay runs in a child process of its own, as in a broker: the
	 * two blasting ends here, the relay thread there. */
	int p1[2], p2[2], ctl[2], back[2];
	ccbt_tcp_pair(p1);
	ccbt_tcp_pair(p2);
	if (pipe(ctl) != 0 || pipe(back) != 0) {
		perror("pipe");
		exit(1);
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		char c;
		ccb_error err = {0};
		double cpu;
		close(p1[0]);
		close(p2[1]);
		close(ctl[1]);
		close(back[0]);
		if (strcmp(mode, "relay-copy") == 0)
			setenv("CCB_RELAY_FORCE_COPY", "1", 1);
		if (pin && pin_relay >= 0)
			pin_self(pin_relay); /* the relay thread inherits it */
		ccb__relay_engine *e = ccb__relay_engine_new(1, 0, &err);
		if (!e || ccb__relay_start(e, p1[1], p2[0], NULL, NULL, &err) != CCB_OK) {
			fprintf(stderr, "bench_relay: relay: %s\n", err.detail);
			_exit(1);
		}
		/* until the parent is done */
		while (read(ctl[0], &c, 1) < 0 && errno == EINTR)
			;
		/* The relay thread's CPU: the whole child's, it does nothing else. */
		cpu = rusage_cpu_s(RUSAGE_SELF);
		if (write(back[1], &cpu, sizeof cpu) != sizeof cpu)
			_exit(1);
		ccb__relay_engine_free(e);
		_exit(0);
	}
	close(p1[1]);
	close(p2[0]);
	close(ctl[0]);
	close(back[1]);
	run_pair(p1[0], p2[1], size, seconds, r);
	close(p1[0]);
	close(p2[1]);
	close(ctl[1]);
	{
		double cpu = -1;
		if (read(back[0], &cpu, sizeof cpu) == sizeof cpu && r->a2b + r->b2a > 0)
			r->relay_cpu_s_per_gib = cpu / ((r->a2b + r->b2a) * seconds / 1024.0);
	}
	close(back[0]);
	waitpid(pid, NULL, 0);
}

/* ---- end-to-end through a broker --------------------------------------- */

static struct {
	char host[256];
	int port;
	char *sinful;
	ccb_config *cfg;
	ccb_sec_client_config sec;
} bk;

static ccb_err broker_command(int cmd, ccb_stream **out, unsigned *pv, ccb_error *err)
{
	ccb_stream *s = NULL;
	ccb_err rc = ccb_stream_connect(bk.host, bk.port, 20000, &s, err);
	if (rc)
		return rc;
	ccb_sec_info info;
	rc = ccb_sec_client_start(s, &bk.sec, cmd, 0, bk.sinful, &info, err);
	if (rc) {
		ccb_stream_free(s);
		return rc;
	}
	int a, b, c;
	*pv = 0;
	(void)ccb__sec_version_parse(info.peer_version, &a, &b, &c, pv, NULL);
	*out = s;
	return CCB_OK;
}

struct target {
	ccb_stream *reg;
	unsigned pv;
	int fd;            /* the reverse connection, once made */
	ccb_error err;
};

/* Target side: wait for the forwarded request, dial the broker, hello, result. */
static void *target_answer(void *arg)
{
	struct target *t = arg;
	ccb_classad *req = NULL, *hello = NULL, *result = NULL;
	ccb_stream *rs = NULL;
	ccb_sinful *sf = NULL;
	const char *my;
	t->fd = -1;
	ccb_stream_set_timeout(t->reg, 30000);
	if (ccb_control_ad_read(t->reg, &req, &t->err) ||
	    ccb_hello_ad_from_request(req, &hello, &t->err) ||
	    ccb_ad_need_string(req, CCB_ATTR_MY_ADDRESS, &my, &t->err) ||
	    ccb_sinful_parse_address(my, &sf, &t->err) ||
	    ccb_stream_connect(ccb_sinful_host(sf), ccb_sinful_port(sf), 20000, &rs, &t->err) ||
	    ccb_hello_write(rs, hello, 0, &t->err) ||
	    ccb_result_ad_new(hello, true, NULL, &result, &t->err) ||
	    ccb_control_ad_write(t->reg, result, t->pv, &t->err) ||
	    ccb_stream_detach_fd(rs, &t->fd)) {
		t->fd = -1;
	}
	ccb_stream_free(rs);
	ccb_sinful_free(sf);
	ccb_classad_free(req);
	ccb_classad_free(hello);
	ccb_classad_free(result);
	return NULL;
}

static int e2e(const char *broker, const char *config, size_t size, double seconds, struct result *r)
{
	ccb_error err = {0};
	ccb_sinful *sf = NULL;
	if (ccb_sinful_parse_address(broker, &sf, &err)) {
		fprintf(stderr, "bench_relay: broker address: %s\n", err.detail);
		return 2;
	}
	snprintf(bk.host, sizeof bk.host, "%s", ccb_sinful_host(sf));
	bk.port = ccb_sinful_port(sf) > 0 ? ccb_sinful_port(sf) : 9618;
	bk.sinful = ccb__sinful_format(sf);
	ccb_sinful_free(sf);
	if (ccb_config_load(config, &bk.cfg, &err) || ccb_config_client_security(bk.cfg, &bk.sec, &err)) {
		fprintf(stderr, "bench_relay: config: %s\n", err.detail);
		return 2;
	}

	/* register the target */
	struct target t = {.fd = -1};
	ccb_classad *ad = NULL, *reply = NULL;
	const char *contact = NULL;
	ccb_ad_field rf[] = {
		CCB_AD_INT(CCB_ATTR_COMMAND, CCB_CMD_CCB_REGISTER),
		CCB_AD_STRING(CCB_ATTR_NAME, "BENCH <127.0.0.1:1>"),
	};
	if (broker_command(CCB_CMD_CCB_REGISTER, &t.reg, &t.pv, &err) ||
	    ccb_ad_new(rf, CCB_AD_NFIELDS(rf), &ad, &err) || ccb_control_ad_write(t.reg, ad, t.pv, &err) ||
	    ccb_control_ad_read(t.reg, &reply, &err) ||
	    ccb_ad_need_string(reply, CCB_ATTR_CCBID, &contact, &err)) {
		fprintf(stderr, "bench_relay: register: %s\n", err.detail);
		return 1;
	}
	ccb_classad_free(ad);
	ad = NULL;
	const char *hash = strrchr(contact, '#');
	char *ccbid = ccb_strdup(hash ? hash + 1 : contact);
	char *sp = strchr(ccbid, ' ');
	if (sp)
		*sp = 0;
	ccb_classad_free(reply);

	pthread_t tt;
	pthread_create(&tt, NULL, target_answer, &t);

	/* the streaming request (§7.4) */
	char cid[CCB_CONNECT_ID_SIZE];
	ccb_stream *s = NULL;
	unsigned pv = 0;
	ccb_classad *rep = NULL, *hello = NULL;
	int req_fd = -1;
	int rc = 1;
	ccb_connect_id_new(cid, &err);
	ccb_ad_field qf[] = {
		CCB_AD_STRING(CCB_ATTR_CCBID, ccbid),
		CCB_AD_STRING(CCB_ATTR_CLAIM_ID, cid),
		CCB_AD_STRING(CCB_ATTR_NAME, "TOOL"),
		CCB_AD_STRING(CCB_ATTR_MY_ADDRESS, "<0.0.0.0:0>"),
		CCB_AD_BOOL(CCB_ATTR_CCB_STREAMING_REQUIRED, true),
	};
	if (broker_command(CCB_CMD_CCB_REQUEST, &s, &pv, &err) ||
	    ccb_ad_new(qf, CCB_AD_NFIELDS(qf), &ad, &err) || ccb_control_ad_write(s, ad, pv, &err) ||
	    ccb_control_ad_read(s, &rep, &err)) {
		fprintf(stderr, "bench_relay: streaming request: %s\n", err.detail);
		goto out;
	}
	if (!ccb_ad_bool_or(rep, CCB_ATTR_RESULT, false)) {
		fprintf(stderr, "bench_relay: broker refused: %s\n",
			ccb_ad_string_or(rep, CCB_ATTR_ERROR_STRING, "(no ErrorString)"));
		goto out;
	}
	if (ccb_hello_read(s, cid, &hello, &err) || ccb_stream_detach_fd(s, &req_fd)) {
		fprintf(stderr, "bench_relay: replayed hello: %s\n", err.detail);
		goto out;
	}
	pthread_join(tt, NULL);
	tt = 0;
	if (t.fd < 0) {
		fprintf(stderr, "bench_relay: target: %s\n", t.err.detail);
		goto out;
	}
	r->mode = "broker-e2e";
	run_pair(req_fd, t.fd, size, seconds, r); /* a = requester, b = target */
	rc = 0;
out:
	if (tt)
		pthread_join(tt, NULL);
	if (req_fd >= 0)
		close(req_fd);
	if (t.fd >= 0)
		close(t.fd);
	ccb_stream_free(s);
	ccb_stream_free(t.reg);
	ccb_classad_free(ad);
	ccb_classad_free(rep);
	ccb_classad_free(hello);
	ccb_free(ccbid);
	free(bk.sinful);
	ccb_config_free(bk.cfg);
	return rc;
}

/* ---- main --------------------------------------------------------------- */

/*
 * Throughput at equal CPU: a direct connection's CPU per GiB (its two ends)
 * over the relayed path's (its two ends plus the relay). On a machine with
 * fewer cores than busy threads (2 CPUs: 3 threads relayed, 2 direct) the
 * wall-clock ratio mostly says how much CPU was left for the third thread;
 * this one says what the relay costs, whatever the core count and load.
 */
static double cpu_ratio(const struct result *direct, const struct result *r)
{
	double mine = r->ends_cpu_s_per_gib + (r->relay_cpu_s_per_gib > 0 ? r->relay_cpu_s_per_gib : 0);

	return direct->ends_cpu_s_per_gib > 0 && mine > 0 ? direct->ends_cpu_s_per_gib / mine : 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_relay [-t SECONDS] [-s SIZE[,SIZE...]]\n"
		"       bench_relay --broker ADDRESS [--config FILE] [-t SECONDS] [-s SIZE]\n"
		"\n"
		"Both-directions-at-once throughput (as ccb_proxy_bench measures it).\n"
		"Local: a direct loopback TCP connection vs the relay engine (splice and\n"
		"user-space copy) for each buffer size (default 4096,65536,262144).\n"
		"--broker: one streaming session through that broker (a target registered\n"
		"by this program; the broker must allow it DAEMON and READ), 262144-byte buffers.\n"
		"  -t, --seconds S   per case (default 2)\n"
		"  -s, --sizes LIST  send buffer sizes in bytes\n"
		"  -b, --broker A    broker address (host:port or sinful)\n"
		"  -c, --config F    libccb JSON config for the client security\n"
		"  -m, --modes LIST  local cases to run: direct,relay-splice,relay-copy (default all;\n"
		"                    ratios need direct)\n"
		"  -p, --pin [CPU]   pin end a to CPU 0 and end b to CPU 1 (and the relay to CPU,\n"
		"                    when given)\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"seconds", required_argument, NULL, 't'}, {"sizes", required_argument, NULL, 's'},
		{"broker", required_argument, NULL, 'b'}, {"config", required_argument, NULL, 'c'},
		{"modes", required_argument, NULL, 'm'}, {"pin", optional_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	const char *modes_arg = NULL;
	double seconds = 2;
	const char *sizes_arg = NULL, *broker = NULL, *config = NULL;
	int ch;
	while ((ch = getopt_long(argc, argv, "t:s:b:c:m:p::h", lo, NULL)) != -1) {
		switch (ch) {
		case 't': seconds = atof(optarg); break;
		case 's': sizes_arg = optarg; break;
		case 'b': broker = optarg; break;
		case 'c': config = optarg; break;
		case 'm': modes_arg = optarg; break;
		case 'p':
			pin = true;
			if (optarg)
				pin_relay = atoi(optarg);
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	/* positional seconds, as bench_cedar */
	if (optind < argc)
		seconds = atof(argv[optind]);
	if (seconds <= 0) {
		usage(stderr);
		return 2;
	}
	size_t sizes[8];
	int nsizes = 0;
	if (sizes_arg) {
		char *dup = ccb_strdup(sizes_arg), *save = NULL;
		for (char *tok = strtok_r(dup, ",", &save); tok && nsizes < 8; tok = strtok_r(NULL, ",", &save)) {
			long v = atol(tok);
			if (v > 0)
				sizes[nsizes++] = (size_t)v;
		}
		ccb_free(dup);
	}
	if (nsizes == 0) {
		if (broker) {
			sizes[nsizes++] = 262144;
		} else {
			sizes[nsizes++] = 4096;
			sizes[nsizes++] = 65536;
			sizes[nsizes++] = 262144;
		}
	}

	if (broker) {
		struct result r = {0};
		int rc = e2e(broker, config, sizes[0], seconds, &r);
		if (rc)
			return rc;
		printf("{\"bench\":\"relay\",\"mode\":\"broker-e2e\",\"broker\":\"%s\",\"seconds\":%.1f,"
		       "\"size\":%zu,\"req_to_target_mibs\":%.1f,\"target_to_req_mibs\":%.1f,"
		       "\"ends_cpu_s_per_gib\":%.3f,\"ok\":%s}\n",
		       broker, seconds, r.size, r.a2b, r.b2a, r.ends_cpu_s_per_gib, r.ok ? "true" : "false");
		printf("%-26s %10s %14s %14s %12s\n", "case", "buffer", "req->tgt MiB/s", "tgt->req MiB/s",
		       "total MiB/s");
		printf("%-26s %10zu %14.1f %14.1f %12.1f\n", "through broker (stream)", r.size, r.a2b, r.b2a,
		       r.a2b + r.b2a);
		return r.ok ? 0 : 1;
	}

	static const char *modes[] = {"direct", "relay-splice", "relay-copy"};
	bool run_mode[3] = {true, true, true};
	if (modes_arg)
		for (int m = 0; m < 3; m++)
			run_mode[m] = strstr(modes_arg, modes[m]) != NULL;
	struct result res[8][3];
	memset(res, 0, sizeof res);
	for (int i = 0; i < nsizes; i++)
		for (int m = 0; m < 3; m++)
			if (run_mode[m])
				local_case(modes[m], sizes[i], seconds, &res[i][m]);

	printf("{\"bench\":\"relay\",\"seconds_per_case\":%.1f,\"cases\":[", seconds);
	bool first = true;
	for (int i = 0; i < nsizes; i++)
		for (int m = 0; m < 3; m++) {
			struct result *r = &res[i][m];
			double direct = res[i][0].a2b + res[i][0].b2a;
			if (!run_mode[m])
				continue;
			printf("%s{\"mode\":\"%s\",\"size\":%zu,\"a_to_b_mibs\":%.1f,\"b_to_a_mibs\":%.1f,"
			       "\"ratio_to_direct\":%.3f,\"relay_cpu_s_per_gib\":%.3f,"
			       "\"ends_cpu_s_per_gib\":%.3f,\"cpu_ratio_to_direct\":%.3f,\"ok\":%s}",
			       first ? "" : ",", r->mode, r->size, r->a2b, r->b2a,
			       direct > 0 ? (r->a2b + r->b2a) / direct : 0, r->relay_cpu_s_per_gib,
			       r->ends_cpu_s_per_gib, cpu_ratio(&res[i][0], r), r->ok ? "true" : "false");
			first = false;
		}
	printf("]}\n");
	printf("%-14s %10s %12s %12s %12s %10s %14s %13s %11s\n", "case", "buffer", "a->b MiB/s",
	       "b->a MiB/s", "total", "vs direct", "relay CPU s/GiB", "ends CPU s/GiB",
	       "CPU vs direct");
	for (int i = 0; i < nsizes; i++)
		for (int m = 0; m < 3; m++) {
			struct result *r = &res[i][m];
			double direct = res[i][0].a2b + res[i][0].b2a;
			char cpu[32] = "-";
			if (!run_mode[m])
				continue;
			if (r->relay_cpu_s_per_gib >= 0)
				snprintf(cpu, sizeof cpu, "%.3f", r->relay_cpu_s_per_gib);
			printf("%-14s %10zu %12.1f %12.1f %12.1f %9.2fx %14s %13.3f %10.2fx%s\n", r->mode,
			       r->size, r->a2b, r->b2a, r->a2b + r->b2a,
			       direct > 0 ? (r->a2b + r->b2a) / direct : 0, cpu, r->ends_cpu_s_per_gib,
			       cpu_ratio(&res[i][0], r), r->ok ? "" : "  (error)");
		}
	return 0;
}
