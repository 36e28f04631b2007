/* nftmeta.h: the ERC-721 metadata JSON of a deposit receipt NFT, written
 * canonically so the same deposit always yields the same bytes, hence the
 * same CID, however often and wherever it is rebuilt (a redelivery, a restart,
 * another copy of the stage).
 *
 * Canonical means: compact (no whitespace), keys in a fixed order, only
 * strings (no numbers at all, so no float can ever appear), escapes chosen one
 * way (\" \\ \n \r \t \b \f and \u00XX for other control characters; every
 * other byte, including UTF-8, copied as is), and built only from the
 * deposit's immutable facts: never the event's own id or time.
 *
 *   {"name":"<name_prefix> <deposit_id>",
 *    "description":"<description>",
 *    "image":"ipfs://<image_cid>",
 *    "attributes":[
 *      {"trait_type":"amount","value":"<amount, token's smallest unit>"},
 *      {"trait_type":"token","value":"<token address, lower-case>"},
 *      {"trait_type":"chain","value":"<chain id>"},
 *      {"trait_type":"deposit tx","value":"<tx hash>"},
 *      {"trait_type":"log index","value":"<log index>"}],
 *    "external_url":"<external_url with {deposit_id} replaced>"}   (only when configured)
 *
 * @locality any thread: pure functions over their arguments.
 */
#ifndef ZL_NFTMETA_H
#define ZL_NFTMETA_H

#include <stdbool.h>
#include <stddef.h>

#include "envelope.h"

/* Largest metadata document: far below one IPFS chunk (cid.h), so its CID
 * is always the single-chunk one. Name, description and URL are bounded so
 * the document fits. */
#define ZL_NFTMETA_MAX_BYTES 8192
#define ZL_NFTMETA_TEXT_MAX_BYTES 2048

struct zl_nftmeta_opts {
    const char *name_prefix;  /* e.g. "zeroloss deposit receipt"; borrowed */
    const char *description;  /* borrowed */
    const char *external_url; /* "" or NULL: no external_url key; "{deposit_id}"
                                 is replaced by the deposit id; borrowed */
    const char *image_cid;    /* the image's CID (cid.h form); borrowed */
};

/* Checks the texts: valid UTF-8, at most ZL_NFTMETA_TEXT_MAX_BYTES each,
 * image_cid a raw CIDv1. Returns 0, or -1 with errstr naming the field. */
int zl_nftmeta_check_opts(const struct zl_nftmeta_opts *o, char *errstr, size_t errstr_size);

/* Writes the document for ev (any kind from verified on; only the deposit's
 * facts are read) into buf. Returns 0 with *len the bytes written (buf is
 * NUL-terminated after them), or -1 with errstr when the options or the event
 * are invalid or buf_size is too small (buf is then ""). */
int zl_nftmeta_build(const struct zl_event *ev, const struct zl_nftmeta_opts *o, char *buf, size_t buf_size,
                     size_t *len, char *errstr, size_t errstr_size);

#endif /* ZL_NFTMETA_H */
