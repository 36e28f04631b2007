/* ipfs-upload: zl.deposits.verified -> zl.nft.pinned.
 *
 * For each verified deposit: build its ERC-721 metadata canonically
 * (nftmeta.h), compute the CID locally (cid.h), pin the bytes to
 * ZL_IPFS_PIN_K providers, each of which must answer with exactly that CID,
 * fetch them back through a gateway and compare (ipfs.h), then move the row
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

/* One deposit's metadata document of a poll batch. */
struct iu_doc {
    char *bytes;            /* owned, len bytes: documents are ~600 bytes, the build buffer 8 KiB */
    size_t len;
    char cid[ZL_CID_SIZE];
    char name[96];
    const struct iu_image *img;
};

/* Builds w's document (permanent when its event cannot make one). */
static zl_class build_doc(struct ipfs_upload *u, struct zl_work *w, struct iu_doc *d)
{
    struct iu_image *img = iu_images_for(&u->images, w->row.facts.amount);
    zl_class c = iu_image_ensure(img, &u->pg, u->ipfs, u->providers, w->error, sizeof(w->error));
    if (c != ZL_OK)
        return c;
    const struct zl_nftmeta_opts mo = {
        .name_prefix = u->cfg.name_prefix,
        .description = u->cfg.description,
        .external_url = u->cfg.external_url,
        .image_cid = img->cid,
    };
    char buf[ZL_NFTMETA_MAX_BYTES];
    /* w->in carries the row's facts here: the runtime refused a message that
     * disagreed with its row and then applied the row's (facts.h). */
    if (zl_nftmeta_build(&w->in, &mo, buf, sizeof(buf), &d->len, w->error, sizeof(w->error)) != 0 ||
        zl_cid_raw_v1(buf, d->len, d->cid, sizeof(d->cid), w->error, sizeof(w->error)) != 0)
        return ZL_PERMANENT;
    d->bytes = malloc(d->len > 0 ? d->len : 1);
    if (d->bytes == NULL) {
        snprintf(w->error, sizeof(w->error), "ipfs-upload: out of memory");
        return ZL_TRANSIENT;
    }
    memcpy(d->bytes, buf, d->len);
    /* Unique per deposit: Kubo's answer names each file of a batch by it. */
    snprintf(d->name, sizeof(d->name), "zl-%.66s-%u.json", w->in.tx_hash, (unsigned)w->in.log_index);
    d->img = img;
    return ZL_OK;
}

/* The pinned document is read back through a gateway, then w->out is set. */
static zl_class finish(struct ipfs_upload *u, struct zl_work *w, const struct iu_doc *d)
{
    zl_class c = zl_ipfs_verify(u->ipfs, d->bytes, d->len, d->cid, w->error, sizeof(w->error));
    if (c != ZL_OK)
        return c;
    zl_event_derive(&w->out, &w->in, ZL_TOPIC_PINNED);
    snprintf(w->out.metadata_cid, sizeof(w->out.metadata_cid), "%s", d->cid);
    snprintf(w->out.token_uri, sizeof(w->out.token_uri), "ipfs://%s", d->cid);
    struct zl_log_ctx lc;
    zl_work_log_ctx(w, &lc);
    zl_log_kv(ZL_LOG_DEBUG, &lc, "metadata pinned", "cid", d->cid, "image_cid", d->img->cid, NULL);
    return ZL_OK;
}

/* A poll batch at once: every document is built, then pinned with one
 * request per Kubo provider per ZL_IPFS_BATCH_MAX documents
 * (zl_ipfs_pin_many) instead of one each, then read back. */
static void iu_process_batch(void *ctx, struct zl_work *const *ws, size_t n)
{
    struct ipfs_upload *u = ctx;
    struct iu_doc *docs = calloc(n, sizeof(*docs));
    struct zl_ipfs_obj *objs = calloc(ZL_IPFS_BATCH_MAX, sizeof(*objs));
    /* per work: its object in the chunk, SIZE_MAX when decided while
     * building. Names are unique: the runtime hands each deposit over once. */
    size_t *same = calloc(n, sizeof(*same));
    if (docs == NULL || objs == NULL || same == NULL) {
        zl_works_fail(ws, n, ZL_TRANSIENT, "ipfs-upload: out of memory");
        goto out;
    }
    size_t i = 0;
    while (i < n) {
        size_t k = 0;
        size_t first = i;
        for (; i < n && k < ZL_IPFS_BATCH_MAX; i++) {
            same[i] = SIZE_MAX;
            ws[i]->result = build_doc(u, ws[i], &docs[i]);
            if (ws[i]->result != ZL_OK)
                continue;
            objs[k] = (struct zl_ipfs_obj){.data = docs[i].bytes, .len = docs[i].len, .name = docs[i].name,
                                           .cid = docs[i].cid};
            same[i] = k++;
        }
        zl_ipfs_pin_many(u->ipfs, objs, k);
        for (size_t m = first; m < i; m++) {
            struct zl_work *w = ws[m];
            if (same[m] == SIZE_MAX)
                continue; /* decided while building */
            const struct zl_ipfs_obj *o = &objs[same[m]];
            if (o->result != ZL_OK) {
                w->result = o->result;
                snprintf(w->error, sizeof(w->error), "%s", o->error);
                continue;
            }
            w->result = finish(u, w, &docs[m]);
        }
    }
out:
    for (size_t d = 0; docs != NULL && d < n; d++)
        free(docs[d].bytes);
    free(docs);
    free(objs);
    free(same);
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
