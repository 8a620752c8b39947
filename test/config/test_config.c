/* The JSON config file: knobs, types, errors, environment overrides. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ccb/config.h"
#include "ccbt.h"

static char *write_tmp(const char *text)
{
	static char path[64];
	int fd;

	strcpy(path, "/tmp/ccbt-config-XXXXXX");
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_client_and_server(void)
{
	char *path = write_tmp("{\n"
			       "  \"SEC_DEFAULT_ENCRYPTION\": \"REQUIRED\",\n"
			       "  \"sec_client_authentication\": \"optional\",\n"
			       "  \"SEC_CLIENT_AUTHENTICATION_METHODS\": \"TOKEN, SSL\",\n"
			       "  \"SEC_DAEMON_AUTHENTICATION_METHODS\": \"TOKEN\",\n"
			       "  \"ALLOW_DAEMON\": \"condor@*\",\n"
			       "  \"DENY_READ\": \"evil@*\",\n"
			       "  \"SEC_TOKEN_MAX_AGE\": 3600,\n"
			       "  \"AUTH_SSL_REQUIRE_CLIENT_CERTIFICATE\": true,\n"
			       "  \"UID_DOMAIN\": \"example.net\"\n}\n");
	ccb_config *c;
	ccb_sec_client_config cc;
	ccb_sec_server_config sc;
	ccb_error err;

	CU_ASSERT_FATAL(ccb_config_load(path, &c, &err) == CCB_OK);
	CU_ASSERT(ccb_config_client_security(c, &cc, &err) == CCB_OK);
	CU_ASSERT_EQUAL(cc.authentication, CCB_SEC_LEVEL_OPTIONAL);
	CU_ASSERT_EQUAL(cc.encryption, CCB_SEC_LEVEL_REQUIRED); /* from SEC_DEFAULT */
	CU_ASSERT_EQUAL(cc.integrity, CCB_SEC_LEVEL_DEFAULT);
	CU_ASSERT_STRING_EQUAL(cc.auth_methods, "TOKEN, SSL");
	CU_ASSERT_STRING_EQUAL(cc.uid_domain, "example.net");
	CU_ASSERT(ccb_config_server_security(c, &sc, &err) == CCB_OK);
	CU_ASSERT_EQUAL(sc.encryption[CCB_PERM_ALLOW], CCB_SEC_LEVEL_REQUIRED);
	CU_ASSERT_STRING_EQUAL(sc.auth_methods[CCB_PERM_DAEMON], "TOKEN");
	CU_ASSERT_PTR_NULL(sc.auth_methods[CCB_PERM_READ]);
	CU_ASSERT_STRING_EQUAL(sc.allow[CCB_PERM_DAEMON], "condor@*");
	CU_ASSERT_STRING_EQUAL(sc.deny[CCB_PERM_READ], "evil@*");
	CU_ASSERT_EQUAL(sc.token_max_age, 3600);
	CU_ASSERT(sc.ssl_require_client_cert);
	CU_ASSERT(ccb_config_knob_known("allow_daemon"));
	CU_ASSERT(!ccb_config_knob_known("ALLOW_NOTHING"));
	ccb_config_free(c);
	unlink(path);
}

static void expect_error(const char *text, ccb_err code, const char *words)
{
	char *path = write_tmp(text);
	ccb_config *c = NULL;
	ccb_error err = {0};

	CU_ASSERT_EQUAL(ccb_config_load(path, &c, &err), code);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, words));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, path));
	unlink(path);
}

static void test_errors(void)
{
	expect_error("{\"SEC_CLIENT_AUTHENTICATON\": \"REQUIRED\"}", CCB_ERR_CONFIG,
		     "unknown knob \"SEC_CLIENT_AUTHENTICATON\"");
	expect_error("{\"SEC_CLIENT_ENCRYPTION\": \"maybe\"}", CCB_ERR_CONFIG, "REQUIRED, PREFERRED");
	expect_error("{\"SEC_TOKEN_MAX_AGE\": \"3600\"}", CCB_ERR_CONFIG, "must be an integer");
	expect_error("{\"UID_DOMAIN\": 5}", CCB_ERR_CONFIG, "must be a string");
	expect_error("{\n\"UID_DOMAIN\": \"a\",\n\"UID_DOMAIN\": \"b\"\n}", CCB_ERR_CONFIG, ":3:");
	expect_error("{\n  \"UID_DOMAIN\": \"a\"\n  \"TRUST_DOMAIN\": \"b\"\n}", CCB_ERR_CONFIG, ":3:");
	expect_error("[1, 2]", CCB_ERR_CONFIG, "must be an object");
	/* Unknown and mistyped knobs name the line they are on. */
	expect_error("{\n  \"UID_DOMAIN\": \"a\",\n\n  \"CCB_HEARTBEAT_INTERVL\": 30\n}", CCB_ERR_CONFIG,
		     ":4: unknown knob \"CCB_HEARTBEAT_INTERVL\"");
	expect_error("{\n  \"CCB_SERVER_STREAMING\": \"yes\"\n}", CCB_ERR_CONFIG,
		     ":2: CCB_SERVER_STREAMING must be true or false");
	{
		ccb_config *c = NULL;
		ccb_error err;
		CU_ASSERT_EQUAL(ccb_config_load("/nonexistent/ccb.json", &c, &err), CCB_ERR_IO);
	}
}

