/*
 * CCB contacts (plain and nested), contact lists, CCB_ADDRESS broker lists
 * and connect ids. Expected strings come from the wire spec ccb-protocol.md
 * §3, sinful.md §7/§10 and the captures in test/vectors.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccbt.h"
#include "ccb/addr.h"
#include "addr/addr_internal.h"

#define CHECK_STR(got, want) check_str((got), (want), __FILE__, __LINE__)

static void check_str(const char *got, const char *want, const char *file, int line)
{
	if (got && want && strcmp(got, want) == 0) {
		CU_PASS("string matches");
		return;
	}
	fprintf(stderr, "\n%s:%d:\n  got  \"%s\"\n  want \"%s\"\n", file, line,
		got ? got : "(null)", want ? want : "(null)");
	CU_FAIL("string mismatch");
}

/* The register reply's CCBID (S1-claimtobe-plain, conn 1, message 10). */
#define CAPTURED_BROKER "127.0.0.1:19618?addrs=127.0.0.1-19618&alias=vm"
#define CAPTURED_CONTACT CAPTURED_BROKER "#1"

/* ---- building --------------------------------------------------------------- */

static void test_make(void)
{
	static const struct {
		const char *broker;
		uint64_t id;
		const char *want;
	} cases[] = {
		{ CAPTURED_BROKER, 1, CAPTURED_CONTACT },
		{ "<" CAPTURED_BROKER ">", 1, CAPTURED_CONTACT },
		{ "128.105.1.2:9618", 123, "128.105.1.2:9618#123" },
		{ "[2001:db8::1]:9618", 7, "[2001:db8::1]:9618#7" },
		{ "cm.example.org", 0, "cm.example.org#0" },
		{ "1.2.3.4:9618", UINT64_MAX, "1.2.3.4:9618#18446744073709551615" },
		/* nested: a contact as the broker adds a hop (ccb-protocol.md §3.2) */
		{ "198.51.100.10:9618#5", 42, "198.51.100.10:9618#5#42" },
	};
	static const char *const bad[] = {
		"", "<>", "a b", "1.2.3.4:9618?=x", "1.2.3.4:99999", "1.2.3.4:9618#x",
		"#5", "1.2.3.4:9618#",
	};
	ccb_error e = { 0 };
	char *out = NULL;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		CU_ASSERT_EQUAL(ccb_contact_make(cases[i].broker, cases[i].id, &out, &e), CCB_OK);
		CHECK_STR(out, cases[i].want);
		ccb_free(out);
		out = NULL;
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (ccb_contact_make(bad[i], 1, &out, &e) != CCB_ERR_INVALID_ARG || out) {
			fprintf(stderr, "\naccepted bad broker \"%s\"\n", bad[i]);
			CU_FAIL("bad broker accepted");
		}
		CU_ASSERT_EQUAL(e.code, CCB_ERR_INVALID_ARG);
	}
	CU_ASSERT_EQUAL(ccb_contact_make(NULL, 1, &out, &e), CCB_ERR_INVALID_ARG);
}

/* ---- splitting -------------------------------------------------------------- */

static void check_split(const char *contact, const char *broker, const char *route,
	size_t n_ids, const char *const *ids)
{
	ccb_contact c;
	ccb_error e = { 0 };
	char *r;

	if (ccb_contact_split(contact, &c, &e) != CCB_OK) {
		fprintf(stderr, "\nsplit \"%s\": %s\n", contact, e.detail);
		CU_FAIL("split failed");
		return;
	}
	CHECK_STR(c.broker, broker);
	CU_ASSERT_EQUAL(c.n_ids, n_ids);
	for (size_t i = 0; i < n_ids && i < c.n_ids; i++)
		CHECK_STR(c.ids[i], ids[i]);
	CU_ASSERT_PTR_NULL(c.ids[c.n_ids]);
	r = ccb__contact_route(&c);
	CHECK_STR(r, route);
	free(r);
	ccb_contact_clear(&c);
	CU_ASSERT_PTR_NULL(c.broker);
	CU_ASSERT_PTR_NULL(c.ids);
}

