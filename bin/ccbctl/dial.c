/* ccbctl dial: a netcat through CCB (or shared port, or direct). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ccb/config.h"
#include "ccb/dial.h"
#include "ccbctl.h"

/*
 * Dial options from the config file (shared with ping.c): CCB_DIAL_TIMEOUT
 * (seconds), CCB_DIAL_STAGGER_MS, CCB_CLIENT_STREAMING (default true, as
 * HTCondor), CCB_PROXY_RETURN_ADDRESS (streaming with that MyAddress) and
 * TOOLS_ASSUME_FIREWALLS (streaming with an empty MyAddress, required, as
 * HTCondor tools do: ccb-protocol.md §6.7, §7.4) and PRIVATE_NETWORK_NAME
 * (a target with that PrivNet is dialed directly), OUTBOUND_CCB_ADDRESS and
 * CCB_OUTBOUND_TTL (every connection through an outbound broker, §9.1). Command-line choices
 * (`streaming`, `proxy_return`, `timeout_s` > 0) win. Returns 0, or prints
 * the problem and returns CCBCTL_EXIT_FAIL.
 */
int ccbctl_dial_opts_from_config(const char *who, const ccb_config *cfg, ccb_dial_config *o,
				 const ccb_sec_client_config *sc, bool streaming,
				 const char *proxy_return, int timeout_s)
{
	long long timeout = 30, stagger = CCB_DIAL_DEFAULT_STAGGER_MS, ttl = 8;
	bool client_streaming = true, firewalls = false;
	const char *ret = ccb_config_get(cfg, "CCB_PROXY_RETURN_ADDRESS");
	ccb_error err;

	memset(o, 0, sizeof *o);
	if (ccb_config_int(cfg, "CCB_DIAL_TIMEOUT", 30, &timeout, &err) ||
	    ccb_config_int(cfg, "CCB_DIAL_STAGGER_MS", CCB_DIAL_DEFAULT_STAGGER_MS, &stagger, &err) ||
	    ccb_config_bool(cfg, "CCB_CLIENT_STREAMING", true, &client_streaming, &err) ||
	    ccb_config_bool(cfg, "TOOLS_ASSUME_FIREWALLS", false, &firewalls, &err) ||
	    ccb_config_int(cfg, "CCB_OUTBOUND_TTL", 8, &ttl, &err)) {
		fprintf(stderr, "ccbctl %s: %s\n", who, err.detail);
		return CCBCTL_EXIT_FAIL;
	}
	if (timeout_s > 0)
		timeout = timeout_s;
	if (timeout <= 0 || timeout > 86400) {
		fprintf(stderr, "ccbctl %s: CCB_DIAL_TIMEOUT must be 1..86400 seconds\n", who);
		return CCBCTL_EXIT_FAIL;
	}
	if (ttl < 1 || ttl > 1000) {
		fprintf(stderr, "ccbctl %s: CCB_OUTBOUND_TTL must be 1..1000\n", who);
		return CCBCTL_EXIT_FAIL;
	}
	o->outbound_ccb_address = ccb_config_get(cfg, "OUTBOUND_CCB_ADDRESS");
	o->outbound_ttl = (int)ttl;
	o->broker_sec = sc;
	o->private_network_name = ccb_config_get(cfg, "PRIVATE_NETWORK_NAME");
	o->timeout_ms = (int)timeout * 1000;
	/* 0 would mean "default": a configured 0 is "no stagger", i.e. 1 ms. */
	o->stagger_ms = stagger == 0 ? 1 : (int)(stagger < -1 ? -1 : stagger > 60000 ? 60000 : stagger);
	if (streaming || proxy_return) {
		o->streaming = true;
		o->proxy_return_addr = proxy_return ? proxy_return : (ret && *ret ? ret : NULL);
	} else if (client_streaming && ret && *ret) {
		o->streaming = true;
		o->proxy_return_addr = ret;
	} else if (client_streaming && firewalls) {
		/* A firewalled tool cannot listen: stream or fail (§6.7). */
		o->streaming = true;
		o->require_streaming = true;
		o->proxy_return_addr = "";
	}
	return 0;
}

void ccbctl_dial_set_outbound(ccb_dial_config *o, const char *broker)
{
	if (!broker)
		return;
	/* Explicitly asked for: HTCondor's exceptions (loopback, this host)
	 * do not apply. */
	o->outbound_ccb_address = broker;
	o->outbound_force = true;
}

/* Print each dial step with its time (stderr for dial, stdout for ping). */
void ccbctl_dial_print_step(const ccb_dial_event *ev, void *user)
{
	FILE *f = user;

	if (ev->attempt)
		fprintf(f, "dial %+6lld ms  [%d %s] %s: %s\n", (long long)ev->elapsed_ms, ev->attempt,
			ev->broker, ev->step, ev->detail);
	else
		fprintf(f, "dial %+6lld ms  %s: %s\n", (long long)ev->elapsed_ms, ev->step, ev->detail);
	fflush(f);
}

