/*
 * listener_example: a daemon behind NAT, reachable through a CCB broker.
 * It registers with the brokers of CCB_ADDRESS, prints the sinful to
 * advertise and serves DC_NOP (and condor_ping's DC_SEC_QUERY) on every
 * reverse connection, and on direct connections to its own command port
 * from clients of the same PRIVATE_NETWORK_NAME, until SIGINT or SIGTERM.
 *
 *   listener_example CONFIG.json
 *
 * CONFIG.json holds HTCondor knobs, at least CCB_ADDRESS, e.g.
 *   {"CCB_ADDRESS": "broker.example.org:9618",
 *    "SEC_DEFAULT_AUTHENTICATION_METHODS": "TOKEN", "ALLOW_READ": "*"}
 *
 * Build against an installed libccb: see CMakeLists.txt beside this file,
 * or  cc listener_example.c $(pkg-config --cflags --libs libccb)
 */
#define _POSIX_C_SOURCE 200809L /* sigtimedwait, pthread_sigmask */

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ccb/ccb.h>
#include <ccb/commands.h> /* CCB_CMD_* (a lower-level header) */

/* The permission level of each command we serve (the security handshake
 * asks; -1 refuses). DC_NOP_READ is DC_NOP at READ level. */
#define DC_NOP_READ 60020

static int command_perm(int command, void *user)
{
	(void)user;
	switch (command) {
	case CCB_CMD_DC_NOP: return CCB_PERM_ALLOW;
	case DC_NOP_READ: return CCB_PERM_READ;
	case CCB_CMD_DC_SEC_QUERY: return CCB_PERM_ALLOW;
	default: return -1;
	}
}

/* Called on a library thread for each reverse connection; we own `conn`. */
static void serve(ccb_stream *conn, const ccb_listener_conn_info *info, void *user)
{
	const ccb_sec_server_config *sec = user;
	ccb_sec_command cmd;
	ccb_error err;

	ccb_stream_set_timeout(conn, 20000); /* bound the handler: stop() waits for it */
	if (ccb_sec_server_accept(conn, sec, &cmd, &err) != CCB_OK)
		fprintf(stderr, "request from %s refused: %s\n",
			info->direct ? info->peer : info->requester, err.detail);
	else
		/* DC_NOP has no payload; DC_SEC_QUERY was answered by accept. */
		fprintf(stderr, "served command %d for %s\n", cmd.command,
			cmd.info.user[0] ? cmd.info.user : CCB_UNAUTHENTICATED_USER);
	ccb_stream_free(conn);
}

int main(int argc, char **argv)
{
	ccb_config *cfg = NULL;
	ccb_listener_config lc;
	ccb_sec_server_config sec;
	ccb_listener *l = NULL;
	ccb_error err;
	sigset_t sigs;
	uint64_t gen = 0;
	int rc = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CONFIG.json\n", argv[0]);
		return 2;
	}
	if (ccb_config_load(argv[1], &cfg, &err) || ccb_listener_config_load(cfg, &lc, &err) ||
	    ccb_config_server_security(cfg, &sec, &err)) {
		fprintf(stderr, "%s\n", err.detail);
		ccb_config_free(cfg);
		return 1;
	}
	sec.command_perm = command_perm;
	lc.handler = serve;
	lc.user = &sec;
	/* Take SIGINT/SIGTERM synchronously; library threads inherit the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (ccb_listener_new(&lc, &l, &err) || ccb_listener_start(l, &err)) {
		fprintf(stderr, "%s\n", err.detail);
		goto out;
	}
	for (;;) {
		struct timespec tick = {0, 200 * 1000000L};
		int sig = sigtimedwait(&sigs, NULL, &tick);

		if (sig == SIGINT || sig == SIGTERM)
			break;
		if (ccb_listener_wait_change(l, &gen, 0, NULL) == CCB_OK) {
			/* The full sinful, as an HTCondor daemon writes its own:
			 * <ip:port?CCBID=...&PrivNet=...&addrs=...&noUDP>. It
			 * fails (CCB_ERR_STATE) while no broker is registered. */
			char *sinful = NULL;
			if (ccb_listener_sinful(l, &sinful, NULL) == CCB_OK) {
				printf("%s\n", sinful); /* advertise this */
				fflush(stdout);
			}
			ccb_free(sinful);
		}
	}
	rc = 0;
out:
	ccb_listener_free(l); /* stops and joins every thread */
	ccb_listener_config_clear(&lc);
	ccb_config_free(cfg);
	return rc;
}
