/* solana_chain.c: the Solana settings; the contract is in solana_chain.h. */
#include "solana_chain.h"

#include <stdio.h>
#include <string.h>

#include "envelope.h"

#define OFF(f) offsetof(struct zl_solana_config, f)
const struct zl_setting zl_solana_settings[] = {
    {"ZL_SOLANA_CLUSTER", ZL_CFG_STR, "",
     "Solana cluster name (mainnet-beta, localnet): set, this stage takes USDT deposits on Solana too (detect: "
     "instead of an EVM chain); empty, a Solana deposit is refused as poison",
     OFF(cluster), 0, 0},
    {"ZL_SOLANA_RPC_URLS", ZL_CFG_STR, "", "Solana JSON-RPC endpoints, comma-separated, in preference order",
     OFF(rpc_urls), 0, 0},
    {"ZL_SOLANA_RPC_QUORUM", ZL_CFG_INT, "1", "Solana endpoints that must give equal answers for every read",
     OFF(rpc_quorum), 1, 16},
    {"ZL_SOLANA_MINT", ZL_CFG_STR, "", "the USDT mint on that cluster, base58", OFF(mint), 0, 0},
    {"ZL_SOLANA_DECIMALS", ZL_CFG_INT, "6",
     "the mint's decimals (USDT: 6): credit's eggs = floor(amount * rate / 10^decimals); detect stops on a"
     " transfer that says otherwise",
     OFF(decimals), 0, 18},
    {"ZL_SOLANA_COMMITMENT", ZL_CFG_STR, "finalized",
     "commitment Solana reads are made at: finalized (the default, what a credit waits for) or confirmed",
     OFF(commitment), 0, 0},
};
const size_t zl_solana_settings_count = sizeof(zl_solana_settings) / sizeof(zl_solana_settings[0]);
#undef OFF

bool zl_solana_enabled(const struct zl_solana_config *s)
{
    return s->cluster != NULL && s->cluster[0] != '\0';
}

int zl_solana_check(const struct zl_solana_config *s, bool needs_rpc, char *errstr, size_t errstr_size)
{
    if (!zl_valid_sol_cluster(s->cluster)) {
        snprintf(errstr, errstr_size, "ZL_SOLANA_CLUSTER \"%s\": a lowercase letter, then up to 30 of [a-z0-9-]",
                 s->cluster);
        return -1;
    }
    if (s->mint == NULL || !zl_valid_sol_key(s->mint)) {
        snprintf(errstr, errstr_size, "ZL_SOLANA_MINT \"%s\": a base58 key of 32 bytes is required with "
                 "ZL_SOLANA_CLUSTER", s->mint ? s->mint : "");
        return -1;
    }
    if (needs_rpc && (s->rpc_urls == NULL || s->rpc_urls[0] == '\0')) {
        snprintf(errstr, errstr_size, "ZL_SOLANA_RPC_URLS is required with ZL_SOLANA_CLUSTER");
        return -1;
    }
    if (s->commitment == NULL || (strcmp(s->commitment, "finalized") != 0 && strcmp(s->commitment, "confirmed") != 0)) {
        snprintf(errstr, errstr_size, "ZL_SOLANA_COMMITMENT \"%s\": finalized or confirmed",
                 s->commitment ? s->commitment : "");
        return -1;
    }
    return 0;
}

void zl_solana_rpc_opts(const struct zl_solana_config *s, const struct zl_chain_config *chain,
                        struct zl_metrics *metrics, struct zl_health *health, struct zl_rpc_opts *opts)
{
    zl_chain_rpc_opts(chain, metrics, health, opts);
    opts->urls = s->rpc_urls;
    opts->quorum = (int)s->rpc_quorum;
    opts->name = "solana-rpc";
}
