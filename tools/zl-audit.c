/* zl-audit: proves the books balance, or lists every place they do not.
 *
 * Checks, over the whole database (schemas/sql/001_state.sql, 005_credit.sql):
 *   missing_entries         a credited deposit lacks its user_credit or its
 *                           system_debit entry
 *   credited_twice          a deposit has more than one entry of a kind, or
 *                           entries under more than one credit id
 *   unbalanced              a deposit's entries do not sum to zero
 *   entries_without_credit  entries for a deposit whose row is not credited
 *   row_mismatch            the row's credit_id / credit_eggs differ from its
 *                           user_credit entry, or the entry is on another
 *                           user's account
 *   rounding                an entry's eggs are not floor(amount * rate /
 *                           10^decimals), or its token amount is not the row's
 *   balance_mismatch        an account's balance is not the sum of its entries
 *   negative_balance        a user account below zero
 *   below_minimum_waived    a row settled below_minimum although an operator
 *                           waived its minimum (a waived row is credited
 *                           like any other; its ledger entries, if any,
 *                           are entries_without_credit)
 *   totals                  user balances do not sum to the eggs of credited
 *                           rows, or all balances do not sum to zero
 *   token_id                a minted/credited row's token id is not
 *                           keccak256(deposit_id)
 *   not_owner / chain_error (with ZL_AUDIT_RPC_URLS) the depositor does not
 *                           own the deposit's NFT on chain (ownerOf), all or
 *                           a random sample of ZL_AUDIT_CHAIN_SAMPLE rows
 *   sol_not_receipt /       (with ZL_AUDIT_SOLANA_RPC_URLS) a minted/credited
 *   sol_not_owner           Solana deposit's receipt is not, at finalized, a
 *                           Token-2022 mint of supply 1 and 0 decimals with
 *                           its minting right given up; or the wallet that
 *                           paid does not hold its one token (issue 22)
 * plus counts per state.
 *
 * With --chain FROM-TO (TO may be "head"; or last:N, the N blocks ending
 * ZL_AUDIT_CHAIN_LAG_BLOCKS below the head) it also rescans the token's
 * Transfers in those blocks (common/reconcile.h), from --rpc URL or else
 * ZL_AUDIT_RPC_URLS, in chunks of ZL_AUDIT_CHAIN_CHUNK_BLOCKS:
 *   chain_missing_row       a transfer to a registered address has no row
 *                           (detect missed it; zlctl claim records it)
 *   chain_no_transfer       a row in the range has no transfer on chain
 *   chain_mismatch          a row's amount, sender or recipient is not its
 *                           transfer's
 * The summary then holds "chain_range": {"from","to","transfers",...,
 * "clean"}, and ZL_AUDIT_TEXTFILE (if set) gets Prometheus text for the
 * node exporter's textfile collector: zl_audit_chain_last_clean_block (the
 * TO of the last clean run, kept across dirty ones), zl_audit_last_run_ok,
 * zl_audit_discrepancies, zl_audit_last_run_timestamp_seconds.
 *
 * Output: one human line per discrepancy on stdout ("DISCREPANCY <check>
 * <subject>: <detail>"), then one JSON summary line:
 *   {"ok":false,"discrepancies":3,"checks":{"missing_entries":1,...},
 *    "states":{"credited":10,...},"user_balances":"..","credited_eggs":"..",
 *    "chain":{"checked":0,"skipped":true}}
 * Exit: 0 the books balance, 1 discrepancies found, 2 could not audit
 * (configuration, database or RPC unreachable).
 */
#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "boot.h"
#include "chain.h"
#include "config.h"
#include "hex.h"
#include "keccak.h"
#include "reconcile.h"
#include "rpc.h"
#include "solana_receipt.h"
#include "tokens.h"
#include "zl.h"

/* Arguments zl-audit passes on to the config loader at most. */
#define ARGS_MAX 64

struct audit_config {
    char *pg_dsn;
    char *rpc_urls;
    int64_t chain_sample;
    int64_t rpc_timeout_ms;
    int64_t lines_max;
    bool rpc_allow_http;
    int64_t chain_id;
    char *token;
    char *tokens;
    int64_t chunk_blocks;
    int64_t lag_blocks;
    char *textfile;
    char *sol_rpc_urls;
};

