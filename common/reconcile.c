/* reconcile.c: zl-audit --chain's rescan and the admin API's claim
 * (reconcile.h). */
#include "reconcile.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "detector.h"
#include "envelope.h"

/* Bytes of a block number or log index as decimal text. */
#define NUM_TEXT_SIZE 24

/* Registered recipients among $2 (lower-case addresses). */
static const char SQL_REGISTERED[] =
    "SELECT address FROM deposit_addresses WHERE chain_id = $1::bigint AND address = ANY ($2::text[])";
/* The rows of the transfers read (by id), to compare their facts. */
static const char SQL_ROWS_BY_ID[] =
    "SELECT deposit_id, state, amount::text, from_addr, to_addr FROM deposits WHERE deposit_id = ANY ($1::text[])";
/* Every live row of the token in a block range: each needs its transfer. */
static const char SQL_ROWS_IN_RANGE[] =
    "SELECT deposit_id, state FROM deposits WHERE chain_id = $1::bigint AND token = $2"
    " AND block_number BETWEEN $3::bigint AND $4::bigint AND state <> 'reorged' ORDER BY deposit_id";
/* Where each claimed deposit is now (prepared as CLAIM_ROWS_STMT). */
#define CLAIM_ROWS_STMT "zl_claim_rows"
static const char SQL_CLAIM_ROWS[] =
    "SELECT deposit_id, user_id, state, coalesce(last_error, '') FROM deposits WHERE deposit_id = ANY ($1::text[])";

/* One Transfer with its deposit id. */
struct xfer {
    struct zl_transfer_log tl;
    char id[ZL_DEPOSIT_ID_SIZE];
    bool registered;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_xfer_id(const void *a, const void *b)
{
    return strcmp(((const struct xfer *)a)->id, ((const struct xfer *)b)->id);
}

static int cmp_key_xfer(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const struct xfer *)elem)->id);
}

zl_class zl_reconcile_head(struct zl_rpc *rpc, uint64_t *head, char *errstr, size_t errstr_size)
{
    json_t *params = json_array(), *res = NULL;
    zl_class c = zl_rpc_call(rpc, "eth_blockNumber", params, &res, NULL, errstr, errstr_size);
    json_decref(params);
    if (c != ZL_OK)
        return c;
    json_t *obj = json_pack("{s:O}", "n", res);
    if (obj == NULL || zl_json_quantity_field(obj, "n", head) != 0) {
        snprintf(errstr, errstr_size, "eth_blockNumber: not a quantity");
        c = ZL_TRANSIENT;
    }
    json_decref(obj);
    json_decref(res);
    return c;
}

/* Parses logs into xs (well-formed, not removed, of token, in lo..hi),
 * each with its deposit id; returns how many. xs holds json_array_size. */
static size_t parse_logs(json_t *logs, uint64_t chain_id, const char *token, uint64_t lo, uint64_t hi,
                         struct xfer *xs)
{
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(logs); i++) {
        struct xfer *x = &xs[n];
        char perr[ZL_ERRSTR_SIZE];
        if (zl_chain_parse_transfer_log(json_array_get(logs, i), &x->tl, perr, sizeof(perr)) != 0 ||
            x->tl.removed || strcmp(x->tl.token, token) != 0 || x->tl.block_number < lo || x->tl.block_number > hi)
            continue;
        if (zl_deposit_id_format(x->id, sizeof(x->id), chain_id, x->tl.tx_hash, x->tl.log_index) != 0)
            continue;
        x->registered = false;
        n++;
    }
    return n;
}

/* Runs sql with params on the audit's own connection; NULL with errstr when
 * it failed (the caller returns ZL_OUTAGE: the rescan stops there and the
 * audit says it is incomplete, whatever the cause). */
static PGresult *query(PGconn *pg, const char *sql, int n, const char *const *v, char *errstr, size_t errstr_size)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(errstr, errstr_size, "postgres: %s", PQerrorMessage(pg));
        PQclear(r);
        return NULL;
    }
    return r;
}

