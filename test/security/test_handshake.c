/* DC_AUTHENTICATE end to end: our client against our server over loopback,
 * plus captured and hand-made requests against our server. */
#include <pthread.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "ccb/classad.h"
#include "ccb/commands.h"
#include "ccb/security.h"
#include "ccbt.h"
#include "security/session_cache.h"
#include "security/session_crypto.h"
#include "util/util.h"
#include "classad/classad_internal.h"

static int perm_of(int command, void *user)
{
	(void)user;
	switch (command) {
	case CCB_CMD_CCB_REGISTER: return CCB_PERM_DAEMON;
	case CCB_CMD_CCB_REQUEST: return CCB_PERM_READ;
	case CCB_CMD_CCB_REVERSE_CONNECT: return CCB_PERM_ALLOW;
	case CCB_CMD_DC_SEC_QUERY: return CCB_PERM_ALLOW;
	}
	return -1;
}

struct server {
	ccb_stream *s;
	ccb_sec_server_config cfg;
	ccb_sec_command cmd;
	ccb_error err;
	ccb_err rc;
	int64_t payload; /* Command of the payload ad the client sends */
};

static void *serve(void *arg)
{
	struct server *sv = arg;
	sv->rc = ccb_sec_server_accept(sv->s, &sv->cfg, &sv->cmd, &sv->err);
	if (sv->rc == CCB_OK && sv->cmd.negotiated && sv->cmd.command != CCB_CMD_DC_SEC_QUERY) {
		ccb_classad *ad = NULL;
		if (ccb_classad_get(sv->s, &ad) == CCB_OK && ccb_stream_end_of_message(sv->s) == CCB_OK)
			ccb_classad_get_int(ad, "Command", &sv->payload);
		ccb_classad_free(ad);
	}
	if (sv->rc)
		ccb_stream_shutdown(sv->s); /* the caller closes on error */
	return NULL;
}

static void server_defaults(struct server *sv)
{
	memset(sv, 0, sizeof *sv);
	sv->cfg.command_perm = perm_of;
	sv->cfg.uid_domain = "vm";
	sv->cfg.auth_methods[CCB_PERM_ALLOW] = "CLAIMTOBE";
	sv->cfg.allow[CCB_PERM_DAEMON] = "condor@*";
}

/* Run the client side for `command`; then send a payload ad on success. */
static ccb_err run(struct server *sv, const ccb_sec_client_config *cc, int command, int auth_command,
		   ccb_sec_info *info, ccb_error *err)
{
	int fds[2];
	ccb_stream *c;
	pthread_t t;
	ccb_err rc;

	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &c, NULL);
	ccb_stream_new(fds[1], &sv->s, NULL);
	ccb_stream_set_timeout(c, 5000);
	ccb_stream_set_timeout(sv->s, 5000);
	pthread_create(&t, NULL, serve, sv);
	rc = ccb_sec_client_start(c, cc, command, auth_command, "<127.0.0.1:9618>", info, err);
	if (rc == CCB_OK && command != CCB_CMD_DC_SEC_QUERY) {
		ccb_classad *ad = ccb__classad_new();
		ccb_classad_set_int(ad, "Command", command);
		ccb_classad_set_string(ad, "Name", "payload with \"secrets\"");
		CU_ASSERT(ccb_classad_put(c, ad, NULL) == CCB_OK && ccb_stream_end_message(c) == CCB_OK);
		ccb_classad_free(ad);
	}
	if (rc == CCB_OK && command == CCB_CMD_DC_SEC_QUERY) {
		bool ok = false;
		rc = ccb_sec_client_query_reply(c, &ok, err);
		if (rc == CCB_OK && !ok)
			rc = CCB_ERR_NOT_AUTHORIZED;
	}
	if (rc)
		ccb_stream_shutdown(c);
	pthread_join(t, NULL);
	/* A completed handshake always leaves AES on. */
	if (rc == CCB_OK)
		CU_ASSERT(ccb_stream_crypto_on(c));
	ccb_stream_free(c);
	ccb_stream_free(sv->s);
	return rc;
}

/* READ-level command, nothing to authenticate with: ECDH + AES only. */
static void test_read_unauthenticated(void)
{
	struct server sv;
	ccb_sec_info info;
	ccb_error err;

	server_defaults(&sv);
	CU_ASSERT_EQUAL(run(&sv, NULL, CCB_CMD_CCB_REQUEST, 0, &info, &err), CCB_OK);
	CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	CU_ASSERT_EQUAL(sv.cmd.command, CCB_CMD_CCB_REQUEST);
	CU_ASSERT(sv.cmd.negotiated);
	CU_ASSERT(!sv.cmd.info.authenticated);
	CU_ASSERT_STRING_EQUAL(sv.cmd.info.user, CCB_UNAUTHENTICATED_USER);
	CU_ASSERT(info.encrypted && !info.authenticated);
	CU_ASSERT_EQUAL(sv.payload, CCB_CMD_CCB_REQUEST); /* payload went through AES */
	CU_ASSERT_PTR_NOT_NULL(strstr(info.peer_version, "$CondorVersion: "));
	CU_ASSERT(info.session_id[0] != '\0');
}

