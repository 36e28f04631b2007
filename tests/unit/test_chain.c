/* test_chain.c: Transfer log decoding and uint256 helpers on hand-made
 * RPC answers, including malformed ones an endpoint might send. */
#include <string.h>

#include "chain.h"
#include "zltest.h"

static const char *LOG_OK =
    "{\"address\":\"0xAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"topics\":["
    "\"0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef\","
    "\"0x0000000000000000000000001111111111111111111111111111111111111111\","
    "\"0x0000000000000000000000002222222222222222222222222222222222222222\"],"
    "\"data\":\"0x00000000000000000000000000000000000000000000000000000000000003e8\","
    "\"blockNumber\":\"0x10\",\"blockHash\":\"0x" "abababababababababababababababababababababababababababababababab" "\","
    "\"transactionHash\":\"0x" "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd" "\",\"logIndex\":\"0x2\",\"removed\":false}";

ZT_TEST(test_transfer_log_decodes_every_field)
{
    json_t *j = json_loads(LOG_OK, 0, NULL);
    ZT_REQUIRE(j != NULL);
    struct zl_transfer_log tl;
    char err[256];
    ZT_EQ_INT(0, zl_chain_parse_transfer_log(j, &tl, err, sizeof(err)));
    ZT_EQ_STR("0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", tl.token);
    ZT_EQ_STR("0x1111111111111111111111111111111111111111", tl.from);
    ZT_EQ_STR("0x2222222222222222222222222222222222222222", tl.to);
    ZT_EQ_STR("1000", tl.amount);
    ZT_EQ_INT(16, (long long)tl.block_number);
    ZT_EQ_INT(2, tl.log_index);
    json_decref(j);
}

ZT_TEST(test_transfer_log_refuses_malformed_logs)
{
    const char *bad[] = {"[]", "{\"topics\":[]}",
                         "{\"address\":\"0x1\",\"topics\":[\"0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef\"]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *j = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        struct zl_transfer_log tl;
        char err[256];
        ZT_EQ_INT(-1, zl_chain_parse_transfer_log(j, &tl, err, sizeof(err)));
        json_decref(j);
    }
}

ZT_TEST(test_uint256_hex_to_decimal_at_the_edges)
{
    char out[80];
    ZT_EQ_INT(0, zl_uint256_hex_to_dec("0x0", out, sizeof(out)));
    ZT_EQ_STR("0", out);
    ZT_EQ_INT(0, zl_uint256_hex_to_dec("0xde0b6b3a7640000", out, sizeof(out)));
    ZT_EQ_STR("1000000000000000000", out);
    ZT_EQ_INT(0, zl_uint256_hex_to_dec("0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", out,
                                       sizeof(out)));
    ZT_EQ_STR("115792089237316195423570985008687907853269984665640564039457584007913129639935", out);
    ZT_EQ_INT(-1, zl_uint256_hex_to_dec("0x1ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", out,
                                        sizeof(out)));
    ZT_EQ_INT(-1, zl_uint256_hex_to_dec("0xg", out, sizeof(out)));
    ZT_CHECK(zl_dec_cmp("99", "100") < 0);
    ZT_CHECK(zl_dec_cmp("100", "100") == 0);
    char topic[67];
    ZT_EQ_INT(0, zl_address_topic("0xABCDEFabcdefABCDEFabcdefABCDEFabcdefABCD", topic, sizeof(topic)));
    ZT_EQ_STR("0x000000000000000000000000abcdefabcdefabcdefabcdefabcdefabcdefabcd", topic);
}

ZT_MAIN(test_transfer_log_decodes_every_field, test_transfer_log_refuses_malformed_logs,
        test_uint256_hex_to_decimal_at_the_edges)
