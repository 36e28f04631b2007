/* facts.h: a deposit's facts as its state row records them, and the check
 * that a message agrees with them (docs/architecture.md, "Trust model").
 *
 * The row is written by detect from the chain (and by each stage's own CAS
 * for its results); a message is only a notification that the row may be
 * ready. So before a stage acts, the runtime compares the message with the
 * row: a message that says something else about the deposit is bad input
 * (poison), and the row is left as it is. zl-replay uses the same check on a
 * poison letter before it publishes it again.
 *
 * Compared: the deposit id parts (chain_id, tx_hash, log_index; a Solana
 * row has neither chain_id nor log_index, read as 0 like its events: its
 * cluster and instruction are pinned by the deposit id the row is read by), token,
 * from, to, user_id and amount (they never change for a deposit), and the
 * stage results the row already holds and the message carries
 * (metadata_cid, token_uri, nft_contract, token_id, mint_tx_hash).
 * Not compared: block_number and block_hash (a reorg that re-includes the tx
 * moves the row's block while older events naming the orphaned block are
 * still in flight: the runtime drops those as superseded, and stages use the
 * row's block), confirmations, event_id and occurred_at (per event).
 * Addresses are compared without regard to case (they are kept as given).
 *
 * @locality any thread: every function touches only its arguments.
 */
#ifndef ZL_FACTS_H
#define ZL_FACTS_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "hex.h"
#include "zl.h"

/* Strings are "" when the column is NULL (a stage result not yet written). */
struct zl_facts {
    uint64_t chain_id;
    char tx_hash[ZL_EVENT_TXID_SIZE];
    uint32_t log_index;
    char token[ZL_EVENT_ADDR_SIZE];
    char from[ZL_EVENT_ADDR_SIZE];
    char to[ZL_EVENT_ADDR_SIZE];
    char user_id[ZL_USER_ID_SIZE];
    char amount[ZL_UINT256_DEC_SIZE];
    /* stage results */
    char metadata_cid[128];
    char token_uri[140];
    char nft_contract[ZL_EVENT_ADDR_SIZE];
    char token_id[ZL_UINT256_DEC_SIZE];
    char mint_tx_hash[ZL_EVENT_TXID_SIZE];
};

/* The select list a reader of the deposits table puts in its query (the
 * table's alias must be d) for zl_facts_from_result; ZL_FACTS_NCOLS columns. */
#define ZL_FACTS_COLUMNS                                                                                           \
    "d.chain_id, d.tx_hash, d.log_index, d.token, d.from_addr, d.to_addr, d.user_id, d.amount::text,"            \
    " coalesce(d.metadata_cid, ''), coalesce(d.token_uri, ''), coalesce(d.nft_contract, ''),"                     \
    " coalesce(d.token_id::text, ''), coalesce(d.mint_tx_hash, '')"
#define ZL_FACTS_NCOLS 13

/* Reads the ZL_FACTS_NCOLS columns of ZL_FACTS_COLUMNS that start at column
 * col of row `row` of r into *out (a value longer than its buffer is cut,
 * and then never compares equal). */
void zl_facts_from_result(const PGresult *r, int row, int col, struct zl_facts *out);

/* Bytes of a field name zl_facts_compare reports ("mint_tx_hash" is the
 * longest). */
#define ZL_FACTS_FIELD_SIZE 16

/* Compares ev with the row's facts f. Returns 0 when they agree on every
 * compared field ev's kind carries, else -1 with field (ZL_FACTS_FIELD_SIZE
 * bytes, may be NULL) set to the first differing field's name and why set
 * to "field amount differs: message says 101, the row says 100". */
int zl_facts_compare(const struct zl_facts *f, const struct zl_event *ev, char *field, char *why,
                     size_t why_size);

/* Makes ev say what the row says: copies every compared fact ev's kind
 * carries from f (a stage result only when the row holds it). After a
 * compare that passed this changes at most the case of addresses; it makes
 * every fact a stage acts on, and every event built from ev, the row's. */
void zl_facts_apply(const struct zl_facts *f, struct zl_event *ev);

#endif /* ZL_FACTS_H */