/* DAEMON-level command: CLAIMTOBE, then ALLOW_DAEMON decides. */
static void test_daemon_claimtobe(void)
{
	struct server sv;
	ccb_sec_client_config cc = {.auth_methods = "CLAIMTOBE", .claimtobe_user = "condor",
				    .uid_domain = "vm"};
	ccb_sec_info info;
	ccb_error err;

	server_defaults(&sv);
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REGISTER, 0, &info, &err), CCB_OK);
	CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	CU_ASSERT(sv.cmd.info.authenticated);
	CU_ASSERT_STRING_EQUAL(sv.cmd.info.method, "CLAIMTOBE");
	CU_ASSERT_STRING_EQUAL(sv.cmd.info.user, "condor@vm");
	CU_ASSERT_STRING_EQUAL(info.user, "condor@vm");
	CU_ASSERT_STRING_EQUAL(info.method, "CLAIMTOBE");
	CU_ASSERT_EQUAL(sv.payload, CCB_CMD_CCB_REGISTER);

	/* Someone else is refused: POST-AUTH says DENIED. */
	server_defaults(&sv);
	cc.claimtobe_user = "mallory";
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REGISTER, 0, &info, &err), CCB_ERR_NOT_AUTHORIZED);
	CU_ASSERT_EQUAL(sv.rc, CCB_ERR_NOT_AUTHORIZED);

	/* No method in common and authentication required: refused. */
	server_defaults(&sv);
	cc.auth_methods = "FS";
	CU_ASSERT_NOT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REGISTER, 0, &info, &err), CCB_OK);
	CU_ASSERT_NOT_EQUAL(sv.rc, CCB_OK);
}

/*
 * Zero-initialised configs with CLAIMTOBE enabled, as an app embedding a
 * client and a broker starts (issue 17). The defaults are HTCondor 25's
 * security:recommended: a DAEMON command authenticates (server REQUIRED
 * against client OPTIONAL gives YES), a READ command does not (OPTIONAL
 * against OPTIONAL gives NO), exactly as between HTCondor daemons and tools.
 * Every refusal names who was refused and why, with one code per outcome.
 */
static void test_defaults_claimtobe(void)
{
	struct server sv;
	ccb_sec_client_config cc = {.auth_methods = "CLAIMTOBE"};
	ccb_sec_info info;
	ccb_error err;
	struct passwd *pw = getpwuid(geteuid());
	char me[300], want[400];

	CU_ASSERT_FATAL(pw != NULL);
	snprintf(me, sizeof me, "%s@%s", pw->pw_name, ccb__sec_uid_domain(NULL));
	memset(&sv, 0, sizeof sv);
	sv.cfg.command_perm = perm_of;
	sv.cfg.auth_methods[CCB_PERM_ALLOW] = "CLAIMTOBE";
	sv.cfg.allow[CCB_PERM_DAEMON] = me;

	/* DAEMON (CCB_REGISTER): authenticated by CLAIMTOBE as this user. */
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REGISTER, 0, &info, &err), CCB_OK);
	CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	CU_ASSERT(info.authenticated && sv.cmd.info.authenticated);
	CU_ASSERT_STRING_EQUAL(info.method, "CLAIMTOBE");
	CU_ASSERT_STRING_EQUAL(info.user, me);
	CU_ASSERT_STRING_EQUAL(sv.cmd.info.user, me);

	/* READ (CCB_REQUEST) with ALLOW_READ naming the user: nothing
	 * authenticates, so the peer is refused as unauthenticated, and the
	 * detail says so rather than "authentication failed". */
	sv.cfg.allow[CCB_PERM_READ] = me;
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REQUEST, 0, &info, &err), CCB_ERR_NOT_AUTHORIZED);
	CU_ASSERT(!info.authenticated);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "no authentication was negotiated, so the peer "
						  "is unauthenticated"));
	CU_ASSERT_EQUAL(sv.rc, CCB_ERR_NOT_AUTHORIZED);
	CU_ASSERT_PTR_NOT_NULL(strstr(sv.err.detail, "no authentication was negotiated"));
	CU_ASSERT_PTR_NOT_NULL(strstr(sv.err.detail, "not authorized for READ"));

	/* The client asks for authentication: CLAIMTOBE runs and READ is granted. */
	cc.authentication = CCB_SEC_LEVEL_PREFERRED;
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REQUEST, 0, &info, &err), CCB_OK);
	CU_ASSERT(info.authenticated);
	CU_ASSERT_STRING_EQUAL(sv.cmd.info.user, me);

	/* Someone else: authenticated, then refused, by name and method. */
	cc.claimtobe_user = "mallory";
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REQUEST, 0, &info, &err), CCB_ERR_NOT_AUTHORIZED);
	snprintf(want, sizeof want, "user 'mallory@%s' (authenticated by CLAIMTOBE) not authorized",
		 ccb__sec_uid_domain(NULL));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, want));
	CU_ASSERT_EQUAL(sv.rc, CCB_ERR_NOT_AUTHORIZED);
	CU_ASSERT_PTR_NOT_NULL(strstr(sv.err.detail, want));
	CU_ASSERT_PTR_NOT_NULL(strstr(sv.err.detail, "for READ"));

	/* A method that runs and fails while required: CCB_ERR_AUTH. */
	cc = (ccb_sec_client_config){.auth_methods = "TOKEN", .token = "not-a-token"};
	sv.cfg.auth_methods[CCB_PERM_ALLOW] = "TOKEN";
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REGISTER, 0, &info, &err), CCB_ERR_AUTH);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "TOKEN"));
}

