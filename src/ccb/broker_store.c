/*
 * Reconnect records (ccb-protocol.md §11.1): one text line per record,
 * "<peer-ip> <ccbid> <cookie>\n", as the C++ broker's file. New records are
 * appended with one write(2) each (O_APPEND), so a broker killed with
 * SIGKILL loses none; every sweep rewrites the file atomically (temporary
 * file, fsync, rename, fsync of the directory). On load a line that does not
 * parse (or a last line without its newline: a torn append) is logged and
 * skipped; the file is never fatal. The id counter moves 100 past the largest
 * id loaded, as C++ does, so ids handed out but not yet written before a
 * crash are not reused. The file holds secrets (cookies): mode 0600.
 *
 * Bounds (issue 15): records live 2 sweep intervals after their target
 * leaves, so churning registrations could grow memory and the file until a
 * sweep. At most max_reconnect_records are kept (default 100000, about 40 MB
 * of memory): beyond it the records of absent targets are dropped oldest
 * first, down to 90% of the limit, with a warning. The file is rewritten
 * then, and whenever appends have grown it past 2 x limit x 128 bytes (a
 * line is at most 107), so it stays within about 25 MB by default.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "broker_internal.h"
#include "util/util.h"

bk_rec *bk_rec_new(ccb_broker *b, uint64_t id, const char *ip)
{
	bk_rec *r = calloc(1, sizeof *r);
	uint64_t v;

	if (!r)
		return NULL;
	/* A decimal cookie as C++ (srv:2739-2749), from 63 random bits rather
	 * than 32: still all digits, which the C++ reconnect check requires. */
	if (ccb_random_bytes(&v, sizeof v, NULL)) {
		free(r);
		return NULL;
	}
	r->id = id;
	snprintf(r->ip, sizeof r->ip, "%s", ip);
	snprintf(r->cookie, sizeof r->cookie, "%" PRIu64, v >> 1);
	r->alive_ms = ccb_now_ms();
	if (!bk_map_put(&b->recs, id, r)) {
		free(r);
		return NULL;
	}
	return r;
}

#define DEFAULT_MAX_RECORDS 100000
#define LINE_BUDGET 128 /* bytes per record allowed in the file between rewrites */

static size_t max_records(const ccb_broker *b)
{
	return b->cfg.max_reconnect_records ? b->cfg.max_reconnect_records : DEFAULT_MAX_RECORDS;
}

typedef struct rec_age {
	int64_t alive_ms;
	uint64_t id;
} rec_age;

