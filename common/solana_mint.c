/* solana_mint.c: the mint stage on Solana; the contract is in solana_mint.h. */
#include "solana_mint.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "log.h"
#include "solana_receipt.h"

/* Look again after this long while a receipt is on its way: a few slots. */
#define SOL_MINT_LOOK_AGAIN_MS 1000
/* Base64 text of the largest transaction, NUL included. */
#define SOL_TX_B64_SIZE (ZL_SOL_TX_MAX * 4 / 3 + 8)

static const struct zl_pg_stmt sm_stmts[] = {
    {"sm_get",
     /* encode() breaks base64 into lines of 76: the node wants one line. */
     "SELECT nonce_account, nonce_value, signature, translate(encode(tx, 'base64'), E'\\n', ''), state"
     " FROM sol_receipt_txs"
     " WHERE deposit_id = $1",
     1},
    {"sm_busy", "SELECT nonce_account FROM sol_receipt_txs WHERE cluster = $1 AND state = 'pending'", 1},
    /* Any unique violation is "not stored": the deposit already has one
     * (another copy), or the nonce account is busy (its partial index). */
    {"sm_store",
     "INSERT INTO sol_receipt_txs (deposit_id, cluster, nonce_account, nonce_value, signature, tx, mint, owner)"
     " VALUES ($1, $2, $3, $4, $5, decode($6, 'base64'), $7, $8) ON CONFLICT DO NOTHING RETURNING 1",
     8},
    {"sm_submitted",
     "UPDATE deposits SET state = 'mint_submitted', updated_at = now() WHERE deposit_id = $1 AND state = 'pinned'", 1},
    /* Only over the bytes this copy looked at. */
    {"sm_resign",
     "UPDATE sol_receipt_txs SET nonce_value = $2, signature = $3, tx = decode($4, 'base64'),"
     " signed_count = signed_count + 1, updated_at = now() WHERE deposit_id = $1 AND signature = $5 RETURNING 1",
     5},
    {"sm_done", "UPDATE sol_receipt_txs SET state = 'done', updated_at = now() WHERE deposit_id = $1", 1},
};
#define SM_STMTS (sizeof(sm_stmts) / sizeof(sm_stmts[0]))

struct zl_sol_minter {
    struct zl_sol_minter_opts o;
    char cluster[ZL_B58_TEXT_MAX];
    size_t nnonce;
    char nonce_b58[ZL_SOL_NONCE_ACCOUNTS_MAX][ZL_B58_TEXT_MAX];
    uint8_t nonce[ZL_SOL_NONCE_ACCOUNTS_MAX][ZL_SOL_KEY_SIZE];
};

int zl_sol_minter_new(struct zl_sol_minter **out, const struct zl_sol_minter_opts *o, char *errstr,
                      size_t errstr_size)
{
    *out = NULL;
    struct zl_sol_minter *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        snprintf(errstr, errstr_size, "Solana minter: out of memory");
        return -1;
    }
    m->o = *o;
    snprintf(m->cluster, sizeof(m->cluster), "%s", o->cluster);
    const char *p = o->nonce_accounts != NULL ? o->nonce_accounts : "";
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        char one[ZL_B58_TEXT_MAX];
        if (len == 0 || len >= sizeof(one) || m->nnonce == ZL_SOL_NONCE_ACCOUNTS_MAX) {
            snprintf(errstr, errstr_size, "nonce accounts: an empty or too long entry, or more than %d",
                     ZL_SOL_NONCE_ACCOUNTS_MAX);
            goto fail;
        }
        memcpy(one, p, len);
        one[len] = '\0';
        if (zl_b58_decode_exact(one, m->nonce[m->nnonce], ZL_SOL_KEY_SIZE) != 0) {
            snprintf(errstr, errstr_size, "nonce accounts: \"%s\" is not a base58 key of 32 bytes", one);
            goto fail;
        }
        memcpy(m->nonce_b58[m->nnonce++], one, len + 1);
        p += len;
        if (*p == ',')
            p++;
    }
    if (m->nnonce == 0) {
        snprintf(errstr, errstr_size, "nonce accounts: at least one durable nonce account is required");
        goto fail;
    }
    for (size_t i = 0; i < SM_STMTS; i++)
        if (zl_pg_add_stmt(o->pg, sm_stmts[i].name, sm_stmts[i].sql, sm_stmts[i].nparams) != 0) {
            snprintf(errstr, errstr_size, "Solana minter: too many prepared statements on one connection");
            goto fail;
        }
    *out = m;
    return 0;
fail:
    free(m);
    return -1;
}

