/* ccbctl decode: print captured CEDAR traffic message by message. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ccb/dissect.h"
#include "ccbctl.h"

static void decode_usage(FILE *f)
{
	fprintf(f,
		"usage: ccbctl decode [--conn N] [--json] [--raw] FILE|-\n"
		"\n"
		"Decode CEDAR messages from a capture. FILE is either a streams.json\n"
		"capture (as in HTCondor CCB test vectors: connections with hex segments\n"
		"per direction) or, with --raw (or when it is not JSON), the raw bytes\n"
		"of one direction of a connection. '-' reads standard input.\n"
		"\n"
		"  --conn N   only the connection with id N\n"
		"  --json     machine-readable output\n"
		"  --raw      treat FILE as raw bytes even if it parses as JSON\n"
		"\n"
		"Exit status: 0 decoded, 1 unreadable input or not CEDAR framing, 2 usage.\n");
}

static json_t *item_json(const ccb_dissect_item *it)
{
	json_t *o = json_object(), *attrs;

	switch (it->kind) {
	case CCB_DISSECT_INT:
		json_object_set_new(o, "type", json_string("int"));
		json_object_set_new(o, "value", json_integer(it->ival));
		break;
	case CCB_DISSECT_STRING:
		json_object_set_new(o, "type", json_string("string"));
		json_object_set_new(o, "value", json_string(it->text));
		break;
	case CCB_DISSECT_RAW:
		json_object_set_new(o, "type", json_string("raw"));
		json_object_set_new(o, "bytes", json_integer((json_int_t)it->nbytes));
		json_object_set_new(o, "hex", json_string(it->text));
		break;
	case CCB_DISSECT_CLASSAD:
		json_object_set_new(o, "type", json_string("classad"));
		json_object_set_new(o, "count", json_integer(it->ival));
		attrs = json_array();
		for (size_t i = 0; i < it->nattrs; i++) {
			const ccb_dissect_attr *a = &it->attrs[i];
			json_t *ao = json_object();
			if (a->kind == CCB_DISSECT_SECRET_ENCRYPTED) {
				json_object_set_new(ao, "secret", json_string("encrypted"));
				json_object_set_new(ao, "bytes", json_integer((json_int_t)a->nbytes));
				json_object_set_new(ao, "hex", json_string(a->text));
			} else {
				if (a->kind == CCB_DISSECT_SECRET_CLEAR)
					json_object_set_new(ao, "secret", json_string("clear"));
				json_object_set_new(ao, "line", json_string(a->text));
			}
			json_array_append_new(attrs, ao);
		}
		json_object_set_new(o, "attrs", attrs);
		json_object_set_new(o, "my_type", json_string(it->my_type));
		json_object_set_new(o, "target_type", json_string(it->target_type));
		break;
	}
	return o;
}

static json_t *msg_json(const ccb_dissect_msg *m, size_t number)
{
	json_t *o = json_object(), *frames = json_array(), *items = json_array();

	json_object_set_new(o, "n", json_integer((json_int_t)number));
	json_object_set_new(o, "dir", json_string(m->dir == CCB_DIR_C2S ? "c2s" : "s2c"));
	for (size_t i = 0; i < m->nframes; i++)
		json_array_append_new(frames, json_pack("{s:i,s:I}", "end", m->frames[i].end, "len",
							(json_int_t)m->frames[i].len));
	for (size_t i = 0; i < m->nitems; i++)
		json_array_append_new(items, item_json(&m->items[i]));
	json_object_set_new(o, "frames", frames);
	json_object_set_new(o, "items", items);
	return o;
}

/* Print (or collect as JSON) every message of a fed dissector. */
static int emit(const ccb_dissector *d, json_t *jmsgs)
{
	for (size_t i = 0; i < ccb_dissector_count(d); i++) {
		const ccb_dissect_msg *m = ccb_dissector_msg(d, i);
		if (jmsgs) {
			json_array_append_new(jmsgs, msg_json(m, i + 1));
		} else {
			char *t = NULL;
			ccb_dissect_msg_text(m, i + 1, &t, NULL);
			if (!t)
				return CCBCTL_EXIT_FAIL;
			fputs(t, stdout);
			ccb_free(t);
		}
	}
	return CCBCTL_EXIT_OK;
}

static void note_pending(const ccb_dissector *d, json_t *jconn)
{
	for (int dir = 0; dir < 2; dir++) {
		size_t left = ccb_dissector_pending(d, (ccb_dissect_dir)dir);
		if (!left)
			continue;
		if (jconn)
			json_object_set_new(jconn, dir ? "s2c_incomplete_bytes" : "c2s_incomplete_bytes",
					    json_integer((json_int_t)left));
		else
			printf("(%s: %zu bytes of an incomplete message at the end of the capture)\n",
			       dir ? "s2c" : "c2s", left);
	}
}

