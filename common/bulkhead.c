#include "bulkhead.h"

#include "zl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

static void lock(struct zl_bulkhead *b)
{
    int rc = pthread_mutex_lock(&b->mu);
    ZL_ASSERT(rc == 0); /* fails only on a destroyed or corrupt mutex */
}

static void unlock(struct zl_bulkhead *b)
{
    int rc = pthread_mutex_unlock(&b->mu);
    ZL_ASSERT(rc == 0);
}

/* The condition variable waits on CLOCK_MONOTONIC so that a wall-clock
 * step (NTP, an operator) neither cuts a wait short nor stretches it. */
static int cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
    return rc == 0 ? 0 : -1;
}

int zl_bulkhead_init(struct zl_bulkhead *b, const char *name,
                     int max_concurrent, char *errstr, size_t errstr_size)
{
    ZL_ASSERT(b != NULL);
    if (name == NULL || name[0] == '\0') {
        set_err(errstr, errstr_size,
                "bulkhead name is empty: name it for the dependency it "
                "guards, e.g. \"ipfs\"");
        return -1;
    }
    size_t name_len = strnlen(name, ZL_BULKHEAD_NAME_MAX);
    if (name_len >= ZL_BULKHEAD_NAME_MAX) {
        set_err(errstr, errstr_size,
                "bulkhead name \"%.40s...\" is %d bytes or longer: shorten "
                "it below %d bytes",
                name, ZL_BULKHEAD_NAME_MAX, ZL_BULKHEAD_NAME_MAX);
        return -1;
    }
    if (max_concurrent < 1 || max_concurrent > ZL_BULKHEAD_CONCURRENT_MAX) {
        set_err(errstr, errstr_size,
                "bulkhead \"%s\": max_concurrent %d is outside [1, %d]: set "
                "how many calls to this dependency may run at once, e.g. 8",
                name, max_concurrent, ZL_BULKHEAD_CONCURRENT_MAX);
        return -1;
    }
    memset(b, 0, sizeof(*b));
    if (pthread_mutex_init(&b->mu, NULL) != 0) {
        set_err(errstr, errstr_size,
                "bulkhead \"%s\": pthread_mutex_init failed (out of "
                "resources): retry or reduce the number of bulkheads",
                name);
        return -1;
    }
    if (cond_init_monotonic(&b->freed) != 0) {
        set_err(errstr, errstr_size,
                "bulkhead \"%s\": pthread_cond_init with CLOCK_MONOTONIC "
                "failed: the platform lacks monotonic condition waits",
                name);
        goto out_destroy_mutex;
    }
    memcpy(b->name, name, name_len);
    b->name[name_len] = '\0';
    b->max_concurrent = max_concurrent;
    return 0;

out_destroy_mutex:
    pthread_mutex_destroy(&b->mu);
    return -1;
}

void zl_bulkhead_destroy(struct zl_bulkhead *b)
{
    ZL_ASSERT(b != NULL);
    lock(b);
    ZL_ASSERT(b->in_use == 0); /* holders would release into freed memory */
    unlock(b);
    int rc = pthread_cond_destroy(&b->freed);
    ZL_ASSERT(rc == 0); /* EBUSY: a thread still waits */
    rc = pthread_mutex_destroy(&b->mu);
    ZL_ASSERT(rc == 0);
}

/* Takes a permit if one is free. @locks b->mu held. */
static bool take_locked(struct zl_bulkhead *b)
{
    ZL_ASSERT(b->in_use >= 0 && b->in_use <= b->max_concurrent);
    if (b->in_use >= b->max_concurrent)
        return false;
    b->in_use++;
    return true;
}

bool zl_bulkhead_try_acquire(struct zl_bulkhead *b)
{
    lock(b);
    bool ok = take_locked(b);
    if (!ok)
        b->rejected_total++;
    unlock(b);
    return ok;
}

static struct timespec deadline_after_ms(int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

bool zl_bulkhead_acquire_timeout(struct zl_bulkhead *b, int timeout_ms)
{
    if (timeout_ms <= 0)
        return zl_bulkhead_try_acquire(b);
    struct timespec deadline = deadline_after_ms(timeout_ms);
    lock(b);
    bool ok = take_locked(b);
    /* The deadline bounds this loop: each pass either takes a permit,
     * re-waits after a spurious wakeup or a permit taken by another
     * thread, or ends at ETIMEDOUT. */
    while (!ok) {
        int rc = pthread_cond_timedwait(&b->freed, &b->mu, &deadline);
        ok = take_locked(b);
        if (rc == ETIMEDOUT)
            break;
        ZL_ASSERT(rc == 0);
    }
    if (!ok)
        b->rejected_total++;
    unlock(b);
    return ok;
}

void zl_bulkhead_release(struct zl_bulkhead *b)
{
    lock(b);
    ZL_ASSERT(b->in_use > 0); /* a release without a matching acquire */
    b->in_use--;
    /* One permit came free, so one waiter can use it. */
    int rc = pthread_cond_signal(&b->freed);
    ZL_ASSERT(rc == 0);
    unlock(b);
}

int zl_bulkhead_in_use(struct zl_bulkhead *b)
{
    lock(b);
    int n = b->in_use;
    unlock(b);
    return n;
}

uint64_t zl_bulkhead_rejected_total(struct zl_bulkhead *b)
{
    lock(b);
    uint64_t n = b->rejected_total;
    unlock(b);
    return n;
}
