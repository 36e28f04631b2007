/* webhook_sender.c: sender threads for the webhook outbox (see
 * webhook_sender.h). */
#include "webhook_sender.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "kafka.h"
#include "log.h"
#include "pg.h"
#include "webhook_sign.h"

/* pg_try_advisory_xact_lock's first key: the subscriber locks of this file
 * (the second is hashtext(subscriber_id); a collision only skips a turn). */
#define LOCK_CLASS "21"
/* Due subscribers read per look, tried in turn until one is free. */
#define CANDIDATES_MAX 16
/* Subscribers whose backlog is a gauge of its own (the registry is bounded). */
#define GAUGED_SUBSCRIBERS_MAX 64
/* How often one sender refreshes the backlog gauges. */
#define GAUGES_EVERY_MS 5000
/* A sender's sleep is cut into slices this long so a stop is prompt. */
#define SLEEP_SLICE_MS 50
/* Bytes of a URL, a secret, a delivery's body that a sender holds. */
#define URL_BYTES_MAX 2048
#define SECRET_BYTES_MAX 256
/* Text of a uuid with its NUL. */
#define UUID_TEXT_SIZE 37

enum outcome { OUT_DELIVERED, OUT_RETRY, OUT_REJECTED, OUT_FAILED, OUT_COUNT };
static const char *const outcome_names[OUT_COUNT] = {"delivered", "retry", "rejected", "failed"};

struct zl_webhook_sender;

struct sender_thread {
    struct zl_webhook_sender *s;
    int index;
    pthread_t tid;
    bool started;
    struct zl_pg pg;
    CURL *curl;
    int64_t next_gauges_ms;
};

struct zl_webhook_sender {
    struct zl_webhook_sender_opts o;
    char dlq_topic[256];
    atomic_bool running;
    rd_kafka_t *producer; /* dead letters; thread-safe */
    struct zl_backoff backoff; /* read only (ceilings): shared by the threads */
    zl_metric *m_outcome[OUT_COUNT];
    zl_metric *m_oldest;
    struct sender_thread t[ZL_WEBHOOK_SENDERS_MAX];
};

static const struct {
    const char *name, *sql;
    int n;
} stmts[] = {
    {"ws_due",
     "SELECT s.subscriber_id::text FROM webhook_subscribers s WHERE s.active"
     " AND (s.next_attempt_at IS NULL OR s.next_attempt_at <= now())"
     " AND EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.subscriber_id = s.subscriber_id AND d.state = 'pending')"
     " ORDER BY (SELECT min(d.seq) FROM webhook_deliveries d WHERE d.subscriber_id = s.subscriber_id"
     " AND d.state = 'pending') LIMIT $1::int",
     1},
    {"ws_lock", "SELECT pg_try_advisory_xact_lock(" LOCK_CLASS ", hashtext($1))", 1},
    /* Read again under the lock: another sender may have backed it off. */
    {"ws_load",
     "SELECT url, secret, CASE WHEN secret_old IS NOT NULL AND (secret_old_expires_at IS NULL"
     " OR secret_old_expires_at > now()) THEN secret_old ELSE '' END, failures FROM webhook_subscribers"
     " WHERE subscriber_id = $1::uuid AND active AND (next_attempt_at IS NULL OR next_attempt_at <= now())",
     1},
    {"ws_pending",
     "SELECT delivery_id::text, deposit_id, body, attempts,"
     " (extract(epoch FROM now() - armed_at) * 1000)::bigint FROM webhook_deliveries"
     " WHERE subscriber_id = $1::uuid AND state = 'pending' ORDER BY seq LIMIT $2::int",
     2},
    {"ws_delivered",
     "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, last_attempt_at = now(),"
     " delivered_at = now(), last_status = $2::int, last_error = NULL WHERE delivery_id = $1::uuid",
     2},
    {"ws_failed",
     "UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = now(),"
     " last_status = nullif($2, '0')::int, last_error = $3,"
     " state = CASE WHEN $4 = 'give_up' THEN 'failed' ELSE state END WHERE delivery_id = $1::uuid",
     4},
    {"ws_sub_ok",
     "UPDATE webhook_subscribers SET failures = 0, next_attempt_at = NULL, last_error = NULL, updated_at = now()"
     " WHERE subscriber_id = $1::uuid AND failures > 0",
     1},
    {"ws_sub_backoff",
     "UPDATE webhook_subscribers SET failures = failures + 1, last_error = $3, updated_at = now(),"
     " next_attempt_at = now() + $2::bigint * interval '1 millisecond' WHERE subscriber_id = $1::uuid",
     3},
    {"ws_gauges",
     "SELECT s.subscriber_id::text, count(d.delivery_id),"
     " coalesce(extract(epoch FROM now() - min(d.created_at)), 0)::float8 FROM webhook_subscribers s"
     " LEFT JOIN webhook_deliveries d ON d.subscriber_id = s.subscriber_id AND d.state = 'pending'"
     " WHERE s.active GROUP BY s.subscriber_id ORDER BY 1 LIMIT $1::int",
     1},
};

