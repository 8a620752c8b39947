/*
 * IDTOKENS: the computed vector of security-handshake.md §7.4 byte for byte,
 * the real HTCondor-minted tokens and signing key of
 * testvectors/S3-token-aes/config (verify, re-mint identically), the captured
 * T2 hkt / T3 hk recomputed from streams.json, rejections with distinct
 * errors, token files and directories, IssuerKeys/TrustDomain selection.
 */
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "ccb/token.h"
#include "ccbt.h"
#include "security/jwt.h"
#include "security/signing_key.h"
#include "security/token_crypto.h"
#include "security/token_file.h"

#define S3 CCB_VECTORS_DIR "/S3-token-aes"
#define S3_NOW 1795530300 /* just after the tokens were minted */

/* ---- helpers ----------------------------------------------------------- */

static void expect_hex(const uint8_t *got, size_t n, const char *want)
{
	char *h = malloc(2 * n + 1);

	ccb_hex_encode(got, n, h);
	CU_ASSERT_STRING_EQUAL(h, want);
	if (strcmp(h, want))
		fprintf(stderr, "\n  want %s\n  got  %s\n", want, h);
	free(h);
}

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, data, n) == (ssize_t)n);
	close(fd);
	CU_ASSERT_FATAL(chmod(path, mode) == 0);
}

static char *tmpdir(void)
{
	char *d = strdup("/tmp/ccb-token-XXXXXX");

	CU_ASSERT_FATAL(mkdtemp(d) != NULL);
	return d;
}

static char *path_in(const char *dir, const char *name)
{
	char *p = malloc(strlen(dir) + strlen(name) + 2);

	sprintf(p, "%s/%s", dir, name);
	return p;
}

static void rm_rf(char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	CU_ASSERT(system(cmd) == 0);
	free(dir);
}

/* A password directory holding the real S3 pool key as POOL, mode 0600. */
static char *s3_password_dir(void)
{
	size_t n;
	char *key = ccbt_read_file(S3 "/config/POOL.signing-key", &n);
	char *dir = tmpdir(), *p = path_in(dir, "POOL");

	CU_ASSERT_FATAL(key && n == 64);
	write_file(p, key, n, 0600);
	free(key);
	free(p);
	return dir;
}

/* Read a real token file, trailing newline removed. */
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

static ccb_token_verify_config s3_verify_params(const char *dir)
{
	ccb_token_verify_config vp = {0};

	vp.keys.password_dir = dir;
	vp.now = S3_NOW;
	return vp;
}

static bool detail_has(const ccb_error *e, const char *s)
{
	bool ok = strstr(e->detail, s) != NULL;

	if (!ok)
		fprintf(stderr, "\n  detail \"%s\" lacks \"%s\"\n", e->detail, s);
	return ok;
}

/* ---- the seeds --------------------------------------------------------- */

static void test_seeds(void)
{
	uint8_t h[32];

	SHA256(ccb__token_seed_ka, CCB__TOKEN_SEED_LEN, h);
	expect_hex(h, 32, "54029671f8b74888ae45fa5f5aa73755986b977fd44645dfe54d8fb646f69633");
	SHA256(ccb__token_seed_kb, CCB__TOKEN_SEED_LEN, h);
	expect_hex(h, 32, "73797fd3830629b39ede92d99b85097ae74e8eef6fb344fcbe73dc7095b7bf15");
}

/* ---- the spec's computed vector ----------------------------------------- */

#define V_HP                                                                                   \
	"eyJhbGciOiJIUzI1NiIsImtpZCI6IlBPT0wifQ.eyJpYXQiOjE3MDAwMDAwMDAsImlzcyI6ImV4YW1wbGUubmV0" \
	"IiwianRpIjoiMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYiLCJzdWIiOiJhbGljZUBleGFtcGxlLm5l" \
	"dCJ9"

/* Password dir whose POOL file holds raw key 00..3f, scrambled. */
static char *vector_password_dir(void)
{
	uint8_t key[64];
	char *dir = tmpdir(), *p = path_in(dir, "POOL");

	for (int i = 0; i < 64; i++)
		key[i] = (uint8_t)i;
	ccb__signing_key_scramble(key, sizeof key);
	expect_hex(key, 8, "deacbcecdaa8b8e8");
	write_file(p, key, sizeof key, 0600);
	free(p);
	return dir;
}

static void test_spec_vector(void)
{
	char *dir = vector_password_dir();
	uint8_t jwt_key[32], k[32], kp[32], ra[256], rb[256], mac[20], w[32];
	ccb_token_config tp = {0};
	char *tok = NULL;
	ccb__jwt j;
	ccb_error e;

	CU_ASSERT_FATAL(ccb__signing_key_load(NULL, dir, NULL, CCB__SIGNING_KEY_CHECK_PERMS, jwt_key,
					      &e) == CCB_OK);
	expect_hex(jwt_key, 32, "103ee5562471b941454e2c67bd4f58870bc1acd1908fd846c2fc471711b4d39d");

	/* Minting the vector's claims gives its token_hp and signature. */
	tp.keys.password_dir = dir;
	tp.issuer = "example.net";
	tp.subject = "alice@example.net";
	tp.iat = 1700000000;
	tp.jti = "0123456789abcdef0123456789abcdef";
	CU_ASSERT_FATAL(ccb_token_create(&tp, &tok, &e) == CCB_OK);
	CU_ASSERT_FATAL(ccb__jwt_parse(tok, strlen(tok), 0, &j, &e) == CCB_OK);
	CU_ASSERT_STRING_EQUAL(j.token_hp, V_HP);
	CU_ASSERT_EQUAL(j.sig_len, 32);
	expect_hex(j.sig, 32, "722c445a6d40b257c1fc176e42345759b5626602a7dc7d88a5e3b40050ffcb35");
	CU_ASSERT(ccb__jwt_verify(&j, jwt_key, &e) == CCB_OK);

	CU_ASSERT_FATAL(ccb__token_derive_keys(j.sig, j.sig_len, j.token_hp, j.hp_len, k, kp, &e) ==
			CCB_OK);
	expect_hex(k, 32, "affddec4abc88e356f3cdb217e3f255b055625cab7a4ce72596af45f155016fb");
	expect_hex(kp, 32, "e98ff933a195daf10f4638e60084ac224e4289b56f59145166bf54dac2c90459");
	memset(ra, 0x01, sizeof ra);
	memset(rb, 0x02, sizeof rb);
	CU_ASSERT(ccb__token_hkt(k, "alice@example.net", "condor@password", ra, rb, mac, &e) ==
		  CCB_OK);
	expect_hex(mac, 20, "63f1f94faf274e1a052b515aa64942bc6a63fd14");
	CU_ASSERT(ccb__token_hk(k, "alice@example.net", rb, mac, &e) == CCB_OK);
	expect_hex(mac, 20, "56d137baf8b9e5ab69f7d79f9b416fd694bc010b");
	CU_ASSERT(ccb__token_session_key(rb, w, &e) == CCB_OK);
	expect_hex(w, 32, "ee8c9914fd513938b81cde7690587dd591ea8a72a5c18b37ee2c08fa233049fc");

	ccb__jwt_clear(&j);
	ccb_free(tok);
	rm_rf(dir);
}

