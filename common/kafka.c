#include "kafka.h"

#include "log.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int legal_topic_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

int zl_topic_join(char *out, size_t out_size, const char *prefix, const char *suffix)
{
    int n = snprintf(out, out_size, "%s%s", prefix, suffix);
    if (n <= 0 || (size_t)n >= out_size || n > 249)
        return -1;
    for (int i = 0; i < n; i++)
        if (!legal_topic_char(out[i]))
            return -1;
    return 0;
}

int zl_topic_dlq(char *out, size_t out_size, const char *prefix, const char *stage)
{
    char suffix[ZL_TOPIC_NAME_MAX];
    snprintf(suffix, sizeof(suffix), "%s.dlq", stage);
    return zl_topic_join(out, out_size, prefix, suffix);
}

int zl_topic_retry(char *out, size_t out_size, const char *prefix, const char *stage, int tier)
{
    char suffix[ZL_TOPIC_NAME_MAX];
    snprintf(suffix, sizeof(suffix), "%s.retry.%d", stage, tier);
    return zl_topic_join(out, out_size, prefix, suffix);
}

int zl_parse_tiers_ms(const char *s, int64_t *delays_ms, int delays_max, char *errstr, size_t errstr_size)
{
    int n = 0;
    const char *p = s;
    while (*p != '\0') {
        char *end = NULL;
        long long v = strtoll(p, &end, 10);
        if (end == p || v <= 0 || (*end != ',' && *end != '\0')) {
            snprintf(errstr, errstr_size, "retry tiers \"%s\": element %d is not a positive number of ms", s, n + 1);
            return -1;
        }
        if (n >= delays_max) {
            snprintf(errstr, errstr_size, "retry tiers \"%s\": more than %d tiers", s, delays_max);
            return -1;
        }
        delays_ms[n++] = v;
        p = *end == ',' ? end + 1 : end;
    }
    return n;
}

/* librdkafka's client-level errors (broker down, authentication refused)
 * as JSON log lines, so an operator sees "SASL authentication error" in the
 * worker's own log, not only a later timeout. The text never holds a
 * password. @locality librdkafka's background thread. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    zl_log_kv(err == RD_KAFKA_RESP_ERR__AUTHENTICATION || rd_kafka_fatal_error(rk, NULL, 0) ? ZL_LOG_ERROR : ZL_LOG_WARN,
              NULL, "kafka client error", "client", rd_kafka_name(rk), "error", rd_kafka_err2name((rd_kafka_resp_err_t)err),
              "reason", reason, NULL);
}

/* Session timeouts librdkafka's consumers reported (its log facility
 * SESSTMOUT), process-wide: a worker has one consumer. */
static atomic_uint_fast64_t g_session_timeouts;

uint64_t zl_kafka_session_timeouts(void)
{
    return (uint64_t)atomic_load(&g_session_timeouts);
}

/* librdkafka's log lines printed as its default logger prints them, and the
 * consumer group's session timeouts counted for the runtime (kafka.h). The
 * facility name is librdkafka's, stable since static membership came (1.4).
 * @locality librdkafka's threads. */
static void consumer_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (strcmp(fac, "SESSTMOUT") == 0)
        atomic_fetch_add(&g_session_timeouts, 1);
    rd_kafka_log_print(rk, level, fac, buf);
}

static int apply_props(rd_kafka_conf_t *conf, const char *const *kv, const struct zl_kv_list *props, char *errstr,
                       size_t errstr_size)
{
    char err[512];
    for (int i = 0; kv[i] != NULL; i += 2) {
        if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], err, sizeof(err)) != RD_KAFKA_CONF_OK) {
            snprintf(errstr, errstr_size, "kafka property %s: %s", kv[i], err);
            return -1;
        }
    }
    for (size_t i = 0; props != NULL && i < props->count; i++) {
        if (rd_kafka_conf_set(conf, props->items[i].key, props->items[i].value, err, sizeof(err)) !=
            RD_KAFKA_CONF_OK) {
            /* The value may be a password: name the property, not the value. */
            snprintf(errstr, errstr_size, "kafka pass-through property %s: %s", props->items[i].key, err);
            return -1;
        }
    }
    return 0;
}

