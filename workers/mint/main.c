/* mint: zl.nft.pinned -> zl.nft.minted.
 *
 * For each pinned deposit, mints ZLReceipt token uint256(keccak256(deposit_id))
 * with the deposit's token_uri to the depositor (the `from` of the deposit's
 * Transfer), exactly once, whatever crashes:
 *   1. the contract refuses a second mint of the same id;
 *   2. the signed transaction is stored in PostgreSQL, in the transaction that
 *      allocates its nonce (FOR UPDATE) and moves the row pinned ->
 *      mint_submitted, BEFORE it is broadcast (common/nonce.h);
 *   3. a retry finds the stored transaction and re-broadcasts the same bytes
 *      (or a fee bump of the same call at the same nonce) instead of signing
 *      anew.
 * Then the runtime's CAS moves the row to minted, with mint_tx_hash, token_id
 * and nft_contract written by in_tx, and publishes zl.nft.minted.
 *
 * Waiting: process() polls for the receipt for at most
 * ZL_MINT_RECEIPT_WAIT_MS (a block or two), then returns ZL_DEFER so the delay
 * tiers re-check later without blocking the partition; the same for missing
 * confirmations. A transaction pending longer than ZL_MINT_STUCK_MS is
 * re-signed at the same nonce with both fees raised by ZL_MINT_FEE_BUMP_PCT
 * (>= 10%, geth's replacement rule); every hash is tracked and checked.
 *
 * Batching: under backlog (a poll batch holding several deposits to mint),
 * the runtime hands the whole batch to mint_process_batch, which signs one
 * mintBatch(to[], ids[], uris[]) per ZL_MINT_BATCH_MAX fresh deposits and
 * stores it with ALL its deposit ids before broadcasting (the same three
 * defences: the contract skips ids that already exist, so a re-sent batch
 * mints only what is missing). Deposits that already have a stored tx are
 * grouped by it and driven once. After the receipt every deposit of a batch
 * is confirmed before its row moves to minted: by the receipt's own
 * Transfer(0, depositor, id) log, or, for an id the batch skipped, on the
 * chain (ownerOf = depositor, and the hash of the tx whose Transfer minted
 * it). A batch whose estimate reverts is split into single mints, which
 * classify each deposit exactly.
 *
 * Failures: a revert of the estimate or of the mined tx because the token
 * already exists is success when ownerOf(tokenId) is the depositor; any other
 * revert is permanent. Insufficient funds for gas is an outage (pause; fund
 * the signer). A transaction the node refuses for good (e.g. intrinsic gas
 * too low) would leave its nonce unused and block every later one, so that
 * nonce is re-signed as a 0-value self-send (a "filler") and the deposit goes
 * to the DLQ; a janitor re-broadcasts pending fillers until they are mined.
 * A database without the nonce tables (004_mint.sql not applied) is an
 * outage too: the stage pauses until the migration is applied.
 *
 * Signers: ZL_SIGNER_KEY_FILE is one key every copy shares (they queue on
 * its nonce row); ZL_SIGNER_KEY_FILES / ZL_SIGNER_KEY_DIR is a pool, of
 * which each copy leases one key in the database before it consumes, and a
 * copy with no free key waits, not ready (common/signer_pool.h). Every
 * process call first checks the lease is still this copy's and names the
 * holder on the stage's connection, where 018's trigger fences a copy
 * whose lease was taken over.
 *
 * Files: this one holds the settings and the stage table; single.c the
 * single mint, batch.c the batch policy, verdict.c what the chain says about
 * each deposit's token. Fees, signing, broadcast, receipts, fee bumps and
 * nonce fillers are common/txmgr.h's, classes decided there and passed on.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ethtx.h"
#include "hex.h"
#include "log.h"
#include "mint.h"
#include "signer_pool.h"

/* In zl_tx_fee_mode's order: the stored index is the mode. */
static const char *const tx_types[] = {"auto", "eip1559", "legacy", NULL};

