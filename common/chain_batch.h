/* chain_batch.h: the chain reads one poll batch needs, each fact asked once
 * and many at a time: the receipts of many transactions, the canonical
 * hashes of the distinct blocks they name, and the head.
 *
 * Receipts and blocks go in JSON-RPC batch requests of ZL_RPC_BATCH_MAX
 * calls under the client's quorum (zl_rpc_batch_quorum); the head (or the
 * safe/finalized block) by zl_chain_read_mark's quorum rule. Why: against an endpoint 100 ms away, 500 deposits read one
 * call at a time were 150 s of round trips one after another.
 *
 * Classes are decided here, where the answer is seen:
 *   - a request that fails as a whole: the class zl_rpc_batch_quorum (or
 *     zl_rpc_call / zl_rpc_call_each for a mark) returned, as it is: ZL_OUTAGE when every
 *     endpoint is down, ZL_TRANSIENT otherwise;
 *   - one call of a batch that came back with an error answer or short of a
 *     quorum, or an answer missing a field we need: ZL_TRANSIENT. An
 *     endpoint's error answer to a read says nothing about the transaction.
 * What an answer means for a deposit (a failed receipt, a replaced block) is
 * the caller's decision.
 *
 * Ownership: every buffer is the caller's; JSON handed to a callback is
 * borrowed for the call only.
 * @locality the thread that owns the struct zl_rpc (see rpc.h).
 */
#ifndef ZL_CHAIN_BATCH_H
#define ZL_CHAIN_BATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "rpc.h"
#include "hex.h"
#include "zl.h"

/* A block's error text: one per distinct block of a batch of up to 500
 * deposits, so shorter than ZL_ERRSTR_SIZE. */
#define ZL_CHAIN_BLOCK_ERROR_SIZE 256
/* 0x + 64 hex digits + NUL. */
#define ZL_CHAIN_HASH_SIZE ZL_HASH_HEX_SIZE

/* One receipt as its request returned: c is ZL_OK with receipt the
 * "result" (JSON null when the node knows no receipt for the transaction),
 * or a failure class with why saying what failed (receipt NULL). */
typedef void (*zl_chain_receipt_fn)(void *opaque, size_t i, zl_class c, const json_t *receipt, const char *why);

/* Reads the receipt of tx_hashes[i] for every i in [0, n) whose entry is not
 * NULL, calling fn(opaque, i, ...) exactly once for each, in index order, as
 * each request returns (a batch's 500 parsed receipts at once were
 * megabytes; each is freed after its callback). Out of memory: fn gets
 * ZL_TRANSIENT for every receipt not yet read. */
void zl_chain_read_receipts(struct zl_rpc *rpc, const char *const *tx_hashes, size_t n, zl_chain_receipt_fn fn,
                            void *opaque);

/* Finds the log at log_index in a receipt's "logs" and decodes it as an
 * ERC-20 Transfer into *out. Returns 0, or -1 when the receipt has no log
 * at that index or it is not a well-formed Transfer (chain.h). */
int zl_chain_receipt_transfer(const json_t *receipt, uint32_t log_index, struct zl_transfer_log *out);

/* One block by number and what the chain says of it. */
struct zl_chain_block {
    uint64_t number;                        /* in */
    zl_class c;                             /* out: ZL_OK when exists and hash hold the answer */
    bool exists;                            /* out: false when the chain is shorter than number */
    char hash[ZL_CHAIN_HASH_SIZE];          /* out: its canonical hash, lower-case 0x-hex */
    char error[ZL_CHAIN_BLOCK_ERROR_SIZE];  /* out: why, when c is not ZL_OK */
};

/* Adds number to blocks[0..*nb) unless it is there already; returns its
 * index. blocks must have room for one more entry. */
size_t zl_chain_blocks_add(struct zl_chain_block *blocks, size_t *nb, uint64_t number);

/* Fills c, exists, hash and error of blocks[0..n) from
 * eth_getBlockByNumber(number, false), ZL_RPC_BATCH_MAX per request. Never
 * fails as a C call: each block's outcome is in it. */
