/*
 * Internal to the listener: its own command socket and the address it
 * advertises (the sinful without the CCB parameters). Not installed.
 *
 * Include as "listener_sock.h": only src/ccb/listener*.c.
 */
#ifndef CCB_LISTENER_SOCK_H
#define CCB_LISTENER_SOCK_H

#include <stdbool.h>

#include "ccb/addr.h"
#include "ccb/error.h"

/*
 * Open the listener's command socket as `bind_text` says ("host",
 * "host:port", "[v6]:port" or a sinful; the host an IP literal, wildcard
 * allowed; NULL: an ephemeral port on the address used to reach
 * `toward_host`), and build the address to advertise for it:
 * <ip:port?addrs=ip-port[&alias=..]&noUDP>. A wildcard or missing host is
 * advertised as the local address the kernel routes toward `toward_host`
 * (no packet is sent), 127.0.0.1 when that cannot be found. On success
 * *fd is a non-blocking listening socket and *out a new sinful (the caller
 * frees both). Errors: CCB_ERR_INVALID_ARG (bad address), CCB_ERR_IO.
 */
ccb_err ccb__listener_open_command(const char *bind_text, const char *toward_host,
				   const char *alias, int *fd, ccb_sinful **out, ccb_error *err);

/*
 * The embedder's own command address, advertised as is (its parameters
 * kept; CCBID and PrivNet are the listener's to set). The port must be
 * 1-65535. Errors: CCB_ERR_INVALID_ARG, CCB_ERR_NOMEM.
 */
ccb_err ccb__listener_own_address(const char *text, ccb_sinful **out, ccb_error *err);

#endif
