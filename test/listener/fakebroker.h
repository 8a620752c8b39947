/*
 * A scripted fake CCB broker for listener tests (header-only; also used by
 * test/ccbctl/test_listen.c). One thread accepts registrations on a loopback
 * port, runs the real security server (CLAIMTOBE, DAEMON for condor@*),
 * reads the register ad, replies as a C++ broker does (ccb-protocol.md §4.2;
 * the same CCBID and cookie back on a valid re-registration, §4.4), then
 * follows its mode: answer heartbeats and record result reports, push
 * queued requests, stay silent, send garbage, and so on.
 */
#ifndef FAKEBROKER_H
#define FAKEBROKER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ccb/commands.h"
#include "ccb/security.h"
#include "ccb/wire.h"
#include "ccbt.h"
#include "util/util.h"
#include "classad/classad_internal.h"

enum fb_mode {
	FB_SERVE,      /* reply, answer ALIVE, push requests, record results */
	FB_SILENT,     /* reply, then read but never answer anything */
	FB_GARBAGE,    /* reply, then send bytes that are not a CEDAR packet */
	FB_HUGE,       /* reply, then announce a 900 KiB message */
	FB_NO_REPLY,   /* read the register ad, never reply */
	FB_MUTE,       /* accept the TCP connection, never read (handshake hangs) */
	FB_HANGUP,     /* read the register ad and close */
};

#define FB_MAX_EVENTS 64

typedef struct fakebroker {
	int lfd;
	uint16_t port;
	pthread_t thread;
	bool running;
	atomic_bool stop;
	ccb_sec_server_config cfg;
	bool streaming_attr; /* add CCBStreaming = true to replies (golang-ccb) */

	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum fb_mode mode;
	int registrations;            /* register ads read */
	int serve_registrations;      /* of those, read in FB_SERVE mode */
	uint64_t next_id;             /* kept across restarts, like a reconnect file */
	char cookie[FB_MAX_EVENTS][16]; /* per CCBID */
	ccb_classad *last_register;   /* copy of the last register ad */
	int alive;                    /* ALIVE messages received */
	int64_t alive_at[FB_MAX_EVENTS];
	ccb_classad *results[FB_MAX_EVENTS];
	int nresults;
	ccb_classad *push[FB_MAX_EVENTS]; /* requests to forward */
	int npush;
	bool connected;
} fakebroker;

static int fb_perm(int command, void *user)
{
	(void)user;
	switch (command) {
	case CCB_CMD_CCB_REGISTER: return CCB_PERM_DAEMON;
	case CCB_CMD_CCB_REQUEST: return CCB_PERM_READ;
	case CCB_CMD_DC_SEC_QUERY: return CCB_PERM_ALLOW;
	}
	return -1;
}

static int fb_listen_on(uint16_t *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof a;
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(*port);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 16) < 0) {
		perror("fakebroker bind");
		abort();
	}
	getsockname(fd, (struct sockaddr *)&a, &al);
	*port = ntohs(a.sin_port);
	return fd;
}

/* Wait until fd is readable or the broker stops; true if readable. */
static bool fb_wait(fakebroker *fb, int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, ms) > 0;
}

