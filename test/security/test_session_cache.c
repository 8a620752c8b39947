/* The session cache (security-handshake.md §9.1): lifetime and lease
 * expiry, lease renewal on use, eviction, the client map, and a 4-thread
 * smoke test (run it under -DCCB_SANITIZE=thread too). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ccbt.h"
#include "security/policy.h"
#include "security/session_cache.h"
#include "classad/classad_internal.h"

static const uint8_t KEY[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
				17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static void add(ccb__sess_cache *c, const char *id, int64_t expiry, int64_t lease, int64_t now)
{
	ccb__sess_entry e = {.id = (char *)id, .key_len = 32, .crypto = CCB_SEC_CRYPTO_AES,
			     .expiry = expiry, .lease = lease};

	memcpy(e.key, KEY, sizeof KEY);
	CU_ASSERT_EQUAL(ccb__sess_add(c, &e, now, NULL), CCB_OK);
}

static bool live(ccb__sess_cache *c, const char *id, int64_t now)
{
	return ccb__sess_lookup(c, id, now, NULL) == CCB_OK;
}

static void test_add_lookup_copy(void)
{
	ccb__sess_cache *c = ccb__sess_cache_new(8);
	ccb__sess_entry e = {.id = "vm:1:2:0", .key_len = 32, .crypto = CCB_SEC_CRYPTO_AES,
			     .expiry = 1060, .lease = 3600};
	ccb__sess_entry got;
	const char *user;

	memcpy(e.key, KEY, 32);
	e.policy = ccb__classad_new();
	ccb_classad_set_string(e.policy, "User", "condor@vm");
	CU_ASSERT_EQUAL(ccb__sess_add(c, &e, 1000, NULL), CCB_OK);
	/* The cache holds its own copy of the policy. */
	ccb_classad_set_string(e.policy, "User", "changed");
	ccb_classad_free(e.policy);

	CU_ASSERT_EQUAL_FATAL(ccb__sess_lookup(c, "vm:1:2:0", 1001, &got), CCB_OK);
	CU_ASSERT_STRING_EQUAL(got.id, "vm:1:2:0");
	CU_ASSERT_EQUAL(got.key_len, 32);
	CU_ASSERT(memcmp(got.key, KEY, 32) == 0);
	CU_ASSERT_EQUAL(got.crypto, CCB_SEC_CRYPTO_AES);
	CU_ASSERT_EQUAL(got.expiry, 1060);
	CU_ASSERT_EQUAL(ccb_classad_get_string(got.policy, "User", &user), CCB_OK);
	CU_ASSERT_STRING_EQUAL(user, "condor@vm");
	ccb__sess_entry_clear(&got);
	CU_ASSERT_PTR_NULL(got.policy);
	CU_ASSERT_EQUAL(got.key[0], 0);

	CU_ASSERT_EQUAL(ccb__sess_lookup(c, "VM:1:2:0", 1001, NULL), CCB_ERR_NOT_FOUND);
	e.id = "";
	CU_ASSERT_EQUAL(ccb__sess_add(c, &e, 1000, NULL), CCB_ERR_INVALID_ARG);
	e.id = "x";
	e.key_len = 33;
	CU_ASSERT_EQUAL(ccb__sess_add(c, &e, 1000, NULL), CCB_ERR_INVALID_ARG);
	CU_ASSERT_TRUE(ccb__sess_remove(c, "vm:1:2:0"));
	CU_ASSERT_FALSE(ccb__sess_remove(c, "vm:1:2:0"));
	CU_ASSERT_EQUAL(ccb__sess_count(c), 0);
	ccb__sess_cache_free(c);
}

/* Absolute lifetime: valid through the expiry second, gone after it,
 * whatever the lease says. */
static void test_lifetime_expiry(void)
{
	ccb__sess_cache *c = ccb__sess_cache_new(8);

	add(c, "a", 1060, 3600, 1000);
	CU_ASSERT_TRUE(live(c, "a", 1059));
	CU_ASSERT_TRUE(live(c, "a", 1060));
	CU_ASSERT_FALSE(live(c, "a", 1061));
	/* Dropped on lookup: not even an earlier time finds it again. */
	CU_ASSERT_EQUAL(ccb__sess_count(c), 0);
	CU_ASSERT_FALSE(live(c, "a", 1000));

	/* No lifetime and no lease: never expires. */
	add(c, "forever", 0, 0, 1000);
	CU_ASSERT_TRUE(live(c, "forever", INT64_MAX / 2));
	ccb__sess_cache_free(c);
}

/* The lease expires an idle session before its lifetime; each use
 * renews it. */
