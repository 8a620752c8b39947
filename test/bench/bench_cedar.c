/*
 * CEDAR stream throughput over loopback TCP: small ClassAd messages per
 * second (the shape of CCB control traffic) and bulk MiB/s, in plaintext and
 * under AES-256-GCM. Prints a JSON object and a short table; asserts nothing.
 *
 *   bench_cedar [seconds-per-case]      (default 2)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccb/classad.h"
#include "ccbt.h"
#include "util/util.h"
#include "classad/classad_internal.h"

typedef struct {
	ccb_stream *s;
	size_t bulk; /* 0: ClassAd messages */
	int64_t until;
	long count;
} side;

static ccb_classad *sample_ad(void)
{
	ccb_classad *ad = ccb__classad_new();
	ccb_classad_set_int(ad, "Command", 68);
	ccb_classad_set_string(ad, "MyAddress", "<127.0.0.1:39771?addrs=127.0.0.1-39771&alias=vm>");
	ccb_classad_set_string(ad, "ClaimId", "b5e9ad26338ebc2d94f8a7f0dfa7af8551c67a65");
	ccb_classad_set_string(ad, "RequestID", "1");
	ccb_classad_set_string(ad, "Name", "TOOL on <127.0.0.1:36753>");
	return ad;
}

static void *writer(void *arg)
{
	side *w = arg;
	ccb_classad *ad = sample_ad();
	uint8_t *bulk = w->bulk ? calloc(1, w->bulk) : NULL;
	const ccb_classad_put_config opts = {.peer_version = 251400};

	while (ccb_now_ms() < w->until) {
		ccb_err rc = w->bulk ? (ccb_stream_put_int(w->s, 1) ||
					ccb_stream_put_bytes(w->s, bulk, w->bulk))
				     : ccb_classad_put(w->s, ad, &opts);
		if (rc || ccb_stream_end_message(w->s))
			break;
		w->count++;
	}
	/* End marker: a bulk flag of 0, or an ad with Command = -1. */
	if (w->bulk) {
		ccb_stream_put_int(w->s, 0);
	} else {
		ccb_classad_set_int(ad, "Command", -1);
		ccb_classad_put(w->s, ad, &opts);
	}
	ccb_stream_end_message(w->s);
	ccb_classad_free(ad);
	free(bulk);
	return NULL;
}

/* One message; false at the end marker or on error. */
static bool read_one(ccb_stream *r, uint8_t *buf, size_t bulk)
{
	int64_t v = -1;
	bool more;

	if (bulk) {
		more = ccb_stream_get_int(r, &v) == CCB_OK && v == 1 &&
		       ccb_stream_get_bytes(r, buf, bulk) == CCB_OK;
	} else {
		ccb_classad *ad = NULL;
		more = ccb_classad_get(r, &ad) == CCB_OK &&
		       ccb_classad_get_int(ad, "Command", &v) == CCB_OK && v != -1;
		ccb_classad_free(ad);
	}
	return ccb_stream_end_of_message(r) == CCB_OK && more;
}

static double run_case(bool aes, size_t bulk, int seconds, double *per_sec)
{
	int fds[2];
	side w = {0};
	ccb_stream *r;
	pthread_t t;
	int64_t t0, t1;
	uint8_t key[32] = {9};
	uint8_t *buf = bulk ? malloc(bulk) : NULL;
	long got = 0;

	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &w.s, NULL);
	ccb_stream_new(fds[1], &r, NULL);
	ccb_stream_set_max_message(r, bulk + 1024);
	if (aes) {
		ccb_stream_set_aes_key(w.s, key);
		ccb_stream_set_aes_key(r, key);
	}
	w.bulk = bulk;
	t0 = ccb_now_ms();
	w.until = t0 + seconds * 1000;
	pthread_create(&t, NULL, writer, &w);
	while (read_one(r, buf, bulk))
		got++;
	t1 = ccb_now_ms();
	pthread_join(t, NULL);
	ccb_stream_free(w.s);
	ccb_stream_free(r);
	free(buf);
	*per_sec = got * 1000.0 / (double)(t1 > t0 ? t1 - t0 : 1);
	return bulk ? *per_sec * (double)bulk / (1024.0 * 1024.0) : 0;
}

int main(int argc, char **argv)
{
	int seconds = argc > 1 ? atoi(argv[1]) : 2;
	double ad_plain, ad_aes, bulk_plain_n, bulk_aes_n, mib_plain, mib_aes;

	if (seconds < 1)
		seconds = 1;
	run_case(false, 0, seconds, &ad_plain);
	run_case(true, 0, seconds, &ad_aes);
	mib_plain = run_case(false, 256 * 1024, seconds, &bulk_plain_n);
	mib_aes = run_case(true, 256 * 1024, seconds, &bulk_aes_n);
	printf("{\"bench\":\"cedar\",\"seconds_per_case\":%d,"
	       "\"classad_msgs_per_s_plain\":%.0f,\"classad_msgs_per_s_aes\":%.0f,"
	       "\"bulk_mib_per_s_plain\":%.1f,\"bulk_mib_per_s_aes\":%.1f}\n",
	       seconds, ad_plain, ad_aes, mib_plain, mib_aes);
	printf("%-34s %12s %12s\n", "case (loopback, one stream)", "plain", "AES-GCM");
	printf("%-34s %12.0f %12.0f\n", "ClassAd messages/s (5 attrs)", ad_plain, ad_aes);
	printf("%-34s %12.1f %12.1f\n", "bulk MiB/s (256 KiB messages)", mib_plain, mib_aes);
	return 0;
}
