/*
 * ccbctl probe: walk the whole CCB path to a daemon, step by step, once per
 * broker contact of its sinful, and say which step fails, why, and what to
 * try. Each broker gets its own thread running a one-contact ccb_dial(); the
 * steps come from the dial's progress events (the "authenticated" event
 * carries the broker handshake's outcome), then the probe runs condor_ping's
 * DC_SEC_QUERY against the target over the reversed connection. Protocol
 * logic stays in the library; this file only maps events to steps
 * (probe_report.c prints them).
 */
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ccb/addr.h"
#include "ccb/clock.h"
#include "ccb/commands.h"
#include "ccb/config.h"
#include "ccb/dial.h"
#include "ccb/security.h"
#include "ccbctl.h"
#include "probe.h"

#define PROBE_DEFAULT_PORT 9618 /* a contact without a port: the collector's */
#define PROBE_DC_NOP_READ 60020 /* H:src/condor_includes/condor_commands.h */

struct probe {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int running;
	const char *address;
	ccb_dial_config dopts;           /* template; each path copies it */
	ccb_sec_client_config tsc;     /* for the target */
	const char *target_sock;       /* sock= of the target's sinful */
	int timeout_ms;
};

/* ---- steps (under p->mu) --------------------------------------------- */

static pstep *cur_open(ppath *pp)
{
	return pp->n > 0 && !pp->steps[pp->n - 1].done ? &pp->steps[pp->n - 1] : NULL;
}

static void close_step(ppath *pp, pstep *st, ccb_err code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void close_step(ppath *pp, pstep *st, ccb_err code, const char *fmt, ...)
{
	va_list ap;

	if (!st || st->done)
		return;
	st->done = true;
	st->code = code;
	st->ms = ccb_now_ms() - pp->t0 - st->start_ms;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(st->detail, sizeof st->detail, fmt, ap);
		va_end(ap);
	}
}

/* Close the open step (ok) and open `name`. */
static pstep *open_step(ppath *pp, const char *name, const char *detail)
{
	pstep *st;

	close_step(pp, cur_open(pp), CCB_OK, NULL);
	if (pp->n == PROBE_MAX_STEPS)
		return NULL;
	st = &pp->steps[pp->n++];
	memset(st, 0, sizeof *st);
	snprintf(st->name, sizeof st->name, "%s", name);
	snprintf(st->detail, sizeof st->detail, "%s", detail ? detail : "");
	st->start_ms = ccb_now_ms() - pp->t0;
	return st;
}

static bool has_failed(const ppath *pp)
{
	for (int i = 0; i < pp->n; i++)
		if (pp->steps[i].done && pp->steps[i].code)
			return true;
	return false;
}

static void fail_current(ppath *pp, const char *fallback, ccb_err code, const char *detail)
{
	pstep *st = cur_open(pp);

	if (has_failed(pp))
		return;
	if (!st)
		st = open_step(pp, fallback, NULL);
	close_step(pp, st, code, "%s", detail);
}

