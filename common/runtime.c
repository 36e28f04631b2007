#include "runtime.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <jansson.h>
#include <uuid/uuid.h>

#include "backoff.h"
#include "boot.h"
#include "fault.h"
#include "health.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"

/* Partitions one worker may own at once, across its input and retry topics. */
#define PARTITIONS_MAX 1024
/* Hard cap on ZL_BATCH_SIZE_MAX: bounds the batch arrays. */
#define BATCH_SIZE_LIMIT 10000
/* Encoded event size bound (envelope.h's own bound). */
#define OUT_BYTES_MAX ZL_EVENT_ENCODED_MAX_BYTES

#define OFF(f) offsetof(struct zl_runtime_config, f)
const struct zl_setting zl_runtime_settings[] = {
    {"ZL_KAFKA_BROKERS", ZL_CFG_STR, "127.0.0.1:9092", "Kafka bootstrap servers", OFF(kafka_brokers), 0, 0},
    {"ZL_PG_DSN", ZL_CFG_STR, "postgresql://zeroloss@127.0.0.1:5432/zeroloss", "PostgreSQL connection string",
     OFF(pg_dsn), 0, 0},
    {"ZL_TOPIC_PREFIX", ZL_CFG_STR, "zl.", "prefix of every topic name", OFF(topic_prefix), 0, 0},
    {"ZL_GROUP_ID", ZL_CFG_STR, "", "consumer group (default zl-<stage>)", OFF(group_id), 0, 0},
    {"ZL_GROUP_INSTANCE_ID", ZL_CFG_STR, "",
     "static group membership (Kafka group.instance.id, e.g. the pod name): a copy restarted after a crash gets its"
     " partitions back at once instead of after the session timeout; unique per live copy",
     OFF(group_instance_id), 0, 0},
    {"ZL_IN_TOPIC", ZL_CFG_STR, "", "input topic (default <prefix><input schema topic>)", OFF(in_topic), 0, 0},
    {"ZL_OUT_TOPIC", ZL_CFG_STR, "", "output topic (default <prefix><output schema topic>)", OFF(out_topic), 0, 0},
    {"ZL_BATCH_SIZE_MAX", ZL_CFG_INT, "500", "messages per batch: one DB transaction, one produce wait",
     OFF(batch_size_max), 1, BATCH_SIZE_LIMIT},
    {"ZL_POLL_TIMEOUT_MS", ZL_CFG_INT, "100", "wait for the first message of a batch", OFF(poll_timeout_ms), 1,
     10000},
    {"ZL_BATCH_FILL_MS", ZL_CFG_INT, "5", "further wait to fill a batch once one message is in", OFF(batch_fill_ms),
     0, 10000},
    {"ZL_INPLACE_ATTEMPTS_MAX", ZL_CFG_INT, "3", "transient failures retried in place before the delay tiers",
     OFF(inplace_attempts_max), 1, 20},
    {"ZL_INPLACE_BASE_MS", ZL_CFG_INT, "50", "in-place retry backoff base (full jitter)", OFF(inplace_base_ms), 1,
     60000},
    {"ZL_INPLACE_CAP_MS", ZL_CFG_INT, "1000", "in-place retry backoff cap", OFF(inplace_cap_ms), 1, 600000},
    {"ZL_RETRY_TIERS_MS", ZL_CFG_STR, "1000,10000,60000", "delay of each retry tier topic, comma-separated",
     OFF(retry_tiers_ms), 0, 0},
    {"ZL_DEFERS_MAX", ZL_CFG_INT, "100", "defers (not yet, e.g. confirmations) before the DLQ", OFF(defers_max), 1,
     1000000},
    {"ZL_OUTAGE_BASE_MS", ZL_CFG_INT, "200", "outage probe backoff base", OFF(outage_base_ms), 1, 60000},
    {"ZL_OUTAGE_CAP_MS", ZL_CFG_INT, "5000", "outage probe backoff cap", OFF(outage_cap_ms), 1, 600000},
    {"ZL_DELIVERY_TIMEOUT_MS", ZL_CFG_INT, "30000", "bound on a produce's delivery report",
     OFF(delivery_timeout_ms), 1000, 600000},
    {"ZL_PG_CONNECT_TIMEOUT_MS", ZL_CFG_INT, "5000", "bound on a PostgreSQL connect", OFF(pg_connect_timeout_ms),
     1000, 600000},
    {"ZL_HTTP_ADDR", ZL_CFG_STR, "127.0.0.1", "address of /health and /metrics", OFF(http_addr), 0, 0},
    {"ZL_HTTP_PORT", ZL_CFG_INT, "0", "port of /health and /metrics (0 = any free port)", OFF(http_port), 0,
     65535},
    {"ZL_HTTP_PORT_FILE", ZL_CFG_STR, "", "write the bound HTTP port here (for tests and scrapers)",
     OFF(http_port_file), 0, 0},
    {"ZL_STALL_MS", ZL_CFG_INT, "30000",
     "a partition with messages waiting and no progress this long is resumed and re-seeked (0 = never)",
     OFF(stall_ms), 0, 3600000},
    {"ZL_TEST_STRAY_PAUSE_AFTER", ZL_CFG_INT, "0",
     "tests only: after this many batches, pause the input partitions without recording it (0 = never)",
     OFF(test_stray_pause_after), 0, 1000000},
};
const size_t zl_runtime_settings_count = sizeof(zl_runtime_settings) / sizeof(zl_runtime_settings[0]);
#undef OFF

/* Work phases within a batch. */
enum {
    PH_NEW = 0,   /* not yet looked at */
    PH_SKIP,      /* not ours to finish in this batch (revoked, delayed): no offset */
    PH_OK,        /* output to publish */
    PH_DONE,      /* nothing to publish, finished (dead/reorged row) */
    PH_RETRY,     /* to the next delay tier */
    PH_DLQ,       /* to the DLQ */
    PH_UNFINISHED /* stopped by an outage: re-consume after it */
};

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
};

struct rt {
    const struct zl_stage *stage;
    struct zl_runtime_config cfg;
    struct zl_kv_list kprops;
    char group_id[ZL_TOPIC_NAME_MAX];
    char in_topic[ZL_TOPIC_NAME_MAX];
    char out_topic[ZL_TOPIC_NAME_MAX];
    char dlq_topic[ZL_TOPIC_NAME_MAX];
    char past_states[160]; /* '{<done state>,...,credited}': the row moved past this stage */
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
    char outage_reason[ZL_ERRSTR_SIZE];
    int pending_deliveries;
    /* metric handles for the hot path */
    zl_metric *m_latency;
    zl_metric *m_outcome[PH_UNFINISHED + 1];
    zl_metric *m_paused;
    zl_metric *m_lag;
    zl_metric *m_stalls;
    int64_t next_stall_check_ms;
    int64_t idle_since_ms; /* the first empty poll since the last batch; 0 while busy */
    int64_t batches; /* processed since start: for ZL_TEST_STRAY_PAUSE_AFTER */
};

/* A breaker reset asked for over HTTP (libmicrohttpd's thread), carried out
 * by the main thread, which alone touches the stage's state. */
static atomic_bool reset_requested;
static pthread_mutex_t reset_lock = PTHREAD_MUTEX_INITIALIZER;
static char reset_dependency[128]; /* "" = every breaker */
static void apply_admin_requests(struct rt *rt);

static const char *phase_outcome(int ph)
{
    switch (ph) {
    case PH_OK: return "ok";
    case PH_DONE: return "done";
    case PH_RETRY: return "retry";
    case PH_DLQ: return "dlq";
    case PH_UNFINISHED: return "unfinished";
    case PH_SKIP: return "skipped";
    default: return "new";
    }
}

/* ------------------------------------------------------------ partitions */

