/* Signed transactions byte for byte against Foundry's `cast mktx` for the
 * same key, chain, nonce, fees, gas, recipient, value and data: if our RLP,
 * signing hash or v/y-parity were wrong, nodes would reject every mint (or
 * attribute it to another sender). Vectors made with cast 1.7.1, e.g.
 *   cast mktx --private-key K --chain 31337 --nonce 0 --gas-limit 21000 \
 *     --gas-price 2000000000 --priority-gas-price 1000000000 TO --value 1
 * and the same with --legacy. */
#include <stdlib.h>

#include "ethtx.h"
#include "hex.h"
#include "keccak.h"
#include "zltest.h"

static const char KEY0[] = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
static const char KEY1[] = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
static const char URI[] = "ipfs://bafkreiexampleexampleexampleexampleexampleexampleexampleexam";

/* `cast calldata "mint(address,uint256,string)" 0x3C44...93BC 0xabab..ab URI` */
static const char MINT_CALLDATA[] =
    "0xd3fc98640000000000000000000000003c44cdddb6a900fa2b585dd299e03d12fa4293bcababababababababababababab"
    "ababababababababababababababababababab00000000000000000000000000000000000000000000000000000000000000"
    "600000000000000000000000000000000000000000000000000000000000000043697066733a2f2f6261666b726569657861"
    "6d706c656578616d706c656578616d706c656578616d706c656578616d706c656578616d706c656578616d706c656578616d"
    "0000000000000000000000000000000000000000000000000000000000";

static void hex_of(const struct zl_signed_tx *st, char *out, size_t out_size)
{
    ZT_REQUIRE(zl_hex_encode(st->raw, st->raw_len, out, out_size) == 0);
}

static void check_signed(const char *key, const struct zl_tx *tx, const char *want)
{
    struct zl_secp_key k;
    char err[256];
    ZT_REQUIRE(zl_secp_key_load(&k, key, err, sizeof(err)) == 0);
    static struct zl_signed_tx st;
    int rc = zl_tx_sign(tx, &k, &st, err, sizeof(err));
    zl_secp_key_free(&k);
    ZT_REQUIRE(rc == 0);
    static char hex[2 * ZL_TX_RAW_MAX + 3];
    hex_of(&st, hex, sizeof(hex));
    ZT_EQ_STR(want, hex);
    char h[67];
    zl_keccak256_hex(st.raw, st.raw_len, h);
    ZT_EQ_STR(h, st.hash);
}

ZT_TEST(test_type2_value_transfer_matches_cast_mktx)
{
    struct zl_tx tx = {.type = ZL_TX_EIP1559, .chain_id = 31337, .nonce = 0, .max_priority_fee_wei = 1000000000,
                       .max_fee_wei = 2000000000, .gas_limit = 21000, .value_wei = 1};
    ZT_REQUIRE(zl_tx_parse_address("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", tx.to) == 0);
    check_signed(KEY0, &tx,
                 "0x02f86c827a6980843b9aca0084773594008252089470997970c51812dc3a010c7d01b50e0d17dc79c80180c080a07ca0"
                 "03a6a2adcce9641e808dcecdedf7c37ca5f48c326a17e25406471de8d1eea053a15f6568f6cf8ccf47cb2f77585c4b71ba3a"
                 "579bfcc82de7a528889b92a705");
}

ZT_TEST(test_legacy_eip155_value_transfer_matches_cast_mktx)
{
    struct zl_tx tx = {.type = ZL_TX_LEGACY, .chain_id = 31337, .nonce = 0, .max_fee_wei = 2000000000,
                       .gas_limit = 21000, .value_wei = 1};
    ZT_REQUIRE(zl_tx_parse_address("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", tx.to) == 0);
    check_signed(KEY0, &tx,
                 "0xf8658084773594008252089470997970c51812dc3a010c7d01b50e0d17dc79c8018082f4f6a0b6a0ac32bb6e28231a02"
                 "777ab4c67f09e9940a16ab17ddfa12eb6bf13277764ba0629cd63659c9068b643ab93e6600835828bb751f62b44dac453a7d"
                 "f1973eeb0c");
}

