/* detector.c: the chain scan loop (see detector.h for the steps). */
#include "detector.h"
#include "detector_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "envelope.h"
#include "fault.h"
#include "log.h"

/* Rows per det_insert statement (~250 bytes of array text per row). A
 * sub-range aims at DET_LOGS_PER_QUERY_TARGET logs, so usually one statement;
 * this bounds a sub-range that came back larger than aimed. */
#define DET_INSERT_ROWS_MAX 5000
/* Logs one eth_getLogs sub-range aims at: small enough that a step is
 * several requests, so each request's insert runs in PostgreSQL while the
 * next request is read and decoded. */
#define DET_LOGS_PER_QUERY_TARGET 2500
/* eth_getLogs sub-ranges per step at most (the last one takes the rest). */
#define DET_PARTS_PER_STEP_MAX 32
/* Blocks in the first sub-range, before any log count is known. */
#define DET_SUB_BLOCKS_FIRST 16

/* Where one scan step's wall time went, for the step log line. */
struct step_times {
    int64_t logs_ms;    /* eth_getLogs requests, their transfer and JSON decoding */
    int64_t parse_ms;   /* logs -> Transfers, ids, duplicates removed */
    int64_t db_ms;      /* blocked on PostgreSQL: BEGIN, inserts not yet answered, cursor, COMMIT */
    int64_t publish_ms; /* events encoded and handed to librdkafka */
    size_t logs;
    size_t deposits;
};

/* ---------- statements ---------- */

/* det_insert, shared with zlctl claim (detector.h: zl_detect_insert_sql):
 * insert-if-absent, for a whole chunk of logs in one round trip: the arrays are unnested in their order (WITH ORDINALITY, ORDER BY ord), so
 * rows are inserted in chain order as one statement per log would. A row
 * that was `reorged` (or still `detected` with other block facts) and is
 * seen again on the canonical chain gets the new block facts and
 * `detected`. A Transfer that moved to another log index when its tx was
 * re-included is a new deposit id; it is not inserted while the same
 * transfer from another block is still alive past `detected` (already
 * verified: paying it again would pay twice). Logs to addresses that are
 * not (or no longer) registered insert nothing. The caller removes
 * duplicate ids first: ON CONFLICT DO UPDATE cannot touch a row twice in
 * one statement. */
const char zl_detect_insert_sql[] =
    "INSERT INTO deposits (deposit_id, chain_id, tx_hash, log_index, block_number, block_hash, token,"
    " from_addr, to_addr, user_id, amount, occurred_at)"
    " SELECT v.deposit_id, $1::bigint, v.tx_hash, v.log_index, v.block_number, v.block_hash, $2::text,"
    " v.from_addr, v.to_addr, a.user_id, v.amount, now()"
    " FROM unnest($3::text[], $4::text[], $5::integer[], $6::bigint[], $7::text[], $8::text[], $9::text[],"
    "   $10::numeric[]) WITH ORDINALITY"
    "   AS v(deposit_id, tx_hash, log_index, block_number, block_hash, from_addr, to_addr, amount, ord)"
    " JOIN deposit_addresses a ON a.chain_id = $1::bigint AND a.address = v.to_addr"
    " WHERE NOT EXISTS (SELECT 1 FROM deposits d WHERE d.tx_hash = v.tx_hash AND d.chain_id = $1::bigint"
    "   AND d.deposit_id <> v.deposit_id AND d.block_hash <> v.block_hash AND d.state NOT IN ('reorged', 'detected')"
    "   AND d.token = $2::text AND d.from_addr = v.from_addr AND d.to_addr = v.to_addr AND d.amount = v.amount)"
    " ORDER BY v.ord"
    " ON CONFLICT (deposit_id) DO UPDATE SET state = 'detected', block_number = EXCLUDED.block_number,"
    " block_hash = EXCLUDED.block_hash, last_error = NULL, last_error_class = NULL, updated_at = now()"
    " WHERE deposits.state IN ('reorged', 'detected') AND deposits.block_hash <> EXCLUDED.block_hash"
    " RETURNING deposit_id, user_id";

static const struct zl_pg_stmt det_stmts[] = {
    {"det_lock", "SELECT pg_try_advisory_lock(hashtext($1))", 1},
    {"det_cursor_get", "SELECT block_number, block_hash FROM detector_cursor WHERE chain_id = $1 AND token = $2", 2},
    /* Advances only from the block number this copy read: a second copy that
     * somehow scanned too (lock lost mid-step) finds zero rows and rolls back. */
    {"det_cursor_set",
     "INSERT INTO detector_cursor (chain_id, token, block_number, block_hash) VALUES ($1, $2, $3, $4)"
     " ON CONFLICT (chain_id, token) DO UPDATE SET block_number = EXCLUDED.block_number,"
     " block_hash = EXCLUDED.block_hash, updated_at = now()"
     " WHERE detector_cursor.block_number = $5::bigint RETURNING 1",
     5},
    {"det_block_put",
     "INSERT INTO detector_blocks (chain_id, token, block_number, block_hash) VALUES ($1, $2, $3, $4)"
     " ON CONFLICT (chain_id, token, block_number) DO UPDATE SET block_hash = EXCLUDED.block_hash",
     4},
    {"det_block_prune", "DELETE FROM detector_blocks WHERE chain_id = $1 AND token = $2 AND block_number < $3", 3},
    {"det_blocks_recent",
     "SELECT block_number, block_hash FROM detector_blocks WHERE chain_id = $1 AND token = $2"
     " AND block_number <= $3 ORDER BY block_number DESC LIMIT 256",
     3},
    {"det_blocks_drop_above", "DELETE FROM detector_blocks WHERE chain_id = $1 AND token = $2 AND block_number > $3",
     3},
    {"det_insert", zl_detect_insert_sql, ZL_DETECT_INSERT_PARAMS},
    {"det_mark_orphans",
     "UPDATE deposits SET state = 'reorged', last_error = 'block orphaned by a chain reorganisation',"
     " last_error_class = NULL, updated_at = now()"
     " WHERE chain_id = $1 AND token = $2 AND block_number > $3 AND state = 'detected' RETURNING deposit_id",
     3},
    /* A row past `detected` keeps its state (its mint and credit happened;
     * re-running them would pay twice): it is marked, once, with the state
     * it had. A re-inclusion with the same id leaves it as it is (det_insert
     * updates only `reorged`/`detected` rows); one at another log index is
     * not inserted while this row is alive (det_insert's NOT EXISTS). */
    {"det_mark_past_finality",
     "UPDATE deposits SET reorged_after = state, reorged_at = now(), updated_at = now()"
     " WHERE chain_id = $1 AND token = $2 AND block_number > $3"
     " AND state NOT IN ('detected', 'reorged') AND reorged_after IS NULL RETURNING deposit_id, state",
     3},
    {"det_decimals_put",
     "INSERT INTO token_decimals (chain_id, token, decimals) VALUES ($1, $2, $3)"
     " ON CONFLICT (chain_id, token) DO UPDATE SET decimals = EXCLUDED.decimals",
     3},
};

