/* batch.c: the batch policy. Under backlog, one mintBatch(to[], ids[],
 * uris[]) per ZL_MINT_BATCH_MAX fresh deposits, stored with ALL its deposit
 * ids before broadcast; deposits that already have a stored tx are grouped
 * by it and the tx is driven once for all of them. Every deposit still gets
 * its own result. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "chain_batch.h"
#include "ethtx.h"
#include "fault.h"
#include "keccak.h"
#include "mint.h"

/* Every deposit of the chunk failed alike. */
static void fail_all(struct zl_work *const *ws, const size_t *idx, size_t k, zl_class c, const char *why)
{
    for (size_t i = 0; i < k; i++) {
        ws[idx[i]]->result = c;
        snprintf(ws[idx[i]]->error, sizeof(ws[idx[i]]->error), "%s", why);
    }
}

/* mintBatch calldata for the chunk's works whose skip flag is not set
 * (skip NULL: all of them). */
static zl_class batch_calldata(struct zl_work *const *ws, const size_t *idx, size_t k, const bool *skip,
                               uint8_t *data, size_t cap, size_t *len, char *errstr, size_t errstr_size)
{
    static uint8_t to[ZL_NONCE_BATCH_MAX][20];
    static uint8_t ids[ZL_NONCE_BATCH_MAX][32];
    const char *uris[ZL_NONCE_BATCH_MAX];
    size_t n = 0;
    for (size_t i = 0; i < k; i++) {
        if (skip != NULL && skip[i])
            continue;
        const struct zl_work *w = ws[idx[i]];
        zl_keccak256(w->in.deposit_id, strlen(w->in.deposit_id), ids[n]);
        if (zl_tx_parse_address(w->row.facts.from, to[n]) != 0) {
            snprintf(errstr, errstr_size, "depositor %s is not an address", w->row.facts.from);
            return ZL_PERMANENT; /* checked before: cannot happen */
        }
        uris[n++] = w->row.facts.token_uri;
    }
    if (zl_abi_mint_batch(n, (const uint8_t(*)[20])to, (const uint8_t(*)[32])ids, uris, data, cap, len) != 0) {
        snprintf(errstr, errstr_size, "mintBatch of %zu deposits does not fit in %zu bytes of calldata", n, cap);
        return ZL_TRANSIENT;
    }
    return ZL_OK;
}

/* Where the works of one poll batch stand: the stored txs found or made
 * (owned: zl_nonce_tx_clear) and, per work, its tx (-1 none). */
struct groups {
    struct zl_nonce_tx *slots;
    size_t n;
    ssize_t *of;
};

/* Stores the signed batch of the chunk's kept deposits; on success it
 * becomes a group of its own. */
static zl_class store_batch(struct mint *m, struct zl_work *const *ws, const size_t *idx, size_t k,
                            const bool *skip, struct groups *g, char *err, size_t err_size)
{
    const char *kept_ids[ZL_NONCE_BATCH_MAX];
    size_t nk = 0;
    for (size_t i = 0; i < k; i++)
        if (!skip[i])
            kept_ids[nk++] = ws[idx[i]]->in.deposit_id;
    struct zl_nonce_tx *slot = &g->slots[g->n];
    zl_class c = zl_nonce_store_batch(&m->pg, slot, kept_ids, nk, err, err_size);
    if (c != ZL_OK) {
        /* Rolled back: nothing was stored, so the bytes must never leave. */
        zl_nonce_tx_clear(slot);
        return c;
    }
    zl_txmgr_stored(slot);
    for (size_t i = 0; i < k; i++)
        if (!skip[i])
            g->of[idx[i]] = (ssize_t)g->n;
    g->n++;
    char n[ZL_INT64_DEC_SIZE], count[ZL_INT64_DEC_SIZE];
    snprintf(n, sizeof(n), "%" PRIu64, slot->nonce);
    snprintf(count, sizeof(count), "%zu", nk);
    zl_log_kv(ZL_LOG_INFO, NULL, "mintBatch signed and stored", "nonce", n, "tx_hash", slot->tx_hash, "deposits",
              count, "first_deposit", kept_ids[0], NULL);
    zl_fault_point("mint_batch_after_store");
    return ZL_OK;
}

/* The fees and the chain's nonce, read once per poll batch, for its first
 * new chunk: a poll batch's chunks are signed within moments, and the
 * chain's nonce is only a floor under the stored next nonce. */
struct prices {
    bool read;
    struct zl_tx_fees f;
    uint64_t floor;
};