/* Dial progress -> probe steps. Calls are serialized per dial. */
static void on_event(const ccb_dial_event *ev, void *user)
{
	ppath *pp = user;
	pstep *st;
	const char *s = ev->step;

	pthread_mutex_lock(&pp->p->mu);
	st = cur_open(pp);
	if (ev->broker[0] && !pp->broker[0])
		snprintf(pp->broker, sizeof pp->broker, "%s", ev->broker);
	if (!strcmp(s, "connect")) {
		if (!st || strcmp(st->name, "connect"))
			open_step(pp, "connect", ev->detail);
	} else if (!strcmp(s, "authenticate")) {
		if (st && !strcmp(st->name, "authenticate"))
			snprintf(st->detail, sizeof st->detail, "%s", ev->detail); /* renegotiating */
		else {
			if (st && !strcmp(st->name, "connect"))
				close_step(pp, st, CCB_OK, "connected to %s", ev->broker);
			open_step(pp, "authenticate", ev->detail);
		}
	} else if (!strcmp(s, "authenticated")) {
		if (ev->sec) {
			pp->bsec = *ev->sec;
			pp->have_bsec = true;
		}
		close_step(pp, st, CCB_OK, "%s; broker version %s", ev->detail,
			   ev->sec && ev->sec->peer_version[0] ? ev->sec->peer_version : "unknown");
	} else if (!strcmp(s, "proxy")) {
		/* The streaming gate fell back to a standard request: a note. */
		open_step(pp, "streaming", NULL);
		close_step(pp, cur_open(pp), CCB_OK, "%s", ev->detail);
	} else if (!strcmp(s, "relay")) {
		/* Outbound broker: CCB_PROXY_CONNECT accepted, the relay is up. */
		close_step(pp, st, CCB_OK, "%s", ev->detail);
	} else if (!strcmp(s, "listen")) {
		const char *at = strstr(ev->detail, " at ");
		snprintf(pp->my_address, sizeof pp->my_address, "%s", at ? at + 4 : ev->detail);
	} else if (!strcmp(s, "request")) {
		pp->streaming = strstr(ev->detail, "(streaming)") != NULL;
		open_step(pp, "request", ev->detail);
	} else if (!strcmp(s, "broker reply")) {
		if (st && !strcmp(st->name, "request"))
			close_step(pp, st, CCB_OK, "accepted (%s)", ev->detail);
		/* streaming: the broker has the target's callback */
		open_step(pp, "callback", pp->streaming ? "through the broker (proxy mode)" : NULL);
		if (pp->streaming) {
			close_step(pp, cur_open(pp), CCB_OK, NULL);
			open_step(pp, "hello", NULL);
		}
	} else if (!strcmp(s, "reverse connect")) {
		if (st && !strcmp(st->name, "request"))
			close_step(pp, st, CCB_OK, "accepted (the target called back)");
		if (!(st = cur_open(pp)) || strcmp(st->name, "callback"))
			open_step(pp, "callback", NULL);
		close_step(pp, cur_open(pp), CCB_OK, "%s", ev->detail);
		open_step(pp, "hello", NULL);
	} else if (!strcmp(s, "hello")) {
		if (!st || strcmp(st->name, "hello"))
			open_step(pp, "hello", NULL);
		close_step(pp, cur_open(pp), CCB_OK, "%s", ev->detail);
	} else if (!strcmp(s, "shared port")) {
		open_step(pp, "shared port", NULL);
		close_step(pp, cur_open(pp), CCB_OK, "%s", ev->detail);
	} else if (!strcmp(s, "failed") || !strcmp(s, "cancelled")) {
		/* No answer yet to a request: the callback is what is missing. */
		if (st && !strcmp(st->name, "request") && ev->code == CCB_ERR_NO_CALLBACK) {
			int64_t sent = st->start_ms;
			pstep *cb;

			close_step(pp, st, CCB_OK, "sent; no reply from the broker");
			st->ms = 0;
			if ((cb = open_step(pp, "callback", NULL)))
				cb->start_ms = sent; /* the whole wait was for the callback */
		}
		fail_current(pp, "dial", ev->code, ev->detail);
	}
	/* "impostor", "won": nothing to add */
	pthread_mutex_unlock(&pp->p->mu);
}

/* ---- one path -------------------------------------------------------- */

