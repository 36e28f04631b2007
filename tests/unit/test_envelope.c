/* test_envelope.c: the message envelope (common/envelope.h).
 *
 * Guards against: a stage accepting a message it cannot trust (wrong type,
 * malformed hash, a deposit_id that disagrees with its facts, duplicate
 * keys) and acting on it instead of sending it to the DLQ; two encodings of
 * the same event differing in bytes; a newer producer's extra field breaking
 * an older consumer.
 */
#include <jansson.h>
#include <stdlib.h>

#include "envelope.h"
#include "zltest.h"

#define CHECK_CONTAINS(hay, needle)                                            \
    do {                                                                       \
        const char *ct_h = (hay), *ct_n = (needle);                            \
        zt_cur.checks++;                                                       \
        if (strstr(ct_h, ct_n) == NULL)                                        \
            ZT_FAIL_AT("expected \"%s\" to contain \"%s\"", ct_h, ct_n);       \
    } while (0)

#define TX_HASH "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060"
#define BLOCK_HASH "0x1d59ff54b1eb26b013ce3cb5fc9dab3705b415a67127a003c3e61eb445bb8df2"
#define MINT_TX_HASH "0x9f2b0c0b6f1c2d4e8a7b3c5d1e0f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2d4e6f"
#define TOKEN "0x5FbDB2315678afecb367f032d93F642f64180aa3" /* mixed case, kept */
#define FROM "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
#define TO "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc"
#define NFT "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512"
#define CID "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
#define EVENT_ID "0b7e4f1c-3f9a-4c1e-9a57-2d0f6b1c8e42"
#define OCCURRED_AT "2026-11-23T09:20:00.123Z"
#define UINT256_MAX_DEC                                                        \
    "115792089237316195423570985008687907853269984665640564039457584007913129639935"

/* Copies a literal into a field, failing loudly (a test bug) if it cannot
 * fit. */
#define SET(field, value)                                                      \
    do {                                                                       \
        int set_n = snprintf((field), sizeof(field), "%s", (value));           \
        ZL_ASSERT(set_n >= 0 && (size_t)set_n < sizeof(field));                \
    } while (0)

/* A valid event of `kind` with fixed values: every field it carries set. */
static void sample(struct zl_event *ev, zl_topic_kind kind)
{
    zl_event_init(ev, kind);
    SET(ev->event_id, EVENT_ID);
    SET(ev->occurred_at, OCCURRED_AT);
    ev->chain_id = 31337;
    SET(ev->tx_hash, TX_HASH);
    ev->log_index = 3;
    ev->block_number = 17;
    SET(ev->block_hash, BLOCK_HASH);
    SET(ev->token, TOKEN);
    SET(ev->from, FROM);
    SET(ev->to, TO);
    SET(ev->user_id, "user:42");
    SET(ev->amount, "1000000000000000000");
    ZL_ASSERT(zl_deposit_id_format(ev->deposit_id, sizeof(ev->deposit_id), ev->chain_id,
                                   ev->tx_hash, ev->log_index) == 0);
    if (kind >= ZL_TOPIC_VERIFIED)
        ev->confirmations = 12;
    if (kind >= ZL_TOPIC_PINNED) {
        SET(ev->metadata_cid, CID);
        SET(ev->token_uri, "ipfs://" CID);
    }
    if (kind >= ZL_TOPIC_MINTED) {
        SET(ev->mint_tx_hash, MINT_TX_HASH);
        SET(ev->token_id, "4242");
        SET(ev->nft_contract, NFT);
    }
    if (kind >= ZL_TOPIC_CREDITED) {
        SET(ev->credit_eggs, "1000");
        SET(ev->credit_id, "7d444840-9dc0-11d1-b245-5ffdce74fad2");
        SET(ev->rate, "0.001");
    }
}

/* Encodes ev (which must be valid) into buf. */
static size_t encode_ok(const struct zl_event *ev, char *buf, size_t buf_size)
{
    char err[ZL_ERRSTR_SIZE] = "";
    size_t len = 0;
    int rc = zl_event_encode(ev, buf, buf_size, &len, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "encode failed: %s\n", err);
    ZL_ASSERT(rc == 0);
    return len;
}

/* Decodes a string with the given expected kind. */
static int decode_str(zl_topic_kind kind, const char *json, struct zl_event *out, char *err,
                      size_t err_size)
{
    err[0] = '\0';
    return zl_event_decode(kind, json, strlen(json), out, err, err_size);
}

/* Encodes `base`, then sets key to value (stolen; NULL deletes the key) and
 * decodes the result as base's kind. */
static int decode_mutated(const struct zl_event *base, const char *key, json_t *value,
                          struct zl_event *out, char *err, size_t err_size)
{
    char buf[ZL_EVENT_ENCODED_MAX_BYTES];
    encode_ok(base, buf, sizeof(buf));
    json_t *root = json_loads(buf, 0, NULL);
    ZL_ASSERT(root != NULL);
    if (value != NULL)
        ZL_ASSERT(json_object_set_new(root, key, value) == 0);
    else
        ZL_ASSERT(json_object_del(root, key) == 0);
    char *text = json_dumps(root, JSON_COMPACT);
    ZL_ASSERT(text != NULL);
    int rc = decode_str(base->kind, text, out, err, err_size);
    free(text);
    json_decref(root);
    return rc;
}

/* Expects decoding `base` with key set to value to fail with an error that
 * contains `needle`. */
static void expect_rejected(const struct zl_event *base, const char *key, json_t *value,
                            const char *needle)
{
    struct zl_event out;
    char err[ZL_ERRSTR_SIZE];
    ZT_EQ_INT(-1, decode_mutated(base, key, value, &out, err, sizeof(err)));
    CHECK_CONTAINS(err, needle);
    ZT_EQ_INT(0, out.kind); /* zeroed on failure: never half an event */
}

static void expect_string_rejected(zl_topic_kind kind, const char *key, const char *value)
{
    struct zl_event base;
    sample(&base, kind);
    char needle[64];
    snprintf(needle, sizeof(needle), "field \"%s\"", key);
    expect_rejected(&base, key, json_string(value), needle);
}

static void expect_string_accepted(zl_topic_kind kind, const char *key, const char *value,
                                   struct zl_event *out)
{
    struct zl_event base;
    sample(&base, kind);
    char err[ZL_ERRSTR_SIZE];
    int rc = decode_mutated(&base, key, json_string(value), out, err, sizeof(err));
    if (rc != 0)
        ZT_FAIL_AT("%s=\"%s\" rejected: %s", key, value, err);
    ZT_EQ_INT(0, rc);
}

/* ------------------------------------------------------------------ tests */

ZT_TEST(test_each_kind_round_trips_through_encode_and_decode)
{
    for (int k = ZL_TOPIC_KIND_FIRST; k <= ZL_TOPIC_KIND_LAST; k++) {
        struct zl_event ev, back, any;
        char buf[ZL_EVENT_ENCODED_MAX_BYTES], err[ZL_ERRSTR_SIZE];
        sample(&ev, (zl_topic_kind)k);
        size_t len = encode_ok(&ev, buf, sizeof(buf));
        ZT_EQ_INT(strlen(buf), len);
        int rc = zl_event_decode((zl_topic_kind)k, buf, len, &back, err, sizeof(err));
        if (rc != 0)
            ZT_FAIL_AT("kind %d: %s", k, err);
        ZT_CHECK(zl_event_equal(&ev, &back));
        ZT_EQ_INT(0, zl_event_decode(ZL_TOPIC_ANY, buf, len, &any, err, sizeof(err)));
        ZT_EQ_INT(k, any.kind);
        ZT_CHECK(zl_event_equal(&ev, &any));
    }
}

