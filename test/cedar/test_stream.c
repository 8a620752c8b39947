/*
 * CEDAR stream tests over real loopback TCP: golden bytes from
 * the wire spec cedar-stream.md, AES-GCM known answers (§6.6 b), reader
 * rejections of bad frames, deadlines and cancellation.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ccbt.h"
#include "cedar/legacy.h"
#include "cedar/stream_internal.h"

/* `detail` carries "<what> timed out after <N> ms" (error.h). */
static void expect_waited(const char *detail, const char *what)
{
	const char *p = strstr(detail, what), *q;
	bool ok = false;

	if (p && (q = strstr(p, " timed out after ")) != NULL) {
		q += strlen(" timed out after ");
		if (*q >= '0' && *q <= '9') {
			while (*q >= '0' && *q <= '9')
				q++;
			ok = strncmp(q, " ms", 3) == 0;
		}
	}
	if (!ok)
		fprintf(stderr, "\n  want \"%s ... timed out after <N> ms\" in: %s\n", what, detail);
	CU_ASSERT(ok);
}

/* A stream on one end of a loopback pair; the raw other end for the test. */
static ccb_stream *pair_stream(int *raw)
{
	int fds[2];
	ccb_stream *s;

	ccbt_tcp_pair(fds);
	CU_ASSERT_FATAL(ccb_stream_new(fds[0], &s, NULL) == CCB_OK);
	*raw = fds[1];
	return s;
}




/* §3.2: command int 67 then EOM. */
static void test_int_golden(void)
{
	int raw;
	ccb_stream *s = pair_stream(&raw);

	CU_ASSERT(ccb_stream_put_int(s, 67) == CCB_OK);
	CU_ASSERT(ccb_stream_end_message(s) == CCB_OK);
	ccbt_expect_wire(raw, "01 00000008 0000000000000043");
	/* Negative ints are sign-extended (S6 conn 13: deadline -1). */
	ccb_stream_put_int(s, -1);
	ccb_stream_put_uint(s, 0xffffffffu);
	ccb_stream_end_message(s);
	ccbt_expect_wire(raw, "01 00000010 ffffffffffffffff 00000000ffffffff");
	ccb_stream_free(s);
	close(raw);
}

/* §3: double 1.5 = frac 0x5fffffff, exp 1; strings; the NULL marker. */
static void test_double_string_golden(void)
{
	int raw;
	ccb_stream *s = pair_stream(&raw);

	ccb_stream_put_double(s, 1.5);
	ccb_stream_put_double(s, 0.0);
	ccb_stream_put_string(s, "condor@vm");
	ccb_stream_put_string(s, NULL);
	ccb_stream_put_null_string(s);
	ccb_stream_put_char(s, 'x');
	CU_ASSERT(ccb_stream_end_message(s) == CCB_OK);
	ccbt_expect_wire(raw, "01 0000002d"
			 "000000005fffffff 0000000000000001"
			 "0000000000000000 0000000000000000"
			 "636f6e646f7240766d00 00 ad 78");
	/* A string starting with the marker byte cannot be sent. */
	CU_ASSERT(ccb_stream_put_string(s, "\xad" "abc") == CCB_ERR_INVALID_ARG);
	ccb_stream_free(s);
	close(raw);
}

static void test_read_primitives(void)
{
	int raw;
	ccb_stream *s = pair_stream(&raw);
	int64_t v;
	int32_t v32;
	double d;
	char *str;
	uint8_t c;

	ccbt_send_hex(raw, "01 0000002d 000000005fffffff 0000000000000001 ffffffffffffff85"
		      "636f6e646f7240766d00 00 ad 78 0000000000000000");
	CU_ASSERT(ccb_stream_get_double(s, &d) == CCB_OK);
	CU_ASSERT_DOUBLE_EQUAL(d, 1.5, 1e-9);
	CU_ASSERT(ccb_stream_get_int32(s, &v32) == CCB_OK);
	CU_ASSERT_EQUAL(v32, -123);
	CU_ASSERT(ccb_stream_get_string(s, &str) == CCB_OK);
	CU_ASSERT_STRING_EQUAL(str, "condor@vm");
	ccb_free(str);
	CU_ASSERT(ccb_stream_get_string(s, &str) == CCB_OK);
	CU_ASSERT_STRING_EQUAL(str, "");
	ccb_free(str);
	CU_ASSERT(ccb_stream_get_string(s, &str) == CCB_OK);
	CU_ASSERT_PTR_NULL(str); /* 0xAD: no string */
	CU_ASSERT(ccb_stream_get_char(s, &c) == CCB_OK && c == 'x');
	CU_ASSERT(ccb_stream_unread(s) == 8);
	/* Bytes left unread at end of message are a protocol error. */
	CU_ASSERT(ccb_stream_end_of_message(s) == CCB_ERR_PROTOCOL);
	(void)v;
	ccb_stream_free(s);
	close(raw);
}

