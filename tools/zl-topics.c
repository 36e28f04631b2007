/* zl-topics: creates every topic the stages use, idempotently, through
 * librdkafka's Admin API: the event topics, each stage's retry tiers and
 * DLQ. Existing topics are left as they are. DLQs keep their messages far
 * longer than the flow topics: a dead letter waits for a human.
 * Production topics have 3 replicas, min.insync.replicas 2 and no unclean
 * leader election; fewer replicas are refused unless ZL_TOPICS_LOCAL says
 * this is a local or test setup.
 *
 * Usage: zl-topics [--set NAME=VALUE ...] [-X prop=value ...] [EXTRA_TOPIC ...]
 * Exit: 0 ok, 1 the broker refused, 2 configuration error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot.h"
#include "config.h"
#include "envelope.h"
#include "kafka.h"
#include "runtime.h"

/* Stages named in ZL_TOPICS_STAGES, and topics overall: bounds for arrays. */
#define STAGES_MAX 16
#define TOPICS_MAX 256

struct topics_config {
    char *stages;
    int64_t partitions;
    int64_t replication;
    int64_t retention_ms;
    int64_t dlq_retention_ms;
    int64_t timeout_ms;
    bool local;
};

static const struct zl_setting topics_settings[] = {
    {"ZL_TOPICS_STAGES", ZL_CFG_STR, "detect,verify,ipfs-upload,mint,credit,notify",
     "stages whose retry tiers and DLQ to create", offsetof(struct topics_config, stages), 0, 0},
    {"ZL_TOPIC_PARTITIONS", ZL_CFG_INT, "6", "partitions per topic (bounds each stage's parallelism)",
     offsetof(struct topics_config, partitions), 1, 10000},
    {"ZL_TOPIC_REPLICATION", ZL_CFG_INT, "3",
     "replication factor; with 3 or more, min.insync.replicas is 2 (below 3 needs ZL_TOPICS_LOCAL)",
     offsetof(struct topics_config, replication), 1, 16},
    {"ZL_TOPICS_LOCAL", ZL_CFG_BOOL, "false",
     "a local or test setup: allows ZL_TOPIC_REPLICATION below 3 (one broker's loss then loses messages)",
     offsetof(struct topics_config, local), 0, 0},
    {"ZL_TOPIC_RETENTION_MS", ZL_CFG_INT, "604800000", "retention of flow and retry topics (7 days)",
     offsetof(struct topics_config, retention_ms), 60000, INT64_MAX},
    {"ZL_DLQ_RETENTION_MS", ZL_CFG_INT, "-1", "retention of DLQ topics (-1 = forever)",
     offsetof(struct topics_config, dlq_retention_ms), -1, INT64_MAX},
    {"ZL_ADMIN_TIMEOUT_MS", ZL_CFG_INT, "30000", "bound on the broker's answer",
     offsetof(struct topics_config, timeout_ms), 1000, 600000},
};

