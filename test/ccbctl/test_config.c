/* ccbctl config: the knob table, docs/config.md kept in step with it, and
 * checking a file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "ccbt.h"
#include "ccbt_proc.h"

/* `ccbctl config A1 [A2]`; exit code, output (stdout and stderr) in *out. */
static int run(char **out, const char *a1, const char *a2)
{
	char *argv[] = {CCBCTL_PATH, "config", (char *)a1, (char *)a2, NULL};
	int rc = ccbt_proc_run(argv, NULL, 20000, out);

	if (!*out)
		*out = calloc(1, 1);
	return rc;
}

/* docs/config.md holds exactly what --markdown prints. */
static void test_docs_in_step(void)
{
	char *out, *doc = ccbt_read_file(CCB_SOURCE_DIR "/docs/config.md", NULL);
	const char *begin, *end;

	CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
	CU_ASSERT_EQUAL(run(&out, "--print-defaults", "--markdown"), 0);
	begin = strstr(doc, "<!-- knobs:begin");
	end = strstr(doc, "<!-- knobs:end -->");
	CU_ASSERT_FATAL(begin && end && end > begin);
	begin = strchr(begin, '\n') + 1;
	CU_ASSERT_EQUAL(strlen(out), (size_t)(end - begin));
	CU_ASSERT(!strncmp(out, begin, (size_t)(end - begin)));
	if (strncmp(out, begin, (size_t)(end - begin)))
		fprintf(stderr, "\ndocs/config.md is stale: regenerate its table with "
				"`ccbctl config --print-defaults --markdown`\n");
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "| `CCB_HEARTBEAT_INTERVAL` | integer | 300 |"));
	free(out);
	free(doc);
}

static void test_check_file(void)
{
	char path[] = "/tmp/ccbt-cfg-XXXXXX";
	int fd = mkstemp(path);
	const char *good = "{\n  \"CCB_ADDRESS\": \"127.0.0.1:9618\",\n  \"ccb_heartbeat_interval\": 60\n}\n";
	const char *bad = "{\n  \"CCB_ADDRESS\": \"127.0.0.1:9618\",\n  \"CCB_HEARTBEAT\": 60\n}\n";
	char *out;

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(write(fd, good, strlen(good)) == (ssize_t)strlen(good));
	close(fd);
	CU_ASSERT_EQUAL(run(&out, "-c", path), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "CCB_ADDRESS = 127.0.0.1:9618\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "CCB_HEARTBEAT_INTERVAL = 60\n"));
	free(out);
	fd = open(path, O_WRONLY | O_TRUNC);
	CU_ASSERT(write(fd, bad, strlen(bad)) == (ssize_t)strlen(bad));
	close(fd);
	CU_ASSERT_EQUAL(run(&out, "-c", path), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, ":3: unknown knob \"CCB_HEARTBEAT\""));
	free(out);
	CU_ASSERT_EQUAL(run(&out, "--bogus", NULL), 2);
	free(out);
	CU_ASSERT_EQUAL(run(&out, "--help", NULL), 0);
	free(out);
	unlink(path);
}

static const ccbt_test tests[] = {
	{"docs/config.md matches the knob table", test_docs_in_step},
	{"check a config file", test_check_file},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"ccbctl config", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
