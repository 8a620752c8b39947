/*
 * Sinful strings: golden strings from the wire spec sinful.md and the
 * captures in test/vectors, round trips, normalization, building,
 * the addrs parameter and a table of malformed input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ccbt.h"
#include "ccb/addr.h"
#include "addr/addr_internal.h"

/* Compare against a literal and show both on mismatch. */
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

static ccb_sinful *parse_ok(const char *text)
{
	ccb_sinful *s = NULL;
	ccb_error e = { 0 };
	ccb_err rc = ccb_sinful_parse(text, &s, &e);

	if (rc != CCB_OK)
		fprintf(stderr, "\nparse \"%s\" failed: %s\n", text, e.detail);
	CU_ASSERT_EQUAL(rc, CCB_OK);
	return s;
}

/* parse, print, compare with `want` (NULL: the input itself) */
static void roundtrip(const char *text, const char *want)
{
	ccb_sinful *s = parse_ok(text);
	char *out;

	if (!s)
		return;
	out = ccb__sinful_format(s);
	CHECK_STR(out, want ? want : text);
	ccb_free(out);
	ccb_sinful_free(s);
}

/* ---- golden strings ------------------------------------------------------- */

/* Captured from HTCondor 25.14 (testvectors S1, S6; sinful.md §10.12). */
#define S1_MASTER "<127.0.0.1:33781?CCBID=127.0.0.1:19618%3faddrs%3d127.0.0.1-19618" \
	"%26alias%3dvm#1&PrivNet=poolB.private&addrs=127.0.0.1-33781&alias=vm>"
#define S6_MASTER "<127.0.0.1:19620?CCBID=127.0.0.1:19618%3faddrs%3d127.0.0.1-19618" \
	"%26alias%3dvm#1&PrivNet=poolB.private&addrs=127.0.0.1-19620&alias=vm&noUDP" \
	"&sock=master_29761_7690>"

static const char *const captured[] = {
	S1_MASTER,
	S6_MASTER,
	"<127.0.0.1:19620?CCBID=127.0.0.1:19618%3faddrs%3d127.0.0.1-19618%26alias%3dvm#1"
		"&PrivNet=poolB.private&addrs=127.0.0.1-19620&alias=vm&noUDP>",
	"<127.0.0.1:19620?PrivNet=poolB.private&addrs=127.0.0.1-19620&alias=vm&noUDP"
		"&sock=master_29761_7690>",
	"<127.0.0.1:0?alias=vm&sock=master_29761_7690>",
	"<127.0.0.1:39771?alias=vm>",
	"<127.0.0.1:34641?addrs=127.0.0.1-34641&alias=vm>",
	"<127.0.0.1:19618?addrs=127.0.0.1-19618&alias=vm>",
	"<127.0.0.1:19618>",
	NULL,
};

/* Constructed examples of sinful.md §10, already in canonical form. */
static const char *const spec_examples[] = {
	"<192.168.1.5:9618>",
	"<192.168.1.5:9618?addrs=192.168.1.5-9618+[2001-db8--5]-9618"
		"&alias=submit.example.org&noUDP&sock=schedd_12345_ab12>",
	"<128.105.1.2:9618?addrs=128.105.1.2-9618&alias=cm.example.org&sock=collector>",
	"<10.0.0.7:34567?CCBID=128.105.1.2:9618%3faddrs%3d128.105.1.2-9618%26alias"
		"%3dcm.example.org%26sock%3dcollector#123&PrivNet=node7.cluster.local"
		"&addrs=10.0.0.7-34567>",
	"<10.0.0.7:34567?CCBID=128.105.1.2:9618#123%20128.105.1.3:9618#77"
		"&PrivNet=node7.cluster.local&addrs=10.0.0.7-34567&noUDP>",
	"<10.1.2.3:40000?CCBID=198.51.100.10:9618#5#42&PrivNet=wn17.hpc.example"
		"&addrs=10.1.2.3-40000&noUDP>",
	"<128.105.20.4:9618?PrivAddr=%3c10.0.0.4:9618%3e&PrivNet=lab.example&noUDP>",
	"<10.0.0.7:9618?CCBID=128.105.1.2:9618#123&PrivNet=node7.cluster.local"
		"&addrs=10.0.0.7-9618&noUDP&sock=startd_4242_9f1c>",
	"<10.0.0.7:0?sock=schedd_4242_9f1c>",
	"<[2001:db8::1]:9618>",
	"<[::1]:9618?addrs=[--1]-9618>",
	"<cm.example.org:9618>",
	"<cm.example.org>",
	NULL,
};

