#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "classad/classad_internal.h"

typedef struct attr {
	char *name;    /* in the ad's name blocks, or its own (NAME_OWN) */
	uint32_t nlen; /* strlen(name), | NAME_OWN */
	ccb_value_type type;
	union {
		int64_t i;
		double r;
		bool b;
		char *s; /* string value, or expression text */
	} v;
} attr;

#define NAME_OWN 0x80000000u
#define NLEN(a) ((a)->nlen & ~NAME_OWN)

/*
 * Attribute names live in a few blocks per ad, not one allocation each: an
 * ad is built and parsed once per message (a security handshake makes a
 * dozen), and a name, once set, never changes or moves (getters' pointers
 * stay valid). A name replaced or removed leaves its bytes in the block
 * (waste); once an ad has wasted NAME_WASTE_MAX bytes, its new names get an
 * allocation of their own, freed with them, so an ad edited for ever stays
 * bounded.
 */
typedef struct nblk {
	struct nblk *next;
	size_t used, cap;
	char data[];
} nblk;

#define NBLK_MIN 480
#define NAME_WASTE_MAX 4096

struct ccb_classad {
	attr *attrs; /* sorted in wire order */
	size_t n, cap;
	nblk *names;
	size_t waste; /* bytes of block names no attribute uses any more */
};

static void names_free(nblk *b)
{
	while (b) {
		nblk *next = b->next;
		free(b);
		b = next;
	}
}

/* Set a's name to a copy of name[0..len), NUL-terminated. False when out
 * of memory (a unchanged). */
static bool name_set(ccb_classad *ad, attr *a, const char *name, size_t len)
{
	nblk *b = ad->names;
	char *p;

	if (ad->waste > NAME_WASTE_MAX) {
		if (!(p = ccb_strndup(name, len)))
			return false;
		a->name = p;
		a->nlen = (uint32_t)len | NAME_OWN;
		return true;
	}
	if (!b || b->cap - b->used < len + 1) {
		size_t cap = len + 1 > NBLK_MIN ? len + 1 : NBLK_MIN;
		if (!(b = malloc(sizeof *b + cap)))
			return false;
		b->next = ad->names;
		b->used = 0;
		b->cap = cap;
		ad->names = b;
	}
	p = b->data + b->used;
	memcpy(p, name, len);
	p[len] = '\0';
	b->used += len + 1;
	a->name = p;
	a->nlen = (uint32_t)len;
	return true;
}

/* a's name is no longer used. */
static void name_release(ccb_classad *ad, attr *a)
{
	if (a->nlen & NAME_OWN)
		free(a->name);
	else if (a->name)
		ad->waste += a->nlen + 1;
	a->name = NULL;
}

/* HTCondor's attribute order: name length first, then case-insensitive name
 * (H:src/classad/classad/classad_flat_map.h:26-70). */
static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return alen < blen ? -1 : 1;
	return strncasecmp(a, b, alen);
}

/* Index of `name` or, if absent, the insertion point with *found = false. */
static size_t find(const ccb_classad *ad, const char *name, size_t len, bool *found)
{
	size_t lo = 0, hi = ad->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const attr *m = &ad->attrs[mid];
		int c = name_cmp(m->name, NLEN(m), name, len);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static const attr *lookup(const ccb_classad *ad, const char *name)
{
	bool found;
	size_t i;

	if (!ad || !name)
		return NULL;
	i = find(ad, name, strlen(name), &found);
	return found ? &ad->attrs[i] : NULL;
}

static void attr_clear_value(attr *a)
{
	if (a->type == CCB_VAL_STRING || a->type == CCB_VAL_EXPR)
		free(a->v.s);
	a->v.s = NULL;
}

ccb_classad *ccb__classad_new(void)
{
	return calloc(1, sizeof(ccb_classad));
}

ccb_err ccb_classad_new(ccb_classad **out, ccb_error *err)
{
	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_classad_new: NULL out");
	if (!(*out = ccb__classad_new()))
		return ccb_error_set(err, CCB_ERR_NOMEM, "new ClassAd: out of memory");
	return CCB_OK;
}

void ccb_classad_free(ccb_classad *ad)
{
	if (!ad)
		return;
	for (size_t i = 0; i < ad->n; i++) {
		attr_clear_value(&ad->attrs[i]);
		name_release(ad, &ad->attrs[i]);
	}
	names_free(ad->names);
	free(ad->attrs);
	free(ad);
}

size_t ccb_classad_count(const ccb_classad *ad)
{
	return ad ? ad->n : 0;
}

const char *ccb_classad_name_at(const ccb_classad *ad, size_t i)
{
	return ad && i < ad->n ? ad->attrs[i].name : NULL;
}

static bool valid_name(const char *name, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (ch == '=' || isspace(ch) || ch < 0x20 || ch == 0x7f)
			return false;
	}
	/* The NULL-string marker cannot start a wire string. */
	return (unsigned char)name[0] != CCB_NULL_STRING_MARKER;
}

