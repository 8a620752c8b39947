/*
 * The TOKEN method's messages (security-handshake.md §7.4): our client and
 * server against each other with the real S3 signing key and tokens, our
 * client's T1 against the captured one, our server against the captured T1
 * of a real HTCondor 25.14 client, refusals on both sides (the stream stays
 * in step), and the silent rejection of a bad T3.
 */
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ccb/classad.h"
#include "ccb/token.h"
#include "ccbt.h"
#include "security/auth.h"
#include "security/jwt.h"
#include "security/token_crypto.h"

#define S3 CCB_VECTORS_DIR "/S3-token-aes"
#define TD "ccbtest.local"

/* ---- helpers ----------------------------------------------------------- */

static void write_file(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, data, n) == (ssize_t)n);
	close(fd);
}

/* A password directory holding `key` (NULL: the real S3 pool key) as `name`. */
static char *key_dir(const char *name, const uint8_t *key, size_t n)
{
	char *d = strdup("/tmp/ccb-authtok-XXXXXX"), path[256];
	char *real = NULL;

	CU_ASSERT_FATAL(mkdtemp(d) != NULL);
	if (!key) {
		real = ccbt_read_file(S3 "/config/POOL.signing-key", &n);
		CU_ASSERT_FATAL(real && n == 64);
		key = (const uint8_t *)real;
	}
	snprintf(path, sizeof path, "%s/%s", d, name);
	write_file(path, key, n);
	free(real);
	return d;
}

static void rm_dir(char *d)
{
	char cmd[300];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
	CU_ASSERT(system(cmd) == 0);
	free(d);
}

static char *s3_token(const char *name)
{
	char path[512];
	size_t n;
	char *t;

	snprintf(path, sizeof path, S3 "/config/token-%s.jwt", name);
	t = ccbt_read_file(path, &n);
	CU_ASSERT_FATAL(t != NULL);
	while (n && (t[n - 1] == '\n' || t[n - 1] == '\r'))
		t[--n] = '\0';
	return t;
}

/* Mint a token with the key in `dir`. */
static char *mint(const char *dir, const char *kid, const char *iss, const char *sub, int64_t iat,
		  int64_t lifetime)
{
	ccb_token_config tp = {0};
	char *tok = NULL;
	ccb_error e;

	tp.keys.password_dir = dir;
	tp.kid = kid;
	tp.issuer = iss;
	tp.subject = sub;
	tp.iat = iat;
	tp.lifetime = lifetime;
	CU_ASSERT_FATAL(ccb_token_create(&tp, &tok, &e) == CCB_OK);
	return tok;
}

/* Captured S3 conn 1 segment i, whole packet (header included). */
static uint8_t *conn1_packet(int i, size_t *n)
{
	json_t *root = json_load_file(S3 "/streams.json", 0, NULL), *conns, *c = NULL;
	size_t idx;
	uint8_t *out;

	CU_ASSERT_FATAL(root != NULL);
	conns = json_object_get(root, "connections");
	json_array_foreach(conns, idx, c)
		if (json_integer_value(json_object_get(c, "id")) == 1)
			break;
	CU_ASSERT_FATAL(c != NULL);
	out = ccbt_unhex(json_string_value(json_object_get(
				 json_array_get(json_object_get(c, "segments"), (size_t)i), "hex")),
			 n);
	json_decref(root);
	return out;
}

static bool detail_has(const ccb_error *e, const char *s)
{
	bool ok = strstr(e->detail, s) != NULL;

	if (!ok)
		fprintf(stderr, "\n  detail \"%s\" lacks \"%s\"\n", e->detail, s);
	return ok;
}

struct side {
	ccb_stream *s;
	const ccb__auth_params *p;
	bool server;
	ccb__auth_result res;
	ccb_error err;
	ccb_err rc;
};

static void *run_side(void *arg)
{
	struct side *x = arg;

	x->rc = x->server ? ccb__auth_token_server(x->s, x->p, &x->res, &x->err)
			  : ccb__auth_token_client(x->s, x->p, &x->res, &x->err);
	return NULL;
}

/* Client and server over loopback; afterwards one more int goes from
 * client to server, proving the stream is still in step. */
