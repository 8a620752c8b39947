/*
 * The listener's own command socket and its advertised address.
 *
 * A CCB-registered HTCondor daemon still has a real command port: its
 * sinful is that port's address plus CCBID and PrivNet, so that a client on
 * the same private network connects straight to it and everybody else goes
 * through the broker (sinful.md §4.1; H:src/condor_daemon_core.V6/
 * daemon_core.cpp 1262-1380). A port-0 address is refused by HTCondor's
 * clients (Daemon::checkAddr, H:src/condor_daemon_client/daemon.cpp
 * 2245-2284), so the port advertised here is always a bound one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listener_sock.h"
#include "util/util.h"

#define FALLBACK_IP "127.0.0.1"

/* The local address the kernel would use toward `host`: a connected UDP
 * socket (connect() on UDP sends nothing) read back with getsockname(). */
static bool local_ip_toward(const char *host, int family, char *ip, size_t iplen)
{
	struct addrinfo hints = {.ai_family = family, .ai_socktype = SOCK_DGRAM};
	struct addrinfo *res = NULL, *ai;
	bool ok = false;

	if (!host || getaddrinfo(host, "9618", &hints, &res))
		return false;
	for (ai = res; ai && !ok; ai = ai->ai_next) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
			const void *a = ss.ss_family == AF_INET
						? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
						: (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
			ok = inet_ntop(ss.ss_family, a, ip, (socklen_t)iplen) != NULL;
		}
		close(fd);
	}
	freeaddrinfo(res);
	return ok;
}

static bool is_wildcard(const char *ip)
{
	return !strcmp(ip, "0.0.0.0") || !strcmp(ip, "::");
}

ccb_err ccb__listener_open_command(const char *bind_text, const char *toward_host,
				   const char *alias, int *fd, ccb_sinful **out, ccb_error *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
	struct addrinfo *res = NULL;
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char ip[CCB_ADDR_IP_SIZE], adv[CCB_ADDR_IP_SIZE], portstr[16], *safe = NULL;
	ccb_sinful *s = NULL;
	int port = 0, one = 1, sfd, family = AF_UNSPEC;
	ccb_err rc;

	*fd = -1;
	*out = NULL;
	if (bind_text) {
		if (ccb_sinful_parse_address(bind_text, &s, err)) {
			ccb_error_prefix(err, "command address \"%s\": ", bind_text);
			if (err)
				err->code = CCB_ERR_INVALID_ARG;
			return CCB_ERR_INVALID_ARG;
		}
		port = ccb_sinful_port(s) > 0 ? ccb_sinful_port(s) : 0;
		snprintf(ip, sizeof ip, "%s", ccb_sinful_host(s));
		ccb_sinful_free(s);
		s = NULL;
		if (getaddrinfo(ip, "0", &hints, &res))
			return ccb_error_set(err, CCB_ERR_INVALID_ARG,
					     "command address \"%s\": host must be an IP literal",
					     bind_text);
		family = res->ai_family;
		freeaddrinfo(res);
		res = NULL;
	} else {
		ip[0] = '\0';
	}
	/* Bind `ip` (a wildcard included); advertise it, or for a wildcard or
	 * no address the local address that routes toward the broker (HTCondor
	 * advertises the "best" local address of a socket bound to any). */
	if (!ip[0] || is_wildcard(ip)) {
		if (!local_ip_toward(toward_host, family, adv, sizeof adv)) {
			CCB_LOG(CCB_LOG_WARNING,
				"ccb listener: no route toward %s to pick the address to advertise; "
				"using %s (set the command address)",
				toward_host ? toward_host : "the broker", FALLBACK_IP);
			snprintf(adv, sizeof adv, "%s", FALLBACK_IP);
		}
		if (!ip[0])
			snprintf(ip, sizeof ip, "%s", adv);
	} else {
		snprintf(adv, sizeof adv, "%s", ip);
	}
	snprintf(portstr, sizeof portstr, "%d", port);
	if (getaddrinfo(ip, portstr, &hints, &res))
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "command address: bad host %s", ip);
	sfd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sfd < 0) {
		freeaddrinfo(res);
		return ccb_error_set(err, CCB_ERR_IO, "command socket: %s", ccb__strerror(errno));
	}
	setsockopt(sfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(sfd, res->ai_addr, res->ai_addrlen) != 0 || listen(sfd, 128) != 0) {
		rc = ccb_error_set(err, CCB_ERR_IO, "command socket on %s port %d: %s", ip, port,
				   ccb__strerror(errno));
		freeaddrinfo(res);
		close(sfd);
		return rc;
	}
	freeaddrinfo(res);
	if (getsockname(sfd, (struct sockaddr *)&ss, &len) != 0) {
		rc = ccb_error_set(err, CCB_ERR_IO, "command socket: getsockname: %s", ccb__strerror(errno));
		close(sfd);
		return rc;
	}
	port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
				       : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	/* <ip:port?addrs=ip-port[&alias=name]&noUDP>: HTCondor's form of a
	 * TCP-only command socket (addrs: daemon_core.cpp addIPToSinfuls;
	 * noUDP without a UDP side: daemon_core.cpp 1283-1292). */
	rc = ccb_sinful_new(adv, port, &s, err);
	if (rc == CCB_OK)
		rc = ccb_addr_ccb_safe_format(adv, port, &safe, err);
	if (rc == CCB_OK)
		rc = ccb_sinful_set_param(s, CCB_SINFUL_ADDRS, safe, err);
	if (rc == CCB_OK && alias)
		rc = ccb_sinful_set_param(s, CCB_SINFUL_ALIAS, alias, err);
	if (rc == CCB_OK)
		rc = ccb_sinful_set_param(s, CCB_SINFUL_NOUDP, "", err);
	free(safe);
	if (rc) {
		ccb_error_prefix(err, "command address: ");
		ccb_sinful_free(s);
		close(sfd);
		return rc;
	}
	*fd = sfd;
	*out = s;
	return CCB_OK;
}

ccb_err ccb__listener_own_address(const char *text, ccb_sinful **out, ccb_error *err)
{
	ccb_sinful *s = NULL;

	*out = NULL;
	if (ccb_sinful_parse_address(text, &s, err)) {
		ccb_error_prefix(err, "own command address \"%s\": ", text);
		if (err && err->code != CCB_ERR_NOMEM)
			err->code = CCB_ERR_INVALID_ARG;
		return err ? err->code : CCB_ERR_INVALID_ARG;
	}
	if (ccb_sinful_port(s) <= 0) {
		ccb_sinful_free(s);
		return ccb_error_set(err, CCB_ERR_INVALID_ARG,
				     "own command address \"%s\": needs a port (HTCondor clients "
				     "refuse port 0)",
				     text);
	}
	*out = s;
	return CCB_OK;
}
