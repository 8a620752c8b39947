/* Streaming (proxy) sessions through the broker: the forward's attributes,
 * the reply and replayed hello, a 64 MiB-each-way splice checked by hash,
 * the caps and the handshake timeout (ccb-protocol.md §7). */
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>

#include <openssl/evp.h>

#include "bktest.h"

#define BIG (64u * 1024 * 1024)

typedef struct pump {
	int fd;
	uint32_t seed;
	bool writer;
	uint8_t digest[32];
	size_t n;
} pump;

static void fill(uint8_t *buf, size_t n, uint32_t *x)
{
	for (size_t i = 0; i < n; i++) {
		*x ^= *x << 13;
		*x ^= *x >> 17;
		*x ^= *x << 5;
		buf[i] = (uint8_t)*x;
	}
}

static void *pump_main(void *arg)
{
	pump *p = arg;
	static const size_t chunk = 256 * 1024;
	uint8_t *buf = malloc(chunk);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint32_t x = p->seed;
	unsigned len = 32;

	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	if (p->writer) {
		while (p->n < BIG) {
			size_t n = BIG - p->n < chunk ? BIG - p->n : chunk, off = 0;
			fill(buf, n, &x);
			EVP_DigestUpdate(md, buf, n);
			while (off < n) {
				ssize_t w = send(p->fd, buf + off, n - off, MSG_NOSIGNAL);
				if (w <= 0)
					goto out;
				off += (size_t)w;
			}
			p->n += n;
		}
		shutdown(p->fd, SHUT_WR);
	} else {
		for (;;) {
			ssize_t r = recv(p->fd, buf, chunk, 0);
			if (r <= 0)
				break;
			EVP_DigestUpdate(md, buf, (size_t)r);
			p->n += (size_t)r;
		}
	}
out:
	EVP_DigestFinal_ex(md, p->digest, &len);
	EVP_MD_CTX_free(md);
	free(buf);
	return NULL;
}

static int fds_before;

/* Start a streaming request; the listener answers by dialing the broker.
 * Returns the requester's and the target's raw fds after the rendezvous. */