/* Step "resolve": the broker's host, as the dial will connect to it. */
static bool resolve_broker(ppath *pp)
{
	ccb_contact c = {0};
	ccb_sinful *b = NULL;
	ccb_error e = {0};
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	char list[256] = "";
	size_t used = 0;
	int port, grc;
	bool ok = false;

	pthread_mutex_lock(&pp->p->mu);
	open_step(pp, "parse", NULL);
	pthread_mutex_unlock(&pp->p->mu);
	if (ccb_contact_split(pp->contact, &c, &e) || ccb_sinful_parse_address(c.broker, &b, &e)) {
		pthread_mutex_lock(&pp->p->mu);
		close_step(pp, cur_open(pp), CCB_ERR_PARSE, "%s", e.detail);
		pthread_mutex_unlock(&pp->p->mu);
		goto out;
	}
	port = ccb_sinful_port(b) > 0 ? ccb_sinful_port(b) : PROBE_DEFAULT_PORT;
	pthread_mutex_lock(&pp->p->mu);
	snprintf(pp->broker, sizeof pp->broker, "%s%s%s:%d", strchr(ccb_sinful_host(b), ':') ? "[" : "",
		 ccb_sinful_host(b), strchr(ccb_sinful_host(b), ':') ? "]" : "", port);
	close_step(pp, cur_open(pp), CCB_OK, "broker %s, ccbid %s%s", pp->broker, c.ids[0],
		   c.n_ids > 1 ? " (nested route)" : "");
	open_step(pp, "resolve", NULL);
	pthread_mutex_unlock(&pp->p->mu);
	grc = getaddrinfo(ccb_sinful_host(b), NULL, &hints, &ai);
	for (struct addrinfo *i = ai; grc == 0 && i; i = i->ai_next) {
		char h[NI_MAXHOST];
		if (getnameinfo(i->ai_addr, i->ai_addrlen, h, sizeof h, NULL, 0, NI_NUMERICHOST) == 0 &&
		    !strstr(list, h) && used + strlen(h) + 2 < sizeof list)
			used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", used ? " " : "", h);
	}
	pthread_mutex_lock(&pp->p->mu);
	if (grc)
		close_step(pp, cur_open(pp), CCB_ERR_NOT_FOUND, "%s: %s", ccb_sinful_host(b),
			   gai_strerror(grc));
	else
		close_step(pp, cur_open(pp), CCB_OK, "%s", list);
	pthread_mutex_unlock(&pp->p->mu);
	ok = grc == 0;
out:
	if (ai)
		freeaddrinfo(ai);
	ccb_sinful_free(b);
	ccb_contact_clear(&c);
	return ok;
}

