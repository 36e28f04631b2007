/* base58 against the Bitcoin Core vectors (src/test/data/
 * base58_encode_decode.json) and Solana's well-known program ids. */
#include <stdio.h>
#include <string.h>

#include "base58.h"
#include "zltest.h"

static const char *const VECTORS[][2] = {
    {"61", "2g"},
    {"626262", "a3gV"},
    {"636363", "aPEr"},
    {"73696d706c792061206c6f6e6720737472696e67", "2cFupjhnEsSn59qHXstmK2ffpLv2"},
    {"00eb15231dfceb60925886b67d065299925915aeb172c06647", "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L"},
    {"516b6fcd0f", "ABnLTmg"},
    {"bf4f89001e670274dd", "3SEo3LWLoPntC"},
    {"572e4794", "3EFU7m"},
    {"ecac89cad93923c02321", "EJDM8drfXA6uyA"},
    {"10c8511e", "Rt5zm"},
    {"00000000000000000000", "1111111111"},
};

static void unhex(const char *h, uint8_t *out, size_t *len)
{
    size_t n = strlen(h) / 2;
    *len = n;
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        ZT_REQUIRE(sscanf(h + 2 * i, "%2x", &v) == 1);
        out[i] = (uint8_t)v;
    }
}

ZT_TEST(test_bitcoin_vectors_encode_and_decode)
{
    for (size_t i = 0; i < sizeof(VECTORS) / sizeof(VECTORS[0]); i++) {
        uint8_t bytes[64], back[64];
        size_t n = 0, got = 0;
        unhex(VECTORS[i][0], bytes, &n);
        char text[ZL_B58_TEXT_MAX];
        ZT_EQ_INT(0, zl_b58_encode(bytes, n, text, sizeof(text)));
        ZT_EQ_STR(VECTORS[i][1], text);
        ZT_EQ_INT(0, zl_b58_decode(VECTORS[i][1], back, sizeof(back), &got));
        ZT_EQ_INT((int)n, (int)got);
        ZT_CHECK(memcmp(bytes, back, n) == 0);
    }
}

ZT_TEST(test_solana_program_ids_are_32_bytes)
{
    uint8_t k[32], zero[32] = {0};
    ZT_EQ_INT(0, zl_b58_decode_exact("11111111111111111111111111111111", k, 32));
    ZT_CHECK(memcmp(k, zero, 32) == 0); /* the System Program is the zero key */
    ZT_EQ_INT(0, zl_b58_decode_exact("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", k, 32));
    char text[ZL_B58_TEXT_MAX];
    ZT_EQ_INT(0, zl_b58_encode(k, 32, text, sizeof(text)));
    ZT_EQ_STR("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", text);
    ZT_EQ_INT(0, zl_b58_decode_exact("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb", k, 32)); /* Token-2022 */
}

ZT_TEST(test_bad_text_and_wrong_sizes_are_refused)
{
    uint8_t k[64];
    size_t got;
    ZT_EQ_INT(-1, zl_b58_decode("", k, sizeof(k), &got));
    ZT_EQ_INT(-1, zl_b58_decode("0OIl", k, sizeof(k), &got)); /* not in the alphabet */
    ZT_EQ_INT(-1, zl_b58_decode("2g ", k, sizeof(k), &got));
    ZT_EQ_INT(-1, zl_b58_decode_exact("2g", k, 32));           /* one byte, not a key */
    ZT_EQ_INT(-1, zl_b58_decode_exact("1111111111111111111111111111111", k, 32)); /* 31 zero bytes */
    char text[4];
    uint8_t b[3] = {1, 2, 3};
    ZT_EQ_INT(-1, zl_b58_encode(b, 3, text, 3)); /* "Ldp" and its NUL need 4 */
    ZT_EQ_STR("", text);
    ZT_EQ_INT(0, zl_b58_encode(b, 3, text, 4));
    ZT_EQ_STR("Ldp", text);
    uint8_t big[65] = {0};
    char wide[200];
    ZT_EQ_INT(-1, zl_b58_encode(big, sizeof(big), wide, sizeof(wide))); /* over ZL_B58_BYTES_MAX */
}

ZT_MAIN(test_bitcoin_vectors_encode_and_decode, test_solana_program_ids_are_32_bytes,
        test_bad_text_and_wrong_sizes_are_refused)
