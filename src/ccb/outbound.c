/*
 * Outbound proxy, requester side and the broker's checks (ccb-protocol.md
 * §9.1; H:src/ccb/ccb_client.cpp OutboundConnect_blocking,
 * H:src/condor_io/sock.cpp bypassOutboundCCBForTarget,
 * H:src/ccb/ccb_server.cpp HandleProxyConnect / OutboundTargetAllowed).
 */
#include <arpa/inet.h>
#include <fnmatch.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ccb/addr.h"
#include "ccb/attributes.h"
#include "ccb/commands.h"
#include "ccb/sharedport.h"
#include "ccb/stream.h"
#include "ccb/wire.h"
#include "outbound.h"
#include "security/remote_version.h"
#include "util/util.h"

#define BROKER_DEFAULT_PORT 9618

/* ---- requester: CCB_PROXY_CONNECT ------------------------------------------------- */

static void ev(const ccb__outbound_req *q, int attempt, const char *broker, const char *step,
	       ccb_err code, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void ev(const ccb__outbound_req *q, int attempt, const char *broker, const char *step,
	       ccb_err code, const char *fmt, ...)
{
	char detail[512];
	va_list ap;
	ccb_dial_event e;

	if (!q->progress)
		return;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	e = (ccb_dial_event){.attempt = attempt, .broker = broker, .step = step,
			     .elapsed_ms = ccb_now_ms() - q->t0_ms, .code = code, .detail = detail};
	q->progress(&e, q->progress_user);
}

/* Connect to the outbound broker (through its shared port if it has one)
 * and make the stream. *bfd is the socket until the stream owns it (then
 * -1); the caller closes it, after telling on_socket it is gone. */
static ccb_err broker_open(const ccb__outbound_req *q, int attempt, const char *broker,
			   const ccb_sinful *ba, int *bfd, ccb_stream **bs, ccb_error *err)
{
	int port = ccb_sinful_port(ba) > 0 ? ccb_sinful_port(ba) : BROKER_DEFAULT_PORT;
	ccb_err rc;

	ev(q, attempt, broker, "connect", CCB_OK, "connecting to the outbound broker");
	if ((rc = ccb_tcp_connect(ccb_sinful_host(ba), port, q->deadline_ms, "outbound broker", bfd,
				  err)))
		return rc == CCB_ERR_TIMEOUT ? rc : CCB_ERR_NO_BROKER;
	if (q->on_socket)
		q->on_socket(*bfd, q->socket_user);
	if ((rc = ccb_stream_new(*bfd, bs, err)))
		return rc;
	*bfd = -1;
	ccb_stream_set_deadline(*bs, q->deadline_ms);
	ccb_stream_set_timeout(*bs, -1);
	if (ccb_sinful_shared_port_id(ba) &&
	    ccb_sharedport_send_connect(*bs, ccb_sinful_shared_port_id(ba), NULL, q->deadline_ms, err))
		return CCB_ERR_NO_BROKER;
	return CCB_OK;
}

/* The security handshake for CCB_PROXY_CONNECT, then the version gate
 * before sending (ccb_client.cpp OutboundConnect_blocking); the broker's
 * version in *peer. */
static ccb_err broker_authenticate(const ccb__outbound_req *q, int attempt, const char *broker,
				   const ccb_sinful *ba, ccb_stream *bs, unsigned *peer,
				   ccb_error *err)
{
	ccb_sec_client_config sec = {0};
	ccb_sec_info info;
	unsigned need = q->min_version ? q->min_version : CCB_DIAL_DEFAULT_STREAMING_VERSION;
	char *btext;
	ccb_err rc;

	ev(q, attempt, broker, "authenticate", CCB_OK, "security handshake for CCB_PROXY_CONNECT");
	if (q->sec)
		sec = *q->sec;
	if (!sec.ssl_server_host)
		sec.ssl_server_host = ccb_sinful_alias(ba) ? ccb_sinful_alias(ba) : ccb_sinful_host(ba);
	ccb_sinful_format(ba, &btext, NULL);
	memset(&info, 0, sizeof info);
	if (!btext)
		return ccb_error_set(err, CCB_ERR_NOMEM, "out of memory");
	rc = ccb_sec_client_start(bs, &sec, CCB_CMD_CCB_PROXY_CONNECT, 0, btext, &info, err);
	free(btext);
	if (rc) {
		/* authentication, authorization and policy outcomes keep their code */
		if (rc != CCB_ERR_AUTH && rc != CCB_ERR_NOT_AUTHORIZED && rc != CCB_ERR_UNSUPPORTED &&
		    rc != CCB_ERR_TIMEOUT && rc != CCB_ERR_NOMEM)
			rc = CCB_ERR_NO_BROKER;
		ccb_error_prefix(err, "authenticate: ");
		return rc;
	}
	{
		ccb_dial_event e = {.attempt = attempt, .broker = broker, .step = "authenticated",
				    .elapsed_ms = ccb_now_ms() - q->t0_ms, .detail = info.user,
				    .sec = &info};
		if (q->progress)
			q->progress(&e, q->progress_user);
	}
	if (ccb__sec_version_parse(info.peer_version, NULL, NULL, NULL, peer, NULL))
		*peer = 0;
	if (*peer < need)
		return ccb_error_set(err, CCB_ERR_NO_BROKER,
				     "broker version %s is too old to proxy the connection (need %u.%u.%u)",
				     info.peer_version[0] ? info.peer_version : "unknown", need / 10000,
				     need / 100 % 100, need % 100);
	return CCB_OK;
}

/* Send CCB_PROXY_CONNECT for q->target with a fresh connect id and read
 * the broker's answer: CCB_OK when it dialed the target. */
static ccb_err proxy_request(const ccb__outbound_req *q, int attempt, const char *broker,
			     ccb_stream *bs, unsigned peer, ccb_error *err)
{
	ccb_classad *msg = NULL, *reply = NULL;
	char cid[CCB_CONNECT_ID_SIZE] = "";
	ccb_err rc;

	if ((rc = ccb_connect_id_new(cid, err)))
		goto out;
	{
		ccb_ad_field f[] = {CCB_AD_STRING(CCB_ATTR_MY_ADDRESS, q->target),
				    CCB_AD_STRING(CCB_ATTR_CLAIM_ID, cid),
				    CCB_AD_INT(CCB_ATTR_CCB_TTL, q->ttl),
				    CCB_AD_STRING(CCB_ATTR_NAME, q->name ? q->name : "TOOL")};
		if ((rc = ccb_ad_new(f, CCB_AD_NFIELDS(f), &msg, err)))
			goto out;
	}
	if ((rc = ccb_control_ad_write(bs, msg, peer, err))) {
		rc = rc == CCB_ERR_TIMEOUT || rc == CCB_ERR_CANCELLED ? rc : CCB_ERR_NO_BROKER;
		ccb_error_prefix(err, "send CCB_PROXY_CONNECT: ");
		goto out;
	}
	ev(q, attempt, broker, "request", CCB_OK, "CCB_PROXY_CONNECT sent for %s (CCBTTL %d)",
	   q->target, q->ttl);
	if ((rc = ccb_control_ad_read(bs, &reply, err))) {
		rc = rc == CCB_ERR_TIMEOUT || rc == CCB_ERR_CANCELLED ? rc : CCB_ERR_NO_BROKER;
		ccb_error_prefix(err, "CCB_PROXY_CONNECT reply: ");
		goto out;
	}
	if (!ccb_ad_bool_or(reply, CCB_ATTR_RESULT, false))
		rc = ccb_error_set(err, CCB_ERR_NO_BROKER, "refused to dial %s: %s", q->target,
				   ccb_ad_string_or(reply, CCB_ATTR_ERROR_STRING, "(no reason given)"));
out:
	ccb_classad_free(msg);
	ccb_classad_free(reply);
	memset(cid, 0, sizeof cid);
	return rc;
}

/* One broker. On success *fd is the relayed socket. */
static ccb_err one_broker(const ccb__outbound_req *q, int attempt, const char *broker, int *fd,
			  ccb_error *err)
{
	ccb_sinful *ba = NULL;
	ccb_stream *bs = NULL;
	unsigned peer = 0;
	int bfd = -1;
	ccb_err rc;

	*fd = -1;
	if ((rc = ccb_sinful_parse_address(broker, &ba, err))) {
		ccb_error_prefix(err, "outbound broker address: ");
		return rc;
	}
	if ((rc = broker_open(q, attempt, broker, ba, &bfd, &bs, err)) ||
	    (rc = broker_authenticate(q, attempt, broker, ba, bs, &peer, err)) ||
	    (rc = proxy_request(q, attempt, broker, bs, peer, err)))
		goto out;
	/* The very next bytes are the target's: drop the broker session. */
	if ((rc = ccb_stream_detach_fd(bs, fd))) {
		ccb_error_set(err, CCB_ERR_PROTOCOL, "relay: %s", ccb_stream_error(bs)->detail);
		goto out;
	}
	ev(q, attempt, broker, "relay", CCB_OK, "the broker dialed %s; relayed connection ready", q->target);
out:
	if (rc)
		ev(q, attempt, broker, "failed", rc, "%s", err ? err->detail : "");
	if (q->on_socket)
		q->on_socket(-1, q->socket_user);
	if (bfd >= 0)
		close(bfd);
	ccb_stream_free(bs);
	ccb_sinful_free(ba);
	return rc;
}

ccb_err ccb__outbound_connect(const ccb__outbound_req *q, int *fd, ccb_error *err)
{
	char **list = NULL, summary[CCB_ERROR_DETAIL_SIZE] = "";
	size_t n = 0, len = 0;
	ccb_err rc, best = CCB_ERR_NO_BROKER;

	*fd = -1;
	if (!q || !q->brokers || !q->target || !*q->target)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "outbound: need brokers and a target");
	if ((rc = ccb_broker_list_split(q->brokers, &list, &n, err)))
		return rc;
	if (n == 0) {
		ccb_strv_free(list);
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "outbound: empty broker list");
	}
	/* Shuffled, then one at a time (sock.cpp: like CCB_ADDRESS). */
	for (size_t i = n; i > 1; i--) {
		uint32_t r;
		char *t;
		if (ccb_random_bytes(&r, sizeof r, NULL))
			r = (uint32_t)i;
		t = list[i - 1];
		list[i - 1] = list[r % i];
		list[r % i] = t;
	}
	for (size_t i = 0; i < n; i++) {
		ccb_error e = {0};
		if (ccb_dial_cancel_fired(q->cancel)) {
			best = CCB_ERR_CANCELLED;
			snprintf(summary, sizeof summary, "dial cancelled");
			break;
		}
		if (ccb_now_ms() >= q->deadline_ms) {
			best = CCB_ERR_TIMEOUT;
			if (len < sizeof summary)
				len += (size_t)snprintf(summary + len, sizeof summary - len,
							"%stimed out after %lld ms", len ? "; " : "",
							(long long)(ccb_now_ms() - q->t0_ms));
			break;
		}
		rc = one_broker(q, (int)i + 1, list[i], fd, &e);
		if (rc == CCB_OK) {
			if (q->won)
				snprintf(q->won, q->won_size, "%s", list[i]);
			ccb_strv_free(list);
			return CCB_OK;
		}
		if (rc == CCB_ERR_AUTH || rc == CCB_ERR_NOT_AUTHORIZED || rc == CCB_ERR_UNSUPPORTED ||
		    rc == CCB_ERR_NOMEM || rc == CCB_ERR_TIMEOUT)
			best = rc;
		if (len < sizeof summary)
			len += (size_t)snprintf(summary + len, sizeof summary - len, "%soutbound broker %s: %s",
						len ? "; " : "", list[i], e.detail);
	}
	ccb_strv_free(list);
	return ccb_error_set(err, best, "%s", summary);
}