static void test_lease_renewal(void)
{
	ccb__sess_cache *c = ccb__sess_cache_new(8);

	add(c, "s", 1000 + 86400, 100, 1000);
	CU_ASSERT_TRUE(live(c, "s", 1090));  /* renews: lease now to 1190 */
	CU_ASSERT_TRUE(live(c, "s", 1180));  /* renews: to 1280 */
	CU_ASSERT_TRUE(live(c, "s", 1280));
	CU_ASSERT_FALSE(live(c, "s", 1381)); /* idle 101 s */
	CU_ASSERT_EQUAL(ccb__sess_count(c), 0);

	/* Lease only (no lifetime). */
	add(c, "l", 0, 10, 0);
	CU_ASSERT_TRUE(live(c, "l", 10));
	CU_ASSERT_FALSE(live(c, "l", 21));

	/* Lifetime wins over a lease that keeps being renewed. */
	add(c, "both", 1050, 100, 1000);
	CU_ASSERT_TRUE(live(c, "both", 1040));
	CU_ASSERT_FALSE(live(c, "both", 1051));

	/* Replacing an id restarts it with the new values. */
	add(c, "r", 1010, 0, 1000);
	add(c, "r", 2000, 0, 1000);
	CU_ASSERT_TRUE(live(c, "r", 1500));
	CU_ASSERT_EQUAL(ccb__sess_count(c), 1);

	/* ccb__sess_expire sweeps. */
	add(c, "x1", 1100, 0, 1000);
	add(c, "x2", 1100, 0, 1000);
	CU_ASSERT_EQUAL(ccb__sess_expire(c, 1600), 2);
	CU_ASSERT_EQUAL(ccb__sess_count(c), 1);
	ccb__sess_cache_free(c);
}

static void test_eviction(void)
{
	ccb__sess_cache *c = ccb__sess_cache_new(3);

	add(c, "a", 0, 0, 1);
	add(c, "b", 0, 0, 2);
	add(c, "c", 0, 0, 3);
	CU_ASSERT_TRUE(live(c, "a", 4)); /* a is now the most recently used */
	add(c, "d", 0, 0, 5);            /* evicts b, the least recently used */
	CU_ASSERT_EQUAL(ccb__sess_count(c), 3);
	CU_ASSERT_FALSE(live(c, "b", 6));
	CU_ASSERT_TRUE(live(c, "a", 6));
	CU_ASSERT_TRUE(live(c, "c", 6));
	CU_ASSERT_TRUE(live(c, "d", 6));

	/* An expired entry goes before any live one. */
	ccb__sess_cache_free(c);
	c = ccb__sess_cache_new(2);
	add(c, "old", 0, 0, 1);
	add(c, "short", 20, 0, 10);
	add(c, "new", 0, 0, 30);
	CU_ASSERT_TRUE(live(c, "old", 31));
	CU_ASSERT_TRUE(live(c, "new", 31));
	CU_ASSERT_EQUAL(ccb__sess_count(c), 2);
	ccb__sess_cache_free(c);
}

/* The policy ad comes back with every type it went in with, including
 * strings that need escaping. */
static void test_policy_types(void)
{
	ccb__sess_cache *c = ccb__sess_cache_new(8);
	ccb__sess_entry e = {.id = "p", .key_len = 16, .crypto = CCB_SEC_CRYPTO_AES};
	ccb__sess_entry got;
	const char *v;
	bool bv = false;
	int64_t iv = 0;

	e.policy = ccb__classad_new();
	ccb_classad_set_string(e.policy, "User", "condor@vm");
	ccb_classad_set_string(e.policy, "TokenScopes", "a \"quoted\" \\ value");
	ccb_classad_set_string(e.policy, "Empty", "");
	ccb_classad_set_bool(e.policy, "Authenticated", true);
	ccb_classad_set_int(e.policy, "N", -42);
	CU_ASSERT_EQUAL(ccb__sess_add(c, &e, 0, NULL), CCB_OK);
	/* A second entry with the same policy shares its text; removing the
	 * first leaves the second's intact. */
	e.id = "q";
	CU_ASSERT_EQUAL(ccb__sess_add(c, &e, 0, NULL), CCB_OK);
	e.id = "p";
	CU_ASSERT_TRUE(ccb__sess_remove(c, "p"));
	CU_ASSERT_EQUAL(ccb__sess_add(c, &e, 0, NULL), CCB_OK);
	CU_ASSERT_TRUE(ccb__sess_remove(c, "q"));
	ccb_classad_free(e.policy);
	CU_ASSERT_EQUAL_FATAL(ccb__sess_lookup(c, "p", 1, &got), CCB_OK);
	CU_ASSERT_EQUAL(ccb_classad_count(got.policy), 5);
	CU_ASSERT(ccb_classad_get_string(got.policy, "TokenScopes", &v) == CCB_OK &&
		  !strcmp(v, "a \"quoted\" \\ value"));
	CU_ASSERT(ccb_classad_get_string(got.policy, "Empty", &v) == CCB_OK && !strcmp(v, ""));
	CU_ASSERT(ccb_classad_get_bool(got.policy, "Authenticated", &bv) == CCB_OK && bv);
	CU_ASSERT(ccb_classad_get_int(got.policy, "N", &iv) == CCB_OK && iv == -42);
	CU_ASSERT_EQUAL(got.key_len, 16);
	ccb__sess_entry_clear(&got);
	ccb__sess_cache_free(c);
}

