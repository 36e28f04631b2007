/* Unit tests for common/blockclock.c: when the next block is due. */
#include "blockclock.h"
#include "zltest.h"

/* The wait for `blocks` at now_ms on a clock of block_ms that saw one head
 * at seen_ms (0: none). */
static int64_t wait_ms(int64_t block_ms, int64_t seen_ms, int64_t blocks, int64_t now_ms)
{
    struct zl_block_clock c;
    zl_block_clock_init(&c, block_ms);
    if (seen_ms > 0)
        zl_block_clock_saw(&c, 10, seen_ms);
    return zl_block_clock_wait_ms(&c, blocks, now_ms);
}

ZT_TEST(test_a_clock_that_saw_no_head_waits_whole_block_times)
{
    ZT_EQ_INT(1000, wait_ms(1000, 0, 1, 5000));
    ZT_EQ_INT(2000, wait_ms(1000, 0, 2, 5000));
    ZT_EQ_INT(1000, wait_ms(1000, 0, 0, 5000)); /* at least one block */
}

ZT_TEST(test_the_wait_counts_from_when_the_head_came_not_from_now)
{
    /* 900 ms into the head's interval: the next block is due in 100 ms,
     * plus the margin; N blocks from now (the old estimate) would be 1,000. */
    ZT_EQ_INT(200, wait_ms(1000, 5000, 1, 5900));
    ZT_EQ_INT(1200, wait_ms(1000, 5000, 2, 5900));
    /* Right after the head came: the whole interval, plus the margin. */
    ZT_EQ_INT(1100, wait_ms(1000, 5000, 1, 5000));
}

ZT_TEST(test_an_old_or_repeated_head_keeps_its_first_sighting)
{
    struct zl_block_clock c;
    zl_block_clock_init(&c, 1000);
    zl_block_clock_saw(&c, 10, 5000);
    zl_block_clock_saw(&c, 10, 5600); /* the same head again */
    zl_block_clock_saw(&c, 9, 5700);  /* an endpoint behind */
    ZT_EQ_INT(400, zl_block_clock_wait_ms(&c, 1, 5700));
    zl_block_clock_saw(&c, 11, 6050); /* the next head starts a new interval */
    ZT_EQ_INT(1100, zl_block_clock_wait_ms(&c, 1, 6050));
}

ZT_TEST(test_a_head_older_than_a_block_gives_the_old_estimate_never_a_spin)
{
    /* The next block is late (or the chain stalled): looking every margin
     * would spin, so whole block times from now, as before the clock. */
    ZT_EQ_INT(1000, wait_ms(1000, 5000, 1, 6000));
    ZT_EQ_INT(2000, wait_ms(1000, 5000, 2, 9000));
    /* A clock that went backwards (never with zl_now_ms, but cheap). */
    ZT_EQ_INT(1000, wait_ms(1000, 5000, 1, 4000));
}

ZT_TEST(test_the_wait_never_exceeds_the_old_estimate_by_more_than_the_margin)
{
    struct zl_block_clock c;
    zl_block_clock_init(&c, 750); /* BSC */
    zl_block_clock_saw(&c, 100, 1000);
    for (int64_t now = 1000; now < 4000; now += 7)
        for (int64_t blocks = 1; blocks <= 3; blocks++) {
            int64_t w = zl_block_clock_wait_ms(&c, blocks, now);
            ZT_CHECK(w > 0);
            ZT_CHECK(w <= blocks * 750 + 75);
        }
    /* A nonsense block time is one ms, not a division by zero. */
    ZT_EQ_INT(1, wait_ms(0, 0, 1, 10));
}

ZT_MAIN(test_a_clock_that_saw_no_head_waits_whole_block_times,
        test_the_wait_counts_from_when_the_head_came_not_from_now,
        test_an_old_or_repeated_head_keeps_its_first_sighting,
        test_a_head_older_than_a_block_gives_the_old_estimate_never_a_spin,
        test_the_wait_never_exceeds_the_old_estimate_by_more_than_the_margin)