/* A message of two packets with a string straddling them. */
static void test_multi_packet(void)
{
	int raw;
	ccb_stream *s = pair_stream(&raw);
	int64_t v = 0;
	char *str = NULL;

	ccbt_send_hex(raw, "00 0000000b 0000000000000007 616263  01 00000004 64656600");
	CU_ASSERT(ccb_stream_get_int(s, &v) == CCB_OK);
	CU_ASSERT_EQUAL(v, 7);
	CU_ASSERT(ccb_stream_get_string(s, &str) == CCB_OK);
	CU_ASSERT_STRING_EQUAL(str, "abcdef");
	ccb_free(str);
	CU_ASSERT(ccb_stream_end_of_message(s) == CCB_OK);
	/* Reading past the end of a message fails instead of eating the next. */
	ccbt_send_hex(raw, "01 00000008 0000000000000001 01 00000008 0000000000000002");
	CU_ASSERT(ccb_stream_get_int(s, &v) == CCB_OK && v == 1);
	CU_ASSERT(ccb_stream_get_int(s, &v) == CCB_ERR_PROTOCOL);
	ccb_stream_free(s);
	close(raw);
}

/* A message larger than one packet is split, the last packet flagged. */
static void test_large_message_split(void)
{
	int fds[2];
	ccb_stream *a, *b;
	size_t n = 3 * 1024 * 1024;
	uint8_t *big = malloc(n), *back = malloc(n);

	for (size_t i = 0; i < n; i++)
		big[i] = (uint8_t)(i * 7);
	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &a, NULL);
	ccb_stream_new(fds[1], &b, NULL);
	ccb_stream_set_max_message(b, 4 * 1024 * 1024);
	/* Writer and reader in one thread: the kernel buffers are smaller than
	 * the message, so write from a helper thread. */
	pthread_t t;
	struct { ccb_stream *s; uint8_t *p; size_t n; } arg = {a, big, n};
	void *(*writer)(void *) = NULL;
	{
		extern void *ccbt_stream_writer(void *);
		writer = ccbt_stream_writer;
	}
	pthread_create(&t, NULL, writer, &arg);
	CU_ASSERT(ccb_stream_get_bytes(b, back, n) == CCB_OK);
	CU_ASSERT(memcmp(big, back, n) == 0);
	CU_ASSERT(ccb_stream_end_of_message(b) == CCB_OK);
	pthread_join(t, NULL);
	ccb_stream_free(a);
	ccb_stream_free(b);
	free(big);
	free(back);
}

void *ccbt_stream_writer(void *p);
void *ccbt_stream_writer(void *p)
{
	struct { ccb_stream *s; uint8_t *p; size_t n; } *arg = p;
	ccb_stream_put_bytes(arg->s, arg->p, arg->n);
	ccb_stream_end_message(arg->s);
	return NULL;
}

/* Receiver checks of H:reli_sock.cpp:831-931: each closes the stream. */
static void expect_read_error(const char *hex, ccb_err want)
{
	int raw;
	ccb_stream *s = pair_stream(&raw);
	int64_t v;

	ccb_stream_set_max_message(s, 4096);
	ccb_stream_set_timeout(s, 2000);
	ccbt_send_hex(raw, hex);
	shutdown(raw, SHUT_WR);
	CU_ASSERT_EQUAL(ccb_stream_get_int(s, &v), want);
	CU_ASSERT(ccb_stream_error(s)->detail[0] != '\0');
	/* The stream stays broken. */
	CU_ASSERT(ccb_stream_get_int(s, &v) != CCB_OK);
	ccb_stream_free(s);
	close(raw);
}