ZT_TEST(test_encode_writes_canonical_key_order_and_compact_json)
{
    struct zl_event ev;
    char buf[ZL_EVENT_ENCODED_MAX_BYTES];
    sample(&ev, ZL_TOPIC_DETECTED);
    encode_ok(&ev, buf, sizeof(buf));
    ZT_EQ_STR("{\"schema\":\"zl.deposits.detected/v1\",\"event_id\":\"" EVENT_ID "\","
              "\"deposit_id\":\"31337:" TX_HASH ":3\",\"chain_id\":31337,"
              "\"tx_hash\":\"" TX_HASH "\",\"log_index\":3,\"block_number\":17,"
              "\"block_hash\":\"" BLOCK_HASH "\",\"token\":\"" TOKEN "\","
              "\"from\":\"" FROM "\",\"to\":\"" TO "\",\"user_id\":\"user:42\","
              "\"amount\":\"1000000000000000000\",\"occurred_at\":\"" OCCURRED_AT "\"}",
              buf);

    sample(&ev, ZL_TOPIC_CREDITED);
    encode_ok(&ev, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "\"occurred_at\":\"" OCCURRED_AT "\",\"confirmations\":12,"
                        "\"metadata_cid\":\"" CID "\",\"token_uri\":\"ipfs://" CID "\","
                        "\"mint_tx_hash\":\"" MINT_TX_HASH "\",\"token_id\":\"4242\","
                        "\"nft_contract\":\"" NFT "\",\"credit_eggs\":\"1000\","
                        "\"credit_id\":\"7d444840-9dc0-11d1-b245-5ffdce74fad2\","
                        "\"rate\":\"0.001\"}");
}

ZT_TEST(test_same_event_encodes_to_same_bytes_whatever_the_input_key_order)
{
    for (int k = ZL_TOPIC_KIND_FIRST; k <= ZL_TOPIC_KIND_LAST; k++) {
        struct zl_event ev, back;
        char first[ZL_EVENT_ENCODED_MAX_BYTES], second[ZL_EVENT_ENCODED_MAX_BYTES];
        char again[ZL_EVENT_ENCODED_MAX_BYTES], err[ZL_ERRSTR_SIZE];
        sample(&ev, (zl_topic_kind)k);
        encode_ok(&ev, first, sizeof(first));
        encode_ok(&ev, second, sizeof(second));
        ZT_EQ_STR(first, second);

        /* Re-serialise with sorted keys, spaces and an extra field: a
         * different text of the same event. */
        json_t *root = json_loads(first, 0, NULL);
        ZT_REQUIRE(root != NULL);
        json_object_set_new(root, "zz_future", json_pack("{s:[i,i]}", "x", 1, 2));
        char *shuffled = json_dumps(root, JSON_SORT_KEYS | JSON_INDENT(2));
        json_decref(root);
        ZT_REQUIRE(shuffled != NULL);
        ZT_CHECK(strcmp(shuffled, first) != 0);
        int rc = decode_str(ZL_TOPIC_ANY, shuffled, &back, err, sizeof(err));
        free(shuffled);
        ZT_EQ_INT(0, rc);
        encode_ok(&back, again, sizeof(again));
        ZT_EQ_STR(first, again);
    }
}

ZT_TEST(test_every_required_field_missing_is_rejected_naming_it)
{
    static const char *const names[] = {
        "schema", "event_id", "deposit_id", "chain_id", "tx_hash", "log_index",
        "block_number", "block_hash", "token", "from", "to", "user_id", "amount",
        "occurred_at", "confirmations", "metadata_cid", "token_uri", "mint_tx_hash",
        "token_id", "nft_contract", "credit_eggs", "credit_id", "rate",
    };
    struct zl_event base;
    sample(&base, ZL_TOPIC_CREDITED);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char needle[64];
        snprintf(needle, sizeof(needle), "field \"%s\": missing", names[i]);
        expect_rejected(&base, names[i], NULL, needle);
    }
}

ZT_TEST(test_earlier_kinds_do_not_require_later_stage_fields)
{
    /* A detected event has no confirmations; a verified one must. */
    struct zl_event ev, out;
    char buf[ZL_EVENT_ENCODED_MAX_BYTES], err[ZL_ERRSTR_SIZE];
    sample(&ev, ZL_TOPIC_DETECTED);
    encode_ok(&ev, buf, sizeof(buf));
    ZT_CHECK(strstr(buf, "confirmations") == NULL);
    ZT_EQ_INT(0, decode_str(ZL_TOPIC_DETECTED, buf, &out, err, sizeof(err)));

    sample(&ev, ZL_TOPIC_VERIFIED);
    expect_rejected(&ev, "confirmations", NULL, "field \"confirmations\": missing");
    sample(&ev, ZL_TOPIC_PINNED);
    expect_rejected(&ev, "confirmations", NULL, "zl.nft.pinned/v1 requires it");
}

ZT_TEST(test_amount_as_json_number_is_rejected)
{
    struct zl_event base;
    sample(&base, ZL_TOPIC_DETECTED);
    expect_rejected(&base, "amount", json_integer(1000),
                    "field \"amount\": expected a decimal string of digits");
    expect_rejected(&base, "amount", json_integer(1000), "got a number");
    expect_rejected(&base, "amount", json_real(1e18), "got a number with a fraction or exponent");
}

ZT_TEST(test_chain_id_as_string_is_rejected)
{
    struct zl_event base;
    sample(&base, ZL_TOPIC_DETECTED);
    expect_rejected(&base, "chain_id", json_string("31337"),
                    "field \"chain_id\": expected a JSON integer from 1 to 9007199254740991, "
                    "got a string");
}

ZT_TEST(test_wrong_json_types_are_rejected_naming_the_type)
{
    struct zl_event base;
    sample(&base, ZL_TOPIC_MINTED);
    expect_rejected(&base, "user_id", json_null(), "field \"user_id\": expected a string of 1 to 64 characters from [A-Za-z0-9_.:-], got null");
    expect_rejected(&base, "tx_hash", json_object(), "field \"tx_hash\": expected a string of 0x and 64 lowercase hex digits, got an object");
    expect_rejected(&base, "token", json_array(), "got an array");
    expect_rejected(&base, "token_id", json_true(), "field \"token_id\": expected a decimal string of digits (an unsigned integer below 2^256, no leading zeros), got true");
    expect_rejected(&base, "log_index", json_false(), "field \"log_index\": expected a JSON integer from 0 to 4294967295, got false");
    expect_rejected(&base, "schema", json_integer(1), "field \"schema\": expected a schema id string, got a number");
}

