/*
 * The session cache: a chained hash table on the session id for O(1) add,
 * lookup and remove, plus a binary min-heap ordered by expiration time (an
 * entry with no limit sorts last; equal times by least recent use) for
 * expiry and eviction in O(log n). Each entry is one allocation: the fixed
 * part and the id. The policy ad is kept as text ("Name = value" lines),
 * shared between entries with the same text (reference counted), and is
 * parsed back into an ad only when a lookup asks for it (resumptions are
 * rare next to negotiations; a text costs a fraction of a live ad).
 *
 * The client map {address, command} -> session id is a second hash table
 * whose items are also kept in insertion order, so the oldest mapping goes
 * first when the map is full.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "classad/classad_internal.h"
#include "security/policy.h"
#include "security/session_cache.h"
#include "util/util.h"

/* Client-map entries allowed per session slot: a ValidCommands list holds
 * about 50 commands (security-handshake.md §4.3 capture). */
#define MAP_PER_SESSION 128

typedef struct sess {
	struct sess *hnext;  /* hash chain (the id's hash is recomputed when needed) */
	int64_t expiry;      /* absolute; 0 = none */
	int64_t lease;       /* 0 = none */
	int64_t last_use;    /* lease base (KeyCacheEntry::renewLease) */
	uint64_t use_seq;    /* recency: heap tie-break */
	uint32_t heap_i;
	uint8_t key_len;
	uint8_t crypto;
	uint8_t key[CCB_SESS_KEY_MAX];
	struct pol *policy;  /* shared policy text, or NULL */
	char data[];         /* the id */
} sess;

/* Policy texts are shared: sessions negotiated by the same kind of peer
 * (same identity, method and version) hold one copy between them. */
typedef struct pol {
	struct pol *next;
	uint64_t h;
	size_t refs;
	char text[];
} pol;

typedef struct map_item {
	struct map_item *hnext;
	struct map_item *prev, *next; /* insertion order */
	uint64_t h;                   /* hash of {addr, cmd} */
	uint64_t sid_h;               /* hash of the session id */
	int64_t cmd;
	char *sid;                    /* into addr's allocation */
	char addr[];                  /* addr '\0' sid '\0' */
} map_item;

struct ccb__sess_cache {
	pthread_mutex_t lock;
	size_t max;
	sess **tab;         /* hash buckets, power of two */
	size_t nb, n;
	sess **heap;
	size_t heap_cap;
	map_item **mtab;
	size_t mnb, nm;
	map_item *mlist;    /* sentinel of the insertion-order list (its own
			     * allocation: map_item ends in a flexible array) */
	uint64_t seq;
	pol **ptab;         /* interned policy texts */
	size_t pnb, np;
};

/* FNV-1a, finished with a 64-bit mixer so that the low bits are usable. */
static uint64_t hash_str(const char *s, uint64_t h)
{
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	return h;
}

static uint64_t mix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return k;
}

static uint64_t hash_id(const char *id)
{
	return mix(hash_str(id, 0xcbf29ce484222325ULL));
}

static uint64_t hash_map(const char *addr, int64_t cmd)
{
	return mix(hash_str(addr, 0xcbf29ce484222325ULL) ^ (uint64_t)cmd * 0x9e3779b97f4a7c15ULL);
}

/* The shared copy of a policy text, one reference more. Lock held. */
static pol *pol_intern(ccb__sess_cache *c, const char *text)
{
	uint64_t h = hash_id(text);
	size_t len = strlen(text) + 1;
	pol *p;

	if (c->np + 1 > c->pnb) {
		size_t nb = c->pnb ? c->pnb * 2 : 16;
		pol **t = calloc(nb, sizeof *t);
		if (!t)
			return NULL;
		for (size_t i = 0; i < c->pnb; i++)
			for (pol *q = c->ptab[i], *next; q; q = next) {
				next = q->next;
				q->next = t[q->h & (nb - 1)];
				t[q->h & (nb - 1)] = q;
			}
		free(c->ptab);
		c->ptab = t;
		c->pnb = nb;
	}
	for (p = c->ptab[h & (c->pnb - 1)]; p; p = p->next)
		if (p->h == h && !strcmp(p->text, text)) {
			p->refs++;
			return p;
		}
	if (!(p = malloc(sizeof *p + len)))
		return NULL;
	p->h = h;
	p->refs = 1;
	memcpy(p->text, text, len);
	p->next = c->ptab[h & (c->pnb - 1)];
	c->ptab[h & (c->pnb - 1)] = p;
	c->np++;
	return p;
}

