/* runtime_int.h: the stage runtime's internals, shared by its files (as
 * librdkafka's rdkafka_int.h). Stages include runtime.h only: nothing here
 * is theirs to touch.
 *
 *   runtime.c             settings, start-up through boot, the poll loop, the
 *                         admin request, an orderly stop
 *   runtime_batch.c       one poll batch, steps 1-6 of runtime.h: decode, rows,
 *                         the stage's side effect, the CAS, offsets
 *   runtime_route.c       where a finished work goes: output, retry tier or
 *                         DLQ, produced and waited for, and its bookkeeping
 *   runtime_partitions.c  assigned partitions, delay-tier pauses, outages
 *                         (pause, probe, resume) and the stall watch
 *   runtime_inflight.c    batches in flight: the next batch's steps 1-5 run
 *                         while the previous batches' deliveries are
 *                         pending; each finishes (step 6) in poll order
 *
 * @locality everything here runs on the runtime's main thread (librdkafka
 * serves its callbacks inside the runtime's poll calls), except where noted.
 */
#ifndef ZL_RUNTIME_INT_H
#define ZL_RUNTIME_INT_H

/* Prometheus labels of one runtime series: stage="<name>",class="<class>"
 * and the like; a stage name is short (ZL_LOG_STAGE_BYTES_MAX). */
#define RT_METRIC_LABELS_SIZE 160
/* '{<done state>,...,credited}': at most every state name, comma-separated. */
#define RT_PAST_STATES_SIZE 160

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

#include "backoff.h"
#include "boot.h"
#include "kafka.h"
#include "metrics.h"
#include "runtime.h"

/* Partitions one worker may own at once, across its input and retry topics. */
#define PARTITIONS_MAX 1024
/* Hard cap on ZL_BATCH_SIZE_MAX: bounds the batch arrays. */
#define BATCH_SIZE_LIMIT 10000
/* Hard cap on ZL_BATCHES_INFLIGHT_MAX: bounds the batch ring (each slot
 * holds ZL_BATCH_SIZE_MAX works). */
#define BATCHES_INFLIGHT_LIMIT 8
/* Encoded event size bound (envelope.h's own bound). */
#define OUT_BYTES_MAX ZL_EVENT_ENCODED_MAX_BYTES

/* Work phases within a batch. */
enum work_phase {
    PH_NEW = 0,   /* not yet looked at */
    PH_SKIP,      /* not ours to finish in this batch (revoked, delayed): no offset */
    PH_OK,        /* output to publish */
    PH_DONE,      /* nothing to publish, finished (dead/reorged row) */
    PH_RETRY,     /* to the next delay tier */
    PH_DLQ,       /* to the DLQ */
    PH_UNFINISHED /* stopped by an outage: re-consume after it */
};

/* Where a work's output, retry or dead letter is in its delivery. */
enum work_delivery {
    DELIVERY_NONE = 0, /* nothing produced */
    DELIVERY_PENDING,  /* produced, no report yet */
    DELIVERY_DONE,     /* the broker has it: delivered_partition/offset */
    DELIVERY_FAILED,   /* produce or delivery failed: error says why */
};

struct rt_batch;

/* A work as the runtime holds it: the stage's part, then the runtime's own. */
struct rt_work {
    struct zl_work pub; /* first: a stage's struct zl_work * converts back (C11 6.7.2.1) */
    enum work_phase phase;
    enum work_delivery delivery;
    bool has_out;       /* pub.out is to be published */
    bool decoded;       /* pub.in holds the decoded message */
    bool lost_race;     /* succeeded, but another copy moved the row first */
    bool held;          /* an older batch rewound its partition: it is fetched again, so this copy stores no
                           offset and never rewinds (runtime_inflight.c) */
    struct rt_batch *batch; /* the poll batch it belongs to: its delivery count */
    int64_t started_ms; /* when the batch took it: zl_processing_seconds */
    int32_t delivered_partition;
    int64_t delivered_offset;
    char produced_topic[ZL_TOPIC_NAME_MAX + 1]; /* where it went, for the log */
};

/* The runtime's part of w. Every struct zl_work the runtime hands out is the
 * first member of an rt_work. */
static inline struct rt_work *rt_work_of(const struct zl_work *w)
{
    return (struct rt_work *)w; /* the runtime owns w: the const is the caller's view only */
}

/* Stall watch: how often it looks, and its bound on a broker query. */
#define STALL_CHECK_MS 5000
#define STALL_QUERY_TIMEOUT_MS 1000

struct part {
    char topic[ZL_TOPIC_NAME_MAX];
    int32_t partition;
    int64_t paused_until_ms; /* delay tier: resume at this time; 0 = not delayed */
    /* Stall watch: the consumer position last seen, and since when. */
    int64_t seen_position;
    int64_t seen_since_ms;
    /* The last retry whose zl-retry-due-at was clamped (rt_retry_due): its
     * offset (-1: none) and the wall time it was clamped to, so a re-fetch
     * after the pause finds it due, and it is logged and counted once. */
    int64_t clamped_offset;
    int64_t clamped_due_ms;
};