#define OFF(f) offsetof(struct mint_config, f)
static const struct zl_setting mint_settings[] = {
    {"ZL_RPC_URLS", ZL_CFG_STR, NULL, "JSON-RPC endpoints of the NFT's chain, comma-separated, in preference order",
     OFF(rpc_urls), 0, 0},
    {"ZL_RPC_TIMEOUT_MS", ZL_CFG_INT, "10000", "timeout of one JSON-RPC request", OFF(rpc_timeout_ms), 100, 600000},
    {"ZL_RPC_HEDGE_AFTER_MS", ZL_CFG_INT, "0", "ask the next endpoint too after this long (0 = never)",
     OFF(rpc_hedge_after_ms), 0, 600000},
    {"ZL_RPC_ALLOW_HTTP", ZL_CFG_BOOL, "false", "accept plain http:// endpoints that are not loopback (no TLS)",
     OFF(rpc_allow_http), 0, 0},
    {"ZL_MINT_CHAIN_ID", ZL_CFG_INT, "0", "chain id signed into mint transactions (0 = ask eth_chainId at start)",
     OFF(chain_id), 0, 0},
    {"ZL_NFT_ADDRESS", ZL_CFG_STR, NULL, "ZLReceipt contract address", OFF(nft_address), 0, 0},
    {"ZL_SIGNER_KEY_FILE", ZL_CFG_SECRET_FILE, "",
     "file holding the minter's private key (64 hex digits), shared by every copy; must not be readable by group "
     "or others (or set ZL_SIGNER_KEY_FILES / ZL_SIGNER_KEY_DIR for a pool)",
     OFF(signer_key), 0, 0},
    {"ZL_TX_TYPE", ZL_CFG_ENUM(tx_types), "auto",
     "auto (EIP-1559 when the chain has a base fee, else legacy), eip1559 or legacy", OFF(tx_type), 0, 0},
    {"ZL_MINT_CONFIRMATIONS", ZL_CFG_INT, "1", "blocks including the mint's before it counts as minted",
     OFF(confirmations), 1, 1000},
    {"ZL_MINT_RECEIPT_WAIT_MS", ZL_CFG_INT, "5000",
     "poll for a receipt this long in one attempt, then defer to the delay tiers", OFF(receipt_wait_ms), 0, 600000},
    {"ZL_MINT_RECEIPT_POLL_MS", ZL_CFG_INT, "100", "between receipt polls", OFF(receipt_poll_ms), 10, 60000},
    {"ZL_MINT_STUCK_MS", ZL_CFG_INT, "60000", "a tx pending this long is replaced at its nonce with higher fees",
     OFF(stuck_ms), 100, 86400000},
    {"ZL_MINT_FEE_BUMP_PCT", ZL_CFG_INT, "20", "fee raise of a replacement, both fees (nodes require >= 10)",
     OFF(fee_bump_pct), 10, 1000},
    {"ZL_MAX_FEE_GWEI", ZL_CFG_INT, "500",
     "cap on max fee per gas (legacy: gas price); above it new mints wait, and a stuck tx whose bump would pass it"
     " is replaced by a self-send freeing its nonce",
     OFF(max_fee_gwei), 1, 1000000},
    {"ZL_MAX_PRIORITY_FEE_GWEI", ZL_CFG_INT, "10", "cap on the priority fee per gas", OFF(max_priority_fee_gwei), 0,
     1000000},
    {"ZL_MIN_PRIORITY_FEE_MWEI", ZL_CFG_INT, "1000", "floor of the priority fee, in 10^6 wei (1000 = 1 gwei)",
     OFF(min_priority_fee_mwei), 0, 1000000000},
    {"ZL_GAS_MARGIN_PCT", ZL_CFG_INT, "25", "gas limit = eth_estimateGas + this percentage", OFF(gas_margin_pct), 0,
     400},
    {"ZL_MINT_GAS_LIMIT", ZL_CFG_INT, "0", "fixed gas limit of a mint instead of the estimate (0 = estimate)",
     OFF(gas_limit), 0, 30000000},
    {"ZL_NFT_FROM_BLOCK", ZL_CFG_INT, "0", "block the NFT contract was deployed in: where mint logs are searched from",
     OFF(nft_from_block), 0, 0},
    {"ZL_MINT_JANITOR_MS", ZL_CFG_INT, "5000", "between re-broadcasts of pending nonce fillers", OFF(janitor_ms),
     100, 3600000},
    {"ZL_MINT_BATCH_MAX", ZL_CFG_INT, "50",
     "deposits per mintBatch tx when a poll batch holds several to mint (1 = one mint tx per deposit)",
     OFF(batch_max), 1, ZL_NONCE_BATCH_MAX},
    {"ZL_MINT_INFLIGHT_MAX", ZL_CFG_INT, "16",
     "unconfirmed txs per signer at consecutive nonces (1 = wait for each receipt, holding the partition)",
     OFF(inflight_max), 1, 256},
    {"ZL_MINT_BUMP_AFTER_BLOCKS", ZL_CFG_INT, "3",
     "a tx pending this many blocks is replaced at its nonce with higher fees (0 = ZL_MINT_STUCK_MS only)",
     OFF(bump_after_blocks), 0, 100000},
    {"ZL_MINT_HEAD_POLL_MS", ZL_CFG_INT, "100",
     "while deposits wait for a block, read the head this often: their re-checks then come when the next block"
     " is due, not a block after the defer (0 = off)", OFF(head_poll_ms), 0, 60000},
};
#undef OFF

