/*
 * IDTOKENS signing keys: locate, read securely, unscramble, POOL doubling,
 * derive the JWT key (security-handshake.md §7.4;
 * H:src/condor_utils/store_cred.cpp:2622-2745, secure_file.cpp:30-37 and
 * read_secure_file).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "security/signing_key.h"
#include "security/token_crypto.h"

static bool kid_is_safe(const char *kid)
{
	return !strchr(kid, '/') && strcmp(kid, ".") && strcmp(kid, "..");
}

ccb_err ccb__signing_key_path(const char *kid, const char *password_dir,
			      const char *pool_key_file, char **path, bool *is_pool,
			      ccb_error *err)
{
	ccb_buf b;

	*path = NULL;
	if (!kid || !*kid)
		kid = "POOL";
	*is_pool = !strcmp(kid, "POOL");
	if (!kid_is_safe(kid))
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "unsafe signing key name \"%s\"", kid);
	if (*is_pool && pool_key_file && *pool_key_file) {
		*path = ccb_strdup(pool_key_file);
	} else {
		if (!password_dir || !*password_dir)
			return ccb_error_set(err, CCB_ERR_CONFIG,
					     "no password directory for signing key \"%s\"", kid);
		ccb_buf_init(&b);
		if (!ccb_buf_appendf(&b, "%s/%s", password_dir, kid)) {
			ccb_buf_free(&b);
			return ccb_error_set(err, CCB_ERR_NOMEM, "signing key path: out of memory");
		}
		*path = ccb_buf_steal_str(&b);
	}
	if (!*path)
		return ccb_error_set(err, CCB_ERR_NOMEM, "signing key path: out of memory");
	return CCB_OK;
}

void ccb__signing_key_scramble(uint8_t *p, size_t n)
{
	static const uint8_t deadbeef[4] = {0xDE, 0xAD, 0xBE, 0xEF};

	for (size_t i = 0; i < n; i++)
		p[i] ^= deadbeef[i % 4];
}

/* read_secure_file: owner is us, nobody else has any access. */
static ccb_err check_stat(const char *path, const struct stat *st, unsigned flags,
			  ccb_error *err)
{
	if (!S_ISREG(st->st_mode))
		return ccb_error_set(err, CCB_ERR_CONFIG, "signing key %s is not a regular file", path);
	if (st->st_size <= 0 || st->st_size > CCB__SIGNING_KEY_MAX)
		return ccb_error_set(err, CCB_ERR_CONFIG, "signing key %s has %lld bytes (1..%d allowed)",
				     path, (long long)st->st_size, CCB__SIGNING_KEY_MAX);
	if (!(flags & CCB__SIGNING_KEY_CHECK_PERMS))
		return CCB_OK;
	if (st->st_uid != geteuid())
		return ccb_error_set(err, CCB_ERR_NOT_AUTHORIZED,
				     "signing key %s must be owned by uid %ld, is uid %ld", path,
				     (long)geteuid(), (long)st->st_uid);
	if (st->st_mode & 077)
		return ccb_error_set(err, CCB_ERR_NOT_AUTHORIZED,
				     "signing key %s must not be accessible by others (mode %03o)",
				     path, (unsigned)(st->st_mode & 0777));
	return CCB_OK;
}

static ccb_err read_all(int fd, const char *path, uint8_t *buf, size_t n, ccb_error *err)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return ccb_error_set(err, CCB_ERR_IO, "read signing key %s: %s", path,
					     r < 0 ? ccb__strerror(errno) : "short read");
		got += (size_t)r;
	}
	return CCB_OK;
}

/* Open, check and read the raw (scrambled) bytes into a buffer twice the
 * size, so the POOL doubling needs no second copy. */
static ccb_err read_file(const char *path, unsigned flags, uint8_t **out, size_t *len,
			 ccb_error *err)
{
	struct stat st = {0}, st2;
	uint8_t *buf = NULL;
	ccb_err rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return ccb_error_set(err, errno == ENOENT ? CCB_ERR_NOT_FOUND : CCB_ERR_IO,
				     "open signing key %s: %s", path, ccb__strerror(errno));
	if (fstat(fd, &st) < 0) {
		rc = ccb_error_set(err, CCB_ERR_IO, "stat signing key %s: %s", path, ccb__strerror(errno));
		goto out;
	}
	if ((rc = check_stat(path, &st, flags, err)) != CCB_OK)
		goto out;
	if (!(buf = malloc((size_t)st.st_size * 2))) {
		rc = ccb_error_set(err, CCB_ERR_NOMEM, "signing key: out of memory");
		goto out;
	}
	if ((rc = read_all(fd, path, buf, (size_t)st.st_size, err)) != CCB_OK)
		goto out;
	/* Like read_secure_file: refuse a file that changed while we read it. */
	if (fstat(fd, &st2) < 0 || st2.st_mtime != st.st_mtime || st2.st_ctime != st.st_ctime ||
	    st2.st_size != st.st_size)
		rc = ccb_error_set(err, CCB_ERR_IO, "signing key %s changed while being read", path);
out:
	close(fd);
	if (rc != CCB_OK && buf) {
		OPENSSL_cleanse(buf, (size_t)st.st_size);
		free(buf);
		buf = NULL;
	}
	*out = buf;
	*len = buf ? (size_t)st.st_size : 0;
	return rc;
}

ccb_err ccb__signing_key_read(const char *path, bool is_pool, unsigned flags, uint8_t **key,
			      size_t *len, ccb_error *err)
{
	ccb_err rc = read_file(path, flags, key, len, err);

	if (rc != CCB_OK)
		return rc;
	ccb__signing_key_scramble(*key, *len);
	/* POOL only: tokens signed before 8.9.12 used the doubled pool
	 * password, so the pool key is always doubled (store_cred.cpp). */
	if (is_pool) {
		memcpy(*key + *len, *key, *len);
		*len *= 2;
	}
	return CCB_OK;
}

ccb_err ccb__signing_key_jwt_key(const uint8_t *key, size_t len, uint8_t jwt_key[32],
				 ccb_error *err)
{
	return ccb__token_hkdf(key, len, "htcondor", 8, "master jwt", 10, jwt_key, 32, err);
}

ccb_err ccb__signing_key_load(const char *kid, const char *password_dir,
			      const char *pool_key_file, unsigned flags, uint8_t jwt_key[32],
			      ccb_error *err)
{
	char *path = NULL;
	uint8_t *key = NULL;
	size_t len = 0;
	bool is_pool = false;
	ccb_err rc = ccb__signing_key_path(kid, password_dir, pool_key_file, &path, &is_pool, err);

	if (rc == CCB_OK)
		rc = ccb__signing_key_read(path, is_pool, flags, &key, &len, err);
	if (rc == CCB_OK)
		rc = ccb__signing_key_jwt_key(key, len, jwt_key, err);
	if (key) {
		OPENSSL_cleanse(key, len);
		free(key);
	}
	free(path);
	return rc;
}