ZT_TEST(test_mint_calldata_matches_cast_calldata)
{
    uint8_t to[20], id[32], data[512];
    memset(id, 0xab, sizeof(id));
    ZT_REQUIRE(zl_tx_parse_address("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", to) == 0);
    size_t n = 0;
    ZT_REQUIRE(zl_abi_mint(to, id, URI, data, sizeof(data), &n) == 0);
    char hex[1200];
    ZT_REQUIRE(zl_hex_encode(data, n, hex, sizeof(hex)) == 0);
    ZT_EQ_STR(MINT_CALLDATA, hex);
    ZT_EQ_INT(-1, zl_abi_mint(to, id, URI, data, 100, &n));
}

static void mint_tx(zl_tx_type type, uint64_t fee, uint8_t *data, size_t *n, struct zl_tx *tx)
{
    ZT_REQUIRE(zl_hex_decode(MINT_CALLDATA, data, 512, n) == 0);
    memset(tx, 0, sizeof(*tx));
    tx->type = type;
    tx->chain_id = 56;
    tx->nonce = 300;
    tx->max_priority_fee_wei = 1500000000;
    tx->max_fee_wei = fee;
    tx->gas_limit = 150000;
    tx->data = data;
    tx->data_len = *n;
    ZT_REQUIRE(zl_tx_parse_address("0x5FbDB2315678afecb367f032d93F642f64180aa3", tx->to) == 0);
}

ZT_TEST(test_type2_mint_with_calldata_matches_cast_mktx)
{
    uint8_t data[512];
    size_t n;
    struct zl_tx tx;
    mint_tx(ZL_TX_EIP1559, 30000000000, data, &n, &tx);
    check_signed(KEY1, &tx,
                 "0x02f901533882012c8459682f008506fc23ac00830249f0945fbdb2315678afecb367f032d93f642f64180aa380b8e4d3fc"
                 "98640000000000000000000000003c44cdddb6a900fa2b585dd299e03d12fa4293bcabababababababababababababababab"
                 "abababababababababababababababab00000000000000000000000000000000000000000000000000000000000000600000"
                 "000000000000000000000000000000000000000000000000000000000043697066733a2f2f6261666b7265696578616d706c"
                 "656578616d706c656578616d706c656578616d706c656578616d706c656578616d706c656578616d706c656578616d000000"
                 "0000000000000000000000000000000000000000000000000000c001a0de46935aba44fb37e4c94ccc4b0a12b8ecb10678bb"
                 "5846fcd7ac05198f296cb8a006e714a464dce38afd49eb38f7756f669bf34a9d408941099764d4d68c3bbf87");
}

ZT_TEST(test_legacy_mint_on_a_large_chain_id_matches_cast_mktx)
{
    uint8_t data[512];
    size_t n;
    struct zl_tx tx;
    mint_tx(ZL_TX_LEGACY, 3000000000, data, &n, &tx);
    check_signed(KEY1, &tx,
                 "0xf9014c82012c84b2d05e00830249f0945fbdb2315678afecb367f032d93f642f64180aa380b8e4d3fc9864000000000000"
                 "0000000000003c44cdddb6a900fa2b585dd299e03d12fa4293bcabababababababababababababababababababababababab"
                 "abababababababab000000000000000000000000000000000000000000000000000000000000006000000000000000000000"
                 "00000000000000000000000000000000000000000043697066733a2f2f6261666b7265696578616d706c656578616d706c65"
                 "6578616d706c656578616d706c656578616d706c656578616d706c656578616d706c656578616d0000000000000000000000"
                 "0000000000000000000000000000000000008194a050a22ba6deb8444f6cf911f690ac6834be84ee5f084c34ac0df2919519"
                 "1c4fefa00ffa458fd3353ecb68d81032f1a953c8f40d380fc1ea9534c65a633199887688");
}