static struct part *part_find(struct rt *rt, const char *topic, int32_t partition)
{
    for (int i = 0; i < rt->nparts; i++)
        if (rt->parts[i].partition == partition && strcmp(rt->parts[i].topic, topic) == 0)
            return &rt->parts[i];
    return NULL;
}

static void pause_one(struct rt *rt, const char *topic, int32_t partition, int64_t offset)
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

/* @locality main thread: librdkafka serves rebalances inside consumer_poll. */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    struct rt *rt = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) {
            if (part_find(rt, parts->elems[i].topic, parts->elems[i].partition) != NULL)
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
        }
        rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
        if (e != NULL) {
            zl_log(ZL_LOG_ERROR, NULL, "incremental assign: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
        /* New partitions during an outage stay paused with the rest. */
        if (rt->outage)
            rd_kafka_pause_partitions(rk, parts);
        zl_log(ZL_LOG_INFO, NULL, "assigned %d partitions (now %d)", parts->cnt, rt->nparts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        /* Nothing is in flight here: batches finish between polls. Commit
         * what was stored so the next owner starts after it. */
        rd_kafka_commit(rk, NULL, 0 /* sync */);
        for (int i = 0; i < parts->cnt; i++) {
            struct part *p = part_find(rt, parts->elems[i].topic, parts->elems[i].partition);
            if (p != NULL)
                *p = rt->parts[--rt->nparts];
        }
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e != NULL) {
            zl_log(ZL_LOG_ERROR, NULL, "incremental unassign: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
        zl_log(ZL_LOG_INFO, NULL, "revoked %d partitions (now %d)", parts->cnt, rt->nparts);
    } else {
        zl_log(ZL_LOG_ERROR, NULL, "rebalance error: %s", rd_kafka_err2str(err));
        rd_kafka_assign(rk, NULL);
        rt->nparts = 0;
    }
}

/* ------------------------------------------------------------ producing */

/* @locality main thread: called from rd_kafka_poll(producer). */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct rt *rt = opaque;
    struct zl_work *w = m->_private;
    if (w == NULL)
        return;
    rt->pending_deliveries--;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        w->delivery = -1;
        snprintf(w->error, sizeof(w->error), "delivery to %s failed: %s", rd_kafka_topic_name(m->rkt),
                 rd_kafka_err2str(m->err));
        return;
    }
    w->delivery = 2;
    w->delivered_partition = m->partition;
    w->delivered_offset = m->offset;
}

static void add_text_header(rd_kafka_headers_t *h, const char *name, const char *value)
{
    rd_kafka_header_remove(h, name);
    rd_kafka_header_add(h, name, -1, value, -1);
}

static void add_int_header(rd_kafka_headers_t *h, const char *name, int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    add_text_header(h, name, buf);
}

/* Produces value to topic keyed by the original key, with headers h (now
 * owned by librdkafka on success). Returns 0, or -1 with w->error. */
