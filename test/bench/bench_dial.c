/*
 * CCB dial latency: p50/p90/p99/max of N blocking dials (ccb_dial_sinful)
 * through one broker on loopback, and the same with a black-holed broker
 * (accepts TCP into its backlog, never answers) added to the contact list,
 * so that one in three dials first waits for the stagger. Prints a JSON
 * object and a short table; asserts nothing.
 *
 *   bench_dial [-n N] [-c CONFIG] [-s STAGGER_MS] [TARGET_SINFUL]
 *
 * Without TARGET_SINFUL it runs its own in-process fake broker and target
 * (test/dial/fakeccb.h) and checks every dialed connection with an echo.
 * With one (e.g. a daemon registered with an HTCondor collector's CCB,
 * "<a.b.c.d:port?CCBID=...>"), it dials that target, closes each
 * connection right away, and uses SEC_CLIENT_* from CONFIG for the broker.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../dial/fakeccb.h"
#include "ccb/config.h"
#include "ccb/dial.h"
#include "addr/addr_internal.h"

typedef struct {
	const char *name;
	int n, ok;
	double p50, p90, p99, max;
	char first_error[CCB_ERROR_DETAIL_SIZE];
} result;

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(const int64_t *v, int n, double p)
{
	int i = (int)(p * (n - 1) + 0.5);
	return n ? (double)v[i] / 1000.0 : 0;
}

/* Dial `address` n times; times in microseconds. */
static void run_case(result *r, const char *name, const char *address, const ccb_dial_config *o,
		     bool echo, int n)
{
	int64_t *t = calloc((size_t)n, sizeof *t);

	memset(r, 0, sizeof *r);
	r->name = name;
	r->n = n;
	for (int i = 0; i < n; i++) {
		struct timespec a, b;
		ccb_stream *s = NULL;
		ccb_error err;
		ccb_err rc;

		clock_gettime(CLOCK_MONOTONIC, &a);
		rc = ccb_dial_sinful(address, o, &s, &err);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (rc == CCB_OK && (!echo || fb_echo(s, "bench"))) {
			t[r->ok++] = (b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000;
		} else if (!r->first_error[0]) {
			snprintf(r->first_error, sizeof r->first_error, "%s",
				 rc ? err.detail : "echo through the dialed connection failed");
		}
		ccb_stream_free(s);
	}
	qsort(t, (size_t)r->ok, sizeof *t, cmp_i64);
	r->p50 = pct(t, r->ok, 0.50);
	r->p90 = pct(t, r->ok, 0.90);
	r->p99 = pct(t, r->ok, 0.99);
	r->max = r->ok ? (double)t[r->ok - 1] / 1000.0 : 0;
	free(t);
}

/* `address` with one more contact in front of its CCBID list. */
static char *with_contact(const char *address, const char *contact)
{
	ccb_sinful *s = NULL;
	char **v = NULL, *out = NULL;
	size_t n = 0;

	if (ccb_sinful_parse_address(address, &s, NULL) || ccb_sinful_ccb_contacts(s, &v, &n, NULL))
		goto done;
	{
		const char **all = calloc(n + 1, sizeof *all);
		all[0] = contact;
		for (size_t i = 0; i < n; i++)
			all[i + 1] = v[i];
		if (!ccb_sinful_set_ccb_contacts(s, all, n + 1, NULL))
			out = ccb__sinful_format(s);
		free(all);
	}
done:
	ccb_strv_free(v);
	ccb_sinful_free(s);
	return out;
}

int main(int argc, char **argv)
{
	int n = 1000, opt, stagger = 0;
	const char *cfg_path = NULL, *target = NULL;
	ccb_config *cfg = NULL;
	ccb_sec_client_config sc;
	ccb_dial_config o;
	ccb_error err;
	fake_broker b1, b2, hole;
	char one[256], hole_contact[64];
	char *three_ext = NULL;
	result r[2];
	bool own = false;

	while ((opt = getopt(argc, argv, "n:c:s:h")) != -1) {
		switch (opt) {
		case 'n': n = atoi(optarg); break;
		case 'c': cfg_path = optarg; break;
		case 's': stagger = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: bench_dial [-n N] [-c CONFIG] [-s STAGGER_MS] [TARGET_SINFUL]\n");
			return 2;
		}
	}
	if (optind < argc)
		target = argv[optind];
	if (n <= 0)
		n = 1000;
	if (cfg_path || target) {
		if (ccb_config_load(cfg_path, &cfg, &err) || ccb_config_client_security(cfg, &sc, &err)) {
			fprintf(stderr, "bench_dial: %s\n", err.detail);
			return 1;
		}
	} else {
		fb_client_sec(&sc);
	}
	memset(&o, 0, sizeof o);
	o.broker_sec = &sc;
	o.timeout_ms = 10000;
	o.stagger_ms = stagger;

	fb_start(&hole, FB_NO_ACCEPT, TG_ECHO, "1");
	snprintf(hole_contact, sizeof hole_contact, "127.0.0.1:%u#1", hole.port);
	if (!target) {
		/* In-process broker(s) + target; swap in a real broker by
		 * passing a registered target's sinful instead. */
		own = true;
		fb_start(&b1, FB_FORWARD, TG_ECHO, "7");
		fb_start(&b2, FB_FORWARD, TG_ECHO, "8");
		snprintf(one, sizeof one, "<127.0.0.1:1?CCBID=127.0.0.1:%u%%237>", b1.port);
		{
			ccb_sinful *s = NULL;
			/* The same target with 3 contacts, the hole among them. */
			char *ids[3];
			char c1[64], c2[64];
			snprintf(c1, sizeof c1, "127.0.0.1:%u#7", b1.port);
			snprintf(c2, sizeof c2, "127.0.0.1:%u#8", b2.port);
			ids[0] = c1;
			ids[1] = c2;
			ids[2] = hole_contact;
			ccb_sinful_new("127.0.0.1", 1, &s, NULL);
			ccb_sinful_set_ccb_contacts(s, (const char *const *)ids, 3, NULL);
			three_ext = ccb__sinful_format(s);
			ccb_sinful_free(s);
		}
		target = one;
	} else {
		three_ext = with_contact(target, hole_contact);
		if (!three_ext) {
			fprintf(stderr, "bench_dial: %s has no CCBID to add a black-holed broker to\n",
				target);
			return 1;
		}
	}
	run_case(&r[0], "one broker", target, &o, own, n);
	run_case(&r[1], own ? "3 brokers, 1 black-holed" : "its brokers + 1 black-holed", three_ext, &o,
		 own, n);

	printf("{\"bench\":\"dial\",\"n\":%d,\"target\":\"%s\",\"stagger_ms\":%d,\"cases\":[", n,
	       own ? "in-process fake" : "external", stagger ? stagger : CCB_DIAL_DEFAULT_STAGGER_MS);
	for (int i = 0; i < 2; i++)
		printf("%s{\"case\":\"%s\",\"ok\":%d,\"p50_ms\":%.2f,\"p90_ms\":%.2f,\"p99_ms\":%.2f,"
		       "\"max_ms\":%.2f}",
		       i ? "," : "", r[i].name, r[i].ok, r[i].p50, r[i].p90, r[i].p99, r[i].max);
	printf("]}\n");
	printf("%-28s %6s %9s %9s %9s %9s\n", "case (loopback)", "ok", "p50 ms", "p90 ms", "p99 ms",
	       "max ms");
	for (int i = 0; i < 2; i++) {
		printf("%-28s %6d %9.2f %9.2f %9.2f %9.2f\n", r[i].name, r[i].ok, r[i].p50, r[i].p90,
		       r[i].p99, r[i].max);
		if (r[i].first_error[0])
			printf("  first failure: %s\n", r[i].first_error);
	}
	if (own) {
		fb_stop(&b1);
		fb_stop(&b2);
	}
	fb_stop(&hole);
	free(three_ext);
	ccb_config_free(cfg);
	return 0;
}
