/* zl-sol-addr: the C derived-address code (common/solana_addr.c) as a
 * command, for the test that checks it against solders (tests/integration/
 * test_solana_tx.py).
 *
 *   zl-sol-addr < requests.json
 *
 * requests: a JSON list, each one of
 *   {"kind": "on_curve", "key": base58}             -> {"on_curve": bool}
 *   {"kind": "with_seed", "base": base58, "seed": text, "owner": base58}
 *                                                    -> {"address": base58}
 *   {"kind": "pda", "seeds": [hex...], "program": base58}
 *                                                    -> {"address", "bump"}
 *   {"kind": "ata", "wallet", "mint", "token_program": base58}
 *                                                    -> {"address": base58}
 * Prints the list of answers; a refused request answers {"error": "..."}.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "base58.h"
#include "solana_addr.h"

static int key_of(json_t *o, const char *field, uint8_t out[32])
{
    const char *s = json_string_value(json_object_get(o, field));
    return s != NULL ? zl_b58_decode_exact(s, out, 32) : -1;
}

static json_t *address(const uint8_t k[32])
{
    char text[ZL_B58_TEXT_MAX];
    zl_b58_encode(k, 32, text, sizeof(text));
    return json_string(text);
}

static json_t *answer(json_t *r)
{
    const char *kind = json_string_value(json_object_get(r, "kind"));
    uint8_t a[32], b[32], c[32], out[32];
    char err[256] = "bad request";
    if (kind == NULL)
        return json_pack("{s:s}", "error", err);
    if (strcmp(kind, "on_curve") == 0 && key_of(r, "key", a) == 0)
        return json_pack("{s:b}", "on_curve", zl_sol_on_curve(a));
    if (strcmp(kind, "with_seed") == 0 && key_of(r, "base", a) == 0 && key_of(r, "owner", b) == 0) {
        const char *seed = json_string_value(json_object_get(r, "seed"));
        if (seed != NULL && zl_sol_create_with_seed(a, seed, strlen(seed), b, out, err, sizeof(err)) == 0)
            return json_pack("{s:o}", "address", address(out));
    }
    if (strcmp(kind, "ata") == 0 && key_of(r, "wallet", a) == 0 && key_of(r, "mint", b) == 0 &&
        key_of(r, "token_program", c) == 0 && zl_sol_associated_token_account(a, b, c, out, err, sizeof(err)) == 0)
        return json_pack("{s:o}", "address", address(out));
    if (strcmp(kind, "pda") == 0 && key_of(r, "program", a) == 0) {
        /* Seeds over the bounds are passed as they are: the function must
         * refuse them before it reads one (only the first
         * ZL_SOL_SEEDS_MAX are stored, each cut to ZL_SOL_SEED_MAX + 1). */
        static uint8_t bytes[ZL_SOL_SEEDS_MAX][ZL_SOL_SEED_MAX + 1];
        const uint8_t *seeds[ZL_SOL_SEEDS_MAX];
        size_t lens[ZL_SOL_SEEDS_MAX], i;
        json_t *v, *js = json_object_get(r, "seeds");
        json_array_foreach(js, i, v) {
            if (i == ZL_SOL_SEEDS_MAX)
                break;
            const char *h = json_string_value(v);
            size_t len = h != NULL ? strlen(h) / 2 : 0;
            if (len > ZL_SOL_SEED_MAX + 1)
                len = ZL_SOL_SEED_MAX + 1;
            for (size_t k = 0; k < len; k++) {
                unsigned x = 0;
                sscanf(h + 2 * k, "%2x", &x);
                bytes[i][k] = (uint8_t)x;
            }
            seeds[i] = bytes[i];
            lens[i] = len;
        }
        uint8_t bump;
        if (zl_sol_find_program_address(seeds, lens, json_array_size(js), a, out, &bump, err, sizeof(err)) == 0)
            return json_pack("{s:o,s:i}", "address", address(out), "bump", (int)bump);
    }
    return json_pack("{s:s}", "error", err);
}

int main(void)
{
    json_error_t jerr;
    json_t *reqs = json_loadf(stdin, 0, &jerr);
    if (!json_is_array(reqs)) {
        fprintf(stderr, "zl-sol-addr: not a JSON list: %s\n", jerr.text);
        return 1;
    }
    json_t *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(reqs, i, r)
        json_array_append_new(out, answer(r));
    json_dumpf(out, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(out);
    json_decref(reqs);
    return 0;
}
