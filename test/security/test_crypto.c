/*
 * Session crypto as HTCondor 25 negotiates it, over real loopback TCP
 * (security-handshake.md §6.2, §8; cedar-stream.md §5-§8): libccb client
 * against libccb server for every crypto method and Encryption/Integrity
 * combination, resumed legacy sessions, keyless (legacy key exchange)
 * clients, and replays of the captured BLOWFISH session S1-claimtobe-plain
 * at our server and at our client.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "ccb/classad.h"
#include "ccb/commands.h"
#include "ccb/config.h"
#include "ccb/log.h"
#include "ccb/security.h"
#include "ccbt.h"
#include "cedar/legacy.h"
#include "cedar/stream_internal.h"
#include "classad/classad_internal.h"
#include "security/auth.h"
#include "security/session_crypto.h"
#include "util/util.h"

static char log_text[8192];
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void collect(ccb_log_level level, const char *msg, void *user)
{
	(void)level;
	(void)user;
	pthread_mutex_lock(&log_lock);
	if (strlen(log_text) + strlen(msg) + 2 < sizeof log_text) {
		strcat(log_text, msg);
		strcat(log_text, "\n");
	}
	pthread_mutex_unlock(&log_lock);
}

static int perm_of(int command, void *user)
{
	(void)user;
	switch (command) {
	case CCB_CMD_CCB_REGISTER: return CCB_PERM_DAEMON;
	case CCB_CMD_CCB_REQUEST: return CCB_PERM_READ;
	}
	return -1;
}

struct server {
	ccb_stream *s;
	ccb_sec_server_config cfg;
	ccb_sec_command cmd;
	ccb_error err;
	ccb_err rc;
	char claim[64]; /* ClaimId of the payload the client sent */
	bool echoed;
};

/* Accept, read a payload ad with a ClaimId, answer with the same ClaimId. */
static void *serve(void *arg)
{
	struct server *sv = arg;
	ccb_classad *ad = NULL;
	const char *claim = NULL;

	sv->rc = ccb_sec_server_accept(sv->s, &sv->cfg, &sv->cmd, &sv->err);
	if (sv->rc == CCB_OK && ccb_classad_get(sv->s, &ad) == CCB_OK &&
	    ccb_stream_end_of_message(sv->s) == CCB_OK &&
	    ccb_classad_get_string(ad, "ClaimId", &claim) == CCB_OK) {
		snprintf(sv->claim, sizeof sv->claim, "%s", claim);
		sv->echoed = ccb_classad_put(sv->s, ad, &(ccb_classad_put_config){.peer_version = 251400}) ==
				     CCB_OK &&
			     ccb_stream_end_message(sv->s) == CCB_OK;
	}
	ccb_classad_free(ad);
	if (sv->rc)
		ccb_stream_shutdown(sv->s);
	return NULL;
}

static void server_init(struct server *sv, const char *crypto, ccb_sec_level enc, ccb_sec_level integ)
{
	memset(sv, 0, sizeof *sv);
	sv->cfg.command_perm = perm_of;
	sv->cfg.uid_domain = "vm";
	sv->cfg.trust_domain = "vm";
	sv->cfg.auth_methods[CCB_PERM_ALLOW] = "CLAIMTOBE";
	sv->cfg.crypto_methods[CCB_PERM_ALLOW] = crypto;
	sv->cfg.encryption[CCB_PERM_ALLOW] = enc;
	sv->cfg.integrity[CCB_PERM_ALLOW] = integ;
	sv->cfg.allow[CCB_PERM_DAEMON] = "condor@*";
}

/* One command with a ClaimId payload and its echo; CCB_OK when both ways
 * worked. */
static ccb_err run(struct server *sv, const ccb_sec_client_config *cc, int command,
		   ccb_sec_info *info, ccb_error *err)
{
	int fds[2];
	ccb_stream *c;
	pthread_t t;
	ccb_err rc;

	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &c, NULL);
	ccb_stream_new(fds[1], &sv->s, NULL);
	ccb_stream_set_timeout(c, 5000);
	ccb_stream_set_timeout(sv->s, 5000);
	pthread_create(&t, NULL, serve, sv);
	rc = ccb_sec_client_start(c, cc, command, 0, "<127.0.0.1:9618>", info, err);
	if (rc == CCB_OK) {
		ccb_classad *ad = ccb__classad_new(), *back = NULL;
		const char *claim = NULL;
		ccb_classad_set_int(ad, "Command", command);
		ccb_classad_set_string(ad, "ClaimId", "secret-claim-1234");
		ccb_classad_set_string(ad, "Name", "payload");
		if (ccb_classad_put(c, ad, &(ccb_classad_put_config){.peer_version = 251400}) ||
		    ccb_stream_end_message(c) || ccb_classad_get(c, &back) ||
		    ccb_stream_end_of_message(c) ||
		    ccb_classad_get_string(back, "ClaimId", &claim) ||
		    strcmp(claim, "secret-claim-1234"))
			rc = CCB_ERR_PROTOCOL;
		ccb_classad_free(ad);
		ccb_classad_free(back);
	}
	if (rc)
		ccb_stream_shutdown(c);
	pthread_join(t, NULL);
	if (rc == CCB_OK && strcmp(sv->claim, "secret-claim-1234"))
		rc = CCB_ERR_PROTOCOL;
	ccb_stream_free(c);
	ccb_stream_free(sv->s);
	return rc;
}

