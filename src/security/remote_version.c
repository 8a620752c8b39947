/*
 * The $CondorVersion string both sides send as RemoteVersion
 * (security-handshake.md §4.1): ours, and a parser for the peer's.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ccb/classad.h"
#include "security/remote_version.h"

#define VERSION_PREFIX "$CondorVersion: "

const char *ccb__sec_version_string(void)
{
	return VERSION_PREFIX CCB_SEC_CONDOR_VERSION " " CCB_SEC_VERSION_DATE
			      " libccb " CCB_SEC_LIBCCB_VERSION " $";
}

/* Up to 9 decimal digits; false if none. */
static bool parse_num(const char **p, int *v)
{
	const char *s = *p;
	long n = 0;
	int digits = 0;

	while (*s >= '0' && *s <= '9' && digits < 9) {
		n = n * 10 + (*s++ - '0');
		digits++;
	}
	if (!digits || (*s >= '0' && *s <= '9'))
		return false;
	*v = (int)n;
	*p = s;
	return true;
}

ccb_err ccb__sec_version_parse(const char *s, int *major, int *minor, int *patch,
			       unsigned *num, ccb_error *err)
{
	const char *p;
	size_t len;
	int x, y, z;

	if (!s || strncmp(s, VERSION_PREFIX, strlen(VERSION_PREFIX)) != 0)
		return ccb_error_set(err, CCB_ERR_PARSE,
				     "version string does not start with \"$CondorVersion: \"");
	p = s + strlen(VERSION_PREFIX);
	if (!parse_num(&p, &x) || *p++ != '.' || !parse_num(&p, &y) || *p++ != '.' ||
	    !parse_num(&p, &z) || *p++ != ' ')
		return ccb_error_set(err, CCB_ERR_PARSE, "version string lacks \"X.Y.Z \"");
	/* "the world starts with Condor V6" (condor_ver_info.cpp:446-450) */
	if (x < 6 || y > 99 || z > 99)
		return ccb_error_set(err, CCB_ERR_PARSE, "version %d.%d.%d out of range", x, y, z);
	/* The rest must hold the trailing " $" the C++ parser strips (461-463). */
	len = strlen(s);
	if (!strstr(p, " $") || len < 2 || strcmp(s + len - 2, " $") != 0)
		return ccb_error_set(err, CCB_ERR_PARSE, "version string does not end with \" $\"");
	if (major)
		*major = x;
	if (minor)
		*minor = y;
	if (patch)
		*patch = z;
	if (num)
		*num = (unsigned)CCB_VERSION_NUM(x, y, z);
	return CCB_OK;
}