static void test_captured_roundtrip(void)
{
	for (size_t i = 0; captured[i]; i++)
		roundtrip(captured[i], NULL);
}

static void test_spec_examples_roundtrip(void)
{
	for (size_t i = 0; spec_examples[i]; i++)
		roundtrip(spec_examples[i], NULL);
}

static void test_captured_fields(void)
{
	ccb_sinful *s = parse_ok(S6_MASTER);

	if (!s)
		return;
	CHECK_STR(ccb_sinful_host(s), "127.0.0.1");
	CU_ASSERT_EQUAL(ccb_sinful_port(s), 19620);
	/* the value is %-decoded once: the contact as the broker stamped it */
	CHECK_STR(ccb_sinful_ccbid(s), "127.0.0.1:19618?addrs=127.0.0.1-19618&alias=vm#1");
	CHECK_STR(ccb_sinful_private_network(s), "poolB.private");
	CHECK_STR(ccb_sinful_param(s, "addrs"), "127.0.0.1-19620");
	CHECK_STR(ccb_sinful_alias(s), "vm");
	CHECK_STR(ccb_sinful_shared_port_id(s), "master_29761_7690");
	CHECK_STR(ccb_sinful_param(s, "noUDP"), "");
	CU_ASSERT_TRUE(ccb_sinful_no_udp(s));
	CU_ASSERT_PTR_NULL(ccb_sinful_private_addr(s));
	/* lookup is case-sensitive except for the Go spelling of CCBID */
	CU_ASSERT_PTR_NULL(ccb_sinful_param(s, "privnet"));
	CU_ASSERT_PTR_NULL(ccb_sinful_param(s, "Ccbid"));
	CHECK_STR(ccb_sinful_param(s, "ccbid"), ccb_sinful_ccbid(s));
	CU_ASSERT_EQUAL(ccb_sinful_param_count(s), 6);
	ccb_sinful_free(s);
}

static void test_ipv6(void)
{
	ccb_sinful *s = parse_ok("<[2001:db8::1]:9618?alias=v6.example>");

	if (!s)
		return;
	CHECK_STR(ccb_sinful_host(s), "2001:db8::1");
	CU_ASSERT_EQUAL(ccb_sinful_port(s), 9618);
	ccb_sinful_free(s);

	s = parse_ok("<[::ffff:10.0.0.1]>");
	if (!s)
		return;
	CHECK_STR(ccb_sinful_host(s), "::ffff:10.0.0.1");
	CU_ASSERT_EQUAL(ccb_sinful_port(s), -1);
	ccb_sinful_free(s);
}

/* ---- normalization on output --------------------------------------------- */

static void test_normalization(void)
{
	/* upper-case escapes come back lower-case (sin:162-191) */
	roundtrip("<1.2.3.4:9618?PrivAddr=%3C10.0.0.4:9618%3E>",
		"<1.2.3.4:9618?PrivAddr=%3c10.0.0.4:9618%3e>");
	/* needless escapes are undone, needed ones added */
	roundtrip("<1.2.3.4:9618?alias=%76%6D>", "<1.2.3.4:9618?alias=vm>");
	roundtrip("<1.2.3.4:9618?x=a b>", "<1.2.3.4:9618?x=a%20b>");
	/* ';' separators, empty runs, "key=" as a flag */
	roundtrip("<1.2.3.4:9618?;&alias=vm;;noUDP=&&sock=x;>",
		"<1.2.3.4:9618?alias=vm&noUDP&sock=x>");
	/* a repeated key: last value wins, first position kept */
	roundtrip("<1.2.3.4:9618?a=1&b=2&a=3>", "<1.2.3.4:9618?a=3&b=2>");
	/* leading zeros and an empty port */
	roundtrip("<1.2.3.4:09618>", "<1.2.3.4:9618>");
	roundtrip("<1.2.3.4:>", "<1.2.3.4>");
	roundtrip("<1.2.3.4?noUDP>", "<1.2.3.4?noUDP>");
	/* "?" with nothing after it */
	roundtrip("<1.2.3.4:9618?>", "<1.2.3.4:9618>");
	/* bytes >= 0x80 are escaped as unsigned hex */
	roundtrip("<1.2.3.4:9618?x=\xc3\xa9>", "<1.2.3.4:9618?x=%c3%a9>");
	/* '+' stays '+', it separates addrs elements (sin:121-160) */
	roundtrip("<1.2.3.4:9618?x=a+b>", "<1.2.3.4:9618?x=a+b>");
	/* unknown keys keep their place */
	roundtrip("<1.2.3.4:9618?zeta=1&sock=s&Alpha=2&alpha=3>", NULL);
}

