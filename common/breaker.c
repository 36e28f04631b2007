#include "breaker.h"

#include "zl.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

static void lock(struct zl_breaker *b)
{
    int rc = pthread_mutex_lock(&b->mu);
    ZL_ASSERT(rc == 0); /* fails only on a destroyed or corrupt mutex */
}

static void unlock(struct zl_breaker *b)
{
    int rc = pthread_mutex_unlock(&b->mu);
    ZL_ASSERT(rc == 0);
}

/* Callers on different threads read the clock before they take the lock,
 * so a later holder may bring an older now_ms. Using the newest time seen
 * keeps the window and the break monotonic. */
static int64_t clamp_now(struct zl_breaker *b, int64_t now_ms)
{
    ZL_ASSERT(now_ms >= 0); /* monotonic clock readings are never negative */
    if (now_ms < b->last_now_ms)
        return b->last_now_ms;
    b->last_now_ms = now_ms;
    return now_ms;
}

static void window_clear(struct zl_breaker *b)
{
    for (int i = 0; i < ZL_BREAKER_BUCKETS_MAX; i++) {
        b->buckets[i].id = -1;
        b->buckets[i].successes = 0;
        b->buckets[i].failures = 0;
    }
}

/* Sums the buckets that are among the newest buckets_n at now_ms. */
static void window_sum(const struct zl_breaker *b, int64_t now_ms,
                       int64_t *calls, int64_t *failures)
{
    int64_t cur_id = now_ms / b->bucket_ms;
    int64_t c = 0, f = 0;
    for (int i = 0; i < b->buckets_n; i++) {
        const struct zl_breaker_bucket *k = &b->buckets[i];
        if (k->id < 0 || k->id <= cur_id - b->buckets_n)
            continue; /* unused, or aged out of the window */
        c += k->successes + k->failures;
        f += k->failures;
    }
    *calls = c;
    *failures = f;
}

static void window_add(struct zl_breaker *b, bool success, int64_t now_ms)
{
    int64_t id = now_ms / b->bucket_ms;
    struct zl_breaker_bucket *k = &b->buckets[id % b->buckets_n];
    if (k->id != id) {
        /* The slot last held a bucket buckets_n or more lengths ago: its
         * outcomes have aged out, so the slot starts over. */
        k->id = id;
        k->successes = 0;
        k->failures = 0;
    }
    if (success)
        k->successes++;
    else
        k->failures++;
}

/* Changes state and reports it. @locks b->mu held. */
static void transition(struct zl_breaker *b, zl_breaker_state to,
                       int64_t now_ms)
{
    zl_breaker_state from = b->state;
    if (from == to)
        return;
    b->state = to;
    switch (to) {
    case ZL_BREAKER_OPEN:
        b->open_until_ms = now_ms + b->opts.break_duration_ms;
        b->opens_total++;
        break;
    case ZL_BREAKER_HALF_OPEN:
        b->probe_free_ms = now_ms; /* the first allow() may probe */
        break;
    case ZL_BREAKER_CLOSED:
        /* Polly resets the metrics on close: failures from before the break
         * must not count against the dependency that just recovered. */
        window_clear(b);
        break;
    case ZL_BREAKER_ISOLATED:
        break;
    }
    if (b->opts.on_state_change != NULL)
        b->opts.on_state_change(b->opts.opaque, b->name, from, to);
}

/* OPEN becomes HALF_OPEN once the break has elapsed. @locks b->mu held. */
static void maybe_half_open(struct zl_breaker *b, int64_t now_ms)
{
    if (b->state == ZL_BREAKER_OPEN && now_ms >= b->open_until_ms)
        transition(b, ZL_BREAKER_HALF_OPEN, now_ms);
}

void zl_breaker_opts_default(struct zl_breaker_opts *o)
{
    ZL_ASSERT(o != NULL);
    memset(o, 0, sizeof(*o));
    o->failure_ratio = 0.1;
    o->sampling_duration_ms = 30000;
    o->minimum_throughput = 100;
    o->break_duration_ms = 5000;
}

