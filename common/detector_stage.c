/* detector_stage.c: how the scan's deposits reach the state table. Each
 * chunk of a sub-range's logs is COPYed into a temporary staging table
 * (pg_temp.det_stage: not WAL-logged, no index, private to the connection,
 * emptied at COMMIT), then one INSERT ... SELECT from it with det_insert's
 * insert-if-absent rules (det_stage_insert_sql) is sent without waiting, so
 * PostgreSQL writes deposits while the next eth_getLogs is read.
 *
 * Why: the array parameters of det_insert (eight literals of ~2,500
 * elements, built here and parsed there, then unnested) cost more per row
 * than COPY's tab-separated text straight into a heap. The guarantees are
 * det_insert's own: the staged rows are the caller's transaction's, so a
 * crash or a rollback leaves neither them nor their deposits (the cursor
 * moves in the same transaction, detector.c). */
#include "detector_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "log.h"

/* Rows per staged chunk and INSERT statement. A sub-range aims at ~2,500
 * logs (detector.c), so usually one chunk; this bounds one that came back
 * larger than aimed, and the COPY buffer with it (DET_STAGE_LINE_MAX each). */
#define DET_INSERT_ROWS_MAX 5000
/* Bytes of one COPY line at most: chunk and ord (20 each), the deposit id
 * (DEPOSIT_ID_TEXT_MAX), two hashes (66), log index and block number
 * (NUM_TEXT_MAX each), two addresses (42), an amount (78 digits), 10 tabs. */
#define DET_STAGE_LINE_MAX 560

/* ON COMMIT DELETE ROWS: a committed step leaves it empty for the next;
 * chunk numbers tell one statement's rows from another's within a step. */
static const char stage_create_sql[] =
    "CREATE TEMP TABLE IF NOT EXISTS det_stage (chunk bigint NOT NULL, ord bigint NOT NULL,"
    " deposit_id text NOT NULL, tx_hash text NOT NULL, log_index integer NOT NULL, block_number bigint NOT NULL,"
    " block_hash text NOT NULL, from_addr text NOT NULL, to_addr text NOT NULL, amount numeric NOT NULL)"
    " ON COMMIT DELETE ROWS";

/* Creates the staging table inside the caller's transaction when this
 * connection does not have it yet (a rollback drops a table created in its
 * transaction: det_tx_fail forgets it). Returns ZL_OK or the database's
 * class with errstr. */
static zl_class stage_ensure(struct zl_detector *d, char *errstr, size_t errstr_size)
{
    if (d->stage_ready && d->stage_reconnects == d->o.pg->reconnects)
        return ZL_OK;
    zl_class c = zl_pg_exec(d->o.pg, stage_create_sql, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    d->stage_ready = true;
    d->stage_reconnects = d->o.pg->reconnects;
    return ZL_OK;
}

/* True when s can go into a COPY text field as it is: the scan's values are
 * hex, digits and ':' (chain.c parsed them), never a tab, newline or
 * backslash; checked anyway, since a stray one would shift columns. */
static bool copy_safe(const char *s)
{
    return strpbrk(s, "\t\n\r\\") == NULL;
}

/* Formats fl[0..n) as COPY text lines of chunk `chunk` into buf (n *
 * DET_STAGE_LINE_MAX bytes). Returns the length, or -1 when a value is not
 * copy-safe or too long (a bug: the caller fails the step). */
static long stage_lines(char *buf, const struct found_log *fl, size_t n, int64_t chunk)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        const struct found_log *f = &fl[i];
        const char *vals[8] = {f->id, f->tl.tx_hash, f->log_index, f->block_number, f->tl.block_hash,
                               f->tl.from, f->tl.to, f->tl.amount};
        for (int k = 0; k < 8; k++)
            if (!copy_safe(vals[k]))
                return -1;
        int w = snprintf(buf + len, DET_STAGE_LINE_MAX, "%" PRId64 "\t%zu\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", chunk,
                         i + 1, vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6], vals[7]);
        if (w < 0 || w >= DET_STAGE_LINE_MAX)
            return -1;
        len += (size_t)w;
    }
    return (long)len;
}

