/* zl-sol-tx: the C Solana transaction code as a command, for the test that
 * checks it byte for byte against solders (tests/integration/
 * test_solana_tx.py).
 *
 *   zl-sol-tx < spec.json
 *
 * spec: {"payer_seed": hex32, "seeds": [hex32...] (every signer's, the
 * payer's included), "blockhash": base58, "instructions": [{"program":
 * base58, "accounts": [{"key": base58, "signer": bool, "writable": bool}],
 * "data": hex}]}. An instruction may instead name a System Program builder
 * (common/solana_system.c): {"system": "transfer" | "create_account" |
 * "create_account_with_seed" | "advance_nonce" | "initialize_nonce", and
 * its fields: "from", "to", "base", "seed", "lamports", "space", "owner",
 * "nonce", "authority"}, or a token builder (common/solana_token.c):
 * {"token": "initialize_mint2" | "mint_to" | "transfer" | "transfer_checked" |
 * "set_mint_authority" | "ata_create" | "metadata_pointer" | "metadata_init",
 * "program" (the token program) and
 * "mint", "dest", "source", "owner", "authority", "new_authority" (null:
 * none), "payer", "wallet", "ata", "amount", "decimals", "name", "symbol",
 * "uri"}, or a ComputeBudget one (common/solana_receipt.c): {"budget":
 * "unit_limit", "units": n} | {"budget": "unit_price", "micro_lamports": n}.
 * Prints {"tx": hex, "signature": base58} (the first
 * signature, the transaction's id), or {"error": "..."} with exit status 1.
 *
 * A spec with "receipt" instead builds the receipt transaction of
 * common/solana_receipt.c, signed by payer_seed: {"receipt": {"deposit_id",
 * "owner", "nonce", "nonce_value" (base58), "name", "symbol", "uri",
 * "rent", "cu_limit", "cu_price"}}; it also prints "mint", "ata", "seed"
 * and "account_size".
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "base58.h"
#include "solana_receipt.h"
#include "solana_system.h"
#include "solana_token.h"
#include "solana_tx.h"

#define SEEDS_MAX 8

static void print_tx(const uint8_t *tx, size_t len, const uint8_t sig0[ZL_SOL_SIG_SIZE], json_t *more)
{
    char hex[2 * ZL_SOL_TX_MAX + 1], sig[ZL_B58_TEXT_MAX];
    for (size_t k = 0; k < len; k++)
        snprintf(hex + 2 * k, 3, "%02x", tx[k]);
    zl_b58_encode(sig0, ZL_SOL_SIG_SIZE, sig, sizeof(sig));
    json_t *o = json_pack("{s:s,s:s}", "tx", hex, "signature", sig);
    if (more != NULL)
        json_object_update(o, more);
    json_dumpf(o, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(o);
}

static int fail(const char *why)
{
    json_t *o = json_pack("{s:s}", "error", why);
    json_dumpf(o, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(o);
    return 1;
}

static int unhex(const char *h, uint8_t *out, size_t max, size_t *n)
{
    size_t len = h != NULL ? strlen(h) : 0;
    if (h == NULL || len % 2 != 0 || len / 2 > max)
        return -1;
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    *n = len / 2;
    return 0;
}

static int key_of(json_t *v, uint8_t out[32])
{
    const char *s = json_string_value(v);
    return s != NULL ? zl_b58_decode_exact(s, out, 32) : -1;
}

/* A System Program instruction named by v's "system"; -1 when a field is
 * missing or the builder refuses. */
static int system_ix(json_t *v, struct zl_sol_ix *ix, char *err, size_t err_size)
{
    const char *op = json_string_value(json_object_get(v, "system"));
    uint8_t a[32], b[32], c[32], d[32];
    uint64_t lamports = (uint64_t)json_integer_value(json_object_get(v, "lamports"));
    uint64_t space = (uint64_t)json_integer_value(json_object_get(v, "space"));
    const char *seed = json_string_value(json_object_get(v, "seed"));
    snprintf(err, err_size, "bad system instruction");
    if (strcmp(op, "transfer") == 0 && key_of(json_object_get(v, "from"), a) == 0 &&
        key_of(json_object_get(v, "to"), b) == 0)
        return zl_sol_sys_transfer(ix, a, b, lamports);
    if (strcmp(op, "create_account") == 0 && key_of(json_object_get(v, "from"), a) == 0 &&
        key_of(json_object_get(v, "to"), b) == 0 && key_of(json_object_get(v, "owner"), c) == 0)
        return zl_sol_sys_create_account(ix, a, b, lamports, space, c);
    if (strcmp(op, "create_account_with_seed") == 0 && seed != NULL && key_of(json_object_get(v, "from"), a) == 0 &&
        key_of(json_object_get(v, "to"), b) == 0 && key_of(json_object_get(v, "base"), c) == 0 &&
        key_of(json_object_get(v, "owner"), d) == 0)
        return zl_sol_sys_create_account_with_seed(ix, a, b, c, seed, strlen(seed), lamports, space, d, err,
                                                   err_size);
    if (strcmp(op, "advance_nonce") == 0 && key_of(json_object_get(v, "nonce"), a) == 0 &&
        key_of(json_object_get(v, "authority"), b) == 0)
        return zl_sol_sys_advance_nonce(ix, a, b);
    if (strcmp(op, "initialize_nonce") == 0 && key_of(json_object_get(v, "nonce"), a) == 0 &&
        key_of(json_object_get(v, "authority"), b) == 0)
        return zl_sol_sys_initialize_nonce(ix, a, b);
    return -1;
}

