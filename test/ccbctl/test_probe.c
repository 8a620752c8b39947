/* ccbctl probe against real processes: `ccbctl broker` + `ccbctl listen`
 * (CLAIMTOBE configs), then probes of the good path, of an unknown CCBID,
 * of a dead broker port and of a sinful with a dead and a live broker. */
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ccbt.h"
#include "ccbt_proc.h"
#include "ccb/error.h"

static char bcfg[128], lcfg[128], ccfg[128], sinful[512];
static int bport, fds_before;
static ccbt_proc *broker, *listener;

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

/* A port nobody listens on (bound, then closed). */
static int dead_port(void)
{
	uint16_t port;
	int fd = ccbt_listen(&port);

	close(fd);
	return port;
}

static int probe(char *address, bool json, char **out)
{
	char *argv[] = {CCBCTL_PATH, "probe", "-c", ccfg, "--timeout", "5", address,
			json ? "--json" : NULL, NULL};
	/* getopt permutes, so --json after the operand works */
	return ccbt_proc_run(argv, NULL, 30000, out);
}

static void setup(void)
{
	char text[1024], line[1024], *p;

	fds_before = ccbt_count_fds();
	snprintf(bcfg, sizeof bcfg, "/tmp/ccbt-probe-broker-%d.json", (int)getpid());
	snprintf(lcfg, sizeof lcfg, "/tmp/ccbt-probe-listen-%d.json", (int)getpid());
	snprintf(ccfg, sizeof ccfg, "/tmp/ccbt-probe-client-%d.json", (int)getpid());
	write_file(bcfg, "{\"CCB_SERVER_LISTEN\": \"127.0.0.1:0\",\n"
			 " \"SEC_DEFAULT_AUTHENTICATION\": \"REQUIRED\",\n"
			 " \"SEC_DEFAULT_AUTHENTICATION_METHODS\": \"CLAIMTOBE\", \"UID_DOMAIN\": \"vm\",\n"
			 " \"ALLOW_READ\": \"*\", \"ALLOW_DAEMON\": \"condor@vm\"}\n");
	write_file(ccfg, "{\"SEC_DEFAULT_AUTHENTICATION_METHODS\": \"CLAIMTOBE\",\n"
			 " \"SEC_CLAIMTOBE_USER\": \"prober\", \"UID_DOMAIN\": \"vm\"}\n");
	{
		char *argv[] = {CCBCTL_PATH, "broker", "-c", bcfg, NULL};
		broker = ccbt_proc_start(argv, NULL);
	}
	CU_ASSERT_FATAL(ccbt_proc_wait_line(broker, "listening ", 20000, line, sizeof line));
	p = strstr(line, " ports ");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	bport = atoi(p + 7);
	CU_ASSERT_FATAL(bport > 0);
	snprintf(text, sizeof text,
		 "{\"CCB_ADDRESS\": \"127.0.0.1:%d\", \"SEC_DEFAULT_AUTHENTICATION\": \"REQUIRED\",\n"
		 " \"SEC_DEFAULT_AUTHENTICATION_METHODS\": \"CLAIMTOBE\", \"SEC_CLAIMTOBE_USER\": \"condor\",\n"
		 " \"UID_DOMAIN\": \"vm\", \"ALLOW_READ\": \"*\"}\n",
		 bport);
	write_file(lcfg, text);
	{
		char *argv[] = {CCBCTL_PATH, "listen", "-c", lcfg, NULL};
		listener = ccbt_proc_start(argv, NULL);
	}
	CU_ASSERT_FATAL(ccbt_proc_wait_line(listener, "CCBID=", 20000, line, sizeof line));
	p = strchr(line, '<');
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	snprintf(sinful, sizeof sinful, "%s", p);
	snprintf(text, sizeof text, "CCBID=127.0.0.1:%d%%3faddrs%%3d127.0.0.1-%d#", bport, bport);
	CU_ASSERT_PTR_NOT_NULL(strstr(sinful, text));
}

static void test_whole_path_text(void)
{
	char *out = NULL;

	CU_ASSERT_EQUAL(probe(sinful, false, &out), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "OK: the path works through 1 of 1 broker path(s)"));
	CU_ASSERT_PTR_NULL(strstr(out, "FAILED"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "READ access ALLOWED"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "broker security:  method CLAIMTOBE, identity prober@vm, "
					   "encryption AES-GCM"));
	/* piped stderr: no spinner */
	CU_ASSERT_PTR_NULL(strchr(out, '\r'));
	CU_ASSERT_PTR_NULL(strstr(out, "probing"));
	free(out);
}