bool ccb__dial_outbound_wanted(const ccb_dial_config *o, const char *address)
{
	if (!o || !o->outbound_ccb_address || !*o->outbound_ccb_address)
		return false;
	return o->outbound_force || !ccb__outbound_bypass(address, o->outbound_ccb_address);
}

ccb_err ccb__dial_outbound(const char *address, const ccb_dial_config *o, int64_t t0,
			   int64_t deadline, ccb_stream **out, ccb_error *err)
{
	static const ccb_sec_client_config dflt;
	char won[256] = "";
	ccb__outbound_req q = {
		.brokers = o->outbound_ccb_address,
		.target = address,
		.ttl = o->outbound_ttl > 0 ? o->outbound_ttl : CCB_OUTBOUND_DEFAULT_TTL,
		.name = o->name,
		.sec = o->broker_sec ? o->broker_sec : &dflt,
		.min_version = o->streaming_min_version,
		.deadline_ms = deadline,
		.t0_ms = t0,
		.cancel = o->cancel,
		.progress = o->progress,
		.progress_user = o->progress_user,
		.won = won,
		.won_size = sizeof won,
	};
	int fd = -1;
	ccb_err rc;

	if ((rc = ccb__outbound_connect(&q, &fd, err))) {
		ccb_error_prefix(err, "dial %s through OUTBOUND_CCB_ADDRESS: ", address);
		return rc;
	}
	if ((rc = ccb_stream_new(fd, out, err)))
		return rc;
	if (o->info) {
		memset(o->info, 0, sizeof *o->info);
		snprintf(o->info->broker, sizeof o->info->broker, "%s", won);
		o->info->proxied = true;
		o->info->outbound = true;
		o->info->attempts = 1;
		o->info->elapsed_ms = ccb_now_ms() - t0;
	}
	return CCB_OK;
}

