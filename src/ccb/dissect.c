/*
 * Heuristic CEDAR dissector (see include/ccb/dissect.h). CEDAR has no type
 * tags, so each position is tried as: ClassAd (a small count followed by
 * that many `Name = value` strings and two trailer strings), integer (eight
 * bytes whose top half is all 00 or all ff), string (printable bytes and a
 * NUL), else raw bytes to the end of the message.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ccb/commands.h"
#include "ccb/dissect.h"
#include "cedar/codec.h"
#include "classad/classad_internal.h"

#define MAX_DISSECT_ATTRS 1000
#define RAW_SHOWN 80 /* bytes of raw hex shown before "..." */

struct ccb_dissector {
	ccb_buf pending[2];
	bool failed[2];
	ccb_dissect_frame *frames[2];
	size_t nframes[2], cap_frames[2];
	ccb_dissect_msg *msgs;
	size_t nmsgs, cap_msgs;
};

/* ---- item list helpers ------------------------------------------------- */

static ccb_dissect_item *add_item(ccb_dissect_msg *m, ccb_dissect_kind kind)
{
	ccb_dissect_item *p = realloc(m->items, (m->nitems + 1) * sizeof *p);

	if (!p)
		return NULL;
	m->items = p;
	p = &m->items[m->nitems++];
	memset(p, 0, sizeof *p);
	p->kind = kind;
	return p;
}

static void item_clear(ccb_dissect_item *it)
{
	free(it->text);
	for (size_t i = 0; i < it->nattrs; i++)
		free(it->attrs[i].text);
	free(it->attrs);
	free(it->my_type);
	free(it->target_type);
}

void ccb_dissect_msg_clear(ccb_dissect_msg *m)
{
	for (size_t i = 0; i < m->nitems; i++)
		item_clear(&m->items[i]);
	free(m->items);
	free(m->frames);
	free(m->body);
	memset(m, 0, sizeof *m);
}

static char *hex_of(const uint8_t *p, size_t n)
{
	char *h = malloc(2 * n + 1);

	if (h)
		ccb_hex_encode(p, n, h);
	return h;
}

/* ---- recognisers ------------------------------------------------------- */

static bool printable(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((p[i] < 0x20 && p[i] != '\t') || p[i] > 0x7e)
			return false;
	return true;
}

/* A NUL-terminated printable string at pos; *n its length without NUL. */
static bool string_at(const uint8_t *b, size_t len, size_t pos, size_t *n)
{
	const uint8_t *nul;

	if (pos >= len || b[pos] == CCB_NULL_STRING_MARKER)
		return false;
	nul = memchr(b + pos, 0, len - pos);
	if (!nul)
		return false;
	*n = (size_t)(nul - (b + pos));
	return printable(b + pos, *n);
}

static bool attr_line(const uint8_t *s, size_t n)
{
	const char *name, *rhs;
	size_t nl, rl;

	if (!ccb__classad_split_line((const char *)s, n, &name, &nl, &rhs, &rl) || rl == 0)
		return false;
	if (!(isalpha((unsigned char)name[0]) || name[0] == '_'))
		return false;
	for (size_t i = 0; i < nl; i++)
		if (!(isalnum((unsigned char)name[i]) || name[i] == '_' || name[i] == '.'))
			return false;
	return true;
}

static bool int_at(const uint8_t *b, size_t len, size_t pos)
{
	static const uint8_t zero[4], ones[4] = {0xff, 0xff, 0xff, 0xff};

	return len - pos >= 8 && (!memcmp(b + pos, zero, 4) || !memcmp(b + pos, ones, 4));
}

static int64_t int_value(const uint8_t *b)
{
	uint64_t u = 0;

	for (int i = 0; i < 8; i++)
		u = u << 8 | b[i];
	return (int64_t)u;
}

/* Attribute names seen after enciphered secrets in CCB and collector traffic;
 * used to tell where a secret's ciphertext ends (see boundary()). */
static const char *const known_names[] = {
	"Command", "MyAddress", "RequestID", "Name", "CCBID", "Result", "ErrorString",
	"MyType", "TargetType", "Requirements", "DaemonStartTime", "UpdateSequenceNumber",
	"DaemonLastReconfigTime", "ClaimId", "Machine", "MyCurrentTime",
};

static bool known_name(const uint8_t *s, size_t n)
{
	const char *name, *rhs;
	size_t nl, rl;

	if (!ccb__classad_split_line((const char *)s, n, &name, &nl, &rhs, &rl))
		return false;
	for (size_t i = 0; i < sizeof known_names / sizeof known_names[0]; i++)
		if (strlen(known_names[i]) == nl && !memcmp(known_names[i], name, nl))
			return true;
	return false;
}

