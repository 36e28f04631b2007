/* runtime_inflight.c: batches in flight. A batch's steps 1-5 (runtime.h)
 * end with its outputs produced; instead of waiting there for the broker's
 * reports, the loop polls the next batch and works on it while they come,
 * up to ZL_BATCHES_INFLIGHT_MAX batches at once. Each batch then finishes
 * (step 6: its reports, retries and dead letters recorded, offsets stored)
 * in poll order, so a partition's offsets still move forward only over
 * delivered messages.
 *
 * What overlapping must not change, and how it does not:
 *   - offsets only after delivery, in order: batches finish oldest first;
 *     a batch that rewinds a partition (an undelivered message) holds the
 *     younger batches' copies of it (rt_inflight_hold): they were fetched
 *     before the seek and come again, so they store nothing past it;
 *   - one deposit acted on by one batch at a time: a batch with a key (the
 *     deposit id) that a batch in flight also has first finishes every batch
 *     in flight (the hold), so its rows are read after the earlier batch's
 *     retries and dead letters are recorded, as without overlap;
 *   - outages, revokes, idle polls and shutdown finish every batch in flight
 *     first (rt_inflight_finish_all).
 * @locality main thread (the revoke callback too: served by consumer_poll).
 */
#include "runtime_int.h"

#include <stdlib.h>
#include <string.h>

/* Slots in use: the setting (bounded by the config table's range). */
static int ring_size(const struct rt *rt)
{
    return (int)rt->cfg.batches_inflight_max;
}

static struct rt_batch *slot(struct rt *rt, int k)
{
    return &rt->ring[(rt->ring_head + k) % ring_size(rt)];
}

struct rt_batch *rt_inflight_at(struct rt *rt, int k)
{
    ZL_ASSERT(k >= 0 && k < rt->ring_count);
    return slot(rt, k);
}

int rt_inflight_init(struct rt *rt)
{
    size_t cap = (size_t)rt->cfg.batch_size_max;
    ZL_ASSERT(ring_size(rt) >= 1 && ring_size(rt) <= BATCHES_INFLIGHT_LIMIT);
    for (int k = 0; k < ring_size(rt); k++) {
        struct rt_batch *b = &rt->ring[k];
        b->store = calloc(cap, sizeof(*b->store));
        b->ws = calloc(cap, sizeof(*b->ws));
        b->keys = calloc(cap, sizeof(*b->keys));
        if (b->store == NULL || b->ws == NULL || b->keys == NULL) {
            rt_inflight_free(rt);
            return -1;
        }
        for (size_t i = 0; i < cap; i++)
            b->ws[i] = &b->store[i].pub;
    }
    rt->ring_head = 0;
    rt->ring_count = 0;
    return 0;
}

void rt_inflight_free(struct rt *rt)
{
    for (int k = 0; k < BATCHES_INFLIGHT_LIMIT; k++) {
        free(rt->ring[k].store);
        free(rt->ring[k].ws);
        free(rt->ring[k].keys);
        memset(&rt->ring[k], 0, sizeof(rt->ring[k]));
    }
}

struct rt_batch *rt_inflight_next(struct rt *rt)
{
    ZL_ASSERT(rt->ring_count < ring_size(rt)); /* rt_inflight_run leaves a slot free */
    return slot(rt, rt->ring_count);
}

/* FNV-1a: the hold compares keys by hash; a collision only holds a batch
 * that needed no holding. */
