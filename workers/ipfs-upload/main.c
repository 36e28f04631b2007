/* ipfs-upload: zl.deposits.verified -> zl.nft.pinned.
 *
 * For each verified deposit: build its ERC-721 metadata canonically
 * (nftmeta.h), compute the CID locally (cid.h), pin the bytes to
 * ZL_IPFS_PIN_K providers, each of which must answer with exactly that CID,
 * fetch them back through a gateway and compare (ipfs.h; a poll batch's
 * documents at once, batch.c), then move the row
 * verified -> pinned with metadata_cid and token_uri = ipfs://<cid> in the
 * runtime's CAS transaction. The same deposit always yields the same bytes,
 * so a crash anywhere and a redelivery pin the same object again: harmless.
 *
 * The NFT image (ZL_NFT_IMAGE_FILE, or one per amount tier) is pinned once;
 * its CID is remembered in ipfs_images (schemas/sql/003_ipfs.sql) and reused
 * (images.c). Every class comes from the layer that saw the failure (pg.h,
 * ipfs.h) and is passed on unchanged. A thread of its own removes the pins
 * of deposits that will never be minted (unpin.h, ZL_UNPIN_*).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "cid.h"
#include "images.h"
#include "ipfs.h"
#include "log.h"
#include "nftmeta.h"
#include "runtime.h"
#include "unpin.h"

struct ipfs_upload_config {
    char *providers;
    char *api_url;
    char *gateways;
    int64_t pin_k;
    bool verify;
    int64_t timeout_ms;
    int64_t connect_timeout_ms;
    int64_t gateway_timeout_ms;
    struct zl_secret pinata_jwt;
    struct zl_secret psa_token;
    int64_t psa_poll_timeout_ms;
    int64_t psa_poll_interval_ms;
    int64_t breaker_failure_pct;
    int64_t breaker_sampling_ms;
    int64_t breaker_min_throughput;
    int64_t breaker_break_ms;
    int64_t provider_concurrency_max;
    int64_t gateway_concurrency_max;
    char *image_file;
    char *image_tiers;
    char *name_prefix;
    char *description;
    char *external_url;
};

#define OFF(f) offsetof(struct ipfs_upload_config, f)
static const struct zl_setting iu_settings[] = {
    {"ZL_IPFS_PROVIDERS", ZL_CFG_STR, "",
     "IPFS providers in preference order, kind=url comma-separated (kind: kubo, pinata, psa); empty: kubo=ZL_IPFS_API_URL",
     OFF(providers), 0, 0},
    {"ZL_IPFS_API_URL", ZL_CFG_STR, "http://127.0.0.1:5001", "Kubo RPC API used when ZL_IPFS_PROVIDERS is empty",
     OFF(api_url), 0, 0},
    {"ZL_IPFS_GATEWAY_URLS", ZL_CFG_STR, "http://127.0.0.1:8080",
     "IPFS gateways for the retrievability check, comma-separated, tried in order", OFF(gateways), 0, 0},
    {"ZL_IPFS_PIN_K", ZL_CFG_INT, "1", "providers that must hold every object (redundancy)", OFF(pin_k), 1,
     ZL_IPFS_PROVIDERS_MAX},
    {"ZL_IPFS_VERIFY_RETRIEVAL", ZL_CFG_BOOL, "true",
     "fetch every object back through a gateway and compare its hash before moving on", OFF(verify), 0, 0},
    {"ZL_IPFS_TIMEOUT_MS", ZL_CFG_INT, "30000", "timeout of one provider request", OFF(timeout_ms), 100, 600000},
    {"ZL_IPFS_CONNECT_TIMEOUT_MS", ZL_CFG_INT, "3000", "timeout of one connection to a provider or gateway",
     OFF(connect_timeout_ms), 10, 60000},
    {"ZL_IPFS_GATEWAY_TIMEOUT_MS", ZL_CFG_INT, "10000", "timeout of one gateway fetch", OFF(gateway_timeout_ms), 100,
     600000},
    {"ZL_IPFS_PINATA_JWT_FILE", ZL_CFG_SECRET_FILE, "", "file holding the Pinata JWT (Bearer); needed for pinata",
     OFF(pinata_jwt), 0, 0},
    {"ZL_IPFS_PSA_TOKEN_FILE", ZL_CFG_SECRET_FILE, "",
     "file holding the Pinning Service API access token; needed for psa", OFF(psa_token), 0, 0},
    {"ZL_IPFS_PSA_POLL_TIMEOUT_MS", ZL_CFG_INT, "60000", "wait this long for a pinning service to report pinned",
     OFF(psa_poll_timeout_ms), 100, 3600000},
    {"ZL_IPFS_PSA_POLL_INTERVAL_MS", ZL_CFG_INT, "500", "between pinning service status polls",
     OFF(psa_poll_interval_ms), 10, 60000},
    {"ZL_IPFS_BREAKER_FAILURE_PCT", ZL_CFG_INT, "50", "provider breaker opens at this failure percentage",
     OFF(breaker_failure_pct), 1, 100},
    {"ZL_IPFS_BREAKER_SAMPLING_MS", ZL_CFG_INT, "30000", "provider breaker sampling window",
     OFF(breaker_sampling_ms), 1, 86400000},
    {"ZL_IPFS_BREAKER_MIN_THROUGHPUT", ZL_CFG_INT, "5", "calls in the window before a provider breaker may open",
     OFF(breaker_min_throughput), 1, 100000},
    {"ZL_IPFS_BREAKER_BREAK_MS", ZL_CFG_INT, "5000", "time a provider breaker stays open before a probe",
     OFF(breaker_break_ms), 1, 86400000},
    {"ZL_IPFS_PROVIDER_CONCURRENCY_MAX", ZL_CFG_INT, "8",
     "pin requests in flight to one provider at once (its bulkhead: a slow provider holds only these); 1: one "
     "after another", OFF(provider_concurrency_max), 1, ZL_IPFS_CONCURRENCY_LIMIT},
    {"ZL_IPFS_GATEWAY_CONCURRENCY_MAX", ZL_CFG_INT, "8",
     "read-back requests in flight to one gateway at once (its bulkhead); 1: one after another",
     OFF(gateway_concurrency_max), 1, ZL_IPFS_CONCURRENCY_LIMIT},
    {"ZL_NFT_IMAGE_FILE", ZL_CFG_STR, "deploy/assets/receipt.svg",
     "NFT image (at most 262144 bytes), pinned once and referenced by every metadata document", OFF(image_file), 0,
     0},
    {"ZL_NFT_IMAGE_TIERS", ZL_CFG_STR, "",
     "images per amount tier: min_amount=path comma-separated (smallest unit); below every tier: ZL_NFT_IMAGE_FILE",
     OFF(image_tiers), 0, 0},
    {"ZL_NFT_NAME_PREFIX", ZL_CFG_STR, "zeroloss deposit receipt", "NFT name: this, a space, then the deposit id",
     OFF(name_prefix), 0, 0},
    {"ZL_NFT_DESCRIPTION", ZL_CFG_STR, "Receipt for a USDT deposit credited by zeroloss.", "NFT description",
     OFF(description), 0, 0},
    {"ZL_NFT_EXTERNAL_URL", ZL_CFG_STR, "",
     "NFT external_url; {deposit_id} is replaced by the deposit id; empty: no external_url", OFF(external_url), 0, 0},
};
#undef OFF

struct ipfs_upload {
    struct ipfs_upload_config cfg;
    struct zl_ipfs *ipfs;
    struct zl_pg pg;        /* own connection: process() reads ipfs_images outside the CAS transaction */
    bool pg_inited;
    struct iu_images images;
    char providers[ZL_IPFS_URL_MAX * 2];   /* the effective provider list: part of an image's key */
    struct zl_unpin_opts unpin_cfg;
    struct zl_unpinner *unpinner;          /* NULL when ZL_UNPIN_ENABLED is off */
};

