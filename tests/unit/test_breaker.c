/* Unit tests for common/breaker.c (circuit breaker, Polly v8 semantics).
 * Time is injected into the breaker, so its tests are deterministic. */
#include "breaker.h"
#include "zl.h"
#include "zltest.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

/* ---- helpers ------------------------------------------------------------ */

/* Transitions a test's callback can hold; more is a test bug. */
#define CHANGES_MAX 16

struct change_log {
    int n;
    char name[ZL_BREAKER_NAME_MAX];
    zl_breaker_state from[CHANGES_MAX];
    zl_breaker_state to[CHANGES_MAX];
};

static void on_change(void *opaque, const char *name, zl_breaker_state from,
                      zl_breaker_state to)
{
    struct change_log *changes = opaque;
    if (changes->n >= CHANGES_MAX) {
        changes->n++; /* overflow shows as a count mismatch */
        return;
    }
    snprintf(changes->name, sizeof(changes->name), "%s", name);
    changes->from[changes->n] = from;
    changes->to[changes->n] = to;
    changes->n++;
}

/* ratio 0.5, window 10 s in 1 s buckets, at least 4 calls, break 5 s. */
static struct zl_breaker_opts test_opts(struct change_log *changes)
{
    struct zl_breaker_opts o;
    zl_breaker_opts_default(&o);
    o.failure_ratio = 0.5;
    o.sampling_duration_ms = 10000;
    o.minimum_throughput = 4;
    o.break_duration_ms = 5000;
    if (changes != NULL) {
        o.on_state_change = on_change;
        o.opaque = changes;
    }
    return o;
}

/* Records `n` failures at now_ms. */
static void fail_n(struct zl_breaker *b, int n, int64_t now_ms)
{
    for (int i = 0; i < n; i++)
        zl_breaker_record(b, false /* success */, now_ms);
}

/* Builds a breaker and opens it at now_ms = 1000 (4 failures). */
static int open_breaker(struct zl_breaker *b, struct change_log *changes)
{
    struct zl_breaker_opts o = test_opts(changes);
    char err[ZL_ERRSTR_SIZE];
    if (zl_breaker_init(b, "rpc:test", &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "  init failed: %s\n", err);
        return -1;
    }
    fail_n(b, 4, 1000);
    return zl_breaker_state_at(b, 1000) == ZL_BREAKER_OPEN ? 0 : -1;
}

/* ---- breaker ------------------------------------------------------------ */

ZT_TEST(test_breaker_stays_closed_below_minimum_throughput_even_at_full_failure)
{
    struct zl_breaker b;
    struct zl_breaker_opts o = test_opts(NULL);
    ZT_REQUIRE(zl_breaker_init(&b, "rpc:a", &o, NULL, 0) == 0);
    fail_n(&b, 3, 1000); /* 100% failure, 3 calls < minimum 4 */
    ZT_EQ_INT(ZL_BREAKER_CLOSED, zl_breaker_state_at(&b, 1000));
    ZT_CHECK(zl_breaker_allow(&b, 1000));
    fail_n(&b, 1, 1000); /* the 4th call reaches the minimum */
    ZT_EQ_INT(ZL_BREAKER_OPEN, zl_breaker_state_at(&b, 1000));
    zl_breaker_destroy(&b);
}