/* ------------------------------------------------------------ helpers */

static void sleep_ms(struct zl_webhook_sender *s, int64_t ms)
{
    for (int64_t left = ms; left > 0 && atomic_load(&s->running); left -= SLEEP_SLICE_MS) {
        int64_t d = left < SLEEP_SLICE_MS ? left : SLEEP_SLICE_MS;
        struct timespec ts = {.tv_sec = d / 1000, .tv_nsec = (d % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
}

/* A statement on the thread's connection; NULL with errstr on failure. */
static PGresult *run(struct sender_thread *t, const char *name, int n, const char *const *v, int expect,
                     char *errstr, size_t errstr_size)
{
    zl_class c;
    return zl_pg_prepared(&t->pg, name, n, v, expect, &c, errstr, errstr_size);
}

static bool run_cmd(struct sender_thread *t, const char *name, int n, const char *const *v, char *errstr,
                    size_t errstr_size)
{
    PGresult *r = run(t, name, n, v, PGRES_COMMAND_OK, errstr, errstr_size);
    PQclear(r);
    return r != NULL;
}

/* ------------------------------------------------------------ HTTP */

/* The receiver's answer is not read: its status says it all. */
static size_t discard(char *p, size_t size, size_t n, void *opaque)
{
    (void)p;
    (void)opaque;
    return size * n;
}

/* POSTs one delivery. Returns its outcome; *status is the HTTP status (0
 * when none came back) and why says what went wrong otherwise. */
static enum outcome post(struct sender_thread *t, const char *url, const char *const *secrets, size_t nsecrets,
                         const char *delivery_id, const char *body, long *status, char *why, size_t why_size)
{
    char sig[ZL_WEBHOOK_HEADER_SIZE + 16], h_sig[sizeof(sig) + 16], h_id[UUID_TEXT_SIZE + 32];
    char cerr[CURL_ERROR_SIZE] = "";
    *status = 0;
    if (zl_webhook_sign(secrets, nsecrets, (int64_t)time(NULL), body, strlen(body), sig, sizeof(sig)) != 0) {
        snprintf(why, why_size, "cannot sign: the subscriber's secret is empty");
        return OUT_REJECTED;
    }
    snprintf(h_sig, sizeof(h_sig), "ZL-Signature: %s", sig);
    snprintf(h_id, sizeof(h_id), "ZL-Delivery-Id: %s", delivery_id);
    struct curl_slist *hdrs = NULL;
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "User-Agent: zeroloss-notify/1");
    hdrs = curl_slist_append(hdrs, "ZL-Event: credit.applied");
    hdrs = curl_slist_append(hdrs, h_id);
    hdrs = curl_slist_append(hdrs, h_sig);
    CURL *h = t->curl;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for timeouts */
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect is a failure: the URL is wrong */
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)t->s->o.http_timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)t->s->o.http_timeout_ms);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    memset(h_sig, 0, sizeof(h_sig));
    if (rc != CURLE_OK) {
        snprintf(why, why_size, "%s: %s", rc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "no answer",
                 cerr[0] ? cerr : curl_easy_strerror(rc));
        return OUT_RETRY;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    if (*status >= 200 && *status < 300)
        return OUT_DELIVERED;
    snprintf(why, why_size, "HTTP %ld", *status);
    bool retryable = *status == 408 || *status == 429 || *status >= 500;
    return retryable ? OUT_RETRY : OUT_REJECTED;
}

