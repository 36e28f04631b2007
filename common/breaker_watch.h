/* breaker_watch.h: makes a circuit breaker's state visible: every state
 * change is logged, exported as the gauge zl_breaker_state{stage,dependency}
 * (0 closed, 1 half-open, 2 open, 3 isolated) and reported to /health/ready
 * as that dependency's state (ready only while closed or half-open).
 *
 * Use: set opts.on_state_change = zl_breaker_watch_cb and opts.opaque to a
 * struct zl_breaker_watch that outlives the breaker.
 * @locality any thread (the breaker calls it under its own lock; this only
 * logs and updates thread-safe metrics and health).
 */
#ifndef ZL_BREAKER_WATCH_H
#define ZL_BREAKER_WATCH_H

#include "breaker.h"
#include "health.h"
#include "metrics.h"

struct zl_breaker_watch {
    const char *stage;          /* borrowed */
    struct zl_metrics *metrics; /* may be NULL; borrowed */
    struct zl_health *health;   /* may be NULL; borrowed */
};

/* Registers the gauge's HELP text and reports the breaker as closed, so a
 * dependency shows in /metrics and /health/ready before its first change. */
void zl_breaker_watch_register(struct zl_breaker_watch *w, const char *dependency);

void zl_breaker_watch_cb(void *opaque, const char *name, zl_breaker_state old_state, zl_breaker_state new_state);

#endif /* ZL_BREAKER_WATCH_H */
