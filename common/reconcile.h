/* reconcile.h: the chain as the judge of the state table (architecture §8,
 * §11), for the two backstops behind detect:
 *   - zl-audit --chain FROM-TO (zl_reconcile_range): rescans every Transfer
 *     of the token in a block range and names each deposit detect missed
 *     (a transfer to a registered address with no row), each row with no
 *     transfer on the canonical chain, and each row whose facts differ from
 *     its transfer;
 *   - zlctl claim TX_HASH through the admin API (zl_claim_run): reads one
 *     transaction's receipt and records every Transfer of the token in it
 *     to a registered address through detect's own insert-if-absent
 *     statement (detector.h: zl_detect_insert_sql), so a claimed deposit is
 *     the row detect would have written, and claiming twice changes nothing.
 * Endpoints are not trusted: every log is parsed by zl_chain_parse_transfer_log
 * and only the configured token's logs count.
 * @locality one thread per call (the caller's connections).
 */
#ifndef ZL_RECONCILE_H
#define ZL_RECONCILE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "hex.h"
#include "pg.h"
#include "rpc.h"
#include "tokens.h"
#include "zl.h"

/* Blocks per eth_getLogs request of a rescan at most (the setting's upper
 * end); a refused request halves the chunk down to one block. */
#define ZL_RECONCILE_CHUNK_BLOCKS_MAX INT64_C(100000)
/* Blocks one rescan may cover: bounds a mistyped range (~35 days of BSC). */
#define ZL_RECONCILE_RANGE_BLOCKS_MAX UINT64_C(1000000)
/* Transfers of the token one claimed transaction may hold (a batch payout
 * has a few hundred at most; more is refused, never cut). */
#define ZL_CLAIM_TRANSFERS_MAX 1000
/* The name zl_claim_prepare gives detect's insert statement. */
#define ZL_CLAIM_STMT "zl_claim_insert"

/* A discrepancy: check ("chain_missing_row", "chain_no_transfer",
 * "chain_mismatch"), subject (the deposit id) and what is wrong. */
typedef void (*zl_reconcile_report_fn)(void *ctx, const char *check, const char *subject, const char *detail);

struct zl_reconcile_opts {
    PGconn *pg;                    /* borrowed: inside the caller's snapshot */
    struct zl_rpc *rpc;            /* borrowed */
    uint64_t chain_id;
    const char *token;             /* lower-case 0x address */
    int64_t chunk_blocks;          /* 1..ZL_RECONCILE_CHUNK_BLOCKS_MAX */
    zl_reconcile_report_fn report; /* called once per discrepancy */
    void *ctx;
};

struct zl_reconcile_stats {
    uint64_t transfers;  /* Transfers of the token read */
    uint64_t registered; /* of which to a registered address */
    uint64_t rows;       /* rows of the token in the range (not reorged) */
    uint64_t requests;   /* eth_getLogs requests */
};

/* The chain's head block number. Returns ZL_OK or the call's class. */
zl_class zl_reconcile_head(struct zl_rpc *rpc, uint64_t *head, char *errstr, size_t errstr_size);

/* Rescans blocks from..to (inclusive, at most ZL_RECONCILE_RANGE_BLOCKS_MAX)
 * in chunks and reports each discrepancy through o->report. Returns ZL_OK
 * when the whole range was compared (discrepancies or not), else the class
 * of what stopped it with errstr (the range is then incomplete). */
zl_class zl_reconcile_range(const struct zl_reconcile_opts *o, uint64_t from, uint64_t to,
                            struct zl_reconcile_stats *st, char *errstr, size_t errstr_size);

/* The claims' RPC client on urls (one endpoint's word at a time) and
 * their tokens (tokens.h: ZL_TOKENS, or ZL_TOKEN_ADDRESS alone) into
 * tokens_out. *out stays NULL when urls is NULL or "" (claims are then
 * off). allow_http accepts plain http:// off loopback (rpc.h). Returns 0,
 * or -1 with errstr (bad or no tokens, a bad endpoint list). */
int zl_claim_rpc_new(struct zl_rpc **out, const char *urls, const char *tokens, const char *token_address,
                     struct zl_tokens *tokens_out, int64_t timeout_ms, bool allow_http, char *errstr,
                     size_t errstr_size);

/* Registers detect's insert statement on pg as ZL_CLAIM_STMT, and the
 * claim's read-back (before pg's first zl_pg_ensure). Returns 0, or -1 when
 * pg has no room. */
int zl_claim_prepare(struct zl_pg *pg);

/* Claims tx_hash: its receipt's Transfers of each token, each recorded if absent
 * (on pg, inside the caller's transaction) and then read back. *out gets a
 * new JSON array, one object per Transfer: deposit_id, to, amount, block,
 * "recorded" ("now": this call recorded it; "already": a row existed;
 * "not_registered": the recipient is no deposit address), and the row's
 * user_id, state and last_error. Returns ZL_OK (an empty array when the
 * transaction holds no Transfer of the token); ZL_PERMANENT with errstr
 * when the hash is malformed, the node knows no such transaction or it
 * holds more than ZL_CLAIM_TRANSFERS_MAX; else the RPC's or database's
 * class. */
zl_class zl_claim_run(struct zl_pg *pg, struct zl_rpc *rpc, uint64_t chain_id, const struct zl_tokens *tokens,
                      const char *tx_hash, json_t **out, char *errstr, size_t errstr_size);

#endif /* ZL_RECONCILE_H */
