/* The Solana deposit reader (solana_transfers.h) against real getTransaction
 * answers, recorded from agave 3.0.12's solana-test-validator with
 * transactions built by common/solana_tx.c (tests/unit/fixtures/solana/,
 * manifest.json names the accounts), on SPL Token and Token-2022, and
 * against answers changed from them the way a lying node would. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solana_transfers.h"
#include "zltest.h"

#define FIXTURES "tests/unit/fixtures/solana/"
#define OUT_MAX 4

static json_t *manifest;

static json_t *load(const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), FIXTURES "%s", name);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (j == NULL) {
        fprintf(stderr, "%s: %s (run from the repository's root)\n", path, e.text);
        abort();
    }
    return j;
}

static const char *field(const char *program, const char *key)
{
    if (manifest == NULL)
        manifest = load("manifest.json"); /* kept for the process */
    return json_string_value(json_object_get(json_object_get(json_object_get(manifest, "mints"), program), key));
}

static bool is_deposit(void *ctx, const char *acct)
{
    const char *program = ctx;
    return strcmp(acct, field(program, "deposit_account")) == 0 ||
           strcmp(acct, field(program, "other_mint_deposit_account")) == 0;
}

/* Parses answer j for program's deposits of its usdt mint. */
static enum zl_sol_tx_read parse(const char *program, json_t *j, struct zl_sol_transfer *out, size_t max, size_t *n,
                                 char *err)
{
    char *text = json_dumps(j, JSON_COMPACT);
    enum zl_sol_tx_read rc = zl_sol_parse_transfers(text, strlen(text), "localnet", field(program, "usdt"),
                                                    is_deposit, (void *)program, out, max, n, err, 256);
    free(text);
    return rc;
}

static const char *const PROGRAMS[] = {"spl-token", "token-2022"};

static json_t *fixture(const char *program, const char *what)
{
    char name[128];
    snprintf(name, sizeof(name), "%s-%s.json", program, what);
    return load(name);
}

static const char *signature_of(json_t *j)
{
    return json_string_value(json_array_get(
        json_object_get(json_object_get(json_object_get(j, "result"), "transaction"), "signatures"), 0));
}

ZT_TEST(test_transfer_checked_and_plain_transfer_into_a_deposit_account_are_deposits)
{
    for (size_t p = 0; p < 2; p++) {
        const char *prog = PROGRAMS[p];
        struct zl_sol_transfer out[OUT_MAX];
        size_t n = 0;
        char err[256] = "", id[256];
        json_t *j = fixture(prog, "transfer-checked");
        ZT_EQ_INT(ZL_SOL_TX_READ, parse(prog, j, out, OUT_MAX, &n, err));
        ZT_EQ_INT(1, (int)n);
        snprintf(id, sizeof(id), "localnet:%s:0", signature_of(j));
        ZT_EQ_STR(id, out[0].deposit_id);
        ZT_EQ_STR("12345678", out[0].amount);
        ZT_EQ_INT(6, out[0].decimals);
        ZT_EQ_STR(field(prog, "deposit_account"), out[0].destination);
        ZT_EQ_STR(field(prog, "sender_account"), out[0].source);
        ZT_EQ_STR(field(prog, "usdt"), out[0].mint);
        ZT_CHECK(out[0].slot > 0 && out[0].block_time > 0);
        json_decref(j);

        j = fixture(prog, "transfer"); /* no mint in the instruction: the destination's, from the balances */
        ZT_EQ_INT(ZL_SOL_TX_READ, parse(prog, j, out, OUT_MAX, &n, err));
        ZT_EQ_INT(1, (int)n);
        ZT_EQ_STR("5000000", out[0].amount);
        ZT_EQ_INT(-1, out[0].decimals);
        ZT_EQ_STR(field(prog, "usdt"), out[0].mint);
        json_decref(j);
    }
}