/* condor_ping's question: may I run command X? */
static void test_sec_query(void)
{
	struct server sv;
	ccb_sec_client_config cc = {.auth_methods = "CLAIMTOBE", .claimtobe_user = "condor",
				    .uid_domain = "vm"};
	ccb_sec_info info;
	ccb_error err;

	server_defaults(&sv);
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_DC_SEC_QUERY, CCB_CMD_CCB_REGISTER, &info, &err), CCB_OK);
	CU_ASSERT_EQUAL(sv.cmd.command, CCB_CMD_DC_SEC_QUERY);
	CU_ASSERT_EQUAL(sv.cmd.perm, CCB_PERM_DAEMON);
	server_defaults(&sv);
	cc.claimtobe_user = "nobody";
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_DC_SEC_QUERY, CCB_CMD_CCB_REGISTER, &info, &err),
			CCB_ERR_NOT_AUTHORIZED);
}

static void test_refusals(void)
{
	struct server sv;
	ccb_sec_client_config cc = {.encryption = CCB_SEC_LEVEL_NEVER, .integrity = CCB_SEC_LEVEL_NEVER};
	ccb_sec_info info;
	ccb_error err;

	/* Client refuses encryption, server requires it: the server closes. */
	server_defaults(&sv);
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REQUEST, 0, &info, &err), CCB_ERR_CLOSED);
	CU_ASSERT_EQUAL(sv.rc, CCB_ERR_UNSUPPORTED); /* a policy mismatch, no authentication ran */
	/* The client says what happened, not why: the server gave no reason. */
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "closed the connection after the DC_AUTHENTICATE "
						  "request for command 68, before answering"));
	CU_ASSERT_PTR_NULL(strstr(err.detail, "mismatch"));
	/* Unknown command: closed without an answer. */
	server_defaults(&sv);
	CU_ASSERT_EQUAL(run(&sv, NULL, 12345, 0, &info, &err), CCB_ERR_CLOSED);
	CU_ASSERT_EQUAL(sv.rc, CCB_ERR_NOT_FOUND);
}

static ccb_stream *raw_server(struct server *sv, int *raw, pthread_t *t)
{
	int fds[2];

	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[1], &sv->s, NULL);
	ccb_stream_set_timeout(sv->s, 5000);
	pthread_create(t, NULL, serve, sv);
	*raw = fds[0];
	return sv->s;
}

static void send_msg(int fd, ccb_classad *ad, int64_t first)
{
	ccb_stream *c;
	int dup_fd = dup(fd);

	ccb_stream_new(dup_fd, &c, NULL);
	ccb_stream_put_int(c, first);
	if (ad)
		ccb_classad_put(c, ad, NULL);
	ccb_stream_end_message(c);
	ccb_stream_free(c);
}

/* A raw CCB_REVERSE_CONNECT (no handshake) is handed back unread. */
static void test_raw_command(void)
{
	struct server sv;
	pthread_t t;
	int raw;

	server_defaults(&sv);
	raw_server(&sv, &raw, &t);
	send_msg(raw, NULL, CCB_CMD_CCB_REVERSE_CONNECT);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	CU_ASSERT_EQUAL(sv.cmd.command, CCB_CMD_CCB_REVERSE_CONNECT);
	CU_ASSERT(!sv.cmd.negotiated);
	ccb_stream_free(sv.s);
	close(raw);

	/* A raw command that needs DAEMON is refused. */
	server_defaults(&sv);
	raw_server(&sv, &raw, &t);
	send_msg(raw, NULL, CCB_CMD_CCB_REGISTER);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(sv.rc, CCB_ERR_NOT_AUTHORIZED);
	ccb_stream_free(sv.s);
	close(raw);
}

/* Resuming a session we never made: [ReturnCode = "SID_NOT_FOUND"]. */
static void test_resume_refused(void)
{
	struct server sv;
	pthread_t t;
	int raw;
	ccb_classad *ad = ccb__classad_new(), *reply = NULL;
	ccb_stream *c;
	const char *code = NULL;

	server_defaults(&sv);
	raw_server(&sv, &raw, &t);
	ccb_classad_set_int(ad, "Command", CCB_CMD_CCB_REQUEST);
	ccb_classad_set_string(ad, "Sid", "vm:1:2:3");
	ccb_classad_set_string(ad, "UseSession", "YES");
	ccb_classad_set_bool(ad, "ResumeResponse", true);
	send_msg(raw, ad, 60010);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(sv.rc, CCB_ERR_SESSION_REFUSED);
	ccb_stream_new(raw, &c, NULL);
	CU_ASSERT(ccb_classad_get(c, &reply) == CCB_OK);
	CU_ASSERT(ccb_classad_get_string(reply, "ReturnCode", &code) == CCB_OK);
	if (code)
		CU_ASSERT_STRING_EQUAL(code, "SID_NOT_FOUND");
	ccb_classad_free(reply);
	ccb_classad_free(ad);
	ccb_stream_free(c);
	ccb_stream_free(sv.s);
}

