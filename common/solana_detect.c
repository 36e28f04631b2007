/* solana_detect.c: detect on Solana; the contract is in solana_detect.h. */
#include "solana_detect.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "log.h"
#include "solana_scan.h"

static const struct zl_pg_stmt sd_stmts[] = {
    {"sd_lock", "SELECT pg_try_advisory_lock(hashtext($1))", 1},
    /* Least recently scanned first, new accounts before any; none scanned
     * within poll_ms, so a small set of accounts is not polled in a loop. */
    {"sd_due",
     "SELECT token_account, user_id, cursor FROM sol_deposit_accounts WHERE cluster = $1 AND mint = $2"
     " AND (scanned_at IS NULL OR scanned_at < now() - make_interval(secs => $3::bigint / 1000.0))"
     " ORDER BY scanned_at NULLS FIRST, token_account LIMIT $4::int",
     4},
    /* A Solana row: no chain_id, log_index or block_hash (migration 019). */
    {"sd_insert",
     "INSERT INTO deposits (deposit_id, chain_id, tx_hash, log_index, block_number, block_hash, token, from_addr,"
     " to_addr, user_id, amount, occurred_at)"
     " VALUES ($1, NULL, $2, NULL, $3::bigint, NULL, $4, $5, $6, $7, $8::numeric, now())"
     " ON CONFLICT (deposit_id) DO NOTHING RETURNING deposit_id",
     8},
    /* Moves only from the cursor this copy read. */
    {"sd_cursor",
     "UPDATE sol_deposit_accounts SET cursor = $5, scanned_at = now()"
     " WHERE cluster = $1 AND mint = $2 AND token_account = $3 AND cursor = $4 RETURNING 1",
     5},
};
#define SD_STMTS (sizeof(sd_stmts) / sizeof(sd_stmts[0]))

struct zl_sol_detector {
    struct zl_sol_detector_opts o;
    char cluster[ZL_EVENT_CHAIN_SIZE];
    char mint[ZL_EVENT_ADDR_SIZE];
    char commitment[16];
    char topic[256];
    char lock_key[ZL_EVENT_CHAIN_SIZE + ZL_EVENT_ADDR_SIZE + 8];
    struct zl_pg_lock lock;
    struct zl_sol_sig *sigs;          /* ZL_SOL_DETECT_SIGS_MAX */
    struct zl_sol_transfer *transfers; /* ZL_SOL_DETECT_TRANSFERS_MAX */
    zl_metric *m_deposits, *m_scans_ok, *m_scans_failed, *m_publish_failed;
};