/* One poll batch, from its poll to its offsets (runtime_inflight.c). Steps
 * 1-5 run at once; step 6 waits until its deliveries are reported, while
 * younger batches are polled and worked on. */
struct rt_batch {
    struct rt_work *store; /* ZL_BATCH_SIZE_MAX works, owned by the batch */
    struct zl_work **ws;   /* ws[i] = &store[i].pub */
    size_t n;              /* works in use */
    uint64_t *keys;        /* sorted hashes of the works' Kafka keys (the deposits): the hold */
    size_t nkeys;
    int pending;           /* produced, no delivery report yet */
    int64_t seq;           /* poll order, from 1 */
};

struct rt {
    const struct zl_stage *stage;
    struct zl_runtime_config cfg;
    struct zl_kv_list kprops;
    char group_id[ZL_TOPIC_NAME_MAX];
    char in_topic[ZL_TOPIC_NAME_MAX];
    char out_topic[ZL_TOPIC_NAME_MAX];
    char dlq_topic[ZL_TOPIC_NAME_MAX];
    char past_states[RT_PAST_STATES_SIZE]; /* '{<done state>,...,credited}': the row moved past this stage */
    char retry_topics[ZL_RETRY_TIERS_MAX][ZL_TOPIC_NAME_MAX];
    int64_t tier_delay_ms[ZL_RETRY_TIERS_MAX];
    int ntiers;
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    struct zl_pg pg;
    struct zl_boot boot;       /* config, signals, metrics, the HTTP server */
    struct zl_metrics *metrics; /* boot.metrics */
    struct zl_health *health;   /* boot.health, once serving */
    struct zl_backoff backoff; /* outage probes */
    struct zl_backoff inplace; /* in-place retries of transient failures */
    struct part parts[PARTITIONS_MAX];
    int nparts;
    bool outage;
    bool stage_inited;
    bool consumer_fatal; /* the loop stopped on a fatal consumer error: exit 1 */
    bool session_lost;   /* ...on a static member's session timeout: no close (it may hang) */
    char outage_reason[ZL_ERRSTR_SIZE];
    int pending_deliveries;    /* every batch's: the producer's outstanding reports */
    /* Batches whose steps 1-5 are done and step 6 is not: a ring of
     * cfg.batches_inflight_max slots (only those are allocated, so memory
     * grows with the setting, not the limit), oldest at ring_head
     * (runtime_inflight.c). */
    struct rt_batch ring[BATCHES_INFLIGHT_LIMIT];
    int ring_head;
    int ring_count;
    struct rt_batch *filling; /* polled (or being polled), not yet on the ring; NULL between batches */
    int64_t polled; /* poll batches taken since start: rt_batch.seq */
    /* metric handles for the hot path */
    zl_metric *m_latency;
    zl_metric *m_outcome[PH_UNFINISHED + 1];
    zl_metric *m_paused;
    zl_metric *m_lag;
    zl_metric *m_stalls;
    zl_metric *m_due_clamped; /* zl_retry_due_clamped_total */
    zl_metric *m_holds;       /* zl_batch_holds_total */
    zl_metric *m_inflight;    /* zl_batches_inflight */
    int64_t next_stall_check_ms;
    int64_t idle_since_ms; /* the first empty poll since the last batch; 0 while busy */
    int64_t batches; /* processed since start: for ZL_TEST_STRAY_PAUSE_AFTER */
};

/* ---- runtime_batch.c */

/* Steps 1-5 of runtime.h for the works of batch b: decode, rows, side
 * effects, the CAS; then every output, retry and dead letter is produced,
 * not waited for. */
void rt_batch_front(struct rt *rt, struct rt_batch *b);

/* Step 6 for batch b, taken off the ring (the oldest): waits for its
 * deliveries, records retries and dead letters, stores offsets per
 * partition up to its first unfinished message and rewinds there (holding
 * the ring's younger copies of that partition: rt_inflight_hold). */
void rt_batch_back(struct rt *rt, struct rt_batch *b);

/* "ok", "retry", ...: the outcome label of a phase (metrics, log lines). */
const char *rt_phase_outcome(enum work_phase ph);

/* ---- runtime_route.c */

/* Delivery reports. @locality main thread: served by rd_kafka_poll(producer). */
void rt_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

/* Retries whose budget is spent (transient attempts or defers) go to the DLQ
 * instead of a tier. */
void rt_route_failures(struct rt *rt, struct zl_work **ws, size_t n);