/* ---- requester: HTCondor's exceptions -------------------------------------------- */

static bool ip_is_local(const char *host)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	int fd;
	bool yes;

	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		sl = sizeof(struct sockaddr_in);
		if ((ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127)
			return true;
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		sl = sizeof(struct sockaddr_in6);
		if (IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr))
			return true;
	} else {
		return false;
	}
	/* A local interface's address can be bound (sock.cpp's addr_is_local). */
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	yes = bind(fd, (struct sockaddr *)&ss, sl) == 0;
	close(fd);
	return yes;
}

static bool is_ip_literal(const char *host)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static bool same_endpoint(const ccb_sinful *a, const ccb_sinful *b)
{
	return ccb_sinful_port(a) == ccb_sinful_port(b) &&
	       !strcasecmp(ccb_sinful_host(a), ccb_sinful_host(b));
}

bool ccb__outbound_bypass(const char *target, const char *brokers)
{
	ccb_sinful *t = NULL;
	const char *host;
	char **list = NULL;
	size_t n = 0;
	bool bypass = false;

	if (!target || ccb_sinful_parse_address(target, &t, NULL))
		return true;
	host = ccb_sinful_host(t);
	if (!host || !*host) {
		bypass = true;
	} else if (is_ip_literal(host)) {
		bypass = ip_is_local(host);
	} else {
		char name[256] = "";
		if (!strcasecmp(host, "localhost") ||
		    (gethostname(name, sizeof name - 1) == 0 && !strcasecmp(host, name)))
			bypass = true;
	}
	if (!bypass && brokers && ccb_broker_list_split(brokers, &list, &n, NULL) == CCB_OK) {
		for (size_t i = 0; i < n && !bypass; i++) {
			ccb_sinful *b = NULL;
			if (ccb_sinful_parse_address(list[i], &b, NULL) == CCB_OK) {
				if (ccb_sinful_port(b) <= 0)
					ccb_sinful_set_port(b, BROKER_DEFAULT_PORT, NULL);
				bypass = same_endpoint(b, t);
			}
			ccb_sinful_free(b);
		}
		ccb_strv_free(list);
	}
	ccb_sinful_free(t);
	return bypass;
}

