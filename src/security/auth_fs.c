/*
 * FS authentication (security-handshake.md §7.3;
 * H:src/condor_io/condor_auth_fs.cpp): the server names a directory, the
 * client creates it with mode 0700, and the server takes the directory's
 * owner as the client's identity. Only meaningful when both ends share the
 * filesystem holding the directory (FS_LOCAL_DIR, default /tmp).
 *
 *   F1  S→C  string path                      ("" = server could not make a name)
 *   F2  C→S  int result [ | string ext ]      (0 = created, -1 = failed)
 *   F3  S→C  int result                       (0 = authenticated, -1 = not)
 *
 * Channel binding (HTCONDOR-3808): a path ending in '_' invites the client to
 * append its view of the server endpoint ("ip:port", "[v6]:port", plus
 * "?sock=<id>" when it dialed a shared-port id) and send that `ext` after the
 * result; the server checks `ext` against its own endpoint of the connection.
 *
 * Differences from HTCondor, by design:
 *  - no privilege switching: the client creates the directory as the
 *    process's effective user (HTCondor daemons switch to the condor user);
 *  - root is mapped to "condor" (FS_ROOT_TO_CONDOR, always on) only when this
 *    machine has a "condor" account; otherwise "root" stays "root", as
 *    HTCondor does when get_condor_username() has nothing (fs.cpp:472);
 *  - the server has no daemon sinful of its own, so an `ext` is accepted only
 *    when it equals the socket's local ip:port and carries no "?sock=" (the C++
 *    server also accepts its advertised address and its own shared-port id,
 *    fs.cpp:303-325);
 *  - FS_ALLOW_UNSAFE (a plain file accepted) is not offered;
 *  - a server without a UID_DOMAIN refuses (sends an empty name), as the
 *    method interface asks for a missing parameter.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "security/auth.h"

#define SOCK_SUFFIX "?sock="
#define FS_PATH_MAX 4096
/* "[" + INET6_ADDRSTRLEN + "]:" + port, with room to spare. */
#define FS_ENDPOINT_MAX 80

static ccb_err stream_err(ccb_stream *s, ccb_error *err, const char *step)
{
	const ccb_error *e = ccb_stream_error(s);
	return ccb_error_set(err, e->code, "FS: %s: %s", step, e->detail);
}

static ccb_err send_int(ccb_stream *s, int64_t v)
{
	ccb_err rc = ccb_stream_put_int(s, v);
	return rc ? rc : ccb_stream_end_message(s);
}

/* IPv4-mapped IPv6 becomes plain IPv4, so both views of one endpoint compare
 * equal whatever the socket family. */
static void normalize(struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in a4;

	if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr))
		return;
	memset(&a4, 0, sizeof a4);
	a4.sin_family = AF_INET;
	a4.sin_port = a6->sin6_port;
	memcpy(&a4.sin_addr, &a6->sin6_addr.s6_addr[12], 4);
	memset(ss, 0, sizeof *ss);
	memcpy(ss, &a4, sizeof a4);
}

/* One end of the socket: local (getsockname) or peer (getpeername). */
static bool endpoint(int fd, bool peer, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof *ss;

	memset(ss, 0, sizeof *ss);
	if ((peer ? getpeername(fd, (struct sockaddr *)ss, &len)
		  : getsockname(fd, (struct sockaddr *)ss, &len)) != 0)
		return false;
	normalize(ss);
	return ss->ss_family == AF_INET || ss->ss_family == AF_INET6;
}

/* The bare address text and the port (HTCondor's *_ip_str(), *_port()). */
static bool ip_and_port(const struct sockaddr_storage *ss, char *ip, size_t iplen, int *port)
{
	const void *a;

	if (ss->ss_family == AF_INET) {
		a = &((const struct sockaddr_in *)ss)->sin_addr;
		*port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
	} else {
		a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		*port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	}
	return inet_ntop(ss->ss_family, a, ip, (socklen_t)iplen) != NULL;
}

