#include "sweep.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "kafka.h"
#include "log.h"
#include "trace.h"

/* A row swept again in the same state waits stale_ms * 2^sweeps (at most
 * 2^this) since its last sweep. A flat stale_ms re-published a whole
 * backlog every stale_ms: under load (rows queued behind a slow stage for
 * longer than stale_ms) each pass added the backlog to the queue again, the
 * stage fell further behind, and the chaos suite measured 11 re-publications
 * per row. Doubling bounds it to a few per row however long the backlog
 * lasts, while a row whose message really was lost is still re-published at
 * stale_ms. A string: it is spliced into the SQL text. */
#define ZL_SWEEP_BACKOFF_DOUBLINGS_MAX "6"

/* Non-terminal states on the main path, as a Postgres array literal. */
#define PENDING_STATES "{detected,verified,pinned,mint_submitted,minted}"

static const char SQL_LOCK[] = "SELECT pg_try_advisory_lock($1::bigint)";

static const char SQL_STALE[] =
    "SELECT d.deposit_id, d.chain_id::text, d.tx_hash, d.log_index::text, d.block_number::text, d.block_hash,"
    " d.token, d.from_addr, d.to_addr, d.user_id, d.amount::text, d.state, coalesce(d.confirmations, 0)::text,"
    " coalesce(d.metadata_cid, ''), coalesce(d.token_uri, ''), coalesce(d.nft_contract, ''),"
    " coalesce(d.token_id::text, ''), coalesce(d.mint_tx_hash, ''), coalesce(d.trace_id, '')"
    " FROM deposits d LEFT JOIN sweep_marks m ON m.deposit_id = d.deposit_id"
    " WHERE d.state = ANY('" PENDING_STATES "'::text[])"
    " AND d.updated_at < now() - make_interval(secs => $1::bigint / 1000.0)"
    " AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= now())"
    " AND (m.deposit_id IS NULL OR m.state <> d.state"
    "      OR m.swept_at < now() - make_interval(secs => $1::bigint / 1000.0"
    "                                             * power(2, least(m.sweeps, " ZL_SWEEP_BACKOFF_DOUBLINGS_MAX "))))"
    " AND ($3 = '' OR d.deposit_id = $3)"
    " AND ($4::bigint = 0 OR d.chain_id = $4::bigint)"
    " ORDER BY d.updated_at LIMIT $2::int";

static const char SQL_MARK[] =
    "INSERT INTO sweep_marks (deposit_id, state) SELECT * FROM unnest($1::text[], $2::text[])"
    " ON CONFLICT (deposit_id) DO UPDATE SET state = EXCLUDED.state, swept_at = now(),"
    " sweeps = CASE WHEN sweep_marks.state = EXCLUDED.state THEN sweep_marks.sweeps + 1 ELSE 1 END";

static const char SQL_REQ_TAKE[] =
    "UPDATE sweep_requests SET started_at = now() WHERE id = (SELECT id FROM sweep_requests"
    " WHERE done_at IS NULL ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING id::text, stale_ms::text, coalesce(deposit_id, '')";

static const char SQL_REQ_DONE[] =
    "UPDATE sweep_requests SET done_at = now(), published = $2::int, error = nullif($3, '') WHERE id = $1::bigint";

/* Pending: detected and not yet finished; oldest by creation (when the
 * detector saw it). Dead: not resolved by an operator. Failing: pending rows
 * whose last attempt failed. Below minimum: settled under their token's
 * minimum (013), waiting for nobody (an operator may credit one). */
static const char SQL_GAUGES[] =
    "SELECT count(*) FILTER (WHERE state = ANY('" PENDING_STATES "'::text[])),"
    " coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE state = ANY('" PENDING_STATES
    "'::text[]))), 0)::float8,"
    " count(*) FILTER (WHERE state = 'dead' AND NOT EXISTS (SELECT 1 FROM dead_resolutions r"
    "   WHERE r.deposit_id = d.deposit_id AND r.dlq_topic = coalesce(d.dlq_topic, '')"
    "   AND r.dlq_partition = coalesce(d.dlq_partition, -1) AND r.dlq_offset = coalesce(d.dlq_offset, -1))),"
    " count(*) FILTER (WHERE state = ANY('" PENDING_STATES "'::text[]) AND attempts > 0),"
    " count(*) FILTER (WHERE state = 'below_minimum')"
    " FROM deposits d WHERE state = ANY('{detected,verified,pinned,mint_submitted,minted,dead,below_minimum}'::text[])";

