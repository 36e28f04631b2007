/* verify.h: the verify stage's own parts, shared by its files (main.c:
 * settings, start and the stage table; judge.c: what the chain says of each
 * deposit of a poll batch). The chain reads are common/chain_batch.h's.
 *
 * @locality the stage's main thread (process_batch).
 */
#ifndef ZL_VERIFY_H
#define ZL_VERIFY_H

#include <stdint.h>

#include "blockclock.h"
#include "chain.h"
#include "chain_batch.h"
#include "metrics.h"
#include "pg.h"
#include "rpc.h"
#include "runtime.h"
#include "solana_chain.h"
#include "tokens.h"

struct verify_config {
    int64_t confirmations;
    char *min_amount;
    char *sol_min_amount; /* ZL_SOLANA_MIN_AMOUNT: Solana deposits' minimum, in the mint's smallest unit */
    int finality;         /* index into zl_finality_names */
};

struct verify {
    struct zl_chain_config chain;
    struct zl_solana_config sol; /* Solana deposits, when ZL_SOLANA_CLUSTER is set */
    bool evm;                    /* ZL_RPC_URLS set: EVM deposits are judged */
    struct zl_rpc *sol_rpc;      /* NULL without Solana */
    struct verify_config cfg;
    zl_finality finality;   /* cfg.finality with auto resolved by chain id */
    const char *mark_tag;   /* the block tag a deposit's block must reach */
    int64_t block_ms;       /* the chain's block time, for the wait estimate */
    struct zl_block_clock clock; /* when each head read first came: when the blocks a deposit waits for are due */
    struct zl_tokens tokens; /* ZL_TOKENS: which tokens are deposits, each with its minimum */
    struct zl_rpc *rpc;
    struct zl_pg pg; /* own connection: marks rows reorged outside the CAS */
    zl_metric *m_reorged;
    zl_metric *m_below_min[ZL_TOKENS_MAX]; /* zl_verify_below_minimum_total, per tokens.t[i] */
    zl_metric *m_below_min_sol;            /* ... {token="<the Solana mint>"} */
};

/* The stage's process_batch (judge.c): EVM deposits in batches, Solana
 * deposits each with verify_judge_solana. */
void verify_process_batch(void *ctx, struct zl_work *const *ws, size_t n);

/* A real and final deposit under its minimum (dust, spam sent to a public
 * address) is expected, not a failure: it is settled `below_minimum`
 * (runtime.h, zl_work.settle), counted in m, and never dead-lettered;
 * nothing is published. Judged on the row's amount, unless an operator
 * waived the minimum for this deposit (zlctl credit-below-minimum). whose
 * names the minimum in the reason ("USDT's", "the Solana"), token labels
 * the log. Returns true when settled (judge.c; both chains use it). */
bool verify_settle_below_minimum(struct zl_work *w, const char *whose, const char *token, const char *minimum,
                                 zl_metric *m);

/* Judges one Solana deposit (judge_solana.c): sets w->result, w->error and,
 * verified, w->out. */
void verify_judge_solana(struct verify *v, struct zl_work *w);

#endif /* ZL_VERIFY_H */
