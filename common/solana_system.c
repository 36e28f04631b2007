/* solana_system.c: System Program instructions (solana_system.h). */
#include <stdio.h>
#include <string.h>

#include "base58.h"
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

/* Starts ix as a System Program instruction with discriminant op. */
static void begin(struct zl_sol_ix *ix, uint32_t op)
{
    memset(ix->program, 0, ZL_SOL_KEY_SIZE); /* the System Program is the zero key */
    ix->naccounts = 0;
    ix->data_len = 0;
    for (int i = 0; i < 4; i++)
        ix->data[ix->data_len++] = (uint8_t)(op >> (8 * i));
}

static void account(struct zl_sol_ix *ix, const uint8_t key[ZL_SOL_KEY_SIZE], bool signer, bool writable)
{
    struct zl_sol_account *a = &ix->accounts[ix->naccounts++];
    memcpy(a->key, key, ZL_SOL_KEY_SIZE);
    a->signer = signer;
    a->writable = writable;
}

static void sysvar(struct zl_sol_ix *ix, const char *name)
{
    uint8_t k[ZL_SOL_KEY_SIZE];
    int rc = zl_b58_decode_exact(name, k, sizeof(k));
    (void)rc; /* a constant: tests decode it */
    account(ix, k, false, false);
}

static void u64le(struct zl_sol_ix *ix, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        ix->data[ix->data_len++] = (uint8_t)(v >> (8 * i));
}

static void bytes(struct zl_sol_ix *ix, const void *p, size_t n)
{
    memcpy(ix->data + ix->data_len, p, n);
    ix->data_len += n;
}

int zl_sol_sys_transfer(struct zl_sol_ix *ix, const uint8_t from[ZL_SOL_KEY_SIZE], const uint8_t to[ZL_SOL_KEY_SIZE],
                        uint64_t lamports)
{
    begin(ix, SYS_TRANSFER);
    account(ix, from, true, true);
    account(ix, to, false, true);
    u64le(ix, lamports);
    return 0;
}

int zl_sol_sys_create_account(struct zl_sol_ix *ix, const uint8_t from[ZL_SOL_KEY_SIZE],
                              const uint8_t acct[ZL_SOL_KEY_SIZE], uint64_t lamports, uint64_t space,
                              const uint8_t owner[ZL_SOL_KEY_SIZE])
{
    begin(ix, SYS_CREATE_ACCOUNT);
    account(ix, from, true, true);
    account(ix, acct, true, true);
    u64le(ix, lamports);
    u64le(ix, space);
    bytes(ix, owner, ZL_SOL_KEY_SIZE);
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
    account(ix, from, true, true);
    account(ix, to, false, true);
    if (memcmp(base, from, ZL_SOL_KEY_SIZE) != 0)
        account(ix, base, true, false);
    bytes(ix, base, ZL_SOL_KEY_SIZE);
    u64le(ix, seed_len); /* bincode's String: u64 length, then the bytes */
    bytes(ix, seed, seed_len);
    u64le(ix, lamports);
    u64le(ix, space);
    bytes(ix, owner, ZL_SOL_KEY_SIZE);
    return 0;
}

int zl_sol_sys_advance_nonce(struct zl_sol_ix *ix, const uint8_t nonce[ZL_SOL_KEY_SIZE],
                             const uint8_t authority[ZL_SOL_KEY_SIZE])
{
    begin(ix, SYS_ADVANCE_NONCE);
    account(ix, nonce, false, true);
    sysvar(ix, RECENT_BLOCKHASHES);
    account(ix, authority, true, false);
    return 0;
}

int zl_sol_sys_initialize_nonce(struct zl_sol_ix *ix, const uint8_t nonce[ZL_SOL_KEY_SIZE],
                                const uint8_t authority[ZL_SOL_KEY_SIZE])
{
    begin(ix, SYS_INITIALIZE_NONCE);
    account(ix, nonce, false, true);
    sysvar(ix, RECENT_BLOCKHASHES);
    sysvar(ix, RENT);
    bytes(ix, authority, ZL_SOL_KEY_SIZE);
    return 0;
}