/* The captured request of a 25.14 master (CLAIMTOBE, encryption and
 * integrity NEVER) against a server that requires encryption: a policy
 * mismatch, so our server closes without answering, as C++ does. */
static void test_captured_blowfish_request(void)
{
	struct server sv;
	pthread_t t;
	int raw;
	json_t *root = json_load_file(CCB_VECTORS_DIR "/S1-claimtobe-plain/streams.json", 0, NULL);
	json_t *conn = NULL, *it;
	size_t i, n;
	uint8_t *b;
	const char *hex;

	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	json_array_foreach(json_object_get(root, "connections"), i, it)
		if (json_integer_value(json_object_get(it, "id")) == 1)
			conn = it;
	hex = json_string_value(json_object_get(json_array_get(json_object_get(conn, "segments"), 0), "hex"));
	/* The first message: 5-byte header + 661 bytes. */
	n = 5 + 661;
	b = malloc(n);
	CU_ASSERT_FATAL(strlen(hex) >= 2 * n && ccb_hex_decode(hex, 2 * n, b));
	server_defaults(&sv);
	raw_server(&sv, &raw, &t);
	CU_ASSERT(send(raw, b, n, 0) == (ssize_t)n);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(sv.rc, CCB_ERR_UNSUPPORTED);
	CU_ASSERT_EQUAL(sv.cmd.command, CCB_CMD_CCB_REGISTER);
	ccb_stream_free(sv.s);
	close(raw);
	free(b);
	json_decref(root);
}

static void test_authorization_lists(void)
{
	ccb_sec_server_config cfg = {0};

	cfg.allow[CCB_PERM_DAEMON] = "condor@*, alice@example.net/127.0.0.*";
	cfg.deny[CCB_PERM_DAEMON] = "condor@evil.org";
	CU_ASSERT(ccb_sec_authorized(&cfg, CCB_PERM_DAEMON, "condor@vm", "10.0.0.1"));
	CU_ASSERT(!ccb_sec_authorized(&cfg, CCB_PERM_DAEMON, "condor@evil.org", "10.0.0.1"));
	CU_ASSERT(ccb_sec_authorized(&cfg, CCB_PERM_DAEMON, "alice@example.net", "127.0.0.5"));
	CU_ASSERT(!ccb_sec_authorized(&cfg, CCB_PERM_DAEMON, "alice@example.net", "10.0.0.5"));
	CU_ASSERT(!ccb_sec_authorized(&cfg, CCB_PERM_DAEMON, CCB_UNAUTHENTICATED_USER, "127.0.0.1"));
	/* READ defaults to everyone, WRITE to nobody... */
	CU_ASSERT(ccb_sec_authorized(&cfg, CCB_PERM_READ, CCB_UNAUTHENTICATED_USER, "127.0.0.1"));
	CU_ASSERT(!ccb_sec_authorized(&cfg, CCB_PERM_WRITE, "bob@vm", "127.0.0.1"));
	/* ...except to whoever has a level implying it: DAEMON implies WRITE. */
	CU_ASSERT(ccb_sec_authorized(&cfg, CCB_PERM_WRITE, "condor@vm", "127.0.0.1"));
	CU_ASSERT(!ccb_sec_authorized(&cfg, CCB_PERM_WRITE, "condor@evil.org", "127.0.0.1"));
	cfg.allow[CCB_PERM_WRITE] = "127.0.0.1";
	CU_ASSERT(ccb_sec_authorized(&cfg, CCB_PERM_WRITE, "anyone@x", "127.0.0.1"));
	/* READ restricted: WRITE (and so DAEMON, ADMINISTRATOR) still imply it,
	 * but an explicit DENY_READ wins over the implication. */
	cfg.allow[CCB_PERM_READ] = "reader@vm";
	cfg.allow[CCB_PERM_WRITE] = NULL;
	cfg.allow[CCB_PERM_ADMINISTRATOR] = "admin@vm";
	CU_ASSERT(ccb_sec_authorized(&cfg, CCB_PERM_READ, "reader@vm", "10.1.1.1"));
	CU_ASSERT(ccb_sec_authorized(&cfg, CCB_PERM_READ, "condor@vm", "10.1.1.1"));
	CU_ASSERT(ccb_sec_authorized(&cfg, CCB_PERM_READ, "admin@vm", "10.1.1.1"));
	CU_ASSERT(!ccb_sec_authorized(&cfg, CCB_PERM_DAEMON, "admin@vm", "10.1.1.1"));
	CU_ASSERT(!ccb_sec_authorized(&cfg, CCB_PERM_READ, "other@vm", "10.1.1.1"));
	cfg.deny[CCB_PERM_READ] = "condor@vm";
	CU_ASSERT(!ccb_sec_authorized(&cfg, CCB_PERM_READ, "condor@vm", "10.1.1.1"));
	CU_ASSERT(ccb_sec_authorized(&cfg, CCB_PERM_DAEMON, "condor@vm", "10.1.1.1"));
}

