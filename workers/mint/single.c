/* single.c: one deposit, one mint(to, id, uri) transaction: estimate, price,
 * allocate a nonce, sign and store before broadcast, then drive the stored
 * transaction to its receipt (common/txmgr.h). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ethtx.h"
#include "fault.h"
#include "keccak.h"
#include "mint.h"
#include "revert.h"

bool mint_bad_depositor(struct zl_work *w)
{
    if (zl_valid_address(w->row.facts.from) && strcmp(w->row.facts.from, "0x0000000000000000000000000000000000000000") != 0)
        return false;
    snprintf(w->error, sizeof(w->error), "depositor address %s cannot receive an NFT", w->row.facts.from);
    return true;
}

uint64_t mint_gas_limit(const struct mint *m, uint64_t estimate, size_t k)
{
    if (m->cfg.gas_limit > 0)
        return (uint64_t)m->cfg.gas_limit * k;
    return estimate + estimate * (uint64_t)m->cfg.gas_margin_pct / 100;
}

void mint_revert_reason(const struct zl_rpc_error *re, const char *node_text, char *out, size_t out_size)
{
    if (zl_hex_has_prefix(re->data))
        zl_revert_describe(re->data, out, out_size);
    else
        snprintf(out, out_size, "%s", node_text);
}

/* The calldata of this deposit's mint, and its token id. */
static zl_class mint_calldata(const struct zl_work *w, uint8_t *data, size_t cap, size_t *len, uint8_t id[32],
                              char *errstr, size_t errstr_size)
{
    uint8_t to[20];
    zl_keccak256(w->in.deposit_id, strlen(w->in.deposit_id), id);
    if (zl_tx_parse_address(w->row.facts.from, to) != 0 || zl_abi_mint(to, id, w->row.facts.token_uri, data, cap, len) != 0) {
        snprintf(errstr, errstr_size, "cannot encode mint(%s, id, %s)", w->row.facts.from, w->row.facts.token_uri);
        return ZL_PERMANENT;
    }
    return ZL_OK;
}

/* Estimates, prices, allocates a nonce, signs and stores this deposit's
 * mint. *done with hash set when the token turns out to exist already. */
static zl_class new_mint(struct mint *m, struct zl_work *w, struct zl_nonce_tx *slot, bool *done,
                         char hash[ZL_HASH_HEX_SIZE])
{
    *done = false;
    static uint8_t data[ZL_TX_DATA_MAX];
    size_t len;
    uint8_t id[32];
    zl_class c = mint_calldata(w, data, sizeof(data), &len, id, w->error, sizeof(w->error));
    if (c != ZL_OK)
        return c;
    uint64_t gas;
    bool reverts;
    struct zl_rpc_error re;
    c = zl_txmgr_estimate(&m->tx, data, len, &gas, &reverts, &re, w->error, sizeof(w->error));
    if (reverts && zl_tx_revert_is(&re, ZL_ABI_TOKEN_EXISTS_REVERT)) {
        bool none;
        c = mint_already_minted(m, w, id, hash, &none);
        *done = c == ZL_OK;
        return c;
    }
    if (reverts) {
        /* Any other revert: the mint will never work. w->error says why,
         * in the ABIs' words: the row's last_error and the DLQ header. */
        char reason[ZL_ERRSTR_SIZE - 32];
        mint_revert_reason(&re, w->error, reason, sizeof(reason));
        snprintf(w->error, sizeof(w->error), "mint would revert: %s", reason);
        struct zl_log_ctx lc;
        zl_work_log_ctx(w, &lc);
        zl_log_kv(ZL_LOG_WARN, &lc, "mint would revert", "reason", reason, NULL);
        return ZL_PERMANENT;
    }
    if (c != ZL_OK)
        return c;
    gas = mint_gas_limit(m, gas, 1);
    struct zl_tx_fees f;
    uint64_t floor;
    c = zl_txmgr_fees(&m->tx, &f, w->error, sizeof(w->error));
    if (c == ZL_OK)
        c = zl_txmgr_chain_nonce(&m->tx, &floor, w->error, sizeof(w->error));
    if (c != ZL_OK)
        return c;

    uint64_t nonce;
    bool found, wrong_state;
    c = zl_nonce_begin(&m->pg, m->chain_id, m->key.address_hex, w->in.deposit_id, floor,
                       (uint64_t)m->cfg.inflight_max, &nonce, slot, &found, &wrong_state, w->error, sizeof(w->error));
    if (c != ZL_OK || found)
        return c; /* found: another copy stored this deposit's mint first: drive that one */
    c = zl_txmgr_sign_call(&m->tx, nonce, &f, gas, data, len, "mint", slot, w->error, sizeof(w->error));
    if (c != ZL_OK) {
        zl_nonce_abort(&m->pg);
        return c;
    }
    zl_fault_point("mint_after_sign"); /* signed, nothing stored: the bytes die with the process */
    c = zl_nonce_store(&m->pg, slot, w->in.deposit_id, w->error, sizeof(w->error));
    if (c != ZL_OK) {
        /* Rolled back: nothing was stored, so the bytes must never leave. */
        zl_nonce_tx_clear(slot);
        return c;
    }
    zl_txmgr_stored(slot);
    struct zl_log_ctx lc;
    zl_work_log_ctx(w, &lc);
    char n[ZL_INT64_DEC_SIZE];
    snprintf(n, sizeof(n), "%" PRIu64, nonce);
    zl_log_kv(ZL_LOG_INFO, &lc, "mint signed and stored", "nonce", n, "tx_hash", slot->tx_hash, NULL);
    zl_fault_point("mint_after_store");
    return ZL_OK;
}

/* One deposit's stored mint (single or batch) driven to its outcome. */
static zl_class drive(struct mint *m, struct zl_work *w, struct zl_nonce_tx *slot, char hash[ZL_HASH_HEX_SIZE])
{
    struct zl_log_ctx lc;
    zl_work_log_ctx(w, &lc);
    struct zl_tx_receipt r = {0};
    bool refused;
    zl_class c = zl_txmgr_drive(&m->tx, slot, &lc, &r, &refused, w->error, sizeof(w->error));
    if (c == ZL_OK && refused)
        c = mint_refused_class(slot);
    else if (c == ZL_OK)
        c = mint_verdict(m, w, slot, &r, hash);
    zl_tx_receipt_clear(&r);
    return c;
}

zl_class mint_process(void *ctx, struct zl_work *w)
{
    struct mint *m = ctx;
    zl_class c = zl_pg_ensure(&m->pg, w->error, sizeof(w->error));
    if (c != ZL_OK)
        return c;
    zl_txmgr_janitor(&m->tx);
    if (mint_bad_depositor(w))
        return ZL_PERMANENT;
    struct zl_nonce_tx slot;
    memset(&slot, 0, sizeof(slot));
    bool found;
    char hash[ZL_HASH_HEX_SIZE] = "";
    c = zl_nonce_find_for_deposit(&m->pg, m->chain_id, m->key.address_hex, w->in.deposit_id, &slot, &found, w->error,
                                  sizeof(w->error));
    if (c != ZL_OK)
        return c;
    if (!found) {
        bool done;
        c = new_mint(m, w, &slot, &done, hash);
        if (c != ZL_OK || done) {
            zl_nonce_tx_clear(&slot);
            if (c == ZL_OK)
                mint_fill_out(m, w, hash);
            return c;
        }
    }
    c = drive(m, w, &slot, hash);
    zl_nonce_tx_clear(&slot);
    if (c == ZL_OK)
        mint_done(m, w, hash);
    return c;
}