/* One property as the configuration holds it, "" when unreadable. */
static void conf_value(const rd_kafka_conf_t *conf, const char *name, char *out, size_t out_size)
{
    size_t n = out_size;
    if (rd_kafka_conf_get(conf, name, out, &n) != RD_KAFKA_CONF_OK)
        out[0] = '\0';
}

int zl_kafka_producer_guarantees(const rd_kafka_conf_t *conf, char *errstr, size_t errstr_size)
{
    char acks[16], idem[16];
    conf_value(conf, "acks", acks, sizeof(acks));
    conf_value(conf, "enable.idempotence", idem, sizeof(idem));
    /* librdkafka reads acks=all back as -1 */
    if (strcmp(acks, "-1") != 0 && strcmp(acks, "all") != 0) {
        snprintf(errstr, errstr_size,
                 "kafka property acks=%s: zeroloss producers need acks=all (a write acknowledged by a leader alone is "
                 "lost when that leader dies before its followers copy it): remove it from the pass-through "
                 "properties", acks);
        return -1;
    }
    if (strcmp(idem, "true") != 0) {
        snprintf(errstr, errstr_size,
                 "kafka property enable.idempotence=%s: zeroloss producers need the idempotent producer (a retried "
                 "send would otherwise write a message twice or out of order): remove it from the pass-through "
                 "properties", idem);
        return -1;
    }
    return 0;
}

