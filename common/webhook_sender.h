/* webhook_sender.h: the notify stage's sender threads, which send the
 * outbox (webhook_outbox.h) to the subscribers, signed (webhook_sign.h).
 *
 * A thread claims one due subscriber at a time with a transaction-scoped
 * advisory lock (so one sender, of any thread or replica, works on a
 * subscriber at once and its deliveries go out in seq order), sends up to
 * batch_max of its pending deliveries in order, and records each outcome:
 *
 *   2xx                                    delivered
 *   408, 429, 5xx, timeout, no connection  retried (outcome "retry")
 *   any other status                       retried too (outcome "rejected":
 *                                          the receiver refuses, counted apart)
 *
 * A failure stops that subscriber's batch and backs off only that
 * subscriber (failures in a row -> base * 2^n, capped), never the consumer
 * or another subscriber. A delivery still failing give_up_ms after it was
 * armed is marked failed, and a dead letter (its body, with readable
 * headers: subscriber, delivery id, last error) goes to dlq_topic; then the
 * subscriber's next delivery is tried. `zlctl webhook redeliver` re-arms
 * it.
 *
 * Metrics: zl_notify_deliveries_total{outcome}, zl_notify_backlog{subscriber}
 * (pending deliveries, per active subscriber) and
 * zl_notify_oldest_pending_seconds, refreshed every few seconds.
 *
 * Secrets are read from the table for each claim (a rotation applies at
 * the next claim) and never logged.
 *
 * @locality start and stop on the main thread; the senders run on threads
 * of their own, each with its own database connection and HTTP handle.
 */
#ifndef ZL_WEBHOOK_SENDER_H
#define ZL_WEBHOOK_SENDER_H

#include <stdint.h>

#include "config.h"
#include "metrics.h"
#include "zl.h"

/* Sender threads at most (ZL_NOTIFY_SENDERS' bound). */
#define ZL_WEBHOOK_SENDERS_MAX 32

struct zl_webhook_sender_opts {
    const char *pg_dsn;                   /* borrowed for the call (copied per thread) */
    int64_t pg_connect_timeout_ms;
    int threads;                          /* 1..ZL_WEBHOOK_SENDERS_MAX */
    int64_t http_timeout_ms;              /* bound on one delivery's POST */
    int64_t backoff_base_ms;              /* a subscriber's first retry after this */
    int64_t backoff_cap_ms;               /* and never later than this */
    int64_t give_up_ms;                   /* a delivery failing this long after it was armed: failed + DLQ */
    int64_t poll_ms;                      /* an idle sender looks again after this */
    int64_t batch_max;                    /* deliveries sent per claim of a subscriber */
    const char *kafka_brokers;            /* borrowed for the call */
    const struct zl_kv_list *kafka_props; /* borrowed for the call */
    int64_t delivery_timeout_ms;          /* bound on a dead letter's produce */
    const char *dlq_topic;                /* borrowed for the call: "<prefix>notify.dlq" */
    struct zl_metrics *metrics;           /* borrowed: must outlive the sender */
};

struct zl_webhook_sender;

/* Starts the senders. Returns 0 with *out (freed by zl_webhook_sender_stop),
 * or -1 with errstr and nothing started (bad options, no producer, no
 * thread). */
int zl_webhook_sender_start(struct zl_webhook_sender **out, const struct zl_webhook_sender_opts *o, char *errstr,
                            size_t errstr_size);

/* Stops the senders (each finishes the delivery in flight, bounded by
 * http_timeout_ms), flushes the dead letters and frees s. s may be NULL. */
void zl_webhook_sender_stop(struct zl_webhook_sender *s);

#endif /* ZL_WEBHOOK_SENDER_H */
