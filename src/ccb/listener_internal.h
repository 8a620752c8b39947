/*
 * Internal to the listener (listener.c: lifetime and public API;
 * listener_reg.c: registration workers; listener_status.c: status and
 * configuration; listener_rc.c: reverse connects and direct connections
 * in one event loop; listener_jobs.c: the handler threads). Not installed. Locking:
 * everything marked "guarded" is under ccb_listener.mu.
 *
 * Include as "listener_internal.h": only src/ccb/listener*.c.
 */
#ifndef CCB_LISTENER_INTERNAL_H
#define CCB_LISTENER_INTERNAL_H

#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "ccb/addr.h"
#include "ccb/classad.h"
#include "ccb/error.h"
#include "ccb/security.h"
#include "ccb/listener.h"
#include "ccb/stream.h"
#include "util/wakeup.h"

/* Defaults, for ccb_listener_new() and ccb_listener_config_load(). */
#define DEFAULT_NAME "LISTENER" /* followed by our address, as C++ "<SUBSYS> <sinful>" */
#define DEFAULT_HEARTBEAT_S 300 /* param table, H:src/condor_utils/param_info.in:4390-4396 */
#define MIN_HEARTBEAT_S 30      /* lst:57-77 */
#define DEFAULT_RECONNECT_S 60  /* CCB_RECONNECT_TIME code default, §4.5 */
#define DEFAULT_TIMEOUT_S 300   /* CCB_TIMEOUT, §13 */
#define DEFAULT_DIAL_S 30       /* Go DialTimeout, §13 */
#define DEFAULT_MAX_JOBS 64     /* handlers running at once */
#define DEFAULT_CONNECT_MS 5000 /* reverse connect: TCP connect deadline */
#define DEFAULT_HELLO_MS 3000   /* then: a free handler and the hello written */
#define DEFAULT_MAX_PENDING 4096
#define DEFAULT_MAX_PENDING_PER_REQUESTER 16
#define COLLECTOR_PORT 9618     /* a CCB_ADDRESS entry without port, §3.3 */

typedef enum reg_state {
	ST_IDLE,
	ST_CONNECTING,
	ST_AUTHENTICATING,
	ST_REGISTERING,
	ST_REGISTERED,
	ST_RECONNECT_WAIT,
	ST_STOPPED,
} reg_state;

typedef struct result_item {
	ccb_classad *ad;
	struct result_item *next;
} result_item;

typedef struct reg {
	ccb_listener *l;
	size_t index;
	char *address;   /* as configured */
	char *sinful;    /* the parsed address printed back, for ConnectSinful */
	char *host;
	int port;
	char *spid;      /* shared-port id (sock=), or NULL */
	char *alias;     /* for the SSL host check */
	pthread_t thread;
	bool thread_started;
	ccb__wakeup wake; /* the reverse-connect loop wakes the worker */

	/* Guarded by l->mu. */
	reg_state state;
	ccb_stream *s;   /* the current stream, only for cancelling */
	char *ccbid;     /* last reply's CCBID, kept for re-registration */
	char *cookie;    /* last reply's ClaimId (secret, never logged) */
	bool registered;
	bool streaming;
	uint64_t session; /* bumped at every successful registration */
	result_item *q_head, *q_tail;
	int64_t registered_at, last_heartbeat;
	uint64_t heartbeats_sent, registrations, reconnects, served, failed;
	char last_error[CCB_ERROR_DETAIL_SIZE];   /* "" once registered again */
	int64_t last_error_at;
	char previous_error[CCB_ERROR_DETAIL_SIZE]; /* the last error a registration cleared */
	int64_t previous_error_at;
} reg;

/* A connection being handled: the embedder's handler on its own thread. */
typedef struct job {
	ccb_listener *l;
	reg *r;          /* NULL: a direct connection to the command socket */
	ccb_classad *hello;
	char *requester;
	pthread_t thread;
	ccb_stream *conn; /* the established stream (the handler's) */
	char peer[96];    /* direct connection: who connected */
	char key[64];     /* the requester's or direct client's IP (fair shares) */
	bool done;     /* guarded */
	struct job *next;
} job;

/* A pending reverse connect, run by the loop thread (rc_main). */
typedef enum pend_phase {
	PD_NEW,        /* queued by a worker, no socket yet */
	PD_CONNECTING, /* non-blocking connect in flight (epoll EPOLLOUT) */
	PD_READY,      /* connected (direct: first bytes in), waiting for a free handler slot */
	PD_DIRECT_NEW, /* accepted on the command socket, not yet watched */
	PD_DIRECT_WAIT, /* waiting for the client's first bytes (epoll EPOLLIN) */
} pend_phase;