#define OFF(f) offsetof(struct audit_config, f)
static const struct zl_setting audit_settings[] = {
    {"ZL_PG_DSN", ZL_CFG_STR, NULL, "PostgreSQL connection string of the database to audit", OFF(pg_dsn), 0, 0},
    {"ZL_AUDIT_RPC_URLS", ZL_CFG_STR, "",
     "JSON-RPC endpoints for the on-chain ownerOf check, comma-separated; empty: skip the chain check",
     OFF(rpc_urls), 0, 0},
    {"ZL_AUDIT_CHAIN_SAMPLE", ZL_CFG_INT, "0", "rows checked on chain, chosen at random; 0: every row",
     OFF(chain_sample), 0, 100000000},
    {"ZL_AUDIT_RPC_TIMEOUT_MS", ZL_CFG_INT, "10000", "timeout of one ownerOf call", OFF(rpc_timeout_ms), 100,
     600000},
    {"ZL_AUDIT_RPC_ALLOW_HTTP", ZL_CFG_BOOL, "false", "accept plain http:// endpoints that are not loopback (no TLS)",
     OFF(rpc_allow_http), 0, 0},
    {"ZL_AUDIT_LINES_MAX", ZL_CFG_INT, "1000",
     "discrepancy lines printed (all are counted in the summary)", OFF(lines_max), 1, 100000000},
    {"ZL_CHAIN_ID", ZL_CFG_INT, "31337", "EIP-155 chain id of the deposits rescanned by --chain", OFF(chain_id), 1,
     INT64_C(9007199254740991)},
    ZL_TOKENS_SETTING("--chain rescans their Transfers", OFF(tokens)),
    {"ZL_TOKEN_ADDRESS", ZL_CFG_STR, "", "the single-token form of ZL_TOKENS (one of them is required with --chain)",
     OFF(token), 0, 0},
    {"ZL_AUDIT_CHAIN_CHUNK_BLOCKS", ZL_CFG_INT, "2000",
     "blocks per eth_getLogs request of --chain (halved when the endpoint refuses)", OFF(chunk_blocks), 1,
     ZL_RECONCILE_CHUNK_BLOCKS_MAX},
    {"ZL_AUDIT_CHAIN_LAG_BLOCKS", ZL_CFG_INT, "50",
     "--chain last:N ends this many blocks below the head (detect's lag and confirmations: blocks detect may"
     " not have scanned yet)", OFF(lag_blocks), 0, 1000000},
    {"ZL_AUDIT_SOLANA_RPC_URLS", ZL_CFG_STR, "",
     "Solana JSON-RPC endpoints for the check of Solana deposits' receipts (same sample); empty: skip it",
     OFF(sol_rpc_urls), 0, 0},
    {"ZL_AUDIT_TEXTFILE", ZL_CFG_STR, "",
     "with --chain: Prometheus text file for the node exporter's textfile collector (empty: none)", OFF(textfile), 0,
     0},
};
#undef OFF

