/* ccbctl decode, run as a real process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <jansson.h>

#include "ccbt.h"
#include "util/util.h"

/* Run a shell command line; returns its exit status and stdout (malloc'd). */
static int run(const char *cmd, char **out)
{
	FILE *p = popen(cmd, "r");
	ccb_buf b;
	char chunk[4096];
	size_t n;
	int st;

	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	ccb_buf_init(&b);
	while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
		ccb_buf_append(&b, chunk, n);
	st = pclose(p);
	*out = ccb_buf_steal_str(&b);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define S1 CCB_VECTORS_DIR "/S1-claimtobe-plain/streams.json"

static void test_text(void)
{
	char *out;

	CU_ASSERT_EQUAL(run(CCBCTL_PATH " decode --conn 7 " S1, &out), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "## conn 7:"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "1. c2s [end=1 len=132]\n    int 69   (= CCB_REVERSE_CONNECT)\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"ZKM\" marker + secret attribute sent IN CLEAR"));
	CU_ASSERT_PTR_NULL(strstr(out, "## conn 1:"));
	free(out);
}

static void test_json(void)
{
	char *out;
	json_t *root, *msg;

	CU_ASSERT_EQUAL(run(CCBCTL_PATH " decode --json --conn 1 " S1, &out), 0);
	root = json_loads(out, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	msg = json_array_get(json_object_get(json_array_get(json_object_get(root, "connections"), 0),
					     "messages"), 10);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(msg, "dir")), "c2s");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(
		json_object_get(json_array_get(json_object_get(msg, "items"), 0), "attrs"), 0), "line")),
		"Command = 441");
	json_decref(root);
	free(out);
}

static void test_raw_stdin(void)
{
	char *out;

	CU_ASSERT_EQUAL(run("printf '\\001\\000\\000\\000\\010\\000\\000\\000\\000\\000\\000\\000\\103' | "
			    CCBCTL_PATH " decode -", &out), 0);
	CU_ASSERT_STRING_EQUAL(out, "1. c2s [end=1 len=8]\n    int 67\n");
	free(out);
	/* Not CEDAR framing: exit 1. */
	CU_ASSERT_EQUAL(run("printf 'GET / HTTP/1.0\\r\\n' | " CCBCTL_PATH " decode - 2>/dev/null", &out), 1);
	free(out);
}

static void test_errors(void)
{
	char *out;

	CU_ASSERT_EQUAL(run(CCBCTL_PATH " decode 2>/dev/null", &out), 2);
	free(out);
	CU_ASSERT_EQUAL(run(CCBCTL_PATH " decode --conn x " S1 " 2>/dev/null", &out), 2);
	free(out);
	CU_ASSERT_EQUAL(run(CCBCTL_PATH " decode /nonexistent 2>/dev/null", &out), 1);
	free(out);
	CU_ASSERT_EQUAL(run(CCBCTL_PATH " decode --conn 999 " S1 " 2>/dev/null", &out), 1);
	free(out);
	CU_ASSERT_EQUAL(run(CCBCTL_PATH " nosuchcommand 2>/dev/null", &out), 2);
	free(out);
	CU_ASSERT_EQUAL(run(CCBCTL_PATH " decode --help", &out), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "usage: ccbctl decode"));
	free(out);
}

static const ccbt_test tests[] = {
	{"text output", test_text},
	{"json output", test_json},
	{"raw bytes on stdin", test_raw_stdin},
	{"usage and errors", test_errors},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"ccbctl decode", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