static void test_bad_frames(void)
{
	expect_read_error("01 00000000", CCB_ERR_PROTOCOL);           /* zero length */
	expect_read_error("01 00100001", CCB_ERR_PROTOCOL);           /* 1 MiB + 1 */
	expect_read_error("0b 00000008 0000000000000001", CCB_ERR_PROTOCOL); /* end flag 11 */
	expect_read_error("ff 00000008 0000000000000001", CCB_ERR_PROTOCOL); /* negative */
	expect_read_error("01 00001001", CCB_ERR_TOO_LARGE);          /* over our cap */
	expect_read_error("00 00000800 " , CCB_ERR_CLOSED);           /* truncated body */
	expect_read_error("01 0000", CCB_ERR_CLOSED);                 /* truncated header */
	expect_read_error("01 00000004 00000000", CCB_ERR_PROTOCOL);  /* int cut short */
	/* Many small packets adding up past the cap. */
	{
		static const char pkt[] = "00 00000008 0000000000000000 ";
		char *hex = calloc(600, sizeof pkt);
		for (int i = 0; i < 600; i++)
			memcpy(hex + i * (sizeof pkt - 1), pkt, sizeof pkt);
		expect_read_error(hex, CCB_ERR_TOO_LARGE);
		free(hex);
	}
}

static void test_timeout(void)
{
	int raw;
	ccb_stream *s = pair_stream(&raw);
	int64_t v, t0;

	ccb_stream_set_timeout(s, 200);
	ccb_stream_set_peer_name(s, "broker 127.0.0.1:1");
	t0 = ccb_now_ms();
	CU_ASSERT_EQUAL(ccb_stream_get_int(s, &v), CCB_ERR_TIMEOUT);
	/* Bounded by the deadline, not by the peer (generous margin). */
	CU_ASSERT(ccb_now_ms() - t0 < 5000);
	/* The detail names the peer, what was waited for, and for how long. */
	expect_waited(ccb_stream_error(s)->detail, "broker 127.0.0.1:1: reading a message");
	ccb_stream_free(s);

	/* A peer that sends half a header and stalls (slow loris). */
	s = pair_stream(&raw);
	ccb_stream_set_timeout(s, 10000);
	ccb_stream_set_deadline(s, ccb_now_ms() + 200);
	ccbt_send_hex(raw, "01 00");
	CU_ASSERT_EQUAL(ccb_stream_get_int(s, &v), CCB_ERR_TIMEOUT);
	expect_waited(ccb_stream_error(s)->detail, "reading a message");
	ccb_stream_free(s);
	close(raw);

	/* Waiting for a message says so. */
	s = pair_stream(&raw);
	CU_ASSERT_EQUAL(ccb_stream_wait_readable(s, 100), CCB_ERR_TIMEOUT);
	expect_waited(ccb_stream_error(s)->detail, "waiting for a message");
	ccb_stream_free(s);
	close(raw);
}

struct blocked_reader {
	ccb_stream *s;
	long tid; /* the reading thread */
};

/* Whether thread `tid` of this process sleeps in poll(): the system call it
 * is blocked in, from /proc/self/task/TID/syscall ("running" while it runs);
 * where that file cannot be read, whether the thread sleeps at all. */
static bool blocked_in_poll(void *arg)
{
	long tid = *(long *)arg, nr;
	char path[64], buf[256] = "", *p;
	FILE *f;

	snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", tid);
	if ((f = fopen(path, "r"))) {
		bool ok = fscanf(f, "%ld", &nr) == 1;
		fclose(f);
#ifdef SYS_poll
		if (ok && nr == SYS_poll)
			return true;
#endif
		return ok && nr == SYS_ppoll;
	}
	snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
	if (!(f = fopen(path, "r")))
		return false;
	buf[fread(buf, 1, sizeof buf - 1, f)] = '\0';
	fclose(f);
	p = strrchr(buf, ')'); /* "TID (comm) STATE ...", comm may hold spaces */
	return p && p[1] == ' ' && p[2] == 'S';
}

static void *shutdown_when_blocked(void *arg)
{
	struct blocked_reader *r = arg;

	/* The shutdown must find the reader blocked in its read. */
	if (!ccbt_wait_until(10000, blocked_in_poll, &r->tid))
		fprintf(stderr, "reader not seen blocked in poll() within 10 s ");
	ccb_stream_shutdown(r->s);
	return NULL;
}

static void test_cancel(void)
{
	int raw;
	ccb_stream *s = pair_stream(&raw);
	struct blocked_reader r = {s, (long)syscall(SYS_gettid)};
	pthread_t t;
	int64_t v;

	ccb_stream_set_timeout(s, 20000);
	pthread_create(&t, NULL, shutdown_when_blocked, &r);
	CU_ASSERT_EQUAL(ccb_stream_get_int(s, &v), CCB_ERR_CANCELLED);
	pthread_join(t, NULL);
	ccb_stream_free(s);
	close(raw);
}

