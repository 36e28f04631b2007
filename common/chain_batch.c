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

static bool is_ethereum(int64_t chain_id);
static bool is_bsc(int64_t chain_id);

const char *const zl_finality_names[] = {"auto", "confirmations", "safe", "finalized", NULL};

zl_finality zl_chain_finality_of(zl_finality configured, int64_t chain_id)
{
    if (configured != ZL_FINALITY_AUTO)
        return configured;
    return is_ethereum(chain_id) || is_bsc(chain_id) ? ZL_FINALITY_FINALIZED : ZL_FINALITY_CONFIRMATIONS;
}

const char *zl_chain_finality_tag(zl_finality f)
{
    switch (f) {
    case ZL_FINALITY_SAFE:
        return "safe";
    case ZL_FINALITY_FINALIZED:
        return "finalized";
    default:
        return "latest";
    }
}

static bool is_ethereum(int64_t chain_id)
{
    return chain_id == 1 || chain_id == 17000 || chain_id == 11155111;
}

static bool is_bsc(int64_t chain_id)
{
    return chain_id == 56 || chain_id == 97;
}

int64_t zl_chain_block_ms(int64_t chain_id)
{
    return is_ethereum(chain_id) ? 12000 : is_bsc(chain_id) ? 750 : 1000;
}

int64_t zl_chain_finality_blocks(zl_finality f, int64_t chain_id, int64_t confirmations)
{
    if (f != ZL_FINALITY_SAFE && f != ZL_FINALITY_FINALIZED)
        return confirmations;
    bool fin = f == ZL_FINALITY_FINALIZED;
    if (is_ethereum(chain_id))
        return fin ? 96 : 64;
    if (is_bsc(chain_id))
        return fin ? 3 : 2;
    return 64;
}

int zl_chain_quorum_mark(const uint64_t *marks, size_t n, size_t k, uint64_t *out)
{
    if (k == 0 || n < k || n > ZL_RPC_ENDPOINTS_MAX)
        return -1;
    uint64_t sorted[ZL_RPC_ENDPOINTS_MAX];
    /* insertion sort, highest first: n is at most 16 */
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        for (; j > 0 && sorted[j - 1] < marks[i]; j--)
            sorted[j] = sorted[j - 1];
        sorted[j] = marks[i];
    }
    *out = sorted[k - 1];
    return 0;
}

/* The block number in one endpoint's answer for tag; -1 when it has none. */
static int mark_of(const char *tag, const json_t *answer, uint64_t *number)
{
    if (strcmp(tag, "latest") == 0)
        return zl_rpc_parse_quantity(answer, number);
    return json_is_object(answer) ? zl_json_quantity_field(answer, "number", number) : -1;
}

zl_class zl_chain_read_mark(struct zl_rpc *rpc, const char *tag, uint64_t *number, char *errstr, size_t errstr_size)
{
    *number = 0;
    bool latest = strcmp(tag, "latest") == 0;
    const char *method = latest ? "eth_blockNumber" : "eth_getBlockByNumber";
    json_t *params = latest ? json_array() : json_pack("[s, b]", tag, 0);
    json_t *answers[ZL_RPC_ENDPOINTS_MAX];
    int n = 0;
    size_t k = (size_t)zl_rpc_quorum(rpc);
    zl_class c;
    if (k <= 1) {
        c = zl_rpc_call(rpc, method, params, &answers[0], NULL, errstr, errstr_size);
        n = c == ZL_OK ? 1 : 0;
        k = 1;
    } else {
        c = zl_rpc_call_each(rpc, method, params, answers, &n, errstr, errstr_size);
    }
    json_decref(params);
    uint64_t marks[ZL_RPC_ENDPOINTS_MAX];
    size_t usable = 0;
    for (int i = 0; i < n; i++) {
        if (mark_of(tag, answers[i], &marks[usable]) == 0)
            usable++;
        json_decref(answers[i]);
    }
    if (c != ZL_OK)
        return c;
    if (zl_chain_quorum_mark(marks, usable, k, number) != 0) {
        snprintf(errstr, errstr_size, "%s %s: %zu of %d answers are block numbers, a quorum of %zu needed", method,
                 tag, usable, n, k);
        return ZL_TRANSIENT;
    }
    return ZL_OK;
}
