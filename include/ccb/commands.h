/*
 * libccb — HTCondor command integers used by CCB, the security handshake and
 * shared port, spelled as HTCondor's condor_commands.h spells them (with a
 * CCB_CMD_ prefix), with HTCondor's values.
 *
 * Memory (as in every libccb header, see ccb/error.h): a returned `const char *`
 * is borrowed, valid until its owner is freed or changed; a returned `char *`
 * or `char **out` is the caller's, released with ccb_free().
 */
#ifndef CCB_COMMANDS_H
#define CCB_COMMANDS_H

#include "ccb/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CCB_CMD_UPDATE_MASTER_AD 2
#define CCB_CMD_INVALIDATE_MASTER_ADS 15
#define CCB_CMD_CCB_REGISTER 67
#define CCB_CMD_CCB_REQUEST 68
#define CCB_CMD_CCB_REVERSE_CONNECT 69
#define CCB_CMD_SHARED_PORT_CONNECT 75
#define CCB_CMD_SHARED_PORT_PASS_SOCK 76
/* Outbound proxy / tunnel: "dial this target for me and splice". */
#define CCB_CMD_CCB_PROXY_CONNECT 82
/* Reserved in C++ ("(83 reserved)"); Go's name, served by golang-ccb only. */
#define CCB_CMD_CCB_GET_TUNNEL_ADDRESS 83
/* SCHED_VERS + 41; only ever a Command attribute on the registration socket. */
#define CCB_CMD_ALIVE 441
#define CCB_CMD_DC_AUTHENTICATE 60010
#define CCB_CMD_DC_NOP 60011
#define CCB_CMD_DC_SEC_QUERY 60040
/* Sent by a tunnelling inside CCB to its master once ready. */
#define CCB_CMD_DC_SET_READY 60043
/* libccb's own (not HTCondor's): the broker's status query, READ; no
 * payload, reply = one CEDAR string of JSON (include/ccb/broker.h). */
#define CCB_CMD_LIBCCB_STATUS 62001

/** HTCondor's name for a command integer ("CCB_REGISTER"), or NULL if this
 * table does not know it. Static storage; thread-safe. */
CCB_API const char *ccb_command_name(long long cmd);

#ifdef __cplusplus
}
#endif
#endif
