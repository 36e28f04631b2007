/* chain_batch.h: the chain reads one poll batch needs, each fact asked once
 * and many at a time: the receipts of many transactions, the canonical
 * hashes of the distinct blocks they name, and the head.
 *
 * Receipts and blocks go in JSON-RPC batch requests of ZL_RPC_BATCH_MAX
 * calls under the client's quorum (zl_rpc_batch_quorum); the head is one
 * zl_rpc_call. Why: against an endpoint 100 ms away, 500 deposits read one
 * call at a time were 150 s of round trips one after another.
 *
 * Classes are decided here, where the answer is seen:
 *   - a request that fails as a whole: the class zl_rpc_batch_quorum (or
 *     zl_rpc_call for the head) returned, as it is: ZL_OUTAGE when every
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

/* The head (eth_blockNumber). Returns ZL_OK with *head set, zl_rpc_call's
 * class with errstr when the call failed, or ZL_TRANSIENT when the answer is
 * not a quantity. */
zl_class zl_chain_read_head(struct zl_rpc *rpc, uint64_t *head, char *errstr, size_t errstr_size);

#endif /* ZL_CHAIN_BATCH_H */
