/* The man pages (generated from docs/man/<page>.1.md at build time) against the
 * code: every sub-command that `ccbctl --help` lists has a page, and every
 * option its `--help` prints appears in that page, so the two cannot drift.
 * Also: ccbctl(1) names every sub-command and every page has the required
 * sections. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccbt.h"
#include "ccbt_proc.h"

static char mandir[512];

/* <build>/bin/ccbctl/ccbctl -> <build>/man/man1 */
static void find_mandir(void)
{
	char path[512];

	snprintf(path, sizeof path, "%s", CCBCTL_PATH);
	for (int i = 0; i < 3; i++) {
		char *slash = strrchr(path, '/');
		CU_ASSERT_PTR_NOT_NULL_FATAL(slash);
		*slash = '\0';
	}
	snprintf(mandir, sizeof mandir, "%s/man/man1", path);
}

/* The page as plain text: roff escapes for '-' and fonts removed. */
static char *read_page(const char *name)
{
	char path[700], *text, *w;
	size_t len;

	snprintf(path, sizeof path, "%s/%s.1", mandir, name);
	text = ccbt_read_file(path, &len);
	if (!text)
		return NULL;
	w = text;
	for (const char *r = text; *r;) {
		if (r[0] == '\\' && r[1] == '-') {
			*w++ = '-';
			r += 2;
		} else if (r[0] == '\\' && r[1] == 'f' && r[2]) {
			r += 3;
		} else if (r[0] == '\\' && r[1] == '&') {
			r += 2;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return text;
}

static char *run_help(const char *cmd)
{
	char *argv[] = {CCBCTL_PATH, (char *)cmd, "--help", NULL}, *out = NULL;
	char *top[] = {CCBCTL_PATH, "--help", NULL};

	CU_ASSERT_EQUAL(ccbt_proc_run(cmd ? argv : top, NULL, 10000, &out), 0);
	return out;
}

/* Every option token in a --help text: "--long" and "-x" (a dash and one
 * letter standing alone, as in "-c FILE", "[-v|--debug]", "-c, --config"). */
static int check_options(const char *help, const char *page, const char *cmd, int *found_out)
{
	int found = 0, missing = 0;

	for (const char *p = help; *p; p++) {
		char opt[64];
		size_t n;

		if (*p != '-' || (p > help && !strchr(" \t\n[|", p[-1])))
			continue;
		if (p[1] == '-' && islower((unsigned char)p[2])) {
			n = 2 + strspn(p + 2, "abcdefghijklmnopqrstuvwxyz0123456789-");
		} else if (isalpha((unsigned char)p[1]) && (!p[2] || strchr(" ,]|\n", p[2]))) {
			n = 2;
		} else {
			continue;
		}
		if (n >= sizeof opt)
			continue;
		memcpy(opt, p, n);
		opt[n] = '\0';
		found++;
		if (!strstr(page, opt)) {
			if (cmd)
				fprintf(stderr, "man page of %s lacks option %s\n", cmd, opt);
			missing++;
		}
		p += n - 1;
	}
	if (found_out)
		*found_out = found;
	return missing;
}

static void check_sections(const char *page, const char *name)
{
	static const char *need[] = {".SH NAME",   ".SH SYNOPSIS",    ".SH DESCRIPTION",
				     ".SH OPTIONS", ".SH EXIT STATUS", ".SH FILES",
				     ".SH ENVIRONMENT", ".SH EXAMPLES", ".SH SEE ALSO"};

	for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
		if (!strstr(page, need[i])) {
			fprintf(stderr, "man page %s lacks %s\n", name, need[i]);
			CU_FAIL("section missing");
		}
	CU_ASSERT_PTR_NOT_NULL(strstr(page, ".TH \"")); /* a header */
}

static void test_pages_match_help(void)
{
	char *top, *main_page, *line, *save = NULL;
	int commands = 0;
	bool in_list = false;

	find_mandir();
	top = run_help(NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(top);
	main_page = read_page("ccbctl");
	CU_ASSERT_PTR_NOT_NULL_FATAL(main_page);
	check_sections(main_page, "ccbctl");
	CU_ASSERT_EQUAL(check_options(top, main_page, "ccbctl", NULL), 0);
	for (line = strtok_r(top, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char cmd[32], page_name[64], *help, *page, mention[48];
		int nopts;

		if (!strcmp(line, "commands:")) {
			in_list = true;
			continue;
		}
		if (!in_list || strncmp(line, "  ", 2) || sscanf(line + 2, "%31s", cmd) != 1)
			continue;
		commands++;
		snprintf(page_name, sizeof page_name, "ccbctl-%s", cmd);
		snprintf(mention, sizeof mention, "ccbctl-%s(1)", cmd);
		CU_ASSERT_PTR_NOT_NULL(strstr(main_page, mention)); /* listed in ccbctl(1) */
		page = read_page(page_name);
		if (!page) {
			fprintf(stderr, "no man page for %s\n", cmd);
			CU_FAIL("man page missing");
			continue;
		}
		check_sections(page, page_name);
		help = run_help(cmd);
		CU_ASSERT_PTR_NOT_NULL_FATAL(help);
		CU_ASSERT_EQUAL(check_options(help, page, cmd, &nopts), 0);
		CU_ASSERT(nopts >= 2); /* every command has -c/--config or similar */
		free(help);
		free(page);
	}
	CU_ASSERT(commands >= 9); /* broker decode listen dial ping status token config probe */
	free(main_page);
	free(top);
}

/* The check itself can fail: an option that is not in a page is caught. */
static void test_checker_detects_drift(void)
{
	const char *page = "-c, --config FILE\n";
	int found = 0;

	CU_ASSERT_EQUAL(check_options("usage: x [-c FILE] [--config FILE]\n", page, "x", &found), 0);
	CU_ASSERT_EQUAL(found, 2);
	CU_ASSERT_EQUAL(check_options("usage: x [-c FILE|-v] [--json] ARG-1 a-b\n", page, NULL, &found), 2);
	CU_ASSERT_EQUAL(found, 3);
}

static const ccbt_test tests[] = {
	{"every sub-command has a page naming its --help options", test_pages_match_help},
	{"option extraction", test_checker_detects_drift},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"man pages", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
