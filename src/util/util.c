#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "util.h"

void ccb_buf_init(ccb_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void ccb_buf_free(ccb_buf *b)
{
	free(b->data);
	ccb_buf_init(b);
}

void ccb_buf_reset(ccb_buf *b)
{
	b->len = 0;
}

bool ccb_buf_reserve(ccb_buf *b, size_t extra)
{
	size_t need, ncap;
	uint8_t *p;

	if (extra > SIZE_MAX - b->len - 1)
		return false;
	need = b->len + extra + 1; /* room for ccb_buf_terminate() */
	if (need <= b->cap)
		return true;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	p = realloc(b->data, ncap);
	if (!p)
		return false;
	b->data = p;
	b->cap = ncap;
	return true;
}

bool ccb_buf_append(ccb_buf *b, const void *p, size_t n)
{
	if (!ccb_buf_reserve(b, n))
		return false;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return true;
}

bool ccb_buf_append_str(ccb_buf *b, const char *s)
{
	return ccb_buf_append(b, s, strlen(s));
}

bool ccb_buf_appendf(ccb_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !ccb_buf_reserve(b, (size_t)n))
		return false;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return true;
}

bool ccb_buf_terminate(ccb_buf *b)
{
	if (!ccb_buf_reserve(b, 0))
		return false;
	b->data[b->len] = '\0';
	return true;
}

char *ccb_buf_steal_str(ccb_buf *b)
{
	char *s;

	if (!ccb_buf_terminate(b))
		return NULL;
	s = (char *)b->data;
	ccb_buf_init(b);
	return s;
}

int64_t ccb_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ccb_wall_s(void)
{
	return (int64_t)time(NULL);
}

int64_t ccb_deadline_in(int64_t ms)
{
	if (ms < 0)
		return INT64_MAX;
	return ccb_now_ms() + ms;
}

int ccb_deadline_left(int64_t deadline)
{
	int64_t left;

	if (deadline == INT64_MAX)
		return -1;
	left = deadline - ccb_now_ms();
	if (left < 0)
		return 0;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

void ccb_hex_encode(const void *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *p = in;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

int ccb_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool ccb_hex_decode(const char *hex, size_t hexlen, uint8_t *out)
{
	if (hexlen % 2)
		return false;
	for (size_t i = 0; i < hexlen; i += 2) {
		int hi = ccb_hex_digit((unsigned char)hex[i]), lo = ccb_hex_digit((unsigned char)hex[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

ccb_err ccb_random_bytes(void *out, size_t n, ccb_error *err)
{
	if (n > INT32_MAX || RAND_bytes(out, (int)n) != 1)
		return ccb_error_set(err, CCB_ERR_CRYPTO, "RAND_bytes failed");
	return CCB_OK;
}

char *ccb_strdup(const char *s)
{
	return s ? ccb_strndup(s, strlen(s)) : NULL;
}

char *ccb_strndup(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

bool ccb_str_ieq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

const char *ccb__strerror_r(int e, char *buf, size_t n)
{
	static const char none[] = "unknown error";
	int saved = errno;
	const char *s;

	if (buf == NULL || n == 0)
		return none;
	buf[0] = '\0';
#if defined(_GNU_SOURCE) && defined(__GLIBC__)
	/* GNU form: returns either buf or a constant string. */
	s = strerror_r(e, buf, n);
#else
	/* XSI form: fills buf, returns 0 on success. */
	s = strerror_r(e, buf, n) == 0 ? buf : NULL;
#endif
	if (s == NULL || s[0] == '\0') {
		snprintf(buf, n, "error %d", e);
		s = buf;
	}
	errno = saved;
	return s;
}

const char *ccb__strerror(int e)
{
	static _Thread_local char buf[128];

	return ccb__strerror_r(e, buf, sizeof buf);
}

void ccb__free_secret(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}
