/* libFuzzer target: the RLP decoder and the signed-transaction decoder on
 * arbitrary bytes. Neither may crash, read out of bounds or loop; whatever
 * zl_tx_decode accepts must be well-formed RLP. */
#include <stdint.h>
#include <stdio.h>

#include "ethtx.h"
#include "rlp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    (void)zl_rlp_validate(data, size, err, sizeof(err));
    struct zl_tx_decoded d;
    if (zl_tx_decode(data, size, &d, err, sizeof(err)) == 0) {
        const uint8_t *p = data[0] == 0x02 ? data + 1 : data;
        size_t n = data[0] == 0x02 ? size - 1 : size;
        if (zl_rlp_validate(p, n, err, sizeof(err)) != 0)
            __builtin_trap();
        uint8_t digest[32];
        (void)zl_tx_signing_hash(&d.tx, digest, err, sizeof(err));
    }
    return 0;
}