static void test_split(void)
{
	static const char *const one[] = { "1" };
	static const char *const id123[] = { "123" };
	static const char *const nested[] = { "5", "42" };
	static const char *const deep[] = { "5", "42", "7" };
	static const char *const big[] = { "18446744073709551615" };

	check_split(CAPTURED_CONTACT, CAPTURED_BROKER, "", 1, one);
	check_split("128.105.1.2:9618?addrs=128.105.1.2-9618&alias=cm.example.org"
		"&sock=collector#123",
		"128.105.1.2:9618?addrs=128.105.1.2-9618&alias=cm.example.org&sock=collector",
		"", 1, id123);
	/* sinful.md §10.6: entry broker, CCBID "5", CCBRoute "42" */
	check_split("198.51.100.10:9618#5#42", "198.51.100.10:9618", "42", 2, nested);
	check_split("198.51.100.10:9618#5#42#7", "198.51.100.10:9618", "42 7", 3, deep);
	/* Go's bracketed broker (G:addresses/sinful.go:109-142) */
	check_split("<1.2.3.4:9618?sock=collector>#123", "1.2.3.4:9618?sock=collector", "",
		1, id123);
	check_split("[::1]:9618#1", "[::1]:9618", "", 1, one);
	check_split("cm.example.org#18446744073709551615", "cm.example.org", "", 1, big);
}

/* Our broker's contacts now carry ?addrs= as the collector's do
 * ("127.0.0.1:19661?addrs=127.0.0.1-19661#1"); the bare form of older
 * brokers and golang-ccb ("127.0.0.1:19662#1") must keep working: both name
 * the same broker host and port, and both survive a trip through a
 * sinful's CCBID (URL-encoded there, sinful.md §3, §7). */
static void test_both_broker_forms(void)
{
	static const char *const forms[] = {
		"127.0.0.1:19661?addrs=127.0.0.1-19661#1",
		"127.0.0.1:19661#1",
	};
	static const char *const encoded[] = {
		"<10.0.0.7:4000?CCBID=127.0.0.1:19661%3faddrs%3d127.0.0.1-19661#1&noUDP>",
		"<10.0.0.7:4000?CCBID=127.0.0.1:19661#1&noUDP>",
	};

	for (size_t i = 0; i < 2; i++) {
		ccb_contact c = { 0 };
		ccb_sinful *b = NULL, *s = NULL;
		char **v = NULL, *out = NULL;
		size_t n = 0;

		CU_ASSERT_EQUAL_FATAL(ccb_contact_split(forms[i], &c, NULL), CCB_OK);
		CU_ASSERT_EQUAL_FATAL(ccb_sinful_parse_address(c.broker, &b, NULL), CCB_OK);
		CHECK_STR(ccb_sinful_host(b), "127.0.0.1");
		CU_ASSERT_EQUAL(ccb_sinful_port(b), 19661);
		CU_ASSERT(c.n_ids == 1 && !strcmp(c.ids[0], "1"));
		ccb_sinful_free(b);
		ccb_contact_clear(&c);

		CU_ASSERT_EQUAL_FATAL(ccb_sinful_new("10.0.0.7", 4000, &s, NULL), CCB_OK);
		CU_ASSERT_EQUAL(ccb_sinful_set_ccb_contacts(s, &forms[i], 1, NULL), CCB_OK);
		CU_ASSERT_EQUAL(ccb_sinful_set_param(s, CCB_SINFUL_NOUDP, "", NULL), CCB_OK);
		out = ccb__sinful_format(s);
		CHECK_STR(out, encoded[i]);
		ccb_sinful_free(s);
		s = NULL;
		CU_ASSERT_EQUAL_FATAL(ccb_sinful_parse(out, &s, NULL), CCB_OK);
		CU_ASSERT_EQUAL(ccb_sinful_ccb_contacts(s, &v, &n, NULL), CCB_OK);
		CU_ASSERT(n == 1 && !strcmp(v[0], forms[i]));
		ccb_strv_free(v);
		ccb_sinful_free(s);
		ccb_free(out);
	}
}