/* Signs and stores one mintBatch for the chunk ws[idx[0..k)] (2 <= k <=
 * ZL_MINT_BATCH_MAX, none with a live mint when looked up). Deposits it
 * could not carry (another copy minted them meanwhile, the batch would
 * revert, a row moved) are minted one by one through mint_process, after
 * the batch's own transaction has committed. Any other failure is every
 * deposit's result. */
static void new_batch(struct mint *m, struct zl_work *const *ws, const size_t *idx, size_t k, struct groups *g,
                      struct prices *pr)
{
    static uint8_t data[ZL_TX_DATA_MAX];
    const char *ids[ZL_NONCE_BATCH_MAX];
    bool skip[ZL_NONCE_BATCH_MAX];
    char err[ZL_ERRSTR_SIZE];
    size_t len;
    ZL_ASSERT(k >= 2 && k <= ZL_NONCE_BATCH_MAX);
    zl_class c = batch_calldata(ws, idx, k, NULL, data, sizeof(data), &len, err, sizeof(err));
    uint64_t gas = 0;
    bool reverts = false;
    struct zl_rpc_error re;
    if (c == ZL_OK)
        c = zl_txmgr_estimate(&m->tx, data, len, &gas, &reverts, &re, err, sizeof(err));
    if (reverts) {
        /* mintBatch skips existing ids, so a revert is about one deposit or
         * the signer (no role): the single path classifies each precisely. */
        char reason[ZL_ERRSTR_SIZE];
        mint_revert_reason(&re, err, reason, sizeof(reason));
        zl_log(ZL_LOG_WARN, NULL, "mintBatch of %zu would revert (%s): minting them one by one", k, reason);
        for (size_t i = 0; i < k; i++)
            ws[idx[i]]->result = mint_process(m, ws[idx[i]]);
        return;
    }
    /* The estimate covers all k: a subset kept below needs less. */
    gas = mint_gas_limit(m, gas, k);
    if (c == ZL_OK && !pr->read) {
        c = zl_txmgr_fees(&m->tx, &pr->f, err, sizeof(err));
        if (c == ZL_OK)
            c = zl_txmgr_chain_nonce(&m->tx, &pr->floor, err, sizeof(err));
        pr->read = c == ZL_OK;
    }
    const struct zl_tx_fees f = pr->f;
    const uint64_t floor = pr->floor;
    for (size_t i = 0; i < k; i++)
        ids[i] = ws[idx[i]]->in.deposit_id;
    uint64_t nonce;
    size_t nkept = 0;
    if (c == ZL_OK)
        c = zl_nonce_begin_batch(&m->pg, m->chain_id, m->key.address_hex, ids, k, floor,
                                 (uint64_t)m->cfg.inflight_max, &nonce, skip, &nkept, err, sizeof(err));
    if (c != ZL_OK) {
        fail_all(ws, idx, k, c, err);
        return;
    }
    if (nkept > 0) {
        if (nkept < k)
            c = batch_calldata(ws, idx, k, skip, data, sizeof(data), &len, err, sizeof(err));
        if (c == ZL_OK)
            c = zl_txmgr_sign_call(&m->tx, nonce, &f, gas, data, len, "mint_batch", &g->slots[g->n], err,
                                   sizeof(err));
        if (c != ZL_OK)
            zl_nonce_abort(&m->pg);
        else
            zl_fault_point("mint_batch_after_sign"); /* signed, nothing stored */
        if (c == ZL_OK)
            c = store_batch(m, ws, idx, k, skip, g, err, sizeof(err));
        if (c != ZL_OK) {
            fail_all(ws, idx, k, c, err);
            return;
        }
    }
    for (size_t i = 0; i < k; i++)
        if (skip[i])
            ws[idx[i]]->result = mint_process(m, ws[idx[i]]);
}

/* The first work of the poll batch in group gi (there is one). */
static size_t group_first(size_t n, const struct groups *g, size_t gi)
{
    size_t i = 0;
    while (i < n && g->of[i] != (ssize_t)gi)
        i++;
    ZL_ASSERT(i < n);
    return i;
}

/* Gives each work of group gi its own verdict from what its tx did: class c
 * (errstr why) or, for ZL_OK, the receipt r (refused: the nonce was filled). */
static void group_verdicts(struct mint *m, struct zl_work *const *ws, size_t n, const struct groups *g, size_t gi,
                           zl_class c, bool refused, const struct zl_tx_receipt *r, const char *errstr)
{
    struct zl_nonce_tx *slot = &g->slots[gi];
    if (c == ZL_OK && refused)
        c = mint_refused_class(slot);
    for (size_t i = group_first(n, g, gi); i < n; i++) {
        struct zl_work *w = ws[i];
        if (g->of[i] != (ssize_t)gi)
            continue;
        if (c != ZL_OK) {
            w->result = c;
            snprintf(w->error, sizeof(w->error), "%s", errstr);
            continue;
        }
        char hash[ZL_HASH_HEX_SIZE] = "";
        w->result = mint_verdict(m, w, slot, r, hash);
        if (w->result == ZL_OK)
            mint_done(m, w, hash);
    }
}

