/*
 * A scripted fake CCB broker and target for the dial tests and bench_dial.
 *
 * A fake broker is a thread that accepts connections on 127.0.0.1, serves
 * each one to the end (one at a time) with ccb_sec_server_accept() and a
 * real ccb_sec_server_config (CLAIMTOBE), reads the CCB_REQUEST ad and then
 * does what its mode says. In the forwarding modes it also plays the target
 * itself, on the same thread: it reverse-connects to the request's MyAddress
 * with a hello (standard) or replays a hello on the request socket
 * (streaming), then serves the reversed connection as `target` says.
 *
 * Swapping in a real broker: everything a test or the bench needs from the
 * broker is its contact string (fb_contact()); a real broker with a real
 * registered target gives the same thing.
 */
#ifndef FAKECCB_H
#define FAKECCB_H

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ccb/addr.h"
#include "ccb/attributes.h"
#include "ccb/classad.h"
#include "ccb/commands.h"
#include "ccb/security.h"
#include "ccb/sharedport.h"
#include "ccb/stream.h"
#include "ccb/wire.h"
#include "ccbt.h"
#include "util/util.h"

typedef enum fb_mode {
	FB_FORWARD,          /* target calls back with a valid hello */
	FB_IMPOSTOR_FIRST,   /* a hello with a wrong ClaimId first, then the real one */
	FB_REPLY_FIRST,      /* Result=true reply before the hello (then close) */
	FB_UNKNOWN_CCBID,    /* C++ "no daemon is currently registered" failure */
	FB_TARGET_FAILED,    /* failure reply "failed to connect" */
	FB_SILENT,           /* read the request, never answer */
	FB_CLOSE,            /* read the request, close without a reply */
	FB_NO_ACCEPT,        /* never accept: connections sit in the backlog */
	FB_STREAM,           /* streaming: reply ProxyMode, replay hello, relay */
	FB_STREAM_DISABLED,  /* C++ broker with CCB_SERVER_STREAMING=false */
} fb_mode;

typedef enum fb_target {
	TG_ECHO,   /* read a string, answer "pong:" + it */
	TG_SEC,    /* ccb_sec_server_accept (answers DC_SEC_QUERY) */
	TG_SP,     /* read the requester's first message raw (SHARED_PORT_CONNECT), then echo */
} fb_target;

typedef struct fake_broker {
	int lfd;
	uint16_t port;
	fb_mode mode;
	fb_target target;
	ccb_sec_server_config cfg;
	pthread_t th;
	int wake[2];
	/* observations (under mu) */
	pthread_mutex_t mu;
	int requests;
	int hellos_sent;
	char ccbid[64], name[128], my_address[256], route[64], claim_id[64];
	bool streaming_required, has_route;
	uint8_t sp_bytes[256];
	size_t sp_len;
	ccb_err target_rc;
	char contact[128];
} fake_broker;

static inline int fb_perm(int command, void *user)
{
	(void)user;
	switch (command) {
	case CCB_CMD_CCB_REQUEST: return CCB_PERM_READ;
	case 60011: return CCB_PERM_ALLOW;
	case 60020: return CCB_PERM_READ;
	case CCB_CMD_DC_SEC_QUERY: return CCB_PERM_ALLOW;
	}
	return -1;
}

static inline void fb_client_sec(ccb_sec_client_config *c)
{
	memset(c, 0, sizeof *c);
	c->auth_methods = "CLAIMTOBE";
	c->claimtobe_user = "tester";
	c->uid_domain = "vm";
}

/* True when the wake pipe fired. */
static inline bool fb_stopped(fake_broker *b)
{
	struct pollfd p = {.fd = b->wake[0], .events = POLLIN};
	return poll(&p, 1, 0) > 0;
}

/* Wait for `fd` readable or a stop; true if fd is readable. */
static inline bool fb_wait(fake_broker *b, int fd, int timeout_ms)
{
	struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = b->wake[0], .events = POLLIN}};
	if (poll(p, 2, timeout_ms) <= 0)
		return false;
	return p[0].revents && !p[1].revents;
}

