/* hex.h: the one hex codec. Every hex digit zeroloss reads (JSON-RPC
 * quantities, hashes, addresses, raw transactions, signer keys) and every
 * byte it writes as hex goes through here.
 *
 * Input accepts either case; output is always lowercase, as EVM nodes write
 * it and as zeroloss stores it (envelopes, database rows). Nothing here
 * allocates; every function is pure and safe from any thread.
 */
#ifndef ZL_HEX_H
#define ZL_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Characters of the "0x" prefix. */
#define ZL_HEX_PREFIX_LEN 2

/* Bytes a "0x"-prefixed, NUL-terminated hex text of n bytes needs. */
#define ZL_HEX_SIZE(n) (ZL_HEX_PREFIX_LEN + 2 * (n) + 1)

/* The chain's two fixed-size hex texts, as nodes send them and zeroloss
 * stores them: "0x" + lowercase digits + NUL. A 32-byte hash (transaction,
 * block, log topic, keccak, an ABI word) takes 67 bytes, a 20-byte address
 * 43. Every buffer holding one is declared with these, so a reader sees the
 * concept, not a count to re-derive. */
#define ZL_HASH_HEX_DIGITS 64
#define ZL_HASH_HEX_SIZE ZL_HEX_SIZE(32)
#define ZL_ADDRESS_HEX_DIGITS 40
#define ZL_ADDRESS_HEX_SIZE ZL_HEX_SIZE(20)

/* The value (0..15) of hex digit c ('0'-'9', 'a'-'f', 'A'-'F'), -1 for any
 * other character, NUL included. c is a char's value as unsigned char or an
 * int read with getc-like functions; negative values give -1. */
int zl_hex_digit(int c);

/* True when s starts with "0x" or "0X". s must be a NUL-terminated text. */
bool zl_hex_has_prefix(const char *s);

/* Decodes hex (a "0x" prefix optional; an even number of digits, either
 * case; "" and "0x" are zero bytes) into out, which holds out_size bytes.
 * Returns 0 with *len_out = the bytes written; -1 when hex holds a non-digit
 * or an odd number of digits, or needs more than out_size bytes. On -1, out
 * may hold a partial decode and *len_out is untouched. */
int zl_hex_decode(const char *hex, uint8_t *out, size_t out_size, size_t *len_out);

/* Writes "0x" + lowercase hex of data[0..len) + NUL into out. Returns 0, or
 * -1 (out set to "" when out_size > 0) when out_size < ZL_HEX_SIZE(len). */
int zl_hex_encode(const uint8_t *data, size_t len, char *out, size_t out_size);

/* zl_hex_encode without the "0x": lowercase hex + NUL, 2 * len + 1 bytes
 * (trace ids, SHA-256 checksums). Returns 0, or -1 (out set to "" when
 * out_size > 0) when out_size is smaller. */
int zl_hex_encode_bare(const uint8_t *data, size_t len, char *out, size_t out_size);

#endif /* ZL_HEX_H */
