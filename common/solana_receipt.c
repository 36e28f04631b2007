/* solana_receipt.c: see solana_receipt.h. */
#include "solana_receipt.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "solana_addr.h"
#include "solana_system.h"
#include "solana_token.h"
#include "zl.h"

/* ComputeBudget instruction tags. */
enum { CB_SET_UNIT_LIMIT = 2, CB_SET_UNIT_PRICE = 3 };
/* advance nonce, 2 budget, create, pointer, init, metadata, ATA, mint, authority */
enum { RECEIPT_IX_MAX = 10 };

void zl_sol_cb_unit_limit(struct zl_sol_ix *ix, uint32_t units)
{
    uint8_t program[ZL_SOL_KEY_SIZE];
    zl_sol_known_key(ZL_SOL_COMPUTE_BUDGET_PROGRAM, program);
    zl_sol_ix_begin(ix, program);
    uint8_t d[5] = {CB_SET_UNIT_LIMIT, (uint8_t)units, (uint8_t)(units >> 8), (uint8_t)(units >> 16),
                    (uint8_t)(units >> 24)};
    zl_sol_ix_put(ix, d, sizeof(d));
}

void zl_sol_cb_unit_price(struct zl_sol_ix *ix, uint64_t micro_lamports)
{
    uint8_t program[ZL_SOL_KEY_SIZE];
    zl_sol_known_key(ZL_SOL_COMPUTE_BUDGET_PROGRAM, program);
    zl_sol_ix_begin(ix, program);
    uint8_t tag = CB_SET_UNIT_PRICE;
    zl_sol_ix_put(ix, &tag, 1);
    zl_sol_ix_u64(ix, micro_lamports);
}

void zl_sol_receipt_seed(const char *deposit_id, char seed[ZL_SOL_RECEIPT_SEED_SIZE])
{
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)deposit_id, strlen(deposit_id));
    zl_hex_encode_bare(h, (ZL_SOL_RECEIPT_SEED_SIZE - 1) / 2, seed, ZL_SOL_RECEIPT_SEED_SIZE);
}

int zl_sol_receipt_mint(const uint8_t payer[ZL_SOL_KEY_SIZE], const char *deposit_id,
                        uint8_t mint[ZL_SOL_KEY_SIZE], char *err, size_t err_size)
{
    char seed[ZL_SOL_RECEIPT_SEED_SIZE];
    uint8_t program[ZL_SOL_KEY_SIZE];
    zl_sol_receipt_seed(deposit_id, seed);
    zl_sol_known_key(ZL_SOL_TOKEN_2022_PROGRAM, program);
    return zl_sol_create_with_seed(payer, seed, strlen(seed), program, mint, err, err_size);
}

size_t zl_sol_receipt_account_size(const char *name, const char *symbol, const char *uri)
{
    return ZL_SOL_MINT_WITH_POINTER_SIZE + ZL_SOL_METADATA_SIZE(strlen(name), strlen(symbol), strlen(uri));
}

