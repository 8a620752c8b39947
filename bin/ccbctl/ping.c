/* ccbctl ping: condor_ping's question, asked with libccb. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "ccb/addr.h"
#include "ccb/clock.h"
#include "ccb/config.h"
#include "ccb/dial.h"
#include "ccb/security.h"
#include "ccb/sharedport.h"
#include "ccbctl.h"

/* DC_NOP_<LEVEL>: NOP commands registered at each authorization level
 * (H:src/condor_includes/condor_commands.h, DC_BASE + 20..29; DC_NOP 60011). */
static const struct {
	const char *level;
	int command;
} nops[] = {
	{"ALLOW", 60011},         {"READ", 60020},
	{"WRITE", 60021},         {"NEGOTIATOR", 60022},
	{"ADMINISTRATOR", 60023}, {"OWNER", 60024},
	{"CONFIG", 60025},        {"DAEMON", 60026},
	{"ADVERTISE_STARTD", 60027}, {"ADVERTISE_SCHEDD", 60028},
	{"ADVERTISE_MASTER", 60029},
};

static void ping_usage(FILE *f)
{
	fprintf(f,
		"usage: ccbctl ping [-c FILE] [--level LEVEL] [--timeout SECONDS] [--streaming]\n"
		"                   [--proxy-return ADDR] [--outbound BROKER] [--json] ADDRESS\n"
		"\n"
		"Connect to a daemon, run HTCondor's security handshake and ask, as\n"
		"condor_ping does, whether we are authorized at LEVEL (default READ).\n"
		"ADDRESS is a sinful string or host:port. A sinful with CCBID is reached\n"
		"through its CCB broker(s) (all its contacts, raced), one with sock=\n"
		"through shared port, any other directly. Each dial step is printed with\n"
		"its time.\n"
		"\n"
		"  -c, --config FILE  JSON config with SEC_CLIENT_* / SEC_DEFAULT_* knobs (used\n"
		"                     for the broker and the daemon) and CCB_DIAL_TIMEOUT,\n"
		"                     CCB_DIAL_STAGGER_MS, CCB_CLIENT_STREAMING,\n"
		"                     CCB_PROXY_RETURN_ADDRESS, TOOLS_ASSUME_FIREWALLS\n"
		"  --level LEVEL      ALLOW, READ, WRITE, NEGOTIATOR, ADMINISTRATOR, OWNER,\n"
		"                     CONFIG, DAEMON, ADVERTISE_STARTD|SCHEDD|MASTER\n"
		"  --timeout SECONDS  for each step (default 20; the dial: CCB_DIAL_TIMEOUT)\n"
		"  --streaming        through CCB: ask the broker to relay (proxy mode)\n"
		"  --proxy-return ADDR  proxy mode with MyAddress ADDR\n"
		"  --outbound BROKER  ask BROKER (CCB_PROXY_CONNECT) to dial the daemon and relay;\n"
		"                     also OUTBOUND_CCB_ADDRESS / CCB_OUTBOUND_TTL in the config\n"
		"  --json             machine-readable result\n"
		"\n"
		"Exit status: 0 authorized, 1 not authorized or failed, 2 usage.\n");
}

/* JSON mode: collect dial steps (the dial serializes the calls). */
static void collect_step(const ccb_dial_event *ev, void *user)
{
	json_array_append_new((json_t *)user,
			      json_pack("{s:i,s:s,s:s,s:I,s:s,s:s}", "attempt", ev->attempt, "broker",
					ev->broker, "step", ev->step, "ms", (json_int_t)ev->elapsed_ms,
					"error", ev->code ? ccb_strerror(ev->code) : "", "detail",
					ev->detail));
}

/* The command line. */
typedef struct {
	const char *cfg_path, *level, *proxy_return, *outbound, *address;
	int timeout_s, nop;
	bool as_json, streaming, timeout_given;
} ping_args;