static struct mint g_mint;

/* A mint transaction's id: an EVM hash or a Solana signature. */
static bool valid_mint_tx(const char *s)
{
    return zl_valid_hash32(s) || zl_valid_sol_signature(s);
}

static zl_class mint_republish(void *ctx, struct zl_work *w)
{
    (void)ctx;
    if (!valid_mint_tx(w->row.facts.mint_tx_hash) || w->row.facts.token_id[0] == '\0' || w->row.facts.nft_contract[0] == '\0') {
        snprintf(w->error, sizeof(w->error), "row is %s but lacks mint_tx_hash/token_id/nft_contract",
                 zl_state_name(w->row.state));
        return ZL_PERMANENT;
    }
    zl_event_derive(&w->out, &w->in, ZL_TOPIC_MINTED);
    snprintf(w->out.mint_tx_hash, sizeof(w->out.mint_tx_hash), "%s", w->row.facts.mint_tx_hash);
    snprintf(w->out.token_id, sizeof(w->out.token_id), "%s", w->row.facts.token_id);
    snprintf(w->out.nft_contract, sizeof(w->out.nft_contract), "%s", w->row.facts.nft_contract);
    return ZL_OK;
}

static const char mint_set_sql[] =
    "UPDATE deposits SET mint_tx_hash = m.hash, token_id = m.token::numeric, nft_contract = m.nft, updated_at = now()"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS m(id, hash, token, nft)"
    " WHERE deposits.deposit_id = m.id";

static int mint_prepare(void *ctx, struct zl_pg *pg)
{
    (void)ctx;
    return zl_pg_add_stmt(pg, "mint_set_result", mint_set_sql, 4);
}

static zl_class mint_in_tx(void *ctx, struct zl_pg *pg, struct zl_work *const *moved, size_t n, char *errstr,
                           size_t errstr_size)
{
    (void)ctx;
    zl_class c = ZL_TRANSIENT;
    const char **cols[4] = {calloc(n, sizeof(char *)), calloc(n, sizeof(char *)), calloc(n, sizeof(char *)),
                            calloc(n, sizeof(char *))};
    char *arrs[4] = {NULL, NULL, NULL, NULL};
    bool oom = cols[0] == NULL || cols[1] == NULL || cols[2] == NULL || cols[3] == NULL;
    for (size_t i = 0; !oom && i < n; i++) {
        /* Both sides of the boundary: the row gets what the event carries. */
        ZL_ASSERT(valid_mint_tx(moved[i]->out.mint_tx_hash) && zl_valid_uint256_dec(moved[i]->out.token_id));
        cols[0][i] = moved[i]->in.deposit_id;
        cols[1][i] = moved[i]->out.mint_tx_hash;
        cols[2][i] = moved[i]->out.token_id;
        cols[3][i] = moved[i]->out.nft_contract;
    }
    for (int k = 0; !oom && k < 4; k++) {
        arrs[k] = zl_pg_array_literal(cols[k], n);
        oom = arrs[k] == NULL;
    }
    if (oom) {
        snprintf(errstr, errstr_size, "out of memory");
    } else {
        const char *params[4] = {arrs[0], arrs[1], arrs[2], arrs[3]};
        PGresult *r = zl_pg_prepared(pg, "mint_set_result", 4, params, PGRES_COMMAND_OK, &c, errstr, errstr_size);
        if (r != NULL)
            PQclear(r);
    }
    for (int k = 0; k < 4; k++) {
        free(cols[k]);
        free(arrs[k]);
    }
    return c;
}

/* The outage is over when mint's own connection prepares its statements
 * again (a missing 004_mint.sql keeps it paused until it is applied) and
 * the chain whose steps met the outage answers: asking EVM alone kept a
 * Solana outage paused for as long as EVM was away. */
