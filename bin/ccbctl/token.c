/* ccbctl token create|verify: IDTOKENS as condor_token_create makes them. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ccb/config.h"
#include "ccb/token.h"
#include "ccbctl.h"

static void token_usage(FILE *f)
{
	fprintf(f,
		"usage: ccbctl token create [-c FILE] --identity USER@DOMAIN [--issuer DOMAIN]\n"
		"                           [--key NAME] [--lifetime SECONDS] [--authz LEVEL]...\n"
		"       ccbctl token verify [-c FILE] [--issuer DOMAIN] [--json] TOKEN|-\n"
		"\n"
		"Mint or check an IDTOKEN signed with a pool signing key, compatible with\n"
		"condor_token_create / condor_token_list. Keys come from the config's\n"
		"SEC_PASSWORD_DIRECTORY (key NAME, default POOL) or\n"
		"SEC_TOKEN_POOL_SIGNING_KEY_FILE; the issuer defaults to TRUST_DOMAIN.\n"
		"\n"
		"Exit status: 0 success (token printed / valid), 1 failure, 2 usage.\n");
}

/* The command line. */
typedef struct {
	bool create, as_json;
	const char *cfg_path, *identity, *issuer, *kid, *token;
	const char *authz[16];
	int nauthz;
	long long lifetime;
} token_args;

/* Returns -1 to go on, else the exit status. */
static int token_parse(int argc, char **argv, token_args *a)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"identity", required_argument, NULL, 'i'},
					     {"issuer", required_argument, NULL, 's'},
					     {"key", required_argument, NULL, 'k'},
					     {"lifetime", required_argument, NULL, 'l'},
					     {"authz", required_argument, NULL, 'a'},
					     {"json", no_argument, NULL, 'j'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	int opt;

	memset(a, 0, sizeof *a);
	if (argc < 2 || (strcmp(argv[1], "create") && strcmp(argv[1], "verify"))) {
		token_usage(argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
		return argc >= 2 && !strcmp(argv[1], "--help") ? CCBCTL_EXIT_OK : CCBCTL_EXIT_USAGE;
	}
	a->create = !strcmp(argv[1], "create");
	argc--;
	argv++;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': a->cfg_path = optarg; break;
		case 'i': a->identity = optarg; break;
		case 's': a->issuer = optarg; break;
		case 'k': a->kid = optarg; break;
		case 'l': a->lifetime = atoll(optarg); break;
		case 'a':
			if (a->nauthz < 15)
				a->authz[a->nauthz++] = optarg;
			break;
		case 'j': a->as_json = true; break;
		case 'h': token_usage(stdout); return CCBCTL_EXIT_OK;
		default: token_usage(stderr); return CCBCTL_EXIT_USAGE;
		}
	}
	if ((a->create && (!a->identity || optind != argc)) || (!a->create && optind != argc - 1) ||
	    a->lifetime < 0) {
		token_usage(stderr);
		return CCBCTL_EXIT_USAGE;
	}
	a->token = a->create ? NULL : argv[optind];
	return -1;
}

static int token_create(const token_args *a, const ccb_token_keys *keys, const char *issuer,
			ccb_error *err)
{
	ccb_token_config p = {.keys = *keys, .kid = a->kid, .issuer = issuer, .subject = a->identity,
			      .lifetime = a->lifetime, .authz = a->nauthz ? a->authz : NULL};
	char *tok = NULL;
	int rc = CCBCTL_EXIT_FAIL;

	if (ccb_token_create(&p, &tok, err) == CCB_OK) {
		printf("%s\n", tok);
		rc = CCBCTL_EXIT_OK;
	}
	ccb_free(tok);
	return rc;
}

static void token_print(const ccb_token_info *info, bool as_json)
{
	if (as_json) {
		json_t *o = json_pack("{s:s,s:s?,s:s?,s:s?,s:s?}", "kid", info->kid, "issuer", info->issuer,
				      "subject", info->subject, "jti", info->jti, "scope", info->scope);
		if (info->has_iat)
			json_object_set_new(o, "iat", json_integer(info->iat));
		if (info->has_exp)
			json_object_set_new(o, "exp", json_integer(info->exp));
		json_dumpf(o, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(o);
		return;
	}
	printf("valid: kid=%s issuer=%s subject=%s jti=%s%s%s", info->kid, info->issuer,
	       info->subject ? info->subject : "(none)", info->jti, info->scope ? " scope=" : "",
	       info->scope ? info->scope : "");
	if (info->has_exp)
		printf(" exp=%lld", (long long)info->exp);
	putchar('\n');
}

static int token_verify(const token_args *a, const ccb_token_keys *keys, const char *issuer,
			ccb_error *err)
{
	char buf[16384];
	const char *tok = a->token;
	ccb_token_verify_config vp = {.keys = *keys, .trust_domain = issuer};
	ccb_token_info info = {0};
	int rc = CCBCTL_EXIT_FAIL;

	if (!strcmp(tok, "-")) {
		size_t n = fread(buf, 1, sizeof buf - 1, stdin);
		buf[n] = '\0';
		buf[strcspn(buf, "\r\n")] = '\0';
		tok = buf;
	}
	if (ccb_token_verify(tok, &vp, &info, err) == CCB_OK) {
		token_print(&info, a->as_json);
		rc = CCBCTL_EXIT_OK;
	}
	ccb_token_info_clear(&info);
	return rc;
}

int ccbctl_token(int argc, char **argv)
{
	token_args a;
	int rc = token_parse(argc, argv, &a);
	ccb_config *cfg = NULL;
	ccb_error err = {0};
	const char *issuer;

	if (rc >= 0)
		return rc;
	if (ccb_config_load(a.cfg_path, &cfg, &err)) {
		fprintf(stderr, "ccbctl token: %s\n", err.detail);
		return CCBCTL_EXIT_FAIL;
	}
	ccb_token_keys keys = {
		.password_dir = ccb_config_get(cfg, "SEC_PASSWORD_DIRECTORY"),
		.pool_key_file = ccb_config_get(cfg, "SEC_TOKEN_POOL_SIGNING_KEY_FILE"),
	};
	issuer = a.issuer ? a.issuer : ccb_config_get(cfg, "TRUST_DOMAIN");
	rc = a.create ? token_create(&a, &keys, issuer, &err) : token_verify(&a, &keys, issuer, &err);
	if (rc)
		fprintf(stderr, "ccbctl token %s: %s\n", a.create ? "create" : "verify", err.detail);
	ccb_config_free(cfg);
	return rc;
}
