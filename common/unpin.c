/* unpin.c: the orphaned-pin pass and the thread that runs it (unpin.h). */
#include "unpin.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"

#define OFF(f) offsetof(struct zl_unpin_opts, f)
const struct zl_setting zl_unpin_settings[] = {
    {"ZL_UNPIN_ENABLED", ZL_CFG_BOOL, "true",
     "remove the metadata pins of deposits that ended reorged, or dead and resolved, from every provider",
     OFF(enabled), 0, 0},
    {"ZL_UNPIN_GRACE_MS", ZL_CFG_INT, "86400000",
     "unpin only this long after the row became reorged or its dead letter was resolved", OFF(grace_ms), 0,
     31LL * 86400000},
    {"ZL_UNPIN_INTERVAL_MS", ZL_CFG_INT, "60000", "between two unpin passes", OFF(interval_ms), 100, 86400000},
    {"ZL_UNPIN_BATCH_MAX", ZL_CFG_INT, "100", "rows one unpin pass looks at", OFF(batch_max), 1, 10000},
};
#undef OFF
const size_t zl_unpin_settings_count = sizeof(zl_unpin_settings) / sizeof(zl_unpin_settings[0]);

/* Label set of one of the pass's metrics: stage (at most 63 characters)
 * and an outcome. */
#define UNPIN_LABELS_SIZE 128

/* Rows that may never be minted and whose pins are due ($1: grace in ms).
 * The same predicate selects the candidates and re-checks each under its
 * lock, so what changed in between is skipped. The dead letter is the
 * row's current one (its DLQ coordinates, as the admin API matches them):
 * a deposit resolved, requeued and dead again is not resolved. */
#define UNPIN_DUE                                                                                               \
    "d.metadata_cid IS NOT NULL AND d.unpinned_at IS NULL AND d.state IN ('reorged', 'dead')"                  \
    " AND d.token_id IS NULL AND d.mint_tx_hash IS NULL"                                                       \
    " AND NOT EXISTS (SELECT 1 FROM signer_txs t WHERE t.deposit_ids @> ARRAY[d.deposit_id])"                  \
    " AND ((d.state = 'reorged' AND d.updated_at <= now() - $1::bigint * interval '1 millisecond')"            \
    "  OR (d.state = 'dead' AND coalesce(d.dead_from_state, '') NOT IN ('mint_submitted', 'minted', 'credited')" \
    "   AND EXISTS (SELECT 1 FROM dead_resolutions r WHERE r.deposit_id = d.deposit_id"                         \
    "    AND r.dlq_topic = coalesce(d.dlq_topic, '') AND r.dlq_partition = coalesce(d.dlq_partition, -1)"       \
    "    AND r.dlq_offset = coalesce(d.dlq_offset, -1)"                                                          \
    "    AND r.resolved_at <= now() - $1::bigint * interval '1 millisecond')))"

static const struct zl_pg_stmt unpin_stmts[] = {
    /* Rows that failed last go to the back: one provider refusing one CID
     * does not hold up every other row. */
    {"unpin_candidates",
     "SELECT d.deposit_id FROM deposits d WHERE " UNPIN_DUE
     " ORDER BY d.unpin_tried_at NULLS FIRST, d.updated_at LIMIT $2::int",
     2},
    {"unpin_lock", "SELECT d.metadata_cid FROM deposits d WHERE d.deposit_id = $2 AND " UNPIN_DUE
                   " FOR UPDATE OF d SKIP LOCKED",
     2},
    /* Neither touches state nor updated_at: the row did not move. */
    {"unpin_done",
     "UPDATE deposits SET unpinned_at = now(), unpin_error = NULL, unpin_tried_at = now(),"
     " unpin_attempts = unpin_attempts + 1 WHERE deposit_id = $1",
     1},
    {"unpin_failed",
     "UPDATE deposits SET unpin_error = $2, unpin_tried_at = now(), unpin_attempts = unpin_attempts + 1"
     " WHERE deposit_id = $1",
     2},
    /* Pins held for deposits that will never get a receipt (resolved or
     * not, in the grace period or past it). */
    {"unpin_gauge",
     "SELECT count(*) FROM deposits WHERE metadata_cid IS NOT NULL AND unpinned_at IS NULL"
     " AND state IN ('reorged', 'dead') AND token_id IS NULL",
     0},
};

int zl_unpin_prepare(struct zl_pg *pg)
{
    for (size_t i = 0; i < sizeof(unpin_stmts) / sizeof(unpin_stmts[0]); i++)
        if (zl_pg_add_stmt(pg, unpin_stmts[i].name, unpin_stmts[i].sql, unpin_stmts[i].nparams) != 0)
            return -1;
    return 0;
}

static void count_row(struct zl_metrics *m, const char *stage, const char *outcome)
{
    if (m == NULL)
        return;
    char labels[UNPIN_LABELS_SIZE];
    snprintf(labels, sizeof(labels), "stage=\"%s\",outcome=\"%s\"", stage, outcome);
    zl_metrics_counter_add(m, "zl_unpin_rows_total", labels, 1);
}

