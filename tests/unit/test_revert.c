/* test_revert.c: revert data read as an operator reads it: the contracts'
 * custom errors with their arguments and role names, Error(string),
 * Panic(uint256) with the code's meaning, and what cannot be read said as
 * such, with the hex, never past the caller's buffer. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ethtx.h"
#include "revert.h"
#include "zltest.h"

#define W0 "0000000000000000000000000000000000000000000000000000000000000000"
#define ANVIL0 "f39fd6e51aad88f6f4ce6ab8827279cfffb92266"
#define ADDR_WORD(a) "000000000000000000000000" a
#define MINTER_ROLE_HASH "9f2df0fed2c77648de5860a4cc508cd0818c85b8b8a1ab4ceeef8d981c8956a6"
/* A bytes32 no ABI names (MINTER_ROLE's hash with its first byte changed). */
#define OTHER_HASH "112df0fed2c77648de5860a4cc508cd0818c85b8b8a1ab4ceeef8d981c8956a6"
/* An address word with a high byte set: not an address. */
#define BAD_ADDR_WORD "ff0000000000000000000000" ANVIL0
#define OUT_SIZE 512

static char out[OUT_SIZE];

static bool describe(const char *hex)
{
    memset(out, 'Z', sizeof(out));
    return zl_revert_describe(hex, out, sizeof(out));
}

ZT_TEST(test_a_minter_without_its_role_reads_as_the_error_and_the_role_name)
{
    ZT_CHECK(describe("0xe2517d3f" ADDR_WORD(ANVIL0) MINTER_ROLE_HASH));
    ZT_EQ_STR("AccessControlUnauthorizedAccount(0x" ANVIL0 ", MINTER_ROLE)", out);
    /* DEFAULT_ADMIN_ROLE is zero; a hash no ABI names stays hex. */
    ZT_CHECK(describe("0xe2517d3f" ADDR_WORD(ANVIL0) W0));
    ZT_EQ_STR("AccessControlUnauthorizedAccount(0x" ANVIL0 ", DEFAULT_ADMIN_ROLE)", out);
    ZT_CHECK(describe("E2517D3F" ADDR_WORD(ANVIL0) OTHER_HASH)); /* bare, upper case */
    ZT_EQ_STR("AccessControlUnauthorizedAccount(0x" ANVIL0 ", 0x" OTHER_HASH ")", out);
}

ZT_TEST(test_uint256_arguments_are_decimal_whatever_their_size)
{
    ZT_CHECK(describe("0x64283d7b" ADDR_WORD(ANVIL0)
                      "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff" ADDR_WORD(ANVIL0)));
    ZT_EQ_STR("ERC721IncorrectOwner(0x" ANVIL0
              ", 115792089237316195423570985008687907853269984665640564039457584007913129639935, 0x" ANVIL0 ")",
              out);
    ZT_CHECK(describe("0x7e273289" "000000000000000000000000000000000000000000000000000000000000002a"));
    ZT_EQ_STR("ERC721NonexistentToken(42)", out);
}

ZT_TEST(test_error_string_is_quoted_and_escaped)
{
    ZT_CHECK(describe("0x08c379a0"
                      "0000000000000000000000000000000000000000000000000000000000000020"
                      "0000000000000000000000000000000000000000000000000000000000000020"
                      "4f776e61626c653a2063616c6c6572206973206e6f7420746865206f776e6572"));
    ZT_EQ_STR("Error(\"Ownable: caller is not the owner\")", out);
    /* A quote, a backslash and a newline: "a\"b\\c\n" written so it stays one line. */
    ZT_CHECK(describe("0x08c379a0"
                      "0000000000000000000000000000000000000000000000000000000000000020"
                      "0000000000000000000000000000000000000000000000000000000000000006"
                      "6122625c630a0000000000000000000000000000000000000000000000000000"));
    ZT_EQ_STR("Error(\"a\\\"b\\\\c\\x0a\")", out);
}

ZT_TEST(test_panic_codes_say_what_they_mean)
{
    ZT_CHECK(describe("0x4e487b71" "0000000000000000000000000000000000000000000000000000000000000011"));
    ZT_EQ_STR("Panic(0x11: arithmetic overflow or underflow)", out);
    ZT_CHECK(describe("0x4e487b71" "0000000000000000000000000000000000000000000000000000000000000099"));
    ZT_EQ_STR("Panic(0x99: a code Solidity does not use)", out);
    ZT_CHECK(zl_revert_panic_meaning(0x12) != NULL && zl_revert_panic_meaning(0x13) == NULL);
}