ZT_TEST(test_breaker_opens_when_failure_ratio_reached_not_below)
{
    struct zl_breaker b;
    struct zl_breaker_opts o = test_opts(NULL);

    /* 1 failure in 4 (0.25 < 0.5): stays closed however long it runs. */
    ZT_REQUIRE(zl_breaker_init(&b, "rpc:a", &o, NULL, 0) == 0);
    for (int i = 0; i < 25; i++) {
        zl_breaker_record(&b, true, 1000);
        zl_breaker_record(&b, true, 1000);
        zl_breaker_record(&b, true, 1000);
        zl_breaker_record(&b, false, 1000);
    }
    ZT_EQ_INT(ZL_BREAKER_CLOSED, zl_breaker_state_at(&b, 1000));
    zl_breaker_destroy(&b);

    /* 2 failures in 4 (0.5 >= 0.5): opens on the failure that reaches it. */
    ZT_REQUIRE(zl_breaker_init(&b, "rpc:a", &o, NULL, 0) == 0);
    zl_breaker_record(&b, true, 1000);
    zl_breaker_record(&b, true, 1000);
    zl_breaker_record(&b, false, 1000);
    ZT_EQ_INT(ZL_BREAKER_CLOSED, zl_breaker_state_at(&b, 1000));
    zl_breaker_record(&b, false, 1000);
    ZT_EQ_INT(ZL_BREAKER_OPEN, zl_breaker_state_at(&b, 1000));
    ZT_CHECK(!zl_breaker_allow(&b, 1000));
    zl_breaker_destroy(&b);

    /* A ratio of 0.3 opens at exactly 3 failures in 10. */
    o.failure_ratio = 0.3;
    o.minimum_throughput = 10;
    ZT_REQUIRE(zl_breaker_init(&b, "rpc:a", &o, NULL, 0) == 0);
    for (int i = 0; i < 7; i++)
        zl_breaker_record(&b, true, 1000);
    fail_n(&b, 2, 1000);
    ZT_EQ_INT(ZL_BREAKER_CLOSED, zl_breaker_state_at(&b, 1000));
    fail_n(&b, 1, 1000);
    ZT_EQ_INT(ZL_BREAKER_OPEN, zl_breaker_state_at(&b, 1000));
    zl_breaker_destroy(&b);
}

ZT_TEST(test_breaker_old_failures_age_out_of_sampling_window)
{
    struct zl_breaker b;
    struct zl_breaker_opts o = test_opts(NULL);
    struct zl_breaker_snapshot s;

    /* 3 failures at t=0.5 s, then one at t=9.5 s: all 4 in the 10 s window. */
    ZT_REQUIRE(zl_breaker_init(&b, "rpc:a", &o, NULL, 0) == 0);
    fail_n(&b, 3, 500);
    fail_n(&b, 1, 9500);
    ZT_EQ_INT(ZL_BREAKER_OPEN, zl_breaker_state_at(&b, 9500));
    zl_breaker_destroy(&b);

    /* The same, but the 4th failure comes at t=10.5 s: the first three
     * have aged out, the window holds 1 call, below the minimum. */
    ZT_REQUIRE(zl_breaker_init(&b, "rpc:a", &o, NULL, 0) == 0);
    fail_n(&b, 3, 500);
    zl_breaker_snapshot(&b, 9999, &s);
    ZT_EQ_INT(3, s.calls);
    fail_n(&b, 1, 10500);
    ZT_EQ_INT(ZL_BREAKER_CLOSED, zl_breaker_state_at(&b, 10500));
    zl_breaker_snapshot(&b, 10500, &s);
    ZT_EQ_INT(1, s.calls);
    ZT_EQ_INT(1, s.failures);
    /* Long after, the window is empty. */
    zl_breaker_snapshot(&b, 100000, &s);
    ZT_EQ_INT(0, s.calls);
    zl_breaker_destroy(&b);
}

ZT_TEST(test_breaker_open_rejects_until_break_duration_elapses)
{
    struct zl_breaker b;
    ZT_REQUIRE(open_breaker(&b, NULL) == 0); /* opened at 1000, break 5 s */
    struct zl_breaker_snapshot s;
    zl_breaker_snapshot(&b, 1000, &s);
    ZT_EQ_INT(6000, s.open_until_ms);
    ZT_EQ_INT(1, (long long)s.opens_total);
    int admitted = 0;
    for (int64_t t = 1000; t < 6000; t += 250)
        admitted += zl_breaker_allow(&b, t) ? 1 : 0;
    ZT_CHECK(!zl_breaker_allow(&b, 5999));
    ZT_EQ_INT(0, admitted);
    ZT_EQ_INT(ZL_BREAKER_OPEN, zl_breaker_state_at(&b, 5999));
    ZT_EQ_INT(ZL_BREAKER_HALF_OPEN, zl_breaker_state_at(&b, 6000));
    zl_breaker_snapshot(&b, 6000, &s);
    ZT_EQ_INT(21, (long long)s.rejected_total);
    zl_breaker_destroy(&b);
}

