/*
 * The representation of a ccb_sinful, shared by sinful.c (building,
 * printing, parameters) and sinful_parse.c (parsing). Not installed.
 *
 * Include as "sinful_internal.h": only src/addr/sinful*.c.
 */
#ifndef CCB_SINFUL_INTERNAL_H
#define CCB_SINFUL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "ccb/addr.h"

/* Longest host name or IP literal we store. DNS names stop at 253. */
#define ADDR_HOST_MAX 255

typedef struct addr__param {
	char *key;
	char *value;
} addr__param;

struct ccb_sinful {
	char *host;             /* IPv6 without brackets */
	int port;               /* -1: none */
	addr__param *params;    /* output order */
	size_t n_params;
	size_t cap_params;
};

/* Store key/value, taking ownership of both (freed on failure); see
 * sinful.c for the order kept. */
bool addr__sinful_put_param(ccb_sinful *s, char *key, char *value, bool sorted);
/* An IPv6 literal without brackets, h[0..len). */
bool addr__ipv6_literal(const char *h, size_t len);
/* A host name or IPv4 literal, h[0..len). */
bool addr__host_name(const char *h, size_t len);
/* Every '+'-separated element of an "addrs" value is CCB-safe. */
ccb_err addr__check_addrs(const char *value, ccb_error *err);

#endif
