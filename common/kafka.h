/* kafka.h: librdkafka clients configured the one way zeroloss relies on, and
 * the names of its topics.
 *
 * Every property the delivery guarantees depend on is set explicitly at the
 * call site (TigerStyle), then the operator's pass-through properties (-X,
 * kafka.* lines) are applied on top, so an operator can tune but the code
 * never silently depends on a default.
 */
#ifndef ZL_KAFKA_H
#define ZL_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "zl.h"

/* Longest topic name we build: prefix + stage + suffix. Kafka's limit is 249. */
#define ZL_TOPIC_NAME_MAX 250
/* Retry tiers per stage: zl.<stage>.retry.0 .. retry.<n-1>. */
#define ZL_RETRY_TIERS_MAX 8

/* Writes "<prefix><suffix>" (e.g. "zl." + "deposits.detected") into out.
 * Returns -1 when the name does not fit or has characters Kafka refuses. */
int zl_topic_join(char *out, size_t out_size, const char *prefix, const char *suffix);

/* "<prefix><stage>.dlq" and "<prefix><stage>.retry.<tier>". */
int zl_topic_dlq(char *out, size_t out_size, const char *prefix, const char *stage);
int zl_topic_retry(char *out, size_t out_size, const char *prefix, const char *stage, int tier);

/* Parses "1000,10000,60000" into delays_ms[]; returns the tier count, or -1
 * with errstr naming the bad element. */
int zl_parse_tiers_ms(const char *s, int64_t *delays_ms, int delays_max, char *errstr, size_t errstr_size);

/* Creates an idempotent producer: enable.idempotence=true, acks=all,
 * message.timeout.ms=delivery_timeout_ms, then pass-through properties,
 * which may not weaken the first two (zl_kafka_producer_guarantees: every
 * producer zeroloss runs is made here, test_code_rules holds that).
 * dr_cb may be NULL. Returns NULL with errstr on failure. The caller owns the
 * handle and destroys it with rd_kafka_destroy() after rd_kafka_flush(). */
/* 0 when conf has acks=all and enable.idempotence=true, else -1 with errstr
 * naming the property, its value and why it is refused. */
int zl_kafka_producer_guarantees(const rd_kafka_conf_t *conf, char *errstr, size_t errstr_size);

rd_kafka_t *zl_kafka_producer_new(const char *brokers, const struct zl_kv_list *props,
                                  int64_t delivery_timeout_ms,
                                  void (*dr_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *),
                                  void *opaque, char *errstr, size_t errstr_size);

/* Creates a consumer in group_id with enable.auto.commit=true (commits only
 * what was stored), enable.auto.offset.store=false, auto.offset.reset=earliest,
 * partition.assignment.strategy=roundrobin, then pass-through
 * properties. rebalance_cb may be NULL. stats_cb, when not NULL, receives
 * librdkafka's statistics JSON every 5 s (for consumer lag). The consumer
 * queue is redirected to the main queue (rd_kafka_poll_set_consumer). */
rd_kafka_t *zl_kafka_consumer_new(const char *brokers, const char *group_id, const struct zl_kv_list *props,
                                  void (*rebalance_cb)(rd_kafka_t *, rd_kafka_resp_err_t,
                                                       rd_kafka_topic_partition_list_t *, void *),
                                  int (*stats_cb)(rd_kafka_t *, char *, size_t, void *),
                                  void *opaque, char *errstr, size_t errstr_size);

/* How many times a consumer of this process lost its group session (no
 * answer from the coordinator for session.timeout.ms: librdkafka logs
 * SESSTMOUT, revokes the assignment and rejoins). Counted from process
 * start; thread-safe. */
uint64_t zl_kafka_session_timeouts(void);

/* Creates topics that do not exist yet (existing ones are left alone and not
 * an error), each with `partitions` partitions, replication factor
 * `replication`, and retention_ms (-1 = forever). Uses the Admin API through
 * any client handle rk. Returns 0, or -1 with errstr naming the topic. */
int zl_kafka_create_topics(rd_kafka_t *rk, const char *const *names, int count, int partitions, int replication,
                           int64_t retention_ms, int timeout_ms, char *errstr, size_t errstr_size);

/* Waits until the cluster's metadata shows every topic in names with each
 * of its partitions led by a broker, polling every ZL_TOPIC_WAIT_POLL_MS for
 * at most timeout_ms. Why: CreateTopics returns once the controller has
 * committed the topics; a broker may answer "unknown topic" for a moment
 * after that, and a client started right then (a stage, an operator's kcat)
 * fails on a topic that zl-topics said was present. Returns 0, or -1 with
 * errstr naming the first topic not ready. */
int zl_kafka_wait_topics(rd_kafka_t *rk, const char *const *names, int count, int timeout_ms, char *errstr,
                         size_t errstr_size);

/* Asks the cluster, through the producer rk, for each topic's partition
 * leaders, within timeout_ms in all. Why: librdkafka 2.0 looks a topic up
 * only when the first message to it is produced, and that message then
 * waits ~0.5-1 s (measured on loopback: 502 ms, then 7 ms for the next;
 * 7 ms for the first once looked up, the lookup itself 2 ms). A stage's
 * first output, retry or dead letter after every start (a deploy, a
 * restart after SIGKILL) paid it. Never fails the caller: a topic not
 * answered in time is looked up on its first message, as before. Returns
 * how many topics answered. */
int zl_kafka_warm_topics(rd_kafka_t *rk, const char *const *names, int count, int timeout_ms);

/* Returns the value of text header `name` copied into out (NUL-terminated),
 * or -1 when absent or too long. */
int zl_kafka_header(const rd_kafka_message_t *m, const char *name, char *out, size_t out_size);

#endif /* ZL_KAFKA_H */
