/*
 * libccb — HTCondor's Condor Connection Broker protocol in C.
 * Umbrella header: includes every public header of the library.
 */
#ifndef CCB_CCB_H
#define CCB_CCB_H

#include "ccb/export.h"
#include "ccb/version.h"
#include "ccb/clock.h"

#include "ccb/error.h"
#include "ccb/log.h"
#include "ccb/stream.h"
#include "ccb/classad.h"
#include "ccb/commands.h"
#include "ccb/attributes.h"
#include "ccb/wire.h"
#include "ccb/dissect.h"
#include "ccb/addr.h"
#include "ccb/sharedport.h"
#include "ccb/security.h"
#include "ccb/token.h"
#include "ccb/config.h"
#include "ccb/listener.h"
#include "ccb/dial.h"
#include "ccb/broker.h"

#endif
