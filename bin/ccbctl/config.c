/* ccbctl config: the knobs libccb reads, their defaults, and a file's
 * effective values. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ccb/config.h"
#include "ccbctl.h"

static void config_usage(FILE *f)
{
	fprintf(f,
		"usage: ccbctl config --print-defaults [--json | --markdown]\n"
		"       ccbctl config -c FILE [--json]\n"
		"\n"
		"--print-defaults lists every knob the config file may hold (HTCondor's\n"
		"names where HTCondor has one), its type, default and meaning.\n"
		"-c FILE checks a config file (unknown knobs and wrong types are errors\n"
		"naming the line) and prints the knobs it sets, after _CONDOR_<KNOB>\n"
		"environment overrides.\n"
		"\n"
		"Exit status: 0 success, 1 invalid config file, 2 usage.\n");
}

static void print_defaults(int format)
{
	ccb_config_knob k;
	json_t *arr = format == 'j' ? json_array() : NULL;

	if (format == 'm') {
		printf("| Knob | Type | Default | Meaning |\n|---|---|---|---|\n");
	}
	for (size_t i = 0; ccb_config_knob_info(i, &k); i++) {
		if (format == 'j')
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "name", k.name,
							     "type", k.type, "default", k.dflt,
							     "doc", k.doc));
		else if (format == 'm')
			printf("| `%s` | %s | %s | %s |\n", k.name, k.type, k.dflt, k.doc);
		else
			printf("%-40s %-8s %s\n    %s\n", k.name, k.type, k.dflt, k.doc);
	}
	if (arr) {
		json_dumpf(arr, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(arr);
	}
}

int ccbctl_config(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"print-defaults", no_argument, NULL, 'd'},
					     {"json", no_argument, NULL, 'j'},
					     {"markdown", no_argument, NULL, 'm'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *path = NULL;
	bool defaults = false;
	int format = 't', opt;
	ccb_config *c;
	ccb_config_knob k;
	ccb_error err = {0};
	json_t *obj;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'd': defaults = true; break;
		case 'j': format = 'j'; break;
		case 'm': format = 'm'; break;
		case 'h': config_usage(stdout); return CCBCTL_EXIT_OK;
		default: config_usage(stderr); return CCBCTL_EXIT_USAGE;
		}
	}
	if (optind != argc || defaults == (path != NULL) || (path && format == 'm')) {
		config_usage(stderr);
		return CCBCTL_EXIT_USAGE;
	}
	if (defaults) {
		print_defaults(format);
		return CCBCTL_EXIT_OK;
	}
	if (ccb_config_load(path, &c, &err)) {
		fprintf(stderr, "ccbctl config: %s\n", err.detail);
		return CCBCTL_EXIT_FAIL;
	}
	obj = json_object();
	for (size_t i = 0; ccb_config_knob_info(i, &k); i++) {
		const char *v = ccb_config_get(c, k.name);
		if (!v)
			continue;
		if (format == 'j')
			json_object_set_new(obj, k.name, json_string(v));
		else
			printf("%s = %s\n", k.name, v);
	}
	if (format == 'j') {
		json_dumpf(obj, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		printf("\n");
	}
	json_decref(obj);
	ccb_config_free(c);
	return CCBCTL_EXIT_OK;
}