static zl_class mint_probe(void *ctx, char *errstr, size_t errstr_size)
{
    struct mint *m = ctx;
    zl_class c = zl_pg_ensure(&m->pg, errstr, errstr_size);
    if (c == ZL_OK)
        c = zl_signer_pool_bind(mint_pool(), &m->pg, errstr, errstr_size);
    if (c == ZL_OK)
        c = mint_solana_probe(errstr, errstr_size);
    if (c != ZL_OK || !m->evm_outage)
        return c;
    c = zl_txmgr_read_head(&m->tx, errstr, errstr_size);
    if (c == ZL_OK)
        m->evm_outage = false;
    return c;
}

static void mint_fini(void *ctx)
{
    struct mint *m = ctx;
    if (m->pg_inited)
        zl_pg_close(&m->pg);
    m->pg_inited = false;
    zl_rpc_free(m->rpc);
    m->rpc = NULL;
    zl_secp_key_free(&m->key);
    zl_signer_pool_stop(mint_pool());
    mint_solana_fini();
}

/* A leased key is used only while the lease is this copy's: checked, and
 * the holder named on the connection that stores signatures, before every
 * call. */
static zl_class mint_process_leased(void *ctx, struct zl_work *w)
{
    struct mint *m = ctx;
    zl_class c = zl_pg_ensure(&m->pg, w->error, sizeof(w->error));
    if (c == ZL_OK)
        c = zl_signer_pool_bind(mint_pool(), &m->pg, w->error, sizeof(w->error));
    if (c == ZL_OK && zl_event_is_solana(&w->in)) {
        mint_solana_process(m, w);
        return w->result;
    }
    if (c != ZL_OK)
        return c;
    c = mint_process(ctx, w);
    m->evm_outage = m->evm_outage || c == ZL_OUTAGE;
    return c;
}

/* Solana deposits are each driven on their own (solana.c); the EVM ones
 * of the batch go to mint_process_batch together, in their order. */
static void mint_process_batch_leased(void *ctx, struct zl_work *const *ws, size_t n)
{
    struct mint *m = ctx;
    char err[ZL_ERRSTR_SIZE];
    zl_class c = zl_pg_ensure(&m->pg, err, sizeof(err));
    if (c == ZL_OK)
        c = zl_signer_pool_bind(mint_pool(), &m->pg, err, sizeof(err));
    if (c != ZL_OK) {
        zl_works_fail(ws, n, c, err);
        return;
    }
    struct zl_work **evm = calloc(n, sizeof(*evm));
    if (evm == NULL) {
        zl_works_fail(ws, n, ZL_TRANSIENT, "mint: out of memory");
        return;
    }
    size_t ne = 0;
    for (size_t i = 0; i < n; i++) {
        if (zl_event_is_solana(&ws[i]->in))
            mint_solana_process(m, ws[i]);
        else
            evm[ne++] = ws[i];
    }
    if (ne > 0)
        mint_process_batch(ctx, evm, ne);
    for (size_t i = 0; i < ne; i++)
        m->evm_outage = m->evm_outage || evm[i]->result == ZL_OUTAGE;
    free(evm);
}