void zl_sol_minter_free(struct zl_sol_minter *m)
{
    free(m);
}

/* Sends stored bytes, best effort (the contract's "Sending"): only an
 * outage is passed on. */
static zl_class send_tx(struct zl_sol_minter *m, const char *b64, char *errstr, size_t errstr_size)
{
    json_t *params = json_pack("[s, {s:s, s:s}]", b64, "encoding", "base64", "preflightCommitment", "confirmed");
    json_t *res = NULL;
    struct zl_rpc_error re = {0};
    zl_class c = zl_rpc_call(m->o.rpc, "sendTransaction", params, &res, &re, errstr, errstr_size);
    json_decref(params);
    json_decref(res);
    if (c != ZL_OK && c != ZL_OUTAGE)
        zl_log_kv(ZL_LOG_INFO, NULL, "Solana send not taken; the next look decides", "error", errstr, NULL);
    return c == ZL_OUTAGE ? c : ZL_OK;
}

static zl_class rent_of(struct zl_sol_minter *m, size_t bytes, uint64_t *lamports, char *errstr, size_t errstr_size)
{
    json_t *params = json_pack("[I]", (json_int_t)bytes);
    json_t *res = NULL;
    zl_class c = zl_rpc_call(m->o.rpc, "getMinimumBalanceForRentExemption", params, &res, NULL, errstr, errstr_size);
    json_decref(params);
    if (c == ZL_OK && (!json_is_integer(res) || json_integer_value(res) <= 0)) {
        snprintf(errstr, errstr_size, "getMinimumBalanceForRentExemption: not a positive integer");
        c = ZL_TRANSIENT;
    }
    if (c == ZL_OK)
        *lamports = (uint64_t)json_integer_value(res);
    json_decref(res);
    return c;
}

/* Signs deposit_id's receipt with nonce account k's current value: the
 * base64 bytes, the signature and the value used. */
