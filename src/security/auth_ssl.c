/*
 * The SSL authentication method (security-handshake.md §7.5): TLS run over
 * memory BIOs, its records carried in CEDAR messages of one shape,
 *
 *     int status | int n | n bytes of TLS data     EOM
 *
 * after a first exchange of bare status ints. Both sides follow the round
 * structure of H:src/condor_io/condor_auth_ssl.cpp (authenticate(),
 * authenticate_server_connect(), authenticate_server_key()) message for
 * message, so a failure on either side ends with both having read what the
 * other sent and the stream stays usable (CCB_ERR_AUTH).
 *
 * The 256-byte key of the key phase only feeds HTCondor's legacy 3DES wrap;
 * libccb keys the stream by ECDH (§8), so the key is read and discarded.
 *
 * Not implemented (all off by default in HTCondor): known_hosts / BOOTSTRAP_
 * SSL_SERVER_TRUST in the verify callback, proxy certificates
 * (AUTH_SSL_ALLOW_CLIENT_PROXY), AUTH_SSL_REQUIRE_CLIENT_MAPPING, SCITOKENS.
 */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "security/auth.h"

/* Status values (H:src/condor_includes/condor_auth_ssl.h:30-40). */
enum {
	ST_ERROR = -1,
	ST_OK = 0,
	ST_SENDING = 1,
	ST_RECEIVING = 2,
	ST_QUITTING = 3,
	ST_HOLDING = 4,
};

#define SSL_BUF_SIZE (1024 * 1024) /* AUTH_SSL_BUF_SIZE: cap on n */
#define SSL_KEY_LEN 256            /* AUTH_SSL_SESSION_KEY_LEN */
/* HTCondor bounds only the key phase (256 rounds); a TLS handshake needs a
 * handful, so the same bound on the handshake only stops a stalling peer. */
#define SSL_MAX_ROUNDS 256

/* AUTH_SSL_DEFAULT_CIPHERLIST (H:condor_auth_ssl.h); TLS 1.3 suites keep
 * OpenSSL's defaults, as in HTCondor. */
static const char DEFAULT_CIPHERLIST[] =
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:"
	"ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:"
	"ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:"
	"ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:DHE-RSA-AES128-SHA256:"
	"DHE-RSA-AES128-SHA:DHE-RSA-AES256-SHA256:DHE-RSA-AES256-SHA:"
	"ECDHE-ECDSA-DES-CBC3-SHA:ECDHE-RSA-DES-CBC3-SHA:EDH-RSA-DES-CBC3-SHA:"
	"AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256:AES256-SHA256:"
	"AES128-SHA:AES256-SHA:DES-CBC3-SHA:!DSS";

/* One side's TLS state and the stream it talks over. */
typedef struct tls_side {
	ccb_stream *s;
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *in;  /* peer's records, fed to TLS */
	BIO *out; /* TLS's records, to send */
	ccb_error *err;
	char why[160]; /* the first local TLS failure, for the error detail */
} tls_side;

static void side_free(tls_side *t)
{
	if (t->ssl)
		SSL_free(t->ssl); /* frees the BIOs too */
	else {
		BIO_free(t->in);
		BIO_free(t->out);
	}
	SSL_CTX_free(t->ctx);
}

static void note(tls_side *t, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[120] = "";

	if (t->why[0])
		return;
	if (e)
		ERR_error_string_n(e, buf, sizeof buf);
	snprintf(t->why, sizeof t->why, "%s%s%s", what, buf[0] ? ": " : "", buf);
	CCB_LOG(CCB_LOG_DEBUG, "SSL auth: %s", t->why);
}

static ccb_err stream_fail(tls_side *t, const char *step)
{
	const ccb_error *e = ccb_stream_error(t->s);
	return ccb_error_set(t->err, e->code ? e->code : CCB_ERR_IO, "SSL: %s: %s", step, e->detail);
}

/* ---- the CEDAR side (send_message/receive_message, H:1548-1584) --------- */

static ccb_err send_status(tls_side *t, int status)
{
	if (ccb_stream_put_int(t->s, status) || ccb_stream_end_message(t->s))
		return stream_fail(t, "send status");
	return CCB_OK;
}

