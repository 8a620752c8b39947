/* Security policy negotiation (security-handshake.md §1, §2, §4): levels,
 * the reconcile table, local policy construction, method lists, and the
 * REQUEST / RESPONSE / POST-AUTH ads against the S1 and S3 captures byte
 * for byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ccbt.h"
#include "cedar/codec.h"
#include "classad/classad_internal.h"
#include "security/policy.h"
#include "util/util.h"

static const ccb__sec_level L[4] = {CCB_SEC_REQUIRED, CCB_SEC_PREFERRED, CCB_SEC_OPTIONAL,
				    CCB_SEC_NEVER};
/* security-handshake.md §2.1: rows client, columns server. */
static const ccb__sec_action TABLE[4][4] = {
	{CCB_SEC_ACT_YES, CCB_SEC_ACT_YES, CCB_SEC_ACT_YES, CCB_SEC_ACT_FAIL},
	{CCB_SEC_ACT_YES, CCB_SEC_ACT_YES, CCB_SEC_ACT_YES, CCB_SEC_ACT_NO},
	{CCB_SEC_ACT_YES, CCB_SEC_ACT_YES, CCB_SEC_ACT_NO, CCB_SEC_ACT_NO},
	{CCB_SEC_ACT_FAIL, CCB_SEC_ACT_NO, CCB_SEC_ACT_NO, CCB_SEC_ACT_NO},
};

static const char CAP_VERSION[] = "$CondorVersion: 25.14.0 2026-11-24 PRE-RELEASE-UWCS $";

/* ---- capture access --------------------------------------------------- */

/* All bytes of one direction of one connection, concatenated. */
static uint8_t *capture_dir(const char *scen, int conn, const char *dir, size_t *len)
{
	char path[512];
	json_t *root, *conns, *c, *seg;
	size_t i, j;
	ccb_buf out;

	snprintf(path, sizeof path, "%s/%s/streams.json", CCB_VECTORS_DIR, scen);
	root = json_load_file(path, 0, NULL);
	CU_ASSERT_FATAL(root != NULL);
	ccb_buf_init(&out);
	conns = json_object_get(root, "connections");
	json_array_foreach(conns, i, c) {
		if (json_integer_value(json_object_get(c, "id")) != conn)
			continue;
		json_array_foreach(json_object_get(c, "segments"), j, seg) {
			size_t n;
			uint8_t *b;
			if (strcmp(json_string_value(json_object_get(seg, "dir")), dir) != 0)
				continue;
			b = ccbt_unhex(json_string_value(json_object_get(seg, "hex")), &n);
			ccb_buf_append(&out, b, n);
			free(b);
		}
	}
	json_decref(root);
	CU_ASSERT_FATAL(out.len > 0);
	*len = out.len;
	return out.data;
}

/* One plaintext single-packet message: 5-byte header, then the body. */
static void frame(ccb_buf *msg, const ccb_buf *body)
{
	uint8_t hdr[5] = {1};

	ccb_be32_put(hdr + 1, (uint32_t)body->len);
	ccb_buf_append(msg, hdr, 5);
	ccb_buf_append(msg, body->data, body->len);
}

/* The message as it goes on the wire: [int cmd] + ad, framed. */
static void wire_message(ccb_buf *msg, int64_t cmd, const ccb_classad *ad)
{
	ccb_buf body;

	ccb_buf_init(&body);
	if (cmd)
		ccb_enc_int(&body, cmd);
	CU_ASSERT_FATAL(ccb__classad_encode(&body, false, ad, NULL));
	ccb_buf_init(msg);
	frame(msg, &body);
	ccb_buf_free(&body);
}

/* Our encoding of the ad must appear at `offset` (or anywhere if < 0). */
static void expect_in_capture(const char *scen, int conn, const char *dir, long offset,
			      int64_t cmd, const ccb_classad *ad)
{
	size_t n;
	uint8_t *cap = capture_dir(scen, conn, dir, &n);
	ccb_buf msg;

	wire_message(&msg, cmd, ad);
	if (offset >= 0) {
		CU_ASSERT_FATAL(n >= offset + msg.len);
		CU_ASSERT(memcmp(cap + offset, msg.data, msg.len) == 0);
		if (memcmp(cap + offset, msg.data, msg.len) != 0) {
			char *t = ccb__classad_to_text(ad);
			fprintf(stderr, "\nours (%zu bytes):\n%s", msg.len, t);
			free(t);
		}
	} else {
		CU_ASSERT_PTR_NOT_NULL(memmem(cap, n, msg.data, msg.len));
	}
	ccb_buf_free(&msg);
	free(cap);
}

/* Decode the ad of the first message of a direction ([int cmd] + ad). */
static ccb_classad *capture_ad(const char *scen, int conn, const char *dir, bool has_cmd)
{
	size_t n;
	uint8_t *cap = capture_dir(scen, conn, dir, &n);
	ccb_cursor c = {.data = cap + 5, .len = ccb_be32_get(cap + 1), .pos = 0};
	ccb_classad *ad = NULL;
	int64_t cmd;

	if (has_cmd) {
		CU_ASSERT_FATAL(ccb_dec_int(&c, &cmd, NULL) == CCB_OK);
		CU_ASSERT_EQUAL(cmd, CCB_DC_AUTHENTICATE);
	}
	CU_ASSERT_FATAL(ccb__classad_decode(&c, &ad, CCB_CLASSAD_DECODE_POD, NULL) == CCB_OK);
	free(cap);
	return ad;
}

static const char *str_of(const ccb_classad *ad, const char *name)
{
	const char *v = NULL;

	CU_ASSERT_EQUAL(ccb_classad_get_string(ad, name, &v), CCB_OK);
	return v ? v : "";
}

/* ---- levels ------------------------------------------------------------- */

static void test_level_parse(void)
{
	CU_ASSERT_EQUAL(ccb__sec_level_parse("REQUIRED"), CCB_SEC_REQUIRED);
	CU_ASSERT_EQUAL(ccb__sec_level_parse("yes"), CCB_SEC_REQUIRED);
	CU_ASSERT_EQUAL(ccb__sec_level_parse("True"), CCB_SEC_REQUIRED);
	CU_ASSERT_EQUAL(ccb__sec_level_parse("p"), CCB_SEC_PREFERRED);
	CU_ASSERT_EQUAL(ccb__sec_level_parse("Optional"), CCB_SEC_OPTIONAL);
	CU_ASSERT_EQUAL(ccb__sec_level_parse("false"), CCB_SEC_NEVER);
	CU_ASSERT_EQUAL(ccb__sec_level_parse("No"), CCB_SEC_NEVER);
	CU_ASSERT_EQUAL(ccb__sec_level_parse("x"), CCB_SEC_INVALID);
	CU_ASSERT_EQUAL(ccb__sec_level_parse(""), CCB_SEC_INVALID);
	CU_ASSERT_EQUAL(ccb__sec_level_parse(NULL), CCB_SEC_INVALID);
	CU_ASSERT_EQUAL(ccb__sec_action_parse("YES"), CCB_SEC_ACT_YES);
	CU_ASSERT_EQUAL(ccb__sec_action_parse("no"), CCB_SEC_ACT_NO);
	CU_ASSERT_EQUAL(ccb__sec_action_parse("Fail"), CCB_SEC_ACT_FAIL);
	CU_ASSERT_EQUAL(ccb__sec_action_parse("R"), CCB_SEC_ACT_INVALID);
	CU_ASSERT_EQUAL(ccb__sec_action_parse(""), CCB_SEC_ACT_INVALID);
	CU_ASSERT_STRING_EQUAL(ccb__sec_level_name(CCB_SEC_PREFERRED), "PREFERRED");
	CU_ASSERT_STRING_EQUAL(ccb__sec_action_name(CCB_SEC_ACT_NO), "NO");
}

