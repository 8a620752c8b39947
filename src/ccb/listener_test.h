/*
 * Test-only knobs of the listener, kept out of the public struct. Not
 * installed, not exported: the tests link the static library. Included by:
 * listener.c, the listener tests, test/fault/fault.h.
 */
#ifndef CCB_LISTENER_TEST_H
#define CCB_LISTENER_TEST_H

#include "ccb/listener.h"

/* A heartbeat interval in milliseconds without HTCondor's 30 s floor
 * (0: off). Call between ccb_listener_new() and ccb_listener_start(). */
void ccb__listener_set_test_heartbeat(ccb_listener *l, int heartbeat_ms);

#endif
