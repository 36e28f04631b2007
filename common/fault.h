/* fault.h: named fault points, so tests can kill a worker at the exact step
 * whose crash they want to prove harmless.
 *
 * Inert unless configured: zl_fault_configure(NULL or "", ...) disables it, and
 * a disabled zl_fault_point() costs one branch. When configured with
 * point = "after_db_commit" and after = 3, the third time the runtime passes
 * that point the process sends itself SIGKILL: no cleanup, no flush, exactly
 * what a power cut or OOM kill would do. The points the runtime passes, in
 * order, per batch:
 *   after_decode                 messages decoded, nothing done yet
 *   after_side_effect            the stage's side effect done, DB not written
 *   after_db_commit              state CAS committed, nothing published
 *   before_produce               about to publish outputs / retries / DLQ
 *   after_produce_before_offset_store  delivered, offsets not yet stored
 * and the mint stage's own, on Solana (solana_mint.c):
 *   sol_mint_after_sign          a receipt signed, not stored
 *   sol_mint_after_store         stored, not sent
 *
 * Set with ZL_FAULT_POINT and ZL_FAULT_AFTER (documented in --help).
 * @locality the runtime's main thread.
 */
#ifndef ZL_FAULT_H
#define ZL_FAULT_H

#include <stdint.h>

/* point is copied; after < 1 is treated as 1. */
void zl_fault_configure(const char *point, int64_t after);

/* Kills the process with SIGKILL when this is the configured point's Nth hit. */
void zl_fault_point(const char *name);

#endif /* ZL_FAULT_H */