ZT_TEST(test_integer_fields_reject_fractions_negatives_and_out_of_range)
{
    struct zl_event base;
    sample(&base, ZL_TOPIC_VERIFIED);
    expect_rejected(&base, "log_index", json_real(1.0), "got a number with a fraction or exponent");
    expect_rejected(&base, "log_index", json_integer(-1), "field \"log_index\": expected a JSON integer from 0 to 4294967295, got -1");
    expect_rejected(&base, "log_index", json_integer(4294967296LL), "got 4294967296");
    expect_rejected(&base, "chain_id", json_integer(0), "field \"chain_id\": expected a JSON integer from 1");
    expect_rejected(&base, "block_number", json_integer(9007199254740992LL), "got 9007199254740992");
    expect_rejected(&base, "confirmations", json_integer(-5), "field \"confirmations\"");

    /* The limits themselves are accepted. */
    struct zl_event out;
    char err[ZL_ERRSTR_SIZE];
    ZT_EQ_INT(0, decode_mutated(&base, "block_number", json_integer(9007199254740991LL), &out, err, sizeof(err)));
    ZT_EQ_INT(9007199254740991LL, out.block_number);
    ZT_EQ_INT(0, decode_mutated(&base, "confirmations", json_integer(4294967295LL), &out, err, sizeof(err)));
    ZT_EQ_INT(4294967295LL, out.confirmations);
}

ZT_TEST(test_integer_too_big_for_json_parser_is_rejected)
{
    struct zl_event out;
    char err[ZL_ERRSTR_SIZE];
    ZT_EQ_INT(-1, decode_str(ZL_TOPIC_ANY, "{\"schema\":\"zl.deposits.detected/v1\",\"chain_id\":99999999999999999999999}", &out, err, sizeof(err)));
    CHECK_CONTAINS(err, "invalid JSON");
}

ZT_TEST(test_malformed_hashes_are_rejected)
{
    const char *bad[] = {
        "0x5C504ED432CB51138BCF09AA5E8A410DD4A1E204EF84BFED1BE16DFBA1B22060", /* upper */
        "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b2206",  /* 63 */
        "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b220600", /* 65 */
        "005c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060", /* no 0x */
        "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b2206g", /* g */
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_string_rejected(ZL_TOPIC_MINTED, "tx_hash", bad[i]);
        expect_string_rejected(ZL_TOPIC_MINTED, "block_hash", bad[i]);
        expect_string_rejected(ZL_TOPIC_MINTED, "mint_tx_hash", bad[i]);
    }
}

ZT_TEST(test_malformed_addresses_are_rejected_and_mixed_case_is_kept)
{
    const char *bad[] = {
        "0x5FbDB2315678afecb367f032d93F642f64180aa",   /* 39 hex */
        "0x5FbDB2315678afecb367f032d93F642f64180aa33", /* 41 hex */
        "0X5FbDB2315678afecb367f032d93F642f64180aa3",  /* 0X */
        "0x5FbDB2315678afecb367f032d93F642f64180aaz",  /* z */
        " 0x5FbDB2315678afecb367f032d93F642f64180aa3",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_string_rejected(ZL_TOPIC_MINTED, "token", bad[i]);
        expect_string_rejected(ZL_TOPIC_MINTED, "from", bad[i]);
        expect_string_rejected(ZL_TOPIC_MINTED, "to", bad[i]);
        expect_string_rejected(ZL_TOPIC_MINTED, "nft_contract", bad[i]);
    }
    struct zl_event out;
    expect_string_accepted(ZL_TOPIC_MINTED, "from", "0xABCDEFabcdef0123456789ABCDEFabcdef012345", &out);
    ZT_EQ_STR("0xABCDEFabcdef0123456789ABCDEFabcdef012345", out.from);
    ZT_EQ_STR(TOKEN, out.token);
}

ZT_TEST(test_amount_must_be_a_canonical_uint256_decimal)
{
    const char *bad[] = {"", "007", "00", "-1", "+1", "1.5", "1e18", " 1", "1 ", "0x10",
                         "115792089237316195423570985008687907853269984665640564039457584007913129639936", /* 2^256 */
                         "1157920892373161954235709850086879078532699846656405640394575840079131296399350"}; /* 79 */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_string_rejected(ZL_TOPIC_CREDITED, "amount", bad[i]);
        expect_string_rejected(ZL_TOPIC_CREDITED, "token_id", bad[i]);
        expect_string_rejected(ZL_TOPIC_CREDITED, "credit_eggs", bad[i]);
    }
    struct zl_event out;
    expect_string_accepted(ZL_TOPIC_CREDITED, "amount", UINT256_MAX_DEC, &out);
    ZT_EQ_STR(UINT256_MAX_DEC, out.amount);
    expect_string_accepted(ZL_TOPIC_CREDITED, "amount", "0", &out);
    expect_string_accepted(ZL_TOPIC_CREDITED, "credit_eggs", "0", &out);
    ZT_EQ_STR("0", out.credit_eggs);
}

ZT_TEST(test_deposit_id_inconsistent_with_its_facts_is_rejected)
{
    struct zl_event base;
    sample(&base, ZL_TOPIC_DETECTED);
    /* Right shape, wrong facts: each part in turn. */
    expect_rejected(&base, "deposit_id", json_string("31337:" TX_HASH ":4"),
                    "field \"deposit_id\": \"31337:" TX_HASH ":4\" does not match chain_id, "
                    "tx_hash and log_index, which make \"31337:" TX_HASH ":3\"");
    expect_rejected(&base, "deposit_id", json_string("1:" TX_HASH ":3"), "does not match");
    expect_rejected(&base, "deposit_id", json_string("31337:" BLOCK_HASH ":3"), "does not match");
    /* Facts changed under an unchanged id. */
    expect_rejected(&base, "log_index", json_integer(4), "field \"deposit_id\"");
    expect_rejected(&base, "chain_id", json_integer(1), "field \"deposit_id\"");
    /* Not canonical, so not even the right shape. */
    expect_string_rejected(ZL_TOPIC_DETECTED, "deposit_id", "31337:" TX_HASH ":03");
    expect_string_rejected(ZL_TOPIC_DETECTED, "deposit_id", "031337:" TX_HASH ":3");
    expect_string_rejected(ZL_TOPIC_DETECTED, "deposit_id",
                           "31337:0x5C504ED432CB51138BCF09AA5E8A410DD4A1E204EF84BFED1BE16DFBA1B22060:3");
    expect_string_rejected(ZL_TOPIC_DETECTED, "deposit_id", "31337-" TX_HASH "-3");
    expect_string_rejected(ZL_TOPIC_DETECTED, "deposit_id", "31337:" TX_HASH ":");
}

ZT_TEST(test_duplicate_keys_are_rejected)
{
    struct zl_event ev, out;
    char buf[ZL_EVENT_ENCODED_MAX_BYTES], dup[ZL_EVENT_ENCODED_MAX_BYTES + 64];
    char err[ZL_ERRSTR_SIZE];
    sample(&ev, ZL_TOPIC_DETECTED);
    size_t len = encode_ok(&ev, buf, sizeof(buf));
    /* Same document with a second "amount" just before the closing brace:
     * one reader may take the first, another the last. */
    snprintf(dup, sizeof(dup), "%.*s,\"amount\":\"1\"}", (int)(len - 1), buf);
    ZT_EQ_INT(-1, decode_str(ZL_TOPIC_ANY, dup, &out, err, sizeof(err)));
    CHECK_CONTAINS(err, "duplicate");
    CHECK_CONTAINS(err, "amount");
    /* Even when both copies agree. */
    snprintf(dup, sizeof(dup), "%.*s,\"amount\":\"1000000000000000000\"}", (int)(len - 1), buf);
    ZT_EQ_INT(-1, decode_str(ZL_TOPIC_ANY, dup, &out, err, sizeof(err)));
    CHECK_CONTAINS(err, "duplicate");
}

