/* Unit tests for common/backoff.c: exponential backoff with full jitter. */
#include "backoff.h"
#include "zltest.h"

#include <stdbool.h>

/* Samples drawn per attempt in the bound checks: enough that a delay
 * escaping its ceiling would show, small enough to run in milliseconds. */
#define SAMPLES_PER_ATTEMPT 500

ZT_TEST(test_backoff_init_rejects_bad_base_and_cap_naming_the_field)
{
    struct zl_backoff b;
    char err[256] = "";

    ZT_EQ_INT(-1, zl_backoff_init(&b, 0, 1000, 1, err, sizeof(err)));
    ZT_CHECK(strstr(err, "base_ms") != NULL);

    err[0] = '\0';
    ZT_EQ_INT(-1, zl_backoff_init(&b, -5, 1000, 1, err, sizeof(err)));
    ZT_CHECK(strstr(err, "base_ms") != NULL);

    err[0] = '\0';
    ZT_EQ_INT(-1, zl_backoff_init(&b, 100, 99, 1, err, sizeof(err)));
    ZT_CHECK(strstr(err, "cap_ms") != NULL);

    err[0] = '\0';
    ZT_EQ_INT(-1, zl_backoff_init(&b, 100, ZL_BACKOFF_CAP_MAX_MS + 1, 1, err,
                                  sizeof(err)));
    ZT_CHECK(strstr(err, "cap_ms") != NULL);

    /* The edges themselves are accepted. */
    ZT_EQ_INT(0, zl_backoff_init(&b, 1, 1, 1, err, sizeof(err)));
    ZT_EQ_INT(0, zl_backoff_init(&b, 1, ZL_BACKOFF_CAP_MAX_MS, 1, err,
                                 sizeof(err)));
    /* A NULL buffer with size 0 is allowed. */
    ZT_EQ_INT(-1, zl_backoff_init(&b, 0, 1, 1, NULL, 0));
}

ZT_TEST(test_backoff_ceiling_doubles_from_base_then_stays_at_cap)
{
    struct zl_backoff b;
    ZT_REQUIRE(zl_backoff_init(&b, 100, 10000, 42, NULL, 0) == 0);
    static const int64_t expected_ms[] = {100,   200,   400,   800,  1600,
                                          3200,  6400,  10000, 10000, 10000};
    for (uint32_t n = 0; n < sizeof(expected_ms) / sizeof(expected_ms[0]); n++)
        ZT_EQ_INT(expected_ms[n], zl_backoff_ceiling_ms(&b, n));
}

ZT_TEST(test_backoff_ceiling_is_overflow_safe_for_huge_attempts)
{
    struct zl_backoff b;
    ZT_REQUIRE(zl_backoff_init(&b, 1, ZL_BACKOFF_CAP_MAX_MS, 7, NULL, 0) == 0);
    ZT_EQ_INT(INT64_C(1) << 26, zl_backoff_ceiling_ms(&b, 26));
    /* 2^27 ms is past one day: capped. */
    ZT_EQ_INT(ZL_BACKOFF_CAP_MAX_MS, zl_backoff_ceiling_ms(&b, 27));
    static const uint32_t huge[] = {62, 63, 64, 65, 127, 200, 4096, UINT32_MAX};
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++)
        ZT_EQ_INT(ZL_BACKOFF_CAP_MAX_MS, zl_backoff_ceiling_ms(&b, huge[i]));

    /* A base equal to the cap is capped from the first attempt. */
    ZT_REQUIRE(zl_backoff_init(&b, 5000, 5000, 7, NULL, 0) == 0);
    ZT_EQ_INT(5000, zl_backoff_ceiling_ms(&b, 0));
    ZT_EQ_INT(5000, zl_backoff_ceiling_ms(&b, UINT32_MAX));

    /* A base near the cap must not overflow when doubled. */
    ZT_REQUIRE(zl_backoff_init(&b, ZL_BACKOFF_CAP_MAX_MS - 1,
                               ZL_BACKOFF_CAP_MAX_MS, 7, NULL, 0) == 0);
    ZT_EQ_INT(ZL_BACKOFF_CAP_MAX_MS - 1, zl_backoff_ceiling_ms(&b, 0));
    ZT_EQ_INT(ZL_BACKOFF_CAP_MAX_MS, zl_backoff_ceiling_ms(&b, 1));
}

ZT_TEST(test_backoff_delay_stays_within_zero_and_ceiling_for_attempts_0_to_200)
{
    struct zl_backoff b;
    ZT_REQUIRE(zl_backoff_init(&b, 50, 30000, 12345, NULL, 0) == 0);
    int out_of_bounds = 0;
    for (uint32_t n = 0; n <= 200; n++) {
        int64_t ceiling_ms = zl_backoff_ceiling_ms(&b, n);
        for (int i = 0; i < SAMPLES_PER_ATTEMPT; i++) {
            int64_t d = zl_backoff_delay_ms(&b, n);
            if (d < 0 || d > ceiling_ms) {
                if (out_of_bounds == 0)
                    ZT_FAIL_AT("attempt %u: delay %" PRId64
                               " outside [0, %" PRId64 "]",
                               n, d, ceiling_ms);
                out_of_bounds++;
            }
        }
    }
    ZT_EQ_INT(0, out_of_bounds);
}

