/* bulkhead.h: bounded concurrency per dependency.
 *
 * A bulkhead caps how many calls to one dependency (an RPC endpoint, the
 * IPFS provider, the signer) are in flight at once. Without it, a slow
 * dependency soaks up every worker thread and every connection, and the
 * stage stalls on calls that would have failed fast elsewhere. With it,
 * the excess callers are refused at once (try_acquire) or after a bounded
 * wait (acquire_timeout), and can classify the refusal (usually
 * ZL_TRANSIENT: retry later) instead of piling up.
 *
 * Usage:
 *     if (!zl_bulkhead_acquire_timeout(&bh, 200))
 *         return ZL_TRANSIENT;          // saturated: retry later
 *     call_dependency(...);
 *     zl_bulkhead_release(&bh);         // exactly once per acquire
 *
 * Ownership: struct zl_bulkhead is caller-owned storage (static, stack or
 * embedded); init fills it, destroy releases its mutex and condition
 * variable. The name passed to init is copied.
 *
 * @locality any thread: every function except init and destroy may be
 * called concurrently.
 * @locks b->mu, held only to test and change in_use (never while the
 * caller's work runs).
 */
#ifndef ZL_BULKHEAD_H
#define ZL_BULKHEAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes for a bulkhead's name including the NUL; same reasoning as
 * ZL_BREAKER_NAME_MAX (names carry endpoint host names). */
#define ZL_BULKHEAD_NAME_MAX 128

/* Largest accepted max_concurrent. More concurrent calls than this to one
 * dependency from one process is a misconfiguration (no connection pool or
 * thread pool here is that large), not a limit. */
#define ZL_BULKHEAD_CONCURRENT_MAX 65536

struct zl_bulkhead {
    pthread_mutex_t mu;    /* guards in_use and rejected_total */
    pthread_cond_t freed;  /* signalled on every release; CLOCK_MONOTONIC */
    int in_use;            /* permits held now; 0 <= in_use <= max */
    int max_concurrent;    /* the cap; 1..ZL_BULKHEAD_CONCURRENT_MAX */
    uint64_t rejected_total; /* acquires refused (full, or timed out) */
    char name[ZL_BULKHEAD_NAME_MAX]; /* for logs, metrics and errors */
};

/* Sets up b with no permit held. name must be non-empty and shorter than
 * ZL_BULKHEAD_NAME_MAX. Returns 0, or -1 with a reason in errstr naming
 * the bulkhead and the bad argument (name, max_concurrent) or the failed
 * pthread call; on failure nothing is allocated, b must not be used and
 * needs no destroy. */
int zl_bulkhead_init(struct zl_bulkhead *b, const char *name,
                     int max_concurrent, char *errstr, size_t errstr_size);

/* Releases b's mutex and condition variable. Every permit must have been
 * released and no thread may be waiting: destroying a bulkhead in use is a
 * programmer error (ZL_ASSERT), since its holders would later release into
 * freed memory. */
void zl_bulkhead_destroy(struct zl_bulkhead *b);

/* Takes a permit if one is free; never blocks. Returns true with a permit
 * the caller must release, or false (counted in rejected_total). */
bool zl_bulkhead_try_acquire(struct zl_bulkhead *b);

/* Takes a permit, waiting at most timeout_ms on the monotonic clock for
 * one to be released. timeout_ms <= 0 behaves as try_acquire. Returns
 * true with a permit the caller must release, or false when none came
 * free in time (counted in rejected_total). */
bool zl_bulkhead_acquire_timeout(struct zl_bulkhead *b, int timeout_ms);

/* Gives back a permit taken by an acquire that returned true, and wakes
 * one waiter. Releasing more than was acquired is a programmer error
 * (ZL_ASSERT). */
void zl_bulkhead_release(struct zl_bulkhead *b);

/* Permits held at the moment of the call (for metrics; may be stale as
 * soon as it returns). */
int zl_bulkhead_in_use(struct zl_bulkhead *b);

/* Acquires refused since init (for metrics). */
uint64_t zl_bulkhead_rejected_total(struct zl_bulkhead *b);

#endif /* ZL_BULKHEAD_H */
