/*
 * Sinful strings: building, printing and parameter access (parsing is in
 * sinful_parse.c).
 *
 * Rules from ../shared/spec/sinful.md; "sin:" is
 * H:src/condor_utils/condor_sinful.cpp at 7491a145.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "addr_internal.h"
#include "sinful_internal.h"
#include "util/util.h"

/* ---- small helpers ----------------------------------------------------- */

static bool is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* sinful.md §7: HTCondor's key is "CCBID" (ATTR_CCBID, case-sensitive
 * lookup at sin:270-279); Go writes "ccbid" (G:addresses/sinful.go:94).
 * Both name the same parameter here, stored and written as "CCBID". */
static const char *canon_key(const char *key)
{
	return strcmp(key, "ccbid") == 0 ? CCB_SINFUL_CCBID : key;
}

static ssize_t find_param(const ccb_sinful *s, const char *key)
{
	key = canon_key(key);
	for (size_t i = 0; i < s->n_params; i++)
		if (strcmp(s->params[i].key, key) == 0)
			return (ssize_t)i;
	return -1;
}

static bool params_reserve(ccb_sinful *s)
{
	size_t ncap;
	addr__param *np;

	if (s->n_params < s->cap_params)
		return true;
	ncap = s->cap_params ? s->cap_params * 2 : 8;
	np = realloc(s->params, ncap * sizeof *np);
	if (!np)
		return false;
	s->params = np;
	s->cap_params = ncap;
	return true;
}

/* Store key/value, taking ownership of both (freed on failure). An existing
 * key keeps its place and gets the new value: sin:193-248, "last value
 * wins". A new key goes last (parsing: keep input order) or before the
 * first greater key (setters: HTCondor's std::map order, sinful.md §3). */
bool addr__sinful_put_param(ccb_sinful *s, char *key, char *value, bool sorted)
{
	ssize_t at = find_param(s, key);
	size_t pos;

	if (at >= 0) {
		free(s->params[at].value);
		s->params[at].value = value;
		free(key);
		return true;
	}
	if (!params_reserve(s)) {
		free(key);
		free(value);
		return false;
	}
	pos = s->n_params;
	if (sorted) {
		for (pos = 0; pos < s->n_params; pos++)
			if (strcmp(s->params[pos].key, key) > 0)
				break;
		memmove(s->params + pos + 1, s->params + pos,
			(s->n_params - pos) * sizeof *s->params);
	}
	s->params[pos].key = key;
	s->params[pos].value = value;
	s->n_params++;
	return true;
}

static void remove_param(ccb_sinful *s, size_t i)
{
	free(s->params[i].key);
	free(s->params[i].value);
	memmove(s->params + i, s->params + i + 1, (s->n_params - i - 1) * sizeof *s->params);
	s->n_params--;
}

/* ---- hosts --------------------------------------------------------------- */

bool addr__ipv6_literal(const char *h, size_t len)
{
	char tmp[CCB_ADDR_IP_SIZE];
	unsigned char bin[sizeof(struct in6_addr)];

	if (len == 0 || len >= sizeof tmp)
		return false;
	memcpy(tmp, h, len);
	tmp[len] = '\0';
	return inet_pton(AF_INET6, tmp, bin) == 1;
}

/* A host name or IPv4 literal. HTCondor's split_sin (sin:34-119) takes any
 * run of characters up to ':', '?' or '>'; we only accept what DNS names
 * and IP literals use, so a host can never smuggle '#', white space or
 * '<' into a contact or contact list built from it. */
bool addr__host_name(const char *h, size_t len)
{
	if (len == 0 || len > ADDR_HOST_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)h[i];

		if (!is_alnum(c) && c != '.' && c != '-' && c != '_')
			return false;
	}
	return true;
}

/* Host as given to the setters: "[v6]", "v6" or a name. Returns the
 * stored form (malloc'd) or NULL with *bad set when invalid. */
static char *host_from_arg(const char *host, bool *bad)
{
	size_t len = strnlen(host, ADDR_HOST_MAX + 3);

	*bad = false;
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		if (addr__ipv6_literal(host + 1, len - 2))
			return ccb_strndup(host + 1, len - 2);
	} else if (memchr(host, ':', len)) {
		if (addr__ipv6_literal(host, len))
			return ccb_strndup(host, len);
	} else if (addr__host_name(host, len)) {
		return ccb_strndup(host, len);
	}
	*bad = true;
	return NULL;
}