/* A server policy set by hand (no raise rules), for table tests. */
static void plain_policy(ccb__sec_policy *p, ccb__sec_level auth, ccb__sec_level enc,
			 ccb__sec_level integ)
{
	memset(p, 0, sizeof *p);
	p->authentication = p->authentication_new = auth;
	p->encryption = enc;
	p->integrity = integ;
	p->negotiation = CCB_SEC_REQUIRED;
	p->session_duration = 86400;
	p->session_lease = 3600;
}

/* The whole table, directly and through the RESPONSE for each of the three
 * features (client ad attribute vs server policy). */
static void test_reconcile_table(void)
{
	for (int c = 0; c < 4; c++)
		for (int s = 0; s < 4; s++) {
			CU_ASSERT_EQUAL(ccb__sec_reconcile_levels(L[c], L[s]), TABLE[c][s]);
			for (int f = 0; f < 3; f++) {
				static const char *const attrs[] = {"AuthenticationNew", "Encryption",
								    "Integrity"};
				ccb__sec_policy pol;
				ccb__sec_server_params sp = {.policy = &pol};
				ccb_classad *req = ccb__classad_new(), *resp = NULL;
				ccb__sec_outcome o;
				ccb_err rc;
				const char *v;

				plain_policy(&pol, f == 0 ? L[s] : CCB_SEC_NEVER,
					     f == 1 ? L[s] : CCB_SEC_NEVER, f == 2 ? L[s] : CCB_SEC_NEVER);
				ccb_classad_set_string(req, attrs[f], ccb__sec_level_name(L[c]));
				rc = ccb__sec_reconcile(&sp, req, &resp, &o, NULL);
				if (TABLE[c][s] == CCB_SEC_ACT_FAIL) {
					CU_ASSERT_EQUAL(rc, CCB_ERR_UNSUPPORTED);
					CU_ASSERT_PTR_NULL(resp);
				} else {
					CU_ASSERT_EQUAL_FATAL(rc, CCB_OK);
					v = str_of(resp, f == 0 ? "Authentication" : attrs[f]);
					CU_ASSERT_STRING_EQUAL(v, ccb__sec_action_name(TABLE[c][s]));
				}
				ccb_classad_free(req);
				ccb_classad_free(resp);
			}
		}
	/* A missing attribute counts as NEVER. */
	CU_ASSERT_EQUAL(ccb__sec_reconcile_levels(CCB_SEC_INVALID, CCB_SEC_OPTIONAL),
			CCB_SEC_ACT_FAIL);
}

static ccb_err build(ccb__sec_config *c, ccb__sec_policy *p)
{
	return ccb__sec_policy_build(c, p, NULL);
}

