/* ccbctl status: query a running broker's or listener's status (libccb's
 * command 62001; a listener is reached through CCB). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ccb/broker.h"
#include "ccb/commands.h"
#include "ccb/config.h"
#include "ccb/dial.h"
#include "ccbctl.h"

static void status_usage(FILE *f)
{
	fprintf(f,
		"usage: ccbctl status (--broker ADDRESS | --listener SINFUL) [-c FILE] [--pretty]\n"
		"                     [--timeout SECONDS]\n"
		"\n"
		"Ask a libccb broker for its status (statistics with HTCondor's CCB*\n"
		"names, limits, registrations), or a `ccbctl listen` process for its\n"
		"per-broker state (reached through CCB like any daemon), and print it\n"
		"as JSON. Needs READ authorization there.\n"
		"\n"
		"  --broker ADDRESS   sinful or host:port of the broker\n"
		"  --listener SINFUL  the sinful `ccbctl listen` printed\n"
		"  -c, --config FILE  JSON config with SEC_CLIENT_* / SEC_DEFAULT_* knobs\n"
		"  --pretty           indented output\n"
		"  --timeout SECONDS  default 20\n"
		"\n"
		"Exit status: 0 success, 1 failure, 2 usage.\n");
}

/* Through CCB (or directly) to a `ccbctl listen`, command 62001, one string. */
static ccb_err query_listener(const char *sinful, const ccb_config *cfg,
			      const ccb_sec_client_config *sc, int timeout_s, char **text,
			      ccb_error *err)
{
	ccb_dial_config o;
	ccb_stream *s = NULL;
	ccb_sec_info info;
	ccb_err rc;

	if (ccbctl_dial_opts_from_config("status", cfg, &o, sc, false, NULL, timeout_s))
		return ccb_error_set(err, CCB_ERR_CONFIG, "bad dial settings in the config");
	if ((rc = ccb_dial_command(sinful, &o, sc, CCB_CMD_LIBCCB_STATUS, 0, &s, &info, err)))
		return rc;
	if (ccb_stream_get_string(s, text) || ccb_stream_end_of_message(s))
		rc = ccb_error_set(err, ccb_stream_error(s)->code, "%s", ccb_stream_error(s)->detail);
	ccb_stream_free(s);
	return rc;
}

int ccbctl_status(int argc, char **argv)
{
	static const struct option opts[] = {{"broker", required_argument, NULL, 'b'},
					     {"listener", required_argument, NULL, 'l'},
					     {"config", required_argument, NULL, 'c'},
					     {"pretty", no_argument, NULL, 'p'},
					     {"timeout", required_argument, NULL, 't'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *broker = NULL, *listener = NULL, *cfg_path = NULL;
	bool pretty = false;
	int opt, timeout_s = 20, rc = CCBCTL_EXIT_FAIL;
	ccb_config *cfg = NULL;
	ccb_sec_client_config sc;
	ccb_error err = {0};
	char *text = NULL;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'b': broker = optarg; break;
		case 'l': listener = optarg; break;
		case 'c': cfg_path = optarg; break;
		case 'p': pretty = true; break;
		case 't': timeout_s = atoi(optarg); break;
		case 'h': status_usage(stdout); return CCBCTL_EXIT_OK;
		default: status_usage(stderr); return CCBCTL_EXIT_USAGE;
		}
	}
	if (!broker == !listener || optind != argc || timeout_s <= 0) {
		status_usage(stderr);
		return CCBCTL_EXIT_USAGE;
	}
	if (ccb_config_load(cfg_path, &cfg, &err) || ccb_config_client_security(cfg, &sc, &err) ||
	    (broker && ccb_broker_query_status(broker, &sc, timeout_s * 1000, &text, &err)) ||
	    (listener && query_listener(listener, cfg, &sc, timeout_s, &text, &err))) {
		fprintf(stderr, "ccbctl status: %s\n", err.detail);
		goto out;
	}
	if (pretty) {
		json_t *o = json_loads(text, 0, NULL);
		if (!o) {
			fprintf(stderr, "ccbctl status: the broker's reply is not JSON\n");
			goto out;
		}
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
		json_decref(o);
	} else {
		printf("%s\n", text);
	}
	rc = CCBCTL_EXIT_OK;
out:
	ccb_free(text);
	ccb_config_free(cfg);
	return rc;
}
