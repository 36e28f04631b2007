/* txmgr.c: the transaction manager's pure parts, chain reads, fees,
 * estimates, signing and broadcast (txmgr.h). Driving a stored transaction
 * to its receipt is in txmgr_drive.c. */
#include "txmgr.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chain_batch.h"
#include "hex.h"

/* Longest error message kept from a node in our own messages. */
#define TXMGR_NODE_ERROR_MAX 200
/* Recent blocks whose tips are weighed (eth_feeHistory's block count). */
#define TXMGR_FEE_BLOCKS 5
/* Tips kept from them: one per block, with room to spare. */
#define TXMGR_TIPS_MAX 8
#define GWEI UINT64_C(1000000000)

void zl_txmgr_init(struct zl_txmgr *t, const struct zl_txmgr_opts *o)
{
    memset(t, 0, sizeof(*t));
    t->o = *o;
    t->head_block = -1;
    zl_block_clock_init(&t->clock, zl_chain_block_ms((int64_t)o->chain_id));
    snprintf(t->signer_hex, sizeof(t->signer_hex), "%s", o->key->address_hex);
    zl_hex_encode(o->contract, 20, t->contract_hex, sizeof(t->contract_hex));
}

/* ------------------------------------------------------------ pure parts */

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p != '\0'; p++)
        if (strncasecmp(p, needle, n) == 0)
            return true;
    return false;
}

static bool contains_any(const char *hay, const char *const *needles, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (contains_ci(hay, needles[i]))
            return true;
    return false;
}

zl_tx_reason zl_tx_classify_answer(const struct zl_rpc_error *re)
{
    /* Order matters: "already known" wins over anything else the message
     * says, and a node that cannot charge the signer is never "refused". */
    static const char *const sent[] = {"already known", "known transaction", "already imported", "nonce too low",
                                       "replacement transaction underpriced", "already in mempool",
                                       "already exists"};
    static const char *const refused[] = {"intrinsic gas too low", "exceeds block gas limit", "invalid sender",
                                          "oversized data", "not supported", "invalid chain id",
                                          "gas limit too low", "out of gas"};
    if (contains_any(re->message, sent, sizeof(sent) / sizeof(sent[0])))
        return ZL_TX_SENT;
    if (contains_ci(re->message, "insufficient funds"))
        return ZL_TX_UNFUNDED;
    if (contains_any(re->message, refused, sizeof(refused) / sizeof(refused[0])))
        return ZL_TX_REFUSED;
    return ZL_TX_RETRY;
}

const char *zl_tx_reason_name(zl_tx_reason r)
{
    switch (r) {
    case ZL_TX_SENT: return "sent";
    case ZL_TX_REFUSED: return "refused";
    case ZL_TX_UNFUNDED: return "unfunded";
    case ZL_TX_RETRY: return "retry";
    }
    return "unknown";
}

bool zl_tx_revert_is(const struct zl_rpc_error *re, const char *revert_hex)
{
    /* "0x" + 8 hex digits of selector */
    char selector[11];
    snprintf(selector, sizeof(selector), "%s", revert_hex);
    return strcasecmp(re->data, revert_hex) == 0 || (re->data[0] == '{' && contains_ci(re->data, revert_hex)) ||
           (strlen(selector) == 10 && contains_ci(re->message, selector));
}

zl_class zl_tx_fees_eip1559(const struct zl_txmgr_opts *o, uint64_t base_wei, const uint64_t *tips_wei, size_t n,
                            struct zl_tx_fees *f, char *errstr, size_t errstr_size)
{
    const uint64_t cap = (uint64_t)o->max_fee_gwei * GWEI;
    const uint64_t prio_cap = (uint64_t)o->max_priority_fee_gwei * GWEI;
    uint64_t prio_min = (uint64_t)o->min_priority_fee_mwei * UINT64_C(1000000);
    if (prio_min > prio_cap)
        prio_min = prio_cap;
    uint64_t tips[TXMGR_TIPS_MAX];
    size_t nt = n < TXMGR_TIPS_MAX ? n : TXMGR_TIPS_MAX;
    if (nt > 0)
        memcpy(tips, tips_wei, nt * sizeof(tips[0])); /* tips_wei may be NULL when n is 0 */
    for (size_t i = 1; i < nt; i++) /* insertion sort: nt <= 8 */
        for (size_t j = i; j > 0 && tips[j - 1] > tips[j]; j--) {
            uint64_t x = tips[j];
            tips[j] = tips[j - 1];
            tips[j - 1] = x;
        }
    uint64_t prio = nt > 0 ? tips[nt / 2] : 0;
    if (prio < prio_min)
        prio = prio_min;
    if (prio > prio_cap)
        prio = prio_cap;
    if (base_wei + prio > cap) {
        snprintf(errstr, errstr_size, "base fee %" PRIu64 " wei + tip is above the cap of %" PRId64
                 " gwei: waiting for fees to fall", base_wei, o->max_fee_gwei);
        return ZL_DEFER;
    }
    /* 2 x base: room for six full blocks of base fee rises. */
    uint64_t max_fee = 2 * base_wei + prio;
    f->type = ZL_TX_EIP1559;
    f->max_fee_wei = max_fee > cap ? cap : max_fee;
    f->priority_fee_wei = prio;
    return ZL_OK;
}

