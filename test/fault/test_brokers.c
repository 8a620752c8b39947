/* Broker faults seen by listeners and requesters:
 * - one of three `ccbctl broker` processes SIGKILLed: dials with the three
 *   contacts keep succeeding through the others with bounded extra latency,
 *   the listener keeps its two other registrations (ccb-protocol.md §8);
 * - a "broker" that accepts TCP and never answers, and one that answers half
 *   a CEDAR message: dials and listeners give up per their deadlines, and
 *   the listener registers once a good broker is back on that port. */
#include <poll.h>
#include <sys/socket.h>

#include "fault.h"

static bool two_registered(void *l)
{
	return ccb_listener_num_registered(l) == 2;
}

static void test_one_of_three_killed(void)
{
	ft_proc_broker b[3] = {{0}};
	const char *addrs[3];
	char abuf[3][64], **contacts = NULL, *before[3];
	ccb_listener_config c = ft_listener_config();
	ccb_listener *l;
	size_t n = 0;
	int dials = ft_full() ? 200 : 20, fds0, thr0;
	int64_t worst_before = 0, worst_after = 0, ms;

	for (int i = 0; i < 3; i++) {
		char tag[16];
		snprintf(tag, sizeof tag, "three%d", i);
		CU_ASSERT_FATAL(ft_proc_broker_start(&b[i], tag, 0));
		snprintf(abuf[i], sizeof abuf[i], "127.0.0.1:%d", b[i].port);
		addrs[i] = abuf[i];
	}
	fds0 = ccbt_count_fds();
	thr0 = ft_count_threads();
	c.brokers = addrs;
	c.n_brokers = 3;
	c.reconnect_interval_ms = 300;
	l = ft_listener_start(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_EQUAL_FATAL(ccb_listener_wait_registered(l, 3, 20000, NULL), CCB_OK);
	CU_ASSERT_EQUAL(ccb_listener_contacts(l, &contacts, &n, NULL), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	for (int i = 0; i < 3; i++)
		before[i] = contacts[i];
	for (int i = 0; i < dials; i++) {
		CU_ASSERT_EQUAL(ft_dial_echo((const char *const *)contacts, 3, 10000, false, &ms, NULL),
				CCB_OK);
		if (ms > worst_before)
			worst_before = ms;
	}
	/* Kill the second broker. */
	CU_ASSERT_EQUAL(ft_proc_broker_stop(&b[1], SIGKILL), 128 + SIGKILL);
	/* The listener notices the loss. */
	CU_ASSERT(ccbt_wait_until(10000, two_registered, l));
	CU_ASSERT_EQUAL(ccb_listener_num_registered(l), 2);
	for (int i = 0; i < dials; i++) {
		ccb_error err = {0};
		ccb_err rc = ft_dial_echo((const char *const *)contacts, 3, 10000, false, &ms, &err);
		if (rc)
			fprintf(stderr, "dial %d: %s\n", i, err.detail);
		CU_ASSERT_EQUAL(rc, CCB_OK);
		if (ms > worst_after)
			worst_after = ms;
	}
	printf("\n    worst dial latency with 3 brokers: %" PRId64 " ms, with one killed: %" PRId64
	       " ms\n", worst_before, worst_after);
	/* A refused broker fails its attempt at once, so the next one starts
	 * without waiting for the stagger: bounded well below the timeout. */
	CU_ASSERT(worst_after < 3000);
	/* The two other registrations are untouched. */
	{
		char **now = NULL;
		size_t m = 0;
		CU_ASSERT_EQUAL(ccb_listener_contacts(l, &now, &m, NULL), CCB_OK);
		CU_ASSERT_EQUAL_FATAL(m, 2);
		CU_ASSERT_STRING_EQUAL(now[0], before[0]);
		CU_ASSERT_STRING_EQUAL(now[1], before[2]);
		ccb_strv_free(now);
	}
	/* The killed broker comes back on its port: the listener re-registers
	 * there with the same CCBID. */
	CU_ASSERT_FATAL(ft_proc_broker_start(&b[1], "three1", b[1].port));
	CU_ASSERT_EQUAL(ccb_listener_wait_registered(l, 3, 10000, NULL), CCB_OK);
	{
		char **now = NULL;
		size_t m = 0;
		CU_ASSERT_EQUAL(ccb_listener_contacts(l, &now, &m, NULL), CCB_OK);
		CU_ASSERT_EQUAL_FATAL(m, 3);
		for (int i = 0; i < 3; i++)
			CU_ASSERT_STRING_EQUAL(now[i], before[i]);
		ccb_strv_free(now);
	}
	ccb_strv_free(contacts);
	ccb_listener_free(l);
	CU_ASSERT(ft_settle(fds0, thr0, 10000));
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(ft_proc_broker_stop(&b[i], SIGTERM), 0);
		ft_proc_broker_cleanup(&b[i]);
	}
}

/* ---- a broker that accepts and never answers, or answers half a message ---- */

typedef struct bad_broker {
	int lfd;
	uint16_t port;
	bool half;        /* answer half a message instead of nothing */
	pthread_t t;
	int wake[2];
	int conns[64];
	int nconns;
	int accepted;
} bad_broker;

static void *bad_main(void *arg)
{
	bad_broker *bb = arg;

	for (;;) {
		struct pollfd p[2] = {{bb->lfd, POLLIN, 0}, {bb->wake[0], POLLIN, 0}};
		if (poll(p, 2, -1) < 0 || p[1].revents)
			break;
		int fd = accept(bb->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		bb->accepted++;
		if (bb->half) {
			/* A CEDAR header announcing 200 bytes, then only 7 of them
			 * (cedar-stream.md §2: end flag + 4-byte length). */
			static const uint8_t part[] = {1, 0, 0, 0, 200, 0, 0, 0, 0, 0, 0, 5};
			(void)!send(fd, part, sizeof part, MSG_NOSIGNAL);
		}
		if (bb->nconns < 64)
			bb->conns[bb->nconns++] = fd;
		else
			close(fd);
	}
	return NULL;
}

static void bad_start(bad_broker *bb, bool half, bool accepting)
{
	memset(bb, 0, sizeof *bb);
	bb->half = half;
	bb->lfd = ccbt_listen(&bb->port);
	CU_ASSERT_FATAL(pipe(bb->wake) == 0);
	/* Not accepting: the kernel completes the TCP handshakes into the
	 * backlog and nobody ever reads. */
	if (accepting)
		pthread_create(&bb->t, NULL, bad_main, bb);
	else
		bb->t = 0;
}

static void bad_stop(bad_broker *bb)
{
	if (bb->t) {
		(void)!write(bb->wake[1], "x", 1);
		pthread_join(bb->t, NULL);
	}
	for (int i = 0; i < bb->nconns; i++)
		close(bb->conns[i]);
	close(bb->lfd);
	close(bb->wake[0]);
	close(bb->wake[1]);
}

static void silent_case(bool half, bool accepting)
{
	bad_broker bb;
	char contact[64], addr[64], buf[64];
	const char *ct[1] = {contact};
	ccb_listener_config c = ft_listener_config();
	ccb_listener *l;
	ccb_error err = {0};
	int64_t ms;
	ccb_err rc;
	int fds0 = ccbt_count_fds(), thr0 = ft_count_threads();

	bad_start(&bb, half, accepting);
	snprintf(contact, sizeof contact, "127.0.0.1:%u#1", bb.port);
	snprintf(addr, sizeof addr, "127.0.0.1:%u", bb.port);
	/* The requester gives up at its deadline. */
	rc = ft_dial_echo(ct, 1, 1500, false, &ms, &err);
	printf("\n    dial to a %s broker: %s after %" PRId64 " ms (%s)\n",
	       half ? "half-answering" : accepting ? "mute" : "never-accepting", ccb_strerror(rc), ms,
	       err.detail);
	CU_ASSERT_NOT_EQUAL(rc, CCB_OK);
	CU_ASSERT(rc == CCB_ERR_TIMEOUT || rc == CCB_ERR_NO_BROKER || rc == CCB_ERR_NO_CALLBACK);
	CU_ASSERT(ms >= 1000 && ms < 4000);

	/* The listener: each registration attempt times out at timeout_ms and
	 * is retried after the reconnect interval. */
	c.broker = addr;
	c.timeout_ms = 400;
	c.reconnect_interval_ms = 100;
	l = ft_listener_start(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_EQUAL(ccb_listener_wait_registered(l, 1, 1500, NULL), CCB_ERR_TIMEOUT);
	{
		char *s = NULL;
		ccb_listener_status_json(l, &s, NULL);
		json_t *j = json_loads(s, 0, NULL), *br;
		br = json_array_get(json_object_get(j, "brokers"), 0);
		/* It tried more than once: it did not hang on the first try. */
		CU_ASSERT(json_integer_value(json_object_get(br, "reconnects")) >= 1);
		snprintf(buf, sizeof buf, "%s", json_string_value(json_object_get(br, "state")));
		CU_ASSERT(strcmp(buf, "registered") != 0);
		json_decref(j);
		ccb_free(s);
	}
	/* A good broker comes back on that port: the listener registers. */
	bad_stop(&bb);
	{
		ccb_broker_config cfg;
		bkt_broker k = {0};
		char listen[64];
		bkt_config(&cfg, &k.sec);
		snprintf(listen, sizeof listen, "127.0.0.1:%u", bb.port);
		cfg.listen = listen;
		bkt_start(&k, &cfg);
		CU_ASSERT_EQUAL(ccb_listener_wait_registered(l, 1, 10000, NULL), CCB_OK);
		{
			char *cl = NULL;
			ccb_listener_contact_list(l, &cl, NULL);
			const char *ct2[1] = {cl};
			CU_ASSERT_EQUAL(ft_dial_echo(ct2, 1, 10000, false, NULL, NULL), CCB_OK);
			ccb_free(cl);
		}
		ccb_listener_free(l);
		bkt_stop(&k);
	}
	CU_ASSERT(ft_settle(fds0, thr0, 10000));
}

static void test_never_accepting(void)
{
	silent_case(false, false);
}

static void test_mute_broker(void)
{
	silent_case(false, true);
}

static void test_half_message(void)
{
	silent_case(true, true);
}

static const ccbt_test tests[] = {
	{"one of three brokers killed", test_one_of_three_killed},
	{"broker never accepts", test_never_accepting},
	{"broker accepts and never answers", test_mute_broker},
	{"broker answers half a message", test_half_message},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"fault brokers", tests}, {NULL, NULL}};

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return ccbt_run(suites);
}