static ccb_err recv_status(tls_side *t, int *status)
{
	int32_t v;

	if (ccb_stream_get_int32(t->s, &v) || ccb_stream_end_of_message(t->s))
		return stream_fail(t, "read status");
	*status = v;
	return CCB_OK;
}

/* Send `status` with whatever TLS wrote since the last message
 * (client_send_message/server_send_message). */
static ccb_err send_msg(tls_side *t, int status)
{
	size_t pending = BIO_ctrl_pending(t->out);
	size_t n = pending < SSL_BUF_SIZE ? pending : SSL_BUF_SIZE;
	uint8_t *buf = NULL;
	int got = 0;
	ccb_err rc = CCB_OK;

	if (n > 0) {
		buf = malloc(n);
		if (!buf)
			return ccb_error_set(t->err, CCB_ERR_NOMEM, "SSL: out of memory");
		got = BIO_read(t->out, buf, (int)n);
		if (got < 0)
			got = 0;
	}
	if (ccb_stream_put_int(t->s, status) || ccb_stream_put_int(t->s, got) ||
	    (got > 0 && ccb_stream_put_bytes(t->s, buf, (size_t)got)) || ccb_stream_end_message(t->s))
		rc = stream_fail(t, "send TLS message");
	free(buf);
	return rc;
}

/* "3, 0": quitting, with no TLS data even if some is pending (H:
 * send_message(AUTH_SSL_QUITTING, buf, 0) after a failed certificate check). */
static ccb_err send_quit(tls_side *t)
{
	if (ccb_stream_put_int(t->s, ST_QUITTING) || ccb_stream_put_int(t->s, 0) ||
	    ccb_stream_end_message(t->s))
		return stream_fail(t, "send quitting");
	return CCB_OK;
}

/* Read the peer's status and feed its TLS bytes to ours
 * (client_receive_message/server_receive_message). */
static ccb_err recv_msg(tls_side *t, int *status)
{
	int32_t st, n;
	uint8_t *buf = NULL;

	if (ccb_stream_get_int32(t->s, &st) || ccb_stream_get_int32(t->s, &n))
		return stream_fail(t, "read TLS message");
	if (n < 0 || n > SSL_BUF_SIZE) {
		ccb_stream_end_of_message(t->s);
		return ccb_error_set(t->err, CCB_ERR_PROTOCOL, "SSL: peer sent a TLS message of %d bytes",
				     (int)n);
	}
	if (n > 0 && !(buf = malloc((size_t)n)))
		return ccb_error_set(t->err, CCB_ERR_NOMEM, "SSL: out of memory");
	if ((n > 0 && ccb_stream_get_bytes(t->s, buf, (size_t)n)) || ccb_stream_end_of_message(t->s)) {
		free(buf);
		return stream_fail(t, "read TLS message");
	}
	if (n > 0 && BIO_write(t->in, buf, n) != n) {
		free(buf);
		return ccb_error_set(t->err, CCB_ERR_NOMEM, "SSL: cannot buffer the peer's TLS data");
	}
	free(buf);
	*status = st;
	return CCB_OK;
}

/* ---- TLS context (setup_ssl_ctx, H:1938-2103) --------------------------- */