int main(int argc, char **argv)
{
    static struct zl_boot boot;
    static struct zl_runtime_config rcfg;
    static struct topics_config tcfg;
    struct zl_config_section sections[] = {
        {"zl-topics", topics_settings, sizeof(topics_settings) / sizeof(topics_settings[0]), &tcfg},
    };
    static struct zl_kv_list props;
    char err[ZL_ERRSTR_SIZE];

    /* Positional arguments are extra topics (tests); the config parser gets
     * only the options. */
    char *opts[256];
    int nopts = 0;
    const char *extra[TOPICS_MAX];
    int nextra = 0;
    opts[nopts++] = argv[0];
    for (int i = 1; i < argc && nopts < 254 && nextra < TOPICS_MAX; i++) {
        if (argv[i][0] == '-') {
            opts[nopts++] = argv[i];
            if (i + 1 < argc && (strcmp(argv[i], "--set") == 0 || strcmp(argv[i], "-X") == 0 ||
                                 strcmp(argv[i], "--config") == 0))
                opts[nopts++] = argv[++i];
        } else {
            extra[nextra++] = argv[i];
        }
    }
    opts[nopts] = NULL;
    struct zl_boot_opts bopts = {.name = "zl-topics", .runtime = &rcfg, .sections = sections, .nsections = 1,
                                 .kafka_props = &props, .argc = nopts, .argv = opts};
    int rc = ZL_EXIT_OK;
    if (zl_boot_start(&boot, &bopts, &rc) != 0)
        return rc;

    static char names[TOPICS_MAX][ZL_TOPIC_NAME_MAX];
    const char *flow[TOPICS_MAX], *dlqs[TOPICS_MAX];
    int nflow = 0, ndlq = 0;
    int64_t tiers[ZL_RETRY_TIERS_MAX];
    int ntiers = zl_parse_tiers_ms(rcfg.retry_tiers_ms, tiers, ZL_RETRY_TIERS_MAX, err, sizeof(err));
    int used = 0;
    rc = 2;
    if (tcfg.replication < 3 && !tcfg.local) {
        fprintf(stderr,
                "zl-topics: ZL_TOPIC_REPLICATION=%lld: production topics need 3 replicas (a broker that dies takes "
                "every message only it held); on a local or test setup say so with ZL_TOPICS_LOCAL=true\n",
                (long long)tcfg.replication);
        goto out;
    }
    if (ntiers < 0) {
        fprintf(stderr, "zl-topics: ZL_RETRY_TIERS_MS: %s\n", err);
        goto out;
    }
    for (int k = ZL_TOPIC_KIND_FIRST; k <= ZL_TOPIC_KIND_LAST; k++) {
        if (zl_topic_join(names[used], sizeof(names[used]), rcfg.topic_prefix, zl_topic_kind_suffix(k)) != 0) {
            fprintf(stderr, "zl-topics: ZL_TOPIC_PREFIX \"%s\" makes an invalid topic name\n", rcfg.topic_prefix);
            goto out;
        }
        flow[nflow++] = names[used++];
    }
    char stages[512];
    snprintf(stages, sizeof(stages), "%s", tcfg.stages);
    char *save = NULL;
    int nstages = 0;
    for (char *s = strtok_r(stages, ",", &save); s != NULL; s = strtok_r(NULL, ",", &save)) {
        if (++nstages > STAGES_MAX || used + ntiers + 1 > TOPICS_MAX) {
            fprintf(stderr, "zl-topics: ZL_TOPICS_STAGES: more than %d stages\n", STAGES_MAX);
            goto out;
        }
        for (int t = 0; t < ntiers; t++) {
            if (zl_topic_retry(names[used], sizeof(names[used]), rcfg.topic_prefix, s, t) != 0) {
                fprintf(stderr, "zl-topics: stage \"%s\" makes an invalid topic name\n", s);
                goto out;
            }
            flow[nflow++] = names[used++];
        }
        if (zl_topic_dlq(names[used], sizeof(names[used]), rcfg.topic_prefix, s) != 0) {
            fprintf(stderr, "zl-topics: stage \"%s\" makes an invalid topic name\n", s);
            goto out;
        }
        dlqs[ndlq++] = names[used++];
    }
    for (int i = 0; i < nextra && nflow < TOPICS_MAX; i++)
        flow[nflow++] = extra[i];

    rd_kafka_t *rk =
        zl_kafka_producer_new(rcfg.kafka_brokers, &props, rcfg.delivery_timeout_ms, NULL, NULL, err, sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "zl-topics: %s\n", err);
        goto out;
    }
    rc = 0;
    if (zl_kafka_create_topics(rk, flow, nflow, (int)tcfg.partitions, (int)tcfg.replication, tcfg.retention_ms,
                               (int)tcfg.timeout_ms, err, sizeof(err)) != 0 ||
        zl_kafka_create_topics(rk, dlqs, ndlq, (int)tcfg.partitions, (int)tcfg.replication, tcfg.dlq_retention_ms,
                               (int)tcfg.timeout_ms, err, sizeof(err)) != 0 ||
        zl_kafka_wait_topics(rk, flow, nflow, (int)tcfg.timeout_ms, err, sizeof(err)) != 0 ||
        zl_kafka_wait_topics(rk, dlqs, ndlq, (int)tcfg.timeout_ms, err, sizeof(err)) != 0) {
        fprintf(stderr, "zl-topics: %s\n", err);
        rc = 1;
    } else {
        printf("%d topics present (%d flow and retry, %d DLQ)\n", nflow + ndlq, nflow, ndlq);
    }
    rd_kafka_destroy(rk);
out:
    zl_boot_stop(&boot);
    return rc;
}
