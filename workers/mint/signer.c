/* signer.c: the mint stage's signer keys (common/signer_pool.h): its
 * settings, and the pool the copy leases its key from. main.c reaches the
 * pool through mint_pool().
 *
 * @locality the stage's main thread; the pool runs threads of its own.
 */
#include <inttypes.h>
#include <stdio.h>

#include "boot.h"
#include "mint.h"
#include "signer_pool.h"

/* The signer pool's settings (common/signer_pool.h). */
struct signer_config {
    char *key_files;
    char *key_dir;
    int64_t lease_ms;
    int64_t renew_ms;
    int64_t balance_ms;
    int64_t balance_low_gwei;
};

#define OFF(f) offsetof(struct signer_config, f)
static const struct zl_setting signer_settings[] = {
    {"ZL_SIGNER_KEY_FILES", ZL_CFG_STR, "",
     "a pool of signer key files, comma-separated: each copy leases one of its own (instead of ZL_SIGNER_KEY_FILE)",
     OFF(key_files), 0, 0},
    {"ZL_SIGNER_KEY_DIR", ZL_CFG_STR, "",
     "a pool of signer keys: every file in this directory not named .* (a Kubernetes secret volume)",
     OFF(key_dir), 0, 0},
    {"ZL_SIGNER_LEASE_MS", ZL_CFG_INT, "15000",
     "a pool key's lease lasts this long after its last renewal (a dead copy's key is free after it)", OFF(lease_ms),
     1000, 3600000},
    {"ZL_SIGNER_LEASE_RENEW_MS", ZL_CFG_INT, "3000",
     "between lease renewals, and tries while waiting for a free key (below half the lease)", OFF(renew_ms), 100,
     1800000},
    {"ZL_SIGNER_BALANCE_MS", ZL_CFG_INT, "30000", "between reads of every signer's balance (zl_signer_balance_ether)",
     OFF(balance_ms), 100, 86400000},
    {"ZL_SIGNER_BALANCE_LOW_GWEI", ZL_CFG_INT, "50000000",
     "a signer below this balance needs topping up: zl_signer_balance_low_ether, the alert's threshold",
     OFF(balance_low_gwei), 0, 0},
};
#undef OFF

static struct signer_config g_signer_cfg;
static struct zl_signer_pool g_pool;

struct zl_signer_pool *mint_pool(void)
{
    return &g_pool;
}

struct zl_config_section mint_signer_section(void)
{
    return (struct zl_config_section){"mint signer pool", signer_settings,
                                      sizeof(signer_settings) / sizeof(signer_settings[0]), &g_signer_cfg};
}

/* Loads the keys, leases one (waiting, not ready, when every key of a pool
 * is taken) and gives m its own copy of the key it signs with. */
int mint_signer_start(struct mint *m, const struct zl_runtime_env *env, char *errstr, size_t errstr_size)
{
    const struct signer_config *sc = &g_signer_cfg;
    if (zl_signer_pool_load(&g_pool, m->cfg.signer_key.value, sc->key_files, sc->key_dir, errstr, errstr_size) != 0)
        return ZL_RUNTIME_INIT_REFUSED;
    if (sc->renew_ms >= sc->lease_ms / 2) {
        snprintf(errstr, errstr_size, "ZL_SIGNER_LEASE_RENEW_MS (%" PRId64 ") must be below half ZL_SIGNER_LEASE_MS"
                 " (%" PRId64 "): a lease must survive a missed renewal", sc->renew_ms, sc->lease_ms);
        zl_signer_pool_stop(&g_pool);
        return ZL_RUNTIME_INIT_REFUSED;
    }
    struct zl_signer_pool_opts po = {
        .pg_dsn = env->cfg->pg_dsn, .pg_connect_timeout_ms = env->cfg->pg_connect_timeout_ms,
        .rpc = {.urls = m->cfg.rpc_urls, .timeout_ms = m->cfg.rpc_timeout_ms, .quorum = 1,
                .allow_http = m->cfg.rpc_allow_http, .name = "rpc_balance"},
        .lease_ms = sc->lease_ms, .renew_ms = sc->renew_ms, .balance_ms = sc->balance_ms,
        .balance_low_ether = (double)sc->balance_low_gwei / 1e9, .metrics = env->metrics, .health = env->health};
    if (zl_signer_pool_start(&g_pool, &po, zl_boot_run_flag(), errstr, errstr_size) != 0 ||
        zl_signer_pool_copy_key(&g_pool, &m->key, errstr, errstr_size) != 0) {
        zl_signer_pool_stop(&g_pool);
        return -1;
    }
    return 0;
}