/* ---- the "addrs" parameter ---------------------------------------------- */

/* sin:672-686: every '+'-separated element of "addrs" must be a CCB-safe
 * address (sinful.md §5.1), or the whole sinful is invalid. Empty elements
 * are skipped, as HTCondor's StringList does. */
ccb_err addr__check_addrs(const char *value, ccb_error *err)
{
	const char *p = value;

	while (*p) {
		size_t n = strcspn(p, "+");

		if (n) {
			char tmp[CCB_ADDR_IP_SIZE + 8];
			ccb_hostport hp;

			if (n >= sizeof tmp)
				return addr__parse_error(err, "addrs element", p, "too long");
			memcpy(tmp, p, n);
			tmp[n] = '\0';
			if (ccb_addr_ccb_safe_parse(tmp, &hp, err) != CCB_OK)
				return CCB_ERR_PARSE;
		}
		p += n;
		if (*p == '+')
			p++;
	}
	return CCB_OK;
}

/* ---- URL encoding (sinful.md §3, sin:121-191) ------------------------------ */

/* sin:162-191: letters, digits and . _ - : # [ ] + go out raw. */
static bool url_safe(unsigned char c)
{
	return is_alnum(c) || strchr("._-:#[]+", c) != NULL;
}

static bool url_encode(ccb_buf *b, const char *s)
{
	static const char digits[] = "0123456789abcdef";

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[3] = { '%', digits[*p >> 4], digits[*p & 15] };

		if (url_safe(*p) ? !ccb_buf_append(b, p, 1) : !ccb_buf_append(b, esc, 3))
			return false;
	}
	return true;
}

ccb_err ccb_sinful_new(const char *host, int port, ccb_sinful **out, ccb_error *err)
{
	ccb_sinful *s;
	ccb_err rc;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "new sinful: NULL out");
	*out = NULL;
	s = calloc(1, sizeof *s);
	if (!s)
		return ccb_error_set(err, CCB_ERR_NOMEM, "new sinful");
	s->port = -1;
	rc = ccb_sinful_set_host(s, host, err);
	if (rc == CCB_OK)
		rc = ccb_sinful_set_port(s, port, err);
	if (rc != CCB_OK) {
		ccb_sinful_free(s);
		return rc;
	}
	*out = s;
	return CCB_OK;
}

ccb_err ccb_sinful_dup(const ccb_sinful *s, ccb_sinful **out, ccb_error *err)
{
	ccb_sinful *d;

	if (!s || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "dup sinful: NULL argument");
	*out = NULL;
	d = calloc(1, sizeof *d);
	if (!d)
		return ccb_error_set(err, CCB_ERR_NOMEM, "dup sinful");
	d->port = s->port;
	d->host = ccb_strdup(s->host);
	if (!d->host)
		goto nomem;
	for (size_t i = 0; i < s->n_params; i++) {
		char *k = ccb_strdup(s->params[i].key);
		char *v = ccb_strdup(s->params[i].value);

		if (!k || !v) {
			free(k);
			free(v);
			goto nomem;
		}
		if (!addr__sinful_put_param(d, k, v, false))
			goto nomem;
	}
	*out = d;
	return CCB_OK;
nomem:
	ccb_sinful_free(d);
	return ccb_error_set(err, CCB_ERR_NOMEM, "dup sinful");
}

void ccb_sinful_free(ccb_sinful *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_params; i++) {
		free(s->params[i].key);
		free(s->params[i].value);
	}
	free(s->params);
	free(s->host);
	free(s);
}

/* ccb-protocol.md §3.1 (srv:361-375): a broker leaves these out of the
 * address it stamps into contacts. */
static bool broker_skips(const char *key)
{
	return strcmp(key, CCB_SINFUL_CCBID) == 0 || strcmp(key, CCB_SINFUL_PRIVADDR) == 0;
}

