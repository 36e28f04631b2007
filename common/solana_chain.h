/* solana_chain.h: the settings that name a Solana cluster and its RPC
 * endpoints, shared by detect, verify and mint (issue 22; docs/
 * architecture.md, "Solana"). The chain family of a deposit is its id's
 * first field (envelope.h): a stage takes Solana deposits when
 * ZL_SOLANA_CLUSTER is set, and refuses them as poison otherwise.
 *
 * The RPC client for Solana shares the EVM chain section's timeouts and
 * breaker settings (ZL_RPC_TIMEOUT_MS, ...), with its own endpoints and
 * quorum.
 *
 * @locality any thread: data and pure functions.
 */
#ifndef ZL_SOLANA_CHAIN_H
#define ZL_SOLANA_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "config.h"
#include "rpc.h"

struct zl_solana_config {
    char *cluster;      /* ZL_SOLANA_CLUSTER: "" = this deployment takes no Solana deposits */
    char *rpc_urls;     /* ZL_SOLANA_RPC_URLS */
    int64_t rpc_quorum; /* ZL_SOLANA_RPC_QUORUM */
    char *mint;         /* ZL_SOLANA_MINT: the USDT mint, base58 */
    char *commitment;   /* ZL_SOLANA_COMMITMENT: finalized or confirmed */
    int64_t decimals;   /* ZL_SOLANA_DECIMALS: the mint's, checked by detect on every transferChecked */
};

extern const struct zl_setting zl_solana_settings[];
extern const size_t zl_solana_settings_count;

/* True when ZL_SOLANA_CLUSTER is set. */
bool zl_solana_enabled(const struct zl_solana_config *s);

/* Checks the settings of an enabled cluster (a cluster name, a base58 mint,
 * a known commitment, and endpoints when needs_rpc: credit reads no chain).
 * Returns 0, or -1 with errstr naming the setting. */
int zl_solana_check(const struct zl_solana_config *s, bool needs_rpc, char *errstr, size_t errstr_size);

/* The Solana client's options: the chain section's timeouts and breakers,
 * Solana's endpoints and quorum, dependency name "solana-rpc". Strings are
 * borrowed from s. */
void zl_solana_rpc_opts(const struct zl_solana_config *s, const struct zl_chain_config *chain,
                        struct zl_metrics *metrics, struct zl_health *health, struct zl_rpc_opts *opts);

#endif /* ZL_SOLANA_CHAIN_H */