static void *path_main(void *arg)
{
	ppath *pp = arg;
	probe *p = pp->p;
	ccb_dial_config o = p->dopts;
	ccb_stream *s = NULL;
	ccb_error e = {0};
	bool authorized = false;
	ccb_err rc;

	o.progress = on_event;
	o.progress_user = pp;
	if (pp->contact && !resolve_broker(pp))
		goto done;
	if (pp->contact) {
		const char *one[1] = {pp->contact};
		o.target_shared_port_id = p->target_sock;
		rc = ccb_dial(one, 1, &o, &s, &e);
	} else {
		rc = ccb_dial_sinful(p->address, &o, &s, &e);
	}
	pthread_mutex_lock(&p->mu);
	if (rc)
		fail_current(pp, "dial", rc, e.detail);
	else
		close_step(pp, cur_open(pp), CCB_OK, NULL);
	if (!rc)
		open_step(pp, "target handshake", "DC_SEC_QUERY for DC_NOP_READ");
	pthread_mutex_unlock(&p->mu);
	if (rc)
		goto done;
	/* The end-to-end check, as condor_ping (security-handshake.md). */
	ccb_stream_set_timeout(s, p->timeout_ms);
	rc = ccb_sec_client_start(s, &p->tsc, CCB_CMD_DC_SEC_QUERY, PROBE_DC_NOP_READ, p->address,
				  &pp->tsec, &e);
	pthread_mutex_lock(&p->mu);
	if (rc) {
		close_step(pp, cur_open(pp), rc, "%s", e.detail);
	} else {
		pp->have_tsec = true;
		close_step(pp, cur_open(pp), CCB_OK, "%s as %s, encryption %s; target version %s",
			   pp->tsec.authenticated ? pp->tsec.method : "no authentication",
			   pp->tsec.user[0] ? pp->tsec.user : CCB_UNAUTHENTICATED_USER,
			   ccb_sec_info_encryption(&pp->tsec),
			   pp->tsec.peer_version[0] ? pp->tsec.peer_version : "unknown");
		open_step(pp, "authorization", NULL);
	}
	pthread_mutex_unlock(&p->mu);
	if (rc)
		goto done;
	rc = ccb_sec_client_query_reply(s, &authorized, &e);
	pthread_mutex_lock(&p->mu);
	if (rc)
		close_step(pp, cur_open(pp), rc, "%s", e.detail);
	else if (!authorized)
		close_step(pp, cur_open(pp), CCB_ERR_NOT_AUTHORIZED, "READ access DENIED");
	else
		close_step(pp, cur_open(pp), CCB_OK, "READ access ALLOWED");
	pp->authorized = authorized;
	pp->ok = rc == CCB_OK && authorized;
	pthread_mutex_unlock(&p->mu);
done:
	ccb_stream_free(s);
	pthread_mutex_lock(&p->mu);
	close_step(pp, cur_open(pp), CCB_ERR_STATE, "not finished"); /* defensive */
	pp->finished = true;
	p->running--;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void probe_usage(FILE *f)
{
	fprintf(f,
		"usage: ccbctl probe [-c FILE] [--json] [--timeout SECONDS] [--streaming]\n"
		"                    [--outbound BROKER] SINFUL\n"
		"\n"
		"Walk the whole path to a daemon behind CCB, step by step, once per broker\n"
		"contact of its sinful (all brokers in parallel): parse the contact, resolve\n"
		"the broker, connect, authenticate for CCB_REQUEST (method, identity,\n"
		"encryption, broker version), send the request, wait for the target's\n"
		"reverse connection and its hello, then run condor_ping's DC_SEC_QUERY\n"
		"(READ) against the target. Each broker stops at its first failure, which\n"
		"is shown with the likely cause and a fix. A sinful without CCBID is probed\n"
		"directly (or through shared port).\n"
		"\n"
		"  -c, --config FILE     JSON config: SEC_CLIENT_* / SEC_DEFAULT_* (broker and\n"
		"                        target), CCB_DIAL_TIMEOUT, CCB_CLIENT_STREAMING,\n"
		"                        CCB_PROXY_RETURN_ADDRESS, TOOLS_ASSUME_FIREWALLS\n"
		"  --json                print the steps as JSON on stdout\n"
		"  --timeout SECONDS     per broker path (default CCB_DIAL_TIMEOUT, 30)\n"
		"  --streaming           ask the brokers to relay (proxy mode)\n"
		"  --outbound BROKER     one path through BROKER (CCB_PROXY_CONNECT): connect,\n"
		"                        authenticate, request, relay, then the target's steps;\n"
		"                        also OUTBOUND_CCB_ADDRESS in the config\n"
		"\n"
		"On a terminal a progress line is shown on stderr while waiting.\n"
		"Exit status: 0 the whole path works through at least one broker,\n"
		"1 it works through none, 2 usage or bad sinful.\n");
}

/* The command line. */
typedef struct {
	const char *cfg_path, *outbound, *address;
	int timeout_s; /* 0: CCB_DIAL_TIMEOUT */
	bool as_json, streaming;
} probe_args;

/* Returns -1 to go on, else the exit status. */
static int probe_parse(int argc, char **argv, probe_args *a)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"timeout", required_argument, NULL, 't'},
					     {"json", no_argument, NULL, 'j'},
					     {"streaming", no_argument, NULL, 's'},
					     {"outbound", required_argument, NULL, 'o'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	int opt;

	memset(a, 0, sizeof *a);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': a->cfg_path = optarg; break;
		case 't': a->timeout_s = atoi(optarg); if (a->timeout_s <= 0) a->timeout_s = -1; break;
		case 'j': a->as_json = true; break;
		case 's': a->streaming = true; break;
		case 'o': a->outbound = optarg; break;
		case 'h': probe_usage(stdout); return CCBCTL_EXIT_OK;
		default: probe_usage(stderr); return CCBCTL_EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || a->timeout_s < 0) {
		probe_usage(stderr);
		return CCBCTL_EXIT_USAGE;
	}
	a->address = argv[optind];
	return -1;
}

/* The probe's settings from the config and the command line: the dial
 * template for every path and the security settings for the target.
 * Clears *n when an outbound broker takes the one path. */
