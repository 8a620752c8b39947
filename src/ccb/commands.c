#include "ccb/commands.h"

const char *ccb_command_name(long long cmd)
{
	/* Values from H:src/condor_includes/condor_commands.h. */
	switch (cmd) {
	case CCB_CMD_UPDATE_MASTER_AD: return "UPDATE_MASTER_AD";
	case CCB_CMD_INVALIDATE_MASTER_ADS: return "INVALIDATE_MASTER_ADS";
	case CCB_CMD_CCB_REGISTER: return "CCB_REGISTER";
	case CCB_CMD_CCB_REQUEST: return "CCB_REQUEST";
	case CCB_CMD_CCB_REVERSE_CONNECT: return "CCB_REVERSE_CONNECT";
	case CCB_CMD_SHARED_PORT_CONNECT: return "SHARED_PORT_CONNECT";
	case CCB_CMD_SHARED_PORT_PASS_SOCK: return "SHARED_PORT_PASS_SOCK";
	case CCB_CMD_CCB_PROXY_CONNECT: return "CCB_PROXY_CONNECT";
	/* Not in condor_commands.h (83 is reserved there); Go's name. */
	case CCB_CMD_CCB_GET_TUNNEL_ADDRESS: return "CCB_GET_TUNNEL_ADDRESS";
	case CCB_CMD_ALIVE: return "ALIVE";
	case CCB_CMD_DC_AUTHENTICATE: return "DC_AUTHENTICATE";
	case CCB_CMD_DC_NOP: return "DC_NOP";
	case CCB_CMD_DC_SEC_QUERY: return "DC_SEC_QUERY";
	case CCB_CMD_DC_SET_READY: return "DC_SET_READY";
	/* libccb's private command, not in condor_commands.h. */
	case CCB_CMD_LIBCCB_STATUS: return "CCB_LIBCCB_STATUS";
	}
	return 0;
}
