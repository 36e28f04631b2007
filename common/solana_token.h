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

/* Token-2022 only. Bytes of a mint account with the metadata pointer
 * extension, before the metadata itself: the mint (82), padding to an
 * account's 165, the account type (1), the extension's type and length (4)
 * and its two keys (64). */
#define ZL_SOL_MINT_WITH_POINTER_SIZE 234
/* Bytes the token metadata adds to the mint account for these strings: its
 * type and length (4), update authority and mint (64), three u32-prefixed
 * strings and an empty list of extra fields (4). */
#define ZL_SOL_METADATA_SIZE(name_len, symbol_len, uri_len) (4 + 64 + 12 + (name_len) + (symbol_len) + (uri_len) + 4)
/* Longest name + symbol + uri the builder takes (one instruction's data). */
#define ZL_SOL_METADATA_TEXT_MAX 400

/* Token-2022's MetadataPointer Initialize, before InitializeMint2: the
 * metadata lives at metadata (the mint itself for a receipt); authority may
 * be NULL (nobody may move the pointer). */
void zl_sol_tok22_metadata_pointer(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE],
                                   const uint8_t mint[ZL_SOL_KEY_SIZE], const uint8_t *authority,
                                   const uint8_t metadata[ZL_SOL_KEY_SIZE]);

/* The token-metadata interface's Initialize, after InitializeMint2, signed
 * by the mint authority; the mint account must already hold the lamports
 * its larger size needs (the program grows it, it does not pay). -1 when
 * the strings exceed ZL_SOL_METADATA_TEXT_MAX together. */
int zl_sol_tok22_metadata_init(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE],
                               const uint8_t mint[ZL_SOL_KEY_SIZE], const uint8_t update_authority[ZL_SOL_KEY_SIZE],
                               const uint8_t mint_authority[ZL_SOL_KEY_SIZE], const char *name, const char *symbol,
                               const char *uri);

/* The Associated Token Account program's CreateIdempotent: ata must be
 * zl_sol_associated_token_account(wallet, mint, program); a second one for
 * the same account succeeds and changes nothing. */
void zl_sol_ata_create_idempotent(struct zl_sol_ix *ix, const uint8_t payer[ZL_SOL_KEY_SIZE],
                                  const uint8_t ata[ZL_SOL_KEY_SIZE], const uint8_t wallet[ZL_SOL_KEY_SIZE],
                                  const uint8_t mint[ZL_SOL_KEY_SIZE], const uint8_t program[ZL_SOL_KEY_SIZE]);

#endif /* ZL_SOLANA_TOKEN_H */
