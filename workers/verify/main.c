/* verify: passes a detected deposit on only when the chain says it is real
 * and final (architecture §5, §6).
 *
 * For each zl.deposits.detected event, with quorum reads (ZL_RPC_QUORUM
 * endpoints must agree on the receipt and on the block hash):
 *   - the token is ours and the amount at least ZL_MIN_AMOUNT, else permanent;
 *   - the receipt exists with status 1 (status 0: permanent);
 *   - its log at log_index is a Transfer of the same token, from, to, amount;
 *   - its block is canonical and has ZL_CONFIRMATIONS blocks on top, else
 *     defer (the delay tiers; the partition is never blocked);
 *   - gone from the chain (its block replaced, or the tx moved to another
 *     log index): the row becomes `reorged`, nothing is published, and the
 *     zl_verify_reorged_total metric counts it;
 *   - the chain shorter than its block (a reorg in progress, or an endpoint
 *     behind): defer;
 *   - every RPC endpoint down: outage (pause, never DLQ).
 * A tx re-included in another block at the same log index keeps its
 * deposit id; the verified event and the row carry the new block facts.
 *
 * Every fact checked is the state row's (detect wrote it from the chain):
 * the runtime has already refused, as poison, a message that says otherwise
 * (facts.h), so what goes dead here is a deposit the chain disowns, never a
 * deposit some message misdescribed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "chain_batch.h"
#include "log.h"
#include "metrics.h"
#include "runtime.h"

struct verify_config {
    int64_t confirmations;
    char *min_amount;
};

#define OFF(f) offsetof(struct verify_config, f)
static const struct zl_setting verify_settings[] = {
    {"ZL_CONFIRMATIONS", ZL_CFG_INT, "15", "blocks on top of a deposit's block before it is verified (BSC: 15)",
     OFF(confirmations), 0, 100000},
    {"ZL_MIN_AMOUNT", ZL_CFG_STR, "1", "smallest deposit accepted, in the token's smallest unit (decimal)",
     OFF(min_amount), 0, 0},
};
#undef OFF

struct verify {
    struct zl_chain_config chain;
    struct verify_config cfg;
    char token[ZL_ADDRESS_HEX_SIZE];
    struct zl_rpc *rpc;
    struct zl_pg pg; /* own connection: marks rows reorged outside the CAS */
    zl_metric *m_reorged;
};

static struct verify g_verify;

static int verify_init(void *ctx, const struct zl_runtime_env *env, char *errstr, size_t errstr_size)
{
    struct verify *v = ctx;
    if (zl_hex_lower(v->chain.token_address, ZL_ADDRESS_HEX_DIGITS, v->token, sizeof(v->token)) != 0) {
        snprintf(errstr, errstr_size, "ZL_TOKEN_ADDRESS: \"%s\" is not a 0x-prefixed 20-byte hex address",
                 v->chain.token_address);
        return -1;
    }
    if (!zl_valid_uint256_dec(v->cfg.min_amount)) {
        snprintf(errstr, errstr_size, "ZL_MIN_AMOUNT: \"%s\" is not a canonical decimal integer", v->cfg.min_amount);
        return -1;
    }
    struct zl_rpc_opts ro;
    zl_chain_rpc_opts(&v->chain, env->metrics, env->health, &ro);
    if (zl_rpc_new(&v->rpc, &ro, errstr, errstr_size) != 0)
        return -1;
    if (zl_pg_init(&v->pg, env->cfg->pg_dsn, env->cfg->pg_connect_timeout_ms) != 0 ||
        zl_pg_add_stmt(&v->pg, "verify_mark_reorged",
                       "UPDATE deposits SET state = 'reorged', last_error = $3, updated_at = now()"
                       " WHERE deposit_id = $1 AND state = 'detected' AND block_hash = $2",
                       3) != 0) {
        snprintf(errstr, errstr_size, "verify: out of memory");
        return -1;
    }
    zl_metrics_describe(env->metrics, "zl_verify_reorged_total", ZL_METRIC_COUNTER,
                        "deposits found gone from the chain at verification (marked reorged, not passed on)");
    v->m_reorged = zl_metrics_counter_handle(env->metrics, "zl_verify_reorged_total", NULL);
    return 0;
}

static void verify_fini(void *ctx)
{
    struct verify *v = ctx;
    zl_rpc_free(v->rpc);
    v->rpc = NULL;
    zl_pg_close(&v->pg);
}

static int verify_prepare(void *ctx, struct zl_pg *pg)
{
    (void)ctx;
    return zl_pg_add_stmt(pg, "verify_block_facts",
                          "UPDATE deposits SET confirmations = $2::integer, block_number = $3::bigint,"
                          " block_hash = $4 WHERE deposit_id = $1",
                          4);
}

static zl_class verify_probe(void *ctx, char *errstr, size_t errstr_size)
{
    struct verify *v = ctx;
    if (zl_rpc_any_healthy(v->rpc))
        return ZL_OK;
    snprintf(errstr, errstr_size, "every RPC endpoint's breaker is open");
    return ZL_OUTAGE;
}

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

