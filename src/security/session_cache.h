/*
 * Security session cache (security-handshake.md §9.1): session id ->
 * {key, policy ad, expiry, lease}, plus the client's map
 * {address, command} -> session id. Internal.
 *
 * Expiry follows KeyCacheEntry (H:src/condor_utils/KeyCache.cpp:64-107):
 * an entry expires at the earlier of its absolute expiry and last use +
 * lease (0 = none for either); it is expired once that time is strictly
 * in the past; every successful lookup renews the lease. Expired entries
 * are dropped when looked up (and by ccb__sess_expire). Times are seconds
 * on any clock the caller uses consistently (ccb_now_ms() / 1000 is a good
 * choice); passing them in keeps the cache testable.
 *
 * The cache is a hash table on the id (add, lookup, remove in O(1)) with a
 * min-heap in expiration order (expiry and eviction in O(log n)). It is
 * bounded: adding to a full cache first drops expired entries, else the
 * entry that would expire soonest; among entries with no time limit, the
 * least recently used. Memory is about 130 bytes per entry plus its id and
 * policy text (see docs/performance.md). The client map holds at most 128
 * mappings per session slot, dropping the oldest. Keys are wiped when an
 * entry is replaced, removed or evicted. All functions are thread-safe.
 *
 * Included by: src/security (the handshake behind ccb_sec_sessions) and
 * test/security. Not by the layers above.
 */
#ifndef CCB_SECURITY_SESSION_CACHE_H
#define CCB_SECURITY_SESSION_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccb/classad.h"
#include "ccb/error.h"

#define CCB_SESS_KEY_MAX 32
#define CCB_SESS_DEFAULT_MAX 4096

typedef struct ccb__sess_cache ccb__sess_cache;

/* What goes in, and what a lookup hands back (a copy). */
typedef struct ccb__sess_entry {
	char *id;                        /* lookup: malloc'd copy */
	uint8_t key[CCB_SESS_KEY_MAX];
	size_t key_len;
	int crypto;                      /* CCB_SEC_CRYPTO_* of the key */
	ccb_classad *policy;             /* add: copied; lookup: caller's copy (may be NULL) */
	int64_t expiry;                  /* absolute; 0 = no lifetime limit */
	int64_t lease;                   /* seconds of allowed idleness; 0 = no lease */
} ccb__sess_entry;

/* max_entries 0 means CCB_SESS_DEFAULT_MAX. NULL when out of memory. */
ccb__sess_cache *ccb__sess_cache_new(size_t max_entries);
/* Wipes every key. NULL is allowed. */
void ccb__sess_cache_free(ccb__sess_cache *c);

/*
 * Add (or replace) a session; `now` starts its lease. id, key and policy
 * are copied (policy may be NULL). Errors: CCB_ERR_INVALID_ARG (empty id,
 * key longer than 32 bytes), CCB_ERR_NOMEM.
 */
ccb_err ccb__sess_add(ccb__sess_cache *c, const ccb__sess_entry *e, int64_t now, ccb_error *err);

/*
 * Find a live session and renew its lease. `out` (may be NULL) receives
 * copies to release with ccb__sess_entry_clear(). CCB_ERR_NOT_FOUND when
 * unknown or expired (an expired entry is removed).
 */
ccb_err ccb__sess_lookup(ccb__sess_cache *c, const char *id, int64_t now, ccb__sess_entry *out);

/* Remove a session and every client-map entry naming it. False if unknown. */
bool ccb__sess_remove(ccb__sess_cache *c, const char *id);

/* Drop every expired entry; returns how many. */
size_t ccb__sess_expire(ccb__sess_cache *c, int64_t now);

/* Number of entries (live or not yet noticed as expired). */
size_t ccb__sess_count(ccb__sess_cache *c);

/* Free a lookup result's copies and wipe its key. */
void ccb__sess_entry_clear(ccb__sess_entry *e);

/* ---- client map: {dialed address, command} -> session id --------------- */

/* Map one command. Errors: CCB_ERR_INVALID_ARG, CCB_ERR_NOMEM. */
ccb_err ccb__sess_map_set(ccb__sess_cache *c, const char *addr, int64_t cmd, const char *sid,
			  ccb_error *err);

/* Map every command of a ValidCommands list (H:condor_secman.cpp:2660-2684).
 * Non-numeric items are skipped. */
ccb_err ccb__sess_map_commands(ccb__sess_cache *c, const char *addr, const char *valid_commands,
			       const char *sid, ccb_error *err);

/*
 * The live session for {addr, cmd}, as ccb__sess_lookup (lease renewed).
 * A mapping whose session is gone is dropped. CCB_ERR_NOT_FOUND otherwise.
 */
ccb_err ccb__sess_map_lookup(ccb__sess_cache *c, const char *addr, int64_t cmd, int64_t now,
			     ccb__sess_entry *out);

/* The cache behind a public ccb_sec_sessions store (tests seed it). */
struct ccb_sec_sessions;
ccb__sess_cache *ccb__sec_sessions_cache(struct ccb_sec_sessions *s);

#endif