static int produce(struct rt *rt, struct zl_work *w, const char *topic, const void *value, size_t len,
                   rd_kafka_headers_t *h)
{
    snprintf(w->produced_topic, sizeof(w->produced_topic), "%s", topic);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rt->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(w->msg->key, w->msg->key_len),
        RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
        RD_KAFKA_V_OPAQUE(w), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(h);
        w->delivery = -1;
        snprintf(w->error, sizeof(w->error), "produce to %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    w->delivery = 1;
    rt->pending_deliveries++;
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
        w->phase = PH_DLQ;
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

/* The tier a retry goes to. A transient failure walks the tiers by its own
 * count of transient attempts; a defer steps one tier on from where it is
 * and then cycles in the last. Counting them apart keeps a long wait (say
 * for confirmations, deferred into the last tier) from spending the
 * transient budget: one timeout after many defers is a first attempt. */
static int next_tier(const struct rt *rt, const struct zl_work *w)
{
    int tier = w->result == ZL_DEFER ? w->tier + 1 : w->attempt;
    return tier < rt->ntiers ? tier : rt->ntiers - 1;
}

static void produce_retry(struct rt *rt, struct zl_work *w)
{
    int tier = next_tier(rt, w);
    rd_kafka_headers_t *h = copy_headers(w->msg);
    char otopic[ZL_TOPIC_NAME_MAX], opart[16], ooff[24];
    origin(rt, w, otopic, sizeof(otopic), opart, sizeof(opart), ooff, sizeof(ooff));
    add_text_header(h, "zl-origin-topic", otopic);
    add_text_header(h, "zl-origin-partition", opart);
    add_text_header(h, "zl-origin-offset", ooff);
    add_text_header(h, "traceparent", w->traceparent);
    add_int_header(h, "zl-attempt", w->attempt + (w->result == ZL_DEFER ? 0 : 1));
    add_int_header(h, "zl-defers", w->defers + (w->result == ZL_DEFER ? 1 : 0));
    add_int_header(h, "zl-retry-tier", tier);
    add_int_header(h, "zl-retry-due-at", zl_wall_ms() + rt->tier_delay_ms[tier]);
    add_text_header(h, "zl-last-error-class", zl_class_name(w->result));
    add_text_header(h, "zl-last-error", w->error);
    produce(rt, w, rt->retry_topics[tier], w->msg->payload, w->msg->len, h);
}

static void produce_dlq(struct rt *rt, struct zl_work *w)
{
    rd_kafka_headers_t *h = copy_headers(w->msg);
    char otopic[ZL_TOPIC_NAME_MAX], opart[16], ooff[24], ts[40], now[40], replay[16];
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

/* Waits for every pending delivery report, bounded by the delivery timeout
 * plus a margin (librdkafka reports a failure by then). */
static void wait_deliveries(struct rt *rt)
{
    int64_t deadline = zl_now_ms() + rt->cfg.delivery_timeout_ms + 5000;
    while (rt->pending_deliveries > 0 && zl_now_ms() < deadline)
        rd_kafka_poll(rt->producer, 50 /* ms */);
}

/* ------------------------------------------------------------ the batch */

void zl_work_log_ctx(const struct zl_work *w, struct zl_log_ctx *ctx)
{
    ctx->deposit_id = w->decoded ? w->in.deposit_id : NULL;
    ctx->topic = rd_kafka_topic_name(w->msg->rkt);
    ctx->partition = w->msg->partition;
    ctx->offset = w->msg->offset;
    ctx->trace_id = w->trace_id[0] ? w->trace_id : NULL;
}

static void start_trace(struct zl_work *w)
{
    if (zl_kafka_header(w->msg, "traceparent", w->traceparent, sizeof(w->traceparent)) == 0 &&
        strlen(w->traceparent) == 55 && w->traceparent[2] == '-') {
        memcpy(w->trace_id, w->traceparent + 3, 32);
        w->trace_id[32] = '\0';
        return;
    }
    /* No usable parent: start a trace here, ids from libuuid's randomness. */
    uuid_t a, b;
    uuid_generate_random(a);
    uuid_generate_random(b);
    char *p = w->trace_id;
    for (int i = 0; i < 16; i++, p += 2)
        snprintf(p, 3, "%02x", a[i]);
    char span[17];
    for (int i = 0; i < 8; i++)
        snprintf(span + 2 * i, 3, "%02x", b[i]);
    snprintf(w->traceparent, sizeof(w->traceparent), "00-%s-%s-01", w->trace_id, span);
}

static int header_int(const rd_kafka_message_t *m, const char *name, int64_t dflt, int64_t *out)
{
    char buf[32];
    *out = dflt;
    if (zl_kafka_header(m, name, buf, sizeof(buf)) != 0)
        return -1;
    char *end = NULL;
    long long v = strtoll(buf, &end, 10);
    if (end == buf || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int tier_of(const struct rt *rt, const char *topic)
{
    for (int i = 0; i < rt->ntiers; i++)
        if (strcmp(rt->retry_topics[i], topic) == 0)
            return i;
    return -1;
}

/* Step 1: headers, delay tiers, decoding. */
static void decode_all(struct rt *rt, struct zl_work *ws, size_t n)
{
    int64_t now = zl_wall_ms();
    for (size_t i = 0; i < n; i++) {
        struct zl_work *w = &ws[i];
        const char *topic = rd_kafka_topic_name(w->msg->rkt);
        struct part *p = part_find(rt, topic, w->msg->partition);
        if (p == NULL || p->paused_until_ms > 0) {
            w->phase = PH_SKIP; /* revoked while the batch filled, or delayed */
            continue;
        }
        w->tier = tier_of(rt, topic);
        int64_t v;
        header_int(w->msg, "zl-attempt", 0, &v);
        w->attempt = v < 0 || v > 1000000 ? 0 : (int)v;
        header_int(w->msg, "zl-defers", 0, &v);
        w->defers = v < 0 || v > 1000000 ? 0 : (int)v;
        start_trace(w);
        if (w->tier >= 0 && header_int(w->msg, "zl-retry-due-at", 0, &v) == 0 && v > now) {
            /* Not due: hold the partition at this message. Later messages
             * in the tier are due later still (one fixed delay per tier). */
            p->paused_until_ms = zl_now_ms() + (v - now);
            pause_one(rt, topic, w->msg->partition, w->msg->offset);
            w->phase = PH_SKIP;
            continue;
        }
        char err[ZL_ERRSTR_SIZE];
        if (w->msg->payload == NULL ||
            zl_event_decode(rt->stage->in_kind, w->msg->payload, w->msg->len, &w->in, err, sizeof(err)) != 0) {
            w->result = ZL_POISON;
            snprintf(w->error, sizeof(w->error), "undecodable %s message: %s", zl_topic_kind_schema(rt->stage->in_kind),
                     w->msg->payload == NULL ? "empty value" : err);
            w->phase = PH_DLQ;
            continue;
        }
        w->decoded = true;
    }
}

/* Runs stage->process with in-place retries of transient failures. */
static zl_class process_with_retries(struct rt *rt, struct zl_work *w)
{
    for (int64_t a = 0;; a++) {
        w->error[0] = '\0';
        zl_class c = rt->stage->process(rt->stage->ctx, w);
        if (c != ZL_TRANSIENT || a + 1 >= rt->cfg.inplace_attempts_max || !zl_boot_running())
            return c;
        int64_t delay = zl_backoff_delay_ms(&rt->inplace, (uint32_t)a);
        struct zl_log_ctx ctx;
        zl_work_log_ctx(w, &ctx);
        zl_log(ZL_LOG_INFO, &ctx, "transient failure, retrying in place in %" PRId64 " ms: %s", delay, w->error);
        struct timespec ts = {.tv_sec = delay / 1000, .tv_nsec = (delay % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
}

static bool accepts(const struct zl_stage *st, zl_state s)
{
    /* accept_states is "{a,b}": match a whole element. */
    const char *name = zl_state_name(s);
    size_t len = strlen(name);
    for (const char *p = st->accept_states; (p = strstr(p, name)) != NULL; p += len) {
        char before = p == st->accept_states ? '{' : p[-1];
        char after = p[len];
        if ((before == '{' || before == ',') && (after == '}' || after == ','))
            return true;
    }
    return false;
}

static void enter_outage(struct rt *rt, const char *reason)
{
    if (!rt->outage)
        zl_log(ZL_LOG_WARN, NULL, "outage: pausing consumption: %s", reason);
    rt->outage = true;
    snprintf(rt->outage_reason, sizeof(rt->outage_reason), "%s", reason);
}

/* The phase a decided work moves to (not ZL_OUTAGE, which stops the batch). */
static int phase_of(zl_class c)
{
    return c == ZL_OK ? PH_NEW /* CAS pending */ : (c == ZL_TRANSIENT || c == ZL_DEFER) ? PH_RETRY : PH_DLQ;
}

void zl_works_fail(struct zl_work *const *ws, size_t n, zl_class c, const char *why)
{
    for (size_t i = 0; i < n; i++) {
        ws[i]->result = c;
        snprintf(ws[i]->error, sizeof(ws[i]->error), "%s", why);
    }
}

/* Calls stage->process_batch once per deposit: a deposit twice in one poll
 * batch (a redelivery beside its retry, or the sweeper's re-publication)
 * goes to the hook once, and its later copies take the first copy's result,
 * output and reason. A hook would otherwise see one deposit twice in one
 * side effect (a mintBatch carrying an id twice, one file named twice in a
 * Kubo add). */
/* A work and its position in the poll batch, for call_batch_hook's sort. */
struct batch_ent {
    struct zl_work *w;
    size_t pos;
};

/* By deposit id, then position: a deposit's first copy sorts first. */
static int by_deposit_then_position(const void *a, const void *b)
{
    const struct batch_ent *x = a, *y = b;
    int c = strcmp(x->w->in.deposit_id, y->w->in.deposit_id);
    return c != 0 ? c : (x->pos < y->pos ? -1 : x->pos > y->pos);
}

static void call_batch_hook(struct rt *rt, struct zl_work **todo, size_t n)
{
    /* Sorted, the copies of one deposit sit side by side: n log n, not n^2,
     * on every poll batch (up to 500 works). */
    struct batch_ent *e = malloc(n * sizeof(*e));
    size_t *first = malloc(n * sizeof(*first)); /* per position: position of its deposit's first copy */
    struct zl_work **uniq = malloc(n * sizeof(*uniq));
    if (e == NULL || first == NULL || uniq == NULL) {
        free(e);
        free(first);
        free(uniq);
        return; /* every work stays at the preset "no result": retried */
    }
    for (size_t i = 0; i < n; i++)
        e[i] = (struct batch_ent){todo[i], i};
    qsort(e, n, sizeof(*e), by_deposit_then_position);
    for (size_t i = 0; i < n; i++)
        first[e[i].pos] = i > 0 && strcmp(e[i - 1].w->in.deposit_id, e[i].w->in.deposit_id) == 0
                              ? first[e[i - 1].pos]
                              : e[i].pos;
    size_t nu = 0;
    for (size_t i = 0; i < n; i++) /* poll order, as the hook is promised */
        if (first[i] == i)
            uniq[nu++] = todo[i];
    rt->stage->process_batch(rt->stage->ctx, uniq, nu);
    for (size_t i = 0; i < n; i++) {
        if (first[i] == i)
            continue;
        const struct zl_work *f = todo[first[i]];
        todo[i]->result = f->result;
        todo[i]->out = f->out;
        snprintf(todo[i]->error, sizeof(todo[i]->error), "%s", f->error);
    }
    free(e);
    free(first);
    free(uniq);
}

/* Runs stage->process_batch over the accepted works, then again over those
 * that came back transient, with the same in-place backoff and bound as
 * process_with_retries. Returns false on an outage (enter_outage called);
 * the outage's works, and every success so far, stay PH_NEW. */
static bool process_batch_with_retries(struct rt *rt, struct zl_work **todo, size_t n)
{
    for (int64_t a = 0; n > 0; a++) {
        for (size_t i = 0; i < n; i++) {
            /* Preset: a work the stage forgot is retried, never "succeeds"
             * with an empty output. */
            todo[i]->result = ZL_TRANSIENT;
            snprintf(todo[i]->error, sizeof(todo[i]->error), "stage %s set no result (or no reason) for this message",
                     rt->stage->name);
        }
        call_batch_hook(rt, todo, n);
        bool last = a + 1 >= rt->cfg.inplace_attempts_max || !zl_boot_running();
        bool outage = false;
        size_t again = 0;
        for (size_t i = 0; i < n; i++) {
            struct zl_work *w = todo[i];
            if (w->result == ZL_OUTAGE) {
                if (!outage)
                    enter_outage(rt, w->error);
                outage = true; /* stays PH_NEW: unfinished */
            } else if (w->result == ZL_TRANSIENT && !last) {
                todo[again++] = w;
            } else {
                w->phase = phase_of(w->result);
            }
        }
        if (outage)
            return false; /* the transient ones stay PH_NEW too: re-consumed after it */
        if (again == 0)
            return true;
        n = again;
        int64_t delay = zl_backoff_delay_ms(&rt->inplace, (uint32_t)a);
        struct zl_log_ctx ctx;
        zl_work_log_ctx(todo[0], &ctx);
        zl_log(ZL_LOG_INFO, &ctx, "%zu transient failure(s) in a batch, retrying them in place in %" PRId64 " ms: %s",
               n, delay, todo[0]->error);
        struct timespec ts = {.tv_sec = delay / 1000, .tv_nsec = (delay % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    return true;
}

/* The row is done already: publish its output again, built from the row.
 * Routes a failure by its class. Returns false on an outage. */
static bool republish(struct rt *rt, struct zl_work *w)
{
    w->error[0] = '\0';
    zl_class c = rt->stage->republish(rt->stage->ctx, w);
    w->result = c;
    w->has_out = c == ZL_OK;
    if (c == ZL_OUTAGE) {
        enter_outage(rt, w->error);
        w->phase = PH_UNFINISHED;
        return false;
    }
    w->phase = c == ZL_OK ? PH_OK : (c == ZL_TRANSIENT || c == ZL_DEFER) ? PH_RETRY : PH_DLQ;
    return true;
}

/* Messages whose CAS found the row already moved by another copy publish
 * what the row holds, not their own result: the two may differ (e.g. a rate
 * looked up a moment later), and downstream must see what was recorded.
 * Returns false on an outage. */
static bool republish_lost_races(struct rt *rt, struct zl_work **group, size_t n)
{
    const char **ids = calloc(n, sizeof(*ids));
    struct zl_row *rows = calloc(n, sizeof(*rows));
    struct zl_work **lost = calloc(n, sizeof(*lost));
    bool ok = false;
    if (ids == NULL || rows == NULL || lost == NULL) {
        enter_outage(rt, "out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (group[i]->lost_race) {
            lost[k] = group[i];
            ids[k++] = group[i]->in.deposit_id;
        }
    ok = true;
    if (k == 0)
        goto out;
    char err[ZL_ERRSTR_SIZE];
    zl_class c = zl_state_read(&rt->pg, ids, k, rows, err, sizeof(err));
    if (c != ZL_OK) {
        enter_outage(rt, err);
        for (size_t j = 0; j < k; j++)
            lost[j]->phase = PH_UNFINISHED;
        ok = false;
        goto out;
    }
    for (size_t j = 0; j < k && ok; j++) {
        lost[j]->row = rows[j];
        if (!rows[j].found || zl_state_rank(rows[j].state) < zl_state_rank(rt->stage->done_state)) {
            lost[j]->phase = PH_DONE; /* moved elsewhere (dead, reorged): nothing to publish */
            lost[j]->has_out = false;
            continue;
        }
        ok = republish(rt, lost[j]);
    }
out:
    free(ids);
    free(rows);
    free(lost);
    return ok;
}

/* The message describes the deposit in a block the row no longer names: a
 * reorg re-included the tx elsewhere after the message was published, and
 * the row's newer event (with the new block) is on its way. Acting on the
 * stale one could pass on old block facts or dead-letter a live deposit. */
static bool superseded(const struct zl_work *w, const struct zl_row *row)
{
    return row->block_hash[0] != '\0' && w->in.block_hash[0] != '\0' &&
           strcasecmp(row->block_hash, w->in.block_hash) != 0;
}

/* Step 2-3: rows and side effects. Returns false on an outage. */
static bool process_all(struct rt *rt, struct zl_work *ws, size_t n)
{
    const char **ids = calloc(n, sizeof(*ids));
    struct zl_row *rows = calloc(n, sizeof(*rows));
    size_t *idx = calloc(n, sizeof(*idx));
    struct zl_work **accepted = calloc(n, sizeof(*accepted)); /* for process_batch */
    size_t naccepted = 0;
    bool ok = false;
    if (ids == NULL || rows == NULL || idx == NULL || accepted == NULL) {
        enter_outage(rt, "out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ws[i].phase == PH_NEW && ws[i].decoded) {
            ids[k] = ws[i].in.deposit_id;
            idx[k++] = i;
        }
    }
    char err[ZL_ERRSTR_SIZE];
    zl_class c = zl_state_read(&rt->pg, ids, k, rows, err, sizeof(err));
    if (c != ZL_OK) {
        enter_outage(rt, err);
        goto out;
    }
    for (size_t j = 0; j < k; j++) {
        struct zl_work *w = &ws[idx[j]];
        w->row = rows[j];
        struct zl_log_ctx ctx;
        zl_work_log_ctx(w, &ctx);
        if (!w->row.found) {
            w->result = ZL_PERMANENT;
            snprintf(w->error, sizeof(w->error), "no state row for deposit %s", w->in.deposit_id);
            w->phase = PH_DLQ;
        } else if (w->row.state == ZL_STATE_DEAD || w->row.state == ZL_STATE_REORGED) {
            zl_log(ZL_LOG_INFO, &ctx, "row is %s: nothing to do", zl_state_name(w->row.state));
            w->phase = PH_DONE;
        } else if (zl_state_rank(w->row.state) >= zl_state_rank(rt->stage->done_state)) {
            if (!republish(rt, w))
                goto out;
        } else if (accepts(rt->stage, w->row.state) && superseded(w, &w->row)) {
            zl_log(ZL_LOG_INFO, &ctx, "superseded: the row now names block %s, this message %s; its newer event"
                   " carries on", w->row.block_hash, w->in.block_hash);
            w->phase = PH_DONE;
        } else if (accepts(rt->stage, w->row.state) && rt->stage->process_batch != NULL) {
            accepted[naccepted++] = w; /* after the loop, all at once */
        } else if (accepts(rt->stage, w->row.state)) {
            c = process_with_retries(rt, w);
            w->result = c;
            if (c == ZL_OUTAGE) {
                enter_outage(rt, w->error);
                goto out;
            }
            w->phase = phase_of(c);
        } else {
            w->result = ZL_DEFER;
            snprintf(w->error, sizeof(w->error), "row is %s, stage %s waits for %s", zl_state_name(w->row.state),
                     rt->stage->name, rt->stage->accept_states);
            w->phase = PH_RETRY;
        }
    }
    if (naccepted > 0 && !process_batch_with_retries(rt, accepted, naccepted))
        goto out;
    ok = true;
out:
    free(ids);
    free(rows);
    free(idx);
    free(accepted);
    return ok;
}

/* One transaction for a set of successes: CAS + the stage's writes. */
static zl_class commit_group(struct rt *rt, struct zl_work **group, size_t n, char *err, size_t err_size)
{
    const char **ids = calloc(n, sizeof(*ids));
    bool *moved = calloc(n, sizeof(*moved));
    struct zl_work **mv = calloc(n, sizeof(*mv));
    zl_class c = ZL_TRANSIENT;
    if (ids == NULL || moved == NULL || mv == NULL) {
        snprintf(err, err_size, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = group[i]->in.deposit_id;
    c = zl_pg_exec(&rt->pg, "BEGIN", err, err_size);
    if (c != ZL_OK)
        goto out;
    c = zl_state_cas(&rt->pg, ids, n, rt->stage->accept_states, rt->stage->done_state, moved, err, err_size);
    size_t nmoved = 0;
    for (size_t i = 0; c == ZL_OK && i < n; i++)
        if (moved[i])
            mv[nmoved++] = group[i];
    if (c == ZL_OK && rt->stage->in_tx != NULL && nmoved > 0)
        c = rt->stage->in_tx(rt->stage->ctx, &rt->pg, mv, nmoved, err, err_size);
    if (c == ZL_OK)
        c = zl_pg_exec(&rt->pg, "COMMIT", err, err_size);
    if (c != ZL_OK)
        zl_pg_rollback(&rt->pg);
    for (size_t i = 0; c == ZL_OK && i < n; i++)
        group[i]->lost_race = !moved[i];
out:
    free(ids);
    free(moved);
    free(mv);
    return c;
}

/* Step 4: CAS the successes in one transaction; on a statement error, fall
 * back to one transaction per message so one bad row cannot hold up the
 * rest. Returns false on an outage. */
static bool commit_all(struct rt *rt, struct zl_work *ws, size_t n)
{
    struct zl_work **group = calloc(n, sizeof(*group));
    if (group == NULL) {
        enter_outage(rt, "out of memory");
        return false;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (ws[i].phase == PH_NEW && ws[i].decoded && ws[i].result == ZL_OK)
            group[k++] = &ws[i];
    bool ok = true;
    char err[ZL_ERRSTR_SIZE];
    if (k > 0) {
        zl_class c = commit_group(rt, group, k, err, sizeof(err));
        if (c == ZL_OUTAGE) {
            enter_outage(rt, err);
            ok = false;
        } else if (c == ZL_OK) {
            for (size_t i = 0; i < k; i++) {
                group[i]->phase = PH_OK;
                group[i]->has_out = true;
            }
            ok = republish_lost_races(rt, group, k);
        } else {
            zl_log(ZL_LOG_WARN, NULL, "batch commit failed (%s), retrying one by one: %s", zl_class_name(c), err);
            for (size_t i = 0; i < k && ok; i++) {
                c = commit_group(rt, &group[i], 1, err, sizeof(err));
                if (c == ZL_OUTAGE) {
                    enter_outage(rt, err);
                    ok = false;
                } else if (c == ZL_OK) {
                    group[i]->phase = PH_OK;
                    group[i]->has_out = true;
                    ok = republish_lost_races(rt, &group[i], 1);
                } else {
                    group[i]->result = c;
                    snprintf(group[i]->error, sizeof(group[i]->error), "state commit: %s", err);
                    group[i]->phase = c == ZL_TRANSIENT ? PH_RETRY : PH_DLQ;
                }
            }
        }
    }
    free(group);
    return ok;
}

/* Failures that exhausted their budget go to the DLQ instead of a tier. */
static void route_failures(struct rt *rt, struct zl_work *ws, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct zl_work *w = &ws[i];
        if (w->phase != PH_RETRY)
            continue;
        /* attempt = transient failures so far that went to a tier; the
         * first try plus one per tier is the budget. */
        if (w->result == ZL_DEFER ? w->defers + 1 >= rt->cfg.defers_max : w->attempt >= rt->ntiers) {
            char why[ZL_ERRSTR_SIZE];
            snprintf(why, sizeof(why), "%s after %d %s: %s", zl_class_name(w->result),
                     w->result == ZL_DEFER ? w->defers + 1 : w->attempt + 1,
                     w->result == ZL_DEFER ? "defers" : "attempts", w->error);
            memcpy(w->error, why, sizeof(w->error));
            w->phase = PH_DLQ;
        }
    }
}

/* A message about to be dead-lettered for a failure of its own is checked
 * against the row once more: the row may have moved on while it was being
 * worked on (another copy finished it, a reorg re-included the tx in
 * another block and the detector published it again). Then it is dropped,
 * not dead-lettered: a dead letter for a live deposit would either kill it
 * (the mark below is guarded too) or mislead an operator. A failed read
 * leaves the decision to the guarded mark. */
static void drop_superseded_dead_letters(struct rt *rt, struct zl_work *ws, size_t n)
{
    const char **ids = calloc(n, sizeof(*ids));
    size_t *idx = calloc(n, sizeof(*idx));
    struct zl_row *rows = calloc(n, sizeof(*rows));
    size_t k = 0;
    if (ids == NULL || idx == NULL || rows == NULL)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (ws[i].phase == PH_DLQ && ws[i].decoded && ws[i].row.found && ws[i].result != ZL_POISON) {
            ids[k] = ws[i].in.deposit_id;
            idx[k++] = i;
        }
    char err[ZL_ERRSTR_SIZE];
    if (k == 0 || zl_state_read(&rt->pg, ids, k, rows, err, sizeof(err)) != ZL_OK)
        goto out;
    for (size_t j = 0; j < k; j++) {
        struct zl_work *w = &ws[idx[j]];
        const struct zl_row *r = &rows[j];
        bool moved_on = r->found && (r->state == ZL_STATE_DEAD || r->state == ZL_STATE_REORGED ||
                                     zl_state_rank(r->state) >= zl_state_rank(rt->stage->done_state));
        if (!r->found || !(moved_on || superseded(w, r)))
            continue;
        struct zl_log_ctx ctx;
        zl_work_log_ctx(w, &ctx);
        zl_log(ZL_LOG_WARN, &ctx, "not dead-lettered: the row moved on meanwhile (now %s, block %s): %s",
               zl_state_name(r->state), r->block_hash, w->error);
        w->phase = PH_DONE;
    }
out:
    free(ids);
    free(idx);
    free(rows);
}

/* Step 5: publish everything this batch produces and wait for it. Returns
 * false when a delivery failed (the broker is treated as down). */
static bool publish_all(struct rt *rt, struct zl_work *ws, size_t n)
{
    zl_fault_point("before_produce");
    for (size_t i = 0; i < n; i++) {
        struct zl_work *w = &ws[i];
        if (w->phase == PH_OK && w->has_out)
            produce_output(rt, w);
        if (w->phase == PH_RETRY)
            produce_retry(rt, w);
        if (w->phase == PH_DLQ) /* also an invalid output from produce_output */
            produce_dlq(rt, w);
    }
    wait_deliveries(rt);
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        struct zl_work *w = &ws[i];
        if (w->delivery == 1 || w->delivery == -1) {
            if (ok)
                enter_outage(rt, w->delivery == 1 ? "delivery report timed out" : w->error);
            w->phase = PH_UNFINISHED;
            ok = false;
        }
    }
    if (rd_kafka_fatal_error(rt->producer, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* An idempotent producer's fatal error (e.g. fenced): recreate it. */
        char reason[256];
        rd_kafka_fatal_error(rt->producer, reason, sizeof(reason));
        zl_log(ZL_LOG_ERROR, NULL, "producer fatal error, recreating: %s", reason);
        rd_kafka_destroy(rt->producer);
        char err[ZL_ERRSTR_SIZE];
        rt->producer = zl_kafka_producer_new(rt->cfg.kafka_brokers, &rt->kprops, rt->cfg.delivery_timeout_ms, dr_cb,
                                             rt, err, sizeof(err));
        ZL_ASSERT(rt->producer != NULL); /* the same config worked at startup */
    }
    return ok;
}

/* Step 6 bookkeeping in the state table for retries and dead letters. */
static bool record_failures(struct rt *rt, struct zl_work *ws, size_t n)
{
    char err[ZL_ERRSTR_SIZE];
    for (size_t i = 0; i < n; i++) {
        struct zl_work *w = &ws[i];
        if (!w->decoded || !w->row.found || w->delivery != 2)
            continue;
        zl_class c = ZL_OK;
        if (w->phase == PH_RETRY) {
            int tier = next_tier(rt, w);
            c = zl_state_record_failure(&rt->pg, w->in.deposit_id, w->result, w->error, rt->tier_delay_ms[tier], err,
                                        sizeof(err));
        } else if (w->phase == PH_DLQ && w->result != ZL_POISON) {
            /* Poison is not trusted to name its deposit: the row stays as it
             * is, and a valid message for it still goes through. */
            bool marked = false;
            c = zl_state_mark_dead(&rt->pg, w->in.deposit_id, w->result, w->error, rt->dlq_topic,
                                   w->delivered_partition, w->delivered_offset, rt->past_states, w->in.block_hash,
                                   &marked, err, sizeof(err));
            if (c == ZL_OK && !marked) {
                struct zl_log_ctx ctx;
                zl_work_log_ctx(w, &ctx);
                zl_log(ZL_LOG_WARN, &ctx, "dead letter at %s [%" PRId32 "] @%" PRId64 " left the row as it is: the"
                       " row moved on (finished, terminal or re-included in another block)", rt->dlq_topic,
                       w->delivered_partition, w->delivered_offset);
            }
        }
        if (c == ZL_OUTAGE) {
            enter_outage(rt, err);
            return false;
        }
    }
    return true;
}

static void log_outcomes(struct rt *rt, struct zl_work *ws, size_t n)
{
    int64_t now = zl_now_ms();
    for (size_t i = 0; i < n; i++) {
        struct zl_work *w = &ws[i];
        if (w->phase == PH_SKIP)
            continue;
        zl_metric_counter_add(rt->m_outcome[w->phase], 1);
        if (w->phase == PH_OK || w->phase == PH_DONE)
            zl_metric_observe(rt->m_latency, (double)(now - w->started_ms) / 1000.0);
        if (w->phase == PH_RETRY || w->phase == PH_DLQ) {
            struct zl_log_ctx ctx;
            zl_work_log_ctx(w, &ctx);
            zl_log(w->phase == PH_DLQ ? ZL_LOG_ERROR : ZL_LOG_WARN, &ctx, "%s (%s) -> %s: %s",
                   phase_outcome(w->phase), zl_class_name(w->result), w->produced_topic, w->error);
            if (w->phase == PH_DLQ) {
                char labels[160];
                snprintf(labels, sizeof(labels), "stage=\"%s\",class=\"%s\"", rt->stage->name, zl_class_name(w->result));
                zl_metrics_counter_add(rt->metrics, "zl_dlq_total", labels, 1);
            } else {
                char labels[160];
                snprintf(labels, sizeof(labels), "stage=\"%s\",class=\"%s\"", rt->stage->name, zl_class_name(w->result));
                zl_metrics_counter_add(rt->metrics, "zl_retries_total", labels, 1);
            }
        }
    }
}

/* Step 6: store offset + 1 per partition up to the first unfinished message,
 * and rewind partitions that have unfinished messages. */
static void store_offsets(struct rt *rt, struct zl_work *ws, size_t n)
{
    zl_fault_point("after_produce_before_offset_store");
    rd_kafka_topic_partition_list_t *store = rd_kafka_topic_partition_list_new(16);
    for (size_t i = 0; i < n; i++) {
        struct zl_work *w = &ws[i];
        const char *topic = rd_kafka_topic_name(w->msg->rkt);
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(store, topic, w->msg->partition);
        if (tp == NULL) {
            tp = rd_kafka_topic_partition_list_add(store, topic, w->msg->partition);
            tp->offset = RD_KAFKA_OFFSET_INVALID;
            tp->metadata_size = 0; /* metadata unused: marks "still contiguous" below */
        }
        if (tp->metadata_size != 0)
            continue; /* an earlier message of this partition is unfinished */
        bool finished = w->phase == PH_OK || w->phase == PH_DONE || w->phase == PH_RETRY || w->phase == PH_DLQ;
        if (finished) {
            tp->offset = w->msg->offset + 1;
        } else {
            tp->metadata_size = 1; /* stop storing; rewind to here */
            if (w->phase == PH_UNFINISHED)
                pause_one(rt, topic, w->msg->partition, w->msg->offset);
        }
    }
    /* Drop entries with nothing to store before the call. */
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(store->cnt);
    for (int i = 0; i < store->cnt; i++)
        if (store->elems[i].offset >= 0 && part_find(rt, store->elems[i].topic, store->elems[i].partition))
            rd_kafka_topic_partition_list_add(l, store->elems[i].topic, store->elems[i].partition)->offset =
                store->elems[i].offset;
    if (l->cnt > 0) {
        rd_kafka_resp_err_t e = rd_kafka_offsets_store(rt->consumer, l);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            zl_log(ZL_LOG_WARN, NULL, "offsets store: %s (partition revoked? it will be re-processed harmlessly)",
                   rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_topic_partition_list_destroy(store);
}

static void process_batch(struct rt *rt, struct zl_work *ws, size_t n)
{
    decode_all(rt, ws, n);
    zl_fault_point("after_decode");
    bool ok = process_all(rt, ws, n);
    zl_fault_point("after_side_effect");
    if (ok)
        ok = commit_all(rt, ws, n);
    if (ok)
        zl_fault_point("after_db_commit");
    if (!ok) {
        /* An outage stops the batch: whatever is not yet decided is
         * re-consumed after it. Decided failures and outputs still go out. */
        for (size_t i = 0; i < n; i++)
            if (ws[i].phase == PH_NEW)
                ws[i].phase = PH_UNFINISHED;
    }
    route_failures(rt, ws, n);
    drop_superseded_dead_letters(rt, ws, n);
    bool delivered = publish_all(rt, ws, n);
    if (!record_failures(rt, ws, n)) {
        for (size_t i = 0; i < n; i++)
            if ((ws[i].phase == PH_RETRY || ws[i].phase == PH_DLQ) && ws[i].decoded && ws[i].row.found)
                ws[i].phase = PH_UNFINISHED; /* re-done after the outage; a duplicate retry is harmless */
    }
    (void)delivered;
    log_outcomes(rt, ws, n);
    store_offsets(rt, ws, n);
}

/* ------------------------------------------------------------ outage */

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
static void ride_out_outage(struct rt *rt)
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
            apply_admin_requests(rt);
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

static void resume_due(struct rt *rt)
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
static void watch_stalls(struct rt *rt)
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
        struct part *p = part_find(rt, l->elems[i].topic, l->elems[i].partition);
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
static void test_stray_pause(struct rt *rt)
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

/* ------------------------------------------------------------ admin */

/* @locality libmicrohttpd's connection thread: only records the request. */
static int admin_route(void *opaque, const struct zl_health_request *req, struct zl_health_response *resp)
{
    const struct zl_stage *st = opaque;
    if (strcmp(req->path, "/admin/breakers/reset") != 0)
        return -1;
    if (strcmp(req->method, "POST") != 0 || st->reset_breakers == NULL) {
        /* 405 for a wrong method; 404 when the stage has no breakers. */
        resp->status = st->reset_breakers == NULL ? 404 : 405;
        resp->body = strdup("{\"error\":\"POST /admin/breakers/reset is not available here\"}");
        resp->body_len = resp->body ? strlen(resp->body) : 0;
        return 0;
    }
    const char *dep = "";
    json_t *in = req->body_len > 0 ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
    if (json_is_string(json_object_get(in, "dependency")))
        dep = json_string_value(json_object_get(in, "dependency"));
    pthread_mutex_lock(&reset_lock);
    snprintf(reset_dependency, sizeof(reset_dependency), "%s", dep);
    pthread_mutex_unlock(&reset_lock);
    atomic_store(&reset_requested, true);
    json_t *out = json_pack("{s:b,s:s}", "accepted", 1, "dependency", dep[0] ? dep : "*");
    json_decref(in);
    resp->status = 202; /* carried out between batches, within a poll interval */
    resp->body = json_dumps(out, JSON_COMPACT);
    resp->body_len = resp->body ? strlen(resp->body) : 0;
    json_decref(out);
    return 0;
}

/* @locality main thread. */
static void apply_admin_requests(struct rt *rt)
{
    if (!atomic_exchange(&reset_requested, false))
        return;
    char dep[sizeof(reset_dependency)];
    pthread_mutex_lock(&reset_lock);
    memcpy(dep, reset_dependency, sizeof(dep));
    pthread_mutex_unlock(&reset_lock);
    int n = rt->stage->reset_breakers(rt->stage->ctx, dep[0] ? dep : NULL);
    zl_log(ZL_LOG_WARN, NULL, "admin: reset %d circuit breaker(s) for dependency %s", n, dep[0] ? dep : "*");
}

/* ------------------------------------------------------------ lifecycle */

static int build_names(struct rt *rt, char *err, size_t err_size)
{
    const struct zl_stage *st = rt->stage;
    const char *prefix = rt->cfg.topic_prefix;
    size_t pl = (size_t)snprintf(rt->past_states, sizeof(rt->past_states), "{");
    for (int s = (int)st->done_state; s <= (int)ZL_STATE_CREDITED && pl < sizeof(rt->past_states); s++)
        pl += (size_t)snprintf(rt->past_states + pl, sizeof(rt->past_states) - pl, "%s%s",
                               s == (int)st->done_state ? "" : ",", zl_state_name((zl_state)s));
    if (pl + 2 > sizeof(rt->past_states)) {
        snprintf(err, err_size, "stage %s: past-states list does not fit", st->name);
        return -1;
    }
    memcpy(rt->past_states + pl, "}", 2);
    if (rt->cfg.group_id[0] != '\0')
        snprintf(rt->group_id, sizeof(rt->group_id), "%s", rt->cfg.group_id);
    else
        snprintf(rt->group_id, sizeof(rt->group_id), "zl-%s", st->name);
    int rc = 0;
    if (rt->cfg.in_topic[0] != '\0')
        snprintf(rt->in_topic, sizeof(rt->in_topic), "%s", rt->cfg.in_topic);
    else
        rc |= zl_topic_join(rt->in_topic, sizeof(rt->in_topic), prefix, zl_topic_kind_suffix(st->in_kind));
    if (rt->cfg.out_topic[0] != '\0')
        snprintf(rt->out_topic, sizeof(rt->out_topic), "%s", rt->cfg.out_topic);
    else
        rc |= zl_topic_join(rt->out_topic, sizeof(rt->out_topic), prefix, zl_topic_kind_suffix(st->out_kind));
    rc |= zl_topic_dlq(rt->dlq_topic, sizeof(rt->dlq_topic), prefix, st->name);
    if (rc != 0) {
        snprintf(err, err_size, "ZL_TOPIC_PREFIX \"%s\": topic names would be invalid", prefix);
        return -1;
    }
    rt->ntiers = zl_parse_tiers_ms(rt->cfg.retry_tiers_ms, rt->tier_delay_ms, ZL_RETRY_TIERS_MAX, err, err_size);
    if (rt->ntiers <= 0) {
        if (rt->ntiers == 0)
            snprintf(err, err_size, "ZL_RETRY_TIERS_MS: at least one tier is needed");
        return -1;
    }
    for (int i = 0; i < rt->ntiers; i++)
        if (zl_topic_retry(rt->retry_topics[i], sizeof(rt->retry_topics[i]), prefix, st->name, i) != 0)
            return -1;
    return 0;
}

static void describe_metrics(struct rt *rt)
{
    struct zl_metrics *m = rt->metrics;
    char labels[160];
    zl_metrics_describe(m, "zl_messages_total", ZL_METRIC_COUNTER, "messages handled, by outcome");
    zl_metrics_describe(m, "zl_retries_total", ZL_METRIC_COUNTER, "messages sent to a delay tier");
    zl_metrics_describe(m, "zl_dlq_total", ZL_METRIC_COUNTER, "messages dead-lettered, by class");
    zl_metrics_describe(m, "zl_outage_paused", ZL_METRIC_GAUGE, "1 while consumption is paused by an outage");
    zl_metrics_describe(m, "zl_consumer_lag", ZL_METRIC_GAUGE, "messages behind the end of the assigned partitions");
    zl_metrics_describe(m, "zl_partition_stalls_total", ZL_METRIC_COUNTER,
                        "partitions found with messages waiting and no progress for ZL_STALL_MS, then re-seeked");
    static const double buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    zl_metrics_describe_histogram(m, "zl_processing_seconds", "time from batch start to outcome, per message",
                                  buckets, sizeof(buckets) / sizeof(buckets[0]));
    snprintf(labels, sizeof(labels), "stage=\"%s\"", rt->stage->name);
    rt->m_latency = zl_metrics_histogram_handle(m, "zl_processing_seconds", labels);
    rt->m_paused = zl_metrics_gauge_handle(m, "zl_outage_paused", labels);
    rt->m_lag = zl_metrics_gauge_handle(m, "zl_consumer_lag", labels);
    rt->m_stalls = zl_metrics_counter_handle(m, "zl_partition_stalls_total", labels);
    for (int ph = PH_SKIP; ph <= PH_UNFINISHED; ph++) {
        snprintf(labels, sizeof(labels), "stage=\"%s\",outcome=\"%s\"", rt->stage->name, phase_outcome(ph));
        rt->m_outcome[ph] = zl_metrics_counter_handle(m, "zl_messages_total", labels);
    }
    rt->m_outcome[PH_NEW] = rt->m_outcome[PH_UNFINISHED];
}

/* Consumer lag from librdkafka's statistics. @locality main thread (served
 * by consumer_poll). Returns 0: librdkafka frees the json. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    (void)rk;
    struct rt *rt = opaque;
    json_error_t jerr;
    json_t *doc = json_loadb(json, json_len, 0, &jerr);
    if (doc == NULL)
        return 0;
    int64_t lag = 0;
    const char *tname;
    json_t *topic;
    json_object_foreach(json_object_get(doc, "topics"), tname, topic)
    {
        const char *pname;
        json_t *part;
        json_object_foreach(json_object_get(topic, "partitions"), pname, part)
        {
            json_int_t l = json_integer_value(json_object_get(part, "consumer_lag"));
            if (l > 0 && strcmp(pname, "-1") != 0)
                lag += l;
        }
    }
    json_decref(doc);
    zl_metric_gauge_set(rt->m_lag, (double)lag);
    return 0;
}

static int start(struct rt *rt, char *err, size_t err_size)
{
    if (zl_backoff_init(&rt->backoff, rt->cfg.outage_base_ms, rt->cfg.outage_cap_ms, 0 /* seed from time */, err,
                        err_size) != 0 ||
        zl_backoff_init(&rt->inplace, rt->cfg.inplace_base_ms, rt->cfg.inplace_cap_ms, 0, err, err_size) != 0)
        return -1;
    rt->metrics = rt->boot.metrics;
    describe_metrics(rt);
    struct zl_health_opts hopts = {
        .stage = rt->stage->name,
        .liveness_timeout_ms = 60000,
        .route = admin_route,
        .route_opaque = (void *)rt->stage,
    };
    if (zl_boot_serve(&rt->boot, &hopts) != 0) {
        snprintf(err, err_size, "HTTP server not started");
        return -1;
    }
    rt->health = rt->boot.health;
    if (rt->stage->init != NULL) {
        struct zl_runtime_env env = {.metrics = rt->metrics, .health = rt->health, .cfg = &rt->cfg};
        if (rt->stage->init(rt->stage->ctx, &env, err, err_size) != 0)
            return -1;
        rt->stage_inited = true;
    }
    zl_health_set_dep(rt->health, "postgres", false, "connecting", "");
    zl_health_set_dep(rt->health, "kafka", true, "up", "");
    if (zl_pg_init(&rt->pg, rt->cfg.pg_dsn, rt->cfg.pg_connect_timeout_ms) != 0 || zl_state_prepare(&rt->pg) != 0 ||
        (rt->stage->prepare != NULL && rt->stage->prepare(rt->stage->ctx, &rt->pg) != 0)) {
        snprintf(err, err_size, "cannot register statements (ZL_PG_STMTS_MAX too small?)");
        return -1;
    }
    rt->producer = zl_kafka_producer_new(rt->cfg.kafka_brokers, &rt->kprops, rt->cfg.delivery_timeout_ms, dr_cb, rt,
                                         err, err_size);
    if (rt->producer == NULL)
        return -1;
    struct zl_kv_list cprops = rt->kprops; /* shallow: adds below point at cfg strings */
    if (rt->cfg.group_instance_id[0] != '\0') {
        if (cprops.count >= ZL_KV_MAX) {
            snprintf(err, err_size, "ZL_GROUP_INSTANCE_ID: too many Kafka properties already (%d)", ZL_KV_MAX);
            return -1;
        }
        cprops.items[cprops.count].key = (char *)"group.instance.id";
        cprops.items[cprops.count++].value = rt->cfg.group_instance_id;
    }
    rt->consumer =
        zl_kafka_consumer_new(rt->cfg.kafka_brokers, rt->group_id, &cprops, rebalance_cb, stats_cb, rt, err, err_size);
    if (rt->consumer == NULL)
        return -1;
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1 + rt->ntiers);
    rd_kafka_topic_partition_list_add(subs, rt->in_topic, RD_KAFKA_PARTITION_UA);
    for (int i = 0; i < rt->ntiers; i++)
        rd_kafka_topic_partition_list_add(subs, rt->retry_topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rt->consumer, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, err_size, "subscribe: %s", rd_kafka_err2str(e));
        return -1;
    }
    /* Connect now so readiness is honest from the start; if the database is
     * down, the first batch finds the outage and pauses. */
    char perr[ZL_ERRSTR_SIZE];
    zl_class c = zl_pg_ensure(&rt->pg, perr, sizeof(perr));
    zl_health_set_dep(rt->health, "postgres", c == ZL_OK, c == ZL_OK ? "up" : "down", c == ZL_OK ? "" : perr);
    if (c != ZL_OK)
        enter_outage(rt, perr);
    zl_log(ZL_LOG_INFO, NULL, "started: group %s, in %s, out %s, dlq %s, %d retry tiers, http port %u", rt->group_id,
           rt->in_topic, rt->out_topic, rt->dlq_topic, rt->ntiers, (unsigned)zl_health_port(rt->health));
    return 0;
}

static void loop(struct rt *rt)
{
    size_t cap = (size_t)rt->cfg.batch_size_max;
    struct zl_work *ws = calloc(cap, sizeof(*ws));
    ZL_ASSERT(ws != NULL);
    while (zl_boot_running()) {
        char fatal[512];
        if (rd_kafka_fatal_error(rt->consumer, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* E.g. fenced: another live consumer has our group.instance.id.
             * This consumer can never fetch again; exit non-zero so the
             * supervisor restarts the worker instead of it idling forever
             * while looking alive. Nothing uncommitted is lost: offsets are
             * stored only after delivery. */
            zl_log(ZL_LOG_ERROR, NULL, "consumer fatal error, exiting for a restart: %s", fatal);
            rt->consumer_fatal = true;
            break;
        }
        zl_health_heartbeat(rt->health);
        apply_admin_requests(rt);
        if (rt->outage)
            ride_out_outage(rt);
        resume_due(rt);
        size_t n = 0;
        int64_t fill_until = 0;
        while (n < cap && zl_boot_running()) {
            int timeout = n == 0 ? (int)rt->cfg.poll_timeout_ms : (int)(fill_until - zl_now_ms());
            if (n > 0 && timeout <= 0)
                break;
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rt->consumer, timeout < 0 ? 0 : timeout);
            if (m == NULL) {
                if (n == 0)
                    break;
                continue;
            }
            if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    zl_log(ZL_LOG_WARN, NULL, "consumer: %s", rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                continue;
            }
            memset(&ws[n], 0, sizeof(ws[n]));
            ws[n].msg = m;
            ws[n].tier = -1;
            ws[n].started_ms = zl_now_ms();
            if (n == 0)
                fill_until = zl_now_ms() + rt->cfg.batch_fill_ms;
            n++;
        }
        if (n > 0) {
            rt->idle_since_ms = 0;
            process_batch(rt, ws, n);
            test_stray_pause(rt);
        } else if (rt->idle_since_ms == 0) {
            rt->idle_since_ms = zl_now_ms();
        }
        watch_stalls(rt);
        for (size_t i = 0; i < n; i++)
            rd_kafka_message_destroy(ws[i].msg);
        rd_kafka_poll(rt->producer, 0 /* non-blocking: serve stray callbacks */);
    }
    free(ws);
}

static void stop(struct rt *rt)
{
    if (rt->health != NULL)
        zl_health_set_draining(rt->health);
    if (rt->consumer != NULL) {
        /* Order matters: stored offsets are committed, then the group is left,
         * so the next owner starts exactly after what we finished. */
        rd_kafka_commit(rt->consumer, NULL, 0 /* sync */);
        rd_kafka_consumer_close(rt->consumer);
        rd_kafka_destroy(rt->consumer);
    }
    if (rt->producer != NULL) {
        rd_kafka_flush(rt->producer, (int)rt->cfg.delivery_timeout_ms);
        rd_kafka_destroy(rt->producer);
    }
    zl_pg_close(&rt->pg);
    if (rt->stage_inited && rt->stage->fini != NULL)
        rt->stage->fini(rt->stage->ctx);
    zl_boot_stop(&rt->boot); /* the HTTP server, metrics and config */
}

int zl_runtime_main(const struct zl_stage *stage, struct zl_config_section *extra, size_t nextra, int argc,
                    char **argv)
{
    static struct rt rt; /* large (partition table): static, one per process */
    memset(&rt, 0, sizeof(rt));
    rt.stage = stage;
    struct zl_boot_opts bo = {
        .name = stage->name,
        .service = true,
        .metrics_series_max = 512,
        .runtime = &rt.cfg,
        .sections = extra,
        .nsections = nextra,
        .kafka_props = &rt.kprops,
        .argc = argc,
        .argv = argv,
    };
    int rc = ZL_EXIT_OK;
    if (zl_boot_start(&rt.boot, &bo, &rc) != 0)
        return rc;
    char err[ZL_ERRSTR_SIZE];
    if (build_names(&rt, err, sizeof(err)) != 0) {
        zl_log(ZL_LOG_ERROR, NULL, "configuration: %s", err);
        zl_boot_stop(&rt.boot);
        return ZL_EXIT_CONFIG;
    }
    if (start(&rt, err, sizeof(err)) != 0) {
        zl_log(ZL_LOG_ERROR, NULL, "startup: %s", err);
        rc = ZL_EXIT_FATAL;
    } else {
        loop(&rt);
        if (rt.consumer_fatal)
            rc = ZL_EXIT_FATAL;
        else
            zl_log(ZL_LOG_INFO, NULL, "signal received: drained, committing and leaving the group");
    }
    stop(&rt);
    if (rc == ZL_EXIT_OK)
        zl_log(ZL_LOG_INFO, NULL, "stopped cleanly");
    return rc;
}
