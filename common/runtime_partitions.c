/* runtime_partitions.c: the partitions a worker owns (rebalances, delay-tier
 * pauses), outages (pause everything, probe, resume) and the stall watch. */
#include "runtime_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"

struct part *rt_part_find(struct rt *rt, const char *topic, int32_t partition)
{
    for (int i = 0; i < rt->nparts; i++)
        if (rt->parts[i].partition == partition && strcmp(rt->parts[i].topic, topic) == 0)
            return &rt->parts[i];
    return NULL;
}

void rt_pause_one(struct rt *rt, const char *topic, int32_t partition, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(l, topic, partition);
    rd_kafka_pause_partitions(rt->consumer, l);
    if (offset >= 0) {
        /* Re-fetch from the first unfinished message when resumed; seeking
         * also drops what librdkafka had prefetched after it. */
        tp->offset = offset;
        rd_kafka_error_t *e = rd_kafka_seek_partitions(rt->consumer, l, 5000);
        if (e != NULL) {
            zl_log(ZL_LOG_WARN, NULL, "seek %s[%d] to %" PRId64 ": %s", topic, partition, offset,
                   rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void resume_one(struct rt *rt, const char *topic, int32_t partition)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition);
    rd_kafka_resume_partitions(rt->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
}

/* Logs and frees the error of an incremental (un)assign, if any: the
 * group's next rebalance is what repairs it. */
static void log_incremental(const char *what, rd_kafka_error_t *e)
{
    if (e == NULL)
        return;
    zl_log(ZL_LOG_ERROR, NULL, "incremental %s: %s", what, rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
}

/* @locality main thread: librdkafka serves rebalances inside consumer_poll. */
void rt_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    struct rt *rt = opaque;
    /* Eager (roundrobin, the default) hands over the whole assignment and
     * takes it all back; cooperative (cooperative-sticky) only the change. */
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) {
            if (rt_part_find(rt, parts->elems[i].topic, parts->elems[i].partition) != NULL)
                continue;
            if (rt->nparts >= PARTITIONS_MAX) {
                zl_log(ZL_LOG_ERROR, NULL, "more than %d partitions assigned: raise PARTITIONS_MAX",
                       PARTITIONS_MAX);
                break;
            }
            struct part *p = &rt->parts[rt->nparts++];
            snprintf(p->topic, sizeof(p->topic), "%s", parts->elems[i].topic);
            p->partition = parts->elems[i].partition;
            p->paused_until_ms = 0;
            p->seen_position = RD_KAFKA_OFFSET_INVALID;
            p->seen_since_ms = zl_now_ms();
            p->clamped_offset = -1;
            p->clamped_due_ms = 0;
        }
        if (coop) {
            log_incremental("assign", rd_kafka_incremental_assign(rk, parts));
        } else {
            rd_kafka_resp_err_t ae = rd_kafka_assign(rk, parts);
            if (ae != RD_KAFKA_RESP_ERR_NO_ERROR)
                zl_log(ZL_LOG_ERROR, NULL, "assign: %s", rd_kafka_err2str(ae));
        }
        /* New partitions during an outage stay paused with the rest. */
        if (rt->outage)
            rd_kafka_pause_partitions(rk, parts);
        zl_log(ZL_LOG_INFO, NULL, "assigned %d partitions (now %d)", parts->cnt, rt->nparts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        /* Batches in flight finish first (their deliveries, their offsets):
         * commit what was stored so the next owner starts after it. The
         * batch being polled is not in flight yet: its messages of these
         * partitions are skipped when it is decoded (rt_part_find). */
        if (rt->ring_count > 0)
            zl_log(ZL_LOG_INFO, NULL, "revoke: finishing %d batch(es) in flight before giving up %d partitions",
                   rt->ring_count, parts->cnt);
        rt_inflight_finish_all(rt);
        rd_kafka_commit(rk, NULL, 0 /* sync */);
        for (int i = 0; i < parts->cnt; i++) {
            struct part *p = rt_part_find(rt, parts->elems[i].topic, parts->elems[i].partition);
            if (p != NULL)
                *p = rt->parts[--rt->nparts];
        }
        if (coop) {
            log_incremental("unassign", rd_kafka_incremental_unassign(rk, parts));
        } else {
            rd_kafka_assign(rk, NULL);
            rt->nparts = 0; /* eager: everything was revoked */
        }
        zl_log(ZL_LOG_INFO, NULL, "revoked %d partitions (now %d)", parts->cnt, rt->nparts);
    } else {
        zl_log(ZL_LOG_ERROR, NULL, "rebalance error: %s", rd_kafka_err2str(err));
        rd_kafka_assign(rk, NULL);
        rt->nparts = 0;
    }
}

void rt_enter_outage(struct rt *rt, const char *reason)
{
    if (!rt->outage)
        zl_log(ZL_LOG_WARN, NULL, "outage: pausing consumption: %s", reason);
    rt->outage = true;
    snprintf(rt->outage_reason, sizeof(rt->outage_reason), "%s", reason);
}

static zl_class probe(struct rt *rt, char *err, size_t err_size)
{
    zl_class c = zl_pg_ensure(&rt->pg, err, err_size);
    if (c == ZL_OK)
        c = zl_pg_exec(&rt->pg, "SELECT 1", err, err_size);
    zl_health_set_dep(rt->health, "postgres", c == ZL_OK, c == ZL_OK ? "up" : "down", c == ZL_OK ? "" : err);
    if (c != ZL_OK)
        return c;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rt->producer, 0, NULL, &md, 2000);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    zl_health_set_dep(rt->health, "kafka", e == RD_KAFKA_RESP_ERR_NO_ERROR, e == RD_KAFKA_RESP_ERR_NO_ERROR ? "up" : "down",
                      e == RD_KAFKA_RESP_ERR_NO_ERROR ? "" : rd_kafka_err2str(e));
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, err_size, "kafka metadata: %s", rd_kafka_err2str(e));
        return ZL_OUTAGE;
    }
    if (rt->stage->probe != NULL)
        return rt->stage->probe(rt->stage->ctx, err, err_size);
    return ZL_OK;
}