static int cmp_age(const void *a, const void *b)
{
	const rec_age *x = a, *y = b;
	if (x->alive_ms != y->alive_ms)
		return x->alive_ms < y->alive_ms ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Over the limit: drop the oldest records of absent targets (never `keep`,
 * never one whose target is registered) down to 90% of it. Returns how
 * many were dropped. */
static size_t bound_records(ccb_broker *b, uint64_t keep)
{
	size_t cap = max_records(b), target = cap - cap / 10, n = 0, i = 0, drop, k;
	bk_mnode *node = NULL;
	rec_age *v;
	bk_rec *r;

	if (b->recs.n <= cap)
		return 0;
	if (target == 0)
		target = 1;
	v = malloc(b->recs.n * sizeof *v);
	if (!v)
		return 0;
	while ((r = bk_map_next(&b->recs, &i, &node)))
		if (r->id != keep && !bk_map_get(&b->regs, r->id))
			v[n++] = (rec_age){r->alive_ms, r->id};
	qsort(v, n, sizeof *v, cmp_age);
	drop = b->recs.n - target;
	if (drop > n)
		drop = n;
	for (k = 0; k < drop; k++)
		free(bk_map_del(&b->recs, v[k].id));
	free(v);
	b->st.records_pruned += drop;
	if (drop)
		CCB_LOG(CCB_LOG_WARNING,
			"broker: reconnect records over the limit of %zu "
			"(CCB_SERVER_MAX_RECONNECT_RECORDS): dropped the %zu oldest of absent "
			"targets, %zu kept; those targets get a new CCBID when they come back",
			cap, drop, b->recs.n);
	else
		CCB_LOG(CCB_LOG_DEBUG,
			"broker: %zu reconnect records over the limit of %zu, all of registered targets",
			b->recs.n, cap);
	return drop;
}

static bool parse_line(char *line, char *ip, size_t iplen, uint64_t *id, char *cookie,
		       size_t cklen)
{
	char *save = NULL, *a = strtok_r(line, " ", &save), *n = strtok_r(NULL, " ", &save),
	     *k = strtok_r(NULL, " ", &save);

	if (!a || !n || !k || strtok_r(NULL, " ", &save) || strlen(a) >= iplen || strlen(k) >= cklen)
		return false;
	for (const char *p = k; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	if (ccb_ccbid_parse(n, id, NULL) != CCB_OK || *id == 0 || !*k)
		return false;
	snprintf(ip, iplen, "%s", a);
	snprintf(cookie, cklen, "%s", k);
	return true;
}

static void load(ccb_broker *b)
{
	FILE *f = fopen(b->record_path, "r");
	char line[512];
	uint64_t max_id = 0;
	unsigned lineno = 0, bad = 0, good = 0;

	if (!f) {
		if (errno != ENOENT)
			CCB_LOG(CCB_LOG_WARNING, "broker: reconnect file %s: %s", b->record_path,
				ccb__strerror(errno));
		return;
	}
	while (fgets(line, sizeof line, f)) {
		size_t len = strlen(line);
		char ip[sizeof ((bk_rec *)0)->ip], cookie[24];
		uint64_t id;
		bk_rec *r;

		lineno++;
		if (len == 0 || line[len - 1] != '\n') {
			/* Torn write or an over-long line: skip to its end. */
			int ch;
			if (len == sizeof line - 1)
				while ((ch = fgetc(f)) != EOF && ch != '\n')
					;
			bad++;
			CCB_LOG(CCB_LOG_WARNING, "broker: reconnect file %s line %u: incomplete record skipped",
				b->record_path, lineno);
			continue;
		}
		line[len - 1] = '\0';
		if (!parse_line(line, ip, sizeof ip, &id, cookie, sizeof cookie)) {
			bad++;
			CCB_LOG(CCB_LOG_WARNING, "broker: reconnect file %s line %u: malformed record skipped",
				b->record_path, lineno);
			continue;
		}
		r = bk_map_get(&b->recs, id);
		if (!r) {
			r = calloc(1, sizeof *r);
			if (!r || !bk_map_put(&b->recs, id, r)) {
				free(r);
				break;
			}
		}
		/* A later line for the same id wins. */
		r->id = id;
		snprintf(r->ip, sizeof r->ip, "%s", ip);
		snprintf(r->cookie, sizeof r->cookie, "%s", cookie);
		r->alive_ms = ccb_now_ms();
		good++;
		if (id > max_id)
			max_id = id;
	}
	fclose(f);
	b->st.record_file_errors += bad;
	if (good || bad) {
		b->next_id = max_id + 100;
		CCB_LOG(CCB_LOG_INFO, "broker: reconnect file %s: %u records loaded, %u skipped",
			b->record_path, good, bad);
	}
}

/* Write every record to <file>.new, fsync, rename over the file. */
static bool rewrite(ccb_broker *b)
{
	size_t plen = strlen(b->record_path) + 5;
	char *tmp = malloc(plen), *dcopy;
	FILE *f;
	int fd;
	bool ok = true;
	size_t i = 0;
	bk_mnode *n = NULL;
	bk_rec *r;

	if (!tmp)
		return false;
	snprintf(tmp, plen, "%s.new", b->record_path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		CCB_LOG(CCB_LOG_WARNING, "broker: reconnect file %s: %s", tmp, ccb__strerror(errno));
		if (fd >= 0)
			close(fd);
		free(tmp);
		return false;
	}
	while ((r = bk_map_next(&b->recs, &i, &n)))
		if (fprintf(f, "%s %" PRIu64 " %s\n", r->ip, r->id, r->cookie) < 0)
			ok = false;
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		ok = false;
	if (fclose(f) != 0)
		ok = false;
	if (ok && rename(tmp, b->record_path) != 0)
		ok = false;
	if (!ok) {
		CCB_LOG(CCB_LOG_WARNING, "broker: rewriting reconnect file %s failed: %s", b->record_path,
			ccb__strerror(errno));
		unlink(tmp);
	} else if ((dcopy = ccb_strdup(b->record_path))) {
		int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(dcopy);
	}
	free(tmp);
	return ok;
}

static void reopen_append(ccb_broker *b)
{
	if (b->store_fd >= 0)
		close(b->store_fd);
	b->store_fd = open(b->record_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (b->store_fd < 0)
		CCB_LOG(CCB_LOG_WARNING, "broker: reconnect file %s: %s", b->record_path,
			ccb__strerror(errno));
}

ccb_err bk_store_open(ccb_broker *b, ccb_error *err)
{
	if (!b->record_path)
		return CCB_OK;
	load(b);
	bound_records(b, 0);
	/* Start from a clean copy (drops skipped lines), then append. */
	if (!rewrite(b))
		return ccb_error_set(err, CCB_ERR_IO, "reconnect file %s cannot be written: %s",
				     b->record_path, ccb__strerror(errno));
	reopen_append(b);
	return b->store_fd >= 0 ? CCB_OK
				: ccb_error_set(err, CCB_ERR_IO, "reconnect file %s: %s", b->record_path,
						ccb__strerror(errno));
}

void bk_store_append(ccb_broker *b, const bk_rec *r)
{
	struct stat st;
	char line[160];
	int n;

	if (bound_records(b, r->id)) {
		/* The rewrite writes `r` too. */
		if (b->record_path && rewrite(b))
			reopen_append(b);
		return;
	}
	if (b->store_fd < 0)
		return;
	n = snprintf(line, sizeof line, "%s %" PRIu64 " %s\n", r->ip, r->id, r->cookie);
	if (write(b->store_fd, line, (size_t)n) != n) {
		b->st.record_file_errors++;
		CCB_LOG(CCB_LOG_WARNING, "broker: appending to reconnect file %s: %s", b->record_path,
			ccb__strerror(errno));
	}
	/* A safety net: lines of records dropped since the last rewrite
	 * stay until the next one; compact before the file outgrows its
	 * budget. */
	if (fstat(b->store_fd, &st) == 0 &&
	    (uint64_t)st.st_size > 2 * (uint64_t)max_records(b) * LINE_BUDGET) {
		CCB_LOG(CCB_LOG_INFO, "broker: reconnect file %s is %lld bytes; compacting",
			b->record_path, (long long)st.st_size);
		if (rewrite(b))
			reopen_append(b);
	}
}

void bk_store_sweep(ccb_broker *b)
{
	int64_t now = ccb_now_ms();
	size_t i = 0;
	bk_mnode *n = NULL;
	bk_rec *r;
	uint64_t *drop = NULL;
	size_t ndrop = 0, cap = 0;

	/* Connected ones are alive; others older than 2 intervals go
	 * (srv:2966-3186). */
	while ((r = bk_map_next(&b->recs, &i, &n))) {
		if (bk_map_get(&b->regs, r->id)) {
			r->alive_ms = now;
		} else if (now - r->alive_ms > 2 * b->sweep_ms) {
			if (ndrop == cap) {
				size_t nc = cap ? cap * 2 : 64;
				uint64_t *d = realloc(drop, nc * sizeof *d);
				if (!d)
					break;
				drop = d;
				cap = nc;
			}
			drop[ndrop++] = r->id;
		}
	}
	for (size_t k = 0; k < ndrop; k++)
		free(bk_map_del(&b->recs, drop[k]));
	b->st.records_pruned += ndrop;
	free(drop);
	if (b->record_path && rewrite(b))
		reopen_append(b);
}

void bk_store_close(ccb_broker *b)
{
	if (b->store_fd >= 0)
		close(b->store_fd);
	b->store_fd = -1;
}
