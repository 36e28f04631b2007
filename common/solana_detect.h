/* solana_detect.h: detect on Solana (issue 22; docs/architecture.md,
 * "Solana"): records the USDT transfers into registered deposit token
 * accounts (table sol_deposit_accounts) as deposits, and publishes their
 * detected events.
 *
 * A step takes the accounts least recently scanned (up to
 * accounts_per_step, none scanned within poll_ms), and scans each from its
 * cursor (solana_scan.h: every transaction agreed by the RPC client's
 * quorum). Per account, in one PostgreSQL transaction, it inserts the
 * transfers' rows (insert-if-absent by deposit_id) and moves the cursor,
 * only from the cursor it read (a second copy that scanned too finds it
 * moved, and rolls back). Then it publishes the new rows' events. A crash
 * between commit and publish leaves rows in `detected` that the sweeper
 * re-publishes; a crash before commit scans the same transactions again,
 * with the same deposit ids.
 *
 * Copies: a PostgreSQL advisory lock per (cluster, mint) lets one copy scan;
 * the others stand by (health "scanner": standby).
 *
 * Decimals: a transferChecked names the mint's decimals. One that differs
 * from the configured value is ZL_PERMANENT with errstr, and nothing of that
 * account is recorded: credit would pay it off by a power of ten.
 *
 * Errors: ZL_OUTAGE (database down, every endpoint down) stops the step at
 * once; an account whose scan fails otherwise (a transaction a quorum does
 * not have yet, a lying endpoint) keeps what it read and the step goes on
 * with the other accounts, then returns the class so the caller backs off.
 *
 * Ownership: the detector borrows pg, rpc, producer, metrics and health
 * (the caller keeps them alive); zl_sol_detector_free frees the rest.
 * @locality one thread: the one that calls step.
 */
#ifndef ZL_SOLANA_DETECT_H
#define ZL_SOLANA_DETECT_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "health.h"
#include "metrics.h"
#include "pg.h"
#include "rpc.h"
#include "zl.h"

/* Accounts one step scans at most. */
#define ZL_SOL_DETECT_ACCOUNTS_MAX 1000
/* Signatures one account's scan lists at most (its backlog beyond is read by
 * the next scans, oldest first). */
#define ZL_SOL_DETECT_SIGS_MAX 1000
/* Transfers one account's scan records at most (likewise). */
#define ZL_SOL_DETECT_TRANSFERS_MAX 256

struct zl_sol_detector_opts {
    const char *cluster;    /* "mainnet-beta", "localnet": the deposit ids' first part */
    const char *mint;       /* the USDT mint, base58 */
    const char *commitment; /* "finalized" or "confirmed" */
    const char *topic;      /* the detected topic */
    int decimals;           /* the mint's, as configured: a transfer naming others stops the scan */
    int accounts_per_step;  /* 1..ZL_SOL_DETECT_ACCOUNTS_MAX */
    int64_t poll_ms;        /* an account is scanned again at most this often */
    int page_limit;         /* signatures per listing call (solana_scan.h) */
    int tx_batch;           /* getTransaction calls per batch (solana_scan.h) */
    struct zl_pg *pg;
    struct zl_rpc *rpc;
    rd_kafka_t *producer;
    struct zl_metrics *metrics; /* may be NULL */
    struct zl_health *health;   /* may be NULL */
};

struct zl_sol_detector;

/* Returns 0 with *out, or -1 with errstr (a bad option, out of memory). */
int zl_sol_detector_new(struct zl_sol_detector **out, const struct zl_sol_detector_opts *o, char *errstr,
                        size_t errstr_size);

/* One step, as above. *idle is true when there was nothing to scan (no
 * account due, or this copy stands by). */
zl_class zl_sol_detector_step(struct zl_sol_detector *d, bool *idle, char *errstr, size_t errstr_size);

/* NULL is a no-op. */
void zl_sol_detector_free(struct zl_sol_detector *d);

#endif /* ZL_SOLANA_DETECT_H */