static void test_local_policy(void)
{
	ccb__sec_config c;
	ccb__sec_policy p;
	ccb_error e;

	/* Compiled-in defaults. */
	ccb__sec_config_init(&c);
	c.auth_methods = "FS";
	CU_ASSERT_EQUAL_FATAL(build(&c, &p), CCB_OK);
	CU_ASSERT_EQUAL(p.authentication, CCB_SEC_OPTIONAL);
	CU_ASSERT_EQUAL(p.authentication_new, CCB_SEC_OPTIONAL);
	CU_ASSERT_EQUAL(p.encryption, CCB_SEC_OPTIONAL);
	CU_ASSERT_EQUAL(p.integrity, CCB_SEC_OPTIONAL);
	CU_ASSERT_EQUAL(p.negotiation, CCB_SEC_PREFERRED);
	CU_ASSERT_STRING_EQUAL(p.crypto_methods, "AES,BLOWFISH,3DES");
	CU_ASSERT_EQUAL(p.session_duration, 60);
	CU_ASSERT_EQUAL(p.session_lease, 3600);
	ccb__sec_policy_clear(&p);

	/* Capture S1: authentication REQUIRED, negotiation unset -> REQUIRED. */
	c.authentication = CCB_SEC_REQUIRED;
	c.encryption = c.integrity = CCB_SEC_NEVER;
	CU_ASSERT_EQUAL_FATAL(build(&c, &p), CCB_OK);
	CU_ASSERT_EQUAL(p.negotiation, CCB_SEC_REQUIRED);
	CU_ASSERT_EQUAL(p.authentication, CCB_SEC_REQUIRED);
	CU_ASSERT_EQUAL(p.encryption, CCB_SEC_NEVER);
	ccb__sec_policy_clear(&p);

	/* security:recommended client: auth OPTIONAL, encryption REQUIRED:
	 * old-style Authentication raised, AuthenticationNew as configured. */
	ccb__sec_config_init(&c);
	c.auth_methods = "FS";
	c.authentication = CCB_SEC_OPTIONAL;
	c.encryption = c.integrity = CCB_SEC_REQUIRED;
	CU_ASSERT_EQUAL_FATAL(build(&c, &p), CCB_OK);
	CU_ASSERT_EQUAL(p.authentication, CCB_SEC_REQUIRED);
	CU_ASSERT_EQUAL(p.authentication_new, CCB_SEC_OPTIONAL);
	CU_ASSERT_EQUAL(p.negotiation, CCB_SEC_REQUIRED);
	ccb__sec_policy_clear(&p);

	/* Encryption PREFERRED raises negotiation OPTIONAL to PREFERRED only. */
	c.negotiation = CCB_SEC_OPTIONAL;
	c.encryption = CCB_SEC_PREFERRED;
	c.integrity = CCB_SEC_OPTIONAL;
	CU_ASSERT_EQUAL_FATAL(build(&c, &p), CCB_OK);
	CU_ASSERT_EQUAL(p.negotiation, CCB_SEC_PREFERRED);
	CU_ASSERT_EQUAL(p.authentication, CCB_SEC_PREFERRED);
	ccb__sec_policy_clear(&p);

	/* Authentication NEVER forces PREFERRED encryption down to NEVER... */
	ccb__sec_config_init(&c);
	c.auth_methods = "FS";
	c.authentication = CCB_SEC_NEVER;
	c.encryption = CCB_SEC_PREFERRED;
	CU_ASSERT_EQUAL_FATAL(build(&c, &p), CCB_OK);
	CU_ASSERT_EQUAL(p.encryption, CCB_SEC_NEVER);
	CU_ASSERT_EQUAL(p.integrity, CCB_SEC_NEVER);
	CU_ASSERT_EQUAL(p.authentication, CCB_SEC_NEVER);
	CU_ASSERT_EQUAL(p.negotiation, CCB_SEC_PREFERRED);
	ccb__sec_policy_clear(&p);
	/* ...and conflicts with REQUIRED encryption. */
	c.encryption = CCB_SEC_REQUIRED;
	CU_ASSERT_EQUAL(ccb__sec_policy_build(&c, &p, &e), CCB_ERR_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.detail, "NEVER"));
	/* Negotiation NEVER with anything REQUIRED is invalid too. */
	ccb__sec_config_init(&c);
	c.auth_methods = "FS";
	c.negotiation = CCB_SEC_NEVER;
	c.authentication = CCB_SEC_REQUIRED;
	CU_ASSERT_EQUAL(build(&c, &p), CCB_ERR_CONFIG);
	/* Negotiation NEVER with optional features forces them NEVER. */
	c.authentication = CCB_SEC_OPTIONAL;
	CU_ASSERT_EQUAL_FATAL(build(&c, &p), CCB_OK);
	CU_ASSERT_EQUAL(p.authentication, CCB_SEC_NEVER);
	CU_ASSERT_EQUAL(p.encryption, CCB_SEC_NEVER);
	ccb__sec_policy_clear(&p);
	/* An invalid configured level is an error. */
	c.negotiation = CCB_SEC_INVALID;
	CU_ASSERT_EQUAL(build(&c, &p), CCB_ERR_CONFIG);

	/* force_authentication raises; ALLOW keeps AuthenticationNew OPTIONAL. */
	ccb__sec_config_init(&c);
	c.auth_methods = "FS";
	c.allow_perm = true;
	c.authentication = CCB_SEC_REQUIRED;
	CU_ASSERT_EQUAL_FATAL(build(&c, &p), CCB_OK);
	CU_ASSERT_EQUAL(p.authentication, CCB_SEC_REQUIRED);
	CU_ASSERT_EQUAL(p.authentication_new, CCB_SEC_OPTIONAL);
	ccb__sec_policy_clear(&p);
	c.authentication = CCB_SEC_OPTIONAL;
	c.request_authentication = CCB_SEC_REQUIRED;
	CU_ASSERT_EQUAL_FATAL(build(&c, &p), CCB_OK);
	CU_ASSERT_EQUAL(p.authentication, CCB_SEC_REQUIRED);
	CU_ASSERT_EQUAL(p.authentication_new, CCB_SEC_REQUIRED);
	ccb__sec_policy_clear(&p);

	/* No usable auth method: NEVER, or an error when REQUIRED. */
	ccb__sec_config_init(&c);
	c.auth_methods = "GSI, bogus";
	CU_ASSERT_EQUAL_FATAL(build(&c, &p), CCB_OK);
	CU_ASSERT_PTR_NULL(p.auth_methods);
	CU_ASSERT_EQUAL(p.authentication_new, CCB_SEC_NEVER);
	CU_ASSERT_EQUAL(p.authentication, CCB_SEC_OPTIONAL);
	ccb__sec_policy_clear(&p);
	c.authentication = CCB_SEC_REQUIRED;
	CU_ASSERT_EQUAL(ccb__sec_policy_build(&c, &p, &e), CCB_ERR_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.detail, "authentication method"));
	/* No usable crypto method ("aes" is not "AES"). */
	ccb__sec_config_init(&c);
	c.auth_methods = "FS";
	c.crypto_methods = "aes";
	CU_ASSERT_EQUAL_FATAL(build(&c, &p), CCB_OK);
	CU_ASSERT_PTR_NULL(p.crypto_methods);
	CU_ASSERT_EQUAL(p.encryption, CCB_SEC_NEVER);
	CU_ASSERT_EQUAL(p.integrity, CCB_SEC_NEVER);
	ccb__sec_policy_clear(&p);
	c.integrity = CCB_SEC_REQUIRED;
	CU_ASSERT_EQUAL(build(&c, &p), CCB_ERR_CONFIG);

	/* Durations: daemon 86400, temporary session 60, configured value. */
	ccb__sec_config_init(&c);
	c.daemon = true;
	CU_ASSERT_EQUAL_FATAL(build(&c, &p), CCB_OK);
	CU_ASSERT_EQUAL(p.session_duration, 86400);
	ccb__sec_policy_clear(&p);
	c.tmp_session = true;
	CU_ASSERT_EQUAL_FATAL(build(&c, &p), CCB_OK);
	CU_ASSERT_EQUAL(p.session_duration, 60);
	ccb__sec_policy_clear(&p);
	c.tmp_session = false;
	c.session_duration = 300;
	c.session_lease = 0;
	CU_ASSERT_EQUAL_FATAL(build(&c, &p), CCB_OK);
	CU_ASSERT_EQUAL(p.session_duration, 300);
	CU_ASSERT_EQUAL(p.session_lease, 0);
	ccb__sec_policy_clear(&p);
}

/* ---- method lists ------------------------------------------------------ */

static void expect_list(char *got, const char *want)
{
	CU_ASSERT_PTR_NOT_NULL_FATAL(got);
	CU_ASSERT_STRING_EQUAL(got, want);
	free(got);
}

static void test_method_names(void)
{
	static const struct {
		const char *name;
		int bit;
	} names[] = {{"CLAIMTOBE", 2}, {"fs", 4},          {"FS_REMOTE", 8}, {"NTSSPI", 16},
		     {"KERBEROS", 64}, {"anonymous", 128}, {"SSL", 256},     {"PASSWORD", 512},
		     {"MUNGE", 1024},  {"TOKEN", 2048},    {"tokens", 2048}, {"IDTOKEN", 2048},
		     {"IdTokens", 2048}, {"SCITOKENS", 4096}, {"scitoken", 4096}, {"nope", 0}};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		CU_ASSERT_EQUAL(ccb__sec_method_bit(names[i].name), names[i].bit);
	CU_ASSERT_STRING_EQUAL(ccb__sec_method_name(2048), "TOKEN");
	CU_ASSERT_STRING_EQUAL(ccb__sec_method_name(4096), "SCITOKENS");
	CU_ASSERT_STRING_EQUAL(ccb__sec_method_name(4), "FS");
	CU_ASSERT_PTR_NULL(ccb__sec_method_name(3));
	CU_ASSERT_EQUAL(ccb__sec_method_mask("FS,\tIDTOKENS\nCLAIMTOBE bogus"), 4 | 2048 | 2);
}

static void test_list_split(void)
{
	const char *p = " ,FS,\t TOKEN\r\n,SSL,, ", *t;
	const char *want[] = {"FS", "TOKEN", "SSL"};
	size_t n, i = 0;

	while ((t = ccb__sec_list_next(&p, &n))) {
		CU_ASSERT_FATAL(i < 3);
		CU_ASSERT_EQUAL(n, strlen(want[i]));
		CU_ASSERT(strncmp(t, want[i], n) == 0);
		i++;
	}
	CU_ASSERT_EQUAL(i, 3);
	p = "";
	CU_ASSERT_PTR_NULL(ccb__sec_list_next(&p, &n));
}

