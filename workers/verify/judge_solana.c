/* judge_solana.c: what the chain says of a Solana deposit (issue 22;
 * docs/architecture.md, "Solana"). One getTransaction per deposit, agreed by
 * ZL_SOLANA_RPC_QUORUM endpoints at ZL_SOLANA_COMMITMENT (solana_verify.h).
 *
 * The claim checked is the row's (detect wrote it from the chain; the
 * runtime refused a message that says otherwise): its destination token
 * account and amount, at the id's signature and instruction, of the
 * configured mint. Verdicts:
 *   - there as claimed: verified, with the slot the transaction is in;
 *   - not there at the commitment (yet): defer, about one slot;
 *   - there, but not the claimed transfer (another amount, account, mint,
 *     or a failed transaction): permanent, dead-lettered with what differs;
 *   - an id of another cluster: poison (solana_verify.h);
 *   - there as claimed but under ZL_SOLANA_MIN_AMOUNT: settled
 *     below_minimum, as an EVM deposit under its token's minimum.
 * A Solana deposit where ZL_SOLANA_CLUSTER is unset is poison: this
 * deployment cannot judge it, and it must not block the partition.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "solana_verify.h"
#include "verify.h"

/* A slot, for the defer's estimate (400 ms on every cluster). */
#define SOL_SLOT_MS 400

void verify_judge_solana(struct verify *v, struct zl_work *w)
{
    const struct zl_facts *f = &w->row.facts;
    if (!zl_solana_enabled(&v->sol)) {
        snprintf(w->error, sizeof(w->error), "a Solana deposit: this verify takes none (ZL_SOLANA_CLUSTER unset)");
        w->result = ZL_POISON;
        return;
    }
    if (strcmp(f->token, v->sol.mint) != 0) {
        snprintf(w->error, sizeof(w->error), "token %s is not the Solana deposit mint %s (ZL_SOLANA_MINT)", f->token,
                 v->sol.mint);
        w->result = ZL_PERMANENT;
        return;
    }
    enum zl_sol_verdict verdict = ZL_SOL_NOT_YET;
    struct zl_sol_transfer found;
    char err[ZL_ERRSTR_SIZE] = "";
    zl_class c = zl_sol_verify(v->sol_rpc, v->sol.cluster, v->sol.mint, v->sol.commitment, w->in.deposit_id, f->to,
                               f->amount, &verdict, &found, err, sizeof(err));
    if (c != ZL_OK) {
        snprintf(w->error, sizeof(w->error), "%s", err);
        w->result = c;
        return;
    }
    switch (verdict) {
    case ZL_SOL_NOT_YET:
        snprintf(w->error, sizeof(w->error), "transaction %s not %s on a quorum of endpoints yet: it waits",
                 w->in.tx_hash, v->sol.commitment);
        w->result = ZL_DEFER;
        w->defer_ms = SOL_SLOT_MS;
        return;
    case ZL_SOL_MISMATCH:
        snprintf(w->error, sizeof(w->error), "the chain disowns this deposit: %s", err);
        w->result = ZL_PERMANENT;
        return;
    case ZL_SOL_VERIFIED:
        break;
    }
    /* Real and final but under ZL_SOLANA_MIN_AMOUNT: as an EVM deposit under
     * its token's minimum. */
    if (verify_settle_below_minimum(w, "the Solana", f->token, v->cfg.sol_min_amount, v->m_below_min_sol))
        return;
    zl_event_derive(&w->out, &w->in, ZL_TOPIC_VERIFIED);
    /* Final by commitment, not by a count of slots on top. */
    w->out.confirmations = 0;
    w->out.block_number = found.slot;
    w->result = ZL_OK;
}