/* Where the line b[lo..nul) that directly follows enciphered bytes begins.
 * Printable ciphertext bytes may precede the name, so prefer a start that
 * gives a known attribute name, else the longest valid line with an
 * upper-case first letter. Returns nul + 1 when no start fits. */
static size_t boundary(const uint8_t *b, size_t lo, size_t nul)
{
	size_t best = nul + 1;

	for (size_t p = lo; p < nul; p++) {
		if (!(b[p] >= 'A' && b[p] <= 'Z') || !attr_line(b + p, nul - p))
			continue;
		if (known_name(b + p, nul - p))
			return p;
		if (best > nul)
			best = p;
	}
	return best;
}

/* Where the enciphered secret that starts at `from` ends: after it come
 * `nlines` attribute lines and the two trailer strings, which run to the end
 * of the message. 0 if that does not fit. */
static size_t secret_end(const uint8_t *b, size_t from, size_t len, size_t nlines)
{
	size_t e = len;

	/* Trailers: almost always both empty. */
	if (len - from >= 2 && b[len - 1] == 0 && b[len - 2] == 0) {
		e = len - 2;
	} else {
		for (int t = 0; t < 2; t++) {
			size_t s;
			if (e <= from || b[e - 1] != 0)
				return 0;
			s = e - 1;
			while (s > from && b[s - 1] != 0 && printable(b + s - 1, 1))
				s--;
			if (s == from || b[s - 1] != 0)
				return 0;
			e = s;
		}
	}
	for (size_t k = 0; k < nlines; k++) {
		size_t s;
		if (e <= from || b[e - 1] != 0)
			return 0;
		s = e - 1;
		while (s > from && b[s - 1] != 0 && printable(b + s - 1, 1))
			s--;
		if (k + 1 < nlines) {
			if (s == from || b[s - 1] != 0 || !attr_line(b + s, e - 1 - s))
				return 0;
		} else {
			s = boundary(b, s, e - 1);
			if (s >= e)
				return 0;
		}
		e = s;
	}
	return e;
}

/* Try a ClassAd at *pos; on success append it and advance *pos. */
static int try_classad(ccb_dissect_msg *m, const uint8_t *b, size_t len, size_t *pos)
{
	size_t p = *pos, n;
	int64_t count;
	ccb_dissect_item it = {.kind = CCB_DISSECT_CLASSAD};
	ccb_dissect_item *dst;

	if (!int_at(b, len, p))
		return 0;
	count = int_value(b + p);
	if (count < 0 || count > MAX_DISSECT_ATTRS)
		return 0;
	p += 8;
	it.ival = count;
	it.attrs = calloc((size_t)count + 1, sizeof *it.attrs);
	if (!it.attrs)
		return -1;
	for (int64_t i = 0; i < count; i++) {
		ccb_dissect_attr *a = &it.attrs[it.nattrs];
		if (!string_at(b, len, p, &n))
			goto no;
		if (n == 3 && !memcmp(b + p, CCB_SECRET_MARKER, 3)) {
			size_t q = p + 4, end;
			if (string_at(b, len, q, &n) && attr_line(b + q, n)) {
				a->kind = CCB_DISSECT_SECRET_CLEAR;
				a->text = ccb_strndup((const char *)b + q, n);
				a->nbytes = n + 1;
				p = q + n + 1;
			} else {
				/* Enciphered (legacy cipher): its length is hidden, so
				 * find where the remaining lines and trailers begin. */
				end = secret_end(b, q, len, (size_t)(count - i - 1));
				if (end < q + 9)
					goto no;
				a->kind = CCB_DISSECT_SECRET_ENCRYPTED;
				a->text = hex_of(b + q, end - q);
				a->nbytes = end - q;
				p = end;
			}
		} else {
			if (!attr_line(b + p, n))
				goto no;
			a->kind = CCB_DISSECT_ATTR;
			a->text = ccb_strndup((const char *)b + p, n);
			p += n + 1;
		}
		it.nattrs++;
		if (!a->text) {
			item_clear(&it);
			return -1;
		}
	}
	for (int t = 0; t < 2; t++) {
		char **dstr = t ? &it.target_type : &it.my_type;
		if (p >= len || !string_at(b, len, p, &n))
			goto no;
		*dstr = ccb_strndup((const char *)b + p, n);
		if (!*dstr) {
			item_clear(&it);
			return -1;
		}
		p += n + 1;
	}
	/* "int 0" followed by two empty strings is more likely plain zeros,
	 * unless that is exactly the rest of the message. */
	if (count == 0 && p != len)
		goto no;
	dst = add_item(m, CCB_DISSECT_CLASSAD);
	if (!dst) {
		item_clear(&it);
		return -1;
	}
	it.offset = *pos;
	it.length = p - *pos;
	*dst = it;
	*pos = p;
	return 1;
no:
	item_clear(&it);
	return 0;
}

