/* notify: zl.credits.applied -> signed webhooks, the sixth stage (issue 21).
 *
 * An observer (runtime.h, observe): the row is already `credited` and stays
 * so. In the runtime's transaction, for every credited deposit consumed,
 * one delivery per active subscriber goes into the outbox
 * (webhook_outbox.h: a name-based delivery id, unique per subscriber and
 * deposit, so a redelivered credit adds nothing). Sender threads
 * (webhook_sender.h) send each subscriber's deliveries in order, signed
 * (webhook_sign.h), and back off only the subscriber that fails; a delivery
 * failing ZL_NOTIFY_GIVE_UP_MS after it was armed goes to zl.notify.dlq.
 * Kafka's delay tiers are not the retry queue: they would reorder a user's
 * deliveries, and a subscriber down for hours would fill them
 * (docs/architecture.md, "Notify").
 *
 * Failures: a message that does not decode is poison (zl.notify.dlq, the
 * runtime's rules). The database down is an outage (pause); the senders
 * wait for it on their own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "live.h"
#include "log.h"
#include "runtime.h"
#include "webhook_outbox.h"
#include "webhook_sender.h"

struct notify_config {
    int64_t senders;
    int64_t http_timeout_ms;
    int64_t backoff_base_ms;
    int64_t backoff_cap_ms;
    int64_t give_up_ms;
    int64_t poll_ms;
    int64_t batch_max;
};

#define OFF(f) offsetof(struct notify_config, f)
static const struct zl_setting notify_settings[] = {
    {"ZL_NOTIFY_SENDERS", ZL_CFG_INT, "4",
     "webhook sender threads: subscribers served at once (each sends its own deliveries in order)", OFF(senders), 1,
     ZL_WEBHOOK_SENDERS_MAX},
    {"ZL_NOTIFY_HTTP_TIMEOUT_MS", ZL_CFG_INT, "5000", "bound on one webhook POST (connect and answer)",
     OFF(http_timeout_ms), 100, 120000},
    {"ZL_NOTIFY_BACKOFF_BASE_MS", ZL_CFG_INT, "1000",
     "a failing subscriber's first retry after this, doubling per failure in a row", OFF(backoff_base_ms), 1,
     3600000},
    {"ZL_NOTIFY_BACKOFF_CAP_MS", ZL_CFG_INT, "300000", "a failing subscriber is retried at least this often",
     OFF(backoff_cap_ms), 1, 86400000},
    {"ZL_NOTIFY_GIVE_UP_MS", ZL_CFG_INT, "259200000",
     "a delivery still failing this long after it was armed is marked failed and dead-lettered to zl.notify.dlq "
     "(72 h; zlctl webhook redeliver re-arms it)",
     OFF(give_up_ms), 1000, 2592000000},
    {"ZL_NOTIFY_POLL_MS", ZL_CFG_INT, "200", "an idle webhook sender looks for due deliveries this often",
     OFF(poll_ms), 10, 60000},
    {"ZL_NOTIFY_BATCH_MAX", ZL_CFG_INT, "50", "deliveries one sender sends to a subscriber before taking turns",
     OFF(batch_max), 1, 10000},
};
#undef OFF

struct notify {
    struct notify_config cfg;
    struct zl_live_config live_cfg;
    struct zl_webhook_sender *sender;
    struct zl_live *live; /* NULL with ZL_LIVE_PORT=0 */
};

/* Nothing to do before the transaction: the outbox rows are the effect. */
static zl_class notify_process(void *ctx, struct zl_work *w)
{
    (void)ctx;
    (void)w;
    return ZL_OK;
}

