/* nonce.h: the signer's nonce manager and transaction store in PostgreSQL
 * (schemas/sql/004_mint.sql).
 *
 * The rule that makes minting exactly-once: a transaction is signed with a
 * nonce allocated under `SELECT ... FOR UPDATE` of the signer's row, and
 * stored (raw bytes, hash, fees, deposit ids) in the SAME database
 * transaction that advances the nonce and moves the deposit to
 * mint_submitted, BEFORE anyone broadcasts it. A crash before that commit
 * leaves nothing signed anywhere; a crash after it leaves bytes that a retry
 * re-broadcasts unchanged. Copies of the stage sharing one signer queue on
 * the signer's row, so no two ever sign at the same nonce.
 *
 * Lock order, everywhere: the deposit row first, then the signer row (no
 * deadlock between copies).
 *
 * Every function returns a zl_class, decided here or by pg.h, and callers
 * pass it on unchanged: ZL_OK; ZL_OUTAGE when the database is unreachable or
 * the schema lacks this module's tables (004_mint.sql not applied: nothing is
 * wrong with any deposit); ZL_TRANSIENT for a serialization failure,
 * deadlock or a row that moved under us; ZL_PERMANENT for a statement that
 * failed on a healthy connection (a bug), with errstr set.
 *
 * @locality the thread that owns the zl_pg (the stage's own connection, not
 * the runtime's: process() runs outside the runtime's CAS transaction).
 */
#ifndef ZL_NONCE_H
#define ZL_NONCE_H

#include <stdbool.h>
#include <stdint.h>

#include "envelope.h"
#include "hex.h"
#include "pg.h"
#include "zl.h"

/* Hashes kept per nonce: one per fee bump. At +12.5% a bump, 16 signatures
 * span a 6.5x fee rise; past that the cap has long stopped further bumps. */
#define ZL_NONCE_HASHES_MAX 16

/* A transaction to store, or one read back. Strings are NUL-terminated. */
struct zl_nonce_tx {
    uint64_t chain_id;
    char signer[ZL_ADDRESS_HEX_SIZE];                   /* "0x" + 40 lowercase hex */
    uint64_t nonce;
    char purpose[12];                                   /* "mint", "mint_batch" or "filler" */
    int tx_type;                                        /* 0 legacy, 2 EIP-1559 */
    char to_addr[ZL_ADDRESS_HEX_SIZE];                  /* lowercase */
    uint64_t gas_limit;
    uint64_t max_fee_wei;                               /* legacy: gas price */
    uint64_t priority_fee_wei;                          /* legacy: 0 */
    char *raw_hex;                                      /* "0x..." signed bytes; owned when read back
                                                           (zl_nonce_tx_clear frees), borrowed when stored */
    char tx_hash[ZL_HASH_HEX_SIZE];
    /* read back only */
    char hashes[ZL_NONCE_HASHES_MAX][ZL_HASH_HEX_SIZE]; /* every hash signed at this nonce */
    int nhashes;
    bool mined;
    char mined_hash[ZL_HASH_HEX_SIZE];
    int64_t block_number;
    int receipt_status;                                 /* 1 success, 0 reverted; -1 unknown */
    int64_t signed_age_ms;                              /* now - signed_at, by the database clock */
    char first_deposit[ZL_DEPOSIT_ID_SIZE];             /* deposit_ids[1], "" for none */
    int64_t signed_block;                               /* the head when the bytes were signed; -1 unknown
                                                           (signer_tx_marks, 017; stored as NULL) */
};

/* Frees raw_hex when it was read back. */
void zl_nonce_tx_clear(struct zl_nonce_tx *t);

/* Registers the statements below on p (before its first zl_pg_ensure). */
int zl_nonce_prepare(struct zl_pg *p);

/* The deposit's live mint: the highest-nonce mint/mint_batch transaction
 * that names deposit_id and is not a mined revert. *found false when none.
 * On ZL_OK with *found, the caller owns out (zl_nonce_tx_clear). */
zl_class zl_nonce_find_for_deposit(struct zl_pg *p, uint64_t chain_id, const char *signer, const char *deposit_id,
                                   struct zl_nonce_tx *out, bool *found, char *errstr, size_t errstr_size);

/* zl_nonce_find_for_deposit's rule for a poll batch in one query: nonces[i]
 * is the nonce of deposit_ids[i]'s live mint, -1 when it has none (n may
 * be 0). Read each nonce's tx once with zl_nonce_get: a batch's deposits
 * share one. */
zl_class zl_nonce_live_nonces(struct zl_pg *p, uint64_t chain_id, const char *signer, const char *const *deposit_ids,
                              size_t n, int64_t *nonces, char *errstr, size_t errstr_size);

/* The signer's tx at nonce. *found false when there is none. On ZL_OK with
 * *found, the caller owns out (zl_nonce_tx_clear). */
zl_class zl_nonce_get(struct zl_pg *p, uint64_t chain_id, const char *signer, uint64_t nonce, struct zl_nonce_tx *out,
                      bool *found, char *errstr, size_t errstr_size);

/* BEGINs a transaction, locks the deposit row (which must be in `pinned` or
 * `mint_submitted`) and looks again for a live mint of it (another copy may
 * have stored one since the caller looked): then *found is true, *existing
 * is filled and the transaction is rolled back. Otherwise locks the signer's
 * row (creating it at chain_floor) and sets *nonce = max(next_nonce,
 * chain_floor): chain_floor is the chain's confirmed transaction count, so
 * a nonce someone else used with our key is never handed out again. When
 * window_max > 0 and window_max nonces are already in flight (*nonce -
 * chain_floor: handed out, not yet mined), ZL_DEFER with errstr and the
 * transaction rolled back: the window is full, wait for receipts. The
 * transaction stays open: finish with zl_nonce_store() or zl_nonce_abort().
 * ZL_TRANSIENT with *wrong_state when the deposit row is in another state
 * (it moved under us: the caller looks again; transaction rolled back). */