/* Find or create the slot for `name`; the caller then sets type and value.
 * Takes nothing over; copies the name. */
static ccb_err slot(ccb_classad *ad, const char *name, size_t len, attr **out)
{
	bool found;
	size_t i;

	if (!ad || !name || !valid_name(name, len))
		return CCB_ERR_INVALID_ARG;
	if (len >= NAME_OWN)
		return CCB_ERR_INVALID_ARG;
	i = find(ad, name, len, &found);
	if (found && !memcmp(ad->attrs[i].name, name, len)) {
		/* The same name again: only the value changes. */
		attr_clear_value(&ad->attrs[i]);
	} else if (found) {
		/* A later duplicate overwrites; the newest spelling wins. */
		attr fresh = {0};
		if (!name_set(ad, &fresh, name, len))
			return CCB_ERR_NOMEM;
		attr_clear_value(&ad->attrs[i]);
		name_release(ad, &ad->attrs[i]);
		ad->attrs[i].name = fresh.name;
		ad->attrs[i].nlen = fresh.nlen;
	} else {
		attr fresh = {0};
		if (ad->n == ad->cap) {
			size_t ncap = ad->cap ? ad->cap * 2 : 8;
			attr *p = realloc(ad->attrs, ncap * sizeof *p);
			if (!p)
				return CCB_ERR_NOMEM;
			ad->attrs = p;
			ad->cap = ncap;
		}
		if (!name_set(ad, &fresh, name, len))
			return CCB_ERR_NOMEM;
		memmove(&ad->attrs[i + 1], &ad->attrs[i], (ad->n - i) * sizeof(attr));
		ad->n++;
		ad->attrs[i].name = fresh.name;
		ad->attrs[i].nlen = fresh.nlen;
	}
	ad->attrs[i].type = CCB_VAL_UNDEFINED;
	ad->attrs[i].v.s = NULL;
	*out = &ad->attrs[i];
	return CCB_OK;
}

ccb_err ccb_classad_set_int(ccb_classad *ad, const char *name, int64_t v)
{
	attr *a;
	ccb_err rc = name ? slot(ad, name, strlen(name), &a) : CCB_ERR_INVALID_ARG;

	if (rc == CCB_OK) {
		a->type = CCB_VAL_INT;
		a->v.i = v;
	}
	return rc;
}

ccb_err ccb_classad_set_real(ccb_classad *ad, const char *name, double v)
{
	attr *a;
	ccb_err rc = name ? slot(ad, name, strlen(name), &a) : CCB_ERR_INVALID_ARG;

	if (rc == CCB_OK) {
		a->type = CCB_VAL_REAL;
		a->v.r = v;
	}
	return rc;
}

ccb_err ccb_classad_set_bool(ccb_classad *ad, const char *name, bool v)
{
	attr *a;
	ccb_err rc = name ? slot(ad, name, strlen(name), &a) : CCB_ERR_INVALID_ARG;

	if (rc == CCB_OK) {
		a->type = CCB_VAL_BOOL;
		a->v.b = v;
	}
	return rc;
}

ccb_err ccb_classad_set_undefined(ccb_classad *ad, const char *name)
{
	attr *a;
	return name ? slot(ad, name, strlen(name), &a) : CCB_ERR_INVALID_ARG;
}

