/* FS authentication (security-handshake.md §7.3): our client and server over
 * loopback, each side against a raw peer speaking the S2-fs-aes capture's
 * shapes, and the server's refusals. Every test works in its own mkdtemp
 * directory, which must be empty again at the end. */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "ccbt.h"
#include "security/auth.h"

/* ---- raw CEDAR peer ----------------------------------------------------- */


/* One single-packet message; returns the malloc'd body, length in *n. */
static uint8_t *recv_msg(int fd, size_t *n)
{
	uint8_t h[5], *body;

	ccbt_read_raw(fd, h, 5);
	CU_ASSERT_FATAL(h[0] == 1);
	*n = (size_t)h[1] << 24 | (size_t)h[2] << 16 | (size_t)h[3] << 8 | h[4];
	CU_ASSERT_FATAL(*n > 0 && *n < 65536);
	body = malloc(*n + 1);
	ccbt_read_raw(fd, body, *n);
	body[*n] = 0;
	return body;
}

static int64_t get_be64(const uint8_t *b)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return (int64_t)v;
}

/* Send int `v` and, if str != NULL, a plaintext string, as one message. */
static void send_msg(int fd, int64_t v, const char *str)
{
	uint8_t buf[8192];
	size_t n = 5, sl = str ? strlen(str) + 1 : 0;

	CU_ASSERT_FATAL(8 + sl < sizeof buf - 5);
	for (int i = 0; i < 8; i++)
		buf[n++] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
	if (str) {
		memcpy(buf + n, str, sl);
		n += sl;
	}
	buf[0] = 1;
	buf[1] = 0;
	buf[2] = 0;
	buf[3] = (uint8_t)((n - 5) >> 8);
	buf[4] = (uint8_t)(n - 5);
	CU_ASSERT_FATAL(send(fd, buf, n, MSG_NOSIGNAL) == (ssize_t)n);
}

/* A string-only message (F1). */
static void send_str(int fd, const char *str)
{
	uint8_t buf[8192];
	size_t sl = strlen(str) + 1;

	CU_ASSERT_FATAL(sl < sizeof buf - 5);
	buf[0] = 1;
	buf[1] = 0;
	buf[2] = 0;
	buf[3] = (uint8_t)(sl >> 8);
	buf[4] = (uint8_t)sl;
	memcpy(buf + 5, str, sl);
	CU_ASSERT_FATAL(send(fd, buf, 5 + sl, MSG_NOSIGNAL) == (ssize_t)(5 + sl));
}

static int64_t recv_int_msg(int fd)
{
	size_t n;
	uint8_t *b = recv_msg(fd, &n);
	int64_t v;

	CU_ASSERT_FATAL(n == 8);
	v = get_be64(b);
	free(b);
	return v;
}

/* The stream still frames messages both ways after a refusal. */
static void check_usable(ccb_stream *s, int raw)
{
	int64_t v = 0;

	send_msg(raw, 4, NULL);
	CU_ASSERT_EQUAL(ccb_stream_get_int(s, &v), CCB_OK);
	CU_ASSERT_EQUAL(ccb_stream_end_of_message(s), CCB_OK);
	CU_ASSERT_EQUAL(v, 4);
	CU_ASSERT_EQUAL(ccb_stream_put_int(s, 7), CCB_OK);
	CU_ASSERT_EQUAL(ccb_stream_end_message(s), CCB_OK);
	CU_ASSERT_EQUAL(recv_int_msg(raw), 7);
}

/* ---- helpers ------------------------------------------------------------ */

static void make_tmp(char *dir)
{
	strcpy(dir, "/tmp/ccbt_fs_XXXXXX");
	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
}