int zl_sol_receipt_tx(const struct zl_sol_receipt_spec *s, uint8_t out[ZL_SOL_TX_MAX], size_t *out_len,
                      uint8_t sig[ZL_SOL_SIG_SIZE], uint8_t mint[ZL_SOL_KEY_SIZE], uint8_t ata[ZL_SOL_KEY_SIZE],
                      char *err, size_t err_size)
{
    const uint8_t *payer = s->payer->pub;
    uint8_t program[ZL_SOL_KEY_SIZE];
    char seed[ZL_SOL_RECEIPT_SEED_SIZE];
    zl_sol_known_key(ZL_SOL_TOKEN_2022_PROGRAM, program);
    zl_sol_receipt_seed(s->deposit_id, seed);
    if (zl_sol_create_with_seed(payer, seed, strlen(seed), program, mint, err, err_size) != 0 ||
        zl_sol_associated_token_account(s->owner, mint, program, ata, err, err_size) != 0)
        return -1;
    struct zl_sol_ix ixs[RECEIPT_IX_MAX]; /* ~11 KiB: a stage's stack has room */
    size_t n = 0;
    if (zl_sol_sys_advance_nonce(&ixs[n++], s->nonce, payer) != 0) {
        snprintf(err, err_size, "advance nonce: bad keys");
        return -1;
    }
    if (s->cu_limit > 0)
        zl_sol_cb_unit_limit(&ixs[n++], s->cu_limit);
    if (s->cu_price_micro_lamports > 0)
        zl_sol_cb_unit_price(&ixs[n++], s->cu_price_micro_lamports);
    if (zl_sol_sys_create_account_with_seed(&ixs[n++], payer, mint, payer, seed, strlen(seed), s->rent_lamports,
                                            ZL_SOL_MINT_WITH_POINTER_SIZE, program, err, err_size) != 0)
        return -1;
    zl_sol_tok22_metadata_pointer(&ixs[n++], program, mint, NULL, mint);
    zl_sol_tok_initialize_mint2(&ixs[n++], program, mint, 0, payer, NULL);
    if (zl_sol_tok22_metadata_init(&ixs[n++], program, mint, payer, payer, s->name, s->symbol, s->uri) != 0) {
        snprintf(err, err_size, "receipt metadata: name, symbol and uri longer than %d together",
                 ZL_SOL_METADATA_TEXT_MAX);
        return -1;
    }
    zl_sol_ata_create_idempotent(&ixs[n++], payer, ata, s->owner, mint, program);
    zl_sol_tok_mint_to(&ixs[n++], program, mint, ata, payer, 1);
    zl_sol_tok_set_mint_authority(&ixs[n++], program, mint, payer, NULL);
    ZL_ASSERT(n <= RECEIPT_IX_MAX);
    struct zl_sol_message m;
    if (zl_sol_compile(payer, ixs, n, s->nonce_value, &m, err, err_size) != 0)
        return -1;
    return zl_sol_sign(&m, s->payer, 1, out, ZL_SOL_TX_MAX, out_len, sig, err, err_size);
}

enum zl_sol_receipt_next zl_sol_receipt_next(const struct zl_sol_receipt_seen *s)
{
    if (s->receipt_final)
        return ZL_SOL_RECEIPT_DONE;
    if (s->receipt_seen || (s->tx_landed && !s->tx_final))
        return ZL_SOL_RECEIPT_WAIT; /* landed, not final: a fork could still drop it */
    if (s->tx_landed && s->tx_failed)
        return ZL_SOL_RECEIPT_RESIGN; /* it ran and failed: its nonce is spent, no receipt */
    if (s->tx_landed)
        return ZL_SOL_RECEIPT_WAIT; /* ran, final, no final receipt: the reads disagree, look again */
    if (!s->nonce_moved)
        return ZL_SOL_RECEIPT_SEND;
    return s->nonce_move_final ? ZL_SOL_RECEIPT_RESIGN : ZL_SOL_RECEIPT_WAIT;
}

const char *zl_sol_receipt_next_name(enum zl_sol_receipt_next n)
{
    switch (n) {
    case ZL_SOL_RECEIPT_DONE:
        return "done";
    case ZL_SOL_RECEIPT_SEND:
        return "send";
    case ZL_SOL_RECEIPT_WAIT:
        return "wait";
    case ZL_SOL_RECEIPT_RESIGN:
        return "resign";
    }
    return "unknown";
}

/* The nonce account's data: version u32, state u32, authority, then the
 * durable nonce value (what a transaction names as its blockhash). */
enum { NONCE_VALUE_OFFSET = 40, NONCE_DATA_SIZE = 80 };

/* getAccountInfo of key at commitment: *res (new reference) on ZL_OK. */
static zl_class get_account(struct zl_rpc *r, const char *key_b58, const char *encoding, const char *commitment,
                            json_t **res, char *errstr, size_t errstr_size)
{
    json_t *params = json_pack("[s, {s:s, s:s}]", key_b58, "encoding", encoding, "commitment", commitment);
    zl_class c = zl_rpc_call(r, "getAccountInfo", params, res, NULL, errstr, errstr_size);
    json_decref(params);
    return c;
}

