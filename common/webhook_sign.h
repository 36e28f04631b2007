/* webhook_sign.h: the signature of a webhook delivery, in the style users
 * know from payment providers (docs/architecture.md, "Notify"):
 *
 *   ZL-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>[,v1=...]
 *
 * one v1= per valid secret (two during a rotation). A receiver recomputes
 * the HMAC over "<t>.<raw body>" with its secret, compares it in constant
 * time with each v1=, and refuses a t outside its tolerance window (replay).
 *
 * @locality any thread (pure functions; nettle's HMAC keeps no state).
 */
#ifndef ZL_WEBHOOK_SIGN_H
#define ZL_WEBHOOK_SIGN_H

#include <stddef.h>
#include <stdint.h>

/* Secrets one header carries at most: the current one and the previous
 * (a rotation keeps both valid until the old one is retired). */
#define ZL_WEBHOOK_SECRETS_MAX 2
/* Hex of one HMAC-SHA256 with its NUL. */
#define ZL_WEBHOOK_SIG_HEX_SIZE 65
/* "t=<20 digits>" and ",v1=<64 hex>" per secret, with the NUL. */
#define ZL_WEBHOOK_HEADER_SIZE (2 + 20 + ZL_WEBHOOK_SECRETS_MAX * (4 + 64) + 1)

/* Writes the hex HMAC-SHA256 of "<t>.<body>" under secret into
 * hex[ZL_WEBHOOK_SIG_HEX_SIZE]. */
void zl_webhook_hmac_hex(const char *secret, int64_t t, const char *body, size_t body_len,
                         char hex[ZL_WEBHOOK_SIG_HEX_SIZE]);

/* Writes the header value "t=<t>,v1=..." for secrets[0..n) into out.
 * Returns 0; -1 (out set to "" when out_size > 0) when n is 0 or more than
 * ZL_WEBHOOK_SECRETS_MAX, a secret is NULL or empty, or out is too small. */
int zl_webhook_sign(const char *const *secrets, size_t n, int64_t t, const char *body, size_t body_len, char *out,
                    size_t out_size);

/* Verifies header (a ZL-Signature value) for body with secret, as a
 * receiver does: some v1= must match (constant-time compare) and t must be
 * within tolerance_s of now_s. Returns 0, or -1 with errstr saying why
 * (malformed header, stale or future timestamp, no matching signature). */
int zl_webhook_verify(const char *header, const char *secret, const char *body, size_t body_len, int64_t now_s,
                      int64_t tolerance_s, char *errstr, size_t errstr_size);

#endif /* ZL_WEBHOOK_SIGN_H */