static bool readable(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* Next comma-separated item of *list into out; false at the end. */
static bool next_item(const char **list, char *out, size_t cap)
{
	const char *p = *list, *e;
	size_t n;

	while (p && (*p == ',' || *p == ' ' || *p == '\t'))
		p++;
	if (!p || !*p)
		return false;
	for (e = p; *e && *e != ','; e++)
		;
	*list = e;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	n = (size_t)(e - p) < cap - 1 ? (size_t)(e - p) : cap - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

/* NULL on failure (the side then reports status -1). The server needs
 * AUTH_SSL_SERVER_CERTFILE/KEYFILE; a client certificate is optional. */
static SSL_CTX *make_ctx(tls_side *t, const ccb__auth_params *p, bool server)
{
	const char *certs = server ? p->ssl_server_certfile : p->ssl_client_certfile;
	const char *keys = server ? p->ssl_server_keyfile : p->ssl_client_keyfile;
	const char *l, *lc, *lk;
	char item[1024], cert[1024], key[1024], cafile[1024] = "";
	SSL_CTX *ctx;

	if (server && (!certs || !*certs || !keys || !*keys)) {
		note(t, "no server certificate and key configured");
		return NULL;
	}
	ctx = SSL_CTX_new(TLS_method());
	if (!ctx) {
		note(t, "SSL_CTX_new");
		return NULL;
	}
	/* SSLv3, TLS 1.0 and 1.1 are off (SSL_OP_NO_*, H:2005). */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* Of a CA file list, the last readable file is used (H:2022-2031). */
	for (l = p->ssl_ca_file; next_item(&l, item, sizeof item);)
		if (readable(item))
			snprintf(cafile, sizeof cafile, "%s", item);
	if ((cafile[0] || p->ssl_ca_dir) &&
	    SSL_CTX_load_verify_locations(ctx, cafile[0] ? cafile : NULL, p->ssl_ca_dir) != 1) {
		note(t, "cannot load the CA file/directory");
		goto fail;
	}
	/* AUTH_SSL_{CLIENT,SERVER}_USE_DEFAULT_CAS defaults to true. */
	if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		note(t, "cannot load the default CAs");
		goto fail;
	}
	/* Certificate and key lists are paired; unreadable pairs are skipped
	 * (H:2040-2068). */
	for (lc = certs, lk = keys; next_item(&lc, cert, sizeof cert);) {
		if (!next_item(&lk, key, sizeof key))
			break;
		if (!readable(cert) || !readable(key))
			continue;
		if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
			note(t, "cannot load the certificate");
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
			note(t, "cannot load the private key");
			goto fail;
		}
	}
	/* Peer verification on; the server thereby asks for a client
	 * certificate but accepts none (no FAIL_IF_NO_PEER_CERT). */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_set_cipher_list(ctx, DEFAULT_CIPHERLIST) != 1) {
		note(t, "no valid cipher");
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Context, SSL object and memory BIOs; false on any failure. */
static bool side_init(tls_side *t, const ccb__auth_params *p, bool server)
{
	static const ccb__auth_params none;

	if (!p)
		p = &none;
	ERR_clear_error();
	if (!(t->ctx = make_ctx(t, p, server)))
		return false;
	if (!(t->in = BIO_new(BIO_s_mem())) || !(t->out = BIO_new(BIO_s_mem())) ||
	    !(t->ssl = SSL_new(t->ctx))) {
		note(t, "cannot create the TLS objects");
		return false;
	}
	SSL_set_bio(t->ssl, t->in, t->out);
	if (server)
		SSL_set_accept_state(t->ssl);
	else
		SSL_set_connect_state(t->ssl);
	return true;
}

/* Map the result of a TLS call to a status: WANT_READ 2, WANT_WRITE 1,
 * anything else 3 (the switch after SSL_connect/SSL_accept). */
static int step_status(tls_side *t, int ret, const char *what)
{
	switch (SSL_get_error(t->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return ST_RECEIVING;
	case SSL_ERROR_WANT_WRITE:
		return ST_SENDING;
	default:
		note(t, what);
		return ST_QUITTING;
	}
}

/* ---- certificate checks (post_connection_check, H:1698-1850) ------------ */

/* HTCondor's hostname_match(): case-insensitive, label by label ('.'
 * separated, empty labels skipped); a '*' in the pattern matches the rest
 * of its label and must end it; a '*' in the host name never matches. */
static bool hostname_match(const char *pattern, const char *host)
{
	char pc[256], hc[256];
	char *s1 = NULL, *s2 = NULL, *a, *b;
	size_t i;

	if (!pattern || !host || strlen(pattern) > 255 || strlen(host) > 255)
		return false;
	for (i = 0; pattern[i]; i++)
		pc[i] = (char)tolower((unsigned char)pattern[i]);
	pc[i] = '\0';
	for (i = 0; host[i]; i++)
		hc[i] = (char)tolower((unsigned char)host[i]);
	hc[i] = '\0';
	for (a = strtok_r(pc, ".", &s1), b = strtok_r(hc, ".", &s2); a && b;
	     a = strtok_r(NULL, ".", &s1), b = strtok_r(NULL, ".", &s2)) {
		while (*a && *b && *a == *b) {
			if (*b == '*')
				return false;
			a++;
			b++;
		}
		if (*a == '*') {
			if (a[1] != '\0')
				return false;
		} else if (*a || *b) {
			return false;
		}
	}
	return !a && !b;
}

/* The server certificate's DNS SANs, then its CN, against `host`. */
static bool cert_matches_host(X509 *cert, const char *host)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	bool ok = false;
	char cn[256];
	X509_NAME *subj;

	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && !ok; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char san[256];
		int len;

		if (g->type != GEN_DNS || ASN1_STRING_type(g->d.dNSName) != V_ASN1_IA5STRING)
			continue;
		len = ASN1_STRING_length(g->d.dNSName);
		if (len < 0 || len > 255)
			continue;
		memcpy(san, ASN1_STRING_get0_data(g->d.dNSName), (size_t)len);
		san[len] = '\0';
		if (strlen(san) != (size_t)len) /* embedded NUL */
			continue;
		ok = hostname_match(san, host);
	}
	GENERAL_NAMES_free(gens);
	if (ok)
		return true;
	/* The CN: an exact, case-insensitive comparison (no wildcards). */
	subj = X509_get_subject_name(cert);
	if (subj && X509_NAME_get_text_by_NID(subj, NID_commonName, cn, sizeof cn) > 0)
		return strcasecmp(cn, host) == 0;
	return false;
}

