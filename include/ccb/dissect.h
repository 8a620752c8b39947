/*
 * libccb — a dissector for captured CEDAR traffic.
 *
 * Feed it the bytes of a TCP connection, direction by direction in the order
 * they were captured, and it frames them into CEDAR messages and decodes each
 * message body heuristically (CEDAR carries no type tags): 8-byte integers,
 * NUL-terminated strings, ClassAds (count, `Name = value` lines, trailing type
 * strings, "ZKM" secrets in clear or enciphered), and raw bytes where nothing
 * else fits (encrypted or binary payloads). It assumes plaintext framing:
 * AES-GCM packets are shown as raw bytes.
 *
 * Thread safety: a dissector is used from one thread at a time.
 *
 * Memory (as in every libccb header, see ccb/error.h): a returned `const char *`
 * is borrowed, valid until its owner is freed or changed; a returned `char *`
 * or `char **out` is the caller's, released with ccb_free().
 */
#ifndef CCB_DISSECT_H
#define CCB_DISSECT_H

#include "ccb/export.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccb/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ccb_dissect_dir { CCB_DIR_C2S = 0, CCB_DIR_S2C = 1 } ccb_dissect_dir;

typedef enum ccb_dissect_kind {
	CCB_DISSECT_INT,
	CCB_DISSECT_STRING,
	CCB_DISSECT_CLASSAD,
	CCB_DISSECT_RAW,
} ccb_dissect_kind;

typedef enum ccb_dissect_attr_kind {
	CCB_DISSECT_ATTR,             /**< a plain `Name = value` line */
	CCB_DISSECT_SECRET_CLEAR,     /**< "ZKM" marker, then the line in clear */
	CCB_DISSECT_SECRET_ENCRYPTED, /**< "ZKM" marker, then enciphered bytes (hex) */
} ccb_dissect_attr_kind;

typedef struct ccb_dissect_attr {
	ccb_dissect_attr_kind kind;
	char *text;    /**< the line, or lower-case hex of the enciphered bytes */
	size_t nbytes; /**< bytes on the wire (secret: length prefix + string) */
} ccb_dissect_attr;

typedef struct ccb_dissect_item {
	ccb_dissect_kind kind;
	int64_t ival;           /**< INT value; CLASSAD attribute count */
	char *text;             /**< STRING value; RAW bytes as full hex */
	size_t nbytes;          /**< RAW byte count */
	ccb_dissect_attr *attrs; /**< CLASSAD attributes */
	size_t nattrs;
	char *my_type, *target_type; /**< CLASSAD trailing type strings */
	size_t offset, length;  /**< where the item lies in the message body */
} ccb_dissect_item;

typedef struct ccb_dissect_frame {
	int end;      /**< end-of-message flag as sent */
	uint32_t len; /**< body length */
} ccb_dissect_frame;

typedef struct ccb_dissect_msg {
	ccb_dissect_dir dir;
	ccb_dissect_frame *frames;
	size_t nframes;
	ccb_dissect_item *items;
	size_t nitems;
	size_t body_len;
	uint8_t *body;          /**< the message body (packet bodies joined); NULL
				 *   from ccb_dissect_body(), which does not copy */
} ccb_dissect_msg;

typedef struct ccb_dissector ccb_dissector;

/** A new dissector in *out, freed with ccb_dissector_free(). Errors:
 * CCB_ERR_INVALID_ARG (NULL out), CCB_ERR_NOMEM (*out is then NULL). */
CCB_API ccb_err ccb_dissector_new(ccb_dissector **out, ccb_error *err);
/** Free it and every message it holds. NULL is allowed. */
CCB_API void ccb_dissector_free(ccb_dissector *d);

/**
 * Append captured bytes of one direction. Each message completed by them is
 * decoded and appended to the list in completion order. Errors:
 * CCB_ERR_PROTOCOL when the bytes are not CEDAR framing (bad end flag or
 * length); that direction is then ignored. CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_dissector_feed(ccb_dissector *d, ccb_dissect_dir dir, const uint8_t *p, size_t n,
			   ccb_error *err);

/** Bytes of `dir` fed but not yet part of a complete message. */
CCB_API size_t ccb_dissector_pending(const ccb_dissector *d, ccb_dissect_dir dir);

/** Number of complete messages so far. */
CCB_API size_t ccb_dissector_count(const ccb_dissector *d);
/** The i-th message (borrowed, valid until the dissector is freed). */
CCB_API const ccb_dissect_msg *ccb_dissector_msg(const ccb_dissector *d, size_t i);

/**
 * Decode one message body (the concatenated packet bodies) on its own.
 * Fills *msg (items only; frames empty). Free with ccb_dissect_msg_clear().
 */
CCB_API ccb_err ccb_dissect_body(const uint8_t *body, size_t n, ccb_dissect_msg *msg, ccb_error *err);
CCB_API void ccb_dissect_msg_clear(ccb_dissect_msg *msg);

/**
 * Render message `m` numbered `number` as text, in the layout of the
 * testvectors' decoded.md: a header line `N. c2s [end=1 len=L]`, then one
 * indented line per item. *out is the caller's, released with ccb_free().
 * Errors: CCB_ERR_INVALID_ARG (NULL m or out), CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_dissect_msg_text(const ccb_dissect_msg *m, size_t number, char **out,
				     ccb_error *err);

#ifdef __cplusplus
}
#endif
#endif
