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
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ccb/broker_internal.h"
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

static bool parse_line(char *line, char *ip, size_t iplen, uint64_t *id, char *cookie,
		       size_t cklen)
{
	char *save = NULL, *a = strtok_r(line, " ", &save), *n = strtok_r(NULL, " ", &save),
	     *k = strtok_r(NULL, " ", &save), *end;

	if (!a || !n || !k || strtok_r(NULL, " ", &save) || strlen(a) >= iplen || strlen(k) >= cklen)
		return false;
	for (const char *p = n; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	for (const char *p = k; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	errno = 0;
	*id = strtoull(n, &end, 10);
	if (errno || *end || *id == 0 || !*k)
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
				strerror(errno));
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
		CCB_LOG(CCB_LOG_WARNING, "broker: reconnect file %s: %s", tmp, strerror(errno));
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
			strerror(errno));
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
			strerror(errno));
}

ccb_err bk_store_open(ccb_broker *b, ccb_error *err)
{
	if (!b->record_path)
		return CCB_OK;
	load(b);
	/* Start from a clean copy (drops skipped lines), then append. */
	if (!rewrite(b))
		return ccb_error_set(err, CCB_ERR_IO, "reconnect file %s cannot be written: %s",
				     b->record_path, strerror(errno));
	reopen_append(b);
	return b->store_fd >= 0 ? CCB_OK
				: ccb_error_set(err, CCB_ERR_IO, "reconnect file %s: %s", b->record_path,
						strerror(errno));
}

void bk_store_append(ccb_broker *b, const bk_rec *r)
{
	char line[160];
	int n;

	if (b->store_fd < 0)
		return;
	n = snprintf(line, sizeof line, "%s %" PRIu64 " %s\n", r->ip, r->id, r->cookie);
	if (write(b->store_fd, line, (size_t)n) != n) {
		b->st.record_file_errors++;
		CCB_LOG(CCB_LOG_WARNING, "broker: appending to reconnect file %s: %s", b->record_path,
			strerror(errno));
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