static bool client_check(tls_side *t, const ccb__auth_params *p)
{
	X509 *cert = SSL_get1_peer_certificate(t->ssl);
	const char *host = p ? p->ssl_server_host : NULL;
	bool ok;
	long vr;

	if (!cert) {
		note(t, "server presented no certificate");
		return false;
	}
	if (p && p->ssl_skip_host_check) {
		ok = true;
	} else if (!host || !*host) {
		note(t, "no SSL host name specified"); /* no alias= in the address */
		ok = false;
	} else if (!(ok = cert_matches_host(cert, host))) {
		char msg[160];
		snprintf(msg, sizeof msg, "server certificate does not match host '%.100s'", host);
		note(t, msg);
	}
	X509_free(cert);
	if (ok && (vr = SSL_get_verify_result(t->ssl)) != X509_V_OK) {
		note(t, X509_verify_cert_error_string(vr));
		ok = false;
	}
	return ok;
}

static bool server_check(tls_side *t, const ccb__auth_params *p)
{
	X509 *cert = SSL_get1_peer_certificate(t->ssl);
	long vr;

	if (!cert) {
		if (p && p->ssl_require_client_cert) {
			note(t, "client presented no certificate, one is required");
			return false;
		}
		return true; /* anonymous client allowed */
	}
	X509_free(cert);
	if ((vr = SSL_get_verify_result(t->ssl)) != X509_V_OK) {
		note(t, X509_verify_cert_error_string(vr));
		return false;
	}
	return true;
}

static ccb_err refused(tls_side *t, const char *side, const char *step)
{
	return ccb_error_set(t->err, CCB_ERR_AUTH, "SSL %s: %s%s%s", side, step, t->why[0] ? ": " : "",
			     t->why);
}

/* ---- client (H:authenticate(), client branch, 389-650) ------------------ */

/* Step 2: the TLS handshake; odd rounds send, even ones receive, so the
 * client speaks first. A side that holds stops calling SSL_connect.
 * *sst is the server's last status. */
static ccb_err client_tls_handshake(tls_side *t, int *sst)
{
	int cst = ST_OK, ret = 1, round;
	ccb_err rc;

	for (round = 1;; round++) {
		if (round > SSL_MAX_ROUNDS)
			return ccb_error_set(t->err, CCB_ERR_PROTOCOL, "SSL client: handshake does not end");
		if (cst != ST_HOLDING)
			ret = SSL_connect(t->ssl);
		cst = ret == 1 ? ST_HOLDING : step_status(t, ret, "TLS handshake failed");
		if (round % 2 == 1) {
			if ((rc = send_msg(t, cst)))
				return rc;
		} else if ((rc = recv_msg(t, sst))) {
			return rc;
		}
		if (*sst == ST_ERROR)
			*sst = ST_QUITTING;
		if (*sst == ST_HOLDING && cst == ST_HOLDING)
			return CCB_OK;
		if (cst == ST_QUITTING || *sst == ST_QUITTING)
			return refused(t, "client", *sst == ST_QUITTING && cst != ST_QUITTING
							    ? "server aborted the TLS handshake"
							    : "TLS handshake");
	}
}

