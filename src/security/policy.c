#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "security/policy.h"
#include "security/sec_layer.h" /* checks the two declarations agree */
#include "util/util.h"

/* ---- levels and decisions ----------------------------------------------- */

/* security-handshake.md §2; H:src/condor_io/condor_secman.cpp:142-164 */
ccb__sec_level ccb__sec_level_parse(const char *s)
{
	if (!s || !*s)
		return CCB_SEC_INVALID;
	switch (s[0]) {
	case 'R': case 'r': case 'Y': case 'y': case 'T': case 't':
		return CCB_SEC_REQUIRED;
	case 'P': case 'p':
		return CCB_SEC_PREFERRED;
	case 'O': case 'o':
		return CCB_SEC_OPTIONAL;
	case 'F': case 'f': case 'N': case 'n':
		return CCB_SEC_NEVER;
	}
	return CCB_SEC_INVALID;
}

const char *ccb__sec_level_name(ccb__sec_level l)
{
	switch (l) {
	case CCB_SEC_REQUIRED: return "REQUIRED";
	case CCB_SEC_PREFERRED: return "PREFERRED";
	case CCB_SEC_OPTIONAL: return "OPTIONAL";
	case CCB_SEC_NEVER: return "NEVER";
	case CCB_SEC_UNDEFINED: return "UNDEFINED";
	default: return "INVALID";
	}
}

/* H:condor_secman.cpp:183-200 */
ccb__sec_action ccb__sec_action_parse(const char *s)
{
	if (!s || !*s)
		return CCB_SEC_ACT_INVALID;
	switch (s[0]) {
	case 'F': case 'f': return CCB_SEC_ACT_FAIL;
	case 'Y': case 'y': return CCB_SEC_ACT_YES;
	case 'N': case 'n': return CCB_SEC_ACT_NO;
	}
	return CCB_SEC_ACT_INVALID;
}

const char *ccb__sec_action_name(ccb__sec_action a)
{
	switch (a) {
	case CCB_SEC_ACT_YES: return "YES";
	case CCB_SEC_ACT_NO: return "NO";
	case CCB_SEC_ACT_FAIL: return "FAIL";
	case CCB_SEC_ACT_UNDEFINED: return "UNDEFINED";
	default: return "INVALID";
	}
}

/* String value of an attribute, false when absent or of another type
 * (ClassAd LookupString). */
static bool lookup_str(const ccb_classad *ad, const char *name, const char **v)
{
	return ccb_classad_get_string(ad, name, v) == CCB_OK;
}

/* sec_lookup_feat_act, H:condor_secman.cpp:167-180 */
ccb__sec_action ccb__sec_lookup_action(const ccb_classad *ad, const char *attr)
{
	const char *v;

	if (!lookup_str(ad, attr, &v))
		return CCB_SEC_ACT_UNDEFINED;
	return ccb__sec_action_parse(v);
}

/* The reconcile table, security-handshake.md §2.1; H:condor_secman.cpp:775-826 */
ccb__sec_action ccb__sec_reconcile_levels(ccb__sec_level client, ccb__sec_level server)
{
	switch (client) {
	case CCB_SEC_REQUIRED:
		return server == CCB_SEC_NEVER ? CCB_SEC_ACT_FAIL : CCB_SEC_ACT_YES;
	case CCB_SEC_PREFERRED:
		return server == CCB_SEC_NEVER ? CCB_SEC_ACT_NO : CCB_SEC_ACT_YES;
	case CCB_SEC_OPTIONAL:
		return server == CCB_SEC_REQUIRED || server == CCB_SEC_PREFERRED ? CCB_SEC_ACT_YES
										 : CCB_SEC_ACT_NO;
	case CCB_SEC_NEVER:
		return server == CCB_SEC_REQUIRED ? CCB_SEC_ACT_FAIL : CCB_SEC_ACT_NO;
	default:
		return CCB_SEC_ACT_FAIL;
	}
}

/* ReconcileSecurityDependency, H:condor_secman.cpp:691-705 */
bool ccb__sec_raise(ccb__sec_level *a, ccb__sec_level *b)
{
	if (*a == CCB_SEC_NEVER) {
		if (*b == CCB_SEC_REQUIRED)
			return false;
		*b = CCB_SEC_NEVER;
	}
	if (*b > *a)
		*a = *b;
	return true;
}

/* ---- method names and lists --------------------------------------------- */

/* security-handshake.md §1; H:condor_secman.cpp:3210-3246 and
 * H:src/condor_includes/condor_auth.h:30-43. Canonical name first. */
static const struct {
	const char *name;
	int bit;
} auth_names[] = {
	{"CLAIMTOBE", 2},   {"FS", 4},        {"FS_REMOTE", 8},  {"NTSSPI", 16},
	{"GSI", 32},        {"KERBEROS", 64}, {"ANONYMOUS", 128}, {"SSL", 256},
	{"PASSWORD", 512},  {"MUNGE", 1024},  {"TOKEN", 2048},   {"TOKENS", 2048},
	{"IDTOKEN", 2048},  {"IDTOKENS", 2048}, {"SCITOKENS", 4096}, {"SCITOKEN", 4096},
};
#define N_AUTH_NAMES (sizeof auth_names / sizeof auth_names[0])