static struct ipfs_upload g_ipfs_upload;

/* --------------------------------------------------------------- stage */

static zl_class iu_republish(void *ctx, struct zl_work *w)
{
    (void)ctx;
    if (w->row.facts.metadata_cid[0] == '\0' || w->row.facts.token_uri[0] == '\0') {
        snprintf(w->error, sizeof(w->error), "row is %s but has no metadata_cid/token_uri",
                 zl_state_name(w->row.state));
        return ZL_PERMANENT;
    }
    zl_event_derive(&w->out, &w->in, ZL_TOPIC_PINNED);
    snprintf(w->out.metadata_cid, sizeof(w->out.metadata_cid), "%s", w->row.facts.metadata_cid);
    snprintf(w->out.token_uri, sizeof(w->out.token_uri), "%s", w->row.facts.token_uri);
    return ZL_OK;
}

/* A poll batch at once (batch.c): every document built, then pinned and
 * read back, each provider and gateway up to its concurrency bound. */
static void iu_process_batch(void *ctx, struct zl_work *const *ws, size_t n)
{
    struct ipfs_upload *u = ctx;
    const struct iu_batch_env e = {
        .ipfs = u->ipfs,
        .pg = &u->pg,
        .images = &u->images,
        .providers = u->providers,
        .meta = {.name_prefix = u->cfg.name_prefix, .description = u->cfg.description,
                 .external_url = u->cfg.external_url},
    };
    iu_pin_batch(&e, ws, n);
}