typedef struct pend {
	reg *r;          /* NULL: a direct connection to the command socket */
	char peer[96];   /* direct connection: "<ip:port>" */
	uint64_t session;
	ccb_classad *hello;
	char *requester;
	char *host, *spid;
	int port;
	char key[64];    /* the requester, for the per-requester cap */
	struct addrinfo *res, *ai; /* addresses of MyAddress, the one being tried */
	int fd;
	pend_phase phase;
	int64_t started, connect_deadline, hello_deadline;
	char last_err[160];
	struct pend *prev, *next; /* guarded (l->pend list) */
} pend;

struct ccb_listener {
	ccb_sec_client_config sec;
	ccb_listener_handler_fn handler;
	void *user;
	char *name;
	int64_t heartbeat_ms; /* 0: off */
	int64_t reconnect_ms;
	int timeout_ms;
	int dial_ms;
	int connect_ms, hello_ms;
	int max_jobs;
	int max_pending, max_pending_per_requester;
	ccb__wakeup stop_signal; /* raised once by stop(), never drained */
	int epfd;                /* the reverse-connect loop's epoll */
	ccb__wakeup rc_wake;     /* wakes the reverse-connect loop */
	pthread_t rc_thread;
	bool rc_thread_started;

	/* The command socket (-1: the embedder serves its own address) and the
	 * advertised address without CCB parameters; immutable after new(). */
	int cmd_fd;
	ccb_sinful *base;
	char *base_text;
	char *privnet;
	pthread_t cmd_thread;
	bool cmd_thread_started;

	pthread_mutex_t mu;
	pthread_mutex_t stop_mu; /* serialises starts' and stops' thread handles */
	pthread_cond_t cv;
	bool started, stopping;
	reg *regs;
	size_t nregs;
	job *jobs;
	int active_jobs;
	pend *pend_head, *pend_tail; /* FIFO, guarded; freed by the loop only */
	int npending;
	uint64_t pending_peak, refused_busy;
	uint64_t gen;
};

/* listener.c */
/* Poll `fd` (may be -1) and `wakefd` (may be -1) plus the stop fd. Returns a
 * mask: 1 fd ready, 2 wakefd readable, 4 stop, 0 timeout. */
int ccb__lst_wait_any(ccb_listener *l, int fd, short events, int wakefd, int timeout_ms);
/* Host, port and shared-port id of an address text (CCB_ADDRESS entry or a
 * MyAddress sinful); alias and printed may be NULL. */
ccb_err ccb__lst_split_address(const char *text, int dflt_port, char **host, int *port,
			       char **spid, char **alias, char **printed, ccb_error *err);

/* listener_reg.c: a broker's registration worker and its result queue
 * (l->mu held to free the queue). */
void *ccb__lst_reg_main(void *arg);
void ccb__lst_free_queue(reg *r);

/* listener_jobs.c: the handler threads (arg: a job). */
void *ccb__lst_job_main(void *arg);    /* a reverse connection */
void *ccb__lst_direct_main(void *arg); /* a direct connection */
/* Handlers one requester IP may run at once; handlers running for `key`
 * (l->mu held). */
int ccb__lst_per_ip_handler_cap(const ccb_listener *l);
int ccb__lst_handlers_for(const ccb_listener *l, const char *key);
/* Join finished handler threads (all of them when `all`, after stop). */
void ccb__lst_reap_jobs(ccb_listener *l, bool all);
/* True on a thread running one of l's handlers. */
bool ccb__lst_in_handler(const ccb_listener *l);

/* listener_rc.c */
/* A forwarded request (§6.3), on the broker's worker thread: queued for the
 * loop or refused at once. False only when writing an immediate failure
 * report failed (the registration is then dropped). */
bool ccb__lst_handle_request(reg *r, ccb_stream *s, unsigned peer_version,
			     const ccb_classad *req);
/* The reverse-connect loop and the command socket's accept loop (threads). */
void *ccb__lst_rc_main(void *arg);
void *ccb__lst_cmd_main(void *arg);
/* Free every pending connection (stop, after every thread is joined; l->mu held). */
void ccb__lst_pend_free_all(ccb_listener *l);

#endif