/* Every SQL check returns rows (check, subject, detail). */
static const char SQL_CHECKS[] =
    "WITH per AS ("
    "  SELECT deposit_id,"
    "         count(*) FILTER (WHERE kind = 'user_credit') AS uc,"
    "         count(*) FILTER (WHERE kind = 'system_debit') AS sd,"
    "         count(DISTINCT credit_id) AS ncredit, sum(amount) AS total"
    "  FROM ledger_entries GROUP BY deposit_id"
    ")"
    " SELECT 'missing_entries', d.deposit_id,"
    "        format('credited row has %s user_credit and %s system_debit entries',"
    "               coalesce(p.uc, 0), coalesce(p.sd, 0))"
    " FROM deposits d LEFT JOIN per p USING (deposit_id)"
    " WHERE d.state = 'credited' AND (coalesce(p.uc, 0) = 0 OR coalesce(p.sd, 0) = 0)"
    " UNION ALL"
    " SELECT 'credited_twice', deposit_id,"
    "        format('%s user_credit, %s system_debit entries under %s credit ids', uc, sd, ncredit)"
    " FROM per WHERE uc > 1 OR sd > 1 OR ncredit > 1"
    " UNION ALL"
    " SELECT 'unbalanced', deposit_id, format('entries sum to %s, not 0', total)"
    " FROM per WHERE total <> 0"
    " UNION ALL"
    " SELECT 'entries_without_credit', p.deposit_id,"
    "        format('ledger entries exist but the row is %s', coalesce(d.state, 'missing'))"
    " FROM per p LEFT JOIN deposits d USING (deposit_id) WHERE d.state IS DISTINCT FROM 'credited'"
    " UNION ALL"
    " SELECT 'row_mismatch', d.deposit_id,"
    "        format('row says credit %s of %s eggs for user %s; entry %s is %s eggs on %s',"
    "               d.credit_id, d.credit_eggs, d.user_id, e.entry_id, e.amount, e.account_id)"
    " FROM deposits d JOIN ledger_entries e ON e.deposit_id = d.deposit_id AND e.kind = 'user_credit'"
    " WHERE d.state = 'credited' AND (d.credit_id IS DISTINCT FROM e.entry_id"
    "   OR d.credit_id IS DISTINCT FROM e.credit_id OR d.credit_eggs IS DISTINCT FROM e.amount"
    "   OR e.account_id <> 'user:' || d.user_id)"
    " UNION ALL"
    " SELECT 'rounding', e.deposit_id,"
    "        format('%s entry %s: %s eggs for amount %s at rate %s with %s decimals (expected %s, row amount %s)',"
    "               e.kind, e.entry_id, e.amount, e.token_amount, e.rate, e.token_decimals,"
    "               div(e.token_amount * e.rate, power(10::numeric, e.token_decimals)), d.amount)"
    " FROM ledger_entries e LEFT JOIN deposits d USING (deposit_id)"
    " WHERE abs(e.amount) <> div(e.token_amount * e.rate, power(10::numeric, e.token_decimals))"
    "    OR d.amount IS DISTINCT FROM e.token_amount"
    " UNION ALL"
    " SELECT 'balance_mismatch', a.account_id,"
    "        format('balance %s, entries sum to %s', a.balance, coalesce(s.total, 0))"
    " FROM ledger_accounts a"
    " LEFT JOIN (SELECT account_id, sum(amount) AS total FROM ledger_entries GROUP BY account_id) s"
    "   USING (account_id)"
    " WHERE a.balance <> coalesce(s.total, 0)"
    " UNION ALL"
    " SELECT 'balance_mismatch', s.account_id, format('entries sum to %s on an account that does not exist', s.total)"
    " FROM (SELECT account_id, sum(amount) AS total FROM ledger_entries GROUP BY account_id) s"
    " LEFT JOIN ledger_accounts a USING (account_id) WHERE a.account_id IS NULL"
    " UNION ALL"
    " SELECT 'negative_balance', account_id, format('user balance %s is below zero', balance)"
    " FROM ledger_accounts WHERE kind = 'user' AND balance < 0"
    " UNION ALL"
    " SELECT 'below_minimum_waived', deposit_id,"
    "        format('row is below_minimum but its minimum was waived by %s at %s', min_waived_by, min_waived_at)"
    " FROM deposits WHERE state = 'below_minimum' AND min_waived_at IS NOT NULL"
    " ORDER BY 1, 2";

static const char SQL_TOTALS[] =
    "SELECT (SELECT coalesce(sum(balance), 0) FROM ledger_accounts WHERE kind = 'user')::text,"
    "       (SELECT coalesce(sum(credit_eggs), 0) FROM deposits WHERE state = 'credited')::text,"
    "       (SELECT coalesce(sum(balance), 0) FROM ledger_accounts)::text";

static const char SQL_STATES[] = "SELECT state, count(*) FROM deposits GROUP BY state ORDER BY state";

/* Rows for the chain check: every minted/credited EVM row, or a random
 * sample ($1 > 0). A Solana row (no chain_id) has its receipt checked by
 * the mint stage at finalized before it is minted; ownerOf does not apply. */
static const char SQL_CHAIN_ROWS[] =
    "SELECT deposit_id, coalesce(token_id::text, ''), coalesce(nft_contract, ''), from_addr FROM deposits"
    " WHERE state IN ('minted', 'credited') AND chain_id IS NOT NULL"
    " ORDER BY CASE WHEN $1::bigint > 0 THEN random() ELSE 0 END, deposit_id"
    " LIMIT CASE WHEN $1::bigint > 0 THEN $1::bigint END";

/* The Solana receipt check's rows: minted/credited Solana rows (no
 * chain_id), all or a random sample ($1 > 0). */