static void test_ccbid_spelling(void)
{
	ccb_sinful *s;

	/* Go writes "ccbid" (sinful.md §7); we read it and write "CCBID" */
	roundtrip("<10.0.0.7:9618?ccbid=128.105.1.2:9618#123&noUDP>",
		"<10.0.0.7:9618?CCBID=128.105.1.2:9618#123&noUDP>");
	roundtrip("<10.0.0.7:9618?CCBID=a:1#1&ccbid=b:2#2>", "<10.0.0.7:9618?CCBID=b:2#2>");
	s = parse_ok("<10.0.0.7:9618?ccbid=128.105.1.2:9618#123>");
	if (!s)
		return;
	CHECK_STR(ccb_sinful_ccbid(s), "128.105.1.2:9618#123");
	CU_ASSERT_EQUAL(ccb_sinful_set_param(s, "ccbid", "1.1.1.1:1#9", NULL), CCB_OK);
	CU_ASSERT_EQUAL(ccb_sinful_param_count(s), 1);
	{
		char *out = ccb__sinful_format(s);

		CHECK_STR(out, "<10.0.0.7:9618?CCBID=1.1.1.1:1#9>");
		ccb_free(out);
	}
	ccb_sinful_free(s);
}

static void test_encoding(void)
{
	ccb_sinful *s = NULL;
	char *out;

	CU_ASSERT_EQUAL_FATAL(ccb_sinful_new("1.2.3.4", 9618, &s, NULL), CCB_OK);
	CU_ASSERT_EQUAL(ccb_sinful_set_param(s, "x", "a b&c=d;e<f>?g%h#i:j[k]l+m._-n", NULL),
		CCB_OK);
	CU_ASSERT_EQUAL(ccb_sinful_set_param(s, "k y", "\x01\x7f", NULL), CCB_OK);
	out = ccb__sinful_format(s);
	CHECK_STR(out, "<1.2.3.4:9618?k%20y=%01%7f"
		"&x=a%20b%26c%3dd%3be%3cf%3e%3fg%25h#i:j[k]l+m._-n>");
	ccb_free(out);
	ccb_sinful_free(s);
}

/* ---- building ------------------------------------------------------------ */

static void test_build_matches_capture(void)
{
	ccb_sinful *s = NULL;
	ccb_error e = { 0 };
	char *out;

	CU_ASSERT_EQUAL_FATAL(ccb_sinful_new("127.0.0.1", 19620, &s, &e), CCB_OK);
	/* set in a scrambled order: the output follows HTCondor's map order */
	CU_ASSERT_EQUAL(ccb_sinful_set_param(s, "sock", "master_29761_7690", &e), CCB_OK);
	CU_ASSERT_EQUAL(ccb_sinful_set_param(s, "noUDP", "", &e), CCB_OK);
	CU_ASSERT_EQUAL(ccb_sinful_set_param(s, "alias", "vm", &e), CCB_OK);
	CU_ASSERT_EQUAL(ccb_sinful_set_param(s, "addrs", "127.0.0.1-19620", &e), CCB_OK);
	CU_ASSERT_EQUAL(ccb_sinful_set_param(s, "PrivNet", "poolB.private", &e), CCB_OK);
	CU_ASSERT_EQUAL(ccb_sinful_set_param(s, "CCBID",
		"127.0.0.1:19618?addrs=127.0.0.1-19618&alias=vm#1", &e), CCB_OK);
	out = ccb__sinful_format(s);
	CHECK_STR(out, S6_MASTER);
	ccb_free(out);

	/* removing: sock and noUDP gone gives the S1-style string */
	CU_ASSERT_EQUAL(ccb_sinful_set_param(s, "sock", NULL, &e), CCB_OK);
	CU_ASSERT_EQUAL(ccb_sinful_set_param(s, "noUDP", NULL, &e), CCB_OK);
	CU_ASSERT_EQUAL(ccb_sinful_set_param(s, "nosuch", NULL, &e), CCB_OK);
	CU_ASSERT_EQUAL(ccb_sinful_set_port(s, 33781, &e), CCB_OK);
	CU_ASSERT_EQUAL(ccb_sinful_set_param(s, "addrs", "127.0.0.1-33781", &e), CCB_OK);
	out = ccb__sinful_format(s);
	CHECK_STR(out, S1_MASTER);
	ccb_free(out);
	ccb_sinful_free(s);
}

