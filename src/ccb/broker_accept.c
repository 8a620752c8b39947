/*
 * The broker's front door: its listen sockets and public address, accepting
 * connections, and refusing them at the connection limit (with an admin
 * reserve for status queries) or when out of file descriptors (EMFILE:
 * accept with a spare descriptor and close at once).
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ccb/commands.h"
#include "broker_internal.h"
#include "util/util.h"

/* At most one refusal warning per this many ms (with a count). */
#define BK_REFUSE_LOG_MS 10000
#define TXT_AT_LIMIT "broker at its connection limit"

/* ---- listen sockets and the public address ------------------------------------- */

static void fmt_peer(const struct sockaddr_storage *ss, char *ip, size_t iplen, char *peer,
		     size_t plen)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
		port = ntohs(a->sin_port);
		snprintf(peer, plen, "<%s:%u>", host, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
		port = ntohs(a->sin6_port);
		snprintf(peer, plen, "<[%s]:%u>", host, port);
	} else {
		snprintf(peer, plen, "<unknown>");
	}
	snprintf(ip, iplen, "%s", host);
}

static ccb_err listen_one(ccb_broker *b, const char *text, ccb_error *err)
{
	ccb_sinful *sf = NULL;
	struct addrinfo_like {
		struct sockaddr_storage ss;
		socklen_t len;
	} a = {0};
	const char *host;
	int port, fd, one = 1;
	ccb_err rc;

	if (b->nl >= BK_MAX_LISTEN)
		return ccb_error_set(err, CCB_ERR_CONFIG, "more than %d listen addresses", BK_MAX_LISTEN);
	if ((rc = ccb_sinful_parse_address(text, &sf, err)))
		return ccb_error_prefix(err, "listen address \"%s\"", text), CCB_ERR_CONFIG;
	host = ccb_sinful_host(sf);
	port = ccb_sinful_port(sf) < 0 ? 9618 : ccb_sinful_port(sf);
	{
		struct sockaddr_in *v4 = (struct sockaddr_in *)&a.ss;
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a.ss;
		if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
			v4->sin_family = AF_INET;
			v4->sin_port = htons((uint16_t)port);
			a.len = sizeof *v4;
		} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
			v6->sin6_family = AF_INET6;
			v6->sin6_port = htons((uint16_t)port);
			a.len = sizeof *v6;
		} else {
			ccb_sinful_free(sf);
			return ccb_error_set(err, CCB_ERR_CONFIG,
					     "listen address \"%s\": host must be an IP literal", text);
		}
	}
	ccb_sinful_free(sf);
	fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ccb_error_set(err, CCB_ERR_IO, "listen %s: socket: %s", text, ccb__strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	/* Accepted sockets inherit it (Linux): no setsockopt per connection. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (a.ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&a.ss, a.len) != 0 || listen(fd, 1024) != 0) {
		rc = ccb_error_set(err, CCB_ERR_IO, "listen %s: %s", text, ccb__strerror(errno));
		close(fd);
		return rc;
	}
	a.len = sizeof a.ss;
	getsockname(fd, (struct sockaddr *)&a.ss, &a.len);
	b->lport[b->nl] = a.ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&a.ss)->sin_port)
						    : ntohs(((struct sockaddr_in6 *)&a.ss)->sin6_port);
	b->lfd[b->nl++] = fd;
	return CCB_OK;
}

static ccb_err make_public(ccb_broker *b, ccb_error *err)
{
	ccb_sinful *sf = NULL;
	ccb_err rc;

	if (b->public_text) {
		if ((rc = ccb_sinful_parse_address(b->public_text, &sf, err)))
			return ccb_error_prefix(err, "public address"), CCB_ERR_CONFIG;
	} else {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		char ip[64], peer[96];
		getsockname(b->lfd[0], (struct sockaddr *)&ss, &len);
		fmt_peer(&ss, ip, sizeof ip, peer, sizeof peer);
		if (!strcmp(ip, "0.0.0.0"))
			snprintf(ip, sizeof ip, "127.0.0.1");
		else if (!strcmp(ip, "::"))
			snprintf(ip, sizeof ip, "::1");
		if ((rc = ccb_sinful_new(ip, b->lport[0], &sf, err)))
			return rc;
	}
	if (ccb_sinful_port(sf) <= 0)
		ccb_sinful_set_port(sf, b->lport[0], NULL);
	/* The collector's contacts carry its whole daemon sinful, addrs
	 * included ("127.0.0.1:19618?addrs=127.0.0.1-19618&alias=vm#1",
	 * test/vectors/S1 register reply; srv:361-375 builds it from
	 * publicNetworkIpAddr()). A host name has no CCB-safe form: no addrs. */
	if (!ccb_sinful_param(sf, CCB_SINFUL_ADDRS)) {
		char *safe = NULL;
		rc = CCB_OK;
		if (ccb_addr_ccb_safe_format(ccb_sinful_host(sf), ccb_sinful_port(sf), &safe, NULL) ==
		    CCB_OK)
			rc = ccb_sinful_set_param(sf, CCB_SINFUL_ADDRS, safe, err);
		free(safe);
		if (rc) {
			ccb_sinful_free(sf);
			return rc;
		}
	}
	/* Contacts leave out PrivAddr and CCBID (srv:361-375). */
	ccb_sinful_set_param(sf, "PrivAddr", NULL, NULL);
	ccb_sinful_set_param(sf, "CCBID", NULL, NULL);
	ccb_sinful_format(sf, &b->pub_sinful, NULL);
	ccb_sinful_broker_address(sf, &b->pub_bare, NULL);
	ccb_sinful_free(sf);
	if (!b->pub_sinful || !b->pub_bare)
		return ccb_error_set(err, CCB_ERR_NOMEM, "public address");
	/* Contacts are "<pub_bare>#<ccbid>": checked once here, so that each
	 * registration's is only formatted (bk_contact). */
	{
		char *probe = NULL;
		size_t n = strlen(b->pub_bare);
		b->pub_contact_ok = ccb_contact_make(b->pub_bare, 1, &probe, NULL) == CCB_OK &&
				    strlen(probe) == n + 2 && !memcmp(probe, b->pub_bare, n) &&
				    !strcmp(probe + n, "#1");
		free(probe);
	}
	return CCB_OK;
}