ccb_err ccb_dissect_body(const uint8_t *b, size_t len, ccb_dissect_msg *m, ccb_error *err)
{
	size_t pos = 0, start, n;

	memset(m, 0, sizeof *m);
	m->body_len = len;
	while (pos < len) {
		ccb_dissect_item *it;
		int rc = try_classad(m, b, len, &pos);

		if (rc < 0)
			goto nomem;
		if (rc > 0)
			continue;
		start = pos;
		if (int_at(b, len, pos)) {
			if (!(it = add_item(m, CCB_DISSECT_INT)))
				goto nomem;
			it->ival = int_value(b + pos);
			pos += 8;
		} else if (string_at(b, len, pos, &n) && n >= 2) {
			if (!(it = add_item(m, CCB_DISSECT_STRING)) ||
			    !(it->text = ccb_strndup((const char *)b + pos, n)))
				goto nomem;
			pos += n + 1;
		} else {
			if (!(it = add_item(m, CCB_DISSECT_RAW)) || !(it->text = hex_of(b + pos, len - pos)))
				goto nomem;
			it->nbytes = len - pos;
			pos = len;
		}
		it->offset = start;
		it->length = pos - start;
	}
	return CCB_OK;
nomem:
	ccb_dissect_msg_clear(m);
	return ccb_error_set(err, CCB_ERR_NOMEM, "dissecting a %zu-byte message", len);
}

/* ---- framing ------------------------------------------------------------ */

ccb_err ccb_dissector_new(ccb_dissector **out, ccb_error *err)
{
	ccb_dissector *d;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_dissector_new: NULL out");
	if (!(*out = d = calloc(1, sizeof *d)))
		return ccb_error_set(err, CCB_ERR_NOMEM, "new dissector: out of memory");
	ccb_buf_init(&d->pending[0]);
	ccb_buf_init(&d->pending[1]);
	return CCB_OK;
}

void ccb_dissector_free(ccb_dissector *d)
{
	if (!d)
		return;
	for (int i = 0; i < 2; i++) {
		ccb_buf_free(&d->pending[i]);
		free(d->frames[i]);
	}
	for (size_t i = 0; i < d->nmsgs; i++)
		ccb_dissect_msg_clear(&d->msgs[i]);
	free(d->msgs);
	free(d);
}

size_t ccb_dissector_count(const ccb_dissector *d)
{
	return d->nmsgs;
}

const ccb_dissect_msg *ccb_dissector_msg(const ccb_dissector *d, size_t i)
{
	return i < d->nmsgs ? &d->msgs[i] : NULL;
}

size_t ccb_dissector_pending(const ccb_dissector *d, ccb_dissect_dir dir)
{
	return d->pending[dir].len;
}

/* Take every complete message out of the direction's pending bytes. */
static ccb_err extract(ccb_dissector *d, ccb_dissect_dir dir, ccb_error *err)
{
	ccb_buf *pb = &d->pending[dir];

	for (;;) {
		size_t off = 0, nf = 0, body = 0;
		bool complete = false;
		ccb_buf msgbody;
		ccb_dissect_msg m;
		ccb_dissect_frame *frames;

		/* Find the end of the first message. */
		while (pb->len - off >= 5) {
			int8_t end = (int8_t)pb->data[off];
			uint32_t len = ccb_be32_get(pb->data + off + 1);
			if (end < 0 || end > 10 || len == 0 || len > 1024 * 1024) {
				d->failed[dir] = true;
				return ccb_error_set(err, CCB_ERR_PROTOCOL,
						     "%s: not CEDAR framing at offset %zu (end=%d len=%u)",
						     dir == CCB_DIR_C2S ? "c2s" : "s2c", off, end, len);
			}
			if (pb->len - off - 5 < len)
				break;
			off += 5 + len;
			body += len;
			nf++;
			if (end != 0) {
				complete = true;
				break;
			}
		}
		if (!complete)
			return CCB_OK;
		frames = calloc(nf, sizeof *frames);
		ccb_buf_init(&msgbody);
		if (!frames || !ccb_buf_reserve(&msgbody, body)) {
			free(frames);
			return ccb_error_set(err, CCB_ERR_NOMEM, "dissector");
		}
		for (size_t i = 0, o = 0; i < nf; i++) {
			frames[i].end = (int8_t)pb->data[o];
			frames[i].len = ccb_be32_get(pb->data + o + 1);
			ccb_buf_append(&msgbody, pb->data + o + 5, frames[i].len);
			o += 5 + frames[i].len;
		}
		if (ccb_dissect_body(msgbody.data, msgbody.len, &m, err)) {
			free(frames);
			ccb_buf_free(&msgbody);
			return err ? err->code : CCB_ERR_NOMEM;
		}
		m.body = msgbody.data; /* the message owns it from here */
		m.dir = dir;
		m.frames = frames;
		m.nframes = nf;
		if (d->nmsgs == d->cap_msgs) {
			size_t ncap = d->cap_msgs ? 2 * d->cap_msgs : 16;
			ccb_dissect_msg *p = realloc(d->msgs, ncap * sizeof *p);
			if (!p) {
				ccb_dissect_msg_clear(&m);
				return ccb_error_set(err, CCB_ERR_NOMEM, "dissector");
			}
			d->msgs = p;
			d->cap_msgs = ncap;
		}
		d->msgs[d->nmsgs++] = m;
		memmove(pb->data, pb->data + off, pb->len - off);
		pb->len -= off;
	}
}