int zl_detector_new(struct zl_detector **out, const struct zl_detector_opts *opts, char *errstr, size_t errstr_size)
{
    *out = NULL;
    struct zl_detector *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        snprintf(errstr, errstr_size, "detector: out of memory");
        return -1;
    }
    if (opts->addresses_max < 1 || opts->backfill_blocks < 1 || opts->range_max < 1) {
        snprintf(errstr, errstr_size, "detector: addresses_max, backfill_blocks and range_max must be >= 1");
        free(d);
        return -1;
    }
    d->o = *opts;
    if (zl_hex_lower(opts->token, ZL_ADDRESS_HEX_DIGITS, d->token, sizeof(d->token)) != 0) {
        snprintf(errstr, errstr_size, "ZL_TOKEN_ADDRESS: \"%s\" is not a 0x-prefixed 20-byte hex address",
                 opts->token);
        free(d);
        return -1;
    }
    d->o.token = d->token;
    snprintf(d->token_label, sizeof(d->token_label), "token=\"%.15s\"",
             opts->symbol != NULL && opts->symbol[0] != '\0' ? opts->symbol : "TOKEN");
    d->o.symbol = NULL; /* borrowed for the call only: the label keeps it */
    snprintf(d->topic, sizeof(d->topic), "%s", opts->topic);
    d->o.topic = d->topic;
    snprintf(d->chain_text, sizeof(d->chain_text), "%" PRIu64, opts->chain_id);
    snprintf(d->lock_key, sizeof(d->lock_key), "zl-detect:%s:%s", d->chain_text, d->token);
    d->range = opts->range_max;
    d->sub_blocks = opts->range_max < DET_SUB_BLOCKS_FIRST ? opts->range_max : DET_SUB_BLOCKS_FIRST;
    d->bf_blocks = opts->backfill_blocks;
    d->addrs = zl_addrset_new((size_t)opts->addresses_max);
    if (d->addrs == NULL) {
        snprintf(errstr, errstr_size, "detector: out of memory");
        free(d);
        return -1;
    }
    const struct zl_pg_stmt *lists[2] = {det_stmts, det_addr_stmts};
    size_t counts[2] = {sizeof(det_stmts) / sizeof(det_stmts[0]), det_addr_stmts_count};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < counts[k]; i++) {
            if (zl_pg_add_stmt(opts->pg, lists[k][i].name, lists[k][i].sql, lists[k][i].nparams) != 0) {
                snprintf(errstr, errstr_size, "detector: no room for statement %s (ZL_PG_STMTS_MAX)",
                         lists[k][i].name);
                zl_detector_free(d);
                return -1;
            }
        }
    }
    if (opts->metrics != NULL) {
        struct zl_metrics *m = opts->metrics;
        zl_metrics_describe(m, "zl_detect_blocks_scanned_total", ZL_METRIC_COUNTER, "blocks scanned for deposits");
        zl_metrics_describe(m, "zl_detect_deposits_total", ZL_METRIC_COUNTER, "deposits recorded (new or re-included)");
        zl_metrics_describe(m, "zl_detect_head_lag_blocks", ZL_METRIC_GAUGE, "chain head minus the scan cursor");
        zl_metrics_describe(m, "zl_detect_reorgs_total", ZL_METRIC_COUNTER, "reorgs found below the cursor");
        zl_metrics_describe(m, "zl_detect_orphaned_total", ZL_METRIC_COUNTER, "deposits marked reorged");
        zl_metrics_describe(m, "zl_detect_reorg_past_finality_total", ZL_METRIC_COUNTER,
                            "deposits past detected whose block left the chain (marked reorged_after)");
        zl_metrics_describe(m, "zl_detect_publish_failed_total", ZL_METRIC_COUNTER,
                            "detected events not handed to Kafka (the sweeper re-publishes them)");
        zl_metrics_describe(m, "zl_detect_range_blocks", ZL_METRIC_GAUGE, "current blocks per eth_getLogs step");
        zl_metrics_describe(m, "zl_detect_transfers_scanned_total", ZL_METRIC_COUNTER,
                            "Transfers of the token read by the live scan (before the address filter)");
        d->m_blocks = zl_metrics_counter_handle(m, "zl_detect_blocks_scanned_total", NULL);
        d->m_deposits = zl_metrics_counter_handle(m, "zl_detect_deposits_total", NULL);
        d->m_lag = zl_metrics_gauge_handle(m, "zl_detect_head_lag_blocks", d->token_label);
        d->m_reorgs = zl_metrics_counter_handle(m, "zl_detect_reorgs_total", NULL);
        d->m_orphaned = zl_metrics_counter_handle(m, "zl_detect_orphaned_total", NULL);
        d->m_past_finality = zl_metrics_counter_handle(m, "zl_detect_reorg_past_finality_total", NULL);
        d->m_publish_failed = zl_metrics_counter_handle(m, "zl_detect_publish_failed_total", NULL);
        d->m_range = zl_metrics_gauge_handle(m, "zl_detect_range_blocks", d->token_label);
        d->m_transfers = zl_metrics_counter_handle(m, "zl_detect_transfers_scanned_total", NULL);
        det_addr_metrics(d);
        det_confirm_metrics(d);
    }
    d->o.confirm_rpc = NULL; /* borrowed for the call only */
    if (det_confirm_init(d, opts->confirm_rpc, errstr, errstr_size) != 0) {
        zl_detector_free(d);
        return -1;
    }
    *out = d;
    return 0;
}