ZT_TEST(test_input_over_the_size_limit_is_rejected_and_at_it_accepted)
{
    struct zl_event ev, out;
    char buf[ZL_EVENT_ENCODED_MAX_BYTES], err[ZL_ERRSTR_SIZE];
    sample(&ev, ZL_TOPIC_DETECTED);
    size_t len = encode_ok(&ev, buf, sizeof(buf));

    /* The valid event padded with an unknown field to exactly the limit. */
    size_t big_size = ZL_EVENT_JSON_MAX_BYTES + 1;
    char *big = malloc(big_size + 1);
    ZT_REQUIRE(big != NULL);
    static const char pad_key[] = ",\"pad\":\"";
    memcpy(big, buf, len - 1); /* without '}' */
    size_t at = len - 1;
    memcpy(big + at, pad_key, sizeof(pad_key) - 1);
    at += sizeof(pad_key) - 1;
    size_t fill = ZL_EVENT_JSON_MAX_BYTES - at - 2; /* leaves room for "} */
    memset(big + at, 'x', fill);
    at += fill;
    memcpy(big + at, "\"}", 2);
    at += 2;
    ZT_EQ_INT(ZL_EVENT_JSON_MAX_BYTES, at);
    int rc = zl_event_decode(ZL_TOPIC_ANY, big, at, &out, err, sizeof(err));
    if (rc != 0)
        ZT_FAIL_AT("at the limit: %s", err);
    ZT_CHECK(zl_event_equal(&ev, &out));

    /* One more byte (a trailing space, still valid JSON) is over it. */
    big[at] = ' ';
    ZT_EQ_INT(-1, zl_event_decode(ZL_TOPIC_ANY, big, at + 1, &out, err, sizeof(err)));
    CHECK_CONTAINS(err, "message is 65537 bytes, over the 65536-byte limit");
    free(big);
}

ZT_TEST(test_every_truncation_of_a_valid_message_is_rejected)
{
    struct zl_event ev, out;
    char buf[ZL_EVENT_ENCODED_MAX_BYTES], err[ZL_ERRSTR_SIZE];
    sample(&ev, ZL_TOPIC_CREDITED);
    size_t len = encode_ok(&ev, buf, sizeof(buf));
    int accepted = 0;
    for (size_t cut = 0; cut < len; cut++) {
        if (zl_event_decode(ZL_TOPIC_ANY, buf, cut, &out, err, sizeof(err)) == 0)
            accepted++;
    }
    ZT_EQ_INT(0, accepted);
    ZT_EQ_INT(-1, zl_event_decode(ZL_TOPIC_ANY, buf, len / 2, &out, err, sizeof(err)));
    CHECK_CONTAINS(err, "invalid JSON at line 1");
    ZT_EQ_INT(-1, zl_event_decode(ZL_TOPIC_ANY, buf, 0, &out, err, sizeof(err)));
    CHECK_CONTAINS(err, "empty message");
}

ZT_TEST(test_trailing_garbage_and_non_objects_are_rejected)
{
    struct zl_event ev, out;
    char buf[ZL_EVENT_ENCODED_MAX_BYTES + 8], err[ZL_ERRSTR_SIZE];
    sample(&ev, ZL_TOPIC_DETECTED);
    size_t len = encode_ok(&ev, buf, sizeof(buf));
    memcpy(buf + len, "{}", 3);
    ZT_EQ_INT(-1, zl_event_decode(ZL_TOPIC_ANY, buf, len + 2, &out, err, sizeof(err)));
    CHECK_CONTAINS(err, "invalid JSON");
    ZT_EQ_INT(-1, decode_str(ZL_TOPIC_ANY, "[1,2]", &out, err, sizeof(err)));
    CHECK_CONTAINS(err, "expected a JSON object, got an array");
    ZT_EQ_INT(-1, decode_str(ZL_TOPIC_ANY, "\"x\"", &out, err, sizeof(err)));
    CHECK_CONTAINS(err, "invalid JSON");
}

ZT_TEST(test_unknown_extra_fields_are_ignored)
{
    struct zl_event base, out;
    char err[ZL_ERRSTR_SIZE];
    sample(&base, ZL_TOPIC_PINNED);
    ZT_EQ_INT(0, decode_mutated(&base, "added_in_v2", json_pack("{s:[s,f]}", "nested", "x", 1.5),
                                &out, err, sizeof(err)));
    ZT_CHECK(zl_event_equal(&base, &out));
    /* A later stage's field on an earlier kind is just unknown there. */
    sample(&base, ZL_TOPIC_DETECTED);
    ZT_EQ_INT(0, decode_mutated(&base, "credit_eggs", json_integer(7), &out, err, sizeof(err)));
    ZT_EQ_STR("", out.credit_eggs);
}

ZT_TEST(test_schema_for_another_topic_or_unknown_version_is_rejected)
{
    struct zl_event ev, out;
    char buf[ZL_EVENT_ENCODED_MAX_BYTES], err[ZL_ERRSTR_SIZE];
    sample(&ev, ZL_TOPIC_VERIFIED);
    encode_ok(&ev, buf, sizeof(buf));
    ZT_EQ_INT(-1, decode_str(ZL_TOPIC_DETECTED, buf, &out, err, sizeof(err)));
    ZT_EQ_STR("field \"schema\": this topic carries \"zl.deposits.detected/v1\", got "
              "\"zl.deposits.verified/v1\"", err);
    ZT_EQ_INT(0, decode_str(ZL_TOPIC_VERIFIED, buf, &out, err, sizeof(err)));

    expect_rejected(&ev, "schema", json_string("zl.deposits.verified/v2"),
                    "field \"schema\": unknown schema \"zl.deposits.verified/v2\"");
    expect_rejected(&ev, "schema", NULL, "field \"schema\": missing");
}

ZT_TEST(test_string_fields_reject_nul_bytes_and_invalid_utf8)
{
    struct zl_event out;
    char err[ZL_ERRSTR_SIZE];
    ZT_EQ_INT(-1, decode_str(ZL_TOPIC_ANY, "{\"schema\":\"zl.deposits.detected/v1\",\"user_id\":\"a\\u0000b\"}", &out, err, sizeof(err)));
    CHECK_CONTAINS(err, "invalid JSON");
    ZT_EQ_INT(-1, decode_str(ZL_TOPIC_ANY, "{\"schema\":\"zl.deposits.detected/v1\",\"x\":\"\xff\"}", &out, err, sizeof(err)));
    CHECK_CONTAINS(err, "invalid JSON");
    /* Valid UTF-8 outside the field's alphabet: named, and quoted safely. */
    expect_string_rejected(ZL_TOPIC_DETECTED, "user_id", "us\xc3\xa9r");
    struct zl_event base;
    sample(&base, ZL_TOPIC_DETECTED);
    expect_rejected(&base, "user_id", json_string("a\"b\\c\nd"), "got \"a?b?c?d\"");
}