enum { BIT_NTSSPI = 16, BIT_GSI = 32, BIT_KERBEROS = 64, BIT_MUNGE = 1024, BIT_TOKEN = 2048,
       BIT_SCITOKENS = 4096 };

static int method_bit_n(const char *name, size_t n)
{
	for (size_t i = 0; i < N_AUTH_NAMES; i++)
		if (strlen(auth_names[i].name) == n && !strncasecmp(name, auth_names[i].name, n))
			return auth_names[i].bit;
	return 0;
}

int ccb__sec_method_bit(const char *name)
{
	return name ? method_bit_n(name, strlen(name)) : 0;
}

const char *ccb__sec_method_name(int bit)
{
	for (size_t i = 0; i < N_AUTH_NAMES; i++)
		if (auth_names[i].bit == bit)
			return auth_names[i].name;
	return NULL;
}

/* StringTokenIterator with the default separators,
 * H:src/condor_utils/stl_string_utils.h:151. */
#define LIST_SEPS ", \t\r\n"

const char *ccb__sec_list_next(const char **p, size_t *len)
{
	const char *s = *p;

	if (!s)
		return NULL;
	s += strspn(s, LIST_SEPS);
	if (!*s) {
		*p = s;
		return NULL;
	}
	*len = strcspn(s, LIST_SEPS);
	*p = s + *len;
	return s;
}

int ccb__sec_method_mask(const char *list)
{
	const char *p = list, *t;
	size_t n;
	int mask = 0;

	while ((t = ccb__sec_list_next(&p, &n)))
		mask |= method_bit_n(t, n);
	return mask;
}

static bool item_is(const char *t, size_t n, const char *name)
{
	return strlen(name) == n && !strncasecmp(t, name, n);
}

/* Whether a list holds `name` exactly (case-sensitive, as the C++ strcmp
 * checks for TOKEN in UpdateAuthenticationMetadata). */
static bool list_has_exact(const char *list, const char *name)
{
	const char *p = list, *t;
	size_t n;

	while ((t = ccb__sec_list_next(&p, &n)))
		if (strlen(name) == n && !strncmp(t, name, n))
			return true;
	return false;
}

/* Append one item to a comma list being built. */
static bool list_add(ccb_buf *b, const char *t, size_t n)
{
	return (b->len == 0 || ccb_buf_append_str(b, ",")) && ccb_buf_append(b, t, n);
}

static char *list_finish(ccb_buf *b, bool ok)
{
	if (!ok || !ccb_buf_terminate(b)) {
		ccb_buf_free(b);
		return NULL;
	}
	if (!b->data)
		return ccb_strdup("");
	return ccb_buf_steal_str(b);
}

/* filterAuthenticationMethods, H:condor_secman.cpp:3519-3605 */
char *ccb__sec_canonical_auth_methods(const char *configured)
{
	const char *p = configured, *t;
	size_t n;
	ccb_buf b;
	bool ok = true;

	ccb_buf_init(&b);
	while (ok && (t = ccb__sec_list_next(&p, &n))) {
		int bit = method_bit_n(t, n);
		/* Unknown, and methods no libccb build provides. */
		if (!bit || bit == BIT_NTSSPI || bit == BIT_GSI || bit == BIT_KERBEROS ||
		    bit == BIT_MUNGE)
			continue;
		/* Wire-compatible canonical spellings (3538-3541, 3566-3569). */
		if (bit == BIT_TOKEN)
			ok = list_add(&b, "TOKEN", 5);
		else if (bit == BIT_SCITOKENS)
			ok = list_add(&b, "SCITOKENS", 9);
		else
			ok = list_add(&b, t, n);
	}
	return list_finish(&b, ok);
}

/* H:condor_secman.cpp:3497-3510: exact, case-sensitive names. */
char *ccb__sec_filter_crypto_methods(const char *configured)
{
	static const char *const known[] = {"AES", "3DES", "TRIPLEDES", "BLOWFISH"};
	const char *p = configured, *t;
	size_t n;
	ccb_buf b;
	bool ok = true;

	ccb_buf_init(&b);
	while (ok && (t = ccb__sec_list_next(&p, &n)))
		for (size_t i = 0; i < 4; i++)
			if (strlen(known[i]) == n && !strncmp(t, known[i], n)) {
				ok = list_add(&b, t, n);
				break;
			}
	return list_finish(&b, ok);
}

/* ReconcileMethodLists, H:condor_secman.cpp:3267-3305. The C++ loop
 * normalises the client item into a variable it then ignores, so only the
 * server's aliases become TOKEN (security-handshake.md §2.1 "Trap"). */
char *ccb__sec_reconcile_methods(const char *client, const char *server)
{
	const char *sp = server, *st;
	size_t sn;
	ccb_buf b;
	bool ok = true;

	ccb_buf_init(&b);
	while (ok && (st = ccb__sec_list_next(&sp, &sn))) {
		const char *cp = client, *ct;
		size_t cn;

		if (item_is(st, sn, "TOKENS") || item_is(st, sn, "IDTOKENS") ||
		    item_is(st, sn, "IDTOKEN")) {
			st = "TOKEN";
			sn = 5;
		}
		while (ok && (ct = ccb__sec_list_next(&cp, &cn)))
			if (cn == sn && !strncasecmp(ct, st, sn))
				ok = list_add(&b, ct, cn);
	}
	return list_finish(&b, ok);
}