static void test_typed_getters(void)
{
	char *path = write_tmp("{\"CCB_HEARTBEAT_INTERVAL\": 45, \"CCB_SERVER_STREAMING\": false}");
	ccb_config *c;
	long long n;
	bool b;
	ccb_error err;
	ccb_config_knob k;
	size_t count = ccb_config_knob_count(), documented = 0;

	CU_ASSERT_FATAL(ccb_config_load(path, &c, NULL) == CCB_OK);
	CU_ASSERT(ccb_config_int(c, "CCB_HEARTBEAT_INTERVAL", 300, &n, &err) == CCB_OK && n == 45);
	CU_ASSERT(ccb_config_int(c, "CCB_RECONNECT_TIME", 60, &n, &err) == CCB_OK && n == 60);
	CU_ASSERT(ccb_config_bool(c, "CCB_SERVER_STREAMING", true, &b, &err) == CCB_OK && !b);
	CU_ASSERT(ccb_config_bool(c, "CCB_CLIENT_STREAMING", true, &b, &err) == CCB_OK && b);
	ccb_config_free(c);
	/* Environment text must still parse. */
	setenv("_CONDOR_CCB_TIMEOUT", "12x", 1);
	setenv("_CONDOR_SSL_SKIP_HOST_CHECK", "Yes", 1);
	CU_ASSERT_FATAL(ccb_config_load(path, &c, NULL) == CCB_OK);
	CU_ASSERT(ccb_config_int(c, "CCB_TIMEOUT", 300, &n, &err) == CCB_ERR_CONFIG && n == 300);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "CCB_TIMEOUT"));
	CU_ASSERT(ccb_config_bool(c, "SSL_SKIP_HOST_CHECK", false, &b, &err) == CCB_OK && b);
	unsetenv("_CONDOR_CCB_TIMEOUT");
	unsetenv("_CONDOR_SSL_SKIP_HOST_CHECK");
	ccb_config_free(c);
	unlink(path);
	/* Every knob is documented. */
	for (size_t i = 0; i < count; i++)
		if (ccb_config_knob_info(i, &k) && k.name && k.type && k.dflt && k.doc && *k.doc &&
		    ccb_config_knob_known(k.name))
			documented++;
	CU_ASSERT(count > 60);
	CU_ASSERT_EQUAL(documented, count);
	CU_ASSERT(!ccb_config_knob_info(count, &k));
}

static void test_environment(void)
{
	char *path = write_tmp("{\"UID_DOMAIN\": \"file.domain\"}");
	ccb_config *c;

	setenv("_CONDOR_UID_DOMAIN", "env.domain", 1);
	setenv("_CONDOR_TRUST_DOMAIN", "env.trust", 1);
	CU_ASSERT_FATAL(ccb_config_load(path, &c, NULL) == CCB_OK);
	CU_ASSERT_STRING_EQUAL(ccb_config_get(c, "UID_DOMAIN"), "env.domain");
	CU_ASSERT_STRING_EQUAL(ccb_config_get(c, "trust_domain"), "env.trust");
	ccb_config_free(c);
	setenv("_CONDOR_SEC_CLIENT_ENCRYPTION", "sometimes", 1);
	CU_ASSERT_EQUAL(ccb_config_load(path, &c, NULL), CCB_ERR_CONFIG);
	unsetenv("_CONDOR_SEC_CLIENT_ENCRYPTION");
	unsetenv("_CONDOR_UID_DOMAIN");
	unsetenv("_CONDOR_TRUST_DOMAIN");
	/* No file at all: defaults and environment only. */
	CU_ASSERT_FATAL(ccb_config_load(NULL, &c, NULL) == CCB_OK);
	CU_ASSERT_PTR_NULL(ccb_config_get(c, "UID_DOMAIN"));
	ccb_config_free(c);
	unlink(path);
}

static const ccbt_test tests[] = {
	{"client and server settings", test_client_and_server},
	{"errors name file and knob", test_errors},
	{"environment overrides", test_environment},
	{"typed getters and the knob table", test_typed_getters},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"config", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
