/* txmgr.h: the transaction manager: one signer's transactions to one
 * contract on one chain, from fees to a confirmed receipt.
 *
 * It prices (eth_feeHistory or eth_gasPrice, under caps), estimates gas,
 * signs (ethtx.h, secp.h), broadcasts through the rpc client's endpoints,
 * reads receipts, replaces a stuck transaction at its nonce with higher fees,
 * fills the nonce of a transaction the node refuses for good with a 0-value
 * self-send, and re-sends pending fillers (the janitor). Transactions live in
 * the nonce store (nonce.h): the caller allocates the nonce and stores the
 * bytes there BEFORE anything is broadcast; this module only ever re-sends
 * stored bytes or bytes it stored itself (zl_nonce_replace).
 *
 * It knows nothing of deposits or messages: the caller builds the calldata,
 * decides what a revert means for its own data and which rows a transaction
 * carries.
 *
 * Classes are decided here, once: a node's answer to a broadcast or an
 * estimate is read by one classifier (zl_tx_classify_answer) into a reason,
 * and the reason decides the class. Callers pass classes on unchanged.
 *
 * @locality one thread at a time (the stage's main thread): it uses the
 * caller's zl_pg and zl_rpc, and static buffers for the 64 KiB transactions.
 */
#ifndef ZL_TXMGR_H
#define ZL_TXMGR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "blockclock.h"
#include "ethtx.h"
#include "hex.h"
#include "log.h"
#include "nonce.h"
#include "pg.h"
#include "rpc.h"
#include "secp.h"
#include "zl.h"

/* Which fee market a new transaction uses. */
typedef enum zl_tx_fee_mode {
    ZL_TX_FEES_AUTO,    /* EIP-1559 when the chain reports a base fee, else legacy */
    ZL_TX_FEES_EIP1559, /* EIP-1559 only: a chain without base fee is an error */
    ZL_TX_FEES_LEGACY,  /* gas price only */
} zl_tx_fee_mode;

struct zl_txmgr_opts {
    struct zl_rpc *rpc;            /* borrowed: the chain's client */
    struct zl_pg *pg;              /* borrowed: the owner's own connection, zl_nonce_prepare()d */
    const struct zl_secp_key *key; /* borrowed: the signer */
    uint64_t chain_id;             /* signed into every transaction */
    uint8_t contract[20];          /* the one contract called: stored bytes are re-signed only when they call it */
    zl_tx_fee_mode fee_mode;
    int64_t max_fee_gwei;          /* cap on max fee per gas (legacy: gas price); above it, wait */
    int64_t max_priority_fee_gwei; /* cap on the priority fee */
    int64_t min_priority_fee_mwei; /* floor of the priority fee, 10^6 wei */
    int64_t fee_bump_pct;          /* raise of both fees per replacement (>= 10: geth's rule) */
    int64_t receipt_wait_ms;       /* poll for a receipt this long per drive, then ZL_DEFER */
    int64_t receipt_poll_ms;       /* longest pause between receipt polls */
    int64_t stuck_ms;              /* pending this long since signed: replace with higher fees */
    int64_t janitor_ms;            /* between janitor passes */
    int64_t confirmations;         /* blocks including the tx's before a receipt counts (>= 1) */
    int64_t inflight_max;          /* unconfirmed txs per signer at consecutive nonces (1: poll each to its
                                      receipt as before; > 1: the window, see zl_txmgr_drive) */
    int64_t bump_after_blocks;     /* pending this many blocks since signed: replace with higher fees (0: off,
                                      stuck_ms only) */
};

struct zl_txmgr {
    struct zl_txmgr_opts o;
    char signer_hex[ZL_ADDRESS_HEX_SIZE];   /* "0x" + 40 lowercase hex */
    char contract_hex[ZL_ADDRESS_HEX_SIZE]; /* lowercase */
    int64_t next_janitor_ms;
    int64_t head_block;                     /* the chain's head as last read (zl_txmgr_chain_nonce, drives);
                                               -1 before the first read: signed into rec->signed_block */
    struct zl_block_clock clock;            /* when each head read came first: the next block's due time for a
                                               caller's re-check (blockclock.h) */
};