zl_class zl_nonce_begin(struct zl_pg *p, uint64_t chain_id, const char *signer, const char *deposit_id,
                        uint64_t chain_floor, uint64_t window_max, uint64_t *nonce, struct zl_nonce_tx *existing,
                        bool *found, bool *wrong_state, char *errstr, size_t errstr_size);

/* Inside zl_nonce_begin's transaction: stores t for deposit_id, advances the
 * signer's next nonce to t->nonce + 1, moves the deposit row to
 * mint_submitted with mint_tx_hash = t->tx_hash, and COMMITs. On any failure
 * rolls back (nothing stored: the signed bytes must then be thrown away). */
zl_class zl_nonce_store(struct zl_pg *p, const struct zl_nonce_tx *t, const char *deposit_id, char *errstr,
                        size_t errstr_size);

/* Deposits one mintBatch transaction may carry: bounds the arrays below and
 * ZL_MINT_BATCH_MAX (calldata of 100 mints is ~36 KiB, see ethtx.h). */
#define ZL_NONCE_BATCH_MAX 100

/* zl_nonce_begin for n (1..ZL_NONCE_BATCH_MAX) deposits at once, the
 * mintBatch path: BEGINs, locks the deposit rows in deposit_id order (two
 * copies locking overlapping batches queue instead of deadlocking), and sets
 * skip[i] for every deposit that is not pinned/mint_submitted or already has
 * a live mint (another copy stored one since the caller looked: the caller
 * drives those one by one). When *nkept > 0, locks the signer's row and sets
 * *nonce as zl_nonce_begin does (ZL_DEFER when the window is full); the
 * transaction stays open: finish with
 * zl_nonce_store_batch() (the kept deposits only) or zl_nonce_abort(). When
 * *nkept is 0 the transaction is rolled back. On failure rolled back. */
zl_class zl_nonce_begin_batch(struct zl_pg *p, uint64_t chain_id, const char *signer, const char *const *deposit_ids,
                              size_t n, uint64_t chain_floor, uint64_t window_max, uint64_t *nonce, bool *skip,
                              size_t *nkept, char *errstr, size_t errstr_size);

/* Inside zl_nonce_begin_batch's transaction: stores t (purpose mint_batch)
 * for the n deposits it carries, advances the signer's next nonce, moves
 * every one of the rows to mint_submitted with mint_tx_hash = t->tx_hash,
 * and COMMITs; all or nothing (on failure rolled back, the bytes must then
 * be thrown away). zl_nonce_store is this with n = 1. */
zl_class zl_nonce_store_batch(struct zl_pg *p, const struct zl_nonce_tx *t, const char *const *deposit_ids, size_t n,
                              char *errstr, size_t errstr_size);

/* Rolls back zl_nonce_begin's transaction. */
void zl_nonce_abort(struct zl_pg *p);

/* Replaces the bytes at (chain, signer, nonce) with a fee-bumped signature
 * of the same call (or, when to_filler, with a 0-value self-send that only
 * fills the nonce), adding the new hash to hashes. Compare-and-set on the
 * current hash: *replaced false when another copy replaced it first or it is
 * already mined (the caller re-reads). */
zl_class zl_nonce_replace(struct zl_pg *p, const struct zl_nonce_tx *t, const char *old_hash, bool to_filler,
                          bool *replaced, char *errstr, size_t errstr_size);

/* Records the receipt seen for hash (one of the nonce's hashes). */
zl_class zl_nonce_mark_mined(struct zl_pg *p, uint64_t chain_id, const char *signer, uint64_t nonce,
                             const char *hash, int64_t block_number, int receipt_status, char *errstr,
                             size_t errstr_size);

/* Notes the last broadcast error on the nonce's row (for operators). */
zl_class zl_nonce_note_error(struct zl_pg *p, uint64_t chain_id, const char *signer, uint64_t nonce,
                             const char *error, char *errstr, size_t errstr_size);

/* Up to max pending fillers of the signer, lowest nonce first (the janitor
 * re-broadcasts them). The caller clears each of out[0..*n). */
zl_class zl_nonce_pending_fillers(struct zl_pg *p, uint64_t chain_id, const char *signer, struct zl_nonce_tx *out,
                                  size_t max, size_t *n, char *errstr, size_t errstr_size);

/* Up to max pending transactions of the signer (fillers_only: fillers only)
 * at nonces >= from_nonce, lowest first: the window's gap repair re-sends
 * them in nonce order. The caller clears each of out[0..*n). */
zl_class zl_nonce_pending(struct zl_pg *p, uint64_t chain_id, const char *signer, bool fillers_only,
                          uint64_t from_nonce, struct zl_nonce_tx *out, size_t max, size_t *n, char *errstr,
                          size_t errstr_size);

/* The chain's nonce moved past this pending nonce and none of its hashes was
 * mined: another sender used our key (marked taken in signer_tx_marks, why
 * in last_error; the row stays pending). Nothing the row carried happened;
 * zl_nonce_find_for_deposit and zl_nonce_pending no longer return it, so its
 * deposits are minted again at a later nonce. *marked false when the row was
 * no longer pending (mined meanwhile). */
zl_class zl_nonce_mark_taken(struct zl_pg *p, uint64_t chain_id, const char *signer, uint64_t nonce, const char *why,
                             bool *marked, char *errstr, size_t errstr_size);

#endif /* ZL_NONCE_H */
