/* txmgr_drive.c: a stored transaction driven to a confirmed receipt:
 * receipts, re-sends, fee bumps, nonce fillers and the janitor (txmgr.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fault.h"
#include "hex.h"
#include "txmgr.h"

/* Fillers the janitor handles per pass. */
#define TXMGR_FILLERS_PER_PASS_MAX 16
/* The first receipt poll after a broadcast; later ones double up to
 * receipt_poll_ms. */
#define TXMGR_RECEIPT_FIRST_POLL_MS 5
/* Gas of a 0-value transfer to an account without code. */
#define TXMGR_FILLER_GAS 21000
/* With the window, how long a drive polls for a receipt before the caller
 * defers: long enough for a node that mines on arrival, far below a block
 * of a timed chain (holding the partition for a block is what the window
 * removes). */
#define TXMGR_WINDOW_POLL_MS 50
/* Pending txs the window's gap repair re-sends per janitor pass, at most. */
#define TXMGR_GAP_REPAIR_MAX 64

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

void zl_tx_receipt_clear(struct zl_tx_receipt *r)
{
    json_decref(r->logs);
    memset(r, 0, sizeof(*r));
}

/* Looks for a receipt of any hash ever signed at the slot's nonce, newest
 * first. ZL_OK with r->found false when none is mined yet. */
static zl_class find_receipt(struct zl_txmgr *t, const struct zl_nonce_tx *slot, struct zl_tx_receipt *r,
                             char *errstr, size_t errstr_size)
{
    zl_tx_receipt_clear(r);
    for (int i = slot->nhashes - 1; i >= 0; i--) {
        json_t *res;
        zl_class c = zl_txmgr_read(t, "eth_getTransactionReceipt", json_pack("[s]", slot->hashes[i]), &res, NULL,
                                   errstr, errstr_size);
        if (c != ZL_OK)
            return c;
        uint64_t block, status;
        if (json_is_object(res) && zl_rpc_parse_quantity(json_object_get(res, "blockNumber"), &block) == 0 &&
            zl_rpc_parse_quantity(json_object_get(res, "status"), &status) == 0) {
            r->found = true;
            snprintf(r->hash, sizeof(r->hash), "%s", slot->hashes[i]);
            r->block = (int64_t)block;
            r->status = (int)status;
            if (status == 1)
                r->logs = json_incref(json_object_get(res, "logs"));
            json_decref(res);
            return ZL_OK;
        }
        json_decref(res);
    }
    return ZL_OK;
}

/* The replacement's call: the stored bytes' own recipient and calldata, so
 * any call of the contract is bumped alike; decoded into static storage
 * (one at a time). Both sides of the boundary: the bytes we stored must
 * decode back to a call of our contract, or we sign nothing. */
static zl_class stored_call(struct zl_txmgr *t, const struct zl_nonce_tx *slot, struct zl_tx *tx, char *errstr,
                            size_t errstr_size)
{
    static uint8_t raw[ZL_TX_RAW_MAX];
    static struct zl_tx_decoded old;
    size_t len;
    char err[ZL_ERRSTR_SIZE];
    if (zl_hex_decode(slot->raw_hex, raw, sizeof(raw), &len) != 0 ||
        zl_tx_decode(raw, len, &old, err, sizeof(err)) != 0 || memcmp(old.tx.to, t->o.contract, 20) != 0) {
        snprintf(errstr, errstr_size, "stored tx %s at nonce %" PRIu64 " does not decode to a call of %s",
                 slot->tx_hash, slot->nonce, t->contract_hex);
        return ZL_PERMANENT;
    }
    memcpy(tx->to, t->o.contract, 20);
    tx->data = old.tx.data;
    tx->data_len = old.tx.data_len;
    return ZL_OK;
}

/* Re-signs the slot's nonce with both fees raised: the same call, or (when
 * to_filler) a 0-value self-send that only fills the nonce. Stores it with a
 * compare-and-set on the current hash, updates slot, and sends it once. */
