/* base58.c: base58 with the Bitcoin alphabet (base58.h). Quadratic base
 * conversion, as in every small implementation: inputs are at most 64
 * bytes, so it is a few thousand steps. */
#include <string.h>

#include "base58.h"

static const char ALPHABET[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

int zl_b58_encode(const uint8_t *in, size_t len, char *out, size_t out_size)
{
    if (out_size > 0)
        out[0] = '\0';
    if (len > ZL_B58_BYTES_MAX)
        return -1;
    size_t zeros = 0;
    while (zeros < len && in[zeros] == 0)
        zeros++;
    /* Digits base 58, least significant first: log(256)/log(58) < 1.37. */
    uint8_t digits[ZL_B58_TEXT_MAX];
    size_t nd = 0;
    for (size_t i = zeros; i < len; i++) {
        unsigned carry = in[i];
        for (size_t j = 0; j < nd; j++) {
            carry += (unsigned)digits[j] << 8;
            digits[j] = (uint8_t)(carry % 58);
            carry /= 58;
        }
        while (carry > 0) {
            if (nd == sizeof(digits))
                return -1; /* cannot happen for len <= ZL_B58_BYTES_MAX */
            digits[nd++] = (uint8_t)(carry % 58);
            carry /= 58;
        }
    }
    if (zeros + nd + 1 > out_size)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < zeros; i++)
        out[o++] = '1';
    for (size_t j = nd; j > 0; j--)
        out[o++] = ALPHABET[digits[j - 1]];
    out[o] = '\0';
    return 0;
}

static int digit_of(char c)
{
    const char *p = c != '\0' ? strchr(ALPHABET, c) : NULL;
    return p != NULL ? (int)(p - ALPHABET) : -1;
}

int zl_b58_decode(const char *text, uint8_t *out, size_t out_size, size_t *out_len)
{
    size_t n = strnlen(text, ZL_B58_TEXT_MAX);
    if (n == 0 || n >= ZL_B58_TEXT_MAX)
        return -1;
    size_t zeros = 0;
    while (zeros < n && text[zeros] == '1')
        zeros++;
    /* Bytes, least significant first. */
    uint8_t bytes[ZL_B58_BYTES_MAX];
    size_t nb = 0;
    for (size_t i = zeros; i < n; i++) {
        int d = digit_of(text[i]);
        if (d < 0)
            return -1;
        unsigned carry = (unsigned)d;
        for (size_t j = 0; j < nb; j++) {
            carry += (unsigned)bytes[j] * 58;
            bytes[j] = (uint8_t)(carry & 0xff);
            carry >>= 8;
        }
        while (carry > 0) {
            if (nb == sizeof(bytes))
                return -1;
            bytes[nb++] = (uint8_t)(carry & 0xff);
            carry >>= 8;
        }
    }
    if (zeros + nb > out_size)
        return -1;
    memset(out, 0, zeros);
    for (size_t j = 0; j < nb; j++)
        out[zeros + j] = bytes[nb - 1 - j];
    *out_len = zeros + nb;
    return 0;
}

int zl_b58_decode_exact(const char *text, uint8_t *out, size_t want)
{
    uint8_t buf[ZL_B58_BYTES_MAX];
    size_t got = 0;
    if (want > sizeof(buf) || zl_b58_decode(text, buf, sizeof(buf), &got) != 0 || got != want)
        return -1;
    memcpy(out, buf, want);
    return 0;
}
