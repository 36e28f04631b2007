/* solana_transfers.c: USDT transfers into deposit accounts, from a
 * getTransaction answer (solana_transfers.h). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solana_transfers.h"

static const char TOKEN[] = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";
static const char TOKEN_2022[] = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb";

/* The parse of one answer. */
struct parse {
    json_t *keys;       /* transaction.message.accountKeys */
    json_t *balances[2]; /* meta.postTokenBalances, meta.preTokenBalances */
    const char *cluster, *mint, *signature;
    uint64_t slot;
    int64_t block_time;
    zl_sol_is_deposit_fn is_deposit;
    void *ctx;
    struct zl_sol_transfer *out;
    size_t max, n;
    char *err;
    size_t err_size;
};

static int bad(struct parse *p, const char *what)
{
    snprintf(p->err, p->err_size, "getTransaction answer: %s", what);
    return -1;
}

/* s, a base58 text of want bytes, copied into out; -1 otherwise. */
static int b58_text(const char *s, size_t want, char *out)
{
    uint8_t raw[ZL_B58_BYTES_MAX];
    if (s == NULL || strlen(s) >= ZL_B58_TEXT_MAX || zl_b58_decode_exact(s, raw, want) != 0)
        return -1;
    snprintf(out, ZL_B58_TEXT_MAX, "%s", s);
    return 0;
}

static int b58_field(json_t *v, size_t want, char *out)
{
    return b58_text(json_string_value(v), want, out);
}

/* A decimal u64 text: digits only, no sign, no leading zero but "0". */
static int amount_field(json_t *v, char *out)
{
    const char *s = json_string_value(v);
    size_t len = s != NULL ? strlen(s) : 0;
    if (len == 0 || len >= ZL_SOL_AMOUNT_SIZE || (len > 1 && s[0] == '0') || strspn(s, "0123456789") != len)
        return -1;
    errno = 0;
    unsigned long long x = strtoull(s, NULL, 10);
    (void)x;
    if (errno == ERANGE)
        return -1; /* 20 digits over 2^64 - 1 */
    snprintf(out, ZL_SOL_AMOUNT_SIZE, "%s", s);
    return 0;
}

/* The mint of token account acct from the answer's token balances, or NULL. */
static const char *mint_of(struct parse *p, const char *acct)
{
    size_t i, k;
    json_t *key, *bal;
    json_array_foreach(p->keys, i, key) {
        const char *pk = json_string_value(json_object_get(key, "pubkey"));
        if (pk == NULL || strcmp(pk, acct) != 0)
            continue;
        for (int b = 0; b < 2; b++) {
            json_array_foreach(p->balances[b], k, bal) {
                json_t *idx = json_object_get(bal, "accountIndex");
                if (json_is_integer(idx) && (size_t)json_integer_value(idx) == i)
                    return json_string_value(json_object_get(bal, "mint"));
            }
        }
        return NULL;
    }
    return NULL;
}

/* One instruction at place: appended to out when it is a transfer of the
 * mint into a deposit account. 0, or -1 with err. */
