/* The authentication loop and CLAIMTOBE, against the S1 capture and between
 * our own client and server over loopback. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ccbt.h"
#include "security/auth.h"
#include "security/policy.h"




static const ccb__auth_params S1_PARAMS = {.uid_domain = "vm", .claimtobe_user = "condor"};

struct run {
	ccb_stream *s;
	const char *methods;
	const ccb__auth_params *p;
	bool server;
	ccb__auth_result res;
	ccb_error err;
	ccb_err rc;
};

static void *run_side(void *arg)
{
	struct run *r = arg;
	r->rc = r->server ? ccb__auth_server(r->s, r->methods, r->p, &r->res, &r->err)
			  : ccb__auth_client(r->s, r->methods, r->p, &r->res, &r->err);
	return NULL;
}

/* Our client produces S1 conn 1 messages 3 and 5 and accepts 4, 6, 7. */
static void test_client_against_capture(void)
{
	int fds[2];
	struct run c = {.methods = "CLAIMTOBE", .p = &S1_PARAMS};
	pthread_t t;

	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &c.s, NULL);
	pthread_create(&t, NULL, run_side, &c);
	ccbt_expect_wire(fds[1], "01 00000008 0000000000000002");                 /* msg 3 */
	ccbt_send_hex(fds[1], "01 00000008 0000000000000002");                    /* msg 4 */
	ccbt_expect_wire(fds[1], "01 00000012 0000000000000001 636f6e646f7240766d00"); /* msg 5 */
	ccbt_send_hex(fds[1], "01 00000008 0000000000000001"                      /* msg 6 */
			 "01 00000008 0000000000000000");                    /* msg 7 */
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(c.rc, CCB_OK);
	CU_ASSERT_STRING_EQUAL(c.res.method_name, "CLAIMTOBE");
	ccb_stream_free(c.s);
	close(fds[1]);
}

/* Our server answers the captured client messages with the captured bytes. */
static void test_server_against_capture(void)
{
	int fds[2];
	struct run sv = {.methods = "CLAIMTOBE", .p = &S1_PARAMS, .server = true};
	pthread_t t;

	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &sv.s, NULL);
	pthread_create(&t, NULL, run_side, &sv);
	ccbt_send_hex(fds[1], "01 00000008 0000000000000002");
	ccbt_expect_wire(fds[1], "01 00000008 0000000000000002");
	ccbt_send_hex(fds[1], "01 00000012 0000000000000001 636f6e646f7240766d00");
	ccbt_expect_wire(fds[1], "01 00000008 0000000000000001 01 00000008 0000000000000000");
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	CU_ASSERT_STRING_EQUAL(sv.res.peer_user, "condor@vm");
	ccb_stream_free(sv.s);
	close(fds[1]);
}

static void run_pair(struct run *c, struct run *sv)
{
	int fds[2];
	pthread_t t;

	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &c->s, NULL);
	ccb_stream_new(fds[1], &sv->s, NULL);
	ccb_stream_set_timeout(c->s, 5000);
	ccb_stream_set_timeout(sv->s, 5000);
	sv->server = true;
	pthread_create(&t, NULL, run_side, sv);
	run_side(c);
	/* A client that gives up closes; that ends the server's wait. */
	if (c->rc)
		ccb_stream_shutdown(c->s);
	pthread_join(t, NULL);
	ccb_stream_free(c->s);
	ccb_stream_free(sv->s);
}

static void test_loopback(void)
{
	ccb__auth_params cp = {.uid_domain = "example.net", .claimtobe_user = "alice"};
	ccb__auth_params sp = {.uid_domain = "server.domain"};
	struct run c = {.methods = "TOKEN, CLAIMTOBE", .p = &cp};
	struct run sv = {.methods = "FS,CLAIMTOBE", .p = &sp};

	run_pair(&c, &sv);
	CU_ASSERT_EQUAL(c.rc, CCB_OK);
	CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	CU_ASSERT_EQUAL(sv.res.method, CCB_AUTH_CLAIMTOBE);
	CU_ASSERT_STRING_EQUAL(sv.res.peer_user, "alice@example.net");

	/* Without a domain in the claim the server adds its own. */
	cp.claimtobe_no_domain = true;
	memset(&c.res, 0, sizeof c.res);
	run_pair(&c, &sv);
	CU_ASSERT_STRING_EQUAL(sv.res.peer_user, "alice@server.domain");
}

