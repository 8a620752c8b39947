/*
 * Shared port: SHARED_PORT_CONNECT bytes against the S6 capture and the
 * spec example, the request parser's limits, the digest reset, and
 * client -> our server -> endpoint over real sockets on 127.0.0.1.
 */
#include <jansson.h>
#include <sys/stat.h>

#include "ccb/commands.h"
#include "cedar/codec.h"
#include "sharedport/sharedport_internal.h"
#include "sptest.h"

#define S6_DIR CCB_VECTORS_DIR "/S6-shared-port"
/* testvectors/S6-shared-port, conn 13, message 1 (also shared-port.md §2). */
#define CAPTURED_CONNECT                                                     \
	"01 00 00 00 2f 00 00 00 00 00 00 00 4b 6d 61 73 74 65 72 5f 32 39 37 " \
	"36 31 5f 37 36 39 30 00 54 4f 4f 4c 00 ff ff ff ff ff ff ff ff 00 00 " \
	"00 00 00 00 00 00"
/* shared-port.md §2 worked example: schedd_12345_ab12, TOOL, deadline 20. */
#define SPEC_EXAMPLE                                                          \
	"01 00 00 00 2f 00 00 00 00 00 00 00 4b 73 63 68 65 64 64 5f 31 32 33 " \
	"34 35 5f 61 62 31 32 00 54 4f 4f 4c 00 00 00 00 00 00 00 00 14 00 00 " \
	"00 00 00 00 00 00"

/* Bytes our client writes for (id, name, deadline), read off the wire. */
static size_t client_bytes(const char *id, const char *name, int64_t deadline, uint8_t *buf,
			   size_t cap)
{
	int fds[2];
	ccb_stream *s;
	size_t n;

	ccbt_tcp_pair(fds);
	CU_ASSERT_FATAL(ccb_stream_new(fds[0], &s, NULL) == CCB_OK);
	CU_ASSERT(ccb_sharedport_send_connect(s, id, name, deadline, NULL) == CCB_OK);
	ccb_stream_free(s);
	n = sp_read(fds[1], buf, cap, 2000);
	close(fds[1]);
	return n;
}

/* First 52 bytes of a captured segment (streams.json, hex). */
static uint8_t *captured_segment(int conn, int seg, size_t *len)
{
	json_t *root = json_load_file(S6_DIR "/streams.json", 0, NULL);
	json_t *c;
	size_t i;
	uint8_t *out = NULL;

	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	json_array_foreach(json_object_get(root, "connections"), i, c) {
		json_t *s;
		char hex[2 * 52 + 1];
		if (json_integer_value(json_object_get(c, "id")) != conn)
			continue;
		s = json_array_get(json_object_get(c, "segments"), (size_t)seg);
		snprintf(hex, sizeof hex, "%s", json_string_value(json_object_get(s, "hex")));
		out = ccbt_unhex(hex, len);
	}
	json_decref(root);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	return out;
}

static void test_golden_capture(void)
{
	uint8_t buf[128];
	size_t n, glen;
	uint8_t *golden = ccbt_unhex(CAPTURED_CONNECT, &glen);
	uint8_t *cap13, *cap12;

	/* condor_ping, no deadline: -1 (conn 13, c2s, message 1). */
	cap13 = captured_segment(13, 0, &n);
	CU_ASSERT_EQUAL(n, glen);
	CU_ASSERT(memcmp(cap13, golden, glen) == 0);
	n = client_bytes("master_29761_7690", NULL, INT64_MAX, buf, sizeof buf);
	CU_ASSERT_EQUAL(n, glen);
	CU_ASSERT(memcmp(buf, golden, glen) == 0);

	/* condor_config_val, deadline 30 (conn 12, s2c on the reversed socket). */
	cap12 = captured_segment(12, 1, &n);
	n = client_bytes("master_29761_7690", "TOOL", ccb_deadline_in(30000), buf, sizeof buf);
	CU_ASSERT_EQUAL(n, glen);
	CU_ASSERT(memcmp(buf, cap12, glen) == 0);
	free(golden);
	free(cap13);
	free(cap12);
}

