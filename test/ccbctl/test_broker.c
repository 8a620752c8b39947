/* ccbctl broker as a real process: SIGTERM stops it cleanly, SIGKILL and a
 * restart keep every CCBID through the record file, and ccbctl status
 * reads its status over the network. */
#include <signal.h>
#include <sys/wait.h>

#include "../broker/bktest.h"

typedef struct proc {
	pid_t pid;
	FILE *out;
	int port;
} proc;

static char cfg_path[128], rec_path[128];

static void write_cfg(void)
{
	FILE *f;

	snprintf(cfg_path, sizeof cfg_path, "/tmp/ccbt-ccbctl-broker-%d.json", (int)getpid());
	snprintf(rec_path, sizeof rec_path, "/tmp/ccbt-ccbctl-broker-%d.ccb_reconnect", (int)getpid());
	f = fopen(cfg_path, "w");
	fprintf(f,
		"{\"CCB_SERVER_LISTEN\": \"127.0.0.1:0\", \"CCB_RECONNECT_FILE\": \"%s\",\n"
		" \"SEC_DEFAULT_AUTHENTICATION_METHODS\": \"CLAIMTOBE\", \"UID_DOMAIN\": \"vm\",\n"
		" \"ALLOW_DAEMON\": \"condor@vm\"}\n",
		rec_path);
	fclose(f);
}

/* Start `ccbctl broker -c cfg` and read its "listening ... ports P" line. */
static bool start(proc *p)
{
	int pfd[2];
	char line[512], *ports;

	if (pipe(pfd) != 0)
		return false;
	p->pid = fork();
	if (p->pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execl(CCBCTL_PATH, "ccbctl", "broker", "-c", cfg_path, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	p->out = fdopen(pfd[0], "r");
	if (!fgets(line, sizeof line, p->out) || !(ports = strstr(line, " ports ")))
		return false;
	p->port = atoi(ports + 7);
	return p->port > 0;
}

static int finish(proc *p, int sig)
{
	int st = -1;

	kill(p->pid, sig);
	waitpid(p->pid, &st, 0);
	fclose(p->out);
	return st;
}

static void test_kill_restart_keeps_ids(void)
{
	proc p;
	bkt_listener l[3], again[3], fresh;
	char contact[3][256], cookie[3][64];
	int st;

	write_cfg();
	unlink(rec_path);
	CU_ASSERT_FATAL(start(&p));
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL_FATAL(bkt_register(p.port, "condor", NULL, NULL, &l[i]), CCB_OK);
		snprintf(contact[i], sizeof contact[i], "%s", l[i].contact);
		snprintf(cookie[i], sizeof cookie[i], "%s", l[i].cookie);
	}
	/* No clean shutdown. */
	st = finish(&p, SIGKILL);
	CU_ASSERT(WIFSIGNALED(st));
	for (int i = 0; i < 3; i++)
		bkt_listener_close(&l[i]);
	/* The restarted broker listens on a new port; the contact's broker part
	 * is opaque to the reconnect check (id after the last '#'). */
	CU_ASSERT_FATAL(start(&p));
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL_FATAL(bkt_register(p.port, "condor", contact[i], cookie[i], &again[i]), CCB_OK);
		CU_ASSERT_EQUAL(again[i].id, l[i].id);
		CU_ASSERT_STRING_EQUAL(again[i].cookie, cookie[i]);
	}
	/* A new registrant gets an id past the loaded ones + 100. */
	CU_ASSERT_EQUAL_FATAL(bkt_register(p.port, "condor", NULL, NULL, &fresh), CCB_OK);
	CU_ASSERT_EQUAL(fresh.id, 103);
	/* ccbctl status over the network. */
	{
		char cmd[512], buf[8192];
		FILE *f;
		size_t n;
		json_t *o;
		snprintf(cmd, sizeof cmd, "%s status --broker 127.0.0.1:%d --pretty", CCBCTL_PATH, p.port);
		f = popen(cmd, "r");
		n = fread(buf, 1, sizeof buf - 1, f);
		buf[n] = '\0';
		CU_ASSERT_EQUAL(pclose(f), 0);
		o = json_loads(buf, 0, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(o);
		CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(o, "stats"),
								   "CCBEndpointsConnected")), 4);
		CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(o, "stats"),
								   "CCBReconnects")), 3);
		CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\n  \"")); /* indented */
		json_decref(o);
	}
	/* SIGTERM: a clean stop, exit 0. */
	st = finish(&p, SIGTERM);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	for (int i = 0; i < 3; i++)
		bkt_listener_close(&again[i]);
	bkt_listener_close(&fresh);
	unlink(rec_path);
	unlink(cfg_path);
}

static void test_usage(void)
{
	char cmd[256];
	int st;

	snprintf(cmd, sizeof cmd, "%s broker >/dev/null 2>&1", CCBCTL_PATH);
	st = system(cmd);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 2);
	snprintf(cmd, sizeof cmd, "%s status >/dev/null 2>&1", CCBCTL_PATH);
	st = system(cmd);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 2);
	/* Nobody listening: exit 1. */
	snprintf(cmd, sizeof cmd, "%s status --broker 127.0.0.1:1 --timeout 2 >/dev/null 2>&1", CCBCTL_PATH);
	st = system(cmd);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 1);
}

static const ccbt_test tests[] = {
	{"SIGKILL + restart keeps CCBIDs; status; SIGTERM", test_kill_restart_keeps_ids},
	{"usage and failures", test_usage},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"ccbctl broker", tests}, {NULL, NULL}};

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return ccbt_run(suites);
}