static void test_canonical_lists(void)
{
	/* Capture S3: configured IDTOKENS, sent TOKEN. */
	expect_list(ccb__sec_canonical_auth_methods("IDTOKENS"), "TOKEN");
	expect_list(ccb__sec_canonical_auth_methods("fs, idtokens\tKERBEROS,SCITOKEN,bogus,GSI,SSL"),
		    "fs,TOKEN,SCITOKENS,SSL");
	expect_list(ccb__sec_canonical_auth_methods(NULL), "");
	expect_list(ccb__sec_filter_crypto_methods("AES, aes,TRIPLEDES DES\nBLOWFISH,3DES"),
		    "AES,TRIPLEDES,BLOWFISH,3DES");
	CU_ASSERT_EQUAL(ccb__sec_crypto_parse("foo, aes"), CCB_SEC_CRYPTO_AES);
	CU_ASSERT_EQUAL(ccb__sec_crypto_parse("TRIPLEDES,AES"), CCB_SEC_CRYPTO_3DES);
	CU_ASSERT_EQUAL(ccb__sec_crypto_parse("BLOWFISH"), CCB_SEC_CRYPTO_BLOWFISH);
	CU_ASSERT_EQUAL(ccb__sec_crypto_parse(""), CCB_SEC_CRYPTO_NONE);
	CU_ASSERT_EQUAL(ccb__sec_crypto_key_len(CCB_SEC_CRYPTO_AES), 32);
	CU_ASSERT_EQUAL(ccb__sec_crypto_key_len(CCB_SEC_CRYPTO_BLOWFISH), 24);
}

static void test_reconcile_methods(void)
{
	/* Server order, client spelling. */
	expect_list(ccb__sec_reconcile_methods("fs,token,SSL", "SSL,TOKEN,FS"), "SSL,token,fs");
	expect_list(ccb__sec_reconcile_methods("FS", "TOKEN"), "");
	/* The TOKEN trap: server aliases are normalised... */
	expect_list(ccb__sec_reconcile_methods("TOKEN", "IDTOKENS"), "TOKEN");
	expect_list(ccb__sec_reconcile_methods("Token", "tokens"), "Token");
	/* ...client aliases are not, whatever the server says. */
	expect_list(ccb__sec_reconcile_methods("IDTOKENS", "TOKEN"), "");
	expect_list(ccb__sec_reconcile_methods("IDTOKENS", "IDTOKENS"), "");
	expect_list(ccb__sec_reconcile_methods("TOKENS,FS", "TOKEN,FS"), "FS");
	/* A client duplicate appears twice, as in C++. */
	expect_list(ccb__sec_reconcile_methods("AES,AES", "AES"), "AES,AES");
}

/* ---- RemoteVersion ------------------------------------------------------ */

static void expect_bad_version(const char *s)
{
	unsigned num = 1;
	CU_ASSERT_EQUAL(ccb__sec_version_parse(s, NULL, NULL, NULL, &num, NULL), CCB_ERR_PARSE);
	CU_ASSERT_EQUAL(num, 1);
}

static void test_version(void)
{
	int x, y, z;
	unsigned num;
	const char *ours = ccb__sec_version_string();

	CU_ASSERT_STRING_EQUAL(ours, "$CondorVersion: 25.14.0 2026-11-24 libccb " CCB_VERSION_STRING " $");
	CU_ASSERT_EQUAL(ccb__sec_version_parse(ours, &x, &y, &z, &num, NULL), CCB_OK);
	CU_ASSERT(x == 25 && y == 14 && z == 0);
	CU_ASSERT(num >= CCB_VERSION_NUM(25, 13, 0));
	CU_ASSERT_EQUAL(ccb__sec_version_parse(CAP_VERSION, &x, &y, &z, &num, NULL), CCB_OK);
	CU_ASSERT_EQUAL(num, CCB_VERSION_NUM(25, 14, 0));
	CU_ASSERT_EQUAL(ccb__sec_version_parse("$CondorVersion: 9.0.17 Oct 04 2022 $", &x, &y,
						&z, &num, NULL), CCB_OK);
	CU_ASSERT_EQUAL(num, CCB_VERSION_NUM(9, 0, 17));
	CU_ASSERT_EQUAL(ccb__sec_version_parse(
				"$CondorVersion: 25.4.0 2025-10-31 BuildID: 847437 PackageID: "
				"25.4.0-0.847437 GitSHA: a6507f91 RC $", NULL, NULL, NULL, &num, NULL),
			CCB_OK);
	CU_ASSERT_EQUAL(num, CCB_VERSION_NUM(25, 4, 0));
	expect_bad_version(NULL);
	expect_bad_version("");
	expect_bad_version("CondorVersion: 25.14.0 x $");
	expect_bad_version("$CondorVersion:25.14.0 x $");
	expect_bad_version("$CondorVersion: 25.14 x $");
	expect_bad_version("$CondorVersion: 25.14.0x $");
	expect_bad_version("$CondorVersion: 5.14.0 x $");
	expect_bad_version("$CondorVersion: 25.100.0 x $");
	expect_bad_version("$CondorVersion: 25.14.0 x");
	expect_bad_version("$CondorVersion: 25.14.0 x $ ");
	expect_bad_version("$CondorVersion: 25.14.0 $");
}

/* ---- REQUEST against the captures --------------------------------------- */

/* S1 (both pools): CLAIMTOBE, encryption/integrity NEVER, BLOWFISH. */
static void s1_config(ccb__sec_config *c)
{
	ccb__sec_config_init(c);
	c->authentication = CCB_SEC_REQUIRED;
	c->encryption = c->integrity = CCB_SEC_NEVER;
	c->auth_methods = "CLAIMTOBE";
	c->crypto_methods = "BLOWFISH";
	c->trust_domain = "vm";
}

/* S3: IDTOKENS, encryption/integrity REQUIRED, AES, issuer key POOL. */
static void s3_config(ccb__sec_config *c)
{
	ccb__sec_config_init(c);
	c->authentication = c->encryption = c->integrity = CCB_SEC_REQUIRED;
	c->auth_methods = "IDTOKENS";
	c->crypto_methods = "AES";
	c->trust_domain = "ccbtest.local";
	c->issuer_keys = "POOL";
}

static void check_request(const char *scen, int conn, const char *dir, ccb__sec_config *c,
			  const ccb__sec_request_params *rp_in)
{
	ccb__sec_policy pol;
	ccb__sec_request_params rp = *rp_in;
	ccb_classad *req = NULL;

	CU_ASSERT_EQUAL_FATAL(ccb__sec_policy_build(c, &pol, NULL), CCB_OK);
	rp.policy = &pol;
	CU_ASSERT_EQUAL_FATAL(ccb__sec_build_request(&rp, &req, NULL), CCB_OK);
	expect_in_capture(scen, conn, dir, 0, CCB_DC_AUTHENTICATE, req);
	ccb_classad_free(req);
	ccb__sec_policy_clear(&pol);
}