/* Drop a reference; the last one frees the text. Lock held. */
static void pol_unref(ccb__sess_cache *c, pol *p)
{
	pol **pp;

	if (!p || --p->refs)
		return;
	for (pp = &c->ptab[p->h & (c->pnb - 1)]; *pp != p; pp = &(*pp)->next)
		;
	*pp = p->next;
	c->np--;
	OPENSSL_cleanse(p->text, strlen(p->text));
	free(p);
}

ccb__sess_cache *ccb__sess_cache_new(size_t max_entries)
{
	ccb__sess_cache *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->max = max_entries ? max_entries : CCB_SESS_DEFAULT_MAX;
	if (c->max > UINT32_MAX)
		c->max = UINT32_MAX;
	if (!(c->mlist = calloc(1, sizeof *c->mlist))) {
		free(c);
		return NULL;
	}
	c->mlist->prev = c->mlist->next = c->mlist;
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c->mlist);
		free(c);
		return NULL;
	}
	return c;
}

void ccb__sess_entry_clear(ccb__sess_entry *e)
{
	if (!e)
		return;
	free(e->id);
	ccb_classad_free(e->policy);
	OPENSSL_cleanse(e->key, sizeof e->key);
	memset(e, 0, sizeof *e);
}

static const char *sess_id(const sess *s)
{
	return s->data;
}

/* ---- expiry order (min-heap) ------------------------------------------------ */

/* KeyCacheEntry::expiration: the sooner of the two, 0 = none. */
static int64_t expiration(const sess *s)
{
	int64_t lease_exp = s->lease ? s->last_use + s->lease : 0;

	if (s->expiry && (!lease_exp || s->expiry < lease_exp))
		return s->expiry;
	return lease_exp;
}

/* Expired once the time is strictly past (SecMan::expireSessions uses <). */
static bool expired(const sess *s, int64_t now)
{
	int64_t t = expiration(s);
	return t && t < now;
}

static bool heap_less(const sess *a, const sess *b)
{
	int64_t ea = expiration(a), eb = expiration(b);

	if (!ea)
		ea = INT64_MAX;
	if (!eb)
		eb = INT64_MAX;
	return ea != eb ? ea < eb : a->use_seq < b->use_seq;
}

static void heap_set(ccb__sess_cache *c, size_t i, sess *s)
{
	c->heap[i] = s;
	s->heap_i = (uint32_t)i;
}

static void heap_up(ccb__sess_cache *c, size_t i)
{
	sess *s = c->heap[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!heap_less(s, c->heap[p]))
			break;
		heap_set(c, i, c->heap[p]);
		i = p;
	}
	heap_set(c, i, s);
}

static void heap_down(ccb__sess_cache *c, size_t i)
{
	sess *s = c->heap[i];

	for (;;) {
		size_t l = 2 * i + 1, m = i;
		const sess *best = s;
		if (l < c->n && heap_less(c->heap[l], best))
			m = l, best = c->heap[l];
		if (l + 1 < c->n && heap_less(c->heap[l + 1], best))
			m = l + 1;
		if (m == i)
			break;
		heap_set(c, i, c->heap[m]);
		i = m;
	}
	heap_set(c, i, s);
}

/* Re-place an entry whose expiration or recency changed. */
static void heap_fix(ccb__sess_cache *c, size_t i)
{
	sess *s = c->heap[i];

	heap_up(c, i);
	heap_down(c, s->heap_i);
}

/* ---- the id table ----------------------------------------------------------- */

static sess **bucket(const ccb__sess_cache *c, uint64_t h)
{
	return &c->tab[h & (c->nb - 1)];
}

static sess *find(const ccb__sess_cache *c, const char *id, uint64_t h)
{
	if (!c->nb)
		return NULL;
	for (sess *s = *bucket(c, h); s; s = s->hnext)
		if (!strcmp(sess_id(s), id))
			return s;
	return NULL;
}

/* Room in the table and the heap for one more entry (load factor <= 1). */
static bool reserve(ccb__sess_cache *c)
{
	if (c->n + 1 > c->heap_cap) {
		size_t cap = c->heap_cap ? c->heap_cap * 2 : 64;
		sess **h;
		if (cap > c->max)
			cap = c->max;
		if (!(h = realloc(c->heap, cap * sizeof *h)))
			return false;
		c->heap = h;
		c->heap_cap = cap;
	}
	if (c->n + 1 > c->nb) {
		size_t nb = c->nb ? c->nb * 2 : 64;
		sess **t = calloc(nb, sizeof *t);
		if (!t)
			return false;
		for (size_t i = 0; i < c->nb; i++)
			for (sess *s = c->tab[i], *next; s; s = next) {
				size_t j = hash_id(sess_id(s)) & (nb - 1);
				next = s->hnext;
				s->hnext = t[j];
				t[j] = s;
			}
		free(c->tab);
		c->tab = t;
		c->nb = nb;
	}
	return true;
}