#define S3 CCB_VECTORS_DIR "/S3-token-aes/config"

/* TOKEN through the whole handshake with the real S3 pool key and tokens
 * minted by condor_token_create. */
static void test_token(void)
{
	char dir[] = "/tmp/ccbt-hs-XXXXXX", path[300];
	size_t n;
	char *key = ccbt_read_file(S3 "/POOL.signing-key", &n);
	char *condor = ccbt_read_file(S3 "/token-condor.jwt", NULL);
	char *bob = ccbt_read_file(S3 "/token-bob-authz.jwt", NULL);
	struct server sv;
	ccb_sec_client_config cc = {.auth_methods = "IDTOKENS"};
	ccb_sec_info info;
	ccb_error err;
	FILE *f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(key);
	CU_ASSERT_PTR_NOT_NULL_FATAL(condor);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bob);
	condor[strcspn(condor, "\r\n")] = '\0';
	bob[strcspn(bob, "\r\n")] = '\0';
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/POOL", dir);
	f = fopen(path, "wb");
	fwrite(key, 1, n, f);
	fclose(f);
	chmod(path, 0600);

	server_defaults(&sv);
	sv.cfg.auth_methods[CCB_PERM_ALLOW] = "TOKEN";
	sv.cfg.password_directory = dir;
	sv.cfg.trust_domain = "ccbtest.local";
	sv.cfg.allow[CCB_PERM_DAEMON] = "condor@ccbtest.local, bob@ccbtest.local";
	cc.token = condor;
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REGISTER, 0, &info, &err), CCB_OK);
	CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	CU_ASSERT_STRING_EQUAL(sv.cmd.info.method, "TOKEN");
	CU_ASSERT_STRING_EQUAL(sv.cmd.info.user, "condor@ccbtest.local");
	CU_ASSERT_STRING_EQUAL(info.method, "TOKEN");
	CU_ASSERT_EQUAL(sv.payload, CCB_CMD_CCB_REGISTER);

	/* bob is in ALLOW_DAEMON, but his token is scoped to READ and WRITE. */
	server_defaults(&sv);
	sv.cfg.auth_methods[CCB_PERM_ALLOW] = "TOKEN";
	sv.cfg.password_directory = dir;
	sv.cfg.trust_domain = "ccbtest.local";
	sv.cfg.allow[CCB_PERM_DAEMON] = "condor@ccbtest.local, bob@ccbtest.local";
	cc.token = bob;
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REGISTER, 0, &info, &err), CCB_ERR_NOT_AUTHORIZED);

	/* A server with another trust domain does not accept the token. */
	server_defaults(&sv);
	sv.cfg.auth_methods[CCB_PERM_ALLOW] = "TOKEN";
	sv.cfg.password_directory = dir;
	sv.cfg.trust_domain = "other.domain";
	cc.token = condor;
	CU_ASSERT_NOT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REGISTER, 0, &info, &err), CCB_OK);

	unlink(path);
	rmdir(dir);
	free(key);
	free(condor);
	free(bob);
}

#define S4 CCB_VECTORS_DIR "/S4-ssl/config"

/* SSL through the whole handshake with the S4 host certificate (CN vm). */
static void test_ssl(void)
{
	struct server sv;
	ccb_sec_client_config cc = {.auth_methods = "SSL", .ssl_ca_file = S4 "/trust_domain_ca.pem",
				    .ssl_server_host = "vm"};
	ccb_sec_info info;
	ccb_error err;

	server_defaults(&sv);
	sv.cfg.auth_methods[CCB_PERM_ALLOW] = "SSL";
	sv.cfg.ssl_certfile = S4 "/hostcert.pem";
	sv.cfg.ssl_keyfile = S4 "/hostkey.pem";
	sv.cfg.allow[CCB_PERM_DAEMON] = "*";
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REGISTER, 0, &info, &err), CCB_OK);
	CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	CU_ASSERT_STRING_EQUAL(sv.cmd.info.method, "SSL");
	CU_ASSERT_STRING_EQUAL(sv.cmd.info.user, "unauthenticated@unmapped");
	CU_ASSERT_EQUAL(sv.payload, CCB_CMD_CCB_REGISTER);

	/* The certificate does not name the host we think we dialed. */
	server_defaults(&sv);
	sv.cfg.auth_methods[CCB_PERM_ALLOW] = "SSL";
	sv.cfg.ssl_certfile = S4 "/hostcert.pem";
	sv.cfg.ssl_keyfile = S4 "/hostkey.pem";
	cc.ssl_server_host = "impostor.example";
	CU_ASSERT_NOT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REGISTER, 0, &info, &err), CCB_OK);

	/* A server without a certificate does not offer SSL at all. */
	server_defaults(&sv);
	sv.cfg.auth_methods[CCB_PERM_ALLOW] = "SSL";
	cc.ssl_server_host = "vm";
	CU_ASSERT_NOT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REGISTER, 0, &info, &err), CCB_OK);
	CU_ASSERT_EQUAL(sv.rc, CCB_ERR_CONFIG); /* DAEMON needs a method; none is left */
}