/* Pauses every partition, probes with backoff (still polling, so the group
 * keeps us and rebalances are served), and resumes when all answer. */
void rt_ride_out_outage(struct rt *rt)
{
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(rt->consumer, &a) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_pause_partitions(rt->consumer, a);
        rd_kafka_topic_partition_list_destroy(a);
    }
    zl_health_set_paused(rt->health, true, rt->outage_reason);
    zl_metric_gauge_set(rt->m_paused, 1);
    int64_t started = zl_now_ms();
    for (uint32_t attempt = 0; zl_boot_running(); attempt++) {
        int64_t delay = zl_backoff_delay_ms(&rt->backoff, attempt < 30 ? attempt : 30);
        int64_t until = zl_now_ms() + (delay < rt->cfg.outage_cap_ms ? delay : rt->cfg.outage_cap_ms);
        while (zl_boot_running() && zl_now_ms() < until) {
            zl_health_heartbeat(rt->health);
            rt_apply_admin_requests(rt);
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rt->consumer, 50);
            if (m != NULL)
                rd_kafka_message_destroy(m); /* paused: only errors arrive; offsets untouched */
        }
        char err[ZL_ERRSTR_SIZE];
        if (probe(rt, err, sizeof(err)) == ZL_OK)
            break;
        if (attempt % 10 == 0)
            zl_log(ZL_LOG_WARN, NULL, "still in outage after %" PRId64 " ms: %s", zl_now_ms() - started, err);
    }
    if (!zl_boot_running())
        return;
    rt->outage = false;
    zl_health_set_paused(rt->health, false, NULL);
    zl_metric_gauge_set(rt->m_paused, 0);
    for (int i = 0; i < rt->nparts; i++)
        if (rt->parts[i].paused_until_ms == 0)
            resume_one(rt, rt->parts[i].topic, rt->parts[i].partition);
    zl_log(ZL_LOG_INFO, NULL, "outage over after %" PRId64 " ms: resuming", zl_now_ms() - started);
}

