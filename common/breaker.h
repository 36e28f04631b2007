/* breaker.h: a circuit breaker per dependency endpoint, with Polly v8
 * semantics (docs/architecture.md §6).
 *
 *   CLOSED     calls flow; each outcome is recorded in a sliding window of
 *              sampling_duration_ms. When the window holds at least
 *              minimum_throughput calls and failures / calls >= failure_ratio,
 *              the breaker goes OPEN. Below minimum_throughput it never opens,
 *              even at 100% failure: two failed calls at startup say little.
 *   OPEN       allow() says no for break_duration_ms. The first allow() or
 *              state_at() after that moves to HALF_OPEN.
 *   HALF_OPEN  allow() admits ONE probe call; everyone else is refused while
 *              the probe is outstanding. The outcome recorded next decides:
 *              success -> CLOSED with an empty window, failure -> OPEN for
 *              another break_duration_ms. As in Polly, the probe's permit
 *              lapses after break_duration_ms: a probe whose caller never
 *              recorded an outcome (crashed thread, forgotten path) does not
 *              wedge the breaker half-open forever; the next allow() after
 *              the lapse admits a new probe.
 *   ISOLATED   manual hold-open (admin): allow() says no until
 *              zl_breaker_reset().
 *
 * Also as in Polly: outcomes recorded while OPEN or ISOLATED are ignored
 * (they belong to calls admitted before the break), and in HALF_OPEN the
 * next recorded outcome decides, whichever call reports it.
 *
 * Time is injected: every call takes now_ms from the monotonic clock
 * (zl_now_ms() in production, a counter in tests). A now_ms older than one
 * already seen is treated as the newest seen, so threads that read the clock
 * and then race for the lock cannot move the breaker's time backwards.
 *
 * Sliding window: a ring of ZL_BREAKER_BUCKETS_MAX time buckets (fewer when
 * sampling_duration_ms < ZL_BREAKER_BUCKETS_MAX), each
 * sampling_duration_ms / buckets long, aligned on multiples of that length.
 * An outcome counts while its bucket is one of the newest `buckets`, so it
 * ages out between sampling_duration_ms - bucket length and
 * sampling_duration_ms after it was recorded; memory and work per call are
 * constant however many calls are made.
 *
 * Usage:
 *     if (!zl_breaker_allow(&br, zl_now_ms()))
 *         return ZL_OUTAGE;               // do not call the dependency
 *     bool ok = call_dependency(...);
 *     zl_breaker_record(&br, ok, zl_now_ms());
 * Record only failures that say the dependency is unhealthy (timeouts, 5xx,
 * refused connections), not a message's own permanent errors.
 *
 * Ownership: struct zl_breaker is caller-owned storage (static, stack or
 * embedded); init fills it, destroy releases its mutex. It keeps no pointer
 * to the opts struct or the name passed to init (both are copied).
 *
 * @locality any thread: every function except init and destroy may be
 * called concurrently (librdkafka and libmicrohttpd threads included).
 * @locks b->mu, held for O(ZL_BREAKER_BUCKETS_MAX) work and for the
 * on_state_change callback.
 */
#ifndef ZL_BREAKER_H
#define ZL_BREAKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes for a breaker's name including the terminating NUL. 128 because
 * names carry an endpoint ("rpc:eth-mainnet.g.alchemy.com") and host names
 * reach 63+ characters. */
#define ZL_BREAKER_NAME_MAX 128

/* Buckets in the sliding window. 10 as in Polly's rolling health metrics:
 * fine enough that the window slides smoothly, small enough that summing it
 * on every failure costs nothing. */
#define ZL_BREAKER_BUCKETS_MAX 10

/* Largest accepted sampling_duration_ms and break_duration_ms: one day.
 * Longer is almost surely a unit mistake (seconds vs milliseconds). */
#define ZL_BREAKER_DURATION_MAX_MS INT64_C(86400000)

/* The numeric values are the ones exported to Prometheus
 * (zl_breaker_state_metric()): 0 closed, 1 half-open, 2 open, 3 isolated. */
typedef enum zl_breaker_state {
    ZL_BREAKER_CLOSED = 0,
    ZL_BREAKER_HALF_OPEN = 1,
    ZL_BREAKER_OPEN = 2,
    ZL_BREAKER_ISOLATED = 3,
} zl_breaker_state;

/* Called on every state change, with b->mu HELD, so changes are reported
 * one at a time and in the order they happened. It must be quick (a log
 * line, a gauge update) and must not call any zl_breaker_* function on the
 * same breaker (that would deadlock). `name` is the breaker's own copy,
 * valid until zl_breaker_destroy().
 * @locality whichever thread caused the change. */
typedef void (*zl_breaker_on_change_fn)(void *opaque, const char *name,
                                        zl_breaker_state old_state,
                                        zl_breaker_state new_state);

