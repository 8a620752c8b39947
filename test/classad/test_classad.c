/*
 * ClassAd wire tests: the worked examples of the wire spec classad-wire.md §9,
 * old-syntax escaping and value printing, and every clear-text ad of the
 * HTCondor 25.14 captures decoded and re-encoded to the same bytes.
 */
#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ccb/dissect.h"
#include "ccbt.h"
#include "classad/classad_internal.h"

static void expect_bytes(const ccb_buf *b, const char *hex)
{
	size_t n;
	uint8_t *want = ccbt_unhex(hex, &n);

	CU_ASSERT_EQUAL(b->len, n);
	CU_ASSERT(b->len == n && memcmp(b->data, want, n) == 0);
	free(want);
}

/* §9.1: [Command = 67; Name = "x"; Result = true], plaintext. */
static const char EX91[] = "0000000000000003"
			   "4e616d65203d2022782200"
			   "526573756c74203d207472756500"
			   "436f6d6d616e64203d20363700"
			   "00 00";

static void test_worked_example_plain(void)
{
	ccb_classad *ad = ccb__classad_new();
	ccb_buf b;

	ccb_classad_set_int(ad, "Command", 67);
	ccb_classad_set_bool(ad, "Result", true);
	ccb_classad_set_string(ad, "Name", "x");
	ccb_buf_init(&b);
	CU_ASSERT(ccb__classad_encode(&b, false, ad, NULL));
	expect_bytes(&b, EX91);
	ccb_buf_free(&b);
	ccb_classad_free(ad);
}

/* §9.2: the same ad in AES string form. */
static void test_worked_example_crypto(void)
{
	ccb_classad *ad = ccb__classad_new();
	ccb_buf b;

	ccb_classad_set_expr(ad, "Command", "67");
	ccb_classad_set_expr(ad, "Name", "\"x\"");
	ccb_classad_set_expr(ad, "Result", "true");
	ccb_buf_init(&b);
	CU_ASSERT(ccb__classad_encode(&b, true, ad, NULL));
	expect_bytes(&b, "0000000000000003"
			 "000000000000000b 4e616d65203d2022782200"
			 "000000000000000e 526573756c74203d207472756500"
			 "000000000000000d 436f6d6d616e64203d20363700"
			 "0000000000000001 00 0000000000000001 00");
	ccb_buf_free(&b);
	ccb_classad_free(ad);
}

/* §9.3: real C++ output (decrypted) with a ZKM-wrapped ClaimId. */
static void test_cpp_private_ad(void)
{
	size_t n;
	uint8_t *wire = ccbt_unhex(
		"0000000000000003"
		"0000000000000017 4e616d65203d2022736c6f743140696e7465726f702200"
		"0000000000000013 4d7954797065203d20224d616368696e652200"
		"0000000000000004 5a4b4d00"
		"000000000000002c 436c61696d4964203d2022696e7465726f702d7365637265742d636c61696d69642d646561646265656622 00"
		"0000000000000001 00 0000000000000001 00",
		&n);
	ccb_cursor c = {.data = wire, .len = n, .crypto = true};
	ccb_classad *ad;
	const char *s;
	ccb_buf b;
	ccb_classad_put_config old_peer = {.peer_version = 0};

	CU_ASSERT_EQUAL(n, 148);
	CU_ASSERT_FATAL(ccb__classad_decode(&c, &ad, 0, NULL) == CCB_OK);
	CU_ASSERT_EQUAL(ccb_cursor_left(&c), 0);
	CU_ASSERT_EQUAL(ccb_classad_count(ad), 3);
	CU_ASSERT(ccb_classad_get_string(ad, "claimid", &s) == CCB_OK);
	CU_ASSERT_STRING_EQUAL(s, "interop-secret-claimid-deadbeef");
	CU_ASSERT(ccb_classad_get_string(ad, "MyType", &s) == CCB_OK);
	CU_ASSERT_STRING_EQUAL(s, "Machine");
	/* Re-encoded for a peer of unknown version: the same 148 bytes. */
	ccb_buf_init(&b);
	CU_ASSERT(ccb__classad_encode(&b, true, ad, &old_peer));
	CU_ASSERT(b.len == n && memcmp(b.data, wire, n) == 0);
	/* For a 9.9+ peer the marker goes away; with no_private the attribute. */
	ccb_buf_reset(&b);
	ccb__classad_encode(&b, true, ad, &(ccb_classad_put_config){.peer_version = 251400});
	CU_ASSERT_EQUAL(b.len, n - 12);
	ccb_buf_reset(&b);
	ccb__classad_encode(&b, false, ad, &(ccb_classad_put_config){.no_private = true});
	CU_ASSERT(memcmp(b.data, "\0\0\0\0\0\0\0\2", 8) == 0);
	ccb_buf_free(&b);
	ccb_classad_free(ad);
	free(wire);
}

