#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "ccbt.h"

int ccbt_run(const ccbt_suite *suites)
{
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	for (const ccbt_suite *s = suites; s->name; s++) {
		CU_pSuite suite = CU_add_suite(s->name, NULL, NULL);
		if (!suite)
			return 2;
		for (const ccbt_test *t = s->tests; t->name; t++)
			if (!CU_add_test(suite, t->name, t->fn))
				return 2;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}

static void die(const char *what)
{
	perror(what);
	abort();
}

int ccbt_listen(uint16_t *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof sa;
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 128) < 0)
		die("bind/listen");
	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		die("getsockname");
	*port = ntohs(sa.sin_port);
	return fd;
}

void ccbt_tcp_pair(int fds[2])
{
	uint16_t port;
	int one = 1;
	int lfd = ccbt_listen(&port);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&sa, sizeof sa) < 0)
		die("connect");
	fds[1] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fds[1] < 0)
		die("accept");
	setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	close(lfd);
}

char *ccbt_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		return NULL;
	}
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf) {
		buf[n] = '\0';
		if (len)
			*len = (size_t)n;
	}
	return buf;
}

/* Entries of a /proc directory, without "." and "..". */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 2;
}

int ccbt_count_fds(void)
{
	return count_entries("/proc/self/fd") - 1; /* the DIR's own fd */
}

int ccbt_count_threads(void)
{
	return count_entries("/proc/self/task");
}

uint8_t *ccbt_unhex(const char *hex, size_t *len)
{
	size_t cap = strlen(hex) / 2 + 1, n = 0;
	uint8_t *out = malloc(cap);
	int hi = -1;

	if (!out)
		abort();
	for (const char *p = hex; *p; p++) {
		int v;
		if (*p == ' ' || *p == '\n' || *p == '\t')
			continue;
		if (*p >= '0' && *p <= '9')
			v = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			v = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			v = *p - 'A' + 10;
		else
			abort();
		if (hi < 0) {
			hi = v;
		} else {
			out[n++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	if (hi >= 0)
		abort();
	*len = n;
	return out;
}

void ccbt_read_raw(int fd, uint8_t *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = recv(fd, buf + got, n - got, 0);
		CU_ASSERT_FATAL(r > 0);
		got += (size_t)r;
	}
}

void ccbt_expect_wire(int fd, const char *hex)
{
	size_t n;
	uint8_t *want = ccbt_unhex(hex, &n), *got = malloc(n);

	ccbt_read_raw(fd, got, n);
	CU_ASSERT(memcmp(want, got, n) == 0);
	if (memcmp(want, got, n)) {
		fprintf(stderr, "\n  want ");
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, "%02x", want[i]);
		fprintf(stderr, "\n  got  ");
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, "%02x", got[i]);
		fprintf(stderr, "\n");
	}
	free(want);
	free(got);
}

void ccbt_send_hex(int fd, const char *hex)
{
	size_t n;
	uint8_t *b = ccbt_unhex(hex, &n);

	CU_ASSERT_FATAL(send(fd, b, n, MSG_NOSIGNAL) == (ssize_t)n);
	free(b);
}

int ccbt_sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int64_t ccbt_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool ccbt_wait_until(int timeout_ms, bool (*cond)(void *arg), void *arg)
{
	int64_t end = ccbt_mono_ms() + timeout_ms;

	for (;;) {
		if (cond(arg))
			return true;
		if (ccbt_mono_ms() >= end)
			return cond(arg);
		struct timespec nap = {0, 2 * 1000 * 1000};
		nanosleep(&nap, NULL);
	}
}

void ccbt_cond_init_monotonic(pthread_cond_t *cv)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
}

void ccbt_monotonic_deadline(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}