struct delivery {
    int state; /* 0 pending, 1 delivered, -1 failed */
    char error[128];
};

struct zl_sweeper {
    struct zl_sweeper_opts o;
    struct zl_pg pg;
    rd_kafka_t *producer;
    bool active;
    unsigned long lock_reconnects; /* pg.reconnects when the lock was taken */
    struct delivery *deliveries;   /* batch_max entries */
};

/* @locality the sweeper's thread, inside rd_kafka_poll(). */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    struct delivery *d = m->_private;
    if (d == NULL)
        return;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        d->state = -1;
        snprintf(d->error, sizeof(d->error), "%s", rd_kafka_err2str(m->err));
    } else {
        d->state = 1;
    }
}

int64_t zl_sweep_lock_key(const char *topic_prefix, int64_t chain_id)
{
    /* FNV-1a over the prefix and chain: one active sweeper per deployment
     * (prefix) and chain, even when several share one database. */
    uint64_t h = UINT64_C(1469598103934665603);
    for (const char *p = topic_prefix; p != NULL && *p; p++)
        h = (h ^ (uint8_t)*p) * UINT64_C(1099511628211);
    for (int i = 0; i < 8; i++)
        h = (h ^ (uint8_t)((uint64_t)chain_id >> (8 * i))) * UINT64_C(1099511628211);
    return (int64_t)((h & UINT64_C(0x7fffffff00000000)) | (uint64_t)ZL_SWEEP_LOCK_KEY);
}

int zl_state_gauges_prepare(struct zl_pg *p)
{
    return zl_pg_add_stmt(p, "zl_state_gauges", SQL_GAUGES, 0);
}

zl_class zl_state_gauges_refresh(struct zl_pg *p, struct zl_metrics *m, char *errstr, size_t errstr_size)
{
    zl_class c = ZL_OK;
    PGresult *r = zl_pg_prepared(p, "zl_state_gauges", 0, NULL, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    if (m != NULL && PQntuples(r) == 1) {
        zl_metrics_gauge_set(m, "zl_pending_deposits", NULL, strtod(PQgetvalue(r, 0, 0), NULL));
        zl_metrics_gauge_set(m, "zl_oldest_pending_seconds", NULL, strtod(PQgetvalue(r, 0, 1), NULL));
        zl_metrics_gauge_set(m, "zl_dead_deposits", NULL, strtod(PQgetvalue(r, 0, 2), NULL));
        zl_metrics_gauge_set(m, "zl_failing_deposits", NULL, strtod(PQgetvalue(r, 0, 3), NULL));
        zl_metrics_gauge_set(m, "zl_below_minimum_deposits", NULL, strtod(PQgetvalue(r, 0, 4), NULL));
    }
    PQclear(r);
    return ZL_OK;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    if (s == NULL || s[0] < '0' || s[0] > '9')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

static void copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src != NULL ? src : "");
}

