/*
 * Broker internals shared by src/ccb/broker*.c. Not installed.
 *
 * Ownership: every bk_conn in the tables and lists below is touched only
 * under `lock`, by the loop thread or by a handshake worker (which accepts
 * connections and serves the command after a handshake). A conn on the jobs
 * queue, and then running on a worker's fiber, belongs to that worker until
 * its handshake is over and its command served under `lock`. `lock` also
 * guards the tables against the status dump; the jobs queue and the
 * workers' state have their own `qlock`.
 *
 * Include as "broker_internal.h": only src/ccb/broker*.c and the tests
 * that look inside the broker (test/broker, test/fuzz/fuzz_route.c).
 */
#ifndef CCB_BROKER_INTERNAL_H
#define CCB_BROKER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "ccb/addr.h"
#include "ccb/broker.h"
#include "ccb/classad.h"
#include "ccb/stream.h"
#include "broker_map.h"
#include "relay.h"
#include "util/wakeup.h"

#define BK_MAX_LISTEN 8

/* ---- connections ------------------------------------------------------------ */

typedef enum bk_state {
	BK_LISTEN,     /* a listen socket */
	BK_EVENT,      /* one of the eventfds */
	BK_NEW,        /* accepted, waiting for its first bytes */
	BK_HANDSHAKE,  /* with a worker */
	BK_SEND,       /* with a worker, sending a reply then closing */
	BK_REG,        /* a registration socket */
	BK_REQ,        /* standard request waiting for the target's result */
	BK_PROXY_REQ,  /* streaming request waiting for the target's hello */
	BK_DEAD,       /* closed; freed at the end of the event batch */
	BK_OUTBOUND,   /* CCB_PROXY_CONNECT requester; its dial runs on a thread */
} bk_state;

struct bk_reg;
struct bk_req;

/* What a connection needs only until its command is handled (freed once
 * it is a registration): the handshake's outcome and identity. */
typedef struct bk_hs {
	ccb_err rc;                      /* handshake outcome (worker -> loop) */
	int cmd;                         /* the command asked for */
	ccb_classad *ad;                 /* its first message */
	char *send_text;                 /* BK_SEND: the status reply */
	char peer[56];                   /* "<ip:port>", "<[v6]:port>" */
	char peer_ip[64];
	char user[128];                  /* authenticated identity */
	char err[CCB_ERROR_DETAIL_SIZE]; /* handshake failure (worker -> loop) */
	/* The handshake (or status reply) runs on a fiber (broker_hs.c): while
	 * `waiting` its worker (`home`) watches the fd for wait_events until
	 * wait_deadline, then resumes it with wait_res. */
	struct bk_conn *conn;            /* the connection this block belongs to */
	struct ccb__fiber *fib;
	struct ccb_broker *owner;
	unsigned home;
	short wait_events;
	int wait_res;                    /* > 0 ready, 0 timed out, < 0 cancelled */
	int64_t wait_deadline;
	bool waiting;
	bool counted;                    /* in its source's handshakes in progress */
	bool counted_fib;                /* in its worker's live fibers */
	uint32_t wait_registered;        /* epoll events of the fd in its worker's set */
	uint64_t src_key;                /* that source's key in hs_src */
	bk_list wnode;                   /* its worker's waits */
} bk_hs;

/* Kept small: one per registration for its whole life (see
 * docs/performance.md for the byte count). */
typedef struct bk_conn {
	int fd;
	bk_state state;
	ccb_stream *s;          /* after the handshake */
	int64_t deadline_ms;    /* first bytes / handshake / partial message */
	bk_list tnode;          /* new_list or partial_list */
	bk_list qnode;          /* jobs queue, or its worker's fin list */
	struct bk_reg *reg;
	struct bk_req *req;
	bk_hs *hs;              /* until the command is handled */
	unsigned peer_version;  /* CCB_VERSION_NUM of the peer, 0 unknown */
	bool in_epoll;
	bool reserve;           /* accepted into the admin reserve (over the limit) */
} bk_conn;

/* The peer's "<ip:port>": kept in the handshake block, then by the stream
 * (its peer name is set from it), so a registration holds it once. */
static inline const char *bk_peer(const bk_conn *c)
{
	return c->hs ? c->hs->peer : c->s ? ccb_stream_peer_name(c->s) : "?";
}

/* The peer's IP while the connection still has its handshake block (every
 * connection but a registration), else "". */
