/* The NFT metadata document is canonical: the same deposit always gives the
 * same bytes (so the same CID), whatever event carried it. */
#include <jansson.h>
#include <string.h>

#include "cid.h"
#include "envelope.h"
#include "nftmeta.h"
#include "zltest.h"

#define IMAGE_CID "bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa"

static void verified_event(struct zl_event *ev)
{
    zl_event_init(ev, ZL_TOPIC_VERIFIED);
    ev->chain_id = 31337;
    snprintf(ev->tx_hash, sizeof(ev->tx_hash), "0x%s", "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12");
    ev->log_index = 3;
    ZT_REQUIRE(zl_deposit_id_format(ev->deposit_id, sizeof(ev->deposit_id), ev->chain_id, ev->tx_hash,
                                    ev->log_index) == 0);
    ev->block_number = 100;
    snprintf(ev->block_hash, sizeof(ev->block_hash), "0x%064d", 7);
    snprintf(ev->token, sizeof(ev->token), "0x55d398326F99059fF775485246999027B3197955");
    snprintf(ev->from, sizeof(ev->from), "0x%040d", 2);
    snprintf(ev->to, sizeof(ev->to), "0x%040d", 3);
    snprintf(ev->user_id, sizeof(ev->user_id), "user-1");
    snprintf(ev->amount, sizeof(ev->amount), "1500000000000000000");
    ev->confirmations = 15;
}

static const struct zl_nftmeta_opts opts = {
    .name_prefix = "zeroloss deposit receipt",
    .description = "Receipt \"for\" a deposit\n",
    .external_url = "https://example.com/d/{deposit_id}",
    .image_cid = IMAGE_CID,
};

ZT_TEST(test_metadata_has_fixed_key_order_and_exact_bytes)
{
    struct zl_event ev;
    verified_event(&ev);
    char buf[ZL_NFTMETA_MAX_BYTES], err[256];
    size_t len = 0;
    ZT_REQUIRE(zl_nftmeta_build(&ev, &opts, buf, sizeof(buf), &len, err, sizeof(err)) == 0);
    const char *want =
        "{\"name\":\"zeroloss deposit receipt "
        "31337:0xab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12:3\","
        "\"description\":\"Receipt \\\"for\\\" a deposit\\n\","
        "\"image\":\"ipfs://" IMAGE_CID "\","
        "\"attributes\":[{\"trait_type\":\"amount\",\"value\":\"1500000000000000000\"},"
        "{\"trait_type\":\"token\",\"value\":\"0x55d398326f99059ff775485246999027b3197955\"},"
        "{\"trait_type\":\"chain\",\"value\":\"31337\"},"
        "{\"trait_type\":\"deposit tx\",\"value\":\"0xab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12\"},"
        "{\"trait_type\":\"log index\",\"value\":\"3\"}],"
        "\"external_url\":\"https://example.com/d/"
        "31337:0xab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12:3\"}";
    ZT_EQ_STR(want, buf);
    ZT_EQ_INT((int)strlen(want), (int)len);
    json_error_t jerr;
    json_t *j = json_loads(buf, JSON_REJECT_DUPLICATES, &jerr);
    ZT_CHECK(j != NULL); /* valid JSON */
    json_decref(j);
}

/* A Solana deposit (issue 22): the cluster for the chain, the instruction
 * for the log index, and base58 keys kept in their case. */
ZT_TEST(test_solana_metadata_names_cluster_and_instruction_and_keeps_key_case)
{
    struct zl_event ev;
    verified_event(&ev);
    ev.chain_id = 0;
    ev.log_index = 0;
    ev.block_hash[0] = '\0';
    snprintf(ev.chain, sizeof(ev.chain), "localnet");
    snprintf(ev.tx_hash, sizeof(ev.tx_hash),
             "2RF3ugPdKMojzm2TzjYTL5x8zvFuUMQcJyK3utdX5Z7hRKmcKZjRR76nznazgtcFwr1r2os67PN1CXHF6eHNass7");
    snprintf(ev.instruction, sizeof(ev.instruction), "2.0");
    snprintf(ev.token, sizeof(ev.token), "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB");
    snprintf(ev.from, sizeof(ev.from), "2skA1F74tmpvHhp2HCixEPqW2EpaLonyYWosP13KfRSv");
    snprintf(ev.to, sizeof(ev.to), "4YnWN1JmDyMbDeeRYnpm1rWVeaDsgZvC7WuowGHv7zSy");
    ZT_REQUIRE(zl_sol_deposit_id_format(ev.deposit_id, sizeof(ev.deposit_id), ev.chain, ev.tx_hash,
                                        ev.instruction) == 0);
    char buf[ZL_NFTMETA_MAX_BYTES], err[256];
    size_t len = 0;
    int rc = zl_nftmeta_build(&ev, &opts, buf, sizeof(buf), &len, err, sizeof(err));
    if (rc != 0)
        ZT_FAIL_AT("%s", err);
    ZT_REQUIRE(rc == 0);
    const char *want_attrs =
        "\"attributes\":[{\"trait_type\":\"amount\",\"value\":\"1500000000000000000\"},"
        "{\"trait_type\":\"token\",\"value\":\"Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB\"},"
        "{\"trait_type\":\"chain\",\"value\":\"localnet\"},"
        "{\"trait_type\":\"deposit tx\",\"value\":"
        "\"2RF3ugPdKMojzm2TzjYTL5x8zvFuUMQcJyK3utdX5Z7hRKmcKZjRR76nznazgtcFwr1r2os67PN1CXHF6eHNass7\"},"
        "{\"trait_type\":\"instruction\",\"value\":\"2.0\"}]";
    ZT_CHECK(strstr(buf, want_attrs) != NULL);
    if (strstr(buf, want_attrs) == NULL)
        ZT_FAIL_AT("got %s", buf);
}