ZT_TEST(test_mint_batch_calldata_matches_cast_calldata)
{
    uint8_t to[2][20], ids[2][32] = {{0}}, data[1024];
    ZT_REQUIRE(zl_tx_parse_address("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", to[0]) == 0);
    ZT_REQUIRE(zl_tx_parse_address("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", to[1]) == 0);
    ids[0][31] = 1;
    ids[1][31] = 2;
    const char *uris[2] = {"ipfs://a", URI};
    size_t n;
    ZT_REQUIRE(zl_abi_mint_batch(2, (const uint8_t(*)[20])to, (const uint8_t(*)[32])ids, uris, data, sizeof(data),
                                 &n) == 0);
    char hex[2200];
    ZT_REQUIRE(zl_hex_encode(data, n, hex, sizeof(hex)) == 0);
    ZT_EQ_STR("0x92315df7"
              "0000000000000000000000000000000000000000000000000000000000000060"
              "00000000000000000000000000000000000000000000000000000000000000c0"
              "0000000000000000000000000000000000000000000000000000000000000120"
              "0000000000000000000000000000000000000000000000000000000000000002"
              "0000000000000000000000003c44cdddb6a900fa2b585dd299e03d12fa4293bc"
              "00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8"
              "0000000000000000000000000000000000000000000000000000000000000002"
              "0000000000000000000000000000000000000000000000000000000000000001"
              "0000000000000000000000000000000000000000000000000000000000000002"
              "0000000000000000000000000000000000000000000000000000000000000002"
              "0000000000000000000000000000000000000000000000000000000000000040"
              "0000000000000000000000000000000000000000000000000000000000000080"
              "0000000000000000000000000000000000000000000000000000000000000008"
              "697066733a2f2f61000000000000000000000000000000000000000000000000"
              "0000000000000000000000000000000000000000000000000000000000000043"
              "697066733a2f2f6261666b7265696578616d706c656578616d706c656578616d"
              "706c656578616d706c656578616d706c656578616d706c656578616d706c6565"
              "78616d0000000000000000000000000000000000000000000000000000000000",
              hex);
}

ZT_TEST(test_decoder_reads_back_what_we_signed_and_rejects_damage)
{
    struct zl_secp_key k;
    char err[256];
    ZT_REQUIRE(zl_secp_key_load(&k, KEY1, err, sizeof(err)) == 0);
    uint8_t data[512];
    size_t n;
    struct zl_tx tx;
    mint_tx(ZL_TX_EIP1559, 30000000000, data, &n, &tx);
    static struct zl_signed_tx st;
    ZT_REQUIRE(zl_tx_sign(&tx, &k, &st, err, sizeof(err)) == 0);
    struct zl_tx_decoded d;
    ZT_REQUIRE(zl_tx_decode(st.raw, st.raw_len, &d, err, sizeof(err)) == 0);
    ZT_CHECK(d.tx.nonce == 300 && d.tx.chain_id == 56 && d.tx.gas_limit == 150000 && d.tx.data_len == n);
    ZT_EQ_INT(-1, zl_tx_decode(st.raw, st.raw_len - 1, &d, err, sizeof(err)));
    st.raw[0] = 0x01; /* EIP-2930: not ours */
    ZT_EQ_INT(-1, zl_tx_decode(st.raw, st.raw_len, &d, err, sizeof(err)));
    /* calldata too large is refused before signing */
    tx.data_len = ZL_TX_DATA_MAX + 1;
    ZT_EQ_INT(-1, zl_tx_sign(&tx, &k, &st, err, sizeof(err)));
    zl_secp_key_free(&k);
}

ZT_TEST(test_owner_of_and_revert_helpers)
{
    uint8_t id[32], out[36];
    memset(id, 0, sizeof(id));
    id[31] = 7;
    zl_abi_owner_of(id, out);
    ZT_CHECK(out[0] == 0x63 && out[1] == 0x52 && out[2] == 0x21 && out[3] == 0x1e); /* ownerOf(uint256) */
    char addr[43];
    ZT_EQ_INT(0, zl_abi_decode_address("0x0000000000000000000000003c44cdddb6a900fa2b585dd299e03d12fa4293bc", addr));
    ZT_EQ_STR("0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc", addr);
    ZT_EQ_INT(-1, zl_abi_decode_address("0x0100000000000000000000003c44cdddb6a900fa2b585dd299e03d12fa4293bc", addr));
    ZT_CHECK(zl_abi_is_token_exists_revert(
        "0x73c6ac6e0000000000000000000000000000000000000000000000000000000000000000"));
    ZT_CHECK(!zl_abi_is_token_exists_revert(
        "0x73c6ac6e0000000000000000000000000000000000000000000000000000000000000001"));
    ZT_CHECK(!zl_abi_is_token_exists_revert("0x"));
}

ZT_MAIN(test_type2_value_transfer_matches_cast_mktx, test_legacy_eip155_value_transfer_matches_cast_mktx,
        test_mint_calldata_matches_cast_calldata, test_type2_mint_with_calldata_matches_cast_mktx,
        test_legacy_mint_on_a_large_chain_id_matches_cast_mktx, test_mint_batch_calldata_matches_cast_calldata,
        test_decoder_reads_back_what_we_signed_and_rejects_damage, test_owner_of_and_revert_helpers)
