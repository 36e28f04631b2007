/* libFuzzer target: the traceparent header (from any producer, so external
 * input) read by zl_trace_parse. It may not crash or read past the string;
 * what it accepts must give a 32-hex trace id that a new span keeps. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *tp = malloc(size + 1);
    if (tp == NULL)
        return 0;
    memcpy(tp, data, size);
    tp[size] = '\0'; /* a header value is text: the runtime reads it NUL-terminated */
    char tid[ZL_TRACE_ID_HEX_SIZE];
    if (zl_trace_parse(tp, tid) == 0) {
        if (strlen(tid) != ZL_TRACE_ID_HEX_SIZE - 1)
            __builtin_trap();
        char again[ZL_TRACEPARENT_BUF_SIZE], kept[ZL_TRACE_ID_HEX_SIZE];
        zl_trace_new(tid, again, sizeof(again), kept);
        if (strcmp(tid, kept) != 0)
            __builtin_trap();
    }
    free(tp);
    return 0;
}