/* Without the XOR or without the doubling the vector's jwt_key differs. */
static void test_unscramble_and_doubling_matter(void)
{
	uint8_t raw[128], jk[32];
	char hex[65];

	for (int i = 0; i < 64; i++)
		raw[i] = raw[64 + i] = (uint8_t)i;
	CU_ASSERT(ccb__signing_key_jwt_key(raw, 128, jk, NULL) == CCB_OK);
	ccb_hex_encode(jk, 32, hex);
	CU_ASSERT_STRING_EQUAL(hex, "103ee5562471b941454e2c67bd4f58870bc1acd1908fd846c2fc471711b4d39d");
	CU_ASSERT(ccb__signing_key_jwt_key(raw, 64, jk, NULL) == CCB_OK);
	ccb_hex_encode(jk, 32, hex);
	CU_ASSERT_STRING_NOT_EQUAL(hex, "103ee5562471b941454e2c67bd4f58870bc1acd1908fd846c2fc471711b4d39d");
}

/* ---- the real S3 key and tokens ---------------------------------------- */

static void test_s3_jwt_key(void)
{
	char *dir = s3_password_dir();
	uint8_t jk[32];
	ccb_error e;

	CU_ASSERT_FATAL(ccb__signing_key_load("POOL", dir, NULL, CCB__SIGNING_KEY_CHECK_PERMS, jk,
					      &e) == CCB_OK);
	expect_hex(jk, 32, "8c6b5b9235ddec5bb5e04260fc3a30199aed7a68f9a9f0ff9f0057a627976b35");
	/* A non-POOL name for the same bytes is not doubled: another key. */
	{
		char *p = path_in(dir, "POOL"), *q = path_in(dir, "OTHER");
		CU_ASSERT_FATAL(rename(p, q) == 0);
		CU_ASSERT(ccb__signing_key_load("OTHER", dir, NULL, CCB__SIGNING_KEY_CHECK_PERMS, jk,
						&e) == CCB_OK);
		char hex[65];
		ccb_hex_encode(jk, 32, hex);
		CU_ASSERT_STRING_NOT_EQUAL(hex,
					   "8c6b5b9235ddec5bb5e04260fc3a30199aed7a68f9a9f0ff9f0057a627976b35");
		free(p);
		free(q);
	}
	rm_rf(dir);
}

static const struct s3tok {
	const char *name, *sub, *jti, *scope, *sig;
	int64_t iat, exp;
} s3_tokens[] = {
	{"condor", "condor@ccbtest.local", "0f5e784fc2f2349d590e96ba917bb876", NULL,
	 "cbf88645ca340c319ef2a5209b51673bc82797605e3cc3747da9f8de63acadf9", 1795530197, 0},
	{"alice", "alice@ccbtest.local", "ddaa45b91ee40a4c5c9141e29467fae7", NULL,
	 "8cda051727ef6af5dfa2529b5694d1822010eb25a0e79ca8d5abfe235b9bfd6c", 1795530257, 0},
	{"bob-authz", "bob@ccbtest.local", "9d1c9e34d97e2e733f2f9a294c4dccd2",
	 "condor:/READ condor:/WRITE",
	 "9dfcf83d7123645b592f3e333ce494ff7dd0dcb8093c0a77945432d88bfff437", 1795530257, 0},
	{"carol-lifetime", "carol@ccbtest.local", "4210e498532fc1a6ebad9bcfbe8bf6fe", NULL,
	 "41c479756e9f6bee289a3b9e7ac94dc576e2b1940abfa15007768cf2e75dc2f9", 1795530258,
	 1795533858},
};
#define N_S3 (sizeof s3_tokens / sizeof s3_tokens[0])

static void test_s3_tokens_verify(void)
{
	char *dir = s3_password_dir();
	ccb_token_verify_config vp = s3_verify_params(dir);

	vp.trust_domain = "ccbtest.local";
	for (size_t i = 0; i < N_S3; i++) {
		const struct s3tok *t = &s3_tokens[i];
		char *tok = s3_token(t->name);
		ccb_token_info info;
		ccb_error e = {0};
		ccb__jwt j;

		CU_ASSERT_FATAL(ccb_token_verify(tok, &vp, &info, &e) == CCB_OK);
		CU_ASSERT_STRING_EQUAL(info.kid, "POOL");
		CU_ASSERT_STRING_EQUAL(info.issuer, "ccbtest.local");
		CU_ASSERT_STRING_EQUAL(info.subject, t->sub);
		CU_ASSERT_STRING_EQUAL(info.jti, t->jti);
		CU_ASSERT(info.has_iat && info.iat == t->iat);
		CU_ASSERT(info.has_exp == (t->exp != 0) && info.exp == t->exp);
		if (t->scope) {
			CU_ASSERT_STRING_EQUAL(info.scope, t->scope);
			CU_ASSERT_FATAL(info.n_scopes == 2);
			CU_ASSERT_STRING_EQUAL(info.scopes[0], "condor:/READ");
			CU_ASSERT_STRING_EQUAL(info.scopes[1], "condor:/WRITE");
		} else {
			CU_ASSERT(info.scope == NULL && info.n_scopes == 0);
		}
		ccb_token_info_clear(&info);
		CU_ASSERT(info.subject == NULL);

		CU_ASSERT_FATAL(ccb__jwt_parse(tok, strlen(tok), 0, &j, NULL) == CCB_OK);
		expect_hex(j.sig, j.sig_len, t->sig);
		ccb__jwt_clear(&j);
		ccb_free(tok);
	}
	rm_rf(dir);
}