uint64_t zl_tx_fee_bumped(uint64_t v, int64_t pct)
{
    uint64_t b = v + v * (uint64_t)pct / 100;
    return b > v ? b : v + 1;
}

zl_class zl_tx_fees_replacement(const struct zl_txmgr_opts *o, const struct zl_nonce_tx *slot, struct zl_tx_fees *f,
                                char *errstr, size_t errstr_size)
{
    const uint64_t cap = (uint64_t)o->max_fee_gwei * GWEI;
    f->type = (zl_tx_type)slot->tx_type;
    f->max_fee_wei = zl_tx_fee_bumped(slot->max_fee_wei, o->fee_bump_pct);
    f->priority_fee_wei = zl_tx_fee_bumped(slot->priority_fee_wei, o->fee_bump_pct);
    if (f->priority_fee_wei > f->max_fee_wei)
        f->priority_fee_wei = f->max_fee_wei;
    if (f->max_fee_wei > cap) {
        snprintf(errstr, errstr_size, "tx %s at nonce %" PRIu64 " is stuck, and a fee bump would pass the cap of %"
                 PRId64 " gwei: waiting", slot->tx_hash, slot->nonce, o->max_fee_gwei);
        return ZL_DEFER;
    }
    return ZL_OK;
}

/* ------------------------------------------------------------ chain reads */

zl_class zl_txmgr_read(struct zl_txmgr *t, const char *method, json_t *params, json_t **result,
                       struct zl_rpc_error *re, char *errstr, size_t errstr_size)
{
    *result = NULL;
    if (re != NULL)
        memset(re, 0, sizeof(*re));
    if (params == NULL) {
        snprintf(errstr, errstr_size, "%s: out of memory", method);
        return ZL_TRANSIENT;
    }
    zl_class c = zl_rpc_call(t->o.rpc, method, params, result, re, errstr, errstr_size);
    json_decref(params); /* zl_rpc_call borrows them */
    if (c == ZL_OK && *result == NULL)
        *result = json_null(); /* a JSON null result, e.g. no receipt yet */
    return c;
}

zl_class zl_txmgr_read_quantity(struct zl_txmgr *t, const char *method, json_t *params, uint64_t *out,
                                char *errstr, size_t errstr_size)
{
    json_t *res;
    zl_class c = zl_txmgr_read(t, method, params, &res, NULL, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    int rc = zl_rpc_parse_quantity(res, out);
    json_decref(res);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "%s: answer is not a quantity", method);
        return ZL_TRANSIENT;
    }
    return ZL_OK;
}

/* ---------------------------------------------------- new transactions */

/* EIP-1559 fees from eth_feeHistory; *has_base false when the chain reports
 * no base fee (then f is untouched). */
static zl_class history_fees(struct zl_txmgr *t, struct zl_tx_fees *f, bool *has_base, char *errstr,
                             size_t errstr_size)
{
    *has_base = false;
    json_t *res;
    zl_class c = zl_txmgr_read(t, "eth_feeHistory", json_pack("[s s [i]]", "0x5", "latest", 50), &res, NULL, errstr,
                               errstr_size);
    if (c != ZL_OK)
        return c;
    json_t *bases = json_object_get(res, "baseFeePerGas");
    uint64_t base = 0;
    size_t nb = json_is_array(bases) ? json_array_size(bases) : 0;
    *has_base = nb > 0 && zl_rpc_parse_quantity(json_array_get(bases, nb - 1), &base) == 0 && base > 0;
    if (*has_base) {
        /* The 50th-percentile tip of each recent block. */
        uint64_t tips[TXMGR_TIPS_MAX];
        size_t nt = 0;
        json_t *rewards = json_object_get(res, "reward");
        for (size_t i = 0; json_is_array(rewards) && i < json_array_size(rewards) && nt < TXMGR_TIPS_MAX; i++) {
            uint64_t tip;
            if (zl_rpc_parse_quantity(json_array_get(json_array_get(rewards, i), 0), &tip) == 0)
                tips[nt++] = tip;
        }
        c = zl_tx_fees_eip1559(&t->o, base, tips, nt, f, errstr, errstr_size);
    }
    json_decref(res);
    return c;
}

