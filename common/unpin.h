/* unpin.h: orphaned pins (issue 21; docs/architecture.md, "Orphaned pins").
 * A deposit that ends `reorged`, or `dead` with its dead letter resolved by
 * an operator, after ipfs-upload pinned its metadata will never be minted:
 * its pins are removed from every provider after a grace period, once, and
 * recorded on the row (schemas/sql/014_unpin.sql).
 *
 * A row is unpinned only when all of these hold, checked again under its
 * row lock right before the providers are asked:
 *   - it has a metadata_cid and no unpinned_at;
 *   - it has no token_id and no mint_tx_hash, and no signed transaction
 *     (signer_txs) names it: nothing may still mint it;
 *   - it is `reorged` and has not moved for grace_ms (updated_at), or it is
 *     `dead` (not from mint_submitted, minted, credited) and its current
 *     dead letter was resolved (dead_resolutions) at least grace_ms ago. A
 *     dead letter not resolved may still be requeued or replayed: never.
 * The row lock (FOR UPDATE SKIP LOCKED) is held while the providers are
 * asked, so detect re-including a reorged row, or an operator requeueing a
 * dead one, waits for the unpin to be recorded; 014's trigger then forgets
 * the CID and sends the row back through ipfs-upload, which pins it again.
 *
 * Failure: a provider that fails leaves the row for the next pass, with
 * unpin_error and unpin_attempts on the row (counted in
 * zl_ipfs_unpins_total by provider and outcome, ipfs.h); a database failure
 * ends the pass with its class (pg.h), the next pass reconnects.
 * Metrics: zl_ipfs_orphaned_pins{stage} (terminal rows without a token id
 * whose metadata is still pinned), zl_unpin_rows_total{stage,outcome}
 * (unpinned, failed).
 *
 * @locality a pass runs on the thread that owns pg and ipfs; the unpinner
 * runs passes on a thread of its own, with its own connection and client.
 */
#ifndef ZL_UNPIN_H
#define ZL_UNPIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "ipfs.h"
#include "pg.h"
#include "runtime.h"
#include "zl.h"

/* The settings (ZL_UNPIN_*), filled by the config table below. */
struct zl_unpin_opts {
    bool enabled;        /* run the pass at all */
    int64_t grace_ms;    /* after the row became terminal (reorged, or resolved) */
    int64_t interval_ms; /* between passes */
    int64_t batch_max;   /* rows one pass looks at */
};

extern const struct zl_setting zl_unpin_settings[];
extern const size_t zl_unpin_settings_count;

/* What one pass did. */
struct zl_unpin_summary {
    int unpinned; /* rows recorded unpinned */
    int failed;   /* rows a provider failed for (left for the next pass) */
    int skipped;  /* candidates that changed, or another copy held, before their lock */
};

/* Registers the pass's statements on pg (before its first zl_pg_ensure).
 * Returns -1 when pg has no room for them. */
int zl_unpin_prepare(struct zl_pg *pg);

/* One pass over at most o->batch_max candidate rows, one transaction per
 * row, until *stop (may be NULL) turns true between two rows. Returns ZL_OK
 * (row-level provider failures are in *s and on the rows), or the class of
 * a database failure with errstr. metrics may be NULL; stage is the
 * metrics' label value. */
zl_class zl_unpin_pass(struct zl_pg *pg, struct zl_ipfs *ipfs, const struct zl_unpin_opts *o,
                       struct zl_metrics *metrics, const char *stage, const atomic_bool *stop,
                       struct zl_unpin_summary *s, char *errstr, size_t errstr_size);

/* Sets zl_ipfs_orphaned_pins{stage} from the rows. Returns ZL_OK or the
 * class of the failure. */
zl_class zl_unpin_gauge(struct zl_pg *pg, struct zl_metrics *metrics, const char *stage, char *errstr,
                        size_t errstr_size);

/* The background pass: a thread with its own database connection (env's
 * DSN) and its own IPFS client (ipfs_opts with their stage label set to
 * "ipfs-unpin" and no health: its breakers are its own, and a provider
 * down for unpinning never makes the stage not ready). Does nothing (and
 * *out stays NULL) when o->enabled is false. Returns 0, or -1 with errstr.
 * o and ipfs_opts are copied; ipfs_opts' strings must outlive the call only. */
struct zl_unpinner;
int zl_unpinner_start(struct zl_unpinner **out, const struct zl_unpin_opts *o, const struct zl_ipfs_opts *ipfs_opts,
                      const struct zl_runtime_env *env, char *errstr, size_t errstr_size);

/* Stops the thread (waits for its current row only, bounded by the
 * providers' timeouts) and frees everything. NULL is a no-op. */
void zl_unpinner_stop(struct zl_unpinner *u);

#endif /* ZL_UNPIN_H */