/* A full cache drops the entry that would expire soonest, whatever its
 * recency; entries without a limit go last. */
static void test_evict_soonest(void)
{
	ccb__sess_cache *c = ccb__sess_cache_new(3);

	add(c, "forever", 0, 0, 1);
	add(c, "late", 5000, 0, 1);
	add(c, "soon", 100, 0, 1);
	CU_ASSERT_TRUE(live(c, "soon", 2)); /* recent use does not save it */
	add(c, "new", 0, 0, 3);
	CU_ASSERT_FALSE(live(c, "soon", 4));
	CU_ASSERT_TRUE(live(c, "late", 4));
	CU_ASSERT_TRUE(live(c, "forever", 4));
	/* A lease renewed by use moves an entry back in the order. */
	ccb__sess_cache_free(c);
	c = ccb__sess_cache_new(2);
	add(c, "a", 0, 100, 0);
	add(c, "b", 0, 100, 10);
	CU_ASSERT_TRUE(live(c, "a", 50)); /* a now expires at 150, b at 110 */
	add(c, "c", 0, 0, 60);
	CU_ASSERT_FALSE(live(c, "b", 61));
	CU_ASSERT_TRUE(live(c, "a", 61));
	ccb__sess_cache_free(c);
}

/* Many entries: every one found, the bound held, expiry in order, and
 * removal from the middle keeps the rest reachable. */
static void test_many(void)
{
	enum { N = 50000, CAP = 20000 };
	ccb__sess_cache *c = ccb__sess_cache_new(CAP);
	char id[40];
	int found = 0;

	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof id, "vm:%d:1795529984:%d", 1000 + i % 977, i);
		/* Expiry rises with i, with some never expiring. */
		add(c, id, i % 10 == 0 ? 0 : 100000 + i, 0, 1);
	}
	CU_ASSERT_EQUAL(ccb__sess_count(c), CAP);
	/* The never-expiring ones all survive; of the others, the latest. */
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof id, "vm:%d:1795529984:%d", 1000 + i % 977, i);
		if (live(c, id, 2))
			found++;
		else if (i % 10 == 0 || i >= N - (CAP - N / 10))
			CU_FAIL("an entry that should have stayed was evicted");
	}
	CU_ASSERT_EQUAL(found, CAP);
	for (int i = 1; i < N; i += 7) {
		snprintf(id, sizeof id, "vm:%d:1795529984:%d", 1000 + i % 977, i);
		ccb__sess_remove(c, id);
	}
	/* Everything with expiry < 100000 + N - 100 goes; the unlimited stay. */
	ccb__sess_expire(c, 100000 + N - 100);
	found = 0;
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof id, "vm:%d:1795529984:%d", 1000 + i % 977, i);
		if (live(c, id, 2)) {
			found++;
			if (i % 10 != 0 && 100000 + i < 100000 + N - 100)
				CU_FAIL("an expired entry was found");
		}
	}
	CU_ASSERT(found >= N / 10 - N / 70 && found <= N / 10 + 100);
	CU_ASSERT_EQUAL(ccb__sess_count(c), (size_t)found);
	ccb__sess_cache_free(c);
}

