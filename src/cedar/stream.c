/*
 * A CEDAR stream: messages framed into packets (cedar-stream.md §2, §3),
 * read and written over a non-blocking socket with deadlines, the cork,
 * the primitives put/get and byte-stream mode. The session crypto (keys,
 * handshake digests, secrets) is in stream_crypto.c; the struct is in
 * stream_priv.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cedar/stream_priv.h"

#define fail ccb__stream_failf

static ccb_err flush(ccb_stream *s);

/* The peer text when there was no memory for one (never freed). */
static char no_peer[] = "?";

static void set_peer(ccb_stream *s, const char *name)
{
	char *p = strdup(name);

	if (s->peer != no_peer)
		free(s->peer);
	s->peer = p ? p : no_peer;
}

ccb_err ccb__stream_failf(ccb_stream *s, ccb_err code, const char *fmt, ...)
{
	char what[CCB_ERROR_DETAIL_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	s->code = code;
	if (!s->err)
		s->err = malloc(sizeof *s->err);
	if (s->err)
		ccb_error_set(s->err, code, "%s: %s", s->peer, what);
	/* Anything but a caller mistake leaves the byte stream unusable. */
	if (code != CCB_ERR_INVALID_ARG && code != CCB_ERR_STATE)
		s->broken = true;
	return code;
}

ccb_err ccb__stream_fail(ccb_stream *s, const ccb_error *e)
{
	return fail(s, e->code, "%s", e->detail);
}

static void describe_peer(ccb_stream *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char host[INET6_ADDRSTRLEN] = "?";
	char name[INET6_ADDRSTRLEN + 16];

	if (getpeername(s->fd, (struct sockaddr *)&ss, &len) != 0) {
		snprintf(name, sizeof name, "fd %d", s->fd);
	} else if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
		snprintf(name, sizeof name, "%s:%u", host, ntohs(a->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
		snprintf(name, sizeof name, "[%s]:%u", host, ntohs(a->sin6_port));
	} else {
		snprintf(name, sizeof name, "local socket");
	}
	set_peer(s, name);
}

/* A stream on fd; `peer` names it (NULL: the socket's peer address, which
 * costs a getpeername), `nonblocking` says the fd already is. */
static ccb_err stream_new(int fd, const char *peer, bool nonblocking, ccb_stream **out,
			  ccb_error *err)
{
	ccb_stream *s;

	*out = NULL;
	if (fd < 0)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_stream_new: bad fd %d", fd);
	s = calloc(1, sizeof *s);
	if (!s) {
		close(fd);
		return ccb_error_set(err, CCB_ERR_NOMEM, "ccb_stream_new");
	}
	s->fd = fd;
	s->peer = no_peer;
	s->timeout_ms = CCB_STREAM_DEFAULT_TIMEOUT_MS;
	s->deadline = INT64_MAX;
	s->max_message = CCB_STREAM_DEFAULT_MAX_MESSAGE;
	if (!nonblocking) {
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0 && !(fl & O_NONBLOCK))
			fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	}
	if (peer)
		set_peer(s, peer);
	else
		describe_peer(s);
	*out = s;
	return CCB_OK;
}

ccb_err ccb_stream_new(int fd, ccb_stream **out, ccb_error *err)
{
	return stream_new(fd, NULL, false, out, err);
}

ccb_err ccb__stream_new_named(int fd, const char *peer, bool nonblocking, ccb_stream **out,
			      ccb_error *err)
{
	return stream_new(fd, peer, nonblocking, out, err);
}

void ccb_stream_free(ccb_stream *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	ccb__stream_drop_crypto(s);
	ccb_buf_free(&s->out);
	ccb_buf_free(&s->in);
	ccb_buf_free(&s->scratch);
	if (s->peer != no_peer)
		free(s->peer);
	free(s->err);
	free(s);
}

int ccb_stream_fd(const ccb_stream *s)
{
	return s->fd;
}

ccb_err ccb_stream_detach_fd(ccb_stream *s, int *fd)
{
	ccb_err rc;

	if (s->out.len || (s->loaded && ccb_cursor_left(&s->cur)))
		return fail(s, CCB_ERR_STATE, "cannot detach: a message is partly read or written");
	if ((rc = ccb__stream_uncork(s)))
		return rc;
	*fd = s->fd;
	s->fd = -1;
	s->broken = true;
	return CCB_OK;
}

void ccb_stream_shutdown(ccb_stream *s)
{
	atomic_store(&s->cancelled, true);
	if (s->fd >= 0)
		shutdown(s->fd, SHUT_RDWR);
}

void ccb_stream_set_timeout(ccb_stream *s, int timeout_ms)
{
	s->timeout_ms = timeout_ms;
}

void ccb_stream_set_deadline(ccb_stream *s, int64_t deadline_ms)
{
	s->deadline = deadline_ms;
}

void ccb_stream_set_max_message(ccb_stream *s, size_t max_bytes)
{
	s->max_message = max_bytes < 64 ? 64 : max_bytes;
}

void ccb_stream_set_peer_name(ccb_stream *s, const char *name)
{
	set_peer(s, name ? name : "");
}

const char *ccb_stream_peer_name(const ccb_stream *s)
{
	return s->peer;
}

const ccb_error *ccb_stream_error(const ccb_stream *s)
{
	static const ccb_error none = {CCB_OK, ""};
	/* A failure whose detail found no memory: its code, and a detail
	 * saying so, valid until the next call on this thread. */
	static _Thread_local ccb_error lost;

	if (s->err)
		return s->err;
	if (s->code == CCB_OK)
		return &none;
	ccb_error_set(&lost, s->code, "%s: (no memory for the error detail)", s->peer);
	return &lost;
}

/* ---- socket I/O with deadlines ----------------------------------------- */

/* The deadline of an operation starting now (and its start, which timeout
 * details measure from). */
static int64_t op_deadline(ccb_stream *s)
{
	int64_t d = ccb_deadline_in(s->timeout_ms);

	s->op_start = ccb_now_ms();
	return d < s->deadline ? d : s->deadline;
}

/* A timeout says what was waited for and for how long since the operation
 * began ("reading a message timed out after 30000 ms"). */
static ccb_err timed_out(ccb_stream *s, const char *what)
{
	return fail(s, CCB_ERR_TIMEOUT, "%s timed out after %lld ms", what,
		    (long long)(ccb_now_ms() - s->op_start));
}

static ccb_err wait_fd(ccb_stream *s, short events, int64_t deadline, const char *what)
{
	struct pollfd p = {.fd = s->fd, .events = events};
	int rc;

	for (;;) {
		if (atomic_load(&s->cancelled))
			return fail(s, CCB_ERR_CANCELLED, "%s: cancelled", what);
		if (s->wait_hook) {
			rc = s->wait_hook(s->wait_ctx, s->fd, events, deadline);
			if (rc > 0)
				return CCB_OK;
			if (rc == 0)
				return timed_out(s, what);
			return fail(s, CCB_ERR_CANCELLED, "%s: cancelled", what);
		}
		rc = poll(&p, 1, ccb_deadline_left(deadline));
		if (rc > 0)
			return CCB_OK;
		if (rc == 0)
			return timed_out(s, what);
		if (errno != EINTR)
			return fail(s, CCB_ERR_IO, "%s: poll: %s", what, ccb__strerror(errno));
	}
}

static ccb_err write_all(ccb_stream *s, const uint8_t *p, size_t n, int64_t deadline)
{
	while (n > 0) {
		ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ccb_err rc = wait_fd(s, POLLOUT, deadline, "sending a message");
			if (rc)
				return rc;
			continue;
		}
		if (atomic_load(&s->cancelled))
			return fail(s, CCB_ERR_CANCELLED, "send: cancelled");
		if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
			return fail(s, CCB_ERR_CLOSED, "send: %s", ccb__strerror(errno));
		return fail(s, CCB_ERR_IO, "send: %s", w < 0 ? ccb__strerror(errno) : "no progress");
	}
	return CCB_OK;
}

