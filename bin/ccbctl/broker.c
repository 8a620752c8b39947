/* ccbctl broker: run libccb's CCB broker from a JSON config file. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ccb/broker.h"
#include "ccb/config.h"
#include "ccb/log.h"
#include "ccbctl.h"

static ccb_broker *running;
static int hup_pipe[2] = {-1, -1};

/* Runs on whatever thread the signal lands on, between any two instructions:
 * only async-signal-safe calls (write(2), and ccb_broker_stop, which writes
 * to an eventfd), and errno is put back so the interrupted code's errno
 * survives. (Not unit-tested: a handler clobbering errno shows only as a
 * rare wrong error message in the interrupted thread.) */
static void on_signal(int sig)
{
	int saved_errno = errno;

	if (sig == SIGHUP) {
		/* Reloaded on the reload thread. */
		char c = 'h';
		if (write(hup_pipe[1], &c, 1) < 0) {
		}
	} else {
		ccb_broker_stop(running);
	}
	errno = saved_errno;
}

/* Log lines to stderr, or with a time stamp to --log FILE. */
static void log_line(ccb_log_level level, const char *msg, void *user)
{
	FILE *f = user;

	if (f == stderr) {
		fprintf(stderr, "ccbctl broker: %s: %s\n", ccb_log_level_name(level), msg);
		return;
	}
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	fprintf(f, "%s %s: %s\n", when, ccb_log_level_name(level), msg);
	fflush(f);
}

/* SIGHUP: read the config file again and apply its security settings
 * (methods, ALLOW/DENY lists, key and certificate files) to new
 * handshakes. The broker copies them, so each config is freed at once. */
struct reload {
	const char *path;
	pthread_t t;
};

static void *reload_main(void *arg)
{
	struct reload *r = arg;
	char c;

	while (read(hup_pipe[0], &c, 1) == 1 && c == 'h') {
		ccb_config *cfg = NULL;
		ccb_broker_config bc;
		ccb_error err = {0};
		bool ok = ccb_config_load(r->path, &cfg, &err) == CCB_OK &&
			  ccb_broker_config_load(cfg, &bc, &err) == CCB_OK &&
			  ccb_broker_reload_security(running, &bc.security, &err) == CCB_OK;

		ccb_config_free(cfg);
		if (!ok)
			fprintf(stderr, "ccbctl broker: SIGHUP: %s (settings unchanged)\n", err.detail);
		else
			fprintf(stderr, "ccbctl broker: SIGHUP: security settings reloaded from %s\n",
				r->path);
	}
	return NULL;
}

static void broker_usage(FILE *f)
{
	fprintf(f,
		"usage: ccbctl broker -c FILE [-v|--debug] [--log FILE]\n"
		"\n"
		"Run a CCB broker (HTCondor's collector-side connection broker) until\n"
		"SIGTERM or SIGINT; SIGHUP re-reads the config's security settings\n"
		"(methods, ALLOW/DENY, keys and certificates) for new connections.\n"
		"FILE is a JSON config: CCB_SERVER_LISTEN,\n"
		"CCB_SERVER_PUBLIC_ADDRESS, CCB_RECONNECT_FILE, CCB_SERVER_* limits and\n"
		"timeouts, CCB_OUTBOUND_* (the outbound proxy), SEC_* / ALLOW_* security\n"
		"knobs. Once listening it prints\n"
		"\"listening <public address> ports P[,P...]\" on standard output.\n"
		"\n"
		"  -c, --config FILE  the JSON config (required)\n"
		"  -v                 log at info level to standard error\n"
		"  --debug            log at debug level\n"
		"  --log FILE         append log lines (with UTC times) to FILE, not stderr\n"
		"\n"
		"Exit status: 0 stopped by a signal, 1 failure, 2 usage.\n");
}

/* The command line. */
typedef struct {
	const char *cfg_path, *log_path;
	int verbosity; /* a ccb_log_level, -1 for the default */
} broker_args;

/* Returns -1 to go on, else the exit status. */
static int broker_parse(int argc, char **argv, broker_args *a)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"debug", no_argument, NULL, 'd'},
					     {"log", required_argument, NULL, 'l'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	int opt;

	*a = (broker_args){.verbosity = -1};
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': a->cfg_path = optarg; break;
		case 'v': a->verbosity = CCB_LOG_INFO; break;
		case 'd': a->verbosity = CCB_LOG_DEBUG; break;
		case 'l': a->log_path = optarg; break;
		case 'h': broker_usage(stdout); return CCBCTL_EXIT_OK;
		default: broker_usage(stderr); return CCBCTL_EXIT_USAGE;
		}
	}
	if (!a->cfg_path || optind != argc) {
		broker_usage(stderr);
		return CCBCTL_EXIT_USAGE;
	}
	return -1;
}

