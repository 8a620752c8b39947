/* ccbctl broker: run libccb's CCB broker from a JSON config file. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccb/broker.h"
#include "ccb/config.h"
#include "ccb/log.h"
#include "ccbctl.h"

static ccb_broker *running;

static void on_signal(int sig)
{
	(void)sig;
	ccb_broker_stop(running); /* async-signal-safe */
}

static void log_to_stderr(ccb_log_level level, const char *msg, void *user)
{
	(void)user;
	fprintf(stderr, "ccbctl broker: %s: %s\n", ccb_log_level_name(level), msg);
}

static void broker_usage(FILE *f)
{
	fprintf(f,
		"usage: ccbctl broker -c FILE [-v|--debug]\n"
		"\n"
		"Run a CCB broker (HTCondor's collector-side connection broker) until\n"
		"SIGTERM or SIGINT. FILE is a JSON config: CCB_SERVER_LISTEN,\n"
		"CCB_SERVER_PUBLIC_ADDRESS, CCB_RECONNECT_FILE, CCB_SERVER_* limits and\n"
		"timeouts, SEC_* / ALLOW_* security knobs. Once listening it prints\n"
		"\"listening <public address> ports P[,P...]\" on standard output.\n"
		"\n"
		"  -c, --config FILE  the JSON config (required)\n"
		"  -v                 log at info level to standard error\n"
		"  --debug            log at debug level\n");
}

int ccbctl_broker(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"debug", no_argument, NULL, 'd'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *cfg_path = NULL;
	int opt, verbosity = -1, rc = CCBCTL_EXIT_FAIL;
	ccb_config *cfg = NULL;
	ccb_broker_config bc;
	ccb_sec_server_config sec;
	ccb_broker *b = NULL;
	ccb_error err = {0};
	struct sigaction sa;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': cfg_path = optarg; break;
		case 'v': verbosity = CCB_LOG_INFO; break;
		case 'd': verbosity = CCB_LOG_DEBUG; break;
		case 'h': broker_usage(stdout); return CCBCTL_EXIT_OK;
		default: broker_usage(stderr); return CCBCTL_EXIT_USAGE;
		}
	}
	if (!cfg_path || optind != argc) {
		broker_usage(stderr);
		return CCBCTL_EXIT_USAGE;
	}
	if (verbosity >= 0)
		ccb_set_log_handler(log_to_stderr, (ccb_log_level)verbosity, NULL);
	else
		ccb_set_log_handler(log_to_stderr, CCB_LOG_WARNING, NULL);
	if (ccb_config_load(cfg_path, &cfg, &err) || ccb_broker_config_load(cfg, &bc, &sec, &err) ||
	    ccb_broker_new(&bc, &b, &err)) {
		fprintf(stderr, "ccbctl broker: %s\n", err.detail);
		goto out;
	}
	running = b;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	printf("listening %s ports", ccb_broker_address(b));
	for (size_t i = 0; i < ccb_broker_listen_count(b); i++)
		printf("%s%d", i ? "," : " ", ccb_broker_port(b, i));
	printf("\n");
	fflush(stdout);
	if (ccb_broker_run(b, &err)) {
		fprintf(stderr, "ccbctl broker: %s\n", err.detail);
		goto out;
	}
	rc = CCBCTL_EXIT_OK;
out:
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	running = NULL;
	ccb_broker_free(b);
	ccb_config_free(cfg);
	return rc;
}