/* sin:630-651 (regenerateSinfulString). */
static char *format(const ccb_sinful *s, bool brackets, bool broker)
{
	ccb_buf b;
	bool ok = true, first = true;
	char *res;

	if (!s)
		return NULL;
	ccb_buf_init(&b);
	if (brackets)
		ok = ccb_buf_append_str(&b, "<");
	if (strchr(s->host, ':'))
		ok = ok && ccb_buf_appendf(&b, "[%s]", s->host);
	else
		ok = ok && ccb_buf_append_str(&b, s->host);
	if (s->port >= 0)
		ok = ok && ccb_buf_appendf(&b, ":%d", s->port);
	for (size_t i = 0; ok && i < s->n_params; i++) {
		const addr__param *pa = &s->params[i];

		if (broker && broker_skips(pa->key))
			continue;
		ok = ccb_buf_append_str(&b, first ? "?" : "&") && url_encode(&b, pa->key);
		/* sin:250-268: an empty value is written as the bare key */
		if (ok && pa->value[0])
			ok = ccb_buf_append_str(&b, "=") && url_encode(&b, pa->value);
		first = false;
	}
	if (brackets)
		ok = ok && ccb_buf_append_str(&b, ">");
	res = ok ? ccb_buf_steal_str(&b) : NULL;
	if (!res)
		ccb_buf_free(&b);
	return res;
}

char *ccb__sinful_format(const ccb_sinful *s)
{
	return format(s, true, false);
}

char *ccb__sinful_format_bare(const ccb_sinful *s)
{
	return format(s, false, false);
}

char *ccb__sinful_broker_address(const ccb_sinful *s)
{
	return format(s, false, true);
}

static ccb_err format_public(const ccb_sinful *s, bool brackets, bool broker, const char *what,
			     char **out, ccb_error *err)
{
	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "%s: NULL out", what);
	*out = NULL;
	if (!s)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "%s: NULL sinful", what);
	if (!(*out = format(s, brackets, broker)))
		return ccb_error_set(err, CCB_ERR_NOMEM, "%s: out of memory", what);
	return CCB_OK;
}

ccb_err ccb_sinful_format(const ccb_sinful *s, char **out, ccb_error *err)
{
	return format_public(s, true, false, "format sinful", out, err);
}

ccb_err ccb_sinful_format_bare(const ccb_sinful *s, char **out, ccb_error *err)
{
	return format_public(s, false, false, "format bare sinful", out, err);
}

ccb_err ccb_sinful_broker_address(const ccb_sinful *s, char **out, ccb_error *err)
{
	return format_public(s, false, true, "broker address of sinful", out, err);
}

/* ---- public: host, port, parameters ------------------------------------ */

const char *ccb_sinful_host(const ccb_sinful *s)
{
	return s ? s->host : NULL;
}

ccb_err ccb_sinful_set_host(ccb_sinful *s, const char *host, ccb_error *err)
{
	bool bad;
	char *h;

	if (!s || !host)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "set host: NULL argument");
	h = host_from_arg(host, &bad);
	if (bad)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG,
			"set host: not a host name or IP literal");
	if (!h)
		return ccb_error_set(err, CCB_ERR_NOMEM, "set host");
	free(s->host);
	s->host = h;
	return CCB_OK;
}

int ccb_sinful_port(const ccb_sinful *s)
{
	return s ? s->port : -1;
}

ccb_err ccb_sinful_set_port(ccb_sinful *s, int port, ccb_error *err)
{
	if (!s || port < -1 || port > 65535)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "set port: %d is not -1 or 0..65535",
			port);
	s->port = port;
	return CCB_OK;
}

const char *ccb_sinful_param(const ccb_sinful *s, const char *key)
{
	ssize_t i;

	if (!s || !key)
		return NULL;
	i = find_param(s, key);
	return i < 0 ? NULL : s->params[i].value;
}

ccb_err ccb_sinful_set_param(ccb_sinful *s, const char *key, const char *value,
	ccb_error *err)
{
	char *k, *v;

	if (!s || !key || !key[0])
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "set param: NULL or empty key");
	key = canon_key(key);
	if (!value) {
		ssize_t i = find_param(s, key);

		if (i >= 0)
			remove_param(s, (size_t)i);
		return CCB_OK;
	}
	if (strcmp(key, CCB_SINFUL_ADDRS) == 0 && addr__check_addrs(value, err) != CCB_OK) {
		if (err)
			err->code = CCB_ERR_INVALID_ARG;
		return CCB_ERR_INVALID_ARG;
	}
	k = ccb_strdup(key);
	v = ccb_strdup(value);
	if (!k || !v) {
		free(k);
		free(v);
		return ccb_error_set(err, CCB_ERR_NOMEM, "set param");
	}
	if (!addr__sinful_put_param(s, k, v, true))
		return ccb_error_set(err, CCB_ERR_NOMEM, "set param");
	return CCB_OK;
}

