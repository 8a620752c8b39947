/*
 * Shared-port internals: the SHARED_PORT_CONNECT parser, Unix endpoint
 * addressing, fd passing and deadline-bounded waits. Not installed.
 * Wire reference: ../shared/spec/shared-port.md ("sp §n").
 */
#ifndef CCB_SHAREDPORT_INTERNAL_H
#define CCB_SHAREDPORT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "ccb/sharedport.h"
#include "util/util.h"
#include "util/wakeup.h"

/* Command integers (sp §1; H:src/condor_includes/condor_commands.h). */
#define SHAREDPORT_CONNECT 75
#define SHAREDPORT_PASS_SOCK 76

/* Bounds of condor_shared_port's reader (sp §3.1;
 * H:src/condor_io/shared_port_server.cpp HandleConnectRequest): id and name
 * in char[1024], up to 100 extra strings in char[512]; Stream::get(char *, l)
 * fails when strlen + 1 > l. */
#define SHAREDPORT_NAME_BUF 1024
#define SHAREDPORT_EXTRA_BUF 512
#define SHAREDPORT_MAX_MORE_ARGS 100
/* The largest request that can pass those checks: cmd, id, name, deadline,
 * more_args, 100 extras. Anything bigger is refused unread. */
#define SHAREDPORT_MAX_REQUEST \
	(8 + 2 * SHAREDPORT_NAME_BUF + 8 + 8 + SHAREDPORT_MAX_MORE_ARGS * SHAREDPORT_EXTRA_BUF)

/* DaemonCore peeks at the packet header plus the command int (sp §3.2). */
#define SHAREDPORT_PEEK_LEN 13

/* A decoded SHARED_PORT_CONNECT. The strings point into the parsed buffer
 * and are NUL-terminated there (plaintext CEDAR strings carry their NUL); a
 * NULL-string marker reads as "" (Stream::get(char *, int)). */
typedef struct sharedport__request {
	const char *id;
	size_t id_len;
	const char *client_name;
	size_t client_name_len;
	int32_t deadline;  /* seconds; < 0: none */
	int32_t more_args; /* extra strings that were skipped */
} sharedport__request;

/*
 * Parse a whole SHARED_PORT_CONNECT message body (from the command int to
 * the end of message) as condor_shared_port reads it. Every byte must be
 * consumed. Works on any byte buffer (fuzzed by test/fuzz/fuzz_sharedport.c).
 * Errors: CCB_ERR_PROTOCOL, CCB_ERR_TOO_LARGE.
 */
ccb_err sharedport__parse_connect(const uint8_t *body, size_t len, sharedport__request *req,
				  ccb_error *err);

/* The deadline field a client sends for absolute deadline `deadline_ms` at
 * time `now_ms` (sp §2 field 4). */
int64_t sharedport__deadline_field(int64_t deadline_ms, int64_t now_ms);

/* "host:port" of the socket's peer (or "fd N") into buf. */
void sharedport__peer_name(int fd, char *buf, size_t size);

/* ---- Unix endpoint addresses (sp §4.1) --------------------------------- */

typedef struct sharedport__unaddr {
	struct sockaddr_un sa;
	socklen_t len;
	char text[sizeof(((struct sockaddr_un *)0)->sun_path) + 2]; /* for messages */
} sharedport__unaddr;

/* File socket <dir>/<id>. CCB_ERR_INVALID_ARG if it does not fit sun_path. */
ccb_err sharedport__file_addr(const char *dir, const char *id, sharedport__unaddr *a,
			      ccb_error *err);
/* Linux abstract socket "\0<cookie>/<id>", length without a trailing NUL. */
ccb_err sharedport__abstract_addr(const char *cookie, const char *id, sharedport__unaddr *a,
				  ccb_error *err);

/* ---- waiting ------------------------------------------------------------ */

/* Wait until `fd` has `events` or `deadline` passes; `wake_fd` (-1: none)
 * becoming readable means cancelled. `what` names the step in errors. */
ccb_err sharedport__wait(int fd, short events, int wake_fd, int64_t deadline, const char *what,
			 ccb_error *err);

/* Stopping a server or an endpoint raises its ccb__wakeup (util/wakeup.h),
 * never drained, so every later wait sees the cancellation too. */

/* ---- fd passing (sp §5) ------------------------------------------------- */

/*
 * Sender side: connect to the endpoint `id` (abstract name under `cookie`
 * first if given, then <dir>/<id>), send int 76 + EOM, then one byte with
 * `fd` in SCM_RIGHTS. `fd` stays owned by the caller.
 */
ccb_err sharedport__pass_fd(const char *dir, const char *cookie, const char *id, int fd,
			    int64_t deadline, int wake_fd, ccb_error *err);

/*
 * Receiver side, on an accepted Unix connection `ufd` (owned by the caller):
 * read int 76 + EOM, then the byte and its descriptor. *fd is a socket, in
 * blocking mode, close-on-exec.
 */
ccb_err sharedport__recv_handoff(int ufd, int64_t deadline, int wake_fd, int *fd,
				 ccb_error *err);

#endif