static void test_closed_peer(void)
{
	int raw;
	ccb_stream *s = pair_stream(&raw);
	int64_t v;

	close(raw);
	CU_ASSERT_EQUAL(ccb_stream_get_int(s, &v), CCB_ERR_CLOSED);
	/* What happened, not a guessed cause. */
	CU_ASSERT_PTR_NOT_NULL(strstr(ccb_stream_error(s)->detail,
				      "reading a message: connection closed after 0 of 5 bytes"));
	ccb_stream_free(s);
}

/* ccb_tcp_connect: a refused connect names the peer; a connect that the
 * peer's full backlog leaves unanswered times out and says after how long. */
static void test_connect_details(void)
{
	int before = ccbt_count_fds(), lfd, fd = -1, held[16], nheld = 0;
	uint16_t port;
	ccb_error err;
	ccb_err rc = CCB_OK;

	lfd = ccbt_listen(&port);
	close(lfd);
	CU_ASSERT_EQUAL(ccb_tcp_connect("127.0.0.1", port, ccb_deadline_in(5000), "broker", &fd, &err),
			CCB_ERR_IO);
	CU_ASSERT_EQUAL(fd, -1);
	if (!strstr(err.detail, "connection refused by broker 127.0.0.1:"))
		fprintf(stderr, "\n  detail: %s\n", err.detail);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "connection refused by broker 127.0.0.1:"));

	/* A listener that never accepts, backlog 0: Linux drops the SYNs of
	 * connects once its accept queue is full, so one of these hangs. */
	lfd = ccbt_listen(&port);
	CU_ASSERT_EQUAL_FATAL(listen(lfd, 0), 0);
	while (nheld < 16) {
		rc = ccb_tcp_connect("127.0.0.1", port, ccb_deadline_in(150), "target", &fd, &err);
		if (rc != CCB_OK)
			break;
		held[nheld++] = fd;
	}
	CU_ASSERT_EQUAL(rc, CCB_ERR_TIMEOUT);
	CU_ASSERT_EQUAL(err.code, CCB_ERR_TIMEOUT);
	if (rc == CCB_ERR_TIMEOUT)
		expect_waited(err.detail, "connect to target 127.0.0.1:");
	for (int i = 0; i < nheld; i++)
		close(held[i]);
	close(lfd);
	CU_ASSERT_EQUAL(ccbt_count_fds(), before);
}

