/*
 * libFuzzer target for the IDTOKENS JWT parser and verifier: parse arbitrary
 * bytes with and without a signature, and on success exercise verification,
 * claim checks, token selection and the TOKEN key derivation, with a fixed
 * jwt_key. Also feeds the bytes as a token file.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "security/jwt.h"
#include "security/token_crypto.h"
#include "security/token_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const ccb__jwt *j)
{
	static const uint8_t key[32] = {1, 2, 3};
	uint8_t k[32], kp[32];
	ccb__token_filter f = {"ccbtest.local", "POOL, K2"};

	if (!j->kid || !*j->kid || strlen(j->token_hp) != j->hp_len)
		abort(); /* parse guarantees */
	if (j->sig_len) {
		if (j->sig_len != ccb__jwt_sig_len(j->alg))
			abort();
		(void)ccb__jwt_verify(j, key, NULL);
		(void)ccb__token_derive_keys(j->sig, j->sig_len, j->token_hp, j->hp_len, k, kp, NULL);
	}
	(void)ccb__jwt_check_claims(j, 1795530300, 3600, NULL);
	(void)ccb__jwt_check_claims(j, INT64_MIN, 1, NULL);
	(void)ccb__jwt_check_claims(j, INT64_MAX, 1, NULL);
	(void)ccb__token_usable(j, &f);
	(void)ccb__jwt_identity(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	ccb__jwt j;

	if (ccb__jwt_parse(text, size, 0, &j, NULL) == CCB_OK)
		exercise(&j);
	ccb__jwt_clear(&j);
	if (ccb__jwt_parse(text, size, CCB__JWT_NO_SIGNATURE, &j, NULL) == CCB_OK)
		exercise(&j);
	ccb__jwt_clear(&j);
	if (ccb__token_pick_text(text, size, NULL, &j, NULL) == CCB_OK)
		exercise(&j);
	ccb__jwt_clear(&j);
	return 0;
}
