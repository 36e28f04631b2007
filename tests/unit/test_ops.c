/* Unit tests of the operations modules' pure parts: replay filters, header
 * rewriting, time and rate parsing, the replay target; the sweeper's row -> event; the admin
 * token check and rate limiter. */
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "kafka.h"
#include "replay.h"
#include "state.h"
#include "sweep.h"
#include "zltest.h"

ZT_TEST(filter_matches_only_what_was_asked)
{
    struct zl_replay_filter f = {0};
    ZT_CHECK(zl_replay_filter_match(&f, "k", "permanent", "mint", -1));
    f.deposit_id = "k";
    ZT_CHECK(zl_replay_filter_match(&f, "k", "", "", -1));
    ZT_CHECK(!zl_replay_filter_match(&f, "k2", "", "", -1));
    f.error_class = "transient";
    ZT_CHECK(!zl_replay_filter_match(&f, "k", "permanent", "", -1));
    f.error_class = NULL;
    f.stage = "mint";
    ZT_CHECK(!zl_replay_filter_match(&f, "k", "", "verify", -1));
    f.stage = NULL;
    f.since_ms = 1000;
    f.until_ms = 2000;
    ZT_CHECK(zl_replay_filter_match(&f, "k", "", "", 1000));
    ZT_CHECK(!zl_replay_filter_match(&f, "k", "", "", 2000));
    ZT_CHECK(!zl_replay_filter_match(&f, "k", "", "", 999));
    ZT_CHECK(!zl_replay_filter_match(&f, "k", "", "", -1)); /* unreadable time never passes a time filter */
}

ZT_TEST(rfc3339_parses_utc_offsets_and_fractions)
{
    int64_t ms = 0;
    ZT_REQUIRE(zl_rfc3339_parse_ms("1970-01-01T00:00:01Z", &ms) == 0);
    ZT_EQ_INT(1000, ms);
    ZT_REQUIRE(zl_rfc3339_parse_ms("1970-01-01T00:00:01.5Z", &ms) == 0);
    ZT_EQ_INT(1500, ms);
    ZT_REQUIRE(zl_rfc3339_parse_ms("1970-01-01T01:00:00.123456+01:00", &ms) == 0);
    ZT_EQ_INT(123, ms);
    ZT_CHECK(zl_rfc3339_parse_ms("1970-01-01 00:00:00", &ms) != 0);
    ZT_CHECK(zl_rfc3339_parse_ms("2026-13-01T00:00:00Z", &ms) != 0);
    ZT_CHECK(zl_rfc3339_parse_ms("2026-01-01T00:00:00Zjunk", &ms) != 0);
    ZT_CHECK(zl_rfc3339_parse_ms("", &ms) != 0);
}

ZT_TEST(rate_parses_per_second_and_per_minute)
{
    double r = 0;
    ZT_REQUIRE(zl_replay_parse_rate("10/s", &r) == 0);
    ZT_CHECK(r == 10.0);
    ZT_REQUIRE(zl_replay_parse_rate("120/m", &r) == 0);
    ZT_CHECK(r == 2.0);
    ZT_REQUIRE(zl_replay_parse_rate("2.5", &r) == 0);
    ZT_CHECK(r == 2.5);
    ZT_CHECK(zl_replay_parse_rate("0", &r) != 0);
    ZT_CHECK(zl_replay_parse_rate("-1/s", &r) != 0);
    ZT_CHECK(zl_replay_parse_rate("5/h", &r) != 0);
}