/* ------------------------------------------------------------ dead letters */

/* @locality any thread serving rd_kafka_poll on the producer. */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    atomic_int *done = m->_private;
    if (done != NULL)
        atomic_store(done, m->err == RD_KAFKA_RESP_ERR_NO_ERROR ? 1 : -1);
}

/* Writes the given-up delivery to the DLQ and waits for the broker. Returns
 * true once it is there; false leaves the delivery pending. */
static bool dead_letter(struct sender_thread *t, const char *sub, const char *delivery_id, const char *deposit_id,
                        const char *body, int attempts, const char *why)
{
    struct zl_webhook_sender *s = t->s;
    char n[16], now[ZL_RFC3339_MS_SIZE];
    snprintf(n, sizeof(n), "%d", attempts);
    rd_kafka_headers_t *h = rd_kafka_headers_new(8);
    rd_kafka_header_add(h, "zl-dlq-stage", -1, "notify", -1);
    rd_kafka_header_add(h, "zl-dlq-error-class", -1, "permanent", -1);
    rd_kafka_header_add(h, "zl-dlq-error", -1, why, -1);
    rd_kafka_header_add(h, "zl-dlq-attempts", -1, n, -1);
    rd_kafka_header_add(h, "zl-dlq-failed-at", -1, zl_rfc3339_now(now, sizeof(now)), -1);
    rd_kafka_header_add(h, "zl-webhook-subscriber-id", -1, sub, -1);
    rd_kafka_header_add(h, "zl-webhook-delivery-id", -1, delivery_id, -1);
    rd_kafka_header_add(h, "zl-dlq-replay", -1, "zlctl webhook redeliver <zl-webhook-delivery-id>", -1);
    atomic_int done = 0;
    rd_kafka_resp_err_t e = rd_kafka_producev(
        s->producer, RD_KAFKA_V_TOPIC(s->dlq_topic), RD_KAFKA_V_KEY(deposit_id, strlen(deposit_id)),
        RD_KAFKA_V_VALUE((void *)body, strlen(body)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(&done), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(h);
        zl_log(ZL_LOG_WARN, NULL, "notify: dead letter of delivery %s not produced: %s", delivery_id,
               rd_kafka_err2str(e));
        return false;
    }
    /* The report comes within the delivery timeout: librdkafka fails the
     * message by then. Stopping does not cut it short, so `done` outlives
     * every callback that may write it. */
    while (atomic_load(&done) == 0)
        rd_kafka_poll(s->producer, SLEEP_SLICE_MS);
    return atomic_load(&done) == 1;
}

/* ------------------------------------------------------------ one claim */

struct subscriber {
    char id[UUID_TEXT_SIZE];
    char url[URL_BYTES_MAX];
    char secret[SECRET_BYTES_MAX];
    char secret_old[SECRET_BYTES_MAX];
    long long failures;
};

/* Sends sub's pending deliveries in order until one fails or batch_max are
 * sent, inside the caller's transaction (which holds sub's lock). Returns
 * how many were sent, or -1 on a database failure (errstr). */
/* A count or age column of our own tables as a number in [0, max]: a value
 * that does not parse (never expected: the columns are integers) counts as
 * 0, and one past max as max, so a bad row can neither wrap a counter nor
 * make the give-up time negative. */
static long long col_count(const char *v, long long max)
{
    errno = 0;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (end == v || *end != '\0' || n < 0)
        return 0;
    if (errno == ERANGE || n > max)
        return max;
    return n;
}

static int send_batch(struct sender_thread *t, struct subscriber *sub, char *errstr, size_t errstr_size)
{
    struct zl_webhook_sender *s = t->s;
    char lim[ZL_INT64_DEC_SIZE];
    snprintf(lim, sizeof(lim), "%" PRId64, s->o.batch_max);
    const char *pv[2] = {sub->id, lim};
    PGresult *r = run(t, "ws_pending", 2, pv, PGRES_TUPLES_OK, errstr, errstr_size);
    if (r == NULL)
        return -1;
    const char *secrets[ZL_WEBHOOK_SECRETS_MAX] = {sub->secret, sub->secret_old};
    size_t nsecrets = sub->secret_old[0] != '\0' ? 2 : 1;
    int sent = 0;
    bool backed_off = false;
    for (int i = 0; i < PQntuples(r) && atomic_load(&s->running); i++) {
        const char *did = PQgetvalue(r, i, 0), *dep = PQgetvalue(r, i, 1), *body = PQgetvalue(r, i, 2);
        int attempts = (int)col_count(PQgetvalue(r, i, 3), INT32_MAX - 1) + 1;
        long long age_ms = col_count(PQgetvalue(r, i, 4), INT64_MAX);
        long status = 0;
        char why[ZL_ERRSTR_SIZE] = "", st[ZL_INT64_DEC_SIZE];
        enum outcome o = post(t, sub->url, secrets, nsecrets, did, body, &status, why, sizeof(why));
        snprintf(st, sizeof(st), "%ld", status);
        sent++;
        if (o == OUT_DELIVERED) {
            const char *v[2] = {did, st};
            zl_metric_counter_add(s->m_outcome[o], 1);
            if (!run_cmd(t, "ws_delivered", 2, v, errstr, errstr_size))
                goto db_failed;
            continue;
        }
        bool give_up = age_ms >= s->o.give_up_ms;
        if (give_up) {
            char dlq_why[ZL_ERRSTR_SIZE];
            snprintf(dlq_why, sizeof(dlq_why), "webhook delivery gave up after %d attempts over %lld ms: %s",
                     attempts, age_ms, why);
            give_up = dead_letter(t, sub->id, did, dep, body, attempts, dlq_why);
        }
        zl_metric_counter_add(s->m_outcome[give_up ? OUT_FAILED : o], 1);
        zl_log_kv(give_up ? ZL_LOG_ERROR : ZL_LOG_WARN, NULL,
                  give_up ? "webhook delivery failed for good: dead-lettered" : "webhook delivery failed: retrying",
                  "subscriber_id", sub->id, "delivery_id", did, "deposit_id", dep, "outcome", outcome_names[o],
                  "error", why, NULL);
        const char *v[4] = {did, st, why, give_up ? "give_up" : "retry"};
        if (!run_cmd(t, "ws_failed", 4, v, errstr, errstr_size))
            goto db_failed;
        if (give_up)
            continue; /* the next delivery gets its own chance */
        /* Only this subscriber waits, and longer after each failure in a row. */
        char delay[ZL_INT64_DEC_SIZE];
        int64_t d = zl_backoff_ceiling_ms(&s->backoff, (uint32_t)(sub->failures > 30 ? 30 : sub->failures));
        snprintf(delay, sizeof(delay), "%" PRId64, d);
        const char *bv[3] = {sub->id, delay, why};
        if (!run_cmd(t, "ws_sub_backoff", 3, bv, errstr, errstr_size))
            goto db_failed;
        backed_off = true;
        break;
    }
    PQclear(r);
    if (!backed_off && sent > 0) {
        const char *v[1] = {sub->id};
        if (!run_cmd(t, "ws_sub_ok", 1, v, errstr, errstr_size))
            return -1;
    }
    return sent;
db_failed:
    PQclear(r);
    return -1;
}

/* Copies the subscriber loaded under its lock; false when it is no longer
 * due (another sender backed it off, or it was disabled). */
static bool load(struct sender_thread *t, struct subscriber *sub, bool *found, char *errstr, size_t errstr_size)
{
    const char *v[1] = {sub->id};
    PGresult *r = run(t, "ws_load", 1, v, PGRES_TUPLES_OK, errstr, errstr_size);
    *found = r != NULL && PQntuples(r) == 1;
    if (*found) {
        zl_pg_copy_value(sub->url, sizeof(sub->url), r, 0, 0);
        zl_pg_copy_value(sub->secret, sizeof(sub->secret), r, 0, 1);
        zl_pg_copy_value(sub->secret_old, sizeof(sub->secret_old), r, 0, 2);
        sub->failures = col_count(PQgetvalue(r, 0, 3), INT64_MAX);
    }
    PQclear(r);
    return r != NULL;
}

/* One claim: the first due subscriber no other sender holds, its batch sent
 * and committed. Returns deliveries attempted (0: nothing due), -1 on a
 * database failure. */
static int claim_and_send(struct sender_thread *t, char *errstr, size_t errstr_size)
{
    char lim[ZL_INT64_DEC_SIZE];
    snprintf(lim, sizeof(lim), "%d", CANDIDATES_MAX);
    const char *v[1] = {lim};
    PGresult *due = run(t, "ws_due", 1, v, PGRES_TUPLES_OK, errstr, errstr_size);
    if (due == NULL)
        return -1;
    int sent = 0;
    for (int i = 0; i < PQntuples(due) && sent == 0; i++) {
        struct subscriber sub;
        memset(&sub, 0, sizeof(sub));
        zl_pg_copy_value(sub.id, sizeof(sub.id), due, i, 0);
        if (zl_pg_exec(&t->pg, "BEGIN", errstr, errstr_size) != ZL_OK)
            goto failed;
        const char *lv[1] = {sub.id};
        PGresult *l = run(t, "ws_lock", 1, lv, PGRES_TUPLES_OK, errstr, errstr_size);
        bool locked = l != NULL && PQntuples(l) == 1 && strcmp(PQgetvalue(l, 0, 0), "t") == 0;
        PQclear(l);
        bool found = false;
        if (l == NULL || (locked && !load(t, &sub, &found, errstr, errstr_size)))
            goto failed;
        if (locked && found)
            sent = send_batch(t, &sub, errstr, errstr_size);
        memset(sub.secret, 0, sizeof(sub.secret));
        memset(sub.secret_old, 0, sizeof(sub.secret_old));
        if (sent < 0 || zl_pg_exec(&t->pg, "COMMIT", errstr, errstr_size) != ZL_OK)
            goto failed;
    }
    PQclear(due);
    return sent;
failed:
    zl_pg_rollback(&t->pg);
    PQclear(due);
    return -1;
}

static void refresh_gauges(struct sender_thread *t)
{
    struct zl_webhook_sender *s = t->s;
    char lim[ZL_INT64_DEC_SIZE], err[ZL_ERRSTR_SIZE];
    snprintf(lim, sizeof(lim), "%d", GAUGED_SUBSCRIBERS_MAX);
    const char *v[1] = {lim};
    PGresult *r = run(t, "ws_gauges", 1, v, PGRES_TUPLES_OK, err, sizeof(err));
    if (r == NULL)
        return;
    double oldest = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        char labels[UUID_TEXT_SIZE + 32];
        snprintf(labels, sizeof(labels), "subscriber=\"%s\"", PQgetvalue(r, i, 0));
        zl_metrics_gauge_set(s->o.metrics, "zl_notify_backlog", labels, strtod(PQgetvalue(r, i, 1), NULL));
        double age = strtod(PQgetvalue(r, i, 2), NULL);
        oldest = age > oldest ? age : oldest;
    }
    zl_metric_gauge_set(s->m_oldest, oldest);
    PQclear(r);
}