struct combo {
	const char *client_crypto, *server_crypto;
	ccb_sec_level enc, integ;
	const char *want_crypto;
	bool want_enc, want_int;
};

/* CLAIMTOBE-authenticated sessions, both sides libccb. HTCondor's rules:
 * AES is forced on whenever authentication happens (reconcile) and always
 * encrypts; a legacy key follows Encryption / Integrity; no common method
 * leaves plaintext. */
static void test_matrix(void)
{
	static const struct combo combos[] = {
		{"AES", "AES", CCB_SEC_LEVEL_NEVER, CCB_SEC_LEVEL_NEVER, "AES", true, true},
		{"AES", "AES", CCB_SEC_LEVEL_REQUIRED, CCB_SEC_LEVEL_REQUIRED, "AES", true, true},
		{"BLOWFISH", "BLOWFISH", CCB_SEC_LEVEL_NEVER, CCB_SEC_LEVEL_NEVER, "BLOWFISH", false, false},
		{"BLOWFISH", "BLOWFISH", CCB_SEC_LEVEL_REQUIRED, CCB_SEC_LEVEL_NEVER, "BLOWFISH", true, false},
		{"BLOWFISH", "BLOWFISH", CCB_SEC_LEVEL_NEVER, CCB_SEC_LEVEL_REQUIRED, "BLOWFISH", false, true},
		{"BLOWFISH", "BLOWFISH", CCB_SEC_LEVEL_REQUIRED, CCB_SEC_LEVEL_REQUIRED, "BLOWFISH", true, true},
		{"3DES", "3DES", CCB_SEC_LEVEL_NEVER, CCB_SEC_LEVEL_NEVER, "3DES", false, false},
		{"TRIPLEDES", "3DES", CCB_SEC_LEVEL_REQUIRED, CCB_SEC_LEVEL_NEVER, "3DES", true, false},
		{"3DES", "3DES", CCB_SEC_LEVEL_NEVER, CCB_SEC_LEVEL_REQUIRED, "3DES", false, true},
		{"3DES", "3DES", CCB_SEC_LEVEL_REQUIRED, CCB_SEC_LEVEL_REQUIRED, "3DES", true, true},
		/* The server's order decides (§2.1). */
		{"AES,BLOWFISH,3DES", "3DES,BLOWFISH", CCB_SEC_LEVEL_NEVER, CCB_SEC_LEVEL_NEVER, "3DES", false, false},
		{"BLOWFISH,3DES", "AES,3DES,BLOWFISH", CCB_SEC_LEVEL_REQUIRED, CCB_SEC_LEVEL_NEVER, "3DES", true, false},
		/* No common method: the collector's empty CryptoMethods; plaintext. */
		{"BLOWFISH", "3DES", CCB_SEC_LEVEL_NEVER, CCB_SEC_LEVEL_NEVER, "", false, false},
		{"AES", "BLOWFISH", CCB_SEC_LEVEL_OPTIONAL, CCB_SEC_LEVEL_OPTIONAL, "", false, false},
	};

	for (size_t i = 0; i < sizeof combos / sizeof combos[0]; i++) {
		const struct combo *k = &combos[i];
		struct server sv;
		ccb_sec_client_config cc = {.auth_methods = "CLAIMTOBE", .claimtobe_user = "condor",
					    .uid_domain = "vm", .authentication = CCB_SEC_LEVEL_REQUIRED,
					    .encryption = k->enc, .integrity = k->integ,
					    .crypto_methods = k->client_crypto};
		ccb_sec_info info;
		ccb_error err = {0};
		ccb_err rc;

		server_init(&sv, k->server_crypto, k->enc, k->integ);
		rc = run(&sv, &cc, CCB_CMD_CCB_REGISTER, &info, &err);
		CU_ASSERT_EQUAL(rc, CCB_OK);
		CU_ASSERT_EQUAL(sv.rc, CCB_OK);
		CU_ASSERT(sv.echoed);
		if (rc || sv.rc)
			fprintf(stderr, "\ncombo %zu (%s/%s): client: %s; server: %s\n", i,
				k->client_crypto, k->server_crypto, err.detail, sv.err.detail);
		CU_ASSERT_STRING_EQUAL(info.crypto, k->want_crypto);
		CU_ASSERT_EQUAL(info.encrypted, k->want_enc);
		CU_ASSERT_EQUAL(info.integrity, k->want_int);
		CU_ASSERT_STRING_EQUAL(sv.cmd.info.crypto, k->want_crypto);
		CU_ASSERT_EQUAL(sv.cmd.info.encrypted, k->want_enc);
		CU_ASSERT_EQUAL(sv.cmd.info.integrity, k->want_int);
		CU_ASSERT_STRING_EQUAL(info.method, "CLAIMTOBE");
		CU_ASSERT_STRING_EQUAL(sv.cmd.info.user, "condor@vm");
	}
}

/* Unauthenticated (READ) sessions: with ECDH a key still exists; AES is
 * on, a legacy key is off unless negotiated. */