/* getCryptProtocolNameToEnum, H:condor_secman.cpp:3698-3716 */
int ccb__sec_crypto_parse(const char *list)
{
	const char *p = list, *t;
	size_t n;

	while ((t = ccb__sec_list_next(&p, &n))) {
		if (item_is(t, n, "BLOWFISH"))
			return CCB_SEC_CRYPTO_BLOWFISH;
		if (item_is(t, n, "3DES") || item_is(t, n, "TRIPLEDES"))
			return CCB_SEC_CRYPTO_3DES;
		if (item_is(t, n, "AES"))
			return CCB_SEC_CRYPTO_AES;
	}
	return CCB_SEC_CRYPTO_NONE;
}

/* getCryptProtocolEnumToName, H:condor_secman.cpp:3718-3734 */
const char *ccb__sec_crypto_name(int crypto)
{
	switch (crypto) {
	case CCB_SEC_CRYPTO_BLOWFISH: return "BLOWFISH";
	case CCB_SEC_CRYPTO_3DES: return "3DES";
	case CCB_SEC_CRYPTO_AES: return "AES";
	default: return "";
	}
}

/* H:src/condor_includes/condor_secman.h:32-35 */
size_t ccb__sec_crypto_key_len(int crypto)
{
	return crypto == CCB_SEC_CRYPTO_AES ? 32 : 24;
}

/* ---- local policy -------------------------------------------------------- */

void ccb__sec_config_init(ccb__sec_config *c)
{
	memset(c, 0, sizeof *c);
	c->session_duration = -1;
	c->session_lease = -1;
}

void ccb__sec_policy_clear(ccb__sec_policy *p)
{
	free(p->auth_methods);
	free(p->crypto_methods);
	free(p->trust_domain);
	free(p->issuer_keys);
	memset(p, 0, sizeof *p);
}

/* A configured level: UNDEFINED takes the default; anything unparsable
 * is fatal in C++ (sec_req_param EXCEPTs, H:condor_secman.cpp:284-316). */
static bool config_level(ccb__sec_level in, ccb__sec_level def, ccb__sec_level *out)
{
	if (in == CCB_SEC_UNDEFINED)
		in = def;
	*out = in;
	return in >= CCB_SEC_NEVER && in <= CCB_SEC_REQUIRED;
}

static ccb_err levels_from_config(const ccb__sec_config *c, ccb__sec_policy *p, ccb_error *err)
{
	ccb__sec_level req = c->request_authentication;

	if (!config_level(c->authentication, CCB_SEC_OPTIONAL, &p->authentication) ||
	    !config_level(c->encryption, CCB_SEC_OPTIONAL, &p->encryption) ||
	    !config_level(c->integrity, CCB_SEC_OPTIONAL, &p->integrity) ||
	    !config_level(c->negotiation, CCB_SEC_PREFERRED, &p->negotiation) ||
	    (req != CCB_SEC_UNDEFINED && (req < CCB_SEC_NEVER || req > CCB_SEC_REQUIRED)))
		return ccb_error_set(err, CCB_ERR_CONFIG, "security policy: invalid level");
	if (req > p->authentication)
		p->authentication = req;
	p->authentication_new = p->authentication;
	/* ALLOW-level commands need no authentication unless asked (499-503). */
	if (c->allow_perm && req == CCB_SEC_UNDEFINED)
		p->authentication_new = CCB_SEC_OPTIONAL;
	/* Old-style Authentication >= encryption, integrity; negotiation >= all
	 * three (514-533; security-handshake.md §2.2, corrected from capture S1). */
	if (!ccb__sec_raise(&p->authentication, &p->encryption) ||
	    !ccb__sec_raise(&p->authentication, &p->integrity) ||
	    !ccb__sec_raise(&p->negotiation, &p->authentication) ||
	    !ccb__sec_raise(&p->negotiation, &p->encryption) ||
	    !ccb__sec_raise(&p->negotiation, &p->integrity))
		return ccb_error_set(err, CCB_ERR_CONFIG,
				     "security policy is invalid: a NEVER level conflicts with a "
				     "REQUIRED one (authentication %s, encryption %s, integrity %s, "
				     "negotiation %s)",
				     ccb__sec_level_name(p->authentication),
				     ccb__sec_level_name(p->encryption),
				     ccb__sec_level_name(p->integrity),
				     ccb__sec_level_name(p->negotiation));
	return CCB_OK;
}

