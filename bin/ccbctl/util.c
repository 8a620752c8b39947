/* ccbctl's own small helpers: strerror that threads may call, reading a
 * whole file and hex decoding. Generic C, kept here so the tool needs
 * nothing beyond libccb's public API. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccbctl.h"

/* strerror_r comes in two forms: GNU returns the text (which may or may not
 * be buf), XSI fills buf and returns 0 or an error number. */
static const char *strerror_gnu(const char *text, char *buf)
{
	(void)buf;
	return text;
}

static const char *strerror_xsi(int rc, char *buf)
{
	return rc == 0 ? buf : NULL;
}

const char *ccbctl_strerror(int e)
{
	static _Thread_local char buf[128];
	const char *text;

	buf[0] = '\0';
	/* _Generic does not evaluate its controlling expression: strerror_r
	 * runs once, and its result goes to the matching picker. */
	text = _Generic(strerror_r(e, buf, sizeof buf), char *: strerror_gnu, default: strerror_xsi)(
		strerror_r(e, buf, sizeof buf), buf);
	if (!text || !*text) {
		snprintf(buf, sizeof buf, "error %d", e);
		text = buf;
	}
	return text;
}

char *ccbctl_read_file(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	char *data = NULL, *grown;
	size_t used = 0, cap = 0, n;
	int saved;

	if (!f)
		return NULL;
	for (;;) {
		if (cap - used < 65536 + 1) {
			if (cap > ((size_t)-1) / 2 - 65536) {
				errno = ENOMEM;
				goto fail;
			}
			cap = cap ? cap * 2 : 65536 * 2;
			if (!(grown = realloc(data, cap)))
				goto fail;
			data = grown;
		}
		n = fread(data + used, 1, cap - used - 1, f);
		used += n;
		if (n == 0) {
			if (ferror(f)) {
				errno = errno ? errno : EIO;
				goto fail;
			}
			break;
		}
	}
	if (f != stdin)
		fclose(f);
	data[used] = '\0';
	*len = used;
	return data;
fail:
	saved = errno;
	free(data);
	if (f != stdin)
		fclose(f);
	errno = saved;
	return NULL;
}

static int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool ccbctl_hex_decode(const char *hex, size_t hexlen, uint8_t *out)
{
	if (hexlen % 2)
		return false;
	for (size_t i = 0; i < hexlen; i += 2) {
		int hi = hex_digit((unsigned char)hex[i]), lo = hex_digit((unsigned char)hex[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}
