/* ccbctl — command-line front end of libccb. Argument parsing and output only;
 * protocol logic lives in the library. */
#include <stdio.h>
#include <string.h>

#include "ccbctl.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"broker", ccbctl_broker, "run a CCB broker from a JSON config file"},
	{"decode", ccbctl_decode, "decode captured CEDAR bytes (streams.json or raw)"},
	{"listen", ccbctl_listen, "register with CCB brokers and serve reverse connections"},
	{"dial", ccbctl_dial, "netcat to a daemon through CCB, shared port or directly"},
	{"ping", ccbctl_ping, "ask a daemon whether we are authorized, as condor_ping"},
	{"status", ccbctl_status, "print a libccb broker's status (--broker ADDRESS)"},
	{"token", ccbctl_token, "create or verify IDTOKENS (as condor_token_create)"},
	{"config", ccbctl_config, "list the config knobs and defaults, check a config file"},
	{"probe", ccbctl_probe, "walk the CCB path to a daemon step by step, with hints"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: ccbctl COMMAND [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun 'ccbctl COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CCBCTL_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "ccbctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return CCBCTL_EXIT_USAGE;
}
