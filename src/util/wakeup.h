/*
 * A stop/wake-up signal one thread raises and other threads poll() or
 * epoll() for: an eventfd, the one mechanism every layer uses instead of its
 * own pipe or eventfd. Not installed.
 *
 * A signal stays raised (the fd stays readable) until drained, so a waiter
 * that starts polling after the signal still sees it; a stop signal is
 * simply never drained. Signalling from several threads at once is safe
 * (eventfd writes are atomic); so is signalling from a signal handler.
 */
#ifndef CCB_UTIL_WAKEUP_H
#define CCB_UTIL_WAKEUP_H

#include <stdbool.h>

#include "ccb/error.h"

typedef struct ccb__wakeup {
	int fd; /* -1 when not open */
} ccb__wakeup;

/* An empty wake-up that ccb__wakeup_close() may be called on. */
#define CCB__WAKEUP_NONE {.fd = -1}

/* Open a non-blocking, close-on-exec eventfd. CCB_ERR_IO on failure (errno
 * text in the detail, w->fd stays -1). */
ccb_err ccb__wakeup_init(ccb__wakeup *w, ccb_error *err);
/* Raise the signal; a no-op on a closed wake-up. */
void ccb__wakeup_signal(ccb__wakeup *w);
/* The fd to poll for POLLIN / EPOLLIN (-1 when closed). */
int ccb__wakeup_fd(const ccb__wakeup *w);
/* Lower the signal; true if it was raised. */
bool ccb__wakeup_drain(ccb__wakeup *w);
/* Whether the signal is raised, without lowering it. */
bool ccb__wakeup_raised(const ccb__wakeup *w);
/* Close the fd (idempotent). */
void ccb__wakeup_close(ccb__wakeup *w);

#endif
