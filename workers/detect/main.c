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
#include "solana.h"
#include "tokens.h"

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

/* One token's scan: its detector on its own connection, and its own
 * backoffs, so a token whose range is held or whose decimals cannot be read
 * yet never holds the other tokens back. */
struct token_scan {
    const struct zl_token *tok;
    struct zl_detector *det;
    struct zl_pg pg;
    bool decimals_known;
    bool decimals_unreadable; /* single-token form: the contract answered it has no decimals() */
    int failures;
    int64_t next_ms; /* no step before this (backoff after a failure) */
    zl_class last;
    char last_err[ZL_ERRSTR_SIZE]; /* what the last failed step said (the pause's reason) */
    /* The backfill has its own backoff: its failure (one address's range)
     * never holds the live scan back. */
    int bf_failures;
    int64_t bf_next_ms;
};

/* One chunk of a late-registered address's backfill between live steps,
 * unless its backoff runs. Returns true when there was nothing to do. */
static bool backfill_once(struct token_scan *ts, struct zl_backoff *bo)
{
    if (zl_now_ms() < ts->bf_next_ms)
        return true;
    char err[ZL_ERRSTR_SIZE];
    bool idle = true;
    zl_class c = zl_detector_backfill_step(ts->det, &idle, err, sizeof(err));
    if (c == ZL_OK) {
        ts->bf_failures = 0;
        return idle;
    }
    ts->bf_failures++;
    ts->bf_next_ms = zl_now_ms() + zl_backoff_delay_ms(bo, (uint32_t)ts->bf_failures);
    zl_log_kv(ZL_LOG_WARN, NULL, "backfill chunk failed; the live scan goes on, the backfill retries", "token",
              ts->tok->symbol, "class", zl_class_name(c), "error", err, NULL);
    return true;
}

/* Reads the token's decimals() from the chain, records them and checks them
 * against ZL_TOKENS. Returns ZL_OK (known), ZL_PERMANENT with errstr when
 * the configured value differs or the contract is no ERC-20 (detect refuses
 * to run: a wrong value would credit every deposit off by a power of ten),
 * or the class of what failed (retried). A token named by ZL_TOKEN_ADDRESS
 * alone has no configured value: its decimals are recorded, and a failure to
 * read them never stops its scan (as before ZL_TOKENS). */