static const char iu_set_uri_sql[] =
    "UPDATE deposits SET metadata_cid = m.cid, token_uri = m.uri, updated_at = now()"
    " FROM unnest($1::text[], $2::text[], $3::text[]) AS m(id, cid, uri)"
    " WHERE deposits.deposit_id = m.id";

static int iu_prepare(void *ctx, struct zl_pg *pg)
{
    (void)ctx;
    return zl_pg_add_stmt(pg, "iu_set_uri", iu_set_uri_sql, 3);
}

static zl_class iu_in_tx(void *ctx, struct zl_pg *pg, struct zl_work *const *moved, size_t n, char *errstr,
                         size_t errstr_size)
{
    (void)ctx;
    zl_class c = ZL_TRANSIENT;
    const char **ids = calloc(n, sizeof(*ids));
    const char **cids = calloc(n, sizeof(*cids));
    const char **uris = calloc(n, sizeof(*uris));
    char *a_ids = NULL, *a_cids = NULL, *a_uris = NULL;
    if (ids == NULL || cids == NULL || uris == NULL)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        /* Assert on both sides of the boundary: what goes into the row is
         * what the event will carry. */
        ZL_ASSERT(zl_valid_cid(moved[i]->out.metadata_cid));
        ids[i] = moved[i]->in.deposit_id;
        cids[i] = moved[i]->out.metadata_cid;
        uris[i] = moved[i]->out.token_uri;
    }
    a_ids = zl_pg_array_literal(ids, n);
    a_cids = zl_pg_array_literal(cids, n);
    a_uris = zl_pg_array_literal(uris, n);
    if (a_ids == NULL || a_cids == NULL || a_uris == NULL)
        goto oom;
    const char *params[3] = {a_ids, a_cids, a_uris};
    PGresult *r = zl_pg_prepared(pg, "iu_set_uri", 3, params, PGRES_COMMAND_OK, &c, errstr, errstr_size);
    if (r != NULL) {
        long updated = strtol(PQcmdTuples(r), NULL, 10);
        PQclear(r);
        if (updated != (long)n) {
            snprintf(errstr, errstr_size, "setting metadata_cid updated %ld rows of %zu moved", updated, n);
            c = ZL_TRANSIENT;
        }
    }
    goto out;
oom:
    snprintf(errstr, errstr_size, "out of memory");
    c = ZL_TRANSIENT;
out:
    free(ids);
    free(cids);
    free(uris);
    free(a_ids);
    free(a_cids);
    free(a_uris);
    return c;
}

/* During an outage: the stage's own connection with its statements
 * prepared (a missing ipfs_images keeps the stage paused until it is
 * migrated, rather than resuming into the same failure), then the providers. */