static void test_golden_spec_example(void)
{
	uint8_t buf[128];
	size_t n, glen;
	uint8_t *golden = ccbt_unhex(SPEC_EXAMPLE, &glen);

	n = client_bytes("schedd_12345_ab12", "TOOL", ccb_deadline_in(20000), buf, sizeof buf);
	CU_ASSERT_EQUAL(n, 52);
	CU_ASSERT(n == glen && memcmp(buf, golden, glen) == 0);
	/* And our parser reads it back as the server would. */
	{
		sharedport__request r;
		ccb_error e;
		CU_ASSERT(sharedport__parse_connect(golden + 5, glen - 5, &r, &e) == CCB_OK);
		CU_ASSERT_STRING_EQUAL(r.id, "schedd_12345_ab12");
		CU_ASSERT_STRING_EQUAL(r.client_name, "TOOL");
		CU_ASSERT_EQUAL(r.deadline, 20);
		CU_ASSERT_EQUAL(r.more_args, 0);
	}
	free(golden);
}

static void test_ids_and_deadline_field(void)
{
	char big[CCB_SHAREDPORT_ID_MAX + 2];

	CU_ASSERT_EQUAL(CCB_CMD_SHARED_PORT_CONNECT, SHAREDPORT_CONNECT);
	CU_ASSERT_EQUAL(CCB_CMD_SHARED_PORT_PASS_SOCK, SHAREDPORT_PASS_SOCK);
	CU_ASSERT(ccb_sharedport_id_valid("master_29761_7690"));
	CU_ASSERT(ccb_sharedport_id_valid("A-z.0_9"));
	CU_ASSERT(!ccb_sharedport_id_valid(""));
	CU_ASSERT(!ccb_sharedport_id_valid(NULL));
	CU_ASSERT(!ccb_sharedport_id_valid("../etc"));
	CU_ASSERT(!ccb_sharedport_id_valid("a/b"));
	CU_ASSERT(!ccb_sharedport_id_valid("a b"));
	memset(big, 'a', sizeof big);
	big[CCB_SHAREDPORT_ID_MAX] = '\0';
	CU_ASSERT(ccb_sharedport_id_valid(big));
	big[CCB_SHAREDPORT_ID_MAX] = 'a';
	big[CCB_SHAREDPORT_ID_MAX + 1] = '\0';
	CU_ASSERT(!ccb_sharedport_id_valid(big));

	CU_ASSERT_EQUAL(sharedport__deadline_field(INT64_MAX, 1000), -1);
	CU_ASSERT_EQUAL(sharedport__deadline_field(500, 1000), 0);
	CU_ASSERT_EQUAL(sharedport__deadline_field(1000, 1000), 0);
	CU_ASSERT_EQUAL(sharedport__deadline_field(1001, 1000), 1);
	CU_ASSERT_EQUAL(sharedport__deadline_field(31000, 1000), 30);
	CU_ASSERT_EQUAL(sharedport__deadline_field(INT64_MAX - 1, 0), INT32_MAX);
}

static void test_connect_bad_args(void)
{
	static const uint8_t key[32] = {1};
	char name[CCB_SHAREDPORT_ID_MAX + 2];
	int fds[2];
	ccb_stream *s;
	ccb_error e;

	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &s, NULL);
	CU_ASSERT_EQUAL(ccb_sharedport_send_connect(s, "bad/id", NULL, INT64_MAX, &e),
			CCB_ERR_INVALID_ARG);
	memset(name, 'n', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	CU_ASSERT_EQUAL(ccb_sharedport_send_connect(s, "x", name, INT64_MAX, &e),
			CCB_ERR_INVALID_ARG);
	ccb_stream_put_int(s, 1); /* partly written message */
	CU_ASSERT_EQUAL(ccb_sharedport_send_connect(s, "x", NULL, INT64_MAX, &e), CCB_ERR_STATE);
	ccb_stream_end_message(s);
	ccb_stream_set_aes_key(s, key);
	CU_ASSERT_EQUAL(ccb_sharedport_send_connect(s, "x", NULL, INT64_MAX, &e), CCB_ERR_STATE);
	CU_ASSERT_EQUAL(ccb_sharedport_send_connect(NULL, "x", NULL, INT64_MAX, &e),
			CCB_ERR_INVALID_ARG);
	ccb_stream_free(s);
	close(fds[1]);
}

/*
 * The target daemon never sees SHARED_PORT_CONNECT (the server consumed
 * it), so its handshake view starts after it. With the reset, the client's
 * first AES packet authenticates against that view; without it, it fails.
 */