static void test_unauthenticated(void)
{
	static const struct combo combos[] = {
		{"AES", "AES", CCB_SEC_LEVEL_NEVER, CCB_SEC_LEVEL_NEVER, "AES", true, true},
		{"BLOWFISH", "BLOWFISH", CCB_SEC_LEVEL_NEVER, CCB_SEC_LEVEL_NEVER, "BLOWFISH", false, false},
		{"3DES", "3DES", CCB_SEC_LEVEL_OPTIONAL, CCB_SEC_LEVEL_OPTIONAL, "3DES", false, false},
	};

	for (size_t i = 0; i < sizeof combos / sizeof combos[0]; i++) {
		const struct combo *k = &combos[i];
		struct server sv;
		ccb_sec_client_config cc = {.authentication = CCB_SEC_LEVEL_NEVER,
					    .encryption = k->enc, .integrity = k->integ,
					    .crypto_methods = k->client_crypto};
		ccb_sec_info info;
		ccb_error err = {0};

		server_init(&sv, k->server_crypto, k->enc, k->integ);
		CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REQUEST, &info, &err), CCB_OK);
		if (err.code || sv.rc)
			fprintf(stderr, "\nunauth %zu: %s / %s\n", i, err.detail, sv.err.detail);
		CU_ASSERT(!info.authenticated && !sv.cmd.info.authenticated);
		CU_ASSERT_STRING_EQUAL(info.crypto, k->want_crypto);
		CU_ASSERT_EQUAL(info.encrypted, k->want_enc);
		CU_ASSERT_EQUAL(sv.cmd.info.encrypted, k->want_enc);
		CU_ASSERT_EQUAL(info.integrity, k->want_int);
	}
}

/* A resumed session keeps its method and Encryption/Integrity. */
static void test_resume_legacy(void)
{
	struct server sv;
	ccb_sec_sessions *server_store = NULL, *client_store = NULL;
	ccb_sec_sessions_new(0, &server_store, NULL);
	ccb_sec_sessions_new(0, &client_store, NULL);
	ccb_sec_client_config cc = {.auth_methods = "CLAIMTOBE", .claimtobe_user = "condor",
				    .uid_domain = "vm", .encryption = CCB_SEC_LEVEL_REQUIRED,
				    .integrity = CCB_SEC_LEVEL_NEVER, .crypto_methods = "BLOWFISH",
				    .sessions = client_store};
	ccb_sec_info info;
	ccb_error err = {0};

	server_init(&sv, "BLOWFISH", CCB_SEC_LEVEL_REQUIRED, CCB_SEC_LEVEL_NEVER);
	sv.cfg.sessions = server_store;
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REGISTER, &info, &err), CCB_OK);
	CU_ASSERT(!info.resumed);
	server_init(&sv, "BLOWFISH", CCB_SEC_LEVEL_REQUIRED, CCB_SEC_LEVEL_NEVER);
	sv.cfg.sessions = server_store;
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REGISTER, &info, &err), CCB_OK);
	CU_ASSERT(info.resumed && sv.cmd.resumed);
	CU_ASSERT_STRING_EQUAL(info.crypto, "BLOWFISH");
	CU_ASSERT_STRING_EQUAL(sv.cmd.info.crypto, "BLOWFISH");
	CU_ASSERT(info.encrypted && !info.integrity);
	CU_ASSERT(sv.cmd.info.encrypted && !sv.cmd.info.integrity);
	ccb_sec_sessions_free(server_store);
	ccb_sec_sessions_free(client_store);
}

/* ---- captured S1 session ------------------------------------------------ */

/* The messages (header included) one direction of S1 connection `id`
 * carried, in order; *count of them. */
static uint8_t **captured(int id, const char *dir, size_t **lens, size_t *count)
{
	json_t *root = json_load_file(CCB_VECTORS_DIR "/S1-claimtobe-plain/streams.json", 0, NULL);
	json_t *conn = NULL, *it, *seg;
	size_t i, j, total = 0, off = 0, n = 0;
	uint8_t *all = NULL, **msgs = NULL;

	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	json_array_foreach(json_object_get(root, "connections"), i, it)
		if (json_integer_value(json_object_get(it, "id")) == id)
			conn = it;
	CU_ASSERT_PTR_NOT_NULL_FATAL(conn);
	json_array_foreach(json_object_get(conn, "segments"), j, seg) {
		const char *hex = json_string_value(json_object_get(seg, "hex"));
		size_t len = strlen(hex) / 2;
		if (strcmp(json_string_value(json_object_get(seg, "dir")), dir))
			continue;
		all = realloc(all, total + len);
		CU_ASSERT_FATAL(all && ccb_hex_decode(hex, 2 * len, all + total));
		total += len;
	}
	json_decref(root);
	*lens = NULL;
	while (off + 5 <= total) {
		size_t body = (size_t)all[off + 1] << 24 | (size_t)all[off + 2] << 16 |
			      (size_t)all[off + 3] << 8 | all[off + 4];
		msgs = realloc(msgs, (n + 1) * sizeof *msgs);
		*lens = realloc(*lens, (n + 1) * sizeof **lens);
		msgs[n] = malloc(5 + body);
		memcpy(msgs[n], all + off, 5 + body);
		(*lens)[n++] = 5 + body;
		off += 5 + body;
	}
	free(all);
	*count = n;
	return msgs;
}

static void free_msgs(uint8_t **m, size_t *lens, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i]);
	free(m);
	free(lens);
}