static void test_split_bad(void)
{
	static const char *const bad[] = {
		"", "1.2.3.4:9618", "#5", "1.2.3.4:9618#", "1.2.3.4:9618#5#",
		"1.2.3.4:9618##5", "1.2.3.4:9618#x", "1.2.3.4:9618#-1", "1.2.3.4:9618#+1",
		"1.2.3.4:9618#18446744073709551616", "1.2.3.4:9618#123456789012345678901",
		"1.2.3.4:9618#5 6", " 1.2.3.4:9618#5", "1.2.3.4:9618#5\n",
		"<1.2.3.4:9618#5", "<1.2.3.4:9618>5", "<1.2.3.4:9618>", "<>#5",
		"1.2.3.4:99999#5", "1.2.3.4:9618?a=%zz#5", "1.2.3.4:9618>#5",
		"{[ p=\"primary\"; ]}#5", "1.2.3.4:9618#0001", "1.2.3.4:9618#5#007",
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ccb_contact c = { (char *)"junk", NULL, 9 };
		ccb_error e = { 0 };
		ccb_err rc = ccb_contact_split(bad[i], &c, &e);

		if (rc == CCB_OK || c.broker || c.ids || c.n_ids || !e.detail[0]) {
			fprintf(stderr, "\n\"%s\": rc %d \"%s\"\n", bad[i], rc, e.detail);
			CU_FAIL("bad contact accepted or output not cleared");
		}
		ccb_contact_clear(&c);
	}
}

/* Strict CCBIDs (issue 15): digits only, no leading zero, below 2^64. */
static void test_ccbid_parse(void)
{
	static const struct {
		const char *text;
		uint64_t v;
	} good[] = {{"0", 0}, {"1", 1}, {"42", 42}, {"18446744073709551615", UINT64_MAX}};
	static const struct {
		const char *text, *why;
	} bad[] = {
		{"", "is empty"},
		{"0001", "has a leading zero"},
		{"00", "has a leading zero"},
		{"18446744073709551616", "does not fit in 64 bits"},
		{"99999999999999999999", "does not fit in 64 bits"},
		{"123456789012345678901234567890", "does not fit in 64 bits"},
		{"1x", "not all decimal digits"},
		{"-1", "not all decimal digits"},
		{"+1", "not all decimal digits"},
		{" 1", "not all decimal digits"},
		{"1 ", "not all decimal digits"},
		{"42#17", "not all decimal digits"},
	};

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		uint64_t v = 7;
		CU_ASSERT_EQUAL(ccb_ccbid_parse(good[i].text, &v, NULL), CCB_OK);
		CU_ASSERT_EQUAL(v, good[i].v);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint64_t v = 7;
		ccb_error e = {0};
		CU_ASSERT_EQUAL(ccb_ccbid_parse(bad[i].text, &v, &e), CCB_ERR_PARSE);
		CU_ASSERT_EQUAL(v, 7);
		CU_ASSERT_PTR_NOT_NULL(strstr(e.detail, bad[i].why));
		CU_ASSERT_PTR_NOT_NULL(strstr(e.detail, "CCBID"));
	}
	CU_ASSERT_EQUAL(ccb_ccbid_parse(NULL, NULL, NULL), CCB_ERR_INVALID_ARG);
	/* Long garbage is quoted cut short. */
	{
		char big[200];
		ccb_error e = {0};
		memset(big, '9', sizeof big - 1);
		big[sizeof big - 1] = '\0';
		CU_ASSERT_EQUAL(ccb_ccbid_parse(big, NULL, &e), CCB_ERR_PARSE);
		CU_ASSERT(strlen(e.detail) < 120);
	}
}

/* ---- contacts from a sinful -------------------------------------------------- */

static char **contacts_of(const char *sinful, size_t *n)
{
	ccb_sinful *s = NULL;
	char **v = NULL;

	CU_ASSERT_EQUAL(ccb_sinful_parse(sinful, &s, NULL), CCB_OK);
	if (!s)
		return NULL;
	CU_ASSERT_EQUAL(ccb_sinful_ccb_contacts(s, &v, n, NULL), CCB_OK);
	ccb_sinful_free(s);
	return v;
}