/* S1 conn 1 message 1: a master's CCB_REGISTER on a temporary session. */
static void test_request_s1_daemon(void)
{
	ccb__sec_config c;
	ccb__sec_request_params rp = {
		.command = 67,
		.ecdh_public_key = "BMK9TeaeLjrOLt9u82NMJWRrzRLsh0krmb6PDhIeDtY5C2v7B5IeGgnB42ONAC9"
				   "cusA71c8eI21zDsqEXBvurO8=",
		.remote_version = CAP_VERSION,
		.subsystem = "MASTER",
		.pid = 21682,
		.connect_sinful = "<127.0.0.1:19618>",
		.server_command_sock = "<127.0.0.1:33781?addrs=127.0.0.1-33781&alias=vm>",
	};

	s1_config(&c);
	c.daemon = true;
	c.tmp_session = true;
	check_request("S1-claimtobe-plain", 1, "c2s", &c, &rp);
}

/* S1 conn 7 message 2: condor_ping's DC_SEC_QUERY for DC_NOP_READ, sent by
 * the TCP server of a reversed connection. */
static void test_request_s1_tool(void)
{
	ccb__sec_config c;
	ccb__sec_request_params rp = {
		.command = CCB_DC_SEC_QUERY,
		.auth_command = 60020,
		.ecdh_public_key = "BNsHPzma232BG3d4R6bNdpHJTkGAU3ttrA5xGvJkqd8tsKF1Nciy79poMXlIZkC"
				   "xUfm8I/XwpZ4Gw5hDcS+WNcA=",
		.remote_version = CAP_VERSION,
		.pid = 22228,
		.connect_sinful = "<127.0.0.1:33781?CCBID=127.0.0.1:19618%3faddrs%3d127.0.0.1-19618"
				  "%26alias%3dvm#1&PrivNet=poolB.private&addrs=127.0.0.1-33781&"
				  "alias=vm>",
	};

	s1_config(&c);
	check_request("S1-claimtobe-plain", 7, "s2c", &c, &rp);
}

/* S3 conn 1 message 1: TOKEN offered, so IssuerKeys; AES. */
static void test_request_s3(void)
{
	ccb__sec_config c;
	ccb__sec_request_params rp = {
		.command = 67,
		.ecdh_public_key = "BAzcvNkRUSkmtoA8pIWwzT68DZ69gyASRebmRvXef/EU5X3iAGjRgpQqDx20xji"
				   "Y59gbF/9jQbqv5o7T7dsSzq8=",
		.remote_version = CAP_VERSION,
		.subsystem = "MASTER",
		.pid = 25849,
		.connect_sinful = "<127.0.0.1:19618>",
		.server_command_sock = "<127.0.0.1:34711?addrs=127.0.0.1-34711&alias=vm>",
	};

	s3_config(&c);
	c.daemon = true;
	c.tmp_session = true;
	check_request("S3-token-aes", 1, "c2s", &c, &rp);
}

static void test_request_defaults(void)
{
	ccb__sec_config c;
	ccb__sec_policy pol;
	ccb__sec_request_params rp = {.command = 67, .ecdh_public_key = "B="};
	ccb_classad *req;
	int64_t v;

	ccb__sec_config_init(&c);
	c.trust_domain = "td";
	c.issuer_keys = "POOL";
	c.auth_methods = "FS";
	CU_ASSERT_EQUAL_FATAL(ccb__sec_policy_build(&c, &pol, NULL), CCB_OK);
	rp.policy = &pol;
	CU_ASSERT_EQUAL_FATAL(ccb__sec_build_request(&rp, &req, NULL), CCB_OK);
	CU_ASSERT_STRING_EQUAL(str_of(req, "Subsystem"), "TOOL");
	CU_ASSERT_STRING_EQUAL(str_of(req, "RemoteVersion"), ccb__sec_version_string());
	CU_ASSERT_STRING_EQUAL(str_of(req, "SessionDuration"), "60");
	CU_ASSERT_STRING_EQUAL(str_of(req, "TrustDomain"), "td");
	CU_ASSERT_EQUAL(ccb_classad_type(req, "IssuerKeys"), CCB_VAL_ABSENT); /* no TOKEN */
	CU_ASSERT_EQUAL(ccb_classad_type(req, "AuthCommand"), CCB_VAL_ABSENT);
	CU_ASSERT_EQUAL(ccb_classad_type(req, "ServerCommandSock"), CCB_VAL_ABSENT);
	CU_ASSERT_EQUAL(ccb_classad_get_int(req, "ServerPid", &v), CCB_OK);
	CU_ASSERT(v > 0);
	ccb_classad_free(req);
	rp.ecdh_public_key = NULL;
	CU_ASSERT_EQUAL(ccb__sec_build_request(&rp, &req, NULL), CCB_ERR_INVALID_ARG);
	ccb__sec_policy_clear(&pol);

	/* No method: neither AuthMethods nor TrustDomain. */
	c.auth_methods = NULL;
	CU_ASSERT_EQUAL_FATAL(ccb__sec_policy_build(&c, &pol, NULL), CCB_OK);
	rp.ecdh_public_key = "B=";
	CU_ASSERT_EQUAL_FATAL(ccb__sec_build_request(&rp, &req, NULL), CCB_OK);
	CU_ASSERT_EQUAL(ccb_classad_type(req, "AuthMethods"), CCB_VAL_ABSENT);
	CU_ASSERT_EQUAL(ccb_classad_type(req, "TrustDomain"), CCB_VAL_ABSENT);
	CU_ASSERT_STRING_EQUAL(str_of(req, "AuthenticationNew"), "NEVER");
	ccb_classad_free(req);
	ccb__sec_policy_clear(&pol);
}

/* ---- RESPONSE against the captures --------------------------------------- */

static void check_response(const char *scen, ccb__sec_config *srv_cfg, const char *server_pub,
			   int want_crypto)
{
	ccb__sec_policy pol;
	ccb__sec_server_params sp = {.remote_version = CAP_VERSION, .ecdh_public_key = server_pub};
	ccb_classad *req = capture_ad(scen, 1, "c2s", true), *resp = NULL;
	ccb__sec_outcome o;

	CU_ASSERT_EQUAL_FATAL(ccb__sec_policy_build(srv_cfg, &pol, NULL), CCB_OK);
	sp.policy = &pol;
	CU_ASSERT_EQUAL_FATAL(ccb__sec_reconcile(&sp, req, &resp, &o, NULL), CCB_OK);
	CU_ASSERT(o.send_response && o.new_session && o.client_ecdh && o.auth_required);
	CU_ASSERT_EQUAL(o.authentication, CCB_SEC_ACT_YES);
	CU_ASSERT_EQUAL(o.crypto, want_crypto);
	CU_ASSERT_EQUAL(o.peer_version, CCB_VERSION_NUM(25, 14, 0));
	expect_in_capture(scen, 1, "s2c", 0, 0, resp);
	ccb_classad_free(req);
	ccb_classad_free(resp);
	ccb__sec_policy_clear(&pol);
}