/* The master's request of S1 (conn 1, message 1) at our server set up as
 * pool A's collector (CLAIMTOBE, BLOWFISH, encryption/integrity NEVER): our
 * RESPONSE has the captured attributes and decisions, the method exchange
 * and hasKey are byte-identical, and the session stays plaintext, so the
 * captured CCB_REGISTER payload (message 9, clear text) reads as it is. */
static void test_s1_at_server(void)
{
	static const char *const attrs[] = {
		"Enact", "Integrity", "Encryption", "AuthMethods", "TrustDomain", "SessionLease",
		"CryptoMethods", "ECDHPublicKey", "RemoteVersion", "Authentication",
		"AuthMethodsList", "SessionDuration", "CryptoMethodsList", "NegotiatedSession"};
	size_t *clen, *slen, nc, ns;
	uint8_t **c2s = captured(1, "c2s", &clen, &nc), **s2c = captured(1, "s2c", &slen, &ns);
	struct server sv;
	pthread_t t;
	int fds[2];
	ccb_stream *raw;
	ccb_classad *resp = NULL, *post = NULL;
	const char *v = NULL;
	uint8_t buf[64];

	CU_ASSERT_FATAL(nc >= 5 && ns >= 5);
	server_init(&sv, "BLOWFISH", CCB_SEC_LEVEL_NEVER, CCB_SEC_LEVEL_NEVER);
	sv.cfg.authentication[CCB_PERM_ALLOW] = CCB_SEC_LEVEL_REQUIRED;
	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[1], &sv.s, NULL);
	ccb_stream_set_timeout(sv.s, 5000);
	ccb_stream_new(fds[0], &raw, NULL);
	ccb_stream_set_timeout(raw, 5000);
	/* Raw reads below block; the stream copes with a blocking fd. */
	fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) & ~O_NONBLOCK);
	pthread_create(&t, NULL, serve, &sv);
	/* 1 -> RESPONSE */
	CU_ASSERT(send(fds[0], c2s[0], clen[0], 0) == (ssize_t)clen[0]);
	if (ccb_classad_get(raw, &resp) != CCB_OK) {
		pthread_join(t, NULL);
		fprintf(stderr, "\nS1 server: %s\n", sv.err.detail);
		CU_FAIL_FATAL("no RESPONSE");
	}
	CU_ASSERT_FATAL(ccb_stream_end_of_message(raw) == CCB_OK);
	CU_ASSERT_EQUAL(ccb_classad_count(resp), sizeof attrs / sizeof attrs[0]);
	for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
		CU_ASSERT(ccb_classad_type(resp, attrs[i]) != CCB_VAL_ABSENT);
	CU_ASSERT(ccb_classad_get_string(resp, "Encryption", &v) == CCB_OK && !strcmp(v, "NO"));
	CU_ASSERT(ccb_classad_get_string(resp, "Integrity", &v) == CCB_OK && !strcmp(v, "NO"));
	CU_ASSERT(ccb_classad_get_string(resp, "Authentication", &v) == CCB_OK && !strcmp(v, "YES"));
	CU_ASSERT(ccb_classad_get_string(resp, "CryptoMethods", &v) == CCB_OK && !strcmp(v, "BLOWFISH"));
	CU_ASSERT(ccb_classad_get_string(resp, "CryptoMethodsList", &v) == CCB_OK &&
		  !strcmp(v, "BLOWFISH"));
	CU_ASSERT(ccb_classad_get_string(resp, "AuthMethodsList", &v) == CCB_OK && !strcmp(v, "CLAIMTOBE"));
	/* 3 (methods) -> 4 (CLAIMTOBE chosen); 5 (claim) -> 6 (accepted), 7 (hasKey 0) */
	CU_ASSERT(send(fds[0], c2s[1], clen[1], 0) == (ssize_t)clen[1]);
	ccbt_read_raw(fds[0], buf, slen[1]);
	CU_ASSERT(memcmp(buf, s2c[1], slen[1]) == 0);
	CU_ASSERT(send(fds[0], c2s[2], clen[2], 0) == (ssize_t)clen[2]);
	ccbt_read_raw(fds[0], buf, slen[2] + slen[3]);
	CU_ASSERT(memcmp(buf, s2c[2], slen[2]) == 0);
	CU_ASSERT(memcmp(buf + slen[2], s2c[3], slen[3]) == 0);
	/* 8: POST-AUTH, in clear */
	CU_ASSERT_FATAL(ccb_classad_get(raw, &post) == CCB_OK && ccb_stream_end_of_message(raw) == CCB_OK);
	CU_ASSERT(ccb_classad_get_string(post, "ReturnCode", &v) == CCB_OK && !strcmp(v, "AUTHORIZED"));
	CU_ASSERT(ccb_classad_get_string(post, "User", &v) == CCB_OK && !strcmp(v, "condor@vm"));
	/* 9: the CCB_REGISTER request, clear text; the server reads it (it has
	 * no ClaimId, so no echo). */
	CU_ASSERT(send(fds[0], c2s[3], clen[3], 0) == (ssize_t)clen[3]);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	if (sv.rc)
		fprintf(stderr, "\nS1 server: %s\n", sv.err.detail);
	CU_ASSERT_STRING_EQUAL(sv.cmd.info.crypto, "BLOWFISH");
	CU_ASSERT(!sv.cmd.info.encrypted && !sv.cmd.info.integrity);
	CU_ASSERT_STRING_EQUAL(sv.cmd.info.method, "CLAIMTOBE");
	CU_ASSERT_FALSE(ccb_stream_crypto_on(sv.s));
	CU_ASSERT(!sv.echoed && sv.claim[0] == '\0');
	ccb_classad_free(resp);
	ccb_classad_free(post);
	ccb_stream_free(sv.s);
	ccb_stream_free(raw);
	free_msgs(c2s, clen, nc);
	free_msgs(s2c, slen, ns);
}

