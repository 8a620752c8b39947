#ifndef CCBCTL_H
#define CCBCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccb/config.h"
#include "ccb/dial.h"

/* Exit codes shared by every sub-command. */
#define CCBCTL_EXIT_OK 0
#define CCBCTL_EXIT_FAIL 1    /* the operation failed (peer refused, bad input data) */
#define CCBCTL_EXIT_USAGE 2   /* bad command line */

int ccbctl_broker(int argc, char **argv);
int ccbctl_decode(int argc, char **argv);
int ccbctl_listen(int argc, char **argv);
int ccbctl_dial(int argc, char **argv);
int ccbctl_ping(int argc, char **argv);
int ccbctl_status(int argc, char **argv);
int ccbctl_token(int argc, char **argv);
int ccbctl_config(int argc, char **argv);
int ccbctl_probe(int argc, char **argv);

/* Shared by ping and dial (dial.c): dial options from the config file
 * (CCB_DIAL_TIMEOUT, CCB_DIAL_STAGGER_MS, CCB_CLIENT_STREAMING,
 * CCB_PROXY_RETURN_ADDRESS, TOOLS_ASSUME_FIREWALLS) and the per-step
 * progress printer. */
int ccbctl_dial_opts_from_config(const char *who, const ccb_config *cfg, ccb_dial_config *o,
				 const ccb_sec_client_config *sc, bool streaming,
				 const char *proxy_return, int timeout_s);
void ccbctl_dial_print_step(const ccb_dial_event *ev, void *user);
/* --outbound BROKER: every connection through that outbound broker
 * (CCB_PROXY_CONNECT), HTCondor's exceptions not applied. NULL: no change. */
void ccbctl_dial_set_outbound(ccb_dial_config *o, const char *broker);

/* Generic helpers (util.c); ccbctl uses only libccb's public API. */
/* Text for an errno value, safe from any thread (a per-thread buffer: valid
 * until the same thread calls it again). Never NULL. */
const char *ccbctl_strerror(int e);
/* The whole of `path` ("-": stdin), NUL-terminated (not counted in *len);
 * the caller frees it. NULL with errno set when it cannot be read. */
char *ccbctl_read_file(const char *path, size_t *len);
/* Decode `hexlen` hex digits (either case) into hexlen / 2 bytes at out;
 * false on an odd length or a bad digit. */
bool ccbctl_hex_decode(const char *hex, size_t hexlen, uint8_t *out);

#endif
