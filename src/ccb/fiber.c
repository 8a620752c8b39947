/*
 * Fibers on ucontext (see fiber.h). The stack is an anonymous mapping with
 * an inaccessible page at its low end, so an overflow faults instead of
 * overwriting the heap.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "fiber.h"

#if defined(__SANITIZE_ADDRESS__)
#define FIB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FIB_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define FIB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FIB_TSAN 1
#endif
#endif

#ifdef FIB_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef FIB_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#if defined(FIB_ASAN) || defined(FIB_TSAN)
#define FIB_DEFAULT_STACK (512 * 1024) /* instrumented frames are larger */
#else
#define FIB_DEFAULT_STACK (256 * 1024)
#endif

struct ccb__fiber {
	ucontext_t ctx, caller;
	void *map;
	size_t map_len;
	char *stack;
	size_t stack_len;
	void (*fn)(void *);
	void *arg;
	bool done;
	/* ASan: fake-stack handles and the resumer's stack bounds. */
	void *fake_self, *fake_caller;
	const void *caller_bottom;
	size_t caller_size;
	/* TSan: the fiber's context and the resumer's. */
	void *tsan_self, *tsan_caller;
};

/*
 * Stacks of finished fibers are kept for the next ones (a broker starts a
 * fiber per handshake: mapping, guarding and unmapping a stack each time
 * cost more than the plaintext handshake itself). A few dozen are kept; the
 * pages a handshake touched stay resident, about 20 KiB each. Under the
 * sanitizers every stack is new, so their bookkeeping of it stays simple.
 */
#if !defined(FIB_ASAN) && !defined(FIB_TSAN)
#define FIB_POOL_MAX 32
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	void *map;
	size_t len;
} pool[FIB_POOL_MAX];
static size_t npool;

static void *pool_take(size_t len)
{
	void *map = NULL;

	pthread_mutex_lock(&pool_mu);
	for (size_t i = npool; i-- > 0;)
		if (pool[i].len == len) {
			map = pool[i].map;
			pool[i] = pool[--npool];
			break;
		}
	pthread_mutex_unlock(&pool_mu);
	return map;
}

static bool pool_put(void *map, size_t len)
{
	bool kept = false;

	pthread_mutex_lock(&pool_mu);
	if (npool < FIB_POOL_MAX) {
		pool[npool].map = map;
		pool[npool].len = len;
		npool++;
		kept = true;
	}
	pthread_mutex_unlock(&pool_mu);
	return kept;
}
#else
static void *pool_take(size_t len)
{
	(void)len;
	return NULL;
}

static bool pool_put(void *map, size_t len)
{
	(void)map;
	(void)len;
	return false;
}
#endif

static void fib_entry(unsigned hi, unsigned lo)
{
	ccb__fiber *f = (ccb__fiber *)(((uintptr_t)hi << 32) | (uintptr_t)lo);

#ifdef FIB_ASAN
	__sanitizer_finish_switch_fiber(NULL, &f->caller_bottom, &f->caller_size);
#endif
	f->fn(f->arg);
	f->done = true;
#ifdef FIB_ASAN
	/* NULL: this fiber's fake stack may go, it never runs again. */
	__sanitizer_start_switch_fiber(NULL, f->caller_bottom, f->caller_size);
#endif
#ifdef FIB_TSAN
	__tsan_switch_to_fiber(f->tsan_caller, 0);
#endif
	setcontext(&f->caller);
	abort(); /* not reached */
}

/* getcontext() returns twice; kept out of ccb__fiber_new() so that its
 * locals are not at risk (the saved context is only a template here). */
static __attribute__((noinline)) int fib_getcontext(ucontext_t *uc)
{
	return getcontext(uc);
}

ccb__fiber *ccb__fiber_new(size_t stack, void (*fn)(void *), void *arg)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	ccb__fiber *f = calloc(1, sizeof *f);
	uintptr_t p = (uintptr_t)f;

	if (!f)
		return NULL;
	if (!stack)
		stack = FIB_DEFAULT_STACK;
	stack = (stack + page - 1) / page * page;
	f->map_len = stack + page;
	/* A pooled stack already has its guard page. */
	if (!(f->map = pool_take(f->map_len))) {
		f->map = mmap(NULL, f->map_len, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
		if (f->map == MAP_FAILED) {
			free(f);
			return NULL;
		}
		if (mprotect(f->map, page, PROT_NONE) != 0) {
			munmap(f->map, f->map_len);
			free(f);
			return NULL;
		}
	}
	f->stack = (char *)f->map + page;
	f->stack_len = stack;
	f->fn = fn;
	f->arg = arg;
	if (fib_getcontext(&f->ctx) != 0) {
		munmap(f->map, f->map_len);
		free(f);
		return NULL;
	}
	f->ctx.uc_stack.ss_sp = f->stack;
	f->ctx.uc_stack.ss_size = f->stack_len;
	f->ctx.uc_link = NULL;
	makecontext(&f->ctx, (void (*)(void))fib_entry, 2, (unsigned)(p >> 32),
		    (unsigned)(p & 0xffffffffu));
#ifdef FIB_TSAN
	f->tsan_self = __tsan_create_fiber(0);
#endif
	return f;
}

bool ccb__fiber_resume(ccb__fiber *f)
{
	if (f->done)
		return true;
#ifdef FIB_TSAN
	f->tsan_caller = __tsan_get_current_fiber();
	__tsan_switch_to_fiber(f->tsan_self, 0);
#endif
#ifdef FIB_ASAN
	__sanitizer_start_switch_fiber(&f->fake_caller, f->stack, f->stack_len);
#endif
	swapcontext(&f->caller, &f->ctx);
#ifdef FIB_ASAN
	__sanitizer_finish_switch_fiber(f->fake_caller, NULL, NULL);
#endif
	return f->done;
}

void ccb__fiber_yield(ccb__fiber *f)
{
#ifdef FIB_TSAN
	__tsan_switch_to_fiber(f->tsan_caller, 0);
#endif
#ifdef FIB_ASAN
	__sanitizer_start_switch_fiber(&f->fake_self, f->caller_bottom, f->caller_size);
#endif
	swapcontext(&f->ctx, &f->caller);
#ifdef FIB_ASAN
	__sanitizer_finish_switch_fiber(f->fake_self, &f->caller_bottom, &f->caller_size);
#endif
}

void ccb__fiber_free(ccb__fiber *f)
{
	if (!f)
		return;
#ifdef FIB_TSAN
	if (f->tsan_self)
		__tsan_destroy_fiber(f->tsan_self);
#endif
#ifdef FIB_ASAN
	/* Frames left poisoned on this stack must not outlive the mapping. */
	__asan_unpoison_memory_region(f->stack, f->stack_len);
#endif
	if (!pool_put(f->map, f->map_len))
		munmap(f->map, f->map_len);
	free(f);
}