static const char SQL_SOL_ROWS[] =
    "SELECT deposit_id, coalesce(nft_contract, ''), from_addr FROM deposits"
    " WHERE state IN ('minted', 'credited') AND chain_id IS NULL"
    " ORDER BY CASE WHEN $1::bigint > 0 THEN random() ELSE 0 END, deposit_id"
    " LIMIT CASE WHEN $1::bigint > 0 THEN $1::bigint END";

struct audit {
    struct audit_config cfg;
    PGconn *pg;
    json_t *checks; /* check name -> count */
    long found;
    const char *chain_arg; /* --chain FROM-TO, or NULL */
    const char *rpc_urls;  /* --rpc URL, else cfg.rpc_urls */
};

static void report(struct audit *a, const char *check, const char *subject, const char *detail)
{
    a->found++;
    json_t *n = json_object_get(a->checks, check);
    json_object_set_new(a->checks, check, json_integer(n != NULL ? json_integer_value(n) + 1 : 1));
    if (a->found <= a->cfg.lines_max)
        printf("DISCREPANCY %s %s: %s\n", check, subject, detail);
}

static int run_sql_checks(struct audit *a, json_t *summary)
{
    PGresult *r = PQexecParams(a->pg, SQL_CHECKS, 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "zl-audit: ledger checks failed: %s(is migration 005 applied?)\n", PQerrorMessage(a->pg));
        PQclear(r);
        return -1;
    }
    for (int i = 0; i < PQntuples(r); i++)
        report(a, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
    PQclear(r);

    r = PQexecParams(a->pg, SQL_TOTALS, 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "zl-audit: totals failed: %s", PQerrorMessage(a->pg));
        PQclear(r);
        return -1;
    }
    const char *users = PQgetvalue(r, 0, 0), *credited = PQgetvalue(r, 0, 1), *all = PQgetvalue(r, 0, 2);
    char detail[512];
    if (strcmp(users, credited) != 0) {
        snprintf(detail, sizeof(detail), "user balances sum to %s, credited rows to %s eggs", users, credited);
        report(a, "totals", "user_balances", detail);
    }
    if (strcmp(all, "0") != 0) {
        snprintf(detail, sizeof(detail), "all balances sum to %s, not 0 (double entry broken)", all);
        report(a, "totals", "all_balances", detail);
    }
    json_object_set_new(summary, "user_balances", json_string(users));
    json_object_set_new(summary, "credited_eggs", json_string(credited));
    PQclear(r);

    r = PQexecParams(a->pg, SQL_STATES, 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "zl-audit: state counts failed: %s", PQerrorMessage(a->pg));
        PQclear(r);
        return -1;
    }
    json_t *states = json_object();
    for (int i = 0; i < PQntuples(r); i++)
        json_object_set_new(states, PQgetvalue(r, i, 0), json_integer(strtoll(PQgetvalue(r, i, 1), NULL, 10)));
    json_object_set_new(summary, "states", states);
    PQclear(r);
    return 0;
}

/* An ABI word (32 bytes) as bare lowercase hex, NUL included: the
 * argument appended to a selector in eth_call data. */
#define WORD_HEX_SIZE (ZL_HASH_HEX_DIGITS + 1)

/* Writes the 32-byte big-endian value of a decimal uint256 as 64 hex
 * digits. Returns -1 when dec is not a decimal that fits. */
static int dec_to_hex64(const char *dec, char out[WORD_HEX_SIZE])
{
    uint8_t v[32] = {0};
    size_t n = strlen(dec);
    if (n == 0 || n > ZL_UINT256_DEC_DIGITS_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)dec[i]))
            return -1;
        unsigned carry = (unsigned)(dec[i] - '0');
        for (int k = 31; k >= 0; k--) { /* v = v * 10 + digit */
            unsigned x = v[k] * 10u + carry;
            v[k] = (uint8_t)(x & 0xff);
            carry = x >> 8;
        }
        if (carry != 0)
            return -1;
    }
    return zl_hex_encode_bare(v, sizeof(v), out, WORD_HEX_SIZE);
}

/* ownerOf(uint256) of one row. Returns 0 when checked (discrepancy or
 * not), -1 when the chain could not be asked (the audit is incomplete). */
