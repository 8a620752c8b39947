/*
 * Authorization (security-handshake.md §5 step 9): the ALLOW_<PERM> /
 * DENY_<PERM> lists as HTCondor's IpVerify reads them, the implied levels,
 * and the limits of a token's scopes.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ccb/security.h"
#include "security/handshake_internal.h"
#include "security/policy.h"

/* One ALLOW/DENY entry: "user@domain[/host]" matches the identity (and the
 * host part the peer IP); an entry without '@' is a host pattern. */
static bool entry_matches(const char *entry, const char *user, const char *ip)
{
	char buf[512];
	char *slash;

	if (!strcmp(entry, "*"))
		return true;
	snprintf(buf, sizeof buf, "%s", entry);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = '\0';
	if (!strchr(buf, '@'))
		return fnmatch(buf, ip ? ip : "", 0) == 0;
	if (fnmatch(buf, user ? user : "", FNM_CASEFOLD) != 0)
		return false;
	return !slash || fnmatch(slash, ip ? ip : "", 0) == 0;
}

static bool list_matches(const char *list, const char *user, const char *ip)
{
	const char *p = list, *item;
	size_t len;

	while ((item = ccb__sec_list_next(&p, &len))) {
		char entry[512];
		if (len >= sizeof entry)
			continue;
		memcpy(entry, item, len);
		entry[len] = '\0';
		if (entry_matches(entry, user, ip))
			return true;
	}
	return false;
}

bool ccb_sec_authorized(const ccb_sec_server_config *cfg, ccb_perm perm, const char *user,
			const char *ip)
{
	const char *allow;

	if (!cfg || perm >= CCB_PERM_COUNT)
		return false;
	if (cfg->deny[perm] && list_matches(cfg->deny[perm], user, ip))
		return false;
	allow = cfg->allow[perm];
	if (!allow)
		allow = perm == CCB_PERM_READ || perm == CCB_PERM_ALLOW ? "*" : "";
	if (list_matches(allow, user, ip))
		return true;
	/* Neither list matched: a level is granted when a level directly
	 * implying it is (WRITE implies READ; ADMINISTRATOR and DAEMON imply
	 * WRITE), H:src/condor_io/condor_ipverify.cpp:750-780,
	 * H:src/condor_utils/condor_perms.cpp:144-159. */
	switch (perm) {
	case CCB_PERM_READ:
		return ccb_sec_authorized(cfg, CCB_PERM_WRITE, user, ip);
	case CCB_PERM_WRITE:
		return ccb_sec_authorized(cfg, CCB_PERM_ADMINISTRATOR, user, ip) ||
		       ccb_sec_authorized(cfg, CCB_PERM_DAEMON, user, ip);
	default:
		return false;
	}
}

/* A token with condor:/<PERM> scopes authorizes only those levels
 * (LimitAuthorization, security-handshake.md §7.4 and §5 step 9). */
bool ccb__sec_scopes_allow(const char *scopes, ccb_perm perm)
{
	const char *p = scopes, *item;
	size_t len, n = 0;
	char want[64];

	snprintf(want, sizeof want, "condor:/%s", ccb_perm_name(perm));
	while ((item = ccb__sec_list_next(&p, &len))) {
		if (len < 8 || strncmp(item, "condor:/", 8))
			continue;
		n++;
		if (len == strlen(want) && !strncasecmp(item, want, len))
			return true;
	}
	return n == 0;
}
