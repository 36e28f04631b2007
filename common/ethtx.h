/* ethtx.h: Ethereum transactions built and signed in C: EIP-1559 (type 2)
 * and EIP-155 legacy, their hashes, and the ABI calls the mint stage makes
 * (mint(address,uint256,string), mintBatch, ownerOf).
 *
 * Everything here is pure: no I/O, no allocation, caller-owned buffers. The
 * signed bytes are checked after signing (decoded back field by field and the
 * signature recovered to the key's address) before anyone may store or
 * broadcast them: TigerStyle's assertion on both sides of a boundary.
 * tests/unit/test_ethtx.c compares our bytes with `cast mktx` for the same
 * inputs.
 *
 * @locality any thread (the key's context is used by one thread at a time).
 */
#ifndef ZL_ETHTX_H
#define ZL_ETHTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hex.h"
#include "secp.h"

/* Largest calldata we build: a mintBatch of ZL_MINT_BATCH_MAX (100)
 * deposits with 140-byte URIs is ~36 KiB; the bound keeps a bad batch size
 * from building a tx no node accepts (geth's limit is 128 KiB). */
#define ZL_TX_DATA_MAX (64 * 1024)
/* Header, fields and signature around the calldata. */
#define ZL_TX_RAW_MAX (ZL_TX_DATA_MAX + 256)

typedef enum zl_tx_type {
    ZL_TX_LEGACY = 0,  /* EIP-155 replay-protected legacy: chains without a base fee */
    ZL_TX_EIP1559 = 2, /* dynamic fee */
} zl_tx_type;

/* What to sign. Fees are wei per gas in 64 bits: 18.4 ETH per gas is far
 * above any cap we allow. */
struct zl_tx {
    zl_tx_type type;
    uint64_t chain_id;
    uint64_t nonce;
    uint64_t max_priority_fee_wei; /* type 2 only */
    uint64_t max_fee_wei;          /* type 2: max fee per gas; legacy: gas price */
    uint64_t gas_limit;
    uint8_t to[20];
    uint64_t value_wei;
    const uint8_t *data;           /* borrowed; may be NULL when data_len is 0 */
    size_t data_len;               /* <= ZL_TX_DATA_MAX */
};

/* A signed transaction: the bytes eth_sendRawTransaction takes, and their
 * hash (keccak256 of exactly those bytes). */
struct zl_signed_tx {
    uint8_t raw[ZL_TX_RAW_MAX];
    size_t raw_len;
    char hash[ZL_HASH_HEX_SIZE]; /* "0x" + 64 lowercase hex */
};

/* Signs tx with k. Returns 0 with *out filled and checked (decodes back to
 * tx, signature recovers to k's address), or -1 with errstr (bad type, data
 * too long, or a failed self-check, which is a bug). */
int zl_tx_sign(const struct zl_tx *tx, const struct zl_secp_key *k, struct zl_signed_tx *out, char *errstr,
               size_t errstr_size);

/* A decoded signed transaction; data points into the raw bytes given. */
struct zl_tx_decoded {
    struct zl_tx tx;
    uint8_t r[32], s[32];
    uint64_t v;                    /* type 2: y parity (0/1); legacy: EIP-155 v */
};

/* Decodes raw bytes of a type-2 or EIP-155 legacy transaction (strict RLP,
 * exactly the fields, empty access list, a recipient). Returns 0, or -1 with
 * errstr. Input from anywhere: fuzzed. */
int zl_tx_decode(const uint8_t *raw, size_t len, struct zl_tx_decoded *out, char *errstr, size_t errstr_size);

/* The digest that was signed, for a decoded tx (for recovery checks). */
int zl_tx_signing_hash(const struct zl_tx *tx, uint8_t digest[32], char *errstr, size_t errstr_size);

/* Parses a "0x" + 40 hex address. Returns 0 or -1. */
int zl_tx_parse_address(const char *hex, uint8_t out[20]);

/* Calldata of mint(address to, uint256 id, string uri). Returns 0 with
 * *len_out, or -1 when it does not fit in out_size. */
int zl_abi_mint(const uint8_t to[20], const uint8_t id[32], const char *uri, uint8_t *out, size_t out_size,
                size_t *len_out);

/* Calldata of mintBatch(address[] to, uint256[] ids, string[] uris) for n
 * receipts. Returns 0 with *len_out, or -1 when it does not fit. */
int zl_abi_mint_batch(size_t n, const uint8_t (*to)[20], const uint8_t (*ids)[32], const char *const *uris,
                      uint8_t *out, size_t out_size, size_t *len_out);

/* Calldata of ownerOf(uint256 id): 36 bytes. */
void zl_abi_owner_of(const uint8_t id[32], uint8_t out[36]);

/* Reads an ABI-encoded address return value (a 32-byte word, hex as an
 * eth_call returns it) into "0x" + 40 lowercase hex. Returns 0, or -1 when
 * it is not one word with 12 zero bytes first. */
int zl_abi_decode_address(const char *hex, char out[ZL_ADDRESS_HEX_SIZE]);

/* The 4-byte selector of a Solidity signature, e.g. "ownerOf(uint256)". */
void zl_abi_selector(const char *signature, uint8_t out[4]);

/* OpenZeppelin's ERC721InvalidSender(address(0)) as revert data: selector
 * 0x73c6ac6e and the zero address. */
#define ZL_ABI_TOKEN_EXISTS_REVERT "0x73c6ac6e0000000000000000000000000000000000000000000000000000000000000000"

/* Revert data (hex from a JSON-RPC error's data) is OpenZeppelin's
 * ERC721InvalidSender(address(0)): what ZLReceipt.mint raises for a token id
 * that already exists. */
bool zl_abi_is_token_exists_revert(const char *data_hex);

#endif /* ZL_ETHTX_H */
