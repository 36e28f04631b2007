/* zl-kafka-passthrough: the benchmark's reference, the stage runtime minus the
 * database and the decoding. It consumes with the same consumer and producer
 * settings as every worker (zl_kafka_consumer_new / zl_kafka_producer_new),
 * batches the same way (poll up to batch_size_max, then at most
 * ZL_BATCH_FILL_MS' 5 ms more to fill), produces each message's key and value
 * to the output topic, waits for every delivery report of the batch, and only
 * then stores offset + 1 per partition. It stops after `count` messages and
 * prints one JSON line on stdout: messages, seconds from the first consumed
 * message to the last delivery, msgs_per_s, the peak RSS (VmHWM, KiB) and the
 * CPU seconds used (user + system, all threads).
 *
 * Usage: zl-kafka-passthrough BROKERS GROUP IN_TOPIC OUT_TOPIC COUNT
 *                             [BATCH_SIZE_MAX [TIMEOUT_S]]
 * Exit: 0 done, 1 a Kafka error or TIMEOUT_S (default 600) ran out, 2 usage.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "kafka.h"
#include "zl.h"

/* The runtime's own bounds, so the reference batches exactly like it. */
#define BATCH_SIZE_LIMIT 10000
#define POLL_TIMEOUT_MS 100
#define BATCH_FILL_MS 5
#define DELIVERY_TIMEOUT_MS 30000

static volatile sig_atomic_t run = 1;
static void on_signal(int sig)
{
    (void)sig;
    run = 0;
}

struct counts {
    long pending;
    long failed;
};

/* @locality main thread: served from rd_kafka_poll(producer). */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct counts *c = opaque;
    c->pending--;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        c->failed++;
        fprintf(stderr, "zl-kafka-passthrough: delivery failed: %s\n", rd_kafka_err2str(m->err));
    }
}

/* "   1234 kB" -> 1234. Returns -1 when no number leads the text. */
static int parse_long_prefix(const char *s, long *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s)
        return -1;
    *out = v;
    return 0;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Peak resident set size in KiB from /proc/self/status, or -1. */
static long vm_hwm_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmHWM:", 6) == 0 && parse_long_prefix(line + 6, &kib) != 0)
            kib = -1;
    fclose(f);
    return kib;
}

static double cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1.0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* One batch: produce all, wait for all deliveries, store offset + 1 per
 * partition. Returns 0, or -1 when a delivery failed or timed out. */
static int pass_batch(rd_kafka_t *consumer, rd_kafka_t *producer, const char *out_topic, rd_kafka_message_t **ms,
                      size_t n, struct counts *c)
{
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            producer, RD_KAFKA_V_TOPIC(out_topic), RD_KAFKA_V_KEY(ms[i]->key, ms[i]->key_len),
            RD_KAFKA_V_VALUE(ms[i]->payload, ms[i]->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "zl-kafka-passthrough: produce to %s: %s\n", out_topic, rd_kafka_err2str(err));
            return -1;
        }
        c->pending++;
    }
    int64_t deadline = zl_now_ms() + DELIVERY_TIMEOUT_MS + 5000;
    while (c->pending > 0 && zl_now_ms() < deadline)
        rd_kafka_poll(producer, 50 /* ms */);
    if (c->pending > 0 || c->failed > 0)
        return -1;
    rd_kafka_topic_partition_list_t *store = rd_kafka_topic_partition_list_new(16);
    for (size_t i = 0; i < n; i++) {
        const char *topic = rd_kafka_topic_name(ms[i]->rkt);
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(store, topic, ms[i]->partition);
        if (tp == NULL)
            tp = rd_kafka_topic_partition_list_add(store, topic, ms[i]->partition);
        if (ms[i]->offset + 1 > tp->offset)
            tp->offset = ms[i]->offset + 1;
    }
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(consumer, store);
    rd_kafka_topic_partition_list_destroy(store);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        fprintf(stderr, "zl-kafka-passthrough: offsets_store: %s\n", rd_kafka_err2str(err));
    return 0;
}

