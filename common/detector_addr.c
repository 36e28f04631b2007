/* detector_addr.c: detect's address set and the backfill of late-registered
 * addresses (see detector.h and architecture §10, detect).
 *
 * Why a backfill: addresses are often handed out and registered
 * asynchronously, so a user can pay to an address before it is registered,
 * or it is registered after the live cursor passed the payment. The live
 * scan never looks back; the backfill scans each such address's own range
 * (scan_from_block .. the cursor when the address entered the set) beside
 * it, in bounded chunks, through the same insert-if-absent statement. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detector_int.h"
#include "log.h"

/* seq values per page when reading deposit_addresses: bounds libpq's copy
 * of the answer (~100 bytes a row) while 1,000,000 addresses load at start. */
#define DET_ADDRESS_PAGE_ROWS 50000
/* Rows below the highest seq already read that each refresh reads again: a
 * registration that took its seq before others but committed after them
 * (concurrent zl-address runs) is still found. Cheap: ~1 ms a refresh. */
#define DET_ADDRESS_SEQ_OVERLAP 1000
/* Every address read again this often, as the backstop of the overlap (a
 * registration that committed later than DET_ADDRESS_SEQ_OVERLAP others).
 * Such an address still gets its whole backfill range when it is found. */
#define DET_ADDRESSES_FULL_READ_MS (3600 * 1000)
/* Backfill ranges named one by one in the log per refresh (the rest are
 * counted): the first start after a bulk registration may add thousands. */
#define DET_BACKFILL_LOG_LINES_MAX 20

const struct zl_pg_stmt det_addr_stmts[] = {
    {"det_addr_seq_max", "SELECT coalesce(max(seq), 0) FROM deposit_addresses WHERE chain_id = $1", 1},
    /* A page is a range of seq, not ORDER BY seq LIMIT n: right after a
     * bulk COPY (no statistics yet) PostgreSQL sorted the whole rest of the
     * table on disk for each page of the latter (~300 ms a page, 8 s for
     * 1,000,000 addresses in the bench). The rows of a range need no order. */
    {"det_addr_page",
     "SELECT address, seq, scan_from_block FROM deposit_addresses WHERE chain_id = $1 AND seq > $2 AND seq <= $3",
     3},
    /* One range per (address, first block): a restart that reads the
     * address again finds it recorded and keeps its progress. */
    {"det_backfill_add",
     "INSERT INTO address_backfill (chain_id, token, address, from_block, to_block, next_block)"
     " SELECT $1::bigint, $2::text, v.a, v.f, $5::bigint, v.f FROM unnest($3::text[], $4::bigint[]) AS v(a, f)"
     " WHERE v.f <= $5::bigint ON CONFLICT DO NOTHING RETURNING address, from_block",
     5},
    {"det_backfill_next",
     "SELECT address, from_block, next_block, to_block, count(*) OVER () FROM address_backfill"
     " WHERE chain_id = $1 AND token = $2 AND done_at IS NULL ORDER BY created_at, address, from_block LIMIT 1",
     2},
    /* Compare-and-set on the progress this copy read. */
    {"det_backfill_move",
     "UPDATE address_backfill SET next_block = $5, updated_at = now(),"
     " done_at = CASE WHEN $5::bigint > to_block THEN now() END"
     " WHERE chain_id = $1 AND token = $2 AND address = $3 AND from_block = $4 AND next_block = $6"
     " RETURNING done_at IS NOT NULL, to_block",
     6},
};
const size_t det_addr_stmts_count = sizeof(det_addr_stmts) / sizeof(det_addr_stmts[0]);

