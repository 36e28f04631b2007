/* verdict.c: what the chain says about a deposit's token: ownerOf, the mint
 * log that minted it, and each deposit's fate once its tx is mined. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "chain.h"
#include "ethtx.h"
#include "hex.h"
#include "keccak.h"
#include "mint.h"

/* The `from` topic of a mint's Transfer log: address(0). */
static const char zero_topic[] = "0x0000000000000000000000000000000000000000000000000000000000000000";

static void lower(char *s)
{
    for (; *s != '\0'; s++)
        if (*s >= 'A' && *s <= 'F')
            *s = (char)(*s - 'A' + 'a');
}

/* ownerOf(id) as lowercase hex; "" when the token does not exist. */
static zl_class owner_of(struct mint *m, const uint8_t id[32], char owner[ZL_ADDRESS_HEX_SIZE], char *errstr,
                         size_t errstr_size)
{
    uint8_t data[4 + 32]; /* selector, token id */
    char hex[ZL_HEX_SIZE(sizeof(data))];
    zl_abi_owner_of(id, data);
    zl_hex_encode(data, sizeof(data), hex, sizeof(hex));
    json_t *res;
    struct zl_rpc_error re;
    owner[0] = '\0';
    zl_class c = zl_txmgr_read(&m->tx, "eth_call", json_pack("[{s:s, s:s} s]", "to", m->nft_hex, "data", hex, "latest"),
                               &res, &re, errstr, errstr_size);
    if (c != ZL_OK && re.answered)
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
static zl_class find_mint_log(struct mint *m, const uint8_t id[32], const char *to, char hash[ZL_HASH_HEX_SIZE],
                              char *errstr, size_t errstr_size)
{
    char to_topic[ZL_HASH_HEX_SIZE], id_topic[ZL_HASH_HEX_SIZE], from_block[ZL_INT64_DEC_SIZE];
    snprintf(to_topic, sizeof(to_topic), "0x000000000000000000000000%s", to + 2);
    lower(to_topic);
    zl_hex_encode(id, 32, id_topic, sizeof(id_topic));
    snprintf(from_block, sizeof(from_block), "0x%" PRIx64, (uint64_t)m->cfg.nft_from_block);
    json_t *res;
    zl_class c = zl_txmgr_read(&m->tx, "eth_getLogs",
                               json_pack("[{s:s, s:s, s:s, s:[s s s s]}]", "address", m->nft_hex, "fromBlock",
                                         from_block, "toBlock", "latest", "topics", ZL_TRANSFER_TOPIC0, zero_topic,
                                         to_topic, id_topic),
                               &res, NULL, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
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

zl_class mint_already_minted(struct mint *m, struct zl_work *w, const uint8_t id[32], char hash[ZL_HASH_HEX_SIZE],
                             bool *none)
{
    char owner[ZL_ADDRESS_HEX_SIZE];
    *none = false;
    zl_class c = owner_of(m, id, owner, w->error, sizeof(w->error));
    if (c != ZL_OK)
        return c;
    if (owner[0] == '\0') {
        *none = true;
        snprintf(w->error, sizeof(w->error), "mint reverted as if the token existed, but ownerOf finds none");
        return ZL_TRANSIENT;
    }
    if (strcasecmp(owner, w->row.facts.from) != 0) {
        snprintf(w->error, sizeof(w->error), "token already minted to %s, not to the depositor %s", owner, w->row.facts.from);
        return ZL_PERMANENT;
    }
    return find_mint_log(m, id, w->row.facts.from, hash, w->error, sizeof(w->error));
}

/* Did the receipt's own logs mint token `id` to `to` (a Transfer(0, to, id)
 * of our contract)? Logs it cannot read count as no: the deposit is then
 * checked on the chain instead, never assumed. */
static bool receipt_minted(const struct mint *m, const struct zl_tx_receipt *r, const uint8_t id[32], const char *to)
{
    size_t i;
    json_t *lg;
    json_array_foreach(r->logs, i, lg) {
        const char *addr = json_string_value(json_object_get(lg, "address"));
        json_t *topics = json_object_get(lg, "topics");
        if (addr == NULL || strcasecmp(addr, m->nft_hex) != 0 || json_array_size(topics) != 4)
            continue;
        const char *t[4];
        for (size_t k = 0; k < 4; k++)
            t[k] = json_string_value(json_array_get(topics, k));
        if (t[0] == NULL || t[1] == NULL || t[2] == NULL || t[3] == NULL ||
            strcasecmp(t[0], ZL_TRANSFER_TOPIC0) != 0 || strcasecmp(t[1], zero_topic) != 0)
            continue;
        char owner[ZL_ADDRESS_HEX_SIZE];
        uint8_t got[32];
        size_t len;
        if (zl_abi_decode_address(t[2], owner) == 0 && zl_hex_decode(t[3], got, sizeof(got), &len) == 0 && len == 32 &&
            memcmp(got, id, 32) == 0 && strcasecmp(owner, to) == 0)
            return true;
    }
    return false;
}

static bool is_batch(const struct zl_nonce_tx *slot)
{
    return strcmp(slot->purpose, "mint_batch") == 0;
}

zl_class mint_refused_class(const struct zl_nonce_tx *slot)
{
    return is_batch(slot) ? ZL_TRANSIENT : ZL_PERMANENT;
}

/* A single mint that succeeded minted this very token. A mintBatch succeeds
 * even for ids it skipped (already minted, possibly by another tx or to
 * someone else), so each of its deposits not in the receipt's own logs is
 * checked on the chain: ownerOf must be the depositor, and the hash recorded
 * is that of the tx whose Transfer log minted it. A reverted single mint is
 * success only when the token exists and is the depositor's, else
 * permanent; a reverted batch minted nothing (all or nothing), so its
 * deposits are minted again (transient). */
zl_class mint_verdict(struct mint *m, struct zl_work *w, const struct zl_nonce_tx *slot, const struct zl_tx_receipt *r,
                      char hash[ZL_HASH_HEX_SIZE])
{
    uint8_t id[32];
    zl_keccak256(w->in.deposit_id, strlen(w->in.deposit_id), id);
    if (r->status == 1 && (!is_batch(slot) || receipt_minted(m, r, id, w->row.facts.from))) {
        snprintf(hash, 67, "%s", r->hash);
        return ZL_OK;
    }
    bool none;
    zl_class c = mint_already_minted(m, w, id, hash, &none);
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

void mint_fill_out(const struct mint *m, struct zl_work *w, const char *hash)
{
    zl_event_derive(&w->out, &w->in, ZL_TOPIC_MINTED);
    snprintf(w->out.mint_tx_hash, sizeof(w->out.mint_tx_hash), "%s", hash);
    zl_token_id_decimal(w->in.deposit_id, w->out.token_id, sizeof(w->out.token_id));
    snprintf(w->out.nft_contract, sizeof(w->out.nft_contract), "%s", m->nft_hex);
}

void mint_done(const struct mint *m, struct zl_work *w, const char *hash)
{
    mint_fill_out(m, w, hash);
    struct zl_log_ctx lc;
    zl_work_log_ctx(w, &lc);
    zl_log_kv(ZL_LOG_INFO, &lc, "minted", "tx_hash", hash, "token_id", w->out.token_id, NULL);
}