int zl_sweep_event_from_row(const char *const *cols, struct zl_event *ev, char *errstr, size_t errstr_size)
{
    static const struct {
        const char *state;
        zl_topic_kind kind;
    } kinds[] = {{"detected", ZL_TOPIC_DETECTED},
                 {"verified", ZL_TOPIC_VERIFIED},
                 {"pinned", ZL_TOPIC_PINNED},
                 {"mint_submitted", ZL_TOPIC_PINNED},
                 {"minted", ZL_TOPIC_MINTED}};
    const char *state = cols[11] != NULL ? cols[11] : "";
    zl_topic_kind kind = ZL_TOPIC_ANY;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(state, kinds[i].state) == 0)
            kind = kinds[i].kind;
    if (kind == ZL_TOPIC_ANY)
        return 1;
    zl_event_init(ev, kind);
    uint64_t v;
    copy(ev->deposit_id, sizeof(ev->deposit_id), cols[0]);
    copy(ev->tx_hash, sizeof(ev->tx_hash), cols[2]);
    if (cols[1] == NULL || cols[1][0] == '\0') {
        /* A Solana row (no chain_id): its cluster and instruction are the
         * id's; validate below checks they agree with tx_hash. */
        char sig[ZL_EVENT_TXID_SIZE];
        if (zl_sol_deposit_id_parse(ev->deposit_id, ev->chain, sig, ev->instruction) != 0)
            goto bad;
    } else {
        if (parse_u64(cols[1], ZL_JSON_SAFE_INT_MAX, &v) != 0)
            goto bad;
        ev->chain_id = v;
        if (parse_u64(cols[3], UINT32_MAX, &v) != 0)
            goto bad;
        ev->log_index = (uint32_t)v;
        copy(ev->block_hash, sizeof(ev->block_hash), cols[5]);
    }
    if (parse_u64(cols[4], ZL_JSON_SAFE_INT_MAX, &v) != 0)
        goto bad;
    ev->block_number = v;
    copy(ev->token, sizeof(ev->token), cols[6]);
    copy(ev->from, sizeof(ev->from), cols[7]);
    copy(ev->to, sizeof(ev->to), cols[8]);
    copy(ev->user_id, sizeof(ev->user_id), cols[9]);
    copy(ev->amount, sizeof(ev->amount), cols[10]);
    if (kind >= ZL_TOPIC_VERIFIED) {
        if (parse_u64(cols[12], UINT32_MAX, &v) != 0)
            goto bad;
        ev->confirmations = (uint32_t)v;
    }
    if (kind >= ZL_TOPIC_PINNED) {
        copy(ev->metadata_cid, sizeof(ev->metadata_cid), cols[13]);
        copy(ev->token_uri, sizeof(ev->token_uri), cols[14]);
    }
    if (kind >= ZL_TOPIC_MINTED) {
        copy(ev->nft_contract, sizeof(ev->nft_contract), cols[15]);
        copy(ev->token_id, sizeof(ev->token_id), cols[16]);
        copy(ev->mint_tx_hash, sizeof(ev->mint_tx_hash), cols[17]);
    }
    return zl_event_validate(ev, errstr, errstr_size) == 0 ? 0 : -1;
bad:
    snprintf(errstr, errstr_size, "row %s: a numeric column is out of range, or a Solana id is malformed",
             cols[0] != NULL ? cols[0] : "?");
    return -1;
}

