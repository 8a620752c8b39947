/*
 * Broker internals shared by src/ccb/broker*.c. Not installed.
 *
 * Ownership: the loop thread owns every bk_conn in the tables and lists
 * below; a conn handed to a worker (jobs queue) belongs to that worker until
 * it is pushed on the done queue. `lock` guards the tables against the
 * status dump; the queues have their own `qlock`.
 */
#ifndef CCB_BROKER_INTERNAL_H
#define CCB_BROKER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ccb/addr.h"
#include "ccb/broker.h"
#include "ccb/classad.h"
#include "ccb/relay.h"
#include "ccb/stream.h"

#define BK_MAX_LISTEN 8

/* ---- intrusive doubly linked list ---------------------------------------- */

typedef struct bk_list {
	struct bk_list *prev, *next;
} bk_list;

static inline void bk_list_init(bk_list *l) { l->prev = l->next = l; }
static inline bool bk_list_empty(const bk_list *l) { return l->next == l; }
static inline bool bk_list_linked(const bk_list *n) { return n->next && n->next != n; }
static inline void bk_list_add_tail(bk_list *head, bk_list *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}
static inline void bk_list_del(bk_list *n)
{
	if (!n->next)
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}
#define bk_container(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* ---- uint64 -> pointer map ------------------------------------------------- */

typedef struct bk_mnode {
	uint64_t key;
	void *val;
	struct bk_mnode *next;
} bk_mnode;

typedef struct bk_map {
	bk_mnode **b;
	size_t nb, n;
} bk_map;

void *bk_map_get(const bk_map *m, uint64_t key);
bool bk_map_put(bk_map *m, uint64_t key, void *val);
void *bk_map_del(bk_map *m, uint64_t key);
void bk_map_free(bk_map *m);
/* Iterate: i starts at 0, returns NULL at the end. Do not modify meanwhile. */
void *bk_map_next(const bk_map *m, size_t *bucket, bk_mnode **node);

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

typedef struct bk_conn {
	int fd;
	bk_state state;
	ccb_stream *s;          /* after the handshake */
	unsigned peer_version;  /* CCB_VERSION_NUM of the peer, 0 unknown */
	char peer_ip[64];
	char peer[96];          /* "<ip:port>" */
	char user[128];         /* authenticated identity */
	int64_t deadline_ms;    /* first bytes / handshake / partial message */
	bk_list tnode;          /* new_list or partial_list */
	bk_list qnode;          /* jobs or done queue */
	struct bk_reg *reg;
	struct bk_req *req;
	bool in_epoll;
	/* handshake outcome (worker -> loop) */
	ccb_err hs_rc;
	char hs_err[CCB_ERROR_DETAIL_SIZE];
	int cmd;
	ccb_classad *ad;
	char *send_text;        /* BK_SEND */
} bk_conn;

typedef struct bk_reg {
	uint64_t id;
	bk_conn *c;
	char *name;
	char *contact;
	int64_t registered_wall, heard_wall;
	int64_t heard_ms;
	bk_list lru;      /* b->lru, least recently heard first */
	bk_list pending;  /* standard requests waiting on this target */
	size_t npending;
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
} bk_req;

typedef struct bk_rec {
	uint64_t id;
	char ip[64];
	char cookie[24];
	int64_t alive_ms;
} bk_rec;

typedef struct bk_stats {
	uint64_t reconnects, requests, requests_succeeded, requests_failed, requests_not_found;
	uint64_t streaming_requests, handshakes_peak, connected_peak;
	uint64_t connections_accepted, connections_refused, handshakes_failed, bad_input;
	uint64_t requests_timed_out, streaming_handshakes_timed_out, targets_idle_dropped;
	uint64_t records_pruned, record_file_errors;
} bk_stats;

typedef struct bk_outbound bk_outbound;

struct ccb_broker {
	/* configuration (strings owned) */
	ccb_broker_config cfg;
	char *listen_text, *public_text, *record_path;
	ccb_sec_server_config sec;
	ccb_sec_sessions *own_sessions;
	long sweep_ms, idle_ms, req_timeout_ms, hs_timeout_ms, sess_timeout_ms;
	size_t max_message;
	unsigned max_conns;

	/* addresses */
	char *pub_sinful;   /* "<...>" */
	char *pub_bare;     /* contact prefix, no brackets */
	int lfd[BK_MAX_LISTEN];
	int lport[BK_MAX_LISTEN];
	bk_conn *lconn[BK_MAX_LISTEN];
	size_t nl;
	bool accept_paused;
	int64_t accept_resume_ms;
	int spare_fd;

	/* loop */
	int epfd, stop_efd, done_efd;
	bk_conn *stop_conn, *done_conn;
	atomic_bool stopping;
	atomic_int run_state; /* 0 idle, 1 running, 2 done */
	pthread_mutex_t lock;
	uint8_t *peek;
	size_t peek_cap;

	/* workers */
	pthread_t *workers;
	unsigned nworkers;
	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	bk_list jobs, done;
	bk_conn **wcur;
	bool wquit;

	ccb__relay_engine *relay;

	/* tables */
	bk_map regs, recs, reqs;
	bk_list lru, new_list, partial_list, std_fifo, sess_fifo, dead;
	size_t handshaking; /* streaming sessions waiting for their target */
	uint64_t next_id, next_req;
	size_t nconns;
	int64_t next_sweep_ms;
	int store_fd;
	bk_stats st;
	bk_outbound *ob; /* broker_outbound.c */
};

/* broker_store.c: reconnect records (ccb-protocol.md §11.1). */
ccb_err bk_store_open(ccb_broker *b, ccb_error *err);
void bk_store_append(ccb_broker *b, const bk_rec *r);
void bk_store_sweep(ccb_broker *b);
void bk_store_close(ccb_broker *b);
bk_rec *bk_rec_new(ccb_broker *b, uint64_t id, const char *ip);

/* broker_proto.c: the commands. */
void bk_handle_command(ccb_broker *b, bk_conn *c);
void bk_reg_readable(ccb_broker *b, bk_conn *c);
void bk_requester_readable(ccb_broker *b, bk_conn *c);
void bk_drop_reg(ccb_broker *b, bk_reg *r, const char *why);
void bk_timers(ccb_broker *b, int64_t now);
void bk_fail_request(ccb_broker *b, bk_req *q, const char *text, bool reply);

/* broker.c: connection plumbing used by the protocol code. */
void bk_conn_close(ccb_broker *b, bk_conn *c);
bool bk_epoll_add(ccb_broker *b, bk_conn *c, uint32_t events);

/* What the kernel holds for `c` (MSG_PEEK, nothing consumed): a complete
 * CEDAR message, part of one, nothing, or a dead/bad socket. */
enum peek_res { PK_NONE, PK_PARTIAL, PK_COMPLETE, PK_CLOSED, PK_BAD };
enum peek_res bk_peek_message(ccb_broker *b, bk_conn *c);
void bk_epoll_del(ccb_broker *b, bk_conn *c);
void bk_queue_job(ccb_broker *b, bk_conn *c);
/* Send one control ad with a short deadline; false on failure (logged). */
bool bk_send_ad(ccb_broker *b, bk_conn *c, const ccb_classad *ad);
/* Reply {Result, ErrorString} and close the connection. */
void bk_reply_close(ccb_broker *b, bk_conn *c, bool ok, const char *text);

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
