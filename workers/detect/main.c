/* detect: scans the chain for deposits and records them (common/detector.h).
 *
 * Not a Kafka consumer, so not on the stage runtime: a producer loop built
 * from the common pieces (config, log, health + metrics, producer, pg, rpc).
 * Run two copies for hot standby: a PostgreSQL advisory lock lets one scan.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "boot.h"
#include "chain.h"
#include "config.h"
#include "detector.h"
#include "envelope.h"
#include "health.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "pg.h"
#include "rpc.h"
#include "runtime.h"

struct detect_config {
    int64_t lag_blocks;
    int64_t range_max;
    int64_t start_block;
    int64_t poll_ms;
    int64_t blocks_kept;
    int64_t addresses_max;
    int64_t backfill_blocks;
    int64_t confirm_k;
};

#define OFF(f) offsetof(struct detect_config, f)
static const struct zl_setting detect_settings[] = {
    {"ZL_DETECT_LAG_BLOCKS", ZL_CFG_INT, "3", "blocks behind the chain head the scan stays", OFF(lag_blocks), 0,
     100000},
    {"ZL_DETECT_RANGE_MAX", ZL_CFG_INT, "2000", "blocks per eth_getLogs step at most (halved on refusals)",
     OFF(range_max), 1, 1000000},
    {"ZL_DETECT_START_BLOCK", ZL_CFG_INT, "-1", "first block scanned when there is no cursor (-1 = head - lag)",
     OFF(start_block), -1, INT64_C(9007199254740991)},
    {"ZL_DETECT_POLL_MS", ZL_CFG_INT, "1000", "sleep when caught up with head - lag, or on standby", OFF(poll_ms), 10,
     600000},
    {"ZL_DETECT_BLOCKS_KEPT", ZL_CFG_INT, "10000", "blocks of scanned hashes kept for reorg detection",
     OFF(blocks_kept), 16, 10000000},
    {"ZL_DETECT_ADDRESSES_MAX", ZL_CFG_INT, "10000000",
     "registered addresses held in memory (40-80 bytes each); more stops the scan with an error, never drops one",
     OFF(addresses_max), 1, ZL_DETECT_ADDRESSES_LIMIT_MAX},
    {"ZL_DETECT_BACKFILL_BLOCKS", ZL_CFG_INT, "2000",
     "blocks per eth_getLogs request when backfilling a late-registered address (halved on refusals)",
     OFF(backfill_blocks), 1, 1000000},
    {"ZL_DETECT_CONFIRM_K", ZL_CFG_INT, "0",
     "endpoints that must return the same logs for each scanned range, else it is held (0 = ZL_RPC_QUORUM)",
     OFF(confirm_k), 0, ZL_RPC_ENDPOINTS_MAX},
};
#undef OFF

static void sleep_ms(int64_t ms)
{
    /* short slices so SIGTERM is noticed quickly */
    while (ms > 0 && zl_boot_running()) {
        int64_t slice = ms > 100 ? 100 : ms;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)slice * 1000000L};
        nanosleep(&ts, NULL);
        ms -= slice;
    }
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        char id[ZL_DEPOSIT_ID_SIZE];
        size_t n = m->key_len < sizeof(id) - 1 ? m->key_len : sizeof(id) - 1;
        memcpy(id, m->key, n);
        id[n] = '\0';
        struct zl_log_ctx lc = ZL_LOG_CTX_NONE;
        lc.deposit_id = id;
        zl_log_kv(ZL_LOG_WARN, &lc, "detected event not delivered; the row is recorded and the sweeper re-publishes it",
                  "error", rd_kafka_err2str(m->err), NULL);
    }
}

/* One chunk of a late-registered address's backfill between live steps,
 * unless its backoff runs. Returns true when there was nothing to do. */