/* ---- broker: the request and the target check ------------------------------------ */

const char *ccb__outbound_parse(const ccb_classad *ad, int local_ttl, const char **target,
				const char **connect_id, long long *ttl)
{
	int64_t v;

	*target = ccb_ad_string_or(ad, CCB_ATTR_MY_ADDRESS, "");
	*connect_id = ccb_ad_string_or(ad, CCB_ATTR_CLAIM_ID, "");
	if (local_ttl < 1)
		local_ttl = 1;
	*ttl = local_ttl;
	/* An incoming TTL only lowers the local budget (ccb_server.cpp). */
	if (ccb_classad_get_int(ad, CCB_ATTR_CCB_TTL, &v) == CCB_OK && v < *ttl)
		*ttl = v;
	if (!**target || !**connect_id)
		return "missing target address or connect id";
	return NULL;
}

/* "a.b.c.d/len", "v6/len", or a bare address (a host route). */
static bool parse_net(const char *entry, int *fam, unsigned char net[16], int *bits)
{
	char buf[64], *slash;
	long l;

	if (strlen(entry) >= sizeof buf)
		return false;
	snprintf(buf, sizeof buf, "%s", entry);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, net) == 1) {
		*fam = AF_INET;
		*bits = 32;
	} else if (inet_pton(AF_INET6, buf, net) == 1) {
		*fam = AF_INET6;
		*bits = 128;
	} else {
		return false;
	}
	if (slash) {
		char *end;
		if (!*slash)
			return false;
		l = strtol(slash, &end, 10);
		if (*end || l < 0 || l > *bits)
			return false;
		*bits = (int)l;
	}
	return true;
}

