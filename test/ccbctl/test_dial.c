/* ccbctl ping / dial through CCB, run as real processes against the fake
 * broker and target of test/dial/fakeccb.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "../dial/fakeccb.h"

static int run(const char *cmd, char **out)
{
	FILE *p = popen(cmd, "r");
	ccb_buf b;
	char chunk[1024];
	size_t n;
	int st;

	ccb_buf_init(&b);
	while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
		ccb_buf_append(&b, chunk, n);
	st = pclose(p);
	*out = ccb_buf_steal_str(&b);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *write_config(const char *json)
{
	static char path[64];
	int fd;

	strcpy(path, "/tmp/ccbt-dial-XXXXXX");
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(write(fd, json, strlen(json)) == (ssize_t)strlen(json));
	close(fd);
	return path;
}

static void test_ping_through_ccb(void)
{
	fake_broker b;
	char cmd[512], *out;

	fb_start(&b, FB_FORWARD, TG_SEC, "4");
	snprintf(cmd, sizeof cmd,
		 "%s ping --level READ '<127.0.0.1:1?CCBID=127.0.0.1:%u%%234&addrs=127.0.0.1-1>' 2>&1",
		 CCBCTL_PATH, b.port);
	CU_ASSERT_EQUAL(run(cmd, &out), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "READ access:  ALLOWED"));
	/* each dial step with its time */
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "] connect: connecting"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "] request: CCB_REQUEST sent for ccbid 4"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "] hello: valid hello"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, " ms  ["));
	free(out);
	fb_stop(&b);
	CU_ASSERT_EQUAL(b.requests, 1);
	CU_ASSERT_FALSE(b.streaming_required);
	CU_ASSERT_EQUAL(b.target_rc, CCB_OK);
}

static void test_ping_streaming_json(void)
{
	fake_broker b;
	char cmd[512], *out;
	json_t *o;

	fb_start(&b, FB_STREAM, TG_SEC, "4");
	snprintf(cmd, sizeof cmd,
		 "%s ping --json --proxy-return '<10.1.2.3:9618>' '<127.0.0.1:1?CCBID=127.0.0.1:%u%%234>'",
		 CCBCTL_PATH, b.port);
	CU_ASSERT_EQUAL(run(cmd, &out), 0);
	o = json_loads(out, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT(json_is_true(json_object_get(o, "authorized")));
	CU_ASSERT(json_array_size(json_object_get(o, "dial")) >= 5);
	json_decref(o);
	free(out);
	fb_stop(&b);
	CU_ASSERT(b.streaming_required);
	CU_ASSERT_STRING_EQUAL(b.my_address, "<10.1.2.3:9618>");
}

static void test_ping_firewalled_tool(void)
{
	fake_broker b;
	char cmd[512], *out, *cfg;

	/* TOOLS_ASSUME_FIREWALLS: streaming with an empty MyAddress. */
	cfg = write_config("{\"TOOLS_ASSUME_FIREWALLS\": true, \"CCB_DIAL_TIMEOUT\": 10}");
	fb_start(&b, FB_STREAM, TG_SEC, "9");
	snprintf(cmd, sizeof cmd, "%s ping -c %s '<127.0.0.1:1?CCBID=127.0.0.1:%u%%239>' 2>&1",
		 CCBCTL_PATH, cfg, b.port);
	CU_ASSERT_EQUAL(run(cmd, &out), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "READ access:  ALLOWED"));
	free(out);
	fb_stop(&b);
	CU_ASSERT(b.streaming_required);
	CU_ASSERT_STRING_EQUAL(b.my_address, "");
	unlink(cfg);
	/* An unknown CCBID: exit 1 with the broker's text. */
	fb_start(&b, FB_UNKNOWN_CCBID, TG_SEC, "9");
	snprintf(cmd, sizeof cmd, "%s ping '<127.0.0.1:1?CCBID=127.0.0.1:%u%%239>' 2>&1", CCBCTL_PATH,
		 b.port);
	CU_ASSERT_EQUAL(run(cmd, &out), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "no daemon is currently registered"));
	free(out);
	fb_stop(&b);
}

static void test_dial_netcat(void)
{
	fake_broker b;
	char cmd[768], *out;

	fb_start(&b, FB_FORWARD, TG_ECHO, "3");
	/* One CEDAR message with the string "ping" in, "pong:ping" back; the
	 * echo target then closes, which ends ccbctl. */
	snprintf(cmd, sizeof cmd,
		 "printf '\\001\\000\\000\\000\\005ping\\000' | %s dial -v "
		 "'<127.0.0.1:1?CCBID=127.0.0.1:%u%%233>' 2>/dev/null | od -An -v -tx1 | tr -d ' \\n'",
		 CCBCTL_PATH, b.port);
	CU_ASSERT_EQUAL(run(cmd, &out), 0);
	CU_ASSERT_STRING_EQUAL(out, "010000000a706f6e673a70696e6700");
	free(out);
	fb_stop(&b);
	CU_ASSERT_EQUAL(b.target_rc, CCB_OK);
	/* usage and failures */
	CU_ASSERT_EQUAL(run(CCBCTL_PATH " dial 2>&1", &out), 2);
	free(out);
	snprintf(cmd, sizeof cmd, "%s dial --timeout 2 '<127.0.0.1:%u?CCBID=127.0.0.1:%u%%231>' </dev/null 2>&1",
		 CCBCTL_PATH, fb_dead_port(), fb_dead_port());
	CU_ASSERT_EQUAL(run(cmd, &out), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "no CCB broker"));
	free(out);
}

static const ccbt_test tests[] = {
	{"ping through CCB prints each step", test_ping_through_ccb},
	{"ping in proxy mode, JSON", test_ping_streaming_json},
	{"ping as a firewalled tool; unknown CCBID", test_ping_firewalled_tool},
	{"dial: netcat through CCB", test_dial_netcat},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"ccbctl dial", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
