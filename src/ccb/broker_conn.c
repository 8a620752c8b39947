/*
 * The broker's connection plumbing, used by the loop (broker.c) and the
 * protocol code (broker_proto.c, broker_tunnel.c, broker_outbound.c):
 * creating and closing a bk_conn, its epoll registration, peeking at a
 * whole CEDAR message (see broker.c's header comment), sending one control
 * ad. Depends on nothing else of the broker.
 *
 * Writes: control messages are small and the kernel send buffer normally
 * has room; they are written with a short deadline (BK_SEND_TIMEOUT_MS) and a
 * registration whose peer does not drain its socket is dropped.
 */

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ccb/attributes.h"
#include "ccb/wire.h"
#include "broker_internal.h"
#include "util/util.h"

#define BK_SEND_TIMEOUT_MS 500

bk_conn *bk_conn_new(int fd, bk_state st)
{
	bk_conn *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->fd = fd;
	c->state = st;
	bk_list_init(&c->tnode);
	bk_list_init(&c->qnode);
	return c;
}

bool bk_epoll_add(ccb_broker *b, bk_conn *c, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};

	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		CCB_LOG(CCB_LOG_WARNING, "broker: epoll add %s: %s", bk_peer(c), ccb__strerror(errno));
		return false;
	}
	c->in_epoll = true;
	return true;
}

void bk_epoll_del(ccb_broker *b, bk_conn *c)
{
	if (c->in_epoll) {
		epoll_ctl(b->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		c->in_epoll = false;
	}
}

/* Close and free a loop-owned connection (not a registration's bookkeeping:
 * see bk_drop_reg()). */
void bk_conn_close(ccb_broker *b, bk_conn *c)
{
	bk_epoll_del(b, c);
	bk_list_del(&c->tnode);
	if (c->s)
		ccb_stream_free(c->s); /* closes fd */
	else if (c->fd >= 0)
		close(c->fd);
	c->s = NULL;
	c->fd = -1;
	if (c->hs) {
		ccb_classad_free(c->hs->ad);
		free(c->hs->send_text);
		free(c->hs);
		c->hs = NULL;
	}
	if (c->state == BK_DEAD)
		return;
	if (c->state != BK_LISTEN && c->state != BK_EVENT && b->nconns)
		b->nconns--;
	/* Later events of the current epoll batch may still point here. */
	c->state = BK_DEAD;
	bk_list_add_tail(&b->dead, &c->tnode);
}

void bk_conn_reap(ccb_broker *b)
{
	while (!bk_list_empty(&b->dead)) {
		bk_conn *c = bk_container(b->dead.next, bk_conn, tnode);
		bk_list_del(&c->tnode);
		free(c);
	}
}

bool bk_send_ad(ccb_broker *b, bk_conn *c, const ccb_classad *ad)
{
	ccb_error e;

	(void)b;
	ccb_stream_set_deadline(c->s, ccb_deadline_in(BK_SEND_TIMEOUT_MS));
	if (ccb_control_ad_write(c->s, ad, c->peer_version, &e)) {
		CCB_LOG(CCB_LOG_INFO, "broker: send to %s failed: %s", bk_peer(c), e.detail);
		return false;
	}
	ccb_stream_set_deadline(c->s, INT64_MAX);
	return true;
}

void bk_reply_close(ccb_broker *b, bk_conn *c, bool ok, const char *text)
{
	ccb_ad_field f[] = {CCB_AD_BOOL(CCB_ATTR_RESULT, ok),
			    CCB_AD_STRING(CCB_ATTR_ERROR_STRING, text ? text : "")};
	ccb_classad *ad = NULL;

	if (c->s && ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, NULL) == CCB_OK)
		bk_send_ad(b, c, ad);
	ccb_classad_free(ad);
	bk_conn_close(b, c);
}

enum peek_res bk_peek_message(ccb_broker *b, bk_conn *c)
{
	ssize_t n = recv(c->fd, b->peek, b->peek_cap, MSG_PEEK | MSG_DONTWAIT);
	size_t off = 0, total = 0;

	if (n == 0)
		return PK_CLOSED;
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? PK_NONE : PK_CLOSED;
	while (off + 5 <= (size_t)n) {
		uint8_t end = b->peek[off];
		uint32_t len = ((uint32_t)b->peek[off + 1] << 24) | ((uint32_t)b->peek[off + 2] << 16) |
			       ((uint32_t)b->peek[off + 3] << 8) | b->peek[off + 4];
		/* cedar-stream.md §2: end flag 0/1, body 1..1 MiB. */
		if (end > 10 || len == 0 || len > CCB_MAX_PACKET_BODY)
			return PK_BAD;
		total += len;
		if (total > b->max_message + 64)
			return PK_BAD;
		if (off + 5 + len > (size_t)n)
			return PK_PARTIAL;
		off += 5 + len;
		if (end) {
			b->peek_len = off;
			b->peek_total = (size_t)n;
			return PK_COMPLETE;
		}
	}
	/* Headers alone filling the peek buffer: absurdly many packets. */
	return (size_t)n >= b->peek_cap ? PK_BAD : PK_PARTIAL;
}
