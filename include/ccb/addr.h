/*
 * libccb — daemon addresses: sinful strings, CCB contacts, broker lists and
 * connect ids.
 *
 * A "sinful" is HTCondor's textual daemon address:
 *
 *   <host[:port][?key=value&key&...]>
 *
 * with the host an IPv4 literal, a host name or a bracketed IPv6 literal, and
 * URL-encoded parameters (addrs, alias, noUDP, sock, CCBID, PrivNet, PrivAddr
 * and any unknown key, all kept). A CCB contact is a broker's bracket-less
 * sinful followed by "#<ccbid>", possibly with more "#<id>" hops for a tunnel;
 * the sinful's CCBID parameter carries a space-separated
 * list of them.
 *
 * Parameter order: parsing keeps the input's order, so a parsed string is
 * printed back with its parameters in the same order. A key added later is
 * inserted before the first existing key that sorts after it (byte-wise), so
 * a sinful built from scratch comes out in HTCondor's std::map order.
 * ccb_sinful_sort_params() forces that order.
 *
 * The CCB key: HTCondor spells it "CCBID" and looks it up case-sensitively;
 * the Go implementation uses "ccbid". Both spellings are read
 * (by the parser and by every function taking a key) and stored as "CCBID",
 * so output always carries "CCBID". No other key is case-folded.
 *
 * Input limits: no function here reads more than CCB_ADDR_MAX_TEXT bytes of
 * text; longer input fails with CCB_ERR_PARSE (and never crashes).
 *
 * Memory: a returned `char *` (or `char **out`) is the caller's and is
 * released with ccb_free(); string vectors with ccb_strv_free(); a returned
 * `const char *` borrows from the sinful (see below).
 *
 * Thread safety: no global state. All functions are reentrant. A ccb_sinful
 * may be read from several threads at once but must not be modified while
 * another thread uses it. Pointers returned by the accessors stay valid until
 * the sinful is next modified or freed.
 */
#ifndef CCB_ADDR_H
#define CCB_ADDR_H

#include "ccb/export.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccb/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Longest text (without the NUL) accepted by any parser in this header. */
#define CCB_ADDR_MAX_TEXT 8192

/** Parameter keys as HTCondor writes them. */
#define CCB_SINFUL_CCBID "CCBID"
#define CCB_SINFUL_SOCK "sock"
#define CCB_SINFUL_ALIAS "alias"
#define CCB_SINFUL_ADDRS "addrs"
#define CCB_SINFUL_NOUDP "noUDP"
#define CCB_SINFUL_PRIVNET "PrivNet"
#define CCB_SINFUL_PRIVADDR "PrivAddr"

/** Length of a connect id in hex characters, and its buffer size. */
#define CCB_CONNECT_ID_LEN 40
#define CCB_CONNECT_ID_SIZE (CCB_CONNECT_ID_LEN + 1)

/** Buffer size for an IP literal's text (IPv6 included) with its NUL. */
#define CCB_ADDR_IP_SIZE 64

/** A parsed daemon address. Opaque; see the accessors below. */
typedef struct ccb_sinful ccb_sinful;

/* ---- parsing and printing --------------------------------------------- */

/**
 * Parse a v0 sinful that must be enclosed in "<" ">".
 * On success *out is a new sinful the caller frees with ccb_sinful_free().
 * Port: 1-5 digits, 0..65535, or none (an empty port as in "<h:>" counts
 * as none; it is printed without the ':'). Hosts are limited to letters,
 * digits, '.', '-', '_' or a bracketed IPv6 literal (HTCondor takes any
 * text there; we refuse what could break a contact or list).
 * Errors: CCB_ERR_INVALID_ARG (NULL text or out), CCB_ERR_PARSE (missing
 * brackets, bad host, bad port, empty key, bad or %00 escape, an "addrs"
 * element not in CCB-safe form, trailing text, text longer than
 * CCB_ADDR_MAX_TEXT; the detail says which and where), CCB_ERR_NOMEM.
 * *out is NULL on failure.
 */
CCB_API ccb_err ccb_sinful_parse(const char *text, ccb_sinful **out, ccb_error *err);