/* "a.b.c.d:port" or "[v6]:port" (condor_sockaddr::to_ip_and_port_string). */
static bool format_endpoint(const struct sockaddr_storage *ss, char *out, size_t n)
{
	char ip[INET6_ADDRSTRLEN];
	int port, w;

	if (!ip_and_port(ss, ip, sizeof ip, &port))
		return false;
	w = ss->ss_family == AF_INET6 ? snprintf(out, n, "[%s]:%d", ip, port)
				      : snprintf(out, n, "%s:%d", ip, port);
	return w > 0 && (size_t)w < n;
}

/* Parse "ip:port" as condor_sockaddr::from_ip_and_port_string does: split
 * at the last ':', the address optionally in brackets, a decimal port. */
static bool parse_endpoint(const char *text, size_t len, struct sockaddr_storage *ss)
{
	char buf[FS_ENDPOINT_MAX], *colon, *ip, *end;
	unsigned long port;

	if (len == 0 || len >= sizeof buf)
		return false;
	memcpy(buf, text, len);
	buf[len] = '\0';
	colon = strrchr(buf, ':');
	if (!colon || !colon[1])
		return false;
	*colon = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (*end || errno || port > 65535 || colon[1] == '-' || colon[1] == '+')
		return false;
	ip = buf;
	if (*ip == '[') {
		size_t n = strlen(ip);
		if (n < 2 || ip[n - 1] != ']')
			return false;
		ip[n - 1] = '\0';
		ip++;
	}
	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	} else {
		return false;
	}
	normalize(ss);
	return true;
}