/* Step 4: read the 256-byte key; odd rounds receive (server first). */
static ccb_err client_read_key(tls_side *t, uint8_t *key, size_t key_len)
{
	int cst = ST_RECEIVING, sst = ST_RECEIVING, ret = 1, round;
	ccb_err rc;

	for (round = 1;; round++) {
		if (round > SSL_MAX_ROUNDS) {
			cst = ST_QUITTING;
			break;
		}
		if (cst != ST_HOLDING)
			ret = SSL_read(t->ssl, key, (int)key_len);
		/* HTCondor takes any successful read as the key; it arrives as
		 * one 256-byte record. */
		if (ret >= 1)
			cst = ST_HOLDING;
		else if ((cst = step_status(t, ret, "reading the key")) == ST_SENDING)
			cst = ST_RECEIVING;
		if (round % 2 == 1) {
			if ((rc = recv_msg(t, &sst)))
				return rc;
		} else if ((rc = send_msg(t, cst))) {
			return rc;
		}
		if ((sst == ST_HOLDING && cst == ST_HOLDING) || sst == ST_QUITTING ||
		    cst == ST_QUITTING)
			break;
	}
	if (sst == ST_QUITTING || cst == ST_QUITTING)
		return refused(t, "client", sst == ST_QUITTING ? "server refused" : "key exchange");
	return CCB_OK;
}

ccb_err ccb__auth_ssl_client(ccb_stream *s, const ccb__auth_params *p, ccb__auth_result *r,
			     ccb_error *err)
{
	tls_side t = {.s = s, .err = err};
	int cst = ST_OK, sst = ST_OK;
	uint8_t key[SSL_KEY_LEN];
	ccb_err rc;

	(void)r;
	if (!side_init(&t, p, false))
		cst = ST_ERROR;
	/* Step 1: the server's status, then ours (client_share_status). */
	if ((rc = recv_status(&t, &sst)) || (rc = send_status(&t, cst)))
		goto out;
	if (sst != ST_OK || cst != ST_OK) {
		rc = cst != ST_OK ? refused(&t, "client", "cannot set up TLS")
				      : ccb_error_set(err, CCB_ERR_AUTH,
						      "SSL client: server cannot do SSL (status %d)", sst);
		goto out;
	}
	if ((rc = client_tls_handshake(&t, &sst)))
		goto out;
	/* Step 3: check the server; on failure read the server's next message
	 * and answer 3, 0 unless the server is quitting too. */
	if (!client_check(&t, p)) {
		if ((rc = recv_msg(&t, &sst)))
			goto out;
		if (sst != ST_QUITTING && (rc = send_quit(&t)))
			goto out;
		rc = refused(&t, "client", "server certificate check failed");
		goto out;
	}
	rc = client_read_key(&t, key, sizeof key);
out:
	OPENSSL_cleanse(key, sizeof key);
	side_free(&t);
	ERR_clear_error();
	return rc;
}

/* ---- server (H:authenticate(), server branch, and authenticate_server_*,
 *      787-989) ----------------------------------------------------------- */

/* Step 2: the TLS handshake; even rounds receive, odd ones send. */
static ccb_err server_tls_handshake(tls_side *t)
{
	int cst = ST_OK, sst = ST_OK, ret = 1, round;
	ccb_err rc;

	for (round = 0;; round++) {
		if (round >= SSL_MAX_ROUNDS)
			return ccb_error_set(t->err, CCB_ERR_PROTOCOL, "SSL server: handshake does not end");
		if (sst != ST_HOLDING)
			ret = SSL_accept(t->ssl);
		sst = ret == 1 ? ST_HOLDING : step_status(t, ret, "TLS handshake failed");
		if (round % 2 == 0) {
			if ((rc = recv_msg(t, &cst)))
				return rc;
		} else if ((rc = send_msg(t, sst))) {
			return rc;
		}
		if (cst == ST_ERROR)
			cst = ST_QUITTING;
		if (cst == ST_HOLDING && sst == ST_HOLDING)
			return CCB_OK;
		if (cst == ST_QUITTING || sst == ST_QUITTING)
			return refused(t, "server", cst == ST_QUITTING && sst != ST_QUITTING
							    ? "client aborted the TLS handshake"
							    : "TLS handshake");
	}
}