/* Open every listen socket of b->listen_text and work out the public
 * address (pub_sinful, pub_bare). */
ccb_err bk_listen_all(ccb_broker *b, ccb_error *err)
{
	char **addrs = NULL;
	size_t naddrs = 0;
	ccb_err rc;

	if ((rc = ccb_broker_list_split(b->listen_text, &addrs, &naddrs, err)))
		goto out;
	if (naddrs == 0) {
		rc = ccb_error_set(err, CCB_ERR_CONFIG, "no listen address");
		goto out;
	}
	for (size_t i = 0; i < naddrs; i++)
		if ((rc = listen_one(b, addrs[i], err)))
			goto out;
	rc = make_public(b, err);
out:
	ccb_strv_free(addrs);
	return rc;
}

/* ---- accepting ------------------------------------------------------------------ */

/*
 * The handshake workers accept (b->lock held): a new connection's first
 * message is usually there by then, so accept, handshake and command run on
 * one thread, without waking the loop or another worker. Each listen fd is
 * in every worker's set, EPOLLEXCLUSIVE so that a connection wakes one of
 * them. Exclusive entries cannot be modified: pausing removes them.
 */
void bk_set_accepting(ccb_broker *b, bool on)
{
	if (on == b->accepting)
		return;
	for (unsigned w = 0; w < b->nworkers; w++)
		for (size_t i = 0; i < b->nl; i++) {
			struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE,
						 .data.ptr = b->lconn[i]};
			int epfd = bk_worker_epfd(b, w);
			if (epfd >= 0 && epoll_ctl(epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, b->lfd[i],
						   &ev) != 0)
				CCB_LOG(CCB_LOG_WARNING, "broker: %s listen socket %zu for worker %u: %s",
					on ? "watching" : "unwatching", i, w, ccb__strerror(errno));
		}
	b->accepting = on;
	b->accept_paused = !on;
}

/* A new connection still waiting for its first message goes to the loop,
 * which watches it until then or its deadline. Added after a look, an fd
 * with bytes already queued still reports them (b->lock held). */
void bk_new_to_loop(ccb_broker *b, bk_conn *c)
{
	bk_list_add_tail(&b->new_list, &c->tnode);
	if (!bk_epoll_add(b, c, EPOLLIN | EPOLLRDHUP | EPOLLET))
		bk_conn_close(b, c);
}

bool bk_is_listen(const ccb_broker *b, const bk_conn *c)
{
	for (size_t i = 0; i < b->nl; i++)
		if (b->lconn[i] == c)
			return true;
	return false;
}

/* Count a refused connection and warn about refusals at most once per
 * BK_REFUSE_LOG_MS, with how many there were. */
static void note_refusal(ccb_broker *b, const char *why)
{
	int64_t now = ccb_now_ms();

	b->st.connections_refused++;
	b->refuse_unlogged++;
	if (now >= b->refuse_log_ms) {
		CCB_LOG(CCB_LOG_WARNING, "broker: %s; refused %" PRIu64 " connection(s) since the last warning",
			why, b->refuse_unlogged);
		b->refuse_unlogged = 0;
		b->refuse_log_ms = now + BK_REFUSE_LOG_MS;
	}
}

/* Out of descriptors: accept with the spare one and close at once, until
 * the backlog is empty (or 1024 at a time), so that peers are refused at
 * full speed and every connection held stays. False when the spare cannot
 * be had back (accepting then pauses briefly). */