static void test_sort_and_iterate(void)
{
	ccb_sinful *s = parse_ok("<1.2.3.4:9618?sock=s&noUDP&alias=a&addrs=1.2.3.4-9618"
		"&PrivNet=n&CCBID=5.6.7.8:9618#1&zz=1&PrivAddr=%3c10.0.0.1:1%3e>");
	static const char *const keys[] = {
		"CCBID", "PrivAddr", "PrivNet", "addrs", "alias", "noUDP", "sock", "zz",
	};
	const char *k = NULL, *v = NULL;
	char *out;

	if (!s)
		return;
	CU_ASSERT_TRUE(ccb_sinful_param_at(s, 0, &k, &v));
	CHECK_STR(k, "sock");
	CHECK_STR(v, "s");
	ccb_sinful_sort_params(s);
	CU_ASSERT_EQUAL(ccb_sinful_param_count(s), 8);
	for (size_t i = 0; i < 8; i++) {
		CU_ASSERT_TRUE(ccb_sinful_param_at(s, i, &k, NULL));
		CHECK_STR(k, keys[i]);
	}
	CU_ASSERT_FALSE(ccb_sinful_param_at(s, 8, &k, &v));
	out = ccb__sinful_format(s);
	CHECK_STR(out, "<1.2.3.4:9618?CCBID=5.6.7.8:9618#1&PrivAddr=%3c10.0.0.1:1%3e"
		"&PrivNet=n&addrs=1.2.3.4-9618&alias=a&noUDP&sock=s&zz=1>");
	ccb_free(out);
	ccb_sinful_free(s);
}

