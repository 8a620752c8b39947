/* Child processes for integration tests (ccbt_proc.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "ccbt.h"
#include "ccbt_proc.h"

extern char **environ;

struct ccbt_proc {
	pid_t pid;
	int out_fd;
	pthread_t reader;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *buf;
	size_t len, cap;
	bool eof;
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *read_output(void *arg)
{
	ccbt_proc *p = arg;
	char chunk[4096];

	for (;;) {
		ssize_t r = read(p->out_fd, chunk, sizeof chunk);
		if (r < 0 && errno == EINTR)
			continue;
		pthread_mutex_lock(&p->mu);
		if (r <= 0) {
			p->eof = true;
			pthread_cond_broadcast(&p->cv);
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		if (p->len + (size_t)r + 1 > p->cap) {
			size_t cap = (p->cap ? p->cap : 8192);
			while (cap < p->len + (size_t)r + 1)
				cap *= 2;
			char *n = realloc(p->buf, cap);
			if (!n)
				abort();
			p->buf = n;
			p->cap = cap;
		}
		memcpy(p->buf + p->len, chunk, (size_t)r);
		p->len += (size_t)r;
		p->buf[p->len] = '\0';
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
}

ccbt_proc *ccbt_proc_start(char *const argv[], char *const env[])
{
	ccbt_proc *p = calloc(1, sizeof *p);
	int pipefd[2];

	if (!p || pipe2(pipefd, O_CLOEXEC) != 0)
		abort();
	p->pid = fork();
	if (p->pid < 0)
		abort();
	if (p->pid == 0) {
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		for (size_t i = 0; env && env[i]; i++)
			putenv(env[i]);
		execve(argv[0], argv, environ);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);
	p->out_fd = pipefd[0];
	pthread_mutex_init(&p->mu, NULL);
	ccbt_cond_init_monotonic(&p->cv);
	p->buf = calloc(1, 1);
	p->cap = 1;
	pthread_create(&p->reader, NULL, read_output, p);
	return p;
}

pid_t ccbt_proc_pid(const ccbt_proc *p)
{
	return p->pid;
}

const char *ccbt_proc_output(ccbt_proc *p)
{
	return p->buf;
}

bool ccbt_proc_wait_line(ccbt_proc *p, const char *needle, int timeout_ms, char *line,
			 size_t size)
{
	long long end = now_ms() + timeout_ms;
	bool found = false;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		/* Complete lines only. */
		const char *at = strstr(p->buf, needle);
		if (at) {
			const char *nl = strchr(at, '\n');
			if (nl || p->eof) {
				const char *start = at;
				while (start > p->buf && start[-1] != '\n')
					start--;
				if (line && size) {
					size_t n = (size_t)((nl ? nl : p->buf + p->len) - start);
					if (n >= size)
						n = size - 1;
					memcpy(line, start, n);
					line[n] = '\0';
				}
				found = true;
				break;
			}
		}
		if (p->eof)
			break;
		long long left = end - now_ms();
		if (left <= 0)
			break;
		struct timespec ts;
		ccbt_monotonic_deadline(&ts, (long)left);
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	}
	pthread_mutex_unlock(&p->mu);
	return found;
}

/* Reap the child within timeout_ms: its exit code (128+signal when
 * killed), or -1 after SIGKILLing it at the timeout. */
static int reap(ccbt_proc *p, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	int status = 0;
	pid_t w;

	while ((w = waitpid(p->pid, &status, WNOHANG)) == 0 && now_ms() < end)
		usleep(5000);
	if (w == p->pid)
		return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &status, 0);
	return -1;
}

/* After the child is gone: join the reader (it sees EOF), free; the
 * output is handed to *out when given. */
static void finish(ccbt_proc *p, char **out)
{
	pthread_join(p->reader, NULL);
	close(p->out_fd);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	if (out)
		*out = p->buf;
	else
		free(p->buf);
	free(p);
}

int ccbt_proc_stop(ccbt_proc *p, int sig, int timeout_ms)
{
	pid_t pid = p->pid;
	char *output;
	int rc;

	if (sig)
		kill(pid, sig);
	rc = reap(p, timeout_ms);
	finish(p, &output);
	if (rc != 0 && getenv("CCBT_VERBOSE"))
		fprintf(stderr, "\n--- output of pid %d ---\n%s--- end ---\n", (int)pid, output);
	free(output);
	return rc;
}

int ccbt_proc_run(char *const argv[], char *const env[], int timeout_ms, char **out)
{
	ccbt_proc *p = ccbt_proc_start(argv, env);
	/* The reader thread keeps draining the pipe while we wait. */
	int rc = reap(p, timeout_ms);

	finish(p, rc < 0 ? NULL : out);
	if (rc < 0 && out)
		*out = NULL;
	return rc;
}
