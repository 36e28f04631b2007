/* test_txmgr.c: the transaction manager's parts that need no node: a node's
 * error answer read into a reason, revert matching, fee choice and caps, fee
 * bumps, signing into a nonce-store record, and a broadcast no node
 * answered. */
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "txmgr.h"
#include "zltest.h"

/* anvil's dev account 0: a well-known test key, never a real one. */
static const char anvil_key0[] = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
#define GWEI UINT64_C(1000000000)

static struct zl_rpc_error answer(const char *message, const char *data)
{
    struct zl_rpc_error re;
    memset(&re, 0, sizeof(re));
    re.code = -32000;
    re.answered = true;
    snprintf(re.message, sizeof(re.message), "%s", message);
    snprintf(re.data, sizeof(re.data), "%s", data);
    return re;
}

static struct zl_txmgr_opts fee_opts(void)
{
    struct zl_txmgr_opts o;
    memset(&o, 0, sizeof(o));
    o.max_fee_gwei = 100;
    o.max_priority_fee_gwei = 10;
    o.min_priority_fee_mwei = 1000; /* 1 gwei */
    o.fee_bump_pct = 15;
    return o;
}

/* Node answers as geth, erigon, anvil and providers spell them, and the
 * reason each must read into. */
static const struct {
    const char *message;
    zl_tx_reason want;
} answers[] = {
    {"already known", ZL_TX_SENT},
    {"Known transaction: 0xabc", ZL_TX_SENT},
    {"nonce too low: next nonce 5, tx nonce 4", ZL_TX_SENT},
    {"replacement transaction underpriced", ZL_TX_SENT},
    {"transaction already exists in the pool", ZL_TX_SENT},
    {"insufficient funds for gas * price + value: have 0 want 21000", ZL_TX_UNFUNDED},
    {"Insufficient Funds for transfer", ZL_TX_UNFUNDED},
    /* naming both: the signer's balance is the one to fix */
    {"insufficient funds: out of gas", ZL_TX_UNFUNDED},
    {"intrinsic gas too low: have 20000, want 21000", ZL_TX_REFUSED},
    {"exceeds block gas limit", ZL_TX_REFUSED},
    {"invalid chain id for signer", ZL_TX_REFUSED},
    {"transaction type not supported", ZL_TX_REFUSED},
    {"max fee per gas less than block base fee", ZL_TX_RETRY},
    {"txpool is full", ZL_TX_RETRY},
    {"", ZL_TX_RETRY},
};

ZT_TEST(test_each_node_answer_reads_into_its_reason)
{
    for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
        struct zl_rpc_error re = answer(answers[i].message, "");
        zl_tx_reason got = zl_tx_classify_answer(&re);
        zt_cur.checks++;
        if (got != answers[i].want)
            ZT_FAIL_AT("\"%s\": expected %s, got %s", answers[i].message, zl_tx_reason_name(answers[i].want),
                       zl_tx_reason_name(got));
    }
    ZT_EQ_STR("sent", zl_tx_reason_name(ZL_TX_SENT));
    ZT_EQ_STR("refused", zl_tx_reason_name(ZL_TX_REFUSED));
    ZT_EQ_STR("unfunded", zl_tx_reason_name(ZL_TX_UNFUNDED));
    ZT_EQ_STR("retry", zl_tx_reason_name(ZL_TX_RETRY));
}