zl_class zl_txmgr_fees(struct zl_txmgr *t, struct zl_tx_fees *f, char *errstr, size_t errstr_size)
{
    if (t->o.fee_mode != ZL_TX_FEES_LEGACY) {
        bool has_base;
        zl_class c = history_fees(t, f, &has_base, errstr, errstr_size);
        if (c != ZL_OK || has_base)
            return c;
        if (t->o.fee_mode == ZL_TX_FEES_EIP1559) {
            snprintf(errstr, errstr_size, "fee mode eip1559 but the chain reports no base fee");
            return ZL_TRANSIENT;
        }
    }
    uint64_t price;
    zl_class c = zl_txmgr_read_quantity(t, "eth_gasPrice", json_array(), &price, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    if (price > (uint64_t)t->o.max_fee_gwei * GWEI) {
        snprintf(errstr, errstr_size, "gas price %" PRIu64 " wei is above the cap of %" PRId64
                 " gwei: waiting for fees to fall", price, t->o.max_fee_gwei);
        return ZL_DEFER;
    }
    f->type = ZL_TX_LEGACY;
    f->max_fee_wei = price;
    f->priority_fee_wei = 0;
    return ZL_OK;
}

zl_class zl_txmgr_read_head(struct zl_txmgr *t, char *errstr, size_t errstr_size)
{
    uint64_t head;
    zl_class c = zl_txmgr_read_quantity(t, "eth_blockNumber", json_array(), &head, errstr, errstr_size);
    if (c == ZL_OK) {
        t->head_block = (int64_t)head;
        zl_block_clock_saw(&t->clock, head, zl_now_ms());
    }
    return c;
}

zl_class zl_txmgr_chain_nonce(struct zl_txmgr *t, uint64_t *floor, char *errstr, size_t errstr_size)
{
    zl_class c = zl_txmgr_read_quantity(t, "eth_getTransactionCount", json_pack("[s s]", t->signer_hex, "latest"),
                                        floor, errstr, errstr_size);
    /* Only the block-counted bump needs the head. */
    if (c == ZL_OK && t->o.bump_after_blocks > 0)
        c = zl_txmgr_read_head(t, errstr, errstr_size);
    return c;
}

zl_class zl_txmgr_estimate(struct zl_txmgr *t, const uint8_t *data, size_t len, uint64_t *gas, bool *reverts,
                           struct zl_rpc_error *re, char *errstr, size_t errstr_size)
{
    *reverts = false;
    char *data_hex = malloc(2 * len + 3);
    if (data_hex == NULL) {
        memset(re, 0, sizeof(*re));
        snprintf(errstr, errstr_size, "out of memory");
        return ZL_TRANSIENT;
    }
    zl_hex_encode(data, len, data_hex, 2 * len + 3);
    json_t *res;
    zl_class c = zl_txmgr_read(
        t, "eth_estimateGas",
        json_pack("[{s:s, s:s, s:s}]", "from", t->signer_hex, "to", t->contract_hex, "data", data_hex), &res, re,
        errstr, errstr_size);
    free(data_hex);
    if (c != ZL_OK && re->answered) {
        if (zl_tx_classify_answer(re) == ZL_TX_UNFUNDED) {
            snprintf(errstr, errstr_size, "signer %s cannot pay for gas (%.*s): fund it", t->signer_hex,
                     TXMGR_NODE_ERROR_MAX, re->message);
            return ZL_OUTAGE;
        }
        *reverts = true;
        snprintf(errstr, errstr_size, "the call would revert: %.*s (code %ld, data %.80s)", TXMGR_NODE_ERROR_MAX,
                 re->message, re->code, re->data);
        return c;
    }
    if (c != ZL_OK)
        return c;
    int rc = zl_rpc_parse_quantity(res, gas);
    json_decref(res);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "eth_estimateGas: answer is not a quantity");
        return ZL_TRANSIENT;
    }
    return ZL_OK;
}