ZT_TEST(test_breaker_half_open_admits_one_probe_at_a_time)
{
    struct zl_breaker b;
    ZT_REQUIRE(open_breaker(&b, NULL) == 0);
    /* The first caller after the break becomes the probe. */
    ZT_CHECK(zl_breaker_allow(&b, 6000));
    ZT_EQ_INT(ZL_BREAKER_HALF_OPEN, zl_breaker_state_at(&b, 6000));
    /* Everyone else is refused while it is outstanding. */
    int admitted = 0;
    for (int64_t t = 6000; t < 11000; t += 100)
        admitted += zl_breaker_allow(&b, t) ? 1 : 0;
    ZT_EQ_INT(0, admitted);
    /* A probe that never reports lapses after one break duration (Polly):
     * the breaker admits a new probe instead of staying wedged. */
    ZT_CHECK(zl_breaker_allow(&b, 11000));
    ZT_CHECK(!zl_breaker_allow(&b, 11001));
    zl_breaker_destroy(&b);
}

ZT_TEST(test_breaker_probe_success_closes_with_empty_window)
{
    struct zl_breaker b;
    ZT_REQUIRE(open_breaker(&b, NULL) == 0);
    ZT_REQUIRE(zl_breaker_allow(&b, 7000));
    zl_breaker_record(&b, true, 7100);
    ZT_EQ_INT(ZL_BREAKER_CLOSED, zl_breaker_state_at(&b, 7100));
    struct zl_breaker_snapshot s;
    zl_breaker_snapshot(&b, 7100, &s);
    ZT_EQ_INT(0, s.calls); /* the 4 failures from before the break are gone */
    ZT_CHECK(zl_breaker_allow(&b, 7100));
    ZT_CHECK(zl_breaker_allow(&b, 7100)); /* closed: everyone is admitted */
    /* One new failure does not reopen it: the old ones no longer count. */
    fail_n(&b, 1, 7200);
    ZT_EQ_INT(ZL_BREAKER_CLOSED, zl_breaker_state_at(&b, 7200));
    zl_breaker_destroy(&b);
}

ZT_TEST(test_breaker_probe_failure_reopens_for_another_break)
{
    struct zl_breaker b;
    ZT_REQUIRE(open_breaker(&b, NULL) == 0);
    ZT_REQUIRE(zl_breaker_allow(&b, 6000));
    zl_breaker_record(&b, false, 6500);
    ZT_EQ_INT(ZL_BREAKER_OPEN, zl_breaker_state_at(&b, 6500));
    ZT_CHECK(!zl_breaker_allow(&b, 6500));
    ZT_CHECK(!zl_breaker_allow(&b, 11499)); /* break restarts at 6500 */
    ZT_CHECK(zl_breaker_allow(&b, 11500));  /* the next probe */
    struct zl_breaker_snapshot s;
    zl_breaker_snapshot(&b, 11500, &s);
    ZT_EQ_INT(2, (long long)s.opens_total);
    zl_breaker_destroy(&b);
}

ZT_TEST(test_breaker_ignores_outcomes_recorded_while_open)
{
    struct zl_breaker b;
    ZT_REQUIRE(open_breaker(&b, NULL) == 0);
    /* Late successes of calls admitted before the break do not close it. */
    for (int i = 0; i < 10; i++)
        zl_breaker_record(&b, true, 2000);
    ZT_EQ_INT(ZL_BREAKER_OPEN, zl_breaker_state_at(&b, 2000));
    ZT_CHECK(!zl_breaker_allow(&b, 2000));
    zl_breaker_destroy(&b);
}

