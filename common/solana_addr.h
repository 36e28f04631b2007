/* solana_addr.h: Solana addresses derived from other addresses, as the
 * runtime derives them (docs/architecture.md, "Solana"):
 *
 *   create_with_seed  sha256(base || seed || owner): the address a System
 *                     CreateAccountWithSeed makes, signed by base alone. The
 *                     receipt mint's address is this, with a seed made from
 *                     the deposit id, so a second receipt cannot be created.
 *   program address   sha256(seeds... || bump || program || "Program
 *                     DerivedAddress") for the highest bump 255..0 whose
 *                     hash is NOT a point of ed25519 (so no private key can
 *                     exist for it); an associated token account is the
 *                     program address of [wallet, token program, mint]
 *                     under the Associated Token Account program.
 *
 * "A point of ed25519" is what the runtime's curve25519-dalek decompresses:
 * y = the 255 low bits, reduced mod p = 2^255 - 19, is on the curve when
 * (y^2 - 1) / (d y^2 + 1) is a square mod p (GMP's Legendre symbol). The
 * sign bit and a non-canonical y do not change the answer.
 *
 * Results are checked against solders (tests/integration/test_solana_tx.py).
 * Bounds: ZL_SOL_SEEDS_MAX seeds of at most ZL_SOL_SEED_MAX bytes each (the
 * runtime's own limits). Every function returns 0 or -1 with err.
 * @locality any thread: pure functions over their arguments.
 */
#ifndef ZL_SOLANA_ADDR_H
#define ZL_SOLANA_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "solana_tx.h"

#define ZL_SOL_SEEDS_MAX 16
#define ZL_SOL_SEED_MAX 32

/* The Associated Token Account program. */
#define ZL_SOL_ATA_PROGRAM "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"

/* Whether key decompresses to a point of ed25519 (see above). */
bool zl_sol_on_curve(const uint8_t key[ZL_SOL_KEY_SIZE]);

/* seed[0..seed_len) with base and owner; -1 when seed_len > ZL_SOL_SEED_MAX
 * or owner ends with the program-address marker (the runtime refuses it). */
int zl_sol_create_with_seed(const uint8_t base[ZL_SOL_KEY_SIZE], const char *seed, size_t seed_len,
                            const uint8_t owner[ZL_SOL_KEY_SIZE], uint8_t out[ZL_SOL_KEY_SIZE], char *err,
                            size_t err_size);

/* The program address of seeds[0..n) (seed i is seed_lens[i] bytes) under
 * program, and its bump; -1 when a bound is exceeded or no bump gives an
 * address off the curve (the runtime's "unable to find a viable bump"). */
int zl_sol_find_program_address(const uint8_t *const *seeds, const size_t *seed_lens, size_t n,
                                const uint8_t program[ZL_SOL_KEY_SIZE], uint8_t out[ZL_SOL_KEY_SIZE],
                                uint8_t *bump, char *err, size_t err_size);

/* The associated token account of wallet for mint under token_program (SPL
 * Token or Token-2022). */
int zl_sol_associated_token_account(const uint8_t wallet[ZL_SOL_KEY_SIZE], const uint8_t mint[ZL_SOL_KEY_SIZE],
                                    const uint8_t token_program[ZL_SOL_KEY_SIZE], uint8_t out[ZL_SOL_KEY_SIZE],
                                    char *err, size_t err_size);

#endif /* ZL_SOLANA_ADDR_H */
