/* solana_tx.h: Solana transactions built, serialized and signed in C, for
 * the Solana mint (issue 22; docs/architecture.md, "Solana").
 *
 * Wire format (legacy message, the one every Solana RPC accepts):
 *   transaction = compact-u16 n, n 64-byte ed25519 signatures, message
 *   message     = header (3 bytes: signatures required, read-only signed
 *                 accounts, read-only unsigned accounts), compact-u16 m and
 *                 m 32-byte account keys, 32-byte recent blockhash (or a
 *                 durable nonce's value), compact-u16 k instructions:
 *                 program id index (1 byte), compact-u16 and account
 *                 indexes (1 byte each), compact-u16 and data bytes.
 * Account keys are ordered as the Solana SDK orders them (its Message::new):
 * the fee payer first, then signed writable, signed read-only, unsigned
 * writable, unsigned read-only, each group by key bytes; a key named twice
 * gets the union of its flags; a program id is an unsigned read-only key.
 * So the bytes equal the SDK's for the same instructions, which a test
 * checks against solders (tests/integration/test_solana_tx.py).
 *
 * Signatures are ed25519 over the message bytes (libsodium). A keypair is
 * made from its 32-byte seed, the first half of a Solana keypair file.
 *
 * Bounds: ZL_SOL_KEYS_MAX account keys, ZL_SOL_IX_MAX instructions,
 * ZL_SOL_IX_ACCOUNTS_MAX accounts and ZL_SOL_IX_DATA_MAX data bytes per
 * instruction, ZL_SOL_TX_MAX bytes of transaction (the network's packet
 * limit). Anything over a bound is refused with a reason, never cut.
 *
 * Ownership: the caller owns every buffer; nothing is allocated.
 * @locality any thread: pure functions over their arguments (libsodium is
 * initialised once, thread-safely, by zl_sol_keypair).
 */
#ifndef ZL_SOLANA_TX_H
#define ZL_SOLANA_TX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZL_SOL_KEY_SIZE 32
#define ZL_SOL_SIG_SIZE 64
/* A Solana transaction's largest size on the wire: 1280 (IPv6 MTU) - 48. */
#define ZL_SOL_TX_MAX 1232
#define ZL_SOL_KEYS_MAX 32
#define ZL_SOL_IX_MAX 16
#define ZL_SOL_IX_ACCOUNTS_MAX 16
#define ZL_SOL_IX_DATA_MAX 512

struct zl_sol_keypair {
    uint8_t pub[ZL_SOL_KEY_SIZE];
    uint8_t secret[64]; /* libsodium's: seed then public key */
};

struct zl_sol_account {
    uint8_t key[ZL_SOL_KEY_SIZE];
    bool signer;
    bool writable;
};

/* One instruction, self-contained (about 1.1 KiB). */
struct zl_sol_ix {
    uint8_t program[ZL_SOL_KEY_SIZE];
    struct zl_sol_account accounts[ZL_SOL_IX_ACCOUNTS_MAX];
    size_t naccounts;
    uint8_t data[ZL_SOL_IX_DATA_MAX];
    size_t data_len;
};

/* A compiled message: its bytes and the keys that must sign it, in the
 * order their signatures go. */
struct zl_sol_message {
    uint8_t bytes[ZL_SOL_TX_MAX];
    size_t len;
    uint8_t signers[ZL_SOL_KEYS_MAX][ZL_SOL_KEY_SIZE];
    size_t nsigners;
};

/* Building an instruction, for the program builders (solana_system.c,
 * solana_token.c): begin sets the program and empties accounts and data;
 * the others append. Each builder appends a fixed, small number of
 * accounts and bytes, so the bounds are asserted, not returned. */
void zl_sol_ix_begin(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE]);
void zl_sol_ix_account(struct zl_sol_ix *ix, const uint8_t key[ZL_SOL_KEY_SIZE], bool signer, bool writable);
void zl_sol_ix_put(struct zl_sol_ix *ix, const void *p, size_t n);
void zl_sol_ix_u64(struct zl_sol_ix *ix, uint64_t v); /* little-endian */

/* A well-known key (a program id, a sysvar) from its base58 constant.
 * Asserts it decodes: a constant that does not is a bug here. */
void zl_sol_known_key(const char *b58, uint8_t out[ZL_SOL_KEY_SIZE]);

/* compact-u16 (1-3 bytes, 7 bits each, low first). Encode writes into out
 * (3 bytes room) and returns the bytes written. Decode returns the bytes
 * read, or 0 when in[0..len) is not a canonical compact-u16 (too short, a
 * fourth byte, a non-minimal form, a value over 0xffff). */
size_t zl_sol_compact_u16_encode(uint16_t v, uint8_t out[3]);
size_t zl_sol_compact_u16_decode(const uint8_t *in, size_t len, uint16_t *v);

/* The keypair of a 32-byte seed. Returns 0, or -1 when libsodium cannot be
 * initialised. */
int zl_sol_keypair(const uint8_t seed[32], struct zl_sol_keypair *kp);

/* Compiles ixs[0..nix) with payer paying fees and blockhash as the recent
 * blockhash into m. Returns 0, or -1 with err when a bound is exceeded. */
int zl_sol_compile(const uint8_t payer[ZL_SOL_KEY_SIZE], const struct zl_sol_ix *ixs, size_t nix,
                   const uint8_t blockhash[ZL_SOL_KEY_SIZE], struct zl_sol_message *m, char *err, size_t err_size);

/* Signs m with keys[0..nkeys) (each signer of m must be among them) and
 * writes the transaction into out[0..*out_len); sig0 (may be NULL) gets the
 * first signature, which is the transaction's id. Returns 0, or -1 with err
 * when a signer's key is missing or out is too small. */
int zl_sol_sign(const struct zl_sol_message *m, const struct zl_sol_keypair *keys, size_t nkeys, uint8_t *out,
                size_t out_size, size_t *out_len, uint8_t sig0[ZL_SOL_SIG_SIZE], char *err, size_t err_size);

#endif /* ZL_SOLANA_TX_H */
