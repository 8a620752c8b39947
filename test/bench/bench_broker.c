/* bench_broker: memory per idle registration and registration/request rate
 * of the broker. The broker runs in a child process (so its RSS is its
 * own); this process plays N listeners over loopback.
 * Usage: bench_broker [N] (default 2000). Prints a text table and JSON. */
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "../broker/bktest.h"

static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "VmRSS:", 6))
			v = atol(line + 6);
	if (f)
		fclose(f);
	return v;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2000;
	int pfd[2], port = 0;
	pid_t pid;
	bkt_listener *ls = calloc((size_t)n, sizeof *ls);
	struct rlimit rl;
	long rss0, rss1;
	int64_t t0, t_reg, t_req;
	int ok = 0;

	signal(SIGPIPE, SIG_IGN);
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (pipe(pfd) != 0)
		return 1;
	pid = fork();
	if (pid == 0) {
		ccb_broker_config cfg;
		ccb_sec_server_config sec;
		ccb_broker *b = NULL;
		sigset_t set;
		int sig;

		bkt_config(&cfg, &sec);
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		if (ccb_broker_new(&cfg, &b, NULL))
			_exit(1);
		port = ccb_broker_port(b, 0);
		if (write(pfd[1], &port, sizeof port) != sizeof port)
			_exit(1);
		{
			pthread_t t;
			bkt_broker k = {.b = b};
			pthread_create(&t, NULL, bkt_run, &k);
			sigwait(&set, &sig);
			ccb_broker_stop(b);
			pthread_join(t, NULL);
		}
		ccb_broker_free(b);
		_exit(0);
	}
	if (read(pfd[0], &port, sizeof port) != sizeof port)
		return 1;
	usleep(200 * 1000);
	rss0 = rss_kib(pid);
	t0 = ccb_now_ms();
	for (int i = 0; i < n; i++)
		if (bkt_register(port, "condor", NULL, NULL, &ls[i]) == CCB_OK)
			ok++;
	t_reg = ccb_now_ms() - t0;
	for (int i = 0; i < n; i++)
		bkt_heartbeat(&ls[i]);
	usleep(200 * 1000);
	rss1 = rss_kib(pid);
	/* Standard requests answered by the listener (no reverse dial). */
	t0 = ccb_now_ms();
	for (int i = 0; i < n && i < 1000; i++) {
		ccb_stream *rq = NULL;
		ccb_classad *fwd = NULL;
		char id[24], text[64];
		bool good;
		snprintf(id, sizeof id, "%" PRIu64, ls[i].id);
		if (bkt_request(port, id, "<127.0.0.1:9>", "cid", false, &rq) == CCB_OK &&
		    ccb_control_ad_read(ls[i].s, &fwd, NULL) == CCB_OK) {
			bkt_result(&ls[i], fwd, true, NULL);
			bkt_reply(rq, &good, text, sizeof text);
		}
		ccb_classad_free(fwd);
		ccb_stream_free(rq);
	}
	t_req = ccb_now_ms() - t0;
	printf("%-32s %10d\n", "registrations", ok);
	printf("%-32s %10.1f\n", "registrations/s (1 client)", ok * 1000.0 / (t_reg ? t_reg : 1));
	printf("%-32s %10.1f\n", "requests/s (1 client)", (n < 1000 ? n : 1000) * 1000.0 / (t_req ? t_req : 1));
	printf("%-32s %10ld\n", "broker RSS before (KiB)", rss0);
	printf("%-32s %10ld\n", "broker RSS after (KiB)", rss1);
	printf("%-32s %10.0f\n", "bytes per idle registration", ok ? (rss1 - rss0) * 1024.0 / ok : 0);
	printf("{\"registrations\": %d, \"reg_ms\": %lld, \"req_ms\": %lld, \"rss_before_kib\": %ld,"
	       " \"rss_after_kib\": %ld, \"bytes_per_registration\": %.0f}\n",
	       ok, (long long)t_reg, (long long)t_req, rss0, rss1, ok ? (rss1 - rss0) * 1024.0 / ok : 0);
	for (int i = 0; i < n; i++)
		bkt_listener_close(&ls[i]);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	free(ls);
	return 0;
}