static void run_pair(struct side *c, struct side *sv, bool check_sync)
{
	int fds[2];
	pthread_t t;
	int64_t v = 0;

	memset(&c->res, 0, sizeof c->res);
	memset(&sv->res, 0, sizeof sv->res);
	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &c->s, NULL);
	ccb_stream_new(fds[1], &sv->s, NULL);
	ccb_stream_set_timeout(c->s, 5000);
	ccb_stream_set_timeout(sv->s, 5000);
	sv->server = true;
	pthread_create(&t, NULL, run_side, sv);
	run_side(c);
	pthread_join(t, NULL);
	if (check_sync) {
		CU_ASSERT(ccb_stream_put_int(c->s, 4242) == CCB_OK &&
			  ccb_stream_end_message(c->s) == CCB_OK);
		CU_ASSERT(ccb_stream_get_int(sv->s, &v) == CCB_OK &&
			  ccb_stream_end_of_message(sv->s) == CCB_OK);
		CU_ASSERT_EQUAL(v, 4242);
	}
	ccb_stream_free(c->s);
	ccb_stream_free(sv->s);
}

static ccb__auth_params server_params(const char *dir)
{
	ccb__auth_params p = {0};

	p.password_directory = dir;
	p.trust_domain = TD;
	p.peer_version = CCB_VERSION_NUM(25, 14, 0);
	return p;
}

/* ---- loopback with the real key and tokens ---------------------------- */

static void check_real_token(const char *dir, const char *file, const char *name,
			     const char *jti, const char *scopes)
{
	char *tok = s3_token(file), user[64];
	ccb__auth_params cp = {.token = tok, .server_trust_domain = TD, .server_issuer_keys = "POOL"};
	ccb__auth_params sp = server_params(dir);
	struct side c = {.p = &cp}, sv = {.p = &sp};

	run_pair(&c, &sv, true);
	snprintf(user, sizeof user, "%s@" TD, name);
	CU_ASSERT_EQUAL(c.rc, CCB_OK);
	CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	CU_ASSERT_STRING_EQUAL(sv.res.peer_user, user);
	CU_ASSERT_STRING_EQUAL(sv.res.token_subject, user);
	CU_ASSERT_STRING_EQUAL(sv.res.token_issuer, TD);
	CU_ASSERT_STRING_EQUAL(sv.res.token_id, jti);
	CU_ASSERT_STRING_EQUAL(sv.res.token_scopes, scopes);
	ccb_free(tok);
}

static void test_loopback_real_tokens(void)
{
	char *dir = key_dir("POOL", NULL, 0);
	char *carol = s3_token("carol-lifetime");
	ccb__jwt j;

	check_real_token(dir, "condor", "condor", "0f5e784fc2f2349d590e96ba917bb876", "");
	check_real_token(dir, "alice", "alice", "ddaa45b91ee40a4c5c9141e29467fae7", "");
	check_real_token(dir, "bob-authz", "bob", "9d1c9e34d97e2e733f2f9a294c4dccd2",
			 "condor:/READ,condor:/WRITE");

	/* carol's token lives one hour (exp 1795533858): before that it must
	 * work, after it the server must refuse it as expired. */
	CU_ASSERT_FATAL(ccb__jwt_parse(carol, strlen(carol), 0, &j, NULL) == CCB_OK);
	if ((int64_t)time(NULL) + 5 < j.exp) {
		check_real_token(dir, "carol-lifetime", "carol", "4210e498532fc1a6ebad9bcfbe8bf6fe", "");
	} else {
		ccb__auth_params cp = {.token = carol}, sp = server_params(dir);
		struct side c = {.p = &cp}, sv = {.p = &sp};
		run_pair(&c, &sv, true);
		CU_ASSERT_EQUAL(c.rc, CCB_ERR_AUTH);
		CU_ASSERT_EQUAL(sv.rc, CCB_ERR_AUTH);
		CU_ASSERT(detail_has(&sv.err, "expired"));
	}
	ccb__jwt_clear(&j);
	free(carol);
	rm_dir(dir);
}