static inline const char *bk_peer_ip(const bk_conn *c)
{
	return c->hs ? c->hs->peer_ip : "";
}

typedef struct bk_reg {
	uint64_t id;
	bk_conn *c;
	int64_t registered_wall, heard_wall;
	int64_t heard_ms;
	bk_list lru;      /* b->lru, least recently heard first */
	bk_list pending;  /* standard requests waiting on this target */
	size_t npending;
	bool held;        /* inside CCB: reply held until the tunnel is up */
	int64_t held_ms;
	char name[];      /* the register ad's Name */
} bk_reg;

typedef struct bk_req {
	uint64_t id;
	bool streaming;
	bk_conn *c;         /* requester */
	bk_reg *target;     /* standard requests */
	char *connect_id;
	int64_t created_ms;
	bk_list fifo;       /* std_fifo or sess_fifo: creation order = deadline order */
	bk_list tnode;      /* target->pending */
	uint64_t target_id; /* the CCBID asked for (streaming requests too) */
	bool inbound;       /* inside CCB relay hop: `c` is the upstream pipe (or
			     * an old client's dialed socket); nothing is ever
			     * replied on it, it is only spliced (§9.3) */
} bk_req;

typedef struct bk_rec {
	uint64_t id;
	char ip[46];      /* INET6_ADDRSTRLEN */
	char cookie[24];
	int64_t alive_ms;
} bk_rec;

typedef struct bk_stats {
	uint64_t reconnects, requests, requests_succeeded, requests_failed, requests_not_found;
	uint64_t streaming_requests, handshakes_peak, connected_peak;
	uint64_t connections_accepted, connections_refused, handshakes_failed, bad_input;
	uint64_t refused_at_limit, refused_no_fd, admin_over_limit;
	uint64_t requests_timed_out, streaming_handshakes_timed_out, targets_idle_dropped;
	uint64_t records_pruned, record_file_errors;
	uint64_t handshakes_source_refused;
	uint64_t tunnel_relays, tunnel_relays_failed; /* CCBTunnelRelays[Failed] */
} bk_stats;

typedef struct bk_outbound bk_outbound;

/* The server security settings of the moment, deep-copied. A handshake holds
 * a reference while it runs, so ccb_broker_reload_security() can swap in a
 * new block without freeing strings still in use. */
typedef struct bk_sec {
	atomic_int refs;
	ccb_sec_server_config cfg;
} bk_sec;

/* A deep copy of `cfg` with one reference, NULL when out of memory; drop a
 * reference with bk_sec_release() (the last one frees it). */
bk_sec *bk_sec_new(const ccb_sec_server_config *cfg);
void bk_sec_release(bk_sec *s);

struct ccb_broker {
	/* configuration (strings owned) */
	ccb_broker_config cfg;
	char *listen_text, *public_text, *record_path;
	bk_sec *sec; /* under qlock */
	ccb_sec_sessions *own_sessions;
	long sweep_ms, idle_ms, req_timeout_ms, hs_timeout_ms, sess_timeout_ms;
	size_t max_message;
	unsigned max_conns;
	unsigned admin_reserve; /* connections over max_conns for status/admin commands */

	/* addresses */
	char *pub_sinful;   /* "<...>" */
	char *pub_bare;     /* contact prefix, no brackets */
	bool pub_contact_ok; /* pub_bare makes valid contacts (checked once) */
	int lfd[BK_MAX_LISTEN];
	int lport[BK_MAX_LISTEN];
	bk_conn *lconn[BK_MAX_LISTEN];
	size_t nl;
	bool accept_paused;
	bool accepting;          /* listen fds in the workers' sets */
	bool worker_accepting;   /* a worker runs bk_accept: it runs the jobs itself */
	int64_t accept_resume_ms;
	int spare_fd;
	int64_t refuse_log_ms;     /* next refusal warning allowed */
	uint64_t refuse_unlogged;  /* refusals since the last warning */

	/* loop */
	int epfd;
	ccb__wakeup stop_signal, done_signal; /* stop(); outbound dials done, accepting paused */
	bk_conn *stop_conn, *done_conn;
	atomic_bool stopping;
	atomic_int run_state; /* 0 idle, 1 running, 2 done */
	pthread_mutex_t lock;
	uint8_t *peek;
	size_t peek_cap, peek_len; /* peek_len: bytes of the last complete message peeked */
	size_t peek_total;         /* bytes the kernel held at that peek */

