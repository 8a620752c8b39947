/*
 * The version API: the generated header, the run-time functions and the
 * project version in CMakeLists.txt all agree; the clock functions are
 * reachable through the public headers alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccb/ccb.h"
#include "ccbt.h"

static void test_header_and_runtime(void)
{
	char s[64];

	CU_ASSERT_EQUAL(ccb_version(), CCB_VERSION_NUMBER);
	CU_ASSERT_EQUAL(CCB_VERSION_NUMBER,
			CCB_VERSION_MAJOR * 10000 + CCB_VERSION_MINOR * 100 + CCB_VERSION_PATCH);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ccb_version_string());
	CU_ASSERT_STRING_EQUAL(ccb_version_string(), CCB_VERSION_STRING);
	snprintf(s, sizeof s, "%d.%d.%d", CCB_VERSION_MAJOR, CCB_VERSION_MINOR, CCB_VERSION_PATCH);
	CU_ASSERT_STRING_EQUAL(s, CCB_VERSION_STRING);
}

/* The project() line of the top-level CMakeLists.txt is the one source of the
 * version; the header must carry it. */
static void test_project_version(void)
{
	char *cm = ccbt_read_file(CCB_SOURCE_DIR "/CMakeLists.txt", NULL);
	const char *p;
	char want[64] = "";

	CU_ASSERT_PTR_NOT_NULL_FATAL(cm);
	p = strstr(cm, "project(libccb VERSION ");
	CU_ASSERT_PTR_NOT_NULL(p);
	if (p)
		sscanf(p + strlen("project(libccb VERSION "), "%63[0-9.]", want);
	CU_ASSERT_STRING_EQUAL(want, CCB_VERSION_STRING);
	CU_ASSERT_STRING_EQUAL(want, ccb_version_string());
	free(cm);
}

static void test_clock(void)
{
	int64_t a = ccb_now_ms(), d = ccb_deadline_in(1000), b = ccb_now_ms();

	CU_ASSERT(a > 0);
	CU_ASSERT(b >= a);
	CU_ASSERT(d >= a + 1000);
	CU_ASSERT(d <= b + 1000);
	CU_ASSERT_EQUAL(ccb_deadline_in(-1), INT64_MAX);
}

static const ccbt_test tests[] = {
	{"header and runtime agree", test_header_and_runtime},
	{"project version", test_project_version},
	{"public clock", test_clock},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"version", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