static int check_owner(struct audit *a, struct zl_rpc *rpc, const char *id, const char *token_id,
                       const char *contract, const char *from)
{
    char hex[WORD_HEX_SIZE], data[ZL_HEX_SIZE(4 + 32)]; /* selector + one word */
    if (dec_to_hex64(token_id, hex) != 0) {
        report(a, "token_id", id, "token id is not a uint256");
        return 0;
    }
    snprintf(data, sizeof(data), "0x6352211e%s", hex); /* ownerOf(uint256) */
    json_t *params = json_pack("[{s:s, s:s}, s]", "to", contract, "data", data, "latest");
    json_t *result = NULL;
    struct zl_rpc_error rerr; /* zl_rpc_call clears it */
    char err[ZL_ERRSTR_SIZE] = "";
    zl_class c = zl_rpc_call(rpc, "eth_call", params, &result, &rerr, err, sizeof(err));
    json_decref(params);
    char detail[ZL_ERRSTR_SIZE + 128];
    if (c != ZL_OK && rerr.answered) {
        snprintf(detail, sizeof(detail), "ownerOf(%s) on %s reverted (no such token?): %s", token_id, contract,
                 rerr.message);
        report(a, "not_owner", id, detail);
        return 0;
    }
    if (c != ZL_OK) {
        fprintf(stderr, "zl-audit: ownerOf for %s: %s\n", id, err);
        return -1;
    }
    const char *word = json_is_string(result) ? json_string_value(result) : "";
    if (strlen(word) != 66 || strncasecmp(word + 26, from + 2, 40) != 0) {
        snprintf(detail, sizeof(detail), "ownerOf(%s) on %s is %s, not the depositor %s", token_id, contract, word,
                 from);
        report(a, "not_owner", id, detail);
    }
    json_decref(result);
    return 0;
}

/* Makes an RPC client of the audit on urls (one endpoint's word at a time:
 * the audit is a second opinion, read from an endpoint of its own); setting
 * names the setting for the error message. */
static struct zl_rpc *audit_rpc_on(const struct audit *a, const char *urls, const char *name, const char *setting)
{
    struct zl_rpc_opts o = {
        .urls = urls,
        .timeout_ms = a->cfg.rpc_timeout_ms,
        .hedge_after_ms = 0,
        .quorum = 1,
        .breaker_failure_ratio = 0.5,
        .breaker_sampling_ms = 30000,
        .breaker_min_throughput = 20,
        .breaker_break_ms = 5000,
        .name = name,
        .allow_http = a->cfg.rpc_allow_http,
    };
    struct zl_rpc *rpc = NULL;
    char err[ZL_ERRSTR_SIZE];
    if (zl_rpc_new(&rpc, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "zl-audit: %s: %s\n", setting, err);
        return NULL;
    }
    return rpc;
}

/* The EVM client, on cfg.rpc_urls (or --rpc). */
static struct zl_rpc *audit_rpc(const struct audit *a)
{
    return audit_rpc_on(a, a->rpc_urls, "rpc", "ZL_AUDIT_RPC_URLS");
}

static void report_cb(void *ctx, const char *check, const char *subject, const char *detail)
{
    report(ctx, check, subject, detail);
}

/* Parses --chain's FROM-TO, FROM-head or last:N against the head. */
static int parse_range(const struct audit *a, struct zl_rpc *rpc, uint64_t *from, uint64_t *to)
{
    const char *s = a->chain_arg;
    char *end = NULL, err[ZL_ERRSTR_SIZE];
    bool last = strncmp(s, "last:", 5) == 0;
    uint64_t head = 0;
    if ((last || strstr(s, "-head") != NULL) && zl_reconcile_head(rpc, &head, err, sizeof(err)) != ZL_OK) {
        fprintf(stderr, "zl-audit: --chain: head: %s\n", err);
        return -1;
    }
    if (last) {
        uint64_t n = strtoull(s + 5, &end, 10), lag = (uint64_t)a->cfg.lag_blocks;
        if (*end != '\0' || n == 0 || head < lag) {
            fprintf(stderr, "zl-audit: --chain %s: want last:N with N > 0 (head %" PRIu64 ")\n", s, head);
            return -1;
        }
        *to = head - lag;
        *from = *to + 1 > n ? *to + 1 - n : 0;
        return 0;
    }
    *from = strtoull(s, &end, 10);
    if (end == s || *end != '-') {
        fprintf(stderr, "zl-audit: --chain %s: want FROM-TO, FROM-head or last:N\n", s);
        return -1;
    }
    const char *t = end + 1;
    *to = strcmp(t, "head") == 0 ? head : strtoull(t, &end, 10);
    if (strcmp(t, "head") != 0 && (end == t || *end != '\0')) {
        fprintf(stderr, "zl-audit: --chain %s: want FROM-TO, FROM-head or last:N\n", s);
        return -1;
    }
    return 0;
}

