/* batch.c (ipfs-upload only): a poll batch's documents built, pinned and
 * read back at once (batch.h). */
#include "batch.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cid.h"
#include "log.h"

/* One deposit's metadata document of a poll batch. */
struct iu_doc {
    char *bytes;            /* owned, len bytes: documents are ~600 bytes, the build buffer 8 KiB */
    size_t len;
    char cid[ZL_CID_SIZE];
    char name[128]; /* "zl-" + a Solana signature (88) + "-" + "255.255" + ".json" */
    const struct iu_image *img;
};

/* Builds w's document (permanent when its event cannot make one). */
static zl_class build_doc(const struct iu_batch_env *e, struct zl_work *w, struct iu_doc *d)
{
    struct iu_image *img = iu_images_for(e->images, w->row.facts.amount);
    zl_class c = iu_image_ensure(img, e->pg, e->ipfs, e->providers, w->error, sizeof(w->error));
    if (c != ZL_OK)
        return c;
    struct zl_nftmeta_opts mo = e->meta;
    mo.image_cid = img->cid;
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
    /* Unique per deposit: Kubo's answer names each file of a batch by it.
     * A Solana deposit's place is its instruction (log_index is 0 for all
     * the deposits of one transaction). */
    if (zl_event_is_solana(&w->in))
        snprintf(d->name, sizeof(d->name), "zl-%.88s-%s.json", w->in.tx_hash, w->in.instruction);
    else
        snprintf(d->name, sizeof(d->name), "zl-%.66s-%u.json", w->in.tx_hash, (unsigned)w->in.log_index);
    d->img = img;
    return ZL_OK;
}

/* The document is pinned and was read back: w->out is set. */
static void finish(struct zl_work *w, const struct iu_doc *d)
{
    zl_event_derive(&w->out, &w->in, ZL_TOPIC_PINNED);
    snprintf(w->out.metadata_cid, sizeof(w->out.metadata_cid), "%s", d->cid);
    snprintf(w->out.token_uri, sizeof(w->out.token_uri), "ipfs://%s", d->cid);
    struct zl_log_ctx lc;
    zl_work_log_ctx(w, &lc);
    zl_log_kv(ZL_LOG_DEBUG, &lc, "metadata pinned", "cid", d->cid, "image_cid", d->img->cid, NULL);
}

/* Every document is built, then up to ZL_IPFS_BATCH_MAX of them pinned and
 * read back in one zl_ipfs_pin_many (one add request per Kubo provider,
 * the other providers and the gateways up to their bounds at once). */
void iu_pin_batch(const struct iu_batch_env *e, struct zl_work *const *ws, size_t n)
{
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
            ws[i]->result = build_doc(e, ws[i], &docs[i]);
            if (ws[i]->result != ZL_OK)
                continue;
            objs[k] = (struct zl_ipfs_obj){.data = docs[i].bytes, .len = docs[i].len, .name = docs[i].name,
                                           .cid = docs[i].cid, .read_back = true};
            same[i] = k++;
        }
        zl_ipfs_pin_many(e->ipfs, objs, k);
        for (size_t m = first; m < i; m++) {
            struct zl_work *w = ws[m];
            if (same[m] == SIZE_MAX)
                continue; /* decided while building */
            const struct zl_ipfs_obj *o = &objs[same[m]];
            w->result = o->result;
            if (o->result != ZL_OK) {
                snprintf(w->error, sizeof(w->error), "%s", o->error);
                continue;
            }
            finish(w, &docs[m]);
        }
    }
out:
    for (size_t d = 0; docs != NULL && d < n; d++)
        free(docs[d].bytes);
    free(docs);
    free(objs);
    free(same);
}