static ccb_err set_text(ccb_classad *ad, const char *name, size_t name_len, ccb_value_type type,
			const char *text, size_t text_len)
{
	attr *a;
	char *copy = ccb_strndup(text, text_len);
	ccb_err rc;

	if (!copy)
		return CCB_ERR_NOMEM;
	rc = slot(ad, name, name_len, &a);
	if (rc) {
		free(copy);
		return rc;
	}
	a->type = type;
	a->v.s = copy;
	return CCB_OK;
}

ccb_err ccb_classad_set_string(ccb_classad *ad, const char *name, const char *v)
{
	if (!name || !v)
		return CCB_ERR_INVALID_ARG;
	return set_text(ad, name, strlen(name), CCB_VAL_STRING, v, strlen(v));
}

ccb_err ccb_classad_remove(ccb_classad *ad, const char *name)
{
	bool found;
	size_t i;

	if (!ad || !name)
		return CCB_ERR_INVALID_ARG;
	i = find(ad, name, strlen(name), &found);
	if (!found)
		return CCB_ERR_NOT_FOUND;
	attr_clear_value(&ad->attrs[i]);
	name_release(ad, &ad->attrs[i]);
	memmove(&ad->attrs[i], &ad->attrs[i + 1], (ad->n - i - 1) * sizeof(attr));
	ad->n--;
	return CCB_OK;
}

ccb_err ccb_classad_copy(const ccb_classad *ad, ccb_classad **out, ccb_error *err)
{
	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_classad_copy: NULL out");
	if (!ad) {
		*out = NULL;
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_classad_copy: NULL ad");
	}
	if (!(*out = ccb__classad_copy(ad)))
		return ccb_error_set(err, CCB_ERR_NOMEM, "copy ClassAd of %zu attributes: out of memory",
				     ccb_classad_count(ad));
	return CCB_OK;
}

ccb_classad *ccb__classad_copy(const ccb_classad *ad)
{
	ccb_classad *c = ccb__classad_new();

	if (!c || !ad)
		return c;
	c->attrs = calloc(ad->n ? ad->n : 1, sizeof(attr));
	if (!c->attrs) {
		free(c);
		return NULL;
	}
	c->cap = ad->n ? ad->n : 1;
	for (size_t i = 0; i < ad->n; i++) {
		const attr *src = &ad->attrs[i];
		attr *dst = &c->attrs[i];
		bool named;
		*dst = *src;
		dst->name = NULL;
		if (src->type == CCB_VAL_STRING || src->type == CCB_VAL_EXPR)
			dst->v.s = ccb_strdup(src->v.s);
		named = name_set(c, dst, src->name, NLEN(src));
		c->n = i + 1;
		if (!named ||
		    ((src->type == CCB_VAL_STRING || src->type == CCB_VAL_EXPR) && !dst->v.s)) {
			ccb_classad_free(c);
			return NULL;
		}
	}
	return c;
}

/* ---- getters ----------------------------------------------------------- */

ccb_value_type ccb_classad_type(const ccb_classad *ad, const char *name)
{
	const attr *a = lookup(ad, name);
	return a ? a->type : CCB_VAL_ABSENT;
}

ccb_err ccb_classad_get_int(const ccb_classad *ad, const char *name, int64_t *v)
{
	const attr *a = lookup(ad, name);

	if (!a)
		return CCB_ERR_NOT_FOUND;
	if (a->type == CCB_VAL_INT)
		*v = a->v.i;
	else if (a->type == CCB_VAL_BOOL)
		*v = a->v.b; /* ClassAd evaluation converts booleans to 0/1 */
	else
		return CCB_ERR_TYPE;
	return CCB_OK;
}

ccb_err ccb_classad_get_real(const ccb_classad *ad, const char *name, double *v)
{
	const attr *a = lookup(ad, name);

	if (!a)
		return CCB_ERR_NOT_FOUND;
	if (a->type == CCB_VAL_REAL)
		*v = a->v.r;
	else if (a->type == CCB_VAL_INT)
		*v = (double)a->v.i;
	else
		return CCB_ERR_TYPE;
	return CCB_OK;
}

ccb_err ccb_classad_get_bool(const ccb_classad *ad, const char *name, bool *v)
{
	const attr *a = lookup(ad, name);

	if (!a)
		return CCB_ERR_NOT_FOUND;
	if (a->type != CCB_VAL_BOOL)
		return CCB_ERR_TYPE;
	*v = a->v.b;
	return CCB_OK;
}