static int instruction(struct parse *p, json_t *ix, const char *place)
{
    const char *pid = json_string_value(json_object_get(ix, "programId"));
    if (pid == NULL || (strcmp(pid, TOKEN) != 0 && strcmp(pid, TOKEN_2022) != 0))
        return 0;
    json_t *parsed = json_object_get(ix, "parsed");
    const char *type = json_string_value(json_object_get(parsed, "type"));
    if (type == NULL)
        return 0; /* a token instruction the node did not parse: not a transfer we know */
    bool checked = strcmp(type, "transferChecked") == 0;
    if (!checked && strcmp(type, "transfer") != 0)
        return 0;
    json_t *info = json_object_get(parsed, "info");
    struct zl_sol_transfer t;
    memset(&t, 0, sizeof(t));
    if (b58_field(json_object_get(info, "destination"), 32, t.destination) != 0 ||
        b58_field(json_object_get(info, "source"), 32, t.source) != 0)
        return bad(p, "a token transfer without valid source and destination");
    if (!p->is_deposit(p->ctx, t.destination))
        return 0;
    json_t *auth = json_object_get(info, "authority");
    if (auth == NULL)
        auth = json_object_get(info, "multisigAuthority");
    if (auth != NULL && b58_field(auth, 32, t.authority) != 0)
        return bad(p, "a token transfer's authority is not a key");
    t.decimals = -1;
    if (checked) {
        json_t *ta = json_object_get(info, "tokenAmount");
        json_t *dec = json_object_get(ta, "decimals");
        if (b58_field(json_object_get(info, "mint"), 32, t.mint) != 0 ||
            amount_field(json_object_get(ta, "amount"), t.amount) != 0 || !json_is_integer(dec) ||
            json_integer_value(dec) < 0 || json_integer_value(dec) > 255)
            return bad(p, "a transferChecked without a valid mint, amount and decimals");
        t.decimals = (int)json_integer_value(dec);
    } else {
        if (b58_text(mint_of(p, t.destination), 32, t.mint) != 0)
            return bad(p, "a transfer into a deposit account whose mint the answer's token balances do not give");
        if (amount_field(json_object_get(info, "amount"), t.amount) != 0)
            return bad(p, "a transfer without a valid amount");
    }
    if (strcmp(t.mint, p->mint) != 0)
        return 0; /* another token into a deposit account: not ours to credit */
    if (p->n == p->max) {
        snprintf(p->err, p->err_size, "more than %zu deposits in one transaction", p->max);
        return -1;
    }
    snprintf(t.program, sizeof(t.program), "%s", pid);
    snprintf(t.signature, sizeof(t.signature), "%s", p->signature);
    snprintf(t.place, sizeof(t.place), "%s", place);
    snprintf(t.deposit_id, sizeof(t.deposit_id), "%s:%s:%s", p->cluster, p->signature, place);
    t.slot = p->slot;
    t.block_time = p->block_time;
    p->out[p->n++] = t;
    return 0;
}

enum zl_sol_tx_read zl_sol_read_transfers(const json_t *res, const char *cluster, const char *mint,
                                          zl_sol_is_deposit_fn is_deposit, void *ctx, struct zl_sol_transfer *out,
                                          size_t max, size_t *n, char *err, size_t err_size)
{
    *n = 0;
    struct parse p = {.cluster = cluster, .mint = mint, .is_deposit = is_deposit, .ctx = ctx, .out = out,
                      .max = max, .err = err, .err_size = err_size};
    enum zl_sol_tx_read rc = ZL_SOL_TX_INVALID;
    if (res == NULL) {
        bad(&p, "no result");
        goto out;
    }
    if (json_is_null(res)) {
        rc = ZL_SOL_TX_ABSENT;
        goto out;
    }
    json_t *meta = json_object_get(res, "meta");
    json_t *tx = json_object_get(res, "transaction");
    json_t *msg = json_object_get(tx, "message");
    json_t *slot = json_object_get(res, "slot");
    json_t *bt = json_object_get(res, "blockTime");
    char sig[ZL_B58_TEXT_MAX];
    p.keys = json_object_get(msg, "accountKeys");
    p.balances[0] = json_object_get(meta, "postTokenBalances");
    p.balances[1] = json_object_get(meta, "preTokenBalances");
    if (!json_is_object(meta) || !json_is_array(p.keys) || !json_is_integer(slot) || json_integer_value(slot) < 0 ||
        (bt != NULL && !json_is_null(bt) && !json_is_integer(bt)) ||
        b58_field(json_array_get(json_object_get(tx, "signatures"), 0), 64, sig) != 0) {
        bad(&p, "no meta, account keys, slot or signature of 64 bytes (is the encoding jsonParsed?)");
        goto out;
    }
    p.signature = sig;
    p.slot = (uint64_t)json_integer_value(slot);
    p.block_time = json_is_integer(bt) ? (int64_t)json_integer_value(bt) : -1;
    json_t *failed = json_object_get(meta, "err");
    if (failed != NULL && !json_is_null(failed)) {
        rc = ZL_SOL_TX_READ; /* a failed transaction moved nothing */
        goto out;
    }
    char place[ZL_SOL_IX_PLACE_SIZE];
    size_t i, j;
    json_t *ix, *group;
    json_array_foreach(json_object_get(msg, "instructions"), i, ix) {
        snprintf(place, sizeof(place), "%zu", i);
        if (instruction(&p, ix, place) != 0)
            goto out;
    }
    json_array_foreach(json_object_get(meta, "innerInstructions"), i, group) {
        json_t *top = json_object_get(group, "index");
        if (!json_is_integer(top) || json_integer_value(top) < 0 || json_integer_value(top) > 255) {
            bad(&p, "an inner instruction group without a valid index");
            goto out;
        }
        json_array_foreach(json_object_get(group, "instructions"), j, ix) {
            snprintf(place, sizeof(place), "%d.%zu", (int)json_integer_value(top), j);
            if (instruction(&p, ix, place) != 0)
                goto out;
        }
    }
    rc = ZL_SOL_TX_READ;
out:
    if (rc != ZL_SOL_TX_READ)
        p.n = 0; /* nothing half-read is handed out */
    *n = p.n;
    return rc;
}

