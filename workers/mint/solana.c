/* solana.c: the mint stage's Solana deposits (issue 22; docs/architecture.md,
 * "Solana"). The receipt itself is common/solana_mint.h's; this file holds
 * the settings, the payer key, the payer's balance metric, and what each
 * step means for the work:
 *   - the receipt finalized: minted, with mint_tx_hash = its signature,
 *     nft_contract = its own mint and token_id "0";
 *   - on its way (signed, sent, waiting for finalized, every nonce account
 *     busy): defer about a second, never holding the partition;
 *   - a Solana deposit where ZL_SOLANA_CLUSTER is unset, or of another
 *     cluster: poison (the row waits as it is).
 */
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot.h"
#include "hex.h"
#include "log.h"
#include "mint.h"
#include "solana_chain.h"
#include "solana_mint.h"

struct mint_solana_config {
    struct zl_secret payer_key;
    char *nonce_accounts;
    int64_t cu_limit;
    int64_t cu_price;
    char *name;
    char *symbol;
    int64_t balance_low_lamports;
};

#define OFF(f) offsetof(struct mint_solana_config, f)
static const struct zl_setting settings[] = {
    {"ZL_SOLANA_PAYER_KEY_FILE", ZL_CFG_SECRET_FILE, "",
     "file holding the Solana payer's key (64 hex digits of its seed, or a solana-keygen JSON array): pays every "
     "receipt and is the authority of every nonce account; required with ZL_SOLANA_CLUSTER",
     OFF(payer_key), 0, 0},
    {"ZL_SOLANA_NONCE_ACCOUNTS", ZL_CFG_STR, "",
     "durable nonce accounts (base58, comma-separated, authority = the payer): receipts in flight at once",
     OFF(nonce_accounts), 0, 0},
    {"ZL_SOLANA_CU_LIMIT", ZL_CFG_INT, "200000", "compute units a receipt asks for", OFF(cu_limit), 0, 1400000},
    {"ZL_SOLANA_CU_PRICE", ZL_CFG_INT, "1000", "priority fee, micro-lamports per compute unit (0 = none)",
     OFF(cu_price), 0, INT64_C(1000000000)},
    {"ZL_SOLANA_RECEIPT_NAME", ZL_CFG_STR, "zeroloss receipt", "the receipts' token name", OFF(name), 0, 0},
    {"ZL_SOLANA_RECEIPT_SYMBOL", ZL_CFG_STR, "ZLR", "the receipts' token symbol", OFF(symbol), 0, 0},
    {"ZL_SOLANA_BALANCE_LOW_LAMPORTS", ZL_CFG_INT, "100000000",
     "the payer's balance under which zl_sol_payer_balance_low is 1 (alert ZeroLossSolanaPayerLow)",
     OFF(balance_low_lamports), 0, INT64_MAX},
};
#undef OFF

/* The payer's balance is read at most this often. */
#define BALANCE_EVERY_MS 30000

static struct zl_solana_config g_chain;
static struct mint_solana_config g_cfg;
static struct {
    struct zl_sol_keypair payer;
    struct zl_rpc *rpc;
    struct zl_sol_minter *minter;
    struct zl_pg pg;
    bool pg_inited;
    zl_metric *m_balance, *m_low;
    int64_t balance_next_ms;
    bool outage; /* a step met a Solana outage since the last probe that passed */
} g;

struct zl_config_section mint_solana_chain_section(void)
{
    return (struct zl_config_section){"solana", zl_solana_settings, zl_solana_settings_count, &g_chain};
}

struct zl_config_section mint_solana_section(void)
{
    return (struct zl_config_section){"mint on solana", settings, sizeof(settings) / sizeof(settings[0]), &g_cfg};
}

/* The seed: 64 hex digits, or the first 32 numbers of solana-keygen's JSON
 * array of 64. */