/* Token from a file and from a token directory; a mixed-case domain comes
 * out lower-cased, the user part as is, split at the last '@'. */
static void test_loopback_sources_and_identity(void)
{
	char *dir = key_dir("POOL", NULL, 0);
	char *tok = mint(dir, NULL, TD, "Dave@x@Example.NET", 0, 3600);
	char path[300];
	ccb__auth_params cp = {0}, sp = server_params(dir);
	struct side c = {.p = &cp}, sv = {.p = &sp};

	snprintf(path, sizeof path, "%s/tok", dir);
	write_file(path, tok, strlen(tok));
	cp.token_file = path;
	run_pair(&c, &sv, true);
	CU_ASSERT_EQUAL(c.rc, CCB_OK);
	CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	CU_ASSERT_STRING_EQUAL(sv.res.peer_user, "Dave@x@example.net");
	CU_ASSERT_STRING_EQUAL(sv.res.token_subject, "Dave@x@Example.NET");

	cp.token_file = NULL;
	cp.token_directory = dir; /* holds POOL (not a token) and tok */
	run_pair(&c, &sv, true);
	CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	CU_ASSERT_STRING_EQUAL(sv.res.peer_user, "Dave@x@example.net");
	ccb_free(tok);
	rm_dir(dir);
}

/* ---- T1 layout against the capture ------------------------------------ */

/* Our client's T1 with token-condor.jwt equals S3 conn 1 message 5 in every
 * byte but ra: same packet length, status 0, 20, a, token_hp, 256. */
static void test_client_t1_matches_capture(void)
{
	char *tok = s3_token("condor");
	ccb__auth_params cp = {.token = tok, .server_trust_domain = TD};
	struct side c = {.p = &cp};
	size_t n;
	uint8_t *want = conn1_packet(4, &n), *got = malloc(n + 1);
	int fds[2];
	pthread_t t;
	size_t have = 0;

	CU_ASSERT_FATAL(n == 493);
	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &c.s, NULL);
	ccb_stream_set_timeout(c.s, 5000);
	pthread_create(&t, NULL, run_side, &c);
	while (have < n) {
		ssize_t r = recv(fds[1], got + have, n - have, 0);
		CU_ASSERT_FATAL(r > 0);
		have += (size_t)r;
	}
	CU_ASSERT(memcmp(got, want, n - 256) == 0);         /* all but ra */
	CU_ASSERT(memcmp(got + n - 256, want + n - 256, 256) != 0); /* fresh ra */
	/* Nothing more until T2. */
	CU_ASSERT(recv(fds[1], got, 1, MSG_DONTWAIT) < 0);
	close(fds[1]);
	pthread_join(t, NULL);
	CU_ASSERT(c.rc != CCB_OK && c.rc != CCB_ERR_AUTH); /* broken, not a refusal */
	ccb_stream_free(c.s);
	free(want);
	free(got);
	ccb_free(tok);
}

/* ---- our server against the captured T1 of HTCondor 25.14 ------------- */

struct t2 {
	int64_t st, alen, blen, ralen, rblen, hlen;
	char *a, *b;
	uint8_t ra[256], rb[256], hkt[64];
};

static void read_t2(ccb_stream *s, struct t2 *m)
{
	memset(m, 0, sizeof *m);
	CU_ASSERT_FATAL(ccb_stream_get_int(s, &m->st) == CCB_OK);
	CU_ASSERT_FATAL(ccb_stream_get_int(s, &m->alen) == CCB_OK);
	CU_ASSERT_FATAL(ccb_stream_get_string(s, &m->a) == CCB_OK);
	CU_ASSERT_FATAL(ccb_stream_get_int(s, &m->blen) == CCB_OK);
	CU_ASSERT_FATAL(ccb_stream_get_string(s, &m->b) == CCB_OK);
	CU_ASSERT_FATAL(ccb_stream_get_int(s, &m->ralen) == CCB_OK);
	CU_ASSERT_FATAL(m->ralen == 0 || m->ralen == 256);
	CU_ASSERT_FATAL(ccb_stream_get_bytes(s, m->ra, (size_t)m->ralen) == CCB_OK);
	CU_ASSERT_FATAL(ccb_stream_get_int(s, &m->rblen) == CCB_OK);
	CU_ASSERT_FATAL(m->rblen == 0 || m->rblen == 256);
	CU_ASSERT_FATAL(ccb_stream_get_bytes(s, m->rb, (size_t)m->rblen) == CCB_OK);
	CU_ASSERT_FATAL(ccb_stream_get_int(s, &m->hlen) == CCB_OK);
	CU_ASSERT_FATAL(m->hlen == 0 || m->hlen == 20);
	CU_ASSERT_FATAL(ccb_stream_get_bytes(s, m->hkt, (size_t)m->hlen) == CCB_OK);
	CU_ASSERT_FATAL(ccb_stream_end_of_message(s) == CCB_OK);
}