static int probe_setup(probe *p, const probe_args *a, const ccb_config *cfg, const ccb_sinful *addr,
		       ccb_sec_client_config *bsc, size_t *n)
{
	ccb_sec_client_config sc;
	ccb_error err = {0};

	memset(p, 0, sizeof *p);
	if (ccb_config_client_security(cfg, &sc, &err)) {
		fprintf(stderr, "ccbctl probe: %s\n", err.detail);
		return CCBCTL_EXIT_FAIL;
	}
	*bsc = sc;
	if (ccbctl_dial_opts_from_config("probe", cfg, &p->dopts, bsc, a->streaming, NULL, a->timeout_s))
		return CCBCTL_EXIT_FAIL;
	p->dopts.stagger_ms = -1; /* one contact per dial anyway */
	ccbctl_dial_set_outbound(&p->dopts, a->outbound);
	/* Through an outbound broker: one path, the broker dials the sinful
	 * (ccb_dial_sinful decides, with HTCondor's exceptions). */
	if (p->dopts.outbound_ccb_address && *p->dopts.outbound_ccb_address)
		*n = 0;
	p->address = a->address;
	p->target_sock = ccb_sinful_shared_port_id(addr);
	p->timeout_ms = p->dopts.timeout_ms;
	p->tsc = sc;
	/* SSL checks the target by alias, else host (security-handshake.md §7.5). */
	if (!p->tsc.ssl_server_host)
		p->tsc.ssl_server_host = ccb_sinful_alias(addr) ? ccb_sinful_alias(addr) : ccb_sinful_host(addr);
	return 0;
}

/* One thread per path (one path when there are no contacts); waits for all
 * of them, with the spinner on a terminal. Returns how many were started. */
static size_t probe_run(probe *p, ppath *paths, char **contacts, size_t n)
{
	size_t started = 0;
	int64_t t0 = ccb_now_ms();
	bool tty = isatty(2) == 1;
	int tick = 0;

	for (size_t i = 0; i < (n ? n : 1); i++) {
		paths[i].p = p;
		paths[i].contact = n ? contacts[i] : NULL;
		paths[i].t0 = t0;
		pthread_mutex_lock(&p->mu);
		p->running++;
		pthread_mutex_unlock(&p->mu);
		if (pthread_create(&paths[i].th, NULL, path_main, &paths[i]) != 0) {
			pthread_mutex_lock(&p->mu);
			p->running--;
			pthread_mutex_unlock(&p->mu);
			fprintf(stderr, "ccbctl probe: cannot start a thread\n");
			break;
		}
		started++;
	}
	pthread_mutex_lock(&p->mu);
	while (p->running > 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 150 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
		if (tty && p->running > 0 && ccb_now_ms() - t0 >= 300)
			probe_spin(paths, started, t0, tick++);
	}
	pthread_mutex_unlock(&p->mu);
	if (tty && tick) {
		fprintf(stderr, "\r\033[K");
		fflush(stderr);
	}
	for (size_t i = 0; i < started; i++)
		pthread_join(paths[i].th, NULL);
	return started;
}

int ccbctl_probe(int argc, char **argv)
{
	probe_args a;
	int rc = probe_parse(argc, argv, &a);
	ccb_config *cfg = NULL;
	ccb_sec_client_config bsc;
	ccb_sinful *addr = NULL;
	char **contacts = NULL;
	size_t n = 0, started;
	ppath *paths = NULL;
	ccb_error err = {0};
	pthread_condattr_t ca;
	probe p;

	if (rc >= 0)
		return rc;
	if (ccb_sinful_parse_address(a.address, &addr, &err) ||
	    ccb_sinful_ccb_contacts(addr, &contacts, &n, &err)) {
		fprintf(stderr, "ccbctl probe: step parse failed: %s\n", err.detail);
		ccb_sinful_free(addr);
		return CCBCTL_EXIT_USAGE;
	}
	rc = CCBCTL_EXIT_FAIL;
	if (ccb_config_load(a.cfg_path, &cfg, &err)) {
		fprintf(stderr, "ccbctl probe: %s\n", err.detail);
		goto out;
	}
	if (probe_setup(&p, &a, cfg, addr, &bsc, &n))
		goto out;
	paths = calloc(n ? n : 1, sizeof *paths);
	if (!paths) {
		fprintf(stderr, "ccbctl probe: out of memory\n");
		goto out;
	}
	pthread_mutex_init(&p.mu, NULL);
	/* The wait for the paths runs on the monotonic clock. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p.cv, &ca);
	pthread_condattr_destroy(&ca);
	started = probe_run(&p, paths, contacts, n);
	rc = probe_print(a.address, paths, started, a.as_json) ? CCBCTL_EXIT_OK : CCBCTL_EXIT_FAIL;
	pthread_cond_destroy(&p.cv);
	pthread_mutex_destroy(&p.mu);
out:
	free(paths);
	ccb_strv_free(contacts);
	ccb_sinful_free(addr);
	ccb_config_free(cfg);
	return rc;
}