/* Marks xs[i].registered for recipients in deposit_addresses. */
static zl_class mark_registered(PGconn *pg, const char *chain, struct xfer *xs, size_t n, char *errstr,
                                size_t errstr_size)
{
    const char **to = malloc((n > 0 ? n : 1) * sizeof(*to));
    if (to == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return ZL_TRANSIENT;
    }
    for (size_t i = 0; i < n; i++)
        to[i] = xs[i].tl.to;
    char *lit = zl_pg_array_literal(to, n);
    free(to);
    if (lit == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return ZL_TRANSIENT;
    }
    const char *v[2] = {chain, lit};
    PGresult *r = query(pg, SQL_REGISTERED, 2, v, errstr, errstr_size);
    free(lit);
    if (r == NULL)
        return ZL_OUTAGE;
    int rows = PQntuples(r);
    char **reg = malloc((size_t)(rows > 0 ? rows : 1) * sizeof(*reg));
    if (reg == NULL) {
        PQclear(r);
        snprintf(errstr, errstr_size, "out of memory");
        return ZL_TRANSIENT;
    }
    for (int i = 0; i < rows; i++)
        reg[i] = PQgetvalue(r, i, 0);
    qsort(reg, (size_t)rows, sizeof(*reg), cmp_str);
    for (size_t i = 0; i < n; i++) {
        const char *key = xs[i].tl.to;
        xs[i].registered = bsearch(&key, reg, (size_t)rows, sizeof(*reg), cmp_str) != NULL;
    }
    free(reg);
    PQclear(r);
    return ZL_OK;
}

/* Compares the chunk's registered transfers (sorted by id, xs[0..n)) with
 * the rows: each needs a row with its facts, each row in lo..hi a transfer. */
