/* webhook_sign.c: HMAC-SHA256 signatures of webhook deliveries (see
 * webhook_sign.h). */
#include "webhook_sign.h"

#include <inttypes.h>
#include <nettle/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"

/* Digits of an int64 timestamp, as the signed payload's "<t>." prefix. */
#define T_TEXT_SIZE 24

void zl_webhook_hmac_hex(const char *secret, int64_t t, const char *body, size_t body_len,
                         char hex[ZL_WEBHOOK_SIG_HEX_SIZE])
{
    struct hmac_sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    char ts[T_TEXT_SIZE];
    int tl = snprintf(ts, sizeof(ts), "%" PRId64 ".", t);
    hmac_sha256_set_key(&ctx, strlen(secret), (const uint8_t *)secret);
    hmac_sha256_update(&ctx, (size_t)tl, (const uint8_t *)ts);
    hmac_sha256_update(&ctx, body_len, (const uint8_t *)body);
    hmac_sha256_digest(&ctx, sizeof(digest), digest);
    zl_hex_encode_bare(digest, sizeof(digest), hex, ZL_WEBHOOK_SIG_HEX_SIZE);
    memset(&ctx, 0, sizeof(ctx)); /* the keyed state holds the secret */
}

int zl_webhook_sign(const char *const *secrets, size_t n, int64_t t, const char *body, size_t body_len, char *out,
                    size_t out_size)
{
    if (out_size > 0)
        out[0] = '\0';
    if (n == 0 || n > ZL_WEBHOOK_SECRETS_MAX)
        return -1;
    size_t len = (size_t)snprintf(out, out_size, "t=%" PRId64, t);
    for (size_t i = 0; i < n && len < out_size; i++) {
        if (secrets[i] == NULL || secrets[i][0] == '\0')
            break;
        char hex[ZL_WEBHOOK_SIG_HEX_SIZE];
        zl_webhook_hmac_hex(secrets[i], t, body, body_len, hex);
        len += (size_t)snprintf(out + len, out_size - len, ",v1=%s", hex);
        if (i + 1 == n && len < out_size)
            return 0;
    }
    if (out_size > 0)
        out[0] = '\0';
    return -1;
}

/* Constant time over the whole length: a receiver must not leak how much
 * of a forged signature matched. */
static bool same_hex(const char *a, const char *b, size_t n)
{
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

int zl_webhook_verify(const char *header, const char *secret, const char *body, size_t body_len, int64_t now_s,
                      int64_t tolerance_s, char *errstr, size_t errstr_size)
{
    if (strncmp(header, "t=", 2) != 0) {
        snprintf(errstr, errstr_size, "signature header must start with t=");
        return -1;
    }
    char *end = NULL;
    long long t = strtoll(header + 2, &end, 10);
    if (end == header + 2 || (*end != ',' && *end != '\0')) {
        snprintf(errstr, errstr_size, "signature header: t= is not a number");
        return -1;
    }
    if (t < now_s - tolerance_s || t > now_s + tolerance_s) {
        snprintf(errstr, errstr_size, "signature timestamp %lld is outside %" PRId64 " s of now (%" PRId64 ")", t,
                 tolerance_s, now_s);
        return -1;
    }
    char want[ZL_WEBHOOK_SIG_HEX_SIZE];
    zl_webhook_hmac_hex(secret, (int64_t)t, body, body_len, want);
    bool match = false;
    for (const char *p = end; (p = strstr(p, ",v1=")) != NULL;) {
        p += 4;
        size_t n = strcspn(p, ",");
        if (n == ZL_WEBHOOK_SIG_HEX_SIZE - 1 && same_hex(p, want, n))
            match = true; /* keep going: the time taken does not say which */
        p += n;
    }
    if (!match) {
        snprintf(errstr, errstr_size, "no v1= signature matches this secret");
        return -1;
    }
    return 0;
}
