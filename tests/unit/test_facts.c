/* Unit tests for common/facts.c: which fields a message must agree on with
 * its state row, how the first difference is named, and what apply copies. */
#include <string.h>

#include "facts.h"
#include "zltest.h"

#define TX "0x" "1111111111111111111111111111111111111111111111111111111111111111"
#define CID "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"

/* A row in state minted and a nft.minted message that agrees with it. */
static void agreeing(struct zl_facts *f, struct zl_event *ev)
{
    memset(f, 0, sizeof(*f));
    f->chain_id = 31337;
    snprintf(f->tx_hash, sizeof(f->tx_hash), "%s", TX);
    f->log_index = 3;
    snprintf(f->token, sizeof(f->token), "0xaAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    snprintf(f->from, sizeof(f->from), "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    snprintf(f->to, sizeof(f->to), "0xcccccccccccccccccccccccccccccccccccccccc");
    snprintf(f->user_id, sizeof(f->user_id), "alice");
    snprintf(f->amount, sizeof(f->amount), "100");
    snprintf(f->metadata_cid, sizeof(f->metadata_cid), "%s", CID);
    snprintf(f->token_uri, sizeof(f->token_uri), "ipfs://%s", CID);
    snprintf(f->nft_contract, sizeof(f->nft_contract), "0xdddddddddddddddddddddddddddddddddddddddd");
    snprintf(f->token_id, sizeof(f->token_id), "42");
    snprintf(f->mint_tx_hash, sizeof(f->mint_tx_hash), "0x%064d", 7);

    zl_event_init(ev, ZL_TOPIC_MINTED);
    ev->chain_id = f->chain_id;
    memcpy(ev->tx_hash, f->tx_hash, sizeof(ev->tx_hash));
    ev->log_index = f->log_index;
    snprintf(ev->token, sizeof(ev->token), "0xAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"); /* case differs only */
    memcpy(ev->from, f->from, sizeof(ev->from));
    memcpy(ev->to, f->to, sizeof(ev->to));
    memcpy(ev->user_id, f->user_id, sizeof(ev->user_id));
    memcpy(ev->amount, f->amount, sizeof(ev->amount));
    memcpy(ev->metadata_cid, f->metadata_cid, sizeof(ev->metadata_cid));
    memcpy(ev->token_uri, f->token_uri, sizeof(ev->token_uri));
    memcpy(ev->nft_contract, f->nft_contract, sizeof(ev->nft_contract));
    memcpy(ev->token_id, f->token_id, sizeof(ev->token_id));
    memcpy(ev->mint_tx_hash, f->mint_tx_hash, sizeof(ev->mint_tx_hash));
    ev->block_number = 9;
    snprintf(ev->block_hash, sizeof(ev->block_hash), "0x%064d", 9);
}

ZT_TEST(test_an_agreeing_message_passes_and_addresses_compare_without_case)
{
    struct zl_facts f;
    struct zl_event ev;
    agreeing(&f, &ev);
    char field[ZL_FACTS_FIELD_SIZE] = "", why[256] = "";
    ZT_EQ_INT(0, zl_facts_compare(&f, &ev, field, why, sizeof(why)));
    ZT_EQ_STR("", field);
}

ZT_TEST(test_the_first_differing_field_is_named_with_both_values)
{
    struct zl_facts f;
    struct zl_event ev;
    agreeing(&f, &ev);
    snprintf(ev.amount, sizeof(ev.amount), "101");
    snprintf(ev.user_id, sizeof(ev.user_id), "mallory"); /* user_id is compared before amount */
    char field[ZL_FACTS_FIELD_SIZE], why[256];
    ZT_EQ_INT(-1, zl_facts_compare(&f, &ev, field, why, sizeof(why)));
    ZT_EQ_STR("user_id", field);
    ZT_EQ_STR("field user_id differs: message says mallory, the row says alice", why);
    agreeing(&f, &ev);
    snprintf(ev.amount, sizeof(ev.amount), "101");
    ZT_EQ_INT(-1, zl_facts_compare(&f, &ev, NULL, why, sizeof(why)));
    ZT_EQ_STR("field amount differs: message says 101, the row says 100", why);
}

ZT_TEST(test_every_compared_fact_is_checked)
{
    static const char *const names[] = {"chain_id", "log_index", "tx_hash", "from", "to",
                                        "metadata_cid", "token_uri", "nft_contract", "token_id", "mint_tx_hash",
                                        "token"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct zl_facts f;
        struct zl_event ev;
        agreeing(&f, &ev);
        switch (i) {
        case 0: ev.chain_id = 1; break;
        case 1: ev.log_index = 4; break;
        case 2: ev.tx_hash[5] = '2'; break;
        case 3: ev.from[5] = 'e'; break;
        case 4: ev.to[5] = 'e'; break;
        case 5: ev.metadata_cid[5] = 'z'; break;
        case 6: ev.token_uri[10] = 'z'; break;
        case 7: ev.nft_contract[5] = 'e'; break;
        case 8: snprintf(ev.token_id, sizeof(ev.token_id), "43"); break;
        case 9: ev.mint_tx_hash[5] = '8'; break;
        default: ev.token[5] = 'e'; break;
        }
        char field[ZL_FACTS_FIELD_SIZE] = "", why[512];
        ZT_EQ_INT(-1, zl_facts_compare(&f, &ev, field, why, sizeof(why)));
        ZT_EQ_STR(names[i], field);
    }
}

ZT_TEST(test_block_fields_and_results_the_row_lacks_or_the_kind_lacks_are_not_compared)
{
    struct zl_facts f;
    struct zl_event ev;
    agreeing(&f, &ev);
    /* a reorg moves the row's block; an old event still names the old one */
    ev.block_number = 1000;
    ev.block_hash[3] = 'f';
    char why[256];
    ZT_EQ_INT(0, zl_facts_compare(&f, &ev, NULL, why, sizeof(why)));
    /* a row not yet minted holds no mint results: nothing to disagree with */
    f.mint_tx_hash[0] = f.token_id[0] = f.nft_contract[0] = '\0';
    ZT_EQ_INT(0, zl_facts_compare(&f, &ev, NULL, why, sizeof(why)));
    /* a detected event carries no stage results, whatever the row holds */
    agreeing(&f, &ev);
    ev.kind = ZL_TOPIC_DETECTED;
    ev.metadata_cid[5] = 'z';
    ev.token_id[0] = '9';
    ZT_EQ_INT(0, zl_facts_compare(&f, &ev, NULL, why, sizeof(why)));
}

ZT_TEST(test_apply_makes_the_event_say_what_the_row_says)
{
    struct zl_facts f;
    struct zl_event ev;
    agreeing(&f, &ev);
    f.mint_tx_hash[0] = '\0'; /* not held: the event's stays */
    char held[ZL_HASH_HEX_SIZE];
    memcpy(held, ev.mint_tx_hash, sizeof(held));
    zl_facts_apply(&f, &ev);
    ZT_EQ_STR(f.token, ev.token); /* the row's spelling */
    ZT_EQ_STR(held, ev.mint_tx_hash);
    char why[256];
    ZT_EQ_INT(0, zl_facts_compare(&f, &ev, NULL, why, sizeof(why)));
    /* a detected event gets no stage results */
    agreeing(&f, &ev);
    ev.kind = ZL_TOPIC_DETECTED;
    ev.token_id[0] = '\0';
    zl_facts_apply(&f, &ev);
    ZT_EQ_STR("", ev.token_id);
}

ZT_MAIN(test_an_agreeing_message_passes_and_addresses_compare_without_case,
        test_the_first_differing_field_is_named_with_both_values, test_every_compared_fact_is_checked,
        test_block_fields_and_results_the_row_lacks_or_the_kind_lacks_are_not_compared,
        test_apply_makes_the_event_say_what_the_row_says)
