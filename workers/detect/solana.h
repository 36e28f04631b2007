/* solana.h: detect on Solana (issue 22): with ZL_SOLANA_CLUSTER set this
 * copy scans the registered Solana deposit accounts (common/solana_detect.h)
 * instead of an EVM chain; one detect copy per (chain, token), the chain
 * picked by configuration.
 *
 * @locality main's thread.
 */
#ifndef ZL_DETECT_SOLANA_H
#define ZL_DETECT_SOLANA_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

#include "chain.h"
#include "config.h"
#include "health.h"
#include "metrics.h"
#include "rpc.h"
#include "runtime.h"

/* The shared Solana settings (solana_chain.h) and detect's own scan bounds,
 * as config sections for boot. */
struct zl_config_section detect_solana_chain_section(void);
struct zl_config_section detect_solana_scan_section(void);

/* True when ZL_SOLANA_CLUSTER is set. */
bool detect_solana_enabled(void);

/* The Solana client's options (chain's timeouts and breakers, Solana's
 * endpoints and quorum). Returns 0, or -1 with errstr for a wrong setting. */
int detect_solana_rpc_opts(const struct zl_chain_config *chain, struct zl_metrics *metrics, struct zl_health *health,
                           struct zl_rpc_opts *opts, char *errstr, size_t errstr_size);

/* What the scan loop borrows from main. */
struct detect_solana_run {
    const struct zl_runtime_config *rc;
    const char *topic;
    int64_t poll_ms;
    struct zl_rpc *rpc;
    rd_kafka_t *producer;
    struct zl_metrics *metrics;
    struct zl_health *health;
};

/* Scans until SIGTERM. Returns main's exit code: ZL_EXIT_OK after a clean
 * stop, ZL_EXIT_CONFIG when a setting or the chain refuses the run (logged),
 * ZL_EXIT_FATAL when out of memory. */
int detect_solana(const struct detect_solana_run *run);

#endif /* ZL_DETECT_SOLANA_H */
