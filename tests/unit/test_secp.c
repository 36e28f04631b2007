/* The signer's address and key handling: a wrong address means the NFT
 * contract refuses our mints (no MINTER_ROLE) and funds go unwatched. */
#include "keccak.h"
#include "secp.h"
#include "zltest.h"

#include <strings.h>

ZT_TEST(test_address_of_anvil_key_0_matches_cast_wallet_address)
{
    struct zl_secp_key k;
    char err[128];
    ZT_REQUIRE(zl_secp_key_load(&k, "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80\n", err,
                                sizeof(err)) == 0);
    /* `cast wallet address --private-key <key 0>` */
    ZT_CHECK(strcasecmp(k.address_hex, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266") == 0);
    zl_secp_key_free(&k);
    ZT_REQUIRE(zl_secp_key_load(&k, "  59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d ", err,
                                sizeof(err)) == 0);
    ZT_CHECK(strcasecmp(k.address_hex, "0x70997970C51812dc3A010C7d01b50e0d17dc79C8") == 0);
    zl_secp_key_free(&k);
}

ZT_TEST(test_bad_keys_are_refused_without_echoing_them)
{
    struct zl_secp_key k;
    char err[256];
    ZT_EQ_INT(-1, zl_secp_key_load(&k, "0x1234", err, sizeof(err)));
    ZT_EQ_INT(-1, zl_secp_key_load(&k, "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80ff", err,
                                   sizeof(err)));
    ZT_CHECK(strstr(err, "ac0974") == NULL);
    ZT_EQ_INT(-1, zl_secp_key_load(&k, "0x0000000000000000000000000000000000000000000000000000000000000000", err,
                                   sizeof(err)));
    ZT_EQ_INT(-1, zl_secp_key_load(&k, "zz0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", err,
                                   sizeof(err)));
    /* above the curve order n */
    ZT_EQ_INT(-1, zl_secp_key_load(&k, "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364142", err,
                                   sizeof(err)));
}

ZT_TEST(test_signatures_recover_to_the_signer_and_are_deterministic)
{
    struct zl_secp_key k;
    char err[128];
    ZT_REQUIRE(zl_secp_key_load(&k, "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", err,
                                sizeof(err)) == 0);
    uint8_t d[32], r1[32], s1[32], r2[32], s2[32], addr[20];
    zl_keccak256("hello", 5, d);
    int rec1, rec2;
    ZT_REQUIRE(zl_secp_sign(&k, d, r1, s1, &rec1) == 0);
    ZT_REQUIRE(zl_secp_sign(&k, d, r2, s2, &rec2) == 0);
    ZT_CHECK(memcmp(r1, r2, 32) == 0 && memcmp(s1, s2, 32) == 0 && rec1 == rec2);
    ZT_CHECK(s1[0] < 0x80); /* low s (EIP-2) */
    ZT_REQUIRE(zl_secp_recover_address(&k, d, r1, s1, rec1, addr) == 0);
    ZT_CHECK(memcmp(addr, k.address, 20) == 0);
    zl_secp_key_free(&k);
    uint8_t zero[32] = {0};
    ZT_CHECK(memcmp(k.secret, zero, 32) == 0);
}

ZT_MAIN(test_address_of_anvil_key_0_matches_cast_wallet_address, test_bad_keys_are_refused_without_echoing_them,
        test_signatures_recover_to_the_signer_and_are_deterministic)
