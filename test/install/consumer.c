/* Built against an installed libccb to prove the package files work. */
#include <stdio.h>

#include <ccb/ccb.h>

int main(void)
{
	ccb_classad *ad = ccb_classad_new();
	char *text;

	ccb_classad_set_int(ad, "Command", CCB_CMD_CCB_REGISTER);
	text = ccb_classad_to_text(ad);
	printf("%s%s\n", text, ccb_strerror(CCB_ERR_TIMEOUT));
	ccb_classad_free(ad);
	return 0;
}