static void test_private_names(void)
{
	CU_ASSERT(ccb_attr_is_private("ClaimId"));
	CU_ASSERT(ccb_attr_is_private("claimid"));
	CU_ASSERT(ccb_attr_is_private("TransferKey"));
	CU_ASSERT(ccb_attr_is_private("_condor_privSecret"));
	CU_ASSERT(!ccb_attr_is_private("ClaimIdx"));
	CU_ASSERT(!ccb_attr_is_private("MyAddress"));
}

static char *line_of(ccb_classad *ad, const char *name)
{
	char *t = NULL;
	ccb_classad_value_text(ad, name, &t);
	return t;
}

#define EXPECT_TEXT(ad, name, want)                                            \
	do {                                                                   \
		char *t_ = line_of(ad, name);                                  \
		CU_ASSERT_PTR_NOT_NULL(t_);                                    \
		if (t_)                                                        \
			CU_ASSERT_STRING_EQUAL(t_, want);                      \
		free(t_);                                                      \
	} while (0)

/* §3.1 and §4: values in old syntax. */
static void test_value_printing(void)
{
	ccb_classad *ad = ccb__classad_new();

	ccb_classad_set_real(ad, "A", 3.0);
	EXPECT_TEXT(ad, "A", "3.0");
	ccb_classad_set_real(ad, "A", 1e20);
	EXPECT_TEXT(ad, "A", "1E+20");
	ccb_classad_set_real(ad, "A", 0.0);
	EXPECT_TEXT(ad, "A", "0.0");
	ccb_classad_set_real(ad, "A", -0.0);
	EXPECT_TEXT(ad, "A", "-0.0");
	ccb_classad_set_real(ad, "A", 6.749562151220356E-05);
	EXPECT_TEXT(ad, "A", "6.749562151220356E-05");
	ccb_classad_set_real(ad, "A", NAN);
	EXPECT_TEXT(ad, "A", "real(\"NaN\")");
	ccb_classad_set_real(ad, "A", -INFINITY);
	EXPECT_TEXT(ad, "A", "real(\"-INF\")");
	ccb_classad_set_int(ad, "A", -5);
	EXPECT_TEXT(ad, "A", "-5");
	ccb_classad_set_bool(ad, "A", false);
	EXPECT_TEXT(ad, "A", "false");
	ccb_classad_set_undefined(ad, "A");
	EXPECT_TEXT(ad, "A", "undefined");
	/* Old syntax: only '"' is escaped; backslash and control bytes raw. */
	ccb_classad_set_string(ad, "A", "say \"hi\"");
	EXPECT_TEXT(ad, "A", "\"say \\\"hi\\\"\"");
	ccb_classad_set_string(ad, "A", "a\\b\tc");
	EXPECT_TEXT(ad, "A", "\"a\\b\tc\"");
	ccb_classad_free(ad);
}

static void expect_parsed_string(const char *line, const char *want)
{
	ccb_classad *ad = ccb__classad_new();
	const char *s = NULL;

	CU_ASSERT(ccb_classad_parse_line(ad, line, NULL) == CCB_OK);
	CU_ASSERT(ccb_classad_get_string(ad, "A", &s) == CCB_OK);
	if (s)
		CU_ASSERT_STRING_EQUAL(s, want);
	ccb_classad_free(ad);
}

