/* verify: passes a detected deposit on only when the chain says it is real
 * and final (architecture §5, §6).
 *
 * For each zl.deposits.detected event, with quorum reads (ZL_RPC_QUORUM
 * endpoints must agree on the receipt, on the block hash and on the head):
 *   - the token is in ZL_TOKENS, else permanent;
 *   - the receipt exists with status 1 (status 0: permanent);
 *   - its log at log_index is a Transfer of the same token, from, to, amount;
 *   - its block is canonical and final, else defer (the delay tiers; the
 *     partition is never blocked). Final per ZL_FINALITY (chain_batch.h):
 *     ZL_CONFIRMATIONS blocks on top of it, or at or below the chain's
 *     "safe"/"finalized" block; auto picks by chain id. The head (or the
 *     safe/finalized block) comes from a quorum too: the highest block that
 *     ZL_RPC_QUORUM endpoints say they have reached, so one endpoint
 *     reporting a head far ahead cannot pass a deposit early;
 *   - gone from the chain (its block replaced, or the tx moved to another
 *     log index): the row becomes `reorged`, nothing is published, and the
 *     zl_verify_reorged_total metric counts it;
 *   - the chain shorter than its block (a reorg in progress, or an endpoint
 *     behind): defer;
 *   - every RPC endpoint down: outage (pause, never DLQ);
 *   - real and final but under its token's minimum (ZL_TOKENS, or
 *     ZL_MIN_AMOUNT): the row is settled `below_minimum`, nothing is
 *     published, never DLQ; zl_verify_below_minimum_total{token} counts it.
 *     A row whose minimum an operator waived (min_waived_at, zlctl
 *     credit-below-minimum) is judged without it.
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

#include "log.h"
#include "verify.h"

#define OFF(f) offsetof(struct verify_config, f)
static const struct zl_setting verify_settings[] = {
    {"ZL_CONFIRMATIONS", ZL_CFG_INT, "15", "blocks on top of a deposit's block before it is verified (BSC: 15)",
     OFF(confirmations), 0, 100000},
    {"ZL_MIN_AMOUNT", ZL_CFG_STR, "1", 
     "smallest deposit accepted, in the token's smallest unit (decimal), for tokens whose ZL_TOKENS entry gives none",
     OFF(min_amount), 0, 0},
    {"ZL_SOLANA_MIN_AMOUNT", ZL_CFG_STR, "1",
     "smallest Solana deposit accepted, in the mint's smallest unit (decimal; at 6 decimals 1000000 = 1 USDT)",
     OFF(sol_min_amount), 0, 0},
    {"ZL_FINALITY", ZL_CFG_ENUM(zl_finality_names), "auto",
     "when a deposit's block is final: confirmations (ZL_CONFIRMATIONS on top), or at or below the chain's"
     " safe / finalized block; auto: finalized on Ethereum and BSC (1, 17000, 11155111, 56, 97), else"
     " confirmations",
     OFF(finality), 0, 0},
};
#undef OFF

static struct verify g_verify;

static int verify_init(void *ctx, const struct zl_runtime_env *env, char *errstr, size_t errstr_size)
{
    struct verify *v = ctx;
    if (!zl_valid_uint256_dec(v->cfg.min_amount)) {
        snprintf(errstr, errstr_size, "ZL_MIN_AMOUNT: \"%s\" is not a canonical decimal integer", v->cfg.min_amount);
        return ZL_RUNTIME_INIT_REFUSED;
    }
    if (!zl_valid_uint256_dec(v->cfg.sol_min_amount)) {
        snprintf(errstr, errstr_size, "ZL_SOLANA_MIN_AMOUNT: \"%s\" is not a canonical decimal integer",
                 v->cfg.sol_min_amount);
        return ZL_RUNTIME_INIT_REFUSED;
    }
    /* Each chain family is judged where it is configured (issue 22): EVM
     * with ZL_RPC_URLS, Solana with ZL_SOLANA_CLUSTER; a deposit of the
     * other is poison. */
    v->evm = v->chain.rpc_urls[0] != '\0';
    if (!v->evm && !zl_solana_enabled(&v->sol)) {
        snprintf(errstr, errstr_size, "ZL_RPC_URLS (EVM) or ZL_SOLANA_CLUSTER (Solana) is required");
        return ZL_RUNTIME_INIT_REFUSED;
    }
    if (zl_solana_enabled(&v->sol)) {
        if (zl_solana_check(&v->sol, true, errstr, errstr_size) != 0)
            return ZL_RUNTIME_INIT_REFUSED;
        struct zl_rpc_opts so;
        zl_solana_rpc_opts(&v->sol, &v->chain, env->metrics, env->health, &so);
        if (zl_rpc_new(&v->sol_rpc, &so, errstr, errstr_size) != 0)
            return ZL_RUNTIME_INIT_REFUSED;
        zl_log(ZL_LOG_INFO, NULL, "Solana deposits on %s, mint %s, verified at %s by %lld endpoint(s)",
               v->sol.cluster, v->sol.mint, v->sol.commitment, (long long)v->sol.rpc_quorum);
    }
    if (!v->evm)
        goto pg;
    if (zl_chain_tokens(&v->chain, v->cfg.min_amount, &v->tokens, errstr, errstr_size) != 0)
        return ZL_RUNTIME_INIT_REFUSED;
    v->finality = zl_chain_finality_of((zl_finality)v->cfg.finality, v->chain.chain_id);
    v->mark_tag = zl_chain_finality_tag(v->finality);
    v->block_ms = zl_chain_block_ms(v->chain.chain_id);
    zl_block_clock_init(&v->clock, v->block_ms);
    zl_log(ZL_LOG_INFO, NULL, "finality on chain %" PRId64 ": %s (a deposit waits about %" PRId64 " s)",
           v->chain.chain_id, zl_finality_names[v->finality],
           zl_chain_finality_blocks(v->finality, v->chain.chain_id, v->cfg.confirmations) * v->block_ms / 1000);
    struct zl_rpc_opts ro;
    zl_chain_rpc_opts(&v->chain, env->metrics, env->health, &ro);
    if (zl_rpc_new(&v->rpc, &ro, errstr, errstr_size) != 0)
        return -1;
