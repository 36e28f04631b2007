/* blockclock.c: see blockclock.h. */
#include "blockclock.h"

/* The margin past a block's due time: the node's own lateness in mining
 * and answering. A tenth of a block time (100 ms on 1 s blocks, 75 ms on
 * BSC, 1.2 s on Ethereum); looking exactly at the due time would often
 * find the block not there yet and wait a whole block more. */
#define MARGIN_DIVISOR 10

void zl_block_clock_init(struct zl_block_clock *c, int64_t block_ms)
{
    c->block_ms = block_ms < 1 ? 1 : block_ms;
    c->head = 0;
    c->seen_ms = 0;
}

void zl_block_clock_saw(struct zl_block_clock *c, uint64_t head, int64_t now_ms)
{
    if (head > c->head) {
        c->head = head;
        c->seen_ms = now_ms;
    }
}

int64_t zl_block_clock_wait_ms(const struct zl_block_clock *c, int64_t blocks, int64_t now_ms)
{
    if (blocks < 1)
        blocks = 1;
    int64_t whole = blocks * c->block_ms;
    if (c->seen_ms <= 0 || now_ms < c->seen_ms)
        return whole;
    int64_t since = now_ms - c->seen_ms;
    if (since >= c->block_ms)
        return whole;
    return whole - since + c->block_ms / MARGIN_DIVISOR;
}
