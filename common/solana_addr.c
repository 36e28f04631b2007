/* solana_addr.c: derived Solana addresses (solana_addr.h). */
#include <gmp.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <string.h>

#include "solana_addr.h"

static const char PDA_MARKER[] = "ProgramDerivedAddress";
#define PDA_MARKER_LEN (sizeof(PDA_MARKER) - 1)
/* ed25519's d (RFC 8032, section 5.1). */
#define ED25519_D "37095705934669439343138083508754565189542113879843219016388785533085940283555"

bool zl_sol_on_curve(const uint8_t key[ZL_SOL_KEY_SIZE])
{
    mpz_t p, d, y, u, v, t;
    mpz_inits(p, d, y, u, v, t, NULL);
    mpz_ui_pow_ui(p, 2, 255);
    mpz_sub_ui(p, p, 19);
    /* d = -121665 / 121666 mod p, written out: a program address tries up
     * to 256 bumps, and an inversion each time would be most of the work. */
    mpz_set_str(d, ED25519_D, 10);
    uint8_t be[ZL_SOL_KEY_SIZE]; /* GMP reads big-endian here; the key is little-endian */
    for (size_t i = 0; i < ZL_SOL_KEY_SIZE; i++)
        be[i] = key[ZL_SOL_KEY_SIZE - 1 - i];
    be[0] &= 0x7f; /* the sign bit of x is not part of y */
    mpz_import(y, ZL_SOL_KEY_SIZE, 1, 1, 1, 0, be);
    mpz_mod(y, y, p);
    mpz_mul(t, y, y);
    mpz_mod(t, t, p);       /* y^2 */
    mpz_sub_ui(u, t, 1);    /* y^2 - 1 */
    mpz_mul(v, d, t);
    mpz_add_ui(v, v, 1);    /* d y^2 + 1, never 0: d is not a square */
    mpz_mul(t, u, v);
    mpz_mod(t, t, p);       /* u/v is a square iff u*v is */
    bool on = mpz_legendre(t, p) >= 0;
    mpz_clears(p, d, y, u, v, t, NULL);
    return on;
}

int zl_sol_create_with_seed(const uint8_t base[ZL_SOL_KEY_SIZE], const char *seed, size_t seed_len,
                            const uint8_t owner[ZL_SOL_KEY_SIZE], uint8_t out[ZL_SOL_KEY_SIZE], char *err,
                            size_t err_size)
{
    if (seed_len > ZL_SOL_SEED_MAX) {
        snprintf(err, err_size, "seed of %zu bytes, at most %d", seed_len, ZL_SOL_SEED_MAX);
        return -1;
    }
    if (memcmp(owner + ZL_SOL_KEY_SIZE - PDA_MARKER_LEN, PDA_MARKER, PDA_MARKER_LEN) == 0) {
        snprintf(err, err_size, "owner ends with the program-address marker (the runtime's IllegalOwner)");
        return -1;
    }
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, ZL_SOL_KEY_SIZE, base);
    sha256_update(&c, seed_len, (const uint8_t *)seed);
    sha256_update(&c, ZL_SOL_KEY_SIZE, owner);
    sha256_digest(&c, ZL_SOL_KEY_SIZE, out);
    return 0;
}

int zl_sol_find_program_address(const uint8_t *const *seeds, const size_t *seed_lens, size_t n,
                                const uint8_t program[ZL_SOL_KEY_SIZE], uint8_t out[ZL_SOL_KEY_SIZE],
                                uint8_t *bump, char *err, size_t err_size)
{
    /* The bump is one more seed: at most ZL_SOL_SEEDS_MAX in all. */
    if (n >= ZL_SOL_SEEDS_MAX) {
        snprintf(err, err_size, "%zu seeds, at most %d besides the bump", n, ZL_SOL_SEEDS_MAX - 1);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (seed_lens[i] > ZL_SOL_SEED_MAX) {
            snprintf(err, err_size, "seed %zu of %zu bytes, at most %d", i, seed_lens[i], ZL_SOL_SEED_MAX);
            return -1;
        }
    }
    for (int b = 255; b >= 0; b--) {
        uint8_t bb = (uint8_t)b;
        struct sha256_ctx c;
        sha256_init(&c);
        for (size_t i = 0; i < n; i++)
            sha256_update(&c, seed_lens[i], seeds[i]);
        sha256_update(&c, 1, &bb);
        sha256_update(&c, ZL_SOL_KEY_SIZE, program);
        sha256_update(&c, PDA_MARKER_LEN, (const uint8_t *)PDA_MARKER);
        sha256_digest(&c, ZL_SOL_KEY_SIZE, out);
        if (!zl_sol_on_curve(out)) {
            *bump = bb;
            return 0;
        }
    }
    snprintf(err, err_size, "no bump gives an address off the curve");
    return -1;
}

int zl_sol_associated_token_account(const uint8_t wallet[ZL_SOL_KEY_SIZE], const uint8_t mint[ZL_SOL_KEY_SIZE],
                                    const uint8_t token_program[ZL_SOL_KEY_SIZE], uint8_t out[ZL_SOL_KEY_SIZE],
                                    char *err, size_t err_size)
{
    uint8_t ata[ZL_SOL_KEY_SIZE], bump;
    zl_sol_known_key(ZL_SOL_ATA_PROGRAM, ata);
    const uint8_t *seeds[3] = {wallet, token_program, mint};
    const size_t lens[3] = {ZL_SOL_KEY_SIZE, ZL_SOL_KEY_SIZE, ZL_SOL_KEY_SIZE};
    return zl_sol_find_program_address(seeds, lens, 3, ata, out, &bump, err, err_size);
}
