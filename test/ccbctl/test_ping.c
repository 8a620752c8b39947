/* ccbctl ping, run as a real process against libccb's security server. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "ccb/security.h"
#include "ccb/sharedport.h"
#include "ccbt.h"
#include "util/util.h"

/* DC_NOP_<LEVEL> registered at their levels, as daemon core does. */
static int nop_perm(int command, void *user)
{
	(void)user;
	switch (command) {
	case 60011: return CCB_PERM_ALLOW;
	case 60020: return CCB_PERM_READ;
	case 60021: return CCB_PERM_WRITE;
	case 60026: return CCB_PERM_DAEMON;
	case 60040: return CCB_PERM_ALLOW;
	}
	return -1;
}

struct srv {
	int lfd;
	ccb_sec_server_config cfg;
	ccb_err rc;
	ccb_sec_command cmd;
};

static void *serve_one(void *arg)
{
	struct srv *sv = arg;
	int fd = accept(sv->lfd, NULL, NULL);
	ccb_stream *s;
	ccb_error err;

	if (fd < 0 || ccb_stream_new(fd, &s, NULL)) {
		sv->rc = CCB_ERR_IO;
		return NULL;
	}
	ccb_stream_set_timeout(s, 10000);
	sv->rc = ccb_sec_server_accept(s, &sv->cfg, &sv->cmd, &err);
	ccb_stream_free(s);
	return NULL;
}

/* The server's encryption and integrity for the next ping() (0: defaults). */
static ccb_sec_level server_protection;

static int ping(const char *args, char **out)
{
	struct srv sv = {0};
	pthread_t t;
	uint16_t port;
	char cmd[1024];
	FILE *p;
	ccb_buf b;
	char chunk[1024];
	size_t n;
	int st;

	sv.lfd = ccbt_listen(&port);
	sv.cfg.command_perm = nop_perm;
	sv.cfg.uid_domain = "vm";
	sv.cfg.auth_methods[CCB_PERM_ALLOW] = "CLAIMTOBE";
	sv.cfg.allow[CCB_PERM_DAEMON] = "condor@vm";
	sv.cfg.encryption[CCB_PERM_ALLOW] = sv.cfg.integrity[CCB_PERM_ALLOW] = server_protection;
	pthread_create(&t, NULL, serve_one, &sv);
	snprintf(cmd, sizeof cmd, "%s ping %s 127.0.0.1:%u 2>&1", CCBCTL_PATH, args, port);
	p = popen(cmd, "r");
	ccb_buf_init(&b);
	while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
		ccb_buf_append(&b, chunk, n);
	st = pclose(p);
	pthread_join(t, NULL);
	close(sv.lfd);
	*out = ccb_buf_steal_str(&b);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *write_config(const char *json)
{
	static char path[] = "/tmp/ccbt-ping-XXXXXX";
	int fd;

	strcpy(path, "/tmp/ccbt-ping-XXXXXX");
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(write(fd, json, strlen(json)) == (ssize_t)strlen(json));
	close(fd);
	return path;
}

static void test_read_allowed(void)
{
	char *out;

	CU_ASSERT_EQUAL(ping("--level READ", &out), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "READ access:  ALLOWED"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "Encryption:      AES-GCM"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "Authentication:  none"));
	free(out);
}

static void test_daemon_needs_identity(void)
{
	char *out, args[256];
	char *cfg;

	/* Our default methods (TOKEN, SSL) and the server's (CLAIMTOBE) do not
	 * meet while DAEMON requires authentication; exit 1. */
	CU_ASSERT_EQUAL(ping("--level DAEMON", &out), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "no authentication method in common"));
	free(out);
	/* Authenticated as someone ALLOW_DAEMON does not name: DENIED. */
	cfg = write_config("{\"SEC_CLIENT_AUTHENTICATION_METHODS\": \"CLAIMTOBE\","
			   " \"SEC_CLAIMTOBE_USER\": \"nobody\", \"UID_DOMAIN\": \"vm\"}");
	snprintf(args, sizeof args, "-c %s --level DAEMON", cfg);
	CU_ASSERT_EQUAL(ping(args, &out), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "DAEMON access:  DENIED"));
	free(out);
	unlink(cfg);
	/* Claiming condor@vm (what ALLOW_DAEMON names) is allowed. */
	cfg = write_config("{\"SEC_CLIENT_AUTHENTICATION_METHODS\": \"CLAIMTOBE\","
			   " \"SEC_CLAIMTOBE_USER\": \"condor\", \"UID_DOMAIN\": \"vm\"}");
	snprintf(args, sizeof args, "-c %s --level DAEMON --json", cfg);
	CU_ASSERT_EQUAL(ping(args, &out), 0);
	{
		json_t *o = json_loads(out, 0, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(o);
		CU_ASSERT(json_is_true(json_object_get(o, "authorized")));
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "method")), "CLAIMTOBE");
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "identity")), "condor@vm");
		CU_ASSERT_EQUAL(json_array_size(json_object_get(o, "steps")), 3);
		json_decref(o);
	}
	free(out);
	unlink(cfg);
}

/* The labels name what the session really does: a BLOWFISH key with
 * encryption off enciphers only secrets; with encryption and integrity on,
 * every byte goes through BLOWFISH with the MD5 header. */