int main(int argc, char **argv)
{
    long count = 0, batch_size_max = 500, timeout_s = 600;
    if (argc < 6 || argc > 8 || parse_long(argv[5], 1, 1000000000L, &count) != 0 ||
        (argc > 6 && parse_long(argv[6], 1, BATCH_SIZE_LIMIT, &batch_size_max) != 0) ||
        (argc > 7 && parse_long(argv[7], 1, 86400, &timeout_s) != 0)) {
        fprintf(stderr, "usage: zl-kafka-passthrough BROKERS GROUP IN_TOPIC OUT_TOPIC COUNT"
                        " [BATCH_SIZE_MAX(1..%d) [TIMEOUT_S]]\n", BATCH_SIZE_LIMIT);
        return 2;
    }
    const char *brokers = argv[1], *group = argv[2], *in_topic = argv[3], *out_topic = argv[4];
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    struct counts c = {0, 0};
    char err[ZL_ERRSTR_SIZE];
    rd_kafka_t *producer = zl_kafka_producer_new(brokers, NULL, DELIVERY_TIMEOUT_MS, dr_cb, &c, err, sizeof(err));
    if (producer == NULL) {
        fprintf(stderr, "zl-kafka-passthrough: %s\n", err);
        return 1;
    }
    rd_kafka_t *consumer = zl_kafka_consumer_new(brokers, group, NULL, NULL, NULL, NULL, err, sizeof(err));
    if (consumer == NULL) {
        fprintf(stderr, "zl-kafka-passthrough: %s\n", err);
        rd_kafka_destroy(producer);
        return 1;
    }
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, in_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t serr = rd_kafka_subscribe(consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);

    rd_kafka_message_t **ms = calloc((size_t)batch_size_max, sizeof(*ms));
    int rc = serr == RD_KAFKA_RESP_ERR_NO_ERROR && ms != NULL ? 0 : 1;
    long done = 0;
    int64_t first_ms = 0, last_ms = 0, give_up_ms = zl_now_ms() + timeout_s * 1000;
    while (rc == 0 && run && done < count) {
        if (zl_now_ms() > give_up_ms) {
            fprintf(stderr, "zl-kafka-passthrough: %ld of %ld messages after %ld s\n", done, count, timeout_s);
            rc = 1;
            break;
        }
        size_t n = 0;
        int64_t fill_until = 0;
        while (n < (size_t)batch_size_max && done + (long)n < count) {
            int timeout_ms = n == 0 ? POLL_TIMEOUT_MS : (int)(fill_until - zl_now_ms());
            if (n > 0 && timeout_ms <= 0)
                break;
            rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, timeout_ms < 0 ? 0 : timeout_ms);
            if (m == NULL) {
                if (n == 0)
                    break;
                continue;
            }
            if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    fprintf(stderr, "zl-kafka-passthrough: consumer: %s\n", rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                continue;
            }
            if (first_ms == 0)
                first_ms = zl_now_ms();
            if (n == 0)
                fill_until = zl_now_ms() + BATCH_FILL_MS;
            ms[n++] = m;
        }
        if (n > 0 && pass_batch(consumer, producer, out_topic, ms, n, &c) != 0)
            rc = 1;
        for (size_t i = 0; i < n; i++)
            rd_kafka_message_destroy(ms[i]);
        done += (long)n;
        last_ms = zl_now_ms();
    }
    free(ms);
    rd_kafka_commit(consumer, NULL, 0 /* sync */);
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    rd_kafka_flush(producer, DELIVERY_TIMEOUT_MS);
    rd_kafka_destroy(producer);
    if (rc == 0 && done < count)
        rc = 1; /* interrupted */
    double seconds = first_ms > 0 && last_ms > first_ms ? (double)(last_ms - first_ms) / 1000.0 : 0.0;
    printf("{\"messages\":%ld,\"seconds\":%.3f,\"msgs_per_s\":%.0f,\"batch_size_max\":%ld,\"vm_hwm_kib\":%ld,"
           "\"cpu_s\":%.2f,\"ok\":%s}\n",
           done, seconds, seconds > 0 ? (double)done / seconds : 0.0, batch_size_max, vm_hwm_kib(), cpu_s(),
           rc == 0 ? "true" : "false");
    return rc;
}
