/*
 * Authentication and crypto method names and lists (security-handshake.md
 * §1, §2.1): names to bits, the lists a C++ peer offers, the server's
 * reconciliation of two lists.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "security/policy.h"
#include "security/policy_internal.h"
#include "util/util.h"

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
bool ccb__sec_list_has_exact(const char *list, const char *name)
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
