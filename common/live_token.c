/* live_token.c: the live server's per-user tokens (live.h has the format).
 * Stateless on purpose: the operator's backend mints a token from the shared
 * secret when a user opens the page, and the server needs no table of them;
 * a token is revoked by its expiry (keep it short) or by rotating the secret. */
#include "live.h"

#include "hex.h"

#include <errno.h>
#include <inttypes.h>
#include <nettle/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The signed text "<user_id>.<expiry>": the user id plus a dot and 20 digits. */
#define SIGNED_SIZE (ZL_LIVE_USER_BYTES_MAX + 1 + 21)
#define MAC_HEX_SIZE (2 * SHA256_DIGEST_SIZE + 1)

static void mac_hex(const char *secret, const char *msg, size_t msg_len, char out[MAC_HEX_SIZE])
{
    struct hmac_sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    hmac_sha256_set_key(&ctx, strlen(secret), (const uint8_t *)secret);
    hmac_sha256_update(&ctx, msg_len, (const uint8_t *)msg);
    hmac_sha256_digest(&ctx, sizeof(digest), digest);
    (void)zl_hex_encode_bare(digest, sizeof(digest), out, MAC_HEX_SIZE); /* sized for it */
}

int zl_live_token_mint(const char *secret, const char *user_id, int64_t expiry_unix, char *out,
                       size_t out_size)
{
    if (out_size > 0)
        out[0] = '\0';
    size_t ulen = strlen(user_id);
    if (ulen == 0 || ulen > ZL_LIVE_USER_BYTES_MAX || expiry_unix < 0)
        return -1;
    char msg[SIGNED_SIZE];
    int n = snprintf(msg, sizeof(msg), "%s.%" PRId64, user_id, expiry_unix);
    if (n < 0 || (size_t)n >= sizeof(msg))
        return -1;
    char mac[MAC_HEX_SIZE];
    mac_hex(secret, msg, (size_t)n, mac);
    int m = snprintf(out, out_size, "%s.%s", msg, mac);
    if (m < 0 || (size_t)m >= out_size) {
        if (out_size > 0)
            out[0] = '\0';
        return -1;
    }
    return 0;
}

/* Compares two equal-length strings without stopping at the first
 * difference, so the time taken does not tell how much of a guess was right. */
static bool same_text(const char *a, const char *b, size_t n)
{
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

static int reject(const char **why, const char *reason)
{
    if (why != NULL)
        *why = reason;
    return -1;
}

int zl_live_token_check(const char *secret, const char *token, int64_t now_unix, char *user, size_t user_size,
                        const char **why)
{
    if (user_size > 0)
        user[0] = '\0';
    const char *mac = strrchr(token, '.');
    if (mac == NULL || mac == token)
        return reject(why, "malformed token");
    const char *exp = mac - 1;
    while (exp > token && *exp != '.')
        exp--;
    if (*exp != '.' || exp == token)
        return reject(why, "malformed token");
    size_t ulen = (size_t)(exp - token);
    size_t signed_len = (size_t)(mac - token);
    if (ulen > ZL_LIVE_USER_BYTES_MAX || ulen + 1 > user_size || signed_len >= SIGNED_SIZE)
        return reject(why, "malformed token");
    /* Digits only: strtoll would take "+5" or " 5", another text for the
     * same expiry, and the signed text must be the one the backend signed. */
    const char *digits = exp + 1;
    if (digits == mac || (size_t)(mac - digits) > 19)
        return reject(why, "malformed token");
    for (const char *p = digits; p < mac; p++)
        if (*p < '0' || *p > '9')
            return reject(why, "malformed token");
    if (strlen(mac + 1) != MAC_HEX_SIZE - 1)
        return reject(why, "malformed token");

    char want[MAC_HEX_SIZE];
    mac_hex(secret, token, signed_len, want);
    if (!same_text(want, mac + 1, MAC_HEX_SIZE - 1))
        return reject(why, "bad signature");
    errno = 0;
    long long expiry = strtoll(digits, NULL, 10);
    if (errno != 0 || expiry <= now_unix)
        return reject(why, "token expired");
    memcpy(user, token, ulen);
    user[ulen] = '\0';
    return 0;
}