static bool refuse_without_fds(ccb_broker *b, int lfd)
{
	/* Bounded per call so that a flood does not starve the rest of the
	 * loop; the listen socket stays readable and brings us back. */
	for (int k = 0; k < 1024; k++) {
		int fd;

		if (b->spare_fd < 0)
			b->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (b->spare_fd < 0)
			return false;
		close(b->spare_fd);
		b->spare_fd = -1;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			b->st.refused_no_fd++;
			note_refusal(b, "out of file descriptors");
		}
		b->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			/* EAGAIN: backlog empty. EMFILE again: another thread
			 * took the descriptor; pause. */
			return errno == EAGAIN || errno == EWOULDBLOCK;
		}
	}
	return true;
}

/* Accept up to max connections from lfd (b->lock held). Those whose first
 * message is already here are queued for a worker; up to pend_cap of the
 * others go to pend[] (*npend), the rest to the loop. */
void bk_accept(ccb_broker *b, int lfd, int max, bk_conn **pend, size_t *npend, size_t pend_cap)
{
	for (int k = 0; k < max; k++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		bk_conn *c;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				if (!refuse_without_fds(b, lfd)) {
					/* The loop resumes it: wake it to shorten its sleep. */
					bk_set_accepting(b, false);
					b->accept_resume_ms = ccb_now_ms() + 100;
					ccb__wakeup_signal(&b->done_signal);
				}
			}
			return; /* EAGAIN or a transient error */
		}
		b->st.connections_accepted++;
		if (b->nconns >= (size_t)b->max_conns + b->admin_reserve) {
			close(fd);
			b->st.refused_at_limit++;
			note_refusal(b, TXT_AT_LIMIT);
			continue;
		}
		c = bk_conn_new(fd, BK_NEW);
		if (c && !(c->hs = calloc(1, sizeof *c->hs))) {
			free(c);
			c = NULL;
		}
		if (c)
			c->hs->conn = c;
		if (!c) {
			close(fd);
			continue;
		}
		/* Over the limit: kept only if its first message is a status or
		 * admin command (bk_reserve_admit). */
		c->reserve = b->nconns >= b->max_conns;
		fmt_peer(&ss, c->hs->peer_ip, sizeof c->hs->peer_ip, c->hs->peer, sizeof c->hs->peer);
		c->deadline_ms = ccb_now_ms() + b->hs_timeout_ms;
		b->nconns++;
		/* Handed to a worker only once its first message is here. Under
		 * load it usually is by now. */
		if (!bk_new_readable(b, c))
			continue;
		if (*npend < pend_cap)
			pend[(*npend)++] = c;
		else
			bk_new_to_loop(b, c);
	}
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * The command a first message asks for, -1 if it cannot be told: a bare
 * command int, or DC_AUTHENTICATE (60010) followed by the client's policy
 * ad whose `Command = N` names it (security-handshake.md §2; the request is
 * never encrypted). Reads the peeked bytes; only the first packet counts.
 */
static long first_command(const uint8_t *m, size_t n)
{
	size_t len, off;
	uint64_t cmd, count;

	if (n < 5 + 8)
		return -1;
	len = (size_t)m[1] << 24 | (size_t)m[2] << 16 | (size_t)m[3] << 8 | m[4];
	if (len > n - 5)
		len = n - 5;
	m += 5;
	cmd = get_be64(m);
	if (cmd != CCB_CMD_DC_AUTHENTICATE)
		return cmd > 0x7fffffff ? -1 : (long)cmd;
	if (len < 16)
		return -1;
	count = get_be64(m + 8);
	off = 16;
	for (uint64_t i = 0; i < count && off < len; i++) {
		const char *a = (const char *)m + off;
		const uint8_t *z = memchr(m + off, 0, len - off);
		if (!z)
			return -1;
		if (!strncasecmp(a, "Command", 7)) {
			const char *p = a + 7;
			char *end;
			long v;
			while (*p == ' ')
				p++;
			if (*p == '=') {
				v = strtol(p + 1, &end, 10);
				if (end != p + 1 && (*end == '\0' || *end == ' '))
					return v;
			}
		}
		off = (size_t)(z - m) + 1;
	}
	return -1;
}

/* What may use the admin reserve: the status query and the no-ops. */
static bool admin_command(long cmd)
{
	return cmd == CCB_CMD_LIBCCB_STATUS || cmd == CCB_CMD_DC_NOP || cmd == 60020 ||
	       cmd == 60021 || cmd == 60023 || cmd == 60026;
}

/* A connection accepted over the limit (c->reserve) whose first message is
 * peeked whole: kept only for a status or admin command. */
bool bk_reserve_admit(ccb_broker *b, bk_conn *c)
{
	long cmd = first_command(b->peek, b->peek_len);

	if (!admin_command(cmd)) {
		CCB_LOG(CCB_LOG_DEBUG, "broker: %s asked for command %ld over the limit; closed",
			bk_peer(c), cmd);
		b->st.refused_at_limit++;
		note_refusal(b, TXT_AT_LIMIT);
		return false;
	}
	b->st.admin_over_limit++;
	return true;
}
