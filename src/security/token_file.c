/*
 * Token files and token directories (security-handshake.md §7.4;
 * H:src/condor_io/condor_auth_passwd.cpp:206-400).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "security/token_file.h"

/* Whether `name` is an element of a comma/space separated list. */
static bool in_list(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	while (*p) {
		size_t len;
		p += strspn(p, ", \t");
		len = strcspn(p, ", \t");
		if (len == n && len && !memcmp(p, name, n))
			return true;
		p += len;
	}
	return false;
}

bool ccb__token_usable(const ccb__jwt *j, const ccb__token_filter *f)
{
	/* checkToken calls get_issuer() unconditionally: no iss, no use. */
	if (!ccb__jwt_identity(j) || !j->iss)
		return false;
	if (f && f->issuer_keys && *f->issuer_keys && !in_list(f->issuer_keys, j->kid))
		return false;
	if (f && f->trust_domain && *f->trust_domain && (!j->iss || strcmp(j->iss, f->trust_domain)))
		return false;
	return true;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

ccb_err ccb__token_pick_text(const char *data, size_t len, const ccb__token_filter *f,
			     ccb__jwt *out, ccb_error *err)
{
	const char *p = data, *end = data + len;

	memset(out, 0, sizeof *out);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *s = p, *e = le;
		p = nl ? nl + 1 : end;
		while (s < e && is_space(*s))
			s++;
		while (e > s && is_space(e[-1]))
			e--;
		if (s == e || *s == '#')
			continue;
		if (ccb__jwt_parse(s, (size_t)(e - s), 0, out, NULL) == CCB_OK &&
		    ccb__token_usable(out, f))
			return CCB_OK;
		ccb__jwt_clear(out);
	}
	return ccb_error_set(err, CCB_ERR_NOT_FOUND, "no usable token");
}