/* FS through the whole handshake: the server checks a directory we made. */
static void test_fs(void)
{
	struct server sv;
	ccb_sec_client_config cc = {.auth_methods = "FS"};
	ccb_sec_info info;
	ccb_error err;

	server_defaults(&sv);
	sv.cfg.auth_methods[CCB_PERM_ALLOW] = "FS";
	sv.cfg.allow[CCB_PERM_DAEMON] = "*@vm";
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REGISTER, 0, &info, &err), CCB_OK);
	CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	CU_ASSERT_STRING_EQUAL(sv.cmd.info.method, "FS");
	CU_ASSERT_PTR_NOT_NULL(strstr(sv.cmd.info.user, "@vm"));
	CU_ASSERT_EQUAL(sv.payload, CCB_CMD_CCB_REGISTER);
}

/* Resuming a session the server keeps: seed one with a known key, resume
 * it as a C++ client does, and talk AES with that key. */
static void test_resume_known(void)
{
	struct server sv;
	pthread_t t;
	int raw;
	ccb_classad *ad, *reply = NULL, *payload;
	ccb_stream *c;
	const char *code = NULL, *nonce = NULL;
	uint8_t key[32];
	ccb_classad *pol = ccb__classad_new();
	ccb__sess_entry e = {.id = "vm:7:8:9", .key_len = 32, .crypto = 3};
	ccb_sec_info info;
	ccb_error err;

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(i * 3);
	server_defaults(&sv);
	ccb_sec_sessions_new(16, &sv.cfg.sessions, NULL);
	ccb_classad_set_string(pol, "User", "condor@vm");
	ccb_classad_set_bool(pol, "Authenticated", true);
	memcpy(e.key, key, 32);
	e.policy = pol;
	CU_ASSERT_FATAL(ccb__sess_add(ccb__sec_sessions_cache(sv.cfg.sessions), &e, ccb_wall_s(), NULL) == CCB_OK);

	raw_server(&sv, &raw, &t);
	ad = ccb__classad_new();
	ccb_classad_set_int(ad, "Command", CCB_CMD_CCB_REGISTER);
	ccb_classad_set_string(ad, "Sid", "vm:7:8:9");
	ccb_classad_set_string(ad, "UseSession", "YES");
	ccb_classad_set_bool(ad, "ResumeResponse", true);
	/* One client stream throughout: its digests must see the request. */
	ccb_stream_new(raw, &c, NULL);
	ccb_stream_put_int(c, 60010);
	ccb_classad_put(c, ad, NULL);
	ccb_stream_end_message(c);
	CU_ASSERT_FATAL(ccb_classad_get(c, &reply) == CCB_OK);
	ccb_stream_end_of_message(c);
	CU_ASSERT(ccb_classad_get_string(reply, "ReturnCode", &code) == CCB_OK && !strcmp(code, "AUTHORIZED"));
	CU_ASSERT(ccb_classad_get_string(reply, "Nonce", &nonce) == CCB_OK && strlen(nonce) == 44);
	/* The cached key is on: the payload goes under AES. */
	ccb_stream_set_aes_key(c, key);
	payload = ccb__classad_new();
	ccb_classad_set_int(payload, "Command", CCB_CMD_CCB_REGISTER);
	ccb_classad_put(c, payload, NULL);
	ccb_stream_end_message(c);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	CU_ASSERT(sv.cmd.resumed);
	CU_ASSERT_STRING_EQUAL(sv.cmd.info.user, "condor@vm");
	CU_ASSERT_EQUAL(sv.payload, CCB_CMD_CCB_REGISTER);
	ccb_classad_free(reply);
	ccb_classad_free(payload);
	ccb_stream_free(c);
	ccb_stream_free(sv.s);

	/* The same session may not run a command its user is not allowed. */
	sv.cfg.allow[CCB_PERM_DAEMON] = "someone@else";
	raw_server(&sv, &raw, &t);
	send_msg(raw, ad, 60010);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(sv.rc, CCB_ERR_NOT_AUTHORIZED);
	ccb_stream_free(sv.s);
	close(raw);

	/* A session negotiated the normal way is kept. */
	sv.cfg.allow[CCB_PERM_DAEMON] = "condor@*";
	CU_ASSERT_EQUAL(run(&sv, NULL, CCB_CMD_CCB_REQUEST, 0, &info, &err), CCB_OK);
	CU_ASSERT_EQUAL(ccb_sec_sessions_count(sv.cfg.sessions), 2);
	CU_ASSERT(ccb__sess_lookup(ccb__sec_sessions_cache(sv.cfg.sessions), info.session_id,
				   ccb_wall_s(), NULL) == CCB_OK);
	ccb_classad_free(ad);
	ccb_classad_free(pol);
	ccb_sec_sessions_free(sv.cfg.sessions);
}

/* A server that negotiates encryption and integrity off and sends no
 * ECDHPublicKey (golang-ccb's control channel): the session goes on in
 * plaintext, POST-AUTH and payload included. */
struct plain_server {
	int fd;
	int64_t cmd;
	char payload_name[64];
	bool ok;
};