/* tokenizeStringOld rules (classad-wire.md §4). */
static void test_string_reading(void)
{
	expect_parsed_string("A = \"a\\b\"", "a\\b");
	expect_parsed_string("A = \"say \\\"hi\\\"\"", "say \"hi\"");
	expect_parsed_string("A = \"abc\\\"", "abc\\");
	expect_parsed_string("A = \"x\\\\\"y\"", "x\\\"y");
	expect_parsed_string("  A   =   \"v\"  ", "v");
	expect_parsed_string("A = \"{[ p=\\\"primary\\\"; ]}\"", "{[ p=\"primary\"; ]}");
}

static void test_parse_types(void)
{
	ccb_classad *ad = ccb__classad_new();
	int64_t i;
	double d;
	bool b;

	CU_ASSERT(ccb_classad_parse_line(ad, "I = -42", NULL) == CCB_OK);
	CU_ASSERT(ccb_classad_parse_line(ad, "R = 2.5E-3", NULL) == CCB_OK);
	CU_ASSERT(ccb_classad_parse_line(ad, "B = TRUE", NULL) == CCB_OK);
	CU_ASSERT(ccb_classad_parse_line(ad, "U = undefined", NULL) == CCB_OK);
	CU_ASSERT(ccb_classad_parse_line(ad, "E = (TARGET.Name == \"poolB@vm\")", NULL) == CCB_OK);
	CU_ASSERT(ccb_classad_get_int(ad, "i", &i) == CCB_OK && i == -42);
	CU_ASSERT(ccb_classad_get_real(ad, "R", &d) == CCB_OK && fabs(d - 2.5e-3) < 1e-12);
	CU_ASSERT(ccb_classad_get_real(ad, "I", &d) == CCB_OK && d == -42.0);
	CU_ASSERT(ccb_classad_get_bool(ad, "b", &b) == CCB_OK && b);
	CU_ASSERT_EQUAL(ccb_classad_type(ad, "U"), CCB_VAL_UNDEFINED);
	CU_ASSERT_EQUAL(ccb_classad_type(ad, "E"), CCB_VAL_EXPR);
	EXPECT_TEXT(ad, "E", "(TARGET.Name == \"poolB@vm\")");
	CU_ASSERT_EQUAL(ccb_classad_type(ad, "missing"), CCB_VAL_ABSENT);
	CU_ASSERT(ccb_classad_get_int(ad, "missing", &i) == CCB_ERR_NOT_FOUND);
	CU_ASSERT(ccb_classad_get_int(ad, "R", &i) == CCB_ERR_TYPE);
	/* Errors: no '=', empty name, empty value, unterminated string kept as
	 * expression text is fine, but a bad name is not. */
	CU_ASSERT(ccb_classad_parse_line(ad, "no equals", NULL) == CCB_ERR_PARSE);
	CU_ASSERT(ccb_classad_parse_line(ad, " = 1", NULL) == CCB_ERR_PARSE);
	CU_ASSERT(ccb_classad_parse_line(ad, "A =", NULL) == CCB_ERR_PARSE);
	CU_ASSERT(ccb_classad_parse_line(ad, "A B = 1", NULL) == CCB_ERR_PARSE);
	CU_ASSERT(ccb_classad_set_int(ad, "", 1) == CCB_ERR_INVALID_ARG);
	/* Copy and remove. */
	{
		ccb_classad *c = ccb__classad_copy(ad);
		CU_ASSERT_EQUAL(ccb_classad_count(c), ccb_classad_count(ad));
		CU_ASSERT(ccb_classad_remove(c, "e") == CCB_OK);
		CU_ASSERT(ccb_classad_remove(c, "e") == CCB_ERR_NOT_FOUND);
		CU_ASSERT_EQUAL(ccb_classad_type(ad, "E"), CCB_VAL_EXPR);
		ccb_classad_free(c);
	}
	ccb_classad_free(ad);
}

