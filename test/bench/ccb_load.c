/*
 * ccb_load — registration load against any CCB broker (ours or an HTCondor
 * collector): opens N registrations (CCB_REGISTER through the full security
 * handshake, register ad and reply, ccb-protocol.md §4.1-§4.2) from several
 * forked processes and 127.0.0.x source addresses, keeps them heartbeating
 * (ALIVE, §5.1; one epoll loop per process, never a thread per
 * registration), optionally measures CCB_REQUEST round trips (§6: request ->
 * forwarded request -> reverse connect + hello -> result report), and reports
 * registration rate, the broker's RSS per registration and its CPU over the
 * hold period. Stops by itself. Prints a JSON line and a short table.
 *
 * Not run by ctest; see --help.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "ccb/addr.h"
#include "ccb/config.h"
#include "ccb/security.h"
#include "ccb/sharedport.h"
#include "ccb/stream.h"
#include "ccb/wire.h"
#include "security/policy.h"
#include "util/util.h"
#include "addr/addr_internal.h"

#define PER_PROC_MAX 15000
#define IO_TIMEOUT_MS 20000

/* ---- options ------------------------------------------------------------ */

static struct {
	const char *broker;      /* as given */
	char host[256];
	int port;
	char *sock_id;           /* shared-port id (sock=), or NULL */
	char *broker_sinful;     /* "<host:port...>" for ConnectSinful */
	const char *config;
	long n;
	int procs;
	int sources;             /* 0: no bind */
	int threads;             /* registering threads per process */
	double hold;
	double heartbeat;
	long requests;
	int req_threads;
	long broker_pid;
	const char *name;
	bool verbose;
	bool plaintext;
	bool batch;
	int window;              /* plaintext: registrations in flight per process */
} opt = {
	.n = 1000, .procs = 0, .sources = -1, .threads = 4, .hold = 10, .heartbeat = 5,
	.req_threads = 4, .name = "LOAD", .window = 256,
};

static ccb_config *g_cfg;
static ccb_sec_client_config g_sec;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ccb_load --broker ADDRESS [options]\n"
		"\n"
		"Open N CCB registrations against a broker, hold them heartbeating, report\n"
		"registration rate, broker RSS per registration and CPU, optionally request\n"
		"round trips. Prints one JSON line and a table; stops by itself.\n"
		"\n"
		"  -b, --broker ADDR      broker: host:port or sinful (\"<127.0.0.1:9618?sock=collector>\";\n"
		"                         sock= goes through shared port)\n"
		"  -c, --config FILE      libccb JSON config: client security (SEC_CLIENT_*, tokens, ...)\n"
		"  -n, --count N          registrations (default 1000)\n"
		"  -p, --procs P          load processes (default: N/15000 rounded up, at least 2 for N>=2000;\n"
		"                         each holds at most 15000 sockets)\n"
		"  -s, --sources K        bind to 127.0.0.1..127.0.0.K before connecting (loopback brokers;\n"
		"                         default: 1 per 2500 registrations, at most 64, when the broker is\n"
		"                         127.x, else none)\n"
		"  -t, --threads T        registering threads per process (default 4)\n"
		"  -H, --hold SECONDS     hold the registrations this long after all registered (default 10)\n"
		"  -i, --heartbeat SECS   ALIVE after this much silence from the broker (default 5)\n"
		"  -r, --requests M       also send M CCB_REQUESTs for the registered CCBIDs during the hold;\n"
		"                         the load processes connect back, send the hello and the result\n"
		"  -R, --req-threads C    concurrent requesters (default 4)\n"
		"  -P, --broker-pid PID   read the broker's VmRSS and utime+stime from /proc: RSS and CPU per\n"
		"                         registration, CPU per heartbeat\n"
		"      --plaintext        register without a session key: DC_AUTHENTICATE with authentication,\n"
		"                         encryption and integrity NEVER and no ECDHPublicKey, then CCB_REGISTER\n"
		"                         in the clear, from pre-built bytes on one non-blocking epoll loop per\n"
		"                         process (the broker must allow unauthenticated DAEMON registrations).\n"
		"                         Default: the full handshake of the config (ECDH + AES-GCM)\n"
		"  -w, --window W         plaintext: registrations in flight per process (default 256)\n"
		"      --name TEXT        Name prefix in the register ad (default LOAD)\n"
		"      --batch            run the load at SCHED_BATCH: its wake-ups then do not preempt a\n"
		"                         broker on the same CPUs (which costs that broker context switches\n"
		"                         a dedicated machine would not see). The JSON says \"batch\"\n"
		"  -v, --verbose          print errors of failed registrations\n"
		"  -h, --help             this text\n");
}

/* ---- /proc ------------------------------------------------------------- */

static long proc_rss_kb(long pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%ld/status", pid);
	FILE *f = fopen(path, "r");
	long kb = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* utime + stime in seconds, -1 if unreadable. */
static double proc_cpu_s(long pid)
{
	char path[64], buf[2048];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	unsigned long ut = 0, st = 0;
	/* fields after ')': state(3) ... utime(14) stime(15) */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- pipes between the processes -------------------------------------- */

static bool write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		b += w;
		n -= (size_t)w;
	}
	return true;
}

static bool read_all(int fd, void *p, size_t n)
{
	uint8_t *b = p;
	while (n) {
		ssize_t r = read(fd, b, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		b += r;
		n -= (size_t)r;
	}
	return true;
}

struct reg_report {
	long ok, failed;
	int64_t t_start, t_end;  /* ccb_now_ms(), CLOCK_MONOTONIC: comparable across processes */
	long nids;               /* CCBIDs following, each uint16 length + text */
	char first_error[200];
};

struct final_report {
	long hb_sent, hb_replies, dropped, req_answered, req_failed;
	long nlat;       /* ALIVE echo latencies following, as floats in ms */
};

#define LAT_MAX 200000 /* latency samples kept per process */

/* ---- one registration ---------------------------------------------------- */

struct reg {
	ccb_stream *s;
	unsigned peer_version;
	char *ccbid;     /* bare id after the last '#' */
	int64_t last_rx;
	int64_t alive_us; /* when the outstanding ALIVE went out */
	bool hb_outstanding;
	bool dead;
};

static ccb_err dial(int source_idx, ccb_stream **out, ccb_error *err)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return ccb_error_set(err, CCB_ERR_IO, "socket: %s", strerror(errno));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (opt.sources > 0) {
		struct sockaddr_in src = {.sin_family = AF_INET};
		src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(source_idx % opt.sources));
#ifdef IP_BIND_ADDRESS_NO_PORT
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
		if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
			close(fd);
			return ccb_error_set(err, CCB_ERR_IO, "bind 127.0.0.%d: %s",
					     1 + source_idx % opt.sources, strerror(errno));
		}
	}
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
	if (inet_pton(AF_INET, opt.host, &dst.sin_addr) != 1) {
		close(fd);
		/* names and IPv6: no source binding */
		ccb_err rc = ccb_stream_connect(opt.host, opt.port, IO_TIMEOUT_MS, out, err);
		return rc;
	}
	if (connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		return ccb_error_set(err, CCB_ERR_IO, "connect %s:%d: %s", opt.host, opt.port, strerror(e));
	}
	struct pollfd pf = {.fd = fd, .events = POLLOUT};
	if (poll(&pf, 1, IO_TIMEOUT_MS) != 1) {
		close(fd);
		return ccb_error_set(err, CCB_ERR_TIMEOUT, "connect %s:%d: timed out", opt.host, opt.port);
	}
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	if (soerr) {
		close(fd);
		return ccb_error_set(err, CCB_ERR_IO, "connect %s:%d: %s", opt.host, opt.port, strerror(soerr));
	}
	return ccb_stream_new(fd, out, err);
}

