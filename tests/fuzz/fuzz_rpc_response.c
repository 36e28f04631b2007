/* fuzz_rpc_response: arbitrary bytes as a JSON-RPC answer: as a Transfer
 * log (eth_getLogs / receipt logs), as a quantity and as a uint256 hex
 * string, and through the client's quoting of integers beyond an int64
 * (which must be idempotent: its output has none left to quote). None may
 * crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (j != NULL) {
        struct zl_transfer_log tl;
        char err[256];
        zl_chain_parse_transfer_log(j, &tl, err, sizeof(err));
        json_t *item;
        size_t i;
        if (json_is_array(j))
            json_array_foreach(j, i, item) zl_chain_parse_transfer_log(item, &tl, err, sizeof(err));
        uint64_t q;
        zl_rpc_parse_quantity(j, &q);
        json_decref(j);
    }
    size_t qlen = 0, qlen2 = 0;
    char *q1 = zl_rpc_quote_big_ints((const char *)data, size, &qlen);
    char *q2 = q1 != NULL ? zl_rpc_quote_big_ints(q1, qlen, &qlen2) : NULL;
    if (q2 != NULL && (qlen2 != qlen || memcmp(q1, q2, qlen) != 0))
        abort();
    free(q1);
    free(q2);
    char *s = malloc(size + 1);
    if (s != NULL) {
        memcpy(s, data, size);
        s[size] = '\0';
        char out[80];
        zl_uint256_hex_to_dec(s, out, sizeof(out));
        char lo[67];
        zl_hex_lower(s, 64, lo, sizeof(lo));
        free(s);
    }
    return 0;
}