/* §2: length, then case-insensitive name; duplicates replace. */
static void test_order(void)
{
	ccb_classad *ad = ccb__classad_new();
	static const char *const want[] = {"b", "A", "cc", "Zz", "aaa", "Name"};
	char *text;

	ccb_classad_set_int(ad, "Name", 1);
	ccb_classad_set_int(ad, "aaa", 1);
	ccb_classad_set_int(ad, "Zz", 1);
	ccb_classad_set_int(ad, "cc", 1);
	ccb_classad_set_int(ad, "b", 1);
	ccb_classad_set_int(ad, "a", 1);
	ccb_classad_set_int(ad, "A", 2);
	CU_ASSERT_EQUAL_FATAL(ccb_classad_count(ad), 6);
	CU_ASSERT_STRING_EQUAL(ccb_classad_name_at(ad, 0), "A");
	CU_ASSERT_STRING_EQUAL(ccb_classad_name_at(ad, 1), "b");
	for (size_t i = 2; i < 6; i++)
		CU_ASSERT_STRING_EQUAL(ccb_classad_name_at(ad, i), want[i]);
	text = ccb__classad_to_text(ad);
	CU_ASSERT_STRING_EQUAL(text, "A = 2\nb = 1\ncc = 1\nZz = 1\naaa = 1\nName = 1\n");
	ccb_free(text);
	ccb_classad_free(ad);
}

static void expect_decode_error(const char *hex, bool crypto, int flags)
{
	size_t n;
	uint8_t *wire = ccbt_unhex(hex, &n);
	ccb_cursor c = {.data = wire, .len = n, .crypto = crypto};
	ccb_classad *ad = (ccb_classad *)1;
	ccb_error e = {0};

	CU_ASSERT(ccb__classad_decode(&c, &ad, flags, &e) != CCB_OK);
	CU_ASSERT_PTR_NULL(ad);
	CU_ASSERT(e.detail[0] != '\0');
	free(wire);
}

static void test_malformed(void)
{
	expect_decode_error("ffffffffffffffff 0000", false, 0);        /* negative count */
	expect_decode_error("00000000ffffffff 0000", false, 0);        /* huge count */
	expect_decode_error("0000000000000002 413d3100 0000", false, 0); /* count > lines */
	expect_decode_error("0000000000000001 413d3100", false, 0);    /* no trailers */
	expect_decode_error("0000000000000001 6e6f657100 0000", false, 0); /* no '=' */
	expect_decode_error("0000000000000001 413d31", false, 0);      /* no NUL */
	expect_decode_error("0000000000000001 ad 0000", false, 0);     /* NULL string */
	expect_decode_error("0000000000000001 0000000000000099 41", true, 0); /* short */
	/* Handshake (POD) ads: literals only, no secrets, at most 100 attrs. */
	expect_decode_error("0000000000000001 41203d2028312b322900 0000", false,
			    CCB_CLASSAD_DECODE_POD);
	expect_decode_error("0000000000000001 5a4b4d00 41203d203100 0000", false,
			    CCB_CLASSAD_DECODE_POD);
	expect_decode_error("0000000000000065 0000", false, CCB_CLASSAD_DECODE_POD);
}

/* ---- captures ----------------------------------------------------------- */

static bool lines_in_wire_order(const ccb_dissect_item *it)
{
	ccb_classad *ad = ccb__classad_new();
	bool same = true;

	for (size_t i = 0; i < it->nattrs; i++)
		ccb_classad_parse_line(ad, it->attrs[i].text, NULL);
	if (ccb_classad_count(ad) != it->nattrs)
		same = false;
	for (size_t i = 0; same && i < it->nattrs; i++)
		same = !strncmp(it->attrs[i].text, ccb_classad_name_at(ad, i),
				strlen(ccb_classad_name_at(ad, i)));
	ccb_classad_free(ad);
	return same;
}