static void dial_usage(FILE *f)
{
	fprintf(f,
		"usage: ccbctl dial [-c FILE] [--streaming] [--proxy-return ADDR] [--timeout SECONDS]\n"
		"                   [--outbound BROKER] [-v] SINFUL\n"
		"\n"
		"Connect to a daemon (through CCB when its sinful carries CCBID, through\n"
		"shared port when it carries sock=, directly otherwise) and copy stdin to\n"
		"the connection and the connection to stdout, like netcat. End of stdin\n"
		"half-closes the connection; the command ends when the peer closes.\n"
		"\n"
		"  -c, --config FILE     JSON config: SEC_CLIENT_* for the broker, CCB_DIAL_TIMEOUT,\n"
		"                        CCB_DIAL_STAGGER_MS, CCB_CLIENT_STREAMING,\n"
		"                        CCB_PROXY_RETURN_ADDRESS, TOOLS_ASSUME_FIREWALLS\n"
		"  --streaming           ask the broker to relay (proxy mode)\n"
		"  --proxy-return ADDR   proxy mode with MyAddress ADDR\n"
		"  --outbound BROKER     ask BROKER (CCB_PROXY_CONNECT) to dial SINFUL and relay;\n"
		"                        also OUTBOUND_CCB_ADDRESS / CCB_OUTBOUND_TTL in the config\n"
		"  --timeout SECONDS     whole dial (default CCB_DIAL_TIMEOUT, 30)\n"
		"  -v, --verbose         print each dial step with its time on stderr\n"
		"\n"
		"Exit status: 0 done, 1 dial or I/O failed, 2 usage.\n");
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = fd == STDOUT_FILENO ? write(fd, p, n) : send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && (errno == EINTR || errno == EAGAIN)) {
			struct pollfd pf = {.fd = fd, .events = POLLOUT};
			poll(&pf, 1, 1000);
			continue;
		}
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Copy both ways until the peer closes; stdin EOF half-closes. */
static int pump(int sock)
{
	char buf[16384];
	bool in_open = true;

	for (;;) {
		struct pollfd p[2] = {{.fd = in_open ? STDIN_FILENO : -1, .events = POLLIN},
				      {.fd = sock, .events = POLLIN}};
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return CCBCTL_EXIT_FAIL;
		}
		if (p[1].revents) {
			n = recv(sock, buf, sizeof buf, 0);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0)
				return n == 0 ? CCBCTL_EXIT_OK : CCBCTL_EXIT_FAIL;
			if (!write_all(STDOUT_FILENO, buf, (size_t)n))
				return CCBCTL_EXIT_FAIL;
		}
		if (in_open && p[0].revents) {
			n = read(STDIN_FILENO, buf, sizeof buf);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				in_open = false;
				shutdown(sock, SHUT_WR);
				continue;
			}
			if (!write_all(sock, buf, (size_t)n))
				return CCBCTL_EXIT_FAIL;
		}
	}
}

int ccbctl_dial(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"streaming", no_argument, NULL, 's'},
					     {"proxy-return", required_argument, NULL, 'p'},
					     {"timeout", required_argument, NULL, 't'},
					     {"outbound", required_argument, NULL, 'o'},
					     {"verbose", no_argument, NULL, 'v'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *cfg_path = NULL, *proxy_return = NULL, *outbound = NULL;
	bool streaming = false, verbose = false;
	int timeout_s = 0, opt, rc = CCBCTL_EXIT_FAIL, fd;
	ccb_config *cfg = NULL;
	ccb_sec_client_config sc;
	ccb_dial_config o;
	ccb_stream *s = NULL;
	ccb_error err = {0};

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': cfg_path = optarg; break;
		case 's': streaming = true; break;
		case 'p': proxy_return = optarg; break;
		case 't': timeout_s = atoi(optarg); if (timeout_s <= 0) timeout_s = -1; break;
		case 'o': outbound = optarg; break;
		case 'v': verbose = true; break;
		case 'h': dial_usage(stdout); return CCBCTL_EXIT_OK;
		default: dial_usage(stderr); return CCBCTL_EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || timeout_s < 0) {
		dial_usage(stderr);
		return CCBCTL_EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	if (ccb_config_load(cfg_path, &cfg, &err) || ccb_config_client_security(cfg, &sc, &err)) {
		fprintf(stderr, "ccbctl dial: %s\n", err.detail);
		goto out;
	}
	if (ccbctl_dial_opts_from_config("dial", cfg, &o, &sc, streaming, proxy_return, timeout_s))
		goto out;
	ccbctl_dial_set_outbound(&o, outbound);
	if (verbose) {
		o.progress = ccbctl_dial_print_step;
		o.progress_user = stderr;
	}
	if (ccb_dial_sinful(argv[optind], &o, &s, &err)) {
		fprintf(stderr, "ccbctl dial: %s: %s\n", ccb_strerror(err.code), err.detail);
		goto out;
	}
	if (ccb_stream_detach_fd(s, &fd)) {
		fprintf(stderr, "ccbctl dial: %s\n", ccb_stream_error(s)->detail);
		goto out;
	}
	ccb_stream_free(s);
	s = NULL;
	rc = pump(fd);
	close(fd);
out:
	ccb_stream_free(s);
	ccb_config_free(cfg);
	return rc;
}
