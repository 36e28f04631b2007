/* judge.c: what the chain says of each deposit of a poll batch (main.c's
 * top comment lists the outcomes). Every fact is read once per batch and,
 * with ZL_RPC_QUORUM > 1, from a quorum (chain_batch.h): the receipts, the
 * blocks' canonical hashes, and the head or the safe/finalized block.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "verify.h"

/* The deposit is gone from the chain: mark its row reorged (only while it
 * still names the orphaned block, so a re-inclusion the detector recorded
 * meanwhile wins) and defer, so the redelivery finds the row `reorged` and
 * finishes with no output. */
static zl_class gone(struct verify *v, struct zl_work *w, const char *why)
{
    char err[ZL_ERRSTR_SIZE];
    zl_class c = zl_pg_ensure(&v->pg, err, sizeof(err));
    if (c == ZL_OK) {
        const char *vals[3] = {w->in.deposit_id, w->row.block_hash, why};
        PGresult *r = zl_pg_prepared(&v->pg, "verify_mark_reorged", 3, vals, PGRES_COMMAND_OK, &c, err, sizeof(err));
        if (r != NULL)
            PQclear(r);
    }
    if (c != ZL_OK) {
        snprintf(w->error, sizeof(w->error), "%s; marking it reorged failed: %s", why, err);
        return c;
    }
    zl_metric_counter_add(v->m_reorged, 1);
    struct zl_log_ctx lc;
    zl_work_log_ctx(w, &lc);
    zl_log_kv(ZL_LOG_WARN, &lc, "deposit gone from the chain: marked reorged, not passed on", "reason", why, NULL);
    snprintf(w->error, sizeof(w->error), "reorged: %s", why);
    return ZL_DEFER;
}

/* What one poll batch learns from the chain, each fact asked once
 * (chain_batch.h): a receipt per deposit, then each block number any of
 * them needs, then the head. */
struct vitem {
    bool live;                  /* still undecided */
    bool has_rcpt;              /* the node has a receipt for the tx */
    uint64_t bn;                /* the receipt's block (or the event's, without one) */
    char bh[ZL_CHAIN_HASH_SIZE]; /* the receipt's block hash */
    size_t block;               /* index into the batch's block array */
};

/* The check that needs no chain: the row's token is a deposit token. */
static bool static_checks(struct verify *v, struct zl_work *w)
{
    const struct zl_facts *in = &w->row.facts;
    if (zl_tokens_find(&v->tokens, in->token) == NULL) {
        snprintf(w->error, sizeof(w->error), "token %s is not a deposit token (not in ZL_TOKENS)", in->token);
        w->result = ZL_PERMANENT;
        return false;
    }
    return true;
}

bool verify_settle_below_minimum(struct zl_work *w, const char *whose, const char *token, const char *minimum,
                                 zl_metric *m)
{
    const struct zl_facts *f = &w->row.facts;
    if (w->row.min_waived || zl_dec_cmp(f->amount, minimum) >= 0)
        return false;
    snprintf(w->error, sizeof(w->error), "amount %s is below %s minimum %s: settled below_minimum (an operator"
             " may credit it: zlctl credit-below-minimum)", f->amount, whose, minimum);
    w->settle = ZL_STATE_BELOW_MINIMUM;
    w->result = ZL_OK;
    zl_metric_counter_add(m, 1);
    struct zl_log_ctx lc;
    zl_work_log_ctx(w, &lc);
    zl_log_kv(ZL_LOG_INFO, &lc, "deposit below its token's minimum: settled below_minimum, not passed on", "token",
              token, "amount", f->amount, "minimum", minimum, NULL);
    return true;
}

/* An EVM deposit's minimum is its token's (ZL_TOKENS, or ZL_MIN_AMOUNT),
 * judged on the amount the receipt's Transfer carried (matched to the row
 * by judge_receipt). Returns true when settled. */
static bool settle_below_minimum(struct verify *v, struct zl_work *w)
{
    const struct zl_token *t = zl_tokens_find(&v->tokens, w->row.facts.token);
    if (t == NULL)
        return false;
    char whose[ZL_TOKEN_SYMBOL_SIZE + 2];
    snprintf(whose, sizeof(whose), "%s's", t->symbol);
    return verify_settle_below_minimum(w, whose, t->symbol, t->min_amount, v->m_below_min[t - v->tokens.t]);
}

/* What the receipt alone decides. Leaves the work live with it->bn set to
 * the block whose canonical hash decides the rest. */