ZT_TEST(test_breaker_reset_closes_from_open_and_isolated)
{
    struct zl_breaker b;
    ZT_REQUIRE(open_breaker(&b, NULL) == 0);
    zl_breaker_reset(&b, 2000);
    ZT_EQ_INT(ZL_BREAKER_CLOSED, zl_breaker_state_at(&b, 2000));
    ZT_CHECK(zl_breaker_allow(&b, 2000));
    struct zl_breaker_snapshot s;
    zl_breaker_snapshot(&b, 2000, &s);
    ZT_EQ_INT(0, s.calls);

    /* Isolation holds however much time passes, until reset. */
    zl_breaker_isolate(&b);
    ZT_EQ_INT(ZL_BREAKER_ISOLATED, zl_breaker_state_at(&b, 2000));
    ZT_CHECK(!zl_breaker_allow(&b, 2000));
    ZT_CHECK(!zl_breaker_allow(&b, 1000000000));
    zl_breaker_record(&b, true, 1000000000); /* ignored */
    ZT_EQ_INT(ZL_BREAKER_ISOLATED, zl_breaker_state_at(&b, 1000000000));
    zl_breaker_reset(&b, 1000000000);
    ZT_EQ_INT(ZL_BREAKER_CLOSED, zl_breaker_state_at(&b, 1000000000));
    ZT_CHECK(zl_breaker_allow(&b, 1000000000));

    /* Reset of a closed breaker forgets its recent failures. */
    fail_n(&b, 3, 1000000000);
    zl_breaker_reset(&b, 1000000000);
    fail_n(&b, 1, 1000000000);
    ZT_EQ_INT(ZL_BREAKER_CLOSED, zl_breaker_state_at(&b, 1000000000));
    zl_breaker_destroy(&b);
}

/* Initialises with o and expects failure with `field` in the message. */
static void expect_init_error(const char *name, const struct zl_breaker_opts *o,
                              const char *field)
{
    struct zl_breaker b;
    char err[ZL_ERRSTR_SIZE] = "";
    ZT_EQ_INT(-1, zl_breaker_init(&b, name, o, err, sizeof(err)));
    if (strstr(err, field) == NULL)
        ZT_FAIL_AT("error \"%s\" does not name %s", err, field);
    zt_cur.checks++;
}

ZT_TEST(test_breaker_init_rejects_bad_options_naming_the_field)
{
    struct zl_breaker_opts good = test_opts(NULL), o;

    o = good;
    o.failure_ratio = 0.0;
    expect_init_error("rpc:a", &o, "failure_ratio");
    o = good;
    o.failure_ratio = 1.01;
    expect_init_error("rpc:a", &o, "failure_ratio");
    o = good;
    o.failure_ratio = -0.5;
    expect_init_error("rpc:a", &o, "failure_ratio");
    o = good;
    o.failure_ratio = NAN;
    expect_init_error("rpc:a", &o, "failure_ratio");
    o = good;
    o.sampling_duration_ms = 0;
    expect_init_error("rpc:a", &o, "sampling_duration_ms");
    o = good;
    o.sampling_duration_ms = ZL_BREAKER_DURATION_MAX_MS + 1;
    expect_init_error("rpc:a", &o, "sampling_duration_ms");
    o = good;
    o.minimum_throughput = 0;
    expect_init_error("rpc:a", &o, "minimum_throughput");
    o = good;
    o.break_duration_ms = -1;
    expect_init_error("rpc:a", &o, "break_duration_ms");
    o = good;
    o.break_duration_ms = 0;
    expect_init_error("rpc:a", &o, "break_duration_ms");
    expect_init_error("", &good, "name");
    expect_init_error(NULL, &good, "name");
    char long_name[ZL_BREAKER_NAME_MAX + 1];
    memset(long_name, 'x', ZL_BREAKER_NAME_MAX);
    long_name[ZL_BREAKER_NAME_MAX] = '\0';
    expect_init_error(long_name, &good, "name");

    /* The error names the breaker too, so the operator knows which one. */
    struct zl_breaker b;
    char err[ZL_ERRSTR_SIZE] = "";
    o = good;
    o.minimum_throughput = -3;
    ZT_EQ_INT(-1, zl_breaker_init(&b, "ipfs:pinata", &o, err, sizeof(err)));
    ZT_CHECK(strstr(err, "ipfs:pinata") != NULL);

    /* Edges that are valid: ratio 1, a 1 ms window, throughput 1. */
    o = good;
    o.failure_ratio = 1.0;
    o.sampling_duration_ms = 1;
    o.minimum_throughput = 1;
    ZT_EQ_INT(0, zl_breaker_init(&b, "rpc:a", &o, err, sizeof(err)));
    fail_n(&b, 1, 5);
    ZT_EQ_INT(ZL_BREAKER_OPEN, zl_breaker_state_at(&b, 5));
    zl_breaker_destroy(&b);
}

