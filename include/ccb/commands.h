/*
 * libccb — HTCondor command integers used by CCB, the security handshake and
 * shared port, spelled as HTCondor's condor_commands.h spells them.
 */
#ifndef CCB_COMMANDS_H
#define CCB_COMMANDS_H

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
#define CCB_CMD_ALIVE 441
#define CCB_CMD_DC_AUTHENTICATE 60010
#define CCB_CMD_DC_NOP 60011
#define CCB_CMD_DC_SEC_QUERY 60040

/** HTCondor's name for a command integer ("CCB_REGISTER"), or NULL if this
 * table does not know it. Static storage; thread-safe. */
const char *ccb_command_name(long long cmd);

#ifdef __cplusplus
}
#endif
#endif