static int validate(const char *name, const struct zl_breaker_opts *o,
                    char *errstr, size_t errstr_size)
{
    if (name == NULL || name[0] == '\0') {
        set_err(errstr, errstr_size,
                "breaker name is empty: give each breaker the dependency "
                "endpoint it guards, e.g. \"rpc:eth-mainnet\"");
        return -1;
    }
    size_t name_len = strnlen(name, ZL_BREAKER_NAME_MAX);
    if (name_len >= ZL_BREAKER_NAME_MAX) {
        set_err(errstr, errstr_size,
                "breaker name \"%.40s...\" is %d bytes or longer: shorten it "
                "below %d bytes",
                name, ZL_BREAKER_NAME_MAX, ZL_BREAKER_NAME_MAX);
        return -1;
    }
    /* Written so that NaN fails too. */
    if (!(o->failure_ratio > 0.0 && o->failure_ratio <= 1.0)) {
        set_err(errstr, errstr_size,
                "breaker \"%s\": failure_ratio %g is outside (0, 1]: set the "
                "fraction of failed calls that opens it, e.g. 0.5",
                name, o->failure_ratio);
        return -1;
    }
    if (o->sampling_duration_ms <= 0 ||
        o->sampling_duration_ms > ZL_BREAKER_DURATION_MAX_MS) {
        set_err(errstr, errstr_size,
                "breaker \"%s\": sampling_duration_ms %" PRId64
                " is outside [1, 86400000]: set the window in milliseconds, "
                "e.g. 30000",
                name, o->sampling_duration_ms);
        return -1;
    }
    if (o->minimum_throughput < 1) {
        set_err(errstr, errstr_size,
                "breaker \"%s\": minimum_throughput %" PRId32
                " is below 1: set how many calls the window needs before it "
                "may open, e.g. 10",
                name, o->minimum_throughput);
        return -1;
    }
    if (o->break_duration_ms <= 0 ||
        o->break_duration_ms > ZL_BREAKER_DURATION_MAX_MS) {
        set_err(errstr, errstr_size,
                "breaker \"%s\": break_duration_ms %" PRId64
                " is outside [1, 86400000]: set how long it stays open in "
                "milliseconds, e.g. 5000",
                name, o->break_duration_ms);
        return -1;
    }
    return 0;
}

int zl_breaker_init(struct zl_breaker *b, const char *name,
                    const struct zl_breaker_opts *o, char *errstr,
                    size_t errstr_size)
{
    ZL_ASSERT(b != NULL && o != NULL);
    if (validate(name, o, errstr, errstr_size) != 0)
        return -1;
    memset(b, 0, sizeof(*b));
    if (pthread_mutex_init(&b->mu, NULL) != 0) {
        set_err(errstr, errstr_size,
                "breaker \"%s\": pthread_mutex_init failed (out of "
                "resources): retry or reduce the number of breakers",
                name);
        return -1;
    }
    size_t name_len = strnlen(name, ZL_BREAKER_NAME_MAX);
    memcpy(b->name, name, name_len);
    b->name[name_len] = '\0';
    b->opts = *o;
    /* At least 1 ms per bucket: a window shorter than BUCKETS_MAX ms gets
     * one bucket per millisecond. */
    b->buckets_n = ZL_BREAKER_BUCKETS_MAX;
    if (o->sampling_duration_ms < ZL_BREAKER_BUCKETS_MAX)
        b->buckets_n = (int)o->sampling_duration_ms;
    b->bucket_ms = o->sampling_duration_ms / b->buckets_n;
    ZL_ASSERT(b->bucket_ms >= 1 && b->buckets_n >= 1);
    window_clear(b);
    b->state = ZL_BREAKER_CLOSED;
    return 0;
}

void zl_breaker_destroy(struct zl_breaker *b)
{
    ZL_ASSERT(b != NULL);
    int rc = pthread_mutex_destroy(&b->mu);
    ZL_ASSERT(rc == 0); /* EBUSY: destroyed while another thread holds it */
}