static void send_t3(ccb_stream *s, int64_t st, const char *a, const uint8_t *rb,
		    const uint8_t *hk)
{
	CU_ASSERT(ccb_stream_put_int(s, st) == CCB_OK);
	CU_ASSERT(ccb_stream_put_int(s, (int64_t)strlen(a)) == CCB_OK);
	CU_ASSERT(ccb_stream_put_string(s, a) == CCB_OK);
	CU_ASSERT(ccb_stream_put_int(s, rb ? 256 : 0) == CCB_OK);
	if (rb)
		CU_ASSERT(ccb_stream_put_bytes(s, rb, 256) == CCB_OK);
	CU_ASSERT(ccb_stream_put_int(s, hk ? 20 : 0) == CCB_OK);
	if (hk)
		CU_ASSERT(ccb_stream_put_bytes(s, hk, 20) == CCB_OK);
	CU_ASSERT(ccb_stream_end_message(s) == CCB_OK);
}

/* A tester stream on one end, our server in a thread on the other. */
static void start_server(struct side *sv, ccb_stream **tester, pthread_t *t)
{
	int fds[2];

	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &sv->s, NULL);
	ccb_stream_new(fds[1], tester, NULL);
	ccb_stream_set_timeout(sv->s, 5000);
	ccb_stream_set_timeout(*tester, 5000);
	sv->server = true;
	pthread_create(t, NULL, run_side, sv);
}

static void send_raw(ccb_stream *s, const uint8_t *b, size_t n)
{
	CU_ASSERT_FATAL(send(ccb_stream_fd(s), b, n, MSG_NOSIGNAL) == (ssize_t)n);
}

/* K of the real condor token, as its holder computes it. */
static void condor_k(uint8_t k[32])
{
	char *tok = s3_token("condor");
	uint8_t kp[32];
	ccb__jwt j;

	CU_ASSERT_FATAL(ccb__jwt_parse(tok, strlen(tok), 0, &j, NULL) == CCB_OK);
	CU_ASSERT_FATAL(ccb__token_derive_keys(j.sig, j.sig_len, j.token_hp, j.hp_len, k, kp, NULL) ==
			CCB_OK);
	ccb__jwt_clear(&j);
	ccb_free(tok);
}

/* Feed the captured T1, check T2 (hkt under the real K for the captured ra),
 * answer with T3 whose hk is `good` or not. Returns the server's result. */
static void captured_t1_exchange(bool good_hk, const char *t3_a, struct side *sv)
{
	char *dir = key_dir("POOL", NULL, 0);
	ccb__auth_params sp = server_params(dir);
	ccb_stream *tester;
	pthread_t t;
	size_t n;
	uint8_t *m5 = conn1_packet(4, &n), k[32], mac[20];
	struct t2 m;

	sv->p = &sp;
	condor_k(k);
	start_server(sv, &tester, &t);
	send_raw(tester, m5, n);
	read_t2(tester, &m);
	CU_ASSERT_EQUAL(m.st, 0);
	CU_ASSERT_EQUAL(m.alen, 20);
	CU_ASSERT_STRING_EQUAL(m.a, "condor@ccbtest.local");
	CU_ASSERT_EQUAL(m.blen, 15);
	CU_ASSERT_STRING_EQUAL(m.b, "condor@password");
	CU_ASSERT(m.ralen == 256 && memcmp(m.ra, m5 + n - 256, 256) == 0);
	CU_ASSERT_EQUAL(m.rblen, 256);
	CU_ASSERT_EQUAL(m.hlen, 20);
	CU_ASSERT(ccb__token_hkt(k, m.a, m.b, m5 + n - 256, m.rb, mac, NULL) == CCB_OK);
	CU_ASSERT(memcmp(mac, m.hkt, 20) == 0);

	CU_ASSERT(ccb__token_hk(k, t3_a, m.rb, mac, NULL) == CCB_OK);
	if (!good_hk)
		mac[7] ^= 1;
	send_t3(tester, 0, t3_a, m.rb, mac);
	pthread_join(t, NULL);
	/* The method sends nothing after T2, accepted or not (§7.4 Trap). */
	CU_ASSERT_EQUAL(ccb_stream_wait_readable(tester, 200), CCB_ERR_TIMEOUT);
	free(m.a);
	free(m.b);
	free(m5);
	ccb_stream_free(tester);
	ccb_stream_free(sv->s);
	rm_dir(dir);
}

