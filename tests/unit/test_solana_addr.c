/* Derived Solana addresses (solana_addr.h) against vectors solders 0.29
 * gives (the SDK's Pubkey.create_with_seed, find_program_address and
 * get_associated_token_address); many more in tests/integration/
 * test_solana_tx.py. */
#include <string.h>

#include "base58.h"
#include "solana_addr.h"
#include "zltest.h"

static const char TOKEN[] = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";
static const char WALLET[] = "11111111111111111111111111111112";

static void key(const char *text, uint8_t out[32])
{
    ZT_REQUIRE(zl_b58_decode_exact(text, out, 32) == 0);
}

static void expect(const char *want, const uint8_t got[32])
{
    char text[ZL_B58_TEXT_MAX];
    ZT_REQUIRE(zl_b58_encode(got, 32, text, sizeof(text)) == 0);
    ZT_EQ_STR(want, text);
}

ZT_TEST(test_associated_token_account_is_the_sdks)
{
    uint8_t wallet[32], token[32], out[32];
    char err[128];
    key(WALLET, wallet);
    key(TOKEN, token);
    ZT_EQ_INT(0, zl_sol_associated_token_account(wallet, token, token, out, err, sizeof(err)));
    expect("ERvK2wZdxU1Mt7cctJxXqAAj5NAeveJy72cj3BcYwWit", out);
}

ZT_TEST(test_create_with_seed_and_program_address_are_the_sdks)
{
    uint8_t base[32], token[32], out[32], bump = 0;
    char err[128];
    key(WALLET, base);
    key(TOKEN, token);
    ZT_EQ_INT(0, zl_sol_create_with_seed(base, "zl-receipt-1", 12, token, out, err, sizeof(err)));
    expect("76AUdhjqBuD71GEfeiR463TBxtGK4DM91HSxDDtMBp19", out);
    const uint8_t *seeds[1] = {(const uint8_t *)"zeroloss"};
    const size_t lens[1] = {8};
    ZT_EQ_INT(0, zl_sol_find_program_address(seeds, lens, 1, token, out, &bump, err, sizeof(err)));
    expect("G3YXRQGmLqp7j85q3N1hjXDVuc4TFQkFUPgCvPVbzEKu", out);
    ZT_EQ_INT(255, bump);
    ZT_CHECK(!zl_sol_on_curve(out)); /* no private key can exist for it */
}

ZT_TEST(test_a_real_public_key_is_on_the_curve_and_limits_are_refused)
{
    uint8_t k[32], out[32];
    char err[128];
    key(TOKEN, k); /* a program id: an ordinary ed25519 public key */
    ZT_CHECK(zl_sol_on_curve(k));
    char seed[40];
    memset(seed, 'x', sizeof(seed));
    ZT_EQ_INT(-1, zl_sol_create_with_seed(k, seed, 33, k, out, err, sizeof(err)));
    uint8_t owner[32] = {0};
    memcpy(owner + 32 - 21, "ProgramDerivedAddress", 21);
    ZT_EQ_INT(-1, zl_sol_create_with_seed(k, seed, 4, owner, out, err, sizeof(err)));
}

ZT_MAIN(test_associated_token_account_is_the_sdks, test_create_with_seed_and_program_address_are_the_sdks,
        test_a_real_public_key_is_on_the_curve_and_limits_are_refused)