ZT_TEST(test_user_id_cid_rate_and_time_formats)
{
    const char *good_user[] = {"a", "user:42", "A-Z_a.z:0-9", "0123456789012345678901234567890123456789012345678901234567890123"};
    const char *bad_user[] = {"", "a b", "a/b", "a@b", "01234567890123456789012345678901234567890123456789012345678901234"};
    for (size_t i = 0; i < sizeof(good_user) / sizeof(good_user[0]); i++)
        ZT_CHECK(zl_valid_user_id(good_user[i]));
    for (size_t i = 0; i < sizeof(bad_user) / sizeof(bad_user[0]); i++)
        ZT_CHECK(!zl_valid_user_id(bad_user[i]));

    ZT_CHECK(zl_valid_cid(CID));
    ZT_CHECK(zl_valid_cid("bafkreihdw")); /* 10: the shortest */
    ZT_CHECK(!zl_valid_cid("bafkreihd"));
    ZT_CHECK(!zl_valid_cid("Bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"));
    ZT_CHECK(!zl_valid_cid("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")); /* CIDv0 */
    ZT_CHECK(!zl_valid_cid("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyk1")); /* '1' */

    const char *good_rate[] = {"0", "1", "12", "0.5", "0.001", "10.000", "12345678901234567890123456789012345678901234567"};
    const char *bad_rate[] = {"", ".5", "5.", "01", "00.5", "1.2.3", "-1", "1e3", "1,5", "123456789012345678901234567890123456789012345678"};
    for (size_t i = 0; i < sizeof(good_rate) / sizeof(good_rate[0]); i++)
        ZT_CHECK(zl_valid_rate(good_rate[i]));
    for (size_t i = 0; i < sizeof(bad_rate) / sizeof(bad_rate[0]); i++) {
        if (zl_valid_rate(bad_rate[i]))
            ZT_FAIL_AT("rate \"%s\" accepted", bad_rate[i]);
        expect_string_rejected(ZL_TOPIC_CREDITED, "rate", bad_rate[i]);
    }

    const char *good_time[] = {"2026-11-23T09:20:00Z", "2026-11-23T09:20:00.123Z", "2024-02-29T23:59:59.123456789Z", "2000-02-29T00:00:00.1Z"};
    const char *bad_time[] = {"2026-11-23T09:20:00", "2026-11-23 09:20:00Z", "2026-11-23t09:20:00z",
                              "2026-11-23T09:20:00+00:00", "2026-11-23T09:20:00.Z", "2026-11-23T09:20:00.1234567890Z",
                              "2026-02-30T00:00:00Z", "1900-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z",
                              "2026-11-00T00:00:00Z", "2026-11-23T24:00:00Z", "2026-11-23T09:60:00Z", "2026-11-23T09:20:60Z",
                              "2026-11-23T09:20:00ZZ", "26-11-23T09:20:00Z", ""};
    for (size_t i = 0; i < sizeof(good_time) / sizeof(good_time[0]); i++) {
        if (!zl_valid_rfc3339_utc(good_time[i]))
            ZT_FAIL_AT("time \"%s\" rejected", good_time[i]);
        ZT_CHECK(zl_valid_rfc3339_utc(good_time[i]));
    }
    for (size_t i = 0; i < sizeof(bad_time) / sizeof(bad_time[0]); i++) {
        if (zl_valid_rfc3339_utc(bad_time[i]))
            ZT_FAIL_AT("time \"%s\" accepted", bad_time[i]);
        expect_string_rejected(ZL_TOPIC_DETECTED, "occurred_at", bad_time[i]);
    }

    ZT_CHECK(zl_valid_uuid(EVENT_ID));
    ZT_CHECK(!zl_valid_uuid("0B7E4F1C-3F9A-4C1E-9A57-2D0F6B1C8E42"));
    ZT_CHECK(!zl_valid_uuid("0b7e4f1c3f9a4c1e9a572d0f6b1c8e42"));
    ZT_CHECK(!zl_valid_uuid("{0b7e4f1c-3f9a-4c1e-9a57-2d0f6b1c8e42}"));
    expect_string_rejected(ZL_TOPIC_CREDITED, "credit_id", "0b7e4f1c-3f9a-4c1e-9a57-2d0f6b1c8e4");
    expect_string_rejected(ZL_TOPIC_DETECTED, "event_id", "not-a-uuid");
}

ZT_TEST(test_token_uri_must_be_ipfs_of_metadata_cid)
{
    struct zl_event base;
    sample(&base, ZL_TOPIC_PINNED);
    expect_rejected(&base, "token_uri", json_string("ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyka"),
                    "field \"token_uri\": expected \"ipfs://\" + metadata_cid");
    expect_rejected(&base, "token_uri", json_string("https://ipfs.io/ipfs/" CID), "field \"token_uri\"");
    expect_rejected(&base, "token_uri", json_string(CID), "field \"token_uri\"");
}

ZT_TEST(test_encode_buffer_too_small_fails_and_reports_needed_size)
{
    struct zl_event ev;
    char buf[ZL_EVENT_ENCODED_MAX_BYTES], small[ZL_EVENT_ENCODED_MAX_BYTES], err[ZL_ERRSTR_SIZE];
    sample(&ev, ZL_TOPIC_MINTED);
    size_t len = encode_ok(&ev, buf, sizeof(buf));

    size_t need = 0;
    ZT_EQ_INT(-1, zl_event_encode(&ev, small, len, &need, err, sizeof(err))); /* no room for NUL */
    ZT_EQ_INT(len, need);
    CHECK_CONTAINS(err, "too small");
    need = 0;
    ZT_EQ_INT(-1, zl_event_encode(&ev, NULL, 0, &need, err, sizeof(err))); /* size query */
    ZT_EQ_INT(len, need);
    ZT_EQ_INT(-1, zl_event_encode(&ev, small, 10, &need, err, sizeof(err)));
    ZT_EQ_INT(0, zl_event_encode(&ev, small, len + 1, &need, err, sizeof(err)));
    ZT_EQ_INT(len, need);
    ZT_EQ_STR(buf, small);
}

/* Sets every field both families share to its longest valid value. */
static void fill_longest_shared(struct zl_event *ev)
{
    ev->block_number = ZL_JSON_SAFE_INT_MAX;
    ev->confirmations = UINT32_MAX;
    memset(ev->user_id, 'u', 64);
    ev->user_id[64] = '\0';
    SET(ev->amount, UINT256_MAX_DEC);
    SET(ev->token_id, UINT256_MAX_DEC);
    SET(ev->credit_eggs, UINT256_MAX_DEC);
    SET(ev->occurred_at, "2026-11-23T09:20:00.123456789Z");
    ev->metadata_cid[0] = 'b';
    memset(ev->metadata_cid + 1, 'a', 119);
    ev->metadata_cid[120] = '\0';
    snprintf(ev->token_uri, sizeof(ev->token_uri), "ipfs://%s", ev->metadata_cid);
    memset(ev->rate, '9', 47);
    ev->rate[47] = '\0';
}

ZT_TEST(test_longest_possible_event_fits_encoded_max_bytes)
{
    struct zl_event ev;
    char err[ZL_ERRSTR_SIZE];
    sample(&ev, ZL_TOPIC_CREDITED);
    ev.chain_id = ZL_JSON_SAFE_INT_MAX;
    ev.log_index = UINT32_MAX;
    ZT_REQUIRE(zl_deposit_id_format(ev.deposit_id, sizeof(ev.deposit_id), ev.chain_id, ev.tx_hash, ev.log_index) == 0);
    fill_longest_shared(&ev);

    char buf[ZL_EVENT_ENCODED_MAX_BYTES];
    size_t len = 0;
    int rc = zl_event_encode(&ev, buf, sizeof(buf), &len, err, sizeof(err));
    if (rc != 0)
        ZT_FAIL_AT("%s", err);
    ZT_EQ_INT(0, rc);
    ZT_CHECK(len < ZL_EVENT_ENCODED_MAX_BYTES);
    struct zl_event back;
    ZT_EQ_INT(0, zl_event_decode(ZL_TOPIC_CREDITED, buf, len, &back, err, sizeof(err)));
    ZT_CHECK(zl_event_equal(&ev, &back));
}