struct scripted {
	int fd;
	uint8_t **s2c;
	size_t *slen;
	ccb_classad *req;
	char claim[64];
	bool ok;
};

/* The collector's side of S1 conn 1 replayed at our client: captured
 * RESPONSE (CryptoMethods BLOWFISH, Encryption/Integrity NO), CLAIMTOBE
 * answers, hasKey 0, POST-AUTH; then our plaintext payload. */
static void *serve_scripted(void *arg)
{
	struct scripted *sc = arg;
	ccb_stream *s;
	int64_t first = 0, v = 0;
	char *name = NULL;
	ccb_classad *pl = NULL;

	ccb_stream_new(sc->fd, &s, NULL);
	ccb_stream_set_timeout(s, 5000);
	if (ccb_stream_get_int(s, &first) || first != 60010 || ccb_classad_get(s, &sc->req) ||
	    ccb_stream_end_of_message(s))
		goto out;
	send(sc->fd, sc->s2c[0], sc->slen[0], 0);
	if (ccb_stream_get_int(s, &v) || v != 2 || ccb_stream_end_of_message(s))
		goto out;
	send(sc->fd, sc->s2c[1], sc->slen[1], 0);
	if (ccb_stream_get_int(s, &v) || v != 1 || ccb_stream_get_string(s, &name) ||
	    ccb_stream_end_of_message(s))
		goto out;
	for (int i = 2; i <= 4; i++)
		send(sc->fd, sc->s2c[i], sc->slen[i], 0);
	/* Our payload, read in clear: the ClaimId arrives as ZKM + an
	 * enciphered secret we cannot read without the key, the rest clear. */
	{
		ccb_cursor *cur = ccb__stream_in(s);
		sc->ok = cur && memmem(cur->data, cur->len, "Name = \"payload\"", 16) &&
			 memmem(cur->data, cur->len, "ZKM", 4) &&
			 !memmem(cur->data, cur->len, "0123456789", 10);
	}
out:
	ccb_free(name);
	ccb_classad_free(pl);
	ccb_stream_free(s);
	return NULL;
}

static void test_s1_at_client(void)
{
	size_t *slen, ns;
	uint8_t **s2c = captured(1, "s2c", &slen, &ns);
	struct scripted sc = {0};
	ccb_sec_client_config cc = {.auth_methods = "CLAIMTOBE", .claimtobe_user = "condor",
				    .uid_domain = "vm", .trust_domain = "vm",
				    .authentication = CCB_SEC_LEVEL_REQUIRED,
				    .encryption = CCB_SEC_LEVEL_NEVER, .integrity = CCB_SEC_LEVEL_NEVER,
				    .crypto_methods = "BLOWFISH", .subsystem = "MASTER"};
	ccb_sec_info info;
	ccb_error err = {0};
	ccb_stream *c;
	pthread_t t;
	int fds[2];
	const char *v = NULL;
	ccb_classad *ad = ccb__classad_new();

	CU_ASSERT_FATAL(ns >= 5);
	ccbt_tcp_pair(fds);
	sc.fd = fds[1];
	sc.s2c = s2c;
	sc.slen = slen;
	ccb_stream_new(fds[0], &c, NULL);
	ccb_stream_set_timeout(c, 5000);
	pthread_create(&t, NULL, serve_scripted, &sc);
	CU_ASSERT_EQUAL(ccb_sec_client_start(c, &cc, CCB_CMD_CCB_REGISTER, 0, "<127.0.0.1:19618>",
					     &info, &err), CCB_OK);
	if (err.code)
		fprintf(stderr, "\nS1 client: %s\n", err.detail);
	CU_ASSERT_STRING_EQUAL(info.crypto, "BLOWFISH");
	CU_ASSERT(!info.encrypted && !info.integrity && !ccb_stream_crypto_on(c));
	CU_ASSERT_STRING_EQUAL(info.method, "CLAIMTOBE");
	CU_ASSERT_STRING_EQUAL(info.session_id, "vm:21621:1795529984:0");
	ccb_classad_set_string(ad, "Name", "payload");
	ccb_classad_set_string(ad, "ClaimId", "0123456789");
	CU_ASSERT(ccb_classad_put(c, ad, &(ccb_classad_put_config){.peer_version = 251400}) == CCB_OK &&
		  ccb_stream_end_message(c) == CCB_OK);
	pthread_join(t, NULL);
	CU_ASSERT(sc.ok);
	/* What we asked for, as the captured master did. */
	CU_ASSERT(sc.req && ccb_classad_get_string(sc.req, "CryptoMethods", &v) == CCB_OK &&
		  !strcmp(v, "BLOWFISH"));
	CU_ASSERT(sc.req && ccb_classad_get_string(sc.req, "Encryption", &v) == CCB_OK &&
		  !strcmp(v, "NEVER"));
	CU_ASSERT(sc.req && ccb_classad_type(sc.req, "ECDHPublicKey") == CCB_VAL_STRING);
	ccb_classad_free(sc.req);
	ccb_classad_free(ad);
	ccb_stream_free(c);
	free_msgs(s2c, slen, ns);
}

