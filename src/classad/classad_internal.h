/* Internal ClassAd helpers shared by the model, the wire code and the decoder. */
#ifndef CCB_CLASSAD_INTERNAL_H
#define CCB_CLASSAD_INTERNAL_H

#include "ccb/classad.h"
#include "cedar/codec.h"

/* The "ZKM" secret marker string (SECRET_MARKER, H:classad_oldnew.cpp:39). */
#define CCB_SECRET_MARKER "ZKM"

/* Reader limits: general ads (H:classad_oldnew.cpp:53-56) and POD ads used
 * by the security handshake (H:classad_oldnew.cpp:116-138). */
#define CCB_CLASSAD_MAX_ATTRS 1000000
#define CCB_CLASSAD_POD_MAX_ATTRS 100

enum {
	/* Handshake (getPODClassAd) rules: at most 100 attributes, literals
	 * only, no ZKM marker. */
	CCB_CLASSAD_DECODE_POD = 1,
};

/* Convenience forms of the public constructors for internal callers: NULL
 * when out of memory (the public ccb__classad_new() / _copy() / _to_text()
 * return a ccb_err and fill an out-parameter). Not exported. */
ccb_classad *ccb__classad_new(void);
ccb_classad *ccb__classad_copy(const ccb_classad *ad);
char *ccb__classad_to_text(const ccb_classad *ad);

/* Decode an ad at the cursor (count, lines, trailing type strings). */
ccb_err ccb__classad_decode(ccb_cursor *c, ccb_classad **out, int flags, ccb_error *err);

/* Encode an ad into `b` (string form per `crypto`). */
bool ccb__classad_encode(ccb_buf *b, bool crypto, const ccb_classad *ad,
			 const ccb_classad_put_config *opts);

/* Encode an ad into the stream's outbound message, enciphering secrets
 * when the stream holds a legacy key with crypto mode off. */
bool ccb__classad_encode_stream(ccb_stream *s, const ccb_classad *ad,
				const ccb_classad_put_config *opts);

/* Split "Name = rhs" (SplitLongFormAttrValue, H:compat_classad.cpp:3143-3161):
 * name is before the first '=' minus trailing spaces, rhs after it minus
 * leading spaces. False if there is no '=' or the name is empty. */
bool ccb__classad_split_line(const char *line, size_t len, const char **name, size_t *name_len,
			     const char **rhs, size_t *rhs_len);

/* Append "Name = value" of the i-th attribute in wire order. */
bool ccb__classad_print_line(ccb_buf *b, const ccb_classad *ad, size_t i);

/* Is the rhs text a single literal token (integer, real, boolean, string,
 * undefined, error)? */
bool ccb__classad_rhs_is_literal(const char *rhs, size_t len);

#endif