static void test_no_common_method(void)
{
	struct run c = {.methods = "CLAIMTOBE", .p = &S1_PARAMS};
	struct run sv = {.methods = "FS", .p = &S1_PARAMS};

	run_pair(&c, &sv);
	CU_ASSERT_EQUAL(c.rc, CCB_ERR_AUTH);
	CU_ASSERT_EQUAL(sv.rc, CCB_ERR_AUTH);
	CU_ASSERT_PTR_NOT_NULL(strstr(c.err.detail, "none of the offered methods"));

	/* Nothing usable on the client side at all. */
	c.methods = "KERBEROS,GSI";
	run_pair(&c, &sv);
	CU_ASSERT_EQUAL(c.rc, CCB_ERR_AUTH);
}

/* A server that picks a method the client did not offer is a liar. */
static void test_server_picks_unoffered(void)
{
	int fds[2];
	struct run c = {.methods = "CLAIMTOBE", .p = &S1_PARAMS};
	pthread_t t;

	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &c.s, NULL);
	pthread_create(&t, NULL, run_side, &c);
	ccbt_expect_wire(fds[1], "01 00000008 0000000000000002");
	ccbt_send_hex(fds[1], "01 00000008 0000000000000800");
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(c.rc, CCB_ERR_PROTOCOL);
	ccb_stream_free(c.s);
	close(fds[1]);
}

/* An empty claim fails; the server then waits for another offer. */
static void test_bad_claim(void)
{
	int fds[2];
	struct run sv = {.methods = "CLAIMTOBE", .p = &S1_PARAMS, .server = true};
	pthread_t t;

	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &sv.s, NULL);
	ccb_stream_set_timeout(sv.s, 5000);
	pthread_create(&t, NULL, run_side, &sv);
	ccbt_send_hex(fds[1], "01 00000008 0000000000000002");
	ccbt_expect_wire(fds[1], "01 00000008 0000000000000002");
	ccbt_send_hex(fds[1], "01 00000008 0000000000000000"); /* int 0: no claim */
	ccbt_send_hex(fds[1], "01 00000008 0000000000000000"); /* then an empty mask */
	ccbt_expect_wire(fds[1], "01 00000008 0000000000000000");
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(sv.rc, CCB_ERR_AUTH);
	ccb_stream_free(sv.s);
	close(fds[1]);
}

static void test_names(void)
{
	CU_ASSERT_EQUAL(ccb__sec_method_bit("idtokens"), CCB_AUTH_TOKEN);
	CU_ASSERT_EQUAL(ccb__sec_method_bit("ClaimToBe"), CCB_AUTH_CLAIMTOBE);
	CU_ASSERT_EQUAL(ccb__sec_method_bit("SSL"), 256);
	CU_ASSERT_EQUAL(ccb__sec_method_bit("KERBEROS"), 64); /* known, not implemented */
	CU_ASSERT(!ccb__auth_method_supported(64, false));
	CU_ASSERT_EQUAL(ccb__sec_method_bit("BOGUS"), 0);
	CU_ASSERT_STRING_EQUAL(ccb__sec_method_name(2048), "TOKEN");
}

static const ccbt_test tests[] = {
	{"client against S1 capture", test_client_against_capture},
	{"server against S1 capture", test_server_against_capture},
	{"loopback, unsupported methods skipped", test_loopback},
	{"no common method", test_no_common_method},
	{"server picks unoffered method", test_server_picks_unoffered},
	{"bad claim", test_bad_claim},
	{"method names", test_names},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"auth loop", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
