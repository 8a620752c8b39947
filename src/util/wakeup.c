/* Stop/wake-up signals on an eventfd (util/wakeup.h). */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/util.h"
#include "util/wakeup.h"

ccb_err ccb__wakeup_init(ccb__wakeup *w, ccb_error *err)
{
	w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->fd < 0)
		return ccb_error_set(err, CCB_ERR_IO, "wake-up eventfd: %s", ccb__strerror(errno));
	return CCB_OK;
}

void ccb__wakeup_signal(ccb__wakeup *w)
{
	uint64_t one = 1;
	ssize_t n;

	if (w->fd < 0)
		return;
	/* Fails only with EAGAIN when the counter is saturated, which leaves
	 * the fd readable: the signal is raised either way. */
	do
		n = write(w->fd, &one, sizeof one);
	while (n < 0 && errno == EINTR);
}

int ccb__wakeup_fd(const ccb__wakeup *w)
{
	return w->fd;
}

bool ccb__wakeup_drain(ccb__wakeup *w)
{
	uint64_t v;
	ssize_t n;

	if (w->fd < 0)
		return false;
	do
		n = read(w->fd, &v, sizeof v);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof v;
}

bool ccb__wakeup_raised(const ccb__wakeup *w)
{
	struct pollfd p = {.fd = w->fd, .events = POLLIN};

	return w->fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

void ccb__wakeup_close(ccb__wakeup *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}