/* S1 conn 1 message 2: collector (daemon, DAEMON level) answers the master. */
static void test_response_s1(void)
{
	ccb__sec_config c;

	s1_config(&c);
	c.daemon = true;
	check_response("S1-claimtobe-plain", &c,
		       "BOb1lipFKELN6wfY69/fqgBTxih+S+aLhxdITM/zaLVTJ6rn6mzK5SN/od+hjqN4JdbK0jwja+3"
		       "jPjtbXXDOk4w=",
		       CCB_SEC_CRYPTO_BLOWFISH);
}

/* S3 conn 1 message 2: IssuerKeys, AES, Encryption/Integrity YES. */
static void test_response_s3(void)
{
	ccb__sec_config c;

	s3_config(&c);
	c.daemon = true;
	check_response("S3-token-aes", &c,
		       "BHLLlnczLYnTBJqNGORHZnIcnRZ5oM5TrhP31Il3c3tZ8d2QCGABjbZQdTYQ27SOxENg+qEegrX"
		       "XxQotmfYK0jk=",
		       CCB_SEC_CRYPTO_AES);
}

/* A request ad for reconcile tests. */
static ccb_classad *request(const char *auth, const char *enc, const char *integ,
			    const char *methods, const char *crypto)
{
	ccb_classad *r = ccb__classad_new();

	ccb_classad_set_string(r, "Authentication", auth);
	ccb_classad_set_string(r, "AuthenticationNew", auth);
	ccb_classad_set_string(r, "Encryption", enc);
	ccb_classad_set_string(r, "Integrity", integ);
	if (methods)
		ccb_classad_set_string(r, "AuthMethods", methods);
	if (crypto)
		ccb_classad_set_string(r, "CryptoMethods", crypto);
	ccb_classad_set_string(r, "NewSession", "YES");
	ccb_classad_set_string(r, "Enact", "NO");
	ccb_classad_set_string(r, "ECDHPublicKey", "B=");
	return r;
}

static ccb__sec_policy server_policy(ccb__sec_level auth, ccb__sec_level enc, const char *methods,
				     const char *crypto)
{
	ccb__sec_config c;
	ccb__sec_policy p;

	ccb__sec_config_init(&c);
	c.authentication = auth;
	c.encryption = c.integrity = enc;
	c.auth_methods = methods;
	c.crypto_methods = crypto;
	c.daemon = true;
	CU_ASSERT_EQUAL(ccb__sec_policy_build(&c, &p, NULL), CCB_OK);
	return p;
}

static ccb_classad *reconcile(const ccb__sec_policy *p, ccb_classad *req, ccb__sec_outcome *o,
			      ccb_err want)
{
	ccb__sec_server_params sp = {.policy = p, .ecdh_public_key = "Bserver="};
	ccb_classad *resp = NULL;

	CU_ASSERT_EQUAL(ccb__sec_reconcile(&sp, req, &resp, o, NULL), want);
	ccb_classad_free(req);
	return resp;
}

static void test_aes_override_and_auth_required(void)
{
	ccb__sec_policy p = server_policy(CCB_SEC_OPTIONAL, CCB_SEC_NEVER, "FS", "AES,BLOWFISH");
	ccb__sec_outcome o;
	ccb_classad *resp;
	bool b;

	/* Auth YES (PREFERRED vs OPTIONAL) and AES first: Encryption and
	 * Integrity YES although both sides said NEVER; AuthRequired false. */
	resp = reconcile(&p, request("PREFERRED", "NEVER", "NEVER", "FS", "AES,BLOWFISH"), &o,
			 CCB_OK);
	CU_ASSERT_STRING_EQUAL(str_of(resp, "Authentication"), "YES");
	CU_ASSERT_STRING_EQUAL(str_of(resp, "Encryption"), "YES");
	CU_ASSERT_STRING_EQUAL(str_of(resp, "Integrity"), "YES");
	CU_ASSERT_EQUAL(ccb_classad_get_bool(resp, "AuthRequired", &b), CCB_OK);
	CU_ASSERT_FALSE(b);
	CU_ASSERT_FALSE(o.auth_required);
	CU_ASSERT_STRING_EQUAL(str_of(resp, "CryptoMethods"), "AES");
	CU_ASSERT_STRING_EQUAL(str_of(resp, "CryptoMethodsList"), "AES,BLOWFISH");
	CU_ASSERT_STRING_EQUAL(str_of(resp, "ECDHPublicKey"), "Bserver=");
	CU_ASSERT_EQUAL(o.key_len, 32);
	ccb_classad_free(resp);

	/* BLOWFISH first (client order does not matter, server order does). */
	ccb__sec_policy_clear(&p);
	p = server_policy(CCB_SEC_OPTIONAL, CCB_SEC_NEVER, "FS", "BLOWFISH,AES");
	resp = reconcile(&p, request("PREFERRED", "NEVER", "NEVER", "FS", "AES,BLOWFISH"), &o,
			 CCB_OK);
	CU_ASSERT_STRING_EQUAL(str_of(resp, "Encryption"), "NO");
	CU_ASSERT_STRING_EQUAL(str_of(resp, "CryptoMethods"), "BLOWFISH");
	CU_ASSERT_EQUAL(o.key_len, 24);
	ccb_classad_free(resp);

	/* No authentication: no override; AuthRequired absent. */
	ccb__sec_policy_clear(&p);
	p = server_policy(CCB_SEC_OPTIONAL, CCB_SEC_NEVER, "FS", "AES");
	resp = reconcile(&p, request("OPTIONAL", "NEVER", "NEVER", "FS", "AES"), &o, CCB_OK);
	CU_ASSERT_STRING_EQUAL(str_of(resp, "Authentication"), "NO");
	CU_ASSERT_STRING_EQUAL(str_of(resp, "Encryption"), "NO");
	CU_ASSERT_EQUAL(ccb_classad_type(resp, "AuthRequired"), CCB_VAL_ABSENT);
	ccb_classad_free(resp);

	/* Client spelling IDTOKENS against a TOKEN server: empty list. */
	ccb__sec_policy_clear(&p);
	p = server_policy(CCB_SEC_REQUIRED, CCB_SEC_REQUIRED, "IDTOKENS", "AES");
	resp = reconcile(&p, request("REQUIRED", "REQUIRED", "REQUIRED", "IDTOKENS", "AES"), &o,
			 CCB_OK);
	CU_ASSERT_STRING_EQUAL(str_of(resp, "AuthMethodsList"), "");
	CU_ASSERT_STRING_EQUAL(str_of(resp, "AuthMethods"), "");
	ccb_classad_free(resp);
	resp = reconcile(&p, request("REQUIRED", "REQUIRED", "REQUIRED", "TOKEN", "AES"), &o,
			 CCB_OK);
	CU_ASSERT_STRING_EQUAL(str_of(resp, "AuthMethodsList"), "TOKEN");
	ccb_classad_free(resp);

	/* No common crypto method while encryption is on: refused. */
	resp = reconcile(&p, request("REQUIRED", "REQUIRED", "REQUIRED", "TOKEN", "BLOWFISH"), &o,
			 CCB_ERR_UNSUPPORTED);
	CU_ASSERT_PTR_NULL(resp);
	/* No CryptoMethods at all while a key is needed: refused. */
	resp = reconcile(&p, request("REQUIRED", "REQUIRED", "REQUIRED", "TOKEN", NULL), &o,
			 CCB_ERR_UNSUPPORTED);
	CU_ASSERT_PTR_NULL(resp);
	ccb__sec_policy_clear(&p);
}