/* A token instruction named by v's "token"; -1 when a field is missing. */
static int token_ix(json_t *v, struct zl_sol_ix *ix)
{
    const char *op = json_string_value(json_object_get(v, "token"));
    uint8_t prog[32], mint[32], a[32], b[32], c[32];
    uint64_t amount = (uint64_t)json_integer_value(json_object_get(v, "amount"));
    uint8_t decimals = (uint8_t)json_integer_value(json_object_get(v, "decimals"));
    if (key_of(json_object_get(v, "program"), prog) != 0 || key_of(json_object_get(v, "mint"), mint) != 0)
        return -1;
    if (strcmp(op, "initialize_mint2") == 0 && key_of(json_object_get(v, "authority"), a) == 0) {
        zl_sol_tok_initialize_mint2(ix, prog, mint, decimals, a, NULL);
        return 0;
    }
    if (strcmp(op, "mint_to") == 0 && key_of(json_object_get(v, "dest"), a) == 0 &&
        key_of(json_object_get(v, "authority"), b) == 0) {
        zl_sol_tok_mint_to(ix, prog, mint, a, b, amount);
        return 0;
    }
    if (strcmp(op, "transfer") == 0 && key_of(json_object_get(v, "source"), a) == 0 &&
        key_of(json_object_get(v, "dest"), b) == 0 && key_of(json_object_get(v, "owner"), c) == 0) {
        zl_sol_tok_transfer(ix, prog, a, b, c, amount);
        return 0;
    }
    if (strcmp(op, "transfer_checked") == 0 && key_of(json_object_get(v, "source"), a) == 0 &&
        key_of(json_object_get(v, "dest"), b) == 0 && key_of(json_object_get(v, "owner"), c) == 0) {
        zl_sol_tok_transfer_checked(ix, prog, a, mint, b, c, amount, decimals);
        return 0;
    }
    if (strcmp(op, "set_mint_authority") == 0 && key_of(json_object_get(v, "authority"), a) == 0) {
        bool none = json_is_null(json_object_get(v, "new_authority"));
        if (!none && key_of(json_object_get(v, "new_authority"), b) != 0)
            return -1;
        zl_sol_tok_set_mint_authority(ix, prog, mint, a, none ? NULL : b);
        return 0;
    }
    if (strcmp(op, "metadata_pointer") == 0) {
        zl_sol_tok22_metadata_pointer(ix, prog, mint, NULL, mint);
        return 0;
    }
    if (strcmp(op, "metadata_init") == 0 && key_of(json_object_get(v, "authority"), a) == 0) {
        const char *name = json_string_value(json_object_get(v, "name"));
        const char *symbol = json_string_value(json_object_get(v, "symbol"));
        const char *uri = json_string_value(json_object_get(v, "uri"));
        if (name == NULL || symbol == NULL || uri == NULL)
            return -1;
        return zl_sol_tok22_metadata_init(ix, prog, mint, a, a, name, symbol, uri);
    }
    if (strcmp(op, "ata_create") == 0 && key_of(json_object_get(v, "payer"), a) == 0 &&
        key_of(json_object_get(v, "ata"), b) == 0 && key_of(json_object_get(v, "wallet"), c) == 0) {
        zl_sol_ata_create_idempotent(ix, a, b, c, mint, prog);
        return 0;
    }
    return -1;
}

static const char *text(json_t *o, const char *name)
{
    const char *t = json_string_value(json_object_get(o, name));
    return t != NULL ? t : "";
}