/* Open a stream to the broker and run the security handshake for `cmd`. */
static ccb_err broker_command(int source_idx, int cmd, ccb_stream **out, unsigned *peer_version,
			      ccb_error *err)
{
	ccb_stream *s = NULL;
	ccb_err rc = dial(source_idx, &s, err);
	if (rc)
		return rc;
	ccb_stream_set_timeout(s, IO_TIMEOUT_MS);
	if (opt.sock_id) {
		rc = ccb_sharedport_send_connect(s, opt.sock_id, NULL, ccb_deadline_in(IO_TIMEOUT_MS), err);
		if (rc) {
			ccb_stream_free(s);
			return rc;
		}
	}
	ccb_sec_info info;
	rc = ccb_sec_client_start(s, &g_sec, cmd, 0, opt.broker_sinful, &info, err);
	if (rc) {
		ccb_stream_free(s);
		return rc;
	}
	unsigned num = 0;
	int a, b, c;
	if (ccb__sec_version_parse(info.peer_version, &a, &b, &c, &num, NULL) != CCB_OK)
		num = 0;
	*peer_version = num;
	*out = s;
	return CCB_OK;
}

static ccb_err do_register(int idx, struct reg *r, ccb_error *err)
{
	ccb_stream *s;
	unsigned pv;
	ccb_err rc = broker_command(idx, CCB_CMD_CCB_REGISTER, &s, &pv, err);
	if (rc)
		return rc;
	char name[128];
	snprintf(name, sizeof name, "%s <127.0.0.1:%d?load=%d.%d>", opt.name, 10000 + idx % 50000,
		 (int)getpid(), idx);
	ccb_ad_field f[] = {
		CCB_AD_INT(CCB_ATTR_COMMAND, CCB_CMD_CCB_REGISTER),
		CCB_AD_STRING(CCB_ATTR_NAME, name),
	};
	ccb_classad *ad = NULL, *reply = NULL;
	rc = ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, err);
	if (!rc)
		rc = ccb_control_ad_write(s, ad, pv, err);
	ccb_classad_free(ad);
	if (!rc)
		rc = ccb_control_ad_read(s, &reply, err);
	const char *ccbid = NULL;
	if (!rc)
		rc = ccb_ad_need_string(reply, CCB_ATTR_CCBID, &ccbid, err);
	if (rc) {
		ccb_classad_free(reply);
		ccb_stream_free(s);
		return rc;
	}
	/* first contact of a possible list, the bare id after its last '#' */
	const char *sp = strchr(ccbid, ' ');
	size_t len = sp ? (size_t)(sp - ccbid) : strlen(ccbid);
	const char *hash = NULL;
	for (size_t i = 0; i < len; i++)
		if (ccbid[i] == '#')
			hash = ccbid + i;
	r->ccbid = hash ? ccb_strndup(hash + 1, len - (size_t)(hash + 1 - ccbid)) : ccb_strndup(ccbid, len);
	ccb_classad_free(reply);
	r->s = s;
	r->peer_version = pv;
	r->last_rx = ccb_now_ms();
	return CCB_OK;
}


/* ---- plaintext registrations: pre-built bytes, one epoll loop ------------ */

/* The two messages a keyless plaintext registration sends, built once: the
 * DC_AUTHENTICATE request (security-handshake.md §4.1 without
 * ECDHPublicKey; authentication, encryption and integrity NEVER, so the
 * server answers NO and derives no key, §8 "Legacy key paths") and the
 * CCB_REGISTER ad (ccb-protocol.md §4.1). Both go out at once: the server
 * reads the ad after sending its RESPONSE and POST-AUTH (§3 steps 2, 5, 7;
 * capture S1 conn 1 messages 1, 2, 8, 9, 10). */
static uint8_t *g_tmpl;
static size_t g_tmpl_len;

/* The bytes a ccb_stream writes for one message, through a socketpair. */
static bool capture_bytes(bool (*write_fn)(ccb_stream *, void *), void *arg, uint8_t **out,
			  size_t *len)
{
	int sv[2];
	ccb_stream *s = NULL;
	uint8_t buf[8192];
	ssize_t n;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return false;
	if (ccb_stream_new(sv[0], &s, NULL) != CCB_OK || !write_fn(s, arg)) {
		ccb_stream_free(s);
		close(sv[1]);
		return false;
	}
	ccb_stream_free(s); /* closes sv[0] */
	n = read(sv[1], buf, sizeof buf);
	close(sv[1]);
	if (n <= 0)
		return false;
	*out = realloc(*out, *len + (size_t)n);
	memcpy(*out + *len, buf, (size_t)n);
	*len += (size_t)n;
	return true;
}

static bool write_request(ccb_stream *s, void *arg)
{
	ccb_classad *req = arg;
	return ccb_stream_put_int(s, 60010) == CCB_OK && ccb_classad_put(s, req, NULL) == CCB_OK &&
	       ccb_stream_end_message(s) == CCB_OK;
}

static bool write_register(ccb_stream *s, void *arg)
{
	return ccb_control_ad_write(s, arg, CCB_VERSION_NUM(25, 14, 0), NULL) == CCB_OK;
}