static zl_class resign(struct zl_txmgr *t, struct zl_nonce_tx *slot, bool to_filler, const struct zl_log_ctx *lc,
                       char *errstr, size_t errstr_size)
{
    struct zl_tx_fees f;
    zl_class c = zl_tx_fees_replacement(&t->o, slot, &f, errstr, errstr_size);
    if (c == ZL_DEFER && to_filler)
        c = ZL_OK; /* f holds the bump: a filler's 21000 gas may pass the cap, it is what frees the nonce */
    if (c != ZL_OK)
        return c;
    struct zl_tx tx = {.type = f.type, .chain_id = t->o.chain_id, .nonce = slot->nonce,
                       .max_priority_fee_wei = f.priority_fee_wei, .max_fee_wei = f.max_fee_wei,
                       .gas_limit = slot->gas_limit};
    if (to_filler) {
        memcpy(tx.to, t->o.key->address, 20);
        tx.gas_limit = TXMGR_FILLER_GAS;
    } else {
        c = stored_call(t, slot, &tx, errstr, errstr_size);
        if (c != ZL_OK)
            return c;
    }
    struct zl_nonce_tx rec;
    c = zl_txmgr_sign(t, &tx, to_filler ? "filler" : slot->purpose, &rec, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    bool replaced;
    c = zl_nonce_replace(t->o.pg, &rec, slot->tx_hash, to_filler, &replaced, errstr, errstr_size);
    if (c != ZL_OK || !replaced) {
        zl_nonce_tx_clear(&rec);
        if (c != ZL_OK)
            return c;
        snprintf(errstr, errstr_size, "nonce %" PRIu64 " was replaced or mined meanwhile: looking again",
                 slot->nonce);
        return ZL_TRANSIENT;
    }
    char n[ZL_INT64_DEC_SIZE], fee[ZL_INT64_DEC_SIZE];
    snprintf(n, sizeof(n), "%" PRIu64, slot->nonce);
    snprintf(fee, sizeof(fee), "%" PRIu64, tx.max_fee_wei);
    zl_log_kv(ZL_LOG_WARN, lc, to_filler ? "nonce filled with a self-send" : "stuck tx replaced with higher fees",
              "nonce", n, "old_hash", slot->tx_hash, "new_hash", rec.tx_hash, "max_fee_wei", fee, NULL);
    free(slot->raw_hex);
    slot->raw_hex = rec.raw_hex;
    rec.raw_hex = NULL; /* now owned by slot */
    snprintf(slot->tx_hash, sizeof(slot->tx_hash), "%s", rec.tx_hash);
    if (slot->nhashes < ZL_NONCE_HASHES_MAX)
        snprintf(slot->hashes[slot->nhashes++], sizeof(slot->hashes[0]), "%s", rec.tx_hash);
    slot->max_fee_wei = rec.max_fee_wei;
    slot->priority_fee_wei = rec.priority_fee_wei;
    slot->signed_age_ms = 0;
    zl_class bc;
    char err[ZL_ERRSTR_SIZE];
    zl_txmgr_broadcast(t, slot, &bc, err, sizeof(err)); /* the next drive re-sends if this fails */
    return ZL_OK;
}

static void janitor_pass(struct zl_txmgr *t, bool fillers_only, uint64_t from_nonce, size_t max, uint64_t below,
                         bool resend);

/* Records a found receipt and checks its confirmations. */
static zl_class settle(struct zl_txmgr *t, const struct zl_nonce_tx *slot, const struct zl_tx_receipt *r,
                       char *errstr, size_t errstr_size)
{
    zl_class c = zl_nonce_mark_mined(t->o.pg, t->o.chain_id, t->signer_hex, slot->nonce, r->hash, r->block,
                                     r->status, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    /* A filler below this nonce is mined too (nonces run in order): record
     * it now, without re-sending any. The janitor runs only when a message
     * comes, and this may be the last one for a while (test_mint_window's
     * fee-cap test waited for the filler's receipt on an idle stage). */
    janitor_pass(t, true, 0, TXMGR_FILLERS_PER_PASS_MAX, slot->nonce, false);
    c = zl_txmgr_read_head(t, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    int64_t have = t->head_block - r->block + 1;
    if (have < t->o.confirmations) {
        snprintf(errstr, errstr_size, "tx %s in block %" PRId64 " has %" PRId64 " of %" PRId64 " confirmations",
                 r->hash, r->block, have, t->o.confirmations);
        return ZL_DEFER;
    }
    return ZL_OK;
}

/* The node refused the slot's bytes for good: note why, fill the nonce with
 * a self-send, and record the filler's receipt when it comes within
 * receipt_wait_ms (otherwise the janitor re-sends and records it). */
static zl_class fill_refused(struct zl_txmgr *t, struct zl_nonce_tx *slot, const char *why,
                             const struct zl_log_ctx *lc, char *errstr, size_t errstr_size)
{
    char err[ZL_ERRSTR_SIZE];
    zl_nonce_note_error(t->o.pg, t->o.chain_id, t->signer_hex, slot->nonce, why, err, sizeof(err));
    zl_class c = resign(t, slot, true /* to_filler */, lc, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    struct zl_tx_receipt fr = {0};
    for (int64_t start = zl_now_ms(); zl_now_ms() - start < t->o.receipt_wait_ms; sleep_ms(t->o.receipt_poll_ms)) {
        if (find_receipt(t, slot, &fr, err, sizeof(err)) != ZL_OK)
            break;
        if (fr.found) {
            zl_nonce_mark_mined(t->o.pg, t->o.chain_id, t->signer_hex, slot->nonce, fr.hash, fr.block, fr.status,
                                err, sizeof(err));
            break;
        }
    }
    zl_tx_receipt_clear(&fr);
    snprintf(errstr, errstr_size, "%s; nonce filled by self-send %s", why, slot->tx_hash);
    return ZL_OK;
}

/* Polls for a receipt up to receipt_wait_ms. The first polls come soon and
 * the pause doubles up to receipt_poll_ms: a node that mines on arrival (or
 * a block just due) answers within milliseconds, and a flat 100 ms pause
 * was the whole cost of a mint there; on a 3 s chain it adds ~5 polls. */
static zl_class poll_receipt(struct zl_txmgr *t, const struct zl_nonce_tx *slot, int64_t wait_ms,
                             struct zl_tx_receipt *r, char *errstr, size_t errstr_size)
{
    int64_t start = zl_now_ms();
    int64_t pause_ms = TXMGR_RECEIPT_FIRST_POLL_MS;
    for (;;) {
        zl_class c = find_receipt(t, slot, r, errstr, errstr_size);
        if (c != ZL_OK || r->found)
            return c;
        int64_t waited = zl_now_ms() - start;
        if (waited >= wait_ms)
            return ZL_OK;
        sleep_ms(pause_ms < wait_ms - waited ? pause_ms : wait_ms - waited);
        pause_ms = pause_ms * 2 < t->o.receipt_poll_ms ? pause_ms * 2 : t->o.receipt_poll_ms;
    }
}

/* No receipt of any of the slot's hashes: did another sender take its
 * nonce? The chain's count is read first and the receipts again after it,
 * so a tx of ours mined meanwhile is found, never taken for a stranger's.
 * Taken: the row is marked so, ZL_TRANSIENT with errstr saying why (the
 * caller's retry signs anew). *count: the chain's nonce (the lowest not
 * mined). */
static zl_class check_taken(struct zl_txmgr *t, const struct zl_nonce_tx *slot, const struct zl_log_ctx *lc,
                            uint64_t *count, char *errstr, size_t errstr_size)
{
    zl_class c = zl_txmgr_read_quantity(t, "eth_getTransactionCount", json_pack("[s s]", t->signer_hex, "latest"),
                                        count, errstr, errstr_size);
    if (c != ZL_OK || *count <= slot->nonce)
        return c;
    struct zl_tx_receipt r = {0};
    c = find_receipt(t, slot, &r, errstr, errstr_size);
    bool mined = r.found;
    zl_tx_receipt_clear(&r);
    if (c != ZL_OK || mined)
        return c; /* ours after all: the next drive records it */
    char why[ZL_ERRSTR_SIZE];
    snprintf(why, sizeof(why), "nonce %" PRIu64 " of %s was used by another sender (chain nonce %" PRIu64
             ", no receipt of our %d hashes): the same key is used outside zeroloss; minting again at a later nonce",
             slot->nonce, t->signer_hex, *count, slot->nhashes);
    bool marked;
    c = zl_nonce_mark_taken(t->o.pg, t->o.chain_id, t->signer_hex, slot->nonce, why, &marked, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    char n[ZL_INT64_DEC_SIZE];
    snprintf(n, sizeof(n), "%" PRIu64, slot->nonce);
    zl_log_kv(ZL_LOG_ERROR, lc, "nonce taken outside zeroloss", "nonce", n, "signer", t->signer_hex, "tx_hash",
              slot->tx_hash, NULL);
    snprintf(errstr, errstr_size, "%s", why);
    return ZL_TRANSIENT;
}

/* Pending long enough to bump: by the wall clock (stuck_ms since signed) or
 * by the chain (bump_after_blocks blocks since signed). Only the chain's
 * next nonce is ever stuck: a later one waits for it, whatever its fees,
 * and bumping it would only spend its fee budget (up to a filler). */
static bool is_stuck(struct zl_txmgr *t, const struct zl_nonce_tx *slot, uint64_t count, int64_t polled_ms)
{
    if (slot->nonce != count)
        return false;
    if (slot->signed_age_ms + polled_ms >= t->o.stuck_ms)
        return true;
    if (t->o.bump_after_blocks <= 0 || slot->signed_block < 0)
        return false;
    char err[ZL_ERRSTR_SIZE];
    return zl_txmgr_read_head(t, err, sizeof(err)) == ZL_OK &&
           t->head_block - slot->signed_block >= t->o.bump_after_blocks;
}

/* Replaces the stuck slot with higher fees; when that would pass the fee
 * cap, frees the nonce with a filler self-send instead (ZL_TRANSIENT:
 * nothing the slot carried will happen). */
static zl_class bump(struct zl_txmgr *t, struct zl_nonce_tx *slot, const struct zl_log_ctx *lc, char *errstr,
                     size_t errstr_size)
{
    zl_class c = resign(t, slot, false, lc, errstr, errstr_size);
    if (c != ZL_DEFER)
        return c;
    char why[ZL_ERRSTR_SIZE];
    snprintf(why, sizeof(why), "%s", errstr);
    char err[ZL_ERRSTR_SIZE];
    zl_nonce_note_error(t->o.pg, t->o.chain_id, t->signer_hex, slot->nonce, why, err, sizeof(err));
    c = resign(t, slot, true /* to_filler */, lc, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    snprintf(errstr, errstr_size, "fee cap reached (%s): nonce %" PRIu64 " freed by self-send %s; minting again "
             "at a later nonce", why, slot->nonce, slot->tx_hash);
    return ZL_TRANSIENT;
}

/* Sends the slot's current bytes once and acts on the node's answer,
 * *why: refused for good, the nonce is filled with a self-send (the
 * filler's class, *refused when that worked); not sent, the error is noted
 * on the row and its class returned (errstr why); sent, ZL_OK. The one
 * reading of a broadcast for zl_txmgr_drive and zl_txmgr_send_new. */
static zl_class send_read(struct zl_txmgr *t, struct zl_nonce_tx *slot, const struct zl_log_ctx *lc, zl_tx_reason *why,
                          bool *refused, char *errstr, size_t errstr_size)
{
    *refused = false;
    zl_class bc;
    char err[ZL_ERRSTR_SIZE];
    *why = zl_txmgr_broadcast(t, slot, &bc, err, sizeof(err));
    zl_fault_point("tx_after_broadcast");
    if (*why == ZL_TX_REFUSED) {
        zl_class c = fill_refused(t, slot, err, lc, errstr, errstr_size);
        *refused = c == ZL_OK;
        return c;
    }
    if (*why != ZL_TX_SENT) {
        zl_nonce_note_error(t->o.pg, t->o.chain_id, t->signer_hex, slot->nonce, err, errstr, errstr_size);
        snprintf(errstr, errstr_size, "%s", err);
        return bc;
    }
    return ZL_OK;
}

zl_class zl_txmgr_drive(struct zl_txmgr *t, struct zl_nonce_tx *slot, const struct zl_log_ctx *lc,
                        struct zl_tx_receipt *r, bool *refused, char *errstr, size_t errstr_size)
{
    *refused = false;
    zl_class c = find_receipt(t, slot, r, errstr, errstr_size);
    if (c != ZL_OK || r->found)
        return c == ZL_OK ? settle(t, slot, r, errstr, errstr_size) : c;
    zl_tx_reason why;
    c = send_read(t, slot, lc, &why, refused, errstr, errstr_size);
    if (why == ZL_TX_REFUSED)
        return c;
    if (why != ZL_TX_SENT && (c != ZL_TRANSIENT || slot->signed_age_ms < t->o.stuck_ms))
        return c;
    /* sent, or not sent for a reason a bump may cure (e.g. the fee fell
     * below the base fee): on to the receipt and the stuck check */
    int64_t start = zl_now_ms();
    int64_t wait_ms = t->o.inflight_max > 1 && t->o.receipt_wait_ms > TXMGR_WINDOW_POLL_MS ? TXMGR_WINDOW_POLL_MS
                                                                                          : t->o.receipt_wait_ms;
    c = poll_receipt(t, slot, wait_ms, r, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    if (r->found)
        return settle(t, slot, r, errstr, errstr_size);
    uint64_t count;
    c = check_taken(t, slot, lc, &count, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    if (is_stuck(t, slot, count, zl_now_ms() - start)) {
        c = bump(t, slot, lc, errstr, errstr_size);
        if (c != ZL_OK)
            return c;
    }
    snprintf(errstr, errstr_size, "tx %s at nonce %" PRIu64 " not mined yet", slot->tx_hash, slot->nonce);
    return ZL_DEFER;
}

zl_class zl_txmgr_send_new(struct zl_txmgr *t, struct zl_nonce_tx *slot, const struct zl_log_ctx *lc, bool *refused,
                           char *errstr, size_t errstr_size)
{
    zl_tx_reason why; /* signed a moment ago: never stuck yet, so every answer is final here */
    return send_read(t, slot, lc, &why, refused, errstr, errstr_size);
}

zl_class zl_txmgr_peek(struct zl_txmgr *t, const struct zl_nonce_tx *slot, struct zl_tx_receipt *r, char *errstr,
                       size_t errstr_size)
{
    zl_class c = find_receipt(t, slot, r, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    if (r->found)
        return settle(t, slot, r, errstr, errstr_size);
    snprintf(errstr, errstr_size, "tx %s at nonce %" PRIu64 " not mined yet", slot->tx_hash, slot->nonce);
    return ZL_DEFER;
}

/* One janitor pass over up to max pending txs (fillers_only: fillers) from
 * from_nonce up and below `below`: a mined one's receipt is recorded, the
 * others re-sent when resend. */
static void janitor_pass(struct zl_txmgr *t, bool fillers_only, uint64_t from_nonce, size_t max, uint64_t below,
                         bool resend)
{
    static struct zl_nonce_tx pending[TXMGR_GAP_REPAIR_MAX];
    size_t n = 0;
    char err[ZL_ERRSTR_SIZE];
    if (zl_nonce_pending(t->o.pg, t->o.chain_id, t->signer_hex, fillers_only, from_nonce, pending,
                         max < TXMGR_GAP_REPAIR_MAX ? max : TXMGR_GAP_REPAIR_MAX, &n, err, sizeof(err)) != ZL_OK) {
        zl_log(ZL_LOG_WARN, NULL, "janitor: %s", err);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct zl_tx_receipt r = {0};
        if (pending[i].nonce >= below) {
            /* not asked about: no RPC */
        } else if (find_receipt(t, &pending[i], &r, err, sizeof(err)) == ZL_OK && r.found) {
            zl_nonce_mark_mined(t->o.pg, t->o.chain_id, t->signer_hex, pending[i].nonce, r.hash, r.block, r.status,
                                err, sizeof(err));
        } else if (resend) {
            zl_class bc;
            if (zl_txmgr_broadcast(t, &pending[i], &bc, err, sizeof(err)) != ZL_TX_SENT)
                zl_log(ZL_LOG_WARN, NULL, "janitor: %s at nonce %" PRIu64 ": %s", pending[i].purpose,
                       pending[i].nonce, err);
        }
        zl_tx_receipt_clear(&r);
        zl_nonce_tx_clear(&pending[i]);
    }
}

void zl_txmgr_janitor(struct zl_txmgr *t)
{
    int64_t now = zl_now_ms();
    if (now < t->next_janitor_ms)
        return;
    t->next_janitor_ms = now + t->o.janitor_ms;
    janitor_pass(t, true, 0, TXMGR_FILLERS_PER_PASS_MAX, UINT64_MAX, true);
    if (t->o.inflight_max <= 1)
        return;
    /* The window's gap repair: every pending tx from the chain's nonce up,
     * lowest first. Below it, drives settle their own (mined or taken). */
    uint64_t floor;
    char err[ZL_ERRSTR_SIZE];
    if (zl_txmgr_read_quantity(t, "eth_getTransactionCount", json_pack("[s s]", t->signer_hex, "latest"), &floor,
                               err, sizeof(err)) != ZL_OK) {
        zl_log(ZL_LOG_WARN, NULL, "janitor: %s", err);
        return;
    }
    janitor_pass(t, false, floor, (size_t)t->o.inflight_max, UINT64_MAX, true);
}