ccb_err ccb_classad_get_string(const ccb_classad *ad, const char *name, const char **v)
{
	const attr *a = lookup(ad, name);

	if (!a)
		return CCB_ERR_NOT_FOUND;
	if (a->type != CCB_VAL_STRING)
		return CCB_ERR_TYPE;
	*v = a->v.s;
	return CCB_OK;
}

/* ---- printing (old syntax, H:src/classad/sink.cpp:95-560) -------------- */

static bool print_real(ccb_buf *b, double r)
{
	char tmp[64];

	/* Special values (H:sink.cpp:147-176). */
	if (isnan(r))
		return ccb_buf_append_str(b, "real(\"NaN\")");
	if (isinf(r))
		return ccb_buf_append_str(b, r > 0 ? "real(\"INF\")" : "real(\"-INF\")");
	snprintf(tmp, sizeof tmp, "%.16G", r);
	if (!strpbrk(tmp, ".Ee"))
		strcat(tmp, ".0");
	return ccb_buf_append_str(b, tmp);
}

/* Old-syntax string literal: only '"' is escaped; backslashes and control
 * bytes go out raw (classad-wire.md §4). */
static bool print_string(ccb_buf *b, const char *s)
{
	if (!ccb_buf_append(b, "\"", 1))
		return false;
	/* Runs between quotes go out whole. */
	for (const char *p = s;;) {
		size_t run = strcspn(p, "\"");
		if (run && !ccb_buf_append(b, p, run))
			return false;
		p += run;
		if (!*p)
			break;
		if (!ccb_buf_append(b, "\\\"", 2))
			return false;
		p++;
	}
	return ccb_buf_append(b, "\"", 1);
}

static bool print_value(ccb_buf *b, const attr *a)
{
	switch (a->type) {
	case CCB_VAL_INT: return ccb_buf_appendf(b, "%lld", (long long)a->v.i);
	case CCB_VAL_REAL: return print_real(b, a->v.r);
	case CCB_VAL_BOOL: return ccb_buf_append_str(b, a->v.b ? "true" : "false");
	case CCB_VAL_STRING: return print_string(b, a->v.s);
	case CCB_VAL_EXPR: return ccb_buf_append_str(b, a->v.s);
	case CCB_VAL_ERROR: return ccb_buf_append_str(b, "error");
	case CCB_VAL_UNDEFINED:
	case CCB_VAL_ABSENT: break;
	}
	return ccb_buf_append_str(b, "undefined");
}

/* "Name = value": name as is, one space, '=', one space (H:classad_oldnew.cpp:809-811). */
static bool print_line(ccb_buf *b, const attr *a)
{
	return ccb_buf_append_str(b, a->name) && ccb_buf_append(b, " = ", 3) && print_value(b, a);
}

ccb_err ccb_classad_value_text(const ccb_classad *ad, const char *name, char **out)
{
	const attr *a = lookup(ad, name);
	ccb_buf b;

	*out = NULL;
	if (!a)
		return CCB_ERR_NOT_FOUND;
	ccb_buf_init(&b);
	if (!print_value(&b, a) || !(*out = ccb_buf_steal_str(&b))) {
		ccb_buf_free(&b);
		return CCB_ERR_NOMEM;
	}
	return CCB_OK;
}

char *ccb__classad_to_text(const ccb_classad *ad)
{
	ccb_buf b;

	ccb_buf_init(&b);
	for (size_t i = 0; ad && i < ad->n; i++) {
		if (!print_line(&b, &ad->attrs[i]) || !ccb_buf_append(&b, "\n", 1)) {
			ccb_buf_free(&b);
			return NULL;
		}
	}
	return ccb_buf_steal_str(&b);
}

ccb_err ccb_classad_to_text(const ccb_classad *ad, char **out, ccb_error *err)
{
	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_classad_to_text: NULL out");
	if (!(*out = ccb__classad_to_text(ad)))
		return ccb_error_set(err, CCB_ERR_NOMEM, "ClassAd as text: out of memory");
	return CCB_OK;
}

/* ---- parsing ------------------------------------------------------------ */

