/* base58.h: Bitcoin-alphabet base58, the text form of Solana's public keys,
 * signatures and blockhashes (docs/architecture.md, "Solana").
 *
 * Leading zero bytes are written as leading '1's and read back the same way,
 * so a 32-byte key always round-trips to exactly 32 bytes.
 *
 * Sizes are bounded: ZL_B58_BYTES_MAX bytes in, ZL_B58_TEXT_MAX characters
 * out (a 64-byte signature is at most 88 characters). Anything longer is
 * refused, never truncated.
 *
 * @locality any thread: pure functions over their arguments.
 */
#ifndef ZL_BASE58_H
#define ZL_BASE58_H

#include <stddef.h>
#include <stdint.h>

/* Bytes one value may have: a signature. */
#define ZL_B58_BYTES_MAX 64
/* Characters of the longest encoding (64 bytes -> at most 88), NUL included. */
#define ZL_B58_TEXT_MAX 90

/* Writes in[0..len) as base58 text into out (NUL-terminated). Returns 0, or
 * -1 when len > ZL_B58_BYTES_MAX or out_size is too small (out is then ""). */
int zl_b58_encode(const uint8_t *in, size_t len, char *out, size_t out_size);

/* Reads NUL-terminated base58 text into out[0..*out_len). Returns 0, or -1
 * when the text is empty, has a character outside the alphabet, or decodes
 * to more than out_size bytes (nothing is then promised about out). */
int zl_b58_decode(const char *text, uint8_t *out, size_t out_size, size_t *out_len);

/* zl_b58_decode that must give exactly want bytes (a key: 32, a signature:
 * 64). Returns 0 or -1. */
int zl_b58_decode_exact(const char *text, uint8_t *out, size_t want);

#endif /* ZL_BASE58_H */
