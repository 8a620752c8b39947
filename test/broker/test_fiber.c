/* The broker's fibers (src/ccb/fiber.h): run to a yield and back, resume in
 * order, finish; many alive at once; a never-resumed fiber can be freed;
 * running past the stack hits the guard page (in a child process). */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>

#include "fiber.h"
#include "ccbt.h"

typedef struct {
	ccb__fiber *f;
	int steps;
	int log[8];
	int n;
} ctx;

static void body(void *arg)
{
	ctx *c = arg;
	for (int i = 0; i < c->steps; i++) {
		c->log[c->n++] = i;
		ccb__fiber_yield(c->f);
	}
	c->log[c->n++] = 100;
}

static void test_yield_resume(void)
{
	ctx c = {.steps = 3};

	c.f = ccb__fiber_new(0, body, &c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c.f);
	CU_ASSERT_FALSE(ccb__fiber_resume(c.f));
	CU_ASSERT_EQUAL(c.n, 1);
	CU_ASSERT_FALSE(ccb__fiber_resume(c.f));
	CU_ASSERT_FALSE(ccb__fiber_resume(c.f));
	CU_ASSERT_EQUAL(c.n, 3);
	CU_ASSERT_TRUE(ccb__fiber_resume(c.f));
	CU_ASSERT_EQUAL(c.n, 4);
	CU_ASSERT_EQUAL(c.log[0], 0);
	CU_ASSERT_EQUAL(c.log[2], 2);
	CU_ASSERT_EQUAL(c.log[3], 100);
	/* Finished: resuming again is a no-op. */
	CU_ASSERT_TRUE(ccb__fiber_resume(c.f));
	CU_ASSERT_EQUAL(c.n, 4);
	ccb__fiber_free(c.f);
}

static void test_many_interleaved(void)
{
	enum { N = 1000 };
	ctx *c = calloc(N, sizeof *c);
	int done = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (int i = 0; i < N; i++) {
		c[i].steps = 2;
		c[i].f = ccb__fiber_new(64 * 1024, body, &c[i]);
		CU_ASSERT_PTR_NOT_NULL_FATAL(c[i].f);
	}
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < N; i++)
			done += ccb__fiber_resume(c[i].f);
	CU_ASSERT_EQUAL(done, N);
	for (int i = 0; i < N; i++) {
		CU_ASSERT_EQUAL(c[i].n, 3);
		ccb__fiber_free(c[i].f);
	}
	free(c);
}

static void test_free_unstarted(void)
{
	ctx c = {.steps = 1};

	c.f = ccb__fiber_new(0, body, &c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c.f);
	ccb__fiber_free(c.f);
	CU_ASSERT_EQUAL(c.n, 0);
}

static int deep(volatile char *p, int n)
{
	volatile char buf[1024];
	buf[0] = (char)n;
	buf[1023] = *p;
	return n ? deep(buf, n - 1) + buf[0] : buf[1023];
}

static void overflow(void *arg)
{
	(void)arg;
	deep((volatile char[1]){0}, 1 << 20);
}

static void test_guard_page(void)
{
	pid_t pid = fork();
	int st = 0;

	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		ccb__fiber *f = ccb__fiber_new(64 * 1024, overflow, NULL);
		if (f)
			ccb__fiber_resume(f);
		_exit(0); /* not reached when the guard page works */
	}
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	/* Killed by the fault (or ASan's report of it), never a clean exit. */
	CU_ASSERT(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0));
}

static const ccbt_test tests[] = {
	{"yield and resume", test_yield_resume},
	{"1000 fibers interleaved", test_many_interleaved},
	{"free a fiber never run", test_free_unstarted},
	{"stack overflow hits the guard page", test_guard_page},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"broker fibers", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
