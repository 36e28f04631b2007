/* secp.h: the signer's key: secp256k1 signatures with recovery id
 * (libsecp256k1's secp256k1_ecdsa_sign_recoverable, RFC 6979 nonces, low s),
 * and the Ethereum address derived from the key.
 *
 * The private key lives only inside struct zl_secp_key, is wiped by
 * zl_secp_key_free(), and is never formatted into any message.
 *
 * @locality a key is used by one thread at a time (the context is not
 * shared across threads by this module).
 */
#ifndef ZL_SECP_H
#define ZL_SECP_H

#include <stddef.h>
#include <stdint.h>

#include "hex.h"

struct zl_secp_key {
    void *ctx;                             /* secp256k1_context *, owned */
    uint8_t secret[32];                    /* never logged; wiped by zl_secp_key_free */
    uint8_t address[20];                   /* keccak256(uncompressed pubkey)[12..32) */
    char address_hex[ZL_ADDRESS_HEX_SIZE]; /* "0x" + 40 lowercase hex */
};

/* Loads a key from text: 64 hex digits, "0x" optional, surrounding
 * whitespace ignored (a key file's content). Returns 0, or -1 with errstr
 * (which never contains the text) when it is not a valid secp256k1 secret.
 * On -1 nothing stays allocated. */
int zl_secp_key_load(struct zl_secp_key *k, const char *text, char *errstr, size_t errstr_size);

/* Wipes the secret and frees the context. Safe on a zeroed struct. */
void zl_secp_key_free(struct zl_secp_key *k);

/* Signs a 32-byte digest: writes r (32 bytes big-endian), s (low-s) and the
 * recovery id (0 or 1). Returns 0, or -1 (libsecp256k1 refused: a bug). */
int zl_secp_sign(const struct zl_secp_key *k, const uint8_t digest[32], uint8_t r[32], uint8_t s[32],
                 int *recid);

/* Recovers the signer's address from a digest and (r, s, recid), for
 * checking a signature after making it. Returns 0, or -1. */
int zl_secp_recover_address(const struct zl_secp_key *k, const uint8_t digest[32], const uint8_t r[32],
                            const uint8_t s[32], int recid, uint8_t address[20]);

#endif /* ZL_SECP_H */
