/* solana_system.c: System Program instructions (solana_system.h). */
#include <stdio.h>
#include <string.h>

#include "solana_addr.h"
#include "solana_system.h"

enum {
    SYS_CREATE_ACCOUNT = 0,
    SYS_TRANSFER = 2,
    SYS_CREATE_ACCOUNT_WITH_SEED = 3,
    SYS_ADVANCE_NONCE = 4,
    SYS_INITIALIZE_NONCE = 6,
};

static const char RECENT_BLOCKHASHES[] = "SysvarRecentB1ockHashes11111111111111111111";
static const char RENT[] = "SysvarRent111111111111111111111111111111111";

/* Starts ix as a System Program instruction with discriminant op (u32). */
static void begin(struct zl_sol_ix *ix, uint32_t op)
{
    static const uint8_t system[ZL_SOL_KEY_SIZE] = {0}; /* the System Program is the zero key */
    zl_sol_ix_begin(ix, system);
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(op >> (8 * i));
    zl_sol_ix_put(ix, b, sizeof(b));
}

static void sysvar(struct zl_sol_ix *ix, const char *name)
{
    uint8_t k[ZL_SOL_KEY_SIZE];
    zl_sol_known_key(name, k);
    zl_sol_ix_account(ix, k, false, false);
}

int zl_sol_sys_transfer(struct zl_sol_ix *ix, const uint8_t from[ZL_SOL_KEY_SIZE], const uint8_t to[ZL_SOL_KEY_SIZE],
                        uint64_t lamports)
{
    begin(ix, SYS_TRANSFER);
    zl_sol_ix_account(ix, from, true, true);
    zl_sol_ix_account(ix, to, false, true);
    zl_sol_ix_u64(ix, lamports);
    return 0;
}

int zl_sol_sys_create_account(struct zl_sol_ix *ix, const uint8_t from[ZL_SOL_KEY_SIZE],
                              const uint8_t acct[ZL_SOL_KEY_SIZE], uint64_t lamports, uint64_t space,
                              const uint8_t owner[ZL_SOL_KEY_SIZE])
{
    begin(ix, SYS_CREATE_ACCOUNT);
    zl_sol_ix_account(ix, from, true, true);
    zl_sol_ix_account(ix, acct, true, true);
    zl_sol_ix_u64(ix, lamports);
    zl_sol_ix_u64(ix, space);
    zl_sol_ix_put(ix, owner, ZL_SOL_KEY_SIZE);
    return 0;
}

int zl_sol_sys_create_account_with_seed(struct zl_sol_ix *ix, const uint8_t from[ZL_SOL_KEY_SIZE],
                                        const uint8_t to[ZL_SOL_KEY_SIZE], const uint8_t base[ZL_SOL_KEY_SIZE],
                                        const char *seed, size_t seed_len, uint64_t lamports, uint64_t space,
                                        const uint8_t owner[ZL_SOL_KEY_SIZE], char *err, size_t err_size)
{
    if (seed_len > ZL_SOL_SEED_MAX) {
        snprintf(err, err_size, "seed of %zu bytes, at most %d", seed_len, ZL_SOL_SEED_MAX);
        return -1;
    }
    begin(ix, SYS_CREATE_ACCOUNT_WITH_SEED);
    zl_sol_ix_account(ix, from, true, true);
    zl_sol_ix_account(ix, to, false, true);
    if (memcmp(base, from, ZL_SOL_KEY_SIZE) != 0)
        zl_sol_ix_account(ix, base, true, false);
    zl_sol_ix_put(ix, base, ZL_SOL_KEY_SIZE);
    zl_sol_ix_u64(ix, seed_len); /* bincode's String: u64 length, then the bytes */
    zl_sol_ix_put(ix, seed, seed_len);
    zl_sol_ix_u64(ix, lamports);
    zl_sol_ix_u64(ix, space);
    zl_sol_ix_put(ix, owner, ZL_SOL_KEY_SIZE);
    return 0;
}

int zl_sol_sys_advance_nonce(struct zl_sol_ix *ix, const uint8_t nonce[ZL_SOL_KEY_SIZE],
                             const uint8_t authority[ZL_SOL_KEY_SIZE])
{
    begin(ix, SYS_ADVANCE_NONCE);
    zl_sol_ix_account(ix, nonce, false, true);
    sysvar(ix, RECENT_BLOCKHASHES);
    zl_sol_ix_account(ix, authority, true, false);
    return 0;
}

int zl_sol_sys_initialize_nonce(struct zl_sol_ix *ix, const uint8_t nonce[ZL_SOL_KEY_SIZE],
                                const uint8_t authority[ZL_SOL_KEY_SIZE])
{
    begin(ix, SYS_INITIALIZE_NONCE);
    zl_sol_ix_account(ix, nonce, false, true);
    sysvar(ix, RECENT_BLOCKHASHES);
    sysvar(ix, RENT);
    zl_sol_ix_put(ix, authority, ZL_SOL_KEY_SIZE);
    return 0;
}