void zl_chain_read_blocks(struct zl_rpc *rpc, struct zl_chain_block *blocks, size_t n);

/* How final a deposit's block must be before verify passes it on
 * (ZL_FINALITY; the values follow zl_finality_names, so a config index casts
 * to it):
 *   - confirmations: ZL_CONFIRMATIONS blocks on top of it, counted from the
 *     head ("latest");
 *   - safe / finalized: at or below the chain's "safe" / "finalized" block
 *     (eth_getBlockByNumber with that tag), which the chain's consensus
 *     vouches for (Ethereum: Casper FFG; BSC: fast finality, BEP-126);
 *   - auto: by chain id (zl_chain_finality_of). */
typedef enum zl_finality {
    ZL_FINALITY_AUTO,
    ZL_FINALITY_CONFIRMATIONS,
    ZL_FINALITY_SAFE,
    ZL_FINALITY_FINALIZED,
} zl_finality;

/* "auto", "confirmations", "safe", "finalized", NULL: the ZL_FINALITY choices. */
extern const char *const zl_finality_names[];

/* What auto means on chain_id: finalized where the chain has the tag and a
 * consensus behind it (Ethereum 1, Sepolia 11155111, Holesky 17000, BSC 56,
 * BSC testnet 97), confirmations elsewhere (a local anvil, 31337, has the
 * tag but nothing behind it but its own clock). Any other value of
 * configured comes back as it is. */
zl_finality zl_chain_finality_of(zl_finality configured, int64_t chain_id);

/* The block tag whose number a deposit's block must reach: "latest" for
 * confirmations (and auto), "safe", "finalized". */
const char *zl_chain_finality_tag(zl_finality f);

/* The chain's usual block time in ms (Ethereum and its testnets 12,000;
 * BSC 750 since the Maxwell upgrade; anything else 1,000), for estimates
 * only: how long a deposit waits, never whether it is final. */
int64_t zl_chain_block_ms(int64_t chain_id);

/* About how many blocks a deposit waits for f (resolved) on chain_id:
 * confirmations for confirmations; Ethereum safe 64, finalized 96 (one and
 * two epochs of 32 slots, with the epoch in progress); BSC safe 2,
 * finalized 3 (fast finality votes on the next blocks); elsewhere 64.
 * Times zl_chain_block_ms it is verify's estimate of the wait. */
int64_t zl_chain_finality_blocks(zl_finality f, int64_t chain_id, int64_t confirmations);

/* The quorum rule for a block mark (the head, or the safe/finalized
 * block): the k-th highest of marks[0..n), i.e. the highest block that at
 * least k endpoints say they have reached. Why not equal answers as for a
 * receipt: honest endpoints are seldom at the same head at the same moment,
 * so an equality quorum would mostly fail; and why not the highest or the
 * median: one endpoint (k = 2) reporting a head 5,000 blocks ahead would be
 * believed. An endpoint can only lower the result below what k - 1 others
 * confirm (which delays, never passes early). Returns 0 with *out set, or -1
 * when n < k or k is 0. */
int zl_chain_quorum_mark(const uint64_t *marks, size_t n, size_t k, uint64_t *out);

/* The number of the block tag names: "latest" (eth_blockNumber), "safe" or
 * "finalized" (eth_getBlockByNumber(tag, false).number). With the client's
 * quorum k > 1 every endpoint is asked (zl_rpc_call_each) and
 * zl_chain_quorum_mark decides; with k = 1 one call, hedged. Returns ZL_OK
 * with *number set; the class of the call when no endpoint answered;
 * ZL_TRANSIENT when fewer than k answers were block numbers (an answer
 * that is not one, e.g. null from a node that does not know the tag, does
 * not count). */
zl_class zl_chain_read_mark(struct zl_rpc *rpc, const char *tag, uint64_t *number, char *errstr, size_t errstr_size);

#endif /* ZL_CHAIN_BATCH_H */