static void judge_receipt(struct verify *v, struct zl_work *w, struct vitem *it, const json_t *rcpt)
{
    const struct zl_event *in = &w->in;
    it->has_rcpt = json_is_object(rcpt);
    if (!it->has_rcpt) {
        /* No receipt: gone only if the block that held it was replaced;
         * decided by that block's canonical hash. */
        it->bn = w->row.block_number;
        return;
    }
    uint64_t status = 0;
    if (zl_json_quantity_field(rcpt, "status", &status) != 0 ||
        zl_json_quantity_field(rcpt, "blockNumber", &it->bn) != 0 ||
        zl_json_hex_field(rcpt, "blockHash", ZL_HASH_HEX_DIGITS, it->bh, sizeof(it->bh)) != 0) {
        snprintf(w->error, sizeof(w->error), "receipt of %s lacks status/blockNumber/blockHash", in->tx_hash);
        w->result = ZL_TRANSIENT;
        it->live = false;
        return;
    }
    if (status != 1) {
        snprintf(w->error, sizeof(w->error), "receipt status %" PRIu64 ": the transaction failed", status);
        w->result = ZL_PERMANENT;
        it->live = false;
        return;
    }
    bool moved = strcmp(it->bh, w->row.block_hash) != 0;
    const struct zl_facts *f = &w->row.facts; /* the row, not the message: see the top */
    struct zl_transfer_log tl;
    char token[ZL_ADDRESS_HEX_SIZE], from[ZL_ADDRESS_HEX_SIZE], to[ZL_ADDRESS_HEX_SIZE];
    bool matched = zl_chain_receipt_transfer(rcpt, f->log_index, &tl) == 0 &&
                   zl_hex_lower(f->token, ZL_ADDRESS_HEX_DIGITS, token, sizeof(token)) == 0 &&
                   zl_hex_lower(f->from, ZL_ADDRESS_HEX_DIGITS, from, sizeof(from)) == 0 &&
                   zl_hex_lower(f->to, ZL_ADDRESS_HEX_DIGITS, to, sizeof(to)) == 0 &&
                   strcmp(tl.token, token) == 0 && strcmp(tl.from, from) == 0 && strcmp(tl.to, to) == 0 &&
                   strcmp(tl.amount, f->amount) == 0;
    if (!matched) {
        if (moved) {
            w->result = gone(v, w, "transaction re-included elsewhere at another log index");
        } else {
            snprintf(w->error, sizeof(w->error),
                     "log %" PRIu32 " of %s is not a Transfer of %s %s -> %s (the recorded deposit does not match"
                     " the chain)", f->log_index, f->tx_hash, f->amount, f->from, f->to);
            w->result = ZL_PERMANENT;
        }
        it->live = false;
    }
}

/* The rest, once the block of each live work and the head are known. */
static void judge_block(struct verify *v, struct zl_work *w, const struct vitem *it, const struct zl_chain_block *bl,
                        zl_class head_c, uint64_t head, const char *head_err)
{
    const struct zl_event *in = &w->in;
    if (bl->c != ZL_OK) {
        snprintf(w->error, sizeof(w->error), "%s", bl->error);
        w->result = bl->c;
        return;
    }
    if (!it->has_rcpt) {
        if (bl->exists && strcmp(bl->hash, w->row.block_hash) != 0) {
            w->result = gone(v, w, "transaction not on the chain and its block was replaced");
        } else if (!bl->exists) {
            /* The chain is shorter than the deposit's block: a reorg in
             * progress (the tx may come back in the new branch) or an
             * endpoint behind. Not yet decidable, so not a failure. */
            snprintf(w->error, sizeof(w->error), "no block %" PRIu64 " on the chain yet (reorg in progress or"
                     " endpoint behind): %s waits", w->row.block_number, in->tx_hash);
            w->result = ZL_DEFER;
            w->defer_ms = zl_block_clock_wait_ms(&v->clock, 1, zl_now_ms());
        } else {
            snprintf(w->error, sizeof(w->error), "no receipt for %s yet (endpoint behind?)", in->tx_hash);
            w->result = ZL_TRANSIENT;
        }
        return;
    }
    if (!bl->exists || strcmp(bl->hash, it->bh) != 0) {
        snprintf(w->error, sizeof(w->error), "block %" PRIu64 " of the receipt is not canonical yet", it->bn);
        w->result = ZL_TRANSIENT;
        return;
    }
    if (head_c != ZL_OK) {
        snprintf(w->error, sizeof(w->error), "%s", head_err);
        w->result = head_c;
        return;
    }
    /* head is the quorum's "latest", "safe" or "finalized" block
     * (v->mark_tag). conf counts blocks on top of the deposit's up to it: for
     * safe/finalized a lower bound of its confirmations. */
    uint64_t conf = head >= it->bn ? head - it->bn : 0;
    bool by_count = v->finality == ZL_FINALITY_CONFIRMATIONS;
    uint64_t need = by_count ? (uint64_t)v->cfg.confirmations : 0;
    if (head < it->bn || conf < need) {
        /* Not final yet: a defer, never a failure. The estimate is for the
         * operator reading the retry headers. */
        uint64_t to_go = it->bn + need - head;
        snprintf(w->error, sizeof(w->error),
                 "block %" PRIu64 " not final yet (%s): %s block %" PRIu64 ", about %" PRIu64 " blocks (~%" PRIu64
                 " s) to go", it->bn, zl_finality_names[v->finality], v->mark_tag, head, to_go,
                 to_go * (uint64_t)v->block_ms / 1000);
        w->result = ZL_DEFER;
        /* Back when those blocks are due, in the first tier, not a tier
         * further on per defer (runtime.h, defer_ms): due counted from
         * when the head came (blockclock.h), not from now. Not half a
         * block sooner: that saved 0.2 s at 10 deposits/s and cost
         * re-checks the machine needed at 100/s. */
        w->defer_ms = zl_block_clock_wait_ms(&v->clock, (int64_t)to_go, zl_now_ms());
        return;
    }
    if (settle_below_minimum(v, w))
        return;
    zl_event_derive(&w->out, in, ZL_TOPIC_VERIFIED);
    w->out.confirmations = conf > UINT32_MAX ? UINT32_MAX : (uint32_t)conf;
    w->out.block_number = it->bn;
    memcpy(w->out.block_hash, it->bh, sizeof(w->out.block_hash));
    w->result = ZL_OK;
}