static void map_unlink(ccb__sess_cache *c, map_item *m);

/* Drop every mapping to a session (SecMan::invalidateKey,
 * H:condor_secman.cpp:3170-3207). Only clients have mappings. */
static void unmap_sid(ccb__sess_cache *c, const char *sid, uint64_t sid_h)
{
	map_item *m = c->mlist->next, *next;

	for (; c->nm && m != c->mlist; m = next) {
		next = m->next;
		if (m->sid_h == sid_h && !strcmp(m->sid, sid))
			map_unlink(c, m);
	}
}

/* Lock held (the policy reference). */
static void sess_free(ccb__sess_cache *c, sess *s)
{
	pol_unref(c, s->policy);
	OPENSSL_cleanse(s->key, sizeof s->key);
	free(s);
}

/* Remove an entry from the table, the heap and the client map; free it. */
static void drop(ccb__sess_cache *c, sess *s)
{
	size_t i = s->heap_i;
	uint64_t h = hash_id(sess_id(s));
	sess **pp = bucket(c, h);

	while (*pp != s)
		pp = &(*pp)->hnext;
	*pp = s->hnext;
	c->n--;
	if (i != c->n) {
		heap_set(c, i, c->heap[c->n]);
		heap_fix(c, i);
	}
	c->heap[c->n] = NULL;
	unmap_sid(c, sess_id(s), h);
	sess_free(c, s);
}

void ccb__sess_cache_free(ccb__sess_cache *c)
{
	if (!c)
		return;
	while (c->n)
		drop(c, c->heap[c->n - 1]);
	while (c->nm)
		map_unlink(c, c->mlist->next);
	free(c->heap);
	free(c->tab);
	free(c->mtab);
	free(c->ptab);
	free(c->mlist);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static size_t expire_locked(ccb__sess_cache *c, int64_t now)
{
	size_t dropped = 0;

	while (c->n && expired(c->heap[0], now)) {
		drop(c, c->heap[0]);
		dropped++;
	}
	return dropped;
}

/* Room for one more: drop expired entries, else the one that would expire
 * soonest (entries without a limit: the least recently used). */
static void make_room(ccb__sess_cache *c, int64_t now)
{
	if (c->n < c->max || expire_locked(c, now))
		return;
	drop(c, c->heap[0]);
}

/* A new entry: one allocation holding the id; the policy is attached
 * under the lock. */
static sess *sess_make(const ccb__sess_entry *e, int64_t now)
{
	size_t il = strlen(e->id) + 1;
	sess *s = malloc(sizeof *s + il);

	if (!s)
		return NULL;
	memset(s, 0, sizeof *s);
	memcpy(s->data, e->id, il);
	memcpy(s->key, e->key, e->key_len);
	s->key_len = (uint8_t)e->key_len;
	s->crypto = (uint8_t)e->crypto;
	s->expiry = e->expiry;
	s->lease = e->lease;
	s->last_use = now;
	return s;
}

ccb_err ccb__sess_add(ccb__sess_cache *c, const ccb__sess_entry *e, int64_t now, ccb_error *err)
{
	sess *s, *old;
	char *text = NULL;
	uint64_t h;

	if (!c || !e || !e->id || !*e->id || e->key_len > CCB_SESS_KEY_MAX || e->crypto < 0 ||
	    e->crypto > 255)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "session cache: bad session");
	if ((e->policy && !(text = ccb__classad_to_text(e->policy))) || !(s = sess_make(e, now))) {
		free(text);
		return ccb_error_set(err, CCB_ERR_NOMEM, "session cache: out of memory");
	}
	pthread_mutex_lock(&c->lock);
	if (text && !(s->policy = pol_intern(c, text))) {
		pthread_mutex_unlock(&c->lock);
		free(text);
		free(s);
		return ccb_error_set(err, CCB_ERR_NOMEM, "session cache: out of memory");
	}
	free(text);
	s->use_seq = ++c->seq;
	h = hash_id(sess_id(s));
	old = find(c, sess_id(s), h);
	if (old) {
		/* Replacing keeps the client map: it names the same id. */
		sess **pp = bucket(c, h);
		while (*pp != old)
			pp = &(*pp)->hnext;
		*pp = s;
		s->hnext = old->hnext;
		heap_set(c, old->heap_i, s);
		heap_fix(c, s->heap_i);
		sess_free(c, old);
	} else {
		make_room(c, now);
		if (!reserve(c)) {
			sess_free(c, s);
			pthread_mutex_unlock(&c->lock);
			return ccb_error_set(err, CCB_ERR_NOMEM, "session cache: out of memory");
		}
		s->hnext = *bucket(c, h);
		*bucket(c, h) = s;
		heap_set(c, c->n++, s);
		heap_up(c, s->heap_i);
	}
	pthread_mutex_unlock(&c->lock);
	return CCB_OK;
}