static zl_class compare_chunk(const struct zl_reconcile_opts *o, const char *chain, struct xfer *xs, size_t n,
                              uint64_t lo, uint64_t hi, struct zl_reconcile_stats *st, char *errstr,
                              size_t errstr_size)
{
    const char **ids = malloc((n > 0 ? n : 1) * sizeof(*ids));
    if (ids == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return ZL_TRANSIENT;
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = xs[i].id;
    char *lit = zl_pg_array_literal(ids, n);
    free(ids);
    if (lit == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return ZL_TRANSIENT;
    }
    const char *v[1] = {lit};
    PGresult *r = query(o->pg, SQL_ROWS_BY_ID, 1, v, errstr, errstr_size);
    free(lit);
    if (r == NULL)
        return ZL_OUTAGE;
    char detail[512];
    bool *seen = calloc(n > 0 ? n : 1, sizeof(*seen));
    if (seen == NULL) {
        PQclear(r);
        snprintf(errstr, errstr_size, "out of memory");
        return ZL_TRANSIENT;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        struct xfer *x = bsearch(PQgetvalue(r, i, 0), xs, n, sizeof(*xs), cmp_key_xfer);
        if (x == NULL)
            continue;
        seen[x - xs] = true;
        const char *state = PQgetvalue(r, i, 1), *amount = PQgetvalue(r, i, 2);
        if (strcmp(amount, x->tl.amount) != 0 || strcmp(PQgetvalue(r, i, 3), x->tl.from) != 0 ||
            strcmp(PQgetvalue(r, i, 4), x->tl.to) != 0) {
            snprintf(detail, sizeof(detail), "row (%s) says %s from %s to %s; the chain says %s from %s to %s",
                     state, amount, PQgetvalue(r, i, 3), PQgetvalue(r, i, 4), x->tl.amount, x->tl.from, x->tl.to);
            o->report(o->ctx, "chain_mismatch", x->id, detail);
        } else if (strcmp(state, "reorged") == 0) {
            snprintf(detail, sizeof(detail), "row is reorged but its transfer is on the canonical chain in block %"
                     PRIu64, x->tl.block_number);
            o->report(o->ctx, "chain_missing_row", x->id, detail);
        }
    }
    PQclear(r);
    for (size_t i = 0; i < n; i++) {
        if (seen[i])
            continue;
        snprintf(detail, sizeof(detail), "transfer of %s from %s to registered address %s in block %" PRIu64
                 " has no row (detect missed it: zlctl claim %s)", xs[i].tl.amount, xs[i].tl.from, xs[i].tl.to,
                 xs[i].tl.block_number, xs[i].tl.tx_hash);
        o->report(o->ctx, "chain_missing_row", xs[i].id, detail);
    }
    free(seen);

    char slo[NUM_TEXT_SIZE], shi[NUM_TEXT_SIZE];
    snprintf(slo, sizeof(slo), "%" PRIu64, lo);
    snprintf(shi, sizeof(shi), "%" PRIu64, hi);
    const char *rv[4] = {chain, o->token, slo, shi};
    r = query(o->pg, SQL_ROWS_IN_RANGE, 4, rv, errstr, errstr_size);
    if (r == NULL)
        return ZL_OUTAGE;
    for (int i = 0; i < PQntuples(r); i++) {
        st->rows++;
        if (bsearch(PQgetvalue(r, i, 0), xs, n, sizeof(*xs), cmp_key_xfer) != NULL)
            continue;
        snprintf(detail, sizeof(detail), "row (%s) in blocks %s..%s has no Transfer of the token to a registered"
                 " address on the canonical chain", PQgetvalue(r, i, 1), slo, shi);
        o->report(o->ctx, "chain_no_transfer", PQgetvalue(r, i, 0), detail);
    }
    PQclear(r);
    return ZL_OK;
}

/* eth_getLogs for every Transfer of the token in lo..hi. */
static zl_class get_logs(const struct zl_reconcile_opts *o, uint64_t lo, uint64_t hi, json_t **logs, bool *refused,
                         char *errstr, size_t errstr_size)
{
    char from[NUM_TEXT_SIZE], to[NUM_TEXT_SIZE];
    snprintf(from, sizeof(from), "0x%" PRIx64, lo);
    snprintf(to, sizeof(to), "0x%" PRIx64, hi);
    json_t *params = json_pack("[{s:s, s:s, s:s, s:[s]}]", "fromBlock", from, "toBlock", to, "address", o->token,
                               "topics", ZL_TRANSFER_TOPIC0);
    struct zl_rpc_error re;
    zl_class c = zl_rpc_call(o->rpc, "eth_getLogs", params, logs, &re, errstr, errstr_size);
    json_decref(params);
    *refused = c != ZL_OK && re.answered;
    if (c == ZL_OK && !json_is_array(*logs)) {
        json_decref(*logs);
        *logs = NULL;
        snprintf(errstr, errstr_size, "eth_getLogs: result is not an array");
        c = ZL_TRANSIENT;
    }
    return c;
}

zl_class zl_reconcile_range(const struct zl_reconcile_opts *o, uint64_t from, uint64_t to,
                            struct zl_reconcile_stats *st, char *errstr, size_t errstr_size)
{
    memset(st, 0, sizeof(*st));
    if (to < from || to - from >= ZL_RECONCILE_RANGE_BLOCKS_MAX) {
        snprintf(errstr, errstr_size, "range %" PRIu64 "-%" PRIu64 " is empty or longer than %" PRIu64 " blocks",
                 from, to, ZL_RECONCILE_RANGE_BLOCKS_MAX);
        return ZL_PERMANENT;
    }
    char chain[NUM_TEXT_SIZE];
    snprintf(chain, sizeof(chain), "%" PRIu64, o->chain_id);
    uint64_t chunk = (uint64_t)o->chunk_blocks, lo = from;
    while (lo <= to) {
        uint64_t hi = to - lo + 1 > chunk ? lo + chunk - 1 : to;
        json_t *logs = NULL;
        bool refused = false;
        zl_class c = get_logs(o, lo, hi, &logs, &refused, errstr, errstr_size);
        st->requests++;
        if (c != ZL_OK && refused && chunk > 1) {
            chunk /= 2; /* a provider's cap on blocks or logs per request */
            continue;
        }
        if (c != ZL_OK)
            return c;
        struct xfer *xs = malloc((json_array_size(logs) > 0 ? json_array_size(logs) : 1) * sizeof(*xs));
        if (xs == NULL) {
            json_decref(logs);
            snprintf(errstr, errstr_size, "out of memory for %zu logs", json_array_size(logs));
            return ZL_TRANSIENT;
        }
        size_t n = parse_logs(logs, o->chain_id, o->token, lo, hi, xs);
        json_decref(logs);
        st->transfers += n;
        c = mark_registered(o->pg, chain, xs, n, errstr, errstr_size);
        size_t k = 0;
        for (size_t i = 0; c == ZL_OK && i < n; i++)
            if (xs[i].registered)
                xs[k++] = xs[i];
        st->registered += k;
        if (c == ZL_OK) {
            qsort(xs, k, sizeof(*xs), cmp_xfer_id);
            c = compare_chunk(o, chain, xs, k, lo, hi, st, errstr, errstr_size);
        }
        free(xs);
        if (c != ZL_OK)
            return c;
        if (hi == UINT64_MAX)
            break;
        lo = hi + 1;
    }
    return ZL_OK;
}

/* ------------------------------------------------------------ claim */

int zl_claim_rpc_new(struct zl_rpc **out, const char *urls, const char *tokens, const char *token_address,
                     struct zl_tokens *tokens_out, int64_t timeout_ms, bool allow_http, char *errstr,
                     size_t errstr_size)
{
    *out = NULL;
    tokens_out->n = 0;
    if (urls == NULL || urls[0] == '\0')
        return 0;
    if (zl_tokens_load(tokens_out, tokens, token_address, NULL, errstr, errstr_size) != 0)
        return -1;
    if (tokens_out->n == 0) {
        snprintf(errstr, errstr_size, "claims need ZL_TOKENS (or ZL_TOKEN_ADDRESS) when ZL_RPC_URLS is set");
        return -1;
    }
    struct zl_rpc_opts ro = {.urls = urls, .timeout_ms = timeout_ms, .quorum = 1, .breaker_failure_ratio = 0.5,
                             .breaker_sampling_ms = 30000, .breaker_min_throughput = 20, .breaker_break_ms = 5000,
                             .name = "rpc", .allow_http = allow_http};
    return zl_rpc_new(out, &ro, errstr, errstr_size);
}

int zl_claim_prepare(struct zl_pg *pg)
{
    if (zl_pg_add_stmt(pg, ZL_CLAIM_STMT, zl_detect_insert_sql, ZL_DETECT_INSERT_PARAMS) != 0)
        return -1;
    return zl_pg_add_stmt(pg, CLAIM_ROWS_STMT, SQL_CLAIM_ROWS, 1);
}

/* The receipt's Transfers of token into xs (at most max): *n of them. */
static zl_class receipt_transfers(struct zl_rpc *rpc, uint64_t chain_id, const char *token, const char *tx,
                                  struct xfer *xs, size_t max, size_t *n, char *errstr, size_t errstr_size)
{
    json_t *params = json_pack("[s]", tx), *rec = NULL;
    zl_class c = zl_rpc_call(rpc, "eth_getTransactionReceipt", params, &rec, NULL, errstr, errstr_size);
    json_decref(params);
    if (c != ZL_OK)
        return c;
    json_t *logs = json_object_get(rec, "logs");
    uint64_t block = 0;
    if (!json_is_object(rec) || !json_is_array(logs) || zl_json_quantity_field(rec, "blockNumber", &block) != 0) {
        snprintf(errstr, errstr_size, "transaction %s: no receipt (unknown to the node, or not mined yet)", tx);
        json_decref(rec);
        return ZL_PERMANENT;
    }
    if (json_array_size(logs) > max) {
        snprintf(errstr, errstr_size, "transaction %s has %zu logs, more than a claim takes (%d)", tx,
                 json_array_size(logs), ZL_CLAIM_TRANSFERS_MAX);
        json_decref(rec);
        return ZL_PERMANENT;
    }
    *n = parse_logs(logs, chain_id, token, block, block, xs);
    json_decref(rec);
    return ZL_OK;
}

/* One column of the insert: field k of each of xs[0..n) as an array literal. */
static char *column(const struct xfer *xs, size_t n, int k, char (*num)[2][NUM_TEXT_SIZE])
{
    const char **items = malloc((n > 0 ? n : 1) * sizeof(*items));
    if (items == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const struct zl_transfer_log *t = &xs[i].tl;
        const char *f[8] = {xs[i].id, t->tx_hash, num[i][0], num[i][1], t->block_hash, t->from, t->to, t->amount};
        items[i] = f[k];
    }
    char *lit = zl_pg_array_literal(items, n);
    free(items);
    return lit;
}

/* Records xs[0..n) through detect's statement; marks the fresh ids in
 * `fresh` (a JSON object used as a set). */
static zl_class record(struct zl_pg *pg, const char *chain, const char *token, const struct xfer *xs, size_t n,
                       json_t *fresh, char *errstr, size_t errstr_size)
{
    char(*num)[2][NUM_TEXT_SIZE] = calloc(n > 0 ? n : 1, sizeof(*num));
    char *lit[8] = {NULL};
    zl_class c = ZL_TRANSIENT;
    snprintf(errstr, errstr_size, "out of memory");
    if (num == NULL)
        return c;
    for (size_t i = 0; i < n; i++) {
        snprintf(num[i][0], NUM_TEXT_SIZE, "%" PRIu32, xs[i].tl.log_index);
        snprintf(num[i][1], NUM_TEXT_SIZE, "%" PRIu64, xs[i].tl.block_number);
    }
    for (int k = 0; k < 8; k++)
        if ((lit[k] = column(xs, n, k, num)) == NULL)
            goto out;
    const char *v[ZL_DETECT_INSERT_PARAMS] = {chain, token, lit[0], lit[1], lit[2], lit[3], lit[4], lit[5],
                                              lit[6], lit[7]};
    PGresult *r = zl_pg_prepared(pg, ZL_CLAIM_STMT, ZL_DETECT_INSERT_PARAMS, v, PGRES_TUPLES_OK, &c, errstr,
                                 errstr_size);
    if (r != NULL) {
        for (int i = 0; i < PQntuples(r); i++)
            json_object_set_new(fresh, PQgetvalue(r, i, 0), json_true());
        PQclear(r);
        c = ZL_OK;
    }
out:
    for (int k = 0; k < 8; k++)
        free(lit[k]);
    free(num);
    return c;
}

/* One token's part of a claim (zl_claim_run). */
static zl_class claim_token(struct zl_pg *pg, struct zl_rpc *rpc, uint64_t chain_id, const char *token,
                            const char *tx_hash, json_t **out, char *errstr, size_t errstr_size)
{
    *out = NULL;
    char tx[ZL_HASH_HEX_SIZE];
    if (tx_hash == NULL || zl_hex_lower(tx_hash, ZL_HASH_HEX_DIGITS, tx, sizeof(tx)) != 0) {
        snprintf(errstr, errstr_size, "the transaction hash must be 0x and 64 hex digits");
        return ZL_PERMANENT;
    }
    struct xfer *xs = malloc(ZL_CLAIM_TRANSFERS_MAX * sizeof(*xs));
    if (xs == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return ZL_TRANSIENT;
    }
    size_t n = 0;
    char chain[NUM_TEXT_SIZE];
    snprintf(chain, sizeof(chain), "%" PRIu64, chain_id);
    json_t *fresh = json_object(), *list = json_array();
    zl_class c = receipt_transfers(rpc, chain_id, token, tx, xs, ZL_CLAIM_TRANSFERS_MAX, &n, errstr, errstr_size);
    if (c == ZL_OK && n > 0)
        c = record(pg, chain, token, xs, n, fresh, errstr, errstr_size);
    PGresult *r = NULL;
    if (c == ZL_OK && n > 0) {
        const char **ids = malloc(n * sizeof(*ids));
        char *lit = NULL;
        if (ids != NULL) {
            for (size_t i = 0; i < n; i++)
                ids[i] = xs[i].id;
            lit = zl_pg_array_literal(ids, n);
        }
        free(ids);
        if (lit == NULL) {
            snprintf(errstr, errstr_size, "out of memory");
            c = ZL_TRANSIENT;
        } else {
            const char *v[1] = {lit};
            r = zl_pg_prepared(pg, CLAIM_ROWS_STMT, 1, v, PGRES_TUPLES_OK, &c, errstr, errstr_size);
        }
        free(lit);
    }
    for (size_t i = 0; c == ZL_OK && i < n; i++) {
        char block[NUM_TEXT_SIZE];
        snprintf(block, sizeof(block), "%" PRIu64, xs[i].tl.block_number);
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "deposit_id", xs[i].id, "to", xs[i].tl.to, "from",
                              xs[i].tl.from, "amount", xs[i].tl.amount, "block", block);
        int row = -1;
        for (int k = 0; r != NULL && k < PQntuples(r); k++)
            if (strcmp(PQgetvalue(r, k, 0), xs[i].id) == 0)
                row = k;
        if (row < 0) {
            json_object_set_new(o, "recorded", json_string("not_registered"));
        } else {
            bool now = json_object_get(fresh, xs[i].id) != NULL;
            json_object_set_new(o, "recorded", json_string(now ? "now" : "already"));
            json_object_set_new(o, "user_id", json_string(PQgetvalue(r, row, 1)));
            json_object_set_new(o, "state", json_string(PQgetvalue(r, row, 2)));
            json_object_set_new(o, "last_error", json_string(PQgetvalue(r, row, 3)));
        }
        json_array_append_new(list, o);
    }
    PQclear(r);
    free(xs);
    json_decref(fresh);
    if (c != ZL_OK) {
        json_decref(list);
        return c;
    }
    *out = list;
    return ZL_OK;
}

zl_class zl_claim_run(struct zl_pg *pg, struct zl_rpc *rpc, uint64_t chain_id, const struct zl_tokens *tokens,
                      const char *tx_hash, json_t **out, char *errstr, size_t errstr_size)
{
    *out = NULL;
    json_t *list = json_array();
    /* Each token's Transfers in the transaction (a payout may send several). */
    for (size_t k = 0; k < tokens->n; k++) {
        json_t *part = NULL;
        zl_class c = claim_token(pg, rpc, chain_id, tokens->t[k].address, tx_hash, &part, errstr, errstr_size);
        if (c != ZL_OK) {
            json_decref(list);
            return c;
        }
        json_array_extend(list, part);
        json_decref(part);
    }
    *out = list;
    return ZL_OK;
}
