/*
 * The tool end to end, as an administrator runs it: real `ccbctl broker`
 * and `ccbctl listen` processes on 127.0.0.1, `ccbctl ping` (standard and
 * streaming), `ccbctl dial` and `ccbctl status` (broker, and listener through
 * CCB) against them, then the broker SIGKILLed and restarted on the same
 * port: the listener's advertised sinful keeps working.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ccb/addr.h"
#include "ccbt.h"
#include "ccbt_proc.h"

static char dir[64], broker_cfg[128], listen_cfg[128], client_cfg[128], near_cfg[128];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

static char log_path[128];

static bool log_says_reloaded(void *arg)
{
	char *log = ccbt_read_file(log_path, NULL);
	bool yes = log && strstr(log, "security settings reloaded");

	(void)arg;
	free(log);
	return yes;
}

static void write_broker_cfg(const char *listen, const char *extra)
{
	char text[640];

	snprintf(text, sizeof text,
		 "{\"CCB_SERVER_LISTEN\": \"%s\", \"CCB_RECONNECT_FILE\": \"%s/reconnect\",\n"
		 " \"SEC_DEFAULT_AUTHENTICATION_METHODS\": \"CLAIMTOBE\", \"UID_DOMAIN\": \"it\",\n"
		 " %s\"ALLOW_DAEMON\": \"condor@it\"}\n",
		 listen, dir, extra);
	write_file(broker_cfg, text);
}

static ccbt_proc *start_broker(const char *listen, int *port)
{
	char line[256];
	char *argv[] = {CCBCTL_PATH, "broker", "-c", broker_cfg, "-v", "--log", log_path, NULL};
	ccbt_proc *p;

	write_broker_cfg(listen, "");
	p = ccbt_proc_start(argv, NULL);
	CU_ASSERT_FATAL(ccbt_proc_wait_line(p, "listening ", 10000, line, sizeof line));
	*port = atoi(strrchr(line, ' ') + 1);
	CU_ASSERT_FATAL(*port > 0);
	return p;
}

/* Run ccbctl with args; returns the exit code, output in *out (malloc'd). */
static int ccbctl(char **out, const char *a1, const char *a2, const char *a3, const char *a4,
		  const char *a5, const char *a6)
{
	char *argv[] = {CCBCTL_PATH, (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5,
			(char *)a6, NULL};
	return ccbt_proc_run(argv, NULL, 30000, out);
}

static long long stat_of(const char *json, const char *name)
{
	json_t *root = json_loads(json, 0, NULL);
	long long v = json_integer_value(json_object_get(json_object_get(root, "stats"), name));
	json_decref(root);
	return v;
}

static void test_tool_end_to_end(void)
{
	char text[512], sinful[512], addr[64], *out = NULL;
	char *listen_argv[] = {CCBCTL_PATH, "listen", "-c", listen_cfg, NULL};
	ccbt_proc *broker, *listener;
	int port, port2;

	snprintf(dir, sizeof dir, "/tmp/ccbt-it-XXXXXX");
	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	snprintf(broker_cfg, sizeof broker_cfg, "%s/broker.json", dir);
	snprintf(listen_cfg, sizeof listen_cfg, "%s/listen.json", dir);
	snprintf(client_cfg, sizeof client_cfg, "%s/client.json", dir);
	snprintf(near_cfg, sizeof near_cfg, "%s/near.json", dir);
	snprintf(log_path, sizeof log_path, "%s/broker.log", dir);
	broker = start_broker("127.0.0.1:0", &port);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);

	snprintf(text, sizeof text,
		 "{\"CCB_ADDRESS\": \"%s\", \"CCB_RECONNECT_TIME\": 1,\n"
		 " \"SEC_DEFAULT_AUTHENTICATION_METHODS\": \"CLAIMTOBE\", \"SEC_CLAIMTOBE_USER\": \"condor\",\n"
		 " \"UID_DOMAIN\": \"it\", \"PRIVATE_NETWORK_NAME\": \"it-net\"}\n",
		 addr);
	write_file(listen_cfg, text);
	write_file(client_cfg, "{\"SEC_CLIENT_AUTHENTICATION_METHODS\": \"CLAIMTOBE\", "
			       "\"SEC_CLAIMTOBE_USER\": \"alice\", \"UID_DOMAIN\": \"it\"}\n");
	/* A client on the listener's private network. */
	write_file(near_cfg, "{\"SEC_CLIENT_AUTHENTICATION_METHODS\": \"CLAIMTOBE\", "
			     "\"SEC_CLAIMTOBE_USER\": \"alice\", \"UID_DOMAIN\": \"it\", "
			     "\"PRIVATE_NETWORK_NAME\": \"it-net\"}\n");
	listener = ccbt_proc_start(listen_argv, NULL);
	CU_ASSERT_FATAL(ccbt_proc_wait_line(listener, "CCBID=", 10000, sinful, sizeof sinful));
	/* What it prints is a daemon sinful HTCondor tools take: a real port
	 * (never 0), the broker's contact in the collector's form, PrivNet. */
	{
		ccb_sinful *sf = NULL;
		char want[512];
		CU_ASSERT_EQUAL_FATAL(ccb_sinful_parse(sinful, &sf, NULL), CCB_OK);
		CU_ASSERT(ccb_sinful_port(sf) > 0);
		snprintf(want, sizeof want,
			 "<127.0.0.1:%d?CCBID=127.0.0.1:%d%%3faddrs%%3d127.0.0.1-%d#1&PrivNet=it-net"
			 "&addrs=127.0.0.1-%d&noUDP>",
			 ccb_sinful_port(sf), port, port, ccb_sinful_port(sf));
		CU_ASSERT_STRING_EQUAL(sinful, want);
		ccb_sinful_free(sf);
	}

	/* condor_ping's question through CCB, both modes. */
	CU_ASSERT_EQUAL(ccbctl(&out, "ping", "-c", client_cfg, "--level", "READ", sinful), 0);
	CU_ASSERT(out && strstr(out, "READ access:  ALLOWED"));
	CU_ASSERT(out && strstr(out, "hello: valid hello"));
	free(out);
	CU_ASSERT_EQUAL(ccbctl(&out, "ping", "-c", client_cfg, "--streaming", sinful, NULL), 0);
	CU_ASSERT(out && strstr(out, "ProxyMode=true"));
	free(out);
	/* Same PRIVATE_NETWORK_NAME: straight to the command port, no CCB
	 * request (the broker's counters below stay at one of each). */
	CU_ASSERT_EQUAL(ccbctl(&out, "ping", "-c", near_cfg, "--level", "READ", sinful), 0);
	CU_ASSERT(out && strstr(out, "READ access:  ALLOWED"));
	CU_ASSERT(out && strstr(out, "PrivNet it-net is ours"));
	CU_ASSERT(out && !strstr(out, "hello"));
	free(out);

	/* The broker's status, over the network. */
	CU_ASSERT_EQUAL(ccbctl(&out, "status", "-c", client_cfg, "--broker", addr, NULL), 0);
	CU_ASSERT_EQUAL(out ? stat_of(out, "CCBEndpointsConnected") : -1, 1);
	CU_ASSERT_EQUAL(out ? stat_of(out, "CCBRequests") : -1, 1);
	CU_ASSERT_EQUAL(out ? stat_of(out, "CCBStreamingRequests") : -1, 1);
	free(out);
	/* The listener's, asked through CCB like any daemon. */
	CU_ASSERT_EQUAL(ccbctl(&out, "status", "-c", client_cfg, "--listener", sinful, NULL), 0);
	if (out) {
		json_t *root = json_loads(out, 0, NULL);
		json_t *b0 = json_array_get(json_object_get(root, "brokers"), 0);
		CU_ASSERT_EQUAL(json_integer_value(json_object_get(root, "registered")), 1);
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(b0, "state")), "registered");
		CU_ASSERT(json_integer_value(json_object_get(b0, "requests_served")) >= 2);
		json_decref(root);
	}
	free(out);

	/* SIGKILL, restart on the same port with the same record file: the
	 * listener comes back under its old CCBID, so its sinful still works. */
	CU_ASSERT_EQUAL(ccbt_proc_stop(broker, SIGKILL, 5000), 128 + SIGKILL);
	broker = start_broker(addr, &port2);
	CU_ASSERT_EQUAL(port2, port);
	out = NULL;
	{
		int rc = -1;
		for (int i = 0; i < 60 && rc != 0; i++) {
			free(out);
			out = NULL;
			rc = ccbctl(&out, "ping", "-c", client_cfg, "--level", "READ", sinful);
			if (rc)
				usleep(250000);
		}
		CU_ASSERT_EQUAL(rc, 0);
		free(out);
	}
	CU_ASSERT_EQUAL(ccbctl(&out, "status", "-c", client_cfg, "--broker", addr, NULL), 0);
	CU_ASSERT_EQUAL(out ? stat_of(out, "CCBReconnects") : -1, 1);
	free(out);

	/* SIGHUP applies new security settings: READ is now required to
	 * authenticate and alice is denied it, so her status query is refused,
	 * while the registration stays. */
	write_broker_cfg(addr, "\"SEC_READ_AUTHENTICATION\": \"REQUIRED\", \"DENY_READ\": \"alice@it\", ");
	kill(ccbt_proc_pid(broker), SIGHUP);
	/* The broker logs the reload once it applies to new connections. */
	CU_ASSERT(ccbt_wait_until(20000, log_says_reloaded, NULL));
	out = NULL;
	CU_ASSERT_EQUAL(ccbctl(&out, "status", "-c", client_cfg, "--broker", addr, NULL), 1);
	free(out);
	out = NULL;
	{
		char *log = ccbt_read_file(log_path, NULL);
		CU_ASSERT(log && strstr(log, "Z info: broker: registered ccbid 1"));
		free(log);
	}

	/* Both stop cleanly on SIGTERM. */
	CU_ASSERT_EQUAL(ccbt_proc_stop(listener, SIGTERM, 10000), 0);
	CU_ASSERT_EQUAL(ccbt_proc_stop(broker, SIGTERM, 10000), 0);
	unlink(broker_cfg);
	unlink(listen_cfg);
	unlink(client_cfg);
	unlink(near_cfg);
	unlink(log_path);
	snprintf(text, sizeof text, "%s/reconnect", dir);
	unlink(text);
	snprintf(text, sizeof text, "%s/reconnect.tmp", dir);
	unlink(text);
	rmdir(dir);
}

static const ccbt_test tests[] = {
	{"ccbctl broker, listen, ping, status, SIGKILL restart, SIGHUP", test_tool_end_to_end},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"ccbctl end to end", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
