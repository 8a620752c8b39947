/*
 * ccbctl probe's report: each path's steps as text or JSON, the hops of a
 * nested contact, and for a failed step its likely cause and what to try.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ccb/addr.h"
#include "ccb/clock.h"
#include "probe.h"

/* ---- the likely cause and what to try ---------------------------------- */

static const char *hint(const ppath *pp, const pstep *st, char *buf, size_t n)
{
	const char *s = st->name;

	if (!strcmp(s, "parse"))
		return "the contact in CCBID is malformed: check the advertised sinful";
	if (!strcmp(s, "resolve"))
		return "cannot resolve the broker's host name: check DNS or the CCB_ADDRESS the target uses";
	if (!strcmp(s, "connect")) {
		if (strstr(st->detail, "refused"))
			return "broker not running or wrong port";
		if (st->code == CCB_ERR_TIMEOUT || strstr(st->detail, "timed out"))
			return "no answer from the broker host: firewall or host down?";
		return "cannot reach the broker: check the address and the network path";
	}
	if (!strcmp(s, "authenticate")) {
		if (st->code == CCB_ERR_AUTH)
			return "check SEC_CLIENT_AUTHENTICATION_METHODS / token, and the broker's "
			       "ALLOW_READ for our identity";
		if (st->code == CCB_ERR_NOT_AUTHORIZED)
			return "the broker refused our identity: check its ALLOW_READ, or authenticate "
			       "(SEC_CLIENT_AUTHENTICATION = PREFERRED and a method it accepts)";
		if (st->code == CCB_ERR_UNSUPPORTED)
			return "our security settings and the broker's cannot agree: compare "
			       "SEC_CLIENT_* with the broker's SEC_READ_* / SEC_DEFAULT_*";
		if (st->code == CCB_ERR_TIMEOUT)
			return "the broker did not answer the handshake in time: overloaded, or not a CCB broker?";
		return "the broker closed the connection during the handshake: its log says why";
	}
	if (st->code == CCB_ERR_UNKNOWN_CCBID)
		return "target not registered (re-advertised sinful stale?)";
	if (st->code == CCB_ERR_STREAMING_UNSUPPORTED)
		return "the broker cannot relay (streaming off or too old): try without --streaming";
	if (st->code == CCB_ERR_LIMIT)
		return "the broker is at a configured limit: try later or raise it on the broker";
	if (!strcmp(s, "request") || !strcmp(s, "callback") || !strcmp(s, "hello")) {
		if (pp->streaming)
			return "the target did not call the broker back: is it still registered "
			       "and can it reach the broker?";
		if (st->code == CCB_ERR_NO_CALLBACK || st->code == CCB_ERR_TIMEOUT) {
			snprintf(buf, n, "target cannot reach MyAddress %s: firewall? try --streaming",
				 pp->my_address[0] ? pp->my_address : "(ours)");
			return buf;
		}
		if (!strcmp(s, "hello"))
			return "the reverse connection did not carry a valid hello: another process "
			       "answered, or the target is not a CCB listener";
		return "the broker broke off the request: see the broker's log";
	}
	if (!strcmp(s, "target handshake"))
		return "the target refused the security handshake: check SEC_CLIENT_* here and "
		       "the target's SEC_* settings";
	if (!strcmp(s, "authorization"))
		return "the target does not allow READ for our identity: check its ALLOW_READ";
	return "";
}

/* ---- output ---------------------------------------------------------- */

static json_t *sec_json(const ccb_sec_info *i)
{
	return json_pack("{s:b,s:s,s:s,s:b,s:s}", "authenticated", i->authenticated, "method",
			 i->method, "identity", i->user[0] ? i->user : CCB_UNAUTHENTICATED_USER,
			 "encryption", i->encrypted, "version", i->peer_version);
}

static size_t path_hops(const ppath *pp, json_t *arr, FILE *f);

