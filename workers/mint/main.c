/* mint: zl.nft.pinned -> zl.nft.minted.
 *
 * For each pinned deposit, mints ZLReceipt token uint256(keccak256(deposit_id))
 * with the deposit's token_uri to the depositor (the `from` of the deposit's
 * Transfer), exactly once, whatever crashes:
 *   1. the contract refuses a second mint of the same id;
 *   2. the signed transaction is stored in PostgreSQL, in the transaction that
 *      allocates its nonce (FOR UPDATE) and moves the row pinned ->
 *      mint_submitted, BEFORE it is broadcast (common/nonce.h);
 *   3. a retry finds the stored transaction and re-broadcasts the same bytes
 *      (or a fee bump of the same call at the same nonce) instead of signing
 *      anew.
 * Then the runtime's CAS moves the row to minted, with mint_tx_hash, token_id
 * and nft_contract written by in_tx, and publishes zl.nft.minted.
 *
 * Waiting: process() polls for the receipt for at most
 * ZL_MINT_RECEIPT_WAIT_MS (a block or two), then returns ZL_DEFER so the delay
 * tiers re-check later without blocking the partition; the same for missing
 * confirmations. A transaction pending longer than ZL_MINT_STUCK_MS is
 * re-signed at the same nonce with both fees raised by ZL_MINT_FEE_BUMP_PCT
 * (>= 10%, geth's replacement rule); every hash is tracked and checked.
 *
 * Batching: under backlog (a poll batch holding several deposits to mint),
 * the runtime hands the whole batch to mint_process_batch, which signs one
 * mintBatch(to[], ids[], uris[]) per ZL_MINT_BATCH_MAX fresh deposits and
 * stores it with ALL its deposit ids before broadcasting (the same three
 * defences: the contract skips ids that already exist, so a re-sent batch
 * mints only what is missing). Deposits that already have a stored tx are
 * grouped by it and driven once. After the receipt every deposit of a batch
 * is confirmed before its row moves to minted: by the receipt's own
 * Transfer(0, depositor, id) log, or, for an id the batch skipped, on the
 * chain (ownerOf = depositor, and the hash of the tx whose Transfer minted
 * it). A batch whose estimate reverts is split into single mints, which
 * classify each deposit exactly.
 *
 * Failures: a revert of the estimate or of the mined tx because the token
 * already exists is success when ownerOf(tokenId) is the depositor; any other
 * revert is permanent. Insufficient funds for gas is an outage (pause; fund
 * the signer). A transaction the node refuses for good (e.g. intrinsic gas
 * too low) would leave its nonce unused and block every later one, so that
 * nonce is re-signed as a 0-value self-send (a "filler") and the deposit goes
 * to the DLQ; a janitor re-broadcasts pending fillers until they are mined.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "chain.h"
#include "ethtx.h"
#include "fault.h"
#include "keccak.h"
#include "log.h"
#include "nonce.h"
#include "rpc.h"
#include "runtime.h"
#include "secp.h"

/* Fillers the janitor handles per pass. */
#define MINT_FILLERS_PER_PASS_MAX 16
/* The first receipt poll after a broadcast; later ones double up to
 * ZL_MINT_RECEIPT_POLL_MS. */
#define MINT_RECEIPT_FIRST_POLL_MS 5
/* Longest error message kept from a node. */
#define MINT_NODE_ERROR_MAX 200
/* The `from` topic of a mint's Transfer log: address(0). */
static const char zero_topic[] = "0x0000000000000000000000000000000000000000000000000000000000000000";

struct mint_config {
    char *rpc_urls;
    int64_t rpc_timeout_ms;
    int64_t rpc_hedge_after_ms;
    int64_t chain_id;
    char *nft_address;
    struct zl_secret signer_key;
    char *tx_type;
    int64_t confirmations;
    int64_t receipt_wait_ms;
    int64_t receipt_poll_ms;
    int64_t stuck_ms;
    int64_t fee_bump_pct;
    int64_t max_fee_gwei;
    int64_t max_priority_fee_gwei;
    int64_t min_priority_fee_mwei;
    int64_t gas_margin_pct;
    int64_t gas_limit;
    int64_t nft_from_block;
    int64_t janitor_ms;
    int64_t batch_max;
};

#define OFF(f) offsetof(struct mint_config, f)
static const struct zl_setting mint_settings[] = {
    {"ZL_RPC_URLS", ZL_CFG_STR, NULL, "JSON-RPC endpoints of the NFT's chain, comma-separated, in preference order",
     OFF(rpc_urls), 0, 0},
    {"ZL_RPC_TIMEOUT_MS", ZL_CFG_INT, "10000", "timeout of one JSON-RPC request", OFF(rpc_timeout_ms), 100, 600000},
    {"ZL_RPC_HEDGE_AFTER_MS", ZL_CFG_INT, "0", "ask the next endpoint too after this long (0 = never)",
     OFF(rpc_hedge_after_ms), 0, 600000},
    {"ZL_MINT_CHAIN_ID", ZL_CFG_INT, "0", "chain id signed into mint transactions (0 = ask eth_chainId at start)",
     OFF(chain_id), 0, 0},
    {"ZL_NFT_ADDRESS", ZL_CFG_STR, NULL, "ZLReceipt contract address", OFF(nft_address), 0, 0},
    {"ZL_SIGNER_KEY_FILE", ZL_CFG_SECRET_FILE, NULL,
     "file holding the minter's private key (64 hex digits); must not be readable by group or others",
     OFF(signer_key), 0, 0},
    {"ZL_TX_TYPE", ZL_CFG_STR, "auto",
     "auto (EIP-1559 when the chain has a base fee, else legacy), eip1559 or legacy", OFF(tx_type), 0, 0},
    {"ZL_MINT_CONFIRMATIONS", ZL_CFG_INT, "1", "blocks including the mint's before it counts as minted",
     OFF(confirmations), 1, 1000},
    {"ZL_MINT_RECEIPT_WAIT_MS", ZL_CFG_INT, "5000",
     "poll for a receipt this long in one attempt, then defer to the delay tiers", OFF(receipt_wait_ms), 0, 600000},
    {"ZL_MINT_RECEIPT_POLL_MS", ZL_CFG_INT, "100", "between receipt polls", OFF(receipt_poll_ms), 10, 60000},
    {"ZL_MINT_STUCK_MS", ZL_CFG_INT, "60000", "a tx pending this long is replaced at its nonce with higher fees",
     OFF(stuck_ms), 100, 86400000},
    {"ZL_MINT_FEE_BUMP_PCT", ZL_CFG_INT, "15", "fee raise of a replacement, both fees (nodes require >= 10)",
     OFF(fee_bump_pct), 10, 1000},
    {"ZL_MAX_FEE_GWEI", ZL_CFG_INT, "500", "cap on max fee per gas (legacy: gas price); above it mints wait",
     OFF(max_fee_gwei), 1, 1000000},
    {"ZL_MAX_PRIORITY_FEE_GWEI", ZL_CFG_INT, "10", "cap on the priority fee per gas", OFF(max_priority_fee_gwei), 0,
     1000000},
    {"ZL_MIN_PRIORITY_FEE_MWEI", ZL_CFG_INT, "1000", "floor of the priority fee, in 10^6 wei (1000 = 1 gwei)",
     OFF(min_priority_fee_mwei), 0, 1000000000},
    {"ZL_GAS_MARGIN_PCT", ZL_CFG_INT, "25", "gas limit = eth_estimateGas + this percentage", OFF(gas_margin_pct), 0,
     400},
    {"ZL_MINT_GAS_LIMIT", ZL_CFG_INT, "0", "fixed gas limit of a mint instead of the estimate (0 = estimate)",
     OFF(gas_limit), 0, 30000000},
    {"ZL_NFT_FROM_BLOCK", ZL_CFG_INT, "0", "block the NFT contract was deployed in: where mint logs are searched from",
     OFF(nft_from_block), 0, 0},
    {"ZL_MINT_JANITOR_MS", ZL_CFG_INT, "5000", "between re-broadcasts of pending nonce fillers", OFF(janitor_ms),
     100, 3600000},
    {"ZL_MINT_BATCH_MAX", ZL_CFG_INT, "50",
     "deposits per mintBatch tx when a poll batch holds several to mint (1 = one mint tx per deposit)",
     OFF(batch_max), 1, ZL_NONCE_BATCH_MAX},
};
#undef OFF

struct mint {
    struct mint_config cfg;
    struct zl_pg pg; /* own connection: the nonce transaction commits before broadcast */
    bool pg_inited;
    struct zl_secp_key key;
    uint64_t chain_id;
    uint8_t nft[20];
    char nft_hex[43]; /* lowercase */
    int64_t next_janitor_ms;
    struct zl_rpc *rpc; /* owned: zl_rpc_new in init, zl_rpc_free in fini */
};