/* ---- keyless clients (legacy key exchange) ------------------------------- */

/* The captured request without ECDHPublicKey, adjusted. */
static ccb_classad *keyless_request(const char *auth, const char *enc, const char *crypto,
				    int command)
{
	size_t *clen, nc;
	uint8_t **c2s = captured(1, "c2s", &clen, &nc);
	ccb_cursor cur = {.data = c2s[0] + 5 + 8, .len = clen[0] - 5 - 8};
	ccb_classad *req = NULL;

	CU_ASSERT_FATAL(ccb__classad_decode(&cur, &req, 0, NULL) == CCB_OK);
	ccb_classad_remove(req, "ECDHPublicKey");
	ccb_classad_set_string(req, "Authentication", auth);
	ccb_classad_set_string(req, "AuthenticationNew", auth);
	ccb_classad_set_string(req, "OutgoingNegotiation", auth);
	ccb_classad_set_string(req, "Encryption", enc);
	ccb_classad_set_string(req, "Integrity", "NEVER");
	ccb_classad_set_string(req, "CryptoMethods", crypto);
	ccb_classad_set_int(req, "Command", command);
	free_msgs(c2s, clen, nc);
	return req;
}

/* No authentication, encryption or integrity and no ECDH key: accepted in
 * plaintext (what the collector accepts). */
static void test_keyless_plain(void)
{
	struct server sv;
	pthread_t t;
	int fds[2];
	ccb_stream *c;
	ccb_classad *req = keyless_request("NEVER", "NEVER", "BLOWFISH", CCB_CMD_CCB_REQUEST);
	ccb_classad *resp = NULL, *post = NULL, *pl = ccb__classad_new(), *back = NULL;
	const char *v = NULL;

	server_init(&sv, NULL, CCB_SEC_LEVEL_OPTIONAL, CCB_SEC_LEVEL_OPTIONAL);
	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &c, NULL);
	ccb_stream_new(fds[1], &sv.s, NULL);
	ccb_stream_set_timeout(c, 5000);
	ccb_stream_set_timeout(sv.s, 5000);
	pthread_create(&t, NULL, serve, &sv);
	CU_ASSERT(ccb_stream_put_int(c, 60010) == CCB_OK && ccb_classad_put(c, req, NULL) == CCB_OK &&
		  ccb_stream_end_message(c) == CCB_OK);
	CU_ASSERT_FATAL(ccb_classad_get(c, &resp) == CCB_OK && ccb_stream_end_of_message(c) == CCB_OK);
	CU_ASSERT(ccb_classad_get_string(resp, "Authentication", &v) == CCB_OK && !strcmp(v, "NO"));
	CU_ASSERT_EQUAL(ccb_classad_type(resp, "ECDHPublicKey"), CCB_VAL_ABSENT);
	CU_ASSERT_EQUAL(ccb_classad_type(resp, "CryptoMethods"), CCB_VAL_ABSENT);
	CU_ASSERT_FATAL(ccb_classad_get(c, &post) == CCB_OK && ccb_stream_end_of_message(c) == CCB_OK);
	CU_ASSERT(ccb_classad_get_string(post, "ReturnCode", &v) == CCB_OK && !strcmp(v, "AUTHORIZED"));
	ccb_classad_set_string(pl, "ClaimId", "secret-claim-1234");
	CU_ASSERT(ccb_classad_put(c, pl, NULL) == CCB_OK && ccb_stream_end_message(c) == CCB_OK);
	CU_ASSERT(ccb_classad_get(c, &back) == CCB_OK && ccb_stream_end_of_message(c) == CCB_OK);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	if (sv.rc)
		fprintf(stderr, "\nkeyless: %s\n", sv.err.detail);
	CU_ASSERT(sv.echoed);
	CU_ASSERT_STRING_EQUAL(sv.claim, "secret-claim-1234");
	CU_ASSERT(!sv.cmd.info.encrypted && sv.cmd.info.crypto[0] == '\0');
	ccb_classad_free(req);
	ccb_classad_free(resp);
	ccb_classad_free(post);
	ccb_classad_free(pl);
	ccb_classad_free(back);
	ccb_stream_free(c);
	ccb_stream_free(sv.s);
}

/* Authentication (CLAIMTOBE), BLOWFISH, encryption required and no ECDH
 * key: the server makes a key and sends it after the method (hasKey = 1,
 * identity wrap); our client side of the method exchange takes it. */