/* The admin API's breaker reset: "rpc", "rpc:<host>" or every breaker. */
static int verify_reset_breakers(void *ctx, const char *dependency)
{
    struct verify *v = ctx;
    if (dependency != NULL && strncmp(dependency, "rpc", 3) != 0)
        return 0;
    zl_rpc_reset_breakers(v->rpc);
    return 1;
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

/* The checks that need no chain: the row's token and amount. */
static bool static_checks(struct verify *v, struct zl_work *w)
{
    const struct zl_facts *in = &w->row.facts;
    char tok[ZL_ADDRESS_HEX_SIZE];
    if (zl_hex_lower(in->token, ZL_ADDRESS_HEX_DIGITS, tok, sizeof(tok)) != 0 || strcmp(tok, v->token) != 0) {
        snprintf(w->error, sizeof(w->error), "token %s is not the deposit token %s", in->token, v->token);
        w->result = ZL_PERMANENT;
        return false;
    }
    if (zl_dec_cmp(in->amount, v->cfg.min_amount) < 0) {
        snprintf(w->error, sizeof(w->error), "amount %s is below ZL_MIN_AMOUNT %s", in->amount, v->cfg.min_amount);
        w->result = ZL_PERMANENT;
        return false;
    }
    return true;
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
    char from[ZL_ADDRESS_HEX_SIZE], to[ZL_ADDRESS_HEX_SIZE];
    bool matched = zl_chain_receipt_transfer(rcpt, f->log_index, &tl) == 0 &&
                   zl_hex_lower(f->from, ZL_ADDRESS_HEX_DIGITS, from, sizeof(from)) == 0 &&
                   zl_hex_lower(f->to, ZL_ADDRESS_HEX_DIGITS, to, sizeof(to)) == 0 &&
                   strcmp(tl.token, v->token) == 0 && strcmp(tl.from, from) == 0 && strcmp(tl.to, to) == 0 &&
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
    uint64_t conf = head >= it->bn ? head - it->bn : 0;
    if (conf < (uint64_t)v->cfg.confirmations) {
        snprintf(w->error, sizeof(w->error), "%" PRIu64 " of %" PRId64 " confirmations", conf, v->cfg.confirmations);
        w->result = ZL_DEFER;
        return;
    }
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

static void verify_process_batch(void *ctx, struct zl_work *const *ws, size_t n)
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
        it[i].live = static_checks(v, ws[i]);
        txs[i] = it[i].live ? ws[i]->in.tx_hash : NULL;
    }
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
    if (need_head)
        head_c = zl_chain_read_head(v->rpc, &head, head_err, sizeof(head_err));
    for (size_t i = 0; i < n; i++) {
        if (it[i].live)
            judge_block(v, ws[i], &it[i], &blocks[it[i].block], head_c, head, head_err);
    }
out:
    free(it);
    free(blocks);
    free(txs);
}

static zl_class verify_republish(void *ctx, struct zl_work *w)
{
    struct verify *v = ctx;
    zl_event_derive(&w->out, &w->in, ZL_TOPIC_VERIFIED);
    /* The block facts come from the row, not the incoming event: a copy
     * deferred before a reorg still names the orphaned block, and what was
     * verified is the block the row records. */
    w->out.block_number = w->row.block_number;
    snprintf(w->out.block_hash, sizeof(w->out.block_hash), "%s", w->row.block_hash);
    /* it had at least this many when it was verified */
    w->out.confirmations = w->row.confirmations >= 0 ? (uint32_t)w->row.confirmations : (uint32_t)v->cfg.confirmations;
    return ZL_OK;
}

/* The row keeps the facts verify checked: confirmations and, when the tx
 * was re-included at the same log index, the new block. */
static zl_class verify_in_tx(void *ctx, struct zl_pg *pg, struct zl_work *const *moved, size_t n, char *errstr,
                             size_t errstr_size)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        const struct zl_event *o = &moved[i]->out;
        char conf[ZL_INT64_DEC_SIZE], bn[ZL_INT64_DEC_SIZE];
        snprintf(conf, sizeof(conf), "%" PRIu32, o->confirmations);
        snprintf(bn, sizeof(bn), "%" PRIu64, o->block_number);
        const char *vals[4] = {o->deposit_id, conf, bn, o->block_hash};
        zl_class c;
        PGresult *r = zl_pg_prepared(pg, "verify_block_facts", 4, vals, PGRES_COMMAND_OK, &c, errstr, errstr_size);
        if (r == NULL)
            return c;
        PQclear(r);
    }
    return ZL_OK;
}

int main(int argc, char **argv)
{
    const struct zl_stage stage = {
        .name = "verify",
        .in_kind = ZL_TOPIC_DETECTED,
        .out_kind = ZL_TOPIC_VERIFIED,
        .accept_states = "{detected}",
        .done_state = ZL_STATE_VERIFIED,
        .process_batch = verify_process_batch,
        .republish = verify_republish,
        .in_tx = verify_in_tx,
        .prepare = verify_prepare,
        .probe = verify_probe,
        .reset_breakers = verify_reset_breakers,
        .init = verify_init,
        .fini = verify_fini,
        .ctx = &g_verify,
    };
    struct zl_config_section extra[] = {
        {"chain", zl_chain_settings, zl_chain_settings_count, &g_verify.chain},
        {"verify stage", verify_settings, sizeof(verify_settings) / sizeof(verify_settings[0]), &g_verify.cfg},
    };
    return zl_runtime_main(&stage, extra, 2, argc, argv);
}
