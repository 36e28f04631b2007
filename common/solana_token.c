/* solana_token.c: SPL Token and Associated Token Account instructions
 * (solana_token.h). */
#include <string.h>

#include "base58.h"
#include "solana_addr.h"
#include "solana_token.h"

enum {
    TOK_TRANSFER = 3,
    TOK_MINT_TO = 7,
    TOK_SET_AUTHORITY = 6,
    TOK_TRANSFER_CHECKED = 12,
    TOK_INITIALIZE_MINT2 = 20,
    TOK22_METADATA_POINTER = 39, /* Token-2022's MetadataPointerExtension */
    POINTER_INITIALIZE = 0,
    AUTHORITY_MINT_TOKENS = 0,
    ATA_CREATE_IDEMPOTENT = 1,
};

static void begin(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE], int tag)
{
    memcpy(ix->program, program, ZL_SOL_KEY_SIZE);
    ix->naccounts = 0;
    ix->data_len = 0;
    if (tag >= 0)
        ix->data[ix->data_len++] = (uint8_t)tag;
}

static void account(struct zl_sol_ix *ix, const uint8_t key[ZL_SOL_KEY_SIZE], bool signer, bool writable)
{
    struct zl_sol_account *a = &ix->accounts[ix->naccounts++];
    memcpy(a->key, key, ZL_SOL_KEY_SIZE);
    a->signer = signer;
    a->writable = writable;
}

static void u64le(struct zl_sol_ix *ix, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        ix->data[ix->data_len++] = (uint8_t)(v >> (8 * i));
}

/* COption<Pubkey> as the token program packs it in instructions. */
static void opt_key(struct zl_sol_ix *ix, const uint8_t *key)
{
    ix->data[ix->data_len++] = key != NULL ? 1 : 0;
    if (key != NULL) {
        memcpy(ix->data + ix->data_len, key, ZL_SOL_KEY_SIZE);
        ix->data_len += ZL_SOL_KEY_SIZE;
    }
}

void zl_sol_tok_initialize_mint2(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE],
                                 const uint8_t mint[ZL_SOL_KEY_SIZE], uint8_t decimals,
                                 const uint8_t mint_authority[ZL_SOL_KEY_SIZE], const uint8_t *freeze)
{
    begin(ix, program, TOK_INITIALIZE_MINT2);
    account(ix, mint, false, true);
    ix->data[ix->data_len++] = decimals;
    memcpy(ix->data + ix->data_len, mint_authority, ZL_SOL_KEY_SIZE);
    ix->data_len += ZL_SOL_KEY_SIZE;
    opt_key(ix, freeze);
}

void zl_sol_tok_mint_to(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE],
                        const uint8_t mint[ZL_SOL_KEY_SIZE], const uint8_t dest[ZL_SOL_KEY_SIZE],
                        const uint8_t authority[ZL_SOL_KEY_SIZE], uint64_t amount)
{
    begin(ix, program, TOK_MINT_TO);
    account(ix, mint, false, true);
    account(ix, dest, false, true);
    account(ix, authority, true, false);
    u64le(ix, amount);
}

void zl_sol_tok_transfer_checked(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE],
                                 const uint8_t source[ZL_SOL_KEY_SIZE], const uint8_t mint[ZL_SOL_KEY_SIZE],
                                 const uint8_t dest[ZL_SOL_KEY_SIZE], const uint8_t owner[ZL_SOL_KEY_SIZE],
                                 uint64_t amount, uint8_t decimals)
{
    begin(ix, program, TOK_TRANSFER_CHECKED);
    account(ix, source, false, true);
    account(ix, mint, false, false);
    account(ix, dest, false, true);
    account(ix, owner, true, false);
    u64le(ix, amount);
    ix->data[ix->data_len++] = decimals;
}

void zl_sol_tok_transfer(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE],
                         const uint8_t source[ZL_SOL_KEY_SIZE], const uint8_t dest[ZL_SOL_KEY_SIZE],
                         const uint8_t owner[ZL_SOL_KEY_SIZE], uint64_t amount)
{
    begin(ix, program, TOK_TRANSFER);
    account(ix, source, false, true);
    account(ix, dest, false, true);
    account(ix, owner, true, false);
    u64le(ix, amount);
}

