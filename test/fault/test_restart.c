/* A real `ccbctl broker` SIGKILLed and restarted on the same port with the
 * same CCB_RECONNECT_FILE under N registered in-process listeners (N = 100,
 * 1000 with CCB_FAULT_FULL=1): every listener registers again with its old
 * CCBID within the reconnect interval plus jitter (ccb-protocol.md §4.4,
 * listener.h: 75%-125% of the interval), no listener thread or fd leaks,
 * and the spread of the re-registrations is printed. */
#include "fault.h"

#define RECONNECT_MS 1500

static void test_kill_restart_under_listeners(void)
{
	int n = ft_full() ? 1000 : 100;
	ft_proc_broker b = {0};
	ccb_listener **ls = calloc((size_t)n, sizeof *ls);
	char **old = calloc((size_t)n, sizeof *old);
	int64_t *seen_down = calloc((size_t)n, sizeof *seen_down);
	int64_t *back = calloc((size_t)n, sizeof *back);
	char addr[64];
	int fds0, thr0, fds1, thr1, done = 0, port;
	int64_t t_kill, until;
	ccb_listener_config c = ft_listener_config();
	struct rlimit rl;

	/* 1000 listeners need ~2000 fds here. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	fds0 = ccbt_count_fds();
	thr0 = ft_count_threads();
	CU_ASSERT_FATAL(ft_proc_broker_start(&b, "restart", 0));
	port = b.port;
	fds0 = ccbt_count_fds(); /* the child's output pipe stays open */
	thr0 = ft_count_threads();
	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	c.broker = addr;
	c.reconnect_interval_ms = RECONNECT_MS;
	c.timeout_ms = 10000;
	for (int i = 0; i < n; i++) {
		ls[i] = ft_listener_start(&c);
		CU_ASSERT_PTR_NOT_NULL_FATAL(ls[i]);
	}
	for (int i = 0; i < n; i++) {
		CU_ASSERT_EQUAL_FATAL(ccb_listener_wait_registered(ls[i], 1, 60000, NULL), CCB_OK);
		ccb_listener_contact_list(ls[i], &old[i], NULL);
		CU_ASSERT_FATAL(old[i] && strchr(old[i], '#'));
	}
	fds1 = ccbt_count_fds();
	thr1 = ft_count_threads();
	/* One worker thread per listener; one socket (+ wake-up fd) each. */
	CU_ASSERT(thr1 - thr0 >= n);
	/* A dial through the broker before the kill. */
	{
		const char *ct[1] = {old[0]};
		CU_ASSERT_EQUAL(ft_dial_echo(ct, 1, 10000, false, NULL, NULL), CCB_OK);
	}

	t_kill = ccb_now_ms();
	CU_ASSERT_EQUAL(ft_proc_broker_stop(&b, SIGKILL), 128 + SIGKILL);
	/* Restart at once on the same port and record file: up well before
	 * the earliest retry (75% of the interval). */
	CU_ASSERT_FATAL(ft_proc_broker_start(&b, "restart", port));
	CU_ASSERT_EQUAL(b.port, port);
	printf("\n    broker restarted after %" PRId64 " ms\n", ccb_now_ms() - t_kill);

	until = t_kill + RECONNECT_MS * 5 / 4 + 20000;
	while (done < n && ccb_now_ms() < until) {
		int64_t now = ccb_now_ms();
		for (int i = 0; i < n; i++) {
			size_t reg;
			if (back[i])
				continue;
			reg = ccb_listener_num_registered(ls[i]);
			if (!seen_down[i] && reg == 0)
				seen_down[i] = now;
			else if (seen_down[i] && reg == 1) {
				back[i] = now - t_kill;
				done++;
			}
		}
		usleep(2000);
	}
	CU_ASSERT_EQUAL(done, n);
	{
		int64_t *sorted = calloc((size_t)n, sizeof *sorted);
		int m = 0;
		for (int i = 0; i < n; i++)
			if (back[i])
				sorted[m++] = back[i];
		qsort(sorted, (size_t)m, sizeof *sorted, ft_cmp_i64);
		if (m) {
			printf("    %d/%d listeners re-registered after the kill: min %" PRId64
			       " ms, median %" PRId64 " ms, max %" PRId64
			       " ms (reconnect interval %d ms, jitter 75%%-125%%)\n",
			       m, n, sorted[0], sorted[m / 2], sorted[m - 1], RECONNECT_MS);
			/* Nobody came back before 75% of the interval (the jitter
			 * holds off a stampede) ... */
			CU_ASSERT(sorted[0] >= RECONNECT_MS * 3 / 4 - 50);
			/* ... and all within 125% plus the handshakes' queueing
			 * (which valgrind slows twentyfold). */
			int64_t slack = getenv("CCBT_UNDER_VALGRIND") ? 60000 : ft_full() ? 15000 : 4000;
			CU_ASSERT(sorted[m - 1] <= RECONNECT_MS * 5 / 4 + slack);
		}
		free(sorted);
	}
	/* Same CCBIDs (the record file survived the SIGKILL). */
	for (int i = 0; i < n; i++) {
		char *now = NULL;
		ccb_listener_contact_list(ls[i], &now, NULL);
		CU_ASSERT_STRING_EQUAL(now ? now : "", old[i]);
		ccb_free(now);
	}
	/* No leaked thread or fd in the listeners. */
	CU_ASSERT(ft_settle(fds1, thr1, 10000));
	/* And the restarted broker serves dials to the old contacts. */
	{
		const char *ct[1] = {old[n - 1]};
		CU_ASSERT_EQUAL(ft_dial_echo(ct, 1, 10000, false, NULL, NULL), CCB_OK);
	}
	for (int i = 0; i < n; i++) {
		ccb_listener_free(ls[i]);
		free(old[i]);
	}
	CU_ASSERT(ft_settle(fds0, thr0, 10000));
	CU_ASSERT_EQUAL(ft_proc_broker_stop(&b, SIGTERM), 0);
	ft_proc_broker_cleanup(&b);
	free(ls);
	free(old);
	free(seen_down);
	free(back);
}

static const ccbt_test tests[] = {
	{"SIGKILL + restart under N listeners keeps CCBIDs", test_kill_restart_under_listeners},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"fault restart", tests}, {NULL, NULL}};

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return ccbt_run(suites);
}