pg:
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
    zl_metrics_describe(env->metrics, "zl_verify_below_minimum_total", ZL_METRIC_COUNTER,
                        "deposits under their token's minimum (settled below_minimum, not passed on, never DLQ)");
    for (size_t i = 0; i < v->tokens.n; i++) {
        char labels[ZL_TOKEN_SYMBOL_SIZE + 16];
        snprintf(labels, sizeof(labels), "token=\"%s\"", v->tokens.t[i].symbol);
        v->m_below_min[i] = zl_metrics_counter_handle(env->metrics, "zl_verify_below_minimum_total", labels);
    }
    if (zl_solana_enabled(&v->sol)) {
        char labels[ZL_EVENT_ADDR_SIZE + 16];
        snprintf(labels, sizeof(labels), "token=\"%s\"", v->sol.mint);
        v->m_below_min_sol = zl_metrics_counter_handle(env->metrics, "zl_verify_below_minimum_total", labels);
    }
    return 0;
}

static void verify_fini(void *ctx)
{
    struct verify *v = ctx;
    zl_rpc_free(v->rpc);
    v->rpc = NULL;
    zl_rpc_free(v->sol_rpc);
    v->sol_rpc = NULL;
    zl_pg_close(&v->pg);
}

static int verify_prepare(void *ctx, struct zl_pg *pg)
{
    (void)ctx;
    return zl_pg_add_stmt(pg, "verify_block_facts",
                          "UPDATE deposits SET confirmations = $2::integer, block_number = $3::bigint,"
                          " block_hash = NULLIF($4, '') WHERE deposit_id = $1",
                          4);
}

static zl_class verify_probe(void *ctx, char *errstr, size_t errstr_size)
{
    struct verify *v = ctx;
    /* Paused only when no configured chain has an endpoint left. */
    if ((v->rpc != NULL && zl_rpc_any_healthy(v->rpc)) || (v->sol_rpc != NULL && zl_rpc_any_healthy(v->sol_rpc)))
        return ZL_OK;
    snprintf(errstr, errstr_size, "every RPC endpoint's breaker is open");
    return ZL_OUTAGE;
}

/* The admin API's breaker reset: "rpc", "rpc:<host>" or every breaker. */
static int verify_reset_breakers(void *ctx, const char *dependency)
{
    struct verify *v = ctx;
    int n = v->rpc != NULL ? zl_rpc_reset_breakers_named(v->rpc, dependency) : 0;
    if (v->sol_rpc != NULL)
        n += zl_rpc_reset_breakers_named(v->sol_rpc, dependency);
    return n > 0 ? 1 : 0;
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
        {"solana", zl_solana_settings, zl_solana_settings_count, &g_verify.sol},
    };
    return zl_runtime_main(&stage, extra, 3, argc, argv);
}
