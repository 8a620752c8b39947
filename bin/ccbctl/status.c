/* ccbctl status: query a running broker's status (libccb's command 62001). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ccb/broker.h"
#include "ccb/config.h"
#include "ccbctl.h"

static void status_usage(FILE *f)
{
	fprintf(f,
		"usage: ccbctl status --broker ADDRESS [-c FILE] [--pretty] [--timeout SECONDS]\n"
		"\n"
		"Ask a libccb broker for its status (statistics with HTCondor's CCB*\n"
		"names, limits, registrations) and print it as JSON. Needs READ\n"
		"authorization at the broker.\n"
		"\n"
		"  --broker ADDRESS   sinful or host:port of the broker\n"
		"  -c, --config FILE  JSON config with SEC_CLIENT_* / SEC_DEFAULT_* knobs\n"
		"  --pretty           indented output\n"
		"  --timeout SECONDS  default 20\n");
}

int ccbctl_status(int argc, char **argv)
{
	static const struct option opts[] = {{"broker", required_argument, NULL, 'b'},
					     {"config", required_argument, NULL, 'c'},
					     {"pretty", no_argument, NULL, 'p'},
					     {"timeout", required_argument, NULL, 't'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *broker = NULL, *cfg_path = NULL;
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
		case 'c': cfg_path = optarg; break;
		case 'p': pretty = true; break;
		case 't': timeout_s = atoi(optarg); break;
		case 'h': status_usage(stdout); return CCBCTL_EXIT_OK;
		default: status_usage(stderr); return CCBCTL_EXIT_USAGE;
		}
	}
	if (!broker || optind != argc || timeout_s <= 0) {
		status_usage(stderr);
		return CCBCTL_EXIT_USAGE;
	}
	if (ccb_config_load(cfg_path, &cfg, &err) || ccb_config_client_security(cfg, &sc, &err) ||
	    ccb_broker_query_status(broker, &sc, timeout_s * 1000, &text, &err)) {
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
	free(text);
	ccb_config_free(cfg);
	return rc;
}