static const char KAT_KEY[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char KAT_IV[] = "000000fea0a1a2a3a4a5a6a7a8a9aaab";

/* §6.6 (b): known answers for the first three AES-GCM packets after one
 * plaintext packet each way. */
static void test_aes_known_answer(void)
{
	int raw;
	ccb_stream *s = pair_stream(&raw);
	size_t n;
	uint8_t *key = ccbt_unhex(KAT_KEY, &n), *iv = ccbt_unhex(KAT_IV, &n);
	int64_t v;

	ccb_stream_put_int(s, 67);
	ccb_stream_end_message(s);
	ccbt_expect_wire(raw, "01 00000008 0000000000000043");
	ccbt_send_hex(raw, "01 00000008 0000000000000001");
	CU_ASSERT(ccb_stream_get_int(s, &v) == CCB_OK && v == 1);
	CU_ASSERT(ccb_stream_end_of_message(s) == CCB_OK);

	CU_ASSERT(ccb__stream_set_aes_key_iv(s, key, iv) == CCB_OK);
	CU_ASSERT(ccb_stream_crypto_on(s));
	ccb_stream_put_int(s, 67);
	ccb_stream_end_message(s);
	ccbt_expect_wire(raw, "01 00000028 000000fea0a1a2a3a4a5a6a7a8a9aaab 32d839daf3121b6c"
			 "7c5ad682410de2b653ed903a094375b9");
	ccb_stream_put_int(s, 68);
	ccb_stream_end_message(s);
	ccbt_expect_wire(raw, "01 00000018 caf6c25d57eaa1acb0d33f19270598581c3ad65431ea81c1");
	ccb_stream_put_int(s, 69);
	ccb_stream_end_message(s);
	ccbt_expect_wire(raw, "01 00000018 2420d692f905b5149512d9b0edda7cad125ed09234d176e7");
	ccb_stream_free(s);
	close(raw);

	/* Same first packet with no plaintext before: zero digests. */
	s = pair_stream(&raw);
	ccb__stream_set_aes_key_iv(s, key, iv);
	ccb_stream_put_int(s, 67);
	ccb_stream_end_message(s);
	ccbt_expect_wire(raw, "01 00000028 000000fea0a1a2a3a4a5a6a7a8a9aaab 32d839daf3121b6c"
			 "1f0f1d9a255b13ce11fadddf347a1dba");
	ccb_stream_free(s);
	close(raw);
	free(key);
	free(iv);
}

/* The receiving side of the same vectors: a peer that sent int 67 in
 * plaintext and received int 1, then encrypted packets. */
static void test_aes_receive_known_answer(void)
{
	int raw;
	ccb_stream *s = pair_stream(&raw);
	size_t n;
	uint8_t *key = ccbt_unhex(KAT_KEY, &n);
	int64_t v;

	ccbt_send_hex(raw, "01 00000008 0000000000000043");
	CU_ASSERT(ccb_stream_get_int(s, &v) == CCB_OK && v == 67);
	ccb_stream_end_of_message(s);
	ccb_stream_put_int(s, 1);
	ccb_stream_end_message(s);
	ccbt_expect_wire(raw, "01 00000008 0000000000000001");
	CU_ASSERT(ccb_stream_set_aes_key(s, key) == CCB_OK);
	ccbt_send_hex(raw, "01 00000028 000000fea0a1a2a3a4a5a6a7a8a9aaab 32d839daf3121b6c"
		      "7c5ad682410de2b653ed903a094375b9"
		      "01 00000018 caf6c25d57eaa1acb0d33f19270598581c3ad65431ea81c1"
		      "01 00000018 2420d692f905b5149512d9b0edda7cad125ed09234d176e7");
	for (int64_t want = 67; want <= 69; want++) {
		CU_ASSERT(ccb_stream_get_int(s, &v) == CCB_OK);
		CU_ASSERT_EQUAL(v, want);
		CU_ASSERT(ccb_stream_end_of_message(s) == CCB_OK);
	}
	/* A replayed packet fails authentication (the counter moved on). */
	ccbt_send_hex(raw, "01 00000018 caf6c25d57eaa1acb0d33f19270598581c3ad65431ea81c1");
	CU_ASSERT_EQUAL(ccb_stream_get_int(s, &v), CCB_ERR_CRYPTO);
	ccb_stream_free(s);
	close(raw);
	free(key);
}

/* Two streams: handshake in clear, then strings in the length-prefixed form
 * and a tampered packet rejected. */
static void test_aes_roundtrip_and_digests(void)
{
	int fds[2];
	ccb_stream *a, *b;
	uint8_t key[32] = {1, 2, 3};
	char *str;
	int64_t v;

	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &a, NULL);
	ccb_stream_new(fds[1], &b, NULL);
	ccb_stream_put_string(a, "hello");
	ccb_stream_end_message(a);
	CU_ASSERT(ccb_stream_get_string(b, &str) == CCB_OK);
	ccb_free(str);
	ccb_stream_end_of_message(b);
	ccb_stream_set_aes_key(a, key);
	ccb_stream_set_aes_key(b, key);
	for (int i = 0; i < 3; i++) {
		ccb_stream_put_string(a, "secret");
		ccb_stream_put_int(a, i);
		CU_ASSERT(ccb_stream_end_message(a) == CCB_OK);
		CU_ASSERT(ccb_stream_get_string(b, &str) == CCB_OK);
		CU_ASSERT_STRING_EQUAL(str, "secret");
		ccb_free(str);
		CU_ASSERT(ccb_stream_get_int(b, &v) == CCB_OK && v == i);
		CU_ASSERT(ccb_stream_end_of_message(b) == CCB_OK);
		/* And back the other way. */
		ccb_stream_put_int(b, 100 + i);
		CU_ASSERT(ccb_stream_end_message(b) == CCB_OK);
		CU_ASSERT(ccb_stream_get_int(a, &v) == CCB_OK && v == 100 + i);
		ccb_stream_end_of_message(a);
	}
	ccb_stream_free(a);
	ccb_stream_free(b);

	/* Handshake views that differ (one side reset its digests) make the
	 * first encrypted packet fail: the AAD binds the handshake. */
	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &a, NULL);
	ccb_stream_new(fds[1], &b, NULL);
	ccb_stream_put_int(a, 60010);
	ccb_stream_end_message(a);
	ccb_stream_get_int(b, &v);
	ccb_stream_end_of_message(b);
	ccb_stream_reset_digests(b);
	ccb_stream_set_aes_key(a, key);
	ccb_stream_set_aes_key(b, key);
	ccb_stream_put_int(a, 1);
	ccb_stream_end_message(a);
	CU_ASSERT_EQUAL(ccb_stream_get_int(b, &v), CCB_ERR_CRYPTO);
	ccb_stream_free(a);
	ccb_stream_free(b);
}