static bool same_endpoint(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	return x->sin6_port == y->sin6_port &&
	       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

/* ---- client (fs.cpp:67-182) ------------------------------------------- */

ccb_err ccb__auth_fs_client(ccb_stream *s, const ccb__auth_params *p, ccb__auth_result *r,
			    ccb_error *err)
{
	char *path = NULL;
	char dir[FS_PATH_MAX] = "", ext[FS_ENDPOINT_MAX + 256] = "", why[200] = "";
	int64_t client_result = -1, server_result;
	bool created = false;
	ccb_err rc;

	(void)r;
	/* F1 */
	if (ccb_stream_get_string(s, &path) || ccb_stream_end_of_message(s)) {
		free(path);
		return stream_err(s, err, "read directory name");
	}
	if (!path || !*path) {
		/* The server could not make a name: reply -1 (fs.cpp:93-100). */
		snprintf(why, sizeof why, "server sent no directory name (server-side error)");
	} else if (strlen(path) >= sizeof dir - sizeof ext) {
		snprintf(why, sizeof why, "directory name too long (%zu bytes)", strlen(path));
	} else {
		snprintf(dir, sizeof dir, "%s", path);
	}
	free(path);

	if (dir[0] && !(p && p->fs_no_channel_binding)) {
		struct sockaddr_storage peer;
		char ep[FS_ENDPOINT_MAX];

		/* SEC_FS_ENFORCE_CHANNEL_BINDING (default true, fs.cpp:103-134). */
		if (!endpoint(ccb_stream_fd(s), true, &peer) || !format_endpoint(&peer, ep, sizeof ep)) {
			snprintf(why, sizeof why, "cannot get the server's address: %s", ccb__strerror(errno));
			dir[0] = '\0';
		} else if (dir[strlen(dir) - 1] == '_') {
			/* Append our view of the server endpoint; report it in F2. */
			const char *id = p ? p->dialed_shared_port_id : NULL;
			snprintf(ext, sizeof ext, "%s%s%s", ep, id && *id ? SOCK_SUFFIX : "",
				 id && *id ? id : "");
			strcat(dir, ext);
		} else {
			/* Older servers: the basename must carry our view of their
			 * endpoint, FS_<ip>_<port>_ (bare IPv6, no brackets). */
			char ip[INET6_ADDRSTRLEN], prefix[FS_ENDPOINT_MAX];
			const char *base = strrchr(dir, '/');
			int port;

			base = base ? base + 1 : dir;
			ip_and_port(&peer, ip, sizeof ip, &port);
			snprintf(prefix, sizeof prefix, "FS_%s_%d_", ip, port);
			if (strncmp(base, prefix, strlen(prefix)) != 0) {
				snprintf(why, sizeof why,
					 "directory name '%.80s' does not match the server's address "
					 "(expected prefix %s)", base, prefix);
				dir[0] = '\0';
			}
		}
	}
	if (dir[0]) {
		/* mkdir fails if the name exists and sets the mode we need. */
		if (mkdir(dir, 0700) == 0) {
			created = true;
			client_result = 0;
		} else {
			snprintf(why, sizeof why, "mkdir(%.120s, 0700): %s", dir, ccb__strerror(errno));
		}
	}

	/* F2: the result, then the extension if we appended one (fs.cpp:150). */
	if (ccb_stream_put_int(s, client_result) || (ext[0] && ccb_stream_put_string(s, ext)) ||
	    ccb_stream_end_message(s)) {
		rc = stream_err(s, err, "send mkdir result");
		goto out;
	}
	/* F3 */
	if (ccb_stream_get_int(s, &server_result) || ccb_stream_end_of_message(s)) {
		rc = stream_err(s, err, "read server verdict");
		goto out;
	}
	if (client_result != 0)
		rc = ccb_error_set(err, CCB_ERR_AUTH, "FS: %s", why);
	else if (server_result != 0)
		rc = ccb_error_set(err, CCB_ERR_AUTH,
				   "FS: server rejected directory %.150s (result %lld)", dir,
				   (long long)server_result);
	else
		rc = CCB_OK;
out:
	/* The client removes its directory in every case (fs.cpp:152-171). */
	if (created)
		rmdir(dir);
	return rc;
}

/* ---- server (fs.cpp:183-512) ------------------------------------------ */

/* The owner of uid as an identity, root mapped to the condor user when
 * there is one (FS_ROOT_TO_CONDOR, fs.cpp:466-477). */
static bool owner_name(uid_t uid, char *out, size_t n)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) != 0 || !res || !pw.pw_name[0])
		return false;
	if (strcmp(pw.pw_name, "root") == 0) {
		struct passwd cpw, *cres = NULL;
		char cbuf[4096];
		if (getpwnam_r("condor", &cpw, cbuf, sizeof cbuf, &cres) == 0 && cres) {
			snprintf(out, n, "condor");
			return true;
		}
	}
	return (size_t)snprintf(out, n, "%s", pw.pw_name) < n;
}

/* Check the client's extension against our endpoint (fs.cpp:263-331);
 * NULL when it is acceptable, else why not. */
static const char *check_ext(int fd, const char *ext)
{
	struct sockaddr_storage mine, theirs;
	const char *sock = strstr(ext, SOCK_SUFFIX);
	size_t len = sock ? (size_t)(sock - ext) : strlen(ext);

	if (strchr(ext, '/'))
		return "contains a directory separator";
	if (!parse_endpoint(ext, len, &theirs))
		return "is not a valid ip:port";
	if (!endpoint(fd, false, &mine) || !same_endpoint(&mine, &theirs))
		return "does not match our endpoint";
	if (sock)
		return "names a shared-port id, which this server does not have";
	return NULL;
}