static void test_whole_path_json(void)
{
	static const char *want[] = {"parse", "resolve", "connect", "authenticate", "request",
				     "callback", "hello", "target handshake", "authorization"};
	char *out = NULL, bk[64];
	json_t *o, *path, *steps, *bs;
	json_error_t je;

	CU_ASSERT_EQUAL(probe(sinful, true, &out), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	o = json_loads(out, 0, &je);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT(json_is_true(json_object_get(o, "ok")));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "address")), sinful);
	CU_ASSERT_EQUAL_FATAL(json_array_size(json_object_get(o, "paths")), 1);
	path = json_array_get(json_object_get(o, "paths"), 0);
	snprintf(bk, sizeof bk, "127.0.0.1:%d", bport);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(path, "broker")), bk);
	CU_ASSERT(json_is_true(json_object_get(path, "ok")));
	CU_ASSERT(json_is_true(json_object_get(path, "authorized")));
	steps = json_object_get(path, "steps");
	CU_ASSERT_EQUAL_FATAL(json_array_size(steps), sizeof want / sizeof want[0]);
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		json_t *st = json_array_get(steps, i);
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(st, "step")), want[i]);
		CU_ASSERT(json_is_true(json_object_get(st, "ok")));
		CU_ASSERT(json_is_integer(json_object_get(st, "ms")));
		CU_ASSERT_PTR_NULL(json_object_get(st, "hint"));
	}
	bs = json_object_get(path, "broker_security");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(bs, "method")), "CLAIMTOBE");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(bs, "identity")), "prober@vm");
	CU_ASSERT(json_is_true(json_object_get(bs, "encryption")));
	CU_ASSERT_PTR_NOT_NULL(strstr(json_string_value(json_object_get(bs, "version")), "$CondorVersion: "));
	bs = json_object_get(path, "target_security");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(bs, "method")), "CLAIMTOBE");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(bs, "identity")), "prober@vm");
	json_decref(o);
	free(out);
}

/* Replace the CCBID's id (after '#') with 999999. */
static void with_ccbid(char *dst, size_t n, const char *id)
{
	const char *hash = strchr(sinful, '#'), *end;

	CU_ASSERT_PTR_NOT_NULL_FATAL(hash);
	end = hash + 1 + strspn(hash + 1, "0123456789");
	snprintf(dst, n, "%.*s#%s%s", (int)(hash - sinful), sinful, id, end);
}

static void test_unknown_ccbid(void)
{
	char addr[600], *out = NULL;
	json_t *o, *steps, *last;

	with_ccbid(addr, sizeof addr, "999999");
	CU_ASSERT_EQUAL(probe(addr, true, &out), 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	o = json_loads(out, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT(json_is_false(json_object_get(o, "ok")));
	steps = json_object_get(json_array_get(json_object_get(o, "paths"), 0), "steps");
	CU_ASSERT_EQUAL_FATAL(json_array_size(steps), 5);
	CU_ASSERT(json_is_true(json_object_get(json_array_get(steps, 3), "ok"))); /* authenticate */
	last = json_array_get(steps, 4);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(last, "step")), "request");
	CU_ASSERT(json_is_false(json_object_get(last, "ok")));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(last, "error")), "unknown CCBID");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(last, "hint")),
			       "target not registered (re-advertised sinful stale?)");
	CU_ASSERT_PTR_NOT_NULL(strstr(json_string_value(json_object_get(last, "detail")),
				      "no daemon is currently registered"));
	json_decref(o);
	free(out);
}

/* A target that never calls back (the listener is stopped with SIGSTOP):
 * the callback step fails with the firewall hint naming our MyAddress. */
static void test_no_callback(void)
{
	char *out = NULL, *argv[] = {CCBCTL_PATH, "probe", "-c", ccfg, "--timeout", "2", "--json",
				     sinful, NULL};
	json_t *o, *path, *steps, *last;
	const char *hint, *my;

	CU_ASSERT_EQUAL_FATAL(kill(ccbt_proc_pid(listener), SIGSTOP), 0);
	CU_ASSERT_EQUAL(ccbt_proc_run(argv, NULL, 30000, &out), 1);
	CU_ASSERT_EQUAL(kill(ccbt_proc_pid(listener), SIGCONT), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	o = json_loads(out, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	path = json_array_get(json_object_get(o, "paths"), 0);
	steps = json_object_get(path, "steps");
	CU_ASSERT_EQUAL_FATAL(json_array_size(steps), 6);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(steps, 4), "step")),
			       "request");
	CU_ASSERT(json_is_true(json_object_get(json_array_get(steps, 4), "ok")));
	last = json_array_get(steps, 5);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(last, "step")), "callback");
	CU_ASSERT(json_is_false(json_object_get(last, "ok")));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(last, "error")),
			       ccb_strerror(CCB_ERR_NO_CALLBACK));
	my = json_string_value(json_object_get(path, "my_address"));
	hint = json_string_value(json_object_get(last, "hint"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(my);
	CU_ASSERT_PTR_NOT_NULL_FATAL(hint);
	CU_ASSERT_EQUAL(strncmp(my, "<127.0.0.1:", 11), 0);
	{
		char want[400];
		snprintf(want, sizeof want, "target cannot reach MyAddress %s: firewall? try --streaming", my);
		CU_ASSERT_STRING_EQUAL(hint, want);
	}
	/* the wait is charged to the callback, not the request */
	CU_ASSERT(json_integer_value(json_object_get(last, "ms")) >= 1500);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_array_get(steps, 4), "ms")), 0);
	json_decref(o);
	free(out);
}