static zl_class iu_probe(void *ctx, char *errstr, size_t errstr_size)
{
    struct ipfs_upload *u = ctx;
    zl_class c = zl_pg_ensure(&u->pg, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    return zl_ipfs_probe(u->ipfs, errstr, errstr_size);
}

static int iu_init(void *ctx, const struct zl_runtime_env *env, char *errstr, size_t errstr_size)
{
    struct ipfs_upload *u = ctx;
    if (iu_images_load(&u->images, u->cfg.image_file, u->cfg.image_tiers, errstr, errstr_size) != 0)
        return -1;
    const struct zl_nftmeta_opts mo = {u->cfg.name_prefix, u->cfg.description, u->cfg.external_url,
                                       u->images.img[0].cid};
    if (zl_nftmeta_check_opts(&mo, errstr, errstr_size) != 0)
        return -1;
    if (u->cfg.providers[0] != '\0')
        snprintf(u->providers, sizeof(u->providers), "%s", u->cfg.providers);
    else
        snprintf(u->providers, sizeof(u->providers), "kubo=%s", u->cfg.api_url);
    const char *plist = u->providers;
    struct zl_ipfs_opts o = {
        .providers = plist,
        .gateways = u->cfg.gateways,
        .pin_k = (int)u->cfg.pin_k,
        .verify_retrieval = u->cfg.verify,
        .timeout_ms = u->cfg.timeout_ms,
        .connect_timeout_ms = u->cfg.connect_timeout_ms,
        .gateway_timeout_ms = u->cfg.gateway_timeout_ms,
        .pinata_jwt = u->cfg.pinata_jwt.value,
        .psa_token = u->cfg.psa_token.value,
        .psa_poll_timeout_ms = u->cfg.psa_poll_timeout_ms,
        .psa_poll_interval_ms = u->cfg.psa_poll_interval_ms,
        .metrics = env->metrics,
        .health = env->health,
        .stage = "ipfs-upload",
        .provider_concurrency_max = (int)u->cfg.provider_concurrency_max,
        .gateway_concurrency_max = (int)u->cfg.gateway_concurrency_max,
    };
    zl_breaker_opts_default(&o.breaker);
    o.breaker.failure_ratio = (double)u->cfg.breaker_failure_pct / 100.0;
    o.breaker.sampling_duration_ms = u->cfg.breaker_sampling_ms;
    o.breaker.minimum_throughput = (int32_t)u->cfg.breaker_min_throughput;
    o.breaker.break_duration_ms = u->cfg.breaker_break_ms;
    if (zl_ipfs_new(&u->ipfs, &o, errstr, errstr_size) != 0 ||
        zl_unpinner_start(&u->unpinner, &u->unpin_cfg, &o, env, errstr, errstr_size) != 0)
        return -1;
    if (zl_pg_init(&u->pg, env->cfg->pg_dsn, env->cfg->pg_connect_timeout_ms) != 0 ||
        iu_images_prepare(&u->pg) != 0) {
        snprintf(errstr, errstr_size, "ipfs-upload: cannot set up its database connection");
        return -1;
    }
    u->pg_inited = true;
    for (int i = 0; i < u->images.n; i++)
        zl_log_kv(ZL_LOG_INFO, NULL, "NFT image", "tier", u->images.img[i].tier, "file", u->images.img[i].path,
                  "cid", u->images.img[i].cid, NULL);
    return 0;
}

/* The admin API's breaker reset: the providers' breakers (ipfs.h). */
static int iu_reset_breakers(void *ctx, const char *dependency)
{
    struct ipfs_upload *u = ctx;
    return zl_ipfs_reset_breakers(u->ipfs, dependency);
}

static void iu_fini(void *ctx)
{
    struct ipfs_upload *u = ctx;
    zl_unpinner_stop(u->unpinner);
    zl_ipfs_free(u->ipfs);
    u->ipfs = NULL;
    if (u->pg_inited)
        zl_pg_close(&u->pg);
    iu_images_free(&u->images);
}

int main(int argc, char **argv)
{
    const struct zl_stage stage = {
        .name = "ipfs-upload",
        .in_kind = ZL_TOPIC_VERIFIED,
        .out_kind = ZL_TOPIC_PINNED,
        .accept_states = "{verified}",
        .done_state = ZL_STATE_PINNED,
        .process_batch = iu_process_batch,
        .republish = iu_republish,
        .in_tx = iu_in_tx,
        .prepare = iu_prepare,
        .probe = iu_probe,
        .init = iu_init,
        .reset_breakers = iu_reset_breakers,
        .fini = iu_fini,
        .ctx = &g_ipfs_upload,
    };
    struct zl_config_section extra[2] = {
        {"ipfs-upload stage", iu_settings, sizeof(iu_settings) / sizeof(iu_settings[0]), &g_ipfs_upload.cfg},
        {"ipfs-upload unpin pass", zl_unpin_settings, zl_unpin_settings_count, &g_ipfs_upload.unpin_cfg}};
    return zl_runtime_main(&stage, extra, 2, argc, argv);
}
