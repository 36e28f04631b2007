/* libFuzzer target for the Solana text and wire decoders (common/base58.c,
 * common/solana_tx.c): base58 keys, signatures and blockhashes come from
 * RPC answers, compact-u16 lengths from transactions read back.
 *
 * The first byte picks the decoder; the rest is the input. Properties:
 *  - base58: a decoded value encodes back to exactly the text it came from
 *    (the encoding has one form per value, leading '1's included), within
 *    ZL_B58_BYTES_MAX bytes;
 *  - compact-u16: a decoded value encodes back to exactly the bytes read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base58.h"
#include "solana_tx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] % 2 == 0) {
        char text[ZL_B58_TEXT_MAX + 8];
        size_t n = size - 1 < sizeof(text) - 1 ? size - 1 : sizeof(text) - 1;
        memcpy(text, data + 1, n);
        text[n] = '\0';
        uint8_t out[ZL_B58_BYTES_MAX];
        size_t len = 0;
        if (zl_b58_decode(text, out, sizeof(out), &len) != 0)
            return 0;
        if (len > ZL_B58_BYTES_MAX)
            abort();
        char back[ZL_B58_TEXT_MAX];
        if (zl_b58_encode(out, len, back, sizeof(back)) != 0 || strcmp(back, text) != 0)
            abort();
    } else {
        uint16_t v = 0;
        size_t used = zl_sol_compact_u16_decode(data + 1, size - 1, &v);
        if (used == 0)
            return 0;
        uint8_t back[3];
        if (used > 3 || zl_sol_compact_u16_encode(v, back) != used || memcmp(back, data + 1, used) != 0)
            abort();
    }
    return 0;
}