/* Sets t up from o (copied; the borrowed pointers must outlive t). Cannot
 * fail: the options are the caller's validated settings. */
void zl_txmgr_init(struct zl_txmgr *t, const struct zl_txmgr_opts *o);

/* ------------------------------------------------------------ pure parts */

/* What a node's JSON-RPC error answer to eth_sendRawTransaction or
 * eth_estimateGas means. The only place that reads a node's error text. */
typedef enum zl_tx_reason {
    ZL_TX_SENT,     /* the node has these bytes or their nonce is used: receipts tell the rest */
    ZL_TX_REFUSED,  /* the node will never take these bytes (e.g. intrinsic gas too low) */
    ZL_TX_UNFUNDED, /* the signer cannot pay for gas: a person must fund it */
    ZL_TX_RETRY,    /* anything else: try again later (e.g. fee below the base fee) */
} zl_tx_reason;

/* Classifies an error answer (re->message, case-insensitive). */
zl_tx_reason zl_tx_classify_answer(const struct zl_rpc_error *re);

/* The reason's name for logs: "sent", "refused", "unfunded", "retry". */
const char *zl_tx_reason_name(zl_tx_reason r);

/* True when the answer is a revert with exactly this revert data (hex,
 * "0x" + selector + arguments): error.data as the node sent it (geth, anvil,
 * erigon), nested in an object that nodes serialise as JSON text, or, from
 * nodes that only name it in the message, the selector there. */
bool zl_tx_revert_is(const struct zl_rpc_error *re, const char *revert_hex);

/* Fees of one transaction. */
struct zl_tx_fees {
    zl_tx_type type;
    uint64_t max_fee_wei;      /* legacy: gas price */
    uint64_t priority_fee_wei; /* legacy: 0 */
};

/* EIP-1559 fees from the latest base fee and recent blocks' tips (n <= 8
 * used): the median tip within [min, max] priority fee, max fee = 2 x base
 * + tip (room for six full blocks of rises) capped at max_fee_gwei. Returns
 * ZL_OK, or ZL_DEFER with errstr when base + tip is above the cap (wait for
 * fees to fall). */
zl_class zl_tx_fees_eip1559(const struct zl_txmgr_opts *o, uint64_t base_wei, const uint64_t *tips_wei, size_t n,
                            struct zl_tx_fees *f, char *errstr, size_t errstr_size);

/* v raised by pct percent, and by at least 1 wei. */
uint64_t zl_tx_fee_bumped(uint64_t v, int64_t pct);

/* The fees of a replacement of slot: both raised by fee_bump_pct, the tip
 * never above the max fee. ZL_OK, or ZL_DEFER with errstr when the bump
 * would pass max_fee_gwei (wait). */
zl_class zl_tx_fees_replacement(const struct zl_txmgr_opts *o, const struct zl_nonce_tx *slot, struct zl_tx_fees *f,
                                char *errstr, size_t errstr_size);

/* ------------------------------------------------------------ chain reads */

/* One read through the manager's client. params are stolen (built inline
 * with json_pack; NULL means out of memory: ZL_TRANSIENT). On ZL_OK
 * *result is a new reference, json_null() for a null result; otherwise the
 * rpc class (rpc.h) with *re (may be NULL) saying whether an endpoint
 * answered with an error object. */
zl_class zl_txmgr_read(struct zl_txmgr *t, const char *method, json_t *params, json_t **result,
                       struct zl_rpc_error *re, char *errstr, size_t errstr_size);

/* A read whose result is a quantity ("0x1a"). A result that is not one is
 * ZL_TRANSIENT. */
zl_class zl_txmgr_read_quantity(struct zl_txmgr *t, const char *method, json_t *params, uint64_t *out,
                                char *errstr, size_t errstr_size);

/* ---------------------------------------------------- new transactions */

