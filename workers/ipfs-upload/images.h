/* images.h (ipfs-upload only): the NFT images every metadata document
 * points at. Each image (ZL_NFT_IMAGE_FILE, or one per amount tier of
 * ZL_NFT_IMAGE_TIERS) is read and its CID computed at start-up, pinned once
 * and remembered in ipfs_images (schemas/sql/003_ipfs.sql) so a restart
 * does not upload it again.
 *
 * Failure: start-up errors (a file unreadable, a tier malformed) are -1
 * with errstr naming the setting; iu_image_ensure returns the class its
 * callee decided (pg.h for the database, ipfs.h for the pin), unchanged.
 * Ownership: struct iu_images owns every image's bytes until
 * iu_images_free.
 */
#ifndef ZL_IU_IMAGES_H
#define ZL_IU_IMAGES_H

#include <stdbool.h>
#include <stddef.h>

#include "cid.h"
#include "ipfs.h"
#include "pg.h"
#include "zl.h"

/* Amount tiers with their own image, plus the default image. */
#define IU_IMAGES_MAX 9
/* "default" or a tier's minimum amount (a uint256 in decimal: 78 digits). */
#define IU_IMAGE_TIER_SIZE ZL_UINT256_DEC_SIZE
#define IU_IMAGE_PATH_SIZE 512

struct iu_image {
    char tier[IU_IMAGE_TIER_SIZE]; /* "default" or the minimum amount (canonical decimal) */
    char path[IU_IMAGE_PATH_SIZE];
    unsigned char *bytes;          /* owned */
    size_t len;
    char cid[ZL_CID_SIZE];
    bool pinned;                   /* known pinned (this run, or ipfs_images) */
};

struct iu_images {
    struct iu_image img[IU_IMAGES_MAX]; /* [0] default, then tiers in any order */
    int n;
};

/* Reads default_file and every "min_amount=path" of tiers (comma-separated)
 * and computes their CIDs. Returns 0, or -1 with errstr. */
int iu_images_load(struct iu_images *s, const char *default_file, const char *tiers, char *errstr,
                   size_t errstr_size);

/* The tier with the largest minimum at or below amount; the default else. */
struct iu_image *iu_images_for(struct iu_images *s, const char *amount);

/* Registers the ipfs_images statements on pg. Returns 0, or -1 when pg has
 * no room for them. */
int iu_images_prepare(struct zl_pg *pg);

/* Makes sure img is pinned under the provider list `providers`: remembered
 * in ipfs_images, or pinned (and read back) now and remembered. Returns
 * ZL_OK, or the failing callee's class with errstr. */
zl_class iu_image_ensure(struct iu_image *img, struct zl_pg *pg, struct zl_ipfs *ipfs, const char *providers,
                         char *errstr, size_t errstr_size);

/* Frees every image's bytes. */
void iu_images_free(struct iu_images *s);

#endif /* ZL_IU_IMAGES_H */