static bool net_match(int fam, const unsigned char *net, int bits, int afam, const unsigned char *a)
{
	int full = bits / 8, rest = bits % 8;

	if (fam != afam)
		return false;
	if (memcmp(net, a, (size_t)full))
		return false;
	if (rest) {
		unsigned char mask = (unsigned char)(0xff << (8 - rest));
		if ((net[full] & mask) != (a[full] & mask))
			return false;
	}
	return true;
}

typedef struct {
	int fam;
	unsigned char a[16];
} addr_t;

static bool list_matches(const char *list, const char *host, const addr_t *addrs, size_t naddrs)
{
	const char *p = list;

	for (;;) {
		char entry[256];
		size_t len;
		int fam, bits;
		unsigned char net[16];

		p += strspn(p, ", \t\r\n");
		if (!*p)
			return false;
		len = strcspn(p, ", \t\r\n");
		if (len >= sizeof entry) {
			p += len;
			continue;
		}
		memcpy(entry, p, len);
		entry[len] = '\0';
		p += len;
		if (parse_net(entry, &fam, net, &bits))
			for (size_t i = 0; i < naddrs; i++)
				if (net_match(fam, net, bits, addrs[i].fam, addrs[i].a))
					return true;
		if (fnmatch(entry, host, FNM_CASEFOLD) == 0)
			return true;
	}
}

bool ccb__outbound_target_allowed(const char *target, const char *allow, const char *deny,
				  char *why, size_t why_size)
{
	return ccb__outbound_target_check(target, allow, deny, true, why, why_size);
}

bool ccb__outbound_target_check(const char *target, const char *allow, const char *deny,
				bool may_resolve, char *why, size_t why_size)
{
	ccb_sinful *s = NULL;
	const char *host;
	addr_t addrs[32];
	size_t n = 0;
	bool ok = false;
	char dummy[8];

	if (!why) {
		why = dummy;
		why_size = sizeof dummy;
	}
	if (!target || ccb_sinful_parse_address(target, &s, NULL) || !(host = ccb_sinful_host(s)) ||
	    !*host) {
		snprintf(why, why_size, "not a valid address");
		goto out;
	}
	if (inet_pton(AF_INET, host, addrs[0].a) == 1) {
		addrs[0].fam = AF_INET;
		n = 1;
	} else if (inet_pton(AF_INET6, host, addrs[0].a) == 1) {
		addrs[0].fam = AF_INET6;
		n = 1;
	} else {
		/* A name: every address it resolves to is checked; none refuses. */
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
		if (may_resolve && getaddrinfo(host, NULL, &hints, &res) == 0) {
			for (struct addrinfo *ai = res; ai && n < 32; ai = ai->ai_next) {
				if (ai->ai_family == AF_INET) {
					addrs[n].fam = AF_INET;
					memcpy(addrs[n++].a, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
				} else if (ai->ai_family == AF_INET6) {
					addrs[n].fam = AF_INET6;
					memcpy(addrs[n++].a, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr,
					       16);
				}
			}
			freeaddrinfo(res);
		}
		if (n == 0) {
			snprintf(why, why_size, "host name %s does not resolve", host);
			goto out;
		}
	}
	if (!deny)
		deny = CCB_OUTBOUND_DEFAULT_DENYLIST;
	if (*deny && list_matches(deny, host, addrs, n)) {
		snprintf(why, why_size, "matches CCB_OUTBOUND_TARGET_DENYLIST");
		goto out;
	}
	if (!allow)
		allow = "*";
	ok = list_matches(allow, host, addrs, n);
	if (!ok)
		snprintf(why, why_size, "not in CCB_OUTBOUND_TARGET_ALLOWLIST");
out:
	ccb_sinful_free(s);
	return ok;
}