static struct mint g_mint;

/* Fees of one transaction. */
struct fees {
    zl_tx_type type;
    uint64_t max_fee_wei; /* legacy: gas price */
    uint64_t priority_fee_wei;
};

/* ------------------------------------------------------------- helpers */

static void log_ctx(const struct zl_work *w, struct zl_log_ctx *lc)
{
    struct zl_log_ctx none = ZL_LOG_CTX_NONE;
    *lc = none;
    lc->deposit_id = w->in.deposit_id;
    lc->trace_id = w->trace_id;
}

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p != '\0'; p++)
        if (strncasecmp(p, needle, n) == 0)
            return true;
    return false;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void lower(char *s)
{
    for (; *s != '\0'; s++)
        if (*s >= 'A' && *s <= 'F')
            *s = (char)(*s - 'A' + 'a');
}

static zl_class pg_class(zl_class c)
{
    /* A failed statement on our own bookkeeping is not the message's fault
     * (a missing migration, a serialization failure): never DLQ for it. */
    return c == ZL_PERMANENT ? ZL_TRANSIENT : c;
}

/* One JSON-RPC call; params are stolen (built inline with json_pack). */
static zl_class rpc(struct mint *m, const char *method, json_t *params, json_t **result, struct zl_rpc_error *re,
                    char *errstr, size_t errstr_size)
{
    struct zl_rpc_error local;
    if (re == NULL)
        re = &local;
    memset(re, 0, sizeof(*re));
    *result = NULL;
    if (params == NULL) {
        snprintf(errstr, errstr_size, "%s: out of memory", method);
        return ZL_TRANSIENT;
    }
    zl_class c = zl_rpc_call(m->rpc, method, params, result, re, errstr, errstr_size);
    json_decref(params); /* zl_rpc_call borrows them */
    if (c == ZL_OK && *result == NULL)
        *result = json_null(); /* a JSON null result, e.g. no receipt yet */
    return c;
}

static zl_class rpc_quantity(struct mint *m, const char *method, json_t *params, uint64_t *out, char *errstr,
                             size_t errstr_size)
{
    json_t *res;
    zl_class c = rpc(m, method, params, &res, NULL, errstr, errstr_size);
    if (c != ZL_OK)
        return c == ZL_PERMANENT ? ZL_TRANSIENT : c;
    int rc = zl_rpc_parse_quantity(res, out);
    json_decref(res);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "%s: answer is not a quantity", method);
        return ZL_TRANSIENT;
    }
    return ZL_OK;
}

static void u64_hex(uint64_t v, char out[24])
{
    snprintf(out, 24, "0x%" PRIx64, v);
}

/* -------------------------------------------------------------- fees */

static zl_class fresh_fees(struct mint *m, struct fees *f, char *errstr, size_t errstr_size)
{
    const uint64_t gwei = 1000000000u;
    uint64_t cap = (uint64_t)m->cfg.max_fee_gwei * gwei;
    uint64_t prio_cap = (uint64_t)m->cfg.max_priority_fee_gwei * gwei;
    uint64_t prio_min = (uint64_t)m->cfg.min_priority_fee_mwei * 1000000u;
    if (prio_min > prio_cap)
        prio_min = prio_cap;
    bool want_legacy = strcmp(m->cfg.tx_type, "legacy") == 0;
    if (!want_legacy) {
        json_t *res;
        zl_class c = rpc(m, "eth_feeHistory", json_pack("[s s [i]]", "0x5", "latest", 50), &res, NULL, errstr,
                         errstr_size);
        if (c != ZL_OK)
            return c == ZL_PERMANENT ? ZL_TRANSIENT : c;
        json_t *bases = json_object_get(res, "baseFeePerGas");
        uint64_t base = 0;
        size_t nb = json_is_array(bases) ? json_array_size(bases) : 0;
        bool has_base = nb > 0 && zl_rpc_parse_quantity(json_array_get(bases, nb - 1), &base) == 0 && base > 0;
        if (has_base) {
            /* The median of recent blocks' 50th-percentile tips. */
            uint64_t tips[8];
            size_t nt = 0;
            json_t *rewards = json_object_get(res, "reward");
            for (size_t i = 0; json_is_array(rewards) && i < json_array_size(rewards) && nt < 8; i++) {
                uint64_t t;
                if (zl_rpc_parse_quantity(json_array_get(json_array_get(rewards, i), 0), &t) == 0)
                    tips[nt++] = t;
            }
            for (size_t i = 1; i < nt; i++)
                for (size_t j = i; j > 0 && tips[j - 1] > tips[j]; j--) {
                    uint64_t t = tips[j];
                    tips[j] = tips[j - 1];
                    tips[j - 1] = t;
                }
            uint64_t prio = nt > 0 ? tips[nt / 2] : 0;
            if (prio < prio_min)
                prio = prio_min;
            if (prio > prio_cap)
                prio = prio_cap;
            json_decref(res);
            if (base + prio > cap) {
                snprintf(errstr, errstr_size, "base fee %" PRIu64 " wei + tip is above ZL_MAX_FEE_GWEI=%" PRId64
                         ": waiting for fees to fall", base, m->cfg.max_fee_gwei);
                return ZL_DEFER;
            }
            /* 2 x base: room for six full blocks of base fee rises. */
            uint64_t max_fee = 2 * base + prio;
            f->type = ZL_TX_EIP1559;
            f->max_fee_wei = max_fee > cap ? cap : max_fee;
            f->priority_fee_wei = prio;
            return ZL_OK;
        }
        json_decref(res);
        if (strcmp(m->cfg.tx_type, "eip1559") == 0) {
            snprintf(errstr, errstr_size, "ZL_TX_TYPE=eip1559 but the chain reports no base fee");
            return ZL_TRANSIENT;
        }
    }
    uint64_t price;
    zl_class c = rpc_quantity(m, "eth_gasPrice", json_array(), &price, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    if (price > cap) {
        snprintf(errstr, errstr_size, "gas price %" PRIu64 " wei is above ZL_MAX_FEE_GWEI=%" PRId64
                 ": waiting for fees to fall", price, m->cfg.max_fee_gwei);
        return ZL_DEFER;
    }
    f->type = ZL_TX_LEGACY;
    f->max_fee_wei = price;
    f->priority_fee_wei = 0;
    return ZL_OK;
}

static uint64_t bumped(uint64_t v, int64_t pct)
{
    uint64_t b = v + v * (uint64_t)pct / 100;
    return b > v ? b : v + 1;
}

/* ------------------------------------------------------------ signing */

static zl_class sign_to_record(struct mint *m, const struct zl_tx *tx, struct zl_nonce_tx *rec,
                               const char *purpose, char *errstr, size_t errstr_size)
{
    static struct zl_signed_tx st; /* 64 KiB: one at a time, on the main thread */
    if (zl_tx_sign(tx, &m->key, &st, errstr, errstr_size) != 0)
        return ZL_PERMANENT;
    char *hex = malloc(2 * st.raw_len + 3);
    if (hex == NULL || zl_tx_hex_encode(st.raw, st.raw_len, hex, 2 * st.raw_len + 3) != 0) {
        free(hex);
        snprintf(errstr, errstr_size, "out of memory");
        return ZL_TRANSIENT;
    }
    memset(rec, 0, sizeof(*rec));
    rec->chain_id = m->chain_id;
    snprintf(rec->signer, sizeof(rec->signer), "%s", m->key.address_hex);
    rec->nonce = tx->nonce;
    snprintf(rec->purpose, sizeof(rec->purpose), "%s", purpose);
    rec->tx_type = (int)tx->type;
    zl_tx_hex_encode(tx->to, 20, rec->to_addr, sizeof(rec->to_addr));
    rec->gas_limit = tx->gas_limit;
    rec->max_fee_wei = tx->max_fee_wei;
    rec->priority_fee_wei = tx->type == ZL_TX_EIP1559 ? tx->max_priority_fee_wei : 0;
    rec->raw_hex = hex;
    snprintf(rec->tx_hash, sizeof(rec->tx_hash), "%s", st.hash);
    return ZL_OK;
}

/* The calldata of this deposit's mint. */
static zl_class mint_calldata(const struct zl_work *w, uint8_t *data, size_t cap, size_t *len, uint8_t id[32],
                              char *errstr, size_t errstr_size)
{
    uint8_t to[20];
    zl_keccak256(w->in.deposit_id, strlen(w->in.deposit_id), id);
    if (zl_tx_parse_address(w->in.from, to) != 0 || zl_abi_mint(to, id, w->in.token_uri, data, cap, len) != 0) {
        snprintf(errstr, errstr_size, "cannot encode mint(%s, id, %s)", w->in.from, w->in.token_uri);
        return ZL_PERMANENT;
    }
    return ZL_OK;
}

/* ----------------------------------------------------------- chain reads */

/* ownerOf(id) as lowercase hex; "" when the token does not exist. */
static zl_class owner_of(struct mint *m, const uint8_t id[32], char owner[43], char *errstr, size_t errstr_size)
{
    uint8_t data[36];
    char hex[80];
    zl_abi_owner_of(id, data);
    zl_tx_hex_encode(data, sizeof(data), hex, sizeof(hex));
    json_t *res;
    struct zl_rpc_error re;
    owner[0] = '\0';
    zl_class c = rpc(m, "eth_call", json_pack("[{s:s, s:s} s]", "to", m->nft_hex, "data", hex, "latest"), &res, &re,
                     errstr, errstr_size);
    if (c == ZL_PERMANENT)
        return ZL_OK; /* ownerOf reverts (ERC721NonexistentToken) for a token that does not exist */
    if (c != ZL_OK)
        return c;
    int rc = json_is_string(res) ? zl_abi_decode_address(json_string_value(res), owner) : -1;
    json_decref(res);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "ownerOf: answer is not an address");
        return ZL_TRANSIENT;
    }
    return ZL_OK;
}