static ccb_err read_exact(ccb_stream *s, uint8_t *p, size_t n, int64_t deadline, const char *what)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = recv(s->fd, p + got, n - got, 0);
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ccb_err rc = wait_fd(s, POLLIN, deadline, what);
			if (rc)
				return rc;
			continue;
		}
		if (atomic_load(&s->cancelled))
			return fail(s, CCB_ERR_CANCELLED, "%s: cancelled", what);
		if (r == 0)
			return fail(s, CCB_ERR_CLOSED, "%s: connection closed after %zu of %zu bytes",
				    what, got, n);
		if (errno == ECONNRESET)
			return fail(s, CCB_ERR_CLOSED, "%s: connection reset", what);
		return fail(s, CCB_ERR_IO, "%s: recv: %s", what, ccb__strerror(errno));
	}
	return CCB_OK;
}

void ccb__stream_set_wait_hook(ccb_stream *s, ccb__stream_wait_fn fn, void *ctx)
{
	s->wait_hook = fn;
	s->wait_ctx = ctx;
}

ccb_err ccb_stream_wait_readable(ccb_stream *s, int timeout_ms)
{
	int64_t d;

	if (s->broken)
		return s->code ? s->code : CCB_ERR_STATE;
	if (s->loaded && ccb_cursor_left(&s->cur))
		return CCB_OK;
	if (s->corked) {
		ccb_err rc = flush(s);
		if (rc)
			return rc;
	}
	d = op_deadline(s);
	if (timeout_ms >= 0) {
		int64_t t = ccb_deadline_in(timeout_ms);
		d = t < s->deadline ? t : s->deadline;
	}
	return wait_fd(s, POLLIN, d, "waiting for a message");
}

