/* detector.h: the chain scan loop behind the detect worker (architecture §2,
 * §4, §8, §10 "detect"): finds ERC-20 Transfers of one token to our deposit
 * addresses and records each as a `detected` deposit, then publishes it.
 *
 * The addresses are a set in memory (addrset.h), read from deposit_addresses
 * at the first step and then only the rows registered since (by their seq),
 * so the scan does not depend on how many there are: it reads every Transfer
 * of the token and keeps those to a registered address. The set is bounded
 * by ZL_DETECT_ADDRESSES_MAX; past it the step fails loudly (error, metric)
 * and the cursor stays: no address is ever left out silently.
 *
 * One step (zl_detector_step):
 *   1. hold the PostgreSQL advisory lock for (chain, token), or stay standby;
 *   2. head from the chain; target = min(head - lag, cursor + range);
 *   3. the stored hash of the cursor block must still be the chain's; if not,
 *      walk back through the stored hashes to the common ancestor, mark the
 *      not-yet-verified deposits above it `reorged` and rewind the cursor
 *      (one transaction), so the next steps rescan;
 *   4. refresh the address set (recording a backfill range for each address
 *      registered with a scan_from_block at or below the cursor);
 *   5. one transaction over the range: eth_getLogs for Transfer(token, *, *)
 *      in sub-ranges sized to ~2,500 logs each, kept when the recipient is in
 *      the set; each sub-range's deposits are inserted with one
 *      statement per 5,000 rows (insert-if-absent over unnested arrays; a
 *      deposit that was `reorged` and is back on the chain becomes
 *      `detected` again with its new block facts), sent without waiting so
 *      PostgreSQL works while the next sub-range is read; then the cursor
 *      advances by compare-and-set on its old block number, the block hash
 *      is stored, COMMIT. A refused request halves the range (and the
 *      sub-range) and rolls everything back; the range grows back after
 *      successes;
 *   6. publish the new rows to <prefix>deposits.detected without waiting:
 *      the rows are already safe in the database, so a broker outage loses
 *      nothing (the sweeper re-publishes rows that do not move).
 * Late registration (zl_detector_backfill_step, called between steps): one
 * bounded chunk of one address's backfill range per call, through the same
 * insert-if-absent statement, its progress (next_block) committed with its
 * rows, so a restart resumes and the live cursor never waits for it.
 * Two sources agree (detector_confirm.c): with confirm_k > 1 every
 * eth_getLogs (live and backfill) is asked of the endpoints in turn until
 * confirm_k return the same digest of the logs and the block hash at the
 * range's end; when they disagree and none has confirm_k votes, the range is
 * held (the step fails, the cursor stays, it is retried), logged with the
 * digests and counted in zl_detect_range_disagreements_total: never skipped.
 * Each step logs where its time went (eth_getLogs + JSON decoding, parsing,
 * waiting for PostgreSQL, publishing) in its "recorded ..." line.
 *
 * One detector scans one token: detect runs one per ZL_TOKENS entry, each on
 * its own connection with its own cursor, lock and backfills. Counters are
 * totals over the tokens; the gauges that differ per token carry a
 * token="SYMBOL" label.
 *
 * Ownership: the detector borrows pg, rpc, producer, metrics and health,
 * which must outlive it. @locality one thread (the detect main loop).
 */
#ifndef ZL_DETECTOR_H
#define ZL_DETECTOR_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

#include "health.h"
#include "metrics.h"
#include "pg.h"
#include "rpc.h"
#include "zl.h"

/* Upper end of ZL_DETECT_ADDRESSES_MAX: 40 to 80 bytes each in memory
 * (addrset.h), so ~8 GB at most. */
#define ZL_DETECT_ADDRESSES_LIMIT_MAX INT64_C(100000000)
/* Logs one eth_getLogs answer may hold: more is treated like a provider's
 * cap (the step is rolled back and the range halved). Bounds memory: ~1 KiB
 * per log while decoded. */
#define ZL_DETECT_LOGS_PER_STEP_MAX 100000
/* Stored block hashes looked at when walking back to a common ancestor. */
#define ZL_DETECT_REORG_WALK_MAX 256

