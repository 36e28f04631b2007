/* test_hex.c: the hex codec's contract at its edges: every digit's value,
 * the optional prefix, odd lengths, non-digits, and buffers one byte short. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "hex.h"
#include "zltest.h"

ZT_TEST(test_digit_values_cover_both_cases_and_nothing_else)
{
    ZT_EQ_INT(0, zl_hex_digit('0'));
    ZT_EQ_INT(9, zl_hex_digit('9'));
    ZT_EQ_INT(10, zl_hex_digit('a'));
    ZT_EQ_INT(15, zl_hex_digit('f'));
    ZT_EQ_INT(10, zl_hex_digit('A'));
    ZT_EQ_INT(15, zl_hex_digit('F'));
    int others = 0;
    for (int c = -1; c < 256; c++) {
        bool digit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!digit && zl_hex_digit(c) != -1)
            others++;
    }
    ZT_EQ_INT(0, others);
}

ZT_TEST(test_decode_takes_prefix_or_bare_and_either_case)
{
    uint8_t out[4];
    size_t n = 99;
    ZT_EQ_INT(0, zl_hex_decode("0xDEadBEef", out, sizeof(out), &n));
    ZT_EQ_INT(4, (long long)n);
    ZT_CHECK(memcmp(out, "\xde\xad\xbe\xef", 4) == 0);
    ZT_EQ_INT(0, zl_hex_decode("0X0102", out, sizeof(out), &n));
    ZT_EQ_INT(2, (long long)n);
    ZT_EQ_INT(0, zl_hex_decode("ff00", out, sizeof(out), &n));
    ZT_EQ_INT(2, (long long)n);
    ZT_CHECK(out[0] == 0xff && out[1] == 0x00);
    ZT_EQ_INT(0, zl_hex_decode("0x", out, sizeof(out), &n));
    ZT_EQ_INT(0, (long long)n);
    ZT_EQ_INT(0, zl_hex_decode("", out, sizeof(out), &n));
    ZT_EQ_INT(0, (long long)n);
}

ZT_TEST(test_decode_refuses_odd_lengths_non_digits_and_overflow)
{
    uint8_t out[2];
    size_t n = 7;
    ZT_EQ_INT(-1, zl_hex_decode("0x123", out, sizeof(out), &n));
    ZT_EQ_INT(-1, zl_hex_decode("0x12g4", out, sizeof(out), &n));
    ZT_EQ_INT(-1, zl_hex_decode("0x 1234", out, sizeof(out), &n));
    ZT_EQ_INT(-1, zl_hex_decode("0x0x12", out, sizeof(out), &n));
    ZT_EQ_INT(-1, zl_hex_decode("0x123456", out, sizeof(out), &n)); /* 3 bytes into 2 */
    ZT_EQ_INT(7, (long long)n);                                     /* untouched on failure */
    ZT_EQ_INT(0, zl_hex_decode("0x1234", out, sizeof(out), &n));    /* exactly fits */
    ZT_EQ_INT(2, (long long)n);
}

ZT_TEST(test_encode_writes_lowercase_and_refuses_a_short_buffer)
{
    const uint8_t data[] = {0x00, 0xAB, 0xff};
    char out[ZL_HEX_SIZE(3)];
    ZT_EQ_INT(9, (long long)sizeof(out));
    ZT_EQ_INT(0, zl_hex_encode(data, sizeof(data), out, sizeof(out)));
    ZT_EQ_STR("0x00abff", out);
    ZT_EQ_INT(-1, zl_hex_encode(data, sizeof(data), out, sizeof(out) - 1));
    ZT_EQ_STR("", out);
    ZT_EQ_INT(0, zl_hex_encode(data, 0, out, 3));
    ZT_EQ_STR("0x", out);
    ZT_EQ_INT(-1, zl_hex_encode(data, 0, out, 2));
    char bare[7];
    ZT_EQ_INT(0, zl_hex_encode_bare(data, sizeof(data), bare, sizeof(bare)));
    ZT_EQ_STR("00abff", bare);
    ZT_EQ_INT(-1, zl_hex_encode_bare(data, sizeof(data), bare, sizeof(bare) - 1));
    ZT_EQ_STR("", bare);
    ZT_EQ_INT(-1, zl_hex_encode_bare(data, 1, bare, 0)); /* writes nothing */
}

ZT_TEST(test_encode_then_decode_is_the_identity)
{
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    char hex[ZL_HEX_SIZE(256)];
    ZT_REQUIRE(zl_hex_encode(all, sizeof(all), hex, sizeof(hex)) == 0);
    uint8_t back[256];
    size_t n = 0;
    ZT_EQ_INT(0, zl_hex_decode(hex, back, sizeof(back), &n));
    ZT_EQ_INT(256, (long long)n);
    ZT_CHECK(memcmp(all, back, sizeof(all)) == 0);
}

ZT_MAIN(test_digit_values_cover_both_cases_and_nothing_else, test_decode_takes_prefix_or_bare_and_either_case,
        test_decode_refuses_odd_lengths_non_digits_and_overflow,
        test_encode_writes_lowercase_and_refuses_a_short_buffer, test_encode_then_decode_is_the_identity)
