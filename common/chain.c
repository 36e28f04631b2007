/* chain.c: parsing what EVM JSON-RPC endpoints return (see chain.h). */
#include "chain.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "hex.h"

int zl_hex_lower(const char *s, size_t hex_digits, char *out, size_t out_size)
{
    if (s == NULL || out_size < hex_digits + 3 || !zl_hex_has_prefix(s))
        return -1;
    if (strlen(s) != hex_digits + 2)
        return -1;
    out[0] = '0';
    out[1] = 'x';
    for (size_t i = 0; i < hex_digits; i++) {
        int c = (unsigned char)s[2 + i];
        if (zl_hex_digit(c) < 0)
            return -1;
        out[2 + i] = (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
    }
    out[hex_digits + 2] = '\0';
    return 0;
}

int zl_address_topic(const char *addr, char *out, size_t out_size)
{
    char a[ZL_ADDRESS_HEX_SIZE];
    if (out_size < ZL_HASH_HEX_SIZE || zl_hex_lower(addr, ZL_ADDRESS_HEX_DIGITS, a, sizeof(a)) != 0)
        return -1;
    snprintf(out, out_size, "0x000000000000000000000000%s", a + 2);
    return 0;
}

/* Base 1e9 limbs, least significant first: 9 limbs hold 81 digits, more than
 * the 78 of 2^256 - 1. */
#define DEC_LIMBS 9
#define DEC_BASE 1000000000u

int zl_uint256_hex_to_dec(const char *hex, char *out, size_t out_size)
{
    if (hex == NULL || !zl_hex_has_prefix(hex))
        return -1;
    const char *p = hex + 2;
    size_t n = strlen(p);
    if (n == 0 || n > 64)
        return -1;
    uint32_t limbs[DEC_LIMBS] = {0};
    for (size_t i = 0; i < n; i++) {
        int d = zl_hex_digit((unsigned char)p[i]);
        if (d < 0)
            return -1;
        uint64_t carry = (uint64_t)d;
        for (int k = 0; k < DEC_LIMBS; k++) {
            uint64_t v = (uint64_t)limbs[k] * 16u + carry;
            limbs[k] = (uint32_t)(v % DEC_BASE);
            carry = v / DEC_BASE;
        }
    }
    int top = DEC_LIMBS - 1;
    while (top > 0 && limbs[top] == 0)
        top--;
    char buf[DEC_LIMBS * 9 + 1];
    int off = snprintf(buf, sizeof(buf), "%u", limbs[top]);
    for (int k = top - 1; k >= 0; k--)
        off += snprintf(buf + off, sizeof(buf) - (size_t)off, "%09u", limbs[k]);
    if ((size_t)off + 1 > out_size)
        return -1;
    memcpy(out, buf, (size_t)off + 1);
    return 0;
}

int zl_dec_cmp(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return la < lb ? -1 : 1;
    return strcmp(a, b);
}

int zl_json_hex_field(const json_t *obj, const char *key, size_t hex_digits, char *out, size_t out_size)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        return -1;
    return zl_hex_lower(json_string_value(v), hex_digits, out, out_size);
}

int zl_json_quantity_field(const json_t *obj, const char *key, uint64_t *out)
{
    return zl_rpc_parse_quantity(json_object_get(obj, key), out);
}