/* Parse the stored policy text back into an ad. */
static ccb_classad *policy_ad(const char *text)
{
	ccb_classad *ad = ccb__classad_new();
	const char *p = text;

	if (!ad)
		return NULL;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		char *line = ccb_strndup(p, n);
		if (!line || ccb_classad_parse_line(ad, line, NULL) != CCB_OK) {
			free(line);
			ccb_classad_free(ad);
			return NULL;
		}
		free(line);
		p += n + (nl ? 1 : 0);
	}
	return ad;
}

static bool copy_out(const sess *s, ccb__sess_entry *out)
{
	memset(out, 0, sizeof *out);
	out->id = ccb_strdup(sess_id(s));
	out->policy = s->policy ? policy_ad(s->policy->text) : NULL;
	if (!out->id || (s->policy && !out->policy)) {
		ccb__sess_entry_clear(out);
		return false;
	}
	memcpy(out->key, s->key, s->key_len);
	out->key_len = s->key_len;
	out->crypto = s->crypto;
	out->expiry = s->expiry;
	out->lease = s->lease;
	return true;
}

/* Find a live entry, renew its lease, copy it out. Lock held. */
static ccb_err lookup_locked(ccb__sess_cache *c, const char *id, uint64_t h, int64_t now,
			     ccb__sess_entry *out)
{
	sess *s = find(c, id, h);

	if (!s)
		return CCB_ERR_NOT_FOUND;
	if (expired(s, now)) {
		drop(c, s);
		return CCB_ERR_NOT_FOUND;
	}
	s->last_use = now;
	s->use_seq = ++c->seq;
	heap_fix(c, s->heap_i);
	if (out && !copy_out(s, out))
		return CCB_ERR_NOMEM;
	return CCB_OK;
}

ccb_err ccb__sess_lookup(ccb__sess_cache *c, const char *id, int64_t now, ccb__sess_entry *out)
{
	ccb_err rc;

	if (out)
		memset(out, 0, sizeof *out);
	if (!c || !id)
		return CCB_ERR_INVALID_ARG;
	pthread_mutex_lock(&c->lock);
	rc = lookup_locked(c, id, hash_id(id), now, out);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

bool ccb__sess_remove(ccb__sess_cache *c, const char *id)
{
	sess *s;

	if (!c || !id)
		return false;
	pthread_mutex_lock(&c->lock);
	s = find(c, id, hash_id(id));
	if (s)
		drop(c, s);
	pthread_mutex_unlock(&c->lock);
	return s != NULL;
}

size_t ccb__sess_expire(ccb__sess_cache *c, int64_t now)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = expire_locked(c, now);
	pthread_mutex_unlock(&c->lock);
	return n;
}