/* No methods: the feature is off, or the policy fails if it is required (535-577). */
static ccb_err methods_from_config(const ccb__sec_config *c, ccb__sec_policy *p, ccb_error *err)
{
	p->auth_methods = ccb__sec_canonical_auth_methods(c->auth_methods);
	p->crypto_methods =
		ccb__sec_filter_crypto_methods(c->crypto_methods ? c->crypto_methods : "AES,BLOWFISH,3DES");
	if (!p->auth_methods || !p->crypto_methods)
		return ccb_error_set(err, CCB_ERR_NOMEM, "security policy: out of memory");
	if (!*p->auth_methods) {
		free(p->auth_methods);
		p->auth_methods = NULL;
		if (p->authentication_new == CCB_SEC_REQUIRED)
			return ccb_error_set(err, CCB_ERR_CONFIG,
					     "authentication is REQUIRED but no usable "
					     "authentication method is configured");
		p->authentication_new = CCB_SEC_NEVER;
	}
	if (!*p->crypto_methods) {
		free(p->crypto_methods);
		p->crypto_methods = NULL;
		if (p->encryption == CCB_SEC_REQUIRED || p->integrity == CCB_SEC_REQUIRED)
			return ccb_error_set(err, CCB_ERR_CONFIG,
					     "encryption or integrity is REQUIRED but no usable "
					     "crypto method is configured");
		p->encryption = CCB_SEC_NEVER;
		p->integrity = CCB_SEC_NEVER;
	}
	return CCB_OK;
}

static bool dup_opt(char **dst, const char *src)
{
	if (!src || !*src)
		return true;
	*dst = ccb_strdup(src);
	return *dst != NULL;
}

ccb_err ccb__sec_policy_build(const ccb__sec_config *c, ccb__sec_policy *out, ccb_error *err)
{
	ccb_err rc;

	memset(out, 0, sizeof *out);
	if (!c)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "security policy: no configuration");
	if ((rc = levels_from_config(c, out, err)) || (rc = methods_from_config(c, out, err)))
		goto fail;
	/* Durations: H:condor_secman.cpp:606-651. */
	out->session_duration = c->session_duration >= 0 ? c->session_duration
				: c->daemon ? 86400 : 60;
	if (c->tmp_session)
		out->session_duration = 60;
	out->session_lease = c->session_lease >= 0 ? c->session_lease : 3600;
	if (!dup_opt(&out->trust_domain, c->trust_domain) ||
	    !dup_opt(&out->issuer_keys, c->issuer_keys)) {
		rc = ccb_error_set(err, CCB_ERR_NOMEM, "security policy: out of memory");
		goto fail;
	}
	return CCB_OK;
fail:
	ccb__sec_policy_clear(out);
	return rc;
}

/* TrustDomain travels with an offered method, IssuerKeys with TOKEN
 * (UpdateAuthenticationMetadata, H:condor_secman.cpp:406-429, 536-542). */
static const char *policy_trust_domain(const ccb__sec_policy *p)
{
	return p->auth_methods ? p->trust_domain : NULL;
}

static const char *policy_issuer_keys(const ccb__sec_policy *p)
{
	return p->auth_methods && list_has_exact(p->auth_methods, "TOKEN") ? p->issuer_keys : NULL;
}

/* ---- RemoteVersion ------------------------------------------------------ */

#define VERSION_PREFIX "$CondorVersion: "

const char *ccb__sec_version_string(void)
{
	return VERSION_PREFIX CCB_SEC_CONDOR_VERSION " " CCB_SEC_VERSION_DATE
			      " libccb " CCB_SEC_LIBCCB_VERSION " $";
}

/* Up to 9 decimal digits; false if none. */
static bool parse_num(const char **p, int *v)
{
	const char *s = *p;
	long n = 0;
	int digits = 0;

	while (*s >= '0' && *s <= '9' && digits < 9) {
		n = n * 10 + (*s++ - '0');
		digits++;
	}
	if (!digits || (*s >= '0' && *s <= '9'))
		return false;
	*v = (int)n;
	*p = s;
	return true;
}

ccb_err ccb__sec_version_parse(const char *s, int *major, int *minor, int *patch,
			       unsigned *num, ccb_error *err)
{
	const char *p;
	size_t len;
	int x, y, z;

	if (!s || strncmp(s, VERSION_PREFIX, strlen(VERSION_PREFIX)) != 0)
		return ccb_error_set(err, CCB_ERR_PARSE,
				     "version string does not start with \"$CondorVersion: \"");
	p = s + strlen(VERSION_PREFIX);
	if (!parse_num(&p, &x) || *p++ != '.' || !parse_num(&p, &y) || *p++ != '.' ||
	    !parse_num(&p, &z) || *p++ != ' ')
		return ccb_error_set(err, CCB_ERR_PARSE, "version string lacks \"X.Y.Z \"");
	/* "the world starts with Condor V6" (condor_ver_info.cpp:446-450) */
	if (x < 6 || y > 99 || z > 99)
		return ccb_error_set(err, CCB_ERR_PARSE, "version %d.%d.%d out of range", x, y, z);
	/* The rest must hold the trailing " $" the C++ parser strips (461-463). */
	len = strlen(s);
	if (!strstr(p, " $") || len < 2 || strcmp(s + len - 2, " $") != 0)
		return ccb_error_set(err, CCB_ERR_PARSE, "version string does not end with \" $\"");
	if (major)
		*major = x;
	if (minor)
		*minor = y;
	if (patch)
		*patch = z;
	if (num)
		*num = (unsigned)CCB_VERSION_NUM(x, y, z);
	return CCB_OK;
}

static unsigned peer_version_of(const ccb_classad *ad)
{
	const char *v;
	unsigned num = 0;

	if (!lookup_str(ad, "RemoteVersion", &v) || ccb__sec_version_parse(v, NULL, NULL, NULL, &num, NULL))
		return 0;
	return num;
}