/**
 * Parse an address as HTCondor's Sinful constructor does:
 * a "<...>" sinful as above, "[v6]:port" (wrapped in "<" ">"), a naked IPv6
 * literal with two or more ':' before any '?' (wrapped in "<[" "]>") or
 * "host[:port][?params]" (wrapped in "<" ">"). Use it for CCB_ADDRESS
 * entries and the broker part of contacts. A v1 "{...}" address gives
 * CCB_ERR_UNSUPPORTED. Otherwise as ccb_sinful_parse().
 */
CCB_API ccb_err ccb_sinful_parse_address(const char *text, ccb_sinful **out, ccb_error *err);

/**
 * New sinful with `host` (host name, IPv4 literal, or IPv6 literal with or
 * without brackets), `port` (0..65535, or -1 for none) and no parameters.
 * Caller frees *out with ccb_sinful_free().
 * Errors: CCB_ERR_INVALID_ARG (bad host or port), CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_sinful_new(const char *host, int port, ccb_sinful **out, ccb_error *err);

/** Deep copy; caller frees *out with ccb_sinful_free(). CCB_ERR_NOMEM. */
CCB_API ccb_err ccb_sinful_dup(const ccb_sinful *s, ccb_sinful **out, ccb_error *err);

/** Free a sinful. NULL is allowed. */
CCB_API void ccb_sinful_free(ccb_sinful *s);

/**
 * Print as "<host[:port][?params]>": IPv6 hosts in brackets,
 * parameters as key=value joined by '&', a key with an empty value as the
 * bare key, and keys and values URL-encoded as HTCondor does (letters,
 * digits and . _ - : # [ ] + raw, every other byte as %xx lower-case).
 * *out is the caller's, released with ccb_free(). Errors:
 * CCB_ERR_INVALID_ARG (NULL s or out), CCB_ERR_NOMEM (*out is then NULL).
 */
CCB_API ccb_err ccb_sinful_format(const ccb_sinful *s, char **out, ccb_error *err);

/**
 * As ccb_sinful_format() without the enclosing "<" ">" (HTCondor's
 * getCCBAddressString). *out is released with ccb_free(). Errors as
 * ccb_sinful_format().
 */
CCB_API ccb_err ccb_sinful_format_bare(const ccb_sinful *s, char **out, ccb_error *err);

/**
 * The text a broker puts before "#<ccbid>" in the contacts it hands out:
 * its own sinful without the CCBID and PrivAddr parameters, bare.
 * *out is released with ccb_free(). Errors as ccb_sinful_format().
 */
CCB_API ccb_err ccb_sinful_broker_address(const ccb_sinful *s, char **out, ccb_error *err);

/* ---- host, port, parameters ------------------------------------------- */

/** The host as stored: IPv6 without brackets. Never NULL. */
CCB_API const char *ccb_sinful_host(const ccb_sinful *s);

/**
 * Replace the host (same rules as ccb_sinful_new()). On error the sinful is
 * unchanged. Errors: CCB_ERR_INVALID_ARG, CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_sinful_set_host(ccb_sinful *s, const char *host, ccb_error *err);

/** The port, or -1 if the sinful has none. */
CCB_API int ccb_sinful_port(const ccb_sinful *s);

/** Set the port (0..65535) or remove it (-1). Errors: CCB_ERR_INVALID_ARG. */
CCB_API ccb_err ccb_sinful_set_port(ccb_sinful *s, int port, ccb_error *err);

/**
 * Decoded value of parameter `key` (exact, case-sensitive, except that
 * "ccbid" means "CCBID"); "" for a flag such as noUDP; NULL if absent.
 * The string belongs to the sinful.
 */
CCB_API const char *ccb_sinful_param(const ccb_sinful *s, const char *key);

/**
 * Set parameter `key` to the (unencoded) `value`; "" makes a flag, NULL
 * removes the key. An existing key keeps its position; a new one goes in
 * sorted position (see the file comment). "ccbid" is stored as "CCBID".
 * An "addrs" value must be a '+'-list of CCB-safe addresses. On error the
 * sinful is unchanged.
 * Errors: CCB_ERR_INVALID_ARG (NULL or empty key, bad addrs), CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_sinful_set_param(ccb_sinful *s, const char *key, const char *value,
	ccb_error *err);

/** Number of parameters. */
CCB_API size_t ccb_sinful_param_count(const ccb_sinful *s);