static bool build_template(void)
{
	ccb__sec_config c;
	ccb__sec_policy pol = {0};
	ccb_classad *req = NULL, *ad = NULL;
	char name[160];
	bool ok = false;

	ccb__sec_config_init(&c);
	c.authentication = c.encryption = c.integrity = CCB_SEC_NEVER;
	c.crypto_methods = "AES";
	c.daemon = true;
	c.tmp_session = true; /* a daemon's CCB_REGISTER: SessionDuration "60" (capture S1 conn 1) */
	{
		ccb__sec_request_params rp = {
			.policy = &pol, .command = CCB_CMD_CCB_REGISTER, .ecdh_public_key = "-",
			.subsystem = "MASTER", .connect_sinful = opt.broker_sinful,
		};
		if (ccb__sec_policy_build(&c, &pol, NULL) || ccb__sec_build_request(&rp, &req, NULL))
			goto out;
	}
	ccb_classad_remove(req, "ECDHPublicKey");
	snprintf(name, sizeof name, "%s <127.0.0.1:10000?load=%d>", opt.name, (int)getpid());
	{
		ccb_ad_field f[] = {CCB_AD_INT(CCB_ATTR_COMMAND, CCB_CMD_CCB_REGISTER),
				    CCB_AD_STRING(CCB_ATTR_NAME, name)};
		if (ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, NULL))
			goto out;
	}
	ok = capture_bytes(write_request, req, &g_tmpl, &g_tmpl_len) &&
	     capture_bytes(write_register, ad, &g_tmpl, &g_tmpl_len);
out:
	ccb__sec_policy_clear(&pol);
	ccb_classad_free(req);
	ccb_classad_free(ad);
	return ok;
}

#define PBUF 4096

struct pslot {
	long idx;        /* registration, -1 = free */
	int fd;
	bool connected;
	size_t sent, got;
	int nmsg;        /* complete messages received */
	uint8_t buf[PBUF];
};

/* A string attribute's value in one message body ("Name = \"v\""); the
 * broker's replies are plain ASCII. */
static bool body_string(const uint8_t *b, size_t n, const char *attr, char *out, size_t osz)
{
	size_t al = strlen(attr);

	for (size_t i = 0; i + al + 4 < n; i++) {
		/* An attribute starts after the ad's 8-byte count or a NUL. */
		if ((i == 8 || (i > 8 && b[i - 1] == 0)) && !memcmp(b + i, attr, al) &&
		    !memcmp(b + i + al, " = \"", 4)) {
			size_t k = i + al + 4, o = 0;
			while (k < n && b[k] != '"' && b[k] && o + 1 < osz)
				out[o++] = (char)b[k++];
			out[o] = 0;
			return k < n && b[k] == '"';
		}
	}
	return false;
}

/* Walk the complete messages in the slot's buffer; consume them. Returns
 * 1 when the registration reply is in (CCBID copied out), 0 for more, -1
 * on failure (err filled). */
static int pslot_parse(struct pslot *p, char *ccbid, size_t idsz, char *err, size_t esz)
{
	for (;;) {
		size_t off = 0, body = 0;
		uint8_t msg[PBUF];
		bool end = false;

		while (!end) {
			uint32_t len;
			if (off + 5 > p->got)
				return 0;
			len = (uint32_t)p->buf[off + 1] << 24 | (uint32_t)p->buf[off + 2] << 16 |
			      (uint32_t)p->buf[off + 3] << 8 | p->buf[off + 4];
			if (len > PBUF || off + 5 + len > p->got) {
				if (len > PBUF) {
					snprintf(err, esz, "message too large for the load tool");
					return -1;
				}
				return 0;
			}
			end = p->buf[off] != 0;
			memcpy(msg + body, p->buf + off + 5, len);
			body += len;
			off += 5 + len;
		}
		memmove(p->buf, p->buf + off, p->got - off);
		p->got -= off;
		p->nmsg++;
		if (p->nmsg == 1) {
			char a[16];
			/* RESPONSE: the server must agree to no authentication. */
			if (body_string(msg, body, "Authentication", a, sizeof a) && strcmp(a, "NO")) {
				snprintf(err, esz, "server wants Authentication = %s for a plaintext client", a);
				return -1;
			}
		} else if (p->nmsg == 2) {
			char rc[32] = "";
			if (!body_string(msg, body, "ReturnCode", rc, sizeof rc) || strcmp(rc, "AUTHORIZED")) {
				snprintf(err, esz, "POST-AUTH ReturnCode %s", rc[0] ? rc : "missing");
				return -1;
			}
		} else {
			if (!body_string(msg, body, "CCBID", ccbid, idsz)) {
				snprintf(err, esz, "registration reply without CCBID");
				return -1;
			}
			return 1;
		}
	}
}