int zl_sol_detector_new(struct zl_sol_detector **out, const struct zl_sol_detector_opts *o, char *errstr,
                        size_t errstr_size)
{
    *out = NULL;
    if (o->cluster == NULL || !zl_valid_sol_cluster(o->cluster)) {
        snprintf(errstr, errstr_size, "Solana cluster \"%s\" is not a cluster name ([a-z][a-z0-9-]{0,30})",
                 o->cluster ? o->cluster : "");
        return -1;
    }
    if (o->mint == NULL || !zl_valid_sol_key(o->mint)) {
        snprintf(errstr, errstr_size, "Solana mint \"%s\" is not a base58 key of 32 bytes", o->mint ? o->mint : "");
        return -1;
    }
    if (o->commitment == NULL || (strcmp(o->commitment, "finalized") != 0 && strcmp(o->commitment, "confirmed") != 0)) {
        snprintf(errstr, errstr_size, "Solana commitment must be finalized or confirmed");
        return -1;
    }
    if (o->accounts_per_step < 1 || o->accounts_per_step > ZL_SOL_DETECT_ACCOUNTS_MAX || o->poll_ms < 0 ||
        o->topic == NULL || strlen(o->topic) >= 256 || o->pg == NULL || o->rpc == NULL || o->producer == NULL) {
        snprintf(errstr, errstr_size, "Solana detector: an option is out of range or missing");
        return -1;
    }
    struct zl_sol_detector *d = calloc(1, sizeof(*d));
    if (d == NULL)
        goto oom;
    d->o = *o;
    snprintf(d->cluster, sizeof(d->cluster), "%s", o->cluster);
    snprintf(d->mint, sizeof(d->mint), "%s", o->mint);
    snprintf(d->commitment, sizeof(d->commitment), "%s", o->commitment);
    snprintf(d->topic, sizeof(d->topic), "%s", o->topic);
    snprintf(d->lock_key, sizeof(d->lock_key), "sol:%s:%s", d->cluster, d->mint);
    d->sigs = calloc(ZL_SOL_DETECT_SIGS_MAX, sizeof(*d->sigs));
    d->transfers = calloc(ZL_SOL_DETECT_TRANSFERS_MAX, sizeof(*d->transfers));
    if (d->sigs == NULL || d->transfers == NULL)
        goto oom;
    for (size_t i = 0; i < SD_STMTS; i++)
        if (zl_pg_add_stmt(o->pg, sd_stmts[i].name, sd_stmts[i].sql, sd_stmts[i].nparams) != 0) {
            snprintf(errstr, errstr_size, "Solana detector: too many prepared statements on one connection");
            zl_sol_detector_free(d);
            return -1;
        }
    if (o->metrics != NULL) {
        zl_metrics_describe(o->metrics, "zl_sol_detect_deposits_total", ZL_METRIC_COUNTER,
                            "Solana USDT transfers recorded as new deposits");
        zl_metrics_describe(o->metrics, "zl_sol_detect_scans_total", ZL_METRIC_COUNTER,
                            "Solana deposit account scans, by outcome");
        d->m_deposits = zl_metrics_counter_handle(o->metrics, "zl_sol_detect_deposits_total", NULL);
        d->m_scans_ok = zl_metrics_counter_handle(o->metrics, "zl_sol_detect_scans_total", "outcome=\"ok\"");
        d->m_scans_failed = zl_metrics_counter_handle(o->metrics, "zl_sol_detect_scans_total", "outcome=\"failed\"");
        d->m_publish_failed = zl_metrics_counter_handle(o->metrics, "zl_detect_publish_failed_total", NULL);
    }
    *out = d;
    return 0;
oom:
    zl_sol_detector_free(d);
    snprintf(errstr, errstr_size, "Solana detector: out of memory");
    return -1;
}

void zl_sol_detector_free(struct zl_sol_detector *d)
{
    if (d == NULL)
        return;
    free(d->sigs);
    free(d->transfers);
    free(d);
}

static void count(zl_metric *m, uint64_t n)
{
    if (m != NULL)
        zl_metric_counter_add(m, n);
}

/* The scan lock (one active copy), asked once per connection. */
static zl_class ensure_lock(struct zl_sol_detector *d, char *errstr, size_t errstr_size)
{
    zl_class c = zl_pg_lock_ensure(d->o.pg, "sd_lock", d->lock_key, &d->lock, errstr, errstr_size);
    if (c != ZL_OK || !d->lock.asked)
        return c;
    if (d->lock.held)
        zl_log_kv(ZL_LOG_INFO, NULL, "Solana scan lock taken: this copy is the active detector", "lock",
                  d->lock_key, NULL);
    if (d->o.health != NULL)
        zl_health_set_dep(d->o.health, "scanner", true, d->lock.held ? "active" : "standby",
                          d->lock.held ? "" : "another copy holds the scan lock");
    return ZL_OK;
}

/* The deposit's `from`: the wallet that signed the transfer (its
 * authority), which is who the receipt is minted to, as an EVM deposit's
 * from is its sender; the source token account when the answer names no
 * authority. */
static const char *sol_from(const struct zl_sol_transfer *t)
{
    return t->authority[0] != '\0' ? t->authority : t->source;
}

