#include "backoff.h"

#include "zl.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Draws to reject before giving up on perfect uniformity. Each draw is
 * rejected with probability below 1/2, so reaching this bound has probability
 * below 2^-64: it exists only so the loop has a limit. */
#define BACKOFF_REJECT_DRAWS_MAX 64

/* splitmix64 (Steele, Lea, Flood 2014): one add and a mix per value. Every
 * state, including 0, yields a full-period sequence, so any seed works. */
static uint64_t splitmix64_next(uint64_t *state)
{
    *state += UINT64_C(0x9E3779B97F4A7C15);
    uint64_t z = *state;
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* A seed that differs between processes started in the same millisecond
 * (pid) and between structs in one process (address), so a fleet of workers
 * restarted together does not retry in lockstep. */
static uint64_t backoff_auto_seed(const struct zl_backoff *b)
{
    uint64_t mix = (uint64_t)zl_wall_ms();
    uint64_t s = mix;
    mix ^= splitmix64_next(&s) ^ (uint64_t)zl_now_ms();
    s = mix;
    mix ^= splitmix64_next(&s) ^ (uint64_t)getpid();
    s = mix;
    mix ^= splitmix64_next(&s) ^ (uint64_t)(uintptr_t)b;
    s = mix;
    return splitmix64_next(&s);
}

__attribute__((format(printf, 3, 4))) static void
set_err(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    if (errstr == NULL || errstr_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

int zl_backoff_init(struct zl_backoff *b, int64_t base_ms, int64_t cap_ms,
                    uint64_t seed, char *errstr, size_t errstr_size)
{
    ZL_ASSERT(b != NULL);
    memset(b, 0, sizeof(*b));
    if (base_ms < 1) {
        set_err(errstr, errstr_size,
                "backoff base_ms %" PRId64
                " is below 1: set the first retry's delay ceiling in "
                "milliseconds, e.g. 100",
                base_ms);
        return -1;
    }
    if (cap_ms > ZL_BACKOFF_CAP_MAX_MS) {
        set_err(errstr, errstr_size,
                "backoff cap_ms %" PRId64
                " exceeds one day (86400000 ms): check the unit, it is "
                "milliseconds",
                cap_ms);
        return -1;
    }
    if (cap_ms < base_ms) {
        set_err(errstr, errstr_size,
                "backoff cap_ms %" PRId64
                " is below base_ms: set cap_ms to at least base_ms",
                cap_ms);
        return -1;
    }
    b->base_ms = base_ms;
    b->cap_ms = cap_ms;
    b->rng_state = seed != 0 ? seed : backoff_auto_seed(b);
    return 0;
}

int64_t zl_backoff_ceiling_ms(const struct zl_backoff *b, uint32_t attempt)
{
    ZL_ASSERT(b != NULL && b->base_ms >= 1 && b->cap_ms >= b->base_ms);
    /* base_ms * 2^attempt > cap_ms exactly when base_ms > (cap_ms >> attempt),
     * so the comparison is made without ever forming the product. A shift by
     * 63 or more is undefined in C, and cap_ms < 2^63 makes any such attempt
     * reach the cap anyway. */
    if (attempt >= 63)
        return b->cap_ms;
    if (b->base_ms > (b->cap_ms >> attempt))
        return b->cap_ms;
    return b->base_ms << attempt;
}

int64_t zl_backoff_delay_ms(struct zl_backoff *b, uint32_t attempt)
{
    int64_t ceiling_ms = zl_backoff_ceiling_ms(b, attempt);
    uint64_t range = (uint64_t)ceiling_ms + 1; /* [0, ceiling] inclusive */
    /* Rejection sampling: values below `threshold` would make the low
     * residues more likely than the high ones (modulo bias). threshold is
     * 2^64 mod range, computed in 64 bits as (-range) % range. */
    uint64_t threshold = (UINT64_C(0) - range) % range;
    uint64_t r = splitmix64_next(&b->rng_state);
    for (int i = 0; i < BACKOFF_REJECT_DRAWS_MAX && r < threshold; i++)
        r = splitmix64_next(&b->rng_state);
    int64_t delay_ms = (int64_t)(r % range);
    ZL_ASSERT(delay_ms >= 0 && delay_ms <= ceiling_ms);
    return delay_ms;
}