/**
 * The i-th parameter in output order (decoded; strings belong to the
 * sinful). Returns false if i is out of range. key or value may be NULL.
 */
CCB_API bool ccb_sinful_param_at(const ccb_sinful *s, size_t i, const char **key,
	const char **value);

/** Reorder the parameters byte-wise by key, as HTCondor prints them. */
CCB_API void ccb_sinful_sort_params(ccb_sinful *s);

/** Shortcuts for ccb_sinful_param() with the keys above. */
CCB_API const char *ccb_sinful_ccbid(const ccb_sinful *s);
CCB_API const char *ccb_sinful_shared_port_id(const ccb_sinful *s);
CCB_API const char *ccb_sinful_alias(const ccb_sinful *s);
CCB_API const char *ccb_sinful_private_network(const ccb_sinful *s);
CCB_API const char *ccb_sinful_private_addr(const ccb_sinful *s);
/** True if the noUDP flag is present. */
CCB_API bool ccb_sinful_no_udp(const ccb_sinful *s);

/**
 * The CCB contacts carried by the CCBID parameter, in
 * order, split on white space. *out is a NULL-terminated vector of *n
 * malloc'd strings, freed with ccb_strv_free(); without a CCBID
 * parameter *n is 0 and *out an empty vector. The contacts are not
 * validated here (ccb_contact_split() does that), so one bad entry does
 * not hide the others. n may be NULL.
 * Errors: CCB_ERR_INVALID_ARG, CCB_ERR_PARSE (value longer than
 * CCB_ADDR_MAX_TEXT), CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_sinful_ccb_contacts(const ccb_sinful *s, char ***out, size_t *n,
	ccb_error *err);

/**
 * Set the CCBID parameter to the `n` contacts joined by single spaces, or
 * remove it when n is 0. Each contact must be non-empty and free of white
 * space. Errors: CCB_ERR_INVALID_ARG, CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_sinful_set_ccb_contacts(ccb_sinful *s, const char *const *contacts,
	size_t n, ccb_error *err);

/* ---- the "addrs" parameter and CCB-safe addresses ----------------------- */

/** One IP address and port. `ip` is the literal without brackets. */
typedef struct ccb_hostport {
	char ip[CCB_ADDR_IP_SIZE];
	int family;     /**< AF_INET or AF_INET6 */
	uint16_t port;
} ccb_hostport;

/**
 * Parse a CCB-safe address "ip-port" (every ':' of the IP written as '-',
 * IPv6 optionally bracketed), e.g. "10.0.0.7-9618" or
 * "[2001-db8--5]-9618". Errors: CCB_ERR_INVALID_ARG, CCB_ERR_PARSE.
 */
CCB_API ccb_err ccb_addr_ccb_safe_parse(const char *text, ccb_hostport *out, ccb_error *err);

/**
 * Write `ip` (IPv4 or IPv6 literal, brackets optional) and `port` in
 * CCB-safe form as HTCondor does: IPv6 bracketed ("[--1]-9618").
 * *out is released with ccb_free().
 * Errors: CCB_ERR_INVALID_ARG (not an IP literal, bad port), CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_addr_ccb_safe_format(const char *ip, int port, char **out, ccb_error *err);

/**
 * The addresses in the "addrs" parameter, in order (empty '+' elements are
 * skipped, as HTCondor's StringList does). *out is a malloc'd array of *n
 * entries released with ccb_free(); NULL with *n 0 if there is no
 * "addrs". Errors: CCB_ERR_INVALID_ARG, CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_sinful_addrs(const ccb_sinful *s, ccb_hostport **out, size_t *n,
	ccb_error *err);

/* ---- CCB contacts ------------------------------------------------------- */

/**
 * A split contact "<broker>#<id0>[#<id1>...]".
 * `broker` is the flat entry broker's address text without "<" ">" (parse it
 * with ccb_sinful_parse_address()); `ids` are the decimal CCBIDs from the
 * entry broker inward, NULL-terminated, n_ids >= 1. A plain contact has one
 * id; with more, ids[0] is the CCBID to request at the entry broker and
 * ids[1..] form the CCBRoute of a streaming request.
 */
typedef struct ccb_contact {
	char *broker;
	char **ids;
	size_t n_ids;
} ccb_contact;

