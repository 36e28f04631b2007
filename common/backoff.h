/* backoff.h: exponential backoff with full jitter.
 *
 * The delay before retry number `attempt` (0 for the first retry) is drawn
 * uniformly from [0, ceiling], where ceiling = min(cap_ms, base_ms * 2^attempt)
 * ("full jitter", as in the AWS Architecture Blog's "Exponential Backoff And
 * Jitter"). Full jitter rather than a fixed delay because many workers that
 * failed together (an RPC endpoint went down) must not retry together: the
 * spread keeps the recovering dependency from being hit by a synchronized wave.
 *
 * The random source is a small self-contained generator (splitmix64) held in
 * the struct, so a test that passes a seed gets the same delays every run, and
 * no global state (rand()) is shared between threads.
 *
 * Ownership: struct zl_backoff is a plain value owned by the caller (on the
 * stack or inside another struct); it holds no resources and needs no destroy.
 *
 * @locality any thread, but one struct zl_backoff per thread: delay_ms()
 * advances rng_state without a lock. Give each worker thread its own copy
 * (copying the struct after init is fine; reseed copies with different seeds
 * if their sequences must differ).
 */
#ifndef ZL_BACKOFF_H
#define ZL_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

/* Largest accepted cap_ms: one day. A longer cap is almost surely a unit
 * mistake (seconds or microseconds passed as milliseconds), and a retry that
 * sleeps for days is an outage nobody sees. */
#define ZL_BACKOFF_CAP_MAX_MS INT64_C(86400000)

struct zl_backoff {
    int64_t base_ms;    /* ceiling for attempt 0; doubles per attempt; >= 1 */
    int64_t cap_ms;     /* the ceiling never exceeds this; >= base_ms */
    uint64_t rng_state; /* splitmix64 state; advanced by every delay drawn */
};

/* Sets up b. seed != 0 makes the delay sequence reproducible (tests);
 * seed == 0 seeds from the clocks, the process id and b's address, so
 * separate processes and separate structs spread their retries differently.
 *
 * Returns 0, or -1 with a reason in errstr (naming base_ms or cap_ms) when
 * base_ms < 1, cap_ms < base_ms or cap_ms > ZL_BACKOFF_CAP_MAX_MS; on failure
 * b is left zeroed and must not be used. errstr may be NULL when
 * errstr_size is 0. */
int zl_backoff_init(struct zl_backoff *b, int64_t base_ms, int64_t cap_ms,
                    uint64_t seed, char *errstr, size_t errstr_size);

/* The upper bound of the delay for this attempt: min(cap_ms,
 * base_ms * 2^attempt), computed without overflow for any attempt (a
 * retry counter that grew to 4 billion still yields cap_ms). Pure: does not
 * touch the random state. */
int64_t zl_backoff_ceiling_ms(const struct zl_backoff *b, uint32_t attempt);

/* A delay drawn uniformly from [0, zl_backoff_ceiling_ms(b, attempt)]
 * (both ends included), without modulo bias. Advances b->rng_state. */
int64_t zl_backoff_delay_ms(struct zl_backoff *b, uint32_t attempt);

#endif /* ZL_BACKOFF_H */