/* ---- ad helpers ----------------------------------------------------------- */

/* Setters that stop at the first failure: `rc` carries it. */
static void put_str(ccb_classad *ad, ccb_err *rc, const char *name, const char *v)
{
	if (!*rc && v)
		*rc = ccb_classad_set_string(ad, name, v);
}

static void put_int(ccb_classad *ad, ccb_err *rc, const char *name, int64_t v)
{
	if (!*rc)
		*rc = ccb_classad_set_int(ad, name, v);
}

static void put_bool(ccb_classad *ad, ccb_err *rc, const char *name, bool v)
{
	if (!*rc)
		*rc = ccb_classad_set_bool(ad, name, v);
}

static ccb_err finish_ad(ccb_classad *ad, ccb_err rc, ccb_classad **out, ccb_error *err,
			 const char *what)
{
	if (rc) {
		ccb_classad_free(ad);
		return ccb_error_set(err, rc, "building the %s ad: %s", what, ccb_strerror(rc));
	}
	*out = ad;
	return CCB_OK;
}

/* ---- REQUEST -------------------------------------------------------------- */

/* The policy part, FillInSecurityPolicyAd (H:condor_secman.cpp:535-651). */
static void put_policy(ccb_classad *ad, ccb_err *rc, const ccb__sec_policy *pol)
{
	char dur[16];

	put_str(ad, rc, "AuthMethods", pol->auth_methods);
	put_str(ad, rc, "TrustDomain", policy_trust_domain(pol));
	put_str(ad, rc, "IssuerKeys", policy_issuer_keys(pol));
	put_str(ad, rc, "CryptoMethods", pol->crypto_methods);
	put_str(ad, rc, "OutgoingNegotiation", ccb__sec_level_name(pol->negotiation));
	put_str(ad, rc, "Authentication", ccb__sec_level_name(pol->authentication));
	put_str(ad, rc, "AuthenticationNew", ccb__sec_level_name(pol->authentication_new));
	put_str(ad, rc, "Encryption", ccb__sec_level_name(pol->encryption));
	put_str(ad, rc, "Integrity", ccb__sec_level_name(pol->integrity));
	put_str(ad, rc, "Enact", "NO");
	/* "For historical reasons" a string (§2.1 trap). */
	snprintf(dur, sizeof dur, "%d", pol->session_duration);
	put_str(ad, rc, "SessionDuration", dur);
	put_int(ad, rc, "SessionLease", pol->session_lease);
}

ccb_err ccb__sec_build_request(const ccb__sec_request_params *p, ccb_classad **out,
			       ccb_error *err)
{
	ccb_classad *ad;
	ccb_err rc = CCB_OK;

	*out = NULL;
	if (!p || !p->policy || !p->ecdh_public_key || !*p->ecdh_public_key)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG,
				     "security request: policy and ECDH public key are required");
	if (!(ad = ccb_classad_new()))
		return ccb_error_set(err, CCB_ERR_NOMEM, "security request: out of memory");
	put_policy(ad, &rc, p->policy);
	put_str(ad, &rc, "Subsystem", p->subsystem ? p->subsystem : "TOOL");
	put_str(ad, &rc, "ParentUniqueID", p->parent_unique_id);
	put_int(ad, &rc, "ServerPid", p->pid ? p->pid : (int64_t)getpid());
	/* SecManStartCommand, H:condor_secman.cpp:1632-1651, 1766-1784, 3128-3147 */
	put_str(ad, &rc, "ECDHPublicKey", p->ecdh_public_key);
	put_str(ad, &rc, "NewSession", "YES");
	put_bool(ad, &rc, "NegotiatedSession", true);
	put_str(ad, &rc, "RemoteVersion",
		p->remote_version ? p->remote_version : ccb__sec_version_string());
	put_str(ad, &rc, "ServerCommandSock", p->server_command_sock);
	put_str(ad, &rc, "ConnectSinful", p->connect_sinful);
	put_int(ad, &rc, "Command", p->command);
	if (p->command == CCB_DC_AUTHENTICATE || p->command == CCB_DC_SEC_QUERY)
		put_int(ad, &rc, "AuthCommand", p->auth_command);
	return finish_ad(ad, rc, out, err, "security request");
}

/* ---- RESPONSE, server side ------------------------------------------------ */

/* atoi of a string attribute; 0 when absent or not a string
 * (H:condor_secman.cpp:916-934). */
static int duration_of(const ccb_classad *ad)
{
	const char *v;
	long n;

	if (!lookup_str(ad, "SessionDuration", &v))
		return 0;
	n = strtol(v, NULL, 10);
	return n > INT_MAX ? INT_MAX : n < INT_MIN ? INT_MIN : (int)n;
}

/* LookupInteger: integers, reals (truncated) and booleans count. */
static bool lookup_number(const ccb_classad *ad, const char *name, int *v)
{
	int64_t i;
	double d;
	bool b;

	switch (ccb_classad_type(ad, name)) {
	case CCB_VAL_INT:
		ccb_classad_get_int(ad, name, &i);
		*v = i > INT_MAX ? INT_MAX : i < INT_MIN ? INT_MIN : (int)i;
		return true;
	case CCB_VAL_REAL:
		ccb_classad_get_real(ad, name, &d);
		*v = d >= (double)INT_MAX ? INT_MAX : d <= (double)INT_MIN ? INT_MIN : (int)d;
		return true;
	case CCB_VAL_BOOL:
		ccb_classad_get_bool(ad, name, &b);
		*v = b;
		return true;
	default:
		return false;
	}
}

