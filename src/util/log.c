#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "util.h"

#include <pthread.h>

/* The handler and its user pointer change together under a small mutex; the
 * hot path (is this level enabled?) is one relaxed atomic load. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static ccb_log_fn log_fn;
static void *log_user;
static atomic_int log_max = -1; /* -1: no handler */

void ccb_set_log_handler(ccb_log_fn fn, ccb_log_level max_level, void *user)
{
	pthread_mutex_lock(&log_lock);
	log_fn = fn;
	log_user = user;
	atomic_store(&log_max, fn ? (int)max_level : -1);
	pthread_mutex_unlock(&log_lock);
}

const char *ccb_log_level_name(ccb_log_level level)
{
	switch (level) {
	case CCB_LOG_ERROR: return "error";
	case CCB_LOG_WARNING: return "warning";
	case CCB_LOG_INFO: return "info";
	case CCB_LOG_DEBUG: return "debug";
	}
	return "?";
}

bool ccb__log_enabled(ccb_log_level level)
{
	return (int)level <= atomic_load_explicit(&log_max, memory_order_relaxed);
}

void ccb__log(ccb_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	ccb_log_fn fn;
	void *user;

	pthread_mutex_lock(&log_lock);
	fn = log_fn;
	user = log_user;
	pthread_mutex_unlock(&log_lock);
	if (!fn || !ccb__log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fn(level, line, user);
}
