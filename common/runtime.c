/* runtime.c: the runtime's settings, start-up (through boot), the poll
 * loop, the admin request and an orderly stop. See runtime_int.h for the
 * other files. */
#include "runtime_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "health.h"
#include "log.h"

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

/* A section of its own (runtime.h): the same struct, its own table. */
const struct zl_setting zl_runtime_overlap_settings[] = {
    {"ZL_BATCHES_INFLIGHT_MAX", ZL_CFG_INT, "2",
     "poll batches whose outputs may await their delivery reports at once: the next batch is polled and worked on"
     " meanwhile (offsets are still stored only after delivery, in order); 1 = one batch at a time",
     OFF(batches_inflight_max), 1, BATCHES_INFLIGHT_LIMIT},
    {"ZL_TEST_FAIL_PRODUCE_BATCH", ZL_CFG_INT, "0",
     "tests only: every produce of this poll batch (1 = the first) fails, found when the batch finishes (0 = never)",
     OFF(test_fail_produce_batch), 0, 1000000},
};

const size_t zl_runtime_overlap_settings_count =
    sizeof(zl_runtime_overlap_settings) / sizeof(zl_runtime_overlap_settings[0]);
#undef OFF

/* A breaker reset asked for over HTTP (libmicrohttpd's thread), carried out
 * by the main thread, which alone touches the stage's state. */
static atomic_bool reset_requested;
static pthread_mutex_t reset_lock = PTHREAD_MUTEX_INITIALIZER;
static char reset_dependency[128]; /* "" = every breaker */

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
void rt_apply_admin_requests(struct rt *rt)
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
    char labels[RT_METRIC_LABELS_SIZE];
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
    rt_partitions_metrics(rt, labels);
    rt_inflight_metrics(rt, labels);
    for (enum work_phase ph = PH_SKIP; ph <= PH_UNFINISHED; ph++) {
        snprintf(labels, sizeof(labels), "stage=\"%s\",outcome=\"%s\"", rt->stage->name, rt_phase_outcome(ph));
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

/* The whole start-up's budget for looking up the topics the stage
 * produces to: a Kafka down at start delays it by this much at most. */
#define WARM_TOPICS_TIMEOUT_MS 1000

/* Looks up the output, DLQ and retry topics now, so the first message to
 * each after a start is not held for the lookup (zl_kafka_warm_topics). */
static void warm_outputs(struct rt *rt)
{
    const char *names[ZL_RETRY_TIERS_MAX + 2];
    int n = 0;
    if (!rt->stage->observe) /* an observer publishes nothing */
        names[n++] = rt->out_topic;
    names[n++] = rt->dlq_topic;
    for (int i = 0; i < rt->ntiers; i++)
        names[n++] = rt->retry_topics[i];
    int answered = zl_kafka_warm_topics(rt->producer, names, n, WARM_TOPICS_TIMEOUT_MS);
    if (answered < n)
        zl_log(ZL_LOG_INFO, NULL, "%d of %d output topics looked up at start; the rest on their first message",
               answered, n);
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
        struct zl_runtime_env env = {
            .metrics = rt->metrics, .health = rt->health, .cfg = &rt->cfg, .kafka_props = &rt->kprops};
        int r = rt->stage->init(rt->stage->ctx, &env, err, err_size);
        if (r != 0)
            return r == ZL_RUNTIME_INIT_REFUSED ? r : -1;
        rt->stage_inited = true;
    }
    zl_health_set_dep(rt->health, "postgres", false, "connecting", "");
    zl_health_set_dep(rt->health, "kafka", true, "up", "");
    if (zl_pg_init(&rt->pg, rt->cfg.pg_dsn, rt->cfg.pg_connect_timeout_ms) != 0 || zl_state_prepare(&rt->pg) != 0 ||
        (rt->stage->prepare != NULL && rt->stage->prepare(rt->stage->ctx, &rt->pg) != 0)) {
        snprintf(err, err_size, "cannot register statements (ZL_PG_STMTS_MAX too small?)");
        return -1;
    }
    rt->producer = zl_kafka_producer_new(rt->cfg.kafka_brokers, &rt->kprops, rt->cfg.delivery_timeout_ms, rt_dr_cb, rt,
                                         err, err_size);
    if (rt->producer == NULL)
        return -1;
    warm_outputs(rt);
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
        zl_kafka_consumer_new(rt->cfg.kafka_brokers, rt->group_id, &cprops, rt_rebalance_cb, stats_cb, rt, err, err_size);
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
        rt_enter_outage(rt, perr);
    zl_log(ZL_LOG_INFO, NULL, "started: group %s, in %s, out %s, dlq %s, %d retry tiers, http port %u", rt->group_id,
           rt->in_topic, rt->out_topic, rt->dlq_topic, rt->ntiers, (unsigned)zl_health_port(rt->health));
    return 0;
}

/* Polls one batch into b: up to ZL_BATCH_SIZE_MAX messages, the first
 * waited for first_timeout_ms, the rest for ZL_BATCH_FILL_MS after it.
 * Returns how many. */