static int pconnect(long idx)
{
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (opt.sources > 0) {
		struct sockaddr_in src = {.sin_family = AF_INET};
		src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(idx % opt.sources));
#ifdef IP_BIND_ADDRESS_NO_PORT
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
		if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
			close(fd);
			return -1;
		}
	}
	inet_pton(AF_INET, opt.host, &dst.sin_addr);
	if (connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

struct child;
static void plain_fail(struct child *c, long idx, const char *why);

/* Register c->count connections, `window` at a time, on one epoll loop. */
static void plain_register(struct child *c);

/* ---- load process ------------------------------------------------------ */

struct child {
	int index;           /* process number */
	long first, count;   /* global registration indices */
	struct reg *regs;
	atomic_long next;
	atomic_long ok, failed;
	pthread_mutex_t mu;
	char first_error[200];
};

static void *reg_thread(void *arg)
{
	struct child *c = arg;
	for (;;) {
		long i = atomic_fetch_add(&c->next, 1);
		if (i >= c->count)
			break;
		ccb_error err = {0};
		if (do_register((int)(c->first + i), &c->regs[i], &err) == CCB_OK) {
			atomic_fetch_add(&c->ok, 1);
		} else {
			atomic_fetch_add(&c->failed, 1);
			c->regs[i].dead = true;
			pthread_mutex_lock(&c->mu);
			if (!c->first_error[0])
				snprintf(c->first_error, sizeof c->first_error, "%s", err.detail);
			pthread_mutex_unlock(&c->mu);
			if (opt.verbose)
				fprintf(stderr, "ccb_load[%d]: register %ld: %s\n", c->index, c->first + i,
					err.detail);
		}
	}
	return NULL;
}


static void plain_fail(struct child *c, long idx, const char *why)
{
	atomic_fetch_add(&c->failed, 1);
	c->regs[idx].dead = true;
	if (!c->first_error[0])
		snprintf(c->first_error, sizeof c->first_error, "%s", why);
	if (opt.verbose)
		fprintf(stderr, "ccb_load[%d]: register %ld: %s\n", c->index, c->first + idx, why);
}

static void plain_register(struct child *c)
{
	int W = opt.window < 1 ? 1 : opt.window, ep = epoll_create1(EPOLL_CLOEXEC), active = 0;
	struct pslot *slots = calloc((size_t)W, sizeof *slots);
	long next = 0;
	char ccbid[256], err[200];

	for (int i = 0; i < W; i++)
		slots[i].idx = -1;
	for (;;) {
		/* Fill free slots. */
		for (int i = 0; i < W && next < c->count; i++) {
			struct pslot *p = &slots[i];
			struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i};
			if (p->idx >= 0)
				continue;
			p->fd = pconnect(c->first + next);
			if (p->fd < 0) {
				snprintf(err, sizeof err, "connect: %s", strerror(errno));
				plain_fail(c, next++, err);
				continue;
			}
			p->idx = next++;
			p->connected = false;
			p->sent = p->got = 0;
			p->nmsg = 0;
			epoll_ctl(ep, EPOLL_CTL_ADD, p->fd, &ev);
			active++;
		}
		if (!active)
			break;
		struct epoll_event evs[256];
		int n = epoll_wait(ep, evs, 256, IO_TIMEOUT_MS);
		if (n <= 0) {
			/* Nothing moved for the whole timeout: fail what is in flight. */
			for (int i = 0; i < W; i++)
				if (slots[i].idx >= 0) {
					close(slots[i].fd);
					plain_fail(c, slots[i].idx, "timed out");
					slots[i].idx = -1;
					active--;
				}
			continue;
		}
		for (int k = 0; k < n; k++) {
			struct pslot *p = &slots[evs[k].data.u32];
			int res = 0;
			if (p->idx < 0)
				continue;
			err[0] = 0;
			if ((evs[k].events & EPOLLOUT) && p->sent < g_tmpl_len) {
				ssize_t w = send(p->fd, g_tmpl + p->sent, g_tmpl_len - p->sent, MSG_NOSIGNAL);
				if (w > 0)
					p->sent += (size_t)w;
				else if (w < 0 && errno != EAGAIN) {
					snprintf(err, sizeof err, "send: %s", strerror(errno));
					res = -1;
				}
				if (p->sent == g_tmpl_len) {
					struct epoll_event ev = {.events = EPOLLIN, .data.u32 = evs[k].data.u32};
					epoll_ctl(ep, EPOLL_CTL_MOD, p->fd, &ev);
				}
			}
			if (!res && (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
				ssize_t r = recv(p->fd, p->buf + p->got, PBUF - p->got, 0);
				if (r > 0) {
					p->got += (size_t)r;
					res = pslot_parse(p, ccbid, sizeof ccbid, err, sizeof err);
				} else if (r == 0 || errno != EAGAIN) {
					snprintf(err, sizeof err,
						 "connection closed after %d of 3 messages (unauthenticated DAEMON "
						 "registration refused, or no plaintext sessions?)", p->nmsg);
					res = -1;
				}
			}
			if (res == 0)
				continue;
			epoll_ctl(ep, EPOLL_CTL_DEL, p->fd, NULL);
			if (res < 0) {
				close(p->fd);
				plain_fail(c, p->idx, err);
			} else {
				struct reg *r = &c->regs[p->idx];
				if (ccb_stream_new(p->fd, &r->s, NULL) != CCB_OK) {
					close(p->fd);
					plain_fail(c, p->idx, "stream: out of memory");
				} else {
					r->peer_version = CCB_VERSION_NUM(25, 14, 0);
					r->last_rx = ccb_now_ms();
					if (opt.requests > 0) {
						const char *sp = strchr(ccbid, ' ');
						size_t len = sp ? (size_t)(sp - ccbid) : strlen(ccbid);
						const char *h = NULL;
						for (size_t i = 0; i < len; i++)
							if (ccbid[i] == '#')
								h = ccbid + i;
						r->ccbid = h ? ccb_strndup(h + 1, len - (size_t)(h + 1 - ccbid))
							     : ccb_strndup(ccbid, len);
					}
					atomic_fetch_add(&c->ok, 1);
				}
			}
			p->idx = -1;
			active--;
		}
	}
	free(slots);
	close(ep);
}

/* A forwarded request (§6.3): connect back to MyAddress, hello, result. */
static bool answer_request(struct reg *r, ccb_classad *req, struct final_report *fr)
{
	ccb_error err = {0};
	ccb_classad *hello = NULL, *result = NULL;
	bool ok = false;
	const char *my = NULL;
	ccb_sinful *sf = NULL;
	ccb_stream *rs = NULL;
	if (ccb_hello_ad_from_request(req, &hello, &err) ||
	    ccb_ad_need_string(req, CCB_ATTR_MY_ADDRESS, &my, &err) ||
	    ccb_sinful_parse_address(my, &sf, &err))
		goto out;
	if (ccb_stream_connect(ccb_sinful_host(sf), ccb_sinful_port(sf), IO_TIMEOUT_MS, &rs, &err) == CCB_OK &&
	    ccb_hello_write(rs, hello, 0, &err) == CCB_OK)
		ok = true;
	ccb_stream_free(rs);
	if (ccb_result_ad_new(hello, ok, ok ? NULL : "failed to connect", &result, &err) == CCB_OK &&
	    ccb_control_ad_write(r->s, result, r->peer_version, &err) != CCB_OK)
		r->dead = true;
out:
	if (ok)
		fr->req_answered++;
	else
		fr->req_failed++;
	if (!ok && opt.verbose)
		fprintf(stderr, "ccb_load: answer request: %s\n", err.detail);
	ccb_sinful_free(sf);
	ccb_classad_free(hello);
	ccb_classad_free(result);
	return ok;
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void send_alive(struct reg *r, struct final_report *fr)
{
	ccb_classad *ad = NULL;
	ccb_ad_field f[] = {CCB_AD_INT(CCB_ATTR_COMMAND, CCB_CMD_ALIVE)};
	if (ccb_ad_new(f, 1, &ad, NULL) || ccb_control_ad_write(r->s, ad, r->peer_version, NULL)) {
		r->dead = true;
	} else {
		fr->hb_sent++;
		r->hb_outstanding = true;
		r->alive_us = mono_us();
		r->last_rx = ccb_now_ms(); /* next ALIVE one interval later */
	}
	ccb_classad_free(ad);
}

static void kill_reg(int ep, struct reg *r, struct final_report *fr)
{
	if (!r->s)
		return;
	epoll_ctl(ep, EPOLL_CTL_DEL, ccb_stream_fd(r->s), NULL);
	ccb_stream_free(r->s);
	r->s = NULL;
	r->dead = true;
	fr->dropped++;
}

static int child_main(struct child *c, int up, int down, int64_t hard_deadline)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	c->regs = calloc((size_t)c->count + 1, sizeof *c->regs);
	pthread_mutex_init(&c->mu, NULL);
	atomic_init(&c->next, 0);
	atomic_init(&c->ok, 0);
	atomic_init(&c->failed, 0);

	/* wait for the parent's go so that every process starts together */
	char go;
	if (!read_all(down, &go, 1))
		return 1;
	struct reg_report rep = {0};
	rep.t_start = ccb_now_ms();
	if (opt.plaintext) {
		plain_register(c);
	} else {
		int nt = opt.threads < 1 ? 1 : opt.threads;
		pthread_t *th = calloc((size_t)nt, sizeof *th);
		for (int i = 0; i < nt; i++)
			pthread_create(&th[i], NULL, reg_thread, c);
		for (int i = 0; i < nt; i++)
			pthread_join(th[i], NULL);
		free(th);
	}
	rep.t_end = ccb_now_ms();
	rep.ok = atomic_load(&c->ok);
	rep.failed = atomic_load(&c->failed);
	snprintf(rep.first_error, sizeof rep.first_error, "%s", c->first_error);
	rep.nids = opt.requests > 0 ? rep.ok : 0;
	write_all(up, &rep, sizeof rep);
	if (rep.nids) {
		for (long i = 0; i < c->count; i++) {
			if (!c->regs[i].s)
				continue;
			uint16_t l = (uint16_t)strlen(c->regs[i].ccbid);
			write_all(up, &l, sizeof l);
			write_all(up, c->regs[i].ccbid, l);
		}
	}

	/* hold: heartbeats and forwarded requests, one epoll loop */
	struct final_report fr = {0};
	float *lat = malloc(LAT_MAX * sizeof *lat);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
	epoll_ctl(ep, EPOLL_CTL_ADD, down, &ev);
	for (long i = 0; i < c->count; i++) {
		if (!c->regs[i].s)
			continue;
		ev.data.u64 = (uint64_t)i;
		epoll_ctl(ep, EPOLL_CTL_ADD, ccb_stream_fd(c->regs[i].s), &ev);
	}
	int64_t hb_ms = (int64_t)(opt.heartbeat * 1000);
	bool stop = false;
	long scan = 0;
	while (!stop && ccb_now_ms() < hard_deadline) {
		struct epoll_event evs[256];
		int n = epoll_wait(ep, evs, 256, 100);
		for (int k = 0; k < n; k++) {
			if (evs[k].data.u64 == UINT64_MAX) {
				stop = true;
				continue;
			}
			struct reg *r = &c->regs[evs[k].data.u64];
			if (!r->s)
				continue;
			ccb_classad *ad = NULL;
			int64_t cmd = -1;
			ccb_stream_set_timeout(r->s, 5000);
			if (ccb_control_ad_read(r->s, &ad, NULL) != CCB_OK) {
				ccb_classad_free(ad);
				kill_reg(ep, r, &fr);
				continue;
			}
			r->last_rx = ccb_now_ms();
			(void)ccb_ad_need_int(ad, CCB_ATTR_COMMAND, &cmd, NULL);
			if (cmd == CCB_CMD_ALIVE) {
				fr.hb_replies++;
				if (r->hb_outstanding && lat && fr.nlat < LAT_MAX)
					lat[fr.nlat++] = (float)(mono_us() - r->alive_us) / 1000.0f;
				r->hb_outstanding = false;
			} else if (cmd == CCB_CMD_CCB_REQUEST) {
				answer_request(r, ad, &fr);
			}
			ccb_classad_free(ad);
			if (r->dead)
				kill_reg(ep, r, &fr);
		}
		/* heartbeats: walk a slice of the table per wake (whole table ~10x/s) */
		int64_t now = ccb_now_ms();
		long slice = c->count / 10 + 1;
		for (long k = 0; k < slice && c->count > 0; k++, scan++) {
			struct reg *r = &c->regs[scan % c->count];
			if (r->s && now - r->last_rx >= hb_ms) {
				send_alive(r, &fr);
				if (r->dead)
					kill_reg(ep, r, &fr);
			}
		}
	}
	for (long i = 0; i < c->count; i++) {
		ccb_stream_free(c->regs[i].s);
		free(c->regs[i].ccbid);
	}
	free(c->regs);
	close(ep);
	write_all(up, &fr, sizeof fr);
	if (fr.nlat)
		write_all(up, lat, (size_t)fr.nlat * sizeof *lat);
	free(lat);
	return 0;
}

/* ---- requester (parent, during the hold) -------------------------------- */

struct reqctx {
	char **ids;
	long nids;
	long per_thread;
	int tid;
	long ok, failed;
	double *rtt_ms; /* per successful request */
	char first_error[200];
};

static void *req_thread(void *arg)
{
	struct reqctx *q = arg;
	uint16_t port;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 64) ||
	    getsockname(lfd, (struct sockaddr *)&a, &al)) {
		q->failed = q->per_thread;
		snprintf(q->first_error, sizeof q->first_error, "requester listen: %s", strerror(errno));
		if (lfd >= 0)
			close(lfd);
		return NULL;
	}
	port = ntohs(a.sin_port);
	char myaddr[64];
	snprintf(myaddr, sizeof myaddr, "<127.0.0.1:%u>", port);
	unsigned seed = (unsigned)(q->tid * 7919 + 17);
	for (long i = 0; i < q->per_thread; i++) {
		ccb_error err = {0};
		const char *ccbid = q->ids[(long)(rand_r(&seed) % (unsigned)q->nids)];
		char cid[CCB_CONNECT_ID_SIZE];
		ccb_stream *s = NULL, *rs = NULL;
		ccb_classad *ad = NULL, *hello = NULL;
		unsigned pv = 0;
		int64_t t0 = ccb_now_ms(), t0us = now_us();
		bool ok = false;
		if (ccb_connect_id_new(cid, &err))
			goto done;
		if (broker_command(q->tid, CCB_CMD_CCB_REQUEST, &s, &pv, &err))
			goto done;
		ccb_ad_field f[] = {
			CCB_AD_STRING(CCB_ATTR_CCBID, ccbid),
			CCB_AD_STRING(CCB_ATTR_CLAIM_ID, cid),
			CCB_AD_STRING(CCB_ATTR_NAME, "TOOL"),
			CCB_AD_STRING(CCB_ATTR_MY_ADDRESS, myaddr),
		};
		if (ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, &err) || ccb_control_ad_write(s, ad, pv, &err))
			goto done;
		/* the reverse connection is the success signal (§6.5); the broker's
		 * reply may come before or after it, or never */
		bool watch_reply = true;
		for (;;) {
			struct pollfd pf[2] = {{.fd = lfd, .events = POLLIN},
					       {.fd = watch_reply ? ccb_stream_fd(s) : -1, .events = POLLIN}};
			int left = (int)(t0 + IO_TIMEOUT_MS - ccb_now_ms());
			if (left <= 0 || poll(pf, 2, left) <= 0) {
				ccb_error_set(&err, CCB_ERR_TIMEOUT, "no reverse connection");
				goto done;
			}
			if (pf[0].revents == 0 && pf[1].revents) {
				ccb_classad *rep = NULL;
				watch_reply = false;
				if (ccb_control_ad_read(s, &rep, NULL) == CCB_OK &&
				    !ccb_ad_bool_or(rep, CCB_ATTR_RESULT, false)) {
					ccb_error_set(&err, CCB_ERR_NO_CALLBACK, "broker: %s",
						      ccb_ad_string_or(rep, CCB_ATTR_ERROR_STRING, "failure"));
					ccb_classad_free(rep);
					goto done;
				}
				ccb_classad_free(rep);
				continue;
			}
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0 || ccb_stream_new(fd, &rs, &err))
				goto done;
			ccb_stream_set_timeout(rs, IO_TIMEOUT_MS);
			if (ccb_hello_read(rs, cid, &hello, &err) == CCB_OK)
				ok = true;
			break;
		}
	done:
		if (ok) {
			q->rtt_ms[q->ok++] = (double)(now_us() - t0us) / 1000.0;
		} else {
			q->failed++;
			if (!q->first_error[0])
				snprintf(q->first_error, sizeof q->first_error, "%s", err.detail);
		}
		ccb_classad_free(ad);
		ccb_classad_free(hello);
		ccb_stream_free(rs);
		ccb_stream_free(s);
	}
	close(lfd);
	return NULL;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* ---- main --------------------------------------------------------------- */