static void test_server_accepts_captured_t1(void)
{
	struct side sv = {0};

	captured_t1_exchange(true, "condor@ccbtest.local", &sv);
	CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	CU_ASSERT_STRING_EQUAL(sv.res.peer_user, "condor@ccbtest.local");
	CU_ASSERT_STRING_EQUAL(sv.res.token_id, "0f5e784fc2f2349d590e96ba917bb876");
}

/* A bad T3 gets silence: the server fails, the client is told nothing. */
static void test_server_silent_on_bad_t3(void)
{
	struct side sv = {0};

	captured_t1_exchange(false, "condor@ccbtest.local", &sv);
	CU_ASSERT_EQUAL(sv.rc, CCB_ERR_AUTH);
	CU_ASSERT(detail_has(&sv.err, "hk"));
	CU_ASSERT_STRING_EQUAL(sv.res.peer_user, "");

	/* T3 naming someone else than T1 did. */
	memset(&sv, 0, sizeof sv);
	captured_t1_exchange(true, "alice@ccbtest.local", &sv);
	CU_ASSERT_EQUAL(sv.rc, CCB_ERR_AUTH);
}

/* T1 whose `a` is not the token's sub: T2 and T3 fine, refused at the end. */
static void test_server_name_not_subject(void)
{
	char *dir = key_dir("POOL", NULL, 0), *tok = s3_token("condor");
	ccb__auth_params sp = server_params(dir);
	struct side sv = {.p = &sp};
	ccb_stream *tester;
	pthread_t t;
	uint8_t ra[256], k[32], mac[20];
	ccb__jwt j;
	struct t2 m;

	memset(ra, 7, sizeof ra);
	condor_k(k);
	CU_ASSERT_FATAL(ccb__jwt_parse(tok, strlen(tok), 0, &j, NULL) == CCB_OK);
	start_server(&sv, &tester, &t);
	ccb_stream_put_int(tester, 0);
	ccb_stream_put_int(tester, 5);
	ccb_stream_put_string(tester, "mallory@x");
	ccb_stream_put_string(tester, j.token_hp);
	ccb_stream_put_int(tester, 256);
	ccb_stream_put_bytes(tester, ra, 256);
	CU_ASSERT(ccb_stream_end_message(tester) == CCB_OK);
	read_t2(tester, &m);
	CU_ASSERT_EQUAL(m.st, 0);
	CU_ASSERT(ccb__token_hk(k, "mallory@x", m.rb, mac, NULL) == CCB_OK);
	send_t3(tester, 0, "mallory@x", m.rb, mac);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(sv.rc, CCB_ERR_AUTH);
	CU_ASSERT(detail_has(&sv.err, "subject"));
	CU_ASSERT_EQUAL(ccb_stream_wait_readable(tester, 200), CCB_ERR_TIMEOUT);
	free(m.a);
	free(m.b);
	ccb__jwt_clear(&j);
	ccb_stream_free(tester);
	ccb_stream_free(sv.s);
	ccb_free(tok);
	rm_dir(dir);
}

/* ---- refusals ---------------------------------------------------------- */