static inline void fb_serve_target(fake_broker *b, ccb_stream *t)
{
	ccb_err rc = CCB_OK;

	ccb_stream_set_timeout(t, 10000);
	if (b->target == TG_SP) {
		/* 5-byte header + body of SHARED_PORT_CONNECT, read raw. */
		uint8_t hdr[5];
		size_t body;
		int fd = ccb_stream_fd(t);
		if (!fb_wait(b, fd, 10000) || recv(fd, hdr, 5, MSG_WAITALL) != 5) {
			rc = CCB_ERR_IO;
			goto out;
		}
		body = ((size_t)hdr[1] << 24) | ((size_t)hdr[2] << 16) | ((size_t)hdr[3] << 8) | hdr[4];
		if (body + 5 > sizeof b->sp_bytes ||
		    recv(fd, b->sp_bytes + 5, body, MSG_WAITALL) != (ssize_t)body) {
			rc = CCB_ERR_PROTOCOL;
			goto out;
		}
		memcpy(b->sp_bytes, hdr, 5);
		pthread_mutex_lock(&b->mu);
		b->sp_len = body + 5;
		pthread_mutex_unlock(&b->mu);
		ccb_stream_reset_digests(t);
	}
	if (b->target == TG_SEC) {
		ccb_sec_command cmd;
		ccb_sec_server_config cfg = b->cfg;
		cfg.command_perm = fb_perm;
		rc = ccb_sec_server_accept(t, &cfg, &cmd, NULL);
	} else {
		char *str = NULL, reply[300];
		if (!fb_wait(b, ccb_stream_fd(t), 10000))
			rc = CCB_ERR_TIMEOUT;
		else if (!(rc = ccb_stream_get_string(t, &str)) &&
			 !(rc = ccb_stream_end_of_message(t))) {
			snprintf(reply, sizeof reply, "pong:%s", str);
			if (!(rc = ccb_stream_put_string(t, reply)))
				rc = ccb_stream_end_message(t);
		}
		ccb_free(str);
	}
out:
	pthread_mutex_lock(&b->mu);
	b->target_rc = rc;
	pthread_mutex_unlock(&b->mu);
}

/* The target's reverse connect: dial MyAddress (through shared port when
 * it has sock=) and send a hello carrying `claim`. */
static inline ccb_stream *fb_call_back(const char *my_address, const char *claim)
{
	ccb_sinful *s = NULL;
	ccb_stream *t = NULL;
	ccb_classad *hello = NULL;

	if (ccb_sinful_parse_address(my_address, &s, NULL))
		return NULL;
	if (ccb_sinful_shared_port_id(s)) {
		if (ccb_sharedport_dial(ccb_sinful_host(s), (uint16_t)ccb_sinful_port(s),
					ccb_sinful_shared_port_id(s), "TARGET", ccb_deadline_in(5000), &t,
					NULL))
			t = NULL;
	} else if (ccb_stream_connect(ccb_sinful_host(s), ccb_sinful_port(s), 5000, &t, NULL)) {
		t = NULL;
	}
	ccb_sinful_free(s);
	if (!t)
		return NULL;
	if (ccb_hello_ad_new(claim, "1", my_address, &hello, NULL) || ccb_hello_write(t, hello, 0, NULL)) {
		ccb_stream_free(t);
		t = NULL;
	}
	ccb_classad_free(hello);
	return t;
}

static inline void fb_reply(ccb_stream *s, bool ok, const char *text, bool proxy, unsigned ver)
{
	ccb_classad *ad = NULL;
	ccb_ad_field f[] = {
		CCB_AD_BOOL(CCB_ATTR_RESULT, ok),
		CCB_AD_STRING(CCB_ATTR_ERROR_STRING, text),
		CCB_AD_BOOL(CCB_ATTR_PROXY_MODE, true),
	};
	if (ccb_ad_new(f, proxy ? 3 : 2, &ad, NULL) == CCB_OK)
		ccb_control_ad_write(s, ad, ver, NULL);
	ccb_classad_free(ad);
}