ZT_TEST(test_encode_refuses_an_invalid_event_naming_the_field)
{
    struct zl_event ev;
    char buf[ZL_EVENT_ENCODED_MAX_BYTES], err[ZL_ERRSTR_SIZE];
    size_t len = 12345;

    sample(&ev, ZL_TOPIC_DETECTED);
    SET(ev.amount, "12.5");
    ZT_EQ_INT(-1, zl_event_encode(&ev, buf, sizeof(buf), &len, err, sizeof(err)));
    ZT_EQ_STR("field \"amount\": expected a decimal string of digits (an unsigned integer below "
              "2^256, no leading zeros), got \"12.5\"", err);
    ZT_EQ_INT(12345, len); /* untouched */

    sample(&ev, ZL_TOPIC_DETECTED);
    memset(ev.user_id, 'a', sizeof(ev.user_id)); /* no NUL anywhere */
    ZT_EQ_INT(-1, zl_event_validate(&ev, err, sizeof(err)));
    ZT_EQ_STR("field \"user_id\": not NUL-terminated within its 65-byte buffer", err);

    sample(&ev, ZL_TOPIC_DETECTED);
    SET(ev.schema, "zl.nft.pinned/v1");
    ZT_EQ_INT(-1, zl_event_validate(&ev, err, sizeof(err)));
    CHECK_CONTAINS(err, "field \"schema\": expected \"zl.deposits.detected/v1\"");

    sample(&ev, ZL_TOPIC_DETECTED);
    ev.kind = ZL_TOPIC_ANY;
    ZT_EQ_INT(-1, zl_event_validate(&ev, err, sizeof(err)));
    CHECK_CONTAINS(err, "not a message kind");

    sample(&ev, ZL_TOPIC_DETECTED);
    ev.log_index = 9;
    ZT_EQ_INT(-1, zl_event_encode(&ev, buf, sizeof(buf), &len, err, sizeof(err)));
    CHECK_CONTAINS(err, "field \"deposit_id\"");

    sample(&ev, ZL_TOPIC_VERIFIED);
    ev.chain_id = 0;
    ZT_EQ_INT(-1, zl_event_validate(&ev, err, sizeof(err)));
    ZT_EQ_STR("field \"chain_id\": expected a JSON integer from 1 to 9007199254740991, got 0", err);
}

ZT_TEST(test_validate_ignores_fields_the_kind_does_not_carry)
{
    struct zl_event ev;
    char buf[ZL_EVENT_ENCODED_MAX_BYTES], err[ZL_ERRSTR_SIZE];
    sample(&ev, ZL_TOPIC_VERIFIED);
    SET(ev.rate, "not a rate"); /* credited-only field */
    ZT_EQ_INT(0, zl_event_validate(&ev, err, sizeof(err)));
    encode_ok(&ev, buf, sizeof(buf));
    ZT_CHECK(strstr(buf, "rate") == NULL);
}

ZT_TEST(test_derive_keeps_facts_and_makes_a_new_event)
{
    struct zl_event detected, verified, credited, back;
    char err[ZL_ERRSTR_SIZE];
    sample(&detected, ZL_TOPIC_DETECTED);
    zl_event_derive(&verified, &detected, ZL_TOPIC_VERIFIED);
    ZT_EQ_INT(ZL_TOPIC_VERIFIED, verified.kind);
    ZT_EQ_STR("zl.deposits.verified/v1", verified.schema);
    ZT_CHECK(zl_valid_uuid(verified.event_id));
    ZT_CHECK(strcmp(verified.event_id, detected.event_id) != 0);
    ZT_CHECK(zl_valid_rfc3339_utc(verified.occurred_at));
    ZT_CHECK(strcmp(verified.occurred_at, OCCURRED_AT) != 0);
    ZT_EQ_STR(detected.deposit_id, verified.deposit_id);
    ZT_EQ_STR(detected.amount, verified.amount);
    ZT_EQ_STR(TOKEN, verified.token);
    ZT_EQ_INT(17, verified.block_number);
    ZT_EQ_INT(0, verified.confirmations); /* for the verifier to set */
    verified.confirmations = 12;
    ZT_EQ_INT(0, zl_event_validate(&verified, err, sizeof(err)));

    /* Forward to the last kind in place: later fields start empty. */
    sample(&credited, ZL_TOPIC_MINTED);
    SET(credited.credit_eggs, "999"); /* leftover in a field minted does not carry */
    zl_event_derive(&credited, &credited, ZL_TOPIC_CREDITED);
    ZT_EQ_STR(MINT_TX_HASH, credited.mint_tx_hash);
    ZT_EQ_STR("", credited.credit_eggs);
    ZT_EQ_INT(-1, zl_event_validate(&credited, err, sizeof(err)));
    CHECK_CONTAINS(err, "field \"credit_eggs\"");

    /* Backwards (re-publishing an earlier stage's event): later fields go. */
    sample(&credited, ZL_TOPIC_CREDITED);
    zl_event_derive(&back, &credited, ZL_TOPIC_VERIFIED);
    ZT_EQ_INT(12, back.confirmations);
    ZT_EQ_STR("", back.metadata_cid);
    ZT_EQ_STR("", back.rate);
    ZT_EQ_INT(0, zl_event_validate(&back, err, sizeof(err)));

    struct zl_event a, b;
    zl_event_init(&a, ZL_TOPIC_DETECTED);
    zl_event_init(&b, ZL_TOPIC_DETECTED);
    ZT_CHECK(strcmp(a.event_id, b.event_id) != 0);
    ZT_EQ_STR("zl.deposits.detected/v1", a.schema);
}

ZT_TEST(test_deposit_id_format_and_parse_are_inverse_and_canonical)
{
    char id[160], hash[67];
    uint64_t chain = 0;
    uint32_t index = 0;
    ZT_EQ_INT(0, zl_deposit_id_format(id, sizeof(id), 1, TX_HASH, 0));
    ZT_EQ_STR("1:" TX_HASH ":0", id);
    ZT_EQ_INT(0, zl_deposit_id_parse(id, &chain, hash, sizeof(hash), &index));
    ZT_EQ_INT(1, chain);
    ZT_EQ_STR(TX_HASH, hash);
    ZT_EQ_INT(0, index);

    ZT_EQ_INT(0, zl_deposit_id_format(id, sizeof(id), ZL_JSON_SAFE_INT_MAX, TX_HASH, UINT32_MAX));
    ZT_EQ_INT(94, strlen(id)); /* the longest id: 95 bytes with the NUL */
    ZT_EQ_INT(0, zl_deposit_id_parse(id, &chain, hash, sizeof(hash), &index));
    ZT_EQ_INT(ZL_JSON_SAFE_INT_MAX, chain);
    ZT_EQ_INT(UINT32_MAX, index);

    ZT_EQ_INT(-1, zl_deposit_id_format(id, 94, ZL_JSON_SAFE_INT_MAX, TX_HASH, UINT32_MAX));
    ZT_EQ_STR("", id);
    ZT_EQ_INT(-1, zl_deposit_id_format(id, sizeof(id), 0, TX_HASH, 1));
    ZT_EQ_INT(-1, zl_deposit_id_format(id, sizeof(id), 1, "0xABC", 1));

    const char *bad[] = {"0:" TX_HASH ":1", "01:" TX_HASH ":1", "1:" TX_HASH ":01",
                         "1:" TX_HASH ":4294967296", "9007199254740992:" TX_HASH ":1",
                         "1:" TX_HASH, "1:" TX_HASH ":", ":" TX_HASH ":1", "1:" TX_HASH ":1:2",
                         "1:" TX_HASH "0:1", "x:" TX_HASH ":1", ""};
    int accepted = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (zl_deposit_id_parse(bad[i], &chain, hash, sizeof(hash), &index) == 0) {
            fprintf(stderr, "  deposit id \"%s\" accepted\n", bad[i]);
            accepted++;
        }
    }
    ZT_EQ_INT(0, accepted);
}