/* ---- packets ------------------------------------------------------------ */

/* Send the packets assembled in scratch, or keep them there while corked. */
static ccb_err emit(ccb_stream *s, int64_t deadline)
{
	ccb_err rc;

	if (s->corked)
		return CCB_OK;
	rc = write_all(s, s->scratch.data, s->scratch.len, deadline);
	ccb_buf_reset(&s->scratch);
	return rc;
}

static ccb_err send_packet(ccb_stream *s, bool last, const uint8_t *body, size_t n,
			   int64_t deadline)
{
	uint8_t *pkt;
	size_t wire_len = s->gcm ? ccb_aesgcm_sealed_len(s->gcm, n) : n;
	size_t at;

	if (!s->corked)
		ccb_buf_reset(&s->scratch);
	if (s->md_on) {
		/* MD mode (H:reli_sock.cpp:1300-1309, buffers.cpp:300-313): the
		 * header grows to 21 bytes, MD5(key ‖ body) after the length. */
		uint8_t hdr[HDR_LEN + CCB_LEGACY_MAC_LEN];

		hdr[0] = last ? 1 : 0;
		ccb_be32_put(hdr + 1, (uint32_t)n);
		ccb_legacy_mac(s->leg->key, CCB_LEGACY_KEY_LEN, body, n, hdr + HDR_LEN);
		if (!ccb_buf_append(&s->scratch, hdr, sizeof hdr) ||
		    !ccb_buf_append(&s->scratch, body, n))
			return fail(s, CCB_ERR_NOMEM, "packet of %zu bytes", n);
		return emit(s, deadline);
	}
	at = s->scratch.len;
	if (!ccb_buf_reserve(&s->scratch, HDR_LEN + wire_len))
		return fail(s, CCB_ERR_NOMEM, "packet of %zu bytes", wire_len);
	pkt = s->scratch.data + at;
	pkt[0] = last ? 1 : 0;
	ccb_be32_put(pkt + 1, (uint32_t)wire_len);
	if (s->gcm) {
		ccb_err rc = ccb__stream_seal(s, pkt, body, n);

		if (rc)
			return rc;
	} else {
		memcpy(pkt + HDR_LEN, body, n);
		if (!s->frozen)
			ccb__stream_digest_sent(s, pkt, body, n);
	}
	s->scratch.len = at + HDR_LEN + wire_len;
	return emit(s, deadline);
}

/* Send what a cork held back. */
static ccb_err flush(ccb_stream *s)
{
	ccb_err rc;

	if (!s->scratch.len)
		return CCB_OK;
	if (s->broken) {
		ccb_buf_reset(&s->scratch);
		return s->code ? s->code : CCB_ERR_STATE;
	}
	rc = write_all(s, s->scratch.data, s->scratch.len, op_deadline(s));
	ccb_buf_reset(&s->scratch);
	return rc;
}

void ccb__stream_cork(ccb_stream *s)
{
	s->corked = true;
}

ccb_err ccb__stream_uncork(ccb_stream *s)
{
	ccb_err rc = s->corked ? flush(s) : CCB_OK;

	s->corked = false;
	return rc;
}

