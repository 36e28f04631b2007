#include "secp.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <secp256k1.h>
#include <secp256k1_recovery.h>

#include "hex.h"
#include "keccak.h"

/* A serialized uncompressed public key: 0x04, then x and y (32 bytes each). */
#define PUBKEY_UNCOMPRESSED_SIZE 65

/* Zeroes memory in a way the compiler may not drop as a dead store. */
static void wipe(void *p, size_t n)
{
    volatile uint8_t *v = p;
    while (n-- > 0)
        *v++ = 0;
}

static void address_of(const secp256k1_context *ctx, const secp256k1_pubkey *pub, uint8_t address[20])
{
    uint8_t ser[PUBKEY_UNCOMPRESSED_SIZE];
    size_t n = sizeof(ser);
    secp256k1_ec_pubkey_serialize(ctx, ser, &n, pub, SECP256K1_EC_UNCOMPRESSED);
    uint8_t h[32];
    zl_keccak256(ser + 1, sizeof(ser) - 1, h); /* drop the 0x04 prefix */
    memcpy(address, h + 12, 20);
}

int zl_secp_key_load(struct zl_secp_key *k, const char *text, char *errstr, size_t errstr_size)
{
    memset(k, 0, sizeof(*k));
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    if (zl_hex_has_prefix(p))
        p += ZL_HEX_PREFIX_LEN;
    bool ok = true;
    for (size_t j = 0; ok && j < 64; j++)
        ok = zl_hex_digit((unsigned char)p[j]) >= 0; /* stops at the NUL of a short text */
    const char *rest = ok ? p + 64 : p;
    while (ok && isspace((unsigned char)*rest))
        rest++;
    if (!ok || *rest != '\0') {
        snprintf(errstr, errstr_size, "signer key: expected 64 hex digits (0x optional)");
        return -1;
    }
    for (size_t j = 0; j < 32; j++) {
        int hi = zl_hex_digit((unsigned char)p[2 * j]); /* both digits checked above */
        int lo = zl_hex_digit((unsigned char)p[2 * j + 1]);
        k->secret[j] = (uint8_t)(hi << 4 | lo);
    }
    secp256k1_context *ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    if (ctx == NULL) {
        wipe(k->secret, sizeof(k->secret));
        snprintf(errstr, errstr_size, "signer key: cannot create a secp256k1 context");
        return -1;
    }
    secp256k1_pubkey pub;
    if (!secp256k1_ec_seckey_verify(ctx, k->secret) || !secp256k1_ec_pubkey_create(ctx, &pub, k->secret)) {
        secp256k1_context_destroy(ctx);
        wipe(k->secret, sizeof(k->secret));
        snprintf(errstr, errstr_size, "signer key: not a valid secp256k1 secret (zero or above the curve order)");
        return -1;
    }
    k->ctx = ctx;
    address_of(ctx, &pub, k->address);
    zl_hex_encode(k->address, sizeof(k->address), k->address_hex, sizeof(k->address_hex));
    return 0;
}

void zl_secp_key_free(struct zl_secp_key *k)
{
    wipe(k->secret, sizeof(k->secret));
    if (k->ctx != NULL)
        secp256k1_context_destroy(k->ctx);
    k->ctx = NULL;
}

int zl_secp_sign(const struct zl_secp_key *k, const uint8_t digest[32], uint8_t r[32], uint8_t s[32], int *recid)
{
    secp256k1_ecdsa_recoverable_signature sig;
    /* NULL nonce function: RFC 6979 deterministic nonces, so the same tx
     * always signs to the same bytes (and matches other clients). */
    if (!secp256k1_ecdsa_sign_recoverable(k->ctx, &sig, digest, k->secret, NULL, NULL))
        return -1;
    uint8_t rs[64];
    if (!secp256k1_ecdsa_recoverable_signature_serialize_compact(k->ctx, rs, recid, &sig))
        return -1;
    memcpy(r, rs, 32);
    memcpy(s, rs + 32, 32);
    return 0;
}

int zl_secp_recover_address(const struct zl_secp_key *k, const uint8_t digest[32], const uint8_t r[32],
                            const uint8_t s[32], int recid, uint8_t address[20])
{
    uint8_t rs[64];
    memcpy(rs, r, 32);
    memcpy(rs + 32, s, 32);
    secp256k1_ecdsa_recoverable_signature sig;
    secp256k1_pubkey pub;
    if (recid < 0 || recid > 3 || !secp256k1_ecdsa_recoverable_signature_parse_compact(k->ctx, &sig, rs, recid) ||
        !secp256k1_ecdsa_recover(k->ctx, &pub, &sig, digest))
        return -1;
    address_of(k->ctx, &pub, address);
    return 0;
}
