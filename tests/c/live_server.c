/* live_server: runs the live updates server (common/live.h) alone, for the
 * tests and for an operator trying it out; in production a stage's main
 * starts it (zl_live_start) from the same settings.
 *
 *   live_server [--config PATH] [--set ZL_NAME=value]...
 *       serves ZL_LIVE_ADDR:ZL_LIVE_PORT against ZL_PG_DSN until SIGTERM/SIGINT
 *   live_server --mint-token USER_ID TTL_S [config options]
 *       prints the token of USER_ID valid for TTL_S seconds from now, made
 *       with ZL_LIVE_TOKEN_SECRET_FILE: what the operator's backend computes
 *       (docs/operations.md, "Live updates")
 *
 * Exit: 0 after a signal (or a token printed), 1 fatal, 2 configuration error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "boot.h"
#include "config.h"
#include "live.h"
#include "log.h"
#include "runtime.h"
#include "zl.h"

/* How often the main loop looks at the stop flag. */
#define STOP_CHECK_MS 100

static int mint(const struct zl_live_config *cfg, const char *user, const char *ttl_text)
{
    char *end = NULL;
    errno = 0;
    long long ttl = strtoll(ttl_text, &end, 10);
    if (errno != 0 || end == ttl_text || *end != '\0' || ttl <= 0) {
        fprintf(stderr, "live_server: --mint-token: TTL_S \"%s\" is not a positive number of seconds\n",
                ttl_text);
        return ZL_EXIT_CONFIG;
    }
    if (cfg->token_secret.value == NULL) {
        fprintf(stderr, "live_server: --mint-token needs ZL_LIVE_TOKEN_SECRET_FILE\n");
        return ZL_EXIT_CONFIG;
    }
    char token[ZL_LIVE_TOKEN_SIZE];
    if (zl_live_token_mint(cfg->token_secret.value, user, (int64_t)time(NULL) + ttl, token, sizeof(token)) != 0) {
        fprintf(stderr, "live_server: --mint-token: user id must be 1..%d bytes\n", ZL_LIVE_USER_BYTES_MAX);
        return ZL_EXIT_CONFIG;
    }
    printf("%s\n", token);
    return ZL_EXIT_OK;
}

int main(int argc, char **argv)
{
    const char *mint_user = NULL, *mint_ttl = NULL;
    if (argc >= 4 && strcmp(argv[1], "--mint-token") == 0) {
        mint_user = argv[2];
        mint_ttl = argv[3];
        argv[3] = argv[0]; /* the config loader sees argv[0] and the rest */
        argv += 3;
        argc -= 3;
    }
    static struct zl_boot boot;
    static struct zl_runtime_config rcfg;
    static struct zl_live_config lcfg;
    struct zl_config_section sections[] = {
        {"Live updates", zl_live_settings, zl_live_settings_count, &lcfg},
    };
    struct zl_boot_opts opts = {.name = "live_server", .stop_on_signal = true, .runtime = &rcfg,
                                .sections = sections, .nsections = 1, .argc = argc, .argv = argv};
    int status = ZL_EXIT_OK;
    if (zl_boot_start(&boot, &opts, &status) != 0)
        return status;
    if (mint_user != NULL) {
        status = mint(&lcfg, mint_user, mint_ttl);
        zl_boot_stop(&boot);
        return status;
    }
    char err[ZL_ERRSTR_SIZE];
    struct zl_live *live = NULL;
    status = ZL_EXIT_CONFIG;
    if (lcfg.port == 0) {
        fprintf(stderr, "live_server: ZL_LIVE_PORT is 0: nothing to serve\n");
        goto out;
    }
    int rc = zl_live_start(&lcfg, rcfg.pg_dsn, rcfg.pg_connect_timeout_ms, &live, err, sizeof(err));
    if (rc != 0) {
        zl_log(ZL_LOG_ERROR, NULL, "%s", err);
        status = rc == ZL_LIVE_REFUSED ? ZL_EXIT_CONFIG : ZL_EXIT_FATAL;
        goto out;
    }
    while (zl_boot_running()) {
        struct timespec ts = {0, STOP_CHECK_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    zl_log(ZL_LOG_INFO, NULL, "live_server: stopping");
    status = ZL_EXIT_OK;
out:
    zl_live_stop(live);
    zl_boot_stop(&boot);
    return status;
}