static inline void fb_handle(fake_broker *b, int fd)
{
	ccb_stream *s = NULL, *t = NULL;
	ccb_sec_command cmd;
	ccb_classad *req = NULL;
	const char *v;
	unsigned ver = CCB_VERSION_NUM(25, 14, 0);
	char claim[64] = "", myaddr[256] = "";
	bool streq = false;

	if (ccb_stream_new(fd, &s, NULL))
		return;
	ccb_stream_set_timeout(s, 10000);
	if (ccb_sec_server_accept(s, &b->cfg, &cmd, NULL) || cmd.command != CCB_CMD_CCB_REQUEST ||
	    ccb_control_ad_read(s, &req, NULL))
		goto out;
	pthread_mutex_lock(&b->mu);
	b->requests++;
	if (!ccb_classad_get_string(req, CCB_ATTR_CCBID, &v))
		snprintf(b->ccbid, sizeof b->ccbid, "%s", v);
	if (!ccb_classad_get_string(req, CCB_ATTR_NAME, &v))
		snprintf(b->name, sizeof b->name, "%s", v);
	if (!ccb_classad_get_string(req, CCB_ATTR_MY_ADDRESS, &v))
		snprintf(myaddr, sizeof myaddr, "%s", v);
	if (!ccb_classad_get_string(req, CCB_ATTR_CLAIM_ID, &v))
		snprintf(claim, sizeof claim, "%s", v);
	b->has_route = !ccb_classad_get_string(req, CCB_ATTR_CCB_ROUTE, &v);
	snprintf(b->route, sizeof b->route, "%s", b->has_route ? v : "");
	snprintf(b->my_address, sizeof b->my_address, "%s", myaddr);
	snprintf(b->claim_id, sizeof b->claim_id, "%s", claim);
	b->streaming_required = !ccb_classad_get_bool(req, CCB_ATTR_CCB_STREAMING_REQUIRED, &streq) && streq;
	pthread_mutex_unlock(&b->mu);

	switch (b->mode) {
	case FB_FORWARD:
	case FB_IMPOSTOR_FIRST:
	case FB_REPLY_FIRST:
		if (b->mode == FB_REPLY_FIRST) {
			fb_reply(s, true, "", false, ver);
			poll(NULL, 0, 100); /* let the requester see it first */
		}
		if (b->mode == FB_IMPOSTOR_FIRST) {
			ccb_stream *imp = fb_call_back(myaddr, "0000000000000000000000000000000000000000");
			/* the requester must close it */
			if (imp) {
				uint8_t c;
				fb_wait(b, ccb_stream_fd(imp), 5000);
				(void)!recv(ccb_stream_fd(imp), &c, 1, 0);
				ccb_stream_free(imp);
			}
		}
		t = fb_call_back(myaddr, claim);
		if (!t)
			break;
		pthread_mutex_lock(&b->mu);
		b->hellos_sent++;
		pthread_mutex_unlock(&b->mu);
		fb_serve_target(b, t);
		break;
	case FB_UNKNOWN_CCBID: {
		char text[256];
		snprintf(text, sizeof text,
			 "CCB server rejecting request for ccbid %s because no daemon is currently "
			 "registered with that id (perhaps it recently disconnected).",
			 b->ccbid);
		fb_reply(s, false, text, false, ver);
		break;
	}
	case FB_TARGET_FAILED:
		fb_reply(s, false, "failed to connect", false, ver);
		break;
	case FB_SILENT:
		/* until the requester goes away or the broker stops */
		fb_wait(b, ccb_stream_fd(s), 60000);
		break;
	case FB_CLOSE:
	case FB_NO_ACCEPT:
		break;
	case FB_STREAM_DISABLED:
		fb_reply(s, false,
			 "CCB streaming mode is required to reach this daemon but is disabled on the "
			 "CCB server (CCB_SERVER_STREAMING is false)",
			 false, ver);
		break;
	case FB_STREAM: {
		ccb_classad *hello = NULL;
		int rfd;
		fb_reply(s, true, NULL, true, ver);
		if (ccb_hello_ad_new(claim, "1", "<127.0.0.1:1>", &hello, NULL) == CCB_OK &&
		    ccb_hello_write(s, hello, ver, NULL) == CCB_OK &&
		    ccb_stream_detach_fd(s, &rfd) == CCB_OK && ccb_stream_new(rfd, &t, NULL) == CCB_OK) {
			pthread_mutex_lock(&b->mu);
			b->hellos_sent++;
			pthread_mutex_unlock(&b->mu);
			fb_serve_target(b, t);
		}
		ccb_classad_free(hello);
		break;
	}
	}
out:
	ccb_classad_free(req);
	ccb_stream_free(t);
	ccb_stream_free(s);
}