static void fb_reply(fakebroker *fb, ccb_stream *s, const ccb_classad *reg)
{
	const char *old = NULL, *cookie = NULL;
	uint64_t id = 0;
	char contact[128];
	ccb_classad *r;

	ccb_classad_get_string(reg, CCB_ATTR_CCBID, &old);
	ccb_classad_get_string(reg, CCB_ATTR_CLAIM_ID, &cookie);
	pthread_mutex_lock(&fb->mu);
	/* §4.4: reclaim the id when the cookie matches. */
	if (old && cookie && strrchr(old, '#')) {
		uint64_t want = strtoull(strrchr(old, '#') + 1, NULL, 10);
		if (want > 0 && want < FB_MAX_EVENTS && !strcmp(fb->cookie[want], cookie))
			id = want;
	}
	if (!id) {
		id = ++fb->next_id;
		snprintf(fb->cookie[id % FB_MAX_EVENTS], sizeof fb->cookie[0], "%u",
			 (unsigned)(1000000000u + id * 7919u));
	}
	pthread_mutex_unlock(&fb->mu);
	snprintf(contact, sizeof contact, "127.0.0.1:%u#%llu", fb->port, (unsigned long long)id);
	r = ccb__classad_new();
	ccb_classad_set_string(r, CCB_ATTR_CCBID, contact);
	ccb_classad_set_int(r, CCB_ATTR_COMMAND, CCB_CMD_CCB_REGISTER);
	ccb_classad_set_string(r, CCB_ATTR_CLAIM_ID, fb->cookie[id % FB_MAX_EVENTS]);
	if (fb->streaming_attr)
		ccb_classad_set_bool(r, CCB_ATTR_CCB_STREAMING, true);
	ccb_control_ad_write(s, r, CCB_VERSION_NUM(25, 14, 0), NULL);
	ccb_classad_free(r);
}

static void fb_serve_conn(fakebroker *fb, ccb_stream *s)
{
	ccb_sec_command cmd;
	ccb_classad *ad = NULL;
	enum fb_mode mode;

	ccb_stream_set_timeout(s, 5000);
	pthread_mutex_lock(&fb->mu);
	mode = fb->mode;
	pthread_mutex_unlock(&fb->mu);
	if (mode == FB_MUTE) {
		while (!atomic_load(&fb->stop))
			usleep(10000);
		return;
	}
	if (ccb_sec_server_accept(s, &fb->cfg, &cmd, NULL) || cmd.command != CCB_CMD_CCB_REGISTER)
		return;
	if (ccb_control_ad_read(s, &ad, NULL))
		return;
	pthread_mutex_lock(&fb->mu);
	fb->registrations++;
	if (mode == FB_SERVE)
		fb->serve_registrations++;
	ccb_classad_free(fb->last_register);
	fb->last_register = ad;
	pthread_cond_broadcast(&fb->cv);
	pthread_mutex_unlock(&fb->mu);
	if (mode == FB_HANGUP)
		return;
	if (mode == FB_NO_REPLY) {
		while (!atomic_load(&fb->stop))
			usleep(10000);
		return;
	}
	fb_reply(fb, s, ad);
	ad = NULL; /* owned by fb->last_register */
	pthread_mutex_lock(&fb->mu);
	fb->connected = true;
	pthread_mutex_unlock(&fb->mu);
	if (mode == FB_GARBAGE) {
		/* A packet header with end flag 7 and a body of junk. */
		static const uint8_t junk[] = {7, 0, 0, 0, 4, 'j', 'u', 'n', 'k', 0xAD, 0xAD};
		ssize_t w = write(ccb_stream_fd(s), junk, sizeof junk);
		(void)w;
	} else if (mode == FB_HUGE) {
		/* Announce 900 KiB in one packet: over the 64 KiB control cap. */
		static const uint8_t hdr[] = {1, 0, 0x0e, 0x10, 0};
		ssize_t w = write(ccb_stream_fd(s), hdr, sizeof hdr);
		(void)w;
	}
	while (!atomic_load(&fb->stop)) {
		ccb_classad *push = NULL;
		int64_t c = -1;

		pthread_mutex_lock(&fb->mu);
		if (fb->npush > 0) {
			push = fb->push[0];
			memmove(fb->push, fb->push + 1, (size_t)(fb->npush - 1) * sizeof fb->push[0]);
			fb->npush--;
		}
		pthread_mutex_unlock(&fb->mu);
		if (push) {
			ccb_err rc = ccb_control_ad_write(s, push, CCB_VERSION_NUM(25, 14, 0), NULL);
			ccb_classad_free(push);
			if (rc)
				break;
		}
		if (!fb_wait(fb, ccb_stream_fd(s), 20))
			continue;
		if (ccb_control_ad_read(s, &ad, NULL))
			break;
		ccb_classad_get_int(ad, CCB_ATTR_COMMAND, &c);
		pthread_mutex_lock(&fb->mu);
		if (c == CCB_CMD_ALIVE) {
			if (fb->alive < FB_MAX_EVENTS)
				fb->alive_at[fb->alive] = ccb_now_ms();
			fb->alive++;
		} else if (fb->nresults < FB_MAX_EVENTS) {
			fb->results[fb->nresults++] = ad;
			ad = NULL;
		}
		pthread_cond_broadcast(&fb->cv);
		pthread_mutex_unlock(&fb->mu);
		if (c == CCB_CMD_ALIVE && mode == FB_SERVE && ccb_control_ad_write(s, ad, 0, NULL))
			break;
		ccb_classad_free(ad);
		ad = NULL;
	}
	ccb_classad_free(ad);
}

