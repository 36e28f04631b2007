/* hex.c: the hex codec behind hex.h. */
#include "hex.h"

#include <string.h>

static const char hex_digits_lower[] = "0123456789abcdef";

int zl_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool zl_hex_has_prefix(const char *s) { return s[0] == '0' && (s[1] == 'x' || s[1] == 'X'); }

int zl_hex_decode(const char *hex, uint8_t *out, size_t out_size, size_t *len_out)
{
    if (zl_hex_has_prefix(hex))
        hex += ZL_HEX_PREFIX_LEN;
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 > out_size)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = zl_hex_digit((unsigned char)hex[2 * i]);
        int lo = zl_hex_digit((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *len_out = n / 2;
    return 0;
}

int zl_hex_encode_bare(const uint8_t *data, size_t len, char *out, size_t out_size)
{
    /* (out_size - 1) / 2 < len, not 2 * len + 1 > out_size: no overflow. */
    if (out_size < 1 || (out_size - 1) / 2 < len) {
        if (out_size > 0)
            out[0] = '\0';
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex_digits_lower[data[i] >> 4];
        out[2 * i + 1] = hex_digits_lower[data[i] & 15];
    }
    out[2 * len] = '\0';
    return 0;
}

int zl_hex_encode(const uint8_t *data, size_t len, char *out, size_t out_size)
{
    if (out_size < ZL_HEX_PREFIX_LEN + 1 ||
        zl_hex_encode_bare(data, len, out + ZL_HEX_PREFIX_LEN, out_size - ZL_HEX_PREFIX_LEN) != 0) {
        if (out_size > 0)
            out[0] = '\0';
        return -1;
    }
    out[0] = '0';
    out[1] = 'x';
    return 0;
}