static bool backfill_once(struct zl_detector *det, struct zl_backoff *bo, int *failures, int64_t *next_ms)
{
    if (zl_now_ms() < *next_ms)
        return true;
    char err[ZL_ERRSTR_SIZE];
    bool idle = true;
    zl_class c = zl_detector_backfill_step(det, &idle, err, sizeof(err));
    if (c == ZL_OK) {
        *failures = 0;
        return idle;
    }
    (*failures)++;
    *next_ms = zl_now_ms() + zl_backoff_delay_ms(bo, (uint32_t)*failures);
    zl_log_kv(ZL_LOG_WARN, NULL, "backfill chunk failed; the live scan goes on, the backfill retries", "class",
              zl_class_name(c), "error", err, NULL);
    return true;
}

int main(int argc, char **argv)
{
    static struct zl_boot boot;
    static struct zl_runtime_config rc_cfg;
    static struct zl_chain_config chain_cfg;
    static struct detect_config dcfg;
    static struct zl_kv_list kprops;
    struct zl_config_section sections[] = {
        {"chain", zl_chain_settings, zl_chain_settings_count, &chain_cfg},
        {"detect stage", detect_settings, sizeof(detect_settings) / sizeof(detect_settings[0]), &dcfg},
    };
    struct zl_boot_opts opts = {
        .name = "detect",
        .service = true,
        .metrics_series_max = 256,
        .runtime = &rc_cfg,
        .sections = sections,
        .nsections = sizeof(sections) / sizeof(sections[0]),
        .kafka_props = &kprops,
        .argc = argc,
        .argv = argv,
    };
    int exit_code = ZL_EXIT_OK;
    if (zl_boot_start(&boot, &opts, &exit_code) != 0)
        return exit_code;

    exit_code = ZL_EXIT_FATAL;
    char err[ZL_ERRSTR_SIZE];
    struct zl_metrics *metrics = boot.metrics;
    struct zl_health *health = NULL;
    struct zl_rpc *rpc = NULL;
    rd_kafka_t *producer = NULL;
    struct zl_detector *det = NULL;
    struct zl_pg pg;
    memset(&pg, 0, sizeof(pg));
    char topic[ZL_TOPIC_NAME_MAX];
    if (rc_cfg.out_topic[0] != '\0')
        snprintf(topic, sizeof(topic), "%s", rc_cfg.out_topic);
    else if (zl_topic_name(topic, sizeof(topic), rc_cfg.topic_prefix, ZL_TOPIC_DETECTED) != 0) {
        zl_log(ZL_LOG_ERROR, NULL, "configuration: ZL_TOPIC_PREFIX \"%s\" makes an invalid topic name",
               rc_cfg.topic_prefix);
        exit_code = ZL_EXIT_CONFIG;
        goto out;
    }

    struct zl_health_opts hopts = {.stage = "detect"};
    if (zl_boot_serve(&boot, &hopts) != 0)
        goto out;
    health = boot.health;
    struct zl_rpc_opts ropts;
    zl_chain_rpc_opts(&chain_cfg, metrics, health, &ropts);
    /* The failover client reads the head and block hashes; the logs of each
     * range are confirmed by confirm_k endpoints (detector_confirm.c). */
    ropts.quorum = 1;
    if (zl_rpc_new(&rpc, &ropts, err, sizeof(err)) != 0) {
        zl_log(ZL_LOG_ERROR, NULL, "configuration: %s", err);
        exit_code = ZL_EXIT_CONFIG;
        goto out;
    }
    producer = zl_kafka_producer_new(rc_cfg.kafka_brokers, &kprops, rc_cfg.delivery_timeout_ms, dr_cb, NULL, err,
                                     sizeof(err));
    if (producer == NULL) {
        zl_log(ZL_LOG_ERROR, NULL, "startup: kafka producer: %s", err);
        goto out;
    }
    if (zl_pg_init(&pg, rc_cfg.pg_dsn, rc_cfg.pg_connect_timeout_ms) != 0) {
        zl_log(ZL_LOG_ERROR, NULL, "startup: out of memory");
        goto out;
    }
    struct zl_detector_opts dopts = {
        .chain_id = (uint64_t)chain_cfg.chain_id,
        .token = chain_cfg.token_address,
        .topic = topic,
        .lag_blocks = dcfg.lag_blocks,
        .range_max = dcfg.range_max,
        .start_block = dcfg.start_block,
        .blocks_kept = dcfg.blocks_kept,
        .addresses_max = dcfg.addresses_max,
        .backfill_blocks = dcfg.backfill_blocks,
        .confirm_k = (int)(dcfg.confirm_k > 0 ? dcfg.confirm_k : chain_cfg.rpc_quorum),
        .confirm_rpc = &ropts,
        .pg = &pg,
        .rpc = rpc,
        .producer = producer,
        .metrics = metrics,
        .health = health,
    };
    if (zl_detector_new(&det, &dopts, err, sizeof(err)) != 0) {
        zl_log(ZL_LOG_ERROR, NULL, "configuration: %s", err);
        exit_code = ZL_EXIT_CONFIG;
        goto out;
    }

    struct zl_backoff bo;
    if (zl_backoff_init(&bo, rc_cfg.outage_base_ms, rc_cfg.outage_cap_ms, 0, err, sizeof(err)) != 0) {
        zl_log(ZL_LOG_ERROR, NULL, "configuration: %s", err);
        exit_code = ZL_EXIT_CONFIG;
        goto out;
    }
    zl_log(ZL_LOG_INFO, NULL, "detect started: chain %lld, token %s, topic %s", (long long)chain_cfg.chain_id,
           chain_cfg.token_address, topic);
    bool decimals_known = false;
    int failures = 0;
    /* The backfill has its own backoff: its failure (one address's range)
     * never holds the live scan back. */
    int bf_failures = 0;
    int64_t bf_next_ms = 0;
    zl_class last = ZL_OK;
    while (zl_boot_running()) {
        zl_health_heartbeat(health);
        if (!decimals_known && zl_detector_active(det)) {
            int decimals = 0;
            char derr[ZL_ERRSTR_SIZE];
            if (zl_chain_token_decimals(rpc, chain_cfg.token_address, &decimals, derr, sizeof(derr)) == ZL_OK &&
                zl_detector_store_decimals(det, decimals, derr, sizeof(derr)) == ZL_OK) {
                decimals_known = true;
                zl_log(ZL_LOG_INFO, NULL, "token %s has %d decimals", chain_cfg.token_address, decimals);
            } else {
                zl_log_kv(ZL_LOG_WARN, NULL, "token decimals not read yet", "error", derr, NULL);
            }
        }
        bool idle = false;
        zl_class c = zl_detector_step(det, &idle, err, sizeof(err));
        if (c == ZL_OK) {
            if (last == ZL_OUTAGE)
                zl_health_set_paused(health, false, NULL);
            last = ZL_OK;
            failures = 0;
            bool bf_idle = backfill_once(det, &bo, &bf_failures, &bf_next_ms);
            if (idle && bf_idle)
                sleep_ms(dcfg.poll_ms);
            continue;
        }
        failures++;
        if (c == ZL_OUTAGE && last != ZL_OUTAGE)
            zl_health_set_paused(health, true, err);
        last = c;
        zl_log_kv(c == ZL_OUTAGE ? ZL_LOG_WARN : ZL_LOG_INFO, NULL, "scan step failed; retrying", "class",
                  zl_class_name(c), "error", err, NULL);
        sleep_ms(zl_backoff_delay_ms(&bo, (uint32_t)failures));
    }
    zl_health_set_draining(health);
    zl_log(ZL_LOG_INFO, NULL, "signal received: flushing the producer");
    exit_code = ZL_EXIT_OK;
out:
    if (producer != NULL) {
        rd_kafka_flush(producer, 5000);
        rd_kafka_destroy(producer);
    }
    zl_detector_free(det);
    zl_pg_close(&pg);
    zl_rpc_free(rpc);
    zl_boot_stop(&boot); /* the HTTP server, metrics and config */
    return exit_code;
}