static size_t poll_batch(struct rt *rt, struct rt_batch *b, int64_t first_timeout_ms)
{
    size_t cap = (size_t)rt->cfg.batch_size_max;
    size_t n = 0;
    int64_t fill_until = 0;
    while (n < cap && zl_boot_running()) {
        int64_t timeout = n == 0 ? first_timeout_ms : fill_until - zl_now_ms();
        if (n > 0 && timeout <= 0)
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rt->consumer, timeout < 0 ? 0 : (int)timeout);
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
        memset(rt_work_of(b->ws[n]), 0, sizeof(struct rt_work));
        b->ws[n]->msg = m;
        b->ws[n]->tier = -1;
        rt_work_of(b->ws[n])->started_ms = zl_now_ms();
        if (n == 0)
            fill_until = zl_now_ms() + rt->cfg.batch_fill_ms;
        n++;
        b->n = n; /* a revoke served by the next poll may hold these */
    }
    return n;
}

static void loop(struct rt *rt)
{
    int rc = rt_inflight_init(rt);
    ZL_ASSERT(rc == 0); /* a few MB at start-up */
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
        if (rt->cfg.group_instance_id[0] != '\0' && zl_kafka_session_timeouts() > 0) {
            /* A static member whose session timed out (a broker outage
             * longer than session.timeout.ms, a stopped process) may never
             * be given partitions again, idling while it looks alive, and
             * hang in close (librdkafka issue 3437, found by the chaos
             * suite). Restart as for fencing: the same instance id rejoins
             * at once. Nothing is lost: offsets are stored after delivery. */
            zl_log(ZL_LOG_ERROR, NULL, "consumer group session timed out as static member %s, exiting for a restart",
                   rt->cfg.group_instance_id);
            rt->consumer_fatal = true;
            rt->session_lost = true;
            break;
        }
        zl_health_heartbeat(rt->health);
        rt_apply_admin_requests(rt);
        if (rt->outage) {
            rt_inflight_finish_all(rt); /* their offsets before the pause */
            rt_ride_out_outage(rt);
        }
        rt_resume_due(rt);
        /* With batches in flight, wait for a next one only as long as a
         * batch fills: their offsets should not wait out an idle poll. */
        int64_t first_ms = rt->ring_count > 0 && rt->cfg.batch_fill_ms < rt->cfg.poll_timeout_ms
                               ? rt->cfg.batch_fill_ms
                               : rt->cfg.poll_timeout_ms;
        struct rt_batch *b = rt_inflight_next(rt);
        b->n = 0;
        rt->filling = b; /* a rewind by a revoke's finish holds what it polled */
        size_t n = poll_batch(rt, b, first_ms);
        if (n > 0) {
            rt->idle_since_ms = 0;
            rt_inflight_run(rt, b);
            rt_test_stray_pause(rt);
        } else {
            rt->filling = NULL;
            rt_inflight_finish_all(rt); /* nothing to overlap with */
            if (rt->idle_since_ms == 0 && rt->ring_count == 0 && first_ms == rt->cfg.poll_timeout_ms)
                rt->idle_since_ms = zl_now_ms();
        }
        rt_watch_stalls(rt);
        rd_kafka_poll(rt->producer, 0 /* non-blocking: serve stray callbacks */);
        if (rt->stage->between != NULL && !rt->outage)
            rt->stage->between(rt->stage->ctx, zl_now_ms());
    }
    /* A fatal consumer error or a signal: what is in flight finishes (its
     * offsets stored, committed by stop). */
    rt_inflight_finish_all(rt);
    rt_inflight_free(rt);
}

static void stop(struct rt *rt)
{
    if (rt->health != NULL)
        zl_health_set_draining(rt->health);
    if (rt->consumer != NULL) {
        /* Order matters: stored offsets are committed, then the group is left,
         * so the next owner starts exactly after what we finished. */
        if (rt->session_lost) {
            /* The group already took our partitions back, and close is what
             * hangs (see loop): what was stored and not committed is
             * consumed again by the next owner, which the stages make
             * harmless. */
            rd_kafka_destroy_flags(rt->consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        } else {
            rd_kafka_commit(rt->consumer, NULL, 0 /* sync */);
            rd_kafka_consumer_close(rt->consumer);
            rd_kafka_destroy(rt->consumer);
        }
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
    /* The stage's sections, then the runtime's batch-overlap section. */
    struct zl_config_section sections[ZL_BOOT_SECTIONS_MAX];
    ZL_ASSERT(nextra + 1 <= ZL_BOOT_SECTIONS_MAX);
    for (size_t i = 0; i < nextra; i++)
        sections[i] = extra[i];
    sections[nextra] = (struct zl_config_section){"runtime: batches in flight", zl_runtime_overlap_settings,
                                                  zl_runtime_overlap_settings_count, &rt.cfg};
    struct zl_boot_opts bo = {
        .name = stage->name,
        .service = true,
        .metrics_series_max = 512,
        .runtime = &rt.cfg,
        .sections = sections,
        .nsections = nextra + 1,
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
    int started = start(&rt, err, sizeof(err));
    if (started == ZL_RUNTIME_INIT_REFUSED) {
        zl_log(ZL_LOG_ERROR, NULL, "configuration: %s", err);
        rc = ZL_EXIT_CONFIG;
    } else if (started != 0) {
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