static void test_old_client_authentication(void)
{
	/* A client without AuthenticationNew is compared with the server's
	 * old-style Authentication (raised by encryption REQUIRED). */
	ccb__sec_policy p = server_policy(CCB_SEC_OPTIONAL, CCB_SEC_REQUIRED, "FS", "AES");
	ccb__sec_outcome o;
	ccb_classad *r = request("NEVER", "REQUIRED", "REQUIRED", "FS", "AES"), *resp;

	CU_ASSERT_EQUAL(p.authentication, CCB_SEC_REQUIRED);
	CU_ASSERT_EQUAL(p.authentication_new, CCB_SEC_OPTIONAL);
	/* With AuthenticationNew NEVER: NEVER vs OPTIONAL -> NO. */
	resp = reconcile(&p, ccb__classad_copy(r), &o, CCB_OK);
	CU_ASSERT_STRING_EQUAL(str_of(resp, "Authentication"), "NO");
	ccb_classad_free(resp);
	/* Old client: NEVER vs REQUIRED -> FAIL. */
	ccb_classad_remove(r, "AuthenticationNew");
	resp = reconcile(&p, r, &o, CCB_ERR_UNSUPPORTED);
	CU_ASSERT_PTR_NULL(resp);
	ccb__sec_policy_clear(&p);
}

static void test_session_duration_lease(void)
{
	ccb__sec_policy p = server_policy(CCB_SEC_OPTIONAL, CCB_SEC_OPTIONAL, "FS", "AES");
	ccb__sec_outcome o;
	ccb_classad *r, *resp;
	int64_t v;

	/* A tool's "60" wins over the daemon's 86400. */
	r = request("OPTIONAL", "OPTIONAL", "OPTIONAL", "FS", "AES");
	ccb_classad_set_string(r, "SessionDuration", "60");
	ccb_classad_set_int(r, "SessionLease", 3600);
	resp = reconcile(&p, r, &o, CCB_OK);
	CU_ASSERT_STRING_EQUAL(str_of(resp, "SessionDuration"), "60");
	CU_ASSERT_EQUAL(ccb_classad_type(resp, "SessionDuration"), CCB_VAL_STRING);
	CU_ASSERT_EQUAL(ccb_classad_get_int(resp, "SessionLease", &v), CCB_OK);
	CU_ASSERT_EQUAL(v, 3600);
	ccb_classad_free(resp);
	/* A daemon's "86400" stays. Client lease 0 defers to the server. */
	r = request("OPTIONAL", "OPTIONAL", "OPTIONAL", "FS", "AES");
	ccb_classad_set_string(r, "SessionDuration", "86400");
	ccb_classad_set_int(r, "SessionLease", 0);
	resp = reconcile(&p, r, &o, CCB_OK);
	CU_ASSERT_STRING_EQUAL(str_of(resp, "SessionDuration"), "86400");
	CU_ASSERT_EQUAL(ccb_classad_get_int(resp, "SessionLease", &v), CCB_OK);
	CU_ASSERT_EQUAL(v, 3600);
	ccb_classad_free(resp);
	/* Go's integer SessionDuration reads as 0; no client lease, no lease. */
	r = request("OPTIONAL", "OPTIONAL", "OPTIONAL", "FS", "AES");
	ccb_classad_set_int(r, "SessionDuration", 60);
	resp = reconcile(&p, r, &o, CCB_OK);
	CU_ASSERT_STRING_EQUAL(str_of(resp, "SessionDuration"), "0");
	CU_ASSERT_EQUAL(ccb_classad_type(resp, "SessionLease"), CCB_VAL_ABSENT);
	ccb_classad_free(resp);
	/* Smaller client lease wins; server lease 0 defers to the client. */
	r = request("OPTIONAL", "OPTIONAL", "OPTIONAL", "FS", "AES");
	ccb_classad_set_int(r, "SessionLease", 120);
	resp = reconcile(&p, r, &o, CCB_OK);
	CU_ASSERT_EQUAL(ccb_classad_get_int(resp, "SessionLease", &v), CCB_OK);
	CU_ASSERT_EQUAL(v, 120);
	ccb_classad_free(resp);
	p.session_lease = 0;
	r = request("OPTIONAL", "OPTIONAL", "OPTIONAL", "FS", "AES");
	ccb_classad_set_int(r, "SessionLease", 7200);
	resp = reconcile(&p, r, &o, CCB_OK);
	CU_ASSERT_EQUAL(ccb_classad_get_int(resp, "SessionLease", &v), CCB_OK);
	CU_ASSERT_EQUAL(v, 7200);
	ccb_classad_free(resp);
	ccb__sec_policy_clear(&p);
}

/* Without NewSession the list stays; without Enact = "NO" no reply. */
static void test_no_new_session(void)
{
	ccb__sec_policy p = server_policy(CCB_SEC_OPTIONAL, CCB_SEC_OPTIONAL, "FS", "AES,BLOWFISH");
	ccb__sec_outcome o;
	ccb_classad *r = request("OPTIONAL", "OPTIONAL", "OPTIONAL", "FS", "AES,BLOWFISH"), *resp;

	ccb_classad_remove(r, "NewSession");
	ccb_classad_remove(r, "Enact");
	resp = reconcile(&p, r, &o, CCB_OK);
	CU_ASSERT_FALSE(o.new_session);
	CU_ASSERT_FALSE(o.send_response);
	CU_ASSERT_STRING_EQUAL(str_of(resp, "CryptoMethods"), "AES,BLOWFISH");
	CU_ASSERT_EQUAL(ccb_classad_type(resp, "ECDHPublicKey"), CCB_VAL_ABSENT);
	ccb_classad_free(resp);
	ccb__sec_policy_clear(&p);
}

/* ---- RESPONSE, client side -------------------------------------------- */