/* Step 4: write the key; even rounds send (server first). */
static ccb_err server_send_key(tls_side *t, const uint8_t *key, size_t key_len)
{
	int cst = ST_RECEIVING, sst = ST_RECEIVING, ret = 1, round;
	ccb_err rc;

	for (round = 0;; round++) {
		if (round > SSL_MAX_ROUNDS) {
			sst = ST_QUITTING;
			break;
		}
		if (sst != ST_HOLDING)
			ret = SSL_write(t->ssl, key, (int)key_len);
		if (ret >= 1)
			sst = ST_HOLDING;
		else if ((sst = step_status(t, ret, "writing the key")) == ST_SENDING)
			sst = ST_RECEIVING;
		if (round % 2 == 0) {
			if ((rc = send_msg(t, sst)))
				return rc;
		} else if ((rc = recv_msg(t, &cst))) {
			return rc;
		}
		if ((sst == ST_HOLDING && cst == ST_HOLDING) || cst == ST_QUITTING ||
		    sst == ST_QUITTING)
			break;
	}
	if (sst == ST_QUITTING || cst == ST_QUITTING)
		return refused(t, "server", cst == ST_QUITTING ? "client refused" : "key exchange");
	return CCB_OK;
}

/* The identity (authenticate_finish): domain "unmapped", user
 * "unauthenticated" without a client certificate, "ssl" with one. The
 * certificate's subject DN is HTCondor's authenticated name, which only
 * CERTIFICATE_MAPFILE (not supported here) turns into another identity. */
static void server_identity(tls_side *t, ccb__auth_result *r)
{
	char dn[1024] = "";
	X509 *peer;

	if ((peer = SSL_get1_peer_certificate(t->ssl))) {
		X509_NAME_oneline(X509_get_subject_name(peer), dn, sizeof dn);
		X509_free(peer);
	}
	if (dn[0]) {
		snprintf(r->peer_user, sizeof r->peer_user, "ssl@unmapped");
		CCB_LOG(CCB_LOG_INFO, "SSL authentication succeeded to %s (ssl@unmapped)", dn);
	} else {
		snprintf(r->peer_user, sizeof r->peer_user, "unauthenticated@unmapped");
	}
}

ccb_err ccb__auth_ssl_server(ccb_stream *s, const ccb__auth_params *p, ccb__auth_result *r,
			     ccb_error *err)
{
	tls_side t = {.s = s, .err = err};
	int cst = ST_OK, sst = ST_OK;
	uint8_t key[SSL_KEY_LEN];
	ccb_err rc;

	if (!side_init(&t, p, true))
		sst = ST_ERROR;
	/* Step 1: our status first, then the client's. */
	if ((rc = send_status(&t, sst)) || (rc = recv_status(&t, &cst)))
		goto out;
	if (sst != ST_OK || cst != ST_OK) {
		rc = sst != ST_OK ? refused(&t, "server", "cannot set up TLS")
				      : ccb_error_set(err, CCB_ERR_AUTH,
						      "SSL server: client cannot do SSL (status %d)", cst);
		goto out;
	}
	if ((rc = server_tls_handshake(&t)))
		goto out;
	/* Step 3: check the client; on failure tell it with 3, 0. */
	if (!server_check(&t, p)) {
		if ((rc = send_quit(&t)) == CCB_OK)
			rc = refused(&t, "server", "client certificate check failed");
		goto out;
	}
	if (RAND_bytes(key, sizeof key) != 1) {
		note(&t, "RAND_bytes");
		if ((rc = send_quit(&t)) == CCB_OK)
			rc = refused(&t, "server", "cannot make the key");
		goto out;
	}
	if ((rc = server_send_key(&t, key, sizeof key)) == CCB_OK)
		server_identity(&t, r);
out:
	OPENSSL_cleanse(key, sizeof key);
	side_free(&t);
	ERR_clear_error();
	return rc;
}
