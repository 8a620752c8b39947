#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "security/policy.h"
#include "security/session_cache.h"
#include "util/util.h"

/* Client-map entries allowed per session slot: a ValidCommands list holds
 * about 50 commands (security-handshake.md §4.3 capture). */
#define MAP_PER_SESSION 128

typedef struct sess {
	ccb__sess_entry e;   /* id, key, crypto, policy, expiry, lease */
	int64_t last_use;    /* lease base (KeyCacheEntry::renewLease) */
	uint64_t use_seq;    /* recency for eviction */
} sess;

typedef struct map_item {
	char *addr;
	int64_t cmd;
	char *sid;
} map_item;

struct ccb__sess_cache {
	pthread_mutex_t lock;
	size_t max;
	sess *s;
	size_t n;
	map_item *m;
	size_t nm, cap_m;
	uint64_t seq;
};

ccb__sess_cache *ccb__sess_cache_new(size_t max_entries)
{
	ccb__sess_cache *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->max = max_entries ? max_entries : CCB_SESS_DEFAULT_MAX;
	c->s = calloc(c->max, sizeof *c->s);
	if (!c->s || pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c->s);
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

static void map_item_free(map_item *m)
{
	free(m->addr);
	free(m->sid);
}

/* Drop every mapping to `sid` (SecMan::invalidateKey, H:condor_secman.cpp:3170-3207). */
static void unmap_sid(ccb__sess_cache *c, const char *sid)
{
	size_t j = 0;

	for (size_t i = 0; i < c->nm; i++) {
		if (!strcmp(c->m[i].sid, sid))
			map_item_free(&c->m[i]);
		else
			c->m[j++] = c->m[i];
	}
	c->nm = j;
}

/* Remove slot i (wiping its key); the last slot takes its place. */
static void drop(ccb__sess_cache *c, size_t i)
{
	unmap_sid(c, c->s[i].e.id);
	ccb__sess_entry_clear(&c->s[i].e);
	c->s[i] = c->s[--c->n];
	memset(&c->s[c->n], 0, sizeof c->s[c->n]);
}

void ccb__sess_cache_free(ccb__sess_cache *c)
{
	if (!c)
		return;
	while (c->n)
		drop(c, c->n - 1);
	for (size_t i = 0; i < c->nm; i++)
		map_item_free(&c->m[i]);
	free(c->m);
	free(c->s);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* KeyCacheEntry::expiration: the sooner of the two, 0 = none. */
static int64_t expiration(const sess *s)
{
	int64_t lease_exp = s->e.lease ? s->last_use + s->e.lease : 0;

	if (s->e.expiry && (!lease_exp || s->e.expiry < lease_exp))
		return s->e.expiry;
	return lease_exp;
}

/* Expired once the time is strictly past (SecMan::expireSessions uses <). */
static bool expired(const sess *s, int64_t now)
{
	int64_t t = expiration(s);
	return t && t < now;
}

static long find(const ccb__sess_cache *c, const char *id)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->s[i].e.id, id))
			return (long)i;
	return -1;
}

static size_t expire_locked(ccb__sess_cache *c, int64_t now)
{
	size_t dropped = 0;

	for (size_t i = c->n; i-- > 0;)
		if (expired(&c->s[i], now)) {
			drop(c, i);
			dropped++;
		}
	return dropped;
}

/* Room for one more: drop expired entries, then the least recently used. */
static void make_room(ccb__sess_cache *c, int64_t now)
{
	size_t lru = 0;

	if (c->n < c->max || expire_locked(c, now))
		return;
	for (size_t i = 1; i < c->n; i++)
		if (c->s[i].use_seq < c->s[lru].use_seq)
			lru = i;
	drop(c, lru);
}

/* Deep copy of the caller's entry into a slot. */
static bool fill(sess *s, const ccb__sess_entry *e, int64_t now, uint64_t seq)
{
	memset(s, 0, sizeof *s);
	s->e.id = ccb_strdup(e->id);
	s->e.policy = e->policy ? ccb_classad_copy(e->policy) : NULL;
	if (!s->e.id || (e->policy && !s->e.policy)) {
		ccb__sess_entry_clear(&s->e);
		return false;
	}
	memcpy(s->e.key, e->key, e->key_len);
	s->e.key_len = e->key_len;
	s->e.crypto = e->crypto;
	s->e.expiry = e->expiry;
	s->e.lease = e->lease;
	s->last_use = now;
	s->use_seq = seq;
	return true;
}