static bool parse_broker(void)
{
	ccb_sinful *sf = NULL;
	ccb_error err = {0};
	if (ccb_sinful_parse_address(opt.broker, &sf, &err)) {
		fprintf(stderr, "ccb_load: bad broker address %s: %s\n", opt.broker, err.detail);
		return false;
	}
	snprintf(opt.host, sizeof opt.host, "%s", ccb_sinful_host(sf));
	opt.port = ccb_sinful_port(sf);
	if (opt.port <= 0)
		opt.port = 9618;
	const char *sock = ccb_sinful_shared_port_id(sf);
	opt.sock_id = sock ? ccb_strdup(sock) : NULL;
	opt.broker_sinful = ccb__sinful_format(sf);
	ccb_sinful_free(sf);
	return true;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"broker", required_argument, NULL, 'b'}, {"config", required_argument, NULL, 'c'},
		{"count", required_argument, NULL, 'n'}, {"procs", required_argument, NULL, 'p'},
		{"sources", required_argument, NULL, 's'}, {"threads", required_argument, NULL, 't'},
		{"hold", required_argument, NULL, 'H'}, {"heartbeat", required_argument, NULL, 'i'},
		{"requests", required_argument, NULL, 'r'}, {"req-threads", required_argument, NULL, 'R'},
		{"broker-pid", required_argument, NULL, 'P'}, {"name", required_argument, NULL, 'N'},
		{"verbose", no_argument, NULL, 'v'}, {"help", no_argument, NULL, 'h'},
		{"plaintext", no_argument, NULL, 'T'}, {"window", required_argument, NULL, 'w'},
		{"batch", no_argument, NULL, 'B'}, {NULL, 0, NULL, 0},
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "b:c:n:p:s:t:H:i:r:R:P:w:vh", lo, NULL)) != -1) {
		switch (ch) {
		case 'T': opt.plaintext = true; break;
		case 'B': opt.batch = true; break;
		case 'w': opt.window = atoi(optarg); break;
		case 'b': opt.broker = optarg; break;
		case 'c': opt.config = optarg; break;
		case 'n': opt.n = atol(optarg); break;
		case 'p': opt.procs = atoi(optarg); break;
		case 's': opt.sources = atoi(optarg); break;
		case 't': opt.threads = atoi(optarg); break;
		case 'H': opt.hold = atof(optarg); break;
		case 'i': opt.heartbeat = atof(optarg); break;
		case 'r': opt.requests = atol(optarg); break;
		case 'R': opt.req_threads = atoi(optarg); break;
		case 'P': opt.broker_pid = atol(optarg); break;
		case 'N': opt.name = optarg; break;
		case 'v': opt.verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!opt.broker || opt.n < 1 || opt.hold < 0 || opt.heartbeat <= 0 || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (!parse_broker())
		return 2;
	if (opt.batch) {
		/* Inherited by the load processes and their threads. */
		struct sched_param sp = {.sched_priority = 0};
		if (sched_setscheduler(0, SCHED_BATCH, &sp) != 0) {
			fprintf(stderr, "ccb_load: --batch: sched_setscheduler: %s\n", strerror(errno));
			return 2;
		}
	}
	ccb_error err = {0};
	if (ccb_config_load(opt.config, &g_cfg, &err) || ccb_config_client_security(g_cfg, &g_sec, &err)) {
		fprintf(stderr, "ccb_load: config: %s\n", err.detail);
		return 2;
	}
	int minp = (int)((opt.n + PER_PROC_MAX - 1) / PER_PROC_MAX);
	if (opt.procs <= 0)
		opt.procs = opt.n >= 2000 && minp < 2 ? 2 : minp;
	if (opt.procs < minp) {
		fprintf(stderr, "ccb_load: %ld registrations need at least %d processes\n", opt.n, minp);
		return 2;
	}
	/* Loopback: one source address per 2,500 registrations (at most 64).
	 * With a single source, connect() searches an ever fuller ephemeral
	 * port range towards the one broker address: at 19,900 registrations
	 * that search cost the load tool ten times the CPU of the rest. */
	if (opt.sources < 0)
		opt.sources = strncmp(opt.host, "127.", 4) == 0
				      ? (int)((opt.n + 2499) / 2500 > 64 ? 64 : (opt.n + 2499) / 2500)
				      : 0;
	if (opt.req_threads < 1)
		opt.req_threads = 1;
	signal(SIGPIPE, SIG_IGN);
	if (opt.plaintext) {
		struct in_addr ia;
		if (opt.sock_id || inet_pton(AF_INET, opt.host, &ia) != 1) {
			fprintf(stderr, "ccb_load: --plaintext needs an IPv4 broker address without sock=\n");
			return 2;
		}
		if (!build_template()) {
			fprintf(stderr, "ccb_load: cannot build the plaintext registration bytes\n");
			return 1;
		}
	}

	long rss0 = opt.broker_pid ? proc_rss_kb(opt.broker_pid) : -1;
	int64_t hard_deadline = ccb_now_ms() + (int64_t)(opt.hold * 1000) + 600000;

	int P = opt.procs;
	pid_t *pids = calloc((size_t)P, sizeof *pids);
	int *up = calloc((size_t)P, sizeof *up), *down = calloc((size_t)P, sizeof *down);
	long first = 0;
	for (int i = 0; i < P; i++) {
		long cnt = opt.n / P + (i < opt.n % P ? 1 : 0);
		int pu[2], pd[2];
		if (pipe2(pu, O_CLOEXEC) || pipe2(pd, O_CLOEXEC)) {
			perror("pipe");
			return 1;
		}
		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			close(pu[0]);
			close(pd[1]);
			for (int k = 0; k < i; k++) {
				close(up[k]);
				close(down[k]);
			}
			struct child c = {.index = i, .first = first, .count = cnt};
			_exit(child_main(&c, pu[1], pd[0], hard_deadline));
		}
		close(pu[1]);
		close(pd[0]);
		pids[i] = pid;
		up[i] = pu[0];
		down[i] = pd[1];
		first += cnt;
	}
	/* go */
	usleep(100 * 1000);
	double cpu_r0 = opt.broker_pid ? proc_cpu_s(opt.broker_pid) : -1;
	for (int i = 0; i < P; i++)
		write_all(down[i], "g", 1);

	long ok = 0, failed = 0;
	int64_t t_start = INT64_MAX, t_end = 0;
	char first_error[200] = "";
	char **ids = NULL;
	long nids = 0;
	for (int i = 0; i < P; i++) {
		struct reg_report rep;
		if (!read_all(up[i], &rep, sizeof rep)) {
			fprintf(stderr, "ccb_load: process %d died during registration\n", i);
			failed += opt.n / P;
			continue;
		}
		ok += rep.ok;
		failed += rep.failed;
		if (rep.t_start < t_start)
			t_start = rep.t_start;
		if (rep.t_end > t_end)
			t_end = rep.t_end;
		if (!first_error[0] && rep.first_error[0])
			snprintf(first_error, sizeof first_error, "%s", rep.first_error);
		if (rep.nids) {
			ids = realloc(ids, (size_t)(nids + rep.nids) * sizeof *ids);
			for (long k = 0; k < rep.nids; k++) {
				uint16_t l;
				if (!read_all(up[i], &l, sizeof l))
					break;
				char *s = malloc((size_t)l + 1);
				read_all(up[i], s, l);
				s[l] = 0;
				ids[nids++] = s;
			}
		}
	}
	double reg_s = t_end > t_start ? (double)(t_end - t_start) / 1000.0 : 0;
	double cpu_r1 = opt.broker_pid ? proc_cpu_s(opt.broker_pid) : -1;
	double reg_cpu_us = cpu_r0 >= 0 && cpu_r1 >= 0 && ok > 0 ? (cpu_r1 - cpu_r0) * 1e6 / (double)ok : -1;

	/* let the broker settle a moment, then measure RSS and start the CPU window */
	usleep(200 * 1000);
	long rss1 = opt.broker_pid ? proc_rss_kb(opt.broker_pid) : -1;
	double cpu0 = opt.broker_pid ? proc_cpu_s(opt.broker_pid) : -1;
	int64_t hold_t0 = ccb_now_ms();

	/* the hold: registrations heartbeating, nothing else */
	/* Nothing registered: nothing to hold. */
	int64_t hold_end = hold_t0 + (ok > 0 ? (int64_t)(opt.hold * 1000) : 0);
	while (ccb_now_ms() < hold_end)
		usleep((useconds_t)((hold_end - ccb_now_ms()) > 100 ? 100000 : 1000 * (hold_end - ccb_now_ms())));
	double hold_s = (double)(ccb_now_ms() - hold_t0) / 1000.0;
	double cpu1 = opt.broker_pid ? proc_cpu_s(opt.broker_pid) : -1;
	long rss2 = opt.broker_pid ? proc_rss_kb(opt.broker_pid) : -1;

	long req_ok = 0, req_failed = 0;
	double req_s = 0, rtt_avg = 0, rtt_p50 = 0, rtt_p99 = 0;
	char req_error[200] = "";
	double req_cpu = -1;
	if (opt.requests > 0 && nids > 0) {
		int C = opt.req_threads;
		struct reqctx *q = calloc((size_t)C, sizeof *q);
		pthread_t *th = calloc((size_t)C, sizeof *th);
		double rcpu0 = opt.broker_pid ? proc_cpu_s(opt.broker_pid) : -1;
		int64_t r0 = ccb_now_ms();
		for (int i = 0; i < C; i++) {
			q[i].ids = ids;
			q[i].nids = nids;
			q[i].tid = i;
			q[i].per_thread = opt.requests / C + (i < opt.requests % C ? 1 : 0);
			q[i].rtt_ms = calloc((size_t)q[i].per_thread + 1, sizeof(double));
			pthread_create(&th[i], NULL, req_thread, &q[i]);
		}
		for (int i = 0; i < C; i++)
			pthread_join(th[i], NULL);
		req_s = (double)(ccb_now_ms() - r0) / 1000.0;
		double rcpu1 = opt.broker_pid ? proc_cpu_s(opt.broker_pid) : -1;
		if (rcpu0 >= 0 && rcpu1 >= 0)
			req_cpu = rcpu1 - rcpu0;
		double *all = calloc((size_t)opt.requests + 1, sizeof(double));
		long m = 0;
		for (int i = 0; i < C; i++) {
			req_ok += q[i].ok;
			req_failed += q[i].failed;
			for (long k = 0; k < q[i].ok; k++)
				all[m++] = q[i].rtt_ms[k];
			if (!req_error[0] && q[i].first_error[0])
				snprintf(req_error, sizeof req_error, "%s", q[i].first_error);
			free(q[i].rtt_ms);
		}
		if (m) {
			qsort(all, (size_t)m, sizeof *all, cmp_double);
			double sum = 0;
			for (long k = 0; k < m; k++)
				sum += all[k];
			rtt_avg = sum / (double)m;
			rtt_p50 = all[m / 2];
			rtt_p99 = all[(m * 99) / 100 < m ? (m * 99) / 100 : m - 1];
		}
		free(all);
		free(q);
		free(th);
	}
	struct final_report tot = {0};
	float *lat = NULL;
	long nlat = 0;
	/* ALIVE replies counted by the load processes over the hold, for CPU
	 * per heartbeat: their total at the end, less nothing (the hold is the
	 * only time they heartbeat apart from the registration tail). */
	for (int i = 0; i < P; i++) {
		write_all(down[i], "s", 1);
		struct final_report fr;
		if (read_all(up[i], &fr, sizeof fr)) {
			tot.hb_sent += fr.hb_sent;
			tot.hb_replies += fr.hb_replies;
			tot.dropped += fr.dropped;
			tot.req_answered += fr.req_answered;
			tot.req_failed += fr.req_failed;
			if (fr.nlat > 0) {
				float *nl = realloc(lat, (size_t)(nlat + fr.nlat) * sizeof *lat);
				if (nl && read_all(up[i], nl + nlat, (size_t)fr.nlat * sizeof *lat)) {
					lat = nl;
					nlat += fr.nlat;
				} else if (nl) {
					lat = nl;
				}
			}
		}
		close(up[i]);
		close(down[i]);
		waitpid(pids[i], NULL, 0);
	}

	double rate = reg_s > 0 ? (double)ok / reg_s : 0;
	double rss_per = (rss0 >= 0 && rss1 >= 0 && ok > 0) ? (double)(rss1 - rss0) * 1024.0 / (double)ok : -1;
	double cpu_s = (cpu0 >= 0 && cpu1 >= 0) ? cpu1 - cpu0 : -1;
	double cpu_pct = cpu_s >= 0 && hold_s > 0 ? 100.0 * cpu_s / hold_s : -1;
	double req_rate = req_s > 0 ? (double)req_ok / req_s : 0;
	double hb_cpu_us = cpu_s >= 0 && tot.hb_replies > 0 && opt.requests == 0
				   ? cpu_s * 1e6 / (double)tot.hb_replies : -1;
	double lat50 = -1, lat99 = -1, latmax = -1;
	if (nlat) {
		qsort(lat, (size_t)nlat, sizeof *lat, cmp_float);
		lat50 = lat[nlat / 2];
		lat99 = lat[(nlat * 99) / 100 < nlat ? (nlat * 99) / 100 : nlat - 1];
		latmax = lat[nlat - 1];
	}
	free(lat);

	printf("{\"bench\":\"ccb_load\",\"mode\":\"%s\",\"batch\":%s,\"broker\":\"%s\",\"n\":%ld,\"procs\":%d,\"sources\":%d,"
	       "\"threads_per_proc\":%d,\"registered\":%ld,\"failed\":%ld,\"register_seconds\":%.3f,"
	       "\"register_rate\":%.1f,\"broker_rss_kb_before\":%ld,\"broker_rss_kb_after\":%ld,"
	       "\"broker_rss_kb_end\":%ld,\"rss_bytes_per_registration\":%.0f,\"hold_seconds\":%.2f,"
	       "\"heartbeat_seconds\":%.1f,\"broker_cpu_seconds\":%.3f,\"broker_cpu_percent\":%.2f,"
	       "\"alive_sent\":%ld,\"alive_replies\":%ld,\"dropped\":%ld,\"requests\":%ld,"
	       "\"requests_ok\":%ld,\"requests_failed\":%ld,\"request_rate\":%.1f,"
	       "\"request_rtt_ms_avg\":%.2f,\"request_rtt_ms_p50\":%.2f,\"request_rtt_ms_p99\":%.2f,"
	       "\"broker_cpu_seconds_requests\":%.3f,"
	       "\"targets_answered\":%ld,\"broker_cpu_us_per_registration\":%.1f,"
	       "\"broker_cpu_us_per_heartbeat\":%.1f,\"rss_kib_per_registration\":%.2f,"
	       "\"alive_latency_ms_p50\":%.3f,\"alive_latency_ms_p99\":%.3f,"
	       "\"alive_latency_ms_max\":%.3f}\n",
	       opt.plaintext ? "plaintext" : "handshake", opt.batch ? "true" : "false", opt.broker, opt.n, P, opt.sources, opt.threads, ok, failed, reg_s, rate, rss0, rss1, rss2,
	       rss_per, hold_s, opt.heartbeat, cpu_s, cpu_pct, tot.hb_sent, tot.hb_replies, tot.dropped,
	       opt.requests, req_ok, req_failed, req_rate, rtt_avg, rtt_p50, rtt_p99, req_cpu, tot.req_answered,
	       reg_cpu_us, hb_cpu_us, rss_per >= 0 ? rss_per / 1024.0 : -1, lat50, lat99, latmax);
	printf("%-32s %s\n", "broker", opt.broker);
	printf("%-32s %ld of %ld (%ld failed) in %.2f s\n", "registered", ok, opt.n, failed, reg_s);
	if (opt.batch)
		printf("%-32s SCHED_BATCH (its wake-ups do not preempt the broker)\n", "load tool");
	if (opt.plaintext)
		printf("%-32s %.1f /s (plaintext, %d procs x %d in flight, %d source addrs)\n",
		       "registration rate", rate, P, opt.window, opt.sources);
	else
		printf("%-32s %.1f /s (handshake, %d procs x %d threads, %d source addrs)\n",
		       "registration rate", rate, P, opt.threads, opt.sources);
	if (opt.broker_pid) {
		printf("%-32s %ld -> %ld kB (%.0f bytes/registration); %ld kB at end\n", "broker RSS", rss0,
		       rss1, rss_per, rss2);
		printf("%-32s %.3f s over %.1f s hold (%.2f %%)\n", "broker CPU", cpu_s, hold_s, cpu_pct);
		printf("%-32s %.1f us\n", "broker CPU per registration", reg_cpu_us);
		printf("%-32s %.1f us\n", "broker CPU per heartbeat", hb_cpu_us);
		printf("%-32s %.2f KiB\n", "broker RSS per registration", rss_per / 1024.0);
	}
	printf("%-32s p50 %.3f ms, p99 %.3f ms, max %.3f ms (%ld samples)\n", "ALIVE echo latency",
	       lat50, lat99, latmax, nlat);
	printf("%-32s %ld sent, %ld replies, %ld registrations dropped\n", "ALIVE (hold)", tot.hb_sent,
	       tot.hb_replies, tot.dropped);
	if (opt.requests > 0)
		printf("%-32s %ld of %ld ok, %.1f /s, rtt avg %.2f ms p50 %.2f p99 %.2f; broker CPU %.3f s\n",
		       "requests (after the hold)", req_ok, opt.requests, req_rate, rtt_avg, rtt_p50, rtt_p99,
		       req_cpu);
	if (first_error[0])
		printf("%-32s %s\n", "first registration error", first_error);
	if (req_error[0])
		printf("%-32s %s\n", "first request error", req_error);
	for (long i = 0; i < nids; i++)
		free(ids[i]);
	free(ids);
	free(pids);
	free(up);
	free(down);
	free(opt.sock_id);
	free(opt.broker_sinful);
	ccb_config_free(g_cfg);
	return ok == opt.n && req_failed == 0 ? 0 : 1;
}