ZT_TEST(test_topic_kind_names_map_both_ways)
{
    static const char *const suffixes[] = {NULL, "deposits.detected", "deposits.verified",
                                           "nft.pinned", "nft.minted", "credits.applied"};
    static const char *const schemas[] = {NULL, "zl.deposits.detected/v1", "zl.deposits.verified/v1",
                                          "zl.nft.pinned/v1", "zl.nft.minted/v1", "zl.credits.applied/v1"};
    for (int k = ZL_TOPIC_KIND_FIRST; k <= ZL_TOPIC_KIND_LAST; k++) {
        zl_topic_kind got = ZL_TOPIC_ANY;
        ZT_EQ_STR(suffixes[k], zl_topic_kind_suffix((zl_topic_kind)k));
        ZT_EQ_STR(schemas[k], zl_topic_kind_schema((zl_topic_kind)k));
        ZT_EQ_INT(0, zl_topic_kind_from_schema(schemas[k], &got));
        ZT_EQ_INT(k, got);
        got = ZL_TOPIC_ANY;
        ZT_EQ_INT(0, zl_topic_kind_from_suffix(suffixes[k], &got));
        ZT_EQ_INT(k, got);
    }
    zl_topic_kind unchanged = ZL_TOPIC_MINTED;
    ZT_EQ_INT(-1, zl_topic_kind_from_schema("zl.deposits.detected", &unchanged));
    ZT_EQ_INT(-1, zl_topic_kind_from_suffix("zl.deposits.detected", &unchanged));
    ZT_EQ_INT(ZL_TOPIC_MINTED, unchanged);
    ZT_CHECK(zl_topic_kind_suffix(ZL_TOPIC_ANY) == NULL);
    ZT_CHECK(zl_topic_kind_schema((zl_topic_kind)99) == NULL);

    char name[32];
    ZT_EQ_INT(0, zl_topic_name(name, sizeof(name), "zl.", ZL_TOPIC_MINTED));
    ZT_EQ_STR("zl.nft.minted", name);
    ZT_EQ_INT(0, zl_topic_name(name, sizeof(name), "staging.zl.", ZL_TOPIC_DETECTED));
    ZT_EQ_STR("staging.zl.deposits.detected", name);
    ZT_EQ_INT(-1, zl_topic_name(name, 10, "zl.", ZL_TOPIC_CREDITED));
    ZT_EQ_INT(-1, zl_topic_name(name, sizeof(name), "zl.", ZL_TOPIC_ANY));
}

/* ------------------------------------------------------------- Solana */

#define SOL_SIG "2RF3ugPdKMojzm2TzjYTL5x8zvFuUMQcJyK3utdX5Z7hRKmcKZjRR76nznazgtcFwr1r2os67PN1CXHF6eHNass7"
#define SOL_MINT_SIG "3nNZ8RkXbKTp8qsDmPUhcLWM2Cf9WwEhx4nRwuVhQmJJi8PaVXQqBw4p2ktPZhn8zGm7yTzBXHHs7X5pR3C7Cs2S"
#define SOL_USDT "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"
#define SOL_FROM "2skA1F74tmpvHhp2HCixEPqW2EpaLonyYWosP13KfRSv"
#define SOL_TO "4YnWN1JmDyMbDeeRYnpm1rWVeaDsgZvC7WuowGHv7zSy"
#define SOL_NFT "2Si1axEmQqaDZG1nwrgn5SV2xa7Bc2k8jGqsoR764zRk"

/* A valid Solana event of `kind`, every field it carries set. */
static void sol_sample(struct zl_event *ev, zl_topic_kind kind)
{
    sample(ev, kind);
    ev->chain_id = 0;
    ev->log_index = 0;
    ev->block_hash[0] = '\0';
    SET(ev->chain, "mainnet-beta");
    SET(ev->tx_hash, SOL_SIG);
    SET(ev->instruction, "2.0");
    SET(ev->token, SOL_USDT);
    SET(ev->from, SOL_FROM);
    SET(ev->to, SOL_TO);
    SET(ev->amount, "1000000");
    ZL_ASSERT(zl_sol_deposit_id_format(ev->deposit_id, sizeof(ev->deposit_id), ev->chain, ev->tx_hash,
                                       ev->instruction) == 0);
    if (kind >= ZL_TOPIC_MINTED) {
        SET(ev->mint_tx_hash, SOL_MINT_SIG);
        SET(ev->token_id, "0");
        SET(ev->nft_contract, SOL_NFT);
    }
}

ZT_TEST(test_solana_events_round_trip_and_keep_their_family)
{
    for (int k = ZL_TOPIC_KIND_FIRST; k <= ZL_TOPIC_KIND_LAST; k++) {
        struct zl_event ev, back, next;
        char buf[ZL_EVENT_ENCODED_MAX_BYTES], err[ZL_ERRSTR_SIZE];
        size_t len = 0;
        sol_sample(&ev, (zl_topic_kind)k);
        ZT_EQ_INT(0, zl_event_encode(&ev, buf, sizeof(buf), &len, err, sizeof(err)));
        CHECK_CONTAINS(buf, "\"chain\":\"mainnet-beta\"");
        CHECK_CONTAINS(buf, "\"instruction\":\"2.0\"");
        ZT_CHECK(strstr(buf, "chain_id") == NULL && strstr(buf, "log_index") == NULL &&
                 strstr(buf, "block_hash") == NULL);
        ZT_EQ_INT(0, zl_event_decode((zl_topic_kind)k, buf, len, &back, err, sizeof(err)));
        ZT_CHECK(zl_event_is_solana(&back));
        ZT_CHECK(zl_event_equal(&ev, &back));
        if (k < ZL_TOPIC_KIND_LAST) {
            zl_event_derive(&next, &back, (zl_topic_kind)(k + 1));
            ZT_EQ_STR("mainnet-beta", next.chain);
            ZT_EQ_STR("2.0", next.instruction);
        }
    }
    struct zl_event evm, sol;
    sample(&evm, ZL_TOPIC_DETECTED);
    sol_sample(&sol, ZL_TOPIC_DETECTED);
    ZT_CHECK(!zl_event_is_solana(&evm));
    ZT_CHECK(!zl_event_equal(&evm, &sol));
}

