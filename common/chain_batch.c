/* chain_batch.c: batched chain reads for one poll batch (chain_batch.h). */
#include "chain_batch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The calls of one batch request. errs is on the heap: 1.3 KiB each. */
struct batch_req {
    const char *methods[ZL_RPC_BATCH_MAX];
    json_t *params[ZL_RPC_BATCH_MAX];
    json_t *results[ZL_RPC_BATCH_MAX];
    size_t idx[ZL_RPC_BATCH_MAX];          /* the caller's index of each call */
    struct zl_rpc_error *errs;
    char err[ZL_ERRSTR_SIZE];
};

/* Sends req's k calls; consumes the params. On ZL_OK each results[j] is an
 * answer (new reference) or NULL with errs[j] saying why. */
static zl_class send_batch(struct zl_rpc *rpc, struct batch_req *req, size_t k)
{
    zl_class c = ZL_TRANSIENT;
    snprintf(req->err, sizeof(req->err), "out of memory");
    if (req->errs != NULL)
        c = zl_rpc_batch_quorum(rpc, k, req->methods, req->params, req->results, req->errs, req->err,
                                sizeof(req->err));
    for (size_t j = 0; j < k; j++) {
        json_decref(req->params[j]);
        req->params[j] = NULL;
        if (c != ZL_OK)
            req->results[j] = NULL;
    }
    return c;
}

/* Why call j of a batch has no answer. */
static const char *call_error(const struct batch_req *req, size_t j)
{
    return req->errs[j].message[0] != '\0' ? req->errs[j].message : "no answer";
}

void zl_chain_read_receipts(struct zl_rpc *rpc, const char *const *tx_hashes, size_t n, zl_chain_receipt_fn fn,
                            void *opaque)
{
    struct batch_req *req = calloc(1, sizeof(*req));
    struct zl_rpc_error *errs = calloc(ZL_RPC_BATCH_MAX, sizeof(*errs));
    if (req == NULL) {
        for (size_t i = 0; i < n; i++)
            if (tx_hashes[i] != NULL)
                fn(opaque, i, ZL_TRANSIENT, NULL, "eth_getTransactionReceipt: out of memory");
        free(errs);
        return;
    }
    req->errs = errs;
    size_t i = 0;
    while (i < n) {
        size_t k = 0;
        for (; i < n && k < ZL_RPC_BATCH_MAX; i++) {
            if (tx_hashes[i] == NULL)
                continue;
            req->methods[k] = "eth_getTransactionReceipt";
            req->params[k] = json_pack("[s]", tx_hashes[i]);
            req->idx[k++] = i;
        }
        if (k == 0)
            break;
        zl_class c = send_batch(rpc, req, k);
        for (size_t j = 0; j < k; j++) {
            char why[ZL_ERRSTR_SIZE];
            size_t at = req->idx[j];
            if (c != ZL_OK) {
                snprintf(why, sizeof(why), "eth_getTransactionReceipt: %s", req->err);
                fn(opaque, at, c, NULL, why);
            } else if (req->results[j] == NULL) {
                snprintf(why, sizeof(why), "eth_getTransactionReceipt %s: %s", tx_hashes[at], call_error(req, j));
                fn(opaque, at, ZL_TRANSIENT, NULL, why);
            } else {
                fn(opaque, at, ZL_OK, req->results[j], "");
                json_decref(req->results[j]);
            }
        }
    }
    free(errs);
    free(req);
}

int zl_chain_receipt_transfer(const json_t *receipt, uint32_t log_index, struct zl_transfer_log *out)
{
    size_t i;
    json_t *lg;
    json_array_foreach(json_object_get(receipt, "logs"), i, lg) {
        uint64_t li = 0;
        if (zl_json_quantity_field(lg, "logIndex", &li) != 0 || li != log_index)
            continue;
        char err[ZL_ERRSTR_SIZE];
        return zl_chain_parse_transfer_log(lg, out, err, sizeof(err));
    }
    return -1;
}

size_t zl_chain_blocks_add(struct zl_chain_block *blocks, size_t *nb, uint64_t number)
{
    size_t b = 0;
    while (b < *nb && blocks[b].number != number)
        b++;
    if (b == *nb) {
        memset(&blocks[b], 0, sizeof(blocks[b]));
        blocks[b].number = number;
        (*nb)++;
    }
    return b;
}

/* What one eth_getBlockByNumber answer says of bl. */
static void judge_block_answer(struct zl_chain_block *bl, const json_t *block)
{
    bl->exists = json_is_object(block);
    bl->c = ZL_OK;
    if (bl->exists && zl_json_hex_field(block, "hash", 64, bl->hash, sizeof(bl->hash)) != 0) {
        bl->c = ZL_TRANSIENT;
        snprintf(bl->error, sizeof(bl->error), "eth_getBlockByNumber %" PRIu64 ": block without a hash", bl->number);
    }
}

void zl_chain_read_blocks(struct zl_rpc *rpc, struct zl_chain_block *blocks, size_t n)
{
    struct batch_req *req = calloc(1, sizeof(*req));
    struct zl_rpc_error *errs = calloc(ZL_RPC_BATCH_MAX, sizeof(*errs));
    for (size_t first = 0; first < n; first += ZL_RPC_BATCH_MAX) {
        size_t k = n - first < ZL_RPC_BATCH_MAX ? n - first : ZL_RPC_BATCH_MAX;
        if (req == NULL) {
            for (size_t j = 0; j < k; j++) {
                blocks[first + j].c = ZL_TRANSIENT;
                snprintf(blocks[first + j].error, sizeof(blocks[first + j].error),
                         "eth_getBlockByNumber: out of memory");
            }
            continue;
        }
        req->errs = errs;
        for (size_t j = 0; j < k; j++) {
            char num[24];
            snprintf(num, sizeof(num), "0x%" PRIx64, blocks[first + j].number);
            req->methods[j] = "eth_getBlockByNumber";
            req->params[j] = json_pack("[s, b]", num, 0);
        }
        zl_class c = send_batch(rpc, req, k);
        for (size_t j = 0; j < k; j++) {
            struct zl_chain_block *bl = &blocks[first + j];
            if (c != ZL_OK) {
                bl->c = c;
                snprintf(bl->error, sizeof(bl->error), "eth_getBlockByNumber: %s", req->err);
            } else if (req->results[j] == NULL) {
                bl->c = ZL_TRANSIENT;
                snprintf(bl->error, sizeof(bl->error), "eth_getBlockByNumber %" PRIu64 ": %s", bl->number,
                         call_error(req, j));
            } else {
                judge_block_answer(bl, req->results[j]);
                json_decref(req->results[j]);
            }
        }
    }
    free(errs);
    free(req);
}

zl_class zl_chain_read_head(struct zl_rpc *rpc, uint64_t *head, char *errstr, size_t errstr_size)
{
    *head = 0;
    json_t *head_j = NULL;
    json_t *p0 = json_array();
    zl_class c = zl_rpc_call(rpc, "eth_blockNumber", p0, &head_j, NULL, errstr, errstr_size);
    json_decref(p0);
    if (c == ZL_OK && zl_rpc_parse_quantity(head_j, head) != 0) {
        snprintf(errstr, errstr_size, "eth_blockNumber: not a quantity");
        c = ZL_TRANSIENT;
    }
    json_decref(head_j);
    return c;
}
