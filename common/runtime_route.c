/* runtime_route.c: where a finished work goes (its output, a retry tier or
 * the DLQ), produced with the headers a replay needs and waited for, and the
 * state table's record of retries and dead letters. */
#include "runtime_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"

/* Bound on serving the reports a fatally failed producer still owes once
 * purged: librdkafka reports a purge at once, this is a margin. */
#define PURGE_REPORTS_WAIT_MS 5000

/* @locality main thread: called from rd_kafka_poll(producer). */
void rt_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct rt *rt = opaque;
    struct zl_work *w = m->_private;
    if (w == NULL)
        return;
    struct rt_work *rw = rt_work_of(w);
    rt->pending_deliveries--;
    rw->batch->pending--;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rw->delivery = DELIVERY_FAILED;
        snprintf(w->error, sizeof(w->error), "delivery to %s failed: %s", rd_kafka_topic_name(m->rkt),
                 rd_kafka_err2str(m->err));
        return;
    }
    rw->delivery = DELIVERY_DONE;
    rw->delivered_partition = m->partition;
    rw->delivered_offset = m->offset;
}

static void add_text_header(rd_kafka_headers_t *h, const char *name, const char *value)
{
    rd_kafka_header_remove(h, name);
    rd_kafka_header_add(h, name, -1, value, -1);
}

static void add_int_header(rd_kafka_headers_t *h, const char *name, int64_t v)
{
    char buf[ZL_INT64_DEC_SIZE];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    add_text_header(h, name, buf);
}

/* Produces value to topic keyed by the original key, with headers h (now
 * owned by librdkafka on success). Returns 0, or -1 with w->error. */
