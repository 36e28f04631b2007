/* solana_mint.h: the mint stage on Solana (issue 22; docs/architecture.md,
 * "Solana"): one deposit's NFT receipt (solana_receipt.h), stored before it
 * is sent, sent again byte for byte, and recorded once the chain has it at
 * finalized.
 *
 * One step of a deposit (zl_sol_mint_step), from what is stored:
 *   - nothing stored: take a free durable nonce account (one whose stored
 *     transaction is done: at most one pending transaction per nonce
 *     account, enforced by a unique index in sol_receipt_txs), read its
 *     value, sign the receipt with it and store the bytes, moving the row
 *     pinned -> mint_submitted in the same transaction; then send them.
 *     Every nonce account busy: wait (ZL_OK, not done);
 *   - stored: look at the chain (zl_sol_receipt_look) and do what
 *     zl_sol_receipt_next says: done (mark the stored row done, freeing its
 *     nonce account), send the same bytes again, wait, or sign anew with
 *     the nonce's new value (only once the stored bytes can never run).
 * Sending is best effort: the chain's answer to a send is not trusted to
 * mean anything (a "Blockhash not found" or "already processed" is
 * normal); the next look decides. Only an outage (every endpoint down)
 * stops a step.
 *
 * The mint's address is fixed by the payer and the deposit id, so whatever
 * happens (a crash between sign, store and send, two copies, a resend) the
 * deposit has at most one receipt.
 *
 * Ownership: the minter borrows rpc, pg and payer. @locality one thread.
 */
#ifndef ZL_SOLANA_MINT_H
#define ZL_SOLANA_MINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base58.h"
#include "pg.h"
#include "rpc.h"
#include "solana_tx.h"
#include "zl.h"

/* Durable nonce accounts one minter rotates through. */
#define ZL_SOL_NONCE_ACCOUNTS_MAX 64

struct zl_sol_minter_opts {
    const char *cluster;                 /* the deposits' cluster */
    const struct zl_sol_keypair *payer;  /* pays, signs, authority of every nonce account */
    const char *nonce_accounts;          /* comma-separated base58 */
    const char *name, *symbol;           /* the receipts' token metadata */
    uint32_t cu_limit;                   /* compute units asked (0: the default) */
    uint64_t cu_price_micro_lamports;    /* priority fee per compute unit (0: none) */
    struct zl_rpc *rpc;
    struct zl_pg *pg;                    /* the stage's own connection (not the runtime's) */
};

struct zl_sol_minter;

/* Returns 0, or -1 with errstr (a bad nonce account list, out of memory,
 * too many statements on pg). Registers its statements on pg. */
int zl_sol_minter_new(struct zl_sol_minter **out, const struct zl_sol_minter_opts *o, char *errstr,
                      size_t errstr_size);
void zl_sol_minter_free(struct zl_sol_minter *m);

struct zl_sol_mint_result {
    bool done;                          /* the receipt exists at finalized */
    char signature[ZL_B58_TEXT_MAX];    /* the receipt transaction's (when done) */
    char mint[ZL_B58_TEXT_MAX];         /* the receipt's mint address (always) */
    int64_t wait_ms;                    /* not done: look again after about this long */
    const char *step;                   /* what this step did, for logs: "signed", "send", ... */
    bool queued;                        /* not done because every nonce account is busy with another
                                         * receipt: a wait for the minter's capacity, not this deposit's */
};

/* One step of deposit_id's receipt, minted to owner (base58 wallet) with
 * metadata uri. ZL_OK with *res filled; ZL_PERMANENT when owner is not a
 * key; else the class of what failed (ZL_TRANSIENT, ZL_OUTAGE) with errstr. */
zl_class zl_sol_mint_step(struct zl_sol_minter *m, const char *deposit_id, const char *owner, const char *uri,
                          struct zl_sol_mint_result *res, char *errstr, size_t errstr_size);

/* The payer's balance in lamports (for the gas-money metric). */
zl_class zl_sol_minter_balance(struct zl_sol_minter *m, uint64_t *lamports, char *errstr, size_t errstr_size);

#endif /* ZL_SOLANA_MINT_H */