static uint64_t key_hash(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static int by_hash(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void index_keys(struct rt_batch *b)
{
    b->nkeys = 0;
    for (size_t i = 0; i < b->n; i++) {
        const rd_kafka_message_t *m = b->ws[i]->msg;
        if (m->key != NULL)
            b->keys[b->nkeys++] = key_hash(m->key, m->key_len);
    }
    qsort(b->keys, b->nkeys, sizeof(*b->keys), by_hash);
}

/* Whether a batch in flight holds one of b's keys (b's keys indexed). */
static bool shares_a_deposit(struct rt *rt, const struct rt_batch *b)
{
    for (int k = 0; k < rt->ring_count; k++) {
        const struct rt_batch *y = slot(rt, k);
        for (size_t i = 0; i < b->nkeys; i++)
            if (bsearch(&b->keys[i], y->keys, y->nkeys, sizeof(*y->keys), by_hash) != NULL)
                return true;
    }
    return false;
}

static void finish_oldest(struct rt *rt)
{
    ZL_ASSERT(rt->ring_count > 0);
    struct rt_batch *b = slot(rt, 0);
    /* Off the ring first: the younger batches are the ones a rewind holds. */
    rt->ring_head = (rt->ring_head + 1) % ring_size(rt);
    rt->ring_count--;
    rt_batch_back(rt, b);
    for (size_t i = 0; i < b->n; i++)
        rd_kafka_message_destroy(b->ws[i]->msg);
    b->n = 0;
    b->nkeys = 0;
    zl_metric_gauge_set(rt->m_inflight, (double)rt->ring_count);
}

void rt_inflight_finish_all(struct rt *rt)
{
    while (rt->ring_count > 0)
        finish_oldest(rt);
}

void rt_inflight_run(struct rt *rt, struct rt_batch *b)
{
    b->seq = ++rt->polled;
    b->pending = 0;
    for (size_t i = 0; i < b->n; i++)
        b->store[i].batch = b;
    index_keys(b);
    if (rt->ring_count > 0 && shares_a_deposit(rt, b)) {
        /* The same deposit in flight: its earlier batch records its retry
         * or dead letter only once delivered, and this batch must read the
         * row after that, as it would without overlap. Rare (a redelivery,
         * a retry beside a new event): the overlap is given up once. */
        zl_metric_counter_add(rt->m_holds, 1);
        rt_inflight_finish_all(rt);
    }
    if (rt->outage) {
        /* Found by an older batch's finish (a revoke served while b was
         * polled, or the hold above): b waits for the outage's end like a
         * batch it stopped. */
        for (size_t i = 0; i < b->n; i++) {
            const rd_kafka_message_t *m = b->store[i].pub.msg;
            if (b->store[i].held)
                continue;
            /* a partition revoked meanwhile is no longer ours to rewind */
            b->store[i].phase =
                rt_part_find(rt, rd_kafka_topic_name(m->rkt), m->partition) != NULL ? PH_UNFINISHED : PH_SKIP;
        }
    } else {
        rt_batch_front(rt, b);
    }
    rt->ring_count++; /* b was the slot after the youngest */
    rt->filling = NULL;
    zl_metric_gauge_set(rt->m_inflight, (double)rt->ring_count);
    while (rt->ring_count >= rt->cfg.batches_inflight_max)
        finish_oldest(rt);
}

void rt_inflight_hold(struct rt *rt, const char *topic, int32_t partition)
{
    for (int k = 0; k <= rt->ring_count; k++) {
        struct rt_batch *y = k < rt->ring_count ? slot(rt, k) : rt->filling;
        if (y == NULL)
            continue;
        for (size_t i = 0; i < y->n; i++) {
            struct rt_work *rw = &y->store[i];
            if (rw->pub.msg->partition == partition && strcmp(rd_kafka_topic_name(rw->pub.msg->rkt), topic) == 0) {
                rw->held = true;
                rw->phase = PH_SKIP;
            }
        }
    }
}

void rt_inflight_metrics(struct rt *rt, const char *labels)
{
    zl_metrics_describe(rt->metrics, "zl_batch_holds_total", ZL_METRIC_COUNTER,
                        "poll batches that waited for the batches in flight because they shared a deposit");
    zl_metrics_describe(rt->metrics, "zl_batches_inflight", ZL_METRIC_GAUGE,
                        "poll batches produced and not yet finished (offsets not stored)");
    rt->m_holds = zl_metrics_counter_handle(rt->metrics, "zl_batch_holds_total", labels);
    rt->m_inflight = zl_metrics_gauge_handle(rt->metrics, "zl_batches_inflight", labels);
}