static inline void *fb_main(void *arg)
{
	fake_broker *b = arg;

	while (!fb_stopped(b)) {
		int fd;
		if (b->mode == FB_NO_ACCEPT) {
			fb_wait(b, b->wake[0], -1);
			break;
		}
		if (!fb_wait(b, b->lfd, -1))
			break;
		fd = accept4(b->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			fb_handle(b, fd);
	}
	return NULL;
}

/* Start a fake broker; its contact is "127.0.0.1:PORT#<ccbid>".
 * `allow_read`: ALLOW_READ of its security config (NULL: everybody). */
static inline void fb_start_allow(fake_broker *b, fb_mode mode, fb_target target,
				  const char *ccbid, const char *allow_read)
{
	memset(b, 0, sizeof *b);
	b->mode = mode;
	b->target = target;
	b->lfd = ccbt_listen(&b->port);
	b->cfg.command_perm = fb_perm;
	b->cfg.uid_domain = "vm";
	b->cfg.auth_methods[CCB_PERM_ALLOW] = "CLAIMTOBE";
	b->cfg.allow[CCB_PERM_READ] = allow_read;
	pthread_mutex_init(&b->mu, NULL);
	if (pipe2(b->wake, O_CLOEXEC) != 0)
		abort();
	snprintf(b->contact, sizeof b->contact, "127.0.0.1:%u#%s", b->port, ccbid);
	if (pthread_create(&b->th, NULL, fb_main, b) != 0)
		abort();
}

static inline void fb_start(fake_broker *b, fb_mode mode, fb_target target, const char *ccbid)
{
	fb_start_allow(b, mode, target, ccbid, NULL);
}

static inline const char *fb_contact(fake_broker *b)
{
	return b->contact;
}

static inline void fb_stop(fake_broker *b)
{
	(void)!write(b->wake[1], "x", 1);
	pthread_join(b->th, NULL);
	close(b->lfd);
	close(b->wake[0]);
	close(b->wake[1]);
	pthread_mutex_destroy(&b->mu);
}

/* A port with nobody listening (bound, then closed). */
static inline uint16_t fb_dead_port(void)
{
	uint16_t port;
	int fd = ccbt_listen(&port);
	close(fd);
	return port;
}


/* Send "ping" on a dialed stream and expect "pong:ping" from an echo target. */
static inline bool fb_echo(ccb_stream *s, const char *msg)
{
	char *got = NULL, want[300];
	bool ok;

	snprintf(want, sizeof want, "pong:%s", msg);
	ccb_stream_set_timeout(s, 10000);
	ok = !ccb_stream_put_string(s, msg) && !ccb_stream_end_message(s) &&
	     !ccb_stream_get_string(s, &got) && !ccb_stream_end_of_message(s) && got &&
	     !strcmp(got, want);
	ccb_free(got);
	return ok;
}

#endif
