/* solana_receipt.h: the NFT receipt of one deposit on Solana, as one signed
 * transaction (docs/architecture.md, "Solana"): what the mint stage stores
 * before it sends, and sends again byte for byte after a crash.
 *
 * The receipt is a Token-2022 mint of supply 1 and 0 decimals at an address
 * fixed by the deposit id: created with seed = the first 16 bytes of
 * sha256(deposit_id) in hex (32 characters, the runtime's longest seed)
 * from the payer, so a second receipt for one deposit cannot be created
 * (the chain refuses "already in use"). Its MetadataPointer points at the
 * mint with nobody allowed to move it, the token metadata (name, symbol,
 * the ipfs:// URI) lives in the mint, one token goes to the depositor's
 * associated token account, and the minting right is given up.
 *
 * The transaction is a durable-nonce one: its first instruction advances
 * the nonce account whose current value stands in as its "recent
 * blockhash", so stored bytes stay valid until they run (the 150-slot
 * blockhash expiry does not apply) and run at most once. Then the priority
 * fee (ComputeBudget SetComputeUnitLimit / SetComputeUnitPrice), then the
 * receipt's instructions.
 *
 * Ownership: everything is the caller's; nothing is kept. @locality any.
 */
#ifndef ZL_SOLANA_RECEIPT_H
#define ZL_SOLANA_RECEIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base58.h"
#include "rpc.h"
#include "solana_tx.h"
#include "zl.h"

#define ZL_SOL_COMPUTE_BUDGET_PROGRAM "ComputeBudget111111111111111111111111111111"
#define ZL_SOL_TOKEN_2022_PROGRAM "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
#define ZL_SOL_TOKEN_PROGRAM "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
/* The receipt mint's seed: 32 hex characters and a NUL. */
#define ZL_SOL_RECEIPT_SEED_SIZE 33

/* ComputeBudget's SetComputeUnitLimit and SetComputeUnitPrice (the
 * priority fee, in micro-lamports per compute unit). */
void zl_sol_cb_unit_limit(struct zl_sol_ix *ix, uint32_t units);
void zl_sol_cb_unit_price(struct zl_sol_ix *ix, uint64_t micro_lamports);

/* The seed of deposit_id's receipt mint, and the mint's address under
 * payer: the same deposit always gives the same mint. */
void zl_sol_receipt_seed(const char *deposit_id, char seed[ZL_SOL_RECEIPT_SEED_SIZE]);
int zl_sol_receipt_mint(const uint8_t payer[ZL_SOL_KEY_SIZE], const char *deposit_id,
                        uint8_t mint[ZL_SOL_KEY_SIZE], char *err, size_t err_size);

/* Bytes the receipt's mint account ends with (it is created with
 * ZL_SOL_MINT_WITH_POINTER_SIZE and grown by the metadata): what its rent
 * (getMinimumBalanceForRentExemption) is asked for. */
size_t zl_sol_receipt_account_size(const char *name, const char *symbol, const char *uri);

struct zl_sol_receipt_spec {
    const char *deposit_id;
    const struct zl_sol_keypair *payer;       /* pays, signs, minting right until given up */
    uint8_t owner[ZL_SOL_KEY_SIZE];           /* the depositor's wallet */
    uint8_t nonce[ZL_SOL_KEY_SIZE];           /* durable nonce account, authority = payer */
    uint8_t nonce_value[ZL_SOL_KEY_SIZE];     /* its value now: the "recent blockhash" */
    const char *name, *symbol, *uri;          /* the token metadata */
    uint64_t rent_lamports;                   /* for zl_sol_receipt_account_size bytes */
    uint32_t cu_limit;                        /* 0: no SetComputeUnitLimit */
    uint64_t cu_price_micro_lamports;         /* 0: no priority fee */
};

/* The signed receipt transaction into out (ZL_SOL_TX_MAX bytes), its
 * signature (the transaction's id) in sig, and the mint and the owner's
 * token account. Returns 0, or -1 with err (a text too long, a bound). */
int zl_sol_receipt_tx(const struct zl_sol_receipt_spec *s, uint8_t out[ZL_SOL_TX_MAX], size_t *out_len,
                      uint8_t sig[ZL_SOL_SIG_SIZE], uint8_t mint[ZL_SOL_KEY_SIZE], uint8_t ata[ZL_SOL_KEY_SIZE],
                      char *err, size_t err_size);

