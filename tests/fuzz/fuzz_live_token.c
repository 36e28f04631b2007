/* libFuzzer target: a user's live token (common/live.h), the one thing a
 * browser sends the live server besides Last-Event-ID, so external input.
 * zl_live_token_check may not crash or read past the string, and what it
 * accepts must be exactly the token zl_live_token_mint makes for the user
 * and expiry it names: no second spelling of a token is valid. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live.h"

/* The corpus's valid tokens are made with this secret and expire in 2100. */
#define FUZZ_SECRET "fuzz-live-token-secret"
#define FUZZ_NOW_UNIX 1796000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *token = malloc(size + 1);
    if (token == NULL)
        return 0;
    memcpy(token, data, size);
    token[size] = '\0'; /* a query parameter or header value: NUL-terminated text */
    char user[ZL_LIVE_USER_BYTES_MAX + 1];
    const char *why = NULL;
    if (zl_live_token_check(FUZZ_SECRET, token, FUZZ_NOW_UNIX, user, sizeof(user), &why) == 0) {
        /* the expiry is the digits between the user and the MAC */
        const char *mac = strrchr(token, '.');
        const char *exp = token + strlen(user) + 1;
        int64_t expiry = strtoll(exp, NULL, 10);
        char again[ZL_LIVE_TOKEN_SIZE];
        if (mac == NULL || zl_live_token_mint(FUZZ_SECRET, user, expiry, again, sizeof(again)) != 0 ||
            strcmp(again, token) != 0)
            __builtin_trap();
    } else if (why == NULL) {
        __builtin_trap(); /* a refusal always says why (the server logs it) */
    }
    free(token);
    return 0;
}