bool ccb__classad_split_line(const char *line, size_t len, const char **name, size_t *name_len,
			     const char **rhs, size_t *rhs_len)
{
	const char *end = line + len, *p = line, *eq;

	while (p < end && isspace((unsigned char)*p))
		p++;
	eq = memchr(p, '=', (size_t)(end - p));
	if (!eq)
		return false;
	*name = p;
	*name_len = (size_t)(eq - p);
	while (*name_len && isspace((unsigned char)p[*name_len - 1]))
		(*name_len)--;
	if (*name_len == 0)
		return false;
	p = eq + 1;
	while (p < end && isspace((unsigned char)*p))
		p++;
	/* Trailing white space is not part of the expression either. */
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	*rhs = p;
	*rhs_len = (size_t)(end - p);
	return true;
}

/* Old-syntax string token (tokenizeStringOld, H:src/classad/lexer.cpp:605-661):
 * a backslash is special only directly before '"'. `s` starts at the opening
 * quote. On success *used is the token length and the value is appended to
 * `val`; false if the string is unterminated. */
static bool scan_old_string(const char *s, size_t len, size_t *used, ccb_buf *val)
{
	size_t i = 1;

	while (i < len) {
		/* The run up to the next quote goes in whole. */
		const char *q = memchr(s + i, '"', len - i);
		size_t run = q ? (size_t)(q - s) - i : len - i;

		if (run && !ccb_buf_append(val, s + i, run))
			return false;
		i += run;
		if (!q)
			break;
		/* Escaped quote, unless nothing (or a newline) follows: then the
		 * string ends and keeps its backslash. s[0] is the opening quote,
		 * so s[i - 1] is always there, and in val. */
		if (s[i - 1] == '\\' && i + 1 < len && s[i + 1] != '\n') {
			val->len--; /* drop the backslash */
			if (!ccb_buf_append(val, "\"", 1))
				return false;
			i++;
			continue;
		}
		*used = i + 1;
		return ccb_buf_terminate(val);
	}
	return false;
}