ZT_TEST(test_only_the_transfer_into_the_deposit_account_of_the_configured_mint_counts)
{
    for (size_t p = 0; p < 2; p++) {
        const char *prog = PROGRAMS[p];
        struct zl_sol_transfer out[OUT_MAX];
        size_t n = 9;
        char err[256] = "";
        json_t *j = fixture(prog, "two-transfers"); /* 7 to another wallet, then 9,000,000 to ours */
        ZT_EQ_INT(ZL_SOL_TX_READ, parse(prog, j, out, OUT_MAX, &n, err));
        ZT_EQ_INT(1, (int)n);
        ZT_EQ_STR("1", out[0].place);
        ZT_EQ_STR("9000000", out[0].amount);
        json_decref(j);
        j = fixture(prog, "other-mint"); /* another token into the same wallet's account of that token */
        ZT_EQ_INT(ZL_SOL_TX_READ, parse(prog, j, out, OUT_MAX, &n, err));
        ZT_EQ_INT(0, (int)n);
        json_decref(j);
        j = fixture(prog, "failed"); /* on chain, failed: moved nothing */
        ZT_EQ_INT(ZL_SOL_TX_READ, parse(prog, j, out, OUT_MAX, &n, err));
        ZT_EQ_INT(0, (int)n);
        json_decref(j);
    }
}

ZT_TEST(test_an_inner_transfer_gets_its_own_place)
{
    /* The recorded transfer moved under a top-level instruction, as a
     * program calling the token program would leave it. */
    const char *prog = "spl-token";
    json_t *j = fixture(prog, "transfer-checked");
    json_t *res = json_object_get(j, "result");
    json_t *ixs = json_object_get(json_object_get(json_object_get(res, "transaction"), "message"), "instructions");
    json_t *ix = json_incref(json_array_get(ixs, 0));
    json_object_set_new(json_object_get(res, "meta"), "innerInstructions",
                        json_pack("[{s:i,s:[o]}]", "index", 0, "instructions", ix));
    json_array_set_new(ixs, 0, json_pack("{s:s,s:[],s:s}", "programId", "11111111111111111111111111111111",
                                         "accounts", "data", ""));
    struct zl_sol_transfer out[OUT_MAX];
    size_t n = 0;
    char err[256] = "";
    ZT_EQ_INT(ZL_SOL_TX_READ, parse(prog, j, out, OUT_MAX, &n, err));
    ZT_EQ_INT(1, (int)n);
    ZT_EQ_STR("0.0", out[0].place);
    json_decref(j);
}

ZT_TEST(test_a_lying_or_odd_answer_is_refused_or_absent_never_half_read)
{
    const char *prog = "token-2022";
    struct zl_sol_transfer out[OUT_MAX];
    size_t n = 0;
    char err[256] = "";
    /* the "spl-token" label under another program id: not the token program */
    json_t *j = fixture(prog, "transfer-checked");
    json_t *ix = json_array_get(json_object_get(json_object_get(json_object_get(json_object_get(j, "result"),
                                                                                 "transaction"),
                                                                 "message"),
                                                "instructions"),
                                0);
    json_object_set_new(ix, "programId", json_string("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo"));
    ZT_EQ_INT(ZL_SOL_TX_READ, parse(prog, j, out, OUT_MAX, &n, err));
    ZT_EQ_INT(0, (int)n);
    json_decref(j);
    /* an amount that is not a u64 */
    j = fixture(prog, "transfer-checked");
    ix = json_array_get(json_object_get(json_object_get(json_object_get(json_object_get(j, "result"), "transaction"),
                                                        "message"),
                                        "instructions"),
                        0);
    json_object_set_new(json_object_get(json_object_get(json_object_get(ix, "parsed"), "info"), "tokenAmount"),
                        "amount", json_string("18446744073709551616"));
    ZT_EQ_INT(ZL_SOL_TX_INVALID, parse(prog, j, out, OUT_MAX, &n, err));
    ZT_CHECK(strstr(err, "amount") != NULL);
    ZT_EQ_INT(0, (int)n);
    json_decref(j);
    /* no room: an error, not the first few */
    j = fixture(prog, "transfer-checked");
    ZT_EQ_INT(ZL_SOL_TX_INVALID, parse(prog, j, out, 0, &n, err));
    ZT_CHECK(strstr(err, "more than") != NULL);
    json_decref(j);
    /* not found yet, an error answer, not JSON */
    j = json_pack("{s:s,s:i,s:n}", "jsonrpc", "2.0", "id", 1, "result");
    ZT_EQ_INT(ZL_SOL_TX_ABSENT, parse(prog, j, out, OUT_MAX, &n, err));
    json_decref(j);
    j = json_pack("{s:{s:i,s:s}}", "error", "code", -32000, "message", "busy");
    ZT_EQ_INT(ZL_SOL_TX_INVALID, parse(prog, j, out, OUT_MAX, &n, err));
    json_decref(j);
    ZT_EQ_INT(ZL_SOL_TX_INVALID,
              zl_sol_parse_transfers("<html>", 6, "localnet", "x", is_deposit, (void *)prog, out, OUT_MAX, &n, err, 256));
}

