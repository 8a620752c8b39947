/*
 * The floor of a registration with ECDH + AES-GCM on the broker side: one
 * ephemeral P-256 key pair, the shared secret with the peer's public key
 * (decoded and checked from base64, as the server does), HKDF to the
 * 32-byte AES key. Measured as CPU time of this process per operation.
 * Prints a JSON line and a table; asserts nothing.
 *
 *   bench_ecdh [iterations]      (default 2000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "security/ecdh.h"

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 2000;
	ccb__ecdh *peer = NULL;
	char peer_b64[CCB_ECDH_PUB_B64_SIZE];
	uint8_t key[CCB_SESSION_KEY_LEN_AES];
	double t0, t1, t2;

	if (n < 1 || ccb__ecdh_generate(&peer, NULL) || ccb__ecdh_public_b64(peer, peer_b64, NULL)) {
		fprintf(stderr, "bench_ecdh: setup failed\n");
		return 1;
	}
	t0 = cpu_s();
	for (long i = 0; i < n; i++) {
		ccb__ecdh *k = NULL;
		char b64[CCB_ECDH_PUB_B64_SIZE];
		if (ccb__ecdh_generate(&k, NULL) || ccb__ecdh_public_b64(k, b64, NULL))
			return 1;
		ccb__ecdh_free(k);
	}
	t1 = cpu_s();
	for (long i = 0; i < n; i++) {
		ccb__ecdh *k = NULL;
		char b64[CCB_ECDH_PUB_B64_SIZE];
		if (ccb__ecdh_generate(&k, NULL) || ccb__ecdh_public_b64(k, b64, NULL) ||
		    ccb__ecdh_session_key(k, peer_b64, key, sizeof key, NULL))
			return 1;
		ccb__ecdh_free(k);
	}
	t2 = cpu_s();
	ccb__ecdh_free(peer);
	printf("{\"bench\":\"ecdh\",\"iterations\":%ld,\"keygen_us\":%.1f,\"keygen_derive_us\":%.1f}\n", n,
	       (t1 - t0) * 1e6 / (double)n, (t2 - t1) * 1e6 / (double)n);
	printf("%-40s %.1f us\n", "P-256 key pair + base64 public key", (t1 - t0) * 1e6 / (double)n);
	printf("%-40s %.1f us\n", "... + shared secret + HKDF (the floor)", (t2 - t1) * 1e6 / (double)n);
	return 0;
}
