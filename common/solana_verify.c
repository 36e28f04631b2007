/* solana_verify.c: see solana_verify.h. */
#include "solana_verify.h"

#include <stdio.h>
#include <string.h>


static bool is_destination(void *ctx, const char *token_account)
{
    return strcmp((const char *)ctx, token_account) == 0;
}

/* Splits "<cluster>:<signature>:<place>" (the place has no ':'). */
static int split_id(const char *id, const char *cluster, char sig[ZL_B58_TEXT_MAX], char place[ZL_SOL_IX_PLACE_SIZE])
{
    size_t cl = strlen(cluster);
    if (strncmp(id, cluster, cl) != 0 || id[cl] != ':')
        return -1;
    const char *s = id + cl + 1, *colon = strchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= ZL_B58_TEXT_MAX || strlen(colon + 1) >= ZL_SOL_IX_PLACE_SIZE ||
        strchr(colon + 1, ':') != NULL)
        return -1;
    memcpy(sig, s, (size_t)(colon - s));
    sig[colon - s] = '\0';
    snprintf(place, ZL_SOL_IX_PLACE_SIZE, "%s", colon + 1);
    uint8_t raw[ZL_SOL_SIG_SIZE];
    return zl_b58_decode_exact(sig, raw, sizeof(raw));
}

zl_class zl_sol_verify(struct zl_rpc *r, const char *cluster, const char *mint, const char *commitment,
                       const char *deposit_id, const char *destination, const char *amount,
                       enum zl_sol_verdict *verdict, struct zl_sol_transfer *found, char *errstr,
                       size_t errstr_size)
{
    char sig[ZL_B58_TEXT_MAX], place[ZL_SOL_IX_PLACE_SIZE];
    if (split_id(deposit_id, cluster, sig, place) != 0) {
        snprintf(errstr, errstr_size, "deposit id \"%.120s\" is not <%s>:<signature>:<place>", deposit_id, cluster);
        return ZL_POISON;
    }
    json_t *params = json_pack("[s, {s:s, s:s, s:i}]", sig, "encoding", "jsonParsed", "commitment", commitment,
                               "maxSupportedTransactionVersion", 0);
    json_t *res = NULL;
    zl_class c = zl_rpc_call_quorum(r, "getTransaction", params, &res, NULL, errstr, errstr_size);
    json_decref(params);
    if (c != ZL_OK)
        return c;
    struct zl_sol_transfer got[ZL_SOL_TX_TRANSFERS_MAX];
    size_t n = 0;
    char err[256];
    enum zl_sol_tx_read rd = zl_sol_read_transfers(res, cluster, mint, is_destination, (void *)destination, got,
                                                   ZL_SOL_TX_TRANSFERS_MAX, &n, err, sizeof(err));
    const char *said = zl_sol_answer_signature(res);
    if (rd == ZL_SOL_TX_READ && (said == NULL || strcmp(said, sig) != 0)) {
        snprintf(err, sizeof(err), "the answer is for another transaction");
        rd = ZL_SOL_TX_INVALID;
    }
    json_decref(res);
    if (rd == ZL_SOL_TX_ABSENT) {
        *verdict = ZL_SOL_NOT_YET;
        snprintf(errstr, errstr_size, "transaction %s not on the chain at %s (yet)", sig, commitment);
        return ZL_OK;
    }
    if (rd == ZL_SOL_TX_INVALID) { /* agreed by a quorum, yet unreadable: a node problem, not the event's */
        snprintf(errstr, errstr_size, "getTransaction %s: %s", sig, err);
        return ZL_TRANSIENT;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(got[i].place, place) != 0)
            continue;
        if (strcmp(got[i].amount, amount) != 0) {
            *verdict = ZL_SOL_MISMATCH;
            snprintf(errstr, errstr_size, "transfer %s moved %s, the event claims %.40s", deposit_id, got[i].amount,
                     amount);
            return ZL_OK;
        }
        *verdict = ZL_SOL_VERIFIED;
        *found = got[i];
        return ZL_OK;
    }
    *verdict = ZL_SOL_MISMATCH;
    snprintf(errstr, errstr_size,
             "transaction %s has no USDT transfer into %.60s at instruction %s (failed, another mint, another "
             "account or no such instruction)",
             sig, destination, place);
    return ZL_OK;
}
