/* zl-sol-rpc: the Solana code that reads the chain through RPC, as a
 * command, for the tests against a real validator
 * (tests/integration/test_solana_scan.py, test_solana_receipt.py).
 *
 *   zl-sol-rpc < request.json
 *
 * {"op": "scan", ...}: detect's scan of one deposit account
 * (common/solana_scan.c):
 * request: {"urls": "http://127.0.0.1:8899[,...]", "quorum": 1,
 *           "cluster": "localnet", "mint": base58, "account": base58,
 *           "cursor": "" or a signature, "commitment": "confirmed",
 *           "page_limit": 1000, "tx_batch": 25, "sigs_max": 5000,
 *           "max": 5000}
 * Prints {"class": "ok"|..., "error": text, "more": bool, "cursor": sig,
 *         "deposits": [{deposit_id, signature, place, source, destination,
 *                       mint, amount, slot}...]}; exits 0 when it printed.
 *
 * {"op": "receipt_look", "urls", "signature", "nonce", "nonce_value",
 * "mint"} (base58): what zl_sol_receipt_look sees of a stored receipt
 * transaction and zl_sol_receipt_next's step: prints {"class", "error",
 * "seen": {...}, "next": "send"|...}.
 *
 * {"op": "verify", "urls", "quorum", "cluster", "mint", "commitment",
 * "deposit_id", "destination", "amount"}: verify's check of one deposit
 * (common/solana_verify.c): prints {"class", "error", "verdict":
 * "verified"|"not_yet"|"mismatch"|"", "slot"}.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base58.h"
#include "rpc.h"
#include "solana_receipt.h"
#include "solana_scan.h"
#include "solana_verify.h"

static const char *str(json_t *req, const char *name, const char *dflt)
{
    const char *s = json_string_value(json_object_get(req, name));
    return s != NULL ? s : dflt;
}

static long num(json_t *req, const char *name, long dflt)
{
    json_t *v = json_object_get(req, name);
    return json_is_integer(v) ? (long)json_integer_value(v) : dflt;
}

static int key(json_t *req, const char *name, uint8_t out[32])
{
    return zl_b58_decode_exact(str(req, name, ""), out, 32);
}

static int receipt_look(struct zl_rpc *r, json_t *req)
{
    uint8_t nonce[32], value[32], mint[32];
    if (key(req, "nonce", nonce) != 0 || key(req, "nonce_value", value) != 0 || key(req, "mint", mint) != 0) {
        fprintf(stderr, "zl-sol-rpc: nonce, nonce_value and mint must be base58 keys\n");
        return 2;
    }
    struct zl_sol_receipt_seen s;
    char err[512] = "";
    zl_class c = zl_sol_receipt_look(r, str(req, "signature", ""), nonce, value, mint, &s, err, sizeof(err));
    json_t *seen = json_pack("{s:b, s:b, s:b, s:b, s:b, s:b, s:b}", "tx_landed", s.tx_landed, "tx_failed",
                             s.tx_failed, "tx_final", s.tx_final, "nonce_moved", s.nonce_moved, "nonce_move_final",
                             s.nonce_move_final, "receipt_seen", s.receipt_seen, "receipt_final", s.receipt_final);
    json_t *ans = json_pack("{s:s, s:s, s:o, s:s}", "class", zl_class_name(c), "error", err, "seen", seen, "next",
                            c == ZL_OK ? zl_sol_receipt_next_name(zl_sol_receipt_next(&s)) : "");
    json_dumpf(ans, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(ans);
    return 0;
}

static int verify(struct zl_rpc *r, json_t *req)
{
    static const char *const names[] = {"verified", "not_yet", "mismatch"};
    enum zl_sol_verdict v = ZL_SOL_NOT_YET;
    struct zl_sol_transfer found = {0};
    char err[512] = "";
    zl_class c = zl_sol_verify(r, str(req, "cluster", "localnet"), str(req, "mint", ""),
                               str(req, "commitment", "finalized"), str(req, "deposit_id", ""),
                               str(req, "destination", ""), str(req, "amount", ""), &v, &found, err, sizeof(err));
    json_t *ans = json_pack("{s:s, s:s, s:s, s:I}", "class", zl_class_name(c), "error", err, "verdict",
                            c == ZL_OK ? names[v] : "", "slot", (json_int_t)found.slot);
    json_dumpf(ans, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(ans);
    return 0;
}

int main(void)
{
    json_error_t jerr;
    json_t *req = json_loadf(stdin, 0, &jerr);
    if (!json_is_object(req)) {
        fprintf(stderr, "zl-sol-rpc: request is not a JSON object: %s\n", jerr.text);
        return 2;
    }
    char err[512] = "";
    struct zl_rpc_opts ro = {.urls = str(req, "urls", ""), .timeout_ms = 10000, .quorum = (int)num(req, "quorum", 1),
                             .breaker_failure_ratio = 0.5, .breaker_sampling_ms = 30000,
                             .breaker_min_throughput = 1000, .breaker_break_ms = 1000, .name = "rpc"};
    struct zl_rpc *r = NULL;
    if (zl_rpc_new(&r, &ro, err, sizeof(err)) != 0) {
        fprintf(stderr, "zl-sol-rpc: %s\n", err);
        json_decref(req);
        return 2;
    }
    const char *op = str(req, "op", "scan");
    if (strcmp(op, "receipt_look") == 0 || strcmp(op, "verify") == 0) {
        int look = strcmp(op, "verify") == 0 ? verify(r, req) : receipt_look(r, req);
        zl_rpc_free(r);
        json_decref(req);
        return look;
    }
    struct zl_sol_scan_opts o = {.cluster = str(req, "cluster", "localnet"), .mint = str(req, "mint", ""),
                                 .commitment = str(req, "commitment", "confirmed"),
                                 .page_limit = (int)num(req, "page_limit", 1000),
                                 .tx_batch = (int)num(req, "tx_batch", ZL_SOL_TX_BATCH_MAX)};
    size_t sigs_max = (size_t)num(req, "sigs_max", 5000), max = (size_t)num(req, "max", 5000);
    struct zl_sol_sig *sigs = calloc(sigs_max, sizeof(*sigs));
    struct zl_sol_transfer *out = calloc(max, sizeof(*out));
    int rc = 2;
    if (sigs == NULL || out == NULL) {
        fprintf(stderr, "zl-sol-rpc: out of memory\n");
        goto done;
    }
    size_t n = 0;
    bool more = false;
    char cursor[ZL_B58_TEXT_MAX];
    zl_class c = zl_sol_scan_account(r, &o, str(req, "account", ""), str(req, "cursor", ""), sigs, sigs_max, out,
                                     max, &n, cursor, &more, err, sizeof(err));
    json_t *deps = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(deps, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "deposit_id",
                                              out[i].deposit_id, "signature", out[i].signature, "place",
                                              out[i].place, "source", out[i].source, "destination",
                                              out[i].destination, "mint", out[i].mint, "amount", out[i].amount,
                                              "slot", (json_int_t)out[i].slot));
    json_t *ans = json_pack("{s:s, s:s, s:b, s:s, s:o}", "class", zl_class_name(c), "error", c == ZL_OK ? "" : err,
                            "more", more, "cursor", cursor, "deposits", deps);
    json_dumpf(ans, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(ans);
    rc = 0;
done:
    free(sigs);
    free(out);
    zl_rpc_free(r);
    json_decref(req);
    return rc;
}
