/* trace.h: W3C trace context (traceparent) ids, made and read in one place.
 *
 * A version-00 traceparent is "00-<32 hex trace id>-<16 hex span id>-01",
 * 55 characters. The runtime propagates the one a message carries, or starts
 * a trace when it carries none; the sweeper starts a new span on a row's
 * stored trace id. Ids come from libuuid's randomness.
 */
#ifndef ZL_TRACE_H
#define ZL_TRACE_H

#include <stddef.h>

/* A 16-byte trace id as bare lower-case hex, NUL included. */
#define ZL_TRACE_ID_HEX_SIZE (2 * 16 + 1)
/* A version-00 traceparent's length, without the NUL. */
#define ZL_TRACEPARENT_LEN 55
/* A header buffer: room for a version-00 traceparent and for a longer one
 * to be read whole and refused, rather than cut to something that looks
 * valid. */
#define ZL_TRACEPARENT_BUF_SIZE 64

/* Writes a new traceparent into out (out_size >= ZL_TRACEPARENT_LEN + 1)
 * with a new span id, keeping trace_id when it is 32 hex digits, else
 * starting a new trace. When trace_id_out is not NULL, the trace id used is
 * copied there (ZL_TRACE_ID_HEX_SIZE bytes). Never fails. */
void zl_trace_new(const char *trace_id, char *out, size_t out_size, char *trace_id_out);

/* Copies the trace id of a version-00-shaped traceparent into trace_id_out
 * (ZL_TRACE_ID_HEX_SIZE bytes). Returns 0, or -1 (trace_id_out untouched)
 * when tp is not 55 characters of that shape. */
int zl_trace_parse(const char *tp, char *trace_id_out);

#endif /* ZL_TRACE_H */