static void expect_refusal(const ccb__auth_params *cp, const ccb__auth_params *sp,
			   const char *client_says, const char *server_says)
{
	struct side c = {.p = cp}, sv = {.p = sp};

	run_pair(&c, &sv, true);
	CU_ASSERT_EQUAL(c.rc, CCB_ERR_AUTH);
	CU_ASSERT_EQUAL(sv.rc, CCB_ERR_AUTH);
	CU_ASSERT(detail_has(&c.err, client_says));
	CU_ASSERT(detail_has(&sv.err, server_says));
	CU_ASSERT_STRING_EQUAL(sv.res.peer_user, "");
}

/* The server holds another POOL key: only the client can tell (hkt). */
static void test_wrong_signing_key(void)
{
	uint8_t other[64];
	char *dir, *tok = s3_token("condor");
	ccb__auth_params cp = {.token = tok}, sp;

	memset(other, 0x5a, sizeof other);
	dir = key_dir("POOL", other, sizeof other);
	sp = server_params(dir);
	expect_refusal(&cp, &sp, "hkt", "rejected our reply");
	ccb_free(tok);
	rm_dir(dir);
}

static void test_server_refuses_token(void)
{
	char *dir = key_dir("POOL", NULL, 0), *odir = key_dir("OTHER", NULL, 0);
	int64_t now = (int64_t)time(NULL);
	char *expired = mint(dir, NULL, TD, "eve@" TD, now - 7200, 3600);
	char *unknown_kid = mint(odir, "OTHER", TD, "eve@" TD, 0, 0);
	char *foreign = mint(dir, NULL, "other.domain", "eve@other.domain", 0, 0);
	char *fresh = mint(dir, NULL, TD, "eve@" TD, now - 100, 0);
	ccb__auth_params cp = {0}, sp = server_params(dir);

	cp.token = expired;
	expect_refusal(&cp, &sp, "server refused", "expired");
	cp.token = unknown_kid;
	expect_refusal(&cp, &sp, "server refused", "OTHER");
	cp.token = foreign;
	expect_refusal(&cp, &sp, "server refused", "trust domain");
	/* SEC_TOKEN_MAX_AGE */
	cp.token = fresh;
	sp.token_max_age = 10;
	expect_refusal(&cp, &sp, "server refused", "");
	sp.token_max_age = 1000;
	{
		struct side c = {.p = &cp}, sv = {.p = &sp};
		run_pair(&c, &sv, true);
		CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	}
	free(expired);
	free(unknown_kid);
	free(foreign);
	free(fresh);
	rm_dir(dir);
	rm_dir(odir);
}

/* No token (none configured, or none matching the server's IssuerKeys /
 * TrustDomain): T1 status -1, both fail, the stream stays in step. */
static void test_client_without_token(void)
{
	char *dir = key_dir("POOL", NULL, 0), *tok = s3_token("condor");
	ccb__auth_params cp = {0}, sp = server_params(dir);

	expect_refusal(&cp, &sp, "no token", "no usable token");
	cp.token = tok;
	cp.server_issuer_keys = "OTHER, K2";
	expect_refusal(&cp, &sp, "no usable token", "no usable token");
	cp.server_issuer_keys = NULL;
	cp.server_trust_domain = "other.domain";
	expect_refusal(&cp, &sp, "no usable token", "no usable token");
	ccb_free(tok);
	rm_dir(dir);
}

