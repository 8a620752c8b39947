#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccb/error.h"

const char *ccb_strerror(ccb_err code)
{
	switch (code) {
	case CCB_OK: return "success";
	case CCB_ERR_INVALID_ARG: return "invalid argument";
	case CCB_ERR_NOMEM: return "out of memory";
	case CCB_ERR_IO: return "I/O error";
	case CCB_ERR_TIMEOUT: return "timed out";
	case CCB_ERR_CLOSED: return "connection closed by peer";
	case CCB_ERR_PROTOCOL: return "protocol error";
	case CCB_ERR_TOO_LARGE: return "message or field too large";
	case CCB_ERR_PARSE: return "parse error";
	case CCB_ERR_CRYPTO: return "cryptographic failure";
	case CCB_ERR_AUTH: return "authentication failed";
	case CCB_ERR_NOT_AUTHORIZED: return "not authorized";
	case CCB_ERR_NOT_FOUND: return "not found";
	case CCB_ERR_UNSUPPORTED: return "not supported";
	case CCB_ERR_CANCELLED: return "cancelled";
	case CCB_ERR_STREAMING_UNSUPPORTED: return "broker does not support streaming";
	case CCB_ERR_NO_BROKER: return "no CCB broker reachable";
	case CCB_ERR_NO_CALLBACK: return "target did not connect back";
	case CCB_ERR_UNKNOWN_CCBID: return "unknown CCBID";
	case CCB_ERR_CONFIG: return "configuration error";
	case CCB_ERR_LIMIT: return "resource limit reached";
	case CCB_ERR_TYPE: return "type mismatch";
	case CCB_ERR_STATE: return "invalid state";
	case CCB_ERR_SESSION_REFUSED: return "security session refused";
	}
	return "unknown error";
}

ccb_err ccb_error_setv(ccb_error *e, ccb_err code, const char *fmt, va_list ap)
{
	if (e) {
		e->code = code;
		if (fmt)
			vsnprintf(e->detail, sizeof e->detail, fmt, ap);
		else
			snprintf(e->detail, sizeof e->detail, "%s", ccb_strerror(code));
	}
	return code;
}

ccb_err ccb_error_set(ccb_error *e, ccb_err code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ccb_error_setv(e, code, fmt, ap);
	va_end(ap);
	return code;
}

ccb_err ccb_error_prefix(ccb_error *e, const char *fmt, ...)
{
	char prefix[CCB_ERROR_DETAIL_SIZE];
	char old[CCB_ERROR_DETAIL_SIZE];
	va_list ap;

	if (!e)
		return CCB_OK;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, e->detail, sizeof old);
	old[sizeof old - 1] = '\0';
	snprintf(e->detail, sizeof e->detail, "%s%s", prefix, old);
	return e->code;
}

void ccb_error_clear(ccb_error *e)
{
	if (e) {
		e->code = CCB_OK;
		e->detail[0] = '\0';
	}
}

void ccb_free(void *p)
{
	free(p);
}

void ccb_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}