/* ---- byte-stream mode ---------------------------------------------------- */

#define BYTES_BIG (300 * 1024 + 7) /* several CCB_STREAM_WRITE_CHUNK messages */

static uint8_t pattern_at(size_t i)
{
	return (uint8_t)(i * 7 + (i >> 8));
}

/* The writer: 1 byte, a big buffer, then ten 1-byte writes, then close. */
static void *bytes_writer(void *arg)
{
	ccb_stream *s = arg;
	uint8_t *big = malloc(BYTES_BIG);
	ccb_error err = {0};
	size_t off = 0;

	CU_ASSERT_FATAL(big != NULL);
	for (size_t i = 0; i < BYTES_BIG; i++)
		big[i] = pattern_at(1 + i);
	{
		uint8_t b = pattern_at(0);
		CU_ASSERT_EQUAL(ccb_stream_write(s, &b, 1, &err), CCB_OK);
	}
	CU_ASSERT_EQUAL(ccb_stream_write(s, big, BYTES_BIG, &err), CCB_OK);
	off = 1 + BYTES_BIG;
	for (int i = 0; i < 10; i++) {
		uint8_t b = pattern_at(off + (size_t)i);
		CU_ASSERT_EQUAL(ccb_stream_write(s, &b, 1, &err), CCB_OK);
	}
	/* Nothing to send is no message. */
	CU_ASSERT_EQUAL(ccb_stream_write(s, big, 0, &err), CCB_OK);
	free(big);
	ccb_stream_free(s); /* EOF for the reader */
	return NULL;
}

/* method: 0 plaintext, 3 AES-GCM, 2 3DES with encryption and MD5. */
static void bytes_roundtrip(int method)
{
	const size_t total = 1 + BYTES_BIG + 10;
	uint8_t key[32] = {9, 8, 7}, buf[5000];
	int fds[2];
	ccb_stream *a, *b;
	ccb_error err = {0};
	pthread_t t;
	size_t have = 0, got = 1;
	bool same = true;

	ccbt_tcp_pair(fds);
	CU_ASSERT_FATAL(ccb_stream_new(fds[0], &a, NULL) == CCB_OK);
	CU_ASSERT_FATAL(ccb_stream_new(fds[1], &b, NULL) == CCB_OK);
	if (method == 3) {
		CU_ASSERT_FATAL(ccb_stream_set_aes_key(a, key) == CCB_OK);
		CU_ASSERT_FATAL(ccb_stream_set_aes_key(b, key) == CCB_OK);
	} else if (method == 2) {
		CU_ASSERT_FATAL(ccb__stream_set_legacy_key(a, CCB_LEGACY_3DES, key, true, true) == CCB_OK);
		CU_ASSERT_FATAL(ccb__stream_set_legacy_key(b, CCB_LEGACY_3DES, key, true, true) == CCB_OK);
	}
	CU_ASSERT_FATAL(pthread_create(&t, NULL, bytes_writer, a) == 0);
	/* Reads of varying sizes, one byte at a time now and then; no read
	 * returns more than asked or nothing. */
	for (int i = 0; have < total; i++) {
		size_t want = i % 5 == 0 ? 1 : (size_t)(1 + (i * 997) % (int)sizeof buf);
		got = 0;
		if (ccb_stream_read(b, buf, want, &got, &err) != CCB_OK) {
			CU_FAIL("stream read failed before the end");
			fprintf(stderr, "read: %s\n", err.detail);
			break;
		}
		CU_ASSERT(got >= 1 && got <= want);
		for (size_t k = 0; k < got; k++)
			same = same && buf[k] == pattern_at(have + k);
		have += got;
	}
	CU_ASSERT_EQUAL(have, total);
	CU_ASSERT(same);
	/* End of the stream: CLOSED with nothing read, every time. */
	got = 1;
	CU_ASSERT_EQUAL(ccb_stream_read(b, buf, sizeof buf, &got, &err), CCB_ERR_CLOSED);
	CU_ASSERT_EQUAL(got, 0);
	CU_ASSERT_EQUAL(err.code, CCB_ERR_CLOSED);
	CU_ASSERT_EQUAL(ccb_stream_read(b, buf, 1, &got, NULL), CCB_ERR_CLOSED);
	pthread_join(t, NULL);
	ccb_stream_free(b);
}

static void test_bytes_plain(void)
{
	bytes_roundtrip(0);
}

static void test_bytes_aes(void)
{
	bytes_roundtrip(3);
}

static void test_bytes_3des(void)
{
	bytes_roundtrip(2);
}