/* Fees for a new transaction, by fee_mode. ZL_OK; ZL_DEFER above the caps;
 * ZL_TRANSIENT when fee_mode is eip1559 and the chain has no base fee; or
 * the rpc class. */
zl_class zl_txmgr_fees(struct zl_txmgr *t, struct zl_tx_fees *f, char *errstr, size_t errstr_size);

/* eth_blockNumber into t->head_block, and into t->clock (the first sighting
 * of a new head). Every head read of the txmgr goes through here. */
zl_class zl_txmgr_read_head(struct zl_txmgr *t, char *errstr, size_t errstr_size);

/* The signer's confirmed transaction count: the floor of its nonces. Also
 * reads the head (t->head_block: the block a transaction signed next is
 * counted from for ZL_MINT_BUMP_AFTER_BLOCKS). */
zl_class zl_txmgr_chain_nonce(struct zl_txmgr *t, uint64_t *floor, char *errstr, size_t errstr_size);

/* eth_estimateGas of a call of the contract with data, from the signer
 * (re is required: it is how a revert is read). ZL_OK with *gas. When the node answers that the call would fail:
 * ZL_OUTAGE when the signer cannot pay (errstr: fund it), else ZL_TRANSIENT
 * with *reverts true and *re holding the answer (the caller decides what
 * the revert means for its data). Otherwise the rpc class, *reverts false. */
zl_class zl_txmgr_estimate(struct zl_txmgr *t, const uint8_t *data, size_t len, uint64_t *gas, bool *reverts,
                           struct zl_rpc_error *re, char *errstr, size_t errstr_size);

/* Signs tx (from the signer, chain_id set by the caller) into a record for
 * the nonce store: fees, gas, to, raw bytes and hash, purpose copied
 * ("mint", "mint_batch", "filler"). On ZL_OK the caller owns rec->raw_hex
 * (zl_nonce_tx_clear); rec->signed_block is t->head_block. ZL_PERMANENT when signing fails (a bug: ethtx.h's
 * self-check), ZL_TRANSIENT out of memory; rec is then empty. */
zl_class zl_txmgr_sign(struct zl_txmgr *t, const struct zl_tx *tx, const char *purpose, struct zl_nonce_tx *rec,
                       char *errstr, size_t errstr_size);

/* zl_txmgr_sign of a call of the contract with data (borrowed), at nonce,
 * with fees f and gas_limit, value 0. */
zl_class zl_txmgr_sign_call(struct zl_txmgr *t, uint64_t nonce, const struct zl_tx_fees *f, uint64_t gas_limit,
                            const uint8_t *data, size_t len, const char *purpose, struct zl_nonce_tx *rec,
                            char *errstr, size_t errstr_size);

/* After zl_nonce_store*: the slot as a stored, never-mined record that
 * zl_txmgr_drive can take (its one hash, no receipt yet). */
void zl_txmgr_stored(struct zl_nonce_tx *slot);

/* ------------------------------------------------- driving to a receipt */

/* A receipt of one of the hashes signed at a nonce. */
struct zl_tx_receipt {
    bool found;
    char hash[ZL_HASH_HEX_SIZE]; /* the hash that was mined */
    int64_t block;
    int status;                  /* 1 success, 0 reverted */
    json_t *logs;                /* owned (zl_tx_receipt_clear): the receipt's logs when status is 1, else NULL */
};

/* Releases r->logs; r stays usable (not found). Safe on a zeroed struct. */
void zl_tx_receipt_clear(struct zl_tx_receipt *r);

/* Sends the slot's current bytes once. Returns the reason, decided by
 * zl_tx_classify_answer when a node answered with an error: ZL_TX_SENT also
 * covers "already known" and "nonce too low" (*c ZL_OK); ZL_TX_UNFUNDED
 * comes with *c ZL_OUTAGE; ZL_TX_REFUSED with ZL_TRANSIENT; ZL_TX_RETRY with
 * ZL_TRANSIENT, or the rpc class when no node answered (ZL_OUTAGE when every
 * endpoint is down). errstr says why for anything but ZL_TX_SENT. */