ZT_TEST(test_backoff_delay_reaches_both_ends_of_the_range)
{
    /* Ceiling 1: the range [0, 1] is inclusive, so both must appear. */
    struct zl_backoff b;
    ZT_REQUIRE(zl_backoff_init(&b, 1, 1, 99, NULL, 0) == 0);
    int seen[2] = {0, 0};
    for (int i = 0; i < 200; i++) {
        int64_t d = zl_backoff_delay_ms(&b, 0);
        ZT_REQUIRE(d == 0 || d == 1);
        seen[d]++;
    }
    ZT_CHECK(seen[0] > 50);
    ZT_CHECK(seen[1] > 50);
}

ZT_TEST(test_backoff_jitter_spreads_delays_over_the_whole_range)
{
    struct zl_backoff b;
    ZT_REQUIRE(zl_backoff_init(&b, 100, 10000, 2024, NULL, 0) == 0);
    const uint32_t attempt = 20; /* ceiling is the cap, 10000 */
    enum { N = 4000, BINS = 10 };
    int bins[BINS] = {0};
    int64_t sum = 0, first = zl_backoff_delay_ms(&b, attempt);
    bool all_same = true;
    for (int i = 0; i < N; i++) {
        int64_t d = zl_backoff_delay_ms(&b, attempt);
        if (d != first)
            all_same = false;
        sum += d;
        int bin = (int)(d * BINS / 10001);
        bins[bin]++;
    }
    ZT_CHECK(!all_same);
    /* Full jitter: uniform, so the mean is near half the ceiling and every
     * tenth of the range is hit about N / 10 times. */
    int64_t mean = sum / N;
    ZT_CHECK(mean > 4500 && mean < 5500);
    for (int i = 0; i < BINS; i++) {
        if (bins[i] < N / BINS / 2 || bins[i] > N / BINS * 3 / 2)
            ZT_FAIL_AT("bin %d holds %d of %d samples", i, bins[i], N);
        ZT_CHECK(bins[i] > 0);
    }
}

ZT_TEST(test_backoff_same_seed_gives_same_sequence)
{
    struct zl_backoff a, b, c;
    ZT_REQUIRE(zl_backoff_init(&a, 10, 60000, 777, NULL, 0) == 0);
    ZT_REQUIRE(zl_backoff_init(&b, 10, 60000, 777, NULL, 0) == 0);
    ZT_REQUIRE(zl_backoff_init(&c, 10, 60000, 778, NULL, 0) == 0);
    int mismatches = 0, differs_from_other_seed = 0;
    for (uint32_t n = 0; n < 100; n++) {
        int64_t da = zl_backoff_delay_ms(&a, n % 16);
        int64_t db = zl_backoff_delay_ms(&b, n % 16);
        int64_t dc = zl_backoff_delay_ms(&c, n % 16);
        if (da != db)
            mismatches++;
        if (da != dc)
            differs_from_other_seed++;
    }
    ZT_EQ_INT(0, mismatches);
    ZT_CHECK(differs_from_other_seed > 50);
}

ZT_TEST(test_backoff_seed_zero_seeds_each_struct_differently)
{
    struct zl_backoff a, b;
    ZT_REQUIRE(zl_backoff_init(&a, 10, 60000, 0, NULL, 0) == 0);
    ZT_REQUIRE(zl_backoff_init(&b, 10, 60000, 0, NULL, 0) == 0);
    /* Same clocks and pid, different addresses: different sequences. */
    ZT_CHECK(a.rng_state != b.rng_state);
    int differ = 0;
    for (int i = 0; i < 20; i++)
        if (zl_backoff_delay_ms(&a, 12) != zl_backoff_delay_ms(&b, 12))
            differ++;
    ZT_CHECK(differ > 10);
}

ZT_MAIN(test_backoff_init_rejects_bad_base_and_cap_naming_the_field,
        test_backoff_ceiling_doubles_from_base_then_stays_at_cap,
        test_backoff_ceiling_is_overflow_safe_for_huge_attempts,
        test_backoff_delay_stays_within_zero_and_ceiling_for_attempts_0_to_200,
        test_backoff_delay_reaches_both_ends_of_the_range,
        test_backoff_jitter_spreads_delays_over_the_whole_range,
        test_backoff_same_seed_gives_same_sequence,
        test_backoff_seed_zero_seeds_each_struct_differently)