/* The SIGHUP pipe and the thread that reloads on it; NULL (said on stderr)
 * when either cannot be had. */
static struct reload *reload_start(const char *cfg_path)
{
	struct reload *rl;

	if (pipe2(hup_pipe, O_CLOEXEC) != 0 || !(rl = calloc(1, sizeof *rl))) {
		fprintf(stderr, "ccbctl broker: %s\n", ccbctl_strerror(errno));
		return NULL;
	}
	rl->path = cfg_path;
	if (pthread_create(&rl->t, NULL, reload_main, rl) != 0) {
		free(rl);
		fprintf(stderr, "ccbctl broker: cannot start the reload thread\n");
		return NULL;
	}
	return rl;
}

static void reload_stop(struct reload *rl)
{
	if (rl) {
		char c = 'q';
		if (write(hup_pipe[1], &c, 1) == 1)
			pthread_join(rl->t, NULL);
		free(rl);
	}
	for (int i = 0; i < 2; i++)
		if (hup_pipe[i] >= 0) {
			close(hup_pipe[i]);
			hup_pipe[i] = -1;
		}
}

static void signals_catch(bool on)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on ? on_signal : SIG_DFL;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (on)
		signal(SIGPIPE, SIG_IGN);
}

/* "listening ADDRESS ports P[,P...]" on stdout, which scripts wait for, and
 * a warning when the advertised address is useless to other hosts. */
static void print_listening(ccb_broker *b, const ccb_config *cfg, const ccb_broker_config *bc)
{
	/* A wildcard listen address without a public one advertises loopback:
	 * fine for a test, useless to daemons on other hosts. */
	if (!ccb_config_get(cfg, "CCB_SERVER_PUBLIC_ADDRESS") &&
	    strstr(ccb_broker_address(b), "<127.") == ccb_broker_address(b) &&
	    (!bc->listen || strstr(bc->listen, "0.0.0.0") || strstr(bc->listen, "[::]")))
		fprintf(stderr, "ccbctl broker: warning: advertising %s in CCB contacts; set "
				"CCB_SERVER_PUBLIC_ADDRESS to the address daemons and tools reach "
				"this broker at\n",
			ccb_broker_address(b));
	printf("listening %s ports", ccb_broker_address(b));
	for (size_t i = 0; i < ccb_broker_listen_count(b); i++)
		printf("%s%d", i ? "," : " ", ccb_broker_port(b, i));
	printf("\n");
	fflush(stdout);
}

int ccbctl_broker(int argc, char **argv)
{
	broker_args a;
	int rc = broker_parse(argc, argv, &a);
	FILE *logf = stderr;
	struct reload *rl = NULL;
	ccb_config *cfg = NULL;
	ccb_broker_config bc;
	ccb_broker *b = NULL;
	ccb_error err = {0};

	if (rc >= 0)
		return rc;
	rc = CCBCTL_EXIT_FAIL;
	if (a.log_path && !(logf = fopen(a.log_path, "a"))) {
		fprintf(stderr, "ccbctl broker: --log %s: %s\n", a.log_path, ccbctl_strerror(errno));
		return CCBCTL_EXIT_FAIL;
	}
	ccb_set_log_handler(log_line, a.verbosity >= 0 ? (ccb_log_level)a.verbosity : CCB_LOG_WARNING,
			    logf);
	/* The loader fills bc.security (SEC_* / ALLOW_*) and bc.client_security
	 * (SEC_CLIENT_*, for the broker's own outbound connections). */
	if (ccb_config_load(a.cfg_path, &cfg, &err) || ccb_broker_config_load(cfg, &bc, &err) ||
	    ccb_broker_new(&bc, &b, &err)) {
		fprintf(stderr, "ccbctl broker: %s\n", err.detail);
		goto out;
	}
	running = b;
	if (!(rl = reload_start(a.cfg_path)))
		goto out;
	signals_catch(true);
	print_listening(b, cfg, &bc);
	if (ccb_broker_run(b, &err)) {
		fprintf(stderr, "ccbctl broker: %s\n", err.detail);
		goto out;
	}
	rc = CCBCTL_EXIT_OK;
out:
	signals_catch(false);
	reload_stop(rl);
	running = NULL;
	ccb_broker_free(b);
	ccb_config_free(cfg);
	ccb_set_log_handler(NULL, CCB_LOG_WARNING, NULL);
	if (logf != stderr)
		fclose(logf);
	return rc;
}
