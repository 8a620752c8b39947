/*
 * CCB-safe addresses, the elements of a sinful's "addrs" parameter
 * (sinful.md §5.1, H:src/condor_utils/condor_sockaddr.cpp:443-466, 565-584).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "addr_internal.h"
#include "util/util.h"

/* An IP literal, IPv6 possibly in brackets: returns the family or 0. The
 * bare literal (without brackets) goes to ip[CCB_ADDR_IP_SIZE]. */
static int ip_literal(const char *s, size_t len, char *ip)
{
	unsigned char bin[sizeof(struct in6_addr)];
	bool bracketed = false;

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
		bracketed = true;
	}
	if (len == 0 || len >= CCB_ADDR_IP_SIZE)
		return 0;
	memcpy(ip, s, len);
	ip[len] = '\0';
	if (!bracketed && inet_pton(AF_INET, ip, bin) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, ip, bin) == 1)
		return AF_INET6;
	return 0;
}

/* The port after the last '-': 1-5 digits, at most 65535. C++ strtoul would
 * also take an empty port as 0; we do not, nobody writes one. */
static bool port_digits(const char *s, size_t len, uint16_t *port)
{
	unsigned v = 0;

	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return false;
	*port = (uint16_t)v;
	return true;
}

ccb_err ccb_addr_ccb_safe_parse(const char *text, ccb_hostport *out, ccb_error *err)
{
	char tmp[CCB_ADDR_IP_SIZE + 8];
	const char *dash;
	size_t len, iplen;
	int family;

	if (!text || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "CCB-safe address: NULL argument");
	len = strnlen(text, sizeof tmp);
	if (len >= sizeof tmp)
		return addr__parse_error(err, "CCB-safe address", text, "too long");
	/* condor_sockaddr.cpp:565-584: the port follows the last '-' */
	dash = memrchr(text, '-', len);
	if (!dash)
		return addr__parse_error(err, "CCB-safe address", text,
			"no '-' before the port");
	if (!port_digits(dash + 1, len - (size_t)(dash + 1 - text), &out->port))
		return addr__parse_error(err, "CCB-safe address", text, "bad port");
	iplen = (size_t)(dash - text);
	memcpy(tmp, text, iplen);
	/* ...and every other '-' stands for a ':' of the IP text */
	for (size_t i = 0; i < iplen; i++)
		if (tmp[i] == '-')
			tmp[i] = ':';
	family = ip_literal(tmp, iplen, out->ip);
	if (!family)
		return addr__parse_error(err, "CCB-safe address", text, "not an IP address");
	out->family = family;
	return CCB_OK;
}

ccb_err ccb_addr_ccb_safe_format(const char *ip, int port, char **out, ccb_error *err)
{
	char bare[CCB_ADDR_IP_SIZE];
	char buf[CCB_ADDR_IP_SIZE + 16];
	int family;

	if (!ip || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "CCB-safe address: NULL argument");
	*out = NULL;
	if (port < 0 || port > 65535)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "CCB-safe address: bad port %d", port);
	family = ip_literal(ip, strnlen(ip, CCB_ADDR_IP_SIZE + 2), bare);
	if (!family)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG,
			"CCB-safe address: not an IP literal");
	/* condor_sockaddr.cpp:443-466: IPv6 keeps its brackets, ':' -> '-' */
	if (family == AF_INET6) {
		for (char *p = bare; *p; p++)
			if (*p == ':')
				*p = '-';
		snprintf(buf, sizeof buf, "[%s]-%d", bare, port);
	} else {
		snprintf(buf, sizeof buf, "%s-%d", bare, port);
	}
	*out = ccb_strdup(buf);
	if (!*out)
		return ccb_error_set(err, CCB_ERR_NOMEM, "CCB-safe address");
	return CCB_OK;
}
