/* ccbctl listen: open a command socket, register with the configured CCB
 * brokers, print the sinful to advertise, and serve reverse and direct
 * connections (condor_ping's DC_SEC_QUERY and DC_NOP) until SIGTERM or
 * SIGINT. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ccb/addr.h"
#include "ccb/clock.h"
#include "ccb/commands.h"
#include "ccb/config.h"
#include "ccb/listener.h"
#include "ccb/log.h"
#include "ccb/security.h"
#include "ccbctl.h"

static void listen_usage(FILE *f)
{
	fprintf(f,
		"usage: ccbctl listen -c FILE [--json] [--status-interval SECONDS] [--verbose]\n"
		"\n"
		"Open a command socket, register with the CCB brokers of CCB_ADDRESS and\n"
		"print, on stdout, the sinful to advertise\n"
		"(<ip:port?CCBID=...&PrivNet=...&addrs=ip-port&noUDP>) as soon as it is\n"
		"known and again whenever it changes. Reverse connections, and direct ones\n"
		"from clients with the same PRIVATE_NETWORK_NAME, are served as inbound\n"
		"command sockets: condor_ping (DC_SEC_QUERY) and DC_NOP work. SIGTERM or\n"
		"SIGINT stops cleanly (exit 0).\n"
		"\n"
		"  -c, --config FILE          JSON config: CCB_ADDRESS, CCB_HEARTBEAT_INTERVAL,\n"
		"                             CCB_RECONNECT_TIME, CCB_TIMEOUT, CCB_LISTENER_NAME,\n"
		"                             CCB_LISTENER_COMMAND_ADDRESS,\n"
		"                             PRIVATE_NETWORK_NAME, SEC_CLIENT_* (registration),\n"
		"                             SEC_* / ALLOW_* / DENY_* (serving)\n"
		"  --json                     print the listener status (JSON) on exit\n"
		"  --status-interval SECONDS  also print it every SECONDS\n"
		"  -v, --verbose              library log on stderr (info level)\n"
		"\n"
		"Exit status: 0 stopped by a signal, 1 failure, 2 usage.\n");
}

/* DC_NOP_<LEVEL> at their levels (H:src/condor_includes/condor_commands.h,
 * DC_BASE + 20..29), DC_NOP and DC_SEC_QUERY at ALLOW, as daemon core. */
static int listen_perm(int command, void *user)
{
	(void)user;
	switch (command) {
	case CCB_CMD_DC_NOP: return CCB_PERM_ALLOW;
	case 60020: return CCB_PERM_READ;
	case 60021: return CCB_PERM_WRITE;
	case 60023: return CCB_PERM_ADMINISTRATOR;
	case 60026: return CCB_PERM_DAEMON;
	case CCB_CMD_DC_SEC_QUERY: return CCB_PERM_ALLOW;
	case CCB_CMD_LIBCCB_STATUS: return CCB_PERM_READ;
	}
	return -1;
}

/* The running listener, for status queries arriving through CCB. */
static ccb_listener *status_source;

static void log_to_stderr(ccb_log_level level, const char *msg, void *user)
{
	(void)user;
	fprintf(stderr, "ccbctl listen: %s: %s\n", ccb_log_level_name(level), msg);
}

/* One reverse or direct connection: the requester drives DC_AUTHENTICATE. */
static void serve_conn(ccb_stream *conn, const ccb_listener_conn_info *info, void *user)
{
	const ccb_sec_server_config *sc = user;
	ccb_sec_command cmd;
	ccb_error err = {0};
	char what[256];

	if (info->direct)
		snprintf(what, sizeof what, "direct connection from %s", info->peer);
	else
		snprintf(what, sizeof what, "request %s from %s", info->request_id, info->requester);
	ccb_stream_set_timeout(conn, 20000);
	if (ccb_sec_server_accept(conn, sc, &cmd, &err))
		fprintf(stderr, "ccbctl listen: %s: %s\n", what, err.detail);
	else {
		fprintf(stderr, "ccbctl listen: %s: served command %d for %s\n", what, cmd.command,
			cmd.info.user[0] ? cmd.info.user : CCB_UNAUTHENTICATED_USER);
		/* `ccbctl status --listener SINFUL`: the status as one string,
		 * as the broker answers it. */
		if (cmd.command == CCB_CMD_LIBCCB_STATUS) {
			char *st = NULL;
			ccb_listener_status_json(status_source, &st, NULL);
			if (st && ccb_stream_put_string(conn, st) == CCB_OK)
				ccb_stream_end_message(conn);
			ccb_free(st);
		}
	}
	/* DC_NOP has no payload and DC_SEC_QUERY is answered: just close. */
	ccb_stream_free(conn);
}

static void print_status(ccb_listener *l)
{
	char *st = NULL;
	ccb_listener_status_json(l, &st, NULL);
	if (st) {
		printf("%s\n", st);
		fflush(stdout);
	}
	ccb_free(st);
}