int zl_chain_parse_transfer_log(const json_t *log, struct zl_transfer_log *out, char *errstr, size_t errstr_size)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(log)) {
        snprintf(errstr, errstr_size, "log: not a JSON object");
        return -1;
    }
    const json_t *topics = json_object_get(log, "topics");
    if (!json_is_array(topics) || json_array_size(topics) != 3) {
        snprintf(errstr, errstr_size, "log: topics must be an array of 3 (Transfer with indexed from, to)");
        return -1;
    }
    char t0[ZL_HASH_HEX_SIZE], t1[ZL_HASH_HEX_SIZE], t2[ZL_HASH_HEX_SIZE];
    if (zl_hex_lower(json_string_value(json_array_get(topics, 0)), ZL_HASH_HEX_DIGITS, t0, sizeof(t0)) != 0 ||
        zl_hex_lower(json_string_value(json_array_get(topics, 1)), ZL_HASH_HEX_DIGITS, t1, sizeof(t1)) != 0 ||
        zl_hex_lower(json_string_value(json_array_get(topics, 2)), ZL_HASH_HEX_DIGITS, t2, sizeof(t2)) != 0) {
        snprintf(errstr, errstr_size, "log: topics must be 32-byte 0x-hex strings");
        return -1;
    }
    if (strcmp(t0, ZL_TRANSFER_TOPIC0) != 0) {
        snprintf(errstr, errstr_size, "log: topic0 is not Transfer(address,address,uint256)");
        return -1;
    }
    /* an address topic is 12 zero bytes then the address */
    if (strncmp(t1 + 2, "000000000000000000000000", 24) != 0 || strncmp(t2 + 2, "000000000000000000000000", 24) != 0) {
        snprintf(errstr, errstr_size, "log: from/to topics are not addresses (high bytes not zero)");
        return -1;
    }
    snprintf(out->from, sizeof(out->from), "0x%s", t1 + 26);
    snprintf(out->to, sizeof(out->to), "0x%s", t2 + 26);
    if (zl_json_hex_field(log, "address", ZL_ADDRESS_HEX_DIGITS, out->token, sizeof(out->token)) != 0) {
        snprintf(errstr, errstr_size, "log: address is not a 20-byte 0x-hex string");
        return -1;
    }
    char data[ZL_HASH_HEX_SIZE];
    if (zl_json_hex_field(log, "data", ZL_HASH_HEX_DIGITS, data, sizeof(data)) != 0) {
        snprintf(errstr, errstr_size, "log: data is not one 32-byte word (uint256 value)");
        return -1;
    }
    if (zl_uint256_hex_to_dec(data, out->amount, sizeof(out->amount)) != 0) {
        snprintf(errstr, errstr_size, "log: data is not a uint256");
        return -1;
    }
    if (zl_json_hex_field(log, "transactionHash", ZL_HASH_HEX_DIGITS, out->tx_hash, sizeof(out->tx_hash)) != 0 ||
        zl_json_hex_field(log, "blockHash", ZL_HASH_HEX_DIGITS, out->block_hash, sizeof(out->block_hash)) != 0) {
        snprintf(errstr, errstr_size, "log: transactionHash/blockHash missing or not 32-byte 0x-hex");
        return -1;
    }
    uint64_t li = 0;
    if (zl_json_quantity_field(log, "blockNumber", &out->block_number) != 0 ||
        zl_json_quantity_field(log, "logIndex", &li) != 0 || li > UINT32_MAX) {
        snprintf(errstr, errstr_size, "log: blockNumber/logIndex missing or not a quantity");
        return -1;
    }
    out->log_index = (uint32_t)li;
    out->removed = json_is_true(json_object_get(log, "removed"));
    return 0;
}

/* ---- settings ---- */

#define OFF(f) offsetof(struct zl_chain_config, f)
const struct zl_setting zl_chain_settings[] = {
    {"ZL_CHAIN_ID", ZL_CFG_INT, "31337", "EIP-155 chain id of the deposit chain (56 for BSC)", OFF(chain_id), 1,
     INT64_C(9007199254740991)},
    {"ZL_RPC_URLS", ZL_CFG_STR, "",
     "JSON-RPC endpoints, comma-separated, in preference order (required where the EVM chain is read)",
     OFF(rpc_urls), 0, 0},
    {"ZL_RPC_TIMEOUT_MS", ZL_CFG_INT, "5000", "bound on one JSON-RPC HTTP request", OFF(rpc_timeout_ms), 100,
     600000},
    {"ZL_RPC_HEDGE_MS", ZL_CFG_INT, "1500", "ask the next endpoint too after this long without an answer (0 = never)",
     OFF(rpc_hedge_ms), 0, 600000},
    {"ZL_RPC_QUORUM", ZL_CFG_INT, "1",
     "endpoints that must agree on receipts and block hashes (verify) and on each range's logs (detect)",
     OFF(rpc_quorum), 1, 16},
    {"ZL_RPC_BREAKER_MIN_CALLS", ZL_CFG_INT, "5", "calls per endpoint in the 30 s window before its breaker may open",
     OFF(rpc_breaker_min_calls), 1, 100000},
    {"ZL_RPC_BREAKER_BREAK_MS", ZL_CFG_INT, "5000", "how long an endpoint's open breaker refuses calls",
     OFF(rpc_breaker_break_ms), 100, 3600000},
    {"ZL_RPC_ALLOW_HTTP", ZL_CFG_BOOL, "false",
     "accept plain http:// endpoints that are not loopback (no TLS: anyone on the path can change answers)",
     OFF(rpc_allow_http), 0, 0},
    ZL_TOKENS_SETTING("detect reads each decimals() at start and refuses a difference", OFF(tokens)),
    {"ZL_TOKEN_ADDRESS", ZL_CFG_STR, "",
     "the single-token form of ZL_TOKENS: one ERC-20 contract whose Transfers are deposits (USDT)",
     OFF(token_address), 0, 0},
};
const size_t zl_chain_settings_count = sizeof(zl_chain_settings) / sizeof(zl_chain_settings[0]);
#undef OFF