/* The statement that records detected deposits, insert-if-absent: detect's
 * live scan and backfill, and the admin API's claim (admin.h), so a deposit
 * recorded by hand is recorded exactly as the scan would. Parameters: $1
 * chain id, $2 token (lower-case), then arrays of equal length: $3 deposit
 * ids, $4 tx hashes, $5 log indexes, $6 block numbers, $7 block hashes,
 * $8 senders, $9 recipients, $10 amounts (decimal). Ids must be distinct.
 * Returns (deposit_id, user_id) of each row inserted or re-included (a
 * `reorged` row back on the chain); a row already recorded with the same
 * block returns nothing, and a recipient that is not registered inserts
 * nothing. */
extern const char zl_detect_insert_sql[];
#define ZL_DETECT_INSERT_PARAMS 10

struct zl_detector_opts {
    uint64_t chain_id;
    const char *token;              /* lower-case 0x address; copied */
    const char *symbol;             /* the token's name in ZL_TOKENS (tokens.h), for the gauges' token label;
                                     * copied; NULL: "TOKEN" */
    const char *topic;              /* output topic; copied */
    int64_t lag_blocks;             /* blocks behind head to stay */
    int64_t range_max;              /* blocks per step at most */
    int64_t start_block;            /* first block when there is no cursor; -1 = head - lag */
    int64_t addresses_max;          /* addresses held in memory at most; more stops the scan loudly */
    int64_t backfill_blocks;        /* blocks per backfill eth_getLogs request at most */
    int64_t blocks_kept;            /* stored block hashes kept (reorg depth) */
    int confirm_k;                  /* endpoints that must return the same logs for a range; <= 1: one's word */
    const struct zl_rpc_opts *confirm_rpc; /* with confirm_k > 1: the endpoints (urls) and timeouts of the
                                      * per-endpoint clients the detector makes; read by zl_detector_new only */
    struct zl_pg *pg;               /* borrowed: the detector's own connection */
    struct zl_rpc *rpc;             /* borrowed */
    rd_kafka_t *producer;           /* borrowed */
    struct zl_metrics *metrics;     /* borrowed, may be NULL */
    struct zl_health *health;       /* borrowed, may be NULL */
};

struct zl_detector;

/* Registers the detector's statements on opts->pg (call before the first
 * zl_pg_ensure) and allocates it, with one RPC client per endpoint when
 * opts->confirm_k > 1. Returns 0, or -1 with errstr (also when confirm_k is
 * more than the endpoints listed). */
int zl_detector_new(struct zl_detector **out, const struct zl_detector_opts *opts, char *errstr, size_t errstr_size);
void zl_detector_free(struct zl_detector *d);

/* One step as described above. Returns ZL_OK (with *idle true when there
 * was nothing to scan or this copy is standby, so the caller sleeps), or
 * ZL_TRANSIENT / ZL_OUTAGE / ZL_PERMANENT with errstr; the caller backs off
 * and calls again. Nothing is half-done after any return. */
zl_class zl_detector_step(struct zl_detector *d, bool *idle, char *errstr, size_t errstr_size);

/* One chunk of the oldest unfinished backfill range (a late-registered
 * address): eth_getLogs for Transfer(token, *, address) over at most
 * backfill_blocks blocks, its deposits inserted if absent and the range's
 * progress moved, in one transaction, then the new rows published. Does
 * nothing (*idle true) on standby or when no range is pending. A refused
 * request halves the chunk. Returns ZL_OK, or the class of what failed with
 * errstr (nothing kept: rolled back). Never moves the live cursor. */
zl_class zl_detector_backfill_step(struct zl_detector *d, bool *idle, char *errstr, size_t errstr_size);

/* Records the token's decimals (read from the chain by the caller) in
 * token_decimals. Returns ZL_OK or the database's class with errstr. */
zl_class zl_detector_store_decimals(struct zl_detector *d, int decimals, char *errstr, size_t errstr_size);

/* True while this copy holds the scan lock. */
bool zl_detector_active(const struct zl_detector *d);

#endif /* ZL_DETECTOR_H */
