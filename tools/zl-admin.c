/* zl-admin: the admin HTTP API (common/admin.h) on ZL_HTTP_ADDR:ZL_HTTP_PORT,
 * next to /health/live, /health/ready and /metrics. The bearer token is read
 * from ZL_ADMIN_TOKEN_FILE (every service's setting, boot.h; required here)
 * and never logged.
 * Exit: 0 after SIGTERM/SIGINT, 1 fatal, 2 configuration error.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "boot.h"
#include "config.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "runtime.h"
#include "tokens.h"

/* The state-table gauges are refreshed this often. */
#define GAUGES_EVERY_MS 5000
/* The main loop's sleep: bounds how long SIGTERM waits. */
#define LOOP_SLEEP_MS 200

struct admin_config {
    struct zl_secret worker_token;
    char *worker_urls;
    int64_t rate_per_s;
    int64_t burst;
    int64_t auth_fail_per_s;
    int64_t auth_fail_burst;
    int64_t http_timeout_ms;
    char *rpc_urls;
    char *tokens;
    char *token_address;
    bool rpc_allow_http;
    int64_t chain_id;
};

static const struct zl_setting admin_settings[] = {
    {"ZL_ADMIN_WORKER_TOKEN_FILE", ZL_CFG_SECRET_FILE, "",
     "file holding the workers' ZL_ADMIN_TOKEN_FILE token, sent with a forwarded breaker reset (empty: the admin"
     " API's own token)",
     offsetof(struct admin_config, worker_token), 0, 0},
    {"ZL_ADMIN_WORKER_URLS", ZL_CFG_STR, "",
     "workers for aggregated health and breaker reset: name=http://host:port,... (or bare URLs)",
     offsetof(struct admin_config, worker_urls), 0, 0},
    {"ZL_ADMIN_RATE_PER_S", ZL_CFG_INT, "20", "admin API calls per second (token bucket refill)",
     offsetof(struct admin_config, rate_per_s), 1, 10000},
    {"ZL_ADMIN_BURST", ZL_CFG_INT, "40", "admin API calls allowed in a burst",
     offsetof(struct admin_config, burst), 1, 100000},
    {"ZL_ADMIN_AUTH_FAIL_PER_S", ZL_CFG_INT, "1",
     "calls without the right token allowed per second from one address (then 429; apart from the token's budget)",
     offsetof(struct admin_config, auth_fail_per_s), 1, 10000},
    {"ZL_ADMIN_AUTH_FAIL_BURST", ZL_CFG_INT, "20", "calls without the right token allowed in a burst from one address",
     offsetof(struct admin_config, auth_fail_burst), 1, 100000},
    {"ZL_ADMIN_HTTP_TIMEOUT_MS", ZL_CFG_INT, "2000", "bound on each worker health scrape or forwarded call",
     offsetof(struct admin_config, http_timeout_ms), 100, 60000},
    {"ZL_RPC_URLS", ZL_CFG_STR, "", "JSON-RPC endpoints for POST /admin/claims (zlctl claim); empty: claims off",
     offsetof(struct admin_config, rpc_urls), 0, 0},
    ZL_TOKENS_SETTING("a claim records their Transfers", offsetof(struct admin_config, tokens)),
    {"ZL_TOKEN_ADDRESS", ZL_CFG_STR, "", "the single-token form of ZL_TOKENS (with ZL_RPC_URLS)",
     offsetof(struct admin_config, token_address), 0, 0},
    {"ZL_RPC_ALLOW_HTTP", ZL_CFG_BOOL, "false",
     "accept plain http:// claim endpoints that are not loopback (no TLS: a man in the middle decides what a claim "
     "records)", offsetof(struct admin_config, rpc_allow_http), 0, 0},
    {"ZL_CHAIN_ID", ZL_CFG_INT, "31337", "EIP-155 chain id of claimed deposits", offsetof(struct admin_config, chain_id),
     1, INT64_C(9007199254740991)},
};

int main(int argc, char **argv)
{
    static struct zl_boot boot;
    static struct zl_runtime_config rcfg;
    static struct admin_config acfg;
    struct zl_config_section sections[] = {
        {"zl-admin", admin_settings, sizeof(admin_settings) / sizeof(admin_settings[0]), &acfg},
    };
    struct zl_boot_opts opts = {.name = "zl-admin", .service = true, .runtime = &rcfg, .sections = sections,
                                .nsections = 1, .argc = argc, .argv = argv};
    int status = ZL_EXIT_OK;
    if (zl_boot_start(&boot, &opts, &status) != 0)
        return status;

    status = ZL_EXIT_FATAL;
    char err[ZL_ERRSTR_SIZE];
    struct zl_admin *admin = NULL;
    struct zl_health *health = NULL;
    struct zl_admin_opts ao = {
        .pg_dsn = rcfg.pg_dsn, .token = boot.svc.admin_token.value, .worker_urls = acfg.worker_urls,
        .worker_token = acfg.worker_token.value,
        .rate_per_s = (double)acfg.rate_per_s, .burst = (double)acfg.burst,
        .auth_fail_per_s = (double)acfg.auth_fail_per_s, .auth_fail_burst = (double)acfg.auth_fail_burst,
        .http_timeout_ms = acfg.http_timeout_ms, .pg_connect_timeout_ms = rcfg.pg_connect_timeout_ms,
        .rpc_urls = acfg.rpc_urls, .tokens = acfg.tokens, .token_address = acfg.token_address, .rpc_allow_http = acfg.rpc_allow_http, .chain_id = acfg.chain_id,
        .metrics = boot.metrics,
    };
    if (zl_admin_new(&admin, &ao, err, sizeof(err)) != 0) {
        zl_log(ZL_LOG_ERROR, NULL, "zl-admin: %s", err);
        status = ZL_EXIT_CONFIG;
        goto out;
    }
    /* The admin route checks the token itself: it rate limits per caller
     * after authentication (admin.h). */
    struct zl_health_opts ho = {.stage = "admin", .route = zl_admin_route, .route_opaque = admin,
                                .admin_route_authenticates = true};
    if (zl_boot_serve(&boot, &ho) != 0)
        goto out;
    health = boot.health;
    zl_log(ZL_LOG_INFO, NULL, "zl-admin listening on %s:%u", rcfg.http_addr, (unsigned)zl_health_port(health));
    int64_t next_gauges_ms = 0;
    bool db_ok = true;
    while (zl_boot_running()) {
        zl_health_heartbeat(health);
        if (zl_now_ms() >= next_gauges_ms) {
            next_gauges_ms = zl_now_ms() + GAUGES_EVERY_MS;
            bool ok = zl_admin_tick(admin, err, sizeof(err)) == 0;
            zl_health_set_dep(health, "postgres", ok, NULL, ok ? "" : err);
            if (ok != db_ok)
                zl_log(ok ? ZL_LOG_INFO : ZL_LOG_WARN, NULL, "database %s%s", ok ? "answers again" : "down: ",
                       ok ? "" : err);
            db_ok = ok;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = LOOP_SLEEP_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    zl_health_set_draining(health);
    zl_log(ZL_LOG_INFO, NULL, "zl-admin stopped cleanly");
    status = ZL_EXIT_OK;
out:
    zl_boot_stop(&boot); /* the HTTP server first: its route uses admin */
    zl_admin_free(admin);
    return status;
}