ccb_err ccb_stream_end_message(ccb_stream *s)
{
	size_t chunk = CCB_MAX_PACKET_BODY - (s->gcm ? 32 : 0);
	size_t off = 0;
	int64_t deadline;
	ccb_err rc = CCB_OK;

	if (s->broken)
		goto broken;
	deadline = op_deadline(s);
	if (s->legacy_on) {
		/* Every byte of the message through the cipher, which starts
		 * each message afresh (H:reli_sock.cpp:575-577, 643-669). */
		ccb_error e;
		if (ccb_legacy_encrypt(s->leg, s->out.data, s->out.len, &e)) {
			rc = fail(s, e.code, "%s", e.detail);
			goto out;
		}
	}
	while (off < s->out.len) {
		size_t n = s->out.len - off < chunk ? s->out.len - off : chunk;
		rc = send_packet(s, off + n == s->out.len, s->out.data + off, n, deadline);
		if (rc)
			break;
		off += n;
	}
out:
	ccb_buf_reset(&s->out);
	ccb__stream_legacy_restart(s);
	return rc;
broken:
	ccb_buf_reset(&s->out);
	return s->code ? s->code : CCB_ERR_STATE;
}

/* One packet header (cedar-stream.md §2), with the MD5 that follows it in
 * MD mode; the receiver checks of H:reli_sock.cpp:831-931. */
static ccb_err read_header(ccb_stream *s, int64_t deadline, uint8_t hdr[HDR_LEN],
			   uint8_t mac[CCB_LEGACY_MAC_LEN], int8_t *end, uint32_t *len)
{
	ccb_err rc;

	rc = read_exact(s, hdr, HDR_LEN, deadline, "reading a message");
	if (rc)
		return rc;
	if (s->md_on && (rc = read_exact(s, mac, CCB_LEGACY_MAC_LEN, deadline,
					  "reading a message")))
		return rc;
	*end = (int8_t)hdr[0];
	*len = ccb_be32_get(hdr + 1);
	if (*end < 0 || *end > 10)
		return fail(s, CCB_ERR_PROTOCOL, "bad packet end flag %d", *end);
	if (*len == 0 || *len > CCB_MAX_PACKET_BODY)
		return fail(s, CCB_ERR_PROTOCOL, "bad packet length %u (allowed 1..%d)", *len,
			    CCB_MAX_PACKET_BODY);
	return CCB_OK;
}

/* An AES-GCM packet body: read into scratch, opened onto the end of `in`. */
static ccb_err read_sealed_body(ccb_stream *s, int64_t deadline, const uint8_t hdr[HDR_LEN],
				uint32_t len)
{
	size_t plen;
	ccb_err rc;

	if (s->in.len + len > s->max_message + 32)
		return fail(s, CCB_ERR_TOO_LARGE, "message exceeds %zu bytes", s->max_message);
	ccb_buf_reset(&s->scratch);
	if (!ccb_buf_reserve(&s->scratch, len) || !ccb_buf_reserve(&s->in, len))
		return fail(s, CCB_ERR_NOMEM, "packet of %u bytes", len);
	rc = read_exact(s, s->scratch.data, len, deadline, "reading a message");
	if (rc)
		return rc;
	if ((rc = ccb__stream_open(s, hdr, s->scratch.data, len, s->in.data + s->in.len, &plen)))
		return rc;
	s->in.len += plen;
	if (s->in.len > s->max_message)
		return fail(s, CCB_ERR_TOO_LARGE, "message exceeds %zu bytes", s->max_message);
	return CCB_OK;
}

/* A plaintext packet body onto the end of `in`: its MD5 checked in MD mode,
 * otherwise digested for the handshake until the digests freeze. */
static ccb_err read_plain_body(ccb_stream *s, int64_t deadline, const uint8_t hdr[HDR_LEN],
			       const uint8_t mac[CCB_LEGACY_MAC_LEN], uint32_t len)
{
	ccb_err rc;

	if (s->in.len + len > s->max_message)
		return fail(s, CCB_ERR_TOO_LARGE, "message of more than %zu bytes (limit %zu)",
			    s->in.len + len, s->max_message);
	if (!ccb_buf_reserve(&s->in, len))
		return fail(s, CCB_ERR_NOMEM, "packet of %u bytes", len);
	rc = read_exact(s, s->in.data + s->in.len, len, deadline, "reading a message");
	if (rc)
		return rc;
	if (s->md_on) {
		/* H:reli_sock.cpp:1074-1081, buffers.cpp:315-323. */
		uint8_t want[CCB_LEGACY_MAC_LEN];
		ccb_legacy_mac(s->leg->key, CCB_LEGACY_KEY_LEN, s->in.data + s->in.len, len, want);
		if (CRYPTO_memcmp(want, mac, CCB_LEGACY_MAC_LEN))
			return fail(s, CCB_ERR_CRYPTO,
				    "packet failed its MD5 integrity check (legacy "
				    "integrity, wrong session key or altered data)");
	} else if (!s->frozen && !s->legacy_on) {
		ccb__stream_digest_received(s, hdr, s->in.data + s->in.len, len);
	}
	s->in.len += len;
	return CCB_OK;
}