static void digest_case(bool use_api, ccb_err want)
{
	static const uint8_t key[32] = {9, 8, 7};
	uint8_t raw[52];
	int fds[2];
	ccb_stream *client, *daemon;
	int64_t v = 0;

	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &client, NULL);
	if (use_api) {
		CU_ASSERT(ccb_sharedport_send_connect(client, "d1", NULL, INT64_MAX, NULL) == CCB_OK);
	} else {
		ccb_stream_put_int(client, 75);
		ccb_stream_put_string(client, "d1");
		ccb_stream_put_string(client, "TOOL");
		ccb_stream_put_int(client, -1);
		ccb_stream_put_int(client, 0);
		ccb_stream_end_message(client);
	}
	/* The "shared-port server" eats the request off the socket. */
	CU_ASSERT_EQUAL(sp_read(fds[1], raw, 5 + 8 + 3 + 5 + 16, 2000), 37u);
	ccb_stream_new(fds[1], &daemon, NULL);
	ccb_stream_set_timeout(daemon, 2000);
	ccb_stream_set_aes_key(client, key);
	ccb_stream_set_aes_key(daemon, key);
	ccb_stream_put_int(client, 4242);
	CU_ASSERT(ccb_stream_end_message(client) == CCB_OK);
	CU_ASSERT_EQUAL(ccb_stream_get_int(daemon, &v), want);
	if (want == CCB_OK)
		CU_ASSERT_EQUAL(v, 4242);
	ccb_stream_free(client);
	ccb_stream_free(daemon);
}

static void test_digest_reset(void)
{
	digest_case(true, CCB_OK);
	digest_case(false, CCB_ERR_CRYPTO); /* control: the reset is what matters */
}

/* ---- parser ---------------------------------------------------------------- */

static void build(ccb_buf *b, int64_t cmd, const char *id, const char *name, int64_t deadline,
		  int64_t more, const char *extra)
{
	ccb_buf_reset(b);
	ccb_enc_int(b, cmd);
	ccb_enc_string(b, false, id);
	ccb_enc_string(b, false, name);
	ccb_enc_int(b, deadline);
	ccb_enc_int(b, more);
	for (int64_t i = 0; extra && i < more; i++)
		ccb_enc_string(b, false, extra);
}

static ccb_err parse(const ccb_buf *b)
{
	sharedport__request r;
	ccb_error e;

	return sharedport__parse_connect(b->data, b->len, &r, &e);
}

static void test_parse_limits(void)
{
	char s1024[1025], s512[513];
	sharedport__request r;
	ccb_buf b;
	ccb_error e;

	ccb_buf_init(&b);
	memset(s1024, 'i', 1024);
	s1024[1024] = '\0';
	memset(s512, 'x', 512);
	s512[512] = '\0';

	build(&b, 75, "ep", "TOOL", 30, 0, NULL);
	CU_ASSERT_EQUAL(parse(&b), CCB_OK);
	/* Truncated anywhere: refused. */
	for (size_t n = 0; n < b.len; n++)
		CU_ASSERT_NOT_EQUAL(sharedport__parse_connect(b.data, n, &r, &e), CCB_OK);
	/* A trailing byte fails end_of_message. */
	ccb_enc_char(&b, 0);
	CU_ASSERT_EQUAL(parse(&b), CCB_ERR_PROTOCOL);

	build(&b, 76, "ep", "TOOL", 30, 0, NULL);
	CU_ASSERT_EQUAL(parse(&b), CCB_ERR_PROTOCOL);
	/* 1023 characters fit char[1024]; 1024 do not. */
	s1024[1023] = '\0';
	build(&b, 75, s1024, s1024, -1, 0, NULL);
	CU_ASSERT_EQUAL(parse(&b), CCB_OK);
	s1024[1023] = 'i';
	build(&b, 75, s1024, "TOOL", -1, 0, NULL);
	CU_ASSERT_EQUAL(parse(&b), CCB_ERR_TOO_LARGE);
	build(&b, 75, "ep", s1024, -1, 0, NULL);
	CU_ASSERT_EQUAL(parse(&b), CCB_ERR_TOO_LARGE);
	/* more_args 0..100, extras up to 511 characters. */
	s512[511] = '\0';
	build(&b, 75, "ep", "TOOL", -1, 100, s512);
	CU_ASSERT_EQUAL(b.len, SHAREDPORT_MAX_REQUEST - 2 * 1024 + 3 + 5);
	CU_ASSERT_EQUAL(parse(&b), CCB_OK);
	s512[511] = 'x';
	build(&b, 75, "ep", "TOOL", -1, 1, s512);
	CU_ASSERT_EQUAL(parse(&b), CCB_ERR_TOO_LARGE);
	build(&b, 75, "ep", "TOOL", -1, 101, "a");
	CU_ASSERT_EQUAL(parse(&b), CCB_ERR_PROTOCOL);
	build(&b, 75, "ep", "TOOL", -1, -1, NULL);
	CU_ASSERT_EQUAL(parse(&b), CCB_ERR_PROTOCOL);
	build(&b, 75, "ep", "TOOL", -1, 2, NULL); /* announced extras missing */
	CU_ASSERT_EQUAL(parse(&b), CCB_ERR_PROTOCOL);
	/* A C++ int must be sign-extended 32 bits (Stream::get(int) pad check). */
	build(&b, 75, "ep", "TOOL", (int64_t)1 << 32, 0, NULL);
	CU_ASSERT_EQUAL(parse(&b), CCB_ERR_PROTOCOL);
	build(&b, 75 + ((int64_t)1 << 40), "ep", "TOOL", -1, 0, NULL);
	CU_ASSERT_EQUAL(parse(&b), CCB_ERR_PROTOCOL);
	/* The NULL-string marker reads as "" (Stream::get(char *, int)). */
	ccb_buf_reset(&b);
	ccb_enc_int(&b, 75);
	ccb_enc_null_string(&b, false);
	ccb_enc_string(&b, false, "n");
	ccb_enc_int(&b, -1);
	ccb_enc_int(&b, 0);
	CU_ASSERT_EQUAL(sharedport__parse_connect(b.data, b.len, &r, &e), CCB_OK);
	CU_ASSERT_STRING_EQUAL(r.id, "");
	ccb_buf_free(&b);
}