static void *serve_plain(void *arg)
{
	struct plain_server *ps = arg;
	ccb_stream *s;
	ccb_classad *req = NULL, *resp = ccb__classad_new(), *post = ccb__classad_new(), *pl = NULL;
	int64_t first = 0;
	const char *name = NULL;

	ccb_stream_new(ps->fd, &s, NULL);
	ccb_stream_set_timeout(s, 5000);
	if (ccb_stream_get_int(s, &first) || first != 60010 || ccb_classad_get(s, &req) ||
	    ccb_stream_end_of_message(s))
		goto out;
	ccb_classad_get_int(req, "Command", &ps->cmd);
	ccb_classad_set_string(resp, "Authentication", "NO");
	ccb_classad_set_string(resp, "Encryption", "NO");
	ccb_classad_set_string(resp, "Integrity", "NO");
	ccb_classad_set_string(resp, "Enact", "YES");
	ccb_classad_set_string(resp, "RemoteVersion", "$CondorVersion: 25.12.0 2025-01-01 golang-ccb $");
	ccb_classad_set_string(resp, "SessionDuration", "60");
	if (ccb_classad_put(s, resp, NULL) || ccb_stream_end_message(s))
		goto out;
	ccb_classad_set_string(post, "Sid", "go:1:2");
	ccb_classad_set_string(post, "ReturnCode", "AUTHORIZED");
	ccb_classad_set_string(post, "ValidCommands", "67");
	ccb_classad_set_string(post, "User", CCB_UNAUTHENTICATED_USER);
	if (ccb_classad_put(s, post, NULL) || ccb_stream_end_message(s))
		goto out;
	if (ccb_classad_get(s, &pl) || ccb_stream_end_of_message(s))
		goto out;
	ccb_classad_get_string(pl, "Name", &name);
	snprintf(ps->payload_name, sizeof ps->payload_name, "%s", name ? name : "");
	ps->ok = !ccb_stream_crypto_on(s);
out:
	ccb_classad_free(req);
	ccb_classad_free(resp);
	ccb_classad_free(post);
	ccb_classad_free(pl);
	ccb_stream_free(s);
	return NULL;
}

static void test_plaintext_session(void)
{
	int fds[2];
	struct plain_server ps = {0};
	ccb_sec_client_config cc = {.encryption = CCB_SEC_LEVEL_OPTIONAL,
				    .integrity = CCB_SEC_LEVEL_OPTIONAL,
				    .authentication = CCB_SEC_LEVEL_OPTIONAL};
	ccb_sec_info info;
	ccb_error err = {0};
	ccb_stream *c;
	pthread_t t;
	ccb_classad *ad = ccb__classad_new();

	ccbt_tcp_pair(fds);
	ps.fd = fds[1];
	ccb_stream_new(fds[0], &c, NULL);
	ccb_stream_set_timeout(c, 5000);
	pthread_create(&t, NULL, serve_plain, &ps);
	CU_ASSERT_EQUAL(ccb_sec_client_start(c, &cc, CCB_CMD_CCB_REGISTER, 0, NULL, &info, &err), CCB_OK);
	CU_ASSERT(!info.encrypted && !info.integrity && !ccb_stream_crypto_on(c));
	CU_ASSERT_STRING_EQUAL(info.session_id, "go:1:2");
	ccb_classad_set_string(ad, "Name", "plain");
	CU_ASSERT(ccb_classad_put(c, ad, NULL) == CCB_OK && ccb_stream_end_message(c) == CCB_OK);
	pthread_join(t, NULL);
	CU_ASSERT(ps.ok);
	CU_ASSERT_EQUAL(ps.cmd, CCB_CMD_CCB_REGISTER);
	CU_ASSERT_STRING_EQUAL(ps.payload_name, "plain");
	ccb_stream_free(c);

	/* The same server against a client that requires encryption: refused
	 * before anything is sent in the clear. */
	memset(&ps, 0, sizeof ps);
	ccbt_tcp_pair(fds);
	ps.fd = fds[1];
	ccb_stream_new(fds[0], &c, NULL);
	ccb_stream_set_timeout(c, 5000);
	pthread_create(&t, NULL, serve_plain, &ps);
	cc.encryption = CCB_SEC_LEVEL_REQUIRED;
	CU_ASSERT_NOT_EQUAL(ccb_sec_client_start(c, &cc, CCB_CMD_CCB_REGISTER, 0, NULL, &info, &err), CCB_OK);
	ccb_stream_shutdown(c);
	pthread_join(t, NULL);
	CU_ASSERT(!ps.ok);
	ccb_stream_free(c);
	ccb_classad_free(ad);
}

/* Client-side resumption (security-handshake.md §9): the second command
 * to the same address resumes, a forgotten session is refused and the
 * next call negotiates anew; the RESUME ad is a projection write. */