ZT_TEST(test_same_deposit_in_another_event_gives_the_same_bytes_and_cid)
{
    /* A redelivery or a replay carries a new event_id and occurred_at, and
     * the token may be spelled in another case: none of it may change the CID. */
    struct zl_event a, b;
    verified_event(&a);
    verified_event(&b);
    ZT_CHECK(strcmp(a.event_id, b.event_id) != 0);
    snprintf(b.occurred_at, sizeof(b.occurred_at), "2030-01-01T00:00:00Z");
    snprintf(b.token, sizeof(b.token), "0x55D398326F99059FF775485246999027B3197955");
    b.confirmations = 99;
    char ba[ZL_NFTMETA_MAX_BYTES], bb[ZL_NFTMETA_MAX_BYTES], err[256];
    size_t la = 0, lb = 0;
    ZT_REQUIRE(zl_nftmeta_build(&a, &opts, ba, sizeof(ba), &la, err, sizeof(err)) == 0);
    ZT_REQUIRE(zl_nftmeta_build(&b, &opts, bb, sizeof(bb), &lb, err, sizeof(err)) == 0);
    ZT_EQ_STR(ba, bb);
    char ca[ZL_CID_SIZE], cb[ZL_CID_SIZE];
    ZT_REQUIRE(zl_cid_raw_v1(ba, la, ca, sizeof(ca), err, sizeof(err)) == 0);
    ZT_REQUIRE(zl_cid_raw_v1(bb, lb, cb, sizeof(cb), err, sizeof(err)) == 0);
    ZT_EQ_STR(ca, cb);
}

ZT_TEST(test_different_deposits_give_different_cids)
{
    struct zl_event a, b;
    verified_event(&a);
    verified_event(&b);
    b.log_index = 4;
    ZT_REQUIRE(zl_deposit_id_format(b.deposit_id, sizeof(b.deposit_id), b.chain_id, b.tx_hash, b.log_index) == 0);
    char ba[ZL_NFTMETA_MAX_BYTES], bb[ZL_NFTMETA_MAX_BYTES], err[256];
    size_t la = 0, lb = 0;
    ZT_REQUIRE(zl_nftmeta_build(&a, &opts, ba, sizeof(ba), &la, err, sizeof(err)) == 0);
    ZT_REQUIRE(zl_nftmeta_build(&b, &opts, bb, sizeof(bb), &lb, err, sizeof(err)) == 0);
    ZT_CHECK(strcmp(ba, bb) != 0);
}

ZT_TEST(test_no_external_url_key_when_not_configured)
{
    struct zl_event ev;
    verified_event(&ev);
    struct zl_nftmeta_opts o = opts;
    o.external_url = "";
    char buf[ZL_NFTMETA_MAX_BYTES], err[256];
    size_t len = 0;
    ZT_REQUIRE(zl_nftmeta_build(&ev, &o, buf, sizeof(buf), &len, err, sizeof(err)) == 0);
    ZT_CHECK(strstr(buf, "external_url") == NULL);
    ZT_CHECK(buf[len - 1] == '}' && buf[len - 2] == ']');
}

ZT_TEST(test_control_characters_are_escaped_as_u00xx)
{
    struct zl_event ev;
    verified_event(&ev);
    struct zl_nftmeta_opts o = opts;
    o.description = "a\x01" "b\tc";
    char buf[ZL_NFTMETA_MAX_BYTES], err[256];
    size_t len = 0;
    ZT_REQUIRE(zl_nftmeta_build(&ev, &o, buf, sizeof(buf), &len, err, sizeof(err)) == 0);
    ZT_CHECK(strstr(buf, "\"description\":\"a\\u0001b\\tc\"") != NULL);
}

ZT_TEST(test_refuses_bad_options_and_small_buffers)
{
    struct zl_event ev;
    verified_event(&ev);
    char buf[ZL_NFTMETA_MAX_BYTES], err[256];
    size_t len = 0;
    struct zl_nftmeta_opts o = opts;
    o.image_cid = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";
    ZT_EQ_INT(-1, zl_nftmeta_build(&ev, &o, buf, sizeof(buf), &len, err, sizeof(err)));
    ZT_CHECK(strstr(err, "image") != NULL);
    o = opts;
    o.description = "bad \xff utf-8";
    ZT_EQ_INT(-1, zl_nftmeta_build(&ev, &o, buf, sizeof(buf), &len, err, sizeof(err)));
    ZT_CHECK(strstr(err, "UTF-8") != NULL);
    ZT_EQ_INT(-1, zl_nftmeta_build(&ev, &opts, buf, 100, &len, err, sizeof(err)));
    ZT_EQ_STR("", buf);
    struct zl_event detected;
    zl_event_derive(&detected, &ev, ZL_TOPIC_DETECTED);
    ZT_EQ_INT(-1, zl_nftmeta_build(&detected, &opts, buf, sizeof(buf), &len, err, sizeof(err)));
}

ZT_MAIN(test_metadata_has_fixed_key_order_and_exact_bytes, test_solana_metadata_names_cluster_and_instruction_and_keeps_key_case, test_same_deposit_in_another_event_gives_the_same_bytes_and_cid,
        test_different_deposits_give_different_cids, test_no_external_url_key_when_not_configured,
        test_control_characters_are_escaped_as_u00xx, test_refuses_bad_options_and_small_buffers)
