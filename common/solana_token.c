/* solana_token.c: SPL Token and Associated Token Account instructions
 * (solana_token.h). */
#include <string.h>

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

/* Starts ix for program with its one-byte instruction tag. */
static void begin(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE], uint8_t tag)
{
    zl_sol_ix_begin(ix, program);
    zl_sol_ix_put(ix, &tag, 1);
}

static void byte(struct zl_sol_ix *ix, uint8_t b)
{
    zl_sol_ix_put(ix, &b, 1);
}

/* COption<Pubkey> as the token program packs it in instructions. */
static void opt_key(struct zl_sol_ix *ix, const uint8_t *key)
{
    byte(ix, key != NULL ? 1 : 0);
    if (key != NULL)
        zl_sol_ix_put(ix, key, ZL_SOL_KEY_SIZE);
}

void zl_sol_tok_initialize_mint2(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE],
                                 const uint8_t mint[ZL_SOL_KEY_SIZE], uint8_t decimals,
                                 const uint8_t mint_authority[ZL_SOL_KEY_SIZE], const uint8_t *freeze)
{
    begin(ix, program, TOK_INITIALIZE_MINT2);
    zl_sol_ix_account(ix, mint, false, true);
    byte(ix, decimals);
    zl_sol_ix_put(ix, mint_authority, ZL_SOL_KEY_SIZE);
    opt_key(ix, freeze);
}

void zl_sol_tok_mint_to(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE],
                        const uint8_t mint[ZL_SOL_KEY_SIZE], const uint8_t dest[ZL_SOL_KEY_SIZE],
                        const uint8_t authority[ZL_SOL_KEY_SIZE], uint64_t amount)
{
    begin(ix, program, TOK_MINT_TO);
    zl_sol_ix_account(ix, mint, false, true);
    zl_sol_ix_account(ix, dest, false, true);
    zl_sol_ix_account(ix, authority, true, false);
    zl_sol_ix_u64(ix, amount);
}

void zl_sol_tok_transfer_checked(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE],
                                 const uint8_t source[ZL_SOL_KEY_SIZE], const uint8_t mint[ZL_SOL_KEY_SIZE],
                                 const uint8_t dest[ZL_SOL_KEY_SIZE], const uint8_t owner[ZL_SOL_KEY_SIZE],
                                 uint64_t amount, uint8_t decimals)
{
    begin(ix, program, TOK_TRANSFER_CHECKED);
    zl_sol_ix_account(ix, source, false, true);
    zl_sol_ix_account(ix, mint, false, false);
    zl_sol_ix_account(ix, dest, false, true);
    zl_sol_ix_account(ix, owner, true, false);
    zl_sol_ix_u64(ix, amount);
    byte(ix, decimals);
}

void zl_sol_tok_transfer(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE],
                         const uint8_t source[ZL_SOL_KEY_SIZE], const uint8_t dest[ZL_SOL_KEY_SIZE],
                         const uint8_t owner[ZL_SOL_KEY_SIZE], uint64_t amount)
{
    begin(ix, program, TOK_TRANSFER);
    zl_sol_ix_account(ix, source, false, true);
    zl_sol_ix_account(ix, dest, false, true);
    zl_sol_ix_account(ix, owner, true, false);
    zl_sol_ix_u64(ix, amount);
}

void zl_sol_tok_set_mint_authority(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE],
                                   const uint8_t mint[ZL_SOL_KEY_SIZE], const uint8_t current[ZL_SOL_KEY_SIZE],
                                   const uint8_t *new_authority)
{
    begin(ix, program, TOK_SET_AUTHORITY);
    zl_sol_ix_account(ix, mint, false, true);
    zl_sol_ix_account(ix, current, true, false);
    byte(ix, AUTHORITY_MINT_TOKENS);
    opt_key(ix, new_authority);
}

void zl_sol_tok22_metadata_pointer(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE],
                                   const uint8_t mint[ZL_SOL_KEY_SIZE], const uint8_t *authority,
                                   const uint8_t metadata[ZL_SOL_KEY_SIZE])
{
    static const uint8_t none[ZL_SOL_KEY_SIZE] = {0}; /* OptionalNonZeroPubkey: zeros are None */
    begin(ix, program, TOK22_METADATA_POINTER);
    zl_sol_ix_account(ix, mint, false, true);
    byte(ix, POINTER_INITIALIZE);
    zl_sol_ix_put(ix, authority != NULL ? authority : none, ZL_SOL_KEY_SIZE);
    zl_sol_ix_put(ix, metadata, ZL_SOL_KEY_SIZE);
}

/* A borsh string: u32 little-endian length, then the bytes. */
static void borsh_str(struct zl_sol_ix *ix, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    for (int i = 0; i < 4; i++)
        byte(ix, (uint8_t)(n >> (8 * i)));
    zl_sol_ix_put(ix, s, n);
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
    zl_sol_ix_begin(ix, program); /* an interface instruction: its 8-byte discriminator, no tag */
    zl_sol_ix_account(ix, mint, false, true); /* the metadata is in the mint */
    zl_sol_ix_account(ix, update_authority, false, false);
    zl_sol_ix_account(ix, mint, false, false);
    zl_sol_ix_account(ix, mint_authority, true, false);
    zl_sol_ix_put(ix, disc, sizeof(disc));
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
    zl_sol_known_key(ZL_SOL_ATA_PROGRAM, ata_program);
    begin(ix, ata_program, ATA_CREATE_IDEMPOTENT);
    zl_sol_ix_account(ix, payer, true, true);
    zl_sol_ix_account(ix, ata, false, true);
    zl_sol_ix_account(ix, wallet, false, false);
    zl_sol_ix_account(ix, mint, false, false);
    zl_sol_ix_account(ix, system, false, false);
    zl_sol_ix_account(ix, program, false, false);
}