static void test_sinful_contacts(void)
{
	size_t n = 99;
	char **v;
	ccb_contact c;
	ccb_sinful *b = NULL;

	/* captured (S6 notes): one contact whose broker carries parameters */
	v = contacts_of("<127.0.0.1:19620?CCBID=127.0.0.1:19618%3faddrs%3d127.0.0.1-19618"
		"%26alias%3dvm#1&PrivNet=poolB.private&addrs=127.0.0.1-19620&alias=vm&noUDP"
		"&sock=master_29761_7690>", &n);
	CU_ASSERT_EQUAL(n, 1);
	if (v && n == 1) {
		CHECK_STR(v[0], CAPTURED_CONTACT);
		CU_ASSERT_PTR_NULL(v[1]);
		CU_ASSERT_EQUAL_FATAL(ccb_contact_split(v[0], &c, NULL), CCB_OK);
		/* the broker is dialed as <127.0.0.1:19618?...> (S1, conn 6) */
		CU_ASSERT_EQUAL(ccb_sinful_parse_address(c.broker, &b, NULL), CCB_OK);
		if (b) {
			char *f = ccb__sinful_format(b);

			CHECK_STR(f, "<" CAPTURED_BROKER ">");
			free(f);
		}
		ccb_sinful_free(b);
		ccb_contact_clear(&c);
	}
	ccb_strv_free(v);

	/* sinful.md §10.5: two brokers */
	v = contacts_of("<10.0.0.7:34567?CCBID=128.105.1.2:9618#123%20128.105.1.3:9618#77"
		"&PrivNet=node7.cluster.local&addrs=10.0.0.7-34567&noUDP>", &n);
	CU_ASSERT_EQUAL(n, 2);
	if (v && n == 2) {
		CHECK_STR(v[0], "128.105.1.2:9618#123");
		CHECK_STR(v[1], "128.105.1.3:9618#77");
	}
	ccb_strv_free(v);

	/* Go's lower-case key is read too */
	v = contacts_of("<10.0.0.7:9618?ccbid=128.105.1.2:9618#5#42>", &n);
	CU_ASSERT_EQUAL(n, 1);
	if (v && n == 1)
		CHECK_STR(v[0], "128.105.1.2:9618#5#42");
	ccb_strv_free(v);

	/* no CCBID: an empty, freeable vector */
	v = contacts_of("<10.0.0.7:9618?alias=x>", &n);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_PTR_NOT_NULL(v);
	if (v)
		CU_ASSERT_PTR_NULL(v[0]);
	ccb_strv_free(v);
}

