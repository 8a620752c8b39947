/*
 * Fibers (see fiber.h). The stack is an anonymous mapping with an
 * inaccessible page at its low end, so an overflow faults instead of
 * overwriting the heap.
 *
 * Switching: on x86-64 a dozen instructions below (fib_switch) save the
 * registers the ABI says a callee keeps (rbx, rbp, r12-r15, the MXCSR and
 * x87 control words) on the current stack and load those of the other side:
 * a switch is a function call. Elsewhere, and when built for shadow stacks
 * (-fcf-protection=return, which a stack switch by `ret` would violate),
 * ucontext: glibc's swapcontext() also saves and restores the signal mask,
 * one rt_sigprocmask system call per switch, four per wait of a handshake.
 * Fibers never change the signal mask, so there is nothing to keep.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__x86_64__) && !(defined(__CET__) && (__CET__ & 2))
#define FIB_ASM 1
#endif

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
#ifdef FIB_ASM
	void *sp, *caller_sp; /* saved stack pointers (fib_switch) */
#else
	ucontext_t ctx, caller;
#endif
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

/* What a fiber runs: fn, then back to its resumer for good. */
static void fib_run(ccb__fiber *f)
{
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
}

#ifdef FIB_ASM
/*
 * fib_switch(save, to): push the callee-saved registers and the MXCSR and
 * x87 control words, store the stack pointer in *save, switch to the stack
 * `to` and pop the same from it. A new fiber's stack is laid out by
 * fib_stack_init so that the first switch to it "returns" into fib_boot,
 * which calls fib_main(f) with f from the rbx slot on an aligned stack.
 */
void ccb__fib_switch(void **save, void *to) __attribute__((visibility("hidden")));
void ccb__fib_boot(void) __attribute__((visibility("hidden")));
void ccb__fib_main(ccb__fiber *f) __attribute__((visibility("hidden"), noreturn));
__asm__(".pushsection .text\n"
	".p2align 4\n"
	".globl ccb__fib_switch\n"
	".hidden ccb__fib_switch\n"
	".type ccb__fib_switch,@function\n"
	"ccb__fib_switch:\n"
	"\tpushq %rbp\n"
	"\tpushq %rbx\n"
	"\tpushq %r12\n"
	"\tpushq %r13\n"
	"\tpushq %r14\n"
	"\tpushq %r15\n"
	"\tsubq $8, %rsp\n"
	"\tstmxcsr (%rsp)\n"
	"\tfnstcw 4(%rsp)\n"
	"\tmovq %rsp, (%rdi)\n"
	"\tmovq %rsi, %rsp\n"
	"\tldmxcsr (%rsp)\n"
	"\tfldcw 4(%rsp)\n"
	"\taddq $8, %rsp\n"
	"\tpopq %r15\n"
	"\tpopq %r14\n"
	"\tpopq %r13\n"
	"\tpopq %r12\n"
	"\tpopq %rbx\n"
	"\tpopq %rbp\n"
	"\tret\n"
	".size ccb__fib_switch, .-ccb__fib_switch\n"
	".p2align 4\n"
	".globl ccb__fib_boot\n"
	".hidden ccb__fib_boot\n"
	".type ccb__fib_boot,@function\n"
	"ccb__fib_boot:\n"
	"\tmovq %rbx, %rdi\n"
	"\txorl %ebp, %ebp\n"
	"\tandq $-16, %rsp\n"
	"\tcall ccb__fib_main\n"
	"\tud2\n"
	".size ccb__fib_boot, .-ccb__fib_boot\n"
	".popsection\n");

void ccb__fib_main(ccb__fiber *f)
{
	fib_run(f);
	ccb__fib_switch(&f->sp, f->caller_sp);
	abort(); /* not reached */
}

/* The first frame of a new fiber, as fib_switch pops it: control words,
 * r15..r12, rbx = f, rbp, then the return address fib_boot. */
static void fib_stack_init(ccb__fiber *f)
{
	uintptr_t top = ((uintptr_t)f->stack + f->stack_len) & ~(uintptr_t)15;
	uint64_t *sp = (uint64_t *)top - 9;

	sp[0] = 0x1f80 | (uint64_t)0x037f << 32; /* MXCSR, x87 CW: the defaults */
	sp[1] = sp[2] = sp[3] = sp[4] = 0;       /* r15, r14, r13, r12 */
	sp[5] = (uint64_t)(uintptr_t)f;          /* rbx */
	sp[6] = 0;                               /* rbp */
	sp[7] = (uint64_t)(uintptr_t)ccb__fib_boot;
	sp[8] = 0;
	f->sp = sp;
}
#else
static void fib_entry(unsigned hi, unsigned lo)
{
	ccb__fiber *f = (ccb__fiber *)(((uintptr_t)hi << 32) | (uintptr_t)lo);

	fib_run(f);
	setcontext(&f->caller);
	abort(); /* not reached */
}

/* getcontext() returns twice; kept out of ccb__fiber_new() so that its
 * locals are not at risk (the saved context is only a template here). */
static __attribute__((noinline)) int fib_getcontext(ucontext_t *uc)
{
	return getcontext(uc);
}
#endif

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
#ifdef FIB_ASM
	(void)p;
	fib_stack_init(f);
#else
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
#endif
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
#ifdef FIB_ASM
	ccb__fib_switch(&f->caller_sp, f->sp);
#else
	swapcontext(&f->caller, &f->ctx);
#endif
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
#ifdef FIB_ASM
	ccb__fib_switch(&f->sp, f->caller_sp);
#else
	swapcontext(&f->ctx, &f->caller);
#endif
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
