/* Fault-test helpers: real ccb_listener objects with an echo handler, dials
 * that check the echo, `ccbctl broker` child processes, thread counting and
 * the short/full size switch (CCB_FAULT_FULL=1). Loopback only, except
 * test_netns.c (see there). */
#ifndef FAULT_H
#define FAULT_H

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "../broker/bktest.h"
#include "ccb/dial.h"
#include "ccb/listener.h"
#include "listener_test.h"
#include "ccbt_proc.h"

/* Full sizes from the issue when CCB_FAULT_FULL=1, else CI-sized ones. */
static inline bool ft_full(void)
{
	const char *v = getenv("CCB_FAULT_FULL");
	return v && *v && strcmp(v, "0") != 0;
}

/* Records its kernel thread id, so the caller can see the thread go. */
static void *ft_nop(void *arg)
{
	*(long *)arg = (long)syscall(SYS_gettid);
	return NULL;
}

/* A joined thread can still be listed in /proc/self/task for a moment (the
 * kernel reaps it after pthread_join has returned). */
static bool ft_task_gone(void *arg)
{
	char path[64];

	snprintf(path, sizeof path, "/proc/self/task/%ld", *(long *)arg);
	return access(path, F_OK) != 0;
}

/* Threads of this process. The first call starts and joins a thread so that
 * runtime helper threads (TSan's background thread) exist before any
 * baseline is taken. */
static inline int ft_count_threads(void)
{
	static bool warmed;
	DIR *d;
	int n = 0;

	if (!warmed) {
		pthread_t t;
		long tid = 0;
		warmed = true;
		if (pthread_create(&t, NULL, ft_nop, &tid) == 0) {
			pthread_join(t, NULL);
			/* Not counted in the baseline: wait until it is gone. */
			if (!ccbt_wait_until(5000, ft_task_gone, &tid))
				fprintf(stderr, "warm-up thread %ld still listed after 5 s\n", tid);
		}
	}
	if (!(d = opendir("/proc/self/task")))
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 2;
}

/* Wait (up to timeout_ms) until fds and threads are back to the given
 * counts: closes and joins finish asynchronously in the broker loop. */
static inline bool ft_settle(int fds, int threads, int timeout_ms)
{
	int64_t until = ccb_now_ms() + timeout_ms;

	while (ccb_now_ms() < until) {
		if (ccbt_count_fds() == fds && (threads < 0 || ft_count_threads() == threads))
			return true;
		usleep(10000);
	}
	fprintf(stderr, "fds %d (want %d), threads %d (want %d)\n", ccbt_count_fds(), fds,
		ft_count_threads(), threads);
	return false;
}

/* ---- listener with an echo handler ----------------------------------------- */

/* Echo handler: reads one int, answers it + 1. In streaming or standard mode
 * the requester side speaks plain CEDAR after the hello. */
static void ft_echo_handler(ccb_stream *conn, const ccb_listener_conn_info *info, void *user)
{
	int64_t v = 0;

	(void)info;
	(void)user;
	ccb_stream_set_timeout(conn, 5000);
	if (ccb_stream_get_int(conn, &v) == CCB_OK && ccb_stream_end_of_message(conn) == CCB_OK) {
		ccb_stream_put_int(conn, v + 1);
		ccb_stream_end_message(conn);
	}
	ccb_stream_free(conn);
}

static inline ccb_listener_config ft_listener_config(void)
{
	ccb_listener_config c = {0};

	c.security.auth_methods = "CLAIMTOBE";
	c.security.claimtobe_user = "condor";
	c.security.uid_domain = "vm";
	c.handler = ft_echo_handler;
	c.name = "FAULT <127.0.0.1:0>";
	c.heartbeat_interval_ms = CCB_LISTENER_HEARTBEAT_OFF;
	c.reconnect_interval_ms = 200;
	c.timeout_ms = 5000;
	c.dial_timeout_ms = 3000;
	return c;
}

/* test_heartbeat_ms > 0: a heartbeat below HTCondor's 30 s floor, set with
 * the internal test setter. */
static inline ccb_listener *ft_listener_start_hb(const ccb_listener_config *c, int test_heartbeat_ms)
{
	ccb_listener *l = NULL;
	ccb_error err = {0};

	if (ccb_listener_new(c, &l, &err) != CCB_OK) {
		fprintf(stderr, "listener_new: %s\n", err.detail);
		return NULL;
	}
	if (test_heartbeat_ms > 0)
		ccb__listener_set_test_heartbeat(l, test_heartbeat_ms);
	if (ccb_listener_start(l, &err) != CCB_OK) {
		fprintf(stderr, "listener_start: %s\n", err.detail);
		ccb_listener_free(l);
		return NULL;
	}
	return l;
}

