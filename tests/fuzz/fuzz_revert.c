/* libFuzzer target: revert data (a JSON-RPC error's `data`, from a node, so
 * external input) read by zl_revert_describe. It may not crash, read past
 * the data or write past the buffer; the text is always NUL-terminated
 * inside it, and a decoded one names an error: "Name(...)". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "revert.h"

/* Buffers one past the given size hold a guard byte. */
#define OUT_SIZE 300
#define SMALL_SIZE 7
#define GUARD 0x5a

static void check(const char *hex, size_t out_size)
{
    char out[OUT_SIZE + 1];
    memset(out, GUARD, sizeof(out));
    bool decoded = zl_revert_describe(hex, out, out_size);
    if ((unsigned char)out[out_size] != GUARD || memchr(out, '\0', out_size) == NULL)
        __builtin_trap();
    size_t n = strlen(out);
    if (decoded && out_size == OUT_SIZE && n + 1 < OUT_SIZE && (strchr(out, '(') == NULL || out[n - 1] != ')'))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Both as the node's text and as its bytes written out in hex, so the
     * decoder sees arbitrary text and arbitrary (well-formed hex) data. */
    char *text = malloc(size + 1);
    char *hex = malloc(2 * size + 3);
    if (text == NULL || hex == NULL)
        goto out;
    memcpy(text, data, size);
    text[size] = '\0';
    static const char digits[] = "0123456789abcdef";
    hex[0] = '0';
    hex[1] = 'x';
    for (size_t i = 0; i < size; i++) {
        hex[2 + 2 * i] = digits[data[i] >> 4];
        hex[3 + 2 * i] = digits[data[i] & 15];
    }
    hex[2 + 2 * size] = '\0';
    check(text, OUT_SIZE);
    check(hex, OUT_SIZE);
    check(hex, SMALL_SIZE);
out:
    free(text);
    free(hex);
    return 0;
}
