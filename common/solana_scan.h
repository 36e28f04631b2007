/* solana_scan.h: detect's scan of one Solana deposit token account: the USDT
 * transfers into it since a cursor, read from the chain through RPC
 * (docs/architecture.md, "Solana").
 *
 * Why per account and not per block: a Solana block holds thousands of
 * transactions, nearly none of them ours; getSignaturesForAddress lists
 * only those that touched the account. And an account registered after its
 * first payment needs nothing special: its scan starts with an empty
 * cursor, so the node lists its whole history (late registration is
 * backfilled by construction).
 *
 * A scan lists the account's signatures newer than the cursor
 * (getSignaturesForAddress, newest first, page after page with "before"),
 * then reads each transaction oldest first with getTransaction in
 * jsonParsed encoding, in batches, each answer agreed by the client's
 * quorum of endpoints (zl_rpc_batch_quorum), and keeps the transfers of
 * the configured mint into this account (solana_transfers.h). Failed
 * transactions are read too: the listing's "err" is one node's word, the
 * transaction's meta is checked by the quorum.
 *
 * Progress is kept even when a scan stops early: out[0..*n) holds the
 * transfers of every transaction up to and including *cursor_out, oldest
 * first, and nothing after it. A caller publishes them, then stores
 * *cursor_out; a crash in between reads them again with the same
 * deposit_ids (downstream deduplicates by id). It stops early when:
 *   - a transaction the listing named is not there (null) on a quorum of
 *     endpoints at this commitment, or an endpoint problem: ZL_TRANSIENT
 *     (or ZL_OUTAGE), the next scan resumes there;
 *   - more signatures are new than sigs_max, or out is full: ZL_OK with
 *     *more set; the oldest are read first, the next scan goes on.
 * An answer that is not a getTransaction answer we accept, or that is for
 * another signature than the one asked (a lying node), is ZL_TRANSIENT
 * with errstr saying so: the chain is not bad input, the node is.
 *
 * Ownership: every buffer is the caller's; nothing is kept between calls.
 * @locality the thread that owns r.
 */
#ifndef ZL_SOLANA_SCAN_H
#define ZL_SOLANA_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "rpc.h"
#include "solana_transfers.h"
#include "zl.h"

/* getSignaturesForAddress's own ceiling per call. */
#define ZL_SOL_SIGS_PAGE_MAX 1000
/* getTransaction calls per JSON-RPC batch. */
#define ZL_SOL_TX_BATCH_MAX 25

struct zl_sol_scan_opts {
    const char *cluster;    /* "mainnet-beta", "localnet": the deposit_id's first part */
    const char *mint;       /* the USDT mint, base58 */
    const char *commitment; /* "finalized" (detect's default) or "confirmed" */
    int page_limit;         /* signatures per listing call, 1..ZL_SOL_SIGS_PAGE_MAX */
    int tx_batch;           /* getTransaction calls per batch, 1..ZL_SOL_TX_BATCH_MAX */
};

/* Scans `account` (base58) from `cursor` (a signature already read; "" for
 * the account's first transaction). sigs is scratch room for sigs_max
 * listing entries (sigs_max >= page_limit). On return, *n transfers are in
 * out (room for max) and *cursor_out (ZL_B58_TEXT_MAX bytes) is the newest
 * signature read: equal to cursor when nothing new was read. Returns ZL_OK
 * (with *more when it stopped for room), ZL_TRANSIENT or ZL_OUTAGE with
 * errstr; out, *n and *cursor_out are valid whatever it returns. Bad
 * options (a bound out of range): ZL_PERMANENT. */
zl_class zl_sol_scan_account(struct zl_rpc *r, const struct zl_sol_scan_opts *o, const char *account,
                             const char *cursor, struct zl_sol_sig *sigs, size_t sigs_max,
                             struct zl_sol_transfer *out, size_t max, size_t *n, char *cursor_out, bool *more,
                             char *errstr, size_t errstr_size);

#endif /* ZL_SOLANA_SCAN_H */