static const char *hget(rd_kafka_headers_t *h, const char *name, char *buf, size_t size)
{
    const void *v;
    size_t len;
    if (rd_kafka_header_get_last(h, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR || len >= size)
        return NULL;
    memcpy(buf, v, len);
    buf[len] = '\0';
    return buf;
}

ZT_TEST(replay_headers_drop_retry_and_dlq_state_and_raise_the_count)
{
    rd_kafka_headers_t *src = rd_kafka_headers_new(16);
    const char *kv[][2] = {{"traceparent", "00-abc-def-01"}, {"zl-attempt", "3"}, {"zl-defers", "2"},
                           {"zl-retry-due-at", "1"}, {"zl-retry-tier", "1"}, {"zl-origin-topic", "zl.x"},
                           {"zl-dlq-error", "boom"}, {"zl-dlq-replay-count", "1"}, {"zl-last-error", "e"},
                           {"custom", "kept"}};
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        rd_kafka_header_add(src, kv[i][0], -1, kv[i][1], -1);
    rd_kafka_headers_t *h = zl_replay_headers(src, 2, "zl.mint.dlq", 1, 42);
    ZT_REQUIRE(h != NULL);
    char b[128];
    ZT_EQ_STR("00-abc-def-01", hget(h, "traceparent", b, sizeof(b)));
    ZT_EQ_STR("kept", hget(h, "custom", b, sizeof(b)));
    ZT_EQ_STR("0", hget(h, "zl-attempt", b, sizeof(b)));
    ZT_EQ_STR("2", hget(h, "zl-dlq-replay-count", b, sizeof(b)));
    ZT_EQ_STR("zl.mint.dlq/1/42", hget(h, "zl-replayed-from", b, sizeof(b)));
    ZT_CHECK(hget(h, "zl-defers", b, sizeof(b)) == NULL);
    ZT_CHECK(hget(h, "zl-retry-due-at", b, sizeof(b)) == NULL);
    ZT_CHECK(hget(h, "zl-origin-topic", b, sizeof(b)) == NULL);
    ZT_CHECK(hget(h, "zl-dlq-error", b, sizeof(b)) == NULL);
    ZT_CHECK(hget(h, "zl-last-error", b, sizeof(b)) == NULL);
    ZT_EQ_INT(5, (int)rd_kafka_header_cnt(h)); /* traceparent, custom + the three set */
    rd_kafka_headers_destroy(h);
    rd_kafka_headers_destroy(src);
}

ZT_TEST(replay_target_is_the_dlq_stage_s_input_from_the_topic_name_alone)
{
    char t[ZL_TOPIC_NAME_MAX], err[256];
    zl_topic_kind k = ZL_TOPIC_ANY;
    ZT_REQUIRE(zl_replay_target("zl.", "zl.verify.dlq", "", t, sizeof(t), &k, err, sizeof(err)) == 0);
    ZT_EQ_STR("zl.deposits.detected", t);
    ZT_EQ_INT(ZL_TOPIC_DETECTED, (int)k);
    ZT_REQUIRE(zl_replay_target("zl.", "zl.ipfs-upload.dlq", NULL, t, sizeof(t), &k, err, sizeof(err)) == 0);
    ZT_EQ_STR("zl.deposits.verified", t);
    ZT_REQUIRE(zl_replay_target("p.", "p.mint.dlq", "", t, sizeof(t), &k, err, sizeof(err)) == 0);
    ZT_EQ_STR("p.nft.pinned", t);
    ZT_REQUIRE(zl_replay_target("zl.", "zl.credit.dlq", "", t, sizeof(t), &k, err, sizeof(err)) == 0);
    ZT_EQ_STR("zl.nft.minted", t);
    ZT_EQ_INT(ZL_TOPIC_MINTED, (int)k);
    /* detect reads no topic; an unknown stage, another prefix, not a DLQ: no target. */
    ZT_CHECK(zl_replay_target("zl.", "zl.detect.dlq", "", t, sizeof(t), &k, err, sizeof(err)) != 0);
    ZT_CHECK(zl_replay_target("zl.", "zl.other.dlq", "", t, sizeof(t), &k, err, sizeof(err)) != 0);
    ZT_CHECK(zl_replay_target("zl.", "x.verify.dlq", "", t, sizeof(t), &k, err, sizeof(err)) != 0);
    ZT_CHECK(zl_replay_target("zl.", "zl.nft.pinned", "", t, sizeof(t), &k, err, sizeof(err)) != 0);
    ZT_CHECK(zl_replay_target("zl.", "zl..dlq", "", t, sizeof(t), &k, err, sizeof(err)) != 0);
    /* The stage's own ZL_IN_TOPIC moves its replays with it. */
    ZT_REQUIRE(zl_replay_target("zl.", "zl.other.dlq", "alt.nft.pinned", t, sizeof(t), &k, err, sizeof(err)) == 0);
    ZT_EQ_STR("alt.nft.pinned", t);
    ZT_EQ_INT(ZL_TOPIC_PINNED, (int)k);
}

ZT_TEST(sweep_rebuilds_each_state_s_event_and_skips_terminal_rows)
{
    const char *tx = "0x" "1111111111111111111111111111111111111111111111111111111111111111";
    const char *bh = "0x" "2222222222222222222222222222222222222222222222222222222222222222";
    char id[128];
    snprintf(id, sizeof(id), "31337:%s:0", tx);
    const char *cols[ZL_SWEEP_ROW_COLS] = {
        id, "31337", tx, "0", "100", bh, "0x1111111111111111111111111111111111111111",
        "0x2222222222222222222222222222222222222222", "0x3333333333333333333333333333333333333333", "u1",
        "1000", "detected", "0", "", "", "", "", ""};
    struct zl_event ev;
    char err[256];
    ZT_REQUIRE(zl_sweep_event_from_row(cols, &ev, err, sizeof(err)) == 0);
    ZT_EQ_INT(ZL_TOPIC_DETECTED, ev.kind);
    ZT_EQ_STR(id, ev.deposit_id);
    cols[11] = "mint_submitted";
    cols[12] = "12";
    cols[13] = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
    cols[14] = "ipfs://bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
    ZT_REQUIRE(zl_sweep_event_from_row(cols, &ev, err, sizeof(err)) == 0);
    ZT_EQ_INT(ZL_TOPIC_PINNED, ev.kind);
    ZT_EQ_INT(12, (int)ev.confirmations);
    cols[11] = "minted"; /* no mint fields: not a valid minted event */
    ZT_CHECK(zl_sweep_event_from_row(cols, &ev, err, sizeof(err)) == -1);
    const char *terminal[] = {"credited", "reorged", "dead", "below_minimum"};
    for (int i = 0; i < 4; i++) {
        cols[11] = terminal[i];
        ZT_EQ_INT(1, zl_sweep_event_from_row(cols, &ev, err, sizeof(err)));
    }
    cols[11] = "detected";
    cols[1] = "-5";
    ZT_EQ_INT(-1, zl_sweep_event_from_row(cols, &ev, err, sizeof(err)));
}

/* A Solana row (issue 22): no chain_id, log_index or block_hash; the
 * cluster and instruction come from its id. */
ZT_TEST(sweep_rebuilds_a_solana_row_s_event_in_its_family)
{
    const char *sig = "2RF3ugPdKMojzm2TzjYTL5x8zvFuUMQcJyK3utdX5Z7hRKmcKZjRR76nznazgtcFwr1r2os67PN1CXHF6eHNass7";
    char id[160];
    snprintf(id, sizeof(id), "localnet:%s:2.1", sig);
    const char *cols[ZL_SWEEP_ROW_COLS] = {
        id, NULL, sig, NULL, "4242", NULL, "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB",
        "2skA1F74tmpvHhp2HCixEPqW2EpaLonyYWosP13KfRSv", "4YnWN1JmDyMbDeeRYnpm1rWVeaDsgZvC7WuowGHv7zSy", "u1",
        "1000", "verified", "31", "", "", "", "", ""};
    struct zl_event ev;
    char err[256];
    int rc = zl_sweep_event_from_row(cols, &ev, err, sizeof(err));
    if (rc != 0)
        ZT_FAIL_AT("%s", err);
    ZT_REQUIRE(rc == 0);
    ZT_EQ_INT(ZL_TOPIC_VERIFIED, ev.kind);
    ZT_CHECK(zl_event_is_solana(&ev));
    ZT_EQ_STR("localnet", ev.chain);
    ZT_EQ_STR("2.1", ev.instruction);
    ZT_EQ_INT(0, (int)ev.chain_id);
    ZT_EQ_STR("", ev.block_hash);
    /* A row whose signature is not its id's is refused, never published. */
    cols[2] = "3nNZ8RkXbKTp8qsDmPUhcLWM2Cf9WwEhx4nRwuVhQmJJi8PaVXQqBw4p2ktPZhn8zGm7yTzBXHHs7X5pR3C7Cs2S";
    ZT_EQ_INT(-1, zl_sweep_event_from_row(cols, &ev, err, sizeof(err)));
    cols[2] = sig;
    cols[0] = "localnet:notasignature:2";
    ZT_EQ_INT(-1, zl_sweep_event_from_row(cols, &ev, err, sizeof(err)));
}

ZT_TEST(below_minimum_is_a_side_state_off_the_main_path)
{
    zl_state s = ZL_STATE_UNKNOWN;
    ZT_REQUIRE(zl_state_parse("below_minimum", &s) == 0);
    ZT_EQ_INT(ZL_STATE_BELOW_MINIMUM, s);
    ZT_EQ_STR("below_minimum", zl_state_name(s));
    ZT_EQ_INT(0, zl_state_rank(s)); /* never "past" a stage: nothing is re-published for it */
    ZT_CHECK(zl_state_off_path(s) && zl_state_off_path(ZL_STATE_REORGED) && zl_state_off_path(ZL_STATE_DEAD));
    ZT_CHECK(!zl_state_off_path(ZL_STATE_DETECTED) && !zl_state_off_path(ZL_STATE_CREDITED));
}

ZT_TEST(sweep_lock_keys_differ_per_deployment_and_chain)
{
    int64_t a = zl_sweep_lock_key("zl.", 56), b = zl_sweep_lock_key("zl.", 1), c = zl_sweep_lock_key("t.", 56);
    ZT_CHECK(a != b && a != c);
    ZT_CHECK(a == zl_sweep_lock_key("zl.", 56));
    ZT_EQ_INT(0x7a6c7377, (int)(a & 0xffffffff));
}

ZT_TEST(admin_token_must_match_exactly_with_the_bearer_scheme)
{
    const char *tok = "0123456789abcdef-secret";
    ZT_CHECK(zl_admin_auth_ok("Bearer 0123456789abcdef-secret", tok));
    ZT_CHECK(!zl_admin_auth_ok("Bearer 0123456789abcdef-secreT", tok));
    ZT_CHECK(!zl_admin_auth_ok("Bearer 0123456789abcdef-secret ", tok));
    ZT_CHECK(!zl_admin_auth_ok("0123456789abcdef-secret", tok));
    ZT_CHECK(!zl_admin_auth_ok("Basic 0123456789abcdef-secret", tok));
    ZT_CHECK(!zl_admin_auth_ok(NULL, tok));
    ZT_CHECK(!zl_admin_auth_ok("Bearer ", ""));
}

ZT_TEST(token_bucket_allows_a_burst_then_the_rate)
{
    struct zl_token_bucket b;
    zl_token_bucket_init(&b, 2.0, 3.0, 0);
    ZT_EQ_INT(0, (int)zl_token_bucket_take(&b, 0));
    ZT_EQ_INT(0, (int)zl_token_bucket_take(&b, 0));
    ZT_EQ_INT(0, (int)zl_token_bucket_take(&b, 0));
    int64_t wait = zl_token_bucket_take(&b, 0);
    ZT_CHECK(wait > 0 && wait <= 501);
    ZT_EQ_INT(0, (int)zl_token_bucket_take(&b, 500));
    ZT_CHECK(zl_token_bucket_take(&b, 500) > 0);
    ZT_EQ_INT(0, (int)zl_token_bucket_take(&b, 100000)); /* refills, capped at the burst */
    ZT_EQ_INT(0, (int)zl_token_bucket_take(&b, 100000));
    ZT_EQ_INT(0, (int)zl_token_bucket_take(&b, 100000));
    ZT_CHECK(zl_token_bucket_take(&b, 100000) > 0);
}

ZT_MAIN(filter_matches_only_what_was_asked, rfc3339_parses_utc_offsets_and_fractions,
        rate_parses_per_second_and_per_minute, replay_headers_drop_retry_and_dlq_state_and_raise_the_count,
        replay_target_is_the_dlq_stage_s_input_from_the_topic_name_alone,
        sweep_rebuilds_each_state_s_event_and_skips_terminal_rows,
        sweep_rebuilds_a_solana_row_s_event_in_its_family, below_minimum_is_a_side_state_off_the_main_path,
        sweep_lock_keys_differ_per_deployment_and_chain,
        admin_token_must_match_exactly_with_the_bearer_scheme, token_bucket_allows_a_burst_then_the_rate)
