/*
 * dial_example: ping a daemon through CCB, as condor_ping does. Reach the
 * target named by SINFUL (through its brokers when it carries CCBID), run
 * the security handshake with DC_SEC_QUERY for DC_NOP_READ and print whether
 * we are authorized.
 *
 *   dial_example [CONFIG.json] SINFUL
 *
 * CONFIG.json (optional) holds SEC_CLIENT_* / SEC_DEFAULT_* knobs.
 * Exit status: 0 authorized, 1 not authorized or failed, 2 usage.
 */
#include <stdio.h>

#include <ccb/ccb.h>
#include <ccb/commands.h> /* CCB_CMD_* (a lower-level header) */

#define DC_NOP_READ 60020

static void progress(const ccb_dial_event *ev, void *user)
{
	(void)user;
	fprintf(stderr, "%6lld ms  %s %s: %s\n", (long long)ev->elapsed_ms, ev->broker, ev->step,
		ev->detail);
}

int main(int argc, char **argv)
{
	const char *address = argv[argc - 1];
	ccb_config *cfg = NULL;
	ccb_sec_client_config sec;
	ccb_dial_config opts = {0};
	ccb_dial_info dinfo;
	ccb_sec_info info;
	ccb_stream *s = NULL;
	ccb_error err;
	bool authorized = false;
	int rc = 1;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s [CONFIG.json] SINFUL\n", argv[0]);
		return 2;
	}
	if (ccb_config_load(argc == 3 ? argv[1] : NULL, &cfg, &err) ||
	    ccb_config_client_security(cfg, &sec, &err)) {
		fprintf(stderr, "%s\n", err.detail);
		goto out;
	}
	opts.broker_sec = &sec; /* the same settings for the brokers and the target */
	opts.timeout_ms = 20000;
	opts.progress = progress;
	opts.info = &dinfo;
	if (ccb_dial_command(address, &opts, &sec, CCB_CMD_DC_SEC_QUERY, DC_NOP_READ, &s, &info,
			     &err) ||
	    ccb_sec_client_query_reply(s, &authorized, &err)) {
		fprintf(stderr, "%s: %s\n", ccb_strerror(err.code), err.detail);
		goto out;
	}
	printf("reached through %s in %lld ms\n", dinfo.broker[0] ? dinfo.broker : "a direct connection",
	       (long long)dinfo.elapsed_ms);
	printf("method %s, identity %s, %s\n", info.authenticated ? info.method : "none",
	       info.user[0] ? info.user : CCB_UNAUTHENTICATED_USER,
	       info.encrypted ? "encrypted" : "not encrypted");
	printf("READ access %s\n", authorized ? "ALLOWED" : "DENIED");
	rc = authorized ? 0 : 1;
out:
	ccb_stream_free(s);
	ccb_config_free(cfg);
	return rc;
}