/* One row in its own transaction: lock it if still due, ask every
 * provider, record the outcome. Returns ZL_OK or a database failure's
 * class (the transaction is rolled back). */
static zl_class unpin_row(struct zl_pg *pg, struct zl_ipfs *ipfs, const char *id, const char *grace,
                          struct zl_metrics *metrics, const char *stage, struct zl_unpin_summary *s, char *errstr,
                          size_t errstr_size)
{
    zl_class c = zl_pg_exec(pg, "BEGIN", errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    const char *lv[2] = {grace, id};
    PGresult *r = zl_pg_prepared(pg, "unpin_lock", 2, lv, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        goto fail;
    char cid[ZL_IPFS_CID_TEXT_MAX] = "";
    bool due = PQntuples(r) == 1 && zl_pg_copy_value(cid, sizeof(cid), r, 0, 0) == 0;
    PQclear(r);
    if (!due) {
        s->skipped++;
        return zl_pg_exec(pg, "COMMIT", errstr, errstr_size);
    }
    char why[ZL_ERRSTR_SIZE];
    int removed = 0;
    zl_class uc = zl_ipfs_unpin(ipfs, cid, &removed, why, sizeof(why));
    if (uc == ZL_OK) {
        const char *dv[1] = {id};
        r = zl_pg_prepared(pg, "unpin_done", 1, dv, PGRES_COMMAND_OK, &c, errstr, errstr_size);
    } else {
        const char *fv[2] = {id, why};
        r = zl_pg_prepared(pg, "unpin_failed", 2, fv, PGRES_COMMAND_OK, &c, errstr, errstr_size);
    }
    if (r == NULL)
        goto fail;
    PQclear(r);
    c = zl_pg_exec(pg, "COMMIT", errstr, errstr_size);
    if (c != ZL_OK)
        return c; /* not recorded: the next pass asks again, and finds "not pinned" */
    struct zl_log_ctx lc = ZL_LOG_CTX_NONE;
    lc.deposit_id = id;
    if (uc == ZL_OK) {
        s->unpinned++;
        count_row(metrics, stage, "unpinned");
        char n[16];
        snprintf(n, sizeof(n), "%d", removed);
        zl_log_kv(ZL_LOG_INFO, &lc, "orphaned metadata unpinned", "cid", cid, "providers_removed", n, NULL);
    } else {
        s->failed++;
        count_row(metrics, stage, "failed");
        zl_log_kv(ZL_LOG_WARN, &lc, "unpinning orphaned metadata failed; the next pass tries again", "cid", cid,
                  "class", zl_class_name(uc), "error", why, NULL);
    }
    return ZL_OK;
fail:
    zl_pg_rollback(pg);
    return c;
}

zl_class zl_unpin_pass(struct zl_pg *pg, struct zl_ipfs *ipfs, const struct zl_unpin_opts *o,
                       struct zl_metrics *metrics, const char *stage, const atomic_bool *stop,
                       struct zl_unpin_summary *s, char *errstr, size_t errstr_size)
{
    memset(s, 0, sizeof(*s));
    zl_class c = zl_pg_ensure(pg, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    char grace[24], limit[24];
    snprintf(grace, sizeof(grace), "%lld", (long long)o->grace_ms);
    snprintf(limit, sizeof(limit), "%lld", (long long)o->batch_max);
    const char *cv[2] = {grace, limit};
    PGresult *r = zl_pg_prepared(pg, "unpin_candidates", 2, cv, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    int n = PQntuples(r);
    for (int i = 0; i < n && c == ZL_OK && !(stop != NULL && atomic_load(stop)); i++) {
        char id[ZL_DEPOSIT_ID_SIZE];
        if (zl_pg_copy_value(id, sizeof(id), r, i, 0) != 0)
            continue; /* longer than any deposit id: not one of ours to act on */
        c = unpin_row(pg, ipfs, id, grace, metrics, stage, s, errstr, errstr_size);
    }
    PQclear(r);
    return c;
}

zl_class zl_unpin_gauge(struct zl_pg *pg, struct zl_metrics *metrics, const char *stage, char *errstr,
                        size_t errstr_size)
{
    zl_class c = zl_pg_ensure(pg, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    PGresult *r = zl_pg_prepared(pg, "unpin_gauge", 0, NULL, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    long long held = 0;
    int bad = zl_pg_int_value(r, 0, 0, 0, INT64_MAX, &held, errstr, errstr_size);
    PQclear(r);
    if (bad != 0)
        return ZL_TRANSIENT;
    if (metrics != NULL) {
        char labels[UNPIN_LABELS_SIZE];
        snprintf(labels, sizeof(labels), "stage=\"%s\"", stage);
        zl_metrics_gauge_set(metrics, "zl_ipfs_orphaned_pins", labels, (double)held);
    }
    return ZL_OK;
}

/* ------------------------------------------------------------ the thread */

/* The stage label of the unpinner's metrics and its breakers' gauges: its
 * own, so its breakers never overwrite the pinning client's. */
#define UNPINNER_STAGE "ipfs-unpin"

struct zl_unpinner {
    struct zl_unpin_opts o;
    struct zl_pg pg;          /* the thread's own connection */
    bool pg_inited;
    struct zl_ipfs *ipfs;     /* the thread's own client (ipfs.h: one thread at a time) */
    struct zl_metrics *metrics; /* borrowed from the runtime */
    pthread_t th;
    bool started;
    pthread_mutex_t mu;       /* with cv: the wait between passes */
    pthread_cond_t cv;        /* signalled by zl_unpinner_stop */
    atomic_bool stop;         /* set once by zl_unpinner_stop; read between rows too */
};

/* Waits up to ms or until stopped. Returns true when stopped. */
static bool wait_or_stop(struct zl_unpinner *u, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&u->mu);
    while (!atomic_load(&u->stop) && pthread_cond_timedwait(&u->cv, &u->mu, &until) == 0)
        ;
    pthread_mutex_unlock(&u->mu);
    return atomic_load(&u->stop);
}

/* @locality the unpinner's own thread. */
static void *unpinner_main(void *arg)
{
    struct zl_unpinner *u = arg;
    do {
        char err[ZL_ERRSTR_SIZE];
        struct zl_unpin_summary s;
        zl_class c =
            zl_unpin_pass(&u->pg, u->ipfs, &u->o, u->metrics, UNPINNER_STAGE, &u->stop, &s, err, sizeof(err));
        if (c == ZL_OK)
            c = zl_unpin_gauge(&u->pg, u->metrics, UNPINNER_STAGE, err, sizeof(err));
        if (c != ZL_OK)
            zl_log_kv(ZL_LOG_WARN, NULL, "unpin pass stopped on a database failure; the next pass tries again",
                      "class", zl_class_name(c), "error", err, NULL);
        else if (s.unpinned > 0 || s.failed > 0)
            zl_log(ZL_LOG_INFO, NULL, "unpin pass: %d unpinned, %d failed, %d skipped", s.unpinned, s.failed,
                   s.skipped);
    } while (!wait_or_stop(u, u->o.interval_ms));
    return NULL;
}

static void unpinner_free(struct zl_unpinner *u)
{
    zl_ipfs_free(u->ipfs);
    if (u->pg_inited)
        zl_pg_close(&u->pg);
    pthread_cond_destroy(&u->cv);
    pthread_mutex_destroy(&u->mu);
    free(u);
}

int zl_unpinner_start(struct zl_unpinner **out, const struct zl_unpin_opts *o, const struct zl_ipfs_opts *ipfs_opts,
                      const struct zl_runtime_env *env, char *errstr, size_t errstr_size)
{
    *out = NULL;
    if (!o->enabled)
        return 0;
    struct zl_unpinner *u = calloc(1, sizeof(*u));
    if (u == NULL) {
        snprintf(errstr, errstr_size, "unpin: out of memory");
        return -1;
    }
    u->o = *o;
    u->metrics = env->metrics;
    pthread_mutex_init(&u->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* a wall clock step must not stall or rush the pass */
    pthread_cond_init(&u->cv, &ca);
    pthread_condattr_destroy(&ca);
    struct zl_ipfs_opts io = *ipfs_opts;
    io.stage = UNPINNER_STAGE;
    io.health = NULL; /* unpinning is housekeeping: its providers never make the stage not ready */
    if (zl_ipfs_new(&u->ipfs, &io, errstr, errstr_size) != 0)
        goto fail;
    if (zl_pg_init(&u->pg, env->cfg->pg_dsn, env->cfg->pg_connect_timeout_ms) != 0 || zl_unpin_prepare(&u->pg) != 0) {
        snprintf(errstr, errstr_size, "unpin: cannot set up its database connection");
        goto fail;
    }
    u->pg_inited = true;
    if (u->metrics != NULL) {
        zl_metrics_describe(u->metrics, "zl_ipfs_orphaned_pins", ZL_METRIC_GAUGE,
                            "terminal deposits (reorged, dead) without a token id whose metadata is still pinned");
        zl_metrics_describe(u->metrics, "zl_unpin_rows_total", ZL_METRIC_COUNTER,
                            "deposits the unpin pass handled, by outcome (unpinned, failed)");
    }
    /* Signals stay with the main thread, whose handler sets the stop flag
     * the runtime polls; this thread is stopped by zl_unpinner_stop. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&u->th, NULL, unpinner_main, u);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "unpin: cannot start its thread: %s", strerror(rc));
        goto fail;
    }
    u->started = true;
    zl_log(ZL_LOG_INFO, NULL, "unpin pass every %lld ms, grace %lld ms, %lld rows at most", (long long)o->interval_ms,
           (long long)o->grace_ms, (long long)o->batch_max);
    *out = u;
    return 0;
fail:
    unpinner_free(u);
    return -1;
}

void zl_unpinner_stop(struct zl_unpinner *u)
{
    if (u == NULL)
        return;
    if (u->started) {
        pthread_mutex_lock(&u->mu);
        atomic_store(&u->stop, true);
        pthread_cond_signal(&u->cv);
        pthread_mutex_unlock(&u->mu);
        pthread_join(u->th, NULL);
    }
    unpinner_free(u);
}