/* condor_token_create with the same claims: the same bytes. */
static void test_s3_mint_identical(void)
{
	char *dir = s3_password_dir();
	static const char *const rw[] = {"READ", "WRITE", NULL};

	for (size_t i = 0; i < N_S3; i++) {
		const struct s3tok *t = &s3_tokens[i];
		char *want = s3_token(t->name), *got = NULL;
		ccb_token_config tp = {0};
		ccb_error e;

		tp.keys.password_dir = dir;
		tp.kid = "POOL";
		tp.issuer = "ccbtest.local";
		tp.subject = t->sub;
		tp.iat = t->iat;
		tp.jti = t->jti;
		tp.lifetime = t->exp ? t->exp - t->iat : 0;
		tp.authz = t->scope ? rw : NULL;
		CU_ASSERT_FATAL(ccb_token_create(&tp, &got, &e) == CCB_OK);
		CU_ASSERT_STRING_EQUAL(got, want);
		free(got);
		free(want);
	}
	rm_rf(dir);
}

/* A random jti is 32 hex digits, iat defaults to now, and it verifies. */
static void test_mint_defaults(void)
{
	char *dir = s3_password_dir(), *tok = NULL;
	ccb_token_config tp = {0};
	ccb_token_verify_config vp = {0};
	ccb_token_info info;
	int64_t now = ccb_wall_s();

	tp.keys.password_dir = dir;
	tp.issuer = "ccbtest.local";
	tp.subject = "dave@ccbtest.local";
	tp.lifetime = 60;
	CU_ASSERT_FATAL(ccb_token_create(&tp, &tok, NULL) == CCB_OK);
	vp.keys.password_dir = dir;
	CU_ASSERT_FATAL(ccb_token_verify(tok, &vp, &info, NULL) == CCB_OK);
	CU_ASSERT(strlen(info.jti) == 32 && strspn(info.jti, "0123456789abcdef") == 32);
	CU_ASSERT(info.iat >= now && info.iat <= now + 5);
	CU_ASSERT(info.exp == info.iat + 60);
	ccb_token_info_clear(&info);
	ccb_free(tok);
	rm_rf(dir);
}

/* JSON escaping like picojson: '/' as "\/", control bytes as \u00xx. */
static void test_mint_escaping(void)
{
	char *dir = s3_password_dir(), *tok = NULL;
	ccb_token_config tp = {0};
	ccb__jwt j;

	tp.keys.password_dir = dir;
	tp.issuer = "ccbtest.local";
	tp.subject = "a/b\"c\\d\x01\x7f\xc3\xa9";
	tp.iat = 1;
	tp.jti = "j";
	CU_ASSERT_FATAL(ccb_token_create(&tp, &tok, NULL) == CCB_OK);
	CU_ASSERT_FATAL(ccb__jwt_parse(tok, strlen(tok), 0, &j, NULL) == CCB_OK);
	CU_ASSERT_STRING_EQUAL(j.header_json, "{\"alg\":\"HS256\",\"kid\":\"POOL\"}");
	CU_ASSERT_STRING_EQUAL(j.payload_json,
			       "{\"iat\":1,\"iss\":\"ccbtest.local\",\"jti\":\"j\","
			       "\"sub\":\"a\\/b\\\"c\\\\d\\u0001\\u007f\xc3\xa9\"}");
	CU_ASSERT_STRING_EQUAL(j.sub, tp.subject);
	ccb__jwt_clear(&j);
	ccb_free(tok);
	rm_rf(dir);
}

static void test_mint_bad_params(void)
{
	char *dir = s3_password_dir(), *tok = (char *)"x";
	ccb_token_config tp = {0};
	ccb_error e;

	tp.keys.password_dir = dir;
	tp.subject = "a@b";
	CU_ASSERT(ccb_token_create(&tp, &tok, &e) == CCB_ERR_INVALID_ARG && tok == NULL);
	tp.issuer = "bad domain";
	CU_ASSERT(ccb_token_create(&tp, &tok, &e) == CCB_ERR_INVALID_ARG);
	tp.issuer = "ok";
	tp.kid = "MISSING";
	CU_ASSERT(ccb_token_create(&tp, &tok, &e) == CCB_ERR_NOT_FOUND);
	tp.kid = "../POOL";
	CU_ASSERT(ccb_token_create(&tp, &tok, &e) == CCB_ERR_INVALID_ARG);
	tp.kid = NULL;
	tp.keys.password_dir = NULL;
	CU_ASSERT(ccb_token_create(&tp, &tok, &e) == CCB_ERR_CONFIG);
	rm_rf(dir);
}

/* ---- rejections -------------------------------------------------------- */

static ccb_err verify_with(const char *tok, const ccb_token_verify_config *vp, ccb_error *e)
{
	ccb_token_info info;
	ccb_err rc = ccb_token_verify(tok, vp, &info, e);

	if (rc == CCB_OK)
		ccb_token_info_clear(&info);
	else
		CU_ASSERT(info.subject == NULL && info.jti == NULL);
	return rc;
}

static void test_reject_tampered(void)
{
	char *dir = s3_password_dir(), *tok = s3_token("alice");
	ccb_token_verify_config vp = s3_verify_params(dir);
	ccb_error e;

	/* One flipped signature character (the first: the last one also
	 * carries padding bits). */
	char *dot = strrchr(tok, '.');
	dot[1] = dot[1] == 'A' ? 'B' : 'A';
	CU_ASSERT(verify_with(tok, &vp, &e) == CCB_ERR_CRYPTO);
	CU_ASSERT(detail_has(&e, "signature does not match"));
	ccb_free(tok);

	/* One changed payload byte (jti ...e7 -> ...e8), valid JSON, old
	 * signature. */
	tok = s3_token("alice");
	{
		/* Rebuild the payload with one changed byte, keep the old signature. */
		const char *pay = "{\"iat\":1795530257,\"iss\":\"ccbtest.local\",\"jti\":"
				  "\"ddaa45b91ee40a4c5c9141e29467fae8\",\"sub\":\"alice@ccbtest.local\"}";
		ccb_buf b;
		char *p1 = strchr(tok, '.'), *p2 = strrchr(tok, '.');
		ccb_buf_init(&b);
		ccb_buf_append(&b, tok, (size_t)(p1 - tok) + 1);
		ccb__b64url_encode(pay, strlen(pay), &b);
		ccb_buf_append_str(&b, p2);
		ccb_buf_terminate(&b);
		CU_ASSERT(verify_with((char *)b.data, &vp, &e) == CCB_ERR_CRYPTO);
		ccb_buf_free(&b);
	}
	ccb_free(tok);
	rm_rf(dir);
}