static int mint_init(void *ctx, const struct zl_runtime_env *env, char *errstr, size_t errstr_size)
{
    struct mint *m = ctx;
    ZL_ASSERT(ZL_TX_FEES_AUTO == 0 && ZL_TX_FEES_EIP1559 == 1 && ZL_TX_FEES_LEGACY == 2);
    zl_tx_fee_mode fee_mode = (zl_tx_fee_mode)m->cfg.tx_type; /* config checked it is a choice */
    if (zl_tx_parse_address(m->cfg.nft_address, m->nft) != 0) {
        snprintf(errstr, errstr_size, "ZL_NFT_ADDRESS: \"%s\" is not 0x + 40 hex digits", m->cfg.nft_address);
        return -1;
    }
    zl_hex_encode(m->nft, 20, m->nft_hex, sizeof(m->nft_hex));
    int rc = mint_signer_start(m, env, errstr, errstr_size);
    if (rc != 0)
        return rc;
    /* Breaker settings left 0: breaker.h's defaults, as for every stage. */
    struct zl_rpc_opts ro = {.urls = m->cfg.rpc_urls, .timeout_ms = m->cfg.rpc_timeout_ms,
                             .hedge_after_ms = m->cfg.rpc_hedge_after_ms, .quorum = 1, .metrics = env->metrics,
                             .health = env->health, .name = "rpc", .allow_http = m->cfg.rpc_allow_http};
    if (zl_rpc_new(&m->rpc, &ro, errstr, errstr_size) != 0) {
        zl_secp_key_free(&m->key);
        zl_signer_pool_stop(mint_pool());
        return -1;
    }
    struct zl_txmgr_opts to = {
        .rpc = m->rpc, .pg = &m->pg, .key = &m->key, .fee_mode = fee_mode,
        .max_fee_gwei = m->cfg.max_fee_gwei, .max_priority_fee_gwei = m->cfg.max_priority_fee_gwei,
        .min_priority_fee_mwei = m->cfg.min_priority_fee_mwei, .fee_bump_pct = m->cfg.fee_bump_pct,
        .receipt_wait_ms = m->cfg.receipt_wait_ms, .receipt_poll_ms = m->cfg.receipt_poll_ms,
        .stuck_ms = m->cfg.stuck_ms, .janitor_ms = m->cfg.janitor_ms, .confirmations = m->cfg.confirmations,
        .inflight_max = m->cfg.inflight_max, .bump_after_blocks = m->cfg.bump_after_blocks};
    memcpy(to.contract, m->nft, 20);
    zl_txmgr_init(&m->tx, &to); /* reads only, until the chain id is known */
    if (m->cfg.chain_id > 0) {
        m->chain_id = (uint64_t)m->cfg.chain_id;
    } else {
        char err[ZL_ERRSTR_SIZE];
        if (zl_txmgr_read_quantity(&m->tx, "eth_chainId", json_array(), &m->chain_id, err, sizeof(err)) != ZL_OK) {
            snprintf(errstr, errstr_size, "eth_chainId: %s (set ZL_MINT_CHAIN_ID to start without the chain)", err);
            goto fail;
        }
    }
    to.chain_id = m->chain_id;
    zl_txmgr_init(&m->tx, &to);
    if (zl_pg_init(&m->pg, env->cfg->pg_dsn, env->cfg->pg_connect_timeout_ms) != 0) {
        snprintf(errstr, errstr_size, "mint: cannot set up its database connection (out of memory)");
        goto fail;
    }
    m->pg_inited = true;
    if (zl_nonce_prepare(&m->pg) != 0 || zl_signer_pool_prepare(&m->pg) != 0) {
        snprintf(errstr, errstr_size, "mint: cannot register the nonce statements (ZL_PG_STMTS_MAX reached)");
        goto fail;
    }
    char chain[ZL_INT64_DEC_SIZE];
    snprintf(chain, sizeof(chain), "%" PRIu64, m->chain_id);
    zl_log_kv(ZL_LOG_INFO, NULL, "mint signer", "address", m->key.address_hex, "nft", m->nft_hex, "chain_id", chain,
              "tx_type", tx_types[m->cfg.tx_type], NULL);
    zl_signer_pool_resend_pending(mint_pool(), &m->tx, &m->pg, m->chain_id); /* a dead holder's stored txs */
    rc = mint_solana_init(m, env, errstr, errstr_size);
    if (rc != 0) {
        mint_fini(m);
        return rc;
    }
    return 0;
fail:
    /* The runtime calls fini only after a successful init. */
    mint_fini(m);
    return -1;
}

/* The admin API's breaker reset: the endpoints' breakers are the stage's
 * only ones. */
static int mint_reset_breakers(void *ctx, const char *dependency)
{
    struct mint *m = ctx;
    return zl_rpc_reset_breakers_named(m->rpc, dependency);  /* Solana's breakers reset when it restarts */
}

int main(int argc, char **argv)
{
    const struct zl_stage stage = {
        .name = "mint",
        .in_kind = ZL_TOPIC_PINNED,
        .out_kind = ZL_TOPIC_MINTED,
        .accept_states = "{pinned,mint_submitted}",
        .done_state = ZL_STATE_MINTED,
        .process = mint_process_leased,
        .process_batch = mint_process_batch_leased,
        .republish = mint_republish,
        .in_tx = mint_in_tx,
        .prepare = mint_prepare,
        .probe = mint_probe,
        .init = mint_init,
        .reset_breakers = mint_reset_breakers,
        .between = mint_between,
        .fini = mint_fini,
        .ctx = &g_mint,
    };
    struct zl_config_section extra[4] = {
        {"mint stage", mint_settings, sizeof(mint_settings) / sizeof(mint_settings[0]), &g_mint.cfg},
        mint_signer_section(), mint_solana_chain_section(), mint_solana_section()};
    return zl_runtime_main(&stage, extra, 4, argc, argv);
}