static zl_class token_decimals(struct token_scan *ts, struct zl_rpc *rpc, char *errstr, size_t errstr_size)
{
    const struct zl_token *t = ts->tok;
    int decimals = 0;
    zl_class c = zl_chain_token_decimals(rpc, t->address, &decimals, errstr, errstr_size);
    if (c == ZL_OK && t->decimals != ZL_TOKEN_DECIMALS_UNSET && decimals != t->decimals) {
        snprintf(errstr, errstr_size,
                 "token %s %s has %d decimals on the chain, ZL_TOKENS says %d: correct ZL_TOKENS (and the credit "
                 "stage's) and restart",
                 t->symbol, t->address, decimals, t->decimals);
        return ZL_PERMANENT;
    }
    if (c == ZL_OK)
        c = zl_detector_store_decimals(ts->det, decimals, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    ts->decimals_known = true;
    zl_log(ZL_LOG_INFO, NULL, "token %s %s has %d decimals", t->symbol, t->address, decimals);
    return ZL_OK;
}

/* One live step (and a backfill chunk) of one token. Returns false when the
 * token's decimals refuse the run (errstr says why). *idle is true when the
 * token had nothing to do or waits for its backoff. */
static bool scan_once(struct token_scan *ts, struct zl_rpc *rpc, struct zl_backoff *bo, bool *idle, char *errstr,
                      size_t errstr_size)
{
    *idle = true;
    if (zl_now_ms() < ts->next_ms)
        return true;
    zl_class c = ZL_OK;
    bool gated = ts->tok->decimals != ZL_TOKEN_DECIMALS_UNSET;
    if (!ts->decimals_known && !ts->decimals_unreadable) {
        zl_class dc = token_decimals(ts, rpc, errstr, errstr_size);
        if (dc == ZL_PERMANENT && gated)
            return false;
        if (dc != ZL_OK) {
            zl_log_kv(ZL_LOG_WARN, NULL, "token decimals not read", "token", ts->tok->symbol, "error", errstr, NULL);
            /* A listed token is not scanned before its decimals are checked:
             * the step fails with their class and is retried. The
             * single-token form scans without them, as it always did, and
             * stops asking once the contract said it has none. */
            if (gated)
                c = dc;
            else if (dc == ZL_PERMANENT)
                ts->decimals_unreadable = true;
        }
    }
    bool step_idle = false;
    if (c == ZL_OK)
        c = zl_detector_step(ts->det, &step_idle, errstr, errstr_size);
    ts->last = c;
    if (c == ZL_OK) {
        ts->failures = 0;
        bool bf_idle = backfill_once(ts, bo);
        *idle = step_idle && bf_idle;
        return true;
    }
    ts->failures++;
    ts->next_ms = zl_now_ms() + zl_backoff_delay_ms(bo, (uint32_t)ts->failures);
    snprintf(ts->last_err, sizeof(ts->last_err), "%s", errstr);
    zl_log_kv(c == ZL_OUTAGE ? ZL_LOG_WARN : ZL_LOG_INFO, NULL, "scan step failed; retrying", "token",
              ts->tok->symbol, "class", zl_class_name(c), "error", errstr, NULL);
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
        detect_solana_chain_section(),
        detect_solana_scan_section(),
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
    static struct zl_tokens tokens;
    static struct token_scan scans[ZL_TOKENS_MAX];
    size_t nscans = 0;
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
     * range are confirmed by confirm_k endpoints (detector_confirm.c). On
     * Solana every transaction read is agreed by the client's quorum. */
    bool solana = detect_solana_enabled();
    if (solana && detect_solana_rpc_opts(&chain_cfg, metrics, health, &ropts, err, sizeof(err)) != 0) {
        zl_log(ZL_LOG_ERROR, NULL, "configuration: %s", err);
        exit_code = ZL_EXIT_CONFIG;
        goto out;
    }
    if (!solana)
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
    if (solana) {
        struct detect_solana_run run = {.rc = &rc_cfg, .topic = topic, .poll_ms = dcfg.poll_ms, .rpc = rpc,
                                        .producer = producer, .metrics = metrics, .health = health};
        exit_code = detect_solana(&run);
        goto out;
    }
    if (zl_chain_tokens(&chain_cfg, NULL, &tokens, err, sizeof(err)) != 0) {
        zl_log(ZL_LOG_ERROR, NULL, "configuration: %s", err);
        exit_code = ZL_EXIT_CONFIG;
        goto out;
    }
    for (; nscans < tokens.n; nscans++) {
        struct token_scan *ts = &scans[nscans];
        ts->tok = &tokens.t[nscans];
        if (zl_pg_init(&ts->pg, rc_cfg.pg_dsn, rc_cfg.pg_connect_timeout_ms) != 0) {
            zl_log(ZL_LOG_ERROR, NULL, "startup: out of memory");
            goto out;
        }
        struct zl_detector_opts dopts = {
            .chain_id = (uint64_t)chain_cfg.chain_id,
            .token = ts->tok->address,
            .symbol = ts->tok->symbol,
            .topic = topic,
            .lag_blocks = dcfg.lag_blocks,
            .range_max = dcfg.range_max,
            .start_block = dcfg.start_block,
            .blocks_kept = dcfg.blocks_kept,
            .addresses_max = dcfg.addresses_max,
            .backfill_blocks = dcfg.backfill_blocks,
            .confirm_k = (int)(dcfg.confirm_k > 0 ? dcfg.confirm_k : chain_cfg.rpc_quorum),
            .confirm_rpc = &ropts,
            .pg = &ts->pg,
            .rpc = rpc,
            .producer = producer,
            .metrics = metrics,
            .health = health,
        };
        if (zl_detector_new(&ts->det, &dopts, err, sizeof(err)) != 0) {
            zl_log(ZL_LOG_ERROR, NULL, "configuration: token %s: %s", ts->tok->symbol, err);
            zl_pg_close(&ts->pg);
            exit_code = ZL_EXIT_CONFIG;
            goto out;
        }
    }

    struct zl_backoff bo;
    if (zl_backoff_init(&bo, rc_cfg.outage_base_ms, rc_cfg.outage_cap_ms, 0, err, sizeof(err)) != 0) {
        zl_log(ZL_LOG_ERROR, NULL, "configuration: %s", err);
        exit_code = ZL_EXIT_CONFIG;
        goto out;
    }
    for (size_t i = 0; i < nscans; i++)
        zl_log(ZL_LOG_INFO, NULL, "detect started: chain %lld, token %s %s, topic %s", (long long)chain_cfg.chain_id,
               scans[i].tok->symbol, scans[i].tok->address, topic);
    bool paused = false;
    while (zl_boot_running()) {
        zl_health_heartbeat(health);
        bool all_idle = true;
        const struct token_scan *outage = NULL;
        for (size_t i = 0; i < nscans && zl_boot_running(); i++) {
            bool idle = true;
            if (!scan_once(&scans[i], rpc, &bo, &idle, err, sizeof(err))) {
                zl_log(ZL_LOG_ERROR, NULL, "configuration: %s", err);
                exit_code = ZL_EXIT_CONFIG;
                goto out;
            }
            all_idle = all_idle && idle;
            if (scans[i].last == ZL_OUTAGE)
                outage = &scans[i];
        }
        if ((outage != NULL) != paused) {
            paused = outage != NULL;
            char why[ZL_ERRSTR_SIZE] = "";
            if (paused)
                snprintf(why, sizeof(why), "token %s: %s", outage->tok->symbol, outage->last_err);
            zl_health_set_paused(health, paused, paused ? why : NULL);
        }
        if (!all_idle)
            continue;
        /* Idle or every token in backoff: sleep until the next retry is
         * due, at most the poll interval. */
        int64_t wait_ms = dcfg.poll_ms;
        int64_t now_ms = zl_now_ms();
        for (size_t i = 0; i < nscans; i++)
            if (scans[i].next_ms > now_ms && scans[i].next_ms - now_ms < wait_ms)
                wait_ms = scans[i].next_ms - now_ms;
        zl_boot_sleep_ms(wait_ms);
    }
    zl_health_set_draining(health);
    zl_log(ZL_LOG_INFO, NULL, "signal received: flushing the producer");
    exit_code = ZL_EXIT_OK;
out:
    if (producer != NULL) {
        rd_kafka_flush(producer, 5000);
        rd_kafka_destroy(producer);
    }
    for (size_t i = 0; i < nscans; i++) {
        zl_detector_free(scans[i].det);
        zl_pg_close(&scans[i].pg);
    }
    zl_rpc_free(rpc);
    zl_boot_stop(&boot); /* the HTTP server, metrics and config */
    return exit_code;
}
