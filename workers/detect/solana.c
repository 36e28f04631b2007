/* solana.c: detect on Solana; see solana.h. */
#include "solana.h"

#include <stdio.h>

#include "backoff.h"
#include "boot.h"
#include "log.h"
#include "pg.h"
#include "solana_chain.h"
#include "solana_detect.h"
#include "solana_scan.h"

struct solana_scan_config {
    int64_t accounts_per_step;
    int64_t page_limit;
    int64_t tx_batch;
};

#define OFF(f) offsetof(struct solana_scan_config, f)
static const struct zl_setting scan_settings[] = {
    {"ZL_SOLANA_ACCOUNTS_PER_STEP", ZL_CFG_INT, "100",
     "Solana deposit accounts scanned per step, least recently scanned first; each at most every ZL_DETECT_POLL_MS",
     OFF(accounts_per_step), 1, ZL_SOL_DETECT_ACCOUNTS_MAX},
    {"ZL_SOLANA_PAGE_LIMIT", ZL_CFG_INT, "1000", "signatures per getSignaturesForAddress call", OFF(page_limit), 1,
     ZL_SOL_SIGS_PAGE_MAX},
    {"ZL_SOLANA_TX_BATCH", ZL_CFG_INT, "25", "getTransaction calls per JSON-RPC batch", OFF(tx_batch), 1,
     ZL_SOL_TX_BATCH_MAX},
};
#undef OFF

static struct zl_solana_config g_chain;
static struct solana_scan_config g_scan;

struct zl_config_section detect_solana_chain_section(void)
{
    return (struct zl_config_section){"solana", zl_solana_settings, zl_solana_settings_count, &g_chain};
}

struct zl_config_section detect_solana_scan_section(void)
{
    return (struct zl_config_section){"detect on solana", scan_settings,
                                      sizeof(scan_settings) / sizeof(scan_settings[0]), &g_scan};
}

bool detect_solana_enabled(void)
{
    return zl_solana_enabled(&g_chain);
}

int detect_solana_rpc_opts(const struct zl_chain_config *chain, struct zl_metrics *metrics, struct zl_health *health,
                           struct zl_rpc_opts *opts, char *errstr, size_t errstr_size)
{
    if (zl_solana_check(&g_chain, true, errstr, errstr_size) != 0)
        return -1;
    zl_solana_rpc_opts(&g_chain, chain, metrics, health, opts);
    return 0;
}

/* The scan loop: one detector, paused while an outage lasts. Returns false
 * when the chain refuses the configuration (errstr). */
static bool scan_loop(struct zl_sol_detector *sd, struct zl_health *health, struct zl_backoff *bo, int64_t poll_ms,
                      char *errstr, size_t errstr_size)
{
    int failures = 0;
    bool paused = false;
    while (zl_boot_running()) {
        zl_health_heartbeat(health);
        bool idle = true;
        char err[ZL_ERRSTR_SIZE] = "";
        zl_class c = zl_sol_detector_step(sd, &idle, err, sizeof(err));
        if (c == ZL_PERMANENT) {
            snprintf(errstr, errstr_size, "%s", err);
            return false;
        }
        if ((c == ZL_OUTAGE) != paused) {
            paused = c == ZL_OUTAGE;
            zl_health_set_paused(health, paused, paused ? err : NULL);
        }
        if (c != ZL_OK) {
            failures++;
            zl_log_kv(c == ZL_OUTAGE ? ZL_LOG_WARN : ZL_LOG_INFO, NULL, "Solana scan step failed; retrying", "class",
                      zl_class_name(c), "error", err, NULL);
            zl_boot_sleep_ms(zl_backoff_delay_ms(bo, (uint32_t)failures));
            continue;
        }
        failures = 0;
        if (idle)
            zl_boot_sleep_ms(poll_ms);
    }
    return true;
}

int detect_solana(const struct detect_solana_run *run)
{
    char err[ZL_ERRSTR_SIZE];
    struct zl_pg pg;
    if (zl_pg_init(&pg, run->rc->pg_dsn, run->rc->pg_connect_timeout_ms) != 0) {
        zl_log(ZL_LOG_ERROR, NULL, "startup: out of memory");
        return ZL_EXIT_FATAL;
    }
    struct zl_sol_detector_opts so = {
        .cluster = g_chain.cluster,
        .mint = g_chain.mint,
        .commitment = g_chain.commitment,
        .topic = run->topic,
        .decimals = (int)g_chain.decimals,
        .accounts_per_step = (int)g_scan.accounts_per_step,
        .poll_ms = run->poll_ms,
        .page_limit = (int)g_scan.page_limit,
        .tx_batch = (int)g_scan.tx_batch,
        .pg = &pg,
        .rpc = run->rpc,
        .producer = run->producer,
        .metrics = run->metrics,
        .health = run->health,
    };
    struct zl_sol_detector *sd = NULL;
    struct zl_backoff bo;
    int exit_code = ZL_EXIT_CONFIG;
    if (zl_sol_detector_new(&sd, &so, err, sizeof(err)) != 0 ||
        zl_backoff_init(&bo, run->rc->outage_base_ms, run->rc->outage_cap_ms, 0, err, sizeof(err)) != 0) {
        zl_log(ZL_LOG_ERROR, NULL, "configuration: %s", err);
        goto out;
    }
    zl_log(ZL_LOG_INFO, NULL, "detect started: Solana cluster %s, mint %s, commitment %s, topic %s",
           g_chain.cluster, g_chain.mint, g_chain.commitment, run->topic);
    if (!scan_loop(sd, run->health, &bo, run->poll_ms, err, sizeof(err))) {
        zl_log(ZL_LOG_ERROR, NULL, "configuration: %s", err);
        goto out;
    }
    zl_health_set_draining(run->health);
    exit_code = ZL_EXIT_OK;
out:
    zl_sol_detector_free(sd);
    zl_pg_close(&pg);
    return exit_code;
}