void zl_detector_free(struct zl_detector *d)
{
    if (d == NULL)
        return;
    zl_addrset_free(d->addrs);
    det_confirm_free(d);
    free(d);
}

bool zl_detector_active(const struct zl_detector *d)
{
    return d->lock.held;
}

void det_count(zl_metric *m, uint64_t n)
{
    if (m != NULL)
        zl_metric_counter_add(m, n);
}

/* ---------- chain reads ---------- */

static zl_class head_number(struct zl_detector *d, uint64_t *out, char *errstr, size_t errstr_size)
{
    json_t *res = NULL;
    json_t *params = json_array();
    zl_class c = zl_rpc_call(d->o.rpc, "eth_blockNumber", params, &res, NULL, errstr, errstr_size);
    json_decref(params);
    if (c != ZL_OK)
        return c;
    int rc = zl_rpc_parse_quantity(res, out);
    json_decref(res);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "eth_blockNumber: not a quantity");
        return ZL_TRANSIENT;
    }
    return ZL_OK;
}

/* The canonical hash at number n (lower-case), from eth_getBlockByNumber. */
static zl_class det_block_hash_at(struct zl_detector *d, uint64_t n, char *hash, size_t hash_size, char *errstr,
                              size_t errstr_size)
{
    char num[NUM_TEXT_MAX];
    snprintf(num, sizeof(num), "0x%" PRIx64, n);
    json_t *params = json_pack("[s, b]", num, 0);
    json_t *res = NULL;
    zl_class c = zl_rpc_call(d->o.rpc, "eth_getBlockByNumber", params, &res, NULL, errstr, errstr_size);
    json_decref(params);
    if (c != ZL_OK)
        return c;
    int rc = json_is_object(res) ? zl_json_hex_field(res, "hash", ZL_HASH_HEX_DIGITS, hash, hash_size) : -1;
    json_decref(res);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "eth_getBlockByNumber %" PRIu64 ": no block or no hash (endpoint behind?)", n);
        return ZL_TRANSIENT;
    }
    return ZL_OK;
}

/* ---------- database ---------- */

PGresult *det_run(struct zl_detector *d, const char *name, int n, const char *const *vals, int expect,
                     zl_class *c, char *errstr, size_t errstr_size)
{
    return zl_pg_prepared(d->o.pg, name, n, vals, expect, c, errstr, errstr_size);
}

static zl_class ensure_lock(struct zl_detector *d, char *errstr, size_t errstr_size)
{
    zl_class c = zl_pg_lock_ensure(d->o.pg, "det_lock", d->lock_key, &d->lock, errstr, errstr_size);
    if (c != ZL_OK || !d->lock.asked)
        return c;
    if (d->lock.held)
        zl_log_kv(ZL_LOG_INFO, NULL, "scan lock taken: this copy is the active detector", "lock", d->lock_key, NULL);
    if (d->o.health != NULL)
        zl_health_set_dep(d->o.health, "scanner", true, d->lock.held ? "active" : "standby",
                          d->lock.held ? "" : "another copy holds the scan lock");
    return ZL_OK;
}