static bool word_is(const char *s, size_t n, const char *w)
{
	return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

/* Parse a literal rhs: integer, real, bool, undefined, error, string, or
 * the special reals HTCondor writes. Returns false if not a lone literal. */
static bool parse_literal(const char *rhs, size_t n, attr *out, ccb_buf *sval)
{
	char tmp[64];
	char *endp;

	if (n == 0)
		return false;
	if (word_is(rhs, n, "true") || word_is(rhs, n, "false")) {
		out->type = CCB_VAL_BOOL;
		out->v.b = (rhs[0] == 't' || rhs[0] == 'T');
		return true;
	}
	if (word_is(rhs, n, "undefined")) {
		out->type = CCB_VAL_UNDEFINED;
		return true;
	}
	if (word_is(rhs, n, "error")) {
		out->type = CCB_VAL_ERROR;
		return true;
	}
	if (word_is(rhs, n, "real(\"NaN\")") || word_is(rhs, n, "real(\"INF\")") ||
	    word_is(rhs, n, "real(\"-INF\")")) {
		out->type = CCB_VAL_REAL;
		out->v.r = rhs[6] == 'N' || rhs[6] == 'n' ? NAN : rhs[6] == '-' ? -INFINITY : INFINITY;
		return true;
	}
	if (rhs[0] == '"') {
		size_t used = 0;
		if (!scan_old_string(rhs, n, &used, sval) || used != n)
			return false;
		out->type = CCB_VAL_STRING;
		return true;
	}
	if (n >= sizeof tmp)
		return false;
	memcpy(tmp, rhs, n);
	tmp[n] = '\0';
	if (!(isdigit((unsigned char)tmp[0]) ||
	      ((tmp[0] == '-' || tmp[0] == '+') && isdigit((unsigned char)tmp[1]))))
		return false;
	if (!strpbrk(tmp, ".eE")) {
		long long v;
		errno = 0;
		v = strtoll(tmp, &endp, 10);
		if (*endp || errno)
			return false;
		out->type = CCB_VAL_INT;
		out->v.i = v;
		return true;
	}
	/* Reals: digits, optional fraction, optional exponent; no hex, inf, nan. */
	for (const char *p = tmp; *p; p++)
		if (!isdigit((unsigned char)*p) && !strchr("+-.eE", *p))
			return false;
	errno = 0;
	out->v.r = strtod(tmp, &endp);
	if (*endp || errno == ERANGE)
		return false;
	out->type = CCB_VAL_REAL;
	return true;
}

bool ccb__classad_rhs_is_literal(const char *rhs, size_t len)
{
	attr a = {0};
	ccb_buf sval;
	bool ok;

	ccb_buf_init(&sval);
	ok = parse_literal(rhs, len, &a, &sval);
	ccb_buf_free(&sval);
	return ok;
}

static ccb_err set_rhs(ccb_classad *ad, const char *name, size_t name_len, const char *rhs,
		       size_t rhs_len)
{
	attr lit = {0};
	ccb_buf sval;
	attr *a;
	ccb_err rc;

	if (!valid_name(name, name_len))
		return CCB_ERR_INVALID_ARG;
	ccb_buf_init(&sval);
	if (!parse_literal(rhs, rhs_len, &lit, &sval)) {
		ccb_buf_free(&sval);
		if (rhs_len == 0)
			return CCB_ERR_PARSE;
		return set_text(ad, name, name_len, CCB_VAL_EXPR, rhs, rhs_len);
	}
	if (lit.type == CCB_VAL_STRING) {
		rc = set_text(ad, name, name_len, CCB_VAL_STRING,
			      sval.data ? (char *)sval.data : "", sval.len);
		ccb_buf_free(&sval);
		return rc;
	}
	ccb_buf_free(&sval);
	rc = slot(ad, name, name_len, &a);
	if (rc == CCB_OK) {
		a->type = lit.type;
		a->v = lit.v;
	}
	return rc;
}

ccb_err ccb_classad_set_expr(ccb_classad *ad, const char *name, const char *text)
{
	if (!name || !text)
		return CCB_ERR_INVALID_ARG;
	while (isspace((unsigned char)*text))
		text++;
	size_t n = strlen(text);
	while (n && isspace((unsigned char)text[n - 1]))
		n--;
	return set_rhs(ad, name, strlen(name), text, n);
}

ccb_err ccb_classad_parse_line(ccb_classad *ad, const char *line, ccb_error *err)
{
	const char *name, *rhs;
	size_t name_len, rhs_len;
	ccb_err rc;

	if (!ad || !line)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_classad_parse_line: NULL argument");
	if (!ccb__classad_split_line(line, strlen(line), &name, &name_len, &rhs, &rhs_len))
		return ccb_error_set(err, CCB_ERR_PARSE,
				     "attribute line has no 'Name = value' form: '%.60s'", line);
	rc = set_rhs(ad, name, name_len, rhs, rhs_len);
	if (rc == CCB_ERR_PARSE || rc == CCB_ERR_INVALID_ARG)
		return ccb_error_set(err, CCB_ERR_PARSE, "bad attribute '%.*s' in '%.60s'",
				     (int)(name_len > 60 ? 60 : name_len), name, line);
	if (rc)
		return ccb_error_set(err, rc, "storing attribute '%.*s'",
				     (int)(name_len > 60 ? 60 : name_len), name);
	return CCB_OK;
}

bool ccb_attr_is_private(const char *name)
{
	/* V1 list and V2 prefix (H:compat_classad.cpp:53-55, 2238-2251). */
	static const char *const v1[] = {"Capability", "ChildClaimIds", "ClaimId",
					 "ClaimIdList", "ClaimIds", "TransferKey"};

	char first;

	if (!name)
		return false;
	/* Every private name starts with c, t or _ (one look spares most
	 * names the comparisons: this runs for every attribute sent). */
	first = (char)tolower((unsigned char)name[0]);
	if (first != 'c' && first != 't' && first != '_')
		return false;
	for (size_t i = 0; i < sizeof v1 / sizeof v1[0]; i++)
		if (!strcasecmp(name, v1[i]))
			return true;
	return strncasecmp(name, "_condor_priv", 12) == 0;
}

bool ccb__classad_print_line(ccb_buf *b, const ccb_classad *ad, size_t i)
{
	return print_line(b, &ad->attrs[i]);
}