zl_class zl_sol_nonce_value(struct zl_rpc *r, const char *nonce_b58, const char *commitment, bool *exists,
                            uint8_t value[ZL_SOL_KEY_SIZE], char *errstr, size_t errstr_size)
{
    json_t *res = NULL;
    *exists = false;
    zl_class c = get_account(r, nonce_b58, "base64", commitment, &res, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    json_t *acct = json_object_get(res, "value");
    if (json_is_null(acct)) {
        json_decref(res);
        return ZL_OK;
    }
    const char *b64 = json_string_value(json_array_get(json_object_get(acct, "data"), 0));
    uint8_t data[NONCE_DATA_SIZE + 8];
    size_t len = 0;
    if (b64 == NULL || sodium_base642bin(data, sizeof(data), b64, strlen(b64), NULL, &len, NULL,
                                         sodium_base64_VARIANT_ORIGINAL) != 0 || len != NONCE_DATA_SIZE) {
        snprintf(errstr, errstr_size, "nonce account %s: not a nonce account (%s)", nonce_b58, commitment);
        c = ZL_TRANSIENT;
    } else {
        *exists = true;
        memcpy(value, data + NONCE_VALUE_OFFSET, ZL_SOL_KEY_SIZE);
    }
    json_decref(res);
    return c;
}

/* *moved: the nonce's value at commitment is not value. */
static zl_class nonce_moved(struct zl_rpc *r, const char *nonce_b58, const uint8_t value[ZL_SOL_KEY_SIZE],
                            const char *commitment, bool *moved, char *errstr, size_t errstr_size)
{
    bool exists = false;
    uint8_t now[ZL_SOL_KEY_SIZE];
    zl_class c = zl_sol_nonce_value(r, nonce_b58, commitment, &exists, now, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    if (!exists && strcmp(commitment, "finalized") == 0) {
        *moved = false; /* created, not final yet: nothing moved at finalized */
        return ZL_OK;
    }
    if (!exists) {
        snprintf(errstr, errstr_size, "nonce account %s: not there (%s)", nonce_b58, commitment);
        return ZL_TRANSIENT;
    }
    *moved = memcmp(now, value, ZL_SOL_KEY_SIZE) != 0;
    return ZL_OK;
}

/* *exists: the mint account at commitment is a Token-2022 mint of supply 1. */
static zl_class receipt_exists(struct zl_rpc *r, const char *mint_b58, const char *commitment, bool *exists,
                               char *errstr, size_t errstr_size)
{
    json_t *res = NULL;
    zl_class c = get_account(r, mint_b58, "jsonParsed", commitment, &res, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    json_t *v = json_object_get(res, "value");
    const char *owner = json_string_value(json_object_get(v, "owner"));
    const char *supply = json_string_value(
        json_object_get(json_object_get(json_object_get(json_object_get(v, "data"), "parsed"), "info"), "supply"));
    *exists = owner != NULL && strcmp(owner, ZL_SOL_TOKEN_2022_PROGRAM) == 0 && supply != NULL &&
              strcmp(supply, "1") == 0;
    json_decref(res);
    return ZL_OK;
}

zl_class zl_sol_receipt_audit(struct zl_rpc *r, const char *mint_b58, const char *owner_b58, const char *commitment,
                              bool *is_receipt, uint64_t *held, char *errstr, size_t errstr_size)
{
    *is_receipt = false;
    *held = 0;
    json_t *res = NULL;
    zl_class c = get_account(r, mint_b58, "jsonParsed", commitment, &res, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    json_t *v = json_object_get(res, "value");
    json_t *info = json_object_get(json_object_get(json_object_get(v, "data"), "parsed"), "info");
    const char *owner = json_string_value(json_object_get(v, "owner"));
    const char *supply = json_string_value(json_object_get(info, "supply"));
    json_t *dec = json_object_get(info, "decimals");
    json_t *auth = json_object_get(info, "mintAuthority");
    *is_receipt = owner != NULL && strcmp(owner, ZL_SOL_TOKEN_2022_PROGRAM) == 0 && supply != NULL &&
                  strcmp(supply, "1") == 0 && json_is_integer(dec) && json_integer_value(dec) == 0 &&
                  (auth == NULL || json_is_null(auth));
    json_decref(res);
    res = NULL;
    if (!*is_receipt)
        return ZL_OK; /* no such receipt: nobody can hold it (and nodes refuse to list an unknown mint) */
    json_t *params = json_pack("[s, {s:s}, {s:s, s:s}]", owner_b58, "mint", mint_b58, "encoding", "jsonParsed",
                               "commitment", commitment);
    c = zl_rpc_call(r, "getTokenAccountsByOwner", params, &res, NULL, errstr, errstr_size);
    json_decref(params);
    if (c != ZL_OK)
        return c;
    json_t *accts = json_object_get(res, "value");
    size_t i;
    json_t *a;
    json_array_foreach(accts, i, a) {
        const char *amount = json_string_value(json_object_get(json_object_get(json_object_get(json_object_get(
            json_object_get(json_object_get(a, "account"), "data"), "parsed"), "info"), "tokenAmount"), "amount"));
        if (amount != NULL && strlen(amount) < 20)
            *held += strtoull(amount, NULL, 10);
    }
    json_decref(res);
    return ZL_OK;
}

zl_class zl_sol_receipt_look(struct zl_rpc *r, const char *sig_b58, const uint8_t nonce[ZL_SOL_KEY_SIZE],
                             const uint8_t nonce_value[ZL_SOL_KEY_SIZE], const uint8_t mint[ZL_SOL_KEY_SIZE],
                             struct zl_sol_receipt_seen *seen, char *errstr, size_t errstr_size)
{
    memset(seen, 0, sizeof(*seen));
    char nonce_b58[ZL_B58_TEXT_MAX], mint_b58[ZL_B58_TEXT_MAX];
    zl_b58_encode(nonce, ZL_SOL_KEY_SIZE, nonce_b58, sizeof(nonce_b58));
    zl_b58_encode(mint, ZL_SOL_KEY_SIZE, mint_b58, sizeof(mint_b58));
    json_t *params = json_pack("[[s], {s:b}]", sig_b58, "searchTransactionHistory", 1), *res = NULL;
    zl_class c = zl_rpc_call(r, "getSignatureStatuses", params, &res, NULL, errstr, errstr_size);
    json_decref(params);
    if (c != ZL_OK)
        return c;
    json_t *st = json_array_get(json_object_get(res, "value"), 0);
    const char *level = json_string_value(json_object_get(st, "confirmationStatus"));
    json_t *err = json_object_get(st, "err");
    if (level != NULL && (strcmp(level, "confirmed") == 0 || strcmp(level, "finalized") == 0)) {
        seen->tx_landed = true;
        seen->tx_final = strcmp(level, "finalized") == 0;
        seen->tx_failed = err != NULL && !json_is_null(err);
    }
    json_decref(res);
    /* In this order: a read of the nonce or the mint after the status
     * (and the mint after the nonce) sees at least what made them. */
    if ((c = nonce_moved(r, nonce_b58, nonce_value, "confirmed", &seen->nonce_moved, errstr, errstr_size)) !=
            ZL_OK ||
        (c = nonce_moved(r, nonce_b58, nonce_value, "finalized", &seen->nonce_move_final, errstr, errstr_size)) !=
            ZL_OK ||
        (c = receipt_exists(r, mint_b58, "confirmed", &seen->receipt_seen, errstr, errstr_size)) != ZL_OK ||
        (c = receipt_exists(r, mint_b58, "finalized", &seen->receipt_final, errstr, errstr_size)) != ZL_OK)
        return c;
    return ZL_OK;
}