ZT_TEST(test_revert_is_matched_in_data_nested_data_or_message)
{
    struct zl_rpc_error re = answer("execution reverted", "0x73C6AC6E0000000000000000000000000000000000000000000000000000000000000000");
    ZT_CHECK(zl_tx_revert_is(&re, ZL_ABI_TOKEN_EXISTS_REVERT));
    re = answer("execution reverted", "{\"data\":\"" ZL_ABI_TOKEN_EXISTS_REVERT "\",\"message\":\"reverted\"}");
    ZT_CHECK(zl_tx_revert_is(&re, ZL_ABI_TOKEN_EXISTS_REVERT));
    re = answer("execution reverted: custom error 0x73c6ac6e", "");
    ZT_CHECK(zl_tx_revert_is(&re, ZL_ABI_TOKEN_EXISTS_REVERT));
    /* another error (AccessControlUnauthorizedAccount), or the same selector
     * with another argument, is not "token exists" */
    re = answer("execution reverted", "0xe2517d3f000000000000000000000000aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    ZT_CHECK(!zl_tx_revert_is(&re, ZL_ABI_TOKEN_EXISTS_REVERT));
    re = answer("execution reverted", "0x73c6ac6e000000000000000000000000aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    ZT_CHECK(!zl_tx_revert_is(&re, ZL_ABI_TOKEN_EXISTS_REVERT));
}

ZT_TEST(test_eip1559_fees_take_the_median_tip_within_floor_and_cap)
{
    struct zl_txmgr_opts o = fee_opts();
    struct zl_tx_fees f;
    char err[ZL_ERRSTR_SIZE];
    const uint64_t tips[] = {3 * GWEI, 1 * GWEI, 2 * GWEI, 50 * GWEI, 2 * GWEI};
    ZT_EQ_INT(ZL_OK, zl_tx_fees_eip1559(&o, 10 * GWEI, tips, 5, &f, err, sizeof(err)));
    ZT_EQ_INT(ZL_TX_EIP1559, f.type);
    ZT_EQ_INT(2 * GWEI, f.priority_fee_wei);
    ZT_EQ_INT(22 * GWEI, f.max_fee_wei); /* 2 x base + tip */
    /* no tips: the floor; huge tips: the cap */
    ZT_EQ_INT(ZL_OK, zl_tx_fees_eip1559(&o, 10 * GWEI, NULL, 0, &f, err, sizeof(err)));
    ZT_EQ_INT(1 * GWEI, f.priority_fee_wei);
    const uint64_t big[] = {90 * GWEI};
    ZT_EQ_INT(ZL_OK, zl_tx_fees_eip1559(&o, 10 * GWEI, big, 1, &f, err, sizeof(err)));
    ZT_EQ_INT(10 * GWEI, f.priority_fee_wei);
    /* 2 x base + tip above the cap: the cap */
    ZT_EQ_INT(ZL_OK, zl_tx_fees_eip1559(&o, 60 * GWEI, tips, 5, &f, err, sizeof(err)));
    ZT_EQ_INT(100 * GWEI, f.max_fee_wei);
}

ZT_TEST(test_fees_above_the_cap_wait)
{
    struct zl_txmgr_opts o = fee_opts();
    struct zl_tx_fees f;
    char err[ZL_ERRSTR_SIZE] = "";
    const uint64_t tips[] = {2 * GWEI};
    ZT_EQ_INT(ZL_DEFER, zl_tx_fees_eip1559(&o, 99 * GWEI, tips, 1, &f, err, sizeof(err)));
    ZT_CHECK(strstr(err, "waiting for fees to fall") != NULL);
}

ZT_TEST(test_a_bump_raises_both_fees_by_the_percentage_and_at_least_one_wei)
{
    ZT_EQ_INT(115, zl_tx_fee_bumped(100, 15));
    ZT_EQ_INT(6, zl_tx_fee_bumped(5, 10)); /* 5 x 10% rounds to 0: one wei more still */
    ZT_EQ_INT(1, zl_tx_fee_bumped(0, 15));
    struct zl_txmgr_opts o = fee_opts();
    struct zl_nonce_tx slot;
    memset(&slot, 0, sizeof(slot));
    slot.tx_type = ZL_TX_EIP1559;
    slot.max_fee_wei = 20 * GWEI;
    slot.priority_fee_wei = 2 * GWEI;
    struct zl_tx_fees f;
    char err[ZL_ERRSTR_SIZE] = "";
    ZT_EQ_INT(ZL_OK, zl_tx_fees_replacement(&o, &slot, &f, err, sizeof(err)));
    ZT_EQ_INT(23 * GWEI, f.max_fee_wei);
    ZT_EQ_INT(2300000000, f.priority_fee_wei);
    /* legacy: the gas price alone, tip stays 0 -> 1 wei but never above the price */
    slot.tx_type = ZL_TX_LEGACY;
    slot.priority_fee_wei = 0;
    ZT_EQ_INT(ZL_OK, zl_tx_fees_replacement(&o, &slot, &f, err, sizeof(err)));
    ZT_EQ_INT(ZL_TX_LEGACY, f.type);
    ZT_CHECK(f.priority_fee_wei <= f.max_fee_wei);
    /* a bump past the cap waits */
    slot.max_fee_wei = 95 * GWEI;
    ZT_EQ_INT(ZL_DEFER, zl_tx_fees_replacement(&o, &slot, &f, err, sizeof(err)));
    ZT_CHECK(strstr(err, "stuck") != NULL);
}

/* A manager with a key and a client on a port nobody listens on. */
static int offline_mgr(struct zl_txmgr *t, struct zl_secp_key *key, struct zl_rpc **rpc)
{
    char err[ZL_ERRSTR_SIZE];
    if (zl_secp_key_load(key, anvil_key0, err, sizeof(err)) != 0)
        return -1;
    struct zl_rpc_opts ro = {.urls = "http://127.0.0.1:1", .timeout_ms = 500, .quorum = 1, .name = "rpc"};
    if (zl_rpc_new(rpc, &ro, err, sizeof(err)) != 0)
        return -1;
    struct zl_txmgr_opts o = fee_opts();
    o.rpc = *rpc;
    o.key = key;
    o.chain_id = 31337;
    memset(o.contract, 0x5f, 20);
    zl_txmgr_init(t, &o);
    return 0;
}

ZT_TEST(test_a_signed_call_decodes_back_to_the_contract_and_the_record_holds_it)
{
    struct zl_txmgr t;
    struct zl_secp_key key;
    struct zl_rpc *rpc = NULL;
    ZT_REQUIRE(offline_mgr(&t, &key, &rpc) == 0);
    const uint8_t data[] = {0x63, 0x52, 0x21, 0x1e, 1, 2, 3};
    struct zl_tx_fees f = {.type = ZL_TX_EIP1559, .max_fee_wei = 3 * GWEI, .priority_fee_wei = GWEI};
    struct zl_nonce_tx rec;
    char err[ZL_ERRSTR_SIZE];
    ZT_REQUIRE(zl_txmgr_sign_call(&t, 7, &f, 90000, data, sizeof(data), "mint", &rec, err, sizeof(err)) == ZL_OK);
    ZT_EQ_STR("mint", rec.purpose);
    ZT_EQ_STR("0x5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f", rec.to_addr);
    ZT_EQ_STR("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", rec.signer);
    ZT_EQ_INT(7, rec.nonce);
    ZT_EQ_INT(31337, rec.chain_id);
    ZT_EQ_INT(GWEI, rec.priority_fee_wei);
    static uint8_t raw[ZL_TX_RAW_MAX];
    static struct zl_tx_decoded d;
    size_t len;
    ZT_REQUIRE(zl_hex_decode(rec.raw_hex, raw, sizeof(raw), &len) == 0);
    ZT_REQUIRE(zl_tx_decode(raw, len, &d, err, sizeof(err)) == 0);
    ZT_EQ_INT(7, d.tx.nonce);
    ZT_EQ_INT(90000, d.tx.gas_limit);
    ZT_EQ_INT(sizeof(data), d.tx.data_len);
    ZT_CHECK(memcmp(d.tx.to, t.o.contract, 20) == 0);
    zl_txmgr_stored(&rec);
    ZT_EQ_INT(1, rec.nhashes);
    ZT_EQ_STR(rec.tx_hash, rec.hashes[0]);
    ZT_EQ_INT(-1, rec.receipt_status);
    zl_nonce_tx_clear(&rec);
    zl_rpc_free(rpc);
    zl_secp_key_free(&key);
}

ZT_TEST(test_a_broadcast_no_node_answered_is_retry_with_the_rpc_class)
{
    struct zl_txmgr t;
    struct zl_secp_key key;
    struct zl_rpc *rpc = NULL;
    ZT_REQUIRE(offline_mgr(&t, &key, &rpc) == 0);
    struct zl_nonce_tx slot;
    memset(&slot, 0, sizeof(slot));
    slot.raw_hex = "0x02";
    zl_class c = ZL_OK;
    char err[ZL_ERRSTR_SIZE] = "";
    ZT_EQ_INT(ZL_TX_RETRY, zl_txmgr_broadcast(&t, &slot, &c, err, sizeof(err)));
    ZT_EQ_INT(ZL_OUTAGE, c); /* the only endpoint is down */
    zl_rpc_free(rpc);
    zl_secp_key_free(&key);
}

ZT_MAIN(test_each_node_answer_reads_into_its_reason, test_revert_is_matched_in_data_nested_data_or_message,
        test_eip1559_fees_take_the_median_tip_within_floor_and_cap, test_fees_above_the_cap_wait,
        test_a_bump_raises_both_fees_by_the_percentage_and_at_least_one_wei,
        test_a_signed_call_decodes_back_to_the_contract_and_the_record_holds_it,
        test_a_broadcast_no_node_answered_is_retry_with_the_rpc_class)