static void reencode_body(const uint8_t *body, size_t len, size_t *checked, size_t *projected)
{
	ccb_dissect_msg m;

	CU_ASSERT_FATAL(ccb_dissect_body(body, len, &m, NULL) == CCB_OK);
	for (size_t i = 0; i < m.nitems; i++) {
		const ccb_dissect_item *it = &m.items[i];
		bool marked = false, enciphered = false;
		ccb_cursor c = {.data = body + it->offset, .len = it->length};
		ccb_classad *ad;
		ccb_buf b;

		if (it->kind != CCB_DISSECT_CLASSAD)
			continue;
		for (size_t k = 0; k < it->nattrs; k++) {
			marked |= it->attrs[k].kind == CCB_DISSECT_SECRET_CLEAR;
			enciphered |= it->attrs[k].kind == CCB_DISSECT_SECRET_ENCRYPTED;
		}
		if (enciphered)
			continue; /* BLOWFISH secrets: not ours to re-encode */
		bool proj = !lines_in_wire_order(it);
		if (proj)
			(*projected)++; /* projection order (classad-wire.md §7) */
		CU_ASSERT_FATAL(ccb__classad_decode(&c, &ad, 0, NULL) == CCB_OK);
		ccb_buf_init(&b);
		ccb__classad_encode(&b, false, ad,
				    &(ccb_classad_put_config){.peer_version = marked ? 0 : 251400,
							    .projection = proj});
		CU_ASSERT(b.len == it->length && !memcmp(b.data, body + it->offset, b.len));
		if (b.len != it->length || memcmp(b.data, body + it->offset, b.len)) {
			char *t = ccb__classad_to_text(ad);
			fprintf(stderr, "\nre-encoded ad differs:\n%s", t);
			ccb_free(t);
		}
		(*checked)++;
		ccb_buf_free(&b);
		ccb_classad_free(ad);
	}
	ccb_dissect_msg_clear(&m);
}