static void test_client_resume(void)
{
	struct server sv;
	ccb_sec_client_config cc = {.auth_methods = "CLAIMTOBE", .claimtobe_user = "condor",
				    .uid_domain = "vm"};
	ccb_sec_info info;
	ccb_error err = {0};
	char first_sid[128];

	server_defaults(&sv);
	ccb_sec_sessions_new(16, &sv.cfg.sessions, NULL);
	ccb_sec_sessions_new(16, &cc.sessions, NULL);
	CU_ASSERT_EQUAL_FATAL(run(&sv, &cc, CCB_CMD_CCB_REGISTER, 0, &info, &err), CCB_OK);
	CU_ASSERT(!info.resumed);
	CU_ASSERT_STRING_EQUAL(info.method, "CLAIMTOBE");
	snprintf(first_sid, sizeof first_sid, "%s", info.session_id);
	CU_ASSERT_EQUAL(ccb_sec_sessions_count(cc.sessions), 1);

	/* Same address, same command: resumed, no authentication. */
	sv.payload = 0;
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REGISTER, 0, &info, &err), CCB_OK);
	CU_ASSERT(info.resumed && sv.cmd.resumed);
	CU_ASSERT_STRING_EQUAL(info.session_id, first_sid);
	CU_ASSERT_STRING_EQUAL(info.method, "CLAIMTOBE");
	CU_ASSERT_STRING_EQUAL(sv.cmd.info.user, "condor@vm");
	CU_ASSERT_EQUAL(sv.payload, CCB_CMD_CCB_REGISTER);

	/* Another command (not in ValidCommands): a new session. */
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REQUEST, 0, &info, &err), CCB_OK);
	CU_ASSERT(!info.resumed);
	CU_ASSERT_EQUAL(ccb_sec_sessions_count(cc.sessions), 2);

	/* The server forgot its sessions (restart): SID_NOT_FOUND, the client
	 * forgets too, and the retry negotiates. */
	ccb_sec_sessions_free(sv.cfg.sessions);
	ccb_sec_sessions_new(16, &sv.cfg.sessions, NULL);
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REGISTER, 0, &info, &err), CCB_ERR_SESSION_REFUSED);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "SID_NOT_FOUND"));
	CU_ASSERT_EQUAL(ccb_sec_sessions_count(cc.sessions), 1);
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REGISTER, 0, &info, &err), CCB_OK);
	CU_ASSERT(!info.resumed);
	CU_ASSERT_STRING_NOT_EQUAL(info.session_id, first_sid);

	/* The RESUME on the wire: int 60010 and the attributes in
	 * case-insensitive alphabetical order (§9.2, as the S1 capture). */
	{
		int fds[2];
		ccb_stream *c;
		uint8_t buf[2048];
		ssize_t n;
		static const char *const order[] = {"Command = 67", "ConnectSinful = ", "CryptoMethods = \"AES,BLOWFISH,3DES\"",
						    "Nonce = \"", "RemoteVersion = \"$CondorVersion: ",
						    "ResumeResponse = true", "Sid = \"", "UseSession = \"YES\""};
		const char *prev = NULL;

		ccbt_tcp_pair(fds);
		ccb_stream_new(fds[0], &c, NULL);
		ccb_stream_set_timeout(c, 2000);
		/* No server: the client sends RESUME, then times out or sees the close. */
		shutdown(fds[1], SHUT_WR);
		CU_ASSERT_EQUAL(ccb_sec_client_start(c, &cc, CCB_CMD_CCB_REGISTER, 0, "<127.0.0.1:9618>",
						     &info, &err), CCB_ERR_SESSION_REFUSED);
		n = recv(fds[1], buf, sizeof buf - 1, 0);
		CU_ASSERT_FATAL(n > 13);
		buf[n] = 0;
		for (ssize_t i = 0; i < n; i++)
			if (!buf[i])
				buf[i] = ' ';
		CU_ASSERT(buf[0] == 1 && buf[11] == 0xea && buf[12] == 0x6a); /* end flag, 60010 */
		for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
			const char *at = strstr((const char *)buf + 13, order[i]);
			CU_ASSERT_PTR_NOT_NULL(at);
			if (at && prev)
				CU_ASSERT(at > prev);
			prev = at ? at : prev;
		}
		ccb_stream_free(c);
		close(fds[1]);
	}
	ccb_sec_sessions_free(sv.cfg.sessions);
	ccb_sec_sessions_free(cc.sessions);
}

static const ccbt_test tests[] = {
	{"resume a kept session", test_resume_known},
	{"plaintext session without ECDH key", test_plaintext_session},
	{"client keeps and resumes sessions", test_client_resume},
	{"FS", test_fs},
	{"SSL with the S4 certificates", test_ssl},
	{"TOKEN with real HTCondor tokens, scopes", test_token},
	{"READ command, unauthenticated, AES", test_read_unauthenticated},
	{"DAEMON command with CLAIMTOBE and ALLOW_DAEMON", test_daemon_claimtobe},
	{"zero configs with CLAIMTOBE: HTCondor 25 defaults, honest refusals", test_defaults_claimtobe},
	{"DC_SEC_QUERY", test_sec_query},
	{"policy mismatch and unknown command", test_refusals},
	{"raw commands", test_raw_command},
	{"resume of an unknown session", test_resume_refused},
	{"captured BLOWFISH-only request refused", test_captured_blowfish_request},
	{"ALLOW/DENY lists", test_authorization_lists},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"handshake", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
