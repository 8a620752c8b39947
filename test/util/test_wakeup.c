/*
 * The stop/wake-up signal (util/wakeup.h): raised until drained, seen by a
 * waiter that starts polling after the signal and by one already blocked in
 * poll() on another thread; closing is idempotent and leaks no fd.
 */
#include <poll.h>
#include <pthread.h>

#include "ccbt.h"
#include "util/wakeup.h"

static void test_raise_and_drain(void)
{
	int before = ccbt_count_fds();
	ccb__wakeup w = CCB__WAKEUP_NONE;
	ccb_error err;

	CU_ASSERT_FALSE(ccb__wakeup_raised(&w));
	ccb__wakeup_signal(&w); /* a closed wake-up ignores signals */
	CU_ASSERT_EQUAL_FATAL(ccb__wakeup_init(&w, &err), CCB_OK);
	CU_ASSERT(ccb__wakeup_fd(&w) >= 0);
	CU_ASSERT_FALSE(ccb__wakeup_raised(&w));
	CU_ASSERT_FALSE(ccb__wakeup_drain(&w));
	ccb__wakeup_signal(&w);
	ccb__wakeup_signal(&w);
	/* Stays raised until drained, however often it is looked at. */
	CU_ASSERT_TRUE(ccb__wakeup_raised(&w));
	CU_ASSERT_TRUE(ccb__wakeup_raised(&w));
	CU_ASSERT_TRUE(ccb__wakeup_drain(&w));
	CU_ASSERT_FALSE(ccb__wakeup_raised(&w));
	ccb__wakeup_close(&w);
	CU_ASSERT_EQUAL(ccb__wakeup_fd(&w), -1);
	ccb__wakeup_close(&w);
	CU_ASSERT_EQUAL(ccbt_count_fds(), before);
}

static void *signal_it(void *p)
{
	ccb__wakeup_signal(p);
	return NULL;
}

/* A waiter blocked with no timeout is woken by a signal from another thread. */
static void test_wakes_a_blocked_poll(void)
{
	ccb__wakeup w;
	pthread_t t;
	struct pollfd p;

	CU_ASSERT_EQUAL_FATAL(ccb__wakeup_init(&w, NULL), CCB_OK);
	p.fd = ccb__wakeup_fd(&w);
	p.events = POLLIN;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, signal_it, &w), 0);
	CU_ASSERT_EQUAL(poll(&p, 1, -1), 1);
	CU_ASSERT(p.revents & POLLIN);
	pthread_join(t, NULL);
	ccb__wakeup_close(&w);
}

static const ccbt_test tests[] = {
	{"raised until drained, close idempotent", test_raise_and_drain},
	{"wakes a poll blocked on another thread", test_wakes_a_blocked_poll},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"wake-up signal", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