void zl_chain_rpc_opts(const struct zl_chain_config *cfg, struct zl_metrics *metrics, struct zl_health *health,
                       struct zl_rpc_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->urls = cfg->rpc_urls;
    opts->timeout_ms = cfg->rpc_timeout_ms;
    opts->hedge_after_ms = cfg->rpc_hedge_ms;
    opts->quorum = (int)cfg->rpc_quorum;
    opts->allow_http = cfg->rpc_allow_http;
    opts->breaker_failure_ratio = 0.5;
    opts->breaker_sampling_ms = 30000;
    opts->breaker_min_throughput = (int32_t)cfg->rpc_breaker_min_calls;
    opts->breaker_break_ms = cfg->rpc_breaker_break_ms;
    opts->metrics = metrics;
    opts->health = health;
    opts->name = "rpc";
}

int zl_chain_tokens(const struct zl_chain_config *cfg, const char *default_min, struct zl_tokens *out, char *errstr,
                    size_t errstr_size)
{
    if (zl_tokens_load(out, cfg->tokens, cfg->token_address, default_min, errstr, errstr_size) != 0)
        return -1;
    if (out->n == 0) {
        snprintf(errstr, errstr_size, "ZL_TOKENS (or ZL_TOKEN_ADDRESS for a single token) is required");
        return -1;
    }
    return 0;
}

zl_class zl_chain_token_decimals(struct zl_rpc *rpc, const char *token, int *decimals, char *errstr,
                                 size_t errstr_size)
{
    /* decimals() selector: keccak256("decimals()")[0..4] */
    json_t *params = json_pack("[{s:s, s:s}, s]", "to", token, "data", "0x313ce567", "latest");
    json_t *res = NULL;
    struct zl_rpc_error re;
    zl_class c = zl_rpc_call(rpc, "eth_call", params, &res, &re, errstr, errstr_size);
    json_decref(params);
    if (c != ZL_OK && re.answered) {
        /* The node ran the call and it reverted: asking again gives the same. */
        snprintf(errstr, errstr_size, "token %s: decimals() reverted (%s): is it an ERC-20 contract?", token,
                 re.message);
        return ZL_PERMANENT;
    }
    if (c != ZL_OK)
        return c;
    char word[ZL_HASH_HEX_SIZE];
    char dec[ZL_UINT256_DEC_SIZE];
    int rc = -1;
    if (json_is_string(res) && zl_hex_lower(json_string_value(res), ZL_HASH_HEX_DIGITS, word, sizeof(word)) == 0 &&
        zl_uint256_hex_to_dec(word, dec, sizeof(dec)) == 0 && strlen(dec) <= 3) {
        long v = 0;
        for (const char *p = dec; *p != '\0'; p++)
            v = v * 10 + (*p - '0');
        if (v <= 255) {
            *decimals = (int)v;
            rc = 0;
        }
    }
    json_decref(res);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "token %s: decimals() did not return a uint8 (is it an ERC-20 contract?)",
                 token);
        return ZL_PERMANENT;
    }
    return ZL_OK;
}