/* On a terminal a long wait shows a progress line on stderr, erased at
 * the end (piped, nothing: see test_whole_path_text). */
static void test_spinner_on_tty(void)
{
	char buf[65536];
	size_t got = 0;
	int master = -1, st = -1;
	pid_t pid;

	CU_ASSERT_EQUAL_FATAL(kill(ccbt_proc_pid(listener), SIGSTOP), 0);
	pid = forkpty(&master, NULL, NULL, NULL);
	if (pid == 0) {
		execl(CCBCTL_PATH, "ccbctl", "probe", "-c", ccfg, "--timeout", "1", sinful, (char *)NULL);
		_exit(127);
	}
	CU_ASSERT_FATAL(pid > 0);
	for (;;) {
		struct pollfd pf = {.fd = master, .events = POLLIN};
		ssize_t n;

		if (poll(&pf, 1, 20000) <= 0)
			break;
		n = read(master, buf + got, sizeof buf - 1 - got);
		if (n <= 0 && !(n < 0 && errno == EINTR))
			break; /* EIO once the child is gone */
		if (n > 0)
			got += (size_t)n;
	}
	buf[got] = '\0';
	waitpid(pid, &st, 0);
	close(master);
	CU_ASSERT_EQUAL(kill(ccbt_proc_pid(listener), SIGCONT), 0);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, " probing "));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "[1 request]"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\r\033[K")); /* the line is erased */
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "FAILED: the path works through 0 of 1"));
}

static void test_dead_broker(void)
{
	char addr[256], *out = NULL;
	int port = dead_port();

	snprintf(addr, sizeof addr, "<127.0.0.1:0?CCBID=127.0.0.1:%d#3>", port);
	CU_ASSERT_EQUAL(probe(addr, false, &out), 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "  connect "));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "FAILED broker 127.0.0.1:"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "hint:  broker not running or wrong port"));
	CU_ASSERT_PTR_NULL(strstr(out, "  authenticate "));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "FAILED: the path works through 0 of 1 broker path(s)"));
	free(out);
}

/* Two contacts probed in parallel: the dead one fails, the live one works,
 * so the exit status is 0. */
static void test_one_of_two(void)
{
	char addr[700], *out = NULL, *hash = strstr(sinful, "CCBID="), *end;
	json_t *o, *paths;
	int ok = 0, failed = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(hash);
	end = hash + 6 + strcspn(hash + 6, "&>");
	snprintf(addr, sizeof addr, "%.*s127.0.0.1:%d#7 %.*s%s", (int)(hash + 6 - sinful), sinful,
		 dead_port(), (int)(end - hash - 6), hash + 6, end);
	CU_ASSERT_EQUAL(probe(addr, true, &out), 0);
	o = json_loads(out, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	paths = json_object_get(o, "paths");
	CU_ASSERT_EQUAL_FATAL(json_array_size(paths), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *p = json_array_get(paths, i);
		if (json_is_true(json_object_get(p, "ok")))
			ok++;
		else
			failed++;
	}
	CU_ASSERT_EQUAL(ok, 1);
	CU_ASSERT_EQUAL(failed, 1);
	/* order follows the CCBID: the dead broker first */
	CU_ASSERT(json_is_false(json_object_get(json_array_get(paths, 0), "ok")));
	json_decref(o);
	free(out);
}

static void test_usage(void)
{
	char *out = NULL;
	char *none[] = {CCBCTL_PATH, "probe", NULL};
	char *help[] = {CCBCTL_PATH, "probe", "--help", NULL};
	char *bad[] = {CCBCTL_PATH, "probe", "not a sinful <", NULL};

	CU_ASSERT_EQUAL(ccbt_proc_run(none, NULL, 10000, &out), 2);
	free(out);
	CU_ASSERT_EQUAL(ccbt_proc_run(help, NULL, 10000, &out), 0);
	CU_ASSERT(out && strstr(out, "--timeout SECONDS"));
	CU_ASSERT(out && strstr(out, "Exit status"));
	free(out);
	CU_ASSERT_EQUAL(ccbt_proc_run(bad, NULL, 10000, &out), 2);
	CU_ASSERT(out && strstr(out, "parse"));
	free(out);
}

static void teardown(void)
{
	CU_ASSERT_EQUAL(ccbt_proc_stop(listener, SIGTERM, 10000), 0);
	CU_ASSERT_EQUAL(ccbt_proc_stop(broker, SIGTERM, 10000), 0);
	unlink(bcfg);
	unlink(lcfg);
	unlink(ccfg);
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds_before);
}

static const ccbt_test tests[] = {
	{"start broker and listener", setup},
	{"probe: every step ok (text)", test_whole_path_text},
	{"probe: every step ok (JSON)", test_whole_path_json},
	{"probe: unknown CCBID fails at request", test_unknown_ccbid},
	{"probe: no callback, with the firewall hint", test_no_callback},
	{"probe: progress line on a terminal", test_spinner_on_tty},
	{"probe: dead broker fails at connect", test_dead_broker},
	{"probe: one of two brokers works", test_one_of_two},
	{"probe: usage", test_usage},
	{"stop", teardown},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"ccbctl probe", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