/* Authentication: AuthenticationNew when the client sent it, else the
 * old-style attribute on both sides (ReconcileSecurityAttribute, 709-773). */
static ccb__sec_action reconcile_auth(const ccb__sec_policy *srv, const ccb_classad *req,
				      bool *required, ccb__sec_level *cl, ccb__sec_level *sl)
{
	const char *v = NULL;
	bool use_alt = false;

	if (!lookup_str(req, "AuthenticationNew", &v))
		use_alt = lookup_str(req, "Authentication", &v);
	*cl = v && *v ? ccb__sec_level_parse(v) : CCB_SEC_NEVER;
	*sl = use_alt ? srv->authentication : srv->authentication_new;
	*required = *cl == CCB_SEC_REQUIRED || *sl == CCB_SEC_REQUIRED;
	return ccb__sec_reconcile_levels(*cl, *sl);
}

/* A missing (or empty) client attribute counts as NEVER. */
static ccb__sec_level client_level(const ccb_classad *req, const char *attr)
{
	const char *v;

	return lookup_str(req, attr, &v) && *v ? ccb__sec_level_parse(v) : CCB_SEC_NEVER;
}

static ccb_err fail_reason(ccb_error *err, const char *attr, ccb__sec_level cl, ccb__sec_level sl)
{
	return ccb_error_set(err, CCB_ERR_AUTH,
			     "security policies cannot be reconciled: client %s %s, server %s",
			     attr, ccb__sec_level_name(cl), ccb__sec_level_name(sl));
}

static ccb_err reconcile_actions(const ccb__sec_policy *srv, const ccb_classad *req,
				 ccb__sec_outcome *o, ccb_error *err)
{
	ccb__sec_level cl, sl;

	o->authentication = reconcile_auth(srv, req, &o->auth_required, &cl, &sl);
	if (o->authentication == CCB_SEC_ACT_FAIL)
		return fail_reason(err, "Authentication", cl, sl);
	cl = client_level(req, "Encryption");
	o->encryption = ccb__sec_reconcile_levels(cl, srv->encryption);
	if (o->encryption == CCB_SEC_ACT_FAIL)
		return fail_reason(err, "Encryption", cl, srv->encryption);
	cl = client_level(req, "Integrity");
	o->integrity = ccb__sec_reconcile_levels(cl, srv->integrity);
	if (o->integrity == CCB_SEC_ACT_FAIL)
		return fail_reason(err, "Integrity", cl, srv->integrity);
	return CCB_OK;
}

/* First item of a list, copied into buf ("" if none). */
static void first_item(const char *list, char *buf, size_t n)
{
	const char *p = list, *t;
	size_t len;

	buf[0] = '\0';
	if ((t = ccb__sec_list_next(&p, &len)))
		snprintf(buf, n, "%.*s", (int)len, t);
}

/* AuthMethodsList/AuthMethods and CryptoMethods(List) (850-913). */
static void reconcile_lists(ccb_classad *resp, ccb_err *rc, const ccb__sec_policy *srv,
			    const ccb_classad *req, ccb__sec_outcome *o)
{
	const char *cli;
	char first[64];
	char *list;

	if (srv->auth_methods && lookup_str(req, "AuthMethods", &cli)) {
		if (!(list = ccb__sec_reconcile_methods(cli, srv->auth_methods))) {
			*rc = CCB_ERR_NOMEM;
			return;
		}
		first_item(list, first, sizeof first);
		put_str(resp, rc, "AuthMethodsList", list);
		put_str(resp, rc, "AuthMethods", first);
		free(list);
	}
	if (srv->crypto_methods && lookup_str(req, "CryptoMethods", &cli)) {
		if (!(list = ccb__sec_reconcile_methods(cli, srv->crypto_methods))) {
			*rc = CCB_ERR_NOMEM;
			return;
		}
		put_str(resp, rc, "CryptoMethods", list);
		put_str(resp, rc, "CryptoMethodsList", list);
		/* AES-GCM always encrypts and checks integrity (907-913); the
		 * comparison of the first item is exact, as in C++. */
		if (o->authentication == CCB_SEC_ACT_YES && !strncmp(list, "AES", 3) &&
		    (list[3] == '\0' || list[3] == ',')) {
			o->encryption = CCB_SEC_ACT_YES;
			o->integrity = CCB_SEC_ACT_YES;
		}
		free(list);
	}
}

/* SessionDuration (string, min) and SessionLease (0 defers, min) (916-956). */
static void reconcile_session(ccb_classad *resp, ccb_err *rc, const ccb__sec_policy *srv,
			      const ccb_classad *req)
{
	int cd = duration_of(req), sd = srv->session_duration, cl;
	char buf[16];

	snprintf(buf, sizeof buf, "%d", cd < sd ? cd : sd);
	put_str(resp, rc, "SessionDuration", buf);
	if (lookup_number(req, "SessionLease", &cl)) {
		int sl = srv->session_lease;
		if (cl == 0)
			cl = sl;
		if (sl == 0)
			sl = cl;
		put_int(resp, rc, "SessionLease", cl < sl ? cl : sl);
	}
}

