/* Run-time version of the library; the numbers come from the generated
 * ccb/version.h, so they are the project version this file was built with. */
#include "ccb/version.h"

int ccb_version(void)
{
	return CCB_VERSION_NUMBER;
}

const char *ccb_version_string(void)
{
	return CCB_VERSION_STRING;
}
