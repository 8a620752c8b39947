/*
 * Deep copies of the public security settings, for the objects that keep
 * them past the call that hands them over (listener, broker): every string
 * is duplicated, so the caller may free its config right after the call.
 * Not installed. Included by: listener.c, broker.c, broker_outbound.c.
 */
#ifndef CCB_SEC_COPY_H
#define CCB_SEC_COPY_H

#include <stdbool.h>

#include "ccb/security.h"

/* *dst = *src with every string duplicated (pointers to shared objects —
 * the session store, callbacks — are copied as they are). False when out of
 * memory; *dst is then cleared. */
bool ccb__sec_client_copy(ccb_sec_client_config *dst, const ccb_sec_client_config *src);
bool ccb__sec_server_copy(ccb_sec_server_config *dst, const ccb_sec_server_config *src);

/* Free the strings of a copy (wiping them: tokens are secrets) and zero it. */
void ccb__sec_client_clear(ccb_sec_client_config *c);
void ccb__sec_server_clear(ccb_sec_server_config *c);

#endif