static void rendezvous(bkt_broker *k, bkt_listener *l, int *req_fd, int *tgt_fd)
{
	ccb_stream *rq = NULL, *ts = NULL;
	ccb_classad *fwd = NULL, *hello = NULL, *reply = NULL, *replayed = NULL;
	char cid[CCB_CONNECT_ID_SIZE], bare[128];
	const char *v;
	const char *addr = ccb_broker_address(k->b);

	ccb_connect_id_new(cid, NULL);
	CU_ASSERT_EQUAL_FATAL(bkt_request(k->port, "1", "", cid, true, &rq), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(ccb_control_ad_read(l->s, &fwd, NULL), CCB_OK);
	/* Forward as capture S5 conn 1 msg 13. */
	snprintf(bare, sizeof bare, "%.*s", (int)strlen(addr) - 2, addr + 1);
	CU_ASSERT(ccb_classad_get_string(fwd, CCB_ATTR_MY_ADDRESS, &v) == CCB_OK && !strcmp(v, addr));
	CU_ASSERT(ccb_classad_get_string(fwd, CCB_ATTR_CCB_PRIOR_HOP, &v) == CCB_OK && !strcmp(v, bare));
	CU_ASSERT(ccb_classad_get_string(fwd, CCB_ATTR_CCB_ORIGINAL_REQUESTER, &v) == CCB_OK &&
		  !strncmp(v, "unauthenticated@unmapped at <127.0.0.1:", 39));
	CU_ASSERT(ccb_classad_get_string(fwd, CCB_ATTR_CLAIM_ID, &v) == CCB_OK && !strcmp(v, cid));
	CU_ASSERT_EQUAL(ccb_classad_count(fwd), 7);
	/* The target dials the broker itself and says hello (raw 69). */
	CU_ASSERT_EQUAL_FATAL(ccb_stream_connect("127.0.0.1", k->port, 5000, &ts, NULL), CCB_OK);
	CU_ASSERT_EQUAL(ccb_hello_ad_from_request(fwd, &hello, NULL), CCB_OK);
	CU_ASSERT_EQUAL(ccb_hello_write(ts, hello, 0, NULL), CCB_OK);
	CU_ASSERT_EQUAL(bkt_result(l, fwd, true, NULL), CCB_OK);
	/* Requester: {Result = true, ProxyMode = true}, then the hello. */
	CU_ASSERT_EQUAL_FATAL(ccb_control_ad_read(rq, &reply, NULL), CCB_OK);
	CU_ASSERT(ccb_ad_bool_or(reply, CCB_ATTR_RESULT, false));
	CU_ASSERT(ccb_ad_bool_or(reply, CCB_ATTR_PROXY_MODE, false));
	CU_ASSERT_EQUAL(ccb_classad_count(reply), 2);
	CU_ASSERT_EQUAL_FATAL(ccb_hello_read(rq, cid, &replayed, NULL), CCB_OK);
	/* The target's own hello, unchanged (5 attributes). */
	CU_ASSERT_EQUAL(ccb_classad_count(replayed), 5);
	CU_ASSERT(ccb_classad_get_string(replayed, CCB_ATTR_CCB_PRIOR_HOP, &v) == CCB_OK && !strcmp(v, bare));
	CU_ASSERT_EQUAL(ccb_stream_detach_fd(rq, req_fd), CCB_OK);
	CU_ASSERT_EQUAL(ccb_stream_detach_fd(ts, tgt_fd), CCB_OK);
	/* The pumps use plain blocking I/O. */
	fcntl(*req_fd, F_SETFL, fcntl(*req_fd, F_GETFL) & ~O_NONBLOCK);
	fcntl(*tgt_fd, F_SETFL, fcntl(*tgt_fd, F_GETFL) & ~O_NONBLOCK);
	ccb_stream_free(rq);
	ccb_stream_free(ts);
	ccb_classad_free(fwd);
	ccb_classad_free(hello);
	ccb_classad_free(reply);
	ccb_classad_free(replayed);
}

static void test_splice_64mib(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	bkt_listener l;
	int rfd = -1, tfd = -1;
	pump p[4];
	pthread_t t[4];

	fds_before = ccbt_count_fds();
	bkt_config(&cfg, &k.sec);
	bkt_start(&k, &cfg);
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &l), CCB_OK);
	rendezvous(&k, &l, &rfd, &tfd);
	CU_ASSERT(bkt_wait_stat(k.b, "CCBStreamingSessions", 1));
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBStreamingHandshakesActive"), 0);
	/* Both ways at once. */
	p[0] = (pump){.fd = rfd, .seed = 1, .writer = true};
	p[1] = (pump){.fd = tfd, .seed = 2, .writer = true};
	p[2] = (pump){.fd = tfd};
	p[3] = (pump){.fd = rfd};
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, pump_main, &p[i]);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	CU_ASSERT_EQUAL(p[0].n, BIG);
	CU_ASSERT_EQUAL(p[1].n, BIG);
	CU_ASSERT_EQUAL(p[2].n, BIG);
	CU_ASSERT_EQUAL(p[3].n, BIG);
	CU_ASSERT(memcmp(p[0].digest, p[2].digest, 32) == 0);
	CU_ASSERT(memcmp(p[1].digest, p[3].digest, 32) == 0);
	close(rfd);
	close(tfd);
	CU_ASSERT(bkt_wait_stat(k.b, "CCBStreamingActive", 0));
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBStreamingBytes"), 2LL * BIG);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBStreamingRequests"), 1);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBRequestsSucceeded"), 1);
	bkt_listener_close(&l);
	bkt_stop(&k);
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds_before);
}

static void expect_refusal(int port, const char *text)
{
	ccb_stream *rq = NULL;
	char cid[CCB_CONNECT_ID_SIZE], got[256];
	bool ok = true;

	ccb_connect_id_new(cid, NULL);
	CU_ASSERT_EQUAL_FATAL(bkt_request(port, "1", "", cid, true, &rq), CCB_OK);
	CU_ASSERT_EQUAL(bkt_reply(rq, &ok, got, sizeof got), CCB_OK);
	CU_ASSERT(!ok);
	CU_ASSERT_STRING_EQUAL(got, text);
	ccb_stream_free(rq);
}

/* Caps refuse the next session with the C++ texts; the handshake timeout
 * fails a session whose target never dials. */