/* Writes the textfile (tmp + rename, so the collector never reads half a
 * file), keeping the last clean block of an earlier run when this one is
 * not clean. */
static void write_textfile(const struct audit *a, uint64_t to, bool clean)
{
    const char *path = a->cfg.textfile;
    unsigned long long last = 0;
    bool have_last = clean;
    if (clean) {
        last = to;
    } else {
        FILE *old = fopen(path, "r");
        char line[512];
        while (old != NULL && fgets(line, sizeof(line), old) != NULL) {
            char *v = strchr(line, ' ');
            if (strncmp(line, "zl_audit_chain_last_clean_block", 31) == 0 && v != NULL) {
                last = strtoull(v + 1, NULL, 10);
                have_last = true;
            }
        }
        if (old != NULL)
            fclose(old);
    }
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        fprintf(stderr, "zl-audit: cannot write ZL_AUDIT_TEXTFILE %s\n", tmp);
        return;
    }
    fprintf(f, "# HELP zl_audit_last_run_ok 1 when the last zl-audit --chain found the books and the chain agree\n"
               "# TYPE zl_audit_last_run_ok gauge\nzl_audit_last_run_ok %d\n"
               "# HELP zl_audit_discrepancies discrepancies found by the last zl-audit run\n"
               "# TYPE zl_audit_discrepancies gauge\nzl_audit_discrepancies %ld\n"
               "# HELP zl_audit_last_run_timestamp_seconds when the last zl-audit --chain finished\n"
               "# TYPE zl_audit_last_run_timestamp_seconds gauge\nzl_audit_last_run_timestamp_seconds %lld\n",
            clean ? 1 : 0, a->found, (long long)(zl_now_ms() / 1000));
    if (have_last)
        fprintf(f, "# HELP zl_audit_chain_last_clean_block last block of the last clean zl-audit --chain range\n"
                   "# TYPE zl_audit_chain_last_clean_block gauge\nzl_audit_chain_last_clean_block %llu\n",
                last);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        fprintf(stderr, "zl-audit: cannot write ZL_AUDIT_TEXTFILE %s\n", path);
}

/* --chain: the rescan of every deposit token. Returns 0 when the range was
 * compared for each, -1 when not. */
static int run_range_check(struct audit *a, json_t *summary)
{
    static struct zl_tokens tokens;
    char err[ZL_ERRSTR_SIZE];
    if (zl_tokens_load(&tokens, a->cfg.tokens, a->cfg.token, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "zl-audit: %s\n", err);
        return -1;
    }
    if (a->rpc_urls[0] == '\0' || tokens.n == 0) {
        fprintf(stderr, "zl-audit: --chain needs an endpoint (--rpc URL or ZL_AUDIT_RPC_URLS) and ZL_TOKENS (or "
                        "ZL_TOKEN_ADDRESS)\n");
        return -1;
    }
    struct zl_rpc *rpc = audit_rpc(a);
    uint64_t from = 0, to = 0;
    if (rpc == NULL || parse_range(a, rpc, &from, &to) != 0) {
        zl_rpc_free(rpc);
        return -1;
    }
    long before = a->found;
    struct zl_reconcile_stats sum = {0};
    json_t *names = json_array();
    for (size_t i = 0; i < tokens.n; i++) {
        struct zl_reconcile_opts o = {.pg = a->pg, .rpc = rpc, .chain_id = (uint64_t)a->cfg.chain_id,
                                      .token = tokens.t[i].address, .chunk_blocks = a->cfg.chunk_blocks,
                                      .report = report_cb, .ctx = a};
        struct zl_reconcile_stats st;
        zl_class c = zl_reconcile_range(&o, from, to, &st, err, sizeof(err));
        if (c != ZL_OK) {
            fprintf(stderr, "zl-audit: --chain %" PRIu64 "-%" PRIu64 " of %s: %s\n", from, to, tokens.t[i].symbol,
                    err);
            zl_rpc_free(rpc);
            json_decref(names);
            return -1;
        }
        sum.transfers += st.transfers;
        sum.registered += st.registered;
        sum.rows += st.rows;
        sum.requests += st.requests;
        json_array_append_new(names, json_string(tokens.t[i].symbol));
    }
    zl_rpc_free(rpc);
    json_object_set_new(summary, "chain_range",
                        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:o}", "from", (json_int_t)from, "to", (json_int_t)to,
                                  "transfers", (json_int_t)sum.transfers, "registered", (json_int_t)sum.registered,
                                  "rows", (json_int_t)sum.rows, "requests", (json_int_t)sum.requests, "clean",
                                  a->found == before, "tokens", names));
    return 0;
}