ccb_err ccb__sess_add(ccb__sess_cache *c, const ccb__sess_entry *e, int64_t now, ccb_error *err)
{
	sess fresh;
	long i;

	if (!c || !e || !e->id || !*e->id || e->key_len > CCB_SESS_KEY_MAX)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "session cache: bad session");
	pthread_mutex_lock(&c->lock);
	if (!fill(&fresh, e, now, ++c->seq)) {
		pthread_mutex_unlock(&c->lock);
		return ccb_error_set(err, CCB_ERR_NOMEM, "session cache: out of memory");
	}
	i = find(c, e->id);
	if (i >= 0) {
		/* Replacing keeps the client map: it names the same id. */
		ccb__sess_entry_clear(&c->s[i].e);
	} else {
		make_room(c, now);
		i = (long)c->n++;
	}
	c->s[i] = fresh;
	OPENSSL_cleanse(fresh.e.key, sizeof fresh.e.key);
	pthread_mutex_unlock(&c->lock);
	return CCB_OK;
}

static bool copy_out(const sess *s, ccb__sess_entry *out)
{
	*out = s->e;
	out->id = ccb_strdup(s->e.id);
	out->policy = s->e.policy ? ccb_classad_copy(s->e.policy) : NULL;
	if (!out->id || (s->e.policy && !out->policy)) {
		ccb__sess_entry_clear(out);
		return false;
	}
	return true;
}

/* Find a live entry, renew its lease, copy it out. Lock held. */
static ccb_err lookup_locked(ccb__sess_cache *c, const char *id, int64_t now,
			     ccb__sess_entry *out)
{
	long i = find(c, id);

	if (i < 0)
		return CCB_ERR_NOT_FOUND;
	if (expired(&c->s[i], now)) {
		drop(c, (size_t)i);
		return CCB_ERR_NOT_FOUND;
	}
	c->s[i].last_use = now;
	c->s[i].use_seq = ++c->seq;
	if (out && !copy_out(&c->s[i], out))
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
	rc = lookup_locked(c, id, now, out);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

bool ccb__sess_remove(ccb__sess_cache *c, const char *id)
{
	long i;

	if (!c || !id)
		return false;
	pthread_mutex_lock(&c->lock);
	i = find(c, id);
	if (i >= 0)
		drop(c, (size_t)i);
	pthread_mutex_unlock(&c->lock);
	return i >= 0;
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

static long map_find(const ccb__sess_cache *c, const char *addr, int64_t cmd)
{
	for (size_t i = 0; i < c->nm; i++)
		if (c->m[i].cmd == cmd && !strcmp(c->m[i].addr, addr))
			return (long)i;
	return -1;
}

static void map_drop(ccb__sess_cache *c, size_t i)
{
	map_item_free(&c->m[i]);
	memmove(&c->m[i], &c->m[i + 1], (c->nm - i - 1) * sizeof *c->m);
	c->nm--;
}

static ccb_err map_set_locked(ccb__sess_cache *c, const char *addr, int64_t cmd, const char *sid)
{
	long i = map_find(c, addr, cmd);
	char *s = ccb_strdup(sid), *a;

	if (!s)
		return CCB_ERR_NOMEM;
	if (i >= 0) {
		free(c->m[i].sid);
		c->m[i].sid = s;
		return CCB_OK;
	}
	if (!(a = ccb_strdup(addr))) {
		free(s);
		return CCB_ERR_NOMEM;
	}
	/* Bounded: the oldest mapping goes first. */
	if (c->nm >= c->max * MAP_PER_SESSION)
		map_drop(c, 0);
	if (c->nm == c->cap_m) {
		size_t cap = c->cap_m ? c->cap_m * 2 : 64;
		map_item *m = realloc(c->m, cap * sizeof *m);
		if (!m) {
			free(s);
			free(a);
			return CCB_ERR_NOMEM;
		}
		c->m = m;
		c->cap_m = cap;
	}
	c->m[c->nm++] = (map_item){.addr = a, .cmd = cmd, .sid = s};
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
	long i;
	ccb_err rc = CCB_ERR_NOT_FOUND;

	if (out)
		memset(out, 0, sizeof *out);
	if (!c || !addr)
		return CCB_ERR_INVALID_ARG;
	pthread_mutex_lock(&c->lock);
	i = map_find(c, addr, cmd);
	if (i >= 0) {
		rc = lookup_locked(c, c->m[i].sid, now, out);
		/* lookup_locked may have dropped an expired session and its
		 * mappings; drop a mapping to a session that was never there. */
		if (rc == CCB_ERR_NOT_FOUND && (i = map_find(c, addr, cmd)) >= 0)
			map_drop(c, (size_t)i);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}