int zl_sweeper_new(struct zl_sweeper **out, const struct zl_sweeper_opts *o, char *errstr, size_t errstr_size)
{
    *out = NULL;
    struct zl_sweeper *s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto oom;
    s->o = *o;
    if (s->o.batch_max < 1 || s->o.batch_max > ZL_SWEEP_BATCH_LIMIT)
        s->o.batch_max = ZL_SWEEP_BATCH_LIMIT;
    s->deliveries = calloc((size_t)s->o.batch_max, sizeof(*s->deliveries));
    if (s->deliveries == NULL || zl_pg_init(&s->pg, o->pg_dsn, o->pg_connect_timeout_ms) != 0)
        goto oom;
    if (zl_pg_add_stmt(&s->pg, "zl_sweep_lock", SQL_LOCK, 1) != 0 ||
        zl_pg_add_stmt(&s->pg, "zl_sweep_stale", SQL_STALE, 4) != 0 ||
        zl_pg_add_stmt(&s->pg, "zl_sweep_mark", SQL_MARK, 2) != 0 ||
        zl_pg_add_stmt(&s->pg, "zl_sweep_req_take", SQL_REQ_TAKE, 0) != 0 ||
        zl_pg_add_stmt(&s->pg, "zl_sweep_req_done", SQL_REQ_DONE, 3) != 0 || zl_state_gauges_prepare(&s->pg) != 0) {
        snprintf(errstr, errstr_size, "too many prepared statements");
        zl_sweeper_free(s);
        return -1;
    }
    s->producer = zl_kafka_producer_new(o->brokers, o->kafka_props, o->delivery_timeout_ms, dr_cb, s, errstr,
                                        errstr_size);
    if (s->producer == NULL) {
        zl_sweeper_free(s);
        return -1;
    }
    if (o->metrics != NULL) {
        zl_metrics_describe(o->metrics, "zl_pending_deposits", ZL_METRIC_GAUGE,
                            "deposits detected and not yet finished (state table)");
        zl_metrics_describe(o->metrics, "zl_oldest_pending_seconds", ZL_METRIC_GAUGE,
                            "age of the oldest pending deposit since it was detected");
        zl_metrics_describe(o->metrics, "zl_dead_deposits", ZL_METRIC_GAUGE,
                            "deposits dead-lettered and not resolved by an operator");
        zl_metrics_describe(o->metrics, "zl_failing_deposits", ZL_METRIC_GAUGE,
                            "pending deposits whose last attempt failed (retrying)");
        zl_metrics_describe(o->metrics, "zl_below_minimum_deposits", ZL_METRIC_GAUGE,
                            "deposits settled under their token's minimum (below_minimum, never dead-lettered)");
        zl_metrics_describe(o->metrics, "zl_sweep_active", ZL_METRIC_GAUGE,
                            "1 when this sweeper holds the advisory lock");
        zl_metrics_describe(o->metrics, "zl_sweep_published_total", ZL_METRIC_COUNTER,
                            "events re-published for stale rows");
        zl_metrics_describe(o->metrics, "zl_sweep_invalid_total", ZL_METRIC_COUNTER,
                            "stale rows whose event did not validate");
    }
    *out = s;
    return 0;
oom:
    snprintf(errstr, errstr_size, "out of memory");
    zl_sweeper_free(s);
    return -1;
}

void zl_sweeper_free(struct zl_sweeper *s)
{
    if (s == NULL)
        return;
    if (s->producer != NULL) {
        rd_kafka_flush(s->producer, 5000 /* ms */);
        rd_kafka_destroy(s->producer);
    }
    zl_pg_close(&s->pg);
    free(s->deliveries);
    free(s);
}

