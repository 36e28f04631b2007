/* keccak.h: Keccak-256 as Ethereum uses it (original Keccak padding 0x01,
 * not NIST SHA3-256's 0x06), built on nettle's sha3_permute.
 *
 * Pure functions, no allocation, any thread.
 */
#ifndef ZL_KECCAK_H
#define ZL_KECCAK_H

#include <stddef.h>
#include <stdint.h>

#include "hex.h"
#include "zl.h"

#define ZL_KECCAK256_SIZE 32

/* Writes keccak256(data[0..len)) into out. */
void zl_keccak256(const void *data, size_t len, uint8_t out[ZL_KECCAK256_SIZE]);

/* Writes "0x" + 64 lowercase hex digits of keccak256(data) into out (67
 * bytes with the NUL). */
void zl_keccak256_hex(const void *data, size_t len, char out[ZL_HASH_HEX_SIZE]);

/* The NFT token id of a deposit: uint256(keccak256(deposit_id)), as a
 * decimal string (at most 78 digits) in out. Returns 0, or -1 when out_size
 * is below ZL_UINT256_DEC_DIGITS_MAX + 1 (79). */
int zl_token_id_decimal(const char *deposit_id, char *out, size_t out_size);

#endif /* ZL_KECCAK_H */