/* Number of entries in dir, other than . and .. */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* The tmp dir must be empty (nothing left behind); then remove it. */
static void finish_tmp(const char *dir)
{
	CU_ASSERT_EQUAL(count_entries(dir), 0);
	CU_ASSERT_EQUAL(rmdir(dir), 0);
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static int port_of(int fd, bool peer)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;

	CU_ASSERT_FATAL((peer ? getpeername(fd, (struct sockaddr *)&sa, &len)
			      : getsockname(fd, (struct sockaddr *)&sa, &len)) == 0);
	return ntohs(sa.sin_port);
}

/* What the server should report for our own effective user: root becomes
 * condor only where a condor account exists (auth_fs.c). */
static void expected_identity(char *out, size_t n, const char *domain)
{
	struct passwd *pw = getpwuid(geteuid());
	const char *name = pw ? pw->pw_name : "?";

	if (strcmp(name, "root") == 0 && getpwnam("condor"))
		name = "condor";
	snprintf(out, n, "%s@%s", name, domain);
}

struct run {
	ccb_stream *s;
	const ccb__auth_params *p;
	bool server;
	ccb__auth_result res;
	ccb_error err;
	ccb_err rc;
};

static void *run_side(void *arg)
{
	struct run *r = arg;
	r->rc = r->server ? ccb__auth_fs_server(r->s, r->p, &r->res, &r->err)
			  : ccb__auth_fs_client(r->s, r->p, &r->res, &r->err);
	return NULL;
}

