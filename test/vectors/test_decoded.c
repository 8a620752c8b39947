/*
 * The dissector against the live captures: every message of every
 * connection in test/vectors/S<n>/streams.json must render exactly as
 * the hand-checked decoded.md shows it (labels after "<-" aside).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ccb/dissect.h"
#include "ccbt.h"
#include "util/util.h"

static const char *const scenarios[] = {"S1-claimtobe-plain", "S2-fs-aes", "S3-token-aes",
					"S4-ssl", "S5-streaming", "S6-shared-port"};

/* Reference header "3. c2s (CEDAR-client) [end=1 len=8]   <- label" becomes
 * "3. c2s [end=1 len=8]". */
static void normalize_header(char *line)
{
	char *p = strstr(line, "   <-"), *role;

	if (p)
		*p = '\0';
	role = strstr(line, " (CEDAR-");
	if (role) {
		char *close = strchr(role, ')');
		if (close)
			memmove(role, close + 1, strlen(close + 1) + 1);
	}
	for (size_t n = strlen(line); n && line[n - 1] == ' '; n--)
		line[n - 1] = '\0';
}

static bool is_msg_header(const char *line)
{
	const char *p = line;

	while (*p >= '0' && *p <= '9')
		p++;
	return p != line && (!strncmp(p, ". c2s", 5) || !strncmp(p, ". s2c", 5));
}

/* Reference text of every message of connection `id`, concatenated. */
static char *reference_conn(char *md, long long id)
{
	char head[64];
	char *start, *end, *line, *save = NULL;
	ccb_buf out;

	snprintf(head, sizeof head, "## conn %lld:", id);
	start = strstr(md, head);
	if (!start)
		return NULL;
	start = strstr(start, "```\n");
	if (!start)
		return NULL;
	start += 4;
	end = strstr(start, "```");
	if (!end)
		return NULL;
	ccb_buf_init(&out);
	char *block = ccb_strndup(start, (size_t)(end - start));
	for (line = strtok_r(block, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (is_msg_header(line))
			normalize_header(line);
		ccb_buf_appendf(&out, "%s\n", line);
	}
	ccb_free(block);
	return ccb_buf_steal_str(&out);
}

static char *ours_conn(json_t *conn, size_t *nmsgs)
{
	ccb_dissector *d = NULL;
	ccb_dissector_new(&d, NULL);
	json_t *seg;
	size_t i;
	ccb_buf out;
	ccb_error err;

	ccb_buf_init(&out);
	json_array_foreach(json_object_get(conn, "segments"), i, seg) {
		const char *hex = json_string_value(json_object_get(seg, "hex"));
		size_t n = strlen(hex) / 2;
		uint8_t *b = malloc(n + 1);
		CU_ASSERT_FATAL(ccb_hex_decode(hex, 2 * n, b));
		CU_ASSERT_EQUAL(ccb_dissector_feed(d,
						   strcmp(json_string_value(json_object_get(seg, "dir")), "s2c")
							   ? CCB_DIR_C2S
							   : CCB_DIR_S2C,
						   b, n, &err),
				CCB_OK);
		free(b);
	}
	*nmsgs = ccb_dissector_count(d);
	for (i = 0; i < *nmsgs; i++) {
		char *t = NULL;
		ccb_dissect_msg_text(ccb_dissector_msg(d, i), i + 1, &t, NULL);
		ccb_buf_append_str(&out, t);
		free(t);
	}
	/* Every capture ends on a message boundary. */
	CU_ASSERT_EQUAL(ccb_dissector_pending(d, CCB_DIR_C2S), 0);
	CU_ASSERT_EQUAL(ccb_dissector_pending(d, CCB_DIR_S2C), 0);
	ccb_dissector_free(d);
	return ccb_buf_steal_str(&out);
}

/* Print the first differing line to make a failure easy to read. */
static void show_diff(const char *scen, long long id, const char *want, const char *got)
{
	int line = 1;

	while (*want && *want == *got) {
		if (*want == '\n')
			line++;
		want++;
		got++;
	}
	fprintf(stderr, "\n%s conn %lld differs at line %d:\n  want: %.120s\n  got:  %.120s\n", scen,
		id, line, want, got);
}

static void check_scenario(const char *scen, size_t *total_msgs)
{
	char path[512];
	char *md;
	json_t *root, *conn;
	json_error_t jerr;
	size_t i;

	snprintf(path, sizeof path, "%s/%s/decoded.md", CCB_VECTORS_DIR, scen);
	md = ccbt_read_file(path, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(md);
	snprintf(path, sizeof path, "%s/%s/streams.json", CCB_VECTORS_DIR, scen);
	root = json_load_file(path, 0, &jerr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	json_array_foreach(json_object_get(root, "connections"), i, conn) {
		long long id = json_integer_value(json_object_get(conn, "id"));
		size_t n = 0;
		char *want = reference_conn(md, id);
		char *got = ours_conn(conn, &n);

		CU_ASSERT_PTR_NOT_NULL(want);
		if (want && strcmp(want, got)) {
			show_diff(scen, id, want, got);
			CU_FAIL("dissector output differs from decoded.md");
		}
		*total_msgs += n;
		free(want);
		free(got);
	}
	json_decref(root);
	free(md);
}

#define SCENARIO_TEST(fn, idx)                                                   \
	static void fn(void)                                                     \
	{                                                                        \
		size_t n = 0;                                                    \
		check_scenario(scenarios[idx], &n);                              \
		CU_ASSERT(n > 10);                                               \
	}
SCENARIO_TEST(test_s1, 0)
SCENARIO_TEST(test_s2, 1)
SCENARIO_TEST(test_s3, 2)
SCENARIO_TEST(test_s4, 3)
SCENARIO_TEST(test_s5, 4)
SCENARIO_TEST(test_s6, 5)

static const ccbt_test tests[] = {
	{"S1 claimtobe plain", test_s1}, {"S2 fs aes", test_s2},     {"S3 token aes", test_s3},
	{"S4 ssl", test_s4},             {"S5 streaming", test_s5},  {"S6 shared port", test_s6},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"decoded.md", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