static int run_chain_checks(struct audit *a, json_t *summary)
{
    json_t *chain = json_object();
    json_object_set_new(summary, "chain", chain);
    char sample[ZL_INT64_DEC_SIZE];
    snprintf(sample, sizeof(sample), "%lld", (long long)a->cfg.chain_sample);
    const char *params[1] = {sample};
    PGresult *r = PQexecParams(a->pg, SQL_CHAIN_ROWS, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "zl-audit: reading minted rows failed: %s", PQerrorMessage(a->pg));
        PQclear(r);
        return -1;
    }
    /* Token ids need no chain: the id is a function of the deposit. */
    for (int i = 0; i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0), *tid = PQgetvalue(r, i, 1);
        char want[ZL_UINT256_DEC_SIZE];
        if (zl_token_id_decimal(id, want, sizeof(want)) == 0 && strcmp(want, tid) != 0) {
            char detail[256];
            snprintf(detail, sizeof(detail), "token id %s is not keccak256(deposit_id) = %s", tid, want);
            report(a, "token_id", id, detail);
        }
    }
    long checked = 0;
    int rc = 0;
    if (a->rpc_urls[0] == '\0') {
        json_object_set_new(chain, "skipped", json_true());
    } else {
        struct zl_rpc *rpc = audit_rpc(a);
        if (rpc == NULL)
            rc = -1;
        for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
            rc = check_owner(a, rpc, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                             PQgetvalue(r, i, 3));
            if (rc == 0)
                checked++;
        }
        if (rpc != NULL)
            zl_rpc_free(rpc);
        json_object_set_new(chain, "skipped", json_false());
    }
    json_object_set_new(chain, "checked", json_integer(checked));
    json_object_set_new(chain, "rows", json_integer(PQntuples(r)));
    PQclear(r);
    return rc;
}

/* Each minted/credited Solana deposit's receipt, read at finalized from
 * ZL_AUDIT_SOLANA_RPC_URLS (common/solana_receipt.h). An endpoint that
 * cannot answer makes the audit incomplete (-1), never clean. */
static int run_solana_checks(struct audit *a, json_t *summary)
{
    json_t *sol = json_object();
    json_object_set_new(summary, "solana", sol);
    if (a->cfg.sol_rpc_urls[0] == '\0') {
        json_object_set_new(sol, "skipped", json_true());
        return 0;
    }
    char sample[ZL_INT64_DEC_SIZE];
    snprintf(sample, sizeof(sample), "%lld", (long long)a->cfg.chain_sample);
    const char *params[1] = {sample};
    PGresult *r = PQexecParams(a->pg, SQL_SOL_ROWS, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "zl-audit: reading Solana rows failed: %s", PQerrorMessage(a->pg));
        PQclear(r);
        return -1;
    }
    struct zl_rpc *rpc = audit_rpc_on(a, a->cfg.sol_rpc_urls, "solana-rpc", "ZL_AUDIT_SOLANA_RPC_URLS");
    char err[ZL_ERRSTR_SIZE];
    int rc = rpc == NULL ? -1 : 0;
    long checked = 0;
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0), *mint = PQgetvalue(r, i, 1), *owner = PQgetvalue(r, i, 2);
        bool is_receipt = false;
        uint64_t held = 0;
        if (zl_sol_receipt_audit(rpc, mint, owner, "finalized", &is_receipt, &held, err, sizeof(err)) != ZL_OK) {
            fprintf(stderr, "zl-audit: Solana receipt of %s: %s\n", id, err);
            rc = -1;
            break;
        }
        char detail[256];
        if (!is_receipt) {
            snprintf(detail, sizeof(detail), "%s is not a Token-2022 receipt of supply 1 with no minting right", mint);
            report(a, "sol_not_receipt", id, detail);
        } else if (held != 1) {
            snprintf(detail, sizeof(detail), "the payer %s holds %llu of receipt %s, not 1", owner,
                     (unsigned long long)held, mint);
            report(a, "sol_not_owner", id, detail);
        }
        checked++;
    }
    zl_rpc_free(rpc);
    json_object_set_new(sol, "skipped", json_false());
    json_object_set_new(sol, "checked", json_integer(checked));
    json_object_set_new(sol, "rows", json_integer(PQntuples(r)));
    PQclear(r);
    return rc;
}