bool zl_breaker_allow(struct zl_breaker *b, int64_t now_ms)
{
    bool allowed = false;
    lock(b);
    now_ms = clamp_now(b, now_ms);
    maybe_half_open(b, now_ms);
    switch (b->state) {
    case ZL_BREAKER_CLOSED:
        allowed = true;
        break;
    case ZL_BREAKER_HALF_OPEN:
        if (now_ms >= b->probe_free_ms) {
            /* This caller is the probe. The permit lapses after one break
             * so a probe that never reports cannot wedge the breaker. */
            b->probe_free_ms = now_ms + b->opts.break_duration_ms;
            allowed = true;
        }
        break;
    case ZL_BREAKER_OPEN:
    case ZL_BREAKER_ISOLATED:
        break;
    }
    if (!allowed)
        b->rejected_total++;
    unlock(b);
    return allowed;
}

void zl_breaker_record(struct zl_breaker *b, bool success, int64_t now_ms)
{
    lock(b);
    now_ms = clamp_now(b, now_ms);
    switch (b->state) {
    case ZL_BREAKER_CLOSED: {
        window_add(b, success, now_ms);
        if (success)
            break; /* a success can only lower the ratio */
        int64_t calls = 0, failures = 0;
        window_sum(b, now_ms, &calls, &failures);
        /* Division, as Polly does, rather than failures >= ratio * calls:
         * the quotient is correctly rounded, so 3 of 10 equals a configured
         * 0.3 exactly, where 0.3 * 10 may round above 3. */
        if (calls >= b->opts.minimum_throughput &&
            (double)failures / (double)calls >= b->opts.failure_ratio)
            transition(b, ZL_BREAKER_OPEN, now_ms);
        break;
    }
    case ZL_BREAKER_HALF_OPEN:
        transition(b, success ? ZL_BREAKER_CLOSED : ZL_BREAKER_OPEN, now_ms);
        break;
    case ZL_BREAKER_OPEN:
    case ZL_BREAKER_ISOLATED:
        break; /* late outcomes of calls admitted before the break */
    }
    unlock(b);
}

zl_breaker_state zl_breaker_state_at(struct zl_breaker *b, int64_t now_ms)
{
    lock(b);
    now_ms = clamp_now(b, now_ms);
    maybe_half_open(b, now_ms);
    zl_breaker_state s = b->state;
    unlock(b);
    return s;
}

void zl_breaker_snapshot(struct zl_breaker *b, int64_t now_ms,
                         struct zl_breaker_snapshot *out)
{
    ZL_ASSERT(out != NULL);
    memset(out, 0, sizeof(*out));
    lock(b);
    now_ms = clamp_now(b, now_ms);
    maybe_half_open(b, now_ms);
    out->state = b->state;
    window_sum(b, now_ms, &out->calls, &out->failures);
    if (b->state == ZL_BREAKER_OPEN)
        out->open_until_ms = b->open_until_ms;
    out->opens_total = b->opens_total;
    out->rejected_total = b->rejected_total;
    unlock(b);
}

void zl_breaker_reset(struct zl_breaker *b, int64_t now_ms)
{
    lock(b);
    now_ms = clamp_now(b, now_ms);
    /* Cleared here too: transition() skips an unchanged state, and an admin
     * reset of a closed breaker still means "forget past failures". */
    window_clear(b);
    transition(b, ZL_BREAKER_CLOSED, now_ms);
    unlock(b);
}

void zl_breaker_isolate(struct zl_breaker *b)
{
    lock(b);
    transition(b, ZL_BREAKER_ISOLATED, b->last_now_ms);
    unlock(b);
}

const char *zl_breaker_state_name(zl_breaker_state s)
{
    switch (s) {
    case ZL_BREAKER_CLOSED:
        return "closed";
    case ZL_BREAKER_HALF_OPEN:
        return "half-open";
    case ZL_BREAKER_OPEN:
        return "open";
    case ZL_BREAKER_ISOLATED:
        return "isolated";
    }
    return "unknown";
}

int zl_breaker_state_metric(zl_breaker_state s)
{
    switch (s) {
    case ZL_BREAKER_CLOSED:
        return 0;
    case ZL_BREAKER_HALF_OPEN:
        return 1;
    case ZL_BREAKER_OPEN:
        return 2;
    case ZL_BREAKER_ISOLATED:
        return 3;
    }
    return -1;
}