void zl_sol_tok_set_mint_authority(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE],
                                   const uint8_t mint[ZL_SOL_KEY_SIZE], const uint8_t current[ZL_SOL_KEY_SIZE],
                                   const uint8_t *new_authority)
{
    begin(ix, program, TOK_SET_AUTHORITY);
    account(ix, mint, false, true);
    account(ix, current, true, false);
    ix->data[ix->data_len++] = AUTHORITY_MINT_TOKENS;
    opt_key(ix, new_authority);
}

void zl_sol_tok22_metadata_pointer(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE],
                                   const uint8_t mint[ZL_SOL_KEY_SIZE], const uint8_t *authority,
                                   const uint8_t metadata[ZL_SOL_KEY_SIZE])
{
    static const uint8_t none[ZL_SOL_KEY_SIZE] = {0}; /* OptionalNonZeroPubkey: zeros are None */
    begin(ix, program, TOK22_METADATA_POINTER);
    account(ix, mint, false, true);
    ix->data[ix->data_len++] = POINTER_INITIALIZE;
    memcpy(ix->data + ix->data_len, authority != NULL ? authority : none, ZL_SOL_KEY_SIZE);
    ix->data_len += ZL_SOL_KEY_SIZE;
    memcpy(ix->data + ix->data_len, metadata, ZL_SOL_KEY_SIZE);
    ix->data_len += ZL_SOL_KEY_SIZE;
}

/* A borsh string: u32 little-endian length, then the bytes. */
static void borsh_str(struct zl_sol_ix *ix, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    for (int i = 0; i < 4; i++)
        ix->data[ix->data_len++] = (uint8_t)(n >> (8 * i));
    memcpy(ix->data + ix->data_len, s, n);
    ix->data_len += n;
}

int zl_sol_tok22_metadata_init(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE],
                               const uint8_t mint[ZL_SOL_KEY_SIZE], const uint8_t update_authority[ZL_SOL_KEY_SIZE],
                               const uint8_t mint_authority[ZL_SOL_KEY_SIZE], const char *name, const char *symbol,
                               const char *uri)
{
    /* sha256("spl_token_metadata_interface:initialize_account")[0..8] */
    static const uint8_t disc[8] = {0xd2, 0xe1, 0x1e, 0xa2, 0x58, 0xb8, 0x4d, 0x8d};
    if (strlen(name) + strlen(symbol) + strlen(uri) > ZL_SOL_METADATA_TEXT_MAX)
        return -1;
    begin(ix, program, -1);
    account(ix, mint, false, true); /* the metadata is in the mint */
    account(ix, update_authority, false, false);
    account(ix, mint, false, false);
    account(ix, mint_authority, true, false);
    memcpy(ix->data, disc, sizeof(disc));
    ix->data_len = sizeof(disc);
    borsh_str(ix, name);
    borsh_str(ix, symbol);
    borsh_str(ix, uri);
    return 0;
}

void zl_sol_ata_create_idempotent(struct zl_sol_ix *ix, const uint8_t payer[ZL_SOL_KEY_SIZE],
                                  const uint8_t ata[ZL_SOL_KEY_SIZE], const uint8_t wallet[ZL_SOL_KEY_SIZE],
                                  const uint8_t mint[ZL_SOL_KEY_SIZE], const uint8_t program[ZL_SOL_KEY_SIZE])
{
    uint8_t ata_program[ZL_SOL_KEY_SIZE], system[ZL_SOL_KEY_SIZE] = {0};
    int rc = zl_b58_decode_exact(ZL_SOL_ATA_PROGRAM, ata_program, sizeof(ata_program));
    (void)rc; /* a constant: tests decode it */
    begin(ix, ata_program, ATA_CREATE_IDEMPOTENT);
    account(ix, payer, true, true);
    account(ix, ata, false, true);
    account(ix, wallet, false, false);
    account(ix, mint, false, false);
    account(ix, system, false, false);
    account(ix, program, false, false);
}