static zl_class notify_in_tx(void *ctx, struct zl_pg *pg, struct zl_work *const *works, size_t n, char *errstr,
                             size_t errstr_size)
{
    (void)ctx;
    const char **ids = calloc(n, sizeof(*ids));
    if (ids == NULL) {
        snprintf(errstr, errstr_size, "notify: out of memory for %zu deposits", n);
        return ZL_TRANSIENT;
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = works[i]->in.deposit_id;
    zl_class c = zl_webhook_outbox_insert(pg, ids, n, NULL, errstr, errstr_size);
    free(ids);
    return c;
}

static int notify_prepare(void *ctx, struct zl_pg *pg)
{
    (void)ctx;
    return zl_webhook_outbox_prepare(pg);
}

static int notify_init(void *ctx, const struct zl_runtime_env *env, char *errstr, size_t errstr_size)
{
    struct notify *nt = ctx;
    if (nt->cfg.backoff_cap_ms < nt->cfg.backoff_base_ms) {
        snprintf(errstr, errstr_size, "ZL_NOTIFY_BACKOFF_CAP_MS (%lld) must be >= ZL_NOTIFY_BACKOFF_BASE_MS (%lld)",
                 (long long)nt->cfg.backoff_cap_ms, (long long)nt->cfg.backoff_base_ms);
        return ZL_RUNTIME_INIT_REFUSED;
    }
    char dlq[ZL_TOPIC_NAME_MAX];
    if (zl_topic_dlq(dlq, sizeof(dlq), env->cfg->topic_prefix, "notify") != 0) {
        snprintf(errstr, errstr_size, "ZL_TOPIC_PREFIX \"%s\": the DLQ name would be invalid", env->cfg->topic_prefix);
        return ZL_RUNTIME_INIT_REFUSED;
    }
    struct zl_webhook_sender_opts so = {
        .pg_dsn = env->cfg->pg_dsn,
        .pg_connect_timeout_ms = env->cfg->pg_connect_timeout_ms,
        .threads = (int)nt->cfg.senders,
        .http_timeout_ms = nt->cfg.http_timeout_ms,
        .backoff_base_ms = nt->cfg.backoff_base_ms,
        .backoff_cap_ms = nt->cfg.backoff_cap_ms,
        .give_up_ms = nt->cfg.give_up_ms,
        .poll_ms = nt->cfg.poll_ms,
        .batch_max = nt->cfg.batch_max,
        .kafka_brokers = env->cfg->kafka_brokers,
        .kafka_props = env->kafka_props,
        .delivery_timeout_ms = env->cfg->delivery_timeout_ms,
        .dlq_topic = dlq,
        .metrics = env->metrics,
    };
    if (zl_webhook_sender_start(&nt->sender, &so, errstr, errstr_size) != 0)
        return -1;
    /* The live updates endpoint (common/live.h) reads the state history,
     * not Kafka: it runs beside the consumer, so a slow browser never holds
     * a partition. A wrong setting exits 2 like the stage's own. */
    int lrc = zl_live_start(&nt->live_cfg, env->cfg->pg_dsn, env->cfg->pg_connect_timeout_ms, &nt->live, errstr,
                            errstr_size);
    if (lrc != 0) {
        zl_webhook_sender_stop(nt->sender); /* fini is not called after a failed init */
        nt->sender = NULL;
        return lrc == ZL_LIVE_REFUSED ? ZL_RUNTIME_INIT_REFUSED : -1;
    }
    zl_log(ZL_LOG_INFO, NULL, "notify stage ready: %lld sender(s), give up after %lld ms",
           (long long)nt->cfg.senders, (long long)nt->cfg.give_up_ms);
    return 0;
}

static void notify_fini(void *ctx)
{
    struct notify *nt = ctx;
    zl_live_stop(nt->live);
    nt->live = NULL;
    zl_webhook_sender_stop(nt->sender);
    nt->sender = NULL;
}

/* The stage's one instance, like every stage's g_<stage>. */
static struct notify g_notify;

int main(int argc, char **argv)
{
    const struct zl_stage stage = {
        .name = "notify",
        .in_kind = ZL_TOPIC_CREDITED,
        .out_kind = ZL_TOPIC_CREDITED, /* an observer publishes nothing */
        .accept_states = "{credited}",
        .done_state = ZL_STATE_CREDITED,
        .observe = true,
        .process = notify_process,
        .in_tx = notify_in_tx,
        .prepare = notify_prepare,
        .init = notify_init,
        .fini = notify_fini,
        .ctx = &g_notify,
    };
    struct zl_config_section extra[] = {
        {"Notify stage", notify_settings, sizeof(notify_settings) / sizeof(notify_settings[0]), &g_notify.cfg},
        {"Live updates", zl_live_settings, zl_live_settings_count, &g_notify.live_cfg},
    };
    return zl_runtime_main(&stage, extra, sizeof(extra) / sizeof(extra[0]), argc, argv);
}
