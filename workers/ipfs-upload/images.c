/* images.c: the NFT images of ipfs-upload, pinned once (images.h). */
#include "images.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "envelope.h"
#include "log.h"

static int read_image(struct iu_image *img, const char *path, char *errstr, size_t errstr_size)
{
    snprintf(img->path, sizeof(img->path), "%s", path);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(errstr, errstr_size, "NFT image %s: %s", path, strerror(errno));
        return -1;
    }
    img->bytes = malloc(ZL_CID_SINGLE_CHUNK_MAX_BYTES + 1);
    if (img->bytes == NULL) {
        fclose(f);
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    img->len = fread(img->bytes, 1, ZL_CID_SINGLE_CHUNK_MAX_BYTES + 1, f);
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed) {
        snprintf(errstr, errstr_size, "NFT image %s: read error", path);
        return -1;
    }
    char err[ZL_ERRSTR_SIZE];
    if (zl_cid_raw_v1(img->bytes, img->len, img->cid, sizeof(img->cid), err, sizeof(err)) != 0) {
        snprintf(errstr, errstr_size, "NFT image %s: %s", path, err);
        return -1;
    }
    return 0;
}

int iu_images_load(struct iu_images *u, const char *default_file, const char *tiers, char *errstr,
                   size_t errstr_size)
{
    snprintf(u->img[0].tier, sizeof(u->img[0].tier), "default");
    if (read_image(&u->img[0], default_file, errstr, errstr_size) != 0)
        return -1;
    u->n = 1;
    const char *s = tiers;
    while (*s != '\0') {
        const char *end = strchr(s, ',');
        size_t n = end != NULL ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', n);
        if (u->n == IU_IMAGES_MAX || eq == NULL || (size_t)(eq - s) >= sizeof(u->img[0].tier) ||
            n - (size_t)(eq - s) - 1 >= sizeof(u->img[0].path)) {
            snprintf(errstr, errstr_size, "ZL_NFT_IMAGE_TIERS: \"%.*s\" is not min_amount=path (at most %d tiers)",
                     (int)(n > 200 ? 200 : n), s, IU_IMAGES_MAX - 1);
            return -1;
        }
        struct iu_image *img = &u->img[u->n];
        memcpy(img->tier, s, (size_t)(eq - s));
        img->tier[eq - s] = '\0';
        if (!zl_valid_uint256_dec(img->tier)) {
            snprintf(errstr, errstr_size, "ZL_NFT_IMAGE_TIERS: \"%s\" is not a canonical decimal amount", img->tier);
            return -1;
        }
        char path[sizeof(img->path)];
        memcpy(path, eq + 1, n - (size_t)(eq - s) - 1);
        path[n - (size_t)(eq - s) - 1] = '\0';
        if (read_image(img, path, errstr, errstr_size) != 0)
            return -1;
        u->n++;
        s = end != NULL ? end + 1 : s + n;
    }
    return 0;
}

struct iu_image *iu_images_for(struct iu_images *u, const char *amount)
{
    struct iu_image *best = &u->img[0];
    for (int i = 1; i < u->n; i++) {
        struct iu_image *img = &u->img[i];
        if (zl_dec_cmp(amount, img->tier) >= 0 && (best == &u->img[0] || zl_dec_cmp(img->tier, best->tier) >= 0))
            best = img;
    }
    return best;
}

int iu_images_prepare(struct zl_pg *pg)
{
    if (zl_pg_add_stmt(pg, "iu_image_get", "SELECT 1 FROM ipfs_images WHERE cid = $1 AND providers = $2", 2) != 0)
        return -1;
    return zl_pg_add_stmt(pg, "iu_image_put",
                          "INSERT INTO ipfs_images (cid, providers, tier, bytes, source)"
                          " VALUES ($1, $2, $3, $4::integer, $5) ON CONFLICT (cid, providers) DO NOTHING",
                          5);
}

zl_class iu_image_ensure(struct iu_image *img, struct zl_pg *pg, struct zl_ipfs *ipfs, const char *providers,
                         char *errstr, size_t errstr_size)
{
    if (img->pinned)
        return ZL_OK;
    zl_class c = zl_pg_ensure(pg, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    const char *get[2] = {img->cid, providers};
    PGresult *r = zl_pg_prepared(pg, "iu_image_get", 2, get, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    bool known = PQntuples(r) > 0;
    PQclear(r);
    if (!known) {
        char name[64];
        snprintf(name, sizeof(name), "zl-image-%s", img->tier);
        c = zl_ipfs_pin(ipfs, img->bytes, img->len, name, img->cid, errstr, errstr_size);
        if (c == ZL_OK)
            c = zl_ipfs_verify(ipfs, img->bytes, img->len, img->cid, errstr, errstr_size);
        if (c != ZL_OK)
            return c;
        char bytes[ZL_INT64_DEC_SIZE];
        snprintf(bytes, sizeof(bytes), "%zu", img->len);
        const char *put[5] = {img->cid, providers, img->tier, bytes, img->path};
        r = zl_pg_prepared(pg, "iu_image_put", 5, put, PGRES_COMMAND_OK, &c, errstr, errstr_size);
        if (r == NULL)
            return c;
        PQclear(r);
        zl_log_kv(ZL_LOG_INFO, NULL, "NFT image pinned", "tier", img->tier, "cid", img->cid, "file", img->path, NULL);
    }
    img->pinned = true;
    return ZL_OK;
}

void iu_images_free(struct iu_images *s)
{
    for (int i = 0; i < IU_IMAGES_MAX; i++) {
        free(s->img[i].bytes);
        s->img[i].bytes = NULL;
    }
}