static void test_reject_wrong_key(void)
{
	char *dir = vector_password_dir(), *tok = s3_token("condor");
	ccb_token_verify_config vp = s3_verify_params(dir);
	ccb_error e;

	CU_ASSERT(verify_with(tok, &vp, &e) == CCB_ERR_CRYPTO);
	CU_ASSERT(detail_has(&e, "signature does not match"));
	ccb_free(tok);
	rm_rf(dir);
}

static void test_reject_expired(void)
{
	char *dir = s3_password_dir(), *tok = s3_token("carol-lifetime");
	ccb_token_verify_config vp = s3_verify_params(dir);
	ccb_error e;

	vp.now = 1795533858; /* == exp: still valid (HTCondor: expired_for > 0) */
	CU_ASSERT(verify_with(tok, &vp, &e) == CCB_OK);
	vp.now = 1795533859;
	CU_ASSERT(verify_with(tok, &vp, &e) == CCB_ERR_AUTH);
	CU_ASSERT(detail_has(&e, "expired 1 s ago"));
	ccb_free(tok);
	rm_rf(dir);
}

static void test_reject_max_age(void)
{
	char *dir = s3_password_dir(), *tok = s3_token("alice");
	ccb_token_verify_config vp = s3_verify_params(dir);
	ccb_error e;

	vp.now = 1795530257 + 100;
	vp.max_age = 100;
	CU_ASSERT(verify_with(tok, &vp, &e) == CCB_OK);
	vp.max_age = 99;
	CU_ASSERT(verify_with(tok, &vp, &e) == CCB_ERR_AUTH);
	CU_ASSERT(detail_has(&e, "max age"));
	vp.max_age = 0; /* no limit */
	vp.now = 1795530257 + 100000000;
	CU_ASSERT(verify_with(tok, &vp, &e) == CCB_OK);
	ccb_free(tok);
	rm_rf(dir);
}

static void test_reject_trust_domain(void)
{
	char *dir = s3_password_dir(), *tok = s3_token("alice");
	ccb_token_verify_config vp = s3_verify_params(dir);
	ccb_error e;

	vp.trust_domain = "other.domain";
	CU_ASSERT(verify_with(tok, &vp, &e) == CCB_ERR_NOT_AUTHORIZED);
	CU_ASSERT(detail_has(&e, "trust domain"));
	ccb_free(tok);
	rm_rf(dir);
}

/* Sign arbitrary header/payload JSON with the S3 key. */
static char *sign_raw(const char *header, const char *payload, const char *dir)
{
	uint8_t jk[32], sig[32];
	ccb_buf b;

	CU_ASSERT_FATAL(ccb__signing_key_load("POOL", dir, NULL, 0, jk, NULL) == CCB_OK);
	ccb_buf_init(&b);
	ccb__b64url_encode(header, strlen(header), &b);
	ccb_buf_append(&b, ".", 1);
	ccb__b64url_encode(payload, strlen(payload), &b);
	CU_ASSERT_FATAL(ccb__jwt_sign(CCB__JWT_HS256, jk, 32, b.data, b.len, sig, NULL) == CCB_OK);
	ccb_buf_append(&b, ".", 1);
	ccb__b64url_encode(sig, 32, &b);
	ccb_buf_terminate(&b);
	return ccb_buf_steal_str(&b);
}

