/* zl-sweep: the background safety net. Every ZL_SWEEP_INTERVAL_MS it
 * re-publishes the current event of each row that has not moved for
 * ZL_SWEEP_STALE_MS and is not waiting on purpose; one copy is active (a
 * PostgreSQL advisory lock), the others stand by. Policy in common/sweep.h.
 *
 * Serves /health/live, /health/ready and /metrics on ZL_HTTP_ADDR:ZL_HTTP_PORT,
 * with the state-table gauges the alert rules read (set in common/sweep.c):
 * zl_pending_deposits, zl_oldest_pending_seconds, zl_dead_deposits,
 * zl_failing_deposits, and zl_sweep_active (1 on the lock holder).
 * Exit: 0 after SIGTERM/SIGINT, 1 fatal, 2 configuration error.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "boot.h"
#include "config.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "runtime.h"
#include "sweep.h"

/* Passes (admin requests, gauges) happen this often; sweeps every interval. */
#define PASS_EVERY_MS 500

struct sweep_config {
    int64_t chain_id;
    int64_t stale_ms;
    int64_t interval_ms;
    int64_t batch_max;
};

static const struct zl_setting sweep_settings[] = {
    {"ZL_SWEEP_CHAIN_ID", ZL_CFG_INT, "0", "sweep only rows of this chain id (0 = every chain)",
     offsetof(struct sweep_config, chain_id), 0, INT64_MAX},
    {"ZL_SWEEP_STALE_MS", ZL_CFG_INT, "30000", "re-publish rows that have not moved for this long",
     offsetof(struct sweep_config, stale_ms), 0, 86400000},
    {"ZL_SWEEP_INTERVAL_MS", ZL_CFG_INT, "3000", "time between two sweeps",
     offsetof(struct sweep_config, interval_ms), 100, 3600000},
    {"ZL_SWEEP_BATCH_MAX", ZL_CFG_INT, "500", "rows re-published per sweep at most",
     offsetof(struct sweep_config, batch_max), 1, ZL_SWEEP_BATCH_LIMIT},
};

int main(int argc, char **argv)
{
    static struct zl_boot boot;
    static struct zl_runtime_config rcfg;
    static struct sweep_config scfg;
    static struct zl_kv_list props;
    struct zl_config_section sections[] = {
        {"zl-sweep", sweep_settings, sizeof(sweep_settings) / sizeof(sweep_settings[0]), &scfg},
    };
    struct zl_boot_opts opts = {.name = "zl-sweep", .service = true, .runtime = &rcfg, .sections = sections,
                                .nsections = 1, .kafka_props = &props, .argc = argc, .argv = argv};
    int status = ZL_EXIT_OK;
    if (zl_boot_start(&boot, &opts, &status) != 0)
        return status;

    status = ZL_EXIT_FATAL;
    char err[ZL_ERRSTR_SIZE];
    struct zl_health *health = NULL;
    struct zl_sweeper *sw = NULL;
    struct zl_health_opts ho = {.stage = "sweep"};
    if (zl_boot_serve(&boot, &ho) != 0)
        goto out;
    health = boot.health;
    struct zl_sweeper_opts so = {
        .brokers = rcfg.kafka_brokers, .kafka_props = &props, .pg_dsn = rcfg.pg_dsn,
        .topic_prefix = rcfg.topic_prefix, .chain_id = scfg.chain_id, .stale_ms = scfg.stale_ms, .batch_max = scfg.batch_max,
        .delivery_timeout_ms = rcfg.delivery_timeout_ms, .pg_connect_timeout_ms = rcfg.pg_connect_timeout_ms,
        .metrics = boot.metrics,
    };
    if (zl_sweeper_new(&sw, &so, err, sizeof(err)) != 0) {
        zl_log(ZL_LOG_ERROR, NULL, "sweeper: %s", err);
        goto out;
    }
    zl_log(ZL_LOG_INFO, NULL, "zl-sweep started: stale after %" PRId64 " ms, every %" PRId64 " ms, http port %u",
           scfg.stale_ms, scfg.interval_ms, (unsigned)zl_health_port(health));
    int64_t next_sweep_ms = 0;
    bool was_ok = true;
    while (zl_boot_running()) {
        zl_health_heartbeat(health);
        int64_t now = zl_now_ms();
        bool due = now >= next_sweep_ms;
        struct zl_sweep_result res;
        zl_class c = zl_sweeper_pass(sw, due, &res, err, sizeof(err));
        if (due && c == ZL_OK)
            next_sweep_ms = now + scfg.interval_ms;
        bool pg_ok = c != ZL_OUTAGE || strncmp(err, "kafka", 5) == 0;
        bool kafka_ok = c != ZL_OUTAGE || strncmp(err, "kafka", 5) != 0;
        zl_health_set_dep(health, "postgres", pg_ok, NULL, pg_ok ? "" : err);
        zl_health_set_dep(health, "kafka", kafka_ok, NULL, kafka_ok ? "" : err);
        zl_health_set_dep(health, "leader", true, res.active ? "active" : "standby",
                          res.active ? "holds the sweep lock" : "another sweeper holds the lock");
        if (c != ZL_OK && was_ok)
            zl_log(ZL_LOG_WARN, NULL, "sweep pass failed (%s), retrying: %s", zl_class_name(c), err);
        else if (c == ZL_OK && !was_ok)
            zl_log(ZL_LOG_INFO, NULL, "sweep pass works again");
        was_ok = c == ZL_OK;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = PASS_EVERY_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    zl_health_set_draining(health);
    zl_log(ZL_LOG_INFO, NULL, "zl-sweep stopped cleanly");
    status = ZL_EXIT_OK;
out:
    zl_sweeper_free(sw);
    zl_boot_stop(&boot); /* the HTTP server, metrics and config */
    return status;
}