static void test_capture_reencode(void)
{
	static const char *const scen[] = {"S1-claimtobe-plain", "S2-fs-aes", "S3-token-aes",
					   "S4-ssl", "S5-streaming", "S6-shared-port"};
	size_t checked = 0, projected = 0;

	for (size_t s = 0; s < 6; s++) {
		char path[512];
		json_t *root, *conn;
		size_t ci;

		snprintf(path, sizeof path, "%s/%s/streams.json", CCB_VECTORS_DIR, scen[s]);
		root = json_load_file(path, 0, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(root);
		json_array_foreach(json_object_get(root, "connections"), ci, conn) {
			ccb_dissector *d = NULL;
			ccb_dissector_new(&d, NULL);
			json_t *seg;
			size_t si;
			json_array_foreach(json_object_get(conn, "segments"), si, seg) {
				const char *hex = json_string_value(json_object_get(seg, "hex"));
				size_t n = strlen(hex) / 2;
				uint8_t *b = malloc(n);
				ccb_hex_decode(hex, 2 * n, b);
				ccb_dissector_feed(d, strcmp(json_string_value(json_object_get(seg, "dir")), "s2c") ? CCB_DIR_C2S : CCB_DIR_S2C, b, n, NULL);
				free(b);
			}
			for (size_t mi = 0; mi < ccb_dissector_count(d); mi++) {
				const ccb_dissect_msg *m = ccb_dissector_msg(d, mi);
				reencode_body(m->body, m->body_len, &checked, &projected);
			}
			ccb_dissector_free(d);
		}
		json_decref(root);
	}
	/* The captures hold 231 ads in wire order and 28 projected ones
	 * (classad-wire.md §2), all re-encoded byte for byte; BLOWFISH-secret
	 * ads are skipped. */
	fprintf(stderr, "\n  %zu ads re-encoded, %zu of them projections\n", checked, projected);
	CU_ASSERT(checked >= 150);
	CU_ASSERT(projected >= 20 && projected <= 28);
}

/* The public constructors: ccb_err, out-parameter, ccb_error. */
static void test_public_constructors(void)
{
	ccb_classad *ad = (ccb_classad *)1, *copy = (ccb_classad *)1;
	ccb_error err = {0};
	char *text = NULL;
	int64_t v = 0;

	CU_ASSERT_EQUAL(ccb_classad_new(NULL, &err), CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(err.code, CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL_FATAL(ccb_classad_new(&ad, &err), CCB_OK);
	CU_ASSERT_EQUAL(ccb_classad_count(ad), 0);
	ccb_classad_set_int(ad, "Command", 67);
	ccb_classad_set_string(ad, "Name", "x");
	CU_ASSERT_EQUAL(ccb_classad_copy(NULL, &copy, &err), CCB_ERR_INVALID_ARG);
	CU_ASSERT_PTR_NULL(copy);
	CU_ASSERT_EQUAL_FATAL(ccb_classad_copy(ad, &copy, NULL), CCB_OK);
	ccb_classad_free(ad);
	CU_ASSERT(ccb_classad_get_int(copy, "command", &v) == CCB_OK && v == 67);
	CU_ASSERT_EQUAL(ccb_classad_to_text(copy, NULL, &err), CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL_FATAL(ccb_classad_to_text(copy, &text, &err), CCB_OK);
	CU_ASSERT_STRING_EQUAL(text, "Name = \"x\"\nCommand = 67\n");
	ccb_free(text);
	CU_ASSERT_EQUAL(ccb_classad_to_text(NULL, &text, &err), CCB_OK);
	CU_ASSERT_STRING_EQUAL(text, "");
	ccb_free(text);
	ccb_classad_free(copy);
}

/* Names are kept in blocks per ad: one that is edited for ever (names
 * removed, added, respelled) keeps its memory bounded, and the name of an
 * attribute nobody touched never moves. */
static void test_name_churn(void)
{
	ccb_classad *ad = NULL;
	const char *keep;
	char name[32];
	struct mallinfo2 before, after;
	const char *s = NULL;

	CU_ASSERT_EQUAL_FATAL(ccb_classad_new(&ad, NULL), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(ccb_classad_set_string(ad, "Keep", "kept"), CCB_OK);
	keep = ccb_classad_name_at(ad, 0);
	for (int i = 0; i < 2000; i++) { /* past the waste limit, to its steady state */
		snprintf(name, sizeof name, "Churning%d", i);
		CU_ASSERT_EQUAL(ccb_classad_set_int(ad, name, i), CCB_OK);
		CU_ASSERT_EQUAL(ccb_classad_remove(ad, name), CCB_OK);
	}
	before = mallinfo2();
	for (int i = 0; i < 100000; i++) {
		snprintf(name, sizeof name, "Churning%d", i);
		CU_ASSERT_EQUAL(ccb_classad_set_int(ad, name, i), CCB_OK);
		/* A respelling replaces the name. */
		name[0] = 'c';
		CU_ASSERT_EQUAL(ccb_classad_set_int(ad, name, -i), CCB_OK);
		CU_ASSERT_EQUAL(ccb_classad_count(ad), 2);
		CU_ASSERT_EQUAL(ccb_classad_remove(ad, name), CCB_OK);
	}
	after = mallinfo2();
	CU_ASSERT(after.uordblks < before.uordblks + 4096);
	CU_ASSERT_PTR_EQUAL(ccb_classad_name_at(ad, 0), keep);
	CU_ASSERT_STRING_EQUAL(keep, "Keep");
	CU_ASSERT(ccb_classad_get_string(ad, "keep", &s) == CCB_OK && !strcmp(s, "kept"));
	ccb_classad_free(ad);
}

static const ccbt_test tests[] = {
	{"name blocks stay bounded under churn", test_name_churn},
	{"public constructors and text", test_public_constructors},
	{"worked example 9.1 (plain)", test_worked_example_plain},
	{"worked example 9.2 (AES string form)", test_worked_example_crypto},
	{"C++ private ad 9.3", test_cpp_private_ad},
	{"private attribute names", test_private_names},
	{"value printing", test_value_printing},
	{"old-syntax string reading", test_string_reading},
	{"parse types and errors", test_parse_types},
	{"attribute order", test_order},
	{"malformed wire ads", test_malformed},
	{"captures re-encode byte for byte", test_capture_reencode},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"classad", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
