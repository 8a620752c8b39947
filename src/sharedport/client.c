/*
 * Shared-port client: SHARED_PORT_CONNECT on a connected stream (sp §2),
 * and a TCP dial that does it for `<host:port?sock=id>`.
 */
#include <stdio.h>
#include <string.h>

#include "cedar/stream_internal.h"
#include "sharedport/sharedport_internal.h"

static ccb_err check_connect_args(ccb_stream *s, const char *id, const char *name,
				  ccb_error *err)
{
	if (!s)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "SHARED_PORT_CONNECT: no stream");
	if (!ccb_sharedport_id_valid(id))
		return ccb_error_set(err, CCB_ERR_INVALID_ARG,
				     "SHARED_PORT_CONNECT: invalid shared-port id \"%.64s\"",
				     id ? id : "(null)");
	/* The server reads the name into char[1024] and drops the request if
	 * it is longer (sp §3.1 step 1). */
	if (strlen(name) > CCB_SHAREDPORT_ID_MAX || (uint8_t)name[0] == 0xAD)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG,
				     "SHARED_PORT_CONNECT: unusable client name");
	/* It must be the first, plaintext message on the connection (sp §2). */
	if (ccb_stream_crypto_on(s) || ccb__stream_out(s)->len)
		return ccb_error_set(err, CCB_ERR_STATE,
				     "SHARED_PORT_CONNECT to %s: stream is encrypted or has a "
				     "message partly written",
				     ccb_stream_peer_name(s));
	return CCB_OK;
}

ccb_err ccb_sharedport_send_connect(ccb_stream *s, const char *id, const char *client_name,
				    int64_t deadline_ms, ccb_error *err)
{
	const char *name = client_name ? client_name : CCB_SHAREDPORT_DEFAULT_CLIENT_NAME;
	int64_t deadline = sharedport__deadline_field(deadline_ms, ccb_now_ms());
	ccb_err rc;

	if ((rc = check_connect_args(s, id, name, err)))
		return rc;
	/* int 75, id, client name, deadline, more_args 0, EOM
	 * (sp §2; H:src/condor_io/shared_port_client.cpp sendSharedPortID). */
	if ((rc = ccb_stream_put_int(s, SHAREDPORT_CONNECT)) ||
	    (rc = ccb_stream_put_string(s, id)) || (rc = ccb_stream_put_string(s, name)) ||
	    (rc = ccb_stream_put_int(s, deadline)) || (rc = ccb_stream_put_int(s, 0)) ||
	    (rc = ccb_stream_end_message(s)))
		return ccb_error_set(err, rc, "send SHARED_PORT_CONNECT for %s: %s", id,
				     ccb_stream_error(s)->detail);
	/* The target daemon never sees this message, so it must not count in
	 * the handshake digests; "self" is served by the shared-port daemon
	 * itself, which did see it (sp §2, spc:160-170). */
	if (strcmp(id, "self") != 0)
		ccb_stream_reset_digests(s);
	CCB_LOG(CCB_LOG_DEBUG, "shared port: sent connection request to %s for id %s",
		ccb_stream_peer_name(s), id);
	return CCB_OK;
}

/* ---- TCP dial ------------------------------------------------------------- */

ccb_err ccb_sharedport_dial(const char *host, uint16_t port, const char *id,
			    const char *client_name, int64_t deadline_ms, ccb_stream **out,
			    ccb_error *err)
{
	int64_t step_deadline = deadline_ms;
	ccb_stream *s = NULL;
	char peer[96];
	int fd = -1;
	ccb_err rc;

	if (out)
		*out = NULL;
	if (!host || !out || port == 0)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG,
				     "shared-port dial: need a host, a port and an out pointer");
	if (!ccb_sharedport_id_valid(id))
		return ccb_error_set(err, CCB_ERR_INVALID_ARG,
				     "shared-port dial: invalid shared-port id");
	if (deadline_ms == INT64_MAX)
		step_deadline = ccb_deadline_in(CCB_STREAM_DEFAULT_TIMEOUT_MS);
	if ((rc = ccb_tcp_connect(host, port, step_deadline, "shared port", &fd, err)))
		return rc;
	if ((rc = ccb_stream_new(fd, &s, err)))
		return rc;
	snprintf(peer, sizeof peer, "%s:%u?sock=%s", host, port, id);
	ccb_stream_set_peer_name(s, peer);
	ccb_stream_set_deadline(s, deadline_ms);
	if ((rc = ccb_sharedport_send_connect(s, id, client_name, deadline_ms, err))) {
		ccb_stream_free(s);
		return rc;
	}
	*out = s;
	return CCB_OK;
}