static int payer_seed(const char *text, uint8_t seed[32])
{
    while (*text == ' ' || *text == '\n' || *text == '\t' || *text == '\r')
        text++;
    if (*text != '[') {
        char hex[65];
        size_t n = strcspn(text, " \t\r\n");
        if (n != 64)
            return -1;
        memcpy(hex, text, 64);
        hex[64] = '\0';
        size_t len = 0;
        int rc = zl_hex_decode(hex, seed, 32, &len) == 0 && len == 32 ? 0 : -1;
        sodium_memzero(hex, sizeof(hex));
        return rc;
    }
    json_error_t jerr;
    json_t *a = json_loads(text, 0, &jerr);
    int rc = json_is_array(a) && json_array_size(a) == 64 ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < 32; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 255)
            rc = -1;
        else
            seed[i] = (uint8_t)json_integer_value(v);
    }
    json_decref(a);
    return rc;
}

bool mint_solana_enabled(void)
{
    return zl_solana_enabled(&g_chain);
}

int mint_solana_init(struct mint *m, const struct zl_runtime_env *env, char *errstr, size_t errstr_size)
{
    if (!mint_solana_enabled())
        return 0;
    if (zl_solana_check(&g_chain, true, errstr, errstr_size) != 0)
        return ZL_RUNTIME_INIT_REFUSED;
    uint8_t seed[32];
    if (g_cfg.payer_key.value == NULL || payer_seed(g_cfg.payer_key.value, seed) != 0 ||
        zl_sol_keypair(seed, &g.payer) != 0) {
        sodium_memzero(seed, sizeof(seed));
        snprintf(errstr, errstr_size, "ZL_SOLANA_PAYER_KEY_FILE: required with ZL_SOLANA_CLUSTER; 64 hex digits or a "
                 "solana-keygen JSON array of 64 numbers");
        return ZL_RUNTIME_INIT_REFUSED;
    }
    sodium_memzero(seed, sizeof(seed));
    struct zl_rpc_opts ro = {.urls = g_chain.rpc_urls, .timeout_ms = m->cfg.rpc_timeout_ms,
                             .quorum = (int)g_chain.rpc_quorum, .allow_http = m->cfg.rpc_allow_http,
                             .metrics = env->metrics, .health = env->health, .name = "solana-rpc"};
    if (zl_rpc_new(&g.rpc, &ro, errstr, errstr_size) != 0)
        return ZL_RUNTIME_INIT_REFUSED;
    if (zl_pg_init(&g.pg, env->cfg->pg_dsn, env->cfg->pg_connect_timeout_ms) != 0) {
        snprintf(errstr, errstr_size, "mint: out of memory");
        return -1;
    }
    g.pg_inited = true;
    struct zl_sol_minter_opts mo = {
        .cluster = g_chain.cluster, .payer = &g.payer, .nonce_accounts = g_cfg.nonce_accounts, .name = g_cfg.name,
        .symbol = g_cfg.symbol, .cu_limit = (uint32_t)g_cfg.cu_limit, .cu_price_micro_lamports = (uint64_t)g_cfg.cu_price,
        .rpc = g.rpc, .pg = &g.pg};
    if (zl_sol_minter_new(&g.minter, &mo, errstr, errstr_size) != 0)
        return ZL_RUNTIME_INIT_REFUSED;
    zl_metrics_describe(env->metrics, "zl_sol_payer_lamports", ZL_METRIC_GAUGE,
                        "the Solana payer's balance in lamports: what receipts are paid with");
    zl_metrics_describe(env->metrics, "zl_sol_payer_balance_low", ZL_METRIC_GAUGE,
                        "1 while the Solana payer's balance is under ZL_SOLANA_BALANCE_LOW_LAMPORTS");
    g.m_balance = zl_metrics_gauge_handle(env->metrics, "zl_sol_payer_lamports", NULL);
    g.m_low = zl_metrics_gauge_handle(env->metrics, "zl_sol_payer_balance_low", NULL);
    char payer[ZL_B58_TEXT_MAX];
    zl_b58_encode(g.payer.pub, sizeof(g.payer.pub), payer, sizeof(payer));
    zl_log_kv(ZL_LOG_INFO, NULL, "Solana receipts", "cluster", g_chain.cluster, "payer", payer, "nonce_accounts",
              g_cfg.nonce_accounts, NULL);
    return 0;
}

