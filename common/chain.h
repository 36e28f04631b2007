/* chain.h: what zeroloss reads from an EVM chain: ERC-20 Transfer logs,
 * receipts, hex quantities and uint256 amounts, plus the chain settings
 * (RPC endpoints, token, confirmations) shared by detect and verify.
 *
 * Everything here parses input from RPC endpoints, which are not trusted:
 * every function checks lengths and formats and fails with -1 and errstr
 * rather than reading past a buffer. Outputs are fixed-size buffers owned by
 * the caller; nothing allocates except where it says so.
 * @locality any thread (pure functions over their arguments).
 */
#ifndef ZL_CHAIN_H
#define ZL_CHAIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "hex.h"
#include "rpc.h"
#include "tokens.h"
#include "zl.h"

/* keccak256("Transfer(address,address,uint256)") */
#define ZL_TRANSFER_TOPIC0 "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"

/* One decoded ERC-20 Transfer log. Addresses and hashes are lower-case
 * 0x-hex; amount is the canonical decimal of the uint256 value. */
struct zl_transfer_log {
    char token[ZL_ADDRESS_HEX_SIZE]; /* the log's emitting contract */
    char from[ZL_ADDRESS_HEX_SIZE];
    char to[ZL_ADDRESS_HEX_SIZE];
    char amount[ZL_UINT256_DEC_SIZE];
    char tx_hash[ZL_HASH_HEX_SIZE];
    char block_hash[ZL_HASH_HEX_SIZE];
    uint64_t block_number;
    uint32_t log_index;
    bool removed;                    /* eth_getLogs' "removed": true after a reorg */
};

/* Decodes a log object as eth_getLogs and receipts return it. Returns 0, or
 * -1 with errstr naming the bad field when it is not a well-formed Transfer
 * (topic0, three topics, 32-byte data, hex fields). Fields a receipt's logs
 * lack are never missing in practice; a missing one is an error. */
int zl_chain_parse_transfer_log(const json_t *log, struct zl_transfer_log *out, char *errstr, size_t errstr_size);

/* Converts a 0x-prefixed hex number of at most 64 digits (a uint256) into its
 * canonical decimal string (no leading zeros; "0" for zero). out_size >= 79
 * always suffices. Returns 0, or -1 for a bad digit, more than 64 digits or
 * a too-small buffer. */
int zl_uint256_hex_to_dec(const char *hex, char *out, size_t out_size);

/* Compares two canonical decimal strings as numbers: <0, 0, >0. */
int zl_dec_cmp(const char *a, const char *b);

/* Copies a 0x-hex string of exactly hex_digits digits lower-cased into out
 * (out_size >= hex_digits + 3). Returns 0, or -1 when s is not that. */
int zl_hex_lower(const char *s, size_t hex_digits, char *out, size_t out_size);

/* A 20-byte address as a 32-byte log topic: 0x + 24 zeros + 40 hex. out must
 * hold 67 bytes. Returns -1 when addr is not an address. */
int zl_address_topic(const char *addr, char *out, size_t out_size);

/* Reads a JSON string field that must be 0x-hex of hex_digits digits into out,
 * lower-cased; -1 when absent or malformed. */
int zl_json_hex_field(const json_t *obj, const char *key, size_t hex_digits, char *out, size_t out_size);

/* Reads a JSON quantity field ("0x1a") into *out; -1 when absent or bad. */
int zl_json_quantity_field(const json_t *obj, const char *key, uint64_t *out);

/* ---- settings shared by detect and verify ---- */

struct zl_chain_config {
    int64_t chain_id;
    char *rpc_urls;
    int64_t rpc_timeout_ms;
    int64_t rpc_hedge_ms;
    int64_t rpc_quorum;
    int64_t rpc_breaker_min_calls;
    int64_t rpc_breaker_break_ms;
    bool rpc_allow_http;
    char *token_address; /* ZL_TOKEN_ADDRESS: the single-token form */
    char *tokens;        /* ZL_TOKENS: the list (tokens.h) */
};

extern const struct zl_setting zl_chain_settings[];
extern const size_t zl_chain_settings_count;

/* Fills opts from cfg (urls and name borrowed from cfg / the literal "rpc").
 * metrics and health may be NULL. */
void zl_chain_rpc_opts(const struct zl_chain_config *cfg, struct zl_metrics *metrics, struct zl_health *health,
                       struct zl_rpc_opts *opts);

/* The deposit tokens (tokens.h) from ZL_TOKENS or ZL_TOKEN_ADDRESS, entries
 * without a minimum taking default_min (NULL: "1"). Returns 0, or -1 with
 * errstr when the settings are wrong or name no token at all. */
int zl_chain_tokens(const struct zl_chain_config *cfg, const char *default_min, struct zl_tokens *out, char *errstr,
                    size_t errstr_size);

/* Reads decimals() of an ERC-20 token with eth_call. Returns ZL_OK with
 * *decimals set, ZL_PERMANENT when the call reverts or its answer is not a
 * uint8 (not an ERC-20), or the rpc class with errstr. */
zl_class zl_chain_token_decimals(struct zl_rpc *rpc, const char *token, int *decimals, char *errstr,
                                 size_t errstr_size);

#endif /* ZL_CHAIN_H */