static int decode_conn(json_t *conn, json_t *jout)
{
	json_t *segs = json_object_get(conn, "segments"), *seg, *jconn = NULL, *jmsgs = NULL;
	ccb_dissector *d = NULL;
	ccb_dissector_new(&d, NULL);
	ccb_error err = {0};
	size_t i;
	int rc = CCBCTL_EXIT_OK;

	if (!d)
		return CCBCTL_EXIT_FAIL;
	if (jout) {
		jconn = json_pack("{s:O,s:O,s:O}", "id", json_object_get(conn, "id"), "client",
				  json_object_get(conn, "client"), "server",
				  json_object_get(conn, "server"));
		jmsgs = json_array();
		json_object_set_new(jconn, "messages", jmsgs);
	} else {
		printf("## conn %lld: %s -> %s  (t+%gs)\n\n", (long long)json_integer_value(json_object_get(conn, "id")),
		       json_string_value(json_object_get(conn, "client")),
		       json_string_value(json_object_get(conn, "server")),
		       json_number_value(json_object_get(conn, "start_rel_s")));
		static const char *const keys[][2] = {{"client_role", "client"}, {"server_role", "server"}, {"purpose", "purpose"}};
		for (size_t k = 0; k < 3; k++) {
			const char *v = json_string_value(json_object_get(conn, keys[k][0]));
			if (v)
				printf("* %s: %s\n", keys[k][1], v);
		}
		printf("\n```\n");
	}
	json_array_foreach(segs, i, seg) {
		const char *dir = json_string_value(json_object_get(seg, "dir"));
		const char *hex = json_string_value(json_object_get(seg, "hex"));
		size_t hl = hex ? strlen(hex) : 0;
		uint8_t *bytes;

		if (!dir || !hex || hl % 2) {
			fprintf(stderr, "ccbctl decode: segment %zu has no dir or bad hex\n", i);
			rc = CCBCTL_EXIT_FAIL;
			break;
		}
		bytes = malloc(hl / 2 + 1);
		if (!bytes || !ccbctl_hex_decode(hex, hl, bytes)) {
			free(bytes);
			fprintf(stderr, "ccbctl decode: segment %zu: bad hex\n", i);
			rc = CCBCTL_EXIT_FAIL;
			break;
		}
		if (ccb_dissector_feed(d, strcmp(dir, "s2c") ? CCB_DIR_C2S : CCB_DIR_S2C, bytes, hl / 2,
				       &err)) {
			fprintf(stderr, "ccbctl decode: conn %lld: %s\n",
				(long long)json_integer_value(json_object_get(conn, "id")), err.detail);
			rc = CCBCTL_EXIT_FAIL;
		}
		free(bytes);
	}
	if (emit(d, jmsgs))
		rc = CCBCTL_EXIT_FAIL;
	note_pending(d, jconn);
	if (jout)
		json_array_append_new(jout, jconn);
	else
		printf("```\n\n");
	ccb_dissector_free(d);
	return rc;
}

static int decode_raw(const uint8_t *p, size_t n, bool as_json)
{
	ccb_dissector *d = NULL;
	ccb_dissector_new(&d, NULL);
	ccb_error err = {0};
	json_t *jmsgs = as_json ? json_array() : NULL;
	int rc = CCBCTL_EXIT_OK;

	if (!d)
		return CCBCTL_EXIT_FAIL;
	if (ccb_dissector_feed(d, CCB_DIR_C2S, p, n, &err)) {
		fprintf(stderr, "ccbctl decode: %s\n", err.detail);
		rc = CCBCTL_EXIT_FAIL;
	}
	emit(d, jmsgs);
	if (jmsgs) {
		json_t *top = json_pack("{s:o}", "messages", jmsgs);
		note_pending(d, top);
		json_dumpf(top, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(top);
	} else {
		note_pending(d, NULL);
	}
	ccb_dissector_free(d);
	return rc;
}

int ccbctl_decode(int argc, char **argv)
{
	static const struct option opts[] = {{"conn", required_argument, NULL, 'c'},
					     {"json", no_argument, NULL, 'j'},
					     {"raw", no_argument, NULL, 'r'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	long long want = -1;
	bool as_json = false, raw = false;
	char *data, *endp;
	size_t len;
	json_t *root, *conns, *conn, *jout = NULL;
	json_error_t jerr;
	size_t i;
	int c, rc = CCBCTL_EXIT_OK, matched = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:jrh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			errno = 0;
			want = strtoll(optarg, &endp, 10);
			if (errno || *endp || want < 0) {
				fprintf(stderr, "ccbctl decode: --conn needs a connection id, not '%s'\n", optarg);
				return CCBCTL_EXIT_USAGE;
			}
			break;
		case 'j': as_json = true; break;
		case 'r': raw = true; break;
		case 'h': decode_usage(stdout); return CCBCTL_EXIT_OK;
		default: decode_usage(stderr); return CCBCTL_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		decode_usage(stderr);
		return CCBCTL_EXIT_USAGE;
	}
	data = ccbctl_read_file(argv[optind], &len);
	if (!data) {
		fprintf(stderr, "ccbctl decode: cannot read %s: %s\n", argv[optind], ccbctl_strerror(errno));
		return CCBCTL_EXIT_FAIL;
	}
	root = raw ? NULL : json_loadb(data, len, 0, &jerr);
	conns = root ? json_object_get(root, "connections") : NULL;
	if (!json_is_array(conns)) {
		json_decref(root);
		rc = decode_raw((const uint8_t *)data, len, as_json);
		free(data);
		return rc;
	}
	free(data);
	if (as_json)
		jout = json_array();
	json_array_foreach(conns, i, conn) {
		if (want >= 0 && json_integer_value(json_object_get(conn, "id")) != want)
			continue;
		matched++;
		if (decode_conn(conn, jout))
			rc = CCBCTL_EXIT_FAIL;
	}
	if (want >= 0 && !matched) {
		fprintf(stderr, "ccbctl decode: no connection with id %lld\n", want);
		rc = CCBCTL_EXIT_FAIL;
	}
	if (jout) {
		json_t *top = json_pack("{s:O,s:o}", "scenario", json_object_get(root, "scenario"),
					"connections", jout);
		json_dumpf(top, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(top);
	}
	json_decref(root);
	return rc;
}
