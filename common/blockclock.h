/* blockclock.h: when the chain's next block is due, from when this process
 * first saw each head.
 *
 * Why: a stage waiting for blocks (verify for a deposit's confirmations,
 * mint for the receipt of the transaction it just sent) re-checks after a
 * defer. "N block times from now" ignores where in the block interval now
 * is: a deposit deferred 0.9 s after a block came looks again 0.9 s after
 * the block it waited for (mint: pinned->minted p50 1.52 s on 1 s blocks,
 * bench/results/2026-12-07-e2e-chain.md). The clock remembers the local
 * time a head was first seen, so the estimate is "the block due N block
 * times after the head's arrival", plus a margin for the node to answer.
 *
 * It is an estimate only: it decides when to look again, never whether a
 * block is there or final. Seen times are upper bounds of the arrival (a
 * head is seen when someone asks), so the estimate errs late, never early:
 * at worst it is the old N block times from now, plus the margin. A head
 * older than one block time (a slow block, a stalled chain, or nobody asked
 * for a while) gives the old estimate: no faster re-checks than before.
 *
 * Ownership: a plain value inside its owner's struct; no resources, no
 * destroy. @locality one thread (no lock).
 */
#ifndef ZL_BLOCKCLOCK_H
#define ZL_BLOCKCLOCK_H

#include <stdint.h>

struct zl_block_clock {
    int64_t block_ms; /* the chain's usual block time (zl_chain_block_ms); >= 1 */
    uint64_t head;    /* the highest head seen; 0: none yet */
    int64_t seen_ms;  /* zl_now_ms() when head was first seen; 0: none yet */
};

/* A clock for a chain whose blocks come about every block_ms (< 1: 1). */
void zl_block_clock_init(struct zl_block_clock *c, int64_t block_ms);

/* head was read at now_ms (zl_now_ms()). A head higher than any seen before
 * starts its interval at now_ms; the same or a lower one (another endpoint
 * behind) changes nothing. */
void zl_block_clock_saw(struct zl_block_clock *c, uint64_t head, int64_t now_ms);

/* How long from now_ms until `blocks` blocks past the last head seen are
 * due, plus a margin of a tenth of a block time: in (blocks - 1) block
 * times, blocks block times] + margin. blocks * block_ms when no head was
 * seen or the last is a block time old or more (see above). blocks < 1
 * counts as 1. */
int64_t zl_block_clock_wait_ms(const struct zl_block_clock *c, int64_t blocks, int64_t now_ms);

#endif
