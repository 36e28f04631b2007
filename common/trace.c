#include "trace.h"

#include <stdio.h>
#include <string.h>
#include <uuid/uuid.h>

#include "hex.h"

/* A span id: 8 bytes as bare hex, NUL included. */
#define SPAN_ID_HEX_SIZE (2 * 8 + 1)

static int is_hex_run(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (zl_hex_digit(s[i]) < 0)
            return 0;
    return 1;
}

void zl_trace_new(const char *trace_id, char *out, size_t out_size, char *trace_id_out)
{
    char tid[ZL_TRACE_ID_HEX_SIZE];
    if (trace_id != NULL && strlen(trace_id) == ZL_TRACE_ID_HEX_SIZE - 1 &&
        is_hex_run(trace_id, ZL_TRACE_ID_HEX_SIZE - 1)) {
        memcpy(tid, trace_id, ZL_TRACE_ID_HEX_SIZE);
    } else {
        uuid_t a;
        uuid_generate_random(a);
        zl_hex_encode_bare(a, sizeof(a), tid, sizeof(tid));
    }
    uuid_t b;
    uuid_generate_random(b);
    char span[SPAN_ID_HEX_SIZE];
    zl_hex_encode_bare(b, sizeof(span) / 2, span, sizeof(span)); /* 8 of the uuid's 16 bytes */
    snprintf(out, out_size, "00-%s-%s-01", tid, span);
    if (trace_id_out != NULL)
        memcpy(trace_id_out, tid, ZL_TRACE_ID_HEX_SIZE);
}

int zl_trace_parse(const char *tp, char *trace_id_out)
{
    if (strlen(tp) != ZL_TRACEPARENT_LEN || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' ||
        !is_hex_run(tp + 3, ZL_TRACE_ID_HEX_SIZE - 1))
        return -1;
    memcpy(trace_id_out, tp + 3, ZL_TRACE_ID_HEX_SIZE - 1);
    trace_id_out[ZL_TRACE_ID_HEX_SIZE - 1] = '\0';
    return 0;
}