/* What one look at the chain found about a stored receipt transaction
 * (zl_sol_receipt_look reads it; order matters, see there). */
struct zl_sol_receipt_seen {
    bool tx_landed;        /* the stored signature's status: executed (confirmed or finalized) */
    bool tx_failed;        /* ... and its error is not null */
    bool tx_final;         /* ... at finalized */
    bool nonce_moved;      /* the nonce's value (confirmed) is no longer the stored transaction's */
    bool nonce_move_final; /* ... at finalized too */
    bool receipt_final;    /* the deposit's mint exists at finalized: Token-2022, supply 1 */
    bool receipt_seen;     /* ... at confirmed */
};

enum zl_sol_receipt_next {
    ZL_SOL_RECEIPT_DONE = 0,   /* the receipt exists, finalized: record it */
    ZL_SOL_RECEIPT_SEND = 1,   /* the stored bytes can still run: send them (again), byte for byte */
    ZL_SOL_RECEIPT_WAIT = 2,   /* something is not final yet: look again later */
    ZL_SOL_RECEIPT_RESIGN = 3, /* the stored bytes can never run and no receipt exists: sign anew
                                * with the nonce's new value (same mint address: still one receipt) */
};

/* The mint stage's next step for a deposit whose receipt transaction is
 * stored, from what the chain shows. Why it is safe to sign again only on
 * RESIGN: a durable-nonce transaction runs only while the nonce holds its
 * value; once another value is finalized, the stored bytes can never run,
 * and if they were what moved it, the receipt was finalized with it. A
 * second transaction for the same deposit cannot make a second receipt
 * either way (its mint's address is taken): this only avoids paying for
 * a refused one. */
enum zl_sol_receipt_next zl_sol_receipt_next(const struct zl_sol_receipt_seen *s);

/* Reads what zl_sol_receipt_next decides from: the stored transaction's
 * status (sig_b58, with the node's history searched), then the nonce
 * account's value at confirmed and at finalized (compared with
 * nonce_value, the stored transaction's), then the receipt's mint at
 * confirmed and at finalized, in that order, so each later read sees at
 * least what an earlier one saw. One endpoint answers each read (answers
 * carry the node's slot, so two honest nodes rarely give equal ones): a
 * lying node can make the stage wait or send again, both harmless; it
 * cannot make a second receipt. Returns ZL_OK with *seen filled, or the
 * RPC's class with errstr (a missing nonce account: ZL_TRANSIENT). */
zl_class zl_sol_receipt_look(struct zl_rpc *r, const char *sig_b58, const uint8_t nonce[ZL_SOL_KEY_SIZE],
                             const uint8_t nonce_value[ZL_SOL_KEY_SIZE], const uint8_t mint[ZL_SOL_KEY_SIZE],
                             struct zl_sol_receipt_seen *seen, char *errstr, size_t errstr_size);

/* The value of durable nonce account nonce_b58 at commitment (its "recent
 * blockhash" for the next transaction), read from one endpoint. ZL_OK with
 * *exists false when there is no such account; a non-nonce account is
 * ZL_TRANSIENT with errstr. */
zl_class zl_sol_nonce_value(struct zl_rpc *r, const char *nonce_b58, const char *commitment, bool *exists,
                            uint8_t value[ZL_SOL_KEY_SIZE], char *errstr, size_t errstr_size);

/* What an audit checks of a recorded receipt, at commitment, from one
 * endpoint: *is_receipt when mint_b58 is a Token-2022 mint of supply 1 and
 * 0 decimals whose minting right is given up, and *held the receipt tokens
 * owner_b58's token accounts of that mint hold (1 for the depositor; not
 * asked, 0, when it is no receipt).
 * Returns ZL_OK, or the RPC's class with errstr. */
zl_class zl_sol_receipt_audit(struct zl_rpc *r, const char *mint_b58, const char *owner_b58, const char *commitment,
                              bool *is_receipt, uint64_t *held, char *errstr, size_t errstr_size);

/* Name for logs: "done", "send", "wait", "resign". */
const char *zl_sol_receipt_next_name(enum zl_sol_receipt_next n);

#endif /* ZL_SOLANA_RECEIPT_H */