static json_t *path_json(const ppath *pp)
{
	json_t *o = json_object(), *steps = json_array();
	char buf[400];

	json_object_set_new(o, "broker", json_string(pp->broker));
	json_object_set_new(o, "contact", pp->contact ? json_string(pp->contact) : json_null());
	json_object_set_new(o, "ok", json_boolean(pp->ok));
	json_object_set_new(o, "streaming", json_boolean(pp->streaming));
	if (pp->my_address[0])
		json_object_set_new(o, "my_address", json_string(pp->my_address));
	for (int i = 0; i < pp->n; i++) {
		const pstep *st = &pp->steps[i];
		json_t *j = json_pack("{s:s,s:b,s:I,s:s}", "step", st->name, "ok", st->code == CCB_OK,
				      "ms", (json_int_t)st->ms, "detail", st->detail);
		if (st->code) {
			json_object_set_new(j, "error", json_string(ccb_strerror(st->code)));
			json_object_set_new(j, "hint", json_string(hint(pp, st, buf, sizeof buf)));
		}
		json_array_append_new(steps, j);
	}
	json_object_set_new(o, "steps", steps);
	{
		json_t *hops = json_array();
		if (path_hops(pp, hops, NULL))
			json_object_set_new(o, "hops", hops);
		else
			json_decref(hops);
	}
	if (pp->have_bsec)
		json_object_set_new(o, "broker_security", sec_json(&pp->bsec));
	if (pp->have_tsec) {
		json_object_set_new(o, "target_security", sec_json(&pp->tsec));
		json_object_set_new(o, "authorized", json_boolean(pp->authorized));
	}
	return o;
}

/* Time spent in the steps named in `names` (NULL-terminated). */
static int64_t steps_ms(const ppath *pp, const char *const *names)
{
	int64_t ms = 0;

	for (int i = 0; i < pp->n; i++)
		for (const char *const *n = names; *n; n++)
			if (!strcmp(pp->steps[i].name, *n))
				ms += pp->steps[i].ms;
	return ms;
}

/* A nested contact's hops (ccb-protocol.md §3.2, §9.3): the entry broker,
 * then one inside CCB per further id. The requester sees the inner hops
 * only as one wait (request to hello): their reverse connects happen
 * between brokers, so that time is shown once, for the tunnel as a whole.
 * Returns the number of ids (0 when the contact does not split). */
static size_t path_hops(const ppath *pp, json_t *arr, FILE *f)
{
	static const char *const entry[] = {"resolve", "connect", "authenticate", NULL};
	static const char *const tunnel[] = {"request", "callback", "hello", NULL};
	static const char *const target[] = {"target handshake", "authorization", NULL};
	ccb_contact c = {0};
	size_t n;

	if (!pp->contact || ccb_contact_split(pp->contact, &c, NULL) != CCB_OK || c.n_ids < 2) {
		ccb_contact_clear(&c);
		return 0;
	}
	n = c.n_ids;
	for (size_t i = 0; i < n; i++) {
		char role[160];
		int64_t ms = -1;
		if (i == 0) {
			snprintf(role, sizeof role, "entry broker %s, ccbid %s (an inside CCB)", pp->broker,
				 c.ids[0]);
			ms = steps_ms(pp, entry);
		} else if (i + 1 < n) {
			snprintf(role, sizeof role, "inside CCB #%zu -> ccbid %s (an inside CCB)", i, c.ids[i]);
		} else {
			snprintf(role, sizeof role, "inside CCB #%zu -> ccbid %s (the target)", i, c.ids[i]);
			ms = steps_ms(pp, tunnel);
		}
		if (f) {
			if (i == 0)
				fprintf(f, "  hops:\n");
			if (ms >= 0)
				fprintf(f, "    %zu  %-58s %6lld ms%s\n", i + 1, role, (long long)ms,
					i == 0 ? "  (resolve, connect, authenticate)"
					       : n > 2 ? "  (request to hello: every tunnel hop together)"
						       : "  (request to hello through the tunnel)");
			else
				fprintf(f, "    %zu  %s\n", i + 1, role);
		}
		if (arr) {
			json_t *h = json_pack("{s:I,s:s,s:s}", "hop", (json_int_t)(i + 1), "ccbid", c.ids[i],
					      "role", role);
			if (ms >= 0)
				json_object_set_new(h, "ms", json_integer((json_int_t)ms));
			json_array_append_new(arr, h);
		}
	}
	if (f)
		fprintf(f, "    -  %-58s %6lld ms\n", "target, end to end through the relays",
			(long long)steps_ms(pp, target));
	ccb_contact_clear(&c);
	return n;
}