ZT_TEST(test_breaker_callback_reports_each_transition_in_order)
{
    struct change_log changes = {0};
    struct zl_breaker b;
    ZT_REQUIRE(open_breaker(&b, &changes) == 0);  /* closed -> open */
    ZT_REQUIRE(zl_breaker_allow(&b, 6000));   /* open -> half-open */
    zl_breaker_record(&b, false, 6000);       /* half-open -> open */
    ZT_REQUIRE(zl_breaker_allow(&b, 11000));  /* open -> half-open */
    zl_breaker_record(&b, true, 11000);       /* half-open -> closed */
    zl_breaker_isolate(&b);                   /* closed -> isolated */
    zl_breaker_reset(&b, 12000);              /* isolated -> closed */
    zl_breaker_reset(&b, 12000);              /* closed -> closed: silent */
    static const zl_breaker_state from[] = {
        ZL_BREAKER_CLOSED, ZL_BREAKER_OPEN,      ZL_BREAKER_HALF_OPEN,
        ZL_BREAKER_OPEN,   ZL_BREAKER_HALF_OPEN, ZL_BREAKER_CLOSED,
        ZL_BREAKER_ISOLATED};
    static const zl_breaker_state to[] = {
        ZL_BREAKER_OPEN,      ZL_BREAKER_HALF_OPEN, ZL_BREAKER_OPEN,
        ZL_BREAKER_HALF_OPEN, ZL_BREAKER_CLOSED,    ZL_BREAKER_ISOLATED,
        ZL_BREAKER_CLOSED};
    const int n = (int)(sizeof(from) / sizeof(from[0]));
    ZT_REQUIRE(changes.n == n);
    for (int i = 0; i < n; i++) {
        ZT_EQ_STR(zl_breaker_state_name(from[i]),
                  zl_breaker_state_name(changes.from[i]));
        ZT_EQ_STR(zl_breaker_state_name(to[i]),
                  zl_breaker_state_name(changes.to[i]));
    }
    ZT_EQ_STR("rpc:test", changes.name);
    zl_breaker_destroy(&b);
}

ZT_TEST(test_breaker_stale_clock_reading_cannot_shorten_the_break)
{
    struct zl_breaker b;
    ZT_REQUIRE(open_breaker(&b, NULL) == 0); /* open until 6000 */
    ZT_REQUIRE(zl_breaker_allow(&b, 16000)); /* probe at 16000 */
    /* The probe's thread read the clock before another thread's 16000
     * reached the breaker: its 12000 counts as 16000, so the new break
     * lasts until 21000, not 17000. */
    zl_breaker_record(&b, false, 12000);
    ZT_CHECK(!zl_breaker_allow(&b, 18000));
    ZT_CHECK(!zl_breaker_allow(&b, 20999));
    ZT_CHECK(zl_breaker_allow(&b, 21000));
    zl_breaker_destroy(&b);
}

ZT_TEST(test_breaker_state_names_and_prometheus_values)
{
    ZT_EQ_STR("closed", zl_breaker_state_name(ZL_BREAKER_CLOSED));
    ZT_EQ_STR("half-open", zl_breaker_state_name(ZL_BREAKER_HALF_OPEN));
    ZT_EQ_STR("open", zl_breaker_state_name(ZL_BREAKER_OPEN));
    ZT_EQ_STR("isolated", zl_breaker_state_name(ZL_BREAKER_ISOLATED));
    ZT_EQ_STR("unknown", zl_breaker_state_name((zl_breaker_state)42));
    ZT_EQ_INT(0, zl_breaker_state_metric(ZL_BREAKER_CLOSED));
    ZT_EQ_INT(1, zl_breaker_state_metric(ZL_BREAKER_HALF_OPEN));
    ZT_EQ_INT(2, zl_breaker_state_metric(ZL_BREAKER_OPEN));
    ZT_EQ_INT(3, zl_breaker_state_metric(ZL_BREAKER_ISOLATED));
    ZT_EQ_INT(-1, zl_breaker_state_metric((zl_breaker_state)42));
}