	/* workers (broker_hs.c) */
	struct bk_wk *wk;
	unsigned nworkers;
	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	bk_list jobs;
	bool wquit;
	/* handshake fibers: waiting for their peer (all workers); per-source
	 * counts (loop). */
	atomic_bool hs_cancel;
	atomic_size_t hs_nwait;
	size_t hs_active;
	bk_map hs_src;
	unsigned hs_per_source;

	ccb__relay_engine *relay;
	ccb_classad *alive_ad; /* the heartbeat reply {Command = 441}, built once */

	/* tables */
	bk_map regs, recs, reqs;
	bk_list lru, new_list, partial_list, std_fifo, sess_fifo, dead;
	size_t handshaking; /* streaming sessions waiting for their target */
	uint64_t next_id, next_req;
	size_t nconns;
	int64_t next_sweep_ms;
	int store_fd;
	bk_stats st;
	struct bk_tunnel *tun; /* broker_tunnel.c; NULL without a next hop */
	bk_outbound *ob; /* broker_outbound.c */
};

/* broker_store.c: reconnect records (ccb-protocol.md §11.1). */
ccb_err bk_store_open(ccb_broker *b, ccb_error *err);
void bk_store_append(ccb_broker *b, const bk_rec *r);
void bk_store_sweep(ccb_broker *b);
void bk_store_close(ccb_broker *b);
bk_rec *bk_rec_new(ccb_broker *b, uint64_t id, const char *ip);

/* Loop-owned sockets are watched edge-triggered, readable and hang-up. */
#define BK_EDGE (EPOLLIN | EPOLLRDHUP | EPOLLET)

/* broker_proto.c: registrations, result reports, dispatch, timers. */
void bk_handle_command(ccb_broker *b, bk_conn *c);
void bk_reg_readable(ccb_broker *b, bk_conn *c);
void bk_drop_reg(ccb_broker *b, bk_reg *r, const char *why);
void bk_timers(ccb_broker *b, int64_t now);

/* broker_request.c: requests (standard and streaming). */
void bk_handle_request(ccb_broker *b, bk_conn *c);
/* A target's hello on a connection it dialed for a streaming session. */
void bk_handle_hello(ccb_broker *b, bk_conn *t);
void bk_requester_readable(ccb_broker *b, bk_conn *c);
void bk_fail_request(ccb_broker *b, bk_req *q, const char *text, bool reply);

/* broker_conn.c: connection plumbing for the loop and the protocol code
 * (calls nothing else of the broker). */
bk_conn *bk_conn_new(int fd, bk_state st);
/* Close a loop-owned connection; it is freed by bk_conn_reap() at the end
 * of the event batch. */
void bk_conn_close(ccb_broker *b, bk_conn *c);
void bk_conn_reap(ccb_broker *b);
bool bk_epoll_add(ccb_broker *b, bk_conn *c, uint32_t events);
void bk_epoll_del(ccb_broker *b, bk_conn *c);
/* What the kernel holds for `c` (MSG_PEEK, nothing consumed): a complete
 * CEDAR message, part of one, nothing, or a dead/bad socket. */
enum peek_res { PK_NONE, PK_PARTIAL, PK_COMPLETE, PK_CLOSED, PK_BAD };
enum peek_res bk_peek_message(ccb_broker *b, bk_conn *c);
/* Send one control ad with a short deadline; false on failure (logged). */
bool bk_send_ad(ccb_broker *b, bk_conn *c, const ccb_classad *ad);
/* Reply {Result, ErrorString} and close the connection. */
void bk_reply_close(ccb_broker *b, bk_conn *c, bool ok, const char *text);

/* broker_accept.c: listen sockets, the public address, accepting and
 * refusing connections. */
ccb_err bk_listen_all(ccb_broker *b, ccb_error *err);
void bk_accept(ccb_broker *b, int lfd, int max, bk_conn **pend, size_t *npend, size_t pend_cap);
void bk_new_to_loop(ccb_broker *b, bk_conn *c);
bool bk_is_listen(const ccb_broker *b, const bk_conn *c);
bool bk_new_readable(ccb_broker *b, bk_conn *c);
void bk_finish_handshake(ccb_broker *b, bk_conn *c);
/* Stop or resume watching the listen sockets. */
void bk_set_accepting(ccb_broker *b, bool on);
/* Whether a connection accepted over the limit may stay (its peeked first
 * message asks for a status or admin command); false counts a refusal. */