static void test_keyless_key_sent(void)
{
	struct server sv;
	pthread_t t;
	int fds[2];
	ccb_stream *c;
	ccb_classad *req = keyless_request("REQUIRED", "REQUIRED", "BLOWFISH", CCB_CMD_CCB_REGISTER);
	ccb_classad *resp = NULL, *post = NULL, *pl = ccb__classad_new(), *back = NULL;
	ccb__auth_params ap = {.claimtobe_user = "condor", .uid_domain = "vm"};
	ccb__auth_result ar;
	ccb_error err = {0};
	const char *v = NULL;

	server_init(&sv, "BLOWFISH", CCB_SEC_LEVEL_REQUIRED, CCB_SEC_LEVEL_OPTIONAL);
	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &c, NULL);
	ccb_stream_new(fds[1], &sv.s, NULL);
	ccb_stream_set_timeout(c, 5000);
	ccb_stream_set_timeout(sv.s, 5000);
	pthread_create(&t, NULL, serve, &sv);
	CU_ASSERT(ccb_stream_put_int(c, 60010) == CCB_OK && ccb_classad_put(c, req, NULL) == CCB_OK &&
		  ccb_stream_end_message(c) == CCB_OK);
	CU_ASSERT_FATAL(ccb_classad_get(c, &resp) == CCB_OK && ccb_stream_end_of_message(c) == CCB_OK);
	CU_ASSERT(ccb_classad_get_string(resp, "Encryption", &v) == CCB_OK && !strcmp(v, "YES"));
	CU_ASSERT_EQUAL(ccb_classad_type(resp, "ECDHPublicKey"), CCB_VAL_ABSENT);
	CU_ASSERT_EQUAL(ccb__auth_client(c, "CLAIMTOBE", &ap, &ar, &err), CCB_OK);
	CU_ASSERT_FATAL(ar.has_key);
	CU_ASSERT_EQUAL(ar.key_len, CCB_LEGACY_KEY_LEN);
	CU_ASSERT_EQUAL(ar.key_protocol, CCB_LEGACY_BLOWFISH);
	CU_ASSERT(ccb__stream_set_legacy_key(c, CCB_LEGACY_BLOWFISH, ar.key, true, false) == CCB_OK);
	/* POST-AUTH and the payload, enciphered both ways. */
	CU_ASSERT_FATAL(ccb_classad_get(c, &post) == CCB_OK && ccb_stream_end_of_message(c) == CCB_OK);
	CU_ASSERT(ccb_classad_get_string(post, "User", &v) == CCB_OK && !strcmp(v, "condor@vm"));
	ccb_classad_set_string(pl, "ClaimId", "secret-claim-1234");
	CU_ASSERT(ccb_classad_put(c, pl, NULL) == CCB_OK && ccb_stream_end_message(c) == CCB_OK);
	CU_ASSERT(ccb_classad_get(c, &back) == CCB_OK && ccb_stream_end_of_message(c) == CCB_OK);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	CU_ASSERT(sv.echoed);
	CU_ASSERT_STRING_EQUAL(sv.cmd.info.crypto, "BLOWFISH");
	CU_ASSERT(sv.cmd.info.encrypted && !sv.cmd.info.integrity);
	ccb_classad_free(req);
	ccb_classad_free(resp);
	ccb_classad_free(post);
	ccb_classad_free(pl);
	ccb_classad_free(back);
	ccb_stream_free(c);
	ccb_stream_free(sv.s);
}

/* ---- configuration and diagnosis ---------------------------------------- */

static void test_config_crypto_methods(void)
{
	char path[] = "/tmp/ccbt-crypto-XXXXXX";
	int fd = mkstemp(path);
	const char *good = "{\"SEC_DEFAULT_CRYPTO_METHODS\": \"BLOWFISH\", "
			   "\"SEC_CLIENT_CRYPTO_METHODS\": \"3des, aes\", "
			   "\"SEC_DAEMON_CRYPTO_METHODS\": \"TRIPLEDES\"}";
	const char *bad = "{\"SEC_CLIENT_CRYPTO_METHODS\": \"AES, CHACHA\"}";
	ccb_config *c = NULL;
	ccb_sec_client_config cc;
	ccb_sec_server_config sc;
	ccb_error err = {0};

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(write(fd, good, strlen(good)) == (ssize_t)strlen(good));
	close(fd);
	CU_ASSERT_FATAL(ccb_config_load(path, &c, &err) == CCB_OK);
	CU_ASSERT(ccb_config_client_security(c, &cc, NULL) == CCB_OK);
	CU_ASSERT(cc.crypto_methods && !strcmp(cc.crypto_methods, "3des, aes"));
	CU_ASSERT(ccb_config_server_security(c, &sc, NULL) == CCB_OK);
	CU_ASSERT(sc.crypto_methods[CCB_PERM_ALLOW] && !strcmp(sc.crypto_methods[CCB_PERM_ALLOW], "BLOWFISH"));
	CU_ASSERT(sc.crypto_methods[CCB_PERM_DAEMON] && !strcmp(sc.crypto_methods[CCB_PERM_DAEMON], "TRIPLEDES"));
	CU_ASSERT_PTR_NULL(sc.crypto_methods[CCB_PERM_READ]);
	ccb_config_free(c);
	fd = open(path, O_WRONLY | O_TRUNC);
	CU_ASSERT(write(fd, bad, strlen(bad)) == (ssize_t)strlen(bad));
	close(fd);
	c = NULL;
	CU_ASSERT_EQUAL(ccb_config_load(path, &c, &err), CCB_ERR_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "unknown crypto method \"CHACHA\""));
	CU_ASSERT_PTR_NULL(c);
	unlink(path);
}

/* Debug log on the server: the method and identity, the negotiated crypto,
 * and why a method was refused (FS without a usable UID_DOMAIN is now the
 * host's name; FS fails here for a plain reason we can force: a missing
 * FS directory). */