/* Drives group gi's stored tx to its receipt once (sent: it was sent by
 * this poll batch a moment ago, so one look for its receipt is all), then
 * gives each of its works of this poll batch its own verdict. */
static void drive_group(struct mint *m, struct zl_work *const *ws, size_t n, const struct groups *g, size_t gi,
                        bool sent)
{
    struct zl_log_ctx lc;
    zl_work_log_ctx(ws[group_first(n, g, gi)], &lc);
    struct zl_nonce_tx *slot = &g->slots[gi];
    char err[ZL_ERRSTR_SIZE];
    struct zl_tx_receipt r = {0};
    bool refused = false;
    zl_class c = sent ? zl_txmgr_peek(&m->tx, slot, &r, err, sizeof(err))
                      : zl_txmgr_drive(&m->tx, slot, &lc, &r, &refused, err, sizeof(err));
    group_verdicts(m, ws, n, g, gi, c, refused, &r, err);
    zl_tx_receipt_clear(&r);
}

/* With the window: sends every tx this poll batch stored (groups from
 * first_new up) before looking at any receipt, so the chunks' txs reach
 * the node back to back. sent[gi] says which went; a group whose send
 * failed or was refused gets its verdicts here, done[gi]. */
static void send_new_groups(struct mint *m, struct zl_work *const *ws, size_t n, const struct groups *g,
                            size_t first_new, bool *sent, bool *done)
{
    for (size_t gi = first_new; gi < g->n; gi++) {
        struct zl_log_ctx lc;
        zl_work_log_ctx(ws[group_first(n, g, gi)], &lc);
        char err[ZL_ERRSTR_SIZE];
        bool refused;
        zl_class c = zl_txmgr_send_new(&m->tx, &g->slots[gi], &lc, &refused, err, sizeof(err));
        if (c == ZL_OK && !refused) {
            sent[gi] = true;
            continue;
        }
        struct zl_tx_receipt none = {0};
        group_verdicts(m, ws, n, g, gi, c, refused, &none, err);
        done[gi] = true;
    }
}

/* Sorts the poll batch: bad depositors fail, deposits with a stored tx join
 * its group (each tx read once, the live nonces of the whole poll batch in
 * one query), the rest are fresh[0..*nfresh). */