ccb_err ccb_dissector_feed(ccb_dissector *d, ccb_dissect_dir dir, const uint8_t *p, size_t n,
			   ccb_error *err)
{
	if (dir != CCB_DIR_C2S && dir != CCB_DIR_S2C)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "bad direction %d", (int)dir);
	if (d->failed[dir])
		return CCB_OK;
	if (!ccb_buf_append(&d->pending[dir], p, n))
		return ccb_error_set(err, CCB_ERR_NOMEM, "dissector");
	return extract(d, dir, err);
}

/* ---- text rendering (decoded.md layout) --------------------------------- */

static bool render_item(ccb_buf *b, const ccb_dissect_item *it, bool first)
{
	const char *name;

	switch (it->kind) {
	case CCB_DISSECT_INT:
		name = first ? ccb_command_name(it->ival) : NULL;
		if (name)
			return ccb_buf_appendf(b, "    int %lld   (= %s)\n", (long long)it->ival, name);
		return ccb_buf_appendf(b, "    int %lld\n", (long long)it->ival);
	case CCB_DISSECT_STRING:
		return ccb_buf_appendf(b, "    string \"%s\"\n", it->text);
	case CCB_DISSECT_RAW:
		return ccb_buf_appendf(b, "    raw/undecoded %zu bytes: %.*s%s\n", it->nbytes,
				       it->nbytes > RAW_SHOWN ? 2 * RAW_SHOWN : (int)(2 * it->nbytes),
				       it->text, it->nbytes > RAW_SHOWN ? "..." : "");
	case CCB_DISSECT_CLASSAD:
		if (!ccb_buf_appendf(b, "    ClassAd, int %lld = attribute count:\n",
				     (long long)it->ival))
			return false;
		for (size_t i = 0; i < it->nattrs; i++) {
			const ccb_dissect_attr *a = &it->attrs[i];
			bool ok;
			if (a->kind == CCB_DISSECT_ATTR)
				ok = ccb_buf_appendf(b, "      %s\n", a->text);
			else if (a->kind == CCB_DISSECT_SECRET_CLEAR)
				ok = ccb_buf_appendf(b,
						     "      \"ZKM\" marker + secret attribute sent IN "
						     "CLEAR (no session key on this socket): %s\n",
						     a->text);
			else
				ok = ccb_buf_appendf(b,
						     "      \"ZKM\" marker + encrypted secret attribute "
						     "(%zu bytes = 8-byte length + string, encrypted): %s\n",
						     a->nbytes, a->text);
			if (!ok)
				return false;
		}
		return ccb_buf_appendf(b, "      MyType = \"%s\", TargetType = \"%s\"  (trailing strings)\n",
				       it->my_type, it->target_type);
	}
	return false;
}

ccb_err ccb_dissect_msg_text(const ccb_dissect_msg *m, size_t number, char **out, ccb_error *err)
{
	ccb_buf b;
	bool ok;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_dissect_msg_text: NULL out");
	*out = NULL;
	if (!m)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_dissect_msg_text: NULL message");
	ccb_buf_init(&b);
	ok = ccb_buf_appendf(&b, "%zu. %s", number, m->dir == CCB_DIR_C2S ? "c2s" : "s2c");
	for (size_t i = 0; ok && i < m->nframes; i++)
		ok = ccb_buf_appendf(&b, " [end=%d len=%u]", m->frames[i].end, m->frames[i].len);
	ok = ok && ccb_buf_append(&b, "\n", 1);
	for (size_t i = 0; ok && i < m->nitems; i++)
		/* A leading int is named as a command only when more follows:
		 * a lone int is a status or method bit, not a command. */
		ok = render_item(&b, &m->items[i], i == 0 && m->nitems > 1);
	if (!ok || !(*out = ccb_buf_steal_str(&b))) {
		ccb_buf_free(&b);
		return ccb_error_set(err, CCB_ERR_NOMEM, "text of message %zu: out of memory", number);
	}
	return CCB_OK;
}