static inline ccb_listener *ft_listener_start(const ccb_listener_config *c)
{
	return ft_listener_start_hb(c, 0);
}

/* ---- dials ------------------------------------------------------------------- */

static ccb_sec_client_config ft_tool_sec = {
	.auth_methods = "CLAIMTOBE", .claimtobe_user = "tool", .uid_domain = "vm"};

/* Dial `contacts` and check the echo (value -> value + 1). Returns the dial
 * result (CCB_ERR_PROTOCOL when the echo is wrong); *ms the elapsed time. */
static inline ccb_err ft_dial_echo(const char *const *contacts, size_t n, int timeout_ms,
				   bool streaming, int64_t *ms, ccb_error *err)
{
	ccb_dial_config o = {0};
	ccb_stream *s = NULL;
	int64_t t0 = ccb_now_ms(), v = 0;
	ccb_err rc;
	static int counter;
	int64_t want = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) * 7;

	o.broker_sec = &ft_tool_sec;
	o.timeout_ms = timeout_ms;
	o.streaming = streaming;
	o.require_streaming = streaming;
	o.broker_advertises_streaming = streaming;
	o.stagger_ms = 100;
	rc = ccb_dial(contacts, n, &o, &s, err);
	if (rc == CCB_OK) {
		ccb_stream_set_timeout(s, 5000);
		if (ccb_stream_put_int(s, want) || ccb_stream_end_message(s) ||
		    ccb_stream_get_int(s, &v) || ccb_stream_end_of_message(s) || v != want + 1)
			rc = CCB_ERR_PROTOCOL;
		ccb_stream_free(s);
	}
	if (ms)
		*ms = ccb_now_ms() - t0;
	return rc;
}

/* ---- ccbctl broker processes ------------------------------------------------- */

typedef struct ft_proc_broker {
	ccbt_proc *p;
	int port;
	char cfg[128];
	char rec[128];
} ft_proc_broker;

/* Write the config (listen on 127.0.0.1:port, port 0 first) and start
 * `ccbctl broker -c cfg`; reads the "listening ... ports P" line. */
static inline bool ft_proc_broker_start(ft_proc_broker *b, const char *tag, int port)
{
	char line[512], *ports;
	FILE *f;
	char *argv[] = {CCBCTL_PATH, "broker", "-c", b->cfg, NULL};

	if (!b->cfg[0]) {
		snprintf(b->cfg, sizeof b->cfg, "/tmp/ccbt-fault-%s-%d.json", tag, (int)getpid());
		snprintf(b->rec, sizeof b->rec, "/tmp/ccbt-fault-%s-%d.ccb_reconnect", tag,
			 (int)getpid());
		unlink(b->rec);
	}
	f = fopen(b->cfg, "w");
	if (!f)
		return false;
	fprintf(f,
		"{\"CCB_SERVER_LISTEN\": \"127.0.0.1:%d\", \"CCB_RECONNECT_FILE\": \"%s\",\n"
		" \"SEC_DEFAULT_AUTHENTICATION_METHODS\": \"CLAIMTOBE\", \"UID_DOMAIN\": \"vm\",\n"
		" \"ALLOW_DAEMON\": \"condor@vm\", \"CCB_SERVER_HANDSHAKE_TIMEOUT\": 5}\n",
		port, b->rec);
	fclose(f);
	b->p = ccbt_proc_start(argv, NULL);
	if (!ccbt_proc_wait_line(b->p, "listening ", 15000, line, sizeof line) ||
	    !(ports = strstr(line, " ports "))) {
		fprintf(stderr, "ccbctl broker did not start: %s\n", ccbt_proc_output(b->p));
		ccbt_proc_stop(b->p, SIGKILL, 5000);
		b->p = NULL;
		return false;
	}
	b->port = atoi(ports + 7);
	return b->port > 0;
}

/* Stop with `sig`; returns the exit status as ccbt_proc_stop(). */
static inline int ft_proc_broker_stop(ft_proc_broker *b, int sig)
{
	int rc = -2;

	if (b->p)
		rc = ccbt_proc_stop(b->p, sig, 10000);
	b->p = NULL;
	return rc;
}

static inline void ft_proc_broker_cleanup(ft_proc_broker *b)
{
	ft_proc_broker_stop(b, SIGKILL);
	if (b->cfg[0]) {
		unlink(b->cfg);
		unlink(b->rec);
	}
}

static inline int ft_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

#endif