/* ------------------------------------------------------------ threads */

static void *sender_main(void *arg)
{
    struct sender_thread *t = arg;
    struct zl_webhook_sender *s = t->s;
    uint32_t db_failures = 0;
    while (atomic_load(&s->running)) {
        char err[ZL_ERRSTR_SIZE] = "";
        int sent = -1;
        if (zl_pg_ensure(&t->pg, err, sizeof(err)) == ZL_OK) {
            if (t->index == 0 && zl_now_ms() >= t->next_gauges_ms) {
                refresh_gauges(t);
                t->next_gauges_ms = zl_now_ms() + GAUGES_EVERY_MS;
            }
            sent = claim_and_send(t, err, sizeof(err));
        }
        if (sent < 0) {
            /* The database is down or refused: the outbox waits with it. */
            if (db_failures++ == 0)
                zl_log(ZL_LOG_WARN, NULL, "notify sender %d: database: %s", t->index, err);
            sleep_ms(s, zl_backoff_ceiling_ms(&s->backoff, db_failures > 10 ? 10 : db_failures));
            continue;
        }
        db_failures = 0;
        if (sent == 0)
            sleep_ms(s, s->o.poll_ms);
    }
    return NULL;
}

static int check_opts(const struct zl_webhook_sender_opts *o, char *errstr, size_t errstr_size)
{
    if (o->threads < 1 || o->threads > ZL_WEBHOOK_SENDERS_MAX || o->batch_max < 1 || o->poll_ms < 1 ||
        o->http_timeout_ms < 1 || o->give_up_ms < 1 || o->metrics == NULL) {
        snprintf(errstr, errstr_size, "webhook sender: threads must be 1..%d, batch, poll, timeout and give-up > 0",
                 ZL_WEBHOOK_SENDERS_MAX);
        return -1;
    }
    return 0;
}