/* The hash of the tx that minted id to `to`, from the contract's Transfer
 * log (from = 0): the mint may have been another attempt's or a batch's. */
static zl_class find_mint_log(struct mint *m, const uint8_t id[32], const char *to, char hash[67], char *errstr,
                              size_t errstr_size)
{
    char to_topic[67], id_topic[67], from_block[24];
    snprintf(to_topic, sizeof(to_topic), "0x000000000000000000000000%s", to + 2);
    lower(to_topic);
    zl_tx_hex_encode(id, 32, id_topic, sizeof(id_topic));
    u64_hex((uint64_t)m->cfg.nft_from_block, from_block);
    json_t *res;
    zl_class c = rpc(m, "eth_getLogs",
                     json_pack("[{s:s, s:s, s:s, s:[s s s s]}]", "address", m->nft_hex, "fromBlock", from_block,
                               "toBlock", "latest", "topics", ZL_TRANSFER_TOPIC0, zero_topic, to_topic, id_topic),
                     &res, NULL, errstr, errstr_size);
    if (c != ZL_OK)
        return c == ZL_PERMANENT ? ZL_TRANSIENT : c;
    const char *h = json_string_value(json_object_get(json_array_get(res, 0), "transactionHash"));
    bool ok = h != NULL && strlen(h) == 66;
    if (ok) {
        snprintf(hash, 67, "%s", h);
        lower(hash);
    }
    json_decref(res);
    if (!ok) {
        snprintf(errstr, errstr_size, "token is owned by the depositor but no mint log was found (from block %" PRId64
                 "): will look again", m->cfg.nft_from_block);
        return ZL_TRANSIENT;
    }
    return ZL_OK;
}

/* The token already exists: success when the depositor owns it. */
static zl_class already_minted(struct mint *m, struct zl_work *w, const uint8_t id[32], char hash[67])
{
    char owner[43];
    zl_class c = owner_of(m, id, owner, w->error, sizeof(w->error));
    if (c != ZL_OK)
        return c;
    if (owner[0] == '\0') {
        snprintf(w->error, sizeof(w->error), "mint reverted as if the token existed, but ownerOf finds none");
        return ZL_TRANSIENT;
    }
    if (strcasecmp(owner, w->in.from) != 0) {
        snprintf(w->error, sizeof(w->error), "token already minted to %s, not to the depositor %s", owner, w->in.from);
        return ZL_PERMANENT;
    }
    return find_mint_log(m, id, w->in.from, hash, w->error, sizeof(w->error));
}

/* The mint reverted with ERC721InvalidSender(address(0)): the token exists.
 * rpc.c hands error.data over as the node sent it: the revert hex itself
 * (geth, anvil, erigon) or, from nodes that nest it in an object, that object
 * as JSON text; some nodes only name the selector in the message. */
static bool token_exists_revert(const struct zl_rpc_error *re)
{
    static const char want[] = "0x73c6ac6e0000000000000000000000000000000000000000000000000000000000000000";
    return zl_abi_is_token_exists_revert(re->data) || (re->data[0] == '{' && contains_ci(re->data, want)) ||
           contains_ci(re->message, "0x73c6ac6e");
}

/* ---------------------------------------------------------- new mints */

/* eth_estimateGas of a call of our contract with data, from the signer.
 * ZL_PERMANENT means the call reverts (*re says why); the caller decides
 * what a revert means. */