size_t ccb__sess_count(ccb__sess_cache *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->n;
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* ---- client map ------------------------------------------------------------ */

static map_item **mbucket(const ccb__sess_cache *c, uint64_t h)
{
	return &c->mtab[h & (c->mnb - 1)];
}

static map_item *map_find(const ccb__sess_cache *c, const char *addr, int64_t cmd, uint64_t h)
{
	if (!c->mnb)
		return NULL;
	for (map_item *m = *mbucket(c, h); m; m = m->hnext)
		if (m->h == h && m->cmd == cmd && !strcmp(m->addr, addr))
			return m;
	return NULL;
}

static void map_unlink(ccb__sess_cache *c, map_item *m)
{
	map_item **pp = mbucket(c, m->h);

	while (*pp != m)
		pp = &(*pp)->hnext;
	*pp = m->hnext;
	m->prev->next = m->next;
	m->next->prev = m->prev;
	c->nm--;
	free(m);
}

static bool map_reserve(ccb__sess_cache *c)
{
	size_t nb;
	map_item **t;

	if (c->nm + 1 <= c->mnb)
		return true;
	nb = c->mnb ? c->mnb * 2 : 64;
	if (!(t = calloc(nb, sizeof *t)))
		return false;
	for (size_t i = 0; i < c->mnb; i++)
		for (map_item *m = c->mtab[i], *next; m; m = next) {
			next = m->hnext;
			m->hnext = t[m->h & (nb - 1)];
			t[m->h & (nb - 1)] = m;
		}
	free(c->mtab);
	c->mtab = t;
	c->mnb = nb;
	return true;
}

static ccb_err map_set_locked(ccb__sess_cache *c, const char *addr, int64_t cmd, const char *sid)
{
	uint64_t h = hash_map(addr, cmd);
	size_t al = strlen(addr) + 1, sl = strlen(sid) + 1;
	map_item *old = map_find(c, addr, cmd, h), *m;

	if (old && !strcmp(old->sid, sid))
		return CCB_OK;
	if (!(m = malloc(sizeof *m + al + sl)))
		return CCB_ERR_NOMEM;
	memcpy(m->addr, addr, al);
	m->sid = m->addr + al;
	memcpy(m->sid, sid, sl);
	m->h = h;
	m->sid_h = hash_id(sid);
	m->cmd = cmd;
	if (old)
		map_unlink(c, old);
	/* Bounded: the oldest mapping goes first. */
	else if (c->nm >= c->max * MAP_PER_SESSION)
		map_unlink(c, c->mlist->next);
	if (!map_reserve(c)) {
		free(m);
		return CCB_ERR_NOMEM;
	}
	m->hnext = *mbucket(c, h);
	*mbucket(c, h) = m;
	m->prev = c->mlist->prev;
	m->next = c->mlist;
	c->mlist->prev->next = m;
	c->mlist->prev = m;
	c->nm++;
	return CCB_OK;
}

ccb_err ccb__sess_map_set(ccb__sess_cache *c, const char *addr, int64_t cmd, const char *sid,
			  ccb_error *err)
{
	ccb_err rc;

	if (!c || !addr || !sid || !*sid)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "session map: bad arguments");
	pthread_mutex_lock(&c->lock);
	rc = map_set_locked(c, addr, cmd, sid);
	pthread_mutex_unlock(&c->lock);
	return rc ? ccb_error_set(err, rc, "session map: out of memory") : CCB_OK;
}

/* A whole item as a decimal command number. */
static bool parse_cmd(const char *t, size_t n, int64_t *cmd)
{
	char buf[24];
	char *end;

	if (n == 0 || n >= sizeof buf)
		return false;
	memcpy(buf, t, n);
	buf[n] = '\0';
	errno = 0;
	*cmd = strtoll(buf, &end, 10);
	return !errno && *end == '\0';
}

ccb_err ccb__sess_map_commands(ccb__sess_cache *c, const char *addr, const char *valid_commands,
			       const char *sid, ccb_error *err)
{
	const char *p = valid_commands, *t;
	size_t n;
	int64_t cmd;
	ccb_err rc = CCB_OK;

	if (!c || !addr || !sid || !*sid)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "session map: bad arguments");
	pthread_mutex_lock(&c->lock);
	while (!rc && (t = ccb__sec_list_next(&p, &n)))
		if (parse_cmd(t, n, &cmd))
			rc = map_set_locked(c, addr, cmd, sid);
	pthread_mutex_unlock(&c->lock);
	return rc ? ccb_error_set(err, rc, "session map: out of memory") : CCB_OK;
}

ccb_err ccb__sess_map_lookup(ccb__sess_cache *c, const char *addr, int64_t cmd, int64_t now,
			     ccb__sess_entry *out)
{
	map_item *m;
	uint64_t h;
	ccb_err rc = CCB_ERR_NOT_FOUND;

	if (out)
		memset(out, 0, sizeof *out);
	if (!c || !addr)
		return CCB_ERR_INVALID_ARG;
	h = hash_map(addr, cmd);
	pthread_mutex_lock(&c->lock);
	m = map_find(c, addr, cmd, h);
	if (m) {
		rc = lookup_locked(c, m->sid, m->sid_h, now, out);
		/* lookup_locked may have dropped an expired session and its
		 * mappings; drop a mapping to a session that was never there. */
		if (rc == CCB_ERR_NOT_FOUND && (m = map_find(c, addr, cmd, h)))
			map_unlink(c, m);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}