static void test_host_port_setters(void)
{
	ccb_sinful *s = NULL, *d = NULL;
	ccb_error e = { 0 };
	char *out;

	CU_ASSERT_EQUAL_FATAL(ccb_sinful_new("[::1]", -1, &s, &e), CCB_OK);
	CHECK_STR(ccb_sinful_host(s), "::1");
	CU_ASSERT_EQUAL(ccb_sinful_port(s), -1);
	CU_ASSERT_EQUAL(ccb_sinful_set_port(s, 0, &e), CCB_OK);
	out = ccb__sinful_format(s);
	CHECK_STR(out, "<[::1]:0>");
	ccb_free(out);

	CU_ASSERT_EQUAL(ccb_sinful_set_host(s, "fe80::1", &e), CCB_OK);
	CU_ASSERT_EQUAL(ccb_sinful_set_host(s, "submit-1.example.org", &e), CCB_OK);
	CU_ASSERT_EQUAL(ccb_sinful_set_port(s, 65535, &e), CCB_OK);
	/* rejected values leave the sinful unchanged */
	CU_ASSERT_EQUAL(ccb_sinful_set_host(s, "bad host", &e), CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(ccb_sinful_set_host(s, "a#b", &e), CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(ccb_sinful_set_host(s, "1::2::3", &e), CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(ccb_sinful_set_host(s, "", &e), CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(ccb_sinful_set_port(s, 65536, &e), CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(ccb_sinful_set_port(s, -2, &e), CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(ccb_sinful_set_param(s, "", "x", &e), CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(ccb_sinful_set_param(s, "addrs", "1.2.3.4:9618", &e),
		CCB_ERR_INVALID_ARG);
	CU_ASSERT_PTR_NULL(ccb_sinful_param(s, "addrs"));
	CU_ASSERT_EQUAL(ccb_sinful_new("1.2.3.4", 70000, &d, &e), CCB_ERR_INVALID_ARG);
	CU_ASSERT_PTR_NULL(d);

	CU_ASSERT_EQUAL(ccb_sinful_set_param(s, "alias", "x", &e), CCB_OK);
	CU_ASSERT_EQUAL(ccb_sinful_dup(s, &d, &e), CCB_OK);
	ccb_sinful_free(s);
	out = ccb__sinful_format(d);
	CHECK_STR(out, "<submit-1.example.org:65535?alias=x>");
	ccb_free(out);
	out = ccb__sinful_format_bare(d);
	CHECK_STR(out, "submit-1.example.org:65535?alias=x");
	ccb_free(out);
	ccb_sinful_free(d);
}

/* ccb-protocol.md §3.1: the broker's address inside contacts */
static void test_broker_address(void)
{
	ccb_sinful *s = parse_ok("<127.0.0.1:19618?addrs=127.0.0.1-19618&alias=vm>");
	char *out;

	if (!s)
		return;
	out = ccb__sinful_broker_address(s);
	/* captured register reply, minus "#1" (S1, conn 1, message 10) */
	CHECK_STR(out, "127.0.0.1:19618?addrs=127.0.0.1-19618&alias=vm");
	ccb_free(out);
	ccb_sinful_free(s);

	s = parse_ok("<128.105.1.2:9618?CCBID=1.1.1.1:1#4&PrivAddr=%3c10.0.0.1:9618%3e"
		"&PrivNet=n&addrs=128.105.1.2-9618&sock=collector>");
	if (!s)
		return;
	out = ccb__sinful_broker_address(s);
	CHECK_STR(out, "128.105.1.2:9618?PrivNet=n&addrs=128.105.1.2-9618&sock=collector");
	ccb_free(out);
	ccb_sinful_free(s);
}

static void test_private_addr_nested(void)
{
	ccb_sinful *s = parse_ok(
		"<128.105.20.4:9618?PrivAddr=%3c10.0.0.4:9618%3fsock%3dx%3e&PrivNet=lab.example>");
	ccb_sinful *p = NULL;

	if (!s)
		return;
	CHECK_STR(ccb_sinful_private_addr(s), "<10.0.0.4:9618?sock=x>");
	CU_ASSERT_EQUAL(ccb_sinful_parse(ccb_sinful_private_addr(s), &p, NULL), CCB_OK);
	if (p)
		CHECK_STR(ccb_sinful_shared_port_id(p), "x");
	ccb_sinful_free(p);
	ccb_sinful_free(s);
}

/* ---- bracket-less input (sinful.md §6) ----------------------------------- */

static void test_parse_address(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "cm.example.org:9618", "<cm.example.org:9618>" },
		{ "cm.example.org", "<cm.example.org>" },
		{ "[2001:db8::1]:9618", "<[2001:db8::1]:9618>" },
		{ "2001:db8::1", "<[2001:db8::1]>" },
		{ "127.0.0.1:19618", "<127.0.0.1:19618>" },
		{ "127.0.0.1:19618?addrs=127.0.0.1-19618&alias=vm",
			"<127.0.0.1:19618?addrs=127.0.0.1-19618&alias=vm>" },
		{ "<127.0.0.1:19618?alias=vm>", "<127.0.0.1:19618?alias=vm>" },
		{ "1.2.3.4:9618?a=x:y:z", "<1.2.3.4:9618?a=x:y:z>" },
	};
	static const char *const bad[] = {
		"", "cm.example.org:9618>", "2001:db8::1:9618?x", "[::1", "host:port",
		"1.2.3.4:9618#1", "<1.2.3.4", "a b",
	};
	ccb_error e = { 0 };
	ccb_sinful *s = NULL;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *out;

		s = NULL;
		CU_ASSERT_EQUAL(ccb_sinful_parse_address(cases[i].in, &s, &e), CCB_OK);
		if (!s) {
			fprintf(stderr, "\n\"%s\": %s\n", cases[i].in, e.detail);
			continue;
		}
		out = ccb__sinful_format(s);
		CHECK_STR(out, cases[i].want);
		ccb_free(out);
		ccb_sinful_free(s);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		s = NULL;
		CU_ASSERT_EQUAL(ccb_sinful_parse_address(bad[i], &s, &e), CCB_ERR_PARSE);
		CU_ASSERT_PTR_NULL(s);
	}
	/* strict parsing insists on the brackets */
	CU_ASSERT_EQUAL(ccb_sinful_parse("cm.example.org:9618", &s, &e), CCB_ERR_PARSE);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.detail, "'<'"));
	/* v1 addresses are not supported (sinful.md §8) */
	CU_ASSERT_EQUAL(ccb_sinful_parse_address("{[ p=\"primary\"; a=\"127.0.0.1\"; port=19620;"
		" n=\"Internet\"; ]}", &s, &e), CCB_ERR_UNSUPPORTED);
	CU_ASSERT_PTR_NULL(s);
}

/* ---- the addrs parameter and CCB-safe addresses --------------------------- */

static void test_addrs(void)
{
	ccb_sinful *s = parse_ok(spec_examples[1]);
	ccb_hostport *hp = NULL;
	size_t n = 0;

	if (!s)
		return;
	CU_ASSERT_EQUAL_FATAL(ccb_sinful_addrs(s, &hp, &n, NULL), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CHECK_STR(hp[0].ip, "192.168.1.5");
	CU_ASSERT_EQUAL(hp[0].family, AF_INET);
	CU_ASSERT_EQUAL(hp[0].port, 9618);
	CHECK_STR(hp[1].ip, "2001:db8::5");
	CU_ASSERT_EQUAL(hp[1].family, AF_INET6);
	CU_ASSERT_EQUAL(hp[1].port, 9618);
	free(hp);
	ccb_sinful_free(s);

	s = parse_ok("<1.2.3.4:9618?addrs=+1.2.3.4-9618++>");
	if (!s)
		return;
	CU_ASSERT_EQUAL(ccb_sinful_addrs(s, &hp, &n, NULL), CCB_OK);
	CU_ASSERT_EQUAL(n, 1);
	free(hp);
	ccb_sinful_free(s);

	s = parse_ok("<1.2.3.4:9618>");
	if (!s)
		return;
	CU_ASSERT_EQUAL(ccb_sinful_addrs(s, &hp, &n, NULL), CCB_OK);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_PTR_NULL(hp);
	ccb_sinful_free(s);
}

static void test_ccb_safe(void)
{
	static const struct {
		const char *in, *ip;
		int family;
		unsigned port;
	} good[] = {
		{ "192.168.1.5-9618", "192.168.1.5", AF_INET, 9618 },
		{ "127.0.0.1-0", "127.0.0.1", AF_INET, 0 },
		{ "[2001-db8--5]-9618", "2001:db8::5", AF_INET6, 9618 },
		{ "[--1]-65535", "::1", AF_INET6, 65535 },
		{ "--1-9618", "::1", AF_INET6, 9618 },
	};
	static const char *const bad[] = {
		"", "-", "1.2.3.4", "1.2.3.4:9618", "1.2.3.4-", "1.2.3.4-x", "1.2.3.4-65536",
		"1.2.3.4-123456", "host-9618", "-9618", "[1.2.3.4-9618", "[zz]-1",
		"1.2.3.4.5-1", "[--1]-",
	};
	static const struct {
		const char *ip;
		int port;
		const char *want;
	} fmt[] = {
		{ "192.168.1.5", 9618, "192.168.1.5-9618" },
		{ "2001:db8::5", 9618, "[2001-db8--5]-9618" },
		{ "[::1]", 9618, "[--1]-9618" },
	};
	ccb_hostport hp;
	ccb_error e = { 0 };
	char *out = NULL;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		CU_ASSERT_EQUAL(ccb_addr_ccb_safe_parse(good[i].in, &hp, &e), CCB_OK);
		CHECK_STR(hp.ip, good[i].ip);
		CU_ASSERT_EQUAL(hp.family, good[i].family);
		CU_ASSERT_EQUAL(hp.port, good[i].port);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (ccb_addr_ccb_safe_parse(bad[i], &hp, &e) != CCB_ERR_PARSE) {
			fprintf(stderr, "\naccepted bad CCB-safe \"%s\"\n", bad[i]);
			CU_FAIL("bad CCB-safe address accepted");
		}
	}
	for (size_t i = 0; i < sizeof fmt / sizeof fmt[0]; i++) {
		CU_ASSERT_EQUAL(ccb_addr_ccb_safe_format(fmt[i].ip, fmt[i].port, &out, &e), CCB_OK);
		CHECK_STR(out, fmt[i].want);
		ccb_free(out);
	}
	CU_ASSERT_EQUAL(ccb_addr_ccb_safe_format("host", 1, &out, &e), CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(ccb_addr_ccb_safe_format("1.2.3.4", 65536, &out, &e),
		CCB_ERR_INVALID_ARG);
	CU_ASSERT_PTR_NULL(out);
}

/* ---- malformed input ------------------------------------------------------ */

static const struct {
	const char *in;
	const char *detail; /* a word the detail must contain */
} malformed[] = {
	{ "", "'<'" },
	{ "1.2.3.4:9618", "'<'" },
	{ ">", "'<'" },
	{ "<", "host" },
	{ "<>", "host" },
	{ "<1.2.3.4:9618", "'>'" },
	{ "<1.2.3.4:9618?alias=vm", "'>'" },
	{ "<1.2.3.4:9618>x", "after" },
	{ "<1.2.3.4:9618>>", "after" },
	{ "<<1.2.3.4:9618>", "host" },
	{ "<10.0.0.7:9618#5>", "port" },           /* sinful.md §10.11 */
	{ "<10.0.0.7:9618?=x>", "empty parameter key" },
	{ "<10.0.0.7:9618?a=1&=x>", "empty parameter key" },
	{ "<10.0.0.7:9618?addrs=10.0.0.7:9618>", "addrs" },
	{ "<10.0.0.7:9618?addrs=10.0.0.7-9618+host-1>", "addrs" },
	{ "<10.0.0.7:9618?addrs=1.2.3.4-70000>", "addrs" },
	{ "<10.0.0.7:9618?a=%zz>", "escape" },
	{ "<10.0.0.7:9618?a=%4>", "escape" },
	{ "<10.0.0.7:9618?a=%>", "escape" },
	{ "<10.0.0.7:9618?a=%4&b=1>", "escape" },
	{ "<10.0.0.7:9618?%zz=1>", "escape" },
	{ "<10.0.0.7:9618?a=%00>", "NUL" },
	{ "<10.0.0.7:9618?%00>", "NUL" },
	{ "<[::1:9618>", "']'" },
	{ "<[::1]9618>", "offset" },
	{ "<[zz::1]:9618>", "IPv6" },
	{ "<[]:9618>", "IPv6" },
	{ "<[1.2.3.4]:9618>", "IPv6" },
	{ "<:9618>", "empty host" },
	{ "<::1>", "empty host" },
	{ "<1.2.3.4:65536>", "port" },
	{ "<1.2.3.4:99999999999>", "port" },
	{ "<1.2.3.4:000009618>", "port" },
	{ "<1.2.3.4:-1>", "port" },
	{ "<1.2.3.4:abc>", "port" },
	{ "<1.2.3.4:9618:1>", "port" },
	{ "<host name:1>", "host" },
	{ "<a#b:1>", "host" },
	{ "<h\xc3\xa9:1>", "host" },
	{ "<\t1.2.3.4:1>", "host" },
};

static void test_malformed(void)
{
	for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
		ccb_sinful *s = (ccb_sinful *)&s; /* must be reset to NULL */
		ccb_error e = { 0 };
		ccb_err rc = ccb_sinful_parse(malformed[i].in, &s, &e);

		if (rc != CCB_ERR_PARSE || s || !strstr(e.detail, malformed[i].detail)) {
			fprintf(stderr, "\n\"%s\": rc %d, detail \"%s\" (want \"%s\")\n",
				malformed[i].in, rc, e.detail, malformed[i].detail);
			CU_FAIL("malformed sinful not rejected as expected");
		}
		CU_ASSERT_EQUAL(e.code, CCB_ERR_PARSE);
	}
}

static void test_null_args(void)
{
	ccb_sinful *s = NULL;

	CU_ASSERT_EQUAL(ccb_sinful_parse(NULL, &s, NULL), CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(ccb_sinful_parse("<1.2.3.4:1>", NULL, NULL), CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(ccb_sinful_parse_address(NULL, &s, NULL), CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(ccb_sinful_new(NULL, 1, &s, NULL), CCB_ERR_INVALID_ARG);
	CU_ASSERT_PTR_NULL(ccb__sinful_format(NULL));
	CU_ASSERT_PTR_NULL(ccb_sinful_param(NULL, "x"));
	ccb_sinful_free(NULL);
}

/* Length cap: CCB_ADDR_MAX_TEXT bytes parse, one more does not. */
static void test_size_limit(void)
{
	static const char head[] = "<1.2.3.4:9618?x=";
	size_t hl = sizeof head - 1;
	char *buf = malloc(CCB_ADDR_MAX_TEXT + 2);
	ccb_sinful *s = NULL;
	ccb_error e = { 0 };

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	memcpy(buf, head, hl);
	memset(buf + hl, 'a', CCB_ADDR_MAX_TEXT - hl - 1);
	strcpy(buf + CCB_ADDR_MAX_TEXT - 1, ">");
	CU_ASSERT_EQUAL(strlen(buf), CCB_ADDR_MAX_TEXT);
	CU_ASSERT_EQUAL(ccb_sinful_parse(buf, &s, &e), CCB_OK);
	if (s)
		CU_ASSERT_EQUAL(strlen(ccb_sinful_param(s, "x")), CCB_ADDR_MAX_TEXT - hl - 1);
	ccb_sinful_free(s);
	s = NULL;

	memset(buf + hl, 'a', CCB_ADDR_MAX_TEXT - hl);
	strcpy(buf + CCB_ADDR_MAX_TEXT, ">");
	CU_ASSERT_EQUAL(ccb_sinful_parse(buf, &s, &e), CCB_ERR_PARSE);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.detail, "longer than 8192"));
	CU_ASSERT_EQUAL(ccb_sinful_parse_address(buf + 1, &s, &e), CCB_ERR_PARSE);
	CU_ASSERT_PTR_NULL(s);
	free(buf);
}

/* Every prefix of a valid sinful must fail cleanly, not crash. */
static void test_truncations(void)
{
	const char *full = S6_MASTER;
	size_t len = strlen(full);
	char buf[512];

	CU_ASSERT_FATAL(len < sizeof buf);
	for (size_t i = 0; i < len; i++) {
		ccb_sinful *s = NULL;
		ccb_err rc;

		memcpy(buf, full, i);
		buf[i] = '\0';
		rc = ccb_sinful_parse(buf, &s, NULL);
		CU_ASSERT_EQUAL(rc, CCB_ERR_PARSE);
		ccb_sinful_free(s);
	}
}

/* The public formatters: ccb_err, char **out released with ccb_free(). */
static void test_public_formatters(void)
{
	ccb_sinful *s = NULL;
	ccb_error err = {0};
	char *out = (char *)1;

	CU_ASSERT_EQUAL_FATAL(ccb_sinful_parse("<10.0.0.1:9618?addrs=10.0.0.1-9618&CCBID=1.2.3.4:9618%235&noUDP>",
					       &s, &err), CCB_OK);
	CU_ASSERT_EQUAL(ccb_sinful_format(s, &out, &err), CCB_OK);
	CU_ASSERT_STRING_EQUAL(out, "<10.0.0.1:9618?addrs=10.0.0.1-9618&CCBID=1.2.3.4:9618#5&noUDP>");
	ccb_free(out);
	CU_ASSERT_EQUAL(ccb_sinful_format_bare(s, &out, &err), CCB_OK);
	CU_ASSERT_STRING_EQUAL(out, "10.0.0.1:9618?addrs=10.0.0.1-9618&CCBID=1.2.3.4:9618#5&noUDP");
	ccb_free(out);
	CU_ASSERT_EQUAL(ccb_sinful_broker_address(s, &out, &err), CCB_OK);
	CU_ASSERT_STRING_EQUAL(out, "10.0.0.1:9618?addrs=10.0.0.1-9618&noUDP");
	ccb_free(out);
	out = (char *)1;
	CU_ASSERT_EQUAL(ccb_sinful_format(NULL, &out, &err), CCB_ERR_INVALID_ARG);
	CU_ASSERT_PTR_NULL(out);
	CU_ASSERT_EQUAL(err.code, CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(ccb_sinful_format(s, NULL, NULL), CCB_ERR_INVALID_ARG);
	ccb_sinful_free(s);
}

static const ccbt_test tests[] = {
	{ "public formatters", test_public_formatters },
	{ "captured round trip", test_captured_roundtrip },
	{ "spec examples round trip", test_spec_examples_roundtrip },
	{ "captured fields", test_captured_fields },
	{ "ipv6", test_ipv6 },
	{ "normalization", test_normalization },
	{ "CCBID spelling", test_ccbid_spelling },
	{ "encoding", test_encoding },
	{ "build matches capture", test_build_matches_capture },
	{ "sort and iterate", test_sort_and_iterate },
	{ "host and port setters", test_host_port_setters },
	{ "broker address", test_broker_address },
	{ "PrivAddr nested sinful", test_private_addr_nested },
	{ "bracket-less addresses", test_parse_address },
	{ "addrs parameter", test_addrs },
	{ "CCB-safe addresses", test_ccb_safe },
	{ "malformed input", test_malformed },
	{ "NULL arguments", test_null_args },
	{ "size limit", test_size_limit },
	{ "truncations", test_truncations },
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