enum zl_sol_tx_read zl_sol_parse_transfers(const char *body, size_t len, const char *cluster, const char *mint,
                                           zl_sol_is_deposit_fn is_deposit, void *ctx, struct zl_sol_transfer *out,
                                           size_t max, size_t *n, char *err, size_t err_size)
{
    *n = 0;
    if (len > ZL_SOL_TX_ANSWER_MAX_BYTES) {
        snprintf(err, err_size, "getTransaction answer of %zu bytes, at most %d", len, ZL_SOL_TX_ANSWER_MAX_BYTES);
        return ZL_SOL_TX_INVALID;
    }
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        snprintf(err, err_size, "getTransaction answer is not a JSON object: %s", root == NULL ? jerr.text : "");
        json_decref(root);
        return ZL_SOL_TX_INVALID;
    }
    enum zl_sol_tx_read rc = ZL_SOL_TX_INVALID;
    json_t *res = json_object_get(root, "result");
    if (json_object_get(root, "error") != NULL || res == NULL)
        snprintf(err, err_size, "getTransaction answer: an error answer, or no result");
    else
        rc = zl_sol_read_transfers(res, cluster, mint, is_deposit, ctx, out, max, n, err, err_size);
    json_decref(root);
    return rc;
}

const char *zl_sol_answer_signature(const json_t *res)
{
    return json_string_value(
        json_array_get(json_object_get(json_object_get(res, "transaction"), "signatures"), 0));
}

int zl_sol_read_signatures(const json_t *res, struct zl_sol_sig *out, size_t max, size_t *n, char *err,
                           size_t err_size)
{
    *n = 0;
    if (!json_is_array(res)) {
        snprintf(err, err_size, "getSignaturesForAddress answer without a result list");
        return -1;
    }
    if (json_array_size(res) > max) {
        snprintf(err, err_size, "getSignaturesForAddress answer of %zu entries, asked for at most %zu",
                 json_array_size(res), max);
        return -1;
    }
    size_t i;
    json_t *e;
    json_array_foreach(res, i, e) {
        struct zl_sol_sig *s = &out[i];
        json_t *slot = json_object_get(e, "slot");
        json_t *failed = json_object_get(e, "err");
        const char *status = json_string_value(json_object_get(e, "confirmationStatus"));
        if (b58_field(json_object_get(e, "signature"), 64, s->signature) != 0 || !json_is_integer(slot) ||
            json_integer_value(slot) < 0) {
            snprintf(err, err_size, "getSignaturesForAddress entry %zu: no signature of 64 bytes or no slot", i);
            return -1;
        }
        s->slot = (uint64_t)json_integer_value(slot);
        if (i > 0 && s->slot > out[i - 1].slot) {
            snprintf(err, err_size, "getSignaturesForAddress entry %zu: slot %llu after %llu, not newest first", i,
                     (unsigned long long)s->slot, (unsigned long long)out[i - 1].slot);
            return -1;
        }
        s->failed = failed != NULL && !json_is_null(failed);
        s->finalized = status != NULL && strcmp(status, "finalized") == 0;
    }
    *n = json_array_size(res);
    return 0;
}

int zl_sol_parse_signatures(const char *body, size_t len, struct zl_sol_sig *out, size_t max, size_t *n, char *err,
                            size_t err_size)
{
    *n = 0;
    if (len > ZL_SOL_TX_ANSWER_MAX_BYTES) {
        snprintf(err, err_size, "getSignaturesForAddress answer of %zu bytes, at most %d", len,
                 ZL_SOL_TX_ANSWER_MAX_BYTES);
        return -1;
    }
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, err_size, "getSignaturesForAddress answer without a result list: %s", jerr.text);
        return -1;
    }
    int rc = zl_sol_read_signatures(json_object_get(root, "result"), out, max, n, err, err_size);
    json_decref(root);
    return rc;
}