size_t ccb_sinful_param_count(const ccb_sinful *s)
{
	return s ? s->n_params : 0;
}

bool ccb_sinful_param_at(const ccb_sinful *s, size_t i, const char **key,
	const char **value)
{
	if (!s || i >= s->n_params)
		return false;
	if (key)
		*key = s->params[i].key;
	if (value)
		*value = s->params[i].value;
	return true;
}

static int param_cmp(const void *a, const void *b)
{
	return strcmp(((const addr__param *)a)->key, ((const addr__param *)b)->key);
}

void ccb_sinful_sort_params(ccb_sinful *s)
{
	if (s && s->n_params > 1)
		qsort(s->params, s->n_params, sizeof *s->params, param_cmp);
}

const char *ccb_sinful_ccbid(const ccb_sinful *s)
{
	return ccb_sinful_param(s, CCB_SINFUL_CCBID);
}

const char *ccb_sinful_shared_port_id(const ccb_sinful *s)
{
	return ccb_sinful_param(s, CCB_SINFUL_SOCK);
}

const char *ccb_sinful_alias(const ccb_sinful *s)
{
	return ccb_sinful_param(s, CCB_SINFUL_ALIAS);
}

const char *ccb_sinful_private_network(const ccb_sinful *s)
{
	return ccb_sinful_param(s, CCB_SINFUL_PRIVNET);
}

const char *ccb_sinful_private_addr(const ccb_sinful *s)
{
	return ccb_sinful_param(s, CCB_SINFUL_PRIVADDR);
}

bool ccb_sinful_no_udp(const ccb_sinful *s)
{
	return ccb_sinful_param(s, CCB_SINFUL_NOUDP) != NULL;
}

/* ---- public: CCB contacts and addrs --------------------------------------- */

ccb_err ccb_sinful_ccb_contacts(const ccb_sinful *s, char ***out, size_t *n,
	ccb_error *err)
{
	const char *v;

	if (!s)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "CCB contacts: NULL sinful");
	v = ccb_sinful_ccbid(s);
	return ccb_contact_list_split(v ? v : "", out, n, err);
}

ccb_err ccb_sinful_set_ccb_contacts(ccb_sinful *s, const char *const *contacts,
	size_t n, ccb_error *err)
{
	char *joined;
	ccb_err rc;

	if (!s)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "set CCB contacts: NULL sinful");
	if (n == 0)
		return ccb_sinful_set_param(s, CCB_SINFUL_CCBID, NULL, err);
	rc = ccb_contact_list_join(contacts, n, &joined, err);
	if (rc != CCB_OK)
		return rc;
	rc = ccb_sinful_set_param(s, CCB_SINFUL_CCBID, joined, err);
	free(joined);
	return rc;
}

ccb_err ccb_sinful_addrs(const ccb_sinful *s, ccb_hostport **out, size_t *n,
	ccb_error *err)
{
	const char *v, *p;
	size_t max = 1, cnt = 0;
	ccb_hostport *arr;

	if (!s || !out || !n)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "addrs: NULL argument");
	*out = NULL;
	*n = 0;
	v = ccb_sinful_param(s, CCB_SINFUL_ADDRS);
	if (!v)
		return CCB_OK;
	for (p = v; *p; p++)
		max += *p == '+';
	arr = calloc(max, sizeof *arr);
	if (!arr)
		return ccb_error_set(err, CCB_ERR_NOMEM, "addrs");
	for (p = v; *p;) {
		size_t len = strcspn(p, "+");

		if (len) {
			char tmp[CCB_ADDR_IP_SIZE + 8];

			/* validated when stored, so this only guards the copy */
			if (len >= sizeof tmp)
				len = sizeof tmp - 1;
			memcpy(tmp, p, len);
			tmp[len] = '\0';
			if (ccb_addr_ccb_safe_parse(tmp, &arr[cnt], err) != CCB_OK) {
				free(arr);
				return CCB_ERR_PARSE;
			}
			cnt++;
		}
		p += strcspn(p, "+");
		if (*p == '+')
			p++;
	}
	if (cnt == 0) {
		free(arr);
		arr = NULL;
	}
	*out = arr;
	*n = cnt;
	return CCB_OK;
}
