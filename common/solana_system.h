/* solana_system.h: instructions of Solana's System Program that the Solana
 * mint needs (docs/architecture.md, "Solana"): moving lamports, creating the
 * receipt's mint account at an address fixed by the deposit id, and the
 * durable nonce that lets a stored transaction be sent again byte for byte
 * long after its blockhash would have expired.
 *
 * Each builder fills *ix (overwriting it) with the program id, the accounts
 * and their flags in the order the program reads them, and the bincode data
 * (a u32 little-endian discriminant, then the fields). The bytes are checked
 * against solders' system_program builders (tests/integration/
 * test_solana_tx.py). Returns 0, or -1 with err (a seed over
 * ZL_SOL_SEED_MAX bytes).
 * @locality any thread: pure functions over their arguments.
 */
#ifndef ZL_SOLANA_SYSTEM_H
#define ZL_SOLANA_SYSTEM_H

#include <stddef.h>
#include <stdint.h>

#include "solana_tx.h"

/* Bytes of a nonce account (its state: version, state, authority, the
 * durable nonce, the fee calculator). */
#define ZL_SOL_NONCE_ACCOUNT_SIZE 80

int zl_sol_sys_transfer(struct zl_sol_ix *ix, const uint8_t from[ZL_SOL_KEY_SIZE], const uint8_t to[ZL_SOL_KEY_SIZE],
                        uint64_t lamports);

int zl_sol_sys_create_account(struct zl_sol_ix *ix, const uint8_t from[ZL_SOL_KEY_SIZE],
                              const uint8_t account[ZL_SOL_KEY_SIZE], uint64_t lamports, uint64_t space,
                              const uint8_t owner[ZL_SOL_KEY_SIZE]);

/* to must be zl_sol_create_with_seed(base, seed, owner) (solana_addr.h);
 * base signs (listed once more only when it is not from). */
int zl_sol_sys_create_account_with_seed(struct zl_sol_ix *ix, const uint8_t from[ZL_SOL_KEY_SIZE],
                                        const uint8_t to[ZL_SOL_KEY_SIZE], const uint8_t base[ZL_SOL_KEY_SIZE],
                                        const char *seed, size_t seed_len, uint64_t lamports, uint64_t space,
                                        const uint8_t owner[ZL_SOL_KEY_SIZE], char *err, size_t err_size);

/* The first instruction of a durable-nonce transaction: the nonce account's
 * value is the transaction's "recent blockhash", and this moves it on. */
int zl_sol_sys_advance_nonce(struct zl_sol_ix *ix, const uint8_t nonce[ZL_SOL_KEY_SIZE],
                             const uint8_t authority[ZL_SOL_KEY_SIZE]);

/* After zl_sol_sys_create_account of ZL_SOL_NONCE_ACCOUNT_SIZE bytes owned
 * by the System Program. */
int zl_sol_sys_initialize_nonce(struct zl_sol_ix *ix, const uint8_t nonce[ZL_SOL_KEY_SIZE],
                                const uint8_t authority[ZL_SOL_KEY_SIZE]);

#endif /* ZL_SOLANA_SYSTEM_H */