static void test_reject_malformed(void)
{
	char *dir = s3_password_dir(), *tok = s3_token("alice"), *t;
	ccb_token_verify_config vp = s3_verify_params(dir);
	ccb_error e;
	static const char pay[] = "{\"iat\":1795530257,\"iss\":\"ccbtest.local\",\"jti\":\"x\",\"sub\":\"a@b\"}";

	/* properly signed but without kid */
	t = sign_raw("{\"alg\":\"HS256\"}", pay, dir);
	CU_ASSERT(verify_with(t, &vp, &e) == CCB_ERR_PARSE);
	CU_ASSERT(detail_has(&e, "no \"kid\""));
	free(t);
	/* empty kid */
	t = sign_raw("{\"alg\":\"HS256\",\"kid\":\"\"}", pay, dir);
	CU_ASSERT(verify_with(t, &vp, &e) == CCB_ERR_PARSE);
	free(t);
	/* alg none */
	t = sign_raw("{\"alg\":\"none\",\"kid\":\"POOL\"}", pay, dir);
	CU_ASSERT(verify_with(t, &vp, &e) == CCB_ERR_UNSUPPORTED);
	free(t);
	/* no iss / no jti */
	t = sign_raw("{\"alg\":\"HS256\",\"kid\":\"POOL\"}", "{\"jti\":\"x\",\"sub\":\"a@b\"}", dir);
	CU_ASSERT(verify_with(t, &vp, &e) == CCB_ERR_AUTH);
	CU_ASSERT(detail_has(&e, "no issuer"));
	free(t);
	t = sign_raw("{\"alg\":\"HS256\",\"kid\":\"POOL\"}", "{\"iss\":\"i\",\"sub\":\"a@b\"}", dir);
	CU_ASSERT(verify_with(t, &vp, &e) == CCB_ERR_AUTH);
	CU_ASSERT(detail_has(&e, "no id (jti)"));
	free(t);
	/* iat as a string, duplicate keys, not an object */
	t = sign_raw("{\"alg\":\"HS256\",\"kid\":\"POOL\"}", "{\"iat\":\"1\",\"iss\":\"i\",\"jti\":\"j\"}", dir);
	CU_ASSERT(verify_with(t, &vp, &e) == CCB_ERR_PARSE);
	CU_ASSERT(detail_has(&e, "not an integer"));
	free(t);
	t = sign_raw("{\"alg\":\"HS256\",\"kid\":\"POOL\"}", "{\"iss\":\"i\",\"iss\":\"j\",\"jti\":\"j\"}", dir);
	CU_ASSERT(verify_with(t, &vp, &e) == CCB_ERR_PARSE);
	free(t);
	t = sign_raw("{\"alg\":\"HS256\",\"kid\":\"POOL\"}", "[1]", dir);
	CU_ASSERT(verify_with(t, &vp, &e) == CCB_ERR_PARSE);
	CU_ASSERT(detail_has(&e, "not a JSON object"));
	free(t);
	/* kid naming no file, and an unsafe kid */
	t = sign_raw("{\"alg\":\"HS256\",\"kid\":\"NOPE\"}", pay, dir);
	CU_ASSERT(verify_with(t, &vp, &e) == CCB_ERR_NOT_FOUND);
	free(t);
	t = sign_raw("{\"alg\":\"HS256\",\"kid\":\"../etc/passwd\"}", pay, dir);
	CU_ASSERT(verify_with(t, &vp, &e) == CCB_ERR_INVALID_ARG);
	free(t);

	/* bad base64: a character outside the alphabet, padding */
	t = strdup(tok);
	t[5] = '!';
	CU_ASSERT(verify_with(t, &vp, &e) == CCB_ERR_PARSE);
	CU_ASSERT(detail_has(&e, "not valid base64url"));
	free(t);
	t = malloc(strlen(tok) + 2);
	sprintf(t, "%s=", tok);
	CU_ASSERT(verify_with(t, &vp, &e) == CCB_ERR_PARSE);
	free(t);
	/* structure */
	CU_ASSERT(verify_with("", &vp, &e) == CCB_ERR_PARSE);
	CU_ASSERT(verify_with("abc", &vp, &e) == CCB_ERR_PARSE);
	CU_ASSERT(detail_has(&e, "header.payload.signature"));
	CU_ASSERT(verify_with("a.b.c.d", &vp, &e) == CCB_ERR_PARSE);
	t = strdup(tok);
	*(strrchr(t, '.') + 1) = '\0';
	CU_ASSERT(verify_with(t, &vp, &e) == CCB_ERR_PARSE);
	CU_ASSERT(detail_has(&e, "empty signature"));
	free(t);
	/* signature of the wrong length */
	t = malloc(strlen(tok) + 8);
	sprintf(t, "%sAAAA", tok);
	CU_ASSERT(verify_with(t, &vp, &e) == CCB_ERR_PARSE);
	CU_ASSERT(detail_has(&e, "bytes, 32 expected"));
	free(t);
	/* oversized */
	t = malloc(CCB__JWT_MAX_LEN + 2);
	memset(t, 'A', CCB__JWT_MAX_LEN + 1);
	t[CCB__JWT_MAX_LEN + 1] = '\0';
	CU_ASSERT(verify_with(t, &vp, &e) == CCB_ERR_TOO_LARGE);
	free(t);
	/* surrounding whitespace is fine */
	t = malloc(strlen(tok) + 4);
	sprintf(t, " %s\n", tok);
	CU_ASSERT(verify_with(t, &vp, &e) == CCB_OK);
	free(t);
	ccb_free(tok);
	rm_rf(dir);
}

/* HS384 / HS512 tokens verify (the server accepts them). */
static void test_hs384_hs512(void)
{
	char *dir = s3_password_dir();
	ccb_token_verify_config vp = s3_verify_params(dir);
	static const char *const algs[] = {"HS384", "HS512"};
	static const ccb__jwt_alg ids[] = {CCB__JWT_HS384, CCB__JWT_HS512};
	uint8_t jk[32], sig[64];

	CU_ASSERT_FATAL(ccb__signing_key_load("POOL", dir, NULL, 0, jk, NULL) == CCB_OK);
	for (int i = 0; i < 2; i++) {
		char hdr[64];
		const char *pay = "{\"iat\":1795530257,\"iss\":\"ccbtest.local\",\"jti\":\"x\",\"sub\":\"a@b\"}";
		ccb_buf b;
		ccb_error e;

		snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"kid\":\"POOL\"}", algs[i]);
		ccb_buf_init(&b);
		ccb__b64url_encode(hdr, strlen(hdr), &b);
		ccb_buf_append(&b, ".", 1);
		ccb__b64url_encode(pay, strlen(pay), &b);
		CU_ASSERT_FATAL(ccb__jwt_sign(ids[i], jk, 32, b.data, b.len, sig, NULL) == CCB_OK);
		ccb_buf_append(&b, ".", 1);
		ccb__b64url_encode(sig, ccb__jwt_sig_len(ids[i]), &b);
		ccb_buf_terminate(&b);
		CU_ASSERT(verify_with((char *)b.data, &vp, &e) == CCB_OK);
		ccb_buf_free(&b);
	}
	rm_rf(dir);
}

/* Key files: HTCondor's owner/mode rule, opt-out, missing file. */
static void test_key_file_checks(void)
{
	char *dir = s3_password_dir(), *p = path_in(dir, "POOL"), *tok = s3_token("alice");
	ccb_token_verify_config vp = s3_verify_params(dir);
	uint8_t jk[32];
	ccb_error e;

	CU_ASSERT_FATAL(chmod(p, 0640) == 0);
	CU_ASSERT(verify_with(tok, &vp, &e) == CCB_ERR_NOT_AUTHORIZED);
	CU_ASSERT(detail_has(&e, "must not be accessible by others"));
	vp.keys.insecure_key_file = true;
	CU_ASSERT(verify_with(tok, &vp, &e) == CCB_OK);
	/* The real file as shipped (read-only for all) only with the opt-out. */
	CU_ASSERT(ccb__signing_key_load("POOL", NULL, S3 "/config/POOL.signing-key",
					CCB__SIGNING_KEY_CHECK_PERMS, jk, &e) == CCB_ERR_NOT_AUTHORIZED);
	CU_ASSERT(ccb__signing_key_load("POOL", NULL, S3 "/config/POOL.signing-key", 0, jk, &e) ==
		  CCB_OK);
	expect_hex(jk, 32, "8c6b5b9235ddec5bb5e04260fc3a30199aed7a68f9a9f0ff9f0057a627976b35");
	/* pool_key_file takes precedence over <dir>/POOL */
	vp.keys.insecure_key_file = false;
	vp.keys.pool_key_file = "/nonexistent/pool-key";
	CU_ASSERT(verify_with(tok, &vp, &e) == CCB_ERR_NOT_FOUND);
	/* an empty key file */
	CU_ASSERT_FATAL(chmod(p, 0600) == 0);
	write_file(p, "", 0, 0600);
	CU_ASSERT(ccb__signing_key_load("POOL", dir, NULL, CCB__SIGNING_KEY_CHECK_PERMS, jk, &e) ==
		  CCB_ERR_CONFIG);
	free(p);
	ccb_free(tok);
	rm_rf(dir);
}