static void describe(struct zl_webhook_sender *s)
{
    struct zl_metrics *m = s->o.metrics;
    zl_metrics_describe(m, "zl_notify_deliveries_total", ZL_METRIC_COUNTER,
                        "webhook delivery attempts, by outcome (delivered, retry, rejected: a 4xx, failed: given up)");
    zl_metrics_describe(m, "zl_notify_backlog", ZL_METRIC_GAUGE, "pending webhook deliveries, per active subscriber");
    zl_metrics_describe(m, "zl_notify_oldest_pending_seconds", ZL_METRIC_GAUGE,
                        "age of the oldest pending webhook delivery");
    for (int i = 0; i < OUT_COUNT; i++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "outcome=\"%s\"", outcome_names[i]);
        s->m_outcome[i] = zl_metrics_counter_handle(m, "zl_notify_deliveries_total", labels);
    }
    s->m_oldest = zl_metrics_gauge_handle(m, "zl_notify_oldest_pending_seconds", "");
}

int zl_webhook_sender_start(struct zl_webhook_sender **out, const struct zl_webhook_sender_opts *o, char *errstr,
                            size_t errstr_size)
{
    *out = NULL;
    if (check_opts(o, errstr, errstr_size) != 0)
        return -1;
    struct zl_webhook_sender *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(errstr, errstr_size, "webhook sender: out of memory");
        return -1;
    }
    s->o = *o;
    snprintf(s->dlq_topic, sizeof(s->dlq_topic), "%s", o->dlq_topic);
    s->o.dlq_topic = s->dlq_topic;
    s->o.pg_dsn = NULL;
    s->o.kafka_brokers = NULL;
    s->o.kafka_props = NULL; /* borrowed for the call only */
    if (zl_backoff_init(&s->backoff, o->backoff_base_ms, o->backoff_cap_ms, 1 /* no jitter used */, errstr,
                        errstr_size) != 0)
        goto fail;
    describe(s);
    s->producer = zl_kafka_producer_new(o->kafka_brokers, o->kafka_props, o->delivery_timeout_ms, dr_cb, s, errstr,
                                        errstr_size);
    if (s->producer == NULL)
        goto fail;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) { /* before any thread: not thread-safe */
        snprintf(errstr, errstr_size, "webhook sender: curl_global_init failed");
        goto fail;
    }
    atomic_store(&s->running, true);
    for (int i = 0; i < o->threads; i++) {
        struct sender_thread *t = &s->t[i];
        t->s = s;
        t->index = i;
        t->curl = curl_easy_init();
        bool ok = t->curl != NULL && zl_pg_init(&t->pg, o->pg_dsn, o->pg_connect_timeout_ms) == 0;
        for (size_t k = 0; ok && k < sizeof(stmts) / sizeof(stmts[0]); k++)
            ok = zl_pg_add_stmt(&t->pg, stmts[k].name, stmts[k].sql, stmts[k].n) == 0;
        if (!ok || pthread_create(&t->tid, NULL, sender_main, t) != 0) {
            snprintf(errstr, errstr_size, "webhook sender %d: cannot start (memory, statements or thread)", i);
            goto fail;
        }
        t->started = true;
    }
    *out = s;
    return 0;
fail:
    zl_webhook_sender_stop(s);
    return -1;
}

void zl_webhook_sender_stop(struct zl_webhook_sender *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->running, false);
    for (int i = 0; i < ZL_WEBHOOK_SENDERS_MAX; i++) {
        struct sender_thread *t = &s->t[i];
        if (t->started)
            pthread_join(t->tid, NULL);
        if (t->curl != NULL)
            curl_easy_cleanup(t->curl);
        if (t->s != NULL)
            zl_pg_close(&t->pg);
    }
    if (s->producer != NULL) {
        rd_kafka_flush(s->producer, (int)s->o.delivery_timeout_ms);
        rd_kafka_destroy(s->producer);
    }
    free(s);
}
