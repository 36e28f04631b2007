#include "cid.h"

#include <nettle/sha2.h>
#include <stdio.h>
#include <string.h>

static const char b32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

size_t zl_base32_lower(const uint8_t *in, size_t n, char *out, size_t out_size)
{
    size_t need = (n * 8 + 4) / 5;
    if (out_size < need + 1) {
        if (out_size > 0)
            out[0] = '\0';
        return 0;
    }
    size_t o = 0;
    uint32_t acc = 0; /* at most 12 live bits: 4 left over + 8 new */
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = b32_alphabet[(acc >> bits) & 31u];
        }
        acc &= (1u << bits) - 1u;
    }
    if (bits > 0)
        out[o++] = b32_alphabet[(acc << (5 - bits)) & 31u];
    out[o] = '\0';
    return o;
}

int zl_cid_raw_v1(const void *data, size_t len, char *out, size_t out_size, char *errstr, size_t errstr_size)
{
    if (out_size > 0)
        out[0] = '\0';
    if (len > ZL_CID_SINGLE_CHUNK_MAX_BYTES) {
        snprintf(errstr, errstr_size,
                 "content of %zu bytes is larger than one %d-byte chunk: its CID would be a dag-pb root, which is "
                 "not computed here; keep NFT images and metadata at most %d bytes",
                 len, ZL_CID_SINGLE_CHUNK_MAX_BYTES, ZL_CID_SINGLE_CHUNK_MAX_BYTES);
        return -1;
    }
    if (out_size < ZL_CID_RAW_LEN + 1) {
        snprintf(errstr, errstr_size, "CID buffer of %zu bytes is too small (need %d)", out_size, ZL_CID_RAW_LEN + 1);
        return -1;
    }
    /* binary CID: version 1, codec raw 0x55, multihash sha2-256 0x12, length 32, digest */
    uint8_t bin[4 + SHA256_DIGEST_SIZE] = {0x01, 0x55, 0x12, 0x20};
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    if (len > 0)
        sha256_update(&ctx, len, data);
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, bin + 4);
    out[0] = 'b'; /* multibase: base32 lower-case, no padding */
    size_t n = zl_base32_lower(bin, sizeof(bin), out + 1, out_size - 1);
    if (n + 1 != ZL_CID_RAW_LEN) {
        snprintf(errstr, errstr_size, "internal: CID of unexpected length %zu", n + 1);
        out[0] = '\0';
        return -1;
    }
    return 0;
}

bool zl_cid_is_raw_v1(const char *s)
{
    if (s == NULL || strlen(s) != ZL_CID_RAW_LEN || strncmp(s, "bafkrei", 7) != 0)
        return false;
    for (size_t i = 1; i < ZL_CID_RAW_LEN; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')))
            return false;
    }
    /* 36 bytes = 288 bits in 58 characters = 290 bits: the last character
     * carries 3 bits of data and 2 zero padding bits. */
    const char *p = strchr(b32_alphabet, s[ZL_CID_RAW_LEN - 1]);
    return p != NULL && ((p - b32_alphabet) & 3) == 0;
}