/* ---- the captured exchange (conn 1, messages 5-7) ----------------------- */

/* Payload bytes of segment i of conn 1 (one CEDAR packet: skip the 5-byte
 * header). */
static uint8_t *conn1_segment(json_t *root, size_t i, size_t *n)
{
	json_t *conns = json_object_get(root, "connections"), *c = NULL;
	const char *hex;
	size_t idx;
	uint8_t *raw, *out;

	json_array_foreach(conns, idx, c)
		if (json_integer_value(json_object_get(c, "id")) == 1)
			break;
	CU_ASSERT_FATAL(c != NULL);
	hex = json_string_value(json_object_get(json_array_get(json_object_get(c, "segments"), i), "hex"));
	CU_ASSERT_FATAL(hex != NULL);
	raw = ccbt_unhex(hex, n);
	CU_ASSERT_FATAL(*n > 5);
	*n -= 5;
	out = malloc(*n);
	memcpy(out, raw + 5, *n);
	free(raw);
	return out;
}

static void test_captured_hkt_hk(void)
{
	json_error_t je;
	json_t *root = json_load_file(S3 "/streams.json", 0, &je);
	char *tok = s3_token("condor");
	uint8_t *m5, *m6, *m7, k[32], kp[32], mac[20], h[32], w[32];
	size_t n5, n6, n7;
	ccb__jwt j;

	CU_ASSERT_FATAL(root != NULL);
	m5 = conn1_segment(root, 4, &n5);
	m6 = conn1_segment(root, 5, &n6);
	m7 = conn1_segment(root, 6, &n7);
	const uint8_t *ra = m5 + n5 - 256, *rb = m6 + n6 - 28 - 256;
	SHA256(ra, 256, h);
	expect_hex(h, 32, "a60c5c916763b4e4853519c3b93dc478618201e73c4ba81589a0aff54663314c");
	SHA256(rb, 256, h);
	expect_hex(h, 32, "dd2e31bb71359e03a098155109349efe06ba31858f29e3f217705ddbe8c3fab3");
	/* T1 carries token_hp exactly as in the token file. */
	CU_ASSERT_FATAL(ccb__jwt_parse(tok, strlen(tok), 0, &j, NULL) == CCB_OK);
	CU_ASSERT(memmem(m5, n5, j.token_hp, j.hp_len + 1) != NULL);

	CU_ASSERT_FATAL(ccb__token_derive_keys(j.sig, j.sig_len, j.token_hp, j.hp_len, k, kp, NULL) ==
			CCB_OK);
	expect_hex(k, 32, "81faca40d20a46c59d52eb53ccd76f8675b7b4d02a4ac47bf025b9367722465e");
	expect_hex(kp, 32, "6b3cef22cd7a5d5b29e9f5c4dc9fca56b3b4b5449879fe00fd9f134e964ae3e0");
	CU_ASSERT(ccb__token_hkt(k, "condor@ccbtest.local", "condor@password", ra, rb, mac, NULL) ==
		  CCB_OK);
	CU_ASSERT(memcmp(mac, m6 + n6 - 20, 20) == 0);
	expect_hex(mac, 20, "e2dbf047c77053901c3c5ad0478b4b3a7d3e6843");
	CU_ASSERT(ccb__token_hk(k, "condor@ccbtest.local", rb, mac, NULL) == CCB_OK);
	CU_ASSERT(memcmp(mac, m7 + n7 - 20, 20) == 0);
	expect_hex(mac, 20, "975e177fe842f8d1b6db209426515136e221c859");
	CU_ASSERT(ccb__token_session_key(rb, w, NULL) == CCB_OK);
	expect_hex(w, 32, "e526abda44dc021c2c9484ddbb2bcc0a2bf5a9f2d8b0cdf84fb09d0314199418");

	ccb__jwt_clear(&j);
	free(m5);
	free(m6);
	free(m7);
	ccb_free(tok);
	json_decref(root);
}

/* The server's view: only token_hp arrives; it re-signs with its key and
 * derives the same K as the client. */
static void test_server_side_hp_only(void)
{
	char *dir = s3_password_dir(), *tok = s3_token("condor");
	uint8_t jk[32], sig[32], k1[32], k2[32], kp[32];
	ccb__jwt cj, sj;
	ccb_error e;

	CU_ASSERT_FATAL(ccb__jwt_parse(tok, strlen(tok), 0, &cj, NULL) == CCB_OK);
	CU_ASSERT(ccb__jwt_parse(cj.token_hp, cj.hp_len, 0, &sj, &e) == CCB_ERR_PARSE);
	ccb__jwt_clear(&sj);
	CU_ASSERT_FATAL(ccb__jwt_parse(cj.token_hp, cj.hp_len, CCB__JWT_NO_SIGNATURE, &sj, &e) ==
			CCB_OK);
	CU_ASSERT(sj.sig_len == 0);
	CU_ASSERT_STRING_EQUAL(sj.kid, "POOL");
	CU_ASSERT(ccb__jwt_check_claims(&sj, S3_NOW, -1, &e) == CCB_OK);
	CU_ASSERT_FATAL(ccb__signing_key_load(sj.kid, dir, NULL, CCB__SIGNING_KEY_CHECK_PERMS, jk, NULL) ==
			CCB_OK);
	CU_ASSERT(ccb__jwt_sign(sj.alg, jk, 32, sj.token_hp, sj.hp_len, sig, NULL) == CCB_OK);
	CU_ASSERT(ccb__token_derive_keys(cj.sig, 32, cj.token_hp, cj.hp_len, k1, kp, NULL) == CCB_OK);
	CU_ASSERT(ccb__token_derive_keys(sig, 32, sj.token_hp, sj.hp_len, k2, kp, NULL) == CCB_OK);
	CU_ASSERT(memcmp(k1, k2, 32) == 0);
	ccb__jwt_clear(&cj);
	ccb__jwt_clear(&sj);
	ccb_free(tok);
	rm_rf(dir);
}