int main(int argc, char **argv)
{
    static struct audit a;
    static struct zl_boot boot;
    struct zl_config_section sec = {"zl-audit", audit_settings, sizeof(audit_settings) / sizeof(audit_settings[0]),
                                    &a.cfg};
    /* Our own options (--chain, --rpc) come out; the rest is the config's. */
    char *rest[ARGS_MAX];
    const char *rpc_override = NULL;
    int nrest = 0;
    for (int i = 0; i < argc && nrest < ARGS_MAX - 1; i++) {
        bool ours = i > 0 && (strcmp(argv[i], "--chain") == 0 || strcmp(argv[i], "--rpc") == 0);
        if (ours && i + 1 >= argc) {
            fprintf(stderr, "zl-audit: %s needs a value\n", argv[i]);
            return ZL_EXIT_CONFIG;
        }
        if (ours && strcmp(argv[i], "--chain") == 0)
            a.chain_arg = argv[++i];
        else if (ours)
            rpc_override = argv[++i];
        else
            rest[nrest++] = argv[i];
    }
    rest[nrest] = NULL;
    struct zl_boot_opts opts = {.name = "zl-audit", .sections = &sec, .nsections = 1, .argc = nrest, .argv = rest};
    int lrc = ZL_EXIT_OK;
    if (zl_boot_start(&boot, &opts, &lrc) != 0)
        return lrc;
    a.rpc_urls = rpc_override != NULL ? rpc_override : a.cfg.rpc_urls;
    int exit_code = 2;
    json_t *summary = json_object();
    a.checks = json_object();
    a.pg = PQconnectdb(a.cfg.pg_dsn);
    if (PQstatus(a.pg) != CONNECTION_OK) {
        fprintf(stderr, "zl-audit: cannot connect to ZL_PG_DSN: %s", PQerrorMessage(a.pg));
        goto out;
    }
    /* One snapshot for every query, so a running pipeline cannot make the
     * books look unbalanced between two statements. */
    PGresult *b = PQexec(a.pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    bool began = PQresultStatus(b) == PGRES_COMMAND_OK;
    PQclear(b);
    if (!began) {
        fprintf(stderr, "zl-audit: BEGIN failed: %s", PQerrorMessage(a.pg));
        goto out;
    }
    if (run_sql_checks(&a, summary) != 0 || run_chain_checks(&a, summary) != 0 ||
        run_solana_checks(&a, summary) != 0 || (a.chain_arg != NULL && run_range_check(&a, summary) != 0))
        goto out;
    exit_code = a.found == 0 ? 0 : 1;
out:
    if (a.found > a.cfg.lines_max)
        printf("... and %ld more discrepancies (ZL_AUDIT_LINES_MAX=%lld)\n", a.found - (long)a.cfg.lines_max,
               (long long)a.cfg.lines_max);
    /* The human line first; the JSON line is always last, for machines. */
    if (exit_code == 0)
        printf("zl-audit: OK: the books balance, no discrepancies\n");
    else if (exit_code == 1)
        printf("zl-audit: FAILED: %ld discrepancies\n", a.found);
    else
        printf("zl-audit: INCOMPLETE: could not finish the audit (see stderr); %ld discrepancies so far\n", a.found);
    json_t *range = json_object_get(summary, "chain_range");
    if (a.chain_arg != NULL && a.cfg.textfile[0] != '\0')
        write_textfile(&a, range != NULL ? (uint64_t)json_integer_value(json_object_get(range, "to")) : 0,
                       exit_code == 0);
    json_object_set_new(summary, "ok", json_boolean(exit_code == 0));
    json_object_set_new(summary, "complete", json_boolean(exit_code != 2));
    json_object_set_new(summary, "discrepancies", json_integer(a.found));
    json_object_set(summary, "checks", a.checks);
    char *line = json_dumps(summary, JSON_COMPACT | JSON_SORT_KEYS);
    if (line != NULL)
        printf("%s\n", line);
    free(line);
    json_decref(summary);
    json_decref(a.checks);
    PQfinish(a.pg);
    zl_boot_stop(&boot);
    return exit_code;
}