typedef struct {
	const char *step;
	int64_t ms;
	char error[CCB_ERROR_DETAIL_SIZE];
} step_result;

/* What the walk found: the steps run (the last one failed when err.code is
 * set), the target's security session and its answer. */
typedef struct {
	step_result steps[3];
	int nsteps;
	bool authorized;
	ccb_sec_info info;
	ccb_error err;
} ping_result;

/* Returns -1 to go on, else the exit status. */
static int ping_parse(int argc, char **argv, ping_args *a)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"level", required_argument, NULL, 'l'},
					     {"timeout", required_argument, NULL, 't'},
					     {"json", no_argument, NULL, 'j'},
					     {"streaming", no_argument, NULL, 's'},
					     {"proxy-return", required_argument, NULL, 'p'},
					     {"outbound", required_argument, NULL, 'o'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	int opt;

	*a = (ping_args){.level = "READ", .timeout_s = 20, .nop = -1};
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': a->cfg_path = optarg; break;
		case 'l': a->level = optarg; break;
		case 't': a->timeout_s = atoi(optarg); a->timeout_given = true; break;
		case 's': a->streaming = true; break;
		case 'p': a->proxy_return = optarg; break;
		case 'o': a->outbound = optarg; break;
		case 'j': a->as_json = true; break;
		case 'h': ping_usage(stdout); return CCBCTL_EXIT_OK;
		default: ping_usage(stderr); return CCBCTL_EXIT_USAGE;
		}
	}
	for (size_t i = 0; i < sizeof nops / sizeof nops[0]; i++)
		if (!strcasecmp(a->level, nops[i].level))
			a->nop = nops[i].command;
	if (optind != argc - 1 || a->nop < 0 || a->timeout_s <= 0) {
		if (a->nop < 0)
			fprintf(stderr, "ccbctl ping: unknown level '%s'\n", a->level);
		ping_usage(stderr);
		return CCBCTL_EXIT_USAGE;
	}
	a->address = argv[optind];
	return -1;
}

/* Dial the target, run the security handshake for the NOP of the level and
 * read the answer, each step timed; the first failure ends the walk. */
static void ping_walk(const ping_args *a, const ccb_dial_config *dopts,
		      const ccb_sec_client_config *sc, ping_result *r)
{
	ccb_stream *s = NULL;
	int64_t t0 = ccb_now_ms();

	r->nsteps = 1;
	/* Directly, through condor_shared_port (SHARED_PORT_CONNECT first) or
	 * through CCB (reversed connection, hello checked). */
	if (ccb_dial_sinful(a->address, dopts, &s, &r->err))
		goto report;
	ccb_stream_set_timeout(s, a->timeout_s * 1000);
	r->steps[0].ms = ccb_now_ms() - t0;
	t0 = ccb_now_ms();
	r->nsteps = 2;
	if (ccb_sec_client_start(s, sc, 60040, a->nop, a->address, &r->info, &r->err))
		goto report;
	r->steps[1].ms = ccb_now_ms() - t0;
	t0 = ccb_now_ms();
	r->nsteps = 3;
	if (ccb_sec_client_query_reply(s, &r->authorized, &r->err))
		goto report;
	r->steps[2].ms = ccb_now_ms() - t0;
	ccb_error_clear(&r->err);
report:
	if (r->err.code) {
		step_result *last = &r->steps[r->nsteps - 1];
		last->ms = ccb_now_ms() - t0;
		snprintf(last->error, sizeof last->error, "%s", r->err.detail);
	}
	ccb_stream_free(s);
}