void det_addr_metrics(struct zl_detector *d)
{
    struct zl_metrics *m = d->o.metrics;
    zl_metrics_describe(m, "zl_detect_addresses", ZL_METRIC_GAUGE, "registered addresses held in the scan's set");
    zl_metrics_describe(m, "zl_detect_addresses_max", ZL_METRIC_GAUGE,
                        "ZL_DETECT_ADDRESSES_MAX: past it the scan stops with an error");
    zl_metrics_describe(m, "zl_detect_address_limit_hit_total", ZL_METRIC_COUNTER,
                        "refreshes refused because the set would pass ZL_DETECT_ADDRESSES_MAX (the cursor stays)");
    zl_metrics_describe(m, "zl_detect_backfill_pending", ZL_METRIC_GAUGE,
                        "backfill ranges of late-registered addresses not finished");
    zl_metrics_describe(m, "zl_detect_backfill_blocks_total", ZL_METRIC_COUNTER, "blocks scanned by backfills");
    zl_metrics_describe(m, "zl_detect_backfill_deposits_total", ZL_METRIC_COUNTER,
                        "deposits recorded by backfills (missed by the live scan)");
    zl_metrics_describe(m, "zl_detect_backfill_done_total", ZL_METRIC_COUNTER, "backfill ranges finished");
    d->m_addresses = zl_metrics_gauge_handle(m, "zl_detect_addresses", NULL);
    d->m_addr_limit = zl_metrics_counter_handle(m, "zl_detect_address_limit_hit_total", NULL);
    d->m_bf_pending = zl_metrics_gauge_handle(m, "zl_detect_backfill_pending", d->token_label);
    d->m_bf_blocks = zl_metrics_counter_handle(m, "zl_detect_backfill_blocks_total", NULL);
    d->m_bf_deposits = zl_metrics_counter_handle(m, "zl_detect_backfill_deposits_total", NULL);
    d->m_bf_done = zl_metrics_counter_handle(m, "zl_detect_backfill_done_total", NULL);
    zl_metric *mx = zl_metrics_gauge_handle(m, "zl_detect_addresses_max", NULL);
    if (mx != NULL)
        zl_metric_gauge_set(mx, (double)d->o.addresses_max);
    if (d->m_addresses != NULL)
        zl_metric_gauge_set(d->m_addresses, 0);
    if (d->m_bf_pending != NULL)
        zl_metric_gauge_set(d->m_bf_pending, 0);
}

static void gauge(zl_metric *m, double v)
{
    if (m != NULL)
        zl_metric_gauge_set(m, v);
}

/* ---------- the address set ---------- */

/* What one page brings: addresses new to the set, and the backfill ranges
 * to record (new addresses, and addresses registered again since the last
 * read: an earlier --since-block widens the range). */
struct new_rows {
    const char **addr;    /* addresses not in the set; borrowed from the page's PGresult */
    size_t n;
    const char **bf_addr; /* rows with a scan_from_block to record, and it */
    const char **bf_from;
    size_t nbf;
};

static void new_rows_free(struct new_rows *nr)
{
    free(nr->addr);
    free(nr->bf_addr);
    free(nr->bf_from);
    memset(nr, 0, sizeof(*nr));
}

/* Records the backfill ranges of the page's new addresses that have a
 * scan_from_block at or below covered_to. */