/* Start one side on fds[side] in a thread; the other fd stays raw. */
static void start(struct run *r, int fds[2], bool server, pthread_t *t)
{
	struct timeval tv = {.tv_sec = 5};

	ccbt_tcp_pair(fds);
	/* The raw peer never waits forever: a broken side fails the test. */
	setsockopt(fds[server ? 0 : 1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	r->server = server;
	CU_ASSERT_FATAL(ccb_stream_new(fds[server ? 1 : 0], &r->s, NULL) == CCB_OK);
	ccb_stream_set_timeout(r->s, 5000);
	CU_ASSERT_FATAL(pthread_create(t, NULL, run_side, r) == 0);
}

static void stop(struct run *r, int fds[2], bool server)
{
	ccb_stream_free(r->s);
	close(fds[server ? 0 : 1]);
}

/* ---- our client and our server ---------------------------------------- */

static void run_pair(const ccb__auth_params *cp, const ccb__auth_params *sp, struct run *c,
		     struct run *sv)
{
	int fds[2];
	pthread_t t;

	memset(c, 0, sizeof *c);
	memset(sv, 0, sizeof *sv);
	c->p = cp;
	sv->p = sp;
	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &c->s, NULL);
	ccb_stream_new(fds[1], &sv->s, NULL);
	ccb_stream_set_timeout(c->s, 5000);
	ccb_stream_set_timeout(sv->s, 5000);
	sv->server = true;
	pthread_create(&t, NULL, run_side, sv);
	run_side(c);
	pthread_join(t, NULL);
	ccb_stream_free(c->s);
	ccb_stream_free(sv->s);
}

static void test_loopback(void)
{
	char tmp[64], want[CCB_AUTH_NAME_MAX];
	ccb__auth_params cp = {.uid_domain = "client.domain"};
	ccb__auth_params sp = {.uid_domain = "server.domain"};
	struct run c, sv;

	make_tmp(tmp);
	sp.fs_local_dir = tmp;
	expected_identity(want, sizeof want, "server.domain");
	run_pair(&cp, &sp, &c, &sv);
	CU_ASSERT_EQUAL(c.rc, CCB_OK);
	CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	CU_ASSERT_STRING_EQUAL(sv.res.peer_user, want);

	/* A client without channel binding (the Go shape) still works. */
	cp.fs_no_channel_binding = true;
	run_pair(&cp, &sp, &c, &sv);
	CU_ASSERT_EQUAL(c.rc, CCB_OK);
	CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	CU_ASSERT_STRING_EQUAL(sv.res.peer_user, want);

	/* A trailing '/' on FS_LOCAL_DIR is dropped. */
	{
		char with_slash[80];
		snprintf(with_slash, sizeof with_slash, "%s//", tmp);
		sp.fs_local_dir = with_slash;
		cp.fs_no_channel_binding = false;
		run_pair(&cp, &sp, &c, &sv);
		CU_ASSERT_EQUAL(sv.rc, CCB_OK);
	}
	finish_tmp(tmp);
}

/* A server without UID_DOMAIN refuses cleanly: empty name, both AUTH. */
static void test_loopback_no_domain(void)
{
	ccb__auth_params cp = {0}, sp = {0};
	struct run c, sv;

	run_pair(&cp, &sp, &c, &sv);
	CU_ASSERT_EQUAL(c.rc, CCB_ERR_AUTH);
	CU_ASSERT_EQUAL(sv.rc, CCB_ERR_AUTH);
	CU_ASSERT_STRING_EQUAL(sv.res.peer_user, "");
}

/* ---- client against a raw server -------------------------------------- */

/* S2-fs-aes conn 1 msgs 5-7: F1 "<dir>/FS_127.0.0.1_<port>_XXX??????_",
 * F2 int 0 + "127.0.0.1:<port>" (24 bytes for a 5-digit port), F3 int 0. */
static void test_client_golden(void)
{
	char tmp[64], name[256], ext[64], made[320];
	ccb__auth_params cp = {.uid_domain = "vm"};
	struct run c = {.p = &cp};
	int fds[2], port;
	pthread_t t;
	uint8_t *b;
	size_t n;
	struct stat st;

	make_tmp(tmp);
	start(&c, fds, false, &t);
	port = port_of(fds[1], false);
	snprintf(name, sizeof name, "%s/FS_127.0.0.1_%d_XXXGiLTtt_", tmp, port);
	snprintf(ext, sizeof ext, "127.0.0.1:%d", port);
	snprintf(made, sizeof made, "%s%s", name, ext);
	send_str(fds[1], name);
	b = recv_msg(fds[1], &n);
	CU_ASSERT_EQUAL(n, 8 + strlen(ext) + 1);
	if (strlen(ext) == 15)
		CU_ASSERT_EQUAL(n, 24);
	CU_ASSERT_EQUAL(get_be64(b), 0);
	CU_ASSERT(n > 8 && memcmp(b + 8, ext, strlen(ext) + 1) == 0);
	free(b);
	/* While the server checks, the directory is there, 0700, a directory. */
	CU_ASSERT_EQUAL_FATAL(lstat(made, &st), 0);
	CU_ASSERT(S_ISDIR(st.st_mode));
	CU_ASSERT_EQUAL(st.st_mode & 07777, 0700);
	CU_ASSERT_EQUAL(st.st_uid, geteuid());
	send_msg(fds[1], 0, NULL);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(c.rc, CCB_OK);
	CU_ASSERT(!exists(made));
	check_usable(c.s, fds[1]);
	stop(&c, fds, false);
	finish_tmp(tmp);
}

/* A shared-port id of the dialed address goes into ext (fs.cpp:115-119). */
static void test_client_shared_port_ext(void)
{
	char tmp[64], name[256], ext[96];
	ccb__auth_params cp = {.dialed_shared_port_id = "collector"};
	struct run c = {.p = &cp};
	int fds[2], port;
	pthread_t t;
	uint8_t *b;
	size_t n;

	make_tmp(tmp);
	start(&c, fds, false, &t);
	port = port_of(fds[1], false);
	snprintf(name, sizeof name, "%s/FS_127.0.0.1_%d_XXXabcdef_", tmp, port);
	snprintf(ext, sizeof ext, "127.0.0.1:%d?sock=collector", port);
	send_str(fds[1], name);
	b = recv_msg(fds[1], &n);
	CU_ASSERT_EQUAL(n, 8 + strlen(ext) + 1);
	CU_ASSERT(n > 8 && memcmp(b + 8, ext, strlen(ext) + 1) == 0);
	free(b);
	CU_ASSERT_EQUAL(count_entries(tmp), 1);
	send_msg(fds[1], 0, NULL);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(c.rc, CCB_OK);
	stop(&c, fds, false);
	finish_tmp(tmp);
}

/* The server says no: CCB_ERR_AUTH, directory removed, stream usable. */
static void test_client_refused(void)
{
	char tmp[64], name[256];
	ccb__auth_params cp = {0};
	struct run c = {.p = &cp};
	int fds[2];
	pthread_t t;
	size_t n;

	make_tmp(tmp);
	start(&c, fds, false, &t);
	snprintf(name, sizeof name, "%s/FS_127.0.0.1_%d_XXXabcdef_", tmp, port_of(fds[1], false));
	send_str(fds[1], name);
	free(recv_msg(fds[1], &n));
	CU_ASSERT_EQUAL(count_entries(tmp), 1);
	send_msg(fds[1], -1, NULL);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(c.rc, CCB_ERR_AUTH);
	CU_ASSERT_EQUAL(c.err.code, CCB_ERR_AUTH);
	check_usable(c.s, fds[1]);
	stop(&c, fds, false);
	finish_tmp(tmp);
}

/* An empty name: reply int -1 alone, AUTH, stream usable (fs.cpp:93-100). */
static void test_client_empty_path(void)
{
	ccb__auth_params cp = {0};
	struct run c = {.p = &cp};
	int fds[2];
	pthread_t t;

	start(&c, fds, false, &t);
	send_str(fds[1], "");
	CU_ASSERT_EQUAL(recv_int_msg(fds[1]), -1);
	send_msg(fds[1], -1, NULL);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(c.rc, CCB_ERR_AUTH);
	CU_ASSERT_PTR_NOT_NULL(strstr(c.err.detail, "no directory name"));
	check_usable(c.s, fds[1]);
	stop(&c, fds, false);
}

/* A name without '_' (24/25 servers) must carry FS_<our peer ip>_<port>_;
 * a wrong one is refused without creating anything, a right one is used
 * as is and no ext is sent (fs.cpp:122-133). */
static void test_client_old_server_prefix(void)
{
	char tmp[64], name[256];
	ccb__auth_params cp = {0};
	struct run c = {.p = &cp};
	int fds[2];
	pthread_t t;

	make_tmp(tmp);
	start(&c, fds, false, &t);
	snprintf(name, sizeof name, "%s/FS_10.0.0.1_%d_XXXabcdef", tmp, port_of(fds[1], false));
	send_str(fds[1], name);
	CU_ASSERT_EQUAL(recv_int_msg(fds[1]), -1);
	CU_ASSERT_EQUAL(count_entries(tmp), 0);
	send_msg(fds[1], -1, NULL);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(c.rc, CCB_ERR_AUTH);
	check_usable(c.s, fds[1]);
	stop(&c, fds, false);

	/* The pre-HTCONDOR-3808 name FS_XXXXXXXXX fails the same way. */
	start(&c, fds, false, &t);
	snprintf(name, sizeof name, "%s/FS_XXXabcdef", tmp);
	send_str(fds[1], name);
	CU_ASSERT_EQUAL(recv_int_msg(fds[1]), -1);
	send_msg(fds[1], -1, NULL);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(c.rc, CCB_ERR_AUTH);
	stop(&c, fds, false);

	start(&c, fds, false, &t);
	snprintf(name, sizeof name, "%s/FS_127.0.0.1_%d_XXXabcdef", tmp, port_of(fds[1], false));
	send_str(fds[1], name);
	CU_ASSERT_EQUAL(recv_int_msg(fds[1]), 0);
	CU_ASSERT(exists(name));
	send_msg(fds[1], 0, NULL);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(c.rc, CCB_OK);
	CU_ASSERT(!exists(name));
	stop(&c, fds, false);

	/* Without channel binding the same old name is simply created. */
	cp.fs_no_channel_binding = true;
	start(&c, fds, false, &t);
	snprintf(name, sizeof name, "%s/FS_XXXabcdef", tmp);
	send_str(fds[1], name);
	CU_ASSERT_EQUAL(recv_int_msg(fds[1]), 0);
	CU_ASSERT(exists(name));
	send_msg(fds[1], 0, NULL);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(c.rc, CCB_OK);
	stop(&c, fds, false);
	finish_tmp(tmp);
}

/* mkdir fails (the name exists): int -1 plus the ext, and the existing
 * directory, not ours, is left alone. */
static void test_client_mkdir_fails(void)
{
	char tmp[64], name[256], made[320];
	ccb__auth_params cp = {0};
	struct run c = {.p = &cp};
	int fds[2], port;
	pthread_t t;
	uint8_t *b;
	size_t n;

	make_tmp(tmp);
	start(&c, fds, false, &t);
	port = port_of(fds[1], false);
	snprintf(name, sizeof name, "%s/FS_127.0.0.1_%d_XXXabcdef_", tmp, port);
	snprintf(made, sizeof made, "%s127.0.0.1:%d", name, port);
	CU_ASSERT_EQUAL_FATAL(mkdir(made, 0700), 0);
	send_str(fds[1], name);
	b = recv_msg(fds[1], &n);
	CU_ASSERT_EQUAL(get_be64(b), -1);
	CU_ASSERT(n > 8);
	free(b);
	send_msg(fds[1], -1, NULL);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(c.rc, CCB_ERR_AUTH);
	CU_ASSERT_PTR_NOT_NULL(strstr(c.err.detail, "mkdir"));
	CU_ASSERT(exists(made));
	rmdir(made);
	stop(&c, fds, false);
	finish_tmp(tmp);
}

/* The server hangs up before F3: a stream error (not AUTH), dir removed. */
static void test_client_broken(void)
{
	char tmp[64], name[256];
	ccb__auth_params cp = {0};
	struct run c = {.p = &cp};
	int fds[2];
	pthread_t t;
	size_t n;

	make_tmp(tmp);
	start(&c, fds, false, &t);
	snprintf(name, sizeof name, "%s/FS_127.0.0.1_%d_XXXabcdef_", tmp, port_of(fds[1], false));
	send_str(fds[1], name);
	free(recv_msg(fds[1], &n));
	CU_ASSERT_EQUAL(count_entries(tmp), 1);
	shutdown(fds[1], SHUT_RDWR);
	pthread_join(t, NULL);
	CU_ASSERT(c.rc != CCB_OK && c.rc != CCB_ERR_AUTH);
	stop(&c, fds, false);
	finish_tmp(tmp);
}

/* ---- server against a raw client -------------------------------------- */

/* Run our server on a pair; read its F1 into name (checking its shape). */
static void server_start(struct run *sv, const ccb__auth_params *sp, int fds[2], pthread_t *t,
			 const char *tmp, char *name, size_t namelen, int *port)
{
	uint8_t *b;
	size_t n, plen;
	char prefix[128];

	memset(sv, 0, sizeof *sv);
	sv->p = sp;
	start(sv, fds, true, t);
	*port = port_of(fds[0], true);
	b = recv_msg(fds[0], &n);
	CU_ASSERT_FATAL(n >= 1 && b[n - 1] == 0 && n <= namelen);
	memcpy(name, b, n);
	free(b);
	/* <dir>/FS_<ip>_<port>_XXX + six from mkstemp + '_' (§7.3). */
	snprintf(prefix, sizeof prefix, "%s/FS_127.0.0.1_%d_XXX", tmp, *port);
	plen = strlen(prefix);
	CU_ASSERT_EQUAL(strlen(name), plen + 7);
	CU_ASSERT(strncmp(name, prefix, plen) == 0);
	CU_ASSERT_EQUAL(name[strlen(name) - 1], '_');
	/* The mkstemp file itself is gone. */
	CU_ASSERT_EQUAL(count_entries(tmp), 0);
}

static void server_expect(struct run *sv, int fds[2], pthread_t t, int64_t verdict)
{
	CU_ASSERT_EQUAL(recv_int_msg(fds[0]), verdict);
	pthread_join(t, NULL);
	if (verdict == 0) {
		CU_ASSERT_EQUAL(sv->rc, CCB_OK);
	} else {
		CU_ASSERT_EQUAL(sv->rc, CCB_ERR_AUTH);
		CU_ASSERT_STRING_EQUAL(sv->res.peer_user, "");
		check_usable(sv->s, fds[0]);
	}
	stop(sv, fds, true);
}

/* The capture's shape: int 0 + ext naming our endpoint. */
static void test_server_with_ext(void)
{
	char tmp[64], name[256], ext[64], made[320], want[CCB_AUTH_NAME_MAX];
	ccb__auth_params sp = {.uid_domain = "vm"};
	struct run sv;
	int fds[2], port;
	pthread_t t;

	make_tmp(tmp);
	sp.fs_local_dir = tmp;
	server_start(&sv, &sp, fds, &t, tmp, name, sizeof name, &port);
	snprintf(ext, sizeof ext, "127.0.0.1:%d", port);
	snprintf(made, sizeof made, "%s%s", name, ext);
	CU_ASSERT_EQUAL(mkdir(made, 0700), 0);
	send_msg(fds[0], 0, ext);
	server_expect(&sv, fds, t, 0);
	expected_identity(want, sizeof want, "vm");
	CU_ASSERT_STRING_EQUAL(sv.res.peer_user, want);
	rmdir(made);
	finish_tmp(tmp);
}

/* The Go client's shape: int 0 alone, the name used as sent. */
static void test_server_without_ext(void)
{
	char tmp[64], name[256], want[CCB_AUTH_NAME_MAX];
	ccb__auth_params sp = {.uid_domain = "example.org"};
	struct run sv;
	int fds[2], port;
	pthread_t t;

	make_tmp(tmp);
	sp.fs_local_dir = tmp;
	server_start(&sv, &sp, fds, &t, tmp, name, sizeof name, &port);
	CU_ASSERT_EQUAL(mkdir(name, 0700), 0);
	send_msg(fds[0], 0, NULL);
	server_expect(&sv, fds, t, 0);
	expected_identity(want, sizeof want, "example.org");
	CU_ASSERT_STRING_EQUAL(sv.res.peer_user, want);
	rmdir(name);
	finish_tmp(tmp);
}

enum bad_kind {
	BAD_MODE_0755,
	BAD_SYMLINK,
	BAD_FILE,
	BAD_MISSING,
	BAD_EXT_MISMATCH,
	BAD_EXT_SLASH,
	BAD_EXT_GARBAGE,
	BAD_EXT_SOCK,
	BAD_CLIENT_FAILED,
};

/* Each refusal: F3 = -1, CCB_ERR_AUTH, no identity, stream usable. */
static void server_refuses(enum bad_kind kind, const char *why)
{
	char tmp[64], name[256], ext[96], made[360], other[128];
	ccb__auth_params sp = {.uid_domain = "vm"};
	struct run sv;
	int fds[2], port, fd;
	int64_t result = 0;
	pthread_t t;

	make_tmp(tmp);
	sp.fs_local_dir = tmp;
	snprintf(other, sizeof other, "%s/elsewhere", tmp);
	server_start(&sv, &sp, fds, &t, tmp, name, sizeof name, &port);
	snprintf(ext, sizeof ext, "127.0.0.1:%d", port);
	switch (kind) {
	case BAD_MODE_0755:
		snprintf(made, sizeof made, "%s%s", name, ext);
		CU_ASSERT_EQUAL(mkdir(made, 0700), 0);
		CU_ASSERT_EQUAL(chmod(made, 0755), 0);
		break;
	case BAD_SYMLINK:
		/* A link to a perfectly good 0700 directory. */
		snprintf(made, sizeof made, "%s%s", name, ext);
		CU_ASSERT_EQUAL(mkdir(other, 0700), 0);
		CU_ASSERT_EQUAL(symlink(other, made), 0);
		break;
	case BAD_FILE:
		snprintf(made, sizeof made, "%s%s", name, ext);
		fd = open(made, O_CREAT | O_EXCL | O_WRONLY, 0700);
		CU_ASSERT(fd >= 0);
		close(fd);
		break;
	case BAD_MISSING:
		snprintf(made, sizeof made, "%s%s", name, ext);
		break;
	case BAD_EXT_MISMATCH:
		/* A good directory, but named for another endpoint. */
		snprintf(ext, sizeof ext, "127.0.0.1:%d", port == 1 ? 2 : port - 1);
		snprintf(made, sizeof made, "%s%s", name, ext);
		CU_ASSERT_EQUAL(mkdir(made, 0700), 0);
		break;
	case BAD_EXT_SLASH:
		/* lstat("<dir>/") would pass; the '/' check must refuse. */
		snprintf(made, sizeof made, "%s%s", name, ext);
		CU_ASSERT_EQUAL(mkdir(made, 0700), 0);
		strcat(ext, "/");
		break;
	case BAD_EXT_GARBAGE:
		snprintf(ext, sizeof ext, "localhost:%d", port);
		snprintf(made, sizeof made, "%s%s", name, ext);
		CU_ASSERT_EQUAL(mkdir(made, 0700), 0);
		break;
	case BAD_EXT_SOCK:
		/* Right ip:port, but a shared-port id this server cannot vouch for. */
		strcat(ext, "?sock=collector");
		snprintf(made, sizeof made, "%s%s", name, ext);
		CU_ASSERT_EQUAL(mkdir(made, 0700), 0);
		break;
	case BAD_CLIENT_FAILED:
		/* The client says -1 even though a good directory is there. */
		snprintf(made, sizeof made, "%s%s", name, ext);
		CU_ASSERT_EQUAL(mkdir(made, 0700), 0);
		result = -1;
		break;
	}
	send_msg(fds[0], result, ext);
	server_expect(&sv, fds, t, -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(sv.err.detail, why));
	/* Clean up whatever the "client" made. */
	if (unlink(made) != 0)
		rmdir(made);
	rmdir(other);
	finish_tmp(tmp);
}

static void test_server_mode_0755(void) { server_refuses(BAD_MODE_0755, "bad attributes"); }
static void test_server_symlink(void) { server_refuses(BAD_SYMLINK, "bad attributes"); }
static void test_server_plain_file(void) { server_refuses(BAD_FILE, "bad attributes"); }
static void test_server_missing(void) { server_refuses(BAD_MISSING, "cannot lstat"); }
static void test_server_ext_mismatch(void) { server_refuses(BAD_EXT_MISMATCH, "does not match our endpoint"); }
static void test_server_ext_slash(void) { server_refuses(BAD_EXT_SLASH, "directory separator"); }
static void test_server_ext_garbage(void) { server_refuses(BAD_EXT_GARBAGE, "not a valid ip:port"); }
static void test_server_ext_sock(void) { server_refuses(BAD_EXT_SOCK, "shared-port id"); }
static void test_server_client_failed(void) { server_refuses(BAD_CLIENT_FAILED, "could not create"); }

/* Without channel binding the Go-shaped reply must still find a symlink. */
static void test_server_symlink_no_ext(void)
{
	char tmp[64], name[256], other[128];
	ccb__auth_params sp = {.uid_domain = "vm"};
	struct run sv;
	int fds[2], port;
	pthread_t t;

	make_tmp(tmp);
	sp.fs_local_dir = tmp;
	snprintf(other, sizeof other, "%s/elsewhere", tmp);
	server_start(&sv, &sp, fds, &t, tmp, name, sizeof name, &port);
	CU_ASSERT_EQUAL(mkdir(other, 0700), 0);
	CU_ASSERT_EQUAL(symlink(other, name), 0);
	send_msg(fds[0], 0, NULL);
	server_expect(&sv, fds, t, -1);
	unlink(name);
	rmdir(other);
	finish_tmp(tmp);
}

/* A directory with a subdirectory has link count 3 (on file systems that
 * count links; btrfs always says 1): refused (fs.cpp:429-434). */
static void test_server_nlink(void)
{
	char tmp[64], name[256], sub[300];
	ccb__auth_params sp = {.uid_domain = "vm"};
	struct run sv;
	struct stat st;
	int fds[2], port;
	pthread_t t;

	make_tmp(tmp);
	sp.fs_local_dir = tmp;
	server_start(&sv, &sp, fds, &t, tmp, name, sizeof name, &port);
	snprintf(sub, sizeof sub, "%s/sub", name);
	CU_ASSERT_EQUAL(mkdir(name, 0700), 0);
	CU_ASSERT_EQUAL(mkdir(sub, 0700), 0);
	CU_ASSERT_EQUAL(lstat(name, &st), 0);
	send_msg(fds[0], 0, NULL);
	server_expect(&sv, fds, t, st.st_nlink > 2 ? -1 : 0);
	rmdir(sub);
	rmdir(name);
	finish_tmp(tmp);
}

/* A server that cannot make a name (FS_LOCAL_DIR missing) sends "" and
 * refuses whatever the client says (fs.cpp:198-217). */
static void test_server_bad_local_dir(void)
{
	ccb__auth_params sp = {.uid_domain = "vm", .fs_local_dir = "/nonexistent/ccbt_fs"};
	struct run sv;
	int fds[2];
	pthread_t t;
	size_t n;
	uint8_t *b;

	memset(&sv, 0, sizeof sv);
	sv.p = &sp;
	start(&sv, fds, true, &t);
	b = recv_msg(fds[0], &n);
	CU_ASSERT(n == 1 && b[0] == 0);
	free(b);
	send_msg(fds[0], -1, NULL);
	server_expect(&sv, fds, t, -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(sv.err.detail, "mkstemp"));
}

static const ccbt_test tests[] = {
	{"loopback client and server", test_loopback},
	{"loopback, server without UID_DOMAIN", test_loopback_no_domain},
	{"client F2 against S2 capture shape", test_client_golden},
	{"client ext with shared-port id", test_client_shared_port_ext},
	{"client refused by server", test_client_refused},
	{"client gets empty path", test_client_empty_path},
	{"client, old server name prefix", test_client_old_server_prefix},
	{"client mkdir fails", test_client_mkdir_fails},
	{"client, server hangs up", test_client_broken},
	{"server, client reply with ext", test_server_with_ext},
	{"server, client reply without ext (Go)", test_server_without_ext},
	{"server refuses mode 0755", test_server_mode_0755},
	{"server refuses symlink", test_server_symlink},
	{"server refuses symlink, no ext", test_server_symlink_no_ext},
	{"server refuses plain file", test_server_plain_file},
	{"server refuses link count 3", test_server_nlink},
	{"server refuses missing dir", test_server_missing},
	{"server refuses mismatched ext", test_server_ext_mismatch},
	{"server refuses ext with '/'", test_server_ext_slash},
	{"server refuses ext not ip:port", test_server_ext_garbage},
	{"server refuses ext with sock=", test_server_ext_sock},
	{"server refuses client result -1", test_server_client_failed},
	{"server cannot make a name", test_server_bad_local_dir},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"FS authentication", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
