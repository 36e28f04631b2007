/* sweep.h: the background safety net (architecture §8), the policy behind
 * tools/zl-sweep.
 *
 * Every pass re-publishes the current event of each deposit row that
 *   - is on the main path and not finished: detected, verified, pinned,
 *     mint_submitted, minted (never credited, reorged, dead or
 *     below_minimum);
 *   - has not moved (updated_at) for longer than stale_ms;
 *   - is not waiting on purpose (next_attempt_at in the future);
 *   - was not swept in the same state within the last stale_ms
 *     (sweep_marks, schemas/sql/006_ops.sql).
 * The event is rebuilt from the row (envelope.h): detected ->
 * deposits.detected, verified -> deposits.verified, pinned and
 * mint_submitted -> nft.pinned (the mint stage resumes a stored tx), minted
 * -> nft.minted; key = deposit_id, headers traceparent (from the row's
 * trace id when it has one), zl-attempt 0, zl-swept-at. A duplicate of an
 * event the stage already handled is harmless (its CAS finds the work done).
 * This is also how rows the detector recorded while Kafka was down get
 * published: they are stale rows like any other.
 *
 * Only one sweeper sweeps: the one holding the PostgreSQL session advisory
 * lock zl_sweep_lock_key(topic_prefix, chain_id) (one per deployment and
 * chain, so deployments sharing a database do not block each other). Others stand by and take over when its session
 * ends. "Sweep now" requests from the admin API (sweep_requests) are taken
 * by the active sweeper only.
 *
 * Every pass (active or standby) also refreshes the state-table gauges the
 * alert rules read: zl_pending_deposits, zl_oldest_pending_seconds,
 * zl_dead_deposits, zl_failing_deposits, zl_below_minimum_deposits
 * (zl_state_gauges_refresh).
 *
 * @locality one thread owns a struct zl_sweeper.
 */
#ifndef ZL_SWEEP_H
#define ZL_SWEEP_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "envelope.h"
#include "metrics.h"
#include "pg.h"
#include "zl.h"

/* pg_try_advisory_lock key of the single active sweeper ("zlsw"). */
#define ZL_SWEEP_LOCK_KEY 0x7a6c7377LL
/* Rows re-published per pass at most; the rest wait for the next pass. */
#define ZL_SWEEP_BATCH_LIMIT 10000

struct zl_sweeper_opts {
    const char *brokers;
    const struct zl_kv_list *kafka_props; /* may be NULL */
    const char *pg_dsn;
    const char *topic_prefix;
    int64_t chain_id;            /* only rows of this chain; 0 = every chain */
    int64_t stale_ms;            /* a row unmoved this long is re-published */
    int64_t batch_max;           /* rows per pass, 1..ZL_SWEEP_BATCH_LIMIT */
    int64_t delivery_timeout_ms;
    int64_t pg_connect_timeout_ms;
    struct zl_metrics *metrics;  /* borrowed; may be NULL */
};

struct zl_sweep_result {
    bool active;       /* this sweeper holds the lock */
    int64_t selected;  /* stale rows found */
    int64_t published; /* delivered */
    int64_t invalid;   /* rows whose event would not validate (logged) */
    int64_t requests;  /* admin requests served */
};

struct zl_sweeper;

/* Creates a sweeper (no connection yet). Returns 0, or -1 with errstr when
 * the producer cannot be created. Free with zl_sweeper_free(). */
int zl_sweeper_new(struct zl_sweeper **out, const struct zl_sweeper_opts *o, char *errstr, size_t errstr_size);

/* One pass: connects if needed, takes or keeps the lock, serves pending
 * admin requests, sweeps when `sweep_due`, refreshes the gauges. Returns
 * ZL_OK, ZL_OUTAGE when the database or the broker is unreachable (errstr
 * says which; the next pass retries), or ZL_PERMANENT for a statement that
 * failed on a healthy connection (missing migration). */
zl_class zl_sweeper_pass(struct zl_sweeper *s, bool sweep_due, struct zl_sweep_result *res, char *errstr,
                         size_t errstr_size);

/* Frees everything; the lock goes with the session. NULL is a no-op. */
void zl_sweeper_free(struct zl_sweeper *s);

/* Rebuilds a row's current event. cols are the text columns of the sweep
 * query, in this order: deposit_id, chain_id, tx_hash, log_index,
 * block_number, block_hash, token, from_addr, to_addr, user_id, amount,
 * state, confirmations, metadata_cid, token_uri, nft_contract, token_id,
 * mint_tx_hash (NULL or "" for a NULL column; a NULL chain_id is a Solana
 * row, whose cluster and instruction are read from its id). Returns 0 with *ev filled and
 * valid, 1 when the state publishes nothing (terminal or dead), or -1 with
 * errstr when the row does not make a valid event. */
#define ZL_SWEEP_ROW_COLS 18
int zl_sweep_event_from_row(const char *const *cols, struct zl_event *ev, char *errstr, size_t errstr_size);

/* The advisory lock key for a deployment (topic prefix) and chain: the low
 * 32 bits are ZL_SWEEP_LOCK_KEY, so operators can find it in pg_locks. */
int64_t zl_sweep_lock_key(const char *topic_prefix, int64_t chain_id);

/* Statement the gauge refresh uses; register on a connection once. */
int zl_state_gauges_prepare(struct zl_pg *p);

/* Reads the state table's pending, oldest pending, dead (not resolved),
 * failing and below-minimum counts into the gauges named above. Returns ZL_OK or the class of
 * the failure. */
zl_class zl_state_gauges_refresh(struct zl_pg *p, struct zl_metrics *m, char *errstr, size_t errstr_size);

#endif /* ZL_SWEEP_H */