static zl_class backfill_add(struct zl_detector *d, const struct new_rows *nr, int64_t covered_to, char *errstr,
                             size_t errstr_size)
{
    if (nr->nbf == 0 || covered_to < 0)
        return ZL_OK;
    char *la = zl_pg_array_literal(nr->bf_addr, nr->nbf);
    char *lf = zl_pg_array_literal(nr->bf_from, nr->nbf);
    char to[NUM_TEXT_MAX];
    snprintf(to, sizeof(to), "%" PRId64, covered_to);
    zl_class c = ZL_OK;
    if (la == NULL || lf == NULL) {
        snprintf(errstr, errstr_size, "detector: out of memory for %zu backfill ranges", nr->nbf);
        c = ZL_TRANSIENT;
        goto out;
    }
    const char *vals[5] = {d->chain_text, d->token, la, lf, to};
    PGresult *r = det_run(d, "det_backfill_add", 5, vals, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        goto out;
    int n = PQntuples(r);
    for (int i = 0; i < n && i < DET_BACKFILL_LOG_LINES_MAX; i++)
        zl_log_kv(ZL_LOG_INFO, NULL, "late-registered address: backfill range recorded", "address",
                  PQgetvalue(r, i, 0), "from_block", PQgetvalue(r, i, 1), "to_block", to, NULL);
    if (n > DET_BACKFILL_LOG_LINES_MAX)
        zl_log(ZL_LOG_INFO, NULL, "%d more backfill range(s) recorded up to block %s", n - DET_BACKFILL_LOG_LINES_MAX,
               to);
    PQclear(r);
out:
    free(la);
    free(lf);
    return c;
}

/* Fills nr from page r (row order). Returns 0, or -1 when out of memory. */
static int page_new_rows(struct zl_detector *d, PGresult *r, struct new_rows *nr)
{
    size_t n = (size_t)PQntuples(r);
    memset(nr, 0, sizeof(*nr));
    nr->addr = malloc((n > 0 ? n : 1) * sizeof(*nr->addr));
    nr->bf_addr = malloc((n > 0 ? n : 1) * sizeof(*nr->bf_addr));
    nr->bf_from = malloc((n > 0 ? n : 1) * sizeof(*nr->bf_from));
    if (nr->addr == NULL || nr->bf_addr == NULL || nr->bf_from == NULL) {
        new_rows_free(nr);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *a = PQgetvalue(r, (int)i, 0);
        bool known = zl_addrset_has(d->addrs, a);
        /* Known and not written since the last read: the overlap or a full read. */
        if (known && strtoll(PQgetvalue(r, (int)i, 1), NULL, 10) <= d->addr_seq_seen)
            continue;
        if (!known)
            nr->addr[nr->n++] = a;
        if (!PQgetisnull(r, (int)i, 2)) {
            nr->bf_addr[nr->nbf] = a;
            nr->bf_from[nr->nbf++] = PQgetvalue(r, (int)i, 2);
        }
    }
    return 0;
}

/* Adds one page's new addresses after their backfill ranges are recorded.
 * Returns ZL_OK or the class with errstr; on failure nothing of the page is
 * in the set, so the next refresh reads it again. */
static zl_class take_page(struct zl_detector *d, PGresult *r, int64_t covered_to, char *errstr, size_t errstr_size)
{
    struct new_rows nr;
    if (page_new_rows(d, r, &nr) != 0) {
        snprintf(errstr, errstr_size, "detector: out of memory reading addresses");
        return ZL_TRANSIENT;
    }
    size_t have = zl_addrset_count(d->addrs);
    if (nr.n > (size_t)d->o.addresses_max - have) {
        d->addr_limit_hit = true;
        det_count(d->m_addr_limit, 1);
        snprintf(errstr, errstr_size,
                 "%zu registered addresses on chain %s and more to read, past ZL_DETECT_ADDRESSES_MAX %" PRId64
                 ": the scan stops here rather than leave any out; raise ZL_DETECT_ADDRESSES_MAX (~80 bytes of"
                 " memory each) and restart",
                 have + nr.n, d->chain_text, d->o.addresses_max);
        zl_log_kv(ZL_LOG_ERROR, NULL, "address limit reached: the scan is held", "error", errstr, NULL);
        new_rows_free(&nr);
        return ZL_PERMANENT;
    }
    zl_class c = backfill_add(d, &nr, covered_to, errstr, errstr_size);
    for (size_t i = 0; c == ZL_OK && i < nr.n; i++) {
        enum zl_addrset_add_result a = zl_addrset_add(d->addrs, nr.addr[i]);
        if (a == ZL_ADDRSET_NOMEM) {
            snprintf(errstr, errstr_size, "detector: out of memory for %zu addresses", have + nr.n);
            c = ZL_TRANSIENT;
        } else if (a == ZL_ADDRSET_BAD) {
            /* The table's CHECK makes this impossible; say so if it happens. */
            zl_log_kv(ZL_LOG_ERROR, NULL, "deposit_addresses holds a row that is not an address", "address",
                      nr.addr[i], NULL);
        }
    }
    new_rows_free(&nr);
    return c;
}

zl_class det_addresses_refresh(struct zl_detector *d, int64_t covered_to, char *errstr, size_t errstr_size)
{
    int64_t now = zl_now_ms();
    bool full = d->addr_full_read_at_ms == 0 || now >= d->addr_full_read_at_ms;
    int64_t after = full ? 0 : d->addr_seq_seen - DET_ADDRESS_SEQ_OVERLAP;
    if (after < 0)
        after = 0;
    int64_t seen = d->addr_seq_seen;
    const char *cv[1] = {d->chain_text};
    zl_class c;
    PGresult *r = det_run(d, "det_addr_seq_max", 1, cv, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    int64_t top = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    size_t before = zl_addrset_count(d->addrs);
    /* Each page is the next DET_ADDRESS_PAGE_ROWS seq values: the loop ends
     * at the highest seq committed when it started (later ones: next time). */
    for (int64_t lo = after; lo < top; lo += DET_ADDRESS_PAGE_ROWS) {
        int64_t hi = top - lo > DET_ADDRESS_PAGE_ROWS ? lo + DET_ADDRESS_PAGE_ROWS : top;
        char lo_text[NUM_TEXT_MAX], hi_text[NUM_TEXT_MAX];
        snprintf(lo_text, sizeof(lo_text), "%" PRId64, lo);
        snprintf(hi_text, sizeof(hi_text), "%" PRId64, hi);
        const char *vals[3] = {d->chain_text, lo_text, hi_text};
        r = det_run(d, "det_addr_page", 3, vals, PGRES_TUPLES_OK, &c, errstr, errstr_size);
        if (r == NULL)
            return c;
        c = take_page(d, r, covered_to, errstr, errstr_size);
        PQclear(r);
        if (c != ZL_OK)
            return c;
    }
    if (top > seen)
        seen = top;
    d->addr_seq_seen = seen;
    if (full)
        d->addr_full_read_at_ms = now + DET_ADDRESSES_FULL_READ_MS;
    if (d->addr_limit_hit) {
        d->addr_limit_hit = false;
        zl_log(ZL_LOG_INFO, NULL, "address limit no longer reached: %zu addresses, the scan resumes",
               zl_addrset_count(d->addrs));
    }
    size_t added = zl_addrset_count(d->addrs) - before;
    if (added > 0)
        zl_log(before == 0 ? ZL_LOG_INFO : ZL_LOG_DEBUG, NULL,
               "address set: %zu added in %" PRId64 " ms, %zu held in %zu KiB", added, zl_now_ms() - now,
               zl_addrset_count(d->addrs), zl_addrset_bytes(d->addrs) / 1024);
    gauge(d->m_addresses, (double)zl_addrset_count(d->addrs));
    return ZL_OK;
}

/* ---------- backfill ---------- */

/* The oldest unfinished range, if any. */
struct bf_range {
    char address[ZL_ADDRESS_HEX_SIZE];
    char from_block[NUM_TEXT_MAX];
    uint64_t next;
    uint64_t to;
    long pending; /* unfinished ranges, this one included */
};

static zl_class next_range(struct zl_detector *d, bool *found, struct bf_range *br, char *errstr, size_t errstr_size)
{
    const char *vals[2] = {d->chain_text, d->token};
    zl_class c;
    PGresult *r = det_run(d, "det_backfill_next", 2, vals, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    *found = PQntuples(r) == 1;
    if (*found) {
        snprintf(br->address, sizeof(br->address), "%s", PQgetvalue(r, 0, 0));
        snprintf(br->from_block, sizeof(br->from_block), "%s", PQgetvalue(r, 0, 1));
        br->next = strtoull(PQgetvalue(r, 0, 2), NULL, 10);
        br->to = strtoull(PQgetvalue(r, 0, 3), NULL, 10);
        br->pending = strtol(PQgetvalue(r, 0, 4), NULL, 10);
    }
    PQclear(r);
    return ZL_OK;
}

/* Transfers of the token to one address in lo..hi: the node filters by the
 * recipient topic, so a chunk costs what that address received. */
static zl_class address_logs(struct zl_detector *d, const char *address, uint64_t lo, uint64_t hi, json_t **out,
                             bool *held, char *errstr, size_t errstr_size)
{
    char f[NUM_TEXT_MAX], t[NUM_TEXT_MAX], topic[ZL_HASH_HEX_SIZE];
    snprintf(f, sizeof(f), "0x%" PRIx64, lo);
    snprintf(t, sizeof(t), "0x%" PRIx64, hi);
    if (zl_address_topic(address, topic, sizeof(topic)) != 0) {
        snprintf(errstr, errstr_size, "address_backfill holds \"%s\", not an address", address);
        return ZL_PERMANENT;
    }
    json_t *params = json_pack("[{s:s, s:s, s:s, s:[s, n, s]}]", "fromBlock", f, "toBlock", t, "address", d->token,
                               "topics", ZL_TRANSFER_TOPIC0, topic);
    json_t *res = NULL;
    zl_class c = det_get_logs(d, params, lo, hi, &res, held, errstr, errstr_size);
    json_decref(params);
    if (c != ZL_OK)
        return c;
    if (json_array_size(res) > ZL_DETECT_LOGS_PER_STEP_MAX) {
        snprintf(errstr, errstr_size, "%zu logs to %s in blocks %" PRIu64 "..%" PRIu64
                 ", more than ZL_DETECT_LOGS_PER_STEP_MAX %d", json_array_size(res), address, lo, hi,
                 ZL_DETECT_LOGS_PER_STEP_MAX);
        json_decref(res);
        return ZL_TRANSIENT;
    }
    *out = res;
    return ZL_OK;
}

/* Inserts the chunk's deposits and moves the range's progress from lo to
 * hi + 1, one transaction. *moved false: another copy moved it first. */
static zl_class record_chunk(struct zl_detector *d, const struct bf_range *br, struct scan_part *p, uint64_t lo,
                             uint64_t hi, bool *moved, bool *done, char *errstr, size_t errstr_size)
{
    struct inflight inf = {false, NULL};
    /* Custom plans for det_insert, as in the live scan (detector.c). */
    zl_class c = zl_pg_exec(d->o.pg, "BEGIN; SET LOCAL plan_cache_mode = force_custom_plan", errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    c = det_insert_part(d, p, &inf, errstr, errstr_size);
    if (c == ZL_OK)
        c = det_insert_finish(d, &inf, false, errstr, errstr_size);
    if (c != ZL_OK)
        goto fail;
    char from_old[NUM_TEXT_MAX], next_new[NUM_TEXT_MAX];
    snprintf(from_old, sizeof(from_old), "%" PRIu64, lo);
    snprintf(next_new, sizeof(next_new), "%" PRIu64, hi + 1);
    const char *vals[6] = {d->chain_text, d->token, br->address, br->from_block, next_new, from_old};
    PGresult *r = det_run(d, "det_backfill_move", 6, vals, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        goto fail;
    *moved = PQntuples(r) == 1;
    *done = *moved && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!*moved) {
        snprintf(errstr, errstr_size, "backfill of %s moved under us (another detector?); not recorded",
                 br->address);
        c = ZL_TRANSIENT;
        goto fail;
    }
    return zl_pg_exec(d->o.pg, "COMMIT", errstr, errstr_size);
fail:
    {
        char ignored[ZL_ERRSTR_SIZE];
        det_insert_finish(d, &inf, true, ignored, sizeof(ignored));
    }
    return det_tx_fail(d, c);
}

zl_class zl_detector_backfill_step(struct zl_detector *d, bool *idle, char *errstr, size_t errstr_size)
{
    *idle = true;
    if (!d->lock.held)
        return ZL_OK;
    bool found = false;
    struct bf_range br;
    zl_class c = next_range(d, &found, &br, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    gauge(d->m_bf_pending, found ? (double)br.pending : 0);
    if (!found)
        return ZL_OK;
    *idle = false;
    uint64_t lo = br.next, hi = br.to;
    if (hi - lo + 1 > (uint64_t)d->bf_blocks)
        hi = lo + (uint64_t)d->bf_blocks - 1;
    json_t *logs = NULL;
    bool held = false;
    c = address_logs(d, br.address, lo, hi, &logs, &held, errstr, errstr_size);
    if (c != ZL_OK) {
        if (c == ZL_TRANSIENT && !held && hi > lo) {
            /* Providers cap ranges and result counts: ask for less. */
            d->bf_blocks = (int64_t)((hi - lo + 1) / 2);
            zl_log(ZL_LOG_WARN, NULL, "backfill eth_getLogs refused %" PRIu64 "..%" PRIu64 "; chunk halved to %"
                   PRId64 ": %s", lo, hi, d->bf_blocks, errstr);
        }
        return c;
    }
    struct scan_part part;
    memset(&part, 0, sizeof(part));
    size_t raw = json_array_size(logs);
    /* The range's own address, not the set: the range stands on its own
     * (an address removed since inserts nothing: det_insert joins the
     * registered addresses). */
    c = det_collect(d, logs, lo, hi, br.address, &part, errstr, errstr_size);
    json_decref(logs);
    if (c != ZL_OK)
        return c;
    bool moved = false, done = false;
    c = record_chunk(d, &br, &part, lo, hi, &moved, &done, errstr, errstr_size);
    if (c != ZL_OK) {
        det_part_free(&part);
        return c;
    }
    size_t fresh = 0;
    for (size_t i = 0; i < part.n; i++) {
        if (!part.fl[i].fresh)
            continue;
        det_publish(d, &part.fl[i].tl, part.fl[i].id, part.fl[i].user_id);
        fresh++;
    }
    det_part_free(&part);
    rd_kafka_poll(d->o.producer, 0);
    det_count(d->m_bf_blocks, hi - lo + 1);
    det_count(d->m_bf_deposits, fresh);
    if (d->bf_blocks < d->o.backfill_blocks) {
        d->bf_blocks *= 2;
        if (d->bf_blocks > d->o.backfill_blocks)
            d->bf_blocks = d->o.backfill_blocks;
    }
    zl_log(fresh > 0 ? ZL_LOG_INFO : ZL_LOG_DEBUG, NULL,
           "backfill of %s: blocks %" PRIu64 "..%" PRIu64 " of %s..%" PRIu64 ", %zu log(s), %zu new deposit(s)",
           br.address, lo, hi, br.from_block, br.to, raw, fresh);
    if (done) {
        det_count(d->m_bf_done, 1);
        gauge(d->m_bf_pending, (double)(br.pending - 1));
        zl_log_kv(ZL_LOG_INFO, NULL, "backfill done", "address", br.address, "from_block", br.from_block, NULL);
    }
    return ZL_OK;
}
