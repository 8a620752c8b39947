/* util: errors, buffers, hex, deadlines, logging. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccbt.h"
#include "util/util.h"

static void test_errors(void)
{
	ccb_error e;
	char big[600];

	CU_ASSERT_EQUAL(ccb_error_set(&e, CCB_ERR_TIMEOUT, "read from %s", "x"), CCB_ERR_TIMEOUT);
	CU_ASSERT_STRING_EQUAL(e.detail, "read from x");
	CU_ASSERT_EQUAL(ccb_error_prefix(&e, "broker %d: ", 2), CCB_ERR_TIMEOUT);
	CU_ASSERT_STRING_EQUAL(e.detail, "broker 2: read from x");
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	ccb_error_set(&e, CCB_ERR_IO, "%s", big);
	CU_ASSERT_EQUAL(strlen(e.detail), CCB_ERROR_DETAIL_SIZE - 1);
	CU_ASSERT_EQUAL(ccb_error_set(NULL, CCB_ERR_IO, "ignored"), CCB_ERR_IO);
	ccb_error_clear(&e);
	CU_ASSERT_EQUAL(e.code, CCB_OK);
	for (int c = 0; c <= CCB_ERR_STATE; c++)
		CU_ASSERT(strcmp(ccb_strerror((ccb_err)c), "unknown error") != 0);
	CU_ASSERT_STRING_EQUAL(ccb_strerror((ccb_err)999), "unknown error");
}

static void test_buf_hex(void)
{
	ccb_buf b;
	uint8_t raw[3];
	char hex[7], *s;

	ccb_buf_init(&b);
	for (int i = 0; i < 1000; i++)
		CU_ASSERT(ccb_buf_appendf(&b, "%d,", i));
	CU_ASSERT(b.len > 3000);
	s = ccb_buf_steal_str(&b);
	CU_ASSERT(strncmp(s, "0,1,2,", 6) == 0);
	free(s);
	CU_ASSERT_EQUAL(b.len, 0);
	ccb_hex_encode("\x01\xab\xff", 3, hex);
	CU_ASSERT_STRING_EQUAL(hex, "01abff");
	CU_ASSERT(ccb_hex_decode("01ABff", 6, raw) && raw[1] == 0xab);
	CU_ASSERT(!ccb_hex_decode("0g", 2, raw));
	CU_ASSERT(!ccb_hex_decode("012", 3, raw));
}

static void test_deadlines(void)
{
	CU_ASSERT_EQUAL(ccb_deadline_left(INT64_MAX), -1);
	CU_ASSERT_EQUAL(ccb_deadline_left(ccb_now_ms() - 5), 0);
	CU_ASSERT(ccb_deadline_left(ccb_deadline_in(10000)) > 9000);
	CU_ASSERT_EQUAL(ccb_deadline_in(-1), INT64_MAX);
}

static int log_calls;
static char last[128];

static void on_log(ccb_log_level level, const char *msg, void *user)
{
	log_calls++;
	snprintf(last, sizeof last, "%s:%s:%s", ccb_log_level_name(level), msg, (char *)user);
}

static void test_logging(void)
{
	CCB_LOG(CCB_LOG_ERROR, "silent by default");
	CU_ASSERT_EQUAL(log_calls, 0);
	ccb_set_log_handler(on_log, CCB_LOG_INFO, "u");
	CCB_LOG(CCB_LOG_DEBUG, "too verbose");
	CU_ASSERT_EQUAL(log_calls, 0);
	CCB_LOG(CCB_LOG_WARNING, "x=%d", 5);
	CU_ASSERT_EQUAL(log_calls, 1);
	CU_ASSERT_STRING_EQUAL(last, "warning:x=5:u");
	ccb_set_log_handler(NULL, CCB_LOG_DEBUG, NULL);
	CCB_LOG(CCB_LOG_ERROR, "silent again");
	CU_ASSERT_EQUAL(log_calls, 1);
}

static void test_random(void)
{
	uint8_t a[20], b[20];

	CU_ASSERT(ccb_random_bytes(a, sizeof a, NULL) == CCB_OK);
	CU_ASSERT(ccb_random_bytes(b, sizeof b, NULL) == CCB_OK);
	CU_ASSERT(memcmp(a, b, sizeof a) != 0);
}

/* ccb__strerror: the errno text, errno left alone, a bounded buffer. */
static void test_strerror(void)
{
	char small[8], buf[64];
	const char *t;

	errno = EAGAIN;
	t = ccb__strerror(ENOENT);
	CU_ASSERT_EQUAL(errno, EAGAIN);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_STRING_EQUAL(t, "No such file or directory");
	t = ccb__strerror_r(ECONNREFUSED, buf, sizeof buf);
	CU_ASSERT_STRING_EQUAL(t, "Connection refused");
	/* An unknown value still names the number. */
	t = ccb__strerror_r(123456, buf, sizeof buf);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "123456"));
	/* A short buffer is never overrun and the result is a C string. */
	memset(small, 'x', sizeof small);
	t = ccb__strerror_r(123456, small, sizeof small);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT(t != small || memchr(small, '\0', sizeof small) != NULL);
	CU_ASSERT_PTR_NOT_NULL(ccb__strerror_r(EIO, NULL, 0));
}