static void test_server_name(void)
{
	char b[128];

	CU_ASSERT(ccb__token_server_name("$CondorVersion: 25.14.0 2026-11-24 PRE-RELEASE-UWCS $",
					 "x.org", b, sizeof b, NULL) == CCB_OK);
	CU_ASSERT_STRING_EQUAL(b, "condor@password");
	CU_ASSERT(ccb__token_server_name("$CondorVersion: 23.9.0 2024-07-01 $", "x.org", b, sizeof b,
					 NULL) == CCB_OK);
	CU_ASSERT_STRING_EQUAL(b, "condor@password");
	CU_ASSERT(ccb__token_server_name("$CondorVersion: 23.8.9 2024-06-01 $", "x.org", b, sizeof b,
					 NULL) == CCB_OK);
	CU_ASSERT_STRING_EQUAL(b, "condor_pool@x.org");
	CU_ASSERT(ccb__token_server_name("10.0.0", "x.org", b, sizeof b, NULL) == CCB_OK);
	CU_ASSERT_STRING_EQUAL(b, "condor_pool@x.org");
	CU_ASSERT(ccb__token_server_name("9.12.3", NULL, b, sizeof b, NULL) == CCB_ERR_CONFIG);
	CU_ASSERT(ccb__token_server_name(NULL, NULL, b, sizeof b, NULL) == CCB_OK);
	CU_ASSERT_STRING_EQUAL(b, "condor@password");
	CU_ASSERT(ccb__token_version_at_least("24.0.0", 23, 9, 0));
	CU_ASSERT(!ccb__token_version_at_least("23.8.99", 23, 9, 0));
}

static void test_b64url(void)
{
	uint8_t out[16];
	size_t n;
	ccb_buf b;

	ccb_buf_init(&b);
	CU_ASSERT(ccb__b64url_encode("\xfb\xff", 2, &b) && ccb_buf_terminate(&b));
	CU_ASSERT_STRING_EQUAL((char *)b.data, "-_8");
	ccb_buf_free(&b);
	CU_ASSERT(ccb__b64url_decode("-_8", 3, out, &n) && n == 2 && out[0] == 0xfb && out[1] == 0xff);
	CU_ASSERT(!ccb__b64url_decode("-_9", 3, out, &n)); /* non-zero trailing bits */
	CU_ASSERT(!ccb__b64url_decode("QQ==", 4, out, &n)); /* padding */
	CU_ASSERT(!ccb__b64url_decode("QUJDR", 5, out, &n)); /* length % 4 == 1 */
	CU_ASSERT(!ccb__b64url_decode("+/8", 3, out, &n));   /* standard alphabet */
	CU_ASSERT(ccb__b64url_decode("", 0, out, &n) && n == 0);
}

/* ---- token files and directories --------------------------------------- */

static void test_token_text(void)
{
	char *alice = s3_token("alice"), *bob = s3_token("bob-authz");
	ccb_buf b;
	ccb__jwt j;
	ccb__token_filter f = {0};
	ccb_error e;

	ccb_buf_init(&b);
	ccb_buf_appendf(&b, "# a comment %s\n\n   \n  # indented comment\nnot-a-token\n%s\r\n%s\n",
			alice, bob, alice);
	CU_ASSERT_FATAL(ccb__token_pick_text((char *)b.data, b.len, &f, &j, &e) == CCB_OK);
	CU_ASSERT_STRING_EQUAL(j.sub, "bob@ccbtest.local");
	ccb__jwt_clear(&j);
	ccb_buf_reset(&b);
	ccb_buf_appendf(&b, "# only %s\n\n", alice);
	CU_ASSERT(ccb__token_pick_text((char *)b.data, b.len, &f, &j, &e) == CCB_ERR_NOT_FOUND);
	ccb__jwt_clear(&j);
	ccb_buf_free(&b);
	free(alice);
	free(bob);
}