bool bk_reserve_admit(ccb_broker *b, bk_conn *c);

/* broker_hs.c: the handshake workers and their fibers. */
typedef struct bk_wk bk_wk;
/* Queue a connection for a handshake worker (loop). */
void bk_queue_job(ccb_broker *b, bk_conn *c);
int bk_worker_epfd(const ccb_broker *b, unsigned i);
/* Create the nworkers workers (their epoll sets and threads). On failure
 * some may be running: bk_workers_stop then bk_workers_free clean up. */
ccb_err bk_workers_start(ccb_broker *b, ccb_error *err);
/* Loop: count a handshake against its source; false at the source's cap. */
bool bk_hs_admit(ccb_broker *b, bk_conn *c);
void bk_hs_release(ccb_broker *b, bk_conn *c);
/* Cancel every handshake and join the workers. */
void bk_workers_stop(ccb_broker *b);
/* Free what bk_workers_start made (after bk_workers_stop). */
void bk_workers_free(ccb_broker *b);
/* Close the connections left on the worker queues once the workers are gone. */
void bk_drain_queues(ccb_broker *b);

/* The registration's full contact (CCBID): "<public address>#<id>". */
bool bk_contact(const ccb_broker *b, uint64_t id, char *out, size_t size);
/* broker_request.c, also for broker_tunnel.c */
bk_req *bk_req_new(ccb_broker *b, bk_conn *c, const char *connect_id, bool streaming);
void bk_req_free(ccb_broker *b, bk_req *q);
void bk_streaming_started(ccb_broker *b, bk_conn *c, bk_req *q);
bool bk_route_ok(const char *route);
/* broker_proto.c, for broker_request.c and broker_tunnel.c */
/* Send target `t` the forwarded CCB_REQUEST of a streaming request or a
 * tunnel relay hop: dial this broker with connect id `connect_id`. */
bool bk_forward_proxy_request(ccb_broker *b, bk_reg *t, const char *connect_id, const char *rid,
			      const char *name, const char *orig, const char *route);
/* Send a registration's reply (its contact stamped with the tunnel paths
 * when there are some); false when it failed (the registration is dropped). */
bool bk_send_reg_reply(ccb_broker *b, bk_reg *r);

/* broker_tunnel.c: the inside CCB (ccb-protocol.md §9.2-9.4). */
ccb_err bk_tunnel_start(ccb_broker *b, ccb_error *err);
void bk_tunnel_free(ccb_broker *b);
bool bk_tunnel_event(ccb_broker *b, bk_conn *c);
/* The space-separated paths local contacts are stamped with, or NULL. */
const char *bk_tunnel_paths(ccb_broker *b);
/* Whether the reply to `r` must wait for the tunnel (then it is held). */
bool bk_tunnel_hold(ccb_broker *b, bk_reg *r);
void bk_tunnel_timers(ccb_broker *b, int64_t now);
/* Split a route "head tail..." (head copied into head[hn], *tail points
 * into route); false for an empty route or a head that does not fit. */
bool bk_route_split(const char *route, char *head, size_t hn, const char **tail);
/* Status fields of the tunnel (jansson object, borrowed). */
void bk_tunnel_status(ccb_broker *b, void *json_obj);
/* broker_tunnel_old.c: a non-streaming request for a nested CCBID
 * ("5#42", §9.4); takes `c`. */
void bk_tunnel_old_client(ccb_broker *b, bk_conn *c, const char *ccbid, const char *my_address,
			  const char *connect_id);

/* broker_outbound.c: CCB_PROXY_CONNECT (ccb-protocol.md §9.1). */
ccb_err bk_outbound_init(ccb_broker *b, const ccb_broker_config *cfg, ccb_error *err);
bool bk_outbound_enabled(const ccb_broker *b);
void bk_outbound_handle(ccb_broker *b, bk_conn *c);
bool bk_outbound_has_id(ccb_broker *b, const char *connect_id);
void bk_outbound_drain(ccb_broker *b);
void bk_outbound_stop(ccb_broker *b);
void bk_outbound_free(ccb_broker *b);
struct json_t;
void bk_outbound_status(ccb_broker *b, struct json_t *st, struct json_t *lim);

/* broker_status.c */
char *bk_status_json_locked(ccb_broker *b, bool pretty);

#endif