/* Each thread gets its own text for its own (unknown) error value, the
 * case where strerror() formats into one static buffer shared by all. */
#define SE_THREADS 4
#define SE_ROUNDS 20000
static atomic_int se_bad;

static void *strerror_thread(void *arg)
{
	int e = 900000 + (int)(intptr_t)arg;
	char want[32];

	snprintf(want, sizeof want, "%d", e);
	for (int i = 0; i < SE_ROUNDS; i++) {
		const char *t = ccb__strerror(e);
		if (!t || !strstr(t, want))
			atomic_fetch_add(&se_bad, 1);
	}
	return NULL;
}

static void test_strerror_threads(void)
{
	pthread_t th[SE_THREADS];

	atomic_store(&se_bad, 0);
	for (intptr_t i = 0; i < SE_THREADS; i++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, strerror_thread, (void *)i), 0);
	for (int i = 0; i < SE_THREADS; i++)
		pthread_join(th[i], NULL);
	CU_ASSERT_EQUAL(atomic_load(&se_bad), 0);
}

static void test_free_secret(void)
{
	ccb__free_secret(NULL);
	ccb__free_secret(ccb_strdup("cookie-0123456789"));
	ccb__free_secret(ccb_strdup(""));
}

/* ccbt_wait_until: true as soon as the event is seen, false on timeout. */
static atomic_int wu_flag;

static bool wu_cond(void *arg)
{
	return atomic_load((atomic_int *)arg) != 0;
}

static void *wu_setter(void *arg)
{
	struct timespec nap = {0, 20 * 1000 * 1000};
	nanosleep(&nap, NULL);
	atomic_store((atomic_int *)arg, 1);
	return NULL;
}

static void test_wait_until(void)
{
	pthread_t th;

	atomic_store(&wu_flag, 0);
	CU_ASSERT_FALSE(ccbt_wait_until(10, wu_cond, &wu_flag));
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, wu_setter, &wu_flag), 0);
	CU_ASSERT(ccbt_wait_until(30000, wu_cond, &wu_flag));
	pthread_join(th, NULL);
}

static const ccbt_test tests[] = {
	{"strerror", test_strerror}, {"strerror from threads", test_strerror_threads},
	{"free secret", test_free_secret}, {"wait until", test_wait_until},
	{"errors", test_errors},     {"buffers and hex", test_buf_hex},
	{"deadlines", test_deadlines}, {"logging", test_logging},
	{"random", test_random},     {NULL, NULL},
};

static const ccbt_suite suites[] = {{"util", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}