static void ping_print(const ping_args *a, const ping_result *r, json_t *dial_steps)
{
	const ccb_sec_info *info = &r->info;

	if (a->as_json) {
		json_t *o = json_pack("{s:s,s:s,s:b,s:b,s:s,s:s,s:s,s:b,s:b,s:s}", "address", a->address,
				      "level", a->level, "authorized", r->authorized, "authenticated",
				      info->authenticated, "method", info->method, "identity", info->user,
				      "crypto", info->crypto, "encryption", info->encrypted, "integrity",
				      info->integrity, "remote_version", info->peer_version);
		json_t *js = json_array();
		for (int i = 0; i < r->nsteps; i++)
			json_array_append_new(js, json_pack("{s:s,s:I,s:s}", "step", r->steps[i].step, "ms",
							    (json_int_t)r->steps[i].ms, "error",
							    r->steps[i].error));
		json_object_set_new(o, "steps", js);
		json_object_set(o, "dial", dial_steps);
		json_dumpf(o, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(o);
		return;
	}
	for (int i = 0; i < r->nsteps; i++)
		printf("%-14s %6lld ms  %s\n", r->steps[i].step, (long long)r->steps[i].ms,
		       r->steps[i].error[0] ? r->steps[i].error : "ok");
	if (!r->err.code) {
		printf("Remote Version:  %s\n", info->peer_version);
		printf("Authentication:  %s\n", info->authenticated ? info->method : "none");
		printf("Identity:        %s\n", info->user[0] ? info->user : CCB_UNAUTHENTICATED_USER);
		printf("Encryption:      %s\n", ccb_sec_info_encryption(info));
		printf("Integrity:       %s\n", ccb_sec_info_integrity(info));
		printf("%s access:  %s\n", a->level, r->authorized ? "ALLOWED" : "DENIED");
	}
}

int ccbctl_ping(int argc, char **argv)
{
	ping_args a;
	int rc = ping_parse(argc, argv, &a);
	ccb_dial_config dopts;
	json_t *dial_steps = NULL;
	ccb_config *cfg = NULL;
	ccb_sec_client_config sc, bsc;
	ccb_sinful *addr = NULL;
	ccb_error err = {0};
	ping_result r = {.steps = {{"connect", 0, ""}, {"handshake", 0, ""}, {"authorization", 0, ""}}};

	if (rc >= 0)
		return rc;
	rc = CCBCTL_EXIT_FAIL;
	dial_steps = json_array();
	if (ccb_config_load(a.cfg_path, &cfg, &err) || ccb_config_client_security(cfg, &sc, &err)) {
		fprintf(stderr, "ccbctl ping: %s\n", err.detail);
		goto out;
	}
	if (ccb_sinful_parse_address(a.address, &addr, &err)) {
		fprintf(stderr, "ccbctl ping: %s\n", err.detail);
		rc = CCBCTL_EXIT_USAGE;
		goto out;
	}
	bsc = sc; /* for the brokers: their own SSL host names */
	if (ccbctl_dial_opts_from_config("ping", cfg, &dopts, &bsc, a.streaming, a.proxy_return,
					 a.timeout_given ? a.timeout_s : 0))
		goto out;
	ccbctl_dial_set_outbound(&dopts, a.outbound);
	if (a.as_json) {
		dopts.progress = collect_step;
		dopts.progress_user = dial_steps;
	} else {
		dopts.progress = ccbctl_dial_print_step;
		dopts.progress_user = stdout;
	}
	if (!ccb_sinful_ccbid(addr) && !a.timeout_given && !dopts.outbound_ccb_address)
		dopts.timeout_ms = a.timeout_s * 1000; /* a plain connect: one step */
	/* SSL checks the server certificate against the alias, else the host
	 * (security-handshake.md §7.5 step 3). */
	if (!sc.ssl_server_host)
		sc.ssl_server_host = ccb_sinful_alias(addr) ? ccb_sinful_alias(addr) : ccb_sinful_host(addr);
	ping_walk(&a, &dopts, &sc, &r);
	ping_print(&a, &r, dial_steps);
	rc = !r.err.code && r.authorized ? CCBCTL_EXIT_OK : CCBCTL_EXIT_FAIL;
out:
	ccb_sinful_free(addr);
	ccb_config_free(cfg);
	json_decref(dial_steps);
	return rc;
}