static void test_parse_response(void)
{
	ccb_classad *resp = capture_ad("S1-claimtobe-plain", 1, "s2c", false);
	ccb__sec_negotiated n;
	ccb_error e;

	CU_ASSERT_EQUAL_FATAL(ccb__sec_parse_response(resp, &n, NULL), CCB_OK);
	CU_ASSERT_EQUAL(n.authentication, CCB_SEC_ACT_YES);
	CU_ASSERT_EQUAL(n.encryption, CCB_SEC_ACT_NO);
	CU_ASSERT_EQUAL(n.integrity, CCB_SEC_ACT_NO);
	CU_ASSERT_TRUE(n.auth_required);
	CU_ASSERT_STRING_EQUAL(n.auth_methods, "CLAIMTOBE");
	CU_ASSERT_EQUAL(n.crypto, CCB_SEC_CRYPTO_BLOWFISH);
	CU_ASSERT_EQUAL(n.key_len, 24);
	CU_ASSERT_EQUAL(strlen(n.server_ecdh), 88);
	CU_ASSERT_STRING_EQUAL(n.trust_domain, "vm");
	CU_ASSERT_PTR_NULL(n.issuer_keys);
	CU_ASSERT_EQUAL(n.peer_version, CCB_VERSION_NUM(25, 14, 0));
	CU_ASSERT_EQUAL(n.session_duration, 60);
	CU_ASSERT_TRUE(n.has_lease);
	CU_ASSERT_EQUAL(n.session_lease, 3600);

	/* Encryption YES needs a supported first crypto method. */
	ccb_classad_set_string(resp, "Encryption", "YES");
	ccb_classad_set_string(resp, "CryptoMethods", "aes");
	CU_ASSERT_EQUAL(ccb__sec_parse_response(resp, &n, &e), CCB_ERR_UNSUPPORTED);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.detail, "aes"));
	ccb_classad_set_string(resp, "CryptoMethods", "FOO,AES");
	CU_ASSERT_EQUAL(ccb__sec_parse_response(resp, &n, NULL), CCB_ERR_UNSUPPORTED);
	ccb_classad_set_string(resp, "CryptoMethods", "");
	CU_ASSERT_EQUAL(ccb__sec_parse_response(resp, &n, NULL), CCB_ERR_PROTOCOL);
	ccb_classad_remove(resp, "CryptoMethods");
	CU_ASSERT_EQUAL(ccb__sec_parse_response(resp, &n, NULL), CCB_ERR_PROTOCOL);
	ccb_classad_set_string(resp, "CryptoMethods", "AES");
	CU_ASSERT_EQUAL(ccb__sec_parse_response(resp, &n, NULL), CCB_OK);
	CU_ASSERT_EQUAL(n.key_len, 32);
	/* Decisions must be there and parse. */
	ccb_classad_remove(resp, "Integrity");
	CU_ASSERT_EQUAL(ccb__sec_parse_response(resp, &n, &e), CCB_ERR_PROTOCOL);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.detail, "Integrity"));
	ccb_classad_set_int(resp, "Integrity", 1);
	CU_ASSERT_EQUAL(ccb__sec_parse_response(resp, &n, NULL), CCB_ERR_PROTOCOL);
	ccb_classad_set_string(resp, "Integrity", "MAYBE");
	CU_ASSERT_EQUAL(ccb__sec_parse_response(resp, &n, NULL), CCB_ERR_PROTOCOL);
	ccb_classad_set_string(resp, "Integrity", "NO");
	ccb_classad_set_bool(resp, "AuthRequired", false);
	CU_ASSERT_EQUAL(ccb__sec_parse_response(resp, &n, NULL), CCB_OK);
	CU_ASSERT_FALSE(n.auth_required);
	ccb_classad_remove(resp, "Authentication");
	CU_ASSERT_EQUAL(ccb__sec_parse_response(resp, &n, NULL), CCB_ERR_PROTOCOL);
	ccb_classad_free(resp);
}

/* ---- POST-AUTH ---------------------------------------------------------- */

static void test_postauth(void)
{
	ccb__sec_postauth pa = {
		.sid = "vm:21621:1795529984:0",
		.user = "condor@vm",
		.return_code = "AUTHORIZED",
		.valid_commands = "60000,60008,60002,60003,60026,60017,60046,60047,60048,60049,"
				  "60050,67,17,44,21,47,57,59,72,42,4,19,45,55,58,70,80,81,60021,"
				  "60052,60007,457,60020,68,5,6,7,9,12,43,20,46,78,50,56,48,71,74,53",
		.tried_authentication = true,
	}, got;
	ccb_classad *ad;
	ccb_error e;

	CU_ASSERT_EQUAL_FATAL(ccb__sec_build_postauth(&pa, &ad, NULL), CCB_OK);
	/* S1 conn 1 message 8, byte for byte (BLOWFISH: the ad is readable). */
	expect_in_capture("S1-claimtobe-plain", 1, "s2c", -1, 0, ad);
	CU_ASSERT_EQUAL(ccb__sec_parse_postauth(ad, &got, NULL), CCB_OK);
	CU_ASSERT_STRING_EQUAL(got.sid, pa.sid);
	CU_ASSERT_STRING_EQUAL(got.user, "condor@vm");
	CU_ASSERT_TRUE(got.tried_authentication);

	ccb_classad_set_string(ad, "ReturnCode", "DENIED");
	CU_ASSERT_EQUAL(ccb__sec_parse_postauth(ad, &got, &e), CCB_ERR_NOT_AUTHORIZED);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.detail, "DENIED"));
	ccb_classad_remove(ad, "ReturnCode"); /* pre-8.3.6: success */
	CU_ASSERT_EQUAL(ccb__sec_parse_postauth(ad, &got, NULL), CCB_OK);
	ccb_classad_set_string(ad, "ValidCommands", "");
	CU_ASSERT_EQUAL(ccb__sec_parse_postauth(ad, &got, NULL), CCB_ERR_PROTOCOL);
	ccb_classad_set_string(ad, "ValidCommands", "67");
	ccb_classad_remove(ad, "Sid");
	CU_ASSERT_EQUAL(ccb__sec_parse_postauth(ad, &got, NULL), CCB_ERR_PROTOCOL);
	ccb_classad_free(ad);

	/* Unauthenticated: no User, no TriedAuthentication. */
	pa.user = NULL;
	pa.tried_authentication = false;
	CU_ASSERT_EQUAL_FATAL(ccb__sec_build_postauth(&pa, &ad, NULL), CCB_OK);
	CU_ASSERT_EQUAL(ccb_classad_count(ad), 3);
	ccb_classad_free(ad);
}

static const ccbt_test tests[] = {
	{"level and action parsing", test_level_parse},
	{"reconcile table 4x4", test_reconcile_table},
	{"local policy raise rules", test_local_policy},
	{"method names and bits", test_method_names},
	{"list splitting", test_list_split},
	{"canonical method lists", test_canonical_lists},
	{"method list reconciliation and TOKEN trap", test_reconcile_methods},
	{"RemoteVersion format and parse", test_version},
	{"REQUEST = S1 conn 1 msg 1", test_request_s1_daemon},
	{"REQUEST = S1 conn 7 msg 2", test_request_s1_tool},
	{"REQUEST = S3 conn 1 msg 1", test_request_s3},
	{"REQUEST defaults", test_request_defaults},
	{"RESPONSE = S1 conn 1 msg 2", test_response_s1},
	{"RESPONSE = S3 conn 1 msg 2", test_response_s3},
	{"AES override, AuthRequired, crypto refusal", test_aes_override_and_auth_required},
	{"old-style Authentication", test_old_client_authentication},
	{"SessionDuration and SessionLease", test_session_duration_lease},
	{"no new session", test_no_new_session},
	{"RESPONSE checks on the client", test_parse_response},
	{"POST-AUTH = S1 conn 1 msg 8", test_postauth},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"policy", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