/* Step 5: produces every output, retry and dead letter of batch b; their
 * reports arrive later (rt_await_deliveries). */
void rt_produce_all(struct rt *rt, struct rt_batch *b);

/* Waits for batch b's delivery reports (bounded by the delivery timeout).
 * Returns false when a delivery failed or timed out (the broker is taken as
 * down: rt_enter_outage called, those works unfinished; a held work stays
 * held). Recreates a producer that had a fatal error. */
bool rt_await_deliveries(struct rt *rt, struct rt_batch *b);

/* Records delivered retries and dead letters in the state table. Returns
 * false on an outage (rt_enter_outage called). */
bool rt_record_failures(struct rt *rt, struct zl_work **ws, size_t n);

/* ---- runtime_partitions.c */

/* The assigned partition topic[partition], or NULL. */
struct part *rt_part_find(struct rt *rt, const char *topic, int32_t partition);

/* Pauses one partition; with offset >= 0 also seeks it there, so it is
 * fetched again from that message when resumed. */
void rt_pause_one(struct rt *rt, const char *topic, int32_t partition, int64_t offset);

/* Assignment, eager (roundrobin, the default) or incremental
 * (cooperative-sticky, through the pass-through properties). @locality main thread: served by
 * rd_kafka_consumer_poll. */
void rt_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                     void *opaque);

/* Marks an outage (logged once); the loop then rides it out. */
void rt_enter_outage(struct rt *rt, const char *reason);

/* Pauses every partition and probes with backoff until every dependency
 * answers (or a signal), then resumes those not held by a delay tier. */
void rt_ride_out_outage(struct rt *rt);

/* Describes the partition metrics of this file (zl_retry_due_clamped_total)
 * and takes their handles; labels: the runtime's stage="<name>". */
void rt_partitions_metrics(struct rt *rt, const char *labels);

/* When the retry m on partition p of retry tier `tier` is due (wall ms),
 * given its zl-retry-due-at header due_ms: due_ms itself, unless it is
 * further out than now_ms + the longest tier delay (a forged or corrupt
 * header would otherwise pause the partition for as long): then now_ms +
 * this tier's delay, logged with the message's coordinates and counted
 * once per message. A due time in the past is due now: the caller's test. */
int64_t rt_retry_due(struct rt *rt, struct part *p, const rd_kafka_message_t *m, int tier, int64_t due_ms,
                     int64_t now_ms);

/* Resumes the delay-tier partitions whose time has come. */
void rt_resume_due(struct rt *rt);

/* Resumes and re-seeks partitions stalled with messages waiting. */
void rt_watch_stalls(struct rt *rt);

/* ZL_TEST_STRAY_PAUSE_AFTER: pauses the input behind the runtime's back. */
void rt_test_stray_pause(struct rt *rt);

/* ---- runtime_inflight.c */

/* The k-th oldest batch in flight (0 <= k < rt->ring_count). */
struct rt_batch *rt_inflight_at(struct rt *rt, int k);

/* Allocates the ring's cfg.batches_inflight_max batches of
 * cfg.batch_size_max works each. Returns 0, or -1 (out of memory) with
 * nothing allocated. */
int rt_inflight_init(struct rt *rt);

/* Frees the ring (every batch finished first: rt_inflight_finish_all). */
void rt_inflight_free(struct rt *rt);

/* The batch to poll into next: the slot after the youngest in flight. */
struct rt_batch *rt_inflight_next(struct rt *rt);

/* Steps 1-5 for b (just polled into rt_inflight_next, and rt->filling
 * since its poll began), then b joins the ring. A message whose key (its
 * deposit) is in a batch in flight first finishes every batch in flight
 * (the hold), so two batches never act on one deposit. When finishing an
 * older batch found an outage, b does no step: its works are unfinished
 * (re-consumed after it). Then the oldest are finished until fewer than
 * cfg.batches_inflight_max are in flight. */
void rt_inflight_run(struct rt *rt, struct rt_batch *b);

/* Finishes every batch in flight, oldest first: before an outage pause, a
 * revoke, an idle poll and shutdown. */
void rt_inflight_finish_all(struct rt *rt);

/* Batch being finished rewound topic[partition] (seeked back to a message
 * that did not finish): the ring's younger copies of that partition, and
 * the batch being polled's, were fetched before the seek and are fetched
 * again, so they are held (no offset, no rewind, no step of their own). */
void rt_inflight_hold(struct rt *rt, const char *topic, int32_t partition);

/* Describes zl_batch_holds_total and zl_batches_inflight and takes their
 * handles; labels: stage="<name>". */
void rt_inflight_metrics(struct rt *rt, const char *labels);

/* ---- runtime.c */

/* Carries out a breaker reset asked for over HTTP, if any. */
void rt_apply_admin_requests(struct rt *rt);

#endif /* ZL_RUNTIME_INT_H */