static void test_legacy_crypto_labels(void)
{
	char *out, args[256], *cfg;

	server_protection = CCB_SEC_LEVEL_OPTIONAL;
	cfg = write_config("{\"SEC_CLIENT_AUTHENTICATION_METHODS\": \"CLAIMTOBE\","
			   " \"SEC_CLIENT_CRYPTO_METHODS\": \"BLOWFISH\","
			   " \"SEC_CLIENT_ENCRYPTION\": \"NEVER\", \"SEC_CLIENT_INTEGRITY\": \"NEVER\","
			   " \"UID_DOMAIN\": \"vm\"}");
	snprintf(args, sizeof args, "-c %s --level READ", cfg);
	CU_ASSERT_EQUAL(ping(args, &out), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "Encryption:      none (secrets under BLOWFISH)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "Integrity:       none"));
	free(out);
	unlink(cfg);
	cfg = write_config("{\"SEC_CLIENT_AUTHENTICATION_METHODS\": \"CLAIMTOBE\","
			   " \"SEC_CLIENT_CRYPTO_METHODS\": \"3DES\","
			   " \"SEC_CLIENT_ENCRYPTION\": \"REQUIRED\", \"SEC_CLIENT_INTEGRITY\": \"REQUIRED\","
			   " \"UID_DOMAIN\": \"vm\"}");
	snprintf(args, sizeof args, "-c %s --level READ --json", cfg);
	CU_ASSERT_EQUAL(ping(args, &out), 0);
	{
		json_t *o = json_loads(out, 0, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(o);
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "crypto")), "3DES");
		CU_ASSERT(json_is_true(json_object_get(o, "encryption")));
		CU_ASSERT(json_is_true(json_object_get(o, "integrity")));
		json_decref(o);
	}
	free(out);
	unlink(cfg);
	server_protection = 0;
}

static void test_errors(void)
{
	char *out, args[256], *cfg;
	FILE *p;
	int st;

	cfg = write_config("{\"SEC_CLIENT_AUTHENTICATON_METHODS\": \"CLAIMTOBE\"}");
	snprintf(args, sizeof args, "%s ping -c %s 127.0.0.1:1 2>&1", CCBCTL_PATH, cfg);
	p = popen(args, "r");
	out = calloc(1, 1024);
	CU_ASSERT(fread(out, 1, 1023, p) > 0);
	st = pclose(p);
	CU_ASSERT_EQUAL(WEXITSTATUS(st), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "unknown knob \"SEC_CLIENT_AUTHENTICATON_METHODS\""));
	free(out);
	unlink(cfg);
	/* Nobody listening: the connect step fails, exit 1. */
	p = popen(CCBCTL_PATH " ping --timeout 2 127.0.0.1:1 2>&1", "r");
	out = calloc(1, 1024);
	CU_ASSERT(fread(out, 1, 1023, p) > 0);
	st = pclose(p);
	CU_ASSERT_EQUAL(WEXITSTATUS(st), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "connect"));
	free(out);
	st = system(CCBCTL_PATH " ping --level BOGUS 127.0.0.1:1 >/dev/null 2>&1");
	CU_ASSERT_EQUAL(WEXITSTATUS(st), 2);
}

struct sp_target {
	ccb_sharedport_server *server;
	ccb_sharedport_endpoint *ep;
	ccb_sec_server_config cfg;
	ccb_err rc;
};

static void *sp_serve(void *arg)
{
	struct sp_target *t = arg;
	ccb_stream *s = NULL;
	ccb_sec_command cmd;
	ccb_error err;

	if (ccb_sharedport_server_serve_one(t->server, ccb_deadline_in(10000), &err) ||
	    ccb_sharedport_endpoint_accept(t->ep, ccb_deadline_in(10000), &s, &err)) {
		t->rc = err.code;
		return NULL;
	}
	ccb_stream_set_timeout(s, 10000);
	t->rc = ccb_sec_server_accept(s, &t->cfg, &cmd, &err);
	ccb_stream_free(s);
	return NULL;
}

/* <127.0.0.1:PORT?sock=ID>: SHARED_PORT_CONNECT, then the handshake. */
static void test_through_shared_port(void)
{
	char dir[] = "/tmp/ccbt-sp-XXXXXX", cmd[512], out[4096] = "";
	struct sp_target t = {0};
	ccb_sharedport_server_config scfg = {0};
	ccb_sharedport_endpoint_config ecfg = {0};
	pthread_t th;
	FILE *p;
	int st;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	scfg.socket_dir = ecfg.socket_dir = dir;
	ecfg.id = "target_1";
	CU_ASSERT_FATAL(ccb_sharedport_server_new(&scfg, &t.server, NULL) == CCB_OK);
	CU_ASSERT_FATAL(ccb_sharedport_endpoint_new(&ecfg, &t.ep, NULL) == CCB_OK);
	t.cfg.command_perm = nop_perm;
	pthread_create(&th, NULL, sp_serve, &t);
	snprintf(cmd, sizeof cmd, "%s ping --level READ '<127.0.0.1:%u?sock=target_1>' 2>&1",
		 CCBCTL_PATH, ccb_sharedport_server_port(t.server));
	p = popen(cmd, "r");
	CU_ASSERT(fread(out, 1, sizeof out - 1, p) > 0);
	st = pclose(p);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(WEXITSTATUS(st), 0);
	CU_ASSERT_EQUAL(t.rc, CCB_OK);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "READ access:  ALLOWED"));
	ccb_sharedport_endpoint_free(t.ep);
	ccb_sharedport_server_free(t.server);
	rmdir(dir);
}

static const ccbt_test tests[] = {
	{"through shared port", test_through_shared_port},
	{"READ allowed without authentication", test_read_allowed},
	{"DAEMON needs an identity", test_daemon_needs_identity},
	{"legacy crypto labels", test_legacy_crypto_labels},
	{"errors and exit codes", test_errors},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"ccbctl ping", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
