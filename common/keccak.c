#include "keccak.h"

#include <nettle/sha3.h>
#include <string.h>

#include "hex.h"

/* Keccak-256 absorbs 136 bytes per permutation (1600 - 2*256 bits). */
#define RATE_BYTES 136

static void absorb_block(struct sha3_state *st, const uint8_t *block)
{
    /* nettle keeps the state as 25 little-endian 64-bit lanes. */
    for (int i = 0; i < RATE_BYTES / 8; i++) {
        uint64_t lane = 0;
        for (int b = 0; b < 8; b++)
            lane |= (uint64_t)block[8 * i + b] << (8 * b);
        st->a[i] ^= lane;
    }
    sha3_permute(st);
}

void zl_keccak256(const void *data, size_t len, uint8_t out[ZL_KECCAK256_SIZE])
{
    struct sha3_state st;
    memset(&st, 0, sizeof(st));
    const uint8_t *p = data;
    while (len >= RATE_BYTES) {
        absorb_block(&st, p);
        p += RATE_BYTES;
        len -= RATE_BYTES;
    }
    uint8_t last[RATE_BYTES];
    memset(last, 0, sizeof(last));
    if (len > 0)
        memcpy(last, p, len);
    /* Keccak's pad10*1 with domain byte 0x01 (NIST SHA3 uses 0x06). */
    last[len] ^= 0x01;
    last[RATE_BYTES - 1] ^= 0x80;
    absorb_block(&st, last);
    for (int i = 0; i < ZL_KECCAK256_SIZE; i++)
        out[i] = (uint8_t)(st.a[i / 8] >> (8 * (i % 8)));
}

void zl_keccak256_hex(const void *data, size_t len, char out[ZL_HASH_HEX_SIZE])
{
    uint8_t h[ZL_KECCAK256_SIZE];
    zl_keccak256(data, len, h);
    zl_hex_encode(h, sizeof(h), out, ZL_HEX_SIZE(ZL_KECCAK256_SIZE));
}

int zl_token_id_decimal(const char *deposit_id, char *out, size_t out_size)
{
    if (out_size < ZL_UINT256_DEC_DIGITS_MAX + 1)
        return -1;
    uint8_t h[ZL_KECCAK256_SIZE];
    zl_keccak256(deposit_id, strlen(deposit_id), h);
    /* Base 2^256 -> base 10 by repeated division of the big-endian bytes. */
    char digits[ZL_UINT256_DEC_SIZE];
    int nd = 0;
    int nonzero = 1;
    while (nonzero) {
        unsigned rem = 0;
        nonzero = 0;
        for (int i = 0; i < ZL_KECCAK256_SIZE; i++) {
            unsigned cur = (rem << 8) | h[i];
            h[i] = (uint8_t)(cur / 10);
            rem = cur % 10;
            if (h[i] != 0)
                nonzero = 1;
        }
        digits[nd++] = (char)('0' + rem);
    }
    for (int i = 0; i < nd; i++)
        out[i] = digits[nd - 1 - i];
    out[nd] = '\0';
    return 0;
}
