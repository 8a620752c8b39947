/*
 * The listener's public times are milliseconds with HTCondor's defaults and
 * floors (heartbeat 1..29999 ms raised to 30000, as HTCondor raises 1-29 s
 * to 30 s); the test-only setter goes below the floor. No broker needed:
 * nothing is started.
 */
#include <string.h>

#include "ccbt.h"
#include "ccb/listener.h"
#include "listener_internal.h"
#include "listener_test.h"

static void handler(ccb_stream *conn, const ccb_listener_conn_info *info, void *user)
{
	ccb_stream_free(conn);
}

static ccb_listener *make(int heartbeat_ms, int reconnect_ms, int timeout_ms, int dial_ms)
{
	ccb_listener_config c = {.broker = "127.0.0.1:9", .handler = handler,
				 .heartbeat_interval_ms = heartbeat_ms,
				 .reconnect_interval_ms = reconnect_ms, .timeout_ms = timeout_ms,
				 .dial_timeout_ms = dial_ms, .command_address = "127.0.0.1"};
	ccb_listener *l = NULL;
	ccb_error err = {0};

	CU_ASSERT_EQUAL_FATAL(ccb_listener_new(&c, &l, &err), CCB_OK);
	return l;
}

static void test_defaults_and_floor(void)
{
	ccb_listener *l = make(0, 0, 0, 0);

	CU_ASSERT_EQUAL(l->heartbeat_ms, 300000);
	CU_ASSERT_EQUAL(l->reconnect_ms, 60000);
	CU_ASSERT_EQUAL(l->timeout_ms, 300000);
	CU_ASSERT_EQUAL(l->dial_ms, 30000);
	ccb_listener_free(l);

	l = make(1, 250, 1500, 700);
	CU_ASSERT_EQUAL(l->heartbeat_ms, 30000);
	CU_ASSERT_EQUAL(l->reconnect_ms, 250);
	CU_ASSERT_EQUAL(l->timeout_ms, 1500);
	CU_ASSERT_EQUAL(l->dial_ms, 700);
	ccb_listener_free(l);

	l = make(29999, 0, 0, 0);
	CU_ASSERT_EQUAL(l->heartbeat_ms, 30000);
	ccb_listener_free(l);
	l = make(45000, 0, 0, 0);
	CU_ASSERT_EQUAL(l->heartbeat_ms, 45000);
	ccb_listener_free(l);
	l = make(CCB_LISTENER_HEARTBEAT_OFF, 0, 0, 0);
	CU_ASSERT_EQUAL(l->heartbeat_ms, 0);
	/* The test setter has no floor. */
	ccb__listener_set_test_heartbeat(l, 150);
	CU_ASSERT_EQUAL(l->heartbeat_ms, 150);
	ccb_listener_free(l);
}

static const ccbt_test tests[] = {
	{"milliseconds, defaults and the heartbeat floor", test_defaults_and_floor},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"listener timing", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
