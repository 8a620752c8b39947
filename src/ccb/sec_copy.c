/* Deep copies of the security settings (see sec_copy.h). */
#include <string.h>

#include "sec_copy.h"
#include "util/util.h"

#define CLIENT_STRINGS(X)                                                                         \
	X(auth_methods) X(crypto_methods) X(trust_domain) X(uid_domain) X(claimtobe_user) X(subsystem) \
	X(token) X(token_file) X(token_directory) X(ssl_ca_file) X(ssl_ca_dir) X(ssl_certfile)     \
	X(ssl_keyfile) X(ssl_server_host)

#define SERVER_STRINGS(X)                                                                      \
	X(uid_domain) X(trust_domain) X(password_directory) X(pool_signing_key_file) X(ssl_certfile) \
	X(ssl_keyfile) X(ssl_ca_file) X(ssl_ca_dir)

#define SERVER_ARRAYS(X) X(auth_methods) X(crypto_methods) X(allow) X(deny)

#define COPY(f)                                       \
	if (src->f && !(dst->f = ccb_strdup(src->f))) \
		ok = false;
#define COPY_ARRAY(f)                                                \
	for (int i = 0; i < CCB_PERM_COUNT; i++)                      \
		if (src->f[i] && !(dst->f[i] = ccb_strdup(src->f[i]))) \
			ok = false;

bool ccb__sec_client_copy(ccb_sec_client_config *dst, const ccb_sec_client_config *src)
{
	bool ok = true;

	*dst = *src;
	CLIENT_STRINGS(COPY)
	if (!ok)
		ccb__sec_client_clear(dst);
	return ok;
}

bool ccb__sec_server_copy(ccb_sec_server_config *dst, const ccb_sec_server_config *src)
{
	bool ok = true;

	*dst = *src;
	SERVER_STRINGS(COPY)
	SERVER_ARRAYS(COPY_ARRAY)
	if (!ok)
		ccb__sec_server_clear(dst);
	return ok;
}

/* Every string field is visited even after a failure, so a failed copy
 * holds only duplicates and NULLs: clearing it frees exactly what it owns. */
#undef COPY
#undef COPY_ARRAY

#define FREE(f) ccb__free_secret((char *)c->f);
#define FREE_ARRAY(f)                            \
	for (int i = 0; i < CCB_PERM_COUNT; i++) \
		ccb__free_secret((char *)c->f[i]);

void ccb__sec_client_clear(ccb_sec_client_config *c)
{
	if (!c)
		return;
	CLIENT_STRINGS(FREE)
	memset(c, 0, sizeof *c);
}

void ccb__sec_server_clear(ccb_sec_server_config *c)
{
	if (!c)
		return;
	SERVER_STRINGS(FREE)
	SERVER_ARRAYS(FREE_ARRAY)
	memset(c, 0, sizeof *c);
}