/* Takes or keeps the advisory lock. A new session (reconnect) lost it. */
static zl_class hold_lock(struct zl_sweeper *s, char *errstr, size_t errstr_size)
{
    if (s->active && s->pg.reconnects == s->lock_reconnects)
        return ZL_OK;
    bool was = s->active;
    s->active = false;
    char key[ZL_INT64_DEC_SIZE];
    snprintf(key, sizeof(key), "%lld", (long long)zl_sweep_lock_key(s->o.topic_prefix, s->o.chain_id));
    const char *v[1] = {key};
    zl_class c = ZL_OK;
    PGresult *r = zl_pg_prepared(&s->pg, "zl_sweep_lock", 1, v, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    s->active = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    s->lock_reconnects = s->pg.reconnects;
    if (s->active != was)
        zl_log(ZL_LOG_INFO, NULL, "sweeper is now %s", s->active ? "active (holds the lock)" : "standby");
    return ZL_OK;
}

static int row_topic(const struct zl_sweeper *s, zl_topic_kind kind, char *out, size_t out_size)
{
    return zl_topic_name(out, out_size, s->o.topic_prefix, kind);
}

/* One sweep of stale rows (or of one deposit). Sets *published. */
static zl_class sweep(struct zl_sweeper *s, int64_t stale_ms, const char *only_id, struct zl_sweep_result *res,
                      int64_t *published, char *errstr, size_t errstr_size)
{
    char stale_s[ZL_INT64_DEC_SIZE], limit_s[ZL_INT64_DEC_SIZE], chain_s[ZL_INT64_DEC_SIZE];
    snprintf(stale_s, sizeof(stale_s), "%" PRId64, stale_ms);
    snprintf(limit_s, sizeof(limit_s), "%" PRId64, s->o.batch_max);
    snprintf(chain_s, sizeof(chain_s), "%" PRId64, s->o.chain_id);
    const char *v[4] = {stale_s, limit_s, only_id, chain_s};
    zl_class c = ZL_OK;
    *published = 0;
    PGresult *r = zl_pg_prepared(&s->pg, "zl_sweep_stale", 4, v, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    int n = PQntuples(r);
    res->selected += n;
    int pending = 0;
    for (int i = 0; i < n; i++) {
        const char *cols[ZL_SWEEP_ROW_COLS];
        for (int k = 0; k < ZL_SWEEP_ROW_COLS; k++)
            cols[k] = PQgetvalue(r, i, k);
        struct zl_event ev;
        char err[ZL_ERRSTR_SIZE];
        struct delivery *d = &s->deliveries[i];
        d->state = -2; /* not sent */
        int ok = zl_sweep_event_from_row(cols, &ev, err, sizeof(err));
        char buf[ZL_EVENT_ENCODED_MAX_BYTES], topic[ZL_TOPIC_NAME_MAX];
        size_t len = 0;
        if (ok != 0 || zl_event_encode(&ev, buf, sizeof(buf), &len, err, sizeof(err)) != 0 ||
            row_topic(s, ev.kind, topic, sizeof(topic)) != 0) {
            struct zl_log_ctx ctx = ZL_LOG_CTX_NONE;
            ctx.deposit_id = cols[0];
            zl_log(ZL_LOG_ERROR, &ctx, "sweep: row makes no valid event, left for an operator: %s", err);
            res->invalid++;
            if (s->o.metrics != NULL)
                zl_metrics_counter_add(s->o.metrics, "zl_sweep_invalid_total", NULL, 1);
            continue;
        }
        char tp[ZL_TRACEPARENT_BUF_SIZE], now[ZL_RFC3339_MS_SIZE];
        zl_trace_new(PQgetvalue(r, i, ZL_SWEEP_ROW_COLS), tp, sizeof(tp), NULL);
        rd_kafka_headers_t *h = rd_kafka_headers_new(3);
        rd_kafka_header_add(h, "traceparent", -1, tp, -1);
        rd_kafka_header_add(h, "zl-attempt", -1, "0", -1);
        rd_kafka_header_add(h, "zl-swept-at", -1, zl_rfc3339_now(now, sizeof(now)), -1);
        d->state = 0;
        rd_kafka_resp_err_t e = rd_kafka_producev(
            s->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(ev.deposit_id, strlen(ev.deposit_id)),
            RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
            RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_headers_destroy(h);
            d->state = -1;
            snprintf(d->error, sizeof(d->error), "%s", rd_kafka_err2str(e));
            continue;
        }
        pending++;
    }
    int64_t deadline = zl_now_ms() + s->o.delivery_timeout_ms + 5000;
    for (;;) {
        int left = 0;
        for (int i = 0; i < n; i++)
            left += s->deliveries[i].state == 0;
        if (left == 0 || zl_now_ms() >= deadline)
            break;
        rd_kafka_poll(s->producer, 50 /* ms */);
    }
    /* Remember what was delivered, so it is not swept again next pass. */
    const char **ids = calloc((size_t)n + 1, sizeof(*ids));
    const char **sts = calloc((size_t)n + 1, sizeof(*sts));
    int nd = 0;
    const char *failure = NULL;
    for (int i = 0; ids != NULL && sts != NULL && i < n; i++) {
        if (s->deliveries[i].state == 1) {
            ids[nd] = PQgetvalue(r, i, 0);
            sts[nd++] = PQgetvalue(r, i, 11);
        } else if (s->deliveries[i].state != -2 && failure == NULL) {
            failure = s->deliveries[i].state == 0 ? "no delivery report in time" : s->deliveries[i].error;
        }
    }
    c = ZL_OK;
    if (nd > 0) {
        char *a1 = zl_pg_array_literal(ids, (size_t)nd), *a2 = zl_pg_array_literal(sts, (size_t)nd);
        if (a1 != NULL && a2 != NULL) {
            const char *mv[2] = {a1, a2};
            PGresult *mr = zl_pg_prepared(&s->pg, "zl_sweep_mark", 2, mv, PGRES_COMMAND_OK, &c, errstr, errstr_size);
            if (mr != NULL)
                PQclear(mr);
        }
        free(a1);
        free(a2);
    }
    free(ids);
    free(sts);
    PQclear(r);
    *published = nd;
    res->published += nd;
    if (s->o.metrics != NULL && nd > 0)
        zl_metrics_counter_add(s->o.metrics, "zl_sweep_published_total", NULL, (uint64_t)nd);
    if (nd > 0)
        zl_log(ZL_LOG_INFO, NULL, "sweep: re-published %d stale rows%s%s", nd, only_id[0] ? " for " : "", only_id);
    if (c != ZL_OK)
        return c;
    if (failure != NULL) {
        snprintf(errstr, errstr_size, "kafka: %s (%d of %d stale rows not delivered; next pass retries)", failure,
                 pending - nd, n);
        return ZL_OUTAGE;
    }
    return ZL_OK;
}

/* Serves admin "sweep now" requests, one at a time, bounded per pass. */
static zl_class serve_requests(struct zl_sweeper *s, struct zl_sweep_result *res, char *errstr, size_t errstr_size)
{
    for (int k = 0; k < 16 /* requests per pass */; k++) {
        zl_class c = ZL_OK;
        PGresult *r = zl_pg_prepared(&s->pg, "zl_sweep_req_take", 0, NULL, PGRES_TUPLES_OK, &c, errstr, errstr_size);
        if (r == NULL)
            return c;
        if (PQntuples(r) == 0) {
            PQclear(r);
            return ZL_OK;
        }
        char id[ZL_INT64_DEC_SIZE], only[ZL_DEPOSIT_ID_SIZE];
        snprintf(id, sizeof(id), "%s", PQgetvalue(r, 0, 0));
        int64_t stale = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        snprintf(only, sizeof(only), "%s", PQgetvalue(r, 0, 2));
        PQclear(r);
        int64_t published = 0;
        char err[ZL_ERRSTR_SIZE] = "";
        zl_class sc = sweep(s, stale, only, res, &published, err, sizeof(err));
        res->requests++;
        char pub[ZL_INT64_DEC_SIZE];
        snprintf(pub, sizeof(pub), "%" PRId64, published);
        const char *v[3] = {id, pub, sc == ZL_OK ? "" : err};
        r = zl_pg_prepared(&s->pg, "zl_sweep_req_done", 3, v, PGRES_COMMAND_OK, &c, errstr, errstr_size);
        if (r == NULL)
            return c;
        PQclear(r);
        zl_log(ZL_LOG_INFO, NULL, "sweep request %s served: %" PRId64 " published%s%s", id, published,
               sc == ZL_OK ? "" : ", ", err);
        if (sc != ZL_OK) {
            snprintf(errstr, errstr_size, "%s", err);
            return sc;
        }
    }
    return ZL_OK;
}

zl_class zl_sweeper_pass(struct zl_sweeper *s, bool sweep_due, struct zl_sweep_result *res, char *errstr,
                         size_t errstr_size)
{
    memset(res, 0, sizeof(*res));
    zl_class c = zl_pg_ensure(&s->pg, errstr, errstr_size);
    if (c != ZL_OK) {
        s->active = false;
        goto out;
    }
    c = hold_lock(s, errstr, errstr_size);
    if (c != ZL_OK)
        goto out;
    c = zl_state_gauges_refresh(&s->pg, s->o.metrics, errstr, errstr_size);
    if (c != ZL_OK || !s->active)
        goto out;
    c = serve_requests(s, res, errstr, errstr_size);
    if (c != ZL_OK || !sweep_due)
        goto out;
    int64_t published = 0;
    c = sweep(s, s->o.stale_ms, "", res, &published, errstr, errstr_size);
out:
    res->active = s->active;
    if (s->o.metrics != NULL)
        zl_metrics_gauge_set(s->o.metrics, "zl_sweep_active", NULL, s->active ? 1 : 0);
    rd_kafka_poll(s->producer, 0 /* serve callbacks */);
    return c;
}