/* New session: pick the crypto method and answer the client's ECDH key
 * (daemon_command.cpp:961-1044). */
static ccb_err new_session_crypto(ccb_classad *resp, const ccb__sec_server_params *p,
				  const ccb_classad *req, ccb__sec_outcome *o, ccb_error *err)
{
	const char *peer, *list;
	ccb_err rc = CCB_OK;

	o->client_ecdh = lookup_str(req, "ECDHPublicKey", &peer) && *peer;
	if (o->authentication != CCB_SEC_ACT_YES && !o->client_ecdh) {
		if (ccb_classad_type(resp, "CryptoMethods") != CCB_VAL_ABSENT)
			rc = ccb_classad_remove(resp, "CryptoMethods");
		return rc ? ccb_error_set(err, rc, "building the security response") : CCB_OK;
	}
	if (!lookup_str(resp, "CryptoMethods", &list))
		return ccb_error_set(err, CCB_ERR_AUTH,
				     "no crypto method to agree on (client or server lists none)");
	o->crypto = ccb__sec_crypto_parse(list);
	o->key_len = ccb__sec_crypto_key_len(o->crypto);
	/* C++ carries on with no protocol; it cannot work once encryption or
	 * integrity is on, and the C++ client refuses it (secman.cpp:2128-2136). */
	if (o->crypto == CCB_SEC_CRYPTO_NONE &&
	    (o->encryption == CCB_SEC_ACT_YES || o->integrity == CCB_SEC_ACT_YES))
		return ccb_error_set(err, CCB_ERR_AUTH,
				     "no common crypto method (client \"%s\", server \"%s\")",
				     lookup_str(req, "CryptoMethods", &peer) ? peer : "",
				     p->policy->crypto_methods);
	if (o->client_ecdh)
		put_str(resp, &rc, "ECDHPublicKey", p->ecdh_public_key);
	put_str(resp, &rc, "CryptoMethods", ccb__sec_crypto_name(o->crypto));
	return rc ? ccb_error_set(err, rc, "building the security response") : CCB_OK;
}

ccb_err ccb__sec_reconcile(const ccb__sec_server_params *p, const ccb_classad *request,
			   ccb_classad **response, ccb__sec_outcome *out, ccb_error *err)
{
	const ccb__sec_policy *srv;
	ccb_classad *resp;
	ccb_err rc;

	*response = NULL;
	memset(out, 0, sizeof *out);
	if (!p || !p->policy || !request)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "security reconcile: bad arguments");
	srv = p->policy;
	if ((rc = reconcile_actions(srv, request, out, err)))
		return rc;
	if (!(resp = ccb_classad_new()))
		return ccb_error_set(err, CCB_ERR_NOMEM, "security response: out of memory");
	reconcile_lists(resp, &rc, srv, request, out);
	put_str(resp, &rc, "Authentication", ccb__sec_action_name(out->authentication));
	if (out->authentication == CCB_SEC_ACT_YES && !out->auth_required)
		put_bool(resp, &rc, "AuthRequired", false);
	put_str(resp, &rc, "Encryption", ccb__sec_action_name(out->encryption));
	put_str(resp, &rc, "Integrity", ccb__sec_action_name(out->integrity));
	reconcile_session(resp, &rc, srv, request);
	put_str(resp, &rc, "Enact", "YES");
	/* UpdateAuthenticationMetadata on the result plus the server's own
	 * TrustDomain/IssuerKeys (958-968). */
	put_str(resp, &rc, "TrustDomain", srv->trust_domain);
	put_str(resp, &rc, "IssuerKeys", policy_issuer_keys(srv));
	put_bool(resp, &rc, "NegotiatedSession", true);
	put_str(resp, &rc, "RemoteVersion",
		p->remote_version ? p->remote_version : ccb__sec_version_string());
	if (rc) {
		ccb_classad_free(resp);
		return ccb_error_set(err, rc, "building the security response: %s", ccb_strerror(rc));
	}
	out->new_session = ccb__sec_lookup_action(request, "NewSession") == CCB_SEC_ACT_YES;
	out->send_response = ccb__sec_lookup_action(request, "Enact") == CCB_SEC_ACT_NO;
	out->peer_version = peer_version_of(request);
	if (out->new_session && (rc = new_session_crypto(resp, p, request, out, err))) {
		ccb_classad_free(resp);
		return rc;
	}
	*response = resp;
	return CCB_OK;
}

/* ---- RESPONSE, client side ------------------------------------------------ */

static ccb_err response_action(const ccb_classad *resp, const char *attr, ccb__sec_action *a,
			       ccb_error *err)
{
	*a = ccb__sec_lookup_action(resp, attr);
	if (*a == CCB_SEC_ACT_UNDEFINED)
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "security response lacks %s", attr);
	if (*a == CCB_SEC_ACT_INVALID)
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "security response has unparsable %s",
				     attr);
	/* C++ never sends FAIL (it closes instead); treat it as a refusal. */
	if (*a == CCB_SEC_ACT_FAIL)
		return ccb_error_set(err, CCB_ERR_AUTH, "server refused the security policy (%s)",
				     attr);
	return CCB_OK;
}