static void test_server_log(void)
{
	struct server sv;
	ccb_sec_client_config cc = {.auth_methods = "FS,CLAIMTOBE", .claimtobe_user = "condor",
				    .uid_domain = "vm", .authentication = CCB_SEC_LEVEL_REQUIRED,
				    .encryption = CCB_SEC_LEVEL_NEVER,
				    .integrity = CCB_SEC_LEVEL_NEVER, .crypto_methods = "3DES"};
	ccb_sec_info info;
	ccb_error err = {0};

	log_text[0] = '\0';
	ccb_set_log_handler(collect, CCB_LOG_DEBUG, NULL);
	server_init(&sv, "3DES", CCB_SEC_LEVEL_NEVER, CCB_SEC_LEVEL_NEVER);
	sv.cfg.auth_methods[CCB_PERM_ALLOW] = "FS,CLAIMTOBE";
	sv.cfg.uid_domain = NULL; /* HTCondor's default: the full host name */
	CU_ASSERT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REQUEST, &info, &err), CCB_OK);
	ccb_set_log_handler(NULL, CCB_LOG_ERROR, NULL);
	/* FS worked without UID_DOMAIN configured. */
	CU_ASSERT_STRING_EQUAL(sv.cmd.info.method, "FS");
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text, "authenticated with FS, identity "));
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text, "crypto 3DES, encryption off, integrity off"));
}

#define S3 CCB_VECTORS_DIR "/S3-token-aes/config"

/* A refused method says why: a POOL signing key readable by others. The
 * client's error names the refusal, the server's the cause. */
static void test_refusal_logged(void)
{
	char dir[] = "/tmp/ccbt-crypto-XXXXXX", path[300];
	size_t n;
	char *key = ccbt_read_file(S3 "/POOL.signing-key", &n);
	char *tok = ccbt_read_file(S3 "/token-condor.jwt", NULL);
	struct server sv;
	ccb_sec_client_config cc = {.auth_methods = "IDTOKENS", .authentication = CCB_SEC_LEVEL_REQUIRED};
	ccb_sec_info info;
	ccb_error err = {0};
	FILE *f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(key);
	CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
	tok[strcspn(tok, "\r\n")] = '\0';
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/POOL", dir);
	f = fopen(path, "wb");
	fwrite(key, 1, n, f);
	fclose(f);
	chmod(path, 0644);
	server_init(&sv, NULL, CCB_SEC_LEVEL_DEFAULT, CCB_SEC_LEVEL_DEFAULT);
	sv.cfg.auth_methods[CCB_PERM_ALLOW] = "TOKEN";
	sv.cfg.pool_signing_key_file = path;
	sv.cfg.trust_domain = "ccbtest.local";
	cc.token = tok;
	log_text[0] = '\0';
	ccb_set_log_handler(collect, CCB_LOG_DEBUG, NULL);
	CU_ASSERT_NOT_EQUAL(run(&sv, &cc, CCB_CMD_CCB_REGISTER, &info, &err), CCB_OK);
	ccb_set_log_handler(NULL, CCB_LOG_ERROR, NULL);
	CU_ASSERT_EQUAL(sv.rc, CCB_ERR_AUTH);
	CU_ASSERT_PTR_NOT_NULL(strstr(sv.err.detail, "after: TOKEN: signing key "));
	CU_ASSERT_PTR_NOT_NULL(strstr(sv.err.detail, "must not be accessible by others"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text, "must not be accessible by others"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "every authentication method failed: TOKEN: server refused the token"));
	unlink(path);
	rmdir(dir);
	free(key);
	free(tok);
}

/* Without OpenSSL's legacy provider the default list loses BLOWFISH, and a
 * warning says why. In a child whose OPENSSL_MODULES points nowhere, run
 * first, before this process loaded the providers. */
static void test_without_legacy_provider(void)
{
	pid_t pid = fork();
	int status = 0;

	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		char out[64];
		setenv("OPENSSL_MODULES", "/nonexistent-ccbt-ossl-modules", 1);
		ccb_set_log_handler(collect, CCB_LOG_WARNING, NULL);
		ccb__sec_usable_crypto(CCB_SEC_DEFAULT_CRYPTO, out, sizeof out);
		if (strcmp(out, "AES,3DES"))
			_exit(2);
		if (!strstr(log_text, "BLOWFISH is configured but left out: BLOWFISH needs OpenSSL's "
				      "legacy provider (ossl-modules/legacy.so), not available"))
			_exit(3);
		_exit(0);
	}
	CU_ASSERT(waitpid(pid, &status, 0) == pid);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static const ccbt_test tests[] = {
	{"without OpenSSL's legacy provider", test_without_legacy_provider},
	{"method x Encryption x Integrity matrix", test_matrix},
	{"unauthenticated sessions", test_unauthenticated},
	{"resumed legacy session", test_resume_legacy},
	{"S1 capture replayed at our server", test_s1_at_server},
	{"S1 capture replayed at our client", test_s1_at_client},
	{"keyless client, plaintext", test_keyless_plain},
	{"keyless client, key sent after CLAIMTOBE", test_keyless_key_sent},
	{"SEC_*_CRYPTO_METHODS config", test_config_crypto_methods},
	{"server debug log", test_server_log},
	{"refused method: the cause is logged", test_refusal_logged},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"session crypto", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