/* ---- over real sockets -------------------------------------------------------- */

typedef struct world {
	char dir[64];
	ccb_sharedport_endpoint *ep;
	ccb_sharedport_server *srv;
} world;

static void world_up(world *w, const char *default_id, int request_timeout_ms)
{
	ccb_sharedport_endpoint_config ecfg = {0};
	ccb_sharedport_server_config scfg = {0};
	ccb_error e;

	sp_mkdir(w->dir);
	ecfg.socket_dir = w->dir;
	CU_ASSERT_FATAL(ccb_sharedport_endpoint_new(&ecfg, &w->ep, &e) == CCB_OK);
	scfg.socket_dir = w->dir;
	scfg.default_id = default_id;
	scfg.request_timeout_ms = request_timeout_ms;
	CU_ASSERT_FATAL(ccb_sharedport_server_new(&scfg, &w->srv, &e) == CCB_OK);
}

static void world_down(world *w)
{
	ccb_sharedport_server_free(w->srv);
	ccb_sharedport_endpoint_free(w->ep);
	CU_ASSERT_EQUAL(sp_rmdir(w->dir), 0); /* the socket file went with the endpoint */
}

static void test_forward_end_to_end(void)
{
	int before = ccbt_count_fds();
	world w;
	sp_bg run = {0};
	ccb_stream *client, *daemon;
	struct sockaddr_in local, peer;
	socklen_t l1 = sizeof local, l2 = sizeof peer;
	ccb_sharedport_server_stats st;
	char *str = NULL;
	int64_t v = 0;
	ccb_error e;

	world_up(&w, NULL, 0);
	run.srv = w.srv;
	sp_start(&run, sp_run_main);
	for (int round = 0; round < 3; round++) {
		CU_ASSERT_FATAL(ccb_sharedport_dial("127.0.0.1", ccb_sharedport_server_port(w.srv),
						    ccb_sharedport_endpoint_id(w.ep), NULL,
						    ccb_deadline_in(5000), &client, &e) == CCB_OK);
		CU_ASSERT_FATAL(ccb_sharedport_endpoint_accept(w.ep, ccb_deadline_in(5000), &daemon,
							       &e) == CCB_OK);
		/* The fd that arrived is the client's TCP connection. */
		getsockname(ccb_stream_fd(client), (struct sockaddr *)&local, &l1);
		getpeername(ccb_stream_fd(daemon), (struct sockaddr *)&peer, &l2);
		CU_ASSERT_EQUAL(local.sin_port, peer.sin_port);
		/* Data both ways, as if directly connected. */
		ccb_stream_put_int(client, 60010);
		ccb_stream_put_string(client, "hello daemon");
		CU_ASSERT(ccb_stream_end_message(client) == CCB_OK);
		CU_ASSERT(ccb_stream_get_int(daemon, &v) == CCB_OK && v == 60010);
		CU_ASSERT(ccb_stream_get_string(daemon, &str) == CCB_OK);
		CU_ASSERT(str && strcmp(str, "hello daemon") == 0);
		ccb_free(str);
		CU_ASSERT(ccb_stream_end_of_message(daemon) == CCB_OK);
		ccb_stream_put_string(daemon, "hello client");
		CU_ASSERT(ccb_stream_end_message(daemon) == CCB_OK);
		CU_ASSERT(ccb_stream_get_string(client, &str) == CCB_OK);
		CU_ASSERT(str && strcmp(str, "hello client") == 0);
		ccb_free(str);
		ccb_stream_free(client);
		ccb_stream_free(daemon);
	}
	ccb_sharedport_server_stop(w.srv);
	sp_join(&run);
	CU_ASSERT_EQUAL(run.rc, CCB_OK);
	ccb_sharedport_server_get_stats(w.srv, &st);
	CU_ASSERT_EQUAL(st.passed, 3);
	CU_ASSERT_EQUAL(st.failed, 0);
	world_down(&w);
	CU_ASSERT_EQUAL(ccbt_count_fds(), before);
}