static int receipt(json_t *r, const struct zl_sol_keypair *payer)
{
    struct zl_sol_receipt_spec s = {.deposit_id = text(r, "deposit_id"), .payer = payer, .name = text(r, "name"),
                                    .symbol = text(r, "symbol"), .uri = text(r, "uri"),
                                    .rent_lamports = (uint64_t)json_integer_value(json_object_get(r, "rent")),
                                    .cu_limit = (uint32_t)json_integer_value(json_object_get(r, "cu_limit")),
                                    .cu_price_micro_lamports =
                                        (uint64_t)json_integer_value(json_object_get(r, "cu_price"))};
    if (key_of(json_object_get(r, "owner"), s.owner) != 0 || key_of(json_object_get(r, "nonce"), s.nonce) != 0 ||
        key_of(json_object_get(r, "nonce_value"), s.nonce_value) != 0)
        return fail("bad owner, nonce or nonce_value");
    uint8_t tx[ZL_SOL_TX_MAX], sig0[ZL_SOL_SIG_SIZE], mint[32], ata[32];
    size_t len;
    char err[256], seed[ZL_SOL_RECEIPT_SEED_SIZE], mint_b58[ZL_B58_TEXT_MAX], ata_b58[ZL_B58_TEXT_MAX];
    if (zl_sol_receipt_tx(&s, tx, &len, sig0, mint, ata, err, sizeof(err)) != 0)
        return fail(err);
    zl_sol_receipt_seed(s.deposit_id, seed);
    zl_b58_encode(mint, 32, mint_b58, sizeof(mint_b58));
    zl_b58_encode(ata, 32, ata_b58, sizeof(ata_b58));
    json_t *more = json_pack("{s:s, s:s, s:s, s:I}", "mint", mint_b58, "ata", ata_b58, "seed", seed,
                             "account_size", (json_int_t)zl_sol_receipt_account_size(s.name, s.symbol, s.uri));
    print_tx(tx, len, sig0, more);
    json_decref(more);
    return 0;
}

int main(void)
{
    json_error_t jerr;
    json_t *spec = json_loadf(stdin, 0, &jerr);
    if (spec == NULL)
        return fail(jerr.text);
    static struct zl_sol_keypair kps[SEEDS_MAX];
    size_t nkps = 0, n, i;
    json_t *v;
    uint8_t seed[32], hash[32];
    json_array_foreach(json_object_get(spec, "seeds"), i, v) {
        if (nkps == SEEDS_MAX || unhex(json_string_value(v), seed, 32, &n) != 0 || n != 32 ||
            zl_sol_keypair(seed, &kps[nkps++]) != 0)
            return fail("bad seed");
    }
    struct zl_sol_keypair payer;
    if (unhex(json_string_value(json_object_get(spec, "payer_seed")), seed, 32, &n) != 0 || n != 32 ||
        zl_sol_keypair(seed, &payer) != 0)
        return fail("bad payer_seed");
    json_t *rec = json_object_get(spec, "receipt");
    if (rec != NULL) {
        int rc = receipt(rec, &payer);
        json_decref(spec);
        return rc;
    }
    if (key_of(json_object_get(spec, "blockhash"), hash) != 0)
        return fail("bad blockhash");
    static struct zl_sol_ix ixs[ZL_SOL_IX_MAX];
    json_t *jixs = json_object_get(spec, "instructions");
    size_t nix = json_array_size(jixs);
    if (nix > ZL_SOL_IX_MAX)
        return fail("too many instructions");
    char err[256];
    json_array_foreach(jixs, i, v) {
        if (json_is_string(json_object_get(v, "token"))) {
            if (token_ix(v, &ixs[i]) != 0)
                return fail("bad token instruction");
            continue;
        }
        const char *budget = json_string_value(json_object_get(v, "budget"));
        if (budget != NULL && strcmp(budget, "unit_limit") == 0) {
            zl_sol_cb_unit_limit(&ixs[i], (uint32_t)json_integer_value(json_object_get(v, "units")));
            continue;
        }
        if (budget != NULL && strcmp(budget, "unit_price") == 0) {
            zl_sol_cb_unit_price(&ixs[i], (uint64_t)json_integer_value(json_object_get(v, "micro_lamports")));
            continue;
        }
        if (json_is_string(json_object_get(v, "system"))) {
            if (system_ix(v, &ixs[i], err, sizeof(err)) != 0)
                return fail(err);
            continue;
        }
        if (key_of(json_object_get(v, "program"), ixs[i].program) != 0)
            return fail("bad program");
        if (unhex(json_string_value(json_object_get(v, "data")), ixs[i].data, ZL_SOL_IX_DATA_MAX, &ixs[i].data_len) != 0)
            return fail("bad data");
        size_t a;
        json_t *acc;
        json_t *jacc = json_object_get(v, "accounts");
        if (json_array_size(jacc) > ZL_SOL_IX_ACCOUNTS_MAX)
            return fail("too many accounts");
        json_array_foreach(jacc, a, acc) {
            if (key_of(json_object_get(acc, "key"), ixs[i].accounts[a].key) != 0)
                return fail("bad account key");
            ixs[i].accounts[a].signer = json_is_true(json_object_get(acc, "signer"));
            ixs[i].accounts[a].writable = json_is_true(json_object_get(acc, "writable"));
        }
        ixs[i].naccounts = json_array_size(jacc);
    }
    static struct zl_sol_message m;
    if (zl_sol_compile(payer.pub, ixs, nix, hash, &m, err, sizeof(err)) != 0)
        return fail(err);
    uint8_t tx[ZL_SOL_TX_MAX], sig0[ZL_SOL_SIG_SIZE];
    size_t len;
    if (zl_sol_sign(&m, kps, nkps, tx, sizeof(tx), &len, sig0, err, sizeof(err)) != 0)
        return fail(err);
    print_tx(tx, len, sig0, NULL);
    json_decref(spec);
    return 0;
}
