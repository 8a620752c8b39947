/* Internal stream hooks for the ClassAd layer and tests. Not installed. */
#ifndef CCB_CEDAR_STREAM_INTERNAL_H
#define CCB_CEDAR_STREAM_INTERNAL_H

#include "ccb/stream.h"
#include "cedar/codec.h"

/* The current inbound message, read from the socket if none is loaded.
 * Returns NULL on failure (details in ccb_stream_error()). */
ccb_cursor *ccb__stream_in(ccb_stream *s);
/* The outbound message being built. */
ccb_buf *ccb__stream_out(ccb_stream *s);
/* Record a failure on the stream and return its code. `err` carries the
 * detail from a codec call. */
ccb_err ccb__stream_fail(ccb_stream *s, const ccb_error *err);
/* Like ccb_stream_set_aes_key() with a fixed send base IV (known-answer tests). */
ccb_err ccb__stream_set_aes_key_iv(ccb_stream *s, const uint8_t key[32], const uint8_t iv[16]);

/* Release the message buffers' memory when no message is being read or
 * built (a long-lived idle stream, e.g. a broker's registration, then holds
 * only its struct). No-op otherwise. */
void ccb__stream_trim(ccb_stream *s);

#endif
