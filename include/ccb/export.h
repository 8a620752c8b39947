/*
 * libccb — symbol export macro.
 *
 * The shared library is built with hidden symbol visibility: only functions
 * declared with CCB_API in the headers under include/ccb/ are exported from
 * libccb.so, so everything else (internal helpers of every layer) can change
 * between releases without breaking the ABI. Users never need to use this
 * macro themselves; every public header includes this one.
 */
#ifndef CCB_EXPORT_H
#define CCB_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define CCB_API __attribute__((visibility("default")))
#else
#define CCB_API
#endif

#endif
