/* batch.h (ipfs-upload only): a poll batch's metadata documents built,
 * pinned and read back (ipfs.h's zl_ipfs_pin_many: every provider and
 * gateway up to its concurrency bound at once), each work getting its own
 * class and reason.
 *
 * Ownership: struct iu_batch_env borrows everything it points at for the
 * call. Failure: none as a C call; each work's result and error say it.
 * @locality the stage's main thread (the runtime's process_batch).
 */
#ifndef ZL_IU_BATCH_H
#define ZL_IU_BATCH_H

#include <stddef.h>

#include "images.h"
#include "ipfs.h"
#include "nftmeta.h"
#include "pg.h"
#include "runtime.h"

struct iu_batch_env {
    struct zl_ipfs *ipfs;
    struct zl_pg *pg;              /* the stage's own connection (ipfs_images) */
    struct iu_images *images;
    const char *providers;         /* the effective provider list: part of an image's key */
    struct zl_nftmeta_opts meta;   /* image_cid is set per document from its tier */
};

/* Sets ws[0..n)->result (and error, or out with metadata_cid/token_uri). */
void iu_pin_batch(const struct iu_batch_env *e, struct zl_work *const *ws, size_t n);

#endif /* ZL_IU_BATCH_H */