static void test_unknown_id_refused(void)
{
	int before = ccbt_count_fds();
	world w;
	sp_bg one = {0};
	ccb_stream *client;
	int64_t v;
	ccb_error e;

	world_up(&w, NULL, 0);
	one.srv = w.srv;
	one.deadline = ccb_deadline_in(5000);
	sp_start(&one, sp_serve_one_main);
	CU_ASSERT_FATAL(ccb_sharedport_dial("127.0.0.1", ccb_sharedport_server_port(w.srv),
					    "nobody_here", "TOOL", ccb_deadline_in(5000), &client,
					    &e) == CCB_OK);
	/* No reply: the server just closes (sp §2). */
	ccb_stream_set_timeout(client, 3000);
	CU_ASSERT_EQUAL(ccb_stream_get_int(client, &v), CCB_ERR_CLOSED);
	sp_join(&one);
	CU_ASSERT_EQUAL(one.rc, CCB_ERR_NOT_FOUND);
	CU_ASSERT_PTR_NOT_NULL(strstr(one.err.detail, "nobody_here"));
	CU_ASSERT_PTR_NOT_NULL(strstr(one.err.detail, "127.0.0.1:"));
	ccb_stream_free(client);
	world_down(&w);
	CU_ASSERT_EQUAL(ccbt_count_fds(), before);
}

/* Send `hex` raw (then half-close if asked); expect serve_one to fail with
 * `want` and the client to see its connection closed. */
static void malformed_case(world *w, const char *hex, bool half_close, ccb_err want)
{
	sp_bg one = {0};
	int fd;

	one.srv = w->srv;
	one.deadline = ccb_deadline_in(5000);
	sp_start(&one, sp_serve_one_main);
	fd = sp_tcp_connect(ccb_sharedport_server_port(w->srv));
	if (hex)
		sp_send_hex(fd, hex);
	if (half_close)
		shutdown(fd, SHUT_WR);
	sp_join(&one);
	CU_ASSERT_EQUAL(one.rc, want);
	if (one.rc != want)
		fprintf(stderr, "\n  malformed case: got %d: %s\n", one.rc, one.err.detail);
	CU_ASSERT(sp_sees_eof(fd, 2000));
	close(fd);
}