/* The exact bytes of the error messages (§7.4: status -1, empty fields). */
static void test_error_message_layout(void)
{
	ccb__auth_params cp = {0};
	struct side c = {.p = &cp};
	int fds[2];
	pthread_t t;
	ccb_stream *tester;
	size_t n;
	uint8_t *want, got[64];
	ssize_t r;

	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &c.s, NULL);
	ccb_stream_set_timeout(c.s, 5000);
	pthread_create(&t, NULL, run_side, &c);
	/* T1: -1, 0, "", "", 0 */
	want = ccbt_unhex("01 0000001a ffffffffffffffff 0000000000000000 00 00 0000000000000000",
			  &n);
	for (size_t have = 0; have < n; have += (size_t)r)
		CU_ASSERT_FATAL((r = recv(fds[1], got + have, n - have, 0)) > 0);
	CU_ASSERT(memcmp(got, want, n) == 0);
	free(want);
	/* T2 from a refusing server: -1, 0, "", 0, "", 0, 0, 0 */
	want = ccbt_unhex("01 00000032 ffffffffffffffff 0000000000000000 00 0000000000000000 00"
			  " 0000000000000000 0000000000000000 0000000000000000",
			  &n);
	CU_ASSERT_FATAL(send(fds[1], want, n, MSG_NOSIGNAL) == (ssize_t)n);
	free(want);
	/* T3: -1, 0, "", 0, 0 */
	want = ccbt_unhex("01 00000021 ffffffffffffffff 0000000000000000 00"
			  " 0000000000000000 0000000000000000",
			  &n);
	for (size_t have = 0; have < n; have += (size_t)r)
		CU_ASSERT_FATAL((r = recv(fds[1], got + have, n - have, 0)) > 0);
	CU_ASSERT(memcmp(got, want, n) == 0);
	free(want);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(c.rc, CCB_ERR_AUTH);
	ccb_stream_free(c.s);

	/* Our server's T2 after a client error is that same T2. */
	{
		struct side sv = {.p = &cp};
		struct t2 m;

		start_server(&sv, &tester, &t);
		want = ccbt_unhex("01 0000001a ffffffffffffffff 0000000000000000 00 00 0000000000000000",
				  &n);
		send_raw(tester, want, n);
		free(want);
		read_t2(tester, &m);
		CU_ASSERT(m.st == -1 && m.alen == 0 && !strcmp(m.a, "") && m.blen == 0 &&
			  !strcmp(m.b, "") && m.ralen == 0 && m.rblen == 0 && m.hlen == 0);
		send_t3(tester, -1, "", NULL, NULL);
		pthread_join(t, NULL);
		CU_ASSERT_EQUAL(sv.rc, CCB_ERR_AUTH);
		free(m.a);
		free(m.b);
		ccb_stream_free(tester);
		ccb_stream_free(sv.s);
	}
}

/* Garbage in T1: a token that is no JWT is a refusal (T2 -1); a T1 that
 * cannot be decoded breaks the stream. */
static void test_garbage_t1(void)
{
	char *dir = key_dir("POOL", NULL, 0);
	ccb__auth_params sp = server_params(dir);
	struct side sv = {.p = &sp};
	ccb_stream *tester;
	pthread_t t;
	uint8_t ra[256] = {0};
	struct t2 m;

	start_server(&sv, &tester, &t);
	ccb_stream_put_int(tester, 0);
	ccb_stream_put_int(tester, 3);
	ccb_stream_put_string(tester, "x@y");
	ccb_stream_put_string(tester, "not-a.jwt!");
	ccb_stream_put_int(tester, 256);
	ccb_stream_put_bytes(tester, ra, 256);
	CU_ASSERT(ccb_stream_end_message(tester) == CCB_OK);
	read_t2(tester, &m);
	CU_ASSERT_EQUAL(m.st, -1);
	CU_ASSERT_EQUAL(m.hlen, 0);
	send_t3(tester, -1, "", NULL, NULL);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(sv.rc, CCB_ERR_AUTH);
	free(m.a);
	free(m.b);
	ccb_stream_free(tester);
	ccb_stream_free(sv.s);

	/* ra length 999: undecodable, the server stops (no T2). */
	memset(&sv, 0, sizeof sv);
	sv.p = &sp;
	start_server(&sv, &tester, &t);
	ccb_stream_put_int(tester, 0);
	ccb_stream_put_int(tester, 3);
	ccb_stream_put_string(tester, "x@y");
	ccb_stream_put_string(tester, "a.b");
	ccb_stream_put_int(tester, 999);
	CU_ASSERT(ccb_stream_end_message(tester) == CCB_OK);
	pthread_join(t, NULL);
	CU_ASSERT(sv.rc != CCB_OK && sv.rc != CCB_ERR_AUTH);
	CU_ASSERT_EQUAL(ccb_stream_wait_readable(tester, 200), CCB_ERR_TIMEOUT);
	ccb_stream_free(tester);
	ccb_stream_free(sv.s);
	rm_dir(dir);
}