/* The receipts' callback: ctx of one poll batch. */
struct vbatch {
    struct verify *v;
    struct zl_work *const *ws;
    struct vitem *it;
};

static void on_receipt(void *opaque, size_t i, zl_class c, const json_t *receipt, const char *why)
{
    struct vbatch *b = opaque;
    struct zl_work *w = b->ws[i];
    if (c != ZL_OK) {
        snprintf(w->error, sizeof(w->error), "%s", why);
        w->result = c;
        b->it[i].live = false;
        return;
    }
    judge_receipt(b->v, w, &b->it[i], receipt);
}

void verify_process_batch(void *ctx, struct zl_work *const *ws, size_t n)
{
    struct verify *v = ctx;
    struct vitem *it = calloc(n, sizeof(*it));
    struct zl_chain_block *blocks = calloc(n, sizeof(*blocks));
    const char **txs = calloc(n, sizeof(*txs));
    if (it == NULL || blocks == NULL || txs == NULL) {
        zl_works_fail(ws, n, ZL_TRANSIENT, "verify: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (zl_event_is_solana(&ws[i]->in)) {
            verify_judge_solana(v, ws[i]);
            it[i].live = false;
        } else if (!v->evm) {
            snprintf(ws[i]->error, sizeof(ws[i]->error),
                     "an EVM deposit: this verify takes none (ZL_RPC_URLS unset)");
            ws[i]->result = ZL_POISON;
            it[i].live = false;
        } else {
            it[i].live = static_checks(v, ws[i]);
        }
        txs[i] = it[i].live ? ws[i]->in.tx_hash : NULL;
    }
    if (!v->evm)
        goto out; /* every deposit is decided: no EVM client to ask */
    struct vbatch b = {v, ws, it};
    zl_chain_read_receipts(v->rpc, txs, n, on_receipt, &b);
    bool need_head = false;
    size_t nb = 0;
    for (size_t i = 0; i < n; i++) {
        if (!it[i].live)
            continue;
        need_head = need_head || it[i].has_rcpt;
        it[i].block = zl_chain_blocks_add(blocks, &nb, it[i].bn);
    }
    zl_chain_read_blocks(v->rpc, blocks, nb);
    zl_class head_c = ZL_OK;
    uint64_t head = 0;
    char head_err[ZL_ERRSTR_SIZE] = "";
    if (need_head) {
        head_c = zl_chain_read_mark(v->rpc, v->mark_tag, &head, head_err, sizeof(head_err));
        if (head_c == ZL_OK)
            zl_block_clock_saw(&v->clock, head, zl_now_ms());
    }
    for (size_t i = 0; i < n; i++) {
        if (it[i].live)
            judge_block(v, ws[i], &it[i], &blocks[it[i].block], head_c, head, head_err);
    }
out:
    free(it);
    free(blocks);
    free(txs);
}

