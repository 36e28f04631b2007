/* solana_verify.h: verify's check of one Solana deposit against the chain
 * (docs/architecture.md, "Solana"): the transfer the event claims must be
 * in the transaction, at the commitment verify waits for (finalized by
 * default), as equal answers from the client's quorum of endpoints.
 *
 * The event is untrusted (a forged or stale message): only what the chain
 * says is credited. The check reads getTransaction for the event's
 * signature (jsonParsed, zl_rpc_call_quorum) and looks for a USDT transfer
 * of the configured mint into the event's destination at the event's place
 * (solana_transfers.h decides what counts as one).
 *
 * Ownership: everything is the caller's. @locality the thread that owns r.
 */
#ifndef ZL_SOLANA_VERIFY_H
#define ZL_SOLANA_VERIFY_H

#include "rpc.h"
#include "solana_transfers.h"
#include "solana_tx.h"
#include "zl.h"

enum zl_sol_verdict {
    ZL_SOL_VERIFIED = 0,   /* the transfer is there as claimed: *found holds the chain's facts */
    ZL_SOL_NOT_YET = 1,    /* the quorum has no such transaction at this commitment (yet) */
    ZL_SOL_MISMATCH = 2,   /* the transaction is there, the claimed transfer is not: errstr says what differs */
};

/* The event's claim: its deposit id ("<cluster>:<signature>:<place>"), the
 * destination token account and the amount (decimal base units). Returns
 * ZL_OK with *verdict set (and *found on ZL_SOL_VERIFIED), or the RPC's
 * class (ZL_TRANSIENT, ZL_OUTAGE) with errstr; ZL_POISON when the deposit id
 * is not a Solana one of this cluster. */
zl_class zl_sol_verify(struct zl_rpc *r, const char *cluster, const char *mint, const char *commitment,
                       const char *deposit_id, const char *destination, const char *amount,
                       enum zl_sol_verdict *verdict, struct zl_sol_transfer *found, char *errstr,
                       size_t errstr_size);

#endif /* ZL_SOLANA_VERIFY_H */