/* Threads hammering one breaker in the tests below. Enough records per
 * thread that the threads really overlap: without the lock, counts are
 * lost. */
#define HAMMER_THREADS 8
#define HAMMER_RECORDS_PER_THREAD 50000

struct record_race {
    struct zl_breaker *b;
    pthread_barrier_t *start;
};

static void *record_hammer(void *arg)
{
    struct record_race *r = arg;
    pthread_barrier_wait(r->start);
    for (int i = 0; i < HAMMER_RECORDS_PER_THREAD; i++)
        zl_breaker_record(r->b, i % 2 == 0, 5000);
    return NULL;
}

ZT_TEST(test_breaker_concurrent_records_are_all_counted)
{
    struct zl_breaker b;
    struct zl_breaker_opts o = test_opts(NULL);
    o.minimum_throughput = INT32_MAX; /* never opens: we count, not break */
    ZT_REQUIRE(zl_breaker_init(&b, "rpc:a", &o, NULL, 0) == 0);
    pthread_barrier_t start;
    ZT_REQUIRE(pthread_barrier_init(&start, NULL, HAMMER_THREADS) == 0);
    struct record_race r = {.b = &b, .start = &start};
    pthread_t th[HAMMER_THREADS];
    for (int i = 0; i < HAMMER_THREADS; i++)
        ZT_REQUIRE(pthread_create(&th[i], NULL, record_hammer, &r) == 0);
    for (int i = 0; i < HAMMER_THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    struct zl_breaker_snapshot s;
    zl_breaker_snapshot(&b, 5000, &s);
    ZT_EQ_INT(HAMMER_THREADS * HAMMER_RECORDS_PER_THREAD, s.calls);
    ZT_EQ_INT(HAMMER_THREADS * HAMMER_RECORDS_PER_THREAD / 2, s.failures);
    zl_breaker_destroy(&b);
}

struct probe_race {
    struct zl_breaker *b;
    pthread_barrier_t *start;
    atomic_int admitted;
};

static void *probe_racer(void *arg)
{
    struct probe_race *r = arg;
    pthread_barrier_wait(r->start);
    for (int i = 0; i < 100; i++)
        if (zl_breaker_allow(r->b, 6000 + i))
            atomic_fetch_add(&r->admitted, 1);
    return NULL;
}

ZT_TEST(test_breaker_concurrent_callers_get_exactly_one_probe)
{
    struct zl_breaker b;
    ZT_REQUIRE(open_breaker(&b, NULL) == 0);
    pthread_barrier_t start;
    ZT_REQUIRE(pthread_barrier_init(&start, NULL, HAMMER_THREADS) == 0);
    struct probe_race r = {.b = &b, .start = &start};
    atomic_init(&r.admitted, 0);
    pthread_t th[HAMMER_THREADS];
    for (int i = 0; i < HAMMER_THREADS; i++)
        ZT_REQUIRE(pthread_create(&th[i], NULL, probe_racer, &r) == 0);
    for (int i = 0; i < HAMMER_THREADS; i++)
        pthread_join(th[i], NULL);
    ZT_EQ_INT(1, atomic_load(&r.admitted));
    pthread_barrier_destroy(&start);
    zl_breaker_destroy(&b);
}

ZT_MAIN(test_breaker_stays_closed_below_minimum_throughput_even_at_full_failure,
        test_breaker_opens_when_failure_ratio_reached_not_below,
        test_breaker_old_failures_age_out_of_sampling_window,
        test_breaker_open_rejects_until_break_duration_elapses,
        test_breaker_half_open_admits_one_probe_at_a_time,
        test_breaker_probe_success_closes_with_empty_window,
        test_breaker_probe_failure_reopens_for_another_break,
        test_breaker_ignores_outcomes_recorded_while_open,
        test_breaker_reset_closes_from_open_and_isolated,
        test_breaker_init_rejects_bad_options_naming_the_field,
        test_breaker_callback_reports_each_transition_in_order,
        test_breaker_stale_clock_reading_cannot_shorten_the_break,
        test_breaker_state_names_and_prometheus_values,
        test_breaker_concurrent_records_are_all_counted,
        test_breaker_concurrent_callers_get_exactly_one_probe)