ZT_TEST(test_signatures_of_the_deposit_account_are_read_newest_first)
{
    for (size_t p = 0; p < 2; p++) {
        const char *prog = PROGRAMS[p];
        json_t *j = fixture(prog, "signatures");
        json_t *checked = fixture(prog, "transfer-checked");
        char *text = json_dumps(j, JSON_COMPACT);
        struct zl_sol_sig sigs[8];
        size_t n = 0;
        char err[256] = "";
        /* ATA creation, transfer checked, transfer, two transfers, failed */
        ZT_EQ_INT(0, zl_sol_parse_signatures(text, strlen(text), sigs, 8, &n, err, sizeof(err)));
        ZT_EQ_INT(5, (int)n);
        ZT_CHECK(sigs[0].failed && !sigs[1].failed);
        bool seen = false;
        for (size_t i = 0; i < n; i++) {
            ZT_CHECK(i == 0 || sigs[i].slot <= sigs[i - 1].slot);
            seen = seen || strcmp(sigs[i].signature, signature_of(checked)) == 0;
        }
        ZT_CHECK(seen);
        /* more than asked for: refused, not cut */
        ZT_EQ_INT(-1, zl_sol_parse_signatures(text, strlen(text), sigs, 4, &n, err, sizeof(err)));
        ZT_EQ_INT(0, (int)n);
        free(text);
        /* a node answering oldest first is not trusted */
        json_t *res = json_object_get(j, "result");
        json_t *first = json_incref(json_array_get(res, 0));
        json_array_remove(res, 0);
        json_array_append_new(res, first);
        text = json_dumps(j, JSON_COMPACT);
        ZT_EQ_INT(-1, zl_sol_parse_signatures(text, strlen(text), sigs, 8, &n, err, sizeof(err)));
        ZT_CHECK(strstr(err, "newest first") != NULL);
        free(text);
        /* a signature that is not 64 bytes */
        json_object_set_new(json_array_get(res, 1), "signature", json_string("2g"));
        text = json_dumps(j, JSON_COMPACT);
        ZT_EQ_INT(-1, zl_sol_parse_signatures(text, strlen(text), sigs, 8, &n, err, sizeof(err)));
        free(text);
        json_decref(j);
        json_decref(checked);
    }
}

ZT_MAIN(test_transfer_checked_and_plain_transfer_into_a_deposit_account_are_deposits,
        test_only_the_transfer_into_the_deposit_account_of_the_configured_mint_counts,
        test_an_inner_transfer_gets_its_own_place, test_a_lying_or_odd_answer_is_refused_or_absent_never_half_read,
        test_signatures_of_the_deposit_account_are_read_newest_first)