/* The whole message is in `in`: decipher it in crypto mode and load the
 * cursor on it. */
static ccb_err load_message(ccb_stream *s)
{
	ccb_error e;

	if (s->legacy_on) {
		/* Bytes are deciphered as they leave the packet buffer; the
		 * cipher restarted at the last end of message, so deciphering
		 * the whole message now is the same (H:reli_sock.cpp:714-746). */
		ccb__stream_legacy_restart(s);
		if (ccb_legacy_decrypt(s->leg, s->in.data, s->in.len, &e))
			return fail(s, e.code, "%s", e.detail);
	}
	s->cur = (ccb_cursor){.data = s->in.data, .len = s->in.len,
			      .crypto = s->gcm || s->legacy_on};
	if (s->leg && !s->legacy_on) {
		s->cur.secret = ccb__stream_decipher_secret;
		s->cur.secret_ctx = s;
	}
	s->loaded = true;
	return CCB_OK;
}

static ccb_err read_message(ccb_stream *s)
{
	int64_t deadline;
	ccb_err rc;

	/* What a cork held back goes out before we wait for the answer. */
	if (s->corked && (rc = flush(s)))
		return rc;
	deadline = op_deadline(s);
	ccb_buf_reset(&s->in);
	for (;;) {
		uint8_t hdr[HDR_LEN];
		uint8_t mac[CCB_LEGACY_MAC_LEN];
		int8_t end;
		uint32_t len;

		if ((rc = read_header(s, deadline, hdr, mac, &end, &len)))
			return rc;
		if (s->gcm)
			rc = read_sealed_body(s, deadline, hdr, len);
		else
			rc = read_plain_body(s, deadline, hdr, mac, len);
		if (rc)
			return rc;
		if (end != 0)
			break;
	}
	return load_message(s);
}

ccb_cursor *ccb__stream_in(ccb_stream *s)
{
	if (s->broken) {
		if (!s->code)
			fail(s, CCB_ERR_STATE, "stream is broken");
		return NULL;
	}
	if (!s->loaded && read_message(s))
		return NULL;
	return &s->cur;
}

ccb_buf *ccb__stream_out(ccb_stream *s)
{
	return &s->out;
}

ccb_err ccb_stream_end_of_message(ccb_stream *s)
{
	size_t left;

	if (!s->loaded)
		return s->broken ? (s->code ? s->code : CCB_ERR_STATE) : CCB_OK;
	left = ccb_cursor_left(&s->cur);
	s->loaded = false;
	ccb_buf_reset(&s->in);
	ccb__stream_legacy_restart(s);
	if (left)
		return fail(s, CCB_ERR_PROTOCOL, "%zu bytes of the message left unread", left);
	return CCB_OK;
}

void ccb__stream_trim(ccb_stream *s)
{
	if (s->out.len || s->loaded || s->scratch.len)
		return;
	ccb_buf_free(&s->out);
	ccb_buf_free(&s->in);
	ccb_buf_free(&s->scratch);
}

size_t ccb_stream_unread(const ccb_stream *s)
{
	return s->loaded ? ccb_cursor_left(&s->cur) : 0;
}

/* ---- primitives --------------------------------------------------------- */

#define PUT(expr)                                                              \
	do {                                                                   \
		if (s->broken)                                                 \
			return s->code ? s->code : CCB_ERR_STATE;      \
		if (!(expr))                                                   \
			return fail(s, CCB_ERR_NOMEM, "growing outbound message"); \
		return CCB_OK;                                                 \
	} while (0)

ccb_err ccb_stream_put_int(ccb_stream *s, int64_t v) { PUT(ccb_enc_int(&s->out, v)); }
ccb_err ccb_stream_put_uint(ccb_stream *s, uint64_t v) { PUT(ccb_enc_uint(&s->out, v)); }
ccb_err ccb_stream_put_char(ccb_stream *s, uint8_t v) { PUT(ccb_enc_char(&s->out, v)); }
ccb_err ccb_stream_put_double(ccb_stream *s, double v) { PUT(ccb_enc_double(&s->out, v)); }
ccb_err ccb_stream_put_bytes(ccb_stream *s, const void *p, size_t n)
{
	PUT(ccb_enc_bytes(&s->out, p, n));
}
ccb_err ccb_stream_put_null_string(ccb_stream *s)
{
	PUT(ccb_enc_null_string(&s->out, ccb_stream_crypto_on(s)));
}