ZT_TEST(test_what_cannot_be_read_is_said_with_its_hex)
{
    ZT_CHECK(!describe(NULL));
    ZT_EQ_STR("no revert data (a bare revert, or a require without a message)", out);
    ZT_CHECK(!describe("0x"));
    ZT_CHECK(strncmp(out, "no revert data", 14) == 0);
    ZT_CHECK(!describe("0xdeadbeef" "01"));
    ZT_EQ_STR("custom error 0xdeadbeef (in none of the contracts' ABIs): 0x01", out);
    ZT_CHECK(!describe("0xdeadbeef"));
    ZT_EQ_STR("custom error 0xdeadbeef (in none of the contracts' ABIs)", out);
    ZT_CHECK(!describe("0xe251"));
    ZT_EQ_STR("revert data too short to name an error: 0xe251", out);
    ZT_CHECK(!describe("not hex"));
    ZT_EQ_STR("revert data is not hex: not hex", out);
    /* A known error with too few arguments, or an address with high bytes set. */
    ZT_CHECK(!describe("0xe2517d3f" ADDR_WORD(ANVIL0)));
    ZT_EQ_STR("AccessControlUnauthorizedAccount(address,bytes32) with arguments that do not decode: 0x"
              ADDR_WORD(ANVIL0), out);
    ZT_CHECK(!describe("0xe2517d3f" BAD_ADDR_WORD MINTER_ROLE_HASH));
    /* A string whose offset or length points past the data. */
    ZT_CHECK(!describe("0x08c379a0" "00000000000000000000000000000000000000000000000000000000000000ff"));
    ZT_CHECK(!describe("0x08c379a0"
                       "0000000000000000000000000000000000000000000000000000000000000020"
                       "00000000000000000000000000000000000000000000000000000000000000ff"));
    ZT_CHECK(strncmp(out, "Error(string) with arguments that do not decode: 0x", 51) == 0);
}

ZT_TEST(test_the_text_is_cut_at_the_buffer_never_past_it)
{
    char small[24];
    memset(small, 'Z', sizeof(small));
    zl_revert_describe("0xe2517d3f" ADDR_WORD(ANVIL0) MINTER_ROLE_HASH, small, 16);
    ZT_EQ_STR("AccessControlUn", small);
    ZT_CHECK(small[16] == 'Z');
    char one[1];
    zl_revert_describe("0xdeadbeef", one, 1);
    ZT_CHECK(one[0] == '\0');
    /* Longer than the data read: said, not decoded. */
    static char big[2 * ZL_REVERT_DATA_MAX_BYTES + 16];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ZT_CHECK(!describe(big));
    ZT_CHECK(strstr(out, "more than the 4096 bytes read") != NULL);
}

ZT_TEST(test_the_generated_table_agrees_with_the_mint_stage)
{
    /* ERC721InvalidSender is what mint reads as "already minted"
     * (ZL_ABI_TOKEN_EXISTS_REVERT): the table's selector must be its. */
    ZT_CHECK(describe(ZL_ABI_TOKEN_EXISTS_REVERT));
    ZT_EQ_STR("ERC721InvalidSender(0x0000000000000000000000000000000000000000)", out);
    /* No two errors share a selector (one would hide the other). */
    int clashes = 0;
    for (size_t i = 0; i < zl_revert_abi_errors_count; i++)
        for (size_t j = i + 1; j < zl_revert_abi_errors_count; j++) {
            uint8_t a[4], b[4];
            zl_abi_selector(zl_revert_abi_errors[i], a);
            zl_abi_selector(zl_revert_abi_errors[j], b);
            clashes += memcmp(a, b, 4) == 0;
        }
    ZT_EQ_INT(0, clashes);
    ZT_CHECK(zl_revert_abi_roles_count >= 2);
}

ZT_MAIN(test_a_minter_without_its_role_reads_as_the_error_and_the_role_name,
        test_uint256_arguments_are_decimal_whatever_their_size, test_error_string_is_quoted_and_escaped,
        test_panic_codes_say_what_they_mean, test_what_cannot_be_read_is_said_with_its_hex,
        test_the_text_is_cut_at_the_buffer_never_past_it, test_the_generated_table_agrees_with_the_mint_stage)