void mint_solana_fini(void)
{
    zl_sol_minter_free(g.minter);
    g.minter = NULL;
    zl_rpc_free(g.rpc);
    g.rpc = NULL;
    if (g.pg_inited)
        zl_pg_close(&g.pg);
    g.pg_inited = false;
    sodium_memzero(&g.payer, sizeof(g.payer));
}

zl_class mint_solana_probe(char *errstr, size_t errstr_size)
{
    if (!g.outage || g.minter == NULL)
        return ZL_OK;
    uint64_t lamports = 0;
    zl_class c = zl_sol_minter_balance(g.minter, &lamports, errstr, errstr_size);
    if (c == ZL_OK)
        g.outage = false;
    return c;
}

static void balance(void)
{
    int64_t now = zl_now_ms();
    if (now < g.balance_next_ms)
        return;
    g.balance_next_ms = now + BALANCE_EVERY_MS;
    uint64_t lamports = 0;
    char err[ZL_ERRSTR_SIZE];
    if (zl_sol_minter_balance(g.minter, &lamports, err, sizeof(err)) != ZL_OK) {
        zl_log_kv(ZL_LOG_WARN, NULL, "Solana payer balance not read", "error", err, NULL);
        return;
    }
    zl_metric_gauge_set(g.m_balance, (double)lamports);
    zl_metric_gauge_set(g.m_low, lamports < (uint64_t)g_cfg.balance_low_lamports ? 1.0 : 0.0);
}

void mint_solana_process(struct mint *m, struct zl_work *w)
{
    (void)m;
    if (!mint_solana_enabled()) {
        snprintf(w->error, sizeof(w->error), "a Solana deposit: this mint takes none (ZL_SOLANA_CLUSTER unset)");
        w->result = ZL_POISON;
        return;
    }
    if (strcmp(w->in.chain, g_chain.cluster) != 0) {
        snprintf(w->error, sizeof(w->error), "a deposit on Solana cluster %s: this mint takes %s", w->in.chain,
                 g_chain.cluster);
        w->result = ZL_POISON;
        return;
    }
    balance();
    struct zl_sol_mint_result res;
    const struct zl_facts *f = &w->row.facts;
    zl_class c = zl_sol_mint_step(g.minter, w->in.deposit_id, f->from, f->token_uri, &res, w->error,
                                  sizeof(w->error));
    struct zl_log_ctx lc;
    zl_work_log_ctx(w, &lc);
    if (c != ZL_OK) {
        g.outage = g.outage || c == ZL_OUTAGE;
        w->result = c;
        return;
    }
    if (!res.done) {
        /* Waiting for a free nonce account is a queue (ZL_SOLANA_NONCE_ACCOUNTS
         * receipts in flight at once): it does not spend the defers budget. */
        if (res.queued)
            snprintf(w->error, sizeof(w->error), "receipt %s: every nonce account is busy with another receipt;"
                     " it waits its turn", res.mint);
        else
            snprintf(w->error, sizeof(w->error), "receipt %s (%s): waiting until it is finalized", res.mint,
                     res.step);
        w->result = ZL_DEFER;
        w->defer_ms = res.wait_ms;
        w->queued = res.queued;
        return;
    }
    zl_event_derive(&w->out, &w->in, ZL_TOPIC_MINTED);
    snprintf(w->out.mint_tx_hash, sizeof(w->out.mint_tx_hash), "%s", res.signature);
    snprintf(w->out.token_id, sizeof(w->out.token_id), "0");
    snprintf(w->out.nft_contract, sizeof(w->out.nft_contract), "%s", res.mint);
    w->result = ZL_OK;
    zl_log_kv(ZL_LOG_INFO, &lc, "Solana receipt minted", "mint", res.mint, "signature", res.signature, "owner",
              f->from, NULL);
}