zl_tx_reason zl_txmgr_broadcast(struct zl_txmgr *t, const struct zl_nonce_tx *slot, zl_class *c, char *errstr,
                                size_t errstr_size);

/* Drives a stored transaction (slot, read back or just stored) once: looks
 * for a receipt of any of its hashes; re-sends the current bytes; polls up to
 * receipt_wait_ms (with the window, inflight_max > 1, only a few
 * milliseconds: a chain that mines on arrival answers at once, and on a
 * timed chain the caller defers instead of holding its partition for a
 * block); replaces it with higher fees when pending past stuck_ms or
 * bump_after_blocks blocks.
 * lc names what the caller is doing in the log (may be NULL).
 *   ZL_OK, *r found: mined with enough confirmations, recorded in the store
 *     (status 1 or 0: the caller decides what a revert means); the caller
 *     clears *r.
 *   ZL_OK, *refused: the node refused the bytes for good; the nonce now
 *     holds a filler self-send (mined or left to the janitor): nothing the
 *     slot carried will happen. errstr says why.
 *   ZL_DEFER: not mined yet, or mined with too few confirmations.
 *   ZL_TRANSIENT, errstr says which: a replacement would pass the fee cap,
 *     so the nonce now holds a filler self-send (its fees may pass the cap
 *     by one bump: 21000 gas is what frees the nonce for every later one);
 *     or the chain's nonce moved past the slot's and none of its hashes was
 *     mined (another sender used the key: the row is marked taken). Either
 *     way nothing the slot carried will happen, and the caller's retry finds
 *     no live tx and signs its data anew at a later nonce.
 *   ZL_OUTAGE: the signer cannot pay for gas (fund it), or every endpoint
 *     or the database is down. Other classes as the store or rpc returned.
 * The slot is updated in place on a replacement (new raw_hex, hash, fees). */
zl_class zl_txmgr_drive(struct zl_txmgr *t, struct zl_nonce_tx *slot, const struct zl_log_ctx *lc,
                        struct zl_tx_receipt *r, bool *refused, char *errstr, size_t errstr_size);

/* The window's fast path for a transaction just stored by this caller and
 * never sent (zl_txmgr_stored): sends its bytes once, read like
 * zl_txmgr_drive's broadcast (refused: the nonce is filled, *refused set;
 * a node that is down or answers an error: that class, noted on the row),
 * without the receipt look-up before it (its bytes never left, so nothing
 * can be mined) and without the wait and the taken check after it: a
 * caller with several new transactions sends them all, then looks once at
 * each (zl_txmgr_peek), instead of a poll and three reads per transaction
 * while the rest wait. ZL_OK: sent (or "already known"). */
zl_class zl_txmgr_send_new(struct zl_txmgr *t, struct zl_nonce_tx *slot, const struct zl_log_ctx *lc, bool *refused,
                           char *errstr, size_t errstr_size);

/* One look for a receipt of any of the slot's hashes, no send and no wait:
 * as zl_txmgr_drive, ZL_OK with *r found and confirmed (recorded), or
 * ZL_DEFER (not mined yet, or too few confirmations); other classes as the
 * rpc or the store returned. The caller clears *r. */
zl_class zl_txmgr_peek(struct zl_txmgr *t, const struct zl_nonce_tx *slot, struct zl_tx_receipt *r, char *errstr,
                       size_t errstr_size);

/* At most every janitor_ms: re-sends the signer's pending fillers and
 * records the mined ones (a filler that never lands blocks every later
 * nonce). With the window (inflight_max > 1) it re-sends every pending tx
 * from the chain's nonce up, lowest first, up to inflight_max: a tx the
 * node dropped (restart, mempool eviction) leaves a gap that holds every
 * later nonce, and the deposit that owns it may be waiting in a delay tier.
 * Failures are logged and retried on a later pass. */
void zl_txmgr_janitor(struct zl_txmgr *t);

#endif /* ZL_TXMGR_H */