zl_class zl_txmgr_sign(struct zl_txmgr *t, const struct zl_tx *tx, const char *purpose, struct zl_nonce_tx *rec,
                       char *errstr, size_t errstr_size)
{
    static struct zl_signed_tx st; /* 64 KiB: one at a time, on the owner's thread */
    memset(rec, 0, sizeof(*rec));
    if (zl_tx_sign(tx, t->o.key, &st, errstr, errstr_size) != 0)
        return ZL_PERMANENT;
    char *hex = malloc(2 * st.raw_len + 3);
    if (hex == NULL || zl_hex_encode(st.raw, st.raw_len, hex, 2 * st.raw_len + 3) != 0) {
        free(hex);
        snprintf(errstr, errstr_size, "out of memory");
        return ZL_TRANSIENT;
    }
    rec->chain_id = tx->chain_id;
    snprintf(rec->signer, sizeof(rec->signer), "%s", t->signer_hex);
    rec->nonce = tx->nonce;
    snprintf(rec->purpose, sizeof(rec->purpose), "%s", purpose);
    rec->tx_type = (int)tx->type;
    zl_hex_encode(tx->to, 20, rec->to_addr, sizeof(rec->to_addr));
    rec->gas_limit = tx->gas_limit;
    rec->max_fee_wei = tx->max_fee_wei;
    rec->priority_fee_wei = tx->type == ZL_TX_EIP1559 ? tx->max_priority_fee_wei : 0;
    rec->raw_hex = hex; /* now owned by rec */
    snprintf(rec->tx_hash, sizeof(rec->tx_hash), "%s", st.hash);
    rec->signed_block = t->head_block;
    return ZL_OK;
}

zl_class zl_txmgr_sign_call(struct zl_txmgr *t, uint64_t nonce, const struct zl_tx_fees *f, uint64_t gas_limit,
                            const uint8_t *data, size_t len, const char *purpose, struct zl_nonce_tx *rec,
                            char *errstr, size_t errstr_size)
{
    struct zl_tx tx = {.type = f->type, .chain_id = t->o.chain_id, .nonce = nonce,
                       .max_priority_fee_wei = f->priority_fee_wei, .max_fee_wei = f->max_fee_wei,
                       .gas_limit = gas_limit, .value_wei = 0, .data = data, .data_len = len};
    memcpy(tx.to, t->o.contract, 20);
    return zl_txmgr_sign(t, &tx, purpose, rec, errstr, errstr_size);
}

void zl_txmgr_stored(struct zl_nonce_tx *slot)
{
    slot->nhashes = 1;
    snprintf(slot->hashes[0], sizeof(slot->hashes[0]), "%s", slot->tx_hash);
    slot->receipt_status = -1;
}

zl_tx_reason zl_txmgr_broadcast(struct zl_txmgr *t, const struct zl_nonce_tx *slot, zl_class *c, char *errstr,
                                size_t errstr_size)
{
    json_t *res;
    struct zl_rpc_error re;
    *c = zl_txmgr_read(t, "eth_sendRawTransaction", json_pack("[s]", slot->raw_hex), &res, &re, errstr,
                       errstr_size);
    json_decref(res);
    if (*c == ZL_OK)
        return ZL_TX_SENT;
    if (!re.answered)
        return ZL_TX_RETRY; /* no node took or refused it: *c is the rpc's class */
    zl_tx_reason why = zl_tx_classify_answer(&re);
    switch (why) {
    case ZL_TX_SENT:
        *c = ZL_OK;
        break;
    case ZL_TX_UNFUNDED:
        snprintf(errstr, errstr_size, "signer %s cannot pay for gas: fund it (tx %s at nonce %" PRIu64 ": %.*s)",
                 t->signer_hex, slot->tx_hash, slot->nonce, TXMGR_NODE_ERROR_MAX, re.message);
        *c = ZL_OUTAGE;
        break;
    case ZL_TX_REFUSED:
    case ZL_TX_RETRY:
        /* RETRY: e.g. a fee below the base fee, which the stuck clock bumps. */
        snprintf(errstr, errstr_size, "node refused tx %s at nonce %" PRIu64 ": %.*s", slot->tx_hash, slot->nonce,
                 TXMGR_NODE_ERROR_MAX, re.message);
        *c = ZL_TRANSIENT;
        break;
    }
    return why;
}