/**
 * Build "<broker>#<ccbid>" as a broker stamps it.
 * `broker` is a bracket-less address; enclosing "<" ">" are
 * removed. It may itself be a contact, giving a nested one ("A#5" and 42
 * give "A#5#42"). The result is checked with ccb_contact_split().
 * *out is released with ccb_free().
 * Errors: CCB_ERR_INVALID_ARG (bad broker), CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_contact_make(const char *broker, uint64_t ccbid, char **out, ccb_error *err);

/**
 * Parse a CCBID (a contact's "#<id>", a request's CCBID, a reconnect
 * record's id) strictly: 1-20 decimal digits, no sign, no white space, no
 * leading zero except "0" itself, at most 2^64-1. Stricter than HTCondor,
 * which reads "0001" as 1 (brokers never write ids that way). On success
 * *out (may be NULL) is the value. Thread-safe, allocates nothing.
 * Errors: CCB_ERR_INVALID_ARG (NULL text), CCB_ERR_PARSE (the detail quotes
 * the text, cut at 40 characters, and says what is wrong).
 */
CCB_API ccb_err ccb_ccbid_parse(const char *text, uint64_t *out, ccb_error *err);

/**
 * Split a contact at its first '#' into broker and hop ids (broker
 * addresses never contain '#'). Brackets around the broker
 * ("<A>#5", as Go accepts) are dropped. The broker must parse with
 * ccb_sinful_parse_address(); each id must be a CCBID as
 * ccb_ccbid_parse() reads it. On success the caller releases `out` with ccb_contact_clear();
 * on failure `out` is left empty (safe to clear).
 * Errors: CCB_ERR_INVALID_ARG, CCB_ERR_PARSE, CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_contact_split(const char *contact, ccb_contact *out, ccb_error *err);

/** Free what `c` holds and zero it. NULL is allowed. */
CCB_API void ccb_contact_clear(ccb_contact *c);

/**
 * The CCBRoute for a nested contact: ids[1..] joined by single spaces
 * ("" for a plain contact). *out is released with ccb_free(). Errors:
 * CCB_ERR_INVALID_ARG (NULL c or out), CCB_ERR_NOMEM (*out is then NULL).
 */
CCB_API ccb_err ccb_contact_route(const ccb_contact *c, char **out, ccb_error *err);

/**
 * Split a space-separated contact list (a register reply's CCBID, or the
 * decoded CCBID sinful parameter) on white space, dropping empty entries.
 * Entries are not validated. *out is a NULL-terminated vector freed with
 * ccb_strv_free(); n may be NULL.
 * Errors: CCB_ERR_INVALID_ARG, CCB_ERR_PARSE (too long), CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_contact_list_split(const char *list, char ***out, size_t *n,
	ccb_error *err);

/**
 * Join `n` contacts with single spaces. Each must be non-empty and free of
 * white space. *out is released with ccb_free().
 * Errors: CCB_ERR_INVALID_ARG, CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_contact_list_join(const char *const *contacts, size_t n, char **out,
	ccb_error *err);

/* ---- broker lists and connect ids --------------------------------------- */

/**
 * Split a CCB_ADDRESS value into broker addresses: separators are commas and
 * white space (", \t\r\n"), empty tokens dropped,
 * order kept. Tokens are neither validated nor de-duplicated (HTCondor's
 * listener drops duplicates and itself later). *out is a NULL-terminated
 * vector freed with ccb_strv_free(); n may be NULL.
 * Errors: CCB_ERR_INVALID_ARG, CCB_ERR_PARSE (too long), CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_broker_list_split(const char *list, char ***out, size_t *n,
	ccb_error *err);

/**
 * Fill `out` with a new connect id: 20 bytes from OpenSSL's CSPRNG as 40
 * lower-case hex characters and a NUL.
 * Errors: CCB_ERR_INVALID_ARG, CCB_ERR_CRYPTO (no randomness); `out` is ""
 * on failure.
 */
CCB_API ccb_err ccb_connect_id_new(char out[CCB_CONNECT_ID_SIZE], ccb_error *err);

/** True if `id` is exactly 40 lower-case hex characters. */
CCB_API bool ccb_connect_id_valid(const char *id);

#ifdef __cplusplus
}
#endif
#endif