static zl_class sign_with(struct zl_sol_minter *m, size_t k, const char *deposit_id, const uint8_t owner[32],
                          const char *uri, char *b64, char *sig_b58, char *value_b58, char *errstr,
                          size_t errstr_size)
{
    bool exists = false;
    uint8_t value[ZL_SOL_KEY_SIZE];
    zl_class c = zl_sol_nonce_value(m->o.rpc, m->nonce_b58[k], "confirmed", &exists, value, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    if (!exists) {
        snprintf(errstr, errstr_size, "nonce account %s does not exist (create it: docs/runbook.md)",
                 m->nonce_b58[k]);
        return ZL_TRANSIENT;
    }
    uint64_t rent = 0;
    c = rent_of(m, zl_sol_receipt_account_size(m->o.name, m->o.symbol, uri), &rent, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    struct zl_sol_receipt_spec spec = {
        .deposit_id = deposit_id, .payer = m->o.payer, .name = m->o.name, .symbol = m->o.symbol, .uri = uri,
        .rent_lamports = rent, .cu_limit = m->o.cu_limit, .cu_price_micro_lamports = m->o.cu_price_micro_lamports};
    memcpy(spec.owner, owner, ZL_SOL_KEY_SIZE);
    memcpy(spec.nonce, m->nonce[k], ZL_SOL_KEY_SIZE);
    memcpy(spec.nonce_value, value, ZL_SOL_KEY_SIZE);
    uint8_t tx[ZL_SOL_TX_MAX], sig[ZL_SOL_SIG_SIZE], mint[ZL_SOL_KEY_SIZE], ata[ZL_SOL_KEY_SIZE];
    size_t len = 0;
    char err[ZL_ERRSTR_SIZE];
    if (zl_sol_receipt_tx(&spec, tx, &len, sig, mint, ata, err, sizeof(err)) != 0) {
        snprintf(errstr, errstr_size, "the receipt transaction cannot be built: %s", err);
        return ZL_PERMANENT; /* the deposit's own facts (its URI) do not fit */
    }
    sodium_bin2base64(b64, SOL_TX_B64_SIZE, tx, len, sodium_base64_VARIANT_ORIGINAL);
    zl_b58_encode(sig, sizeof(sig), sig_b58, ZL_B58_TEXT_MAX);
    zl_b58_encode(value, sizeof(value), value_b58, ZL_B58_TEXT_MAX);
    return ZL_OK;
}

static PGresult *run(struct zl_sol_minter *m, const char *name, int n, const char *const *vals, zl_class *c,
                     char *errstr, size_t errstr_size)
{
    return zl_pg_prepared(m->o.pg, name, n, vals, PGRES_TUPLES_OK, c, errstr, errstr_size);
}

/* Nothing stored yet: sign with a free nonce account, store, then send. */
static zl_class sign_new(struct zl_sol_minter *m, const char *deposit_id, const char *owner_b58,
                         const uint8_t owner[32], const char *uri, struct zl_sol_mint_result *res, char *errstr,
                         size_t errstr_size)
{
    zl_class c;
    const char *bv[1] = {m->cluster};
    PGresult *r = run(m, "sm_busy", 1, bv, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    bool busy[ZL_SOL_NONCE_ACCOUNTS_MAX] = {false};
    for (int i = 0; i < PQntuples(r); i++)
        for (size_t k = 0; k < m->nnonce; k++)
            busy[k] = busy[k] || strcmp(PQgetvalue(r, i, 0), m->nonce_b58[k]) == 0;
    PQclear(r);
    /* Start at a place fixed by the deposit, so copies spread over the accounts. */
    uint32_t h = 2166136261u;
    for (const char *p = deposit_id; *p != '\0'; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    for (size_t j = 0; j < m->nnonce; j++) {
        size_t k = (h + j) % m->nnonce;
        if (busy[k])
            continue;
        char b64[SOL_TX_B64_SIZE], sig[ZL_B58_TEXT_MAX], value[ZL_B58_TEXT_MAX];
        c = sign_with(m, k, deposit_id, owner, uri, b64, sig, value, errstr, errstr_size);
        if (c != ZL_OK)
            return c;
        zl_fault_point("sol_mint_after_sign"); /* signed, not stored: signed anew after a restart */
        if ((c = zl_pg_exec(m->o.pg, "BEGIN", errstr, errstr_size)) != ZL_OK)
            return c;
        const char *sv[8] = {deposit_id, m->cluster, m->nonce_b58[k], value, sig, b64, res->mint, owner_b58};
        r = run(m, "sm_store", 8, sv, &c, errstr, errstr_size);
        if (r == NULL)
            goto fail;
        bool stored = PQntuples(r) == 1;
        PQclear(r);
        if (!stored) {
            zl_pg_rollback(m->o.pg);
            continue; /* taken under us: the next account (or the deposit's own, read next step) */
        }
        const char *dv[1] = {deposit_id};
        r = zl_pg_prepared(m->o.pg, "sm_submitted", 1, dv, PGRES_COMMAND_OK, &c, errstr, errstr_size);
        if (r == NULL)
            goto fail;
        PQclear(r);
        if ((c = zl_pg_exec(m->o.pg, "COMMIT", errstr, errstr_size)) != ZL_OK)
            return c;
        /* Stored: from here on a crash only sends these bytes again. */
        zl_fault_point("sol_mint_after_store");
        snprintf(res->signature, sizeof(res->signature), "%s", sig);
        res->step = "signed";
        res->wait_ms = SOL_MINT_LOOK_AGAIN_MS;
        return send_tx(m, b64, errstr, errstr_size);
    }
    res->step = "every nonce account busy";
    res->wait_ms = SOL_MINT_LOOK_AGAIN_MS;
    res->queued = true;
    return ZL_OK;
fail:
    zl_pg_rollback(m->o.pg);
    return c;
}

zl_class zl_sol_mint_step(struct zl_sol_minter *m, const char *deposit_id, const char *owner_b58, const char *uri,
                          struct zl_sol_mint_result *res, char *errstr, size_t errstr_size)
{
    memset(res, 0, sizeof(*res));
    uint8_t owner[ZL_SOL_KEY_SIZE], mint[ZL_SOL_KEY_SIZE];
    char err[ZL_ERRSTR_SIZE];
    if (zl_b58_decode_exact(owner_b58, owner, sizeof(owner)) != 0 ||
        zl_sol_receipt_mint(m->o.payer->pub, deposit_id, mint, err, sizeof(err)) != 0) {
        snprintf(errstr, errstr_size, "the receipt's owner \"%s\" is not a Solana key", owner_b58);
        return ZL_PERMANENT;
    }
    zl_b58_encode(mint, sizeof(mint), res->mint, sizeof(res->mint));
    zl_class c = zl_pg_ensure(m->o.pg, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    const char *gv[1] = {deposit_id};
    PGresult *r = run(m, "sm_get", 1, gv, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return sign_new(m, deposit_id, owner_b58, owner, uri, res, errstr, errstr_size);
    }
    char nonce_b58[ZL_B58_TEXT_MAX], value_b58[ZL_B58_TEXT_MAX], sig[ZL_B58_TEXT_MAX], state[16];
    char *b64 = strdup(PQgetvalue(r, 0, 3));
    zl_pg_copy_value(nonce_b58, sizeof(nonce_b58), r, 0, 0);
    zl_pg_copy_value(value_b58, sizeof(value_b58), r, 0, 1);
    zl_pg_copy_value(sig, sizeof(sig), r, 0, 2);
    zl_pg_copy_value(state, sizeof(state), r, 0, 4);
    PQclear(r);
    if (b64 == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return ZL_TRANSIENT;
    }
    snprintf(res->signature, sizeof(res->signature), "%s", sig);
    if (strcmp(state, "done") == 0) {
        res->done = true;
        res->step = "done before";
        free(b64);
        return ZL_OK;
    }
    uint8_t nonce[ZL_SOL_KEY_SIZE], value[ZL_SOL_KEY_SIZE];
    size_t k = 0;
    while (k < m->nnonce && strcmp(m->nonce_b58[k], nonce_b58) != 0)
        k++;
    if (zl_b58_decode_exact(nonce_b58, nonce, sizeof(nonce)) != 0 ||
        zl_b58_decode_exact(value_b58, value, sizeof(value)) != 0) {
        snprintf(errstr, errstr_size, "stored receipt of %s: a nonce that is not a key", deposit_id);
        free(b64);
        return ZL_TRANSIENT;
    }
    struct zl_sol_receipt_seen seen;
    c = zl_sol_receipt_look(m->o.rpc, sig, nonce, value, mint, &seen, errstr, errstr_size);
    if (c != ZL_OK) {
        free(b64);
        return c;
    }
    enum zl_sol_receipt_next next = zl_sol_receipt_next(&seen);
    res->step = zl_sol_receipt_next_name(next);
    res->wait_ms = SOL_MINT_LOOK_AGAIN_MS;
    switch (next) {
    case ZL_SOL_RECEIPT_DONE:
        r = zl_pg_prepared(m->o.pg, "sm_done", 1, gv, PGRES_COMMAND_OK, &c, errstr, errstr_size);
        if (r != NULL) {
            PQclear(r);
            res->done = true;
        }
        break;
    case ZL_SOL_RECEIPT_SEND:
        c = send_tx(m, b64, errstr, errstr_size);
        break;
    case ZL_SOL_RECEIPT_WAIT:
        break;
    case ZL_SOL_RECEIPT_RESIGN:
        if (k == m->nnonce) {
            /* Its nonce account is no longer configured: it cannot be signed
             * with again here, and the deposit waits for an operator. */
            snprintf(errstr, errstr_size, "stored receipt of %s uses nonce account %s, which is not configured",
                     deposit_id, nonce_b58);
            c = ZL_TRANSIENT;
            break;
        }
        char nb64[SOL_TX_B64_SIZE], nsig[ZL_B58_TEXT_MAX], nvalue[ZL_B58_TEXT_MAX];
        c = sign_with(m, k, deposit_id, owner, uri, nb64, nsig, nvalue, errstr, errstr_size);
        if (c != ZL_OK)
            break;
        const char *rv[5] = {deposit_id, nvalue, nsig, nb64, sig};
        r = run(m, "sm_resign", 5, rv, &c, errstr, errstr_size);
        if (r == NULL)
            break;
        bool moved = PQntuples(r) == 1;
        PQclear(r);
        if (moved) {
            snprintf(res->signature, sizeof(res->signature), "%s", nsig);
            c = send_tx(m, nb64, errstr, errstr_size);
        }
        break;
    }
    free(b64);
    return c;
}

zl_class zl_sol_minter_balance(struct zl_sol_minter *m, uint64_t *lamports, char *errstr, size_t errstr_size)
{
    char payer[ZL_B58_TEXT_MAX];
    zl_b58_encode(m->o.payer->pub, ZL_SOL_KEY_SIZE, payer, sizeof(payer));
    json_t *params = json_pack("[s, {s:s}]", payer, "commitment", "confirmed");
    json_t *res = NULL;
    zl_class c = zl_rpc_call(m->o.rpc, "getBalance", params, &res, NULL, errstr, errstr_size);
    json_decref(params);
    json_t *v = json_object_get(res, "value");
    if (c == ZL_OK && (!json_is_integer(v) || json_integer_value(v) < 0)) {
        snprintf(errstr, errstr_size, "getBalance: no integer value");
        c = ZL_TRANSIENT;
    }
    if (c == ZL_OK)
        *lamports = (uint64_t)json_integer_value(v);
    json_decref(res);
    return c;
}
