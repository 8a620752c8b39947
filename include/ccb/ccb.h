/*
 * libccb — HTCondor's Condor Connection Broker protocol in C.
 *
 * Umbrella header of the core API: version, errors and memory, logging,
 * clock, the JSON config, security settings and handshake, the CEDAR stream,
 * and the three roles — dial (requester), listener (target) and broker.
 *
 * The lower-level headers are installed and covered by the same stability
 * promise but are included explicitly by the programs that need them:
 * ccb/addr.h (sinfuls, contacts), ccb/wire.h (CCB messages),
 * ccb/classad.h, ccb/attributes.h, ccb/commands.h, ccb/dissect.h,
 * ccb/sharedport.h and ccb/token.h. See docs/api.md.
 *
 * Memory, in every header: a returned `const char *` is borrowed (valid
 * until its owner is freed or changed); a returned `char *` or `char **out`
 * is the caller's and is released with ccb_free() (string vectors with
 * ccb_strv_free()).
 */
#ifndef CCB_CCB_H
#define CCB_CCB_H

#include "ccb/export.h"
#include "ccb/version.h"
#include "ccb/error.h"
#include "ccb/log.h"
#include "ccb/clock.h"
#include "ccb/config.h"
#include "ccb/security.h"
#include "ccb/stream.h"
#include "ccb/dial.h"
#include "ccb/listener.h"
#include "ccb/broker.h"

#endif