void rt_partitions_metrics(struct rt *rt, const char *labels)
{
    zl_metrics_describe(rt->metrics, "zl_retry_due_clamped_total", ZL_METRIC_COUNTER,
                        "retries whose zl-retry-due-at lay beyond the longest delay tier, held for their tier's delay"
                        " instead");
    rt->m_due_clamped = zl_metrics_counter_handle(rt->metrics, "zl_retry_due_clamped_total", labels);
}

int64_t rt_retry_due(struct rt *rt, struct part *p, const rd_kafka_message_t *m, int tier, int64_t due_ms,
                     int64_t now_ms)
{
    if (p->clamped_offset == m->offset)
        return p->clamped_due_ms; /* fetched again after its pause (or a seek): clamped once already */
    int64_t longest_ms = 0;
    for (int i = 0; i < rt->ntiers; i++)
        if (rt->tier_delay_ms[i] > longest_ms)
            longest_ms = rt->tier_delay_ms[i];
    /* Written as a difference: the header may hold any int64. */
    if (due_ms <= now_ms || due_ms - now_ms <= longest_ms)
        return due_ms;
    p->clamped_offset = m->offset;
    p->clamped_due_ms = now_ms + rt->tier_delay_ms[tier];
    struct zl_log_ctx ctx = {.topic = p->topic, .partition = p->partition, .offset = m->offset};
    zl_log(ZL_LOG_WARN, &ctx,
           "zl-retry-due-at %" PRId64 " is %" PRId64 " ms ahead, beyond the longest tier (%" PRId64
           " ms): held for tier %d's %" PRId64 " ms instead, so the partition keeps flowing",
           due_ms, due_ms - now_ms, longest_ms, tier, rt->tier_delay_ms[tier]);
    zl_metric_counter_add(rt->m_due_clamped, 1);
    return p->clamped_due_ms;
}

void rt_resume_due(struct rt *rt)
{
    int64_t now = zl_now_ms();
    for (int i = 0; i < rt->nparts; i++) {
        struct part *p = &rt->parts[i];
        if (p->paused_until_ms > 0 && p->paused_until_ms <= now) {
            p->paused_until_ms = 0;
            if (!rt->outage)
                resume_one(rt, p->topic, p->partition);
        }
    }
}

/* Where a stalled partition should be fetched from: the consumer's
 * position, or, when nothing was fetched since the assignment, the group's
 * committed offset (the low watermark when there is none: the group reads
 * from the earliest). RD_KAFKA_OFFSET_INVALID when it cannot tell. */
static int64_t stall_restart_offset(struct rt *rt, const struct part *p, int64_t position, int64_t lo)
{
    if (position >= 0)
        return position;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, p->topic, p->partition);
    int64_t from = RD_KAFKA_OFFSET_INVALID;
    if (rd_kafka_committed(rt->consumer, l, STALL_QUERY_TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR)
        from = l->elems[0].offset >= 0 ? l->elems[0].offset : lo;
    rd_kafka_topic_partition_list_destroy(l);
    return from;
}

/* The stall watch. librdkafka can leave a partition paused or its fetcher
 * idle after pause/seek/resume racing a rebalance (the runtime pauses for
 * outages, unfinished messages and delay tiers): the partition stays
 * assigned to this copy, nobody else may read it, and its deposits wait
 * forever while the worker looks healthy. Seen in the chaos suite
 * (librdkafka 2.0.2): 1,067 messages stuck behind one verify copy until a
 * rebalance. So: while the consumer has been idle (empty polls, no outage)
 * for ZL_STALL_MS, a partition this runtime has not paused on purpose whose
 * position has not moved for as long, while the broker holds messages past
 * it, is resumed and re-seeked to that position (re-reading is harmless:
 * every step is idempotent). Only idle time counts: a first version also
 * counted time spent in long batches and outages, and re-seeked healthy
 * partitions that were merely waiting their turn. */
