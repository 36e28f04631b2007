/* solana_scan.c: see solana_scan.h. */
#include "solana_scan.h"

#include <stdio.h>
#include <string.h>

/* Listing pages one scan follows before it gives up on the node: an honest
 * account with more history is read in several scans anyway (the oldest
 * sigs_max first), and a node that pages forever is not honest. */
enum { SCAN_PAGES_MAX = 100000 };

static bool only_this_account(void *ctx, const char *token_account)
{
    return strcmp((const char *)ctx, token_account) == 0;
}

static json_t *listing_params(const char *account, const struct zl_sol_scan_opts *o, const char *until,
                              const char *before)
{
    json_t *cfg = json_pack("{s:i, s:s}", "limit", o->page_limit, "commitment", o->commitment);
    if (cfg != NULL && until[0] != '\0')
        json_object_set_new(cfg, "until", json_string(until));
    if (cfg != NULL && before[0] != '\0')
        json_object_set_new(cfg, "before", json_string(before));
    return cfg == NULL ? NULL : json_pack("[s, o]", account, cfg);
}

/* Lists the signatures newer than cursor into sigs[0..*have), newest first,
 * keeping the oldest sigs_max when there are more (*dropped set). */
static zl_class list_new(struct zl_rpc *r, const struct zl_sol_scan_opts *o, const char *account, const char *cursor,
                         struct zl_sol_sig *sigs, size_t sigs_max, size_t *have, bool *dropped, char *errstr,
                         size_t errstr_size)
{
    size_t page = (size_t)o->page_limit;
    char before[ZL_B58_TEXT_MAX] = "";
    *have = 0;
    *dropped = false;
    for (int pages = 0; pages < SCAN_PAGES_MAX; pages++) {
        if (*have + page > sigs_max) { /* keep the oldest: drop the newest */
            size_t drop = *have + page - sigs_max;
            memmove(sigs, sigs + drop, (*have - drop) * sizeof(*sigs));
            *have -= drop;
            *dropped = true;
        }
        json_t *params = listing_params(account, o, cursor, before);
        json_t *res = NULL;
        zl_class c = params == NULL ? ZL_TRANSIENT
                                    : zl_rpc_call(r, "getSignaturesForAddress", params, &res, NULL, errstr,
                                                  errstr_size);
        json_decref(params);
        if (params == NULL)
            snprintf(errstr, errstr_size, "out of memory");
        if (c != ZL_OK)
            return c;
        size_t got = 0;
        int rc = zl_sol_read_signatures(res, sigs + *have, page, &got, errstr, errstr_size);
        json_decref(res);
        if (rc != 0)
            return ZL_TRANSIENT;
        for (size_t i = 0; i < got; i++) {
            const struct zl_sol_sig *s = &sigs[*have + i];
            if (strcmp(s->signature, cursor) == 0 || (*have + i > 0 && s->slot > sigs[*have + i - 1].slot)) {
                snprintf(errstr, errstr_size,
                         "getSignaturesForAddress for %s: the cursor or a newer slot after an older one (entry %zu "
                         "of page %d): not a listing to trust",
                         account, i, pages);
                return ZL_TRANSIENT;
            }
        }
        *have += got;
        if (got < page)
            return ZL_OK;
        snprintf(before, sizeof(before), "%s", sigs[*have - 1].signature);
    }
    snprintf(errstr, errstr_size, "getSignaturesForAddress for %s did not end after %d pages", account,
             SCAN_PAGES_MAX);
    return ZL_TRANSIENT;
}

zl_class zl_sol_scan_account(struct zl_rpc *r, const struct zl_sol_scan_opts *o, const char *account,
                             const char *cursor, struct zl_sol_sig *sigs, size_t sigs_max,
                             struct zl_sol_transfer *out, size_t max, size_t *n, char *cursor_out, bool *more,
                             char *errstr, size_t errstr_size)
{
    *n = 0;
    *more = false;
    snprintf(cursor_out, ZL_B58_TEXT_MAX, "%s", cursor);
    if (o->page_limit < 1 || o->page_limit > ZL_SOL_SIGS_PAGE_MAX || sigs_max < (size_t)o->page_limit ||
        o->tx_batch < 1 || o->tx_batch > ZL_SOL_TX_BATCH_MAX || max < ZL_SOL_TX_TRANSFERS_MAX) {
        snprintf(errstr, errstr_size,
                 "solana scan: page_limit 1..%d (<= sigs_max), tx_batch 1..%d and room for %d transfers needed",
                 ZL_SOL_SIGS_PAGE_MAX, ZL_SOL_TX_BATCH_MAX, ZL_SOL_TX_TRANSFERS_MAX);
        return ZL_PERMANENT;
    }
    size_t have = 0;
    zl_class c = list_new(r, o, account, cursor, sigs, sigs_max, &have, more, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    const char *methods[ZL_SOL_TX_BATCH_MAX];
    json_t *params[ZL_SOL_TX_BATCH_MAX];
    json_t *results[ZL_SOL_TX_BATCH_MAX];
    struct zl_rpc_error errs[ZL_SOL_TX_BATCH_MAX];
    /* oldest first: sigs[have-1] is the oldest */
    size_t next = have;
    while (next > 0) {
        size_t k = next < (size_t)o->tx_batch ? next : (size_t)o->tx_batch;
        for (size_t i = 0; i < k; i++) {
            methods[i] = "getTransaction";
            params[i] = json_pack("[s, {s:s, s:s, s:i}]", sigs[next - 1 - i].signature, "encoding", "jsonParsed",
                                  "commitment", o->commitment, "maxSupportedTransactionVersion", 0);
            results[i] = NULL;
        }
        c = zl_rpc_batch_quorum(r, k, methods, params, results, errs, errstr, errstr_size);
        size_t done = 0;
        for (; c == ZL_OK && done < k; done++) {
            const char *want = sigs[next - 1 - done].signature;
            if (results[done] == NULL) {
                snprintf(errstr, errstr_size, "getTransaction %s: %s", want, errs[done].message);
                c = ZL_TRANSIENT;
                break;
            }
            if (max - *n < ZL_SOL_TX_TRANSFERS_MAX) {
                *more = true;
                break;
            }
            const char *said = zl_sol_answer_signature(results[done]);
            if (!json_is_null(results[done]) && (said == NULL || strcmp(said, want) != 0)) {
                snprintf(errstr, errstr_size, "getTransaction %s: the answer is for another transaction", want);
                c = ZL_TRANSIENT;
                break;
            }
            size_t got = 0;
            char err[256];
            enum zl_sol_tx_read rd = zl_sol_read_transfers(results[done], o->cluster, o->mint, only_this_account,
                                                           (void *)account, out + *n, max - *n, &got, err,
                                                           sizeof(err));
            if (rd != ZL_SOL_TX_READ) {
                snprintf(errstr, errstr_size, "getTransaction %s: %s", want,
                         rd == ZL_SOL_TX_ABSENT ? "listed, but not there at this commitment" : err);
                c = ZL_TRANSIENT;
                break;
            }
            *n += got;
            snprintf(cursor_out, ZL_B58_TEXT_MAX, "%s", want);
        }
        for (size_t i = 0; i < k; i++) {
            json_decref(params[i]);
            json_decref(results[i]);
        }
        if (c != ZL_OK || *more)
            return c;
        next -= k;
    }
    return ZL_OK;
}
