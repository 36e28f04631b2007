/* detector.h: the chain scan loop behind the detect worker (architecture §2,
 * §4, §8): finds ERC-20 Transfers of one token to our deposit addresses and
 * records each as a `detected` deposit, then publishes it.
 *
 * One step (zl_detector_step):
 *   1. hold the PostgreSQL advisory lock for (chain, token), or stay standby;
 *   2. head from the chain; target = min(head - lag, cursor + range);
 *   3. the stored hash of the cursor block must still be the chain's; if not,
 *      walk back through the stored hashes to the common ancestor, mark the
 *      not-yet-verified deposits above it `reorged` and rewind the cursor
 *      (one transaction), so the next steps rescan;
 *   4. one transaction over the range: eth_getLogs for Transfer(token, *,
 *      our addresses) in sub-ranges sized to ~2,500 logs each (addresses
 *      chunked per request); each sub-range's deposits are inserted with one
 *      statement per 5,000 rows (insert-if-absent over unnested arrays; a
 *      deposit that was `reorged` and is back on the chain becomes
 *      `detected` again with its new block facts), sent without waiting so
 *      PostgreSQL works while the next sub-range is read; then the cursor
 *      advances by compare-and-set on its old block number, the block hash
 *      is stored, COMMIT. A refused request halves the range (and the
 *      sub-range) and rolls everything back; the range grows back after
 *      successes;
 *   5. publish the new rows to <prefix>deposits.detected without waiting:
 *      the rows are already safe in the database, so a broker outage loses
 *      nothing (the sweeper re-publishes rows that do not move).
 * Each step logs where its time went (eth_getLogs + JSON decoding, parsing,
 * waiting for PostgreSQL, publishing) in its "recorded ..." line.
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

/* Deposit addresses per eth_getLogs request (topic2 OR-list). */
#define ZL_DETECT_ADDRESSES_PER_QUERY_MAX 1000
/* Deposit addresses one detector watches. */
#define ZL_DETECT_ADDRESSES_MAX 100000
/* Logs one eth_getLogs answer may hold: more is treated like a provider's
 * cap (the step is rolled back and the range halved). Bounds memory: ~1 KiB
 * per log while decoded. */
#define ZL_DETECT_LOGS_PER_STEP_MAX 100000
/* Stored block hashes looked at when walking back to a common ancestor. */
#define ZL_DETECT_REORG_WALK_MAX 256

struct zl_detector_opts {
    uint64_t chain_id;
    const char *token;              /* lower-case 0x address; copied */
    const char *topic;              /* output topic; copied */
    int64_t lag_blocks;             /* blocks behind head to stay */
    int64_t range_max;              /* blocks per step at most */
    int64_t start_block;            /* first block when there is no cursor; -1 = head - lag */
    int64_t addresses_per_query;
    int64_t blocks_kept;            /* stored block hashes kept (reorg depth) */
    struct zl_pg *pg;               /* borrowed: the detector's own connection */
    struct zl_rpc *rpc;             /* borrowed */
    rd_kafka_t *producer;           /* borrowed */
    struct zl_metrics *metrics;     /* borrowed, may be NULL */
    struct zl_health *health;       /* borrowed, may be NULL */
};

struct zl_detector;

/* Registers the detector's statements on opts->pg (call before the first
 * zl_pg_ensure) and allocates it. Returns 0, or -1 with errstr. */
int zl_detector_new(struct zl_detector **out, const struct zl_detector_opts *opts, char *errstr, size_t errstr_size);
void zl_detector_free(struct zl_detector *d);

/* One step as described above. Returns ZL_OK (with *idle true when there
 * was nothing to scan or this copy is standby, so the caller sleeps), or
 * ZL_TRANSIENT / ZL_OUTAGE / ZL_PERMANENT with errstr; the caller backs off
 * and calls again. Nothing is half-done after any return. */
zl_class zl_detector_step(struct zl_detector *d, bool *idle, char *errstr, size_t errstr_size);

/* Records the token's decimals (read from the chain by the caller) in
 * token_decimals. Returns ZL_OK or the database's class with errstr. */
zl_class zl_detector_store_decimals(struct zl_detector *d, int decimals, char *errstr, size_t errstr_size);

/* True while this copy holds the scan lock. */
bool zl_detector_active(const struct zl_detector *d);

#endif /* ZL_DETECTOR_H */