static void test_token_filter(void)
{
	char *alice = s3_token("alice"), *dir = s3_password_dir(), *other = NULL;
	ccb_token_config tp = {0};
	ccb_buf b;
	ccb__jwt j;
	ccb_error e;
	char *kp = path_in(dir, "K2");
	size_t n;
	char *key = ccbt_read_file(S3 "/config/POOL.signing-key", &n);

	/* a token signed by key "K2" from issuer "other.domain" first */
	write_file(kp, key, n, 0600);
	free(key);
	tp.keys.password_dir = dir;
	tp.kid = "K2";
	tp.issuer = "other.domain";
	tp.subject = "zed@other.domain";
	CU_ASSERT_FATAL(ccb_token_create(&tp, &other, NULL) == CCB_OK);
	ccb_buf_init(&b);
	ccb_buf_appendf(&b, "%s\n%s\n", other, alice);

	const struct {
		const char *td, *keys, *want;
	} cases[] = {
		{NULL, NULL, "zed@other.domain"},
		{"ccbtest.local", NULL, "alice@ccbtest.local"},
		{NULL, "POOL", "alice@ccbtest.local"},
		{NULL, "A, K2", "zed@other.domain"},
		{NULL, "POOL,K2", "zed@other.domain"},
		{"ccbtest.local", "K2", NULL},
		{"nowhere", NULL, NULL},
		{NULL, "K", NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ccb__token_filter f = {cases[i].td, cases[i].keys};
		ccb_err rc = ccb__token_pick_text((char *)b.data, b.len, &f, &j, &e);
		if (cases[i].want) {
			CU_ASSERT(rc == CCB_OK);
			if (rc == CCB_OK)
				CU_ASSERT_STRING_EQUAL(j.sub, cases[i].want);
		} else {
			CU_ASSERT(rc == CCB_ERR_NOT_FOUND);
		}
		ccb__jwt_clear(&j);
	}
	ccb_buf_free(&b);
	free(other);
	free(alice);
	free(kp);
	rm_rf(dir);
}

static void put_token_file(const char *dir, const char *name, const char *content, mode_t mode)
{
	char *p = path_in(dir, name);

	write_file(p, content, strlen(content), mode);
	free(p);
}

static void test_token_dir(void)
{
	char *dir = tmpdir(), *from = NULL, *sub;
	char *alice = s3_token("alice"), *bob = s3_token("bob-authz"), *carol = s3_token("carol-lifetime");
	char line[1024];
	char **paths;
	size_t n;
	ccb__jwt j;
	ccb__token_filter f = {0};

	snprintf(line, sizeof line, "%s\n", alice);
	put_token_file(dir, "b_tokens", line, 0600);
	snprintf(line, sizeof line, "# bob\n%s\n", bob);
	put_token_file(dir, "a_tokens", line, 0600);
	snprintf(line, sizeof line, "%s\n", carol);
	put_token_file(dir, "MASTER_auto_generated_token", line, 0600);
	put_token_file(dir, ".hidden", line, 0600);
	put_token_file(dir, "backup~", line, 0600);
	put_token_file(dir, "#save", line, 0600);
	put_token_file(dir, "x.rpmnew", line, 0600);
	sub = path_in(dir, "subdir");
	CU_ASSERT_FATAL(mkdir(sub, 0700) == 0);

	CU_ASSERT_FATAL(ccb__token_dir_files(dir, "master", &paths, &n, NULL) == CCB_OK);
	CU_ASSERT_FATAL(n == 3);
	CU_ASSERT(strstr(paths[0], "/MASTER_auto_generated_token") != NULL);
	CU_ASSERT(strstr(paths[1], "/a_tokens") != NULL);
	CU_ASSERT(strstr(paths[2], "/b_tokens") != NULL);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	CU_ASSERT_FATAL(ccb__token_dir_files(dir, NULL, &paths, &n, NULL) == CCB_OK);
	CU_ASSERT_FATAL(n == 3);
	/* byte order: upper case before lower case */
	CU_ASSERT(strstr(paths[0], "/MASTER_auto_generated_token") != NULL);
	CU_ASSERT(strstr(paths[1], "/a_tokens") != NULL);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);

	/* The subsys file wins for MASTER; for another subsys, a_tokens. */
	CU_ASSERT_FATAL(ccb__token_pick_dir(dir, "MASTER", CCB__TOKEN_FILE_CHECK_PERMS, &f, &j, &from,
					    NULL) == CCB_OK);
	CU_ASSERT_STRING_EQUAL(j.sub, "carol@ccbtest.local");
	CU_ASSERT(strstr(from, "MASTER_auto_generated_token") != NULL);
	ccb__jwt_clear(&j);
	free(from);
	/* Renaming the subsys file out of the way: a_tokens (bob) comes first. */
	{
		char *o = path_in(dir, "MASTER_auto_generated_token"), *q = path_in(dir, "z_tokens");
		CU_ASSERT_FATAL(rename(o, q) == 0);
		CU_ASSERT_FATAL(ccb__token_pick_dir(dir, "SCHEDD", 0, &f, &j, NULL, NULL) == CCB_OK);
		CU_ASSERT_STRING_EQUAL(j.sub, "bob@ccbtest.local");
		ccb__jwt_clear(&j);
		/* With the permission check, a group-readable a_tokens is skipped. */
		char *a = path_in(dir, "a_tokens");
		CU_ASSERT_FATAL(chmod(a, 0640) == 0);
		CU_ASSERT_FATAL(ccb__token_pick_dir(dir, "SCHEDD", CCB__TOKEN_FILE_CHECK_PERMS, &f, &j,
						    NULL, NULL) == CCB_OK);
		CU_ASSERT_STRING_EQUAL(j.sub, "alice@ccbtest.local");
		ccb__jwt_clear(&j);
		free(a);
		free(o);
		free(q);
	}
	{
		ccb__token_filter none = {"nowhere", NULL};
		CU_ASSERT(ccb__token_pick_dir(dir, NULL, 0, &none, &j, NULL, NULL) == CCB_ERR_NOT_FOUND);
		ccb__jwt_clear(&j);
	}
	CU_ASSERT(ccb__token_pick_dir("/nonexistent/tokens.d", NULL, 0, &f, &j, NULL, NULL) ==
		  CCB_ERR_NOT_FOUND);
	free(sub);
	free(alice);
	free(bob);
	free(carol);
	rm_rf(dir);
}

/* The real token files parse as token files (one line, trailing newline). */
static void test_real_token_files(void)
{
	static const char *const names[] = {"alice", "bob-authz", "carol-lifetime", "condor"};

	for (size_t i = 0; i < 4; i++) {
		char path[512];
		ccb__jwt j;
		snprintf(path, sizeof path, S3 "/config/token-%s.jwt", names[i]);
		CU_ASSERT(ccb__token_pick_file(path, 0, NULL, &j, NULL) == CCB_OK);
		CU_ASSERT(j.iss && !strcmp(j.iss, "ccbtest.local"));
		ccb__jwt_clear(&j);
	}
}

static const ccbt_test tests[] = {
	{"seeds match the spec's SHA-256", test_seeds},
	{"spec vector: jwt_key, signature, K, K', hkt, hk, W", test_spec_vector},
	{"unscramble and POOL doubling are both needed", test_unscramble_and_doubling_matter},
	{"S3 signing key gives the recorded jwt_key", test_s3_jwt_key},
	{"S3 tokens verify with their claims", test_s3_tokens_verify},
	{"minting S3 claims reproduces the tokens", test_s3_mint_identical},
	{"minting defaults: random jti, iat now", test_mint_defaults},
	{"minting escapes JSON like picojson", test_mint_escaping},
	{"minting refuses bad params", test_mint_bad_params},
	{"rejects tampered tokens", test_reject_tampered},
	{"rejects a token under the wrong key", test_reject_wrong_key},
	{"rejects an expired token", test_reject_expired},
	{"enforces max age", test_reject_max_age},
	{"enforces the trust domain", test_reject_trust_domain},
	{"rejects malformed tokens distinctly", test_reject_malformed},
	{"accepts HS384 and HS512", test_hs384_hs512},
	{"key file owner/mode checks", test_key_file_checks},
	{"captured T2 hkt and T3 hk recomputed", test_captured_hkt_hk},
	{"server side from token_hp only", test_server_side_hp_only},
	{"server name b by peer version", test_server_name},
	{"base64url strictness", test_b64url},
	{"token text: comments, blanks, junk", test_token_text},
	{"IssuerKeys and TrustDomain selection", test_token_filter},
	{"token directory order and exclusions", test_token_dir},
	{"real token files parse", test_real_token_files},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {
	{"token", tests},
	{NULL, NULL},
};

int main(void)
{
	return ccbt_run(suites);
}