/* On the wire a write is a CEDAR message whose body is the bytes: a peer
 * reading messages sees one blob per write; the modes do not mix with a
 * message being built; bad arguments are refused. */
static void test_bytes_wire_and_args(void)
{
	int raw;
	ccb_stream *s = pair_stream(&raw);
	ccb_error err = {0};
	size_t got = 9;
	uint8_t b[4];

	CU_ASSERT_EQUAL(ccb_stream_write(s, "abc", 3, &err), CCB_OK);
	ccbt_expect_wire(raw, "01 00000003 616263");
	CU_ASSERT_EQUAL(ccb_stream_put_int(s, 1), CCB_OK);
	CU_ASSERT_EQUAL(ccb_stream_write(s, "x", 1, &err), CCB_ERR_STATE);
	CU_ASSERT_EQUAL(err.code, CCB_ERR_STATE);
	CU_ASSERT_EQUAL(ccb_stream_read(s, b, 0, &got, &err), CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(got, 0);
	CU_ASSERT_EQUAL(ccb_stream_write(NULL, "x", 1, NULL), CCB_ERR_INVALID_ARG);
	ccb_stream_free(s);
	close(raw);

	/* A message-reading peer of a byte writer. */
	{
		int fds[2];
		ccb_stream *w, *r;
		ccbt_tcp_pair(fds);
		ccb_stream_new(fds[0], &w, NULL);
		ccb_stream_new(fds[1], &r, NULL);
		CU_ASSERT_EQUAL(ccb_stream_write(w, "ping", 4, NULL), CCB_OK);
		CU_ASSERT_EQUAL(ccb_stream_wait_readable(r, 5000), CCB_OK);
		CU_ASSERT_EQUAL(ccb_stream_get_bytes(r, b, 4), CCB_OK);
		CU_ASSERT_EQUAL(ccb_stream_unread(r), 0);
		CU_ASSERT_EQUAL(ccb_stream_end_of_message(r), CCB_OK);
		CU_ASSERT(memcmp(b, "ping", 4) == 0);
		/* And a byte reader of a message writer. */
		ccb_stream_put_int(r, 67);
		ccb_stream_end_message(r);
		got = 0;
		CU_ASSERT_EQUAL(ccb_stream_read(w, b, 4, &got, NULL), CCB_OK);
		CU_ASSERT_EQUAL(got, 4);
		ccb_stream_free(w);
		ccb_stream_free(r);
	}
}

static void test_detach_and_fds(void)
{
	int before = ccbt_count_fds(), raw, fd = -1;
	ccb_stream *s = pair_stream(&raw);

	ccb_stream_put_int(s, 1);
	CU_ASSERT(ccb_stream_detach_fd(s, &fd) == CCB_ERR_STATE);
	ccb_stream_end_message(s);
	CU_ASSERT(ccb_stream_detach_fd(s, &fd) == CCB_OK);
	CU_ASSERT(fd >= 0);
	ccb_stream_free(s);
	CU_ASSERT(close(fd) == 0); /* still open: the stream did not close it */
	close(raw);
	CU_ASSERT_EQUAL(ccbt_count_fds(), before);
}

/* A corked stream sends nothing until it reads, waits to read or is
 * uncorked; then the held messages arrive intact and in order, plaintext
 * and AES-GCM (the first packet with the handshake digests) alike. */
static void test_cork(void)
{
	int fds[2];
	ccb_stream *a, *b;
	uint8_t key[32] = {9, 8, 7};
	uint8_t byte;
	int64_t v;

	ccbt_tcp_pair(fds);
	CU_ASSERT_FATAL(ccb_stream_new(fds[0], &a, NULL) == CCB_OK);
	CU_ASSERT_FATAL(ccb_stream_new(fds[1], &b, NULL) == CCB_OK);
	ccb__stream_cork(a);
	ccb_stream_put_int(a, 1);
	CU_ASSERT(ccb_stream_end_message(a) == CCB_OK);
	ccb_stream_put_int(a, 2);
	CU_ASSERT(ccb_stream_end_message(a) == CCB_OK);
	CU_ASSERT(recv(fds[1], &byte, 1, MSG_PEEK | MSG_DONTWAIT) < 0);
	/* Waiting for an answer sends what was held first. */
	ccb_stream_put_int(b, 99);
	CU_ASSERT(ccb_stream_end_message(b) == CCB_OK);
	CU_ASSERT(ccb_stream_wait_readable(a, 5000) == CCB_OK);
	CU_ASSERT(ccb_stream_get_int(b, &v) == CCB_OK && v == 1);
	CU_ASSERT(ccb_stream_end_of_message(b) == CCB_OK);
	CU_ASSERT(ccb_stream_get_int(b, &v) == CCB_OK && v == 2);
	CU_ASSERT(ccb_stream_end_of_message(b) == CCB_OK);
	CU_ASSERT(ccb_stream_get_int(a, &v) == CCB_OK && v == 99);
	CU_ASSERT(ccb_stream_end_of_message(a) == CCB_OK);

	/* Still corked: a read flushes too. */
	ccb_stream_put_int(a, 3);
	CU_ASSERT(ccb_stream_end_message(a) == CCB_OK);
	ccb_stream_put_int(b, 4);
	CU_ASSERT(ccb_stream_end_message(b) == CCB_OK);
	CU_ASSERT(ccb_stream_get_int(a, &v) == CCB_OK && v == 4);
	ccb_stream_end_of_message(a);
	CU_ASSERT(ccb_stream_get_int(b, &v) == CCB_OK && v == 3);
	ccb_stream_end_of_message(b);

	/* AES-GCM: the first packet each way carries the digests. */
	CU_ASSERT(ccb_stream_set_aes_key(a, key) == CCB_OK);
	CU_ASSERT(ccb_stream_set_aes_key(b, key) == CCB_OK);
	for (int i = 0; i < 3; i++) {
		ccb_stream_put_int(a, 10 + i);
		CU_ASSERT(ccb_stream_end_message(a) == CCB_OK);
	}
	CU_ASSERT(recv(fds[1], &byte, 1, MSG_PEEK | MSG_DONTWAIT) < 0);
	CU_ASSERT(ccb__stream_uncork(a) == CCB_OK);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT(ccb_stream_get_int(b, &v) == CCB_OK && v == 10 + i);
		CU_ASSERT(ccb_stream_end_of_message(b) == CCB_OK);
	}
	ccb_stream_put_int(b, 20);
	CU_ASSERT(ccb_stream_end_message(b) == CCB_OK);
	CU_ASSERT(ccb_stream_get_int(a, &v) == CCB_OK && v == 20);
	ccb_stream_end_of_message(a);
	ccb_stream_free(a);
	ccb_stream_free(b);
}

