/*
 * CCB listener: the handler threads. An established connection (a reverse
 * connect whose hello is written, or a direct connection to the command
 * socket) runs the embedder's handler on a thread of its own, at most
 * max_reverse_connects at once and half of them per requester IP; the
 * reverse-connect loop (listener_rc.c) starts them, stop() joins them.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ccb/attributes.h"
#include "ccb/wire.h"
#include "listener_internal.h"
#include "util/util.h"

/* Handlers one requester or client IP may run at once: half of them, so
 * that one source cannot take every slot. */
int ccb__lst_per_ip_handler_cap(const ccb_listener *l)
{
	return l->max_jobs / 2 > 0 ? l->max_jobs / 2 : 1;
}

/* Handlers running for `key` (l->mu held). */
int ccb__lst_handlers_for(const ccb_listener *l, const char *key)
{
	int n = 0;
	for (const job *j = l->jobs; j; j = j->next)
		if (!j->done && !strcmp(j->key, key))
			n++;
	return n;
}

/* A handler slot was freed (l->mu held): wake the loop so a connected
 * reverse connect waiting for one gets it. */
static void job_finished(ccb_listener *l, job *j)
{
	j->done = true;
	l->active_jobs--;
	ccb__wakeup_signal(&l->rc_wake);
	pthread_cond_broadcast(&l->cv);
}

/* The listener whose handler this thread runs, if any. */
static _Thread_local const ccb_listener *handler_of;

bool ccb__lst_in_handler(const ccb_listener *l)
{
	return handler_of == l;
}

/* An established reverse connection: the hello is written and reported;
 * run the embedder's handler (it owns the stream). */
void *ccb__lst_job_main(void *arg)
{
	job *j = arg;
	ccb_listener *l = j->l;
	reg *r = j->r;
	ccb_listener_conn_info info = {0};
	char *contact;

	pthread_mutex_lock(&l->mu);
	contact = ccb_strdup(r->ccbid ? r->ccbid : "");
	pthread_mutex_unlock(&l->mu);
	info.broker = r->address;
	info.contact = contact ? contact : "";
	info.request_id = ccb_ad_string_or(j->hello, CCB_ATTR_REQUEST_ID, "");
	info.requester = j->requester ? j->requester : "";
	info.my_address = ccb_ad_string_or(j->hello, CCB_ATTR_MY_ADDRESS, "");
	info.streaming = ccb_ad_string_or(j->hello, CCB_ATTR_CCB_PRIOR_HOP, NULL) != NULL;
	info.route = ccb_ad_string_or(j->hello, CCB_ATTR_CCB_ROUTE, "");
	info.original_requester = ccb_ad_string_or(j->hello, CCB_ATTR_CCB_ORIGINAL_REQUESTER, "");
	info.prior_hop = ccb_ad_string_or(j->hello, CCB_ATTR_CCB_PRIOR_HOP, "");
	handler_of = l;
	l->handler(j->conn, &info, l->user);
	handler_of = NULL;
	free(contact);
	pthread_mutex_lock(&l->mu);
	job_finished(l, j);
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

static void job_free(job *j)
{
	ccb_classad_free(j->hello);
	free(j->requester);
	free(j);
}

/* Join finished request threads (all of them when `all`, after stop). */
void ccb__lst_reap_jobs(ccb_listener *l, bool all)
{
	job *done = NULL, **pp;

	pthread_mutex_lock(&l->mu);
	for (pp = &l->jobs; *pp;) {
		job *j = *pp;
		if (all || j->done) {
			*pp = j->next;
			j->next = done;
			done = j;
		} else {
			pp = &j->next;
		}
	}
	pthread_mutex_unlock(&l->mu);
	while (done) {
		job *j = done;
		done = j->next;
		pthread_join(j->thread, NULL);
		job_free(j);
	}
}

/* A client on our private network connected straight to the command socket
 * (PrivNet rule, sinful.md §4.1): hand the stream over as a reversed one. */
void *ccb__lst_direct_main(void *arg)
{
	job *j = arg;
	ccb_listener *l = j->l;
	ccb_listener_conn_info info = {0};

	info.broker = "";
	info.contact = "";
	info.request_id = "";
	info.requester = "";
	info.my_address = l->base_text;
	info.direct = true;
	info.peer = j->peer;
	info.route = info.original_requester = info.prior_hop = "";
	CCB_LOG(CCB_LOG_INFO, "ccb listener: direct connection from %s", j->peer);
	handler_of = l;
	l->handler(j->conn, &info, l->user);
	handler_of = NULL;
	pthread_mutex_lock(&l->mu);
	job_finished(l, j);
	pthread_mutex_unlock(&l->mu);
	return NULL;
}