static zl_class read_cursor(struct zl_detector *d, bool *found, uint64_t *num, char *hash, char *errstr,
                            size_t errstr_size)
{
    const char *vals[2] = {d->chain_text, d->token};
    zl_class c;
    PGresult *r = det_run(d, "det_cursor_get", 2, vals, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    *found = PQntuples(r) == 1;
    if (*found) {
        *num = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        snprintf(hash, 67, "%s", PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    return ZL_OK;
}

/* Runs the failed transaction's rollback and passes the class on. */
zl_class det_tx_fail(struct zl_detector *d, zl_class c)
{
    zl_pg_rollback(d->o.pg);
    return c;
}

/* ---------- reorg ---------- */

static zl_class handle_reorg(struct zl_detector *d, uint64_t cursor, char *errstr, size_t errstr_size)
{
    char cur[NUM_TEXT_MAX];
    snprintf(cur, sizeof(cur), "%" PRIu64, cursor);
    const char *vals[3] = {d->chain_text, d->token, cur};
    zl_class c;
    PGresult *r = det_run(d, "det_blocks_recent", 3, vals, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    bool found = false;
    uint64_t ancestor = 0;
    char ancestor_hash[ZL_HASH_HEX_SIZE] = "";
    int n = PQntuples(r);
    for (int i = 0; i < n && i < ZL_DETECT_REORG_WALK_MAX; i++) {
        uint64_t num = strtoull(PQgetvalue(r, i, 0), NULL, 10);
        char chain_hash[ZL_HASH_HEX_SIZE];
        c = det_block_hash_at(d, num, chain_hash, sizeof(chain_hash), errstr, errstr_size);
        if (c != ZL_OK) {
            PQclear(r);
            return c;
        }
        if (strcmp(chain_hash, PQgetvalue(r, i, 1)) == 0) {
            found = true;
            ancestor = num;
            snprintf(ancestor_hash, sizeof(ancestor_hash), "%s", chain_hash);
            break;
        }
        ancestor = num; /* oldest looked at so far */
    }
    PQclear(r);
    if (!found) {
        /* Deeper than every stored hash: rescan from below the oldest one. */
        ancestor = ancestor > 0 ? ancestor - 1 : 0;
        c = det_block_hash_at(d, ancestor, ancestor_hash, sizeof(ancestor_hash), errstr, errstr_size);
        if (c != ZL_OK)
            return c;
        zl_log_kv(ZL_LOG_ERROR, NULL, "reorg deeper than the stored block hashes; rescanning from below them",
                  "lock", d->lock_key, NULL);
    }

    char anc[NUM_TEXT_MAX];
    snprintf(anc, sizeof(anc), "%" PRIu64, ancestor);
    c = zl_pg_exec(d->o.pg, "BEGIN", errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    const char *ov[3] = {d->chain_text, d->token, anc};
    r = det_run(d, "det_mark_past_finality", 3, ov, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return det_tx_fail(d, c);
    int past = PQntuples(r);
    for (int i = 0; i < past; i++) {
        struct zl_log_ctx lc = ZL_LOG_CTX_NONE;
        lc.deposit_id = PQgetvalue(r, i, 0);
        zl_log_kv(ZL_LOG_ERROR, &lc, "reorg past finality: a deposit's block left the chain after it was verified",
                  "state", PQgetvalue(r, i, 1), "ancestor", anc, NULL);
    }
    PQclear(r);
    if (past > 0)
        zl_log(ZL_LOG_ERROR, NULL,
               "reorg below block %s took back %d deposit(s) already verified: marked reorged_after, state kept;"
               " raise ZL_CONFIRMATIONS (runbook: detect-reorg-past-finality)", anc, past);
    r = det_run(d, "det_mark_orphans", 3, ov, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return det_tx_fail(d, c);
    int orphaned = PQntuples(r);
    for (int i = 0; i < orphaned; i++) {
        struct zl_log_ctx lc = ZL_LOG_CTX_NONE;
        lc.deposit_id = PQgetvalue(r, i, 0);
        zl_log_kv(ZL_LOG_WARN, &lc, "deposit orphaned by a reorg: marked reorged", NULL);
    }
    PQclear(r);
    r = det_run(d, "det_blocks_drop_above", 3, ov, PGRES_COMMAND_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return det_tx_fail(d, c);
    PQclear(r);
    const char *cv[5] = {d->chain_text, d->token, anc, ancestor_hash, cur};
    r = det_run(d, "det_cursor_set", 5, cv, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return det_tx_fail(d, c);
    bool moved = PQntuples(r) == 1;
    PQclear(r);
    if (!moved) {
        d->lock.held = false;
        snprintf(errstr, errstr_size, "cursor moved under us: another detector is scanning; standing by");
        return det_tx_fail(d, ZL_TRANSIENT);
    }
    c = zl_pg_exec(d->o.pg, "COMMIT", errstr, errstr_size);
    if (c != ZL_OK)
        return det_tx_fail(d, c);
    det_count(d->m_reorgs, 1);
    det_count(d->m_orphaned, (uint64_t)orphaned);
    det_count(d->m_past_finality, (uint64_t)past);
    zl_log(ZL_LOG_WARN, NULL, "reorg: block %" PRIu64 " changed; common ancestor %" PRIu64 ", %d deposit(s) orphaned",
           cursor, ancestor, orphaned);
    return ZL_OK;
}

/* ---------- scan ---------- */

/* Every Transfer of the token in blocks from..to, appended to `all`: no
 * address filter is sent to the node, so the request does not grow with the
 * number of addresses (det_collect keeps those to a registered address). */
static zl_class get_logs(struct zl_detector *d, uint64_t from, uint64_t to, json_t *all, bool *held,
                         char *errstr, size_t errstr_size)
{
    char f[NUM_TEXT_MAX], t[NUM_TEXT_MAX];
    snprintf(f, sizeof(f), "0x%" PRIx64, from);
    snprintf(t, sizeof(t), "0x%" PRIx64, to);
    json_t *params = json_pack("[{s:s, s:s, s:s, s:[s]}]", "fromBlock", f, "toBlock", t, "address", d->token,
                               "topics", ZL_TRANSFER_TOPIC0);
    json_t *res = NULL;
    zl_class c = det_get_logs(d, params, from, to, &res, held, errstr, errstr_size);
    json_decref(params);
    if (c != ZL_OK)
        return c;
    json_array_extend(all, res);
    json_decref(res);
    return ZL_OK;
}

void det_publish(struct zl_detector *d, const struct zl_transfer_log *tl, const char *deposit_id,
                    const char *user_id)
{
    struct zl_event ev;
    zl_event_init(&ev, ZL_TOPIC_DETECTED);
    snprintf(ev.deposit_id, sizeof(ev.deposit_id), "%s", deposit_id);
    ev.chain_id = d->o.chain_id;
    snprintf(ev.tx_hash, sizeof(ev.tx_hash), "%s", tl->tx_hash);
    ev.log_index = tl->log_index;
    ev.block_number = tl->block_number;
    memcpy(ev.block_hash, tl->block_hash, sizeof(ev.block_hash));
    snprintf(ev.token, sizeof(ev.token), "%s", tl->token);
    snprintf(ev.from, sizeof(ev.from), "%s", tl->from);
    snprintf(ev.to, sizeof(ev.to), "%s", tl->to);
    snprintf(ev.user_id, sizeof(ev.user_id), "%s", user_id);
    memcpy(ev.amount, tl->amount, sizeof(ev.amount));
    char buf[ZL_EVENT_ENCODED_MAX_BYTES];
    size_t len = 0;
    char err[ZL_ERRSTR_SIZE];
    struct zl_log_ctx lc = ZL_LOG_CTX_NONE;
    lc.deposit_id = deposit_id;
    if (zl_event_encode(&ev, buf, sizeof(buf), &len, err, sizeof(err)) != 0) {
        det_count(d->m_publish_failed, 1);
        zl_log_kv(ZL_LOG_ERROR, &lc, "cannot encode detected event", "error", err, NULL);
        return;
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(
        d->o.producer, RD_KAFKA_V_TOPIC(d->topic), RD_KAFKA_V_KEY(deposit_id, strlen(deposit_id)),
        RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* The row is recorded; the sweeper publishes it later. */
        det_count(d->m_publish_failed, 1);
        zl_log_kv(ZL_LOG_WARN, &lc, "detected event not queued; the sweeper will re-publish it", "error",
                  rd_kafka_err2str(e), NULL);
    }
}

void det_part_free(struct scan_part *p)
{
    free(p->fl);
    free(p->by_id);
    memset(p, 0, sizeof(*p));
}

static int cmp_found_id(const void *a, const void *b)
{
    const struct found_log *x = *(const struct found_log *const *)a;
    const struct found_log *y = *(const struct found_log *const *)b;
    int c = strcmp(x->id, y->id);
    if (c != 0)
        return c;
    return x < y ? -1 : x > y; /* the earlier log of a duplicate pair sorts first */
}

static int cmp_key_found(const void *key, const void *elem)
{
    return strcmp((const char *)key, (*(const struct found_log *const *)elem)->id);
}

/* Parses the logs of blocks lo..hi into p, keeping well-formed Transfers of
 * our token inside lo..hi to `only_to` (a lower-case address), or with
 * only_to NULL to any address in d->addrs, each deposit id once (a provider
 * may repeat a log; the first copy wins). Returns ZL_OK, or ZL_TRANSIENT
 * when out of memory. */
zl_class det_collect(struct zl_detector *d, json_t *logs, uint64_t lo, uint64_t hi, const char *only_to,
                     struct scan_part *p, char *errstr, size_t errstr_size)
{
    size_t n = json_array_size(logs), kept = 0;
    p->fl = calloc(n > 0 ? n : 1, sizeof(*p->fl));
    p->by_id = calloc(n > 0 ? n : 1, sizeof(*p->by_id));
    p->n = 0;
    if (p->fl == NULL || p->by_id == NULL) {
        det_part_free(p);
        snprintf(errstr, errstr_size, "detector: out of memory for %zu logs", n);
        return ZL_TRANSIENT;
    }
    struct found_log *fl = p->fl;
    for (size_t i = 0; i < n; i++) {
        struct found_log *f = &fl[kept];
        char perr[ZL_ERRSTR_SIZE];
        if (zl_chain_parse_transfer_log(json_array_get(logs, i), &f->tl, perr, sizeof(perr)) != 0) {
            zl_log_kv(ZL_LOG_WARN, NULL, "skipping a log that is not a well-formed Transfer", "error", perr, NULL);
            continue;
        }
        if (f->tl.removed || strcmp(f->tl.token, d->token) != 0 || f->tl.block_number < lo ||
            f->tl.block_number > hi)
            continue;
        if (only_to != NULL ? strcmp(f->tl.to, only_to) != 0 : !zl_addrset_has(d->addrs, f->tl.to))
            continue;
        if (zl_deposit_id_format(f->id, sizeof(f->id), d->o.chain_id, f->tl.tx_hash, f->tl.log_index) != 0)
            continue;
        snprintf(f->log_index, sizeof(f->log_index), "%" PRIu32, f->tl.log_index);
        snprintf(f->block_number, sizeof(f->block_number), "%" PRIu64, f->tl.block_number);
        f->user_id[0] = '\0';
        f->fresh = false;
        kept++;
    }
    struct found_log **by_id = p->by_id;
    for (size_t i = 0; i < kept; i++)
        by_id[i] = &fl[i];
    qsort(by_id, kept, sizeof(*by_id), cmp_found_id);
    /* Drop repeated ids, keeping the earliest (first in each sorted run), then
     * close the gaps in chain order. */
    size_t u = 0;
    for (size_t i = 0; i < kept; i++) {
        if (u > 0 && strcmp(by_id[u - 1]->id, by_id[i]->id) == 0) {
            by_id[i]->id[0] = '\0'; /* marks the duplicate */
            continue;
        }
        by_id[u++] = by_id[i];
    }
    if (u != kept) {
        size_t w = 0;
        for (size_t i = 0; i < kept; i++)
            if (fl[i].id[0] != '\0')
                fl[w++] = fl[i];
        for (size_t i = 0; i < w; i++)
            by_id[i] = &fl[i];
        qsort(by_id, w, sizeof(*by_id), cmp_found_id);
        kept = w;
    }
    p->n = kept;
    return ZL_OK;
}

/* Sends det_insert for fl[0..n) of part p without waiting for the answer
 * (insert_finish collects it). Inside the caller's transaction. */
static zl_class insert_send(struct zl_detector *d, struct scan_part *p, const struct found_log *fl, size_t n,
                            struct inflight *inf, char *errstr, size_t errstr_size)
{
    enum { COLS = 8 };
    const char **col[COLS];
    char *lit[COLS];
    zl_class c = ZL_OK;
    for (int k = 0; k < COLS; k++) {
        col[k] = malloc((n > 0 ? n : 1) * sizeof(*col[k]));
        lit[k] = NULL;
    }
    for (int k = 0; k < COLS; k++) {
        if (col[k] == NULL) {
            snprintf(errstr, errstr_size, "detector: out of memory for %zu rows", n);
            c = ZL_TRANSIENT;
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        col[0][i] = fl[i].id;
        col[1][i] = fl[i].tl.tx_hash;
        col[2][i] = fl[i].log_index;
        col[3][i] = fl[i].block_number;
        col[4][i] = fl[i].tl.block_hash;
        col[5][i] = fl[i].tl.from;
        col[6][i] = fl[i].tl.to;
        col[7][i] = fl[i].tl.amount;
    }
    for (int k = 0; k < COLS; k++) {
        lit[k] = zl_pg_array_literal(col[k], n);
        if (lit[k] == NULL) {
            snprintf(errstr, errstr_size, "detector: out of memory for %zu rows", n);
            c = ZL_TRANSIENT;
            goto out;
        }
    }
    if (!zl_pg_connected(d->o.pg)) {
        snprintf(errstr, errstr_size, "postgres: not connected");
        c = ZL_OUTAGE;
        goto out;
    }
    const char *vals[10] = {d->chain_text, d->token, lit[0], lit[1], lit[2], lit[3], lit[4], lit[5], lit[6], lit[7]};
    /* libpq copies the parameters into its output buffer: lit may go now. */
    if (PQsendQueryPrepared(d->o.pg->conn, "det_insert", 10, vals, NULL, NULL, 0) != 1) {
        c = zl_pg_classify(d->o.pg, NULL, errstr, errstr_size);
        goto out;
    }
    inf->active = true;
    inf->part = p;
out:
    for (int k = 0; k < COLS; k++) {
        free(col[k]);
        free(lit[k]);
    }
    return c;
}

/* Waits for the insert in flight, if any, and marks the rows it returned
 * fresh. With `abandon` the answer is only drained (the caller rolls back).
 * Returns ZL_OK or the statement's class with errstr. */
zl_class det_insert_finish(struct zl_detector *d, struct inflight *inf, bool abandon, char *errstr,
                              size_t errstr_size)
{
    if (!inf->active)
        return ZL_OK;
    inf->active = false;
    if (!zl_pg_connected(d->o.pg)) {
        snprintf(errstr, errstr_size, "postgres: not connected");
        return ZL_OUTAGE;
    }
    PGresult *r = PQgetResult(d->o.pg->conn);
    /* A statement's answer ends with a NULL result; drain to it so the
     * connection takes commands again. */
    PGresult *extra;
    while ((extra = PQgetResult(d->o.pg->conn)) != NULL)
        PQclear(extra);
    if (abandon) {
        PQclear(r);
        return ZL_OK;
    }
    if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK) {
        zl_class c = zl_pg_classify(d->o.pg, r, errstr, errstr_size);
        PQclear(r);
        return c;
    }
    struct scan_part *p = inf->part;
    int rows = PQntuples(r);
    for (int i = 0; i < rows; i++) {
        struct found_log **hit = bsearch(PQgetvalue(r, i, 0), p->by_id, p->n, sizeof(*p->by_id), cmp_key_found);
        if (hit == NULL) {
            /* Cannot happen: the statement returns only ids it was given. */
            zl_log_kv(ZL_LOG_ERROR, NULL, "insert returned an id the scan did not send", "deposit_id",
                      PQgetvalue(r, i, 0), NULL);
            continue;
        }
        (*hit)->fresh = true;
        snprintf((*hit)->user_id, sizeof((*hit)->user_id), "%s", PQgetvalue(r, i, 1));
    }
    PQclear(r);
    /* Rows written, their transaction (and the cursor) not committed: a
     * crash here must leave none of them (test_detect_crash.py). */
    zl_fault_point("detect_after_insert");
    return ZL_OK;
}

/* Sends the inserts of part p: every chunk but the last waited for, the
 * last left in flight so the next eth_getLogs overlaps it. */
zl_class det_insert_part(struct zl_detector *d, struct scan_part *p, struct inflight *inf, char *errstr,
                            size_t errstr_size)
{
    for (size_t off = 0; off < p->n; off += DET_INSERT_ROWS_MAX) {
        size_t k = p->n - off < DET_INSERT_ROWS_MAX ? p->n - off : DET_INSERT_ROWS_MAX;
        zl_class c = det_insert_finish(d, inf, false, errstr, errstr_size);
        if (c == ZL_OK)
            c = insert_send(d, p, p->fl + off, k, inf, errstr, errstr_size);
        if (c != ZL_OK)
            return c;
    }
    return ZL_OK;
}

/* Next sub-range size from the last one: about DET_LOGS_PER_QUERY_TARGET
 * logs per request, growing fast through empty blocks. */
static void adapt_sub_blocks(struct zl_detector *d, uint64_t blocks, size_t logs)
{
    uint64_t next = logs == 0 ? blocks * 2 : blocks * DET_LOGS_PER_QUERY_TARGET / logs;
    if (next < 1)
        next = 1;
    if (next > (uint64_t)d->o.range_max)
        next = (uint64_t)d->o.range_max;
    d->sub_blocks = (int64_t)next;
}

/* One transaction over blocks from..to: eth_getLogs per sub-range, each
 * sub-range's insert overlapping the next request, then the cursor (compare-
 * and-set on its old block number) and the block hash, COMMIT, and only then
 * the events. Nothing is kept on failure (rolled back). */
static zl_class scan_and_record(struct zl_detector *d, uint64_t from, uint64_t to, bool had_cursor,
                                uint64_t old_cursor, const char *hash_before, struct step_times *tm, char *errstr,
                                size_t errstr_size)
{
    struct scan_part parts[DET_PARTS_PER_STEP_MAX];
    size_t nparts = 0;
    struct inflight inf = {false, NULL};
    int64_t t = zl_now_ms();
    /* Custom plans for det_insert: a generic plan guesses 10 rows for each
     * unnest and, on a table without statistics yet, joined every row of the
     * chain once per log (2 s for 2,500 logs instead of 0.1 s, measured).
     * Planned with the real arrays it costs ~10 ms more per statement. */
    zl_class c = zl_pg_exec(d->o.pg, "BEGIN; SET LOCAL plan_cache_mode = force_custom_plan", errstr, errstr_size);
    tm->db_ms += zl_now_ms() - t;
    if (c != ZL_OK)
        return c;
    /* At most DET_PARTS_PER_STEP_MAX requests: the last part takes the rest. */
    uint64_t span = to - from + 1;
    uint64_t min_blocks = (span + DET_PARTS_PER_STEP_MAX - 1) / DET_PARTS_PER_STEP_MAX;
    for (uint64_t lo = from; lo <= to;) {
        uint64_t blocks = (uint64_t)d->sub_blocks;
        if (blocks < min_blocks)
            blocks = min_blocks;
        uint64_t hi = blocks - 1 > to - lo ? to : lo + blocks - 1;
        if (nparts == DET_PARTS_PER_STEP_MAX - 1)
            hi = to;
        t = zl_now_ms();
        json_t *logs = json_array();
        bool held = false;
        if (zl_addrset_count(d->addrs) > 0) {
            c = get_logs(d, lo, hi, logs, &held, errstr, errstr_size);
            if (c == ZL_OK && json_array_size(logs) > ZL_DETECT_LOGS_PER_STEP_MAX) {
                /* Bounded memory per request: the same remedy as a provider's cap. */
                snprintf(errstr, errstr_size, "%zu logs in blocks %" PRIu64 "..%" PRIu64
                         ", more than ZL_DETECT_LOGS_PER_STEP_MAX %d", json_array_size(logs), lo, hi,
                         ZL_DETECT_LOGS_PER_STEP_MAX);
                c = ZL_TRANSIENT;
            }
        }
        tm->logs_ms += zl_now_ms() - t;
        if (c != ZL_OK) {
            json_decref(logs);
            if (c != ZL_OUTAGE && !held && hi > lo) {
                /* Providers cap ranges and result counts: ask for less. */
                d->range = (int64_t)((hi - lo + 1) / 2);
                d->sub_blocks = d->range;
                zl_log(ZL_LOG_WARN, NULL, "eth_getLogs refused %" PRIu64 "..%" PRIu64 "; range halved to %" PRId64
                       ": %s", lo, hi, d->range, errstr);
            }
            goto fail;
        }
        size_t raw = json_array_size(logs);
        tm->logs += raw;
        det_count(d->m_transfers, raw);
        t = zl_now_ms();
        c = det_collect(d, logs, lo, hi, NULL, &parts[nparts], errstr, errstr_size);
        json_decref(logs);
        tm->parse_ms += zl_now_ms() - t;
        if (c != ZL_OK)
            goto fail;
        nparts++;
        adapt_sub_blocks(d, hi - lo + 1, raw);
        t = zl_now_ms();
        c = det_insert_part(d, &parts[nparts - 1], &inf, errstr, errstr_size);
        tm->db_ms += zl_now_ms() - t;
        if (c != ZL_OK)
            goto fail;
        lo = hi + 1;
    }
    /* Same hash after the logs were read: they came from this chain, not
     * from a fork that was replaced while we read. (Overlaps the last insert.) */
    char hash_after[ZL_HASH_HEX_SIZE];
    c = det_block_hash_at(d, to, hash_after, sizeof(hash_after), errstr, errstr_size);
    if (c == ZL_OK && strcmp(hash_before, hash_after) != 0) {
        snprintf(errstr, errstr_size, "block %" PRIu64 " changed while scanning (reorg in progress); retrying", to);
        c = ZL_TRANSIENT;
    }
    if (c != ZL_OK)
        goto fail;
    t = zl_now_ms();
    c = det_insert_finish(d, &inf, false, errstr, errstr_size);
    if (c != ZL_OK)
        goto fail;
    char tn[NUM_TEXT_MAX], oc[NUM_TEXT_MAX];
    snprintf(tn, sizeof(tn), "%" PRIu64, to);
    /* No cursor yet: -1 matches no row, so a row another copy created wins. */
    snprintf(oc, sizeof(oc), "%" PRId64, had_cursor ? (int64_t)old_cursor : INT64_C(-1));
    const char *cv[5] = {d->chain_text, d->token, tn, hash_after, oc};
    PGresult *r = det_run(d, "det_cursor_set", 5, cv, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        goto fail;
    bool moved = PQntuples(r) == 1;
    PQclear(r);
    if (!moved) {
        d->lock.held = false;
        snprintf(errstr, errstr_size, "cursor moved under us: another detector is scanning; standing by");
        c = ZL_TRANSIENT;
        goto fail;
    }
    const char *bv[4] = {d->chain_text, d->token, tn, hash_after};
    r = det_run(d, "det_block_put", 4, bv, PGRES_COMMAND_OK, &c, errstr, errstr_size);
    if (r == NULL)
        goto fail;
    PQclear(r);
    char keep[NUM_TEXT_MAX];
    snprintf(keep, sizeof(keep), "%" PRId64, (int64_t)to - d->o.blocks_kept);
    const char *pv[3] = {d->chain_text, d->token, keep};
    r = det_run(d, "det_block_prune", 3, pv, PGRES_COMMAND_OK, &c, errstr, errstr_size);
    if (r == NULL)
        goto fail;
    PQclear(r);
    c = zl_pg_exec(d->o.pg, "COMMIT", errstr, errstr_size);
    if (c != ZL_OK)
        goto fail;
    tm->db_ms += zl_now_ms() - t;
    zl_fault_point("after_db_commit");
    t = zl_now_ms();
    size_t found = 0;
    for (size_t k = 0; k < nparts; k++) {
        for (size_t i = 0; i < parts[k].n; i++) {
            if (!parts[k].fl[i].fresh)
                continue;
            det_publish(d, &parts[k].fl[i].tl, parts[k].fl[i].id, parts[k].fl[i].user_id);
            found++;
        }
        det_part_free(&parts[k]);
    }
    rd_kafka_poll(d->o.producer, 0);
    tm->publish_ms = zl_now_ms() - t;
    tm->deposits = found;
    det_count(d->m_deposits, found);
    det_count(d->m_blocks, had_cursor ? to - old_cursor : 1);
    return ZL_OK;
fail:
    {
        char ignored[ZL_ERRSTR_SIZE];
        det_insert_finish(d, &inf, true, ignored, sizeof(ignored));
    }
    det_tx_fail(d, c);
    for (size_t k = 0; k < nparts; k++)
        det_part_free(&parts[k]);
    return c;
}

zl_class zl_detector_step(struct zl_detector *d, bool *idle, char *errstr, size_t errstr_size)
{
    *idle = false;
    rd_kafka_poll(d->o.producer, 0);
    zl_class c = ensure_lock(d, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    if (!d->lock.held) {
        *idle = true;
        return ZL_OK;
    }
    uint64_t head = 0;
    c = head_number(d, &head, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    uint64_t lag = (uint64_t)d->o.lag_blocks;
    if (head < lag) {
        *idle = true;
        return ZL_OK;
    }
    uint64_t safe = head - lag;

    bool have = false;
    uint64_t cursor = 0;
    char cursor_hash[ZL_HASH_HEX_SIZE] = "";
    c = read_cursor(d, &have, &cursor, cursor_hash, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    uint64_t from;
    if (have) {
        char chain_hash[ZL_HASH_HEX_SIZE];
        if (cursor > safe) {
            /* the chain got shorter than our cursor: a reorg to a shorter fork,
             * or a node behind; compare at the cursor anyway when it exists */
            if (cursor > head) {
                *idle = true;
                return ZL_OK;
            }
        }
        c = det_block_hash_at(d, cursor, chain_hash, sizeof(chain_hash), errstr, errstr_size);
        if (c != ZL_OK)
            return c;
        if (strcmp(chain_hash, cursor_hash) != 0)
            return handle_reorg(d, cursor, errstr, errstr_size);
        from = cursor + 1;
        if (d->m_lag != NULL)
            zl_metric_gauge_set(d->m_lag, (double)(head - cursor));
    } else {
        from = d->o.start_block >= 0 ? (uint64_t)d->o.start_block : safe;
    }
    /* Before the idle return: an address registered while the scan is
     * caught up gets its backfill range at once. The live scan covers from
     * `from` on, the backfill everything below. */
    c = det_addresses_refresh(d, (int64_t)from - 1, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    if (from > safe) {
        *idle = true;
        return ZL_OK;
    }
    uint64_t to = from + (uint64_t)d->range - 1;
    if (to > safe)
        to = safe;
    if (d->m_range != NULL)
        zl_metric_gauge_set(d->m_range, (double)d->range);

    char hash_before[ZL_HASH_HEX_SIZE];
    c = det_block_hash_at(d, to, hash_before, sizeof(hash_before), errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    struct step_times tm;
    memset(&tm, 0, sizeof(tm));
    c = scan_and_record(d, from, to, have, cursor, hash_before, &tm, errstr, errstr_size);
    if (c == ZL_OK && tm.deposits > 0)
        zl_log(ZL_LOG_INFO, NULL,
               "recorded %zu deposit(s) in blocks %" PRIu64 "..%" PRIu64 " from %zu log(s): eth_getLogs %" PRId64
               " ms, parse %" PRId64 " ms, db %" PRId64 " ms, publish %" PRId64 " ms",
               tm.deposits, from, to, tm.logs, tm.logs_ms, tm.parse_ms, tm.db_ms, tm.publish_ms);
    else if (c == ZL_OK)
        zl_log(ZL_LOG_DEBUG, NULL, "scanned blocks %" PRIu64 "..%" PRIu64 ": %zu log(s), no new deposit", from, to,
               tm.logs);
    if (c == ZL_OK && d->range < d->o.range_max) {
        d->range *= 2;
        if (d->range > d->o.range_max)
            d->range = d->o.range_max;
    }
    if (!have) {
        /* the first cursor: the step covered from..to */
        det_count(d->m_blocks, to - from);
    }
    return c;
}

zl_class zl_detector_store_decimals(struct zl_detector *d, int decimals, char *errstr, size_t errstr_size)
{
    zl_class c = zl_pg_ensure(d->o.pg, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    char dec[8];
    snprintf(dec, sizeof(dec), "%d", decimals);
    const char *vals[3] = {d->chain_text, d->token, dec};
    PGresult *r = det_run(d, "det_decimals_put", 3, vals, PGRES_COMMAND_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    PQclear(r);
    return ZL_OK;
}