/* The command line. */
typedef struct {
	const char *cfg_path;
	int status_interval; /* seconds, 0 for none */
	bool as_json, verbose;
} listen_args;

/* Returns -1 to go on, else the exit status. */
static int listen_parse(int argc, char **argv, listen_args *a)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"json", no_argument, NULL, 'j'},
					     {"status-interval", required_argument, NULL, 's'},
					     {"verbose", no_argument, NULL, 'v'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	int opt;

	memset(a, 0, sizeof *a);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': a->cfg_path = optarg; break;
		case 'j': a->as_json = true; break;
		case 's': a->status_interval = atoi(optarg); break;
		case 'v': a->verbose = true; break;
		case 'h': listen_usage(stdout); return CCBCTL_EXIT_OK;
		default: listen_usage(stderr); return CCBCTL_EXIT_USAGE;
		}
	}
	if (optind != argc || !a->cfg_path || a->status_interval < 0) {
		listen_usage(stderr);
		return CCBCTL_EXIT_USAGE;
	}
	return -1;
}

/* Until SIGTERM or SIGINT (blocked in `set`): print the sinful whenever it
 * changes, and the status every `status_interval` seconds. */
static void listen_serve(ccb_listener *l, const sigset_t *set, int status_interval)
{
	char *last = NULL;
	uint64_t gen = 0;
	int64_t next_status = INT64_MAX;

	if (status_interval > 0)
		next_status = ccb_now_ms() + status_interval * 1000LL;
	for (;;) {
		struct timespec ts = {0, 200 * 1000000L};
		int sig = sigtimedwait(set, NULL, &ts);

		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (ccb_listener_wait_change(l, &gen, 0, NULL) == CCB_OK) {
			char *sinful = NULL;
			ccb_listener_sinful(l, &sinful, NULL); /* NULL while unregistered */
			if (sinful && (!last || strcmp(last, sinful))) {
				printf("%s\n", sinful);
				fflush(stdout);
				ccb_free(last);
				last = sinful;
			} else {
				ccb_free(sinful);
			}
		}
		if (ccb_now_ms() >= next_status) {
			print_status(l);
			next_status = ccb_now_ms() + status_interval * 1000LL;
		}
	}
	ccb_free(last);
}

int ccbctl_listen(int argc, char **argv)
{
	listen_args a;
	int rc = listen_parse(argc, argv, &a);
	const char *privnet;
	char privnet_buf[300], host[256] = "localhost";
	ccb_config *cfg = NULL;
	ccb_listener_config lc = {0};
	ccb_sec_server_config sc;
	ccb_listener *l = NULL;
	ccb_error err = {0};
	sigset_t set;

	if (rc >= 0)
		return rc;
	rc = CCBCTL_EXIT_FAIL;
	if (ccb_config_load(a.cfg_path, &cfg, &err) || ccb_listener_config_load(cfg, &lc, &err) ||
	    ccb_config_server_security(cfg, &sc, &err)) {
		fprintf(stderr, "ccbctl listen: %s\n", err.detail);
		goto out;
	}
	/* A client whose PRIVATE_NETWORK_NAME equals our PrivNet dials our
	 * command port directly (sinful.md §4.1). Unset, the name is unique to
	 * this process, so every client goes through CCB. */
	privnet = ccb_config_get(cfg, "PRIVATE_NETWORK_NAME");
	if (!privnet) {
		gethostname(host, sizeof host - 1);
		snprintf(privnet_buf, sizeof privnet_buf, "ccbctl-listen-%ld.%s", (long)getpid(), host);
		privnet = privnet_buf;
	}
	sc.command_perm = listen_perm;
	lc.handler = serve_conn;
	lc.user = &sc;
	lc.private_network_name = privnet;
	ccb_set_log_handler(log_to_stderr, a.verbose ? CCB_LOG_INFO : CCB_LOG_WARNING, NULL);
	/* Signals are taken synchronously by this thread; every library thread
	 * inherits the blocked mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (ccb_listener_new(&lc, &l, &err)) {
		fprintf(stderr, "ccbctl listen: %s\n", err.detail);
		goto out;
	}
	status_source = l; /* before any handler can run */
	if (a.verbose)
		fprintf(stderr, "ccbctl listen: command socket %s\n", ccb_listener_address(l));
	if (ccb_listener_start(l, &err)) {
		fprintf(stderr, "ccbctl listen: %s\n", err.detail);
		goto out;
	}
	listen_serve(l, &set, a.status_interval);
	ccb_listener_stop(l);
	if (a.as_json)
		print_status(l);
	rc = CCBCTL_EXIT_OK;
out:
	ccb_listener_free(l);
	ccb_set_log_handler(NULL, CCB_LOG_ERROR, NULL);
	ccb_listener_config_clear(&lc);
	ccb_config_free(cfg);
	return rc;
}