ccb_err ccb__auth_fs_server(ccb_stream *s, const ccb__auth_params *p, ccb__auth_result *r,
			    ccb_error *err)
{
	char name[FS_PATH_MAX] = "", why[300] = "", owner[CCB_AUTH_NAME_MAX];
	char *ext = NULL;
	int64_t client_result, server_result = -1;
	const char *bad;
	struct stat st;

	r->peer_user[0] = '\0';
	if (!p || !p->uid_domain || !*p->uid_domain) {
		snprintf(why, sizeof why, "no UID_DOMAIN configured");
	} else {
		/* F1 name: <dir>/FS_<our ip>_<our port>_XXXXXXXXX through mkstemp
		 * (only the last six X vary), the file removed, then '_'. */
		struct sockaddr_storage mine;
		char ip[INET6_ADDRSTRLEN];
		const char *parent = p->fs_local_dir && *p->fs_local_dir ? p->fs_local_dir : "/tmp";
		size_t plen = strlen(parent);
		int port, fd, w;

		while (plen > 1 && parent[plen - 1] == '/')
			plen--;
		if (!endpoint(ccb_stream_fd(s), false, &mine) || !ip_and_port(&mine, ip, sizeof ip, &port)) {
			snprintf(why, sizeof why, "cannot get our address: %s", ccb__strerror(errno));
		} else if ((w = snprintf(name, sizeof name - 2, "%.*s/FS_%s_%d_XXXXXXXXX", (int)plen,
					 parent, ip, port)) < 0 || (size_t)w >= sizeof name - 2) {
			snprintf(why, sizeof why, "FS_LOCAL_DIR too long");
			name[0] = '\0';
		} else if ((fd = mkstemp(name)) < 0) {
			snprintf(why, sizeof why, "mkstemp(%.200s): %s", name, ccb__strerror(errno));
			name[0] = '\0';
		} else {
			close(fd);
			unlink(name);
			strcat(name, "_");
		}
	}
	/* An empty name tells the client we failed (fs.cpp:217-222). */
	if (ccb_stream_put_string(s, name) || ccb_stream_end_message(s))
		return stream_err(s, err, "send directory name");

	/* F2: the string is there only if the message has more bytes
	 * (peek_end_of_message, fs.cpp:250), so both reply shapes work. */
	if (ccb_stream_get_int(s, &client_result) ||
	    (ccb_stream_unread(s) > 0 && ccb_stream_get_string(s, &ext)) ||
	    ccb_stream_end_of_message(s)) {
		free(ext);
		return stream_err(s, err, "read client mkdir result");
	}

	if (ext && *ext && (bad = check_ext(ccb_stream_fd(s), ext)) != NULL) {
		snprintf(why, sizeof why, "client extension '%.100s' %s", ext, bad);
	} else if (!name[0]) {
		/* why already says what went wrong */
	} else if (client_result == -1) {
		snprintf(why, sizeof why, "client could not create %.200s", name);
	} else if (strlen(name) + (ext ? strlen(ext) : 0) >= sizeof name) {
		snprintf(why, sizeof why, "client extension too long");
	} else {
		if (ext)
			strcat(name, ext);
		/* The directory must be the client's own fresh one: a real
		 * directory, not a link, link count 1 (btrfs) or 2, mode exactly
		 * 0700 (fs.cpp:386-465). */
		if (lstat(name, &st) != 0)
			snprintf(why, sizeof why, "cannot lstat %.200s: %s", name, ccb__strerror(errno));
		else if (S_ISLNK(st.st_mode) || !S_ISDIR(st.st_mode) ||
			 (st.st_nlink != 1 && st.st_nlink != 2) || (st.st_mode & 07777) != 0700)
			snprintf(why, sizeof why, "bad attributes on %.200s (mode %o, links %lu)", name,
				 (unsigned)st.st_mode, (unsigned long)st.st_nlink);
		else if (!owner_name(st.st_uid, owner, sizeof owner))
			snprintf(why, sizeof why, "cannot look up uid %lu", (unsigned long)st.st_uid);
		else if ((size_t)snprintf(r->peer_user, sizeof r->peer_user, "%s@%s", owner,
					  p->uid_domain) >= sizeof r->peer_user)
			snprintf(why, sizeof why, "identity too long");
		else
			server_result = 0;
	}
	free(ext);
	if (server_result != 0)
		r->peer_user[0] = '\0';

	/* F3 */
	if (send_int(s, server_result))
		return stream_err(s, err, "send verdict");
	if (server_result != 0)
		return ccb_error_set(err, CCB_ERR_AUTH, "FS: %s", why);
	return CCB_OK;
}