rd_kafka_t *zl_kafka_producer_new(const char *brokers, const struct zl_kv_list *props,
                                  int64_t delivery_timeout_ms,
                                  void (*dr_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *),
                                  void *opaque, char *errstr, size_t errstr_size)
{
    char timeout[ZL_INT64_DEC_SIZE];
    snprintf(timeout, sizeof(timeout), "%" PRId64, delivery_timeout_ms);
    const char *kv[] = {
        "bootstrap.servers", brokers,
        /* No duplicates or reordering from producer retries. */
        "enable.idempotence", "true",
        "acks", "all",
        /* A delivery not confirmed within this bound is reported as failed;
         * the runtime then treats the broker as down and re-processes. */
        "message.timeout.ms", timeout,
        /* Small batching delay: the runtime waits for delivery reports per
         * batch, so a long linger would add straight to latency. */
        "linger.ms", "5",
        "socket.keepalive.enable", "true",
        NULL,
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (apply_props(conf, kv, props, errstr, errstr_size) != 0 ||
        zl_kafka_producer_guarantees(conf, errstr, errstr_size) != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (dr_cb != NULL)
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, opaque);
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk == NULL) {
        snprintf(errstr, errstr_size, "kafka producer: %s", err);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    conf = NULL; /* now owned, and freed, by rk */
    return rk;
}

rd_kafka_t *zl_kafka_consumer_new(const char *brokers, const char *group_id, const struct zl_kv_list *props,
                                  void (*rebalance_cb)(rd_kafka_t *, rd_kafka_resp_err_t,
                                                       rd_kafka_topic_partition_list_t *, void *),
                                  int (*stats_cb)(rd_kafka_t *, char *, size_t, void *),
                                  void *opaque, char *errstr, size_t errstr_size)
{
    const char *kv[] = {
        "bootstrap.servers", brokers,
        "group.id", group_id,
        /* Offsets are stored by the runtime only after the output is
         * delivered; auto-commit then commits only what was stored. */
        "enable.auto.offset.store", "false",
        "enable.auto.commit", "true",
        "auto.commit.interval.ms", "1000",
        /* A new group must not skip deposits published before it started. */
        "auto.offset.reset", "earliest",
        /* Every copy gets its share of EACH topic: the input and every
         * retry tier spread alike. cooperative-sticky balanced only the
         * count over all of a stage's topics together, and handed one copy
         * every input partition while the other got the (mostly idle)
         * retry tiers: two copies then worked no faster than one (issue
         * 19's benchmark). roundrobin is eager (a rebalance stops every
         * copy for a moment), but with static membership, the default,
         * a restarted copy rejoins without one. cooperative-sticky stays
         * available through the pass-through properties; the rebalance
         * callback serves both protocols. */
        "partition.assignment.strategy", "roundrobin",
        "session.timeout.ms", "10000",
        "heartbeat.interval.ms", "1000",
        /* librdkafka's read-ahead (64 MiB by default) is most of a worker's
         * memory, so it is bounded; but not to 4 MiB, as it was. Once the
         * queue is over this bound, librdkafka 2.0 (Debian's) stops fetching
         * and does not look again when the stage drains it: its broker
         * thread sleeps up to 1 s (rd_kafka_max_block_ms; 2.3 added
         * fetch.queue.backoff.ms for this). A backlogged stage then gets at
         * most the bound per second: 4 MiB is ~6,400 events of 656 bytes,
         * and capped the Kafka-only pass-through at 9,870 msg/s where 16 MiB
         * gave 21,385 (bench/results/2026-12-07-runtime.md). 16 MiB is
         * ~25,000 events a second, above any stage's own rate. */
        "queued.max.messages.kbytes", "16384",
        /* An outage pause keeps polling, so this bounds only a wedged loop. */
        "max.poll.interval.ms", "300000",
        "socket.keepalive.enable", "true",
        NULL,
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (apply_props(conf, kv, props, errstr, errstr_size) != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (rebalance_cb != NULL)
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, consumer_log_cb);
    if (stats_cb != NULL) {
        char err0[128];
        rd_kafka_conf_set(conf, "statistics.interval.ms", "5000", err0, sizeof(err0));
        rd_kafka_conf_set_stats_cb(conf, stats_cb);
    }
    rd_kafka_conf_set_opaque(conf, opaque);
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (rk == NULL) {
        snprintf(errstr, errstr_size, "kafka consumer: %s", err);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    conf = NULL; /* now owned, and freed, by rk */
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

int zl_kafka_create_topics(rd_kafka_t *rk, const char *const *names, int count, int partitions, int replication,
                           int64_t retention_ms, int timeout_ms, char *errstr, size_t errstr_size)
{
    if (count <= 0)
        return 0;
    char retention[ZL_INT64_DEC_SIZE], min_isr[ZL_INT64_DEC_SIZE];
    snprintf(retention, sizeof(retention), "%" PRId64, retention_ms);
    /* With 3 replicas a write needs 2 of them (acks=all waits for the
     * in-sync set, this bounds how small it may shrink): one broker may be
     * down and nothing acknowledged is lost. */
    snprintf(min_isr, sizeof(min_isr), "%d", replication >= 3 ? 2 : 1);
    rd_kafka_NewTopic_t **nts = calloc((size_t)count, sizeof(*nts));
    if (nts == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    int rc = -1;
    char err[512];
    for (int i = 0; i < count; i++) {
        nts[i] = rd_kafka_NewTopic_new(names[i], partitions, replication, err, sizeof(err));
        if (nts[i] == NULL) {
            snprintf(errstr, errstr_size, "topic %s: %s", names[i], err);
            goto out;
        }
        rd_kafka_NewTopic_set_config(nts[i], "retention.ms", retention);
        rd_kafka_NewTopic_set_config(nts[i], "min.insync.replicas", min_isr);
        /* A replica that missed writes never becomes leader: it would drop
         * them (and with them deposits' events) silently. */
        rd_kafka_NewTopic_set_config(nts[i], "unclean.leader.election.enable", "false");
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, err, sizeof(err));
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, err, sizeof(err));
    rd_kafka_CreateTopics(rk, nts, (size_t)count, opts, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
    if (ev == NULL) {
        snprintf(errstr, errstr_size, "create topics: no answer from the broker in %d ms", timeout_ms + 5000);
    } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "create topics: %s", rd_kafka_event_error_string(ev));
    } else {
        size_t n = 0;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rc = 0;
        for (size_t i = 0; i < n; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                snprintf(errstr, errstr_size, "topic %s: %s", rd_kafka_topic_result_name(res[i]),
                         rd_kafka_topic_result_error_string(res[i]));
                rc = -1;
                break;
            }
        }
    }
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
out:
    for (int i = 0; i < count; i++)
        if (nts[i] != NULL)
            rd_kafka_NewTopic_destroy(nts[i]);
    free(nts);
    return rc;
}

enum { ZL_TOPIC_WAIT_POLL_MS = 100, ZL_TOPIC_METADATA_TIMEOUT_MS = 5000 };

/* NULL when topic is led everywhere in md; else why not, for the error. */
static const char *topic_not_ready(const struct rd_kafka_metadata *md, const char *topic)
{
    for (int t = 0; t < md->topic_cnt; t++) {
        const struct rd_kafka_metadata_topic *mt = &md->topics[t];
        if (strcmp(mt->topic, topic) != 0)
            continue;
        if (mt->err != RD_KAFKA_RESP_ERR_NO_ERROR)
            return rd_kafka_err2str(mt->err);
        if (mt->partition_cnt <= 0)
            return "no partitions yet";
        for (int p = 0; p < mt->partition_cnt; p++)
            if (mt->partitions[p].err != RD_KAFKA_RESP_ERR_NO_ERROR || mt->partitions[p].leader < 0)
                return "a partition has no leader yet";
        return NULL;
    }
    return "not in the broker's metadata yet";
}

int zl_kafka_wait_topics(rd_kafka_t *rk, const char *const *names, int count, int timeout_ms, char *errstr,
                         size_t errstr_size)
{
    int64_t deadline_ms = zl_now_ms() + timeout_ms;
    snprintf(errstr, errstr_size, "topics not ready");
    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, ZL_TOPIC_METADATA_TIMEOUT_MS);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(errstr, errstr_size, "metadata: %s", rd_kafka_err2str(e));
        } else {
            int ready = 0;
            for (; ready < count; ready++) {
                const char *why = topic_not_ready(md, names[ready]);
                if (why != NULL) {
                    snprintf(errstr, errstr_size, "topic %s: %s", names[ready], why);
                    break;
                }
            }
            rd_kafka_metadata_destroy(md);
            if (ready == count)
                return 0;
        }
        if (zl_now_ms() >= deadline_ms)
            return -1;
        struct timespec ts = {0, ZL_TOPIC_WAIT_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int zl_kafka_warm_topics(rd_kafka_t *rk, const char *const *names, int count, int timeout_ms)
{
    int64_t deadline_ms = zl_now_ms() + timeout_ms;
    int answered = 0;
    for (int i = 0; i < count; i++) {
        int64_t left_ms = deadline_ms - zl_now_ms();
        if (left_ms <= 0)
            break;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, names[i], NULL);
        if (rkt == NULL)
            continue;
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(rk, 0, rkt, &md, (int)left_ms) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_metadata_destroy(md);
            answered++;
        }
        /* librdkafka keeps the topic and what it learned; only this
         * handle goes. */
        rd_kafka_topic_destroy(rkt);
    }
    return answered;
}

int zl_kafka_header(const rd_kafka_message_t *m, const char *name, char *out, size_t out_size)
{
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    const void *val = NULL;
    size_t len = 0;
    if (rd_kafka_header_get_last(hdrs, name, &val, &len) != RD_KAFKA_RESP_ERR_NO_ERROR || val == NULL)
        return -1;
    if (len >= out_size)
        return -1;
    memcpy(out, val, len);
    out[len] = '\0';
    return 0;
}