static void path_text(const ppath *pp, FILE *f)
{
	char buf[400];

	if (pp->contact)
		fprintf(f, "broker %s (contact %s)\n", pp->broker[0] ? pp->broker : "?", pp->contact);
	else
		fprintf(f, "direct (no CCBID)\n");
	for (int i = 0; i < pp->n; i++) {
		const pstep *st = &pp->steps[i];
		fprintf(f, "  %-17s %6lld ms  %-6s %s\n", st->name, (long long)st->ms,
			st->code ? "FAILED" : "ok", st->detail);
		if (st->code) {
			fprintf(f, "  %-17s            error: %s\n", "", ccb_strerror(st->code));
			fprintf(f, "  %-17s            hint:  %s\n", "", hint(pp, st, buf, sizeof buf));
		}
	}
	path_hops(pp, NULL, f);
	if (pp->have_bsec)
		fprintf(f, "  broker security:  method %s, identity %s, encryption %s, version %s\n",
			pp->bsec.authenticated ? pp->bsec.method : "none",
			pp->bsec.user[0] ? pp->bsec.user : CCB_UNAUTHENTICATED_USER,
			ccb_sec_info_encryption(&pp->bsec),
			pp->bsec.peer_version[0] ? pp->bsec.peer_version : "unknown");
	fprintf(f, "  result: %s\n", pp->ok ? "the whole path works" : "failed");
}

/* The spinner: only on a terminal, never when stderr is piped. */
void probe_spin(const ppath *paths, size_t n, int64_t t0, int tick)
{
	static const char wheel[] = "|/-\\";
	char line[160];
	size_t used;

	used = (size_t)snprintf(line, sizeof line, "\r%c probing %.1f s", wheel[tick % 4],
				(double)(ccb_now_ms() - t0) / 1000.0);
	for (size_t i = 0; i < n && used < sizeof line; i++) {
		const pstep *st = paths[i].n ? &paths[i].steps[paths[i].n - 1] : NULL;
		used += (size_t)snprintf(line + used, sizeof line - used, "  [%zu %s]", i + 1,
					 paths[i].finished ? (paths[i].ok ? "ok" : "failed")
							   : st ? st->name : "start");
	}
	fprintf(stderr, "%s\033[K", line);
	fflush(stderr);
}

/* Every path's steps, as JSON or text; true when one path works. */
bool probe_print(const char *address, const ppath *paths, size_t n, bool as_json)
{
	bool any_ok = false;
	size_t good = 0;

	for (size_t i = 0; i < n; i++) {
		any_ok = any_ok || paths[i].ok;
		good += paths[i].ok;
	}
	if (as_json) {
		json_t *o = json_object(), *arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, path_json(&paths[i]));
		json_object_set_new(o, "address", json_string(address));
		json_object_set_new(o, "ok", json_boolean(any_ok));
		json_object_set_new(o, "paths", arr);
		json_dumpf(o, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(o);
	} else {
		printf("probe %s\n", address);
		for (size_t i = 0; i < n; i++)
			path_text(&paths[i], stdout);
		printf("%s: the path works through %zu of %zu broker path(s)\n", any_ok ? "OK" : "FAILED",
		       good, n);
	}
	return any_ok;
}