static void publish(struct zl_sol_detector *d, const struct zl_sol_transfer *t, const char *user_id)
{
    struct zl_event ev;
    zl_event_init(&ev, ZL_TOPIC_DETECTED);
    snprintf(ev.deposit_id, sizeof(ev.deposit_id), "%s", t->deposit_id);
    snprintf(ev.chain, sizeof(ev.chain), "%s", d->cluster);
    snprintf(ev.tx_hash, sizeof(ev.tx_hash), "%s", t->signature);
    snprintf(ev.instruction, sizeof(ev.instruction), "%s", t->place);
    ev.block_number = t->slot;
    snprintf(ev.token, sizeof(ev.token), "%s", t->mint);
    snprintf(ev.from, sizeof(ev.from), "%s", sol_from(t));
    snprintf(ev.to, sizeof(ev.to), "%s", t->destination);
    snprintf(ev.user_id, sizeof(ev.user_id), "%s", user_id);
    snprintf(ev.amount, sizeof(ev.amount), "%s", t->amount);
    char buf[ZL_EVENT_ENCODED_MAX_BYTES], err[ZL_ERRSTR_SIZE];
    size_t len = 0;
    struct zl_log_ctx lc = ZL_LOG_CTX_NONE;
    lc.deposit_id = t->deposit_id;
    if (zl_event_encode(&ev, buf, sizeof(buf), &len, err, sizeof(err)) != 0) {
        count(d->m_publish_failed, 1);
        zl_log_kv(ZL_LOG_ERROR, &lc, "cannot encode detected event", "error", err, NULL);
        return;
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(
        d->o.producer, RD_KAFKA_V_TOPIC(d->topic), RD_KAFKA_V_KEY(t->deposit_id, strlen(t->deposit_id)),
        RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        count(d->m_publish_failed, 1); /* the row is recorded: the sweeper publishes it later */
        zl_log_kv(ZL_LOG_WARN, &lc, "detected event not queued; the sweeper will re-publish it", "error",
                  rd_kafka_err2str(e), NULL);
    }
}

/* Records one account's scan: its transfers' rows and its new cursor, in
 * one transaction; then publishes the rows that are new. */
static zl_class record(struct zl_sol_detector *d, const char *account, const char *user_id, const char *cursor,
                       const char *cursor_out, size_t n, char *errstr, size_t errstr_size)
{
    /* With nothing read the cursor stays and only the scan time moves. */
    bool fresh[ZL_SOL_DETECT_TRANSFERS_MAX] = {false};
    zl_class c = zl_pg_exec(d->o.pg, "BEGIN", errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    for (size_t i = 0; i < n; i++) {
        const struct zl_sol_transfer *t = &d->transfers[i];
        char slot[ZL_INT64_DEC_SIZE];
        snprintf(slot, sizeof(slot), "%" PRIu64, t->slot);
        const char *vals[8] = {t->deposit_id, t->signature, slot,    t->mint,
                               sol_from(t),   t->destination, user_id, t->amount};
        PGresult *r = zl_pg_prepared(d->o.pg, "sd_insert", 8, vals, PGRES_TUPLES_OK, &c, errstr, errstr_size);
        if (r == NULL)
            goto fail;
        fresh[i] = PQntuples(r) == 1;
        PQclear(r);
    }
    const char *cv[5] = {d->cluster, d->mint, account, cursor, cursor_out};
    PGresult *r = zl_pg_prepared(d->o.pg, "sd_cursor", 5, cv, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        goto fail;
    bool moved = PQntuples(r) == 1;
    PQclear(r);
    if (!moved) {
        c = ZL_TRANSIENT;
        snprintf(errstr, errstr_size, "account %s: its cursor moved under this scan (another copy scanned it)",
                 account);
        goto fail;
    }
    c = zl_pg_exec(d->o.pg, "COMMIT", errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    for (size_t i = 0; i < n; i++) {
        if (!fresh[i])
            continue;
        count(d->m_deposits, 1);
        publish(d, &d->transfers[i], user_id);
        struct zl_log_ctx lc = ZL_LOG_CTX_NONE;
        lc.deposit_id = d->transfers[i].deposit_id;
        zl_log_kv(ZL_LOG_INFO, &lc, "Solana deposit detected", "account", account, "amount", d->transfers[i].amount,
                  NULL);
    }
    return ZL_OK;
fail:
    zl_pg_rollback(d->o.pg);
    return c;
}

/* Scans one account and records what it read. */
static zl_class scan_one(struct zl_sol_detector *d, const char *account, const char *user_id, const char *cursor,
                         bool *more, char *errstr, size_t errstr_size)
{
    struct zl_sol_scan_opts so = {
        .cluster = d->cluster,
        .mint = d->mint,
        .commitment = d->commitment,
        .page_limit = d->o.page_limit,
        .tx_batch = d->o.tx_batch,
    };
    size_t n = 0;
    char cursor_out[ZL_B58_TEXT_MAX];
    char scan_err[ZL_ERRSTR_SIZE] = "";
    zl_class sc = zl_sol_scan_account(d->o.rpc, &so, account, cursor, d->sigs, ZL_SOL_DETECT_SIGS_MAX, d->transfers,
                                      ZL_SOL_DETECT_TRANSFERS_MAX, &n, cursor_out, more, scan_err, sizeof(scan_err));
    for (size_t i = 0; i < n; i++)
        if (d->transfers[i].decimals >= 0 && d->transfers[i].decimals != d->o.decimals) {
            snprintf(errstr, errstr_size,
                     "mint %s has %d decimals on the chain (transfer %s), ZL_SOLANA_DECIMALS says %d: correct it "
                     "(and credit's) and restart", d->mint, d->transfers[i].decimals, d->transfers[i].deposit_id,
                     d->o.decimals);
            return ZL_PERMANENT;
        }
    /* What was read up to cursor_out is kept whatever the scan returned. */
    zl_class c = record(d, account, user_id, cursor, cursor_out, n, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    if (sc != ZL_OK)
        snprintf(errstr, errstr_size, "account %s: %s", account, scan_err);
    return sc;
}

zl_class zl_sol_detector_step(struct zl_sol_detector *d, bool *idle, char *errstr, size_t errstr_size)
{
    *idle = true;
    zl_class c = ensure_lock(d, errstr, errstr_size);
    if (c != ZL_OK || !d->lock.held)
        return c;
    char poll[ZL_INT64_DEC_SIZE], limit[ZL_INT64_DEC_SIZE];
    snprintf(poll, sizeof(poll), "%" PRId64, d->o.poll_ms);
    snprintf(limit, sizeof(limit), "%d", d->o.accounts_per_step);
    const char *vals[4] = {d->cluster, d->mint, poll, limit};
    PGresult *r = zl_pg_prepared(d->o.pg, "sd_due", 4, vals, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    int rows = PQntuples(r);
    zl_class worst = ZL_OK;
    for (int i = 0; i < rows && c != ZL_OUTAGE; i++) {
        char account[ZL_EVENT_ADDR_SIZE], user_id[ZL_USER_ID_SIZE], cursor[ZL_B58_TEXT_MAX];
        zl_pg_copy_value(account, sizeof(account), r, i, 0);
        zl_pg_copy_value(user_id, sizeof(user_id), r, i, 1);
        zl_pg_copy_value(cursor, sizeof(cursor), r, i, 2);
        bool more = false;
        char err[ZL_ERRSTR_SIZE] = "";
        c = scan_one(d, account, user_id, cursor, &more, err, sizeof(err));
        *idle = *idle && !more;
        count(c == ZL_OK ? d->m_scans_ok : d->m_scans_failed, 1);
        if (c == ZL_PERMANENT) {
            snprintf(errstr, errstr_size, "%s", err);
            PQclear(r);
            return c;
        }
        if (c != ZL_OK) {
            zl_log_kv(ZL_LOG_WARN, NULL, "Solana account scan failed; it is scanned again", "account", account,
                      "class", zl_class_name(c), "error", err, NULL);
            if (worst == ZL_OK || c == ZL_OUTAGE) {
                worst = c;
                snprintf(errstr, errstr_size, "%s", err);
            }
        }
    }
    PQclear(r);
    if (rows > 0)
        *idle = false;
    return worst;
}