static zl_class estimate_gas(struct mint *m, const uint8_t *data, size_t len, uint64_t *gas, struct zl_rpc_error *re,
                             char *errstr, size_t errstr_size)
{
    char *data_hex = malloc(2 * len + 3);
    if (data_hex == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return ZL_TRANSIENT;
    }
    zl_tx_hex_encode(data, len, data_hex, 2 * len + 3);
    json_t *res;
    zl_class c = rpc(m, "eth_estimateGas",
                     json_pack("[{s:s, s:s, s:s}]", "from", m->key.address_hex, "to", m->nft_hex, "data", data_hex),
                     &res, re, errstr, errstr_size);
    free(data_hex);
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

/* A reverting estimate that is not "token exists": the signer cannot pay
 * (outage: fund it) or the call will never work (permanent). */
static zl_class estimate_revert_class(struct mint *m, const struct zl_rpc_error *re, char *errstr,
                                      size_t errstr_size)
{
    if (contains_ci(re->message, "insufficient funds")) {
        snprintf(errstr, errstr_size, "signer %s cannot pay for gas (%.*s): fund it", m->key.address_hex,
                 MINT_NODE_ERROR_MAX, re->message);
        return ZL_OUTAGE;
    }
    snprintf(errstr, errstr_size, "mint would revert: %.*s (code %ld, data %.80s)", MINT_NODE_ERROR_MAX, re->message,
             re->code, re->data);
    return ZL_PERMANENT;
}

/* Fees for a new tx and the chain's confirmed nonce (the floor of ours). */
static zl_class fees_and_floor(struct mint *m, struct fees *f, uint64_t *floor, char *errstr, size_t errstr_size)
{
    zl_class c = fresh_fees(m, f, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    return rpc_quantity(m, "eth_getTransactionCount", json_pack("[s s]", m->key.address_hex, "latest"), floor, errstr,
                        errstr_size);
}

/* Estimates, prices, allocates a nonce, signs and stores this deposit's
 * mint. *done with hash set when the token turns out to exist already. */
static zl_class new_mint(struct mint *m, struct zl_work *w, struct zl_nonce_tx *slot, bool *done, char hash[67])
{
    *done = false;
    static uint8_t data[ZL_TX_DATA_MAX];
    size_t len;
    uint8_t id[32];
    zl_class c = mint_calldata(w, data, sizeof(data), &len, id, w->error, sizeof(w->error));
    if (c != ZL_OK)
        return c;
    uint64_t gas;
    struct zl_rpc_error re;
    c = estimate_gas(m, data, len, &gas, &re, w->error, sizeof(w->error));
    if (c == ZL_PERMANENT) {
        if (token_exists_revert(&re)) {
            c = already_minted(m, w, id, hash);
            *done = c == ZL_OK;
            return c;
        }
        return estimate_revert_class(m, &re, w->error, sizeof(w->error));
    }
    if (c != ZL_OK)
        return c;
    gas = m->cfg.gas_limit > 0 ? (uint64_t)m->cfg.gas_limit : gas + gas * (uint64_t)m->cfg.gas_margin_pct / 100;
    struct fees f;
    uint64_t floor;
    c = fees_and_floor(m, &f, &floor, w->error, sizeof(w->error));
    if (c != ZL_OK)
        return c;

    uint64_t nonce;
    bool found, wrong_state;
    c = zl_nonce_begin(&m->pg, m->chain_id, m->key.address_hex, w->in.deposit_id, floor, &nonce, slot, &found,
                       &wrong_state, w->error, sizeof(w->error));
    if (c != ZL_OK)
        return wrong_state ? ZL_TRANSIENT : pg_class(c); /* the row moved under us: look again */
    if (found)
        return ZL_OK; /* another copy stored this deposit's mint first: drive that one */
    struct zl_tx tx = {.type = f.type, .chain_id = m->chain_id, .nonce = nonce,
                       .max_priority_fee_wei = f.priority_fee_wei, .max_fee_wei = f.max_fee_wei, .gas_limit = gas,
                       .value_wei = 0, .data = data, .data_len = len};
    memcpy(tx.to, m->nft, 20);
    c = sign_to_record(m, &tx, slot, "mint", w->error, sizeof(w->error));
    if (c != ZL_OK) {
        zl_nonce_abort(&m->pg);
        return c;
    }
    c = zl_nonce_store(&m->pg, slot, w->in.deposit_id, w->error, sizeof(w->error));
    if (c != ZL_OK) {
        /* Rolled back: nothing was stored, so the bytes must never leave. */
        zl_nonce_tx_clear(slot);
        return pg_class(c);
    }
    slot->nhashes = 1;
    snprintf(slot->hashes[0], sizeof(slot->hashes[0]), "%s", slot->tx_hash);
    slot->receipt_status = -1;
    struct zl_log_ctx lc;
    log_ctx(w, &lc);
    char n[24];
    snprintf(n, sizeof(n), "%" PRIu64, nonce);
    zl_log_kv(ZL_LOG_INFO, &lc, "mint signed and stored", "nonce", n, "tx_hash", slot->tx_hash, NULL);
    zl_fault_point("mint_after_store");
    return ZL_OK;
}

/* ---------------------------------------------------- broadcast, receipts */

typedef enum { BC_SENT, BC_REFUSED, BC_FAILED } bc_result;

/* Sends the slot's current bytes. BC_SENT also covers "already known" and
 * "nonce too low" (the receipts then tell what happened); BC_REFUSED means
 * the node will never take these bytes. */
static bc_result broadcast(struct mint *m, const struct zl_nonce_tx *slot, zl_class *cls, char *errstr,
                           size_t errstr_size)
{
    json_t *res;
    struct zl_rpc_error re;
    *cls = rpc(m, "eth_sendRawTransaction", json_pack("[s]", slot->raw_hex), &res, &re, errstr, errstr_size);
    json_decref(res);
    if (*cls == ZL_OK)
        return BC_SENT;
    if (*cls != ZL_PERMANENT)
        return BC_FAILED;
    static const char *const benign[] = {"already known", "known transaction", "already imported", "nonce too low",
                                         "replacement transaction underpriced", "already in mempool",
                                         "already exists"};
    for (size_t i = 0; i < sizeof(benign) / sizeof(benign[0]); i++)
        if (contains_ci(re.message, benign[i]))
            return BC_SENT;
    snprintf(errstr, errstr_size, "node refused tx %s at nonce %" PRIu64 ": %.*s", slot->tx_hash, slot->nonce,
             MINT_NODE_ERROR_MAX, re.message);
    if (contains_ci(re.message, "insufficient funds")) {
        *cls = ZL_OUTAGE;
        return BC_FAILED;
    }
    static const char *const refused[] = {"intrinsic gas too low", "exceeds block gas limit", "invalid sender",
                                          "oversized data", "not supported", "invalid chain id",
                                          "gas limit too low", "out of gas"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (contains_ci(re.message, refused[i]))
            return BC_REFUSED;
    *cls = ZL_TRANSIENT; /* e.g. fee below base fee: the stuck clock bumps it */
    return BC_FAILED;
}

/* Tokens one receipt shows minted: at most a full batch. */
#define MINT_RECEIPT_MINTS_MAX ZL_NONCE_BATCH_MAX

struct receipt {
    bool found;
    char hash[67];
    int64_t block;
    int status;
    /* Transfer(0, to, id) logs of our contract in the receipt: what this
     * very tx minted, so a batch's deposits need no chain read each. */
    size_t nminted;
    struct {
        uint8_t id[32];
        char to[43]; /* lowercase */
    } minted[MINT_RECEIPT_MINTS_MAX];
};

/* Collects the mint Transfer logs of our contract from a receipt's logs.
 * Logs it cannot read are skipped: a deposit they leave out is checked on
 * the chain instead, never assumed. */
static void receipt_mints(const struct mint *m, json_t *logs, struct receipt *r)
{
    size_t i;
    json_t *lg;
    json_array_foreach(logs, i, lg) {
        if (r->nminted >= MINT_RECEIPT_MINTS_MAX)
            return;
        const char *addr = json_string_value(json_object_get(lg, "address"));
        json_t *topics = json_object_get(lg, "topics");
        if (addr == NULL || strcasecmp(addr, m->nft_hex) != 0 || json_array_size(topics) != 4)
            continue;
        const char *t0 = json_string_value(json_array_get(topics, 0));
        const char *t1 = json_string_value(json_array_get(topics, 1));
        const char *t2 = json_string_value(json_array_get(topics, 2));
        const char *t3 = json_string_value(json_array_get(topics, 3));
        if (t0 == NULL || t1 == NULL || t2 == NULL || t3 == NULL || strcasecmp(t0, ZL_TRANSFER_TOPIC0) != 0 ||
            strcasecmp(t1, zero_topic) != 0)
            continue;
        size_t len;
        if (zl_abi_decode_address(t2, r->minted[r->nminted].to) != 0 ||
            zl_tx_hex_decode(t3, r->minted[r->nminted].id, 32, &len) != 0 || len != 32)
            continue; /* the address comes out lowercase */
        r->nminted++;
    }
}

/* Did this receipt's tx mint token `id` to `to`? */
static bool receipt_minted(const struct receipt *r, const uint8_t id[32], const char *to)
{
    for (size_t i = 0; i < r->nminted; i++)
        if (memcmp(r->minted[i].id, id, 32) == 0 && strcasecmp(r->minted[i].to, to) == 0)
            return true;
    return false;
}

/* Looks for a receipt of any hash ever signed at the slot's nonce. */
static zl_class find_receipt(struct mint *m, const struct zl_nonce_tx *slot, struct receipt *r, char *errstr,
                             size_t errstr_size)
{
    memset(r, 0, sizeof(*r));
    for (int i = slot->nhashes - 1; i >= 0; i--) {
        json_t *res;
        zl_class c = rpc(m, "eth_getTransactionReceipt", json_pack("[s]", slot->hashes[i]), &res, NULL, errstr,
                         errstr_size);
        if (c == ZL_PERMANENT)
            c = ZL_TRANSIENT;
        if (c != ZL_OK)
            return c;
        uint64_t block, status;
        if (json_is_object(res) && zl_rpc_parse_quantity(json_object_get(res, "blockNumber"), &block) == 0 &&
            zl_rpc_parse_quantity(json_object_get(res, "status"), &status) == 0) {
            r->found = true;
            snprintf(r->hash, sizeof(r->hash), "%s", slot->hashes[i]);
            r->block = (int64_t)block;
            r->status = (int)status;
            if (status == 1)
                receipt_mints(m, json_object_get(res, "logs"), r);
            json_decref(res);
            return ZL_OK;
        }
        json_decref(res);
    }
    return ZL_OK;
}

/* Re-signs the slot's nonce: the same call (the stored bytes' own calldata,
 * so a single mint and a mintBatch are bumped alike) with both fees raised,
 * or (when to_filler) a 0-value self-send that only fills the nonce. lc
 * names the deposit (or batch) in the log. */
static zl_class resign(struct mint *m, struct zl_nonce_tx *slot, bool to_filler, const struct zl_log_ctx *lc,
                       char *errstr, size_t errstr_size)
{
    const uint64_t cap = (uint64_t)m->cfg.max_fee_gwei * 1000000000u;
    struct zl_tx tx = {.type = (zl_tx_type)slot->tx_type, .chain_id = m->chain_id, .nonce = slot->nonce,
                       .max_priority_fee_wei = bumped(slot->priority_fee_wei, m->cfg.fee_bump_pct),
                       .max_fee_wei = bumped(slot->max_fee_wei, m->cfg.fee_bump_pct), .gas_limit = slot->gas_limit};
    if (tx.max_priority_fee_wei > tx.max_fee_wei)
        tx.max_priority_fee_wei = tx.max_fee_wei;
    if (tx.max_fee_wei > cap) {
        snprintf(errstr, errstr_size, "tx %s at nonce %" PRIu64 " is stuck, and a fee bump would pass "
                 "ZL_MAX_FEE_GWEI=%" PRId64 ": waiting", slot->tx_hash, slot->nonce, m->cfg.max_fee_gwei);
        return ZL_DEFER;
    }
    static uint8_t raw[ZL_TX_RAW_MAX]; /* one at a time, on the main thread */
    static struct zl_tx_decoded old;
    if (to_filler) {
        memcpy(tx.to, m->key.address, 20);
        tx.gas_limit = 21000;
    } else {
        /* Both sides of the boundary: the bytes we stored decode back to a
         * call of our contract, or we sign nothing. */
        size_t len;
        char err[ZL_ERRSTR_SIZE];
        if (zl_tx_hex_decode(slot->raw_hex, raw, sizeof(raw), &len) != 0 ||
            zl_tx_decode(raw, len, &old, err, sizeof(err)) != 0 || memcmp(old.tx.to, m->nft, 20) != 0) {
            snprintf(errstr, errstr_size, "stored tx %s at nonce %" PRIu64 " does not decode to a call of %s",
                     slot->tx_hash, slot->nonce, m->nft_hex);
            return ZL_PERMANENT;
        }
        memcpy(tx.to, m->nft, 20);
        tx.data = old.tx.data;
        tx.data_len = old.tx.data_len;
    }
    struct zl_nonce_tx rec;
    zl_class c = sign_to_record(m, &tx, &rec, to_filler ? "filler" : slot->purpose, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    bool replaced;
    c = zl_nonce_replace(&m->pg, &rec, slot->tx_hash, to_filler, &replaced, errstr, errstr_size);
    if (c != ZL_OK || !replaced) {
        zl_nonce_tx_clear(&rec);
        if (c != ZL_OK)
            return pg_class(c);
        snprintf(errstr, errstr_size, "nonce %" PRIu64 " was replaced or mined meanwhile: looking again",
                 slot->nonce);
        return ZL_TRANSIENT;
    }
    char n[24], fee[24];
    snprintf(n, sizeof(n), "%" PRIu64, slot->nonce);
    snprintf(fee, sizeof(fee), "%" PRIu64, tx.max_fee_wei);
    zl_log_kv(ZL_LOG_WARN, lc, to_filler ? "nonce filled with a self-send" : "stuck mint replaced with higher fees",
              "nonce", n, "old_hash", slot->tx_hash, "new_hash", rec.tx_hash, "max_fee_wei", fee, NULL);
    free(slot->raw_hex);
    slot->raw_hex = rec.raw_hex;
    rec.raw_hex = NULL;
    snprintf(slot->tx_hash, sizeof(slot->tx_hash), "%s", rec.tx_hash);
    if (slot->nhashes < ZL_NONCE_HASHES_MAX)
        snprintf(slot->hashes[slot->nhashes++], sizeof(slot->hashes[0]), "%s", rec.tx_hash);
    slot->max_fee_wei = rec.max_fee_wei;
    slot->priority_fee_wei = rec.priority_fee_wei;
    slot->signed_age_ms = 0;
    zl_class bc;
    char err[ZL_ERRSTR_SIZE];
    broadcast(m, slot, &bc, err, sizeof(err)); /* the next attempt re-sends if this fails */
    return ZL_OK;
}

static bool is_batch(const struct zl_nonce_tx *slot)
{
    return strcmp(slot->purpose, "mint_batch") == 0;
}

/* A receipt was found for the slot: records it and checks confirmations
 * (once per transaction, however many deposits it carries). ZL_OK when the
 * receipt counts; ZL_DEFER while it lacks confirmations. */
static zl_class slot_settled(struct mint *m, const struct zl_nonce_tx *slot, const struct receipt *r, char *errstr,
                             size_t errstr_size)
{
    zl_class c = zl_nonce_mark_mined(&m->pg, m->chain_id, m->key.address_hex, slot->nonce, r->hash, r->block,
                                     r->status, errstr, errstr_size);
    if (c != ZL_OK)
        return pg_class(c);
    uint64_t head;
    c = rpc_quantity(m, "eth_blockNumber", json_array(), &head, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    if ((int64_t)head - r->block + 1 < m->cfg.confirmations) {
        snprintf(errstr, errstr_size, "mint %s in block %" PRId64 " has %" PRId64 " of %" PRId64 " confirmations",
                 r->hash, r->block, (int64_t)head - r->block + 1, m->cfg.confirmations);
        return ZL_DEFER;
    }
    return ZL_OK;
}

/* The deposit's fate once its transaction's receipt counts. A single mint
 * that succeeded minted this very token. A mintBatch succeeds even for ids
 * it skipped (already minted, possibly by another tx or to someone else),
 * so each of its deposits is checked on the chain: ownerOf must be the
 * depositor, and the hash recorded is that of the tx whose Transfer log
 * minted it. A reverted single mint is success only when the token exists
 * and is the depositor's, else permanent; a reverted batch minted nothing
 * (all or nothing), so its deposits are minted again (transient). */
static zl_class deposit_verdict(struct mint *m, struct zl_work *w, const struct zl_nonce_tx *slot,
                                const struct receipt *r, char hash[67])
{
    uint8_t id[32];
    zl_keccak256(w->in.deposit_id, strlen(w->in.deposit_id), id);
    if (r->status == 1 && (!is_batch(slot) || receipt_minted(r, id, w->in.from))) {
        /* A single mint that succeeded, or a batch whose own receipt logs
         * this token minted to the depositor: no chain read needed. */
        snprintf(hash, 67, "%s", r->hash);
        return ZL_OK;
    }
    zl_class c = already_minted(m, w, id, hash);
    bool none = c == ZL_TRANSIENT && strstr(w->error, "finds none") != NULL;
    if (r->status == 1 && none) {
        /* Mined, succeeded, and still no token: cannot be, unless the chain reorganised. */
        snprintf(w->error, sizeof(w->error), "batch %s succeeded but token of %s does not exist: looking again",
                 r->hash, w->in.deposit_id);
        return ZL_TRANSIENT;
    }
    if (r->status == 0 && is_batch(slot) && none) {
        snprintf(w->error, sizeof(w->error), "mintBatch %s reverted (block %" PRId64 "): minting again", r->hash,
                 r->block);
        return ZL_TRANSIENT;
    }
    if (r->status == 0 && (c == ZL_PERMANENT || none)) {
        char why[ZL_ERRSTR_SIZE];
        snprintf(why, sizeof(why), "mint tx %s reverted (block %" PRId64 "): %s", r->hash, r->block, w->error);
        memcpy(w->error, why, sizeof(w->error));
        return ZL_PERMANENT;
    }
    return c;
}

/* Drives a stored tx to a receipt: re-broadcasts the stored bytes, polls,
 * replaces when stuck, fills the nonce when the node refuses it for good.
 * Returns ZL_OK with *r (found), ZL_DEFER while not mined, ZL_PERMANENT when
 * the node refused it (the nonce is then filled: the caller decides what
 * that means for its deposits), or another class; errstr says why. */
static zl_class drive_slot(struct mint *m, struct zl_nonce_tx *slot, const struct zl_log_ctx *lc, struct receipt *r,
                           char *errstr, size_t errstr_size)
{
    zl_class c = find_receipt(m, slot, r, errstr, errstr_size);
    if (c != ZL_OK || r->found)
        return c;
    zl_class bc;
    char err[ZL_ERRSTR_SIZE];
    bc_result b = broadcast(m, slot, &bc, err, sizeof(err));
    if (b == BC_REFUSED) {
        char why[ZL_ERRSTR_SIZE];
        snprintf(why, sizeof(why), "%s", err);
        zl_nonce_note_error(&m->pg, m->chain_id, m->key.address_hex, slot->nonce, why, err, sizeof(err));
        c = resign(m, slot, true /* to_filler */, lc, errstr, errstr_size);
        if (c != ZL_OK)
            return c == ZL_DEFER || c == ZL_PERMANENT ? ZL_TRANSIENT : c;
        /* Record the filler's receipt when it comes quickly; otherwise the
         * janitor re-sends and records it on a later pass. */
        struct receipt fr;
        for (int64_t start = zl_now_ms(); zl_now_ms() - start < m->cfg.receipt_wait_ms;
             sleep_ms(m->cfg.receipt_poll_ms)) {
            if (find_receipt(m, slot, &fr, err, sizeof(err)) != ZL_OK)
                break;
            if (fr.found) {
                zl_nonce_mark_mined(&m->pg, m->chain_id, m->key.address_hex, slot->nonce, fr.hash, fr.block,
                                    fr.status, err, sizeof(err));
                break;
            }
        }
        snprintf(errstr, errstr_size, "%s; nonce filled by self-send %s", why, slot->tx_hash);
        return ZL_PERMANENT;
    }
    if (b == BC_FAILED) {
        zl_nonce_note_error(&m->pg, m->chain_id, m->key.address_hex, slot->nonce, err, errstr, errstr_size);
        snprintf(errstr, errstr_size, "%s", err);
        if (bc == ZL_OUTAGE && contains_ci(err, "insufficient funds"))
            snprintf(errstr, errstr_size, "signer %s cannot pay for gas: fund it (%.*s)", m->key.address_hex,
                     MINT_NODE_ERROR_MAX, err);
        if (bc != ZL_TRANSIENT || slot->signed_age_ms < m->cfg.stuck_ms)
            return bc;
        /* fall through to the stuck check: e.g. the fee fell below the base fee */
    }
    int64_t start = zl_now_ms();
    /* The first polls come soon and the pause doubles up to
     * ZL_MINT_RECEIPT_POLL_MS: a node that mines on arrival (or a block
     * just due) answers within milliseconds, and a flat 100 ms pause was
     * the whole cost of a mint there; on a 3 s chain it adds ~5 polls. */
    int64_t pause_ms = MINT_RECEIPT_FIRST_POLL_MS;
    for (;;) {
        c = find_receipt(m, slot, r, errstr, errstr_size);
        if (c != ZL_OK || r->found)
            return c;
        int64_t waited = zl_now_ms() - start;
        if (waited >= m->cfg.receipt_wait_ms)
            break;
        sleep_ms(pause_ms < m->cfg.receipt_wait_ms - waited ? pause_ms : m->cfg.receipt_wait_ms - waited);
        pause_ms = pause_ms * 2 < m->cfg.receipt_poll_ms ? pause_ms * 2 : m->cfg.receipt_poll_ms;
    }
    if (slot->signed_age_ms + (zl_now_ms() - start) >= m->cfg.stuck_ms) {
        c = resign(m, slot, false, lc, errstr, errstr_size);
        if (c != ZL_OK)
            return c;
    }
    snprintf(errstr, errstr_size, "mint %s at nonce %" PRIu64 " not mined yet", slot->tx_hash, slot->nonce);
    return ZL_DEFER;
}

/* What a refused (nonce-filled) transaction means for one of its deposits:
 * a single mint the node will never take is permanent; a batch may have
 * been refused for its size or one member, so its deposits are minted again
 * (transient: the tiers bound it). */
static zl_class refused_class(const struct zl_nonce_tx *slot)
{
    return is_batch(slot) ? ZL_TRANSIENT : ZL_PERMANENT;
}

/* One deposit's stored mint (single or batch) driven to its outcome. */
static zl_class drive(struct mint *m, struct zl_work *w, struct zl_nonce_tx *slot, char hash[67])
{
    struct zl_log_ctx lc;
    log_ctx(w, &lc);
    struct receipt r;
    zl_class c = drive_slot(m, slot, &lc, &r, w->error, sizeof(w->error));
    if (c == ZL_PERMANENT)
        return refused_class(slot);
    if (c != ZL_OK)
        return c;
    c = slot_settled(m, slot, &r, w->error, sizeof(w->error));
    if (c != ZL_OK)
        return c;
    return deposit_verdict(m, w, slot, &r, hash);
}

/* Re-broadcasts pending fillers (and records the mined ones), at most every
 * ZL_MINT_JANITOR_MS: a filler that never lands blocks every later nonce. */
static void janitor(struct mint *m)
{
    int64_t now = zl_now_ms();
    if (now < m->next_janitor_ms)
        return;
    m->next_janitor_ms = now + m->cfg.janitor_ms;
    static struct zl_nonce_tx fillers[MINT_FILLERS_PER_PASS_MAX];
    size_t n = 0;
    char err[ZL_ERRSTR_SIZE];
    if (zl_nonce_pending_fillers(&m->pg, m->chain_id, m->key.address_hex, fillers, MINT_FILLERS_PER_PASS_MAX, &n, err,
                                 sizeof(err)) != ZL_OK) {
        zl_log(ZL_LOG_WARN, NULL, "janitor: %s", err);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct receipt r;
        if (find_receipt(m, &fillers[i], &r, err, sizeof(err)) == ZL_OK && r.found) {
            zl_nonce_mark_mined(&m->pg, m->chain_id, m->key.address_hex, fillers[i].nonce, r.hash, r.block, r.status,
                                err, sizeof(err));
        } else {
            zl_class bc;
            if (broadcast(m, &fillers[i], &bc, err, sizeof(err)) != BC_SENT)
                zl_log(ZL_LOG_WARN, NULL, "janitor: filler at nonce %" PRIu64 ": %s", fillers[i].nonce, err);
        }
        zl_nonce_tx_clear(&fillers[i]);
    }
}

/* --------------------------------------------------------------- stage */

static void fill_out(struct mint *m, struct zl_work *w, const char *hash)
{
    zl_event_derive(&w->out, &w->in, ZL_TOPIC_MINTED);
    snprintf(w->out.mint_tx_hash, sizeof(w->out.mint_tx_hash), "%s", hash);
    zl_token_id_decimal(w->in.deposit_id, w->out.token_id, sizeof(w->out.token_id));
    snprintf(w->out.nft_contract, sizeof(w->out.nft_contract), "%s", m->nft_hex);
}

static zl_class mint_process(void *ctx, struct zl_work *w)
{
    struct mint *m = ctx;
    zl_class c = zl_pg_ensure(&m->pg, w->error, sizeof(w->error));
    if (c != ZL_OK)
        return c == ZL_PERMANENT ? ZL_OUTAGE : c; /* a missing migration is not the message's fault */
    janitor(m);
    if (!zl_valid_address(w->in.from) || strcmp(w->in.from, "0x0000000000000000000000000000000000000000") == 0) {
        snprintf(w->error, sizeof(w->error), "depositor address %s cannot receive an NFT", w->in.from);
        return ZL_PERMANENT;
    }
    struct zl_nonce_tx slot;
    memset(&slot, 0, sizeof(slot));
    bool found;
    char hash[67] = "";
    c = zl_nonce_find_for_deposit(&m->pg, m->chain_id, m->key.address_hex, w->in.deposit_id, &slot, &found, w->error,
                                  sizeof(w->error));
    if (c != ZL_OK)
        return pg_class(c);
    if (!found) {
        bool done;
        c = new_mint(m, w, &slot, &done, hash);
        if (c != ZL_OK || done) {
            zl_nonce_tx_clear(&slot);
            if (c == ZL_OK)
                fill_out(m, w, hash);
            return c;
        }
    }
    c = drive(m, w, &slot, hash);
    zl_nonce_tx_clear(&slot);
    if (c == ZL_OK) {
        fill_out(m, w, hash);
        struct zl_log_ctx lc;
        log_ctx(w, &lc);
        zl_log_kv(ZL_LOG_INFO, &lc, "minted", "tx_hash", hash, "token_id", w->out.token_id, NULL);
    }
    return c;
}

/* ---------------------------------------------------------- batched mints */

/* A stored transaction and which works of this poll batch it carries. */
struct slot_group {
    struct zl_nonce_tx slot; /* owned: zl_nonce_tx_clear */
};

/* Every deposit of the chunk failed alike. */
static void fail_all(struct zl_work *const *ws, const size_t *idx, size_t k, zl_class c, const char *why)
{
    for (size_t i = 0; i < k; i++) {
        ws[idx[i]]->result = c;
        snprintf(ws[idx[i]]->error, sizeof(ws[idx[i]]->error), "%s", why);
    }
}

/* mintBatch calldata for the chunk's works whose keep flag is set. */
static zl_class batch_calldata(struct zl_work *const *ws, const size_t *idx, size_t k, const bool *skip,
                               uint8_t *data, size_t cap, size_t *len, char *errstr, size_t errstr_size)
{
    static uint8_t to[ZL_NONCE_BATCH_MAX][20];
    static uint8_t ids[ZL_NONCE_BATCH_MAX][32];
    const char *uris[ZL_NONCE_BATCH_MAX];
    size_t n = 0;
    for (size_t i = 0; i < k; i++) {
        if (skip != NULL && skip[i])
            continue;
        const struct zl_work *w = ws[idx[i]];
        zl_keccak256(w->in.deposit_id, strlen(w->in.deposit_id), ids[n]);
        if (zl_tx_parse_address(w->in.from, to[n]) != 0) {
            snprintf(errstr, errstr_size, "depositor %s is not an address", w->in.from);
            return ZL_PERMANENT; /* checked before: cannot happen */
        }
        uris[n++] = w->in.token_uri;
    }
    if (zl_abi_mint_batch(n, (const uint8_t(*)[20])to, (const uint8_t(*)[32])ids, uris, data, cap, len) != 0) {
        snprintf(errstr, errstr_size, "mintBatch of %zu deposits does not fit in %zu bytes of calldata", n, cap);
        return ZL_TRANSIENT;
    }
    return ZL_OK;
}

/* Signs and stores one mintBatch for the chunk ws[idx[0..k)] (2 <= k <=
 * ZL_MINT_BATCH_MAX, none with a live mint when looked up). On success the
 * stored tx becomes groups[*ngroups] and its deposits' group[] entries point
 * at it. Deposits it could not carry (another copy minted them meanwhile,
 * the batch would revert, a row moved) are minted one by one through
 * mint_process, after the batch's own transaction has committed. Any other
 * failure is every deposit's result. */
static void new_batch(struct mint *m, struct zl_work *const *ws, const size_t *idx, size_t k,
                      struct slot_group *groups, size_t *ngroups, ssize_t *group)
{
    static uint8_t data[ZL_TX_DATA_MAX];
    const char *ids[ZL_NONCE_BATCH_MAX];
    bool skip[ZL_NONCE_BATCH_MAX];
    char err[ZL_ERRSTR_SIZE];
    size_t len;
    ZL_ASSERT(k >= 2 && k <= ZL_NONCE_BATCH_MAX);
    zl_class c = batch_calldata(ws, idx, k, NULL, data, sizeof(data), &len, err, sizeof(err));
    if (c != ZL_OK) {
        fail_all(ws, idx, k, c, err);
        return;
    }
    uint64_t gas;
    struct zl_rpc_error re;
    c = estimate_gas(m, data, len, &gas, &re, err, sizeof(err));
    if (c == ZL_PERMANENT) {
        c = estimate_revert_class(m, &re, err, sizeof(err));
        if (c == ZL_OUTAGE) {
            fail_all(ws, idx, k, c, err);
            return;
        }
        /* mintBatch skips existing ids, so a revert is about one deposit or
         * the signer (no role): the single path classifies each precisely. */
        zl_log(ZL_LOG_WARN, NULL, "mintBatch of %zu would revert (%s): minting them one by one", k, err);
        for (size_t i = 0; i < k; i++)
            ws[idx[i]]->result = mint_process(m, ws[idx[i]]);
        return;
    }
    if (c != ZL_OK) {
        fail_all(ws, idx, k, c, err);
        return;
    }
    /* The estimate covers all k: a subset kept below needs less. */
    gas = m->cfg.gas_limit > 0 ? (uint64_t)m->cfg.gas_limit * k : gas + gas * (uint64_t)m->cfg.gas_margin_pct / 100;
    struct fees f;
    uint64_t floor;
    c = fees_and_floor(m, &f, &floor, err, sizeof(err));
    if (c != ZL_OK) {
        fail_all(ws, idx, k, c, err);
        return;
    }
    for (size_t i = 0; i < k; i++)
        ids[i] = ws[idx[i]]->in.deposit_id;
    uint64_t nonce;
    size_t nkept;
    c = zl_nonce_begin_batch(&m->pg, m->chain_id, m->key.address_hex, ids, k, floor, &nonce, skip, &nkept, err,
                             sizeof(err));
    if (c != ZL_OK) {
        fail_all(ws, idx, k, pg_class(c), err);
        return;
    }
    if (nkept > 0) {
        const char *kept_ids[ZL_NONCE_BATCH_MAX];
        size_t nk = 0;
        for (size_t i = 0; i < k; i++)
            if (!skip[i])
                kept_ids[nk++] = ids[i];
        if (nkept < k)
            c = batch_calldata(ws, idx, k, skip, data, sizeof(data), &len, err, sizeof(err));
        struct zl_tx tx = {.type = f.type, .chain_id = m->chain_id, .nonce = nonce,
                           .max_priority_fee_wei = f.priority_fee_wei, .max_fee_wei = f.max_fee_wei,
                           .gas_limit = gas, .value_wei = 0, .data = data, .data_len = len};
        memcpy(tx.to, m->nft, 20);
        struct zl_nonce_tx *slot = &groups[*ngroups].slot;
        if (c == ZL_OK)
            c = sign_to_record(m, &tx, slot, "mint_batch", err, sizeof(err));
        if (c != ZL_OK) {
            zl_nonce_abort(&m->pg);
            fail_all(ws, idx, k, c, err);
            return;
        }
        c = zl_nonce_store_batch(&m->pg, slot, kept_ids, nk, err, sizeof(err));
        if (c != ZL_OK) {
            /* Rolled back: nothing was stored, so the bytes must never leave. */
            zl_nonce_tx_clear(slot);
            fail_all(ws, idx, k, pg_class(c), err);
            return;
        }
        slot->nhashes = 1;
        snprintf(slot->hashes[0], sizeof(slot->hashes[0]), "%s", slot->tx_hash);
        slot->receipt_status = -1;
        for (size_t i = 0; i < k; i++)
            if (!skip[i])
                group[idx[i]] = (ssize_t)*ngroups;
        (*ngroups)++;
        char n[24], count[24];
        snprintf(n, sizeof(n), "%" PRIu64, nonce);
        snprintf(count, sizeof(count), "%zu", nk);
        zl_log_kv(ZL_LOG_INFO, NULL, "mintBatch signed and stored", "nonce", n, "tx_hash", slot->tx_hash,
                  "deposits", count, "first_deposit", kept_ids[0], NULL);
        zl_fault_point("mint_batch_after_store");
    }
    for (size_t i = 0; i < k; i++)
        if (skip[i])
            ws[idx[i]]->result = mint_process(m, ws[idx[i]]);
}

/* Drives one stored tx to its receipt once, then gives each of its works
 * of this poll batch its own verdict (ownerOf checked for batches). */
static void drive_group(struct mint *m, struct zl_work *const *ws, size_t n, const ssize_t *group, size_t g,
                        struct zl_nonce_tx *slot)
{
    struct zl_log_ctx lc = ZL_LOG_CTX_NONE;
    size_t first = n;
    for (size_t i = 0; i < n && first == n; i++)
        if (group[i] == (ssize_t)g)
            first = i;
    ZL_ASSERT(first < n);
    log_ctx(ws[first], &lc);
    char err[ZL_ERRSTR_SIZE];
    struct receipt r;
    zl_class c = drive_slot(m, slot, &lc, &r, err, sizeof(err));
    if (c == ZL_PERMANENT)
        c = refused_class(slot);
    else if (c == ZL_OK)
        c = slot_settled(m, slot, &r, err, sizeof(err));
    for (size_t i = first; i < n; i++) {
        struct zl_work *w = ws[i];
        if (group[i] != (ssize_t)g)
            continue;
        if (c != ZL_OK) {
            w->result = c;
            snprintf(w->error, sizeof(w->error), "%s", err);
            continue;
        }
        char hash[67] = "";
        w->result = deposit_verdict(m, w, slot, &r, hash);
        if (w->result == ZL_OK) {
            fill_out(m, w, hash);
            struct zl_log_ctx wl;
            log_ctx(w, &wl);
            zl_log_kv(ZL_LOG_INFO, &wl, "minted", "tx_hash", hash, "token_id", w->out.token_id, NULL);
        }
    }
}

/* process_batch: under backlog, up to ZL_MINT_BATCH_MAX fresh deposits per
 * mintBatch tx; deposits that already have a stored tx (single or batch:
 * retries, redeliveries, another copy's work) are grouped by that tx, which
 * is re-broadcast byte for byte and driven once for all of them. Every
 * deposit still gets its own result. */
static void mint_process_batch(void *ctx, struct zl_work *const *ws, size_t n)
{
    struct mint *m = ctx;
    if (n == 1 || m->cfg.batch_max <= 1) {
        for (size_t i = 0; i < n; i++)
            ws[i]->result = mint_process(m, ws[i]);
        return;
    }
    char err[ZL_ERRSTR_SIZE];
    zl_class c = zl_pg_ensure(&m->pg, err, sizeof(err));
    if (c != ZL_OK) {
        zl_works_fail(ws, n, c == ZL_PERMANENT ? ZL_OUTAGE : c, err); /* not the messages' fault */
        return;
    }
    janitor(m);
    struct slot_group *groups = calloc(n, sizeof(*groups));
    ssize_t *group = calloc(n, sizeof(*group)); /* per work: its group, -1 none */
    /* Each deposit is here once: the runtime hands a later copy of one
     * (a redelivery beside its retry) the first copy's result. */
    size_t *fresh = calloc(n, sizeof(*fresh));
    if (groups == NULL || group == NULL || fresh == NULL) {
        zl_works_fail(ws, n, ZL_TRANSIENT, "out of memory");
        goto out;
    }
    size_t ngroups = 0, nfresh = 0;
    for (size_t i = 0; i < n; i++) {
        struct zl_work *w = ws[i];
        group[i] = -1;
        if (!zl_valid_address(w->in.from) || strcmp(w->in.from, "0x0000000000000000000000000000000000000000") == 0) {
            w->result = ZL_PERMANENT;
            snprintf(w->error, sizeof(w->error), "depositor address %s cannot receive an NFT", w->in.from);
            continue;
        }
        struct zl_nonce_tx slot;
        bool found;
        c = zl_nonce_find_for_deposit(&m->pg, m->chain_id, m->key.address_hex, w->in.deposit_id, &slot, &found,
                                      w->error, sizeof(w->error));
        if (c != ZL_OK) {
            w->result = pg_class(c);
            continue;
        }
        if (!found) {
            fresh[nfresh++] = i;
            continue;
        }
        for (size_t g = 0; g < ngroups && group[i] < 0; g++)
            if (groups[g].slot.nonce == slot.nonce)
                group[i] = (ssize_t)g;
        if (group[i] >= 0) {
            zl_nonce_tx_clear(&slot); /* the same tx, read again for another of its deposits */
        } else {
            groups[ngroups].slot = slot;
            group[i] = (ssize_t)ngroups++;
        }
    }
    for (size_t off = 0; off < nfresh;) {
        size_t k = nfresh - off < (size_t)m->cfg.batch_max ? nfresh - off : (size_t)m->cfg.batch_max;
        if (k == 1)
            ws[fresh[off]]->result = mint_process(m, ws[fresh[off]]);
        else
            new_batch(m, ws, fresh + off, k, groups, &ngroups, group);
        off += k;
    }
    for (size_t g = 0; g < ngroups; g++) {
        drive_group(m, ws, n, group, g, &groups[g].slot);
        zl_nonce_tx_clear(&groups[g].slot);
    }
out:
    free(groups);
    free(group);
    free(fresh);
}

static zl_class mint_republish(void *ctx, struct zl_work *w)
{
    (void)ctx;
    if (!zl_valid_hash32(w->row.mint_tx_hash) || w->row.token_id[0] == '\0' || w->row.nft_contract[0] == '\0') {
        snprintf(w->error, sizeof(w->error), "row is %s but lacks mint_tx_hash/token_id/nft_contract",
                 zl_state_name(w->row.state));
        return ZL_PERMANENT;
    }
    zl_event_derive(&w->out, &w->in, ZL_TOPIC_MINTED);
    snprintf(w->out.mint_tx_hash, sizeof(w->out.mint_tx_hash), "%s", w->row.mint_tx_hash);
    snprintf(w->out.token_id, sizeof(w->out.token_id), "%s", w->row.token_id);
    snprintf(w->out.nft_contract, sizeof(w->out.nft_contract), "%s", w->row.nft_contract);
    return ZL_OK;
}

static const char mint_set_sql[] =
    "UPDATE deposits SET mint_tx_hash = m.hash, token_id = m.token::numeric, nft_contract = m.nft, updated_at = now()"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS m(id, hash, token, nft)"
    " WHERE deposits.deposit_id = m.id";

static int mint_prepare(void *ctx, struct zl_pg *pg)
{
    (void)ctx;
    return zl_pg_add_stmt(pg, "mint_set_result", mint_set_sql, 4);
}

static zl_class mint_in_tx(void *ctx, struct zl_pg *pg, struct zl_work *const *moved, size_t n, char *errstr,
                           size_t errstr_size)
{
    (void)ctx;
    zl_class c = ZL_TRANSIENT;
    const char **cols[4] = {calloc(n, sizeof(char *)), calloc(n, sizeof(char *)), calloc(n, sizeof(char *)),
                            calloc(n, sizeof(char *))};
    char *arrs[4] = {NULL, NULL, NULL, NULL};
    bool oom = cols[0] == NULL || cols[1] == NULL || cols[2] == NULL || cols[3] == NULL;
    for (size_t i = 0; !oom && i < n; i++) {
        /* Both sides of the boundary: the row gets what the event carries. */
        ZL_ASSERT(zl_valid_hash32(moved[i]->out.mint_tx_hash) && zl_valid_uint256_dec(moved[i]->out.token_id));
        cols[0][i] = moved[i]->in.deposit_id;
        cols[1][i] = moved[i]->out.mint_tx_hash;
        cols[2][i] = moved[i]->out.token_id;
        cols[3][i] = moved[i]->out.nft_contract;
    }
    for (int k = 0; !oom && k < 4; k++) {
        arrs[k] = zl_pg_array_literal(cols[k], n);
        oom = arrs[k] == NULL;
    }
    if (oom) {
        snprintf(errstr, errstr_size, "out of memory");
    } else {
        const char *params[4] = {arrs[0], arrs[1], arrs[2], arrs[3]};
        PGresult *r = zl_pg_prepared(pg, "mint_set_result", 4, params, PGRES_COMMAND_OK, &c, errstr, errstr_size);
        if (r != NULL)
            PQclear(r);
    }
    for (int k = 0; k < 4; k++) {
        free(cols[k]);
        free(arrs[k]);
    }
    return c;
}

static zl_class mint_probe(void *ctx, char *errstr, size_t errstr_size)
{
    struct mint *m = ctx;
    uint64_t head;
    return rpc_quantity(m, "eth_blockNumber", json_array(), &head, errstr, errstr_size);
}

static void mint_fini(void *ctx)
{
    struct mint *m = ctx;
    if (m->pg_inited)
        zl_pg_close(&m->pg);
    m->pg_inited = false;
    zl_rpc_free(m->rpc);
    m->rpc = NULL;
    zl_secp_key_free(&m->key);
}

static int mint_init(void *ctx, const struct zl_runtime_env *env, char *errstr, size_t errstr_size)
{
    struct mint *m = ctx;
    if (strcmp(m->cfg.tx_type, "auto") != 0 && strcmp(m->cfg.tx_type, "eip1559") != 0 &&
        strcmp(m->cfg.tx_type, "legacy") != 0) {
        snprintf(errstr, errstr_size, "ZL_TX_TYPE: \"%s\" is not auto, eip1559 or legacy", m->cfg.tx_type);
        return -1;
    }
    if (zl_tx_parse_address(m->cfg.nft_address, m->nft) != 0) {
        snprintf(errstr, errstr_size, "ZL_NFT_ADDRESS: \"%s\" is not 0x + 40 hex digits", m->cfg.nft_address);
        return -1;
    }
    zl_tx_hex_encode(m->nft, 20, m->nft_hex, sizeof(m->nft_hex));
    if (zl_secp_key_load(&m->key, m->cfg.signer_key.value, errstr, errstr_size) != 0)
        return -1;
    /* Breaker settings left 0: breaker.h's defaults, as for every stage. */
    struct zl_rpc_opts ro = {.urls = m->cfg.rpc_urls, .timeout_ms = m->cfg.rpc_timeout_ms,
                             .hedge_after_ms = m->cfg.rpc_hedge_after_ms, .quorum = 1, .metrics = env->metrics,
                             .health = env->health, .name = "rpc"};
    if (zl_rpc_new(&m->rpc, &ro, errstr, errstr_size) != 0) {
        zl_secp_key_free(&m->key);
        return -1;
    }
    if (m->cfg.chain_id > 0) {
        m->chain_id = (uint64_t)m->cfg.chain_id;
    } else {
        char err[ZL_ERRSTR_SIZE];
        if (rpc_quantity(m, "eth_chainId", json_array(), &m->chain_id, err, sizeof(err)) != ZL_OK) {
            snprintf(errstr, errstr_size, "eth_chainId: %s (set ZL_MINT_CHAIN_ID to start without the chain)", err);
            goto fail;
        }
    }
    if (zl_pg_init(&m->pg, env->cfg->pg_dsn, env->cfg->pg_connect_timeout_ms) != 0) {
        snprintf(errstr, errstr_size, "mint: cannot set up its database connection (out of memory)");
        goto fail;
    }
    m->pg_inited = true;
    if (zl_nonce_prepare(&m->pg) != 0) {
        snprintf(errstr, errstr_size, "mint: cannot register the nonce statements (ZL_PG_STMTS_MAX reached)");
        goto fail;
    }
    char chain[24];
    snprintf(chain, sizeof(chain), "%" PRIu64, m->chain_id);
    zl_log_kv(ZL_LOG_INFO, NULL, "mint signer", "address", m->key.address_hex, "nft", m->nft_hex, "chain_id", chain,
              "tx_type", m->cfg.tx_type, NULL);
    return 0;
fail:
    /* The runtime calls fini only after a successful init. */
    mint_fini(m);
    return -1;
}

int main(int argc, char **argv)
{
    const struct zl_stage stage = {
        .name = "mint",
        .in_kind = ZL_TOPIC_PINNED,
        .out_kind = ZL_TOPIC_MINTED,
        .accept_states = "{pinned,mint_submitted}",
        .done_state = ZL_STATE_MINTED,
        .process = mint_process,
        .process_batch = mint_process_batch,
        .republish = mint_republish,
        .in_tx = mint_in_tx,
        .prepare = mint_prepare,
        .probe = mint_probe,
        .init = mint_init,
        .fini = mint_fini,
        .ctx = &g_mint,
    };
    struct zl_config_section extra = {"mint stage", mint_settings, sizeof(mint_settings) / sizeof(mint_settings[0]),
                                      &g_mint.cfg};
    return zl_runtime_main(&stage, &extra, 1, argc, argv);
}