/* With Encryption exactly "YES" the first CryptoMethods entry (text up to
 * the first comma) must be one we support (H:condor_secman.cpp:2121-2145). */
static ccb_err check_crypto(const ccb_classad *resp, ccb_error *err)
{
	const char *enc, *list;
	char first[64];
	char *filtered;
	bool ok;

	if (!lookup_str(resp, "Encryption", &enc) || strcmp(enc, "YES") != 0)
		return CCB_OK;
	if (!lookup_str(resp, "CryptoMethods", &list) || !*list)
		return ccb_error_set(err, CCB_ERR_PROTOCOL,
				     "server requires encryption but provided no crypto method "
				     "(no mutually supported method?)");
	snprintf(first, sizeof first, "%.*s", (int)strcspn(list, ","), list);
	if (!(filtered = ccb__sec_filter_crypto_methods(first)))
		return ccb_error_set(err, CCB_ERR_NOMEM, "security response: out of memory");
	ok = *filtered != '\0';
	free(filtered);
	if (!ok)
		return ccb_error_set(err, CCB_ERR_UNSUPPORTED,
				     "server suggested a crypto method we do not support (%s)", first);
	return CCB_OK;
}

ccb_err ccb__sec_parse_response(const ccb_classad *resp, ccb__sec_negotiated *out,
				ccb_error *err)
{
	const char *list;
	bool b;
	ccb_err rc;

	memset(out, 0, sizeof *out);
	if ((rc = check_crypto(resp, err)) ||
	    (rc = response_action(resp, "Authentication", &out->authentication, err)) ||
	    (rc = response_action(resp, "Encryption", &out->encryption, err)) ||
	    (rc = response_action(resp, "Integrity", &out->integrity, err)))
		return rc;
	/* Absent means required (H:condor_secman.cpp:2240-2249). */
	out->auth_required = ccb_classad_get_bool(resp, "AuthRequired", &b) != CCB_OK || b;
	if (!lookup_str(resp, "AuthMethodsList", &out->auth_methods))
		out->auth_methods = NULL;
	if (lookup_str(resp, "CryptoMethods", &list))
		out->crypto = ccb__sec_crypto_parse(list);
	out->key_len = ccb__sec_crypto_key_len(out->crypto);
	if (!lookup_str(resp, "ECDHPublicKey", &out->server_ecdh) || !*out->server_ecdh)
		out->server_ecdh = NULL;
	if (!lookup_str(resp, "TrustDomain", &out->trust_domain))
		out->trust_domain = NULL;
	if (!lookup_str(resp, "IssuerKeys", &out->issuer_keys))
		out->issuer_keys = NULL;
	out->peer_version = peer_version_of(resp);
	out->session_duration = duration_of(resp);
	out->has_lease = lookup_number(resp, "SessionLease", &out->session_lease);
	return CCB_OK;
}

/* ---- POST-AUTH ------------------------------------------------------------ */

/* H:src/condor_daemon_core.V6/daemon_command.cpp:1689-1736 */
ccb_err ccb__sec_build_postauth(const ccb__sec_postauth *p, ccb_classad **out, ccb_error *err)
{
	ccb_classad *ad;
	ccb_err rc = CCB_OK;

	*out = NULL;
	if (!p || !p->sid || !*p->sid || !p->return_code)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "post-auth ad: Sid and ReturnCode needed");
	if (!(ad = ccb_classad_new()))
		return ccb_error_set(err, CCB_ERR_NOMEM, "post-auth ad: out of memory");
	put_str(ad, &rc, "User", p->user);
	if (p->tried_authentication)
		put_bool(ad, &rc, "TriedAuthentication", true);
	put_str(ad, &rc, "Sid", p->sid);
	put_str(ad, &rc, "ValidCommands", p->valid_commands ? p->valid_commands : "");
	put_str(ad, &rc, "ReturnCode", p->return_code);
	return finish_ad(ad, rc, out, err, "post-auth");
}

ccb_err ccb__sec_parse_postauth(const ccb_classad *ad, ccb__sec_postauth *out, ccb_error *err)
{
	bool b;

	memset(out, 0, sizeof *out);
	if (!lookup_str(ad, "ReturnCode", &out->return_code) || !*out->return_code)
		out->return_code = "AUTHORIZED"; /* pre-8.3.6 servers send none */
	if (!lookup_str(ad, "User", &out->user))
		out->user = NULL;
	if (strcmp(out->return_code, "AUTHORIZED") != 0)
		return ccb_error_set(err, CCB_ERR_NOT_AUTHORIZED, "server answered \"%s\" for user %s",
				     out->return_code, out->user ? out->user : "(none)");
	if (!lookup_str(ad, "Sid", &out->sid) || !*out->sid)
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "post-auth ad lacks the session id (Sid)");
	if (!lookup_str(ad, "ValidCommands", &out->valid_commands) || !*out->valid_commands)
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "post-auth ad lacks ValidCommands");
	out->tried_authentication = ccb_classad_get_bool(ad, "TriedAuthentication", &b) == CCB_OK && b;
	return CCB_OK;
}