static void sort_works(struct mint *m, struct zl_work *const *ws, size_t n, struct groups *g, size_t *fresh,
                       size_t *nfresh)
{
    const char **ids = calloc(n, sizeof(*ids));
    size_t *at = calloc(n, sizeof(*at));
    int64_t *nonces = calloc(n, sizeof(*nonces));
    size_t k = 0;
    if (ids == NULL || at == NULL || nonces == NULL) {
        zl_works_fail(ws, n, ZL_TRANSIENT, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        g->of[i] = -1;
        if (mint_bad_depositor(ws[i])) {
            ws[i]->result = ZL_PERMANENT;
            continue;
        }
        at[k] = i;
        ids[k++] = ws[i]->in.deposit_id;
    }
    char err[ZL_ERRSTR_SIZE];
    zl_class c = zl_nonce_live_nonces(&m->pg, m->chain_id, m->key.address_hex, ids, k, nonces, err, sizeof(err));
    for (size_t j = 0; j < k; j++) {
        size_t i = at[j];
        struct zl_work *w = ws[i];
        if (c != ZL_OK) {
            w->result = c;
            snprintf(w->error, sizeof(w->error), "%s", err);
            continue;
        }
        if (nonces[j] < 0) {
            fresh[(*nfresh)++] = i;
            continue;
        }
        for (size_t gi = 0; gi < g->n && g->of[i] < 0; gi++)
            if (g->slots[gi].nonce == (uint64_t)nonces[j])
                g->of[i] = (ssize_t)gi;
        if (g->of[i] >= 0)
            continue; /* the same tx as an earlier deposit of the batch */
        bool found;
        zl_class gc = zl_nonce_get(&m->pg, m->chain_id, m->key.address_hex, (uint64_t)nonces[j], &g->slots[g->n],
                                   &found, w->error, sizeof(w->error));
        if (gc == ZL_OK && !found) {
            snprintf(w->error, sizeof(w->error), "nonce %" PRId64 " named as the live mint of %s is gone: looking again",
                     nonces[j], w->in.deposit_id);
            gc = ZL_TRANSIENT;
        }
        if (gc != ZL_OK) {
            w->result = gc;
            continue;
        }
        g->of[i] = (ssize_t)g->n++;
    }
out:
    free(ids);
    free(at);
    free(nonces);
}

/* The poll batch's deposits, batched: each gets its result. */
static void process_batched(struct mint *m, struct zl_work *const *ws, size_t n)
{
    char err[ZL_ERRSTR_SIZE];
    zl_class c = zl_pg_ensure(&m->pg, err, sizeof(err));
    if (c != ZL_OK) {
        zl_works_fail(ws, n, c, err);
        return;
    }
    zl_txmgr_janitor(&m->tx);
    /* Each deposit is here once: the runtime hands a later copy of one (a
     * redelivery beside its retry) the first copy's result. */
    struct groups g = {.slots = calloc(n, sizeof(*g.slots)), .n = 0, .of = calloc(n, sizeof(*g.of))};
    size_t *fresh = calloc(n, sizeof(*fresh));
    bool *sent = calloc(n, sizeof(*sent)), *done = calloc(n, sizeof(*done));
    if (g.slots == NULL || g.of == NULL || fresh == NULL || sent == NULL || done == NULL) {
        zl_works_fail(ws, n, ZL_TRANSIENT, "out of memory");
        goto out;
    }
    size_t nfresh = 0;
    sort_works(m, ws, n, &g, fresh, &nfresh);
    size_t nold = g.n; /* groups from here on are this poll batch's new txs */
    struct prices pr = {0};
    for (size_t off = 0; off < nfresh;) {
        size_t k = nfresh - off < (size_t)m->cfg.batch_max ? nfresh - off : (size_t)m->cfg.batch_max;
        if (k == 1)
            ws[fresh[off]]->result = mint_process(m, ws[fresh[off]]);
        else
            new_batch(m, ws, fresh + off, k, &g, &pr);
        off += k;
    }
    if (m->cfg.inflight_max > 1)
        send_new_groups(m, ws, n, &g, nold, sent, done);
    for (size_t gi = 0; gi < g.n; gi++) {
        if (!done[gi])
            drive_group(m, ws, n, &g, gi, sent[gi]);
        zl_nonce_tx_clear(&g.slots[gi]);
    }
out:
    free(g.slots);
    free(g.of);
    free(fresh);
    free(sent);
    free(done);
}

void mint_process_batch(void *ctx, struct zl_work *const *ws, size_t n)
{
    struct mint *m = ctx;
    if (n == 1 || m->cfg.batch_max <= 1) {
        for (size_t i = 0; i < n; i++)
            ws[i]->result = mint_process(m, ws[i]);
    } else {
        process_batched(m, ws, n);
    }
    /* Whatever a deposit waits for here (its tx or the window to be mined,
     * confirmations) comes with the next block: look again when that block
     * is due, in the first tier (runtime.h, defer_ms). Due counted from
     * when this poll batch's head read first saw the head (blockclock.h),
     * not a whole block from now: a tx sent late in a block's interval is
     * mined at the interval's end. Never sooner than the block: looking
     * half a block on doubled the re-checks, and at 100 deposits/s on 1 s
     * blocks the stage fell behind (mint 84.6/s, pinned->minted p50 3.5 s
     * against 1.7 s; bench/results/2026-12-07-e2e-chain.md). */
    int64_t now_ms = zl_now_ms();
    int64_t recheck_ms = zl_block_clock_wait_ms(&m->tx.clock, 1, now_ms);
    for (size_t i = 0; i < n; i++)
        if (ws[i]->result == ZL_DEFER && ws[i]->defer_ms == 0) {
            ws[i]->defer_ms = recheck_ms;
            /* Watch the head until a block after the re-check: the next
             * poll batch's defers then count from the head's arrival. */
            m->head_watch_until_ms = now_ms + recheck_ms + m->tx.clock.block_ms;
        }
}

void mint_between(void *ctx, int64_t now_ms)
{
    struct mint *m = ctx;
    if (m->cfg.head_poll_ms <= 0 || now_ms >= m->head_watch_until_ms || now_ms < m->head_next_read_ms)
        return;
    m->head_next_read_ms = now_ms + m->cfg.head_poll_ms;
    char err[ZL_ERRSTR_SIZE];
    /* An estimate only: on failure stop watching until the next defer; the
     * deposits' own re-checks meet the endpoint's trouble and report it. */
    if (zl_txmgr_read_head(&m->tx, err, sizeof(err)) != ZL_OK)
        m->head_watch_until_ms = 0;
}
