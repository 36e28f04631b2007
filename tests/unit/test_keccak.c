/* Keccak-256 against Ethereum's known vectors: a NIST-padded SHA3 would pass
 * none of them. */
#include "keccak.h"
#include "zltest.h"

ZT_TEST(test_keccak256_of_empty_input_matches_ethereum)
{
    char hex[67];
    zl_keccak256_hex("", 0, hex);
    ZT_EQ_STR("0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470", hex);
}

ZT_TEST(test_keccak256_of_transfer_signature_is_the_erc20_topic)
{
    const char *sig = "Transfer(address,address,uint256)";
    char hex[67];
    zl_keccak256_hex(sig, strlen(sig), hex);
    ZT_EQ_STR("0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef", hex);
}

ZT_TEST(test_keccak256_across_block_boundaries_matches_cast)
{
    /* 135, 136 and 137 bytes straddle the 136-byte rate, where padding bugs
     * live; 200 bytes needs two permutations. Expected values from
     * `cast keccak` (Foundry). */
    char buf[300];
    memset(buf, 'a', sizeof(buf));
    char hex[67];
    zl_keccak256_hex(buf, 135, hex);
    ZT_EQ_STR("0x34367dc248bbd832f4e3e69dfaac2f92638bd0bbd18f2912ba4ef454919cf446", hex);
    zl_keccak256_hex(buf, 136, hex);
    ZT_EQ_STR("0xa6c4d403279fe3e0af03729caada8374b5ca54d8065329a3ebcaeb4b60aa386e", hex);
    zl_keccak256_hex(buf, 137, hex);
    ZT_EQ_STR("0xd869f639c7046b4929fc92a4d988a8b22c55fbadb802c0c66ebcd484f1915f39", hex);
    zl_keccak256_hex(buf, 200, hex);
    ZT_EQ_STR("0x96ea54061def936c4be90b518992fdc6f12f535068a256229aca54267b4d084d", hex);
}

ZT_TEST(test_token_id_is_decimal_uint256_of_the_deposit_hash)
{
    char dec[80];
    ZT_EQ_INT(0, zl_token_id_decimal("", dec, sizeof(dec)));
    /* uint256(0xc5d2...a470) in decimal. */
    ZT_EQ_STR("89477152217924674838424037953991966239322087453347756267410168184682657981552", dec);
    char small[10];
    ZT_EQ_INT(-1, zl_token_id_decimal("x", small, sizeof(small)));
}

ZT_MAIN(test_keccak256_of_empty_input_matches_ethereum, test_keccak256_of_transfer_signature_is_the_erc20_topic,
        test_keccak256_across_block_boundaries_matches_cast, test_token_id_is_decimal_uint256_of_the_deposit_hash)