static void test_malformed_refused(void)
{
	int before = ccbt_count_fds();
	ccb_buf b;
	char *hex;
	world w;

	world_up(&w, NULL, 300);
	/* Header announces 47 bytes, 12 arrive, then EOF. */
	malformed_case(&w, "01 0000002f 000000000000004b 6d617374", true, CCB_ERR_CLOSED);
	/* Same, but the peer stalls: dropped at the request deadline. */
	{
		int64_t t0 = ccb_now_ms();
		malformed_case(&w, "01 0000002f 000000000000004b 6d617374", false, CCB_ERR_TIMEOUT);
		CU_ASSERT(ccb_now_ms() - t0 < 3000);
	}
	/* Only part of the 13 command bytes, then silence. */
	malformed_case(&w, "01 0000", false, CCB_ERR_TIMEOUT);
	/* Nothing at all. */
	malformed_case(&w, NULL, true, CCB_ERR_CLOSED);
	/* Not a CEDAR header (zero length, then bad end flag). */
	malformed_case(&w, "01 00000000 000000000000004b", false, CCB_ERR_PROTOCOL);
	malformed_case(&w, "ff 00000008 000000000000004b", false, CCB_ERR_PROTOCOL);
	/* A message larger than any valid request is refused unread. */
	malformed_case(&w, "01 00100000 000000000000004b", false, CCB_ERR_TOO_LARGE);
	/* Another command and no default id. */
	malformed_case(&w, "01 00000008 000000000000ea6b", false, CCB_ERR_PROTOCOL);
	/* Complete but invalid messages. */
	ccb_buf_init(&b);
	{
		static const struct {
			int64_t more;
			const char *id;
			ccb_err want;
		} cases[] = {
			{500, "ep", CCB_ERR_PROTOCOL},    /* more_args out of range */
			{0, "../../etc", CCB_ERR_PROTOCOL}, /* illegal id */
			{0, "self", CCB_ERR_UNSUPPORTED},
		};
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			uint8_t hdr[5] = {1};
			build(&b, 75, cases[i].id, "TOOL", -1, cases[i].more, NULL);
			ccb_be32_put(hdr + 1, (uint32_t)b.len);
			hex = malloc(2 * (b.len + 5) + 1);
			ccb_hex_encode(hdr, 5, hex);
			ccb_hex_encode(b.data, b.len, hex + 10);
			malformed_case(&w, hex, false, cases[i].want);
			free(hex);
		}
	}
	/* An oversized id: longer than condor_shared_port's char[1024]. */
	{
		char id[2001];
		uint8_t hdr[5] = {1};
		memset(id, 'a', 2000);
		id[2000] = '\0';
		build(&b, 75, id, "TOOL", -1, 0, NULL);
		ccb_be32_put(hdr + 1, (uint32_t)b.len);
		hex = malloc(2 * (b.len + 5) + 1);
		ccb_hex_encode(hdr, 5, hex);
		ccb_hex_encode(b.data, b.len, hex + 10);
		malformed_case(&w, hex, false, CCB_ERR_TOO_LARGE);
		free(hex);
	}
	ccb_buf_free(&b);
	world_down(&w);
	CU_ASSERT_EQUAL(ccbt_count_fds(), before);
}

static void test_endpoint_socket_lifecycle(void)
{
	int before = ccbt_count_fds();
	ccb_sharedport_endpoint_config cfg = {0};
	ccb_sharedport_endpoint *ep, *ep2;
	char dir[64], sub[96], path[160];
	struct stat st;
	ccb_error e;
	const char *id;

	sp_mkdir(dir);
	/* A missing directory is created; a random id looks like HTCondor's. */
	snprintf(sub, sizeof sub, "%s/daemon_sock", dir);
	cfg.socket_dir = sub;
	cfg.name = "tool";
	CU_ASSERT_FATAL(ccb_sharedport_endpoint_new(&cfg, &ep, &e) == CCB_OK);
	id = ccb_sharedport_endpoint_id(ep);
	CU_ASSERT(ccb_sharedport_id_valid(id));
	CU_ASSERT(strncmp(id, "tool_", 5) == 0);
	CU_ASSERT_EQUAL(strlen(strrchr(id, '_') + 1), 4);
	snprintf(path, sizeof path, "%s/%s", sub, id);
	CU_ASSERT_STRING_EQUAL(ccb_sharedport_endpoint_path(ep), path);
	CU_ASSERT(stat(path, &st) == 0 && S_ISSOCK(st.st_mode));
	/* A second endpoint may not take a live one's id. */
	cfg.id = id;
	CU_ASSERT_EQUAL(ccb_sharedport_endpoint_new(&cfg, &ep2, &e), CCB_ERR_STATE);
	CU_ASSERT(stat(path, &st) == 0); /* and did not remove it */
	ccb_sharedport_endpoint_free(ep);
	CU_ASSERT(stat(path, &st) != 0 && errno == ENOENT);
	rmdir(sub);
	CU_ASSERT_EQUAL(sp_rmdir(dir), 0);
	CU_ASSERT_EQUAL(ccbt_count_fds(), before);
}

static const ccbt_test tests[] = {
	{"golden bytes vs S6 capture", test_golden_capture},
	{"golden bytes vs spec example", test_golden_spec_example},
	{"ids and deadline field", test_ids_and_deadline_field},
	{"connect refuses bad arguments", test_connect_bad_args},
	{"digests reset after connect", test_digest_reset},
	{"request parser limits", test_parse_limits},
	{"client -> server -> endpoint", test_forward_end_to_end},
	{"unknown id refused", test_unknown_id_refused},
	{"malformed requests refused", test_malformed_refused},
	{"endpoint socket file lifecycle", test_endpoint_socket_lifecycle},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"sharedport", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