struct zl_breaker_opts {
    double failure_ratio;         /* open at failures/calls >= this; (0, 1] */
    int64_t sampling_duration_ms; /* sliding window length; (0, 1 day] */
    int32_t minimum_throughput;   /* calls in window before it may open; >= 1 */
    int64_t break_duration_ms;    /* time OPEN before a probe; (0, 1 day] */
    zl_breaker_on_change_fn on_state_change; /* optional, may be NULL */
    void *opaque; /* passed to on_state_change; not owned, must outlive b */
};

/* One bucket of the sliding window. */
struct zl_breaker_bucket {
    int64_t id;        /* now_ms / bucket_ms when counting began; -1 unused */
    int64_t successes; /* outcomes recorded in this bucket */
    int64_t failures;
};

struct zl_breaker {
    pthread_mutex_t mu;              /* guards every field below */
    char name[ZL_BREAKER_NAME_MAX];  /* for logs, metrics and errors */
    struct zl_breaker_opts opts;     /* copy of the validated options */
    int64_t bucket_ms;               /* length of one bucket */
    int buckets_n;                   /* buckets in use, <= BUCKETS_MAX */
    struct zl_breaker_bucket buckets[ZL_BREAKER_BUCKETS_MAX];
    zl_breaker_state state;
    int64_t open_until_ms;   /* OPEN: when it may go HALF_OPEN */
    int64_t probe_free_ms;   /* HALF_OPEN: a probe may start at/after this */
    int64_t last_now_ms;     /* newest now_ms seen; time never goes back */
    uint64_t opens_total;    /* times it went OPEN (not ISOLATED) */
    uint64_t rejected_total; /* allow() calls answered false */
};

/* A consistent view for /health/ready and /metrics. */
struct zl_breaker_snapshot {
    zl_breaker_state state;
    int64_t calls;           /* outcomes in the window (CLOSED only counts) */
    int64_t failures;        /* failed outcomes in the window */
    int64_t open_until_ms;   /* OPEN: when a probe may go; 0 otherwise */
    uint64_t opens_total;    /* times it went OPEN since init */
    uint64_t rejected_total; /* allow() calls refused since init */
};

/* Fills o with Polly v8's defaults: failure_ratio 0.1, sampling 30 s,
 * minimum_throughput 100, break 5 s, no callback. */
void zl_breaker_opts_default(struct zl_breaker_opts *o);

/* Validates o and sets up b in CLOSED with an empty window. name must be
 * non-empty and shorter than ZL_BREAKER_NAME_MAX; name and o are copied.
 * Returns 0, or -1 with a reason in errstr naming the breaker and the bad
 * field (failure_ratio, sampling_duration_ms, minimum_throughput,
 * break_duration_ms or name); on failure nothing is allocated, b must not
 * be used and needs no destroy. */
int zl_breaker_init(struct zl_breaker *b, const char *name,
                    const struct zl_breaker_opts *o, char *errstr,
                    size_t errstr_size);

/* Releases b's mutex. No other thread may be using b. */
void zl_breaker_destroy(struct zl_breaker *b);

/* May the caller call the dependency now? true in CLOSED; in HALF_OPEN
 * true for the one probe; false in OPEN (until the break elapses, then
 * this call becomes the probe), ISOLATED, and for everyone else while a
 * probe is outstanding. A caller that got true must zl_breaker_record()
 * the outcome. */
bool zl_breaker_allow(struct zl_breaker *b, int64_t now_ms);

/* Records the outcome of a call that allow() admitted. May change state
 * (CLOSED -> OPEN, HALF_OPEN -> CLOSED or OPEN); ignored in OPEN and
 * ISOLATED. */
void zl_breaker_record(struct zl_breaker *b, bool success, int64_t now_ms);

/* The state at now_ms. Moves OPEN to HALF_OPEN when the break has elapsed
 * (firing the callback) but does not take the probe. */
zl_breaker_state zl_breaker_state_at(struct zl_breaker *b, int64_t now_ms);

/* Fills out with the state at now_ms (same transition as state_at) and the
 * window's counts. */
void zl_breaker_snapshot(struct zl_breaker *b, int64_t now_ms,
                         struct zl_breaker_snapshot *out);

/* Admin reset: CLOSED with an empty window, from any state (also ends
 * ISOLATED). The callback fires only if the state changed. */
void zl_breaker_reset(struct zl_breaker *b, int64_t now_ms);

/* Admin isolation: ISOLATED until zl_breaker_reset(); allow() says no. */
void zl_breaker_isolate(struct zl_breaker *b);

/* "closed", "half-open", "open", "isolated"; "unknown" outside the enum.
 * Static strings, never freed. */
const char *zl_breaker_state_name(zl_breaker_state s);

/* The Prometheus gauge value: 0 closed, 1 half-open, 2 open, 3 isolated;
 * -1 outside the enum. */
int zl_breaker_state_metric(zl_breaker_state s);

#endif /* ZL_BREAKER_H */