static void test_client_map(void)
{
	ccb__sess_cache *c = ccb__sess_cache_new(8);
	ccb__sess_entry got;
	const char *addr = "<127.0.0.1:19618>";

	add(c, "vm:21621:1795529984:0", 1060, 3600, 1000);
	CU_ASSERT_EQUAL(ccb__sess_map_commands(c, addr, "60000,60008, 67,\tbogus,2", 
					       "vm:21621:1795529984:0", NULL), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(ccb__sess_map_lookup(c, addr, 67, 1001, &got), CCB_OK);
	CU_ASSERT_STRING_EQUAL(got.id, "vm:21621:1795529984:0");
	ccb__sess_entry_clear(&got);
	CU_ASSERT_EQUAL(ccb__sess_map_lookup(c, addr, 2, 1001, NULL), CCB_OK);
	CU_ASSERT_EQUAL(ccb__sess_map_lookup(c, addr, 68, 1001, NULL), CCB_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(ccb__sess_map_lookup(c, "<127.0.0.1:9618>", 67, 1001, NULL),
			CCB_ERR_NOT_FOUND);
	/* Session expired: the mapping goes with it. */
	CU_ASSERT_EQUAL(ccb__sess_map_lookup(c, addr, 67, 2000, NULL), CCB_ERR_NOT_FOUND);
	add(c, "vm:21621:1795529984:0", 5000, 0, 2000);
	CU_ASSERT_EQUAL(ccb__sess_map_lookup(c, addr, 67, 2001, NULL), CCB_ERR_NOT_FOUND);

	/* A mapping to an unknown session is dropped on lookup. */
	CU_ASSERT_EQUAL(ccb__sess_map_set(c, addr, 7, "nope", NULL), CCB_OK);
	CU_ASSERT_EQUAL(ccb__sess_map_lookup(c, addr, 7, 2001, NULL), CCB_ERR_NOT_FOUND);
	/* Remapping replaces; removing the session removes its mappings. */
	CU_ASSERT_EQUAL(ccb__sess_map_set(c, addr, 7, "vm:21621:1795529984:0", NULL), CCB_OK);
	CU_ASSERT_EQUAL(ccb__sess_map_lookup(c, addr, 7, 2001, NULL), CCB_OK);
	CU_ASSERT_TRUE(ccb__sess_remove(c, "vm:21621:1795529984:0"));
	add(c, "vm:21621:1795529984:0", 5000, 0, 2000);
	CU_ASSERT_EQUAL(ccb__sess_map_lookup(c, addr, 7, 2001, NULL), CCB_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(ccb__sess_map_set(c, addr, 7, "", NULL), CCB_ERR_INVALID_ARG);
	ccb__sess_cache_free(c);
}

/* ---- threads ------------------------------------------------------------ */

#define THREADS 4
#define ROUNDS 2000

struct worker {
	ccb__sess_cache *c;
	int id;
	int failures;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	char sid[32], addr[32];

	for (int i = 0; i < ROUNDS; i++) {
		ccb__sess_entry e = {.id = sid, .key_len = 32, .lease = 50};
		ccb__sess_entry got;
		int64_t now = i;

		snprintf(sid, sizeof sid, "t%d:%d", w->id, i % 40);
		snprintf(addr, sizeof addr, "<10.0.0.%d:9618>", w->id);
		memset(e.key, w->id + 1, 32);
		e.policy = NULL;
		if (ccb__sess_add(w->c, &e, now, NULL) != CCB_OK)
			w->failures++;
		ccb__sess_map_set(w->c, addr, i % 7, sid, NULL);
		if (ccb__sess_lookup(w->c, sid, now, &got) == CCB_OK) {
			/* A session only ever holds its own thread's key. */
			if (got.key[0] != w->id + 1 || got.key[31] != w->id + 1)
				w->failures++;
			ccb__sess_entry_clear(&got);
		}
		if (ccb__sess_map_lookup(w->c, addr, i % 7, now, &got) == CCB_OK) {
			if (got.key[0] != w->id + 1)
				w->failures++;
			ccb__sess_entry_clear(&got);
		}
		if (i % 13 == 0)
			ccb__sess_remove(w->c, sid);
		if (i % 101 == 0)
			ccb__sess_expire(w->c, now);
	}
	return NULL;
}

static void test_threads(void)
{
	ccb__sess_cache *c = ccb__sess_cache_new(64);
	struct worker w[THREADS];
	pthread_t t[THREADS];

	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){.c = c, .id = i};
		CU_ASSERT_FATAL(pthread_create(&t[i], NULL, work, &w[i]) == 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		CU_ASSERT_EQUAL(w[i].failures, 0);
	}
	CU_ASSERT(ccb__sess_count(c) <= 64);
	ccb__sess_cache_free(c);
}

static const ccbt_test tests[] = {
	{"add, lookup, copies", test_add_lookup_copy},
	{"lifetime expiry", test_lifetime_expiry},
	{"lease renewal", test_lease_renewal},
	{"eviction", test_eviction},
	{"policy types", test_policy_types},
	{"evict soonest-expiring", test_evict_soonest},
	{"50000 entries, cap 20000", test_many},
	{"client map", test_client_map},
	{"4 threads", test_threads},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"session_cache", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