/* COPYs `len` bytes of lines into the staging table and waits for the
 * server's count. Returns ZL_OK or the class of what failed, with errstr. */
static zl_class stage_copy(struct zl_detector *d, const char *buf, long len, char *errstr, size_t errstr_size)
{
    PGconn *conn = d->o.pg->conn;
    PGresult *r = PQexec(conn, "COPY pg_temp.det_stage FROM STDIN");
    if (r == NULL || PQresultStatus(r) != PGRES_COPY_IN) {
        zl_class c = zl_pg_classify(d->o.pg, r, errstr, errstr_size);
        PQclear(r);
        return c;
    }
    PQclear(r);
    int sent = PQputCopyData(conn, buf, (int)len);
    if (PQputCopyEnd(conn, sent == 1 ? NULL : "detector: the COPY data could not be sent") != 1)
        return zl_pg_classify(d->o.pg, NULL, errstr, errstr_size);
    zl_class c = ZL_OK;
    PGresult *res;
    /* COPY's answer ends with a NULL result, like a statement's. */
    while ((res = PQgetResult(conn)) != NULL) {
        if (c == ZL_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
            c = zl_pg_classify(d->o.pg, res, errstr, errstr_size);
        PQclear(res);
    }
    if (c == ZL_OK && sent != 1) {
        snprintf(errstr, errstr_size, "postgres: COPY into the staging table failed: %s", PQerrorMessage(conn));
        c = ZL_OUTAGE;
    }
    return c;
}

/* Stages fl[0..n) of part p as one chunk and sends the INSERT from it
 * without waiting (det_insert_finish collects the answer). Inside the
 * caller's transaction. */
static zl_class insert_send(struct zl_detector *d, struct scan_part *p, const struct found_log *fl, size_t n,
                            struct inflight *inf, char *errstr, size_t errstr_size)
{
    if (!zl_pg_connected(d->o.pg)) {
        snprintf(errstr, errstr_size, "postgres: not connected");
        return ZL_OUTAGE;
    }
    zl_class c = stage_ensure(d, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    char *buf = malloc((n > 0 ? n : 1) * DET_STAGE_LINE_MAX);
    if (buf == NULL) {
        snprintf(errstr, errstr_size, "detector: out of memory for %zu rows", n);
        return ZL_TRANSIENT;
    }
    int64_t chunk = ++d->stage_chunk;
    long len = stage_lines(buf, fl, n, chunk);
    if (len < 0) {
        snprintf(errstr, errstr_size, "detector: a log's field cannot be staged (tab, newline or backslash, or "
                 "too long); step held");
        free(buf);
        return ZL_PERMANENT;
    }
    c = len > 0 ? stage_copy(d, buf, len, errstr, errstr_size) : ZL_OK;
    free(buf);
    if (c != ZL_OK)
        return c;
    char chunk_text[NUM_TEXT_MAX];
    snprintf(chunk_text, sizeof(chunk_text), "%" PRId64, chunk);
    const char *vals[3] = {d->chain_text, d->token, chunk_text};
    /* Not prepared: the statement names a temporary table that does not
     * exist when the connection prepares its statements. */
    if (PQsendQueryParams(d->o.pg->conn, det_stage_insert_sql, 3, NULL, vals, NULL, NULL, 0) != 1)
        return zl_pg_classify(d->o.pg, NULL, errstr, errstr_size);
    inf->active = true;
    inf->part = p;
    return ZL_OK;
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
        struct found_log **hit =
            bsearch(PQgetvalue(r, i, 0), p->by_id, p->n, sizeof(*p->by_id), det_cmp_key_found);
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
     * crash here must leave none of them (test_detect_stage.py). */
    zl_fault_point("detect_after_insert");
    return ZL_OK;
}

/* Stages and sends the inserts of part p: every chunk but the last waited
 * for, the last left in flight so the next eth_getLogs overlaps it. */
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
