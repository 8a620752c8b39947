/* Built against an installed libccb to prove the package files work. */
#include <stdio.h>
#include <string.h>

#include <ccb/ccb.h>
#include <ccb/classad.h>  /* lower-level headers are included explicitly */
#include <ccb/commands.h>

int main(void)
{
	ccb_classad *ad = NULL;
	char *text = NULL;
	ccb_error err;

	/* The headers and the library it runs with are the same version. */
	if (ccb_version() != CCB_VERSION_NUMBER || strcmp(ccb_version_string(), CCB_VERSION_STRING) != 0) {
		fprintf(stderr, "version mismatch: headers %s, library %s\n", CCB_VERSION_STRING,
			ccb_version_string());
		return 1;
	}
	if (ccb_deadline_in(-1) != INT64_MAX || ccb_now_ms() <= 0) {
		fprintf(stderr, "ccb/clock.h functions misbehave\n");
		return 1;
	}
	if (ccb_classad_new(&ad, &err) != CCB_OK ||
	    ccb_classad_set_int(ad, "Command", CCB_CMD_CCB_REGISTER) != CCB_OK ||
	    ccb_classad_to_text(ad, &text, &err) != CCB_OK) {
		fprintf(stderr, "classad: %s\n", err.detail);
		ccb_classad_free(ad);
		return 1;
	}
	printf("%s%s\n", text, ccb_strerror(CCB_ERR_TIMEOUT));
	ccb_free(text);
	ccb_classad_free(ad);
	return 0;
}