/* A server whose T2 does not echo ra is refused by the client (T3 -1). */
static void test_client_refuses_bad_t2(void)
{
	char *tok = s3_token("condor");
	ccb__auth_params cp = {.token = tok};
	struct side c = {.p = &cp};
	int fds[2];
	pthread_t t;
	ccb_stream *tester;
	int64_t v;
	char *str;
	uint8_t ra[256], rb[256] = {0}, mac[20] = {0};

	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &c.s, NULL);
	ccb_stream_new(fds[1], &tester, NULL);
	ccb_stream_set_timeout(c.s, 5000);
	ccb_stream_set_timeout(tester, 5000);
	pthread_create(&t, NULL, run_side, &c);
	ccb_stream_get_int(tester, &v);
	ccb_stream_get_int(tester, &v);
	ccb_stream_get_string(tester, &str);
	ccb_free(str);
	ccb_stream_get_string(tester, &str);
	ccb_free(str);
	ccb_stream_get_int(tester, &v);
	CU_ASSERT_FATAL(v == 256);
	ccb_stream_get_bytes(tester, ra, 256);
	CU_ASSERT(ccb_stream_end_of_message(tester) == CCB_OK);
	ra[0] ^= 1;
	ccb_stream_put_int(tester, 0);
	ccb_stream_put_int(tester, 20);
	ccb_stream_put_string(tester, "condor@ccbtest.local");
	ccb_stream_put_int(tester, 15);
	ccb_stream_put_string(tester, "condor@password");
	ccb_stream_put_int(tester, 256);
	ccb_stream_put_bytes(tester, ra, 256);
	ccb_stream_put_int(tester, 256);
	ccb_stream_put_bytes(tester, rb, 256);
	ccb_stream_put_int(tester, 20);
	ccb_stream_put_bytes(tester, mac, 20);
	CU_ASSERT(ccb_stream_end_message(tester) == CCB_OK);
	CU_ASSERT(ccb_stream_get_int(tester, &v) == CCB_OK);
	CU_ASSERT_EQUAL(v, -1);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(c.rc, CCB_ERR_AUTH);
	CU_ASSERT(detail_has(&c.err, "echo"));
	ccb_stream_free(c.s);
	ccb_stream_free(tester);
	ccb_free(tok);
}

/* A pre-23.9 client gets b = condor_pool@<UID_DOMAIN> and still succeeds. */
static void test_old_peer_server_name(void)
{
	char *dir = key_dir("POOL", NULL, 0), *tok = s3_token("alice");
	ccb__auth_params cp = {.token = tok}, sp = server_params(dir);
	struct side c = {.p = &cp}, sv = {.p = &sp};

	sp.peer_version = CCB_VERSION_NUM(23, 8, 1);
	sp.uid_domain = "pool.example";
	run_pair(&c, &sv, true);
	CU_ASSERT_EQUAL(c.rc, CCB_OK);
	CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	sp.uid_domain = NULL; /* then b cannot be formed: refusal */
	expect_refusal(&cp, &sp, "server refused", "UID_DOMAIN");
	ccb_free(tok);
	rm_dir(dir);
}

static const ccbt_test tests[] = {
	{"loopback, the four real S3 tokens", test_loopback_real_tokens},
	{"loopback, token file/dir, identity split", test_loopback_sources_and_identity},
	{"client T1 matches captured T1", test_client_t1_matches_capture},
	{"server accepts captured HTCondor T1", test_server_accepts_captured_t1},
	{"server silent on bad T3", test_server_silent_on_bad_t3},
	{"server: client name is not the subject", test_server_name_not_subject},
	{"wrong signing key (client detects)", test_wrong_signing_key},
	{"server refuses expired/unknown kid/foreign iss/max age", test_server_refuses_token},
	{"client without a usable token", test_client_without_token},
	{"error message layout", test_error_message_layout},
	{"garbage T1", test_garbage_t1},
	{"client refuses T2 without echo", test_client_refuses_bad_t2},
	{"pre-23.9 peer server name", test_old_peer_server_name},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"auth TOKEN", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