static void *fb_main(void *arg)
{
	fakebroker *fb = arg;

	while (!atomic_load(&fb->stop)) {
		ccb_stream *s;
		int fd;

		if (!fb_wait(fb, fb->lfd, 20))
			continue;
		fd = accept4(fb->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0 || ccb_stream_new(fd, &s, NULL))
			continue;
		fb_serve_conn(fb, s);
		ccb_stream_free(s);
		pthread_mutex_lock(&fb->mu);
		fb->connected = false;
		pthread_cond_broadcast(&fb->cv);
		pthread_mutex_unlock(&fb->mu);
	}
	return NULL;
}

/* Start (or restart on the same port when fb->port is set). */
static void fb_start(fakebroker *fb)
{
	atomic_store(&fb->stop, false);
	fb->lfd = fb_listen_on(&fb->port);
	fb->running = true;
	pthread_create(&fb->thread, NULL, fb_main, fb);
}

static void fb_init(fakebroker *fb, enum fb_mode mode)
{
	memset(fb, 0, sizeof *fb);
	pthread_mutex_init(&fb->mu, NULL);
	pthread_cond_init(&fb->cv, NULL);
	fb->mode = mode;
	fb->cfg.command_perm = fb_perm;
	fb->cfg.uid_domain = "vm";
	fb->cfg.auth_methods[CCB_PERM_ALLOW] = "CLAIMTOBE";
	fb->cfg.allow[CCB_PERM_DAEMON] = "condor@*";
	fb_start(fb);
}

/* Kill: close the listening socket and the registration. */
static void fb_kill(fakebroker *fb)
{
	if (!fb->running)
		return;
	atomic_store(&fb->stop, true);
	pthread_join(fb->thread, NULL);
	close(fb->lfd);
	fb->lfd = -1;
	fb->running = false;
}

static void fb_destroy(fakebroker *fb)
{
	fb_kill(fb);
	ccb_classad_free(fb->last_register);
	for (int i = 0; i < fb->nresults; i++)
		ccb_classad_free(fb->results[i]);
	for (int i = 0; i < fb->npush; i++)
		ccb_classad_free(fb->push[i]);
	pthread_cond_destroy(&fb->cv);
	pthread_mutex_destroy(&fb->mu);
}

static void fb_push(fakebroker *fb, ccb_classad *req)
{
	pthread_mutex_lock(&fb->mu);
	fb->push[fb->npush++] = req;
	pthread_mutex_unlock(&fb->mu);
}

/* Wait until *counter (read under the lock) reaches n; false on timeout. */
static bool fb_wait_count(fakebroker *fb, const int *counter, int n, int timeout_ms)
{
	int64_t until = ccb_now_ms() + timeout_ms;
	bool ok;

	pthread_mutex_lock(&fb->mu);
	while (*counter < n && ccb_now_ms() < until) {
		pthread_mutex_unlock(&fb->mu);
		usleep(5000);
		pthread_mutex_lock(&fb->mu);
	}
	ok = *counter >= n;
	pthread_mutex_unlock(&fb->mu);
	return ok;
}

/* A listener client config matching the fake broker's server config. */
static inline ccb_sec_client_config fb_client_security(void)
{
	ccb_sec_client_config c = {.auth_methods = "CLAIMTOBE", .claimtobe_user = "condor",
				   .uid_domain = "vm"};
	return c;
}

#endif