ZT_TEST(test_solana_event_with_evm_parts_or_mixed_families_is_refused)
{
    struct zl_event ev;
    char err[ZL_ERRSTR_SIZE];
    sol_sample(&ev, ZL_TOPIC_DETECTED);
    ev.chain_id = 56; /* both families at once */
    ZT_EQ_INT(-1, zl_event_validate(&ev, err, sizeof(err)));
    CHECK_CONTAINS(err, "chain_id");

    sol_sample(&ev, ZL_TOPIC_DETECTED);
    SET(ev.to, TO); /* an EVM address in a Solana event */
    ZT_EQ_INT(-1, zl_event_validate(&ev, err, sizeof(err)));
    CHECK_CONTAINS(err, "field \"to\"");

    sol_sample(&ev, ZL_TOPIC_MINTED);
    SET(ev.mint_tx_hash, MINT_TX_HASH);
    ZT_EQ_INT(-1, zl_event_validate(&ev, err, sizeof(err)));
    CHECK_CONTAINS(err, "mint_tx_hash");

    sol_sample(&ev, ZL_TOPIC_DETECTED);
    SET(ev.instruction, "3"); /* the id says 2.0 */
    ZT_EQ_INT(-1, zl_event_validate(&ev, err, sizeof(err)));
    CHECK_CONTAINS(err, "deposit_id");

    /* On the wire: "chain" and "chain_id" together. */
    sol_sample(&ev, ZL_TOPIC_DETECTED);
    char buf[ZL_EVENT_ENCODED_MAX_BYTES];
    size_t len = 0;
    ZT_EQ_INT(0, zl_event_encode(&ev, buf, sizeof(buf), &len, err, sizeof(err)));
    char both[ZL_EVENT_ENCODED_MAX_BYTES + 32];
    snprintf(both, sizeof(both), "%.*s,\"chain_id\":56}", (int)len - 1, buf);
    struct zl_event out;
    ZT_EQ_INT(-1, zl_event_decode(ZL_TOPIC_ANY, both, strlen(both), &out, err, sizeof(err)));
    CHECK_CONTAINS(err, "not both");
}

ZT_TEST(test_solana_field_formats)
{
    ZT_CHECK(zl_valid_sol_cluster("localnet") && zl_valid_sol_cluster("mainnet-beta") && zl_valid_sol_cluster("a"));
    ZT_CHECK(!zl_valid_sol_cluster("") && !zl_valid_sol_cluster("56") && !zl_valid_sol_cluster("1net") &&
             !zl_valid_sol_cluster("Mainnet") && !zl_valid_sol_cluster("main_net") &&
             !zl_valid_sol_cluster("abcdefghijklmnopqrstuvwxyzabcdef")); /* 32 characters */
    ZT_CHECK(zl_valid_sol_place("0") && zl_valid_sol_place("255") && zl_valid_sol_place("2.0") &&
             zl_valid_sol_place("255.255"));
    ZT_CHECK(!zl_valid_sol_place("") && !zl_valid_sol_place("256") && !zl_valid_sol_place("01") &&
             !zl_valid_sol_place("1.") && !zl_valid_sol_place(".1") && !zl_valid_sol_place("1.2.3") &&
             !zl_valid_sol_place("1.256") && !zl_valid_sol_place("-1"));
    ZT_CHECK(zl_valid_sol_signature(SOL_SIG) && !zl_valid_sol_signature(SOL_USDT) &&
             !zl_valid_sol_signature(TX_HASH) && !zl_valid_sol_signature(""));
    ZT_CHECK(zl_valid_sol_key(SOL_USDT) && !zl_valid_sol_key(SOL_SIG) && !zl_valid_sol_key(TO) &&
             !zl_valid_sol_key("0s9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"));
    /* 32 zero bytes: 32 '1's, the shortest key text; a 33rd '1' is 33 bytes. */
    ZT_CHECK(zl_valid_sol_key("11111111111111111111111111111111"));
    ZT_CHECK(!zl_valid_sol_key("111111111111111111111111111111111"));

    char id[ZL_DEPOSIT_ID_SIZE];
    ZT_EQ_INT(0, zl_sol_deposit_id_format(id, sizeof(id), "localnet", SOL_SIG, "1"));
    ZT_EQ_STR("localnet:" SOL_SIG ":1", id);
    ZT_CHECK(zl_valid_deposit_id(id));
    ZT_EQ_INT(-1, zl_sol_deposit_id_format(id, sizeof(id), "56", SOL_SIG, "1"));
    ZT_EQ_STR("", id);
    ZT_EQ_INT(-1, zl_sol_deposit_id_format(id, 20, "localnet", SOL_SIG, "1"));
    ZT_CHECK(!zl_valid_deposit_id("localnet:" SOL_SIG ":1:2"));
    ZT_CHECK(!zl_valid_deposit_id("localnet:" SOL_SIG));
    ZT_CHECK(!zl_valid_deposit_id("56:" SOL_SIG ":1"));
}

ZT_TEST(test_longest_solana_event_fits_encoded_max_bytes)
{
    struct zl_event ev;
    char err[ZL_ERRSTR_SIZE];
    sol_sample(&ev, ZL_TOPIC_CREDITED);
    memset(ev.chain, 'z', sizeof(ev.chain) - 1);
    ev.chain[sizeof(ev.chain) - 1] = '\0';
    SET(ev.instruction, "255.255");
    ZT_REQUIRE(zl_sol_deposit_id_format(ev.deposit_id, sizeof(ev.deposit_id), ev.chain, ev.tx_hash,
                                        ev.instruction) == 0);
    fill_longest_shared(&ev);
    char buf[ZL_EVENT_ENCODED_MAX_BYTES];
    size_t len = 0;
    int rc = zl_event_encode(&ev, buf, sizeof(buf), &len, err, sizeof(err));
    if (rc != 0)
        ZT_FAIL_AT("%s", err);
    ZT_CHECK(len < ZL_EVENT_ENCODED_MAX_BYTES);
    struct zl_event back;
    ZT_EQ_INT(0, zl_event_decode(ZL_TOPIC_CREDITED, buf, len, &back, err, sizeof(err)));
    ZT_CHECK(zl_event_equal(&ev, &back));
}

ZT_MAIN(test_each_kind_round_trips_through_encode_and_decode,
        test_encode_writes_canonical_key_order_and_compact_json,
        test_same_event_encodes_to_same_bytes_whatever_the_input_key_order,
        test_every_required_field_missing_is_rejected_naming_it,
        test_earlier_kinds_do_not_require_later_stage_fields,
        test_amount_as_json_number_is_rejected,
        test_chain_id_as_string_is_rejected,
        test_wrong_json_types_are_rejected_naming_the_type,
        test_integer_fields_reject_fractions_negatives_and_out_of_range,
        test_integer_too_big_for_json_parser_is_rejected,
        test_malformed_hashes_are_rejected,
        test_malformed_addresses_are_rejected_and_mixed_case_is_kept,
        test_amount_must_be_a_canonical_uint256_decimal,
        test_deposit_id_inconsistent_with_its_facts_is_rejected,
        test_duplicate_keys_are_rejected,
        test_input_over_the_size_limit_is_rejected_and_at_it_accepted,
        test_every_truncation_of_a_valid_message_is_rejected,
        test_trailing_garbage_and_non_objects_are_rejected,
        test_unknown_extra_fields_are_ignored,
        test_schema_for_another_topic_or_unknown_version_is_rejected,
        test_string_fields_reject_nul_bytes_and_invalid_utf8,
        test_user_id_cid_rate_and_time_formats,
        test_token_uri_must_be_ipfs_of_metadata_cid,
        test_encode_buffer_too_small_fails_and_reports_needed_size,
        test_longest_possible_event_fits_encoded_max_bytes,
        test_encode_refuses_an_invalid_event_naming_the_field,
        test_validate_ignores_fields_the_kind_does_not_carry,
        test_derive_keeps_facts_and_makes_a_new_event,
        test_deposit_id_format_and_parse_are_inverse_and_canonical,
        test_topic_kind_names_map_both_ways,
        test_solana_events_round_trip_and_keep_their_family,
        test_solana_event_with_evm_parts_or_mixed_families_is_refused,
        test_solana_field_formats,
        test_longest_solana_event_fits_encoded_max_bytes)