static void test_caps_and_timeout(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	bkt_listener l;
	ccb_stream *rq = NULL;
	ccb_classad *fwd = NULL;
	int rfd, tfd;
	char cid[CCB_CONNECT_ID_SIZE], got[256];
	bool ok = true;

	fds_before = ccbt_count_fds();
	bkt_config(&cfg, &k.sec);
	cfg.max_streaming_handshakes = 1;
	cfg.max_streaming_sessions = 2;
	cfg.streaming_handshake_timeout_ms = 400;
	bkt_start(&k, &cfg);
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &l), CCB_OK);
	/* One relay established (session 1 of 2). */
	rendezvous(&k, &l, &rfd, &tfd);
	/* A second one waits for its target (handshake 1 of 1). */
	ccb_connect_id_new(cid, NULL);
	CU_ASSERT_EQUAL_FATAL(bkt_request(k.port, "1", "", cid, true, &rq), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(ccb_control_ad_read(l.s, &fwd, NULL), CCB_OK);
	ccb_classad_free(fwd);
	CU_ASSERT(bkt_wait_stat(k.b, "CCBStreamingHandshakesActive", 1));
	expect_refusal(k.port, "CCB streaming session limit reached on the broker");
	/* The waiting one times out. */
	CU_ASSERT_EQUAL(bkt_reply(rq, &ok, got, sizeof got), CCB_OK);
	CU_ASSERT(!ok);
	CU_ASSERT_STRING_EQUAL(got, "CCB streaming handshake timed out: the target did not connect back to the broker");
	ccb_stream_free(rq);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "StreamingHandshakesTimedOut"), 1);
	/* With the relay gone, the handshake cap is what refuses. */
	close(rfd);
	close(tfd);
	CU_ASSERT(bkt_wait_stat(k.b, "CCBStreamingActive", 0));
	ccb_connect_id_new(cid, NULL);
	CU_ASSERT_EQUAL_FATAL(bkt_request(k.port, "1", "", cid, true, &rq), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(ccb_control_ad_read(l.s, &fwd, NULL), CCB_OK);
	expect_refusal(k.port, "CCB streaming handshake limit reached on the broker");
	/* The target reports failure instead of dialing: passed on at once. */
	CU_ASSERT_EQUAL(bkt_result(&l, fwd, false, "failed to connect"), CCB_OK);
	CU_ASSERT_EQUAL(bkt_reply(rq, &ok, got, sizeof got), CCB_OK);
	CU_ASSERT(!ok);
	CU_ASSERT_STRING_EQUAL(got, "failed to connect");
	ccb_classad_free(fwd);
	ccb_stream_free(rq);
	/* A hello nobody waits for is closed. */
	{
		ccb_stream *ts = NULL;
		ccb_classad *h = NULL;
		int64_t x;
		ccb_hello_ad_new("0123456789012345678901234567890123456789", "77", "<127.0.0.1:1>", &h, NULL);
		CU_ASSERT_EQUAL_FATAL(ccb_stream_connect("127.0.0.1", k.port, 5000, &ts, NULL), CCB_OK);
		CU_ASSERT_EQUAL(ccb_hello_write(ts, h, 0, NULL), CCB_OK);
		CU_ASSERT_EQUAL(ccb_stream_get_int(ts, &x), CCB_ERR_CLOSED);
		ccb_stream_free(ts);
		ccb_classad_free(h);
	}
	CU_ASSERT(bkt_heartbeat(&l));
	bkt_listener_close(&l);
	bkt_stop(&k);
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds_before);
}

/* Streaming off: a request that requires it gets the C++ text. */
static void test_streaming_disabled(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	bkt_listener l;

	bkt_config(&cfg, &k.sec);
	cfg.streaming_disabled = true;
	bkt_start(&k, &cfg);
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &l), CCB_OK);
	CU_ASSERT(!l.streaming_advertised);
	expect_refusal(k.port, "CCB streaming mode is required to reach this daemon but is disabled on "
			       "the CCB server (CCB_SERVER_STREAMING is false)");
	bkt_listener_close(&l);
	bkt_stop(&k);
}

static const ccbt_test tests[] = {
	{"64 MiB each way through the splice", test_splice_64mib},
	{"caps, handshake timeout, early failure", test_caps_and_timeout},
	{"streaming disabled", test_streaming_disabled},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"broker streaming", tests}, {NULL, NULL}};

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return ccbt_run(suites);
}
