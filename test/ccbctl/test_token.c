/* ccbctl token create|verify as real processes, with the real S3 pool key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ccbt.h"
#include "util/util.h"

#define S3 CCB_VECTORS_DIR "/S3-token-aes/config"

static char dir[] = "/tmp/ccbt-token-XXXXXX";
static char cfg[300];

static int run(const char *args, char **out)
{
	char cmd[2048];
	FILE *p;
	ccb_buf b;
	char chunk[1024];
	size_t n;
	int st;

	snprintf(cmd, sizeof cmd, "%s token %s 2>&1", CCBCTL_PATH, args);
	p = popen(cmd, "r");
	ccb_buf_init(&b);
	while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
		ccb_buf_append(&b, chunk, n);
	st = pclose(p);
	*out = ccb_buf_steal_str(&b);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void setup(void)
{
	size_t n;
	char *key = ccbt_read_file(S3 "/POOL.signing-key", &n);
	char path[300];
	FILE *f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(key);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/POOL", dir);
	f = fopen(path, "wb");
	fwrite(key, 1, n, f);
	fclose(f);
	chmod(path, 0600);
	free(key);
	snprintf(cfg, sizeof cfg, "%s/config.json", dir);
	f = fopen(cfg, "w");
	fprintf(f, "{\"SEC_PASSWORD_DIRECTORY\": \"%s\", \"TRUST_DOMAIN\": \"ccbtest.local\"}\n", dir);
	fclose(f);
}

static void test_verify_real_token(void)
{
	char args[600], *out;

	snprintf(args, sizeof args, "verify -c %s - < %s/token-alice.jwt", cfg, S3);
	CU_ASSERT_EQUAL(run(args, &out), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "valid: kid=POOL issuer=ccbtest.local"));
	free(out);
}

static void test_create_then_verify(void)
{
	char args[2400], *tok;
	char *out;

	snprintf(args, sizeof args, "create -c %s --identity bob@ccbtest.local --authz READ --lifetime 600", cfg);
	CU_ASSERT_EQUAL_FATAL(run(args, &tok), 0);
	tok[strcspn(tok, "\n")] = '\0';
	CU_ASSERT_EQUAL(strncmp(tok, "eyJhbGciOiJIUzI1NiIsImtpZCI6IlBPT0wifQ.", 39), 0);
	snprintf(args, sizeof args, "verify -c %s --json %s", cfg, tok);
	CU_ASSERT_EQUAL(run(args, &out), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"subject\": \"bob@ccbtest.local\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "condor:/READ"));
	free(out);
	/* One changed character in the payload breaks the signature. */
	tok[45] = tok[45] == 'A' ? 'B' : 'A';
	snprintf(args, sizeof args, "verify -c %s %s", cfg, tok);
	CU_ASSERT_EQUAL(run(args, &out), 1);
	free(out);
	free(tok);
}

static void test_usage(void)
{
	char *out;

	CU_ASSERT_EQUAL(run("frobnicate", &out), 2);
	free(out);
	CU_ASSERT_EQUAL(run("create", &out), 2); /* no --identity */
	free(out);
}

static void test_cleanup(void)
{
	char path[300];

	snprintf(path, sizeof path, "%s/POOL", dir);
	unlink(path);
	unlink(cfg);
	CU_ASSERT_EQUAL(rmdir(dir), 0);
}

static const ccbt_test tests[] = {
	{"set up", setup},
	{"verify a token from condor_token_create", test_verify_real_token},
	{"create then verify, tampering detected", test_create_then_verify},
	{"usage", test_usage},
	{"clean up", test_cleanup},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"ccbctl token", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
