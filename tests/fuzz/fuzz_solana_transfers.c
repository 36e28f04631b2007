/* libFuzzer target for the Solana deposit reader (common/solana_transfers.c):
 * getTransaction and getSignaturesForAddress answers come from RPC nodes.
 * The same input goes to both parsers. Properties:
 *  - never more transfers than room, none on a refusal or an absent answer;
 *  - a refusal always carries a reason;
 *  - every transfer's amount is decimal digits, its deposit id is
 *    "<cluster>:<signature>:<place>" of its own fields, and the destination
 *    is one the callback accepted. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solana_transfers.h"

#define OUT_MAX 3
/* The configured mint: the spl-token fixture's USDT stand-in
 * (tests/unit/fixtures/solana/manifest.json), so the seed corpus reaches
 * the accepting path. */
#define MINT "9GZWDPyuQtBZqNrUr24RDbbs7gfuvy2ukqXgA8hY1YGJ"

/* Accepts every key but those starting with '1'..'9': most transfers count,
 * and the refusal path is still reachable. */
static bool is_deposit(void *ctx, const char *acct)
{
    (void)ctx;
    return !(acct[0] >= '1' && acct[0] <= '9');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct zl_sol_transfer out[OUT_MAX];
    size_t n = 99;
    char err[256] = "";
    enum zl_sol_tx_read rc = zl_sol_parse_transfers((const char *)data, size, "localnet",
                                                    MINT, is_deposit, NULL,
                                                    out, OUT_MAX, &n, err, sizeof(err));
    if (n > OUT_MAX || (rc != ZL_SOL_TX_READ && n != 0) || (rc == ZL_SOL_TX_INVALID && err[0] == '\0'))
        abort();
    for (size_t i = 0; i < n; i++) {
        const struct zl_sol_transfer *t = &out[i];
        char id[ZL_SOL_DEPOSIT_ID_SIZE];
        snprintf(id, sizeof(id), "localnet:%s:%s", t->signature, t->place);
        if (strcmp(id, t->deposit_id) != 0 || t->amount[0] == '\0' ||
            strspn(t->amount, "0123456789") != strlen(t->amount) || !is_deposit(NULL, t->destination) ||
            strcmp(t->mint, MINT) != 0)
            abort();
    }
    static struct zl_sol_sig sigs[OUT_MAX];
    n = 99;
    err[0] = '\0';
    int src = zl_sol_parse_signatures((const char *)data, size, sigs, OUT_MAX, &n, err, sizeof(err));
    if ((src == 0 && n > OUT_MAX) || (src != 0 && (n != 0 || err[0] == '\0')))
        abort();
    for (size_t i = 1; src == 0 && i < n; i++)
        if (sigs[i].slot > sigs[i - 1].slot || sigs[i].signature[0] == '\0')
            abort();
    return 0;
}