/* ccb_stream_error() is a valid error before any failure (CCB_OK, empty
 * detail) and names the peer after one. */
static void test_error_detail(void)
{
	int raw;
	ccb_stream *s = pair_stream(&raw);
	const ccb_error *e = ccb_stream_error(s);

	CU_ASSERT_FATAL(e != NULL);
	CU_ASSERT_EQUAL(e->code, CCB_OK);
	CU_ASSERT_STRING_EQUAL(e->detail, "");
	ccb_stream_set_peer_name(s, "a peer with a name longer than the ninety-six bytes the "
				    "stream used to keep for it, which now fits whatever it is");
	CU_ASSERT(ccb_stream_put_string(s, "\xad") == CCB_ERR_INVALID_ARG);
	e = ccb_stream_error(s);
	CU_ASSERT_EQUAL(e->code, CCB_ERR_INVALID_ARG);
	CU_ASSERT(strstr(e->detail, "which now fits whatever it is: ") != NULL);
	CU_ASSERT(strstr(e->detail, "0xAD") != NULL);
	ccb_stream_free(s);
	close(raw);
}

static const ccbt_test tests[] = {
	{"int golden bytes", test_int_golden},
	{"double/string golden bytes", test_double_string_golden},
	{"read primitives", test_read_primitives},
	{"multi-packet message", test_multi_packet},
	{"large message split", test_large_message_split},
	{"bad frames rejected", test_bad_frames},
	{"timeouts and deadlines", test_timeout},
	{"cancel from another thread", test_cancel},
	{"closed peer", test_closed_peer},
	{"connect: refused and timed-out details", test_connect_details},
	{"AES-GCM known answer (send)", test_aes_known_answer},
	{"AES-GCM known answer (receive)", test_aes_receive_known_answer},
	{"AES-GCM round trip and digests", test_aes_roundtrip_and_digests},
	{"detach fd, no leaks", test_detach_and_fds},
	{"cork: held messages go out at read, wait or uncork", test_cork},
	{"error detail before and after a failure", test_error_detail},
	{"byte-stream mode, plaintext", test_bytes_plain},
	{"byte-stream mode, AES-GCM", test_bytes_aes},
	{"byte-stream mode, 3DES", test_bytes_3des},
	{"byte-stream mode on the wire, arguments", test_bytes_wire_and_args},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"cedar stream", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
