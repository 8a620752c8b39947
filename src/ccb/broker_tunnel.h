/*
 * The inside CCB's state, shared by broker_tunnel.c (upstream registration,
 * relays) and broker_tunnel_old.c (pre-25.13 clients). Not installed.
 *
 * Include as "broker_tunnel.h": only src/ccb/broker_tunnel*.c.
 */
#ifndef CCB_BROKER_TUNNEL_H
#define CCB_BROKER_TUNNEL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "ccb/listener.h"
#include "broker_internal.h"

#define TUN_MAX_QUEUE 256
#define TUN_MAX_DIALERS 16
#define TUN_DIAL_TIMEOUT_MS 20000

/* Old-client failure texts (srv:1559-1788, ccb-protocol.md §12). */
#define TXT_NO_ROUTE "no route to tunneled target"
#define TXT_REVERSE_FAILED "failed to reverse-connect to requester"
#define TXT_DEREGISTERED "tunneled target deregistered"
#define TXT_SEND_FAILED "failed to send reverse-connect"
#define TXT_OLD_SESSION_CAP "CCB session limit reached on the broker"
#define TXT_OLD_HANDSHAKE_CAP "CCB handshake limit reached on the broker"
#define TXT_NOT_PERMITTED "target not permitted" /* srv:1620-1634 */

typedef struct tun_item {
	struct tun_item *next;
	ccb_stream *s;     /* the upstream pipe, or the dialed old requester (owned) */
	bk_conn *req;      /* old client: its request connection (the loop's) */
	char *route;       /* "head tail..." */
	char *orig, *prior;
	char peer[96];
	bool failed;       /* old client: the dial failed */
	const char *fail_text;
} tun_item;

struct bk_tunnel {
	ccb_listener *up;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	tun_item *head, **tail;
	size_t nq;
	unsigned dialers;
	ccb__wakeup wake; /* wakes the broker loop */
	bk_conn *econn;
	pthread_t watcher;
	bool watcher_on;
	atomic_bool quit;
	char *paths;       /* loop thread: "A#5 B#7", NULL until registered */
	long hold_ms;      /* < 0: forever */
	size_t nheld;
};

void bk_tun_item_free(tun_item *it);
/* Queue an item for the loop; false (item untouched) when the queue is full. */
bool bk_tun_push(struct bk_tunnel *t, tun_item *it);
/* Make b->tun (without an upstream: a plain entry broker's old-client path). */
ccb_err bk_tun_new(ccb_broker *b, ccb_error *err);

#endif