/* Read a whole token file, optionally with read_secure_file's checks. */
static ccb_err read_token_file(const char *path, unsigned flags, char **data, size_t *len,
			       ccb_error *err)
{
	struct stat st = {0};
	size_t got = 0;
	ccb_err rc = CCB_OK;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return ccb_error_set(err, errno == ENOENT ? CCB_ERR_NOT_FOUND : CCB_ERR_IO,
				     "open token file %s: %s", path, ccb__strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		rc = ccb_error_set(err, CCB_ERR_IO, "token file %s is not a regular file", path);
	else if (st.st_size > CCB__TOKEN_FILE_MAX)
		rc = ccb_error_set(err, CCB_ERR_TOO_LARGE, "token file %s is over %d bytes", path,
				   CCB__TOKEN_FILE_MAX);
	else if ((flags & CCB__TOKEN_FILE_CHECK_PERMS) &&
		 (st.st_uid != geteuid() || (st.st_mode & 077)))
		rc = ccb_error_set(err, CCB_ERR_NOT_AUTHORIZED,
				   "token file %s must be owned by uid %ld with mode 0600 or stricter",
				   path, (long)geteuid());
	else if (!(buf = malloc((size_t)st.st_size + 1)))
		rc = ccb_error_set(err, CCB_ERR_NOMEM, "token file: out of memory");
	while (rc == CCB_OK && got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* the file shrank: use what we have */
		got += (size_t)r;
	}
	close(fd);
	if (rc != CCB_OK) {
		free(buf);
		return rc;
	}
	*data = buf;
	*len = got;
	return CCB_OK;
}

ccb_err ccb__token_pick_file(const char *path, unsigned flags, const ccb__token_filter *f,
			     ccb__jwt *out, ccb_error *err)
{
	char *data = NULL;
	size_t len = 0;
	ccb_err rc;

	memset(out, 0, sizeof *out);
	if ((rc = read_token_file(path, flags, &data, &len, err)) != CCB_OK)
		return rc;
	rc = ccb__token_pick_text(data, len, f, out, err);
	if (rc == CCB_ERR_NOT_FOUND)
		ccb_error_set(err, rc, "no usable token in %s", path);
	OPENSSL_cleanse(data, len);
	free(data);
	return rc;
}

/* HTCondor's default LOCAL_CONFIG_DIR_EXCLUDE_REGEXP:
 * ^((\..*)|(.*~)|(#.*)|(.*\.rpmsave)|(.*\.rpmnew))$ */
static bool excluded(const char *name)
{
	size_t n = strlen(name);

	if (name[0] == '.' || name[0] == '#' || (n && name[n - 1] == '~'))
		return true;
	return (n >= 8 && !strcmp(name + n - 8, ".rpmsave")) ||
	       (n >= 7 && !strcmp(name + n - 7, ".rpmnew"));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_regular(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static bool push(char ***v, size_t *n, size_t *cap, char *s)
{
	if (!s)
		return false;
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		char **nv = realloc(*v, nc * sizeof *nv);
		if (!nv) {
			free(s);
			return false;
		}
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = s;
	return true;
}

/* Sorted names, then the subsys file (if present) moved to the front. */
static void subsys_first(char **v, size_t n, const char *subsys)
{
	char want[512];

	if (!subsys || !*subsys ||
	    snprintf(want, sizeof want, "%s_auto_generated_token", subsys) >= (int)sizeof want)
		return;
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(v[i], want))
			continue;
		char *s = v[i];
		memmove(v + 1, v, i * sizeof *v);
		v[0] = s;
		return;
	}
}

ccb_err ccb__token_dir_files(const char *dir, const char *subsys, char ***paths, size_t *n,
			     ccb_error *err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **v = NULL;
	size_t cnt = 0, cap = 0;
	ccb_buf b;

	*paths = NULL;
	*n = 0;
	if (!d)
		return ccb_error_set(err, errno == ENOENT ? CCB_ERR_NOT_FOUND : CCB_ERR_IO,
				     "open token directory %s: %s", dir, ccb__strerror(errno));
	while ((e = readdir(d))) {
		if (excluded(e->d_name))
			continue;
		if (!push(&v, &cnt, &cap, ccb_strdup(e->d_name))) {
			closedir(d);
			free_list(v, cnt);
			return ccb_error_set(err, CCB_ERR_NOMEM, "token directory: out of memory");
		}
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof *v, cmp_str);
	subsys_first(v, cnt, subsys);
	/* Turn names into paths, dropping what is not a regular file. */
	ccb_buf_init(&b);
	size_t keep = 0;
	for (size_t i = 0; i < cnt; i++) {
		ccb_buf_reset(&b);
		if (!ccb_buf_appendf(&b, "%s/%s", dir, v[i]) || !ccb_buf_terminate(&b)) {
			ccb_buf_free(&b);
			free_list(v, cnt);
			return ccb_error_set(err, CCB_ERR_NOMEM, "token directory: out of memory");
		}
		free(v[i]);
		v[i] = NULL;
		if (is_regular((char *)b.data))
			v[keep++] = ccb_strdup((char *)b.data);
	}
	ccb_buf_free(&b);
	for (size_t i = 0; i < keep; i++)
		if (!v[i]) {
			free_list(v, keep);
			return ccb_error_set(err, CCB_ERR_NOMEM, "token directory: out of memory");
		}
	*paths = v;
	*n = keep;
	return CCB_OK;
}

ccb_err ccb__token_pick_dir(const char *dir, const char *subsys, unsigned flags,
			    const ccb__token_filter *f, ccb__jwt *out, char **from,
			    ccb_error *err)
{
	char **paths = NULL;
	size_t n = 0;
	ccb_err rc;

	memset(out, 0, sizeof *out);
	if (from)
		*from = NULL;
	if ((rc = ccb__token_dir_files(dir, subsys, &paths, &n, err)) != CCB_OK)
		return rc;
	rc = ccb_error_set(err, CCB_ERR_NOT_FOUND, "no usable token in directory %s", dir);
	for (size_t i = 0; i < n; i++) {
		if (ccb__token_pick_file(paths[i], flags, f, out, NULL) != CCB_OK)
			continue;
		if (from && !(*from = ccb_strdup(paths[i]))) {
			ccb__jwt_clear(out);
			rc = ccb_error_set(err, CCB_ERR_NOMEM, "token directory: out of memory");
			break;
		}
		ccb_error_clear(err);
		rc = CCB_OK;
		break;
	}
	free_list(paths, n);
	return rc;
}