static void test_set_contacts(void)
{
	static const char *const two[] = { "128.105.1.2:9618#123", "128.105.1.3:9618#77" };
	static const char *const with_params[] = { CAPTURED_CONTACT };
	static const char *const spaced[] = { "a:1#1 b:2#2" };
	ccb_sinful *s = NULL;
	char *out;

	CU_ASSERT_EQUAL_FATAL(ccb_sinful_parse("<10.0.0.7:34567?PrivNet=node7.cluster.local"
		"&addrs=10.0.0.7-34567&noUDP>", &s, NULL), CCB_OK);
	CU_ASSERT_EQUAL(ccb_sinful_set_ccb_contacts(s, two, 2, NULL), CCB_OK);
	out = ccb__sinful_format(s);
	CHECK_STR(out, "<10.0.0.7:34567?CCBID=128.105.1.2:9618#123%20128.105.1.3:9618#77"
		"&PrivNet=node7.cluster.local&addrs=10.0.0.7-34567&noUDP>");
	ccb_free(out);

	CU_ASSERT_EQUAL(ccb_sinful_set_ccb_contacts(s, with_params, 1, NULL), CCB_OK);
	out = ccb__sinful_format(s);
	CHECK_STR(out, "<10.0.0.7:34567?CCBID=127.0.0.1:19618%3faddrs%3d127.0.0.1-19618"
		"%26alias%3dvm#1&PrivNet=node7.cluster.local&addrs=10.0.0.7-34567&noUDP>");
	ccb_free(out);

	CU_ASSERT_EQUAL(ccb_sinful_set_ccb_contacts(s, spaced, 1, NULL), CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(ccb_sinful_set_ccb_contacts(s, NULL, 0, NULL), CCB_OK);
	CU_ASSERT_PTR_NULL(ccb_sinful_ccbid(s));
	ccb_sinful_free(s);
}

/* ---- lists ------------------------------------------------------------------- */

static void check_tokens(char **v, size_t n, const char *const *want, size_t nwant)
{
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_EQUAL(n, nwant);
	for (size_t i = 0; i < n && i < nwant; i++)
		CHECK_STR(v[i], want[i]);
	CU_ASSERT_PTR_NULL(v[n]);
}

static void test_contact_list(void)
{
	static const char *const want[] = { "a:1#1", "b:2#2#3", "c:3#4" };
	char **v = NULL;
	size_t n = 0;
	char *joined = NULL;

	CU_ASSERT_EQUAL(ccb_contact_list_split("  a:1#1   b:2#2#3\tc:3#4\r\n", &v, &n, NULL),
		CCB_OK);
	check_tokens(v, n, want, 3);
	CU_ASSERT_EQUAL(ccb_contact_list_join((const char *const *)v, n, &joined, NULL), CCB_OK);
	CHECK_STR(joined, "a:1#1 b:2#2#3 c:3#4");
	ccb_free(joined);
	ccb_strv_free(v);

	/* commas are not separators here */
	CU_ASSERT_EQUAL(ccb_contact_list_split("a:1#1,b:2#2", &v, &n, NULL), CCB_OK);
	CU_ASSERT_EQUAL(n, 1);
	ccb_strv_free(v);

	CU_ASSERT_EQUAL(ccb_contact_list_split(" \t ", &v, NULL, NULL), CCB_OK);
	CU_ASSERT_PTR_NULL(v[0]);
	ccb_strv_free(v);

	CU_ASSERT_EQUAL(ccb_contact_list_join(NULL, 0, &joined, NULL), CCB_OK);
	CHECK_STR(joined, "");
	ccb_free(joined);
}

/* ccb-protocol.md §3.3 */
static void test_broker_list(void)
{
	static const char *const want[] = {
		"cm1.example.org", "cm2.example.org:9618", "<1.2.3.4:9618?sock=collector>",
		"[::1]:9618", "5.6.7.8", "cm1.example.org",
	};
	char **v = NULL;
	size_t n = 0;
	char *huge;
	ccb_error e = { 0 };

	CU_ASSERT_EQUAL(ccb_broker_list_split(",cm1.example.org, cm2.example.org:9618\t"
		"<1.2.3.4:9618?sock=collector>,,\r\n  [::1]:9618 5.6.7.8,cm1.example.org,",
		&v, &n, NULL), CCB_OK);
	check_tokens(v, n, want, 6);
	ccb_strv_free(v);

	CU_ASSERT_EQUAL(ccb_broker_list_split("127.0.0.1:19618", &v, &n, NULL), CCB_OK);
	CU_ASSERT_EQUAL(n, 1);
	if (n == 1)
		CHECK_STR(v[0], "127.0.0.1:19618");
	ccb_strv_free(v);

	CU_ASSERT_EQUAL(ccb_broker_list_split("", &v, &n, NULL), CCB_OK);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_PTR_NULL(v[0]);
	ccb_strv_free(v);

	CU_ASSERT_EQUAL(ccb_broker_list_split(" , \t,\n", &v, &n, NULL), CCB_OK);
	CU_ASSERT_EQUAL(n, 0);
	ccb_strv_free(v);

	huge = malloc(CCB_ADDR_MAX_TEXT + 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(huge);
	memset(huge, 'a', CCB_ADDR_MAX_TEXT + 1);
	huge[CCB_ADDR_MAX_TEXT + 1] = '\0';
	v = (char **)&v;
	CU_ASSERT_EQUAL(ccb_broker_list_split(huge, &v, &n, &e), CCB_ERR_PARSE);
	CU_ASSERT_PTR_NULL(v);
	CU_ASSERT_EQUAL(ccb_contact_list_split(huge, &v, &n, &e), CCB_ERR_PARSE);
	free(huge);

	CU_ASSERT_EQUAL(ccb_broker_list_split(NULL, &v, &n, &e), CCB_ERR_INVALID_ARG);
}

/* ---- connect ids ------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

static void test_connect_id(void)
{
	enum { N = 2000 };
	char (*ids)[CCB_CONNECT_ID_SIZE] = calloc(N, CCB_CONNECT_ID_SIZE);
	ccb_error e = { 0 };

	CU_ASSERT_PTR_NOT_NULL_FATAL(ids);
	for (size_t i = 0; i < N; i++) {
		CU_ASSERT_EQUAL(ccb_connect_id_new(ids[i], &e), CCB_OK);
		CU_ASSERT_EQUAL(strlen(ids[i]), 40);
		CU_ASSERT_EQUAL(strspn(ids[i], "0123456789abcdef"), 40);
		CU_ASSERT_TRUE(ccb_connect_id_valid(ids[i]));
	}
	qsort(ids, N, CCB_CONNECT_ID_SIZE, cmp_str);
	for (size_t i = 1; i < N; i++)
		CU_ASSERT_NOT_EQUAL(strcmp(ids[i - 1], ids[i]), 0);
	free(ids);

	CU_ASSERT_TRUE(ccb_connect_id_valid("0123456789abcdef0123456789abcdef01234567"));
	CU_ASSERT_FALSE(ccb_connect_id_valid("0123456789ABCDEF0123456789abcdef01234567"));
	CU_ASSERT_FALSE(ccb_connect_id_valid("0123456789abcdef0123456789abcdef0123456"));
	CU_ASSERT_FALSE(ccb_connect_id_valid("0123456789abcdef0123456789abcdef012345678"));
	CU_ASSERT_FALSE(ccb_connect_id_valid("0123456789abcdef0123456789abcdef0123456g"));
	CU_ASSERT_FALSE(ccb_connect_id_valid(""));
	CU_ASSERT_FALSE(ccb_connect_id_valid(NULL));
	CU_ASSERT_EQUAL(ccb_connect_id_new(NULL, &e), CCB_ERR_INVALID_ARG);
}

/* ccb_contact_route(): ccb_err, char **out released with ccb_free(). */
static void test_public_route(void)
{
	ccb_contact c = {0};
	ccb_error err = {0};
	char *route = NULL;

	CU_ASSERT_EQUAL_FATAL(ccb_contact_split("10.0.0.1:9618#5#42#7", &c, &err), CCB_OK);
	CU_ASSERT_EQUAL(ccb_contact_route(&c, &route, &err), CCB_OK);
	CU_ASSERT_STRING_EQUAL(route, "42 7");
	ccb_free(route);
	CU_ASSERT_EQUAL(ccb_contact_route(NULL, &route, &err), CCB_ERR_INVALID_ARG);
	CU_ASSERT_PTR_NULL(route);
	ccb_contact_clear(&c);
}

static const ccbt_test tests[] = {
	{ "public route", test_public_route },
	{ "both broker contact forms (with and without addrs)", test_both_broker_forms },
	{ "make contact", test_make },
	{ "split contact", test_split },
	{ "split bad contacts", test_split_bad },
	{ "strict CCBID parse", test_ccbid_parse },
	{ "contacts of a sinful", test_sinful_contacts },
	{ "set contacts", test_set_contacts },
	{ "contact list", test_contact_list },
	{ "broker list", test_broker_list },
	{ "connect id", test_connect_id },
	{ NULL, NULL },
};

static const ccbt_suite suites[] = {
	{ "addr", tests },
	{ NULL, NULL },
};

int main(void)
{
	return ccbt_run(suites);
}
