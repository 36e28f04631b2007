/* solana_token.h: instructions of the SPL Token programs (SPL Token and
 * Token-2022 share these layouts) and of the Associated Token Account
 * program, for the Solana receipt mint and for tests that make Solana
 * deposits (docs/architecture.md, "Solana").
 *
 * program is the token program the mint belongs to (SPL Token or
 * Token-2022); each builder fills *ix (overwriting it) with that program,
 * the accounts in the order the program reads them, and the data (a one-byte
 * instruction tag, then little-endian fields; an optional key is a one-byte
 * tag 0/1 and, when 1, the key). Checked by sending them to a local
 * solana-test-validator (docs/architecture.md: how, and what it showed).
 * @locality any thread: pure functions over their arguments.
 */
#ifndef ZL_SOLANA_TOKEN_H
#define ZL_SOLANA_TOKEN_H

#include <stdint.h>

#include "solana_tx.h"

/* Bytes of a mint account without extensions. */
#define ZL_SOL_MINT_SIZE 82

/* InitializeMint2: mint (created, owned by program, ZL_SOL_MINT_SIZE bytes
 * or more with extensions); freeze may be NULL (none). */
void zl_sol_tok_initialize_mint2(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE],
                                 const uint8_t mint[ZL_SOL_KEY_SIZE], uint8_t decimals,
                                 const uint8_t mint_authority[ZL_SOL_KEY_SIZE], const uint8_t *freeze);

void zl_sol_tok_mint_to(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE],
                        const uint8_t mint[ZL_SOL_KEY_SIZE], const uint8_t dest[ZL_SOL_KEY_SIZE],
                        const uint8_t authority[ZL_SOL_KEY_SIZE], uint64_t amount);

void zl_sol_tok_transfer_checked(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE],
                                 const uint8_t source[ZL_SOL_KEY_SIZE], const uint8_t mint[ZL_SOL_KEY_SIZE],
                                 const uint8_t dest[ZL_SOL_KEY_SIZE], const uint8_t owner[ZL_SOL_KEY_SIZE],
                                 uint64_t amount, uint8_t decimals);

/* Transfer (unchecked: no mint, no decimals; older wallets still send it). */
void zl_sol_tok_transfer(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE],
                         const uint8_t source[ZL_SOL_KEY_SIZE], const uint8_t dest[ZL_SOL_KEY_SIZE],
                         const uint8_t owner[ZL_SOL_KEY_SIZE], uint64_t amount);

/* SetAuthority of the mint's minting right to new_authority, or to none
 * when NULL (a supply fixed for ever: the receipt's supply of 1). */
void zl_sol_tok_set_mint_authority(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE],
                                   const uint8_t mint[ZL_SOL_KEY_SIZE], const uint8_t current[ZL_SOL_KEY_SIZE],
                                   const uint8_t *new_authority);

/* The Associated Token Account program's CreateIdempotent: ata must be
 * zl_sol_associated_token_account(wallet, mint, program); a second one for
 * the same account succeeds and changes nothing. */
void zl_sol_ata_create_idempotent(struct zl_sol_ix *ix, const uint8_t payer[ZL_SOL_KEY_SIZE],
                                  const uint8_t ata[ZL_SOL_KEY_SIZE], const uint8_t wallet[ZL_SOL_KEY_SIZE],
                                  const uint8_t mint[ZL_SOL_KEY_SIZE], const uint8_t program[ZL_SOL_KEY_SIZE]);

#endif /* ZL_SOLANA_TOKEN_H */