ccb_err ccb_stream_put_string(ccb_stream *s, const char *str)
{
	if (str && (uint8_t)str[0] == CCB_NULL_STRING_MARKER)
		return fail(s, CCB_ERR_INVALID_ARG,
			    "a string starting with byte 0xAD cannot be sent (NULL marker)");
	PUT(ccb_enc_string(&s->out, ccb_stream_crypto_on(s), str));
}


#define GET(call)                                                              \
	do {                                                                   \
		ccb_cursor *c = ccb__stream_in(s);                             \
		ccb_error e;                                                   \
		if (!c)                                                        \
			return s->code;                                    \
		if (call)                                                      \
			return ccb__stream_fail(s, &e);                        \
		return CCB_OK;                                                 \
	} while (0)

ccb_err ccb_stream_get_int(ccb_stream *s, int64_t *v) { GET(ccb_dec_int(c, v, &e)); }
ccb_err ccb_stream_get_char(ccb_stream *s, uint8_t *v) { GET(ccb_dec_char(c, v, &e)); }
ccb_err ccb_stream_get_double(ccb_stream *s, double *v) { GET(ccb_dec_double(c, v, &e)); }
ccb_err ccb_stream_get_string(ccb_stream *s, char **out)
{
	*out = NULL;
	GET(ccb_dec_string(c, out, &e));
}
ccb_err ccb_stream_get_bytes(ccb_stream *s, void *out, size_t n)
{
	GET(ccb_dec_bytes(c, out, n, &e));
}

/* ---- byte-stream mode ------------------------------------------------- */

/* Copy the stream's own detail into the caller's error. */
static ccb_err report(const ccb_stream *s, ccb_err rc, ccb_error *err)
{
	if (rc && err)
		*err = s->code ? *ccb_stream_error(s) : (ccb_error){.code = rc};
	return rc;
}

ccb_err ccb_stream_write(ccb_stream *s, const void *buf, size_t n, ccb_error *err)
{
	const uint8_t *p = buf;
	ccb_err rc = CCB_OK;

	if (!s || (!buf && n))
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "stream write: NULL argument");
	if (s->out.len)
		return ccb_error_set(err, CCB_ERR_STATE,
				     "%s: stream write: a CEDAR message is being built", s->peer);
	/* One message per chunk: the reader's message cap (1 MiB by default)
	 * is never reached, and a legacy cipher restarts at each end. */
	while (n && rc == CCB_OK) {
		size_t take = n < CCB_STREAM_WRITE_CHUNK ? n : CCB_STREAM_WRITE_CHUNK;
		rc = ccb_stream_put_bytes(s, p, take);
		if (rc == CCB_OK)
			rc = ccb_stream_end_message(s);
		p += take;
		n -= take;
	}
	return report(s, rc, err);
}

ccb_err ccb_stream_read(ccb_stream *s, void *buf, size_t n, size_t *got, ccb_error *err)
{
	ccb_cursor *c;
	size_t left, take;
	ccb_error e;

	if (got)
		*got = 0;
	if (!s || !buf || !got || n == 0)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "stream read: NULL argument or n = 0");
	for (;;) {
		if (!(c = ccb__stream_in(s)))
			return report(s, s->code ? s->code : CCB_ERR_STATE, err);
		left = ccb_cursor_left(c);
		if (left)
			break;
		/* An empty message carries no bytes: go on to the next one. */
		ccb_stream_end_of_message(s);
	}
	take = left < n ? left : n;
	if (ccb_dec_bytes(c, buf, take, &e))
		return report(s, ccb__stream_fail(s, &e), err);
	*got = take;
	if (take == left)
		ccb_stream_end_of_message(s);
	return CCB_OK;
}

ccb_err ccb_stream_get_int32(ccb_stream *s, int32_t *v)
{
	int64_t w;
	ccb_err rc = ccb_stream_get_int(s, &w);

	if (rc)
		return rc;
	if (w < INT32_MIN || w > INT32_MAX)
		return fail(s, CCB_ERR_PROTOCOL, "integer %lld does not fit in 32 bits",
			    (long long)w);
	*v = (int32_t)w;
	return CCB_OK;
}