static int produce(struct rt *rt, struct zl_work *w, const char *topic, const void *value, size_t len,
                   rd_kafka_headers_t *h)
{
    struct rt_work *rw = rt_work_of(w);
    snprintf(rw->produced_topic, sizeof(rw->produced_topic), "%s", topic);
    if (rt->cfg.test_fail_produce_batch > 0 && rw->batch->seq == rt->cfg.test_fail_produce_batch) {
        /* ZL_TEST_FAIL_PRODUCE_BATCH: nothing reaches the broker, and the
         * batch learns it only when it finishes, behind younger batches. */
        rd_kafka_headers_destroy(h);
        rw->delivery = DELIVERY_FAILED;
        snprintf(w->error, sizeof(w->error), "produce to %s: failed on purpose (ZL_TEST_FAIL_PRODUCE_BATCH)", topic);
        return -1;
    }
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rt->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(w->msg->key, w->msg->key_len),
        RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
        RD_KAFKA_V_OPAQUE(w), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(h);
        rw->delivery = DELIVERY_FAILED;
        snprintf(w->error, sizeof(w->error), "produce to %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    rw->delivery = DELIVERY_PENDING;
    rt->pending_deliveries++;
    rw->batch->pending++;
    return 0;
}

static rd_kafka_headers_t *copy_headers(const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *src = NULL;
    if (rd_kafka_message_headers(m, &src) == RD_KAFKA_RESP_ERR_NO_ERROR && src != NULL)
        return rd_kafka_headers_copy(src);
    return rd_kafka_headers_new(8);
}

static void produce_output(struct rt *rt, struct zl_work *w)
{
    char buf[OUT_BYTES_MAX];
    size_t len = 0;
    char err[ZL_ERRSTR_SIZE];
    if (zl_event_encode(&w->out, buf, sizeof(buf), &len, err, sizeof(err)) != 0) {
        /* The stage built an invalid event: a bug, but the message must not
         * be lost or block the partition. */
        snprintf(w->error, sizeof(w->error), "output event invalid: %s", err);
        w->result = ZL_PERMANENT;
        rt_work_of(w)->phase = PH_DLQ;
        return;
    }
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    add_text_header(h, "traceparent", w->traceparent);
    add_text_header(h, "zl-attempt", "0");
    produce(rt, w, rt->out_topic, buf, len, h);
}

/* The coordinates of the message's first consumption, carried through the
 * retry tiers so the DLQ names the topic a replay must go back to. */
static void origin(const struct rt *rt, const struct zl_work *w, char *topic, size_t topic_size, char *part,
                   size_t part_size, char *off, size_t off_size)
{
    if (zl_kafka_header(w->msg, "zl-origin-topic", topic, topic_size) != 0 ||
        zl_kafka_header(w->msg, "zl-origin-partition", part, part_size) != 0 ||
        zl_kafka_header(w->msg, "zl-origin-offset", off, off_size) != 0) {
        snprintf(topic, topic_size, "%s", w->tier < 0 ? rd_kafka_topic_name(w->msg->rkt) : rt->in_topic);
        snprintf(part, part_size, "%" PRId32, w->msg->partition);
        snprintf(off, off_size, "%" PRId64, w->msg->offset);
    }
}

/* A defer's own wait, at least ZL_DEFER_MIN_MS. */
static int64_t defer_wait_ms(const struct zl_work *w)
{
    return w->defer_ms > ZL_DEFER_MIN_MS ? w->defer_ms : ZL_DEFER_MIN_MS;
}

/* The tier a retry goes to. A transient failure walks the tiers by its own
 * count of transient attempts; a defer steps one tier on from where it is
 * and then cycles in the last. Counting them apart keeps a long wait (say
 * for confirmations, deferred into the last tier) from spending the
 * transient budget: one timeout after many defers is a first attempt. */
static int next_tier(const struct rt *rt, const struct zl_work *w)
{
    if (w->result == ZL_DEFER && w->defer_ms > 0) {
        /* The stage knows when to look again (a block due): the shortest
         * tier that covers it, however many defers came before, so a wait
         * for the next block never lands in a minute-long tier. */
        int64_t want = defer_wait_ms(w);
        for (int i = 0; i < rt->ntiers; i++)
            if (rt->tier_delay_ms[i] >= want)
                return i;
        return rt->ntiers - 1;
    }
    int tier = w->result == ZL_DEFER ? w->tier + 1 : w->attempt;
    return tier < rt->ntiers ? tier : rt->ntiers - 1;
}

/* When a retry in tier is due: the stage's own estimate when it gave one,
 * never later than the tier's delay (the consumer holds a due beyond the
 * longest tier to the tier's delay anyway: rt_retry_due). */
static int64_t retry_delay_ms(const struct rt *rt, const struct zl_work *w, int tier)
{
    if (w->result == ZL_DEFER && w->defer_ms > 0 && defer_wait_ms(w) < rt->tier_delay_ms[tier])
        return defer_wait_ms(w);
    return rt->tier_delay_ms[tier];
}

static void produce_retry(struct rt *rt, struct zl_work *w)
{
    int tier = next_tier(rt, w);
    rd_kafka_headers_t *h = copy_headers(w->msg);
    char otopic[ZL_TOPIC_NAME_MAX], opart[ZL_INT64_DEC_SIZE], ooff[ZL_INT64_DEC_SIZE];
    origin(rt, w, otopic, sizeof(otopic), opart, sizeof(opart), ooff, sizeof(ooff));
    add_text_header(h, "zl-origin-topic", otopic);
    add_text_header(h, "zl-origin-partition", opart);
    add_text_header(h, "zl-origin-offset", ooff);
    add_text_header(h, "traceparent", w->traceparent);
    add_int_header(h, "zl-attempt", w->attempt + (w->result == ZL_DEFER ? 0 : 1));
    add_int_header(h, "zl-defers", w->defers + (w->result == ZL_DEFER && !w->queued ? 1 : 0));
    add_int_header(h, "zl-retry-tier", tier);
    add_int_header(h, "zl-retry-due-at", zl_wall_ms() + retry_delay_ms(rt, w, tier));
    add_text_header(h, "zl-last-error-class", zl_class_name(w->result));
    add_text_header(h, "zl-last-error", w->error);
    produce(rt, w, rt->retry_topics[tier], w->msg->payload, w->msg->len, h);
}

static void produce_dlq(struct rt *rt, struct zl_work *w)
{
    rd_kafka_headers_t *h = copy_headers(w->msg);
    char otopic[ZL_TOPIC_NAME_MAX], opart[ZL_INT64_DEC_SIZE], ooff[ZL_INT64_DEC_SIZE], ts[ZL_INT64_DEC_SIZE],
        now[ZL_RFC3339_MS_SIZE], replay[ZL_INT64_DEC_SIZE];
    origin(rt, w, otopic, sizeof(otopic), opart, sizeof(opart), ooff, sizeof(ooff));
    rd_kafka_timestamp_type_t tstype;
    int64_t msg_ts = rd_kafka_message_timestamp(w->msg, &tstype);
    snprintf(ts, sizeof(ts), "%" PRId64, msg_ts);
    if (zl_kafka_header(w->msg, "zl-dlq-replay-count", replay, sizeof(replay)) != 0)
        snprintf(replay, sizeof(replay), "0");
    add_text_header(h, "zl-dlq-stage", rt->stage->name);
    add_text_header(h, "zl-dlq-error-class", zl_class_name(w->result));
    add_text_header(h, "zl-dlq-error", w->error[0] ? w->error : "(no reason given)");
    add_int_header(h, "zl-dlq-attempts", w->attempt + 1);
    add_text_header(h, "zl-dlq-original-topic", otopic);
    add_text_header(h, "zl-dlq-original-partition", opart);
    add_text_header(h, "zl-dlq-original-offset", ooff);
    add_text_header(h, "zl-dlq-original-timestamp", ts);
    add_text_header(h, "zl-dlq-failed-at", zl_rfc3339_now(now, sizeof(now)));
    add_text_header(h, "zl-dlq-consumer-group", rt->group_id);
    add_text_header(h, "zl-dlq-replay-count", replay);
    add_text_header(h, "traceparent", w->traceparent);
    produce(rt, w, rt->dlq_topic, w->msg->payload, w->msg->len, h);
}

/* Waits for batch b's delivery reports, bounded by the delivery timeout
 * plus a margin (librdkafka reports a failure by then). Reports of younger
 * batches are served on the way. */
static void wait_deliveries(struct rt *rt, struct rt_batch *b)
{
    int64_t deadline = zl_now_ms() + rt->cfg.delivery_timeout_ms + 5000;
    while (b->pending > 0 && zl_now_ms() < deadline)
        rd_kafka_poll(rt->producer, 50 /* ms */);
}

/* The producer had a fatal error (e.g. fenced): every report it still owes,
 * this batch's and younger ones', is purged and served as a failure, and a
 * new producer takes its place. */
static void recreate_producer(struct rt *rt)
{
    char reason[256];
    rd_kafka_fatal_error(rt->producer, reason, sizeof(reason));
    zl_log(ZL_LOG_ERROR, NULL, "producer fatal error, recreating: %s", reason);
    rd_kafka_purge(rt->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    int64_t deadline = zl_now_ms() + PURGE_REPORTS_WAIT_MS;
    while (rt->pending_deliveries > 0 && zl_now_ms() < deadline)
        rd_kafka_poll(rt->producer, 50 /* ms */);
    rd_kafka_destroy(rt->producer);
    /* Reports never served are failures too: the works are re-done. */
    for (int k = 0; k < rt->ring_count; k++) {
        struct rt_batch *y = rt_inflight_at(rt, k);
        for (size_t i = 0; i < y->n; i++)
            if (y->store[i].delivery == DELIVERY_PENDING) {
                y->store[i].delivery = DELIVERY_FAILED;
                snprintf(y->store[i].pub.error, sizeof(y->store[i].pub.error), "producer recreated: %s", reason);
            }
        y->pending = 0;
    }
    rt->pending_deliveries = 0;
    char err[ZL_ERRSTR_SIZE];
    rt->producer = zl_kafka_producer_new(rt->cfg.kafka_brokers, &rt->kprops, rt->cfg.delivery_timeout_ms, rt_dr_cb, rt,
                                         err, sizeof(err));
    ZL_ASSERT(rt->producer != NULL); /* the same config worked at startup */
}

/* ------------------------------------------------------------ the batch */

/* Failures that exhausted their budget go to the DLQ instead of a tier. */
void rt_route_failures(struct rt *rt, struct zl_work **ws, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct zl_work *w = ws[i];
        struct rt_work *rw = rt_work_of(w);
        if (rw->phase != PH_RETRY)
            continue;
        /* attempt = transient failures so far that went to a tier; the
         * first try plus one per tier is the budget. */
        bool spent = w->result == ZL_DEFER ? !w->queued && w->defers + 1 >= rt->cfg.defers_max
                                           : w->attempt >= rt->ntiers;
        if (spent) {
            char why[ZL_ERRSTR_SIZE];
            snprintf(why, sizeof(why), "%s after %d %s: %s", zl_class_name(w->result),
                     w->result == ZL_DEFER ? w->defers + 1 : w->attempt + 1,
                     w->result == ZL_DEFER ? "defers" : "attempts", w->error);
            memcpy(w->error, why, sizeof(w->error));
            rw->phase = PH_DLQ;
        }
    }
}

/* Step 5: publish everything batch b produces; rt_await_deliveries waits. */
void rt_produce_all(struct rt *rt, struct rt_batch *b)
{
    zl_fault_point("before_produce");
    for (size_t i = 0; i < b->n; i++) {
        struct zl_work *w = b->ws[i];
        struct rt_work *rw = rt_work_of(w);
        if (rw->phase == PH_OK && rw->has_out)
            produce_output(rt, w);
        if (rw->phase == PH_RETRY)
            produce_retry(rt, w);
        if (rw->phase == PH_DLQ) /* also an invalid output from produce_output */
            produce_dlq(rt, w);
    }
    rd_kafka_poll(rt->producer, 0 /* non-blocking: serve reports already in */);
}

bool rt_await_deliveries(struct rt *rt, struct rt_batch *b)
{
    wait_deliveries(rt, b);
    if (rd_kafka_fatal_error(rt->producer, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR)
        recreate_producer(rt);
    bool ok = true;
    for (size_t i = 0; i < b->n; i++) {
        struct zl_work *w = b->ws[i];
        struct rt_work *rw = rt_work_of(w);
        if (rw->held)
            continue; /* fetched again: what became of this copy does not count */
        if (rw->delivery == DELIVERY_PENDING || rw->delivery == DELIVERY_FAILED) {
            if (ok)
                rt_enter_outage(rt, rw->delivery == DELIVERY_PENDING ? "delivery report timed out" : w->error);
            rw->phase = PH_UNFINISHED;
            ok = false;
        }
    }
    return ok;
}

/* Step 6 bookkeeping in the state table for retries and dead letters. */
bool rt_record_failures(struct rt *rt, struct zl_work **ws, size_t n)
{
    char err[ZL_ERRSTR_SIZE];
    if (rt->stage->observe)
        return true; /* not the observer's row (runtime.h) */
    for (size_t i = 0; i < n; i++) {
        struct zl_work *w = ws[i];
        struct rt_work *rw = rt_work_of(w);
        if (!rw->decoded || !w->row.found || rw->delivery != DELIVERY_DONE)
            continue;
        zl_class c = ZL_OK;
        if (rw->phase == PH_RETRY) {
            int tier = next_tier(rt, w);
            c = zl_state_record_failure(&rt->pg, w->in.deposit_id, w->result, w->error, rt->tier_delay_ms[tier], err,
                                        sizeof(err));
        } else if (rw->phase == PH_DLQ && w->result != ZL_POISON) {
            /* Poison is not trusted to name its deposit: the row stays as it
             * is, and a valid message for it still goes through. */
            bool marked = false;
            c = zl_state_mark_dead(&rt->pg, w->in.deposit_id, w->result, w->error, rt->dlq_topic,
                                   rw->delivered_partition, rw->delivered_offset, rt->past_states, w->in.block_hash,
                                   &marked, err, sizeof(err));
            if (c == ZL_OK && !marked) {
                struct zl_log_ctx ctx;
                zl_work_log_ctx(w, &ctx);
                zl_log(ZL_LOG_WARN, &ctx, "dead letter at %s [%" PRId32 "] @%" PRId64 " left the row as it is: the"
                       " row moved on (finished, terminal or re-included in another block)", rt->dlq_topic,
                       rw->delivered_partition, rw->delivered_offset);
            }
        }
        if (c == ZL_OUTAGE) {
            rt_enter_outage(rt, err);
            return false;
        }
    }
    return true;
}