void rt_watch_stalls(struct rt *rt)
{
    /* Busy with messages (idle_since_ms 0) or paused for an outage: no
     * progress then is not a stall. A stall is messages waiting while the
     * consumer has had nothing to do for stall_ms (checked below, with the
     * position unchanged for as long). An outage starts inside a batch, so
     * idle time always restarts after one. */
    if (rt->outage || rt->idle_since_ms == 0 || rt->cfg.stall_ms <= 0 || rt->nparts == 0)
        return;
    int64_t now = zl_now_ms();
    if (now < rt->next_stall_check_ms)
        return;
    rt->next_stall_check_ms = now + (rt->cfg.stall_ms < STALL_CHECK_MS ? rt->cfg.stall_ms : STALL_CHECK_MS);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(rt->nparts);
    for (int i = 0; i < rt->nparts; i++)
        rd_kafka_topic_partition_list_add(l, rt->parts[i].topic, rt->parts[i].partition);
    if (rd_kafka_position(rt->consumer, l) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_topic_partition_list_destroy(l);
        return;
    }
    for (int i = 0; i < l->cnt; i++) {
        struct part *p = rt_part_find(rt, l->elems[i].topic, l->elems[i].partition);
        int64_t pos = l->elems[i].offset;
        if (p == NULL)
            continue;
        if (pos != p->seen_position || p->paused_until_ms > 0) {
            p->seen_position = pos; /* progress, or waiting on purpose */
            p->seen_since_ms = now;
            continue;
        }
        if (now - p->seen_since_ms < rt->cfg.stall_ms || now - rt->idle_since_ms < rt->cfg.stall_ms)
            continue;
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(rt->consumer, p->topic, p->partition, &lo, &hi,
                                             STALL_QUERY_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
            continue; /* the broker will answer on a later pass */
        int64_t from = stall_restart_offset(rt, p, pos, lo);
        p->seen_since_ms = now;
        if (from < 0 || hi <= from)
            continue; /* nothing waiting: idle, not stalled */
        zl_log(ZL_LOG_WARN, NULL,
               "partition %s[%d]: %" PRId64 " messages waiting and no progress for %" PRId64
               " ms: resuming it and fetching again from offset %" PRId64,
               p->topic, p->partition, hi - from, rt->cfg.stall_ms, from);
        zl_metric_counter_add(rt->m_stalls, 1);
        resume_one(rt, p->topic, p->partition);
        rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(one, p->topic, p->partition)->offset = from;
        rd_kafka_error_t *e = rd_kafka_seek_partitions(rt->consumer, one, STALL_QUERY_TIMEOUT_MS);
        if (e != NULL) {
            zl_log(ZL_LOG_WARN, NULL, "seek %s[%d] to %" PRId64 ": %s", p->topic, p->partition, from,
                   rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
        rd_kafka_topic_partition_list_destroy(one);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* ZL_TEST_STRAY_PAUSE_AFTER: pauses the input topic's partitions in the
 * client without recording it, as a lost resume would leave them. */
void rt_test_stray_pause(struct rt *rt)
{
    if (rt->cfg.test_stray_pause_after <= 0 || ++rt->batches != rt->cfg.test_stray_pause_after)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(rt->nparts > 0 ? rt->nparts : 1);
    for (int i = 0; i < rt->nparts; i++)
        if (strcmp(rt->parts[i].topic, rt->in_topic) == 0)
            rd_kafka_topic_partition_list_add(l, rt->parts[i].topic, rt->parts[i].partition);
    rd_kafka_pause_partitions(rt->consumer, l);
    zl_log(ZL_LOG_WARN, NULL, "test: %d input partitions paused behind the runtime's back", l->cnt);
    rd_kafka_topic_partition_list_destroy(l);
}
